import { HashLimiter, defaultHashLimiter } from '../../../lib';
import { threadPoolSize } from '../../../lib/hashing/hash-limiter';

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
    expect(threadPoolSize({ UV_THREADPOOL_SIZE: '5000' })).toBe(1024);
    const limiter = new HashLimiter();
    expect(limiter.maxConcurrent).toBe(Math.max(1, threadPoolSize() - 1));
    expect(limiter.maxQueue).toBe(32);
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
    await limiter.tryRun(() => new Promise((resolve) => setTimeout(resolve, 300)));
    expect(limiter.retryAfterSeconds()).toBe(1);
    const gate = deferred();
    const queued = Array.from({ length: 8 }, () => limiter.tryRun(() => gate.promise));
    expect(limiter.retryAfterSeconds()).toBeGreaterThanOrEqual(2);
    gate.resolve();
    await Promise.all(queued);
  });

  test('maxQueue 0 refuses as soon as every slot is busy', async () => {
    const limiter = new HashLimiter({ maxConcurrent: 1, maxQueue: 0 });
    const gate = deferred();
    const running = limiter.tryRun(() => gate.promise);
    expect(limiter.tryRun(() => Promise.resolve())).toBeUndefined();
    gate.resolve();
    await running;
  });

  test('bad options throw', () => {
    expect(() => new HashLimiter({ maxConcurrent: 0 })).toThrow(/option "maxConcurrent" must be a whole number, 1 or more/);
    expect(() => new HashLimiter({ maxConcurrent: 1.5 })).toThrow(/option "maxConcurrent"/);
    expect(() => new HashLimiter({ maxQueue: -1 })).toThrow(/option "maxQueue" must be a whole number, 0 or more/);
    expect(() => new HashLimiter({ maxQueue: '32' } as never)).toThrow(/option "maxQueue"/);
    expect(() => new HashLimiter({ maxConcurent: 2 } as never)).toThrow(/Did you mean "maxConcurrent"/);
  });

  test('the default limiter is one per process', () => {
    expect(defaultHashLimiter()).toBe(defaultHashLimiter());
    expect(defaultHashLimiter()).toBeInstanceOf(HashLimiter);
  });
});
