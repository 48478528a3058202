/** One HTTP/1.1 response as it came off the wire. */
export interface RawResponse {
  readonly status: number;
  /** Header names lower-cased; a repeated header keeps every value. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: Buffer;
}

/**
 * Splits what a server wrote on one connection into responses, framed by their
 * `Content-Length` (all this package writes) or by the end of the connection; 1xx, 204
 * and 304 answers have none. Bytes
 * that do not start with a status line end the parse and are returned as `rest`.
 */
export function parseResponses(bytes: Buffer): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', offset, 'latin1');
    if (end < 0) break;
    const lines = bytes.subarray(offset, end).toString('latin1').split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (match?.[1] === undefined) break;
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, [...(headers.get(name) ?? []), value]);
    }
    const status = Number(match[1]);
    // 1xx, 204 and 304 answers have no body, whatever their headers say.
    const bodyless = status < 200 || status === 204 || status === 304;
    const length = bodyless ? '0' : headers.get('content-length')?.[0];
    const bodyStart = end + 4;
    const bodyEnd = length === undefined ? bytes.length : Math.min(bytes.length, bodyStart + Number(length));
    responses.push({ status, headers, body: bytes.subarray(bodyStart, bodyEnd) });
    offset = bodyEnd;
  }
  return { responses, rest: bytes.subarray(offset) };
}

/** The single value of a header, or `undefined` when it is absent. */
export function header(response: RawResponse, name: string): string | undefined {
  return response.headers.get(name)?.join(', ');
}
