import request from 'supertest';
import type { App } from 'supertest/types';

/**
 * A request with any method Node's HTTP parser knows, including the ones supertest's
 * typings leave out (TRACE, PROPFIND, …).
 */
export function send(app: App, method: string, path: string): request.Test {
  const agent = request(app) as unknown as Record<string, ((url: string) => request.Test) | undefined>;
  const fn = agent[method.toLowerCase()];
  if (fn === undefined) throw new Error(`supertest cannot send ${method}`);
  return fn.call(agent, path);
}
