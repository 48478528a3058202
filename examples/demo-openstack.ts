/*
 * The reviewed service's own OpenStack contract, with every fix in front of it: the
 * metadata paths the guest agent (cloudbase-init) uses behind the metadata proxy, and the
 * compute API's os-server-password that python-novaclient calls for the owner.
 */
import { Router } from 'express';
import type { Request, RequestHandler, Response } from 'express';
import {
  asyncMiddleware,
  encryptAndStore,
  guardRoute,
  methodGuard,
  notFound,
  ownership,
  passwordBody,
  problem,
  problemHandler,
  proxyStatuses,
  requireOwnership,
  responseEncoder,
  revealSecret,
  revealedSecret,
  signedInstanceIdentity,
  validatedPassword,
} from '../lib';
import type { InstancePrincipal, KeyProvider, MaybePromise, PasswordStore, ProblemLogEntry, UserPrincipal } from '../lib';
import { parseSshRsaKey } from './ssh-key';

/** What the OpenStack routes need to know of a server. */
export interface OpenStackServer {
  readonly id: string;
  readonly owner: string;
  readonly project: string;
  /** The owner's OpenSSH `ssh-rsa` key, which the guest encrypts the password with. */
  readonly publicKey?: string;
}

/** Nova's OpenStack metadata versions (nova/api/metadata/base.py), oldest first. */
export const METADATA_VERSIONS: readonly string[] = [
  '2012-08-10',
  '2013-04-04',
  '2013-10-17',
  '2015-10-15',
  '2016-06-30',
  '2016-10-06',
  '2017-02-22',
  '2018-08-27',
  '2020-10-14',
  '2025-04-04',
];
// The password path exists from Grizzly (2013-04-04), the version cloudbase-init posts to.
const PASSWORD_VERSIONS = new Set([...METADATA_VERSIONS.filter((v) => v >= '2013-04-04'), 'latest']);
const ALL_VERSIONS = new Set([...METADATA_VERSIONS, 'latest']);

/** The record the guest's sealed password is kept under: not the hashed secret's. */
export function serverPasswordRecord(serverId: string): string {
  return `${serverId}/os-server-password`;
}

/** The sealing purpose of the guest's password: the storer, the reveal routes and `migrate --purpose` share it. */
export const SERVER_PASSWORD_PURPOSE = 'os-server-password';
const PURPOSE = SERVER_PASSWORD_PURPOSE;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface OpenStackRouteOptions {
  readonly find: (id: string) => MaybePromise<OpenStackServer | undefined>;
  readonly store: PasswordStore;
  readonly keys: KeyProvider;
  readonly log?: ((entry: ProblemLogEntry) => void) | false;
}

/**
 * `/openstack` as the metadata service serves it to the instance behind the proxy: the
 * caller is the instance of the signed `X-Instance-ID`, in the project `X-Tenant-ID`
 * names (404 otherwise, as Nova). Errors in plain text, and only the statuses the proxy
 * passes: a refusal is 400, 403, 404 or 409.
 */
export function metadataRouter(options: OpenStackRouteOptions & { readonly secret: string }): Router {
  const router = Router();
  // The guest asks for text and JSON alike.
  router.use(responseEncoder({ requireJsonAccept: false }));
  const instance = requireOwnership<InstancePrincipal, OpenStackServer>({
    principal: signedInstanceIdentity({ secret: options.secret }),
    load: async (req, caller) => {
      const server = await options.find(caller.id);
      return server !== undefined && server.project === req.get('X-Tenant-ID') ? server : undefined;
    },
    owner: (server) => ({ kind: 'instance', id: server.id }),
    challenge: 'Signature realm="metadata"',
  });
  const server = (req: Request): OpenStackServer => instance.owned(req).resource;
  const record = (req: Request): string | undefined => {
    const id = ownership<InstancePrincipal, OpenStackServer>(req)?.resource.id;
    return id === undefined ? undefined : serverPasswordRecord(id);
  };
  router.use(instance);

  router.get('/', (_req, res) => {
    sendText(res, [...METADATA_VERSIONS, 'latest'].join('\n'));
  });
  router.get('/:version/meta_data.json', version(ALL_VERSIONS), (req, res) => {
    const found = server(req);
    const key = parseSshRsaKey(found.publicKey);
    res.json({
      uuid: found.id,
      name: found.id,
      hostname: found.id,
      project_id: found.project,
      launch_index: 0,
      availability_zone: 'nova',
      meta: {},
      public_keys: key === undefined ? {} : { [`${found.id}-key`]: key.text },
      keys: key === undefined ? [] : [{ name: `${found.id}-key`, type: 'ssh', data: key.text }],
    });
  });

  const route = router.route('/:version/password');
  // No 204 for OPTIONS either: the proxy would turn it into a 500.
  route.all(version(PASSWORD_VERSIONS), methodGuard(['GET', 'POST'], { handleOptions: false }));
  route.get(revealSecret({ store: options.store, keys: options.keys, recordId: record, purpose: PURPOSE }), (req, res) => {
    // Exactly as posted, or an empty body: the guest agent tests the length.
    sendText(res, revealedSecret(req) ?? '');
  });
  route.post(
    passwordBody({
      from: 'text',
      anyContentType: true,
      limit: 1020,
      maxLength: 1020,
      commonPasswords: false,
      composition: false,
      context: [],
    }),
    guestCiphertext(server),
    encryptAndStore({ store: options.store, keys: options.keys, recordId: record, purpose: PURPOSE }),
    (_req, res) => {
      // 200 and no body, as Nova: the proxy turns a 204 into a 500.
      res.status(200).end();
    },
  );

  router.use(notFound());
  router.use(
    problemHandler({
      format: 'text',
      statusMap: proxyStatuses([400, 403, 404, 409, 500], { 401: 403 }),
      ...(options.log === undefined ? {} : { log: options.log }),
    }),
  );
  return router;
}

/**
 * `/v2.1` as the compute API serves the owner: `GET`/`DELETE /servers/{id}/os-server-password`,
 * for the owner or an admin; someone else's server is as missing as a missing one (404).
 * Errors in Nova's fault format, which python-novaclient parses.
 */
export function computeRouter<U extends { readonly admin: boolean }>(
  options: OpenStackRouteOptions & {
    readonly authenticate: RequestHandler;
    readonly user: (req: Request) => UserPrincipal<U> | undefined;
  },
): Router {
  const router = Router();
  router.use(responseEncoder());
  router.use(options.authenticate);
  const owned = requireOwnership<UserPrincipal<U>, OpenStackServer>({
    principal: options.user,
    load: (req) => {
      const id: unknown = req.params['id'];
      return typeof id === 'string' ? options.find(id) : undefined;
    },
    owner: 'owner',
    allow: (caller) => caller.user.admin,
    challenge: 'Bearer realm="demo"',
  });
  const record = (req: Request): string | undefined => {
    const id = ownership<UserPrincipal<U>, OpenStackServer>(req)?.resource.id;
    return id === undefined ? undefined : serverPasswordRecord(id);
  };
  guardRoute(router, '/servers/:id/os-server-password', {
    GET: [
      owned,
      revealSecret({ store: options.store, keys: options.keys, recordId: record, purpose: PURPOSE }),
      (req, res) => {
        // The one answer that hands the value back, written here on purpose: res.json
        // would redact a "password" key, as it should everywhere else.
        const body = JSON.stringify({ password: revealedSecret(req) ?? '' }).replace(
          /[<>&\u2028\u2029]/g,
          (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
        );
        res.status(200).setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(req.method === 'HEAD' ? undefined : body);
      },
    ],
    DELETE: [
      owned,
      asyncMiddleware('clearServerPassword', async (req, res) => {
        const id = record(req);
        if (id === undefined) throw problem(500, 'password.misconfigured', 'The route has no server.');
        await options.store.delete(id);
        res.status(204).end();
      }),
    ],
  });
  router.use(notFound());
  router.use(problemHandler({ format: 'openstack-compute', ...(options.log === undefined ? {} : { log: options.log }) }));
  return router;
}

/** Only the versions Nova serves the path in; any other goes on to the 404. */
function version(versions: ReadonlySet<string>): RequestHandler {
  return function metadataVersion(req, _res, next) {
    const requested: unknown = req.params['version'];
    if (typeof requested === 'string' && versions.has(requested)) next();
    else next('route');
  };
}

/**
 * What a guest agent posts and nothing else: the base64 of one RSA block under the
 * instance's own public key (as long as its modulus), so a stray text or a second secret
 * is refused before anything is stored.
 */
function guestCiphertext(server: (req: Request) => OpenStackServer): RequestHandler {
  return function guestCiphertext(req, _res, next) {
    const posted = validatedPassword(req) ?? '';
    const key = parseSshRsaKey(server(req).publicKey);
    if (key === undefined) {
      next(
        problem(
          400,
          'password.no_public_key',
          'This instance has no public key: no guest agent can have encrypted a password for it.',
        ),
      );
      return;
    }
    const bytes = Math.ceil(key.bits / 8);
    if (!BASE64.test(posted) || Buffer.from(posted, 'base64').length !== bytes) {
      next(
        problem(
          400,
          'password.not_ciphertext',
          `The password must be the base64 of a ${bytes}-byte RSA ciphertext under this instance's public key, as the guest agent posts it.`,
        ),
      );
      return;
    }
    next();
  };
}

function sendText(res: Response, text: string): void {
  res.status(200).setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
