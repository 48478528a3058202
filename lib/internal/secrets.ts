import type { Request } from 'express';
import type { SealedSecret } from '../sealing/encrypt-and-store';
import { requestSlot } from './request-slot';

/**
 * What the password and secret middlewares keep for one request, in one slot: a request
 * that is validated, sealed or revealed costs one WeakMap entry, not one per kind of
 * value (each entry is a lookup per use and an ephemeron for the garbage collector).
 */
interface RequestSecrets {
  /** Values scrubbed from error text. A request has a handful, so a list beats a Set. */
  readonly values: string[];
  /** The validated password, until a storer or verifier takes it. */
  password: string | undefined;
  /** What revealSecret opened (`{ value: undefined }`: nothing stored), once it ran. */
  revealed: { readonly value: string | undefined } | undefined;
  /** What encryptAndStore stored, once it succeeded. */
  sealed: SealedSecret | undefined;
}

const secretsByRequest = requestSlot<RequestSecrets>();

function newSecrets(): RequestSecrets {
  return { values: [], password: undefined, revealed: undefined, sealed: undefined };
}

/** The request's secrets, made on first use. */
export function requestSecrets(req: Request): RequestSecrets {
  return secretsByRequest.getOrCreate(req, newSecrets);
}

/** The request's secrets, or `undefined` when nothing was kept for it yet. */
export function existingSecrets(req: Request): RequestSecrets | undefined {
  return secretsByRequest.get(req);
}

/**
 * Records a value that must never leave the process for this request (a submitted
 * password, a stored hash). The error handler scrubs these from any message it shows
 * or logs, as a last line of defence against a route that echoes its input in an error.
 */
export function markSecret(req: Request, value: string): void {
  if (value.length === 0) return;
  const { values } = requestSecrets(req);
  if (!values.includes(value)) values.push(value);
}

export const REDACTED = '[redacted]';

export function scrubSecrets(req: Request, text: string): string {
  const secrets = existingSecrets(req);
  if (secrets === undefined) return text;
  let result = text;
  for (const secret of secrets.values) result = result.split(secret).join(REDACTED);
  return result;
}

/**
 * Records what `revealSecret` opened for this request, after its ownership check
 * (`undefined`: nothing is stored). The response encoder lets this one value through
 * under a redacted key (`password`), since handing it back to its owner is the route's
 * purpose; when nothing is stored, the empty string passes instead.
 */
export function markRevealed(req: Request, value: string | undefined): void {
  if (value !== undefined) markSecret(req, value);
  requestSecrets(req).revealed = { value };
}

/** What was revealed for `req`: `undefined` when no reveal ran, `{ value: undefined }` when nothing was stored. */
export function revealedFor(req: Request): { readonly value: string | undefined } | undefined {
  return existingSecrets(req)?.revealed;
}
