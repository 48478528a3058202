import { createSecretKey, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { assertKnownKeys, hasMethods, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import type { MaybePromise } from '../stores/store';
import { BASE64URL } from '../internal/syntax';

/** AES-256 takes exactly this many key bytes. */
export const KEY_BYTES = 32;

/**
 * A key id: letters, digits, `.`, `_` and `-`, at most 64 characters. It is written into
 * each sealed record's scheme (`aes-256-gcm:<id>`), so it must never be secret.
 */
export const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Where the sealing storer gets its AES-256 keys: the id of the key new values are
 * sealed under, and any key by id (older ones stay readable until every record is
 * re-sealed). Either method may answer at once or with a promise, so a KMS or Vault
 * client fits; {@link localKeyRing} is the built-in one. Keys are 32 bytes; a provider
 * that answers anything else makes the request fail with a 500, never with a weaker key.
 *
 * @example
 * const vaultKeys: KeyProvider = {
 *   currentKeyId: () => 'k2',
 *   key: async (id) => Buffer.from(await vault.read(`transit-export/${id}`), 'base64'),
 * };
 */
export interface KeyProvider {
  /** The id of the key new values are sealed under. */
  currentKeyId(): MaybePromise<string>;
  /** The 32-byte key with this id, or `undefined` when there is none. */
  key(id: string): MaybePromise<Uint8Array | undefined>;
}

/**
 * Options of {@link localKeyRing}.
 *
 * @example
 * const options: LocalKeyRingOptions = {
 *   current: 'k2',
 *   keys: { k1: process.env.SEAL_KEY_K1 ?? '', k2: process.env.SEAL_KEY_K2 ?? '' },
 * };
 */
export interface LocalKeyRingOptions {
  /** The id of the key new values are sealed under; it must be one of `keys`. Required. */
  readonly current: string;
  /**
   * Every key still accepted, by id: 32 bytes each, as a `Uint8Array` or as base64
   * (`openssl rand -base64 32`). Copied at construction. Required.
   */
  readonly keys: Readonly<Record<string, Uint8Array | string>>;
}

const optionKeys: KeysEnum<LocalKeyRingOptions> = { current: true, keys: true };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Decodes a base64 (or base64url) key strictly: the lenient decoder of `Buffer` skips
 * characters it does not know, so a mangled variable would silently give another key.
 */
function decodeKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (BASE64.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64');
    if (decoded.toString('base64') === trimmed) return decoded;
  }
  if (trimmed !== '' && BASE64URL.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64url');
    if (decoded.toString('base64url') === trimmed) return decoded;
  }
  return undefined;
}

/** A key ready for the cipher, with its id. */
export interface IdentifiedKey {
  readonly keyId: string;
  readonly key: Uint8Array | KeyObject;
}

/**
 * The keys of each ring {@link localKeyRing} made, checked once and held as `KeyObject`s:
 * the sealing code reads them here without a copy, a check or a promise per request.
 * Keyed by the frozen provider object, so a wrapper around a ring takes the general path.
 */
const localRings = new WeakMap<KeyProvider, { readonly current: IdentifiedKey; readonly keys: ReadonlyMap<string, KeyObject> }>();

/**
 * A {@link KeyProvider} over keys held in this process: one current id and any number of
 * older ones still accepted for reading. Every key is checked and copied when it is
 * called, so a bad key ring stops the app at start-up, and a buffer the caller zeroes or
 * reuses later changes nothing. Throws a `TypeError` naming the option (and the key id,
 * never the key) for a key that is not 32 bytes, a string that is not canonical base64,
 * a current id that is not in `keys`, an id that is not `[A-Za-z0-9._-]{1,64}`, or two
 * ids holding the same key (a rotation that rotated nothing).
 *
 * @example
 * // Generate each key with `openssl rand -base64 32` and keep it out of the database.
 * const keys = localKeyRing({
 *   current: 'k2',
 *   keys: { k1: process.env.SEAL_KEY_K1 ?? '', k2: process.env.SEAL_KEY_K2 ?? '' },
 * });
 * app.post('/servers/:id/secret', passwordBody(), encryptAndStore({ store, keys }), created);
 */
export function localKeyRing(options: LocalKeyRingOptions): KeyProvider {
  assertKnownKeys('localKeyRing', options, optionKeys);
  const { current, keys } = options;
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) {
    throw optionError('localKeyRing', 'keys', 'must be an object of keys by id: { k1: "<base64 of 32 bytes>" }.');
  }
  const ring = new Map<string, Buffer>();
  for (const [id, value] of Object.entries(keys)) {
    if (!KEY_ID.test(id)) {
      throw optionError(
        'localKeyRing',
        'keys',
        `has a key id ${JSON.stringify(id.slice(0, 70))}: an id is letters, digits, ".", "_" and "-", at most 64 characters.`,
      );
    }
    let key: Buffer | undefined;
    if (typeof value === 'string') {
      key = decodeKey(value);
      if (key === undefined) {
        throw optionError('localKeyRing', 'keys', `key "${id}" is not base64 (generate one with: openssl rand -base64 32).`);
      }
    } else if (value instanceof Uint8Array) {
      key = Buffer.from(value);
    } else {
      throw optionError(
        'localKeyRing',
        'keys',
        `key "${id}" must be a Uint8Array or a base64 string, got ${value === null ? 'null' : typeof value}.`,
      );
    }
    if (key.length !== KEY_BYTES) {
      key.fill(0);
      throw optionError(
        'localKeyRing',
        'keys',
        `key "${id}" is ${key.length} bytes; AES-256 needs exactly ${KEY_BYTES} (generate one with: openssl rand -base64 32).`,
      );
    }
    for (const [otherId, other] of ring) {
      if (timingSafeEqual(other, key)) {
        throw optionError(
          'localKeyRing',
          'keys',
          `keys "${otherId}" and "${id}" are the same key; a new key id needs a new random key.`,
        );
      }
    }
    ring.set(id, key);
  }
  if (ring.size === 0) throw optionError('localKeyRing', 'keys', 'must hold at least one key.');
  if (typeof current !== 'string' || !ring.has(current)) {
    throw optionError(
      'localKeyRing',
      'current',
      `must be the id of one of the keys (${[...ring.keys()].map((id) => `"${id}"`).join(', ')}), got ${typeof current === 'string' ? JSON.stringify(current.slice(0, 70)) : typeof current}.`,
    );
  }
  const provider: KeyProvider = Object.freeze({
    currentKeyId: (): string => current,
    // A copy each time: a caller that zeroes what it was given must not erase the ring's key.
    key: (id: string): Uint8Array | undefined => {
      const key = ring.get(id);
      return key === undefined ? undefined : Buffer.from(key);
    },
  });
  const keyObjects = new Map([...ring].map(([id, key]) => [id, createSecretKey(key)] as const));
  const currentObject = keyObjects.get(current);
  if (currentObject !== undefined)
    localRings.set(provider, { current: { keyId: current, key: currentObject }, keys: keyObjects });
  return provider;
}

export function localRing(
  provider: KeyProvider,
): { readonly current: IdentifiedKey; readonly keys: ReadonlyMap<string, KeyObject> } | undefined {
  return localRings.get(provider);
}

/** Throws a `TypeError` naming the option unless `value` has the methods of a {@link KeyProvider}. */
export function assertKeyProvider(factory: string, option: string, value: unknown): asserts value is KeyProvider {
  if (!hasMethods(value, ['currentKeyId', 'key'])) {
    throw optionError(
      factory,
      option,
      'must be a key provider with currentKeyId() and key(id), such as localKeyRing({ current, keys }).',
    );
  }
}
