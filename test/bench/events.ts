/**
 * Security events under a refusal flood: 10 000 refused requests against the demo chain
 * with its pino sink (writing to /dev/null, synchronously, as the demo writes to stdout)
 * and without any sink, both in one server child. Two floods: an IDOR probe (bob reading srv-alice, an
 * `authz_fail` each) and anonymous requests (a 401 each, the cheapest refusal, so the
 * event path weighs most). Servers and autocannon each run in a process of their own.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createDemoApp, demoTokens } from '../../examples/demo-app';
import type { SecurityEvent } from '../../lib';
import { exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Child, Row } from './common';

type Sink = 'off' | 'pino';
type Flood = 'idor' | 'anonymous';

const SINKS: readonly Sink[] = ['off', 'pino'];
const FLOODS: readonly Flood[] = ['idor', 'anonymous'];
const CONNECTIONS = 10;

/** Both servers in one child: they take turns under load, and one start-up is paid, not two. */
async function serve(): Promise<void> {
  exitWithParent();
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-events-'));
  const log = pino(
    { base: null, timestamp: false, formatters: { level: (label) => ({ severity: label }) } },
    pino.destination({ dest: '/dev/null', sync: true }),
  );
  let written = 0;
  const demos = SINKS.map((sink) =>
    createDemoApp({
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
    }),
  );
  const servers = await Promise.all(
    demos.map(
      (demo) =>
        new Promise<Server>((resolve) => {
          const server = demo.app.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  process.send?.({ ports });
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuMs: (user + system) / 1000 });
      return;
    }
    if (message === 'written') {
      process.send?.({ written, stats: demos[1]?.events?.stats() });
      return;
    }
    if (message !== 'stop') return;
    for (const server of servers) server.closeAllConnections();
    void Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve)))).then(() => {
      for (const demo of demos) void demo.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
}

interface Load {
  readonly requestsPerSecond: number;
}

interface Measured extends Load {
  /** Requests per second of the server's own CPU time: what the flood costs the server, whatever else runs. */
  readonly perCpuSecond: number;
}

async function measuredFlood(running: { child: Child; port: number }, kind: Flood, amount: number): Promise<Measured> {
  const cpu = async (): Promise<number> => {
    running.child.send('cpu');
    return (await running.child.next<{ cpuMs: number }>()).cpuMs;
  };
  const before = await cpu();
  const load = await flood(running.port, kind, amount);
  const spent = (await cpu()) - before;
  return { ...load, perCpuSecond: amount / (spent / 1000) };
}

function flood(port: number, kind: Flood, amount: number): Promise<Load> {
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
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
          requests: { average: number; total: number };
          duration: number;
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
        resolve({ requestsPerSecond: amount / result.duration });
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
  const children = new Map<Sink, { child: Child; port: number }>();
  console.log('security events under a refusal flood (autocannon in its own process against a server child)');
  const child = forkChild(__filename, ['serve'], limitMs);
  try {
    const { ports } = await child.next<{ ports: number[] }>();
    for (const [index, sink] of SINKS.entries()) children.set(sink, { child, port: ports[index] ?? 0 });
    for (const { port } of children.values()) {
      for (const kind of FLOODS) if (config.warmup > 0) await flood(port, kind, config.warmup);
    }
    const keys = FLOODS.flatMap((kind) => SINKS.map((sink) => ({ kind, sink })));
    const results = new Map<string, Measured[]>(keys.map(({ kind, sink }) => [`${kind}/${sink}`, []]));
    for (let round = 0; round < config.rounds; round++) {
      const line: string[] = [];
      for (const { kind, sink } of interleaved(keys, round)) {
        const running = children.get(sink);
        if (running === undefined) throw new Error('missing server');
        const load = await measuredFlood(running, kind, config.amount);
        results.get(`${kind}/${sink}`)?.push(load);
        line.push(`${kind} ${sink} ${load.requestsPerSecond.toFixed(0)}/s (${load.perCpuSecond.toFixed(0)}/CPU-s)`);
      }
      log(`events round ${round + 1}/${config.rounds}: ${line.join(', ')}`);
    }
    const pino = children.get('pino');
    if (pino !== undefined) {
      pino.child.send('written');
      const { written, stats } = await pino.child.next<{ written: number; stats: unknown }>();
      log(
        `pino sink: ${written} lines written for ${config.rounds * FLOODS.length} measured floods and the warm-up; ${JSON.stringify(stats)}`,
      );
    }
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
      rows.push({
        section,
        measure: `${what}, no sink: req per server CPU-s (req/s)`,
        value: value(off),
        compared: '1.00x',
        target: 'baseline',
        verdict: '',
      });
      rows.push({
        section,
        measure: `${what}, pino sink: req per server CPU-s (req/s)`,
        value: value(on),
        // The verdict is on server CPU time: on a shared machine wall-clock req/s mostly measures the neighbours.
        compared: `${fixed(cpu)}x no sink (wall ${fixed(wall)}x)`,
        target: '>= 0.95x no sink',
        verdict: verdict(cpu >= 0.95),
      });
    }
    return rows;
  } finally {
    await child.stop();
  }
}

if (process.argv[2] === 'serve') {
  serve().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
