import { performance } from 'node:perf_hooks';
import request from 'supertest';
import type { Request, Response } from 'express';
import { HashLimiter, MemoryStore, defaultHashLimiter, hashAndStore, passwordVerifier, requireOwnership } from '../../../lib';
import { callerKey, resolveLimiter, threadPoolSize } from '../../../lib/hashing/hash-limiter';
import { expressVersions } from '../../helpers/express';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve = (): void => undefined;
  let reject = (_e: Error): void => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('HashLimiter', () => {
  test('defaults leave one thread of the pool free and queue 32', () => {
    expect(threadPoolSize({})).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '8' })).toBe(8);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: 'lots' })).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '0' })).toBe(4);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '1' })).toBe(1);
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' })).toBe(1024);
    const limiter = new HashLimiter();
    expect(limiter.maxConcurrent).toBe(Math.max(1, threadPoolSize() - 1));
    expect(limiter.maxQueue).toBe(32);
    expect(limiter.maxPerCaller).toBe(4);
  });

  test('maxPerCaller defaults to an eighth of the queue, and to 1 for a queue of 8 or less', () => {
    const share = (maxQueue: number): number => new HashLimiter({ maxQueue }).maxPerCaller;
    expect([0, 1, 8, 9, 16, 17, 100].map(share)).toEqual([1, 1, 1, 2, 2, 3, 13]);
    // Given, it wins over the default whatever the queue.
    expect(new HashLimiter({ maxQueue: 0, maxPerCaller: 5 }).maxPerCaller).toBe(5);
  });

  // Issue 14 defect 2: one FIFO queue let a single caller's flood refuse everyone else.
  test('one caller gets at most maxPerCaller slots; others still get in and waiting callers take turns', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 8 });
    expect(limiter.maxPerCaller).toBe(1);
    const fair = new HashLimiter({ maxConcurrent: 1, maxQueue: 8, maxPerCaller: 3 });
    const gate = deferred();
    const order: string[] = [];
    const task = (name: string) => () => {
      order.push(name);
      return name === 'm1' ? gate.promise : Promise.resolve();
    };
    const runs = [fair.tryRun(task('m1'), 'mallory'), fair.tryRun(task('m2'), 'mallory'), fair.tryRun(task('m3'), 'mallory')];
    // Mallory's fourth is refused at once although the queue has room…
    expect(fair.tryRun(task('m4'), 'mallory')).toBeUndefined();
    // …and alice and bob, arriving after her, are let in and served before her queued ones.
    runs.push(fair.tryRun(task('a1'), 'alice'), fair.tryRun(task('b1'), 'bob'));
    expect(runs.every((run) => run !== undefined)).toBe(true);
    expect([fair.active, fair.queued]).toEqual([1, 4]);
    gate.resolve();
    await Promise.all(runs);
    expect(order).toEqual(['m1', 'm2', 'a1', 'b1', 'm3']);
    // Her share is free again once her tasks are done.
    expect(fair.tryRun(() => Promise.resolve(), 'mallory')).toBeDefined();
    expect(() => new HashLimiter({ maxPerCaller: 0 })).toThrow(/option "maxPerCaller" must be a whole number, 1 or more/);
  });

  test('runs at most maxConcurrent at once, queues in order, refuses past maxQueue without calling', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 2, maxQueue: 2 });
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, i) =>
      limiter.tryRun(() => {
        started.push(i);
        return gate.promise.then(() => i);
      }),
    );
    let refusedCalled = false;
    expect(
      limiter.tryRun(async () => {
        refusedCalled = true;
      }),
    ).toBeUndefined();
    expect(refusedCalled).toBe(false);
    expect(started).toEqual([0, 1]);
    expect([limiter.active, limiter.queued]).toEqual([2, 2]);

    gates[1]?.resolve();
    await flush();
    expect(started).toEqual([0, 1, 2]);
    gates[0]?.resolve();
    gates[2]?.resolve();
    gates[3]?.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect([limiter.active, limiter.queued]).toEqual([0, 0]);
  });

  test('a failing task rejects its caller and frees its slot', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 1 });
    const failing = limiter.tryRun(() => Promise.reject(new Error('boom')));
    const next = limiter.tryRun(() => Promise.resolve('next'));
    await expect(failing).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
    const throwing = limiter.tryRun(() => {
      throw new Error('sync boom');
    });
    await expect(throwing).rejects.toThrow('sync boom');
    expect(limiter.active).toBe(0);
  });

  test('Retry-After grows with the work ahead and is at least 1', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 10 });
    expect(limiter.retryAfterSeconds()).toBe(1);
    // The limiter times the task on the real clock: somewhere between how long the task
    // itself ran and how long the whole call took.
    let inner = 0;
    const outerStart = performance.now();
    await limiter.tryRun(async () => {
      const start = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 300));
      inner = performance.now() - start;
    });
    const outer = performance.now() - outerStart;
    expect(limiter.retryAfterSeconds()).toBe(1);
    const gate = deferred();
    const queued = Array.from({ length: 8 }, () => limiter.tryRun(() => gate.promise));
    // One running and seven waiting on one slot: 8 tasks ahead of the next caller.
    const seconds = limiter.retryAfterSeconds();
    expect(seconds).toBeGreaterThanOrEqual(Math.ceil((8 * inner) / 1000));
    expect(seconds).toBeLessThanOrEqual(Math.ceil((8 * outer) / 1000));
    expect(seconds).toBeGreaterThanOrEqual(2);
    gate.resolve();
    await Promise.all(queued);
  });

  test('Retry-After is the work ahead, per slot, at a moving average of task durations (a clock the test moves)', async () => {
    // performance.now() answers what the test says, so each task lasts exactly what it adds.
    let now = 50_000;
    const clock = jest.spyOn(performance, 'now').mockImplementation(() => now);
    /** Retry-After of a fresh 2-slot limiter once tasks of `durations` ms ran in turn, with 2 running and `waiting` queued. */
    const retryAfter = async (durations: readonly number[], waiting: number): Promise<number> => {
      const limiter = new HashLimiter({ maxConcurrent: 2, maxQueue: 98 });
      for (const ms of durations) {
        await limiter.tryRun(async () => {
          now += ms;
        });
      }
      const gate = deferred();
      const held = Array.from({ length: 2 + waiting }, () => limiter.tryRun(() => gate.promise));
      expect([limiter.active, limiter.queued]).toEqual([2, waiting]);
      const seconds = limiter.retryAfterSeconds();
      gate.resolve();
      await Promise.all(held);
      return seconds;
    };
    try {
      // Nothing measured yet.
      expect(await retryAfter([], 97)).toBe(1);
      // The first task is the average. 1.5 tasks ahead per slot × 1000 ms → 2 s.
      expect(await retryAfter([1000], 1)).toBe(2);
      // 4.5 per slot × 1000 ms → 5 s; 1 per slot × 1000 ms → 1 s; 1.5 per slot × 300 ms = 0.45 s → at least 1.
      expect(await retryAfter([1000], 7)).toBe(5);
      expect(await retryAfter([1000], 0)).toBe(1);
      expect(await retryAfter([300], 1)).toBe(1);
      // 49.5 per slot × 100 ms → 4.95 s → 5.
      expect(await retryAfter([100], 97)).toBe(5);
      // Then 0.8 × 100 + 0.2 × 1000 = 280 ms: 49.5 × 280 ms = 13.86 s → 14.
      expect(await retryAfter([100, 1000], 97)).toBe(14);
      // Then 0.8 × 280 + 0.2 × 600 = 344 ms: 49.5 × 344 ms = 17.03 s → 18.
      expect(await retryAfter([100, 1000, 600], 97)).toBe(18);
    } finally {
      clock.mockRestore();
    }
  });

  test('maxQueue 0 refuses as soon as every slot is busy', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 0 });
    const gate = deferred();
    const running = limiter.tryRun(() => gate.promise);
    expect(limiter.tryRun(() => Promise.resolve())).toBeUndefined();
    gate.resolve();
    await running;
  });

  test('a finished task gives back one slot of its caller, not the whole share', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 4, maxQueue: 8, maxPerCaller: 2 });
    const gates = [deferred(), deferred(), deferred()];
    const first = limiter.tryRun(() => gates[0]?.promise ?? Promise.resolve(), 'alice');
    const second = limiter.tryRun(() => gates[1]?.promise ?? Promise.resolve(), 'alice');
    expect(limiter.tryRun(() => Promise.resolve(), 'alice')).toBeUndefined();
    gates[0]?.resolve();
    await first;
    // One of hers still runs: one more fits, and the one after is refused again.
    const third = limiter.tryRun(() => gates[2]?.promise ?? Promise.resolve(), 'alice');
    expect(third).toBeDefined();
    expect(limiter.tryRun(() => Promise.resolve(), 'alice')).toBeUndefined();
    expect(limiter.active).toBe(2);
    gates[1]?.resolve();
    gates[2]?.resolve();
    await Promise.all([second, third]);
    // All done: her whole share is back.
    const again = [limiter.tryRun(() => Promise.resolve(), 'alice'), limiter.tryRun(() => Promise.resolve(), 'alice')];
    expect(again.every((run) => run !== undefined)).toBe(true);
    await Promise.all(again);
  });

  test('tasks run without a caller count against no caller’s share, whatever the caller is called', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 8, maxQueue: 8, maxPerCaller: 1 });
    const gate = deferred();
    const held = [limiter.tryRun(() => gate.promise), limiter.tryRun(() => gate.promise)];
    for (const caller of ['undefined', '', ':']) {
      held.push(limiter.tryRun(() => gate.promise, caller));
      // Each caller has its own share of one, apart from the caller-less tasks.
      expect(limiter.tryRun(() => Promise.resolve(), caller)).toBeUndefined();
    }
    expect(held.every((run) => run !== undefined)).toBe(true);
    expect(limiter.active).toBe(5);
    gate.resolve();
    await Promise.all(held);
  });

  test('bad options throw a TypeError naming HashLimiter and the option', () => {
    expect(() => new HashLimiter({ maxConcurrent: 0 })).toThrow(
      new TypeError('HashLimiter: option "maxConcurrent" must be a whole number, 1 or more, got 0.'),
    );
    expect(() => new HashLimiter({ maxConcurrent: 1.5 })).toThrow(/option "maxConcurrent"/);
    expect(() => new HashLimiter({ maxQueue: -1 })).toThrow(
      new TypeError('HashLimiter: option "maxQueue" must be a whole number, 0 or more, got -1.'),
    );
    expect(() => new HashLimiter({ maxQueue: '32' } as never)).toThrow(/option "maxQueue"/);
    expect(() => new HashLimiter({ maxPerCaller: 0 })).toThrow(
      new TypeError('HashLimiter: option "maxPerCaller" must be a whole number, 1 or more, got 0.'),
    );
    expect(() => new HashLimiter({ maxConcurent: 2 } as never)).toThrow(
      new TypeError(
        'HashLimiter: unknown option "maxConcurent". Did you mean "maxConcurrent"? Known options: maxConcurrent, maxQueue, maxPerCaller.',
      ),
    );
    expect(() => new HashLimiter({ threads: 2 } as never)).toThrow(
      new TypeError('HashLimiter: unknown option "threads". Known options: maxConcurrent, maxQueue, maxPerCaller.'),
    );
    // Each real option is known, alone and together.
    expect(new HashLimiter({ maxConcurrent: 2 }).maxConcurrent).toBe(2);
    expect(new HashLimiter({ maxQueue: 3 }).maxQueue).toBe(3);
    expect(new HashLimiter({ maxPerCaller: 7 }).maxPerCaller).toBe(7);
    const all = new HashLimiter({ maxConcurrent: 5, maxQueue: 6, maxPerCaller: 2 });
    expect([all.maxConcurrent, all.maxQueue, all.maxPerCaller]).toEqual([5, 6, 2]);
  });

  test('the default limiter is one per process', () => {
    expect(defaultHashLimiter()).toBe(defaultHashLimiter());
    expect(defaultHashLimiter()).toBeInstanceOf(HashLimiter);
  });
});

describe('the limiter option', () => {
  const refusal = (factory: string): TypeError =>
    new TypeError(`${factory}: option "limiter" must be a HashLimiter (new HashLimiter({ maxConcurrent, maxQueue })).`);

  test('unset is the process limiter; a HashLimiter, or anything shaped like one, is used as given', () => {
    expect(resolveLimiter('hashAndStore', undefined)).toBe(defaultHashLimiter());
    const limiter = new HashLimiter({ maxConcurrent: 1 });
    expect(resolveLimiter('hashAndStore', limiter)).toBe(limiter);
    // A limiter from a second copy of the package fails instanceof but has the methods.
    const lookalike = { tryRun: () => undefined, retryAfterSeconds: () => 1 };
    expect(resolveLimiter('passwordVerifier', lookalike)).toBe(lookalike);
  });

  test('anything else throws a TypeError naming the factory and the option', () => {
    const bad: unknown[] = [
      {},
      null,
      'limiter',
      4,
      { maxConcurrent: 1 },
      { tryRun: () => undefined },
      { retryAfterSeconds: () => 1 },
      { tryRun: () => undefined, retryAfterSeconds: 1 },
    ];
    for (const value of bad) {
      expect(() => resolveLimiter('hashAndStore', value)).toThrow(refusal('hashAndStore'));
    }
    const store = new MemoryStore();
    expect(() => hashAndStore({ store, limiter: {} } as never)).toThrow(refusal('hashAndStore'));
    expect(() => passwordVerifier({ store, limiter: { tryRun: () => undefined } } as never)).toThrow(refusal('passwordVerifier'));
  });
});

describe('callerKey', () => {
  const byHand = (fields: object): Request => fields as Request;

  /** Runs a requireOwnership guard that lets `principal` through on `req`. */
  async function owned(req: Request, principal: { kind: 'user' | 'instance'; id: string | number }): Promise<void> {
    const guard = requireOwnership({
      principal: () => principal,
      load: () => ({ id: 'srv-1' }),
      owner: () => principal,
    });
    await new Promise<void>((resolve, reject) => {
      guard(req, {} as Response, (err?: unknown) => (err === undefined ? resolve() : reject(err)));
    });
  }

  test('without an ownership check: the client address, else the socket address, else empty', () => {
    expect(callerKey(byHand({ ip: '192.0.2.1', socket: { remoteAddress: '198.51.100.7' } }))).toBe('["address","192.0.2.1"]');
    expect(callerKey(byHand({ ip: undefined, socket: { remoteAddress: '198.51.100.7' } }))).toBe('["address","198.51.100.7"]');
    expect(callerKey(byHand({ ip: undefined, socket: {} }))).toBe('["address",""]');
    // A request made by hand may have no socket at all.
    expect(callerKey(byHand({}))).toBe('["address",""]');
  });

  test('after an ownership check: the principal it let through, kind and id, whatever the address', async () => {
    const asUser = byHand({ ip: '192.0.2.1', socket: { remoteAddress: '192.0.2.1' } });
    await owned(asUser, { kind: 'user', id: 42 });
    expect(callerKey(asUser)).toBe('["principal","user","42"]');

    const asInstance = byHand({ ip: '192.0.2.1', socket: { remoteAddress: '192.0.2.1' } });
    await owned(asInstance, { kind: 'instance', id: '42' });
    expect(callerKey(asInstance)).toBe('["principal","instance","42"]');

    // Same address, different principals: different shares; the user 42 is one caller from anywhere.
    const sameUserElsewhere = byHand({ ip: '203.0.113.9' });
    await owned(sameUserElsewhere, { kind: 'user', id: '42' });
    expect(new Set([callerKey(asUser), callerKey(asInstance), callerKey(byHand({ ip: '192.0.2.1' }))]).size).toBe(3);
    expect(callerKey(sameUserElsewhere)).toBe(callerKey(asUser));
  });

  describe.each(expressVersions)('%s', (_name, express) => {
    test('a real request is keyed by its address, or by its principal once requireOwnership let it through', async () => {
      const app = express();
      const guard = requireOwnership({
        principal: (req) => (req.get('X-User') === undefined ? undefined : { kind: 'user', id: String(req.get('X-User')) }),
        load: () => ({ owner: 'u-7' }),
        owner: (server) => ({ kind: 'user', id: server.owner }),
      });
      app.get('/anonymous', (req, res) => {
        res.json({ key: callerKey(req), ip: req.ip });
      });
      app.get('/owned', guard, (req, res) => {
        res.json({ key: callerKey(req) });
      });
      const anonymous = await request(app).get('/anonymous');
      expect(anonymous.body.key).toBe(JSON.stringify(['address', anonymous.body.ip]));
      expect(anonymous.body.ip).toMatch(/127\.0\.0\.1|::1/);
      const owner = await request(app).get('/owned').set('X-User', 'u-7');
      expect(owner.body).toEqual({ key: '["principal","user","u-7"]' });
    });
  });
});
