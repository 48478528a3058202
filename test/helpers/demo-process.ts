import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

// `npm start` as a user runs it (a real port, a real file), with node itself as the child
// rather than the tsx wrapper: a SIGKILL to the wrapper would leave its node running.

const ROOT = resolve(__dirname, '..', '..');

export interface DemoProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** Resolves with the exit code, or the signal that ended the process. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
}

export function startDemo(env: Readonly<Record<string, string>>): DemoProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join('examples', 'demo-server.ts')], {
    cwd: ROOT,
    env: { ...process.env, BCRYPT_COST: '10', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (data: Buffer) => (output += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (output += data.toString()));
  const exited = new Promise<number | NodeJS.Signals | null>((done) =>
    child.on('exit', (code, signal) => {
      done(code ?? signal);
    }),
  );
  return { child, output: () => output, exited };
}

export async function waitForOutput(demo: DemoProcess, text: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!demo.output().includes(text)) {
    if (Date.now() > deadline || demo.child.exitCode !== null || demo.child.signalCode !== null) {
      throw new Error(`demo never printed "${text}"; it printed:\n${demo.output()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
