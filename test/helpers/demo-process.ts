import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** `examples/demo-server.ts` running as `npm start` runs it, in a child process. */
export interface DemoProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output(): string;
  /** Resolves with the exit code, or the signal that ended the process. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

/**
 * Starts the demo with `env` on top of this process's. It runs in node with tsx's loader
 * rather than under the `tsx` command: that command relays signals to a node child of its
 * own and SIGKILLs it (exit 143) when the child is slow to acknowledge one, which on a
 * loaded machine turns a graceful SIGTERM into a failed test.
 */
export function startDemo(env: Readonly<Record<string, string>>): DemoProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo-server.ts'], {
    cwd: ROOT,
    env: { ...process.env, BCRYPT_COST: '10', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((resolveExit) =>
    child.on('exit', (code, signal) => resolveExit(code ?? signal)),
  );
  return { child, output: () => output, exited };
}

/** Resolves once `demo` printed `text`; rejects, with what it printed, if it exits first. */
export async function waitForOutput(demo: DemoProcess, text: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!demo.output().includes(text)) {
    if (Date.now() > deadline || demo.child.exitCode !== null || demo.child.signalCode !== null) {
      throw new Error(`demo never printed "${text}"; it printed:\n${demo.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops `demo` with `signal` (if it still runs) and resolves with its exit code. */
export async function stopDemo(demo: DemoProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | NodeJS.Signals | null> {
  if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill(signal);
  return demo.exited;
}
