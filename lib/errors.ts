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
export function problem(
  status: number,
  type: string,
  detail: string,
  init: ProblemInit = {},
): ProblemError {
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
