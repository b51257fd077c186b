/*
 * blkwork: the guest-side block workload of rxvmm's QEMU end-to-end tests and benchmark.
 *
 * Runs inside a busybox initramfs under QEMU and drives /dev/vda with O_DIRECT, so every
 * byte crosses the virtio-blk queue (no guest page cache). busybox dd cannot do random reads
 * or pattern checks, hence this small static program.
 *
 *   blkwork DEVICE STEP[@OTHER-DEVICE]...
 *     (a step runs on DEVICE, or on OTHER-DEVICE when it ends in @/dev/vdX: the benchmark alternates
 *      two disks served by two back-ends within one boot, so their figures are taken moments apart)
 *     write:OFF:LEN:SEED    write the pattern SEED over [OFF, OFF+LEN) in 1 MiB requests, then fdatasync
 *     parwrite:OFF:LEN:SEED:WRITERS[:PASSES]
 *                           WRITERS processes write the pattern SEED over their share of [OFF, OFF+LEN)
 *                           concurrently, in 64 KiB requests, PASSES times (default 1), then fdatasync
 *                           (several requests in flight at once: what crash-recovery tests need)
 *     verify:OFF:LEN:SEED   read [OFF, OFF+LEN) back and compare it with the pattern SEED
 *     seqwrite:LEN          sequential 1 MiB writes from offset 0 (wrapping at the device end)
 *     seqread:LEN           sequential 1 MiB reads from offset 0 (wrapping at the device end)
 *     randread:COUNT        COUNT reads of 4 KiB at random 4 KiB-aligned offsets
 *     flush                 fdatasync
 *   Sizes take K, M, G suffixes (binary).
 *
 * Every step prints `RXVMM-BEGIN {...}` before it starts and `RXVMM-RESULT {...}` when done, one
 * JSON object per line, so the host can parse the serial console and sample the back-end's CPU
 * time exactly around each step. The pattern is the little-endian u32 sequence
 * word(i) = i * 2654435761 + seed (mod 2^32), i = byte offset / 4: it names its own offset, so a
 * request that lands at the wrong place is caught, and the host recomputes it in a few lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define PAR_CHUNK (64u << 10)
#define SMALL 4096u
#define ALIGN 4096u

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s) return -1;
  switch (*end) {
    case 'G': v <<= 10; /* fall through */
    case 'M': v <<= 10; /* fall through */
    case 'K': v <<= 10; end++; break;
    default: break;
  }
  if (*end) return -1;
  *out = v;
  return 0;
}

static void fill_pattern(uint8_t *buf, size_t len, uint64_t off, uint32_t seed) {
  uint32_t *w = (uint32_t *)buf;
  uint32_t i = (uint32_t)(off / 4);
  for (size_t k = 0; k < len / 4; k++, i++) w[k] = i * 2654435761u + seed;
}

/* Byte offset of the first word that differs from the pattern, or -1. */
static int64_t check_pattern(const uint8_t *buf, size_t len, uint64_t off, uint32_t seed) {
  const uint32_t *w = (const uint32_t *)buf;
  uint32_t i = (uint32_t)(off / 4);
  for (size_t k = 0; k < len / 4; k++, i++)
    if (w[k] != i * 2654435761u + seed) return (int64_t)(off + k * 4);
  return -1;
}

/* Full-length pread/pwrite; O_DIRECT on a block device may still return short counts. */
static int io_full(int fd, uint8_t *buf, size_t len, uint64_t off, int write) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write ? pwrite(fd, buf + done, len - done, (off_t)(off + done))
                      : pread(fd, buf + done, len - done, (off_t)(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      errno = EIO;
      return -1;
    }
    done += (size_t)n;
  }
  return 0;
}

/* The device of the step being run, named in every line about it. */
static const char *cur_dev = "";

static void begin(const char *op, const char *step) {
  printf("RXVMM-BEGIN {\"op\":\"%s\",\"step\":\"%s\",\"dev\":\"%s\"}\n", op, step, cur_dev);
  fflush(stdout);
}

static void fail(const char *op, const char *step, const char *what) {
  printf("RXVMM-RESULT {\"op\":\"%s\",\"step\":\"%s\",\"dev\":\"%s\",\"ok\":false,\"error\":\"%s: %s\"}\n", op,
         step, cur_dev, what, strerror(errno));
  fflush(stdout);
}

static void result(const char *op, const char *step, uint64_t bytes, uint64_t ops, uint64_t ns) {
  printf("RXVMM-RESULT {\"op\":\"%s\",\"step\":\"%s\",\"dev\":\"%s\",\"ok\":true,\"bytes\":%llu,\"ops\":%llu,"
         "\"ns\":%llu}\n",
         op, step, cur_dev, (unsigned long long)bytes, (unsigned long long)ops, (unsigned long long)ns);
  fflush(stdout);
}

struct dev {
  char path[64];
  int fd;
  uint64_t size;
};
static struct dev devs[8];
static int ndevs;

/* Opens a device once (O_DIRECT) and prints its RXVMM-DEVICE line; NULL (and a failed RESULT) on error. */
static struct dev *get_dev(const char *path) {
  for (int i = 0; i < ndevs; i++)
    if (!strcmp(devs[i].path, path)) return &devs[i];
  cur_dev = path;
  if (ndevs == 8 || strlen(path) >= sizeof devs[0].path) {
    errno = EINVAL;
    fail("open", path, "too many devices or name too long");
    return NULL;
  }
  /* A read-only disk (VIRTIO_BLK_F_RO) may refuse O_RDWR: fall back so reads still run and writes fail. */
  int readonly = 0;
  int fd = open(path, O_RDWR | O_DIRECT);
  if (fd < 0 && (errno == EROFS || errno == EACCES || errno == EPERM)) {
    readonly = 1;
    fd = open(path, O_RDONLY | O_DIRECT);
  }
  if (fd < 0) {
    fail("open", path, "open");
    return NULL;
  }
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) < 0 || size < CHUNK) {
    fail("open", path, "BLKGETSIZE64 (device smaller than 1 MiB?)");
    close(fd);
    return NULL;
  }
  /* Linux opens a read-only disk O_RDWR and fails the writes (EPERM): ask the block layer. */
  int ro = 0;
  if (ioctl(fd, BLKROGET, &ro) == 0 && ro) readonly = 1;
  printf("RXVMM-DEVICE {\"path\":\"%s\",\"bytes\":%llu,\"readOnly\":%s}\n", path, (unsigned long long)size,
         readonly ? "true" : "false");
  fflush(stdout);
  struct dev *d = &devs[ndevs++];
  snprintf(d->path, sizeof d->path, "%s", path);
  d->fd = fd;
  d->size = size;
  return d;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: blkwork DEVICE STEP[@DEVICE]...\n");
    return 2;
  }
  if (!get_dev(argv[1])) return 1;
  uint8_t *buf;
  if (posix_memalign((void **)&buf, ALIGN, CHUNK)) return 1;
  int status = 0;

  for (int a = 2; a < argc; a++) {
    char step[256];
    snprintf(step, sizeof step, "%s", argv[a]);
    char *at = strchr(step, '@');
    if (at) *at++ = 0;
    struct dev *d = get_dev(at ? at : argv[1]);
    if (!d) {
      status = 1;
      continue;
    }
    cur_dev = d->path;
    int fd = d->fd;
    uint64_t devsize = d->size;
    char *fields[7] = {0};
    int nf = 0;
    for (char *save, *tok = strtok_r(step, ":", &save); tok && nf < 7; tok = strtok_r(NULL, ":", &save))
      fields[nf++] = tok;
    const char *op = fields[0] ? fields[0] : "";
    uint64_t v[5] = {0, 0, 0, 0, 0};
    int bad = 0;
    for (int k = 1; k < nf && k <= 5; k++) bad |= parse_size(fields[k], &v[k - 1]);
    errno = EINVAL;
    if (bad) {
      fail(op, argv[a], "bad number");
      status = 1;
      continue;
    }
    begin(op, argv[a]);

    if (!strcmp(op, "write") || !strcmp(op, "verify")) {
      int wr = op[0] == 'w';
      uint64_t off = v[0], len = v[1];
      uint32_t seed = (uint32_t)v[2];
      if (nf != 4 || off % ALIGN || len % ALIGN || off + len > devsize) {
        fail(op, argv[a], "want OFF:LEN:SEED, 4 KiB aligned, inside the device");
        status = 1;
        continue;
      }
      uint64_t t0 = now_ns(), ops = 0;
      int64_t bad_at = -1;
      int err = 0;
      for (uint64_t p = off; p < off + len; p += CHUNK, ops++) {
        size_t n = off + len - p < CHUNK ? (size_t)(off + len - p) : CHUNK;
        if (wr) fill_pattern(buf, n, p, seed);
        if (io_full(fd, buf, n, p, wr)) {
          err = 1;
          break;
        }
        if (!wr && (bad_at = check_pattern(buf, n, p, seed)) >= 0) break;
      }
      if (!err && wr && fdatasync(fd)) err = 1;
      uint64_t ns = now_ns() - t0;
      if (err) {
        fail(op, argv[a], wr ? "pwrite/fdatasync" : "pread");
        status = 1;
      } else if (bad_at >= 0) {
        printf("RXVMM-RESULT {\"op\":\"%s\",\"step\":\"%s\",\"ok\":false,\"error\":\"pattern mismatch\","
               "\"mismatchAt\":%lld}\n",
               op, argv[a], (long long)bad_at);
        fflush(stdout);
        status = 1;
      } else {
        result(op, argv[a], len, ops, ns);
      }
    } else if (!strcmp(op, "parwrite")) {
      uint64_t off = v[0], len = v[1], writers = v[3], passes = nf == 6 ? v[4] : 1;
      uint32_t seed = (uint32_t)v[2];
      if ((nf != 5 && nf != 6) || writers < 1 || writers > 64 || passes < 1 || off % ALIGN ||
          len % (writers * PAR_CHUNK) || off + len > devsize) {
        fail(op, argv[a], "want OFF:LEN:SEED:WRITERS[:PASSES], LEN a multiple of WRITERS x 64 KiB, inside the device");
        status = 1;
        continue;
      }
      uint64_t share = len / writers, t0 = now_ns();
      int err = 0;
      for (uint64_t w = 0; w < writers; w++) {
        pid_t pid = fork();
        if (pid < 0) {
          err = 1;
          break;
        }
        if (pid == 0) {
          /* One writer: its own share, one 64 KiB O_DIRECT request at a time, each pass then a flush. */
          uint8_t *wbuf;
          if (posix_memalign((void **)&wbuf, ALIGN, PAR_CHUNK)) _exit(1);
          uint64_t from = off + w * share;
          for (uint64_t p = 0; p < passes; p++) {
            for (uint64_t at = from; at < from + share; at += PAR_CHUNK) {
              fill_pattern(wbuf, PAR_CHUNK, at, seed);
              if (io_full(fd, wbuf, PAR_CHUNK, at, 1)) _exit(1);
            }
            if (fdatasync(fd)) _exit(1);
          }
          _exit(0);
        }
      }
      for (;;) {
        int ws;
        pid_t done = wait(&ws);
        if (done < 0) break; /* ECHILD: every writer has finished */
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) err = 1;
      }
      uint64_t ns = now_ns() - t0;
      if (err) {
        errno = EIO;
        fail(op, argv[a], "a writer failed (pwrite/fdatasync)");
        status = 1;
      } else {
        result(op, argv[a], len * passes, len * passes / PAR_CHUNK, ns);
      }
    } else if (!strcmp(op, "seqread") || !strcmp(op, "seqwrite")) {
      int wr = op[3] == 'w';
      uint64_t len = v[0];
      if (nf != 2 || len % CHUNK) {
        fail(op, argv[a], "want LEN, a multiple of 1 MiB");
        status = 1;
        continue;
      }
      fill_pattern(buf, CHUNK, 0, 0x5eed);
      uint64_t span = devsize / CHUNK * CHUNK, ops = 0, p = 0;
      uint64_t t0 = now_ns();
      int err = 0;
      for (uint64_t done = 0; done < len; done += CHUNK, ops++) {
        if (io_full(fd, buf, CHUNK, p, wr)) {
          err = 1;
          break;
        }
        p += CHUNK;
        if (p >= span) p = 0;
      }
      uint64_t ns = now_ns() - t0;
      if (err) {
        fail(op, argv[a], wr ? "pwrite" : "pread");
        status = 1;
      } else {
        result(op, argv[a], len, ops, ns);
      }
    } else if (!strcmp(op, "randread")) {
      uint64_t count = v[0];
      if (nf != 2) {
        fail(op, argv[a], "want COUNT");
        status = 1;
        continue;
      }
      uint64_t blocks = devsize / SMALL, x = 0x9e3779b97f4a7c15ull;
      uint64_t t0 = now_ns();
      int err = 0;
      for (uint64_t k = 0; k < count; k++) {
        /* xorshift64: a fixed sequence, so every back-end sees the same offsets. */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (io_full(fd, buf, SMALL, (x % blocks) * SMALL, 0)) {
          err = 1;
          break;
        }
      }
      uint64_t ns = now_ns() - t0;
      if (err) {
        fail(op, argv[a], "pread");
        status = 1;
      } else {
        result(op, argv[a], count * SMALL, count, ns);
      }
    } else if (!strcmp(op, "flush")) {
      uint64_t t0 = now_ns();
      if (fdatasync(fd)) {
        fail(op, argv[a], "fdatasync");
        status = 1;
      } else {
        result(op, argv[a], 0, 1, now_ns() - t0);
      }
    } else {
      errno = EINVAL;
      fail(op, argv[a], "unknown step");
      status = 1;
    }
  }
  for (int i = 0; i < ndevs; i++) close(devs[i].fd);
  return status;
}
