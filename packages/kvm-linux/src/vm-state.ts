/**
 * A /dev/kvm VM's in-kernel state beside its wiring (`Vm.wiring()`) and
 * guest memory, as plain, versioned, JSON-serialisable data: the irqchip
 * (KVM_GET_IRQCHIP of the PIC master, PIC slave and IOAPIC: each chip's
 * `struct kvm_pic_state` / `kvm_ioapic_state`, kept as its 512 bytes, base64)
 * and the KVM clock (KVM_GET_CLOCK). The vCPUs' state is each vCPU's.
 */
import { errnoError } from '@rxvmm/errno';
import { IRQCHIP_IOAPIC, IRQCHIP_PIC_MASTER, IRQCHIP_PIC_SLAVE } from '@rxvmm/kvm';
import * as sys from '@rxvmm/sys';
import { KVM_CHECK_EXTENSION } from './abi.js';
import {
  ClockDataLayout,
  IrqchipLayout,
  KVM_CAP_ADJUST_CLOCK,
  KVM_GET_CLOCK,
  KVM_GET_IRQCHIP,
  KVM_SET_CLOCK,
  KVM_SET_IRQCHIP,
} from './abi-snapshot.js';
import { bad, bytes, toBase64 } from './vcpu-state.js';

/** Version of `LinuxVmState`; a state of another version is refused (EINVAL). */
export const LINUX_VM_STATE_VERSION = 1;

/** `LinuxVm.state()`. */
export interface LinuxVmState {
  version: typeof LINUX_VM_STATE_VERSION;
  /** Each chip's state (base64 of the kvm_irqchip union), or null without an in-kernel irqchip. */
  irqchip: { picMaster: string; picSlave: string; ioapic: string } | null;
  /** The KVM clock in ns (decimal string) and KVM_GET_CLOCK's flags, or null without KVM_CAP_ADJUST_CLOCK. */
  clock: { clock: string; flags: number } | null;
}

const CHIPS = [
  ['picMaster', IRQCHIP_PIC_MASTER],
  ['picSlave', IRQCHIP_PIC_SLAVE],
  ['ioapic', IRQCHIP_IOAPIC],
] as const;
const CHIP_BYTES = IrqchipLayout.size - IrqchipLayout.chip;

export function takeVmState(vmFd: number, hasIrqchip: boolean): LinuxVmState {
  let irqchip: LinuxVmState['irqchip'] = null;
  if (hasIrqchip) {
    const chips: Record<string, string> = {};
    for (const [name, id] of CHIPS) {
      const buf = new Uint8Array(IrqchipLayout.size);
      new DataView(buf.buffer).setUint32(IrqchipLayout.chip_id, id, true);
      sys.ioctl(vmFd, KVM_GET_IRQCHIP, buf);
      chips[name] = toBase64(buf.subarray(IrqchipLayout.chip));
    }
    irqchip = chips as LinuxVmState['irqchip'];
  }
  let clock: LinuxVmState['clock'] = null;
  if (sys.ioctl(vmFd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK) > 0) {
    const buf = new Uint8Array(ClockDataLayout.size);
    sys.ioctl(vmFd, KVM_GET_CLOCK, buf);
    const view = new DataView(buf.buffer);
    clock = {
      clock: view.getBigUint64(ClockDataLayout.clock, true).toString(),
      flags: view.getUint32(ClockDataLayout.flags, true),
    };
  }
  return { version: LINUX_VM_STATE_VERSION, irqchip, clock };
}

/**
 * Loads a state into a VM wired the same way (`restoreWiring` first, so the
 * irqchip exists): checked whole (`EINVAL`) before the first ioctl. The clock
 * is set to the saved value with no flags: the guest sees no time pass while
 * it was saved (KVM_CLOCK_REALTIME would add the wall-clock time since).
 */
export function loadVmState(vmFd: number, hasIrqchip: boolean, state: unknown): void {
  if (typeof state !== 'object' || state === null) throw bad('VM state is not an object');
  const s = state as Record<string, unknown>;
  if (s.version !== LINUX_VM_STATE_VERSION)
    throw bad(`VM state version ${String(s.version)} (this code reads version ${LINUX_VM_STATE_VERSION})`);
  if ((s.irqchip === null) === hasIrqchip)
    throw bad(`irqchip state ${hasIrqchip ? 'missing for a VM with' : 'given to a VM without'} an irqchip`);
  const chips: [number, Uint8Array][] = [];
  if (s.irqchip !== null) {
    if (typeof s.irqchip !== 'object') throw bad('irqchip is not an object');
    const c = s.irqchip as Record<string, unknown>;
    for (const [name, id] of CHIPS)
      chips.push([id, bytes(c[name], `irqchip.${name}`, CHIP_BYTES, CHIP_BYTES)]);
  }
  let clock: bigint | undefined;
  if (s.clock !== null) {
    const c = s.clock as Record<string, unknown> | undefined;
    if (
      typeof c?.clock !== 'string' ||
      !/^(0|[1-9][0-9]{0,19})$/.test(c.clock) ||
      BigInt(c.clock) >= 1n << 64n
    )
      throw bad('clock.clock is not a u64 decimal string');
    if (typeof c.flags !== 'number' || !Number.isInteger(c.flags) || c.flags < 0 || c.flags > 0xffff_ffff)
      throw bad('clock.flags is not a u32');
    clock = BigInt(c.clock);
  }
  for (const [id, chip] of chips) {
    const buf = new Uint8Array(IrqchipLayout.size);
    new DataView(buf.buffer).setUint32(IrqchipLayout.chip_id, id, true);
    buf.set(chip, IrqchipLayout.chip);
    sys.ioctl(vmFd, KVM_SET_IRQCHIP, buf);
  }
  if (clock !== undefined) {
    const buf = new Uint8Array(ClockDataLayout.size);
    new DataView(buf.buffer).setBigUint64(ClockDataLayout.clock, clock, true);
    try {
      sys.ioctl(vmFd, KVM_SET_CLOCK, buf);
    } catch (error) {
      throw errnoError(
        ((error as { code?: string }).code ?? 'EIO') as 'EIO',
        `restoring the KVM clock: ${(error as Error).message}`,
      );
    }
  }
}
