#!/usr/bin/env node
// Checks every publishable workspace package the way a consumer gets it:
//   1. builds (turbo; `--no-build` skips it),
//   2. packs each package with pnpm, which is what `changeset publish` does: it
//      applies `publishConfig` (drops the `development` condition), rewrites
//      `workspace:` ranges and runs `prepack` (the sys prebuilds),
//   3. lints the tarball with `publint --strict` and `attw --profile esm-only`
//      (the packages are ESM-only: the CJS `require` rows do not apply). attw runs
//      on the pnpm tarball rather than with `--pack`, which would use `npm pack`
//      and so check the source-first exports instead of the published ones,
//   4. checks the packed manifest: every bare import in dist/ is a declared
//      dependency or peer, no dev tool leaks into dependencies, every bin is a
//      shipped file with a shebang, the only scripts are ones a consumer's package
//      manager runs (.pnpmfile.cjs strips the rest at pack time), `files` names
//      CHANGELOG.md, and every source map carries its sources (sourcesContent) or
//      the source ships,
//   5. unpacks the tarballs into a scratch node_modules and runs
//      scripts/smoke-import.mjs there (imports through the published exports),
//   6. SoftKvm from tarballs, no compiler: npm-installs @rxvmm/kvm-soft and its
//      @rxvmm dependencies from their tarballs (third-party ones from the registry)
//      into fresh projects whose PATH holds only node, npm and npx, once with
//      --omit=optional (no @rxvmm/sys: the consumer's tsc must still accept the
//      declarations) and once plainly (sys from its prebuild), and runs
//      scripts/smoke-soft-kvm.mjs in each,
//   7. examples and README blocks from tarballs, no compiler: npm-installs every packed package the
//      same way (plainly; rxjs and vitest from the registry) into one more fresh project, and there
//      compiles (the repository's TypeScript, against the published declarations) and runs every
//      program of examples/ and every README code block (scripts/check-examples.mjs).
// Closing line: `N passed, N failed` (one per check).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { checkExamples } from './check-examples.mjs';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => join(root, 'node_modules/.bin', name);
// node-gyp (the sys prebuild) builds against the local headers, never downloads them.
// biome-ignore lint/suspicious/noUndeclaredEnvVars: read by this script, not by a turbo task
const env = { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' };
const PNPM = ['-y', 'pnpm@10.34.9'];
// Tools that must never be runtime dependencies of a published package.
const DEV_ONLY = new Set([
  'vitest',
  'typescript',
  'fast-check',
  'turbo',
  'prebuildify',
  'node-gyp',
  '@types/node',
  '@biomejs/biome',
  'publint',
  '@arethetypeswrong/cli',
]);
// rxjs is a required peer of every library that uses it: their Observables must be made of
// the application's own rxjs 7, one copy. Any other peer (vitest, for shipped test helpers) is optional.
const REQUIRED_PEERS = new Map([['rxjs', '^7.8']]);
// Dependencies a package must declare as optional (eventfd loads the native addon lazily).
const OPTIONAL_DEPS = new Map([['@rxvmm/eventfd', ['@rxvmm/sys']]]);
// The interface package carries no implementation: nothing at runtime but errno.
const ONLY_DEPS = new Map([['@rxvmm/kvm', ['@rxvmm/errno']]]);
// The scripts a published manifest may keep: those the consumer's package manager runs (sys builds
// its addon at install where no prebuild fits). Independent of .pnpmfile.cjs, which strips the rest.
const CONSUMER_SCRIPTS = new Map([['@rxvmm/sys', ['install']]]);

let passed = 0;
let failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed += 1;
  else failed += 1;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `\n${detail.trimEnd().replace(/^/gm, '     ')}` : ''}`,
  );
};
const run = (cmd, args, cwd) => {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
};

if (!process.argv.includes('--no-build')) {
  // Through pnpm, so turbo finds the package manager also when this runs as plain `node`.
  const r = spawnSync('npx', [...PNPM, 'exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    console.log('build failed');
    process.exit(1);
  }
}

const workspaces = ['packages', 'apps'].flatMap((d) =>
  readdirSync(join(root, d))
    .map((n) => join(root, d, n))
    .filter((p) => existsSync(join(p, 'package.json'))),
);
const scratch = mkdtempSync(join(tmpdir(), 'rxvmm-check-packages-'));
const tarballs = join(scratch, 'tarballs');
const consumer = join(scratch, 'consumer');
mkdirSync(tarballs);
mkdirSync(join(consumer, 'node_modules/@rxvmm'), { recursive: true });
/** Third-party runtime deps to provide to the consumer: name -> directory. */
const thirdParty = new Map();
/** Package name -> its tarball and packed manifest. */
const packedAs = new Map();

const walk = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
const packageName = (spec) =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');
const builtins = new Set(builtinModules);

for (const dir of workspaces) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  const name = manifest.name;

  const packed = run('npx', [...PNPM, 'pack', '--pack-destination', tarballs], dir);
  const tgz = join(tarballs, `${name.replace('@', '').replace('/', '-')}-${manifest.version}.tgz`);
  check(`${name}: pnpm pack`, packed.ok && existsSync(tgz), packed.ok ? '' : packed.out);
  if (!existsSync(tgz)) continue;

  const lint = run(bin('publint'), ['run', tgz, '--strict'], root);
  check(`${name}: publint --strict`, lint.ok, lint.out);
  const types = run(bin('attw'), [tgz, '--profile', 'esm-only', '--format', 'table-flipped'], root);
  check(`${name}: attw --profile esm-only`, types.ok, types.ok ? '' : types.out);

  // Unpack as the consumer's node_modules/@rxvmm/<name>.
  const target = join(consumer, 'node_modules', name);
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tgz, '-C', target, '--strip-components=1']);
  const pub = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'));
  packedAs.set(name, { tgz, pub });

  const published = JSON.stringify(pub);
  check(
    `${name}: manifest has no workspace: ranges and no development condition`,
    !published.includes('workspace:') && !published.includes('"development"'),
  );
  const deps = Object.keys(pub.dependencies ?? {});
  const optional = Object.keys(pub.optionalDependencies ?? {});
  const peers = Object.keys(pub.peerDependencies ?? {});
  const leaked = deps.filter((d) => DEV_ONLY.has(d));
  check(`${name}: no dev tool in dependencies`, leaked.length === 0, leaked.join(', '));
  check(
    `${name}: no test files in the tarball`,
    !walk(target).some((f) => /\.test\.|\/test-support\//.test(f)),
  );
  const allowed = CONSUMER_SCRIPTS.get(name) ?? [];
  const extraScripts = Object.keys(pub.scripts ?? {}).filter((s) => !allowed.includes(s));
  check(
    `${name}: manifest scripts are only ones a consumer runs (${allowed.join(', ') || 'none'})`,
    extraScripts.length === 0,
    extraScripts.map((s) => `${s}: ${pub.scripts[s]}`).join('\n'),
  );
  for (const s of allowed)
    check(`${name}: manifest keeps the ${s} script`, typeof pub.scripts?.[s] === 'string');
  // changesets writes CHANGELOG.md at `changeset version`; npm only ships what `files` names.
  const changelogShips = !existsSync(join(dir, 'CHANGELOG.md')) || existsSync(join(target, 'CHANGELOG.md'));
  check(
    `${name}: "files" names CHANGELOG.md${existsSync(join(dir, 'CHANGELOG.md')) ? ', and it ships' : ''}`,
    (pub.files ?? []).includes('CHANGELOG.md') && changelogShips,
  );
  // A stack trace (--enable-source-maps) or a debugger must find every source a map names.
  const unresolvedSources = walk(target)
    .filter((f) => f.endsWith('.map'))
    .flatMap((file) => {
      const map = JSON.parse(readFileSync(file, 'utf8'));
      return (map.sources ?? [])
        .filter(
          (source, i) =>
            typeof map.sourcesContent?.[i] !== 'string' &&
            !existsSync(join(dirname(file), map.sourceRoot ?? '', source)),
        )
        .map((source) => `${relative(target, file)}: ${source} (no sourcesContent, not shipped)`);
    });
  // Each map's sources exist in the workspace: a dist/ file whose source was deleted is stale output.
  const staleOutputs = walk(target)
    .filter((f) => f.endsWith('.map'))
    .flatMap((file) => {
      const map = JSON.parse(readFileSync(file, 'utf8'));
      const built = join(dir, relative(target, dirname(file)), map.sourceRoot ?? '');
      return (map.sources ?? [])
        .filter((source) => !existsSync(join(built, source)))
        .map((source) => `${relative(target, file)}: ${source} is not in the workspace (stale output?)`);
    });
  check(
    `${name}: every source map names a source of the workspace`,
    staleOutputs.length === 0,
    staleOutputs.slice(0, 10).join('\n'),
  );
  check(
    `${name}: every source map carries its sources`,
    unresolvedSources.length === 0,
    unresolvedSources.slice(0, 10).join('\n'),
  );

  // Every bare specifier the shipped JavaScript or declarations import must be
  // declared (a type-only import still needs the package for the consumer's tsc).
  const imported = new Map();
  const subpathImports = new Map();
  for (const file of walk(join(target, 'dist')).filter((f) => /\.(js|d\.ts)$/.test(f))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)['"]([^'"\s`]+)['"]/gm,
    )) {
      const spec = m[1];
      // `#name`: the package's own "imports" map (platform files, e.g. eventfd's browser build).
      if (spec.startsWith('#')) {
        subpathImports.set(spec, relative(target, file));
        continue;
      }
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(packageName(spec))) continue;
      imported.set(packageName(spec), relative(target, file));
    }
  }
  // Each `#name` import resolves, under every condition the packed map names, to a shipped file.
  const unmapped = [...subpathImports].flatMap(([spec, file]) => {
    const targets = [];
    const collect = (entry) => {
      if (typeof entry === 'string') targets.push(entry);
      else if (entry && typeof entry === 'object') for (const v of Object.values(entry)) collect(v);
    };
    collect(pub.imports?.[spec]);
    if (targets.length === 0) return [`${spec} (imported by ${file}) is not in "imports"`];
    return targets
      .filter((t) => !existsSync(join(target, t)))
      .map((t) => `${spec} -> ${t} (imported by ${file}) is not in the tarball`);
  });
  check(`${name}: every #import of dist/ maps to shipped files`, unmapped.length === 0, unmapped.join('\n'));
  const undeclared = [...imported].filter(
    ([d]) => d !== name && !deps.includes(d) && !optional.includes(d) && !peers.includes(d),
  );
  check(
    `${name}: every import of dist/ is a declared dependency or peer`,
    undeclared.length === 0,
    undeclared.map(([d, f]) => `${d} (imported by ${f})`).join('\n'),
  );
  for (const [p, range] of REQUIRED_PEERS) {
    // A CLI (bin) installs what its libraries need as its own dependency.
    if (pub.bin !== undefined || !(imported.has(p) || deps.includes(p) || peers.includes(p))) continue;
    const ok =
      pub.peerDependencies?.[p] === range &&
      pub.peerDependenciesMeta?.[p]?.optional !== true &&
      !deps.includes(p) &&
      !optional.includes(p);
    check(
      `${name}: ${p} is a required peer (${range}), not a dependency`,
      ok,
      ok ? '' : `peer ${pub.peerDependencies?.[p]}, dependency ${pub.dependencies?.[p]}`,
    );
  }
  for (const p of peers.filter((d) => imported.has(d) && !REQUIRED_PEERS.has(d)))
    check(`${name}: peer ${p} is optional`, pub.peerDependenciesMeta?.[p]?.optional === true);
  for (const d of OPTIONAL_DEPS.get(name) ?? [])
    check(`${name}: ${d} is an optional dependency`, optional.includes(d) && !deps.includes(d));
  if (ONLY_DEPS.has(name)) {
    const expected = ONLY_DEPS.get(name);
    const extra = [...deps, ...optional, ...peers].filter((d) => !expected.includes(d));
    check(`${name}: no runtime dependency but ${expected.join(', ')}`, extra.length === 0, extra.join(', '));
  }
  const unused = deps.filter((d) => !imported.has(d) && d !== 'node-addon-api');
  if (unused.length > 0)
    console.log(`note ${name}: declared but not imported by dist/: ${unused.join(', ')}`);

  for (const [cmd, file] of Object.entries(pub.bin ?? {})) {
    const path = join(target, file);
    const ok = existsSync(path) && readFileSync(path, 'utf8').startsWith('#!/usr/bin/env node\n');
    check(`${name}: bin ${cmd} -> ${file} is shipped with a node shebang`, ok);
  }

  for (const d of [...deps, ...optional, ...peers].filter((d) => !d.startsWith('@rxvmm/'))) {
    const from = [join(dir, 'node_modules', d), join(root, 'node_modules', d)].find((p) => existsSync(p));
    if (from) thirdParty.set(d, realpathSync(from));
  }
}

// A required peer is passed through: a library that depends on one whose API needs the
// application's rxjs needs it too, and says so (the user installs it next to the library).
for (const [name, { pub }] of packedAs) {
  if (pub.bin !== undefined) continue; // a CLI provides its libraries' peers as dependencies
  for (const dep of Object.keys(pub.dependencies ?? {})) {
    const inner = packedAs.get(dep)?.pub;
    for (const [peer, range] of REQUIRED_PEERS) {
      if (inner?.peerDependencies?.[peer] === undefined || inner.peerDependenciesMeta?.[peer]?.optional)
        continue;
      check(
        `${name}: passes ${dep}'s required peer ${peer} (${range}) through`,
        pub.peerDependencies?.[peer] === range && pub.peerDependenciesMeta?.[peer]?.optional !== true,
        `peer ${pub.peerDependencies?.[peer]}`,
      );
    }
  }
}

// Third-party packages come from the workspace's store (no network); only the
// @rxvmm packages are the tarballs under test.
for (const [d, from] of thirdParty) {
  const link = join(consumer, 'node_modules', d);
  mkdirSync(dirname(link), { recursive: true });
  if (!existsSync(link)) symlinkSync(from, link, 'dir');
}
copyFileSync(join(root, 'scripts/smoke-import.mjs'), join(consumer, 'smoke-import.mjs'));
const smoke = run(process.execPath, [join(consumer, 'smoke-import.mjs')], consumer);
check('smoke import of the packed packages (scripts/smoke-import.mjs)', smoke.ok, smoke.out);

// The CLIs start from the unpacked tarballs (usage text, exit 0).
for (const [name, cmd] of [
  ['@rxvmm/demo-vmm', 'dist/cli.js'],
  ['@rxvmm/vhost-backend', 'dist/cli.js'],
]) {
  const cli = join(consumer, 'node_modules', name, cmd);
  if (!existsSync(cli)) continue;
  const r = run(process.execPath, [cli, '--help'], consumer);
  check(`${name}: ${cmd} --help`, r.ok && /usage/i.test(r.out), r.ok ? '' : r.out);
}

/**
 * A PATH that holds only node, npm and npx (no cc, c++, make, python3; npm runs install scripts
 * with /bin/sh by absolute path), and the caller's environment minus anything that names a tool or
 * an npm setting of the workspace (pnpm exports npm_config_*); the user's npm cache and registry
 * config stay. Made once.
 */
let compilerFree;
function compilerFreeEnvironment() {
  if (compilerFree) return compilerFree;
  const onPath = (cmd) =>
    (process.env.PATH ?? '')
      .split(delimiter)
      .map((dir) => join(dir, cmd))
      .find((p) => existsSync(p));
  const binDir = join(scratch, 'node-npm-npx');
  mkdirSync(binDir);
  for (const [cmd, from] of [
    ['node', process.execPath],
    ['npm', onPath('npm')],
    ['npx', onPath('npx')],
  ]) {
    if (from) symlinkSync(realpathSync(from), join(binDir, cmd));
  }
  const bare = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(npm_|pnpm_|CC$|CXX$|PYTHON$|MAKE$)/i.test(k)),
  );
  bare.PATH = binDir;
  compilerFree = { binDir, bare };
  return compilerFree;
}

/** npm install in `project` with no compiler on PATH; one check. */
function npmInstallWithoutCompiler(label, project, npmArgs = []) {
  const { binDir, bare } = compilerFreeEnvironment();
  const install = spawnSync(
    join(binDir, 'npm'),
    ['install', '--no-audit', '--no-fund', '--script-shell=/bin/sh', ...npmArgs],
    { cwd: project, env: bare, encoding: 'utf8', timeout: 300_000 },
  );
  const out = `${install.stdout ?? ''}${install.stderr ?? ''}${install.error?.message ?? ''}`;
  check(`${label}: npm install`, install.status === 0, install.status === 0 ? '' : out);
  return install.status === 0;
}

/**
 * SoftKvm as `npm i @rxvmm/kvm-soft` gives it, where nothing can be compiled: fresh npm
 * projects depend on the kvm-soft tarball, `overrides` point its @rxvmm dependencies at
 * theirs (so @rxvmm/sys stays what it is for a user, an optional dependency of eventfd),
 * third-party packages (rxjs) come from the registry, and PATH holds only node, npm and npx.
 */
function softKvmWithoutCompiler() {
  const closure = new Set();
  const visit = (name) => {
    if (closure.has(name) || !packedAs.has(name)) return;
    closure.add(name);
    const { pub } = packedAs.get(name);
    for (const d of Object.keys({ ...pub.dependencies, ...pub.optionalDependencies })) visit(d);
  };
  visit('@rxvmm/kvm-soft');
  if (!closure.has('@rxvmm/kvm-soft')) {
    check('SoftKvm from tarballs, no compiler: @rxvmm/kvm-soft was packed', false);
    return;
  }

  const { binDir, bare } = compilerFreeEnvironment();
  const tarball = (name) => `file:${packedAs.get(name).tgz}`;
  for (const [mode, npmArgs, smokeArg] of [
    ['--omit=optional', ['--omit=optional'], '--without-sys'],
    ['with optional dependencies', [], '--with-sys'],
  ]) {
    const label = `SoftKvm from tarballs, no compiler (${mode})`;
    const project = mkdtempSync(join(scratch, 'soft-kvm-'));
    const manifest = {
      name: 'soft-kvm-consumer',
      private: true,
      type: 'module',
      dependencies: { '@rxvmm/kvm-soft': tarball('@rxvmm/kvm-soft') },
      overrides: Object.fromEntries(
        [...closure].filter((n) => n !== '@rxvmm/kvm-soft').map((n) => [n, tarball(n)]),
      ),
    };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (!npmInstallWithoutCompiler(label, project, npmArgs)) continue;

    copyFileSync(join(root, 'scripts/smoke-soft-kvm.mjs'), join(project, 'smoke-soft-kvm.mjs'));
    const smoke = spawnSync(join(binDir, 'node'), ['smoke-soft-kvm.mjs', smokeArg], {
      cwd: project,
      env: bare,
      encoding: 'utf8',
      timeout: 60_000,
    });
    check(
      `${label}: scripts/smoke-soft-kvm.mjs ${smokeArg}`,
      smoke.status === 0,
      smoke.status === 0 ? '' : `${smoke.stdout ?? ''}${smoke.stderr ?? ''}${smoke.error?.message ?? ''}`,
    );

    if (smokeArg === '--without-sys') {
      // The published declarations must not need the optional addon: a strict consumer compiles.
      writeFileSync(
        join(project, 'consumer.ts'),
        [
          "import { EventFd, SoftEventFd, nativeAvailable } from '@rxvmm/eventfd';",
          "import { IOEVENTFD_FLAG_DATAMATCH } from '@rxvmm/kvm';",
          "import { SoftKvm, type SoftVcpu } from '@rxvmm/kvm-soft';",
          'const kvm: SoftKvm = new SoftKvm();',
          'const vcpu: SoftVcpu = kvm.createVm().createSoftVcpu(0);',
          'const fds: (EventFd | SoftEventFd)[] = [new SoftEventFd()];',
          'export const used = [vcpu, fds, nativeAvailable, IOEVENTFD_FLAG_DATAMATCH];',
          '',
        ].join('\n'),
      );
      const tsc = spawnSync(
        process.execPath,
        [
          join(root, 'node_modules/typescript/bin/tsc'),
          '--noEmit',
          '--strict',
          '--exactOptionalPropertyTypes',
          '--module',
          'nodenext',
          '--target',
          'es2022',
          '--lib',
          'es2023,esnext.disposable',
          '--types',
          'node',
          '--typeRoots',
          join(root, 'node_modules/@types'),
          'consumer.ts',
        ],
        { cwd: project, encoding: 'utf8', timeout: 60_000 },
      );
      check(
        `${label}: a strict tsc consumer accepts the declarations without @rxvmm/sys`,
        tsc.status === 0,
        `${tsc.stdout ?? ''}${tsc.stderr ?? ''}`,
      );
    }
  }
}

softKvmWithoutCompiler();

/**
 * What a user who installs the packages from npm gets: every packed package (CLIs included) and
 * their dependencies, installed by npm with no compiler on PATH (@rxvmm/sys from its prebuild),
 * rxjs (the packages' peer) and vitest (kvm-contract's, for the README blocks that are vitest
 * files) from the registry. There every example program and README code block is compiled with a
 * strict tsc against the published declarations and run (scripts/check-examples.mjs).
 */
function examplesFromTarballs() {
  const label = 'examples and README blocks from tarballs, no compiler';
  if (packedAs.size === 0) {
    check(`${label}: packages were packed`, false);
    return;
  }
  const project = mkdtempSync(join(scratch, 'examples-'));
  const tarball = (name) => `file:${packedAs.get(name).tgz}`;
  const vitestVersion = JSON.parse(
    readFileSync(join(root, 'node_modules/vitest/package.json'), 'utf8'),
  ).version;
  const manifest = {
    name: 'rxvmm-examples-consumer',
    private: true,
    type: 'module',
    dependencies: {
      ...Object.fromEntries([...packedAs.keys()].map((n) => [n, tarball(n)])),
      rxjs: REQUIRED_PEERS.get('rxjs'),
      vitest: vitestVersion,
    },
    overrides: Object.fromEntries([...packedAs.keys()].map((n) => [n, tarball(n)])),
  };
  writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (!npmInstallWithoutCompiler(label, project)) return;
  const { bare } = compilerFreeEnvironment();
  checkExamples({
    project,
    env: bare,
    check: (name, ok, detail) => check(`${label}: ${name}`, ok, detail),
    skip: (name, why) => console.log(`skip ${label}: ${name}: ${why}`),
  });
}

examplesFromTarballs();

if (!process.argv.includes('--keep')) rmSync(scratch, { recursive: true, force: true });
else console.log(`kept ${scratch}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
