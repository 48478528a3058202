import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { problem, requestPath } from '../internal/errors';

/**
 * A JSON 404 for paths no route served, to mount after the routes and before
 * {@link problemHandler}: Express's own 404 page is HTML that echoes the path.
 *
 * @example
 * app.use(notFound());
 * app.use(problemHandler());
 */
export function notFound(): RequestHandler {
  return function notFound(req: Request, _res: Response, next: NextFunction): void {
    next(problem(404, 'route.not_found', `Nothing is served at ${requestPath(req)}.`));
  };
}
