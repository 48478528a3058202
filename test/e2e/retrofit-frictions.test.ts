import { createHash } from 'node:crypto';
import bcrypt from 'bcrypt';
import Database from 'better-sqlite3';
import helmet from 'helmet';
import request from 'supertest';
import type { ErrorRequestHandler, Express, NextFunction, Request, Response } from 'express';
import {
  hashAndStore,
  MemoryStore,
  methodGuard,
  ownership,
  passwordBody,
  passwordVerifier,
  problemHandler,
  refusalLog,
  requestUser,
  requireCurrentPassword,
  requireOwnership,
  responseEncoder,
  storedPassword,
  submittedPassword,
  validatedPassword,
} from '../../lib';
import type { PasswordSource, RefusalEntry } from '../../lib';
import { expressVersions } from '../helpers/express';
import { expectProblem } from '../helpers/problem';

// Issue 17: each friction a retrofit in front of an existing app ran into, reproduced
// first, then closed by an option of the package (no glue in the app).

const md5 = (text: string): string => createHash('md5').update(text, 'utf8').digest('hex');

/** A real SQLite user table, MD5 passwords, numeric ids: what the retrofitted app keeps. */
function usersTable(): { db: Database.Database; source: PasswordSource } {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password TEXT)');
  db.prepare('INSERT INTO users (id, email, password) VALUES (?, ?, ?)').run(
    1,
    'alice@example.com',
    md5('alice in wonderland 1865'),
  );
  db.prepare('INSERT INTO users (id, email, password) VALUES (?, ?, ?)').run(
    2,
    'bob@example.com',
    md5('bob builds bridges 1999'),
  );
  const byKey = db.prepare<[string, string], { password: string }>(
    'SELECT password FROM users WHERE email = ? OR CAST(id AS TEXT) = ?',
  );
  const source: PasswordSource = {
    get: (key) => {
      const row = byKey.get(key, key);
      return row === undefined ? undefined : { hash: row.password, scheme: 'md5', setAt: '2020-01-01T00:00:00.000Z' };
    },
  };
  return { db, source };
}

describe.each(expressVersions)('retrofit frictions on %s', (_name, express) => {
  const quiet = problemHandler({ log: false });
  /** The shop's login route: a read-only users table checked by email, behind the given error handler. */
  const loginApp = (source: PasswordSource, errors: ErrorRequestHandler): Express => {
    const app = express();
    app.post(
      '/login',
      passwordBody({ purpose: 'verify' }),
      passwordVerifier({ store: source, id: 'body.email' }),
      (_req, res) => {
        res.json({ ok: true });
      },
    );
    app.use(errors);
    return app;
  };
  const echo = (req: Request, res: Response): void => {
    res.json({
      body: req.body as unknown,
      query: req.query,
      url: req.originalUrl,
      validated: validatedPassword(req) !== undefined,
    });
  };

  describe('1. principals from real auth', () => {
    // The app keeps its signed-in users in a token map, with the id nested in the claims.
    const tokens = new Map<string, { data: { id: number; email: string } }>([
      ['t-bob', { data: { id: 2, email: 'bob@example.com' } }],
    ]);
    const fromTokenMap = (req: Request): unknown => tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    const baskets = new Map([
      ['1', { id: 1, userId: 1 }],
      ['2', { id: 2, userId: 2 }],
    ]);

    function basketApp(
      matchIds?: 'strict' | 'normalized',
      principal = requestUser({ property: fromTokenMap, idField: 'data.id' }),
    ): ReturnType<typeof express> {
      const app = express();
      app.get(
        '/rest/basket/:id',
        requireOwnership({
          principal,
          load: (req) => baskets.get(String(req.params['id'])),
          owner: 'userId',
          ...(matchIds === undefined ? {} : { matchIds }),
        }),
        (_req, res) => {
          res.json({ ok: true });
        },
      );
      app.use(quiet);
      return app;
    }

    test('a function finds the user and a dotted idField reads the nested claim', async () => {
      const app = basketApp();
      expect((await request(app).get('/rest/basket/2').set('Authorization', 'Bearer t-bob')).status).toBe(200);
      expect((await request(app).get('/rest/basket/1').set('Authorization', 'Bearer t-bob')).status).toBe(404);
      expect((await request(app).get('/rest/basket/2')).status).toBe(401);
    });

    test('a malformed idField path fails at start-up, not with a 500 per request', () => {
      expect(() => requestUser({ idField: 'data..id' })).toThrow(/option "idField" .* is not a dotted path/);
      expect(() => requestUser({ property: 'auth.__proto__' })).toThrow(/option "property" .* is not a dotted path/);
    });

    test('matchIds: "normalized" lets the id "2" own the row whose owner column holds 2; strict does not', async () => {
      const fromHeader = (req: Request): { kind: 'user'; id: string } | undefined =>
        typeof req.headers['x-user'] === 'string' ? { kind: 'user', id: req.headers['x-user'] } : undefined;
      expect(
        (
          await request(basketApp(undefined, fromHeader as never))
            .get('/rest/basket/2')
            .set('X-User', '2')
        ).status,
      ).toBe(404);
      const normalized = basketApp('normalized', fromHeader as never);
      expect((await request(normalized).get('/rest/basket/2').set('X-User', '2')).status).toBe(200);
      expect((await request(normalized).get('/rest/basket/2').set('X-User', '02')).status).toBe(404);
      expect((await request(normalized).get('/rest/basket/1').set('X-User', '2')).status).toBe(404);
      expect(() =>
        requireOwnership<never, { userId: number }>({ load: () => undefined, owner: 'userId', matchIds: 'loose' as never }),
      ).toThrow(/option "matchIds"/);
    });
  });

  test('2. a body parser after passwordBody skips the consumed stream instead of answering 500', async () => {
    const app = express();
    app.post('/login', passwordBody({ purpose: 'verify' }), express.json(), express.urlencoded({ extended: false }), echo);
    app.use(quiet);
    const res = await request(app).post('/login').send({ email: 'bob@example.com', password: 'bob builds bridges 1999' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ body: { email: 'bob@example.com' }, query: {}, url: '/login', validated: true });
  });

  describe('3. hand-off mode: the existing handler still receives the password', () => {
    test('JSON and form bodies get the validated, normalised value back in its field', async () => {
      const app = express();
      app.post('/register', passwordBody({ from: ['json', 'form'], handOff: true }), express.json(), echo);
      app.use(quiet);
      const json = await request(app)
        .post('/register')
        .send({ email: 'c@example.com', password: 'cafe\u0301 au lait tous les jours' });
      expect(json.status).toBe(200);
      expect(json.body.body).toEqual({ email: 'c@example.com', password: 'caf\u00e9 au lait tous les jours' });
      const form = await request(app)
        .post('/register')
        .type('form')
        .send('email=c%40example.com&password=tea+in+the+afternoon+sun');
      expect(form.body.body).toEqual({ email: 'c@example.com', password: 'tea in the afternoon sun' });
    });

    test('the default still takes it out of req.body', async () => {
      const app = express();
      app.post('/register', passwordBody(), echo);
      app.use(quiet);
      const res = await request(app).post('/register').send({ email: 'c@example.com', password: 'tea in the afternoon sun' });
      expect(res.body.body).toEqual({ email: 'c@example.com' });
    });

    test('a text body is handed back as the body', async () => {
      const app = express();
      app.post('/pw', passwordBody({ handOff: true, from: 'text' }), echo);
      app.use(quiet);
      const res = await request(app).post('/pw').type('text').send('tea in the afternoon sun');
      expect(res.body.body).toBe('tea in the afternoon sun');
    });
  });

  describe('4. several password fields per request', () => {
    const warn = (): void => undefined;

    test('current, new and repeat in the query: none reaches the access log, the handler gets all three', async () => {
      const logged: string[] = [];
      const app = express();
      app.get(
        '/rest/user/change-password',
        passwordBody({
          from: 'query',
          field: 'new',
          repeat: 'repeat',
          secretFields: ['current'],
          handOff: true,
          query: { warn },
        }),
        (req: Request, res: Response, next: NextFunction) => {
          // The app's own access logger, running after the bundle: it logs the URL (morgan's :url).
          res.on('finish', () => logged.push(`${req.method} ${req.originalUrl} ${req.url}`));
          next();
        },
        (req: Request, res: Response) => {
          // Read by name, as a legacy handler does: handed back, they are hidden from serialisers.
          const { current, new: chosen, repeat } = req.query as Record<string, unknown>;
          res.json({ query: { ...req.query, new: chosen, repeat, current }, url: req.originalUrl });
        },
      );
      app.use(quiet);
      const res = await request(app).get(
        '/rest/user/change-password?current=old+secret+words&new=brand+new+passphrase&repeat=brand+new+passphrase&x=1',
      );
      expect(res.status).toBe(200);
      expect(res.body.url).toBe('/rest/user/change-password?x=1');
      expect(res.body.query).toEqual({
        x: '1',
        new: 'brand new passphrase',
        repeat: 'brand new passphrase',
        current: 'old secret words',
      });
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain('/rest/user/change-password?x=1');
      expect(logged[0]).not.toMatch(/passphrase|secret/);
    });

    test('a repeat that differs is refused with the rules, and the refusal logs no field either', async () => {
      const logged: RefusalEntry[] = [];
      const app = express();
      app.get(
        '/rest/user/change-password',
        passwordBody({ from: 'query', field: 'new', repeat: 'repeat', secretFields: ['current'], query: { warn } }),
        echo,
      );
      app.use(
        refusalLog((entry) => logged.push(entry)),
        quiet,
      );
      const res = await request(app).get(
        '/rest/user/change-password?current=old&new=brand+new+passphrase&repeat=brand+new+passphrasE',
      );
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual([
        { field: 'repeat', code: 'repeat_mismatch', message: 'The "repeat" field is not the same password as "new".' },
      ]);
      expect(res.text).not.toMatch(/passphrase/);
      const missing = await request(app).get('/rest/user/change-password?new=brand+new+passphrase');
      expect(missing.body.errors).toEqual([
        { field: 'repeat', code: 'repeat_missing', message: 'The "repeat" field must repeat the password.' },
      ]);
    });

    test('password and passwordRepeat in a JSON body both leave req.body by default', async () => {
      const app = express();
      app.post('/register', passwordBody({ repeat: 'passwordRepeat' }), (req: Request, res: Response) => {
        res.json({ body: req.body as unknown, repeat: submittedPassword(req, 'passwordRepeat') !== undefined });
      });
      app.use(quiet);
      const res = await request(app)
        .post('/register')
        .send({ email: 'd@example.com', password: 'brand new passphrase', passwordRepeat: 'brand new passphrase' });
      expect(res.body).toEqual({ body: { email: 'd@example.com' }, repeat: true });
    });

    test('the fields must differ and need a location that can hold several', () => {
      expect(() => passwordBody({ field: 'new', repeat: 'new' })).toThrow(/names "new" twice/);
      expect(() => passwordBody({ from: 'text', repeat: 'repeat' })).toThrow(/option "repeat" needs "json", "form" or "query"/);
    });
  });

  describe("5 and 6. the current password first, against the app's own user table, then a replace", () => {
    function changeApp(): { app: ReturnType<typeof express>; store: MemoryStore } {
      const { source } = usersTable();
      const store = new MemoryStore();
      const app = express();
      app.post(
        '/users/:id/password',
        requireOwnership({
          principal: (req) =>
            typeof req.headers['x-user'] === 'string' ? { kind: 'user', id: Number(req.headers['x-user']) } : undefined,
          load: (req) => ({ id: Number(req.params['id']) }),
          owner: 'id',
        }),
        passwordBody({ field: 'new', repeat: 'repeat', secretFields: ['current'] }),
        requireCurrentPassword({ store: source }),
        hashAndStore({ store, id: (req) => String(ownership(req)?.principal.id), mode: 'replace', cost: 10 }),
        (req: Request, res: Response) => {
          res.status(200).json({ stored: storedPassword(req)?.id });
        },
      );
      app.use(quiet);
      return { app, store };
    }
    const change = {
      current: 'bob builds bridges 1999',
      new: 'a much longer new passphrase',
      repeat: 'a much longer new passphrase',
    };

    test('the right current password lets the change through; a wrong or missing one does not', async () => {
      const { app, store } = changeApp();
      const wrong = await request(app)
        .post('/users/2/password')
        .set('X-User', '2')
        .send({ ...change, current: 'guess' });
      expectProblem(wrong, 403, 'password.current_mismatch');
      const missing = await request(app)
        .post('/users/2/password')
        .set('X-User', '2')
        .send({ new: change.new, repeat: change.repeat });
      expectProblem(missing, 400, 'password.current_missing');
      expect(store.get('2')).toBeUndefined();
      const ok = await request(app).post('/users/2/password').set('X-User', '2').send(change);
      expect(ok.status).toBe(200);
      expect(await bcrypt.compare(change.new, store.get('2')?.hash ?? '')).toBe(true);
    });

    test('replace mode overwrites, where set-once answers 409', async () => {
      const { app, store } = changeApp();
      await request(app).post('/users/2/password').set('X-User', '2').send(change).expect(200);
      const first = store.get('2')?.hash;
      await request(app)
        .post('/users/2/password')
        .set('X-User', '2')
        .send({ ...change, new: 'yet another new passphrase', repeat: 'yet another new passphrase' })
        .expect(200);
      expect(store.get('2')?.hash).not.toBe(first);
      expect(() => hashAndStore({ store, mode: 'upsert' as never })).toThrow(/option "mode"/);
    });

    test('a read-only source with get alone is accepted by the verifier; a stub replace is not', async () => {
      const { source } = usersTable();
      const app = loginApp(source, quiet);
      expect(
        (await request(app).post('/login').send({ email: 'bob@example.com', password: 'bob builds bridges 1999' })).status,
      ).toBe(200);
      expect((await request(app).post('/login').send({ email: 'bob@example.com', password: 'wrong' })).status).toBe(403);
      expect(() => passwordVerifier({ store: { get: source.get, replace: () => true } as never })).toThrow(
        /replace with 0 declared parameters/,
      );
      expect(() => passwordVerifier({ store: source, rehash: true })).toThrow(
        /option "rehash" is true but the store has no replace/,
      );
    });
  });

  test('7. a login body without its id field, or with an object there, is a 400, not a 500', async () => {
    const { source } = usersTable();
    const logged: string[] = [];
    const app = loginApp(source, problemHandler({ log: (entry) => logged.push(entry.error) }));
    for (const body of [{ password: 'x' }, { email: { $ne: '' }, password: 'x' }, { email: '', password: 'x' }]) {
      const res = await request(app).post('/login').send(body);
      expectProblem(res, 400, 'request.id_invalid', 'The request must name its account in "body.email", as a non-empty string.');
    }
    // A number is read as its decimal string: an account that does not exist, so a mismatch.
    expect((await request(app).post('/login').send({ email: 5, password: 'x' })).status).toBe(403);
    expect(logged).toEqual([]);
    expect(() => passwordVerifier({ store: source, id: 'email' })).toThrow(/must start with "params\.", "body\." or "query\."/);
  });

  test('8. purpose "verify" accepts whatever could have been stored: long, form, text, a larger body', async () => {
    const long = 'correct horse battery staple '.repeat(3).slice(0, 84);
    const { source, db } = usersTable();
    db.prepare('UPDATE users SET password = ? WHERE id = 2').run(md5(long));
    const app = loginApp(source, quiet);
    expect((await request(app).post('/login').send({ email: 'bob@example.com', password: long })).status).toBe(200);
    const padded = { email: 'bob@example.com', password: long, device: 'x'.repeat(1500) };
    expect((await request(app).post('/login').send(padded)).status).toBe(200);
    expect((await request(app).post('/login').type('form').send({ email: 'bob@example.com', password: long })).status).toBe(200);
    expect(() => passwordBody({ purpose: 'verify', maxLength: 64 })).toThrow(
      /option "maxLength" is a content rule, and purpose 'verify' applies none/,
    );
  });

  describe('9. methodGuard mounted with app.use guards its exact path', () => {
    function basketApp(options = {}): ReturnType<typeof express> {
      const app = express();
      app.use('/rest/basket/:id', methodGuard(['GET'], options));
      app.use((req, res) => {
        res.json({ reached: req.method });
      });
      app.use(quiet);
      return app;
    }

    test('the path below the mount point reaches the app; the path itself is guarded', async () => {
      const app = basketApp();
      expect((await request(app).post('/rest/basket/1/checkout')).body).toEqual({ reached: 'POST' });
      const refused = await request(app).post('/rest/basket/1');
      expect(refused.status).toBe(405);
      expect(refused.headers['allow']).toBe('GET, HEAD, OPTIONS');
      expect((await request(app).post('/rest/basket/1/')).status).toBe(405);
    });

    test('subtree: true guards every path below it', async () => {
      expect((await request(basketApp({ subtree: true })).post('/rest/basket/1/checkout')).status).toBe(405);
      expect(() => methodGuard(['GET'], { subtree: 'yes' as never })).toThrow(/option "subtree" must be true or false/);
    });
  });

  describe('11. headers and logs lost to order', () => {
    test("reapplyHeaders keeps X-Frame-Options: DENY and no-store when the app's own helmet runs later", async () => {
      const build = (reapplyHeaders: boolean): ReturnType<typeof express> => {
        const app = express();
        app.use(responseEncoder({ reapplyHeaders }));
        app.use(helmet({ frameguard: { action: 'sameorigin' } }));
        app.use((_req, res) => {
          res.setHeader('Cache-Control', 'public, max-age=600');
          res.json({ ok: true });
        });
        return app;
      };
      const weakened = await request(build(false)).get('/');
      expect(weakened.headers['x-frame-options']).toBe('SAMEORIGIN');
      const kept = await request(build(true)).get('/');
      expect(kept.headers['x-frame-options']).toBe('DENY');
      expect(kept.headers['cache-control']).toBe('no-store');
      expect(kept.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    });

    test('refusalLog hands every refusal made in front of the app to its access log', async () => {
      const logged: RefusalEntry[] = [];
      const app = express();
      app.use('/rest/basket/:id', methodGuard(['GET']));
      app.use((_req, res) => {
        res.json({ ok: true });
      });
      app.use(
        refusalLog((entry) => logged.push(entry)),
        quiet,
      );
      await request(app).delete('/rest/basket/1?token=abc').expect(405);
      await request(app).get('/rest/basket/1').expect(200);
      expect(logged).toEqual([{ method: 'DELETE', path: '/rest/basket/1', status: 405, code: 'method.not_allowed' }]);
      expect(() => refusalLog(undefined as never)).toThrow(/refusalLog: the listener must be a function/);
    });
  });
});
