import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

// What users install is the packed tarball, not lib/: build it, unpack it where Node and
// tsc resolve it as a dependency, and load it from CommonJS, ESM and strict TypeScript.
const root = resolve(__dirname, '..', '..');

/** Whether `version` meets one of the `^x.y.z` alternatives of `range` (the only form the manifest uses). */
function meetsCaretRange(version: string, range: string): boolean {
  const parts = (text: string): number[] => text.split('.').map(Number);
  const [major = -1, minor = 0, patch = 0] = parts(version);
  return range.split('||').some((alternative) => {
    const match = /^\s*\^(\d+\.\d+\.\d+)\s*$/.exec(alternative);
    if (match === null) return false;
    const [wantMajor = 0, wantMinor = 0, wantPatch = 0] = parts(match[1] ?? '');
    return major === wantMajor && (minor > wantMinor || (minor === wantMinor && patch >= wantPatch));
  });
}

describe('the packed package', () => {
  let consumer: string;

  beforeAll(() => {
    mkdirSync(join(root, '.tmp'), { recursive: true });
    // Inside the repo so the unpacked package finds its dependencies in ../node_modules.
    consumer = mkdtempSync(join(root, '.tmp', 'consumer-'));
    const packDir = join(consumer, 'pack');
    mkdirSync(packDir);
    execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: root, stdio: 'pipe' });
    const tarball = readdirSync(packDir).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error('npm pack wrote no tarball');
    const target = join(consumer, 'node_modules', 'express-password-guard');
    mkdirSync(target, { recursive: true });
    execFileSync('tar', ['-xzf', join(packDir, tarball), '-C', target, '--strip-components=1']);
  }, 120_000);

  afterAll(() => {
    rmSync(consumer, { recursive: true, force: true });
  });

  test('ships dist with declarations and no sources or tests', () => {
    const files = execFileSync('tar', ['-tzf', join(consumer, 'pack', readdirSync(join(consumer, 'pack'))[0] ?? '')])
      .toString()
      .split('\n');
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/testing/index.js');
    expect(files).toContain('package/LICENSE');
    expect(files).toContain('package/CHANGELOG.md');
    expect(files.some((f) => f.startsWith('package/lib/') || f.startsWith('package/test/'))).toBe(false);
  });

  // A store's driver is the app's choice: declared optional, so npm neither installs it nor
  // warns without it, and refuses a version outside the range the package was tested with.
  test('better-sqlite3 and ioredis are optional peers, express a required one, each in a range the tested version meets', () => {
    const target = join(consumer, 'node_modules', 'express-password-guard');
    const manifest = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(manifest.peerDependencies ?? {}).sort()).toEqual(['better-sqlite3', 'express', 'ioredis']);
    expect(manifest.peerDependenciesMeta).toEqual({ 'better-sqlite3': { optional: true }, ioredis: { optional: true } });
    for (const peer of ['better-sqlite3', 'ioredis']) {
      expect(manifest.dependencies?.[peer]).toBeUndefined();
      const installed = (
        JSON.parse(readFileSync(join(root, 'node_modules', peer, 'package.json'), 'utf8')) as { version: string }
      ).version;
      expect(
        `${peer}@${installed} ${meetsCaretRange(installed, manifest.peerDependencies?.[peer] ?? '') ? 'meets' : 'misses'}`,
      ).toBe(`${peer}@${installed} meets`);
    }
  });

  test('the declarations a consumer loads never import an optional peer (its types may not be installed)', () => {
    const dist = join(consumer, 'node_modules', 'express-password-guard', 'dist');
    const loaded = new Set<string>();
    const peers: string[] = [];
    const visit = (file: string): void => {
      if (loaded.has(file)) return;
      loaded.add(file);
      // Without comments: a JSDoc @example may show an import of a peer.
      const text = readFileSync(join(dist, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
      for (const [, specifier = ''] of text.matchAll(/(?:from |import\()['"]([^'"]+)['"]/g)) {
        if (specifier.startsWith('.')) visit(join(dirname(file), `${specifier}.d.ts`));
        else if (specifier === 'better-sqlite3' || specifier === 'ioredis') peers.push(`${file} imports ${specifier}`);
      }
    };
    visit('index.d.ts');
    visit(join('testing', 'index.d.ts'));
    expect(loaded.has(join('stores', 'sqlite-store.d.ts'))).toBe(true);
    expect(peers).toEqual([]);
  });

  test('ships the migrate command as its bin, runnable with node', () => {
    const target = join(consumer, 'node_modules', 'express-password-guard');
    const manifest = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    expect(manifest.bin).toEqual({ 'express-password-guard': 'dist/migration/cli.js' });
    const cli = join(target, 'dist', 'migration', 'cli.js');
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = execFileSync('node', [cli, '--help'], { cwd: consumer }).toString();
    expect(help).toContain('Usage: express-password-guard migrate [options]');
    const loaded = execFileSync(
      'node',
      ['-e', "const m = require('express-password-guard'); console.log(typeof m.migratePasswords, typeof m.MetadataChunks)"],
      { cwd: consumer },
    )
      .toString()
      .trim();
    expect(loaded).toBe('function function');
  });

  test('loads from CommonJS and ESM with the same named exports', () => {
    writeFileSync(
      join(consumer, 'cjs.cjs'),
      "const m = require('express-password-guard'); console.log(typeof m.methodGuard, typeof m.responseEncoder, typeof m.problemHandler);",
    );
    writeFileSync(
      join(consumer, 'esm.mjs'),
      "import { methodGuard, responseEncoder, problemHandler } from 'express-password-guard'; console.log(typeof methodGuard, typeof responseEncoder, typeof problemHandler);",
    );
    for (const file of ['cjs.cjs', 'esm.mjs']) {
      const out = execFileSync('node', [file], { cwd: consumer }).toString().trim();
      expect(out).toBe('function function function');
    }
  });

  test('express-password-guard/testing runs the store contract under node:test, from CommonJS and ESM', () => {
    const register = (load: string): string =>
      [
        load,
        "const store = process.argv[2] === 'broken'",
        '  ? { get: () => undefined, setIfAbsent: () => true, replace: (_id, _hash, _record) => true, delete: () => true }',
        '  : undefined;',
        "storeContract('MemoryStore', { create: () => store ?? new MemoryStore(), framework: { describe, it, beforeEach, afterEach } });",
      ].join('\n');
    writeFileSync(
      join(consumer, 'contract.cjs'),
      register(
        "const { describe, it, beforeEach, afterEach } = require('node:test');\nconst { MemoryStore } = require('express-password-guard');\nconst { storeContract } = require('express-password-guard/testing');",
      ),
    );
    writeFileSync(
      join(consumer, 'contract.mjs'),
      register(
        "import { describe, it, beforeEach, afterEach } from 'node:test';\nimport { MemoryStore } from 'express-password-guard';\nimport { storeContract } from 'express-password-guard/testing';",
      ),
    );
    for (const file of ['contract.cjs', 'contract.mjs']) {
      const out = execFileSync('node', ['--test-reporter=tap', file], { cwd: consumer }).toString();
      expect(out).toMatch(/^# pass 21$/m);
      expect(out).toMatch(/^# fail 0$/m);
      // The same suite against a store that breaks the contract: it must fail.
      const broken = spawnSync('node', ['--test-reporter=tap', file, 'broken'], { cwd: consumer, encoding: 'utf8' });
      expect(broken.status).not.toBe(0);
      expect(broken.stdout).toMatch(/^# fail [1-9]\d*$/m);
    }
  });

  test('a strict TypeScript consumer compiles against the declarations (CJS and ESM)', () => {
    const source = [
      "import express from 'express';",
      "import { methodGuard, responseEncoder, problemHandler } from 'express-password-guard';",
      "import type { MethodGuardOptions, ResponseEncoderOptions } from 'express-password-guard';",
      "import { storeContract } from 'express-password-guard/testing';",
      "import type { StoreContractOptions } from 'express-password-guard/testing';",
      'export const contract: (name: string, options: StoreContractOptions) => void = storeContract;',
      'const guardOptions: MethodGuardOptions = { handleOptions: true };',
      "const encoderOptions: ResponseEncoderOptions = { redact: ['password'], noStore: true };",
      'const app = express();',
      "app.use(methodGuard(['GET', 'POST'], guardOptions), responseEncoder(encoderOptions));",
      'app.use(problemHandler());',
      '// @ts-expect-error unknown options are a type error as well as a runtime one',
      'responseEncoder({ redacted: [] });',
      'export default app;',
    ].join('\n');
    writeFileSync(join(consumer, 'app.cts'), source);
    writeFileSync(join(consumer, 'app.mts'), source);
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(
      'node',
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--types',
        'node',
        '--esModuleInterop',
        'app.cts',
        'app.mts',
      ],
      { cwd: consumer, stdio: 'pipe' },
    );
  });
});
