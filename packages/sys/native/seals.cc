// File seals (fcntl F_GET_SEALS / F_ADD_SEALS) of memfds and other shmem files:
// a vhost-user back-end checks that a frontend cannot shrink the memory it maps
// (a truncated file makes later accesses SIGBUS), and a frontend seals its own.
#include <errno.h>
#include <fcntl.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// getSeals(fd) -> F_SEAL_* bits. EINVAL for a file that has no seals (not shmem/hugetlbfs).
Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int seals = fcntl(static_cast<int>(fd), F_GET_SEALS);
  if (seals < 0) return FailErrno(info.Env(), errno, "fcntl(F_GET_SEALS)");
  return Napi::Number::New(info.Env(), seals);
}

// addSeals(fd, seals): EPERM once F_SEAL_SEAL is set (or for a memfd made without
// MFD_ALLOW_SEALING); EBUSY for F_SEAL_WRITE while a writable shared mapping exists.
Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  int64_t fd, seals;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &seals)) return info.Env().Undefined();
  if (fcntl(static_cast<int>(fd), F_ADD_SEALS, static_cast<int>(seals)) < 0)
    ThrowErrno(info.Env(), errno, "fcntl(F_ADD_SEALS)");
  return info.Env().Undefined();
}

}  // namespace

void InitSeals(Napi::Env env, Napi::Object exports) {
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));

  Napi::Object constants = Napi::Object::New(env);
  constants.Set("F_SEAL_SEAL", Napi::Number::New(env, F_SEAL_SEAL));
  constants.Set("F_SEAL_SHRINK", Napi::Number::New(env, F_SEAL_SHRINK));
  constants.Set("F_SEAL_GROW", Napi::Number::New(env, F_SEAL_GROW));
  constants.Set("F_SEAL_WRITE", Napi::Number::New(env, F_SEAL_WRITE));
#ifdef F_SEAL_FUTURE_WRITE
  constants.Set("F_SEAL_FUTURE_WRITE", Napi::Number::New(env, F_SEAL_FUTURE_WRITE));
#else
  constants.Set("F_SEAL_FUTURE_WRITE", Napi::Number::New(env, 0x0010));
#endif
  exports.Set("sealConstants", constants);
}

}  // namespace rxvmm
