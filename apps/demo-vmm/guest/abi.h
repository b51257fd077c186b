/*
 * The contract between rxvmm-demo and its guest (mirrored in src/guest/abi.ts).
 * The VMM loads the flat binary at GUEST_LOAD_ADDR, enters it in 64-bit long mode
 * at GUEST_LOAD_ADDR with %rdi = the guest-physical address of a struct boot_info,
 * and reads struct results (right after it) once the guest writes DONE_PORT.
 */
#pragma once

#define GUEST_LOAD_ADDR 0x100000
#define BOOT_INFO_MAGIC 0x3149424d4d565852ull /* "RXVMMBI1" */

#define HELLO_PORT 0x3f8 /* 1-byte out at the first instruction: start-up time */
#define DONE_PORT 0x3f4  /* 1-byte out: the run is over, results are final */

#ifndef __ASSEMBLER__
#include <stdint.h>

enum guest_mode {
  MODE_NORMAL = 0,
  MODE_BAD_QUEUE_ADDR = 1, /* descriptor table outside guest RAM */
  MODE_BAD_HEAD = 2,       /* avail ring names a head index >= queue size */
};

struct boot_info {
  uint64_t magic;
  uint64_t mmio_base;    /* virtio-mmio register window */
  uint64_t requests;     /* write+read-back pairs */
  uint64_t block_size;   /* bytes per request, a multiple of 512 */
  uint64_t irq_vector;   /* IDT vector the device interrupt arrives on */
  uint64_t ioapic_pin;   /* IOAPIC pin to program, or ~0 when the route is MSI */
  uint64_t mode;         /* enum guest_mode */
  uint64_t scratch_base; /* free guest RAM for rings and buffers */
  uint64_t scratch_size;
  uint64_t ram_size;     /* bytes of RAM from GPA 0 (for the bad-address mode) */
  uint64_t queue_size;   /* descriptors in queue 0 (power of two) */
};

enum result_status { RESULT_RUNNING = 0, RESULT_OK = 1, RESULT_FAILED = 2 };

enum fail_code {
  FAIL_NONE = 0,
  FAIL_BAD_BOOT_INFO = 1,
  FAIL_NO_DEVICE = 2,       /* magic / version / device id */
  FAIL_FEATURES = 3,        /* FEATURES_OK not kept by the device */
  FAIL_QUEUE = 4,           /* queue 0 missing or too small */
  FAIL_DISK_TOO_SMALL = 5,
  FAIL_IO_STATUS = 6,       /* a request completed with a status other than OK */
  FAIL_VERIFY = 7,          /* data read back differs from what was written */
  FAIL_NEEDS_RESET = 8,     /* the device reported DEVICE_NEEDS_RESET */
};

struct results {
  uint64_t status;        /* enum result_status */
  uint64_t completed;     /* requests completed (each write and each read counts) */
  uint64_t verified;      /* write+read pairs whose data matched */
  uint64_t fail_code;     /* enum fail_code */
  uint64_t fail_detail;   /* e.g. the failing request number or status byte */
  uint64_t device_status; /* the virtio status register at the end */
  uint64_t interrupts;    /* interrupts the handler took */
};
#endif /* __ASSEMBLER__ */
