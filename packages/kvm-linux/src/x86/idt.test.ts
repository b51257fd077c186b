import type { MemoryRegion, Sregs } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { decodeSregs, newSregsBuffer } from '../structs.js';
import { idtGate, setupIdt, writeIdt } from './idt.js';
import { BOOT_IDT_ADDR } from './memory-map.js';

function ram(size: number) {
  const bytes = new Uint8Array(size);
  const region: MemoryRegion = { slot: 0, guestPhysAddr: 0n, size, flags: 0, bytes, fd: -1, fdOffset: 0 };
  return { memoryRegions: () => [region], bytes };
}

describe('IDT', () => {
  it('a gate splits the handler address over offset 15:0, 31:16, 63:32; present 64-bit interrupt gate on selector 0x08', () => {
    const gate = idtGate(0x1234_5678_9abc_def0n);
    expect([...gate]).toEqual([
      0xf0, 0xde, 0x08, 0x00, 0x00, 0x8e, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00,
    ]);
    expect(idtGate(0x1000n, { type: 'trap', dpl: 3, ist: 2, selector: 0x10 }).subarray(2, 6)).toEqual(
      Uint8Array.of(0x10, 0x00, 0x02, 0xef),
    );
    for (const bad of [{ ist: 8 }, { dpl: 4 }, { ist: 1.5 }])
      expect(() => idtGate(0n, bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => idtGate(-1n)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('writeIdt fills 256 gates at BOOT_IDT_ADDR: the listed vectors present, every other not present', () => {
    const mem = ram(0x10000);
    mem.bytes.fill(0xaa);
    const idtr = writeIdt(
      mem,
      new Map([
        [0x40, 0x9000n],
        [0xff, 0x9100n],
      ]),
    );
    expect(idtr).toEqual({ base: BOOT_IDT_ADDR, limit: 0xfff });
    const gate = (v: number) => mem.bytes.subarray(0x1000 + v * 16, 0x1000 + v * 16 + 16);
    expect(gate(0x40)).toEqual(idtGate(0x9000n));
    expect(gate(0xff)).toEqual(idtGate(0x9100n));
    expect(gate(0x41).every((b) => b === 0)).toBe(true);
    expect(mem.bytes[0x2000]).toBe(0xaa); // stops at the end of the table
    expect(() => writeIdt(mem, { 256: 0x9000n })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('setupIdt loads IDTR through the special registers and keeps the rest', () => {
    let sregs: Sregs = decodeSregs(newSregsBuffer());
    sregs.cr3 = 0x2000n;
    const vcpu = {
      getSregs: () => structuredClone(sregs),
      setSregs: (s: Sregs) => {
        sregs = structuredClone(s);
      },
    };
    setupIdt(ram(0x20000), vcpu, { handlers: { 48: 0x9000n }, base: 0x10000n });
    expect(sregs.idt).toEqual({ base: 0x10000n, limit: 0xfff });
    expect(sregs.cr3).toBe(0x2000n);
  });
});
