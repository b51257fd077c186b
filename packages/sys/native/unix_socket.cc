// AF_UNIX stream sockets and SCM_RIGHTS: what a vhost-user back-end and
// frontend need that Node's net module lacks (Node cannot pass fds).
// Every socket is created SOCK_CLOEXEC; listening/accepted sockets are
// non-blocking and are waited on with the uv_poll Poller. EAGAIN is reported
// as `null`, never thrown, because it is the normal "no more data" answer.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "args.h"
#include "errors.h"

namespace rxvmm {

namespace {

// The kernel's own limit of fds per SCM_RIGHTS message (SCM_MAX_FD).
constexpr int kMaxFds = 253;

bool FillAddress(const Napi::CallbackInfo& info, size_t i, sockaddr_un* addr, socklen_t* len) {
  std::string path;
  if (!ArgString(info, i, &path)) return false;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) {
    ThrowCode(info.Env(), "ENAMETOOLONG", "unix socket path is empty or longer than 107 bytes");
    return false;
  }
  memcpy(addr->sun_path, path.data(), path.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

bool ArgBytes(const Napi::CallbackInfo& info, size_t i, Napi::Uint8Array* out) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Uint8Array")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Uint8Array>();
  return true;
}

// unixSocket(nonblock: boolean) -> fd
Napi::Value UnixSocket(const Napi::CallbackInfo& info) {
  bool nonblock = info.Length() > 0 && info[0].ToBoolean().Value();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return FailErrno(info.Env(), errno, "socket");
  return Napi::Number::New(info.Env(), fd);
}

// unixSocketPair() -> [fd, fd], both non-blocking (tests, in-process frontends).
Napi::Value UnixSocketPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
    return FailErrno(info.Env(), errno, "socketpair");
  Napi::Array result = Napi::Array::New(info.Env(), 2);
  result.Set(0u, Napi::Number::New(info.Env(), fds[0]));
  result.Set(1u, Napi::Number::New(info.Env(), fds[1]));
  return result;
}

// unixBind(fd, path)
Napi::Value UnixBind(const Napi::CallbackInfo& info) {
  int64_t fd;
  sockaddr_un addr;
  socklen_t len;
  if (!ArgInt(info, 0, &fd) || !FillAddress(info, 1, &addr, &len)) return info.Env().Undefined();
  if (bind(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), len) < 0) ThrowErrno(info.Env(), errno, "bind");
  return info.Env().Undefined();
}

// unixListen(fd, backlog)
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  int64_t fd, backlog;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &backlog)) return info.Env().Undefined();
  if (listen(static_cast<int>(fd), static_cast<int>(backlog)) < 0) ThrowErrno(info.Env(), errno, "listen");
  return info.Env().Undefined();
}

// unixAccept(fd) -> fd | null (EAGAIN). The new socket is non-blocking and close-on-exec.
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int conn;
  do {
    conn = accept4(static_cast<int>(fd), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (conn < 0 && errno == EINTR);
  if (conn < 0) {
    if (errno == EAGAIN || errno == ECONNABORTED) return info.Env().Null();
    ThrowErrno(info.Env(), errno, "accept4");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), conn);
}

// unixConnect(fd, path): on a blocking socket this waits for the peer's accept queue.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  int64_t fd;
  sockaddr_un addr;
  socklen_t len;
  if (!ArgInt(info, 0, &fd) || !FillAddress(info, 1, &addr, &len)) return info.Env().Undefined();
  int rc;
  do {
    rc = connect(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), len);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) ThrowErrno(info.Env(), errno, "connect");
  return info.Env().Undefined();
}

// setNonBlocking(fd, on)
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  int flags = fcntl(static_cast<int>(fd), F_GETFL);
  if (flags < 0 || fcntl(static_cast<int>(fd), F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK)) < 0)
    ThrowErrno(info.Env(), errno, "fcntl");
  return info.Env().Undefined();
}

// shutdownSocket(fd): shutdown(SHUT_RDWR); the peer sees EOF at once.
Napi::Value ShutdownSocket(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (shutdown(static_cast<int>(fd), SHUT_RDWR) < 0 && errno != ENOTCONN) ThrowErrno(info.Env(), errno, "shutdown");
  return info.Env().Undefined();
}

// sendMsg(fd, bytes, fds: number[]) -> bytes sent | null (EAGAIN).
// One sendmsg(2) with MSG_NOSIGNAL (a vanished peer is EPIPE, not SIGPIPE).
Napi::Value SendMsg(const Napi::CallbackInfo& info) {
  int64_t fd;
  Napi::Uint8Array bytes;
  if (!ArgInt(info, 0, &fd) || !ArgBytes(info, 1, &bytes)) return info.Env().Undefined();
  std::vector<int> fds;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) {
      Napi::TypeError::New(info.Env(), "argument 2 must be an array of fds").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Napi::Array array = info[2].As<Napi::Array>();
    if (array.Length() > kMaxFds) return FailCode(info.Env(), "EINVAL", "sendMsg: too many fds");
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value v = array.Get(i);
      if (!v.IsNumber()) {
        Napi::TypeError::New(info.Env(), "fds must be numbers").ThrowAsJavaScriptException();
        return info.Env().Undefined();
      }
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  iovec iov = {bytes.Data(), bytes.ByteLength()};
  msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = sendmsg(static_cast<int>(fd), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return info.Env().Null();
    ThrowErrno(info.Env(), errno, "sendmsg");
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// recvMsg(fd, buffer, maxFds) -> { bytes, fds, truncated } | null (EAGAIN).
// bytes == 0 means EOF. Received fds are close-on-exec. If the peer sent more
// fds than maxFds the kernel drops the excess (MSG_CTRUNC): `truncated` is
// true and the caller must treat the message as malformed (and close `fds`).
Napi::Value RecvMsg(const Napi::CallbackInfo& info) {
  int64_t fd, maxFds;
  Napi::Uint8Array bytes;
  if (!ArgInt(info, 0, &fd) || !ArgBytes(info, 1, &bytes) || !ArgInt(info, 2, &maxFds))
    return info.Env().Undefined();
  if (maxFds < 0 || maxFds > kMaxFds) return FailCode(info.Env(), "EINVAL", "recvMsg: maxFds out of range");
  iovec iov = {bytes.Data(), bytes.ByteLength()};
  msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Always room for at least one fd so an unexpected fd is seen (and closed) rather than silently dropped.
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (maxFds > 0 ? maxFds : 1)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = recvmsg(static_cast<int>(fd), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return info.Env().Null();
    ThrowErrno(info.Env(), errno, "recvmsg");
    return info.Env().Undefined();
  }
  Napi::Array fds = Napi::Array::New(info.Env());
  uint32_t count = 0;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(cmsg);
    for (size_t i = 0; i < nfds; i++) {
      int received;
      memcpy(&received, data + i * sizeof(int), sizeof(int));
      fds.Set(count++, Napi::Number::New(info.Env(), received));
    }
  }
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(n)));
  result.Set("fds", fds);
  result.Set("truncated", Napi::Boolean::New(info.Env(), (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0 ||
                                                             static_cast<int64_t>(count) > maxFds));
  return result;
}

}  // namespace

void InitUnixSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("unixSocket", Napi::Function::New(env, UnixSocket, "unixSocket"));
  exports.Set("unixSocketPair", Napi::Function::New(env, UnixSocketPair, "unixSocketPair"));
  exports.Set("unixBind", Napi::Function::New(env, UnixBind, "unixBind"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept, "unixAccept"));
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect, "unixConnect"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking, "setNonBlocking"));
  exports.Set("shutdownSocket", Napi::Function::New(env, ShutdownSocket, "shutdownSocket"));
  exports.Set("sendMsg", Napi::Function::New(env, SendMsg, "sendMsg"));
  exports.Set("recvMsg", Napi::Function::New(env, RecvMsg, "recvMsg"));
}

}  // namespace rxvmm
