import type { Request } from 'express';
import { assertFunction } from './options';
import { ownership } from './ownership';

/**
 * Finds the id a password record is kept under from the request.
 *
 * @example
 * const id: RecordIdReader = (req) => `${req.params.tenant}/${req.params.id}`;
 */
export type RecordIdReader = (req: Request) => string | undefined;

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

export function resolveIdReader(factory: string, value: unknown): RecordIdReader {
  assertFunction(factory, 'id', value);
  return (value as RecordIdReader | undefined) ?? loadedOrParamsId;
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
