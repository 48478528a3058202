import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import { closeAfterAnswer, DEFAULT_DRAIN, hasUnreadBody } from '../internal/bounded-close';
import { isOwnProblem } from '../internal/errors';
import type { ProblemField } from '../internal/errors';
import { mappedStatus, resolveFormat, resolveStatusMap, statusTitle } from './error-formats';
import type { ErrorDescription, ErrorFormat, FormattedError, StatusMap } from './error-formats';
import { DEFAULT_KEPT_KEYS, DEFAULT_REDACTED_KEYS, keyRedaction, safeJson } from '../internal/json';
import { assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { scrubSecrets } from '../internal/secrets';
import { reportRefusal } from './security-events';
import { MEDIA_TYPE } from '../internal/syntax';

/** What the error handler logs for a server-side failure: never a password or a hash. */
export interface ProblemLogEntry {
  readonly status: number;
  readonly code: string;
  readonly method: string;
  readonly path: string;
  /** The error's stack (or message), with any secret this request carried replaced. */
  readonly error: string;
}

/** Options of {@link problemHandler}. */
export interface ProblemHandlerOptions {
  /**
   * Prefix of each problem's `type` URI; the dotted code (`method.not_allowed`) follows it.
   * Point it at your own documentation if you have some.
   * @default 'urn:express-password-guard:'
   */
  readonly typeBase?: string;
  /**
   * Called for every 5xx, with the stack scrubbed of this request's secrets; `false`
   * logs nothing. A `503 password.busy` (the hash limiter refusing work under load) is
   * not a fault: those are counted and reported in one entry, with no stack, at most
   * once per minute.
   * @default an entry written with `console.error`
   */
  readonly log?: ((entry: ProblemLogEntry) => void) | false;
  /**
   * How errors are written, so the API keeps its wire contract: `'problem+json'`,
   * `'openstack-compute'` (`{"itemNotFound": {"code": 404, "message": …}}`), `'text'`,
   * or your own formatter. Redaction, `no-store` and the generic 5xx detail hold in
   * every format. See docs/error-formats.md.
   * @default 'problem+json'
   */
  readonly format?: ErrorFormat;
  /**
   * Maps the status an error was raised with to the one sent, for routes behind a proxy
   * that passes only some statuses (see `proxyStatuses`). A mapping that gives anything
   * but 400 to 599 sends 500.
   * @default undefined (statuses are sent as raised)
   */
  readonly statusMap?: StatusMap;
}

/** The RFC 9457 body this handler writes. */
export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly errors?: readonly ProblemField[];
}

const optionKeys: KeysEnum<ProblemHandlerOptions> = { typeBase: true, log: true, format: true, statusMap: true };

interface KnownParserError {
  readonly status: number;
  readonly code: string;
  readonly detail: (error: Record<string, unknown>) => string;
}

// body-parser's and raw-body's messages can quote the body (JSON.parse echoes the
// text it failed on), so their errors get fixed texts of ours instead.
const PARSER_ERRORS: Readonly<Record<string, KnownParserError>> = {
  'entity.too.large': {
    status: 413,
    code: 'body.too_large',
    detail: (e) =>
      typeof e['limit'] === 'number'
        ? `The request body is larger than the limit of ${e['limit']} bytes.`
        : 'The request body is too large.',
  },
  'entity.parse.failed': { status: 400, code: 'body.parse_failed', detail: () => 'The request body could not be parsed.' },
  'entity.verify.failed': { status: 403, code: 'body.verify_failed', detail: () => 'The request body failed verification.' },
  'charset.unsupported': {
    status: 415,
    code: 'body.charset_unsupported',
    detail: () => 'The request body charset is not supported; send UTF-8.',
  },
  'encoding.unsupported': {
    status: 415,
    code: 'body.encoding_unsupported',
    detail: () => 'The request body content encoding is not supported.',
  },
  'request.aborted': { status: 400, code: 'body.aborted', detail: () => 'The request body was not received in full.' },
  'request.size.invalid': {
    status: 400,
    code: 'body.size_mismatch',
    detail: () => 'The request body does not match its Content-Length.',
  },
  'parameters.too.many': {
    status: 413,
    code: 'body.too_many_parameters',
    detail: () => 'The request body has too many parameters.',
  },
};

const INTERNAL_DETAIL = 'The server could not complete the request.';

/**
 * The one place that writes an error body: mount it last. Turns this package's errors,
 * body-parser's errors and any other error into an RFC 9457 `application/problem+json`
 * body with `type`, `title`, `status`, `detail`, a stable `code` and, where there are
 * several faults, `errors`, or into the API's own format (`format`), with the statuses
 * a proxy in front passes (`statusMap`). A 5xx never shows its message or stack; every
 * error answer is `no-store` and `nosniff`. An error answered
 * before the request body was read closes the connection after a bounded drain (64 KiB,
 * 2 s), so a refused upload is never read whole.
 *
 * @example
 * app.use(problemHandler({ typeBase: 'https://docs.example.com/problems/' }));
 */
export function problemHandler(options: ProblemHandlerOptions = {}): ErrorRequestHandler {
  assertKnownKeys('problemHandler', options, optionKeys);
  const typeBase = options.typeBase ?? 'urn:express-password-guard:';
  if (typeof typeBase !== 'string') throw optionError('problemHandler', 'typeBase', 'must be a string.');
  const log = options.log === undefined ? defaultLog : options.log;
  if (log !== false && typeof log !== 'function') {
    throw optionError('problemHandler', 'log', 'must be a function or false.');
  }
  const format = resolveFormat('problemHandler', options.format);
  const mapStatus = resolveStatusMap('problemHandler', options.statusMap);
  const redacted = keyRedaction({ words: DEFAULT_REDACTED_KEYS, keep: DEFAULT_KEPT_KEYS });
  const overload = overloadCounter();

  return function problemHandler(error: unknown, req: Request, res: Response, next: NextFunction): void {
    if (res.headersSent) {
      next(error);
      return;
    }
    const { body, headers } = describe(error, req, typeBase);
    const status = mappedStatus(mapStatus, body.status);
    reportRefusal(req, error, status, body.code);
    if (body.status === 503 && body.code === 'password.busy') {
      if (log !== false) overload.refused(req, log);
    } else if ((body.status >= 500 || status >= 500) && log !== false) {
      log({
        status,
        code: body.code,
        method: req.method,
        path: req.originalUrl.split('?', 1)[0] ?? '/',
        error: scrubSecrets(req, errorText(error)),
      });
    }
    for (const [name, value] of Object.entries(headers)) {
      // A challenge belongs to a 401 only: mapped to another status it would invite a retry.
      if (status !== 401 && name.toLowerCase() === 'www-authenticate') continue;
      res.setHeader(name, value);
    }
    const description: ErrorDescription = {
      status,
      raisedStatus: body.status,
      code: body.code,
      type: body.type,
      title: statusTitle(status),
      detail: body.detail,
      ...(body.errors === undefined ? {} : { errors: body.errors }),
    };
    let formatted: FormattedError;
    try {
      formatted = format(description, req);
    } catch (formatError) {
      // A formatter that throws must not leave the error unanswered nor leak it.
      if (log !== false) {
        log({
          status: 500,
          code: 'server.error',
          method: req.method,
          path: req.originalUrl.split('?', 1)[0] ?? '/',
          error: scrubSecrets(req, errorText(formatError)),
        });
      }
      formatted = { contentType: 'text/plain', body: `${status} ${statusTitle(status)}\n` };
    }
    // A refusal before the body was read (401, 404, 405, 406…) must not let Node read the
    // whole upload afterwards to keep the connection: the answer closes it instead.
    if (hasUnreadBody(req)) closeAfterAnswer(req, res, DEFAULT_DRAIN);
    const text =
      typeof formatted.body === 'string' ? scrubSecrets(req, formatted.body) : (safeJson(formatted.body, redacted) ?? '');
    res.setHeader('Content-Type', withCharset(formatted.contentType));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'no-store');
    res.status(status);
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}

function withCharset(contentType: unknown): string {
  // A formatter's mistake must not become a header injection or a sniffed body.
  if (typeof contentType !== 'string') return 'application/octet-stream';
  const trimmed = contentType.trim();
  if (/[\r\n]/.test(trimmed)) return 'application/octet-stream';
  const mediaType = trimmed.split(';', 1)[0]?.trim() ?? '';
  if (!MEDIA_TYPE.test(mediaType)) return 'application/octet-stream';
  return /;\s*charset=/i.test(trimmed) ? trimmed : `${trimmed}; charset=utf-8`;
}

function describe(error: unknown, req: Request, typeBase: string): { body: ProblemBody; headers: Record<string, string> } {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const rawStatus = fields['status'] ?? fields['statusCode'];
  let status = typeof rawStatus === 'number' && rawStatus >= 400 && rawStatus <= 599 ? rawStatus : 500;
  const rawType = typeof fields['type'] === 'string' ? fields['type'] : undefined;
  let code: string;
  let detail: string;
  let errors: readonly ProblemField[] | undefined;
  const parserError = rawType === undefined ? undefined : PARSER_ERRORS[rawType];

  if (isOwnProblem(error)) {
    code = error.type;
    // A 500 of ours explains a wiring fault to the operator (in the log), not to the
    // client; a 503 says when to come back.
    detail = status === 500 ? INTERNAL_DETAIL : error.message;
    errors = error.errors;
  } else if (parserError !== undefined) {
    status = parserError.status;
    code = parserError.code;
    detail = parserError.detail(fields);
  } else if (status < 500 && fields['expose'] === true && typeof fields['message'] === 'string') {
    code = rawType ?? `http.${status}`;
    detail = scrubSecrets(req, fields['message']);
  } else {
    code = status >= 500 ? 'server.error' : `http.${status}`;
    detail = status >= 500 ? INTERNAL_DETAIL : (STATUS_CODES[status] ?? 'Error');
  }

  const headers: Record<string, string> = {};
  const rawHeaders = fields['headers'];
  // Any status for the package's own problems: a 503 needs its Retry-After.
  if ((status < 500 || isOwnProblem(error)) && typeof rawHeaders === 'object' && rawHeaders !== null) {
    for (const [name, value] of Object.entries(rawHeaders)) {
      if (typeof value === 'string') headers[name] = value;
    }
  }
  const body: ProblemBody = {
    type: typeBase + code,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(errors !== undefined && errors.length > 0 ? { errors } : {}),
  };
  return { body, headers };
}

function errorText(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return `non-error value thrown: ${typeof error}`;
}

function defaultLog(entry: ProblemLogEntry): void {
  console.error(`express-password-guard: ${entry.status} ${entry.code} on ${entry.method} ${entry.path}\n${entry.error}`);
}

const OVERLOAD_LOG_INTERVAL_MS = 60_000;

/**
 * Counts busy refusals and logs them as one entry per interval: a flood of 503s is the
 * limiter doing its job, and a stack trace per refusal would flood the log with it.
 */
function overloadCounter(): { refused(req: Request, log: (entry: ProblemLogEntry) => void): void } {
  let lastLogged = -Infinity;
  let unlogged = 0;
  return {
    refused(req, log) {
      unlogged++;
      const now = Date.now();
      if (now - lastLogged < OVERLOAD_LOG_INTERVAL_MS) return;
      const since = lastLogged === -Infinity ? '' : ` in the last ${Math.round((now - lastLogged) / 1000)} s`;
      log({
        status: 503,
        code: 'password.busy',
        method: req.method,
        path: req.originalUrl.split('?', 1)[0] ?? '/',
        error: `${unlogged} request${unlogged === 1 ? '' : 's'} refused${since}: the hash limiter was full (overload, not a fault).`,
      });
      lastLogged = now;
      unlogged = 0;
    },
  };
}
