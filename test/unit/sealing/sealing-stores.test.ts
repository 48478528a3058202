import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type Redis from 'ioredis';
import request from 'supertest';
import type { Express, NextFunction, Request, Response } from 'express';
import { MemoryStore, RedisStore, SqliteStore, localKeyRing, requireOwnership, requestUser } from '../../../lib';
import type { KeyProvider, PasswordRecord, PasswordStore } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { RedisClients, redisServerFor, startRedisServer } from '../../helpers/redis-server';
import type { RedisServer } from '../../helpers/redis-server';
import { K1, K2, guestValue, leakedPieces, sealingApp } from '../../helpers/sealing';
import { expectProblem } from '../../helpers/problem';

// The sealing storer's guarantees on every bundled store, through HTTP on Express 4 and 5:
// what reaches the disk (SQLite), the server (Redis) or the heap (memory) is sealed only.

interface StoreUnderTest {
  readonly store: PasswordStore;
  /** Everything the store keeps, as bytes: files, an RDB dump, or a heap dump of the records. */
  bytes(): Promise<Buffer>;
  close(): Promise<void>;
}

const ring1 = (): KeyProvider => localKeyRing({ current: 'k1', keys: { k1: K1 } });
const ring2 = (): KeyProvider => localKeyRing({ current: 'k2', keys: { k1: K1, k2: K2 } });

/** The values a test posts: the guest agent's base64 ciphertexts, text, and the 1020-byte limit. */
function values(): string[] {
  return [
    guestValue(256),
    guestValue(512),
    guestValue(765),
    'a plain passphrase that is not base64: ünïcødé €',
    'é€😀'.repeat(113) + 'ab',
    'Z'.repeat(1020),
  ];
}

/** Alice owns srv-alice; `X-User` names the caller. */
function ownedApp(
  express: ExpressFactory,
  store: PasswordStore,
  keys: KeyProvider,
): { app: Express; logged: ReturnType<typeof sealingApp>['logged'] } {
  const servers = new Map([['srv-alice', { owner: 'alice' }]]);
  const guard = requireOwnership({
    principal: requestUser(),
    load: (req: Request) => servers.get(String(req.params['id'])),
    owner: 'owner',
  });
  const built = sealingApp(express, { store, keys, guard });
  const app = express();
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const user = req.get('X-User');
    if (user !== undefined) (req as unknown as { user: { id: string } }).user = { id: user };
    next();
  });
  app.use(built.app);
  return { app, logged: built.logged };
}

function sealingOn(name: string, open: () => Promise<StoreUnderTest>): void {
  describe.each(expressVersions)(`the sealing storer on ${name}, %s`, (_version, express) => {
    let current: StoreUnderTest;
    beforeEach(async () => {
      current = await open();
    });
    afterEach(async () => {
      await current.close();
    });

    test('values up to 1020 bytes round-trip, and nothing posted is kept in any form', async () => {
      const { store } = current;
      const { app } = sealingApp(express, { store, keys: ring1() });
      const posted = values();
      for (const [i, value] of posted.entries()) {
        expect(Buffer.byteLength(value)).toBeLessThanOrEqual(1020);
        await request(app).post(`/servers/srv-${i}/secret`).send({ password: value }).expect(201);
      }
      for (const [i, value] of posted.entries()) {
        expect((await request(app).get(`/servers/srv-${i}/secret`)).body).toEqual({ password: value });
        expect((await store.get(`srv-${i}`))?.scheme).toBe('aes-256-gcm:k1');
      }
      const bytes = await current.bytes();
      // The dump does hold the records (the check would find a value stored in clear).
      expect(bytes.includes(Buffer.from((await store.get('srv-0'))?.hash ?? 'missing'))).toBe(true);
      for (const value of posted) expect(leakedPieces(bytes, value)).toEqual([]);
    });

    test('set-once: of concurrent sets for one id exactly one wins, the others get 409', async () => {
      const { app } = sealingApp(express, { store: current.store, keys: ring1() });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          request(app)
            .post('/servers/race/secret')
            .send({ password: `value number ${i}` }),
        ),
      );
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
      for (const conflict of results.filter((r) => r.status === 409)) {
        expectProblem(conflict, 409, 'password.already_set');
      }
      const winner = results.findIndex((r) => r.status === 201);
      expect((await request(app).get('/servers/race/secret')).body).toEqual({ password: `value number ${winner}` });
    });

    const tampers: ReadonlyArray<readonly [string, (own: PasswordRecord, other: PasswordRecord) => PasswordRecord]> = [
      [
        'a flipped byte',
        (own) => {
          const parts = own.hash.split('.');
          const body = Buffer.from(parts[2] ?? '', 'base64url');
          body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 0x80;
          parts[2] = body.toString('base64url');
          return { ...own, hash: parts.join('.') };
        },
      ],
      [
        'a swapped nonce',
        (own, other) => {
          const parts = own.hash.split('.');
          parts[1] = other.hash.split('.')[1] ?? '';
          return { ...own, hash: parts.join('.') };
        },
      ],
      ['a value moved from another record id', (_own, other) => ({ ...other })],
      ['an unknown key id', (own) => ({ ...own, scheme: 'aes-256-gcm:k7' })],
    ];

    test.each(tampers)('%s fails closed with the generic 500, and the log has the id and reason only', async (_label, tamper) => {
      const { store } = current;
      const { app, logged } = sealingApp(express, { store, keys: ring1() });
      const secret = guestValue(256);
      await request(app).post('/servers/own/secret').send({ password: secret }).expect(201);
      await request(app)
        .post('/servers/other/secret')
        .send({ password: guestValue(256) })
        .expect(201);
      const own = (await store.get('own')) as PasswordRecord;
      const bad = tamper(own, (await store.get('other')) as PasswordRecord);
      expect(await store.replace('own', own.hash, bad)).toBe(true);
      const res = await request(app).get('/servers/own/secret');
      expectProblem(res, 500, 'server.error', 'The server could not complete the request.');
      expect(logged.map((entry) => entry.error.split('\n')[0])).toEqual([
        expect.stringMatching(/^Error: revealSecret: the sealed record "own" did not open: /),
      ]);
      for (const hidden of [secret, own.hash, bad.hash, K1]) expect(logged[0]?.error).not.toContain(hidden);
      expect(await store.get('own')).toEqual(bad);
    });

    test('rotation: sealed under k1, it opens after k2 becomes current and is re-sealed under k2 on read', async () => {
      const { store } = current;
      const secret = guestValue(256);
      await request(sealingApp(express, { store, keys: ring1() }).app)
        .post('/servers/srv-1/secret')
        .send({ password: secret })
        .expect(201);
      const before = (await store.get('srv-1')) as PasswordRecord;
      expect(before.scheme).toBe('aes-256-gcm:k1');
      const { app } = sealingApp(express, { store, keys: ring2() });
      expect((await request(app).get('/servers/srv-1/secret')).body).toEqual({ password: secret });
      const after = (await store.get('srv-1')) as PasswordRecord;
      expect(after.scheme).toBe('aes-256-gcm:k2');
      expect(after.setAt).toBe(before.setAt);
      expect(after.hash).not.toBe(before.hash);
      const k2Only = sealingApp(express, { store, keys: localKeyRing({ current: 'k2', keys: { k2: K2 } }) });
      expect((await request(k2Only.app).get('/servers/srv-1/secret')).body).toEqual({ password: secret });
    });

    test('a foreign caller gets the same 404 as for a missing record', async () => {
      const { app } = ownedApp(express, current.store, ring1());
      await request(app).post('/servers/srv-alice/secret').set('X-User', 'alice').send({ password: 'alice only' }).expect(201);
      expect((await request(app).get('/servers/srv-alice/secret').set('X-User', 'alice')).body).toEqual({
        password: 'alice only',
      });
      const foreign = await request(app).get('/servers/srv-alice/secret').set('X-User', 'bob');
      const missing = await request(app).get('/servers/srv-none/secret').set('X-User', 'bob');
      expect(foreign.status).toBe(404);
      expect(missing.status).toBe(404);
      expect(foreign.body).toEqual({
        ...missing.body,
        ...(missing.body.instance === undefined ? {} : { instance: foreign.body.instance }),
      });
      expect(foreign.text).not.toContain('alice only');
    });
  });
}

sealingOn('a MemoryStore', async () => {
  const store = new MemoryStore();
  return {
    store,
    bytes: async () =>
      Buffer.from(JSON.stringify(store.ids().map((id) => store.get(id))) + inspect(store, { depth: 10, showHidden: true })),
    close: async () => undefined,
  };
});

let dir: string;
let files = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealing-stores-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

sealingOn('a SqliteStore file', async () => {
  files += 1;
  const filename = join(dir, `secrets-${files}.db`);
  const store = new SqliteStore({ filename });
  return {
    store,
    // The database, its WAL and its shared-memory index: every byte SQLite keeps.
    bytes: async () =>
      Buffer.concat(
        ['', '-wal', '-shm', '-journal']
          .map((suffix) => `${filename}${suffix}`)
          .filter(existsSync)
          .map((file) => readFileSync(file)),
      ),
    close: async () => store.close(),
  };
});

const binary = redisServerFor('the sealing storer on Redis');
if (binary !== undefined) {
  const clients = new RedisClients();
  let server: RedisServer;
  let redis: Redis;
  let prefixes = 0;
  beforeAll(async () => {
    server = await startRedisServer(binary);
    redis = await clients.connected(server.url);
  });
  afterAll(async () => {
    await clients.closeAll();
    await server?.stop();
  });

  sealingOn('a RedisStore', async () => {
    prefixes += 1;
    const store = new RedisStore({ client: redis, prefix: `epg-sealing:${prefixes}:` });
    return {
      store,
      // What Redis would write to disk (an RDB snapshot), and every value as GET gives it.
      bytes: async () => {
        await redis.save();
        const [, where] = (await redis.config('GET', 'dir')) as [string, string];
        const [, name] = (await redis.config('GET', 'dbfilename')) as [string, string];
        const keys = await redis.keys('*');
        const stored = await Promise.all(keys.map((key) => redis.get(key)));
        return Buffer.concat([readFileSync(join(where, name)), Buffer.from(stored.join('\n'))]);
      },
      close: async () => undefined,
    };
  });
}
