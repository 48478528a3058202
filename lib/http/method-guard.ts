import type { IRouter, NextFunction, Request, RequestHandler, Response } from 'express';
import { closeAfterAnswer, DEFAULT_DRAIN, hasUnreadBody } from '../internal/bounded-close';
import { problem, requestPath } from '../internal/errors';
import { assertBoolean, assertKnownKeys } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { TOKEN } from '../internal/syntax';

/** Options of {@link methodGuard}. */
export interface MethodGuardOptions {
  /**
   * Answer `OPTIONS` with `204 No Content` and the `Allow` header. Set to `false` when a
   * later middleware (CORS, say) answers `OPTIONS`; it is then passed through.
   * @default true
   */
  readonly handleOptions?: boolean;
  /**
   * Mounted with `app.use(path, …)` (or `router.use(path, …)`), Express runs a middleware
   * for every path below `path` too: `false` guards `path` itself only and passes the
   * paths below it on, as a route would; `true` guards the whole subtree. A guard on a
   * route (`app.all`, `router.route(path).all`) or at the root of the app guards exactly
   * what it matched either way. A guard added with `router.use(guard)`, without a path,
   * to a router mounted below the root is seen as mounted at that router's path: give
   * it `subtree: true` there.
   * @default false
   */
  readonly subtree?: boolean;
}

const optionKeys: KeysEnum<MethodGuardOptions> = { handleOptions: true, subtree: true };

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/**
 * Refuses every method but the listed ones with `405 Method Not Allowed`, an `Allow`
 * header and a problem body naming the refused method, the path and the allowed ones
 * (finding 4: the reviewed handler answered a bare 400). `HEAD` is allowed wherever
 * `GET` is. Method names are compared case-sensitively, as RFC 9110 defines them.
 *
 * @example
 * app.use('/servers/:id/password', methodGuard(['GET', 'POST', 'DELETE']));
 */
export function methodGuard(methods: readonly string[], options: MethodGuardOptions = {}): RequestHandler {
  assertKnownKeys('methodGuard', options, optionKeys);
  assertBoolean('methodGuard', 'handleOptions', options.handleOptions);
  assertBoolean('methodGuard', 'subtree', options.subtree);
  const subtree = options.subtree ?? false;
  const handleOptions = options.handleOptions ?? true;
  const allowed = allowedMethods(methods, handleOptions);
  const allow = allowed.join(', ');
  const allowedSet = new Set(allowed);
  const answersOptions = handleOptions && !methods.includes('OPTIONS');
  // handleOptions: false leaves OPTIONS to a later middleware (CORS preflights), so it
  // must reach it rather than be refused.
  const passesOptions = !handleOptions;

  return function methodGuard(req: Request, res: Response, next: NextFunction): void {
    // Mounted at a path with use(): req.path is what lies below that path ('/' for the
    // path itself); on a route req.route is set and the match was already exact.
    if (!subtree && req.route === undefined && req.baseUrl !== '' && req.path !== '/') {
      next();
      return;
    }
    if (answersOptions && req.method === 'OPTIONS') {
      res.setHeader('Allow', allow);
      if (hasUnreadBody(req)) closeAfterAnswer(req, res, DEFAULT_DRAIN);
      res.status(204).end();
      return;
    }
    if (allowedSet.has(req.method) || (passesOptions && req.method === 'OPTIONS')) {
      next();
      return;
    }
    next(
      problem(
        405,
        'method.not_allowed',
        `The method ${req.method} is not allowed on ${requestPath(req)}. Allowed methods: ${allow}.`,
        { headers: { Allow: allow } },
      ),
    );
  };
}

function allowedMethods(methods: readonly string[], handleOptions: boolean): string[] {
  if (!Array.isArray(methods) || methods.length === 0) {
    throw new TypeError('methodGuard: the first argument must be a non-empty array of method names, such as ["GET", "POST"].');
  }
  const result: string[] = [];
  const add = (method: string): void => {
    if (!result.includes(method)) result.push(method);
  };
  for (const method of methods) {
    if (typeof method !== 'string' || !TOKEN.test(method)) {
      throw new TypeError(`methodGuard: ${JSON.stringify(method)} is not an HTTP method name.`);
    }
    const upper = method.toUpperCase();
    if (method !== upper && STANDARD_METHODS.has(upper)) {
      // Methods are case-sensitive and Node only parses them upper-case, so "get" would
      // refuse every GET: a silent lock-out is worse than failing at start-up.
      throw new TypeError(`methodGuard: method "${method}" never matches. Did you mean "${upper}"?`);
    }
    add(method);
    if (method === 'GET') add('HEAD');
  }
  if (handleOptions) add('OPTIONS');
  return result;
}

/** Standard methods a guarded route can serve: {@link guardRoute}'s handler keys. */
export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Handlers of {@link guardRoute}, keyed by the method they serve. */
export type RouteHandlers = Partial<Record<RouteMethod, RequestHandler | readonly RequestHandler[]>>;

const ROUTE_METHODS: readonly RouteMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Registers `handlers` on `router.route(path)` and closes the route with
 * {@link methodGuard} over exactly those methods, so a wrong method gets 405 and
 * `Allow` instead of Express's own 404, without listing the methods twice.
 * Only public router API is used, so it behaves the same on Express 4 and 5.
 *
 * @example
 * guardRoute(router, '/servers/:id/password', { GET: showState, POST: setPassword });
 */
export function guardRoute(
  router: Pick<IRouter, 'route'>,
  path: string,
  handlers: RouteHandlers,
  options: MethodGuardOptions = {},
): void {
  const methods = Object.keys(handlers);
  for (const method of methods) {
    if (!(ROUTE_METHODS as readonly string[]).includes(method)) {
      throw new TypeError(`guardRoute: unsupported handler key "${method}". Use one of ${ROUTE_METHODS.join(', ')}.`);
    }
  }
  const guard = methodGuard(methods, options);
  const route = router.route(path);
  route.all(guard);
  for (const method of methods as RouteMethod[]) {
    const handler = handlers[method];
    const list = Array.isArray(handler) ? [...handler] : [handler as RequestHandler];
    switch (method) {
      case 'GET':
        route.get(...list);
        break;
      case 'POST':
        route.post(...list);
        break;
      case 'PUT':
        route.put(...list);
        break;
      case 'PATCH':
        route.patch(...list);
        break;
      case 'DELETE':
        route.delete(...list);
        break;
    }
  }
}
