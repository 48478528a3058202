/**
 * Where a chain server spends its time under load: runs one variant in a child with
 * `--cpu-prof`, loads it with autocannon, and prints the functions with the most self
 * time and the time per package, each as a share of the samples and as µs of server CPU
 * per request. With 2 CPUs or more the server is pinned to CPU 0 and autocannon to CPU 1
 * (taskset), as in the bench's pinned rounds; `--unpinned` leaves both free. Several
 * variants (comma-separated) are profiled one after the other, and a table of µs per
 * request per package / file compares them. For docs/performance.md's evidence when a
 * target is missed.
 *
 *   npx tsx test/bench/profile.ts hardened 5 [seconds]
 *   npx tsx test/bench/profile.ts bare,helmet,hardened 5 12   # side by side
 */
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIN, autocannon, pinProcess, startChainServer } from './chain';
import type { ChainVariant, ExpressMajor } from './chain';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

export interface CpuProfile {
  /** µs on the monotonic clock (process.hrtime's on Linux), as are the deltas. */
  readonly startTime: number;
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/**
 * The samples taken between `fromUs` and `toUs` (monotonic µs, `process.hrtime.bigint() / 1000n`):
 * the measured load alone, without start-up, warm-up and shutdown.
 */
export function within(profile: CpuProfile, fromUs: number, toUs: number): CpuProfile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let at = profile.startTime;
  let kept = fromUs;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) return;
    samples.push(id);
    timeDeltas.push(at - kept);
    kept = at;
  });
  return { startTime: fromUs, nodes: profile.nodes, samples, timeDeltas };
}

/** Milliseconds the main thread was not idle (start-up included, unless trimmed by {@link within}). */
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

/** Self time per function and per place, in samples. */
function selfTimes(profile: CpuProfile): { readonly byFrame: Map<string, number>; readonly byPlace: Map<string, number> } {
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
  return { byFrame, byPlace };
}

/**
 * The top functions and places by self time, as a share of all samples and, given the
 * requests answered, as µs of CPU per request (idle excluded from nothing: its line says
 * how long the server waited).
 */
export function summarise(profile: CpuProfile, top = 25, requests?: number): string {
  const total = profile.samples.length;
  const { byFrame, byPlace } = selfTimes(profile);
  const msPerSample = profile.timeDeltas.reduce((sum, delta) => sum + delta, 0) / 1000 / Math.max(1, total);
  const pct = (n: number): string => `${((n / total) * 100).toFixed(1).padStart(5)}%`;
  const perRequest = (n: number): string =>
    requests === undefined ? '' : `${((n * msPerSample * 1000) / requests).toFixed(1).padStart(7)} µs/req`;
  const list = (map: Map<string, number>): string[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, n]) => `${pct(n)}${perRequest(n)}  ${name}`);
  return [
    `self time by function (top ${top} of ${total} samples):`,
    ...list(byFrame),
    '',
    'self time by package / file:',
    ...list(byPlace),
  ].join('\n');
}

/** µs of CPU per request per place, one column per profile, the largest first. */
export function compare(
  profiles: ReadonlyArray<{ readonly name: string; readonly profile: CpuProfile; readonly requests: number }>,
  top = 30,
): string {
  const columns = profiles.map(({ profile, requests }) => {
    const { byPlace } = selfTimes(profile);
    const msPerSample = profile.timeDeltas.reduce((sum, delta) => sum + delta, 0) / 1000 / Math.max(1, profile.samples.length);
    return new Map([...byPlace].map(([place, n]) => [place, (n * msPerSample * 1000) / requests]));
  });
  const places = new Set(columns.flatMap((column) => [...column.keys()]));
  const rows = [...places]
    .map((place) => ({ place, values: columns.map((column) => column.get(place) ?? 0) }))
    .sort((a, b) => Math.max(...b.values) - Math.max(...a.values))
    .slice(0, top);
  const head = `| µs of server CPU per request | ${profiles.map(({ name }) => name).join(' | ')} |`;
  const rule = `|---|${profiles.map(() => '---:').join('|')}|`;
  const busy = `| **busy (all but idle)** | ${profiles.map(({ profile, requests }) => ((busyMs(profile) * 1000) / requests).toFixed(1)).join(' | ')} |`;
  return [
    head,
    rule,
    busy,
    ...rows.map(({ place, values }) => `| ${place} | ${values.map((value) => value.toFixed(1)).join(' | ')} |`),
  ].join('\n');
}

async function profileOne(
  variant: ChainVariant,
  major: ExpressMajor,
  seconds: number,
  pinned: boolean,
): Promise<{ profile: CpuProfile; requests: number; line: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'epg-bench-prof-'));
  const { child, port } = await startChainServer(variant, major, (seconds + 60) * 1000, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const pid = child.process.pid;
  if (pinned && PIN !== undefined && pid !== undefined) pinProcess(pid, PIN.server);
  // A second of warm-up, so the JIT has compiled the route before the measured load.
  await autocannon(port, 1, pinned ? PIN?.load : undefined);
  const from = Number(process.hrtime.bigint() / 1000n);
  const load = await autocannon(port, seconds, pinned ? PIN?.load : undefined);
  const to = Number(process.hrtime.bigint() / 1000n);
  await child.stop();
  // tsx's loader thread writes a profile too, nearly all idle: the main thread's is the largest.
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
  if (file === undefined) throw new Error(`no profile written to ${dir}`);
  // Only the measured load's samples (autocannon's own start-up and exit trimmed with it).
  const profile = within(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile, from, to);
  const requests = load.requests;
  const line =
    `${variant} on Express ${major}${pinned && PIN !== undefined ? ` (server on CPU ${PIN.server}, autocannon on CPU ${PIN.load})` : ' (unpinned)'}: ` +
    `${load.requestsPerSecond.toFixed(0)} req/s over ${seconds} s; ${((busyMs(profile) * 1000) / requests).toFixed(0)} µs of server CPU per request ` +
    `(the measured load only); profile ${join(dir, file)}`;
  return { profile, requests, line };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((arg) => arg !== '--unpinned');
  const pinned = !process.argv.includes('--unpinned');
  const variants = (args[0] ?? 'hardened').split(',') as ChainVariant[];
  const major = (args[1] ?? '5') as ExpressMajor;
  const seconds = Number(args[2] ?? 10);
  const results: Array<{ name: string; profile: CpuProfile; requests: number }> = [];
  for (const variant of variants) {
    const { profile, requests, line } = await profileOne(variant, major, seconds, pinned);
    console.log(`${line}\n`);
    console.log(`${summarise(profile, 25, requests)}\n`);
    results.push({ name: variant, profile, requests });
  }
  if (results.length > 1) console.log(compare(results));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
