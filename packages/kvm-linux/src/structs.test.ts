import { describe, expect, it } from 'vitest';
import {
  IoeventfdLayout,
  IrqfdLayout,
  IrqRoutingEntryLayout,
  MsiLayout,
  SegmentLayout,
  SregsLayout,
} from './abi.js';
import {
  decodeRegs,
  decodeSregs,
  encodeGsiRouting,
  encodeIoeventfd,
  encodeIrqfd,
  encodeMemoryRegion,
  encodeMsi,
  encodeRegs,
  encodeSregsInto,
  newSregsBuffer,
} from './structs.js';

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

describe('struct encoders (layouts checked against <linux/kvm.h> in abi.test.ts)', () => {
  it('kvm_ioeventfd: every field at its offset, an fd object or number', () => {
    const b = encodeIoeventfd({ addr: 0xd000_0000n, len: 4, fd: { fd: 17 }, datamatch: 0x1122n, flags: 3 });
    expect(b.length).toBe(IoeventfdLayout.size);
    expect(view(b).getBigUint64(IoeventfdLayout.datamatch, true)).toBe(0x1122n);
    expect(view(b).getBigUint64(IoeventfdLayout.addr, true)).toBe(0xd000_0000n);
    expect(view(b).getUint32(IoeventfdLayout.len, true)).toBe(4);
    expect(view(b).getInt32(IoeventfdLayout.fd, true)).toBe(17);
    expect(view(b).getUint32(IoeventfdLayout.flags, true)).toBe(3);
    expect(view(encodeIoeventfd({ addr: 0n, len: 0, fd: 5 })).getInt32(IoeventfdLayout.fd, true)).toBe(5);
  });

  it('kvm_irqfd with a resample fd; an fd out of int range becomes -1 (the kernel answers EBADF)', () => {
    const b = encodeIrqfd({ fd: 9, gsi: 10, flags: 2, resamplefd: { fd: 11 } });
    expect(
      [IrqfdLayout.fd, IrqfdLayout.gsi, IrqfdLayout.flags, IrqfdLayout.resamplefd].map((o) =>
        view(b).getInt32(o, true),
      ),
    ).toEqual([9, 10, 2, 11]);
    expect(view(encodeIrqfd({ fd: 2 ** 40, gsi: 0 })).getInt32(IrqfdLayout.fd, true)).toBe(-1);
  });

  it('kvm_irqfd without a resamplefd: -1 (EBADF with RESAMPLE), never 0, which is stdin', () => {
    expect(view(encodeIrqfd({ fd: 9, gsi: 10, flags: 2 })).getInt32(IrqfdLayout.resamplefd, true)).toBe(-1);
    expect(view(encodeIrqfd({ fd: 9, gsi: 10 })).getInt32(IrqfdLayout.resamplefd, true)).toBe(-1);
  });

  it('rejects values the struct cannot hold instead of wrapping them (EINVAL)', () => {
    expect(() => encodeIrqfd({ fd: 1, gsi: -1 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => encodeIrqfd({ fd: 1, gsi: 2 ** 32 })).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => encodeIoeventfd({ addr: -1n, len: 4, fd: 1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => encodeIoeventfd({ addr: 1n << 64n, len: 4, fd: 1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => encodeIoeventfd({ addr: 0n, len: 1.5, fd: 1 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => encodeIoeventfd({ addr: 0n, len: 4, fd: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'EBADF' }),
    );
  });

  it('kvm_msi sets KVM_MSI_VALID_DEVID only with a devid', () => {
    expect(
      view(encodeMsi({ addressLo: 0xfee0_0000, addressHi: 1, data: 0x41 })).getUint32(MsiLayout.flags, true),
    ).toBe(0);
    const b = encodeMsi({ addressLo: 0xfee0_0000, addressHi: 1, data: 0x41, devid: 0x99 });
    expect(view(b).getUint32(MsiLayout.flags, true)).toBe(1);
    expect(view(b).getUint32(MsiLayout.devid, true)).toBe(0x99);
    expect(view(b).getUint32(MsiLayout.address_lo, true)).toBe(0xfee0_0000);
  });

  it('kvm_irq_routing: header then 48-byte entries of both kinds', () => {
    const b = encodeGsiRouting([
      { gsi: 3, type: 'irqchip', irqchip: 2, pin: 3 },
      { gsi: 30, type: 'msi', addressLo: 0xfee0_1000, addressHi: 0, data: 0x55 },
    ]);
    expect(b.length).toBe(8 + 2 * IrqRoutingEntryLayout.size);
    const v = view(b);
    expect(v.getUint32(0, true)).toBe(2);
    expect([
      v.getUint32(8, true),
      v.getUint32(12, true),
      v.getUint32(8 + 16, true),
      v.getUint32(8 + 20, true),
    ]).toEqual([3, 1, 2, 3]);
    const e = 8 + IrqRoutingEntryLayout.size;
    expect([
      v.getUint32(e, true),
      v.getUint32(e + 4, true),
      v.getUint32(e + 16, true),
      v.getUint32(e + 24, true),
    ]).toEqual([30, 2, 0xfee0_1000, 0x55]);
    expect(encodeGsiRouting([]).length).toBe(8);
    expect(view(encodeGsiRouting([], 1)).getUint32(4, true)).toBe(1);
    const raw = view(
      encodeGsiRouting([
        { gsi: 1, type: 99, flags: 4, pin: 3 },
        { gsi: 2, type: 'msi', addressLo: 0, addressHi: 0, data: 0, devid: 5 },
      ]),
    );
    expect([raw.getUint32(8 + 4, true), raw.getUint32(8 + 8, true), raw.getUint32(8 + 20, true)]).toEqual([
      99, 4, 3,
    ]);
    expect(raw.getUint32(e + 8, true)).toBe(1); // KVM_MSI_VALID_DEVID implied by devid
  });

  it('kvm_userspace_memory_region and kvm_regs round trip', () => {
    const m = view(
      encodeMemoryRegion({
        slot: 2,
        flags: 1,
        guestPhysAddr: 0x1000n,
        memorySize: 8192,
        userspaceAddr: 0x7f00_0000_0000n,
      }),
    );
    expect([m.getUint32(0, true), m.getUint32(4, true)]).toEqual([2, 1]);
    expect([m.getBigUint64(8, true), m.getBigUint64(16, true), m.getBigUint64(24, true)]).toEqual([
      0x1000n,
      8192n,
      0x7f00_0000_0000n,
    ]);
    const regs = decodeRegs(new Uint8Array(144));
    const filled = Object.fromEntries(
      Object.keys(regs).map((k, i) => [k, BigInt(i + 1) << 40n]),
    ) as unknown as typeof regs;
    expect(decodeRegs(encodeRegs(filled))).toEqual(filled);
  });

  it('kvm_sregs round trip keeps the interrupt bitmap it was given', () => {
    const bytes = newSregsBuffer();
    view(bytes).setBigUint64(SregsLayout.interrupt_bitmap, 0xdeadn, true);
    const sregs = decodeSregs(bytes);
    sregs.cs = { ...sregs.cs, base: 0x10000n, selector: 0x1000, type: 0xb, present: 1, l: 1, limit: 0xffff };
    sregs.gdt = { base: 0x700n, limit: 39 };
    sregs.efer = 0x500n;
    encodeSregsInto(bytes, sregs);
    expect(decodeSregs(bytes)).toEqual(sregs);
    expect(view(bytes).getUint16(SregsLayout.cs + SegmentLayout.selector, true)).toBe(0x1000);
    expect(view(bytes).getBigUint64(SregsLayout.interrupt_bitmap, true)).toBe(0xdeadn);
  });
});
