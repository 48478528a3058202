/**
 * Cost as data and processes grow. SQLite: the store with `sizes` records (built with one
 * bulk insert in a transaction, not through the API), timed per operation in a child
 * process of its own: state read, set-once and delete. Redis: the demo on `RedisStore`,
 * one process and then two behind the same `redis-server`, loaded with autocannon; the
 * servers' CPU time per request shows whether a second process serialises or repeats
 * work (on 2 shared cores throughput cannot show scaling).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../../lib';
import type { PasswordRecord } from '../../lib';
import { createDemoApp, demoTokens } from '../../examples/demo-app';
import { findRedisServer, startRedisServer } from '../helpers/redis-server';
import { autocannon } from './chain';
import { exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Row } from './common';

// ---- SQLite, in a child process ----

type SqliteOp = 'state read' | 'set-once' | 'delete';
const SQLITE_OPS: readonly SqliteOp[] = ['state read', 'set-once', 'delete'];

interface OpTimes {
  readonly p50: number;
  readonly p99: number;
  readonly opsPerSecond: number;
}

const record = (i: number): PasswordRecord => ({
  // bcrypt's shape and length, so rows weigh what real ones do.
  hash: `$2b$12$${randomBytes(40).toString('base64').slice(0, 53)}`,
  scheme: 'bcrypt',
  setAt: new Date(1_700_000_000_000 + i).toISOString(),
});

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

function sqliteChild(): void {
  exitWithParent();
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-scale-'));
  const stores = new Map<number, SqliteStore>();
  let fresh = 0;
  process.on('message', (message: { build?: number; run?: number; ops?: number; writeOps?: number } | 'stop') => {
    if (message === 'stop') {
      for (const store of stores.values()) store.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
    if (message.build !== undefined) {
      const size = message.build;
      const store = new SqliteStore({ filename: join(dir, `${size}.db`) });
      const insert = store.database.prepare(`INSERT INTO "${store.table}" (id, hash, scheme, set_at) VALUES (?, ?, ?, ?)`);
      const started = performance.now();
      // One transaction: a million rows inserted one commit each would take hours.
      store.database.exec('BEGIN');
      for (let i = 0; i < size; i++) {
        const r = record(i);
        insert.run(`srv-${i}`, r.hash, r.scheme, r.setAt);
      }
      store.database.exec('COMMIT');
      stores.set(size, store);
      process.send?.({ builtMs: performance.now() - started });
      return;
    }
    if (message.run !== undefined && message.ops !== undefined && message.writeOps !== undefined) {
      const size = message.run;
      const store = stores.get(size);
      if (store === undefined) throw new Error(`no store of ${size}`);
      const result: Partial<Record<SqliteOp, OpTimes>> = {};
      const ids: string[] = [];
      for (const op of SQLITE_OPS) {
        const times: number[] = [];
        const n = op === 'state read' ? message.ops : message.writeOps;
        const started = performance.now();
        for (let i = 0; i < n; i++) {
          const before = performance.now();
          if (op === 'state read') {
            if (store.get(`srv-${Math.floor(Math.random() * size)}`) === undefined) throw new Error('missing record');
          } else if (op === 'set-once') {
            const id = `new-${fresh++}`;
            ids.push(id);
            if (!store.setIfAbsent(id, record(i))) throw new Error('set-once refused a new id');
          } else {
            // The records set just before: the store keeps its size from run to run.
            if (!store.delete(ids[i] ?? '')) throw new Error('delete found nothing');
          }
          times.push((performance.now() - before) * 1000);
        }
        const elapsed = (performance.now() - started) / 1000;
        times.sort((a, b) => a - b);
        result[op] = { p50: quantile(times, 0.5), p99: quantile(times, 0.99), opsPerSecond: n / elapsed };
      }
      process.send?.(result);
    }
  });
  process.send?.('ready');
}

export interface ScalingConfig {
  /** Record counts; the first is the baseline of the targets, the last is compared with it. */
  readonly sizes: readonly number[];
  readonly rounds: number;
  /** State reads per size and round. */
  readonly ops: number;
  /** Set-once and delete operations per size and round (each waits for an fsync). */
  readonly writeOps: number;
  /** Seconds per Redis load run. */
  readonly seconds: number;
}

const count = (n: number): string => n.toLocaleString('en-US').replace(/,/g, ' ');

async function sqliteRows(config: ScalingConfig, log: (line: string) => void): Promise<Row[]> {
  const child = forkChild(__filename, ['sqlite'], 30 * 60_000);
  try {
    await child.next<string>();
    for (const size of config.sizes) {
      child.send({ build: size });
      const { builtMs } = await child.next<{ builtMs: number }>();
      log(`sqlite: ${count(size)} records inserted in ${fixed(builtMs / 1000, 1)} s (one transaction)`);
    }
    const results = new Map<number, Array<Record<SqliteOp, OpTimes>>>(config.sizes.map((size) => [size, []]));
    for (let round = 0; round < config.rounds; round++) {
      const line: string[] = [];
      for (const size of interleaved(config.sizes, round)) {
        child.send({ run: size, ops: config.ops, writeOps: config.writeOps });
        const times = await child.next<Record<SqliteOp, OpTimes>>();
        results.get(size)?.push(times);
        line.push(`${count(size)}: ${SQLITE_OPS.map((op) => `${op} p99 ${fixed(times[op].p99, 0)} µs`).join(', ')}`);
      }
      log(`sqlite round ${round + 1}/${config.rounds}: ${line.join('; ')}`);
    }
    const rows: Row[] = [];
    const base = config.sizes[0] ?? 0;
    const last = config.sizes[config.sizes.length - 1] ?? 0;
    const med = (size: number, op: SqliteOp, field: keyof OpTimes): number =>
      median((results.get(size) ?? []).map((r) => r[op][field]));
    for (const op of SQLITE_OPS) {
      const section = `SqliteStore, ${op}`;
      for (const size of config.sizes) {
        const ratio = med(size, op, 'p99') / med(base, op, 'p99');
        const targeted = size === last && size !== base && op !== 'delete';
        rows.push({
          section,
          measure: `${count(size)} records: p50 / p99 latency (ops/s)`,
          value: `${fixed(med(size, op, 'p50'), 0)} / ${fixed(med(size, op, 'p99'), 0)} µs (${fixed(med(size, op, 'opsPerSecond'), 0)})`,
          compared: size === base ? '1.00x' : `p99 ${fixed(ratio)}x ${count(base)}'s`,
          target: targeted ? `p99 <= 1.5x ${count(base)}'s` : size === base ? 'baseline' : 'none (reported)',
          verdict: targeted ? verdict(ratio <= 1.5) : '',
        });
      }
    }
    return rows;
  } finally {
    await child.stop();
  }
}

// ---- Redis: demo processes, each a child ----

async function redisDemoChild(url: string): Promise<void> {
  exitWithParent();
  const { redisStorage } = await import('../../examples/demo-redis');
  const storage = await redisStorage(url, () => undefined);
  const demo = createDemoApp({
    storage,
    tokens: demoTokens({}),
    metadataSecret: 'bench-metadata-secret-0123456789abcdef',
    pepper: 'bench-pepper-0123456789abcdef0123456789',
    cost: 10,
    log: false,
  });
  await storage.ready();
  await storage.passwords.setIfAbsent('srv-alice', record(0));
  const server = demo.app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  process.on('message', (message) => {
    if (message === 'cpu') {
      const usage = process.cpuUsage();
      process.send?.({ cpuMicros: usage.user + usage.system });
    } else if (message === 'stop') {
      server.closeAllConnections();
      server.close(() => {
        void Promise.resolve(demo.close()).finally(() => process.exit(0));
      });
    }
  });
}

type Processes = 1 | 2;

interface RedisRun {
  readonly opsPerSecond: number;
  readonly cpuMicrosPerOp: number;
}

async function redisRows(config: ScalingConfig, log: (line: string) => void): Promise<Row[]> {
  const binary = findRedisServer();
  const section = 'RedisStore demo, GET state';
  if (binary === undefined) {
    log('redis: no redis-server on PATH (or REDIS_SERVER_BIN): skipped');
    return [
      {
        section,
        measure: 'one vs two processes',
        value: 'skipped: no redis-server',
        compared: '',
        target: 'needs redis-server',
        verdict: '',
      },
    ];
  }
  const redis = await startRedisServer(binary);
  const limitMs = (config.rounds * config.seconds * 2 + 120) * 1000;
  const children = [
    forkChild(__filename, ['redis-demo', redis.url], limitMs),
    forkChild(__filename, ['redis-demo', redis.url], limitMs),
  ];
  try {
    const ports: number[] = [];
    for (const child of children) ports.push((await child.next<{ port: number }>()).port);
    const cpu = async (): Promise<number[]> =>
      Promise.all(
        children.map(async (child) => {
          child.send('cpu');
          return (await child.next<{ cpuMicros: number }>()).cpuMicros;
        }),
      );
    // Warm both, so neither is measured while its JIT still compiles.
    await Promise.all(ports.map((port) => autocannon(port, Math.min(2, config.seconds), undefined, 5)));
    const results = new Map<Processes, RedisRun[]>([
      [1, []],
      [2, []],
    ]);
    for (let round = 0; round < config.rounds; round++) {
      const line: string[] = [];
      for (const processes of interleaved<Processes>([1, 2], round)) {
        const before = await cpu();
        // Ten connections in all, as in the chain section: split between the processes.
        const loads = await Promise.all(
          ports.slice(0, processes).map((port) => autocannon(port, config.seconds, undefined, 10 / processes)),
        );
        const after = await cpu();
        const requests = loads.reduce((total, load) => total + load.requests, 0);
        const cpuMicros = after.reduce((total, value, i) => total + value - (before[i] ?? 0), 0);
        const run: RedisRun = {
          opsPerSecond: loads.reduce((total, load) => total + load.requestsPerSecond, 0),
          cpuMicrosPerOp: cpuMicros / requests,
        };
        results.get(processes)?.push(run);
        line.push(
          `${processes} process${processes === 1 ? '' : 'es'} ${run.opsPerSecond.toFixed(0)}/s, ${run.cpuMicrosPerOp.toFixed(0)} µs CPU/op`,
        );
      }
      log(`redis round ${round + 1}/${config.rounds}: ${line.join(', ')}`);
    }
    const runsOf = (processes: Processes): RedisRun[] => results.get(processes) ?? [];
    const ratio = median(runsOf(2).map((run, round) => run.cpuMicrosPerOp / (runsOf(1)[round]?.cpuMicrosPerOp ?? Number.NaN)));
    const rows: Row[] = [];
    for (const processes of [1, 2] as const) {
      const runs = runsOf(processes);
      rows.push({
        section,
        measure: `${processes} demo process${processes === 1 ? '' : 'es'}: server CPU per request (req/s)`,
        value: `${fixed(median(runs.map((r) => r.cpuMicrosPerOp)), 0)} µs (${fixed(median(runs.map((r) => r.opsPerSecond)), 0)})`,
        compared: processes === 1 ? '1.00x' : `${fixed(ratio)}x one process's CPU per request`,
        target: processes === 1 ? 'baseline' : '<= 1.15x',
        verdict: processes === 1 ? '' : verdict(ratio <= 1.15),
      });
    }
    return rows;
  } finally {
    await Promise.all(children.map((child) => child.stop()));
    await redis.stop();
  }
}

export async function scalingRows(config: ScalingConfig, log: (line: string) => void): Promise<Row[]> {
  return [...(await sqliteRows(config, log)), ...(await redisRows(config, log))];
}

if (process.argv[2] === 'sqlite') sqliteChild();
if (process.argv[2] === 'redis-demo') {
  redisDemoChild(process.argv[3] ?? '').catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
