/**
 * Strict `application/x-www-form-urlencoded` decoding, shared by form bodies and query
 * strings. `URLSearchParams` and `qs` are lenient on purpose: the first turns invalid
 * UTF-8 into U+FFFD and keeps a malformed `%zz` as text, the second keeps the raw
 * `%E9` when decoding fails. For a password either means hashing something other than
 * what the user typed, so here a malformed component is an error instead. Splitting
 * follows the WHATWG urlencoded parser (`&` between pairs, the first `=` between name
 * and value, `+` for a space, empty pairs skipped); decoding is ECMAScript's own
 * `decodeURIComponent`, which throws on malformed percent-encoding and on every invalid
 * UTF-8 sequence (overlong forms and encoded surrogates included).
 */

/** Why a component could not be decoded. */
export type UrlencodedFault = 'parse_failed' | 'invalid_utf8';

/** A decoding failure; carries no part of the input. */
export class UrlencodedError extends Error {
  constructor(readonly fault: UrlencodedFault) {
    super(fault === 'parse_failed' ? 'malformed percent-encoding' : 'percent-encoded bytes are not UTF-8');
    this.name = 'UrlencodedError';
  }
}

/** One `name=value` pair, still encoded, as it appears in the text. */
export interface EncodedPair {
  readonly name: string;
  /** `undefined` for a bare `name` with no `=`, which WHATWG reads as an empty value. */
  readonly value: string | undefined;
  /** The whole segment, to rebuild the text without it. */
  readonly segment: string;
}

// `%` not followed by two hex digits; anything else decodeURIComponent refuses is bad UTF-8.
const BAD_PERCENT = /%(?![0-9A-Fa-f]{2})/;

/** Splits urlencoded text into its encoded pairs, in order, without decoding. */
export function encodedPairs(text: string): EncodedPair[] {
  const pairs: EncodedPair[] = [];
  for (const segment of text.split('&')) {
    if (segment === '') continue;
    const equals = segment.indexOf('=');
    pairs.push(
      equals === -1
        ? { name: segment, value: undefined, segment }
        : { name: segment.slice(0, equals), value: segment.slice(equals + 1), segment },
    );
  }
  return pairs;
}

/** Decodes one component, or throws an {@link UrlencodedError}. */
export function decodeComponent(encoded: string): string {
  if (BAD_PERCENT.test(encoded)) throw new UrlencodedError('parse_failed');
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    throw new UrlencodedError('invalid_utf8');
  }
}

/**
 * Decodes every name, and the values of the pairs named `field`, of urlencoded text.
 * Other values are decoded too when `decodeOthers` is set (a form body, whose other
 * fields go on to `req.body`); a query string's other values are left to the app.
 */
export function decodePairs(
  text: string,
  field: string,
  decodeOthers: boolean,
): { readonly values: string[]; readonly others: [string, string][] } {
  const values: string[] = [];
  const others: [string, string][] = [];
  for (const pair of encodedPairs(text)) {
    const name = decodeComponent(pair.name);
    if (name === field) values.push(pair.value === undefined ? '' : decodeComponent(pair.value));
    else if (decodeOthers) others.push([name, pair.value === undefined ? '' : decodeComponent(pair.value)]);
  }
  return { values, others };
}
