import express5 from 'express';
import request from 'supertest';
import { problem } from '../../lib';
import { createApp, expressVersions } from './express';
import { codes, expectNoLeak, expectProblem } from './problem';

test('the harness runs the suite on real Express 4 and Express 5', () => {
  const majors = expressVersions.map(([name]) => {
    const pkg = name === 'express 4' ? 'express4/package.json' : 'express/package.json';
    return (require(pkg) as { version: string }).version.split('.')[0];
  });
  expect(majors).toEqual(['4', '5']);
});

describe('the answer helpers fail on what they check', () => {
  const SECRET = 'a "quoted" secret/é';
  const app = createApp(express5, (req, res, next) => {
    if (req.path === '/leak') res.json({ echo: req.query['q'] });
    else next(problem(409, 'password.already_set', 'The password is set once.'));
  });

  test('expectProblem: status, content type, type, code, status in the body and the detail', async () => {
    const res = await request(app).get('/');
    expectProblem(res, 409, 'password.already_set');
    expectProblem(res, 409, 'password.already_set', 'The password is set once.');
    expectProblem(res, 409, 'password.already_set', /set once/);
    const fetched = {
      status: res.status,
      headers: new Headers({ 'content-type': res.headers['content-type'] ?? '' }),
      body: res.body as unknown,
    };
    expectProblem(fetched, 409, 'password.already_set');

    expect(() => expectProblem(res, 410, 'password.already_set')).toThrow();
    expect(() => expectProblem(res, 409, 'password.not_set')).toThrow();
    expect(() => expectProblem(res, 409, 'password.already_set', 'Another detail.')).toThrow();
    expect(() => expectProblem(res, 409, 'password.already_set', /another/)).toThrow();
    expect(() =>
      expectProblem(
        { ...fetched, headers: new Headers({ 'content-type': 'application/json; charset=utf-8' }) },
        409,
        'password.already_set',
      ),
    ).toThrow();
    expect(() =>
      expectProblem({ ...fetched, body: { ...(res.body as object), type: 'about:blank' } }, 409, 'password.already_set'),
    ).toThrow();
    expect(() =>
      expectProblem({ ...fetched, body: { ...(res.body as object), status: 500 } }, 409, 'password.already_set'),
    ).toThrow();
  });

  test('expectNoLeak: the secret as sent, JSON-escaped or percent-encoded', async () => {
    expectNoLeak(await request(app).get('/leak').query({ q: 'nothing secret' }), SECRET);
    expect(() => expectNoLeak({ status: 200, headers: {}, text: `x${SECRET}x` } as request.Response, SECRET)).toThrow();
    const echoed = await request(app).get('/leak').query({ q: SECRET });
    expect(() => expectNoLeak(echoed, SECRET)).toThrow();
    expect(() =>
      expectNoLeak(
        { status: 200, headers: { location: `/x?q=${encodeURIComponent(SECRET)}` }, text: '' } as unknown as request.Response,
        SECRET,
      ),
    ).toThrow();
  });

  test('codes: the code of each listed fault, in order', () => {
    expect(codes({ body: { errors: [{ code: 'too_short' }, { code: 'weak' }] } })).toEqual(['too_short', 'weak']);
    expect(codes({ body: {} })).toEqual([]);
  });
});
