/**
 * `npm run bench`: what the bundle costs, side by side with what users would run
 * instead, as one table of ratios measured in one run with the variants interleaved.
 * Not a test: the numbers depend on the machine. `--smoke` (or BENCH_SMOKE=1) runs one
 * short round with tiny sizes, only to show that every part still runs.
 *
 *   npm run bench
 *   npm run bench -- --smoke
 *   BENCH_ROUNDS=1 BENCH_DEADLINE_S=1800 npm run bench   # full sizes, one round, on a busy machine
 *   BENCH_PROFILE=/tmp/prof npm run bench   # also --cpu-prof the hardened chain servers
 *                                           # (which slows them: that run's chain ratios are not comparable)
 *   BENCH_SECTIONS=sealing,events npm run bench   # only these sections (chain, hashing, sealing,
 *                                                 # uploads, events, scaling), for work on one of them
 *
 * Exits 0 once the table is printed, whatever the verdicts; 1 when a variant misbehaves
 * (a non-2xx answer under load, a storer error) or the run outlives its deadline.
 */
import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { chainRows } from './chain';
import { MB, formatTable } from './common';
import type { Row } from './common';
import { hashingRows } from './hashing';
import { scalingRows } from './scaling';
import { sealingRows } from './sealing';
import { uploadRows } from './uploads';
import { eventRows } from './events';

const smoke = process.argv.includes('--smoke') || process.env['BENCH_SMOKE'] === '1';
const profileDir = process.env['BENCH_PROFILE'] || undefined;
/** The whole command's bound: it stops with exit code 1 rather than run on. */
// The smoke deadline stays under the smoke test's own 110 s, so the bench stops itself first.
/** BENCH_ROUNDS: fewer (or more) rounds in every section, for a machine too busy for a full run. */
const roundsOverride = Number(process.env['BENCH_ROUNDS'] ?? 0) || undefined;
const rounds = (full: number): number => (smoke ? 1 : (roundsOverride ?? full));
// BENCH_DEADLINE_S lifts it on a machine too busy to finish in time.
const DEADLINE_MS = Number(process.env['BENCH_DEADLINE_S'] ?? 0) * 1000 || (smoke ? 300_000 : 14 * 60_000);

const SECTIONS = ['chain', 'hashing', 'sealing', 'uploads', 'events', 'scaling'] as const;
const chosen = new Set(
  (process.env['BENCH_SECTIONS'] ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== ''),
);
for (const name of chosen) {
  if (!(SECTIONS as readonly string[]).includes(name))
    throw new Error(`BENCH_SECTIONS: no section "${name}" (${SECTIONS.join(', ')})`);
}
const runs = (section: (typeof SECTIONS)[number]): boolean => chosen.size === 0 || chosen.has(section);

const log = (line: string): void => {
  console.log(`  ${line}`);
};

async function main(): Promise<void> {
  const started = performance.now();
  const watchdog = setTimeout(() => {
    console.error(`bench: over ${DEADLINE_MS / 1000} s, stopping`);
    process.exit(1);
  }, DEADLINE_MS);
  watchdog.unref();

  const cpu = cpus();
  console.log(
    `express-password-guard bench${smoke ? ' (smoke: one short round, tiny sizes; the numbers mean nothing)' : ''}\n` +
      `node ${process.version}, ${process.platform}/${process.arch}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? 'unknown'}), ` +
      `${(totalmem() / 1024 ** 3).toFixed(0)} GB, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} at start\n`,
  );

  const rows: Row[] = [];
  if (runs('chain')) {
    console.log('chain overhead (autocannon in its own process against a server child)');
    rows.push(
      ...(await chainRows(
        smoke
          ? { rounds: 1, seconds: 1, warmupSeconds: 0, profileDir }
          : { rounds: rounds(5), seconds: 3, warmupSeconds: 1, profileDir },
        log,
      )),
    );
  }
  if (runs('hashing')) {
    console.log('hashing (in a child process of its own)');
    rows.push(
      ...(await hashingRows(
        smoke ? { cost: 10, rounds: 1, perSlot: 2, burst: 40 } : { cost: 12, rounds: rounds(5), perSlot: 4, burst: 40 },
        log,
      )),
    );
  }
  if (runs('sealing')) {
    console.log('sealing (in a child process of its own, on a SQLite file)');
    rows.push(...(await sealingRows(smoke ? { rounds: 1, pairs: 20 } : { rounds: rounds(7), pairs: 300 }, log)));
  }
  if (runs('uploads')) {
    console.log('oversized uploads (a fresh server child per measurement)');
    rows.push(
      ...(await uploadRows(
        smoke
          ? { rounds: 1, size: MB, concurrency: 20, limitMs: 20_000 }
          : { rounds: rounds(3), size: 50 * MB, concurrency: 20, limitMs: 60_000 },
        log,
      )),
    );
  }
  if (runs('events')) {
    rows.push(
      ...(await eventRows(
        smoke ? { rounds: 1, amount: 100, warmup: 0 } : { rounds: rounds(7), amount: 10_000, warmup: 2000 },
        log,
      )),
    );
  }
  if (runs('scaling')) {
    console.log('cost as data and processes grow (SQLite in a child; the demo on Redis in one and two children)');
    rows.push(
      ...(await scalingRows(
        smoke
          ? { sizes: [100, 1000], rounds: 1, ops: 50, writeOps: 20, seconds: 1 }
          : { sizes: [1000, 100_000, 1_000_000], rounds: rounds(3), ops: 2000, writeOps: 300, seconds: 3 },
        log,
      )),
    );
  }

  const targets = rows.filter((row) => row.verdict !== '');
  const met = targets.filter((row) => row.verdict === 'met').length;
  console.log(`\n${formatTable(rows)}\n`);
  console.log(
    `${met} of ${targets.length} targets met; whole run ${((performance.now() - started) / 1000).toFixed(0)} s, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end`,
  );
  clearTimeout(watchdog);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
