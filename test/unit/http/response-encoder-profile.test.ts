import request from 'supertest';
import { problemHandler, responseEncoder } from '../../../lib';
import type { ResponseEncoderOptions } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';

/** Headers Express or Node add whatever the encoder does. */
const TRANSPORT = new Set(['content-length', 'etag', 'date', 'connection', 'keep-alive']);

function app(express: ExpressFactory, options: ResponseEncoderOptions) {
  const server = express();
  server.use(responseEncoder(options));
  server.get('/r', (_req, res) => {
    res.json({ passwordSet: true });
  });
  server.use(problemHandler({ log: false }));
  return server;
}

const headersOf = (headers: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !TRANSPORT.has(name)));

const API_SET = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

describe.each(expressVersions)('responseEncoder headerProfile on %s', (_name, express) => {
  test("'api' sends exactly the OWASP REST set on a JSON answer", async () => {
    const res = await request(app(express, { headerProfile: 'api' })).get('/r');
    expect(res.status).toBe(200);
    expect(headersOf(res.headers)).toEqual(API_SET);
  });

  test("'api' sends the same set on an error answer", async () => {
    const res = await request(app(express, { headerProfile: 'api' }))
      .get('/r')
      .set('Accept', 'text/html');
    expect(res.status).toBe(406);
    expect(headersOf(res.headers)).toEqual({ ...API_SET, 'content-type': 'application/problem+json; charset=utf-8' });
  });

  test("helmet's options are merged over the 'api' profile", async () => {
    const res = await request(
      app(express, {
        headerProfile: 'api',
        helmet: { strictTransportSecurity: { maxAge: 60 }, referrerPolicy: { policy: 'no-referrer' } },
      }),
    ).get('/r');
    expect(res.headers['strict-transport-security']).toBe('max-age=60; includeSubDomains');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cross-origin-opener-policy']).toBeUndefined();
  });

  test.each([{}, { headerProfile: 'helmet' as const }])("helmet's full default set stays available (%p)", async (options) => {
    const res = await request(app(express, options)).get('/r');
    expect(res.headers).toMatchObject({
      ...API_SET,
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'origin-agent-cluster': '?1',
      'referrer-policy': 'no-referrer',
      'x-dns-prefetch-control': 'off',
      'x-download-options': 'noopen',
      'x-permitted-cross-domain-policies': 'none',
      'x-xss-protection': '0',
    });
  });
});

describe('responseEncoder headerProfile option', () => {
  test.each(['API', 'none', 1, null])('%p throws a TypeError naming the option', (value) => {
    expect(() => responseEncoder({ headerProfile: value as unknown as 'api' })).toThrow(TypeError);
    expect(() => responseEncoder({ headerProfile: value as unknown as 'api' })).toThrow(
      /^responseEncoder: option "headerProfile" must be "helmet" \(helmet's full default set\) or "api"/,
    );
  });
});
