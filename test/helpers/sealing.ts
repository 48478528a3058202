import { randomBytes } from 'node:crypto';
import type { Express, Request, RequestHandler, Response } from 'express';
import {
  encryptAndStore,
  passwordVerifier,
  problemHandler,
  responseEncoder,
  revealSecret,
  revealedSecret,
  sealedSecret,
} from '../../lib';
import type { KeyProvider, PasswordStore, ProblemLogEntry } from '../../lib';
import type { ExpressFactory } from './express';
import { stubValidator } from './password';

/** Fixed test keys, 32 random-looking bytes each, as `openssl rand -base64 32` prints them. */
export const K1 = '6u5hD/QR4RQsJ7d+jKAAIJubSwAgEuxA7NWNVoOsZNs=';
export const K2 = 'lOEJrG8IgQXV9ILxgg24twsrqHEndqjXCmhi3pSzxXI=';
export const K3 = randomBytes(32).toString('base64');

/** A value such as a guest agent posts: base64 of an RSA-2048 ciphertext (344 characters). */
export function guestValue(bytes = 256): string {
  return randomBytes(bytes).toString('base64');
}

export interface SealingApp {
  readonly app: Express;
  readonly logged: ProblemLogEntry[];
}

/**
 * `POST /servers/:id/secret` (stub validator, sealing storer, 201 with what was sealed),
 * `GET /servers/:id/secret` (reveal, 200 `{ password }`, `""` when none) and
 * `POST /servers/:id/verify` (the hashing verifier, to show it refuses a sealed record),
 * behind the response encoder, with `guard` (an ownership check) in front of each.
 */
export function sealingApp(
  express: ExpressFactory,
  options: {
    store: PasswordStore;
    keys: KeyProvider;
    readKeys?: KeyProvider;
    purpose?: string;
    rotate?: boolean;
    guard?: RequestHandler;
  },
): SealingApp {
  const { store, keys } = options;
  const logged: ProblemLogEntry[] = [];
  const app = express();
  const guard: RequestHandler[] = options.guard === undefined ? [] : [options.guard];
  const purpose = options.purpose === undefined ? {} : { purpose: options.purpose };
  app.use(responseEncoder());
  app.post(
    '/servers/:id/secret',
    ...guard,
    ...stubValidator(express),
    encryptAndStore({ store, keys, ...purpose }),
    (req: Request, res: Response) => {
      res.status(201).json({ sealed: sealedSecret(req) });
    },
  );
  app.get(
    '/servers/:id/secret',
    ...guard,
    revealSecret({
      store,
      keys: options.readKeys ?? keys,
      ...purpose,
      ...(options.rotate === undefined ? {} : { rotate: options.rotate }),
    }),
    (req: Request, res: Response) => {
      res.json({ password: revealedSecret(req) ?? '' });
    },
  );
  app.post(
    '/servers/:id/verify',
    ...guard,
    ...stubValidator(express),
    passwordVerifier({ store, cost: 10 }),
    (_req: Request, res: Response) => {
      res.json({ match: true });
    },
  );
  app.use(problemHandler({ log: (entry) => logged.push(entry) }));
  return { app, logged };
}

/** Every form in which a posted value could leak: as posted, its base64 decoding, hex of either. */
export function leakForms(value: string): Buffer[] {
  const posted = Buffer.from(value, 'utf8');
  const forms = [
    posted,
    Buffer.from(posted.toString('hex')),
    Buffer.from(posted.toString('hex').toUpperCase()),
    Buffer.from(posted.toString('base64')),
  ];
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(value)) {
    const decoded = Buffer.from(value, 'base64');
    forms.push(decoded, Buffer.from(decoded.toString('hex')), Buffer.from(decoded.toString('hex').toUpperCase()));
  }
  return forms;
}

/**
 * The 16-byte pieces of `value`'s forms that `haystack` holds: any leaked run of 32 bytes
 * or more contains one. Empty when nothing leaked.
 */
export function leakedPieces(haystack: Buffer, value: string): string[] {
  const found: string[] = [];
  for (const form of leakForms(value)) {
    for (let start = 0; start + 16 <= form.length; start += 16) {
      const piece = form.subarray(start, start + 16);
      if (haystack.includes(piece)) found.push(piece.toString('hex'));
    }
  }
  return found;
}
