import request from 'supertest';
import { markSecret, notFound, openStackComputeFormat, problem, problemHandler, proxyStatuses } from '../../../lib';
import type { ErrorFormatter, ProblemHandlerOptions, ProblemLogEntry } from '../../../lib';
import type { ExpressFactory, Handler } from '../../helpers/express';
import { expressVersions } from '../../helpers/express';
import { expectProblem } from '../../helpers/problem';

const SECRET = 'hunter2-correct-horse';

function appWith(express: ExpressFactory, fail: Handler, options: ProblemHandlerOptions = {}) {
  const app = express();
  app.all('/r', fail);
  app.use(notFound());
  app.use(problemHandler({ log: false, ...options }));
  return app;
}

const denied: Handler = (_req, _res, next) => {
  next(problem(404, 'ownership.denied', 'The resource does not exist or the caller may not access it.'));
};

describe.each(expressVersions)('error formats on %s', (_name, express) => {
  test('problem+json stays the default', async () => {
    const res = await request(appWith(express, denied)).get('/r');
    expectProblem(res, 404, 'ownership.denied');
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('openstack-compute writes the Nova fault body that novaclient parses', async () => {
    const cases: Array<[number, string, string]> = [
      [400, 'badRequest', 'body.parse_failed'],
      [401, 'unauthorized', 'ownership.unauthenticated'],
      [403, 'forbidden', 'x.forbidden'],
      [404, 'itemNotFound', 'ownership.denied'],
      [405, 'badMethod', 'method.not_allowed'],
      [409, 'conflictingRequest', 'password.already_set'],
      [413, 'overLimit', 'body.too_large'],
      [415, 'badMediaType', 'body.unsupported_media_type'],
      [422, 'computeFault', 'password.invalid'],
      [503, 'serviceUnavailable', 'x.busy'],
    ];
    for (const [status, name, code] of cases) {
      const app = appWith(express, (_req, _res, next) => next(problem(status, code, `Detail of ${status}.`)), {
        format: 'openstack-compute',
      });
      const res = await request(app).get('/r');
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.body).toEqual({
        [name]: { code: status, message: status === 500 ? expect.any(String) : `Detail of ${status}.` },
      });
    }
  });

  test('openstack-compute: the individual faults are in the message, and the route-less 404 is a fault too', async () => {
    const app = appWith(
      express,
      (_req, _res, next) =>
        next(
          problem(422, 'password.invalid', 'The password was refused.', {
            errors: [{ field: 'password', code: 'too_short', message: 'At least 8 characters.' }],
          }),
        ),
      { format: openStackComputeFormat },
    );
    expect((await request(app).get('/r')).body).toEqual({
      computeFault: { code: 422, message: 'The password was refused. At least 8 characters.' },
    });
    const missing = await request(app).get('/elsewhere');
    expect(missing.status).toBe(404);
    expect(Object.keys(missing.body)).toEqual(['itemNotFound']);
  });

  test('text writes a plain body with no markup sniffing and no store', async () => {
    const res = await request(appWith(express, denied, { format: 'text' })).get('/r');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toBe('404 Not Found\n\nThe resource does not exist or the caller may not access it.\n');
  });

  test('a 5xx never leaks its message in any format, and is logged once', async () => {
    for (const format of ['problem+json', 'openstack-compute', 'text'] as const) {
      const logged: ProblemLogEntry[] = [];
      const app = appWith(
        express,
        (req) => {
          markSecret(req, SECRET);
          throw new Error(`database said: ${SECRET} at /srv/db`);
        },
        { format, log: (entry) => logged.push(entry) },
      );
      const res = await request(app).get('/r');
      expect(res.status).toBe(500);
      expect(res.text).not.toContain(SECRET);
      expect(res.text).not.toContain('database said');
      expect(res.text).toContain('The server could not complete the request.');
      expect(logged).toHaveLength(1);
      expect(logged[0]?.error).not.toContain(SECRET);
    }
  });

  test('a custom formatter keeps the redaction: secret-naming keys are dropped and secrets scrubbed from text', async () => {
    const leaky: ErrorFormatter = (error) => ({
      contentType: 'application/vnd.legacy+json',
      body: { fault: { status: error.status, reason: error.detail, password: SECRET, nested: { token: 't' } } },
    });
    const app = appWith(express, denied, { format: leaky });
    const res = await request(app).get('/r');
    expect(res.headers['content-type']).toBe('application/vnd.legacy+json; charset=utf-8');
    expect(JSON.parse(res.text)).toEqual({ fault: { status: 404, reason: expect.any(String), nested: {} } });

    const echoing: ErrorFormatter = () => ({ contentType: 'text/plain', body: `you sent ${SECRET}` });
    const echoApp = appWith(
      express,
      (req, _res, next) => {
        markSecret(req, SECRET);
        next(problem(400, 'x.bad', 'Bad.'));
      },
      { format: echoing },
    );
    const echoed = await request(echoApp).get('/r');
    expect(echoed.text).toBe('you sent [redacted]');
  });

  test('a formatter that throws still answers, generically, and a bad content type is not sent', async () => {
    const logged: ProblemLogEntry[] = [];
    const throwing: ErrorFormatter = () => {
      throw new Error(`formatter broke on ${SECRET}`);
    };
    const app = appWith(express, denied, { format: throwing, log: (entry) => logged.push(entry) });
    const res = await request(app).get('/r');
    expect(res.status).toBe(404);
    expect(res.text).toBe('404 Not Found\n');
    expect(logged).toHaveLength(1);

    const injecting: ErrorFormatter = () => ({ contentType: 'text/html\r\nSet-Cookie: a=b', body: '<b>x</b>' });
    const injected = await request(appWith(express, denied, { format: injecting })).get('/r');
    expect(injected.headers['content-type']).toBe('application/octet-stream');
    expect(injected.headers['set-cookie']).toBeUndefined();
  });

  test('statusMap sends the mapped status, in the body too, and drops a challenge off a 401', async () => {
    const unauthenticated: Handler = (_req, _res, next) => {
      next(
        problem(401, 'ownership.unauthenticated', 'The request does not identify its caller.', {
          headers: { 'WWW-Authenticate': 'Signature realm="metadata"' },
        }),
      );
    };
    const app = appWith(express, unauthenticated, { statusMap: { 401: 403 } });
    const res = await request(app).get('/r');
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ status: 403, title: 'Forbidden', code: 'ownership.unauthenticated' });
    expect(res.headers['www-authenticate']).toBeUndefined();

    const unmapped = await request(appWith(express, unauthenticated)).get('/r');
    expect(unmapped.status).toBe(401);
    expect(unmapped.headers['www-authenticate']).toBe('Signature realm="metadata"');
  });

  test('proxyStatuses: only the statuses the proxy passes ever leave', async () => {
    const statusMap = proxyStatuses([400, 403, 404, 409, 500], { 401: 403 });
    for (const raised of [400, 401, 403, 404, 405, 406, 408, 409, 411, 413, 415, 422, 429, 500, 502, 503]) {
      const app = appWith(express, (_req, _res, next) => next(problem(raised, 'x.y', 'Detail.')), { format: 'text', statusMap });
      const res = await request(app).get('/r');
      const expected = raised === 401 ? 403 : [400, 403, 404, 409, 500].includes(raised) ? raised : raised >= 500 ? 500 : 400;
      expect([raised, res.status]).toEqual([raised, expected]);
    }
  });

  test('a status mapping function that answers nonsense gives 500', async () => {
    const app = appWith(express, denied, { statusMap: () => 200 });
    expect((await request(app).get('/r')).status).toBe(500);
  });
});

describe('error format options', () => {
  test('bad options throw a TypeError naming the option', () => {
    expect(() => problemHandler({ format: 'xml' as never })).toThrow(/problemHandler.*"format"/);
    expect(() => problemHandler({ statusMap: { 413: 200 } })).toThrow(/problemHandler.*"statusMap"/);
    expect(() => problemHandler({ statusMap: 'no' as never })).toThrow(/"statusMap"/);
    expect(() => proxyStatuses([403, 404])).toThrow(/proxyStatuses.*"passed".*400 and 500/);
    expect(() => proxyStatuses([400, 500], { 401: 403 })).toThrow(/"remap".*403/);
    expect(() => proxyStatuses([400, 500, 200])).toThrow(/"passed"/);
  });
});
