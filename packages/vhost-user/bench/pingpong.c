// C reference for the vhost-user round trip: the floor a back-end in another
// process cannot beat. Two processes, two eventfds (kick, call), blocking
// reads: the parent writes kick and waits for call, the child waits for kick
// and writes call. Prints the median of ROUNDS runs of N round trips, in ns.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 20000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  int kick = eventfd(0, 0), call = eventfd(0, 0);
  if (kick < 0 || call < 0) return perror("eventfd"), 1;
  pid_t pid = fork();
  if (pid == 0) {
    uint64_t v;
    for (;;) {
      if (read(kick, &v, 8) != 8) _exit(1);
      if (v == 2) _exit(0);  // stop
      v = 1;
      if (write(call, &v, 8) != 8) _exit(1);
    }
  }
  double results[64];
  if (rounds > 64) rounds = 64;
  for (int r = 0; r < rounds; r++) {
    uint64_t one = 1, v;
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
      if (write(kick, &one, 8) != 8 || read(call, &v, 8) != 8) return perror("pingpong"), 1;
    }
    results[r] = (double)(now_ns() - t0) / n;
  }
  uint64_t stop = 2;
  if (write(kick, &stop, 8) != 8) return 1;
  waitpid(pid, NULL, 0);
  qsort(results, rounds, sizeof results[0], cmp);
  printf("%.0f\n", results[rounds / 2]);
  return 0;
}
