import { spawnSync } from 'node:child_process';

/** Debian's Python, where apt installs python3-novaclient (not a pyenv python3 on PATH). */
export const DEFAULT_PYTHON = '/usr/bin/python3';

/** The Debian packages the interop suite drives, as `.ci/run` installs them. */
export const OPENSTACK_CLIENT_PACKAGES = ['python3-novaclient', 'python3-keystoneauth1', 'python3-cryptography'] as const;

/**
 * The Python that has the real OpenStack clients (novaclient, keystoneauth1, cryptography
 * and requests, which cloudbase-init uses): `$OPENSTACK_PYTHON` when set (point it at a
 * missing file to try the skip path), else `/usr/bin/python3`. When they are missing the
 * suite is skipped with the reason, except under `CI=true`, where `.ci/run` installs them
 * and their absence is a failing test. Call it at the top level of a test file.
 */
export function openStackPythonFor(suite: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env['OPENSTACK_PYTHON'];
  const python = explicit !== undefined && explicit !== '' ? explicit : DEFAULT_PYTHON;
  const probe = spawnSync(python, ['-c', 'import novaclient, keystoneauth1, cryptography, requests'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.status === 0) return python;
  const why =
    probe.error !== undefined
      ? `${python} cannot be run (${probe.error.message})`
      : `${python} lacks them (${probe.stderr.trim().split('\n').pop() ?? ''})`;
  const reason = `the OpenStack clients are not installed: ${why}; install them with "apt-get install ${OPENSTACK_CLIENT_PACKAGES.join(' ')}"`;
  if (env['CI'] === 'true') {
    test(`${suite}: the OpenStack clients must be installed under CI=true`, () => {
      throw new Error(
        `${suite} cannot run: ${reason}. Under CI=true a skipped interop suite is a failure; .ci/run installs them.`,
      );
    });
  } else {
    console.warn(`Skipping ${suite}: ${reason}.`);
    test.skip(`${suite} (skipped: the OpenStack clients are not installed)`, () => undefined);
  }
  return undefined;
}
