import { createHash, timingSafeEqual } from 'node:crypto';
import { optionError } from '../internal/options';
import { BCRYPT_MAX_BYTES, isBcryptScheme, misconfigured } from './bcrypt';
import { isSealedScheme, SEALED_ALGORITHM } from '../sealing/aes-gcm';
import type { MaybePromise } from '../stores/store';

/**
 * A password scheme of an app this package is retrofitted onto, for records written
 * before it: {@link verifyPassword} checks them (and upgrades them to bcrypt on a match),
 * {@link migratePasswords} wraps them in bcrypt. The built-in ones (`'plain'`, `'md5'`,
 * `'sha1'`, `'sha256'`) are always known; give yours in the `legacy` option.
 *
 * A record of this scheme is `{ scheme: name, hash: <what your app stored> }`. Give
 * `digest` when that stored value is a function of the password alone (no salt): records
 * can then be wrapped at once as `bcrypt(stored)`, scheme `'bcrypt+' + name`. Give only
 * `verify` for anything else (a salted hash): such records cannot be wrapped and are
 * upgraded one by one as their owners verify.
 *
 * @example
 * // An app that stored hex SHA-512 digests of the password:
 * const sha512: LegacyScheme = {
 *   name: 'sha512',
 *   digest: (password) => createHash('sha512').update(password, 'utf8').digest('hex'),
 * };
 */
export interface LegacyScheme {
  /**
   * The scheme string of its records: lowercase letters, digits, `.`, `_` and `-`, at
   * most 32 characters, not a built-in name and not starting with `bcrypt`.
   */
  readonly name: string;
  /**
   * What the app stored for `password`, exactly (a digest of at most 72 bytes, since
   * bcrypt reads no more when it is wrapped). Compared in constant time.
   * @default undefined: records of this scheme cannot be wrapped
   */
  readonly digest?: (password: string) => MaybePromise<string>;
  /**
   * Whether `password` is the one behind `stored` (the record's `hash`). Used when there
   * is no `digest`; it should compare in constant time.
   * @default undefined: `digest` is compared with the stored value
   */
  readonly verify?: (password: string, stored: string) => MaybePromise<boolean>;
}

/** The built-in legacy schemes: a record's `scheme` names one, its `hash` holds the stored value. */
export const PLAIN_SCHEME = 'plain';
const HEX_DIGESTS = { md5: 32, sha1: 40, sha256: 64 } as const;
type HexDigest = keyof typeof HEX_DIGESTS;
/** Prefix of the scheme of a wrapped record: `'bcrypt+md5'` is bcrypt over the MD5 hex digest. */
export const WRAPPED_PREFIX = 'bcrypt+';

const RESERVED = new Set<string>([PLAIN_SCHEME, ...Object.keys(HEX_DIGESTS), 'bcrypt', 'hmac-sha256', SEALED_ALGORITHM]);
const NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** The legacy schemes a verifier or a migration knows, by record scheme, resolved once. */
export type LegacySchemes = ReadonlyMap<string, LegacyScheme>;

const builtIns: ReadonlyArray<LegacyScheme> = [
  // Canonically equivalent texts are one password: an app that stored what the client
  // sent may hold `e` + U+0301 where the body reader now gives `é`.
  {
    name: PLAIN_SCHEME,
    verify: (password, stored) => equalStrings(password.normalize('NFC'), stored.normalize('NFC')),
  },
  ...(Object.keys(HEX_DIGESTS) as HexDigest[]).map((algorithm) => ({
    name: algorithm,
    digest: (password: string) => createHash(algorithm).update(password, 'utf8').digest('hex'),
  })),
];

/** The built-in schemes plus the `legacy` option's, checked at construction. */
export function resolveLegacy(factory: string, value: unknown): LegacySchemes {
  const schemes = new Map<string, LegacyScheme>(builtIns.map((scheme) => [scheme.name, scheme]));
  if (value === undefined) return schemes;
  if (!Array.isArray(value)) {
    throw optionError(factory, 'legacy', 'must be an array of legacy schemes ({ name, digest } or { name, verify }).');
  }
  for (const item of value as unknown[]) {
    const scheme = item as Partial<Record<keyof LegacyScheme, unknown>> | null;
    if (typeof scheme !== 'object' || scheme === null) {
      throw optionError(factory, 'legacy', 'must hold objects { name, digest } or { name, verify }.');
    }
    const { name } = scheme;
    if (typeof name !== 'string' || !NAME.test(name) || RESERVED.has(name) || name.startsWith('bcrypt')) {
      throw optionError(
        factory,
        'legacy',
        `has a scheme named ${JSON.stringify(name)}: a name is lowercase letters, digits, ".", "_" and "-" (at most 32), not ${[...RESERVED].join(', ')} and not starting with "bcrypt".`,
      );
    }
    if (schemes.has(name) && !RESERVED.has(name)) {
      throw optionError(factory, 'legacy', `names the scheme "${name}" twice.`);
    }
    if (scheme.digest !== undefined && typeof scheme.digest !== 'function') {
      throw optionError(factory, 'legacy', `scheme "${name}": digest must be a function (password) => string.`);
    }
    if (scheme.verify !== undefined && typeof scheme.verify !== 'function') {
      throw optionError(factory, 'legacy', `scheme "${name}": verify must be a function (password, stored) => boolean.`);
    }
    if (scheme.digest === undefined && scheme.verify === undefined) {
      throw optionError(factory, 'legacy', `scheme "${name}" needs a digest or a verify function.`);
    }
    schemes.set(name, { ...(scheme as LegacyScheme) });
  }
  return schemes;
}

/** How a record's scheme reads, given the known legacy schemes. */
export type SchemeKind =
  | { readonly kind: 'bcrypt' }
  | { readonly kind: 'legacy'; readonly scheme: LegacyScheme }
  | { readonly kind: 'wrapped'; readonly inner: LegacyScheme }
  | { readonly kind: 'sealed' }
  | { readonly kind: 'unknown' };

export function classifyScheme(scheme: string, legacy: LegacySchemes): SchemeKind {
  if (isBcryptScheme(scheme)) return { kind: 'bcrypt' };
  // Encrypted, not hashed: a verify route must refuse it rather than treat it as legacy.
  if (isSealedScheme(scheme)) return { kind: 'sealed' };
  const direct = legacy.get(scheme);
  if (direct !== undefined) return { kind: 'legacy', scheme: direct };
  if (scheme.startsWith(WRAPPED_PREFIX)) {
    const inner = legacy.get(scheme.slice(WRAPPED_PREFIX.length));
    if (inner?.digest !== undefined) return { kind: 'wrapped', inner };
  }
  return { kind: 'unknown' };
}

function hexLengthOf(name: string): number | undefined {
  return Object.hasOwn(HEX_DIGESTS, name) ? HEX_DIGESTS[name as HexDigest] : undefined;
}

/**
 * The stored value of a digest record, normalised (hex lowercased), or `undefined` when it
 * cannot be one (wrong length or alphabet for a built-in digest, over 72 bytes for bcrypt).
 */
export function storedDigest(scheme: LegacyScheme, stored: string): string | undefined {
  const hexLength = hexLengthOf(scheme.name);
  if (hexLength !== undefined) {
    const lower = stored.toLowerCase();
    return lower.length === hexLength && /^[0-9a-f]+$/.test(lower) ? lower : undefined;
  }
  return Buffer.byteLength(stored, 'utf8') <= BCRYPT_MAX_BYTES ? stored : undefined;
}

/** The digest of `password` under `scheme`, checked to be a string. */
export async function legacyDigest(scheme: LegacyScheme, password: string): Promise<string> {
  const digest: unknown = await scheme.digest?.(password);
  if (typeof digest !== 'string') {
    throw misconfigured(`The legacy scheme "${scheme.name}" has a digest function that returned ${typeof digest}, not a string.`);
  }
  return digest;
}

/**
 * Whether `candidate` is the password of an unwrapped legacy record. A stored value that
 * cannot be of its scheme is a corrupt record: a 500, never a guess.
 */
export async function verifyLegacy(scheme: LegacyScheme, candidate: string, stored: string): Promise<boolean> {
  let match = false;
  // Every form is tried whatever the first answer, so the time does not depend on which matched.
  for (const form of candidateForms(candidate)) {
    if (await verifyLegacyForm(scheme, form, stored)) match = true;
  }
  return match;
}

/**
 * The forms of `candidate` a legacy record may have been made from: as given (the body
 * reader's NFC by default), then NFC and NFD when they differ. The legacy app hashed the
 * code points its client sent, and a client may send decomposed text (macOS file names
 * and some input methods do); the body reader now always composes it.
 */
export function candidateForms(candidate: string): string[] {
  return [...new Set([candidate, candidate.normalize('NFC'), candidate.normalize('NFD')])];
}

async function verifyLegacyForm(scheme: LegacyScheme, candidate: string, stored: string): Promise<boolean> {
  if (scheme.digest !== undefined) {
    // A custom digest is compared exactly as stored; a built-in hex digest in either case.
    const expected = hexLengthOf(scheme.name) === undefined ? stored : storedDigest(scheme, stored);
    if (expected === undefined) {
      throw misconfigured(`A stored password of scheme "${scheme.name}" is not a well-formed ${scheme.name} hex digest.`);
    }
    return equalStrings(await legacyDigest(scheme, candidate), expected);
  }
  const answer: unknown = await scheme.verify?.(candidate, stored);
  if (typeof answer !== 'boolean') {
    throw misconfigured(
      `The legacy scheme "${scheme.name}" has a verify function that returned ${typeof answer}, not a boolean.`,
    );
  }
  return answer;
}

/**
 * What bcrypt is given for `candidate` under a wrapped scheme: its legacy digest, or
 * `undefined` when that digest is longer than bcrypt reads (no record was wrapped so).
 */
export async function wrappedInput(inner: LegacyScheme, candidate: string): Promise<string | undefined> {
  const digest = await legacyDigest(inner, candidate);
  return storedDigest(inner, digest);
}

/**
 * Constant-time string equality. Both sides are hashed first, so the compare takes the
 * same time whatever the lengths and wherever the first difference is.
 */
export function equalStrings(a: string, b: string): boolean {
  const left = createHash('sha256').update(a, 'utf8').digest();
  const right = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(left, right);
}
