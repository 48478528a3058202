/**
 * Words that name a secret. A key is redacted when one of its words (or a run of its
 * words read together, so `api_key` and `apiKey` match `apikey`) is one of these, or one
 * of these with a plural `s`/`es`.
 */
export const DEFAULT_REDACTED_KEYS: readonly string[] = [
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'secret',
  'token',
  'hash',
  'pepper',
  'salt',
  'authorization',
  'credential',
  'apikey',
  'privatekey',
];

/**
 * Keys that contain a secret word but carry none: the state the package's own `GET`
 * route answers (`passwordSet`) and a published policy.
 */
export const DEFAULT_KEPT_KEYS: readonly string[] = ['passwordSet', 'passwordPolicy'];

/**
 * A key read as words: its letters and digits lower-cased with every other character
 * dropped (`chars`, UTF-16 code units), and where each word starts (`starts[i]` is 1 when
 * a word starts at `chars[i]`, and `starts[length]` is 1). Letters and digits are Unicode
 * ones (`\p{L}`, `\p{N}`, with combining marks joining the letter before them), so
 * `secretário` is one word and not `secret` followed by `rio`. Words split at `_`, `-`,
 * `.`, spaces and any other character that is not a letter, digit or mark, at each
 * lower-to-upper step (`adminPass`), before the last capital of a run of capitals that
 * starts a word (`APIKey` → `api`, `key`), between letters and digits (`password0`), and
 * between cased letters and letters of a script without case (`password密码`). One pass,
 * no string per word, so a hostile key costs time in proportion to its length.
 */
interface ScannedKey {
  readonly chars: Uint16Array;
  readonly starts: Uint8Array;
  readonly length: number;
}

function scanKey(name: string): ScannedKey {
  const ascii = !NON_ASCII.test(name);
  // Fullwidth and other compatibility forms of ASCII letters read as the letters.
  const key = ascii ? name : name.normalize('NFKC');
  // Lower-casing one code point gives at most two code units (U+0130 gives i and a dot).
  const chars = new Uint16Array(ascii ? key.length : key.length * 2);
  const starts = new Uint8Array(chars.length + 1);
  let length = 0;
  let previous = Kind.Other;
  // Where the character before this one starts in chars: a lower-cased code point can be
  // two code units.
  let previousAt = 0;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    let kind = charKind(code);
    let point = '';
    if (kind === Kind.Other && code >= 0x80) {
      point = String.fromCodePoint(key.codePointAt(i) ?? code);
      i += point.length - 1;
      kind = unicodeKind(point);
    }
    if (kind === Kind.Mark) {
      // A combining mark belongs to the character before it; after a separator it is dropped.
      if (previous === Kind.Other) continue;
      for (let unit = 0; unit < point.length; unit++) chars[length++] = point.charCodeAt(unit);
      continue;
    }
    if (kind === Kind.Other) {
      previous = kind;
      continue;
    }
    if (kind !== previous && !(previous === Kind.Upper && kind === Kind.Lower)) starts[length] = 1;
    // "APIKey": the K belongs to "Key", so a word starts one character earlier.
    if (previous === Kind.Upper && kind === Kind.Lower && previousAt > 0 && starts[previousAt] !== 1) {
      starts[previousAt] = 1;
    }
    previousAt = length;
    if (point === '') {
      chars[length++] = kind === Kind.Upper ? code + 32 : code;
    } else {
      const lower = kind === Kind.Upper ? point.toLowerCase() : point;
      for (let unit = 0; unit < lower.length; unit++) chars[length++] = lower.charCodeAt(unit);
    }
    previous = kind;
  }
  starts[length] = 1;
  return { chars, starts, length };
}

/** The lower-case words of a key, as {@link keyRedaction} reads them. */
export function keyWords(key: string): string[] {
  const { chars, starts, length } = scanKey(key);
  const words: string[] = [];
  let from = 0;
  for (let i = 1; i <= length; i++) {
    if (starts[i] === 1) {
      words.push(String.fromCharCode(...chars.subarray(from, i)));
      from = i;
    }
  }
  return words;
}

const NON_ASCII = /[\u0080-\uffff]/;

// biome-ignore lint/suspicious/noConstEnum: not exported, so every use is in this file, where the compilers inline it.
const enum Kind {
  Other,
  Lower,
  Upper,
  Digit,
  /** A letter of a script without case (Han, Arabic, Hebrew…). */
  Uncased,
  /** A combining mark: never a kind of its own, it takes its letter's. */
  Mark,
}

const UPPER = /^[\p{Lu}\p{Lt}]$/u;
const LOWER = /^\p{Ll}$/u;
const LETTER = /^\p{L}$/u;
const NUMBER = /^\p{N}$/u;
const MARK = /^\p{M}$/u;

/** The kind of one non-ASCII code point. */
function unicodeKind(point: string): Kind {
  if (LOWER.test(point)) return Kind.Lower;
  if (UPPER.test(point)) return Kind.Upper;
  if (LETTER.test(point)) return Kind.Uncased;
  if (NUMBER.test(point)) return Kind.Digit;
  if (MARK.test(point)) return Kind.Mark;
  return Kind.Other;
}

function charKind(code: number): Kind {
  if (code >= 97 && code <= 122) return Kind.Lower;
  if (code >= 65 && code <= 90) return Kind.Upper;
  if (code >= 48 && code <= 57) return Kind.Digit;
  return Kind.Other;
}

/**
 * `passwordHash`, `password_hash` and `PASSWORD-HASH` are one key: its words joined,
 * without case or separators. Used to compare a key with the kept list.
 */
export function normalizeKey(key: string): string {
  return keyWords(key).join('');
}

/** Decides, once per key name, whether a JSON key names a secret. */
export interface KeyRedaction {
  readonly redacts: (key: string) => boolean;
}

export interface KeyRedactionInit {
  /** Secret words, each compared with the words of a key (`api_key` is the word `apikey`). */
  readonly words: readonly string[];
  /** Key names never redacted, compared as {@link normalizeKey} writes them. */
  readonly keep?: readonly string[];
}

interface TrieNode {
  readonly next: Map<number, TrieNode>;
  /** A secret word ends here. */
  word: boolean;
}

const MAX_CACHED_KEYS = 1000;
const MAX_CACHED_KEY_LENGTH = 64;
const S = 115;
const E = 101;

export function keyRedaction({ words, keep = [] }: KeyRedactionInit): KeyRedaction {
  const root: TrieNode = { next: new Map(), word: false };
  for (const word of new Set(words.map(normalizeKey))) {
    if (word === '') continue;
    let node = root;
    for (let i = 0; i < word.length; i++) {
      const code = word.charCodeAt(i);
      let child = node.next.get(code);
      if (child === undefined) {
        child = { next: new Map(), word: false };
        node.next.set(code, child);
      }
      node = child;
    }
    node.word = true;
  }
  const kept = new Set(keep.map(normalizeKey));
  let longestKept = 0;
  for (const name of kept) longestKept = Math.max(longestKept, name.length);

  const isKept = (scanned: ScannedKey): boolean =>
    scanned.length <= longestKept && kept.has(String.fromCharCode(...scanned.chars.subarray(0, scanned.length)));

  // From each word start, walk the secret words' trie: a run of whole words (plus a plural
  // `s` or `es`) that spells a secret word is a match. Each walk stops at the first
  // character no secret word continues with, so the work per key is its length times the
  // longest secret word at worst.
  const hasSecretWord = (key: string): boolean => {
    const scanned = scanKey(key);
    if (isKept(scanned)) return false;
    const { chars, starts, length } = scanned;
    for (let from = 0; from < length; from++) {
      if (starts[from] !== 1) continue;
      let node: TrieNode | undefined = root;
      for (let i = from; node !== undefined && i < length; ) {
        node = node.next.get(chars[i] ?? 0);
        i++;
        if (node?.word === true) {
          if (starts[i] === 1) return true;
          if (chars[i] === S && starts[i + 1] === 1) return true;
          if (chars[i] === E && chars[i + 1] === S && starts[i + 2] === 1) return true;
        }
      }
    }
    return false;
  };

  // An API answers with the same few keys again and again: decide each once. Bounded,
  // because keys can come from request data; past the bound they are decided each time.
  const cache = new Map<string, boolean>();
  return {
    redacts(key: string): boolean {
      let redacted = cache.get(key);
      if (redacted === undefined) {
        redacted = hasSecretWord(key);
        if (cache.size < MAX_CACHED_KEYS && key.length <= MAX_CACHED_KEY_LENGTH) cache.set(key, redacted);
      }
      return redacted;
    },
  };
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
export function safeJson(value: unknown, redaction: KeyRedaction, revealed?: string): string | undefined {
  const text = JSON.stringify(value, (key, inner: unknown) =>
    key !== '' && redaction.redacts(key) && (revealed === undefined || inner !== revealed) ? undefined : inner,
  ) as string | undefined;
  return text === undefined ? undefined : text.replace(UNSAFE_IN_HTML_OR_SCRIPT, escapeChar);
}
