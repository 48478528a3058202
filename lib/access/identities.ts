import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { parsePath, readPath } from '../internal/object-path';
import { noteSecurityFacts } from '../http/security-events';
import { TOKEN, visibleAscii } from '../internal/syntax';

/**
 * The id a principal or an owner is known by. Ids are compared with `===`: `'1'` is not
 * `1`, and `'Alice'` is not `'alice'`.
 *
 * @example
 * const id: PrincipalId = 'u-42';
 */
export type PrincipalId = string | number;

/**
 * Who is asking, or who owns a resource, tagged by `kind`. Two principals are the same
 * only when both `kind` and `id` are: the instance `srv-1` is never the user `srv-1`,
 * so a route that accepts both kinds of caller cannot mistake one for the other.
 * An `id` must be a non-empty string or a finite number.
 *
 * @example
 * const caller: Principal = { kind: 'user', id: 'u-42' };
 */
export interface Principal {
  readonly kind: string;
  readonly id: PrincipalId;
}

/**
 * A user that the application's own authentication left on the request, as
 * {@link requestUser} returns it; `user` is that object, for `allow` checks on roles.
 *
 * @example
 * const alice: UserPrincipal<{ roles: string[] }> = { kind: 'user', id: 'alice', user: { roles: [] } };
 */
export interface UserPrincipal<U = unknown> extends Principal {
  readonly kind: 'user';
  readonly user: U;
}

/**
 * A cloud instance that proved who it is with a signed `X-Instance-ID`, as
 * {@link signedInstanceIdentity} returns it.
 *
 * @example
 * const instance: InstancePrincipal = { kind: 'instance', id: 'a1b2c3d4-0000-4000-8000-000000000001' };
 */
export interface InstancePrincipal extends Principal {
  readonly kind: 'instance';
  readonly id: string;
}

/**
 * Finds the caller of a request; nothing (`undefined` or `null`) means the caller is not
 * identified. Throwing or rejecting is a server fault (a 500), not a refusal.
 *
 * @example
 * const apiKey: PrincipalResolver = (req) =>
 *   req.get('X-Api-Key') === process.env.API_KEY ? { kind: 'service', id: 'billing' } : undefined;
 */
export type PrincipalResolver<P extends Principal = Principal> = (
  req: Request,
) => P | null | undefined | Promise<P | null | undefined>;

/** True for a string or number id that can match something under `===`. */
export function isPrincipalId(value: unknown): value is PrincipalId {
  return (typeof value === 'string' && value.length > 0) || (typeof value === 'number' && Number.isFinite(value));
}

/**
 * Options of {@link requestUser}.
 *
 * @example
 * const options: RequestUserOptions = { property: 'auth', idField: 'sub' };
 */
export interface RequestUserOptions {
  /**
   * Where your authentication left the signed-in user: a property of `req` or a dotted
   * path below it (passport's `req.user`, `'auth'` for express-jwt's `req.auth`), or a
   * function that finds it
   * for a request, for an app that keeps it elsewhere (a token map, a session store).
   * A path is checked at start-up; the function must be synchronous, and a throw is a 500.
   * @default 'user'
   */
  readonly property?: string | ((req: Request) => unknown);
  /**
   * The field of that user object holding its id (a non-empty string or a number), or a
   * dotted path into it such as `'data.id'` for a JWT whose claims nest the user.
   * @default 'id'
   */
  readonly idField?: string;
}

const requestUserKeys: KeysEnum<RequestUserOptions> = { property: true, idField: true };

/**
 * A principal resolver for a user that authentication middleware already put on the
 * request (passport's `req.user` by default). `undefined`, `null` or `false` there means
 * no one is signed in. A user object without a usable id is a wiring fault, so the
 * resolver throws (a 500) rather than refuse every caller in silence. `U` is not
 * checked: it is what your authentication middleware stores.
 *
 * @example
 * requireOwnership({ principal: requestUser<Account>({ idField: 'accountId' }), load, owner: 'ownerId' });
 * // A JWT the app verifies itself, with its claims as { data: { id: 2 } }:
 * requestUser({ property: (req) => tokens.get(bearer(req)), idField: 'data.id' });
 */
export function requestUser<U = unknown>(options: RequestUserOptions = {}): (req: Request) => UserPrincipal<U> | undefined {
  assertKnownKeys('requestUser', options, requestUserKeys);
  const property = options.property === undefined ? 'user' : options.property;
  const findUser: (req: Request) => unknown =
    typeof property === 'function' ? property : pathReader(parsePath('requestUser', 'property', property));
  const where = typeof property === 'function' ? 'the user the "property" function found' : `req.${property}`;
  const idField = options.idField === undefined ? 'id' : options.idField;
  const idPath = parsePath('requestUser', 'idField', idField);

  const principalOf = (user: unknown): UserPrincipal<U> | undefined => {
    if (user === undefined || user === null || user === false) return undefined;
    if (typeof user !== 'object') {
      throw new TypeError(`requestUser: ${where} is set but is not an object.`);
    }
    const id = readPath(user, idPath);
    if (!isPrincipalId(id)) {
      throw new TypeError(
        `requestUser: ${where}.${idField} is not a non-empty string or a finite number; set the "idField" option.`,
      );
    }
    return { kind: 'user', id, user: user as U };
  };

  return function requestUser(req: Request): UserPrincipal<U> | undefined {
    const user = findUser(req);
    if (user instanceof Promise) {
      // Callers such as passwordRoutes' context read the principal synchronously.
      throw new TypeError('requestUser: the "property" function returned a promise; it must return the user itself.');
    }
    return principalOf(user);
  };
}

function pathReader(segments: readonly string[]): (req: Request) => unknown {
  return (req) => readPath(req, segments);
}

/**
 * Options of {@link signedInstanceIdentity}.
 *
 * @example
 * const options: SignedInstanceIdentityOptions = { secret: process.env.METADATA_PROXY_SHARED_SECRET ?? '' };
 */
export interface SignedInstanceIdentityOptions {
  /**
   * The secret shared with the proxy that signs instance ids (Nova's
   * `metadata_proxy_shared_secret`). Required and non-empty; use 32 random bytes or more.
   */
  readonly secret: string | Uint8Array;
  /**
   * The header naming the instance.
   * @default 'X-Instance-ID'
   */
  readonly idHeader?: string;
  /**
   * The header holding the lower-case hex HMAC-SHA256 of the instance id.
   * @default 'X-Instance-ID-Signature'
   */
  readonly signatureHeader?: string;
}

const signedInstanceKeys: KeysEnum<SignedInstanceIdentityOptions> = {
  secret: true,
  idHeader: true,
  signatureHeader: true,
};

// Visible ASCII only: Nova signs the UTF-8 bytes of the id while Node reads header bytes
// as Latin-1, so any other byte would make the two sides sign different strings.
const INSTANCE_ID = visibleAscii(255);
// Lower-case only, as Nova's hexdigest() compare: one spelling per signature. Checked
// before decoding because Buffer.from(hex) silently stops at the first non-hex character.
const SIGNATURE = /^[0-9a-f]{64}$/;

/**
 * A principal resolver for the scheme the OpenStack metadata service trusts: the caller
 * is the instance named in `X-Instance-ID` only when `X-Instance-ID-Signature` is the
 * lower-case hex HMAC-SHA256 of that id under the shared secret. The signature is
 * compared in constant time (`crypto.timingSafeEqual`) once its format and length are
 * checked. The secret and the expected signature are never logged nor put in an error. A missing, malformed, upper-case
 * or wrong signature, or a missing or malformed id, gives no principal (a 401 from
 * {@link requireOwnership}); nothing about why is told to the caller.
 *
 * @example
 * const instance = signedInstanceIdentity({ secret: process.env.METADATA_PROXY_SHARED_SECRET ?? '' });
 * app.post('/servers/:id/password', requireOwnership({ principal: instance, load, owner }), handler);
 */
export function signedInstanceIdentity(options: SignedInstanceIdentityOptions): (req: Request) => InstancePrincipal | undefined {
  assertKnownKeys('signedInstanceIdentity', options, signedInstanceKeys);
  const key = secretBytes(options.secret);
  const idHeader = headerName('idHeader', options.idHeader, 'X-Instance-ID');
  const signatureHeader = headerName('signatureHeader', options.signatureHeader, 'X-Instance-ID-Signature');
  if (idHeader === signatureHeader) {
    throw optionError('signedInstanceIdentity', 'signatureHeader', 'must differ from "idHeader".');
  }

  return function signedInstanceIdentity(req: Request): InstancePrincipal | undefined {
    const id = req.headers[idHeader];
    const signature = req.headers[signatureHeader];
    if (typeof id !== 'string' || !INSTANCE_ID.test(id)) return undefined;
    noteSecurityFacts(req, { claimed: { kind: 'instance', id } });
    if (typeof signature !== 'string' || !SIGNATURE.test(signature)) return undefined;
    const expected = createHmac('sha256', key).update(id, 'utf8').digest();
    const given = Buffer.from(signature, 'hex');
    // SIGNATURE already implies 32 bytes; checked again because timingSafeEqual throws
    // on unequal lengths, and a throw here would be a 500 instead of a refusal.
    if (given.length !== expected.length || !timingSafeEqual(expected, given)) return undefined;
    // Nothing derived from the key goes into the principal: handlers and logs see the id only.
    return { kind: 'instance', id };
  };
}

function secretBytes(secret: unknown): Buffer {
  if (secret === undefined) {
    throw optionError('signedInstanceIdentity', 'secret', 'is required: the secret shared with the signing proxy.');
  }
  // Copied, so a caller that later reuses or zeroes its buffer does not change the key.
  let bytes: Buffer;
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8');
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  else throw optionError('signedInstanceIdentity', 'secret', `must be a string or a Uint8Array, got ${typeof secret}.`);
  if (bytes.length === 0) {
    // An empty key is a key everyone knows: every id could be signed by anyone.
    throw optionError('signedInstanceIdentity', 'secret', 'must not be empty.');
  }
  return bytes;
}

function headerName(option: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback.toLowerCase();
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw optionError('signedInstanceIdentity', option, 'must be an HTTP header name, such as "X-Instance-ID".');
  }
  return value.toLowerCase();
}
