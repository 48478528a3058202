import type { Request } from 'express';

const secretsByRequest = new WeakMap<Request, Set<string>>();

/**
 * Records a value that must never leave the process for this request (a submitted
 * password, a stored hash). The error handler scrubs these from any message it shows
 * or logs, as a last line of defence against a route that echoes its input in an error.
 */
export function markSecret(req: Request, value: string): void {
  if (value.length === 0) return;
  let secrets = secretsByRequest.get(req);
  if (secrets === undefined) {
    secrets = new Set();
    secretsByRequest.set(req, secrets);
  }
  secrets.add(value);
}

export const REDACTED = '[redacted]';

export function scrubSecrets(req: Request, text: string): string {
  const secrets = secretsByRequest.get(req);
  if (secrets === undefined) return text;
  let result = text;
  for (const secret of secrets) result = result.split(secret).join(REDACTED);
  return result;
}
