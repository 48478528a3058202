import { MemoryStore } from '../../../lib';
import type { PasswordRecord, PasswordStore } from '../../../lib';
import { storeContract } from '../../../lib/testing';
import type { StoreContractOptions, TestFramework } from '../../../lib/testing';

// The suite registered through a framework of our own, so each of its tests can be run
// here against a store that breaks the contract and be seen to fail.
function registered(options: Omit<StoreContractOptions, 'framework'>): { names: string[]; run(name: string): Promise<void> } {
  const tests = new Map<string, () => Promise<void>>();
  const hooks: { before?: () => Promise<void>; after?: () => Promise<void> } = {};
  const framework: TestFramework = {
    describe: (_name, body) => body(),
    it: (name, body) => tests.set(name, body),
    beforeEach: (hook) => {
      hooks.before = hook;
    },
    afterEach: (hook) => {
      hooks.after = hook;
    },
  };
  storeContract('a store', { ...options, framework });
  return {
    names: [...tests.keys()],
    async run(name) {
      const body = tests.get(name);
      if (body === undefined) throw new Error(`no test "${name}" in ${[...tests.keys()].join(' | ')}`);
      await hooks.before?.();
      try {
        await body();
      } finally {
        await hooks.after?.();
      }
    },
  };
}

// A store whose set-once is a read then a write: the reviewed handler's bug.
function readThenWriteStore(): PasswordStore {
  const inner = new MemoryStore();
  return {
    get: (id) => inner.get(id),
    replace: (id, expectedHash, record) => inner.replace(id, expectedHash, record),
    delete: (id) => inner.delete(id),
    ids: () => inner.ids(),
    async setIfAbsent(id, record) {
      if ((await inner.get(id)) !== undefined) return false;
      await new Promise((tick) => setImmediate(tick));
      inner.delete(id);
      inner.setIfAbsent(id, record);
      return true;
    },
  };
}

// A store that hands out the record it keeps, so a caller's change reaches it.
function sharingStore(): PasswordStore {
  const records = new Map<string, PasswordRecord>();
  return {
    get: (id) => records.get(id),
    setIfAbsent: (id, record) => !records.has(id) && records.set(id, { ...record }) !== undefined,
    replace: (id, expectedHash, record) => records.get(id)?.hash === expectedHash && records.set(id, { ...record }) !== undefined,
    delete: (id) => records.delete(id),
    ids: () => records.keys(),
  };
}

describe('storeContract', () => {
  test('MemoryStore passes every test it registers, ids included', async () => {
    const suite = registered({ create: () => new MemoryStore() });
    expect(suite.names).toHaveLength(21);
    expect(suite.names).toContain('ids lists every id with a record exactly once, and no deleted one');
    for (const name of suite.names) await suite.run(name);
  });

  test('a read-then-write setIfAbsent fails the concurrent set-once test', async () => {
    const suite = registered({ create: readThenWriteStore });
    await expect(suite.run('of 50 concurrent setIfAbsent for one id exactly one wins, and its record is kept')).rejects.toThrow(
      /exactly one setIfAbsent resolves true/,
    );
  });

  test('a store that shares its records fails the copies test', async () => {
    const suite = registered({ create: sharingStore });
    await suite.run('setIfAbsent stores a record that get returns unchanged');
    await expect(suite.run('records handed in and out are copies: changing them does not change the store')).rejects.toThrow();
  });

  test('a store without ids fails the ids test unless listsIds is false, which leaves it out', async () => {
    const withoutIds = (): PasswordStore => {
      const store = new MemoryStore();
      return {
        get: (id) => store.get(id),
        setIfAbsent: (id, record) => store.setIfAbsent(id, record),
        replace: (id, expectedHash, record) => store.replace(id, expectedHash, record),
        delete: (id) => store.delete(id),
      };
    };
    const name = 'ids lists every id with a record exactly once, and no deleted one';
    await expect(registered({ create: withoutIds }).run(name)).rejects.toThrow(/pass listsIds: false/);
    const suite = registered({ create: withoutIds, listsIds: false });
    expect(suite.names).toHaveLength(20);
    expect(suite.names).not.toContain(name);
  });

  test('destroy gets each store after its test', async () => {
    const destroyed: PasswordStore[] = [];
    const created: PasswordStore[] = [];
    const suite = registered({
      create: () => {
        const store = new MemoryStore();
        created.push(store);
        return store;
      },
      destroy: (store) => {
        destroyed.push(store);
      },
    });
    await suite.run('an unknown id has no record');
    await suite.run('delete of one id leaves the others');
    expect(destroyed).toEqual(created);
    expect(destroyed).toHaveLength(2);
  });

  test('bad options throw a TypeError naming the option', () => {
    const create = (): PasswordStore => new MemoryStore();
    expect(() => storeContract('', { create })).toThrow(/storeContract: the first argument must be the store's name/);
    expect(() => storeContract('s', {} as StoreContractOptions)).toThrow(/storeContract: option "create" is required/);
    expect(() => storeContract('s', { create, destroy: 'no' } as never)).toThrow(/option "destroy" must be a function/);
    expect(() => storeContract('s', { create, listsIds: 'yes' } as never)).toThrow(/option "listsIds" must be true or false/);
    expect(() => storeContract('s', { create, framework: { describe } } as never)).toThrow(
      /option "framework" must be an object with the functions describe, it, beforeEach and afterEach; missing it, beforeEach, afterEach/,
    );
    expect(() => storeContract('s', { create, destory: () => undefined } as never)).toThrow(
      /unknown option "destory"\. Did you mean "destroy"\?/,
    );
  });
});
