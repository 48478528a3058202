import type { NextFunction, Request, RequestHandler, Response } from 'express';
import getRawBody from 'raw-body';
import { asyncMiddleware } from '../internal/async';
import { closeAfterAnswer, DEFAULT_DRAIN } from '../internal/bounded-close';
import { problem } from '../internal/errors';
import type { ProblemError } from '../internal/errors';
import { assertBoolean, assertKnownKeys, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { handQueryBack, readQueryPasswords, resolveQuery } from './password-query';
import type { PasswordQueryOptions, QueryConfig, QueryPasswords } from './password-query';
import { compilePasswordRules, passwordRuleKeys } from './password-rules';
import type { PasswordRulesOptions } from './password-rules';
import { setSubmittedPasswords, setValidatedPassword } from './validated-password';
import { markSecret } from '../internal/secrets';
import { decodePairs, UrlencodedError } from '../internal/urlencoded';
import { MEDIA_TYPE, MEDIA_TYPE_PARAMETER, TOKEN } from '../internal/syntax';

/**
 * Where the password may be: `'json'` is an `application/json` body with the password in
 * a field, `'form'` an `application/x-www-form-urlencoded` body with it in a field,
 * `'text'` a `text/plain` body that is the whole password (as in the reviewed API), and
 * `'query'` a query-string parameter, for legacy routes only (see {@link PasswordQueryOptions}).
 *
 * @example
 * const from: readonly PasswordLocation[] = ['json', 'form'];
 */
export type PasswordLocation = 'json' | 'form' | 'text' | 'query';

/**
 * The body locations of {@link PasswordLocation}: every one but the query.
 *
 * @example
 * const bodies: readonly PasswordBodyType[] = ['json', 'text'];
 */
export type PasswordBodyType = Exclude<PasswordLocation, 'query'>;

/**
 * Options of {@link passwordBody}: how the body is read, plus the content rules of
 * {@link PasswordRulesOptions}.
 *
 * @example
 * // The metadata-service route: a base64 ciphertext, not a human password.
 * const options: PasswordBodyOptions = {
 *   from: 'text',
 *   maxLength: 1020,
 *   commonPasswords: false,
 * };
 */
export interface PasswordBodyOptions extends PasswordRulesOptions {
  /**
   * The JSON or form field holding the password, and the default query parameter; also
   * the `field` of error entries, for text bodies and the query too, so every location
   * fails the same way.
   * @default 'password'
   */
  readonly field?: string;
  /**
   * Where the password is read from: one location or several. A body of any other
   * `Content-Type` → 415. `'query'` is for legacy routes only: it warns once at start-up
   * and marks every response that used it with a `Deprecation` header.
   * @default ['json', 'text']
   */
  readonly from?: PasswordLocation | readonly PasswordLocation[];
  /**
   * How the query is read and the deprecation announced; only with `'query'` in `from`.
   * @default {} (see {@link PasswordQueryOptions})
   */
  readonly query?: PasswordQueryOptions;
  /**
   * Most bytes of body, checked on `Content-Length` before reading and on the bytes
   * received while reading (chunked bodies too); over it → 413. At most 1 MiB.
   * @default 1020, the reviewed API's own limit (4 chunks of 255 bytes)
   */
  readonly limit?: number;
  /**
   * Methods whose password is read; other methods pass through untouched, so the
   * middleware can sit on a path that also serves `GET` and `DELETE`. `HEAD` is read
   * wherever `GET` is, as Express runs `GET` handlers for it.
   * @default ['POST', 'PUT', 'PATCH'], plus 'GET' and 'HEAD' when `from` has 'query'
   */
  readonly methods?: readonly string[];
  /**
   * Milliseconds the whole body may take to arrive; a client that declares a length and
   * stops sending gets 408 and a closed connection.
   * @default 10000
   */
  readonly readTimeout?: number;
  /**
   * After a refusal while the upload is still coming, the most bytes still read and
   * discarded (so the client can read the answer) before the connection is destroyed.
   * @default 65536
   */
  readonly drainBytes?: number;
  /**
   * After such a refusal, the milliseconds the connection is kept open (reading at most
   * `drainBytes`) before it is destroyed, so a client still sending gets to read the answer.
   * @default 2000
   */
  readonly drainMs?: number;
  /**
   * `'set'` reads a new password and applies the content rules. `'verify'` reads a
   * candidate to compare with a stored one (a login, a current password): any password
   * that could have been stored must get through, so no content rule applies (setting one
   * throws), only the decoding, the control-character check and `normalization`; `from`
   * then defaults to every body type and `limit` to 8192 bytes.
   * @default 'set'
   */
  readonly purpose?: 'set' | 'verify';
  /**
   * Hand-off mode, for a retrofit in front of a handler that still reads the password
   * itself: after validation `req.body` (or `req.query`, for a password from the query)
   * holds the validated, normalised password in its field, and the other password fields
   * too, as a body parser would have left them; on `req.query` they are non-enumerable, so
   * a logger that serialises `req.query` skips them. The URL is scrubbed all the same. With
   * `false` they leave `req.body` and `req.query`: only {@link validatedPassword} holds it.
   * @default false
   */
  readonly handOff?: boolean;
  /**
   * A field that must hold the same password again (`'repeat'`, `'passwordRepeat'`),
   * read where the password is and compared after normalisation: missing or different
   * → the same 422 `password.invalid`, with a `repeat_missing` or `repeat_mismatch` entry.
   * @default undefined (no repeat)
   */
  readonly repeat?: string;
  /**
   * Other fields that hold passwords, such as the current one on a change form: not
   * validated, but read where the password is, normalised, taken out of `req.body`,
   * `req.query` and the URL like it, and kept for {@link submittedPassword} and
   * {@link requireCurrentPassword}.
   * @default []
   */
  readonly secretFields?: readonly string[];
  /**
   * Read the body as the `text` password whatever its `Content-Type`, or without one:
   * for a route behind a proxy that forwards no `Content-Type` (the OpenStack metadata
   * proxy) and clients that send none (the cloudbase-init guest agent). Only when `from`
   * is `'text'` alone. A `charset` other than UTF-8 is still refused.
   * @default false
   */
  readonly anyContentType?: boolean;
}

interface BodyConfig {
  readonly field: string;
  readonly limit: number;
  /** The body types read; empty when only the query is. */
  readonly accept: ReadonlySet<PasswordBodyType>;
  /** `application/json or text/plain`, for the 415 detail. */
  readonly acceptedNames: string;
  readonly query: QueryConfig | undefined;
  readonly methods: ReadonlySet<string>;
  readonly readTimeout: number;
  readonly drainBytes: number;
  readonly drainMs: number;
  readonly handOff: boolean;
  readonly repeat: string | undefined;
  /** `repeat` and `secretFields`: the fields read besides the password. */
  readonly others: readonly string[];
  readonly anyContentType: boolean;
}

const optionKeys: KeysEnum<PasswordBodyOptions> = {
  ...passwordRuleKeys,
  field: true,
  from: true,
  query: true,
  limit: true,
  methods: true,
  readTimeout: true,
  drainBytes: true,
  drainMs: true,
  purpose: true,
  handOff: true,
  repeat: true,
  secretFields: true,
  anyContentType: true,
};

const FACTORY = 'passwordBody';
const MAX_LIMIT = 1024 * 1024;
const BODY_TYPES: Readonly<Record<string, PasswordBodyType>> = {
  'application/json': 'json',
  'application/x-www-form-urlencoded': 'form',
  'text/plain': 'text',
};
const MEDIA_TYPE_NAMES: Readonly<Record<PasswordBodyType, string>> = {
  json: 'application/json',
  form: 'application/x-www-form-urlencoded',
  text: 'text/plain',
};
const LOCATIONS: readonly PasswordLocation[] = ['json', 'form', 'text', 'query'];
const VERIFY_LIMIT = 8192;

const LONE_SURROGATE = /\p{Cs}/u;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the password from the request body, bounded, and checks it against the
 * content rules, in one middleware (findings 3, 5 and 6: the reviewed handler stored
 * any body as the password, checked its length in one place and chunked it in another,
 * and read the whole body before refusing it).
 *
 * The password is where `from` says: by default `{"password": "…"}` (`application/json`)
 * or the raw `text/plain` body; also `password=…` (`application/x-www-form-urlencoded`)
 * or, for legacy routes, `?password=…`. A body is UTF-8 only, at most `limit` bytes:
 * over it → 413 at once (by `Content-Length` before a byte is read, or while counting a
 * chunked body), and the connection is closed after a small bounded drain, so an
 * oversize upload is never read whole. Other types → 415; invalid UTF-8, invalid JSON or
 * percent-encoding, lone surrogates, a repeated form field → 400. Every failed content
 * rule is listed in one 422 `password.invalid` problem, never with the value. On success
 * the normalised password is in {@link validatedPassword}`(req)` and no longer in
 * `req.body`, `req.query` or the URL.
 *
 * @example
 * app.post('/servers/:id/password',
 *   passwordBody({ context: (req) => ['nova', req.params.id] }),
 *   hashAndStore({ store }),
 *   (_req, res) => { res.status(204).end(); });
 */
export function passwordBody(options: PasswordBodyOptions = {}): RequestHandler {
  assertKnownKeys(FACTORY, options, optionKeys);
  const verifying = resolvePurpose(options);
  const config = resolveConfig(options, verifying);
  const ruleOptions: PasswordRulesOptions = verifying
    ? {
        normalization: options.normalization,
        minLength: 1,
        maxLength: config.limit,
        maxBytes: config.limit,
        commonPasswords: false,
        composition: false,
      }
    : options;
  const rules = compilePasswordRules(FACTORY, ruleOptions, config.field, config.limit, missingText(config));
  // Once every option is known good: a middleware that throws at start-up reads nothing.
  config.query?.announce();
  const invalid = (count: number): string =>
    `The password was refused: ${count === 1 ? 'one rule' : `${count} rules`} failed; see errors.`;

  return asyncMiddleware(FACTORY, async (req: Request, res: Response, next: NextFunction) => {
    if (!config.methods.has(req.method)) {
      next();
      return;
    }
    const submission = await readSubmission(req, res, config);
    const { password, rest, others } = submission;
    if (typeof password === 'string') markSecret(req, password);
    // As body-parser marks it, so that a parser further on (the app's own) skips the
    // stream this one consumed instead of failing on it.
    if (submission.bodyRead) (req as { _body?: boolean })._body = true;
    // The password leaves req.body here: only validatedPassword(req) will hold it.
    if (rest !== undefined) req.body = rest;
    const normalized = new Map<string, string>();
    for (const [name, value] of others) {
      if (typeof value !== 'string') continue;
      markSecret(req, value);
      normalized.set(name, rules.normalize(value));
    }
    setSubmittedPasswords(req, normalized);
    const words = typeof password === 'string' ? await rules.contextWords(req) : [];
    const outcome = await rules.check(password, words);
    const errors = outcome.ok ? [] : [...outcome.errors];
    if (config.repeat !== undefined) {
      const again = normalized.get(config.repeat);
      if (again === undefined) {
        errors.push({
          field: config.repeat,
          code: 'repeat_missing',
          message: `The "${config.repeat}" field must repeat the password.`,
        });
      } else if (typeof password !== 'string' || again !== rules.normalize(password)) {
        errors.push({
          field: config.repeat,
          code: 'repeat_mismatch',
          message: `The "${config.repeat}" field is not the same password as "${config.field}".`,
        });
      }
    }
    if (!outcome.ok || errors.length > 0) {
      next(problem(422, 'password.invalid', invalid(errors.length), { errors }));
      return;
    }
    setValidatedPassword(req, outcome.password);
    if (config.handOff) handBack(req, config, submission, outcome.password, normalized);
    next();
  });
}

/** Hand-off mode: the fields back where the handler reads them, as a parser leaves them. */
function handBack(
  req: Request,
  config: BodyConfig,
  submission: Submission,
  password: string,
  others: ReadonlyMap<string, string>,
): void {
  const values = new Map<string, unknown>([[config.field, password]]);
  for (const [name, value] of submission.others) values.set(name, others.get(name) ?? value);
  switch (submission.location) {
    case 'text':
      req.body = password;
      break;
    case 'query':
      handQueryBack(
        req,
        new Map(
          [...values].map(([name, value]) => [name === config.field ? (config.query?.parameter ?? name) : name, String(value)]),
        ),
      );
      break;
    case 'json':
    case 'form': {
      const body: Record<string, unknown> = { ...(submission.rest ?? {}) };
      for (const [name, value] of values) body[name] = value;
      req.body = body;
      break;
    }
    case undefined:
      break;
  }
}

interface Submission {
  readonly password: unknown;
  /** What `req.body` becomes; `undefined` leaves it as it is (a password from the query). */
  readonly rest: Record<string, unknown> | undefined;
  /** The other password fields sent (`repeat`, `secretFields`), as submitted. */
  readonly others: ReadonlyMap<string, unknown>;
  /** Where the password was; `undefined` when nothing was sent. */
  readonly location: PasswordLocation | undefined;
  /** Whether the body stream was consumed here. */
  readonly bodyRead: boolean;
}

const NOTHING: ReadonlyMap<string, unknown> = new Map();

async function readSubmission(req: Request, res: Response, config: BodyConfig): Promise<Submission> {
  if (req.destroyed) throw aborted();
  const readsBody = config.accept.size > 0;
  if (readsBody && (req.readableEnded || req.readableDidRead || (req as { _body?: unknown })._body === true)) {
    throw problem(
      500,
      'password.misconfigured',
      'The password route is misconfigured: its body was read before passwordBody(); mount passwordBody() before any body parser on this route.',
    );
  }
  const declared = declaredLength(req, res, config);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const hasBody = chunked || (declared !== undefined && declared > 0);
  if (config.query !== undefined) {
    let found: QueryPasswords | undefined;
    try {
      found = readQueryPasswords(req, res, config.query, config.limit, config.others);
    } catch (error) {
      throw hasBody ? refuse(req, res, config, error as ProblemError) : error;
    }
    const fromQuery = found?.password;
    if (fromQuery !== undefined) {
      if (hasBody) {
        throw refuse(
          req,
          res,
          config,
          problem(
            400,
            'password.ambiguous',
            `The password was sent both in the request body and in the "${config.query.parameter}" query parameter; send it once, in the body.`,
          ),
        );
      }
      return { password: fromQuery, rest: undefined, others: found?.others ?? NOTHING, location: 'query', bodyRead: false };
    }
    if (!hasBody && found !== undefined) {
      // Only other fields came: no password, but the repeat or current one still counts.
      return { password: undefined, rest: readsBody ? {} : undefined, others: found.others, location: 'query', bodyRead: false };
    }
  }
  if (!hasBody)
    return { password: undefined, rest: readsBody ? {} : undefined, others: NOTHING, location: undefined, bodyRead: false };
  if (!readsBody) {
    throw refuse(
      req,
      res,
      config,
      problem(
        415,
        'body.unsupported_media_type',
        `This route takes no request body: the password goes in the "${config.query?.parameter ?? config.field}" query parameter.`,
      ),
    );
  }

  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    // A compressed body would make `limit` count compressed bytes; refusing it is
    // also what keeps a small upload from inflating into a large one.
    throw refuse(
      req,
      res,
      config,
      problem(415, 'body.encoding_unsupported', 'The request body must not be compressed: send it without Content-Encoding.', {
        headers: { 'Accept-Encoding': 'identity' },
      }),
    );
  }
  const type = bodyType(req, res, config);
  if (declared !== undefined && declared > config.limit) throw refuse(req, res, config, tooLarge(config.limit));

  const raw = await readBounded(req, res, declared, config);
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    throw problem(400, 'body.invalid_utf8', 'The request body is not valid UTF-8.');
  }
  if (text.length === 0) return { password: undefined, rest: {}, others: NOTHING, location: type, bodyRead: true };
  if (type === 'text') return { password: text, rest: {}, others: NOTHING, location: 'text', bodyRead: true };
  if (type === 'form') return formSubmission(text, config.field, config.others);
  return jsonSubmission(text, config.field, config.others);
}

function declaredLength(req: Request, res: Response, config: BodyConfig): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  // Node's parser already refuses malformed and conflicting lengths; this keeps the
  // check here if it is ever run leniently.
  if (!/^[0-9]{1,15}$/.test(header)) {
    throw refuse(req, res, config, problem(400, 'body.size_mismatch', 'The request has an invalid Content-Length.'));
  }
  return Number(header);
}

function bodyType(req: Request, res: Response, config: BodyConfig): PasswordBodyType {
  const parsed = parseContentType(req.headers['content-type']);
  const type = config.anyContentType ? 'text' : parsed === undefined ? undefined : BODY_TYPES[parsed.mediaType];
  if ((parsed === undefined && !config.anyContentType) || type === undefined || !config.accept.has(type)) {
    throw refuse(
      req,
      res,
      config,
      problem(415, 'body.unsupported_media_type', `The request body must be ${config.acceptedNames}, in UTF-8.`),
    );
  }
  if (parsed?.charset !== undefined && parsed.charset !== 'utf-8') {
    throw refuse(
      req,
      res,
      config,
      problem(415, 'body.charset_unsupported', 'The request body charset is not supported; send UTF-8.'),
    );
  }
  return type;
}

/** The media type and charset of a `Content-Type`, or `undefined` when it is malformed. */
function parseContentType(header: string | undefined): { mediaType: string; charset: string | undefined } | undefined {
  if (header === undefined) return undefined;
  const [head = '', ...parameters] = header.split(';');
  const mediaType = head.trim().toLowerCase();
  if (!MEDIA_TYPE.test(mediaType)) return undefined;
  let charset: string | undefined;
  for (const parameter of parameters) {
    const trimmed = parameter.trim();
    if (trimmed === '') continue;
    const match = MEDIA_TYPE_PARAMETER.exec(trimmed);
    if (match === null) return undefined;
    if (match[1]?.toLowerCase() === 'charset') {
      charset = (match[2] ?? match[3]?.replace(/\\(.)/g, '$1') ?? '').toLowerCase();
    }
  }
  return { mediaType, charset };
}

/**
 * The body, read by raw-body with the limit, or a rejection with a problem. A client
 * that stops sending gets 408 after `readTimeout`; one that disconnects gets 400
 * (which nobody reads): in no case does a partial body go on to the rules.
 */
function readBounded(req: Request, res: Response, declared: number | undefined, config: BodyConfig): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: ProblemError | undefined, body?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.removeListener('close', onClose);
      if (error === undefined && body !== undefined) resolve(body);
      else reject(error ?? aborted());
    };
    const timer = setTimeout(() => {
      settle(
        refuse(
          req,
          res,
          config,
          problem(408, 'body.timeout', `The request body did not arrive within ${config.readTimeout} ms.`),
        ),
      );
    }, config.readTimeout);
    // raw-body only listens for 'aborted', 'end' and 'error': a stream closed without
    // any of them would leave this promise pending for ever.
    const onClose = (): void => {
      settle(aborted());
    };
    req.once('close', onClose);
    getRawBody(req, { length: declared ?? null, limit: config.limit }, (error, body) => {
      settle(error === null || error === undefined ? undefined : fromRawBody(req, res, config, error), body);
    });
  });
}

function fromRawBody(req: Request, res: Response, config: BodyConfig, error: getRawBody.RawBodyError): ProblemError {
  switch (error.type) {
    case 'entity.too.large':
      return refuse(req, res, config, tooLarge(config.limit));
    case 'request.aborted':
      return aborted();
    case 'request.size.invalid':
      return refuse(req, res, config, problem(400, 'body.size_mismatch', 'The request body does not match its Content-Length.'));
    default:
      return problem(500, 'password.misconfigured', 'The request body could not be read: another middleware consumed it.');
  }
}

function tooLarge(limit: number): ProblemError {
  return problem(413, 'body.too_large', `The request body is larger than the limit of ${limit} bytes.`);
}

function aborted(): ProblemError {
  return problem(400, 'body.aborted', 'The request body was not received in full.');
}

function jsonSubmission(text: string, field: string, otherFields: readonly string[]): Submission {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text it failed on, which holds the password.
    throw problem(400, 'body.parse_failed', 'The request body is not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw problem(400, 'body.not_object', `The JSON body must be an object with a "${field}" field.`);
  }
  if (hasLoneSurrogate(parsed)) {
    // "\uD800" is valid JSON but no Unicode character: it cannot be encoded in UTF-8,
    // normalised or hashed consistently, so the body is refused like invalid UTF-8.
    throw problem(
      400,
      'body.lone_surrogate',
      'The JSON body contains an escaped lone surrogate (such as \\uD800), which is not a Unicode character.',
    );
  }
  const object = parsed as Record<string, unknown>;
  const password = Object.hasOwn(object, field) ? object[field] : undefined;
  const rest: Record<string, unknown> = { ...object };
  delete rest[field];
  const others = new Map<string, unknown>();
  for (const name of otherFields) {
    if (!Object.hasOwn(rest, name)) continue;
    others.set(name, rest[name]);
    delete rest[name];
  }
  return { password, rest, others, location: 'json', bodyRead: true };
}

function formSubmission(text: string, field: string, otherFields: readonly string[]): Submission {
  let decoded: ReturnType<typeof decodePairs>;
  try {
    decoded = decodePairs(text, field, true);
  } catch (error) {
    if (!(error instanceof UrlencodedError)) throw error;
    throw error.fault === 'parse_failed'
      ? problem(
          400,
          'body.parse_failed',
          'The request body is not valid application/x-www-form-urlencoded: it has a malformed percent-encoding.',
        )
      : problem(400, 'body.invalid_utf8', 'The request body is not valid UTF-8 once percent-decoded.');
  }
  if (decoded.values.length > 1) {
    // Which one the user meant is a guess, and frameworks guess differently (first,
    // last, an array): refusing is the only answer that is the same everywhere.
    throw problem(400, 'body.repeated_field', `The form has the "${field}" field more than once; send it once.`);
  }
  // fromEntries defines own properties, so a "__proto__" field stays a plain field.
  const rest: Record<string, unknown> = Object.fromEntries(groupValues(decoded.others));
  const others = new Map<string, unknown>();
  for (const name of otherFields) {
    if (!Object.hasOwn(rest, name)) continue;
    if (Array.isArray(rest[name])) {
      throw problem(400, 'body.repeated_field', `The form has the "${name}" field more than once; send it once.`);
    }
    others.set(name, rest[name]);
    delete rest[name];
  }
  return { password: decoded.values[0], rest, others, location: 'form', bodyRead: true };
}

/** Other form fields as `req.body` holds them: a string, or every value of a repeated one. */
function groupValues(pairs: readonly [string, string][]): [string, string | string[]][] {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of pairs) {
    const values = grouped.get(name);
    if (values === undefined) grouped.set(name, [value]);
    else values.push(value);
  }
  return [...grouped].map(([name, values]) => [name, values.length === 1 ? (values[0] ?? '') : values]);
}

function hasLoneSurrogate(value: unknown): boolean {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === 'string') {
      if (LONE_SURROGATE.test(item)) return true;
    } else if (item !== null && typeof item === 'object') {
      for (const [key, inner] of Object.entries(item)) {
        if (LONE_SURROGATE.test(key)) return true;
        pending.push(inner);
      }
    }
  }
  return false;
}

/**
 * Prepares the answer to a request refused while its body may still be arriving, and
 * returns `error` for `next`: the answer is the connection's last, after a drain bounded
 * by `drainBytes` and `drainMs` (see {@link closeAfterAnswer}).
 */
function refuse(req: Request, res: Response, config: BodyConfig, error: ProblemError): ProblemError {
  closeAfterAnswer(req, res, config);
  return error;
}

function resolvePurpose(options: PasswordBodyOptions): boolean {
  const purpose = options.purpose ?? 'set';
  if (purpose !== 'set' && purpose !== 'verify') {
    throw optionError(FACTORY, 'purpose', `must be 'set' or 'verify', got ${describeOption(purpose)}.`);
  }
  if (purpose === 'verify') {
    const rule = Object.keys(passwordRuleKeys).find(
      (key) => key !== 'normalization' && (options as Record<string, unknown>)[key] !== undefined,
    );
    if (rule !== undefined) {
      throw optionError(
        FACTORY,
        rule,
        "is a content rule, and purpose 'verify' applies none: a password stored before the rule existed must still verify. Remove it.",
      );
    }
  }
  return purpose === 'verify';
}

function resolveConfig(options: PasswordBodyOptions, verifying: boolean): BodyConfig {
  const field = options.field ?? 'password';
  if (typeof field !== 'string' || field.length === 0) {
    throw optionError(FACTORY, 'field', 'must be a non-empty string, such as "password".');
  }
  const limit = integerOption(FACTORY, 'limit', options.limit, 1, MAX_LIMIT) ?? (verifying ? VERIFY_LIMIT : 1020);
  const locations = resolveLocations(options, verifying);
  assertBoolean(FACTORY, 'handOff', options.handOff);
  const repeat = options.repeat;
  if (repeat !== undefined && (typeof repeat !== 'string' || repeat.length === 0)) {
    throw optionError(FACTORY, 'repeat', 'must be a non-empty field name, such as "passwordRepeat".');
  }
  const secretFields: unknown = options.secretFields ?? [];
  if (!Array.isArray(secretFields) || secretFields.some((name) => typeof name !== 'string' || name.length === 0)) {
    throw optionError(FACTORY, 'secretFields', 'must be an array of non-empty field names, such as ["current"].');
  }
  const others = [...(repeat === undefined ? [] : [repeat]), ...(secretFields as string[])];
  const named = [field, ...others];
  const twice = named.find((name, index) => named.indexOf(name) !== index);
  if (twice !== undefined) {
    throw optionError(
      FACTORY,
      repeat === twice ? 'repeat' : 'secretFields',
      `names "${twice}" twice: the password, its repeat and the secret fields must be different fields.`,
    );
  }
  if (others.length > 0 && !['json', 'form', 'query'].some((location) => locations.has(location as PasswordLocation))) {
    throw optionError(
      FACTORY,
      repeat === undefined ? 'secretFields' : 'repeat',
      'needs "json", "form" or "query" in "from": a text body holds one password only.',
    );
  }
  const readsQuery = locations.has('query');
  if (options.query !== undefined && !readsQuery) {
    throw optionError(FACTORY, 'query', 'is set but "from" does not list "query": add it to "from", or remove "query".');
  }
  const accept = new Set([...locations].filter((location): location is PasswordBodyType => location !== 'query'));
  const methods = resolveMethods(options.methods, readsQuery);
  const query = readsQuery ? resolveQuery(FACTORY, options.query, field) : undefined;
  assertBoolean(FACTORY, 'anyContentType', options.anyContentType);
  const anyContentType = options.anyContentType ?? false;
  if (anyContentType && (locations.size !== 1 || !accept.has('text'))) {
    throw optionError(FACTORY, 'anyContentType', 'needs "from" to be "text" alone: any body is then the password.');
  }
  return {
    anyContentType,
    field,
    limit,
    accept,
    acceptedNames: [...accept].map((type) => MEDIA_TYPE_NAMES[type]).join(' or '),
    query,
    methods,
    readTimeout: integerOption(FACTORY, 'readTimeout', options.readTimeout, 1, 600_000) ?? 10_000,
    drainBytes: integerOption(FACTORY, 'drainBytes', options.drainBytes, 0, 16 * 1024 * 1024) ?? DEFAULT_DRAIN.drainBytes,
    drainMs: integerOption(FACTORY, 'drainMs', options.drainMs, 0, 60_000) ?? DEFAULT_DRAIN.drainMs,
    handOff: options.handOff ?? false,
    repeat,
    others,
  };
}

function resolveLocations(options: PasswordBodyOptions, verifying: boolean): ReadonlySet<PasswordLocation> {
  const option: unknown = options.from ?? (verifying ? ['json', 'form', 'text'] : ['json', 'text']);
  const list: unknown[] = typeof option === 'string' ? [option] : Array.isArray(option) ? option : [];
  if (list.length === 0 || !list.every((location) => (LOCATIONS as readonly unknown[]).includes(location))) {
    throw optionError(
      FACTORY,
      'from',
      `must be one of, or a non-empty array of, ${LOCATIONS.map((l) => `"${l}"`).join(', ')}; got ${describeOption(option)}.`,
    );
  }
  return new Set(list as PasswordLocation[]);
}

function describeOption(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(describeOption).join(', ')}]`;
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/** What the `missing` rule says: where the password should have been. */
function missingText(config: BodyConfig): string {
  const places: string[] = [];
  if (config.accept.has('json') || config.accept.has('form')) places.push(`the body is empty or has no "${config.field}" field`);
  else if (config.accept.has('text')) places.push('the body is empty');
  if (config.query !== undefined) places.push(`the query has no "${config.query.parameter}" parameter`);
  return `No password was sent: ${places.join(', and ')}.`;
}

function resolveMethods(option: readonly string[] | undefined, readsQuery: boolean): ReadonlySet<string> {
  const methods = option ?? (readsQuery ? ['GET', 'POST', 'PUT', 'PATCH'] : ['POST', 'PUT', 'PATCH']);
  if (!Array.isArray(methods) || methods.length === 0) {
    throw optionError(FACTORY, 'methods', 'must be a non-empty array of method names, such as ["POST"].');
  }
  for (const method of methods) {
    if (typeof method !== 'string' || !TOKEN.test(method) || method !== method.toUpperCase()) {
      // Node only parses methods upper-case: "post" would never match and the body
      // would silently go unchecked.
      throw optionError(FACTORY, 'methods', `has ${JSON.stringify(method)}, which is not an upper-case method name.`);
    }
  }
  const set = new Set(methods);
  if (set.has('GET')) set.add('HEAD');
  return set;
}
