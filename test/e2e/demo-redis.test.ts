import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { startDemo, stopDemo, waitForOutput } from '../helpers/demo-process';
import type { DemoProcess } from '../helpers/demo-process';
import { RedisClients, freePort, redisServerFor, startRedisServer } from '../helpers/redis-server';
import type { RedisServer } from '../helpers/redis-server';
import { expectProblem } from '../helpers/problem';

// `REDIS_URL=… npm start`, twice, on one Redis: two real processes, as two hosts would
// run them, that must act as one app for set-once, server ownership and guess budgets.

const ALICE = { Authorization: 'Bearer alice-token' };
const BOB = { Authorization: 'Bearer bob-token' };
const ADMIN = { Authorization: 'Bearer admin-token' };
const GUESS_LIMIT = 3;

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown>;
}

async function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { ...headers, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const clients = new RedisClients();
afterAll(() => clients.closeAll());

describe('the demo with REDIS_URL pointing nowhere', () => {
  test('refuses to start, saying why, rather than serve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'epg-demo-redis-'));
    try {
      const redisPort = await freePort();
      const demo = startDemo({
        PORT: String(await freePort()),
        DATA_DIR: join(dir, 'data'),
        REDIS_URL: `redis://:not-printed@127.0.0.1:${redisPort}`,
      });
      expect(await demo.exited).toBe(1);
      expect(demo.output()).toContain(
        `demo: cannot start: Redis at redis://:***@127.0.0.1:${redisPort} is unreachable (connect ECONNREFUSED 127.0.0.1:${redisPort})`,
      );
      expect(demo.output()).not.toContain('listening on');
      expect(demo.output()).not.toContain('not-printed');
      // With REDIS_URL, nothing is kept on disk.
      expect(existsSync(join(dir, 'data'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const binary = redisServerFor('the two-process demo on Redis');
const withRedis = binary === undefined ? describe.skip : describe;

withRedis('two demo processes on one Redis', () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let dir: string;
  let demos: DemoProcess[] = [];
  let urls: string[] = [];

  beforeAll(async () => {
    redisServer = await startRedisServer(binary as string);
    redis = await clients.connected(redisServer.url);
    dir = mkdtempSync(join(tmpdir(), 'epg-demo-redis-'));
    const ports = [await freePort(), await freePort()];
    demos = ports.map((port) =>
      startDemo({
        PORT: String(port),
        // Would hold demo.db without REDIS_URL; with it, must stay untouched.
        DATA_DIR: join(dir, 'data'),
        REDIS_URL: redisServer.url,
        GUESS_LIMIT: String(GUESS_LIMIT),
        GUESS_WINDOW_MS: '60000',
      }),
    );
    await Promise.all(demos.map((demo) => waitForOutput(demo, 'listening on')));
    urls = ports.map((port) => `http://127.0.0.1:${port}`);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(demos.map((demo) => stopDemo(demo, 'SIGKILL')));
    await redisServer?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const a = (): string => urls[0] as string;
  const b = (): string => urls[1] as string;

  test('both say where their state is, and keep none on disk', () => {
    for (const demo of demos) {
      expect(demo.output()).toContain(`data: ${redisServer.url} (servers, passwords and guess counts; keys epg-demo:*)`);
      expect(demo.output()).toContain(
        `guess limit: ${GUESS_LIMIT} verify attempts per caller and server every 60 s, counted in Redis, shared by every process`,
      );
    }
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  test('concurrent sets across both processes: exactly one 204, every other 409, and both see the winner', async () => {
    const attempts = Array.from({ length: 10 }, (_, i) => ({
      base: i % 2 === 0 ? a() : b(),
      password: `orchard ${i} plum dusk lantern`,
    }));
    const answers = await Promise.all(
      attempts.map(({ base, password }) => call(base, 'POST', '/servers/srv-alice/password', ALICE, { password })),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 204)).toHaveLength(1);
    // Five at once per process by one caller: past her share of the hash pool a few may be
    // refused busy (503) instead of 409; none is stored either way.
    expect(statuses.filter((status) => status === 409 || status === 503)).toHaveLength(9);
    expect(statuses.filter((status) => status === 409).length).toBeGreaterThanOrEqual(2);
    for (const answer of answers.filter((x) => x.status === 409)) {
      expectProblem(answer, 409, 'password.already_set');
    }
    // Each process refused some: neither decided alone.
    for (const base of [a(), b()]) {
      expect(answers.some((answer, i) => attempts[i]?.base === base && answer.status === 409)).toBe(true);
    }

    const winner = attempts[statuses.indexOf(204)]?.password as string;
    const states = await Promise.all([a(), b()].map((base) => call(base, 'GET', '/servers/srv-alice/password', ALICE)));
    expect(states[0]?.body).toEqual({ passwordSet: true, setAt: expect.any(String), algorithm: 'bcrypt+hmac-sha256' });
    expect(states[1]?.body).toEqual(states[0]?.body);
    expect((await call(b(), 'POST', '/servers/srv-alice/password/verify', ALICE, { password: winner })).body).toEqual({
      match: true,
    });
    expect((await call(a(), 'POST', '/servers/srv-alice/password/verify', ALICE, { password: winner })).body).toEqual({
      match: true,
    });

    // One record, in Redis, holding a hash and none of the passwords tried.
    const value = (await redis.get('epg-demo:password:srv-alice')) as string;
    expect(JSON.parse(value)).toEqual({
      hash: expect.stringMatching(/^\$2b\$10\$/),
      setAt: states[0]?.body['setAt'],
      scheme: 'bcrypt+hmac-sha256',
    });
    for (const { password } of attempts) expect(value).not.toContain(password);
  });

  test('a server created through one process is owned through the other', async () => {
    const created = await call(a(), 'POST', '/servers', ALICE);
    expect(created.status).toBe(201);
    const id = created.body['id'] as string;
    expect((await call(b(), 'GET', `/servers/${id}/password`, ALICE)).body).toEqual({ passwordSet: false });
    expect((await call(b(), 'GET', `/servers/${id}/password`, BOB)).status).toBe(404);
    expect((await call(b(), 'POST', `/servers/${id}/password`, BOB, { password: 'bob was never here 1984' })).status).toBe(404);
    expect((await call(b(), 'POST', `/servers/${id}/password`, ALICE, { password: 'quiet harbour lamps 2026' })).status).toBe(
      204,
    );
  });

  test(`verify attempts spread over both processes share one budget of ${GUESS_LIMIT}`, async () => {
    const password = 'marmalade ferry 77 north';
    expect((await call(b(), 'POST', '/servers/srv-bob/password', BOB, { password })).status).toBe(204);
    const guess = (base: string, candidate: string): Promise<Answer> =>
      call(base, 'POST', '/servers/srv-bob/password/verify', BOB, { password: candidate });

    const remaining: string[] = [];
    for (const [i, base] of [a(), b(), a()].entries()) {
      const answer = await guess(base, `wrong guess ${i}`);
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ match: false });
      remaining.push(/; r=(\d+);/.exec(answer.headers.get('ratelimit') ?? '')?.[1] ?? '?');
    }
    expect(remaining).toEqual(['2', '1', '0']);

    // The fourth, on either process, and even with the right password: refused unread.
    for (const [base, candidate] of [
      [b(), 'wrong guess 3'],
      [a(), password],
      [b(), password],
    ] as const) {
      const blocked = await guess(base, candidate);
      expectProblem(blocked, 429, 'password.too_many_attempts');
      const retryAfter = Number(blocked.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(blocked.headers.get('ratelimit')).toMatch(new RegExp(`^"${GUESS_LIMIT}-in-1min"; r=0; t=\\d+$`));
      expect(blocked.headers.get('ratelimit-policy')).toMatch(
        new RegExp(`^"${GUESS_LIMIT}-in-1min"; q=${GUESS_LIMIT}; w=60; pk=:`),
      );
    }

    // One counter in Redis, for this caller on this server, that expires with the window.
    const key = 'epg-demo:guess:["principal","user","bob","srv-bob"]';
    expect(await redis.keys('epg-demo:guess:*')).toContain(key);
    expect(await redis.pttl(key)).toBeGreaterThan(0);
    // Another caller on the same server has a budget of its own.
    expect((await call(a(), 'POST', '/servers/srv-bob/password/verify', ADMIN, { password })).body).toEqual({ match: true });
  });

  test('a Redis that stops answering is a 500 problem on either process, never a pass, and they recover', async () => {
    redisServer.pause();
    let answers: Answer[];
    try {
      answers = await Promise.all([
        call(a(), 'POST', '/servers/srv-alice/password/verify', ALICE, { password: 'anything at all 123' }),
        call(b(), 'GET', '/servers/srv-alice/password', ALICE),
        call(b(), 'POST', '/servers/srv-alice/password', ALICE, { password: 'a second password 456' }),
      ]);
    } finally {
      redisServer.resume();
    }
    for (const answer of answers) {
      expectProblem(answer, 500, 'server.error');
    }
    for (const demo of demos) {
      expect(demo.child.exitCode).toBeNull();
      expect(demo.output()).not.toContain('anything at all 123');
      expect(demo.output()).not.toContain('a second password 456');
    }
    expect((await call(b(), 'GET', '/servers/srv-alice/password', ALICE)).status).toBe(200);
    expect((await call(a(), 'POST', '/servers/srv-alice/password', ALICE, { password: 'a second password 456' })).status).toBe(
      409,
    );
  });

  test('SIGTERM closes the Redis connection (QUIT) and exits 0', async () => {
    const quits = async (): Promise<number> =>
      Number(/cmdstat_quit:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? '0');
    const clientCount = async (): Promise<number> =>
      String(await redis.client('LIST'))
        .trim()
        .split('\n').length;
    const [quitsBefore, clientsBefore] = [await quits(), await clientCount()];
    const demo = demos[0] as DemoProcess;
    expect(await stopDemo(demo, 'SIGTERM')).toBe(0);
    expect(demo.output()).toContain('demo: stopped');
    expect(await quits()).toBe(quitsBefore + 1);
    expect(await clientCount()).toBe(clientsBefore - 1);
    // The other process carries on alone.
    expect((await call(b(), 'GET', '/servers/srv-alice/password', ALICE)).status).toBe(200);
  });
});
