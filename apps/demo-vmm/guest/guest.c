/*
 * The demo guest: a minimal virtio-mmio (version 2) block driver. It finds the
 * device, negotiates VIRTIO_F_VERSION_1, sets up split queue 0, then for each
 * request writes a pattern to the disk, reads it back and verifies it. It kicks
 * through QueueNotify and sleeps in `hlt` until the device's interrupt arrives.
 * Results go to struct results in guest RAM; the VMM reads them after DONE.
 */
#include <stddef.h>
#include <stdint.h>

#include <rxvmm/x86.h> /* IDT gates, LAPIC enable/EOI, IOAPIC route: @rxvmm/kvm-linux's guest header */

#include "abi.h"

/* virtio-mmio registers (virtio 1.2, 4.2.2). */
#define VM_MAGIC 0x000
#define VM_VERSION 0x004
#define VM_DEVICE_ID 0x008
#define VM_DEVICE_FEATURES 0x010
#define VM_DEVICE_FEATURES_SEL 0x014
#define VM_DRIVER_FEATURES 0x020
#define VM_DRIVER_FEATURES_SEL 0x024
#define VM_QUEUE_SEL 0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM 0x038
#define VM_QUEUE_READY 0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_INTERRUPT_STATUS 0x060
#define VM_INTERRUPT_ACK 0x064
#define VM_STATUS 0x070
#define VM_QUEUE_DESC_LOW 0x080
#define VM_QUEUE_DESC_HIGH 0x084
#define VM_QUEUE_DRIVER_LOW 0x090
#define VM_QUEUE_DRIVER_HIGH 0x094
#define VM_QUEUE_DEVICE_LOW 0x0a0
#define VM_QUEUE_DEVICE_HIGH 0x0a4
#define VM_CONFIG 0x100

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 64
#define STATUS_FAILED 128

#define VIRTIO_F_VERSION_1_HI (1u << 0) /* feature bit 32 */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_S_OK 0

#define SPURIOUS_VECTOR 0xff

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct blk_req_header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

extern void irq_entry(void);
extern void spurious_entry(void);

static struct rxvmm_idt_gate idt[256] __attribute__((aligned(16)));
/* Our own identity map of the low 4 GiB (2 MiB pages): RAM, the virtio-mmio
 * window, the IOAPIC and the LAPIC, whatever the VMM's boot tables cover. */
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[4][512] __attribute__((aligned(4096)));
static volatile uint64_t mmio;
static struct results *volatile results;
static volatile uint64_t interrupts;
/* Set by the handler when InterruptStatus shows a configuration change (e.g. DEVICE_NEEDS_RESET). */
static volatile int config_changed;

static inline uint32_t rd32(uint64_t addr) { return *(volatile uint32_t *)addr; }
static inline void wr32(uint64_t addr, uint32_t value) { *(volatile uint32_t *)addr = value; }
static inline uint32_t reg(uint32_t off) { return rd32(mmio + off); }
static inline void set_reg(uint32_t off, uint32_t value) { wr32(mmio + off, value); }
static inline void outb(uint16_t port, uint8_t value) { __asm__ volatile("outb %0, %1" ::"a"(value), "Nd"(port)); }

void irq_handler(void) {
  /* Acknowledge at the device, then at the local APIC. */
  uint32_t status = reg(VM_INTERRUPT_STATUS);
  if (status != 0) set_reg(VM_INTERRUPT_ACK, status);
  if (status & 2) config_changed = 1;
  interrupts++;
  rxvmm_lapic_eoi();
}

/* The guest builds its own IDT: its handlers are its own symbols, which the VMM does not know. */
static void setup_interrupts(const struct boot_info *bi) {
  rxvmm_idt_set_gate(idt, (unsigned)bi->irq_vector, irq_entry);
  rxvmm_idt_set_gate(idt, SPURIOUS_VECTOR, spurious_entry);
  rxvmm_lidt(idt, 256);
  /* Mask the legacy PICs: interrupts come through the IOAPIC or as MSI. */
  outb(0x21, 0xff);
  outb(0xa1, 0xff);
  rxvmm_lapic_enable(SPURIOUS_VECTOR);
  /* Edge-triggered, fixed delivery to APIC 0, unmasked. */
  if (bi->ioapic_pin != ~0ull) rxvmm_ioapic_route((unsigned)bi->ioapic_pin, (uint8_t)bi->irq_vector, 0);
}

static void setup_paging(void) {
  for (uint64_t g = 0; g < 4; g++) {
    for (uint64_t i = 0; i < 512; i++) {
      uint64_t flags = 0x83; /* present, writable, 2 MiB page */
      if (g == 3) flags |= 0x18; /* PCD|PWT: the top GiB holds MMIO */
      pd[g][i] = ((g << 30) | (i << 21)) | flags;
    }
    pdpt[g] = (uint64_t)pd[g] | 0x3;
  }
  pml4[0] = (uint64_t)pdpt | 0x3;
  __asm__ volatile("mov %0, %%cr3" ::"r"((uint64_t)pml4) : "memory");
}

static void fail(uint64_t code, uint64_t detail) {
  results->fail_code = code;
  results->fail_detail = detail;
  results->device_status = reg(VM_STATUS);
  results->interrupts = interrupts;
  results->status = RESULT_FAILED;
}

/* The queue and the buffers, carved out of the scratch area. */
struct queue {
  uint32_t size;
  volatile struct virtq_desc *desc;
  volatile uint16_t *avail; /* flags, idx, ring[size] */
  volatile uint16_t *used;  /* flags, idx, then {u32 id, u32 len}[size] */
  uint16_t avail_idx;
  uint16_t used_idx;
};

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

/*
 * Waits for this request's completion AND its interrupt (`seen` = the handler's
 * count at submission): one interrupt per request, always taken before the next
 * request exists, so none can merge with another and the exit count is exact.
 * The guest otherwise runs with interrupts enabled; the check runs with them
 * off and `sti; hlt` closes the race (sti's shadow covers hlt). Returns 0, or
 * -1 when a configuration change (NEEDS_RESET) interrupt came instead.
 */
static int wait_used(struct queue *q, uint64_t seen) {
  for (;;) {
    __asm__ volatile("cli" ::: "memory");
    if (q->used[1] != q->used_idx && interrupts != seen) break;
    if (config_changed) {
      __asm__ volatile("sti" ::: "memory");
      return -1;
    }
    __asm__ volatile("sti; hlt" ::: "memory");
  }
  __asm__ volatile("sti" ::: "memory");
  q->used_idx++;
  return 0;
}

static void wait_needs_reset(void) {
  while ((reg(VM_STATUS) & STATUS_NEEDS_RESET) == 0) {
    __asm__ volatile("cli" ::: "memory");
    if (!config_changed) __asm__ volatile("sti; hlt" ::: "memory");
    __asm__ volatile("sti" ::: "memory");
    config_changed = 0;
  }
}

static void kick(void) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  set_reg(VM_QUEUE_NOTIFY, 0);
}

static void submit(struct queue *q, uint16_t head) {
  q->avail[2 + (q->avail_idx % q->size)] = head;
  __atomic_thread_fence(__ATOMIC_RELEASE);
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
}

/*
 * Byte j of request i is ((i * 131 + j * 7 + (j >> 9)) ^ 0x5a) & 0xff. The
 * part that depends on j is computed once (base[]); per request the bytes are
 * made eight at a time: a byte-wise add without carries between bytes (SWAR),
 * then the xor. Guest instructions are the expensive part on a nested KVM.
 */
#define LANES 0x0101010101010101ull
#define HIGH_BITS 0x8080808080808080ull

/* base[j] = (7 j + (j >> 9)) & 0xff, a word at a time: the eight bytes of a word share j >> 9, so
   the word is v * LANES + (0, 7, 14, ..., 49) with v the first byte, added byte-wise. */
static uint64_t add_bytes(uint64_t x, uint64_t y) {
  return ((x & ~HIGH_BITS) + (y & ~HIGH_BITS)) ^ ((x ^ y) & HIGH_BITS);
}

static void fill_base(volatile uint64_t *base, uint64_t block_size) {
  const uint64_t steps = 0x312a231c150e0700ull; /* bytes 0, 7, 14, 21, 28, 35, 42, 49 */
  for (uint64_t w = 0; w < block_size / 8; w++) {
    uint64_t j = w * 8;
    uint64_t v = (j * 7u + (j >> 9)) & 0xff;
    base[w] = add_bytes(v * LANES, steps);
  }
}

static void fill_pattern(volatile uint64_t *out, const volatile uint64_t *base, uint64_t words, uint64_t request) {
  uint64_t add = ((request * 131u) & 0xff) * LANES;
  for (uint64_t w = 0; w < words; w++) {
    out[w] = add_bytes(base[w], add) ^ (0x5a * LANES);
  }
}

/* repe cmpsq: one instruction for the whole compare (a loop costs several per word here). */
static int same(const volatile uint64_t *a, const volatile uint64_t *b, uint64_t words) {
  const volatile uint64_t *x = a, *y = b;
  uint64_t n = words;
  uint8_t equal;
  __asm__ volatile("cld; repe cmpsq; sete %3" : "+S"(x), "+D"(y), "+c"(n), "=r"(equal) : : "memory", "cc");
  return words == 0 || equal;
}

void guest_main(struct boot_info *bi) {
  if (bi->magic != BOOT_INFO_MAGIC) return; /* nothing safe to report into */
  results = (struct results *)((uint64_t)bi + sizeof *bi);
  results->status = RESULT_RUNNING;
  setup_paging();
  mmio = bi->mmio_base;
  setup_interrupts(bi);

  if (reg(VM_MAGIC) != 0x74726976 || reg(VM_VERSION) != 2 || reg(VM_DEVICE_ID) != 2) {
    fail(FAIL_NO_DEVICE, reg(VM_DEVICE_ID));
    return;
  }
  set_reg(VM_STATUS, 0);
  set_reg(VM_STATUS, STATUS_ACKNOWLEDGE);
  set_reg(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  set_reg(VM_DEVICE_FEATURES_SEL, 1);
  uint32_t features_hi = reg(VM_DEVICE_FEATURES);
  if ((features_hi & VIRTIO_F_VERSION_1_HI) == 0) {
    fail(FAIL_FEATURES, features_hi);
    return;
  }
  set_reg(VM_DRIVER_FEATURES_SEL, 0);
  set_reg(VM_DRIVER_FEATURES, 0);
  set_reg(VM_DRIVER_FEATURES_SEL, 1);
  set_reg(VM_DRIVER_FEATURES, VIRTIO_F_VERSION_1_HI);
  set_reg(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  if ((reg(VM_STATUS) & STATUS_FEATURES_OK) == 0) {
    fail(FAIL_FEATURES, reg(VM_STATUS));
    return;
  }

  uint64_t block_size = bi->block_size;
  uint64_t sectors_per_request = block_size / 512;
  uint64_t capacity = (uint64_t)reg(VM_CONFIG) | ((uint64_t)reg(VM_CONFIG + 4) << 32);
  if (capacity < bi->requests * sectors_per_request) {
    fail(FAIL_DISK_TOO_SMALL, capacity);
    return;
  }

  set_reg(VM_QUEUE_SEL, 0);
  uint32_t max = reg(VM_QUEUE_NUM_MAX);
  uint32_t size = (uint32_t)bi->queue_size;
  if (max == 0 || size > max || size < 4) {
    fail(FAIL_QUEUE, max);
    return;
  }
  struct queue q = {0};
  uint64_t at = align_up(bi->scratch_base, 4096);
  q.size = size;
  q.desc = (volatile struct virtq_desc *)at;
  at = align_up(at + 16ull * size, 4096);
  q.avail = (volatile uint16_t *)at;
  at = align_up(at + 6 + 2ull * size, 4096);
  q.used = (volatile uint16_t *)at;
  at = align_up(at + 6 + 8ull * size, 4096);
  volatile struct blk_req_header *header = (volatile struct blk_req_header *)at;
  volatile uint8_t *status = (volatile uint8_t *)(at + 64);
  at += 4096;
  volatile uint64_t *out_buf = (volatile uint64_t *)at;
  volatile uint64_t *in_buf = (volatile uint64_t *)(at + block_size);
  volatile uint64_t *base = (volatile uint64_t *)(at + 2 * block_size);
  uint64_t words = block_size / 8;
  if (at + 3 * block_size > bi->scratch_base + bi->scratch_size) {
    fail(FAIL_QUEUE, block_size);
    return;
  }

  uint64_t desc_addr = (uint64_t)q.desc;
  if (bi->mode == MODE_BAD_QUEUE_ADDR) desc_addr = bi->ram_size + 0x40000000ull;
  set_reg(VM_QUEUE_NUM, size);
  set_reg(VM_QUEUE_DESC_LOW, (uint32_t)desc_addr);
  set_reg(VM_QUEUE_DESC_HIGH, (uint32_t)(desc_addr >> 32));
  set_reg(VM_QUEUE_DRIVER_LOW, (uint32_t)(uint64_t)q.avail);
  set_reg(VM_QUEUE_DRIVER_HIGH, (uint32_t)((uint64_t)q.avail >> 32));
  set_reg(VM_QUEUE_DEVICE_LOW, (uint32_t)(uint64_t)q.used);
  set_reg(VM_QUEUE_DEVICE_HIGH, (uint32_t)((uint64_t)q.used >> 32));
  set_reg(VM_QUEUE_READY, 1);
  set_reg(VM_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);

  /* One three-descriptor chain, reused: header (read), data, status (write). */
  q.desc[0].addr = (uint64_t)header;
  q.desc[0].len = sizeof(struct blk_req_header);
  q.desc[0].flags = VIRTQ_DESC_F_NEXT;
  q.desc[0].next = 1;
  q.desc[1].next = 2;
  q.desc[2].addr = (uint64_t)status;
  q.desc[2].len = 1;
  q.desc[2].flags = VIRTQ_DESC_F_WRITE;

  if (bi->mode != MODE_NORMAL) {
    /* Misprogrammed device: the device must refuse it with NEEDS_RESET. */
    submit(&q, bi->mode == MODE_BAD_HEAD ? (uint16_t)(size + 5) : 0);
    kick();
    __asm__ volatile("sti" ::: "memory");
    wait_needs_reset();
    fail(FAIL_NEEDS_RESET, bi->mode);
    return;
  }

  fill_base(base, block_size);
  __asm__ volatile("sti" ::: "memory");
  for (uint64_t i = 0; i < bi->requests; i++) {
    fill_pattern(out_buf, base, words, i);
    for (int pass = 0; pass < 2; pass++) {
      int is_write = pass == 0;
      header->type = is_write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
      header->reserved = 0;
      header->sector = i * sectors_per_request;
      *status = 0xff;
      q.desc[1].addr = (uint64_t)(is_write ? out_buf : in_buf);
      q.desc[1].len = (uint32_t)block_size;
      q.desc[1].flags = VIRTQ_DESC_F_NEXT | (is_write ? 0 : VIRTQ_DESC_F_WRITE);
      uint64_t seen = interrupts;
      submit(&q, 0);
      kick();
      if (wait_used(&q, seen) != 0) {
        fail(FAIL_NEEDS_RESET, i);
        return;
      }
      if (*status != VIRTIO_BLK_S_OK) {
        fail(FAIL_IO_STATUS, (i << 8) | *status);
        return;
      }
      results->completed++;
    }
    if (!same(in_buf, out_buf, words)) {
      fail(FAIL_VERIFY, i);
      return;
    }
    results->verified++;
  }
  results->device_status = reg(VM_STATUS);
  results->interrupts = interrupts;
  results->status = RESULT_OK;
}
