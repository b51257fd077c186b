// ioctl(2) and the few fd calls guest memory needs (ftruncate), plus
// detaching an ArrayBuffer made by mappingBuffer before its mapping goes away.
//
// `ioctl` passes either an integer argument or a pointer to the bytes of a
// Uint8Array: kvm-linux encodes each typed struct (sizes and offsets checked
// against <linux/kvm.h> by its tests) and only ever calls it through those
// encoders; no public package exposes a raw "any buffer" ioctl.
#include <errno.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// Resolves argument 2: a number (integer argument), a Uint8Array (pointer to
// its bytes), or undefined/null (0). Returns false after throwing on bad input.
// The request encodes the size of the struct the kernel copies (_IOC_SIZE): a
// smaller buffer would let the kernel write past it, and a non-zero number for
// a request that takes a pointer would be dereferenced as an address in this
// process; both are refused before the syscall. (Variable-length structs are
// checked for their fixed header only; their encoders size the rest.)
bool IoctlArg(const Napi::CallbackInfo& info, unsigned long request, unsigned long* out) {
  if (info.Length() <= 2 || info[2].IsUndefined() || info[2].IsNull()) {
    *out = 0;
    return true;
  }
  if (info[2].IsNumber()) {
    *out = static_cast<unsigned long>(info[2].As<Napi::Number>().Int64Value());
    if (*out != 0 && _IOC_DIR(request) != _IOC_NONE) {
      Napi::TypeError::New(info.Env(), "ioctl: this request takes a pointer: pass a Uint8Array, not a number")
          .ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }
  if (info[2].IsTypedArray()) {
    Napi::TypedArray array = info[2].As<Napi::TypedArray>();
    if (array.TypedArrayType() == napi_uint8_array) {
      Napi::Uint8Array bytes = array.As<Napi::Uint8Array>();
      if (_IOC_DIR(request) != _IOC_NONE && bytes.ByteLength() < _IOC_SIZE(request)) {
        Napi::TypeError::New(info.Env(), "ioctl: buffer of " + std::to_string(bytes.ByteLength()) +
                                              " bytes is smaller than the request's " +
                                              std::to_string(_IOC_SIZE(request)) + "-byte argument")
            .ThrowAsJavaScriptException();
        return false;
      }
      *out = reinterpret_cast<unsigned long>(bytes.Data());
      return true;
    }
  }
  Napi::TypeError::New(info.Env(), "argument 2 must be a number, a Uint8Array or undefined")
      .ThrowAsJavaScriptException();
  return false;
}

// ioctl(fd, request, arg?) -> number: the ioctl's (non-negative) result; errors throw.
Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  int64_t fd, request;
  unsigned long arg;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &request) ||
      !IoctlArg(info, static_cast<unsigned long>(request), &arg)) return info.Env().Undefined();
  int r = ioctl(static_cast<int>(fd), static_cast<unsigned long>(request), arg);
  if (r < 0) return FailErrno(info.Env(), errno, "ioctl");
  return Napi::Number::New(info.Env(), r);
}

// ioctlIntr(fd, request, arg?) -> number: like ioctl, but an interrupted call
// (EINTR) returns -EINTR instead of throwing: KVM_RUN's kick path is not an error.
Napi::Value IoctlIntr(const Napi::CallbackInfo& info) {
  int64_t fd, request;
  unsigned long arg;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &request) ||
      !IoctlArg(info, static_cast<unsigned long>(request), &arg)) return info.Env().Undefined();
  int r = ioctl(static_cast<int>(fd), static_cast<unsigned long>(request), arg);
  if (r < 0) {
    if (errno == EINTR) return Napi::Number::New(info.Env(), -EINTR);
    ThrowErrno(info.Env(), errno, "ioctl");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), r);
}

// ftruncate(fd, length)
Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int64_t fd, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &length)) return info.Env().Undefined();
  if (ftruncate(static_cast<int>(fd), static_cast<off_t>(length)) < 0) ThrowErrno(info.Env(), errno, "ftruncate");
  return info.Env().Undefined();
}

// detachBuffer(arrayBuffer): every view over it becomes length 0, so a stale
// view of an unmapped region reads undefined instead of faulting the process.
Napi::Value DetachBuffer(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    Napi::TypeError::New(info.Env(), "argument 0 must be an ArrayBuffer").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  info[0].As<Napi::ArrayBuffer>().Detach();
  return info.Env().Undefined();
}

}  // namespace

void InitIoctl(Napi::Env env, Napi::Object exports) {
  exports.Set("ioctl", Napi::Function::New(env, Ioctl, "ioctl"));
  exports.Set("ioctlIntr", Napi::Function::New(env, IoctlIntr, "ioctlIntr"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("detachBuffer", Napi::Function::New(env, DetachBuffer, "detachBuffer"));
}

}  // namespace rxvmm
