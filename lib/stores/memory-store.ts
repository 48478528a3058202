import { copyRecord } from './store';
import type { PasswordRecord, PasswordStore } from './store';

/**
 * A {@link PasswordStore} in a `Map`: for tests and single-process apps. Its set-once is
 * atomic because each method runs to completion on the event loop; records vanish when
 * the process ends, and two processes never share them (use {@link SqliteStore}).
 *
 * @example
 * const store = new MemoryStore();
 * app.post('/servers/:id/password', passwordBody(), hashAndStore({ store }), created);
 */
export class MemoryStore implements PasswordStore {
  readonly #records = new Map<string, PasswordRecord>();

  /** How many ids have a record. */
  get size(): number {
    return this.#records.size;
  }

  setIfAbsent(id: string, record: PasswordRecord): boolean {
    if (this.#records.has(id)) return false;
    this.#records.set(id, copyRecord(record));
    return true;
  }

  get(id: string): PasswordRecord | undefined {
    return this.#records.get(id);
  }

  replace(id: string, expectedHash: string, record: PasswordRecord): boolean {
    if (this.#records.get(id)?.hash !== expectedHash) return false;
    this.#records.set(id, copyRecord(record));
    return true;
  }

  delete(id: string): boolean {
    return this.#records.delete(id);
  }

  /** Every id with a record: a snapshot, so the store may change while it is read. */
  ids(): string[] {
    return [...this.#records.keys()];
  }
}
