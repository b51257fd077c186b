import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as kvmConstants from '@rxvmm/kvm';
import { describe, expect, it } from 'vitest';
import { abiTable } from './abi.js';

const source = fileURLToPath(new URL('../abi/kvm-abi.c', import.meta.url));

function compilerAndHeader(): string | undefined {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'no C compiler (cc)';
  }
  try {
    execFileSync('cc', ['-E', '-x', 'c', '-'], {
      input: '#include <linux/kvm.h>\n',
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  } catch {
    return 'no <linux/kvm.h> (install linux-libc-dev)';
  }
  return undefined;
}

const skipReason = compilerAndHeader();
if (skipReason) console.warn(`kvm-linux abi check skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('the KVM ABI against <linux/kvm.h>', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxvmm-kvm-abi-'));
  let header: Record<string, number> = {};
  try {
    const exe = join(dir, 'kvm-abi');
    execFileSync('cc', ['-Wall', '-o', exe, source]);
    header = JSON.parse(execFileSync(exe, { encoding: 'utf8' })) as Record<string, number>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ours = abiTable();

  it('checks every value the encoders use, and nothing is left unchecked', () => {
    expect(Object.keys(ours).sort()).toEqual(Object.keys(header).sort());
  });

  it.each(Object.keys(header))('%s matches the header', (key) => {
    expect(ours[key]).toBe(header[key]);
  });

  it("agrees with @rxvmm/kvm's backend-neutral constants", () => {
    expect(kvmConstants.IOEVENTFD_FLAG_DATAMATCH).toBe(header.KVM_IOEVENTFD_FLAG_DATAMATCH);
    expect(kvmConstants.IOEVENTFD_FLAG_PIO).toBe(header.KVM_IOEVENTFD_FLAG_PIO);
    expect(kvmConstants.IOEVENTFD_FLAG_DEASSIGN).toBe(header.KVM_IOEVENTFD_FLAG_DEASSIGN);
    expect(kvmConstants.IRQFD_FLAG_DEASSIGN).toBe(header.KVM_IRQFD_FLAG_DEASSIGN);
    expect(kvmConstants.IRQFD_FLAG_RESAMPLE).toBe(header.KVM_IRQFD_FLAG_RESAMPLE);
    expect(kvmConstants.IRQ_ROUTING_IRQCHIP).toBe(header.KVM_IRQ_ROUTING_IRQCHIP);
    expect(kvmConstants.IRQ_ROUTING_MSI).toBe(header.KVM_IRQ_ROUTING_MSI);
    expect(kvmConstants.EXIT_IO).toBe(header.KVM_EXIT_IO);
    expect(kvmConstants.EXIT_MMIO).toBe(header.KVM_EXIT_MMIO);
    expect(kvmConstants.EXIT_HLT).toBe(header.KVM_EXIT_HLT);
    expect(kvmConstants.EXIT_SHUTDOWN).toBe(header.KVM_EXIT_SHUTDOWN);
    expect(kvmConstants.EXIT_INTERNAL_ERROR).toBe(header.KVM_EXIT_INTERNAL_ERROR);
    expect(kvmConstants.EXIT_FAIL_ENTRY).toBe(header.KVM_EXIT_FAIL_ENTRY);
    expect(kvmConstants.MEM_READONLY).toBe(header.KVM_MEM_READONLY);
  });
});
