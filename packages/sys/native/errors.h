// Errors cross into JavaScript as Error objects whose .code is the errno name,
// exactly like Node's own fs errors.
#pragma once
#include <napi.h>

namespace rxvmm {

// Throws `Error(<syscall>: <strerror>)` with .code = errno name and .errno = -errno.
void ThrowErrno(Napi::Env env, int err, const char* syscall);

// Throws an Error with the given errno name as .code (no syscall involved).
void ThrowCode(Napi::Env env, const char* code, const char* message);

// ThrowErrno, then the `undefined` an exported function returns with the
// exception pending: `if (fd < 0) return FailErrno(info.Env(), errno, "eventfd");`
inline Napi::Value FailErrno(Napi::Env env, int err, const char* syscall) {
  ThrowErrno(env, err, syscall);
  return env.Undefined();
}

// The same for ThrowCode.
inline Napi::Value FailCode(Napi::Env env, const char* code, const char* message) {
  ThrowCode(env, code, message);
  return env.Undefined();
}

}  // namespace rxvmm
