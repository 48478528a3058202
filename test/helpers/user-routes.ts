import type { Express, Request, RequestHandler } from 'express';
import { MemoryStore, passwordRoutes, requestUser } from '../../lib';
import type { PasswordRoutesOptions, UserPrincipal } from '../../lib';
import type { ExpressFactory } from './express';

export interface Server {
  readonly id: string;
  readonly owner: string;
}

export interface Account {
  readonly id: string;
}

/** `s1` is alice's, `s2` bob's; any other id does not exist. */
export const SERVERS: ReadonlyMap<string, Server> = new Map<string, Server>([
  ['s1', { id: 's1', owner: 'alice' }],
  ['s2', { id: 's2', owner: 'bob' }],
]);

export type UserRoutesOptions = Partial<PasswordRoutesOptions<UserPrincipal<Account>, Server>>;

/** Stands in for the app's login: the user named by `X-User` is `req.user`; without it, nobody. */
export function userFromHeader(): RequestHandler {
  return function userFromHeader(req, _res, next) {
    const name = req.get('x-user');
    if (name !== undefined) (req as Request & { user?: Account }).user = { id: name };
    next();
  };
}

/**
 * An app with `passwordRoutes` on `/servers/:id/password` for the signed-in user (see
 * {@link userFromHeader}) over {@link SERVERS}, bcrypt cost 10, and `extra` over that.
 * The preset answers its own routes' errors; other paths fall through to Express.
 */
export function userRoutesApp(
  express: ExpressFactory,
  store: MemoryStore = new MemoryStore(),
  extra: UserRoutesOptions = {},
): Express {
  const app = express();
  app.use(userFromHeader());
  passwordRoutes<Express, UserPrincipal<Account>, Server>(app, {
    store,
    ownership: { principal: requestUser<Account>(), load: (req) => SERVERS.get(String(req.params['id'])), owner: 'owner' },
    hashing: { cost: 10 },
    ...extra,
  });
  return app;
}
