/*
 * `npm start`: the demo of the reviewed password API with every fix in place.
 * Demo credentials only: never reuse these defaults anywhere real.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { LEGACY_DEMO_RECORDS, LEGACY_METADATA_TABLE, createDemoApp, demoTokens } from './demo-app';

const DEMO_METADATA_SECRET = 'demo-metadata-secret-change-me';
const DEMO_PEPPER = 'demo-pepper-change-me-0123456789abcdef';

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
const tokens = demoTokens(env);
const guessLimit = Number(env['GUESS_LIMIT'] ?? '5');
const guessWindowMs = Number(env['GUESS_WINDOW_MS'] ?? '60000');
const seedLegacy = env['SEED_LEGACY'] === '1';

mkdirSync(dataDir, { recursive: true, mode: 0o700 });
const demo = createDemoApp({
  filename: resolve(dataDir, 'demo.db'),
  tokens,
  metadataSecret,
  pepper,
  cost,
  guessLimit,
  guessWindowMs,
  seedLegacy,
});
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
  demo.close();
  process.exit(1);
});

server.listen(port, host, () => {
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const names = [...tokens].map(([token, user]) => `  ${user.id.padEnd(6)} Authorization: Bearer ${token}${user.admin ? '  (admin)' : ''}`);
  console.log(
    [
      `express-password-guard demo listening on ${url}`,
      `data: ${resolve(dataDir, 'demo.db')}`,
      'demo-only credentials (override with ALICE_TOKEN, BOB_TOKEN, ADMIN_TOKEN):',
      ...names,
      'servers: srv-alice (alice), srv-bob (bob)',
      `metadata secret: ${metadataSecret === DEMO_METADATA_SECRET ? `${metadataSecret} (demo default; set METADATA_SECRET)` : '(from METADATA_SECRET)'}`,
      `pepper: ${pepper === DEMO_PEPPER ? `${pepper} (demo default; set PASSWORD_PEPPER)` : '(from PASSWORD_PEPPER)'}`,
      ...(seedLegacy ? legacyLines() : []),
    ].join('\n'),
  );
});

function legacyLines(): string[] {
  const db = resolve(dataDir, 'demo.db');
  return [
    'legacy dataset (SEED_LEGACY=1), demo-only passwords:',
    ...LEGACY_DEMO_RECORDS.map(
      (record) =>
        `  ${record.server.padEnd(20)} ${record.owner.padEnd(6)} ${record.scheme.padEnd(9)} ${record.password.length > 40 ? `${record.password.slice(0, 24)}… (${record.password.length} chars, see LEGACY_DEMO_RECORDS)` : record.password}`,
    ),
    'migrate them (another terminal; the pepper is needed for the long metadata password):',
    `  PASSWORD_PEPPER='${pepper === DEMO_PEPPER ? DEMO_PEPPER : '…'}' npm run migrate -- --sqlite ${db} --metadata-table ${LEGACY_METADATA_TABLE} --pepper-env PASSWORD_PEPPER --cost ${cost}`,
  ];
}

let stopping = false;
function stop(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  console.log(`demo: ${signal}, finishing in-flight requests`);
  // In-flight requests finish; idle keep-alive sockets would hold close() open forever.
  server.close(() => {
    demo.close();
    console.log('demo: stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => {
    console.error('demo: requests still open after 10 s; closing them');
    server.closeAllConnections();
  }, 10_000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
