import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import request from 'supertest';
import type { Express, NextFunction, Request, Response } from 'express';
import {
  MemoryStore,
  notFound,
  passwordRoutes,
  problem,
  problemHandler,
  reportSecurityEvent,
  requireOwnership,
  securityEvents,
} from '../../../lib';
import type { SecurityEvent, SecurityEventSink, SecurityEvents, SecurityEventsOptions } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { startDemo, stopDemo, waitForOutput } from '../../helpers/demo-process';
import { expectProblem } from '../../helpers/problem';
import { freePort } from '../../helpers/redis-server';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('securityEvents options', () => {
  const sink: SecurityEventSink = () => undefined;
  test.each<[string, () => unknown, RegExp]>([
    [
      'a sink that is not a function',
      () => securityEvents('log' as unknown as SecurityEventSink),
      /first argument must be the sink/,
    ],
    [
      'an unknown option',
      () => securityEvents(sink, { window: 1000 } as unknown as SecurityEventsOptions),
      /unknown option "window".*windowMs/,
    ],
    [
      'a window under a second',
      () => securityEvents(sink, { windowMs: 999 }),
      /option "windowMs" must be a whole number from 1000/,
    ],
    ['a fractional threshold', () => securityEvents(sink, { excess404: 2.5 }), /option "excess404"/],
    ['a zero queue', () => securityEvents(sink, { maxQueue: 0 }), /option "maxQueue"/],
    ['no keys', () => securityEvents(sink, { maxKeys: 0 }), /option "maxKeys"/],
    ['an empty appid', () => securityEvents(sink, { appid: '' }), /option "appid" must be a non-empty string/],
    [
      'a requestId that is not a function',
      () => securityEvents(sink, { requestId: 'x-id' as unknown as () => string }),
      /option "requestId" must be a function/,
    ],
    ['a zero flush timeout', () => securityEvents(sink, { flushTimeoutMs: 0 }), /option "flushTimeoutMs"/],
    [
      'an onError that is not a function',
      () => securityEvents(sink, { onError: true as unknown as () => void }),
      /option "onError" must be a function/,
    ],
  ])('throws a TypeError on %s', (_name, make, message) => {
    expect(make).toThrow(TypeError);
    expect(make).toThrow(message);
  });

  test('report() refuses an event type outside the vocabulary', () => {
    expect(() => securityEvents(sink).report('login_ok' as never, {})).toThrow(/unknown event type "login_ok"/);
  });
});

describe.each(expressVersions)('securityEvents on %s', (_name, express: ExpressFactory) => {
  /** An app with `events` first, a route refusing with `code`, a success route and the problem handler. */
  function appWith(events: SecurityEvents): Express {
    const app = express();
    app.use(events);
    app.get('/refuse/:id', (_req: Request, _res: Response, next: NextFunction) => {
      next(problem(405, 'method.not_allowed', 'No.', { headers: { Allow: 'POST' } }));
    });
    app.post('/servers/:id/done', (req, res) => {
      reportSecurityEvent(req, 'authn_password_change', { resource: String(req.params['id']), action: 'set' });
      res.status(201).json({ ok: true });
    });
    app.use(notFound());
    app.use(problemHandler({ log: false }));
    return app;
  }

  test('a refusal is delivered after its answer, with the request id, address and path but not the query', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event), { appid: 'test-app' });
    const res = await request(appWith(events))
      .get('/refuse/r1?password=hunter2-secret')
      .set('X-Request-ID', 'req-42')
      .set('User-Agent', 'probe/1.0');
    expect(res.status).toBe(405);
    await events.flush();
    expect(seen).toEqual([
      {
        datetime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        appid: 'test-app',
        event: expect.stringMatching(/^input_validation_fail:\(method\),/),
        type: 'input_validation_fail',
        level: 'WARN',
        description: expect.stringContaining('405 method.not_allowed'),
        count: 1,
        request_id: 'req-42',
        source_ip: expect.stringContaining('127.0.0.1'),
        useragent: 'probe/1.0',
        request_method: 'GET',
        request_uri: '/refuse/r1',
        status: 405,
        code: 'method.not_allowed',
        fields: ['method'],
      },
    ]);
    expect(JSON.stringify(seen)).not.toContain('hunter2');
  });

  test('a malformed X-Request-ID is left out rather than logged', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    await request(appWith(events)).get('/refuse/r1').set('X-Request-ID', 'has spaces in it').expect(405);
    await events.flush();
    expect(seen[0]).not.toHaveProperty('request_id');
  });

  test('a success waits for the response, and carries the status answered', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    await request(appWith(events)).post('/servers/srv-1/done').expect(201);
    await events.flush();
    expect(seen).toEqual([
      expect.objectContaining({
        event: 'authn_password_change:127.0.0.1,srv-1',
        type: 'authn_password_change',
        level: 'INFO',
        action: 'set',
        resource: 'srv-1',
        status: 201,
      }),
    ]);
  });

  test('a sink that throws changes no answer, and onError hears of it once per window', async () => {
    const errors: unknown[] = [];
    const events = securityEvents(
      () => {
        throw new Error('disk full');
      },
      { onError: (error) => errors.push(error) },
    );
    const app = appWith(events);
    for (let i = 0; i < 3; i++) {
      const res = await request(app).get(`/refuse/r${i}`);
      expectProblem(res, 405, 'method.not_allowed');
    }
    await request(app).post('/servers/srv-1/done').expect(201);
    await events.flush();
    expect(errors).toEqual([new Error('disk full')]);
    // The first refusal, the summary of the other two, and the success.
    expect(events.stats()).toEqual(expect.objectContaining({ delivered: 3, failed: 3 }));
  });

  test('a sink that rejects changes no answer', async () => {
    const errors: unknown[] = [];
    const events = securityEvents(() => Promise.reject(new Error('collector down')), { onError: (error) => errors.push(error) });
    await request(appWith(events)).get('/refuse/r1').expect(405);
    await events.flush();
    expect(errors).toEqual([new Error('collector down')]);
  });

  test('a sink that never settles delays no answer; past 100 pending calls further events wait in the queue', async () => {
    let calls = 0;
    const events = securityEvents(() => {
      calls += 1;
      return new Promise<void>(() => undefined);
    });
    const app = appWith(events);
    const started = Date.now();
    await request(app).get('/refuse/r1').expect(405);
    await request(app).post('/servers/srv-1/done').expect(201);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(calls).toBe(2);
    for (let i = 0; i < 150; i++) events.report('sensitive_read', { resource: `srv-${i}` });
    await tick();
    await tick();
    expect(calls).toBe(100);
    expect(events.stats()).toEqual(expect.objectContaining({ delivered: 100, dropped: 0 }));
  });

  test('flush() gives up on a sink that never settles after flushTimeoutMs, and tells onError what was left', async () => {
    const errors: unknown[] = [];
    const events = securityEvents(() => new Promise<void>(() => undefined), {
      flushTimeoutMs: 200,
      onError: (error) => errors.push(error),
    });
    await request(appWith(events)).get('/refuse/r1').expect(405);
    for (let i = 0; i < 149; i++) events.report('sensitive_read', { resource: `srv-${i}` });
    await events.flush();
    expect(errors).toEqual([
      new Error('securityEvents: flush() gave up after 200 ms with 100 sink calls pending and 50 events queued.'),
    ]);
    expect(events.stats()).toEqual(expect.objectContaining({ delivered: 100, failed: 0 }));
  }, 10_000);

  test('the mark a registration leaves on a request is invisible: no own key, nothing in util.inspect', async () => {
    const events = securityEvents(() => undefined);
    const app = express();
    app.use(events);
    app.use((req, _res, next) => {
      (req as Request & { user?: unknown }).user = { id: 'ann', hash: 'HASH-MARKER-7f3' };
      next();
    });
    app.get('/servers/:id', requireOwnership({ load: () => ({ owner: 'ann' }), owner: 'owner' }), (req, res) => {
      // The user object now lives on in the facts noted for the event, and only there.
      delete (req as Request & { user?: unknown }).user;
      res.json({
        keys: Reflect.ownKeys(req)
          .map(String)
          .filter((key) => /guard|security/i.test(key)),
        inspected: inspect(req, { showHidden: true, depth: 8 }).includes('HASH-MARKER'),
      });
    });
    app.use(problemHandler({ log: false }));
    const res = await request(app).get('/servers/srv-1').expect(200);
    expect(res.body).toEqual({ keys: [], inspected: false });
    await request(app).get('/servers/srv-2').expect(200);
    await events.flush();
  });

  test('folds per caller and per target: another caller or target opens a window of its own', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    for (const [caller, target] of [
      ['ann', 'srv-1'],
      ['ann', 'srv-1'],
      ['ann', 'srv-2'],
      ['bob', 'srv-1'],
      ['ann\u0000srv-1', ''],
      ['ann', 'srv-1'],
    ] as const) {
      events.report('sensitive_read', { principal: { kind: 'user', id: caller }, resource: target });
    }
    await events.flush();
    expect(seen.map((event) => [event.event, event.count])).toEqual([
      ['sensitive_read:ann,srv-1', 1],
      ['sensitive_read:ann,srv-2', 1],
      ['sensitive_read:bob,srv-1', 1],
      ['sensitive_read:ann\u0000srv-1,', 1],
      ['sensitive_read:ann,srv-1', 2],
    ]);
  });

  test('past maxQueue waiting events, new ones are dropped and counted', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event), { maxQueue: 5 });
    for (let i = 0; i < 8; i++) events.report('sensitive_read', { resource: `srv-${i}` });
    await events.flush();
    expect(seen).toHaveLength(5);
    expect(events.stats()).toEqual(expect.objectContaining({ delivered: 5, dropped: 3 }));
  });

  test('a flood from one caller is one event and one summary whose counts add up', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    const app = appWith(events);
    for (let i = 0; i < 30; i++) await request(app).get('/refuse/same').expect(405);
    await tick();
    expect(seen).toHaveLength(1);
    await events.flush();
    expect(seen.map((event) => event.count)).toEqual([1, 29]);
    expect(seen[1]).toEqual(expect.objectContaining({ window_ms: 60_000, status: 405, code: 'method.not_allowed' }));
    // What differs from request to request is not claimed for all of them.
    expect(seen[1]).not.toHaveProperty('request_uri');
    expect(events.stats()).toEqual(expect.objectContaining({ delivered: 2, folded: 29 }));
  });

  test('404s on paths that do not exist are counted: one malicious_excess_404 at the threshold', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event), { excess404: 3 });
    const app = appWith(events);
    for (let i = 0; i < 2; i++) await request(app).get(`/nothing-${i}`).expect(404);
    await tick();
    expect(seen).toEqual([]);
    for (let i = 2; i < 7; i++) await request(app).get(`/nothing-${i}`).expect(404);
    await events.flush();
    expect(seen).toEqual([
      expect.objectContaining({
        type: 'malicious_excess_404',
        event: expect.stringMatching(/^malicious_excess_404:.*127\.0\.0\.1$/),
        count: 3,
        status: 404,
        code: 'route.not_found',
      }),
      expect.objectContaining({ type: 'malicious_excess_404', count: 4, window_ms: 60_000 }),
    ]);
  });

  test('a window that ends delivers its summary, and the next occurrence starts a new one', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event), { windowMs: 1000 });
    const app = appWith(events);
    await request(app).get('/refuse/same').expect(405);
    await request(app).get('/refuse/same').expect(405);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await request(app).get('/refuse/same').expect(405);
    await tick();
    expect(seen.map((event) => [event.count, event.window_ms])).toEqual([
      [1, undefined],
      [1, 1000],
      [1, undefined],
    ]);
    await events.flush();
  });

  test('made-up keys past maxKeys share one overflow key instead of growing memory', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event), { maxKeys: 2 });
    for (let i = 0; i < 50; i++) events.report('sensitive_read', { resource: `srv-${i}` });
    await events.flush();
    expect(seen.reduce((sum, event) => sum + event.count, 0)).toBe(50);
    expect(seen).toHaveLength(4);
  });

  test('the outer registration wins over a router-level one', async () => {
    const outer: SecurityEvent[] = [];
    const inner: SecurityEvent[] = [];
    const first = securityEvents((event) => void outer.push(event));
    const second = securityEvents((event) => void inner.push(event));
    const app = express();
    app.use(first);
    app.use(second);
    app.use(notFound());
    app.use(problemHandler({ log: false }));
    await request(app).get('/x').expect(404);
    await Promise.all([first.flush(), second.flush()]);
    expect(inner).toEqual([]);
    expect(first.stats().folded).toBe(1);
  });

  test('without a registration nothing is collected and answers are unchanged', async () => {
    const app = express();
    app.post('/servers/:id/done', (req, res) => {
      reportSecurityEvent(req, 'authn_password_change', { resource: 'srv-1' });
      res.status(201).end();
    });
    app.use(notFound());
    app.use(problemHandler({ log: false }));
    await request(app).post('/servers/srv-1/done').expect(201);
    await request(app).get('/x').expect(404);
  });

  test('passwordRoutes: set, clear, verify and the ownership refusals, on a route-level problem handler', async () => {
    const seen: SecurityEvent[] = [];
    const events = securityEvents((event) => void seen.push(event));
    const app = express();
    app.use(events);
    app.use((req, _res, next) => {
      const user = req.get('authorization')?.replace('Bearer ', '');
      if (user !== undefined) (req as Request & { user?: { id: string } }).user = { id: user };
      next();
    });
    passwordRoutes(app, {
      store: new MemoryStore(),
      hashing: { cost: 10 },
      ownership: { load: (req) => (req.params['id'] === 'srv-1' ? { owner: 'ann' } : undefined), owner: 'owner' },
      errors: { log: false },
    });
    const secret = 'violet tangent orchard 88';
    await request(app).post('/servers/srv-1/password').set('Authorization', 'Bearer ann').send({ password: secret }).expect(204);
    await request(app).post('/servers/srv-1/password').set('Authorization', 'Bearer ann').send({ password: secret }).expect(409);
    await request(app)
      .post('/servers/srv-1/password/verify')
      .set('Authorization', 'Bearer ann')
      .send({ password: secret })
      .expect(200);
    await request(app)
      .post('/servers/srv-1/password/verify')
      .set('Authorization', 'Bearer ann')
      .send({ password: 'not it at all 1' })
      .expect(200);
    await request(app).get('/servers/srv-1/password').set('Authorization', 'Bearer eve').expect(404);
    await request(app).delete('/servers/srv-1/password').set('Authorization', 'Bearer ann').expect(204);
    await events.flush();
    expect(seen.map((event) => [event.event, event.status, event.action])).toEqual([
      ['authn_password_change:ann,srv-1', 204, 'set'],
      ['authn_password_change_fail:ann,srv-1', 409, undefined],
      ['authn_login_success:ann,srv-1', 200, 'verify'],
      ['authn_login_fail:ann,srv-1', 200, 'verify'],
      ['authz_fail:eve,srv-1', 404, undefined],
      ['authn_password_change:ann,srv-1', 204, 'clear'],
    ]);
    const text = JSON.stringify(seen);
    expect(text).not.toContain(secret);
    expect(text).not.toContain('$2b$');
  });
});

describe('the demo server writes events as JSON lines on stdout', () => {
  test('an IDOR probe is one authz_fail line, with no token in it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'epg-events-demo-'));
    const port = await freePort();
    const demo = startDemo({ PORT: String(port), DATA_DIR: join(dir, 'data'), BOB_TOKEN: 'bob-real-token-5e7a' });
    try {
      await waitForOutput(demo, 'listening on');
      const res = await fetch(`http://127.0.0.1:${port}/servers/srv-alice/password`, {
        headers: { Authorization: 'Bearer bob-real-token-5e7a' },
      });
      expect(res.status).toBe(404);
      await waitForOutput(demo, '"type":"authz_fail"', 10_000);
      const lines = demo
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(lines).toEqual([
        expect.objectContaining({
          severity: 'error',
          event: 'authz_fail:bob,srv-alice',
          level: 'CRITICAL',
          appid: 'express-password-guard-demo',
          principal: { kind: 'user', id: 'bob' },
          status: 404,
        }),
      ]);
      expect(demo.output()).not.toContain('bob-real-token-5e7a');
    } finally {
      expect(await stopDemo(demo)).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
