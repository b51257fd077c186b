import { closeSync, openSync } from 'node:fs';
import { SoftEventFd } from '@rxvmm/eventfd';
import { IoBus } from '@rxvmm/io-bus';
import {
  IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY as CCW,
  IOEVENTFD_FLAG_DATAMATCH as DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN as DEASSIGN,
  IOEVENTFD_FLAG_PIO as PIO,
} from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { IoEventFds } from './index.js';

function setup() {
  const buses = { pio: new IoBus('pio'), mmio: new IoBus('mmio'), fastMmio: new IoBus('fast-mmio') };
  return { buses, ioeventfds: new IoEventFds(buses) };
}
const code = (c: string) => expect.objectContaining({ code: c });
const le = (len: number, v: bigint) => {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
};

describe('ioeventfd assign validation (docs/SEMANTICS.md §3, in order)', () => {
  it('§3 len not in {0,1,2,4,8}: EINVAL', () => {
    const { ioeventfds } = setup();
    using efd = new SoftEventFd();
    for (const len of [3, 5, 16])
      expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len, fd: efd.fd })).toThrow(code('EINVAL'));
  });
  it('§3 addr + len wraps 2^64: EINVAL (len 0 at the top does not wrap)', () => {
    const { ioeventfds } = setup();
    using efd = new SoftEventFd();
    expect(() => ioeventfds.ioeventfd({ addr: 0xffff_ffff_ffff_fffen, len: 4, fd: efd.fd })).toThrow(
      code('EINVAL'),
    );
    ioeventfds.ioeventfd({ addr: 0xffff_ffff_ffff_fffcn, len: 2, fd: efd.fd });
  });
  it('§3 a flag outside KVM_IOEVENTFD_VALID_FLAG_MASK (0x1f, as on the live kernel): EINVAL', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd();
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: efd.fd, flags: 1 << 5 })).toThrow(
      code('EINVAL'),
    );
    // Bit 4 (kvm_ioeventfd_flag_nr_fast_mmio) is inside the mask: accepted, MMIO bus.
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: efd.fd, flags: 1 << 4 });
    expect(buses.mmio.size).toBe(1);
  });
  it('§3 a datamatch the u64 struct field cannot hold: EINVAL on assign and deassign, never wrapped', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd();
    for (const datamatch of [-1n, 1n << 64n]) {
      for (const flags of [DATAMATCH, DATAMATCH | DEASSIGN]) {
        expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: efd.fd, flags, datamatch })).toThrow(
          code('EINVAL'),
        );
      }
    }
    expect(buses.mmio.size).toBe(0);
    ioeventfds.ioeventfd({
      addr: 0x1000n,
      len: 8,
      fd: efd.fd,
      flags: DATAMATCH,
      datamatch: (1n << 64n) - 1n,
    });
    expect(buses.mmio.size).toBe(1);
  });
  it('§3 len 0 with DATAMATCH: EINVAL; len 0 with PIO is accepted', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd();
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 0, fd: efd.fd, flags: DATAMATCH })).toThrow(
      code('EINVAL'),
    );
    ioeventfds.ioeventfd({ addr: 0x80n, len: 0, fd: efd.fd, flags: PIO });
    expect(buses.pio.size).toBe(1);
    expect(buses.fastMmio.size).toBe(0);
  });
  it('§3 fd not open: EBADF; open but not an eventfd: EINVAL; checked after the argument checks', () => {
    const { ioeventfds } = setup();
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: 0x7fff_fff0 })).toThrow(code('EBADF'));
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 3, fd: 0x7fff_fff0 })).toThrow(code('EINVAL'));
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd })).toThrow(code('EINVAL'));
    } finally {
      closeSync(fd);
    }
    const closed = new SoftEventFd();
    closed.close();
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: closed.fd })).toThrow(code('EBADF'));
  });
});

describe('ioeventfd collisions (docs/SEMANTICS.md §3)', () => {
  const cases: [string, [number, number, bigint?], [number, number, bigint?], boolean][] = [
    ['same length, both wildcard', [4, 0], [4, 0], true],
    ['same length, one wildcard', [4, DATAMATCH, 1n], [4, 0], true],
    ['same length, equal datamatch', [4, DATAMATCH, 7n], [4, DATAMATCH, 7n], true],
    ['same length, different datamatch', [4, DATAMATCH, 7n], [4, DATAMATCH, 8n], false],
    ['either length 0', [0, 0], [4, DATAMATCH, 1n], true],
    ['different non-zero lengths', [2, 0], [4, 0], false],
  ];
  for (const [name, [len1, f1, d1], [len2, f2, d2], collides] of cases) {
    it(`§3 EEXIST rule: ${name} -> ${collides ? 'EEXIST' : 'no collision'}`, () => {
      const { ioeventfds } = setup();
      using a = new SoftEventFd();
      using b = new SoftEventFd();
      ioeventfds.ioeventfd({ addr: 0x1000n, len: len1, fd: a.fd, flags: f1, datamatch: d1 });
      const second = () =>
        ioeventfds.ioeventfd({ addr: 0x1000n, len: len2, fd: b.fd, flags: f2, datamatch: d2 });
      if (collides) expect(second).toThrow(code('EEXIST'));
      else expect(second).not.toThrow();
    });
  }
  it('§3 the eventfd does not matter; another address inside the range or another bus does not collide', () => {
    const { ioeventfds } = setup();
    using a = new SoftEventFd();
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd });
    expect(() => ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd })).toThrow(code('EEXIST'));
    ioeventfds.ioeventfd({ addr: 0x1002n, len: 2, fd: a.fd });
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd, flags: PIO });
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd, flags: CCW });
  });
});

describe('ioeventfd matching (docs/SEMANTICS.md §3)', () => {
  it('§3 datamatch: only the matching value of the matching length signals and is absorbed', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd({ nonblock: true });
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: efd.fd, flags: DATAMATCH, datamatch: 0x1234n });
    expect(buses.mmio.write(0x1000n, le(4, 0x1234n))).toBe(true);
    expect(buses.mmio.write(0x1000n, le(4, 0x1235n))).toBe(false);
    expect(buses.mmio.write(0x1000n, le(2, 0x1234n))).toBe(false);
    expect(buses.mmio.write(0x1000n, le(4, 0x1234n))).toBe(true);
    expect(efd.read()).toBe(2n);
  });
  it('§3 wildcard: any value of that length; reads are never handled', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd({ nonblock: true });
    ioeventfds.ioeventfd({ addr: 0x60n, len: 1, fd: efd.fd, flags: PIO });
    expect(buses.pio.write(0x60n, le(1, 5n))).toBe(true);
    expect(buses.pio.write(0x60n, le(1, 6n))).toBe(true);
    expect(buses.pio.read(0x60n, new Uint8Array(1))).toBe(false);
    expect(efd.read()).toBe(2n);
  });
  it('§3 len 0 MMIO: placed on the MMIO and fast MMIO buses, matches any access length at that address', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd({ nonblock: true });
    ioeventfds.ioeventfd({ addr: 0x2000n, len: 0, fd: efd.fd });
    expect(buses.mmio.size).toBe(1);
    expect(buses.fastMmio.size).toBe(1);
    for (const len of [1, 2, 4, 8]) expect(buses.fastMmio.write(0x2000n, new Uint8Array(len))).toBe(true);
    expect(buses.mmio.write(0x2000n, new Uint8Array(4))).toBe(true);
    expect(buses.mmio.write(0x2001n, new Uint8Array(1))).toBe(false);
    expect(efd.read()).toBe(5n);
  });
  it('§3 a non-match falls through to the next containing device', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd({ nonblock: true });
    const seen: bigint[] = [];
    buses.mmio.register(0x1000n, 0x100, {
      write: (a) => {
        seen.push(a);
        return true;
      },
    });
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: efd.fd, flags: DATAMATCH, datamatch: 1n });
    expect(buses.mmio.write(0x1000n, le(4, 2n))).toBe(true);
    expect(seen).toEqual([0x1000n]);
    expect(buses.mmio.write(0x1000n, le(4, 1n))).toBe(true);
    expect(seen).toEqual([0x1000n]);
    expect(efd.read()).toBe(1n);
  });
  it('§2/§3 ioeventfds do not count against the bus device limit (1100 on one bus)', () => {
    const { ioeventfds, buses } = setup();
    using efd = new SoftEventFd();
    for (let i = 0; i < 1100; i++) ioeventfds.ioeventfd({ addr: BigInt(i * 8), len: 4, fd: efd.fd });
    expect(buses.mmio.ioeventfdCount).toBe(1100);
    expect(buses.mmio.deviceCount).toBe(0);
  });
});

describe('ioeventfd deassign (docs/SEMANTICS.md §3)', () => {
  it('§3 deassign removes the exact match (bus, eventfd, addr, len, wildcard-ness, datamatch); none: ENOENT', () => {
    const { ioeventfds, buses } = setup();
    using a = new SoftEventFd();
    using b = new SoftEventFd();
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd, flags: DATAMATCH, datamatch: 9n });
    const tries = [
      { addr: 0x1000n, len: 4, fd: b.fd, flags: DATAMATCH | DEASSIGN, datamatch: 9n }, // other eventfd
      { addr: 0x1000n, len: 4, fd: a.fd, flags: DATAMATCH | DEASSIGN, datamatch: 8n }, // other datamatch
      { addr: 0x1000n, len: 4, fd: a.fd, flags: DEASSIGN }, // wildcard-ness differs
      { addr: 0x1000n, len: 2, fd: a.fd, flags: DATAMATCH | DEASSIGN, datamatch: 9n }, // other length
      { addr: 0x1000n, len: 4, fd: a.fd, flags: DATAMATCH | DEASSIGN | PIO, datamatch: 9n }, // other bus
    ];
    for (const args of tries) expect(() => ioeventfds.ioeventfd(args)).toThrow(code('ENOENT'));
    ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd, flags: DATAMATCH | DEASSIGN, datamatch: 9n });
    expect(buses.mmio.size).toBe(0);
    expect(() =>
      ioeventfds.ioeventfd({ addr: 0x1000n, len: 4, fd: a.fd, flags: DATAMATCH | DEASSIGN, datamatch: 9n }),
    ).toThrow(code('ENOENT'));
  });
  it('§3 deassign: fd must be an eventfd (EBADF / EINVAL)', () => {
    const { ioeventfds } = setup();
    expect(() => ioeventfds.ioeventfd({ addr: 0n, len: 4, fd: 0x7fff_fff0, flags: DEASSIGN })).toThrow(
      code('EBADF'),
    );
    const fd = openSync('/dev/null', 'r');
    try {
      expect(() => ioeventfds.ioeventfd({ addr: 0n, len: 4, fd, flags: DEASSIGN })).toThrow(code('EINVAL'));
    } finally {
      closeSync(fd);
    }
  });
  it('§3 deassign of a len-0 MMIO ioeventfd removes it from both buses', () => {
    const { ioeventfds, buses } = setup();
    using a = new SoftEventFd();
    ioeventfds.ioeventfd({ addr: 0x3000n, len: 0, fd: a.fd });
    ioeventfds.ioeventfd({ addr: 0x3000n, len: 0, fd: a.fd, flags: DEASSIGN });
    expect(buses.mmio.size + buses.fastMmio.size).toBe(0);
  });
  it('§3 VM teardown releases every ioeventfd', () => {
    const { ioeventfds, buses } = setup();
    using a = new SoftEventFd();
    ioeventfds.ioeventfd({ addr: 0x3000n, len: 0, fd: a.fd });
    ioeventfds.ioeventfd({ addr: 0x60n, len: 1, fd: a.fd, flags: PIO });
    ioeventfds.close();
    expect(buses.mmio.size + buses.fastMmio.size + buses.pio.size).toBe(0);
    expect(ioeventfds.count).toBe(0);
  });
});
