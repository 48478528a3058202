/**
 * Throughput of hashAndStore against raw bcrypt.hash at the same cost and concurrency,
 * and how responsive the process stays meanwhile. Not a test: timings depend on the
 * machine. Run with
 *
 *   npx tsx test/bench/hashing.ts            # cost 12, default concurrency, 5 rounds
 *   BENCH_COST=10 BENCH_ROUNDS=9 npx tsx test/bench/hashing.ts
 */
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import bcrypt from 'bcrypt';
import type { NextFunction, Request, Response } from 'express';
import { HashLimiter, MemoryStore, hashAndStore, setValidatedPassword } from '../../lib';
import { threadPoolSize } from '../../lib/hash-limiter';

const cost = Number(process.env['BENCH_COST'] ?? 12);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5);
// Bounded run time: each cost step doubles it, so refuse values that would run for hours.
if (!Number.isInteger(cost) || cost < 10 || cost > 14 || !Number.isInteger(rounds) || rounds < 1 || rounds > 21) {
  throw new Error('BENCH_COST must be a whole number from 10 to 14 and BENCH_ROUNDS from 1 to 21.');
}
const concurrency = new HashLimiter().maxConcurrent;
const perRound = concurrency * 4;

const ms = (ns: number): string => (ns / 1e6).toFixed(1);
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/** `count` calls of the storer middleware at once, as Express would make them. */
async function storerBurst(count: number, limiter: HashLimiter, prefix: string): Promise<number[]> {
  const storer = hashAndStore({ store: new MemoryStore(), cost, limiter });
  const statuses = await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const req = { params: { id: `${prefix}-${i}` }, method: 'POST', originalUrl: '/servers/x/password' } as unknown as Request;
      setValidatedPassword(req, `benchmark password ${prefix} ${i}`);
      return new Promise<number>((resolve) => {
        const next: NextFunction = (err?: unknown) => {
          resolve(err === undefined ? 201 : ((err as { status?: number }).status ?? 500));
        };
        storer(req, {} as Response, next);
      });
    }),
  );
  return statuses;
}

/** `count` raw hashes, `workers` at a time. */
async function rawBurst(count: number, workers: number): Promise<void> {
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

async function timed(run: () => Promise<unknown>): Promise<{ perSecond: number; p99: number; max: number }> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  await run();
  const seconds = (performance.now() - started) / 1000;
  delay.disable();
  return { perSecond: perRound / seconds, p99: delay.percentile(99), max: delay.max };
}

/** How long a small fs.readFile takes when started just after `burst` begins. */
async function readFileDuring(burst: () => Promise<unknown>): Promise<number> {
  const running = burst();
  const started = performance.now();
  await readFile(__filename);
  const elapsed = performance.now() - started;
  await running;
  return elapsed;
}

async function main(): Promise<void> {
  console.log(
    `node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), libuv pool ${threadPoolSize()}, ` +
      `bcrypt cost ${cost}, concurrency ${concurrency} (the default limiter's), ${perRound} hashes per run, ${rounds} interleaved rounds`,
  );
  await rawBurst(concurrency, concurrency);
  await storerBurst(concurrency, new HashLimiter({ maxConcurrent: concurrency, maxQueue: perRound }), 'warm');

  const raw: number[] = [];
  const storer: number[] = [];
  const rawP99: number[] = [];
  const storerP99: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first so that drift (thermal, other load) hits both alike.
    const runRaw = async (): Promise<void> => {
      const r = await timed(() => rawBurst(perRound, concurrency));
      raw.push(r.perSecond);
      rawP99.push(r.p99);
    };
    const runStorer = async (): Promise<void> => {
      const limiter = new HashLimiter({ maxConcurrent: concurrency, maxQueue: perRound });
      const r = await timed(async () => {
        const statuses = await storerBurst(perRound, limiter, `r${round}`);
        if (statuses.some((s) => s !== 201)) throw new Error(`storer answered ${statuses.join(',')}`);
      });
      storer.push(r.perSecond);
      storerP99.push(r.p99);
    };
    if (round % 2 === 0) {
      await runRaw();
      await runStorer();
    } else {
      await runStorer();
      await runRaw();
    }
    console.log(
      `round ${round + 1}: raw ${raw[round]?.toFixed(2)} hashes/s, storer ${storer[round]?.toFixed(2)} hashes/s, ` +
        `event-loop p99 raw ${ms(rawP99[round] ?? 0)} ms, storer ${ms(storerP99[round] ?? 0)} ms`,
    );
  }
  const ratio = median(storer) / median(raw);
  console.log(
    `median: raw bcrypt.hash ${median(raw).toFixed(2)} hashes/s, hashAndStore ${median(storer).toFixed(2)} hashes/s, ` +
      `ratio ${ratio.toFixed(3)}x (target >= 0.9x) ${ratio >= 0.9 ? 'OK' : 'BELOW TARGET'}`,
  );
  console.log(`event-loop delay p99 while hashing through the storer: median ${ms(median(storerP99))} ms (raw: ${ms(median(rawP99))} ms)`);

  // The scenario: 40 hashes arrive at once. Raw, they take every pool thread and
  // a file read queues behind them; through the default limiter a thread stays free.
  const burst = 40;
  const rawRead = await readFileDuring(() => rawBurst(burst, burst));
  const limiter = new HashLimiter();
  let refused = 0;
  const storerRead = await readFileDuring(async () => {
    const statuses = await storerBurst(burst, limiter, 'burst');
    refused = statuses.filter((s) => s === 503).length;
  });
  console.log(
    `fs.readFile during a burst of ${burst} cost-${cost} hashes: raw ${rawRead.toFixed(1)} ms; ` +
      `through the default limiter (${limiter.maxConcurrent} running, ${limiter.maxQueue} queued) ${storerRead.toFixed(1)} ms, ${refused} answered 503 at once`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
