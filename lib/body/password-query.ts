import type { Request, Response } from 'express';
import { problem } from '../internal/errors';
import { assertFunction, assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { markSecret } from '../internal/secrets';
import { decodeComponent, encodedPairs, UrlencodedError } from '../internal/urlencoded';
import { NOT_VISIBLE_ASCII } from '../internal/syntax';

/**
 * How {@link passwordBody} reads a password from the query string, a legacy location
 * it only reads when `from` lists `'query'`. Query strings end up in access logs, proxy
 * logs and browser history, so every such response says the usage is deprecated.
 *
 * @example
 * const query: PasswordQueryOptions = {
 *   parameter: 'pw',
 *   deprecation: new Date('2026-12-01T00:00:00Z'),
 *   sunset: new Date('2027-06-01T00:00:00Z'),
 *   link: 'https://docs.example.com/api/password-in-body',
 *   warn: (message) => logger.warn(message),
 * };
 */
export interface PasswordQueryOptions {
  /**
   * The query parameter holding the password.
   * @default the `field` option ('password')
   */
  readonly parameter?: string;
  /**
   * The date sent in the RFC 9745 `Deprecation` header (`@` and Unix seconds): when the
   * query location was, or will be, deprecated. Pass the date you announced.
   * @default new Date(0), "deprecated for as long as the route has existed"
   */
  readonly deprecation?: Date;
  /**
   * When the query location stops working, sent as an RFC 8594 `Sunset` header. Not
   * before `deprecation`.
   * @default undefined (no Sunset header)
   */
  readonly sunset?: Date;
  /**
   * An absolute URL of a page telling clients how to move off the query string, sent as
   * `Link: <url>; rel="deprecation"` (RFC 9745 §3).
   * @default undefined (no Link header)
   */
  readonly link?: string;
  /**
   * Receives the one warning written when the middleware is built. There is deliberately
   * no `false`: to silence it, pass a function that drops it.
   * @default (message) => process.emitWarning(message, { type: 'SecurityWarning', code: 'EXPRESS_PASSWORD_GUARD_QUERY_PASSWORD' })
   */
  readonly warn?: (message: string) => void;
}

/** The resolved query settings of one middleware. */
export interface QueryConfig {
  readonly parameter: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly link: string | undefined;
  /** Writes the start-up warning: called once the whole middleware is built. */
  readonly announce: () => void;
}

const queryKeys: KeysEnum<PasswordQueryOptions> = {
  parameter: true,
  deprecation: true,
  sunset: true,
  link: true,
  warn: true,
};

/** The default of {@link PasswordQueryOptions.warn}. */
export function emitQueryWarning(message: string): void {
  process.emitWarning(message, { type: 'SecurityWarning', code: 'EXPRESS_PASSWORD_GUARD_QUERY_PASSWORD' });
}

/** Checks the query options; `field` is the default parameter name. */
export function resolveQuery(factory: string, option: unknown, field: string): QueryConfig {
  const options = (option ?? {}) as PasswordQueryOptions;
  assertKnownKeys(`${factory}: option "query"`, options, queryKeys);
  const parameter = options.parameter ?? field;
  if (typeof parameter !== 'string' || parameter.length === 0) {
    throw optionError(factory, 'query.parameter', 'must be a non-empty string, such as "password".');
  }
  const deprecation = dateOption(factory, 'query.deprecation', options.deprecation) ?? new Date(0);
  const sunset = dateOption(factory, 'query.sunset', options.sunset);
  if (sunset !== undefined && sunset.getTime() < deprecation.getTime()) {
    throw optionError(factory, 'query.sunset', 'must not be before query.deprecation (RFC 9745 §4).');
  }
  const headers: [string, string][] = [['Deprecation', `@${Math.floor(deprecation.getTime() / 1000)}`]];
  if (sunset !== undefined) headers.push(['Sunset', sunset.toUTCString()]);
  let link: string | undefined;
  if (options.link !== undefined) {
    if (typeof options.link !== 'string' || !URL.canParse(options.link)) {
      throw optionError(factory, 'query.link', 'must be an absolute URL, such as "https://docs.example.com/deprecations".');
    }
    // href percent-encodes what a header could not carry (spaces, `>`, line breaks).
    link = `<${new URL(options.link).href}>; rel="deprecation"`;
  }
  assertFunction(factory, 'query.warn', options.warn);
  const warn = options.warn ?? emitQueryWarning;
  const message =
    `${factory}: the password is read from the "${parameter}" query parameter. Query strings are written to ` +
    'access logs, proxy logs and browser history: keep this for legacy clients only, and move them to a POST ' +
    'body (their responses carry a Deprecation header).';
  return {
    parameter,
    headers,
    link,
    announce: () => {
      warn(message);
    },
  };
}

function dateOption(factory: string, name: string, value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw optionError(factory, name, 'must be a valid Date.');
  }
  return value;
}

/** What {@link readQueryPasswords} found: the password, and the other password parameters sent. */
export interface QueryPasswords {
  readonly password: string | undefined;
  readonly others: ReadonlyMap<string, string>;
}

/**
 * Reads the password parameter of `req`'s query string, and the `others` (a repeat, the
 * current password): `undefined` when none of them is there. Once one is found the
 * response is marked deprecated and every one of them is removed from `req.url`,
 * `req.originalUrl` and `req.query`, before any check can fail, so an access logger
 * running later in this process never sees any of them.
 */
export function readQueryPasswords(
  req: Request,
  res: Response,
  config: QueryConfig,
  limit: number,
  others: readonly string[] = [],
): QueryPasswords | undefined {
  const url = req.url;
  const start = url.indexOf('?');
  if (start === -1) return undefined;
  const query = url.slice(start + 1);
  const pairs = encodedPairs(query);
  if (pairs.length === 0) return undefined;
  // A request target is printable ASCII (RFC 9112 §3.2); Node refuses anything else
  // unless its lenient parser is on, and then it must not reach the decoder as Latin-1.
  if (NOT_VISIBLE_ASCII.test(query)) throw queryProblem('parse_failed');
  const names = [config.parameter, ...others];
  const matches = new Map<string, string[]>();
  for (const pair of pairs) {
    let name: string;
    try {
      name = decodeComponent(pair.name);
    } catch (error) {
      throw queryProblem(error);
    }
    if (!names.includes(name)) continue;
    const values = matches.get(name) ?? [];
    values.push(pair.value ?? '');
    matches.set(name, values);
  }
  if (matches.size === 0) return undefined;

  for (const values of matches.values()) for (const encoded of values) markSecret(req, encoded);
  markDeprecated(res, config);
  forgetParameters(req, names);
  const decoded = new Map<string, string>();
  for (const [name, values] of matches) {
    if (values.length > 1) {
      throw problem(
        400,
        'query.repeated_parameter',
        `The query string has the "${name}" parameter more than once; send it once.`,
      );
    }
    let value: string;
    try {
      value = decodeComponent(values[0] ?? '');
    } catch (error) {
      throw queryProblem(error);
    }
    markSecret(req, value);
    if (Buffer.byteLength(value, 'utf8') > limit) {
      throw problem(414, 'query.too_large', `The "${name}" query parameter is larger than the limit of ${limit} bytes.`);
    }
    decoded.set(name, value);
  }
  const password = decoded.get(config.parameter);
  decoded.delete(config.parameter);
  return { password, others: decoded };
}

function markDeprecated(res: Response, config: QueryConfig): void {
  if (res.headersSent) return;
  for (const [name, value] of config.headers) res.setHeader(name, value);
  if (config.link !== undefined) res.append('Link', config.link);
}

function queryProblem(error: unknown): Error {
  if (!(error instanceof UrlencodedError)) return error instanceof Error ? error : new Error('query decoding failed');
  return error.fault === 'parse_failed'
    ? problem(400, 'query.parse_failed', 'The query string has a malformed percent-encoding.')
    : problem(400, 'query.invalid_utf8', 'The query string is not valid UTF-8 once percent-decoded.');
}

/** `url` without the pairs named in `parameters`, and without `?` when nothing is left. */
function withoutParameters(url: string, parameters: readonly string[]): string {
  const start = url.indexOf('?');
  if (start === -1) return url;
  const kept = url
    .slice(start + 1)
    .split('&')
    .filter((segment) => {
      const equals = segment.indexOf('=');
      const name = equals === -1 ? segment : segment.slice(0, equals);
      try {
        return !parameters.includes(decodeComponent(name));
      } catch {
        return true;
      }
    });
  const rest = kept.join('&');
  return url.slice(0, start) + (rest === '' ? '' : `?${rest}`);
}

function forgetParameters(req: Request, parameters: readonly string[]): void {
  req.url = withoutParameters(req.url, parameters);
  if (typeof req.originalUrl === 'string') req.originalUrl = withoutParameters(req.originalUrl, parameters);
  // parseurl's caches of the URLs as they came (search, query, href): Express re-parses
  // on its next read, but until then a handler that dumps req would print the password.
  const caches = req as unknown as Record<string, unknown>;
  delete caches['_parsedUrl'];
  delete caches['_parsedOriginalUrl'];
  // Express 4 parsed req.query once, into an own property; Express 5 parses it again
  // from req.url on each read, which no longer has the parameters.
  const parsed: unknown = Object.getOwnPropertyDescriptor(req, 'query')?.value;
  if (parsed !== null && typeof parsed === 'object') {
    for (const parameter of parameters) {
      if (Object.hasOwn(parsed, parameter)) delete (parsed as Record<string, unknown>)[parameter];
    }
  }
}

/**
 * Hands query parameters back to the handlers after the scrub, on `req.query` only (the
 * URL keeps them out): an own property on Express 4 and 5 alike, since Express 5's
 * `req.query` is a getter that parses the scrubbed URL again on each read. Each is
 * non-enumerable: read by name (`req.query.password`, `const { password } = req.query`)
 * it is there, but a logger that serialises `req.query` (pino's request serializer copies
 * it), `JSON.stringify`, `util.inspect`, `Object.keys` and spreading skip it.
 */
export function handQueryBack(req: Request, values: ReadonlyMap<string, string>): void {
  const current: unknown = req.query;
  const query: Record<string, unknown> = { ...(typeof current === 'object' && current !== null ? current : {}) };
  for (const [name, value] of values) {
    Object.defineProperty(query, name, { value, writable: true, configurable: true, enumerable: false });
  }
  Object.defineProperty(req, 'query', { value: query, writable: true, configurable: true, enumerable: true });
}
