import bcrypt from 'bcrypt';
import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import request from 'supertest';
import type { Express, Request, Response } from 'express';
import { HashLimiter, RedisStore, hashAndStore, passwordVerifier, problemHandler } from '../../../lib';
import type { PasswordRecord, ProblemLogEntry, RedisStoreClient } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { passwordApp, stubValidator } from '../../helpers/password';
import { FAIL_FAST, RedisClients, freePort, redisServerFor, startRedisServer } from '../../helpers/redis-server';
import type { RedisServer } from '../../helpers/redis-server';
import { storeContract } from '../../../lib/testing';
import { expectProblem } from '../../helpers/problem';

// Both ioredis clients fit the store's client type as they are.
const redisFits: Redis extends RedisStoreClient ? true : never = true;
const clusterFits: Cluster extends RedisStoreClient ? true : never = true;
void [redisFits, clusterFits];

const clients = new RedisClients();
const client = clients.client.bind(clients);
const connected = clients.connected.bind(clients);

afterAll(() => clients.closeAll());

const HASH = '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';
const record: PasswordRecord = { hash: HASH, setAt: '2026-11-28T18:04:34.000Z', scheme: 'bcrypt' };

/**
 * A storer route and a verifier route on `store`, whose final handlers note that they
 * ran, with a problem handler that keeps its log entries.
 */
function routesOn(express: ExpressFactory, store: RedisStore, logged: ProblemLogEntry[], reached: string[]): Express {
  const app = express();
  app.post(
    '/servers/:id/password',
    ...stubValidator(express),
    hashAndStore({ store, cost: 10, limiter: new HashLimiter({ maxPerCaller: 32 }) }),
    (_req: Request, res: Response) => {
      reached.push('stored');
      res.status(204).end();
    },
  );
  app.post(
    '/servers/:id/password/verify',
    ...stubValidator(express),
    passwordVerifier({ store, cost: 10 }),
    (_req: Request, res: Response) => {
      reached.push('verified');
      res.json({ match: true });
    },
  );
  app.use(problemHandler({ log: (entry) => logged.push(entry) }));
  return app;
}

const binary = redisServerFor('the RedisStore suite');
const withRedis = binary === undefined ? describe.skip : describe;

withRedis('RedisStore on a redis-server of its own', () => {
  let server: RedisServer;
  let redis: Redis;
  let other: Redis;
  let stores = 0;

  beforeAll(async () => {
    server = await startRedisServer(binary as string);
    redis = await connected(server.url);
    other = await connected(server.url);
  });

  afterAll(async () => {
    await server?.stop();
  });

  storeContract('RedisStore', {
    create: () => {
      stores += 1;
      return new RedisStore({ client: redis, prefix: `epg-test:contract-${stores}:` });
    },
  });

  test('ids lists only its own prefix, taken literally (no glob), under an ioredis keyPrefix too', async () => {
    const globby = new RedisStore({ client: redis, prefix: 'epg-test:ids*[a]?:' });
    const lookalike = new RedisStore({ client: redis, prefix: 'epg-test:idsX[a]?:' });
    await globby.setIfAbsent('srv-1', record);
    await globby.setIfAbsent('srv-2', record);
    await lookalike.setIfAbsent('srv-3', record);
    const listed: string[] = [];
    for await (const id of globby.ids()) listed.push(id);
    expect(listed.sort()).toEqual(['srv-1', 'srv-2']);

    const prefixed = await connected(server.url, { ...FAIL_FAST, keyPrefix: 'tenant-9:' });
    const tenant = new RedisStore({ client: prefixed, prefix: 'epg-test:ids:' });
    await tenant.setIfAbsent('srv-4', record);
    expect(await redis.exists('tenant-9:epg-test:ids:srv-4')).toBe(1);
    const tenantIds: string[] = [];
    for await (const id of tenant.ids()) tenantIds.push(id);
    expect(tenantIds).toEqual(['srv-4']);
  });

  test('a record is one string key, prefix + id, holding its JSON only, with no expiry', async () => {
    const store = new RedisStore({ client: redis });
    expect(store.prefix).toBe('epg:password:');
    expect(store.key('srv-layout')).toBe('epg:password:srv-layout');
    await store.setIfAbsent('srv-layout', { ...record, extra: 'dropped' } as PasswordRecord);
    expect(await redis.type('epg:password:srv-layout')).toBe('string');
    expect(JSON.parse((await redis.get('epg:password:srv-layout')) ?? '')).toEqual(record);
    expect(await redis.ttl('epg:password:srv-layout')).toBe(-1);
  });

  test('keys are injective: nesting prefixes on two clients (two processes) never share a key; ids with ":" and "%" round-trip', async () => {
    const outer = new RedisStore({ client: redis, prefix: 'epg-test:nest:' });
    const inner = new RedisStore({ client: other, prefix: 'epg-test:nest:b:' });
    expect(await outer.setIfAbsent('b:x', record)).toBe(true);
    expect(await inner.setIfAbsent('x', { ...record, scheme: 'bcrypt+hmac-sha256' })).toBe(true);
    expect((await outer.get('b:x'))?.scheme).toBe('bcrypt');
    expect((await inner.get('x'))?.scheme).toBe('bcrypt+hmac-sha256');
    expect(await outer.setIfAbsent('50%:off', record)).toBe(true);
    expect(await outer.get('50%3Aoff')).toBeUndefined();
    const listed: string[] = [];
    for await (const id of outer.ids()) listed.push(id);
    expect(listed.sort()).toEqual(['50%:off', 'b:x']);
  });

  test('two connections (two processes) share records, set-once and compare-and-set', async () => {
    const a = new RedisStore({ client: redis, prefix: 'epg-test:shared:' });
    const b = new RedisStore({ client: other, prefix: 'epg-test:shared:' });
    const hashes = Array.from({ length: 40 }, (_, i) => `${HASH.slice(0, -2)}${String(i).padStart(2, '0')}`);
    const won = await Promise.all(hashes.map((hash, i) => (i % 2 === 0 ? a : b).setIfAbsent('srv-1', { ...record, hash })));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = hashes[won.indexOf(true)] as string;
    expect((await a.get('srv-1'))?.hash).toBe(winner);
    expect((await b.get('srv-1'))?.hash).toBe(winner);

    const replaced = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).replace('srv-1', winner, { ...record, hash: HASH })),
    );
    expect(replaced.filter(Boolean)).toHaveLength(1);
    expect(await b.delete('srv-1')).toBe(true);
    expect(await a.get('srv-1')).toBeUndefined();
  });

  test('prefixes keep stores apart, and an ioredis keyPrefix applies on top', async () => {
    const prefixed = await connected(server.url, { ...FAIL_FAST, keyPrefix: 'app:' });
    const users = new RedisStore({ client: prefixed, prefix: 'users:' });
    const servers = new RedisStore({ client: prefixed, prefix: 'servers:' });
    await users.setIfAbsent('x', record);
    expect(await servers.get('x')).toBeUndefined();
    expect(await redis.exists('app:users:x')).toBe(1);
    expect(await users.replace('x', HASH, { ...record, scheme: 'bcrypt+hmac-sha256' })).toBe(true);
    expect(JSON.parse((await redis.get('app:users:x')) ?? '').scheme).toBe('bcrypt+hmac-sha256');
  });

  test('replace still works after Redis forgets its scripts (SCRIPT FLUSH, a restart)', async () => {
    const store = new RedisStore({ client: redis, prefix: 'epg-test:flush:' });
    await store.setIfAbsent('srv-1', record);
    await redis.script('FLUSH');
    expect(await store.replace('srv-1', HASH, { ...record, setAt: '2027-01-01T00:00:00.000Z' })).toBe(true);
    await redis.script('FLUSH');
    expect(await store.replace('srv-1', 'stale', record)).toBe(false);
    expect((await store.get('srv-1'))?.setAt).toBe('2027-01-01T00:00:00.000Z');
  });

  test('a key holding anything but a record is an error, never a record or an absence', async () => {
    const store = new RedisStore({ client: redis, prefix: 'epg-test:corrupt:' });
    const bad: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
      ['not-json', () => redis.set('epg-test:corrupt:not-json', 'plain text')],
      ['array', () => redis.set('epg-test:corrupt:array', '[1,2]')],
      ['no-hash', () => redis.set('epg-test:corrupt:no-hash', JSON.stringify({ setAt: record.setAt, scheme: 'bcrypt' }))],
      ['number-hash', () => redis.set('epg-test:corrupt:number-hash', JSON.stringify({ ...record, hash: 12 }))],
      ['a-hash-type', () => redis.hset('epg-test:corrupt:a-hash-type', 'hash', HASH)],
    ];
    for (const [id, write] of bad) {
      await write();
      await expect(store.get(id)).rejects.toThrow();
      expect(await store.setIfAbsent(id, record)).toBe(false);
    }
    await expect(store.replace('not-json', HASH, record)).rejects.toThrow();
    await expect(store.replace('a-hash-type', HASH, record)).rejects.toThrow(/WRONGTYPE/);
    await expect(store.get('not-json')).rejects.not.toThrow(/plain text/);
  });

  describe.each(expressVersions)('through the middlewares on %s', (name, express) => {
    test('the password reaches Redis only as its bcrypt hash: no command and no value carries it', async () => {
      const prefix = `epg-test:plain-${name}:`;
      const store = new RedisStore({ client: redis, prefix });
      const monitorClient = await connected(server.url);
      const monitor = await monitorClient.monitor();
      const seen: string[][] = [];
      monitor.on('monitor', (_time: string, args: string[]) => seen.push(args.map(String)));

      const password = 'Plaintext-Canary-4f1c-Ünïcödé-密码';
      // Stored at cost 10, verified at cost 11: the verify rehashes, so replace runs too.
      const app = passwordApp(express, { store, cost: 10 }, { store, cost: 11 });
      expect((await request(app).post('/servers/srv-1/password').send({ password })).status).toBe(201);
      const verify = await request(app).post('/servers/srv-1/password/verify').send({ password });
      expect(verify.body).toEqual({ match: true, rehashed: true });
      expect((await request(app).post('/servers/srv-1/password/verify').send({ password: 'wrong' })).status).toBe(403);

      const marker = `end-of-test-${Date.now()}`;
      await redis.echo(marker);
      for (let i = 0; i < 100 && !seen.some((args) => args.includes(marker)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      monitor.disconnect();

      const stored = await store.get('srv-1');
      expect(stored?.hash).toMatch(/^\$2b\$11\$/);
      expect(await bcrypt.compare(password, stored?.hash ?? '')).toBe(true);
      const commands = seen.map((args) => args.join(' '));
      expect(commands.some((command) => command.includes(stored?.hash ?? 'none'))).toBe(true);

      const values: string[] = [];
      for (const key of await redis.keys(`${prefix}*`)) values.push(`${key} ${(await redis.get(key)) ?? ''}`);
      expect(values).toHaveLength(1);
      const everything = [...commands, ...values].join('\n');
      for (const needle of [
        password,
        password.normalize('NFD'),
        'Plaintext-Canary',
        '密码',
        Buffer.from(password).toString('base64'),
      ]) {
        expect(everything).not.toContain(needle);
      }
    });

    test('concurrent sets through two apps on two connections: one 204, the rest 409', async () => {
      const prefix = `epg-test:race-${name}:`;
      const logged: ProblemLogEntry[] = [];
      const reached: string[] = [];
      const apps = [
        routesOn(express, new RedisStore({ client: redis, prefix }), logged, reached),
        routesOn(express, new RedisStore({ client: other, prefix }), logged, reached),
      ];
      const statuses = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          request(apps[i % 2] as Express)
            .post('/servers/srv-race/password')
            .send({ password: `password number ${i}` })
            .then((res) => res.status),
        ),
      );
      expect(statuses.sort()).toEqual([204, 409, 409, 409, 409, 409, 409, 409]);
      expect(logged).toEqual([]);
    });
  });

  test.each([
    ['the offline queue off', { lazyConnect: true, enableOfflineQueue: false }],
    ['maxRetriesPerRequest: 0', { lazyConnect: true, maxRetriesPerRequest: 0 }],
  ] as const)('a Redis that goes away mid-life gives 500s at once with %s, never a pass', async (_label, options) => {
    const own = await startRedisServer(binary as string);
    try {
      const store = new RedisStore({ client: await connected(own.url, options) });
      const logged: ProblemLogEntry[] = [];
      const reached: string[] = [];
      const app = routesOn(expressVersions[1]?.[1] as ExpressFactory, store, logged, reached);
      await request(app).post('/servers/srv-1/password').send({ password: 'first password' }).expect(204);
      await own.stop();

      const started = Date.now();
      const set = await request(app).post('/servers/srv-2/password').send({ password: 'second password' });
      const verify = await request(app).post('/servers/srv-1/password/verify').send({ password: 'first password' });
      expect(Date.now() - started).toBeLessThan(5000);
      for (const res of [set, verify]) {
        expectProblem(res, 500, 'server.error');
      }
      expect(reached).toEqual(['stored']);
      expect(logged).toHaveLength(2);
      expect(logged.map((entry) => entry.error).join('\n')).not.toMatch(/first password|second password/);
    } finally {
      await own.stop();
    }
  });
});

withRedis('RedisStore on a redis-server that stops answering', () => {
  test('commandTimeout turns a silent Redis (a partition, a frozen host) into 500s, not hung requests', async () => {
    const own = await startRedisServer(binary as string);
    try {
      const store = new RedisStore({ client: await connected(own.url, { ...FAIL_FAST, commandTimeout: 300 }) });
      const logged: ProblemLogEntry[] = [];
      const reached: string[] = [];
      const app = routesOn(expressVersions[1]?.[1] as ExpressFactory, store, logged, reached);
      await request(app).post('/servers/srv-1/password').send({ password: 'first password' }).expect(204);
      own.pause();
      const started = Date.now();
      const verify = await request(app).post('/servers/srv-1/password/verify').send({ password: 'first password' });
      expect(Date.now() - started).toBeLessThan(3000);
      expectProblem(verify, 500, 'server.error');
      expect(reached).toEqual(['stored']);
      expect(logged[0]?.error).toMatch(/Command timed out/);
    } finally {
      await own.stop();
    }
  });
});

describe.each(expressVersions)('RedisStore with Redis unreachable on %s', (_name, express) => {
  test.each([
    ['the offline queue off', { enableOfflineQueue: false, retryStrategy: (): number => 200 }],
    ['maxRetriesPerRequest: 0', { maxRetriesPerRequest: 0, retryStrategy: (): number => 50 }],
  ] as const)('set and verify are 500 problems through the problem handler with %s, not passes', async (_label, options) => {
    const port = await freePort();
    const store = new RedisStore({ client: client(port, options) });
    const logged: ProblemLogEntry[] = [];
    const reached: string[] = [];
    const app = routesOn(express, store, logged, reached);
    const started = Date.now();
    const set = await request(app).post('/servers/srv-1/password').send({ password: 'correct horse battery' });
    const verify = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse battery' });
    expect(Date.now() - started).toBeLessThan(5000);
    for (const res of [set, verify]) {
      expectProblem(res, 500, 'server.error', 'The server could not complete the request.');
      expect(res.text).not.toContain('correct horse');
    }
    expect(reached).toEqual([]);
    expect(logged.map((entry) => entry.status)).toEqual([500, 500]);
    expect(logged.map((entry) => entry.error).join('\n')).not.toContain('correct horse');
  });
});

describe('RedisStore options', () => {
  const idle = (): Redis => client('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false });

  test('client is required and must look like a Redis client', () => {
    expect(() => new RedisStore({} as never)).toThrow(/RedisStore: option "client" is required: an ioredis client/);
    expect(() => new RedisStore({ client: null } as never)).toThrow(/option "client" is required.*got null/);
    expect(() => new RedisStore({ client: { get() {}, set() {} } } as never)).toThrow(
      /option "client" is not a Redis client: it has no del, evalsha, eval method/,
    );
  });

  test('a client that would queue commands forever while Redis is down is refused', () => {
    expect(
      () => new RedisStore({ client: client('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: null }) }),
    ).toThrow(/option "client" would wait forever while Redis is unreachable.*enableOfflineQueue: false/);
    expect(
      () =>
        new RedisStore({
          client: client('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: null, enableOfflineQueue: false }),
        }),
    ).not.toThrow();
    expect(() => new RedisStore({ client: client('redis://127.0.0.1:1', { lazyConnect: true }) })).not.toThrow();
  });

  test('prefix must be a string, and unknown options throw with a suggestion', () => {
    expect(() => new RedisStore({ client: idle(), prefix: 42 } as never)).toThrow(/option "prefix" must be a string/);
    expect(() => new RedisStore({ client: idle(), prefx: 'a:' } as never)).toThrow(
      /unknown option "prefx"\. Did you mean "prefix"\?/,
    );
    // Issue 14: keys were prefix + id, so nesting prefixes could collide.
    expect(() => new RedisStore({ client: idle(), prefix: '' })).toThrow(/option "prefix" must end with ":"/);
    expect(() => new RedisStore({ client: idle(), prefix: 'app' })).toThrow(/option "prefix" must end with ":"/);
    const client = idle();
    new RedisStore({ client, prefix: 'app:' });
    expect(new RedisStore({ client, prefix: 'app:' }).key('x')).toBe('app:x');
    expect(() => new RedisStore({ client, prefix: 'app:users:' })).toThrow(
      /option "prefix" "app:users:" nests with the prefix "app:"/,
    );
    expect(() => new RedisStore({ client: idle(), prefix: 'app:users:' }).key('a:b%c')).not.toThrow();
    expect(new RedisStore({ client: idle(), prefix: 'p:' }).key('a:b%3A')).toBe('p:a%3Ab%253A');
  });

  test('it is a password store the middlewares accept', () => {
    const store = new RedisStore({ client: idle() });
    expect(() => hashAndStore({ store })).not.toThrow();
    expect(() => passwordVerifier({ store })).not.toThrow();
  });
});
