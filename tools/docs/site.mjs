// Builds the API reference (TypeDoc, typedoc.json) into site/, and says whether it is current.
//
//   node site.mjs            build when an input changed since the last build (CI runs the suite
//                            once per Node version: the site is built once)
//   node site.mjs --force    always build (`pnpm run docs`)
//
// Inputs: every package's sources, manifest, tsconfig and README, and this directory's
// configuration; their digest is kept in site/.inputs. TypeDoc runs with --treatWarningsAsErrors:
// an undocumented export, a broken {@link} or a type the docs reference but no entry point exports
// fails the build. Exit status: TypeDoc's.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '../..');
export const siteDir = join(here, 'site');
const stampFile = join(siteDir, '.inputs');

function files(dir, keep) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      return entry.name === 'node_modules' || entry.name === 'dist' ? [] : files(path, keep);
    return keep(path) ? [path] : [];
  });
}

/**
 * The package directories typedoc.json documents (its entry points; `dir/*` is every package in dir).
 * @returns {string[]}
 */
export function documentedDirs() {
  const { entryPoints } = JSON.parse(readFileSync(join(here, 'typedoc.json'), 'utf8'));
  return entryPoints.flatMap((entry) => {
    if (!entry.endsWith('/*')) return [join(here, entry)];
    const parent = join(here, entry.slice(0, -2));
    return readdirSync(parent)
      .sort()
      .map((name) => join(parent, name))
      .filter((dir) => existsSync(join(dir, 'package.json')));
  });
}

/** Digest of everything the site is made from. */
export function inputsDigest() {
  const hash = createHash('sha256');
  const typedoc = createRequire(join(here, 'package.json')).resolve('typedoc/package.json');
  const inputs = [
    typedoc,
    ...['typedoc.json', 'index.md', 'entry-names.mjs', 'site.mjs'].map((f) => join(here, f)),
    ...documentedDirs().flatMap((dir) => {
      return [
        ...['package.json', 'README.md', 'tsconfig.json', 'tsconfig.build.json'].map((f) => join(dir, f)),
        ...files(join(dir, 'src'), (p) => p.endsWith('.ts')).sort(),
      ];
    }),
  ].filter((p) => existsSync(p) && statSync(p).isFile());
  for (const path of inputs) {
    hash.update(relative(repoRoot, path));
    hash.update(readFileSync(path));
  }
  return hash.digest('hex');
}

/** True when site/ was built from the current inputs. */
export function siteIsCurrent() {
  return (
    existsSync(join(siteDir, 'index.html')) &&
    existsSync(stampFile) &&
    readFileSync(stampFile, 'utf8') === inputsDigest()
  );
}

/** Runs TypeDoc; returns { status, output }. Records the inputs' digest when it succeeds. */
export function buildSite() {
  const digest = inputsDigest();
  const bin = join(
    dirname(createRequire(join(here, 'package.json')).resolve('typedoc/package.json')),
    'bin/typedoc',
  );
  const run = spawnSync(process.execPath, [bin, '--options', 'typedoc.json', '--treatWarningsAsErrors'], {
    cwd: here,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}${run.error ? `\n${run.error.message}` : ''}`;
  if (run.status === 0) writeFileSync(stampFile, digest);
  return { status: run.status ?? 1, output };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--force') && siteIsCurrent()) {
    console.log(`site/ is current (${relative(process.cwd(), siteDir)})`);
  } else {
    const { status, output } = buildSite();
    process.stdout.write(output);
    process.exitCode = status;
  }
}
