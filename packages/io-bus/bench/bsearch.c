/* C reference for the io-bus benchmark: the kernel's kvm_io_bus_cmp, lib/bsearch.c,
 * step-back and offer loop, over n registrations at addr = i*16, len 8, with a
 * device write callback through a function pointer (like kvm_iodevice_write).
 * Usage: bsearch <n> <iterations>; prints "ns_per_dispatch <value>". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct range { uint64_t addr; int len; int (*write)(void *, uint64_t, int, const void *); void *dev; };

static int cmp(const struct range *r1, const struct range *r2) {
  uint64_t a1 = r1->addr, a2 = r2->addr;
  if (a1 < a2) return -1;
  if (r2->len) { a1 += r1->len; a2 += r2->len; }
  if (a1 > a2) return 1;
  return 0;
}

static long search(const struct range *key, const struct range *base, size_t num) {
  const struct range *b = base;
  while (num > 0) {
    const struct range *pivot = b + (num >> 1);
    int r = cmp(key, pivot);
    if (r == 0) return pivot - base;
    if (r > 0) { b = pivot + 1; num--; }
    num >>= 1;
  }
  return -1;
}

static long hits;
static int accept(void *dev, uint64_t addr, int len, const void *val) { (void)dev; (void)addr; (void)len; hits += *(const uint8_t *)val; return 0; }

static int dispatch(struct range *r, size_t n, uint64_t addr, int len, const void *val) {
  struct range key = { addr, len, 0, 0 };
  long off = search(&key, r, n);
  if (off < 0) return -1;
  while (off > 0 && cmp(&key, &r[off - 1]) == 0) off--;
  while ((size_t)off < n && cmp(&key, &r[off]) == 0) {
    if (!r[off].write(r[off].dev, addr, len, val)) return 0;
    off++;
  }
  return -1;
}

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], 0, 0) : 1000;
  long iters = argc > 2 ? strtol(argv[2], 0, 0) : 1000000;
  struct range *r = calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) { r[i].addr = i * 16; r[i].len = 8; r[i].write = accept; }
  uint64_t *addrs = malloc(4096 * sizeof *addrs);
  uint32_t x = 12345;
  for (int i = 0; i < 4096; i++) { x = x * 1103515245u + 12345u; addrs[i] = (uint64_t)((x >> 8) % n) * 16 + 4; }
  uint8_t val[4] = { 1, 0, 0, 0 };
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long fails = 0;
  for (long i = 0; i < iters; i++) fails += dispatch(r, n, addrs[i & 4095], 4, val) != 0;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / (double)iters;
  printf("ns_per_dispatch %.2f hits %ld fails %ld\n", ns, hits, fails);
  return fails != 0;
}
