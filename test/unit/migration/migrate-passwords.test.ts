import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import Database from 'better-sqlite3';
import { MemoryStore, MetadataChunks, SqliteStore, localKeyRing, migratePasswords, verifyPassword } from '../../../lib';
import type {
  KeyProvider,
  LegacyPasswordSource,
  MigrationFailure,
  MigrationProgress,
  PasswordRecord,
  PasswordStore,
} from '../../../lib';
import { openRecord, sealedRecord } from '../../../lib/sealing/encrypt-and-store';
import { K1, K2 } from '../../helpers/sealing';

const SET_AT = '2019-05-14T09:30:00.000Z';
const PEPPER = 'test-pepper-0123456789abcdef0123456789abcdef';
const hex = (algorithm: string, password: string): string => createHash(algorithm).update(password, 'utf8').digest('hex');
const record = (hash: string, scheme: string): PasswordRecord => ({ hash, setAt: SET_AT, scheme });

function mixedStore(): MemoryStore {
  const store = new MemoryStore();
  store.setIfAbsent('plain', record('copper kettle summer', 'plain'));
  store.setIfAbsent('md5', record(hex('md5', 'tangerine lantern 42'), 'md5'));
  store.setIfAbsent('sha1', record(hex('sha1', 'quiet harbour bell'), 'sha1'));
  store.setIfAbsent('sha256', record(hex('sha256', 'marble owl at noon'), 'sha256'));
  store.setIfAbsent('bcrypt', record(bcrypt.hashSync('already fine', 10), 'bcrypt'));
  store.setIfAbsent('long', record('L'.repeat(80), 'plain'));
  store.setIfAbsent('bad-md5', record('zz-not-hex', 'md5'));
  store.setIfAbsent('unknown', record('$1$salt$whatever', 'md5-crypt'));
  return store;
}

/** Every method async, as a networked store's: the migration must not rely on sync answers. */
function asyncStore(inner: MemoryStore): PasswordStore {
  return {
    setIfAbsent: async (id, r) => inner.setIfAbsent(id, r),
    get: async (id) => inner.get(id),
    replace: async (id, expected, r) => inner.replace(id, expected, r),
    delete: async (id) => inner.delete(id),
    async *ids() {
      for (const id of inner.ids()) yield id;
    },
  };
}

describe('migratePasswords', () => {
  test('upgrades every legacy record, reports the others, and a second run changes nothing', async () => {
    const store = mixedStore();
    const progress: MigrationProgress[] = [];
    const failures: string[] = [];
    const summary = await migratePasswords({
      store: asyncStore(store),
      cost: 10,
      onProgress: (p) => progress.push(p),
      onFailure: (f) => failures.push(f.id),
    });
    expect(summary).toMatchObject({ seen: 8, upgraded: 4, current: 1, failed: 3, dryRun: false, scrubbed: undefined });
    expect(summary.failures.map((f) => f.id).sort()).toEqual(['bad-md5', 'long', 'unknown']);
    expect(failures.sort()).toEqual(['bad-md5', 'long', 'unknown']);
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(progress.at(-1)).toEqual({ done: 8, total: 8, upgraded: 4, current: 1, failed: 3 });
    for (const failure of summary.failures) {
      expect(failure.reason).not.toMatch(/L{10}|zz-not-hex|whatever/);
    }
    expect(summary.failures.find((f) => f.id === 'long')?.reason).toMatch(
      /over bcrypt's 72 bytes and no pepper given: it is never truncated/,
    );

    expect(store.get('plain')?.scheme).toBe('bcrypt');
    expect(store.get('md5')?.scheme).toBe('bcrypt+md5');
    expect(store.get('sha1')?.scheme).toBe('bcrypt+sha1');
    expect(store.get('sha256')?.scheme).toBe('bcrypt+sha256');
    expect(store.get('long')).toEqual(record('L'.repeat(80), 'plain'));
    for (const id of ['plain', 'md5', 'sha1', 'sha256']) {
      expect(store.get(id)?.hash).toMatch(/^\$2b\$10\$/);
      expect(store.get(id)?.setAt).toBe(SET_AT);
    }

    const before = new Map(store.ids().map((id) => [id, store.get(id)]));
    const again = await migratePasswords({ store, cost: 10 });
    expect(again).toMatchObject({ seen: 8, upgraded: 0, current: 5, failed: 3 });
    for (const [id, kept] of before) expect(store.get(id)).toBe(kept);
  });

  test('with the pepper, a plain record over 72 bytes is hashed whole', async () => {
    const store = mixedStore();
    const summary = await migratePasswords({ store, cost: 10, pepper: PEPPER });
    expect(summary.failures.map((f) => f.id).sort()).toEqual(['bad-md5', 'unknown']);
    expect(store.get('long')?.scheme).toBe('bcrypt+hmac-sha256');
    expect(store.get('plain')?.scheme).toBe('bcrypt+hmac-sha256');
    expect((await verifyPassword(store, 'long', 'L'.repeat(80), { cost: 10, pepper: PEPPER })).match).toBe(true);
    expect((await verifyPassword(store, 'long', 'L'.repeat(72), { cost: 10, pepper: PEPPER })).match).toBe(false);
  });

  test('dryRun counts what would change and writes and hashes nothing', async () => {
    const store = mixedStore();
    const before = new Map(store.ids().map((id) => [id, store.get(id)]));
    const hash = jest.spyOn(bcrypt, 'hash');
    try {
      const summary = await migratePasswords({ store, cost: 10, dryRun: true });
      expect(summary).toMatchObject({ seen: 8, upgraded: 4, current: 1, failed: 3, dryRun: true });
      expect(hash).not.toHaveBeenCalled();
    } finally {
      hash.mockRestore();
    }
    for (const [id, kept] of before) expect(store.get(id)).toBe(kept);
  });

  test('a record upgraded by a verify while it is being migrated is read again, never overwritten', async () => {
    const inner = new MemoryStore();
    inner.setIfAbsent('srv-1', record(hex('md5', 'tangerine lantern 42'), 'md5'));
    let raced = false;
    const racing: PasswordStore = {
      ...asyncStore(inner),
      replace: async (id, expected, next) => {
        if (!raced) {
          raced = true;
          // The owner logs in between the migration's read and its write.
          await verifyPassword(inner, id, 'tangerine lantern 42', { cost: 10 });
        }
        return inner.replace(id, expected, next);
      },
    };
    const summary = await migratePasswords({ store: racing, cost: 10 });
    expect(summary).toMatchObject({ seen: 1, upgraded: 0, current: 1, failed: 0 });
    expect(inner.get('srv-1')?.scheme).toBe('bcrypt');
    expect(await bcrypt.compare('tangerine lantern 42', inner.get('srv-1')?.hash ?? '')).toBe(true);
  });

  // Issue 14 defect 7: a decomposed legacy password never matched the NFC form the body reader produces.
  test('a legacy password stored decomposed verifies with its NFC form before and after migration', async () => {
    const decomposed = 'cafe\u0301 au lait 42';
    const composed = decomposed.normalize('NFC');
    expect(composed).not.toBe(decomposed);
    const store = new MemoryStore();
    store.setIfAbsent('plain', record(decomposed, 'plain'));
    store.setIfAbsent('plain-2', record(decomposed, 'plain'));
    store.setIfAbsent('md5', record(hex('md5', decomposed), 'md5'));
    store.setIfAbsent('md5-2', record(hex('md5', decomposed), 'md5'));
    // Before migration, read as legacy records (rehash off, so they stay legacy).
    for (const id of ['plain', 'md5']) {
      expect(await verifyPassword(store, id, composed, { cost: 10, rehash: false })).toEqual({ match: true, rehashed: false });
      expect((await verifyPassword(store, id, 'cafe au lait 42', { cost: 10, rehash: false })).match).toBe(false);
    }
    const summary = await migratePasswords({ store, cost: 10 });
    expect(summary.upgraded).toBe(4);
    expect(store.get('plain')?.scheme).toBe('bcrypt');
    expect(store.get('md5')?.scheme).toBe('bcrypt+md5');
    for (const id of ['plain', 'md5']) {
      expect((await verifyPassword(store, id, 'cafe au lait 42', { cost: 10, rehash: false })).match).toBe(false);
      expect(await verifyPassword(store, id, composed, { cost: 10, rehash: false })).toEqual({ match: true, rehashed: false });
    }
    // A match on the wrapped record upgrades it to a bcrypt hash of the NFC form.
    expect(await verifyPassword(store, 'md5-2', composed, { cost: 10 })).toEqual({ match: true, rehashed: true });
    expect(await bcrypt.compare(composed, store.get('md5-2')?.hash ?? '')).toBe(true);
    expect(await bcrypt.compare(composed, store.get('plain-2')?.hash ?? '')).toBe(true);
  });

  test("normalization: 'none' hashes the stored code points as they are", async () => {
    const store = new MemoryStore();
    store.setIfAbsent('plain', record('cafe\u0301 au lait 42', 'plain'));
    await migratePasswords({ store, cost: 10, normalization: 'none' });
    expect(await bcrypt.compare('cafe\u0301 au lait 42', store.get('plain')?.hash ?? '')).toBe(true);
  });

  test('bad options throw a TypeError naming the option', async () => {
    const store = new MemoryStore();
    const { ids: _ids, ...unlisted } = asyncStore(store);
    await expect(migratePasswords({ store: unlisted })).rejects.toThrow(/option "store" cannot list its records/);
    await expect(migratePasswords({ store, concurrency: 0 })).rejects.toThrow(
      /option "concurrency" must be a whole number from 1 to 64, got 0\./,
    );
    await expect(migratePasswords({ store, cost: 4 })).rejects.toThrow(/option "cost"/);
    await expect(migratePasswords({ store, dryrun: true } as never)).rejects.toThrow(
      /unknown option "dryrun". Did you mean "dryRun"/,
    );
    await expect(migratePasswords({ store, source: {} as never })).rejects.toThrow(/option "source"/);
    await expect(migratePasswords({ store, pepper: 'short' })).rejects.toThrow(/option "pepper"/);
    await expect(migratePasswords({ store, normalization: 'nfc' as never })).rejects.toThrow(
      /option "normalization" must be one of NFC/,
    );
  });

  describe('a failure names the part that failed, not always the store', () => {
    const PASSWORD = 'copper kettle summer';
    /** A legacy source holding one plain-text password under "user-1", with `change` applied. */
    function source(change: Partial<LegacyPasswordSource> = {}): LegacyPasswordSource & { readonly held: Map<string, string> } {
      const held = new Map([['user-1', PASSWORD]]);
      return {
        ids: () => [...held.keys()],
        read: (id) => held.get(id),
        clear: (id, expected) => held.get(id) === expected && held.delete(id),
        ...change,
        held,
      };
    }
    const fails = (message: string) => () => {
      throw new Error(message);
    };

    test.each<[string, Partial<LegacyPasswordSource>, string]>([
      ['read throws', { read: fails('table locked') }, 'table locked'],
      ['read rejects', { read: () => Promise.reject(new Error('table locked')) }, 'table locked'],
      ['read answers a number', { read: () => 42 as never }, 'it read something other than a string.'],
      ['clear throws', { clear: fails('read-only database') }, 'read-only database'],
      ['clear answers a string', { clear: () => 'yes' as never }, 'its clear returned string, not a boolean.'],
    ])('the legacy source: %s', async (_label, change, cause) => {
      const store = new MemoryStore();
      const legacy = source(change);
      const error = await migratePasswords({ store, source: legacy, cost: 10 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toBe(`migratePasswords: the legacy source failed on record "user-1": ${cause}`);
      expect(String(error?.message)).not.toContain(PASSWORD);
      expect(legacy.held.get('user-1')).toBe(PASSWORD);
    });

    test('the legacy source or the store failing to list its ids stops the run before any record', async () => {
      const store = new MemoryStore();
      store.setIfAbsent('plain', record(PASSWORD, 'plain'));
      const legacy = source({ ids: fails('no such table') });
      await expect(migratePasswords({ store, source: legacy, cost: 10 })).rejects.toThrow(
        /^migratePasswords: the legacy source failed listing its ids: no such table$/,
      );
      async function* brokenIds(): AsyncIterable<string> {
        yield 'plain';
        throw new Error('connection reset');
      }
      const listing: PasswordStore = { ...asyncStore(store), ids: brokenIds };
      await expect(migratePasswords({ store: listing, cost: 10 })).rejects.toThrow(
        /^migratePasswords: the store failed listing its ids: connection reset$/,
      );
      expect(store.get('plain')).toEqual(record(PASSWORD, 'plain'));
      expect(legacy.held.get('user-1')).toBe(PASSWORD);
    });

    test('bcrypt itself', async () => {
      // The only way to make the real bcrypt fail on a valid input and cost.
      const hash = jest.spyOn(bcrypt, 'hash').mockImplementation(() => Promise.reject(new Error('out of memory')));
      try {
        const store = new MemoryStore();
        store.setIfAbsent('plain', record(PASSWORD, 'plain'));
        await expect(migratePasswords({ store, cost: 10 })).rejects.toThrow(
          /^migratePasswords: bcrypt failed on record "plain": out of memory$/,
        );
        expect(store.get('plain')).toEqual(record(PASSWORD, 'plain'));
      } finally {
        hash.mockRestore();
      }
    });
  });
});

describe('MetadataChunks: the reviewed API layout', () => {
  let dir: string;
  let db: Database.Database;
  let store: SqliteStore;
  const ciphertext = Buffer.from('guest agent ciphertext '.repeat(14)).toString('base64');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'epg-chunks-'));
    db = new Database(join(dir, 'nova.db'));
    db.exec(
      'CREATE TABLE instance_system_metadata (id INTEGER PRIMARY KEY, instance_uuid TEXT, key TEXT, value TEXT, deleted INTEGER DEFAULT 0)',
    );
    store = new SqliteStore({ database: db });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const insert = (uuid: string, key: string, value: string | null): void => {
    db.prepare('INSERT INTO instance_system_metadata (instance_uuid, key, value) VALUES (?, ?, ?)').run(uuid, key, value);
  };
  const chunk = (uuid: string, password: string): void => {
    // Inserted out of order: the reader sorts by key, as the reviewed API's does.
    for (const i of [2, 0, 3, 1]) insert(uuid, `password_${i}`, password.slice(i * 255, (i + 1) * 255));
  };

  test('reads chunks joined in key order, ignoring other keys, NULLs, and keys that differ only in case', () => {
    chunk('inst-a', ciphertext);
    insert('inst-a', 'image_base', 'not a password');
    insert('inst-b', 'password_0', 'short one');
    insert('inst-b', 'password_1', null);
    insert('inst-b', 'PASSWORD_2', 'not read');
    insert('inst-c', 'other', 'x');
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    expect(source.ids()).toEqual(['inst-a', 'inst-b']);
    expect(source.read('inst-a')).toBe(ciphertext);
    expect(source.read('inst-b')).toBe('short one');
    expect(source.read('inst-c')).toBeUndefined();
    expect(source.clear('inst-b', 'another')).toBe(false);
    expect(source.read('inst-b')).toBe('short one');
    expect(source.clear('inst-b', 'short one')).toBe(true);
    expect(source.read('inst-b')).toBeUndefined();
    expect(db.prepare("SELECT value FROM instance_system_metadata WHERE key = 'PASSWORD_2'").get()).toEqual({
      value: 'not read',
    });
  });

  const ring = (): KeyProvider => localKeyRing({ current: 'k1', keys: { k1: K1 } });
  const PURPOSE = 'os-server-password';
  const opened = async (id: string): Promise<unknown> => {
    const found = store.get(id);
    return found === undefined ? undefined : openRecord(ring(), PURPOSE, id, found);
  };

  test('seals each password into the store in one transaction, as encryptAndStore would; the store records migrate too; a second run is all current', async () => {
    chunk('inst-a', ciphertext);
    chunk('inst-b', 'short and sweet');
    store.setIfAbsent('inst-old', record(hex('sha1', 'quiet harbour bell'), 'sha1'));
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    expect(source.mechanism).toBe('seal');
    const summary = await migratePasswords({ store, source, keys: ring(), purpose: PURPOSE, cost: 10 });
    expect(summary).toMatchObject({ seen: 3, upgraded: 3, current: 0, failed: 0, scrubbed: true });
    expect(source.read('inst-a')).toBeUndefined();
    expect(source.read('inst-b')).toBeUndefined();
    expect(store.get('inst-old')?.scheme).toBe('bcrypt+sha1');
    // Byte for byte what the guest posted, and only under the purpose the reveal route uses.
    expect(store.get('inst-a')?.scheme).toBe('aes-256-gcm:k1');
    expect(await opened('inst-a')).toEqual({ plaintext: ciphertext, keyId: 'k1' });
    expect(await opened('inst-b')).toEqual({ plaintext: 'short and sweet', keyId: 'k1' });
    expect(await openRecord(ring(), 'password', 'inst-a', store.get('inst-a') as PasswordRecord)).toMatchObject({
      failure: expect.stringMatching(/authentication failed/),
    });
    const bytes = readFileSync(join(dir, 'nova.db'));
    for (const form of [Buffer.from('short and sweet'), Buffer.from(ciphertext.slice(0, 40)), Buffer.from(ciphertext, 'base64')])
      expect(bytes.includes(form)).toBe(false);

    const before = store.get('inst-a');
    expect(await migratePasswords({ store, source, keys: ring(), purpose: PURPOSE, cost: 10 })).toMatchObject({
      seen: 3,
      upgraded: 0,
      current: 3,
      failed: 0,
    });
    expect(store.get('inst-a')).toEqual(before);
  });

  test('dryRun counts the moves and writes nothing', async () => {
    chunk('inst-a', ciphertext);
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    const summary = await migratePasswords({ store, source, keys: ring(), dryRun: true });
    expect(summary).toMatchObject({ seen: 1, upgraded: 1, failed: 0, dryRun: true });
    expect(source.read('inst-a')).toBe(ciphertext);
    expect(store.get('inst-a')).toBeUndefined();
  });

  test('without keys it refuses to start: hashing would make the guest passwords unrecoverable', async () => {
    chunk('inst-a', ciphertext);
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    await expect(migratePasswords({ store, source, cost: 10, pepper: PEPPER })).rejects.toThrow(
      /^migratePasswords: option "keys" is required: the source's values are secrets handed back to their owner/,
    );
    expect(source.read('inst-a')).toBe(ciphertext);
    expect(store.get('inst-a')).toBeUndefined();
  });

  test('sourceRecordId puts each value under the id the reveal route reads', async () => {
    chunk('inst-a', ciphertext);
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    const sourceRecordId = (id: string): string => `${id}/os-server-password`;
    const options = { store, source, keys: ring(), purpose: PURPOSE, sourceRecordId };
    expect(await migratePasswords(options)).toMatchObject({ seen: 1, upgraded: 1 });
    expect(store.get('inst-a')).toBeUndefined();
    expect(await opened('inst-a/os-server-password')).toEqual({ plaintext: ciphertext, keyId: 'k1' });
    // Listed by the store too, but visited once, as the source's.
    expect(await migratePasswords(options)).toMatchObject({ seen: 1, upgraded: 0, current: 1 });
    await expect(migratePasswords({ ...options, sourceRecordId: () => '' })).rejects.toThrow(
      /option "sourceRecordId" must return a non-empty string; it did not for "inst-a"/,
    );
  });

  test('a record sealed under a retired key and moved earlier is re-sealed like any other', async () => {
    chunk('inst-a', ciphertext);
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    await migratePasswords({ store, source, keys: ring(), purpose: PURPOSE });
    const ring2 = localKeyRing({ current: 'k2', keys: { k1: K1, k2: K2 } });
    expect(await migratePasswords({ store, source, keys: ring2, purpose: PURPOSE })).toMatchObject({ upgraded: 1 });
    expect(await openRecord(ring2, PURPOSE, 'inst-a', store.get('inst-a') as PasswordRecord)).toEqual({
      plaintext: ciphertext,
      keyId: 'k2',
    });
  });

  test('finishes a move a stopped run left half done (store set, chunks not erased), and refuses to guess on a conflict', async () => {
    chunk('inst-a', 'password one');
    chunk('inst-b', 'password two');
    chunk('inst-c', 'password three');
    chunk('inst-d', 'password four');
    store.setIfAbsent('inst-a', await sealedRecord(ring(), PURPOSE, 'inst-a', 'password one', SET_AT));
    store.setIfAbsent('inst-b', await sealedRecord(ring(), PURPOSE, 'inst-b', 'set since, through the new API', SET_AT));
    store.setIfAbsent('inst-c', record(bcrypt.hashSync('password three', 10), 'bcrypt'));
    store.setIfAbsent('inst-d', await sealedRecord(ring(), PURPOSE, 'inst-a', 'password four', SET_AT));
    // A source on its own connection: the migration cannot use one transaction for both.
    const other = new Database(join(dir, 'nova.db'));
    try {
      const source = new MetadataChunks({ database: other, table: 'instance_system_metadata' });
      const summary = await migratePasswords({ store, source, keys: ring(), purpose: PURPOSE });
      expect(summary).toMatchObject({ seen: 4, upgraded: 1, failed: 3 });
      expect(summary.failures).toEqual([
        {
          id: 'inst-b',
          reason: 'the store already holds a different password for this id; its legacy password was left in place.',
        },
        {
          id: 'inst-c',
          reason:
            'the store holds a hash for this id (scheme "bcrypt"), which can never be handed back; its legacy password was left in place: delete that record, then run the migration again.',
        },
        {
          id: 'inst-d',
          reason: expect.stringMatching(
            /^the store holds a sealed value for this id that did not open \(authentication failed.*\); its legacy password was left in place\.$/,
          ),
        },
      ]);
      expect(JSON.stringify(summary.failures)).not.toMatch(/password (two|three|four)|set since/);
      expect(source.read('inst-a')).toBeUndefined();
      for (const [id, password] of [
        ['inst-b', 'password two'],
        ['inst-c', 'password three'],
        ['inst-d', 'password four'],
      ] as const)
        expect(source.read(id)).toBe(password);
    } finally {
      other.close();
    }
  });

  test('a guest password an earlier migration hashed is reported unrecoverable until the guest posts it again', async () => {
    // What the earlier migrate --metadata-table left: blank chunks, a bcrypt hash under the instance's id.
    for (const id of ['inst-a', 'inst-b']) {
      for (let i = 0; i < 4; i++) insert(id, `password_${i}`, '');
      store.setIfAbsent(id, record(bcrypt.hashSync('lost', 10), 'bcrypt+hmac-sha256'));
    }
    // Cleared by its owner and never hashed: nothing lost.
    for (let i = 0; i < 4; i++) insert('inst-c', `password_${i}`, '');
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    const reported: MigrationFailure[] = [];
    const options = { store, source, keys: ring(), purpose: PURPOSE, onFailure: (f: MigrationFailure) => reported.push(f) };
    const summary = await migratePasswords({ ...options, dryRun: true });
    expect(summary).toMatchObject({ seen: 3, upgraded: 0, current: 1, failed: 2 });
    const lost = {
      id: 'inst-a',
      unrecoverable: true,
      reason:
        'its legacy password is gone, and the store holds only a bcrypt hash of it (scheme "bcrypt+hmac-sha256" under "inst-a"), made by an earlier migration: no one can turn it back into the password. Reset it (nova clear-password, then the guest\'s next boot or password reset) so that the guest agent posts it again.',
    };
    expect(summary.failures[0]).toEqual(lost);
    expect(reported.map((f) => [f.id, f.unrecoverable])).toEqual([
      ['inst-a', true],
      ['inst-b', true],
    ]);

    // With the sealed value under its own record id, the hash under the instance id is an old leftover, not a loss.
    const mapped = { ...options, sourceRecordId: (id: string) => `${id}/os-server-password` };
    store.setIfAbsent(
      'inst-a/os-server-password',
      await sealedRecord(ring(), PURPOSE, 'inst-a/os-server-password', 'new', SET_AT),
    );
    // Reset through the reveal route's DELETE, and posted again: current.
    store.delete('inst-b');
    store.setIfAbsent('inst-b', await sealedRecord(ring(), PURPOSE, 'inst-b', 'posted again', SET_AT));
    const after = await migratePasswords(mapped);
    expect(after.failures.map((f) => f.id)).toEqual([]);
    expect(after).toMatchObject({ failed: 0 });
    expect((await migratePasswords(options)).failures.map((f) => f.id)).toEqual(['inst-a']);
  });

  test('only a bcrypt record an earlier build made is unrecoverable: never a sealed, moved or wrapped one', async () => {
    const blank = (id: string): void => {
      for (let i = 0; i < 4; i++) insert(id, `password_${i}`, '');
    };
    const mapped = (id: string): string => `${id}/os-server-password`;
    // Moved by this build: sealed under the reveal route's id, the chunks blanked.
    chunk('moved', 'moved by this build');
    // Blank chunks, and under the instance's own id: a value this package sealed, a legacy
    // digest it wrapped, and the two bcrypt schemes the earlier build hashed with.
    for (const id of ['sealed', 'wrapped', 'bcrypt', 'peppered']) blank(id);
    store.setIfAbsent('sealed', await sealedRecord(ring(), PURPOSE, 'sealed', 'sealed here before the mapping', SET_AT));
    store.setIfAbsent('wrapped', record(bcrypt.hashSync(hex('md5', 'x'), 10), 'bcrypt+md5'));
    store.setIfAbsent('bcrypt', record(bcrypt.hashSync('lost', 10), 'bcrypt'));
    store.setIfAbsent('peppered', record(bcrypt.hashSync('lost', 10), 'bcrypt+hmac-sha256'));
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    const unrecoverable = async (options: { sourceRecordId?: (id: string) => string }): Promise<string[]> => {
      const summary = await migratePasswords({ store, source, keys: ring(), purpose: PURPOSE, cost: 10, ...options });
      expect(summary.failures.every((f) => f.unrecoverable === true)).toBe(true);
      return summary.failures.map((f) => f.id).sort();
    };
    for (let run = 0; run < 2; run++) {
      expect(await unrecoverable({ sourceRecordId: mapped })).toEqual(['bcrypt', 'peppered']);
      expect(await opened(mapped('moved'))).toEqual({ plaintext: 'moved by this build', keyId: 'k1' });
    }
    expect(await unrecoverable({})).toEqual(['bcrypt', 'peppered']);
    // Sealed under the instance id itself, as an unmapped run leaves it: current.
    store.delete('bcrypt');
    store.setIfAbsent('bcrypt', await sealedRecord(ring(), PURPOSE, 'bcrypt', 'posted again', SET_AT));
    expect(await unrecoverable({})).toEqual(['peppered']);
  });

  test('a source of your own (mechanism unset) is hashed, as for values only ever checked', async () => {
    const passwords = new Map([['user-1', 'copper kettle summer']]);
    const source: LegacyPasswordSource = {
      ids: () => [...passwords.keys()],
      read: (id) => passwords.get(id),
      clear: (id, expected) => passwords.get(id) === expected && passwords.delete(id),
    };
    expect(await migratePasswords({ store, source, cost: 10 })).toMatchObject({ upgraded: 1, failed: 0 });
    expect(store.get('user-1')?.scheme).toBe('bcrypt');
    expect((await verifyPassword(store, 'user-1', 'copper kettle summer', { cost: 10, rehash: false })).match).toBe(true);
    expect(passwords.size).toBe(0);
    await expect(migratePasswords({ store, source: { ...source, mechanism: 'encrypt' as never } })).rejects.toThrow(
      /option "source" has a mechanism of "encrypt"; it must be 'hash' or 'seal'/,
    );
  });

  test('a reader holding the WAL open keeps the file from being scrubbed, and the summary says so', async () => {
    store.setIfAbsent('srv-1', record('copper kettle summer', 'plain'));
    const reader = new Database(join(dir, 'nova.db'));
    try {
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM password_records').get();
      const summary = await migratePasswords({ store, cost: 10 });
      expect(summary).toMatchObject({ upgraded: 1, failed: 0, scrubbed: false });
      reader.exec('COMMIT');
    } finally {
      reader.close();
    }
    expect(store.get('srv-1')?.scheme).toBe('bcrypt');
  });

  test('rows Nova soft-deleted are no part of a password: neither listed, read nor blanked', () => {
    const softDelete = (uuid: string, key: string): void => {
      db.prepare('UPDATE instance_system_metadata SET deleted = id WHERE instance_uuid = ? AND key = ?').run(uuid, key);
    };
    // A deleted instance's chunks, and a live instance whose password_0 was deleted and set again.
    chunk('inst-gone', ciphertext);
    for (const i of [0, 1, 2, 3]) softDelete('inst-gone', `password_${i}`);
    insert('inst-a', 'password_0', 'stale chunk');
    softDelete('inst-a', 'password_0');
    chunk('inst-a', ciphertext);
    const source = new MetadataChunks({ database: db, table: 'instance_system_metadata' });
    expect(source.ids()).toEqual(['inst-a']);
    expect(source.read('inst-a')).toBe(ciphertext);
    expect(source.read('inst-gone')).toBeUndefined();
    expect(source.clear('inst-a', ciphertext)).toBe(true);
    const values = (uuid: string, deleted: 'live' | 'deleted') =>
      db
        .prepare(
          `SELECT value FROM instance_system_metadata WHERE instance_uuid = ? AND ${deleted === 'live' ? 'deleted = 0' : 'deleted != 0'} ORDER BY key`,
        )
        .pluck()
        .all(uuid);
    expect(values('inst-a', 'live')).toEqual(['', '', '', '']);
    expect(values('inst-a', 'deleted')).toEqual(['stale chunk']);
    expect(values('inst-gone', 'deleted')).toHaveLength(4);
    // deletedColumn: false reads every row, as before this option.
    const everyRow = new MetadataChunks({ database: db, table: 'instance_system_metadata', deletedColumn: false });
    expect(everyRow.ids()).toEqual(['inst-a', 'inst-gone']);
    expect(everyRow.read('inst-a')).toBe('stale chunk');
  });

  test('a table without a deleted column is read whole; a deletedColumn it lacks is refused', () => {
    db.exec('CREATE TABLE plain_metadata (instance_uuid TEXT, key TEXT, value TEXT, removed INTEGER)');
    db.prepare(
      "INSERT INTO plain_metadata VALUES ('inst-a', 'password_0', 'kept', 0), ('inst-a', 'password_1', ' gone', 1)",
    ).run();
    expect(new MetadataChunks({ database: db, table: 'plain_metadata' }).read('inst-a')).toBe('kept gone');
    expect(new MetadataChunks({ database: db, table: 'plain_metadata', deletedColumn: 'removed' }).read('inst-a')).toBe('kept');
    expect(() => new MetadataChunks({ database: db, table: 'plain_metadata', deletedColumn: 'deleted' })).toThrow(
      /^MetadataChunks: option "deletedColumn" names no column of the table: "deleted"\.$/,
    );
    expect(() => new MetadataChunks({ database: db, table: 'plain_metadata', deletedColumn: '1x' })).toThrow(
      /option "deletedColumn" must be an SQL identifier or false/,
    );
    expect(() => new MetadataChunks({ database: db, table: 'no_such_table' })).toThrow(
      /^MetadataChunks: option "table" names no table of this database: "no_such_table"\.$/,
    );
  });

  test('bad options throw a TypeError naming the option', () => {
    expect(() => new MetadataChunks({ database: db, table: 'x; DROP TABLE y' })).toThrow(/option "table"/);
    expect(() => new MetadataChunks({ database: db, table: 't', valueColumn: '1v' })).toThrow(/option "valueColumn"/);
    expect(() => new MetadataChunks({ database: db, table: 't', keyPrefix: '' })).toThrow(/option "keyPrefix"/);
    expect(() => new MetadataChunks({ database: {} as never, table: 't' })).toThrow(/option "database"/);
    expect(() => new MetadataChunks({ database: db, table: 'instance_system_metadata', column: 'x' } as never)).toThrow(
      /unknown option "column"/,
    );
  });
});

describe('migratePasswords re-seals sealed records under the current key', () => {
  const ring1 = (): KeyProvider => localKeyRing({ current: 'k1', keys: { k1: K1 } });
  const ring2 = (): KeyProvider => localKeyRing({ current: 'k2', keys: { k1: K1, k2: K2 } });
  const secrets = ['guest ciphertext one', 'guest ciphertext two', 'guest ciphertext three', 'guest ciphertext four'];

  /** Four values sealed under k1, one hashed record, and one sealed value moved to the wrong id. */
  async function sealedStore(store: PasswordStore = new MemoryStore()): Promise<PasswordStore> {
    for (const [i, secret] of secrets.entries()) {
      await store.setIfAbsent(`s-${i}`, await sealedRecord(ring1(), 'password', `s-${i}`, secret, SET_AT));
    }
    await store.setIfAbsent('hashed', record(bcrypt.hashSync('checked only', 10), 'bcrypt'));
    await store.setIfAbsent('moved', await sealedRecord(ring1(), 'password', 's-0', 'sealed for another id', SET_AT));
    return store;
  }

  async function snapshot(store: PasswordStore): Promise<Record<string, PasswordRecord | undefined>> {
    const ids: string[] = [];
    for await (const id of store.ids?.() ?? []) ids.push(id);
    return Object.fromEntries(await Promise.all(ids.sort().map(async (id) => [id, await store.get(id)] as const)));
  }

  test('dry run counts and changes nothing; the run re-seals; a second run finds everything current', async () => {
    const store = await sealedStore(asyncStore(new MemoryStore()));
    const before = await snapshot(store);

    const dry = await migratePasswords({ store, keys: ring2(), dryRun: true, cost: 10 });
    expect(dry).toMatchObject({ seen: 6, upgraded: 4, current: 1, failed: 1, dryRun: true });
    expect(await snapshot(store)).toEqual(before);

    const progress: MigrationProgress[] = [];
    const run = await migratePasswords({ store, keys: ring2(), cost: 10, onProgress: (p) => progress.push(p) });
    expect(run).toMatchObject({ seen: 6, upgraded: 4, current: 1, failed: 1, dryRun: false });
    expect(progress.at(-1)).toEqual({ done: 6, total: 6, upgraded: 4, current: 1, failed: 1 });
    expect(run.failures).toEqual([
      { id: 'moved', reason: expect.stringMatching(/^the sealed value did not open: authentication failed/) },
    ]);
    expect(JSON.stringify(run.failures)).not.toContain('another id');
    const after = await snapshot(store);
    expect(after['hashed']).toEqual(before['hashed']);
    expect(after['moved']).toEqual(before['moved']);
    for (const [i, secret] of secrets.entries()) {
      const resealed = after[`s-${i}`] as PasswordRecord;
      expect(resealed.scheme).toBe('aes-256-gcm:k2');
      expect(resealed.setAt).toBe(SET_AT);
      expect(resealed.hash).not.toBe(before[`s-${i}`]?.hash);
      // k1 can be retired: every record opens with k2 alone.
      expect(await openRecord(localKeyRing({ current: 'k2', keys: { k2: K2 } }), 'password', `s-${i}`, resealed)).toEqual({
        plaintext: secret,
        keyId: 'k2',
      });
    }

    const again = await migratePasswords({ store, keys: ring2(), cost: 10 });
    expect(again).toMatchObject({ seen: 6, upgraded: 0, current: 5, failed: 1 });
    expect(await snapshot(store)).toEqual(after);
  });

  test('without keys, sealed records are left as they are and counted current', async () => {
    const store = await sealedStore();
    const before = await snapshot(store);
    expect(await migratePasswords({ store, cost: 10 })).toMatchObject({ seen: 6, upgraded: 0, current: 6, failed: 0 });
    expect(await snapshot(store)).toEqual(before);
  });

  test('stopped half-way by a failing store, then run again: converges, nothing lost', async () => {
    const inner = await sealedStore();
    let replaces = 0;
    const flaky: PasswordStore = {
      setIfAbsent: (id, r) => inner.setIfAbsent(id, r),
      get: (id) => inner.get(id),
      replace: (id, expected, r) => {
        replaces += 1;
        if (replaces === 3) throw new Error('the database went away');
        return inner.replace(id, expected, r);
      },
      delete: (id) => inner.delete(id),
      ids: () => inner.ids?.() ?? [],
    };
    await expect(migratePasswords({ store: flaky, keys: ring2(), concurrency: 1, cost: 10 })).rejects.toThrow(
      /the store failed on record/,
    );
    const half = await snapshot(inner);
    expect(Object.values(half).filter((r) => r?.scheme === 'aes-256-gcm:k2')).toHaveLength(2);
    expect(await migratePasswords({ store: flaky, keys: ring2(), cost: 10 })).toMatchObject({
      upgraded: 2,
      current: 3,
      failed: 1,
    });
    for (const [i, secret] of secrets.entries()) {
      expect(await openRecord(ring2(), 'password', `s-${i}`, (await inner.get(`s-${i}`)) as PasswordRecord)).toEqual({
        plaintext: secret,
        keyId: 'k2',
      });
    }
  });

  test('purpose applies to every sealed record of the run: one run per purpose', async () => {
    const store = new MemoryStore();
    store.setIfAbsent('user', await sealedRecord(ring1(), 'password', 'user', 'user secret', SET_AT));
    store.setIfAbsent('admin', await sealedRecord(ring1(), 'admin-password', 'admin', 'admin secret', SET_AT));
    store.setIfAbsent('fresh', await sealedRecord(ring2(), 'admin-password', 'fresh', 'fresh secret', SET_AT));
    const admin = store.get('admin');
    const first = await migratePasswords({ store, keys: ring2() });
    expect(first).toMatchObject({ seen: 3, upgraded: 1, current: 1, failed: 1 });
    expect(first.failures.map((f) => f.id)).toEqual(['admin']);
    expect(store.get('admin')).toEqual(admin);
    expect(await migratePasswords({ store, keys: ring2(), purpose: 'admin-password' })).toMatchObject({
      upgraded: 1,
      current: 2,
      failed: 0,
    });
    expect(await openRecord(ring2(), 'admin-password', 'admin', store.get('admin') as PasswordRecord)).toEqual({
      plaintext: 'admin secret',
      keyId: 'k2',
    });
    expect(await openRecord(ring2(), 'password', 'user', store.get('user') as PasswordRecord)).toEqual({
      plaintext: 'user secret',
      keyId: 'k2',
    });
  });

  /** ring2 through the provider interface, failing from its `failAt`-th call on. */
  function failingRing(failAt: number, fail: () => never): KeyProvider & { readonly calls: () => number } {
    const inner = ring2();
    let calls = 0;
    const counted = <T>(answer: () => T): T => {
      calls += 1;
      return calls >= failAt ? fail() : answer();
    };
    return {
      currentKeyId: () => counted(() => inner.currentKeyId()),
      key: (id) => counted(() => inner.key(id)),
      calls: () => calls,
    };
  }

  test('a key provider that fails mid-run, while a record is sealed again, is named as the cause, never the store', async () => {
    const keyForms = [K1, K2, ...[K1, K2].map((k) => Buffer.from(k, 'base64').toString('hex'))];
    const throwing = (): never => {
      throw new Error('vault is sealed');
    };
    const rejecting = (): never => Promise.reject(new Error('vault is sealed')) as never;
    for (const fail of [throwing, rejecting]) {
      const store = await sealedStore();
      const before = await snapshot(store);
      // Two calls for the check before the run, three to open s-0; the sixth, for its new seal, fails.
      const keys = failingRing(6, fail);
      const error = await migratePasswords({ store, keys, concurrency: 1, cost: 10 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(keys.calls()).toBe(6);
      expect(error?.message).toBe('migratePasswords: the key provider failed on record "s-0": vault is sealed');
      expect((error?.cause as Error | undefined)?.message).toBe('vault is sealed');
      for (const form of keyForms) expect(String(error?.message)).not.toContain(form);
      expect(await snapshot(store)).toEqual(before);
    }
  });

  test('a key provider that fails while a source value is sealed is named as the cause', async () => {
    const passwords = new Map([
      ['inst-a', 'guest ciphertext a'],
      ['inst-b', 'guest ciphertext b'],
    ]);
    const source: LegacyPasswordSource = {
      mechanism: 'seal',
      ids: () => [...passwords.keys()],
      read: (id) => passwords.get(id),
      clear: (id, expected) => passwords.get(id) === expected && passwords.delete(id),
    };
    // Two calls for the check before the run, two to seal inst-a; the sixth, for inst-b's, fails.
    const keys = failingRing(6, () => {
      throw new Error('kms timed out');
    });
    const store = new MemoryStore();
    await expect(migratePasswords({ store, source, keys, concurrency: 1 })).rejects.toThrow(
      /^migratePasswords: the key provider failed on record "inst-b": kms timed out$/,
    );
    expect(store.get('inst-a')?.scheme).toBe('aes-256-gcm:k2');
    expect(passwords.has('inst-a')).toBe(false);
    expect(store.get('inst-b')).toBeUndefined();
    expect(passwords.get('inst-b')).toBe('guest ciphertext b');
  });

  test('on SQLite, no copy of a value sealed under the retired key is left in the file or its WAL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reseal-'));
    const file = join(dir, 'secrets.db');
    const store = new SqliteStore({ filename: file });
    try {
      await sealedStore(store);
      const old = secrets.map((_, i) => store.get(`s-${i}`)?.hash.split('.')[2] ?? 'missing');
      const bytes = (): Buffer => Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
      expect(old.every((part) => bytes().includes(Buffer.from(part)))).toBe(true);
      const summary = await migratePasswords({ store, keys: ring2(), cost: 10 });
      expect(summary).toMatchObject({ upgraded: 4, scrubbed: true });
      for (const part of old) expect(bytes().includes(Buffer.from(part))).toBe(false);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad options are TypeErrors at the call', async () => {
    const store = new MemoryStore();
    await expect(migratePasswords({ store, keys: { current: 'k1' } as never })).rejects.toThrow(
      /^migratePasswords: option "keys" must be a key provider/,
    );
    await expect(migratePasswords({ store, keys: ring1(), purpose: 'a b' })).rejects.toThrow(
      /^migratePasswords: option "purpose" must be a label/,
    );
    await expect(migratePasswords({ store, keys: { currentKeyId: () => 'k9', key: () => undefined } })).rejects.toThrow(
      /^migratePasswords: the key provider failed before the first record: .*no key for its current key id "k9"/,
    );
  });
});
