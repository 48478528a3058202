import type { Request } from 'express';
import { markSecret } from './secrets';

// A WeakMap rather than a property on `req`: loggers and error serialisers that dump the
// request object cannot see it, and it goes away with the request.
const passwords = new WeakMap<Request, string>();

/** Stores the validated, normalised password of this request (the validator calls it). */
export function setValidatedPassword(req: Request, password: string): void {
  passwords.set(req, password);
  markSecret(req, password);
}

/**
 * The password that {@link passwordBody} validated and normalised for this request, or
 * `undefined` when none was validated. The one typed place later handlers read it from.
 */
export function validatedPassword(req: Request): string | undefined {
  return passwords.get(req);
}

/** Forgets the request's password, once it has been hashed or compared. */
export function clearValidatedPassword(req: Request): void {
  passwords.delete(req);
}
