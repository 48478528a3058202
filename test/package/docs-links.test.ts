import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

// The README and docs/ send readers from page to page; a moved section or a renamed
// heading silently breaks those links, so every relative link and #anchor is resolved here
// the way GitHub renders them. External http(s) links are not fetched: the test stays offline.

const root = resolve(__dirname, '..', '..');

interface Link {
  readonly file: string;
  readonly line: number;
  readonly target: string;
}

interface Page {
  readonly anchors: ReadonlySet<string>;
  readonly links: readonly Link[];
}

const FENCE = /^ {0,3}(`{3,}|~{3,})/;

/** GitHub's heading slug (github-slugger): lower case, punctuation dropped but `-` and `_`, each space a `-`. */
function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The text a heading renders to: code spans keep their content, link and emphasis syntax and HTML tags go. */
function headingText(source: string): string {
  const parts = source.split(/(`+)([\s\S]*?)\1/);
  let out = '';
  // split with two capture groups yields [text, ticks, code, text, ticks, code, …]
  for (let i = 0; i < parts.length; i += 3) {
    out += (parts[i] ?? '')
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/\*+/g, '')
      .replace(/\\(.)/g, '$1');
    const code = parts[i + 2];
    if (code !== undefined) out += code.trim();
  }
  return out.trim();
}

/** Removes code spans so a `[x](y)` written as an example inside one is not taken for a link. */
function withoutCodeSpans(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length));
}

function parsePage(file: string, text: string): Page {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const links: Link[] = [];
  let fence: string | undefined;
  const addAnchor = (base: string): void => {
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  };
  text.split('\n').forEach((raw, index) => {
    const opening = FENCE.exec(raw);
    if (fence !== undefined) {
      if (
        opening !== null &&
        opening[1]?.[0] === fence[0] &&
        (opening[1]?.length ?? 0) >= fence.length &&
        raw.trim() === opening[1]
      ) {
        fence = undefined;
      }
      return;
    }
    if (opening !== null) {
      fence = opening[1];
      return;
    }
    const heading = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(raw);
    if (heading !== null) addAnchor(slug(headingText(heading[1] ?? '')));
    for (const html of raw.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(html[1] ?? '');
    const line = withoutCodeSpans(raw);
    const push = (target: string | undefined): void => {
      if (target !== undefined) links.push({ file, line: index + 1, target });
    };
    for (const inline of line.matchAll(/\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)) {
      push(inline[1]?.replace(/^<|>$/g, ''));
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (definition !== null) push(definition[1]?.replace(/^<|>$/g, ''));
  });
  return { anchors, links };
}

/** What is wrong with one link, or undefined when it resolves. */
function problemWith(link: Link, pageOf: (file: string) => Page | undefined, base: string): string | undefined {
  const { target } = link;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined; // http(s), mailto: not checked
  if (target.startsWith('//')) return undefined;
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const file = pathPart === '' ? link.file : resolve(dirname(link.file), pathPart.split('?')[0] ?? '');
  const inRepo = relative(base, file);
  if (inRepo.startsWith('..')) return `points outside the repository (${inRepo})`;
  if (/^(lib|test)([/\\]|$)/.test(inRepo))
    return 'points into lib/ or test/, whose files move: name the export or suite in a code span instead';
  if (!existsSync(file)) return `no such file: ${inRepo.split(sep).join('/')}`;
  if (anchor === undefined || anchor === '') return undefined;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) return undefined;
  const page = pageOf(file);
  if (page === undefined) return `cannot read ${inRepo}`;
  return page.anchors.has(anchor) ? undefined : `no heading with the anchor #${anchor} in ${inRepo.split(sep).join('/')}`;
}

function markdownUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownUnder(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** Every broken link of `files`, as `file:line target: reason`. */
function brokenLinks(base: string, files: readonly string[]): string[] {
  const pages = new Map<string, Page>();
  const pageOf = (file: string): Page | undefined => {
    let page = pages.get(file);
    if (page === undefined && existsSync(file)) {
      page = parsePage(file, readFileSync(file, 'utf8'));
      pages.set(file, page);
    }
    return page;
  };
  return files.flatMap((file) =>
    (pageOf(file)?.links ?? []).flatMap((link) => {
      const reason = problemWith(link, pageOf, base);
      return reason === undefined ? [] : [`${relative(base, file)}:${link.line} (${link.target}): ${reason}`];
    }),
  );
}

function documentationFiles(base: string): string[] {
  return [
    ...['README.md', 'CONTRIBUTING.md', 'SECURITY.md', 'CHANGELOG.md'].map((name) => join(base, name)),
    ...markdownUnder(join(base, 'docs')),
  ];
}

describe('links and anchors in the documentation', () => {
  test('every relative link resolves to a file and every #anchor to a heading', () => {
    const files = documentationFiles(root);
    expect(files.filter((file) => !existsSync(file))).toEqual([]);
    expect(brokenLinks(root, files)).toEqual([]);
  });

  test('the README stays a five-minute read (at most 300 lines)', () => {
    const lines = readFileSync(join(root, 'README.md'), 'utf8').trimEnd().split('\n').length;
    expect(lines).toBeLessThanOrEqual(300);
  });
});

describe('the link checker', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'docs-links-'));
    mkdirSync(join(dir, 'docs'));
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'x.ts'), '');
    writeFileSync(
      join(dir, 'docs', 'page.md'),
      [
        '# Page',
        '## `methodGuard(methods, options?)` — finding 4',
        '## Options',
        '## Options',
        '### Why raw-body, not body-parser',
        '```md',
        '## Inside a fence',
        '[fenced](missing.md)',
        '```',
        'Same page: [a](#options-1), [b](#methodguardmethods-options--finding-4).',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'README.md'), '');
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const check = (markdown: string): string[] => {
    writeFileSync(join(dir, 'README.md'), markdown);
    return brokenLinks(dir, [join(dir, 'README.md'), join(dir, 'docs', 'page.md')]);
  };

  test('slugs headings as GitHub does, numbering duplicates', () => {
    const { anchors } = parsePage('page.md', readFileSync(join(dir, 'docs', 'page.md'), 'utf8'));
    expect([...anchors]).toEqual([
      'page',
      'methodguardmethods-options--finding-4',
      'options',
      'options-1',
      'why-raw-body-not-body-parser',
    ]);
    expect(slug('The demo on several processes (REDIS_URL)')).toBe('the-demo-on-several-processes-redis_url');
  });

  test('accepts links that resolve', () => {
    expect(
      check(
        '[p](docs/page.md) [o](docs/page.md#options-1) [w](docs/page.md#why-raw-body-not-body-parser) [e](https://example.com/x#y) [d](docs/)',
      ),
    ).toEqual([]);
  });

  test('reports a missing file, a missing anchor and a missing same-page anchor', () => {
    expect(check('# Top\n[a](docs/nope.md)\n[b](docs/page.md#options-2)\n[c](#nowhere)\n[d](#top)')).toEqual([
      'README.md:2 (docs/nope.md): no such file: docs/nope.md',
      'README.md:3 (docs/page.md#options-2): no heading with the anchor #options-2 in docs/page.md',
      'README.md:4 (#nowhere): no heading with the anchor #nowhere in README.md',
    ]);
  });

  test('reports a link into lib/, and ignores links inside code', () => {
    expect(check('[x](lib/x.ts) `[y](nope.md)`')).toEqual([
      'README.md:1 (lib/x.ts): points into lib/ or test/, whose files move: name the export or suite in a code span instead',
    ]);
  });
});
