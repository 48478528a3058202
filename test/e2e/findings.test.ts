import { readFileSync, readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import type { Express } from 'express';
import type { Demo } from '../../examples/demo-app';
import type { SecurityEvent } from '../../lib';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';
import { listen } from '../helpers/raw-http';
import { unprotectedApp } from '../fixtures/unprotected-app';
import type { UnprotectedApi } from '../fixtures/unprotected-app';
import { codes, expectProblem } from '../helpers/problem';
import { openTestDemo } from '../helpers/demo';
import { sign } from '../helpers/instance-identity';
import type { TestDemo } from '../helpers/demo';

// One test per finding of the review: the attack works on the unprotected port of the
// reviewed handler, and fails on the demo, which chains the bundle in front of it.

const ALICE = { Authorization: 'Bearer alice-token' };
const BOB = { Authorization: 'Bearer bob-token' };
const PASSWORD = 'correct horse battery staple';
const METADATA_SECRET = 'findings-metadata-secret';
const PEPPER = 'findings-pepper-0123456789abcdef0123';
// Every credential and key the demo holds: none may appear in an event, in any form.
const CREDENTIALS = ['alice-token', 'bob-token', 'admin-token', METADATA_SECRET, PEPPER];

/** POSTs `body` with chunked transfer encoding (no Content-Length), as a streaming client does. */
function postChunked(
  app: Express,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; text: string }> {
  return listen(app).then(
    (listening) =>
      new Promise((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: listening.port, method: 'POST', path, headers: { ...headers, Connection: 'close' } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (part: string) => (text += part));
            res.on('end', () => {
              void listening.close().then(() => resolve({ status: res.statusCode ?? 0, text }));
            });
          },
        );
        req.on('error', (error) => {
          void listening.close().then(() => reject(error));
        });
        // Two writes and no length: Node sends Transfer-Encoding: chunked.
        const half = Math.floor(body.length / 2);
        req.write(body.slice(0, half));
        req.end(body.slice(half));
      }),
  );
}

describe.each(expressVersions)('the review findings on %s', (_name, express: ExpressFactory) => {
  let fixture: TestDemo;
  let dir: string;
  let demo: Demo;
  let before: UnprotectedApi;
  let events: SecurityEvent[];

  /** The events delivered so far, open windows closed; checked for secrets in every form. */
  const delivered = async (...secrets: string[]): Promise<SecurityEvent[]> => {
    await demo.events?.flush();
    const text = JSON.stringify(events);
    for (const secret of [...CREDENTIALS, ...secrets]) {
      for (const form of [
        secret,
        JSON.stringify(secret).slice(1, -1),
        encodeURIComponent(secret),
        Buffer.from(secret).toString('base64'),
      ]) {
        expect({ secret, leaked: text.includes(form) }).toEqual({ secret, leaked: false });
      }
    }
    for (const event of events) {
      expect(event).toEqual(
        expect.objectContaining({
          datetime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
          level: expect.stringMatching(/^(INFO|WARN|CRITICAL)$/),
          description: expect.any(String),
          count: expect.any(Number),
        }),
      );
      expect(event.event.startsWith(`${event.type}:`)).toBe(true);
    }
    return events;
  };
  const named = (list: readonly SecurityEvent[], type: string): SecurityEvent[] => list.filter((event) => event.type === type);

  beforeEach(() => {
    events = [];
    fixture = openTestDemo('findings', {
      express,
      metadataSecret: METADATA_SECRET,
      pepper: PEPPER,
      events: (event) => {
        events.push(event);
      },
    });
    ({ demo, dir } = fixture);
    before = unprotectedApp(express, ['srv-alice', 'srv-bob']);
  });

  afterEach(() => fixture.close());

  const state = async (id: string, auth = ALICE): Promise<unknown> =>
    (await request(demo.app).get(`/servers/${id}/password`).set(auth)).body;

  test('finding 1 (IDOR): a caller cannot write the password of a server it does not own', async () => {
    const attack = await request(before.app).post('/servers/srv-alice/password').set(BOB).type('text').send(PASSWORD);
    expect(attack.status).toBe(200);
    expect(before.metadata.get('srv-alice')?.['password_0']).toBe(PASSWORD);

    const foreign = await request(demo.app).post('/servers/srv-alice/password').set(BOB).type('text').send(PASSWORD);
    const missing = await request(demo.app).post('/servers/srv-nobody/password').set(BOB).type('text').send(PASSWORD);
    const anonymous = await request(demo.app).post('/servers/srv-alice/password').type('text').send(PASSWORD);
    expect(foreign.status).toBe(404);
    expect(foreign.text).toBe(missing.text);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(await state('srv-alice')).toEqual({ passwordSet: false });

    // The probe of someone else's server is an authz_fail naming prober and target; the
    // anonymous try an authn_login_fail; the missing server only counts towards a flood.
    const seen = await delivered(PASSWORD);
    expect(named(seen, 'authz_fail')).toEqual([
      expect.objectContaining({
        event: 'authz_fail:bob,srv-alice',
        level: 'CRITICAL',
        principal: { kind: 'user', id: 'bob' },
        resource: 'srv-alice',
        status: 404,
        code: 'ownership.denied',
        request_method: 'POST',
        request_uri: '/servers/srv-alice/password',
        source_ip: expect.any(String),
        count: 1,
      }),
    ]);
    expect(named(seen, 'authn_login_fail')).toEqual([
      expect.objectContaining({
        event: expect.stringMatching(/^authn_login_fail:.*127\.0\.0\.1$/),
        status: 401,
        code: 'ownership.unauthenticated',
      }),
    ]);
    expect(named(seen, 'authn_login_fail')[0]).not.toHaveProperty('principal');
    expect(named(seen, 'malicious_excess_404')).toEqual([]);

    // Enumerating ids: ten 404s on servers that do not exist make one malicious_excess_404.
    for (let i = 0; i < 12; i++) await request(demo.app).get(`/servers/srv-guess-${i}/password`).set(BOB).expect(404);
    const flood = named(await delivered(PASSWORD), 'malicious_excess_404');
    expect(flood).toEqual([
      expect.objectContaining({
        event: 'malicious_excess_404:bob',
        principal: { kind: 'user', id: 'bob' },
        count: 10,
        status: 404,
      }),
      expect.objectContaining({ event: 'malicious_excess_404:bob', count: 2, window_ms: 60_000 }),
    ]);
  });

  test('finding 1 (IDOR), metadata form: a forged instance signature names the instance it claimed, never the signature', async () => {
    const forged = sign('srv-alice', 'guessed-secret');
    const real = sign('srv-alice', METADATA_SECRET);
    await request(demo.app)
      .post('/openstack/latest/password')
      .set({ 'X-Instance-ID': 'srv-alice', 'X-Instance-ID-Signature': forged })
      .type('text')
      .send(PASSWORD)
      .expect(403);
    const seen = await delivered(PASSWORD, forged, real);
    expect(named(seen, 'authn_login_fail')).toEqual([
      expect.objectContaining({
        event: 'authn_login_fail:srv-alice',
        claimed: { kind: 'instance', id: 'srv-alice' },
        status: 403,
        request_uri: '/openstack/latest/password',
      }),
    ]);
  });

  test('finding 2 (plain-text storage): only a bcrypt hash is stored, and never handed back', async () => {
    await request(before.app).post('/servers/srv-alice/password').type('text').send(PASSWORD).expect(200);
    expect(JSON.stringify(before.metadata.get('srv-alice'))).toContain(PASSWORD);
    expect((await request(before.app).get('/servers/srv-alice/password')).text).toBe(PASSWORD);

    await request(demo.app).post('/servers/srv-alice/password').set(ALICE).send({ password: PASSWORD }).expect(204);
    const answer = await request(demo.app).get('/servers/srv-alice/password').set(ALICE).expect(200);
    expect(answer.body).toEqual({ passwordSet: true, setAt: expect.any(String), algorithm: 'bcrypt+hmac-sha256' });
    expect(answer.text).not.toContain('$2');
    const stored = await demo.store.get('srv-alice');
    expect(stored?.hash).toMatch(/^\$2b\$10\$/);
    const seen = await delivered(PASSWORD, stored?.hash ?? 'no hash');
    expect(named(seen, 'authn_password_change')).toEqual([
      expect.objectContaining({
        event: 'authn_password_change:alice,srv-alice',
        level: 'INFO',
        action: 'set',
        principal: { kind: 'user', id: 'alice' },
        resource: 'srv-alice',
        status: 204,
      }),
    ]);
    await demo.close();
    for (const file of readdirSync(dir)) {
      expect(readFileSync(join(dir, file)).includes(Buffer.from(PASSWORD))).toBe(false);
    }
  });

  test('finding 3 (no validation): what is not a password is refused before anything is stored', async () => {
    for (const body of ['', 'a', '{"password": 12345678}']) {
      before.metadata.set('srv-alice', {});
      const attack = await request(before.app).post('/servers/srv-alice/password').type('text').send(body);
      expect(attack.status).toBe(200);
    }
    const empty = await request(demo.app).post('/servers/srv-alice/password').set(ALICE).type('text').send('');
    const short = await request(demo.app).post('/servers/srv-alice/password').set(ALICE).type('text').send('a');
    const number = await request(demo.app).post('/servers/srv-alice/password').set(ALICE).send({ password: 12345678 });
    expectProblem(empty, 422, 'password.invalid');
    expectProblem(short, 422, 'password.invalid');
    expectProblem(number, 422, 'password.invalid');
    expect(short.body.errors).toEqual([expect.objectContaining({ field: 'password', code: 'too_short' })]);
    expect(await state('srv-alice')).toEqual({ passwordSet: false });

    // Three refusals of one kind by one caller: the first as it came, then one summary.
    const seen = named(await delivered('12345678'), 'input_validation_fail');
    expect(seen).toEqual([
      expect.objectContaining({
        event: 'input_validation_fail:(password),alice',
        principal: { kind: 'user', id: 'alice' },
        resource: 'srv-alice',
        status: 422,
        code: 'password.invalid',
        fields: ['password'],
        reasons: ['missing'],
        count: 1,
      }),
      expect.objectContaining({ event: 'input_validation_fail:(password),alice', count: 2, window_ms: 60_000 }),
    ]);
  });

  test('finding 4 (unexplained 400): a wrong method gets 405, Allow and a description', async () => {
    const attack = await request(before.app).put('/servers/srv-alice/password').set(ALICE).send('x');
    expect(attack.status).toBe(400);
    expect(attack.text).toBe('');
    expect(attack.headers['allow']).toBeUndefined();

    const res = await request(demo.app).put('/servers/srv-alice/password').set(ALICE).send('x');
    expectProblem(res, 405, 'method.not_allowed');
    expect(res.headers['allow']).toBe('GET, HEAD, POST, DELETE, OPTIONS');
    expect(res.body.detail).toContain('PUT');

    // The method guard runs before the ownership check: the caller is known by address.
    expect(named(await delivered(), 'input_validation_fail')).toEqual([
      expect.objectContaining({
        event: expect.stringMatching(/^input_validation_fail:\(method\),.*127\.0\.0\.1$/),
        fields: ['method'],
        status: 405,
        code: 'method.not_allowed',
        request_method: 'PUT',
      }),
    ]);
  });

  test('finding 5 (inconsistent length): one byte limit, however the body is sent', async () => {
    // 1000 × "é" is 1000 characters but 2000 bytes: the reviewed check counts characters
    // once the body is read, so it takes it when no Content-Length announces the bytes.
    const body = 'é'.repeat(1000);
    const declared = await request(before.app).post('/servers/srv-alice/password').type('text').send(body);
    expect(declared.status).toBe(400);
    const streamed = await postChunked(
      before.app,
      '/servers/srv-alice/password',
      { 'Content-Type': 'text/plain; charset=utf-8' },
      body,
    );
    expect(streamed.status).toBe(200);
    expect(before.metadata.get('srv-alice')?.['password_0']).toHaveLength(255);

    const demoDeclared = await request(demo.app).post('/servers/srv-alice/password').set(ALICE).type('text').send(body);
    const demoStreamed = await postChunked(
      demo.app,
      '/servers/srv-alice/password',
      { ...ALICE, 'Content-Type': 'text/plain; charset=utf-8' },
      body,
    );
    expect(demoDeclared.status).toBe(413);
    expect(demoStreamed.status).toBe(413);
    expect(JSON.parse(demoStreamed.text)).toMatchObject({ code: demoDeclared.body.code });
    expect(await state('srv-alice')).toEqual({ passwordSet: false });

    const seen = named(await delivered(body), 'input_validation_fail');
    expect(seen[0]).toEqual(
      expect.objectContaining({
        event: 'input_validation_fail:(body),alice',
        fields: ['body'],
        status: 413,
        code: 'body.too_large',
        resource: 'srv-alice',
        count: 1,
      }),
    );
    expect(seen.reduce((sum, event) => sum + event.count, 0)).toBe(2);
  });

  test('finding 6 (no content rules): common passwords, context words and control characters are refused', async () => {
    for (const password of ['Password1', 'alice-srv-alice', 'line\r\nbreak\u0000here']) {
      before.metadata.set('srv-alice', {});
      await request(before.app).post('/servers/srv-alice/password').type('text').send(password).expect(200);
      expect(before.metadata.get('srv-alice')?.['password_0']).toBe(password);
    }
    const ruleCodes = async (password: string): Promise<string[]> => {
      const res = await request(demo.app).post('/servers/srv-alice/password').set(ALICE).send({ password });
      expectProblem(res, 422, 'password.invalid');
      expect(res.text).not.toContain(password);
      return codes(res);
    };
    expect(await ruleCodes('Password1')).toContain('common_password');
    expect(await ruleCodes('alice-srv-alice')).toContain('context_word');
    expect(await ruleCodes('line\r\nbreak\u0000here')).toContain('control_character');
    expect(await state('srv-alice')).toEqual({ passwordSet: false });

    // Which rule refused it, never what was refused.
    const seen = named(await delivered('Password1', 'alice-srv-alice', 'line\r\nbreak\u0000here'), 'input_validation_fail');
    expect(seen[0]).toEqual(
      expect.objectContaining({
        event: 'input_validation_fail:(password),alice',
        status: 422,
        code: 'password.invalid',
        reasons: expect.arrayContaining(['common_password']),
      }),
    );
    expect(seen.reduce((sum, event) => sum + event.count, 0)).toBe(3);
  });

  test('finding 7 (no output encoding): attacker text is never served as markup', async () => {
    const markup = '<script>alert(1)</script>';
    await request(before.app).post('/servers/srv-alice/password').type('text').send(markup).expect(200);
    const reflected = await request(before.app).get('/servers/srv-alice/password');
    expect(reflected.headers['content-type']).toMatch(/^text\/html/);
    expect(reflected.text).toBe(markup);

    for (const [path, code] of [
      [`/servers/${encodeURIComponent(markup)}/password`, 'ownership.denied'],
      [`/${encodeURIComponent(markup)}`, 'route.not_found'],
    ] as const) {
      const res = await request(demo.app).get(path).set(ALICE);
      expectProblem(res, 404, code);
      expect(res.text).not.toMatch(/[<>]/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      expect(res.headers['cache-control']).toBe('no-store');
    }
    const method = await request(demo.app)
      .patch(`/servers/${encodeURIComponent(markup)}/password`)
      .set(ALICE);
    expect(method.status).toBe(405);
    expect(method.text).not.toMatch(/[<>]/);

    // Attacker text reaches the log percent-encoded too: a log viewer that renders HTML
    // gets no markup from an event.
    const seen = await delivered();
    expect(named(seen, 'input_validation_fail')).toEqual([
      expect.objectContaining({ code: 'method.not_allowed', request_uri: `/servers/${encodeURIComponent(markup)}/password` }),
    ]);
    expect(JSON.stringify(seen)).not.toMatch(/[<>]/);
  });

  test('the demo limits guesses on verify per caller and server, matches given back', async () => {
    await request(demo.app).post('/servers/srv-alice/password').set(ALICE).send({ password: PASSWORD }).expect(204);
    const guess = (password: string) =>
      request(demo.app).post('/servers/srv-alice/password/verify').set(ALICE).send({ password });
    expect((await guess(PASSWORD)).body).toEqual({ match: true });
    for (let i = 0; i < 5; i++) expect((await guess(`wrong guess ${i}`)).body).toEqual({ match: false });
    const blocked = await guess(PASSWORD);
    expectProblem(blocked, 429, 'password.too_many_attempts');
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);

    // A guessing run: the match, the first miss and a summary of the other four, then the limit.
    const seen = await delivered(PASSWORD, 'wrong guess 0');
    expect(named(seen, 'authn_login_success')).toEqual([
      expect.objectContaining({ event: 'authn_login_success:alice,srv-alice', action: 'verify', rehashed: false, status: 200 }),
    ]);
    expect(named(seen, 'authn_login_fail')).toEqual([
      expect.objectContaining({ event: 'authn_login_fail:alice,srv-alice', action: 'verify', status: 200, count: 1 }),
      expect.objectContaining({ event: 'authn_login_fail:alice,srv-alice', count: 4 }),
    ]);
    expect(named(seen, 'excess_rate_limit_exceeded')).toEqual([
      expect.objectContaining({
        event: 'excess_rate_limit_exceeded:alice,5',
        max: 5,
        status: 429,
        code: 'password.too_many_attempts',
        resource: 'srv-alice',
      }),
    ]);
  });
});
