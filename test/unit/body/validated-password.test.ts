import bcrypt from 'bcrypt';
import request from 'supertest';
import type { NextFunction, Request, Response } from 'express';
import {
  MemoryStore,
  clearValidatedPassword,
  encryptAndStore,
  hashAndStore,
  localKeyRing,
  passwordBody,
  passwordVerifier,
  problemHandler,
  requireCurrentPassword,
  setValidatedPassword,
  submittedPassword,
  validatedPassword,
} from '../../../lib';
import type { ProblemLogEntry } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import { expectProblem } from '../../helpers/problem';

// Where a validated password is kept for the rest of the route, and who takes it off
// the request: the validator puts it there, the storers and verifiers take it (once),
// and a route without the validator fails closed.

const CURRENT = 'the current passphrase 2019';
const NEXT = 'a much longer new passphrase';
const SET_AT = '2026-11-28T18:04:34.000Z';
const KEY = Buffer.alloc(32, 7).toString('base64url');

function withStoredCurrent(): MemoryStore {
  const store = new MemoryStore();
  store.setIfAbsent('u1', { hash: bcrypt.hashSync(CURRENT, 10), setAt: SET_AT, scheme: 'bcrypt' });
  return store;
}

describe.each(expressVersions)('the validated password on %s', (_name, express) => {
  test('the other password fields are kept normalised for submittedPassword, and scrubbed from the log', async () => {
    const app = express();
    const logged: ProblemLogEntry[] = [];
    app.post(
      '/users/:id/password',
      passwordBody({ field: 'new', secretFields: ['current', 'old'] }),
      (req: Request, _res: Response, next: NextFunction) => {
        // A route that echoes its input in an error: the problem handler must scrub it.
        next(new Error(`could not save: current=${submittedPassword(req, 'current') ?? '-'}`));
      },
    );
    app.get('/seen', (req: Request, res: Response) => {
      res.json({ current: submittedPassword(req, 'current') ?? null });
    });
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app)
      .post('/users/u1/password')
      .send({ new: NEXT, current: 'cafe\u0301 current 2019', old: 'another old one' });
    expect(res.status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.error).toContain('could not save: current=[redacted]');
    expect(logged[0]?.error).not.toContain('café current 2019');
    // Nothing read on a request passwordBody did not see.
    expect((await request(app).get('/seen')).body).toEqual({ current: null });
  });

  test('submittedPassword gives the normalised value of each secret field, undefined for one not sent', async () => {
    const app = express();
    app.post(
      '/users/:id/password',
      passwordBody({ field: 'new', secretFields: ['current', 'old'] }),
      (req: Request, res: Response) => {
        res.json({
          current: submittedPassword(req, 'current') ?? null,
          old: submittedPassword(req, 'old') ?? null,
          other: submittedPassword(req, 'other') ?? null,
        });
      },
    );
    app.use(problemHandler({ log: false }));
    const res = await request(app).post('/users/u1/password').send({ new: NEXT, current: 'cafe\u0301 current 2019' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ current: 'café current 2019', old: null, other: null });
  });

  test('requireCurrentPassword takes the current password off the request and leaves the other fields', async () => {
    const store = withStoredCurrent();
    const app = express();
    app.post(
      '/users/:id/password',
      passwordBody({ field: 'new', secretFields: ['current', 'old'] }),
      requireCurrentPassword({ store, id: 'params.id' }),
      (req: Request, res: Response) => {
        res.json({
          current: submittedPassword(req, 'current') ?? null,
          old: submittedPassword(req, 'old') ?? null,
          password: validatedPassword(req) ?? null,
        });
      },
    );
    app.use(problemHandler({ log: false }));
    const res = await request(app).post('/users/u1/password').send({ new: NEXT, current: CURRENT, old: 'another old one' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ current: null, old: 'another old one', password: NEXT });
    const wrong = await request(app).post('/users/u1/password').send({ new: NEXT, current: 'not the current one' });
    expectProblem(wrong, 403, 'password.current_mismatch');
  });

  test('requireCurrentPassword without passwordBody in front is a 500 misconfiguration', async () => {
    const app = express();
    app.post(
      '/users/:id/password',
      express.json(),
      requireCurrentPassword({ store: withStoredCurrent(), id: 'params.id' }),
      (_req: Request, res: Response) => {
        res.status(204).end();
      },
    );
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/users/u1/password').send({ new: NEXT, current: CURRENT });
    expectProblem(res, 500, 'password.misconfigured');
    expect(logged[0]?.error).toMatch(/requireCurrentPassword runs before passwordBody/);
  });

  test('the verifier forgets the password it compared, matched or not', async () => {
    const store = withStoredCurrent();
    const app = express();
    const seen: (string | null)[] = [];
    app.post(
      '/users/:id/verify',
      passwordBody({ purpose: 'verify' }),
      passwordVerifier({ store, id: 'params.id' }),
      (req: Request, res: Response) => {
        seen.push(validatedPassword(req) ?? null);
        res.status(204).end();
      },
    );
    app.use((err: unknown, req: Request, _res: Response, next: NextFunction) => {
      seen.push(validatedPassword(req) ?? null);
      next(err);
    });
    app.use(problemHandler({ log: false }));
    expect((await request(app).post('/users/u1/verify').send({ password: CURRENT })).status).toBe(204);
    expectProblem(await request(app).post('/users/u1/verify').send({ password: 'a wrong guess' }), 403, 'password.mismatch');
    expect(seen).toEqual([null, null]);
  });

  test('clearValidatedPassword forgets a password an app set itself', async () => {
    const app = express();
    app.post(
      '/p',
      (req: Request, _res: Response, next: NextFunction) => {
        setValidatedPassword(req, 'set by the app itself');
        next();
      },
      (req: Request, res: Response, next: NextFunction) => {
        res.locals['before'] = validatedPassword(req);
        clearValidatedPassword(req);
        next();
      },
      (req: Request, res: Response) => {
        res.json({ before: res.locals['before'] as unknown, after: validatedPassword(req) ?? null });
      },
    );
    app.post('/nothing', (req: Request, res: Response) => {
      // Nothing was validated on this request: forgetting is a no-op, not a fault.
      clearValidatedPassword(req);
      res.json({ after: validatedPassword(req) ?? null });
    });
    expect((await request(app).post('/p')).body).toEqual({ before: 'set by the app itself', after: null });
    expect((await request(app).post('/nothing')).body).toEqual({ after: null });
  });

  test.each([
    ['hashAndStore', 'password'],
    ['encryptAndStore', 'value'],
  ])('%s without passwordBody in front fails closed with a 500 that says what is missing', async (storer, what) => {
    const store = new MemoryStore();
    const app = express();
    app.post(
      '/servers/:id/password',
      express.json(),
      storer === 'hashAndStore'
        ? hashAndStore({ store, cost: 10 })
        : encryptAndStore({ store, keys: localKeyRing({ keys: { k1: KEY }, current: 'k1' }) }),
      (_req: Request, res: Response) => {
        res.status(204).end();
      },
    );
    const logged: ProblemLogEntry[] = [];
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'never validated 42' });
    expectProblem(res, 500, 'password.misconfigured');
    expect(logged[0]?.error).toContain(
      `The ${what === 'value' ? 'secret' : 'password'} route is misconfigured: no validated ${what} reached ${storer}; mount passwordBody() before it.`,
    );
    expect(store.size).toBe(0);
  });

  test('a storer takes the password once: a second storer on the same request finds none', async () => {
    const first = new MemoryStore();
    const second = new MemoryStore();
    const app = express();
    app.post(
      '/servers/:id/password',
      passwordBody(),
      hashAndStore({ store: first, cost: 10 }),
      hashAndStore({ store: second, cost: 10 }),
      (_req: Request, res: Response) => {
        res.status(204).end();
      },
    );
    app.use(problemHandler({ log: false }));
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'stored only once 42' });
    expectProblem(res, 500, 'password.misconfigured');
    expect(first.size).toBe(1);
    expect(second.size).toBe(0);
  });
});
