import { optionError } from './options';

// Keys that would walk into the prototype chain rather than the data the path names.
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Splits a dotted path (`'data.id'`, `'body.email'`) once, at construction, and throws a
 * `TypeError` naming the option when it cannot name a field: an empty segment or a
 * prototype key would otherwise fail, or match something else, on every request.
 */
export function parsePath(factory: string, option: string, value: unknown): readonly string[] {
  if (typeof value !== 'string' || value.length === 0) {
    throw optionError(factory, option, 'must be a non-empty string: a field name or a dotted path such as "data.id".');
  }
  const segments = value.split('.');
  if (segments.some((segment) => segment.length === 0 || FORBIDDEN.has(segment))) {
    throw optionError(
      factory,
      option,
      `(${JSON.stringify(value)}) is not a dotted path of field names: no empty segment, no __proto__, prototype or constructor.`,
    );
  }
  return segments;
}

/** The value at `segments` below `root`, reading own properties only; `undefined` when any step is missing. */
export function readPath(root: unknown, segments: readonly string[]): unknown {
  let current: unknown = root;
  for (const segment of segments) {
    if (current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, segment)) {
      // A plain object (parsed JSON, a token's claims) is read by its own fields only, so
      // "toString" is never found on it; the request itself keeps Express 5's req.query
      // getter on its prototype, which is read as the application reads it.
      const proto: unknown = Object.getPrototypeOf(current);
      if (proto === Object.prototype || proto === null || !(segment in current)) return undefined;
    }
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
