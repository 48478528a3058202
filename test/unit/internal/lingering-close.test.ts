import type { Socket } from 'node:net';
import type { Request, Response } from 'express';
import { methodGuard, passwordBody, problemHandler } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { bodyOf, chunk, exchange, head, listen, pause, write } from '../../helpers/raw-http';
import type { Exchange, Listening } from '../../helpers/raw-http';

const PATH = '/servers/srv-1/password';
const BLOCK = Buffer.alloc(64 * 1024, 0x61);
/** One socket read of headers and body, the drain allowance, and the read that crosses it. */
const READ_BOUND = 64 * 1024 + 4096 + 64 * 1024;

/**
 * A client on a busy machine: it sends as fast as the server takes the bytes, but is
 * not scheduled to read its socket until `readAfterMs` have passed. A reset that arrives
 * before it reads makes its kernel drop the answer.
 */
function lateReader(port: number, requestHead: string, readAfterMs: number): Promise<Exchange> {
  const block = /transfer-encoding: chunked/i.test(requestHead) ? chunk(BLOCK) : BLOCK;
  return exchange(
    port,
    async (socket: Socket) => {
      socket.pause();
      setTimeout(() => socket.resume(), readAfterMs).unref();
      await write(socket, requestHead);
      for (let sent = 0; sent < 50 * 1024 * 1024 && !socket.destroyed; sent += BLOCK.length) {
        await write(socket, block);
      }
    },
    5000,
    { endOnEnd: false },
  );
}

async function server(express: ExpressFactory): Promise<Listening> {
  const app = express();
  const route = app.route(PATH);
  route.all(methodGuard(['GET', 'POST']));
  route.post(
    passwordBody({ maxLength: 1020, commonPasswords: false, drainBytes: 4096, drainMs: 1500 }),
    (_req: Request, res: Response) => {
      res.status(204).end();
    },
  );
  app.use(problemHandler({ log: false }));
  return listen(app);
}

describe.each(expressVersions)('the close after a refusal on %s', (_name, express) => {
  let listening: Listening;
  beforeEach(async () => {
    listening = await server(express);
  });
  afterEach(async () => {
    await listening.close();
  });

  test('a fast client that reads its answer late still receives the 413, and the server stops reading at drainBytes', async () => {
    const started = Date.now();
    const res = await lateReader(
      listening.port,
      head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 50 * 1024 * 1024 }),
      300,
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(bodyOf(res.text))).toMatchObject({ code: 'body.too_large' });
    expect(res.closed).toBe(true);
    // Closed by the server's timer (drainMs), not left open.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(listening.sockets[0]?.bytesRead).toBeLessThanOrEqual(READ_BOUND);
  });

  test('the same holds for a chunked upload', async () => {
    const res = await lateReader(
      listening.port,
      head(PATH, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' }),
      300,
    );
    expect(res.status).toBe(413);
    expect(res.closed).toBe(true);
    expect(listening.sockets[0]?.bytesRead).toBeLessThanOrEqual(READ_BOUND + 64 * 1024);
  });

  test('a refusal before the body is read (405) reaches a late reader too, with the default drain', async () => {
    const res = await lateReader(
      listening.port,
      head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 50 * 1024 * 1024 }).replace(/^POST/, 'PUT'),
      300,
    );
    expect(res.status).toBe(405);
    expect(res.closed).toBe(true);
    expect(listening.sockets[0]?.bytesRead).toBeLessThanOrEqual(64 * 1024 + 64 * 1024 + 64 * 1024);
  });

  test('the connection still goes at drainMs when the client never reads', async () => {
    const started = Date.now();
    const res = await lateReader(
      listening.port,
      head(PATH, { 'Content-Type': 'text/plain', 'Content-Length': 50 * 1024 * 1024 }),
      60_000,
    );
    expect(res.closed).toBe(true);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(4000);
    await pause(10);
    expect(listening.sockets[0]?.bytesRead).toBeLessThanOrEqual(READ_BOUND);
  });
});
