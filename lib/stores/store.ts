import { missingMethods } from '../internal/options';

/**
 * A value, or a promise of it: a store may be synchronous (SQLite) or not (Redis).
 *
 * @example
 * const found: MaybePromise<PasswordRecord | undefined> = store.get('srv-1');
 * const record = await found;
 */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What a store keeps for one id: the bcrypt hash, which carries its own algorithm
 * version, cost and salt (or, for a secret that must be handed back, its AES-256-GCM
 * sealed value), and when the password was set. Nothing else secret, and never the
 * password.
 *
 * @example
 * const record: PasswordRecord = {
 *   hash: '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW',
 *   setAt: '2026-11-28T18:04:34.000Z',
 *   scheme: 'bcrypt',
 * };
 */
export interface PasswordRecord {
  /**
   * The bcrypt hash (`$2b$<cost>$<salt><checksum>`), a legacy record's stored value, or
   * a sealed value (`v1.<nonce>.<ciphertext>.<tag>`, see {@link encryptAndStore}).
   */
  readonly hash: string;
  /**
   * When the password was set, as an ISO 8601 UTC string (`Date#toISOString()`): a
   * string rather than a `Date` so that every database, JSON and Redis keeps it as is.
   * A rehash keeps it: the password did not change.
   */
  readonly setAt: string;
  /**
   * How the password was turned into `hash`: `'bcrypt'` (the password itself) or
   * `'bcrypt+hmac-sha256'` (HMAC-SHA-256 of the password under the pepper, base64).
   * Records of an app's earlier scheme (see {@link LegacyScheme}) name it: `'plain'`
   * (`hash` holds the password itself), `'md5'`, `'sha1'`, `'sha256'` (lowercase hex
   * digest) or yours; once {@link migratePasswords} wrapped them, `'bcrypt+md5'` and so
   * on (bcrypt over that digest). `'aes-256-gcm:<key id>'` for a value sealed by
   * {@link encryptAndStore}, which is revealed, never verified. A plain string, not a
   * union, so that a store keeps any of them; the verifier refuses a scheme it does not
   * know.
   */
  readonly scheme: string;
}

/**
 * Where hashed passwords are kept, one record per id. Implement it over your own
 * database and run `storeContract` from `express-password-guard/testing` against it: the
 * suite every store must pass (docs/store-contract.md). Each method may return its value
 * or a promise of it. Records handed in must not be mutated later by the store's caller,
 * and records handed out are the caller's to keep: copy, never share.
 *
 * @example
 * const store: PasswordStore = {
 *   setIfAbsent: (id, record) => db.insertUnlessExists(id, record),
 *   get: (id) => db.find(id),
 *   replace: (id, expectedHash, record) => db.updateWhere({ id, hash: expectedHash }, record),
 *   delete: (id) => db.remove(id),
 * };
 */
export interface PasswordStore {
  /**
   * Stores `record` only if `id` has none, atomically: of any number of concurrent
   * calls for one id, from any number of processes, exactly one resolves `true`.
   * A read followed by a write is not enough (that was the reviewed handler's bug).
   */
  setIfAbsent(id: string, record: PasswordRecord): MaybePromise<boolean>;
  /** The record of `id`, or `undefined`. */
  get(id: string): MaybePromise<PasswordRecord | undefined>;
  /**
   * Replaces the record of `id` only if its current hash is `expectedHash`, atomically
   * (compare-and-set), and tells whether it did. Absent id → `false`, nothing written.
   * Used to upgrade a hash after a successful verify: the condition keeps a slow rehash
   * from bringing back a password deleted, or overwriting one set, in the meantime.
   */
  replace(id: string, expectedHash: string, record: PasswordRecord): MaybePromise<boolean>;
  /** Removes the record of `id`; `true` if there was one. */
  delete(id: string): MaybePromise<boolean>;
  /**
   * Every id that has a record, each once, in any order. Optional: only
   * {@link migratePasswords} (and the `migrate` command) needs it, to visit every record.
   * Records set or deleted while it runs may or may not be listed.
   */
  ids?(): Iterable<string> | AsyncIterable<string>;
}

/**
 * Where a verifier reads the records it checks, when it never writes them: an app's
 * existing user table, read-only. `replace` is optional; without it nothing is upgraded
 * (a read-only source cannot take a rehash). A full {@link PasswordStore} is one too.
 *
 * @example
 * const users: PasswordSource = {
 *   get: (email) => {
 *     const row = db.prepare('SELECT password FROM users WHERE email = ?').get(email);
 *     return row === undefined ? undefined : { hash: row.password, scheme: 'md5', setAt: '1970-01-01T00:00:00.000Z' };
 *   },
 * };
 */
export interface PasswordSource {
  /** The record of `id`, or `undefined`. */
  get(id: string): MaybePromise<PasswordRecord | undefined>;
  /** As {@link PasswordStore.replace}; only needed for rehashing on a match. */
  replace?(id: string, expectedHash: string, record: PasswordRecord): MaybePromise<boolean>;
}

const STORE_METHODS = ['setIfAbsent', 'get', 'replace', 'delete'] as const;

/**
 * Throws a `TypeError` naming the option unless `source` has `get` (and, when it has a
 * `replace`, a three-parameter one). Factories that only read records call it.
 */
export function assertSource(factory: string, option: string, source: unknown): asserts source is PasswordSource {
  if (typeof source !== 'object' || source === null || typeof (source as PasswordSource).get !== 'function') {
    throw new TypeError(
      `${factory}: option "${option}" must be a password store, or a read-only source with a get(id) method, got ${source === null ? 'null' : typeof source}${typeof source === 'object' && source !== null ? ' without get' : ''}.`,
    );
  }
  const replace: unknown = (source as Record<string, unknown>)['replace'];
  if (replace !== undefined) {
    if (typeof replace !== 'function') {
      throw new TypeError(`${factory}: option "${option}" has a replace that is not a function.`);
    }
    assertReplaceArity(factory, option, replace);
  }
}

function assertReplaceArity(factory: string, option: string, replace: { readonly length: number }): void {
  // Fewer than three declared parameters is almost surely not the compare-and-set: (id,
  // record) would write the expected hash as a record, and () => true is a stub that
  // claims writes it never made. A wrapper must name its three parameters.
  if (replace.length < 3) {
    throw new TypeError(
      `${factory}: option "${option}" has replace with ${replace.length} declared parameter${replace.length === 1 ? '' : 's'}; a password store's replace is replace(id, expectedHash, record), a compare-and-set. A store that only reads is a password source: give an object with get only.`,
    );
  }
}

/**
 * Throws a `TypeError` naming the option unless `store` has every method of a
 * {@link PasswordStore}. Every factory taking a store calls it at construction.
 *
 * @example
 * assertStore('myMiddleware', 'store', options.store);
 */
export function assertStore(factory: string, option: string, store: unknown): asserts store is PasswordStore {
  if (typeof store !== 'object' || store === null) {
    throw new TypeError(
      `${factory}: option "${option}" must be a password store (a MemoryStore, a SqliteStore or an object with ${STORE_METHODS.join(', ')}), got ${store === null ? 'null' : typeof store}.`,
    );
  }
  const missing = missingMethods(store, STORE_METHODS);
  if (missing.length > 0) {
    throw new TypeError(`${factory}: option "${option}" is not a password store: it has no ${missing.join(', ')} method.`);
  }
  assertReplaceArity(factory, option, (store as PasswordStore).replace);
}

/**
 * Checks what a store returned before it is trusted: a corrupt row or a buggy store must
 * end in a 500, never in a compare against `undefined` or a set that looks absent.
 */
export function checkedRecord(value: unknown): PasswordRecord | undefined {
  if (value === undefined || value === null) return undefined;
  const record = (typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if (typeof record['hash'] !== 'string' || typeof record['setAt'] !== 'string' || typeof record['scheme'] !== 'string') {
    throw new TypeError('The password store returned a malformed record (expected { hash, setAt, scheme } strings).');
  }
  return value as PasswordRecord;
}

/**
 * `value` if it is the boolean a store method promises; throws otherwise (a 500, never a
 * guess). `whose` names the method's owner in the message.
 */
export function checkedBoolean(method: string, value: unknown, whose = "The password store's"): boolean {
  if (typeof value !== 'boolean') {
    throw new TypeError(`${whose} ${method} returned ${typeof value}, not a boolean.`);
  }
  return value;
}

/** A copy of `record` with exactly the fields a store keeps, frozen. */
export function copyRecord(record: PasswordRecord): PasswordRecord {
  return Object.freeze({ hash: record.hash, setAt: record.setAt, scheme: record.scheme });
}
