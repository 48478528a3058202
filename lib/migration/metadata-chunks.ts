import { assertKnownKeys, hasMethods, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import type { SqliteDatabase, SqliteStatement } from '../stores/sqlite-store';
import type { MaybePromise } from '../stores/store';
import { SQL_IDENTIFIER } from '../internal/syntax';

/**
 * Where {@link migratePasswords} finds passwords an app kept outside any
 * {@link PasswordStore}, in clear, to move them into one. {@link MetadataChunks} reads
 * the reviewed API's layout; implement it for another.
 *
 * @example
 * const source: LegacyPasswordSource = {
 *   ids: () => db.prepare('SELECT id FROM users WHERE password IS NOT NULL').pluck().all(),
 *   read: (id) => db.prepare('SELECT password FROM users WHERE id = ?').pluck().get(id),
 *   clear: (id, expected) =>
 *     db.prepare('UPDATE users SET password = NULL WHERE id = ? AND password = ?').run(id, expected).changes === 1,
 * };
 */
export interface LegacyPasswordSource {
  /** Every id that may hold a password, each once. */
  ids(): Iterable<string> | AsyncIterable<string>;
  /** The plain-text password of `id`, or `undefined` (or `''`) when it has none. */
  read(id: string): MaybePromise<string | undefined>;
  /**
   * Erases the password of `id` only if it is still `expected` (compare-and-delete),
   * atomically, and tells whether it did.
   */
  clear(id: string, expected: string): MaybePromise<boolean>;
  /**
   * How {@link migratePasswords} stores the values it moves: `'hash'` (bcrypt, as
   * `hashAndStore` does) for secrets that are only ever checked; `'seal'` (AES-256-GCM, as
   * `encryptAndStore` does, so `revealSecret` hands them back; the migration then needs
   * `keys`) for secrets their owner fetches back, which a hash would make unrecoverable.
   * @default 'hash'
   */
  readonly mechanism?: SourceMechanism;
}

/** How a legacy source's values are stored: hashed (only ever checked) or sealed (handed back). */
export type SourceMechanism = 'hash' | 'seal';

/**
 * Options of {@link MetadataChunks}.
 *
 * @example
 * const options: MetadataChunksOptions = { database: db, table: 'instance_system_metadata' };
 */
export interface MetadataChunksOptions {
  /** The open, writable `better-sqlite3` database holding the table. Required. */
  readonly database: SqliteDatabase;
  /** The key-value table, one row per (id, key). Required. */
  readonly table: string;
  /** The column naming whose metadata a row is. @default 'instance_uuid' */
  readonly idColumn?: string;
  /** The column holding the metadata key. @default 'key' */
  readonly keyColumn?: string;
  /** The column holding the metadata value. @default 'value' */
  readonly valueColumn?: string;
  /**
   * The keys of the password's chunks start with it; they are joined in key order.
   * @default 'password_'
   */
  readonly keyPrefix?: string;
  /**
   * The soft-delete column: a row whose value there is not 0 (Nova sets it to the row's
   * id) is deleted, and, as for the API's own reader, no part of any password; it is
   * neither read, listed nor blanked. `false` reads every row.
   * @default 'deleted' when the table has that column, else `false`
   */
  readonly deletedColumn?: string | false;
}

const optionKeys: KeysEnum<MetadataChunksOptions> = {
  database: true,
  table: true,
  idColumn: true,
  keyColumn: true,
  valueColumn: true,
  keyPrefix: true,
  deletedColumn: true,
};

/**
 * The reviewed API's stored passwords, as a {@link LegacyPasswordSource}: each is split
 * into chunks kept as metadata rows (`password_0` … `password_3`, 255 characters each),
 * and read back, as its reader does, by joining in key order every value whose key
 * starts with `password_`. Clearing blanks those values, as the API's own clear does,
 * in one transaction that first checks they still join to the expected password.
 * Its values are the guest agent's password, already encrypted by the guest with the
 * instance's public key, which the owner fetches back (`nova get-password`): the
 * migration seals them (`mechanism` is `'seal'`), never hashes them.
 * Rows soft-deleted as Nova deletes them (`deleted` not 0) are skipped, as its reader
 * skips them (see `deletedColumn`).
 * Give the connection your {@link SqliteStore} uses when both are in one file:
 * {@link migratePasswords} then moves each password in one transaction.
 *
 * @example
 * const db = new Database('nova.db');
 * const store = new SqliteStore({ database: db });
 * const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
 * const keys = localKeyRing({ current: 'k1', keys: { k1: process.env.SEAL_KEY_K1 ?? '' } });
 * await migratePasswords({ store, source, keys, purpose: 'os-server-password' });
 */
export class MetadataChunks implements LegacyPasswordSource {
  /** The connection the chunks are read through. */
  readonly database: SqliteDatabase;
  /** Always `'seal'`: these values are handed back to their owner. */
  readonly mechanism: SourceMechanism = 'seal';
  readonly #ids: SqliteStatement;
  readonly #chunks: SqliteStatement;
  readonly #blank: SqliteStatement;
  readonly #prefix: string;

  constructor(options: MetadataChunksOptions) {
    assertKnownKeys('MetadataChunks', options, optionKeys);
    const db = options.database as Partial<SqliteDatabase> | undefined;
    if (!hasMethods(db, ['prepare', 'exec'])) {
      throw optionError('MetadataChunks', 'database', 'must be an open better-sqlite3 Database.');
    }
    const identifier = (option: keyof MetadataChunksOptions, value: unknown, fallback?: string): string => {
      const name = value ?? fallback;
      if (typeof name !== 'string' || !SQL_IDENTIFIER.test(name)) {
        throw optionError(
          'MetadataChunks',
          option,
          'must be an SQL identifier: letters, digits and _, not starting with a digit.',
        );
      }
      return name;
    };
    const table = identifier('table', options.table);
    const id = identifier('idColumn', options.idColumn, 'instance_uuid');
    const key = identifier('keyColumn', options.keyColumn, 'key');
    const value = identifier('valueColumn', options.valueColumn, 'value');
    const prefix = options.keyPrefix ?? 'password_';
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw optionError('MetadataChunks', 'keyPrefix', 'must be a non-empty string.');
    }
    this.database = options.database;
    const columns = new Set(
      (this.database.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as Array<{ name: string }>).map(
        (column) => column.name,
      ),
    );
    if (columns.size === 0) throw optionError('MetadataChunks', 'table', `names no table of this database: "${table}".`);
    const deleted = deletedColumn(options.deletedColumn, columns);
    // substr rather than LIKE: LIKE ignores case, and the reader's startswith does not.
    const isChunk = `substr("${key}", 1, ${[...prefix].length}) = ?${deleted === false ? '' : ` AND IFNULL("${deleted}", 0) = 0`}`;
    this.#ids = this.database.prepare(`SELECT DISTINCT "${id}" AS id FROM "${table}" WHERE ${isChunk} ORDER BY 1`);
    this.#chunks = this.database.prepare(
      `SELECT "${value}" AS value FROM "${table}" WHERE "${id}" = ? AND ${isChunk} ORDER BY "${key}" COLLATE BINARY`,
    );
    this.#blank = this.database.prepare(`UPDATE "${table}" SET "${value}" = '' WHERE "${id}" = ? AND ${isChunk}`);
    this.#prefix = prefix;
  }

  ids(): string[] {
    return (this.#ids.all(this.#prefix) as Array<{ id: unknown }>).map((row) => String(row.id));
  }

  read(id: string): string | undefined {
    const rows = this.#chunks.all(id, this.#prefix) as Array<{ value: unknown }>;
    const joined = rows.map((row) => (typeof row.value === 'string' ? row.value : '')).join('');
    return joined === '' ? undefined : joined;
  }

  clear(id: string, expected: string): boolean {
    return this.transaction(() => this.clearInTransaction(id, expected));
  }

  /** The compare-and-blank, for a caller already inside a transaction on {@link database}. */
  clearInTransaction(id: string, expected: string): boolean {
    if (this.read(id) !== expected) return false;
    this.#blank.run(id, this.#prefix);
    return true;
  }

  /**
   * Runs `work` in one write transaction on {@link database} (`BEGIN IMMEDIATE`, so no
   * other writer can slip in between its reads and writes), rolled back if it throws.
   */
  transaction<T>(work: () => T): T {
    this.database.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.database.exec('COMMIT');
      return result;
    } catch (error) {
      this.database.exec('ROLLBACK');
      throw error;
    }
  }
}

function deletedColumn(option: string | false | undefined, columns: ReadonlySet<string>): string | false {
  if (option === undefined) return columns.has('deleted') ? 'deleted' : false;
  if (option === false) return false;
  if (typeof option !== 'string' || !SQL_IDENTIFIER.test(option)) {
    throw optionError('MetadataChunks', 'deletedColumn', 'must be an SQL identifier or false.');
  }
  if (!columns.has(option)) {
    throw optionError('MetadataChunks', 'deletedColumn', `names no column of the table: "${option}".`);
  }
  return option;
}
