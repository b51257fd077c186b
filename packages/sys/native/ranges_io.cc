// preadv/pwritev between a file and (offset, length) ranges of one byte
// buffer (a guest-memory region): a request of many pieces is one call, with
// no typed-array view per piece. Every range is checked against the buffer
// here, so no number from JavaScript (or from a guest) reaches the kernel
// unchecked: malformed numbers are EINVAL, a range outside the buffer EFAULT.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/uio.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// 2^53: the largest integer every double below it holds exactly.
constexpr double kMaxExact = 9007199254740992.0;

bool IsIndex(double d) { return d >= 0 && d < kMaxExact && d == static_cast<double>(static_cast<int64_t>(d)); }

// The fd, the buffer, the ranges and the file position of a call, checked; false with an
// exception pending otherwise. Fills iov[0..*count).
bool RangesArgs(const Napi::CallbackInfo& info, const char* name, int* fd, struct iovec* iov,
                int* count, off_t* position) {
  Napi::Env env = info.Env();
  char message[200];
  int64_t fd64;
  if (!ArgInt(info, 0, &fd64)) return false;
  if (info.Length() < 5 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    snprintf(message, sizeof message,
             "%s(fd, buffer: Uint8Array, ranges: Float64Array, count: number, position: number)", name);
    Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
    return false;
  }
  if (fd64 < 0 || fd64 > INT_MAX) {
    snprintf(message, sizeof message, "%s: fd %lld is not a file descriptor", name, static_cast<long long>(fd64));
    ThrowCode(env, "EBADF", message);
    return false;
  }
  Napi::Uint8Array buffer = info[1].As<Napi::Uint8Array>();
  Napi::Float64Array ranges = info[2].As<Napi::Float64Array>();
  // A detached buffer (an unmapped region) has no data and length 0: every range is outside it.
  uint8_t* base = buffer.Data();
  const double size = static_cast<double>(buffer.ByteLength());
  const double countD = info[3].As<Napi::Number>().DoubleValue();
  const double positionD = info[4].As<Napi::Number>().DoubleValue();
  if (!IsIndex(countD) || countD > IOV_MAX || countD * 2 > static_cast<double>(ranges.ElementLength())) {
    snprintf(message, sizeof message, "%s: count %g is not 0..%d or more than the ranges array holds", name,
             countD, IOV_MAX);
    ThrowCode(env, "EINVAL", message);
    return false;
  }
  if (!IsIndex(positionD)) {
    snprintf(message, sizeof message, "%s: file position %g is not an integer 0..2^53", name, positionD);
    ThrowCode(env, "EINVAL", message);
    return false;
  }
  const int n = static_cast<int>(countD);
  const double* pairs = ranges.Data();
  for (int i = 0; i < n; i++) {
    const double offset = pairs[2 * i];
    const double length = pairs[2 * i + 1];
    if (!IsIndex(offset) || !IsIndex(length)) {
      snprintf(message, sizeof message, "%s: range %d (offset %g, length %g) is not two integers 0..2^53", name,
               i, offset, length);
      ThrowCode(env, "EINVAL", message);
      return false;
    }
    // length <= size - offset: both exact, no sum that could round.
    if (offset > size || length > size - offset) {
      snprintf(message, sizeof message, "%s: range %d (offset %.0f, length %.0f) is outside the buffer of %.0f bytes",
               name, i, offset, length, size);
      ThrowCode(env, "EFAULT", message);
      return false;
    }
    iov[i].iov_base = base + static_cast<size_t>(offset);
    iov[i].iov_len = static_cast<size_t>(length);
  }
  *fd = static_cast<int>(fd64);
  *count = n;
  *position = static_cast<off_t>(positionD);
  return true;
}

// One preadv(2) or pwritev(2) (`io`, retried on EINTR) between the file and
// buffer[ranges[2i] .. ranges[2i] + ranges[2i+1]) for i < count -> the bytes moved.
Napi::Value RangesIo(const Napi::CallbackInfo& info, const char* name, const char* syscall,
                     ssize_t (*io)(int, const struct iovec*, int, off_t)) {
  struct iovec iov[IOV_MAX];
  int fd, count;
  off_t position;
  if (!RangesArgs(info, name, &fd, iov, &count, &position)) return info.Env().Undefined();
  ssize_t n;
  do {
    n = io(fd, iov, count, position);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno(info.Env(), errno, syscall);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// preadvRanges(fd, buffer, ranges, count, position) -> bytes read.
Napi::Value PreadvRanges(const Napi::CallbackInfo& info) {
  return RangesIo(info, "preadvRanges", "preadv", preadv);
}

// pwritevRanges(fd, buffer, ranges, count, position) -> bytes written.
Napi::Value PwritevRanges(const Napi::CallbackInfo& info) {
  return RangesIo(info, "pwritevRanges", "pwritev", pwritev);
}

}  // namespace

void InitRangesIo(Napi::Env env, Napi::Object exports) {
  exports.Set("preadvRanges", Napi::Function::New(env, PreadvRanges, "preadvRanges"));
  exports.Set("pwritevRanges", Napi::Function::New(env, PwritevRanges, "pwritevRanges"));
  exports.Set("IOV_MAX", Napi::Number::New(env, IOV_MAX));
}

}  // namespace rxvmm
