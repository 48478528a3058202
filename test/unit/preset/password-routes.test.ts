import bcrypt from 'bcrypt';
import request from 'supertest';
import type { Request } from 'express';
import { MemoryStore, passwordBody, passwordRoutes, requestUser } from '../../../lib';
import * as passwordBodyModule from '../../../lib/body/password-body';
import type { PasswordLocation, PasswordRecord, PasswordRoutesOptions, ProblemLogEntry, UserPrincipal } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import { sendFrom } from '../../helpers/password';
import { expectProblem } from '../../helpers/problem';
import { SERVERS, userRoutesApp } from '../../helpers/user-routes';
import type { Account } from '../../helpers/user-routes';

const PASSWORD = 'tangerine kettle 42 drums';

describe.each(expressVersions)('passwordRoutes on %s', (_name, express) => {
  let store: MemoryStore;
  beforeEach(() => {
    store = new MemoryStore();
  });

  // Issue 14: the record id re-read req.params.id instead of the loaded resource's id.
  test('a case-insensitive lookup keys one record per resource: the loaded id, not the path', async () => {
    const app = userRoutesApp(express, store, {
      ownership: {
        principal: requestUser<Account>(),
        // As MySQL's default collation would: SRV-ALICE finds s1's row.
        load: (req) => SERVERS.get(String(req.params['id']).toLowerCase()),
        owner: 'owner',
      },
    });
    const alice = { 'X-User': 'alice' };
    await request(app).post('/servers/s1/password').set(alice).send({ password: PASSWORD }).expect(204);
    const variant = await request(app).post('/servers/S1/password').set(alice).send({ password: 'a second secret here' });
    expect(variant.status).toBe(409);
    expect([...store.ids()]).toEqual(['s1']);
    expect((await request(app).post('/servers/S1/password/verify').set(alice).send({ password: PASSWORD })).body).toEqual({
      match: true,
    });
    await request(app).delete('/servers/S1/password').set(alice).expect(204);
    expect([...store.ids()]).toEqual([]);
  });

  test('state, set, conflict, verify and delete, in that order of a life', async () => {
    const app = userRoutesApp(express, store);
    const alice = { 'X-User': 'alice' };
    expect((await request(app).get('/servers/s1/password').set(alice).expect(200)).body).toEqual({ passwordSet: false });
    await request(app).post('/servers/s1/password').set(alice).send({ password: PASSWORD }).expect(204);
    const state = await request(app).get('/servers/s1/password').set(alice).expect(200);
    expect(state.body).toEqual({ passwordSet: true, setAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), algorithm: 'bcrypt' });
    expect(state.headers['cache-control']).toBe('no-store');
    const again = await request(app).post('/servers/s1/password').set(alice).type('text').send('another fine secret');
    expectProblem(again, 409, 'password.already_set');

    const right = await request(app).post('/servers/s1/password/verify').set(alice).send({ password: PASSWORD });
    expect(right.status).toBe(200);
    expect(right.body).toEqual({ match: true });
    // A candidate that would fail the content rules is still just a wrong password.
    const wrong = await request(app).post('/servers/s1/password/verify').set(alice).send({ password: 'x' });
    expect(wrong.body).toEqual({ match: false });

    await request(app).delete('/servers/s1/password').set(alice).expect(204);
    await request(app).delete('/servers/s1/password').set(alice).expect(204);
    expect((await request(app).get('/servers/s1/password').set(alice)).body).toEqual({ passwordSet: false });
    expect((await request(app).post('/servers/s1/password/verify').set(alice).send({ password: PASSWORD })).body).toEqual({
      match: false,
    });
  });

  test('every route is behind ownership, before any body is read', async () => {
    const app = userRoutesApp(express, store);
    await request(app).post('/servers/s1/password').set({ 'X-User': 'alice' }).send({ password: PASSWORD }).expect(204);
    for (const [method, path] of [
      ['get', '/servers/s1/password'],
      ['post', '/servers/s1/password'],
      ['delete', '/servers/s1/password'],
      ['post', '/servers/s1/password/verify'],
    ] as const) {
      const foreign = await request(app)[method](path).set({ 'X-User': 'bob' }).send({ password: PASSWORD });
      const missing = await request(app)[method](path.replace('s1', 's9')).set({ 'X-User': 'bob' }).send({ password: PASSWORD });
      const anonymous = await request(app)[method](path).send({ password: PASSWORD });
      expect([foreign.status, missing.status, anonymous.status]).toEqual([404, 404, 401]);
      expect(foreign.text).toBe(missing.text);
      expectProblem(foreign, 404, 'ownership.denied');
    }
    expect(await store.get('s1')).toBeDefined();
  });

  test('the default context words are the record id and the caller', async () => {
    const app = userRoutesApp(express, store);
    const res = await request(app)
      .post('/servers/s1/password')
      .set({ 'X-User': 'alice' })
      .send({ password: 'alice-was-here-99' });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([expect.objectContaining({ code: 'context_word' })]);
  });

  test('remove: false and verify: false take those routes away', async () => {
    const app = userRoutesApp(express, store, { remove: false, verify: false });
    const del = await request(app).delete('/servers/s1/password').set({ 'X-User': 'alice' });
    expect(del.status).toBe(405);
    expect(del.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
    const verify = await request(app).post('/servers/s1/password/verify').set({ 'X-User': 'alice' }).send({ password: PASSWORD });
    expect(verify.status).toBe(404);
  });

  test('wrong methods get 405 with Allow on both routes, OPTIONS a 204', async () => {
    const app = userRoutesApp(express, store);
    const put = await request(app).put('/servers/s1/password').set({ 'X-User': 'alice' });
    expect(put.status).toBe(405);
    expect(put.headers['allow']).toBe('GET, HEAD, POST, DELETE, OPTIONS');
    const get = await request(app).get('/servers/s1/password/verify').set({ 'X-User': 'alice' });
    expect(get.status).toBe(405);
    expect(get.headers['allow']).toBe('POST, OPTIONS');
    const options = await request(app).options('/servers/s1/password');
    expect(options.status).toBe(204);
  });

  test('beforeVerify runs on the verify route only, after ownership', async () => {
    const seen: string[] = [];
    const app = userRoutesApp(express, store, {
      beforeVerify: [
        (req, _res, next) => {
          seen.push(String(req.params['id']));
          next();
        },
      ],
    });
    await request(app).post('/servers/s1/password/verify').set({ 'X-User': 'bob' }).send({ password: PASSWORD }).expect(404);
    await request(app).post('/servers/s1/password/verify').set({ 'X-User': 'alice' }).send({ password: PASSWORD }).expect(200);
    await request(app).get('/servers/s1/password').set({ 'X-User': 'alice' }).expect(200);
    expect(seen).toEqual(['s1']);
  });

  test('errors: false hands errors to the app, encoder: false leaves the headers to it', async () => {
    const app = userRoutesApp(express, store, { errors: false, encoder: false });
    app.use((err: { status?: number }, _req: Request, res: import('express').Response, _next: import('express').NextFunction) => {
      res.status(err.status ?? 500).json({ mine: true });
    });
    const res = await request(app).get('/servers/s1/password');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ mine: true });
    expect(res.headers['content-security-policy']).toBeUndefined();
  });

  describe.each<PasswordLocation>(['json', 'form', 'text', 'query'])('with body.from %s', (location) => {
    test('set and verify read the password there; none there is a 422 that stores nothing', async () => {
      const warnings: string[] = [];
      const app = userRoutesApp(express, store, {
        body: { from: location, ...(location === 'query' ? { query: { warn: (m: string) => warnings.push(m) } } : {}) },
      });
      const empty = {
        json: () => request(app).post('/servers/s1/password').set('X-User', 'alice').send({ username: 'alice' }),
        form: () => request(app).post('/servers/s1/password').set('X-User', 'alice').type('form').send('username=alice'),
        text: () => request(app).post('/servers/s1/password').set('X-User', 'alice').type('text').send(''),
        query: () => request(app).post('/servers/s1/password?username=alice').set('X-User', 'alice'),
      }[location];
      const missing = await empty();
      expect(missing.status).toBe(422);
      expect(missing.body.errors).toEqual([expect.objectContaining({ code: 'missing' })]);
      expect(await store.get('s1')).toBeUndefined();

      const set = await sendFrom(app, location, PASSWORD, '/servers/s1/password').set('X-User', 'alice');
      expect(set.status).toBe(204);
      expect(set.headers['deprecation']).toBe(location === 'query' ? '@0' : undefined);
      const right = await sendFrom(app, location, PASSWORD, '/servers/s1/password/verify').set('X-User', 'alice');
      expect(right.body).toEqual({ match: true });
      expect(right.headers['deprecation']).toBe(location === 'query' ? '@0' : undefined);
      const wrong = await sendFrom(app, location, 'x', '/servers/s1/password/verify').set('X-User', 'alice');
      expect(wrong.body).toEqual({ match: false });
      expect(warnings).toHaveLength(location === 'query' ? 1 : 0);
    });
  });

  test('a route reading the query warns once, for both of its routes', async () => {
    const warnings: string[] = [];
    userRoutesApp(express, store, { body: { from: ['json', 'query'], query: { warn: (m: string) => warnings.push(m) } } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /"password" query parameter\..* Routes: \/servers\/:id\/password and \/servers\/:id\/password\/verify\.$/,
    );
    const alone: string[] = [];
    userRoutesApp(express, store, { verify: false, body: { from: 'query', query: { warn: (m: string) => alone.push(m) } } });
    expect(alone).toEqual([expect.stringMatching(/ Routes: \/servers\/:id\/password\.$/)]);
  });

  test('the verify route reads with the body options it shares: field, limit, normalization', async () => {
    const app = userRoutesApp(express, store, { body: { field: 'secret', limit: 200, normalization: 'none' } });
    const composed = 'caf\u00e9 tangerine kettle 42';
    await request(app).post('/servers/s1/password').set('X-User', 'alice').send({ secret: composed }).expect(204);
    const right = await request(app).post('/servers/s1/password/verify').set('X-User', 'alice').send({ secret: composed });
    expect(right.body).toEqual({ match: true });
    // Under the default NFC the decomposed spelling would match too.
    const decomposed = await request(app)
      .post('/servers/s1/password/verify')
      .set('X-User', 'alice')
      .send({ secret: composed.normalize('NFD') });
    expect(decomposed.body).toEqual({ match: false });
    const oversize = await request(app)
      .post('/servers/s1/password/verify')
      .set('X-User', 'alice')
      .send({ secret: 'x'.repeat(200) });
    expect(oversize.status).toBe(413);
  });

  test('without body.from the verify route reads a JSON body only, as before', async () => {
    const app = userRoutesApp(express, store);
    await request(app).post('/servers/s1/password').set('X-User', 'alice').type('text').send(PASSWORD).expect(204);
    const text = await request(app).post('/servers/s1/password/verify').set('X-User', 'alice').type('text').send(PASSWORD);
    expect(text.status).toBe(415);
    const form = await request(app)
      .post('/servers/s1/password/verify')
      .set('X-User', 'alice')
      .type('form')
      .send({ password: PASSWORD });
    expect(form.status).toBe(415);
  });

  test('a custom path and id reader', async () => {
    const app = express();
    passwordRoutes(app, {
      store,
      path: '/me/password/',
      id: () => 'account-7',
      ownership: {
        principal: () => ({ kind: 'user', id: 'u7' }),
        load: () => ({ owner: 'u7' }),
        owner: (r) => ({ kind: 'user', id: r.owner }),
      },
      hashing: { cost: 10 },
    });
    await request(app).post('/me/password').send({ password: PASSWORD }).expect(204);
    expect((await store.get('account-7'))?.hash).toMatch(/^\$2b\$10\$/);
    expect((await request(app).post('/me/password/verify').send({ password: PASSWORD })).body).toEqual({ match: true });
  });

  test('a store error on verify logs neither the stored hash nor its upgrade', async () => {
    // A store whose replace() quotes both hashes in its error, as a careless driver may.
    class LeakyStore extends MemoryStore {
      override replace(_id: string, expected: string, record: PasswordRecord): boolean {
        throw new Error(`replace failed: expected ${expected}, new ${record.hash}`);
      }
    }
    const leaky = new LeakyStore();
    leaky.setIfAbsent('s1', { hash: bcrypt.hashSync(PASSWORD, 10), setAt: new Date(0).toISOString(), scheme: 'bcrypt' });
    const logged: ProblemLogEntry[] = [];
    // Cost 11 upgrades the cost-10 record on a match, so replace() runs.
    const app = userRoutesApp(express, leaky as MemoryStore, {
      hashing: { cost: 11 },
      errors: { log: (entry) => logged.push(entry) },
    });
    const res = await request(app).post('/servers/s1/password/verify').set('X-User', 'alice').send({ password: PASSWORD });
    expect(res.status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.error).toContain('replace failed');
    expect(logged[0]?.error).not.toMatch(/\$2[aby]\$/);
    expect(res.text).not.toMatch(/\$2[aby]\$/);
  });
});

describe('passwordRoutes options', () => {
  const express = expressVersions[1]![1];
  const base = (): PasswordRoutesOptions<UserPrincipal, { owner: string }> => ({
    store: new MemoryStore(),
    ownership: { load: () => ({ owner: 'a' }), owner: 'owner' },
  });

  test.each([
    ['an unknown option', { stroe: 1 }, /unknown option "stroe"\. Did you mean "store"\?/],
    ['no store', { store: undefined }, /store/],
    ['a store without replace', { store: { get() {}, setIfAbsent() {}, delete() {} } }, /replace/],
    ['a relative path', { path: 'servers/:id' }, /"path" must be a string starting with "\/"/],
    ['no ownership', { ownership: undefined }, /"ownership" is required/],
    ['an unknown hashing key', { hashing: { costs: 12 } }, /unknown option "costs"/],
    ['a low cost', { hashing: { cost: 8 } }, /cost/],
    ['a non-boolean verify', { verify: 'yes' }, /"verify" must be true or false/],
    ['a non-boolean remove', { remove: 1 }, /"remove" must be true or false/],
    ['beforeVerify not an array', { beforeVerify: () => undefined }, /"beforeVerify" must be an array/],
    ['a bad body option', { body: { minLength: -1 } }, /minLength/],
    ['a bad body.from', { body: { from: 'cookie' } }, /option "from"/],
    ['a bad body.query.warn', { body: { from: 'query', query: { warn: 'yes' } } }, /option "query\.warn" must be a function/],
    ['body.query without "query" in from', { body: { query: {} } }, /option "query" is set but "from" does not list "query"/],
    ['a bad encoder option', { encoder: { noStore: 'no' } }, /noStore/],
    ['a bad errors option', { errors: { log: 'yes' } }, /log/],
  ])('throws on %s', (_case, extra, message) => {
    expect(() => passwordRoutes(express(), { ...base(), ...(extra as object) } as never)).toThrow(message);
  });
});

describe('the verify route and the body options', () => {
  const express = expressVersions[1]![1];
  // Where and how a password is read: what a client of the set route would expect of verify.
  const SHARED = ['field', 'from', 'query', 'limit', 'normalization', 'readTimeout', 'drainBytes', 'drainMs'];
  // The content rules, and what only setting needs.
  const SET_ONLY = [
    'minLength',
    'maxLength',
    'maxBytes',
    'composition',
    'commonPasswords',
    'context',
    'minScore',
    'purpose',
    'methods',
    'handOff',
    'repeat',
    'secretFields',
    'anyContentType',
  ];

  test('every option passwordBody knows is sorted: shared with verify, or set only', () => {
    let known: string[] = [];
    try {
      passwordBody({ notAnOption: true } as never);
    } catch (error) {
      known = /Known options: (.*)\.$/.exec((error as Error).message)?.[1]?.split(', ') ?? [];
    }
    expect(known.length).toBeGreaterThan(10);
    expect([...known].sort()).toEqual([...SHARED, ...SET_ONLY].sort());
  });

  test("each shared option given to passwordRoutes reaches the verify route's passwordBody", () => {
    const body = {
      field: 'pw',
      from: ['json', 'query'],
      query: { parameter: 'pwq', warn: () => undefined },
      limit: 2000,
      normalization: 'NFKC',
      readTimeout: 1234,
      drainBytes: 4321,
      drainMs: 567,
    } as const;
    expect(Object.keys(body).sort()).toEqual([...SHARED].sort());
    const spy = jest.spyOn(passwordBodyModule, 'passwordBody');
    try {
      passwordRoutes(express(), {
        store: new MemoryStore(),
        ownership: { load: () => ({ owner: 'a' }), owner: 'owner' },
        body: { ...body, minLength: 12, repeat: 'again' },
      });
      // The verify route's is the one without the content rules.
      const verify = spy.mock.calls.map(([options]) => options ?? {}).filter((options) => options.minLength === 1);
      expect(verify).toHaveLength(1);
      const got = verify[0] as Record<string, unknown>;
      for (const [key, value] of Object.entries(body)) {
        if (key === 'query') expect(got[key]).toMatchObject({ parameter: 'pwq' });
        else expect([key, got[key]]).toEqual([key, value]);
      }
      expect(got['repeat']).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });
});
