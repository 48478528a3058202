import { createServer, request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sign } from './instance-identity';

/** A metadata proxy in front of the service, as neutron's metadata agent behaves. */
export interface MetadataProxy {
  readonly url: string;
  /** Every status the service answered through the proxy, in order. */
  readonly upstreamStatuses: number[];
  close(): Promise<void>;
}

// What neutron's agent passes through; it answers anything else with its own 500.
const PASSED = new Set([400, 403, 404, 409, 500]);

/**
 * Forwards the guest's request to the service at `servicePort` with only the headers the
 * real proxy sends (`X-Forwarded-For`, `X-Instance-ID`, `X-Tenant-ID` and the HMAC-SHA256
 * `X-Instance-ID-Signature` it computes; none of the guest's own, `Content-Type` included),
 * and maps the answer as it does: 200 with the service's body and type, 400, 403, 404,
 * 409 and 500 as the same status with its own body, every other status as a 500.
 */
export function metadataProxy(
  servicePort: number,
  options: { readonly secret: string; readonly instanceId: string; readonly tenantId: string },
): Promise<MetadataProxy> {
  const upstreamStatuses: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers: Record<string, string | number> = {
        'X-Forwarded-For': req.socket.remoteAddress ?? '127.0.0.1',
        'X-Instance-ID': options.instanceId,
        'X-Tenant-ID': options.tenantId,
        'X-Instance-ID-Signature': sign(options.instanceId, options.secret),
      };
      if (body.length > 0) headers['Content-Length'] = body.length;
      const upstream = httpRequest(
        { host: '127.0.0.1', port: servicePort, method: req.method, path: req.url, headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (part: Buffer) => parts.push(part));
          answer.on('end', () => {
            const status = answer.statusCode ?? 0;
            upstreamStatuses.push(status);
            if (status === 200) {
              res.writeHead(200, { 'Content-Type': answer.headers['content-type'] ?? 'text/plain' });
              res.end(Buffer.concat(parts));
            } else {
              const sent = PASSED.has(status) ? status : 500;
              res.writeHead(sent, { 'Content-Type': 'text/plain' });
              res.end(`${sent} from the metadata proxy\n`);
            }
          });
        },
      );
      upstream.on('error', () => {
        res.writeHead(500).end();
      });
      upstream.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        upstreamStatuses,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
