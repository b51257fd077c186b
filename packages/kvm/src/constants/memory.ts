/** `KVM_MEM_*` flags of `struct kvm_userspace_memory_region` (include/uapi/linux/kvm.h). */
export const MEM_LOG_DIRTY_PAGES = 1 << 0;
/** KVM_MEM_READONLY: guest writes to the slot exit as MMIO instead of changing RAM. */
export const MEM_READONLY = 1 << 1;
