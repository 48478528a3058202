import type { Request } from 'express';

/**
 * One value per request, kept beside the request rather than on it: loggers and error
 * serialisers that dump `req` cannot see it, and it goes away with the request.
 */
export interface RequestSlot<T> {
  get(req: Request): T | undefined;
  has(req: Request): boolean;
  set(req: Request, value: T): void;
  /** The value already there, else `create()`'s, stored first. */
  getOrCreate(req: Request, create: () => T): T;
  clear(req: Request): void;
}

/**
 * A new, empty {@link RequestSlot}: one per kind of value (the validated password, the
 * stored record, the owner let through…), each private to the module that fills it.
 *
 * @example
 * const stored = requestSlot<StoredPassword>();
 * stored.set(req, { id, setAt, scheme });
 */
export function requestSlot<T>(): RequestSlot<T> {
  const values = new WeakMap<Request, T>();
  return {
    get: (req) => values.get(req),
    has: (req) => values.has(req),
    set: (req, value) => {
      values.set(req, value);
    },
    getOrCreate: (req, create) => {
      // One lookup when the value is there (the common case), two only for a stored undefined.
      const found = values.get(req);
      if (found !== undefined || values.has(req)) return found as T;
      const value = create();
      values.set(req, value);
      return value;
    },
    clear: (req) => {
      values.delete(req);
    },
  };
}
