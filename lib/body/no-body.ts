import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { hasUnreadBody } from '../internal/bounded-close';
import { problem } from '../internal/errors';

/**
 * Refuses a request body on a route that takes none (a `GET` of the password state, a
 * `DELETE`, an app's `POST /servers`): a body still arriving gets `413 body.too_large`, and
 * the problem handler closes the connection after a bounded drain, so a 50 MB upload to
 * such a route is never read whole. A body that has already arrived whole (a few bytes
 * sent with the headers) costs nothing more and is let through.
 *
 * @example
 * app.get('/servers/:id', noBody(), showServer);
 */
export function noBody(): RequestHandler {
  return function noBody(req: Request, _res: Response, next: NextFunction): void {
    if (hasUnreadBody(req)) {
      next(problem(413, 'body.too_large', `${req.method} on this route takes no request body: send none.`));
      return;
    }
    next();
  };
}
