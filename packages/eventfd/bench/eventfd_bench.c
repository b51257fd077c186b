// C reference for bench/run.mjs: the same two measurements with pthreads and
// eventfds, the main thread waiting in epoll_wait like libuv does.
//   latency: a worker thread stamps CLOCK_MONOTONIC and writes eventfd A; the
//            main thread wakes in epoll_wait, reads A, takes the difference, and
//            answers on eventfd B, on which the worker waits (poll + read) before
//            the next sample. Each sample is one cross-thread wake-up.
//   throughput: the worker writes 1 to A `signals` times as fast as it can; the
//            main thread wakes, reads (coalesced) values and sums them until all
//            arrived (the clock starts when the main thread says "go" on a third eventfd). Reports signals/s and the number of wake-ups.
// Usage: eventfd_bench <samples> <signals> <warmup>; prints one JSON line.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int efd_a, efd_b, efd_go;
static long samples, signals, warmup;
static _Atomic int64_t stamp;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void write1(int fd, uint64_t v) {
  while (write(fd, &v, 8) != 8) {
    if (errno != EINTR && errno != EAGAIN) { perror("write"); exit(1); }
  }
}

static uint64_t wait_read(int fd) {
  uint64_t v;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) { perror("poll"); exit(1); }
    if (read(fd, &v, 8) == 8) return v;
    if (errno != EAGAIN && errno != EINTR) { perror("read"); exit(1); }
  }
}

static void* worker(void* arg) {
  (void)arg;
  for (long i = 0; i < warmup + samples; i++) {
    stamp = now_ns();
    write1(efd_a, 1);
    wait_read(efd_b);
  }
  wait_read(efd_go);  // "go": the main thread has started its clock
  for (long i = 0; i < signals; i++) write1(efd_a, 1);
  return NULL;
}

static int cmp(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s samples signals warmup\n", argv[0]); return 2; }
  samples = atol(argv[1]);
  signals = atol(argv[2]);
  warmup = atol(argv[3]);
  efd_a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  efd_b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  efd_go = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = efd_a};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd_a, &ev);
  int64_t* lat = malloc(sizeof(int64_t) * (size_t)samples);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);

  long n = 0;
  while (n < warmup + samples) {
    struct epoll_event out;
    if (epoll_wait(ep, &out, 1, -1) <= 0) continue;
    uint64_t v;
    if (read(efd_a, &v, 8) != 8) continue;  // spurious
    int64_t d = now_ns() - stamp;
    if (n >= warmup) lat[n - warmup] = d;
    n++;
    write1(efd_b, 1);
  }

  uint64_t total = 0;
  long wakeups = 0;
  int64_t start = now_ns();
  write1(efd_go, 1);
  while (total < (uint64_t)signals) {
    struct epoll_event out;
    if (epoll_wait(ep, &out, 1, -1) <= 0) continue;
    uint64_t v;
    if (read(efd_a, &v, 8) != 8) continue;
    total += v;
    wakeups++;
  }
  int64_t elapsed = now_ns() - start;
  pthread_join(t, NULL);

  qsort(lat, (size_t)samples, sizeof(int64_t), cmp);
  printf("{\"p50_ns\":%lld,\"p99_ns\":%lld,\"throughput\":%.1f,\"wakeups\":%ld}\n",
         (long long)lat[samples / 2], (long long)lat[(samples * 99) / 100],
         (double)signals / ((double)elapsed / 1e9), wakeups);
  return 0;
}
