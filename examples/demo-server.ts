/*
 * `npm start`: the demo of the reviewed password API with every fix in place. State in
 * the SQLite file DATA_DIR/demo.db, or, with REDIS_URL, in Redis (demo-redis.ts), so that
 * several demo processes act as one.
 * Demo credentials only: never reuse these defaults anywhere real.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import pino from 'pino';
import {
  DEMO_SEALING_KEY_ID,
  LEGACY_DEMO_RECORDS,
  createDemoApp,
  demoMigrateArguments,
  demoTokens,
  sqliteStorage,
} from './demo-app';
import type { Demo } from './demo-app';
import type { SecurityEvent } from '../lib';

const DEMO_METADATA_SECRET = 'demo-metadata-secret-change-me';
const DEMO_PEPPER = 'demo-pepper-change-me-0123456789abcdef';
// Base64 of 32 bytes: "demo-sealing-key-change-me-00000".
const DEMO_SEALING_KEY = Buffer.from('demo-sealing-key-change-me-00000').toString('base64');

const env = process.env;
const host = env['HOST'] ?? '127.0.0.1';
const port = Number(env['PORT'] ?? '3000');
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be an integer from 0 to 65535, got "${env['PORT']}".`);
  process.exit(1);
}
const cost = Number(env['BCRYPT_COST'] ?? '12');
const dataDir = resolve(env['DATA_DIR'] ?? './data');
const metadataSecret = env['METADATA_SECRET'] ?? DEMO_METADATA_SECRET;
const pepper = env['PASSWORD_PEPPER'] ?? DEMO_PEPPER;
const sealingKey = env['SEALING_KEY'] ?? DEMO_SEALING_KEY;
const tokens = demoTokens(env);
const guessLimit = Number(env['GUESS_LIMIT'] ?? '5');
const guessWindowMs = Number(env['GUESS_WINDOW_MS'] ?? '60000');
const seedLegacy = env['SEED_LEGACY'] === '1';

// The defaults are printed at start: anyone who can reach a non-loopback address could
// use them to sign any instance id or log in as any user.
const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
const defaulted = [
  ...(env['METADATA_SECRET'] === undefined ? ['METADATA_SECRET'] : []),
  ...(env['PASSWORD_PEPPER'] === undefined ? ['PASSWORD_PEPPER'] : []),
  ...(env['SEALING_KEY'] === undefined ? ['SEALING_KEY'] : []),
  ...['ALICE_TOKEN', 'BOB_TOKEN', 'ADMIN_TOKEN'].filter((name) => env[name] === undefined),
];
if (!loopback && defaulted.length > 0) {
  console.error(
    `demo: cannot start: HOST=${host} is reachable from other machines, and ${defaulted.join(', ')} still have their public demo defaults; set them, or use HOST=127.0.0.1.`,
  );
  process.exit(1);
}

const redisUrl = env['REDIS_URL'] ?? '';

// One JSON line per security event on stdout. The event carries its own datetime and
// level, so pino adds no time, pid or hostname, and writes its level as "severity" (info,
// warn, error for CRITICAL) for log routers that key on one.
// Written synchronously: events are folded, so there are few, and none is lost at exit.
const eventLog = pino(
  { base: null, timestamp: false, formatters: { level: (label) => ({ severity: label }) } },
  pino.destination({ dest: 1, sync: true }),
);
const events = (event: SecurityEvent): void => {
  if (event.level === 'CRITICAL') eventLog.error(event);
  else if (event.level === 'WARN') eventLog.warn(event);
  else eventLog.info(event);
};

/**
 * REDIS_URL set: everything in Redis, shared by every process that uses the same URL.
 * Otherwise the SQLite file in DATA_DIR, and guess counts in this process's memory.
 */
async function openDemo(): Promise<Demo> {
  const options = { tokens, metadataSecret, pepper, sealingKey, cost, guessLimit, guessWindowMs, events };
  if (redisUrl === '') {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    // The seeded servers' private keys go beside the file. With Redis nothing is kept on
    // disk (each host would make its own pair): servers made by POST /servers carry theirs.
    return createDemoApp({ ...options, keyDir: dataDir, storage: sqliteStorage(resolve(dataDir, 'demo.db')), seedLegacy });
  }
  if (seedLegacy) throw new Error('SEED_LEGACY=1 seeds the SQLite file; unset REDIS_URL to use it.');
  // Loaded only here, so that `npm start` without REDIS_URL needs neither package.
  const { redisStorage } = await import('./demo-redis').catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'MODULE_NOT_FOUND' && error.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new Error(
      `REDIS_URL needs ioredis and rate-limit-redis, dev dependencies of this repository: run "npm ci" (${error.message.split('\n')[0]}).`,
    );
  });
  const storage = await redisStorage(redisUrl);
  try {
    const demo = createDemoApp({ ...options, storage });
    await storage.ready();
    return demo;
  } catch (error) {
    await storage.close();
    throw error;
  }
}

function serve(demo: Demo): void {
  const server = createServer(demo.app);

  // Express 5 hands a listen error to the callback as if it were success; listening on
  // the raw server and watching 'error' is the only honest way to say what happened.
  server.once('error', (error: NodeJS.ErrnoException) => {
    const reason =
      error.code === 'EADDRINUSE'
        ? `${host}:${port} is already in use; stop the other process or set PORT.`
        : error.code === 'EACCES'
          ? `no permission to listen on ${host}:${port}; use a PORT above 1023.`
          : error.message;
    console.error(`demo: cannot start: ${reason}`);
    void Promise.resolve(demo.close()).finally(() => process.exit(1));
  });

  server.listen(port, host, () => {
    const address = server.address() as AddressInfo;
    const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    // A token set through the environment is a real credential: name its variable, never print it.
    const names = [...tokens].map(([token, user]) => {
      const variable = `${user.id.toUpperCase()}_TOKEN`;
      const shown = env[variable] === undefined ? `Authorization: Bearer ${token}` : `(from ${variable})`;
      return `  ${user.id.padEnd(6)} ${shown}${user.admin ? '  (admin)' : ''}`;
    });
    console.log(
      [
        `express-password-guard demo listening on ${url}`,
        `data: ${demo.storage.description}`,
        `guess limit: ${guessLimit} verify attempts per caller and server every ${guessWindowMs / 1000} s, ${demo.storage.guesses === undefined ? 'counted in this process' : 'counted in Redis, shared by every process'}`,
        'demo-only credentials (override with ALICE_TOKEN, BOB_TOKEN, ADMIN_TOKEN):',
        ...names,
        'servers: srv-alice (alice, alice-project), srv-bob (bob, bob-project)',
        `compute endpoint (python-novaclient endpoint_override, X-Auth-Token: <token>): ${url}/v2.1`,
        `metadata (behind the proxy, signed X-Instance-ID, X-Tenant-ID): ${url}/openstack`,
        redisUrl === ''
          ? `private keys of the seeded servers (for the guest password): ${resolve(dataDir, 'srv-alice.pem')}, ${resolve(dataDir, 'srv-bob.pem')}`
          : 'seeded servers have no key pair with Redis: make one with POST /servers {"public_key": "ssh-rsa …"}',
        `metadata secret: ${metadataSecret === DEMO_METADATA_SECRET ? `${metadataSecret} (demo default; set METADATA_SECRET)` : '(from METADATA_SECRET)'}`,
        `pepper: ${pepper === DEMO_PEPPER ? `${pepper} (demo default; set PASSWORD_PEPPER)` : '(from PASSWORD_PEPPER)'}`,
        `sealing key: ${sealingKey === DEMO_SEALING_KEY ? `${sealingKey} (demo default; set SEALING_KEY to base64 of 32 random bytes)` : '(from SEALING_KEY)'}`,
        ...(seedLegacy ? legacyLines() : []),
      ].join('\n'),
    );
  });

  let stopping = false;
  function stop(signal: NodeJS.Signals): void {
    if (stopping) return;
    stopping = true;
    console.log(`demo: ${signal}, finishing in-flight requests`);
    // In-flight requests finish (their Redis commands too); then the storage closes.
    server.close(() => {
      void Promise.resolve()
        .then(() => demo.events?.flush())
        .then(() => demo.close())
        .then(
          () => {
            console.log('demo: stopped');
            process.exit(0);
          },
          (error: unknown) => {
            console.error(`demo: closing the storage failed: ${(error as Error).message}`);
            process.exit(1);
          },
        );
    });
    // Idle keep-alive sockets would hold close() open forever.
    server.closeIdleConnections();
    setTimeout(() => {
      console.error('demo: requests still open after 10 s; closing them');
      server.closeAllConnections();
    }, 10_000).unref();
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

openDemo().then(serve, (error: unknown) => {
  console.error(`demo: cannot start: ${(error as Error).message}`);
  process.exit(1);
});
function legacyLines(): string[] {
  const db = resolve(dataDir, 'demo.db');
  return [
    'legacy dataset (SEED_LEGACY=1), demo-only passwords:',
    ...LEGACY_DEMO_RECORDS.map(
      (record) =>
        `  ${record.server.padEnd(20)} ${record.owner.padEnd(6)} ${record.scheme.padEnd(9)} ${record.password.length > 40 ? `${record.password.slice(0, 24)}… (${record.password.length} chars, see LEGACY_DEMO_RECORDS)` : record.password}`,
    ),
    'migrate them (another terminal). The metadata password is sealed under the sealing key, never hashed:',
    'alice then gets it back from GET /v2.1/servers/srv-legacy-metadata/os-server-password (nova get-password):',
    `  PASSWORD_PEPPER=${pepper === DEMO_PEPPER ? `'${DEMO_PEPPER}'` : '"$PASSWORD_PEPPER"'} SEALING_KEYS=${keyRingWord()} npm run migrate -- ${demoMigrateArguments(db, cost).join(' ')}`,
  ];
}

/**
 * The demo's key ring as `migrate --keys-env` reads it, as one shell word: a key set
 * through SEALING_KEY is expanded by the shell, never printed.
 */
function keyRingWord(): string {
  if (sealingKey === DEMO_SEALING_KEY) {
    return `'${JSON.stringify({ current: DEMO_SEALING_KEY_ID, keys: { [DEMO_SEALING_KEY_ID]: DEMO_SEALING_KEY } })}'`;
  }
  return `"{\\"current\\":\\"${DEMO_SEALING_KEY_ID}\\",\\"keys\\":{\\"${DEMO_SEALING_KEY_ID}\\":\\"$SEALING_KEY\\"}}"`;
}
