// requireSealed: a frontend that can shrink its memory after SET_MEM_TABLE can
// make the back-end SIGBUS, so with the option a region must be sealed against
// shrinking (F_SEAL_SHRINK), as QEMU's memfd backends are by default.
import { ftruncateSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addSeals,
  close,
  F_SEAL_SHRINK,
  MAP_SHARED,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  memfdCreate,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
} from '@rxvmm/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { type FrontendMemoryRegion, VhostUserFrontend, VhostUserServer } from '../src/index.js';
import { countFds, countMaps, MemfdRam } from '../src/testing/index.js';
import { EchoDevice } from '@rxvmm/virtio-ring/testing';

const dir = mkdtempSync(join(tmpdir(), 'rxvmm-vu-sealed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const SIZE = 1 << 20;

/** Guest RAM in a memfd made with MFD_ALLOW_SEALING, sealed with `seals` (0: none) after sizing. */
function sealableRam(seals: number): { region: FrontendMemoryRegion; close(): void } {
  const fd = memfdCreate('rxvmm-sealed-ram', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ftruncateSync(fd, SIZE);
  if (seals !== 0) addSeals(fd, seals);
  const address = mmap(SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
  return {
    region: { guestPhysAddr: 0n, size: BigInt(SIZE), userspaceAddr: address, fd, fdOffset: 0n },
    close() {
      munmap(address, SIZE);
      close(fd);
    },
  };
}

/** Serves one frontend whose start() hands over `region`; resolves with start()'s failure (or null) and the logs. */
async function setUp(
  requireSealed: boolean | undefined,
  region: FrontendMemoryRegion,
): Promise<{ error: Error | null; logs: string[] }> {
  const logs: string[] = [];
  const socketPath = join(dir, `s${n++}`);
  let sessionEnded!: () => void;
  const ended = new Promise<void>((resolve) => {
    sessionEnded = resolve;
  });
  const server = new VhostUserServer(new EchoDevice(), {
    socketPath,
    log: (l) => logs.push(l),
    ...(requireSealed === undefined ? {} : { requireSealed }),
    onSessionEnd: () => sessionEnded(),
  });
  const fe = VhostUserFrontend.connect(socketPath);
  let error: Error | null = null;
  try {
    await fe.start({ wantFeatures: 1n << 32n, memory: [region], queues: [] });
  } catch (e) {
    error = e as Error;
  } finally {
    fe.close();
    await ended;
    await server.close();
  }
  return { error, logs };
}

describe('requireSealed', () => {
  it('accepts a region sealed against shrinking', async () => {
    const fds = countFds();
    const maps = countMaps();
    for (const ram of [sealableRam(F_SEAL_SHRINK), new MemfdRam(SIZE, 0n, true)]) {
      try {
        const { error, logs } = await setUp(true, ram.region);
        expect(error).toBeNull();
        expect(logs.join('\n')).not.toMatch(/refused/);
      } finally {
        ram.close();
      }
    }
    expect(countFds()).toBe(fds);
    expect(countMaps()).toBe(maps);
  });

  it('refuses an unsealed region with an error reply that says why', async () => {
    const fds = countFds();
    const maps = countMaps();
    const ram = sealableRam(0);
    try {
      const { error, logs } = await setUp(true, ram.region);
      expect(error?.message).toMatch(/back-end refused SET_MEM_TABLE/);
      expect(logs.join('\n')).toMatch(
        /SET_MEM_TABLE\(5\) refused: EPERM: region 0: its fd is not sealed against shrinking \(F_SEAL_SHRINK\)/,
      );
    } finally {
      ram.close();
    }
    expect(countFds()).toBe(fds);
    expect(countMaps()).toBe(maps);
  });

  it('refuses a memfd created without MFD_ALLOW_SEALING (it can never be sealed)', async () => {
    const ram = new MemfdRam(SIZE);
    try {
      const { error, logs } = await setUp(true, ram.region);
      expect(error).not.toBeNull();
      expect(logs.join('\n')).toMatch(/region 0: its fd is not sealed against shrinking/);
    } finally {
      ram.close();
    }
  });

  it('is off by default: an unsealed region is accepted', async () => {
    for (const option of [undefined, false]) {
      const ram = sealableRam(0);
      try {
        const { error } = await setUp(option, ram.region);
        expect(error).toBeNull();
      } finally {
        ram.close();
      }
    }
  });
});
