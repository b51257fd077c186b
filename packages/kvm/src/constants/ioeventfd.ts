/** `struct kvm_ioeventfd.flags` (include/uapi/linux/kvm.h). */
export const IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
/** KVM_IOEVENTFD_FLAG_PIO: the address is an I/O port, not MMIO. */
export const IOEVENTFD_FLAG_PIO = 1 << 1;
/** KVM_IOEVENTFD_FLAG_DEASSIGN: remove the matching ioeventfd instead of adding one. */
export const IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
/** KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY: s390 virtio-ccw notifications (refused on x86: EINVAL). */
export const IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3;
/**
 * `kvm_ioeventfd_flag_nr_fast_mmio` (bit 4) has no public `KVM_IOEVENTFD_FLAG_*`
 * name, but it is inside the kernel's valid mask: assign accepts it and ignores it.
 */
export const IOEVENTFD_FLAG_NR_FAST_MMIO_BIT = 1 << 4;
/**
 * `KVM_IOEVENTFD_VALID_FLAG_MASK` = `(1 << kvm_ioeventfd_flag_nr_max) - 1` = 0x1f
 * (checked against /dev/kvm: bit 4 is accepted, bit 5 is EINVAL).
 */
export const IOEVENTFD_VALID_FLAG_MASK = (1 << 5) - 1;
