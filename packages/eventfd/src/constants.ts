/** The largest value an eventfd counter can hold through write(2): 2^64 - 2. */
export const EFD_COUNTER_MAX = 0xffff_ffff_ffff_fffen;
/** 2^64 - 1: not writable (EINVAL); only in-kernel signals can saturate the counter to it. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** eventfd2(2) takes its initial value as a 32-bit unsigned int. */
export const INITVAL_MAX = 0xffff_ffffn;
/** First synthetic fd number handed out by SoftEventFd (far above any real fd). */
export const IN_MEMORY_FD_BASE = 0x4000_0000;
