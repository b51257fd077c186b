#!/usr/bin/env node
// Bundles what runs before the guest's first instruction, after `tsc` built dist/ (the build
// script runs it), so Node loads a few files instead of about a hundred ES modules:
//
//   dist/bundle/cli.cjs           rxvmm-demo (package.json "bin"): runs early.bundle.cjs, which
//                                 starts the vCPU worker (src/early.ts: the option parser and
//                                 @rxvmm/kvm-linux/prepare only), then cli.bundle.cjs, the CLI
//                                 (src/main.ts) and everything it imports, the device side
//                                 included (evaluated when first used), while the worker boots
//   dist/bundle/vcpu-worker.cjs   the vCPU worker's entry: @rxvmm/kvm-linux/vcpu-worker
//   dist/bundle/exit-handler.cjs  the exit handler the worker loads (dist/vmm/exit-handler.js)
//
// Each of these is a stub that runs <name>.bundle.cjs through a V8 code cache
// (scripts/compile-cache.cjs, copied beside them): compiling a bundle is most of its loading.
//
// CommonJS, so neither thread starts Node's ES module loader (it costs a few ms of start-up per
// thread); kvm-linux's worker `require`s a .cjs handler. The bundles sit two levels below the
// package, as the modules they come from do (dist/vmm/, dist/guest/), so every
// `new URL('../../…', import.meta.url)` in them still names the same file. Two packages need help:
//   - rxjs: its "node" export is the CommonJS build (every operator); the ES build lets esbuild keep
//     only what is used;
//   - @rxvmm/sys: its binding loader finds the addon relative to its own file; in a bundle it finds
//     the package where require() does at run time (our dependency), and loads the addon from there;
//     @rxvmm/eventfd loads it with a top-level `await import()`, which CommonJS cannot do: in the
//     bundle that is a `require()` of the bundled module (synchronous; a failure is caught the same).
import { chmodSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const esbuild = require('esbuild');

/** `import 'rxjs'` → rxjs's ES build (tree-shaken), not the CommonJS one Node's "node" condition picks. */
const rxjsEsm = {
  name: 'rxjs-esm',
  setup(build) {
    build.onResolve({ filter: /^rxjs$/ }, (args) => {
      const from = createRequire(args.importer || `${pkg}package.json`);
      const cjs = from.resolve('rxjs');
      if (!cjs.endsWith('/dist/cjs/index.js')) throw new Error(`rxjs resolved to ${cjs}: layout changed`);
      return { path: cjs.replace(/\/dist\/cjs\/index\.js$/, '/dist/esm/index.js') };
    });
  },
};

/**
 * @rxvmm/sys's binding.js, as it must be inside a bundle: the package root found at run time, where
 * require() would find it (the node_modules folders from here up; require.resolve only when that
 * fails, e.g. NODE_PATH: resolving a package's exports map costs about 2 ms of start-up, on each
 * thread). The addon node-gyp built there is loaded directly (node-gyp-build looks there first too);
 * otherwise node-gyp-build picks a prebuild, as in the package.
 */
const SYS_BINDING = `
const { existsSync, realpathSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
function findSysRoot() {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '@rxvmm', 'sys');
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dirname(dir) === dir) return dirname(dirname(createRequire(__filename).resolve('@rxvmm/sys')));
  }
}
const sysRoot = findSysRoot();
const built = join(sysRoot, 'build', 'Release', 'rxvmm_sys.node');
export const native = existsSync(built)
  ? createRequire(__filename)(built)
  : createRequire(join(sysRoot, 'package.json'))('node-gyp-build')(sysRoot);
`;
const sysBinding = {
  name: 'sys-binding',
  setup(build) {
    build.onLoad({ filter: /[\\/]sys[\\/]dist[\\/]binding\.js$/ }, () => ({
      contents: SYS_BINDING,
      loader: 'js',
    }));
  },
};

/** `await import('@rxvmm/sys')` (top level, eventfd's #native) → `require('@rxvmm/sys')`, bundled. */
const sysRequire = {
  name: 'sys-require',
  setup(build) {
    build.onLoad({ filter: /[\\/]eventfd[\\/]dist[\\/]native\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const text = await readFile(args.path, 'utf8');
      const contents = text.replace(/await import\((['"])@rxvmm\/sys\1\)/g, "require('@rxvmm/sys')");
      if (contents === text) throw new Error(`${args.path}: no await import('@rxvmm/sys') to rewrite`);
      return { contents, loader: 'js' };
    });
  },
};

const entries = {
  early: `${pkg}dist/early.js`,
  cli: `${pkg}dist/main.js`,
  'vcpu-worker': require.resolve('@rxvmm/kvm-linux/vcpu-worker'),
  'exit-handler': `${pkg}dist/vmm/exit-handler.js`,
};

/** The bin: the vCPU worker starts (src/early.ts) before the CLI's bundle (src/main.ts) loads. */
const CLI_STUB = `#!/usr/bin/env node
'use strict';
// rxvmm-demo (scripts/bundle.mjs): early.bundle.cjs starts the vCPU worker when the arguments ask for
// /dev/kvm, then cli.bundle.cjs loads and runs the CLI while Node boots it. The early bundle is
// small and loaded as is: the code cache (compile-cache.cjs) would cost more than it saves there,
// and before the worker starts; the CLI's bundle runs through it.
const argv = process.argv.slice(2);
const prepared = require('./early.bundle.cjs').prepareEarly(argv);
const { run } = require('./compile-cache.cjs');
run(require('node:path').join(__dirname, 'cli.bundle.cjs')).runCli(argv, prepared);
`;

/** A worker-side entry: <name>.bundle.cjs through the V8 code cache. */
const workerStub = (name) =>
  `'use strict';\n` +
  `// ${name}.bundle.cjs (scripts/bundle.mjs) through the V8 code cache (compile-cache.cjs).\n` +
  `require('./compile-cache.cjs').run(require('node:path').join(__dirname, '${name}.bundle.cjs'), module);\n`;

rmSync(`${pkg}dist/bundle`, { recursive: true, force: true });
for (const [name, entry] of Object.entries(entries)) {
  const outfile = `${pkg}dist/bundle/${name}.bundle.cjs`;
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // import.meta.url of every bundled module is the bundle's own URL (same depth, see above).
    define: { 'import.meta.url': '__bundleUrl' },
    inject: [`${pkg}scripts/bundle-url.mjs`],
    plugins: [rxjsEsm, sysBinding, sysRequire],
    // Linked <name>.bundle.cjs.map: esbuild follows dist/'s maps back to the TypeScript and
    // embeds it (sourcesContent), so a stack trace under --enable-source-maps names real lines.
    sourcemap: 'linked',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
  if (name === 'early') continue; // loaded by cli.cjs
  const stub = `${pkg}dist/bundle/${name}.cjs`;
  writeFileSync(stub, name === 'cli' ? CLI_STUB : workerStub(name));
  if (name === 'cli') chmodSync(stub, 0o755);
}
copyFileSync(`${pkg}scripts/compile-cache.cjs`, `${pkg}dist/bundle/compile-cache.cjs`);
