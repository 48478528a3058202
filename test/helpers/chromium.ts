import { accessSync, constants } from 'node:fs';

/** Debian's Chromium, as `.ci/run` installs it. */
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for a headless Chromium run as root in a container: no sandbox (it needs user
 * namespaces), no background requests to Google, and /tmp instead of a small /dev/shm.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-dev-shm-usage',
];

/**
 * The Chromium binary for a suite that needs one: `$CHROMIUM_BIN` when set (point it at
 * a missing file to try the skip path), otherwise `/usr/bin/chromium`. When there is
 * none, the suite is skipped with a printed reason, except under `CI=true`, where
 * `.ci/run` installs it and its absence is a failing test. Call it at the top level of a
 * test file and wrap the suite in `describe` or `describe.skip` by its answer.
 */
export function chromiumFor(suite: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['CHROMIUM_BIN'];
  const binary = explicit !== undefined && explicit !== '' ? explicit : DEFAULT_CHROMIUM;
  try {
    accessSync(binary, constants.X_OK);
    return binary;
  } catch {
    // Reported below.
  }
  const reason = `Chromium is not installed at ${binary}; install it with "apt-get install chromium"`;
  if (env['CI'] === 'true') {
    test(`${suite}: Chromium must be installed under CI=true`, () => {
      throw new Error(`${suite} cannot run: ${reason}. Under CI=true a skipped browser suite is a failure; .ci/run installs it.`);
    });
  } else {
    console.warn(`Skipping ${suite}: ${reason}.`);
    test.skip(`${suite} (skipped: Chromium is not installed)`, () => undefined);
  }
  return undefined;
}
