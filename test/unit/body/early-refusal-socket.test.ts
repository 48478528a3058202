import type { Express } from 'express';
import { methodGuard, noBody, notFound, problemHandler } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { bodyOf, exchange, flood, listen, pause, write } from '../../helpers/raw-http';
import type { Listening } from '../../helpers/raw-http';
import { userRoutesApp } from '../../helpers/user-routes';

const SIZE = 50 * 1024 * 1024;
const MiB = 1024 * 1024;

/** The password routes, a methodGuard-only route that answers OPTIONS itself, notFound and the problem handler. */
function appWith(express: ExpressFactory): Express {
  const app = userRoutesApp(express);
  app.use('/health', methodGuard(['GET']), (_req, res) => {
    res.json({ ok: true });
  });
  app.post('/servers', noBody(), (_req, res) => {
    res.status(201).json({ id: 'srv-new' });
  });
  app.use(notFound());
  app.use(problemHandler({ log: false }));
  return app;
}

/** A request line and headers, ending with the blank line. */
function message(method: string, path: string, headers: Readonly<Record<string, string | number>> = {}): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** The header block of the first answer in `text`. */
function firstHead(text: string): string {
  const end = text.indexOf('\r\n\r\n');
  return end < 0 ? text : text.slice(0, end);
}

const totalRead = (server: Listening): number => server.sockets.reduce((total, socket) => total + socket.bytesRead, 0);

interface Refusal {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly status: number;
  readonly code: string;
}

const REFUSALS: readonly Refusal[] = [
  {
    label: 'unauthenticated (401 from requireOwnership)',
    method: 'POST',
    path: '/servers/s1/password',
    headers: {},
    status: 401,
    code: 'ownership.unauthenticated',
  },
  {
    label: 'unknown server (404 from requireOwnership)',
    method: 'POST',
    path: '/servers/nope/password',
    headers: { 'X-User': 'alice' },
    status: 404,
    code: 'ownership.denied',
  },
  {
    label: 'wrong method (405 from methodGuard)',
    method: 'PUT',
    path: '/servers/s1/password',
    headers: {},
    status: 405,
    code: 'method.not_allowed',
  },
  {
    label: 'no JSON accepted (406 from responseEncoder)',
    method: 'POST',
    path: '/servers/s1/password',
    headers: { Accept: 'image/png' },
    status: 406,
    code: 'response.not_acceptable',
  },
  {
    label: 'no such path (404 from notFound)',
    method: 'POST',
    path: '/nowhere',
    headers: {},
    status: 404,
    code: 'route.not_found',
  },
];

describe.each(expressVersions)('refusals before the body is read, on %s', (_name, express) => {
  let server: Listening;
  beforeEach(async () => {
    server = await listen(appWith(express));
  });
  afterEach(async () => {
    await server.close();
  });

  /** Sends `SIZE` bytes of body as fast as it can, ignoring the answer and the FIN, as an attacker's client would. */
  async function upload(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    framing: 'Content-Length' | 'chunked',
  ): Promise<{ text: string; status: number | undefined; closed: boolean; sent: number }> {
    const framingHeader: Record<string, string | number> =
      framing === 'chunked' ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': SIZE };
    return flood(
      server.port,
      message(method, path, { 'Content-Type': 'text/plain', ...headers, ...framingHeader }),
      SIZE,
      framing,
    );
  }

  test.each(REFUSALS.map((r) => [r.label, r] as const))(
    'a 50 MB upload %s gets its answer while the server reads under 1 MB',
    async (_label, refusal) => {
      const res = await upload(refusal.method, refusal.path, refusal.headers, 'Content-Length');
      expect(res.status).toBe(refusal.status);
      expect(firstHead(res.text)).toMatch(/\r\nConnection: close(\r\n|$)/i);
      expect(firstHead(res.text)).toMatch(/\r\nContent-Type: application\/problem\+json; charset=utf-8(\r\n|$)/i);
      // The whole problem body arrived, as its Content-Length says.
      const length = Number(/\r\nContent-Length: (\d+)/i.exec(firstHead(res.text))?.[1]);
      expect(Buffer.byteLength(bodyOf(res.text))).toBe(length);
      expect(JSON.parse(bodyOf(res.text))).toMatchObject({ status: refusal.status, code: refusal.code });
      expect(res.closed).toBe(true);
      expect(totalRead(server)).toBeLessThan(MiB);
      expect(res.sent).toBeLessThan(SIZE);
    },
  );

  // Issue 14 defect 8: these answered 200/201/204 after reading all 50 MB.
  test.each([
    ['GET of the password state by its owner', 'GET', '/servers/s1/password'],
    ['DELETE of the password by its owner', 'DELETE', '/servers/s1/password'],
    ['an app route behind noBody()', 'POST', '/servers'],
  ])(
    'a 50 MB upload on %s, a route that takes no body, is refused with 413 while the server reads under 1 MB',
    async (_label, method, path) => {
      for (const framing of ['Content-Length', 'chunked'] as const) {
        const before = totalRead(server);
        const res = await upload(method, path, { 'X-User': 'alice' }, framing);
        expect(res.status).toBe(413);
        expect(firstHead(res.text)).toMatch(/\r\nConnection: close(\r\n|$)/i);
        expect(JSON.parse(bodyOf(res.text))).toMatchObject({ status: 413, code: 'body.too_large' });
        expect(res.closed).toBe(true);
        expect(totalRead(server) - before).toBeLessThan(MiB);
        expect(res.sent).toBeLessThan(SIZE);
      }
    },
  );

  test.each([
    ['401', 'POST', '/servers/s1/password', 401],
    ['405', 'PUT', '/servers/s1/password', 405],
    ['404', 'POST', '/nowhere', 404],
  ] as const)('a chunked 50 MB upload refused with %s is not read whole either', async (_label, method, path, status) => {
    const res = await upload(method, path, {}, 'chunked');
    expect(res.status).toBe(status);
    expect(firstHead(res.text)).toMatch(/\r\nConnection: close(\r\n|$)/i);
    expect(res.closed).toBe(true);
    expect(totalRead(server)).toBeLessThan(MiB);
    expect(res.sent).toBeLessThan(SIZE);
  });

  test('OPTIONS answered by methodGuard with a 50 MB body: 204, closed, under 1 MB read', async () => {
    const res = await upload('OPTIONS', '/health', {}, 'Content-Length');
    expect(res.status).toBe(204);
    expect(firstHead(res.text)).toMatch(/\r\nAllow: GET, HEAD, OPTIONS(\r\n|$)/i);
    expect(firstHead(res.text)).toMatch(/\r\nConnection: close(\r\n|$)/i);
    expect(res.closed).toBe(true);
    expect(totalRead(server)).toBeLessThan(MiB);
  });

  test.each([
    ['GET 401', message('GET', '/servers/s1/password'), 401],
    ['POST 401 with Content-Length: 0', message('POST', '/servers/s1/password', { 'Content-Length': 0 }), 401],
    ['GET 404', message('GET', '/nowhere'), 404],
    ['PATCH 405', message('PATCH', '/servers/s1/password'), 405],
    ['OPTIONS 204', message('OPTIONS', '/health'), 204],
  ] as const)('a bodiless %s keeps the connection for the next request', async (_label, first, status) => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, first);
      await pause(100);
      await write(socket, message('GET', '/servers/s1/password', { 'X-User': 'alice', Connection: 'close' }));
    });
    const statuses = [...res.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([status, 200]);
    expect(firstHead(res.text)).toMatch(/\r\nConnection: keep-alive(\r\n|$)/i);
    expect(firstHead(res.text)).not.toMatch(/\r\nConnection: close(\r\n|$)/i);
  });

  test('a body that was read before the refusal keeps the connection', async () => {
    // The 405 comes after methodGuard; a route that read the body first would see it whole.
    const res = await exchange(server.port, async (socket) => {
      await write(
        socket,
        message('POST', '/servers/s1/password', { 'X-User': 'alice', 'Content-Type': 'application/json', 'Content-Length': 2 }) +
          '{}',
      );
      await pause(100);
      await write(socket, message('GET', '/servers/s1/password', { 'X-User': 'alice', Connection: 'close' }));
    });
    const statuses = [...res.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    // passwordBody read the body ("{}" has no password): its 422 leaves the connection open.
    expect(statuses).toEqual([422, 200]);
    expect(firstHead(res.text)).not.toMatch(/\r\nConnection: close(\r\n|$)/i);
  });
});
