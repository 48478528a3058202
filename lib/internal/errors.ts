import createError from 'http-errors';
import type { HttpError } from 'http-errors';

/** One fault among several, as listed in a problem body's `errors` array. */
export interface ProblemField {
  readonly field: string;
  readonly code: string;
  readonly message: string;
}

/** Extra parts of a problem raised by this package. */
export interface ProblemInit {
  /** Response headers the error handler sets, such as `Allow` or `Retry-After`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Individual faults, for a problem that has several. */
  readonly errors?: readonly ProblemField[];
}

/** An `http-errors` error raised by this package: its `type` is a stable dotted code. */
export type ProblemError = HttpError & {
  readonly type: string;
  readonly errors?: readonly ProblemField[];
  readonly headers?: Readonly<Record<string, string>>;
};

const raisedHere = new WeakSet<object>();

/**
 * Creates the error every middleware of this package passes to `next(err)`.
 * `detail` must be written by this package: it reaches the client as is, so it
 * never holds a submitted password or a stored hash.
 */
export function problem(status: number, type: string, detail: string, init: ProblemInit = {}): ProblemError {
  const props: Record<string, unknown> = { type };
  if (init.headers !== undefined) props['headers'] = { ...init.headers };
  if (init.errors !== undefined) props['errors'] = init.errors.map((e) => ({ ...e }));
  const error = createError(status, detail, props) as ProblemError;
  raisedHere.add(error);
  return error;
}

/** True for errors made by {@link problem}, whose detail is known to be safe to show. */
export function isOwnProblem(error: unknown): error is ProblemError {
  return typeof error === 'object' && error !== null && raisedHere.has(error);
}

// RFC 3986 pchar plus "/" and "%": what a browser leaves unencoded in a path.
const OUTSIDE_PATH = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu;

/**
 * The request's path as a problem detail may quote it: without the query, and with every
 * character a URL path cannot hold percent-encoded. Browsers encode `<`, `>` and `"`
 * themselves, but Node's parser also takes them raw from any other client, and a detail
 * that a client renders with `innerHTML` must never carry markup back.
 */
export function requestPath(req: { readonly originalUrl: string }): string {
  const path = req.originalUrl.split('?', 1)[0] ?? '/';
  return path.replace(OUTSIDE_PATH, (char) => {
    try {
      return encodeURIComponent(char);
    } catch {
      // A lone surrogate (only a rewritten originalUrl can hold one) has no UTF-8 form.
      return '%EF%BF%BD';
    }
  });
}
