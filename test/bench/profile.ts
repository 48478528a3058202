/**
 * Where a chain server spends its time under load: runs one variant in a child with
 * `--cpu-prof`, loads it with autocannon, and prints the functions with the most self
 * time and the time per package. For docs/performance.md's evidence when a target is missed.
 *
 *   npx tsx test/bench/profile.ts hardened 5 [seconds]
 */
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { autocannon, startChainServer } from './chain';
import type { ChainVariant, ExpressMajor } from './chain';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Milliseconds the main thread was not idle, start-up included. */
export function busyMs(profile: CpuProfile): number {
  const idle = new Set(profile.nodes.filter((node) => node.callFrame.functionName === '(idle)').map((node) => node.id));
  let busy = 0;
  profile.samples.forEach((id, i) => {
    if (!idle.has(id)) busy += profile.timeDeltas[i] ?? 0;
  });
  return busy / 1000;
}

/** `node_modules/<pkg>`, `lib/<file>`, `node:<module>` or the frame's own name for native code. */
function place(url: string, functionName: string): string {
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module?.[1] !== undefined) return module[1];
  const own = /\/(lib|examples|test)\/(.+)$/.exec(url);
  if (own !== null) return `${own[1]}/${own[2]}`;
  if (url.startsWith('node:')) return url;
  return url === '' ? `(${functionName || 'native'})` : url;
}

export function summarise(profile: CpuProfile, top = 25): string {
  const total = profile.samples.length;
  const counts = new Map<number, number>();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const byFrame = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = counts.get(node.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = place(url, functionName);
    const frame = `${functionName || '(anonymous)'}  ${where}${url === '' ? '' : `:${lineNumber + 1}`}`;
    byFrame.set(frame, (byFrame.get(frame) ?? 0) + hits);
    byPlace.set(where, (byPlace.get(where) ?? 0) + hits);
  }
  const pct = (n: number): string => `${((n / total) * 100).toFixed(1).padStart(5)}%`;
  const list = (map: Map<string, number>): string[] =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, n]) => `${pct(n)}  ${name}`);
  return [`self time by function (top ${top} of ${total} samples):`, ...list(byFrame), '', 'self time by package / file:', ...list(byPlace)].join('\n');
}

async function main(): Promise<void> {
  const variant = (process.argv[2] ?? 'hardened') as ChainVariant;
  const major = (process.argv[3] ?? '5') as ExpressMajor;
  const seconds = Number(process.argv[4] ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-prof-'));
  const { child, port } = await startChainServer(variant, major, (seconds + 60) * 1000, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const load = await autocannon(port, seconds);
  await child.stop();
  // tsx's loader thread writes a profile too, nearly all idle: the main thread's is the largest.
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
  if (file === undefined) throw new Error(`no profile written to ${dir}`);
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const requests = load.requestsPerSecond * seconds;
  console.log(
    `${variant} on Express ${major}: ${load.requestsPerSecond.toFixed(0)} req/s over ${seconds} s; ` +
      `${((busyMs(profile) * 1000) / requests).toFixed(0)} µs of server CPU per request (start-up included); profile ${join(dir, file)}\n`,
  );
  console.log(summarise(profile));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
