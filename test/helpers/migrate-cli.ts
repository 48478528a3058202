import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

export interface MigrateRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `express-password-guard migrate` from the sources, as a user's shell would, and waits
 * for it: Node with tsx's loader rather than the tsx binary, so the command is the process
 * whose status and streams come back.
 */
export function runMigrate(args: readonly string[], env: Readonly<Record<string, string>> = {}): MigrateRun {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'lib/migration/cli.ts', 'migrate', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}
