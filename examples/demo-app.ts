/*
 * The reviewed password API (OpenStack Nova's handle_password) rebuilt on Express with
 * every fix of the review chained in front of it. `demo-server.ts` starts it; the
 * tests build it with `createDemoApp` to attack it.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express5 from 'express';
import type { Express, Request, RequestHandler } from 'express';
import {
  SqliteStore,
  asyncMiddleware,
  guardRoute,
  guessLimit,
  localKeyRing,
  notFound,
  passwordRoutes,
  problem,
  problemHandler,
  requestUser,
  responseEncoder,
  securityEvents,
} from '../lib';
import type {
  GuessLimitStore,
  MaybePromise,
  PasswordStore,
  ProblemLogEntry,
  SecurityEventSink,
  SecurityEvents,
  UserPrincipal,
} from '../lib';
import { SERVER_PASSWORD_PURPOSE, computeRouter, metadataRouter, serverPasswordRecord } from './demo-openstack';
import { newRsaKeyPair, parseSshRsaKey, sshRsaText } from './ssh-key';

/** A user of the demo; tokens are demo-only and come from the environment. */
export interface DemoUser {
  readonly id: string;
  readonly admin: boolean;
}

export interface DemoServer {
  readonly id: string;
  readonly owner: string;
  /** The owner's OpenSSH `ssh-rsa` public key, given when the server was made. */
  readonly publicKey?: string;
}

/** Every demo user has one project, and their servers are in it. */
export function demoProject(userId: string): string {
  return `${userId}-project`;
}

/** The demo's servers table: which user owns which server. */
export interface DemoServers {
  /** Adds `server` unless a server with its id exists. */
  add(server: DemoServer): MaybePromise<void>;
  find(id: string): MaybePromise<DemoServer | undefined>;
}

/**
 * Where the demo keeps its state. Every process of one deployment must reach the same
 * one: the servers (who owns what), the password records and the guess counts.
 */
export interface DemoStorage {
  /** Where the state is, for the start-up banner (no credentials). */
  readonly description: string;
  readonly servers: DemoServers;
  readonly passwords: PasswordStore;
  /** Where guessLimit counts attempts; `undefined`: in this process's memory. */
  readonly guesses?: GuessLimitStore;
  close(): void | Promise<void>;
}

/** The servers every demo starts with. */
export const DEMO_SERVERS: readonly DemoServer[] = [
  { id: 'srv-alice', owner: 'alice' },
  { id: 'srv-bob', owner: 'bob' },
];

/**
 * The demo on one host: servers and password records in the SQLite file `filename`
 * (shared by the processes of this host that open it), guess counts in memory.
 */
export function sqliteStorage(filename: string): DemoStorage {
  const passwords = new SqliteStore({ filename });
  const db = passwords.database;
  db.exec('CREATE TABLE IF NOT EXISTS servers (id TEXT PRIMARY KEY, owner TEXT NOT NULL, public_key TEXT) STRICT');
  // A file from before servers had keys gets the column.
  const columns = db.prepare('SELECT name FROM pragma_table_info(?)').all('servers') as Array<{ name: string }>;
  if (!columns.some((column) => column.name === 'public_key')) db.exec('ALTER TABLE servers ADD COLUMN public_key TEXT');
  const insertServer = db.prepare('INSERT INTO servers (id, owner, public_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
  const selectServer = db.prepare('SELECT id, owner, public_key AS publicKey FROM servers WHERE id = ?');
  const servers: DemoServers = {
    add: (server) => {
      insertServer.run(server.id, server.owner, server.publicKey ?? null);
    },
    find: (id) => {
      const row = selectServer.get(id) as { id: string; owner: string; publicKey: string | null } | undefined;
      if (row === undefined) return undefined;
      return row.publicKey === null
        ? { id: row.id, owner: row.owner }
        : { id: row.id, owner: row.owner, publicKey: row.publicKey };
    },
  };
  for (const server of DEMO_SERVERS) servers.add(server);
  return { description: filename, servers, passwords, close: () => passwords.close() };
}

export interface DemoOptions {
  /** The SQLite file holding servers and password hashes (see {@link sqliteStorage}); not with `storage`. */
  readonly filename?: string;
  /** Where servers, passwords and guess counts live, instead of `filename`. */
  readonly storage?: DemoStorage;
  /** Bearer token → user. */
  readonly tokens: ReadonlyMap<string, DemoUser>;
  /** Shared secret of the metadata proxy that signs `X-Instance-ID`. */
  readonly metadataSecret: string;
  /** Server-side key of the HMAC-SHA-256 pre-hash. */
  readonly pepper: string;
  /**
   * Base64 of the 32-byte AES-256-GCM key that seals the guests' passwords.
   * @default 32 random bytes: sealed values do not outlive the process
   */
  readonly sealingKey?: string;
  /**
   * Where the seeded servers' key pairs are kept: `<server id>.pem`, the private key
   * (mode 0600), made at first start, for the walk-through. @default none: they have no key
   */
  readonly keyDir?: string;
  /** bcrypt cost. @default 12 */
  readonly cost?: number;
  /** The Express factory (4 or 5). @default express 5 */
  readonly express?: typeof express5;
  /** Verify attempts allowed per caller and server in each window. @default 5 */
  readonly guessLimit?: number;
  /** The guess-limit window in ms. @default 60000 */
  readonly guessWindowMs?: number;
  /** Sets, and deletes, allowed per caller and server per minute. @default 30 */
  readonly setLimit?: number;
  /** Where 5xx are logged. @default console.error */
  readonly log?: ((entry: ProblemLogEntry) => void) | false;
  /**
   * Seed the legacy dataset ({@link LEGACY_DEMO_RECORDS}, `SEED_LEGACY=1` in the demo
   * server): records as an app had them before this package, to migrate. @default false
   */
  readonly seedLegacy?: boolean;
  /** Where security events go (the demo server writes them with pino). @default none */
  readonly events?: SecurityEventSink;
}

/** One record of the seeded legacy dataset, with its (demo-only, public) password. */
export interface LegacyDemoRecord {
  readonly server: string;
  readonly owner: string;
  /** `'md5'`, `'sha1'`, `'plain'`, or `'metadata'`: clear-text chunks in the reviewed API's layout. */
  readonly scheme: string;
  readonly password: string;
}

/**
 * The legacy dataset: what an app held before the retrofit. The last one is a guest
 * agent's password the way the reviewed API keeps it (a few hundred base64 characters in
 * clear, in four 255-character metadata chunks); migrating it seals it under the demo's
 * sealing key, so that its owner gets it back from the os-server-password route.
 */
export const LEGACY_DEMO_RECORDS: readonly LegacyDemoRecord[] = [
  { server: 'srv-legacy-md5', owner: 'alice', scheme: 'md5', password: 'tangerine lantern 42' },
  { server: 'srv-legacy-sha1', owner: 'alice', scheme: 'sha1', password: 'quiet harbour bell' },
  { server: 'srv-legacy-plain', owner: 'bob', scheme: 'plain', password: 'copper kettle summer' },
  {
    server: 'srv-legacy-metadata',
    owner: 'alice',
    scheme: 'metadata',
    password: Buffer.from('demo guest-encrypted password '.repeat(10)).toString('base64'),
  },
];

/** The id of the demo's one sealing key, in the key ring `migrate --keys-env` reads. */
export const DEMO_SEALING_KEY_ID = 'demo-1';

/** The table the demo keeps the reviewed API's metadata in: `migrate --metadata-table` reads it. */
export const LEGACY_METADATA_TABLE = 'instance_system_metadata';

/**
 * The `migrate` arguments that move the legacy dataset of the demo's file `filename` into
 * its store, each metadata password sealed as the os-server-password route's record; the
 * key ring and the pepper come from the environment variables SEALING_KEYS and
 * PASSWORD_PEPPER.
 */
export function demoMigrateArguments(filename: string, cost: number): string[] {
  return [
    '--sqlite',
    filename,
    '--metadata-table',
    LEGACY_METADATA_TABLE,
    '--metadata-record-id',
    serverPasswordRecord('{id}'),
    '--keys-env',
    'SEALING_KEYS',
    '--purpose',
    SERVER_PASSWORD_PURPOSE,
    '--pepper-env',
    'PASSWORD_PEPPER',
    '--cost',
    String(cost),
  ];
}

/**
 * Seeds {@link LEGACY_DEMO_RECORDS}, set-once: records into `store`, the metadata chunks
 * into a table of its file, and each record's server through `addServer`.
 */
export function seedLegacyDataset(store: SqliteStore, addServer: (server: DemoServer) => void): void {
  const db = store.database;
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${LEGACY_METADATA_TABLE} (instance_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT, PRIMARY KEY (instance_uuid, key)) STRICT`,
  );
  const hasChunks = db.prepare(`SELECT 1 FROM ${LEGACY_METADATA_TABLE} WHERE instance_uuid = ?`);
  const insertChunk = db.prepare(`INSERT INTO ${LEGACY_METADATA_TABLE} (instance_uuid, key, value) VALUES (?, ?, ?)`);
  const setAt = '2019-05-14T09:30:00.000Z';
  for (const record of LEGACY_DEMO_RECORDS) {
    addServer({ id: record.server, owner: record.owner });
    if (record.scheme === 'metadata') {
      // Seeded once: after a migration blanked them, the chunks stay blank across restarts.
      if (hasChunks.get(record.server) !== undefined) continue;
      for (let i = 0; i < 4; i++) insertChunk.run(record.server, `password_${i}`, record.password.slice(i * 255, (i + 1) * 255));
      continue;
    }
    const hash =
      record.scheme === 'plain' ? record.password : createHash(record.scheme).update(record.password, 'utf8').digest('hex');
    // Set-once: a record migrated or upgraded since is kept.
    store.setIfAbsent(record.server, { hash, setAt, scheme: record.scheme });
  }
}

export interface Demo {
  readonly app: Express;
  readonly store: PasswordStore;
  readonly storage: DemoStorage;
  /** The registered sink's queue and windows, when `events` is set: flush it at shutdown. */
  readonly events: SecurityEvents | undefined;
  /** Closes the storage (the SQLite file, or the Redis connection). */
  close(): void | Promise<void>;
}

/** The demo's SqliteStore, for code that reads its file; throws on another storage (Redis). */
export function demoSqliteStore(demo: Pick<Demo, 'store'>): SqliteStore {
  if (!(demo.store instanceof SqliteStore)) throw new TypeError('This demo runs on another storage than SQLite.');
  return demo.store;
}

type DemoPrincipal = UserPrincipal<DemoUser>;

/** The demo's users and their tokens, overridable by environment. */
export function demoTokens(env: NodeJS.ProcessEnv = process.env): Map<string, DemoUser> {
  return new Map<string, DemoUser>([
    [env['ALICE_TOKEN'] ?? 'alice-token', { id: 'alice', admin: false }],
    [env['BOB_TOKEN'] ?? 'bob-token', { id: 'bob', admin: false }],
    [env['ADMIN_TOKEN'] ?? 'admin-token', { id: 'admin', admin: true }],
  ]);
}

export function createDemoApp(options: DemoOptions): Demo {
  const express = options.express ?? express5;
  if ((options.filename === undefined) === (options.storage === undefined)) {
    throw new TypeError('createDemoApp: give either "filename" (SQLite) or "storage", not both or neither.');
  }
  const storage = options.storage ?? sqliteStorage(options.filename as string);
  const store = storage.passwords;
  if (options.seedLegacy === true) {
    // The legacy dataset includes the reviewed API's metadata table, which only SQLite has.
    if (!(store instanceof SqliteStore))
      throw new TypeError('createDemoApp: "seedLegacy" needs the SQLite storage ("filename").');
    seedLegacyDataset(store, (server) => void storage.servers.add(server));
  }
  const seededKeys = options.keyDir === undefined ? new Map<string, string>() : seededKeyPairs(options.keyDir);
  const findServer = async (id: unknown): Promise<DemoServer | undefined> => {
    if (typeof id !== 'string') return undefined;
    const server = await storage.servers.find(id);
    const seeded = seededKeys.get(id);
    return server === undefined || server.publicKey !== undefined || seeded === undefined
      ? server
      : { ...server, publicKey: seeded };
  };
  const openStackServer = async (id: string) => {
    const server = await findServer(id);
    return server === undefined ? undefined : { ...server, project: demoProject(server.owner) };
  };
  const keys = localKeyRing({
    current: DEMO_SEALING_KEY_ID,
    keys: { [DEMO_SEALING_KEY_ID]: options.sealingKey ?? randomBytes(32).toString('base64') },
  });
  const log = options.log === undefined ? {} : { log: options.log };

  const app = express();
  app.disable('x-powered-by');
  // An ETag is a digest of the body: of a password, on the routes that hand one back.
  app.set('etag', false);
  // First, so that every refusal below, the 404s and 405s included, reaches the sink.
  const events =
    options.events === undefined ? undefined : securityEvents(options.events, { appid: 'express-password-guard-demo' });
  if (events !== undefined) app.use(events);

  // The demo's stand-in for an app's own authentication (passport, a JWT check …): it
  // leaves the user on req.user, where requestUser() looks by default. The compute API's
  // clients send the token as X-Auth-Token, never as Authorization.
  const authenticate: RequestHandler = (req, _res, next) => {
    const header = req.get('authorization');
    const bearer = header === undefined ? undefined : /^Bearer ([\x21-\x7e]+)$/.exec(header)?.[1];
    const authToken = req.get('x-auth-token');
    // Two different tokens name no one.
    const token = bearer !== undefined && authToken !== undefined && bearer !== authToken ? undefined : (bearer ?? authToken);
    const user = token === undefined ? undefined : options.tokens.get(token);
    if (user !== undefined) (req as Request & { user?: DemoUser }).user = user;
    next();
  };
  const user = requestUser<DemoUser>();

  // The reviewed service's OpenStack contract, each part in its clients' error format.
  app.use('/openstack', metadataRouter({ find: openStackServer, store, keys, secret: options.metadataSecret, ...log }));
  app.use('/v2.1', computeRouter<DemoUser>({ find: openStackServer, store, keys, authenticate, user, ...log }));

  // Finding 7 for every answer, the 404s and 405s included. The API answers JSON only,
  // so the headers that act on rendered documents are left out (see docs/performance.md).
  app.use(responseEncoder({ headerProfile: 'api' }));
  app.use(authenticate);

  const hashing = { cost: options.cost ?? 12, pepper: options.pepper };

  guardRoute(app, '/servers', {
    POST: [
      express.json({ limit: '8kb' }),
      asyncMiddleware('createServer', async (req, res, next) => {
        const caller = user(req);
        if (caller === undefined) {
          next(
            problem(401, 'ownership.unauthenticated', 'The request does not identify its caller.', {
              headers: { 'WWW-Authenticate': 'Bearer realm="demo"' },
            }),
          );
          return;
        }
        const given: unknown = (req.body as Record<string, unknown> | undefined)?.['public_key'];
        const key = given === undefined ? undefined : parseSshRsaKey(given);
        if (given !== undefined && key === undefined) {
          next(
            problem(
              400,
              'server.invalid_public_key',
              'public_key must be an OpenSSH "ssh-rsa …" public key of 2048 to 4096 bits.',
            ),
          );
          return;
        }
        const id = `srv-${randomUUID()}`;
        const owner = String(caller.id);
        await storage.servers.add({ id, owner, ...(key === undefined ? {} : { publicKey: key.text }) });
        res.status(201).json({ id, project_id: demoProject(owner) });
      }),
    ],
  });

  // A secret that is only ever checked, never handed back (a console or rescue password
  // of the owner's choosing): hashed, in a record of its own. The administrator password
  // the guest agent posts is another secret, sealed under /openstack and /v2.1.
  passwordRoutes<Express, DemoPrincipal, DemoServer>(app, {
    store,
    path: '/servers/:id/password',
    ownership: {
      principal: user,
      load: (req) => findServer(req.params['id']),
      owner: 'owner',
      allow: (caller) => caller.user.admin,
      challenge: 'Bearer realm="demo"',
    },
    body: { context: (req) => ['nova', 'openstack', req.params['id'], (req as Request & { user?: DemoUser }).user?.id] },
    hashing,
    // Online guessing: a few attempts per caller and server per minute, enough for two typos.
    // Counted in storage.guesses when it is shared (Redis), so N processes give one budget.
    beforeVerify: [
      guessLimit({
        limit: options.guessLimit ?? 5,
        windowMs: options.guessWindowMs ?? 60_000,
        ...(storage.guesses === undefined ? {} : { store: storage.guesses }),
      }),
    ],
    // One caller looping set and delete on his own server must not keep the hash pool
    // busy for everyone: a bounded number of sets and deletes per caller and server per minute.
    beforeSet: [guessLimit({ limit: options.setLimit ?? 30, windowMs: 60_000 })],
    beforeDelete: [guessLimit({ limit: options.setLimit ?? 30, windowMs: 60_000 })],
    encoder: false,
    errors: false,
  });

  app.use(notFound());
  app.use(problemHandler(log));

  return {
    app,
    store,
    storage,
    events,
    close: () => storage.close(),
  };
}

/**
 * The seeded servers' key pairs, made once: `<id>.pem` in `dir` holds the private key
 * (mode 0600, created exclusively so that two processes never write different ones).
 */
function seededKeyPairs(dir: string): Map<string, string> {
  const keys = new Map<string, string>();
  for (const server of DEMO_SERVERS) {
    const file = join(dir, `${server.id}.pem`);
    try {
      writeFileSync(file, newRsaKeyPair(`${server.id}-key`).privatePem, { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    keys.set(server.id, sshRsaText(createPublicKey(createPrivateKey(readFileSync(file))), `${server.id}-key`));
  }
  return keys;
}
