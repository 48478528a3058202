import { redactionSet, safeJson } from '../lib/json';

describe('safeJson', () => {
  it('removes secret-named keys on every call, whether or not their normalised form is cached', () => {
    const redacted = redactionSet(['password', 'hash']);
    // More distinct keys than the cache holds, then secret keys it cannot have cached.
    const many = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`field${i}`, i]));
    const longKey = `PASSWORD${'_'.repeat(100)}`;
    for (let call = 0; call < 3; call++) {
      const text = safeJson({ ...many, password_1: 'p1', nested: { Password: 'p2', [longKey]: 'p3', 'pass-word': 'p4', HASH: 'h' } }, redacted);
      expect(text).toBeDefined();
      expect(text).not.toMatch(/"p[1-4]"|"h"/);
      const parsed = JSON.parse(text ?? '') as Record<string, unknown>;
      expect(parsed['field1499']).toBe(1499);
      expect(parsed['nested']).toEqual({});
    }
  });

  it('keeps keys that only resemble secret names', () => {
    expect(safeJson({ passwordSet: true, hashing: 'bcrypt' }, redactionSet(['password', 'hash']))).toBe('{"passwordSet":true,"hashing":"bcrypt"}');
  });
});
