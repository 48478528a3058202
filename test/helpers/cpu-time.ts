/**
 * CPU time (user + system) this process spent while `run` ran, in ms. Unlike wall time,
 * the other processes of a shared machine do not count: a test that compares costs this
 * way does not fail because a neighbour was busy.
 */
export async function cpuMs(run: () => unknown): Promise<number> {
  const before = process.cpuUsage();
  await run();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * The median CPU ms of each variant over `rounds` rounds. The variants take turns within
 * a round, in an order reversed every other round, so a slow stretch (a garbage collection,
 * a throttled core) falls on all of them alike and a comparison between them stays fair.
 */
export async function medianCpuMs<K extends string>(
  variants: Readonly<Record<K, () => unknown>>,
  rounds = 5,
): Promise<Record<K, number>> {
  const names = Object.keys(variants) as K[];
  const samples = new Map<K, number[]>(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) samples.get(name)?.push(await cpuMs(variants[name]));
  }
  const medians = {} as Record<K, number>;
  for (const name of names) medians[name] = median(samples.get(name) ?? []);
  return medians;
}
