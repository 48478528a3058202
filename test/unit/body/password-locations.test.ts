import { inspect } from 'node:util';
import bcrypt from 'bcrypt';
import request from 'supertest';
import type { ErrorRequestHandler, Express, Request, Response } from 'express';
import {
  MemoryStore,
  hashAndStore,
  methodGuard,
  passwordBody,
  passwordVerifier,
  problemHandler,
  validatedPassword,
} from '../../../lib';
import type { PasswordBodyOptions, PasswordLocation } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { sendFrom } from '../../helpers/password';
import { codes, expectNoLeak, expectProblem } from '../../helpers/problem';

const PATH = '/servers/srv-1/password';
const SET_AT = '2026-11-28T18:04:34.000Z';
const PASSWORD = 'tangerine kettle 42 drums';
// Every option that does not concern the location stays at its default, except the
// warning, which every test that reads the query collects instead of printing.
const quiet = (): void => undefined;

/**
 * `POST /servers/:id/password`: passwordBody with `options`, then the real hashing
 * storer on a MemoryStore, then a handler that reports what it saw. A refusal must
 * leave the store as it was.
 */
function storingApp(express: ExpressFactory, options: PasswordBodyOptions, store: MemoryStore): Express {
  const app = express();
  app.post(
    '/servers/:id/password',
    passwordBody(options),
    (req: Request, res: Response, next) => {
      // Test-only: the storer forgets the password, so its length is noted before.
      res.locals['length'] = validatedPassword(req)?.length;
      next();
    },
    hashAndStore({ store, cost: 10 }),
    (req: Request, res: Response) => {
      res.status(201).json({ length: res.locals['length'] as unknown, body: req.body as unknown, url: req.originalUrl });
    },
  );
  app.use(problemHandler({ log: false }));
  return app;
}

/** A route that echoes what passwordBody left on the request (test-only: it shows the password). */
function echoApp(express: ExpressFactory, options: PasswordBodyOptions, path = '/servers/:id/password'): Express {
  const app = express();
  app.all(path, passwordBody(options), (req: Request, res: Response) => {
    res.json({
      password: validatedPassword(req) ?? null,
      body: (req.body as unknown) ?? null,
      url: req.url,
      originalUrl: req.originalUrl,
      query: req.query as unknown,
    });
  });
  app.use(problemHandler({ log: false }));
  return app;
}

const LOCATIONS: readonly PasswordLocation[] = ['json', 'form', 'text', 'query'];

describe.each(expressVersions)('password locations on %s', (_name, express) => {
  describe.each(LOCATIONS)('from: %s', (location) => {
    const options: PasswordBodyOptions = { from: location, ...(location === 'query' ? { query: { warn: quiet } } : {}) };

    test('the password is read, normalised, checked and stored', async () => {
      const store = new MemoryStore();
      const app = storingApp(express, options, store);
      // NFD é: the storer must get the NFC form, whatever the location.
      const res = await sendFrom(app, location, `cafe\u0301 ${PASSWORD}`, PATH);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ length: `café ${PASSWORD}`.length });
      expect(await bcrypt.compare(`café ${PASSWORD}`, store.get('srv-1')?.hash ?? '')).toBe(true);
      expect(res.headers['deprecation']).toBe(location === 'query' ? '@0' : undefined);
    });

    test('no password there: a clean 422 missing that says where it looked, and nothing stored', async () => {
      const store = new MemoryStore();
      const app = storingApp(express, options, store);
      const empty =
        location === 'json'
          ? request(app).post(PATH).type('application/json').send('{"username":"bob"}')
          : location === 'form'
            ? request(app).post(PATH).type('application/x-www-form-urlencoded').send('username=bob')
            : location === 'text'
              ? request(app).post(PATH).set('Content-Type', 'text/plain')
              : request(app).post(`${PATH}?username=bob`);
      const res = await empty;
      expectProblem(res, 422, 'password.invalid');
      const [error] = (res.body as { errors: { field: string; code: string; message: string }[] }).errors;
      expect(error).toEqual({
        field: 'password',
        code: 'missing',
        message:
          location === 'query'
            ? 'No password was sent: the query has no "password" parameter.'
            : location === 'text'
              ? 'No password was sent: the body is empty.'
              : 'No password was sent: the body is empty or has no "password" field.',
      });
      expect(store.size).toBe(0);
      // A missing query password is no use of the query: nothing is deprecated.
      expect(res.headers['deprecation']).toBeUndefined();
    });

    test('the content rules apply here too, and nothing is stored when they fail', async () => {
      const store = new MemoryStore();
      const app = storingApp(express, options, store);
      const res = await sendFrom(app, location, 'password1', PATH);
      expect(res.status).toBe(422);
      expect(codes(res)).toEqual(['common_password']);
      const control = await sendFrom(app, location, 'a long one\u0000with NUL', PATH);
      expect(codes(control)).toEqual(['control_character']);
      expect(store.size).toBe(0);
      expectNoLeak(res, 'password1');
    });

    test.each(LOCATIONS.filter((other) => other !== location))(
      'a password sent in %s instead gets 415, or 422 when it sent no body',
      async (other) => {
        const store = new MemoryStore();
        const app = storingApp(express, options, store);
        const res = await sendFrom(app, other, 'sent-elsewhere-secret', PATH);
        if (other === 'query') {
          // No body: the query is simply not a place this route looks.
          expect(res.status).toBe(422);
          expect(codes(res)).toEqual(['missing']);
        } else {
          expectProblem(res, 415, 'body.unsupported_media_type');
          expect((res.body as { detail: string }).detail).toBe(
            location === 'query'
              ? 'This route takes no request body: the password goes in the "password" query parameter.'
              : `The request body must be ${
                  { json: 'application/json', form: 'application/x-www-form-urlencoded', text: 'text/plain' }[location]
                }, in UTF-8.`,
          );
        }
        expect(store.size).toBe(0);
        expectNoLeak(res, 'sent-elsewhere-secret');
      },
    );
  });

  describe('form bodies', () => {
    const app = echoApp(express, { from: ['json', 'form'], commonPasswords: false });

    test('the field option names the form field; the other fields stay in req.body', async () => {
      const pw = echoApp(express, { from: 'form', field: 'pw' });
      const res = await request(pw).post(PATH).type('form').send('user=bob&pw=correct+horse%2Bbattery&tag=a&tag=b&__proto__=x');
      expect(res.status).toBe(200);
      // `+` is a space and %2B a plus, as browsers encode forms.
      expect(res.body).toMatchObject({ password: 'correct horse+battery', body: { user: 'bob', tag: ['a', 'b'] } });
      expect(Object.keys((res.body as { body: object }).body)).toEqual(['user', 'tag', '__proto__']);
    });

    test('the charset may be UTF-8 only', async () => {
      const ok = await request(app)
        .post(PATH)
        .set('Content-Type', 'application/x-www-form-urlencoded; charset=UTF-8')
        .send('password=ok-form-password');
      expect(ok.status).toBe(200);
      const latin1 = await request(app)
        .post(PATH)
        .set('Content-Type', 'application/x-www-form-urlencoded; charset=iso-8859-1')
        .send('password=latin-secret');
      expectProblem(latin1, 415, 'body.charset_unsupported');
    });

    test('a repeated password field gets 400 body.repeated_field, never a guess', async () => {
      const res = await request(app).post(PATH).type('form').send('password=first-secret-1&password=second-secret-2');
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        code: 'body.repeated_field',
        detail: 'The form has the "password" field more than once; send it once.',
      });
      expectNoLeak(res, 'first-secret-1');
      expectNoLeak(res, 'second-secret-2');
    });

    test.each([
      ['a lone %', 'password=form-secret-%'],
      ['%zz', 'password=form-secret-%zz'],
      ['a truncated escape', 'password=form-secret-%E'],
      ['a bad escape in another field', 'password=form-secret-ok&x=%G1'],
    ])('malformed percent-encoding (%s) gets 400 body.parse_failed', async (_label, body) => {
      const res = await request(app).post(PATH).type('form').send(body);
      expectProblem(res, 400, 'body.parse_failed');
      expectNoLeak(res, 'form-secret');
    });

    test.each([
      ['a truncated sequence', '%C3%28'],
      ['an overlong slash', '%C0%AF'],
      ['an encoded surrogate', '%ED%A0%80'],
      ['a Latin-1 é', '%E9'],
    ])('percent-encoded invalid UTF-8 (%s) gets 400 body.invalid_utf8', async (_label, encoded) => {
      const res = await request(app).post(PATH).type('form').send(`password=form-secret-${encoded}-x`);
      expectProblem(res, 400, 'body.invalid_utf8');
      expectNoLeak(res, 'form-secret');
    });

    test('pairs are split as browsers do: empty pairs skipped, a bare name is an empty value', async () => {
      const res = await request(app).post(PATH).type('form').send('&&user=bob&&flag&password=correct+horse+42&');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ password: 'correct horse 42', body: { user: 'bob', flag: '' } });
      expect(Object.keys((res.body as { body: object }).body)).toEqual(['user', 'flag']);
      // A bare password field is sent empty, like `password=`: refused as such, never a 500.
      const bare = await request(app).post(PATH).type('form').send('user=bob&password');
      const empty = await request(app).post(PATH).type('form').send('user=bob&password=');
      expect(bare.status).toBe(422);
      expect(bare.body).toEqual(empty.body);
    });

    test('raw UTF-8 and percent-encoded UTF-8 are the same password', async () => {
      // Bytes as they are: superagent would serialise a Buffer under a form type.
      const raw = await request(app)
        .post(PATH)
        .type('form')
        .serialize((body: unknown) => body as string)
        .send(Buffer.from('password=caf\u00e9 au lait'));
      const escaped = await request(app).post(PATH).type('form').send('password=caf%C3%A9%20au%20lait');
      expect([raw.status, escaped.status]).toEqual([200, 200]);
      expect((raw.body as { password: string }).password).toBe('café au lait');
      expect((escaped.body as { password: string }).password).toBe('café au lait');
    });

    test('the byte limit counts the form as sent: 1020 bytes pass, 1021 get 413', async () => {
      const big = echoApp(express, { from: 'form', maxLength: 1020, commonPasswords: false });
      const overhead = 'password='.length;
      expect(
        (
          await request(big)
            .post(PATH)
            .type('form')
            .send(`password=${'a'.repeat(1020 - overhead)}`)
        ).status,
      ).toBe(200);
      const over = await request(big)
        .post(PATH)
        .type('form')
        .send(`password=${'b'.repeat(1021 - overhead)}`);
      expectProblem(over, 413, 'body.too_large');
      expectNoLeak(over, 'b'.repeat(40));
    });
  });

  describe('the query string (legacy routes)', () => {
    test('the password leaves req.url, req.originalUrl and req.query; other parameters stay', async () => {
      const app = echoApp(express, { from: 'query', query: { warn: quiet } });
      const res = await request(app).get(`${PATH}?lang=en&password=correct+horse%2Bbattery&x=1`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        password: 'correct horse+battery',
        url: `${PATH}?lang=en&x=1`,
        originalUrl: `${PATH}?lang=en&x=1`,
        query: { lang: 'en', x: '1' },
      });
      const alone = await request(app).get(`${PATH}?password=correct+horse+staple`);
      expect(alone.body).toMatchObject({ url: PATH, originalUrl: PATH, query: {} });
    });

    // parseurl's cache of the URL as it came kept the password on req._parsedUrl, where a
    // handler or an error serialiser that dumps req printed it.
    test('nothing of the password is left on req: dumping req or serialising req.query shows none of it', async () => {
      const app = express();
      app.get(PATH, passwordBody({ from: 'query', query: { warn: quiet } }), (req: Request, res: Response) => {
        res.json({ dump: inspect(req, { depth: 2 }), query: JSON.stringify(req.query), password: validatedPassword(req) });
      });
      app.use(problemHandler({ log: false }));
      const res = await request(app).get(`${PATH}?password=Tangerine-Kettle+42&lang=en`);
      expect(res.status).toBe(200);
      expect(res.body.password).toBe('Tangerine-Kettle 42');
      expect(res.body.query).toBe('{"lang":"en"}');
      expect(res.body.dump).toContain('lang=en');
      expect(res.body.dump).not.toMatch(/Tangerine|Kettle/);
    });

    // Hand-off put the password back on req.query as an ordinary property, and a logger
    // that serialises req.query later in the request (pino's request serializer copies it) wrote it.
    test('hand-off: the handler reads the passwords from req.query by name; serialising req.query shows none', async () => {
      const logged: string[] = [];
      const app = express();
      app.use((req: Request, res: Response, next) => {
        // Mounted first, as an access logger is: it serialises the request when the response ends.
        res.on('finish', () => logged.push(JSON.stringify({ url: req.originalUrl, query: req.query })));
        next();
      });
      app.get(
        PATH,
        passwordBody({ from: 'query', secretFields: ['current'], handOff: true, query: { warn: quiet } }),
        (req: Request, res: Response) => {
          const query = req.query as Record<string, unknown>;
          const { password, current } = query;
          res.json({
            named: [query['password'], password, current],
            keys: Object.keys(query),
            spread: { ...query },
            json: JSON.stringify(req.query),
            inspected: inspect(req.query),
            dump: inspect(req, { depth: 2 }),
          });
        },
      );
      app.use(problemHandler({ log: false }));
      const res = await request(app).get(`${PATH}?current=Old+Marmalade+7&password=Tangerine-Kettle+42&lang=en`);
      expect(res.status).toBe(200);
      const { named, keys, spread, json, inspected, dump } = res.body as Record<string, unknown>;
      expect(named).toEqual(['Tangerine-Kettle 42', 'Tangerine-Kettle 42', 'Old Marmalade 7']);
      expect({ keys, spread, json, inspected }).toEqual({
        keys: ['lang'],
        spread: { lang: 'en' },
        json: '{"lang":"en"}',
        inspected: "{ lang: 'en' }",
      });
      expect(dump).not.toMatch(/Tangerine|Kettle|Marmalade/);
      expect(logged).toEqual([JSON.stringify({ url: `${PATH}?lang=en`, query: { lang: 'en' } })]);
    });

    test('mounted with app.use on a path, the URL stays clean when Express puts the prefix back', async () => {
      const app = express();
      const seenInside: string[] = [];
      app.use('/legacy', passwordBody({ from: 'query', query: { warn: quiet } }), (req: Request, _res: Response, next) => {
        seenInside.push(req.url);
        next();
      });
      app.get('/legacy/check', (req: Request, res: Response) => {
        res.json({ password: validatedPassword(req), url: req.url, originalUrl: req.originalUrl });
      });
      app.use(problemHandler({ log: false }));
      const res = await request(app).get('/legacy/check?password=correct+horse+staple&keep=1');
      expect(seenInside).toEqual(['/check?keep=1']);
      expect(res.body).toEqual({
        password: 'correct horse staple',
        url: '/legacy/check?keep=1',
        originalUrl: '/legacy/check?keep=1',
      });
    });

    test('every response that read it says Deprecation, refusals too; others do not', async () => {
      const app = echoApp(express, { from: ['json', 'query'], query: { warn: quiet } });
      const ok = await request(app).post(`${PATH}?password=correct+horse+staple`);
      expect(ok.status).toBe(200);
      expect(ok.headers['deprecation']).toBe('@0');
      expect(ok.headers['link']).toBeUndefined();
      expect(ok.headers['sunset']).toBeUndefined();
      const refused = await request(app).post(`${PATH}?password=short`);
      expect(refused.status).toBe(422);
      expect(refused.headers['deprecation']).toBe('@0');
      const body = await request(app).post(PATH).send({ password: 'correct horse staple' });
      expect(body.status).toBe(200);
      expect(body.headers['deprecation']).toBeUndefined();
    });

    test('deprecation, sunset and link options fill Deprecation, Sunset and Link', async () => {
      const app = express();
      app.post(
        '/servers/:id/password',
        (_req: Request, res: Response, next) => {
          res.append('Link', '</servers>; rel="collection"');
          next();
        },
        passwordBody({
          from: 'query',
          query: {
            warn: quiet,
            deprecation: new Date('2026-12-01T00:00:00Z'),
            sunset: new Date('2027-06-01T00:00:00Z'),
            link: 'https://docs.example.com/api/password in body',
          },
        }),
        (_req: Request, res: Response) => {
          res.status(204).end();
        },
      );
      const res = await request(app).post(`${PATH}?password=correct+horse+staple`);
      expect(res.status).toBe(204);
      expect(res.headers['deprecation']).toBe(`@${Date.UTC(2026, 11, 1) / 1000}`);
      expect(res.headers['sunset']).toBe('Tue, 01 Jun 2027 00:00:00 GMT');
      expect(res.headers['link']).toBe(
        '</servers>; rel="collection", <https://docs.example.com/api/password%20in%20body>; rel="deprecation"',
      );
    });

    test('a bare parameter is an empty value and leaves the URL too; a malformed name is a 400', async () => {
      const app = echoApp(express, { from: 'query', query: { warn: quiet } });
      const bare = await request(app).get(`${PATH}?lang=en&password`);
      const empty = await request(app).get(`${PATH}?lang=en&password=`);
      expect(bare.status).toBe(422);
      expect(bare.body).toEqual(empty.body);
      const short = echoApp(express, { from: 'query', commonPasswords: false, minLength: 1, query: { warn: quiet } });
      // A one-character password, so the bare name is read as '' and refused, never as anything else.
      expect((await request(short).get(`${PATH}?lang=en&password`)).body).toMatchObject({
        errors: [{ field: 'password', code: 'too_short' }],
      });
      const kept = echoApp(express, { from: 'query', secretFields: ['current'], query: { warn: quiet } });
      const scrubbed = await request(kept).get(`${PATH}?lang=en&current&password=correct+horse+staple&flag`);
      expect(scrubbed.body).toMatchObject({ url: `${PATH}?lang=en&flag`, originalUrl: `${PATH}?lang=en&flag` });
      const malformed = await request(app).get(`${PATH}?pass%zzword=x&password=correct+horse+staple`);
      expectProblem(malformed, 400, 'query.parse_failed', 'The query string has a malformed percent-encoding.');
    });

    test('a handler after hand-off may still change or replace req.query', async () => {
      const app = express();
      app.get(PATH, passwordBody({ from: 'query', handOff: true, query: { warn: quiet } }), (req: Request, res: Response) => {
        const query = req.query as Record<string, unknown>;
        query['password'] = 'changed by the app';
        const changed = query['password'];
        delete query['password'];
        const deleted = 'password' in query;
        Object.assign(req, { query: { replaced: '1' } });
        res.json({ changed, deleted, replaced: req.query });
      });
      app.use(problemHandler({ log: false }));
      const res = await request(app).get(`${PATH}?password=correct+horse+staple`);
      expect(res.body).toEqual({ changed: 'changed by the app', deleted: false, replaced: { replaced: '1' } });
    });

    test('a repeated parameter gets 400 query.repeated_parameter', async () => {
      const app = echoApp(express, { from: 'query', query: { warn: quiet } });
      const res = await request(app).get(`${PATH}?password=first-secret-1&password=second-secret-2`);
      expectProblem(
        res,
        400,
        'query.repeated_parameter',
        'The query string has the "password" parameter more than once; send it once.',
      );
      expect(res.headers['deprecation']).toBe('@0');
      expectNoLeak(res, 'first-secret-1');
      expectNoLeak(res, 'second-secret-2');
    });

    test.each([
      ['%zz', 'query.parse_failed'],
      ['%', 'query.parse_failed'],
      ['%C3%28', 'query.invalid_utf8'],
      ['%C0%AF', 'query.invalid_utf8'],
      ['%ED%A0%80', 'query.invalid_utf8'],
      ['%E9', 'query.invalid_utf8'],
    ])('%s in the value gets 400 %s', async (encoded, code) => {
      const app = echoApp(express, { from: 'query', query: { warn: quiet } });
      const res = await request(app).get(`${PATH}?password=query-secret-${encoded}-x`);
      expectProblem(
        res,
        400,
        code,
        code === 'query.parse_failed'
          ? 'The query string has a malformed percent-encoding.'
          : 'The query string is not valid UTF-8 once percent-decoded.',
      );
      expectNoLeak(res, 'query-secret');
    });

    test('the byte limit counts the decoded value: 510 × é (1020 bytes) pass, 511 get 414', async () => {
      const app = echoApp(express, { from: 'query', maxLength: 1020, commonPasswords: false, query: { warn: quiet } });
      const fits = await request(app).get(`${PATH}?password=${encodeURIComponent('é'.repeat(510))}`);
      expect(fits.status).toBe(200);
      expect((fits.body as { password: string }).password).toBe('é'.repeat(510));
      const over = await request(app).get(`${PATH}?password=${encodeURIComponent('é'.repeat(511))}`);
      expect(over.status).toBe(414);
      expect(over.body).toMatchObject({
        code: 'query.too_large',
        detail: 'The "password" query parameter is larger than the limit of 1020 bytes.',
      });
    });

    test('a password both in the body and in the query gets 400 password.ambiguous', async () => {
      const app = echoApp(express, { from: ['json', 'query'], query: { warn: quiet } });
      const res = await request(app).post(`${PATH}?password=query-secret-1`).send({ password: 'body-secret-22' });
      expectProblem(res, 400, 'password.ambiguous');
      expectNoLeak(res, 'query-secret-1');
      expectNoLeak(res, 'body-secret-22');
    });

    test('a query-only route refuses a body with 415, even with no password in the query', async () => {
      const app = echoApp(express, { from: 'query', query: { warn: quiet } });
      const res = await request(app).post(PATH).send({ password: 'body-secret-22' });
      expectProblem(res, 415, 'body.unsupported_media_type');
    });

    test('query.parameter reads another name; the field of errors stays `field`', async () => {
      const app = echoApp(express, { from: 'query', query: { parameter: 'pw', warn: quiet } });
      expect((await request(app).get(`${PATH}?pw=correct+horse+staple`)).body).toMatchObject({
        password: 'correct horse staple',
      });
      const absent = await request(app).get(`${PATH}?password=correct+horse+staple`);
      expect(absent.status).toBe(422);
      expect((absent.body as { errors: unknown[] }).errors).toEqual([
        { field: 'password', code: 'missing', message: 'No password was sent: the query has no "pw" parameter.' },
      ]);
    });

    test('the password in the query never reaches a problem body or the error log', async () => {
      const logged: string[] = [];
      const app = express();
      app.get('/legacy/check', passwordBody({ from: 'query', query: { warn: quiet } }), (req: Request) => {
        throw new Error(`lookup failed for ${req.originalUrl} (${req.url})`);
      });
      const handler: ErrorRequestHandler = problemHandler({ log: (entry) => logged.push(JSON.stringify(entry)) });
      app.use(handler);
      const res = await request(app).get('/legacy/check?password=log-me-not-secret&x=1');
      expect(res.status).toBe(500);
      expectNoLeak(res, 'log-me-not-secret');
      expect(logged).toHaveLength(1);
      expect(logged[0]).toContain('lookup failed for /legacy/check?x=1');
      expect(logged.join('\n')).not.toContain('log-me-not-secret');
    });
  });

  describe('a legacy GET route kept behind the method guard', () => {
    async function legacyApp(): Promise<{ app: Express; store: MemoryStore; warnings: string[] }> {
      const store = new MemoryStore();
      store.setIfAbsent('srv-1', { hash: await bcrypt.hash(PASSWORD, 10), setAt: SET_AT, scheme: 'bcrypt' });
      const warnings: string[] = [];
      const app = express();
      // The legacy front end calls GET /servers/:id/password/check?password=…
      const route = app.route('/servers/:id/password/check');
      route.all(methodGuard(['GET']));
      route.get(
        passwordBody({ from: 'query', minLength: 1, commonPasswords: false, query: { warn: (m) => warnings.push(m) } }),
        passwordVerifier({ store, cost: 10 }),
        (_req: Request, res: Response) => {
          res.json({ match: true });
        },
      );
      app.use(problemHandler({ log: false }));
      return { app, store, warnings };
    }

    test('GET with the password in the query works, deprecated; a wrong one gets 403', async () => {
      const { app, warnings } = await legacyApp();
      const ok = await request(app).get(`/servers/srv-1/password/check?password=${encodeURIComponent(PASSWORD)}`);
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ match: true });
      expect(ok.headers['deprecation']).toBe('@0');
      const wrong = await request(app).get('/servers/srv-1/password/check?password=not+it');
      expectProblem(wrong, 403, 'password.mismatch');
      expect(wrong.headers['deprecation']).toBe('@0');
      const missing = await request(app).get('/servers/srv-1/password/check');
      expect(missing.status).toBe(422);
      expect(warnings).toHaveLength(1);
    });

    test('HEAD is read like GET, so it cannot skip the check', async () => {
      const { app } = await legacyApp();
      expect((await request(app).head(`/servers/srv-1/password/check?password=${encodeURIComponent(PASSWORD)}`)).status).toBe(
        200,
      );
      expect((await request(app).head('/servers/srv-1/password/check?password=not+it')).status).toBe(403);
      expect((await request(app).head('/servers/srv-1/password/check')).status).toBe(422);
    });

    test.each(['POST', 'PUT', 'PATCH', 'DELETE'])('%s gets 405 with Allow, and its detail has no query', async (method) => {
      const { app, store } = await legacyApp();
      const before = store.get('srv-1');
      const agent = request(app) as unknown as Record<string, (url: string) => request.Test>;
      const res = await agent[method.toLowerCase()]!.call(agent, '/servers/srv-1/password/check?password=method-secret-1')
        .type('application/json')
        .send(JSON.stringify({ password: 'method-secret-2' }));
      expect(res.status).toBe(405);
      expect(res.headers['allow']).toBe('GET, HEAD, OPTIONS');
      expect(res.body).toMatchObject({
        code: 'method.not_allowed',
        detail: `The method ${method} is not allowed on /servers/srv-1/password/check. Allowed methods: GET, HEAD, OPTIONS.`,
      });
      expectNoLeak(res, 'method-secret');
      expect(store.get('srv-1')).toEqual(before);
    });
  });

  describe('the verify path', () => {
    describe.each(LOCATIONS)('passwordVerifier behind passwordBody({ from: %s })', (location) => {
      test('the right password matches, a wrong one gets 403, none gets 422', async () => {
        const store = new MemoryStore();
        store.setIfAbsent('srv-1', { hash: await bcrypt.hash(PASSWORD, 10), setAt: SET_AT, scheme: 'bcrypt' });
        const app = express();
        app.post(
          '/servers/:id/password/verify',
          // Verifying applies no content rule: a short or listed password must still verify.
          passwordBody({
            from: location,
            minLength: 1,
            commonPasswords: false,
            ...(location === 'query' ? { query: { warn: quiet } } : {}),
          }),
          passwordVerifier({ store, cost: 10 }),
          (_req: Request, res: Response) => {
            res.json({ match: true });
          },
        );
        app.use(problemHandler({ log: false }));
        const verifyPath = '/servers/srv-1/password/verify';
        const right = await sendFrom(app, location, PASSWORD, verifyPath);
        expect(right.status).toBe(200);
        expect(right.body).toEqual({ match: true });
        const wrong = await sendFrom(app, location, 'x', verifyPath);
        expectProblem(wrong, 403, 'password.mismatch');
        const none = {
          json: () => request(app).post(verifyPath).type('json').send('{}'),
          form: () => request(app).post(verifyPath).type('form').send('other=1'),
          text: () => request(app).post(verifyPath).set('Content-Type', 'text/plain'),
          query: () => request(app).post(`${verifyPath}?other=1`),
        }[location];
        const missing = await none();
        expect(missing.status).toBe(422);
        expect(codes(missing)).toEqual(['missing']);
      });
    });
  });
});

describe('the start-up warning', () => {
  test('a middleware reading the query writes exactly one warning, when it is built', async () => {
    const warnings: string[] = [];
    const middleware = passwordBody({ from: ['json', 'query'], query: { warn: (message) => warnings.push(message) } });
    expect(warnings).toEqual([
      'passwordBody: the password is read from the "password" query parameter. Query strings are written to access ' +
        'logs, proxy logs and browser history: keep this for legacy clients only, and move them to a POST body ' +
        '(their responses carry a Deprecation header).',
    ]);
    const app = expressVersions[1]![1]();
    app.get('/p', middleware, (_req: Request, res: Response) => {
      res.status(204).end();
    });
    await request(app).get('/p?password=correct+horse+staple').expect(204);
    await request(app).get('/p?password=correct+horse+staple').expect(204);
    expect(warnings).toHaveLength(1);
  });

  test('routes that do not read the query write none', () => {
    const warn = jest.fn();
    const emit = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      passwordBody();
      passwordBody({ from: ['json', 'form', 'text'] });
      passwordBody({ from: 'form' });
      expect(emit).not.toHaveBeenCalled();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      emit.mockRestore();
    }
  });

  test('by default it is a process warning of type SecurityWarning', () => {
    // Jest gives each test file its own `process` object, so Node's 'warning' event does
    // not reach it; the call itself is what is checked.
    const emit = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      passwordBody({ from: 'query', query: { parameter: 'pw' } });
      expect(emit).toHaveBeenCalledTimes(1);
      expect(emit).toHaveBeenCalledWith(
        expect.stringMatching(/^passwordBody: the password is read from the "pw" query parameter\./),
        { type: 'SecurityWarning', code: 'EXPRESS_PASSWORD_GUARD_QUERY_PASSWORD' },
      );
    } finally {
      emit.mockRestore();
    }
  });

  test('a middleware that fails to build writes no warning', () => {
    const warn = jest.fn();
    expect(() => passwordBody({ from: 'query', minLength: 0, query: { warn } })).toThrow(/minLength/);
    expect(() => passwordBody({ from: 'query', methods: ['get'], query: { warn } })).toThrow(/methods/);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('location options', () => {
  test.each<[string, unknown, RegExp]>([
    [
      'from "xml"',
      { from: 'xml' },
      /option "from" must be one of, or a non-empty array of, "json", "form", "text", "query"; got "xml"/,
    ],
    ['from []', { from: [] }, /option "from"/],
    ['from ["json", 5]', { from: ['json', 5] }, /option "from" .*got \["json", number\]/],
    ['from 5', { from: 5 }, /option "from"/],
    // `accept`, an older name of `from` in a 0.1.0 that never shipped, is gone.
    ['accept ["text"]', { accept: ['text'] }, /unknown option "accept"\. Known options: .*\bfrom\b/],
    ['from and accept', { from: ['json'], accept: ['json'] }, /unknown option "accept"/],
    ['query without "query" in from', { query: {} }, /option "query" is set but "from" does not list "query"/],
    [
      'an unknown query key',
      { from: 'query', query: { paramter: 'pw' } },
      /option "query": unknown option "paramter"\. Did you mean "parameter"\?/,
    ],
    ['query.parameter ""', { from: 'query', query: { parameter: '' } }, /option "query\.parameter" must be a non-empty string/],
    [
      'query.deprecation a string',
      { from: 'query', query: { deprecation: '2026-12-01' } },
      /option "query\.deprecation" must be a valid Date/,
    ],
    [
      'query.deprecation an invalid Date',
      { from: 'query', query: { deprecation: new Date('soon') } },
      /option "query\.deprecation"/,
    ],
    [
      'query.sunset before the deprecation',
      { from: 'query', query: { deprecation: new Date(2000), sunset: new Date(1000) } },
      /option "query\.sunset" must not be before/,
    ],
    ['query.link relative', { from: 'query', query: { link: '/docs' } }, /option "query\.link" must be an absolute URL/],
    [
      'query.link a URL object',
      { from: 'query', query: { link: new URL('https://docs.example.com/') } },
      /option "query\.link" must be an absolute URL/,
    ],
    [
      'query.parameter a number',
      { from: 'query', query: { parameter: 5 } },
      /option "query\.parameter" must be a non-empty string/,
    ],
    ['query.sunset a string', { from: 'query', query: { sunset: '2027-06-01' } }, /option "query\.sunset" must be a valid Date/],
    ['query.warn a string', { from: 'query', query: { warn: 'console' } }, /option "query\.warn" must be a function/],
    ['query.warn false', { from: 'query', query: { warn: false } }, /option "query\.warn" must be a function/],
  ])('%s throws a TypeError naming it', (_label, options, message) => {
    const build = (): unknown => passwordBody(options as PasswordBodyOptions);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(message);
  });

  test('query.sunset may be the deprecation date itself', () => {
    const at = new Date('2027-06-01T00:00:00Z');
    expect(() => passwordBody({ from: 'query', query: { warn: quiet, deprecation: at, sunset: new Date(at) } })).not.toThrow();
  });

  test('the defaults: methods grow GET and HEAD only when reading the query', async () => {
    const express = expressVersions[0]![1];
    const bodyOnly = echoApp(express, {});
    const get = await request(bodyOnly).get(`${PATH}?password=correct+horse+staple`);
    // Not read, and so not taken out of the URL either.
    expect(get.body).toMatchObject({ password: null, url: `${PATH}?password=correct+horse+staple` });
    const queryOnly = echoApp(express, { from: 'query', query: { warn: quiet } });
    for (const method of ['get', 'post', 'put', 'patch'] as const) {
      const res = await request(queryOnly)[method](`${PATH}?password=correct+horse+staple`);
      expect(res.body).toMatchObject({ password: 'correct horse staple' });
    }
    const del = await request(queryOnly).delete(`${PATH}?password=correct+horse+staple`);
    expect(del.body).toMatchObject({ password: null });
  });
});
