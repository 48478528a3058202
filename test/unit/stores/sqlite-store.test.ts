import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { SqliteStore } from '../../../lib';
import type { PasswordStore } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import { passwordApp } from '../../helpers/password';
import { storeContract } from '../../../lib/testing';

let dir: string;
let opened: SqliteStore[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-store-'));
});

afterEach(() => {
  for (const store of opened) store.close();
  opened = [];
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function freshFile(): string {
  files += 1;
  return join(dir, `passwords-${files}.db`);
}

function open(filename: string, table?: string): SqliteStore {
  const store = new SqliteStore(table === undefined ? { filename } : { filename, table });
  opened.push(store);
  return store;
}

storeContract('SqliteStore (a file)', {
  create: () => new SqliteStore({ filename: freshFile() }),
  destroy: (store: PasswordStore) => {
    (store as SqliteStore).close();
  },
});

const appDatabases = new WeakMap<PasswordStore, Database.Database>();
storeContract("SqliteStore (on an app's own database)", {
  create: () => {
    const db = new Database(freshFile());
    const store = new SqliteStore({ database: db, table: 'server_passwords' });
    appDatabases.set(store, db);
    return store;
  },
  destroy: (store: PasswordStore) => {
    appDatabases.get(store)?.close();
  },
});

const record = {
  hash: '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
  setAt: '2026-11-28T18:04:34.000Z',
  scheme: 'bcrypt',
};

describe('SqliteStore on a file', () => {
  test('the file is in WAL mode and created owner-only, with its WAL file', () => {
    const filename = freshFile();
    const store = open(filename);
    store.setIfAbsent('srv-1', record);
    const db = new Database(filename, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    if (process.platform !== 'win32') {
      expect(statSync(filename).mode & 0o777).toBe(0o600);
      expect(statSync(`${filename}-wal`).mode & 0o777).toBe(0o600);
    }
  });

  test('records survive closing and reopening the file', () => {
    const filename = freshFile();
    open(filename).setIfAbsent('srv-1', record);
    afterEachClose();
    expect(open(filename).get('srv-1')).toEqual(record);
  });

  test('two stores on one file share records and set-once', () => {
    const filename = freshFile();
    const a = open(filename);
    const b = open(filename);
    expect(a.setIfAbsent('srv-1', record)).toBe(true);
    expect(b.setIfAbsent('srv-1', { ...record, hash: `${record.hash.slice(0, -1)}x` })).toBe(false);
    expect(b.get('srv-1')).toEqual(record);
    expect(b.delete('srv-1')).toBe(true);
    expect(a.get('srv-1')).toBeUndefined();
  });

  test('the table option names the table, and tables in one file are independent', () => {
    const filename = freshFile();
    const servers = open(filename, 'server_passwords');
    const users = open(filename, 'User_Passwords_2');
    servers.setIfAbsent('x', record);
    expect(users.get('x')).toBeUndefined();
    const db = new Database(filename, { readonly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
      expect(tables).toEqual(['User_Passwords_2', 'server_passwords']);
    } finally {
      db.close();
    }
  });

  test('an existing database is reused, its other tables and its mode left alone', () => {
    const filename = freshFile();
    const db = new Database(filename);
    db.exec('CREATE TABLE app_data (x TEXT); INSERT INTO app_data VALUES (1)');
    db.close();
    chmodSync(filename, 0o640);
    open(filename).setIfAbsent('srv-1', record);
    afterEachClose();
    const check = new Database(filename, { readonly: true });
    try {
      expect(check.prepare('SELECT count(*) FROM app_data').pluck().get()).toBe(1);
    } finally {
      check.close();
    }
    if (process.platform !== 'win32') expect(statSync(filename).mode & 0o777).toBe(0o640);
  });

  test('an app keeps its own tables on the connection the store opened', () => {
    const filename = freshFile();
    const store = open(filename);
    const db = store.database as unknown as Database.Database;
    db.exec('CREATE TABLE servers (id TEXT PRIMARY KEY)');
    db.prepare('INSERT INTO servers VALUES (?)').run('srv-1');
    store.setIfAbsent('srv-1', record);
    expect(store.filename).toBe(filename);
    expect(db.prepare('SELECT count(*) FROM servers').pluck().get()).toBe(1);
  });

  test("a store on an app's database shares its file, sets WAL, and leaves closing to the app", () => {
    const filename = freshFile();
    const db = new Database(filename);
    try {
      db.exec('CREATE TABLE servers (id TEXT PRIMARY KEY); INSERT INTO servers VALUES (1)');
      const store = new SqliteStore({ database: db, busyTimeout: 1234 });
      expect(store.database).toBe(db);
      expect(store.filename).toBe(filename);
      expect(store.table).toBe('password_records');
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('busy_timeout', { simple: true })).toBe(1234);
      expect(db.pragma('secure_delete', { simple: true })).toBe(1);
      expect(store.setIfAbsent('srv-1', record)).toBe(true);
      // A second store opened on the file sees the record: it is in the shared file.
      const other = open(filename);
      expect(other.get('srv-1')).toEqual(record);
      store.close();
      expect(db.open).toBe(true);
      expect(db.prepare('SELECT count(*) FROM servers').pluck().get()).toBe(1);
    } finally {
      db.close();
    }
  });

  test("':memory:' gives a private database", () => {
    const a = new SqliteStore({ filename: ':memory:' });
    const b = new SqliteStore({ filename: ':memory:' });
    opened.push(a, b);
    a.setIfAbsent('x', record);
    expect(b.get('x')).toBeUndefined();
    expect(existsSync(':memory:')).toBe(false);
  });

  test('close is idempotent and a closed store throws rather than answer', () => {
    const store = new SqliteStore({ filename: freshFile() });
    store.close();
    store.close();
    expect(store.open).toBe(false);
    expect(() => store.get('x')).toThrow();
  });
});

function afterEachClose(): void {
  for (const store of opened) store.close();
  opened = [];
}

describe('SqliteStore options', () => {
  test.each([
    ['x; DROP TABLE users', /option "table" must be an SQL identifier/],
    ['1passwords', /option "table" must be an SQL identifier/],
    ['pass-words', /option "table" must be an SQL identifier/],
    ['"quoted"', /option "table" must be an SQL identifier/],
    ['', /option "table" must be an SQL identifier/],
    ['a'.repeat(65), /option "table" must be an SQL identifier/],
    [42, /option "table" must be an SQL identifier/],
  ])('table %j throws', (table, message) => {
    expect(() => new SqliteStore({ filename: ':memory:', table } as never)).toThrow(message);
  });

  test('filename is required and busyTimeout must be a whole number of ms', () => {
    expect(() => new SqliteStore({} as never)).toThrow(/option "filename" must be the path/);
    expect(() => new SqliteStore({ filename: '' })).toThrow(/option "filename"/);
    expect(() => new SqliteStore({ filename: ':memory:', busyTimeout: -1 })).toThrow(
      /option "busyTimeout" must be a whole number of milliseconds, 0 or more, got -1\./,
    );
    expect(() => new SqliteStore({ filename: ':memory:', busyTimeout: 1.5 })).toThrow(/option "busyTimeout"/);
  });

  test('database is checked: one of filename or database, open, writable', () => {
    const filename = freshFile();
    const db = new Database(filename);
    try {
      expect(() => new SqliteStore({ filename, database: db })).toThrow(/option "database" cannot be given with "filename"/);
      expect(() => new SqliteStore({ database: {} } as never)).toThrow(/option "database" must be a better-sqlite3 Database/);
      expect(() => new SqliteStore({ database: null } as never)).toThrow(/option "database" must be a better-sqlite3 Database/);
    } finally {
      db.close();
    }
    expect(() => new SqliteStore({ database: db })).toThrow(/option "database" must be open/);
    const readonly = new Database(filename, { readonly: true });
    try {
      expect(() => new SqliteStore({ database: readonly })).toThrow(/option "database" must be writable/);
    } finally {
      readonly.close();
    }
  });

  test('unknown options throw with a suggestion', () => {
    expect(() => new SqliteStore({ filename: ':memory:', tabel: 'x' } as never)).toThrow(
      /unknown option "tabel"\. Did you mean "table"\?/,
    );
  });
});

// better-sqlite3 is an optional peer dependency: the rest of the package loads without it.
describe('SqliteStore in a project without better-sqlite3', () => {
  const ROOT = join(__dirname, '..', '..', '..');

  function withoutBetterSqlite3(script: string): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync(
      process.execPath,
      ['--require', './test/fixtures/without-optional-peers.cjs', '--import', 'tsx', '--eval', script],
      { cwd: ROOT, encoding: 'utf8' },
    );
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  test('the package loads and its other stores work', () => {
    const result = withoutBetterSqlite3(
      "const { MemoryStore, SqliteStore } = require('./lib'); new MemoryStore().setIfAbsent('a', { hash: 'h', setAt: 'now', scheme: 'bcrypt' }); console.log(typeof SqliteStore);",
    );
    expect(result).toMatchObject({ status: 0, stdout: 'function\n' });
  });

  test('new SqliteStore({ filename }) throws naming the install command, and creates no file', () => {
    const filename = freshFile();
    const result = withoutBetterSqlite3(
      `const { SqliteStore } = require('./lib'); try { new SqliteStore({ filename: ${JSON.stringify(filename)} }); } catch (error) { console.log(error.message); }`,
    );
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      'SqliteStore: option "filename" needs the better-sqlite3 package, which is not installed: run "npm install better-sqlite3" in your project.\n',
    );
    expect(existsSync(filename)).toBe(false);
  });
});

describe.each(expressVersions)('a password stored in SQLite on %s', (_name, express) => {
  test('leaves no plaintext anywhere in the database, WAL or shared-memory files', async () => {
    const filename = freshFile();
    const store = open(filename);
    const app = passwordApp(express, { store, cost: 10 });
    const password = 'Plaintext-Canary-4f1c-Ünïcödé-密码';
    const res = await request(app).post('/servers/srv-1/password').send({ password });
    expect(res.status).toBe(201);
    const hash = store.get('srv-1')?.hash ?? '';
    expect(hash).toMatch(/^\$2b\$10\$/);

    const expectNoPlaintext = (all: Buffer): void => {
      // The hash is found, so these are the bytes the record went to…
      expect(all.includes(Buffer.from(hash))).toBe(true);
      // …and the password is in none of them, in any likely encoding or part.
      for (const needle of [password, password.normalize('NFD'), 'Plaintext-Canary', '密码']) {
        expect(all.includes(Buffer.from(needle, 'utf8'))).toBe(false);
        expect(all.includes(Buffer.from(needle, 'utf16le'))).toBe(false);
      }
      expect(all.includes(Buffer.from(Buffer.from(password).toString('base64')))).toBe(false);
    };

    // While the store is open the new record is in the WAL file, not yet in the main one.
    const wal = readFileSync(`${filename}-wal`);
    expect(wal.includes(Buffer.from(hash))).toBe(true);
    expectNoPlaintext(
      Buffer.concat(
        [filename, `${filename}-wal`, `${filename}-shm`].filter((file) => existsSync(file)).map((file) => readFileSync(file)),
      ),
    );

    // Closing checkpoints the WAL into the main file and removes it: check that file too.
    afterEachClose();
    expect(existsSync(`${filename}-wal`)).toBe(false);
    expectNoPlaintext(readFileSync(filename));
  });
});
