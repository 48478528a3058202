import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { findRedisServer } from '../helpers/redis-server';

// `npm run bench -- --smoke`: one short round with tiny sizes, so the bench cannot rot.
// Timings are not asserted (a shared machine makes them noise); every row must be printed.

const ROOT = resolve(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(TSX, ['test/bench/run.ts', '--smoke'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    child.on('exit', (code) => resolveRun({ code, output }));
  });
}

const rowsOf = (table: string, section: string): string[] =>
  table
    .split('\n')
    .filter((line) => line.startsWith(`| ${section}`))
    .map((line) => line.split('|')[2]?.trim() ?? '');

describe('npm run bench -- --smoke', () => {
  let result: { code: number | null; output: string };
  beforeAll(async () => {
    result = await runSmoke();
  }, 310_000);

  it('runs to completion', () => {
    if (result.code !== 0) throw new Error(`the bench exited ${result.code}:\n${result.output}`);
    expect(result.output).toMatch(
      new RegExp(`^\\d+ of ${findRedisServer() === undefined ? 27 : 28} targets met; whole run \\d+ s`, 'm'),
    );
  });

  it.each(['4', '5'])('prints the chain rows for Express %s, unpinned and pinned', (major) => {
    const variants = ['bare Express', 'helmet alone', 'hand-rolled equivalent', 'hardened demo chain'].map(
      (name) => `${name}: req/s (p99 latency)`,
    );
    expect(rowsOf(result.output, `chain, Express ${major}, unpinned `)).toEqual(variants);
    expect(rowsOf(result.output, `chain, Express ${major}, pinned `)).toEqual([
      ...variants,
      'hardened demo chain / helmet alone',
      'hardened demo chain / hand-rolled equivalent',
    ]);
  });

  it('prints the hashing rows', () => {
    expect(rowsOf(result.output, 'hashing, cost 10 ')).toEqual([
      'raw bcrypt.hash, 3 at a time: hashes/s',
      'hashAndStore, same cost and concurrency: hashes/s',
      'event-loop delay p99 while hashing: raw / storer',
      'one hash, idle (the unit below)',
      'fs.readFile wait, idle',
      'fs.readFile wait, 40 raw hashes at once (pool 4)',
      expect.stringMatching(/^fs\.readFile wait, 40 via hashAndStore \(\d+ got 503\)$/),
    ]);
  });

  it('prints the security event rows', () => {
    expect(rowsOf(result.output, 'security events ')).toEqual([
      'IDOR probe flood (404 authz_fail), no sink: req per server CPU-s (req/s)',
      'IDOR probe flood (404 authz_fail), pino sink: req per server CPU-s (req/s)',
      'anonymous flood (401 authn_login_fail), no sink: req per server CPU-s (req/s)',
      'anonymous flood (401 authn_login_fail), pino sink: req per server CPU-s (req/s)',
    ]);
  });

  it('prints the sealing rows', () => {
    expect(rowsOf(result.output, 'sealing, SQLite file ')).toEqual([
      'bare store write + read of the value: pairs/s',
      'encryptAndStore set + revealSecret reveal: pairs/s',
    ]);
  });

  it.each(['content-length', 'chunked'])('prints the upload rows, %s', (framing) => {
    const readers = ['passwordBody', 'express.text', 'express.json', 'buffer-then-check'];
    expect(rowsOf(result.output, `uploads, 20 x 1 MB, ${framing} `)).toEqual([
      ...readers.map((reader) => `${reader}: time to 413 (413s received, worst round)`),
      ...readers.map((reader) => `${reader}: bytes read per upload`),
      'passwordBody: 413s received, each round',
      'passwordBody, contended: 413s received, each round',
      'passwordBody, contended: bytes read per upload',
      'passwordBody, contended: server peak RSS growth',
      ...readers.map((reader) => `${reader}: server peak RSS growth`),
    ]);
  });

  it.each(['state read', 'set-once', 'delete'])('prints the SQLite rows, %s', (op) => {
    expect(rowsOf(result.output, `SqliteStore, ${op} `)).toEqual([
      '100 records: p50 / p99 latency (ops/s)',
      '1 000 records: p50 / p99 latency (ops/s)',
    ]);
  });

  it('prints the Redis rows', () => {
    expect(rowsOf(result.output, 'RedisStore demo, GET state ')).toEqual(
      findRedisServer() === undefined
        ? ['one vs two processes']
        : ['1 demo process: server CPU per request (req/s)', '2 demo processes: server CPU per request (req/s)'],
    );
  });

  it('gives every row a value and every target a verdict', () => {
    const rows = result.output
      .split('\n')
      .filter((line) => /^\| (chain|hashing|sealing|uploads|SqliteStore|RedisStore)/.test(line));
    expect(rows).toHaveLength(20 + 7 + 2 + 32 + 6 + (findRedisServer() === undefined ? 1 : 2));
    for (const row of rows) {
      const [, , , value = '', , target = '', verdict = ''] = row.split('|').map((cell) => cell.trim());
      if (!value.startsWith('skipped')) expect(value).not.toMatch(/^$|n\/a|NaN/);
      if (/^(>=|<=|<)/.test(target)) expect(['met', 'missed']).toContain(verdict);
    }
  });
});
