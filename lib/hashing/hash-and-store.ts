import type { Request, RequestHandler } from 'express';
import { asyncMiddleware } from '../internal/async';
import { problem } from '../internal/errors';
import type { ProblemError } from '../internal/errors';
import { callerKey, resolveLimiter } from './hash-limiter';
import type { HashLimiter } from './hash-limiter';
import { assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { bcryptInput, busyProblem, limitedHash, resolveHashing, tooLongProblem } from './bcrypt';
import type { PasswordScheme } from './bcrypt';
import { requireRecordId, resolveIdReader } from '../access/record-id';
import type { RecordIdSource } from '../access/record-id';
import { takeValidatedPassword } from '../body/validated-password';
import { markSecret } from '../internal/secrets';
import { reportSecurityEvent } from '../http/security-events';
import { assertStore, checkedBoolean, checkedRecord } from '../stores/store';
import type { PasswordRecord, PasswordStore } from '../stores/store';
import { requestSlot } from '../internal/request-slot';

/**
 * Options of {@link hashAndStore}.
 *
 * @example
 * const options: HashAndStoreOptions = {
 *   store: new SqliteStore({ filename: 'passwords.db' }),
 *   id: (req) => req.params.serverId,
 *   cost: 13,
 *   pepper: process.env.PASSWORD_PEPPER,
 * };
 */
export interface HashAndStoreOptions {
  /** Where the hash is kept: a {@link MemoryStore}, a {@link SqliteStore} or your own. Required. */
  readonly store: PasswordStore;
  /**
   * Finds the id the password belongs to: a function, or a dotted path such as
   * `'params.id'` (see {@link RecordIdSource}). A request for which it finds nothing gets
   * a 500 (400 for an id the client sends in the body or query): guessing a key would
   * write the wrong record.
   * @default the `id` of the resource `requireOwnership` loaded, else `req.params.id`
   */
  readonly id?: RecordIdSource;
  /**
   * bcrypt cost (log2 of the rounds), from 10 to 31. Each step doubles the time of a
   * hash and of a guess; raising it later upgrades hashes as their owners verify.
   * @default 12
   */
  readonly cost?: number;
  /**
   * A server-side secret key (at least 32 bytes). When set, every password is
   * pre-hashed with HMAC-SHA-256 under it, base64-encoded, then given to bcrypt, so
   * passwords longer than bcrypt's 72 bytes are hashed whole, and a stolen database
   * alone is not enough to guess from. Keep it out of the database; losing it makes
   * every such record unverifiable. The verifier needs the same key.
   * @default undefined: no pre-hash; passwords over 72 UTF-8 bytes get 422 `too_long`
   */
  readonly pepper?: string | Uint8Array;
  /**
   * Caps concurrent and queued hashes; past the cap → 503 with `Retry-After`. Share one
   * with {@link passwordVerifier}: both use the same thread pool.
   * @default defaultHashLimiter(), one per process
   */
  readonly limiter?: HashLimiter;
  /**
   * `'set-once'` stores only where the id has no record (409 otherwise), the reviewed
   * API's contract. `'replace'` sets or overwrites it, for "change my password" and
   * "register": written with the store's compare-and-set, so of two concurrent changes
   * each one lands whole, and never over a record deleted in the meantime by a reset
   * that then sets a new one (a lost race after a few tries is 409 `password.conflict`).
   * Put the checks a change needs (ownership, the current password) before it.
   * @default 'set-once'
   */
  readonly mode?: 'set-once' | 'replace';
}

const optionKeys: KeysEnum<HashAndStoreOptions> = {
  store: true,
  id: true,
  cost: true,
  pepper: true,
  limiter: true,
  mode: true,
};

const REPLACE_TRIES = 5;

/**
 * What {@link hashAndStore} stored for this request, for the route's own handler. It
 * holds no hash: a handler that never sees one cannot send it.
 *
 * @example
 * const info: StoredPassword = { id: 'srv-1', setAt: '2026-11-28T18:04:34.000Z', scheme: 'bcrypt' };
 */
export interface StoredPassword {
  /** The id the record was stored under. */
  readonly id: string;
  /** When it was stored, ISO 8601 UTC. */
  readonly setAt: string;
  /** How the password was hashed. */
  readonly scheme: PasswordScheme;
}

const storedByRequest = requestSlot<StoredPassword>();

/**
 * What {@link hashAndStore} stored for `req`, or `undefined` before it succeeded.
 *
 * @example
 * app.post('/servers/:id/password', passwordBody(), hashAndStore({ store }), (req, res) => {
 *   res.status(201).json({ setAt: storedPassword(req)?.setAt });
 * });
 */
export function storedPassword(req: Request): StoredPassword | undefined {
  return storedByRequest.get(req);
}

/** The 409 of a set-once route whose id has a record; the sealing storer answers it too. */
export function alreadySetProblem(): ProblemError {
  return problem(409, 'password.already_set', 'A password is already set for this resource; delete it before setting another.');
}

function conflict(): ProblemError {
  return problem(409, 'password.conflict', 'The password was changed by another request at the same time; try again.');
}

/** Sets or overwrites the record of `id` with the store's atomic operations only. */
async function put(store: PasswordStore, id: string, record: PasswordRecord): Promise<boolean> {
  for (let tries = 0; tries < REPLACE_TRIES; tries++) {
    const current = checkedRecord(await store.get(id));
    const done =
      current === undefined
        ? checkedBoolean('setIfAbsent', await store.setIfAbsent(id, record))
        : checkedBoolean('replace', await store.replace(id, current.hash, record));
    if (done) return true;
  }
  return false;
}

/**
 * Hashes the validated password with bcrypt and stores only the hash, set-once by default (finding
 * 2: the reviewed handler stored it in clear, with a racy "set once" check). Mount it
 * after `passwordBody()`; on success the plaintext is forgotten, {@link storedPassword}
 * tells what was stored and `next()` runs your handler. Answers, through `next(err)`:
 * 409 `password.already_set` when the id has a record (decided by the store, atomically),
 * 422 `password.invalid` / `too_long` for more than 72 UTF-8 bytes without `pepper`,
 * 503 `password.busy` + `Retry-After` when the limiter is full (nothing hashed), and 500
 * `password.misconfigured` when no validated password or no id reaches it.
 *
 * @example
 * const store = new SqliteStore({ filename: 'passwords.db' });
 * app.post('/servers/:id/password', passwordBody(), hashAndStore({ store }), (_req, res) => {
 *   res.status(204).end();
 * });
 */
export function hashAndStore(options: HashAndStoreOptions): RequestHandler {
  assertKnownKeys('hashAndStore', options, optionKeys);
  const { store } = options;
  assertStore('hashAndStore', 'store', store);
  const readId = resolveIdReader('hashAndStore', options.id);
  const { cost, pepper, scheme } = resolveHashing('hashAndStore', options.cost, options.pepper);
  const limiter = resolveLimiter('hashAndStore', options.limiter);
  const mode = options.mode ?? 'set-once';
  if (mode !== 'set-once' && mode !== 'replace') {
    throw optionError('hashAndStore', 'mode', `must be 'set-once' or 'replace', got ${JSON.stringify(mode) ?? typeof mode}.`);
  }

  return asyncMiddleware('hashAndStore', async (req, _res, next) => {
    const password = takeValidatedPassword(req, 'password', 'hashAndStore');
    const id = requireRecordId(req, readId, 'password', 'hashAndStore');
    const input = bcryptInput(password, scheme, pepper);
    if (input === undefined) {
      next(tooLongProblem());
      return;
    }
    // Not the set-once guarantee (setIfAbsent is): it spares the pool a hash that is
    // bound to be refused, which would otherwise be a cheap way to keep it busy.
    if (mode === 'set-once' && checkedRecord(await store.get(id)) !== undefined) {
      next(alreadySetProblem());
      return;
    }
    const hashing = limitedHash(limiter, input, cost, callerKey(req));
    if (hashing === undefined) {
      next(busyProblem(limiter));
      return;
    }
    const hash = await hashing;
    markSecret(req, hash);
    const setAt = new Date().toISOString();
    const record = { hash, setAt, scheme };
    const written =
      mode === 'set-once' ? checkedBoolean('setIfAbsent', await store.setIfAbsent(id, record)) : await put(store, id, record);
    if (!written) {
      next(mode === 'set-once' ? alreadySetProblem() : conflict());
      return;
    }
    storedByRequest.set(req, { id, setAt, scheme });
    reportSecurityEvent(req, 'authn_password_change', { resource: id, action: 'set' });
    next();
  });
}
