import helmet from 'helmet';
import type { HelmetOptions } from 'helmet';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { problem } from './errors';
import { DEFAULT_REDACTED_KEYS, redactionSet, safeJson } from './json';
import { assertBoolean, assertKnownKeys, optionError } from './options';
import type { KeysEnum } from './options';

/** Options of {@link responseEncoder}. */
export interface ResponseEncoderOptions {
  /**
   * Keys removed from every JSON body at any depth before it leaves, compared without
   * case, `-`/`_` separators or a trailing number (`password_0` matches `password`).
   * @default ['password', 'passwordHash', 'hash', 'secret', 'token']
   */
  readonly redact?: readonly string[];
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
}

const optionKeys: KeysEnum<ResponseEncoderOptions> = {
  redact: true,
  noStore: true,
  requireJsonAccept: true,
  helmet: true,
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
 * never markup and a handler that forgets cannot leak a password or a hash.
 *
 * @example
 * app.use('/servers', responseEncoder({ redact: ['password', 'hash', 'apiKey'] }));
 */
export function responseEncoder(options: ResponseEncoderOptions = {}): RequestHandler {
  assertKnownKeys('responseEncoder', options, optionKeys);
  assertBoolean('responseEncoder', 'noStore', options.noStore);
  assertBoolean('responseEncoder', 'requireJsonAccept', options.requireJsonAccept);
  const redactKeys = options.redact ?? DEFAULT_REDACTED_KEYS;
  if (!Array.isArray(redactKeys) || redactKeys.some((k) => typeof k !== 'string' || k === '')) {
    throw optionError('responseEncoder', 'redact', 'must be an array of non-empty key names.');
  }
  if (options.helmet !== undefined && (typeof options.helmet !== 'object' || options.helmet === null)) {
    throw optionError('responseEncoder', 'helmet', 'must be an object of helmet options.');
  }
  const profile = options.headerProfile === undefined ? 'helmet' : options.headerProfile;
  if (profile !== 'helmet' && profile !== 'api') {
    throw optionError('responseEncoder', 'headerProfile', 'must be "helmet" (helmet\'s full default set) or "api" (JSON responses only).');
  }
  const redacted = redactionSet(redactKeys);
  const noStore = options.noStore ?? true;
  const requireJsonAccept = options.requireJsonAccept ?? true;
  const headers = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    ...(profile === 'api' ? API_HELMET : {}),
    ...options.helmet,
  } as HelmetOptions);

  // One function for every response, made here rather than per request.
  const encodedJson = function encodedJson(this: Response, body: unknown): Response {
    if (!this.get('Content-Type')) this.setHeader('Content-Type', 'application/json; charset=utf-8');
    return this.send(safeJson(body, redacted) ?? '');
  };

  return function responseEncoder(req: Request, res: Response, next: NextFunction): void {
    headers(req, res, (error?: unknown) => {
      if (error !== undefined && error !== null) {
        next(error);
        return;
      }
      if (noStore) res.setHeader('Cache-Control', 'no-store');
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
