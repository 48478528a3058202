import { performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';
import request from 'supertest';
import type { Request, Response } from 'express';
import {
  HashLimiter,
  MemoryStore,
  isOwnProblem,
  passwordVerifier,
  problemHandler,
  securityEvents,
  validatedPassword,
  verifiedPassword,
  verifyPassword,
} from '../../../lib';
import type { PasswordRecord, PasswordStore, ProblemLogEntry, SecurityEvent } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import { holdSlot, passwordApp, stubValidator } from '../../helpers/password';
import { expectProblem } from '../../helpers/problem';

const PEPPER = 'test-pepper-0123456789abcdef0123456789abcdef';
const SET_AT = '2026-11-28T18:04:34.000Z';

afterEach(() => {
  jest.restoreAllMocks();
});

async function storeWith(id: string, password: string, cost = 10): Promise<MemoryStore> {
  const store = new MemoryStore();
  store.setIfAbsent(id, { hash: await bcrypt.hash(password, cost), setAt: SET_AT, scheme: 'bcrypt' });
  return store;
}

describe('verifyPassword', () => {
  test('says match for the password and no match for another', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10 })).toEqual({ match: true, rehashed: false });
    expect(await verifyPassword(store, 'srv-1', 'Correct horse', { cost: 10 })).toEqual({ match: false, rehashed: false });
    expect(await verifyPassword(store, 'srv-1', '', { cost: 10 })).toEqual({ match: false, rehashed: false });
  });

  test('a missing record runs one compare against a dummy hash of the configured cost', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const compare = jest.spyOn(bcrypt, 'compare');
    expect(await verifyPassword(store, 'srv-1', 'wrong horse', { cost: 10 })).toEqual({ match: false, rehashed: false });
    expect(await verifyPassword(store, 'srv-2', 'correct horse', { cost: 10 })).toEqual({ match: false, rehashed: false });
    expect(compare).toHaveBeenCalledTimes(2);
    const [, dummy] = compare.mock.calls[1] ?? [];
    expect(dummy).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
    expect(dummy).not.toBe(store.get('srv-1')?.hash);
  });

  test('the dummy hash is random, not a recognisable constant', async () => {
    // A salt and digest of one repeated character would still be well formed; random
    // characters are what make it look like any other stored hash.
    const store = new MemoryStore();
    const compare = jest.spyOn(bcrypt, 'compare');
    await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10 });
    await verifyPassword(store, 'srv-1', 'correct horse', { cost: 11 });
    const [ten, eleven] = compare.mock.calls.map(([, hash]) => String(hash).slice('$2b$10$'.length));
    expect(new Set(ten).size).toBeGreaterThan(20);
    expect(new Set(eleven).size).toBeGreaterThan(20);
    expect(ten).not.toBe(eleven);
  });

  test('a missing record takes about as long as a wrong password', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const time = async (id: string): Promise<number> => {
      const started = performance.now();
      await verifyPassword(store, id, 'wrong horse', { cost: 10 });
      return performance.now() - started;
    };
    await time('srv-1');
    const wrong: number[] = [];
    const missing: number[] = [];
    for (let i = 0; i < 5; i++) {
      wrong.push(await time('srv-1'));
      missing.push(await time('nobody'));
    }
    const median = (values: number[]): number => values.sort((a, b) => a - b)[2] ?? 0;
    // Loose bounds: the point is that a missing record is not answered instantly.
    expect(median(missing)).toBeGreaterThan(median(wrong) * 0.5);
    expect(median(missing)).toBeLessThan(median(wrong) * 2);
  });

  test('re-hashes a matching password whose cost is below the configured one, keeping setAt', async () => {
    const store = await storeWith('srv-1', 'correct horse', 10);
    const old = store.get('srv-1')?.hash ?? '';
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 11 })).toEqual({ match: true, rehashed: true });
    const upgraded = store.get('srv-1');
    expect(upgraded?.hash).toMatch(/^\$2b\$11\$/);
    expect(upgraded?.hash).not.toBe(old);
    expect(upgraded?.setAt).toBe(SET_AT);
    expect(upgraded?.scheme).toBe('bcrypt');
    expect(await bcrypt.compare('correct horse', upgraded?.hash ?? '')).toBe(true);
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 11 })).toEqual({ match: true, rehashed: false });
  });

  test('never re-hashes on a wrong password, to a lower cost, or with rehash: false', async () => {
    const store = await storeWith('srv-1', 'correct horse', 11);
    const calls: string[] = [];
    const original = store.replace.bind(store);
    // A wrapper with the three declared parameters: a zero-parameter spy is refused as a stub.
    store.replace = (id: string, expected: string, record: PasswordRecord) => {
      calls.push(id);
      return original(id, expected, record);
    };
    expect(await verifyPassword(store, 'srv-1', 'wrong horse', { cost: 12 })).toEqual({ match: false, rehashed: false });
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10 })).toEqual({ match: true, rehashed: false });
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 12, rehash: false })).toEqual({
      match: true,
      rehashed: false,
    });
    expect(calls).toEqual([]);
    expect(store.get('srv-1')?.hash).toMatch(/^\$2b\$11\$/);
  });

  test('a rehash does not bring back a password deleted while it was computed', async () => {
    const inner = await storeWith('srv-1', 'correct horse', 10);
    const store: PasswordStore = {
      setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
      get: (id) => {
        const record = inner.get(id);
        inner.delete(id);
        return record;
      },
      replace: (id, expected, record) => inner.replace(id, expected, record),
      delete: (id) => inner.delete(id),
    };
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 11 })).toEqual({ match: true, rehashed: false });
    expect(inner.get('srv-1')).toBeUndefined();
  });

  test('a busy pool skips the rehash but still answers the match', async () => {
    const store = await storeWith('srv-1', 'correct horse', 10);
    let calls = 0;
    const limiter = {
      tryRun: <T>(task: () => Promise<T>): Promise<T> | undefined => (calls++ === 0 ? task() : undefined),
      retryAfterSeconds: () => 1,
    } as unknown as HashLimiter;
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 11, limiter })).toEqual({
      match: true,
      rehashed: false,
    });
    expect(store.get('srv-1')?.hash).toMatch(/^\$2b\$10\$/);
  });

  test('a full limiter rejects with a 503 password.busy problem without comparing', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 0, maxPerCaller: 2 });
    const { release, held } = holdSlot(limiter);
    const compare = jest.spyOn(bcrypt, 'compare');
    const error: unknown = await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10, limiter }).catch((e: unknown) => e);
    expect(isOwnProblem(error) && error.status === 503 && error.type === 'password.busy').toBe(true);
    expect(isOwnProblem(error) ? error.headers : undefined).toEqual({ 'Retry-After': expect.stringMatching(/^[1-9]/) });
    expect(compare).not.toHaveBeenCalled();
    release();
    await held;
  });

  test('a plain record is upgraded to the pre-hash when a pepper is configured', async () => {
    const store = await storeWith('srv-1', 'correct horse', 10);
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10, pepper: PEPPER })).toEqual({
      match: true,
      rehashed: true,
    });
    expect(store.get('srv-1')?.scheme).toBe('bcrypt+hmac-sha256');
    expect(await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10, pepper: PEPPER })).toEqual({
      match: true,
      rehashed: false,
    });
    expect(await verifyPassword(store, 'srv-1', 'wrong horse', { cost: 10, pepper: PEPPER })).toEqual({
      match: false,
      rehashed: false,
    });
  });

  test('a pre-hashed record needs the same pepper', async () => {
    const store = await storeWith('srv-1', 'correct horse', 10);
    await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10, pepper: PEPPER });
    const other = `${PEPPER}-rotated`;
    expect((await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10, pepper: other })).match).toBe(false);
    const error: unknown = await verifyPassword(store, 'srv-1', 'correct horse', { cost: 10 }).catch((e: unknown) => e);
    expect(isOwnProblem(error) && error.status === 500 && error.type === 'password.misconfigured').toBe(true);
  });

  test('an unknown scheme or a malformed record is an error, never a match', async () => {
    const store = new MemoryStore();
    // 'bcrypt+md5' is a wrapped legacy record now (test/legacy-hashing.test.ts); this one is not.
    store.setIfAbsent('legacy', { hash: await bcrypt.hash('pw', 10), setAt: SET_AT, scheme: 'bcrypt+md5-crypt' });
    await expect(verifyPassword(store, 'legacy', 'pw', { cost: 10 })).rejects.toMatchObject({
      status: 500,
      type: 'password.misconfigured',
    });
    const broken = {
      setIfAbsent: () => true,
      get: () => ({ hash: 42 }),
      replace: (_i: string, _e: string, _r: unknown) => true,
      delete: () => true,
    } as unknown as PasswordStore;
    await expect(verifyPassword(broken, 'x', 'pw', { cost: 10 })).rejects.toThrow(/malformed record/);
  });

  test('a sealed record is refused as the wrong mechanism, never compared', async () => {
    const store = new MemoryStore();
    store.setIfAbsent('srv-1', { hash: 'v1.AAAA.BBBB.CCCC', setAt: SET_AT, scheme: 'aes-256-gcm:k1' });
    const compare = jest.spyOn(bcrypt, 'compare');
    await expect(verifyPassword(store, 'srv-1', 'correct horse', { cost: 10 })).rejects.toMatchObject({
      status: 500,
      type: 'password.wrong_mechanism',
      message:
        'The password route is misconfigured: record "srv-1" was encrypted (scheme "aes-256-gcm:k1"), not hashed; a sealed secret is revealed with revealSecret, never verified.',
    });
    expect(compare).not.toHaveBeenCalled();
  });

  test('the misconfigurations say what to fix', async () => {
    const store = new MemoryStore();
    store.setIfAbsent('odd', { hash: await bcrypt.hash('pw', 10), setAt: SET_AT, scheme: 'bcrypt+md5-crypt' });
    store.setIfAbsent('peppered', { hash: await bcrypt.hash('pw', 10), setAt: SET_AT, scheme: 'bcrypt+hmac-sha256' });
    await expect(verifyPassword(store, 'odd', 'pw', { cost: 10 })).rejects.toMatchObject({
      message:
        'The password route is misconfigured: a stored password has scheme "bcrypt+md5-crypt", which this verifier cannot check; give it in the legacy option.',
    });
    await expect(verifyPassword(store, 'peppered', 'pw', { cost: 10 })).rejects.toMatchObject({
      type: 'password.misconfigured',
      message:
        'The password route is misconfigured: a stored password was pre-hashed with a pepper and the verifier was given none.',
    });
  });

  test('a candidate over 72 bytes never matches a plain bcrypt record, at the cost of one compare of its cost', async () => {
    const prefix = 'p'.repeat(72);
    const store = await storeWith('srv-1', prefix, 11);
    // bcrypt itself would say yes: it reads the first 72 bytes only.
    expect(await bcrypt.compare(`${prefix}tail`, store.get('srv-1')?.hash ?? '')).toBe(true);
    const compare = jest.spyOn(bcrypt, 'compare');
    expect(await verifyPassword(store, 'srv-1', `${prefix}tail`, { cost: 10 })).toEqual({ match: false, rehashed: false });
    expect(compare).toHaveBeenCalledTimes(1);
    const [, against] = compare.mock.calls[0] ?? [];
    expect(against).toMatch(/^\$2b\$11\$/);
    expect(against).not.toBe(store.get('srv-1')?.hash);
    expect(await verifyPassword(store, 'srv-1', prefix, { cost: 11 })).toEqual({ match: true, rehashed: false });
  });

  test('a read-only source is verified and never rehashed', async () => {
    const inner = await storeWith('srv-1', 'correct horse', 10);
    const source = { get: (id: string) => inner.get(id) };
    const app = expressVersions[1]![1]();
    app.post(
      '/servers/:id/password/verify',
      ...stubValidator(expressVersions[1]![1]),
      passwordVerifier({ store: source, cost: 11 }),
      (req: Request, res: Response) => {
        res.json(verifiedPassword(req));
      },
    );
    app.use(problemHandler({ log: false }));
    const res = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expect(res.body).toEqual({ id: 'srv-1', rehashed: false });
    expect(inner.get('srv-1')?.hash).toMatch(/^\$2b\$10\$/);
  });

  test('a store whose replace answers nonsense during a rehash is an error, never a pass', async () => {
    const inner = await storeWith('srv-1', 'correct horse', 10);
    const store = {
      setIfAbsent: (id: string, record: PasswordRecord) => inner.setIfAbsent(id, record),
      get: (id: string) => inner.get(id),
      replace: (_id: string, _expected: string, _record: PasswordRecord) => 'done',
      delete: (id: string) => inner.delete(id),
    } as unknown as PasswordStore;
    await expect(verifyPassword(store, 'srv-1', 'correct horse', { cost: 11 })).rejects.toThrow(
      "The password store's replace returned string, not a boolean.",
    );
  });

  test('options and arguments are checked', async () => {
    const store = new MemoryStore();
    await expect(verifyPassword(store, 'x', 'pw', { cost: 9 })).rejects.toThrow(/option "cost"/);
    await expect(verifyPassword(store, 'x', 'pw', { rehash: 'yes' } as never)).rejects.toThrow(/option "rehash"/);
    await expect(verifyPassword(store, 'x', 'pw', { cots: 12 } as never)).rejects.toThrow(/Did you mean "cost"/);
    await expect(verifyPassword({} as never, 'x', 'pw')).rejects.toThrow(/not a password store/);
    await expect(verifyPassword(store, 'x', undefined as never)).rejects.toThrow(/must be strings/);
    await expect(verifyPassword(store, 7 as never, 'pw')).rejects.toThrow('verifyPassword: id and candidate must be strings.');
    await expect(verifyPassword(store, 'x', 'pw', { cots: 12 } as never)).rejects.toThrow(/^verifyPassword: unknown option/);
    await expect(verifyPassword({} as never, 'x', 'pw')).rejects.toThrow(/^verifyPassword: option "store"/);
    await expect(verifyPassword(store, 'x', 'pw', { rehash: 'yes' } as never)).rejects.toThrow(
      /^verifyPassword: option "rehash"/,
    );
    await expect(verifyPassword(store, 'x', 'pw', { cost: 9 })).rejects.toThrow(/^verifyPassword: option "cost"/);
    await expect(verifyPassword(store, 'x', 'pw', { limiter: {} } as never)).rejects.toThrow(/^verifyPassword: option "limiter"/);
    await expect(verifyPassword(store, 'x', 'pw', { legacy: 'md5' } as never)).rejects.toThrow(
      /^verifyPassword: option "legacy"/,
    );
  });
});

describe.each(expressVersions)('passwordVerifier on %s', (_name, express) => {
  test('a matching password reaches the handler, with the validated password forgotten', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const app = express();
    let seen: unknown;
    app.post(
      '/servers/:id/password/verify',
      ...stubValidator(express),
      passwordVerifier({ store, cost: 10 }),
      (req: Request, res: Response) => {
        seen = { password: validatedPassword(req), verified: verifiedPassword(req) };
        res.json({ match: true });
      },
    );
    const res = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ match: true });
    expect(seen).toEqual({ password: undefined, verified: { id: 'srv-1', rehashed: false } });
  });

  test('a wrong password and a missing record get the same 403, with nothing leaked', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const app = passwordApp(express, { store, cost: 10 });
    const wrong = await request(app).post('/servers/srv-1/password/verify').send({ password: 'wrong horse' });
    const missing = await request(app).post('/servers/srv-2/password/verify').send({ password: 'wrong horse' });
    expectProblem(wrong, 403, 'password.mismatch', 'The password does not match.');
    expect(missing.status).toBe(403);
    expect(missing.text).toBe(wrong.text);
    expect(wrong.text).not.toContain('wrong horse');
    expect(wrong.text).not.toContain('$2b$');
  });

  test('re-hashes on a successful verify when the cost was raised', async () => {
    const store = new MemoryStore();
    const setApp = passwordApp(express, { store, cost: 10 });
    expect((await request(setApp).post('/servers/srv-1/password').send({ password: 'correct horse' })).status).toBe(201);
    const raised = passwordApp(express, { store, cost: 11 });
    const res = await request(raised).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expect(res.body).toEqual({ match: true, rehashed: true });
    expect(store.get('srv-1')?.hash).toMatch(/^\$2b\$11\$/);
    expect((await request(raised).post('/servers/srv-1/password/verify').send({ password: 'correct horse' })).body).toEqual({
      match: true,
      rehashed: false,
    });
  });

  test('without a validated password it fails closed with a 500', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const app = express();
    app.post(
      '/servers/:id/password/verify',
      express.json(),
      passwordVerifier({ store, cost: 10 }),
      (_req: Request, res: Response) => {
        res.json({ match: true });
      },
    );
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expectProblem(res, 500, 'password.misconfigured');
    expect(logged[0]?.error).toContain(
      'The password route is misconfigured: no validated password reached passwordVerifier; mount passwordBody() before it or pass a candidate option.',
    );
  });

  test('a route without an id fails closed with a 500 that says so', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const app = express();
    app.post('/verify', ...stubValidator(express), passwordVerifier({ store, cost: 10 }));
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    expectProblem(await request(app).post('/verify').send({ password: 'correct horse' }), 500, 'password.misconfigured');
    expect(logged[0]?.error).toContain(
      'The password route is misconfigured: passwordVerifier found no record id; check its id option or the route path.',
    );
  });

  test('a store error during a rehash that quotes the stored hashes is logged without them', async () => {
    const inner = await storeWith('srv-1', 'correct horse', 10);
    const stored = inner.get('srv-1')?.hash ?? '';
    const store: PasswordStore = {
      setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
      get: (id) => inner.get(id),
      replace: (_id, expected, record) => Promise.reject(new Error(`write failed: ${expected} -> ${record.hash}`)),
      delete: (id) => inner.delete(id),
    };
    const app = express();
    app.post('/servers/:id/password/verify', ...stubValidator(express), passwordVerifier({ store, cost: 11 }));
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expect(res.status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.error).toContain('write failed: [redacted] -> [redacted]');
    expect(logged[0]?.error).not.toContain(stored);
    expect(logged[0]?.error).not.toContain('$2b$');
  });

  test('a match is reported as a login success once the answer is sent; a mismatch is not', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    const store = await storeWith('srv-1', 'correct horse');
    const app = express();
    app.use(events);
    app.post(
      '/servers/:id/password/verify',
      ...stubValidator(express),
      passwordVerifier({ store, cost: 10 }),
      (_req: Request, res: Response) => {
        res.status(204).end();
      },
    );
    app.use(problemHandler({ log: false }));
    await request(app).post('/servers/srv-1/password/verify').send({ password: 'wrong horse' }).expect(403);
    await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' }).expect(204);
    await events.flush();
    expect(seen.filter((event) => event.type === 'authn_login_success')).toEqual([
      expect.objectContaining({ action: 'verify', resource: 'srv-1', status: 204, rehashed: false }),
    ]);
  });

  test('the candidate option reads the password itself; nothing there → 400 password.missing', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const app = express();
    const candidate = (req: Request): string | undefined => {
      const body = req.body as { current?: unknown } | undefined;
      return typeof body?.current === 'string' ? body.current.normalize('NFC') : undefined;
    };
    app.post(
      '/servers/:id/password/verify',
      express.json(),
      passwordVerifier({ store, cost: 10, candidate }),
      (_req: Request, res: Response) => {
        res.json({ match: true });
      },
    );
    app.use(problemHandler({ log: false }));
    expect((await request(app).post('/servers/srv-1/password/verify').send({ current: 'correct horse' })).status).toBe(200);
    expect((await request(app).post('/servers/srv-1/password/verify').send({ current: 'wrong' })).status).toBe(403);
    const missing = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    expectProblem(missing, 400, 'password.missing', 'The request has no password to verify.');
  });

  test('a full limiter gets 503 with Retry-After', async () => {
    const store = await storeWith('srv-1', 'correct horse');
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 0, maxPerCaller: 2 });
    const { release, held } = holdSlot(limiter);
    const app = passwordApp(express, { store, cost: 10, limiter });
    const res = await request(app).post('/servers/srv-1/password/verify').send({ password: 'correct horse' });
    release();
    await held;
    expectProblem(res, 503, 'password.busy');
    expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
  });
});

describe('passwordVerifier options', () => {
  const store = new MemoryStore();

  test('bad options throw at start-up', () => {
    expect(() => passwordVerifier({} as never)).toThrow(/option "store" must be a password store/);
    expect(() => passwordVerifier({ store, cost: 32 })).toThrow(/option "cost"/);
    expect(() => passwordVerifier({ store, candidate: 'password' } as never)).toThrow(/option "candidate" must be a function/);
    expect(() => passwordVerifier({ store, id: 1 } as never)).toThrow(/option "id" must be a function/);
    expect(() => passwordVerifier({ store, pepper: 'short' })).toThrow(/option "pepper"/);
    expect(() => passwordVerifier({ store, candidates: () => 'x' } as never)).toThrow(/Did you mean "candidate"/);
    expect(() => passwordVerifier({ store, rehash: 1 } as never)).toThrow(/option "rehash" must be true or false/);
    expect(() => passwordVerifier({ store, limiter: {} } as never)).toThrow(/option "limiter" must be a HashLimiter/);
    expect(() => passwordVerifier({ store: { get: () => undefined }, rehash: true })).toThrow(
      'passwordVerifier: option "rehash" is true but the store has no replace method to write the upgraded hash; give a full store or leave rehash unset.',
    );
    expect(() => passwordVerifier({ store: { get: () => undefined }, rehash: false })).not.toThrow();
    expect(() => passwordVerifier({ store, rehash: true })).not.toThrow();
    for (const options of [
      {},
      { store, cost: 32 },
      { store, candidates: () => 'x' },
      { store, id: 1 },
      { store, candidate: 'x' },
    ]) {
      expect(() => passwordVerifier(options as never)).toThrow(/^passwordVerifier: /);
    }
  });

  test('the middleware is named for stack traces', () => {
    expect(passwordVerifier({ store }).name).toBe('passwordVerifier');
  });
});
