import type { Request } from 'express';
import { requestSlot } from './request-slot';

const secretsByRequest = requestSlot<Set<string>>();

/**
 * Records a value that must never leave the process for this request (a submitted
 * password, a stored hash). The error handler scrubs these from any message it shows
 * or logs, as a last line of defence against a route that echoes its input in an error.
 */
export function markSecret(req: Request, value: string): void {
  if (value.length === 0) return;
  secretsByRequest.getOrCreate(req, () => new Set()).add(value);
}

export const REDACTED = '[redacted]';

export function scrubSecrets(req: Request, text: string): string {
  const secrets = secretsByRequest.get(req);
  if (secrets === undefined) return text;
  let result = text;
  for (const secret of secrets) result = result.split(secret).join(REDACTED);
  return result;
}

const revealedByRequest = requestSlot<{ readonly value: string | undefined }>();

/**
 * Records what `revealSecret` opened for this request, after its ownership check
 * (`undefined`: nothing is stored). The response encoder lets this one value through
 * under a redacted key (`password`), since handing it back to its owner is the route's
 * purpose; when nothing is stored, the empty string passes instead.
 */
export function markRevealed(req: Request, value: string | undefined): void {
  if (value !== undefined) markSecret(req, value);
  revealedByRequest.set(req, { value });
}

/** What was revealed for `req`: `undefined` when no reveal ran, `{ value: undefined }` when nothing was stored. */
export function revealedFor(req: Request): { readonly value: string | undefined } | undefined {
  return revealedByRequest.get(req);
}
