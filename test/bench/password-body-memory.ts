/**
 * What a 50 MB upload costs the server before it is refused: passwordBody() against
 * body-parser (express.text with the same 1020-byte limit). The server runs in a child
 * process, so its memory is measured alone; the client sends one preallocated block over
 * and over, ignoring the answer, as an attacker would. Not a test (the numbers depend on
 * the machine and the kernel's socket buffers), but it exits 1 when passwordBody() reads
 * 1 MB or more of the upload or holds 10 MB or more for it. Run with
 *
 *   npx tsx test/bench/password-body-memory.ts
 *   BENCH_MB=200 npx tsx test/bench/password-body-memory.ts
 */
import { fork } from 'node:child_process';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import express from 'express';
import type { Request, Response } from 'express';
import { passwordBody, problemHandler } from '../../lib';

type Reader = 'passwordBody' | 'body-parser';
type Framing = 'content-length' | 'chunked';

interface ServerStats {
  readonly bytesRead: number;
  readonly peakRss: number;
  readonly peakArrayBuffers: number;
}

const SIZE = Number(process.env['BENCH_MB'] ?? 50) * 1024 * 1024;
const MB = 1024 * 1024;
const PATH = '/servers/bench/password';

// ---- the server, in the child process ----

function serve(reader: Reader): void {
  const app = express();
  const read =
    reader === 'passwordBody'
      ? passwordBody({ maxLength: 1020, commonPasswords: false })
      : express.text({ type: 'text/plain', limit: 1020 });
  app.post(PATH, read, (_req: Request, res: Response) => {
    res.status(204).end();
  });
  app.use(problemHandler({ log: false }));

  const sockets: Socket[] = [];
  let baseline = process.memoryUsage();
  let peakRss = 0;
  let peakArrayBuffers = 0;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss - baseline.rss);
    peakArrayBuffers = Math.max(peakArrayBuffers, now.arrayBuffers - baseline.arrayBuffers);
  }, 2);

  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  server.on('connection', (socket: Socket) => sockets.push(socket));
  process.on('message', (message) => {
    if (message === 'reset') {
      baseline = process.memoryUsage();
      peakRss = 0;
      peakArrayBuffers = 0;
      sockets.length = 0;
      process.send?.('ready');
    } else if (message === 'stats') {
      const stats: ServerStats = {
        bytesRead: sockets.reduce((total, socket) => total + socket.bytesRead, 0),
        peakRss,
        peakArrayBuffers,
      };
      process.send?.(stats);
    } else if (message === 'stop') {
      clearInterval(sampler);
      server.close();
      process.disconnect();
    }
  });
}

// ---- the client and the report, in the parent ----

interface Upload {
  readonly status: string;
  readonly answeredAfterMs: number | undefined;
  readonly sent: number;
  readonly tookMs: number;
}

function upload(port: number, framing: Framing, size: number): Promise<Upload> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const block = Buffer.alloc(Math.min(size, 64 * 1024), 0x61);
    const framed =
      framing === 'chunked'
        ? Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from('\r\n')])
        : block;
    let sent = 0;
    let answer = '';
    let answeredAfterMs: number | undefined;
    const finish = (): void => {
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'no answer';
      resolve({ status, answeredAfterMs, sent, tookMs: Date.now() - started });
    };
    socket.on('data', (data: Buffer) => {
      answeredAfterMs ??= Date.now() - started;
      answer += data.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', finish);
    const pump = (): void => {
      while (sent < size) {
        sent += block.length;
        if (!socket.write(framed)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (framing === 'chunked') socket.end('0\r\n\r\n');
      else socket.end();
    };
    socket.on('connect', () => {
      const length = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${size}`;
      socket.write(`POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n${length}\r\n\r\n`);
      pump();
    });
  });
}

async function measure(reader: Reader, framing: Framing): Promise<Upload & ServerStats> {
  const child = fork(__filename, ['serve', reader]);
  const next = <T>(): Promise<T> =>
    new Promise((resolve) => {
      child.once('message', (message) => {
        resolve(message as T);
      });
    });
  const { port } = await next<{ port: number }>();
  // A first small request warms up the modules, so the baseline is taken after them.
  await upload(port, framing, 16);
  child.send('reset');
  await next<string>();
  const result = await upload(port, framing, SIZE);
  await new Promise((resolve) => setTimeout(resolve, 50));
  child.send('stats');
  const stats = await next<ServerStats>();
  child.send('stop');
  return { ...result, ...stats };
}

const mb = (bytes: number): string => `${(bytes / MB).toFixed(2)} MB`;

async function main(): Promise<void> {
  console.log(`node ${process.version}; an upload of ${mb(SIZE)} to a route with a 1020-byte limit\n`);
  let failed = false;
  for (const framing of ['content-length', 'chunked'] as const) {
    for (const reader of ['passwordBody', 'body-parser'] as const) {
      const r = await measure(reader, framing);
      console.log(
        `${reader.padEnd(13)} ${framing.padEnd(15)} answer ${r.status} after ${r.answeredAfterMs ?? '-'} ms; ` +
          `server read ${mb(r.bytesRead)}; client sent ${mb(r.sent)} in ${r.tookMs} ms; ` +
          `server peak rss +${mb(r.peakRss)}, arrayBuffers +${mb(r.peakArrayBuffers)}`,
      );
      if (reader === 'passwordBody' && (r.bytesRead >= MB || r.peakRss >= 10 * MB || r.peakArrayBuffers >= 10 * MB)) {
        failed = true;
      }
    }
  }
  console.log(failed ? '\nFAIL: passwordBody() read or held too much of the upload' : '\nOK: passwordBody() read and held well under 1 MB of it');
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as Reader);
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
