import type { Request, RequestHandler } from 'express';
import { asyncMiddleware } from '../internal/async';
import { problem } from '../internal/errors';
import { ownership } from './ownership';
import { assertKnownKeys, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { misconfigured } from '../hashing/bcrypt';
import { resolveVerify, verifyWith } from '../hashing/verify-password';
import type { VerifyPasswordOptions } from '../hashing/verify-password';
import { readRecordId, resolveIdReader } from './record-id';
import type { RecordIdReader, RecordIdSource } from './record-id';
import { clearSubmittedPassword, hasSubmittedPasswords, submittedPassword } from '../body/validated-password';
import { markSecret } from '../internal/secrets';
import { assertSource } from '../stores/store';
import type { PasswordSource, PasswordStore } from '../stores/store';

/**
 * Options of {@link requireCurrentPassword}, besides the hashing ones of
 * {@link VerifyPasswordOptions}.
 *
 * @example
 * const options: RequireCurrentPasswordOptions = { store: users, field: 'current' };
 */
export interface RequireCurrentPasswordOptions extends VerifyPasswordOptions {
  /** Where the caller's password is: a store, or a read-only source over your user table. Required. */
  readonly store: PasswordStore | PasswordSource;
  /**
   * The field holding the current password. {@link passwordBody} must list it in its
   * `secretFields` (it reads the field, scrubs it and keeps it for this check).
   * @default 'current'
   */
  readonly field?: string;
  /**
   * Whose password it must be: a reader or a dotted path (see {@link RecordIdSource}).
   * @default the principal that the last {@link requireOwnership} guard let through, as a string
   */
  readonly id?: RecordIdSource;
}

const optionKeys: KeysEnum<RequireCurrentPasswordOptions> = {
  cost: true,
  pepper: true,
  limiter: true,
  rehash: true,
  legacy: true,
  store: true,
  field: true,
  id: true,
};

const ownerId: RecordIdReader = (req) => {
  const owned = ownership(req);
  return owned === undefined ? undefined : String(owned.principal.id);
};

/**
 * Lets a password change through only when the request also carries the caller's
 * current password and it matches (OWASP ASVS 4.0.3 V2.1.6: "password change functionality requires the user's
 * current and new password"), so a stolen session or token alone cannot take the account over. Mount
 * it after `requireOwnership` and `passwordBody({ secretFields: ['current'] })`, before
 * the storer or the app's own handler. No current password → 400
 * `password.current_missing`; a wrong one, or an id without a record → 403
 * `password.current_mismatch` (one bcrypt compare either way); a full limiter → 503.
 * Legacy records (MD5 and the rest) are checked as {@link passwordVerifier} checks them.
 *
 * @example
 * app.post('/account/password',
 *   requireOwnership({ principal, load, owner: 'id' }),
 *   passwordBody({ field: 'new', repeat: 'repeat', secretFields: ['current'] }),
 *   requireCurrentPassword({ store }),
 *   hashAndStore({ store, id: (req) => String(ownership(req)?.principal.id), mode: 'replace' }),
 *   (_req, res) => { res.status(204).end(); });
 */
export function requireCurrentPassword(options: RequireCurrentPasswordOptions): RequestHandler {
  assertKnownKeys('requireCurrentPassword', options, optionKeys);
  const { store } = options;
  assertSource('requireCurrentPassword', 'store', store);
  if (options.rehash === true && store.replace === undefined) {
    throw optionError(
      'requireCurrentPassword',
      'rehash',
      'is true but the store has no replace method to write the upgraded hash.',
    );
  }
  const field = options.field ?? 'current';
  if (typeof field !== 'string' || field.length === 0) {
    throw optionError('requireCurrentPassword', 'field', 'must be a non-empty field name, such as "current".');
  }
  const readId = options.id === undefined ? ownerId : resolveIdReader('requireCurrentPassword', options.id);
  const config = resolveVerify('requireCurrentPassword', options);

  return asyncMiddleware('requireCurrentPassword', async (req: Request, _res, next) => {
    if (!hasSubmittedPasswords(req)) {
      next(
        misconfigured(
          `The password route is misconfigured: requireCurrentPassword runs before passwordBody({ secretFields: ['${field}'] }).`,
        ),
      );
      return;
    }
    const current = submittedPassword(req, field);
    clearSubmittedPassword(req, field);
    if (current === undefined) {
      next(problem(400, 'password.current_missing', `The request must include the current password in the "${field}" field.`));
      return;
    }
    markSecret(req, current);
    const id = readRecordId(req, readId);
    if (id === undefined) {
      next(
        misconfigured(
          'The password route is misconfigured: requireCurrentPassword found no account id; mount requireOwnership() before it or set its id option.',
        ),
      );
      return;
    }
    const { match } = await verifyWith(config, store, id, current, (value) => markSecret(req, value));
    if (!match) {
      next(problem(403, 'password.current_mismatch', 'The current password is not correct.'));
      return;
    }
    next();
  });
}
