import type { MaybePromise, PasswordRecord, PasswordStore } from '../../../lib/stores/store';

// Real-looking bcrypt hashes: a store must keep them byte for byte, `$` and `/` included.
const HASH_A = '$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy';
const HASH_B = '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW';
const HASH_C = '$2b$11$abcdefghijklmnopqrstuuVYr5Pq5cGqSzLg6nh2o8qK5k4n8F2Y6';

const record = (hash: string, scheme = 'bcrypt'): PasswordRecord => ({ hash, setAt: '2026-11-28T18:04:34.000Z', scheme });

// Sealed values as encryptAndStore writes them: `v1.<nonce>.<ciphertext>.<tag>`, base64url,
// up to about 1,400 characters for a 1,020-byte secret; the scheme names the key id.
const sealedValue = (fill: number, bytes: number): string =>
  ['v1', Buffer.alloc(12, fill).toString('base64url'), Buffer.alloc(bytes, fill).toString('base64url'), Buffer.alloc(16, fill).toString('base64url')].join('.');
const SEALED_A = sealedValue(0xfb, 1020);
const SEALED_B = sealedValue(0x3e, 344);

/**
 * The suite every {@link PasswordStore} must pass. `makeStore` gives a fresh, empty store
 * per test; `destroy` releases it. Only the interface is used, so a store over any
 * database (SQLite, Redis, yours) runs it unchanged.
 */
export function storeContract(
  name: string,
  makeStore: () => MaybePromise<PasswordStore>,
  destroy: (store: PasswordStore) => MaybePromise<void> = () => undefined,
): void {
  describe(`${name} meets the PasswordStore contract`, () => {
    let store: PasswordStore;

    beforeEach(async () => {
      store = await makeStore();
    });

    afterEach(async () => {
      await destroy(store);
    });

    test('an unknown id has no record', async () => {
      expect(await store.get('srv-1')).toBeUndefined();
    });

    test('setIfAbsent stores a record that get returns unchanged', async () => {
      expect(await store.setIfAbsent('srv-1', record(HASH_A))).toBe(true);
      expect(await store.get('srv-1')).toEqual(record(HASH_A));
    });

    test('any scheme string is kept as is, including ones this version does not know', async () => {
      expect(await store.setIfAbsent('srv-1', record(HASH_A, 'legacy-md5-crypt'))).toBe(true);
      expect(await store.get('srv-1')).toEqual(record(HASH_A, 'legacy-md5-crypt'));
    });

    test('setAt comes back as the same ISO string', async () => {
      const setAt = '2027-01-02T03:04:05.678Z';
      await store.setIfAbsent('srv-1', { hash: HASH_A, setAt, scheme: 'bcrypt' });
      expect((await store.get('srv-1'))?.setAt).toBe(setAt);
    });

    test('a second setIfAbsent for an id is refused and changes nothing', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      expect(await store.setIfAbsent('srv-1', record(HASH_B, 'bcrypt+hmac-sha256'))).toBe(false);
      expect(await store.get('srv-1')).toEqual(record(HASH_A));
    });

    test('of 50 concurrent setIfAbsent for one id exactly one wins, and its record is kept', async () => {
      const hashes = Array.from({ length: 50 }, (_, i) => `${HASH_A.slice(0, -2)}${String(i).padStart(2, '0')}`);
      const results = await Promise.all(
        hashes.map((hash) => Promise.resolve().then(() => store.setIfAbsent('srv-race', record(hash)))),
      );
      expect(results.filter((won) => won)).toHaveLength(1);
      const winner = hashes[results.indexOf(true)];
      expect((await store.get('srv-race'))?.hash).toBe(winner);
    });

    test('concurrent setIfAbsent for different ids all win', async () => {
      const ids = Array.from({ length: 20 }, (_, i) => `srv-${i}`);
      const results = await Promise.all(ids.map((id) => store.setIfAbsent(id, record(HASH_A))));
      expect(results.every((won) => won)).toBe(true);
      for (const id of ids) expect((await store.get(id))?.hash).toBe(HASH_A);
    });

    test('ids are compared exactly: no case folding, trimming or normalisation', async () => {
      await store.setIfAbsent('srv-a', record(HASH_A));
      for (const other of ['SRV-A', 'srv-a ', ' srv-a', 'srv-á', 'srv-a\u0301']) {
        expect(await store.get(other)).toBeUndefined();
      }
      expect(await store.setIfAbsent('é', record(HASH_B))).toBe(true);
      expect(await store.setIfAbsent('e\u0301', record(HASH_C))).toBe(true);
      expect((await store.get('é'))?.hash).toBe(HASH_B);
      expect((await store.get('e\u0301'))?.hash).toBe(HASH_C);
    });

    test('replace swaps the record when the expected hash is current', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      expect(await store.replace('srv-1', HASH_A, record(HASH_B, 'bcrypt+hmac-sha256'))).toBe(true);
      expect(await store.get('srv-1')).toEqual(record(HASH_B, 'bcrypt+hmac-sha256'));
    });

    test('replace with a stale expected hash is refused and changes nothing', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      expect(await store.replace('srv-1', HASH_C, record(HASH_B))).toBe(false);
      expect(await store.get('srv-1')).toEqual(record(HASH_A));
    });

    test('replace on an absent id is refused and creates nothing', async () => {
      expect(await store.replace('srv-1', HASH_A, record(HASH_B))).toBe(false);
      expect(await store.get('srv-1')).toBeUndefined();
    });

    test('a rehash cannot bring back a deleted password or overwrite a new one', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      await store.delete('srv-1');
      expect(await store.replace('srv-1', HASH_A, record(HASH_B))).toBe(false);
      expect(await store.get('srv-1')).toBeUndefined();
      await store.setIfAbsent('srv-1', record(HASH_C));
      expect(await store.replace('srv-1', HASH_A, record(HASH_B))).toBe(false);
      expect((await store.get('srv-1'))?.hash).toBe(HASH_C);
    });

    test('of concurrent replaces from one expected hash exactly one wins', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      const results = await Promise.all(
        [HASH_B, HASH_C, HASH_B, HASH_C].map((hash) =>
          Promise.resolve().then(() => store.replace('srv-1', HASH_A, record(hash))),
        ),
      );
      expect(results.filter((won) => won)).toHaveLength(1);
    });

    test('delete removes the record once, and the id can then be set again', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      expect(await store.delete('srv-1')).toBe(true);
      expect(await store.get('srv-1')).toBeUndefined();
      expect(await store.delete('srv-1')).toBe(false);
      expect(await store.setIfAbsent('srv-1', record(HASH_B))).toBe(true);
      expect((await store.get('srv-1'))?.hash).toBe(HASH_B);
    });

    test('delete of one id leaves the others', async () => {
      await store.setIfAbsent('srv-1', record(HASH_A));
      await store.setIfAbsent('srv-2', record(HASH_B));
      await store.delete('srv-1');
      expect((await store.get('srv-2'))?.hash).toBe(HASH_B);
    });

    test('records handed in and out are copies: changing them does not change the store', async () => {
      const given: { hash: string; setAt: string; scheme: string } = { ...record(HASH_A) };
      await store.setIfAbsent('srv-1', given);
      given.hash = HASH_B;
      const taken = await store.get('srv-1');
      try {
        (taken as { hash: string }).hash = HASH_C;
      } catch {
        // A frozen record refusing the write is as good as a copy.
      }
      expect((await store.get('srv-1'))?.hash).toBe(HASH_A);
    });

    test('ids lists every id with a record exactly once, and no deleted one', async () => {
      if (typeof store.ids !== 'function') throw new Error('every bundled store lists its ids (migratePasswords needs it)');
      const ids = Array.from({ length: 1203 }, (_, i) => `srv-${i}`);
      await Promise.all(ids.map((id) => store.setIfAbsent(id, record(HASH_A))));
      await store.delete('srv-7');
      const listed: string[] = [];
      for await (const id of store.ids()) listed.push(id);
      expect(listed.sort()).toEqual(ids.filter((id) => id !== 'srv-7').sort());
    });

    test('a sealed record (aes-256-gcm under a key id) is kept byte for byte, up to the 1020-byte limit', async () => {
      expect(SEALED_A.length).toBeGreaterThan(1370);
      expect(SEALED_A).toMatch(/[-_]/);
      expect(await store.setIfAbsent('srv-1', record(SEALED_A, 'aes-256-gcm:k1'))).toBe(true);
      expect(await store.get('srv-1')).toEqual(record(SEALED_A, 'aes-256-gcm:k1'));
      expect(await store.setIfAbsent('srv-1', record(SEALED_B, 'aes-256-gcm:k1'))).toBe(false);
      expect((await store.get('srv-1'))?.hash).toBe(SEALED_A);
    });

    test('a sealed record is re-sealed by compare-and-set, like a rehash', async () => {
      await store.setIfAbsent('srv-1', record(SEALED_A, 'aes-256-gcm:k1'));
      expect(await store.replace('srv-1', SEALED_B, record(SEALED_B, 'aes-256-gcm:k2'))).toBe(false);
      expect(await store.replace('srv-1', SEALED_A, record(SEALED_B, 'aes-256-gcm:k2'))).toBe(true);
      expect(await store.get('srv-1')).toEqual(record(SEALED_B, 'aes-256-gcm:k2'));
      const results = await Promise.all(
        [SEALED_A, SEALED_A, SEALED_A].map((hash, i) =>
          Promise.resolve().then(() => store.replace('srv-1', SEALED_B, record(hash, `aes-256-gcm:k${i + 3}`))),
        ),
      );
      expect(results.filter((won) => won)).toHaveLength(1);
    });

    test('one store holds hashed and sealed records side by side, each with its mechanism', async () => {
      await store.setIfAbsent('checked', record(HASH_A, 'bcrypt'));
      await store.setIfAbsent('handed-back', record(SEALED_B, 'aes-256-gcm:k1'));
      expect(await store.get('checked')).toEqual(record(HASH_A, 'bcrypt'));
      expect(await store.get('handed-back')).toEqual(record(SEALED_B, 'aes-256-gcm:k1'));
      expect(await store.setIfAbsent('checked', record(SEALED_A, 'aes-256-gcm:k1'))).toBe(false);
      expect(await store.setIfAbsent('handed-back', record(HASH_B, 'bcrypt'))).toBe(false);
    });

    test('records keep exactly hash, setAt and scheme', async () => {
      await store.setIfAbsent('srv-1', { ...record(HASH_A), extra: 'not kept' } as PasswordRecord);
      expect(Object.keys((await store.get('srv-1')) ?? {}).sort()).toEqual(['hash', 'scheme', 'setAt']);
    });
  });
}
