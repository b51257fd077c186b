// The README example, checked.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openSnapshot, writeSnapshot } from './index.js';

it('README: write a snapshot, open it, copy its memory out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rxvmm-readme-'));
  try {
    const path = join(dir, 'vm.snap');
    const ram = new Uint8Array(64 * 1024).fill(0x90);
    await writeSnapshot(
      path,
      { state: { vcpu: { rip: '1048576' } }, memory: [{ name: 'slot0', bytes: ram }] },
      { writer: 'my-vmm 1.0.0' },
    );
    await using snap = await openSnapshot(path);
    expect([snap.writer, snap.state]).toEqual(['my-vmm 1.0.0', { vcpu: { rip: '1048576' } }]);
    const restored = new Uint8Array(64 * 1024);
    await snap.readMemory('slot0', restored);
    expect(restored).toEqual(ram);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
