// Browser-safe packages: each entry point a page may import is bundled with esbuild for the
// browser platform, and the bundle must not import a Node built-in (`node:*` or a bare builtin
// such as `fs`). Both forms are checked: the published one (exports' `default`, the packages'
// dist/, as a user's bundler takes them) and the workspace one (the `development` condition, src/).
// Node-only entries are bundled too, and must be refused: that is the check checking itself.
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(app, '../..');

/** The entries a page uses: SoftKvm and the virtio stack, and what they import. */
const BROWSER_SAFE = [
  '@rxvmm/errno',
  '@rxvmm/eventfd',
  '@rxvmm/io-bus',
  '@rxvmm/ioeventfd',
  '@rxvmm/irqfd',
  '@rxvmm/kvm',
  '@rxvmm/kvm-soft',
  '@rxvmm/virtio',
  '@rxvmm/guest-memory',
  '@rxvmm/virtio-ring',
  '@rxvmm/virtio-ring/testing', // EchoDevice, the in-memory device, and the mock drivers
  '@rxvmm/virtio-mmio',
] as const;

/** Entries that are Node-only by design: the check must find their Node imports. */
const NODE_ONLY = ['@rxvmm/eventfd/linux', '@rxvmm/kvm-soft/testing'] as const;

const builtins = new Set(builtinModules);
const isBuiltin = (spec: string) => spec.startsWith('node:') || builtins.has(spec.split('/')[0] ?? '');

/** Bundles `entry` for the browser; returns every Node built-in it imports, with the importer. */
async function nodeImportsOf(entry: string, conditions: string[]): Promise<string[]> {
  const found: string[] = [];
  const recordNode: Plugin = {
    name: 'record-node-builtins',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        found.push(`${args.path} (imported by ${relative(root, args.importer)})`);
        return { path: args.path, external: true };
      });
    },
  };
  await build({
    stdin: { contents: `export * from '${entry}';`, resolveDir: app, loader: 'ts' },
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    conditions,
    logLevel: 'silent',
    plugins: [recordNode],
  });
  return found;
}

describe.each([
  ['published (dist/)', []],
  ['workspace (development: src/)', ['development']],
])('browser bundles, %s', (_form, conditions) => {
  it.each(BROWSER_SAFE)('%s imports no Node built-in', async (entry) => {
    expect(await nodeImportsOf(entry, conditions)).toEqual([]);
  });

  it.each(NODE_ONLY)('%s is Node-only, and the check sees it', async (entry) => {
    expect((await nodeImportsOf(entry, conditions)).length).toBeGreaterThan(0);
  });
});
