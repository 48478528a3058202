/**
 * Chain overhead: `GET /servers/:id/password` as the demo serves it (every fix chained
 * in front), against the same lookup written on bare Express, with helmet alone, and
 * written by hand with the same libraries (the hand-rolled equivalent). Each server runs
 * in its own child process; autocannon runs in another (its CLI), so the load generator
 * never shares the server's event loop. Every round runs twice: unpinned, and pinned
 * (the server on one CPU, autocannon on another, with taskset) so that the ratio is
 * the server's cost rather than the server's and the load generator's together.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import express5 from 'express';
import express4 from 'express4';
import type { Express, Request, Response } from 'express';
import helmet from 'helmet';
import { param, validationResult } from 'express-validator';
import { SqliteStore } from '../../lib';
import { createDemoApp, demoTokens } from '../../examples/demo-app';
import type { DemoServer, DemoUser } from '../../examples/demo-app';
import { exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Child, Row } from './common';

export type ChainVariant = 'bare' | 'helmet' | 'hand-rolled' | 'hardened';
export type ExpressMajor = '4' | '5';

export const CHAIN_VARIANTS: readonly ChainVariant[] = ['bare', 'helmet', 'hand-rolled', 'hardened'];
export const EXPRESS_MAJORS: readonly ExpressMajor[] = ['4', '5'];

const PATH = '/servers/srv-alice/password';
const TOKEN = 'alice-token';
const CONNECTIONS = 10;

// ---- the server, in a child process ----

/**
 * The route as an app without the bundle would write it: the same token, lookup, owner
 * check and store read. `helmet` adds `helmet()`; `hand-rolled` is what a careful app
 * writes instead of the bundle with the same libraries: helmet, `express.json()`,
 * express-validator on the id, `no-store`, the owner check by hand.
 */
function plainApp(
  express: typeof express5,
  filename: string,
  variant: 'bare' | 'helmet' | 'hand-rolled',
): { app: Express; store: SqliteStore } {
  const store = new SqliteStore({ filename });
  const db = store.database;
  db.exec('CREATE TABLE IF NOT EXISTS servers (id TEXT PRIMARY KEY, owner TEXT NOT NULL) STRICT');
  db.prepare('INSERT INTO servers (id, owner) VALUES (?, ?) ON CONFLICT DO NOTHING').run('srv-alice', 'alice');
  const selectServer = db.prepare('SELECT id, owner FROM servers WHERE id = ?');
  const tokens = demoTokens({});
  const app = express();
  const handRolled = variant === 'hand-rolled';
  if (variant !== 'bare') app.use(helmet());
  if (handRolled) app.use(express.json({ limit: 1020 }));
  app.use((req, _res, next) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]+)$/.exec(header);
    const user = match?.[1] === undefined ? undefined : tokens.get(match[1]);
    if (user !== undefined) (req as Request & { user?: DemoUser }).user = user;
    next();
  });
  const validId = handRolled
    ? [
        param('id')
          .isString()
          .isLength({ min: 1, max: 64 })
          .matches(/^[\w.-]+$/),
      ]
    : [];
  app.get('/servers/:id/password', ...validId, (req: Request, res: Response) => {
    if (handRolled) {
      res.set('Cache-Control', 'no-store');
      if (!validationResult(req).isEmpty()) {
        res.status(400).json({ error: 'invalid server id' });
        return;
      }
    }
    const user = (req as Request & { user?: DemoUser }).user;
    if (user === undefined) {
      res.status(401).end();
      return;
    }
    const id = req.params['id'];
    const server = selectServer.get(id) as DemoServer | undefined;
    if (server === undefined || (server.owner !== user.id && !user.admin)) {
      res.status(404).end();
      return;
    }
    const record = store.get(server.id);
    res.json(
      record === undefined ? { passwordSet: false } : { passwordSet: true, setAt: record.setAt, algorithm: record.scheme },
    );
  });
  return { app, store };
}

async function serve(variant: ChainVariant, major: ExpressMajor): Promise<void> {
  exitWithParent();
  const express = major === '4' ? (express4 as unknown as typeof express5) : express5;
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-chain-'));
  const filename = join(dir, 'bench.db');
  const built =
    variant === 'hardened'
      ? createDemoApp({
          filename,
          tokens: demoTokens({}),
          metadataSecret: 'bench-metadata-secret-0123456789abcdef',
          pepper: 'bench-pepper-0123456789abcdef0123456789',
          cost: 10,
          express,
          log: false,
        })
      : plainApp(express, filename, variant);
  // A password is set, so every variant reads a real record and answers the same state.
  await built.store.setIfAbsent('srv-alice', {
    hash: await bcrypt.hash('bench password', 10),
    scheme: 'bcrypt',
    setAt: new Date(0).toISOString(),
  });
  const server = built.app.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  process.on('message', (message) => {
    if (message !== 'stop') return;
    server.closeAllConnections();
    server.close(() => {
      if ('close' in built) void built.close();
      else built.store.close();
      rmSync(dir, { recursive: true, force: true });
      // A normal exit, so that --cpu-prof writes its profile.
      process.exit(0);
    });
  });
}

// ---- the load, in autocannon's own process ----

export interface Load {
  readonly requestsPerSecond: number;
  /** Requests answered in the whole run. */
  readonly requests: number;
  readonly p99: number;
}

interface AutocannonJson {
  readonly requests: { readonly average: number; readonly total: number };
  readonly latency: { readonly p99: number };
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly '2xx': number;
}

/** The CPUs the server child and the load generator are pinned to, or undefined when there are fewer than 2. */
export const PIN = cpus().length >= 2 ? { server: '0', load: '1', all: `0-${cpus().length - 1}` } : undefined;

/** Sets the CPUs every thread of `pid` may run on (taskset, util-linux). */
export function pinProcess(pid: number, cpuList: string): void {
  execFileSync('taskset', ['-a', '-cp', cpuList, String(pid)], { stdio: 'ignore' });
}

export function autocannon(port: number, seconds: number, loadCpus?: string, connections = CONNECTIONS): Promise<Load> {
  const cli = require.resolve('autocannon/autocannon.js');
  const args = [
    cli,
    '--json',
    '-c',
    String(connections),
    '-d',
    String(seconds),
    '-H',
    `authorization=Bearer ${TOKEN}`,
    `http://127.0.0.1:${port}${PATH}`,
  ];
  return new Promise((resolve, reject) => {
    const child =
      loadCpus === undefined
        ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('taskset', ['-c', loadCpus, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (data: Buffer) => (out += data.toString()));
    child.stderr.on('data', (data: Buffer) => (err += data.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('exit', (code) => {
      clearTimeout(killer);
      try {
        if (code !== 0) throw new Error(`autocannon exited ${code}: ${err}`);
        const result = JSON.parse(out) as AutocannonJson;
        // A variant answering errors quickly would look fast: only all-200 runs count.
        if (result.non2xx !== 0 || result.errors !== 0 || result.timeouts !== 0 || result['2xx'] === 0) {
          throw new Error(
            `port ${port}: ${result['2xx']} 2xx, ${result.non2xx} other, ${result.errors} errors, ${result.timeouts} timeouts`,
          );
        }
        resolve({ requestsPerSecond: result.requests.average, requests: result.requests.total, p99: result.latency.p99 });
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

// ---- the driver, in the bench's process ----

/** A chain server in a child process of its own, and its port. */
export async function startChainServer(
  variant: ChainVariant,
  major: ExpressMajor,
  limitMs: number,
  execArgv: readonly string[] = [],
): Promise<{ child: Child; port: number }> {
  const child = forkChild(__filename, ['serve', variant, major], limitMs, execArgv);
  const { port } = await child.next<{ port: number }>();
  return { child, port };
}

export interface ChainConfig {
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** Directory for `--cpu-prof` profiles of the hardened servers, or undefined. */
  readonly profileDir: string | undefined;
}

export type Pinning = 'pinned' | 'unpinned';

export async function chainRows(config: ChainConfig, log: (line: string) => void): Promise<Row[]> {
  const keys = EXPRESS_MAJORS.flatMap((major) => CHAIN_VARIANTS.map((variant) => ({ major, variant })));
  const modes: readonly Pinning[] = PIN === undefined ? ['unpinned'] : ['unpinned', 'pinned'];
  const limitMs = (config.rounds * config.seconds * keys.length * modes.length * 1.5 + 180) * 1000;
  const children = new Map<string, { child: Child; port: number }>();
  const key = (major: ExpressMajor, variant: ChainVariant): string => `${major}/${variant}`;
  const runKey = (mode: Pinning, major: ExpressMajor, variant: ChainVariant): string => `${mode}/${major}/${variant}`;
  try {
    // Started one by one: their start-up would otherwise compete with each other.
    for (const { major, variant } of keys) {
      const profile =
        config.profileDir !== undefined && variant === 'hardened' ? ['--cpu-prof', `--cpu-prof-dir=${config.profileDir}`] : [];
      const { child, port } = await startChainServer(variant, major, limitMs, profile);
      children.set(key(major, variant), { child, port });
      // Lets the JIT compile the route before any measured run.
      if (config.warmupSeconds > 0) await autocannon(port, config.warmupSeconds);
    }
    const results = new Map<string, Load[]>();
    for (let round = 0; round < config.rounds; round++) {
      for (const mode of interleaved(modes, round)) {
        const line: string[] = [];
        for (const { major, variant } of interleaved(keys, round)) {
          const running = children.get(key(major, variant));
          const pid = running?.child.process.pid;
          if (running === undefined || pid === undefined) throw new Error('missing server');
          if (PIN !== undefined) pinProcess(pid, mode === 'pinned' ? PIN.server : PIN.all);
          const load = await autocannon(running.port, config.seconds, mode === 'pinned' ? PIN?.load : undefined);
          const runs = results.get(runKey(mode, major, variant)) ?? [];
          runs.push(load);
          results.set(runKey(mode, major, variant), runs);
          line.push(`e${major} ${variant} ${load.requestsPerSecond.toFixed(0)}/s`);
        }
        log(`chain round ${round + 1}/${config.rounds} ${mode}: ${line.join(', ')}`);
      }
    }
    const rows: Row[] = [];
    for (const mode of modes) {
      for (const major of EXPRESS_MAJORS) {
        const runsOf = (variant: ChainVariant): Load[] => results.get(runKey(mode, major, variant)) ?? [];
        const rps = (variant: ChainVariant): number => median(runsOf(variant).map((r) => r.requestsPerSecond));
        const p99 = (variant: ChainVariant): number => median(runsOf(variant).map((r) => r.p99));
        // The ratio of each round's runs, then the median of those: runs of one round are
        // minutes closer in time than the medians of all rounds, so drift cancels better.
        const ratioTo = (variant: ChainVariant, base: ChainVariant): number => {
          const baseRuns = runsOf(base);
          return median(
            runsOf(variant).map((run, round) => run.requestsPerSecond / (baseRuns[round]?.requestsPerSecond ?? Number.NaN)),
          );
        };
        const value = (variant: ChainVariant): string => `${rps(variant).toFixed(0)} (${fixed(p99(variant), 0)} ms)`;
        const pinned = mode === 'pinned';
        const section = `chain, Express ${major}, ${mode}`;
        rows.push({
          section,
          measure: 'bare Express: req/s (p99 latency)',
          value: value('bare'),
          compared: '1.00x',
          target: 'baseline',
          verdict: '',
        });
        rows.push({
          section,
          measure: 'helmet alone: req/s (p99 latency)',
          value: value('helmet'),
          compared: `${fixed(ratioTo('helmet', 'bare'))}x bare`,
          target: 'none (reference)',
          verdict: '',
        });
        rows.push({
          section,
          measure: 'hand-rolled equivalent: req/s (p99 latency)',
          value: value('hand-rolled'),
          compared: `${fixed(ratioTo('hand-rolled', 'bare'))}x bare, ${fixed(ratioTo('hand-rolled', 'helmet'))}x helmet alone`,
          target: 'none (reference)',
          verdict: '',
        });
        const bareRatio = ratioTo('hardened', 'bare');
        const helmetRatio = ratioTo('hardened', 'helmet');
        const handRatio = ratioTo('hardened', 'hand-rolled');
        rows.push({
          section,
          measure: 'hardened demo chain: req/s (p99 latency)',
          value: value('hardened'),
          compared: `${fixed(bareRatio)}x bare, ${fixed(helmetRatio)}x helmet alone, ${fixed(handRatio)}x hand-rolled`,
          target: pinned ? '>= 0.90x bare' : 'none (load generator shares the CPUs)',
          verdict: pinned ? verdict(bareRatio >= 0.9) : '',
        });
        if (pinned) {
          rows.push({
            section,
            measure: 'hardened demo chain / helmet alone',
            value: fixed(helmetRatio),
            compared: 'median of per-round ratios',
            target: '>= 0.97x',
            verdict: verdict(helmetRatio >= 0.97),
          });
          rows.push({
            section,
            measure: 'hardened demo chain / hand-rolled equivalent',
            value: fixed(handRatio),
            compared: 'median of per-round ratios',
            target: '>= 1.00x',
            verdict: verdict(handRatio >= 1),
          });
        }
      }
    }
    return rows;
  } finally {
    await Promise.all([...children.values()].map(({ child }) => child.stop()));
  }
}

if (process.argv[2] === 'serve') {
  serve(process.argv[3] as ChainVariant, process.argv[4] as ExpressMajor).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
