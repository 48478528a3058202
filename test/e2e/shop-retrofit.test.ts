import request from 'supertest';
import type { Express } from 'express';
import { createShopApp, md5 } from '../../examples/shop-app';
import { createRetrofittedShop } from '../../examples/shop-retrofit';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';

// The worked example of docs/retrofitting.md: the shop's legitimate flows pass with and
// without the bundle in front; each hole works on the bare app and is closed behind it.

const ALICE = { email: 'alice@example.com', password: 'alice in wonderland 1865' };
const BOB = { email: 'bob@example.com', password: 'bob builds bridges 1999' };
const NEW_PASSWORD = 'seven rivers under one old bridge';

interface Shop {
  readonly app: Express;
  readonly lines: string[];
  readonly db: ReturnType<typeof createShopApp>['db'];
}

function build(express: ExpressFactory, retrofitted: boolean): Shop {
  const lines: string[] = [];
  const options = { express, log: (line: string) => lines.push(line), secret: 'test-only-secret' };
  const shop = retrofitted ? createRetrofittedShop(options) : createShopApp(options);
  return { app: shop.app, lines, db: shop.db };
}

async function login(app: Express, who: { email: string; password: string }): Promise<string> {
  const res = await request(app).post('/rest/user/login').send(who);
  expect(res.status).toBe(200);
  return `Bearer ${String(res.body.authentication.token)}`;
}

describe.each(expressVersions)('the shop on %s', (_name, express) => {
  describe.each([
    ['without the bundle', false],
    ['with the bundle', true],
  ] as const)('legitimate flows %s', (_label, retrofitted) => {
    test('register, then log in with the new account', async () => {
      const { app } = build(express, retrofitted);
      const registered = await request(app).post('/api/Users').send({
        email: 'carol@example.com',
        password: 'violet climbs cold mountains',
        passwordRepeat: 'violet climbs cold mountains',
      });
      expect(registered.status).toBe(201);
      expect(registered.body.data.email).toBe('carol@example.com');
      await login(app, { email: 'carol@example.com', password: 'violet climbs cold mountains' });
    });

    test('log in by JSON and by form; a wrong password is refused', async () => {
      const { app } = build(express, retrofitted);
      await login(app, BOB);
      const form = await request(app).post('/rest/user/login').type('form').send(BOB);
      expect(form.status).toBe(200);
      const wrong = await request(app)
        .post('/rest/user/login')
        .send({ ...BOB, password: 'not my password' });
      expect(wrong.status).toBeGreaterThanOrEqual(400);
      expect(wrong.body.authentication).toBeUndefined();
      expect(typeof wrong.body.error).toBe('string');
    });

    test("see and check out one's own basket, and whoami", async () => {
      const { app } = build(express, retrofitted);
      const bob = await login(app, BOB);
      const basket = await request(app).get('/rest/basket/2').set('Authorization', bob);
      expect(basket.status).toBe(200);
      expect(basket.body.data.items).toBe('["banana juice"]');
      const order = await request(app).post('/rest/basket/2/checkout').set('Authorization', bob);
      expect(order.status).toBe(200);
      expect(order.body.orderConfirmation).toBe('order-2');
      const me = await request(app).get('/rest/user/whoami').set('Authorization', bob);
      expect(me.body.user.email).toBe(BOB.email);
    });

    test('change the password with current, new and repeat, then log in with it', async () => {
      const { app } = build(express, retrofitted);
      const bob = await login(app, BOB);
      const query = new URLSearchParams({ current: BOB.password, new: NEW_PASSWORD, repeat: NEW_PASSWORD });
      const changed = await request(app).get(`/rest/user/change-password?${query.toString()}`).set('Authorization', bob);
      expect(changed.status).toBe(200);
      expect(changed.body.user.email).toBe(BOB.email);
      await login(app, { email: BOB.email, password: NEW_PASSWORD });
    });
  });

  describe.each([
    ['the bare app has it', false],
    ['the bundle closes it', true],
  ] as const)('holes: %s', (_label, retrofitted) => {
    const open = !retrofitted;

    test("IDOR: bob reads and checks out alice's basket", async () => {
      const { app } = build(express, retrofitted);
      const bob = await login(app, BOB);
      const read = await request(app).get('/rest/basket/1').set('Authorization', bob);
      const checkout = await request(app).post('/rest/basket/1/checkout').set('Authorization', bob);
      expect(read.status).toBe(open ? 200 : 404);
      expect(checkout.status).toBe(open ? 200 : 404);
      if (!open) expect(read.body).toEqual({ error: 'The resource does not exist or the caller may not access it.' });
    });

    test('a stolen token changes the password without the current one', async () => {
      const { app, db } = build(express, retrofitted);
      const bob = await login(app, BOB);
      const res = await request(app)
        .get(`/rest/user/change-password?new=${encodeURIComponent(NEW_PASSWORD)}&repeat=${encodeURIComponent(NEW_PASSWORD)}`)
        .set('Authorization', bob);
      expect(res.status).toBe(open ? 200 : 400);
      const row = db.prepare('SELECT password FROM users WHERE id = 2').get() as { password: string };
      expect(row.password === md5(NEW_PASSWORD)).toBe(open);
    });

    test("login injection: alice's account without her password", async () => {
      const { app } = build(express, retrofitted);
      const res = await request(app).post('/rest/user/login').send({ email: "alice@example.com'--", password: 'anything' });
      expect(res.status === 200 && res.body.authentication?.umail === ALICE.email).toBe(open);
    });

    test('hashes and TOTP secrets leak in response bodies; the login token is kept (point 10)', async () => {
      const { app } = build(express, retrofitted);
      const registered = await request(app)
        .post('/api/Users')
        .send({ email: 'dave@example.com', password: 'dave digs deep wells', passwordRepeat: 'dave digs deep wells' });
      expect(registered.text.includes(md5('dave digs deep wells'))).toBe(open);
      const alice = await login(app, ALICE);
      expect(alice).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
      const me = await request(app).get('/rest/user/whoami').set('Authorization', alice);
      expect(me.status).toBe(200);
      expect(me.text.includes('JBSWY3DPEHPK3PXP')).toBe(open);
      expect(me.text.includes(md5(ALICE.password))).toBe(open);
    });

    test('the new password reaches the access log through the query string', async () => {
      const { app, lines } = build(express, retrofitted);
      const bob = await login(app, BOB);
      const query = new URLSearchParams({ current: BOB.password, new: NEW_PASSWORD, repeat: NEW_PASSWORD });
      await request(app).get(`/rest/user/change-password?${query.toString()}`).set('Authorization', bob).expect(200);
      const leaked = lines.some((line) => line.includes('seven+rivers') || line.includes('bob+builds'));
      expect(leaked).toBe(open);
      expect(lines.some((line) => line.startsWith('GET /rest/user/change-password') && line.endsWith(' 200'))).toBe(true);
    });

    test("the app's own helmet weakens X-Frame-Options to SAMEORIGIN", async () => {
      const { app } = build(express, retrofitted);
      const res = await request(app).post('/rest/user/login').send(BOB);
      expect(res.headers['x-frame-options']).toBe(open ? 'SAMEORIGIN' : 'DENY');
    });
  });

  describe('the bundle fits the app (points 2, 11 and 12)', () => {
    test('refusals made in front of the app reach its access log, in its error shape', async () => {
      const { app, lines } = build(express, true);
      const bob = await login(app, BOB);
      const refused = await request(app).delete('/rest/basket/2').set('Authorization', bob);
      expect(refused.status).toBe(405);
      expect(refused.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(refused.body).toEqual({
        error: 'The method DELETE is not allowed on /rest/basket/2. Allowed methods: GET, HEAD, OPTIONS.',
      });
      await request(app).get('/rest/basket/1').set('Authorization', bob).expect(404);
      expect(lines).toEqual(expect.arrayContaining(['DELETE /rest/basket/2 405', 'GET /rest/basket/1 404']));
    });

    test("a weak new password, or a repeat that differs, is refused in the app's shape", async () => {
      const { app } = build(express, true);
      const weak = await request(app)
        .post('/api/Users')
        .send({ email: 'e@example.com', password: 'password1', passwordRepeat: 'password1' });
      expect(weak.status).toBe(422);
      expect(weak.body).toEqual({ error: 'The password was refused: one rule failed; see errors.' });
      const differs = await request(app)
        .post('/api/Users')
        .send({ email: 'e@example.com', password: 'eve eats early apples', passwordRepeat: 'eve eats early apple' });
      expect(differs.status).toBe(422);
    });
  });
});
