import { DEFAULT_KEPT_KEYS, DEFAULT_REDACTED_KEYS, keyRedaction, keyWords, safeJson } from '../../../lib/internal/json';
import { medianCpuMs } from '../../helpers/cpu-time';

const defaults = keyRedaction({ words: DEFAULT_REDACTED_KEYS, keep: DEFAULT_KEPT_KEYS });

describe('keyWords', () => {
  test.each([
    ['adminPass', ['admin', 'pass']],
    ['client_secret', ['client', 'secret']],
    ['API-KEY', ['api', 'key']],
    ['APIKey', ['api', 'key']],
    ['XMLHttpRequest', ['xml', 'http', 'request']],
    ['password_0', ['password', '0']],
    ['password12', ['password', '12']],
    ['sha256Hash', ['sha', '256', 'hash']],
    ['totp.secret', ['totp', 'secret']],
    ['ｐａｓｓｗｏｒｄ', ['password']],
    ['__', []],
    // The first and last letter or digit of each range is one.
    ['lazyZone', ['lazy', 'zone']],
    ['SIZE', ['size']],
    ['ab09cd', ['ab', '09', 'cd']],
    ['AZaz', ['a', 'zaz']],
    ['x509Cert', ['x', '509', 'cert']],
    ['SHA256', ['sha', '256']],
    // A non-ASCII letter, digit or combining mark belongs to its word.
    ['naïve~key', ['naïve', 'key']],
    ['secretário', ['secretário']],
    ['secreta\u0301rio', ['secretário']],
    ['contraseñaNueva', ['contraseña', 'nueva']],
    ['ÜBERSecret', ['über', 'secret']],
    ['ÄPFEL', ['äpfel']],
    ['password٣', ['password', '٣']],
    ['password密码', ['password', '密码']],
    ['Пароль_пользователя', ['пароль', 'пользователя']],
    ['İD', ['i\u0307d']],
    // Where scripts, digits and separators outside ASCII meet.
    ['PASSWORD密码', ['password', '密码']],
    ['密码٣', ['密码', '٣']],
    ['token—id', ['token', 'id']],
    // Devanagari vowel signs and viramas are combining marks that no normal form composes.
    ['पासवर्ड', ['पासवर्ड']],
    ['नया_पासवर्ड', ['नया', 'पासवर्ड']],
    ['x\u0301y', ['x\u0301y']],
    // A combining mark after a separator has no letter to belong to.
    ['pass_\u0301word', ['pass', 'word']],
    // Code points outside the Basic Multilingual Plane are two code units.
    ['api🔑key', ['api', 'key']],
    ['𠀀password', ['𠀀', 'password']],
  ])('%s → %j', (key, words) => {
    expect(keyWords(key)).toEqual(words);
  });
});

describe('safeJson', () => {
  it('removes secret-named keys on every call, whether or not the decision is cached', () => {
    const redacted = keyRedaction({ words: ['password', 'hash'] });
    // More distinct keys than the cache holds, then secret keys it cannot have cached.
    const many = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`field${i}`, i]));
    const longKey = `PASSWORD${'_'.repeat(100)}`;
    for (let call = 0; call < 3; call++) {
      const text = safeJson(
        { ...many, password_1: 'p1', nested: { Password: 'p2', [longKey]: 'p3', 'pass-word': 'p4', HASH: 'h' } },
        redacted,
      );
      expect(text).toBeDefined();
      expect(text).not.toMatch(/"p[1-4]"|"h"/);
      const parsed = JSON.parse(text ?? '') as Record<string, unknown>;
      expect(parsed['field1499']).toBe(1499);
      expect(parsed['nested']).toEqual({});
    }
  });

  it('keeps keys that only resemble secret names', () => {
    expect(safeJson({ passwordSet: true, hashing: 'bcrypt' }, defaults)).toBe('{"passwordSet":true,"hashing":"bcrypt"}');
  });

  it('redacts a trailing chunk number of any length, and digits only at the end or between words', () => {
    const text = safeJson(
      { password_0: 1, password_123: 2, password999x: 3, pass1word: 4, x1password: 5, password1a2: 6 },
      defaults,
    );
    expect(text).toBe('{}');
  });

  it('redacts plurals and words joined across separators', () => {
    expect(safeJson({ hashes: 1, secrets: 2, api_key: 3, privateKey: 4, Salts: 5 }, defaults)).toBe('{}');
  });

  it('redacts every default secret word, alone and as a plural', () => {
    const keys = ['passphrase', 'keyPassphrases', 'credential', 'userCredentials', 'pwd', 'pepper', 'authorization'];
    expect(safeJson(Object.fromEntries(keys.map((key) => [key, 'x'])), defaults)).toBe('{}');
  });

  it('a secret word must be whole: its prefixes and longer words that start with it are kept', () => {
    const kept = {
      to: 1,
      api_version: 2,
      has_children: 3,
      sa: 4,
      tokenizer: 5,
      passwordless: 6,
      salty: 7,
      peppery: 8,
      saltshaker: 9,
      hashed: 10,
      salted: 11,
      hashestimate: 12,
      passenger: 13,
      // One letter and an s after the word is no plural either.
      passus: 14,
    };
    expect(safeJson(kept, defaults)).toBe(JSON.stringify(kept));
  });

  it('a plural is the secret word with s or es ending the word, then nothing or another word', () => {
    expect(safeJson({ tokens_seen: 1, passes: 2, hashesSeen: 3, saltsX: 4, Passwords: 5 }, defaults)).toBe('{}');
  });

  it('a word ends where upper case meets a digit, and at every character that is no letter, digit or mark', () => {
    const keys = ['PASSWORD0', 'TOKEN2', 'password~old', 'secret{0}', 'token\u2014id', 'salt\u00a0x', 'token€', 'secret\u2028x'];
    expect(safeJson(Object.fromEntries(keys.map((key) => [key, 'x'])), defaults)).toBe('{}');
  });

  // A non-ASCII letter used to end a word, so "secretário" (Portuguese: secretary) read as
  // "secret", "rio" and was removed.
  it('a non-ASCII letter joins its word: secretário and hashé are kept, the secret words around them still go', () => {
    const kept = { secretário: 'Ana', 'secreta\u0301rio': 'Rui', hashé: 1, tokenização: 2, Passwörter: 3 };
    expect(JSON.parse(safeJson(kept, defaults) ?? '')).toEqual(kept);
    const removed = ['secretárioPassword', 'secretário_token', 'ÜBERSecret', 'password密码', 'token٣', 'ＳＥＣＲＥＴ'];
    expect(safeJson(Object.fromEntries(removed.map((key) => [key, 'x'])), defaults)).toBe('{}');
  });

  // The default words are English; a field named in another language is added with redact.
  it('contraseña (Spanish: password) is not a default word, and is matched whole once added', () => {
    expect(safeJson({ contraseña: 'x' }, defaults)).toBe('{"contraseña":"x"}');
    const spanish = keyRedaction({ words: [...DEFAULT_REDACTED_KEYS, 'contraseña'], keep: DEFAULT_KEPT_KEYS });
    const removed = ['contraseña', 'CONTRASEÑA', 'nuevaContraseña', 'contraseña_nueva', 'contrasen\u0303a', 'contraseñas'];
    expect(safeJson(Object.fromEntries(removed.map((key) => [key, 'x'])), spanish)).toBe('{}');
    const kept = { contrasena: 1, contraseñador: 2 };
    expect(safeJson(kept, spanish)).toBe(JSON.stringify(kept));
  });

  it('a capital run followed by lower case splits before its last capital only', () => {
    // "SALTy" reads as "sal", "ty", which spell no secret word; "MYToken" as "my", "token";
    // "xTOKENs" as "x", "toke", "ns", and "toke" + "ns" read together spell "tokens".
    expect(keyWords('SALTy')).toEqual(['sal', 'ty']);
    expect(safeJson({ SALTy: 1, MYToken: 2, xTOKENs: 3 }, defaults)).toBe('{"SALTy":1}');
  });

  it('encodes undefined as no text, and escapes only the unsafe characters', () => {
    expect(safeJson(undefined, defaults)).toBeUndefined();
    expect(safeJson('a<b>c&d', defaults)).toBe('"a\\u003cb\\u003ec\\u0026d"');
  });

  it('keep compares whole names without case or separators', () => {
    const kept = keyRedaction({ words: DEFAULT_REDACTED_KEYS, keep: ['token'] });
    expect(safeJson({ TOKEN: 1, access_token: 2, token_0: 3 }, kept)).toBe('{"TOKEN":1}');
  });

  // Issue 14 defect 1: /[0-9]+$/ on 100,000 digits followed by a letter took seconds. Judged
  // in CPU time, so a busy machine does not fail it, against the same characters read as a
  // thousand 100-character keys (never cached: longer than the cache takes): linear work
  // costs about the same either way, quadratic work a thousand times more.
  it.each([
    ['digits then a letter', `${'1'.repeat(99_999)}a`],
    ['alternating case', 'aB'.repeat(50_000)],
    ['digits and letters', 'a1'.repeat(50_000)],
    ['separators', '_'.repeat(100_000)],
    ['non-ASCII letters and marks', 'Éa\u0301'.repeat(33_333) + 'x'],
  ])(
    'a 100,000-character key (%s) costs a few milliseconds of CPU, no more than a thousand 100-character keys',
    async (_name, key) => {
      expect(key.length).toBe(100_000);
      const short = key.slice(-100);
      const cost = await medianCpuMs({
        long: () => safeJson({ [key]: 1 }, defaults),
        short: () => {
          for (let i = 0; i < 1000; i++) safeJson({ [short]: 1 }, defaults);
        },
      });
      expect(cost.long).toBeLessThan(10 * cost.short);
      // The budget of a few milliseconds, in CPU time.
      expect(cost.long).toBeLessThan(50);
    },
  );
});
