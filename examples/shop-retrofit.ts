/*
 * The retrofit of shop-app.ts: express-password-guard mounted in front of the unchanged
 * app, with the package's options only. docs/retrofitting.md walks through it.
 */
import express5 from 'express';
import type { Express } from 'express';
import {
  methodGuard,
  passwordBody,
  passwordVerifier,
  problemHandler,
  refusalLog,
  requestUser,
  requireCurrentPassword,
  requireOwnership,
  responseEncoder,
} from '../lib';
import type { PasswordRecord, PasswordSource } from '../lib';
import { createShopApp } from './shop-app';
import type { ShopApp, ShopOptions } from './shop-app';

export interface RetrofittedShop extends ShopApp {
  /** The app behind the bundle, as it was. */
  readonly inner: Express;
}

export function createRetrofittedShop(options: ShopOptions = {}): RetrofittedShop {
  const express = options.express ?? express5;
  const log = options.log ?? ((line: string) => console.log(line));
  const shop = createShopApp({ ...options, log });
  const { db, authenticatedUser } = shop;

  // The app's user table, read-only: MD5 digests, which the verifier checks as the 'md5' scheme.
  const userRecord = (row: { password: string } | undefined): PasswordRecord | undefined =>
    row === undefined ? undefined : { hash: row.password, scheme: 'md5', setAt: '1970-01-01T00:00:00.000Z' };
  const byEmail = db.prepare<[string], { password: string }>('SELECT password FROM users WHERE email = ?');
  const byId = db.prepare<[string], { password: string }>('SELECT password FROM users WHERE id = ?');
  const usersByEmail: PasswordSource = { get: (email) => userRecord(byEmail.get(email)) };
  const usersById: PasswordSource = { get: (id) => userRecord(byId.get(id)) };

  // The app keeps its signed-in users in its token map, the id nested in the claims.
  const principal = requestUser({ property: authenticatedUser, idField: 'data.id' });
  const signedIn = requireOwnership({ principal, load: (_req, caller) => ({ id: caller.id }), owner: 'id' });
  const basketOwner = requireOwnership({
    principal,
    load: (req) => db.prepare('SELECT userId FROM baskets WHERE id = ?').get(req.params['id']) as { userId: number } | undefined,
    owner: 'userId',
    // A claim may carry the id as "2" where the column holds 2.
    matchIds: 'normalized',
  });
  const warn = (): void => undefined;

  const outer = express();
  // Its token is what the login route exists to hand out; its hashes and TOTP secrets are not.
  outer.use(responseEncoder({ keep: ['token'], reapplyHeaders: true }));
  outer.post(
    '/rest/user/login',
    passwordBody({ purpose: 'verify', handOff: true }),
    passwordVerifier({ store: usersByEmail, id: 'body.email' }),
  );
  outer.post(
    '/api/Users',
    passwordBody({
      from: ['json', 'form'],
      repeat: 'passwordRepeat',
      handOff: true,
      context: (req) => [(req.body as { email?: string }).email],
    }),
  );
  outer.get(
    '/rest/user/change-password',
    signedIn,
    passwordBody({ from: 'query', field: 'new', repeat: 'repeat', secretFields: ['current'], handOff: true, query: { warn } }),
    requireCurrentPassword({ store: usersById }),
  );
  outer.use('/rest/basket/:id', methodGuard(['GET']), basketOwner);
  outer.use(shop.app);
  outer.use(
    refusalLog((entry) => log(`${entry.method} ${entry.path} ${entry.status}`)),
    // The app's clients read { "error": "…" }; every refusal keeps that shape.
    problemHandler({
      format: (error) => ({ contentType: 'application/json', body: { error: error.detail } }),
      log: (entry) => log(`${entry.method} ${entry.path} ${entry.status} ${entry.code}`),
    }),
  );
  return { ...shop, app: outer, inner: shop.app };
}
