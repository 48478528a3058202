/**
 * Chain overhead: `GET /servers/:id/password` as the demo serves it (every fix chained
 * in front), against the same lookup written on bare Express, and with helmet alone.
 * Each server runs in its own child process; autocannon runs in another (its CLI), so
 * the load generator never shares the server's event loop.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import express5 from 'express';
import express4 from 'express4';
import type { Express, Request } from 'express';
import helmet from 'helmet';
import { SqliteStore } from '../../lib';
import { createDemoApp, demoTokens } from '../../examples/demo-app';
import type { DemoServer, DemoUser } from '../../examples/demo-app';
import { exitWithParent, fixed, forkChild, interleaved, median, verdict } from './common';
import type { Child, Row } from './common';

export type ChainVariant = 'bare' | 'helmet' | 'hardened';
export type ExpressMajor = '4' | '5';

export const CHAIN_VARIANTS: readonly ChainVariant[] = ['bare', 'helmet', 'hardened'];
export const EXPRESS_MAJORS: readonly ExpressMajor[] = ['4', '5'];

const PATH = '/servers/srv-alice/password';
const TOKEN = 'alice-token';
const CONNECTIONS = 10;

// ---- the server, in a child process ----

/** The route as an app without the bundle would write it: the same token, lookup, owner check and store read. */
function plainApp(express: typeof express5, filename: string, withHelmet: boolean): { app: Express; store: SqliteStore } {
  const store = new SqliteStore({ filename });
  const db = store.database;
  db.exec('CREATE TABLE IF NOT EXISTS servers (id TEXT PRIMARY KEY, owner TEXT NOT NULL) STRICT');
  db.prepare('INSERT INTO servers (id, owner) VALUES (?, ?) ON CONFLICT DO NOTHING').run('srv-alice', 'alice');
  const selectServer = db.prepare('SELECT id, owner FROM servers WHERE id = ?');
  const tokens = demoTokens({});
  const app = express();
  if (withHelmet) app.use(helmet());
  app.use((req, _res, next) => {
    const header = req.get('authorization');
    const match = header === undefined ? null : /^Bearer ([\x21-\x7e]+)$/.exec(header);
    const user = match?.[1] === undefined ? undefined : tokens.get(match[1]);
    if (user !== undefined) (req as Request & { user?: DemoUser }).user = user;
    next();
  });
  app.get('/servers/:id/password', (req, res) => {
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
    res.json(record === undefined ? { passwordSet: false } : { passwordSet: true, setAt: record.setAt, algorithm: record.scheme });
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
      : plainApp(express, filename, variant === 'helmet');
  // A password is set, so every variant reads a real record and answers the same state.
  await built.store.setIfAbsent('srv-alice', { hash: await bcrypt.hash('bench password', 10), scheme: 'bcrypt', setAt: new Date(0).toISOString() });
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

interface Load {
  readonly requestsPerSecond: number;
  readonly p99: number;
}

interface AutocannonJson {
  readonly requests: { readonly average: number };
  readonly latency: { readonly p99: number };
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly '2xx': number;
}

export function autocannon(port: number, seconds: number): Promise<Load> {
  const cli = require.resolve('autocannon/autocannon.js');
  const args = [cli, '--json', '-c', String(CONNECTIONS), '-d', String(seconds), '-H', `authorization=Bearer ${TOKEN}`, `http://127.0.0.1:${port}${PATH}`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
          throw new Error(`port ${port}: ${result['2xx']} 2xx, ${result.non2xx} other, ${result.errors} errors, ${result.timeouts} timeouts`);
        }
        resolve({ requestsPerSecond: result.requests.average, p99: result.latency.p99 });
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

export async function chainRows(config: ChainConfig, log: (line: string) => void): Promise<Row[]> {
  const keys = EXPRESS_MAJORS.flatMap((major) => CHAIN_VARIANTS.map((variant) => ({ major, variant })));
  const limitMs = (config.rounds * config.seconds * keys.length + 120) * 1000;
  const children = new Map<string, { child: Child; port: number }>();
  const key = (major: ExpressMajor, variant: ChainVariant): string => `${major}/${variant}`;
  try {
    // Started one by one: their start-up would otherwise compete with each other.
    for (const { major, variant } of keys) {
      const profile = config.profileDir !== undefined && variant === 'hardened' ? ['--cpu-prof', `--cpu-prof-dir=${config.profileDir}`] : [];
      const { child, port } = await startChainServer(variant, major, limitMs, profile);
      children.set(key(major, variant), { child, port });
      // Lets the JIT compile the route before any measured run.
      if (config.warmupSeconds > 0) await autocannon(port, config.warmupSeconds);
    }
    const results = new Map<string, Load[]>(keys.map(({ major, variant }) => [key(major, variant), []]));
    for (let round = 0; round < config.rounds; round++) {
      const line: string[] = [];
      for (const { major, variant } of interleaved(keys, round)) {
        const running = children.get(key(major, variant));
        if (running === undefined) throw new Error('missing server');
        const load = await autocannon(running.port, config.seconds);
        results.get(key(major, variant))?.push(load);
        line.push(`e${major} ${variant} ${load.requestsPerSecond.toFixed(0)}/s`);
      }
      log(`chain round ${round + 1}/${config.rounds}: ${line.join(', ')}`);
    }
    const rows: Row[] = [];
    for (const major of EXPRESS_MAJORS) {
      const rps = (variant: ChainVariant): number => median((results.get(key(major, variant)) ?? []).map((r) => r.requestsPerSecond));
      const p99 = (variant: ChainVariant): number => median((results.get(key(major, variant)) ?? []).map((r) => r.p99));
      // The ratio of each round's runs, then the median of those: runs of one round are
      // minutes closer in time than the medians of all rounds, so drift cancels better.
      const ratioTo = (variant: ChainVariant, base: ChainVariant): number => {
        const runs = results.get(key(major, variant)) ?? [];
        const baseRuns = results.get(key(major, base)) ?? [];
        return median(runs.map((run, round) => run.requestsPerSecond / (baseRuns[round]?.requestsPerSecond ?? Number.NaN)));
      };
      const ratio = (variant: ChainVariant): number => ratioTo(variant, 'bare');
      const bare = rps('bare');
      const section = `chain, Express ${major}`;
      rows.push({ section, measure: 'bare Express: req/s (p99 latency)', value: `${bare.toFixed(0)} (${fixed(p99('bare'), 0)} ms)`, compared: '1.00x', target: 'baseline', verdict: '' });
      const helmetRatio = ratio('helmet');
      rows.push({ section, measure: 'helmet alone: req/s (p99 latency)', value: `${rps('helmet').toFixed(0)} (${fixed(p99('helmet'), 0)} ms)`, compared: `${fixed(helmetRatio)}x bare`, target: 'none (reference)', verdict: '' });
      const hardenedRatio = ratio('hardened');
      rows.push({
        section,
        measure: 'hardened demo chain: req/s (p99 latency)',
        value: `${rps('hardened').toFixed(0)} (${fixed(p99('hardened'), 0)} ms)`,
        // Against helmet alone too: how much the bundle costs beyond the headers it sends.
        compared: `${fixed(hardenedRatio)}x bare, ${fixed(ratioTo('hardened', 'helmet'))}x helmet alone`,
        target: '>= 0.90x bare',
        verdict: verdict(hardenedRatio >= 0.9),
      });
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
