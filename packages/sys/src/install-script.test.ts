// The install script (scripts/install.mjs) on a machine without a compiler:
// a prebuild that loads means nothing to do; no usable prebuild means one line
// saying what to install and exit 1 (an optional dependency is then dropped),
// never node-gyp's Python lookup. Runs on a copy of the package as npm unpacks
// it, with a PATH that holds only node.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const built = join(packageRoot, 'build', 'Release', 'rxvmm_sys.node');
const prebuildName = join('prebuilds', `linux-${process.arch}`, '@rxvmm+sys.glibc.node');
if (!existsSync(built))
  console.warn('sys install script: build/Release not built, the "prebuild loads" case is skipped');

let work: string;
let path: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'rxvmm-sys-install-'));
  const pkg = join(work, 'package');
  for (const entry of ['package.json', 'binding.gyp', 'native', 'scripts'])
    cpSync(join(packageRoot, entry), join(pkg, entry), { recursive: true });
  symlinkSync(join(packageRoot, 'node_modules'), join(pkg, 'node_modules'));
  path = join(work, 'bin');
  mkdirSync(path);
  symlinkSync(process.execPath, join(path, 'node'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/** Runs the install script with no compiler, make or Python reachable. */
function install() {
  const env: NodeJS.ProcessEnv = { PATH: path, HOME: work };
  const r = spawnSync(process.execPath, ['scripts/install.mjs'], {
    cwd: join(work, 'package'),
    env,
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const toolchainLine = '; to build it, install python3, make and g++ (missing here: python3, make, g++)';

describe('the install script without a toolchain', () => {
  it('says in one line that there is no prebuild for this platform and what a build needs, exit 1', () => {
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header
      .glibcVersionRuntime;
    expect(r.stderr).toBe(
      `no prebuilt @rxvmm/sys for linux-${process.arch} (glibc ${glibc})${toolchainLine}\n`,
    );
  });

  it('says why a prebuild that is there does not load', () => {
    const file = join(work, 'package', prebuildName);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'not an ELF file');
    const r = install();
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).toMatch(
      /^the prebuilt @rxvmm\/sys does not load on linux-\S+ \(glibc [0-9.]+\): .*(invalid ELF header|file too short)/,
    );
    expect(r.stderr.trimEnd().endsWith(toolchainLine)).toBe(true);
  });

  it.skipIf(!existsSync(built))('does nothing when the prebuild loads', () => {
    const file = join(work, 'package', prebuildName);
    mkdirSync(join(file, '..'), { recursive: true });
    cpSync(built, file);
    expect(install()).toEqual({ status: 0, stdout: '', stderr: '' });
  });
});
