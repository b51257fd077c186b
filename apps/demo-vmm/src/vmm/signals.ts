/**
 * The device's two signals, wired the same way on every backend: the doorbell
 * (KVM_IOEVENTFD on QueueNotify, datamatch 0, as Firecracker registers it) and
 * the completion interrupt (KVM_IRQFD on the device GSI, or KVM_IRQ_LINE from
 * the VMM's own code with --no-irqfd).
 */
import { IOEVENTFD_FLAG_DATAMATCH, type Vm } from '@rxvmm/kvm';
import { DEVICE_GSI, QUEUE_NOTIFY_ADDR } from './layout.js';

export interface SignalOptions {
  ioeventfd: boolean;
  irqfd: boolean;
  /** Assign the ioeventfd and irqfd (default true); false when a restored wiring already has them. */
  register?: boolean;
}

export interface DeviceSignals {
  /** Raises the completion interrupt the way the options say. */
  inject(): void;
  readonly injections: { irqfd: number; irqLine: number };
}

export function wireDeviceSignals(
  vm: Pick<Vm, 'ioeventfd' | 'irqfd' | 'setIrqLine'>,
  options: SignalOptions,
  kick: { readonly fd: number },
  call: { readonly fd: number; write(value: bigint): void },
): DeviceSignals {
  const injections = { irqfd: 0, irqLine: 0 };
  const inject = options.irqfd
    ? () => {
        injections.irqfd++;
        call.write(1n);
      }
    : () => {
        // On the MSI-routed GSI, level 1 delivers the message and level 0 is a no-op.
        injections.irqLine++;
        vm.setIrqLine(DEVICE_GSI, true);
        vm.setIrqLine(DEVICE_GSI, false);
      };
  if (options.register === false) return { inject, injections };
  if (options.ioeventfd)
    vm.ioeventfd({
      addr: QUEUE_NOTIFY_ADDR,
      len: 4,
      fd: kick,
      datamatch: 0n,
      flags: IOEVENTFD_FLAG_DATAMATCH,
    });
  if (options.irqfd) vm.irqfd({ fd: call, gsi: DEVICE_GSI });
  return { inject, injections };
}
