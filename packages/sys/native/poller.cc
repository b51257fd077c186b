// Poller: libuv readiness polling of one fd (uv_poll), calling back into JS on
// the loop of the thread that made it (main thread or a worker). It never blocks.
//
// In counter mode the readable fd is read natively (8 bytes) and the value is
// handed to the callback, saving a JS->native round trip on the hot path of
// eventfd streams; a spurious wake-up (EAGAIN after readiness) is ignored.
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start), InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("close", &Poller::Close)});
  }

  // new Poller(fd, callback(err: Error|null, events: number, value?: bigint), counterMode?: boolean)
  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
    int64_t fd;
    if (!ArgInt(info, 0, &fd)) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      Napi::TypeError::New(info.Env(), "callback must be a function").ThrowAsJavaScriptException();
      return;
    }
    fd_ = static_cast<int>(fd);
    counter_mode_ = info.Length() > 2 && info[2].ToBoolean().Value();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(info.Env(), &loop) != napi_ok) {
      ThrowCode(info.Env(), "EINVAL", "Poller: no libuv loop");
      return;
    }
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, fd_);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(info.Env(), -rc, "uv_poll_init");
      return;
    }
    handle_->data = this;
  }

  ~Poller() override {
    // The handle is closed (and freed) by Close(); a Poller collected without it
    // can only be one that never started, so the handle is closed here.
    if (handle_ != nullptr) {
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClosed);
      handle_ = nullptr;
    }
  }

 private:
  // start(events: number): UV_READABLE=1, UV_WRITABLE=2, UV_DISCONNECT=4.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    int64_t events;
    if (!ArgInt(info, 0, &events)) return info.Env().Undefined();
    if (handle_ == nullptr) {
      ThrowCode(info.Env(), "EBADF", "Poller is closed");
      return info.Env().Undefined();
    }
    int rc = uv_poll_start(handle_, static_cast<int>(events), OnEvent);
    if (rc != 0) {
      ThrowErrno(info.Env(), -rc, "uv_poll_start");
      return info.Env().Undefined();
    }
    if (!active_) {
      active_ = true;
      Ref();  // an active poller keeps its JS object (and callback) alive
    }
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPolling();
    if (handle_ != nullptr) {
      handle_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClosed);
      handle_ = nullptr;
    }
    return info.Env().Undefined();
  }

  void StopPolling() {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    if (active_) {
      active_ = false;
      Unref();
    }
  }

  static void OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static void OnEvent(uv_poll_t* handle, int status, int events) {
    Poller* self = static_cast<Poller*>(handle->data);
    if (self == nullptr || !self->active_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Value err = env.Null();
    if (status < 0) {
      Napi::Error e = Napi::Error::New(env, std::string("poll: ") + uv_strerror(status));
      e.Set("code", Napi::String::New(env, uv_err_name(status)));
      err = e.Value();
    }
    if (self->counter_mode_ && status >= 0 && (events & UV_READABLE)) {
      uint64_t value = 0;
      ssize_t n;
      do {
        n = read(self->fd_, &value, sizeof value);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && errno == EAGAIN) return;  // spurious readiness: no event
      if (n < 0) {
        Napi::Error e = Napi::Error::New(env, std::string("read: ") + strerror(errno));
        e.Set("code", Napi::String::New(env, uv_err_name(-errno)));
        err = e.Value();
      }
      self->callback_.MakeCallback(self->Value(),
                                   {err, Napi::Number::New(env, events),
                                    n == sizeof value ? Napi::BigInt::New(env, value) : env.Undefined()});
      return;
    }
    self->callback_.MakeCallback(self->Value(), {err, Napi::Number::New(env, events)});
  }

  int fd_ = -1;
  bool counter_mode_ = false;
  bool active_ = false;
  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
};

}  // namespace

void InitPoller(Napi::Env env, Napi::Object exports) {
  exports.Set("Poller", Poller::Define(env));
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("UV_READABLE", Napi::Number::New(env, UV_READABLE));
  constants.Set("UV_WRITABLE", Napi::Number::New(env, UV_WRITABLE));
  constants.Set("UV_DISCONNECT", Napi::Number::New(env, UV_DISCONNECT));
  exports.Set("pollConstants", constants);
}

}  // namespace rxvmm
