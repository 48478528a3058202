import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { asyncMiddleware } from '../internal/async';
import { problem } from '../internal/errors';
import { isPrincipalId, requestUser } from './identities';
import type { Principal, PrincipalResolver, UserPrincipal } from './identities';
import { assertFunction, assertKnownKeys, optionError } from '../internal/options';
import { noteSecurityFacts } from '../http/security-events';
import type { KeysEnum } from '../internal/options';
import { TOKEN_SOURCE } from '../internal/syntax';
import { requestSlot } from '../internal/request-slot';

/**
 * Who owns a resource: one principal, several (a server is owned by its user and is
 * itself the instance that may set its password), or nobody (`null`, `undefined` or an
 * empty list). An entry whose `id` is `null`, `undefined` or `''` is skipped, so a
 * nullable owner column never matches anyone.
 *
 * @example
 * const owner: OwnerReader<Server> = (server) => [
 *   { kind: 'user', id: server.userId },
 *   { kind: 'instance', id: server.uuid },
 * ];
 */
export type OwnerReader<R> = (resource: R) => Principal | readonly Principal[] | null | undefined;

/**
 * What {@link requireOwnership} let through, for the handlers after it: they need not
 * load the resource again.
 *
 * @example
 * const { principal, resource, via }: OwnedBy<UserPrincipal, Server> = guard.owned(req);
 */
export interface OwnedBy<P extends Principal = Principal, R = unknown> {
  readonly principal: P;
  readonly resource: R;
  /** `'owner'` when the caller owns the resource, `'allow'` when the `allow` option let it in. */
  readonly via: 'owner' | 'allow';
}

/**
 * Options of {@link requireOwnership}. `P` is the principal type, `R` the resource type;
 * both are inferred from `principal` and `load`.
 *
 * @example
 * const options: RequireOwnershipOptions<UserPrincipal<Account>, Server> = {
 *   load: (req) => servers.find(req.params.id),
 *   owner: 'userId',
 *   allow: (caller) => caller.user.roles.includes('admin'),
 * };
 */
export interface RequireOwnershipOptions<P extends Principal = UserPrincipal, R = unknown> {
  /**
   * Finds the caller, sync or async. Nothing → 401 with `WWW-Authenticate`; a throw or
   * a rejection → 500. Use {@link requestUser}, {@link signedInstanceIdentity}, both
   * (`(req) => instance(req) ?? user(req)`) or your own.
   * @default requestUser(): passport's `req.user`, its `id` field
   */
  readonly principal?: PrincipalResolver<P>;
  /**
   * Loads the resource the request names, sync or async; `undefined` or `null` when
   * there is none. Called only once the caller is identified, with that caller, so it
   * can scope its query. A throw or a rejection → 500. Required.
   */
  readonly load: (req: Request, principal: P) => R | null | undefined | Promise<R | null | undefined>;
  /**
   * Who owns a loaded resource: an {@link OwnerReader}, or the name of the resource's
   * field holding the owning user's id (read as `{ kind: 'user', id: resource[field] }`,
   * so only user principals can match it). Required.
   */
  readonly owner: (keyof R & string) | OwnerReader<R>;
  /**
   * Lets a caller in on a resource it does not own (an administrator, a support role),
   * sync or async. Only `true` lets in; any other value, truthy or not, does not.
   * Not called when the resource is missing or the caller owns it.
   * @default undefined: owners only
   */
  readonly allow?: (principal: P, resource: R) => boolean | Promise<boolean>;
  /**
   * The status for a missing resource and for someone else's: both get this one status
   * and the same body, so a caller cannot tell which ids exist. `403` says "not yours"
   * to callers who already know the id exists.
   * @default 404
   */
  readonly deniedStatus?: 403 | 404;
  /**
   * The `WWW-Authenticate` challenge of the 401 sent when no caller is identified
   * (RFC 9110 §11.6.1 requires one).
   * @default 'Bearer realm="api"'
   */
  readonly challenge?: string;
  /**
   * How a principal id is compared with an owner id. `'strict'` is `===`: the user `'2'`
   * (a JWT claim, a route parameter) does not own a row whose owner column holds `2`.
   * `'normalized'` compares a finite number as its shortest decimal string, so `2` and
   * `'2'` match while `'02'`, `'2.0'` and `' 2'` still do not; kinds still have to match.
   * @default 'strict'
   */
  readonly matchIds?: 'strict' | 'normalized';
}

const optionKeys: KeysEnum<RequireOwnershipOptions<Principal, unknown>> = {
  principal: true,
  load: true,
  owner: true,
  allow: true,
  deniedStatus: true,
  challenge: true,
  matchIds: true,
};

/**
 * The middleware {@link requireOwnership} returns, with `owned(req)`: what it let
 * through for `req`, typed from the options. `owned` throws when this guard did not let
 * `req` through, as only a miswired route calls it then.
 *
 * @example
 * const guard: OwnershipGuard<UserPrincipal, Server> = requireOwnership({ load, owner: 'userId' });
 * app.get('/servers/:id', guard, (req, res) => res.json(guard.owned(req).resource));
 */
export interface OwnershipGuard<P extends Principal = Principal, R = unknown> extends RequestHandler {
  owned(req: Request): OwnedBy<P, R>;
}

const lastOwned = requestSlot<OwnedBy>();

/**
 * What the last {@link requireOwnership} guard to pass on this request let through, or
 * `undefined`. The type arguments are not checked; prefer the guard's own
 * `guard.owned(req)`, which is typed from its options, when the guard is at hand.
 *
 * @example
 * const found = ownership<UserPrincipal, Server>(req);
 * if (found !== undefined) res.json({ id: found.resource.id });
 */
export function ownership<P extends Principal = Principal, R = unknown>(req: Request): OwnedBy<P, R> | undefined {
  return lastOwned.get(req) as OwnedBy<P, R> | undefined;
}

// An auth-scheme token, then parameters of visible ASCII: no CR/LF can reach the header.
const CHALLENGE = new RegExp(`^${TOKEN_SOURCE}(?: [\\x20-\\x7e]*)?$`);
const DENIED_DETAIL = 'The resource does not exist or the caller may not access it.';
const UNAUTHENTICATED_DETAIL = 'The request does not identify its caller.';

/**
 * Lets a request reach the route only when its caller is identified and owns the
 * resource the request names, or `allow` lets it in (finding 1: the reviewed handler
 * wrote the password of whatever instance id it was given). No caller → 401
 * `ownership.unauthenticated` with `WWW-Authenticate`; a missing resource and someone
 * else's → one status (404, or 403 by option) and one identical `ownership.denied` body.
 * Owner ids are compared with `===` (or `matchIds: 'normalized'`), kind and id both. A resolver or loader that throws
 * or rejects → 500, never a pass. Works on Express 4 and 5.
 *
 * @example
 * const guard = requireOwnership({
 *   principal: requestUser(),
 *   load: (req) => servers.find(req.params.id),
 *   owner: 'userId',
 *   allow: (caller) => caller.user.isAdmin === true,
 * });
 * app.post('/servers/:id/password', guard, (req, res) => { const server = guard.owned(req).resource; ... });
 */
export function requireOwnership<P extends Principal = UserPrincipal, R = unknown>(
  options: RequireOwnershipOptions<P, R>,
): OwnershipGuard<P, R> {
  assertKnownKeys('requireOwnership', options, optionKeys);
  assertFunction('requireOwnership', 'principal', options.principal);
  assertFunction('requireOwnership', 'allow', options.allow);
  if (typeof options.load !== 'function') {
    throw optionError(
      'requireOwnership',
      'load',
      'is required: a function (req, principal) returning the resource, or undefined when there is none.',
    );
  }
  const resolvePrincipal = (options.principal ?? requestUser()) as PrincipalResolver<P>;
  const load = options.load;
  const owners = ownerReader(options.owner);
  const allow = options.allow;
  const deniedStatus = resolveDeniedStatus(options.deniedStatus);
  const challenge = resolveChallenge(options.challenge);
  const sameId = resolveMatchIds(options.matchIds);
  const passed = requestSlot<OwnedBy<P, R>>();

  const guard = asyncMiddleware('requireOwnership', async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    const principal = checkedPrincipal(await resolvePrincipal(req));
    if (principal === undefined) {
      next(problem(401, 'ownership.unauthenticated', UNAUTHENTICATED_DETAIL, { headers: { 'WWW-Authenticate': challenge } }));
      return;
    }
    const resource = await load(req, principal);
    noteSecurityFacts(req, { principal, exists: resource !== undefined && resource !== null });
    let via: OwnedBy['via'];
    if (resource === undefined || resource === null) {
      next(problem(deniedStatus, 'ownership.denied', DENIED_DETAIL));
      return;
    } else if (isOwner(principal, owners(resource), sameId)) {
      via = 'owner';
    } else if (allow !== undefined && (await allow(principal, resource)) === true) {
      via = 'allow';
    } else {
      next(problem(deniedStatus, 'ownership.denied', DENIED_DETAIL));
      return;
    }
    const owned: OwnedBy<P, R> = { principal, resource, via };
    passed.set(req, owned);
    lastOwned.set(req, owned);
    next();
  });

  return Object.assign(guard, {
    owned(req: Request): OwnedBy<P, R> {
      const owned = passed.get(req);
      if (owned === undefined) {
        throw new Error(
          'requireOwnership: owned(req) was called on a request this guard did not let through; mount the guard before the handler.',
        );
      }
      return owned;
    },
  });
}

function checkedPrincipal<P extends Principal>(value: P | null | undefined): P | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || !isKind(value.kind) || !isPrincipalId(value.id)) {
    // Said to the log only, and without the value: it may hold a token.
    throw new TypeError('requireOwnership: the principal resolver returned something other than { kind, id } or nothing.');
  }
  return value;
}

type SameId = (a: Principal['id'], b: Principal['id']) => boolean;

const strictId: SameId = (a, b) => a === b;
// String(n) of a finite number is its shortest round-trip form: 2 → "2", 1e21 → "1e+21".
const normalizedId: SameId = (a, b) => String(a) === String(b);

function resolveMatchIds(value: unknown): SameId {
  if (value === undefined || value === 'strict') return strictId;
  if (value === 'normalized') return normalizedId;
  throw optionError(
    'requireOwnership',
    'matchIds',
    `must be 'strict' or 'normalized', got ${JSON.stringify(value) ?? typeof value}.`,
  );
}

function isOwner(principal: Principal, owners: unknown, sameId: SameId): boolean {
  if (owners === undefined || owners === null) return false;
  const list: readonly unknown[] = Array.isArray(owners) ? owners : [owners];
  let match = false;
  for (const owner of list) {
    if (typeof owner !== 'object' || owner === null || !isKind((owner as Principal).kind)) {
      throw new TypeError(
        'requireOwnership: the owner reader returned something other than { kind, id }, a list of them, or nothing.',
      );
    }
    const { kind, id } = owner as Principal;
    if (id === undefined || id === null || id === '') continue;
    if (!isPrincipalId(id)) {
      // An ObjectId or a Date never equals a principal id under ===: say so rather than
      // refuse every owner in silence.
      throw new TypeError('requireOwnership: an owner id is neither a string nor a finite number.');
    }
    if (kind === principal.kind && sameId(id, principal.id)) match = true;
  }
  return match;
}

function isKind(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function ownerReader<R>(owner: unknown): OwnerReader<R> {
  if (typeof owner === 'function') return owner as OwnerReader<R>;
  if (typeof owner === 'string' && owner.length > 0) {
    return (resource) => {
      if (typeof resource !== 'object' || resource === null) {
        throw new TypeError(`requireOwnership: the loaded resource is not an object, so it has no "${owner}" field.`);
      }
      const id = (resource as Record<string, unknown>)[owner];
      return { kind: 'user', id: id as Principal['id'] };
    };
  }
  throw optionError(
    'requireOwnership',
    'owner',
    "is required: a function (resource) returning its owner { kind, id }, or the name of the field holding the owning user's id.",
  );
}

function resolveDeniedStatus(value: unknown): 403 | 404 {
  if (value === undefined) return 404;
  if (value !== 403 && value !== 404) {
    throw optionError('requireOwnership', 'deniedStatus', `must be 404 or 403, got ${JSON.stringify(value) ?? typeof value}.`);
  }
  return value;
}

function resolveChallenge(value: unknown): string {
  if (value === undefined) return 'Bearer realm="api"';
  if (typeof value !== 'string' || !CHALLENGE.test(value)) {
    throw optionError('requireOwnership', 'challenge', 'must be a WWW-Authenticate challenge, such as \'Bearer realm="api"\'.');
  }
  return value;
}
