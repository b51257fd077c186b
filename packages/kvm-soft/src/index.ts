export {
  fromLe,
  Guest,
  type GuestOp,
  type GuestProgram,
  type GuestStep,
  type InterruptHandler,
  toLe,
} from './guest.js';
export { IOAPIC_BASE, IoApic } from './irqchip/ioapic.js';
export { LAPIC_BASE, LocalApic } from './irqchip/lapic.js';
export { Pic } from './irqchip/pic.js';
export { SoftIrqChip } from './irqchip/soft-irqchip.js';
export { openSoftKvm, SoftKvm } from './soft-kvm.js';
export { INTERNAL_ERROR_EMULATION, SoftVcpu } from './soft-vcpu.js';
export { SoftVm } from './soft-vm.js';
