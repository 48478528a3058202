import type { Request, RequestHandler } from 'express';
import { asyncMiddleware } from '../internal/async';
import { problem } from '../internal/errors';
import { callerKey, resolveLimiter } from './hash-limiter';
import type { HashLimiter } from './hash-limiter';
import { candidateForms, classifyScheme, resolveLegacy, verifyLegacy, wrappedInput } from './legacy-schemes';
import type { LegacyScheme, LegacySchemes } from './legacy-schemes';
import { assertBoolean, assertFunction, assertKnownKeys } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import {
  bcryptInput,
  busyProblem,
  dummyHash,
  hashCost,
  limitedCompare,
  limitedHash,
  misconfigured,
  resolveHashing,
} from './bcrypt';
import type { HashingConfig, PasswordScheme } from './bcrypt';
import { requireRecordId, resolveIdReader } from '../access/record-id';
import type { RecordIdSource } from '../access/record-id';
import { clearValidatedPassword, validatedPassword } from '../body/validated-password';
import { markSecret } from '../internal/secrets';
import { reportSecurityEvent } from '../http/security-events';
import { wrongMechanism } from '../sealing/encrypt-and-store';
import { assertSource, assertStore, checkedBoolean, checkedRecord } from '../stores/store';
import type { PasswordSource, PasswordStore } from '../stores/store';
import { requestSlot } from '../internal/request-slot';

/**
 * Options of {@link verifyPassword}; {@link passwordVerifier} takes them too.
 *
 * @example
 * const options: VerifyPasswordOptions = { cost: 12, pepper: process.env.PASSWORD_PEPPER, limiter };
 */
export interface VerifyPasswordOptions {
  /**
   * The cost hashes should have. A matching password whose hash has a lower one is
   * re-hashed at this cost and replaced in the store (as Django and Spring do); a
   * missing record costs a compare at this cost. Use the storer's value.
   * @default 12
   */
  readonly cost?: number;
  /**
   * The storer's pepper. Needed to check records with scheme `'bcrypt+hmac-sha256'`
   * (a 500 without it); when set, plain-bcrypt records that match are re-hashed with
   * the pre-hash too.
   * @default undefined
   */
  readonly pepper?: string | Uint8Array;
  /**
   * Caps compares and rehashes; past the cap the verify is refused with a 503 problem
   * (a rehash is skipped instead, and tried again at the next verify).
   * @default defaultHashLimiter(), one per process
   */
  readonly limiter?: HashLimiter;
  /**
   * Upgrade a matching hash whose cost is below `cost`, or that lacks the pre-hash
   * when a pepper is set, and replace a matching legacy record (plain text, MD5, SHA-1,
   * SHA-256, yours, wrapped or not) by a bcrypt hash of the password.
   * @default true
   */
  readonly rehash?: boolean;
  /**
   * Legacy schemes of your own, besides the built-in `'plain'`, `'md5'`, `'sha1'` and
   * `'sha256'` records, which are always checked (see {@link LegacyScheme}).
   * @default []
   */
  readonly legacy?: readonly LegacyScheme[];
}

/**
 * The outcome of {@link verifyPassword}.
 *
 * @example
 * const { match, rehashed }: PasswordVerification = await verifyPassword(store, 'srv-1', candidate);
 */
export interface PasswordVerification {
  /** Whether the candidate is the stored password. `false` when the id has no record. */
  readonly match: boolean;
  /** Whether the stored hash was upgraded and replaced by this call. */
  readonly rehashed: boolean;
}

const verifyKeys: KeysEnum<VerifyPasswordOptions> = { cost: true, pepper: true, limiter: true, rehash: true, legacy: true };

interface VerifyConfig extends HashingConfig {
  readonly limiter: HashLimiter;
  readonly rehash: boolean;
  readonly legacy: LegacySchemes;
}

export function resolveVerify(factory: string, options: VerifyPasswordOptions): VerifyConfig {
  assertBoolean(factory, 'rehash', options.rehash);
  return {
    ...resolveHashing(factory, options.cost, options.pepper),
    limiter: resolveLimiter(factory, options.limiter),
    rehash: options.rehash ?? true,
    legacy: resolveLegacy(factory, options.legacy),
  };
}

/**
 * Whether `candidate` is the password stored for `id`. Exactly one bcrypt compare runs
 * whether or not the id has a record (a missing one is compared against a dummy hash),
 * so timing does not tell them apart. A candidate a plain-bcrypt record cannot have been
 * made from (over 72 bytes) never matches, so two passwords sharing their first 72
 * bytes never verify as each other. Legacy records (plain text, MD5, SHA-1, SHA-256 or a
 * `legacy` scheme, wrapped by {@link migratePasswords} or not) are checked too, in
 * constant time and with one bcrypt compare all the same, and a match replaces them by a
 * bcrypt hash of the password (compare-and-set, keeping `setAt`). Rejects with a 503
 * `password.busy` problem when the limiter is full, and a 500 `password.misconfigured`
 * one when a record needs a pepper that was not given or has a scheme this version does
 * not know. The candidate must be normalised as the stored password was
 * (`validatedPassword(req)` is).
 *
 * @example
 * const { match } = await verifyPassword(store, req.params.id, candidate, { cost: 12 });
 */
export async function verifyPassword(
  store: PasswordStore,
  id: string,
  candidate: string,
  options: VerifyPasswordOptions = {},
): Promise<PasswordVerification> {
  assertKnownKeys('verifyPassword', options, verifyKeys);
  assertStore('verifyPassword', 'store', store);
  if (typeof id !== 'string' || typeof candidate !== 'string') {
    throw new TypeError('verifyPassword: id and candidate must be strings.');
  }
  return verifyWith(resolveVerify('verifyPassword', options), store, id, candidate);
}

/**
 * `verifyPassword` with its options resolved once. `secret` is told every hash it reads or
 * makes, so that a middleware can keep them out of its request's logs (a store error may
 * quote them).
 */
export async function verifyWith(
  config: VerifyConfig,
  store: PasswordSource,
  id: string,
  candidate: string,
  secret: (value: string) => void = () => undefined,
  caller = '',
): Promise<PasswordVerification> {
  const { limiter } = config;
  const compare = (input: string, hash: string): Promise<boolean> => {
    const comparing = limitedCompare(limiter, input, hash, caller);
    if (comparing === undefined) throw busyProblem(limiter);
    return comparing;
  };

  const record = checkedRecord(await store.get(id));
  if (record !== undefined) secret(record.hash);
  if (record === undefined) {
    await compare(candidate, dummyHash(config.cost));
    return { match: false, rehashed: false };
  }
  const { scheme } = record;
  const kind = classifyScheme(scheme, config.legacy);
  let match: boolean;
  switch (kind.kind) {
    case 'sealed':
      throw wrongMechanism(
        `The password route is misconfigured: record "${id}" was encrypted (scheme "${scheme}"), not hashed; a sealed secret is revealed with revealSecret, never verified.`,
      );
    case 'unknown':
      throw misconfigured(
        `The password route is misconfigured: a stored password has scheme "${scheme}", which this verifier cannot check; give it in the legacy option.`,
      );
    case 'legacy':
      // One bcrypt compare per verify whatever the record: a legacy record then answers
      // no faster than a bcrypt one, and timing does not tell which ids are not migrated.
      await compare(candidate, dummyHash(config.cost));
      match = await verifyLegacy(kind.scheme, candidate, record.hash);
      break;
    case 'wrapped': {
      // The wrapped digest was made from the code points the legacy app received: try the
      // decomposed form too when it differs (a second compare only for such passwords).
      match = false;
      for (const form of candidateForms(candidate)) {
        const input = await wrappedInput(kind.inner, form);
        match = await compare(input ?? form, input === undefined ? dummyHash(hashCost(record.hash)) : record.hash);
        if (match) break;
      }
      break;
    }
    case 'bcrypt': {
      if (scheme === 'bcrypt+hmac-sha256' && config.pepper === undefined) {
        throw misconfigured(
          'The password route is misconfigured: a stored password was pre-hashed with a pepper and the verifier was given none.',
        );
      }
      const input = bcryptInput(candidate, scheme as PasswordScheme, config.pepper);
      if (input === undefined) {
        // bcrypt would compare only the first 72 bytes and could say yes; the storer never
        // hashed such a password under this scheme, so the answer is no, at the same cost.
        await compare(candidate, dummyHash(hashCost(record.hash)));
        return { match: false, rehashed: false };
      }
      match = await compare(input, record.hash);
      if (match && config.rehash && scheme === config.scheme && hashCost(record.hash) >= config.cost) {
        return { match, rehashed: false };
      }
      break;
    }
  }
  if (!match || !config.rehash || store.replace === undefined) return { match, rehashed: false };

  const upgradedInput = bcryptInput(candidate, config.scheme, config.pepper);
  const hashing = upgradedInput === undefined ? undefined : limitedHash(limiter, upgradedInput, config.cost, caller);
  // A busy pool skips the upgrade rather than refuse a correct password; the next
  // successful verify tries again.
  if (hashing === undefined) return { match, rehashed: false };
  const upgraded = { hash: await hashing, setAt: record.setAt, scheme: config.scheme };
  secret(upgraded.hash);
  return { match, rehashed: checkedBoolean('replace', await store.replace(id, record.hash, upgraded)) };
}

/**
 * Finds the password to verify in the request.
 *
 * @example
 * const candidate: CandidateReader = (req) =>
 *   typeof req.body?.current === 'string' ? req.body.current.normalize('NFC') : undefined;
 */
export type CandidateReader = (req: Request) => string | undefined;

/**
 * Options of {@link passwordVerifier}.
 *
 * @example
 * const options: PasswordVerifierOptions = { store, cost: 12, id: (req) => req.params.serverId };
 */
export interface PasswordVerifierOptions extends VerifyPasswordOptions {
  /**
   * Where the hashes are: the storer's store, or a read-only {@link PasswordSource} such
   * as an app's existing user table (then nothing is rehashed). Required.
   */
  readonly store: PasswordStore | PasswordSource;
  /**
   * Finds the id whose password is checked: a function, or a dotted path such as
   * `'body.email'` (see {@link RecordIdSource}). Nothing found → 500 (a miswired route),
   * or 400 `request.id_invalid` for a `body.` or `query.` path (the client's mistake).
   * @default the `id` of the resource `requireOwnership` loaded, else `req.params.id`
   */
  readonly id?: RecordIdSource;
  /**
   * Finds the password to check. A custom reader that returns nothing gets 400
   * `password.missing`; it must normalise as the validator did when the password was set.
   * Prefer the default behind `passwordBody({ from })`, which reads a JSON or form field,
   * a text body or a legacy query parameter with the strict decoding and limits a
   * hand-written reader would lack.
   * @default (req) => validatedPassword(req); nothing there → 500, as passwordBody() is not mounted
   */
  readonly candidate?: CandidateReader;
}

const verifierKeys: KeysEnum<PasswordVerifierOptions> = {
  ...verifyKeys,
  store: true,
  id: true,
  candidate: true,
};

/**
 * What {@link passwordVerifier} established for this request.
 *
 * @example
 * const verified: VerifiedPassword = { id: 'srv-1', rehashed: false };
 */
export interface VerifiedPassword {
  /** The id whose password matched. */
  readonly id: string;
  /** Whether its hash was upgraded on the way. */
  readonly rehashed: boolean;
}

const verifiedByRequest = requestSlot<VerifiedPassword>();

/**
 * What {@link passwordVerifier} established for `req`: set only when the password
 * matched, `undefined` otherwise.
 *
 * @example
 * router.post('/servers/:id/password/verify', passwordBody(), passwordVerifier({ store }), (req, res) => {
 *   res.json({ match: verifiedPassword(req) !== undefined });
 * });
 */
export function verifiedPassword(req: Request): VerifiedPassword | undefined {
  return verifiedByRequest.get(req);
}

/** Records a match for `req`; internal, for `passwordRoutes`' verify route. */
export function recordVerified(req: Request, verified: VerifiedPassword): void {
  verifiedByRequest.set(req, verified);
}

/**
 * The middleware form of {@link verifyPassword}: a matching password calls `next()`
 * (with {@link verifiedPassword} set) and anything else stops the request, so a handler
 * that forgets to check cannot let a wrong password through. A wrong password and an
 * id with no record both get the same 403 `password.mismatch`; a full limiter gets 503
 * `password.busy` with `Retry-After`. The plaintext is forgotten either way.
 *
 * Verifying must not apply the content rules of setting: a password set before the
 * blocklist grew must still verify. Mount `passwordBody({ purpose: 'verify' })`, or read
 * the candidate yourself with the `candidate` option.
 *
 * @example
 * app.post('/servers/:id/password/verify', passwordBody(), passwordVerifier({ store }), (_req, res) => {
 *   res.json({ match: true });
 * });
 */
export function passwordVerifier(options: PasswordVerifierOptions): RequestHandler {
  assertKnownKeys('passwordVerifier', options, verifierKeys);
  const { store } = options;
  assertSource('passwordVerifier', 'store', store);
  if (options.rehash === true && store.replace === undefined) {
    throw new TypeError(
      'passwordVerifier: option "rehash" is true but the store has no replace method to write the upgraded hash; give a full store or leave rehash unset.',
    );
  }
  const readId = resolveIdReader('passwordVerifier', options.id);
  assertFunction('passwordVerifier', 'candidate', options.candidate);
  const readCandidate = options.candidate;
  const config = resolveVerify('passwordVerifier', options);

  return asyncMiddleware('passwordVerifier', async (req, _res, next) => {
    const candidate: unknown = readCandidate === undefined ? validatedPassword(req) : readCandidate(req);
    clearValidatedPassword(req);
    if (typeof candidate !== 'string') {
      next(
        readCandidate === undefined
          ? misconfigured(
              'The password route is misconfigured: no validated password reached passwordVerifier; mount passwordBody() before it or pass a candidate option.',
            )
          : problem(400, 'password.missing', 'The request has no password to verify.'),
      );
      return;
    }
    markSecret(req, candidate);
    const id = requireRecordId(req, readId, 'password', 'passwordVerifier');
    const { match, rehashed } = await verifyWith(config, store, id, candidate, (value) => markSecret(req, value), callerKey(req));
    if (!match) {
      next(problem(403, 'password.mismatch', 'The password does not match.'));
      return;
    }
    verifiedByRequest.set(req, { id, rehashed });
    reportSecurityEvent(req, 'authn_login_success', { resource: id, action: 'verify', rehashed });
    next();
  });
}
