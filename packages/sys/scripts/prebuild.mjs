#!/usr/bin/env node
// Builds the addons the tarball ships (prebuildify --napi --strip --tag-libc):
// prebuilds/linux-x64 and prebuilds/linux-arm64, the other architecture than
// this machine's with Debian's cross compiler (g++-aarch64-linux-gnu or
// g++-x86-64-linux-gnu). Each must need glibc <= GLIBC_FLOOR. Then rebuilds
// build/Release for this machine, which prebuildify's `node-gyp rebuild` replaced.
//
// A missing cross compiler fails the build (and so `pnpm pack`): a tarball
// without arm64 would install fine here and then need a compiler on every arm64
// machine. For tests: `--arch <x64|arm64>` (repeatable) builds only those, and
// `--no-rebuild` leaves build/ without an addon, so node-gyp-build loads the prebuild.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareVersions, GLIBC_FLOOR, newestGlibc, objdumpMissing } from './glibc-requirement.mjs';

const TRIPLES = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
// Debian names the x86-64 cross compiler package with dashes.
const CROSS_PACKAGES = { x64: 'g++-x86-64-linux-gnu', arm64: 'g++-aarch64-linux-gnu' };

const packageRoot = process.cwd();
const scripts = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(packageRoot, 'package.json'));

const fail = (message) => {
  console.error(`prebuild: ${message}`);
  process.exit(1);
};

const args = process.argv.slice(2);
const archs = [];
let rebuild = true;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--arch' && args[i + 1] in TRIPLES) archs.push(args[++i]);
  else if (args[i] === '--no-rebuild') rebuild = false;
  else fail(`usage: prebuild.mjs [--arch ${Object.keys(TRIPLES).join('|')}]... [--no-rebuild]`);
}
if (archs.length === 0) archs.push(...Object.keys(TRIPLES));
if (!(process.arch in TRIPLES)) fail(`cannot build on ${process.arch}: no cross compilers known for it`);

const onPath = (tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;

// Runs a Node CLI through with-node-headers.mjs, so node-gyp uses the running Node's headers.
const runNode = (bin, argv, env = process.env) => {
  const result = spawnSync(
    process.execPath,
    [join(scripts, 'with-node-headers.mjs'), process.execPath, bin, ...argv],
    {
      cwd: packageRoot,
      stdio: 'inherit',
      env,
    },
  );
  if (result.status !== 0) fail(`${bin} ${argv.join(' ')} exited with ${result.status ?? result.signal}`);
};

const prebuildify = require.resolve('prebuildify/bin.js');
const nodeGyp = join(dirname(require.resolve('node-gyp/package.json')), 'bin', 'node-gyp.js');

for (const arch of archs) {
  const cross = arch !== process.arch;
  const triple = TRIPLES[arch];
  const env = { ...process.env };
  let strip = 'strip';
  if (cross) {
    for (const tool of [`${triple}-gcc`, `${triple}-g++`, `${triple}-strip`])
      if (!onPath(tool))
        fail(
          `${tool} not found: the linux-${arch} prebuild needs Debian's cross toolchain (apt-get install ${CROSS_PACKAGES[arch]})`,
        );
    env.CC = `${triple}-gcc`;
    env.CXX = `${triple}-g++`;
    strip = `${triple}-strip`;
  }
  console.log(`prebuild: linux-${arch}${cross ? ` (cross, ${triple})` : ''}`);
  runNode(prebuildify, ['--napi', '--strip', '--tag-libc', '--arch', arch, '--strip-bin', strip], env);

  const dir = join(packageRoot, 'prebuilds', `linux-${arch}`);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.node'))) {
    const file = join(dir, name);
    const missing = objdumpMissing(file);
    if (missing) fail(`cannot check ${file}: ${missing}`);
    const { version, symbols } = newestGlibc(file);
    if (compareVersions(version, GLIBC_FLOOR) > 0)
      fail(`${file} needs GLIBC_${version} (${symbols.join(', ')}); the floor is ${GLIBC_FLOOR}`);
    console.log(`prebuild: ${file}: newest glibc symbol version ${version} (floor ${GLIBC_FLOOR})`);
  }
}

// The last prebuildify run left build/ configured for its architecture, its addon moved out.
if (rebuild) {
  runNode(nodeGyp, ['rebuild']);
  if (!existsSync(join(packageRoot, 'build', 'Release', 'rxvmm_sys.node')))
    fail('node-gyp rebuild left no addon');
}
