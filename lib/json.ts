/** Secret-naming keys removed from every JSON body by default. */
export const DEFAULT_REDACTED_KEYS: readonly string[] = [
  'password',
  'passwordHash',
  'hash',
  'secret',
  'token',
];

/**
 * `passwordHash`, `password_hash` and `PASSWORD-HASH` name the same secret, and the
 * reviewed API stores its password under `password_0` … `password_3`: compare keys
 * without case, separators or a trailing chunk number so none of those slips through.
 */
export function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/[0-9]+$/, '');
}

export function redactionSet(keys: readonly string[]): ReadonlySet<string> {
  return new Set(keys.map(normalizeKey));
}

// An API answers with the same few keys again and again: normalise each once. Bounded,
// because keys can come from request data; past the bound they are normalised each time.
const NORMALIZED_KEYS = new Map<string, string>();
const MAX_CACHED_KEYS = 1000;
const MAX_CACHED_KEY_LENGTH = 64;

function cachedNormalizeKey(key: string): string {
  let normalized = NORMALIZED_KEYS.get(key);
  if (normalized === undefined) {
    normalized = normalizeKey(key);
    if (NORMALIZED_KEYS.size < MAX_CACHED_KEYS && key.length <= MAX_CACHED_KEY_LENGTH) NORMALIZED_KEYS.set(key, normalized);
  }
  return normalized;
}

const UNSAFE_IN_HTML_OR_SCRIPT = /[<>&\u2028\u2029]/g;

function escapeChar(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * JSON text with secret-naming keys dropped at every depth and `<`, `>`, `&`, U+2028 and
 * U+2029 written as `\uXXXX`, so the text is still the same JSON value but can never be
 * read as markup or break out of a script block if a browser is tricked into sniffing it.
 * These characters can only occur inside JSON strings, so a global replace is exact.
 * `revealed`, the value a reveal route opened for this request, passes under a redacted
 * key: it is the one secret the route exists to hand back.
 */
export function safeJson(value: unknown, redacted: ReadonlySet<string>, revealed?: string): string | undefined {
  const text = JSON.stringify(value, (key, inner: unknown) =>
    key !== '' && redacted.has(cachedNormalizeKey(key)) && (revealed === undefined || inner !== revealed) ? undefined : inner,
  ) as string | undefined;
  return text === undefined ? undefined : text.replace(UNSAFE_IN_HTML_OR_SCRIPT, escapeChar);
}
