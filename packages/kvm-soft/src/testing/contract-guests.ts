/**
 * SoftKvm's contract-suite guests: the scenario programs of
 * `ContractGuests`, written as TypeScript guest programs.
 */
import { closeSync, openSync } from 'node:fs';
import { SoftEventFd } from '@rxvmm/eventfd';
import type { Vcpu } from '@rxvmm/kvm';
import {
  type BackendFixture,
  type ContractGuests,
  DONE_PORT,
  READY_REPORT,
  REPORT_PORT,
} from '@rxvmm/kvm-contract';
import type { GuestProgram } from '../guest.js';
import { SoftKvm } from '../soft-kvm.js';
import { SoftVcpu } from '../soft-vcpu.js';

function load(vcpu: Vcpu, program: GuestProgram): void {
  if (!(vcpu instanceof SoftVcpu)) throw new TypeError('SoftKvm guests run on SoftKvm vCPUs only');
  vcpu.load(program);
}

export const softContractGuests: ContractGuests = {
  mmioWriter(_vm, vcpu, { addr, len, value, count }) {
    load(vcpu, function* (g) {
      for (let i = 0; i < count; i++) yield* g.mmioWrite(addr, len, value);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
  },
  pioWriter(_vm, vcpu, { addr, len, value, count }) {
    load(vcpu, function* (g) {
      for (let i = 0; i < count; i++) yield* g.pioOut(Number(addr), len, value);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
  },
  mmioReader(_vm, vcpu, { addr, len }) {
    load(vcpu, function* (g) {
      const value = yield* g.mmioRead(addr, len);
      yield* g.pioOut(REPORT_PORT, 4, value & 0xffff_ffffn);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
  },
  pioReader(_vm, vcpu, { addr, len }) {
    load(vcpu, function* (g) {
      const value = yield* g.pioIn(Number(addr), len);
      yield* g.pioOut(REPORT_PORT, 4, value);
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
  },
  interruptWaiter(_vm, vcpu, { count, ioapicPin, vector, level, ready }) {
    load(vcpu, function* (g) {
      let taken = 0;
      // The "IDT": every interrupt reports its vector and EOIs the local APIC.
      g.setInterruptHandler(function* (v) {
        yield* g.pioOut(REPORT_PORT, 4, v);
        yield* g.eoi();
        taken++;
      });
      yield* g.enableApic({ maskLint0: true });
      if (ioapicPin !== undefined && ioapicPin <= 23)
        yield* g.ioapicRoute(ioapicPin, { vector, level: level === true, dest: 0 });
      if (ready) yield* g.pioOut(REPORT_PORT, 4, READY_REPORT);
      while (true) {
        g.cli();
        if (taken >= count) break;
        yield* g.waitForInterrupt(); // sti; hlt
      }
      yield* g.pioOut(DONE_PORT, 1, 0);
    });
  },
};

/** The contract fixture for SoftKvm. */
export const softKvmFixture: BackendFixture = {
  name: 'SoftKvm',
  open: () => new SoftKvm(),
  createEventFd: (options) => new SoftEventFd(options),
  openNonEventFd: () => {
    const fd = openSync('/dev/null', 'r');
    return { fd, close: () => closeSync(fd) };
  },
  guests: softContractGuests,
};
