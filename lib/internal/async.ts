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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * `fn(value)` at once when `value` is already there, after it settles when it is a
 * promise. The store and key-provider interfaces allow either answer; awaiting a value
 * that is already there costs a trip through the microtask queue per step, which on a
 * synchronous store (SQLite, memory) with the local key ring is most of a seal's cost.
 */
export function whenReady<T, R>(value: T | PromiseLike<T>, fn: (settled: T) => R): R | Promise<Awaited<R>> {
  if (isThenable(value)) return Promise.resolve(value).then(fn) as Promise<Awaited<R>>;
  return fn(value);
}

/**
 * Like {@link asyncMiddleware} for a middleware that completes synchronously when its
 * store and key provider do, and returns a promise only when one of them does: a
 * synchronous throw and a rejection both reach `next(err)`.
 */
export function maybeAsyncMiddleware(
  name: string,
  fn: (req: Request, res: Response, next: NextFunction) => unknown,
): RequestHandler {
  const wrapped = (req: Request, res: Response, next: NextFunction): void => {
    let result: unknown;
    try {
      result = fn(req, res, next);
    } catch (error) {
      next(error);
      return;
    }
    if (isThenable(result)) result.then(undefined, next);
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped;
}
