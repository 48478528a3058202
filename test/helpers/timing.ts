import { Agent, request } from 'node:http';

/** One request to time: its method, path, headers and body. */
export interface Probe {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** The time from writing a request to the end of its answer, in ms, and its status. */
export function timeOnce(agent: Agent, port: number, probe: Probe): Promise<{ ms: number; status: number }> {
  return new Promise((resolve, reject) => {
    const body = probe.body === undefined ? undefined : Buffer.from(probe.body, 'utf8');
    const started = process.hrtime.bigint();
    const req = request(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: probe.method,
        path: probe.path,
        headers: { ...probe.headers, ...(body === undefined ? {} : { 'Content-Length': String(body.length) }) },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, status: res.statusCode ?? 0 });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface Samples {
  readonly a: number[];
  readonly b: number[];
}

/**
 * Times `a` and `b` in `pairs` interleaved pairs, the order inside each pair drawn at
 * random, so drift in the machine's load (other processes, GC, CPU frequency) falls on
 * both alike. The first `warmup` pairs are thrown away. Every answer must have the
 * expected status, or the comparison would be between two different things.
 */
export async function interleaved(
  port: number,
  a: Probe & { readonly status: number },
  b: Probe & { readonly status: number },
  pairs: number,
  warmup = 5,
): Promise<Samples> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples: Samples = { a: [], b: [] };
  try {
    for (let i = 0; i < warmup + pairs; i += 1) {
      const order = Math.random() < 0.5 ? (['a', 'b'] as const) : (['b', 'a'] as const);
      for (const which of order) {
        const probe = which === 'a' ? a : b;
        const { ms, status } = await timeOnce(agent, port, probe);
        if (status !== probe.status) {
          throw new Error(`${probe.method} ${probe.path} answered ${status}, expected ${probe.status}`);
        }
        if (i >= warmup) samples[which].push(ms);
      }
    }
  } finally {
    agent.destroy();
  }
  return samples;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** The mean of the middle values, `trim` of them cut from each end (0.2: the middle 60%). */
export function trimmedMean(values: readonly number[], trim = 0.2): number {
  const sorted = [...values].sort((x, y) => x - y);
  const cut = Math.floor(sorted.length * trim);
  const kept = sorted.slice(cut, sorted.length - cut);
  return kept.reduce((sum, v) => sum + v, 0) / kept.length;
}

/**
 * The chance that a random sample of `a` is slower than one of `b` (the Mann-Whitney U
 * statistic over its maximum; ties count half): 0.5 when neither is slower, near 0 or 1
 * when one path is reliably faster.
 */
export function probabilitySlower(a: readonly number[], b: readonly number[]): number {
  let wins = 0;
  for (const x of a) for (const y of b) wins += x > y ? 1 : x === y ? 0.5 : 0;
  return wins / (a.length * b.length);
}

/** What a comparison found, in the figures docs/security.md reports. */
export interface Comparison {
  readonly medianA: number;
  readonly medianB: number;
  readonly trimmedA: number;
  readonly trimmedB: number;
  /** |median a - median b|, ms. */
  readonly difference: number;
  /** The largest difference still called indistinguishable, ms. */
  readonly tolerance: number;
  readonly pSlower: number;
  readonly indistinguishable: boolean;
}

/**
 * Two timings are called indistinguishable when both their medians and their 20%
 * trimmed means differ by at most `relative` of the larger median, or `absoluteMs` when
 * that is more: the absolute floor keeps scheduler noise on a busy machine (a few ms)
 * from failing two fast paths, and the relative part scales with slow ones (a skipped
 * bcrypt compare is a difference of 100%, far past any tolerance here).
 */
export function compare(samples: Samples, relative: number, absoluteMs: number): Comparison {
  const medianA = median(samples.a);
  const medianB = median(samples.b);
  const trimmedA = trimmedMean(samples.a);
  const trimmedB = trimmedMean(samples.b);
  const tolerance = Math.max(absoluteMs, relative * Math.max(medianA, medianB));
  const difference = Math.abs(medianA - medianB);
  return {
    medianA,
    medianB,
    trimmedA,
    trimmedB,
    difference,
    tolerance,
    pSlower: probabilitySlower(samples.a, samples.b),
    indistinguishable: difference <= tolerance && Math.abs(trimmedA - trimmedB) <= tolerance,
  };
}

export function describeComparison(name: string, c: Comparison): string {
  const f = (n: number): string => n.toFixed(2);
  return `${name}: medians ${f(c.medianA)} vs ${f(c.medianB)} ms (difference ${f(c.difference)}, tolerance ${f(c.tolerance)}), 20% trimmed means ${f(c.trimmedA)} vs ${f(c.trimmedB)} ms, P(first slower) ${c.pSlower.toFixed(2)}`;
}
