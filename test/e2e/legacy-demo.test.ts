import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { LEGACY_DEMO_RECORDS, LEGACY_METADATA_TABLE, createDemoApp, demoSqliteStore } from '../../examples/demo-app';
import type { Demo } from '../../examples/demo-app';
import { MetadataChunks } from '../../lib';
import { demoMigrate, testDemoOptions } from '../helpers/demo';
import { expressVersions } from '../helpers/express';
import { runMigrate } from '../helpers/migrate-cli';
import type { MigrateRun } from '../helpers/migrate-cli';
import type { ExpressFactory } from '../helpers/express';

// The demo's seeded legacy dataset (SEED_LEGACY=1), through HTTP: verify before the
// migration, migrate with the real command in a child process (as another terminal would,
// while the demo runs), verify after, watch each record end as a plain bcrypt hash, and
// the guest password come back to its owner from the sealed record.

const PEPPER = 'legacy-demo-pepper-0123456789abcdef0123';
const SEALING_KEY = Buffer.alloc(32, 0x5e).toString('base64');
const TOKENS: Record<string, string> = { alice: 'Bearer alice-token', bob: 'Bearer bob-token', admin: 'Bearer admin-token' };
const stored = LEGACY_DEMO_RECORDS.filter((r) => r.scheme !== 'metadata');
const metadata = LEGACY_DEMO_RECORDS.find((r) => r.scheme === 'metadata');

describe.each(expressVersions)('the demo legacy dataset on %s', (_name, express: ExpressFactory) => {
  let dir: string;
  let demo: Demo;
  const open = (seedLegacy: boolean): Demo =>
    createDemoApp(
      testDemoOptions(dir, {
        express,
        metadataSecret: 'legacy-demo-metadata-secret',
        pepper: PEPPER,
        sealingKey: SEALING_KEY,
        guessLimit: 100,
        seedLegacy,
      }),
    );

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'epg-legacy-demo-'));
    demo = open(true);
  });
  afterEach(() => {
    demo.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const state = async (server: string): Promise<string | undefined> =>
    (
      (
        await request(demo.app)
          .get(`/servers/${server}/password`)
          .set('Authorization', TOKENS['admin'] ?? '')
      ).body as { algorithm?: string }
    ).algorithm;
  const verify = async (server: string, owner: string, password: string): Promise<boolean> => {
    const res = await request(demo.app)
      .post(`/servers/${server}/password/verify`)
      .set('Authorization', TOKENS[owner] ?? '')
      .send({ password });
    expect(res.status).toBe(200);
    expect(res.text).not.toMatch(/\$2b\$|[0-9a-f]{32}/);
    return (res.body as { match: boolean }).match;
  };

  test('without the flag nothing legacy is seeded', async () => {
    demo.close();
    rmSync(join(dir, 'demo.db'));
    demo = open(false);
    const res = await request(demo.app)
      .get('/servers/srv-legacy-md5/password')
      .set('Authorization', TOKENS['admin'] ?? '');
    expect(res.status).toBe(404);
  });

  test('before migration: each seeded scheme verifies its password, refuses a wrong one, and is upgraded on verify', async () => {
    for (const record of stored) {
      expect(await state(record.server)).toBe(record.scheme);
      expect(await verify(record.server, record.owner, `${record.password} `)).toBe(false);
      expect(await state(record.server)).toBe(record.scheme);
      expect(await verify(record.server, record.owner, record.password)).toBe(true);
      expect(await state(record.server)).toBe('bcrypt+hmac-sha256');
      expect(await verify(record.server, record.owner, record.password)).toBe(true);
    }
  });

  const secrets = { pepper: PEPPER, sealingKey: SEALING_KEY };
  /** The command the demo prints, with a test's cost. */
  const printed = (): string[] => demoMigrate(dir, secrets).args;
  const migrate = (args: readonly string[]): MigrateRun => {
    const run = runMigrate(args, demoMigrate(dir, secrets).env);
    // Nothing secret on either stream, whatever the run did.
    for (const secret of [SEALING_KEY, PEPPER, ...LEGACY_DEMO_RECORDS.map((r) => r.password.slice(0, 20))])
      expect(run.stdout + run.stderr).not.toContain(secret);
    return run;
  };
  const guestPassword = (as: string): request.Test =>
    request(demo.app)
      .get('/v2.1/servers/srv-legacy-metadata/os-server-password')
      .set('Authorization', TOKENS[as] ?? '');
  /** Every byte SQLite keeps for the demo's file: the database and its WAL. */
  const fileBytes = (): Buffer =>
    Buffer.concat(
      ['demo.db', 'demo.db-wal', 'demo.db-journal']
        .map((f) => join(dir, f))
        .filter(existsSync)
        .map((f) => readFileSync(f)),
    );
  const chunks = (): string[] =>
    (
      demoSqliteStore(demo)
        .database.prepare(`SELECT value FROM ${LEGACY_METADATA_TABLE} WHERE instance_uuid = ? ORDER BY key`)
        .all('srv-legacy-metadata') as Array<{ value: string }>
    ).map((row) => row.value);

  test('migrated with the sealing keys: the owner gets the guest password back byte for byte, another user a 404; every other record is bcrypt at once', async () => {
    const posted = metadata?.password ?? '';
    const decoded = Buffer.from(posted, 'base64');
    // As stored (and its chunks), base64-decoded, and hex of that.
    const forms = [
      ...[0, 255].map((at) => Buffer.from(posted.slice(at, at + 60))),
      decoded.subarray(0, 40),
      decoded.subarray(decoded.length - 40),
      Buffer.from(decoded.toString('hex').slice(0, 80)),
      Buffer.from(decoded.toString('hex').toUpperCase().slice(0, 80)),
    ];
    // The test can fail: the chunks are in the file, as stored, before the migration.
    expect(posted.length).toBeGreaterThan(255 + 60);
    expect(forms.slice(0, 2).every((form) => fileBytes().includes(form))).toBe(true);
    expect(JSON.parse((await guestPassword('alice').expect(200)).text)).toEqual({ password: '' });
    const untouched = fileBytes();

    const noKeys = migrate([
      '--sqlite',
      join(dir, 'demo.db'),
      '--metadata-table',
      LEGACY_METADATA_TABLE,
      '--pepper-env',
      'PASSWORD_PEPPER',
    ]);
    expect(noKeys.status).toBe(2);
    expect(noKeys.stderr).toMatch(
      /--metadata-table needs the sealing storer's keys .* hashing them would make them unrecoverable/,
    );
    const dry = migrate([...printed(), '--dry-run']);
    expect(dry.status).toBe(0);
    expect(dry.stdout).toMatch(/records seen +4\n +would upgrade +4\n +already current +0\n +failed +0\n/);
    expect(fileBytes().equals(untouched)).toBe(true);
    expect(chunks().join('')).toBe(posted);

    const real = migrate(printed());
    expect(real.status).toBe(0);
    expect(real.stdout).toMatch(/records seen +4\n +upgraded +4\n +already current +0\n +failed +0\n/);
    expect(chunks()).toEqual(['', '', '', '']);
    const bytes = fileBytes();
    for (const form of forms) expect(bytes.includes(form)).toBe(false);

    const owner = await guestPassword('alice').expect(200);
    expect(owner.headers['cache-control']).toBe('no-store');
    // The body as sent: exactly the value the guest posted, not a re-encoding of it.
    expect(owner.text).toBe(`{"password":"${posted}"}`);
    expect(Buffer.from((JSON.parse(owner.text) as { password: string }).password).equals(Buffer.from(posted))).toBe(true);
    const stranger = await guestPassword('bob');
    expect(stranger.status).toBe(404);
    expect(stranger.text).not.toContain(posted.slice(0, 20));

    expect(await state('srv-legacy-md5')).toBe('bcrypt+md5');
    expect(await state('srv-legacy-sha1')).toBe('bcrypt+sha1');
    expect(await state('srv-legacy-plain')).toBe('bcrypt+hmac-sha256');
    // The guest password is no console password: nothing was hashed under the server's id.
    expect(await state('srv-legacy-metadata')).toBeUndefined();
    for (const record of stored) {
      expect(await verify(record.server, record.owner, record.password.slice(1))).toBe(false);
      expect(await verify(record.server, record.owner, record.password)).toBe(true);
      expect(await state(record.server)).toBe('bcrypt+hmac-sha256');
    }

    // A second run changes nothing.
    const records = (): unknown[] => demoSqliteStore(demo).database.prepare('SELECT * FROM password_records ORDER BY id').all();
    const before = records();
    const again = migrate(printed());
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/records seen +4\n +upgraded +0\n +already current +4\n +failed +0\n/);
    expect(records()).toEqual(before);

    // Restarting with the flag seeds nothing over what was migrated or upgraded.
    demo.close();
    demo = open(true);
    expect(chunks()).toEqual(['', '', '', '']);
    expect(await state('srv-legacy-md5')).toBe('bcrypt+hmac-sha256');
    expect((await guestPassword('alice').expect(200)).text).toBe(`{"password":"${posted}"}`);
  }, 90_000);

  test('a guest password the earlier, hashing migration left is reported unrecoverable, with what to do', async () => {
    // What that run left: blank chunks and a bcrypt hash under the server's id.
    const db = demoSqliteStore(demo).database;
    db.prepare(`UPDATE ${LEGACY_METADATA_TABLE} SET value = '' WHERE instance_uuid = ?`).run('srv-legacy-metadata');
    demo.store.setIfAbsent('srv-legacy-metadata', {
      hash: '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
      setAt: '2026-01-01T00:00:00.000Z',
      scheme: 'bcrypt+hmac-sha256',
    });
    const run = migrate(printed());
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      '  unrecoverable srv-legacy-metadata: its legacy password is gone, and the store holds only a bcrypt hash of it (scheme "bcrypt+hmac-sha256" under "srv-legacy-metadata")',
    );
    expect(run.stdout).toMatch(/ +failed +1\n +unrecoverable +1\n/);
    expect(run.stdout).toContain("Have each reset (nova clear-password, then the guest's next boot or password reset)");
    expect(run.stdout).not.toContain('$2b$');
  }, 60_000);

  test('another user cannot verify a legacy record: the ownership check comes first', async () => {
    const res = await request(demo.app)
      .post('/servers/srv-legacy-md5/password/verify')
      .set('Authorization', TOKENS['bob'] ?? '')
      .send({ password: 'tangerine lantern 42' });
    expect(res.status).toBe(404);
    expect(await state('srv-legacy-md5')).toBe('md5');
  });

  test('the metadata record is seeded as the reviewed API keeps it: four chunks of at most 255 characters, read in key order', () => {
    const chunks = demoSqliteStore(demo)
      .database.prepare(`SELECT key, value FROM ${LEGACY_METADATA_TABLE} WHERE instance_uuid = ? ORDER BY key`)
      .all('srv-legacy-metadata') as Array<{ key: string; value: string }>;
    expect(chunks.map((c) => c.key)).toEqual(['password_0', 'password_1', 'password_2', 'password_3']);
    expect(chunks.every((c) => c.value.length <= 255)).toBe(true);
    const source = new MetadataChunks({ database: demoSqliteStore(demo).database, table: LEGACY_METADATA_TABLE });
    expect(source.read('srv-legacy-metadata')).toBe(metadata?.password);
    expect(Buffer.byteLength(metadata?.password ?? '')).toBeGreaterThan(72);
  });
});
