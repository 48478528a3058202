import { STATUS_CODES } from 'node:http';
import type { Request } from 'express';
import type { ProblemField } from '../internal/errors';
import { optionError } from '../internal/options';

/**
 * An error as {@link problemHandler} hands it to a formatter: every field is safe to
 * show (a 5xx carries the generic detail, never its message), and `status` is the one
 * the response will have, after any status mapping.
 *
 * @example
 * const error: ErrorDescription = {
 *   status: 404, raisedStatus: 404, code: 'ownership.denied', title: 'Not Found',
 *   type: 'urn:express-password-guard:ownership.denied',
 *   detail: 'The resource does not exist or the caller may not access it.',
 * };
 */
export interface ErrorDescription {
  /** The status the response is sent with. */
  readonly status: number;
  /** The status the error was raised with, before the route's status mapping. */
  readonly raisedStatus: number;
  /** The stable dotted code, such as `password.already_set`. */
  readonly code: string;
  /** `typeBase` followed by `code`. */
  readonly type: string;
  /** The reason phrase of `status`, such as `Not Found`. */
  readonly title: string;
  readonly detail: string;
  /** Individual faults, for a problem that has several. */
  readonly errors?: readonly ProblemField[];
}

/**
 * What a formatter writes. A string body is sent as it is (with any secret of the request
 * replaced); any other value is sent as this package's escaped JSON with secret-naming
 * keys removed, whatever the formatter put in it.
 *
 * @example
 * const formatted: FormattedError = { contentType: 'application/json', body: { error: 'not found' } };
 */
export interface FormattedError {
  /** The media type, such as `application/json`; `charset=utf-8` is added when it has none. */
  readonly contentType: string;
  readonly body: string | Readonly<Record<string, unknown>> | readonly unknown[];
}

/**
 * Writes one error in an API's own wire format: how its existing clients parse errors.
 *
 * @example
 * const legacy: ErrorFormatter = (error) => ({
 *   contentType: 'application/json',
 *   body: { error: { status: error.status, reason: error.detail } },
 * });
 */
export type ErrorFormatter = (error: ErrorDescription, req: Request) => FormattedError;

/**
 * A built-in format by name (`'problem+json'`, `'openstack-compute'`, `'text'`), or your
 * own {@link ErrorFormatter}.
 *
 * @example
 * const format: ErrorFormat = 'openstack-compute';
 */
export type ErrorFormat = 'problem+json' | 'openstack-compute' | 'text' | ErrorFormatter;

/**
 * Maps the status an error was raised with to the one sent: a table (statuses missing from
 * it are sent as raised) or a function. Every result must be 400 to 599.
 *
 * @example
 * const statusMap: StatusMap = { 413: 400, 415: 400 };
 */
export type StatusMap = Readonly<Record<number, number>> | ((status: number) => number);

/**
 * RFC 9457 `application/problem+json`: `type`, `title`, `status`, `detail`, `code` and,
 * when there are several faults, `errors`. The default format.
 *
 * @example
 * app.use(problemHandler({ format: problemJsonFormat }));
 */
export const problemJsonFormat: ErrorFormatter = function problemJsonFormat(error) {
  return {
    contentType: 'application/problem+json',
    body: {
      type: error.type,
      title: error.title,
      status: error.status,
      detail: error.detail,
      code: error.code,
      ...(error.errors !== undefined && error.errors.length > 0 ? { errors: error.errors } : {}),
    },
  };
};

// Nova's wsgi.Fault names (nova/api/openstack/wsgi.py); anything else is a computeFault.
const OPENSTACK_FAULT_NAMES: Readonly<Record<number, string>> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/**
 * The OpenStack compute API's fault body, `{"itemNotFound": {"code": 404, "message": "…"}}`,
 * named as Nova names them (`badRequest`, `unauthorized`, `forbidden`, `itemNotFound`,
 * `badMethod`, `conflictingRequest`, `overLimit`, `badMediaType`, else `computeFault`), as
 * `application/json`: python-novaclient turns it into its own exceptions (`NotFound`…).
 * Individual faults are appended to `message`, which is all novaclient shows.
 *
 * @example
 * computeRouter.use(problemHandler({ format: openStackComputeFormat }));
 */
export const openStackComputeFormat: ErrorFormatter = function openStackComputeFormat(error) {
  const name = OPENSTACK_FAULT_NAMES[error.status] ?? 'computeFault';
  const message =
    error.errors === undefined || error.errors.length === 0
      ? error.detail
      : [error.detail, ...error.errors.map((field) => field.message)].join(' ');
  return { contentType: 'application/json', body: { [name]: { code: error.status, message } } };
};

/**
 * `text/plain`: the status line's words, then the detail, as the OpenStack metadata
 * service (webob) answers its guests.
 *
 * @example
 * metadataRouter.use(problemHandler({ format: plainTextFormat }));
 */
export const plainTextFormat: ErrorFormatter = function plainTextFormat(error) {
  const lines = [`${error.status} ${error.title}`, '', error.detail];
  for (const field of error.errors ?? []) lines.push(`${field.field}: ${field.message}`);
  return { contentType: 'text/plain', body: `${lines.join('\n')}\n` };
};

const NAMED_FORMATS: Readonly<Record<string, ErrorFormatter>> = {
  'problem+json': problemJsonFormat,
  'openstack-compute': openStackComputeFormat,
  text: plainTextFormat,
};

export function resolveFormat(factory: string, value: unknown): ErrorFormatter {
  if (value === undefined) return problemJsonFormat;
  if (typeof value === 'function') return value as ErrorFormatter;
  const named = typeof value === 'string' ? NAMED_FORMATS[value] : undefined;
  if (named === undefined) {
    throw optionError(
      factory,
      'format',
      `must be ${Object.keys(NAMED_FORMATS)
        .map((n) => `"${n}"`)
        .join(', ')} or a function (error, req) => ({ contentType, body }).`,
    );
  }
  return named;
}

const isErrorStatus = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 599;

/** The status mapping as a function; checks a table's entries at construction. */
export function resolveStatusMap(factory: string, value: unknown): (status: number) => number {
  if (value === undefined) return (status) => status;
  if (typeof value === 'function') return value as (status: number) => number;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError(
      factory,
      'statusMap',
      'must be an object mapping statuses to statuses, such as { 413: 400 }, or a function.',
    );
  }
  const table = new Map<number, number>();
  for (const [from, to] of Object.entries(value as Record<string, unknown>)) {
    const raised = Number(from);
    if (!isErrorStatus(raised) || !isErrorStatus(to)) {
      throw optionError(factory, 'statusMap', `maps ${from} to ${String(to)}: both must be error statuses, 400 to 599.`);
    }
    table.set(raised, to);
  }
  return (status) => table.get(status) ?? status;
}

/** `map(status)` when it is an error status; a mapping that returns anything else is a 500. */
export function mappedStatus(map: (status: number) => number, status: number): number {
  const mapped: unknown = map(status);
  return isErrorStatus(mapped) ? mapped : 500;
}

/**
 * A {@link StatusMap} for routes behind a proxy that passes only some statuses and turns
 * every other one into something its clients cannot read (the OpenStack metadata proxy
 * passes 200, 400, 403, 404, 409 and 500). `remap` sends a status to a passed one; any
 * other status that is not passed becomes 400 (4xx) or 500 (5xx), which must be passed.
 *
 * @example
 * // The OpenStack metadata proxy: an unauthenticated guest gets 403, any other refusal 400.
 * const statusMap = proxyStatuses([400, 403, 404, 409, 500], { 401: 403 });
 */
export function proxyStatuses(
  passed: readonly number[],
  remap: Readonly<Record<number, number>> = {},
): (status: number) => number {
  if (!Array.isArray(passed) || !passed.every(isErrorStatus)) {
    throw optionError('proxyStatuses', 'passed', 'must be an array of error statuses (400 to 599).');
  }
  const allowed = new Set(passed);
  if (!allowed.has(400) || !allowed.has(500)) {
    throw optionError('proxyStatuses', 'passed', 'must include 400 and 500, where the statuses it does not list go.');
  }
  const table = resolveStatusMap('proxyStatuses', remap);
  for (const [from, to] of Object.entries(remap)) {
    if (!allowed.has(to)) throw optionError('proxyStatuses', 'remap', `sends ${from} to ${to}, which the proxy does not pass.`);
  }
  return function proxyStatus(status: number): number {
    const mapped = table(status);
    if (allowed.has(mapped)) return mapped;
    return mapped >= 500 ? 500 : 400;
  };
}

/** The reason phrase of a status. */
export function statusTitle(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}
