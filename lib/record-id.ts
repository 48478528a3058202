import type { Request } from 'express';
import { assertFunction } from './options';

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

export function resolveIdReader(factory: string, value: unknown, option = 'id'): RecordIdReader {
  assertFunction(factory, option, value);
  return (value as RecordIdReader | undefined) ?? paramsId;
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
