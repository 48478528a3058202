import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export const MB = 1024 * 1024;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * The order of `variants` in round `round`: rotated each round, so that no variant
 * always runs first (or right after the same neighbour) while the machine drifts.
 */
export function interleaved<T>(variants: readonly T[], round: number): T[] {
  const shift = round % variants.length;
  return [...variants.slice(shift), ...variants.slice(0, shift)];
}

/** A forked TypeScript child (it inherits tsx's loader) talking over IPC, killed after `limitMs`. */
export interface Child {
  readonly process: ChildProcess;
  /** The next IPC message, or a rejection if the child exits or the limit passes first. */
  next<T>(): Promise<T>;
  send(message: unknown): void;
  /** Asks the child to stop, and kills it if it has not exited within 5 s. */
  stop(): Promise<void>;
}

export function forkChild(file: string, args: readonly string[], limitMs: number, execArgv: readonly string[] = []): Child {
  const child = fork(file, [...args], {
    execArgv: [...process.execArgv, ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: unknown[] = [];
  const waiting: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = [];
  let failure: Error | undefined;
  const fail = (error: Error): void => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(failure);
  };
  child.on('message', (message) => {
    const waiter = waiting.shift();
    if (waiter === undefined) inbox.push(message);
    else waiter.resolve(message);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      fail(new Error(`bench child ${file} ${args.join(' ')} exited (${signal ?? code ?? 'unknown'})`));
      resolve();
    });
  });
  // Each child is bounded in time, so a hung server cannot hang the bench.
  const killer = setTimeout(() => {
    fail(new Error(`bench child ${file} ${args.join(' ')} exceeded ${limitMs} ms`));
    child.kill('SIGKILL');
  }, limitMs);
  killer.unref();
  return {
    process: child,
    next<T>(): Promise<T> {
      if (inbox.length > 0) return Promise.resolve(inbox.shift() as T);
      if (failure !== undefined) return Promise.reject(failure);
      return new Promise<T>((resolve, reject) => {
        waiting.push({ resolve: resolve as (value: unknown) => void, reject });
      });
    },
    send(message: unknown): void {
      if (child.connected) child.send(message as never);
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send('stop');
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}

/** Children end with their parent: a killed bench leaves no server behind. */
export function exitWithParent(): void {
  process.on('disconnect', () => {
    process.exit(0);
  });
}

/**
 * The entry of a measuring child started with `forkChild(file, ['measure', json])`: runs
 * `measure` on the parsed config, sends `{ result }` back, and exits when told to stop or
 * when the parent goes away.
 */
export function runMeasureChild<C, R>(measure: (config: C) => Promise<R>): void {
  exitWithParent();
  measure(JSON.parse(process.argv[3] ?? '{}') as C)
    .then((result) => {
      process.send?.({ result });
    })
    .catch((error: unknown) => {
      console.error(error);
      process.exit(1);
    });
  process.on('message', (message) => {
    if (message === 'stop') process.exit(0);
  });
}

export type Verdict = 'met' | 'missed' | '';

export interface Row {
  readonly section: string;
  readonly measure: string;
  readonly value: string;
  /** The ratio or comparison the target is about. */
  readonly compared: string;
  readonly target: string;
  readonly verdict: Verdict;
}

export function verdict(ok: boolean): Verdict {
  return ok ? 'met' : 'missed';
}

export function formatTable(rows: readonly Row[]): string {
  const header: Row = {
    section: 'section',
    measure: 'measure',
    value: 'median',
    compared: 'ratio / comparison',
    target: 'target',
    verdict: '',
  };
  const cells = (row: Row): string[] => [
    row.section,
    row.measure,
    row.value,
    row.compared,
    row.target,
    row.verdict === '' ? (row === header ? 'result' : '-') : row.verdict,
  ];
  const all = [header, ...rows].map(cells);
  const widths = all[0]?.map((_, column) => Math.max(...all.map((line) => line[column]?.length ?? 0))) ?? [];
  const line = (values: readonly string[]): string => `| ${values.map((value, i) => value.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head, ...body] = all;
  return [line(head ?? []), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

export const fixed = (value: number, digits = 2): string => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
