// Mutation testing of the security core: `npm run mutate -- --mutate lib/<group>/<file>.ts`.
//
// One file per run, one test process, and only the fast unit suites that exercise the
// mutated file: the machine is shared, and the full `npm test` (timing, fuzz, crash-safety,
// Redis, browser) would cost minutes per mutant. See docs/security.md#mutation-testing.
import { existsSync } from 'node:fs';

/**
 * The test files that give each security-core file its verdict. A file missing here falls
 * back to `test/unit/<group>/<name>.test.ts`.
 */
const testsFor = {
  'lib/http/method-guard.ts': ['test/unit/http/method-guard.test.ts'],
  'lib/access/ownership.ts': ['test/unit/access/ownership.test.ts'],
  'lib/access/identities.ts': ['test/unit/access/identities.test.ts'],
  'lib/internal/json.ts': ['test/unit/internal/json.test.ts', 'test/unit/http/response-encoder.test.ts'],
  'lib/http/response-encoder.ts': [
    'test/unit/http/response-encoder.test.ts',
    'test/unit/internal/json.test.ts',
    'test/unit/http/response-encoder-profile.test.ts',
  ],
  // The options (repeat, secretFields, purpose 'verify') and the socket-level refusals are
  // exercised by the suites beside the main one: without them a third of the file's
  // mutants had no test at all. early-refusal-socket.test.ts is left out: it waits out
  // lingering closes (a minute a run), which made each mutant cost 15 s.
  'lib/body/password-body.ts': [
    'test/unit/body/password-body.test.ts',
    'test/unit/body/password-locations.test.ts',
    'test/unit/body/password-rules.test.ts',
    'test/unit/body/validated-password.test.ts',
    'test/unit/body/password-body-socket.test.ts',
    'test/unit/body/password-body-fields.test.ts',
  ],
  'lib/body/password-rules.ts': ['test/unit/body/password-rules.test.ts', 'test/unit/body/password-body.test.ts'],
  'lib/body/password-query.ts': ['test/unit/body/password-locations.test.ts'],
  'lib/body/validated-password.ts': [
    'test/unit/body/validated-password.test.ts',
    'test/unit/body/password-locations.test.ts',
    'test/unit/body/password-body.test.ts',
  ],
  'lib/internal/urlencoded.ts': [
    'test/unit/internal/urlencoded.test.ts',
    'test/unit/body/password-locations.test.ts',
    'test/unit/body/password-body.test.ts',
  ],
  'lib/hashing/hash-and-store.ts': ['test/unit/hashing/hash-and-store.test.ts'],
  'lib/hashing/verify-password.ts': ['test/unit/hashing/verify-password.test.ts', 'test/unit/hashing/legacy-schemes.test.ts'],
  // The sealed-record refusal is verify-password's: without its suite the `sealed` branch had no test.
  'lib/hashing/legacy-schemes.ts': ['test/unit/hashing/legacy-schemes.test.ts', 'test/unit/hashing/verify-password.test.ts'],
  'lib/hashing/bcrypt.ts': ['test/unit/hashing/hash-and-store.test.ts', 'test/unit/hashing/verify-password.test.ts'],
  'lib/sealing/key-ring.ts': ['test/unit/sealing/encrypt-and-store.test.ts', 'test/unit/sealing/sealing-stores.test.ts'],
  'lib/sealing/aes-gcm.ts': ['test/unit/sealing/encrypt-and-store.test.ts', 'test/unit/sealing/sealing-stores.test.ts'],
};

function mutateArgument(argv) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--mutate' || arg === '-m') return argv[i + 1];
    if (arg.startsWith('--mutate=')) return arg.slice('--mutate='.length);
  }
  return undefined;
}

const requested = mutateArgument(process.argv);
if (requested === undefined) {
  throw new Error(
    'Name the file to mutate: `npm run mutate -- --mutate lib/http/method-guard.ts` ' +
      '(one file per run keeps the run cheap; several may be given, comma-separated).',
  );
}
// Stryker accepts `file:line:col-line:col` ranges; the test choice only needs the file.
const entries = requested.split(',').map((entry) => entry.trim());
const files = [...new Set(entries.map((entry) => entry.replace(/:\d.*$/, '')))];
// A run over some lines only (to retest the survivors of a full run after new tests)
// keeps its own report and leaves the full run's incremental file alone.
const partial = entries.some((entry) => /:\d/.test(entry));
const tests = new Set();
for (const file of files) {
  const fallback = `test/unit/${file.replace(/^lib\//, '').replace(/\.ts$/, '')}.test.ts`;
  const chosen = testsFor[file] ?? (existsSync(fallback) ? [fallback] : undefined);
  if (chosen === undefined) {
    throw new Error(`No test file known for ${file}: add it to testsFor in stryker.config.mjs.`);
  }
  for (const test of chosen) tests.add(test);
}
const name =
  files
    .map((file) =>
      file
        .replace(/^lib\//, '')
        .replace(/\.ts$/, '')
        .replace(/\//g, '-'),
    )
    .join('+') + (partial ? '.lines' : '');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    config: {
      testMatch: [...tests].map((test) => `<rootDir>/${test}`),
      // Wall-clock budgets ("costs a few milliseconds") do not hold once every branch
      // counts its hits for Stryker: those tests stay in `npm test` and are left out here.
      testNamePattern: '^(?!.*\\bmilliseconds\\b)',
    },
    enableFindRelatedTests: false,
  },
  coverageAnalysis: 'perTest',
  concurrency: 1,
  // The suites start real HTTP servers and bcrypt: allow for a loaded machine.
  timeoutMS: 20000,
  timeoutFactor: 2,
  // Reruns after a test change only retest what the change can affect.
  incremental: !partial,
  incrementalFile: `reports/stryker-incremental/${name}.json`,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 85, break: null },
  // One folder per mutated file, so runs of different files never share a sandbox.
  tempDirName: `.stryker-tmp/${name}`,
  cleanTempDir: true,
  // Sandboxes of runs still going on other files, and reports, are not part of the project.
  ignorePatterns: ['/.stryker-tmp', '/reports'],
};
