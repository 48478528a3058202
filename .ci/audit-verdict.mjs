// Reads `npm audit --json` on stdin and decides: a known vulnerability at high or critical
// severity fails the run; an audit service that could not be reached (no network, DNS,
// a refused connection, or a registry that does not serve the advisory endpoint) is a
// warning, since it says nothing about the dependencies; anything else fails, as an
// audit whose answer cannot be read cannot pass.
import { readFileSync } from 'node:fs';

const text = readFileSync(0, 'utf8');
let report;
try {
  report = JSON.parse(text);
} catch {
  console.error(`audit: npm audit printed no JSON:\n${text.slice(0, 2000)}`);
  process.exit(1);
}

const counts = report?.metadata?.vulnerabilities;
if (counts !== undefined && typeof counts === 'object') {
  const serious = Object.values(report.vulnerabilities ?? {}).filter((v) => v.severity === 'high' || v.severity === 'critical');
  const total = Object.entries(counts)
    .map(([level, n]) => `${n} ${level}`)
    .join(', ');
  if (serious.length > 0 || (counts.high ?? 0) + (counts.critical ?? 0) > 0) {
    console.error(`audit: FAILED: vulnerabilities at high or critical severity in production dependencies (${total}):`);
    for (const v of serious) console.error(`  ${v.name} (${v.severity}): ${v.range ?? ''}`);
    process.exit(1);
  }
  console.log(`audit: no high or critical vulnerability in production dependencies (${total}).`);
  process.exit(0);
}

const message = String(report?.message ?? report?.error?.summary ?? '');
const status = Number(report?.statusCode);
const unreachable =
  /\b(ENOTFOUND|EAI_AGAIN|EAI_FAIL|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ECONNABORTED)\b/.test(message) ||
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH)\b/.test(
    String(report?.code ?? report?.error?.code ?? ''),
  ) ||
  status === 404 ||
  status === 405 ||
  status === 408 ||
  status === 429 ||
  status >= 500;
if (unreachable) {
  console.warn(`audit: WARNING: the registry's audit service could not be reached, so nothing was checked: ${message}`);
  process.exit(0);
}
console.error(`audit: npm audit failed: ${message || text.slice(0, 2000)}`);
process.exit(1);
