import { performance } from 'node:perf_hooks';
import type { Request } from 'express';
import { ownership } from '../access/ownership';
import { assertKnownKeys, hasMethods, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';

/**
 * Options of {@link HashLimiter}.
 *
 * @example
 * const options: HashLimiterOptions = { maxConcurrent: 2, maxQueue: 16 };
 */
export interface HashLimiterOptions {
  /**
   * Hashes and compares running at once. bcrypt runs on libuv's thread pool, which file
   * reads, DNS lookups and zlib share: keeping one thread free means they still get one
   * while hashes run.
   * @default Math.max(1, UV_THREADPOOL_SIZE - 1): 3 with Node's default pool of 4
   */
  readonly maxConcurrent?: number;
  /**
   * Hashes waiting for a slot. One more is refused at once, without hashing, so a burst
   * costs a bounded amount of work and memory and the caller learns quickly to retry.
   * @default 32
   */
  readonly maxQueue?: number;
  /**
   * Hashes one caller may have running or waiting at once. Past it that caller is
   * refused while others still get in, and waiting hashes are started one caller at a
   * time in turn, so one caller's flood cannot deny everyone else (a caller is the
   * principal `requireOwnership` let through, else the client address).
   * @default Math.max(1, Math.ceil(maxQueue / 8)): 4 with the default queue
   */
  readonly maxPerCaller?: number;
}

const optionKeys: KeysEnum<HashLimiterOptions> = { maxConcurrent: true, maxQueue: true, maxPerCaller: true };

/** libuv reads UV_THREADPOOL_SIZE once, when the pool starts; 4 when unset, at most 1024. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['UV_THREADPOOL_SIZE']);
  return Number.isInteger(value) && value >= 1 ? Math.min(value, 1024) : 4;
}

/**
 * Caps the bcrypt work of a process: at most `maxConcurrent` hashes or compares run,
 * at most `maxQueue` wait, and past that {@link HashLimiter.tryRun} refuses at once.
 * Hashing and comparing occupy the same pool, so give one limiter to both
 * {@link hashAndStore} and {@link passwordVerifier}; they share
 * {@link defaultHashLimiter} when given none.
 *
 * @example
 * const limiter = new HashLimiter({ maxConcurrent: 2, maxQueue: 16 });
 * app.post('/servers/:id/password', passwordBody(), hashAndStore({ store, limiter }), created);
 * app.post('/servers/:id/password/verify', passwordBody(), passwordVerifier({ store, limiter }), ok);
 */
export class HashLimiter {
  /** Hashes that may run at once. */
  readonly maxConcurrent: number;
  /** Hashes that may wait for a slot. */
  readonly maxQueue: number;
  /** Hashes one caller may have running or waiting. */
  readonly maxPerCaller: number;
  #active = 0;
  #queued = 0;
  /** Waiting tasks by caller, in the order the callers take turns (a Map keeps insertion order). */
  readonly #waiting = new Map<string, Array<() => void>>();
  /** Running plus waiting tasks of each caller that has any. */
  readonly #perCaller = new Map<string, number>();
  #averageMs: number | undefined;

  constructor(options: HashLimiterOptions = {}) {
    assertKnownKeys('HashLimiter', options, optionKeys);
    this.maxConcurrent = count('maxConcurrent', options.maxConcurrent, Math.max(1, threadPoolSize() - 1), 1);
    this.maxQueue = count('maxQueue', options.maxQueue, 32, 0);
    this.maxPerCaller = count('maxPerCaller', options.maxPerCaller, Math.max(1, Math.ceil(this.maxQueue / 8)), 1);
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active;
  }

  /** Tasks waiting for a slot now. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Runs `task` now or when a slot frees up, and settles as it does; or returns
   * `undefined` at once, without calling `task`, when every slot is taken and the
   * queue is full, or when `caller` already has `maxPerCaller` tasks running or waiting.
   * Waiting tasks start one caller at a time, in turn.
   */
  tryRun<T>(task: () => Promise<T>, caller?: string): Promise<T> | undefined {
    // No caller given (a direct call, not a request): no share to keep, one lane of its own.
    const key = caller === undefined ? '' : `:${caller}`;
    const mine = this.#perCaller.get(key) ?? 0;
    if (caller !== undefined && mine >= this.maxPerCaller) return undefined;
    if (this.#active < this.maxConcurrent) {
      this.#perCaller.set(key, mine + 1);
      return this.#start(task, key);
    }
    if (this.#queued >= this.maxQueue) return undefined;
    this.#perCaller.set(key, mine + 1);
    return new Promise<T>((resolve, reject) => {
      let line = this.#waiting.get(key);
      if (line === undefined) {
        line = [];
        this.#waiting.set(key, line);
      }
      this.#queued++;
      line.push(() => {
        this.#start(task, key).then(resolve, reject);
      });
    });
  }

  /**
   * Whole seconds after which a refused caller may expect a free slot: the work ahead
   * of it at the average task duration seen so far, at least 1.
   */
  retryAfterSeconds(): number {
    if (this.#averageMs === undefined) return 1;
    const ahead = (this.#active + this.#queued) / this.maxConcurrent;
    return Math.max(1, Math.ceil((ahead * this.#averageMs) / 1000));
  }

  /** Starts the first waiting task of the caller whose turn it is, then sends that caller to the back. */
  #next(): void {
    for (const [caller, line] of this.#waiting) {
      const start = line.shift();
      this.#waiting.delete(caller);
      if (line.length > 0) this.#waiting.set(caller, line);
      if (start !== undefined) {
        this.#queued--;
        start();
        return;
      }
    }
  }

  #start<T>(task: () => Promise<T>, caller: string): Promise<T> {
    this.#active++;
    const started = performance.now();
    let running: Promise<T>;
    try {
      running = task();
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.finally(() => {
      const elapsed = performance.now() - started;
      this.#averageMs = this.#averageMs === undefined ? elapsed : this.#averageMs * 0.8 + elapsed * 0.2;
      this.#active--;
      const left = (this.#perCaller.get(caller) ?? 1) - 1;
      if (left > 0) this.#perCaller.set(caller, left);
      else this.#perCaller.delete(caller);
      this.#next();
    });
  }
}

function count(option: string, value: unknown, fallback: number, min: number): number {
  return integerOption('HashLimiter', option, value, min) ?? fallback;
}

/**
 * The `limiter` option, checked by shape rather than `instanceof` so that a limiter from
 * a second copy of this package (a nested install) is still accepted.
 */
export function resolveLimiter(factory: string, value: unknown): HashLimiter {
  if (value === undefined) return defaultHashLimiter();
  if (!hasMethods(value, ['tryRun', 'retryAfterSeconds'])) {
    throw optionError(factory, 'limiter', 'must be a HashLimiter (new HashLimiter({ maxConcurrent, maxQueue })).');
  }
  return value as HashLimiter;
}

let processLimiter: HashLimiter | undefined;

/**
 * The limiter every storer and verifier of this process uses when given none: one per
 * process, because the thread pool it protects is one per process. Created with the
 * defaults on first use.
 *
 * @example
 * const { active, queued } = defaultHashLimiter();
 */
export function defaultHashLimiter(): HashLimiter {
  processLimiter ??= new HashLimiter();
  return processLimiter;
}

/**
 * Who a hash is done for, for {@link HashLimiter}'s per-caller share: the principal
 * `requireOwnership` let through, else the client address.
 */
export function callerKey(req: Request): string {
  const principal = ownership(req)?.principal;
  if (principal !== undefined) return JSON.stringify(['principal', principal.kind, String(principal.id)]);
  // A request object made by hand (a test, a bench) may have no socket.
  const socket = req.socket as Request['socket'] | undefined;
  return JSON.stringify(['address', req.ip ?? socket?.remoteAddress ?? '']);
}
