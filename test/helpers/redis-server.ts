import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';

/** A `redis-server` this test run started on a loopback port, with nothing saved to disk. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Freezes the process (SIGSTOP): connections stay open and nothing answers, as in a network partition. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** Stops the server and removes its working directory. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The `redis-server` binary: `$REDIS_SERVER_BIN` when set (point it at a missing file to
 * try the skip path), otherwise the first one on `PATH`.
 */
export function findRedisServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['REDIS_SERVER_BIN'];
  if (explicit !== undefined && explicit !== '') return isExecutable(explicit) ? explicit : undefined;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `redis-server` binary for a suite that needs one. When there is none, the suite is
 * skipped with a printed reason, except under `CI=true`, where `.ci/run` installs it and
 * its absence is a failing test rather than a silent skip. Call it at the top level of a
 * test file and wrap the suite in `describe` or `describe.skip` by its answer.
 */
export function redisServerFor(suite: string): string | undefined {
  const binary = findRedisServer();
  if (binary !== undefined) return binary;
  const reason = `redis-server is not installed (not on PATH${process.env['REDIS_SERVER_BIN'] ? ', nor at $REDIS_SERVER_BIN' : ''}); install it with "apt-get install redis-server"`;
  if (process.env['CI'] === 'true') {
    test(`${suite}: redis-server must be installed under CI=true`, () => {
      throw new Error(`${suite} cannot run: ${reason}. Under CI=true a skipped Redis suite is a failure; .ci/run installs it.`);
    });
  } else {
    console.warn(`Skipping ${suite}: ${reason}.`);
    test.skip(`${suite} (skipped: redis-server is not installed)`, () => undefined);
  }
  return undefined;
}

/** A loopback port that nothing listens on (at the time of asking). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts `binary` on a free loopback port with persistence off (`--save ''
 * --appendonly no`) and a private working directory, and resolves once it answers PING.
 */
export async function startRedisServer(binary: string): Promise<RedisServer> {
  let lastError: unknown;
  // The port is free when asked and taken a moment later: another process may win it.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'epg-redis-'));
    const child = spawn(
      binary,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--protected-mode',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    const collect = (chunk: Buffer): void => {
      if (output.length < 8192) output += chunk.toString('utf8');
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.once('error', () => undefined);
    try {
      await waitForPong(port, exited, 10_000);
      let stopped = false;
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        pause(): void {
          child.kill('SIGSTOP');
        },
        resume(): void {
          child.kill('SIGCONT');
        },
        async stop(): Promise<void> {
          if (stopped) return;
          stopped = true;
          await stopChild(child, exited);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      lastError = new Error(`redis-server did not start on port ${port}: ${(error as Error).message}\n${output}`);
      await stopChild(child, exited);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw lastError;
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

async function waitForPong(port: number, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline) {
    if (gone) throw new Error('the process exited');
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no PONG within ${timeoutMs} ms`);
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** What docs/stores.md recommends: connect first, then fail at once while Redis is away. */
export const FAIL_FAST: RedisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 };

/**
 * ioredis clients for one test file, all closed by `closeAll()` (call it in `afterAll`).
 * Their `error` events are swallowed: without a listener ioredis prints each failed
 * reconnection, and the tests look at what the requests get instead.
 */
export class RedisClients {
  readonly #opened: Redis[] = [];

  /** A client of `target` (a URL, or a loopback port), not yet connected if `lazyConnect`. */
  client(target: string | number, options: RedisOptions = FAIL_FAST): Redis {
    const settings: RedisOptions = { disconnectTimeout: 100, ...options };
    const redis = typeof target === 'number' ? new Redis(target, '127.0.0.1', settings) : new Redis(target, settings);
    redis.on('error', () => undefined);
    this.#opened.push(redis);
    return redis;
  }

  /** A connected client of `url`. */
  async connected(url: string, options: RedisOptions = FAIL_FAST): Promise<Redis> {
    const redis = this.client(url, { ...options, lazyConnect: true });
    await redis.connect();
    return redis;
  }

  async closeAll(): Promise<void> {
    await Promise.all(
      this.#opened.splice(0).map(async (redis) => {
        // A client can still read 'ready' while its socket is already gone (a server the
        // test stopped or froze): then QUIT cannot be sent, and the socket is just closed.
        if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
        else redis.disconnect();
      }),
    );
    // ioredis keeps a disconnectTimeout timer on a socket it ends while reconnecting.
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}
