/**
 * Sealing: a set and a reveal through encryptAndStore and revealSecret (AES-256-GCM,
 * associated data, the store's set-once and read) against the same store written and
 * read bare, with the value as is. Both sides run as a pair of middlewares called the
 * same way (the same fake request, the validated value handed over the same way, a
 * promise per call that settles on next()), so the ratio is the sealing's own cost: the
 * bare pair is what a route without encryption at rest would run, a store write of the
 * value and a store read of it. Both on a SqliteStore file (WAL, synchronous=FULL, as
 * shipped), pair by pair interleaved, in a child process of its own. Record ids have the
 * same length on both sides (`bare-…`, `seal-…`): the id is in each row and, sealed, in
 * the associated data, and it was 2 characters longer on the sealed side.
 *
 * The child loads the package compiled as `npm run build` compiles it (the driver runs
 * each file of lib/ through TypeScript's own emit into a directory under .tmp/, so that
 * the compiler never sits in the measured heap), not lib/ through tsx:
 * tsx's transform wraps every named closure in a `__name` call (a defineProperty each
 * time revealSecret makes one per request) and reads every import through a getter,
 * which made the sealed pair about 30 to 65 µs slower than the code users install, and
 * that cost fell on the sealed side only (the bare pair runs almost no package code).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { runMeasureChild, fixed, forkChild, median, verdict } from './common';
import type { Row } from './common';

export interface SealingConfig {
  readonly rounds: number;
  /** Set-and-read pairs per round and variant. */
  readonly pairs: number;
}

interface SealingResult {
  readonly bare: number[];
  readonly sealed: number[];
}

// ---- the measurement, in the child ----

type Package = typeof import('../../lib');

const ROOT = join(__dirname, '..', '..');

/**
 * lib/ compiled with the project's tsconfig.json into a fresh directory under .tmp/ (inside
 * the project, so that its requires resolve node_modules as dist/'s do): its path, and its
 * removal. File by file (the tsconfig has isolatedModules, so this emits what tsc does),
 * without the type check, which `npm run typecheck` does. In the driver only: TypeScript
 * is loaded here when the section runs, never in the measuring child.
 */
function compilePackage(): { readonly dir: string; readonly remove: () => void } {
  const ts = require('typescript') as typeof import('typescript');
  const config = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (file) => readFileSync(file, 'utf8'));
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
  const source = join(ROOT, 'lib');
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const out = mkdtempSync(join(ROOT, '.tmp', 'bench-sealing-'));
  const compile = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) compile(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const { outputText } = ts.transpileModule(readFileSync(path, 'utf8'), {
          compilerOptions: { ...options, declaration: false, sourceMap: false },
          fileName: path,
        });
        const target = join(out, relative(source, path)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, outputText);
      }
    }
  };
  compile(source);
  return { dir: out, remove: () => rmSync(out, { recursive: true, force: true }) };
}

/** Runs a middleware as Express would, resolving when it calls next (rejecting on an error). */
function call(middleware: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    const next: NextFunction = (err?: unknown) => {
      if (err === undefined) resolve();
      else reject(err instanceof Error ? err : new Error(String(err)));
    };
    middleware(req, res, next);
  });
}

function fakeRequest(id: string): Request {
  return { params: { id }, method: 'GET', originalUrl: `/servers/${id}/password` } as unknown as Request;
}

const fakeResponse = { setHeader: () => undefined } as unknown as Response;

async function measure(config: SealingConfig & { readonly packageDir: string }): Promise<SealingResult> {
  const { SqliteStore, encryptAndStore, localKeyRing, revealSecret, revealedSecret, setValidatedPassword, validatedPassword } =
    require(join(config.packageDir, 'index.js')) as Package;
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-sealing-'));
  const store = new SqliteStore({ filename: join(dir, 'bench.db') });
  try {
    const keys = localKeyRing({ current: 'k1', keys: { k1: randomBytes(32) } });
    const storer = encryptAndStore({ store, keys });
    const reveal = revealSecret({ store, keys });
    // What a guest agent posts: base64 of an RSA-2048 ciphertext.
    const value = randomBytes(256).toString('base64');

    // The bare pair: the value written as is, set-once, and read back, as middlewares.
    const bareRead = new WeakMap<Request, string | undefined>();
    const bareStorer: RequestHandler = (req, _res, next) => {
      const plain = validatedPassword(req);
      const id = req.params['id'];
      if (plain === undefined || typeof id !== 'string') throw new Error('bare storer: no value or no id');
      if (!store.setIfAbsent(id, { hash: plain, setAt: new Date().toISOString(), scheme: 'plain' }))
        throw new Error('bare set refused');
      next();
    };
    const bareReader: RequestHandler = (req, res, next) => {
      const id = req.params['id'];
      if (typeof id !== 'string') throw new Error('bare reader: no id');
      res.setHeader('Cache-Control', 'no-store');
      bareRead.set(req, store.get(id)?.hash);
      next();
    };
    const pair = async (
      set: RequestHandler,
      read: RequestHandler,
      readBack: (req: Request) => string | undefined,
      id: string,
    ): Promise<void> => {
      const setting = fakeRequest(id);
      setValidatedPassword(setting, value);
      await call(set, setting, fakeResponse);
      const reading = fakeRequest(id);
      await call(read, reading, fakeResponse);
      if (readBack(reading) !== value) throw new Error(`the value read back for ${id} differs`);
    };
    const bare = (id: string): Promise<void> => pair(bareStorer, bareReader, (req) => bareRead.get(req), id);
    const sealed = (id: string): Promise<void> => pair(storer, reveal, revealedSecret, id);
    for (let i = 0; i < 20; i++) {
      await bare(`warm-bare-${i}`);
      await sealed(`warm-seal-${i}`);
    }

    const result: SealingResult = { bare: [], sealed: [] };
    for (let round = 0; round < config.rounds; round++) {
      // Pair by pair, alternating which goes first: the disk's fsync time drifts a lot on a
      // shared machine, and this way both variants meet the same drift.
      let bareMs = 0;
      let sealedMs = 0;
      for (let i = 0; i < config.pairs; i++) {
        const order = (i + round) % 2 === 0 ? (['bare', 'sealed'] as const) : (['sealed', 'bare'] as const);
        for (const variant of order) {
          const started = performance.now();
          if (variant === 'bare') await bare(`bare-${round}-${i}`);
          else await sealed(`seal-${round}-${i}`);
          const elapsed = performance.now() - started;
          if (variant === 'bare') bareMs += elapsed;
          else sealedMs += elapsed;
        }
      }
      result.bare.push(config.pairs / (bareMs / 1000));
      result.sealed.push(config.pairs / (sealedMs / 1000));
      process.send?.({
        progress: `sealing round ${round + 1}/${config.rounds}: bare ${fixed(result.bare[round] ?? 0)} pairs/s, sealed ${fixed(result.sealed[round] ?? 0)} pairs/s (${fixed((result.sealed[round] ?? 0) / (result.bare[round] ?? 1))}x)`,
      });
    }
    return result;
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the driver ----

export async function sealingRows(config: SealingConfig, log: (line: string) => void): Promise<Row[]> {
  const compiled = compilePackage();
  const child = forkChild(
    __filename,
    ['measure', JSON.stringify({ ...config, packageDir: compiled.dir })],
    (config.rounds + 2) * 60_000,
  );
  try {
    let message = await child.next<{ progress?: string; result?: SealingResult }>();
    while (message.result === undefined) {
      if (message.progress !== undefined) log(message.progress);
      message = await child.next();
    }
    const { bare: bareRounds, sealed: sealedRounds } = message.result;
    const bare = median(bareRounds);
    const sealed = median(sealedRounds);
    // Each round interleaves the two pair by pair, so its own ratio compares them under the
    // same disk: the verdict is the median of those, as the chain section's ratios are.
    const ratio = median(bareRounds.map((b, i) => (sealedRounds[i] ?? Number.NaN) / b));
    const section = 'sealing, SQLite file';
    return [
      {
        section,
        measure: 'bare store write + read of the value: pairs/s',
        value: fixed(bare),
        compared: '1.00x',
        target: 'baseline',
        verdict: '',
      },
      {
        section,
        measure: 'encryptAndStore set + revealSecret reveal: pairs/s',
        value: fixed(sealed),
        compared: `${fixed(ratio)}x bare (median of per-round ratios)`,
        target: '>= 0.90x bare',
        verdict: verdict(ratio >= 0.9),
      },
    ];
  } finally {
    await child.stop();
    compiled.remove();
  }
}

if (process.argv[2] === 'measure') runMeasureChild(measure);
