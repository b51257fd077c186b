#!/usr/bin/env node
// Import smoke test of the PUBLISHED packages (as RxJS does for its build):
// every entry point of every @rxvmm package is imported by its bare name with
// Node's default conditions, so resolution goes through the packed
// package.json's `exports` (publishConfig applied, no `development` condition)
// into `dist/`, and a few named exports are checked to exist.
//
// It resolves `@rxvmm/*` from wherever it runs: `scripts/check-packages.mjs`
// copies it into a scratch consumer directory whose node_modules holds the
// unpacked tarballs. Run it there (or in any project that installed them).
// Closing line: `N passed, N failed`.

/** Entry point -> named exports that must be there, with their `typeof`. */
const entries = {
  '@rxvmm/errno': { errnoError: 'function', isErrno: 'function' },
  '@rxvmm/sys': { eventfd: 'function', read8: 'function', write8: 'function', close: 'function' },
  '@rxvmm/eventfd': { EventFd: 'function', SoftEventFd: 'function', signalEach: 'function' },
  '@rxvmm/eventfd/linux': { EventFd: 'function', nativeAvailable: 'boolean' },
  '@rxvmm/io-bus': { IoBus: 'function', bsearch: 'function' },
  '@rxvmm/ioeventfd': { IoEventFd: 'function', IoEventFds: 'function' },
  '@rxvmm/irqfd': { IrqFd: 'function', IrqFds: 'function', IrqRouter: 'function' },
  '@rxvmm/kvm': { IOEVENTFD_FLAG_DATAMATCH: 'number', IRQFD_FLAG_RESAMPLE: 'number', EXIT_MMIO: 'number' },
  '@rxvmm/kvm-soft': { SoftKvm: 'function', openSoftKvm: 'function' },
  '@rxvmm/kvm-soft/testing': { softKvmFixture: 'object' },
  '@rxvmm/kvm-contract': { describeKvmContract: 'function', drive: 'function' },
  '@rxvmm/kvm-linux': { openKvm: 'function', LinuxKvm: 'function', VcpuRunner: 'function' },
  '@rxvmm/virtio': { featureBit: 'function', queueSizeError: 'function', DeviceStatus: 'object' },
  '@rxvmm/guest-memory': { GuestMemory: 'function', GuestMemoryError: 'function' },
  '@rxvmm/virtio-ring': {
    SplitQueue: 'function',
    PackedQueue: 'function',
    openQueue: 'function',
    serveQueue: 'function',
    DeviceServer: 'function',
  },
  '@rxvmm/virtio-ring/testing': {
    MockSplitDriver: 'function',
    MockPackedDriver: 'function',
    EchoDevice: 'function',
  },
  '@rxvmm/virtio-mmio': { VirtioMmioTransport: 'function' },
  '@rxvmm/virtio-blk': { VirtioBlk: 'function', BlockRequestHandler: 'function', FileBackend: 'function' },
  '@rxvmm/vhost-user': {
    BackendSession: 'function',
    VhostUserFrontend: 'function',
    VhostUserServer: 'function',
  },
  '@rxvmm/vhost-user/testing': { MemfdRam: 'function', TestQueue: 'function' },
  '@rxvmm/snapshot': { openSnapshot: 'function', writeSnapshot: 'function', SnapshotError: 'function' },
  '@rxvmm/demo-vmm': { runDemo: 'function', parseOptions: 'function' },
  '@rxvmm/vhost-backend': { run: 'function', openBlkDevice: 'function' },
};

let passed = 0;
let failed = 0;
const fail = (what, why) => {
  failed += 1;
  console.log(`FAIL ${what}: ${why}`);
};

for (const [specifier, names] of Object.entries(entries)) {
  let mod;
  try {
    mod = await import(specifier);
  } catch (error) {
    fail(specifier, `import failed: ${error?.code ?? ''} ${error?.message ?? error}`);
    continue;
  }
  // Resolution must land in dist/, never in src/ (that is the development condition).
  const url = import.meta.resolve(specifier);
  if (!/\/dist\/.*\.js$/.test(url)) fail(specifier, `resolved outside dist/: ${url}`);
  for (const [name, type] of Object.entries(names)) {
    if (typeof mod[name] === type) passed += 1;
    else fail(`${specifier} ${name}`, `expected ${type}, got ${typeof mod[name]}`);
  }
}

// A behaviour check through the built code, not only the shape: the errno
// helper and the in-memory eventfd (pure JS) work from dist/.
try {
  const { errnoError } = await import('@rxvmm/errno');
  const { SoftEventFd } = await import('@rxvmm/eventfd');
  const err = errnoError('EINVAL', 'smoke');
  const efd = new SoftEventFd();
  efd.write(2n);
  const value = efd.read();
  efd.close();
  if (err.code === 'EINVAL' && value === 2n) passed += 1;
  else fail('behaviour', `errnoError code ${err.code}, eventfd read ${value}`);
} catch (error) {
  fail('behaviour', error?.message ?? String(error));
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
