import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcrypt';
import request from 'supertest';
import type { Request, Response } from 'express';
import {
  HashLimiter,
  MemoryStore,
  hashAndStore,
  problemHandler,
  securityEvents,
  storedPassword,
  validatedPassword,
} from '../../../lib';
import type { PasswordRecord, PasswordStore, ProblemLogEntry, SecurityEvent } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { holdSlot, passwordApp, stubValidator } from '../../helpers/password';
import { expectProblem } from '../../helpers/problem';

const PEPPER = 'test-pepper-0123456789abcdef0123456789abcdef';
const SET_AT = '2026-11-28T18:04:34.000Z';

afterEach(() => {
  jest.restoreAllMocks();
});

/** A long password: `prefix` padded to 72 bytes, then `tail`. */
function past72(prefix: string, tail: string): string {
  return prefix.padEnd(72, '-') + tail;
}

/** A replace-mode set against `store`, which must answer 500: what the problem handler logged. */
async function failedReplace(express: ExpressFactory, store: PasswordStore): Promise<ProblemLogEntry[]> {
  const app = express();
  app.post('/servers/:id/password', ...stubValidator(express), hashAndStore({ store, cost: 10, mode: 'replace' }));
  const logged: ProblemLogEntry[] = [];
  app.use(problemHandler({ log: (entry) => logged.push(entry) }));
  expect((await request(app).post('/servers/srv-1/password').send({ password: 'new password' })).status).toBe(500);
  return logged;
}

describe.each(expressVersions)('hashAndStore on %s', (_name, express) => {
  test('stores only a bcrypt hash of the password, then hands over to the route', async () => {
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10 });
    const before = Date.now();
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'correct horse battery' });
    expect(res.status).toBe(201);
    expect(res.body.id).toBe('srv-1');
    expect(res.body.scheme).toBe('bcrypt');
    const record = store.get('srv-1');
    expect(record).toEqual({
      hash: expect.stringMatching(/^\$2b\$10\$[./A-Za-z0-9]{53}$/),
      setAt: res.body.setAt,
      scheme: 'bcrypt',
    });
    expect(Date.parse(record?.setAt ?? '')).toBeGreaterThanOrEqual(before - 1000);
    expect(record?.setAt).toBe(new Date(record?.setAt ?? 0).toISOString());
    expect(await bcrypt.compare('correct horse battery', record?.hash ?? '')).toBe(true);
    expect(JSON.stringify(record)).not.toContain('correct horse');
    expect(res.text).not.toContain('$2b$');
  });

  test('forgets the plaintext before the route runs and exposes no hash to it', async () => {
    const store = new MemoryStore();
    const app = express();
    let seen: unknown = 'not called';
    app.post(
      '/servers/:id/password',
      ...stubValidator(express),
      hashAndStore({ store, cost: 10 }),
      (req: Request, res: Response) => {
        seen = { password: validatedPassword(req), stored: storedPassword(req) };
        res.status(204).end();
      },
    );
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'correct horse battery' });
    expect(res.status).toBe(204);
    expect(seen).toEqual({ password: undefined, stored: { id: 'srv-1', setAt: expect.any(String), scheme: 'bcrypt' } });
  });

  test('a second set for the same id gets 409 password.already_set and keeps the first hash', async () => {
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10 });
    await request(app).post('/servers/srv-1/password').send({ password: 'first password' });
    const first = store.get('srv-1');
    // Bound to be refused, so not hashed: a cheap way to keep the pool busy otherwise.
    const hash = jest.spyOn(bcrypt, 'hash');
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'second password' });
    expectProblem(
      res,
      409,
      'password.already_set',
      'A password is already set for this resource; delete it before setting another.',
    );
    expect(hash).not.toHaveBeenCalled();
    expect(res.text).not.toContain('second password');
    expect(store.get('srv-1')).toBe(first);
  });

  test('of concurrent sets for one id exactly one wins, decided by the store', async () => {
    const inner = new MemoryStore();
    // get() always says "absent", so every request hashes and only setIfAbsent can decide.
    const store: PasswordStore = {
      setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
      get: () => undefined,
      replace: (id, expected, record) => inner.replace(id, expected, record),
      delete: (id) => inner.delete(id),
    };
    const app = passwordApp(express, {
      store,
      cost: 10,
      limiter: new HashLimiter({ maxConcurrent: 3, maxQueue: 20, maxPerCaller: 20 }),
    });
    const server = createServer(app).listen(0);
    try {
      const { port } = server.address() as AddressInfo;
      const answers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          request(`http://127.0.0.1:${port}`)
            .post('/servers/srv-1/password')
            .send({ password: `password number ${i}` })
            .then((r) => `${r.status} ${(r.body as { code?: string }).code ?? ''}`),
        ),
      );
      expect(answers.sort()).toEqual(['201 ', ...Array<string>(7).fill('409 password.already_set')]);
    } finally {
      server.close();
    }
  });

  test('a record written after the early check is still never overwritten: the store decides', async () => {
    const inner = new MemoryStore();
    inner.setIfAbsent('srv-1', { hash: bcrypt.hashSync('first password', 10), setAt: SET_AT, scheme: 'bcrypt' });
    let reads = 0;
    // The early check read before another request's write landed; later reads see it.
    const store: PasswordStore = {
      setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
      get: (id) => (reads++ === 0 ? undefined : inner.get(id)),
      replace: (id, expected, record) => inner.replace(id, expected, record),
      delete: (id) => inner.delete(id),
    };
    const app = passwordApp(express, { store, cost: 10 });
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'second password' });
    expectProblem(res, 409, 'password.already_set');
    expect(await bcrypt.compare('first password', inner.get('srv-1')?.hash ?? '')).toBe(true);
  });

  test('a 72-byte password is stored whole; 73 bytes get 422 too_long and nothing is hashed', async () => {
    const store = new MemoryStore();
    const hash = jest.spyOn(bcrypt, 'hash');
    const app = passwordApp(express, { store, cost: 10 });
    const exactly72 = '€'.repeat(24);
    expect(Buffer.byteLength(exactly72)).toBe(72);
    expect((await request(app).post('/servers/a/password').send({ password: exactly72 })).status).toBe(201);
    expect(hash).toHaveBeenCalledTimes(1);

    for (const [id, password] of [
      ['b', 'x'.repeat(73)],
      ['c', `${'€'.repeat(24)}x`],
      ['d', `${'x'.repeat(71)}€`],
    ] as const) {
      const res = await request(app).post(`/servers/${id}/password`).send({ password });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        code: 'password.invalid',
        detail: 'The password was refused: one rule failed; see errors.',
        errors: [{ field: 'password', code: 'too_long', message: expect.stringContaining('72 bytes') }],
      });
      expect(res.text).not.toContain(password);
      expect(store.get(id)).toBeUndefined();
    }
    expect(hash).toHaveBeenCalledTimes(1);
  });

  test('without a pepper, a password longer than 72 bytes never verifies against its first 72 bytes', async () => {
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10 });
    const stored = 'y'.repeat(72);
    await request(app).post('/servers/srv-1/password').send({ password: stored });
    expect((await request(app).post('/servers/srv-1/password/verify').send({ password: stored })).status).toBe(200);
    // bcrypt alone would say yes to this one: it reads 72 bytes and drops the rest.
    expect(await bcrypt.compare(`${stored}!`, store.get('srv-1')?.hash ?? '')).toBe(true);
    const res = await request(app)
      .post('/servers/srv-1/password/verify')
      .send({ password: `${stored}!` });
    expectProblem(res, 403, 'password.mismatch');
  });

  test('with a pepper, long passwords are hashed whole: two sharing 72 bytes do not cross-verify', async () => {
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10, pepper: PEPPER });
    const first = past72('shared prefix', 'first ending');
    const second = past72('shared prefix', 'second ending');
    expect(Buffer.from(first).subarray(0, 72).equals(Buffer.from(second).subarray(0, 72))).toBe(true);

    const set = await request(app).post('/servers/a/password').send({ password: first });
    expect(set.status).toBe(201);
    expect(set.body.scheme).toBe('bcrypt+hmac-sha256');
    expect((await request(app).post('/servers/b/password').send({ password: second })).status).toBe(201);
    expect(store.get('a')?.scheme).toBe('bcrypt+hmac-sha256');

    const verify = async (id: string, password: string): Promise<number> =>
      (await request(app).post(`/servers/${id}/password/verify`).send({ password })).status;
    expect(await verify('a', first)).toBe(200);
    expect(await verify('b', second)).toBe(200);
    expect(await verify('a', second)).toBe(403);
    expect(await verify('b', first)).toBe(403);
    expect(await verify('a', first.slice(0, 72))).toBe(403);
    // Not the plain bcrypt of the password: the stored hash needs the pepper.
    expect(await bcrypt.compare(first, store.get('a')?.hash ?? '')).toBe(false);
  });

  test('with a pepper, the stored hash is bcrypt of the base64 HMAC-SHA-256 of the password, as docs/hashing.md says', async () => {
    // The format is a contract: a later version, a migration or another service sharing the
    // store must be able to verify these hashes from the pepper alone.
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10, pepper: PEPPER });
    const password = 'caf\u00e9 au lait 42';
    expect((await request(app).post('/servers/a/password').send({ password })).status).toBe(201);
    const record = store.get('a');
    expect(record?.scheme).toBe('bcrypt+hmac-sha256');
    const preHash = createHmac('sha256', Buffer.from(PEPPER, 'utf8')).update(password, 'utf8').digest('base64');
    expect(await bcrypt.compare(preHash, record?.hash ?? '')).toBe(true);
  });

  test('without the validator in front it fails closed with a 500 and stores nothing', async () => {
    const store = new MemoryStore();
    const app = express();
    app.post('/servers/:id/password', express.json(), hashAndStore({ store, cost: 10 }), (_req: Request, res: Response) => {
      res.status(204).end();
    });
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'unvalidated password' });
    expectProblem(res, 500, 'password.misconfigured');
    // The explanation is for the operator's log, not the client.
    expect(res.body.detail).toBe('The server could not complete the request.');
    expect(logged[0]?.error).toContain(
      'The password route is misconfigured: no validated password reached hashAndStore; mount passwordBody() before it.',
    );
    expect(store.size).toBe(0);
  });

  test('a route without an id fails closed with a 500', async () => {
    const store = new MemoryStore();
    const app = express();
    app.post('/password', ...stubValidator(express), hashAndStore({ store, cost: 10 }), (_req: Request, res: Response) => {
      res.status(204).end();
    });
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/password').send({ password: 'some password' });
    expect(res.status).toBe(500);
    expect(res.body.detail).toBe('The server could not complete the request.');
    expect(logged[0]?.error).toContain(
      'The password route is misconfigured: hashAndStore found no record id; check its id option or the route path.',
    );
    expect(store.size).toBe(0);
  });

  test('works mounted with app.use on a path with :id', async () => {
    const store = new MemoryStore();
    const app = express();
    app.use('/servers/:id/password', ...stubValidator(express), hashAndStore({ store, cost: 10 }));
    app.post('/servers/:id/password', (_req: Request, res: Response) => {
      res.status(204).end();
    });
    app.use(problemHandler({ log: false }));
    expect((await request(app).post('/servers/srv-9/password').send({ password: 'some password' })).status).toBe(204);
    expect(store.get('srv-9')).toBeDefined();
  });

  test('the id option picks the record id', async () => {
    const store = new MemoryStore();
    const app = passwordApp(express, { store, cost: 10, id: (req) => `tenant-7/${req.params['id'] as string}` });
    expect((await request(app).post('/servers/srv-1/password').send({ password: 'some password' })).status).toBe(201);
    expect(store.get('tenant-7/srv-1')).toBeDefined();
    expect(store.get('srv-1')).toBeUndefined();
  });

  test('a failing store is a 500 that shows and logs neither password nor hash', async () => {
    const logged: string[] = [];
    const store: PasswordStore = {
      setIfAbsent: (_id: string, record: PasswordRecord) => Promise.reject(new Error(`disk full writing ${record.hash}`)),
      get: () => undefined,
      replace: (_id: string, _expected: string, _record: PasswordRecord) => false,
      delete: () => false,
    };
    const app = express();
    app.post(
      '/servers/:id/password',
      ...stubValidator(express),
      hashAndStore({ store, cost: 10 }),
      (_req: Request, res: Response) => {
        res.status(204).end();
      },
    );
    app.use(problemHandler({ log: (entry) => logged.push(entry.error) }));
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'secret password' });
    expectProblem(res, 500, 'server.error');
    expect(res.text).not.toContain('secret password');
    expect(res.text).not.toContain('$2b$');
    expect(logged.join('\n')).toContain('disk full writing [redacted]');
    expect(logged.join('\n')).not.toContain('$2b$');
  });

  test('a store that answers nonsense is a 500, never a pass', async () => {
    const store = {
      setIfAbsent: () => 'yes',
      get: () => undefined,
      replace: (_id: string, _expected: string, _record: unknown) => false,
      delete: () => false,
    } as unknown as PasswordStore;
    const app = express();
    app.post('/servers/:id/password', ...stubValidator(express), hashAndStore({ store, cost: 10 }));
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    expect((await request(app).post('/servers/srv-1/password').send({ password: 'some password' })).status).toBe(500);
    expect(logged[0]?.error).toContain("The password store's setIfAbsent returned string, not a boolean.");
  });

  test('a stored password is reported as a password change once the answer is sent', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    const store = new MemoryStore();
    const app = express();
    app.use(events);
    app.post(
      '/servers/:id/password',
      ...stubValidator(express),
      hashAndStore({ store, cost: 10 }),
      (_req: Request, res: Response) => {
        res.status(201).end();
      },
    );
    app.use(problemHandler({ log: false }));
    await request(app).post('/servers/srv-1/password').send({ password: 'some password' }).expect(201);
    await events.flush();
    expect(seen).toEqual([
      expect.objectContaining({ type: 'authn_password_change', action: 'set', resource: 'srv-1', status: 201 }),
    ]);
  });

  describe("mode: 'replace'", () => {
    /** A MemoryStore whose compare-and-set loses the first `losses` times, as to a concurrent change. */
    function losingStore(losses: number): { store: PasswordStore; inner: MemoryStore; tries: () => number } {
      const inner = new MemoryStore();
      let tries = 0;
      const store: PasswordStore = {
        setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
        get: (id) => inner.get(id),
        replace: (id, expected, record) => {
          tries += 1;
          if (tries <= losses) {
            // Another request changed it in between: the expected hash is stale now.
            const current = inner.get(id);
            if (current !== undefined) inner.replace(id, current.hash, { ...current, setAt: `${tries}` });
            return false;
          }
          return inner.replace(id, expected, record);
        },
        delete: (id) => inner.delete(id),
      };
      return { store, inner, tries: () => tries };
    }

    test('sets a record where there is none and overwrites the one there is', async () => {
      const store = new MemoryStore();
      const app = passwordApp(express, { store, cost: 10, mode: 'replace' });
      const first = await request(app).post('/servers/srv-1/password').send({ password: 'first password' });
      expect(first.status).toBe(201);
      const firstHash = store.get('srv-1')?.hash ?? '';
      const second = await request(app).post('/servers/srv-1/password').send({ password: 'second password' });
      expect(second.status).toBe(201);
      const record = store.get('srv-1');
      expect(record?.hash).not.toBe(firstHash);
      expect(record?.setAt).toBe(second.body.setAt);
      expect(await bcrypt.compare('second password', record?.hash ?? '')).toBe(true);
      expect(store.size).toBe(1);
    });

    test('a compare-and-set lost to a concurrent change is tried again, and lands whole', async () => {
      const { store, inner, tries } = losingStore(3);
      inner.setIfAbsent('srv-1', { hash: bcrypt.hashSync('old password', 10), setAt: SET_AT, scheme: 'bcrypt' });
      const app = passwordApp(express, { store, cost: 10, mode: 'replace' });
      const res = await request(app).post('/servers/srv-1/password').send({ password: 'new password' });
      expect(res.status).toBe(201);
      expect(tries()).toBe(4);
      expect(await bcrypt.compare('new password', inner.get('srv-1')?.hash ?? '')).toBe(true);
    });

    test('a record deleted in the meantime is set again, not lost', async () => {
      const inner = new MemoryStore();
      inner.setIfAbsent('srv-1', { hash: bcrypt.hashSync('old password', 10), setAt: SET_AT, scheme: 'bcrypt' });
      const store: PasswordStore = {
        setIfAbsent: (id, record) => inner.setIfAbsent(id, record),
        get: (id) => inner.get(id),
        // A reset deleted it between the read and the write.
        replace: (id, _expected, _record) => {
          inner.delete(id);
          return false;
        },
        delete: (id) => inner.delete(id),
      };
      const app = passwordApp(express, { store, cost: 10, mode: 'replace' });
      expect((await request(app).post('/servers/srv-1/password').send({ password: 'new password' })).status).toBe(201);
      expect(await bcrypt.compare('new password', inner.get('srv-1')?.hash ?? '')).toBe(true);
    });

    test('a race lost on every try is 409 password.conflict, and the other change stays', async () => {
      const { store, inner } = losingStore(Number.POSITIVE_INFINITY);
      inner.setIfAbsent('srv-1', { hash: bcrypt.hashSync('old password', 10), setAt: SET_AT, scheme: 'bcrypt' });
      const app = passwordApp(express, { store, cost: 10, mode: 'replace' });
      const res = await request(app).post('/servers/srv-1/password').send({ password: 'new password' });
      expectProblem(res, 409, 'password.conflict', 'The password was changed by another request at the same time; try again.');
      expect(res.text).not.toContain('new password');
      expect(await bcrypt.compare('old password', inner.get('srv-1')?.hash ?? '')).toBe(true);
    });

    test('a store whose setIfAbsent answers nonsense is a 500 that names it', async () => {
      const store = {
        setIfAbsent: () => 1,
        get: () => undefined,
        replace: (_id: string, _expected: string, _record: PasswordRecord) => false,
        delete: () => false,
      } as unknown as PasswordStore;
      const logged = await failedReplace(express, store);
      expect(logged[0]?.error).toContain("The password store's setIfAbsent returned number, not a boolean.");
    });

    test('a store whose replace answers nonsense is a 500, never a pass', async () => {
      const inner = new MemoryStore();
      inner.setIfAbsent('srv-1', { hash: bcrypt.hashSync('old password', 10), setAt: SET_AT, scheme: 'bcrypt' });
      const store = {
        setIfAbsent: (id: string, record: PasswordRecord) => inner.setIfAbsent(id, record),
        get: (id: string) => inner.get(id),
        replace: (_id: string, _expected: string, _record: PasswordRecord) => 'yes',
        delete: (id: string) => inner.delete(id),
      } as unknown as PasswordStore;
      const logged = await failedReplace(express, store);
      expect(logged[0]?.error).toContain("The password store's replace returned string, not a boolean.");
      expect(await bcrypt.compare('old password', inner.get('srv-1')?.hash ?? '')).toBe(true);
    });
  });

  describe('backpressure', () => {
    test('a burst past the cap gets 503 + Retry-After at once, without hashing; the rest succeed', async () => {
      const store = new MemoryStore();
      const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 1, maxPerCaller: 4 });
      const hash = jest.spyOn(bcrypt, 'hash');
      const app = passwordApp(express, { store, cost: 10, limiter });
      // Something else holds the only slot, so exactly one request can queue.
      const { release, held } = holdSlot(limiter);
      const server = createServer(app).listen(0);
      try {
        const { port } = server.address() as AddressInfo;
        const answered: number[] = [];
        const responses = Promise.all(
          ['a', 'b', 'c', 'd'].map((id) =>
            request(`http://127.0.0.1:${port}`)
              .post(`/servers/${id}/password`)
              .send({ password: `password of ${id}` })
              .then((res) => {
                answered.push(res.status);
                return res;
              }),
          ),
        );
        await until(() => answered.length === 3);
        expect(answered).toEqual([503, 503, 503]);
        expect(limiter.queued).toBe(1);
        release();
        await held;
        const all = await responses;
        const refused = all.filter((res) => res.status === 503);
        expect(refused).toHaveLength(3);
        for (const res of refused) {
          expect(res.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
          expect(res.body.code).toBe('password.busy');
        }
        expect(all.filter((res) => res.status === 201)).toHaveLength(1);
        expect(hash).toHaveBeenCalledTimes(1);
        expect(store.size).toBe(1);
      } finally {
        server.close();
      }
    });

    test('the 503 says in words when to retry, matching Retry-After, in the singular and the plural', async () => {
      const store = new MemoryStore();
      const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 0, maxPerCaller: 1 });
      const app = passwordApp(express, { store, cost: 10, limiter });
      const refusal = async (): Promise<request.Response> => {
        const res = await request(app).post('/servers/a/password').send({ password: 'correct horse' });
        expect(res.status).toBe(503);
        return res;
      };

      // No task has finished yet: nothing measured, so "1 second".
      const first = limiter.tryRun(() => new Promise<void>((resolve) => setTimeout(resolve, 1_300)));
      const one = await refusal();
      expect(one.headers['retry-after']).toBe('1');
      expect(one.body.detail).toBe('Too many passwords are being hashed right now; retry in 1 second.');
      await first;

      // One slot busy at an average of at least 1.3 s a task: 2 seconds or more.
      const { release, held: second } = holdSlot(limiter);
      const more = await refusal();
      const seconds = String(more.headers['retry-after']);
      expect(seconds).toMatch(/^[2-9]$/);
      expect(more.body.detail).toBe(`Too many passwords are being hashed right now; retry in ${seconds} seconds.`);
      release();
      await second;
      expect(store.size).toBe(0);
    });

    test('a burst within the cap all succeeds', async () => {
      const store = new MemoryStore();
      const app = passwordApp(express, {
        store,
        cost: 10,
        limiter: new HashLimiter({ maxConcurrent: 2, maxQueue: 2, maxPerCaller: 4 }),
      });
      const server = createServer(app).listen(0);
      try {
        const { port } = server.address() as AddressInfo;
        const statuses = await Promise.all(
          ['a', 'b', 'c', 'd'].map((id) =>
            request(`http://127.0.0.1:${port}`)
              .post(`/servers/${id}/password`)
              .send({ password: `password of ${id}` })
              .then((r) => r.status),
          ),
        );
        expect(statuses).toEqual([201, 201, 201, 201]);
        expect(store.size).toBe(4);
      } finally {
        server.close();
      }
    });

    test('the event loop keeps turning while hashes run', async () => {
      const store = new MemoryStore();
      const app = passwordApp(express, {
        store,
        cost: 10,
        limiter: new HashLimiter({ maxConcurrent: 2, maxQueue: 10, maxPerCaller: 12 }),
      });
      let ticks = 0;
      const timer = setInterval(() => {
        ticks += 1;
      }, 5);
      try {
        await Promise.all(
          ['a', 'b', 'c', 'd'].map((id) =>
            request(app)
              .post(`/servers/${id}/password`)
              .send({ password: `password of ${id}` }),
          ),
        );
      } finally {
        clearInterval(timer);
      }
      // Four cost-10 hashes, two at a time, take well over 50 ms; a blocked loop would not tick.
      expect(ticks).toBeGreaterThan(5);
    });
  });
});

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('hashAndStore defaults', () => {
  test('hashes at cost 12 by default', async () => {
    const store = new MemoryStore();
    const express = expressVersions[1]?.[1];
    if (express === undefined) throw new Error('no express');
    const app = passwordApp(express, { store });
    expect((await request(app).post('/servers/srv-1/password').send({ password: 'some password' })).status).toBe(201);
    expect(store.get('srv-1')?.hash).toMatch(/^\$2b\$12\$/);
  });
});

describe('hashAndStore options', () => {
  const store = new MemoryStore();

  test.each([9, 0, -1, 32, 10.5, Number.NaN, '12', null])('cost %p is refused at start-up', (cost) => {
    expect(() => hashAndStore({ store, cost } as never)).toThrow(/option "cost" must be a whole number from 10 to 31/);
    // The message says how to choose a cost, not only that this one is wrong.
    expect(() => hashAndStore({ store, cost } as never)).toThrow(/each step doubles the work; 12 is the default/);
  });

  test('costs 10 and 31 are accepted', () => {
    expect(() => hashAndStore({ store, cost: 10 })).not.toThrow();
    expect(() => hashAndStore({ store, cost: 31 })).not.toThrow();
  });

  test.each<[unknown, RegExp]>([
    [undefined, /option "store" must be a password store/],
    [null, /option "store" must be a password store/],
    [{}, /has no setIfAbsent, get, replace, delete method/],
    [{ get: () => undefined, setIfAbsent: () => true, delete: () => true }, /has no replace method/],
    [
      { get: () => undefined, setIfAbsent: () => true, delete: () => true, replace: (_id: string, _record: unknown) => true },
      /replace is replace\(id, expectedHash, record\), a compare-and-set/,
    ],
    // Issue 17, point 6: a zero-argument stub claimed writes it never made and passed.
    [
      { get: () => undefined, setIfAbsent: () => true, delete: () => true, replace: () => true },
      /replace with 0 declared parameters; a password store's replace is replace\(id, expectedHash, record\)/,
    ],
  ])('store %p is refused', (bad, message) => {
    expect(() => hashAndStore({ store: bad } as never)).toThrow(message);
  });

  test('a pepper must be a string or bytes of at least 32 bytes', () => {
    expect(() => hashAndStore({ store, pepper: 'short' })).toThrow(/option "pepper" must be at least 32 bytes/);
    expect(() => hashAndStore({ store, pepper: Buffer.alloc(31) })).toThrow(/at least 32 bytes/);
    expect(() => hashAndStore({ store, pepper: 42 } as never)).toThrow(/option "pepper" must be a string or a Buffer/);
    expect(() => hashAndStore({ store, pepper: Buffer.alloc(32, 1) })).not.toThrow();
    expect(() => hashAndStore({ store, pepper: new Uint8Array(32) })).not.toThrow();
  });

  test('id and limiter are checked', () => {
    expect(() => hashAndStore({ store, id: 'id' } as never)).toThrow(/option "id" (must be a function|\("id"\) must start with)/);
    expect(() => hashAndStore({ store, limiter: { maxConcurrent: 1 } } as never)).toThrow(
      /option "limiter" must be a HashLimiter/,
    );
  });

  test('unknown options throw with a suggestion', () => {
    expect(() => hashAndStore({ store, rounds: 12 } as never)).toThrow(/unknown option "rounds"/);
    expect(() => hashAndStore({ store, peper: PEPPER } as never)).toThrow(/Did you mean "pepper"\?/);
  });

  test.each<[unknown, string]>([
    ['bogus', `"bogus"`],
    ['SET-ONCE', `"SET-ONCE"`],
    [5, '5'],
    [Symbol('replace'), 'symbol'],
  ])('mode %p is refused, quoted', (mode, got) => {
    expect(() => hashAndStore({ store, mode } as never)).toThrow(
      `hashAndStore: option "mode" must be 'set-once' or 'replace', got ${got}.`,
    );
  });

  test("modes 'set-once' and 'replace' are accepted", () => {
    expect(() => hashAndStore({ store, mode: 'set-once' })).not.toThrow();
    expect(() => hashAndStore({ store, mode: 'replace' })).not.toThrow();
  });

  test.each<[string, unknown]>([
    ['an unknown option', { store, rounds: 12 }],
    ['no store', {}],
    ['a bad id', { store, id: 42 }],
    ['a bad cost', { store, cost: 9 }],
    ['a bad limiter', { store, limiter: {} }],
    ['a bad mode', { store, mode: 'always' }],
  ])('%s: the error names hashAndStore first', (_label, options) => {
    expect(() => hashAndStore(options as never)).toThrow(/^hashAndStore: /);
  });

  test('the middleware is named for stack traces', () => {
    expect(hashAndStore({ store }).name).toBe('hashAndStore');
  });
});
