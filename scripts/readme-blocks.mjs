// The code blocks of the repository's READMEs, as scripts/check-examples.mjs compiles and runs them.
//
// A block is a fenced block whose language is ts, typescript, js, javascript or mjs, in
// README.md, examples/README.md, packages/*/README.md or apps/*/README.md. Every such block runs
// as written unless an HTML comment right before its fence (blank lines may stand between; the
// registry and GitHub show neither) says otherwise:
//
//   <!-- needs /dev/kvm -->          runs only where /dev/kvm opens (otherwise it is skipped, with
//                                    the reason printed)
//   <!-- output -->                  (before a plain block) what the code block above it prints:
//                                    its standard output must be exactly that
//   <!-- fragment: why -->           part of a program (an API outline, a sketch): not run, not
//                                    compiled; `why` is required
//   <!-- fragment: why               part of a program that is type-checked: the lines after the
//   import { ... } from '...';       first are TypeScript put before the block (imports, `declare
//   declare const vm: LinuxVm;       const`s for what the surrounding program would have), and
//   -->                              the whole must compile
//
// A block whose first line is `// name.ts` (or .mts, .js, .mjs) is written under that name, next
// to the other blocks of its README (so `./exit-handler.js` finds the block named
// `exit-handler.ts`); a name ending in `.test.ts` is a vitest file and runs with `vitest run`.
// Blocks in other languages (sh, json, text) are not code and are not run.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CODE_LANGS = new Map([
  ['ts', '.ts'],
  ['typescript', '.ts'],
  ['js', '.mjs'],
  ['javascript', '.mjs'],
  ['mjs', '.mjs'],
]);

/** The READMEs whose blocks are checked, repository-relative, with whether their package is published. */
export function readmePaths(root) {
  const paths = [];
  for (const file of ['README.md', 'examples/README.md'])
    if (existsSync(join(root, file))) paths.push({ path: file, published: false });
  for (const group of ['packages', 'apps']) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const readme = join(group, name, 'README.md');
      const manifest = join(root, group, name, 'package.json');
      if (!existsSync(join(root, readme)) || !existsSync(manifest)) continue;
      const pkg = JSON.parse(readFileSync(manifest, 'utf8'));
      paths.push({ path: readme, published: pkg.private !== true, name: pkg.name });
    }
  }
  return paths;
}

/**
 * The code blocks of one README's text: `{ line, lang, code, name, kind, reason, context, needs }`.
 * `line` is the 1-based line of the opening fence; `kind` is 'run', 'test' (vitest), 'typecheck'
 * (a fragment with context) or 'fragment'; `problems` lists malformed markers.
 */
export function parseBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  const problems = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(```+|~~~+)\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    let end = i + 1;
    while (end < lines.length && !lines[end].trimStart().startsWith(fence)) end++;
    const lang = open[3].toLowerCase();
    const code = lines.slice(i + 1, end).join('\n');
    const line = i + 1;
    const startLine = i;
    i = end;
    if (!CODE_LANGS.has(lang)) {
      // <!-- output --> before a plain block: what the code block above it prints.
      if (/^output\b/.test(markerBefore(lines, startLine)?.trim() ?? '')) {
        const last = blocks.at(-1);
        if (last) last.output = code;
        else problems.push(`line ${line}: an output block with no code block before it`);
      }
      continue;
    }

    const marker = markerBefore(lines, startLine);
    const block = { line, lang, code, kind: 'run', reason: undefined, context: undefined, needs: [] };
    const named = /^\/\/\s*([\w.-]+\.(?:ts|mts|js|mjs))\b/.exec(code);
    block.name = named ? named[1] : `block-${line}${CODE_LANGS.get(lang)}`;
    if (/\.test\.(ts|mts|js|mjs)$/.test(block.name)) block.kind = 'test';
    if (marker !== undefined) {
      const [first, ...rest] = marker.split('\n');
      const head = first.trim();
      if (head.startsWith('fragment')) {
        const reason = /^fragment:\s*(.+)$/.exec(head)?.[1]?.trim();
        if (!reason)
          problems.push(`line ${line}: a fragment marker needs a reason ("<!-- fragment: why -->")`);
        block.reason = reason;
        const context = rest.join('\n').trim();
        if (context) {
          block.kind = 'typecheck';
          block.context = context;
        } else block.kind = 'fragment';
      } else if (/^needs\s+\/dev\/kvm$/.test(head)) block.needs.push('/dev/kvm');
    }
    blocks.push(block);
  }
  return { blocks, problems };
}

/** The content of an HTML comment that ends on the last non-blank line before line `index`, if any. */
function markerBefore(lines, index) {
  let j = index - 1;
  while (j >= 0 && lines[j].trim() === '') j--;
  if (j < 0 || !lines[j].trimEnd().endsWith('-->')) return undefined;
  let k = j;
  while (k >= 0 && !lines[k].includes('<!--')) k--;
  if (k < 0) return undefined;
  const comment = lines.slice(k, j + 1).join('\n');
  return comment.slice(comment.indexOf('<!--') + 4, comment.lastIndexOf('-->')).replace(/^\s+/, '');
}

/** Every checked block of the repository, each with its `readme` and `published`. */
export function readmeBlocks(root) {
  const blocks = [];
  const problems = [];
  for (const { path, published, name } of readmePaths(root)) {
    const parsed = parseBlocks(readFileSync(join(root, path), 'utf8'));
    for (const block of parsed.blocks) blocks.push({ ...block, readme: path, published, packageName: name });
    for (const p of parsed.problems) problems.push(`${path}: ${p}`);
  }
  return { blocks, problems };
}
