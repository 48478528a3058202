import { MemoryStore } from '../../../lib';
import { storeContract } from '../../../lib/testing';

storeContract('MemoryStore', { create: () => new MemoryStore() });

test('MemoryStore counts its records', () => {
  const store = new MemoryStore();
  store.setIfAbsent('a', { hash: 'h', setAt: '2026-01-01T00:00:00.000Z', scheme: 'bcrypt' });
  expect(store.size).toBe(1);
  store.delete('a');
  expect(store.size).toBe(0);
});
