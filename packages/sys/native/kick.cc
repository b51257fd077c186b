// Kicking a thread out of a blocking ioctl (KVM_RUN): a no-op SIGUSR2 handler
// installed WITHOUT SA_RESTART, so the interrupted ioctl returns EINTR instead
// of being restarted. SIGUSR1 belongs to Node's inspector. No JavaScript runs
// in signal context: the handler does nothing, the interrupted call reports it.
//
// Threads are named by their kernel thread id (gettid) and signalled with
// tgkill: unlike pthread_kill on an exited thread (undefined behaviour), tgkill
// on a gone thread fails with ESRCH. Callers still gate kicks on "the vCPU is
// alive" (see kvm-linux's runner), so a reused id is never signalled.
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

constexpr int kKickSignal = SIGUSR2;

void NoopHandler(int) {}

// Installs the no-op handler unless a handler is already there. Checked on
// every call (kicks are rare): if JavaScript once listened to SIGUSR2 through
// process.on() and stopped, libuv put back SIG_DFL, which would kill the
// process on the next kick. Another handler (libuv's) is left alone: KVM_RUN
// returns EINTR whatever the handler and SA_RESTART, since it never restarts.
bool EnsureHandler(Napi::Env env) {
  struct sigaction current = {};
  if (sigaction(kKickSignal, nullptr, &current) < 0) {
    ThrowErrno(env, errno, "sigaction");
    return false;
  }
  if (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN) return true;
  struct sigaction action = {};
  action.sa_handler = NoopHandler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocking call in the kicked thread returns EINTR
  if (sigaction(kKickSignal, &action, nullptr) < 0) {
    ThrowErrno(env, errno, "sigaction");
    return false;
  }
  return true;
}

// prepareKickTarget() -> tid: installs the handler (once per process), unblocks
// the kick signal in the calling thread and returns its kernel thread id.
Napi::Value PrepareKickTarget(const Napi::CallbackInfo& info) {
  if (!EnsureHandler(info.Env())) return info.Env().Undefined();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kKickSignal);
  // The raw rt_sigprocmask syscall, not pthread_sigmask: glibc 2.32 moved
  // pthread_sigmask from libpthread into libc under a new symbol version
  // (GLIBC_2.32), so an addon built on a newer glibc would not load on
  // glibc 2.28-2.31 (Debian 11, Ubuntu 20.04, RHEL 8). The syscall is what
  // pthread_sigmask does on Linux (the mask is per thread in the kernel), needs
  // no versioned symbol and no .symver per architecture, and only unblocks, so
  // glibc's filtering of its internal signals does not apply. _NSIG / 8 is the
  // kernel's sigset size (8 bytes on x86-64 and arm64), as glibc and musl pass it.
  if (syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &set, nullptr, _NSIG / 8) < 0)
    return FailErrno(info.Env(), errno, "rt_sigprocmask");
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// gettid() -> number
Napi::Value GetTid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// kickThread(tid) -> boolean: sends the kick signal to a thread of this
// process; false when the thread no longer exists (ESRCH).
Napi::Value KickThread(const Napi::CallbackInfo& info) {
  int64_t tid;
  if (!ArgInt(info, 0, &tid)) return info.Env().Undefined();
  if (!EnsureHandler(info.Env())) return info.Env().Undefined();  // never let SIGUSR2 kill the process
  if (syscall(SYS_tgkill, getpid(), static_cast<pid_t>(tid), kKickSignal) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), errno, "tgkill");
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), true);
}

}  // namespace

void InitKick(Napi::Env env, Napi::Object exports) {
  exports.Set("prepareKickTarget", Napi::Function::New(env, PrepareKickTarget, "prepareKickTarget"));
  exports.Set("gettid", Napi::Function::New(env, GetTid, "gettid"));
  exports.Set("kickThread", Napi::Function::New(env, KickThread, "kickThread"));
  exports.Set("KICK_SIGNAL", Napi::Number::New(env, kKickSignal));
}

}  // namespace rxvmm
