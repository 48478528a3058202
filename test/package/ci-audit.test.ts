import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

// .ci/run's audit gate: findings fail, an unreachable audit service only warns.

const SCRIPT = join(resolve(__dirname, '..', '..'), '.ci', 'audit-verdict.mjs');

function verdict(input: string): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [SCRIPT], { input, encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

const report = (high: number, critical: number, moderate = 0): string =>
  JSON.stringify({
    auditReportVersion: 2,
    vulnerabilities:
      high + critical > 0
        ? { 'some-dep': { name: 'some-dep', severity: critical > 0 ? 'critical' : 'high', range: '<1.2.3' } }
        : {},
    metadata: { vulnerabilities: { info: 0, low: 0, moderate, high, critical, total: high + critical + moderate } },
  });

describe('.ci/audit-verdict.mjs', () => {
  test.each([
    ['a high finding', report(1, 0)],
    ['a critical finding', report(0, 1)],
    ['output that is not JSON', 'npm ERR! something'],
    [
      'an error that is not the network',
      JSON.stringify({ message: '401 Unauthorized - POST …/advisories/bulk', statusCode: 401 }),
    ],
  ])('fails on %s', (_name, input) => {
    expect(verdict(input).status).toBe(1);
  });

  test('names the vulnerable package', () => {
    expect(verdict(report(1, 0)).output).toContain('some-dep (high)');
  });

  test.each([
    ['no finding', report(0, 0)],
    ['moderate findings only', report(0, 0, 3)],
  ])('passes on %s', (_name, input) => {
    expect(verdict(input)).toEqual({
      status: 0,
      output: expect.stringContaining('no high or critical vulnerability') as unknown,
    });
  });

  test.each([
    [
      'ENOTFOUND',
      {
        message:
          'request to https://registry.npmjs.org/-/npm/v1/security/advisories/bulk failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org',
      },
    ],
    ['EAI_AGAIN', { message: 'request to … failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org' }],
    [
      'ECONNREFUSED',
      {
        message:
          'request to http://127.0.0.1:9/-/npm/v1/security/advisories/bulk failed, reason: connect ECONNREFUSED 127.0.0.1:9',
      },
    ],
    [
      'a registry without the advisory endpoint (405)',
      { message: '405 Method Not Allowed - POST …/advisories/bulk', statusCode: 405 },
    ],
    ['a registry error (503)', { message: '503 Service Unavailable', statusCode: 503 }],
  ])('only warns when the audit service is unreachable: %s', (_name, body) => {
    expect(verdict(JSON.stringify(body))).toEqual({
      status: 0,
      output: expect.stringContaining('could not be reached') as unknown,
    });
  });
});
