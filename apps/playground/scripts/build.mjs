#!/usr/bin/env node
// Builds the page into dist/: src/page/main.ts bundled by esbuild for the browser (from the
// packages' published dist/, as a user's bundler would take them), plus index.html and
// style.css. The bundle must not contain any Node built-in: the build fails if it does.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(app, 'dist');
const builtins = new Set(builtinModules);

/** Records every Node built-in the bundle asks for (and keeps it out of the bundle). */
const nodeImports = [];
const refuseNode = {
  name: 'refuse-node-builtins',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const bare = args.path.replace(/^node:/, '').split('/')[0];
      if (!args.path.startsWith('node:') && !builtins.has(bare)) return undefined;
      nodeImports.push(`${args.path} (imported by ${args.importer})`);
      return { path: args.path, external: true };
    });
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(app, 'src/page/main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  sourcemap: true,
  minify: process.env.NOMINIFY !== '1',
  metafile: true,
  logLevel: 'warning',
  plugins: [refuseNode],
});
if (nodeImports.length > 0) {
  console.error(`playground: the browser bundle imports Node built-ins:\n  ${nodeImports.join('\n  ')}`);
  process.exit(1);
}
for (const file of ['index.html', 'style.css']) copyFileSync(join(app, 'src/page', file), join(out, file));
const bytes =
  result.metafile.outputs[Object.keys(result.metafile.outputs).find((f) => f.endsWith('app.js'))].bytes;
console.log(`playground: dist/ built (app.js ${(bytes / 1024).toFixed(0)} KiB)`);
