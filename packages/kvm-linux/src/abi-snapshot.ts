/**
 * The part of the /dev/kvm ABI that saves and restores a VM (snapshots):
 * the vCPU state ioctls (MSRs, FPU/XSAVE, XCRs, vCPU events, MP state), the
 * in-kernel irqchip and the KVM clock, with their struct sizes and the field
 * offsets the code reads (x86-64, include/uapi/linux/kvm.h and asm/kvm.h).
 * `snapshotAbiTable()` joins abi.ts's table, so abi/kvm-abi.c checks every
 * value here against the C headers too.
 */
// abi.ts imports this table, so the _IOC() formula is repeated here (no import cycle).
const KVMIO = 0xae;
const ioc = (dir: number, nr: number, size: number): number =>
  (dir * 2 ** 30 + (size << 16) + (KVMIO << 8) + nr) >>> 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

/** struct kvm_msr_list (header; u32 indices follow). */
export const MsrListLayout = { size: 4, nmsrs: 0, indices: 4 } as const;
/** struct kvm_msrs (header; kvm_msr_entry entries follow). */
export const MsrsLayout = { size: 8, nmsrs: 0, entries: 8 } as const;
/** struct kvm_msr_entry */
export const MsrEntryLayout = { size: 16, index: 0, data: 8 } as const;
/** struct kvm_fpu (the legacy FPU/SSE state, for hosts without XSAVE). */
export const FpuLayout = { size: 416 } as const;
/** struct kvm_xsave (KVM_GET_XSAVE's 4 KiB; KVM_GET_XSAVE2 may use more, see KVM_CAP_XSAVE2). */
export const XsaveLayout = { size: 4096 } as const;
/** struct kvm_xcr */
export const XcrLayout = { size: 16, xcr: 0, value: 8 } as const;
/** struct kvm_xcrs */
export const XcrsLayout = { size: 392, nr_xcrs: 0, flags: 4, xcrs: 8 } as const;
/** struct kvm_vcpu_events (kept as its bytes: KVM fills its `flags` with what is valid). */
export const VcpuEventsLayout = { size: 64, flags: 20 } as const;
/** struct kvm_mp_state */
export const MpStateLayout = { size: 4, mp_state: 0 } as const;
/** struct kvm_irqchip: a chip id and the 512-byte union of kvm_pic_state / kvm_ioapic_state. */
export const IrqchipLayout = { size: 520, chip_id: 0, chip: 8 } as const;
/** struct kvm_clock_data */
export const ClockDataLayout = { size: 48, clock: 0, flags: 8 } as const;

export const KVM_GET_MSR_INDEX_LIST = iowr(0x02, MsrListLayout.size);
export const KVM_GET_IRQCHIP = iowr(0x62, IrqchipLayout.size);
export const KVM_SET_IRQCHIP = ior(0x63, IrqchipLayout.size);
export const KVM_SET_CLOCK = iow(0x7b, ClockDataLayout.size);
export const KVM_GET_CLOCK = ior(0x7c, ClockDataLayout.size);
export const KVM_GET_MSRS = iowr(0x88, MsrsLayout.size);
export const KVM_SET_MSRS = iow(0x89, MsrsLayout.size);
export const KVM_GET_FPU = ior(0x8c, FpuLayout.size);
export const KVM_SET_FPU = iow(0x8d, FpuLayout.size);
export const KVM_GET_MP_STATE = ior(0x98, MpStateLayout.size);
export const KVM_SET_MP_STATE = iow(0x99, MpStateLayout.size);
export const KVM_GET_VCPU_EVENTS = ior(0x9f, VcpuEventsLayout.size);
export const KVM_SET_VCPU_EVENTS = iow(0xa0, VcpuEventsLayout.size);
export const KVM_GET_XSAVE = ior(0xa4, XsaveLayout.size);
export const KVM_SET_XSAVE = iow(0xa5, XsaveLayout.size);
export const KVM_GET_XCRS = ior(0xa6, XcrsLayout.size);
export const KVM_SET_XCRS = iow(0xa7, XcrsLayout.size);
export const KVM_GET_XSAVE2 = ior(0xcf, XsaveLayout.size);

export const KVM_CAP_ADJUST_CLOCK = 39;
export const KVM_CAP_VCPU_EVENTS = 41;
export const KVM_CAP_XSAVE = 55;
export const KVM_CAP_XCRS = 56;
export const KVM_CAP_XSAVE2 = 208;
/** Entries of kvm_xcrs.xcrs. */
export const KVM_MAX_XCRS = 16;
/** KVM_MP_STATE_* (mp_state values) range: RUNNABLE 0 ... SUSPENDED 10. */
export const KVM_MP_STATE_RUNNABLE = 0;
export const KVM_MP_STATE_SUSPENDED = 10;

/** Every value above, under the key abi/kvm-abi.c prints it with. */
export function snapshotAbiTable(): Record<string, number> {
  const table: Record<string, number> = {
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_SET_CLOCK,
    KVM_GET_CLOCK,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_GET_FPU,
    KVM_SET_FPU,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_XSAVE2,
    KVM_CAP_ADJUST_CLOCK,
    KVM_CAP_VCPU_EVENTS,
    KVM_CAP_XSAVE,
    KVM_CAP_XCRS,
    KVM_CAP_XSAVE2,
    KVM_MAX_XCRS,
    KVM_MP_STATE_RUNNABLE,
    KVM_MP_STATE_SUSPENDED,
  };
  const structs: Record<string, Record<string, number>> = {
    kvm_msr_list: MsrListLayout,
    kvm_msrs: MsrsLayout,
    kvm_msr_entry: MsrEntryLayout,
    kvm_fpu: FpuLayout,
    kvm_xsave: XsaveLayout,
    kvm_xcr: XcrLayout,
    kvm_xcrs: XcrsLayout,
    kvm_vcpu_events: VcpuEventsLayout,
    kvm_mp_state: MpStateLayout,
    kvm_irqchip: IrqchipLayout,
    kvm_clock_data: ClockDataLayout,
  };
  for (const [struct, layout] of Object.entries(structs)) {
    for (const [field, value] of Object.entries(layout)) {
      table[field === 'size' ? `sizeof_${struct}` : `offsetof_${struct}_${field}`] = value;
    }
  }
  return table;
}
