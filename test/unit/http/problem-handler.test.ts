import createError from 'http-errors';
import express5 from 'express';
import request from 'supertest';
import { problem, problemHandler, markSecret, notFound } from '../../../lib';
import type { ProblemLogEntry } from '../../../lib';
import type { ExpressFactory, Handler } from '../../helpers/express';
import { expressVersions } from '../../helpers/express';
import { expectProblem } from '../../helpers/problem';

function failingApp(express: ExpressFactory, fail: Handler, log: ((e: ProblemLogEntry) => void) | false = false) {
  const app = express();
  app.use(express.json({ limit: 20 }));
  app.post('/r', fail);
  app.get('/r', fail);
  app.use(notFound());
  app.use(problemHandler({ log }));
  return app;
}

describe.each(expressVersions)('problemHandler on %s', (_name, express) => {
  test('a package problem keeps its type, detail, headers and errors', async () => {
    const app = failingApp(express, (_req, _res, next) => {
      next(
        problem(422, 'password.invalid', 'The password breaks 2 rules.', {
          headers: { 'X-Extra': 'yes' },
          errors: [
            { field: 'password', code: 'too_short', message: 'At least 8 characters.' },
            { field: 'password', code: 'common_password', message: 'Too common.' },
          ],
        }),
      );
    });
    const res = await request(app).get('/r');
    expectProblem(res, 422, 'password.invalid');
    expect(res.headers['x-extra']).toBe('yes');
    expect(res.body).toEqual({
      type: 'urn:express-password-guard:password.invalid',
      title: 'Unprocessable Entity',
      status: 422,
      code: 'password.invalid',
      detail: 'The password breaks 2 rules.',
      errors: [
        { field: 'password', code: 'too_short', message: 'At least 8 characters.' },
        { field: 'password', code: 'common_password', message: 'Too common.' },
      ],
    });
  });

  test('a throwing handler gives a 500 with no message or stack, and logs scrubbed', async () => {
    const logged: ProblemLogEntry[] = [];
    const app = failingApp(
      express,
      (req) => {
        markSecret(req, 'S3cret-pass');
        throw new Error('db failed for S3cret-pass at /srv/app/store.js');
      },
      (entry) => logged.push(entry),
    );
    const res = await request(app).get('/r?password=S3cret-pass');
    expectProblem(res, 500, 'server.error');
    expect(res.body).toEqual({
      type: 'urn:express-password-guard:server.error',
      title: 'Internal Server Error',
      status: 500,
      code: 'server.error',
      detail: 'The server could not complete the request.',
    });
    expect(res.text).not.toMatch(/db failed|store\.js|at |S3cret/);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.path).toBe('/r');
    expect(logged[0]?.error).toContain('db failed for [redacted]');
    expect(logged[0]?.error).not.toContain('S3cret-pass');
  });

  // Issue 14 defect 2: every busy 503 wrote a stack trace to the log.
  test('busy refusals (503 password.busy) are counted and logged once per interval, with no stack', async () => {
    const logged: ProblemLogEntry[] = [];
    const app = failingApp(
      express,
      (_req, _res, next) => {
        next(
          problem(503, 'password.busy', 'Too many passwords are being hashed right now; retry in 1 second.', {
            headers: { 'Retry-After': '1' },
          }),
        );
      },
      (entry) => logged.push(entry),
    );
    for (let i = 0; i < 20; i++) {
      const res = await request(app).get('/r');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
    }
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ status: 503, code: 'password.busy' });
    expect(logged[0]?.error).toBe('1 request refused: the hash limiter was full (overload, not a fault).');
    expect(logged[0]?.error).not.toMatch(/\n\s+at /);
  });

  test('a 5xx http-error does not show its message, even when exposed', async () => {
    const app = failingApp(express, (_req, _res, next) => {
      next(createError(503, 'pool exhausted on host db-7', { expose: true }));
    });
    const res = await request(app).get('/r');
    expect(res.status).toBe(503);
    expect(res.body.detail).toBe('The server could not complete the request.');
  });

  test('a thrown non-error value becomes a 500', async () => {
    const app = failingApp(express, (_req, _res, next) => {
      next('a string');
    });
    expect((await request(app).get('/r')).status).toBe(500);
  });

  test('an exposed 4xx from user code keeps its message, scrubbed of request secrets', async () => {
    const app = failingApp(express, (req, _res, next) => {
      markSecret(req, 'pa55word!');
      next(createError(409, 'already set to pa55word!'));
    });
    const res = await request(app).get('/r');
    expectProblem(res, 409, 'http.409', 'already set to [redacted]');
  });

  test('body-parser: too large → 413 with a fixed text', async () => {
    const app = failingApp(express, (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app)
      .post('/r')
      .send({ password: 'x'.repeat(100) });
    expectProblem(res, 413, 'body.too_large', 'The request body is larger than the limit of 20 bytes.');
    expect(res.text).not.toContain('xxxx');
  });

  test('body-parser: malformed JSON → 400 that never quotes the body', async () => {
    const app = failingApp(express, (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app).post('/r').set('Content-Type', 'application/json').send('hunter2!!');
    expectProblem(res, 400, 'body.parse_failed');
    expect(res.text).not.toContain('hunter2');
  });

  test('body-parser: unsupported charset and encoding → 415', async () => {
    const app = failingApp(express, (_req, res) => {
      res.json({ ok: true });
    });
    const charset = await request(app).post('/r').set('Content-Type', 'application/json; charset=koi8-r').send('{}');
    expectProblem(charset, 415, 'body.charset_unsupported');
    const encoding = await request(app)
      .post('/r')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'x-custom')
      .send('{}');
    expectProblem(encoding, 415, 'body.encoding_unsupported');
  });

  test('notFound answers a JSON 404 with the path escaped', async () => {
    const app = failingApp(express, (_req, res) => {
      res.json({ ok: true });
    });
    const res = await request(app).get('/%3Cscript%3Ealert(1)%3C/script%3E');
    expectProblem(res, 404, 'route.not_found');
    expect(res.text).not.toContain('<');
  });

  test('HEAD errors carry the status and headers but no body', async () => {
    const app = failingApp(express, (_req, _res, next) => {
      next(problem(404, 'route.not_found', 'nothing'));
    });
    const res = await request(app).head('/r');
    expect(res.status).toBe(404);
    expect(res.text ?? '').toBe('');
  });

  test('typeBase sets the type URI prefix', async () => {
    const app = express();
    app.use(notFound());
    app.use(problemHandler({ typeBase: 'https://docs.example/problems/', log: false }));
    const res = await request(app).get('/nowhere');
    expect(res.body.type).toBe('https://docs.example/problems/route.not_found');
  });
});

describe('problemHandler options', () => {
  test.each([
    [{ typeBase: 3 }, /option "typeBase" must be a string/],
    [{ log: 'console' }, /option "log" must be a function or false/],
    [{ logger: false }, /unknown option "logger"/],
  ])('%j throws', (options, message) => {
    expect(() => problemHandler(options as never)).toThrow(message);
  });

  test('the default log writes one console.error line for a 5xx and none for a 4xx', async () => {
    const spy = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const app = express5();
      app.get('/boom', () => {
        throw new Error('kaput');
      });
      app.use(notFound());
      app.use(problemHandler());
      await request(app).get('/boom');
      await request(app).get('/missing');
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0]?.[0])).toMatch(/^express-password-guard: 500 server\.error on GET \/boom/);
    } finally {
      spy.mockRestore();
    }
  });
});
