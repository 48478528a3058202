import request from 'supertest';
import { problemHandler, requireOwnership, responseEncoder } from '../../lib';
import type { Demo } from '../../examples/demo-app';
import { openTestDemo } from '../helpers/demo';
import type { TestDemo } from '../helpers/demo';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';
import { listen } from '../helpers/raw-http';
import type { Listening } from '../helpers/raw-http';
import { compare, describeComparison, interleaved } from '../helpers/timing';
import type { Probe } from '../helpers/timing';

// What an attacker could learn from response times alone: whether a server has a
// password (verify on a missing record vs a wrong password), and whether an id exists
// (ownership refusal of someone else's server vs of no server). The paths are timed
// interleaved over one keep-alive connection and compared by median and trimmed mean,
// with a tolerance of a share of the larger median or an absolute floor, whichever is
// more: wide enough not to flake on a shared 2-core machine, narrow enough that the
// control (a path that skips bcrypt, as a verifier without a dummy compare would) fails
// it by far. TIMING_PAIRS raises the sample counts for a long run.

const SCALE = Number(process.env['TIMING_PAIRS'] ?? '1');
const VERIFY_PAIRS = Math.round(40 * SCALE);
const OWNERSHIP_PAIRS = Math.round(300 * SCALE);
/** bcrypt paths (cost 10, ~50-70 ms here): 25% of the larger median, at least 5 ms. */
const VERIFY_TOLERANCE = { relative: 0.25, absoluteMs: 5 } as const;
/** Sub-millisecond paths: 50% of the larger median, at least 1.5 ms of scheduler noise. */
const OWNERSHIP_TOLERANCE = { relative: 0.5, absoluteMs: 1.5 } as const;

const ALICE = { Authorization: 'Bearer alice-token', 'Content-Type': 'application/json' };
const WRONG = JSON.stringify({ password: 'not the password at all 42' });

describe.each(expressVersions)('response times on %s', (name, express: ExpressFactory) => {
  let fixture: TestDemo;
  let demo: Demo;
  let server: Listening;
  let emptyServer: string;

  beforeAll(async () => {
    fixture = openTestDemo('timing', {
      express,
      metadataSecret: 'timing-metadata-secret',
      pepper: 'timing-pepper-0123456789abcdef0123456789',
      // The guess limit would answer 429 long before enough samples.
      guessLimit: 1_000_000,
    });
    demo = fixture.demo;
    const set = await request(demo.app)
      .post('/servers/srv-alice/password')
      .set(ALICE)
      .send({ password: 'plum orchard at dusk 7' });
    expect(set.status).toBe(204);
    const created = await request(demo.app).post('/servers').set(ALICE);
    expect(created.status).toBe(201);
    emptyServer = (created.body as { id: string }).id;
    server = await listen(demo.app);
  });

  afterAll(async () => {
    await server.close();
    await fixture.close();
  });

  const verify = (id: string): Probe => ({ method: 'POST', path: `/servers/${id}/password/verify`, headers: ALICE, body: WRONG });

  test(`verify: a server with no password and a wrong password take the same time (${VERIFY_PAIRS} pairs)`, async () => {
    const samples = await interleaved(
      server.port,
      { ...verify(emptyServer), status: 200 },
      { ...verify('srv-alice'), status: 200 },
      VERIFY_PAIRS,
    );
    const result = compare(samples, VERIFY_TOLERANCE.relative, VERIFY_TOLERANCE.absoluteMs);
    console.log(describeComparison(`${name} verify, no record vs wrong password`, result));
    expect(result.indistinguishable).toBe(true);
  }, 120_000);

  test(`ownership: someone else's server and no server are refused in the same time (${OWNERSHIP_PAIRS} pairs)`, async () => {
    const samples = await interleaved(
      server.port,
      { ...verify('srv-bob'), status: 404 },
      { ...verify('srv-nobody'), status: 404 },
      OWNERSHIP_PAIRS,
      20,
    );
    const result = compare(samples, OWNERSHIP_TOLERANCE.relative, OWNERSHIP_TOLERANCE.absoluteMs);
    console.log(describeComparison(`${name} ownership refusal, foreign vs missing id`, result));
    expect(result.indistinguishable).toBe(true);
  }, 120_000);

  test('control: the same comparison tells a path without bcrypt from one with it', async () => {
    // A refusal before any compare stands for a verifier that skips bcrypt on a missing
    // record: if this were called indistinguishable, the tests above could not fail.
    const samples = await interleaved(
      server.port,
      { ...verify('srv-nobody'), status: 404 },
      { ...verify('srv-alice'), status: 200 },
      Math.max(10, Math.round(VERIFY_PAIRS / 4)),
    );
    const result = compare(samples, VERIFY_TOLERANCE.relative, VERIFY_TOLERANCE.absoluteMs);
    console.log(describeComparison(`${name} control, no compare vs compare`, result));
    expect(result.indistinguishable).toBe(false);
    expect(result.pSlower).toBeLessThan(0.1);
  }, 120_000);

  test('control: the ownership comparison tells a loader that takes 10 ms longer for existing ids', async () => {
    // The leak the ownership test looks for: a loader whose work depends on whether the
    // id exists (here 10 ms more, as a join or a second query would cost).
    const app = express();
    const servers = new Map([
      ['srv-alice', { owner: 'alice' }],
      ['srv-bob', { owner: 'bob' }],
    ]);
    app.use(responseEncoder());
    app.post(
      '/servers/:id/password/verify',
      requireOwnership({
        principal: (req) =>
          req.get('authorization') === 'Bearer alice-token' ? { kind: 'user', id: 'alice', user: {} } : undefined,
        load: async (req) => {
          const found = servers.get(String(req.params['id']));
          if (found !== undefined) await new Promise((resolve) => setTimeout(resolve, 10));
          return found;
        },
        owner: 'owner',
      }),
    );
    app.use(problemHandler({ log: false }));
    const leaky = await listen(app);
    try {
      const samples = await interleaved(
        leaky.port,
        { ...verify('srv-bob'), status: 404 },
        { ...verify('srv-nobody'), status: 404 },
        Math.max(20, Math.round(OWNERSHIP_PAIRS / 10)),
      );
      const result = compare(samples, OWNERSHIP_TOLERANCE.relative, OWNERSHIP_TOLERANCE.absoluteMs);
      console.log(describeComparison(`${name} control, loader 10 ms slower for existing ids`, result));
      expect(result.indistinguishable).toBe(false);
      expect(result.pSlower).toBeGreaterThan(0.9);
    } finally {
      await leaky.close();
    }
  }, 120_000);
});
