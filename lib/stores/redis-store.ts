import { createHash } from 'node:crypto';
import { assertKnownKeys, missingMethods, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { checkedRecord, copyRecord } from './store';
import type { PasswordRecord, PasswordStore } from './store';

/**
 * The part of a Redis client that {@link RedisStore} uses: an `ioredis` `Redis` or
 * `Cluster` fits it as is. Declared here so that this package does not depend on
 * `ioredis`; a thin adapter over another client (node-redis's `sendCommand`) fits too.
 * Every method must reject, not hang, when Redis cannot be reached.
 *
 * @example
 * import Redis from 'ioredis';
 * const client: RedisStoreClient = new Redis(process.env.REDIS_URL, { enableOfflineQueue: false });
 */
export interface RedisStoreClient {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, condition: 'NX'): Promise<'OK' | null>;
  del(key: string): Promise<number>;
  evalsha(sha1: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  /** Optional: only {@link RedisStore.ids} (the `migrate` command) uses it. */
  scan?(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', size: number): Promise<[string, string[]]>;
}

/**
 * Options of {@link RedisStore}.
 *
 * @example
 * const options: RedisStoreOptions = { client: redis, prefix: 'myapp:server-password:' };
 */
export interface RedisStoreOptions {
  /**
   * A connected Redis client, shared by every process that stores passwords; the store
   * never closes it. Configure it to fail fast rather than queue commands while Redis
   * is unreachable: `enableOfflineQueue: false` (connect before serving), or a small
   * `maxRetriesPerRequest`; and a `commandTimeout` for a Redis that stops answering
   * without closing the connection. A client that would queue forever
   * (`maxRetriesPerRequest: null` with the offline queue on) is refused. Required.
   * @default undefined: required
   */
  readonly client: RedisStoreClient;
  /**
   * Prepended to each id to make its key, so the records stay apart from the app's other
   * keys (and from other stores' records). It must end with `:`; an id's own `:` and `%`
   * are written `%3A` and `%25`, so a key has exactly one reading (prefix up to its last
   * `:`, then the id) and stores whose prefixes nest (`app:` and `app:users:`) can never
   * share a key. A prefix that nests with another store's on the same client is refused.
   * An `ioredis` `keyPrefix` applies on top.
   * @default 'epg:password:'
   */
  readonly prefix?: string;
}

const optionKeys: KeysEnum<RedisStoreOptions> = { client: true, prefix: true };

const CLIENT_METHODS = ['get', 'set', 'del', 'evalsha', 'eval'] as const;

// Compare-and-set in one script, so no other client's write can fall between the read
// and the write. A value that is not a JSON record makes the script fail: a 500.
const REPLACE_SCRIPT = `local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local record = cjson.decode(current)
if type(record) ~= 'table' or record['hash'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;
const REPLACE_SHA = createHash('sha1').update(REPLACE_SCRIPT).digest('hex');

/**
 * A {@link PasswordStore} in Redis, for an app that runs on several processes or hosts.
 * Each record is one string key, `prefix + id` (with `:` and `%` in the id escaped), holding the JSON of `{ hash, setAt,
 * scheme }` and no expiry. Set-once is `SET key value NX`, so Redis itself decides
 * between concurrent sets from any number of processes; the compare-and-set of `replace`
 * is a Lua script (`EVALSHA`, loaded on first use and after a Redis restart). A command
 * that fails (Redis down, a timeout, a key holding something else) rejects, which the
 * middlewares turn into a 5xx problem: never a pass. The store never writes a password:
 * only what `hashAndStore` hands it. Methods are async; quit the client on shutdown.
 *
 * @example
 * import Redis from 'ioredis';
 * const client = new Redis(process.env.REDIS_URL, {
 *   lazyConnect: true,
 *   enableOfflineQueue: false,
 *   maxRetriesPerRequest: 1,
 *   commandTimeout: 2000,
 * });
 * client.on('error', (err) => console.error('redis:', err.message));
 * await client.connect();
 * const store = new RedisStore({ client });
 * app.post('/servers/:id/password', passwordBody(), hashAndStore({ store }), created);
 */
export class RedisStore implements PasswordStore {
  /** What each id is prefixed with to make its key. */
  readonly prefix: string;
  readonly #client: RedisStoreClient;

  constructor(options: RedisStoreOptions) {
    assertKnownKeys('RedisStore', options, optionKeys);
    this.#client = checkedClient(options.client);
    const prefix = options.prefix ?? 'epg:password:';
    if (typeof prefix !== 'string') {
      throw optionError('RedisStore', 'prefix', `must be a string, such as 'epg:password:', got ${typeof prefix}.`);
    }
    if (!prefix.endsWith(':')) {
      throw optionError('RedisStore', 'prefix', `must end with ":" (such as 'epg:password:'), got ${JSON.stringify(prefix)}.`);
    }
    let prefixes = prefixesByClient.get(this.#client);
    if (prefixes === undefined) {
      prefixes = new Set();
      prefixesByClient.set(this.#client, prefixes);
    }
    for (const other of prefixes) {
      if (other !== prefix && (other.startsWith(prefix) || prefix.startsWith(other))) {
        throw optionError(
          'RedisStore',
          'prefix',
          `${JSON.stringify(prefix)} nests with the prefix ${JSON.stringify(other)} of another store on this client: one store's listing would read the other's keys; give them prefixes that do not start one another.`,
        );
      }
    }
    prefixes.add(prefix);
    this.prefix = prefix;
  }

  /** The Redis key the record of `id` is kept under (before any `ioredis` `keyPrefix`). */
  key(id: string): string {
    return this.prefix + encodeId(id);
  }

  async setIfAbsent(id: string, record: PasswordRecord): Promise<boolean> {
    const reply = await this.#client.set(this.key(id), serialize(record), 'NX');
    if (reply === 'OK') return true;
    if (reply === null) return false;
    throw new TypeError('RedisStore: SET … NX answered something other than OK or nothing.');
  }

  async get(id: string): Promise<PasswordRecord | undefined> {
    const value = await this.#client.get(this.key(id));
    if (value === null || value === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = typeof value === 'string' ? JSON.parse(value) : undefined;
    } catch {
      parsed = undefined;
    }
    // The value itself stays out of the message: it could be anything someone wrote there.
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TypeError(`RedisStore: the key of a password record holds something other than a JSON record.`);
    }
    const record = checkedRecord(parsed);
    return record === undefined ? undefined : copyRecord(record);
  }

  async replace(id: string, expectedHash: string, record: PasswordRecord): Promise<boolean> {
    const args = [this.key(id), expectedHash, serialize(record)];
    let reply: unknown;
    try {
      reply = await this.#client.evalsha(REPLACE_SHA, 1, ...args);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      // EVAL also caches the script, so the next EVALSHA finds it.
      reply = await this.#client.eval(REPLACE_SCRIPT, 1, ...args);
    }
    if (reply === 1) return true;
    if (reply === 0) return false;
    throw new TypeError('RedisStore: the replace script answered something other than 0 or 1.');
  }

  async delete(id: string): Promise<boolean> {
    const removed = await this.#client.del(this.key(id));
    if (typeof removed !== 'number') throw new TypeError('RedisStore: DEL answered something other than a count.');
    return removed === 1;
  }

  /**
   * Every id with a record, by `SCAN` over the prefix (never `KEYS`, which blocks Redis).
   * SCAN may list a key twice; each id is given once. Needs a client with `scan`.
   */
  async *ids(): AsyncGenerator<string, void, undefined> {
    const client = this.#client;
    if (typeof client.scan !== 'function') {
      throw new TypeError('RedisStore: listing the ids needs a client with a scan method (an ioredis client has one).');
    }
    // ioredis adds its keyPrefix to keys but not to SCAN's pattern, and hands keys back with it.
    const settings = (client as { options?: { keyPrefix?: unknown } }).options;
    const keyPrefix = typeof settings?.keyPrefix === 'string' ? settings.keyPrefix : '';
    const full = keyPrefix + this.prefix;
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${globEscape(full)}*`, 'COUNT', 500);
      for (const key of keys) {
        // A key with another ":" after the prefix belongs to a store with a longer prefix.
        const id = key.startsWith(full) ? decodeId(key.slice(full.length)) : undefined;
        if (id === undefined || seen.has(id)) continue;
        seen.add(id);
        yield id;
      }
      cursor = next;
    } while (cursor !== '0');
  }
}

const prefixesByClient = new WeakMap<object, Set<string>>();

// Only ":" (the separator) and "%" (the escape) are written escaped, so the key of any
// other id is prefix + id as it always was.
function encodeId(id: string): string {
  return id.replace(/[%:]/g, (char) => (char === '%' ? '%25' : '%3A'));
}

function decodeId(encoded: string): string | undefined {
  if (encoded.includes(':')) return undefined;
  let valid = true;
  const id = encoded.replace(/%(..)?/g, (_match, code: string | undefined) => {
    if (code === '25') return '%';
    if (code === '3A') return ':';
    valid = false;
    return '';
  });
  return valid ? id : undefined;
}

// SCAN's MATCH is a glob: a prefix holding *, ?, [ or \\ must match itself only.
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

function serialize(record: PasswordRecord): string {
  const checked = checkedRecord(record);
  if (checked === undefined) throw new TypeError('RedisStore: a record to store must be { hash, setAt, scheme }.');
  return JSON.stringify(copyRecord(checked));
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && /^NOSCRIPT\b/.test(error.message);
}

function checkedClient(client: unknown): RedisStoreClient {
  if (typeof client !== 'object' || client === null) {
    throw optionError(
      'RedisStore',
      'client',
      `is required: an ioredis client (new Redis(url)) or an object with ${CLIENT_METHODS.join(', ')}, got ${client === null ? 'null' : typeof client}.`,
    );
  }
  const missing = missingMethods(client, CLIENT_METHODS);
  if (missing.length > 0) {
    throw optionError('RedisStore', 'client', `is not a Redis client: it has no ${missing.join(', ')} method.`);
  }
  // ioredis keeps its settings in `options`. With the offline queue on and no retry cap,
  // a command sent while Redis is down waits for it forever: the request hangs instead
  // of failing.
  const settings = (client as { options?: unknown }).options;
  if (typeof settings === 'object' && settings !== null) {
    const { enableOfflineQueue, maxRetriesPerRequest } = settings as Record<string, unknown>;
    if (enableOfflineQueue !== false && maxRetriesPerRequest === null) {
      throw optionError(
        'RedisStore',
        'client',
        'would wait forever while Redis is unreachable (maxRetriesPerRequest: null with the offline queue on): set enableOfflineQueue: false or a small maxRetriesPerRequest, such as 1.',
      );
    }
  }
  return client as RedisStoreClient;
}
