import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { RedisStore, SqliteStore, localKeyRing, verifyPassword } from '../../../lib';
import { openRecord, sealedRecord } from '../../../lib/sealing/encrypt-and-store';
import { K1, K2 } from '../../helpers/sealing';
import type { PasswordRecord } from '../../../lib';
import { RedisClients, freePort, redisServerFor, startRedisServer } from '../../helpers/redis-server';
import type { RedisServer } from '../../helpers/redis-server';

// The command as a user runs it (`npm run migrate -- …` runs exactly this): a real
// process on a real SQLite file (or Redis), killed for real.

const ROOT = resolve(__dirname, '..', '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
// Node itself with tsx's loader, not the tsx binary: that one runs the script in a child
// process of its own, which a SIGKILL of the binary would leave running.
const NODE_ARGS = ['--import', 'tsx', 'lib/migration/cli.ts'];
const PEPPER = 'cli-test-pepper-0123456789abcdef0123456789';
const SET_AT = '2019-05-14T09:30:00.000Z';
const hex = (algorithm: string, password: string): string => createHash(algorithm).update(password, 'utf8').digest('hex');
const RING_ENV = { SEAL_KEYS: JSON.stringify({ current: 'k1', keys: { k1: K1 } }) };

interface Run {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

/** `preload` is a module Node requires before the CLI (a fixture that hides a package). */
function start(args: readonly string[], env: Record<string, string> = {}, preload?: string): Run {
  const child = spawn(process.execPath, [...(preload === undefined ? [] : ['--require', preload]), ...NODE_ARGS, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function run(
  args: readonly string[],
  env: Record<string, string> = {},
  preload?: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const running = start(args, env, preload);
  const status = await running.exited;
  return { status, stdout: running.stdout(), stderr: running.stderr() };
}

/** The counts of the summary the command printed. */
function summary(stdout: string): { seen: number; upgraded: number; current: number; failed: number } {
  const count = (label: string): number => {
    const match = new RegExp(`^  ${label} +(\\d+)$`, 'm').exec(stdout);
    if (match?.[1] === undefined) throw new Error(`no "${label}" line in:\n${stdout}`);
    return Number(match[1]);
  };
  return {
    seen: count('records seen'),
    upgraded: count('(?:upgraded|would upgrade)'),
    current: count('already current'),
    failed: count('failed'),
  };
}

/** Every byte SQLite keeps for `file`: the database and its WAL, if any. */
function fileBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`, `${file}-journal`].filter(existsSync).map((f) => readFileSync(f)));
}

function rows(file: string, table = 'password_records'): PasswordRecord[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT id, hash, scheme, set_at AS setAt FROM "${table}" ORDER BY id`).all() as PasswordRecord[];
  } finally {
    db.close();
  }
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'epg-migrate-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Seeded {
  readonly id: string;
  readonly password: string;
}

/** `count` legacy records, a third each plain, MD5 and SHA-1; the plain ones hold a findable marker. */
function seed(file: string, count: number): Seeded[] {
  const store = new SqliteStore({ filename: file });
  const seeded: Seeded[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const id = `srv-${String(i).padStart(3, '0')}`;
      const password = `plaintext-marker-${i}-zq`;
      const scheme = ['plain', 'md5', 'sha1'][i % 3] as string;
      const hash = scheme === 'plain' ? password : hex(scheme, password);
      store.setIfAbsent(id, { hash, setAt: SET_AT, scheme });
      seeded.push({ id, password });
    }
  } finally {
    store.close();
  }
  return seeded;
}

async function expectAllVerify(file: string, seeded: readonly Seeded[], options: { pepper?: string } = {}): Promise<void> {
  const store = new SqliteStore({ filename: file });
  try {
    for (const { id, password } of seeded) {
      const verification = await verifyPassword(store, id, password, { cost: 10, rehash: false, ...options });
      if (!verification.match) throw new Error(`${id} no longer verifies with its password`);
    }
    expect((await verifyPassword(store, seeded[0]?.id ?? '', 'not it', { cost: 10, rehash: false, ...options })).match).toBe(
      false,
    );
  } finally {
    store.close();
  }
}

describe('npx express-password-guard migrate', () => {
  test('killed half-way (SIGKILL), run again: converges with nothing lost; a third run reports everything current', async () => {
    const file = join(dir, 'app.db');
    const seeded = seed(file, 60);
    const plainMarkers = seeded.filter((_, i) => i % 3 === 0).map((s) => Buffer.from(s.password));
    // The test can fail: the plain text is in the file before the migration.
    expect(plainMarkers.every((marker) => fileBytes(file).includes(marker))).toBe(true);

    const first = start(['migrate', '--sqlite', file, '--cost', '10']);
    const deadline = Date.now() + 60_000;
    while (!/^progress: (9|[1-9]\d)\/60 /m.test(first.stderr())) {
      if (Date.now() > deadline || first.child.exitCode !== null) {
        throw new Error(`no progress to kill at; it printed:\n${first.stdout()}${first.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    expect(first.child.signalCode).toBe('SIGKILL');
    expect(first.stdout()).not.toContain('Summary');

    // Every record is still there, each fully old or fully new.
    const afterKill = rows(file);
    expect(afterKill.map((r) => (r as PasswordRecord & { id: string }).id)).toEqual(seeded.map((s) => s.id));
    const done = afterKill.filter((r) => r.scheme.startsWith('bcrypt'));
    expect(done.length).toBeGreaterThanOrEqual(9);
    expect(done.length).toBeLessThan(60);
    for (const r of done) expect(r.hash).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);

    const second = await run(['migrate', '--sqlite', file, '--cost', '10']);
    expect(second.status).toBe(0);
    expect(summary(second.stdout)).toEqual({ seen: 60, upgraded: 60 - done.length, current: done.length, failed: 0 });
    expect(rows(file).every((r) => r.scheme === 'bcrypt' || r.scheme === 'bcrypt+md5' || r.scheme === 'bcrypt+sha1')).toBe(true);
    await expectAllVerify(file, seeded);

    const third = await run(['migrate', '--sqlite', file, '--cost', '10']);
    expect(third.status).toBe(0);
    expect(summary(third.stdout)).toEqual({ seen: 60, upgraded: 0, current: 60, failed: 0 });
    expect(third.stdout).toContain('Everything is current: nothing to do.');

    // No plain text left anywhere in the file or its WAL.
    const bytes = fileBytes(file);
    for (const marker of plainMarkers) expect(bytes.includes(marker)).toBe(false);
  }, 300_000);

  test('--dry-run reports what would change and writes nothing to the file', async () => {
    const file = join(dir, 'app.db');
    seed(file, 6);
    const before = fileBytes(file);
    const dry = await run(['migrate', '--sqlite', file, '--cost', '10', '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toContain('(dry run: nothing will be written)');
    expect(dry.stdout).toContain('Summary (dry run, nothing written):');
    expect(summary(dry.stdout)).toEqual({ seen: 6, upgraded: 6, current: 0, failed: 0 });
    expect(fileBytes(file).equals(before)).toBe(true);
    expect(rows(file).map((r) => r.scheme)).toEqual(['plain', 'md5', 'sha1', 'plain', 'md5', 'sha1']);
  });

  test('--dry-run leaves a rollback-journal file byte for byte (no switch to WAL), with or without the store table', async () => {
    const file = join(dir, 'app.db');
    const db = new Database(file);
    db.pragma('journal_mode = DELETE');
    db.exec(
      'CREATE TABLE password_records (id TEXT PRIMARY KEY NOT NULL, hash TEXT NOT NULL, scheme TEXT NOT NULL, set_at TEXT NOT NULL) STRICT, WITHOUT ROWID',
    );
    db.prepare('INSERT INTO password_records VALUES (?, ?, ?, ?)').run('u-1', hex('md5', 'tangerine lantern 42'), 'md5', SET_AT);
    db.exec('CREATE TABLE meta (instance_uuid TEXT, key TEXT, value TEXT)');
    db.prepare('INSERT INTO meta VALUES (?, ?, ?)').run('inst-1', 'password_0', 'chunked in clear');
    db.close();
    const before = fileBytes(file);

    const sealing = ['--keys-env', 'SEAL_KEYS'];
    const dry = await run(
      ['migrate', '--sqlite', file, '--metadata-table', 'meta', ...sealing, '--cost', '10', '--dry-run'],
      RING_ENV,
    );
    expect(dry.status).toBe(0);
    expect(summary(dry.stdout)).toEqual({ seen: 2, upgraded: 2, current: 0, failed: 0 });
    expect(fileBytes(file).equals(before)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);

    const noTable = await run(
      ['migrate', '--sqlite', file, '--table', 'other_records', '--metadata-table', 'meta', ...sealing, '--dry-run'],
      RING_ENV,
    );
    expect(noTable.status).toBe(0);
    expect(summary(noTable.stdout)).toEqual({ seen: 1, upgraded: 1, current: 0, failed: 0 });
    expect(fileBytes(file).equals(before)).toBe(true);
  });

  test('seals the reviewed API layout (password_0 … password_3) into the store: refused without keys, nothing left in the file in any form, the owner can open it', async () => {
    const file = join(dir, 'nova.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(
      'CREATE TABLE instance_system_metadata (id INTEGER PRIMARY KEY, instance_uuid TEXT, key TEXT, value TEXT, deleted INTEGER DEFAULT 0)',
    );
    const insert = db.prepare('INSERT INTO instance_system_metadata (instance_uuid, key, value) VALUES (?, ?, ?)');
    const seeded: Seeded[] = [];
    for (let n = 0; n < 5; n++) {
      // A guest agent's ciphertext: several hundred base64 characters in four chunks.
      const password = Buffer.from(`ciphertext-marker-${n} `.repeat(25)).toString('base64');
      for (let i = 0; i < 4; i++) insert.run(`inst-${n}`, `password_${i}`, password.slice(i * 255, (i + 1) * 255));
      insert.run(`inst-${n}`, 'image_base', 'kept as it is');
      seeded.push({ id: `inst-${n}`, password });
    }
    db.close();
    // As stored, as the bytes the guest encrypted, and as hex.
    const forms = seeded.flatMap(({ password }) => [
      Buffer.from(password.slice(0, 60)),
      Buffer.from(password.slice(300, 360)),
      Buffer.from(password, 'base64').subarray(0, 40),
      Buffer.from(Buffer.from(password, 'base64').subarray(0, 40).toString('hex')),
    ]);
    // The test can fail: the values are in the file, as stored, before the migration.
    expect(seeded.every(({ password }) => fileBytes(file).includes(Buffer.from(password.slice(0, 60))))).toBe(true);

    // Without keys: a usage error that says why, before the file is even opened.
    const before = fileBytes(file);
    const refused = await run(
      ['migrate', '--sqlite', file, '--metadata-table', 'instance_system_metadata', '--pepper-env', 'P'],
      {
        P: PEPPER,
      },
    );
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(
      "--metadata-table needs the sealing storer's keys (--keys-env or --keys-file, and its --purpose): the reviewed API's guest passwords are handed back to their owner (nova get-password), so they are sealed; hashing them would make them unrecoverable.",
    );
    expect(fileBytes(file).equals(before)).toBe(true);

    const args = [
      'migrate',
      '--sqlite',
      file,
      '--metadata-table',
      'instance_system_metadata',
      '--keys-env',
      'SEAL_KEYS',
      '--purpose',
      'os-server-password',
    ];
    const moved = await run(args, RING_ENV);
    expect(moved.status).toBe(0);
    expect(moved.stdout).toContain(
      'sealing the clear-text passwords of table instance_system_metadata as records {id} (purpose os-server-password)',
    );
    expect(summary(moved.stdout)).toEqual({ seen: 5, upgraded: 5, current: 0, failed: 0 });
    expect(moved.stdout).toContain('the SQLite file was compacted (VACUUM) and its WAL truncated');
    const bytes = fileBytes(file);
    for (const form of forms) expect(bytes.includes(form)).toBe(false);
    expect(bytes.includes(Buffer.from('kept as it is'))).toBe(true);
    const ring = localKeyRing({ current: 'k1', keys: { k1: K1 } });
    const records = rows(file) as Array<PasswordRecord & { id: string }>;
    expect(records.map((r) => [r.id, r.scheme])).toEqual(seeded.map((s) => [s.id, 'aes-256-gcm:k1']));
    for (const r of records) {
      expect(await openRecord(ring, 'os-server-password', r.id, r)).toEqual({
        plaintext: seeded.find((s) => s.id === r.id)?.password,
        keyId: 'k1',
      });
    }
    for (const output of [refused, moved]) {
      for (const secret of [K1, PEPPER, ...seeded.map((s) => s.password.slice(0, 40))])
        expect(output.stdout + output.stderr).not.toContain(secret);
    }

    const again = await run(args, RING_ENV);
    expect(summary(again.stdout)).toEqual({ seen: 5, upgraded: 0, current: 5, failed: 0 });
    expect(rows(file)).toEqual(records);
  });

  test("--metadata-db: the reviewed API's table in another file, its own columns; no plain text left in either file", async () => {
    const legacyFile = join(dir, 'legacy.db');
    const storeFile = join(dir, 'store.db');
    new SqliteStore({ filename: storeFile }).close();
    const db = new Database(legacyFile);
    db.exec('CREATE TABLE meta (vm TEXT, k TEXT, v TEXT)');
    const password = 'short-legacy-marker-password';
    for (const [i, chunk] of ['short-legacy-', 'marker-password', '', ''].entries()) {
      db.prepare('INSERT INTO meta (vm, k, v) VALUES (?, ?, ?)').run('vm-1', `password_${i}`, chunk);
    }
    db.close();
    expect(fileBytes(legacyFile).includes(Buffer.from('marker-password'))).toBe(true);

    const result = await run(
      [
        'migrate',
        '--sqlite',
        storeFile,
        '--keys-env',
        'SEAL_KEYS',
        '--metadata-table',
        'meta',
        '--metadata-db',
        legacyFile,
        '--metadata-id-column',
        'vm',
        '--metadata-key-column',
        'k',
        '--metadata-value-column',
        'v',
        '--metadata-record-id',
        'vm/{id}/password',
      ],
      RING_ENV,
    );
    expect(result.status).toBe(0);
    expect(summary(result.stdout)).toEqual({ seen: 1, upgraded: 1, current: 0, failed: 0 });
    for (const file of [legacyFile, storeFile]) expect(fileBytes(file).includes(Buffer.from('marker-password'))).toBe(false);
    const [stored] = rows(storeFile) as Array<PasswordRecord & { id: string }>;
    expect(stored?.id).toBe('vm/vm-1/password');
    expect(
      await openRecord(
        localKeyRing({ current: 'k1', keys: { k1: K1 } }),
        'password',
        'vm/vm-1/password',
        stored as PasswordRecord,
      ),
    ).toEqual({
      plaintext: password,
      keyId: 'k1',
    });
  });

  test("--module loads a store of the user's making and --schemes their legacy schemes", async () => {
    const file = join(dir, 'custom.db');
    const store = new SqliteStore({ filename: file, table: 'custom_passwords' });
    const digest = hex('sha512', 'north wind orchard').slice(0, 64);
    store.setIfAbsent('u-1', { hash: digest, setAt: SET_AT, scheme: 'sha512-hex' });
    store.setIfAbsent('u-2', { hash: hex('md5', 'tangerine lantern 42'), setAt: SET_AT, scheme: 'md5' });
    store.close();
    const fixture = join('test', 'fixtures', 'migration-module.ts');

    const without = await run(['migrate', '--module', fixture, '--cost', '10'], { MIGRATION_DB: file });
    expect(without.status).toBe(1);
    expect(without.stdout).toContain('  failed u-1: unknown scheme "sha512-hex"');
    expect(summary(without.stdout)).toEqual({ seen: 2, upgraded: 1, current: 0, failed: 1 });

    const withSchemes = await run(['migrate', '--module', fixture, '--schemes', fixture, '--cost', '10'], { MIGRATION_DB: file });
    expect(withSchemes.status).toBe(0);
    expect(summary(withSchemes.stdout)).toEqual({ seen: 2, upgraded: 1, current: 1, failed: 0 });
    expect(rows(file, 'custom_passwords').map((r) => r.scheme)).toEqual(['bcrypt+sha512-hex', 'bcrypt+md5']);
  });

  test('--redis without ioredis installed says how to install it', async () => {
    const { status, stderr } = await run(
      ['migrate', '--redis', 'redis://127.0.0.1:1'],
      {},
      './test/fixtures/without-optional-peers.cjs',
    );
    expect(status).toBe(1);
    expect(stderr).toContain(
      '--redis needs the ioredis package, which is not installed: run "npm install ioredis" in your project.',
    );
  });

  test('--sqlite without better-sqlite3 installed says how to install it', async () => {
    const file = join(dir, 'no-driver.db');
    writeFileSync(file, '');
    const { status, stderr } = await run(['migrate', '--sqlite', file], {}, './test/fixtures/without-optional-peers.cjs');
    expect(status).toBe(1);
    expect(stderr).toContain(
      'reading SQLite files (--sqlite, --metadata-db) needs the better-sqlite3 package, which is not installed: run "npm install better-sqlite3" in your project.',
    );
  });

  // Issue 14 defect 6: a password in --redis sat in /proc/<pid>/cmdline.
  test.each([
    'redis://:s3cret-cmdline@127.0.0.1:1',
    'redis://user:s3cret-cmdline@127.0.0.1:1/0',
    'redis://127.0.0.1:1/?password=s3cret-cmdline',
    'redis://127.0.0.1:1/?sentinelPassword=s3cret-cmdline',
    '/tmp/redis.sock?password=s3cret-cmdline',
  ])('--redis %s is refused before connecting: a password never goes on the command line', async (url) => {
    const result = await run(['migrate', '--redis', url]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(
      /--redis: the URL holds a password, .* give the URL with --redis-env <VAR> or --redis-file <file>/,
    );
    expect(result.stderr + result.stdout).not.toContain('s3cret-cmdline');
  });

  test('usage errors exit 2 with a clear message; --help exits 0', async () => {
    const file = join(dir, 'app.db');
    seed(file, 1);
    const cases: Array<[string[], RegExp, Record<string, string>?]> = [
      [[], /no command given/],
      [['migrat'], /unknown command "migrat"/],
      [['migrate'], /give a store: --sqlite <file>, --redis <url> \(or --redis-env \/ --redis-file\) or --module <file>/],
      [['migrate', '--redis-env', 'NOT_SET_ANYWHERE'], /--redis-env NOT_SET_ANYWHERE: that environment variable is not set/],
      [['migrate', '--redis-file', join(dir, 'no-url.txt')], /--redis-file .*no-url\.txt: no such file/],
      [['migrate', '--redis', 'redis://127.0.0.1:1', '--redis-env', 'X'], /give one store, not --redis and --redis-env/],
      [['migrate', '--sqlite', file, '--redis', 'redis://127.0.0.1:1'], /give one store, not --sqlite and --redis/],
      [['migrate', '--sqlite', join(dir, 'typo.db')], /--sqlite .*typo\.db: no such file/],
      [['migrate', '--sqlite', file, '--table', 'pasword_records'], /has no table "pasword_records"\./],
      [['migrate', '--sqlite', file, '--table', 'x; DROP TABLE y'], /--table x; DROP TABLE y: not an SQL identifier/],
      [['migrate', '--sqlite', file, '--cost', 'high'], /--cost must be a whole number/],
      [
        ['migrate', '--sqlite', file, '--pepper-env', 'NOT_SET_ANYWHERE'],
        /--pepper-env NOT_SET_ANYWHERE: that environment variable is not set/,
      ],
      [['migrate', '--sqlite', file, '--dryrun'], /Unknown option '--dryrun'/],
      [['migrate', '--sqlite', file, '--prefix', 'x:'], /--prefix goes with --redis/],
      [
        ['migrate', '--module', 'test/fixtures/migration-module.ts', '--metadata-table', 't', '--keys-env', 'SEAL_KEYS'],
        /--metadata-table needs --metadata-db/,
        RING_ENV,
      ],
    ];
    for (const [args, message, env] of cases) {
      const result = await run(args, env);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(message);
    }
    expect(existsSync(join(dir, 'typo.db'))).toBe(false);
    // Out-of-range numbers are usage errors too, found before the file is opened.
    const snapshot = (): string =>
      [file, `${file}-wal`].map((f) => (existsSync(f) ? readFileSync(f).toString('base64') : '-')).join('|');
    const before = snapshot();
    for (const args of [
      ['--cost', '9'],
      ['--concurrency', '0'],
    ]) {
      const result = await run(['migrate', '--sqlite', file, ...args]);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(/must be a whole number from/);
    }
    expect(snapshot()).toBe(before);
    const help = await run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: express-password-guard migrate [options]');
    // One child process per case, each a few seconds (up to ten at load 7): a hang guard, not a budget.
  }, 300_000);

  test('--metadata-record-id: usage errors exit 2 before the file is opened', async () => {
    const file = join(dir, 'app.db');
    seed(file, 1);
    const before = fileBytes(file);
    const cases: Array<[string[], RegExp]> = [
      [['--metadata-record-id', '{id}/x'], /--metadata-record-id goes with --metadata-table/],
      [
        ['--metadata-table', 't', '--keys-env', 'SEAL_KEYS', '--metadata-record-id', 'one-for-all'],
        /--metadata-record-id one-for-all: put \{id\} where the instance id goes, such as \{id\}\/os-server-password; without it every instance would share one record\./,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await run(['migrate', '--sqlite', file, ...args], RING_ENV);
      expect({ args, status: result.status }).toEqual({ args, status: 2 });
      expect(result.stderr).toMatch(message);
    }
    expect(fileBytes(file).equals(before)).toBe(true);
  }, 60_000);

  test('re-seals values sealed under k1 with the key ring from the environment or a file: dry run first, then for real, then nothing to do', async () => {
    const file = join(dir, 'secrets.db');
    const ring1 = localKeyRing({ current: 'k1', keys: { k1: K1 } });
    const secrets = Array.from({ length: 5 }, (_, i) => `guest-ciphertext-${i}-${randomBytes(8).toString('hex')}`);
    const store = new SqliteStore({ filename: file });
    try {
      for (const [i, secret] of secrets.entries())
        store.setIfAbsent(`srv-${i}`, await sealedRecord(ring1, 'metadata-password', `srv-${i}`, secret, SET_AT));
      store.setIfAbsent('hashed', {
        hash: '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
        setAt: SET_AT,
        scheme: 'bcrypt',
      });
    } finally {
      store.close();
    }
    const ring = JSON.stringify({ current: 'k2', keys: { k1: K1, k2: K2 } });
    const env = { SEAL_KEYS: ring };
    const base = ['migrate', '--sqlite', file, '--keys-env', 'SEAL_KEYS', '--purpose', 'metadata-password'];

    const before = fileBytes(file);
    const dry = await run([...base, '--dry-run'], env);
    expect(dry.status).toBe(0);
    expect(summary(dry.stdout)).toEqual({ seen: 6, upgraded: 5, current: 1, failed: 0 });
    expect(fileBytes(file).equals(before)).toBe(true);

    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, ring, { mode: 0o600 });
    const real = await run(['migrate', '--sqlite', file, '--keys-file', keysFile, '--purpose', 'metadata-password']);
    expect(real.status).toBe(0);
    expect(summary(real.stdout)).toEqual({ seen: 6, upgraded: 5, current: 1, failed: 0 });
    expect(real.stderr).not.toContain('warning');
    const resealed = rows(file);
    expect(resealed.filter((r) => r.scheme === 'aes-256-gcm:k2')).toHaveLength(5);
    const k2Only = localKeyRing({ current: 'k2', keys: { k2: K2 } });
    for (const r of resealed.filter((row) => row.scheme.startsWith('aes'))) {
      const id = (r as PasswordRecord & { id: string }).id;
      expect(await openRecord(k2Only, 'metadata-password', id, r)).toEqual({
        plaintext: secrets[Number(id.slice(4))],
        keyId: 'k2',
      });
    }
    const again = await run(base, env);
    expect(summary(again.stdout)).toEqual({ seen: 6, upgraded: 0, current: 6, failed: 0 });
    expect(again.stdout).toContain('Everything is current: nothing to do.');
    for (const output of [dry, real, again]) {
      for (const key of [K1, K2, ...secrets]) expect(output.stdout + output.stderr).not.toContain(key);
    }
  }, 300_000);

  test('key ring errors exit 2 naming the flag and the key id, never quoting a key', async () => {
    const file = join(dir, 'app.db');
    seed(file, 1);
    const short = Buffer.from(K1, 'base64').subarray(0, 31).toString('base64');
    const cases: Array<[string, RegExp]> = [
      [
        JSON.stringify({ current: 'k1', keys: { k1: short } }),
        /--keys-env SEAL_KEYS: localKeyRing: option "keys" key "k1" is 31 bytes/,
      ],
      [
        JSON.stringify({ current: 'k3', keys: { k1: K1 } }),
        /option "current" must be the id of one of the keys \("k1"\), got "k3"/,
      ],
      [`{"current": "k1", "keys": {"k1": "${K1}"`, /--keys-env SEAL_KEYS: not JSON/],
      [K1, /--keys-env SEAL_KEYS: not JSON/],
    ];
    for (const [value, message] of cases) {
      const result = await run(['migrate', '--sqlite', file, '--keys-env', 'SEAL_KEYS'], { SEAL_KEYS: value });
      expect({ value, status: result.status }).toEqual({ value, status: 2 });
      expect(result.stderr).toMatch(message);
      for (const key of [K1, short, K1.slice(0, 12)]) expect(result.stdout + result.stderr).not.toContain(key);
    }
    const unset = await run(['migrate', '--sqlite', file, '--keys-env', 'NOT_SET_ANYWHERE']);
    expect(unset.status).toBe(2);
    expect(unset.stderr).toMatch(/--keys-env NOT_SET_ANYWHERE: that environment variable is not set/);
    const both = await run(['migrate', '--sqlite', file, '--keys-env', 'A', '--keys-file', 'b']);
    expect(both.stderr).toMatch(/--keys-env or --keys-file, not both/);
    // A key on the command line is not an option at all.
    const inline = await run(['migrate', '--sqlite', file, '--key', K1]);
    expect(inline.status).toBe(2);
    expect(inline.stderr).toMatch(/Unknown option '--key'/);
    const readable = join(dir, 'keys.json');
    writeFileSync(readable, JSON.stringify({ current: 'k1', keys: { k1: K1 } }), { mode: 0o644 });
    chmodSync(readable, 0o644);
    const warned = await run(['migrate', '--sqlite', file, '--keys-file', readable, '--dry-run']);
    expect(warned.status).toBe(0);
    expect(warned.stderr).toMatch(/can be read by other users of this host; chmod 600 it/);
  }, 300_000);

  // util-linux's `script` gives the command a pseudo-terminal; skipped without it, except under CI.
  const script = ['/usr/bin/script', '/bin/script'].find(existsSync);
  if (script === undefined && process.env['CI'] === 'true') {
    test('on a terminal, progress is a bar: needs util-linux script under CI=true', () => {
      throw new Error('/usr/bin/script (util-linux) is not installed; under CI=true this test must run.');
    });
  } else if (script === undefined) {
    console.warn('Skipping the progress-bar test: /usr/bin/script (util-linux) is not installed.');
  }
  (script === undefined ? test.skip : test)('on a terminal, progress is a bar redrawn in place', async () => {
    const file = join(dir, 'app.db');
    seed(file, 4);
    // `script` runs the command on a pseudo-terminal, as a user's shell would.
    const tty = await new Promise<string>((done, reject) => {
      const child = spawn(
        script as string,
        ['-qefc', `${TSX} lib/migration/cli.ts migrate --sqlite ${file} --cost 10`, '/dev/null'],
        {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (data: Buffer) => (out += data.toString()));
      child.on('exit', (code) => (code === 0 ? done(out) : reject(new Error(`exit ${String(code)}: ${out}`))));
    });
    expect(tty).toMatch(/\r\[#{30}\] 4\/4 100% {2}failed 0/);
    expect(tty).not.toContain('progress: ');
  });
});

const binary = redisServerFor('the migrate command on Redis');
(binary === undefined ? describe.skip : describe)('npx express-password-guard migrate --redis', () => {
  let server: RedisServer;
  const clients = new RedisClients();

  beforeAll(async () => {
    server = await startRedisServer(binary as string);
  });
  afterAll(async () => {
    await clients.closeAll();
    await server?.stop();
  });

  test('migrates a RedisStore by URL and prefix, leaving other prefixes alone', async () => {
    const client = await clients.connected(server.url);
    const store = new RedisStore({ client, prefix: 'app:pw:' });
    const other = new RedisStore({ client, prefix: 'other:pw:' });
    await store.setIfAbsent('u-1', { hash: hex('sha1', 'quiet harbour bell'), setAt: SET_AT, scheme: 'sha1' });
    await store.setIfAbsent('u-2', { hash: 'copper kettle summer', setAt: SET_AT, scheme: 'plain' });
    await other.setIfAbsent('u-3', { hash: 'left alone', setAt: SET_AT, scheme: 'plain' });

    const args = ['migrate', '--redis', server.url, '--prefix', 'app:pw:', '--cost', '10'];
    const first = await run(args);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`Redis store ${server.url}`);
    expect(summary(first.stdout)).toEqual({ seen: 2, upgraded: 2, current: 0, failed: 0 });
    expect((await store.get('u-1'))?.scheme).toBe('bcrypt+sha1');
    expect((await store.get('u-2'))?.scheme).toBe('bcrypt');
    expect((await other.get('u-3'))?.scheme).toBe('plain');
    expect((await verifyPassword(store, 'u-1', 'quiet harbour bell', { cost: 10 })).match).toBe(true);
    expect((await verifyPassword(store, 'u-2', 'copper kettle summer', { cost: 10 })).match).toBe(true);

    expect(summary((await run(args)).stdout)).toEqual({ seen: 2, upgraded: 0, current: 2, failed: 0 });
  });

  test('--redis-file and --redis-env take a URL with a password; the output masks every credential ioredis reads', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'epg-redis-url-')), 'redis-url');
    writeFileSync(file, `${server.url}\n`);
    const fromFile = await run(['migrate', '--redis-file', file, '--prefix', 'file:pw:', '--cost', '10']);
    expect(fromFile.status).toBe(0);
    expect(fromFile.stdout).toContain(`Redis store ${server.url}`);

    const port = await freePort();
    const urls = [
      `redis://:s3cret-pass@127.0.0.1:${port}`,
      `redis://127.0.0.1:${port}/?password=s3cret-query`,
      `redis://127.0.0.1:${port}/?sentinelPassword=s3cret-sentinel&db=0`,
    ];
    for (const url of urls) {
      const result = await run(['migrate', '--redis-env', 'MIGRATE_REDIS_URL'], { MIGRATE_REDIS_URL: url });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/cannot connect to Redis at redis:\/\/.*\*\*\*/);
      expect(result.stderr + result.stdout).not.toMatch(/s3cret/);
    }
  });
});
