import {
  BASE64URL,
  MEDIA_TYPE,
  MEDIA_TYPE_PARAMETER,
  NOT_VISIBLE_ASCII,
  SQL_IDENTIFIER,
  TOKEN,
  visibleAscii,
} from '../../../lib/internal/syntax';

describe('the shared syntax patterns', () => {
  test('TOKEN is RFC 9110 tchar, one or more, nothing around it', () => {
    for (const token of ['POST', 'X-Instance-ID', "!#$%&'*+-.^_`|~09azAZ"]) expect(TOKEN.test(token)).toBe(true);
    for (const bad of ['', 'PO ST', 'X:Y', 'a/b', 'a"b', 'é', 'POST\r\n', '(x)']) expect(TOKEN.test(bad)).toBe(false);
  });

  test('MEDIA_TYPE is type/subtype without parameters', () => {
    expect(MEDIA_TYPE.test('application/problem+json')).toBe(true);
    for (const bad of ['text', 'text/', '/plain', 'text/plain; charset=utf-8', 'text/plain\r\nX: y'])
      expect(MEDIA_TYPE.test(bad)).toBe(false);
  });

  test('MEDIA_TYPE_PARAMETER takes a token or a quoted-string value', () => {
    expect(MEDIA_TYPE_PARAMETER.exec('charset=utf-8')?.slice(1, 4)).toEqual(['charset', 'utf-8', undefined]);
    expect(MEDIA_TYPE_PARAMETER.exec('charset="ut\\"f"')?.slice(1, 4)).toEqual(['charset', undefined, 'ut\\"f']);
    for (const bad of ['charset', 'charset=', 'charset="open', 'char set=x']) expect(MEDIA_TYPE_PARAMETER.test(bad)).toBe(false);
  });

  test('visible ASCII: no space, no control, no Latin-1, and a length cap', () => {
    expect(NOT_VISIBLE_ASCII.test('a=b&c=%20')).toBe(false);
    for (const bad of ['a b', 'a\tb', 'caf\u00e9', '\u007f']) expect(NOT_VISIBLE_ASCII.test(bad)).toBe(true);
    const id = visibleAscii(4);
    expect(id.test('ab~!')).toBe(true);
    for (const bad of ['', 'abcde', 'a b']) expect(id.test(bad)).toBe(false);
  });

  test('SQL_IDENTIFIER: letters, digits and _, not starting with a digit, at most 64', () => {
    for (const name of ['password_records', '_t', 'a'.repeat(64)]) expect(SQL_IDENTIFIER.test(name)).toBe(true);
    for (const bad of ['', '1t', 'a'.repeat(65), 'a-b', 'a;DROP', '"t"']) expect(SQL_IDENTIFIER.test(bad)).toBe(false);
  });

  test('BASE64URL has no padding and no standard-alphabet characters', () => {
    expect(BASE64URL.test('AZaz09-_')).toBe(true);
    expect(BASE64URL.test('')).toBe(true);
    for (const bad of ['ab==', 'a+b', 'a/b', 'a b']) expect(BASE64URL.test(bad)).toBe(false);
  });
});
