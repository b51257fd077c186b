// Links of the READMEs and docs that must resolve where they are read. A package README is read on
// the npm registry, without the repository around it, so it links absolutely
// (https://github.com/rxvmm/rxvmm/blob/main/<path>, /tree/main/<dir>): each such link must name a
// path that exists in this repository (a file for blob/, a file or directory for tree/), and a
// #fragment on a Markdown file must be one of its headings as GitHub makes its anchors. A link to
// #fragment within a README must be one of its own headings, and a relative link (where one is
// allowed: not in a published README) names an existing file. scripts/check-docs.mjs runs this.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

const REPO = 'https://github.com/rxvmm/rxvmm/';

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
export function headingAnchors(markdown) {
  const anchors = new Set();
  const seen = new Map();
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    if (inFence) continue;
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1].replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Markdown link targets outside code, with their line numbers. */
function links(markdown) {
  const out = [];
  let inFence = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) {
      inFence = !inFence;
      return;
    }
    if (inFence) return;
    const plain = line.replace(/`[^`]*`/g, '');
    for (const m of plain.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

/** The Markdown files checked: every README of the repository and docs/*.md. */
export function markdownFiles(root) {
  const files = ['README.md', 'examples/README.md'];
  for (const group of ['packages', 'apps'])
    for (const name of readdirSync(join(root, group)).sort()) files.push(`${group}/${name}/README.md`);
  if (existsSync(join(root, 'docs')))
    for (const name of readdirSync(join(root, 'docs')).sort())
      if (name.endsWith('.md')) files.push(`docs/${name}`);
  return files.filter((f) => existsSync(join(root, f)));
}

/** Problems with the repository links and in-page anchors of every Markdown file. */
export function readmeLinkProblems(root) {
  const problems = [];
  const anchorsOf = new Map();
  const anchors = (path) => {
    if (!anchorsOf.has(path)) anchorsOf.set(path, headingAnchors(readFileSync(join(root, path), 'utf8')));
    return anchorsOf.get(path);
  };
  for (const file of markdownFiles(root)) {
    for (const { target, line } of links(readFileSync(join(root, file), 'utf8'))) {
      const where = `${file}:${line}`;
      if (target.startsWith('#')) {
        if (!anchors(file).has(decodeURIComponent(target.slice(1))))
          problems.push(`${where}: ${target} is not a heading of ${file}`);
        continue;
      }
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) {
        // A relative link (allowed outside the published READMEs): the file must exist.
        const path = join(root, dirname(file), decodeURIComponent(target.split('#')[0]));
        if (!existsSync(path)) problems.push(`${where}: ${target} does not exist`);
        continue;
      }
      if (!target.startsWith(REPO)) continue;
      const m = /^(blob|tree)\/main\/([^#?]*)(?:#(.*))?$/.exec(target.slice(REPO.length));
      if (!m) {
        problems.push(`${where}: ${target}: link to the main branch, blob/main/<file> or tree/main/<dir>`);
        continue;
      }
      const [, kind, path, fragment] = m;
      const abs = join(root, decodeURIComponent(path).replace(/\/$/, ''));
      if (!existsSync(abs)) {
        problems.push(`${where}: ${target}: ${path} does not exist in the repository`);
        continue;
      }
      if (kind === 'blob' && statSync(abs).isDirectory())
        problems.push(`${where}: ${target}: ${path} is a directory (use tree/main/)`);
      if (
        fragment &&
        /\.md$/.test(path) &&
        statSync(abs).isFile() &&
        !anchors(path).has(decodeURIComponent(fragment))
      )
        problems.push(`${where}: ${target}: #${fragment} is not a heading of ${path}`);
      if (fragment && kind === 'tree' && statSync(abs).isDirectory()) {
        const readme = join(path.replace(/\/$/, ''), 'README.md');
        if (existsSync(join(root, readme)) && !anchors(readme).has(decodeURIComponent(fragment)))
          problems.push(`${where}: ${target}: #${fragment} is not a heading of ${readme}`);
      }
    }
  }
  return problems;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const root = join(new URL('..', import.meta.url).pathname);
  const problems = readmeLinkProblems(root);
  for (const p of problems) console.log(p);
  console.log(`${problems.length === 0 ? 1 : 0} passed, ${problems.length === 0 ? 0 : 1} failed`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
