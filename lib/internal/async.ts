import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Wraps an async middleware so that a rejection reaches `next(err)`: Express 4 does not
 * catch rejected promises, and an uncaught one would leave the request hanging (or, in a
 * guard, let it through). The returned function keeps `name` for stack traces.
 */
export function asyncMiddleware(
  name: string,
  fn: (req: Request, res: Response, next: NextFunction) => Promise<void>,
): RequestHandler {
  const wrapped = (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res, next).catch(next);
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped;
}
