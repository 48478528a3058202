/*
 * OpenSSH `ssh-rsa` public keys, as Nova keeps a server's key pair and as the guest agent
 * reads it from meta_data.json to encrypt the administrator password.
 */
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** A parsed `ssh-rsa` key: its canonical text and its size. */
export interface SshRsaKey {
  /** `ssh-rsa <base64>`, without the comment. */
  readonly text: string;
  readonly bits: number;
  readonly key: KeyObject;
}

const SSH_RSA = /^ssh-rsa ([A-Za-z0-9+/]+={0,2})(?: [\x20-\x7e]{0,200})?$/;
export const MIN_RSA_BITS = 2048;
// The guest's ciphertext is as long as the modulus; in base64 it must fit the 1020 bytes.
export const MAX_RSA_BITS = 4096;

/** The key `text` holds, or `undefined` when it is not a usable OpenSSH `ssh-rsa` key. */
export function parseSshRsaKey(text: unknown): SshRsaKey | undefined {
  if (typeof text !== 'string') return undefined;
  const match = SSH_RSA.exec(text.trim());
  if (match?.[1] === undefined) return undefined;
  const blob = Buffer.from(match[1], 'base64');
  let offset = 0;
  const next = (): Buffer | undefined => {
    if (offset + 4 > blob.length) return undefined;
    const length = blob.readUInt32BE(offset);
    if (offset + 4 + length > blob.length) return undefined;
    const part = blob.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return part;
  };
  const type = next();
  const e = next();
  const n = next();
  if (type?.toString('latin1') !== 'ssh-rsa' || e === undefined || n === undefined || offset !== blob.length) return undefined;
  const modulus = stripSign(n);
  const bits = modulus.length * 8 - Math.clz32(modulus[0] ?? 0) + 24;
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) return undefined;
  try {
    const key = createPublicKey({
      key: { kty: 'RSA', n: modulus.toString('base64url'), e: stripSign(e).toString('base64url') },
      format: 'jwk',
    });
    return { text: `ssh-rsa ${match[1]}`, bits, key };
  } catch {
    return undefined;
  }
}

/** The OpenSSH text of an RSA public key. */
export function sshRsaText(publicKey: KeyObject, comment?: string): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA' || jwk.n === undefined || jwk.e === undefined) throw new TypeError('sshRsaText: not an RSA public key.');
  const blob = Buffer.concat([
    sshString(Buffer.from('ssh-rsa')),
    sshString(mpint(Buffer.from(jwk.e, 'base64url'))),
    sshString(mpint(Buffer.from(jwk.n, 'base64url'))),
  ]);
  return `ssh-rsa ${blob.toString('base64')}${comment === undefined ? '' : ` ${comment}`}`;
}

/** A new RSA key pair: the private key as PKCS#8 PEM, the public one as OpenSSH text. */
export function newRsaKeyPair(comment: string, bits = 2048): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: sshRsaText(publicKey, comment),
  };
}

function sshString(bytes: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

// An SSH mpint is signed: a leading 0 byte keeps a high first bit positive.
function mpint(bytes: Buffer): Buffer {
  const trimmed = stripSign(bytes);
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.alloc(1), trimmed]) : trimmed;
}

function stripSign(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}
