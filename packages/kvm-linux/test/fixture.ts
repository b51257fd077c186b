/**
 * The contract-suite fixture for /dev/kvm: kernel eventfds, and the
 * ContractGuests as real x86-64 programs (guest/*.S) entered in long mode.
 */
import { closeSync, openSync } from 'node:fs';
import { EventFd } from '@rxvmm/eventfd';
import type { Vcpu, Vm } from '@rxvmm/kvm';
import type { BackendFixture } from '@rxvmm/kvm-contract';
import { openKvm } from '../src/index.js';
import { type GuestParams, startGuest } from './guests.js';
import type { KvmRunWatchdog } from './watchdog.js';

/** The fixture; every vCPU it loads a guest into is registered with `watchdog`. */
export function kvmLinuxFixture(watchdog?: KvmRunWatchdog): BackendFixture {
  const load = (name: Parameters<typeof startGuest>[2]) => (vm: Vm, vcpu: Vcpu, p: GuestParams) => {
    watchdog?.watch(vcpu);
    startGuest(vm, vcpu, name, p);
  };
  return {
    name: '/dev/kvm',
    // The suite runs vCPUs on this thread on purpose (a watchdog worker kicks a guest that never wakes).
    open: () => openKvm('/dev/kvm', { mainThreadRun: 'allow' }),
    createEventFd: (options = {}) =>
      new EventFd({
        initval: options.initval ?? 0,
        semaphore: options.semaphore ?? false,
        nonblock: options.nonblock ?? false,
      }),
    openNonEventFd: () => {
      const fd = openSync('/dev/null', 'r');
      return { fd, close: () => closeSync(fd) };
    },
    guests: {
      mmioWriter: load('mmio-writer'),
      pioWriter: load('pio-writer'),
      mmioReader: load('mmio-reader'),
      pioReader: load('pio-reader'),
      interruptWaiter: (vm, vcpu, p) =>
        load('interrupt-waiter')(vm, vcpu, {
          count: p.count,
          vector: p.vector,
          ...(p.ioapicPin === undefined ? {} : { ioapicPin: p.ioapicPin }),
          level: p.level ?? false,
          ready: p.ready ?? false,
        }),
    },
  };
}
