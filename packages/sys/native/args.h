// Argument helpers: every exported function validates its arguments and throws
// a TypeError instead of crashing on bad input from JavaScript.
#pragma once
#include <napi.h>
#include <stdint.h>

#include <string>

namespace rxvmm {

inline bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

inline bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  if (info.Length() <= i || !info[i].IsBigInt()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a bigint")
        .ThrowAsJavaScriptException();
    return false;
  }
  bool lossless = false;
  *out = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) {
    Napi::RangeError::New(info.Env(), "argument " + std::to_string(i) + " is not an unsigned 64-bit value")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

inline bool ArgString(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

}  // namespace rxvmm
