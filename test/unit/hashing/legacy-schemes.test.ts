import { createHash } from 'node:crypto';
import bcrypt from 'bcrypt';
import request from 'supertest';
import { MemoryStore, isOwnProblem, migratePasswords, passwordRoutes, passwordVerifier, verifyPassword } from '../../../lib';
import type { LegacyScheme, PasswordRecord } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import { passwordApp } from '../../helpers/password';
import { expectProblem } from '../../helpers/problem';

const SET_AT = '2019-05-14T09:30:00.000Z';
const PEPPER = 'test-pepper-0123456789abcdef0123456789abcdef';
const hex = (algorithm: string, password: string): string => createHash(algorithm).update(password, 'utf8').digest('hex');

// A custom scheme with a digest (wrappable) and one with only a verify (salted: not wrappable).
const sha512: LegacyScheme = { name: 'sha512', digest: (password) => hex('sha512', password).slice(0, 64) };
const salted: LegacyScheme = {
  name: 'salted-sha1',
  verify: (password, stored) => {
    const [salt, digest] = stored.split('$');
    return hex('sha1', `${salt ?? ''}${password}`) === digest;
  },
};

interface Case {
  readonly scheme: string;
  readonly password: string;
  readonly stored: string;
  readonly wrapped: string | undefined;
}

const cases: readonly Case[] = [
  { scheme: 'plain', password: 'copper kettle summer', stored: 'copper kettle summer', wrapped: undefined },
  { scheme: 'md5', password: 'tangerine lantern 42', stored: hex('md5', 'tangerine lantern 42'), wrapped: 'bcrypt+md5' },
  { scheme: 'sha1', password: 'quiet harbour bell', stored: hex('sha1', 'quiet harbour bell'), wrapped: 'bcrypt+sha1' },
  { scheme: 'sha256', password: 'marble owl at noon', stored: hex('sha256', 'marble owl at noon'), wrapped: 'bcrypt+sha256' },
  {
    scheme: 'sha512',
    password: 'north wind orchard',
    stored: hex('sha512', 'north wind orchard').slice(0, 64),
    wrapped: 'bcrypt+sha512',
  },
];

const legacy = [sha512, salted];

function storeWith(id: string, hash: string, scheme: string): MemoryStore {
  const store = new MemoryStore();
  store.setIfAbsent(id, { hash, setAt: SET_AT, scheme });
  return store;
}

async function expectPlainBcrypt(record: PasswordRecord | undefined, password: string, cost = 10): Promise<void> {
  expect(record?.scheme).toBe('bcrypt');
  expect(record?.hash).toMatch(new RegExp(`^\\$2b\\$${cost}\\$`));
  expect(record?.setAt).toBe(SET_AT);
  expect(await bcrypt.compare(password, record?.hash ?? '')).toBe(true);
}

describe('verifyPassword on legacy records', () => {
  describe.each(cases)('scheme $scheme', ({ scheme, password, stored, wrapped }) => {
    test('before migration: the right password matches and the record becomes plain bcrypt; a wrong one does not', async () => {
      const store = storeWith('srv-1', stored, scheme);
      expect(await verifyPassword(store, 'srv-1', `${password}!`, { cost: 10, legacy })).toEqual({
        match: false,
        rehashed: false,
      });
      expect(await verifyPassword(store, 'srv-1', '', { cost: 10, legacy })).toEqual({ match: false, rehashed: false });
      expect(store.get('srv-1')).toEqual({ hash: stored, setAt: SET_AT, scheme });
      expect(await verifyPassword(store, 'srv-1', password, { cost: 10, legacy })).toEqual({ match: true, rehashed: true });
      await expectPlainBcrypt(store.get('srv-1'), password);
      // And the upgraded record verifies as any other.
      expect(await verifyPassword(store, 'srv-1', password, { cost: 10, legacy })).toEqual({ match: true, rehashed: false });
      expect(await verifyPassword(store, 'srv-1', `${password}!`, { cost: 10, legacy })).toEqual({
        match: false,
        rehashed: false,
      });
    });

    test('after migration: the record is bcrypt at once; right and wrong passwords, then upgrade-on-verify', async () => {
      const store = storeWith('srv-1', stored, scheme);
      const summary = await migratePasswords({ store, cost: 10, legacy });
      expect(summary).toMatchObject({ seen: 1, upgraded: 1, current: 0, failed: 0 });
      const migrated = store.get('srv-1');
      expect(migrated?.hash).toMatch(/^\$2b\$10\$/);
      expect(migrated?.scheme).toBe(wrapped ?? 'bcrypt');
      expect(migrated?.setAt).toBe(SET_AT);
      if (wrapped !== undefined) expect(await bcrypt.compare(stored, migrated?.hash ?? '')).toBe(true);

      expect(await verifyPassword(store, 'srv-1', `${password}!`, { cost: 10, legacy })).toEqual({
        match: false,
        rehashed: false,
      });
      expect(await verifyPassword(store, 'srv-1', stored === password ? 'x' : stored, { cost: 10, legacy })).toEqual({
        match: false,
        rehashed: false,
      });
      expect(store.get('srv-1')).toEqual(migrated);
      const verified = await verifyPassword(store, 'srv-1', password, { cost: 10, legacy });
      expect(verified).toEqual({ match: true, rehashed: wrapped !== undefined });
      await expectPlainBcrypt(store.get('srv-1'), password);
    });
  });

  test('the wrapped digest itself is not a password: knowing a leaked MD5 does not log in after migration', async () => {
    const digest = hex('md5', 'tangerine lantern 42');
    const store = storeWith('srv-1', digest, 'md5');
    await migratePasswords({ store, cost: 10 });
    expect((await verifyPassword(store, 'srv-1', digest, { cost: 10 })).match).toBe(false);
  });

  test('nor under a custom digest too long to wrap: such a candidate is compared with a dummy, never the record', async () => {
    const leaked = hex('sha1', 'quiet harbour bell');
    // A digest that no wrapped record can hold (over 72 bytes) for some inputs only.
    const uneven: LegacyScheme = {
      name: 'uneven',
      digest: (password) => (/^[0-9a-f]{40}$/.test(password) ? password.repeat(3) : hex('sha1', password)),
    };
    const store = storeWith('srv-1', await bcrypt.hash(leaked, 10), 'bcrypt+uneven');
    expect((await verifyPassword(store, 'srv-1', leaked, { cost: 10, legacy: [uneven] })).match).toBe(false);
    expect((await verifyPassword(store, 'srv-1', 'quiet harbour bell', { cost: 10, legacy: [uneven] })).match).toBe(true);
  });

  test('a wrapped record matches its password typed composed or decomposed, whichever form it was made from', async () => {
    for (const made of ['caf\u00e9 au lait 42', 'cafe\u0301 au lait 42']) {
      const store = storeWith('srv-1', await bcrypt.hash(hex('md5', made), 10), 'bcrypt+md5');
      for (const typed of ['caf\u00e9 au lait 42', 'cafe\u0301 au lait 42']) {
        expect((await verifyPassword(store, 'srv-1', typed, { cost: 10, rehash: false })).match).toBe(true);
      }
      expect((await verifyPassword(store, 'srv-1', 'cafe au lait 42', { cost: 10, rehash: false })).match).toBe(false);
    }
  });

  test('a built-in hex digest stored in upper case is read as the same digest', async () => {
    const store = storeWith('srv-1', hex('sha1', 'quiet harbour bell').toUpperCase(), 'sha1');
    expect((await verifyPassword(store, 'srv-1', 'quiet harbour bell', { cost: 10, rehash: false })).match).toBe(true);
    await migratePasswords({ store, cost: 10 });
    expect((await verifyPassword(store, 'srv-1', 'quiet harbour bell', { cost: 10 })).match).toBe(true);
  });

  test('a verify-only scheme checks and upgrades on verify, and the migration reports it as not wrappable', async () => {
    const stored = `pepper9$${hex('sha1', 'pepper9lime tree')}`;
    const store = storeWith('srv-1', stored, 'salted-sha1');
    const summary = await migratePasswords({ store, cost: 10, legacy });
    expect(summary.failed).toBe(1);
    expect(summary.failures[0]?.reason).toMatch(
      /no digest, so it cannot be wrapped; it is upgraded at its next successful verify/,
    );
    expect(store.get('srv-1')?.hash).toBe(stored);
    expect((await verifyPassword(store, 'srv-1', 'lime tre', { cost: 10, legacy })).match).toBe(false);
    expect(await verifyPassword(store, 'srv-1', 'lime tree', { cost: 10, legacy })).toEqual({ match: true, rehashed: true });
    await expectPlainBcrypt(store.get('srv-1'), 'lime tree');
  });

  test('with rehash: false a legacy record matches and is left as it is', async () => {
    const stored = hex('md5', 'tangerine lantern 42');
    const store = storeWith('srv-1', stored, 'md5');
    expect(await verifyPassword(store, 'srv-1', 'tangerine lantern 42', { cost: 10, rehash: false })).toEqual({
      match: true,
      rehashed: false,
    });
    expect(store.get('srv-1')?.hash).toBe(stored);
  });

  test('with a pepper, a legacy record is upgraded to the pre-hashed scheme', async () => {
    const store = storeWith('srv-1', hex('md5', 'tangerine lantern 42'), 'md5');
    await migratePasswords({ store, cost: 10, pepper: PEPPER });
    expect(store.get('srv-1')?.scheme).toBe('bcrypt+md5');
    expect(await verifyPassword(store, 'srv-1', 'tangerine lantern 42', { cost: 10, pepper: PEPPER })).toEqual({
      match: true,
      rehashed: true,
    });
    expect(store.get('srv-1')?.scheme).toBe('bcrypt+hmac-sha256');
  });

  test('a plain record over 72 bytes verifies whole (never by its first 72 bytes); it is upgraded only with a pepper', async () => {
    const long = 'L'.repeat(72) + 'tail';
    const store = storeWith('srv-1', long, 'plain');
    expect((await verifyPassword(store, 'srv-1', 'L'.repeat(72), { cost: 10 })).match).toBe(false);
    expect((await verifyPassword(store, 'srv-1', `${'L'.repeat(72)}tail2`, { cost: 10 })).match).toBe(false);
    expect(await verifyPassword(store, 'srv-1', long, { cost: 10 })).toEqual({ match: true, rehashed: false });
    expect(store.get('srv-1')?.scheme).toBe('plain');
    expect(await verifyPassword(store, 'srv-1', long, { cost: 10, pepper: PEPPER })).toEqual({ match: true, rehashed: true });
    expect(store.get('srv-1')?.scheme).toBe('bcrypt+hmac-sha256');
    expect((await verifyPassword(store, 'srv-1', 'L'.repeat(72), { cost: 10, pepper: PEPPER })).match).toBe(false);
  });

  test('a malformed digest record and an unknown scheme are 500 problems that name no hash', async () => {
    const stored = 'not-a-hex-digest';
    for (const [scheme, message] of [
      ['md5', /not a well-formed md5 hex digest/],
      ['crypt', /scheme "crypt", which this verifier cannot check; give it in the legacy option/],
      ['bcrypt+crypt', /scheme "bcrypt\+crypt"/],
    ] as const) {
      const store = storeWith('srv-1', stored, scheme);
      const error: unknown = await verifyPassword(store, 'srv-1', 'guess', { cost: 10 }).catch((e: unknown) => e);
      expect(isOwnProblem(error)).toBe(true);
      expect(error).toMatchObject({ status: 500, type: 'password.misconfigured' });
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain(stored);
    }
  });

  test('a legacy verify runs one bcrypt compare too, so it answers no faster than a bcrypt record', async () => {
    const store = storeWith('srv-1', hex('md5', 'tangerine lantern 42'), 'md5');
    const compare = jest.spyOn(bcrypt, 'compare');
    try {
      await verifyPassword(store, 'srv-1', 'wrong', { cost: 10 });
      expect(compare).toHaveBeenCalledTimes(1);
      expect(compare.mock.calls[0]?.[1]).toMatch(/^\$2b\$10\$/);
    } finally {
      compare.mockRestore();
    }
  });

  test('bad legacy options throw a TypeError naming the option and what is wrong', async () => {
    const store = new MemoryStore();
    const digest = (): string => '';
    const naming =
      'a name is lowercase letters, digits, ".", "_" and "-" (at most 32), not plain, md5, sha1, sha256, bcrypt, hmac-sha256, aes-256-gcm and not starting with "bcrypt".';
    const bad: Array<[unknown, string]> = [
      ['md5', 'must be an array of legacy schemes ({ name, digest } or { name, verify }).'],
      [[null], 'must hold objects { name, digest } or { name, verify }.'],
      [['md5'], 'must hold objects { name, digest } or { name, verify }.'],
      [[{ digest }], `has a scheme named undefined: ${naming}`],
      [[{ name: 'md5', digest }], `has a scheme named "md5": ${naming}`],
      [[{ name: 'hmac-sha256', digest }], `has a scheme named "hmac-sha256": ${naming}`],
      [[{ name: 'aes-256-gcm', digest }], `has a scheme named "aes-256-gcm": ${naming}`],
      [[{ name: 'bcrypt-x', digest }], `has a scheme named "bcrypt-x": ${naming}`],
      [[{ name: 'Upper', digest }], `has a scheme named "Upper": ${naming}`],
      [[{ name: 'crypt!', digest }], `has a scheme named "crypt!": ${naming}`],
      [[{ name: '!crypt', digest }], `has a scheme named "!crypt": ${naming}`],
      [[{ name: 'a'.repeat(33), digest }], `has a scheme named "${'a'.repeat(33)}": ${naming}`],
      [[sha512, sha512], 'names the scheme "sha512" twice.'],
      [[{ name: 'x', digest: 'sha1' }], 'scheme "x": digest must be a function (password) => string.'],
      [[{ name: 'x', verify: true }], 'scheme "x": verify must be a function (password, stored) => boolean.'],
      [[{ name: 'nothing' }], 'scheme "nothing" needs a digest or a verify function.'],
    ];
    for (const [value, problem] of bad) {
      await expect(verifyPassword(store, 'srv-1', 'x', { legacy: value as LegacyScheme[] })).rejects.toThrow(
        new TypeError(`verifyPassword: option "legacy" ${problem}`),
      );
      expect(() => passwordVerifier({ store, legacy: value as LegacyScheme[] })).toThrow(TypeError);
    }
    // The longest name allowed, and one of every allowed kind of character.
    for (const name of ['a'.repeat(32), '0crypt.v2_x-y']) {
      await expect(verifyPassword(store, 'srv-1', 'x', { cost: 10, legacy: [{ name, digest }] })).resolves.toEqual({
        match: false,
        rehashed: false,
      });
    }
    expect(() =>
      passwordRoutes(
        {
          route: () => {
            throw new Error('not reached');
          },
        } as never,
        { store, ownership: { load: () => ({}), owner: 'x' }, hashing: { legacy: [{ name: 'md5' }] as never } } as never,
      ),
    ).toThrow(/passwordRoutes: option "legacy"/);
  });

  test('a built-in digest record must be exactly its length in hex: anything else is a 500', async () => {
    const good = hex('md5', 'tangerine lantern 42');
    for (const stored of [good.slice(1), `${good}0`, `g${good.slice(1)}`, `${good.slice(1)}g`, 'z'.repeat(32)]) {
      const store = storeWith('srv-1', stored, 'md5');
      await expect(verifyPassword(store, 'srv-1', 'tangerine lantern 42', { cost: 10 })).rejects.toMatchObject({
        status: 500,
        message: 'A stored password of scheme "md5" is not a well-formed md5 hex digest.',
      });
      expect(await migratePasswords({ store, cost: 10 })).toMatchObject({
        failed: 1,
        failures: [{ id: 'srv-1', reason: 'the stored value is not a well-formed md5 digest of at most 72 bytes.' }],
      });
    }
  });

  test("a custom digest record is compared as stored, whatever its length; it is wrapped only within bcrypt's 72 bytes", async () => {
    const long: LegacyScheme = { name: 'sha512-full', digest: (password) => hex('sha512', password) };
    const exact: LegacyScheme = { name: 'sha512-72', digest: (password) => hex('sha512', password).slice(0, 72) };
    const password = 'north wind orchard';
    const store = new MemoryStore();
    store.setIfAbsent('long', { hash: hex('sha512', password), setAt: SET_AT, scheme: 'sha512-full' });
    store.setIfAbsent('exact', { hash: hex('sha512', password).slice(0, 72), setAt: SET_AT, scheme: 'sha512-72' });
    const legacy = [long, exact];
    for (const id of ['long', 'exact']) {
      expect(await verifyPassword(store, id, password, { cost: 10, rehash: false, legacy })).toEqual({
        match: true,
        rehashed: false,
      });
    }
    const summary = await migratePasswords({ store, cost: 10, legacy });
    expect(summary).toMatchObject({ upgraded: 1, failed: 1 });
    expect(summary.failures).toEqual([
      { id: 'long', reason: 'the stored value is not a well-formed sha512-full digest of at most 72 bytes.' },
    ]);
    expect(store.get('exact')?.scheme).toBe('bcrypt+sha512-72');
    expect(await verifyPassword(store, 'exact', password, { cost: 10, rehash: false, legacy })).toEqual({
      match: true,
      rehashed: false,
    });
  });

  test('a scheme that only ends like a wrapped one is unknown, never a wrapped record', async () => {
    // "bcrypt+" is 7 characters: a scheme whose 8th character on spells a known digest.
    const store = storeWith('srv-1', await bcrypt.hash(hex('md5', 'tangerine lantern 42'), 10), 'crypt++md5');
    await expect(verifyPassword(store, 'srv-1', 'tangerine lantern 42', { cost: 10 })).rejects.toMatchObject({
      status: 500,
      message:
        'The password route is misconfigured: a stored password has scheme "crypt++md5", which this verifier cannot check; give it in the legacy option.',
    });
  });

  test('a custom digest or verify that returns the wrong type is a 500, not a match', async () => {
    const broken: LegacyScheme[] = [
      { name: 'broken-digest', digest: () => 42 as unknown as string },
      { name: 'broken-verify', verify: () => 'yes' as unknown as boolean },
    ];
    for (const scheme of ['broken-digest', 'broken-verify']) {
      const store = storeWith('srv-1', 'whatever', scheme);
      await expect(verifyPassword(store, 'srv-1', 'x', { cost: 10, legacy: broken })).rejects.toMatchObject({
        status: 500,
        type: 'password.misconfigured',
        message:
          scheme === 'broken-digest'
            ? 'The legacy scheme "broken-digest" has a digest function that returned number, not a string.'
            : 'The legacy scheme "broken-verify" has a verify function that returned string, not a boolean.',
      });
    }
  });
});

describe.each(expressVersions)('passwordVerifier on legacy records on %s', (_name, express) => {
  test.each(cases)(
    'scheme $scheme: right password 200 and upgraded, wrong 403, before and after migration',
    async ({ scheme, password, stored }) => {
      for (const migrate of [false, true]) {
        const store = storeWith('srv-1', stored, scheme);
        if (migrate) await migratePasswords({ store, cost: 10, legacy });
        const before = store.get('srv-1');
        const app = passwordApp(express, { store, cost: 10 }, { store, cost: 10, legacy });
        const wrong = await request(app)
          .post('/servers/srv-1/password/verify')
          .send({ password: `${password}?` });
        expectProblem(wrong, 403, 'password.mismatch');
        expect(wrong.text).not.toContain(stored);
        expect(store.get('srv-1')).toEqual(before);

        const right = await request(app).post('/servers/srv-1/password/verify').send({ password });
        expect(right.status).toBe(200);
        expect(right.body).toEqual({ match: true, rehashed: !(migrate && scheme === 'plain') });
        expect(right.text).not.toContain(stored);
        await expectPlainBcrypt(store.get('srv-1'), password);
      }
    },
  );

  test('a stored legacy password still blocks setting another: 409, the record unchanged', async () => {
    const store = storeWith('srv-1', hex('md5', 'tangerine lantern 42'), 'md5');
    const app = passwordApp(express, { store, cost: 10 });
    const res = await request(app).post('/servers/srv-1/password').send({ password: 'a brand new password' });
    expect(res.status).toBe(409);
    expect(store.get('srv-1')?.scheme).toBe('md5');
  });
});
