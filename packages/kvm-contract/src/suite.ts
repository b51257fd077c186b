/**
 * The KVM backend contract suite: one set of tests, run against every backend
 * (SoftKvm in @rxvmm/kvm-soft, /dev/kvm in @rxvmm/kvm-linux). Each test names the
 * rule of docs/SEMANTICS.md it checks (§2 io bus, §3 ioeventfd, §4 irqfd, §5 GSI
 * routing, §6 other ioctls and exits); assertions are errno for errno.
 *
 * Interrupt scenarios never block in a sleeping vCPU: signals are sent before
 * the guest runs or at its READY report (an exit), and "nothing was injected"
 * is shown with a lower-priority probe MSI that the guest takes instead.
 */
import { type ErrnoCode, isErrno } from '@rxvmm/errno';
import {
  IOEVENTFD_FLAG_DATAMATCH as DATAMATCH,
  IOEVENTFD_FLAG_DEASSIGN as DEASSIGN,
  IRQCHIP_IOAPIC,
  IRQCHIP_PIC_MASTER,
  IRQCHIP_PIC_SLAVE,
  IRQFD_FLAG_DEASSIGN,
  IRQFD_FLAG_RESAMPLE,
  type IrqRoutingEntry,
  type Kvm,
  IOEVENTFD_FLAG_PIO as PIO,
  type Vcpu,
  type Vm,
} from '@rxvmm/kvm';
import { afterEach, describe, expect, it } from 'vitest';
import { drive } from './drive.js';
import type { ContractEventFd } from './eventfd-ref.js';
import { type BackendFixture, CONTRACT_MMIO_BASE, CONTRACT_RAM_SIZE } from './fixture.js';

const errno = (code: ErrnoCode) => expect.objectContaining({ code });
/**
 * Lets queued kernel-side work run (irqfd injection and hang-up shutdown are
 * workqueue items on Linux). Not a timing assertion: a pause long enough for
 * the kernel's worker, generous for a loaded machine.
 */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 50));
const msiTo = (vector: number) => ({ addressLo: 0xfee0_0000, addressHi: 0, data: vector });
const msiRoute = (gsi: number, vector: number): IrqRoutingEntry => ({ gsi, type: 'msi', ...msiTo(vector) });
const isEagain = (efd: ContractEventFd) => {
  try {
    efd.read();
    return false;
  } catch (error) {
    return isErrno(error, 'EAGAIN');
  }
};

/** Declares the contract suite (vitest `describe`/`it`) for one backend: every rule of docs/SEMANTICS.md it covers, errno for errno. */
export function describeKvmContract(fixture: BackendFixture): void {
  describe(`KVM backend contract: ${fixture.name}`, () => {
    const cleanups: (() => void)[] = [];
    afterEach(() => {
      for (const fn of cleanups.splice(0).reverse()) {
        try {
          fn();
        } catch {
          // best effort
        }
      }
    });

    function open(options: { irqchip?: boolean } = {}): { kvm: Kvm; vm: Vm; vcpu: (id?: number) => Vcpu } {
      const kvm = fixture.open();
      cleanups.push(() => kvm.close());
      const vm = kvm.createVm();
      cleanups.push(() => vm.close());
      vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: CONTRACT_RAM_SIZE });
      if (options.irqchip) vm.createIrqChip();
      let next = 0;
      return {
        kvm,
        vm,
        vcpu: (id = next++) => {
          const v = vm.createVcpu(id);
          cleanups.push(() => v.close());
          return v;
        },
      };
    }

    function efd(options: { initval?: number; nonblock?: boolean } = {}): ContractEventFd {
      const e = fixture.createEventFd({ nonblock: true, ...options });
      cleanups.push(() => e.close());
      return e;
    }

    function nonEventFd(): number {
      const f = fixture.openNonEventFd();
      cleanups.push(() => f.close());
      return f.fd;
    }

    /** An fd number that is certainly closed. */
    function closedFd(): number {
      const e = fixture.createEventFd();
      const fd = e.fd;
      e.close();
      return fd;
    }

    const MMIO = CONTRACT_MMIO_BASE;

    describe('system (§6)', () => {
      it('§6 KVM_GET_API_VERSION is 12; ioeventfd, irqfd, routing, MSI capabilities', () => {
        const { kvm } = open();
        expect(kvm.apiVersion()).toBe(12);
        for (const cap of [
          'irqchip',
          'irqfd',
          'irqfd-resample',
          'ioeventfd',
          'irq-routing',
          'signal-msi',
          'user-memory',
        ] as const) {
          expect(kvm.checkExtension(cap)).toBe(true);
        }
      });
    });

    describe('exits and their answers (§6)', () => {
      it('§6 KVM_EXIT_MMIO write: address, length and little-endian data, once per access', async () => {
        const { vm, vcpu } = open();
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x10n, len: 4, value: 0x1122_3344n, count: 2 });
        const { exits } = await drive(v);
        expect(exits).toEqual([
          {
            kind: 'mmio',
            isWrite: true,
            addr: MMIO + 0x10n,
            len: 4,
            data: Uint8Array.of(0x44, 0x33, 0x22, 0x11),
          },
          {
            kind: 'mmio',
            isWrite: true,
            addr: MMIO + 0x10n,
            len: 4,
            data: Uint8Array.of(0x44, 0x33, 0x22, 0x11),
          },
        ]);
      });
      it('§6 KVM_EXIT_MMIO read: the VMM answer written into data reaches the guest on the next run', async () => {
        const { vm, vcpu } = open();
        for (const len of [1, 2, 4, 8]) {
          const v = vcpu();
          fixture.guests.mmioReader(vm, v, { addr: MMIO + 0x20n, len });
          const { reports, exits } = await drive(v, { answer: () => 0x0102_0304_a1b2_c3d4n });
          expect(exits).toEqual([
            { kind: 'mmio', isWrite: false, addr: MMIO + 0x20n, len, data: expect.any(Uint8Array) },
          ]);
          const mask = len >= 4 ? 0xffff_ffffn : (1n << BigInt(8 * len)) - 1n;
          expect(reports).toEqual([Number(0xa1b2_c3d4n & mask)]);
        }
      });
      it('§6 KVM_EXIT_IO out: port, size, count 1, data', async () => {
        const { vm, vcpu } = open();
        const v = vcpu();
        fixture.guests.pioWriter(vm, v, { addr: 0x510n, len: 2, value: 0xbeefn, count: 1 });
        const { exits } = await drive(v);
        expect(exits).toEqual([
          { kind: 'io', direction: 'out', port: 0x510, size: 2, count: 1, data: Uint8Array.of(0xef, 0xbe) },
        ]);
      });
      it('§6 KVM_EXIT_IO in: the answer reaches the guest', async () => {
        const { vm, vcpu } = open();
        const v = vcpu();
        fixture.guests.pioReader(vm, v, { addr: 0x512n, len: 4 });
        const { reports, exits } = await drive(v, { answer: () => 0xcafe_f00dn });
        expect(exits).toMatchObject([{ kind: 'io', direction: 'in', port: 0x512, size: 4, count: 1 }]);
        expect(reports).toEqual([0xcafe_f00d]);
      });
      it('§6 KVM_EXIT_HLT only without an in-kernel irqchip', async () => {
        const { vm, vcpu } = open();
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x40, ready: true });
        const { exits } = await drive(v, { until: 'hlt' });
        expect(exits.at(-1)).toEqual({ kind: 'hlt' });
      });
    });

    describe('ioeventfd assign validation (§3, in the kernel order)', () => {
      it('§3 len not in {0,1,2,4,8}: EINVAL', () => {
        const { vm } = open();
        const e = efd();
        for (const len of [3, 5, 6, 16])
          expect(() => vm.ioeventfd({ addr: MMIO, len, fd: e })).toThrow(errno('EINVAL'));
      });
      it('§3 addr + len wraps 2^64: EINVAL', () => {
        const { vm } = open();
        const e = efd();
        expect(() => vm.ioeventfd({ addr: 0xffff_ffff_ffff_fffen, len: 4, fd: e })).toThrow(errno('EINVAL'));
        expect(() => vm.ioeventfd({ addr: 0xffff_ffff_ffff_ffffn, len: 1, fd: e })).toThrow(errno('EINVAL'));
      });
      it('§3 a flag outside KVM_IOEVENTFD_VALID_FLAG_MASK (0x1f): EINVAL; bit 4 (nr_fast_mmio) is accepted', () => {
        const { vm } = open();
        const e = efd();
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: e, flags: 1 << 5 })).toThrow(errno('EINVAL'));
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: e, flags: 1 << 30 })).toThrow(errno('EINVAL'));
        // The live kernel's mask is (1 << kvm_ioeventfd_flag_nr_max) - 1 = 0x1f (docs/SEMANTICS.md §3).
        vm.ioeventfd({ addr: MMIO, len: 4, fd: e, flags: 1 << 4 });
      });
      it('§3 len 0 with DATAMATCH: EINVAL; len 0 with PIO is accepted', () => {
        const { vm } = open();
        const e = efd();
        expect(() => vm.ioeventfd({ addr: MMIO, len: 0, fd: e, flags: DATAMATCH, datamatch: 1n })).toThrow(
          errno('EINVAL'),
        );
        vm.ioeventfd({ addr: 0x520n, len: 0, fd: e, flags: PIO });
      });
      it('§3 fd not open: EBADF; open but not an eventfd: EINVAL', () => {
        const { vm } = open();
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: closedFd() })).toThrow(errno('EBADF'));
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: nonEventFd() })).toThrow(errno('EINVAL'));
      });
      it('§3 a datamatch the u64 field cannot hold: EINVAL on assign and deassign, never wrapped', () => {
        const { vm } = open();
        const e = efd();
        for (const datamatch of [1n << 64n, (1n << 64n) + 7n, -1n]) {
          for (const flags of [DATAMATCH, DATAMATCH | DEASSIGN, 0]) {
            expect(() => vm.ioeventfd({ addr: MMIO, len: 8, fd: e, flags, datamatch })).toThrow(
              errno('EINVAL'),
            );
          }
        }
        // Nothing was assigned: the values a wrap would have given (0, 7) are free, and 2^64 - 1 is valid.
        vm.ioeventfd({ addr: MMIO, len: 8, fd: e, flags: DATAMATCH, datamatch: 0n });
        vm.ioeventfd({ addr: MMIO, len: 8, fd: e, flags: DATAMATCH, datamatch: 7n });
        vm.ioeventfd({ addr: MMIO, len: 8, fd: e, flags: DATAMATCH, datamatch: (1n << 64n) - 1n });
      });
      it('§3 argument checks come before the fd check (bad len with a closed fd: EINVAL)', () => {
        const { vm } = open();
        expect(() => vm.ioeventfd({ addr: MMIO, len: 3, fd: closedFd() })).toThrow(errno('EINVAL'));
        expect(() => vm.ioeventfd({ addr: MMIO, len: 0, fd: closedFd(), flags: DATAMATCH })).toThrow(
          errno('EINVAL'),
        );
      });
    });

    describe('ioeventfd collisions (§3)', () => {
      const cases: [string, [number, number, bigint], [number, number, bigint], boolean][] = [
        ['same address and length, both wildcard', [4, 0, 0n], [4, 0, 0n], true],
        ['same length, one wildcard', [4, DATAMATCH, 1n], [4, 0, 0n], true],
        ['same length, equal datamatch', [4, DATAMATCH, 7n], [4, DATAMATCH, 7n], true],
        ['same length, different datamatch', [4, DATAMATCH, 7n], [4, DATAMATCH, 8n], false],
        ['either length 0', [0, 0, 0n], [4, DATAMATCH, 1n], true],
        ['either length 0 (other order)', [2, 0, 0n], [0, 0, 0n], true],
        ['different non-zero lengths', [2, 0, 0n], [4, 0, 0n], false],
      ];
      for (const [name, [l1, f1, d1], [l2, f2, d2], collides] of cases) {
        it(`§3 collision rule: ${name} -> ${collides ? 'EEXIST' : 'both assigned'}`, () => {
          const { vm } = open();
          const a = efd();
          const b = efd();
          vm.ioeventfd({ addr: MMIO, len: l1, fd: a, flags: f1, datamatch: d1 });
          const second = () => vm.ioeventfd({ addr: MMIO, len: l2, fd: b, flags: f2, datamatch: d2 });
          if (collides) expect(second).toThrow(errno('EEXIST'));
          else second();
        });
      }
      it('§3 the eventfd does not matter; an address inside another range and the other bus do not collide', () => {
        const { vm } = open();
        const a = efd();
        vm.ioeventfd({ addr: MMIO, len: 4, fd: a });
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: a })).toThrow(errno('EEXIST'));
        vm.ioeventfd({ addr: MMIO + 2n, len: 2, fd: a });
        vm.ioeventfd({ addr: MMIO, len: 4, fd: a, flags: PIO });
      });
    });

    describe('ioeventfd matching through a vCPU (§2, §3)', () => {
      it('§3 wildcard MMIO ioeventfd: each matching write signals +1 and is absorbed (no exit)', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x50n, len: 4, fd: e });
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x50n, len: 4, value: 9n, count: 3 });
        const { exits } = await drive(v);
        expect(exits).toEqual([]);
        expect(e.read()).toBe(3n);
      });
      it('§3 DATAMATCH: the matching value is absorbed, another value exits and does not signal', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x50n, len: 4, fd: e, flags: DATAMATCH, datamatch: 1n });
        const v1 = vcpu();
        fixture.guests.mmioWriter(vm, v1, { addr: MMIO + 0x50n, len: 4, value: 1n, count: 2 });
        expect((await drive(v1)).exits).toEqual([]);
        expect(e.read()).toBe(2n);
        const v2 = vcpu();
        fixture.guests.mmioWriter(vm, v2, { addr: MMIO + 0x50n, len: 4, value: 2n, count: 1 });
        expect((await drive(v2)).exits).toMatchObject([
          { kind: 'mmio', isWrite: true, addr: MMIO + 0x50n, len: 4 },
        ]);
        expect(isEagain(e)).toBe(true);
      });
      it('§3 the access length must equal the ioeventfd length', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x50n, len: 4, fd: e });
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x50n, len: 2, value: 1n, count: 1 });
        expect((await drive(v)).exits).toMatchObject([{ kind: 'mmio', len: 2 }]);
        expect(isEagain(e)).toBe(true);
      });
      it('§3 DATAMATCH compares the value written at the access length (len 1, 2, 8)', async () => {
        const { vm, vcpu } = open();
        for (const [len, value] of [
          [1, 0xa5n],
          [2, 0xbeefn],
          [8, 0x1122_3344_5566_7788n],
        ] as const) {
          const e = efd();
          const addr = MMIO + 0x100n * BigInt(len);
          vm.ioeventfd({ addr, len, fd: e, flags: DATAMATCH, datamatch: value });
          const v = vcpu();
          fixture.guests.mmioWriter(vm, v, { addr, len, value, count: 1 });
          expect((await drive(v)).exits).toEqual([]);
          expect(e.read()).toBe(1n);
        }
      });
      it('§3 len 0 MMIO (fast MMIO bus): a write of any length at that address is absorbed', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x80n, len: 0, fd: e });
        for (const len of [1, 2, 4, 8]) {
          const v = vcpu();
          fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x80n, len, value: 5n, count: 1 });
          expect((await drive(v)).exits).toEqual([]);
        }
        expect(e.read()).toBe(4n);
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x84n, len: 4, value: 5n, count: 1 });
        expect((await drive(v)).exits).toHaveLength(1);
      });
      it('§3 PIO ioeventfds: a matching out is absorbed; len 0 on PIO matches any size at that port', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        const z = efd();
        vm.ioeventfd({ addr: 0x530n, len: 2, fd: e, flags: PIO | DATAMATCH, datamatch: 0x1234n });
        vm.ioeventfd({ addr: 0x540n, len: 0, fd: z, flags: PIO });
        const v1 = vcpu();
        fixture.guests.pioWriter(vm, v1, { addr: 0x530n, len: 2, value: 0x1234n, count: 2 });
        expect((await drive(v1)).exits).toEqual([]);
        expect(e.read()).toBe(2n);
        for (const len of [1, 2, 4]) {
          const v = vcpu();
          fixture.guests.pioWriter(vm, v, { addr: 0x540n, len, value: 1n, count: 1 });
          expect((await drive(v)).exits).toEqual([]);
        }
        expect(z.read()).toBe(3n);
      });
      it('§2 a non-matching ioeventfd declines and the bus offers the write to the next one', async () => {
        const { vm, vcpu } = open();
        const one = efd();
        const two = efd();
        vm.ioeventfd({ addr: MMIO + 0x60n, len: 4, fd: one, flags: DATAMATCH, datamatch: 1n });
        vm.ioeventfd({ addr: MMIO + 0x60n, len: 4, fd: two, flags: DATAMATCH, datamatch: 2n });
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x60n, len: 4, value: 2n, count: 1 });
        expect((await drive(v)).exits).toEqual([]);
        expect(isEagain(one)).toBe(true);
        expect(two.read()).toBe(1n);
      });
      it('§3 guest reads are never handled by an ioeventfd (the read exits and gets its answer)', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x70n, len: 4, fd: e });
        const v = vcpu();
        fixture.guests.mmioReader(vm, v, { addr: MMIO + 0x70n, len: 4 });
        const { exits, reports } = await drive(v, { answer: () => 77n });
        expect(exits).toMatchObject([{ kind: 'mmio', isWrite: false, addr: MMIO + 0x70n }]);
        expect(reports).toEqual([77]);
        expect(isEagain(e)).toBe(true);
      });
      it('§2 ioeventfds are not counted against the 1000-device bus limit (1100 on one bus)', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        for (let i = 0; i < 1100; i++) vm.ioeventfd({ addr: MMIO + BigInt(i * 8), len: 4, fd: e });
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 1099n * 8n, len: 4, value: 0n, count: 1 });
        expect((await drive(v)).exits).toEqual([]);
        expect(e.read()).toBe(1n);
      });
    });

    describe('ioeventfd deassign (§3)', () => {
      it('§3 deassign needs the same bus, eventfd, address, length, wildcard-ness and datamatch; none: ENOENT', () => {
        const { vm } = open();
        const a = efd();
        const b = efd();
        vm.ioeventfd({ addr: MMIO, len: 4, fd: a, flags: DATAMATCH, datamatch: 9n });
        for (const args of [
          { addr: MMIO, len: 4, fd: b, flags: DATAMATCH | DEASSIGN, datamatch: 9n },
          { addr: MMIO, len: 4, fd: a, flags: DATAMATCH | DEASSIGN, datamatch: 8n },
          { addr: MMIO, len: 4, fd: a, flags: DEASSIGN },
          { addr: MMIO, len: 2, fd: a, flags: DATAMATCH | DEASSIGN, datamatch: 9n },
          { addr: MMIO + 4n, len: 4, fd: a, flags: DATAMATCH | DEASSIGN, datamatch: 9n },
          { addr: MMIO, len: 4, fd: a, flags: PIO | DATAMATCH | DEASSIGN, datamatch: 9n },
        ]) {
          expect(() => vm.ioeventfd(args)).toThrow(errno('ENOENT'));
        }
        vm.ioeventfd({ addr: MMIO, len: 4, fd: a, flags: DATAMATCH | DEASSIGN, datamatch: 9n });
        expect(() =>
          vm.ioeventfd({ addr: MMIO, len: 4, fd: a, flags: DATAMATCH | DEASSIGN, datamatch: 9n }),
        ).toThrow(errno('ENOENT'));
      });
      it('§3 deassign: fd not open EBADF, not an eventfd EINVAL', () => {
        const { vm } = open();
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: closedFd(), flags: DEASSIGN })).toThrow(
          errno('EBADF'),
        );
        expect(() => vm.ioeventfd({ addr: MMIO, len: 4, fd: nonEventFd(), flags: DEASSIGN })).toThrow(
          errno('EINVAL'),
        );
      });
      it('§3 after deassign the write exits again (len 0 MMIO: from both buses)', async () => {
        const { vm, vcpu } = open();
        const e = efd();
        vm.ioeventfd({ addr: MMIO + 0x90n, len: 0, fd: e });
        vm.ioeventfd({ addr: MMIO + 0x90n, len: 0, fd: e, flags: DEASSIGN });
        const v = vcpu();
        fixture.guests.mmioWriter(vm, v, { addr: MMIO + 0x90n, len: 4, value: 1n, count: 1 });
        expect((await drive(v)).exits).toHaveLength(1);
        expect(isEagain(e)).toBe(true);
        vm.ioeventfd({ addr: MMIO + 0x90n, len: 0, fd: e }); // assignable again
      });
    });

    describe('irqfd assign/deassign errno (§4)', () => {
      it('§4 a flag outside DEASSIGN|RESAMPLE: EINVAL', () => {
        const { vm } = open({ irqchip: true });
        expect(() => vm.irqfd({ fd: efd(), gsi: 5, flags: 1 << 2 })).toThrow(errno('EINVAL'));
      });
      it('§4 assign before the VM has an in-kernel irqchip: EINVAL', () => {
        const { vm } = open();
        expect(() => vm.irqfd({ fd: efd(), gsi: 5 })).toThrow(errno('EINVAL'));
      });
      it('§4 fd not open EBADF, not an eventfd EINVAL; with RESAMPLE the same for resamplefd', () => {
        const { vm } = open({ irqchip: true });
        expect(() => vm.irqfd({ fd: closedFd(), gsi: 5 })).toThrow(errno('EBADF'));
        expect(() => vm.irqfd({ fd: nonEventFd(), gsi: 5 })).toThrow(errno('EINVAL'));
        expect(() =>
          vm.irqfd({ fd: efd(), gsi: 5, flags: IRQFD_FLAG_RESAMPLE, resamplefd: closedFd() }),
        ).toThrow(errno('EBADF'));
        expect(() =>
          vm.irqfd({ fd: efd(), gsi: 5, flags: IRQFD_FLAG_RESAMPLE, resamplefd: nonEventFd() }),
        ).toThrow(errno('EINVAL'));
      });
      it('§4 RESAMPLE without a resamplefd: EBADF (it is -1, never fd 0), and nothing is bound', () => {
        const { vm } = open({ irqchip: true });
        const e = efd();
        expect(() => vm.irqfd({ fd: e, gsi: 5, flags: IRQFD_FLAG_RESAMPLE })).toThrow(errno('EBADF'));
        vm.irqfd({ fd: e, gsi: 5, flags: IRQFD_FLAG_RESAMPLE, resamplefd: efd() });
      });
      it('§4 an eventfd already bound to any GSI of the VM: EBUSY; several eventfds may target one GSI', () => {
        const { vm } = open({ irqchip: true });
        const a = efd();
        vm.irqfd({ fd: a, gsi: 5 });
        expect(() => vm.irqfd({ fd: a, gsi: 5 })).toThrow(errno('EBUSY'));
        expect(() => vm.irqfd({ fd: a, gsi: 6 })).toThrow(errno('EBUSY'));
        vm.irqfd({ fd: efd(), gsi: 5 });
        vm.irqfd({ fd: efd(), gsi: 5 });
      });
      it('§4 any GSI number is accepted at assign time, with or without a route', () => {
        const { vm } = open({ irqchip: true });
        vm.irqfd({ fd: efd(), gsi: 100 });
        vm.irqfd({ fd: efd(), gsi: 4095 });
        vm.irqfd({ fd: efd(), gsi: 5000 });
      });
      it('§4 deassign: fd must be an eventfd (EBADF / EINVAL); deassigning nothing succeeds', () => {
        const { vm } = open({ irqchip: true });
        expect(() => vm.irqfd({ fd: closedFd(), gsi: 5, flags: IRQFD_FLAG_DEASSIGN })).toThrow(
          errno('EBADF'),
        );
        expect(() => vm.irqfd({ fd: nonEventFd(), gsi: 5, flags: IRQFD_FLAG_DEASSIGN })).toThrow(
          errno('EINVAL'),
        );
        const a = efd();
        vm.irqfd({ fd: a, gsi: 5, flags: IRQFD_FLAG_DEASSIGN });
        vm.irqfd({ fd: a, gsi: 5 });
        vm.irqfd({ fd: a, gsi: 6, flags: IRQFD_FLAG_DEASSIGN }); // other GSI: nothing, still 0
        expect(() => vm.irqfd({ fd: a, gsi: 7 })).toThrow(errno('EBUSY')); // still bound to 5
        vm.irqfd({ fd: a, gsi: 5, flags: IRQFD_FLAG_DEASSIGN });
        vm.irqfd({ fd: a, gsi: 7 }); // free again
      });
    });

    describe('irqfd injection seen by the guest (§4, §5)', () => {
      it('§4/§5 edge irqfd on a default route (GSI 5 -> IOAPIC pin 5): the guest takes the vector; the irqfd consumed the counter', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        vm.irqfd({ fd: e, gsi: 5 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x40, ioapicPin: 5, ready: true });
        const { reports } = await drive(v, { onReady: () => e.write(1n) });
        expect(reports).toEqual([0x40]);
        expect(isEagain(e)).toBe(true);
      });
      it('§5 default table: GSI 16-23 go to IOAPIC pins 16-23', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        vm.irqfd({ fd: e, gsi: 20 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x48, ioapicPin: 20, ready: true });
        expect((await drive(v, { onReady: () => e.write(1n) })).reports).toEqual([0x48]);
      });
      it('§4 MSI route: delivered directly to the APIC', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        const e = efd();
        vm.irqfd({ fd: e, gsi: 40 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x41, ready: true });
        expect((await drive(v, { onReady: () => e.write(1n) })).reports).toEqual([0x41]);
      });
      it('§4 signals before the injection runs coalesce; the irqfd consumes the whole counter', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        const e = efd();
        vm.irqfd({ fd: e, gsi: 40 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x41, ready: true });
        const { reports } = await drive(v, {
          onReady: () => {
            e.write(1n);
            e.write(2n);
            e.write(3n);
          },
        });
        expect(reports).toEqual([0x41]);
        expect(isEagain(e)).toBe(true);
      });
      it('§4 an eventfd already signalled when assigned injects at once', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x42)]);
        const e = efd({ initval: 1 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x42, ready: true });
        expect((await drive(v, { onReady: () => vm.irqfd({ fd: e, gsi: 40 }) })).reports).toEqual([0x42]);
      });
      it("§4/§5 route changes are followed: the irqfd injects through the GSI's current route", async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        const e = efd();
        vm.irqfd({ fd: e, gsi: 40 });
        vm.setGsiRouting([msiRoute(40, 0x43)]);
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x43, ready: true });
        expect((await drive(v, { onReady: () => e.write(1n) })).reports).toEqual([0x43]);
      });
      it('§4 a GSI with no route drops the signal silently; the irqfd stays and follows a later route', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        vm.irqfd({ fd: e, gsi: 41 }); // no route for 41 in the default table
        e.write(1n);
        expect(isEagain(e)).toBe(true); // consumed by the irqfd
        await settle();
        vm.setGsiRouting([msiRoute(41, 0x44)]);
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x44, ready: true });
        expect((await drive(v, { onReady: () => e.write(1n) })).reports).toEqual([0x44]);
      });
      it('§4 after deassign returns, signals are no longer consumed or injected', async () => {
        const { vm } = open({ irqchip: true });
        const e = efd();
        vm.irqfd({ fd: e, gsi: 5 });
        vm.irqfd({ fd: e, gsi: 5, flags: IRQFD_FLAG_DEASSIGN });
        e.write(1n);
        await settle();
        expect(e.read()).toBe(1n);
      });
    });

    describe('level-triggered irqfd with resample (§4)', () => {
      it('§4 RESAMPLE: the guest EOI de-asserts the line and signals the resamplefd', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        const r = efd();
        vm.irqfd({ fd: e, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x50,
          ioapicPin: 10,
          level: true,
          ready: true,
        });
        const { reports } = await drive(v, { onReady: () => e.write(1n) });
        expect(reports).toEqual([0x50]);
        expect(r.read()).toBe(1n);
      });
      it('§4 RESAMPLE: a signal before the guest unmasks the level pin: at unmask the kernel resamples (resamplefd signalled, no stale interrupt); signalling again delivers', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        const r = efd();
        vm.irqfd({ fd: e, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
        e.write(1n);
        await settle();
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x50,
          ioapicPin: 10,
          level: true,
          ready: true,
        });
        let atUnmask = 0n;
        const { reports } = await drive(v, {
          onReady: () => {
            atUnmask = r.read(); // the unmask resampled the asserted line
            e.write(1n); // the device still wants service: signal again
          },
        });
        expect(atUnmask).toBe(1n);
        expect(reports).toEqual([0x50]);
        expect(r.read()).toBe(1n); // and the EOI resampled again
      });
      it('§4 RESAMPLE: every resampling irqfd of the GSI gets its resamplefd signalled', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const [e1, e2, r1, r2] = [efd(), efd(), efd(), efd()];
        vm.irqfd({ fd: e1, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r1 });
        vm.irqfd({ fd: e2, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r2 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x50,
          ioapicPin: 10,
          level: true,
          ready: true,
        });
        expect((await drive(v, { onReady: () => e1.write(1n) })).reports).toEqual([0x50]);
        expect(r1.read()).toBe(1n);
        expect(r2.read()).toBe(1n);
      });
      it('§4 the last resampling irqfd of a GSI going away de-asserts the line (probe MSI is taken instead)', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        const r = efd();
        vm.irqfd({ fd: e, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
        e.write(1n);
        await settle();
        vm.irqfd({ fd: e, gsi: 10, flags: IRQFD_FLAG_DEASSIGN });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x50,
          ioapicPin: 10,
          level: true,
          ready: true,
        });
        const { reports } = await drive(v, { onReady: () => void vm.signalMsi(msiTo(0x30)) });
        expect(reports).toEqual([0x30]);
      });
    });

    describe('irqfd hang-up and sources (§4, §6)', () => {
      it('§4 closing the eventfd detaches the irqfd by itself: a resampling one leaves its line de-asserted (probe MSI is taken)', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = fixture.createEventFd({ nonblock: true });
        const r = efd();
        vm.irqfd({ fd: e, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
        e.write(1n);
        await settle();
        e.close(); // hang-up
        await settle();
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x50,
          ioapicPin: 10,
          level: true,
          ready: true,
        });
        const { reports } = await drive(v, { onReady: () => void vm.signalMsi(msiTo(0x30)) });
        expect(reports).toEqual([0x30]);
        expect(isEagain(r)).toBe(true); // no resampler was left to notify at unmask
      });
      it('§4 several eventfds may target one GSI: each one injects', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        const a = efd();
        const b = efd();
        vm.irqfd({ fd: a, gsi: 40 });
        vm.irqfd({ fd: b, gsi: 40 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 2, vector: 0x41, ready: true });
        const { reports } = await drive(v, {
          onReady: () => a.write(1n),
          onReport: (_v, i) => (i === 0 ? b.write(1n) : undefined),
        });
        expect(reports).toEqual([0x41, 0x41]);
        expect(isEagain(a) && isEagain(b)).toBe(true);
      });
      it('§6 a GSI line is the OR of its sources: after the resample EOI, KVM_IRQ_LINE still holds it (re-delivered)', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const e = efd();
        const r = efd();
        vm.irqfd({ fd: e, gsi: 11, flags: IRQFD_FLAG_RESAMPLE, resamplefd: r });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 2,
          vector: 0x51,
          ioapicPin: 11,
          level: true,
          ready: true,
        });
        const { reports } = await drive(v, {
          onReady: async () => {
            e.write(1n);
            await settle();
            vm.setIrqLine(11, true);
          },
          onReport: (_v, i) => (i === 1 ? vm.setIrqLine(11, false) : undefined),
        });
        expect(reports).toEqual([0x51, 0x51]);
        expect(r.read()).toBeGreaterThanOrEqual(1n);
      });
    });

    describe('KVM_IRQ_LINE and KVM_SIGNAL_MSI (§6)', () => {
      it('§6 KVM_IRQ_LINE needs an in-kernel irqchip (ENXIO); KVM_SIGNAL_MSI and KVM_SET_GSI_ROUTING (EINVAL)', () => {
        const { vm } = open();
        expect(() => vm.setIrqLine(5, true)).toThrow(errno('ENXIO'));
        expect(() => vm.signalMsi(msiTo(0x40))).toThrow(errno('EINVAL'));
        expect(() => vm.setGsiRouting([])).toThrow(errno('EINVAL'));
      });
      it('§6 KVM_IRQ_LINE level on a level pin: delivered, and delivered again after EOI while still asserted', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setIrqLine(11, true);
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 2, vector: 0x51, ioapicPin: 11, level: true });
        // The second report happens inside the re-delivered interrupt's handler, before its EOI:
        // lowering the line there ends the re-delivery.
        const { reports } = await drive(v, {
          onReport: (_v, i) => (i === 1 ? vm.setIrqLine(11, false) : undefined),
        });
        expect(reports).toEqual([0x51, 0x51]);
      });
      it('§6 KVM_IRQ_LINE edge pin: a rising edge is delivered', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x52, ioapicPin: 12, ready: true });
        const { reports } = await drive(v, {
          onReady: () => {
            vm.setIrqLine(12, true);
            vm.setIrqLine(12, false);
          },
        });
        expect(reports).toEqual([0x52]);
      });
      it('§6 KVM_SIGNAL_MSI: > 0 when delivered; 0 while the APIC is software-disabled', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        const v = vcpu();
        expect(vm.signalMsi(msiTo(0x45))).toBe(0);
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x46, ready: true });
        let delivered = 0;
        const { reports } = await drive(v, {
          onReady: () => {
            delivered = vm.signalMsi(msiTo(0x46));
          },
        });
        expect(delivered).toBeGreaterThan(0);
        expect(reports).toEqual([0x46]);
      });
    });

    describe('GSI routing (§5)', () => {
      it('§5 flags != 0: EINVAL; nr > 4096: EINVAL; gsi >= 4096: EINVAL; unknown type: EINVAL', () => {
        const { vm } = open({ irqchip: true });
        expect(() => vm.setGsiRouting([], 1)).toThrow(errno('EINVAL'));
        const many = Array.from({ length: 4097 }, (_, i) => msiRoute(i % 4096, 0x40));
        expect(() => vm.setGsiRouting(many)).toThrow(errno('EINVAL'));
        expect(() => vm.setGsiRouting([msiRoute(4096, 0x40)])).toThrow(errno('EINVAL'));
        vm.setGsiRouting([msiRoute(4095, 0x40)]);
        expect(() => vm.setGsiRouting([{ gsi: 1, type: 99 }])).toThrow(errno('EINVAL'));
      });
      it('§5 pins: PIC 0-7 (8 EINVAL), IOAPIC 0-23 (24 EINVAL)', () => {
        const { vm } = open({ irqchip: true });
        vm.setGsiRouting([
          { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_PIC_MASTER, pin: 7 },
          { gsi: 2, type: 'irqchip', irqchip: IRQCHIP_PIC_SLAVE, pin: 7 },
          { gsi: 3, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 23 },
        ]);
        expect(() =>
          vm.setGsiRouting([{ gsi: 1, type: 'irqchip', irqchip: IRQCHIP_PIC_MASTER, pin: 8 }]),
        ).toThrow(errno('EINVAL'));
        expect(() =>
          vm.setGsiRouting([{ gsi: 1, type: 'irqchip', irqchip: IRQCHIP_PIC_SLAVE, pin: 8 }]),
        ).toThrow(errno('EINVAL'));
        expect(() =>
          vm.setGsiRouting([{ gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 24 }]),
        ).toThrow(errno('EINVAL'));
      });
      it('§5 one GSI: several irqchip entries only on different irqchips; an MSI entry must be alone', () => {
        const { vm } = open({ irqchip: true });
        vm.setGsiRouting([
          { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_PIC_MASTER, pin: 1 },
          { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 1 },
        ]);
        expect(() =>
          vm.setGsiRouting([
            { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 1 },
            { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 2 },
          ]),
        ).toThrow(errno('EINVAL'));
        expect(() =>
          vm.setGsiRouting([msiRoute(1, 0x40), { gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 2 }]),
        ).toThrow(errno('EINVAL'));
        expect(() =>
          vm.setGsiRouting([{ gsi: 1, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 2 }, msiRoute(1, 0x40)]),
        ).toThrow(errno('EINVAL'));
        expect(() => vm.setGsiRouting([msiRoute(1, 0x40), msiRoute(1, 0x41)])).toThrow(errno('EINVAL'));
      });
      it('§5 a rejected table changes nothing: the previous routes stay in force', async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        expect(() =>
          vm.setGsiRouting([
            msiRoute(40, 0x42),
            { gsi: 3, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 99 },
          ]),
        ).toThrow(errno('EINVAL'));
        const e = efd();
        vm.irqfd({ fd: e, gsi: 40 });
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, { count: 1, vector: 0x41, ready: true });
        expect((await drive(v, { onReady: () => e.write(1n) })).reports).toEqual([0x41]);
      });
      it("§5 the new table replaces the whole previous one (GSI 11's default route is gone: probe MSI is taken)", async () => {
        const { vm, vcpu } = open({ irqchip: true });
        vm.setGsiRouting([msiRoute(40, 0x41)]);
        const v = vcpu();
        fixture.guests.interruptWaiter(vm, v, {
          count: 1,
          vector: 0x60,
          ioapicPin: 11,
          level: true,
          ready: true,
        });
        const { reports } = await drive(v, {
          onReady: () => {
            vm.setIrqLine(11, true); // would be vector 0x60 through the default GSI 11 -> pin 11 route
            vm.signalMsi(msiTo(0x31));
          },
        });
        expect(reports).toEqual([0x31]);
        vm.setIrqLine(11, false);
      });
    });

    describe('VM wiring as plain data, for snapshots (Vm.wiring / restoreWiring)', () => {
      /** A VM wired the way a VMM with a virtio-mmio disk is, plus one of each other kind. */
      function wiredVm() {
        const { kvm, vm, vcpu } = open({ irqchip: true });
        vm.setMemoryRegion({ slot: 3, guestPhysAddr: 0x1000_0000n, size: 0x2000 });
        vm.setMemoryRegion({ slot: 4, guestPhysAddr: 0x2000_0000n, size: 0x1000 });
        vm.setMemoryRegion({ slot: 4, guestPhysAddr: 0n, size: 0 }); // deleted
        const kick = efd();
        const other = efd();
        const call = efd();
        const level = efd();
        const resample = efd();
        vm.setGsiRouting([
          msiRoute(24, 0x41),
          { gsi: 10, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 10 },
        ]);
        vm.ioeventfd({ addr: MMIO + 0x50n, len: 4, fd: kick, flags: DATAMATCH, datamatch: 0n });
        vm.ioeventfd({ addr: MMIO + 0x60n, len: 0, fd: other });
        vm.ioeventfd({ addr: 0x600n, len: 2, fd: other, flags: PIO });
        vm.ioeventfd({ addr: MMIO + 0x70n, len: 4, fd: other }); // deassigned below
        vm.ioeventfd({ addr: MMIO + 0x70n, len: 4, fd: other, flags: DEASSIGN });
        vm.irqfd({ fd: call, gsi: 24 });
        vm.irqfd({ fd: level, gsi: 10, flags: IRQFD_FLAG_RESAMPLE, resamplefd: resample });
        vm.irqfd({ fd: other, gsi: 24 });
        vm.irqfd({ fd: other, gsi: 24, flags: IRQFD_FLAG_DEASSIGN });
        return { kvm, vm, vcpu, fds: { kick, other, call, level, resample } };
      }

      it('§6 wiring() records each assignment as it succeeded (deassigned and deleted ones gone)', () => {
        const { vm, fds } = wiredVm();
        expect(() => vm.ioeventfd({ addr: MMIO + 0x50n, len: 3, fd: fds.kick })).toThrow(errno('EINVAL'));
        expect(vm.wiring()).toEqual({
          version: 1,
          memory: [
            { slot: 0, guestPhysAddr: '0', size: CONTRACT_RAM_SIZE, flags: 0 },
            { slot: 3, guestPhysAddr: String(0x1000_0000), size: 0x2000, flags: 0 },
          ],
          irqchip: true,
          gsiRouting: {
            entries: [msiRoute(24, 0x41), { gsi: 10, type: 'irqchip', irqchip: IRQCHIP_IOAPIC, pin: 10 }],
            flags: 0,
          },
          ioeventfds: [
            { addr: String(MMIO + 0x50n), len: 4, datamatch: '0', flags: DATAMATCH, eventfd: fds.kick.fd },
            { addr: String(MMIO + 0x60n), len: 0, datamatch: null, flags: 0, eventfd: fds.other.fd },
            { addr: String(0x600), len: 2, datamatch: null, flags: PIO, eventfd: fds.other.fd },
          ],
          irqfds: [
            { gsi: 24, flags: 0, eventfd: fds.call.fd, resamplefd: null },
            { gsi: 10, flags: IRQFD_FLAG_RESAMPLE, eventfd: fds.level.fd, resamplefd: fds.resample.fd },
          ],
        });
      });

      /** restoreWiring into a fresh VM of the same backend, every saved eventfd replaced by a new one. */
      function restoreInto(kvm: Kvm, saved: unknown) {
        const vm = kvm.createVm();
        cleanups.push(() => vm.close());
        const fresh = new Map<number, ContractEventFd>();
        vm.restoreWiring(JSON.parse(JSON.stringify(saved)), (savedFd) => {
          let e = fresh.get(savedFd);
          if (!e) {
            e = efd();
            fresh.set(savedFd, e);
          }
          return e;
        });
        return { vm, fresh };
      }

      it('§6 round trip: wiring → JSON → restoreWiring (new eventfds) → wiring() is the same, fds mapped', () => {
        const { kvm, vm } = wiredVm();
        const saved = vm.wiring();
        const { vm: restored, fresh } = restoreInto(kvm, saved);
        const mapped = JSON.parse(
          JSON.stringify(saved, (key, value) =>
            (key === 'eventfd' || key === 'resamplefd') && typeof value === 'number'
              ? fresh.get(value)!.fd
              : value,
          ),
        );
        expect(restored.wiring()).toEqual(mapped);
        expect(restored.memoryRegions().map((r) => [r.slot, r.guestPhysAddr, r.size])).toEqual([
          [0, 0n, CONTRACT_RAM_SIZE],
          [3, 0x1000_0000n, 0x2000],
        ]);
      });

      it('§3/§4 a restored VM behaves like the original: the doorbell signals the new kick eventfd, the new call eventfd interrupts', async () => {
        const { kvm, vm, fds } = wiredVm();
        const saved = vm.wiring();
        // One restored VM per guest: each runs on vCPU 0, the BSP (an AP waits for INIT/SIPI).
        const doorbell = restoreInto(kvm, saved);
        const kick = doorbell.fresh.get(fds.kick.fd)!;
        const writer = doorbell.vm.createVcpu(0);
        cleanups.push(() => writer.close());
        fixture.guests.mmioWriter(doorbell.vm, writer, { addr: MMIO + 0x50n, len: 4, value: 0n, count: 2 });
        expect((await drive(writer)).exits).toEqual([]);
        expect(kick.read()).toBe(2n);
        expect(isEagain(fds.kick)).toBe(true); // the original VM's eventfd saw nothing
        const interrupt = restoreInto(kvm, saved);
        const call = interrupt.fresh.get(fds.call.fd)!;
        const waiter = interrupt.vm.createVcpu(0);
        cleanups.push(() => waiter.close());
        fixture.guests.interruptWaiter(interrupt.vm, waiter, { count: 1, vector: 0x41, ready: true });
        expect((await drive(waiter, { onReady: () => call.write(1n) })).reports).toEqual([0x41]);
      });

      it('§6 a malformed wiring or a missing eventfd: EINVAL before any ioctl (the VM stays empty); a wired VM: EBUSY', () => {
        const { kvm, vm, fds } = wiredVm();
        const saved = JSON.parse(JSON.stringify(vm.wiring()));
        const fresh = () => {
          const v = kvm.createVm();
          cleanups.push(() => v.close());
          return v;
        };
        const any = () => efd();
        const hostile: unknown[] = [
          null,
          { ...saved, version: 2 },
          { ...saved, memory: [{ ...saved.memory[0], guestPhysAddr: 0 }] },
          { ...saved, ioeventfds: [{ ...saved.ioeventfds[0], datamatch: null }] },
          { ...saved, ioeventfds: [{ ...saved.ioeventfds[1], flags: DEASSIGN }] },
          { ...saved, irqfds: [{ ...saved.irqfds[1], resamplefd: null }] },
          { ...saved, gsiRouting: { entries: [{ gsi: 1, type: 'pci', pin: 1 }], flags: 0 } },
          { ...saved, irqchip: false },
        ];
        for (const w of hostile) {
          const v = fresh();
          expect(() => v.restoreWiring(w as never, any)).toThrow(errno('EINVAL'));
          expect(v.wiring()).toMatchObject({ memory: [], irqchip: false, ioeventfds: [], irqfds: [] });
        }
        const v = fresh();
        expect(() => v.restoreWiring(saved, (fd) => (fd === fds.kick.fd ? undefined : any()))).toThrow(
          errno('EINVAL'),
        );
        expect(v.memoryRegions()).toEqual([]);
        expect(() => vm.restoreWiring(saved, any)).toThrow(errno('EBUSY'));
      });
    });
  });
}
