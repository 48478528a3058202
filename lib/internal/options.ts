/**
 * A map with one entry per option key. Typing it as `KeysEnum<Options>` makes the
 * compiler fail when an option is added to the interface but not to the map, so the
 * unknown-key check below can never silently miss a real option.
 */
export type KeysEnum<T> = { readonly [K in keyof Required<T>]: true };

/** Throws a `TypeError` naming the first key of `options` that `known` does not list. */
export function assertKnownKeys(factory: string, options: object, known: Readonly<Record<string, true>>): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${factory}: options must be an object.`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(known, key)) {
      const suggestion = closestKey(key, Object.keys(known));
      throw new TypeError(
        `${factory}: unknown option "${key}".` +
          (suggestion === undefined ? '' : ` Did you mean "${suggestion}"?`) +
          ` Known options: ${Object.keys(known).join(', ')}.`,
      );
    }
  }
}

function closestKey(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = levenshtein(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

export function optionError(factory: string, option: string, problem: string): TypeError {
  return new TypeError(`${factory}: option "${option}" ${problem}`);
}

/**
 * `value` when it is a whole number in [min, max], `undefined` when unset; else a
 * `TypeError` naming the option and the accepted range. `max` defaults to no upper
 * bound (the largest safe integer); `unit` ("milliseconds") and `hint` (a short
 * explanation in brackets) make the message say what the number counts.
 *
 * @example
 * const limit = integerOption('passwordBody', 'limit', options.limit, 1, 1024 * 1024) ?? 1020;
 * const windowMs = integerOption('guessLimit', 'windowMs', options.windowMs, 1000, 2 ** 31 - 1, { unit: 'milliseconds' }) ?? 60_000;
 */
export function integerOption(
  factory: string,
  name: string,
  value: unknown,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
  words: { readonly unit?: string; readonly hint?: string } = {},
): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const what = words.unit === undefined ? 'a whole number' : `a whole number of ${words.unit}`;
    const range = max === Number.MAX_SAFE_INTEGER ? `, ${min} or more` : ` from ${min} to ${max}`;
    const hint = words.hint === undefined ? '' : ` (${words.hint})`;
    throw optionError(factory, name, `must be ${what}${range}${hint}, got ${describeValue(value)}.`);
  }
  return value;
}

/** A rejected option value for a message: numbers and strings as written, anything else by its type. */
export function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

export function assertBoolean(factory: string, option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw optionError(factory, option, `must be true or false, got ${typeof value}.`);
  }
}

/** The names in `methods` that `value` does not have as functions: what a duck-typed option lacks. */
export function missingMethods(value: object, methods: readonly string[]): string[] {
  return methods.filter((name) => typeof (value as Record<string, unknown>)[name] !== 'function');
}

/** Whether `value` is an object with every one of `methods`. */
export function hasMethods(value: unknown, methods: readonly string[]): value is object {
  return typeof value === 'object' && value !== null && missingMethods(value, methods).length === 0;
}

export function assertFunction(factory: string, option: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw optionError(factory, option, `must be a function, got ${typeof value}.`);
  }
}
