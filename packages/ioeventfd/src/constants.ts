/** `struct kvm_ioeventfd.flags` (include/uapi/linux/kvm.h). */
export const IOEVENTFD_FLAG_DATAMATCH = 1 << 0;
export const IOEVENTFD_FLAG_PIO = 1 << 1;
export const IOEVENTFD_FLAG_DEASSIGN = 1 << 2;
export const IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3;
/** `KVM_IOEVENTFD_VALID_FLAG_MASK`: the four flags above. */
export const IOEVENTFD_VALID_FLAG_MASK = (1 << 4) - 1;
