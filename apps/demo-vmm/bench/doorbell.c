/*
 * C reference for the demo's benchmark, measured in the same run: the cost of
 * one guest doorbell write (a 4-byte MMIO write at QueueNotify) that exits to
 * userspace, against the same write absorbed by a KVM_IOEVENTFD (datamatch 0),
 * and the cost of the guest loop alone (subtracted from both). Real-mode
 * guest, one vCPU, in-kernel irqchip. Prints one JSON object.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE 0x10000
#define CODE_ADDR 0x1000
#define DOORBELL 0xe0050 /* outside every memory slot: MMIO */

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* Real mode: ds = 0xe000; ecx = n; loop { [optional: mov dword [0x50], 0]; dec ecx; jnz loop }; hlt; jmp . */
static size_t guest(uint8_t *p, uint32_t n, int write) {
  size_t i = 0;
  const uint8_t head[] = {0xb8, 0x00, 0xe0, 0x8e, 0xd8, 0x66, 0xb9};
  memcpy(p + i, head, sizeof head), i += sizeof head;
  memcpy(p + i, &n, 4), i += 4;
  size_t loop = i;
  if (write) {
    const uint8_t w[] = {0x66, 0xc7, 0x06, 0x50, 0x00, 0x00, 0x00, 0x00, 0x00}; /* mov dword [0x50], 0 */
    memcpy(p + i, w, sizeof w), i += sizeof w;
  }
  p[i++] = 0x66, p[i++] = 0x49;                           /* dec ecx */
  p[i++] = 0x75, p[i] = (uint8_t)(loop - (i + 1)), i++;   /* jnz loop */
  p[i++] = 0xe6, p[i++] = 0xf4;                           /* out 0xf4, al: done */
  p[i++] = 0xeb, p[i++] = 0xfe;                           /* jmp . */
  return i;
}

/* Runs one guest; returns microseconds from the first KVM_RUN to the done port; counts exits. */
static double run(int kvm, uint32_t n, int write, int ioeventfd, long *exits) {
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
  uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct kvm_userspace_memory_region region = {
      .slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  guest(mem + CODE_ADDR, n, write);
  int efd = eventfd(0, EFD_NONBLOCK);
  if (ioeventfd) {
    struct kvm_ioeventfd io = {
        .datamatch = 0, .addr = DOORBELL, .len = 4, .fd = efd, .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
    if (ioctl(vm, KVM_IOEVENTFD, &io) < 0) die("KVM_IOEVENTFD");
  }
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *kr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  struct kvm_sregs sregs;
  ioctl(vcpu, KVM_GET_SREGS, &sregs);
  sregs.cs.base = 0, sregs.cs.selector = 0;
  ioctl(vcpu, KVM_SET_SREGS, &sregs);
  struct kvm_regs regs = {.rip = CODE_ADDR, .rflags = 2};
  ioctl(vcpu, KVM_SET_REGS, &regs);
  *exits = 0;
  double t0 = now_us();
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
    ++*exits;
    if (kr->exit_reason == KVM_EXIT_IO && kr->io.port == 0xf4) break;
    if (kr->exit_reason == KVM_EXIT_MMIO) continue;
    fprintf(stderr, "unexpected exit %u\n", kr->exit_reason);
    exit(1);
  }
  double t = now_us() - t0;
  uint64_t signals = 0;
  if (ioeventfd && read(efd, &signals, 8) != 8) signals = 0;
  if (ioeventfd && signals != n) {
    fprintf(stderr, "ioeventfd counted %llu of %u writes\n", (unsigned long long)signals, n);
    exit(1);
  }
  munmap(kr, size), close(vcpu), close(efd), close(vm), munmap(mem, MEM_SIZE);
  return t;
}

int main(int argc, char **argv) {
  uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 20000;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  long e0, e1, e2;
  /* Best of five, interleaved: the machine is shared and noisy; the minimum is the cleanest figure. */
  double loop = 1e300, exit_ = 1e300, absorbed = 1e300;
  for (int rep = 0; rep < 5; rep++) {
    double t;
    if ((t = run(kvm, n, 0, 0, &e0)) < loop) loop = t;
    if ((t = run(kvm, n, 1, 0, &e1)) < exit_) exit_ = t;
    if ((t = run(kvm, n, 1, 1, &e2)) < absorbed) absorbed = t;
  }
  printf("{\"writes\":%u,\"loopUs\":%.4f,\"exitWriteUs\":%.4f,\"ioeventfdWriteUs\":%.4f,\"exits\":%ld,\"exitsWithIoeventfd\":%ld}\n",
         n, loop / n, (exit_ - loop) / n, (absorbed - loop) / n, e1, e2);
  return 0;
}
