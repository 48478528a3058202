import { closeSync, openSync } from 'node:fs';
import { assertKnownKeys, hasMethods, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { loadBetterSqlite3 } from '../internal/load-better-sqlite3';
import type { PasswordRecord, PasswordStore } from './store';
import { SQL_IDENTIFIER } from '../internal/syntax';

/**
 * A prepared statement, as far as {@link SqliteStore} uses one.
 *
 * @example
 * const statement: SqliteStatement = db.prepare('SELECT 1');
 */
export interface SqliteStatement {
  run(...params: unknown[]): { readonly changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/**
 * The part of a `better-sqlite3` `Database` that {@link SqliteStore} uses. Declared here
 * so that this package's types do not require `@types/better-sqlite3`: any
 * `better-sqlite3` database fits it, and {@link SqliteStore.database} gives yours back
 * with its own type.
 *
 * @example
 * import Database from 'better-sqlite3';
 * const db: SqliteDatabase = new Database('app.db');
 */
export interface SqliteDatabase {
  readonly name: string;
  readonly open: boolean;
  readonly memory: boolean;
  readonly readonly: boolean;
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): SqliteStatement;
  close(): unknown;
}

/**
 * Options of {@link SqliteStore}: `filename` (the store opens and owns the file) or
 * `database` (your open connection, whose other tables the store leaves alone), not both.
 *
 * @example
 * const options: SqliteStoreOptions = { filename: 'passwords.db', table: 'server_passwords' };
 */
export interface SqliteStoreOptions<D extends SqliteDatabase = SqliteDatabase> {
  /**
   * Path of the database file, shared by every process that stores passwords. Created,
   * readable and writable by its owner only (mode 0600), if it does not exist.
   * `':memory:'` gives a private in-memory database (tests only: nothing is shared).
   * @default undefined: required unless `database` is given
   */
  readonly filename?: string;
  /**
   * An open, writable `better-sqlite3` database to keep the records in, so that an app
   * keeps its own tables in the same file. The store sets WAL mode on its file and
   * `synchronous=FULL` and `secure_delete=ON` on the connection (they then apply to the
   * app's tables too), and never closes it: that stays the app's job.
   * @default undefined: the store opens `filename`
   */
  readonly database?: D;
  /**
   * Table holding the records, created if missing. An SQL identifier: letters, digits
   * and `_`, not starting with a digit, at most 64 characters.
   * @default 'password_records'
   */
  readonly table?: string;
  /**
   * Milliseconds a write waits for another process's write to finish before failing.
   * The wait blocks this process's event loop, but WAL writes here last microseconds.
   * @default 5000 (with `database`: the connection's own setting, unless given)
   */
  readonly busyTimeout?: number;
}

const optionKeys: KeysEnum<SqliteStoreOptions> = { filename: true, database: true, table: true, busyTimeout: true };

const ID_PAGE = 500;

interface Row {
  readonly hash: string;
  readonly scheme: string;
  readonly set_at: string;
}

/**
 * A {@link PasswordStore} in a SQLite file through `better-sqlite3`: the embedded default
 * for a real deployment. Set-once is `INSERT … ON CONFLICT DO NOTHING` on the primary
 * key, so the database itself decides, and two processes sharing the file cannot both
 * win. WAL needs shared memory, so those processes must run on one host with the file on
 * a local filesystem, never over NFS or SMB. The file is in WAL mode (readers never
 * block the writer), with `synchronous=FULL` (a 204 means the hash survives a power cut)
 * and `secure_delete` (a deleted or replaced hash is zeroed, not left in free pages).
 * Methods are synchronous; call {@link SqliteStore.close} on shutdown. `better-sqlite3` is
 * an optional peer dependency of this package: `npm install better-sqlite3` to use this store.
 *
 * @example
 * const store = new SqliteStore({ filename: '/var/lib/myapp/passwords.db' });
 * process.on('SIGTERM', () => store.close());
 * // or, sharing the app's own connection and file:
 * const shared = new SqliteStore({ database: new Database('/var/lib/myapp/app.db') });
 */
export class SqliteStore<D extends SqliteDatabase = SqliteDatabase> implements PasswordStore {
  /** The file this store keeps its records in (`':memory:'` for an in-memory database). */
  readonly filename: string;
  /** The table the records are in. */
  readonly table: string;
  readonly #db: D;
  readonly #owned: boolean;
  readonly #insert: SqliteStatement;
  readonly #select: SqliteStatement;
  readonly #update: SqliteStatement;
  readonly #remove: SqliteStatement;
  readonly #firstIds: SqliteStatement;
  readonly #nextIds: SqliteStatement;

  constructor(options: SqliteStoreOptions<D>) {
    assertKnownKeys('SqliteStore', options, optionKeys);
    const { filename, database } = options;
    if (filename !== undefined && database !== undefined) {
      throw optionError('SqliteStore', 'database', 'cannot be given with "filename": pass one or the other.');
    }
    if (database === undefined && (typeof filename !== 'string' || filename.length === 0)) {
      throw optionError('SqliteStore', 'filename', 'must be the path of the database file (or pass an open "database").');
    }
    if (database !== undefined) assertDatabase(database);
    const table = options.table ?? 'password_records';
    if (typeof table !== 'string' || !SQL_IDENTIFIER.test(table)) {
      throw optionError(
        'SqliteStore',
        'table',
        'must be an SQL identifier: letters, digits and _, not starting with a digit, at most 64 characters.',
      );
    }
    const busyTimeout =
      integerOption('SqliteStore', 'busyTimeout', options.busyTimeout, 0, undefined, { unit: 'milliseconds' }) ??
      (database === undefined ? 5000 : undefined);

    let db: D;
    if (database === undefined) {
      const path = filename as string;
      // Before the file is created, so a missing package leaves no empty file behind.
      const Database = loadBetterSqlite3('SqliteStore: option "filename"');
      // SQLite creates the file with the process umask (often world-readable) and gives
      // the -wal and -shm files the database file's mode: creating it first decides all three.
      if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
      db = new Database(path, { timeout: busyTimeout }) as unknown as D;
    } else {
      db = database;
    }
    this.#db = db;
    this.#owned = database === undefined;
    this.filename = db.name;
    this.table = table;
    try {
      if (busyTimeout !== undefined) db.pragma(`busy_timeout = ${busyTimeout}`);
      if (!db.memory) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('secure_delete = ON');
      db.exec(
        `CREATE TABLE IF NOT EXISTS "${table}" (
          id TEXT PRIMARY KEY NOT NULL,
          hash TEXT NOT NULL,
          scheme TEXT NOT NULL,
          set_at TEXT NOT NULL
        ) STRICT, WITHOUT ROWID`,
      );
      this.#insert = db.prepare(
        `INSERT INTO "${table}" (id, hash, scheme, set_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      );
      this.#select = db.prepare(`SELECT hash, scheme, set_at FROM "${table}" WHERE id = ?`);
      this.#update = db.prepare(`UPDATE "${table}" SET hash = ?, scheme = ?, set_at = ? WHERE id = ? AND hash = ?`);
      this.#remove = db.prepare(`DELETE FROM "${table}" WHERE id = ?`);
      this.#firstIds = db.prepare(`SELECT id FROM "${table}" ORDER BY id LIMIT ${ID_PAGE}`);
      this.#nextIds = db.prepare(`SELECT id FROM "${table}" WHERE id > ? ORDER BY id LIMIT ${ID_PAGE}`);
    } catch (error) {
      if (this.#owned) db.close();
      throw error;
    }
  }

  setIfAbsent(id: string, record: PasswordRecord): boolean {
    return this.#insert.run(id, record.hash, record.scheme, record.setAt).changes === 1;
  }

  get(id: string): PasswordRecord | undefined {
    const row = this.#select.get(id) as Row | undefined;
    if (row === undefined) return undefined;
    // The row is a fresh object already: one frozen record, not a record and its copy.
    return Object.freeze({ hash: row.hash, setAt: row.set_at, scheme: row.scheme });
  }

  replace(id: string, expectedHash: string, record: PasswordRecord): boolean {
    return this.#update.run(record.hash, record.scheme, record.setAt, id, expectedHash).changes === 1;
  }

  delete(id: string): boolean {
    return this.#remove.run(id).changes === 1;
  }

  /**
   * Every id with a record, in id order, read a page at a time: no query stays open
   * between pages, so the records may be written while the ids are read.
   */
  *ids(): Generator<string, void, undefined> {
    let page = this.#firstIds.all() as Array<{ id: string }>;
    while (page.length > 0) {
      for (const row of page) yield row.id;
      const last = page[page.length - 1];
      if (last === undefined || page.length < ID_PAGE) return;
      page = this.#nextIds.all(last.id) as Array<{ id: string }>;
    }
  }

  /**
   * The connection the records are kept through: the one given as `database`, with its
   * own type, or the one the store opened (a `better-sqlite3` `Database`), for an app
   * that keeps its own tables in the same file. Closing it closes the store.
   */
  get database(): D {
    return this.#db;
  }

  /** Whether the database is still open. */
  get open(): boolean {
    return this.#db.open;
  }

  /**
   * Closes the database if the store opened it (`filename`); a `database` given to the
   * store is left open for its owner to close. Safe to call twice.
   */
  close(): void {
    if (this.#owned && this.#db.open) this.#db.close();
  }
}

function assertDatabase(database: unknown): asserts database is SqliteDatabase {
  if (!hasMethods(database, ['prepare', 'exec', 'pragma'])) {
    throw optionError('SqliteStore', 'database', 'must be a better-sqlite3 Database (new Database(filename)).');
  }
  const db = database as Partial<Record<keyof SqliteDatabase, unknown>>;
  if (db.open !== true) throw optionError('SqliteStore', 'database', 'must be open.');
  if (db.readonly === true) throw optionError('SqliteStore', 'database', 'must be writable, not opened readonly.');
}
