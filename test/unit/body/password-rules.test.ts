import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { passwordBody, problemHandler, validatedPassword } from '../../../lib';
import type { PasswordBodyOptions, ProblemLogEntry } from '../../../lib';
import { expressVersions } from '../../helpers/express';
import type { ExpressFactory } from '../../helpers/express';
import { codes, expectNoLeak, expectProblem } from '../../helpers/problem';

// The content rules of passwordBody() (lib/body/password-rules.ts): each rule's own
// message, the strength estimator's input and dictionaries, context words, and the
// composition and length options. The body reading is tested in password-body.test.ts.

const PATH = '/servers/srv-7f3a9c/password';

type BodyModule = typeof import('../../../lib/body/password-body');
type HandlerModule = typeof import('../../../lib/http/problem-handler');
type ZxcvbnModule = typeof import('@zxcvbn-ts/core');

interface Middlewares {
  readonly passwordBody: BodyModule['passwordBody'];
  readonly problemHandler: HandlerModule['problemHandler'];
}

const shared: Middlewares = { passwordBody, problemHandler };

/**
 * The package and zxcvbn-ts loaded afresh. zxcvbn-ts keeps its options in one object per
 * process, and the package sets its dictionaries up once: a test about who configures
 * them needs a process (a module registry) where nobody has yet.
 */
function freshModules(): Middlewares & { readonly zxcvbn: ZxcvbnModule } {
  const loaded: { body?: BodyModule; handler?: HandlerModule; zxcvbn?: ZxcvbnModule } = {};
  jest.isolateModules(() => {
    loaded.zxcvbn = require('@zxcvbn-ts/core') as ZxcvbnModule;
    loaded.body = require('../../../lib/body/password-body') as BodyModule;
    loaded.handler = require('../../../lib/http/problem-handler') as HandlerModule;
  });
  const { body, handler, zxcvbn } = loaded;
  if (body === undefined || handler === undefined || zxcvbn === undefined) throw new Error('the modules did not load');
  return { passwordBody: body.passwordBody, problemHandler: handler.problemHandler, zxcvbn };
}

function rulesApp(
  express: ExpressFactory,
  options: PasswordBodyOptions = {},
  modules: Middlewares = shared,
  log: ((entry: ProblemLogEntry) => void) | false = false,
): Express {
  const app = express();
  app.post('/servers/:id/password', modules.passwordBody(options), (req: Request, res: Response) => {
    // Test-only route: it echoes the password so the tests can check what passed.
    res.json({ password: validatedPassword(req) ?? null });
  });
  app.use(modules.problemHandler({ log }));
  return app;
}

const text = (app: Express, value: string): request.Test =>
  request(app).post(PATH).set('Content-Type', 'text/plain; charset=utf-8').send(value);

const errorsOf = (res: request.Response): unknown => (res.body as { errors?: unknown }).errors;
/** The `errors` of a 422 that refused the password for one rule only. */
const onlyError = (code: string, message: string): unknown[] => [{ field: 'password', code, message }];

const STRONG = 'vq7#Lm2!xRt9@pWz';
// Strong to zxcvbn without dictionaries (score 4), weak with the common ones: "sunshine" is a
// listed password and 2024 a year. Only the estimator can refuse it when commonPasswords is off.
const WEAK_BY_DICTIONARY = 'sunshine2024';

describe.each(expressVersions)('password rules on %s', (_name, express) => {
  const app = rulesApp(express);

  describe('each rule says what is wrong in its own words', () => {
    test('control_character, format_character and common_password', async () => {
      const control = await text(app, 'ctl-secret\u0000pass');
      expect(errorsOf(control)).toEqual(
        onlyError(
          'control_character',
          'The password must not contain control characters (such as NUL, tab, CR, LF or U+0085) or line separators.',
        ),
      );
      expectNoLeak(control, 'ctl-secret');

      const format = await text(app, 'fmt-secret\u200bpass');
      expect(errorsOf(format)).toEqual(
        onlyError(
          'format_character',
          'The password must not contain invisible formatting characters (such as a zero-width space, a soft hyphen, a byte-order mark or a direction override).',
        ),
      );
      expectNoLeak(format, 'fmt-secret');

      expect(errorsOf(await text(app, 'Password1'))).toEqual(
        onlyError('common_password', 'The password is on a list of commonly used passwords; choose another.'),
      );
    });

    test('context_word and weak, the latter naming the score to reach', async () => {
      const withContext = rulesApp(express, { context: ['nova'] });
      const context = await text(withContext, 'my-nova-secret');
      expect(errorsOf(context)).toEqual(
        onlyError(
          'context_word',
          'The password contains a word from its context, such as the user name, the service name or the instance id.',
        ),
      );
      expectNoLeak(context, 'my-nova-secret');

      const scored = rulesApp(express, { minScore: 3, commonPasswords: false });
      expect(errorsOf(await text(scored, 'aaaaaaaaaaaa'))).toEqual(
        onlyError('weak', 'The password is too easy to guess: it must reach a strength score of 3 out of 4.'),
      );
    });

    test('too_long names the default byte ceiling: four bytes for each allowed code point, or the body limit', async () => {
      expect(errorsOf(await text(app, 'a'.repeat(65)))).toEqual(
        onlyError(
          'too_long',
          'The password must be at most 64 characters and at most 256 bytes of UTF-8 (Unicode code points, after NFC normalisation).',
        ),
      );
      // A body limit below 4 × 64 bytes caps the ceiling instead.
      const small = rulesApp(express, { limit: 100 });
      expect(errorsOf(await text(small, 'a'.repeat(65)))).toEqual(
        onlyError(
          'too_long',
          'The password must be at most 64 characters and at most 100 bytes of UTF-8 (Unicode code points, after NFC normalisation).',
        ),
      );
    });

    test('the length messages say which normal form the code points were counted in, and none when there is none', async () => {
      const raw = rulesApp(express, { normalization: 'none' });
      expect(errorsOf(await text(raw, 'e\u0301'.repeat(3)))).toEqual(
        onlyError('too_short', 'The password must be at least 8 characters long (Unicode code points).'),
      );
      const nfkc = rulesApp(express, { normalization: 'NFKC' });
      expect(errorsOf(await text(nfkc, 'k7#qz'))).toEqual(
        onlyError(
          'too_short',
          'The password must be at least 8 characters long (Unicode code points, after NFKC normalisation).',
        ),
      );
    });
  });

  describe('strength', () => {
    test('the estimator sees the first 32 code points: a weak beginning is refused whatever strong tail follows', async () => {
      const scored = rulesApp(express, { minScore: 3, commonPasswords: false });
      expect(codes(await text(scored, `${'1'.repeat(32)}${STRONG}`))).toEqual(['weak']);
      // The tail is still checked by the other rules, and a strong beginning is enough.
      expect((await text(scored, `${STRONG}${'1'.repeat(40)}`)).status).toBe(200);
      expect(codes(await text(scored, `${STRONG}${'1'.repeat(40)}\u0000`))).toEqual(['control_character']);
    });

    test('minScore 4, the highest score, lets a password that reaches it through', async () => {
      const strictest = rulesApp(express, { minScore: 4, commonPasswords: false });
      const res = await text(strictest, STRONG);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ password: STRONG });
      expect(codes(await text(strictest, WEAK_BY_DICTIONARY))).toEqual(['weak']);
    });

    test('context words are user inputs to the estimator: a password weak only through one fails both rules', async () => {
      const scored = rulesApp(express, { minScore: 3, context: ['zaphodbeeblebrox'] });
      const res = await text(scored, 'Zaphodbeeblebrox42');
      expect(codes(res)).toEqual(['context_word', 'weak']);
      expectNoLeak(res, 'Zaphodbeeblebrox42');
      // The same password with another context is strong.
      const other = rulesApp(express, { minScore: 3, context: ['arthurdent'] });
      expect((await text(other, 'Zaphodbeeblebrox42')).status).toBe(200);
    });
  });

  describe('context words', () => {
    test('a context word shorter than 4 code points refuses only a password that is that word', async () => {
      const short = rulesApp(express, { context: ['Bob'], minLength: 3, commonPasswords: false });
      for (const password of ['bob', 'BOB', '\uff42\uff4f\uff42']) {
        expect(codes(await text(short, password))).toEqual(['context_word']);
      }
      expect((await text(short, 'bobby-tables-42')).status).toBe(200);
      expect((await text(short, 'bob1')).status).toBe(200);
    });

    test('the runs of letters or digits in a context word are words of their own only from 4 code points on', async () => {
      const id = rulesApp(express, { context: ['srv-7f3a9c'], minLength: 3, commonPasswords: false });
      // "srv" is a run of 3: it is no word of its own, not even as the whole password.
      expect((await text(id, 'srv')).status).toBe(200);
      expect(codes(await text(id, 'my-7f3a9c-box'))).toEqual(['context_word']);
      expect(codes(await text(id, 'xxSRV-7F3A9Cxx'))).toEqual(['context_word']);
      // A value whose runs are all short still counts whole.
      const dashed = rulesApp(express, { context: ['ab-cd'], commonPasswords: false });
      expect(codes(await text(dashed, 'one-ab-cd-two'))).toEqual(['context_word']);
      expect((await text(dashed, 'one-ab-two-cd')).status).toBe(200);
    });

    test('an empty context value (a user with no name yet) is no word: an empty password is only too short', async () => {
      const unnamed = rulesApp(express, { context: (req) => ['', '\u200d', req.params['id']] });
      const res = await request(unnamed).post(PATH).type('application/json').send({ password: '' });
      expect(codes(res)).toEqual(['too_short']);
      expect(codes(await text(unnamed, 'srv-7f3a9c-again'))).toEqual(['context_word']);
    });

    test('a context value with no letter or digit counts whole', async () => {
      const punctuation = rulesApp(express, { context: ['!!!!'], commonPasswords: false });
      expect(codes(await text(punctuation, 'wow!!!!really'))).toEqual(['context_word']);
      expect((await text(punctuation, 'wow!!!really')).status).toBe(200);
    });

    test('a context function that returns no list is logged with what to fix, and the client gets no detail of it', async () => {
      const logged: ProblemLogEntry[] = [];
      const broken = rulesApp(express, { context: (() => 'nova') as unknown as () => string[] }, shared, (entry) =>
        logged.push(entry),
      );
      const res = await text(broken, 'some long passphrase');
      expectProblem(res, 500, 'password.misconfigured');
      expect(res.text).not.toContain('context option');
      expect(logged).toHaveLength(1);
      expect(logged[0]?.error).toContain(
        'The context option of passwordBody() must return an array of strings (null and undefined are skipped).',
      );
      expect(logged[0]?.error).not.toContain('some long passphrase');
    });
  });

  describe('composition and lengths', () => {
    test('composition false, or a class set to undefined or 0, adds no rule', async () => {
      for (const composition of [false, { digits: undefined }, { digits: 0, uppercase: undefined }] as const) {
        const open = rulesApp(express, { composition });
        expect((await text(open, 'no digits here at all')).status).toBe(200);
      }
      const mixed = rulesApp(express, { composition: { digits: undefined, uppercase: 1 } });
      expect(codes(await text(mixed, 'no capitals here'))).toEqual(['composition']);
    });

    test('minLength may equal maxLength: exactly that many code points pass', async () => {
      const exact = rulesApp(express, { minLength: 12, maxLength: 12 });
      expect((await text(exact, 'twelve chars')).status).toBe(200);
      expect(codes(await text(exact, 'eleven char'))).toEqual(['too_short']);
      expect(codes(await text(exact, 'thirteen char'))).toEqual(['too_long']);
    });
  });
});

describe('password rule options', () => {
  test.each<[string, unknown, string]>([
    ['null', null, 'passwordBody: option "composition" must be false or an object such as { uppercase: 1, digits: 1 }.'],
    ['an array', [], 'passwordBody: option "composition" must be false or an object such as { uppercase: 1, digits: 1 }.'],
    ['a string', 'digits', 'passwordBody: option "composition" must be false or an object such as { uppercase: 1, digits: 1 }.'],
    [
      'an object with an unknown class',
      { capitals: 1 },
      'passwordBody: option "composition" has an unknown class "capitals"; use lowercase, uppercase, digits, symbols.',
    ],
  ])('composition as %s throws a TypeError that says what to use', (_label, composition, message) => {
    const build = (): unknown => passwordBody({ composition } as PasswordBodyOptions);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(message);
  });
});

// zxcvbn-ts's options are one object per process: each of these tests loads the package
// and zxcvbn afresh, as an application starting up would.
describe.each(expressVersions)("zxcvbn's dictionaries on %s", (_name, express) => {
  test('with minScore, the package sets up the common dictionaries: a password weak only by them is refused', async () => {
    const modules = freshModules();
    const scored = rulesApp(express, { minScore: 3, commonPasswords: false }, modules);
    expect(codes(await text(scored, WEAK_BY_DICTIONARY))).toEqual(['weak']);
    expect((await text(scored, STRONG)).status).toBe(200);
  });

  test("without minScore, zxcvbn's options are left as the application has them", () => {
    const modules = freshModules();
    const rate = (): number => modules.zxcvbn.zxcvbn(WEAK_BY_DICTIONARY).score;
    const untouched = rate();
    rulesApp(express, { context: ['nova'], composition: { digits: 1 } }, modules);
    expect(rate()).toBe(untouched);
    // The control: a middleware with minScore does set them up, and the rating changes.
    rulesApp(express, { minScore: 2 }, modules);
    expect(rate()).toBeLessThan(untouched);
  });

  test('an application that configured dictionaries of its own keeps them, and gets none of the common ones', async () => {
    const modules = freshModules();
    modules.zxcvbn.zxcvbnOptions.setOptions({ dictionary: { project: ['zaphodbeeblebrox'] } });
    // The application rates a password itself too: zxcvbn adds its userInputs list then.
    modules.zxcvbn.zxcvbn('some password', ['alice']);
    const scored = rulesApp(express, { minScore: 3, commonPasswords: false }, modules);
    expect(codes(await text(scored, 'zaphodbeeblebrox'))).toEqual(['weak']);
    expect((await text(scored, WEAK_BY_DICTIONARY)).status).toBe(200);
  });
});
