/*
 * C reference for the virtio-ring benchmark: the device side of a split and a
 * packed virtqueue walking and validating exactly the ring layout that
 * bench/run.mjs builds (same sizes, addresses, chains and checks: head and
 * next ranges, loop limit, indirect rules, buffer bounds against guest RAM,
 * readable-before-writable), then writing used entries with release stores.
 * Only the device phase is timed; the driver refill between rounds is not.
 *
 * The device side knows the queue size, the ring addresses and guest RAM's
 * bounds only at run time (struct dev, filled in main from volatile copies),
 * as a real device does and as the JavaScript queue does: nothing of the
 * layout is a compile-time constant the compiler could fold into the checks.
 *
 * Usage: ring_ref <mode> <seconds>   mode: split-1 split-3 split-indirect packed-1 packed-3 packed-indirect,
 *        or split-<kind>-batch: the used idx published once per round (JS: addUsed + publishUsed)
 * Prints one JSON line: {"mode":..., "chains":..., "seconds":..., "checksum":..., "rate":...}
 * (rate: chains per second at the median round; a round = one refill of the ring)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE 0x100000ull
#define MEM_SIZE (4u << 20)
#define QSIZE 256u
#define DESC_OFF 0x0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define DRV_EVT_OFF 0x1000
#define TABLE_OFF 0x4000
#define DATA_OFF 0x10000

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4
#define F_AVAIL (1u << 7)
#define F_USED (1u << 15)

static uint8_t *mem;

/* What the device learns at run time: guest RAM's one region and the queue's layout. */
static struct {
  uint64_t ram_base, ram_size;   /* guest-physical bounds of mem */
  uint32_t num;                  /* queue size */
  uint64_t desc, avail, used;    /* ring areas, offsets into mem */
} dev;
static volatile uint64_t layout_param[6] = {BASE, MEM_SIZE, QSIZE, DESC_OFF, AVAIL_OFF, USED_OFF};

struct chain {
  uint32_t head, nr, nw;
  uint64_t raddr[64], waddr[64];
  uint32_t rlen[64], wlen[64];
  uint64_t rbytes, wbytes;
};

static inline uint16_t ld16(uint64_t off) { uint16_t v; memcpy(&v, mem + off, 2); return v; }
static inline uint32_t ld32(uint64_t off) { uint32_t v; memcpy(&v, mem + off, 4); return v; }
static inline uint64_t ld64(uint64_t off) { uint64_t v; memcpy(&v, mem + off, 8); return v; }
static inline void st16(uint64_t off, uint16_t v) { memcpy(mem + off, &v, 2); }
static inline void st32(uint64_t off, uint32_t v) { memcpy(mem + off, &v, 4); }
static inline void st64(uint64_t off, uint64_t v) { memcpy(mem + off, &v, 8); }

/* Guest range [addr, addr+len) inside RAM, without overflow. */
static inline int in_ram(uint64_t addr, uint32_t len) {
  return addr >= dev.ram_base && addr - dev.ram_base <= dev.ram_size && len <= dev.ram_size - (addr - dev.ram_base);
}

static inline int push(struct chain *c, uint64_t addr, uint32_t len, uint16_t flags) {
  if (!in_ram(addr, len)) return -1;
  if (flags & F_WRITE) {
    if (c->nw == 64) return -1;
    c->waddr[c->nw] = addr; c->wlen[c->nw++] = len; c->wbytes += len;
  } else {
    if (c->nw != 0 || c->nr == 64) return -1;
    c->raddr[c->nr] = addr; c->rlen[c->nr++] = len; c->rbytes += len;
  }
  return 0;
}

/* ---- split ---- */
static uint16_t next_avail, avail_shadow, next_used;

static int split_indirect(struct chain *c, uint64_t addr, uint32_t len, uint16_t flags) {
  if (flags & F_NEXT) return -1;
  if (len == 0 || (len & 15)) return -1;
  if (!in_ram(addr, len)) return -1;
  uint32_t n = len / 16, j = 0, ttl = n;
  uint64_t t = addr - dev.ram_base;
  for (;;) {
    if (ttl-- == 0) return -1;
    uint64_t o = t + 16ull * j;
    uint16_t f = ld16(o + 12);
    if (f & F_INDIRECT) return -1;
    if (push(c, ld64(o), ld32(o + 8), f)) return -1;
    if (!(f & F_NEXT)) return 0;
    j = ld16(o + 14);
    if (j >= n) return -1;
  }
}

/* 1 = chain popped, 0 = empty, -1 = hostile ring */
static int split_pop(struct chain *c) {
  if (next_avail == avail_shadow) {
    uint16_t idx = __atomic_load_n((uint16_t *)(mem + dev.avail + 2), __ATOMIC_ACQUIRE);
    if ((uint16_t)(idx - next_avail) > dev.num) return -1;
    avail_shadow = idx;
    if (idx == next_avail) return 0;
  }
  uint16_t head = ld16(dev.avail + 4 + 2 * (next_avail & (dev.num - 1)));
  if (head >= dev.num) return -1;
  c->head = head; c->nr = c->nw = 0; c->rbytes = c->wbytes = 0;
  uint32_t i = head, ttl = dev.num;
  for (;;) {
    if (ttl-- == 0) return -1;
    uint64_t o = dev.desc + 16ull * i;
    uint64_t addr = ld64(o);
    uint32_t len = ld32(o + 8);
    uint16_t flags = ld16(o + 12);
    if (flags & F_INDIRECT) { if (split_indirect(c, addr, len, flags)) return -1; break; }
    if (push(c, addr, len, flags)) return -1;
    if (!(flags & F_NEXT)) break;
    i = ld16(o + 14);
    if (i >= dev.num) return -1;
  }
  next_avail++;
  return 1;
}

static int batch_used; /* publish the used idx once per round instead of per chain */

static void split_push_used(uint32_t head, uint32_t len) {
  uint64_t e = dev.used + 4 + 8ull * (next_used & (dev.num - 1));
  st32(e, head);
  st32(e + 4, len);
  next_used++;
  if (!batch_used) __atomic_store_n((uint16_t *)(mem + dev.used + 2), next_used, __ATOMIC_RELEASE);
}

/* ---- packed ---- */
static uint32_t p_avail, p_used, d_pos;
static int p_wrap = 1, p_used_wrap = 1, d_wrap = 1;
static uint16_t inflight[65536];

static int packed_pop(struct chain *c) {
  uint32_t p = p_avail;
  int w = p_wrap;
  uint16_t flags = __atomic_load_n((uint16_t *)(mem + dev.desc + 16ull * p + 14), __ATOMIC_ACQUIRE);
  if ((int)((flags >> 7) & 1) != w || (int)((flags >> 15) & 1) == w) return 0;
  c->nr = c->nw = 0; c->rbytes = c->wbytes = 0;
  uint32_t count = 0;
  uint16_t id;
  for (;;) {
    if (++count > dev.num) return -1;
    uint64_t o = dev.desc + 16ull * p;
    uint64_t addr = ld64(o);
    uint32_t len = ld32(o + 8);
    if (flags & F_INDIRECT) {
      if (count > 1 || (flags & F_NEXT) || len == 0 || (len & 15) || !in_ram(addr, len)) return -1;
      uint64_t t = addr - dev.ram_base;
      for (uint32_t j = 0; j < len / 16; j++) {
        uint16_t f = ld16(t + 16ull * j + 14);
        if (f & F_INDIRECT) return -1;
        if (push(c, ld64(t + 16ull * j), ld32(t + 16ull * j + 8), f)) return -1;
      }
    } else if (push(c, addr, len, flags)) {
      return -1;
    }
    int last = !(flags & F_NEXT);
    if (last) id = ld16(o + 12);
    if (++p == dev.num) { p = 0; w ^= 1; }
    if (last) break;
    flags = ld16(dev.desc + 16ull * p + 14);
  }
  if (inflight[id]) return -1;
  inflight[id] = count;
  c->head = id;
  p_avail = p; p_wrap = w;
  return 1;
}

static void packed_push_used(uint32_t id, uint32_t len) {
  uint32_t count = inflight[id];
  inflight[id] = 0;
  uint64_t o = dev.desc + 16ull * p_used;
  st16(o + 12, id);
  st32(o + 8, len);
  __atomic_store_n((uint16_t *)(mem + o + 14), p_used_wrap ? (F_AVAIL | F_USED) : 0, __ATOMIC_RELEASE);
  p_used += count;
  if (p_used >= dev.num) { p_used -= dev.num; p_used_wrap ^= 1; }
}

/* ---- ring contents (identical to bench/run.mjs) ---- */
static int chain_descs, chains_per_round, indirect;

static uint64_t data_addr(uint32_t chain, uint32_t part) {
  static const uint32_t off[3] = {0, 64, 600};
  return BASE + DATA_OFF + 1024ull * chain + off[part];
}
static const uint32_t part_len[3] = {16, 512, 1};
static const uint16_t part_flags[3] = {0, 0, F_WRITE};

static void setup(const char *mode) {
  int split = strncmp(mode, "split", 5) == 0;
  const char *kind = strchr(mode, '-') + 1;
  indirect = strncmp(kind, "indirect", 8) == 0;
  chain_descs = strncmp(kind, "3", 1) == 0 ? 3 : 1;
  batch_used = strstr(mode, "-batch") != NULL;
  chains_per_round = QSIZE / chain_descs;
  for (uint32_t t = 0; t < QSIZE; t++) {
    for (uint32_t k = 0; k < 3; k++) {
      uint64_t o = TABLE_OFF + 64ull * t + 16 * k;
      st64(o, data_addr(t, k));
      st32(o + 8, part_len[k]);
      if (split) { st16(o + 12, part_flags[k] | (k < 2 ? F_NEXT : 0)); st16(o + 14, k + 1); }
      else { st16(o + 12, 0); st16(o + 14, part_flags[k]); }
    }
  }
  if (split) {
    for (uint32_t j = 0; j < (uint32_t)chains_per_round; j++) {
      for (int k = 0; k < chain_descs; k++) {
        uint64_t o = DESC_OFF + 16ull * (j * chain_descs + k);
        if (indirect) { st64(o, BASE + TABLE_OFF + 64ull * j); st32(o + 8, 48); st16(o + 12, F_INDIRECT); st16(o + 14, 0); }
        else if (chain_descs == 1) { st64(o, data_addr(j, 1)); st32(o + 8, 512); st16(o + 12, 0); st16(o + 14, 0); }
        else { st64(o, data_addr(j, k)); st32(o + 8, part_len[k]); st16(o + 12, part_flags[k] | (k < 2 ? F_NEXT : 0)); st16(o + 14, j * 3 + k + 1); }
      }
    }
  }
}

/* Driver: make one round of chains available (not timed). */
static uint16_t drv_avail;
static void refill_split(void) {
  for (int j = 0; j < chains_per_round; j++) {
    st16(AVAIL_OFF + 4 + 2 * (drv_avail & (QSIZE - 1)), (uint16_t)(j * chain_descs));
    drv_avail++;
  }
  __atomic_store_n((uint16_t *)(mem + AVAIL_OFF + 2), drv_avail, __ATOMIC_RELEASE);
}

static void refill_packed(void) {
  for (int j = 0; j < chains_per_round; j++) {
    uint32_t head_pos = d_pos;
    uint16_t head_flags = 0;
    for (int k = 0; k < chain_descs; k++) {
      uint64_t o = DESC_OFF + 16ull * d_pos;
      uint16_t av = d_wrap ? F_AVAIL : F_USED;
      uint16_t f;
      if (indirect) { st64(o, BASE + TABLE_OFF + 64ull * j); st32(o + 8, 48); f = F_INDIRECT | av; }
      else if (chain_descs == 1) { st64(o, data_addr(j, 1)); st32(o + 8, 512); f = av; }
      else { st64(o, data_addr(j, k)); st32(o + 8, part_len[k]); f = part_flags[k] | (k < 2 ? F_NEXT : 0) | av; }
      st16(o + 12, (uint16_t)j);
      if (k == 0) head_flags = f; else st16(o + 14, f);
      if (++d_pos == QSIZE) { d_pos = 0; d_wrap ^= 1; }
    }
    __atomic_store_n((uint16_t *)(mem + DESC_OFF + 16ull * head_pos + 14), head_flags, __ATOMIC_RELEASE);
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s mode seconds\n", argv[0]); return 2; }
  const char *mode = argv[1];
  double budget = atof(argv[2]);
  mem = aligned_alloc(4096, MEM_SIZE);
  memset(mem, 0, MEM_SIZE);
  dev.ram_base = layout_param[0];
  dev.ram_size = layout_param[1];
  dev.num = (uint32_t)layout_param[2];
  dev.desc = layout_param[3];
  dev.avail = layout_param[4];
  dev.used = layout_param[5];
  int split = strncmp(mode, "split", 5) == 0;
  setup(mode);
  struct chain c;
  uint64_t chains = 0, checksum = 0;
  double timed = 0;
  size_t nrounds = 0, cap = 1 << 16;
  double *round_s = malloc(cap * sizeof *round_s);
  while (timed < budget) {
    if (split) refill_split(); else refill_packed();
    double t0 = now();
    for (;;) {
      int r = split ? split_pop(&c) : packed_pop(&c);
      if (r == 0) break;
      if (r < 0) { fprintf(stderr, "hostile ring?\n"); return 1; }
      checksum += c.rbytes + c.nr + c.nw;
      if (split) split_push_used(c.head, (uint32_t)c.wbytes); else packed_push_used(c.head, (uint32_t)c.wbytes);
      chains++;
    }
    if (batch_used) __atomic_store_n((uint16_t *)(mem + dev.used + 2), next_used, __ATOMIC_RELEASE);
    double dt = now() - t0;
    timed += dt;
    if (nrounds == cap) round_s = realloc(round_s, (cap *= 2) * sizeof *round_s);
    round_s[nrounds++] = dt;
  }
  /* The median round, as bench/run.mjs takes it: an interrupted round is an outlier either way. */
  qsort(round_s, nrounds, sizeof *round_s, cmp_double);
  double rate = (double)chains / nrounds / round_s[nrounds / 2];
  printf("{\"mode\":\"%s\",\"chains\":%llu,\"seconds\":%.6f,\"checksum\":%llu,\"rate\":%.0f}\n", mode,
         (unsigned long long)chains, timed, (unsigned long long)checksum, rate);
  return 0;
}
