import type { Response } from 'express';
import helmet from 'helmet';
import request from 'supertest';
import { encryptAndStore, localKeyRing, MemoryStore, responseEncoder, revealedSecret, revealSecret } from '../../../lib';
import type { Handler } from '../../helpers/express';
import { expressVersions } from '../../helpers/express';
import { problemHandler } from '../../../lib';
import type { ExpressFactory } from '../../helpers/express';
import { stubValidator } from '../../helpers/password';
import { expectProblem } from '../../helpers/problem';
import { medianCpuMs } from '../../helpers/cpu-time';
import { K1 } from '../../helpers/sealing';

function appWith(express: ExpressFactory, encoder: Handler, handler: Handler) {
  const app = express();
  app.use(encoder);
  app.get('/r', handler);
  app.use(problemHandler({ log: false }));
  return app;
}

describe.each(expressVersions)('responseEncoder on %s', (_name, express) => {
  const reflect: Handler = (req, res) => {
    res.json({ echo: req.query['q'] });
  };
  const app = appWith(express, responseEncoder(), reflect);

  test('sets the JSON API security headers and no-store', async () => {
    const res = await request(app).get('/r?q=x');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  test('a reflected <script> and U+2028 arrive escaped and still parse to the same value', async () => {
    const payload = '</script><script>alert(1)</script>&\u2028\u2029';
    const res = await request(app).get('/r').query({ q: payload });
    expect(res.text).toBe(
      '{"echo":"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\u0026\\u2028\\u2029"}',
    );
    expect(res.text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(res.text)).toEqual({ echo: payload });
  });

  test('secret-naming keys are removed at any depth, in arrays too', async () => {
    const leaky = appWith(express, responseEncoder(), (_req, res) => {
      res.json({
        id: 'srv-1',
        password: 'hunter2-plain',
        passwordHash: '$2b$12$abcdefghijklmnopqrstuv',
        nested: { password_hash: 'x', Secret: 'y', deeper: [{ token: 'z', keep: 1 }] },
        metadata: { password_0: 'chunk0', password_3: 'chunk3', passwordSet: true },
      });
    });
    const res = await request(leaky).get('/r');
    expect(res.body).toEqual({
      id: 'srv-1',
      nested: { deeper: [{ keep: 1 }] },
      metadata: { passwordSet: true },
    });
    for (const secret of ['hunter2-plain', '$2b$', 'chunk0', 'chunk3']) {
      expect(res.text).not.toContain(secret);
    }
  });

  test('res.send(object) goes through the same encoding', async () => {
    const viaSend = appWith(express, responseEncoder(), (_req, res) => {
      res.send({ token: 't', note: '<b>' });
    });
    const res = await request(viaSend).get('/r');
    expect(res.text).toBe('{"note":"\\u003cb\\u003e"}');
  });

  test('res.jsonp(object) goes through the same encoding and never wraps a callback', async () => {
    const viaJsonp = appWith(express, responseEncoder(), (_req, res) => {
      res.jsonp({ password: 'hunter2', note: '<b>' });
    });
    const res = await request(viaJsonp).get('/r?callback=steal');
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.text).toBe('{"note":"\\u003cb\\u003e"}');
  });

  // Issue 14 defect 3: these passed through when only exact key names were compared.
  test.each([
    'adminPass',
    'hashedPassword',
    'newPassword',
    'accessToken',
    'client_secret',
    'passwd',
    'pwd',
    'authorization',
    'pepper',
    'totpSecret',
    'API-KEY',
    'apiKey',
    'PRIVATE_KEY',
    'password_0',
    'passwords',
  ])('the key %s is redacted by default', async (key) => {
    const leaky = appWith(express, responseEncoder(), (_req, res) => {
      res.json({ id: 'srv-1', [key]: 'leaked-value', nested: [{ [key]: 'leaked-value' }] });
    });
    const res = await request(leaky).get('/r');
    expect(res.body).toEqual({ id: 'srv-1', nested: [{}] });
    expect(res.text).not.toContain('leaked-value');
  });

  test('keys whose words only resemble secret words are kept', async () => {
    const body = { passwordSet: true, passwordPolicy: 'min 8', hashing: 'bcrypt', bypass: 1, compass: 2, tokenizer: 3, keyId: 4 };
    const plain = appWith(express, responseEncoder(), (_req, res) => {
      res.json(body);
    });
    expect((await request(plain).get('/r')).body).toEqual(body);
  });

  // A non-ASCII letter ended a word: secretário (Portuguese: secretary) read as "secret".
  test('non-ASCII letters belong to their word: secretário is kept; contraseña goes once redact names it', async () => {
    const body = { secretário: 'Ana', contraseña: 'hunter2-es', adminPass: 'hunter2' };
    const plain = appWith(express, responseEncoder(), (_req, res) => {
      res.json(body);
    });
    expect((await request(plain).get('/r')).body).toEqual({ secretário: 'Ana', contraseña: 'hunter2-es' });
    const spanish = appWith(express, responseEncoder({ redact: ['contraseña'] }), (_req, res) => {
      res.json({ ...body, nuevaContraseña: 'hunter3-es' });
    });
    const res = await request(spanish).get('/r');
    expect(res.body).toEqual({ secretário: 'Ana' });
    expect(res.text).not.toMatch(/hunter/);
  });

  test('the redact option extends the default list; keep keeps whole names only', async () => {
    const custom = appWith(express, responseEncoder({ redact: ['sessionId'], keep: ['token'] }), (_req, res) => {
      res.json({ session_id: 's', password: 'p', token: 'login-jwt', accessToken: 'a', passwordSet: true });
    });
    const res = await request(custom).get('/r');
    expect(res.body).toEqual({ token: 'login-jwt', passwordSet: true });
  });

  test('redactDefaults: false keeps the old replacing behaviour of redact', async () => {
    const custom = appWith(express, responseEncoder({ redact: ['apiKey'], redactDefaults: false }), (_req, res) => {
      res.json({ apiKey: 'k', api_key: 'k2', password: 'kept-on-purpose' });
    });
    const res = await request(custom).get('/r');
    expect(res.body).toEqual({ password: 'kept-on-purpose' });
  });

  // Issue 14 defect 1: the trailing-digit strip was quadratic, ~5 s for this body. Judged in
  // CPU time, so a busy machine does not fail it, against the same bytes sent as a value,
  // which the encoder escapes but never reads as a key name.
  test('a request key of 90,000 digits echoed back costs milliseconds of CPU, about what the same bytes as a value cost', async () => {
    const echo = express();
    echo.use(responseEncoder());
    echo.use(express.json({ limit: '1mb' }));
    echo.post('/echo', (req, res) => {
      res.status(201).json({ saved: req.body as unknown });
    });
    const digits = `${'1'.repeat(90_000)}a`;
    const echoed = async (body: Record<string, unknown>): Promise<void> => {
      const res = await request(echo).post('/echo').send(body);
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ saved: body });
    };
    const cost = await medianCpuMs({
      key: () => echoed({ [digits]: 1 }),
      value: () => echoed({ k: digits }),
    });
    expect(cost.key).toBeLessThan(5 * cost.value);
  });

  test('406 problem when Accept admits no JSON; JSON and wildcards pass', async () => {
    const html = await request(app).get('/r').set('Accept', 'text/html');
    expectProblem(
      html,
      406,
      'response.not_acceptable',
      'This resource is only available as application/json; the Accept header admits no JSON type.',
    );
    for (const accept of ['application/json', '*/*', 'application/*', 'text/html, application/problem+json;q=0.5']) {
      expect((await request(app).get('/r').set('Accept', accept)).status).toBe(200);
    }
    expect((await request(app).get('/r').unset('Accept')).status).toBe(200);
  });

  test('noStore: false and requireJsonAccept: false turn those parts off', async () => {
    const relaxed = appWith(express, responseEncoder({ noStore: false, requireJsonAccept: false }), reflect);
    const res = await request(relaxed).get('/r').set('Accept', 'text/html');
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBeUndefined();
  });

  test('helmet options are merged over the defaults', async () => {
    const hsts = appWith(express, responseEncoder({ helmet: { strictTransportSecurity: false } }), reflect);
    const res = await request(hsts).get('/r');
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
  });

  test('res.json(undefined) sends an empty JSON answer, as Express does', async () => {
    const nothing = appWith(express, responseEncoder(), (_req, res) => {
      res.json(undefined);
    });
    const res = await request(nothing).get('/r');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.text).toBe('');
  });

  test('a Content-Type the handler chose is kept; JSON in UTF-8 otherwise', async () => {
    const typed = appWith(express, responseEncoder(), (_req, res) => {
      res.type('application/vnd.api+json').json({ data: null });
    });
    const res = await request(typed).get('/r');
    expect(res.headers['content-type']).toBe('application/vnd.api+json; charset=utf-8');
    expect(res.text).toBe('{"data":null}');
  });

  describe('reapplyHeaders', () => {
    /** The encoder, then the app's own weaker helmet and a handler that answers as `answer` says. */
    function weakened(reapplyHeaders: boolean | undefined, answer: (res: Response) => void) {
      const app = express();
      app.use((_req, res, next) => {
        // Set before the encoder: not the encoder's header, so never put back.
        res.setHeader('X-Earlier', 'first');
        next();
      });
      app.use(responseEncoder(reapplyHeaders === undefined ? {} : { reapplyHeaders }));
      app.use(helmet({ frameguard: { action: 'sameorigin' }, contentSecurityPolicy: false }));
      app.get('/r', (_req, res) => {
        res.setHeader('Cache-Control', 'public, max-age=600');
        res.setHeader('X-Earlier', 'changed later');
        answer(res);
      });
      return app;
    }

    test.each([
      ['res.json', (res: Response) => void res.json({ ok: true })],
      ['res.end', (res: Response) => void res.status(204).end()],
      ['res.writeHead', (res: Response) => void res.writeHead(200).end('{}')],
    ])('puts back what later middleware weakened, whatever writes the head (%s)', async (_name, answer) => {
      const res = await request(weakened(true, answer)).get('/r');
      const off = await request(weakened(false, answer)).get('/r');
      // The same headers, some with their values put back: none added.
      expect(Object.keys(res.headers).sort()).toEqual(Object.keys(off.headers).sort());
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
      expect(res.headers['x-earlier']).toBe('changed later');
    });

    test('is off by default: later middleware wins', async () => {
      for (const option of [undefined, false]) {
        const res = await request(weakened(option, (r) => void r.json({ ok: true }))).get('/r');
        expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
        expect(res.headers['cache-control']).toBe('public, max-age=600');
      }
    });

    test('headers passed to res.writeHead itself still win', async () => {
      const res = await request(weakened(true, (r) => void r.writeHead(200, { 'Cache-Control': 'private' }).end('{}'))).get('/r');
      expect(res.headers['cache-control']).toBe('private');
      expect(res.headers['x-frame-options']).toBe('DENY');
    });
  });

  test('the value revealSecret opened passes under a redacted key; nothing stored passes as ""', async () => {
    const store = new MemoryStore();
    const keys = localKeyRing({ current: 'k1', keys: { k1: K1 } });
    const sealed = express();
    sealed.use(responseEncoder());
    sealed.post('/servers/:id/secret', ...stubValidator(express), encryptAndStore({ store, keys }), (_req, res) => {
      res.status(201).json({ password: 'echoed on a route that revealed nothing' });
    });
    sealed.get('/servers/:id/secret', revealSecret({ store, keys }), (req, res) => {
      const value = revealedSecret(req) ?? '';
      res.json({ password: value, token: value, other: { secret: 'never' }, empty: { password: '' } });
    });
    sealed.use(problemHandler({ log: false }));
    expect((await request(sealed).post('/servers/srv-1/secret').send({ password: 'the opened value' })).body).toEqual({});
    expect((await request(sealed).get('/servers/srv-1/secret')).body).toEqual({
      password: 'the opened value',
      token: 'the opened value',
      other: {},
      empty: {},
    });
    expect((await request(sealed).get('/servers/srv-2/secret')).body).toEqual({
      password: '',
      token: '',
      other: {},
      empty: { password: '' },
    });
  });

  test('error bodies get the encoder headers too', async () => {
    const failing = appWith(express, responseEncoder(), (_req, _res, next) => {
      next(new Error('boom'));
    });
    const res = await request(failing).get('/r');
    expect(res.status).toBe(500);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
  });
});

describe('responseEncoder options', () => {
  test.each([
    [{ redact: 'password' }, /option "redact" must be an array/],
    [{ redact: [''] }, /option "redact" must be an array of key names, each with a letter or digit/],
    [{ redact: ['_'] }, /option "redact" must be an array of key names/],
    [{ redact: ['password', ''] }, /option "redact" must be an array of key names/],
    [{ keep: 'token' }, /option "keep" must be an array of key names/],
    [{ keep: [1] }, /option "keep" must be an array of key names/],
    [{ redactDefaults: 'no' }, /option "redactDefaults" must be true or false/],
    [{ noStore: 1 }, /option "noStore" must be true or false/],
    [{ requireJsonAccept: 'no' }, /option "requireJsonAccept" must be true or false/],
    [{ helmet: 'on' }, /option "helmet" must be an object/],
    [{ helmet: null }, /option "helmet" must be an object/],
    [{ reapplyHeaders: 'yes' }, /option "reapplyHeaders" must be true or false/],
    [{ redacted: [] }, /unknown option "redacted"\. Did you mean "redact"\?/],
  ])('%j throws', (options, message) => {
    expect(() => responseEncoder(options as never)).toThrow(message);
    expect(() => responseEncoder(options as never)).toThrow(/^responseEncoder: /);
  });
});
