/* C reference for the virtio-blk benchmark: the same workloads as blk.bench.mjs done with
 * plain pread/pwrite on the same file, one request at a time, no virtio in between. Like the
 * device's 32 in-flight requests, it rotates over 32 buffers (so both touch the same amount of memory).
 * Usage: pio <file> <workload: randread4k|seqread1m|seqwrite1m> <requests>
 * Prints "us_per_request <value> mib_per_s <value>". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: pio <file> <workload> <requests>\n"); return 2; }
  const char *workload = argv[2];
  long requests = atol(argv[3]);
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) { perror("open"); return 1; }
  off_t size = lseek(fd, 0, SEEK_END);
  size_t len = strcmp(workload, "randread4k") == 0 ? 4096 : 1 << 20;
  int write_mode = strcmp(workload, "seqwrite1m") == 0;
  int random_mode = strcmp(workload, "randread4k") == 0;
  enum { SLOTS = 32 };
  char *bufs = aligned_alloc(4096, len * SLOTS);
  memset(bufs, 0x5a, len * SLOTS);
  uint64_t seed = 12345, blocks = size / len;
  double t0 = now();
  for (long i = 0; i < requests; i++) {
    uint64_t block;
    if (random_mode) { seed = seed * 6364136223846793005ULL + 1442695040888963407ULL; block = (seed >> 33) % blocks; }
    else block = i % blocks;
    char *buf = bufs + (i % SLOTS) * len;
    ssize_t n = write_mode ? pwrite(fd, buf, len, block * len) : pread(fd, buf, len, block * len);
    if (n != (ssize_t)len) { perror("io"); return 1; }
  }
  double t = now() - t0;
  printf("us_per_request %.3f mib_per_s %.1f\n", t * 1e6 / requests, requests * (double)len / (1 << 20) / t);
  close(fd);
  return 0;
}
