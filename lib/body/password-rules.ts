import { zxcvbn, zxcvbnOptions } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import type { Request } from 'express';
import { body } from 'express-validator';
import type { Meta, ValidationChain } from 'express-validator';
import { problem } from '../internal/errors';
import type { ProblemField } from '../internal/errors';
import { assertBoolean, describeValue, integerOption, optionError } from '../internal/options';
import type { KeysEnum } from '../internal/options';

/**
 * The Unicode normalisation applied to a password before any rule and before hashing,
 * so that `é` typed as one code point or as `e` + U+0301 is the same password.
 * `'none'` keeps the submitted code points as they are.
 *
 * @example
 * const form: PasswordNormalization = 'NFKC'; // NIST SP 800-63B §5.1.1.2 suggests NFKC or NFKD
 */
export type PasswordNormalization = 'NFC' | 'NFD' | 'NFKC' | 'NFKD' | 'none';

/**
 * Words a password must not contain: the user name, the service name, the instance id.
 * `null` and `undefined` entries are skipped and arrays are flattened, so
 * `[req.params.id, req.user?.name]` works with Express 5's `string | string[]` params.
 *
 * @example
 * const words: PasswordContextWords = ['nova', 'compute', req.params.id];
 */
export type PasswordContextWords = readonly (string | readonly string[] | null | undefined)[];

/**
 * A fixed list of context words, or a function that finds them for each request (it
 * runs after the body is parsed, so it may read the other JSON fields).
 *
 * @example
 * const context: PasswordContext = (req) => ['nova', req.params.id, req.body.username];
 */
export type PasswordContext = PasswordContextWords | ((req: Request) => PasswordContextWords | Promise<PasswordContextWords>);

/**
 * Composition rules: the least number of characters of each class. NIST SP 800-63B
 * advises against them, so they are off unless you set this.
 *
 * @example
 * const composition: PasswordComposition = { uppercase: 1, digits: 1 };
 */
export interface PasswordComposition {
  /** Lower-case letters (Unicode category Ll). @default 0 */
  readonly lowercase?: number;
  /** Upper-case letters (Unicode category Lu). @default 0 */
  readonly uppercase?: number;
  /** Decimal digits (Unicode category Nd). @default 0 */
  readonly digits?: number;
  /** Punctuation and symbols (Unicode categories P and S). @default 0 */
  readonly symbols?: number;
}

/**
 * The content rules of {@link passwordBody}. Lengths count Unicode code points after
 * normalisation; bytes count UTF-8 after normalisation.
 *
 * @example
 * const rules: PasswordRulesOptions = {
 *   minLength: 12,
 *   context: (req) => ['nova', req.params.id],
 *   minScore: 3,
 * };
 */
export interface PasswordRulesOptions {
  /**
   * Unicode normalisation applied before every rule; the normalised password is what
   * the next handler (and the hashing storer) gets.
   * @default 'NFC'
   */
  readonly normalization?: PasswordNormalization;
  /**
   * Fewest code points (NIST SP 800-63B: at least 8).
   * @default 8
   */
  readonly minLength?: number;
  /**
   * Most code points (NIST SP 800-63B: allow at least 64). At most the body `limit`.
   * @default 64, or the body `limit` when that is smaller
   */
  readonly maxLength?: number;
  /**
   * Most UTF-8 bytes, between `maxLength` and the body `limit`. Exceeding it is the same
   * `too_long` failure as exceeding `maxLength`, with one message naming both limits. Set
   * 72 to match a bcrypt storer without a pepper.
   * @default the smaller of 4 × maxLength (never the binding limit) and `limit`
   */
  readonly maxBytes?: number;
  /**
   * Least number of characters per class, or `false` for none.
   * @default false
   */
  readonly composition?: PasswordComposition | false;
  /**
   * Refuse the about 49,000 common passwords listed by `@zxcvbn-ts/language-common`, compared
   * case-insensitively. Turn it off for machine-generated secrets (ciphertexts, tokens).
   * @default true
   */
  readonly commonPasswords?: boolean;
  /**
   * Words the password must not contain (case-insensitively): each value whole, and each
   * run of 4 or more letters or digits in it.
   * @default none
   */
  readonly context?: PasswordContext;
  /**
   * Least zxcvbn-ts score (0 to 4) the password must reach, with the context words as
   * user inputs; `undefined` does no strength estimation.
   * @default undefined
   */
  readonly minScore?: 0 | 1 | 2 | 3 | 4;
}

/**
 * The rule option keys, for the unknown-key check of a factory that accepts them.
 *
 * @example
 * const optionKeys: KeysEnum<MyOptions> = { ...passwordRuleKeys, field: true };
 */
export const passwordRuleKeys: KeysEnum<PasswordRulesOptions> = {
  normalization: true,
  minLength: true,
  maxLength: true,
  maxBytes: true,
  composition: true,
  commonPasswords: true,
  context: true,
  minScore: true,
};

/**
 * What {@link PasswordRules.check} finds: the normalised password, or every failure.
 *
 * @example
 * const outcome: RuleOutcome = { ok: false, errors: [{ field: 'password', code: 'too_short', message: '…' }] };
 */
export type RuleOutcome =
  | { readonly ok: true; readonly password: string }
  | { readonly ok: false; readonly errors: readonly ProblemField[] };

/**
 * The compiled rules, built once per middleware by {@link compilePasswordRules}.
 *
 * @example
 * const outcome = await rules.check(submitted, await rules.contextWords(req));
 */
export interface PasswordRules {
  /** Normalised, lower-cased context words of `req` (none when `context` is unset). */
  contextWords(req: Request): Promise<readonly string[]>;
  check(submitted: unknown, contextWords: readonly string[]): Promise<RuleOutcome>;
  /** The configured Unicode normalisation, for the other password fields of a form. */
  normalize(text: string): string;
}

export const NORMALIZATIONS: readonly PasswordNormalization[] = ['NFC', 'NFD', 'NFKC', 'NFKD', 'none'];

// C0 (NUL, TAB, CR, LF …), DEL and C1 (U+0080–U+009F, NEL among them) are category Cc.
// U+2028 and U+2029 are line breaks too, which the rule against CR and LF is about.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

// Format characters (Cf) are invisible or reorder text: a zero-width space, a soft hyphen,
// a byte-order mark, a right-to-left override or a tag character makes a listed password
// look new and makes the password on screen differ from the one stored. The zero-width
// joiner and non-joiner stay allowed: emoji sequences and Persian and Indic spelling need
// them; they are removed before the blocklist and context comparisons instead.
const FORMAT = /(?![\u200c\u200d])\p{Cf}/u;
const JOINERS = /[\u200c\u200d]/g;

/**
 * The form compared with the blocklist and the context words, whatever `normalization`
 * keeps: NFKC folds fullwidth, ligature and other compatibility lookalikes onto the
 * letters they stand for, then case is folded.
 */
function comparable(text: string): string {
  return text.normalize('NFKC').toLowerCase().normalize('NFKC').replace(JOINERS, '');
}

/**
 * zxcvbn's work grows faster than the length of its input (1,020 digits took 10 s): it
 * sees the first this many code points only. A longer password is judged by its
 * beginning: a strong beginning is enough, a weak one is refused whatever follows.
 */
const STRENGTH_INPUT_LIMIT = 32;

/**
 * zxcvbn's l33t matcher tries every combination of substitutable characters; past a few
 * it costs most of the estimate. Applied only when this package configures zxcvbn.
 */
const L33T_MAX_SUBSTITUTIONS = 8;

function strengthInput(text: string): string {
  let end = 0;
  let count = 0;
  for (const char of text) {
    if (count === STRENGTH_INPUT_LIMIT) break;
    end += char.length;
    count++;
  }
  return text.slice(0, end);
}

const CLASSES = {
  lowercase: { pattern: /\p{Ll}/gu, name: ['lower-case letter', 'lower-case letters'] },
  uppercase: { pattern: /\p{Lu}/gu, name: ['upper-case letter', 'upper-case letters'] },
  digits: { pattern: /\p{Nd}/gu, name: ['digit', 'digits'] },
  symbols: { pattern: /[\p{P}\p{S}]/gu, name: ['punctuation mark or symbol', 'punctuation marks or symbols'] },
} as const;
type CompositionClass = keyof typeof CLASSES;
const compositionKeys: KeysEnum<PasswordComposition> = { lowercase: true, uppercase: true, digits: true, symbols: true };

/** Context words shorter than this only count when the whole password equals them. */
const MIN_CONTEXT_WORD = 4;

// The key the password sits under in the request-shaped object the chain runs on: a
// fixed one, since express-validator would read dots or brackets in a field name as a path.
const KEY = 'password';

/** The request-shaped object a chain runs on: never the real request, so nothing is left on it. */
interface RuleInput {
  readonly body: Readonly<Record<string, unknown>>;
  readonly contextWords: readonly string[];
}

interface Fault {
  readonly code: string;
  readonly message: string;
}

let commonPasswordSet: ReadonlySet<string> | undefined;

/** The blocklist, lower-cased, built on first use and shared by every middleware. */
function commonPasswords(): ReadonlySet<string> {
  commonPasswordSet ??= new Set(dictionary.passwords.map((entry) => entry.toLowerCase()));
  return commonPasswordSet;
}

let strengthReady = false;

function prepareStrength(): void {
  if (strengthReady) return;
  // zxcvbn-ts keeps its options in one process-wide object: leave dictionaries an
  // application configured alone, and supply the common ones only when there are none.
  const configured = Object.keys(zxcvbnOptions.dictionary).some((name) => name !== 'userInputs');
  if (!configured) {
    zxcvbnOptions.setOptions({
      dictionary: { ...dictionary },
      graphs: adjacencyGraphs,
      l33tMaxSubstitutions: L33T_MAX_SUBSTITUTIONS,
    });
  }
  strengthReady = true;
}

const codePoints = (text: string): number => {
  let count = 0;
  for (const _ of text) count++;
  return count;
};

function plural(count: number, names: readonly [string, string]): string {
  return `${count} ${count === 1 ? names[0] : names[1]}`;
}

function normalizer(form: PasswordNormalization): (text: string) => string {
  return form === 'none' ? (text) => text : (text) => text.normalize(form);
}

/**
 * Compiles the content rules into one express-validator chain, checking the options
 * (a bad one throws a `TypeError`). `field` names the password in error entries; `limit`
 * is the body limit the length options must fit in; `missing` is the message when no
 * password was sent, which says where it was looked for.
 *
 * @example
 * const rules = compilePasswordRules('passwordBody', { minLength: 12 }, 'password', 1020);
 * const outcome = await rules.check(submitted, await rules.contextWords(req));
 */
export function compilePasswordRules(
  factory: string,
  options: PasswordRulesOptions,
  field: string,
  limit: number,
  missing = `No password was sent: the body is empty or has no "${field}" field.`,
): PasswordRules {
  const form = options.normalization ?? 'NFC';
  if (!NORMALIZATIONS.includes(form)) {
    throw optionError(factory, 'normalization', `must be one of ${NORMALIZATIONS.join(', ')}, got ${describeValue(form)}.`);
  }
  const minLength = integerOption(factory, 'minLength', options.minLength, 1, limit) ?? 8;
  const maxLength = integerOption(factory, 'maxLength', options.maxLength, 1, limit) ?? Math.min(64, limit);
  if (minLength > maxLength) {
    throw optionError(factory, 'minLength', `(${minLength}) is above maxLength (${maxLength}).`);
  }
  const maxBytes = integerOption(factory, 'maxBytes', options.maxBytes, maxLength, limit) ?? Math.min(4 * maxLength, limit);
  const composition = resolveComposition(factory, options.composition);
  assertBoolean(factory, 'commonPasswords', options.commonPasswords);
  const refuseCommon = options.commonPasswords ?? true;
  const minScore = integerOption(factory, 'minScore', options.minScore, 0, 4);
  const normalize = normalizer(form);
  const contextWords = resolveContext(factory, options.context);

  if (refuseCommon) commonPasswords();
  if (minScore !== undefined) prepareStrength();

  const counted = form === 'none' ? 'Unicode code points' : `Unicode code points, after ${form} normalisation`;
  const fault = (code: string, message: string): Fault => ({ code, message });

  let chain: ValidationChain = body(KEY)
    .exists()
    .withMessage(fault('missing', missing))
    .bail()
    .isString()
    .withMessage(fault('not_string', `The "${field}" field must be a string.`))
    .bail()
    .customSanitizer((value: string) => normalize(value))
    .custom((value: string) => codePoints(value) >= minLength)
    .withMessage(fault('too_short', `The password must be at least ${minLength} characters long (${counted}).`))
    .custom((value: string) => codePoints(value) <= maxLength && Buffer.byteLength(value, 'utf8') <= maxBytes)
    .withMessage(
      fault(
        'too_long',
        `The password must be at most ${maxLength} characters and at most ${maxBytes} bytes of UTF-8 (${counted}).`,
      ),
    )
    .custom((value: string) => !CONTROL.test(value))
    .withMessage(
      fault(
        'control_character',
        'The password must not contain control characters (such as NUL, tab, CR, LF or U+0085) or line separators.',
      ),
    )
    .custom((value: string) => !FORMAT.test(value))
    .withMessage(
      fault(
        'format_character',
        'The password must not contain invisible formatting characters (such as a zero-width space, a soft hyphen, a byte-order mark or a direction override).',
      ),
    );
  for (const [name, least] of composition) {
    const { pattern, name: names } = CLASSES[name];
    chain = chain
      .custom((value: string) => (value.match(pattern) ?? []).length >= least)
      .withMessage(fault('composition', `The password must contain at least ${plural(least, names)}.`));
  }
  if (refuseCommon) {
    const blocklist = commonPasswords();
    chain = chain
      .custom((value: string) => !blocklist.has(comparable(value)))
      .withMessage(fault('common_password', 'The password is on a list of commonly used passwords; choose another.'));
  }
  if (contextWords !== undefined) {
    chain = chain
      .custom((value: string, meta: Meta) => !containsContextWord(comparable(value), inputOf(meta).contextWords))
      .withMessage(
        fault(
          'context_word',
          'The password contains a word from its context, such as the user name, the service name or the instance id.',
        ),
      );
  }
  if (minScore !== undefined) {
    chain = chain
      .custom((value: string, meta: Meta) => zxcvbn(strengthInput(value), [...inputOf(meta).contextWords]).score >= minScore)
      .withMessage(fault('weak', `The password is too easy to guess: it must reach a strength score of ${minScore} out of 4.`));
  }
  const rules: ValidationChain = chain;

  return {
    normalize,
    contextWords: contextWords ?? (() => Promise.resolve([])),
    async check(submitted, words) {
      const input: RuleInput = { body: { [KEY]: submitted }, contextWords: words };
      // dryRun: the run's context (which holds the value) is not stored on any request.
      const result = await rules.run(input, { dryRun: true });
      if (result.isEmpty()) {
        const [instance] = result.context.getData();
        return { ok: true, password: instance?.value as string };
      }
      // express-validator's error objects carry the submitted `value`: only our own
      // code and message are copied out, so the value reaches no response and no log.
      const errors = result.array().map((error): ProblemField => {
        const message = error.msg as Partial<Fault> | undefined;
        return {
          field,
          code: typeof message?.code === 'string' ? message.code : 'invalid',
          message: typeof message?.message === 'string' ? message.message : 'The password is not valid.',
        };
      });
      return { ok: false, errors };
    },
  };
}

function inputOf(meta: Meta): RuleInput {
  return meta.req as RuleInput;
}

function containsContextWord(password: string, words: readonly string[]): boolean {
  return words.some((word) => (codePoints(word) >= MIN_CONTEXT_WORD ? password.includes(word) : password === word));
}

function resolveComposition(factory: string, option: unknown): [CompositionClass, number][] {
  if (option === undefined || option === false) return [];
  if (option === null || typeof option !== 'object' || Array.isArray(option)) {
    throw optionError(factory, 'composition', 'must be false or an object such as { uppercase: 1, digits: 1 }.');
  }
  const rules: [CompositionClass, number][] = [];
  for (const [name, least] of Object.entries(option)) {
    if (!Object.hasOwn(compositionKeys, name)) {
      throw optionError(
        factory,
        'composition',
        `has an unknown class "${name}"; use ${Object.keys(compositionKeys).join(', ')}.`,
      );
    }
    const count = integerOption(factory, `composition.${name}`, least, 0, 1024);
    if (count !== undefined && count > 0) rules.push([name as CompositionClass, count]);
  }
  return rules;
}

function resolveContext(factory: string, option: unknown): ((req: Request) => Promise<readonly string[]>) | undefined {
  if (option === undefined) return undefined;
  if (typeof option === 'function') {
    const find = option as (req: Request) => unknown;
    return async (req) => {
      const values: unknown = await find(req);
      if (!isWordList(values)) {
        throw problem(
          500,
          'password.misconfigured',
          `The context option of ${factory}() must return an array of strings (null and undefined are skipped).`,
        );
      }
      return contextWordList(values);
    };
  }
  if (!isWordList(option)) {
    throw optionError(factory, 'context', 'must be an array of strings or a function (req) => string[] | Promise<string[]>.');
  }
  const words = contextWordList(option);
  return () => Promise.resolve(words);
}

function isWordList(value: unknown): value is PasswordContextWords {
  const isWord = (entry: unknown): boolean => entry === null || entry === undefined || typeof entry === 'string';
  return (
    Array.isArray(value) &&
    value.every((entry) => isWord(entry) || (Array.isArray(entry) && entry.every((inner) => typeof inner === 'string')))
  );
}

function contextWordList(values: PasswordContextWords): string[] {
  const words = new Set<string>();
  for (const value of values.flat()) {
    if (value === null || value === undefined) continue;
    const lower = comparable(value);
    if (lower.length > 0) words.add(lower);
    for (const run of lower.match(/[\p{L}\p{N}]+/gu) ?? []) {
      if (codePoints(run) >= MIN_CONTEXT_WORD) words.add(run);
    }
  }
  return [...words];
}
