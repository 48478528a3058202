/*
 * The demo's state in Redis (REDIS_URL): servers, password records and guess counts, so
 * that any number of demo processes, on any number of hosts, act as one. demo-server.ts
 * imports this module only when REDIS_URL is set, so `npm start` without it never loads
 * ioredis or rate-limit-redis.
 */
import Redis from 'ioredis';
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
import type { RedisReply } from 'rate-limit-redis';
import { RedisStore } from '../lib';
import { maskRedisUrl } from '../lib/stores/redis-url';
import { DEMO_SERVERS } from './demo-app';
import type { DemoServer, DemoServers, DemoStorage } from './demo-app';

/** Every key the demo writes starts with this. */
export const DEMO_REDIS_PREFIX = 'epg-demo:';

/** `url` without its password or any other credential ioredis reads from it, for messages. */
export function redactRedisUrl(url: string): string {
  const masked = maskRedisUrl(url);
  return masked === '(an invalid URL)' ? '(an unparsable REDIS_URL)' : masked;
}

export interface DemoRedisStorage extends DemoStorage {
  readonly guesses: RateLimitRedisStore;
  /**
   * Resolves once the guess limiter's Lua scripts are loaded, rejects if they could not
   * be: rate-limit-redis loads them once, when the limiter is made, and never again after
   * a failure, which would make every verify a 500 until a restart. Call it after
   * `createDemoApp`, before listening.
   */
  ready(): Promise<void>;
}

/**
 * Connects to `url` and returns the demo's storage in it. Rejects when Redis cannot be
 * reached, so the demo refuses to start rather than serve 500s from the first request.
 * Once started, a Redis that goes away makes each request that needs it a 500 problem
 * (never a pass) until the client has reconnected, which it keeps trying.
 */
export async function redisStorage(url: string, log: (line: string) => void = console.error): Promise<DemoRedisStorage> {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new Error('REDIS_URL must be a URL such as redis://127.0.0.1:6379.');
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL, got ${protocol}//…`);
  }
  const where = redactRedisUrl(url);
  const redis = new Redis(url, {
    lazyConnect: true,
    // While Redis is away, a command fails at once (a 500) instead of waiting in a queue.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // A Redis that stops answering without closing the connection fails too.
    commandTimeout: 2000,
    connectTimeout: 5000,
  });

  // One line per outage, not one per reconnection attempt; before the first connection
  // the start-up failure says it all.
  let started = false;
  let closing = false;
  let down = false;
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
    if (!started || closing || down) return;
    down = true;
    log(`demo: redis ${where}: ${error.message}; requests that need Redis get a 500 until it is back`);
  });
  redis.on('close', () => {
    if (!started || closing || down) return;
    down = true;
    log(`demo: redis ${where}: connection closed; requests that need Redis get a 500 until it is back`);
  });
  redis.on('ready', () => {
    if (down) {
      log(`demo: redis ${where}: connected again`);
      // A Redis that came back empty (restarted without persistence, flushed) has lost
      // the demo's two servers; SET NX leaves them alone if it has not.
      seed().catch((error: Error) => log(`demo: redis ${where}: could not add the demo's servers again: ${error.message}`));
    }
    down = false;
  });

  try {
    await redis.connect();
  } catch (error) {
    closing = true;
    redis.disconnect();
    // ioredis rejects with "Connection is closed."; the socket's error says why.
    const reason = (lastError ?? (error as Error)).message;
    throw new Error(`Redis at ${where} is unreachable (${reason}); start it, or unset REDIS_URL to use SQLite.`);
  }
  started = true;

  const serverKey = (id: string): string => `${DEMO_REDIS_PREFIX}server:${id}`;
  const publicKeyKey = (id: string): string => `${DEMO_REDIS_PREFIX}server-key:${id}`;
  const servers: DemoServers = {
    add: async (server) => {
      // The key first: a server is only found once its owner is set, and then has its key.
      if (server.publicKey !== undefined) await redis.set(publicKeyKey(server.id), server.publicKey, 'NX');
      await redis.set(serverKey(server.id), server.owner, 'NX');
    },
    find: async (id): Promise<DemoServer | undefined> => {
      const [owner, publicKey] = await redis.mget(serverKey(id), publicKeyKey(id));
      if (owner === null || owner === undefined) return undefined;
      return publicKey === null || publicKey === undefined ? { id, owner } : { id, owner, publicKey };
    },
  };
  async function seed(): Promise<void> {
    for (const server of DEMO_SERVERS) await servers.add(server);
  }
  try {
    await seed();
  } catch (error) {
    closing = true;
    redis.disconnect();
    throw new Error(`Redis at ${where} refused the demo's servers (${(error as Error).message}).`);
  }

  // Made only now that the client is connected: its scripts are loaded when the limiter
  // is made (see ready()).
  const guesses = new RateLimitRedisStore({
    sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<RedisReply>,
    prefix: `${DEMO_REDIS_PREFIX}guess:`,
  });

  return {
    description: `${where} (servers, passwords and guess counts; keys ${DEMO_REDIS_PREFIX}*)`,
    servers,
    passwords: new RedisStore({ client: redis, prefix: `${DEMO_REDIS_PREFIX}password:` }),
    guesses,
    async ready() {
      // Both are set by init(), which express-rate-limit calls when the limiter is made.
      if ((guesses.incrementScriptSha as unknown) === undefined) {
        throw new Error('the guess limiter was not made: call createDemoApp first.');
      }
      try {
        await Promise.all([guesses.incrementScriptSha, guesses.getScriptSha]);
      } catch (error) {
        throw new Error(`Redis at ${where} did not load the guess limiter's scripts (${(error as Error).message}).`);
      }
    },
    async close() {
      closing = true;
      if (redis.status === 'ready') {
        try {
          await redis.quit();
          return;
        } catch {
          // Fall through: drop the connection instead.
        }
      }
      redis.disconnect();
    },
  };
}
