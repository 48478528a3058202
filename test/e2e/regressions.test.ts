import request from 'supertest';
import { methodGuard, notFound } from '../../lib';
import { requestPath } from '../../lib/internal/errors';
import { createApp, expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';
import { bodyOf, exchange, listen } from '../helpers/raw-http';
import { expectProblem } from '../helpers/problem';

// Defects found by the fuzzer (test/fuzz.test.ts), each named after what was wrong.

describe.each(expressVersions)('regressions on %s', (_name, express: ExpressFactory) => {
  const app = (() => {
    const a = express();
    a.all('/servers/:id/password', methodGuard(['GET', 'POST']), (_req, res) => {
      res.json({ ok: true });
    });
    a.use(notFound());
    return createApp(express, (req, res, next) => {
      a(req, res, next);
    });
  })();

  const raw = async (line: string): Promise<{ status: number | undefined; detail: string }> => {
    const listening = await listen(app);
    try {
      const seen = await exchange(listening.port, (socket) => {
        socket.write(`${line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      });
      expect(seen.text).toMatch(/content-type: application\/problem\+json; charset=utf-8/i);
      return { status: seen.status, detail: (JSON.parse(bodyOf(seen.text)) as { detail: string }).detail };
    } finally {
      await listening.close();
    }
  };

  test('raw markup in the request target was reflected in 404 and 405 details', async () => {
    // Node's parser takes a raw < > " from a client that is not a browser; the JSON escaping
    // kept the text from being markup, but the parsed detail was markup for any client
    // that renders it with innerHTML.
    const missing = await raw('GET /x/"><img%20src=x%20onerror=alert(1)>');
    expect(missing.status).toBe(404);
    expect(missing.detail).toBe('Nothing is served at /x/%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E.');
    const refused = await raw('PUT /servers/<svg%20onload=alert(1)>/password');
    expect(refused.status).toBe(405);
    expect(refused.detail).toBe(
      'The method PUT is not allowed on /servers/%3Csvg%20onload=alert(1)%3E/password. Allowed methods: GET, HEAD, POST, OPTIONS.',
    );
    for (const { detail } of [missing, refused]) expect(detail).not.toMatch(/[<>"]/);
  });

  test('a path a browser sent stays as it was sent', async () => {
    const res = await request(app).get('/servers/%3Cb%3E/x?q=<b>');
    expectProblem(res, 404, 'route.not_found', 'Nothing is served at /servers/%3Cb%3E/x.');
  });
});

describe('requestPath', () => {
  test.each([
    ['/servers/srv-1/password?x=<b>', '/servers/srv-1/password'],
    ["/a/~._-!$&'()*+,;=:@%41", "/a/~._-!$&'()*+,;=:@%41"],
    ['/<>"` {}|\\^', '/%3C%3E%22%60%20%7B%7D%7C%5C%5E'],
    ['/\u00ff', '/%C3%BF'],
    ['/\ud800', '/%EF%BF%BD'],
  ])('%j → %j', (url, shown) => {
    expect(requestPath({ originalUrl: url })).toBe(shown);
  });
});
