import bcrypt from 'bcrypt';
import { classifyScheme, resolveLegacy, storedDigest, WRAPPED_PREFIX } from '../hashing/legacy-schemes';
import type { LegacyScheme, LegacySchemes } from '../hashing/legacy-schemes';
import { assertBoolean, assertFunction, assertKnownKeys, hasMethods, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';
import { BCRYPT_MAX_BYTES, bcryptInput, isBcryptScheme, resolveHashing } from '../hashing/bcrypt';
import type { HashingConfig } from '../hashing/bcrypt';
import { NORMALIZATIONS } from '../body/password-rules';
import type { PasswordNormalization } from '../body/password-rules';
import { assertKeyProvider } from '../sealing/key-ring';
import type { KeyProvider } from '../sealing/key-ring';
import { currentKey, isSealedScheme, sealedKeyId } from '../sealing/aes-gcm';
import { openRecord, resolvePurpose, sealedRecord } from '../sealing/encrypt-and-store';
import { MetadataChunks } from './metadata-chunks';
import type { LegacyPasswordSource, SourceMechanism } from './metadata-chunks';
import { SqliteStore } from '../stores/sqlite-store';
import type { SqliteDatabase } from '../stores/sqlite-store';
import { assertStore, checkedBoolean, checkedRecord } from '../stores/store';
import type { MaybePromise, PasswordRecord, PasswordStore } from '../stores/store';

/**
 * Where a migration stands, after each record.
 *
 * @example
 * const onProgress = ({ done, total }: MigrationProgress) => console.log(`${done}/${total}`);
 */
export interface MigrationProgress {
  /** Records handled so far. */
  readonly done: number;
  /** Records to handle in all. */
  readonly total: number;
  readonly upgraded: number;
  readonly current: number;
  readonly failed: number;
}

/**
 * A record the migration could not upgrade, and why. The reason never holds a password
 * or a hash.
 *
 * @example
 * const failure: MigrationFailure = { id: 'srv-9', reason: 'plain-text password over 72 bytes …' };
 */
export interface MigrationFailure {
  readonly id: string;
  readonly reason: string;
  /**
   * `true` when no run can ever migrate it: a secret handed back to its owner was hashed
   * by an earlier migration, and only its owner setting it again brings it back.
   */
  readonly unrecoverable?: boolean;
}

/**
 * What {@link migratePasswords} did.
 *
 * @example
 * const { seen, upgraded, current, failed }: MigrationSummary = await migratePasswords({ store });
 */
export interface MigrationSummary {
  /** Records visited. */
  readonly seen: number;
  /** Records upgraded, re-sealed or moved from the source (with `dryRun`: that would be). */
  readonly upgraded: number;
  /**
   * Records already bcrypt (plain or wrapped), sealed under the current key (or sealed,
   * without `keys`), or with nothing to migrate.
   */
  readonly current: number;
  /** Records left as they were; see `failures`. */
  readonly failed: number;
  readonly failures: readonly MigrationFailure[];
  /** Whether this was a dry run, which wrote nothing. */
  readonly dryRun: boolean;
  /**
   * Whether the SQLite file was compacted after plain-text passwords were replaced (or
   * values re-sealed), so that no old copy remains in its free pages or its `-wal` file;
   * `false` when that could not be completed (another connection was busy), `undefined`
   * when not needed.
   */
  readonly scrubbed: boolean | undefined;
}

/**
 * Options of {@link migratePasswords}.
 *
 * @example
 * const options: MigratePasswordsOptions = { store, cost: 12, pepper: process.env.PASSWORD_PEPPER };
 */
export interface MigratePasswordsOptions {
  /**
   * The store to migrate (it needs `ids()`, as the bundled stores have), or, with
   * `source`, the store to move the source's passwords into. Required.
   */
  readonly store: PasswordStore;
  /**
   * Passwords kept outside the store, in clear, to move into it (for instance
   * {@link MetadataChunks}, the reviewed API's layout). Each is hashed, or sealed when the
   * source's `mechanism` is `'seal'` (then `keys` is required), set in the store, then
   * erased from the source; the store's own records are migrated too when it has `ids()`.
   * @default undefined: only the store's own records are migrated
   */
  readonly source?: LegacyPasswordSource;
  /**
   * The store record id a source id's value is moved to: the id your storer and reveal
   * route use for it, such as `(id) => id + '/os-server-password'`.
   * @default (id) => id
   */
  readonly sourceRecordId?: (sourceId: string) => string;
  /** bcrypt cost of the new hashes, 10 to 31: use the storer's. @default 12 */
  readonly cost?: number;
  /**
   * The storer's pepper. Plain-text passwords are then hashed with the pre-hash, as the
   * storer does, so ones over bcrypt's 72 bytes are hashed whole; without it those are
   * reported as failed and left as they are, never truncated.
   * @default undefined
   */
  readonly pepper?: string | Uint8Array;
  /** Legacy schemes of your own (see {@link LegacyScheme}). @default [] */
  readonly legacy?: readonly LegacyScheme[];
  /**
   * The sealing storer's keys. When given, every sealed record (`aes-256-gcm:<key id>`)
   * under a key other than the current one is opened and re-sealed under the current
   * key (eager rotation), so the old key can then be retired; one that does not open is
   * reported as failed and left as it is. A source whose `mechanism` is `'seal'` has its
   * values sealed under the current key, and needs them.
   * @default undefined: sealed records are left as they are, counted as current
   */
  readonly keys?: KeyProvider;
  /**
   * The sealing storer's purpose, needed to open and seal its records: every sealed record
   * of the run (a source's values, and records re-sealed under the current key) is opened
   * and sealed with it, so a record sealed for another purpose is reported as failed.
   * @default 'password'
   */
  readonly purpose?: string;
  /** Count what would be done, writing nothing. @default false */
  readonly dryRun?: boolean;
  /**
   * Unicode normalisation applied to a plain-text password before it is hashed: the
   * `normalization` of the `passwordBody` in front of the verifier, so that the password
   * its body reader produces matches. `'none'` hashes the stored code points as they are.
   * @default 'NFC'
   */
  readonly normalization?: PasswordNormalization;
  /** Records hashed at once. @default 2 */
  readonly concurrency?: number;
  /** Called after each record. @default undefined */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Called for each record that fails, as it fails. @default undefined */
  readonly onFailure?: (failure: MigrationFailure) => void;
}

const optionKeys: KeysEnum<MigratePasswordsOptions> = {
  store: true,
  source: true,
  sourceRecordId: true,
  cost: true,
  pepper: true,
  legacy: true,
  keys: true,
  purpose: true,
  dryRun: true,
  normalization: true,
  concurrency: true,
  onProgress: true,
  onFailure: true,
};

interface MigrationConfig extends HashingConfig {
  readonly store: PasswordStore;
  readonly normalize: (password: string) => string;
  readonly legacy: LegacySchemes;
  readonly keys: KeyProvider | undefined;
  readonly purpose: string;
  readonly dryRun: boolean;
  /** The source's values are sealed, not hashed (with `keys`, checked at the call). */
  readonly sealSource: boolean;
}

/** `scrub`: the record replaced held plain text, or a value sealed under a key being retired. */
type Outcome =
  | { readonly kind: 'upgraded'; readonly scrub: boolean }
  | { readonly kind: 'current' }
  | { readonly kind: 'failed'; readonly reason: string; readonly unrecoverable?: true };

const ATTEMPTS = 3;
const changedMeanwhile: Outcome = {
  kind: 'failed',
  reason: 'the record kept changing while being migrated; run the migration again.',
};

/**
 * Upgrades every legacy record of a store to bcrypt at once, without a password reset:
 * a legacy digest `d` (MD5, SHA-1, SHA-256 or yours) becomes `bcrypt(d)` with scheme
 * `'bcrypt+<scheme>'` (a wrapped record, which {@link verifyPassword} checks and then
 * replaces by a plain bcrypt hash of the password), and a plain-text password is hashed
 * as the storer would. With `source`, passwords kept in clear elsewhere are moved into the
 * store: hashed, or sealed under `keys` when they are secrets handed back to their owner
 * (a {@link MetadataChunks} source: the reviewed API's guest passwords). Each record is
 * replaced by a compare-and-set, so it is either fully old or fully new, and a record
 * changed meanwhile (a verify upgraded it) is read again, never overwritten. Idempotent: bcrypt and wrapped records count as current, so a second run
 * changes nothing, and a run stopped at any point can simply be run again. On SQLite,
 * when plain text was replaced, the file is compacted and its WAL truncated so that no
 * copy of it remains.
 *
 * @example
 * const store = new SqliteStore({ filename: 'passwords.db' });
 * const summary = await migratePasswords({ store, cost: 12, pepper: process.env.PASSWORD_PEPPER });
 * console.log(`${summary.upgraded} upgraded, ${summary.failed} failed`);
 */
export async function migratePasswords(options: MigratePasswordsOptions): Promise<MigrationSummary> {
  assertKnownKeys('migratePasswords', options, optionKeys);
  const { store, source } = options;
  assertStore('migratePasswords', 'store', store);
  if (source !== undefined) assertSource(source);
  else if (typeof store.ids !== 'function') {
    throw optionError(
      'migratePasswords',
      'store',
      'cannot list its records: give it an ids() method (the bundled stores have one).',
    );
  }
  assertBoolean('migratePasswords', 'dryRun', options.dryRun);
  assertFunction('migratePasswords', 'onProgress', options.onProgress);
  assertFunction('migratePasswords', 'onFailure', options.onFailure);
  const concurrency = integerOption('migratePasswords', 'concurrency', options.concurrency, 1, 64) ?? 2;
  const form = options.normalization ?? 'NFC';
  if (!NORMALIZATIONS.includes(form)) {
    throw optionError('migratePasswords', 'normalization', `must be one of ${NORMALIZATIONS.join(', ')}.`);
  }
  if (options.keys !== undefined) assertKeyProvider('migratePasswords', 'keys', options.keys);
  assertFunction('migratePasswords', 'sourceRecordId', options.sourceRecordId);
  const sealSource = sourceMechanism(source) === 'seal';
  if (sealSource && options.keys === undefined) {
    throw optionError(
      'migratePasswords',
      'keys',
      "is required: the source's values are secrets handed back to their owner, which are sealed, never hashed (no one could get a hash back).",
    );
  }
  const config: MigrationConfig = {
    normalize: form === 'none' ? (password) => password : (password) => password.normalize(form),
    ...resolveHashing('migratePasswords', options.cost, options.pepper),
    store,
    legacy: resolveLegacy('migratePasswords', options.legacy),
    keys: options.keys,
    purpose: resolvePurpose('migratePasswords', options.purpose),
    dryRun: options.dryRun ?? false,
    sealSource,
  };
  // A provider that cannot give its current key must stop the run before any record.
  if (config.keys !== undefined) {
    try {
      await currentKey(config.keys);
    } catch (error) {
      throw new Error(`migratePasswords: the key provider failed before the first record: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  // The source's ids first, then the store's other records, so that one run leaves
  // nothing legacy in either; an id in both is the source's (its move checks the store).
  // `id` is the source's (what a failure names), `recordId` the store's.
  const work: Array<{ readonly id: string; readonly recordId: string; readonly fromSource: boolean }> = [];
  const sourceIds = new Set<string>();
  const movedTo = new Set<string>();
  if (source !== undefined) {
    for (const id of await listing('legacy source', () => source.ids())) {
      if (sourceIds.has(id)) continue;
      sourceIds.add(id);
      const recordId = mappedRecordId(options.sourceRecordId, id);
      movedTo.add(recordId);
      work.push({ id, recordId, fromSource: true });
    }
  }
  const { ids } = store;
  if (typeof ids === 'function') {
    for (const id of await listing('store', () => ids.call(store))) {
      if (!movedTo.has(id)) work.push({ id, recordId: id, fromSource: false });
    }
  }
  const counts = { upgraded: 0, current: 0, failed: 0 };
  const failures: MigrationFailure[] = [];
  let plainReplaced = false;
  let done = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < work.length) {
      const { id, recordId, fromSource: moving } = work[next++] as (typeof work)[number];
      let outcome: Outcome;
      try {
        outcome =
          moving && source !== undefined ? await moveFromSource(config, source, id, recordId) : await migrateRecord(config, id);
      } catch (error) {
        // A failure of the store or another part ends the run: every later record would most likely fail the same way.
        const [failing, cause] = error instanceof PartFailure ? [error.part, error.cause] : ['store', error];
        const who = failing === 'bcrypt' ? failing : `the ${failing}`;
        throw new Error(`migratePasswords: ${who} failed on record "${id}": ${(cause as Error).message}`, { cause });
      }
      counts[outcome.kind]++;
      if (outcome.kind === 'upgraded' && outcome.scrub) plainReplaced = true;
      if (outcome.kind === 'failed') {
        const failure: MigrationFailure = {
          id,
          reason: outcome.reason,
          ...(outcome.unrecoverable === true ? { unrecoverable: true } : {}),
        };
        failures.push(failure);
        options.onFailure?.(failure);
      }
      done++;
      options.onProgress?.({ done, total: work.length, ...counts });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(work.length, 1)) }, worker));

  let scrubbed: boolean | undefined;
  if (plainReplaced && !config.dryRun) {
    const databases = new Set<SqliteDatabase>();
    if (store instanceof SqliteStore && !store.database.memory) databases.add(store.database);
    if (source instanceof MetadataChunks) databases.add(source.database);
    if (databases.size > 0) scrubbed = [...databases].map(scrubSqlite).every(Boolean);
  }
  return { seen: work.length, ...counts, failures, dryRun: config.dryRun, scrubbed };
}

async function migrateRecord(config: MigrationConfig, id: string): Promise<Outcome> {
  const { store } = config;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const record = checkedRecord(await store.get(id));
    // Deleted since the ids were listed: nothing left to migrate.
    if (record === undefined) return { kind: 'current' };
    const planned = plan(config, record);
    if (planned.kind === 'reseal') {
      const resealed = await reseal(config, id, record, planned.keys);
      if (resealed.kind !== 'replace') return resealed;
      if (checkedBoolean('replace', await store.replace(id, record.hash, resealed.record)))
        return { kind: 'upgraded', scrub: true };
      continue;
    }
    if (planned.kind !== 'hash') return planned;
    if (config.dryRun) return { kind: 'upgraded', scrub: planned.plain };
    const upgraded: PasswordRecord = {
      hash: await blame('bcrypt', () => bcrypt.hash(planned.input, config.cost)),
      setAt: record.setAt,
      scheme: planned.scheme,
    };
    if (checkedBoolean('replace', await store.replace(id, record.hash, upgraded))) {
      return { kind: 'upgraded', scrub: planned.plain };
    }
  }
  return changedMeanwhile;
}

type Plan =
  | Exclude<Outcome, { kind: 'upgraded' }>
  | { kind: 'hash'; input: string; scheme: string; plain: boolean }
  | { kind: 'reseal'; keys: KeyProvider };

function plan(config: MigrationConfig, record: PasswordRecord): Plan {
  const kind = classifyScheme(record.scheme, config.legacy);
  switch (kind.kind) {
    case 'bcrypt':
    case 'wrapped':
      return { kind: 'current' };
    case 'sealed':
      return config.keys === undefined ? { kind: 'current' } : { kind: 'reseal', keys: config.keys };
    case 'unknown':
      return { kind: 'failed', reason: `unknown scheme "${record.scheme}"; describe it with a legacy scheme (--schemes).` };
    case 'legacy': {
      const { scheme } = kind;
      if (scheme.name === 'plain') return plainPlan(config, record.hash);
      if (scheme.digest === undefined) {
        return {
          kind: 'failed',
          reason: `scheme "${scheme.name}" has no digest, so it cannot be wrapped; it is upgraded at its next successful verify.`,
        };
      }
      const digest = storedDigest(scheme, record.hash);
      if (digest === undefined) {
        return {
          kind: 'failed',
          reason: `the stored value is not a well-formed ${scheme.name} digest of at most ${BCRYPT_MAX_BYTES} bytes.`,
        };
      }
      return { kind: 'hash', input: digest, scheme: WRAPPED_PREFIX + scheme.name, plain: false };
    }
  }
}

function plainPlan(config: MigrationConfig, stored: string): Extract<Plan, { kind: 'failed' | 'hash' }> {
  const input = bcryptInput(config.normalize(stored), config.scheme, config.pepper);
  if (input === undefined) {
    return {
      kind: 'failed',
      reason: `plain-text password over bcrypt's ${BCRYPT_MAX_BYTES} bytes and no pepper given: it is never truncated; give the storer's pepper (--pepper-env) to hash it whole.`,
    };
  }
  return { kind: 'hash', input, scheme: config.scheme, plain: true };
}

/**
 * A sealed record under the current key is current; one under an older key is opened and
 * sealed again under the current one, keeping `setAt` (with `dryRun`, only opened, so
 * that a record that would fail is reported as failed).
 */
async function reseal(
  config: MigrationConfig,
  id: string,
  record: PasswordRecord,
  keys: KeyProvider,
): Promise<Outcome | { readonly kind: 'replace'; readonly record: PasswordRecord }> {
  const { keyId } = await blame('key provider', () => currentKey(keys));
  if (sealedKeyId(record.scheme) === keyId) return { kind: 'current' };
  const opened = await blame('key provider', () => openRecord(keys, config.purpose, id, record));
  if ('failure' in opened)
    return { kind: 'failed', reason: `the sealed value did not open: ${opened.failure}; it was left as it is.` };
  if (config.dryRun) return { kind: 'upgraded', scrub: true };
  return {
    kind: 'replace',
    record: await blame('key provider', () => sealedRecord(keys, config.purpose, id, opened.plaintext, record.setAt)),
  };
}

async function moveFromSource(
  config: MigrationConfig,
  source: LegacyPasswordSource,
  sourceId: string,
  recordId: string,
): Promise<Outcome> {
  const { store } = config;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const password: unknown = await blame('legacy source', () => source.read(sourceId));
    if (password !== undefined && typeof password !== 'string') {
      throw new PartFailure('legacy source', new TypeError('it read something other than a string.'));
    }
    if (password === undefined || password === '') {
      // Nothing to move: the store's record of that id is migrated as any other.
      const lost = config.sealSource ? await hashedByEarlierRun(config, sourceId, recordId) : undefined;
      return lost ?? (await migrateRecord(config, recordId));
    }
    const existing = checkedRecord(await store.get(recordId));
    if (existing !== undefined) {
      // Set by an earlier run that stopped before erasing the source: finish the move.
      const conflict = await heldOtherwise(config, recordId, existing, password);
      if (conflict !== undefined) return { kind: 'failed', reason: conflict };
      if (config.dryRun) return { kind: 'upgraded', scrub: true };
      if (await cleared(source, sourceId, password)) return { kind: 'upgraded', scrub: true };
      continue;
    }
    let record: PasswordRecord;
    if (config.sealSource) {
      if (config.dryRun) return { kind: 'upgraded', scrub: true };
      // Byte for byte, never normalised: the owner decrypts exactly what the guest posted.
      const keys = config.keys as KeyProvider;
      record = await blame('key provider', () =>
        sealedRecord(keys, config.purpose, recordId, password, new Date().toISOString()),
      );
    } else {
      const planned = plainPlan(config, password);
      if (planned.kind !== 'hash') return planned;
      if (config.dryRun) return { kind: 'upgraded', scrub: true };
      record = {
        hash: await blame('bcrypt', () => bcrypt.hash(planned.input, config.cost)),
        setAt: new Date().toISOString(),
        scheme: planned.scheme,
      };
    }
    if (source instanceof MetadataChunks && store instanceof SqliteStore && store.database === source.database) {
      // One connection, one transaction: the password is in the source or in the store, never both or neither.
      const moved = source.transaction(() => {
        if (source.read(sourceId) !== password || !store.setIfAbsent(recordId, record)) return false;
        return source.clearInTransaction(sourceId, password);
      });
      if (moved) return { kind: 'upgraded', scrub: true };
      continue;
    }
    // Store first, then source: a stop in between leaves the password in both, and the
    // next run, finding it set, erases the source.
    if (!checkedBoolean('setIfAbsent', await store.setIfAbsent(recordId, record))) continue;
    if (await cleared(source, sourceId, password)) return { kind: 'upgraded', scrub: true };
  }
  return changedMeanwhile;
}

/**
 * Why `record` is not what the migration would have made of `password` (`undefined` when
 * it is): a sealed value that opens to it, or a hash of it, as the source's mechanism says.
 */
async function heldOtherwise(
  config: MigrationConfig,
  recordId: string,
  record: PasswordRecord,
  password: string,
): Promise<string | undefined> {
  const different = 'the store already holds a different password for this id; its legacy password was left in place.';
  if (!config.sealSource) {
    if (!isBcryptScheme(record.scheme)) return different;
    const input = bcryptInput(config.normalize(password), record.scheme, config.pepper);
    return input !== undefined && (await blame('bcrypt', () => bcrypt.compare(input, record.hash))) ? undefined : different;
  }
  if (!isSealedScheme(record.scheme)) {
    return `the store holds a hash for this id (scheme "${record.scheme}"), which can never be handed back; its legacy password was left in place: delete that record, then run the migration again.`;
  }
  const keys = config.keys as KeyProvider;
  const opened = await blame('key provider', () => openRecord(keys, config.purpose, recordId, record));
  if ('failure' in opened) {
    return `the store holds a sealed value for this id that did not open (${opened.failure}); its legacy password was left in place.`;
  }
  return opened.plaintext === password ? undefined : different;
}

/** The parts of a run other than the store, which a failure names as its cause. */
type Part = 'key provider' | 'legacy source' | 'bcrypt';

/** Thrown by {@link blame}: the run then names `part` as the cause, not the store. */
class PartFailure extends Error {
  constructor(
    readonly part: Part,
    cause: unknown,
  ) {
    super((cause as Error).message, { cause });
  }
}

/**
 * `work`, a call to `part` (with the checks on what it answers), whose throw or rejection
 * is marked as that part's. The message is the part's own, or a check's, which names a
 * key id, never a key or a password.
 */
async function blame<T>(part: Part, work: () => MaybePromise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw error instanceof PartFailure ? error : new PartFailure(part, error);
  }
}

/** The ids `part` lists, as strings; a failure stops the run before any record, naming `part`. */
async function listing(
  part: 'legacy source' | 'store',
  list: () => Iterable<unknown> | AsyncIterable<unknown>,
): Promise<string[]> {
  const ids: string[] = [];
  try {
    for await (const id of list()) ids.push(String(id));
  } catch (error) {
    throw new Error(`migratePasswords: the ${part} failed listing its ids: ${(error as Error).message}`, { cause: error });
  }
  return ids;
}

/** The legacy source's `clear`, its answer checked (a failure names the source). */
function cleared(source: LegacyPasswordSource, sourceId: string, password: string): Promise<boolean> {
  return blame('legacy source', async () => checkedBoolean('clear', await source.clear(sourceId, password), 'its'));
}

/**
 * For a source id with nothing left to move: the failure to report when its value should
 * be sealed and none is, while a bcrypt record sits under the source's own id (where a
 * migration that hashed these values put it). That value is lost, and said so.
 */
async function hashedByEarlierRun(config: MigrationConfig, sourceId: string, recordId: string): Promise<Outcome | undefined> {
  const atRecord = checkedRecord(await config.store.get(recordId));
  if (atRecord !== undefined && isSealedScheme(atRecord.scheme)) return undefined;
  const earlier = recordId === sourceId ? atRecord : checkedRecord(await config.store.get(sourceId));
  if (earlier === undefined || !isBcryptScheme(earlier.scheme)) return undefined;
  return {
    kind: 'failed',
    unrecoverable: true,
    reason: `its legacy password is gone, and the store holds only a bcrypt hash of it (scheme "${earlier.scheme}" under "${sourceId}"), made by an earlier migration: no one can turn it back into the password. Reset it (nova clear-password, then the guest's next boot or password reset) so that the guest agent posts it again.`,
  };
}

/**
 * Leaves no copy of a replaced plain-text password in a SQLite file: the store's
 * connection has `secure_delete` on, so replaced rows are zeroed in their pages; VACUUM
 * rewrites the file without free pages an earlier writer may have left, and a TRUNCATE
 * checkpoint copies the WAL into the file and empties it. `false` when another
 * connection's open read kept the checkpoint from completing.
 */
function scrubSqlite(db: SqliteDatabase): boolean {
  // Every record is migrated by now: a busy database must not turn that into a failure,
  // only into "not scrubbed yet", which a later run completes.
  try {
    db.exec('VACUUM');
    const result = db.pragma('wal_checkpoint(TRUNCATE)') as
      | Array<{ busy: number; log: number; checkpointed: number }>
      | undefined;
    const row = result?.[0];
    return row === undefined || (row.busy === 0 && row.log === row.checkpointed);
  } catch {
    return false;
  }
}

function mappedRecordId(map: ((sourceId: string) => string) | undefined, sourceId: string): string {
  if (map === undefined) return sourceId;
  const recordId: unknown = map(sourceId);
  if (typeof recordId !== 'string' || recordId === '') {
    throw optionError('migratePasswords', 'sourceRecordId', `must return a non-empty string; it did not for "${sourceId}".`);
  }
  return recordId;
}

function sourceMechanism(source: LegacyPasswordSource | undefined): SourceMechanism {
  const mechanism = source?.mechanism ?? 'hash';
  if (mechanism !== 'hash' && mechanism !== 'seal') {
    throw optionError('migratePasswords', 'source', `has a mechanism of "${String(mechanism)}"; it must be 'hash' or 'seal'.`);
  }
  return mechanism;
}

function assertSource(source: unknown): asserts source is LegacyPasswordSource {
  if (!hasMethods(source, ['ids', 'read', 'clear'])) {
    throw optionError(
      'migratePasswords',
      'source',
      'must be a legacy password source (ids, read and clear), such as a MetadataChunks.',
    );
  }
}
