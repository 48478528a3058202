import type request from 'supertest';
import { PROBLEM_JSON } from './express';

/** An answer as supertest gives it, or as a test builds it from fetch() (headers as `Headers`). */
export interface ProblemAnswer {
  readonly status: number;
  readonly headers: Headers | Readonly<Record<string, unknown>>;
  readonly body: unknown;
}

/**
 * Asserts that `res` is the problem handler's default answer for `code`: the HTTP
 * status, `application/problem+json; charset=utf-8`, and a body whose `type`, `code` and
 * `status` agree with them; with `detail`, the body's detail too (equal to a string,
 * matching a RegExp). One comparison, so a failure shows everything that differs.
 */
export function expectProblem(res: ProblemAnswer, status: number, code: string, detail?: string | RegExp): void {
  const contentType = res.headers instanceof Headers ? res.headers.get('content-type') : res.headers['content-type'];
  const body = typeof res.body === 'object' && res.body !== null ? res.body : {};
  expect({ status: res.status, contentType, body }).toEqual({
    status,
    contentType: expect.stringMatching(PROBLEM_JSON),
    body: expect.objectContaining({
      type: `urn:express-password-guard:${code}`,
      code,
      status,
      ...(detail === undefined ? {} : { detail: typeof detail === 'string' ? detail : expect.stringMatching(detail) }),
    }),
  });
}

/** The `code` of each fault a 422 lists in `errors`, in order; none: `[]`. */
export function codes(res: { readonly body: unknown }): string[] {
  const errors = (res.body as { errors?: { code: string }[] } | undefined)?.errors ?? [];
  return errors.map((error) => error.code);
}

/** The whole answer, as a client (or a log of it) would have it. */
function wholeResponse(res: request.Response): string {
  return `${res.status}\n${JSON.stringify(res.headers)}\n${res.text}`;
}

/** Asserts that `secret` is nowhere in the answer: neither as sent, nor JSON-escaped, nor percent-encoded. */
export function expectNoLeak(res: request.Response, secret: string): void {
  const whole = wholeResponse(res);
  for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
    expect(whole).not.toContain(form);
  }
}
