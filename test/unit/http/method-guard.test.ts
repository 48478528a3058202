import express5 from 'express';
import request from 'supertest';
import { guardRoute, methodGuard, problemHandler } from '../../../lib';
import { createApp, expressVersions } from '../../helpers/express';
import type { Handler } from '../../helpers/express';
import { send } from '../../helpers/http';
import { exchange, listen, write } from '../../helpers/raw-http';
import { expectProblem } from '../../helpers/problem';

/** The answer head to `message` sent on a fresh connection; the client hangs up once it arrives. */
async function answerHead(app: Parameters<typeof listen>[0], message: string): Promise<string> {
  const server = await listen(app);
  try {
    const res = await exchange(server.port, async (socket) => {
      socket.once('data', () => socket.end());
      await write(socket, message);
    });
    const end = res.text.indexOf('\r\n\r\n');
    return end < 0 ? res.text : res.text.slice(0, end);
  } finally {
    await server.close();
  }
}

describe.each(expressVersions)('methodGuard on %s', (_name, express) => {
  const app = createApp(express, methodGuard(['GET', 'POST']));

  // PROPFIND stands for a method that is not in RFC 9110: Node's parser refuses
  // names it does not know before Express sees them, so a WebDAV one is the test.
  test.each(['PUT', 'PATCH', 'DELETE', 'TRACE', 'PROPFIND'])(
    '%s gets 405, the exact Allow header and a problem body naming it',
    async (method) => {
      const res = await send(app, method, '/servers/1/password?password=leak');
      expectProblem(res, 405, 'method.not_allowed');
      expect(res.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
      expect(res.body).toEqual({
        type: 'urn:express-password-guard:method.not_allowed',
        title: 'Method Not Allowed',
        status: 405,
        code: 'method.not_allowed',
        detail: `The method ${method} is not allowed on /servers/1/password. Allowed methods: GET, HEAD, POST, OPTIONS.`,
      });
      expect(res.text).not.toContain('leak');
    },
  );

  test('listed methods and HEAD (allowed with GET) reach the route', async () => {
    expect((await request(app).get('/x')).body).toEqual({ ok: true, method: 'GET' });
    expect((await request(app).post('/x')).body).toEqual({ ok: true, method: 'POST' });
    const head = await request(app).head('/x');
    expect(head.status).toBe(200);
    expect(head.headers['allow']).toBeUndefined();
  });

  test('HEAD is refused where GET is not allowed', async () => {
    const postOnly = createApp(express, methodGuard(['POST']));
    const res = await request(postOnly).head('/x');
    expect(res.status).toBe(405);
    expect(res.headers['allow']).toBe('POST, OPTIONS');
    expect(res.text ?? '').toBe('');
  });

  test('OPTIONS answers 204 with Allow and no body', async () => {
    const res = await request(app).options('/x');
    expect(res.status).toBe(204);
    expect(res.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
    expect(res.text).toBe('');
  });

  test('handleOptions: false passes OPTIONS on and leaves it out of Allow', async () => {
    const passThrough = createApp(express, methodGuard(['GET'], { handleOptions: false }));
    const preflight = await request(passThrough).options('/x');
    expect(preflight.status).toBe(200);
    expect(preflight.body).toEqual({ ok: true, method: 'OPTIONS' });
    const res = await request(passThrough).delete('/x');
    expect(res.headers['allow']).toBe('GET, HEAD');
  });

  test('OPTIONS with an upload still arriving answers 204 and closes instead of reading it', async () => {
    const upload = 'OPTIONS /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nabc';
    const head = await answerHead(app, upload);
    expect(head).toMatch(/^HTTP\/1\.1 204 /);
    expect(head).toMatch(/\r\nAllow: GET, HEAD, POST, OPTIONS(\r\n|$)/i);
    expect(head).toMatch(/\r\nConnection: close(\r\n|$)/i);
  });

  test('OPTIONS without a body keeps the connection', async () => {
    const head = await answerHead(app, 'OPTIONS /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 204 /);
    expect(head).toMatch(/\r\nConnection: keep-alive(\r\n|$)/i);
  });

  test('a method listed twice, or HEAD beside GET, appears once in Allow', async () => {
    const repeated = createApp(express, methodGuard(['GET', 'POST', 'GET', 'HEAD', 'POST']));
    const res = await request(repeated).delete('/x');
    expect(res.status).toBe(405);
    expect(res.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
  });

  test('OPTIONS listed by the user is passed on to the route', async () => {
    const listed = createApp(express, methodGuard(['GET', 'OPTIONS']));
    const res = await request(listed).options('/x');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true, method: 'OPTIONS' });
  });

  test('works mounted on a path with app.use', async () => {
    const mounted = express();
    mounted.use('/servers/:id/password', methodGuard(['GET']));
    mounted.use((_req, res) => {
      res.json({ ok: true });
    });
    mounted.use(problemHandler({ log: false }));
    expect((await request(mounted).post('/servers/1/password')).status).toBe(405);
    expect((await request(mounted).post('/elsewhere')).status).toBe(200);
  });

  test('works with router.route(path).all(...) and per route', async () => {
    const routed = express();
    const router = express.Router();
    router
      .route('/a')
      .all(methodGuard(['GET']))
      .get((_req, res) => {
        res.json({ route: 'a' });
      });
    router.post('/b', methodGuard(['POST']), (_req, res) => {
      res.json({ route: 'b' });
    });
    routed.use(router);
    routed.use(problemHandler({ log: false }));
    expect((await request(routed).get('/a')).body).toEqual({ route: 'a' });
    const refused = await request(routed).put('/a');
    expect(refused.status).toBe(405);
    expect(refused.headers['allow']).toBe('GET, HEAD, OPTIONS');
    expect((await request(routed).post('/b')).body).toEqual({ route: 'b' });
  });

  test("guardRoute turns Express's 404 for a wrong method into 405 + Allow", async () => {
    const routed = express();
    const router = express.Router();
    guardRoute(router, '/servers/:id/password', {
      GET: (_req, res) => {
        res.json({ state: true });
      },
      POST: [
        (_req, _res, next) => {
          next();
        },
        (_req, res) => {
          res.status(204).end();
        },
      ],
    });
    routed.use(router);
    routed.use(problemHandler({ log: false }));
    expect((await request(routed).get('/servers/1/password')).body).toEqual({ state: true });
    expect((await request(routed).post('/servers/1/password')).status).toBe(204);
    const refused = await request(routed).delete('/servers/1/password');
    expect(refused.status).toBe(405);
    expect(refused.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
    expect((await request(routed).options('/servers/1/password')).status).toBe(204);
    expect((await request(routed).get('/other')).status).toBe(404);
  });

  test('guardRoute registers PUT, PATCH and DELETE handlers, each on its own method', async () => {
    const routed = express();
    const router = express.Router();
    const answer =
      (name: string): Handler =>
      (_req, res) => {
        res.json({ handler: name });
      };
    guardRoute(router, '/servers/:id/metadata', {
      PUT: answer('put'),
      PATCH: [
        (_req, _res, next) => {
          next();
        },
        answer('patch'),
      ],
      DELETE: answer('delete'),
    });
    routed.use(router);
    routed.use(problemHandler({ log: false }));
    const path = '/servers/1/metadata';
    expect((await request(routed).put(path)).body).toEqual({ handler: 'put' });
    expect((await request(routed).patch(path)).body).toEqual({ handler: 'patch' });
    expect((await request(routed).delete(path)).body).toEqual({ handler: 'delete' });
    for (const refused of [await request(routed).get(path), await request(routed).post(path)]) {
      expect(refused.status).toBe(405);
      expect(refused.headers['allow']).toBe('PUT, PATCH, DELETE, OPTIONS');
    }
  });
});

describe('methodGuard options', () => {
  test.each([
    [[], /non-empty array/],
    [['get'], /Did you mean "GET"/],
    [['GE T'], /not an HTTP method name/],
    [[''], /not an HTTP method name/],
  ])('methods %j throw', (methods, message) => {
    expect(() => methodGuard(methods)).toThrow(message);
  });

  // A name such as 42 would pass the token check once turned into a string.
  test.each([[42], [null], [true]])('a method name that is not a string (%j) throws', (method) => {
    expect(() => methodGuard([method] as never)).toThrow(/^methodGuard: .* is not an HTTP method name\.$/);
  });

  // Node only parses methods upper-case: a lower-case standard name would refuse every request.
  test.each(['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch', 'Delete'])(
    'the standard method written %j throws at start-up with the upper-case spelling',
    (method) => {
      expect(() => methodGuard([method])).toThrow(
        `methodGuard: method "${method}" never matches. Did you mean "${method.toUpperCase()}"?`,
      );
    },
  );

  test('unknown and mistyped options throw with a suggestion', () => {
    expect(() => methodGuard(['GET'], { handleOption: true } as never)).toThrow(
      /^methodGuard: unknown option "handleOption"\. Did you mean "handleOptions"\?/,
    );
    expect(() => methodGuard(['GET'], { handleOptions: 'yes' } as never)).toThrow(
      /^methodGuard: option "handleOptions" must be true or false/,
    );
  });

  test('guardRoute refuses a handler key that is not a method it can register', () => {
    expect(() => guardRoute(express5.Router(), '/x', { get: () => undefined } as never)).toThrow(
      'guardRoute: unsupported handler key "get". Use one of GET, POST, PUT, PATCH, DELETE.',
    );
  });
});
