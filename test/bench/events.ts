/**
 * Security events under a refusal flood: 10 000 refused requests against the demo chain
 * with its pino sink (writing to /dev/null, synchronously, as the demo writes to stdout)
 * and without any sink, each in a server child of its own. Two floods: an IDOR probe (bob
 * reading srv-alice, an `authz_fail` each) and anonymous requests (a 401 each, the
 * cheapest refusal, so the event path weighs most). With 2 CPUs or more both servers are
 * pinned to one CPU and autocannon to another (taskset), so that a flood's rate is the
 * server's and not the load generator's: on 2 shared cores autocannon was the bottleneck.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createDemoApp, demoTokens } from '../../examples/demo-app';
import type { SecurityEvent } from '../../lib';
import { PIN, pinProcess } from './chain';
import { compare, summarise, within } from './profile';
import type { CpuProfile } from './profile';
import { exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Child, Row } from './common';

type Sink = 'off' | 'pino';
type Flood = 'idor' | 'anonymous';

const SINKS: readonly Sink[] = ['off', 'pino'];
const FLOODS: readonly Flood[] = ['idor', 'anonymous'];
const CONNECTIONS = 10;

/** One server per child: the no-sink one must not share a process where a sink was registered. */
async function serve(sink: Sink): Promise<void> {
  exitWithParent();
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-events-'));
  const log = pino(
    { base: null, timestamp: false, formatters: { level: (label) => ({ severity: label }) } },
    pino.destination({ dest: '/dev/null', sync: true }),
  );
  let written = 0;
  const demo = createDemoApp({
    filename: join(dir, `bench-${sink}.db`),
    tokens: demoTokens({}),
    metadataSecret: 'bench-metadata-secret-0123456789abcdef',
    pepper: 'bench-pepper-0123456789abcdef0123456789',
    cost: 10,
    log: false,
    ...(sink === 'pino'
      ? {
          events: (event: SecurityEvent) => {
            written += 1;
            log.warn(event);
          },
        }
      : {}),
  });
  const server = await new Promise<Server>((resolve) => {
    const listening = demo.app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  // The flood's wall time is taken here, from its first request to its last: autocannon's
  // own `duration` with `-a` ends on its next 1 s tick, so 10 000 requests in 2.1 s read
  // as 3 s. One clock read per request, in both servers alike.
  let first = 0;
  let last = 0;
  server.on('request', () => {
    last = performance.now();
    if (first === 0) first = last;
  });
  process.send?.({ port: (server.address() as AddressInfo).port });
  process.on('message', (message) => {
    if (message === 'mark') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuMs: (user + system) / 1000, wallMs: last - first } satisfies Mark);
      first = 0;
      return;
    }
    if (message === 'written') {
      process.send?.({ written, stats: demo.events?.stats() });
      return;
    }
    if (message !== 'stop') return;
    server.closeAllConnections();
    server.close(() => {
      void Promise.resolve(demo.close()).then(() => {
        rmSync(dir, { recursive: true, force: true });
        process.exit(0);
      });
    });
  });
}

interface Measured {
  /** Wall-clock requests per second, from the flood's first request at the server to its last. */
  readonly requestsPerSecond: number;
  /** Requests per second of the server's own CPU time: what the flood costs the server, whatever else runs. */
  readonly perCpuSecond: number;
}

interface Running {
  readonly child: Child;
  readonly port: number;
}

/** The server's CPU time so far, and the span of the requests since the last mark. */
interface Mark {
  readonly cpuMs: number;
  readonly wallMs: number;
}

async function measuredFlood(running: Running, kind: Flood, amount: number): Promise<Measured> {
  const mark = async (): Promise<Mark> => {
    running.child.send('mark');
    return running.child.next<Mark>();
  };
  const before = await mark();
  await flood(running.port, kind, amount);
  const after = await mark();
  // amount - 1 gaps between the first request and the last.
  return {
    requestsPerSecond: (amount - 1) / (after.wallMs / 1000),
    perCpuSecond: amount / ((after.cpuMs - before.cpuMs) / 1000),
  };
}

/** Sends `amount` requests that are all refused, from autocannon on the load CPU when pinned. */
function flood(port: number, kind: Flood, amount: number): Promise<void> {
  const cli = require.resolve('autocannon/autocannon.js');
  const auth = kind === 'idor' ? ['-H', 'authorization=Bearer bob-token'] : [];
  const args = [
    cli,
    '--json',
    '-c',
    String(CONNECTIONS),
    '-a',
    String(amount),
    ...auth,
    `http://127.0.0.1:${port}/servers/srv-alice/password`,
  ];
  const expected = kind === 'idor' ? 404 : 401;
  return new Promise((resolve, reject) => {
    const child =
      PIN === undefined
        ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', PIN.load, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.stderr.on('data', (data: Buffer) => (err += data.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      try {
        if (code !== 0) throw new Error(`autocannon exited ${code}: ${err}`);
        const result = JSON.parse(out) as {
          statusCodeStats?: Record<string, { count: number }>;
          errors: number;
          timeouts: number;
        };
        // Only a flood answered entirely with the expected refusal counts.
        const answered = result.statusCodeStats?.[String(expected)]?.count ?? 0;
        if (answered !== amount || result.errors !== 0 || result.timeouts !== 0) {
          throw new Error(
            `port ${port}: ${answered} of ${amount} answered ${expected}, ${result.errors} errors, ${result.timeouts} timeouts`,
          );
        }
        resolve();
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

export interface EventsConfig {
  readonly rounds: number;
  /** Refused requests per flood. */
  readonly amount: number;
  /** Requests per flood kind and server before measuring, to warm the JIT. */
  readonly warmup: number;
}

export async function eventRows(config: EventsConfig, log: (line: string) => void): Promise<Row[]> {
  const limitMs = (config.rounds * SINKS.length * FLOODS.length * 60 + 120) * 1000;
  console.log(
    `security events under a refusal flood (a server child per sink${PIN === undefined ? '' : ` on CPU ${PIN.server}`}, autocannon in its own process${PIN === undefined ? '' : ` on CPU ${PIN.load}`})`,
  );
  const children = new Map<Sink, Running>();
  try {
    // Started together (their start-up overlaps), measured one at a time.
    await Promise.all(
      SINKS.map(async (sink) => {
        const child = forkChild(__filename, ['events-serve', sink], limitMs);
        children.set(sink, { child, port: 0 });
        const { port } = await child.next<{ port: number }>();
        children.set(sink, { child, port });
        // Both on one CPU: only one is loaded at a time, and the flood is then bounded by
        // the server, not by autocannon competing with it for the same core.
        if (PIN !== undefined && child.process.pid !== undefined) pinProcess(child.process.pid, PIN.server);
      }),
    );
    const runningOf = (sink: Sink): Running => {
      const running = children.get(sink);
      if (running === undefined) throw new Error(`no ${sink} server`);
      return running;
    };
    for (const sink of SINKS) {
      for (const kind of FLOODS) if (config.warmup > 0) await flood(runningOf(sink).port, kind, config.warmup);
    }
    const keys = FLOODS.flatMap((kind) => SINKS.map((sink) => ({ kind, sink })));
    const results = new Map<string, Measured[]>(keys.map(({ kind, sink }) => [`${kind}/${sink}`, []]));
    for (let round = 0; round < config.rounds; round++) {
      const line: string[] = [];
      for (const { kind, sink } of interleaved(keys, round)) {
        const load = await measuredFlood(runningOf(sink), kind, config.amount);
        results.get(`${kind}/${sink}`)?.push(load);
        // Busy: the server's CPU time over the flood's wall time; near 100 % the flood was bounded by the server.
        const busy = (100 * load.requestsPerSecond) / load.perCpuSecond;
        line.push(
          `${kind} ${sink} ${load.perCpuSecond.toFixed(0)}/CPU-s (${load.requestsPerSecond.toFixed(0)}/s, busy ${busy.toFixed(0)} %)`,
        );
      }
      log(`events round ${round + 1}/${config.rounds}: ${line.join(', ')}`);
    }
    const pino = runningOf('pino');
    pino.child.send('written');
    const { written, stats } = await pino.child.next<{ written: number; stats: unknown }>();
    log(
      `pino sink: ${written} lines written for ${config.rounds * FLOODS.length} measured floods and the warm-up; ${JSON.stringify(stats)}`,
    );
    const rows: Row[] = [];
    for (const kind of FLOODS) {
      const off = results.get(`${kind}/off`) ?? [];
      const on = results.get(`${kind}/pino`) ?? [];
      // Ratio within each round, then the median: neighbours in time share the machine's load.
      const ratio = (pick: (load: Measured) => number): number =>
        median(
          on.map((load, round) => pick(load) / pick(off[round] ?? { requestsPerSecond: Number.NaN, perCpuSecond: Number.NaN })),
        );
      const wall = ratio((load) => load.requestsPerSecond);
      const cpu = ratio((load) => load.perCpuSecond);
      const section = 'security events';
      const what = kind === 'idor' ? 'IDOR probe flood (404 authz_fail)' : 'anonymous flood (401 authn_login_fail)';
      const value = (loads: readonly Measured[]): string =>
        `${median(loads.map((load) => load.perCpuSecond)).toFixed(0)} (${median(loads.map((load) => load.requestsPerSecond)).toFixed(0)} wall)`;
      const measure = 'req per server CPU-s (req/s)';
      rows.push({
        section,
        measure: `${what}, no sink: ${measure}`,
        value: value(off),
        compared: '1.00x',
        target: 'baseline',
        verdict: '',
      });
      rows.push({
        section,
        measure: `${what}, pino sink: ${measure}`,
        value: value(on),
        // The verdict is on server CPU time: the throughput the server sustains on its own
        // core, whatever share of it the machine's other processes take (wall is printed too).
        compared: `${fixed(cpu)}x no sink (wall ${fixed(wall)}x)`,
        target: '>= 0.95x no sink',
        verdict: verdict(cpu >= 0.95),
      });
    }
    return rows;
  } finally {
    await Promise.all([...children.values()].map(({ child }) => child.stop()));
  }
}

/**
 * `npx tsx test/bench/events.ts profile [anonymous|idor] [floods]`: both servers under
 * `--cpu-prof`, pinned as in the bench, each loaded with `floods` floods of 10 000 after a
 * warm-up; prints µs of server CPU per request by package / file, side by side.
 */
async function profileFloods(kind: Flood, floods: number): Promise<void> {
  const amount = 10_000;
  const profiles: Array<{ name: string; profile: CpuProfile; requests: number }> = [];
  for (const sink of SINKS) {
    const dir = mkdtempSync(join(tmpdir(), 'epg-bench-events-prof-'));
    const child = forkChild(__filename, ['events-serve', sink], (floods + 2) * 60_000, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const { port } = await child.next<{ port: number }>();
    if (PIN !== undefined && child.process.pid !== undefined) pinProcess(child.process.pid, PIN.server);
    await flood(port, kind, 4000);
    const from = Number(process.hrtime.bigint() / 1000n);
    const before = performance.now();
    for (let i = 0; i < floods; i++) await flood(port, kind, amount);
    const to = Number(process.hrtime.bigint() / 1000n);
    console.log(`${kind} flood, ${sink}: ${floods} x ${amount} in ${((performance.now() - before) / 1000).toFixed(1)} s`);
    await child.stop();
    // tsx's loader thread writes a profile too, nearly all idle: the main thread's is the largest.
    const file = readdirSync(dir)
      .filter((name) => name.endsWith('.cpuprofile'))
      .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
    if (file === undefined) throw new Error(`no profile written to ${dir}`);
    const profile = within(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, from, to);
    console.log(`profile ${join(dir, file)}\n${summarise(profile, 30, floods * amount)}\n`);
    profiles.push({ name: sink, profile, requests: floods * amount });
  }
  console.log(compare(profiles, 40));
}

// Not 'serve': chain.ts, imported for its pinning, starts a chain server on that word.
if (process.argv[2] === 'events-serve') {
  const sink = process.argv[3];
  if (sink !== 'off' && sink !== 'pino') throw new Error(`events serve: no sink "${String(sink)}"`);
  serve(sink).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else if (process.argv[2] === 'profile') {
  const kind = process.argv[3] ?? 'anonymous';
  if (kind !== 'anonymous' && kind !== 'idor') throw new Error(`events profile: no flood "${kind}"`);
  profileFloods(kind, Number(process.argv[4] ?? 3)).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
