#!/usr/bin/env node
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type BetterSqlite3 from 'better-sqlite3';
import { DEFAULT_PURPOSE } from '../sealing/encrypt-and-store';
import { localKeyRing } from '../sealing/key-ring';
import type { KeyProvider, LocalKeyRingOptions } from '../sealing/key-ring';
import type { LegacyScheme } from '../hashing/legacy-schemes';
import { migratePasswords } from './migrate-passwords';
import type { MigrationFailure, MigrationProgress, MigrationSummary } from './migrate-passwords';
import { MetadataChunks } from './metadata-chunks';
import type { LegacyPasswordSource } from './metadata-chunks';
import { maskRedisUrl, redisUrlHasCredential } from '../stores/redis-url';
import { RedisStore } from '../stores/redis-store';
import type { RedisStoreClient } from '../stores/redis-store';
import { loadBetterSqlite3 } from '../internal/load-better-sqlite3';
import { SqliteStore } from '../stores/sqlite-store';
import type { PasswordRecord, PasswordStore } from '../stores/store';
import { SQL_IDENTIFIER } from '../internal/syntax';

const USAGE = `Usage: express-password-guard migrate [options]

Upgrades stored passwords to bcrypt without a reset: plain-text records are hashed,
MD5, SHA-1 and SHA-256 digests are wrapped in bcrypt at once (and replaced by a plain
bcrypt hash at their next successful verify). With the sealing storer's keys, values
sealed under an older key are re-sealed under the current one, and the reviewed API's
guest passwords are moved into sealed records. Safe to run again, and to stop at any
point: each record is replaced atomically, and a second run changes nothing.

Store (exactly one):
  --sqlite <file>               a SqliteStore file
  --redis <url>                 a RedisStore (needs the ioredis package); a URL that
                                holds a password is refused here (any local user
                                reads a command line): use --redis-env or --redis-file
  --redis-env <VAR>             the Redis URL from environment variable VAR
  --redis-file <file>           the Redis URL from a file (its first line)
  --module <file>               a module exporting a store with ids(): as default
                                export, as "store", or a function returning one
  --table <name>                the SqliteStore table (default password_records)
  --prefix <prefix>             the RedisStore key prefix (default epg:password:)

Guest passwords kept in clear in the reviewed API's layout (sealed into the store, as
encryptAndStore does, so that the owner gets them back; never hashed, which would
make them unrecoverable; needs --keys-env or --keys-file):
  --metadata-table <name>       key-value table holding the password_0 … password_3 chunks
  --metadata-db <file>          its SQLite file (default: the --sqlite file)
  --metadata-id-column <name>   (default instance_uuid)
  --metadata-key-column <name>  (default key)
  --metadata-value-column <name> (default value)
  --metadata-record-id <template> the store record id of each instance's password, {id}
                                standing for the instance id, as your reveal route reads
                                it (default {id}; the demo's: {id}/os-server-password)

Hashing (use the storer's settings):
  --cost <n>                    bcrypt cost, 10 to 31 (default 12)
  --pepper-env <VAR>            read the storer's pepper from environment variable VAR;
                                without it, plain text over 72 bytes is reported failed
  --schemes <file>              a module exporting legacy schemes of your own (an array,
                                as default export or as "schemes")

Sealed records (sealed and re-sealed under the current key; keys never go on the
command line):
  --keys-env <VAR>              read the key ring from environment variable VAR
  --keys-file <file>            read the key ring from this file (mode 0600)
                                either holds {"current": "k2", "keys": {"k1": "<base64>",
                                "k2": "<base64>"}}, each key 32 bytes (openssl rand -base64 32)
  --purpose <label>             the sealing storer's purpose (default password), the
                                same as your reveal route's; it applies to every sealed
                                record of the run, so run once per purpose

Run:
  --dry-run                     report what would change, write nothing
  --concurrency <n>             hashes at once (default 2)
  -h, --help                    this text

Exit status: 0 when no record failed, 1 when some did (a guest password hashed by an
earlier migration, which no run can recover, counts as failed), or the run stopped on
an error, 2 for a usage error.`;

class UsageError extends Error {}

interface Opened {
  readonly store: PasswordStore;
  readonly source: LegacyPasswordSource | undefined;
  readonly label: string;
  close(): Promise<void>;
}

const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** Runs the command line `argv` (without node and the script) and resolves to its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        sqlite: { type: 'string' },
        redis: { type: 'string' },
        'redis-env': { type: 'string' },
        'redis-file': { type: 'string' },
        module: { type: 'string' },
        table: { type: 'string' },
        prefix: { type: 'string' },
        'metadata-table': { type: 'string' },
        'metadata-db': { type: 'string' },
        'metadata-id-column': { type: 'string' },
        'metadata-key-column': { type: 'string' },
        'metadata-value-column': { type: 'string' },
        'metadata-record-id': { type: 'string' },
        cost: { type: 'string' },
        'pepper-env': { type: 'string' },
        schemes: { type: 'string' },
        'keys-env': { type: 'string' },
        'keys-file': { type: 'string' },
        purpose: { type: 'string' },
        'dry-run': { type: 'boolean' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (positionals[0] !== 'migrate' || positionals.length !== 1) {
    return usage(positionals.length === 0 ? 'no command given.' : `unknown command "${positionals.join(' ')}".`);
  }

  let opened: Opened | undefined;
  try {
    // Checked before any store is opened: a usage error must not touch the database.
    const cost = integer('--cost', values.cost, 10, 31);
    const concurrency = integer('--concurrency', values.concurrency, 1, 1024);
    const pepper = readPepper(values['pepper-env']);
    const legacy = values.schemes === undefined ? undefined : await loadSchemes(values.schemes);
    const keys = readKeyRing(values['keys-env'], values['keys-file']);
    if (values.purpose !== undefined && keys === undefined)
      throw new UsageError('--purpose goes with --keys-env or --keys-file.');
    if (values['metadata-table'] !== undefined && keys === undefined) {
      throw new UsageError(
        "--metadata-table needs the sealing storer's keys (--keys-env or --keys-file, and its --purpose): the reviewed API's guest passwords are handed back to their owner (nova get-password), so they are sealed; hashing them would make them unrecoverable.",
      );
    }
    const sourceRecordId = recordIdTemplate(values['metadata-record-id']);
    opened = await openStore(values);
    const dryRun = values['dry-run'] === true;
    console.log(`express-password-guard migrate: ${opened.label}${dryRun ? ' (dry run: nothing will be written)' : ''}`);
    const progress = progressReporter();
    const summary = await migratePasswords({
      store: opened.store,
      ...(opened.source === undefined ? {} : { source: opened.source }),
      ...(sourceRecordId === undefined ? {} : { sourceRecordId }),
      ...(cost === undefined ? {} : { cost }),
      ...(pepper === undefined ? {} : { pepper }),
      ...(legacy === undefined ? {} : { legacy }),
      ...(keys === undefined ? {} : { keys }),
      ...(values.purpose === undefined ? {} : { purpose: values.purpose }),
      ...(concurrency === undefined ? {} : { concurrency }),
      dryRun,
      onProgress: progress.update,
      onFailure: (failure: MigrationFailure) => {
        progress.interrupt();
        console.log(`  ${failure.unrecoverable === true ? 'unrecoverable' : 'failed'} ${failure.id}: ${failure.reason}`);
      },
    });
    progress.end();
    printSummary(summary);
    return summary.failed === 0 ? 0 : 1;
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    console.error(`express-password-guard migrate: ${(error as Error).message}`);
    return 1;
  } finally {
    await opened?.close();
  }
}

function usage(message: string): number {
  console.error(`express-password-guard: ${message}\nRun "express-password-guard --help" for the options.`);
  return 2;
}

function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max))
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}".`);
  return number;
}

/** `--metadata-record-id`: `{id}` stands for the instance id, at least once. */
function recordIdTemplate(template: string | undefined): ((id: string) => string) | undefined {
  if (template === undefined) return undefined;
  if (!template.includes('{id}')) {
    throw new UsageError(
      `--metadata-record-id ${template}: put {id} where the instance id goes, such as {id}/os-server-password; without it every instance would share one record.`,
    );
  }
  return (id) => template.replaceAll('{id}', id);
}

function readPepper(variable: string | undefined): string | undefined {
  if (variable === undefined) return undefined;
  // Never on the command line itself: any user of the host can read a process's arguments.
  const value = process.env[variable];
  if (value === undefined || value === '')
    throw new UsageError(`--pepper-env ${variable}: that environment variable is not set.`);
  return value;
}

/**
 * The sealing key ring from an environment variable or a file, never from the command
 * line. Every message names where the ring came from and never quotes it: JSON.parse's
 * own message would.
 */
function readKeyRing(variable: string | undefined, file: string | undefined): KeyProvider | undefined {
  if (variable !== undefined && file !== undefined)
    throw new UsageError('give the key ring once: --keys-env or --keys-file, not both.');
  let text: string;
  let where: string;
  if (variable !== undefined) {
    where = `--keys-env ${variable}`;
    const value = process.env[variable];
    if (value === undefined || value === '') throw new UsageError(`${where}: that environment variable is not set.`);
    text = value;
  } else if (file !== undefined) {
    where = `--keys-file ${file}`;
    if (!existsSync(file)) throw new UsageError(`${where}: no such file.`);
    if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
      console.error(`express-password-guard: warning: ${where} can be read by other users of this host; chmod 600 it.`);
    }
    text = readFileSync(file, 'utf8');
  } else {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${where}: not JSON; expected {"current": "<key id>", "keys": {"<key id>": "<base64 of 32 bytes>"}}.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${where}: expected a JSON object {"current": "<key id>", "keys": {…}}.`);
  }
  try {
    return localKeyRing(parsed as LocalKeyRingOptions);
  } catch (error) {
    // localKeyRing's messages name the option and the key id, never a key.
    throw new UsageError(`${where}: ${(error as Error).message}`);
  }
}

type Values = Record<string, string | boolean | undefined>;
type StoreKind = 'sqlite' | 'redis' | 'module';

/** A store just opened: how the output names it, and for SQLite its file and connection. */
interface OpenedStore {
  readonly store: PasswordStore;
  readonly label: string;
  readonly sqlite?: { readonly file: string; readonly db: BetterSqlite3.Database };
}

/** What an opener must close, pushed as it opens; run in reverse, on success or failure. */
type Closers = Array<() => unknown>;

const STORE_OPENERS: Readonly<Record<StoreKind, (values: Values, closers: Closers) => Promise<OpenedStore>>> = {
  sqlite: openSqliteStore,
  redis: openRedisStore,
  module: openModuleStore,
};

function text(values: Values, flag: string): string | undefined {
  const value = values[flag];
  return typeof value === 'string' ? value : undefined;
}

async function openStore(values: Values): Promise<Opened> {
  const kind = chosenStore(values);
  const closers: Closers = [];
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) await closer();
  };
  try {
    const opened = await STORE_OPENERS[kind](values, closers);
    if (text(values, 'metadata-table') === undefined)
      return { store: opened.store, source: undefined, label: opened.label, close };
    const metadata = openMetadataChunks(values, opened, closers);
    return { store: opened.store, source: metadata.source, label: `${opened.label}, ${metadata.label}`, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The one store flag given, once the flags that go with another kind are ruled out. */
function chosenStore(values: Values): StoreKind {
  const given = (['sqlite', 'redis', 'redis-env', 'redis-file', 'module'] as const).filter((flag) => values[flag] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? 'give a store: --sqlite <file>, --redis <url> (or --redis-env / --redis-file) or --module <file>.'
        : `give one store, not ${given.map((f) => `--${f}`).join(' and ')}.`,
    );
  }
  const flag = given[0] as (typeof given)[number];
  const kind: StoreKind = flag.startsWith('redis') ? 'redis' : (flag as StoreKind);
  if (text(values, 'table') !== undefined && kind !== 'sqlite') throw new UsageError('--table goes with --sqlite.');
  if (text(values, 'prefix') !== undefined && kind !== 'redis') throw new UsageError('--prefix goes with --redis.');
  if (text(values, 'metadata-table') === undefined) {
    for (const flag of [
      'metadata-db',
      'metadata-id-column',
      'metadata-key-column',
      'metadata-value-column',
      'metadata-record-id',
    ]) {
      if (text(values, flag) !== undefined) throw new UsageError(`--${flag} goes with --metadata-table.`);
    }
  } else if (text(values, 'metadata-db') === undefined && kind !== 'sqlite') {
    throw new UsageError('--metadata-table needs --metadata-db <file> unless the store is --sqlite.');
  }
  return kind;
}

async function openSqliteStore(values: Values, closers: Closers): Promise<OpenedStore> {
  const file = text(values, 'sqlite') as string;
  // An existing file and table only: a typo must not migrate a new, empty one and say "done".
  if (!existsSync(file)) throw new UsageError(`--sqlite ${file}: no such file.`);
  const table = text(values, 'table') ?? 'password_records';
  if (!SQL_IDENTIFIER.test(table)) throw new UsageError(`--table ${table}: not an SQL identifier (letters, digits and _).`);
  const probe = openSqlite(file, true);
  const exists = probe.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (!exists && text(values, 'metadata-table') === undefined) {
    probe.close();
    throw new UsageError(
      `--sqlite ${file} has no table "${table}"${text(values, 'table') === undefined ? ' (give its name with --table)' : ''}.`,
    );
  }
  const label = `SQLite store ${file} (table ${table})`;
  if (values['dry-run'] === true) {
    // Read-only: opening a SqliteStore would switch the file to WAL and create a missing table.
    closers.push(() => probe.close());
    return { store: readOnlyStore(probe, exists ? table : undefined), label, sqlite: { file, db: probe } };
  }
  probe.close();
  const store = new SqliteStore({ filename: file, table });
  closers.push(() => store.close());
  return { store, label, sqlite: { file, db: store.database as BetterSqlite3.Database } };
}

async function openRedisStore(values: Values, closers: Closers): Promise<OpenedStore> {
  const url = redisUrl(text(values, 'redis'), text(values, 'redis-env'), text(values, 'redis-file')) as string;
  const client = await connectRedis(url);
  closers.push(() => client.quit());
  const prefix = text(values, 'prefix');
  const store = new RedisStore({ client, ...(prefix === undefined ? {} : { prefix }) });
  return { store, label: `Redis store ${maskRedisUrl(url)} (prefix ${store.prefix})` };
}

async function openModuleStore(values: Values, closers: Closers): Promise<OpenedStore> {
  const file = text(values, 'module') as string;
  const store = await loadStore(file);
  const closable = store as PasswordStore & { close?: () => unknown };
  if (typeof closable.close === 'function') closers.push(() => closable.close?.());
  return { store, label: `store from ${file}` };
}

/**
 * The reviewed API's metadata table as the migration's source: in the store's own SQLite
 * file unless --metadata-db names another, which is then opened (read-only for a dry run).
 */
function openMetadataChunks(
  values: Values,
  opened: OpenedStore,
  closers: Closers,
): { source: LegacyPasswordSource; label: string } {
  const table = text(values, 'metadata-table') as string;
  const metadataDb = text(values, 'metadata-db');
  let db: BetterSqlite3.Database;
  if (metadataDb === undefined || (opened.sqlite !== undefined && resolve(metadataDb) === resolve(opened.sqlite.file))) {
    db = (opened.sqlite as NonNullable<OpenedStore['sqlite']>).db;
  } else {
    if (!existsSync(metadataDb)) throw new UsageError(`--metadata-db ${metadataDb}: no such file.`);
    const dryRun = values['dry-run'] === true;
    const own = openSqlite(metadataDb, dryRun);
    db = own;
    closers.push(() => own.close());
    // Erased chunks are zeroed in their pages, not left readable in free space.
    if (!dryRun) db.pragma('secure_delete = ON');
  }
  const source = new MetadataChunks({
    database: db,
    table,
    ...optional('idColumn', text(values, 'metadata-id-column')),
    ...optional('keyColumn', text(values, 'metadata-key-column')),
    ...optional('valueColumn', text(values, 'metadata-value-column')),
  });
  const recordId = text(values, 'metadata-record-id') ?? '{id}';
  return {
    source,
    label: `sealing the clear-text passwords of table ${table}${metadataDb === undefined ? '' : ` of ${metadataDb}`} as records ${recordId} (purpose ${text(values, 'purpose') ?? DEFAULT_PURPOSE})`,
  };
}

function openSqlite(file: string, readonly: boolean): BetterSqlite3.Database {
  const Database = loadBetterSqlite3('reading SQLite files (--sqlite, --metadata-db)');
  return new Database(file, { readonly, fileMustExist: true, timeout: 5000 });
}

/**
 * The records of a SqliteStore table through a read-only connection, for a dry run: a
 * write would be a bug, and fails loudly. No table: an empty store.
 */
function readOnlyStore(db: BetterSqlite3.Database, table: string | undefined): PasswordStore {
  const select =
    table === undefined ? undefined : db.prepare(`SELECT hash, scheme, set_at AS setAt FROM "${table}" WHERE id = ?`);
  const list = table === undefined ? undefined : db.prepare(`SELECT id FROM "${table}" ORDER BY id`).pluck();
  const refuse = (): never => {
    throw new Error('a dry run tried to write; nothing was written.');
  };
  return {
    get: (id) => (select?.get(id) as PasswordRecord | undefined) ?? undefined,
    ids: () => (list?.all() ?? []) as string[],
    setIfAbsent: refuse,
    replace: (_id, _expectedHash, _record) => refuse(),
    delete: refuse,
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

async function connectRedis(url: string): Promise<RedisStoreClient & { quit(): Promise<unknown> }> {
  let Redis: new (
    url: string,
    options: object,
  ) => RedisStoreClient & {
    connect(): Promise<void>;
    quit(): Promise<unknown>;
    disconnect(): void;
    on(event: 'error', listener: (error: Error) => void): unknown;
  };
  try {
    // Loaded only here: ioredis is not a dependency of this package.
    const loaded = require('ioredis') as { default?: typeof Redis } & typeof Redis;
    Redis = loaded.default ?? loaded;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      throw new Error('--redis needs the ioredis package, which is not installed: run "npm install ioredis" in your project.');
    }
    throw error;
  }
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new Error(`cannot connect to Redis at ${maskRedisUrl(url)}: ${(error as Error).message}`);
  }
  return client;
}

/**
 * The Redis URL from the one flag that gives it. Never a password on the command line:
 * any user of the host reads it in /proc/<pid>/cmdline, as the pepper would be.
 */
function redisUrl(direct: string | undefined, variable: string | undefined, file: string | undefined): string | undefined {
  if (direct !== undefined) {
    if (redisUrlHasCredential(direct)) {
      throw new UsageError(
        '--redis: the URL holds a password, which any user of this host can read on the command line; give the URL with --redis-env <VAR> or --redis-file <file>.',
      );
    }
    return direct;
  }
  if (variable !== undefined) {
    const value = process.env[variable];
    if (value === undefined || value.trim() === '')
      throw new UsageError(`--redis-env ${variable}: that environment variable is not set.`);
    return value.trim();
  }
  if (file !== undefined) {
    if (!existsSync(file)) throw new UsageError(`--redis-file ${file}: no such file.`);
    const line = readFileSync(file, 'utf8').split(/\r?\n/, 1)[0]?.trim() ?? '';
    if (line === '') throw new UsageError(`--redis-file ${file}: the file is empty; put the Redis URL on its first line.`);
    return line;
  }
  return undefined;
}

async function loadModule(file: string, flag: string): Promise<Record<string, unknown>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`${flag} ${file}: no such file.`);
  return (await importModule(pathToFileURL(path).href)) as Record<string, unknown>;
}

/** `name` or the default export of a module, looking through a CommonJS module's `default`. */
function exported(module: Record<string, unknown>, name: string): unknown {
  const fallback = module['default'] as Record<string, unknown> | undefined;
  return module[name] ?? (typeof fallback === 'object' && fallback !== null && name in fallback ? fallback[name] : fallback);
}

async function loadStore(file: string): Promise<PasswordStore> {
  let store = exported(await loadModule(file, '--module'), 'store');
  if (typeof store === 'function') store = await (store as () => unknown)();
  const candidate = store as Partial<PasswordStore> | undefined;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.get !== 'function') {
    throw new UsageError(`--module ${file} exports no store: export one as default or as "store", or a function returning one.`);
  }
  return candidate as PasswordStore;
}

async function loadSchemes(file: string): Promise<LegacyScheme[]> {
  const schemes = exported(await loadModule(file, '--schemes'), 'schemes');
  if (!Array.isArray(schemes))
    throw new UsageError(`--schemes ${file} exports no array of legacy schemes (default export or "schemes").`);
  return schemes as LegacyScheme[];
}

interface ProgressReporter {
  update(progress: MigrationProgress): void;
  /** Clears the bar before another line is printed. */
  interrupt(): void;
  end(): void;
}

/**
 * A bar redrawn in place on a terminal; plain lines otherwise (a log file, a pipe), at
 * most about twenty of them however many records there are.
 */
function progressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (stream.isTTY === true) {
    let drawn = false;
    return {
      update: (progress) => {
        const width = 30;
        const share = progress.total === 0 ? 1 : progress.done / progress.total;
        const filled = Math.round(share * width);
        stream.write(
          `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${progress.done}/${progress.total} ${Math.floor(share * 100)}%  failed ${progress.failed}\x1b[K`,
        );
        drawn = true;
      },
      interrupt: () => {
        if (drawn) stream.write('\r\x1b[K');
        drawn = false;
      },
      end: () => {
        if (drawn) stream.write('\n');
      },
    };
  }
  return {
    update: (progress) => {
      const step = Math.max(1, Math.ceil(progress.total / 20));
      if (progress.done % step === 0 || progress.done === progress.total) {
        stream.write(
          `progress: ${progress.done}/${progress.total} records (upgraded ${progress.upgraded}, current ${progress.current}, failed ${progress.failed})\n`,
        );
      }
    },
    interrupt: () => undefined,
    end: () => undefined,
  };
}

function printSummary(summary: MigrationSummary): void {
  const upgraded = summary.dryRun ? 'would upgrade' : 'upgraded';
  const lost = summary.failures.filter((failure) => failure.unrecoverable === true).length;
  const rows: Array<[string, number]> = [
    ['records seen', summary.seen],
    [upgraded, summary.upgraded],
    ['already current', summary.current],
    ['failed', summary.failed],
    ...(lost === 0 ? [] : [['  unrecoverable', lost] as [string, number]]),
  ];
  console.log(summary.dryRun ? 'Summary (dry run, nothing written):' : 'Summary:');
  for (const [label, count] of rows) console.log(`  ${label.padEnd(16)} ${String(count).padStart(6)}`);
  if (summary.scrubbed === true)
    console.log('Plain text or old sealed values replaced: the SQLite file was compacted (VACUUM) and its WAL truncated.');
  if (summary.scrubbed === false) {
    console.log(
      'Plain text or old sealed values replaced, but the SQLite file could not be compacted (another connection was busy): old copies may remain in its free pages or -wal file until it is; run VACUUM once the app is stopped.',
    );
  }
  if (lost > 0) {
    console.log(
      `${lost === 1 ? '1 guest password was' : `${lost} guest passwords were`} hashed by an earlier migration: no one can get ${lost === 1 ? 'it' : 'them'} back. Have each reset (nova clear-password, then the guest's next boot or password reset) so that the guest agent posts it again.`,
    );
  }
  if (!summary.dryRun && summary.seen > 0 && summary.upgraded === 0 && summary.failed === 0) {
    console.log('Everything is current: nothing to do.');
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    (error: unknown) => {
      console.error(`express-password-guard: ${(error as Error).message}`);
      process.exitCode = 1;
    },
  );
}
