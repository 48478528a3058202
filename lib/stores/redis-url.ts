import { DEFAULT_REDACTED_KEYS, keyRedaction } from '../internal/json';

// ioredis copies every query parameter of a URL into its options, so a credential can sit
// under any option name that holds one: password, sentinelPassword, and whatever a later
// version adds. Any parameter whose name has a secret word counts.
const secretParameter = keyRedaction({ words: DEFAULT_REDACTED_KEYS });

interface SplitUrl {
  readonly parsed: URL | undefined;
  readonly query: URLSearchParams;
}

function split(url: string): SplitUrl | undefined {
  // A Unix socket path is not a URL, but ioredis reads its query string all the same.
  if (url.startsWith('/') && !url.startsWith('//')) {
    const at = url.indexOf('?');
    return { parsed: undefined, query: new URLSearchParams(at === -1 ? '' : url.slice(at + 1)) };
  }
  try {
    const parsed = new URL(/^rediss?:\/\//i.test(url) ? url : `redis:${url.startsWith('//') ? '' : '//'}${url}`);
    return { parsed, query: parsed.searchParams };
  } catch {
    return undefined;
  }
}

/** Whether a Redis URL, as ioredis reads it, holds a password or another credential. */
export function redisUrlHasCredential(url: string): boolean {
  const parts = split(url);
  if (parts === undefined) return false;
  if (parts.parsed !== undefined && parts.parsed.password !== '') return true;
  return [...parts.query.keys()].some((name) => secretParameter.redacts(name));
}

/** A Redis URL fit to print: its password and every credential parameter as `***`. */
export function maskRedisUrl(url: string): string {
  const parts = split(url);
  if (parts === undefined) return '(an invalid URL)';
  if (!redisUrlHasCredential(url)) return url;
  for (const name of new Set(parts.query.keys())) {
    if (secretParameter.redacts(name)) parts.query.set(name, '***');
  }
  if (parts.parsed === undefined) {
    const at = url.indexOf('?');
    return `${at === -1 ? url : url.slice(0, at)}?${parts.query.toString()}`;
  }
  if (parts.parsed.password !== '') parts.parsed.password = '***';
  return parts.parsed.toString();
}
