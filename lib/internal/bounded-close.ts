import type { IncomingMessage, ServerResponse } from 'node:http';

/** How much of a refused upload is still read, and for how long, before the socket goes. */
export interface DrainLimits {
  readonly drainBytes: number;
  readonly drainMs: number;
}

/** passwordBody's documented defaults, also used for refusals written before it runs. */
export const DEFAULT_DRAIN: DrainLimits = { drainBytes: 64 * 1024, drainMs: 2000 };

/** Requests already closing: a refusal seen twice (passwordBody, then the handler) drains once. */
const closing = new WeakSet<IncomingMessage>();

/**
 * Whether the request declares a body that has not all arrived. Answering such a
 * request and keeping the connection would make Node read and discard the rest of the
 * upload, however large, before the next request on it.
 */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete || req.readableEnded || req.destroyed) return false;
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && !/^0+$/.test(length);
}

/**
 * Makes the answer about to be written the last on its connection: it says
 * `Connection: close`; the rest of the upload is read and thrown away up to
 * `drainBytes`, after which reading stops; the socket is destroyed `drainMs` after the
 * refusal (or sooner if the client goes). Destroying at once would make the kernel reset
 * the connection while the client is still sending, and a client that had not yet read
 * its answer then loses it (nginx's lingering close exists for this); draining it all is
 * what Node and body-parser do, and is what lets a 50 MB upload cost 50 MB of reading.
 * The socket stays open for the time even once the bytes are used up: on a loopback a
 * fast client sends the allowance in well under a millisecond, and on a busy machine it
 * may not be scheduled to read the answer for much longer than that.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse, limits: DrainLimits): void {
  if (!res.headersSent) res.setHeader('Connection', 'close');
  if (req.readableEnded || req.destroyed || closing.has(req)) return;
  closing.add(req);
  const socket = req.socket;
  let discarded = 0;
  const timer = setTimeout(() => {
    socket.destroy();
  }, limits.drainMs);
  timer.unref();
  socket.once('close', () => {
    clearTimeout(timer);
  });
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded <= limits.drainBytes) return;
    // Node's own backpressure then stops the socket: the parser stops reading once the
    // paused request's buffer is full.
    req.off('data', onData);
    req.pause();
  };
  req.on('data', onData);
  req.resume();
  // Node's server calls destroySoon() once a "Connection: close" answer is flushed,
  // which destroys the socket at that moment: end our side only, and let the timer
  // above decide when the socket goes.
  socket.destroySoon = (): void => {
    socket.end();
  };
}
