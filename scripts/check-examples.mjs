#!/usr/bin/env node
// Compiles and runs, in a project whose node_modules holds the @rxvmm packages, every program of
// examples/ and every README code block (the rules and markers: scripts/readme-blocks.mjs):
//   - examples/*.ts whose header says `Run: node dist/<name>.js` are programs; the others are
//     modules they import (kvm-vcpu-runner.ts's exit handler);
//   - README blocks run as written, `.test.ts` ones with `vitest run`; fragments with context are
//     only type-checked; blocks that need /dev/kvm are skipped, with the reason, where it is absent.
// Everything is written under <project>/rxvmm-checks/src, compiled with one strict `tsc` (the
// repository's TypeScript; the types come from the project's node_modules: the published
// declarations), and each program runs with `node` from rxvmm-checks/dist, in the environment given.
//
//   node scripts/check-examples.mjs [--project DIR] [--keep] [--only TEXT]   (TEXT: part of the labels to run)
//
// Without --project it uses examples/ (whose dependencies are the workspace packages; build them
// first: `pnpm build`). scripts/check-packages.mjs calls checkExamples() on a project where the
// packed tarballs were npm-installed with no compiler on PATH. One line per check; closing line
// `N passed, N failed` (skips are listed, not counted).
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readmeBlocks } from './readme-blocks.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');

/** Why /dev/kvm cannot be used here, or undefined when it can. */
function kvmMissing() {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return undefined;
  } catch (error) {
    return `/dev/kvm: ${error.code ?? error.message}`;
  }
}

/** The example programs (name without .ts) and the modules they import. */
export function examplePrograms(root = repoRoot) {
  const dir = join(root, 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.startsWith('vitest.config'));
  const programs = files.filter((f) =>
    /^ \* Run: node dist\/[\w-]+\.js$/m.test(readFileSync(join(dir, f), 'utf8')),
  );
  return { files, programs: programs.map((f) => f.slice(0, -3)) };
}

/**
 * Writes, compiles and runs the examples and README blocks in `project`. `check(name, ok, detail)`
 * records one result, `skip(name, why)` one skip; `env` is the environment the programs run in.
 */
export function checkExamples({
  root = repoRoot,
  project,
  env = process.env,
  check,
  skip,
  keep = false,
  only,
}) {
  const work = join(project, 'rxvmm-checks');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'src'), { recursive: true });

  // ---- write the sources ----
  /** Each unit: { label, src (relative to work/src), kind, needs, mapLine(tscLine) -> where } */
  const units = [];
  const { files, programs } = examplePrograms(root);
  mkdirSync(join(work, 'src/examples'));
  for (const f of files) cpSync(join(root, 'examples', f), join(work, 'src/examples', f));
  for (const f of files) {
    const name = f.slice(0, -3);
    units.push({
      label: `example ${f}`,
      src: `examples/${f}`,
      kind: programs.includes(name) ? 'run' : 'module',
      needs: [],
      where: (line) => `examples/${f}:${line}`,
    });
  }

  const { blocks, problems } = readmeBlocks(root);
  check('README code block markers are well formed', problems.length === 0, problems.join('\n'));
  // A README's blocks share a directory, so `./exit-handler.js` finds the block named
  // exit-handler.ts. A block that reuses an earlier block's name starts a new directory (the README
  // reads top to bottom: from there on, the new one is meant); the earlier named blocks it does not
  // replace are copied there, so later blocks still find them.
  const copies = [];
  const written = new Map(); // readme -> { group, names (of the current group), latest (name -> content) }
  for (const block of blocks) {
    const label = `${block.readme}:${block.line} (${block.name})`;
    if (block.kind === 'fragment') {
      skip(label, `fragment, not compiled: ${block.reason}`);
      continue;
    }
    if (!written.has(block.readme))
      written.set(block.readme, { group: 0, names: new Set(), latest: new Map() });
    const state = written.get(block.readme);
    if (state.names.has(block.name)) {
      state.group++;
      state.names = new Set();
    }
    state.names.add(block.name);
    const base = `readme/${dirname(block.readme).replace(/[/.]+/g, '-') || 'root'}`;
    const dir = state.group === 0 ? base : `${base}-${state.group + 1}`;
    mkdirSync(join(work, 'src', dir), { recursive: true });
    const prefix = block.context ? `${block.context}\n` : '';
    const offset = prefix ? prefix.split('\n').length - 1 : 0;
    const content = `${prefix}${block.code}\n`;
    if (state.group > 0) {
      for (const [name, earlier] of state.latest)
        if (!state.names.has(name) && !existsSync(join(work, 'src', dir, name))) {
          writeFileSync(join(work, 'src', dir, name), earlier);
          copies.push(join(work, 'src', dir, name));
        }
    }
    writeFileSync(join(work, 'src', dir, block.name), content);
    state.latest.set(block.name, content);
    units.push({
      label,
      src: `${dir}/${block.name}`,
      kind: block.kind,
      needs: block.needs,
      output: block.output,
      where: (line) =>
        line > offset
          ? `${block.readme}:${block.line + line - offset}`
          : `${block.readme}:${block.line} (hidden context line ${line})`,
    });
  }
  // vitest blocks run with this configuration, not the project's.
  writeFileSync(join(work, 'vitest.config.mjs'), "export default { test: { include: ['**/*.test.js'] } };\n");

  // ---- compile everything at once, strict, as a user's project would (the TypeScript API rather
  // than the tsc CLI: one block's syntax error must not hide another block's type errors) ----
  writeFileSync(join(work, 'package.json'), '{ "private": true, "type": "module" }\n');
  const ts = createRequire(join(repoRoot, 'package.json'))('typescript');
  const options = {
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    types: ['node'],
    typeRoots: [join(repoRoot, 'node_modules/@types')],
    skipLibCheck: true,
    allowJs: true,
    rootDir: join(work, 'src'),
    outDir: join(work, 'dist'),
  };
  const program = ts.createProgram([...units.map((u) => join(work, 'src', u.src)), ...copies], options);
  const errors = new Map(units.map((u) => [u.src, []]));
  for (const unit of units) {
    const file = program.getSourceFile(join(work, 'src', unit.src));
    const diagnostics = file
      ? [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]
      : [{ messageText: 'not part of the program' }];
    for (const d of diagnostics) {
      const line =
        d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
      errors
        .get(unit.src)
        .push(`${unit.where(line)}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    }
  }
  const global = program
    .getGlobalDiagnostics()
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  const emitted = program.emit();
  check(
    'TypeScript compiles the examples and README blocks',
    global.length === 0 && !emitted.emitSkipped,
    global.join('\n'),
  );

  // ---- run ----
  const kvm = kvmMissing();
  const require = createRequire(join(project, 'package.json'));
  for (const unit of units) {
    if (only && !unit.label.includes(only)) continue;
    const problems = errors.get(unit.src);
    if (unit.kind === 'module' || unit.kind === 'typecheck') {
      check(`${unit.label}: compiles`, problems.length === 0, problems.join('\n'));
      continue;
    }
    if (problems.length > 0) {
      check(`${unit.label}: compiles and runs`, false, problems.join('\n'));
      continue;
    }
    if (unit.needs.includes('/dev/kvm') && kvm) {
      skip(`${unit.label}`, `needs /dev/kvm (${kvm})`);
      continue;
    }
    const js = join(
      work,
      'dist',
      unit.src.replace(/\.(ts|mts)$/, (ext) => (ext === '.mts' ? '.mjs' : '.js')),
    );
    let argv = [js];
    if (unit.kind === 'test') {
      const vitest = join(dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
      argv = [
        vitest,
        'run',
        '--config',
        join(work, 'vitest.config.mjs'),
        '--root',
        dirname(js),
        relative(dirname(js), js),
      ];
    }
    const started = Date.now();
    const r = spawnSync(process.execPath, argv, {
      cwd: project,
      env,
      encoding: 'utf8',
      timeout: unit.kind === 'test' ? 180_000 : 60_000,
      maxBuffer: 16 << 20,
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`;
    const ms = Date.now() - started;
    check(
      `${unit.label}: ${unit.kind === 'test' ? 'vitest run' : 'runs'} (${ms} ms)`,
      r.status === 0,
      r.status === 0 ? '' : `exit ${r.status ?? r.signal}\n${output.split('\n').slice(-40).join('\n')}`,
    );
    if (r.status === 0 && unit.output !== undefined) {
      const tidy = (text) => text.replace(/[ \t]+$/gm, '').trim();
      check(
        `${unit.label}: prints the output its README shows`,
        tidy(r.stdout ?? '') === tidy(unit.output),
        `README:\n${tidy(unit.output)}\nprinted:\n${tidy(r.stdout ?? '')}`,
      );
    }
  }
  if (!keep) rmSync(work, { recursive: true, force: true });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--project');
  const project = resolve(at > 0 ? process.argv[at + 1] : join(repoRoot, 'examples'));
  let passed = 0;
  let failed = 0;
  checkExamples({
    project,
    keep: process.argv.includes('--keep'),
    only: process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined,
    check: (name, ok, detail = '') => {
      if (ok) passed++;
      else failed++;
      console.log(
        `${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `\n${detail.trimEnd().replace(/^/gm, '     ')}` : ''}`,
      );
    },
    skip: (name, why) => console.log(`skip ${name}: ${why}`),
  });
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
