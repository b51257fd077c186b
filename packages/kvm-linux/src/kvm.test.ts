import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Capability } from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { openKvm } from './kvm.js';
import { kvmAvailable } from './test-support/availability.js';

describe('openKvm errors', () => {
  it('a missing device is ENOENT and says what to do', () => {
    let error: NodeJS.ErrnoException | undefined;
    try {
      openKvm('/nonexistent/kvm');
    } catch (e) {
      error = e as NodeJS.ErrnoException;
    }
    expect(error?.code).toBe('ENOENT');
    expect(error?.message).toMatch(/modprobe kvm_intel or kvm_amd/);
    expect(error?.message).toMatch(/SoftKvm/);
  });

  it('a file that is not a KVM device is EINVAL, and its fd is not leaked', () => {
    expect(() => openKvm('/dev/null')).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/not a KVM device/) }),
    );
  });

  const dist = new URL('../dist/kvm.js', import.meta.url);
  // Needs root (to become `nobody`), a /dev/kvm that `nobody` may not open, and the built package.
  const cannotDropPrivileges =
    process.getuid?.() !== 0
      ? 'needs root (to run a child as nobody)'
      : !existsSync('/dev/kvm')
        ? 'needs /dev/kvm (missing here)'
        : (statSync('/dev/kvm').mode & 0o006) !== 0
          ? '/dev/kvm is world-accessible (the user nobody could open it: no EACCES to see)'
          : !existsSync(fileURLToPath(dist))
            ? `needs the build (${fileURLToPath(dist)}; pnpm build)`
            : undefined;
  const canDropPrivileges = cannotDropPrivileges === undefined;
  if (!canDropPrivileges) console.warn(`EACCES test skipped: ${cannotDropPrivileges}`);
  it.skipIf(!canDropPrivileges)(
    'a device this user may not open is EACCES and says how to get access',
    () => {
      // Runs as `nobody` in a child process (root bypasses file permissions).
      const script = `import { openKvm } from ${JSON.stringify(dist.href)};
      try { openKvm(); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        cwd: '/',
      });
      const result = JSON.parse(child.stdout) as { code?: string; message?: string; opened?: boolean };
      expect(result.code).toBe('EACCES');
      expect(result.message).toMatch(/usermod -aG kvm/);
    },
  );
});

describe.skipIf(!kvmAvailable)('LinuxKvm on /dev/kvm', () => {
  it('reports API version 12 and the capabilities rxvmm uses', () => {
    using kvm = openKvm();
    expect(kvm.backend).toBe('linux');
    expect(kvm.apiVersion()).toBe(12);
    const caps: Capability[] = [
      'irqchip',
      'irqfd',
      'irqfd-resample',
      'ioeventfd',
      'ioeventfd-any-length',
      'irq-routing',
      'signal-msi',
      'user-memory',
      'immediate-exit',
    ];
    for (const cap of caps) expect(kvm.checkExtension(cap), cap).toBe(true);
    expect(() => kvm.checkExtension('warp-drive' as Capability)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(kvm.vcpuMmapSize).toBeGreaterThanOrEqual(4096);
  });

  it('a closed handle is EBADF, and closing it closes its VMs', () => {
    const kvm = openKvm();
    const vm = kvm.createVm();
    kvm.close();
    kvm.close(); // idempotent
    expect(vm.closed).toBe(true);
    expect(() => kvm.apiVersion()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => kvm.createVm()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
