import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_SEALING_KEY_ID, createDemoApp, demoMigrateArguments, demoTokens } from '../../examples/demo-app';
import type { Demo, DemoOptions } from '../../examples/demo-app';

/**
 * What a test gives the demo. The secret and pepper are its own, so a leak check can
 * look for them; everything else defaults to what the suites share.
 */
export type TestDemoOptions = Omit<DemoOptions, 'filename' | 'storage' | 'keyDir' | 'tokens'> &
  Partial<Pick<DemoOptions, 'tokens'>> & {
    /** The servers' RSA key pairs are made in, and read from, the demo's folder. @default false */
    readonly keyPairs?: boolean;
  };

/** bcrypt cost of the suites' demos, and of their migrations: low, so a suite stays fast. */
const TEST_COST = 10;

/**
 * The options of a demo on `dir/demo.db`: the demo's own tokens (`alice-token`,
 * `bob-token`, `admin-token`, never the environment's), bcrypt cost 10 so a suite stays
 * fast, and no problem log unless the test collects it.
 */
export function testDemoOptions(dir: string, options: TestDemoOptions): DemoOptions {
  const { keyPairs, ...rest } = options;
  return {
    filename: join(dir, 'demo.db'),
    tokens: demoTokens({}),
    cost: TEST_COST,
    log: false,
    ...(keyPairs === true ? { keyDir: dir } : {}),
    ...rest,
  };
}

export interface TestDemo {
  readonly demo: Demo;
  /** The demo's folder: its SQLite file and, with `keyPairs`, the servers' keys. */
  readonly dir: string;
  /** Closes the demo's storage and removes its folder. */
  close(): Promise<void>;
}

/** The demo on a real SQLite file in a fresh temporary folder named after `name`. */
export function openTestDemo(name: string, options: TestDemoOptions): TestDemo {
  const dir = mkdtempSync(join(tmpdir(), `epg-${name}-`));
  let demo: Demo;
  try {
    demo = createDemoApp(testDemoOptions(dir, options));
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    demo,
    dir,
    close: async () => {
      try {
        await demo.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** What `migrate` reads from the environment for a demo: the demo's pepper and sealing key. */
export interface DemoMigrateSecrets {
  readonly pepper: string;
  readonly sealingKey: string;
}

/**
 * The `migrate` command the demo prints for its file in `dir`, at the suites' cost, and
 * the environment it reads the pepper and the key ring from.
 */
export function demoMigrate(
  dir: string,
  secrets: DemoMigrateSecrets,
): { readonly args: string[]; readonly env: Record<string, string> } {
  return {
    args: demoMigrateArguments(join(dir, 'demo.db'), TEST_COST),
    env: {
      PASSWORD_PEPPER: secrets.pepper,
      SEALING_KEYS: JSON.stringify({ current: DEMO_SEALING_KEY_ID, keys: { [DEMO_SEALING_KEY_ID]: secrets.sealingKey } }),
    },
  };
}
