import type { Request } from 'express';
import { problem } from '../internal/errors';
import { existingSecrets, markSecret, requestSecrets } from '../internal/secrets';
import { requestSlot } from '../internal/request-slot';

/** Stores the validated, normalised password of this request (the validator calls it). */
export function setValidatedPassword(req: Request, password: string): void {
  requestSecrets(req).password = password;
  markSecret(req, password);
}

/**
 * The password that {@link passwordBody} validated and normalised for this request, or
 * `undefined` when none was validated. The one typed place later handlers read it from.
 */
export function validatedPassword(req: Request): string | undefined {
  return existingSecrets(req)?.password;
}

/** Forgets the request's password, once it has been hashed or compared. */
export function clearValidatedPassword(req: Request): void {
  const secrets = existingSecrets(req);
  if (secrets !== undefined) secrets.password = undefined;
}

/**
 * Takes the validated password off `req`, so that it is used once, or throws the 500
 * `password.misconfigured` of a route that mounts `middleware` without passwordBody()
 * before it. For middlewares wrapped by asyncMiddleware.
 */
export function takeValidatedPassword(req: Request, route: 'password' | 'secret', middleware: string): string {
  const secrets = existingSecrets(req);
  if (secrets?.password === undefined) {
    throw problem(
      500,
      'password.misconfigured',
      `The ${route} route is misconfigured: no validated ${route === 'secret' ? 'value' : 'password'} reached ${middleware}; mount passwordBody() before it.`,
    );
  }
  const password = secrets.password;
  secrets.password = undefined;
  return password;
}

const otherPasswords = requestSlot<ReadonlyMap<string, string>>();

/** Keeps the other password fields of a form (the current password, the repeat); passwordBody calls it. */
export function setSubmittedPasswords(req: Request, fields: ReadonlyMap<string, string>): void {
  otherPasswords.set(req, fields);
  for (const value of fields.values()) markSecret(req, value);
}

/**
 * The value, normalised, of another password field that {@link passwordBody} read for
 * this request (one of its `secretFields`, or its `repeat`), or `undefined` when that
 * field was not sent as a string. Such fields leave `req.body`, `req.query` and the URL
 * like the password does, so this is where {@link requireCurrentPassword} reads them.
 *
 * @example
 * const current = submittedPassword(req, 'current');
 */
export function submittedPassword(req: Request, field: string): string | undefined {
  return otherPasswords.get(req)?.get(field);
}

/** Forgets one of the other password fields, once it has been compared. */
export function clearSubmittedPassword(req: Request, field: string): void {
  const fields = otherPasswords.get(req);
  if (fields === undefined || !fields.has(field)) return;
  const rest = new Map(fields);
  rest.delete(field);
  otherPasswords.set(req, rest);
}

/** Whether passwordBody ran on this request (it records the other fields, even none). */
export function hasSubmittedPasswords(req: Request): boolean {
  return otherPasswords.has(req);
}
