import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import request from 'supertest';
import {
  hashAndStore,
  passwordVerifier,
  problemHandler,
  setValidatedPassword,
  storedPassword,
  verifiedPassword,
} from '../../lib';
import type { HashAndStoreOptions, HashLimiter, PasswordLocation, PasswordVerifierOptions } from '../../lib';
import type { ExpressFactory } from './express';

/**
 * Stands in for the validator in storer and verifier tests: it takes `{"password": …}`
 * as is (no content rules) and puts it where `passwordBody()` puts a validated one, so
 * these tests check the storer alone.
 */
export function stubValidator(express: ExpressFactory): RequestHandler[] {
  return [
    express.json({ limit: '4kb' }),
    (req: Request, _res: Response, next: NextFunction): void => {
      const body = req.body as { password?: unknown } | undefined;
      if (typeof body?.password === 'string') setValidatedPassword(req, body.password);
      next();
    },
  ];
}

/**
 * `POST /servers/:id/password` (stub validator, storer, 201 with the stored setAt) and
 * `POST /servers/:id/password/verify` (stub validator, verifier, 200 `{ match, rehashed }`).
 */
export function passwordApp(
  express: ExpressFactory,
  storer: HashAndStoreOptions,
  verifier: PasswordVerifierOptions = { store: storer.store, cost: storer.cost, pepper: storer.pepper, limiter: storer.limiter },
): Express {
  const app = express();
  app.post('/servers/:id/password', ...stubValidator(express), hashAndStore(storer), (req: Request, res: Response) => {
    res.status(201).json({ id: storedPassword(req)?.id, setAt: storedPassword(req)?.setAt, scheme: storedPassword(req)?.scheme });
  });
  app.post(
    '/servers/:id/password/verify',
    ...stubValidator(express),
    passwordVerifier(verifier),
    (req: Request, res: Response) => {
      res.json({ match: true, rehashed: verifiedPassword(req)?.rehashed });
    },
  );
  app.use(problemHandler({ log: false }));
  return app;
}

/** A POST of `password` to `path`, where `location` puts it, as a client would send it. */
export function sendFrom(app: Express, location: PasswordLocation, password: string, path: string): request.Test {
  switch (location) {
    case 'json':
      return request(app).post(path).type('application/json').send(JSON.stringify({ password }));
    case 'form':
      return request(app)
        .post(path)
        .type('application/x-www-form-urlencoded')
        .send(`password=${encodeURIComponent(password)}`);
    case 'text':
      return request(app).post(path).set('Content-Type', 'text/plain; charset=utf-8').send(password);
    case 'query':
      return request(app).post(`${path}?password=${encodeURIComponent(password)}`);
  }
}

/**
 * Takes one of `limiter`'s slots with a task that runs until `release()`: the way to make
 * the limiter full, or busy for a known time, without hashing anything.
 */
export function holdSlot(limiter: HashLimiter): { readonly release: () => void; readonly held: Promise<void> | undefined } {
  let release = (): void => undefined;
  const held = limiter.tryRun(
    () =>
      new Promise<void>((resolve) => {
        release = resolve;
      }),
  );
  return { release: () => release(), held };
}
