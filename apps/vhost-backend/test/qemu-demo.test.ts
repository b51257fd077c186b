// E2E (b): rxvmm-demo on real KVM as the vhost-user frontend. The demo VMM hands its virtio-blk queue
// to the back-end (kick = its ioeventfd's eventfd, call = its irqfd's eventfd); its guest writes a
// pattern per request, reads it back and verifies it; the host then checks the disk file.
// Against qemu-storage-daemon (proves the demo's frontend against the reference) and rxvmm-vhost-blk.
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BackendKind, rxvmmVhostBlkMissing } from './qemu/backends.js';
import { runFrontendAgainst } from './qemu/frontend.js';
import { repoRoot, which } from './qemu/guest-image.js';

const REQUESTS = 64;
const BLOCK = 4096;
const demoCli = join(repoRoot, 'apps/demo-vmm/dist/cli.js');

const KVM_GET_API_VERSION = 0xae00;
// Loaded here, not imported: a missing native build must skip these tests with its reason, not fail the file.
const sys = await import('@rxvmm/sys').catch((error: Error) => error);

/** Why /dev/kvm cannot run the demo: opened read-write and asked KVM_GET_API_VERSION, as the demo
 * does (access(2) alone passes for root on any file, e.g. a /dev/null where /dev/kvm should be). */
function kvmUnusable(): string | undefined {
  if (sys instanceof Error) return `@rxvmm/sys did not load (build it: pnpm build): ${sys.message}`;
  let fd: number;
  try {
    fd = openSync('/dev/kvm', constants.O_RDWR);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? '/dev/kvm does not exist (enable KVM: modprobe kvm_intel or kvm_amd; nested virtualization in a VM)'
      : `/dev/kvm cannot be opened read-write (${code}): add this user to the kvm group or run as root`;
  }
  try {
    if (sys.ioctl(fd, KVM_GET_API_VERSION) !== 12) return '/dev/kvm does not speak KVM API version 12';
  } catch (error) {
    return `/dev/kvm is not a KVM device (KVM_GET_API_VERSION: ${(error as Error).message}): the kvm module's character device (10:232) is needed`;
  } finally {
    closeSync(fd);
  }
  return undefined;
}

function kvmMissing(): string | undefined {
  const unusable = kvmUnusable();
  if (unusable) return unusable;
  if (!which('qemu-storage-daemon'))
    return 'qemu-storage-daemon not installed (run scripts/provision.sh as root)';
  if (!existsSync(demoCli)) return `${demoCli} not built (build @rxvmm/demo-vmm first)`;
  return undefined;
}

/** apps/demo-vmm/guest/guest.c: byte j of request i (at disk offset i * block size). */
function demoPatternByte(i: number, j: number): number {
  return ((i * 131 + j * 7 + (j >> 9)) ^ 0x5a) & 0xff;
}

const missing = kvmMissing();
if (missing) console.warn(`rxvmm-demo --vhost-user e2e skipped: ${missing}`);
const rxMissing = rxvmmVhostBlkMissing();
if (!missing && rxMissing)
  console.warn(`rxvmm-demo --vhost-user against rxvmm-vhost-blk skipped: ${rxMissing}`);

describe.skipIf(missing !== undefined)('rxvmm-demo --vhost-user on KVM', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const kinds: { kind: BackendKind; skip: string | undefined }[] = [
    { kind: 'qemu-storage-daemon', skip: undefined },
    { kind: 'rxvmm-vhost-blk', skip: rxMissing },
  ];
  for (const { kind, skip } of kinds) {
    it.skipIf(skip !== undefined)(
      `${kind}: the demo guest's writes and reads go through the back-end; the file holds them`,
      async () => {
        dir = mkdtempSync(join(tmpdir(), 'rxvmm-demo-vu-'));
        const disk = join(dir, 'disk.img');
        writeFileSync(disk, '');
        truncateSync(disk, REQUESTS * BLOCK + (1 << 20));
        const socket = join(dir, 'vhost.sock');
        const run = await runFrontendAgainst({
          kind,
          disk,
          socket,
          timeoutMs: 90_000,
          command: [
            process.execPath,
            demoCli,
            '--backend',
            'kvm',
            '--disk',
            disk,
            '--requests',
            String(REQUESTS),
            '--block-size',
            String(BLOCK),
            '--vhost-user',
            'SOCKET',
            '--json',
          ],
        });
        const why = `demo exit=${run.exitCode} signal=${run.signal} timedOut=${run.timedOut}\n--- demo stdout ---\n${run.stdout}\n--- demo stderr ---\n${run.stderr}\n--- ${kind} ---\n${run.backendOutput}`;
        expect(run.timedOut, why).toBe(false);
        expect(run.exitCode, why).toBe(0);
        // The demo's --json report: every request verified, and served through the back-end at our socket
        // (the disk check below alone would also pass with the demo's local device).
        const report = JSON.parse(run.stdout) as {
          ok?: boolean;
          verified?: number;
          vhostUser?: string | null;
        };
        expect(report.ok, why).toBe(true);
        expect(report.verified, why).toBe(REQUESTS);
        expect(report.vhostUser, why).toBe(socket);

        const bytes = readFileSync(disk);
        let bad = -1;
        for (let o = 0; o < REQUESTS * BLOCK && bad < 0; o++)
          if (bytes[o] !== demoPatternByte(Math.floor(o / BLOCK), o % BLOCK)) bad = o;
        expect(bad, `first wrong byte in the disk file at ${bad}`).toBe(-1);
        // Nothing written past the requests.
        expect(bytes.subarray(REQUESTS * BLOCK).every((b) => b === 0)).toBe(true);
      },
      120_000,
    );
  }
});
