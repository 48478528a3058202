import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { expressVersions } from '../../helpers/express';

// The children run the TypeScript sources through tsx (a dev dependency), so the test
// needs no build step and sees exactly the code under test.
const root = resolve(__dirname, '..', '..', '..');
const fixture = join(__dirname, '..', '..', 'fixtures', 'password-server.ts');

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
}

function startServer(filename: string, major: string): Promise<Server> {
  const child = fork(fixture, [filename, major], {
    cwd: root,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('password server did not start in time'));
    }, 20_000);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolvePort({ child, url: `http://127.0.0.1:${(message as { port: number }).port}` });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`password server exited with ${String(code)} before listening`));
    });
  });
}

function kill(server: Server): Promise<void> {
  return new Promise((done) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) {
      done();
      return;
    }
    server.child.once('exit', () => done());
    // No graceful shutdown: what was answered 204 must already be on disk.
    server.child.kill('SIGKILL');
  });
}

let dir: string;
const running: Server[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-processes-'));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map(kill));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(expressVersions)('two processes sharing one SQLite file on %s', (name) => {
  test('exactly one concurrent set wins, every other gets 409, and after a restart only the winner verifies', async () => {
    const major = name === 'express 4' ? '4' : '5';
    const filename = join(dir, `shared-${major}.db`);
    const servers = await Promise.all([startServer(filename, major), startServer(filename, major)]);
    running.push(...servers);

    const attempts = servers.flatMap((server, s) =>
      Array.from({ length: 8 }, (_, i) => ({ server, password: `process ${s} attempt ${i}` })),
    );
    const statuses = await Promise.all(
      attempts.map(({ server, password }) =>
        request(server.url)
          .post('/servers/srv-shared/password')
          .send({ password })
          .then((res) => res.status),
      ),
    );
    expect(statuses.filter((status) => status === 204)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(attempts.length - 1);
    const winner = attempts[statuses.indexOf(204)]?.password;

    // Every attempt of both processes reached the database's set-once (the fixture's
    // storer has no pre-check): the 15 refusals were decided by SQLite, across processes.
    const stats = await Promise.all(
      servers.map(async (server) => (await request(server.url).get('/stats')).body as { setIfAbsentCalls: number; pid: number }),
    );
    expect(new Set(stats.map((s) => s.pid)).size).toBe(2);
    expect(stats.map((s) => s.setIfAbsentCalls)).toEqual([8, 8]);

    await Promise.all(running.splice(0).map(kill));
    const restarted = await startServer(filename, major);
    running.push(restarted);
    const verified = await Promise.all(
      attempts.map(async ({ password }) => ({
        password,
        status: (await request(restarted.url).post('/servers/srv-shared/password/verify').send({ password })).status,
      })),
    );
    expect(verified.filter((v) => v.status === 200).map((v) => v.password)).toEqual([winner]);
    expect(verified.filter((v) => v.status === 403)).toHaveLength(attempts.length - 1);
    // And the set-once still holds across the restart.
    expect((await request(restarted.url).post('/servers/srv-shared/password').send({ password: 'late comer' })).status).toBe(409);
  });
});
