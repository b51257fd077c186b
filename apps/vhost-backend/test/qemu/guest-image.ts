// Locates (and, when missing, builds) the test guest: Debian's cloud kernel and the initramfs of
// scripts/build-initramfs.sh, which is idempotent and takes well under a second when cached.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workspace root (holds pnpm-workspace.yaml), found upwards: this file also runs compiled from bench/dist/. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('rxvmm workspace root not found above the QEMU test helpers');
    dir = up;
  }
  return `${dir}/`;
}

export const repoRoot = findRepoRoot();

export interface GuestImage {
  kernel: string;
  initrd: string;
}

export type Availability<T> = { ok: true; value: T } | { ok: false; reason: string };

let cached: Availability<GuestImage> | undefined;

/** The guest kernel and initramfs, or why there is none (no network for the kernel, no gcc, ...). */
export function guestImage(): Availability<GuestImage> {
  if (cached) return cached;
  const r = spawnSync('bash', [`${repoRoot}scripts/build-initramfs.sh`], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const kv = Object.fromEntries(
    (r.stdout ?? '')
      .split('\n')
      .map((l) => l.split('='))
      .filter((p) => p.length === 2)
      .map(([k, v]) => [k, v]),
  ) as Record<string, string | undefined>;
  if (r.status !== 0 || !kv.kernel || !kv.initrd || !existsSync(kv.kernel) || !existsSync(kv.initrd)) {
    const why =
      (r.stderr ?? '').trim().split('\n').slice(-3).join(' / ') || r.error?.message || 'unknown error';
    cached = { ok: false, reason: `no guest kernel/initramfs (scripts/build-initramfs.sh: ${why})` };
  } else {
    cached = { ok: true, value: { kernel: kv.kernel, initrd: kv.initrd } };
  }
  return cached;
}

/** Absolute path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = r.stdout?.trim();
  return r.status === 0 && path ? path : undefined;
}

/** Everything a QEMU e2e run needs: qemu-system-x86_64, qemu-storage-daemon and the guest. */
export function qemuAvailability(): Availability<GuestImage> {
  for (const tool of ['qemu-system-x86_64', 'qemu-storage-daemon'])
    if (!which(tool))
      return { ok: false, reason: `${tool} not installed (run scripts/provision.sh as root)` };
  return guestImage();
}
