import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { LEGACY_DEMO_RECORDS, LEGACY_METADATA_TABLE, createDemoApp, demoSqliteStore } from '../../examples/demo-app';
import type { Demo } from '../../examples/demo-app';
import { MetadataChunks, migratePasswords } from '../../lib';
import { testDemoOptions } from '../helpers/demo';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';

// The demo's seeded legacy dataset (SEED_LEGACY=1), through HTTP: verify before the
// migration, migrate, verify after, and watch each record end as a plain bcrypt hash.

const PEPPER = 'legacy-demo-pepper-0123456789abcdef0123';
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

  test('after migration: every record is bcrypt at once, the right password verifies, a wrong one does not, and a verify unwraps it', async () => {
    const source = new MetadataChunks({ database: demoSqliteStore(demo).database, table: LEGACY_METADATA_TABLE });
    const summary = await migratePasswords({ store: demo.store, source, cost: 10, pepper: PEPPER });
    expect(summary).toMatchObject({ seen: 4, upgraded: 4, current: 0, failed: 0, scrubbed: true });
    expect(await state('srv-legacy-md5')).toBe('bcrypt+md5');
    expect(await state('srv-legacy-sha1')).toBe('bcrypt+sha1');
    expect(await state('srv-legacy-plain')).toBe('bcrypt+hmac-sha256');
    expect(await state('srv-legacy-metadata')).toBe('bcrypt+hmac-sha256');
    expect(source.read('srv-legacy-metadata')).toBeUndefined();

    for (const record of LEGACY_DEMO_RECORDS) {
      expect(await verify(record.server, record.owner, record.password.slice(1))).toBe(false);
      expect(await verify(record.server, record.owner, record.password)).toBe(true);
      expect(await state(record.server)).toBe('bcrypt+hmac-sha256');
    }
    // Restarting with the flag seeds nothing over what was migrated or upgraded.
    demo.close();
    demo = open(true);
    expect(await state('srv-legacy-md5')).toBe('bcrypt+hmac-sha256');
    expect(
      new MetadataChunks({ database: demoSqliteStore(demo).database, table: LEGACY_METADATA_TABLE }).read('srv-legacy-metadata'),
    ).toBeUndefined();
    expect(await verify('srv-legacy-md5', 'alice', 'tangerine lantern 42')).toBe(true);
  });

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
