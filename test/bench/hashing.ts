/**
 * Hashing: hashAndStore's hashes per second against raw bcrypt.hash at the same cost and
 * concurrency, the event loop's delay meanwhile, and how long an fs.readFile waits when
 * it starts during a burst of 40 hashes, raw (every pool thread taken) and through the
 * storer's default limiter (one thread left free). Measured in a child process of its
 * own, so the libuv pool it watches is used by nothing else.
 */
import { readFile } from 'node:fs/promises';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';
import type { NextFunction, Request, Response } from 'express';
import { HashLimiter, MemoryStore, hashAndStore, setValidatedPassword } from '../../lib';
import { threadPoolSize } from '../../lib/hashing/hash-limiter';
import { runMeasureChild, fixed, forkChild, median, verdict } from './common';
import type { Row } from './common';

export interface HashingConfig {
  readonly cost: number;
  /** Interleaved rounds of the throughput runs and of the bursts. */
  readonly rounds: number;
  /** Hashes per throughput run, per concurrent slot. */
  readonly perSlot: number;
  /** Hashes in the burst during which fs.readFile is timed. */
  readonly burst: number;
}

interface HashingResult {
  readonly poolSize: number;
  readonly concurrency: number;
  readonly hashMs: number;
  readonly raw: number[];
  readonly storer: number[];
  readonly rawP99: number[];
  readonly storerP99: number[];
  readonly idleRead: number[];
  readonly rawRead: number[];
  readonly storerRead: number[];
  readonly rawBurstMs: number[];
  readonly refused: number[];
}

// ---- the measurement, in the child ----

/** `count` calls of the storer middleware at once, as Express would make them; their statuses. */
function storerBurst(count: number, limiter: HashLimiter, cost: number, prefix: string): Promise<number[]> {
  const storer = hashAndStore({ store: new MemoryStore(), cost, limiter });
  return Promise.all(
    Array.from({ length: count }, (_, i) => {
      // Each from a client of its own: the burst is many callers, as the limiter's per-caller share expects.
      const req = {
        params: { id: `${prefix}-${i}` },
        ip: `10.0.${i >> 8}.${i & 255}`,
        method: 'POST',
        originalUrl: '/servers/x/password',
      } as unknown as Request;
      setValidatedPassword(req, `benchmark password ${prefix} ${i}`);
      return new Promise<number>((resolve) => {
        const next: NextFunction = (err?: unknown) => {
          resolve(err === undefined ? 201 : ((err as { status?: number }).status ?? 500));
        };
        storer(req, {} as Response, next);
      });
    }),
  );
}

/** `count` raw hashes, `workers` at a time. */
async function rawBurst(count: number, workers: number, cost: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < count) {
        const i = next++;
        await bcrypt.hash(`benchmark password raw ${i}`, cost);
      }
    }),
  );
}

async function timed(count: number, run: () => Promise<unknown>): Promise<{ perSecond: number; p99: number }> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  return { perSecond: count / seconds, p99: delay.percentile(99) / 1e6 };
}

/** How long a small fs.readFile takes when started just after `burst` begins, and how long the burst takes. */
async function readFileDuring(burst: () => Promise<unknown>): Promise<{ readMs: number; burstMs: number }> {
  const started = performance.now();
  const running = burst();
  const readStarted = performance.now();
  await readFile(__filename);
  const readMs = performance.now() - readStarted;
  await running;
  return { readMs, burstMs: performance.now() - started };
}

async function measure(config: HashingConfig): Promise<HashingResult> {
  const { cost, rounds, burst } = config;
  const concurrency = new HashLimiter().maxConcurrent;
  const perRun = concurrency * config.perSlot;
  await rawBurst(concurrency, concurrency, cost);
  await storerBurst(concurrency, new HashLimiter({ maxConcurrent: concurrency, maxQueue: perRun }), cost, 'warm');
  const single: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await bcrypt.hash('one idle hash', cost);
    single.push(performance.now() - started);
  }

  const result: HashingResult = {
    poolSize: threadPoolSize(),
    concurrency,
    hashMs: median(single),
    raw: [],
    storer: [],
    rawP99: [],
    storerP99: [],
    idleRead: [],
    rawRead: [],
    storerRead: [],
    rawBurstMs: [],
    refused: [],
  };
  const runRaw = async (): Promise<void> => {
    const r = await timed(perRun, () => rawBurst(perRun, concurrency, cost));
    result.raw.push(r.perSecond);
    result.rawP99.push(r.p99);
  };
  const runStorer = async (round: number): Promise<void> => {
    const limiter = new HashLimiter({ maxConcurrent: concurrency, maxQueue: perRun });
    const r = await timed(perRun, async () => {
      const statuses = await storerBurst(perRun, limiter, cost, `r${round}`);
      if (statuses.some((s) => s !== 201)) throw new Error(`storer answered ${statuses.join(',')}`);
    });
    result.storer.push(r.perSecond);
    result.storerP99.push(r.p99);
  };
  // The scenario: `burst` hashes arrive at once. Raw, they take every pool
  // thread and a file read queues behind them; through the default limiter one stays free.
  const idle = async (): Promise<void> => {
    result.idleRead.push((await readFileDuring(() => Promise.resolve())).readMs);
  };
  const rawRead = async (): Promise<void> => {
    const r = await readFileDuring(() => rawBurst(burst, burst, cost));
    result.rawRead.push(r.readMs);
    result.rawBurstMs.push(r.burstMs);
  };
  const storerRead = async (round: number): Promise<void> => {
    const limiter = new HashLimiter();
    let refused = 0;
    const r = await readFileDuring(async () => {
      const statuses = await storerBurst(burst, limiter, cost, `burst${round}`);
      refused = statuses.filter((s) => s === 503).length;
      if (statuses.some((s) => s !== 201 && s !== 503)) throw new Error(`storer answered ${statuses.join(',')}`);
    });
    result.storerRead.push(r.readMs);
    result.refused.push(refused);
  };
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so that drift (thermal, other load) hits both alike.
    if (round % 2 === 0) {
      await runRaw();
      await runStorer(round);
      await idle();
      await rawRead();
      await storerRead(round);
    } else {
      await runStorer(round);
      await runRaw();
      await storerRead(round);
      await idle();
      await rawRead();
    }
    process.send?.({
      progress:
        `hashing round ${round + 1}/${rounds}: raw ${fixed(result.raw[round] ?? 0)}/s, storer ${fixed(result.storer[round] ?? 0)}/s; ` +
        `readFile idle ${fixed(result.idleRead[round] ?? 0, 1)} ms, raw burst ${fixed(result.rawRead[round] ?? 0, 1)} ms, storer burst ${fixed(result.storerRead[round] ?? 0, 1)} ms`,
    });
  }
  return result;
}

// ---- the driver ----

export async function hashingRows(config: HashingConfig, log: (line: string) => void): Promise<Row[]> {
  // Generous: a round is a few bursts of hashes; a slow machine must not be killed early.
  const child = forkChild(__filename, ['measure', JSON.stringify(config)], (config.rounds + 2) * 120_000);
  try {
    let message = await child.next<{ progress?: string; result?: HashingResult }>();
    while (message.result === undefined) {
      if (message.progress !== undefined) log(message.progress);
      message = await child.next();
    }
    const r = message.result;
    const section = `hashing, cost ${config.cost}`;
    const raw = median(r.raw);
    const storer = median(r.storer);
    const hashMs = r.hashMs;
    const storerRead = median(r.storerRead);
    const rawRead = median(r.rawRead);
    const rawBurst = median(r.rawBurstMs);
    const refused = median(r.refused);
    return [
      {
        section,
        measure: `raw bcrypt.hash, ${r.concurrency} at a time: hashes/s`,
        value: fixed(raw),
        compared: '1.00x',
        target: 'baseline',
        verdict: '',
      },
      {
        section,
        measure: `hashAndStore, same cost and concurrency: hashes/s`,
        value: fixed(storer),
        compared: `${fixed(storer / raw)}x raw`,
        target: '>= 0.90x raw',
        verdict: verdict(storer / raw >= 0.9),
      },
      {
        section,
        measure: 'event-loop delay p99 while hashing: raw / storer',
        value: `${fixed(median(r.rawP99), 1)} / ${fixed(median(r.storerP99), 1)} ms`,
        compared: `${fixed(median(r.storerP99) / median(r.rawP99))}x raw`,
        target: 'none (reported)',
        verdict: '',
      },
      {
        section,
        measure: 'one hash, idle (the unit below)',
        value: `${fixed(hashMs, 0)} ms`,
        compared: '',
        target: '',
        verdict: '',
      },
      {
        section,
        measure: 'fs.readFile wait, idle',
        value: `${fixed(median(r.idleRead), 1)} ms`,
        compared: `${fixed(median(r.idleRead) / hashMs)} hash times`,
        target: '',
        verdict: '',
      },
      {
        section,
        measure: `fs.readFile wait, ${config.burst} raw hashes at once (pool ${r.poolSize})`,
        value: `${fixed(rawRead, 1)} ms`,
        compared: `${fixed(rawRead / hashMs)} hash times; ${fixed(rawRead / rawBurst)}x the burst (${fixed(rawBurst, 0)} ms)`,
        target: 'none (the problem)',
        verdict: '',
      },
      {
        section,
        measure: `fs.readFile wait, ${config.burst} via hashAndStore (${refused} got 503)`,
        value: `${fixed(storerRead, 1)} ms`,
        compared: `${fixed(storerRead / hashMs)} hash times`,
        target: '<= 1 hash time',
        verdict: verdict(storerRead <= hashMs),
      },
    ];
  } finally {
    await child.stop();
  }
}

if (process.argv[2] === 'measure') runMeasureChild(measure);
