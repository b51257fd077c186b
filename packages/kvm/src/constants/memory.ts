/** `KVM_MEM_*` flags of `struct kvm_userspace_memory_region` (include/uapi/linux/kvm.h). */
export const MEM_LOG_DIRTY_PAGES = 1 << 0;
export const MEM_READONLY = 1 << 1;
