/*
 * C reference for the kvm-linux benchmarks: the same guests (build/guests/NAME.bin)
 * driven directly on /dev/kvm, so the TypeScript figures have a same-machine,
 * same-run baseline. One line of JSON per measurement on stdout.
 *
 *   kvm-ref <guest-dir> mmio-exit  N   MMIO doorbell exits handled by this loop
 *   kvm-ref <guest-dir> ioeventfd  N   MMIO doorbells absorbed by an ioeventfd
 *   kvm-ref <guest-dir> irqfd      N   eventfd write (main thread) -> irqfd ->
 *                                      IOAPIC pin (edge) -> guest IDT handler ->
 *                                      REPORT exit on the vCPU thread -> main
 *                                      thread woken (futex), N round trips
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Mirrors guest/layout.h (kept in one place for the guests; checked by the build of both). */
#include "../guest/layout.h"

#define RAM_SIZE (2u << 20)
#define DOORBELL 0xd0000000ull
#define IRQ_GSI 5
#define IRQ_VECTOR 0x40

static int debug_vcpu = -1; /* for register dumps on unexpected exits */

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct vm {
  int kvm, vm, vcpu;
  uint8_t *ram;
  struct kvm_run *run;
};

static void load_guest(struct vm *v, const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  size_t n = fread(v->ram + CODE_BASE, 1, RAM_SIZE - CODE_BASE, f);
  if (n == 0) die("fread");
  fclose(f);
}

static void set_param(struct vm *v, unsigned off, uint64_t value) {
  memcpy(v->ram + PARAMS_BASE + off, &value, 8);
}

static void vm_open(struct vm *v, int irqchip) {
  v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (v->kvm < 0) die("/dev/kvm");
  v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
  if (v->vm < 0) die("KVM_CREATE_VM");
  v->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (v->ram == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region mr = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (uintptr_t)v->ram};
  if (ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0) die("KVM_SET_USER_MEMORY_REGION");
  if (irqchip && ioctl(v->vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
  set_param(v, P_IOAPIC_PIN, ~0ull);
}

/* Must run on the thread that will call KVM_RUN. */
static void vcpu_open(struct vm *v) {
  v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
  if (v->vcpu < 0) die("KVM_CREATE_VCPU");
  debug_vcpu = v->vcpu;
  int size = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  v->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
  if (v->run == MAP_FAILED) die("mmap kvm_run");
  /* 64-bit long mode straight away, on the guest's own page tables and GDT (its header). */
  uint64_t entry, pml4, gdt;
  uint16_t gdt_limit;
  uint32_t magic;
  memcpy(&magic, v->ram + CODE_BASE + HDR_MAGIC, 4);
  memcpy(&entry, v->ram + CODE_BASE + HDR_ENTRY64, 8);
  memcpy(&pml4, v->ram + CODE_BASE + HDR_PML4, 8);
  memcpy(&gdt, v->ram + CODE_BASE + HDR_GDT_BASE, 8);
  memcpy(&gdt_limit, v->ram + CODE_BASE + HDR_GDT_LIMIT, 2);
  if (magic != GUEST_MAGIC) die("guest header");
  struct kvm_sregs s;
  if (ioctl(v->vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
  struct kvm_segment code = {.base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 11, .present = 1,
                             .s = 1, .l = 1, .g = 1};
  struct kvm_segment data = {.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 3, .present = 1,
                             .s = 1, .db = 1, .g = 1};
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.gdt.base = gdt;
  s.gdt.limit = gdt_limit;
  s.cr3 = pml4;
  s.cr4 = 0x20;                /* PAE */
  s.cr0 = 0x80000011;          /* PG | ET | PE */
  s.efer = 0x500;              /* LMA | LME */
  if (ioctl(v->vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
  struct kvm_regs r = {.rip = entry, .rflags = 2, .rsp = STACK_TOP};
  if (ioctl(v->vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
}

static int is_port_out(struct kvm_run *run, uint16_t port) {
  return run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT && run->io.port == port;
}


static void unexpected(struct kvm_run *run) {
  fprintf(stderr, "unexpected exit %u", run->exit_reason);
  struct kvm_regs r;
  struct kvm_sregs s;
  if (debug_vcpu >= 0 && ioctl(debug_vcpu, KVM_GET_REGS, &r) == 0 && ioctl(debug_vcpu, KVM_GET_SREGS, &s) == 0)
    fprintf(stderr, " rip 0x%llx cs 0x%x/0x%llx cr0 0x%llx efer 0x%llx cr3 0x%llx cr4 0x%llx", (unsigned long long)r.rip, s.cs.selector,
            (unsigned long long)s.cs.base, (unsigned long long)s.cr0, (unsigned long long)s.efer, (unsigned long long)s.cr3, (unsigned long long)s.cr4);
  if (run->exit_reason == KVM_EXIT_IO) fprintf(stderr, " port 0x%x", run->io.port);
  if (run->exit_reason == KVM_EXIT_MMIO) fprintf(stderr, " mmio 0x%llx", (unsigned long long)run->mmio.phys_addr);
  if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) fprintf(stderr, " suberror %u", run->internal.suberror);
  fprintf(stderr, "\n");
  exit(1);
}

static void kvm_run_once(struct vm *v) {
  while (ioctl(v->vcpu, KVM_RUN, 0) < 0) {
    if (errno != EINTR) die("KVM_RUN");
  }
}

/* (a) and (b): the doorbell loop, every write exiting or absorbed. */
static void doorbells(const char *dir, uint64_t n, int absorbed) {
  struct vm v;
  vm_open(&v, 0);
  load_guest(&v, dir, "mmio-writer");
  set_param(&v, P_ADDR, DOORBELL);
  set_param(&v, P_LEN, 4);
  set_param(&v, P_VALUE, 1);
  set_param(&v, P_COUNT, n);
  int efd = -1;
  if (absorbed) {
    efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct kvm_ioeventfd io = {.addr = DOORBELL, .len = 4, .fd = efd};
    if (ioctl(v.vm, KVM_IOEVENTFD, &io) < 0) die("KVM_IOEVENTFD");
  }
  vcpu_open(&v);
  uint64_t exits = 0, doorbell_exits = 0;
  double t0 = now_us();
  for (;;) {
    kvm_run_once(&v);
    exits++;
    struct kvm_run *run = v.run;
    if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.is_write && run->mmio.phys_addr == DOORBELL) {
      doorbell_exits++;
      continue;
    }
    if (is_port_out(run, DONE_PORT)) break;
    unexpected(run);
  }
  double t1 = now_us();
  uint64_t signalled = 0;
  if (absorbed && read(efd, &signalled, 8) != 8) die("read eventfd");
  if (doorbell_exits + signalled != n) {
    fprintf(stderr, "doorbells: %llu exits + %llu signals != %llu\n", (unsigned long long)doorbell_exits,
            (unsigned long long)signalled, (unsigned long long)n);
    exit(1);
  }
  printf("{\"bench\":\"%s\",\"n\":%llu,\"exits\":%llu,\"signalled\":%llu,\"usPerOp\":%.4f}\n",
         absorbed ? "ioeventfd" : "mmio-exit", (unsigned long long)n, (unsigned long long)exits,
         (unsigned long long)signalled, (t1 - t0) / n);
}

/* (c) irqfd round trip. */
static struct vm irq_vm;
static _Atomic uint32_t reports;
static uint32_t last_vector;

static void futex_wait(_Atomic uint32_t *addr, uint32_t seen) {
  syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0); }

static void *vcpu_thread(void *arg) {
  (void)arg;
  struct vm *v = &irq_vm;
  vcpu_open(v);
  for (;;) {
    kvm_run_once(v);
    struct kvm_run *run = v->run;
    if (is_port_out(run, REPORT_PORT)) {
      memcpy(&last_vector, (uint8_t *)run + run->io.data_offset, 4);
      atomic_fetch_add(&reports, 1);
      futex_wake(&reports);
      continue;
    }
    if (is_port_out(run, DONE_PORT)) return NULL;
    unexpected(run);
  }
}

static void irqfd_round_trip(const char *dir, uint64_t n) {
  struct vm *v = &irq_vm;
  vm_open(v, 1);
  load_guest(v, dir, "interrupt-waiter");
  set_param(v, P_COUNT, n);
  set_param(v, P_READY, 1);
  set_param(v, P_IOAPIC_PIN, IRQ_GSI);
  set_param(v, P_VECTOR, IRQ_VECTOR);
  set_param(v, P_LEVEL, 0);
  int efd = eventfd(0, EFD_CLOEXEC);
  struct kvm_irqfd irq = {.fd = (uint32_t)efd, .gsi = IRQ_GSI};
  if (ioctl(v->vm, KVM_IRQFD, &irq) < 0) die("KVM_IRQFD");
  pthread_t t;
  pthread_create(&t, NULL, vcpu_thread, NULL);
  /* The guest reports READY once its IOAPIC pin is programmed (an edge before that is lost). */
  uint64_t one = 1;
  while (atomic_load(&reports) == 0) futex_wait(&reports, 0);
  double total = 0;
  for (uint64_t i = 0; i < n; i++) {
    uint32_t seen = atomic_load(&reports);
    double t0 = now_us();
    if (write(efd, &one, 8) != 8) die("write eventfd");
    while (atomic_load(&reports) == seen) futex_wait(&reports, seen);
    total += now_us() - t0;
  }
  pthread_join(t, NULL);
  if (last_vector != IRQ_VECTOR) {
    fprintf(stderr, "irqfd: vector 0x%x reported\n", last_vector);
    exit(1);
  }
  printf("{\"bench\":\"irqfd\",\"n\":%llu,\"reports\":%u,\"usPerOp\":%.4f}\n", (unsigned long long)n,
         atomic_load(&reports), total / n);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s <guest-dir> mmio-exit|ioeventfd|irqfd N\n", argv[0]);
    return 2;
  }
  uint64_t n = strtoull(argv[3], NULL, 0);
  if (!strcmp(argv[2], "mmio-exit")) doorbells(argv[1], n, 0);
  else if (!strcmp(argv[2], "ioeventfd")) doorbells(argv[1], n, 1);
  else if (!strcmp(argv[2], "irqfd")) irqfd_round_trip(argv[1], n);
  else return 2;
  return 0;
}
