// The one native module of rxvmm. Each concern lives in its own file and
// registers its functions here; all logic stays in TypeScript.
#include <napi.h>

namespace rxvmm {
void InitFd(Napi::Env env, Napi::Object exports);
void InitPoller(Napi::Env env, Napi::Object exports);
void InitUnixSocket(Napi::Env env, Napi::Object exports);
void InitMman(Napi::Env env, Napi::Object exports);
void InitIoctl(Napi::Env env, Napi::Object exports);
void InitKick(Napi::Env env, Napi::Object exports);
void InitSeals(Napi::Env env, Napi::Object exports);
void InitRangesIo(Napi::Env env, Napi::Object exports);
}  // namespace rxvmm

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  rxvmm::InitFd(env, exports);
  rxvmm::InitPoller(env, exports);
  rxvmm::InitUnixSocket(env, exports);
  rxvmm::InitMman(env, exports);
  rxvmm::InitIoctl(env, exports);
  rxvmm::InitKick(env, exports);
  rxvmm::InitSeals(env, exports);
  rxvmm::InitRangesIo(env, exports);
  return exports;
}

NODE_API_MODULE(rxvmm_sys, Init)
