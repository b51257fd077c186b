// mmap/munmap/memfd_create and zero-copy ArrayBuffers over a mapping.
// Minimal version added by the vhost-user back-end (it maps the frontend's
// memory regions); the kvm-linux engineer owns this file and may extend it.
//
// Addresses cross into JavaScript as bigint. `mappingBuffer` makes an external
// ArrayBuffer over [address, address+length) without owning it: the caller
// keeps the mapping alive for as long as any view is used (each thread may make
// its own buffer from the same address, see docs/ARCHITECTURE.md "Guest memory
// per thread").
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// mmap(length: number, prot: number, flags: number, fd: number, offset: bigint) -> bigint address
Napi::Value Mmap(const Napi::CallbackInfo& info) {
  int64_t length, prot, flags, fd;
  uint64_t offset;
  if (!ArgInt(info, 0, &length) || !ArgInt(info, 1, &prot) || !ArgInt(info, 2, &flags) || !ArgInt(info, 3, &fd) ||
      !ArgU64(info, 4, &offset))
    return info.Env().Undefined();
  if (length <= 0) return FailCode(info.Env(), "EINVAL", "mmap: length must be positive");
  void* addr = mmap(nullptr, static_cast<size_t>(length), static_cast<int>(prot), static_cast<int>(flags),
                    static_cast<int>(fd), static_cast<off_t>(offset));
  if (addr == MAP_FAILED) return FailErrno(info.Env(), errno, "mmap");
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(addr)));
}

// munmap(address: bigint, length: number)
Napi::Value Munmap(const Napi::CallbackInfo& info) {
  uint64_t addr;
  int64_t length;
  if (!ArgU64(info, 0, &addr) || !ArgInt(info, 1, &length)) return info.Env().Undefined();
  if (munmap(reinterpret_cast<void*>(static_cast<uintptr_t>(addr)), static_cast<size_t>(length)) < 0)
    ThrowErrno(info.Env(), errno, "munmap");
  return info.Env().Undefined();
}

// mappingBuffer(address: bigint, length: number) -> ArrayBuffer over the mapping (not owned).
Napi::Value MappingBuffer(const Napi::CallbackInfo& info) {
  uint64_t addr;
  int64_t length;
  if (!ArgU64(info, 0, &addr) || !ArgInt(info, 1, &length)) return info.Env().Undefined();
  if (addr == 0 || length <= 0)
    return FailCode(info.Env(), "EINVAL", "mappingBuffer: null address or empty length");
  return Napi::ArrayBuffer::New(info.Env(), reinterpret_cast<void*>(static_cast<uintptr_t>(addr)),
                                static_cast<size_t>(length));
}

// memfdCreate(name: string, flags: number) -> fd
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  std::string name;
  int64_t flags;
  if (!ArgString(info, 0, &name) || !ArgInt(info, 1, &flags)) return info.Env().Undefined();
  int fd = memfd_create(name.c_str(), static_cast<unsigned int>(flags));
  if (fd < 0) return FailErrno(info.Env(), errno, "memfd_create");
  return Napi::Number::New(info.Env(), fd);
}

}  // namespace

void InitMman(Napi::Env env, Napi::Object exports) {
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("mappingBuffer", Napi::Function::New(env, MappingBuffer, "mappingBuffer"));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));

  Napi::Object constants = Napi::Object::New(env);
  constants.Set("PROT_NONE", Napi::Number::New(env, PROT_NONE));
  constants.Set("PROT_READ", Napi::Number::New(env, PROT_READ));
  constants.Set("PROT_WRITE", Napi::Number::New(env, PROT_WRITE));
  constants.Set("MAP_SHARED", Napi::Number::New(env, MAP_SHARED));
  constants.Set("MAP_PRIVATE", Napi::Number::New(env, MAP_PRIVATE));
  constants.Set("MAP_ANONYMOUS", Napi::Number::New(env, MAP_ANONYMOUS));
  constants.Set("MAP_NORESERVE", Napi::Number::New(env, MAP_NORESERVE));
  constants.Set("MFD_CLOEXEC", Napi::Number::New(env, MFD_CLOEXEC));
  constants.Set("MFD_ALLOW_SEALING", Napi::Number::New(env, MFD_ALLOW_SEALING));
  exports.Set("mmanConstants", constants);
}

}  // namespace rxvmm
