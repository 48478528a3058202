import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { misconfigured } from '../hashing/bcrypt';
import { whenReady } from '../internal/async';
import type { MaybePromise } from '../stores/store';
import { KEY_BYTES, KEY_ID, localRing } from './key-ring';
import type { IdentifiedKey, KeyProvider } from './key-ring';

/** The cipher of sealed records, and the first part of their scheme. */
export const SEALED_ALGORITHM = 'aes-256-gcm';
const SCHEME_PREFIX = `${SEALED_ALGORITHM}:`;
/** 96 bits: the nonce size GCM is defined for; any other is hashed into one, weakening it. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'v1';
const AAD_LABEL = Buffer.from('express-password-guard sealed v1', 'utf8');
/** The label's part of every associated data, framed once. */
const AAD_LABEL_FRAMED = frame([AAD_LABEL]);

/** The scheme of a record sealed under `keyId`: `aes-256-gcm:<keyId>`. */
export function sealedScheme(keyId: string): string {
  return SCHEME_PREFIX + keyId;
}

/** Whether a record's scheme says it was sealed (whatever its key id), not hashed. */
export function isSealedScheme(scheme: string): boolean {
  return scheme === SEALED_ALGORITHM || scheme.startsWith(SCHEME_PREFIX);
}

/** The key id of a sealed record's scheme, or `undefined` when it names none that can be. */
export function sealedKeyId(scheme: string): string | undefined {
  if (!scheme.startsWith(SCHEME_PREFIX)) return undefined;
  const id = scheme.slice(SCHEME_PREFIX.length);
  return KEY_ID.test(id) ? id : undefined;
}

/**
 * The associated data of a sealed value: what it is bound to without being encrypted.
 * Each part is length-prefixed, so ("a:b", "c") and ("a", "b:c") can never read the same.
 * When all three parts are ASCII (the purpose and key id always are, by their patterns;
 * record ids nearly always), the same bytes as {@link frame}'s are built as one latin1
 * string and encoded in one call: after a disk write each small `Buffer` call runs cold
 * and costs several µs, and framing by parts made eight (three lengths, an allocation, a
 * copy, three writes).
 */
function associatedData(purpose: string, id: string, keyId: string): Buffer {
  if (NOT_ASCII.test(purpose + id + keyId)) return frame([purpose, id, keyId], AAD_LABEL_FRAMED);
  return Buffer.from(AAD_LABEL_TEXT + framedAscii(purpose) + framedAscii(id) + framedAscii(keyId), 'latin1');
}

/** Any UTF-16 unit above U+007F (surrogates included): the text is not ASCII. */
const NOT_ASCII = /[\u0080-\uffff]/;
/** The framed label as latin1 text: each byte one character. */
const AAD_LABEL_TEXT = AAD_LABEL_FRAMED.toString('latin1');

/** ASCII text as {@link frame} writes it, in latin1 characters: its 4-byte big-endian length, then the text. */
function framedAscii(text: string): string {
  const length = text.length;
  return String.fromCharCode(length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff) + text;
}

/** Each part as a 4-byte big-endian length and its bytes, after `head`, in one buffer. */
function frame(parts: ReadonlyArray<string | Buffer>, head?: Buffer): Buffer {
  let size = head?.length ?? 0;
  for (const part of parts) size += 4 + (typeof part === 'string' ? Buffer.byteLength(part, 'utf8') : part.length);
  // Unsafe is safe here: every byte is written below, and associated data is not secret.
  const out = Buffer.allocUnsafe(size);
  let offset = head === undefined ? 0 : head.copy(out);
  for (const part of parts) {
    const length = typeof part === 'string' ? out.write(part, offset + 4, 'utf8') : part.copy(out, offset + 4);
    out.writeUInt32BE(length, offset);
    offset += 4 + length;
  }
  return out;
}

/**
 * Fresh nonces come from a pool of CSPRNG output, each 12 bytes used once and never
 * again: OpenSSL's per-call cost of `randomBytes` (about 10 µs here) dwarfs the 12 bytes
 * it returns, and was the largest single cost of a seal. Node's own `randomUUID`
 * caches random bytes the same way. A nonce is public (it is stored beside the
 * ciphertext), so holding the next few in memory reveals nothing a reader of the
 * database does not already get.
 */
const NONCE_COUNT = 256;
const NONCE_POOL = Buffer.alloc(NONCE_BYTES * NONCE_COUNT);
/**
 * A view of each nonce of the pool, made once: the pool is refilled in place, so the
 * views stay valid, and a seal makes no buffer for its nonce.
 */
const NONCE_VIEWS: readonly Buffer[] = Array.from({ length: NONCE_COUNT }, (_, i) =>
  NONCE_POOL.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES),
);
/** 12 bytes are 16 base64url characters with no remainder, so the pool's text is each nonce's text in turn. */
const NONCE_TEXT_LENGTH = (NONCE_BYTES / 3) * 4;
let noncePoolText = '';
let nextNonce = NONCE_COUNT;

/**
 * The index of the next nonce of the pool, each handed out once: {@link seal} uses its
 * view (the cipher copies it into its context) before it returns, and so before any other
 * call can refill the pool under it.
 */
function freshNonce(): number {
  if (nextNonce === NONCE_COUNT) {
    randomFillSync(NONCE_POOL);
    noncePoolText = NONCE_POOL.toString('base64url');
    nextNonce = 0;
  }
  return nextNonce++;
}

/**
 * Seals `plaintext` with AES-256-GCM under `key`, with a fresh random 96-bit nonce and
 * the record's purpose, id and key id as associated data. The result is
 * `v1.<nonce>.<ciphertext>.<tag>`, each part base64url: text every store keeps as is.
 */
export function seal(plaintext: string, key: Uint8Array | KeyObject, purpose: string, id: string, keyId: string): string {
  const nonce = freshNonce();
  const cipher = createCipheriv(SEALED_ALGORITHM, key, NONCE_VIEWS[nonce] as Buffer, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(purpose, id, keyId));
  const ciphertext = cipher.update(plaintext, 'utf8');
  // GCM is a stream mode: update() has given every byte, and final() only computes the tag.
  cipher.final();
  return `${FORMAT}.${noncePoolText.slice(nonce * NONCE_TEXT_LENGTH, (nonce + 1) * NONCE_TEXT_LENGTH)}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
}

/** Why a sealed value did not open. Never holds the value, the key or the plaintext. */
export type OpenFailure =
  | 'malformed'
  | 'authentication failed (altered, truncated, moved from another record or purpose, or sealed under another key)'
  | 'not UTF-8 text';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const B64 = '[A-Za-z0-9_-]';
/**
 * A sealed value, each part canonical base64url as Node's encoder writes it (no padding,
 * the unused bits of a last partial group zero): a 12-byte nonce (16 characters, no
 * remainder), a ciphertext of any length, and a 16-byte tag (21 characters and one whose
 * low 4 bits are unused). One anchored pass, linear in the length, where re-encoding each
 * decoded part to compare it made six `Buffer` calls more (each runs cold after a disk
 * write). The decoder skips characters it does not know, so this check is what refuses them.
 */
const SEALED = new RegExp(
  `^${FORMAT}\\.(${B64}{${NONCE_TEXT_LENGTH}})\\.((?:${B64}{4})*(?:${B64}[AQgw]|${B64}{2}[AEIMQUYcgkosw048])?)\\.(${B64}{21}[AQgw])$`,
);

/**
 * Opens a value made by {@link seal}: the plaintext, or why it cannot be had. The tag is
 * always checked (GCM's `final()` throws on a mismatch), so nothing of an altered value
 * is ever returned.
 */
export function open(
  sealed: string,
  key: Uint8Array | KeyObject,
  purpose: string,
  id: string,
  keyId: string,
): { readonly plaintext: string } | { readonly failure: OpenFailure } {
  const parts = SEALED.exec(sealed);
  if (parts === null) return { failure: 'malformed' };
  const nonce = Buffer.from(parts[1] as string, 'base64url');
  const ciphertext = Buffer.from(parts[2] as string, 'base64url');
  const tag = Buffer.from(parts[3] as string, 'base64url');
  let plain: Buffer | undefined;
  try {
    const decipher = createDecipheriv(SEALED_ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(purpose, id, keyId));
    decipher.setAuthTag(tag);
    plain = decipher.update(ciphertext);
    // Checks the tag (and throws on a mismatch) before the plaintext is used; GCM leaves nothing to flush.
    decipher.final();
  } catch {
    // What update() gave was never authenticated: it is wiped, never returned.
    plain?.fill(0);
    return {
      failure: 'authentication failed (altered, truncated, moved from another record or purpose, or sealed under another key)',
    };
  }
  try {
    return { plaintext: strictUtf8.decode(plain) };
  } catch {
    return { failure: 'not UTF-8 text' };
  } finally {
    plain.fill(0);
  }
}

/** A key as the provider gave it, checked: 32 bytes or a 500 that says so (never the key). */
function checkedKey(value: unknown, id: string): Uint8Array | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof Uint8Array) || value.length !== KEY_BYTES) {
    throw misconfigured(`The sealing key provider gave key "${id}" as something other than ${KEY_BYTES} bytes.`);
  }
  return value;
}

/**
 * The current key id and its key; a provider that cannot give them is a misconfiguration
 * (500). At once for a {@link localKeyRing} (and any provider answering synchronously),
 * a promise only when the provider answers with one.
 */
export function currentKey(keys: KeyProvider): MaybePromise<IdentifiedKey> {
  const local = localRing(keys);
  if (local !== undefined) return local.current;
  return whenReady(keys.currentKeyId(), (keyId: unknown) => {
    if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) {
      throw misconfigured('The sealing key provider gave a current key id that is not [A-Za-z0-9._-]{1,64}.');
    }
    return whenReady(keys.key(keyId), (value): IdentifiedKey => {
      const key = checkedKey(value, keyId);
      if (key === undefined) throw misconfigured(`The sealing key provider has no key for its current key id "${keyId}".`);
      return { keyId, key };
    });
  });
}

/** The id of the key new values are sealed under, as the provider gives it (unchecked). */
export function currentKeyId(keys: KeyProvider): MaybePromise<unknown> {
  return localRing(keys)?.current.keyId ?? keys.currentKeyId();
}

/** The key with id `keyId`, or `undefined` when the provider has none. */
export function keyById(keys: KeyProvider, keyId: string): MaybePromise<Uint8Array | KeyObject | undefined> {
  const local = localRing(keys);
  if (local !== undefined) return local.keys.get(keyId);
  return whenReady(keys.key(keyId), (value) => checkedKey(value, keyId));
}
