#!/usr/bin/env node
// SoftKvm as a user gets it from npm: `scripts/check-packages.mjs` npm-installs the
// packed tarballs of @rxvmm/kvm-soft and its @rxvmm dependencies into a fresh
// project with no compiler on PATH, copies this file there and runs it:
//   --without-sys  after `npm install --omit=optional`: @rxvmm/sys (the native
//                  addon, an optional dependency of @rxvmm/eventfd) is absent;
//   --with-sys     after a plain `npm install`: sys came from its prebuilt binary.
// Either way a SoftKvm guest rings an ioeventfd doorbell on an in-memory eventfd:
// the eventfd is signalled and the vCPU does not exit for the write.
// One line per check; closing line `N passed, N failed`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const withSys = process.argv.includes('--with-sys');
if (withSys === process.argv.includes('--without-sys')) {
  console.error('usage: smoke-soft-kvm.mjs --with-sys | --without-sys');
  process.exit(2);
}

let passed = 0;
let failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) passed += 1;
  else failed += 1;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok || !detail ? '' : `: ${detail}`}`);
};
const attempt = (fn) => {
  try {
    return { value: fn() };
  } catch (error) {
    return { error };
  }
};

const sys = join(process.cwd(), 'node_modules/@rxvmm/sys');
check(`node_modules/@rxvmm/sys is ${withSys ? 'installed' : 'absent'}`, existsSync(sys) === withSys);
// node-gyp would have left build/: the addon must come from the prebuilt binary in the tarball.
if (withSys)
  check('@rxvmm/sys installed from its prebuild (nothing compiled)', !existsSync(join(sys, 'build')));

const { EventFd, SoftEventFd, nativeAvailable } = await import('@rxvmm/eventfd');
const { IOEVENTFD_FLAG_DATAMATCH } = await import('@rxvmm/kvm');
const { SoftKvm } = await import('@rxvmm/kvm-soft');

// The kernel eventfd: ENOSYS without the addon, a real fd with it.
check(`nativeAvailable is ${withSys}`, nativeAvailable === withSys);
const kernel = attempt(() => new EventFd());
if (withSys) {
  check('new EventFd() opens a kernel eventfd', kernel.value?.fd >= 0, kernel.error?.message);
  kernel.value?.close();
} else {
  check(
    "new EventFd() fails with code 'ENOSYS'",
    kernel.error?.code === 'ENOSYS',
    kernel.error ? `${kernel.error.code}: ${kernel.error.message}` : 'it did not fail',
  );
}

// The in-memory eventfd works either way.
const efd = new SoftEventFd();
efd.write(2n);
check('SoftEventFd counts (write 2n, read 2n)', efd.read() === 2n);
efd.close();

// A doorbell: the guest writes 1 to an ioeventfd address; KVM (here SoftKvm) signals
// the eventfd instead of exiting, so the first exit the VMM sees is the guest's "done".
const DOORBELL = 0xd000_0050n;
const DONE_PORT = 0x3f4;
const kvm = new SoftKvm();
const vm = kvm.createVm();
const kick = new SoftEventFd();
try {
  vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0n, size: 0x10000 });
  vm.ioeventfd({ addr: DOORBELL, len: 4, fd: kick, flags: IOEVENTFD_FLAG_DATAMATCH, datamatch: 1n });
  const vcpu = vm.createSoftVcpu(0);
  vcpu.load(function* (g) {
    yield* g.mmioWrite(DOORBELL, 4, 1);
    yield* g.pioOut(DONE_PORT, 1, 0);
  });
  const exit = vcpu.run();
  check(
    'the doorbell write causes no exit (the next exit is the guest reporting done)',
    exit.kind === 'io' && exit.port === DONE_PORT,
    JSON.stringify(exit, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
  );
  const signalled = attempt(() => kick.read());
  check(
    'the ioeventfd was signalled once',
    signalled.value === 1n,
    signalled.error?.message ?? `${signalled.value}`,
  );
} catch (error) {
  check('SoftKvm runs the doorbell guest', false, error?.stack ?? String(error));
} finally {
  kick.close();
  vm.close();
  kvm.close();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
