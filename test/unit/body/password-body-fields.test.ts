import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import request from 'supertest';
import { passwordBody, problemHandler, submittedPassword, validatedPassword } from '../../../lib';
import type { PasswordBodyOptions, ProblemLogEntry } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { codes, expectProblem } from '../../helpers/problem';

const PATH = '/servers/srv-1/password';
const GOOD = 'tangerine kettle 42 drums';
// The same words with a decomposed é (NFD): the stored and compared form is NFC.
const DECOMPOSED = 'cafe\u0301 kettle 42 drums';
const COMPOSED = 'caf\u00e9 kettle 42 drums';
const quiet = (): void => undefined;

/**
 * passwordBody with `options` behind `before` (what the app mounted ahead of it), then
 * `after`, then a route that echoes what it saw (test-only: it shows the passwords).
 */
function echoApp(
  express: ExpressFactory,
  options: PasswordBodyOptions,
  { before = [], after = [] }: { before?: RequestHandler[]; after?: RequestHandler[] } = {},
): Express {
  const app = express();
  app.all('/servers/:id/password', ...before, passwordBody(options), ...after, (req: Request, res: Response) => {
    res.json({
      password: validatedPassword(req) ?? null,
      current: submittedPassword(req, 'current') ?? null,
      body: (req.body as unknown) ?? null,
      query: req.query as unknown,
    });
  });
  app.use(problemHandler({ log: false }));
  return app;
}

interface Entry {
  readonly field: string;
  readonly code: string;
  readonly message: string;
}
const entries = (res: request.Response): Entry[] => (res.body as { errors?: Entry[] }).errors ?? [];

describe.each(expressVersions)('passwordBody fields on %s', (_name, express) => {
  describe('repeat', () => {
    const send = (body: Record<string, unknown>): request.Test =>
      request(echoApp(express, { repeat: 'again' }))
        .post(PATH)
        .send(body);

    test('the same password again passes, compared after normalisation', async () => {
      const res = await send({ password: COMPOSED, again: DECOMPOSED });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: COMPOSED, body: {} });
    });

    test('a missing repeat is one failed rule, with its own code and message', async () => {
      const res = await send({ password: GOOD });
      expectProblem(res, 422, 'password.invalid', 'The password was refused: one rule failed; see errors.');
      expect(entries(res)).toEqual([
        { field: 'again', code: 'repeat_missing', message: 'The "again" field must repeat the password.' },
      ]);
    });

    test('a different repeat is refused though the password itself passes every rule', async () => {
      const res = await send({ password: GOOD, again: `${GOOD}!` });
      expectProblem(res, 422, 'password.invalid', 'The password was refused: one rule failed; see errors.');
      expect(entries(res)).toEqual([
        { field: 'again', code: 'repeat_mismatch', message: 'The "again" field is not the same password as "password".' },
      ]);
    });

    test('a repeat without a password is a mismatch besides the missing password: two rules failed', async () => {
      const res = await send({ again: GOOD });
      expectProblem(res, 422, 'password.invalid', 'The password was refused: 2 rules failed; see errors.');
      expect(codes(res)).toEqual(['missing', 'repeat_mismatch']);
    });

    test('from the query, a repeat sent alone still counts as sent', async () => {
      const query = echoApp(express, { from: 'query', repeat: 'again', query: { warn: quiet } });
      const res = await request(query).post(`${PATH}?again=${encodeURIComponent(GOOD)}`);
      expectProblem(res, 422, 'password.invalid');
      expect(codes(res)).toEqual(['missing', 'repeat_mismatch']);
    });
  });

  describe('secret fields', () => {
    const app = (): Express => echoApp(express, { secretFields: ['current'] });

    test('a secret field is normalised for submittedPassword and leaves req.body', async () => {
      const res = await request(app()).post(PATH).send({ password: GOOD, current: DECOMPOSED, note: 'kept' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD, current: COMPOSED, body: { note: 'kept' } });
    });

    test('a secret field that is not a string is no password: it leaves req.body and is not submitted', async () => {
      const res = await request(app()).post(PATH).send({ password: GOOD, current: 12345678, note: 'kept' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD, current: null, body: { note: 'kept' } });
    });
  });

  describe('hand-off', () => {
    const options: PasswordBodyOptions = { handOff: true, secretFields: ['current'] };

    test('JSON: the normalised password and secret fields are back in req.body beside the others', async () => {
      const res = await request(echoApp(express, options))
        .post(PATH)
        .send({ password: DECOMPOSED, current: DECOMPOSED, note: 'kept' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ body: { password: COMPOSED, current: COMPOSED, note: 'kept' } });
    });

    test('form: the same, from a urlencoded body', async () => {
      const res = await request(echoApp(express, { ...options, from: 'form' }))
        .post(PATH)
        .type('application/x-www-form-urlencoded')
        .send(`password=${encodeURIComponent(DECOMPOSED)}&current=${encodeURIComponent(DECOMPOSED)}&note=kept`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ body: { password: COMPOSED, current: COMPOSED, note: 'kept' } });
    });

    test('text: req.body is the normalised password, as express.text() would leave it', async () => {
      const res = await request(echoApp(express, { handOff: true }))
        .post(PATH)
        .set('Content-Type', 'text/plain')
        .send(DECOMPOSED);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ body: COMPOSED });
    });

    test('query: the password is back under the query parameter, not under the field name', async () => {
      const app = echoApp(express, { from: 'query', handOff: true, query: { parameter: 'pw', warn: quiet } });
      const res = await request(app).post(`${PATH}?pw=${encodeURIComponent(DECOMPOSED)}`);
      expect(res.status).toBe(200);
      const query = (res.body as { query: Record<string, unknown> }).query;
      // Non-enumerable on req.query, so the echo shows neither: read them through the app.
      expect(query).toEqual({});
      const reading = express();
      reading.post(
        '/p',
        passwordBody({ from: 'query', handOff: true, query: { parameter: 'pw', warn: quiet } }),
        (req: Request, res2: Response) => {
          const q = req.query as Record<string, unknown>;
          res2.json({ pw: q['pw'] ?? null, password: q['password'] ?? null });
        },
      );
      const read = await request(reading).post(`/p?pw=${encodeURIComponent(DECOMPOSED)}`);
      expect(read.body).toEqual({ pw: COMPOSED, password: null });
    });
    test('only the fields that were sent are put back: no field appears undefined', async () => {
      const app = express();
      app.post('/servers/:id/password', passwordBody(options), (req: Request, res: Response) => {
        res.json({ keys: Object.keys(req.body as object).sort() });
      });
      app.use(problemHandler({ log: false }));
      const res = await request(app).post(PATH).send({ password: GOOD, note: 'kept' });
      expect(res.body).toEqual({ keys: ['note', 'password'] });
    });
  });

  describe('a request whose client is gone', () => {
    test('reaches no route, even with its password in the query', async () => {
      const ended = new Promise<string>((resolve) => {
        const app = express();
        app.post(
          '/servers/:id/password',
          (req: Request, _res: Response, next: NextFunction) => {
            // As when the client hangs up while an earlier middleware (a lookup) still runs.
            req.destroy();
            setImmediate(next);
          },
          passwordBody({ from: 'query', query: { warn: quiet } }),
          (_req: Request, res: Response) => {
            resolve('route');
            res.end();
          },
        );
        app.use((error: { type?: string }, _req: Request, _res: Response, next: NextFunction) => {
          resolve(error.type ?? 'error');
          next(error);
        });
        app.use(problemHandler({ log: false }));
        request(app)
          .post(`${PATH}?password=${encodeURIComponent(GOOD)}`)
          .catch(() => undefined);
      });
      expect(await ended).toBe('body.aborted');
    });
  });

  describe('the body read here is marked as read, as body-parser marks it', () => {
    test.each([
      ['json', 'application/json', JSON.stringify({ password: GOOD, note: 'kept' }), { note: 'kept' }],
      ['form', 'application/x-www-form-urlencoded', `password=${encodeURIComponent(GOOD)}&note=kept`, { note: 'kept' }],
      ['text', 'text/plain', GOOD, {}],
    ] as const)('%s: a body parser mounted after it skips the body instead of failing on it', async (from, type, body, left) => {
      const parsers = [express.json(), express.urlencoded({ extended: false }), express.text()];
      const app = echoApp(express, { from }, { after: parsers });
      const res = await request(app).post(PATH).set('Content-Type', type).send(body);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD, body: left });
    });
  });

  describe('a body read before it', () => {
    // A 500's detail goes to the log only: the operator reads there what to fix.
    const MISORDERED =
      /The password route is misconfigured: its body was read before passwordBody\(\); mount passwordBody\(\) before any body parser/;
    const send = async (before: RequestHandler): Promise<{ res: request.Response; logged: string }> => {
      const logged: string[] = [];
      const app = express();
      app.post('/servers/:id/password', before, passwordBody(), (_req: Request, res: Response) => {
        res.json({ reached: true });
      });
      app.use(problemHandler({ log: (entry: ProblemLogEntry) => logged.push(entry.error) }));
      const res = await request(app).post(PATH).set('Content-Type', 'text/plain').send(GOOD);
      return { res, logged: logged.join('\n') };
    };

    test('marked read by a parser (req._body) is a 500 misconfiguration, even with the stream untouched', async () => {
      const marked: RequestHandler = (req, _res, next) => {
        (req as { _body?: boolean })._body = true;
        next();
      };
      const { res, logged } = await send(marked);
      expectProblem(res, 500, 'password.misconfigured');
      expect(logged).toMatch(MISORDERED);
    });

    test('read to its end without a mark is the same misconfiguration', async () => {
      const drained: RequestHandler = (req, _res, next: NextFunction) => {
        req.on('end', () => next());
        req.resume();
      };
      const { res, logged } = await send(drained);
      expectProblem(res, 500, 'password.misconfigured');
      expect(logged).toMatch(MISORDERED);
    });

    test('read in part (one chunk, then paused) is the same misconfiguration', async () => {
      const nibbled: RequestHandler = (req, _res, next: NextFunction) => {
        req.once('data', () => {
          req.pause();
          next();
        });
      };
      const { res, logged } = await send(nibbled);
      expectProblem(res, 500, 'password.misconfigured');
      expect(logged).toMatch(MISORDERED);
    });
  });

  describe('request headers', () => {
    const app = echoApp(express, {});
    const post = (): request.Test => request(app).post(PATH).set('Content-Type', 'text/plain');

    test.each(['identity', 'Identity', ' IDENTITY '])(
      'Content-Encoding %j is no compression: the body is read',
      async (value) => {
        const res = await post().set('Content-Encoding', value).send(GOOD);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ password: GOOD });
      },
    );

    test('an empty Content-Encoding is none', async () => {
      const res = await post().set('Content-Encoding', '').send(GOOD);
      expect(res.status).toBe(200);
    });

    test('a compressed body gets 415 saying to send it uncompressed', async () => {
      const res = await post().set('Content-Encoding', 'gzip').send(GOOD);
      expectProblem(
        res,
        415,
        'body.encoding_unsupported',
        'The request body must not be compressed: send it without Content-Encoding.',
      );
    });

    test('a Content-Length of more than 15 digits is refused as invalid, whatever its value', async () => {
      const res = await post().set('Content-Length', '0000000000000025').send(GOOD);
      expectProblem(res, 400, 'body.size_mismatch', 'The request has an invalid Content-Length.');
    });

    test('a POST with Content-Length 0 and no Content-Type has no body: the password is missing, not the type', async () => {
      const res = await request(app).post(PATH).set('Content-Length', '0');
      expectProblem(res, 422, 'password.invalid');
      expect(codes(res)).toEqual(['missing']);
    });

    test('a JSON body that is only a byte-order mark is empty: the password is missing', async () => {
      const res = await request(app)
        .post(PATH)
        .set('Content-Type', 'application/json')
        // As bytes: superagent would serialise a Buffer to JSON.
        .serialize((body: unknown) => body as string)
        .send(Buffer.from([0xef, 0xbb, 0xbf]));
      expectProblem(res, 422, 'password.invalid');
      expect(codes(res)).toEqual(['missing']);
    });

    test('an unsupported type names the accepted ones', async () => {
      const res = await request(app).post(PATH).set('Content-Type', 'application/xml').send('<p/>');
      expectProblem(
        res,
        415,
        'body.unsupported_media_type',
        'The request body must be application/json or text/plain, in UTF-8.',
      );
    });

    test('a charset other than UTF-8 gets 415 saying so', async () => {
      const res = await post().set('Content-Type', 'text/plain; charset=latin1').send(GOOD);
      expectProblem(res, 415, 'body.charset_unsupported', 'The request body charset is not supported; send UTF-8.');
    });
  });

  describe('Content-Type parameters', () => {
    const send = (type: string, options: PasswordBodyOptions = {}): request.Test =>
      request(echoApp(express, options)).post(PATH).set('Content-Type', type).send(GOOD);

    test.each([
      'TEXT/Plain; Charset=UTF-8',
      'text/plain ; charset=utf-8',
      'text/plain;',
      'text/plain; ; charset=utf-8',
      'text/plain; format=flowed',
      'text/plain; charset="utf\\-8"',
    ])('%s is a UTF-8 text body', async (type) => {
      const res = await send(type);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD });
    });

    test('with anyContentType, a malformed Content-Type is no Content-Type: its parameters are not read', async () => {
      const res = await send('not a type; charset=latin1', { from: 'text', anyContentType: true });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD });
    });
  });

  describe('bodies refused with a fixed detail', () => {
    const app = (options: PasswordBodyOptions = {}): Express => echoApp(express, options);
    const raw = (type: string, body: string, options?: PasswordBodyOptions): request.Test =>
      request(app(options))
        .post(PATH)
        .set('Content-Type', type)
        .serialize((value: unknown) => value as string)
        .send(body);

    test('JSON that is no object names the field it should have', async () => {
      const res = await raw('application/json', '["a"]', { field: 'pw' });
      expectProblem(res, 400, 'body.not_object', 'The JSON body must be an object with a "pw" field.');
    });

    test('an escaped lone surrogate says what it is', async () => {
      const res = await raw('application/json', '{"password":"\\ud800 kettle drums"}');
      expectProblem(
        res,
        400,
        'body.lone_surrogate',
        'The JSON body contains an escaped lone surrogate (such as \\uD800), which is not a Unicode character.',
      );
    });

    test('a JSON null or nested null beside the password is no surrogate and no failure', async () => {
      const res = await raw('application/json', JSON.stringify({ password: GOOD, note: null, deep: { v: null } }));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD, body: { note: null, deep: { v: null } } });
    });

    test('a form with a malformed percent-encoding, or one that is not UTF-8 once decoded', async () => {
      const form = 'application/x-www-form-urlencoded';
      expectProblem(
        await raw(form, 'password=%zz', { from: 'form' }),
        400,
        'body.parse_failed',
        'The request body is not valid application/x-www-form-urlencoded: it has a malformed percent-encoding.',
      );
      expectProblem(
        await raw(form, 'password=%C3%28', { from: 'form' }),
        400,
        'body.invalid_utf8',
        'The request body is not valid UTF-8 once percent-decoded.',
      );
    });

    test('a secret field repeated in a form is refused like the password, never guessed', async () => {
      const res = await raw('application/x-www-form-urlencoded', `password=${encodeURIComponent(GOOD)}&current=a&current=b`, {
        from: 'form',
        secretFields: ['current'],
      });
      expectProblem(res, 400, 'body.repeated_field', 'The form has the "current" field more than once; send it once.');
    });

    test('other repeated form fields stay in req.body as every value', async () => {
      const res = await raw('application/x-www-form-urlencoded', `password=${encodeURIComponent(GOOD)}&tag=a&tag=b&one=c`, {
        from: 'form',
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ body: { tag: ['a', 'b'], one: 'c' } });
    });
  });

  describe('query routes', () => {
    const options: PasswordBodyOptions = { from: ['query', 'json'], query: { parameter: 'pw', warn: quiet } };

    test('a password in the body and the query names the parameter in its 400', async () => {
      const res = await request(echoApp(express, options)).post(`${PATH}?pw=x`).send({ password: GOOD });
      expectProblem(
        res,
        400,
        'password.ambiguous',
        'The password was sent both in the request body and in the "pw" query parameter; send it once, in the body.',
      );
    });

    test('a query-only route refusing a body names the parameter to use', async () => {
      const app = echoApp(express, { from: 'query', query: { parameter: 'pw', warn: quiet } });
      const res = await request(app).post(PATH).send({ password: GOOD });
      expectProblem(
        res,
        415,
        'body.unsupported_media_type',
        'This route takes no request body: the password goes in the "pw" query parameter.',
      );
    });

    test('the missing message names every place looked at', async () => {
      const res = await request(echoApp(express, options)).post(PATH).send({ note: 'none' });
      expect(entries(res)).toEqual([
        {
          field: 'password',
          code: 'missing',
          message: 'No password was sent: the body is empty or has no "password" field, and the query has no "pw" parameter.',
        },
      ]);
    });

    test('a password from a query-only route leaves req.body as the app had it', async () => {
      const preset: RequestHandler = (req, _res, next) => {
        req.body = { set: 'by the app' };
        next();
      };
      const app = echoApp(express, { from: 'query', query: { warn: quiet } }, { before: [preset] });
      const res = await request(app).post(`${PATH}?password=${encodeURIComponent(GOOD)}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: GOOD, body: { set: 'by the app' } });
    });
  });

  describe('methods', () => {
    test('HEAD is read only where GET is: a POST-only middleware lets HEAD through', async () => {
      const app = echoApp(express, { methods: ['POST'] });
      expect((await request(app).head(PATH)).status).toBe(200);
      expect((await request(app).post(PATH)).status).toBe(422);
    });
  });

  describe('context', () => {
    test('the context function is not called when no password came', async () => {
      let calls = 0;
      const app = echoApp(express, {
        context: () => {
          calls += 1;
          return ['nova'];
        },
      });
      expect((await request(app).post(PATH).send({ note: 'none' })).status).toBe(422);
      expect(calls).toBe(0);
      expect((await request(app).post(PATH).send({ password: GOOD })).status).toBe(200);
      expect(calls).toBe(1);
    });
  });
});

describe.each(expressVersions)("purpose 'verify' on %s", (_name, express) => {
  // Built in each test, so that a mutant that breaks the factory fails there, not the file.
  const verifier = (): Express => echoApp(express, { purpose: 'verify' });

  test('no content rule applies: a short or listed password gets through', async () => {
    const app = verifier();
    for (const password of ['a', 'password']) {
      const res = await request(app).post(PATH).send({ password });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password });
    }
  });

  test('form bodies are read too, and the limit is 8192 bytes', async () => {
    const app = verifier();
    const form = await request(app).post(PATH).type('application/x-www-form-urlencoded').send('password=a');
    expect(form.status).toBe(200);
    const long = 'x'.repeat(8192);
    expect((await request(app).post(PATH).set('Content-Type', 'text/plain').send(long)).status).toBe(200);
    const over = await request(app).post(PATH).set('Content-Type', 'text/plain').send(`${long}x`);
    expectProblem(over, 413, 'body.too_large');
  });

  test('normalization still applies', async () => {
    const nfkc = echoApp(express, { purpose: 'verify', normalization: 'NFKC' });
    const res = await request(nfkc).post(PATH).send({ password: '\uff41' });
    expect(res.body).toMatchObject({ password: 'a' });
  });
});

describe('passwordBody field options', () => {
  test.each<[string, unknown, RegExp]>([
    ['purpose "check"', { purpose: 'check' }, /option "purpose" must be 'set' or 'verify', got "check"\./],
    [
      'purpose verify with minLength',
      { purpose: 'verify', minLength: 8 },
      /option "minLength" is a content rule, and purpose 'verify' applies none/,
    ],
    [
      'purpose verify with commonPasswords',
      { purpose: 'verify', commonPasswords: false },
      /option "commonPasswords" is a content rule/,
    ],
    ['repeat ""', { repeat: '' }, /option "repeat" must be a non-empty field name, such as "passwordRepeat"\./],
    ['repeat 5', { repeat: 5 }, /option "repeat" must be a non-empty field name/],
    [
      'secretFields "current"',
      { secretFields: 'current' },
      /option "secretFields" must be an array of non-empty field names, such as \["current"\]\./,
    ],
    ['secretFields [""]', { secretFields: [''] }, /option "secretFields" must be an array/],
    ['secretFields [5]', { secretFields: [5] }, /option "secretFields" must be an array/],
    ['secretFields ["a", ""]', { secretFields: ['a', ''] }, /option "secretFields" must be an array/],
    [
      'repeat naming the field',
      { repeat: 'password' },
      /option "repeat" names "password" twice: the password, its repeat and the secret fields must be different fields\./,
    ],
    ['secretFields naming the field', { secretFields: ['password'] }, /option "secretFields" names "password" twice/],
    ['secretFields naming the repeat', { repeat: 'again', secretFields: ['again'] }, /option "repeat" names "again" twice/],
    ['secretFields naming one twice', { secretFields: ['a', 'b', 'a'] }, /option "secretFields" names "a" twice/],
    [
      'a text body with secretFields',
      { from: 'text', secretFields: ['current'] },
      /option "secretFields" needs "json", "form" or "query" in "from": a text body holds one password only\./,
    ],
    ['a text body with a repeat', { from: 'text', repeat: 'again' }, /option "repeat" needs "json", "form" or "query"/],
    ['handOff "yes"', { handOff: 'yes' }, /option "handOff"/],
    ['methods "POST"', { methods: 'POST' }, /option "methods" must be a non-empty array of method names, such as \["POST"\]\./],
    // A number that reads as a token once made a string: refused by its type, not by a crash.
    ['methods [42]', { methods: [42] }, /^passwordBody: option "methods" has 42, which is not an upper-case method name\.$/],
    [
      'methods ["post"]',
      { methods: ['post'] },
      /^passwordBody: option "methods" has "post", which is not an upper-case method name\.$/,
    ],
  ])('%s throws a TypeError naming it', (_label, options, message) => {
    expect(() => passwordBody(options as PasswordBodyOptions)).toThrow(TypeError);
    expect(() => passwordBody(options as PasswordBodyOptions)).toThrow(message);
  });

  test.each<[string, PasswordBodyOptions]>([
    ['secretFields from json', { from: 'json', secretFields: ['current'] }],
    ['secretFields from form', { from: 'form', secretFields: ['current'] }],
    ['a repeat from the query', { from: 'query', repeat: 'again', query: { warn: quiet } }],
    ['purpose verify with a normalization', { purpose: 'verify', normalization: 'NFKC' }],
    ['the largest drainBytes, 16 MiB', { drainBytes: 16 * 1024 * 1024 }],
  ])('%s is accepted', (_label, options) => {
    expect(() => passwordBody(options)).not.toThrow();
  });
});
