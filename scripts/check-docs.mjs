#!/usr/bin/env node
// Checks that the repository's documentation references resolve:
//   a. a published package's README (packages/*/README.md, apps/*/README.md) has
//      no relative link: the npm registry shows the README without the repository
//      around it, so links must be absolute (https://github.com/rxvmm/rxvmm/...);
//      in-page anchors (#...) are fine;
//   b. every "SEMANTICS" / "ARCHITECTURE" reference in code, tests and READMEs
//      names the repository's file (docs/SEMANTICS.md, docs/ARCHITECTURE.md, or
//      the absolute URL of it), and every §n on the line of a SEMANTICS
//      reference is a section heading of docs/SEMANTICS.md;
//   c. every backticked repository path (`packages/...`, `apps/...`, `examples/...`,
//      `scripts/...`, `docs/...`) in docs/*.md exists,
//      and every relative link in docs/*.md and README.md points at a file that exists;
//   d. every test name quoted on a "- Checked by:" line of docs/SEMANTICS.md is
//      the name of a test in packages/ or apps/ ("…" stands for the varying part
//      of a generated name);
//   e. every benchmark figure a README states comes from a committed `pnpm bench`
//      record: each generated table (<!-- bench-table ... -->) is what
//      scripts/bench-tables.mjs makes of the record it names, and no figure (a
//      decimal with a unit of time, rate or ratio, a table cell of one) stands
//      outside such a table;
//   f. every https://github.com/rxvmm/rxvmm/blob|tree/main/<path> link of a README or
//      docs/*.md names a path of the repository (and a heading for a #fragment on a
//      Markdown file), and every in-page #fragment is a heading (scripts/readme-links.mjs).
// One line per check (`ok` / `FAIL` with the offending places); the closing line
// is `N passed, N failed`, and the exit status is 1 when anything failed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { benchTableProblems } from './bench-tables.mjs';
import { readmeLinkProblems } from './readme-links.mjs';

const root = resolve(new URL('..', import.meta.url).pathname);
const SKIP_DIRS = new Set(['node_modules', 'dist', '.turbo', '.git', 'build', 'prebuilds', 'coverage']);
const read = (path) => readFileSync(join(root, path), 'utf8');

let passed = 0;
let failed = 0;
function check(name, problems) {
  if (problems.length === 0) passed += 1;
  else failed += 1;
  console.log(`${problems.length === 0 ? 'ok  ' : 'FAIL'} ${name}`);
  for (const p of problems) console.log(`     ${p}`);
}

/** Files under `dir` (repository-relative) whose name passes `keep`. */
function walk(dir, keep, out = []) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return out;
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, keep, out);
    else if (keep(entry.name)) out.push(path);
  }
  return out;
}

/** Markdown links `[text](target)` outside code blocks and inline code, with their line numbers. */
function markdownLinks(text) {
  const links = [];
  let inFence = false;
  text.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      inFence = !inFence;
      return;
    }
    if (inFence) return;
    const plain = line.replace(/`[^`]*`/g, '');
    for (const m of plain.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ target: m[1], line: i + 1 });
    }
  });
  return links;
}

const isRelative = (target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#');

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens. */
function slug(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

// ---- the docs themselves ---------------------------------------------------------------------

const semanticsPath = 'docs/SEMANTICS.md';
const semantics = existsSync(join(root, semanticsPath)) ? read(semanticsPath) : '';
check(`${semanticsPath} and docs/ARCHITECTURE.md exist`, [
  ...(semantics ? [] : [`${semanticsPath} is missing`]),
  ...(existsSync(join(root, 'docs/ARCHITECTURE.md')) ? [] : ['docs/ARCHITECTURE.md is missing']),
]);
const headings = [...semantics.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1]);
const sections = new Set(headings.flatMap((h) => [...h.matchAll(/§(\d+(?:\.\d+)*)/g)].map((m) => m[1])));
const anchors = new Set(headings.map(slug));

// ---- a. published READMEs link absolutely ------------------------------------------------------

{
  const problems = [];
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group))) {
      const manifest = join(group, name, 'package.json');
      const readme = join(group, name, 'README.md');
      if (!existsSync(join(root, manifest)) || !existsSync(join(root, readme))) continue;
      if (JSON.parse(read(manifest)).private === true) continue;
      for (const { target, line } of markdownLinks(read(readme))) {
        if (isRelative(target)) {
          problems.push(
            `${readme}:${line}: relative link ${target} (the npm page has no repository around it: link https://github.com/rxvmm/rxvmm/blob/main/...)`,
          );
        }
      }
    }
  }
  check('a. published READMEs use absolute links', problems);
}

// ---- b. rule references point at docs/ --------------------------------------------------------

{
  const problems = [];
  const sources = [
    ...walk('packages', (f) => /\.(ts|mts|mjs|js|cc|h|md|gyp)$/.test(f)),
    ...walk('apps', (f) => /\.(ts|mts|mjs|js|md)$/.test(f)),
    ...walk('scripts', (f) => /\.(mjs|sh)$/.test(f) && f !== 'check-docs.mjs'),
    ...['README.md', ...walk('docs', (f) => f.endsWith('.md'))],
  ];
  for (const file of sources) {
    const inDocs = file.startsWith('docs/');
    read(file)
      .split('\n')
      .forEach((line, i) => {
        const where = `${file}:${i + 1}`;
        if (/\/work\/shared\//.test(line)) problems.push(`${where}: cites a file outside the repository`);
        for (const m of line.matchAll(/(\S*?)(SEMANTICS|ARCHITECTURE)(\.md)?(#[\w-]+)?/g)) {
          const [, prefix, doc, , anchor] = m;
          // What stands right before the name, after any opening bracket or quote.
          const tail = prefix.replace(/^.*[([`"']/, '');
          const named = /^((\.\.\/)*|https:\/\/github\.com\/rxvmm\/rxvmm\/blob\/[^/]+\/)docs\/$/.test(tail);
          const sameDir = inDocs && tail === '';
          if (!named && !sameDir) problems.push(`${where}: "${m[0]}" should name docs/${doc}.md`);
          if (doc === 'SEMANTICS' && anchor && !anchors.has(anchor.slice(1)))
            problems.push(`${where}: ${semanticsPath}${anchor} is not a heading`);
        }
        if (/SEMANTICS/.test(line) && !(inDocs && file === semanticsPath)) {
          for (const s of line.matchAll(/§(\d+(?:\.\d+)*)/g)) {
            if (!sections.has(s[1])) problems.push(`${where}: §${s[1]} is not a section of ${semanticsPath}`);
          }
        }
      });
  }
  check('b. SEMANTICS / ARCHITECTURE references resolve to docs/', problems);
}

// ---- c. paths and links in the docs exist -----------------------------------------------------

{
  const problems = [];
  const docs = walk('docs', (f) => f.endsWith('.md'));
  for (const doc of docs) {
    const text = read(doc);
    text.split('\n').forEach((line, i) => {
      for (const m of line.matchAll(/`((?:packages|apps|examples|scripts|docs)\/[^`\s]+)`/g)) {
        if (/[<*{]/.test(m[1])) continue; // a pattern such as packages/<name>, not a path
        if (!existsSync(join(root, m[1]))) problems.push(`${doc}:${i + 1}: ${m[1]} does not exist`);
      }
    });
  }
  for (const doc of [...docs, 'README.md']) {
    for (const { target, line } of markdownLinks(read(doc))) {
      if (!isRelative(target)) continue;
      const path = target.split('#')[0];
      if (path && !existsSync(resolve(root, dirname(doc), path)))
        problems.push(`${doc}:${line}: link ${target} does not resolve`);
    }
  }
  check('c. paths and links in docs/ exist', problems);
}

// ---- d. test names cited in SEMANTICS.md exist -----------------------------------------------

{
  const problems = [];
  // Test names live in test files and in shared suites (kvm-contract's suite.ts): search all sources.
  const isSource = (f) => /\.(ts|mts|mjs)$/.test(f);
  const corpus = [...walk('packages', isSource), ...walk('apps', isSource)].map(read).join('\n');
  semantics.split('\n').forEach((line, i) => {
    const cited = /^\s*- Checked by: (.*)$/.exec(line);
    if (!cited) return;
    for (const m of cited[1].matchAll(/"([^"]+)"/g)) {
      const pieces = m[1].split('…').filter((p) => p.trim() !== '');
      if (pieces.length === 0) continue;
      if (!pieces.every((p) => corpus.includes(p)))
        problems.push(`${semanticsPath}:${i + 1}: no test named "${m[1]}"`);
    }
  });
  check('d. tests cited in docs/SEMANTICS.md exist', problems);
}

// ---- e. README figures come from a committed bench record ------------------------------------

check(
  'e. README figures come from a committed bench record (scripts/bench-tables.mjs)',
  benchTableProblems(root),
);

// ---- f. links resolve where the READMEs are read (scripts/readme-links.mjs) -------------------

check(
  'f. repository links name existing paths and headings; in-page anchors name headings',
  readmeLinkProblems(root),
);

console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
