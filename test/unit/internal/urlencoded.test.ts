import { decodeComponent, decodePairs, encodedPairs, UrlencodedError } from '../../../lib/internal/urlencoded';

// The strict decoder shared by form bodies and query strings. Its failures reach clients
// only as problem types (tested through HTTP in test/unit/body/); here the contract the
// body and query readers rely on: WHATWG splitting, and errors that tell the fault and
// never carry the input.

function failure(run: () => unknown): UrlencodedError {
  try {
    run();
  } catch (error) {
    if (error instanceof UrlencodedError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

describe('encodedPairs', () => {
  test('splits on &, skips empty pairs, cuts at the first =, and keeps a bare name without a value', () => {
    expect(encodedPairs('&a=1&&b&c=x=y&')).toEqual([
      { name: 'a', value: '1', segment: 'a=1' },
      { name: 'b', value: undefined, segment: 'b' },
      { name: 'c', value: 'x=y', segment: 'c=x=y' },
    ]);
    expect(encodedPairs('')).toEqual([]);
    expect(encodedPairs('=v')).toEqual([{ name: '', value: 'v', segment: '=v' }]);
  });
});

describe('decodeComponent', () => {
  test('a plus is a space and percent-escapes are UTF-8', () => {
    expect(decodeComponent('caf%C3%A9+au%20lait%2B')).toBe('café au lait+');
  });

  test.each(['secret-%', 'secret-%zz', 'secret-%E'])('malformed percent-encoding in %p is parse_failed', (encoded) => {
    const error = failure(() => decodeComponent(encoded));
    expect(error).toMatchObject({ name: 'UrlencodedError', fault: 'parse_failed', message: 'malformed percent-encoding' });
    expect(String(error.stack)).not.toContain('secret');
  });

  test.each(['secret-%C3%28', 'secret-%C0%AF', 'secret-%ED%A0%80', 'secret-%E9'])(
    'percent-encoded bytes that are not UTF-8 in %p are invalid_utf8',
    (encoded) => {
      const error = failure(() => decodeComponent(encoded));
      expect(error).toMatchObject({
        name: 'UrlencodedError',
        fault: 'invalid_utf8',
        message: 'percent-encoded bytes are not UTF-8',
      });
      expect(String(error.stack)).not.toContain('secret');
    },
  );
});

describe('decodePairs', () => {
  test('decodes the field and, for a form, the other values; a bare name is an empty value', () => {
    expect(decodePairs('password=a+b&user=bob&flag&password', 'password', true)).toEqual({
      values: ['a b', ''],
      others: [
        ['user', 'bob'],
        ['flag', ''],
      ],
    });
  });

  test('for a query string the other values are left to the app, even ones this decoder would refuse', () => {
    expect(decodePairs('x=%zz&password=p%C3%A9&y=%E9', 'password', false)).toEqual({ values: ['pé'], others: [] });
  });
});
