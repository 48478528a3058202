import type { Request } from 'express';
import { problem } from '../internal/errors';
import { parsePath, readPath } from '../internal/object-path';
import { optionError } from '../internal/options';
import { ownership } from './ownership';

/**
 * Finds the id a password record is kept under from the request.
 *
 * @example
 * const id: RecordIdReader = (req) => `${req.params.tenant}/${req.params.id}`;
 */
export type RecordIdReader = (req: Request) => string | undefined;

/**
 * A {@link RecordIdReader}, or where the id is as a dotted path below the request:
 * `'params.id'`, `'body.email'`, `'query.user'`. A path is checked at start-up. An id the
 * client sends (`body.…`, `query.…`) that is missing, empty, or neither a string nor a
 * number is the client's mistake: 400 `request.id_invalid`. A missing `params.…` one is
 * the route's: 500. A number is read as its decimal string.
 *
 * @example
 * const login: RecordIdSource = 'body.email';
 */
export type RecordIdSource = RecordIdReader | string;

/** `req.params.id`: the `:id` of `/servers/:id/password`, the reviewed API's route. */
export const paramsId: RecordIdReader = (req) => {
  const id: unknown = req.params['id'];
  return typeof id === 'string' ? id : undefined;
};

/**
 * The `id` of the resource `requireOwnership` loaded for this request, when it has one;
 * else `req.params.id`. A lookup that ignores case or accents (MySQL's default collation)
 * loads alice's server for `/servers/SRV-ALICE/…` too: keying the record by the path would
 * give one server several records and side-step set-once. The loaded id is the one key.
 */
export const loadedOrParamsId: RecordIdReader = (req) => {
  const resource = ownership(req)?.resource;
  if (typeof resource === 'object' && resource !== null) {
    const id: unknown = (resource as Record<string, unknown>)['id'];
    if (typeof id === 'string' && id !== '') return id;
    if ((typeof id === 'number' && Number.isFinite(id)) || typeof id === 'bigint') return String(id);
  }
  return paramsId(req);
};

const ROOTS = new Set(['params', 'body', 'query']);

export function resolveIdReader(factory: string, value: unknown, option = 'id'): RecordIdReader {
  if (value === undefined) return loadedOrParamsId;
  if (typeof value === 'function') return value as RecordIdReader;
  if (typeof value !== 'string') {
    throw optionError(
      factory,
      option,
      `must be a function or a dotted path such as "params.id" or "body.email", got ${typeof value}.`,
    );
  }
  const segments = parsePath(factory, option, value);
  if (segments.length < 2 || !ROOTS.has(segments[0] ?? '')) {
    throw optionError(
      factory,
      option,
      `(${JSON.stringify(value)}) must start with "params.", "body." or "query.", such as "body.email".`,
    );
  }
  const sentByClient = segments[0] !== 'params';
  return (req) => {
    const id = readPath(req, segments);
    if (typeof id === 'string' && id.length > 0) return id;
    if (typeof id === 'number' && Number.isFinite(id)) return String(id);
    if (!sentByClient) return undefined;
    // Only the path goes into the detail: the value may be anything the client sent.
    throw problem(400, 'request.id_invalid', `The request must name its account in "${value}", as a non-empty string.`);
  };
}

/**
 * The record id of `req`, or `undefined` when the reader found none. A missing id is the
 * route's fault (no `:id` in its path, a reader that returns the wrong thing), so the
 * callers answer 500 rather than guess a key to write under.
 */
export function readRecordId(req: Request, reader: RecordIdReader): string | undefined {
  const id: unknown = reader(req);
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/**
 * The record id of `req`, or a thrown 500 `password.misconfigured` for the log, naming
 * `middleware` and its id `option`: a route that names no record is miswired, and a key
 * to write under is never guessed. For middlewares wrapped by asyncMiddleware.
 */
export function requireRecordId(
  req: Request,
  reader: RecordIdReader,
  route: 'password' | 'secret',
  middleware: string,
  option = 'id',
): string {
  const id = readRecordId(req, reader);
  if (id === undefined) {
    throw problem(
      500,
      'password.misconfigured',
      `The ${route} route is misconfigured: ${middleware} found no record id; check its ${option} option or the route path.`,
    );
  }
  return id;
}
