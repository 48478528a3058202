import helmet from 'helmet';
import type { HelmetOptions } from 'helmet';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { problem } from '../internal/errors';
import { DEFAULT_KEPT_KEYS, DEFAULT_REDACTED_KEYS, keyRedaction, safeJson } from '../internal/json';
import { assertBoolean, assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { revealedFor } from '../internal/secrets';

/** Options of {@link responseEncoder}. */
export interface ResponseEncoderOptions {
  /**
   * Secret words added to the default list. A key is removed from every JSON body, at any
   * depth, when one of its words (split at case changes, `_`, `-`, digits) is a secret
   * word: `adminPass`, `client_secret`, `API-KEY`, `password_0` all go. See
   * docs/security.md for the default words.
   * @default []
   */
  readonly redact?: readonly string[];
  /**
   * `false` redacts only the words of `redact`, replacing the default list (the behaviour
   * of `redact` before it extended the defaults).
   * @default true
   */
  readonly redactDefaults?: boolean;
  /**
   * Key names that look secret but are not, kept in every body: `['token']` lets a login
   * route hand out its token. Compared without case or separators (`password_set` is
   * `passwordSet`), whole names only. Added to the defaults.
   * @default ['passwordSet', 'passwordPolicy']
   */
  readonly keep?: readonly string[];
  /**
   * Send `Cache-Control: no-store`, so password state is never kept by a cache.
   * @default true
   */
  readonly noStore?: boolean;
  /**
   * Answer `406 Not Acceptable` when the request's `Accept` header admits no JSON type.
   * @default true
   */
  readonly requireJsonAccept?: boolean;
  /**
   * Which security headers are sent. `'helmet'`: helmet's full default set (with the CSP,
   * `X-Frame-Options` and `Referrer-Policy` below). `'api'`: the OWASP REST Security
   * Cheat Sheet's set for JSON responses only (CSP `default-src 'none'; frame-ancestors
   * 'none'`, `Strict-Transport-Security`, `X-Content-Type-Options: nosniff`,
   * `X-Frame-Options: DENY`, with `Cache-Control` and `Content-Type` from this encoder),
   * leaving out the headers that only act on documents a browser renders or runs.
   * Either way `helmet` below is merged over the profile.
   * @default 'helmet'
   */
  readonly headerProfile?: 'helmet' | 'api';
  /**
   * Helmet options merged over this package's JSON API defaults (CSP `default-src 'none'`
   * and `frame-ancestors 'none'`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`).
   * @default {}
   */
  readonly helmet?: Readonly<HelmetOptions>;
  /**
   * Set this middleware's headers (helmet's and `Cache-Control`) again when the response
   * headers are written, so that middleware running later (an app's own helmet with
   * `X-Frame-Options: SAMEORIGIN`, a handler's `Cache-Control: public`) cannot weaken
   * them. Headers passed to `res.writeHead(status, headers)` itself still win.
   * @default false
   */
  readonly reapplyHeaders?: boolean;
}

const optionKeys: KeysEnum<ResponseEncoderOptions> = {
  redact: true,
  redactDefaults: true,
  keep: true,
  noStore: true,
  requireJsonAccept: true,
  helmet: true,
  reapplyHeaders: true,
  headerProfile: true,
};

/**
 * helmet's options for the `'api'` profile. What it turns off only ever acts on a
 * document: cross-origin isolation (COOP, CORP, Origin-Agent-Cluster), the referrer a
 * page's links send, DNS prefetching of its links, IE's download and Flash/PDF policy
 * switches, and the retired XSS auditor. A JSON body is not rendered or run, so none
 * of them changes what a browser does with it.
 */
const API_HELMET: Readonly<HelmetOptions> = {
  crossOriginOpenerPolicy: false,
  crossOriginResourcePolicy: false,
  originAgentCluster: false,
  referrerPolicy: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

const JSON_TYPES = ['application/json', 'application/problem+json'];

/**
 * Output encoding for a JSON password API (finding 7): security headers from helmet,
 * `no-store`, and a `res.json` that writes `charset=utf-8` JSON with `<`, `>`, `&`,
 * U+2028 and U+2029 escaped and secret-naming keys removed, so a reflected value is
 * never markup and a handler that forgets cannot leak a password or a hash. The one
 * exception is the value {@link revealSecret} opened for this request, after its
 * ownership check: it passes under a redacted key, exactly as opened (`""` when none is stored).
 *
 * @example
 * app.use('/servers', responseEncoder({ redact: ['sessionId'], keep: ['token'] }));
 */
export function responseEncoder(options: ResponseEncoderOptions = {}): RequestHandler {
  assertKnownKeys('responseEncoder', options, optionKeys);
  assertBoolean('responseEncoder', 'noStore', options.noStore);
  assertBoolean('responseEncoder', 'requireJsonAccept', options.requireJsonAccept);
  assertBoolean('responseEncoder', 'reapplyHeaders', options.reapplyHeaders);
  const reapply = options.reapplyHeaders ?? false;
  assertBoolean('responseEncoder', 'redactDefaults', options.redactDefaults);
  const redactWords = keyNames('redact', options.redact);
  const keep = keyNames('keep', options.keep);
  if (options.helmet !== undefined && (typeof options.helmet !== 'object' || options.helmet === null)) {
    throw optionError('responseEncoder', 'helmet', 'must be an object of helmet options.');
  }
  const profile = options.headerProfile === undefined ? 'helmet' : options.headerProfile;
  if (profile !== 'helmet' && profile !== 'api') {
    throw optionError(
      'responseEncoder',
      'headerProfile',
      'must be "helmet" (helmet\'s full default set) or "api" (JSON responses only).',
    );
  }
  const redacted = keyRedaction({
    words: options.redactDefaults === false ? redactWords : [...DEFAULT_REDACTED_KEYS, ...redactWords],
    keep: [...DEFAULT_KEPT_KEYS, ...keep],
  });
  const noStore = options.noStore ?? true;
  const requireJsonAccept = options.requireJsonAccept ?? true;
  // Built step by step: one object literal spreading these into a cast sends tsc into
  // minutes of union expansion over helmet's option types.
  const helmetOptions: HelmetOptions = {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  };
  if (profile === 'api') Object.assign(helmetOptions, API_HELMET);
  if (options.helmet !== undefined) Object.assign(helmetOptions, options.helmet);
  const headers = helmet(helmetOptions);

  // One function for every response, made here rather than per request.
  const encodedJson = function encodedJson(this: Response, body: unknown): Response {
    if (!this.get('Content-Type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    const revealed = revealedFor(this.req);
    return this.send(safeJson(body, redacted, revealed === undefined ? undefined : (revealed.value ?? '')) ?? '');
  };

  return function responseEncoder(req: Request, res: Response, next: NextFunction): void {
    const before = reapply ? new Set(res.getHeaderNames()) : undefined;
    headers(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) {
        next(error);
        return;
      }
      if (noStore) res.setHeader('Cache-Control', 'no-store');
      if (before !== undefined) lockHeaders(res, before);
      res.json = encodedJson;
      // JSONP would hand the body to any site's script and Express builds it with a plain
      // JSON.stringify: answer it as the same escaped, redacted JSON, never a callback.
      res.jsonp = encodedJson;
      // No Accept header accepts everything (RFC 9110 §12.5.1): skip the negotiation.
      if (requireJsonAccept && req.headers.accept !== undefined && req.accepts(JSON_TYPES) === false) {
        next(
          problem(
            406,
            'response.not_acceptable',
            'This resource is only available as application/json; the Accept header admits no JSON type.',
          ),
        );
        return;
      }
      next();
    });
  };
}

function keyNames(option: string, value: unknown): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((k) => typeof k !== 'string' || !/[A-Za-z0-9]/.test(k))) {
    throw optionError('responseEncoder', option, 'must be an array of key names, each with a letter or digit.');
  }
  return value as readonly string[];
}

/** Sets the headers added since `before` again just before the head is written. */
function lockHeaders(res: Response, before: ReadonlySet<string>): void {
  const ours: [string, number | string | string[]][] = [];
  for (const name of res.getHeaderNames()) {
    const value = res.getHeader(name);
    if (!before.has(name) && value !== undefined) ours.push([name, value]);
  }
  const writeHead = res.writeHead;
  // Every way out (res.send, res.end, a stream's pipe) goes through writeHead once.
  res.writeHead = function reappliedWriteHead(this: Response, ...args: unknown[]) {
    if (!this.headersSent) for (const [name, value] of ours) this.setHeader(name, value);
    return (writeHead as (...rest: unknown[]) => Response).apply(this, args);
  } as Response['writeHead'];
}
