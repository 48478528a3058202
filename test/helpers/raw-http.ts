import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { Express } from 'express';

/** A listening app and the server side of every connection it accepted. */
export interface Listening {
  readonly server: Server;
  readonly port: number;
  readonly sockets: Socket[];
  close(): Promise<void>;
}

export function listen(app: Express): Promise<Listening> {
  return new Promise((resolve) => {
    const sockets: Socket[] = [];
    const server = app.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      resolve({
        server,
        port,
        sockets,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => {
              done();
            });
          }),
      });
    });
    server.on('connection', (socket: Socket) => {
      sockets.push(socket);
    });
  });
}

/** What a raw client saw: everything it received, and how the connection ended. */
export interface Exchange {
  readonly text: string;
  readonly status: number | undefined;
  /** The server closed (or reset) the connection before the exchange timed out. */
  readonly closed: boolean;
  readonly error: string | undefined;
}

/**
 * Opens a TCP connection, lets `talk` write whatever it wants (bytes, pauses, a
 * half-close or a reset), and collects what comes back until the connection closes or
 * `timeoutMs` passes. By default it closes its side when the server closes its own.
 */
export function exchange(
  port: number,
  talk: (socket: Socket) => void | Promise<void>,
  timeoutMs = 3000,
  { endOnEnd = true }: { readonly endOnEnd?: boolean } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const received: Buffer[] = [];
    let error: string | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      const text = Buffer.concat(received).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      socket.destroy();
      resolve({ text, status: match?.[1] === undefined ? undefined : Number(match[1]), closed, error });
    };
    const timer = setTimeout(() => {
      finish(false);
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    socket.on('end', () => {
      // A client that does not notice the server's FIN keeps sending: `endOnEnd: false`.
      if (endOnEnd) socket.end();
    });
    socket.on('close', () => {
      finish(true);
    });
    socket.on('connect', () => {
      Promise.resolve(talk(socket)).catch((e: unknown) => {
        error = String(e);
      });
    });
  });
}

/** Writes `data` and resolves once it is handed to the kernel, or the socket fails. */
export function write(socket: Socket, data: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    socket.write(data, () => {
      resolve();
    });
  });
}

export const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** The request line and headers of a POST, ending with the blank line. */
export function head(path: string, headers: Readonly<Record<string, string | number>>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** One chunk of a chunked body; `chunk('')` is the last one. */
export function chunk(data: string | Buffer): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')]);
}

/**
 * An attacker's upload: sends `requestHead` (which declares the framing), then `size`
 * bytes of body in 64 KiB blocks, as chunks when `framing` is 'chunked', for as long as
 * the socket stays open. It ignores the answer and the FIN and keeps sending; `sent`
 * tells how far it got before the server closed the connection.
 */
export async function flood(
  port: number,
  requestHead: string,
  size: number,
  framing: 'Content-Length' | 'chunked',
): Promise<Exchange & { readonly sent: number }> {
  const block = Buffer.alloc(64 * 1024, 0x61);
  const framed = framing === 'chunked' ? chunk(block) : block;
  let sent = 0;
  const res = await exchange(
    port,
    async (socket) => {
      await write(socket, requestHead);
      while (sent < size && !socket.destroyed) {
        await write(socket, framed);
        sent += block.length;
      }
    },
    10_000,
    { endOnEnd: false },
  );
  return { ...res, sent };
}

/** The body of an HTTP/1.1 answer with a Content-Length (what the problem handler writes). */
export function bodyOf(text: string): string {
  const start = text.indexOf('\r\n\r\n');
  return start < 0 ? '' : Buffer.from(text.slice(start + 4), 'latin1').toString('utf8');
}

/** Resolves once `condition()` holds, or rejects after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await pause(10);
  }
}
