import crypto from 'node:crypto';
import type { Express, Request, RequestHandler } from 'express';
import request from 'supertest';
import { notFound, problemHandler, requestUser, requireOwnership, securityEvents, signedInstanceIdentity } from '../../../lib';
import type { PrincipalResolver, ProblemLogEntry, SecurityEvent } from '../../../lib';
import type { ExpressFactory } from '../../helpers/express';
import { expressVersions } from '../../helpers/express';
import { sign } from '../../helpers/instance-identity';
import { expectProblem } from '../../helpers/problem';

const SECRET = 'metadata-proxy-secret';
const INSTANCE = '6b4c5f3e-2a1d-4c8e-9f00-1a2b3c4d5e6f';
// Computed with Python's hmac module, as Nova and the neutron metadata agent sign: a
// value from outside this code, so the test does not only agree with itself.
const KNOWN_SIGNATURE = '99dfaadbb72dbf8519a0e67b1cfd48b300021432ac21808d5c54353dc7e3c04a';

function idParam(req: Request): string {
  const id = req.params['id'];
  return typeof id === 'string' ? id : '';
}

/** Every path names an instance that exists and is owned by itself. */
function instanceApp(express: ExpressFactory, principal: PrincipalResolver, before: RequestHandler[] = []): Express {
  const app = express();
  const guard = requireOwnership({
    principal,
    load: (req: Request) => ({ id: idParam(req) }),
    owner: (server) => ({ kind: 'instance', id: server.id }),
  });
  app.get('/servers/:id/password', ...before, guard, (req, res) => {
    res.json({ caller: guard.owned(req).principal });
  });
  app.use(notFound());
  app.use(problemHandler({ log: false }));
  return app;
}

describe.each(expressVersions)('signedInstanceIdentity on %s', (_name, express) => {
  const app = instanceApp(express, signedInstanceIdentity({ secret: SECRET }));
  const path = `/servers/${INSTANCE}/password`;

  function expectRefused(res: request.Response): void {
    expectProblem(res, 401, 'ownership.unauthenticated');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
  }

  test('the signature Nova computes for an id is accepted, and the caller is that instance', async () => {
    expect(sign(INSTANCE, SECRET)).toBe(KNOWN_SIGNATURE);
    const res = await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', KNOWN_SIGNATURE);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ caller: { kind: 'instance', id: INSTANCE } });
  });

  test('header names are matched case-insensitively, as HTTP defines them', async () => {
    const res = await request(app).get(path).set('x-instance-id', INSTANCE).set('X-INSTANCE-ID-SIGNATURE', KNOWN_SIGNATURE);
    expect(res.status).toBe(200);
  });

  const other = '0f0e0d0c-0000-4000-8000-000000000000';
  test.each([
    ['the signature of another id', sign(other, SECRET)],
    ['a signature under another secret', sign(INSTANCE, 'another-secret')],
    ['a truncated signature', KNOWN_SIGNATURE.slice(0, 63)],
    ['half a signature', KNOWN_SIGNATURE.slice(0, 32)],
    ['the valid signature with hex appended', `${KNOWN_SIGNATURE}00`],
    // Buffer.from(hex) stops at the first non-hex character: only the format check
    // stops this one from decoding to the valid digest.
    ['the valid signature with junk appended', `${KNOWN_SIGNATURE}zz`],
    ["the upper-case hex of another id's signature", sign(other, SECRET).toUpperCase()],
    // A decision: Nova compares hexdigest() strings, so it refuses this too.
    ["the upper-case hex of this id's own signature", KNOWN_SIGNATURE.toUpperCase()],
    ['64 characters that are not hex', 'g'.repeat(64)],
    ['the signature wrapped in a scheme', `sha256=${KNOWN_SIGNATURE}`],
    ['an empty signature', ''],
  ])('%s is refused with 401', async (_case, signature) => {
    expectRefused(await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', signature));
  });

  test('an empty, or a repeated, X-Instance-ID is refused, even with the signature of what arrives', async () => {
    expectRefused(await request(app).get(path).set('X-Instance-ID', '').set('X-Instance-ID-Signature', sign('', SECRET)));
    // Node joins a repeated header as "a, b": it is not one id, whatever it is signed with.
    expectRefused(
      await request(app)
        .get(path)
        .set('X-Instance-ID', [INSTANCE, INSTANCE] as unknown as string)
        .set('X-Instance-ID-Signature', sign(`${INSTANCE}, ${INSTANCE}`, SECRET)),
    );
  });

  test('a missing signature is refused', async () => {
    expectRefused(await request(app).get(path).set('X-Instance-ID', INSTANCE));
  });

  test('a missing id is refused, even with a signature of the id in the path', async () => {
    expectRefused(await request(app).get(path).set('X-Instance-ID-Signature', KNOWN_SIGNATURE));
  });

  test('no headers at all is refused', async () => {
    expectRefused(await request(app).get(path));
  });

  test('an id outside visible ASCII is refused even when correctly signed', async () => {
    const spaced = 'srv 1';
    expectRefused(
      await request(app)
        .get('/servers/srv%201/password')
        .set('X-Instance-ID', spaced)
        .set('X-Instance-ID-Signature', sign(spaced, SECRET)),
    );
    const long = 'a'.repeat(256);
    expectRefused(
      await request(app)
        .get(`/servers/${long}/password`)
        .set('X-Instance-ID', long)
        .set('X-Instance-ID-Signature', sign(long, SECRET)),
    );
  });

  test('a signature header sent twice is refused', async () => {
    expectRefused(
      await request(app)
        .get(path)
        .set('X-Instance-ID', INSTANCE)
        // superagent's types allow arrays for Cookie only; Node sends one line per item.
        .set('X-Instance-ID-Signature', [KNOWN_SIGNATURE, KNOWN_SIGNATURE] as unknown as string),
    );
  });

  test('a signed instance only reaches its own id: the signature does not open other ids', async () => {
    const res = await request(app)
      .get(`/servers/${other}/password`)
      .set('X-Instance-ID', INSTANCE)
      .set('X-Instance-ID-Signature', KNOWN_SIGNATURE);
    expectProblem(res, 404, 'ownership.denied');
  });

  describe('the compare is constant-time, on equal lengths only', () => {
    // A spy that calls through, not a mock: the real compare still decides.
    let compare: jest.SpiedFunction<typeof crypto.timingSafeEqual>;
    beforeEach(() => {
      compare = jest.spyOn(crypto, 'timingSafeEqual');
    });
    afterEach(() => {
      compare.mockRestore();
    });

    test('a well-formed signature, right or wrong, is compared with timingSafeEqual on 32 bytes', async () => {
      for (const [signature, status] of [
        [KNOWN_SIGNATURE, 200],
        [sign(other, SECRET), 401],
      ] as const) {
        compare.mockClear();
        const res = await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', signature);
        expect(res.status).toBe(status);
        expect(compare).toHaveBeenCalledTimes(1);
        const [a, b] = compare.mock.calls[0] ?? [];
        expect(Buffer.isBuffer(a) && Buffer.isBuffer(b)).toBe(true);
        expect((a as Buffer).length).toBe(32);
        expect((b as Buffer).length).toBe(32);
      }
    });

    test.each([
      ['truncated', KNOWN_SIGNATURE.slice(0, 62)],
      ['too long', `${KNOWN_SIGNATURE}00`],
      ['upper-case', KNOWN_SIGNATURE.toUpperCase()],
      ['empty', ''],
    ])('a %s signature is refused before any compare, so timingSafeEqual never throws', async (_case, signature) => {
      const res = await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', signature);
      expect(res.status).toBe(401);
      expect(compare).not.toHaveBeenCalled();
    });
  });

  test('neither the secret nor the expected signature is logged or answered, whatever is refused', async () => {
    const consoles = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
      jest.spyOn(console, method).mockImplementation(() => undefined),
    );
    const logged: ProblemLogEntry[] = [];
    // A route whose loader fails once the instance is identified: the 5xx path logs.
    const failing = express();
    const guard = requireOwnership({
      principal: signedInstanceIdentity({ secret: SECRET }),
      load: (_req: Request, instance) => Promise.reject(new Error(`no row for ${instance.id}`)),
      owner: (server: { id: string }) => ({ kind: 'instance', id: server.id }),
    });
    failing.get('/servers/:id/password', guard, (_req, res) => {
      res.json({ reached: true });
    });
    failing.use(problemHandler({ log: (entry) => logged.push(entry) }));
    try {
      const answers = [
        await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', sign(other, SECRET)),
        await request(app).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', KNOWN_SIGNATURE.slice(1)),
        await request(app).get(path).set('X-Instance-ID', INSTANCE),
        await request(failing).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', KNOWN_SIGNATURE),
      ];
      expect(answers.map((res) => res.status)).toEqual([401, 401, 401, 500]);
      expect(logged).toHaveLength(1);
      const seen = [
        ...answers.map((res) => res.text + JSON.stringify(res.headers)),
        ...logged.map((entry) => JSON.stringify(entry)),
        ...consoles.flatMap((spy) => spy.mock.calls.map((call) => call.map(String).join(' '))),
      ].join('\n');
      expect(seen).toContain(INSTANCE);
      expect(seen).not.toContain(SECRET);
      expect(seen).not.toContain(KNOWN_SIGNATURE);
      expect(seen.toLowerCase()).not.toContain(KNOWN_SIGNATURE.slice(0, 16));
    } finally {
      for (const spy of consoles) spy.mockRestore();
    }
  });

  test('a Uint8Array secret and custom header names', async () => {
    const custom = instanceApp(
      express,
      signedInstanceIdentity({
        secret: new TextEncoder().encode(SECRET),
        idHeader: 'X-Forwarded-Instance',
        signatureHeader: 'X-Forwarded-Instance-Signature',
      }),
    );
    const ok = await request(custom)
      .get(path)
      .set('X-Forwarded-Instance', INSTANCE)
      .set('X-Forwarded-Instance-Signature', KNOWN_SIGNATURE);
    expect(ok.status).toBe(200);
    const defaults = await request(custom)
      .get(path)
      .set('X-Instance-ID', INSTANCE)
      .set('X-Instance-ID-Signature', KNOWN_SIGNATURE);
    expect(defaults.status).toBe(401);
  });

  test("the secret is copied: changing the caller's buffer later does not change the key", async () => {
    const key = Buffer.from(SECRET);
    const copied = instanceApp(express, signedInstanceIdentity({ secret: key }));
    key.fill(0);
    const res = await request(copied).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', KNOWN_SIGNATURE);
    expect(res.status).toBe(200);
  });

  test('a refused signature leaves the claimed instance to the security event, not the principal', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    const watched = instanceApp(express, signedInstanceIdentity({ secret: SECRET }), [events]);
    await request(watched)
      .get(path)
      .set('X-Instance-ID', INSTANCE)
      .set('X-Instance-ID-Signature', sign(INSTANCE, 'guessed'))
      .expect(401);
    await request(watched).get(path).set('X-Instance-ID', INSTANCE).set('X-Instance-ID-Signature', KNOWN_SIGNATURE).expect(200);
    await events.flush();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toEqual(expect.objectContaining({ status: 401, claimed: { kind: 'instance', id: INSTANCE } }));
    expect(seen[0]).not.toHaveProperty('principal');
  });
});

describe.each(expressVersions)('requestUser on %s', (_name, express) => {
  function as(value: unknown, property = 'user'): RequestHandler {
    return (req, _res, next) => {
      (req as unknown as Record<string, unknown>)[property] = value;
      next();
    };
  }

  test("reads passport's req.user and its id by default, and keeps the user object", async () => {
    const app = express();
    const guard = requireOwnership({
      load: (req: Request) => ({ userId: idParam(req) }),
      owner: 'userId',
    });
    app.get('/users/:id', as({ id: 'alice', roles: ['admin'] }), guard, (req, res) => {
      res.json(guard.owned(req).principal);
    });
    app.use(problemHandler({ log: false }));
    const res = await request(app).get('/users/alice');
    expect(res.body).toEqual({ kind: 'user', id: 'alice', user: { id: 'alice', roles: ['admin'] } });
  });

  test.each([
    ['undefined', undefined],
    ['null', null],
    ['false', false],
  ])('req.user %s is no caller: 401', async (_case, value) => {
    const app = instanceApp(express, requestUser(), [as(value)]);
    const res = await request(app).get('/servers/srv-1/password');
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
  });

  test("property and idField point at another middleware's user", async () => {
    const app = express();
    const guard = requireOwnership({
      principal: requestUser<{ sub: string; scope: string }>({ property: 'auth', idField: 'sub' }),
      load: (req: Request) => ({ userId: idParam(req) }),
      owner: 'userId',
    });
    app.get('/users/:id', as({ sub: 'alice', scope: 'read' }, 'auth'), guard, (req, res) => {
      const { principal } = guard.owned(req);
      res.json({ id: principal.id, scope: principal.user.scope });
    });
    app.use(problemHandler({ log: false }));
    expect((await request(app).get('/users/alice')).body).toEqual({ id: 'alice', scope: 'read' });
    expect((await request(app).get('/users/bob')).status).toBe(404);
  });

  test('the principal is a user whatever the user object says its kind is', async () => {
    const app = express();
    const guard = requireOwnership({
      load: (req: Request) => ({ id: idParam(req) }),
      owner: (server) => ({ kind: 'instance', id: server.id }),
    });
    app.get('/servers/:id/password', as({ id: 'srv-1', kind: 'instance' }), guard, (_req, res) => {
      res.json({ reached: true });
    });
    app.use(problemHandler({ log: false }));
    const res = await request(app).get('/servers/srv-1/password');
    expectProblem(res, 404, 'ownership.denied');
  });

  test.each([
    ['an object without the id field', { name: 'alice' }],
    ['an empty id', { id: '' }],
    ['an object id', { id: { $oid: 'abc' } }],
    ['a string instead of an object', 'alice'],
  ])('a user that is %s is a wiring fault: 500, not a pass', async (_case, value) => {
    const app = instanceApp(express, requestUser(), [as(value)]);
    const res = await request(app).get('/servers/srv-1/password');
    expectProblem(res, 500, 'server.error');
  });

  test.each([
    ['a number', 42],
    ['a negative number', -7],
  ])('an id that is %s is an id', async (_case, id) => {
    const app = express();
    const guard = requireOwnership({ load: () => ({ userId: id }), owner: 'userId' });
    app.get('/users/:id', as({ id }), guard, (req, res) => {
      res.json({ id: guard.owned(req).principal.id });
    });
    app.use(problemHandler({ log: false }));
    expect((await request(app).get('/users/any')).body).toEqual({ id });
  });

  /** The status and the logged fault of one request as `user`, found by `property`. */
  async function wiringFault(value: unknown, property?: (req: Request) => unknown): Promise<[number, string]> {
    const logged: ProblemLogEntry[] = [];
    const app = express();
    const guard = requireOwnership({
      principal: requestUser(property === undefined ? {} : { property }),
      load: () => ({ userId: 'alice' }),
      owner: 'userId',
    });
    app.get('/users/:id', as(value), guard, (_req, res) => {
      res.json({ reached: true });
    });
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    const res = await request(app).get('/users/alice');
    return [res.status, logged.map((entry) => entry.error).join('\n')];
  }

  test.each([
    [
      'an array id',
      { id: ['alice'] },
      /requestUser: req\.user\.id is not a non-empty string or a finite number; set the "idField" option\./,
    ],
    ['a NaN id', { id: Number.NaN }, /req\.user\.id is not a non-empty string/],
    ['an infinite id', { id: Number.POSITIVE_INFINITY }, /req\.user\.id is not a non-empty string/],
    ['a boolean id', { id: true }, /req\.user\.id is not a non-empty string/],
    ['no id', { name: 'alice' }, /req\.user\.id is not a non-empty string/],
    ['a string', 'alice', /requestUser: req\.user is set but is not an object\./],
  ])('a user with %s is a 500 whose log says what to fix', async (_case, value, message) => {
    const [status, error] = await wiringFault(value);
    expect(status).toBe(500);
    expect(error).toMatch(message);
  });

  test('property may be a function that finds the user; its faults say so', async () => {
    const tokens = new Map([['t-1', { id: 'alice' }]]);
    const byToken = (req: Request): unknown => tokens.get(req.get('Authorization') ?? '');
    const app = express();
    const guard = requireOwnership({
      principal: requestUser({ property: byToken }),
      load: (req: Request) => ({ userId: idParam(req) }),
      owner: 'userId',
    });
    app.get('/users/:id', guard, (req, res) => {
      res.json({ id: guard.owned(req).principal.id });
    });
    app.use(problemHandler({ log: false }));
    expect((await request(app).get('/users/alice').set('Authorization', 't-1')).body).toEqual({ id: 'alice' });
    expect((await request(app).get('/users/alice').set('Authorization', 't-2')).status).toBe(401);

    const [status, error] = await wiringFault(undefined, () => ({ uid: 'alice' }));
    expect(status).toBe(500);
    expect(error).toMatch(/requestUser: the user the "property" function found\.id is not a non-empty string/);
    expect(error).not.toMatch(/req\.user/);
  });

  test('a property function that returns a promise is a 500 that says it must return the user', async () => {
    const [status, error] = await wiringFault(undefined, () => Promise.resolve({ id: 'alice' }));
    expect(status).toBe(500);
    expect(error).toMatch(/requestUser: the "property" function returned a promise; it must return the user itself\./);
  });
});

describe('resolver options', () => {
  test.each([
    [{ property: '' }, /option "property" must be a non-empty string/],
    [{ property: 3 }, /option "property" must be a non-empty string/],
    [{ idField: null }, /option "idField" must be a non-empty string/],
    [{ propery: 'user' }, /unknown option "propery"\. Did you mean "property"\?/],
    [{ idField: '' }, /option "idField" must be a non-empty string/],
    [{ property: 'user', id_field: 'sub' }, /unknown option "id_field"\. Did you mean "idField"\?/],
  ])('requestUser(%j) throws', (options, message) => {
    expect(() => requestUser(options as never)).toThrow(TypeError);
    expect(() => requestUser(options as never)).toThrow(message);
    expect(() => requestUser(options as never)).toThrow(/^requestUser: /);
  });

  test.each([['user'], [null], [['user']]])('requestUser(%j) refuses options that are not an object', (options) => {
    expect(() => requestUser(options as never)).toThrow(TypeError);
    expect(() => requestUser(options as never)).toThrow(/options must be an object/);
  });

  test.each([
    [undefined, /options must be an object/],
    [{}, /option "secret" is required/],
    [{ secret: '' }, /option "secret" must not be empty/],
    [{ secret: new Uint8Array(0) }, /option "secret" must not be empty/],
    [null, /options must be an object/],
    [SECRET, /options must be an object/],
    [{ secret: undefined }, /option "secret" is required/],
    [{ secret: 42 }, /option "secret" must be a string or a Uint8Array/],
    [{ secret: null }, /option "secret" must be a string or a Uint8Array/],
    [{ secret: [1, 2, 3] }, /option "secret" must be a string or a Uint8Array/],
    [{ secret: SECRET, idHeader: 42 }, /option "idHeader" must be an HTTP header name/],
    [{ secret: SECRET, idHeader: 'X-Instance-ID\r\nX-Evil' }, /option "idHeader" must be an HTTP header name/],
    [{ secret: SECRET, signatureHeader: 'X-Instance-ID' }, /option "signatureHeader" must differ/],
    [{ secret: SECRET, idHeader: 'X Instance' }, /option "idHeader" must be an HTTP header name/],
    [{ secret: SECRET, signatureHeader: '' }, /option "signatureHeader" must be an HTTP header name/],
    [{ secret: SECRET, idHeader: 'X-Id', signatureHeader: 'x-id' }, /option "signatureHeader" must differ/],
    [{ secret: SECRET, secrets: SECRET }, /unknown option "secrets"\. Did you mean "secret"\?/],
  ])('signedInstanceIdentity(%p) throws', (options, message) => {
    expect(() => signedInstanceIdentity(options as never)).toThrow(TypeError);
    expect(() => signedInstanceIdentity(options as never)).toThrow(message);
    expect(() => signedInstanceIdentity(options as never)).toThrow(/^signedInstanceIdentity: /);
  });

  test.each([
    ['idHeader', { secret: SECRET, idHeader: 'bad header' }],
    // An invalid value that holds the secret is not echoed either.
    ['idHeader', { secret: SECRET, idHeader: `${SECRET} ` }],
    ['signatureHeader', { secret: SECRET, signatureHeader: 7 }],
    ['signatureHeader', { secret: SECRET, idHeader: 'X-A', signatureHeader: 'x-a' }],
    ['secrets', { secret: SECRET, secrets: [SECRET] }],
    ['secret', { secret: [SECRET] }],
    ['secret', { secret: { toString: (): string => SECRET } }],
  ])('an option error about %s never shows the secret', (option, options) => {
    let message = '';
    try {
      signedInstanceIdentity(options as never);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(option);
    expect(message).not.toContain(SECRET);
  });
});
