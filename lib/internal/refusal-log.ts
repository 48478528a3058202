import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import { requestPath } from './errors';

/**
 * One request the package refused (or failed) before the application saw it.
 *
 * @example
 * const entry: RefusalEntry = { method: 'POST', path: '/rest/basket/2', status: 404, code: 'ownership.denied' };
 */
export interface RefusalEntry {
  readonly method: string;
  /** The path, without the query string: a refusal can come before a password in it is scrubbed. */
  readonly path: string;
  /** The status actually sent, known once the response has finished. */
  readonly status: number;
  /** The error's dotted `type` (`method.not_allowed`), or `http.<status>` for one without. */
  readonly code: string;
}

/**
 * An error middleware that tells `listener` about every request refused in front of an
 * application, once its answer is sent, and passes the error on unchanged. Mounted
 * before {@link problemHandler}, it is how refusals reach an application's own access
 * log when that logger runs inside the application and so never sees them: write the
 * entry to the same log, in its format. Nothing secret is in an entry.
 *
 * @example
 * app.use(bundle, legacyApp);
 * app.use(refusalLog((e) => accessLog.write(`${e.method} ${e.path} ${e.status}\n`)), problemHandler());
 */
export function refusalLog(listener: (entry: RefusalEntry) => void): ErrorRequestHandler {
  if (typeof listener !== 'function') {
    throw new TypeError(`refusalLog: the listener must be a function (entry) => void, got ${typeof listener}.`);
  }
  return function refusalLog(error: unknown, req: Request, res: Response, next: NextFunction): void {
    const type: unknown = typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined;
    const method = req.method;
    const path = requestPath(req);
    res.once('finish', () => {
      listener({ method, path, status: res.statusCode, code: typeof type === 'string' ? type : `http.${res.statusCode}` });
    });
    next(error);
  };
}
