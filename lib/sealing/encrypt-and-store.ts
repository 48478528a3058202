import type { Request, RequestHandler } from 'express';
import { maybeAsyncMiddleware, whenReady } from '../internal/async';
import { problem } from '../internal/errors';
import { alreadySetProblem } from '../hashing/hash-and-store';
import { assertKeyProvider } from './key-ring';
import type { KeyProvider } from './key-ring';
import { assertBoolean, assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { requireRecordId, resolveIdReader } from '../access/record-id';
import type { RecordIdReader } from '../access/record-id';
import { takeValidatedPassword } from '../body/validated-password';
import { existingSecrets, markRevealed, markSecret, requestSecrets, revealedFor } from '../internal/secrets';
import { reportSecurityEvent } from '../http/security-events';
import { currentKey, currentKeyId, isSealedScheme, keyById, open, seal, sealedKeyId, sealedScheme } from './aes-gcm';
import { assertStore, checkedBoolean, checkedRecord } from '../stores/store';
import type { MaybePromise, PasswordRecord, PasswordStore } from '../stores/store';

/**
 * Options of {@link encryptAndStore}.
 *
 * @example
 * const options: EncryptAndStoreOptions = {
 *   store: new SqliteStore({ filename: 'data/secrets.db' }),
 *   keys: localKeyRing({ current: 'k1', keys: { k1: process.env.SEAL_KEY_K1 ?? '' } }),
 *   purpose: 'admin-password',
 * };
 */
export interface EncryptAndStoreOptions {
  /** Where the sealed value is kept: a {@link MemoryStore}, {@link SqliteStore}, {@link RedisStore} or yours. Required. */
  readonly store: PasswordStore;
  /** The AES-256 keys: {@link localKeyRing} or a provider of your own (KMS, Vault). Required. */
  readonly keys: KeyProvider;
  /**
   * Finds the id the value belongs to. A request for which it returns nothing gets a
   * 500: the route is miswired, and guessing a key would write the wrong record.
   * @default (req) => req.params.id
   */
  readonly recordId?: RecordIdReader;
  /**
   * A label sealed into every value as associated data, with the record id: a value
   * sealed for one purpose does not open under another. The reveal route must use the
   * same one. Letters, digits, `.`, `_`, `-` and `:`, at most 64 characters.
   * @default 'password'
   */
  readonly purpose?: string;
}

/**
 * Options of {@link revealSecret}.
 *
 * @example
 * const options: RevealSecretOptions = { store, keys, purpose: 'admin-password' };
 */
export interface RevealSecretOptions {
  /** The storer's store. Required. */
  readonly store: PasswordStore;
  /** The storer's key provider, with every key still in use. Required. */
  readonly keys: KeyProvider;
  /**
   * Finds the id whose value is revealed; runs after the ownership check.
   * @default (req) => req.params.id
   */
  readonly recordId?: RecordIdReader;
  /** The storer's purpose. @default 'password' */
  readonly purpose?: string;
  /**
   * Re-seal a value read under an older key under the current one (compare-and-set,
   * keeping `setAt`), so that records move to the new key as they are read.
   * @default true
   */
  readonly rotate?: boolean;
}

const storerKeys: KeysEnum<EncryptAndStoreOptions> = { store: true, keys: true, recordId: true, purpose: true };
const revealKeys: KeysEnum<RevealSecretOptions> = { store: true, keys: true, recordId: true, purpose: true, rotate: true };

const PURPOSE = /^[A-Za-z0-9._:-]{1,64}$/;
export const DEFAULT_PURPOSE = 'password';

export function resolvePurpose(factory: string, value: unknown): string {
  if (value === undefined) return DEFAULT_PURPOSE;
  if (typeof value !== 'string' || !PURPOSE.test(value)) {
    throw optionError(
      factory,
      'purpose',
      'must be a label of letters, digits, ".", "_", "-" and ":", at most 64 characters, such as "admin-password".',
    );
  }
  return value;
}

/**
 * What {@link encryptAndStore} stored for this request, for the route's own handler. It
 * holds neither the value nor the sealed value.
 *
 * @example
 * const info: SealedSecret = { id: 'srv-1', setAt: '2026-11-28T18:04:34.000Z', keyId: 'k2' };
 */
export interface SealedSecret {
  /** The id the record was stored under. */
  readonly id: string;
  /** When it was stored, ISO 8601 UTC. */
  readonly setAt: string;
  /** The id of the key it was sealed under. */
  readonly keyId: string;
}

/**
 * What {@link encryptAndStore} stored for `req`, or `undefined` before it succeeded.
 *
 * @example
 * app.post('/servers/:id/secret', passwordBody(), encryptAndStore({ store, keys }), (req, res) => {
 *   res.status(201).json({ setAt: sealedSecret(req)?.setAt });
 * });
 */
export function sealedSecret(req: Request): SealedSecret | undefined {
  return existingSecrets(req)?.sealed;
}

/**
 * The value {@link revealSecret} opened for `req`: the plaintext as it was posted, or
 * `undefined` when the id has no record. Send it only through the response encoder,
 * which lets this value (and no other) through under its redacted `password` key.
 *
 * @example
 * app.get('/servers/:id/secret', owns, revealSecret({ store, keys }), (req, res) => {
 *   res.json({ password: revealedSecret(req) ?? '' });
 * });
 */
export function revealedSecret(req: Request): string | undefined {
  return revealedFor(req)?.value;
}

/**
 * The outcome of opening a stored record: its plaintext, or why not (never the value,
 * the sealed value or a key).
 */
export type Opened = { readonly plaintext: string; readonly keyId: string } | { readonly failure: string };

/** Opens a sealed record of `id`; a record that is not sealed is a failure too. */
export function openRecord(keys: KeyProvider, purpose: string, id: string, record: PasswordRecord): MaybePromise<Opened> {
  if (!isSealedScheme(record.scheme)) return { failure: `scheme "${record.scheme}" is not a sealed one` };
  const keyId = sealedKeyId(record.scheme);
  if (keyId === undefined) return { failure: 'its scheme names no valid key id' };
  return whenReady(keyById(keys, keyId), (key): Opened => {
    if (key === undefined) return { failure: `it was sealed under key "${keyId}", which the key provider does not have` };
    const opened = open(record.hash, key, purpose, id, keyId);
    return 'failure' in opened ? { failure: opened.failure } : { plaintext: opened.plaintext, keyId };
  });
}

/** `plaintext` sealed for `id` under the current key, as a record set at `setAt`. */
export function sealedRecord(
  keys: KeyProvider,
  purpose: string,
  id: string,
  plaintext: string,
  setAt: string,
): MaybePromise<PasswordRecord> {
  return whenReady(
    currentKey(keys),
    ({ keyId, key }): PasswordRecord => ({ hash: seal(plaintext, key, purpose, id, keyId), setAt, scheme: sealedScheme(keyId) }),
  );
}

/** The options both sealing middlewares share, checked in the order each names them. */
function resolveSealing<O extends EncryptAndStoreOptions>(
  name: string,
  options: O,
  known: KeysEnum<O>,
): { store: PasswordStore; keys: KeyProvider; readId: ReturnType<typeof resolveIdReader>; purpose: string } {
  assertKnownKeys(name, options, known);
  const { store, keys } = options;
  assertStore(name, 'store', store);
  assertKeyProvider(name, 'keys', keys);
  return {
    store,
    keys,
    readId: resolveIdReader(name, options.recordId, 'recordId'),
    purpose: resolvePurpose(name, options.purpose),
  };
}

/**
 * Encrypts the validated value at rest and stores it set-once, for a secret that must be
 * handed back to its owner (finding 2, the half hashing cannot fix): AES-256-GCM under
 * the key provider's current key, a fresh random 96-bit nonce per write, and the purpose,
 * record id and key id as associated data, so a sealed value copied onto another record
 * does not open. The record's scheme is `aes-256-gcm:<key id>`. Mount it after
 * `passwordBody()`; on success the plaintext is forgotten, {@link sealedSecret} tells what
 * was stored and `next()` runs your handler. Answers, through `next(err)`: 409
 * `password.already_set` when the id has a record (hashed or sealed; decided by the
 * store, atomically), and 500 `password.misconfigured` when no validated value or no id
 * reaches it, or the key provider cannot give its current key.
 *
 * A secret that is only ever checked is hashed instead ({@link hashAndStore}).
 *
 * @example
 * const keys = localKeyRing({ current: 'k1', keys: { k1: process.env.SEAL_KEY_K1 ?? '' } });
 * app.post('/servers/:id/secret', owns, passwordBody(), encryptAndStore({ store, keys }), (_req, res) => {
 *   res.status(204).end();
 * });
 */
export function encryptAndStore(options: EncryptAndStoreOptions): RequestHandler {
  const { store, keys, readId, purpose } = resolveSealing('encryptAndStore', options, storerKeys);

  // Written with whenReady rather than await: with a synchronous store and key provider
  // (SQLite or memory, localKeyRing) the whole seal and write run in this call. The
  // misconfiguration checks throw, and maybeAsyncMiddleware hands that to next(err).
  return maybeAsyncMiddleware('encryptAndStore', (req, _res, next) => {
    const value = takeValidatedPassword(req, 'secret', 'encryptAndStore');
    markSecret(req, value);
    const id = requireRecordId(req, readId, 'secret', 'encryptAndStore', 'recordId');
    return whenReady(sealedRecord(keys, purpose, id, value, new Date().toISOString()), (record) => {
      markSecret(req, record.hash);
      return whenReady(store.setIfAbsent(id, record), (stored) => {
        if (!checkedBoolean('setIfAbsent', stored)) {
          next(alreadySetProblem());
          return;
        }
        requestSecrets(req).sealed = { id, setAt: record.setAt, keyId: sealedKeyId(record.scheme) ?? '' };
        reportSecurityEvent(req, 'sensitive_create', { resource: id, action: 'set' });
        next();
      });
    });
  });
}

/**
 * The reading counterpart of {@link encryptAndStore}: mount it after the ownership check
 * on the owner's `GET`. It reads the route's record, checks its tag and associated data,
 * and hands the plaintext to the next handler through {@link revealedSecret} (`undefined`
 * when nothing is stored). The value is marked secret for the request (scrubbed from any
 * logged error) and the response gets `Cache-Control: no-store`. A record sealed under an
 * older key is re-sealed under the current one (`rotate`).
 *
 * Fails closed, through `next(err)`: a record that does not open (altered, truncated,
 * moved from another record, an unknown key id) is the generic 500, and the log gets the
 * record id and the reason only; a hashed record on this route is a 500
 * `password.wrong_mechanism` (a hash cannot be revealed, and is never sent).
 *
 * @example
 * app.get('/servers/:id/secret', responseEncoder(), owns, revealSecret({ store, keys }), (req, res) => {
 *   res.json({ password: revealedSecret(req) ?? '' });
 * });
 */
export function revealSecret(options: RevealSecretOptions): RequestHandler {
  const { store, keys, readId, purpose } = resolveSealing('revealSecret', options, revealKeys);
  assertBoolean('revealSecret', 'rotate', options.rotate);
  const rotate = options.rotate ?? true;

  return maybeAsyncMiddleware('revealSecret', (req, res, next) => {
    const id = requireRecordId(req, readId, 'secret', 'revealSecret', 'recordId');
    res.setHeader('Cache-Control', 'no-store');
    const reveal = (plaintext: string): void => {
      reportSecurityEvent(req, 'sensitive_read', { resource: id, action: 'reveal' });
      markRevealed(req, plaintext);
      next();
    };
    return whenReady(store.get(id), (found) => {
      const record = checkedRecord(found);
      if (record === undefined) {
        markRevealed(req, undefined);
        next();
        return;
      }
      markSecret(req, record.hash);
      if (!isSealedScheme(record.scheme)) {
        next(
          wrongMechanism(
            `The secret route is misconfigured: record "${id}" was hashed (scheme "${record.scheme}"), and a hash cannot be revealed; hashed secrets are checked with passwordVerifier.`,
          ),
        );
        return;
      }
      return whenReady(openRecord(keys, purpose, id, record), (opened) => {
        if ('failure' in opened) {
          // Not a problem of ours: the client gets the generic 500, the log the id and reason.
          reportSecurityEvent(req, 'sensitive_read_fail', { resource: id });
          next(new Error(`revealSecret: the sealed record "${id}" did not open: ${opened.failure}.`));
          return;
        }
        markSecret(req, opened.plaintext);
        if (!rotate) {
          reveal(opened.plaintext);
          return;
        }
        // Only the id here: the key itself is fetched (and checked) when a re-seal is due.
        return whenReady(currentKeyId(keys), (currentId) => {
          if (currentId === opened.keyId) {
            reveal(opened.plaintext);
            return;
          }
          return whenReady(sealedRecord(keys, purpose, id, opened.plaintext, record.setAt), (resealed) => {
            markSecret(req, resealed.hash);
            // A record deleted or set again meanwhile is left as it is: the CAS refuses.
            return whenReady(store.replace(id, record.hash, resealed), (replaced) => {
              if (checkedBoolean('replace', replaced))
                reportSecurityEvent(req, 'sensitive_update', { resource: id, action: 'rekey' });
              reveal(opened.plaintext);
            });
          });
        });
      });
    });
  });
}

/** The refusal of a route that would reveal a hash or verify a sealed value. */
export function wrongMechanism(detail: string): ReturnType<typeof problem> {
  return problem(500, 'password.wrong_mechanism', detail);
}
