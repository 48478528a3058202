import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LEGACY_DEMO_RECORDS } from '../../examples/demo-app';
import { startDemo as start, waitForOutput as waitFor } from '../helpers/demo-process';
import { freePort } from '../helpers/redis-server';

// `npm start` as a user runs it: a real process, a real port, a real SQLite file.

const ROOT = resolve(__dirname, '..', '..');
describe('the demo server (npm start)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'epg-demo-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('prints its URL and credentials, creates DATA_DIR, and stops cleanly on SIGTERM after an in-flight set', async () => {
    const port = await freePort();
    const dataDir = join(dir, 'nested', 'data');
    const demo = start({ PORT: String(port), DATA_DIR: dataDir, BCRYPT_COST: '13' });
    await waitFor(demo, 'listening on');
    expect(demo.output()).toContain(`http://127.0.0.1:${port}`);
    expect(demo.output()).toContain('Bearer alice-token');
    expect(existsSync(join(dataDir, 'demo.db'))).toBe(true);
    expect(demo.output()).toContain(
      `compute endpoint (python-novaclient endpoint_override, X-Auth-Token: <token>): http://127.0.0.1:${port}/v2.1`,
    );
    // The seeded servers' private keys, for the walk-through, readable by their owner only.
    for (const server of ['srv-alice', 'srv-bob']) expect(statSync(join(dataDir, `${server}.pem`)).mode & 0o777).toBe(0o600);

    const base = `http://127.0.0.1:${port}/servers/srv-alice/password`;
    const auth = { Authorization: 'Bearer alice-token' };
    // A cost-13 hash takes long enough for SIGTERM to land while it runs.
    const inFlight = fetch(base, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ password: 'plum orchard at dusk 7' }),
    });
    await new Promise((r) => setTimeout(r, 100));
    demo.child.kill('SIGTERM');
    expect((await inFlight).status).toBe(204);
    expect(await demo.exited).toBe(0);
    expect(demo.output()).toContain('demo: stopped');

    // The hash outlived the process.
    // Restarted with a real token and secrets from the environment: none of them is printed.
    const again = start({
      PORT: String(port),
      DATA_DIR: dataDir,
      BOB_TOKEN: 'bob-real-token-0b1c',
      METADATA_SECRET: 'real-metadata-secret-77',
      PASSWORD_PEPPER: 'demo-pepper-change-me-0123456789abcdef',
      SEALING_KEY: Buffer.alloc(32, 9).toString('base64'),
    });
    await waitFor(again, 'listening on');
    expect(again.output()).toContain('bob    (from BOB_TOKEN)');
    expect(again.output()).toContain('Bearer alice-token');
    expect(again.output()).not.toMatch(/bob-real-token|real-metadata-secret/);
    expect(again.output()).not.toContain(Buffer.alloc(32, 9).toString('base64'));
    expect(again.output()).toContain('sealing key: (from SEALING_KEY)');
    const state = (await (await fetch(base, { headers: auth })).json()) as { passwordSet: boolean };
    expect(state.passwordSet).toBe(true);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  test('SEED_LEGACY=1 seeds the legacy dataset, prints its passwords and the migrate command, which works as printed', async () => {
    const port = await freePort();
    const dataDir = join(dir, 'data');
    const demo = start({ PORT: String(port), DATA_DIR: dataDir, SEED_LEGACY: '1' });
    try {
      await waitFor(demo, 'npm run migrate -- ');
      expect(demo.output()).toContain('srv-legacy-md5       alice  md5       tangerine lantern 42');
      const base = `http://127.0.0.1:${port}/servers`;
      const alice = { Authorization: 'Bearer alice-token', 'Content-Type': 'application/json' };
      const algorithm = async (server: string): Promise<string> =>
        ((await (await fetch(`${base}/${server}/password`, { headers: alice })).json()) as { algorithm: string }).algorithm;
      expect(await algorithm('srv-legacy-md5')).toBe('md5');

      // The printed line, run as it is by a shell (npm run replaced by node and tsx's loader).
      const line = /^ {2}(PASSWORD_PEPPER=.+) npm run migrate -- (.+)$/m.exec(demo.output());
      expect(line).not.toBeNull();
      const migration = spawnSync(
        '/bin/sh',
        ['-c', `${line?.[1] ?? ''} "${process.execPath}" --import tsx lib/migration/cli.ts migrate ${line?.[2] ?? ''}`],
        { cwd: ROOT, encoding: 'utf8' },
      );
      expect(migration.stderr).toMatch(/^progress: 4\/4 records/m);
      expect(migration.status).toBe(0);
      expect(migration.stdout).toMatch(/records seen +4\n +upgraded +4\n/);
      expect(await algorithm('srv-legacy-md5')).toBe('bcrypt+md5');
      // The guest password, sealed under the demo's key, back to its owner as it was seeded.
      const guest = await fetch(`http://127.0.0.1:${port}/v2.1/servers/srv-legacy-metadata/os-server-password`, {
        headers: { 'X-Auth-Token': 'alice-token' },
      });
      expect(await guest.json()).toEqual({ password: LEGACY_DEMO_RECORDS.find((r) => r.scheme === 'metadata')?.password });
      const verified = await fetch(`${base}/srv-legacy-md5/password/verify`, {
        method: 'POST',
        headers: alice,
        body: JSON.stringify({ password: 'tangerine lantern 42' }),
      });
      expect(await verified.json()).toEqual({ match: true });
      expect(await algorithm('srv-legacy-md5')).toBe('bcrypt+hmac-sha256');
    } finally {
      demo.child.kill('SIGTERM');
      await demo.exited;
    }
  });

  test('refuses a non-loopback HOST while a secret or token keeps its public default', async () => {
    const demo = start({ HOST: '0.0.0.0', PORT: '0', DATA_DIR: join(dir, 'data'), METADATA_SECRET: 'set-by-operator-0123' });
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toMatch(
      /HOST=0\.0\.0\.0 is reachable from other machines, and PASSWORD_PEPPER, SEALING_KEY, ALICE_TOKEN, BOB_TOKEN, ADMIN_TOKEN still have their public demo defaults/,
    );
    expect(demo.output()).not.toContain('set-by-operator-0123');
  });

  test('a port in use is a clear error and a non-zero exit', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const { port } = blocker.address() as AddressInfo;
    try {
      const demo = start({ PORT: String(port), DATA_DIR: join(dir, 'data') });
      expect(await demo.exited).toBe(1);
      expect(demo.output()).toContain(`127.0.0.1:${port} is already in use`);
      expect(demo.output()).not.toContain('listening on');
    } finally {
      blocker.close();
    }
  });
});
