import assert from 'node:assert/strict';
import { assertBoolean, assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import type { MaybePromise, PasswordRecord, PasswordStore } from '../stores/store';

/**
 * The four functions of a test framework the suite registers its tests with. Jest,
 * Vitest (with `globals`), Mocha and Jasmine provide them as globals; with `node:test`,
 * import them from `node:test` and pass them.
 *
 * @example
 * import { describe, it, beforeEach, afterEach } from 'node:test';
 * const framework: TestFramework = { describe, it, beforeEach, afterEach };
 */
export interface TestFramework {
  describe(name: string, body: () => void): unknown;
  it(name: string, body: () => Promise<void>): unknown;
  beforeEach(hook: () => Promise<void>): unknown;
  afterEach(hook: () => Promise<void>): unknown;
}

/**
 * Options of {@link storeContract}.
 *
 * @example
 * const options: StoreContractOptions = { create: () => new MyStore(db), destroy: (store) => (store as MyStore).clear() };
 */
export interface StoreContractOptions {
  /** Gives a fresh, empty store for each test. Required. @default undefined: required */
  readonly create: () => MaybePromise<PasswordStore>;
  /** Releases the store after its test (close a connection, drop a table). @default does nothing */
  readonly destroy?: (store: PasswordStore) => MaybePromise<void>;
  /**
   * Whether the store lists its ids (`ids()`), which `migratePasswords` needs. `false`
   * leaves that test out for a store that only serves requests.
   * @default true
   */
  readonly listsIds?: boolean;
  /**
   * The test framework's `describe`, `it`, `beforeEach` and `afterEach`.
   * @default the globals of that name (`test` when there is no global `it`)
   */
  readonly framework?: TestFramework;
}

const optionKeys: KeysEnum<StoreContractOptions> = { create: true, destroy: true, listsIds: true, framework: true };

// Real-looking bcrypt hashes: a store must keep them byte for byte, `$` and `/` included.
const HASH_A = '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';
const HASH_B = '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW';
const HASH_C = '$2b$11$abcdefghijklmnopqrstuuVYr5Pq5cGqSzLg6nh2o8qK5k4n8F2Y6';

const record = (hash: string, scheme = 'bcrypt'): PasswordRecord => ({ hash, setAt: '2026-11-28T18:04:34.000Z', scheme });

// Sealed values as encryptAndStore writes them: `v1.<nonce>.<ciphertext>.<tag>`, base64url,
// up to about 1,400 characters for a 1,020-byte secret; the scheme names the key id.
const sealedValue = (fill: number, bytes: number): string =>
  [
    'v1',
    Buffer.alloc(12, fill).toString('base64url'),
    Buffer.alloc(bytes, fill).toString('base64url'),
    Buffer.alloc(16, fill).toString('base64url'),
  ].join('.');
const SEALED_A = sealedValue(0xfb, 1020);
const SEALED_B = sealedValue(0x3e, 344);

// Compared as plain objects, so a store may hand out a frozen or null-prototype record.
function assertRecord(actual: PasswordRecord | undefined, expected: PasswordRecord | undefined, what: string): void {
  assert.deepEqual(actual === undefined ? undefined : { ...actual }, expected, what);
}

function winners(results: readonly boolean[]): number {
  return results.filter((won) => won === true).length;
}

function globalFramework(): TestFramework {
  const globals = globalThis as Partial<Record<'describe' | 'it' | 'test' | 'beforeEach' | 'afterEach', unknown>>;
  const it = globals.it ?? globals.test;
  const { describe, beforeEach, afterEach } = globals;
  if (
    typeof describe !== 'function' ||
    typeof it !== 'function' ||
    typeof beforeEach !== 'function' ||
    typeof afterEach !== 'function'
  ) {
    throw optionError(
      'storeContract',
      'framework',
      "is required where describe, it, beforeEach and afterEach are not globals: with node:test, pass { describe, it, beforeEach, afterEach } from 'node:test'.",
    );
  }
  return { describe, it, beforeEach, afterEach } as TestFramework;
}

function checkedFramework(framework: unknown): TestFramework {
  if (framework === undefined) return globalFramework();
  const given = framework as Partial<Record<keyof TestFramework, unknown>> | null;
  const missing = (['describe', 'it', 'beforeEach', 'afterEach'] as const).filter((name) => typeof given?.[name] !== 'function');
  if (typeof framework !== 'object' || missing.length > 0) {
    throw optionError(
      'storeContract',
      'framework',
      `must be an object with the functions describe, it, beforeEach and afterEach; missing ${missing.join(', ')}.`,
    );
  }
  return framework as TestFramework;
}

/**
 * Registers the tests every {@link PasswordStore} must pass: set-once under 50
 * concurrent calls, compare-and-set `replace`, a rehash that cannot bring back a deleted
 * password, exact ids, copied records, sealed values kept byte for byte, and `ids()`.
 * Only the interface is used, so a store over any database runs it unchanged. Call it at
 * the top level of a test file; assertions are `node:assert`'s, so it runs under Jest,
 * Vitest, Mocha or `node:test`. Give the framework a timeout of a few seconds per test
 * for a networked store (one test writes 1,203 records).
 *
 * @example
 * import { storeContract } from 'express-password-guard/testing';
 * storeContract('MyStore', { create: () => new MyStore(connect()), destroy: (store) => (store as MyStore).close() });
 */
export function storeContract(name: string, options: StoreContractOptions): void {
  if (typeof name !== 'string' || name.length === 0)
    throw new TypeError("storeContract: the first argument must be the store's name.");
  assertKnownKeys('storeContract', options, optionKeys);
  if (typeof options.create !== 'function') {
    throw optionError('storeContract', 'create', 'is required: a function that returns a fresh, empty store.');
  }
  if (options.destroy !== undefined && typeof options.destroy !== 'function') {
    throw optionError('storeContract', 'destroy', 'must be a function (store) => void.');
  }
  assertBoolean('storeContract', 'listsIds', options.listsIds);
  const { create, destroy = () => undefined, listsIds = true } = options;
  const { describe, it, beforeEach, afterEach } = checkedFramework(options.framework);

  describe(`${name} meets the PasswordStore contract`, () => {
    let store: PasswordStore;

    beforeEach(async () => {
      store = await create();
    });

    afterEach(async () => {
      await destroy(store);
    });

    it('an unknown id has no record', async () => {
      assert.equal(await store.get('srv-1'), undefined);
    });

    it('setIfAbsent stores a record that get returns unchanged', async () => {
      assert.equal(await store.setIfAbsent('srv-1', record(HASH_A)), true);
      assertRecord(await store.get('srv-1'), record(HASH_A), 'the record as stored');
    });

    it('any scheme string is kept as is, including ones this version does not know', async () => {
      assert.equal(await store.setIfAbsent('srv-1', record(HASH_A, 'legacy-md5-crypt')), true);
      assertRecord(await store.get('srv-1'), record(HASH_A, 'legacy-md5-crypt'), 'the record with its scheme');
    });

    it('setAt comes back as the same ISO string', async () => {
      const setAt = '2027-01-02T03:04:05.678Z';
      await store.setIfAbsent('srv-1', { hash: HASH_A, setAt, scheme: 'bcrypt' });
      assert.equal((await store.get('srv-1'))?.setAt, setAt);
    });

    it('a second setIfAbsent for an id is refused and changes nothing', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      assert.equal(await store.setIfAbsent('srv-1', record(HASH_B, 'bcrypt+hmac-sha256')), false);
      assertRecord(await store.get('srv-1'), record(HASH_A), 'the first record');
    });

    it('of 50 concurrent setIfAbsent for one id exactly one wins, and its record is kept', async () => {
      const hashes = Array.from({ length: 50 }, (_, i) => `${HASH_A.slice(0, -2)}${String(i).padStart(2, '0')}`);
      const results = await Promise.all(
        hashes.map((hash) => Promise.resolve().then(() => store.setIfAbsent('srv-race', record(hash)))),
      );
      assert.equal(winners(results), 1, 'exactly one setIfAbsent resolves true');
      assert.equal((await store.get('srv-race'))?.hash, hashes[results.indexOf(true)]);
    });

    it('concurrent setIfAbsent for different ids all win', async () => {
      const ids = Array.from({ length: 20 }, (_, i) => `srv-${i}`);
      const results = await Promise.all(ids.map((id) => store.setIfAbsent(id, record(HASH_A))));
      assert.equal(winners(results), ids.length);
      for (const id of ids) assert.equal((await store.get(id))?.hash, HASH_A, id);
    });

    it('ids are compared exactly: no case folding, trimming or normalisation', async () => {
      await store.setIfAbsent('srv-a', record(HASH_A));
      for (const other of ['SRV-A', 'srv-a ', ' srv-a', 'srv-á', 'srv-a\u0301']) {
        assert.equal(await store.get(other), undefined, JSON.stringify(other));
      }
      assert.equal(await store.setIfAbsent('é', record(HASH_B)), true);
      assert.equal(await store.setIfAbsent('e\u0301', record(HASH_C)), true);
      assert.equal((await store.get('é'))?.hash, HASH_B);
      assert.equal((await store.get('e\u0301'))?.hash, HASH_C);
    });

    it('replace swaps the record when the expected hash is current', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      assert.equal(await store.replace('srv-1', HASH_A, record(HASH_B, 'bcrypt+hmac-sha256')), true);
      assertRecord(await store.get('srv-1'), record(HASH_B, 'bcrypt+hmac-sha256'), 'the new record');
    });

    it('replace with a stale expected hash is refused and changes nothing', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      assert.equal(await store.replace('srv-1', HASH_C, record(HASH_B)), false);
      assertRecord(await store.get('srv-1'), record(HASH_A), 'the record left alone');
    });

    it('replace on an absent id is refused and creates nothing', async () => {
      assert.equal(await store.replace('srv-1', HASH_A, record(HASH_B)), false);
      assert.equal(await store.get('srv-1'), undefined);
    });

    it('a rehash cannot bring back a deleted password or overwrite a new one', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      await store.delete('srv-1');
      assert.equal(await store.replace('srv-1', HASH_A, record(HASH_B)), false);
      assert.equal(await store.get('srv-1'), undefined);
      await store.setIfAbsent('srv-1', record(HASH_C));
      assert.equal(await store.replace('srv-1', HASH_A, record(HASH_B)), false);
      assert.equal((await store.get('srv-1'))?.hash, HASH_C);
    });

    it('of concurrent replaces from one expected hash exactly one wins', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      const results = await Promise.all(
        [HASH_B, HASH_C, HASH_B, HASH_C].map((hash) =>
          Promise.resolve().then(() => store.replace('srv-1', HASH_A, record(hash))),
        ),
      );
      assert.equal(winners(results), 1, 'exactly one replace resolves true');
    });

    it('delete removes the record once, and the id can then be set again', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      assert.equal(await store.delete('srv-1'), true);
      assert.equal(await store.get('srv-1'), undefined);
      assert.equal(await store.delete('srv-1'), false);
      assert.equal(await store.setIfAbsent('srv-1', record(HASH_B)), true);
      assert.equal((await store.get('srv-1'))?.hash, HASH_B);
    });

    it('delete of one id leaves the others', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      await store.setIfAbsent('srv-2', record(HASH_B));
      await store.delete('srv-1');
      assert.equal((await store.get('srv-2'))?.hash, HASH_B);
    });

    it('records handed in and out are copies: changing them does not change the store', async () => {
      const given: { hash: string; setAt: string; scheme: string } = { ...record(HASH_A) };
      await store.setIfAbsent('srv-1', given);
      given.hash = HASH_B;
      const taken = await store.get('srv-1');
      try {
        (taken as { hash: string }).hash = HASH_C;
      } catch {
        // A frozen record refusing the write is as good as a copy.
      }
      assert.equal((await store.get('srv-1'))?.hash, HASH_A);
    });

    if (listsIds) {
      it('ids lists every id with a record exactly once, and no deleted one', async () => {
        assert.equal(typeof store.ids, 'function', 'the store has no ids(): pass listsIds: false if it need not list them');
        const ids = Array.from({ length: 1203 }, (_, i) => `srv-${i}`);
        await Promise.all(ids.map((id) => store.setIfAbsent(id, record(HASH_A))));
        await store.delete('srv-7');
        const listed: string[] = [];
        for await (const id of store.ids?.() ?? []) listed.push(id);
        assert.deepEqual(listed.sort(), ids.filter((id) => id !== 'srv-7').sort());
      });
    }

    it('a sealed record (aes-256-gcm under a key id) is kept byte for byte, up to the 1020-byte limit', async () => {
      assert.ok(SEALED_A.length > 1370 && /[-_]/.test(SEALED_A));
      assert.equal(await store.setIfAbsent('srv-1', record(SEALED_A, 'aes-256-gcm:k1')), true);
      assertRecord(await store.get('srv-1'), record(SEALED_A, 'aes-256-gcm:k1'), 'the sealed record');
      assert.equal(await store.setIfAbsent('srv-1', record(SEALED_B, 'aes-256-gcm:k1')), false);
      assert.equal((await store.get('srv-1'))?.hash, SEALED_A);
    });

    it('a sealed record is re-sealed by compare-and-set, like a rehash', async () => {
      await store.setIfAbsent('srv-1', record(SEALED_A, 'aes-256-gcm:k1'));
      assert.equal(await store.replace('srv-1', SEALED_B, record(SEALED_B, 'aes-256-gcm:k2')), false);
      assert.equal(await store.replace('srv-1', SEALED_A, record(SEALED_B, 'aes-256-gcm:k2')), true);
      assertRecord(await store.get('srv-1'), record(SEALED_B, 'aes-256-gcm:k2'), 'the re-sealed record');
      const results = await Promise.all(
        [SEALED_A, SEALED_A, SEALED_A].map((hash, i) =>
          Promise.resolve().then(() => store.replace('srv-1', SEALED_B, record(hash, `aes-256-gcm:k${i + 3}`))),
        ),
      );
      assert.equal(winners(results), 1, 'exactly one re-seal resolves true');
    });

    it('one store holds hashed and sealed records side by side, each with its mechanism', async () => {
      await store.setIfAbsent('checked', record(HASH_A, 'bcrypt'));
      await store.setIfAbsent('handed-back', record(SEALED_B, 'aes-256-gcm:k1'));
      assertRecord(await store.get('checked'), record(HASH_A, 'bcrypt'), 'the hashed record');
      assertRecord(await store.get('handed-back'), record(SEALED_B, 'aes-256-gcm:k1'), 'the sealed record');
      assert.equal(await store.setIfAbsent('checked', record(SEALED_A, 'aes-256-gcm:k1')), false);
      assert.equal(await store.setIfAbsent('handed-back', record(HASH_B, 'bcrypt')), false);
    });

    it('records keep exactly hash, setAt and scheme', async () => {
      await store.setIfAbsent('srv-1', { ...record(HASH_A), extra: 'not kept' } as PasswordRecord);
      assert.deepEqual(Object.keys((await store.get('srv-1')) ?? {}).sort(), ['hash', 'scheme', 'setAt']);
    });
  });
}
