import { createHmac, randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import { problem } from '../internal/errors';
import type { ProblemError } from '../internal/errors';
import type { HashLimiter } from './hash-limiter';
import { integerOption, optionError } from '../internal/options';

/** bcrypt reads this many bytes of its input and silently ignores the rest. */
export const BCRYPT_MAX_BYTES = 72;

/** Lowest cost accepted: below it an offline guess is too cheap (OWASP asks for 10 or more). */
export const MIN_COST = 10;
/** bcrypt's own ceiling. */
export const MAX_COST = 31;
export const DEFAULT_COST = 12;

/** The pepper must be a real key: 256 bits, the size of HMAC-SHA-256's output. */
export const MIN_PEPPER_BYTES = 32;

/**
 * How a stored hash was made from the password; see {@link PasswordRecord.scheme}.
 *
 * @example
 * const scheme: PasswordScheme = pepper === undefined ? 'bcrypt' : 'bcrypt+hmac-sha256';
 */
export type PasswordScheme = 'bcrypt' | 'bcrypt+hmac-sha256';

/** Whether a record's scheme is one of bcrypt's, plain or peppered. */
export function isBcryptScheme(scheme: string): scheme is PasswordScheme {
  return scheme === 'bcrypt' || scheme === 'bcrypt+hmac-sha256';
}

/** Hashing settings shared by the storer and the verifier, resolved once. */
export interface HashingConfig {
  readonly cost: number;
  readonly pepper: Buffer | undefined;
  /** The scheme new hashes are made with: pre-hashed exactly when a pepper is set. */
  readonly scheme: PasswordScheme;
}

export function resolveHashing(factory: string, cost: unknown, pepper: unknown): HashingConfig {
  const resolvedPepper = resolvePepper(factory, pepper);
  return {
    cost: resolveCost(factory, cost),
    pepper: resolvedPepper,
    scheme: resolvedPepper === undefined ? 'bcrypt' : 'bcrypt+hmac-sha256',
  };
}

function resolveCost(factory: string, value: unknown): number {
  return (
    integerOption(factory, 'cost', value, MIN_COST, MAX_COST, {
      hint: `each step doubles the work; ${DEFAULT_COST} is the default`,
    }) ?? DEFAULT_COST
  );
}

function resolvePepper(factory: string, value: unknown): Buffer | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw optionError(factory, 'pepper', 'must be a string or a Buffer holding a secret key.');
  }
  // A copy: a caller who zeroes or reuses their buffer must not change the key under us.
  const key = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  if (key.length < MIN_PEPPER_BYTES) {
    throw optionError(
      factory,
      'pepper',
      `must be at least ${MIN_PEPPER_BYTES} bytes; generate one with crypto.randomBytes(32).toString('base64').`,
    );
  }
  return key;
}

/** True when bcrypt would not read all of `password`. */
export function exceedsBcrypt(password: string): boolean {
  return Buffer.byteLength(password, 'utf8') > BCRYPT_MAX_BYTES;
}

/**
 * What bcrypt is given for `password` under `scheme`, or `undefined` when that scheme
 * cannot take it whole. The pre-hash is base64 (44 bytes), never raw: raw digest bytes
 * may hold a NUL, at which some bcrypt implementations stop reading.
 */
export function bcryptInput(password: string, scheme: PasswordScheme, pepper: Buffer | undefined): string | undefined {
  switch (scheme) {
    case 'bcrypt':
      return exceedsBcrypt(password) ? undefined : password;
    case 'bcrypt+hmac-sha256':
      if (pepper === undefined) return undefined;
      return createHmac('sha256', pepper).update(password, 'utf8').digest('base64');
  }
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const dummyHashes = new Map<number, string>();

/**
 * A well-formed hash of no password at `cost`: comparing against it takes as long as
 * comparing against a real hash of that cost, so a missing record cannot be told from a
 * wrong password by timing. Made from random characters, not by hashing, so that it
 * costs nothing to make and no sync bcrypt call is ever needed.
 */
export function dummyHash(cost: number): string {
  let hash = dummyHashes.get(cost);
  if (hash === undefined) {
    const chars = Array.from(randomBytes(53), (byte) => BCRYPT_ALPHABET[byte & 63] ?? '.').join('');
    hash = `$2b$${String(cost).padStart(2, '0')}$${chars}`;
    dummyHashes.set(cost, hash);
  }
  return hash;
}

/** The 422 a password bcrypt cannot read whole gets, with the validator's `too_long` code. */
export function tooLongProblem(): ProblemError {
  return problem(422, 'password.invalid', 'The password was refused: one rule failed; see errors.', {
    errors: [
      {
        field: 'password',
        code: 'too_long',
        message: `The password must be at most ${BCRYPT_MAX_BYTES} bytes in UTF-8, the most bcrypt reads.`,
      },
    ],
  });
}

/** The 503 a request gets when the limiter is full: no hash was made for it. */
export function busyProblem(limiter: HashLimiter): ProblemError {
  const seconds = limiter.retryAfterSeconds();
  return problem(
    503,
    'password.busy',
    `Too many passwords are being hashed right now; retry in ${seconds} second${seconds === 1 ? '' : 's'}.`,
    { headers: { 'Retry-After': String(seconds) } },
  );
}

/** A server-side fault in how the route is put together: a 500 whose log says how to fix it. */
export function misconfigured(detail: string): ProblemError {
  return problem(500, 'password.misconfigured', detail);
}

/** `bcrypt.hash` through `limiter`, or `undefined` at once when it is full. */
export function limitedHash(limiter: HashLimiter, input: string, cost: number, caller?: string): Promise<string> | undefined {
  return limiter.tryRun(() => bcrypt.hash(input, cost), caller);
}

/** `bcrypt.compare` through `limiter`, or `undefined` at once when it is full. */
export function limitedCompare(limiter: HashLimiter, input: string, hash: string, caller?: string): Promise<boolean> | undefined {
  return limiter.tryRun(() => bcrypt.compare(input, hash), caller);
}

/** The cost a stored hash was made with (bcrypt keeps it in the hash). */
export function hashCost(hash: string): number {
  return bcrypt.getRounds(hash);
}
