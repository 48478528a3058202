import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

/** `examples/demo-server.ts` running as `npm start` runs it, in a child process. */
export interface DemoProcess {
  readonly child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output(): string;
  readonly exited: Promise<number | null>;
}

export function startDemo(env: Record<string, string>): DemoProcess {
  const child = spawn(TSX, ['examples/demo-server.ts'], {
    cwd: ROOT,
    env: { ...process.env, BCRYPT_COST: '10', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: tsx runs the demo in a child node process, which a SIGKILL
    // of tsx alone would leave running.
    detached: true,
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  return { child, output: () => output, exited };
}

/** Resolves once `demo` printed `text`; rejects, with what it printed, if it exits first. */
export async function waitForOutput(demo: DemoProcess, text: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!demo.output().includes(text)) {
    if (Date.now() > deadline || demo.child.exitCode !== null) {
      throw new Error(`demo never printed "${text}"; it printed:\n${demo.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops `demo` with `signal` (if it still runs) and resolves with its exit code. SIGTERM
 * and SIGINT go to tsx, which hands them to the demo; SIGKILL goes to the whole group.
 */
export async function stopDemo(demo: DemoProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  const pid = demo.child.pid;
  if (pid !== undefined && demo.child.exitCode === null && demo.child.signalCode === null) {
    if (signal === 'SIGKILL') process.kill(-pid, 'SIGKILL');
    else demo.child.kill(signal);
  }
  return demo.exited;
}
