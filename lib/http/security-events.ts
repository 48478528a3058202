import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { requestPath } from '../internal/errors';
import type { Principal, PrincipalId } from '../access/identities';
import { assertFunction, assertKnownKeys, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { visibleAscii } from '../internal/syntax';

/**
 * The names of OWASP's Application Logging Vocabulary this package emits, plus
 * `sensitive_read_fail` (a sealed secret that fails to open), which the vocabulary lacks
 * and which follows its `_fail` pattern.
 */
export type SecurityEventType =
  | 'authn_login_fail'
  | 'authn_login_success'
  | 'authn_password_change'
  | 'authn_password_change_fail'
  | 'authz_fail'
  | 'excess_rate_limit_exceeded'
  | 'input_validation_fail'
  | 'malicious_excess_404'
  | 'sensitive_create'
  | 'sensitive_read'
  | 'sensitive_read_fail'
  | 'sensitive_update';

/** The vocabulary's three levels. */
export type SecurityEventLevel = 'INFO' | 'WARN' | 'CRITICAL';

/**
 * One security event, as the sink receives it: a plain object that serialises to one
 * JSON line. Keys follow the OWASP vocabulary's examples (`datetime`, `appid`, `event`,
 * `level`, `description`, `source_ip`, `useragent`, `request_uri`, `request_method`).
 * It never holds a password, a hash, a sealed value, a token, a key, a signature, the
 * request body or the query string.
 *
 * @example
 * const event: SecurityEvent = {
 *   datetime: '2026-11-30T04:01:02.003Z', appid: 'nova-passwords',
 *   event: 'authz_fail:bob,srv-alice', type: 'authz_fail', level: 'CRITICAL',
 *   description: 'user bob was refused srv-alice, which it does not own', count: 1,
 *   principal: { kind: 'user', id: 'bob' }, resource: 'srv-alice', source_ip: '203.0.113.7',
 *   request_method: 'POST', request_uri: '/servers/srv-alice/password', status: 404, code: 'ownership.denied',
 * };
 */
export interface SecurityEvent {
  /** When the event happened (for a summary: when its window closed), ISO 8601 UTC. */
  readonly datetime: string;
  /** The `appid` option. */
  readonly appid?: string;
  /** The vocabulary's name with its `:subject,target` suffix, such as `authz_fail:bob,srv-alice`. */
  readonly event: string;
  /** The vocabulary's name alone, to key alerts on. */
  readonly type: SecurityEventType;
  readonly level: SecurityEventLevel;
  /** A sentence written by this package; it quotes ids, never a submitted value. */
  readonly description: string;
  /**
   * How many occurrences this event stands for: 1, or more for a flood folded into one
   * event (see `windowMs`). Summed over the events of one key, it is the true count.
   */
  readonly count: number;
  /** The request's id (`req.id`, else a well-formed `X-Request-ID`), when there is one. */
  readonly request_id?: string;
  /** The caller the ownership check identified (kind and id; never a credential). */
  readonly principal?: { readonly kind: string; readonly id: PrincipalId };
  /** The identity a caller claimed without proving it (an instance id with a bad signature). */
  readonly claimed?: { readonly kind: string; readonly id: string };
  /** The route's resource id (`req.params.id` by default). */
  readonly resource?: string;
  /** The client address, as Express's `req.ip` sees it (set `trust proxy` behind a proxy). */
  readonly source_ip?: string;
  /** The `User-Agent` header, cut at 200 characters. */
  readonly useragent?: string;
  readonly request_method?: string;
  /** The request path, percent-encoded, without its query (which may carry a password). */
  readonly request_uri?: string;
  /** The status answered (a success event waits for the response to finish). */
  readonly status?: number;
  /** The problem code answered (`ownership.denied`), for refusals. */
  readonly code?: string;
  /** What was wrong with the input: the fields named in the event (`password`, `method`, `body`). */
  readonly fields?: readonly string[];
  /** Which rules refused the input (`too_short`, `common_password`), never the input. */
  readonly reasons?: readonly string[];
  /** The limit that was exceeded: attempts per window, or `'hash_pool'`. */
  readonly max?: number | string;
  /** What a success did: `set`, `clear`, `verify`, `reveal`, `rekey`. */
  readonly action?: string;
  /** Whether a verify that matched upgraded the stored hash. */
  readonly rehashed?: boolean;
  /** For a summary: the length of the window its `count` was counted in, in ms. */
  readonly window_ms?: number;
}

/**
 * Receives each event. It may return a promise; it is called after the answer is on its
 * way, never awaited by a request, and a throw or a rejection is reported to `onError`.
 *
 * @example
 * const sink: SecurityEventSink = (event) => logger.info(event);
 */
export type SecurityEventSink = (event: SecurityEvent) => void | Promise<void>;

/**
 * Options of {@link securityEvents}.
 *
 * @example
 * const options: SecurityEventsOptions = { appid: 'nova-passwords', windowMs: 60_000, excess404: 20 };
 */
export interface SecurityEventsOptions {
  /** Written as `appid` in every event. @default undefined (no appid) */
  readonly appid?: string;
  /**
   * Flood window in ms. Per key (event, caller, target, code) the first occurrence in a
   * window is delivered at once and the rest are counted, then delivered as one summary
   * event with their `count` when the window closes.
   * @default 60_000
   */
  readonly windowMs?: number;
  /**
   * 404s (a missing resource, an unserved path) one caller may get in a window before a
   * `malicious_excess_404` is delivered; single 404s are counted, not delivered.
   * @default 10
   */
  readonly excess404?: number;
  /**
   * Events waiting for the sink (an async sink with 100 calls pending gets no more until
   * some settle); past this, events are dropped and counted in `stats().dropped`.
   * @default 10_000
   */
  readonly maxQueue?: number;
  /**
   * Keys counted at once; past this, new keys share one overflow key per event type, so
   * a flood of made-up ids cannot grow memory.
   * @default 10_000
   */
  readonly maxKeys?: number;
  /** The request's id. @default req.id when a string or number, else a well-formed X-Request-ID header */
  readonly requestId?: (req: Request) => string | undefined;
  /** The route's resource id, read where the route's parameters are known. @default (req) => req.params.id */
  readonly resource?: (req: Request) => string | undefined;
  /**
   * Told when the sink throws or rejects, at most once per window, and when `flush()`
   * gives up waiting.
   * @default a line on stderr naming the error's message
   */
  readonly onError?: (error: unknown) => void;
  /**
   * How long `flush()` waits for the sink, in ms: a sink promise that never settles
   * would otherwise keep a shutdown waiting. Past it, `flush()` resolves and `onError`
   * is told how many sink calls were still pending and how many events still queued.
   * @default 5_000
   */
  readonly flushTimeoutMs?: number;
}

/** What {@link securityEvents} delivered, counted and dropped so far. */
export interface SecurityEventStats {
  readonly delivered: number;
  /** Occurrences folded into a summary or a threshold (not delivered one by one). */
  readonly folded: number;
  readonly dropped: number;
  readonly failed: number;
}

/**
 * The middleware {@link securityEvents} returns, with ways to report events that no
 * request carries and to drain the queue at shutdown.
 */
export interface SecurityEvents extends RequestHandler {
  /**
   * Reports an event outside any request (a key rotation run, a batch job).
   * @example
   * events.report('sensitive_update', { action: 'rekey', resource: 'srv-1', description: 'sealed again under key k2' });
   */
  report(type: SecurityEventType, details: SecurityEventDetails): void;
  /**
   * Closes every open window (delivering its summary) and resolves once the sink has
   * settled, or after `flushTimeoutMs`, whichever comes first.
   */
  flush(): Promise<void>;
  stats(): SecurityEventStats;
}

/** What a caller of {@link reportSecurityEvent} or `report()` may say about an event. */
export interface SecurityEventDetails {
  readonly description?: string;
  readonly resource?: string;
  readonly action?: string;
  readonly rehashed?: boolean;
  readonly status?: number;
  readonly code?: string;
  readonly principal?: Principal;
}

const optionKeys: KeysEnum<SecurityEventsOptions> = {
  appid: true,
  windowMs: true,
  excess404: true,
  maxQueue: true,
  maxKeys: true,
  requestId: true,
  resource: true,
  onError: true,
  flushTimeoutMs: true,
};

const LEVELS: Readonly<Record<SecurityEventType, SecurityEventLevel>> = {
  authn_login_fail: 'WARN',
  authn_login_success: 'INFO',
  authn_password_change: 'INFO',
  authn_password_change_fail: 'CRITICAL',
  authz_fail: 'CRITICAL',
  excess_rate_limit_exceeded: 'WARN',
  input_validation_fail: 'WARN',
  malicious_excess_404: 'WARN',
  sensitive_create: 'INFO',
  sensitive_read: 'INFO',
  sensitive_read_fail: 'CRITICAL',
  sensitive_update: 'INFO',
};

const MAX_IN_FLIGHT = 100;
const REQUEST_ID = visibleAscii(128);
const MAX_TEXT = 200;

/** What the middlewares learned about a request on the way, for its refusal event. */
interface Facts {
  principal?: Principal;
  claimed?: { kind: string; id: string };
  /** Whether the resource the ownership check loaded exists. */
  exists?: boolean;
  resource?: string;
  max?: number | string;
}

/** One occurrence, before it is known whether it is delivered or folded. */
interface Occurrence {
  readonly type: SecurityEventType;
  readonly subject: string;
  readonly target?: string;
  readonly fields?: readonly string[];
  readonly description: string;
  readonly base: Omit<SecurityEvent, 'datetime' | 'event' | 'type' | 'level' | 'description' | 'count'>;
}

interface Window {
  /** Where it is filed: its key's prefix (event type, code, action), caller and target. */
  readonly prefix: string;
  readonly subject: string;
  readonly target: string;
  readonly start: number;
  count: number;
  reported: number;
  readonly threshold: number;
  sample: Occurrence | undefined;
}

/**
 * Open windows by key prefix, then caller, then target (`''` for none). Three lookups of
 * strings that already exist (a constant, the caller's id, the route's id), where one
 * joined key would build and hash a new string for every folded refusal.
 */
type Windows = Map<string, Map<string, Map<string, Window>>>;

interface Registry {
  readonly config: Config;
  readonly excess404: number;
  /**
   * Counts one occurrence in the window of its key (`prefix` from {@link keyPrefix}: event
   * type, code, action; then caller and target), and returns the window when this
   * occurrence is to be delivered; `undefined` when it was folded. The occurrence is built
   * only then, and handed to `deliver`.
   */
  readonly take: (
    prefix: string,
    type: SecurityEventType,
    subject: string,
    target: string | undefined,
    threshold: number,
  ) => Window | undefined;
  readonly deliver: (window: Window, occurrence: Occurrence) => void;
}

interface Config {
  readonly appid: string | undefined;
  readonly requestId: (req: Request) => string | undefined;
  readonly resource: (req: Request) => string | undefined;
}

/** Passes its argument through as `this`, so that a subclass can add private fields to it. */
class Passthrough {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the request itself is stamped, not a new object.
    return target as Passthrough;
  }
}

/** One per request: the registry that took it, and what the middlewares noted (made when the first fact is). */
interface Slot {
  readonly registry: Registry;
  facts: Facts | undefined;
}

/** Whether any {@link securityEvents} was made: until then no request can carry a stamp. */
let registered = false;

/**
 * The mark a registration leaves on each request that passes: one private field on the
 * request itself, holding its slot. Private, so JSON, `util.inspect`, spreads and loggers
 * never see it (the facts may hold the app's user object), and a request without one is
 * told apart by an own-field check rather than a miss that walks Express's long prototype
 * chain. One field, holding a small object: a field added to a request whose prototype
 * Express has switched costs microseconds (measured), a second one as much again, while
 * the object costs tens of ns. A `WeakMap` entry (an ephemeron the collector traces)
 * cost about 2 µs.
 */
class RequestStamp extends Passthrough {
  #slot: Slot;

  private constructor(req: Request, slot: Slot) {
    super(req);
    this.#slot = slot;
  }

  /** Stamps `req` for `registry`, unless an outer registration already did. */
  static stamp(req: Request, registry: Registry): void {
    if (!(#slot in req)) new RequestStamp(req, { registry, facts: undefined });
  }

  static slot(req: Request): Slot | undefined {
    // In an app that never made a registration, the middlewares that note facts and the
    // problem handler skip even the field check.
    return registered && #slot in req ? (req as unknown as RequestStamp).#slot : undefined;
  }
}

const NO_FACTS: Readonly<Facts> = Object.freeze({});

/** The first part of a fold key: event type, problem code and action. */
function keyPrefix(type: SecurityEventType, code: string | undefined, action: string | undefined): string {
  return `${type}\u0000${code ?? ''}\u0000${action ?? ''}`;
}

/**
 * Registers `sink` for every request that passes: mount it first, before the routes, so
 * that every refusal the problem handler answers, and every set, clear and verify the
 * package's middlewares make, reaches `sink` as a {@link SecurityEvent} named from OWASP's
 * logging vocabulary. Events are delivered after the answer is written, on a later turn
 * of the event loop; a sink that throws, rejects or is slow never changes or delays an
 * answer. Floods are folded: per key and window, one event and then one summary with a
 * `count`; 404s on missing resources become one `malicious_excess_404` per caller.
 *
 * @example
 * import pino from 'pino';
 * const logger = pino();
 * const events = securityEvents((event) => logger.info(event), { appid: 'nova-passwords' });
 * app.use(events);
 * passwordRoutes(app, { store, ownership });
 * process.on('SIGTERM', () => void events.flush());
 */
export function securityEvents(sink: SecurityEventSink, options: SecurityEventsOptions = {}): SecurityEvents {
  if (typeof sink !== 'function') {
    throw new TypeError('securityEvents: the first argument must be the sink, a function (event) => void.');
  }
  assertKnownKeys('securityEvents', options, optionKeys);
  const appid = options.appid;
  if (appid !== undefined && (typeof appid !== 'string' || appid.length === 0)) {
    throw optionError('securityEvents', 'appid', 'must be a non-empty string.');
  }
  const windowMs = wholeNumber('windowMs', options.windowMs, 60_000, 1000, 2 ** 31 - 1);
  const excess404 = wholeNumber('excess404', options.excess404, 10, 1, Number.MAX_SAFE_INTEGER);
  const maxQueue = wholeNumber('maxQueue', options.maxQueue, 10_000, 1, Number.MAX_SAFE_INTEGER);
  const maxKeys = wholeNumber('maxKeys', options.maxKeys, 10_000, 1, Number.MAX_SAFE_INTEGER);
  const flushTimeoutMs = wholeNumber('flushTimeoutMs', options.flushTimeoutMs, 5000, 1, 2 ** 31 - 1);
  assertFunction('securityEvents', 'requestId', options.requestId);
  assertFunction('securityEvents', 'resource', options.resource);
  assertFunction('securityEvents', 'onError', options.onError);
  const config: Config = {
    appid,
    requestId: options.requestId ?? defaultRequestId,
    resource: options.resource ?? defaultResource,
  };
  const onError = options.onError ?? defaultOnError;
  registered = true;

  const windows: Windows = new Map();
  let open = 0;
  const queue: SecurityEvent[] = [];
  const stats = { delivered: 0, folded: 0, dropped: 0, failed: 0 };
  let inFlight = 0;
  let scheduled = false;
  let lastErrorAt = -Infinity;
  let sweeper: NodeJS.Timeout | undefined;
  const settled = new Set<Promise<void>>();

  const tell = (error: unknown): void => {
    try {
      onError(error);
    } catch {
      // An error reporter that fails has nobody left to tell.
    }
  };

  const failed = (error: unknown): void => {
    stats.failed += 1;
    const now = Date.now();
    if (now - lastErrorAt < windowMs) return;
    lastErrorAt = now;
    tell(error);
  };

  const drain = (): void => {
    scheduled = false;
    while (queue.length > 0 && inFlight < MAX_IN_FLIGHT) {
      const event = queue.shift() as SecurityEvent;
      stats.delivered += 1;
      let result: unknown;
      try {
        result = sink(event);
      } catch (error) {
        failed(error);
        continue;
      }
      if (isThenable(result)) {
        inFlight += 1;
        const done = Promise.resolve(result).then(
          () => undefined,
          (error: unknown) => failed(error),
        );
        settled.add(done);
        void done.finally(() => {
          settled.delete(done);
          inFlight -= 1;
          if (queue.length > 0) schedule();
        });
      }
    }
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(drain);
  };

  const enqueue = (event: SecurityEvent): void => {
    if (queue.length >= maxQueue) {
      stats.dropped += 1;
      return;
    }
    queue.push(event);
    schedule();
  };

  const build = (occurrence: Occurrence, count: number, summary: boolean): SecurityEvent => {
    // An event that stands for several requests keeps only what they share (the key's
    // parts); the first one's path, agent or rule codes would describe the others wrongly.
    const base = summary || count > 1 ? sharedFields(occurrence.base) : occurrence.base;
    const suffix =
      occurrence.type === 'input_validation_fail'
        ? `(${(occurrence.fields ?? []).join(',')}),${occurrence.subject}`
        : occurrence.target === undefined
          ? occurrence.subject
          : `${occurrence.subject},${occurrence.target}`;
    return {
      datetime: new Date().toISOString(),
      ...(appid === undefined ? {} : { appid }),
      event: `${occurrence.type}:${suffix}`,
      type: occurrence.type,
      level: LEVELS[occurrence.type],
      description: summary
        ? `${count} more in the last ${Math.round(windowMs / 1000)} s: ${occurrence.description}`
        : occurrence.description,
      count,
      ...base,
      ...(summary ? { window_ms: windowMs } : {}),
    };
  };

  const close = (window: Window): void => {
    const subjects = windows.get(window.prefix);
    const targets = subjects?.get(window.subject);
    if (targets?.get(window.target) === window) {
      open -= 1;
      targets.delete(window.target);
      if (targets.size === 0) subjects?.delete(window.subject);
      if (subjects?.size === 0) windows.delete(window.prefix);
    }
    if (window.sample !== undefined && window.count > window.reported) {
      enqueue(build(window.sample, window.count - window.reported, true));
    }
  };

  /** Closes the windows `closing` selects (all of them when it is undefined). */
  const closeAll = (closing?: (window: Window) => boolean): void => {
    // Collected first: closing deletes from the maps being walked.
    const ended: Window[] = [];
    for (const subjects of windows.values()) {
      for (const targets of subjects.values()) {
        for (const window of targets.values()) if (closing === undefined || closing(window)) ended.push(window);
      }
    }
    for (const window of ended) close(window);
  };

  const sweep = (): void => {
    const now = Date.now();
    closeAll((window) => now - window.start >= windowMs);
    if (open === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  const file = (prefix: string, subject: string, target: string, now: number, threshold: number): Window => {
    const window: Window = { prefix, subject, target, start: now, count: 0, reported: 0, threshold, sample: undefined };
    let subjects = windows.get(prefix);
    if (subjects === undefined) {
      subjects = new Map();
      windows.set(prefix, subjects);
    }
    let targets = subjects.get(subject);
    if (targets === undefined) {
      targets = new Map();
      subjects.set(subject, targets);
    }
    targets.set(target, window);
    open += 1;
    // One timer per registration, not per window: a quarter window, so a summary comes at
    // most a quarter window late.
    sweeper ??= setInterval(sweep, Math.max(250, Math.floor(windowMs / 4))).unref();
    return window;
  };

  /** The window if it is still open; one whose time is up is closed (its summary delivered). */
  const unexpired = (window: Window | undefined, now: number): Window | undefined => {
    if (window === undefined || now - window.start < windowMs) return window;
    close(window);
    return undefined;
  };

  // For an occurrence folded into an open window: three map lookups, a clock read and a
  // counter; nothing is allocated.
  const take = (
    prefix: string,
    type: SecurityEventType,
    subject: string,
    target: string | undefined,
    threshold: number,
  ): Window | undefined => {
    const now = Date.now();
    let window = unexpired(
      windows
        .get(prefix)
        ?.get(subject)
        ?.get(target ?? ''),
      now,
    );
    if (window === undefined) {
      if (open < maxKeys) window = file(prefix, subject, target ?? '', now, threshold);
      else {
        // Past maxKeys, new keys of one event type share one window, so made-up ids cannot grow memory.
        const overflow = `${type}\u0000*`;
        window = unexpired(windows.get(overflow)?.get('*')?.get(''), now) ?? file(overflow, '*', '', now, threshold);
      }
    }
    window.count += 1;
    if (window.reported === 0 && window.count >= window.threshold) {
      window.reported = window.count;
      return window;
    }
    stats.folded += 1;
    return undefined;
  };

  const deliver = (window: Window, occurrence: Occurrence): void => {
    window.sample = occurrence;
    enqueue(build(occurrence, window.count, false));
  };

  const registry: Registry = { config, excess404, take, deliver };

  const middleware = function securityEvents(req: Request, _res: Response, next: NextFunction): void {
    // The outer registration wins, so an app-wide sink is not replaced by a router's.
    RequestStamp.stamp(req, registry);
    next();
  };

  return Object.assign(middleware, {
    report(type: SecurityEventType, details: SecurityEventDetails): void {
      if (LEVELS[type] === undefined)
        throw new TypeError(`securityEvents: report() got an unknown event type "${String(type)}".`);
      const principal = details.principal;
      const subject = principal === undefined ? '-' : String(principal.id);
      const window = take(keyPrefix(type, details.code, details.action), type, subject, details.resource, 1);
      if (window === undefined) return;
      deliver(window, {
        type,
        subject,
        ...(details.resource === undefined ? {} : { target: details.resource }),
        description: details.description ?? describeSuccess(type, principal, details.resource, details.action),
        base: {
          ...(principal === undefined ? {} : { principal: { kind: principal.kind, id: principal.id } }),
          ...detailFields(details),
        },
      });
    },
    async flush(): Promise<void> {
      closeAll();
      if (sweeper !== undefined) {
        clearInterval(sweeper);
        sweeper = undefined;
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<true>((resolve) => {
        timer = setTimeout(() => resolve(true), flushTimeoutMs);
      });
      try {
        while (queue.length > 0 || settled.size > 0) {
          drain();
          if ((await Promise.race([Promise.all([...settled]), timedOut])) === true) {
            tell(
              new Error(
                `securityEvents: flush() gave up after ${flushTimeoutMs} ms with ${settled.size} sink calls pending and ${queue.length} events queued.`,
              ),
            );
            return;
          }
        }
      } finally {
        clearTimeout(timer);
      }
    },
    stats(): SecurityEventStats {
      return { ...stats };
    },
  });
}

/**
 * Notes what a middleware learned about `req` for its event (internal). A no-op, at the
 * cost of one lookup, when no {@link securityEvents} is registered for the request.
 */
export function noteSecurityFacts(req: Request, facts: Facts): void {
  const slot = RequestStamp.slot(req);
  if (slot === undefined) return;
  slot.facts ??= {};
  const noted = slot.facts;
  if (facts.claimed !== undefined) noted.claimed = facts.claimed;
  if (facts.exists !== undefined) noted.exists = facts.exists;
  if (facts.max !== undefined) noted.max = facts.max;
  if (facts.resource !== undefined) noted.resource = facts.resource;
  if (facts.principal !== undefined) {
    noted.principal = facts.principal;
    // Read here, inside the route: an app-level error handler no longer sees req.params.
    noted.resource = safeText(slot.registry.config.resource(req));
  }
}

/**
 * Reports a security-relevant success of `req` (internal, and for the sealing storer):
 * it is delivered once the response finished, with the status answered.
 */
export function reportSecurityEvent(req: Request, type: SecurityEventType, details: SecurityEventDetails = {}): void {
  const slot = RequestStamp.slot(req);
  if (slot === undefined) return;
  const registry = slot.registry;
  const res = req.res;
  const send = (): void => {
    const facts = slot.facts ?? NO_FACTS;
    const principal = details.principal ?? facts.principal;
    const resource = details.resource ?? facts.resource;
    const status = details.status ?? (res?.headersSent === true ? res.statusCode : undefined);
    const subject = subjectOf(req, principal, facts);
    const window = registry.take(keyPrefix(type, details.code, details.action), type, subject, resource, 1);
    if (window === undefined) return;
    registry.deliver(window, {
      type,
      subject,
      ...(resource === undefined ? {} : { target: resource }),
      description: details.description ?? describeSuccess(type, principal, resource, details.action),
      base: {
        ...requestFields(req, registry.config, principal, facts),
        ...(resource === undefined ? {} : { resource }),
        ...detailFields({ ...details, ...(status === undefined ? {} : { status }) }),
      },
    });
  };
  if (res === undefined || res.writableFinished) send();
  else res.once('close', send);
}

interface RefusalRule {
  readonly type: SecurityEventType;
  readonly fields?: readonly string[];
}

/** A refusal rule with the fold-key prefixes of its code, made once per code. */
interface KeyedRule extends RefusalRule {
  readonly code: string;
  readonly prefix: string;
  /** For a 404: the prefix of the `malicious_excess_404` it counts towards instead. */
  readonly excessPrefix: string;
}

// The refusals this package answers, by problem code. Codes not listed (a 500, an app's
// own errors) are not security events of this package.
const RULES: Readonly<Record<string, RefusalRule>> = {
  'ownership.unauthenticated': { type: 'authn_login_fail' },
  'ownership.denied': { type: 'authz_fail' },
  'route.not_found': { type: 'malicious_excess_404' },
  'method.not_allowed': { type: 'input_validation_fail', fields: ['method'] },
  'response.not_acceptable': { type: 'input_validation_fail', fields: ['accept'] },
  'password.invalid': { type: 'input_validation_fail', fields: ['password'] },
  'password.missing': { type: 'input_validation_fail', fields: ['password'] },
  'password.ambiguous': { type: 'input_validation_fail', fields: ['password'] },
  'password.already_set': { type: 'authn_password_change_fail' },
  'password.mismatch': { type: 'authn_login_fail' },
  'password.too_many_attempts': { type: 'excess_rate_limit_exceeded' },
  'password.busy': { type: 'excess_rate_limit_exceeded' },
};

const BODY_RULE: RefusalRule = { type: 'input_validation_fail', fields: ['body'] };
const QUERY_RULE: RefusalRule = { type: 'input_validation_fail', fields: ['query'] };

/** Keyed rules by code: the package's codes, plus at most this many `body.*` and `query.*` ones. */
const MAX_KEYED = 256;
const keyedRules = new Map<string, KeyedRule>();

function ruleOf(code: string): KeyedRule | undefined {
  const known = keyedRules.get(code);
  if (known !== undefined) return known;
  const rule = RULES[code] ?? (code.startsWith('body.') ? BODY_RULE : code.startsWith('query.') ? QUERY_RULE : undefined);
  if (rule === undefined) return undefined;
  const keyed: KeyedRule = {
    ...rule,
    code,
    prefix: keyPrefix(rule.type, code, undefined),
    excessPrefix: keyPrefix('malicious_excess_404', code, undefined),
  };
  if (keyedRules.size < MAX_KEYED) keyedRules.set(code, keyed);
  return keyed;
}

/**
 * Reports the refusal the problem handler is answering (internal). For an occurrence
 * folded into an open window it allocates nothing: a rule looked up by code, the caller,
 * three map lookups and a counter; the event is built only for an occurrence delivered.
 */
export function reportRefusal(req: Request, error: unknown, status: number, code: string): void {
  const slot = RequestStamp.slot(req);
  if (slot === undefined) return;
  const rule = ruleOf(code);
  if (rule === undefined) return;
  const registry = slot.registry;
  const facts = slot.facts ?? NO_FACTS;
  let type = rule.type;
  let prefix = rule.prefix;
  let threshold = 1;
  // A 404 on a resource that does not exist is a probe only in numbers: counted per caller.
  if (code === 'route.not_found' || (code === 'ownership.denied' && facts.exists !== true)) {
    type = 'malicious_excess_404';
    prefix = rule.excessPrefix;
    threshold = registry.excess404;
  }
  const principal = facts.principal;
  const subject = subjectOf(req, principal, facts);
  const fields = type === 'malicious_excess_404' ? undefined : rule.fields;
  const resource = type === 'malicious_excess_404' ? undefined : facts.resource;
  const max = code === 'password.busy' ? 'hash_pool' : facts.max;
  const target = type === 'excess_rate_limit_exceeded' ? (max === undefined ? undefined : String(max)) : resource;
  const window = registry.take(prefix, type, subject, target, threshold);
  if (window === undefined) return;
  const reasons = type === 'input_validation_fail' ? reasonsOf(error) : undefined;
  registry.deliver(window, {
    type,
    subject,
    ...(target === undefined ? {} : { target }),
    ...(fields === undefined ? {} : { fields }),
    description: describeRefusal(type, code, status, subject, principal, facts, resource),
    base: {
      ...requestFields(req, registry.config, principal, facts),
      ...(resource === undefined ? {} : { resource }),
      status,
      code,
      ...(fields === undefined ? {} : { fields }),
      ...(reasons === undefined || reasons.length === 0 ? {} : { reasons }),
      ...(max === undefined || type !== 'excess_rate_limit_exceeded' ? {} : { max }),
    },
  });
}

function requestFields(req: Request, config: Config, principal: Principal | undefined, facts: Facts): Occurrence['base'] {
  const requestId = safeText(config.requestId(req));
  const agent = req.headers['user-agent'];
  const ip = req.ip;
  return {
    ...(requestId === undefined ? {} : { request_id: requestId }),
    ...(principal === undefined ? {} : { principal: { kind: principal.kind, id: principal.id } }),
    ...(facts.claimed === undefined || principal !== undefined ? {} : { claimed: facts.claimed }),
    ...(typeof ip === 'string' && ip.length > 0 ? { source_ip: ip } : {}),
    ...(typeof agent === 'string' && agent.length > 0 ? { useragent: agent.slice(0, MAX_TEXT) } : {}),
    request_method: req.method.slice(0, 32),
    request_uri: requestPath(req).slice(0, 2 * MAX_TEXT),
  };
}

function sharedFields(base: Occurrence['base']): Occurrence['base'] {
  const { request_id: _id, request_method: _method, request_uri: _uri, useragent: _agent, reasons: _reasons, ...shared } = base;
  return shared;
}

function detailFields(details: SecurityEventDetails): Partial<SecurityEvent> {
  return {
    ...(details.resource === undefined ? {} : { resource: details.resource }),
    ...(details.action === undefined ? {} : { action: details.action }),
    ...(details.rehashed === undefined ? {} : { rehashed: details.rehashed }),
    ...(details.status === undefined ? {} : { status: details.status }),
    ...(details.code === undefined ? {} : { code: details.code }),
  };
}

/** The caller an event is about: the identified principal, an unproved claim, else the address. */
function subjectOf(req: Request, principal: Principal | undefined, facts: Facts): string {
  if (principal !== undefined) return String(principal.id);
  if (facts.claimed !== undefined) return facts.claimed.id;
  // Once: Express computes req.ip on each read (the trust proxy walk over X-Forwarded-For).
  const ip = req.ip;
  return typeof ip === 'string' && ip.length > 0 ? ip : '-';
}

function who(principal: Principal | undefined, subject: string): string {
  return principal === undefined ? `anonymous caller ${subject}` : `${principal.kind} ${String(principal.id)}`;
}

function describeRefusal(
  type: SecurityEventType,
  code: string,
  status: number,
  subject: string,
  principal: Principal | undefined,
  facts: Facts,
  resource: string | undefined,
): string {
  const caller = who(principal, subject);
  switch (type) {
    case 'authn_login_fail':
      if (code === 'password.mismatch') return `${caller} gave a wrong password for ${resource ?? 'a resource'}`;
      return facts.claimed !== undefined
        ? `a caller claiming to be ${facts.claimed.kind} ${facts.claimed.id} sent no valid signature`
        : `${caller} sent no valid credentials`;
    case 'authz_fail':
      return `${caller} was refused ${resource ?? 'a resource'}, which it does not own`;
    case 'malicious_excess_404':
      return `${caller} asked for resources or paths that do not exist`;
    case 'input_validation_fail':
      return `${caller} sent a request refused with ${status} ${code}`;
    case 'authn_password_change_fail':
      return `${caller} tried to set the password of ${resource ?? 'a resource'}, which already has one`;
    case 'excess_rate_limit_exceeded':
      return code === 'password.busy'
        ? `${caller} was refused: the password hashing pool is full`
        : `${caller} exceeded ${facts.max ?? 'the'} password attempts per window on ${resource ?? 'a resource'}`;
    default:
      return `${caller}: ${status} ${code}`;
  }
}

function describeSuccess(
  type: SecurityEventType,
  principal: Principal | undefined,
  resource: string | undefined,
  action: string | undefined,
): string {
  const caller = principal === undefined ? 'the application' : `${principal.kind} ${String(principal.id)}`;
  const target = resource ?? 'a resource';
  switch (type) {
    case 'authn_password_change':
      return action === 'clear' ? `${caller} cleared the password of ${target}` : `${caller} set the password of ${target}`;
    case 'authn_login_success':
      return `${caller} gave the right password for ${target}`;
    case 'authn_login_fail':
      return `${caller} gave a wrong password for ${target}`;
    case 'sensitive_create':
      return `${caller} stored a sealed secret for ${target}`;
    case 'sensitive_read':
      return `${caller} had the secret of ${target} revealed`;
    case 'sensitive_read_fail':
      return `the sealed secret of ${target} could not be opened: tampered with, or sealed under an unknown key`;
    case 'sensitive_update':
      return `the secret of ${target} was ${action === 'rekey' ? 'sealed again under the current key' : 'updated'}`;
    default:
      return `${caller}: ${type} on ${target}`;
  }
}

/** The rule codes of a problem's `errors` (`too_short`): codes of ours, never the input. */
function reasonsOf(error: unknown): string[] | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const errors: unknown = (error as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return undefined;
  const codes = new Set<string>();
  for (const entry of errors as unknown[]) {
    const code: unknown = typeof entry === 'object' && entry !== null ? (entry as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && /^[a-z_]{1,40}$/.test(code)) codes.add(code);
  }
  return [...codes];
}

function defaultRequestId(req: Request): string | undefined {
  const id: unknown = (req as unknown as { id?: unknown }).id;
  if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return String(id);
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : undefined;
}

function defaultResource(req: Request): string | undefined {
  const id: unknown = (req.params as Record<string, unknown> | undefined)?.['id'];
  return typeof id === 'string' ? id : undefined;
}

function safeText(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value.slice(0, MAX_TEXT) : undefined;
}

function defaultOnError(error: unknown): void {
  const message = error instanceof Error ? error.message : typeof error;
  console.error(`express-password-guard: the security event sink failed: ${message}`);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function wholeNumber(option: string, value: unknown, fallback: number, min: number, max: number): number {
  return integerOption('securityEvents', option, value, min, max) ?? fallback;
}
