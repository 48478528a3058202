import bcrypt from 'bcrypt';
import { MemoryStore as RateLimitMemoryStore } from 'express-rate-limit';
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
import type { RedisReply } from 'rate-limit-redis';
import type Redis from 'ioredis';
import request from 'supertest';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import {
  MemoryStore,
  guessLimit,
  passwordRoutes,
  passwordVerifier,
  problem,
  problemHandler,
  requestUser,
  requireOwnership,
} from '../../../lib';
import type { GuessLimitOptions, Principal } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { stubValidator } from '../../helpers/password';
import { FAIL_FAST, RedisClients, freePort, redisServerFor, startRedisServer } from '../../helpers/redis-server';
import type { RedisServer } from '../../helpers/redis-server';
import { expectProblem } from '../../helpers/problem';
import { userFromHeader } from '../../helpers/user-routes';

const PASSWORD = 'tangerine kettle 42 drums';
const HASH = bcrypt.hashSync(PASSWORD, 10);

interface Server {
  readonly id: string;
  readonly owners: readonly string[];
}
const SERVERS = new Map<string, Server>([
  ['s1', { id: 's1', owners: ['alice', 'carol'] }],
  ['s2', { id: 's2', owners: ['alice'] }],
]);

function passwords(): MemoryStore {
  const store = new MemoryStore();
  for (const id of SERVERS.keys()) store.setIfAbsent(id, { hash: HASH, setAt: '2026-11-28T18:04:34.000Z', scheme: 'bcrypt' });
  return store;
}

/** The preset's routes, the caller named by `X-User`, a default guess limit on verify. */
function routesApp(express: ExpressFactory): Express {
  const app = express();
  app.use(userFromHeader());
  passwordRoutes(app, {
    store: passwords(),
    ownership: {
      principal: requestUser(),
      load: (req) => SERVERS.get(String(req.params['id'])),
      owner: (s: Server) => s.owners.map((id) => ({ kind: 'user', id })),
    },
    hashing: { cost: 10 },
    beforeVerify: [guessLimit()],
  });
  return app;
}

/** Who got past the limiter, by request. */
interface Seen {
  count: number;
}

/**
 * `POST /servers/:id/password/verify`: ownership (the `X-User` header names the caller),
 * the limiter, a counter of requests that got past it, the stub validator and the
 * verifier (403 on a mismatch, 200 on a match).
 */
function verifyApp(express: ExpressFactory, limiter: RequestHandler, seen: Seen): Express {
  const app = express();
  const guard = requireOwnership<Principal, Server>({
    principal: (req) => {
      const user = req.get('x-user');
      return user === undefined ? undefined : { kind: 'user', id: user };
    },
    load: (req) => SERVERS.get(String(req.params['id'])),
    owner: (server) => server.owners.map((id) => ({ kind: 'user', id })),
  });
  const store = passwords();
  app.post(
    '/servers/:id/password/verify',
    guard,
    limiter,
    (_req: Request, _res: Response, next: NextFunction) => {
      seen.count += 1;
      next();
    },
    ...stubValidator(express),
    passwordVerifier({ store, cost: 10 }),
    (_req: Request, res: Response) => {
      res.json({ match: true });
    },
  );
  app.use(problemHandler({ log: false }));
  return app;
}

function attempt(app: Express, user: string, id: string, password: string): request.Test {
  return request(app).post(`/servers/${id}/password/verify`).set('X-User', user).send({ password });
}

async function statuses(app: Express, user: string, id: string, passwordsTried: readonly string[]): Promise<number[]> {
  const result: number[] = [];
  for (const password of passwordsTried) result.push((await attempt(app, user, id, password)).status);
  return result;
}

const wrong = (n: number): string[] => Array.from({ length: n }, (_, i) => `wrong guess ${i}`);

describe.each(expressVersions)('guessLimit on %s', (_name, express) => {
  test('the sixth attempt in a minute is a 429 problem with Retry-After and RateLimit headers, and stops there', async () => {
    const seen = { count: 0 };
    const app = verifyApp(express, guessLimit(), seen);
    for (let i = 0; i < 5; i++) {
      const res = await attempt(app, 'alice', 's1', `wrong guess ${i}`);
      expectProblem(res, 403, 'password.mismatch');
      expect(res.headers['ratelimit']).toMatch(new RegExp(`^"5-in-1min"; r=${4 - i}; t=(60|59)$`));
      expect(res.headers['ratelimit-policy']).toMatch(/^"5-in-1min"; q=5; w=60; pk=:[A-Za-z0-9+/=]+:$/);
      expect(res.headers['retry-after']).toBeUndefined();
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
    }
    // Even the right password: the limiter answers before anything reads it.
    const blocked = await attempt(app, 'alice', 's1', PASSWORD);
    expectProblem(blocked, 429, 'password.too_many_attempts');
    expect(blocked.body).toEqual({
      type: 'urn:express-password-guard:password.too_many_attempts',
      title: 'Too Many Requests',
      status: 429,
      code: 'password.too_many_attempts',
      detail: expect.stringMatching(/^Too many password attempts for this resource; try again in \d+ seconds?\.$/),
    });
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(blocked.body.detail).toContain(`in ${retryAfter} second`);
    expect(blocked.headers['ratelimit']).toMatch(/^"5-in-1min"; r=0; t=\d+$/);
    expect(blocked.headers['ratelimit-policy']).toMatch(/^"5-in-1min"; q=5; w=60; pk=/);
    expect(blocked.headers['x-ratelimit-remaining']).toBeUndefined();
    expect(blocked.text).not.toContain('alice');
    expect(seen.count).toBe(5);
    expect((await attempt(app, 'alice', 's1', PASSWORD)).status).toBe(429);
  });

  test('a user who mistypes twice carries on', async () => {
    const app = verifyApp(express, guessLimit(), { count: 0 });
    expect(await statuses(app, 'alice', 's1', ['tangerine kettle 24 drums', 'tangerine kettle 42 drum', PASSWORD])).toEqual([
      403, 403, 200,
    ]);
  });

  test('each caller has a budget per target', async () => {
    const app = verifyApp(express, guessLimit(), { count: 0 });
    expect(await statuses(app, 'alice', 's1', wrong(6))).toEqual([403, 403, 403, 403, 403, 429]);
    // Another target of the same caller, and another caller on the same target.
    expect(await statuses(app, 'alice', 's2', wrong(2))).toEqual([403, 403]);
    expect(await statuses(app, 'carol', 's1', wrong(2))).toEqual([403, 403]);
    expect((await attempt(app, 'alice', 's1', PASSWORD)).status).toBe(429);
  });

  test('a confirmed match is given back, so only failed guesses use the budget', async () => {
    const app = verifyApp(express, guessLimit(), { count: 0 });
    const tries = [...wrong(4), PASSWORD, PASSWORD, PASSWORD, 'fifth wrong guess', PASSWORD];
    expect(await statuses(app, 'alice', 's1', tries)).toEqual([403, 403, 403, 403, 200, 200, 200, 403, 429]);
  });

  test('countMatches: true counts every attempt', async () => {
    const app = verifyApp(express, guessLimit({ countMatches: true }), { count: 0 });
    expect(await statuses(app, 'alice', 's1', [...wrong(2), PASSWORD, PASSWORD, PASSWORD, PASSWORD])).toEqual([
      403, 403, 200, 200, 200, 429,
    ]);
  });

  test("on passwordRoutes' verify, wrong guesses answered 200 { match: false } are counted", async () => {
    const app = routesApp(express);
    const answers: unknown[] = [];
    for (const password of wrong(5)) {
      const res = await attempt(app, 'alice', 's1', password);
      answers.push(`${res.status} ${JSON.stringify(res.body)}`);
    }
    expect(answers).toEqual(Array(5).fill('200 {"match":false}'));
    const blocked = await attempt(app, 'alice', 's1', PASSWORD);
    expectProblem(blocked, 429, 'password.too_many_attempts');
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);
  });

  test("on passwordRoutes' verify, a confirmed match is given back too", async () => {
    const app = routesApp(express);
    const answers: unknown[] = [];
    for (const password of [...wrong(4), PASSWORD, PASSWORD, PASSWORD, 'fifth wrong guess', PASSWORD]) {
      const res = await attempt(app, 'alice', 's1', password);
      answers.push(res.status === 200 ? (res.body as { match: boolean }).match : res.status);
    }
    expect(answers).toEqual([false, false, false, false, true, true, true, false, 429]);
  });

  test('without an ownership guard the budget is keyed by client IP, still per target', async () => {
    const app = express();
    app.post('/things/:id/verify', guessLimit({ limit: 2 }), (_req: Request, _res: Response, next: NextFunction) => {
      next(problem(403, 'password.mismatch', 'The password does not match.'));
    });
    app.use(problemHandler({ log: false }));
    const post = (id: string): Promise<number> =>
      request(app)
        .post(`/things/${id}/verify`)
        .then((res) => res.status);
    expect([await post('a'), await post('a'), await post('a'), await post('b')]).toEqual([403, 403, 429, 403]);
  });

  test('limit, windowMs and draft-7 headers are options, and the window ends', async () => {
    const app = verifyApp(express, guessLimit({ limit: 2, windowMs: 1000, standardHeaders: 'draft-7' }), { count: 0 });
    const first = await attempt(app, 'alice', 's1', 'wrong');
    expect(first.headers['ratelimit']).toMatch(/^limit=2, remaining=1, reset=[01]$/);
    expect(first.headers['ratelimit-policy']).toBe('2;w=1');
    expect((await attempt(app, 'alice', 's1', 'wrong')).status).toBe(403);
    const blocked = await attempt(app, 'alice', 's1', 'wrong');
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toMatch(/^[01]$/);
    expect(blocked.headers['ratelimit']).toMatch(/^limit=2, remaining=0, reset=[01]$/);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await attempt(app, 'alice', 's1', 'wrong')).status).toBe(403);
  });

  test('a key option decides who shares a budget', async () => {
    const app = verifyApp(express, guessLimit({ limit: 3, key: (req) => `target:${String(req.params['id'])}` }), { count: 0 });
    expect(await statuses(app, 'alice', 's1', wrong(2))).toEqual([403, 403]);
    expect(await statuses(app, 'carol', 's1', wrong(2))).toEqual([403, 429]);
    expect(await statuses(app, 'alice', 's2', wrong(1))).toEqual([403]);
  });

  test('a failing store or key is a 500, never a pass', async () => {
    const failing = new RateLimitMemoryStore();
    failing.increment = () => Promise.reject(new Error('store unreachable'));
    const seen = { count: 0 };
    const res = await attempt(verifyApp(express, guessLimit({ store: failing }), seen), 'alice', 's1', PASSWORD);
    expectProblem(res, 500, 'server.error');
    const badKey = await attempt(verifyApp(express, guessLimit({ key: () => '' }), seen), 'alice', 's1', PASSWORD);
    expect(badKey.status).toBe(500);
    expect(seen.count).toBe(0);
  });
});

const clients = new RedisClients();
afterAll(() => clients.closeAll());

function redisLimitStore(redis: Redis, prefix: string): RateLimitRedisStore {
  return new RateLimitRedisStore({
    sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
    prefix,
  });
}

const binary = redisServerFor('the Redis-backed guessLimit suite');
const withRedis = binary === undefined ? describe.skip : describe;

withRedis('guessLimit on rate-limit-redis', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer(binary as string);
  });

  afterAll(async () => {
    await server?.stop();
  });

  test.each(expressVersions)('two apps on one Redis (two processes, %s) share one budget', async (name, express) => {
    const prefix = `epg-test:guess-${name}:`;
    // Each "process" has its own connection, store object and limiter.
    const apps = [
      verifyApp(express, guessLimit({ store: redisLimitStore(await clients.connected(server.url), prefix) }), { count: 0 }),
      verifyApp(express, guessLimit({ store: redisLimitStore(await clients.connected(server.url), prefix) }), { count: 0 }),
    ];
    const remaining: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await attempt(apps[i % 2] as Express, 'alice', 's1', `wrong guess ${i}`);
      expect(res.status).toBe(403);
      remaining.push(/r=(\d+)/.exec(String(res.headers['ratelimit']))?.[1] ?? '?');
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    for (const app of apps) {
      const blocked = await attempt(app, 'alice', 's1', PASSWORD);
      expectProblem(blocked, 429, 'password.too_many_attempts');
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Another target keeps its own budget in Redis too.
    expect((await attempt(apps[1] as Express, 'alice', 's2', 'wrong')).status).toBe(403);
    const keys = await (await clients.connected(server.url)).keys(`${prefix}*`);
    expect(keys.sort()).toEqual([`${prefix}["principal","user","alice","s1"]`, `${prefix}["principal","user","alice","s2"]`]);
  });

  test('matches given back in Redis too', async () => {
    const store = redisLimitStore(await clients.connected(server.url), 'epg-test:guess-refund:');
    const app = verifyApp(expressVersions[1]?.[1] as ExpressFactory, guessLimit({ limit: 2, store }), { count: 0 });
    expect(await statuses(app, 'alice', 's1', ['wrong'])).toEqual([403]);
    for (let i = 0; i < 3; i++) {
      expect((await attempt(app, 'alice', 's1', PASSWORD)).status).toBe(200);
      // The refund is a DECR sent when the response has finished.
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(await statuses(app, 'alice', 's1', ['wrong', 'wrong'])).toEqual([403, 429]);
  });
});

describe('guessLimit on an unreachable Redis', () => {
  test('is a 500 problem, never a pass', async () => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const redis = clients.client(await freePort(), { ...FAIL_FAST, lazyConnect: false });
      const seen = { count: 0 };
      const app = verifyApp(
        expressVersions[1]?.[1] as ExpressFactory,
        guessLimit({ store: redisLimitStore(redis, 'epg:guess:') }),
        seen,
      );
      for (let i = 0; i < 2; i++) {
        const res = await attempt(app, 'alice', 's1', PASSWORD);
        expectProblem(res, 500, 'server.error');
      }
      expect(seen.count).toBe(0);
    } finally {
      errors.mockRestore();
    }
  });
});

describe('guessLimit options', () => {
  test.each<[string, unknown, RegExp]>([
    ['limit 0', { limit: 0 }, /guessLimit: option "limit" must be a whole number of attempts, 1 or more/],
    ['limit 1.5', { limit: 1.5 }, /option "limit" must be a whole number/],
    ['limit "5"', { limit: '5' }, /option "limit" must be a whole number/],
    ['windowMs 999', { windowMs: 999 }, /option "windowMs" must be a whole number of milliseconds from 1000/],
    ['windowMs NaN', { windowMs: Number.NaN }, /option "windowMs"/],
    ['windowMs 2^31', { windowMs: 2 ** 31 }, /option "windowMs"/],
    [
      'standardHeaders draft-6',
      { standardHeaders: 'draft-6' },
      /option "standardHeaders" must be 'draft-7' or 'draft-8', got "draft-6"/,
    ],
    ['standardHeaders true', { standardHeaders: true }, /option "standardHeaders"/],
    ['countMatches "yes"', { countMatches: 'yes' }, /option "countMatches" must be true or false/],
    ['key a string', { key: 'ip' }, /option "key" must be a function/],
    ['id a string', { id: 'id' }, /option "id" (must be a function|\("id"\) must start with)/],
    ['key with id', { key: () => 'k', id: () => 'x' }, /option "id" cannot be given with "key"/],
    [
      'store {}',
      { store: {} },
      /option "store" is not an express-rate-limit store: it has no increment, decrement, resetKey method/,
    ],
    ['store null', { store: null }, /option "store" must be an express-rate-limit store.*got null/],
    ['an unknown key', { windowMS: 1000 }, /unknown option "windowMS"\. Did you mean "windowMs"\?/],
    ['not an object', 'strict', /guessLimit: options must be an object/],
  ])('%s throws', (_label, options, message) => {
    expect(() => guessLimit(options as GuessLimitOptions)).toThrow(message);
  });

  test('one store object serves one limiter', () => {
    const store = new RateLimitMemoryStore();
    guessLimit({ store });
    expect(() => guessLimit({ store })).toThrow(/option "store" is already used by another guessLimit/);
  });

  test('the defaults build, and the middleware is named', () => {
    expect(guessLimit().name).toBe('guessLimit');
  });
});
