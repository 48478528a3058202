import express5 from 'express';
import express4 from 'express4';
import type { Express, RequestHandler } from 'express';
import { problemHandler } from '../../lib';

export type ExpressFactory = typeof express5;

/** Every middleware test runs once per Express major version. */
export const expressVersions: ReadonlyArray<readonly [string, ExpressFactory]> = [
  ['express 4', express4 as unknown as ExpressFactory],
  ['express 5', express5],
];

export type Handler = RequestHandler;

/**
 * An app with the given middlewares on every path, a final handler that answers
 * `{ ok: true, method }`, and the package's problem handler (quiet unless a test
 * passes its own `log`).
 */
export function createApp(factory: ExpressFactory, ...middlewares: Handler[]): Express {
  const app = factory();
  for (const middleware of middlewares) app.use(middleware);
  app.use((req, res) => {
    res.json({ ok: true, method: req.method });
  });
  app.use(problemHandler({ log: false }));
  return app;
}

/** The problem+json content type the error handler writes. */
export const PROBLEM_JSON = /^application\/problem\+json; charset=utf-8$/;
