import { spawn } from 'node:child_process';
import { constants, publicEncrypt } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import express5 from 'express';
import { LEGACY_METADATA_TABLE, demoSqliteStore } from '../../examples/demo-app';
import type { Demo } from '../../examples/demo-app';
import type { ProblemLogEntry } from '../../lib';
import { demoMigrate, openTestDemo } from '../helpers/demo';
import type { TestDemo } from '../helpers/demo';
import { metadataProxy } from '../helpers/metadata-proxy';
import type { MetadataProxy } from '../helpers/metadata-proxy';
import { openStackPythonFor } from '../helpers/openstack-clients';
import { runMigrate } from '../helpers/migrate-cli';
import { listen } from '../helpers/raw-http';
import type { Listening } from '../helpers/raw-http';

// The reviewed service's real clients against the demo: a guest step doing what the
// cloudbase-init agent does, through a metadata proxy that forwards and maps statuses as
// neutron's does, then python-novaclient's own get_password / clear_password as the owner.

const SUITE = 'OpenStack interop with the real clients';
const python = openStackPythonFor(SUITE);
const withClients = python === undefined ? describe.skip : describe;
const SCRIPT = resolve(__dirname, '..', 'fixtures', 'openstack_clients.py');

const METADATA_SECRET = 'interop-metadata-secret-0123456789';
const SEALING_KEY = Buffer.alloc(32, 7).toString('base64');
const PEPPER = 'interop-pepper-0123456789abcdef0123';
const PASSWORD = 'Guest-admin Pa55word, set by the agent';

function runPython(input: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolveRun, reject) => {
    // Async: the demo and the proxy answer in this same process while Python runs.
    const child = spawn(python ?? '', [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${SCRIPT} ${String(input['step'])} exited ${code}:\n${stderr}`));
      else resolveRun(JSON.parse(stdout) as Record<string, unknown>);
    });
    child.stdin.end(JSON.stringify(input));
  });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

withClients(SUITE, () => {
  let fixture: TestDemo;
  let dir: string;
  let demo: Demo;
  let service: Listening;
  let proxy: MetadataProxy;
  const logged: ProblemLogEntry[] = [];

  beforeAll(async () => {
    fixture = openTestDemo('interop', {
      express: express5,
      keyPairs: true,
      sealingKey: SEALING_KEY,
      metadataSecret: METADATA_SECRET,
      pepper: PEPPER,
      log: (entry) => logged.push(entry),
    });
    ({ demo, dir } = fixture);
    service = await listen(demo.app);
    proxy = await metadataProxy(service.port, { secret: METADATA_SECRET, instanceId: 'srv-alice', tenantId: 'alice-project' });
  });

  afterAll(async () => {
    await proxy.close();
    await service.close();
    await fixture.close();
  });

  test('the guest agent sets the password through the proxy, and novaclient gets it back, refuses a stranger and clears it', async () => {
    const guest = await runPython({ step: 'guest', metadata_url: proxy.url, password: PASSWORD });
    expect(guest['versions']).toEqual([200, expect.arrayContaining(['2013-04-04', 'latest'])]);
    expect(guest['uuid']).toBe('srv-alice');
    expect(guest['can_post']).toBe(200);
    // Unset: an empty body, which the agent reads as "not set yet".
    expect(guest['before']).toEqual([200, 0]);
    // Sent with no Content-Type, answered 200 with no body.
    expect(guest['post']).toEqual([200, '', null]);
    expect(guest['after']).toEqual([200, true]);
    expect(guest['again']).toBe(409);
    const posted = guest['posted_b64'] as string;

    const compute = `http://127.0.0.1:${service.port}/v2.1`;
    const asAlice = { compute_url: compute, server: 'srv-alice', token: 'alice-token', private_key: join(dir, 'srv-alice.pem') };
    const owner = await runPython({ step: 'owner', ...asAlice, foreign_token: 'bob-token' });
    expect(owner['password']).toBe(PASSWORD);
    expect(owner['ciphered']).toBe(posted);
    expect(owner['foreign']).toEqual(['NotFound', 404, 'The resource does not exist or the caller may not access it.']);
    expect(owner['missing']).toEqual(owner['foreign']);

    // The metadata route never answered a status the proxy would turn into a 500.
    expect(proxy.upstreamStatuses.length).toBeGreaterThan(0);
    for (const status of proxy.upstreamStatuses) expect([200, 400, 403, 404, 409]).toContain(status);
    expect(logged).toEqual([]);

    // While it is stored, nothing the guest posted is in any file under DATA_DIR, in any form.
    const ciphertext = Buffer.from(posted, 'base64');
    const forms = [
      Buffer.from(posted),
      Buffer.from(ciphertext.toString('base64url')),
      Buffer.from(ciphertext.toString('hex')),
      Buffer.from(ciphertext.toString('hex').toUpperCase()),
      ciphertext.subarray(0, 32),
      ciphertext.subarray(ciphertext.length - 32),
      Buffer.from(posted.slice(0, 40)),
      Buffer.from(PASSWORD),
    ];
    const files = filesUnder(dir);
    expect(files).toEqual(expect.arrayContaining([join(dir, 'demo.db'), join(dir, 'srv-alice.pem')]));
    for (const file of files) {
      const bytes = readFileSync(file);
      for (const form of forms) expect([file, bytes.includes(form)]).toEqual([file, false]);
    }
    expect(statSync(join(dir, 'srv-alice.pem')).mode & 0o777).toBe(0o600);

    const cleared = await runPython({ step: 'clear', ...asAlice });
    expect(cleared).toEqual({ clear: true, after_clear: '' });
  });

  test('nova get-password on an instance migrated from the reviewed API: the owner decrypts the password the guest had posted before the retrofit', async () => {
    // What the reviewed API kept for srv-bob: the guest's ciphertext under the instance's key, base64, in clear in four chunks.
    const before = 'Pre-retrofit guest Pa55word';
    const key = readFileSync(join(dir, 'srv-bob.pem'));
    const posted = publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(before)).toString('base64');
    const db = demoSqliteStore(demo).database;
    db.exec(`CREATE TABLE ${LEGACY_METADATA_TABLE} (instance_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT)`);
    const insert = db.prepare(`INSERT INTO ${LEGACY_METADATA_TABLE} VALUES (?, ?, ?)`);
    for (let i = 0; i < 4; i++) insert.run('srv-bob', `password_${i}`, posted.slice(i * 255, (i + 1) * 255));

    const { args, env } = demoMigrate(dir, { pepper: PEPPER, sealingKey: SEALING_KEY });
    const migration = runMigrate(args, env);
    expect(migration.status).toBe(0);
    expect(migration.stdout).toMatch(/upgraded +1\n/);

    const compute = `http://127.0.0.1:${service.port}/v2.1`;
    const asBob = { compute_url: compute, server: 'srv-bob', token: 'bob-token', private_key: join(dir, 'srv-bob.pem') };
    const owner = await runPython({ step: 'owner', ...asBob, foreign_token: 'alice-token' });
    expect(owner['password']).toBe(before);
    expect(owner['ciphered']).toBe(posted);
    expect(owner['foreign']).toEqual(['NotFound', 404, 'The resource does not exist or the caller may not access it.']);
    expect(db.prepare(`SELECT group_concat(value, '') AS joined FROM ${LEGACY_METADATA_TABLE}`).get()).toEqual({ joined: '' });
    expect(logged).toEqual([]);
  }, 60_000);
});
