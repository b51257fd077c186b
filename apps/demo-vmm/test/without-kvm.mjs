// Preloaded (node --import) into an rxvmm-demo child by demo.test.ts to give it a machine without a
// usable /dev/kvm, so the CLI's fallback and error paths run on every machine, KVM or not, without root.
// RXVMM_TEST_KVM=absent: opening /dev/kvm fails with ENOENT, as where the module is not loaded;
// RXVMM_TEST_KVM=not-kvm: /dev/kvm opens /dev/null, a device that answers no KVM ioctl.
// Everything else, kvm-linux's error mapping included, is the real code.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const mode = process.env.RXVMM_TEST_KVM;
const openSync = fs.openSync;
fs.openSync = (path, ...rest) => {
  if (path === '/dev/kvm' && mode === 'absent')
    throw Object.assign(new Error("ENOENT: no such file or directory, open '/dev/kvm'"), {
      code: 'ENOENT',
      errno: -2,
      syscall: 'open',
      path,
    });
  return openSync(path === '/dev/kvm' && mode === 'not-kvm' ? '/dev/null' : path, ...rest);
};
// `import { openSync } from 'node:fs'` (kvm-linux) sees the replacement only after this.
syncBuiltinESMExports();
