import { constants, createPrivateKey, createPublicKey, publicEncrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import type { Demo } from '../../examples/demo-app';
import { newRsaKeyPair, parseSshRsaKey } from '../../examples/ssh-key';
import { expressVersions } from '../helpers/express';
import type { ExpressFactory } from '../helpers/express';
import { expectProblem } from '../helpers/problem';
import { openTestDemo } from '../helpers/demo';
import { sign } from '../helpers/instance-identity';
import type { TestDemo } from '../helpers/demo';

// The demo's OpenStack contract on Express 4 and 5: the metadata paths as the instance
// reaches them behind the proxy, and os-server-password as the owner's client calls it.

const SECRET = 'demo-openstack-metadata-secret';
const instance = (id: string, tenant = id === 'srv-alice' ? 'alice-project' : 'bob-project') => ({
  'X-Instance-ID': id,
  'X-Instance-ID-Signature': sign(id, SECRET),
  'X-Tenant-ID': tenant,
});
const PROXY_PASSES = [200, 400, 403, 404, 409];

describe.each(expressVersions)('the demo OpenStack contract on %s', (_name, express: ExpressFactory) => {
  let fixture: TestDemo;
  let dir: string;
  let demo: Demo;
  let ciphertext: string;

  beforeAll(() => {
    fixture = openTestDemo('openstack', {
      express,
      keyPairs: true,
      metadataSecret: SECRET,
      pepper: 'demo-openstack-pepper-0123456789abcdef',
    });
    ({ demo, dir } = fixture);
    const publicKey = createPublicKey(createPrivateKey(readFileSync(join(dir, 'srv-alice.pem'))));
    ciphertext = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
      Buffer.from('guest admin password'),
    ).toString('base64');
  });

  afterAll(() => fixture.close());

  const metadata = (path: string) => `/openstack${path}`;

  test('the version list and meta_data.json, for the signed instance in its project', async () => {
    const versions = await request(demo.app).get('/openstack').set(instance('srv-alice'));
    expect(versions.status).toBe(200);
    expect(versions.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(versions.text.split('\n')).toEqual(expect.arrayContaining(['2012-08-10', '2013-04-04', 'latest']));

    for (const version of ['2012-08-10', '2013-04-04', 'latest']) {
      const res = await request(demo.app)
        .get(metadata(`/${version}/meta_data.json`))
        .set(instance('srv-alice'));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ uuid: 'srv-alice', name: 'srv-alice', project_id: 'alice-project' });
      const keys = Object.values(res.body.public_keys as Record<string, string>);
      expect(keys).toHaveLength(1);
      expect(parseSshRsaKey(keys[0])?.bits).toBe(2048);
    }
    const unknown = await request(demo.app).get(metadata('/2011-01-01/meta_data.json')).set(instance('srv-alice'));
    expect(unknown.status).toBe(404);
    expect(unknown.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  test('who may ask: a bad or missing signature is 403, a wrong or missing project 404, in plain text', async () => {
    const cases: Array<[Record<string, string>, number]> = [
      [{}, 403],
      [{ ...instance('srv-alice'), 'X-Instance-ID-Signature': sign('srv-bob', SECRET) }, 403],
      [{ ...instance('srv-alice'), 'X-Instance-ID-Signature': sign('srv-alice', SECRET).toUpperCase() }, 403],
      [instance('srv-alice', 'bob-project'), 404],
      [{ 'X-Instance-ID': 'srv-alice', 'X-Instance-ID-Signature': sign('srv-alice', SECRET) }, 404],
      [instance('srv-nowhere', 'alice-project'), 404],
    ];
    for (const [headers, status] of cases) {
      for (const path of ['', '/latest/meta_data.json', '/2013-04-04/password']) {
        const res = await request(demo.app).get(metadata(path)).set(headers);
        expect([path, headers, res.status]).toEqual([path, headers, status]);
        expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
        expect(res.headers['www-authenticate']).toBeUndefined();
      }
    }
  });

  test('the guest password: empty until set, set once with no Content-Type, given back exactly, refusals only as the proxy passes them', async () => {
    const path = metadata('/2013-04-04/password');
    const statuses: number[] = [];
    const send = async (test: request.Test) => {
      const res = await test;
      statuses.push(res.status);
      return res;
    };
    const before = await send(request(demo.app).get(path).set(instance('srv-alice')));
    expect([before.status, before.text, before.headers['content-type']]).toEqual([200, '', 'text/plain; charset=utf-8']);
    expect((await send(request(demo.app).get(metadata('/2012-08-10/password')).set(instance('srv-alice')))).status).toBe(404);

    const raw = (body: string) => request(demo.app).post(path).set(instance('srv-alice')).send(body).unset('Content-Type');
    // Oversize, empty, not base64, base64 of the wrong length, a wrong method: all 400.
    for (const body of ['A'.repeat(1021), '', 'not base64 at all!', Buffer.alloc(255).toString('base64'), `${ciphertext}\n`]) {
      const res = await send(raw(body));
      expect([body.slice(0, 20), res.status]).toEqual([body.slice(0, 20), 400]);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
    for (const method of ['put', 'delete', 'patch'] as const) {
      expect((await send(request(demo.app)[method](path).set(instance('srv-alice')))).status).toBe(400);
    }
    expect((await send(request(demo.app).get(path).set(instance('srv-alice')))).text).toBe('');

    const posted = await send(raw(ciphertext));
    expect([posted.status, posted.text]).toEqual([200, '']);
    const again = await send(
      request(demo.app).post(path).set(instance('srv-alice')).type('application/octet-stream').send(ciphertext),
    );
    expect(again.status).toBe(409);
    for (const version of ['2013-04-04', 'latest', '2025-04-04']) {
      const read = await send(
        request(demo.app)
          .get(metadata(`/${version}/password`))
          .set(instance('srv-alice')),
      );
      expect([read.status, read.text]).toEqual([200, ciphertext]);
      expect(read.headers['cache-control']).toBe('no-store');
      expect(read.headers['etag']).toBeUndefined();
    }
    // Another instance sees its own, empty record.
    expect((await send(request(demo.app).get(path).set(instance('srv-bob')))).text).toBe('');
    for (const status of statuses) expect(PROXY_PASSES).toContain(status);

    // The hashed secret of /servers/:id/password is another record.
    const hashed = await request(demo.app).get('/servers/srv-alice/password').set('Authorization', 'Bearer alice-token');
    expect(hashed.body).toEqual({ passwordSet: false });
  });

  test('the metadata paths answer every method, path and caller only with a status the proxy passes', async () => {
    const paths = [
      '',
      '/',
      '/latest',
      '/latest/meta_data.json',
      '/2013-04-04/password',
      '/latest/password/',
      '/latest/password/verify',
      '/2012-08-10/password',
      '/LATEST/password',
    ];
    const callers = [
      {},
      instance('srv-alice'),
      instance('srv-alice', 'bob-project'),
      { ...instance('srv-bob'), 'X-Instance-ID-Signature': 'f'.repeat(64) },
    ];
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
      for (const path of paths) {
        for (const caller of callers) {
          const res = await request(demo.app)[method.toLowerCase() as 'get'](metadata(path)).set(caller);
          expect([method, path, PROXY_PASSES.includes(res.status)]).toEqual([method, path, true]);
        }
      }
    }
  });

  test("os-server-password: the owner and an admin read it, by X-Auth-Token or Bearer; anyone else gets Nova's itemNotFound", async () => {
    const path = '/v2.1/servers/srv-alice/os-server-password';
    const stored = (await request(demo.app).get(path).set('X-Auth-Token', 'alice-token')).body as { password: string };
    expect(typeof stored.password).toBe('string');
    for (const headers of [
      { 'X-Auth-Token': 'alice-token' },
      { Authorization: 'Bearer alice-token' },
      { 'X-Auth-Token': 'admin-token' },
    ]) {
      const res = await request(demo.app)
        .get(path)
        .set(headers)
        .set('Accept', 'application/json')
        .set('X-OpenStack-Nova-API-Version', '2.1');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.headers['etag']).toBeUndefined();
      expect(res.body).toEqual(stored);
    }
    const foreign = await request(demo.app).get(path).set('X-Auth-Token', 'bob-token');
    const missing = await request(demo.app).get('/v2.1/servers/srv-none/os-server-password').set('X-Auth-Token', 'bob-token');
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({
      itemNotFound: { code: 404, message: 'The resource does not exist or the caller may not access it.' },
    });
    expect(missing.body).toEqual(foreign.body);

    const nobody = await request(demo.app).get(path);
    expect(nobody.status).toBe(401);
    expect(Object.keys(nobody.body)).toEqual(['unauthorized']);
    const twoTokens = await request(demo.app)
      .get(path)
      .set('X-Auth-Token', 'bob-token')
      .set('Authorization', 'Bearer alice-token');
    expect(twoTokens.status).toBe(401);
    const wrongMethod = await request(demo.app).post(path).set('X-Auth-Token', 'alice-token');
    expect([wrongMethod.status, Object.keys(wrongMethod.body)]).toEqual([405, ['badMethod']]);
    expect(wrongMethod.headers['allow']).toBe('GET, HEAD, DELETE, OPTIONS');
    const elsewhere = await request(demo.app).get('/v2.1/servers').set('X-Auth-Token', 'alice-token');
    expect(Object.keys(elsewhere.body)).toEqual(['itemNotFound']);

    expect((await request(demo.app).delete(path).set('X-Auth-Token', 'bob-token')).status).toBe(404);
    const cleared = await request(demo.app).delete(path).set('X-Auth-Token', 'alice-token');
    expect([cleared.status, cleared.text]).toEqual([204, '']);
    expect((await request(demo.app).get(path).set('X-Auth-Token', 'alice-token')).body).toEqual({ password: '' });
  });

  test("POST /servers takes the owner's OpenSSH key, which its instance then reads and encrypts with", async () => {
    const pair = newRsaKeyPair('carol@laptop', 3072);
    const made = await request(demo.app)
      .post('/servers')
      .set('Authorization', 'Bearer bob-token')
      .send({ public_key: pair.publicKey });
    expect(made.status).toBe(201);
    expect(made.body).toEqual({ id: expect.stringMatching(/^srv-/), project_id: 'bob-project' });
    const id = made.body.id as string;
    const meta = await request(demo.app).get(metadata('/latest/meta_data.json')).set(instance(id, 'bob-project'));
    expect(Object.values(meta.body.public_keys)).toEqual([pair.publicKey.replace(/ carol@laptop$/, '')]);

    const encrypted = publicEncrypt(
      { key: createPublicKey(createPrivateKey(pair.privatePem)), padding: constants.RSA_PKCS1_PADDING },
      Buffer.from('x'),
    ).toString('base64');
    const posted = await request(demo.app)
      .post(metadata('/latest/password'))
      .set(instance(id, 'bob-project'))
      .send(encrypted)
      .unset('Content-Type');
    expect(posted.status).toBe(200);
    // A 2048-bit ciphertext is the wrong length for a 3072-bit key.
    expect((await request(demo.app).get(`/v2.1/servers/${id}/os-server-password`).set('X-Auth-Token', 'bob-token')).body).toEqual(
      { password: encrypted },
    );

    for (const bad of ['ssh-rsa AAAA', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbc', newRsaKeyPair('small', 1024).publicKey, 42]) {
      const res = await request(demo.app).post('/servers').set('Authorization', 'Bearer bob-token').send({ public_key: bad });
      expectProblem(res, 400, 'server.invalid_public_key');
    }
    // Without a key a server is made as before, but no guest password can be posted for it.
    const keyless = await request(demo.app).post('/servers').set('Authorization', 'Bearer bob-token');
    expect(keyless.status).toBe(201);
    const refused = await request(demo.app)
      .post(metadata('/latest/password'))
      .set(instance(keyless.body.id as string, 'bob-project'))
      .send(encrypted)
      .unset('Content-Type');
    expect(refused.status).toBe(400);
  });
});
