import type { Express, Request, RequestHandler } from 'express';
import request from 'supertest';
import { notFound, ownership, problemHandler, requestUser, requireOwnership, signedInstanceIdentity } from '../../../lib';
import type {
  OwnedBy,
  OwnershipGuard,
  Principal,
  PrincipalId,
  ProblemLogEntry,
  RequireOwnershipOptions,
  UserPrincipal,
} from '../../../lib';
import type { ExpressFactory } from '../../helpers/express';
import { expressVersions } from '../../helpers/express';
import { expectProblem } from '../../helpers/problem';
import { sign } from '../../helpers/instance-identity';

interface Account {
  readonly id: PrincipalId;
  readonly admin?: boolean;
}

interface Server {
  readonly id: string;
  readonly userId: PrincipalId | null;
}

const ACCOUNTS: Readonly<Record<string, Account>> = {
  alice: { id: 'alice' },
  Alice: { id: 'Alice' },
  bob: { id: 'bob' },
  root: { id: 'root', admin: true },
  'number-1': { id: 1 },
  'string-1': { id: '1' },
  // A user whose id is the id of an instance: must never pass as that instance.
  'srv-1': { id: 'srv-1' },
};

const SERVERS: ReadonlyMap<string, Server> = new Map([
  ['srv-1', { id: 'srv-1', userId: 'alice' }],
  ['srv-2', { id: 'srv-2', userId: 'bob' }],
  // An instance whose id is a user's id.
  ['alice', { id: 'alice', userId: 'bob' }],
  ['srv-number', { id: 'srv-number', userId: 1 }],
  ['srv-string', { id: 'srv-string', userId: '1' }],
  ['srv-orphan', { id: 'srv-orphan', userId: null }],
]);

/** Stands for passport: `X-Test-User: alice` signs alice in. */
const fakeAuth: RequestHandler = (req, _res, next) => {
  const name = req.get('X-Test-User');
  const account = name === undefined ? undefined : ACCOUNTS[name];
  if (account !== undefined) (req as unknown as { user: Account }).user = account;
  next();
};

function idParam(req: Request): string {
  const id = req.params['id'];
  return typeof id === 'string' ? id : '';
}

interface Calls {
  load: number;
  allow: number;
  handler: number;
}

function loadServer(calls: Calls) {
  return async (req: Request): Promise<Server | undefined> => {
    calls.load += 1;
    await Promise.resolve();
    return SERVERS.get(idParam(req));
  };
}

/**
 * A real route, `/servers/:id/password`, behind fake authentication and the guard; the
 * handler answers with what the guard handed it, from both accessors.
 */
function serverApp<P extends Principal, R>(
  express: ExpressFactory,
  guard: OwnershipGuard<P, R>,
  calls: Calls,
  log: ((entry: ProblemLogEntry) => void) | false = false,
): Express {
  const app = express();
  app.all('/servers/:id/password', fakeAuth, guard, (req, res) => {
    calls.handler += 1;
    const owned = guard.owned(req);
    expect(ownership(req)).toBe(owned);
    res.json({ principal: owned.principal, resource: owned.resource, via: owned.via });
  });
  app.use(notFound());
  app.use(problemHandler({ log }));
  return app;
}

function newCalls(): Calls {
  return { load: 0, allow: 0, handler: 0 };
}

const DENIED_404 = {
  type: 'urn:express-password-guard:ownership.denied',
  title: 'Not Found',
  status: 404,
  code: 'ownership.denied',
  detail: 'The resource does not exist or the caller may not access it.',
};

describe.each(expressVersions)('requireOwnership on %s', (_name, express) => {
  function userApp(options: Partial<RequireOwnershipOptions<UserPrincipal<Account>, Server>> = {}) {
    const calls = newCalls();
    const guard = requireOwnership({
      principal: requestUser<Account>(),
      load: loadServer(calls),
      owner: 'userId',
      allow: (caller) => {
        calls.allow += 1;
        return caller.user.admin === true;
      },
      ...options,
    });
    return { app: serverApp(express, guard, calls), calls };
  }

  test('the owner reaches the handler, which gets the resource without loading it again', async () => {
    const { app, calls } = userApp();
    const res = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'alice');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      principal: { kind: 'user', id: 'alice', user: { id: 'alice' } },
      resource: { id: 'srv-1', userId: 'alice' },
      via: 'owner',
    });
    expect(calls).toEqual({ load: 1, allow: 0, handler: 1 });
  });

  test('another user gets the same status and the identical body for a foreign id and a missing id', async () => {
    const { app, calls } = userApp();
    const foreign = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'bob');
    const missing = await request(app).post('/servers/srv-nope/password').set('X-Test-User', 'bob');
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(foreign.body).toEqual(DENIED_404);
    expect(foreign.text).toBe(missing.text);
    for (const header of ['content-type', 'content-length', 'www-authenticate', 'allow']) {
      expect(foreign.headers[header]).toBe(missing.headers[header]);
    }
    expectProblem(foreign, 404, 'ownership.denied');
    expect(foreign.headers['www-authenticate']).toBeUndefined();
    expect(calls.handler).toBe(0);
  });

  test('deniedStatus: 403 gives 403 to both, still identical', async () => {
    const { app, calls } = userApp({ deniedStatus: 403 });
    const foreign = await request(app).get('/servers/srv-1/password').set('X-Test-User', 'bob');
    const missing = await request(app).get('/servers/srv-nope/password').set('X-Test-User', 'bob');
    expect(foreign.status).toBe(403);
    expect(foreign.body).toEqual({ ...DENIED_404, title: 'Forbidden', status: 403 });
    expect(foreign.text).toBe(missing.text);
    expect(calls.handler).toBe(0);
  });

  test('no principal → 401 with WWW-Authenticate, before anything is loaded', async () => {
    const { app, calls } = userApp();
    for (const path of ['/servers/srv-1/password', '/servers/srv-nope/password']) {
      const res = await request(app).post(path);
      expectProblem(res, 401, 'ownership.unauthenticated');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
      expect(res.body).toEqual({
        type: 'urn:express-password-guard:ownership.unauthenticated',
        title: 'Unauthorized',
        status: 401,
        code: 'ownership.unauthenticated',
        detail: 'The request does not identify its caller.',
      });
    }
    expect(calls).toEqual({ load: 0, allow: 0, handler: 0 });
  });

  test('a resolver answering null, sync or async, is no principal either', async () => {
    for (const principal of [() => null, async () => null, async () => undefined]) {
      const { app, calls } = userApp({ principal });
      const res = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'alice');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="api"');
      expect(calls).toEqual({ load: 0, allow: 0, handler: 0 });
    }
  });

  test('a loader answering null is a missing resource: the same 404, allow not asked', async () => {
    const { app, calls } = userApp({ load: () => null });
    const res = await request(app).get('/servers/srv-1/password').set('X-Test-User', 'root');
    expect(res.body).toEqual(DENIED_404);
    expect(calls).toEqual({ load: 0, allow: 0, handler: 0 });
  });

  test('deniedStatus: 404 set explicitly is the default', async () => {
    const { app } = userApp({ deniedStatus: 404 });
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'bob')).body).toEqual(DENIED_404);
  });

  test('an unknown user name is no principal either', async () => {
    const { app } = userApp();
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'mallory')).status).toBe(401);
  });

  test('the challenge is configurable', async () => {
    const { app } = userApp({ challenge: 'Basic realm="servers", charset="UTF-8"' });
    const res = await request(app).get('/servers/srv-1/password');
    expect(res.headers['www-authenticate']).toBe('Basic realm="servers", charset="UTF-8"');
    // RFC 9110 §11.3: the parameters are optional; a bare scheme is a whole challenge.
    const bare = userApp({ challenge: 'Negotiate' });
    expect((await request(bare.app).get('/servers/srv-1/password')).headers['www-authenticate']).toBe('Negotiate');
  });

  test('allow lets an admin in on a resource it does not own, and says so', async () => {
    const { app, calls } = userApp();
    const res = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'root');
    expect(res.status).toBe(200);
    expect(res.body.via).toBe('allow');
    expect(res.body.principal).toEqual({ kind: 'user', id: 'root', user: { id: 'root', admin: true } });
    expect(calls).toEqual({ load: 1, allow: 1, handler: 1 });
  });

  test('allow is not asked about a missing resource (still 404) nor for the owner', async () => {
    const { app, calls } = userApp();
    expect((await request(app).get('/servers/srv-nope/password').set('X-Test-User', 'root')).body).toEqual(DENIED_404);
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'alice')).status).toBe(200);
    expect(calls.allow).toBe(0);
  });

  test('allow gets the principal and the loaded resource, and may be async', async () => {
    const seen: Array<[PrincipalId, string]> = [];
    const { app } = userApp({
      allow: async (caller, server) => {
        seen.push([caller.id, server.id]);
        await Promise.resolve();
        return caller.id === 'bob';
      },
    });
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'bob')).status).toBe(200);
    expect(seen).toEqual([['bob', 'srv-1']]);
  });

  test('only true lets in: a truthy value from allow does not', async () => {
    const { app, calls } = userApp({ allow: () => 'yes' as unknown as boolean });
    const res = await request(app).get('/servers/srv-1/password').set('X-Test-User', 'bob');
    expect(res.body).toEqual(DENIED_404);
    expect(calls.handler).toBe(0);
  });

  describe('a failing resolver, loader or allow is a 500, never a pass', () => {
    const LEAK = 'connect ECONNREFUSED db.internal:5432 as admin:hunter2';

    function failingApp(options: Partial<RequireOwnershipOptions<UserPrincipal<Account>, Server>>) {
      const calls = newCalls();
      const logged: ProblemLogEntry[] = [];
      const guard = requireOwnership({
        principal: requestUser<Account>(),
        load: loadServer(calls),
        owner: 'userId',
        ...options,
      });
      return { app: serverApp(express, guard, calls, (entry) => logged.push(entry)), calls, logged };
    }

    test.each<[string, Partial<RequireOwnershipOptions<UserPrincipal<Account>, Server>>]>([
      ['a loader that rejects', { load: () => Promise.reject(new Error(LEAK)) }],
      [
        'a loader that throws',
        {
          load: () => {
            throw new Error(LEAK);
          },
        },
      ],
      ['a principal resolver that rejects', { principal: () => Promise.reject(new Error(LEAK)) }],
      [
        'a principal resolver that throws',
        {
          principal: () => {
            throw new Error(LEAK);
          },
        },
      ],
      ['an allow that rejects', { allow: () => Promise.reject(new Error(LEAK)) }],
      [
        'an allow that throws',
        {
          allow: () => {
            throw new Error(LEAK);
          },
        },
      ],
      [
        'an owner reader that throws',
        {
          owner: () => {
            throw new Error(LEAK);
          },
        },
      ],
    ])('%s: 500, nothing leaked, handler never called', async (_case, options) => {
      const { app, calls, logged } = failingApp(options);
      // bob does not own srv-1, so `allow` is reached too.
      const res = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'bob');
      expectProblem(res, 500, 'server.error');
      expect(res.body).toEqual({
        type: 'urn:express-password-guard:server.error',
        title: 'Internal Server Error',
        status: 500,
        code: 'server.error',
        detail: 'The server could not complete the request.',
      });
      expect(res.text).not.toMatch(/hunter2|ECONNREFUSED|db\.internal/);
      expect(JSON.stringify(res.headers)).not.toMatch(/hunter2|ECONNREFUSED|db\.internal/);
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(calls.handler).toBe(0);
      // It reached the error model (and its log) rather than hanging or passing.
      expect(logged).toHaveLength(1);
      expect(logged[0]?.error).toContain(LEAK);
    });

    const BAD_PRINCIPAL = 'requireOwnership: the principal resolver returned something other than { kind, id } or nothing.';
    const BAD_OWNER =
      'requireOwnership: the owner reader returned something other than { kind, id }, a list of them, or nothing.';
    const BAD_OWNER_ID = 'requireOwnership: an owner id is neither a string nor a finite number.';
    const NOT_AN_OBJECT = 'requireOwnership: the loaded resource is not an object, so it has no "userId" field.';

    // The log names the fault, so whoever wired the route can fix it; the caller sees a plain 500.
    test.each<[string, Partial<RequireOwnershipOptions<UserPrincipal<Account>, Server>>, string]>([
      ['a principal without an id', { principal: () => ({ kind: 'user' }) as unknown as UserPrincipal<Account> }, BAD_PRINCIPAL],
      ['a principal without a kind', { principal: () => ({ id: 'bob' }) as unknown as UserPrincipal<Account> }, BAD_PRINCIPAL],
      [
        'a principal with an empty kind',
        { principal: () => ({ kind: '', id: 'bob' }) as unknown as UserPrincipal<Account> },
        BAD_PRINCIPAL,
      ],
      [
        'a principal whose kind is not a string',
        { principal: () => ({ kind: ['user'], id: 'bob' }) as unknown as UserPrincipal<Account> },
        BAD_PRINCIPAL,
      ],
      ['a principal that is a bare id', { principal: () => 'bob' as unknown as UserPrincipal<Account> }, BAD_PRINCIPAL],
      ['a principal with an empty id', { principal: () => ({ kind: 'user', id: '', user: { id: '' } }) }, BAD_PRINCIPAL],
      ['a principal with a NaN id', { principal: () => ({ kind: 'user', id: Number.NaN, user: { id: 0 } }) }, BAD_PRINCIPAL],
      [
        'an owner with an object id',
        { owner: () => ({ kind: 'user', id: { toString: () => 'bob' } as unknown as string }) },
        BAD_OWNER_ID,
      ],
      ['an owner that is a bare id', { owner: () => 'bob' as unknown as Principal }, BAD_OWNER],
      ['an owner without a kind', { owner: () => [{ id: 'bob' } as unknown as Principal] }, BAD_OWNER],
      ['an owner with an empty kind', { owner: () => [{ kind: '', id: 'bob' }] }, BAD_OWNER],
      ['a null in a list of owners', { owner: () => [{ kind: 'user', id: 'bob' }, null as unknown as Principal] }, BAD_OWNER],
      [
        'a loaded resource that is not an object, with an owner field',
        { load: () => 'srv-2' as unknown as Server },
        NOT_AN_OBJECT,
      ],
    ])('%s is a wiring fault: 500, and the log says which', async (_case, options, fault) => {
      const { app, calls, logged } = failingApp(options);
      const res = await request(app).post('/servers/srv-2/password').set('X-Test-User', 'bob');
      expect(res.status).toBe(500);
      expect(calls.handler).toBe(0);
      expect(logged).toHaveLength(1);
      expect(logged[0]?.error).toContain(fault);
    });
  });

  describe('owner ids are compared exactly', () => {
    test('"1" is not 1, and 1 is not "1"', async () => {
      const { app, calls } = userApp();
      const stringToNumber = await request(app).get('/servers/srv-number/password').set('X-Test-User', 'string-1');
      const numberToString = await request(app).get('/servers/srv-string/password').set('X-Test-User', 'number-1');
      expect(stringToNumber.body).toEqual(DENIED_404);
      expect(numberToString.body).toEqual(DENIED_404);
      expect(calls.handler).toBe(0);
    });

    test('1 is 1 and "1" is "1"', async () => {
      const { app } = userApp();
      expect((await request(app).get('/servers/srv-number/password').set('X-Test-User', 'number-1')).status).toBe(200);
      expect((await request(app).get('/servers/srv-string/password').set('X-Test-User', 'string-1')).status).toBe(200);
    });

    test('no case folding: "Alice" does not own alice\'s server', async () => {
      const { app } = userApp();
      expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'Alice')).body).toEqual(DENIED_404);
    });

    test('a resource with a null owner is owned by no one', async () => {
      const { app } = userApp();
      expect((await request(app).get('/servers/srv-orphan/password').set('X-Test-User', 'alice')).body).toEqual(DENIED_404);
    });

    test('a resource without the owner field is owned by no one', async () => {
      const { app } = userApp({ load: () => ({ id: 'srv-new' }) as unknown as Server });
      expect((await request(app).get('/servers/srv-new/password').set('X-Test-User', 'alice')).body).toEqual(DENIED_404);
    });

    test('an owner reader that finds no owner, or an empty id, denies', async () => {
      const noOwner: ReadonlyArray<() => Principal | readonly Principal[] | null | undefined> = [
        () => undefined,
        () => null,
        () => [],
        () => ({ kind: 'user', id: '' }),
        () => [{ kind: 'user', id: null as unknown as string }],
        () => [{ kind: 'user', id: undefined as unknown as string }],
      ];
      for (const owner of noOwner) {
        const { app } = userApp({ owner });
        expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'alice')).body).toEqual(DENIED_404);
      }
    });

    test('the kind must match too: an owner of another kind with the same id is not the caller', async () => {
      const { app } = userApp({ owner: (server) => ({ kind: 'group', id: server.userId ?? '' }) });
      expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'alice')).body).toEqual(DENIED_404);
    });
  });

  test('the loader gets the principal, so it can scope its query', async () => {
    const calls = newCalls();
    const guard = requireOwnership({
      principal: requestUser<Account>(),
      load: (req: Request, caller) => {
        const server = SERVERS.get(idParam(req));
        return server?.userId === caller.id ? server : undefined;
      },
      owner: 'userId',
    });
    const app = serverApp(express, guard, calls);
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'alice')).status).toBe(200);
    expect((await request(app).get('/servers/srv-1/password').set('X-Test-User', 'bob')).body).toEqual(DENIED_404);
  });

  test('owned(req) throws and ownership(req) is undefined where the guard did not run', async () => {
    const calls = newCalls();
    const guard = requireOwnership({ load: loadServer(calls), owner: 'userId' });
    const logged: ProblemLogEntry[] = [];
    const app = express();
    app.get('/unguarded', (req, res) => {
      res.json({ found: ownership(req) !== undefined });
    });
    app.get('/miswired', (req, res) => {
      res.json(guard.owned(req).resource);
    });
    app.use(problemHandler({ log: (entry) => logged.push(entry) }));
    expect((await request(app).get('/unguarded')).body).toEqual({ found: false });
    expect((await request(app).get('/miswired')).status).toBe(500);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.error).toContain('requireOwnership: owned(req) was called on a request this guard did not let through');
  });

  test('two guards on one request: each owned(req) is its own, ownership(req) the last', async () => {
    const calls = newCalls();
    const serverGuard = requireOwnership({ principal: requestUser<Account>(), load: loadServer(calls), owner: 'userId' });
    const noteGuard = requireOwnership({
      principal: requestUser<Account>(),
      load: () => ({ note: 'n-1', author: 'alice' }),
      owner: 'author',
    });
    const app = express();
    app.get('/servers/:id/note', fakeAuth, serverGuard, noteGuard, (req, res) => {
      res.json({
        server: serverGuard.owned(req).resource.id,
        note: noteGuard.owned(req).resource.note,
        last: ownership<UserPrincipal<Account>, { note: string }>(req)?.resource.note,
      });
    });
    app.use(problemHandler({ log: false }));
    const res = await request(app).get('/servers/srv-1/note').set('X-Test-User', 'alice');
    expect(res.body).toEqual({ server: 'srv-1', note: 'n-1', last: 'n-1' });
  });

  describe('a route that accepts a signed instance or a user cannot confuse them', () => {
    const secret = 'shared-proxy-secret';
    const instance = signedInstanceIdentity({ secret });
    const user = requestUser<Account>();

    function mixedApp(owner: RequireOwnershipOptions<Principal, Server>['owner']) {
      const calls = newCalls();
      const guard = requireOwnership({
        principal: (req: Request) => instance(req) ?? user(req),
        load: loadServer(calls),
        owner,
      });
      return { app: serverApp(express, guard, calls), calls };
    }

    // A server may have its password set by its user and by the instance itself.
    const userAndInstance = (server: Server): Principal[] => [
      { kind: 'user', id: server.userId ?? '' },
      { kind: 'instance', id: server.id },
    ];

    test('the signed instance reaches its own server, as an instance', async () => {
      const { app } = mixedApp(userAndInstance);
      const res = await request(app)
        .post('/servers/srv-1/password')
        .set('X-Instance-ID', 'srv-1')
        .set('X-Instance-ID-Signature', sign('srv-1', secret));
      expect(res.status).toBe(200);
      expect(res.body.principal).toEqual({ kind: 'instance', id: 'srv-1' });
    });

    test('the signed instance does not reach another server, nor learn whether it exists', async () => {
      const { app, calls } = mixedApp(userAndInstance);
      const [foreign, missing] = await Promise.all(
        ['/servers/srv-2/password', '/servers/srv-nope/password'].map((path) =>
          request(app).post(path).set('X-Instance-ID', 'srv-1').set('X-Instance-ID-Signature', sign('srv-1', secret)),
        ),
      );
      expect(foreign?.body).toEqual(DENIED_404);
      expect(foreign?.text).toBe(missing?.text);
      expect(calls.handler).toBe(0);
    });

    test("an instance whose id is a user's id does not get that user's servers", async () => {
      const { app, calls } = mixedApp(userAndInstance);
      const res = await request(app)
        .post('/servers/srv-1/password')
        .set('X-Instance-ID', 'alice')
        .set('X-Instance-ID-Signature', sign('alice', secret));
      expect(res.body).toEqual(DENIED_404);
      expect(calls.handler).toBe(0);
    });

    test('an instance matches no owner field: the field form names users only', async () => {
      const { app } = mixedApp('userId');
      const res = await request(app)
        .post('/servers/srv-1/password')
        .set('X-Instance-ID', 'alice')
        .set('X-Instance-ID-Signature', sign('alice', secret));
      expect(res.body).toEqual(DENIED_404);
    });

    test("a user whose id is an instance's id does not pass as that instance", async () => {
      const { app, calls } = mixedApp(userAndInstance);
      const res = await request(app).post('/servers/srv-1/password').set('X-Test-User', 'srv-1');
      expect(res.body).toEqual(DENIED_404);
      expect(calls.handler).toBe(0);
    });

    test('the instance named like a user reaches its own server, which that user does not own', async () => {
      const { app } = mixedApp(userAndInstance);
      const asInstance = await request(app)
        .post('/servers/alice/password')
        .set('X-Instance-ID', 'alice')
        .set('X-Instance-ID-Signature', sign('alice', secret));
      expect(asInstance.body.principal).toEqual({ kind: 'instance', id: 'alice' });
      const asUser = await request(app).post('/servers/alice/password').set('X-Test-User', 'alice');
      expect(asUser.body).toEqual(DENIED_404);
    });

    test("a forged instance header falls back to the signed-in user, with only that user's rights", async () => {
      const { app } = mixedApp(userAndInstance);
      const forged = await request(app)
        .post('/servers/srv-1/password')
        .set('X-Test-User', 'bob')
        .set('X-Instance-ID', 'srv-1')
        .set('X-Instance-ID-Signature', sign('srv-2', secret));
      expect(forged.body).toEqual(DENIED_404);
      const anonymous = await request(app)
        .post('/servers/srv-1/password')
        .set('X-Instance-ID', 'srv-1')
        .set('X-Instance-ID-Signature', sign('srv-2', secret));
      expect(anonymous.status).toBe(401);
    });
  });
});

describe('requireOwnership options', () => {
  const load = (): undefined => undefined;

  test.each([
    [undefined, /options must be an object/],
    [null, /options must be an object/],
    [[], /options must be an object/],
    [{ owner: 'userId' }, /option "load" is required/],
    [{ load: null, owner: 'userId' }, /option "load" is required/],
    [{ load, owner: {} }, /option "owner" is required/],
    [{ load, owner: null }, /option "owner" is required/],
    [{ load, owner: 'userId', principal: null }, /option "principal" must be a function/],
    [{ load, owner: 'userId', allow: 'admin' }, /option "allow" must be a function/],
    [{ load, owner: 'userId', deniedStatus: null }, /option "deniedStatus" must be 404 or 403, got null/],
    [{ load, owner: 'userId', challenge: 'Bearer realm="café"' }, /option "challenge"/],
    [{ load, owner: 'userId', challenge: ' Bearer' }, /option "challenge"/],
    [{ load: 'servers', owner: 'userId' }, /option "load" is required/],
    [{ load }, /option "owner" is required/],
    [{ load, owner: '' }, /option "owner" is required/],
    [{ load, owner: 7 }, /option "owner" is required/],
    [{ load, owner: 'userId', principal: 'user' }, /option "principal" must be a function/],
    [{ load, owner: 'userId', allow: true }, /option "allow" must be a function/],
    [{ load, owner: 'userId', deniedStatus: 401 }, /option "deniedStatus" must be 404 or 403, got 401/],
    [{ load, owner: 'userId', deniedStatus: '404' }, /option "deniedStatus" must be 404 or 403, got "404"/],
    [{ load, owner: 'userId', challenge: '' }, /option "challenge" must be a WWW-Authenticate challenge/],
    [{ load, owner: 'userId', challenge: 'Bearer realm="a"\r\nSet-Cookie: x=1' }, /option "challenge"/],
    [{ load, owner: 'userId', challenge: 42 }, /option "challenge"/],
    [{ load, owner: 'userId', deniedstatus: 403 }, /unknown option "deniedstatus"\. Did you mean "deniedStatus"\?/],
    [{ load, owner: 'userId', admin: () => true }, /unknown option "admin"/],
  ])('requireOwnership(%p) throws', (options, message) => {
    expect(() => requireOwnership(options as never)).toThrow(TypeError);
    expect(() => requireOwnership(options as never)).toThrow(message);
    expect(() => requireOwnership(options as never)).toThrow(/^requireOwnership: /);
  });

  test('the returned middleware is named, for stack traces', () => {
    expect(requireOwnership({ load, owner: () => undefined }).name).toBe('requireOwnership');
  });

  test('types: owner fields come from the resource, owned(req) is typed from the options', () => {
    const guard = requireOwnership({
      principal: requestUser<Account>(),
      load: async (): Promise<Server | undefined> => undefined,
      owner: 'userId',
    });
    const read = (req: Request): OwnedBy<UserPrincipal<Account>, Server> => guard.owned(req);
    expect(typeof read).toBe('function');
    // @ts-expect-error: Server has no "ownerId" field.
    requireOwnership({ load: async (): Promise<Server | undefined> => undefined, owner: 'ownerId' });
    requireOwnership({
      load: async (): Promise<Server | undefined> => undefined,
      owner: 'userId',
      // @ts-expect-error: the default principal is a user principal, whose `user` is unknown.
      allow: (caller) => caller.user.admin === true,
    });
  });
});
