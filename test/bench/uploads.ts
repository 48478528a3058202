/**
 * Oversized uploads: `concurrency` uploads of `size` bytes at once to a route with a
 * 1020-byte limit, against passwordBody(), body-parser's default handling (express.text
 * and express.json with that limit) and a handler that buffers the whole body and checks
 * its length after, as the reviewed one did. Each measurement gets a fresh server child,
 * so its memory is its own; the client sends one preallocated block over and over and
 * keeps sending after the answer, as an attacker would. A contended variant repeats
 * passwordBody's measurement with one busy-looping process per CPU, as on a loaded
 * machine, where a client may not read its answer for a while after it arrives.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import type { Socket } from 'node:net';
import express from 'express';
import type { Request, RequestHandler, Response } from 'express';
import { passwordBody, problemHandler } from '../../lib';
import { MB, exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Row } from './common';

export type Reader = 'passwordBody' | 'express.text' | 'express.json' | 'buffer-then-check';
export type Framing = 'content-length' | 'chunked';

export const READERS: readonly Reader[] = ['passwordBody', 'express.text', 'express.json', 'buffer-then-check'];
export const FRAMINGS: readonly Framing[] = ['content-length', 'chunked'];

const LIMIT = 1020;
/** passwordBody's default drainBytes (documented on the option). */
const DRAIN_BYTES = 65_536;
/**
 * Node reads a socket in blocks of up to 64 KiB: the first block (headers and the start
 * of the body) is read before any middleware runs, and the block that crosses the drain
 * allowance is read whole before the socket is destroyed.
 */
const READ_BLOCK = 65_536;
/** The most a refused upload may cost passwordBody in bytes read: the limit rounded up to a read block, the drain, one more block. */
export const READ_BOUND = Math.max(LIMIT, READ_BLOCK) + DRAIN_BYTES + READ_BLOCK;
const RSS_TARGET = 32 * MB;
const PATH = '/servers/bench/password';

interface ServerStats {
  readonly bytesRead: number;
  readonly connections: number;
  readonly peakRss: number;
}

// ---- the server, in the child process ----

/** Reads the whole body, then checks its length: memory grows with the upload. */
const bufferThenCheck: RequestHandler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (body.length > LIMIT) res.status(413).end();
    else res.status(204).end();
  });
};

function reader(name: Reader): RequestHandler {
  switch (name) {
    case 'passwordBody':
      return passwordBody({ maxLength: LIMIT, commonPasswords: false });
    case 'express.text':
      return express.text({ type: 'text/plain', limit: LIMIT });
    case 'express.json':
      return express.json({ limit: LIMIT });
    case 'buffer-then-check':
      return bufferThenCheck;
  }
}

function serve(name: Reader): void {
  exitWithParent();
  const app = express();
  app.post(PATH, reader(name), (_req: Request, res: Response) => {
    res.status(204).end();
  });
  app.use(problemHandler({ log: false }));

  const sockets: Socket[] = [];
  let baselineRss = process.memoryUsage.rss();
  let baselineMaxRss = process.resourceUsage().maxRSS * 1024;
  let sampledPeak = 0;
  // The kernel's high-water mark (maxRSS) catches what the sampler misses while the
  // event loop is busy; the sampler covers the case where that mark predates the reset.
  const sampler = setInterval(() => {
    sampledPeak = Math.max(sampledPeak, process.memoryUsage.rss() - baselineRss);
  }, 2);

  const server = app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  server.on('connection', (socket: Socket) => sockets.push(socket));
  process.on('message', (message) => {
    if (message === 'reset') {
      sockets.length = 0;
      global.gc?.();
      baselineRss = process.memoryUsage.rss();
      baselineMaxRss = process.resourceUsage().maxRSS * 1024;
      sampledPeak = 0;
      process.send?.('ready');
    } else if (message === 'stats') {
      const maxRss = process.resourceUsage().maxRSS * 1024;
      const stats: ServerStats = {
        bytesRead: sockets.reduce((total, socket) => total + socket.bytesRead, 0),
        connections: sockets.length,
        peakRss: Math.max(0, sampledPeak, maxRss > baselineMaxRss ? maxRss - baselineRss : 0),
      };
      process.send?.(stats);
    } else if (message === 'stop') {
      clearInterval(sampler);
      server.closeAllConnections();
      server.close();
      process.exit(0);
    }
  });
}

// ---- the client, in the bench's process ----

interface Upload {
  readonly status: string;
  readonly answeredAfterMs: number | undefined;
}

function upload(port: number, framing: Framing, type: string, size: number, limitMs: number): Promise<Upload> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const block = Buffer.alloc(Math.min(size, 64 * 1024), 0x61);
    const framed =
      framing === 'chunked'
        ? Buffer.concat([Buffer.from(`${block.length.toString(16)}\r\n`), block, Buffer.from('\r\n')])
        : block;
    let sent = 0;
    let answer = '';
    let answeredAfterMs: number | undefined;
    const timer = setTimeout(() => socket.destroy(), limitMs);
    socket.on('data', (data: Buffer) => {
      answeredAfterMs ??= performance.now() - started;
      answer += data.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'no answer';
      resolve({ status, answeredAfterMs });
    });
    const pump = (): void => {
      while (sent < size && !socket.destroyed) {
        sent += block.length;
        if (!socket.write(framed)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (socket.destroyed) return;
      if (framing === 'chunked') socket.end('0\r\n\r\n');
      else socket.end();
    };
    socket.on('connect', () => {
      const length =
        framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${Math.ceil(size / block.length) * block.length}`;
      socket.write(`POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\n${length}\r\n\r\n`);
      pump();
    });
  });
}

interface Measured {
  /** What the uploads that got no 413 saw instead ('no answer': reset before the answer was read). */
  readonly others: string[];
  readonly answeredMs: number;
  readonly answered413: number;
  readonly bytesPerUpload: number;
  readonly peakRss: number;
}

export interface UploadConfig {
  readonly rounds: number;
  readonly size: number;
  readonly concurrency: number;
  /** The most one upload may take before it is cut. */
  readonly limitMs: number;
}

async function measure(name: Reader, framing: Framing, config: UploadConfig): Promise<Measured> {
  const child = forkChild(__filename, ['serve', name], config.limitMs + 30_000, ['--expose-gc']);
  try {
    const { port } = await child.next<{ port: number }>();
    const type = name === 'express.json' ? 'application/json' : 'text/plain';
    // A first small request loads and compiles the code paths, so the baseline is taken after.
    await upload(port, framing, type, 16, config.limitMs);
    child.send('reset');
    await child.next<string>();
    const uploads = await Promise.all(
      Array.from({ length: config.concurrency }, () => upload(port, framing, type, config.size, config.limitMs)),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    child.send('stats');
    const stats = await child.next<ServerStats>();
    const answered = uploads.filter((u) => u.status === '413');
    return {
      others: uploads.filter((u) => u.status !== '413').map((u) => u.status),
      answeredMs: median(answered.map((u) => u.answeredAfterMs ?? Number.NaN)),
      answered413: answered.length,
      bytesPerUpload: stats.bytesRead / Math.max(1, stats.connections),
      peakRss: stats.peakRss,
    };
  } finally {
    await child.stop();
  }
}

/** One busy-looping process per CPU, until the returned function stops them. */
function busyLoops(): () => Promise<void> {
  const loops: ChildProcess[] = cpus().map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return async () => {
    await Promise.all(
      loops.map(
        (loop) =>
          new Promise<void>((resolve) => {
            if (loop.exitCode !== null || loop.signalCode !== null) resolve();
            else {
              loop.once('exit', () => resolve());
              loop.kill('SIGKILL');
            }
          }),
      ),
    );
  };
}

async function measureContended(framing: Framing, config: UploadConfig): Promise<Measured> {
  const stop = busyLoops();
  try {
    return await measure('passwordBody', framing, config);
  } finally {
    await stop();
  }
}

const kb = (bytes: number): string => (bytes >= MB ? `${fixed(bytes / MB, 1)} MB` : `${fixed(bytes / 1024, 1)} KiB`);

export async function uploadRows(config: UploadConfig, log: (line: string) => void): Promise<Row[]> {
  const keys = FRAMINGS.flatMap((framing) => READERS.map((name) => ({ framing, name })));
  const results = new Map<string, Measured[]>(keys.map(({ framing, name }) => [`${framing}/${name}`, []]));
  const contended = new Map<Framing, Measured[]>(FRAMINGS.map((framing) => [framing, []]));
  for (let round = 0; round < config.rounds; round++) {
    for (const framing of FRAMINGS) {
      const line: string[] = [];
      for (const name of interleaved(READERS, round)) {
        const m = await measure(name, framing, config);
        results.get(`${framing}/${name}`)?.push(m);
        const others = m.others.length === 0 ? '' : ` (others: ${m.others.join(', ')})`;
        line.push(
          `${name} 413 ${m.answered413}/${config.concurrency}${others} after ${fixed(m.answeredMs, 0)} ms, read ${kb(m.bytesPerUpload)}, rss +${kb(m.peakRss)}`,
        );
      }
      log(`uploads round ${round + 1}/${config.rounds} ${framing}: ${line.join('; ')}`);
    }
    for (const framing of FRAMINGS) {
      const m = await measureContended(framing, config);
      contended.get(framing)?.push(m);
      const others = m.others.length === 0 ? '' : ` (others: ${m.others.join(', ')})`;
      log(
        `uploads round ${round + 1}/${config.rounds} ${framing}, contended (${cpus().length} busy loops): passwordBody 413 ${m.answered413}/${config.concurrency}${others} after ${fixed(m.answeredMs, 0)} ms, read ${kb(m.bytesPerUpload)}, rss +${kb(m.peakRss)}`,
      );
    }
  }
  const rows: Row[] = [];
  const sizeLabel = config.size >= MB ? `${fixed(config.size / MB, 0)} MB` : kb(config.size);
  for (const framing of FRAMINGS) {
    const section = `uploads, ${config.concurrency} x ${sizeLabel}, ${framing}`;
    const of = (name: Reader): Measured[] => results.get(`${framing}/${name}`) ?? [];
    const answeredMs = (name: Reader): number => median(of(name).map((m) => m.answeredMs));
    const answered = (name: Reader): number => Math.min(...of(name).map((m) => m.answered413));
    const bytes = (name: Reader): number => median(of(name).map((m) => m.bytesPerUpload));
    const rss = (name: Reader): number => median(of(name).map((m) => m.peakRss));
    const ours = answeredMs('passwordBody');
    for (const name of READERS) {
      const ratio = answeredMs(name) / ours;
      const declaredTarget = framing === 'content-length' && (name === 'express.text' || name === 'express.json');
      rows.push({
        section,
        measure: `${name}: time to 413 (413s received, worst round)`,
        value: `${fixed(answeredMs(name), 1)} ms (${answered(name)}/${config.concurrency})`,
        compared: name === 'passwordBody' ? '1.00x' : `${fixed(ratio, 1)}x passwordBody's`,
        target: declaredTarget ? '>= 5x passwordBody' : 'none (reference)',
        verdict: declaredTarget ? verdict(ratio >= 5) : '',
      });
    }
    for (const name of READERS) {
      rows.push({
        section,
        measure: `${name}: bytes read per upload`,
        value: kb(bytes(name)),
        compared: `${fixed((bytes(name) / config.size) * 100, 1)}% of the upload`,
        target: name === 'passwordBody' ? `<= ${kb(READ_BOUND)} (1 read + drain + 1 read)` : 'none (reference)',
        verdict: name === 'passwordBody' ? verdict(bytes(name) <= READ_BOUND) : '',
      });
    }
    const perRound = (runs: readonly Measured[]): string => runs.map((m) => m.answered413).join(', ');
    const allRounds = (runs: readonly Measured[]): boolean =>
      runs.length > 0 && runs.every((m) => m.answered413 >= config.concurrency - Math.floor(config.concurrency / 20));
    const target413 = `>= ${config.concurrency - Math.floor(config.concurrency / 20)}/${config.concurrency} every round`;
    rows.push({
      section,
      measure: 'passwordBody: 413s received, each round',
      value: perRound(of('passwordBody')),
      compared: `of ${config.concurrency}`,
      target: target413,
      verdict: verdict(allRounds(of('passwordBody'))),
    });
    const busy = contended.get(framing) ?? [];
    rows.push({
      section,
      measure: `passwordBody, contended: 413s received, each round`,
      value: perRound(busy),
      compared: `of ${config.concurrency}; ${cpus().length} busy loops`,
      target: target413,
      verdict: verdict(allRounds(busy)),
    });
    const busyBytes = median(busy.map((m) => m.bytesPerUpload));
    rows.push({
      section,
      measure: 'passwordBody, contended: bytes read per upload',
      value: kb(busyBytes),
      compared: `${fixed(median(busy.map((m) => m.answeredMs)), 1)} ms to 413`,
      target: `<= ${kb(READ_BOUND)}`,
      verdict: verdict(busyBytes <= READ_BOUND),
    });
    const busyRss = median(busy.map((m) => m.peakRss));
    rows.push({
      section,
      measure: 'passwordBody, contended: server peak RSS growth',
      value: `+${kb(busyRss)}`,
      compared: '',
      target: '< 32 MB',
      verdict: verdict(busyRss < RSS_TARGET),
    });
    for (const name of READERS) {
      rows.push({
        section,
        measure: `${name}: server peak RSS growth`,
        value: `+${kb(rss(name))}`,
        compared: '',
        target: name === 'passwordBody' ? '< 32 MB' : 'none (reference)',
        verdict: name === 'passwordBody' ? verdict(rss(name) < RSS_TARGET) : '',
      });
    }
  }
  return rows;
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as Reader);
}
