/*
 * An existing-style shop API, written the way many Express apps are and deliberately
 * WITHOUT express-password-guard: it has the holes a retrofit must close (see
 * shop-retrofit.ts, which mounts the package in front of it without changing a line
 * here). Never deploy it as is: its login is injectable and its baskets are IDORs.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';
import express5 from 'express';
import type { Express, NextFunction, Request, Response } from 'express';
import helmet from 'helmet';

/** The user a verified token names, as the app keeps it in its token map. */
export interface ShopToken {
  readonly data: { readonly id: number; readonly email: string };
}

export interface ShopApp {
  readonly app: Express;
  readonly db: Database.Database;
  /** The signed-in user of a request (its bearer token), or `undefined`: the app's own lookup. */
  readonly authenticatedUser: (req: Request) => ShopToken | undefined;
}

export interface ShopOptions {
  /** The Express factory (4 or 5). */
  readonly express?: typeof express5;
  /** Where the app's access log lines go. */
  readonly log?: (line: string) => void;
  /** The HMAC key of its tokens. */
  readonly secret?: string;
}

export const md5 = (text: string): string => createHash('md5').update(text, 'utf8').digest('hex');

const base64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

/** Creates the shop with a fresh in-memory database: users 1 (alice) and 2 (bob), a basket each. */
export function createShopApp(options: ShopOptions = {}): ShopApp {
  const express = options.express ?? express5;
  const log = options.log ?? ((line: string) => console.log(line));
  const secret = options.secret ?? randomBytes(32).toString('hex');
  const db = new Database(':memory:');
  db.exec(`
    CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, password TEXT, totpSecret TEXT);
    CREATE TABLE baskets (id INTEGER PRIMARY KEY, userId INTEGER, items TEXT, checkedOut INTEGER DEFAULT 0);
    INSERT INTO users (id, email, password, totpSecret) VALUES
      (1, 'alice@example.com', '${md5('alice in wonderland 1865')}', 'JBSWY3DPEHPK3PXP'),
      (2, 'bob@example.com', '${md5('bob builds bridges 1999')}', '');
    INSERT INTO baskets (id, userId, items) VALUES (1, 1, '["apple juice"]'), (2, 2, '["banana juice"]');
  `);

  const tokens = new Map<string, ShopToken>();
  const sign = (payload: ShopToken): string => {
    const head = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify({ ...payload, iat: Date.now() }))}`;
    return `${head}.${base64url(createHmac('sha256', secret).update(head).digest())}`;
  };
  const authenticatedUser = (req: Request): ShopToken | undefined => {
    const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const [head, body, signature] = token.split('.');
    if (head === undefined || body === undefined || signature === undefined) return undefined;
    const expected = createHmac('sha256', secret).update(`${head}.${body}`).digest();
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return tokens.get(token);
  };
  const isAuthorized = (req: Request, res: Response, next: NextFunction): void => {
    if (authenticatedUser(req) === undefined) {
      res.status(401).json({ error: 'Unauthorized' });
      return;
    }
    next();
  };

  const app = express();
  app.use((req, res, next) => {
    res.on('finish', () => log(`${req.method} ${req.originalUrl} ${res.statusCode}`));
    next();
  });
  app.use(helmet({ frameguard: { action: 'sameorigin' } }));
  app.use(express.json());
  app.use(express.urlencoded({ extended: false }));

  app.post('/rest/user/login', (req, res) => {
    const { email, password } = req.body as { email?: string; password?: string };
    // The hole: the query is built by concatenation.
    const user = db
      .prepare(`SELECT id, email FROM users WHERE email = '${email ?? ''}' AND password = '${md5(password ?? '')}'`)
      .get() as { id: number; email: string } | undefined;
    if (user === undefined) {
      res.status(401).json({ error: 'Invalid email or password.' });
      return;
    }
    const token = sign({ data: { id: user.id, email: user.email } });
    tokens.set(token, { data: { id: user.id, email: user.email } });
    res.json({ authentication: { token, bid: user.id, umail: user.email } });
  });

  app.post('/api/Users', (req, res) => {
    const { email, password, passwordRepeat } = req.body as Record<string, string | undefined>;
    if (email === undefined || password === undefined || password !== passwordRepeat) {
      res.status(400).json({ error: 'Email, password and a matching passwordRepeat are required.' });
      return;
    }
    const info = db.prepare('INSERT INTO users (email, password, totpSecret) VALUES (?, ?, ?)').run(email, md5(password), '');
    db.prepare("INSERT INTO baskets (userId, items) VALUES (?, '[]')").run(info.lastInsertRowid);
    // The hole: the whole row goes back, hash included.
    res.status(201).json({ status: 'success', data: db.prepare('SELECT * FROM users WHERE id = ?').get(info.lastInsertRowid) });
  });

  app.get('/rest/user/whoami', isAuthorized, (req, res) => {
    const id = authenticatedUser(req)?.data.id;
    res.json({ user: db.prepare('SELECT * FROM users WHERE id = ?').get(id) });
  });

  app.get('/rest/user/change-password', isAuthorized, (req, res) => {
    const { current, new: next, repeat } = req.query as Record<string, string | undefined>;
    const id = authenticatedUser(req)?.data.id;
    const row = db.prepare('SELECT password FROM users WHERE id = ?').get(id) as { password: string };
    // The hole: without "current" the check is skipped.
    if (current !== undefined && md5(current) !== row.password) {
      res.status(401).json({ error: 'Current password is not correct.' });
      return;
    }
    if (next === undefined || next === '' || next !== repeat) {
      res.status(401).json({ error: 'New and repeated password do not match.' });
      return;
    }
    db.prepare('UPDATE users SET password = ? WHERE id = ?').run(md5(next), id);
    res.json({ user: { id, email: authenticatedUser(req)?.data.email } });
  });

  // The hole: any signed-in user reaches any basket by its id.
  app.get('/rest/basket/:id', isAuthorized, (req, res) => {
    const basket = db.prepare('SELECT * FROM baskets WHERE id = ?').get(req.params['id']);
    if (basket === undefined) {
      res.status(404).json({ error: 'No such basket.' });
      return;
    }
    res.json({ status: 'success', data: basket });
  });
  app.post('/rest/basket/:id/checkout', isAuthorized, (req, res) => {
    const info = db.prepare('UPDATE baskets SET checkedOut = 1 WHERE id = ?').run(req.params['id']);
    res
      .status(info.changes === 1 ? 200 : 404)
      .json(info.changes === 1 ? { orderConfirmation: `order-${req.params['id']}` } : { error: 'No such basket.' });
  });

  app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).json({ error: 'Unexpected error.' });
  });
  return { app, db, authenticatedUser };
}
