import type { NextFunction, Request, Response } from 'express';
import { passwordBody, problemHandler, validatedPassword } from '../../../lib';
import type { PasswordBodyOptions } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { bodyOf, chunk, exchange, flood, head, listen, pause, until, write } from '../../helpers/raw-http';
import type { Listening } from '../../helpers/raw-http';

const PATH = '/servers/srv-1/password';

/** An app that records how each request ended: 'stored' or the problem code. */
async function recordingServer(
  express: ExpressFactory,
  options: PasswordBodyOptions = {},
): Promise<Listening & { outcomes: string[] }> {
  const outcomes: string[] = [];
  const app = express();
  app.post('/servers/:id/password', passwordBody(options), (req: Request, res: Response) => {
    outcomes.push(validatedPassword(req) === undefined ? 'no password' : 'stored');
    res.status(204).end();
  });
  app.use((error: { type?: string }, _req: Request, _res: Response, next: NextFunction) => {
    outcomes.push(error.type ?? 'error');
    next(error);
  });
  app.use(problemHandler({ log: false }));
  return Object.assign(await listen(app), { outcomes });
}

describe.each(expressVersions)('passwordBody over raw sockets on %s', (_name, express) => {
  const metadataRoute: PasswordBodyOptions = { maxLength: 1020, commonPasswords: false, readTimeout: 400, drainMs: 300 };
  let server: Listening & { outcomes: string[] };

  beforeEach(async () => {
    server = await recordingServer(express, metadataRoute);
  });
  afterEach(async () => {
    await server.close();
  });

  test.each([
    ['text', 'text/plain', (n: number) => 'a'.repeat(n)],
    ['JSON', 'application/json', (n: number) => JSON.stringify({ password: 'a'.repeat(n - 15) })],
  ])('a chunked %s body of 1020 bytes passes and one of 1021 gets 413', async (_label, type, body) => {
    // Only the passing request asks for Connection: close (so the exchange ends): the
    // refused one must get it from passwordBody().
    const send = (size: number, headers: Readonly<Record<string, string>> = {}) =>
      exchange(server.port, async (socket) => {
        const payload = body(size);
        expect(Buffer.byteLength(payload)).toBe(size);
        await write(socket, head(PATH, { 'Content-Type': type, 'Transfer-Encoding': 'chunked', ...headers }));
        for (let i = 0; i < payload.length; i += 300) {
          await write(socket, chunk(payload.slice(i, i + 300)));
          await pause(5);
        }
        await write(socket, chunk(''));
      });
    const ok = await send(1020, { Connection: 'close' });
    expect(ok.status).toBe(204);
    const refused = await send(1021);
    expect(refused.status).toBe(413);
    expect(refused.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(JSON.parse(bodyOf(refused.text))).toMatchObject({ code: 'body.too_large' });
    expect(refused.closed).toBe(true);
    expect(server.outcomes).toEqual(['stored', 'body.too_large']);
  });

  test('a Content-Length over the limit is refused before a byte of body is sent', async () => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 1021 }));
    });
    // 413, not readTimeout's 408: nothing of the body was waited for.
    expect(res.status).toBe(413);
    expect(res.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(res.closed).toBe(true);
    expect(server.outcomes).toEqual(['body.too_large']);
  });

  test('a refusal after the whole body arrived keeps the connection alive', async () => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 5 }) + 'short');
      await pause(100);
      await write(
        socket,
        head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 12, Connection: 'close' }) + 'long enough!',
      );
    });
    const statuses = [...res.text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['422', '204']);
    expect(server.outcomes).toEqual(['password.invalid', 'stored']);
  });

  test('a client that declares a length and stops sending gets 408 and a closed connection', async () => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 100 }) + 'x'.repeat(50));
    });
    expect(res.status).toBe(408);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({
      code: 'body.timeout',
      detail: 'The request body did not arrive within 400 ms.',
    });
    expect(res.closed).toBe(true);
    expect(server.outcomes).toEqual(['body.timeout']);
  });

  test('a chunked body that never ends gets 408 too', async () => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }));
      await write(socket, chunk('a long enough password'));
    });
    expect(res.status).toBe(408);
    expect(res.closed).toBe(true);
    expect(server.outcomes).toEqual(['body.timeout']);
  });

  test('a client that half-closes before the declared length ends in a 4xx or a closed connection', async () => {
    const res = await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 100 }) + 'y'.repeat(50));
      await pause(20);
      socket.end();
    });
    // Node's parser answers the truncated request with its own 400 and closes; the
    // middleware sees the abort, so the route never runs.
    expect(res.closed).toBe(true);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await until(() => server.outcomes.length > 0);
    await pause(50);
    expect(server.outcomes).toEqual(['body.aborted']);
  });

  test('a client that disconnects mid-body never reaches the route', async () => {
    await exchange(server.port, async (socket) => {
      await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 100 }) + 'z'.repeat(50));
      await pause(20);
      socket.destroy();
    });
    await until(() => server.outcomes.length > 0);
    expect(server.outcomes).toEqual(['body.aborted']);
  });

  test('after a refusal the connection lingers for the drain, so a client still sending reads the whole answer', async () => {
    const started = Date.now();
    let closedAt = 0;
    let sent = 0;
    const res = await exchange(
      server.port,
      async (socket) => {
        socket.on('close', () => {
          closedAt = Date.now();
        });
        await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 1_000_000 }));
        // A slow client that keeps sending and only reads its answer at the end.
        while (!socket.destroyed && Date.now() - started < 2500) {
          await write(socket, 'w'.repeat(100));
          sent += 100;
          await pause(20);
        }
      },
      3000,
      { endOnEnd: false },
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({ code: 'body.too_large' });
    expect(res.closed).toBe(true);
    // Kept for about drainMs (300 ms), not destroyed as soon as the answer was flushed,
    // then destroyed although the client had not finished.
    expect(closedAt - started).toBeGreaterThanOrEqual(250);
    expect(closedAt - started).toBeLessThan(1500);
    expect(sent).toBeGreaterThan(500);
    expect(server.sockets[0]?.bytesRead).toBeLessThan(5000);
  });

  test('reading stops at drainBytes when the client sends fast, and the connection goes at drainMs', async () => {
    const fast = await recordingServer(express, { drainBytes: 4096, drainMs: 600 });
    try {
      const started = Date.now();
      const res = await exchange(
        fast.port,
        async (socket) => {
          await write(socket, head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 1_000_000 }));
          while (!socket.destroyed && Date.now() - started < 2500) {
            await write(socket, 'f'.repeat(1024));
            await pause(1);
          }
        },
        3000,
        { endOnEnd: false },
      );
      expect(res.status).toBe(413);
      expect(res.closed).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
      // The lingering socket is stopped by backpressure, not destroyed: past drainBytes the
      // request stream's own buffer (16 KiB) fills before Node stops reading the socket, on
      // top of the one 64 KiB socket read already under way.
      expect(fast.sockets[0]?.bytesRead).toBeLessThan(4096 + 16 * 1024 + 64 * 1024);
    } finally {
      await fast.close();
    }
  });
});

describe.each(expressVersions)('a 50 MB upload on %s', (_name, express) => {
  const SIZE = 50 * 1024 * 1024;

  test.each(['Content-Length', 'chunked'] as const)(
    'sent with %s is refused while the server reads well under 1 MB of it',
    async (framing) => {
      const server = await recordingServer(express);
      try {
        const before = process.memoryUsage();
        const headers: Record<string, string | number> =
          framing === 'chunked'
            ? { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }
            : { 'Content-Type': 'text/plain', 'Content-Length': SIZE };
        const res = await flood(server.port, head(PATH, headers), SIZE, framing);
        const after = process.memoryUsage();
        expect(res.status).toBe(413);
        expect(res.closed).toBe(true);
        expect(server.outcomes).toEqual(['body.too_large']);
        const bytesRead = server.sockets.reduce((total, socket) => total + socket.bytesRead, 0);
        expect(bytesRead).toBeLessThan(1024 * 1024);
        expect(res.sent).toBeLessThan(SIZE);
        expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * 1024 * 1024);
      } finally {
        await server.close();
      }
    },
  );
});
