import { createHmac } from 'node:crypto';

/**
 * The `X-Instance-ID-Signature` of instance `id`: HMAC-SHA256 under the metadata
 * secret, in lower-case hex, as Nova and the neutron metadata agent sign it.
 */
export function sign(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id, 'utf8').digest('hex');
}
