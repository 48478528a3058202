import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Store } from 'express-rate-limit';
import { problem } from '../internal/errors';
import { assertBoolean, assertFunction, assertKnownKeys, missingMethods, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { ownership } from './ownership';
import { verifiedPassword } from '../hashing/verify-password';
import { readRecordId, resolveIdReader } from './record-id';
import { noteSecurityFacts } from '../http/security-events';
import type { RecordIdReader } from './record-id';

/**
 * Where {@link guessLimit} counts attempts: any `express-rate-limit` store. Its own
 * `MemoryStore` counts in this process only; `rate-limit-redis`'s `RedisStore` shares
 * the count between every process on one Redis.
 *
 * @example
 * import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
 * import type { RedisReply } from 'rate-limit-redis';
 * await redis.connect(); // first: the store loads its scripts when the limiter is made
 * const store: GuessLimitStore = new RateLimitRedisStore({
 *   sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
 *   prefix: 'epg:guess:',
 * });
 */
export type GuessLimitStore = Store;

/**
 * Options of {@link guessLimit}.
 *
 * @example
 * const options: GuessLimitOptions = { limit: 5, windowMs: 60_000, store };
 */
export interface GuessLimitOptions {
  /**
   * Attempts allowed per key (a caller on one target) in each window; the next one gets
   * a 429. Enough for a user who mistypes twice, too few to guess online.
   * @default 5
   */
  readonly limit?: number;
  /**
   * Length of the window in milliseconds, from the key's first attempt (a fixed window:
   * attempts refused in it do not extend it). At least 1000, as `Retry-After` and the
   * `RateLimit` headers count whole seconds.
   * @default 60_000 (one minute)
   */
  readonly windowMs?: number;
  /**
   * Finds the id of the record being guessed at, the second half of the default key.
   * A request it finds none for is keyed by its caller alone (one budget for all its
   * targets), never left unlimited.
   * @default the `id` of the resource `requireOwnership` loaded, else `req.params.id`
   */
  readonly id?: RecordIdReader;
  /**
   * Replaces the default key: the caller that `requireOwnership` let through (kind and
   * id) with the target id, or, when no ownership guard ran before the limiter, the
   * client IP (IPv6 by /56 subnet; set Express's `trust proxy` behind a proxy) with the
   * target id. Requests with equal keys share one budget. Must return a non-empty
   * string; anything else is a 500.
   * @default undefined: the key above
   */
  readonly key?: (req: Request) => string | Promise<string>;
  /**
   * Where attempts are counted. Give each limiter its own store object (with
   * `rate-limit-redis`, and a prefix of its own if the limiters guard different routes).
   * A store that fails makes the request a 500, never a pass. `rate-limit-redis` loads
   * its scripts when the limiter is made, and never again if that fails: make it once
   * the Redis client is connected.
   * @default a new express-rate-limit MemoryStore: this process only
   */
  readonly store?: GuessLimitStore;
  /**
   * Which IETF draft the `RateLimit` headers follow: `'draft-8'` sends `RateLimit` and
   * `RateLimit-Policy` with a named policy (`"5-in-1min"; r=4; t=60`), `'draft-7'` the
   * combined `RateLimit: limit=5, remaining=4, reset=60`. Both send `RateLimit-Policy`,
   * and `Retry-After` on a 429. The legacy `X-RateLimit-*` headers are never sent.
   * @default 'draft-8'
   */
  readonly standardHeaders?: 'draft-7' | 'draft-8';
  /**
   * Also count verifies that matched. By default an attempt is counted when it starts
   * and given back when its response finishes with `verifiedPassword(req)` set, that is
   * when `passwordVerifier` or the verify route of `passwordRoutes` confirmed the
   * password; so only failed guesses use the budget. A route that never sets it (a
   * handler calling `verifyPassword` itself) counts every attempt, whatever its status.
   * @default false
   */
  readonly countMatches?: boolean;
}

const optionKeys: KeysEnum<GuessLimitOptions> = {
  limit: true,
  windowMs: true,
  id: true,
  key: true,
  store: true,
  standardHeaders: true,
  countMatches: true,
};

const MAX_WINDOW_MS = 2 ** 31 - 1;
const usedStores = new WeakSet<object>();

/**
 * Limits password guesses on a verify route (the one place a guesser learns anything),
 * with `express-rate-limit`: each caller gets `limit` attempts per target per window,
 * counted in memory or, with a shared `store`, across every process. Past the budget:
 * 429 `password.too_many_attempts` through `next(err)`, so the problem handler writes
 * the `application/problem+json` body, with `Retry-After` and the standard `RateLimit`
 * headers, and nothing after the limiter runs (no body is read, no hash compared).
 * Mount it after the ownership check, so the budget is keyed by the caller rather than
 * its IP, and before the body reader: in `passwordRoutes`, as `beforeVerify`.
 *
 * @example
 * passwordRoutes(app, { store, ownership, beforeVerify: [guessLimit()] });
 * // or, on routes of your own, shared by every process through Redis:
 * import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
 * const limiter = guessLimit({
 *   limit: 5,
 *   windowMs: 60_000,
 *   store: new RateLimitRedisStore({
 *     sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
 *     prefix: 'epg:guess:',
 *   }),
 * });
 * app.post('/servers/:id/password/verify', guard, limiter, passwordBody(), passwordVerifier({ store }), ok);
 */
export function guessLimit(options: GuessLimitOptions = {}): RequestHandler {
  assertKnownKeys('guessLimit', options, optionKeys);
  const limit = integerOption('guessLimit', 'limit', options.limit, 1, undefined, { unit: 'attempts' }) ?? 5;
  const windowMs =
    integerOption('guessLimit', 'windowMs', options.windowMs, 1000, MAX_WINDOW_MS, { unit: 'milliseconds' }) ?? 60_000;
  const standardHeaders = options.standardHeaders ?? 'draft-8';
  if (standardHeaders !== 'draft-7' && standardHeaders !== 'draft-8') {
    throw optionError(
      'guessLimit',
      'standardHeaders',
      `must be 'draft-7' or 'draft-8', got ${JSON.stringify(standardHeaders) ?? typeof standardHeaders}.`,
    );
  }
  assertBoolean('guessLimit', 'countMatches', options.countMatches);
  assertFunction('guessLimit', 'key', options.key);
  if (options.key !== undefined && options.id !== undefined) {
    throw optionError('guessLimit', 'id', 'cannot be given with "key": a key option decides the whole key.');
  }
  const readId = resolveIdReader('guessLimit', options.id);
  const store = checkedStore(options.store);
  const keyOf = options.key ?? defaultKey(readId);

  const limiter = rateLimit({
    limit,
    windowMs,
    standardHeaders,
    legacyHeaders: false,
    passOnStoreError: false,
    skipSuccessfulRequests: options.countMatches !== true,
    requestWasSuccessful: (req) => verifiedPassword(req) !== undefined,
    keyGenerator: async (req) => checkedKey(await keyOf(req)),
    handler: (req, res, next) => {
      noteSecurityFacts(req, { max: limit });
      const retryAfter = res.getHeader('Retry-After');
      const seconds =
        typeof retryAfter === 'string' || typeof retryAfter === 'number'
          ? String(retryAfter)
          : String(Math.ceil(windowMs / 1000));
      next(
        problem(
          429,
          'password.too_many_attempts',
          `Too many password attempts for this resource; try again in ${seconds} second${seconds === '1' ? '' : 's'}.`,
          { headers: { 'Retry-After': seconds } },
        ),
      );
    },
    ...(store === undefined ? {} : { store }),
  });

  return function guessLimit(req, res, next): void {
    // express-rate-limit's middleware hands its own errors (a failing store) to next.
    void limiter(req, res, next);
  };
}

function defaultKey(readId: RecordIdReader): (req: Request) => string {
  return (req) => {
    const target = readRecordId(req, readId) ?? '';
    const owned = ownership(req);
    if (owned !== undefined) {
      return JSON.stringify(['principal', owned.principal.kind, owned.principal.id, target]);
    }
    const address = req.ip;
    if (typeof address !== 'string' || address.length === 0) {
      throw new TypeError(
        'guessLimit: the request has neither a caller let through by requireOwnership nor an IP address to key its budget on.',
      );
    }
    return JSON.stringify(['ip', ipKeyGenerator(address), target]);
  };
}

function checkedKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError('guessLimit: the key option returned something other than a non-empty string.');
  }
  return key;
}

function checkedStore(store: unknown): GuessLimitStore | undefined {
  if (store === undefined) return undefined;
  const methods = ['increment', 'decrement', 'resetKey'] as const;
  if (typeof store !== 'object' || store === null) {
    throw optionError(
      'guessLimit',
      'store',
      `must be an express-rate-limit store (such as rate-limit-redis's RedisStore), got ${store === null ? 'null' : typeof store}.`,
    );
  }
  const missing = missingMethods(store, methods);
  if (missing.length > 0) {
    throw optionError('guessLimit', 'store', `is not an express-rate-limit store: it has no ${missing.join(', ')} method.`);
  }
  // One store object per limiter: a second limiter on it would reset its window length
  // (init) and, on one route, count each request twice.
  if (usedStores.has(store)) {
    throw optionError('guessLimit', 'store', 'is already used by another guessLimit: give each limiter its own store object.');
  }
  usedStores.add(store);
  return store as GuessLimitStore;
}
