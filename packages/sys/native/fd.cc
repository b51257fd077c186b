// eventfd2, 8-byte counter read/write, close, and a blocking poll(2).
#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// One read(2) of an 8-byte eventfd counter, retried on EINTR (read8 and tryRead8).
ssize_t ReadCounter(int fd, uint64_t* value) {
  ssize_t n;
  do {
    n = read(fd, value, sizeof *value);
  } while (n < 0 && errno == EINTR);
  return n;
}

// eventfd(initval: number (u32), flags: number) -> fd
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  int64_t initval, flags;
  if (!ArgInt(info, 0, &initval) || !ArgInt(info, 1, &flags)) return info.Env().Undefined();
  if (initval < 0 || initval > 0xffffffffLL)
    return FailCode(info.Env(), "EINVAL", "eventfd: initval must be a 32-bit unsigned integer");
  int fd = eventfd(static_cast<unsigned int>(initval), static_cast<int>(flags));
  if (fd < 0) return FailErrno(info.Env(), errno, "eventfd");
  return Napi::Number::New(info.Env(), fd);
}

// read8(fd) -> bigint: one read(2) of 8 bytes; EAGAIN and friends throw.
Napi::Value Read8(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  uint64_t value = 0;
  ssize_t n = ReadCounter(static_cast<int>(fd), &value);
  if (n < 0) return FailErrno(info.Env(), errno, "read");
  if (n != sizeof value) return FailCode(info.Env(), "EIO", "read: short read from an 8-byte counter");
  return Napi::BigInt::New(info.Env(), value);
}

// tryRead8(fd) -> bigint | null: like read8, but EAGAIN returns null (hot path of signals$).
Napi::Value TryRead8(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  uint64_t value = 0;
  ssize_t n = ReadCounter(static_cast<int>(fd), &value);
  if (n < 0) {
    if (errno == EAGAIN) return info.Env().Null();
    return FailErrno(info.Env(), errno, "read");
  }
  return Napi::BigInt::New(info.Env(), value);
}

// write8(fd, value: bigint): one write(2) of 8 bytes.
Napi::Value Write8(const Napi::CallbackInfo& info) {
  int64_t fd;
  uint64_t value;
  if (!ArgInt(info, 0, &fd) || !ArgU64(info, 1, &value)) return info.Env().Undefined();
  ssize_t n;
  do {
    n = write(static_cast<int>(fd), &value, sizeof value);
  } while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(info.Env(), errno, "write");
  return info.Env().Undefined();
}

// readRaw(fd, length) -> number: read(2) into a scratch buffer of `length` bytes,
// returns the byte count. Exists so tests can show the kernel's EINVAL for short buffers.
Napi::Value ReadRaw(const Napi::CallbackInfo& info) {
  int64_t fd, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &length)) return info.Env().Undefined();
  if (length < 0 || length > 64) return FailCode(info.Env(), "EINVAL", "readRaw: length must be 0..64");
  unsigned char buf[64];
  ssize_t n = read(static_cast<int>(fd), buf, static_cast<size_t>(length));
  if (n < 0) return FailErrno(info.Env(), errno, "read");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// writeRaw(fd, bytes: Uint8Array) -> number: write(2) of arbitrary bytes (tests: short writes).
Napi::Value WriteRaw(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    Napi::TypeError::New(info.Env(), "argument 1 must be a Uint8Array").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  ssize_t n = write(static_cast<int>(fd), bytes.Data(), bytes.ByteLength());
  if (n < 0) return FailErrno(info.Env(), errno, "write");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  // close(2) must not be retried on EINTR on Linux: the fd is gone either way.
  if (close(static_cast<int>(fd)) < 0 && errno != EINTR) ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// pollWait(fd, events, timeoutMs) -> revents: a blocking poll(2) of one fd. This
// blocks the calling thread; it exists for the synchronous blocking-mode API.
Napi::Value PollWait(const Napi::CallbackInfo& info) {
  int64_t fd, events, timeout;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &events) || !ArgInt(info, 2, &timeout))
    return info.Env().Undefined();
  struct pollfd p = {static_cast<int>(fd), static_cast<short>(events), 0};
  int n;
  do {
    n = poll(&p, 1, static_cast<int>(timeout));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno(info.Env(), errno, "poll");
  return Napi::Number::New(info.Env(), n == 0 ? 0 : p.revents);
}

}  // namespace

void InitFd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfd", Napi::Function::New(env, EventFd, "eventfd"));
  exports.Set("read8", Napi::Function::New(env, Read8, "read8"));
  exports.Set("tryRead8", Napi::Function::New(env, TryRead8, "tryRead8"));
  exports.Set("write8", Napi::Function::New(env, Write8, "write8"));
  exports.Set("readRaw", Napi::Function::New(env, ReadRaw, "readRaw"));
  exports.Set("writeRaw", Napi::Function::New(env, WriteRaw, "writeRaw"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("pollWait", Napi::Function::New(env, PollWait, "pollWait"));

  Napi::Object constants = Napi::Object::New(env);
  constants.Set("EFD_SEMAPHORE", Napi::Number::New(env, EFD_SEMAPHORE));
  constants.Set("EFD_NONBLOCK", Napi::Number::New(env, EFD_NONBLOCK));
  constants.Set("EFD_CLOEXEC", Napi::Number::New(env, EFD_CLOEXEC));
  constants.Set("POLLIN", Napi::Number::New(env, POLLIN));
  constants.Set("POLLOUT", Napi::Number::New(env, POLLOUT));
  constants.Set("POLLERR", Napi::Number::New(env, POLLERR));
  constants.Set("POLLHUP", Napi::Number::New(env, POLLHUP));
  constants.Set("POLLNVAL", Napi::Number::New(env, POLLNVAL));
  exports.Set("fdConstants", constants);
}

}  // namespace rxvmm
