import type { ErrorRequestHandler, IRouter, Request, RequestHandler } from 'express';
import { asyncMiddleware } from '../internal/async';
import { problem } from '../internal/errors';
import { hashAndStore } from '../hashing/hash-and-store';
import { callerKey } from '../hashing/hash-limiter';
import type { HashLimiter } from '../hashing/hash-limiter';
import { resolveLegacy } from '../hashing/legacy-schemes';
import type { LegacyScheme } from '../hashing/legacy-schemes';
import { methodGuard } from '../http/method-guard';
import type { MethodGuardOptions } from '../http/method-guard';
import { assertBoolean, assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { requireOwnership } from '../access/ownership';
import type { RequireOwnershipOptions } from '../access/ownership';
import { passwordBody } from '../body/password-body';
import type { PasswordBodyOptions } from '../body/password-body';
import { emitQueryWarning } from '../body/password-query';
import type { PasswordContextWords } from '../body/password-rules';
import { recordVerified, resolveVerify, verifyWith } from '../hashing/verify-password';
import { problemHandler } from '../http/problem-handler';
import type { ProblemHandlerOptions } from '../http/problem-handler';
import { noBody } from '../body/no-body';
import { readRecordId, requireRecordId, resolveIdReader } from '../access/record-id';
import type { RecordIdReader } from '../access/record-id';
import { validatedPassword, clearValidatedPassword } from '../body/validated-password';
import { responseEncoder } from '../http/response-encoder';
import { markSecret } from '../internal/secrets';
import { reportSecurityEvent } from '../http/security-events';
import type { ResponseEncoderOptions } from '../http/response-encoder';
import { assertStore, checkedRecord } from '../stores/store';
import type { PasswordStore } from '../stores/store';
import type { Principal, UserPrincipal } from '../access/identities';

/**
 * The hashing settings the set and verify routes share.
 *
 * @example
 * const hashing: PasswordRoutesHashing = { cost: 13, pepper: process.env.PASSWORD_PEPPER };
 */
export interface PasswordRoutesHashing {
  /** bcrypt cost, 10 to 31. @default 12 */
  readonly cost?: number;
  /**
   * Server-side key (32 bytes or more) for the HMAC-SHA-256 pre-hash; needed for
   * secrets longer than bcrypt's 72 bytes. @default undefined (no pre-hash)
   */
  readonly pepper?: string | Uint8Array;
  /** Caps concurrent and queued hashes. @default defaultHashLimiter() */
  readonly limiter?: HashLimiter;
  /**
   * Your own legacy schemes for the verify route; the built-in plain, MD5, SHA-1 and
   * SHA-256 records are always checked, and upgraded to bcrypt when they match.
   * @default []
   */
  readonly legacy?: readonly LegacyScheme[];
}

/**
 * What `GET` on the password route answers: the password's state, never the password
 * or its hash (a hashed password cannot be handed back, and should not be).
 *
 * @example
 * const state: PasswordState = { passwordSet: true, setAt: '2026-11-28T18:04:34.000Z', algorithm: 'bcrypt' };
 */
export type PasswordState =
  | { readonly passwordSet: false }
  | { readonly passwordSet: true; readonly setAt: string; readonly algorithm: string };

/**
 * Options of {@link passwordRoutes}. Each nested object is the options of the piece it
 * configures, so everything documented there applies here.
 *
 * @example
 * const options: PasswordRoutesOptions<UserPrincipal<Account>, Server> = {
 *   store: new SqliteStore({ filename: 'data/passwords.db' }),
 *   ownership: { load: (req) => servers.get(req.params.id), owner: 'ownerId' },
 * };
 */
export interface PasswordRoutesOptions<P extends Principal = UserPrincipal, R = unknown> {
  /** Where hashes are kept. Required. */
  readonly store: PasswordStore;
  /**
   * The route's path. The verify route is this path plus `/verify`.
   * @default '/servers/:id/password'
   */
  readonly path?: string;
  /**
   * Finds the record id from the request; runs after the ownership check, so it may use
   * `ownership(req)` (the metadata-service form keys records by the signed instance).
   * @default the `id` of the resource `requireOwnership` loaded, else `req.params.id`
   */
  readonly id?: RecordIdReader;
  /** Who may use the route: {@link requireOwnership}'s options. Required. */
  readonly ownership: RequireOwnershipOptions<P, R>;
  /**
   * How a new password is read and which content rules it must pass:
   * {@link passwordBody}'s options. The verify route reads its candidate with the same
   * `from`, `field`, `query`, `limit`, `normalization`, `readTimeout`, `drainBytes` and
   * `drainMs`, without the content rules.
   * @default {} plus `context` = the record id and the caller's id, unless you set one
   */
  readonly body?: PasswordBodyOptions;
  /** bcrypt cost, pepper and limiter, shared by setting and verifying. @default {} */
  readonly hashing?: PasswordRoutesHashing;
  /**
   * Mount `POST <path>/verify`, answering `{ "match": true | false }`. It reads the
   * candidate from `body.from` when set, else from a JSON body only.
   * @default true
   */
  readonly verify?: boolean;
  /**
   * Allow `DELETE <path>`, which clears the password (204 whether or not one was set).
   * @default true
   */
  readonly remove?: boolean;
  /**
   * Extra middlewares run on the verify route after the ownership check and before the
   * body is read: a guess limiter such as `guessLimit()` belongs here.
   * @default []
   */
  readonly beforeVerify?: readonly RequestHandler[];
  /**
   * Middlewares run on the set route after the ownership check and before the body is
   * read: a rate limit (`guessLimit({ limit: 10 })`), so that one caller looping set and
   * delete cannot keep the hash pool busy.
   * @default []
   */
  readonly beforeSet?: readonly RequestHandler[];
  /**
   * Middlewares run on the delete route after the ownership check: the same rate limit
   * as `beforeSet`, since a delete is what makes the next set possible.
   * @default []
   */
  readonly beforeDelete?: readonly RequestHandler[];
  /** {@link responseEncoder}'s options, or `false` when the app already encodes. @default {} */
  readonly encoder?: ResponseEncoderOptions | false;
  /**
   * {@link problemHandler}'s options for errors of these routes, or `false` to let them
   * reach the app's own error handler.
   * @default {}
   */
  readonly errors?: ProblemHandlerOptions | false;
  /** {@link methodGuard}'s options. @default {} */
  readonly methods?: MethodGuardOptions;
}

const optionKeys: KeysEnum<PasswordRoutesOptions<Principal, unknown>> = {
  store: true,
  path: true,
  id: true,
  ownership: true,
  body: true,
  hashing: true,
  verify: true,
  remove: true,
  beforeVerify: true,
  beforeSet: true,
  beforeDelete: true,
  encoder: true,
  errors: true,
  methods: true,
};

const hashingKeys: KeysEnum<PasswordRoutesHashing> = { cost: true, pepper: true, limiter: true, legacy: true };

// The verify route reads a candidate, not a new password: any length up to the limit and
// no content rule, or a wrong guess would get a 422 that tells what the password is not.
const VERIFY_RULES = { minLength: 1, commonPasswords: false, composition: false } as const;
const DEFAULT_LIMIT = 1020;

/**
 * Which of `body`'s options the verify route reads its candidate with too. Every option
 * of passwordBody must be listed, so a new one does not compile until it is sorted here:
 * `true` for where and how a password is read, `false` for what only setting needs.
 */
const SHARED_WITH_VERIFY: { readonly [K in keyof Required<PasswordBodyOptions>]: boolean } = {
  field: true,
  from: true,
  query: true,
  limit: true,
  normalization: true,
  readTimeout: true,
  drainBytes: true,
  drainMs: true,
  // Content rules: a wrong guess must not get a 422 that tells what the password is not.
  minLength: false,
  maxLength: false,
  maxBytes: false,
  composition: false,
  commonPasswords: false,
  context: false,
  minScore: false,
  // The verify route sets its own rules, takes POST only, and hands the candidate to the
  // built-in verifier, never back to a handler through req.body.
  purpose: false,
  methods: false,
  handOff: false,
  // Fields and headers of the set route's clients; the verify route is this package's own.
  repeat: false,
  secretFields: false,
  anyContentType: false,
};

/** The options of the verify route's passwordBody(), derived from the set route's. */
function verifyBodyOptions(body: PasswordBodyOptions): PasswordBodyOptions {
  const shared = Object.fromEntries(
    Object.entries(body).filter(([key]) => SHARED_WITH_VERIFY[key as keyof PasswordBodyOptions] === true),
  ) as PasswordBodyOptions;
  return {
    ...shared,
    from: shared.from ?? ['json'],
    ...VERIFY_RULES,
    maxLength: shared.limit ?? DEFAULT_LIMIT,
  };
}

/**
 * Installs the whole retrofit on `router` (an app or a `Router`, Express 4 or 5), in
 * the order the pieces must run: response encoder, method guard, ownership, body reader
 * and validator, hashing storer or verifier, and the problem handler.
 *
 * - `GET <path>` → 200 {@link PasswordState}.
 * - `POST <path>` with `{"password": …}` or a `text/plain` body (or where `body.from`
 *   says) → 204; 409 if one is set.
 * - `DELETE <path>` → 204 (unless `remove: false`).
 * - `POST <path>/verify` with `{"password": …}` (or where `body.from` says) → 200
 *   `{ "match": boolean }` (unless `verify: false`).
 * - any other method → 405 with `Allow`.
 *
 * Every piece stays exported on its own for routes that need another order. Returns `router`.
 *
 * @example
 * const store = new SqliteStore({ filename: 'data/passwords.db' });
 * passwordRoutes(app, {
 *   store,
 *   ownership: { load: (req) => servers.get(req.params.id), owner: 'ownerId' },
 * });
 */
export function passwordRoutes<T extends Pick<IRouter, 'route'>, P extends Principal = UserPrincipal, R = unknown>(
  router: T,
  options: PasswordRoutesOptions<P, R>,
): T {
  assertKnownKeys('passwordRoutes', options, optionKeys);
  if (typeof router !== 'object' && typeof router !== 'function') {
    throw new TypeError('passwordRoutes: the first argument must be an Express app or Router.');
  }
  const { store } = options;
  assertStore('passwordRoutes', 'store', store);
  const path = options.path ?? '/servers/:id/password';
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw optionError('passwordRoutes', 'path', 'must be a string starting with "/".');
  }
  const readId = resolveIdReader('passwordRoutes', options.id);
  if (typeof options.ownership !== 'object' || options.ownership === null) {
    throw optionError(
      'passwordRoutes',
      'ownership',
      'is required: the options of requireOwnership ({ principal, load, owner, allow }).',
    );
  }
  const hashing = options.hashing ?? {};
  assertKnownKeys('passwordRoutes: option "hashing"', hashing, hashingKeys);
  assertBoolean('passwordRoutes', 'verify', options.verify);
  assertBoolean('passwordRoutes', 'remove', options.remove);
  const middlewares = (option: 'beforeVerify' | 'beforeSet' | 'beforeDelete'): readonly RequestHandler[] => {
    const value: unknown = options[option] ?? [];
    if (!Array.isArray(value) || value.some((m) => typeof m !== 'function')) {
      throw optionError('passwordRoutes', option, 'must be an array of middleware functions.');
    }
    return value as readonly RequestHandler[];
  };
  const beforeVerify = middlewares('beforeVerify');
  const beforeSet = middlewares('beforeSet');
  const beforeDelete = middlewares('beforeDelete');

  const guard = requireOwnership(options.ownership);
  const recordId = (req: Request): string => requireRecordId(req, readId, 'password', 'passwordRoutes');
  const routes = options.verify === false ? path : `${path} and ${path.replace(/\/+$/, '')}/verify`;
  const bodyOptions = withOneQueryWarning(options.body ?? {}, routes);
  const setBody = passwordBody({
    ...bodyOptions,
    context:
      bodyOptions.context ??
      ((req: Request): PasswordContextWords => [readRecordId(req, readId), String(guard.owned(req).principal.id)]),
  });
  // Checked here so that a bad scheme fails at start-up, not at the first verify.
  resolveLegacy('passwordRoutes', hashing.legacy);
  const { legacy: _legacy, ...storing } = hashing;
  const store_ = hashAndStore({ store, id: readId, ...storing });
  const encoder = options.encoder === false ? [] : [responseEncoder(options.encoder ?? {})];
  const errors: ErrorRequestHandler[] = options.errors === false ? [] : [problemHandler(options.errors ?? {})];
  const methods = options.methods ?? {};

  const main = router.route(path);
  const mainMethods = options.remove === false ? ['GET', 'POST'] : ['GET', 'POST', 'DELETE'];
  main.all(...encoder, methodGuard(mainMethods, methods), guard);
  // GET and DELETE take no body: one still arriving is refused, not read whole.
  const bodyless = noBody();
  main.get(
    bodyless,
    asyncMiddleware('passwordState', async (req, res) => {
      const record = checkedRecord(await store.get(recordId(req)));
      const state: PasswordState =
        record === undefined ? { passwordSet: false } : { passwordSet: true, setAt: record.setAt, algorithm: record.scheme };
      res.json(state);
    }),
  );
  main.post(...beforeSet, setBody, store_, (_req, res) => {
    res.status(204).end();
  });
  if (options.remove !== false) {
    main.delete(
      ...beforeDelete,
      bodyless,
      asyncMiddleware('passwordDelete', async (req, res) => {
        const id = recordId(req);
        await store.delete(id);
        reportSecurityEvent(req, 'authn_password_change', { resource: id, action: 'clear' });
        res.status(204).end();
      }),
    );
  }
  if (errors.length > 0) main.all(...errors);

  if (options.verify !== false) {
    const verifyConfig = resolveVerify('passwordRoutes', hashing);
    const verifyBody = passwordBody(verifyBodyOptions(bodyOptions));
    const verify = router.route(`${path.replace(/\/+$/, '')}/verify`);
    verify.all(...encoder, methodGuard(['POST'], methods), guard);
    verify.post(
      ...beforeVerify,
      verifyBody,
      asyncMiddleware('passwordVerify', async (req, res) => {
        const candidate = validatedPassword(req);
        clearValidatedPassword(req);
        if (candidate === undefined) {
          throw problem(500, 'password.misconfigured', 'The verify route is misconfigured: no password reached it.');
        }
        const id = recordId(req);
        const { match, rehashed } = await verifyWith(
          verifyConfig,
          store,
          id,
          candidate,
          (value) => markSecret(req, value),
          callerKey(req),
        );
        // Lets a guess limiter give back the attempts of callers who knew the password.
        if (match) recordVerified(req, { id, rehashed });
        reportSecurityEvent(req, match ? 'authn_login_success' : 'authn_login_fail', {
          resource: id,
          action: 'verify',
          ...(match ? { rehashed } : {}),
        });
        res.json({ match });
      }),
    );
    if (errors.length > 0) verify.all(...errors);
  }
  return router;
}

/**
 * `body` with its query warning written once for both routes, naming the path: the set
 * and verify routes each build a passwordBody() that reads the query.
 */
function withOneQueryWarning(body: PasswordBodyOptions, routes: string): PasswordBodyOptions {
  const from: unknown = body.from;
  const readsQuery = from === 'query' || (Array.isArray(from) && from.includes('query'));
  const query: unknown = body.query ?? {};
  if (!readsQuery || typeof query !== 'object' || query === null) return body;
  const warn: unknown = (query as { warn?: unknown }).warn ?? emitQueryWarning;
  // Left as it is, so passwordBody() names the bad option.
  if (typeof warn !== 'function') return body;
  let warned = false;
  const once = (message: string): void => {
    if (warned) return;
    warned = true;
    (warn as (message: string) => void)(`${message} Routes: ${routes}.`);
  };
  return { ...body, query: { ...query, warn: once } };
}
