// Poller: libuv readiness polling of one fd (uv_poll), calling back into JS on
// the loop of the thread that made it (main thread or a worker). It never blocks.
//
// In counter mode the readable fd is read natively (8 bytes) and the value is
// handed to the callback, saving a JS->native round trip on the hot path of
// eventfd streams; a spurious wake-up (EAGAIN after readiness) is ignored.
//
// Lifetime rules (why the code below looks the way it does):
// - An active poller holds a strong reference to its JS object, so it cannot be
//   collected while it may still call back. close() drops the callback too: the
//   callback usually captures the object owning the poller, and a strong
//   reference to it would keep that whole cycle alive for ever.
// - The uv_poll_t is freed in its close callback, never before (libuv rule).
// - Each poller registers an environment cleanup hook that closes its handle,
//   so a worker thread that ends (or is terminated) with open pollers leaves no
//   libuv handle behind on its loop.
// - JS callbacks go through napi_make_callback with status checks and no C++
//   wrappers that abort: in a terminating worker every call into JS fails, and
//   that must be a silent no-op, not a fatal error. An exception thrown by the
//   callback is re-raised as an uncaught exception (process 'uncaughtException').
// - The caller must close the poller BEFORE closing the fd (libuv's rule): after
//   uv_poll_stop the fd is out of epoll and no stale event for it is delivered.
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
    env_ = info.Env();
    fd_ = static_cast<int>(fd);
    counter_mode_ = info.Length() > 2 && info[2].ToBoolean().Value();
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env_, &loop) != napi_ok) {
      ThrowCode(env_, "EINVAL", "Poller: no libuv loop");
      return;
    }
    napi_value resource_name;
    napi_create_string_utf8(env_, "rxvmm.Poller", NAPI_AUTO_LENGTH, &resource_name);
    if (napi_async_init(env_, nullptr, resource_name, &async_context_) != napi_ok) {
      async_context_ = nullptr;
      ThrowCode(env_, "EINVAL", "Poller: napi_async_init failed");
      return;
    }
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, fd_);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ReleaseAsyncContext();
      ThrowErrno(env_, -rc, "uv_poll_init");
      return;
    }
    handle_->data = this;
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    napi_add_env_cleanup_hook(env_, OnEnvCleanup, this);
    hook_registered_ = true;
  }

  ~Poller() override {
    // Collected without close(): only possible when not active (active pollers
    // are referenced), so nothing can call back any more; release the handle.
    if (hook_registered_) {
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
      hook_registered_ = false;
    }
    CloseHandle();
    ReleaseAsyncContext();
  }

 private:
  // start(events: number): UV_READABLE=1, UV_WRITABLE=2, UV_DISCONNECT=4. Also changes the events.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    int64_t events;
    if (!ArgInt(info, 0, &events)) return info.Env().Undefined();
    if (handle_ == nullptr) return FailCode(info.Env(), "EBADF", "Poller is closed");
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

  // close(): idempotent; safe inside the poller's own callback.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPolling();
    CloseHandle();
    callback_.Reset();
    ReleaseAsyncContext();
    if (hook_registered_) {
      napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
      hook_registered_ = false;
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

  void CloseHandle() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    // uv_close stops the poll (uv_poll_stop) synchronously; the memory goes in OnClosed.
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClosed);
    handle_ = nullptr;
  }

  void ReleaseAsyncContext() {
    if (async_context_ != nullptr) {
      napi_async_destroy(env_, async_context_);
      async_context_ = nullptr;
    }
  }

  // The environment (main thread or worker) is going away: close the handle so
  // the loop can be closed. JS is no longer callable; references are left to
  // napi's own teardown (which runs ~Poller for live objects).
  static void OnEnvCleanup(void* arg) {
    Poller* self = static_cast<Poller*>(arg);
    self->hook_registered_ = false;
    self->CloseHandle();
    self->active_ = false;          // no Unref(): the napi reference goes with the env
    self->async_context_ = nullptr;  // nor async-hook bookkeeping in a dying env
  }

  static void OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static napi_value MakeError(napi_env env, const char* code, const char* message) {
    napi_value msg, code_value, error;
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
    napi_create_error(env, nullptr, msg, &error);
    napi_set_named_property(env, error, "code", code_value);
    return error;
  }

  static void OnEvent(uv_poll_t* handle, int status, int events) {
    Poller* self = static_cast<Poller*>(handle->data);
    if (self == nullptr || !self->active_) return;
    napi_env env = self->env_;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value argv[3];
    size_t argc = 2;
    napi_get_null(env, &argv[0]);
    if (status < 0) {
      std::string message = std::string("poll: ") + uv_strerror(status);
      argv[0] = MakeError(env, uv_err_name(status), message.c_str());
    } else if (self->counter_mode_ && (events & UV_READABLE)) {
      uint64_t value = 0;
      ssize_t n;
      do {
        n = read(self->fd_, &value, sizeof value);
      } while (n < 0 && errno == EINTR);
      int err = errno;
      if (n < 0 && err == EAGAIN) {
        // Spurious readiness (another reader won): no event, unless it also reports writability.
        events &= ~UV_READABLE;
        if (events == 0) {
          napi_close_handle_scope(env, scope);
          return;
        }
      } else if (n < 0) {
        std::string message = std::string("read: ") + strerror(err);
        argv[0] = MakeError(env, uv_err_name(-err), message.c_str());
      } else {
        napi_create_bigint_uint64(env, value, &argv[2]);
        argc = 3;
      }
    }
    napi_create_int32(env, events, &argv[1]);
    napi_value recv = nullptr, callback = nullptr, result;
    if (napi_get_reference_value(env, static_cast<napi_ref>(self->callback_), &callback) != napi_ok ||
        napi_get_reference_value(env, static_cast<napi_ref>(*self), &recv) != napi_ok || callback == nullptr ||
        recv == nullptr) {
      napi_close_handle_scope(env, scope);
      return;
    }
    napi_status rc = napi_make_callback(env, self->async_context_, recv, callback, argc, argv, &result);
    if (rc == napi_pending_exception) {
      // The callback threw: report it like any uncaught exception. In a terminating
      // worker there is no exception to fetch and nothing to report.
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
        napi_valuetype type;
        if (napi_typeof(env, exception, &type) == napi_ok && type != napi_undefined)
          napi_fatal_exception(env, exception);
      }
    }
    napi_close_handle_scope(env, scope);
  }

  napi_env env_ = nullptr;
  int fd_ = -1;
  bool counter_mode_ = false;
  bool active_ = false;
  bool hook_registered_ = false;
  uv_poll_t* handle_ = nullptr;
  napi_async_context async_context_ = nullptr;
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
