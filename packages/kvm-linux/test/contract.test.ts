/** The shared KVM backend contract suite, run against the kernel (/dev/kvm). */
import { describeKvmContract } from '@rxvmm/kvm-contract';
import { afterAll, afterEach, beforeEach, describe } from 'vitest';
import { kvmAvailable } from '../src/test-support/availability.js';
import { kvmLinuxFixture } from './fixture.js';
import { KvmRunWatchdog } from './watchdog.js';

describe.skipIf(!kvmAvailable)('kvm-linux', () => {
  // The suite runs vCPUs on this thread; a guest that never wakes would block it for good.
  const watchdog = kvmAvailable ? new KvmRunWatchdog() : undefined;
  beforeEach(() => watchdog?.arm(10_000));
  afterEach(() => watchdog?.disarm());
  afterAll(() => watchdog?.close());
  describeKvmContract(kvmLinuxFixture(watchdog));
});
