#!/usr/bin/env node
// The install script: nothing to do when a prebuilt (or earlier built) addon
// loads here; otherwise build it with node-gyp, but only when the toolchain it
// needs is present. Without one, say so in one line and exit 1, instead of
// node-gyp's screens about a missing Python. Exit 1 is deliberate: installing
// @rxvmm/sys directly then fails with the reason, and where it is an optional
// dependency (of @rxvmm/eventfd) npm and pnpm drop it and the install goes on.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(join(packageRoot, 'package.json'));
const buildFromSource = process.env.npm_config_build_from_source === 'true';

let loadError;
if (!buildFromSource) {
  try {
    require('node-gyp-build')(packageRoot);
    process.exit(0);
  } catch (error) {
    loadError = error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}

const runs = (command, args) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;
// What node-gyp needs on Linux: Python 3 (it looks at $PYTHON, then python3, then python), make and a C++ compiler.
const python = [process.env.npm_config_python, process.env.PYTHON, 'python3', 'python'].filter(Boolean);
const missing = [];
if (!python.some((p) => runs(p, ['-c', 'import sys; sys.exit(sys.version_info < (3, 6))'])))
  missing.push('python3');
if (!runs(process.env.MAKE || 'make', ['--version'])) missing.push('make');
if (!runs(process.env.CXX || 'g++', ['--version'])) missing.push(process.env.CXX || 'g++');

if (missing.length > 0) {
  const need = `python3, make and g++ (missing here: ${missing.join(', ')})`;
  const glibc = process.report?.getReport().header.glibcVersionRuntime;
  const target = `${process.platform}-${process.arch}${glibc ? ` (glibc ${glibc})` : ''}`;
  if (loadError === undefined) console.error(`building @rxvmm/sys from source needs ${need}`);
  else if (loadError.startsWith('No native build was found'))
    console.error(`no prebuilt @rxvmm/sys for ${target}; to build it, install ${need}`);
  else
    console.error(
      `the prebuilt @rxvmm/sys does not load on ${target}: ${loadError}; to build it, install ${need}`,
    );
  process.exit(1);
}

const build = spawnSync(
  process.execPath,
  [
    join(packageRoot, 'scripts', 'with-node-headers.mjs'),
    process.execPath,
    require.resolve('node-gyp-build/bin.js'),
  ],
  { cwd: packageRoot, stdio: 'inherit' },
);
process.exit(build.status ?? 1);
