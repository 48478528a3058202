import { METHODS } from 'node:http';
import type BetterSqlite3 from 'better-sqlite3';
import fc from 'fast-check';
import { demoSqliteStore } from '../../examples/demo-app';
import { defaultHashLimiter } from '../../lib';
import type { SecurityEvent } from '../../lib';
import type { Demo } from '../../examples/demo-app';
import { openTestDemo } from '../helpers/demo';
import { sign } from '../helpers/instance-identity';
import type { TestDemo } from '../helpers/demo';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';
import { header, parseResponses } from '../helpers/http-message';
import type { RawResponse } from '../helpers/http-message';
import { exchange, listen, until, write } from '../helpers/raw-http';
import type { Listening } from '../helpers/raw-http';

// Generated hostile requests, written byte for byte on a socket, against the whole demo
// chain (encoder, method guard, ownership, body reader, validator, storer, verifier,
// problem handler) on a real SQLite file. FUZZ_RUNS sets the cases per Express version
// (a long run: FUZZ_RUNS=50000), FUZZ_SEED replays a failure fast-check printed.

const RUNS = Number(process.env['FUZZ_RUNS'] ?? '1500');
const SEED = Number(process.env['FUZZ_SEED'] ?? '20261129');
const METADATA_SECRET = 'fuzz-metadata-secret';
const PEPPER = 'fuzz-pepper-0123456789abcdef0123456789';
const BODY_LIMIT = 1020;

const TOKENS = { alice: 'alice-token', bob: 'bob-token', admin: 'admin-token' } as const;
type UserName = keyof typeof TOKENS;
const SERVERS = ['srv-alice', 'srv-bob'] as const;
const OWNER: Readonly<Record<string, UserName>> = { 'srv-alice': 'alice', 'srv-bob': 'bob' };

const hashes = defaultHashLimiter();

/** Who the request claims to be, as header lines, and whom the demo would accept. */
interface Identity {
  readonly lines: readonly string[];
  readonly user: UserName | undefined;
  readonly instance: string | undefined;
}

const identity: fc.Arbitrary<Identity> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom<UserName>('alice', 'bob', 'admin').map((user) => ({
      lines: [`Authorization: Bearer ${TOKENS[user]}`],
      user,
      instance: undefined,
    })),
  },
  // Node trims the value: still alice.
  {
    weight: 1,
    arbitrary: fc.constant<Identity>({ lines: ['Authorization: Bearer alice-token \t'], user: 'alice', instance: undefined }),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...SERVERS).map((id) => ({
      lines: [
        `X-Instance-ID: ${id}`,
        `X-Instance-ID-Signature: ${sign(id, METADATA_SECRET)}`,
        `X-Tenant-ID: ${OWNER[id] ?? ''}-project`,
      ],
      user: undefined,
      instance: id,
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        [],
        ['Authorization: Bearer mallory-token'],
        ['Authorization: Basic YWxpY2U6YWxpY2UtdG9rZW4='],
        ['Authorization: bearer alice-token'],
        ['Authorization: Bearer  alice-token'],
        [`X-Instance-ID: srv-alice`, `X-Instance-ID-Signature: ${sign('srv-bob', METADATA_SECRET)}`],
        [`X-Instance-ID: srv-alice`, `X-Instance-ID-Signature: ${sign('srv-alice', METADATA_SECRET).toUpperCase()}`],
        [`X-Instance-ID: srv-bob`, `X-Instance-ID-Signature: ${sign('srv-bob', METADATA_SECRET).slice(0, 63)}`],
        [`X-Instance-ID: srv-missing`, `X-Instance-ID-Signature: ${sign('srv-missing', METADATA_SECRET)}`],
        // Two ids: Node joins them with ", ", which the signature does not cover.
        [`X-Instance-ID: srv-alice`, `X-Instance-ID: srv-bob`, `X-Instance-ID-Signature: ${sign('srv-alice', METADATA_SECRET)}`],
      )
      .map((lines) => ({ lines, user: undefined, instance: undefined })),
  },
);

const markup = ['<script>window.__pwned=1</script>', '"><img src=x onerror=alert(1)>', '</script>', '\u2028', '&amp;'];

const path: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...SERVERS, 'srv-missing', 'srv-alice/..', '..%2Fsrv-bob', 'SRV-ALICE', 'srv%2Dalice', '%73rv-bob', ''),
        fc.constantFrom(
          '/password',
          '/password/',
          '/password/verify',
          '/PASSWORD',
          '/password//verify',
          '/password?x=1',
          '/password#f',
        ),
      )
      .map(([id, rest]) => `/servers/${id}${rest}`),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '/openstack/latest/password',
      '/openstack/latest/password/',
      '/openstack/latest/password/verify',
      '/OpenStack/latest/password',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '/',
      '/servers',
      '*',
      'http://127.0.0.1/servers/srv-alice/password',
      '//servers/srv-alice/password',
      '/servers/srv-alice/password/../../x',
    ),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...markup), fc.boolean(), fc.constantFrom('/', '/servers/', '/servers/srv-alice/password?q=', '/x/'))
      .map(([text, encode, prefix]) => prefix + (encode ? encodeURIComponent(text) : text.replace(/ /g, '%20'))),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '/%',
      '/%ZZ',
      '/%00',
      '/servers/%E0%A4%A/password',
      '/servers/%C0%AF/password',
      '/servers/%FF/password',
      '/\u00ff\u00fe',
      '/a\tb',
      '/servers/srv-alice/password\u0000',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => `/${s}`) },
);

/** A password candidate; `canary` ones are unique, so any trace of them in a response is a leak. */
const password: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 12, maxLength: 16 })
      .map((hex) => `canary ${hex} plum orchard`),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 0, maxLength: 90 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 0, maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      'password',
      'correct horse battery staple',
      'x'.repeat(73),
      '\u0000\u0001\u001f\u007f control',
      'e\u0301 decomposed and composed \u00e9 canary 0001',
      '<script>window.__pwned=1</script> canary 0002',
      '\ud83d\ude00'.repeat(19),
    ),
  },
);

interface Body {
  readonly bytes: Buffer;
  /** The password the body submits, if it submits one as a string. */
  readonly password: string | undefined;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');
const nested = (depth: number, inner: string): string => '['.repeat(depth) + inner + ']'.repeat(depth);

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 4, arbitrary: password.map((p) => ({ bytes: json({ password: p }), password: p })) },
  { weight: 2, arbitrary: password.map((p) => ({ bytes: Buffer.from(p, 'utf8'), password: p })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(password, fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'))
      .map(([p, key]) => ({
        bytes: Buffer.from(`{"${key}":{"password":${JSON.stringify(p)},"admin":true},"password":${JSON.stringify(p)}}`, 'utf8'),
        password: p,
      })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '{"__proto__":{"password":"canary proto only 77"}}',
        '{"constructor":{"prototype":{"password":"canary ctor only 78"}}}',
        '{"password":["canary array 79"]}',
        '{"password":1e308}',
        '{"password":-0}',
        '{"password":123456789012345678901234567890}',
        '{"password":null}',
        '{"password":true}',
        '{"password":{"toString":"canary obj 80"}}',
        '{"password":"\\ud800 canary lone 81"}',
        '{"password":"a","password":"canary dup key 82"}',
        '[]',
        'null',
        '"canary bare string 83"',
        '{"password":"canary trailing 84"} junk',
        '{',
        '',
        nested(400, '"canary deep 85"'),
        `{"password":"canary deep field 86","x":${nested(450, '1')}}`,
        `{"password":"${'\\u0000'.repeat(10)}canary escapes 87"}`,
      )
      .map((text) => ({ bytes: Buffer.from(text, 'utf8'), password: undefined })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        [0xff],
        [0xc3, 0x28],
        [0xe2, 0x82],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0xef, 0xbb, 0xbf],
      )
      .chain((bad) =>
        fc.constantFrom(
          {
            bytes: Buffer.concat([Buffer.from('{"password":"canary bad utf8 '), Buffer.from(bad), Buffer.from(' 88"}')]),
            password: undefined,
          },
          { bytes: Buffer.concat([Buffer.from('canary raw bad utf8 89 '), Buffer.from(bad)]), password: undefined },
        ),
      ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: BODY_LIMIT - 20, max: 300_000 }).map((size) => {
      const p = `canary huge ${size}`;
      const text = JSON.stringify({ password: p, pad: 'x'.repeat(Math.max(0, size - p.length - 30)) });
      return { bytes: Buffer.from(text, 'utf8'), password: p };
    }),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ bytes: Buffer.from(bytes), password: undefined })),
  },
  { weight: 1, arbitrary: fc.constant({ bytes: Buffer.alloc(0), password: undefined }) },
);

const contentType: fc.Arbitrary<readonly string[]> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.constantFrom(
      ['application/json'],
      ['application/json; charset=utf-8'],
      ['text/plain'],
      ['text/plain; charset=UTF-8'],
      ['text/plain; charset="utf-8"'],
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      [],
      ['application/json; charset=latin1'],
      ['application/json; charset=utf-16'],
      ['text/plain; charset=iso-8859-1'],
      ['application/x-www-form-urlencoded'],
      ['multipart/form-data; boundary=x'],
      ['text/html'],
      ['application/json;;;'],
      ['application/json; charset'],
      ['APPLICATION/JSON'],
      ['application/json', 'text/plain'],
      ['text/plain', 'application/json; charset=latin1'],
      ['application/problem+json'],
      ['*/*'],
      ['application/json; charset=utf-8; charset=latin1'],
      ['<script>alert(1)</script>'],
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).map((s) => [s.replace(/[\r\n]/g, '')]) },
  // Printable but malformed: reaches the app rather than the parser.
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(...'ab/;=" \\,*+-jsonplaintextcharset'), maxLength: 40 }).map((s) => [s]),
  },
);

/** How the body is framed: honest, missing, lying, chunked or contradictory. */
type Framing = 'length' | 'none' | 'short' | 'long' | 'chunked' | 'both' | 'bad-length' | 'two-lengths';
const framing: fc.Arbitrary<Framing> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Framing>('length') },
  { weight: 1, arbitrary: fc.constantFrom<Framing>('none', 'short', 'long', 'chunked', 'both', 'bad-length', 'two-lengths') },
);

const extraHeaders: fc.Arbitrary<readonly string[]> = fc.array(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.constantFrom(
        'Accept: text/html',
        'Accept: application/json',
        'Accept: */*',
        'Accept: application/problem+json',
        'Accept: image/png, text/*;q=0.9',
        'Accept-Charset: iso-8859-1',
        'Content-Encoding: gzip',
        'Content-Encoding: identity',
        'Expect: 100-continue',
        'Origin: https://evil.example',
        'X-Forwarded-For: 1.2.3.4',
        'X-HTTP-Method-Override: DELETE',
        'Upgrade: websocket',
        'Cookie: password=canary cookie 90',
        'Transfer-Encoding: identity',
      ),
    },
    // Node's parser refuses more than 16 KiB of headers with a 431.
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 20_000 }).map((n) => `X-Big: ${'a'.repeat(n)}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('Accept', 'Content-Type', 'Authorization', 'X-Note'),
          fc.string({ unit: 'binary-ascii', maxLength: 30 }),
        )
        .map(([name, value]) => `${name}: ${value.replace(/[\r\n]/g, '')}`),
    },
  ),
  { maxLength: 2 },
);

const method: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'POST', 'DELETE', 'PUT', 'HEAD', 'OPTIONS') },
  { weight: 3, arbitrary: fc.constantFrom(...METHODS) },
  { weight: 1, arbitrary: fc.constantFrom('get', 'FOO', 'P0ST', 'POST ', '') },
);

interface Case {
  readonly method: string;
  readonly path: string;
  readonly identity: Identity;
  readonly contentType: readonly string[];
  readonly extra: readonly string[];
  readonly body: Body;
  readonly framing: Framing;
  /** Empty the password table first, so that sets can succeed again. */
  readonly reset: boolean;
}

const hostileCase: fc.Arbitrary<Case> = fc.record({
  method,
  path,
  identity,
  contentType,
  extra: extraHeaders,
  body,
  framing,
  reset: fc.nat(5).map((n) => n === 0),
});

// Well-formed requests on the password routes, by the owner and by others, with hostile
// bodies only: these reach the validator, the storer, the verifier and the store.
const wellFormedCase: fc.Arbitrary<Case> = fc
  .record({
    target: fc.constantFrom(...SERVERS),
    who: fc.constantFrom('owner', 'owner', 'other', 'admin', 'instance', 'other-instance'),
    action: fc.constantFrom('set', 'set', 'set', 'get', 'delete', 'verify', 'verify'),
    text: fc.boolean(),
    body,
    reset: fc.nat(5).map((n) => n === 0),
  })
  .map(({ target, who, action, text, body: b, reset }): Case => {
    const other = target === 'srv-alice' ? 'srv-bob' : 'srv-alice';
    const owner = OWNER[target] ?? 'alice';
    const users: Readonly<Record<string, UserName>> = { owner, other: owner === 'alice' ? 'bob' : 'alice', admin: 'admin' };
    const user = users[who];
    const instance = who === 'instance' ? target : who === 'other-instance' ? other : undefined;
    const lines =
      user !== undefined
        ? [`Authorization: Bearer ${TOKENS[user]}`]
        : [
            `X-Instance-ID: ${instance ?? ''}`,
            `X-Instance-ID-Signature: ${sign(instance ?? '', METADATA_SECRET)}`,
            `X-Tenant-ID: ${OWNER[instance ?? ''] ?? ''}-project`,
          ];
    const path =
      instance !== undefined
        ? '/openstack/latest/password'
        : `/servers/${target}/password${action === 'verify' ? '/verify' : ''}`;
    const method = action === 'get' ? 'GET' : action === 'delete' ? 'DELETE' : 'POST';
    return {
      method,
      path,
      identity: { lines, user, instance },
      contentType: method === 'POST' ? [text ? 'text/plain; charset=utf-8' : 'application/json'] : [],
      extra: [],
      body: method === 'POST' ? b : { bytes: Buffer.alloc(0), password: undefined },
      framing: 'length',
      reset,
    };
  });

const fuzzCase: fc.Arbitrary<Case> = fc.oneof({ weight: 3, arbitrary: hostileCase }, { weight: 2, arbitrary: wellFormedCase });

function serialize(c: Case): Buffer {
  const lines = [`${c.method} ${c.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...c.identity.lines];
  for (const type of c.contentType) lines.push(`Content-Type: ${type}`);
  lines.push(...c.extra);
  const bytes = c.body.bytes;
  let payload = bytes;
  switch (c.framing) {
    case 'length':
      lines.push(`Content-Length: ${bytes.length}`);
      break;
    case 'none':
      break;
    case 'short':
      lines.push(`Content-Length: ${bytes.length + 10}`);
      break;
    case 'long':
      lines.push(`Content-Length: ${Math.max(0, bytes.length - 3)}`);
      break;
    case 'chunked':
    case 'both':
      lines.push('Transfer-Encoding: chunked');
      if (c.framing === 'both') lines.push(`Content-Length: ${bytes.length}`);
      payload = Buffer.concat([
        bytes.length === 0 ? Buffer.alloc(0) : Buffer.from(`${bytes.length.toString(16)}\r\n`),
        bytes,
        bytes.length === 0 ? Buffer.alloc(0) : Buffer.from('\r\n'),
        Buffer.from('0\r\n\r\n'),
      ]);
      break;
    case 'bad-length':
      lines.push(`Content-Length: ${bytes.length}x`);
      break;
    case 'two-lengths':
      lines.push(`Content-Length: ${bytes.length}`, `Content-Length: ${bytes.length + 1}`);
      break;
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
}

/** Every string in a JSON value, keys included. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) strings(item, out);
  else if (value !== null && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      out.push(key);
      strings(inner, out);
    }
  }
  return out;
}

/** Passwords long or unique enough that finding one in an answer cannot be chance. */
function secretsOf(c: Case): string[] {
  const found = new Set<string>();
  const add = (text: string | undefined): void => {
    if (text !== undefined && (text.includes('canary') || [...text].length >= 10)) found.add(text);
  };
  add(c.body.password);
  const whole = c.body.bytes.toString('utf8');
  for (const match of whole.matchAll(/canary[^"\\]*/g)) add(match[0]);
  return [...found];
}

/** What a request that the parser itself refused gets: Node's fixed answer, not the app's. */
function isParserRefusal(response: RawResponse): boolean {
  const names = [...response.headers.keys()];
  return (
    [400, 413, 414, 431, 505, 501].includes(response.status) &&
    names.every((name) => name === 'connection') &&
    response.body.length === 0
  );
}

const ENCODER_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none';frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'cache-control': 'no-store',
};

interface Tally {
  cases: number;
  byStatus: Map<number, number>;
  parserRefusals: number;
  noAnswer: number;
  sets: number;
  deletes: number;
}

function checkResponse(c: Case, response: RawResponse, secrets: readonly string[]): void {
  const where = `${c.method} ${JSON.stringify(c.path)} → ${response.status}`;
  if (response.status >= 500) {
    // The only deliberate 5xx on this chain: the hash limiter refusing more work.
    expect({ where, status: response.status, code: safeParse(response.body)?.['code'] }).toEqual({
      where,
      status: 503,
      code: 'password.busy',
    });
  }
  for (const [name, value] of Object.entries(ENCODER_HEADERS)) {
    expect({ where, name, value: header(response, name) }).toEqual({ where, name, value });
  }
  expect(header(response, 'x-powered-by')).toBeUndefined();
  const text = response.body.toString('utf8');
  const bodyless = c.method === 'HEAD' || response.status === 204 || response.status === 304;
  // The metadata paths keep the reviewed service's contract: plain text, and only the
  // statuses its proxy passes (Express matches paths without case).
  const metadata = c.path.toLowerCase().startsWith('/openstack');
  if (metadata) expect({ where, passed: [200, 400, 403, 404, 409].includes(response.status) }).toEqual({ where, passed: true });
  if (metadata && header(response, 'content-type') === 'text/plain; charset=utf-8') {
    expect({ where, markup: /[<>]/.test(text) }).toEqual({ where, markup: false });
  } else if (!bodyless || response.body.length > 0) {
    expect({ where, type: header(response, 'content-type') }).toEqual({
      where,
      type: expect.stringMatching(/^application\/(problem\+)?json; charset=utf-8$/) as unknown,
    });
    const parsed = safeParse(response.body);
    expect({ where, parses: parsed !== undefined }).toEqual({ where, parses: true });
    // The encoder's escaping: nothing in a body a browser could take for markup.
    expect({ where, unsafe: /[<>&\u2028\u2029]/.test(text) }).toEqual({ where, unsafe: false });
    if (header(response, 'content-type')?.startsWith('application/problem+json') === true) {
      expect({ where, status: parsed?.['status'], code: typeof parsed?.['code'] }).toEqual({
        where,
        status: response.status,
        code: 'string',
      });
    }
    const values = strings(parsed);
    // Nor once parsed: a client that puts a field into innerHTML must get no markup back.
    expect({ where, markup: values.filter((value) => /[<>]/.test(value)) }).toEqual({ where, markup: [] });
    for (const secret of secrets) {
      expect({ where, leaked: values.some((value) => value.includes(secret)) }).toEqual({ where, leaked: false });
    }
  }
  const wire = [...response.headers.values()].flat().join('\n') + Buffer.from(response.body).toString('latin1') + text;
  for (const secret of secrets) {
    expect({ where, leaked: wire.includes(secret) || wire.includes(JSON.stringify(secret).slice(1, -1)) }).toEqual({
      where,
      leaked: false,
    });
  }
}

const EVENT_TYPES = new Set([
  'authn_login_fail',
  'authn_login_success',
  'authn_password_change',
  'authn_password_change_fail',
  'authz_fail',
  'excess_rate_limit_exceeded',
  'input_validation_fail',
  'malicious_excess_404',
]);
// What the demo holds that no event may carry: tokens, the proxy's secret and every
// signature made with it, the pepper.
const NEVER_IN_EVENTS = [
  ...Object.values(TOKENS),
  METADATA_SECRET,
  PEPPER,
  ...[...SERVERS, 'srv-missing', ''].map((id) => sign(id, METADATA_SECRET)),
];

/** The events a case produced: well formed, and none holding a credential or a submitted password. */
function checkEvents(c: Case, events: readonly SecurityEvent[], secrets: readonly string[], hashes: readonly string[]): void {
  const where = `${c.method} ${JSON.stringify(c.path)}`;
  for (const event of events) {
    expect({
      where,
      type: EVENT_TYPES.has(event.type),
      event: event.event.startsWith(`${event.type}:`),
      count: Number.isSafeInteger(event.count) && event.count > 0,
    }).toEqual({
      where,
      type: true,
      event: true,
      count: true,
    });
    expect({ where, level: event.level, datetime: Number.isNaN(Date.parse(event.datetime)) }).toEqual({
      where,
      level: expect.stringMatching(/^(INFO|WARN|CRITICAL)$/) as unknown,
      datetime: false,
    });
    const text = JSON.stringify(event);
    for (const secret of [...secrets, ...hashes, ...NEVER_IN_EVENTS]) {
      expect({
        where,
        event: event.event,
        leaked: text.includes(secret) || text.includes(JSON.stringify(secret).slice(1, -1)),
      }).toEqual({ where, event: event.event, leaked: false });
    }
  }
}

function safeParse(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { value };
  } catch {
    return undefined;
  }
}

describe.each(expressVersions.map(([name, express], index) => [name, express, SEED + index] as const))(
  'fuzzing the demo chain on %s',
  (name, express: ExpressFactory, seed: number) => {
    let fixture: TestDemo;
    let demo: Demo;
    let server: Listening;
    const unexpected: unknown[] = [];
    const onProcessFault = (error: unknown): void => {
      unexpected.push(error);
    };
    const logged: string[] = [];
    const events: SecurityEvent[] = [];

    beforeAll(async () => {
      fixture = openTestDemo('fuzz', {
        express,
        metadataSecret: METADATA_SECRET,
        pepper: PEPPER,
        // Guessing is limited on purpose; here every verify should reach the verifier.
        guessLimit: 1_000_000,
        log: (entry) => logged.push(`${entry.status} ${entry.code} ${entry.method} ${entry.path}\n${entry.error}`),
        events: (event) => {
          events.push(event);
        },
      });
      demo = fixture.demo;
      server = await listen(demo.app);
      process.on('unhandledRejection', onProcessFault);
      process.on('uncaughtException', onProcessFault);
    });

    afterAll(async () => {
      process.off('unhandledRejection', onProcessFault);
      process.off('uncaughtException', onProcessFault);
      await server.close();
      await fixture.close();
    });

    const records = (): Map<string, string> => {
      const rows = (demoSqliteStore(demo).database as unknown as BetterSqlite3.Database)
        .prepare('SELECT id, hash FROM password_records')
        .all() as { id: string; hash: string }[];
      return new Map(rows.map((row) => [row.id, row.hash]));
    };

    test(`${RUNS} generated requests: no 5xx but 503, JSON with the encoder's headers, no password echoed, nothing stored without the owner`, async () => {
      const tally: Tally = { cases: 0, byStatus: new Map(), parserRefusals: 0, noAnswer: 0, sets: 0, deletes: 0 };
      const eventTypes = new Map<string, number>();
      await fc.assert(
        fc.asyncProperty(fuzzCase, async (c) => {
          tally.cases += 1;
          if (c.reset) demoSqliteStore(demo).database.exec('DELETE FROM password_records');
          const before = records();
          const seen = await exchange(
            server.port,
            async (socket) => {
              await write(socket, serialize(c));
              // Half-closing would make Node drop the answer (its server does not allow half-open
              // connections); only a body that stops short needs the client to give up.
              if (c.framing === 'short') socket.end();
            },
            5000,
          );
          const { responses } = parseResponses(Buffer.from(seen.text, 'latin1'));
          // A request whose connection Node closed (garbage pipelined after it) still runs to
          // its end in the app: let every hash finish and its write land before looking.
          await until(() => hashes.active === 0 && hashes.queued === 0, 30_000);
          await new Promise((resolve) => setImmediate(resolve));
          const after = records();

          const first = responses.find((response) => response.status !== 100);
          if (first === undefined) {
            // No answer at all is only right when the request never ended (a body shorter
            // than its length, cut by the client), for CONNECT (Node closes it: no handler),
            // or an upload so far over the limit that the drain ended in a reset.
            tally.noAnswer += 1;
            expect({ method: c.method, path: c.path, framing: c.framing, closed: seen.closed }).toEqual({
              method: c.method,
              path: c.path,
              framing: c.framing,
              closed: true,
            });
            const excused = c.framing === 'short' || c.method === 'CONNECT' || c.body.bytes.length > BODY_LIMIT + 65_536;
            expect({ request: serialize(c).subarray(0, 300).toString('latin1'), excused }).toEqual({
              request: serialize(c).subarray(0, 300).toString('latin1'),
              excused: true,
            });
          }
          const secrets = secretsOf(c);
          // Open windows closed, so that a summary is checked with the case that ended it.
          await demo.events?.flush();
          const produced = events.splice(0);
          for (const event of produced) eventTypes.set(event.type, (eventTypes.get(event.type) ?? 0) + event.count);
          checkEvents(c, produced, secrets, [...before.values(), ...after.values()]);
          for (const response of responses) {
            tally.byStatus.set(response.status, (tally.byStatus.get(response.status) ?? 0) + 1);
            // Node's own interim answer to Expect: 100-continue carries no body and no headers.
            if (response.status === 100) continue;
            if (isParserRefusal(response)) {
              tally.parserRefusals += 1;
              continue;
            }
            checkResponse(c, response, secrets);
          }

          // The store: a record appears, changes or goes only through a 204 set or delete
          // by the owner (or the admin, or the instance itself for a set). When Node answered
          // in the app's place (a parse error on bytes after the request), the app's own
          // answer was lost: a set may then have been stored without a 204 being seen.
          const status = first === undefined || isParserRefusal(first) ? undefined : first.status;
          for (const id of new Set([...before.keys(), ...after.keys()])) {
            const was = before.get(id);
            const now = after.get(id);
            if (was === now) continue;
            const user = c.identity.user;
            const userMay = user === 'admin' || (user !== undefined && OWNER[id] === user);
            const change = now === undefined ? 'deleted' : was === undefined ? 'set' : 'replaced';
            // The guest's sealed password: set only by the instance itself, answered 200.
            const sealed = id.endsWith('/os-server-password');
            if (sealed) {
              const instanceSet =
                change === 'set' &&
                c.method.trim() === 'POST' &&
                c.identity.instance === id.split('/')[0] &&
                (status === 200 || status === undefined);
              expect({ id, change, request: serialize(c).subarray(0, 400).toString('latin1'), instanceSet }).toEqual({
                id,
                change,
                request: serialize(c).subarray(0, 400).toString('latin1'),
                instanceSet: true,
              });
              continue;
            }
            const instanceMay = c.identity.instance === id;
            // No answer from the app: the set may still have been stored.
            // llhttp takes "POST  /path" (two spaces) as a POST: what counts is the parsed method.
            const parsedMethod = c.method.trim();
            const allowed =
              (status === 204 || (status === undefined && change === 'set')) &&
              ((change === 'set' && parsedMethod === 'POST' && (userMay || instanceMay)) ||
                (change === 'deleted' && parsedMethod === 'DELETE' && userMay));
            expect({ id, change, request: serialize(c).subarray(0, 400).toString('latin1'), status, allowed }).toEqual({
              id,
              change,
              request: serialize(c).subarray(0, 400).toString('latin1'),
              status,
              allowed: true,
            });
            if (change === 'set') {
              tally.sets += 1;
              expect(now).toMatch(/^\$2b\$10\$[./A-Za-z0-9]{53}$/);
            } else tally.deletes += 1;
          }
          // ...and a 204 to a set means the record is there.
          if (status === 204 && c.method.trim() === 'POST') expect(after.size).toBeGreaterThan(0);
          expect(unexpected).toEqual([]);
        }),
        { numRuns: RUNS, seed, endOnFailure: true },
      );
      // The server is still answering.
      const alive = await exchange(server.port, (socket) => {
        socket.end(
          'GET /servers/srv-alice/password HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nConnection: close\r\n\r\n',
        );
      });
      expect(alive.status).toBe(200);
      expect(unexpected).toEqual([]);
      expect(logged).toEqual([]);
      const statuses = [...tally.byStatus]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ');
      const counted = [...eventTypes]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([type, n]) => `${type}×${n}`)
        .join(' ');
      console.log(
        `fuzz ${name}: ${tally.cases} cases (seed ${seed}); statuses ${statuses}; ${tally.parserRefusals} refused by Node's parser; ${tally.noAnswer} closed without an answer; ${tally.sets} sets and ${tally.deletes} deletes stored; events ${counted}`,
      );
      // The refusals the generator reaches became events too.
      for (const type of ['authn_login_fail', 'authz_fail', 'input_validation_fail', 'authn_password_change']) {
        expect({ type, seen: (eventTypes.get(type) ?? 0) > 0 }).toEqual({ type, seen: true });
      }
      // The generator must reach the interesting paths, or the properties prove little.
      expect(tally.sets).toBeGreaterThan(0);
      expect(tally.byStatus.get(200) ?? 0).toBeGreaterThan(0);
      expect(tally.byStatus.get(422) ?? 0).toBeGreaterThan(0);
    }, 600_000);
  },
);

describe('the fuzz properties themselves', () => {
  const base: Case = {
    method: 'POST',
    path: '/servers/srv-alice/password',
    identity: { lines: [], user: 'alice', instance: undefined },
    contentType: ['application/json'],
    extra: [],
    body: { bytes: json({ password: 'canary 0123456789ab plum' }), password: 'canary 0123456789ab plum' },
    framing: 'length',
    reset: false,
  };
  const answer = (status: number, body: unknown, drop?: string): RawResponse => {
    const headers = new Map<string, string[]>(Object.entries(ENCODER_HEADERS).map(([name, value]) => [name, [value]]));
    headers.set('content-type', ['application/problem+json; charset=utf-8']);
    if (drop !== undefined) headers.delete(drop);
    return { status, headers, body: Buffer.from(JSON.stringify(body), 'utf8') };
  };
  const problemBody = (status: number, detail: string): unknown => ({ type: 'urn:x', title: 't', status, detail, code: 'x.y' });

  test('pass an answer the demo would give', () => {
    expect(() => checkResponse(base, answer(422, problemBody(422, 'refused')), secretsOf(base))).not.toThrow();
  });

  test.each([
    ['a 500', answer(500, problemBody(500, 'boom'))],
    ['an echoed password', answer(422, problemBody(422, 'canary 0123456789ab plum is weak'))],
    ['a missing CSP header', answer(404, problemBody(404, 'no'), 'content-security-policy')],
    ['unescaped markup', { ...answer(404, {}), body: Buffer.from('{"status":404,"code":"x","detail":"<b>"}') }],
    ['a body that is not JSON', { ...answer(404, {}), body: Buffer.from('Not Found') }],
  ])('fail on %s', (_name, response) => {
    expect(() => checkResponse(base, response, secretsOf(base))).toThrow();
  });

  const event: SecurityEvent = {
    datetime: '2026-11-30T04:00:00.000Z',
    event: 'authz_fail:bob,srv-alice',
    type: 'authz_fail',
    level: 'CRITICAL',
    description: 'user bob was refused srv-alice, which it does not own',
    count: 1,
  };

  test('pass an event the demo would write', () => {
    expect(() => checkEvents(base, [event], secretsOf(base), ['$2b$10$abc'])).not.toThrow();
  });

  test.each<[string, SecurityEvent]>([
    ['a submitted password', { ...event, description: 'canary 0123456789ab plum' }],
    ['a token', { ...event, request_id: 'bob-token' }],
    ['a signature', { ...event, description: sign('srv-alice', METADATA_SECRET) }],
    ['a stored hash', { ...event, resource: '$2b$10$abc' }],
    ['a name outside the vocabulary', { ...event, type: 'login_failed' as never, event: 'login_failed:bob' }],
  ])('fail on an event holding %s', (_name, bad) => {
    expect(() => checkEvents(base, [bad], secretsOf(base), ['$2b$10$abc'])).toThrow();
  });
});
