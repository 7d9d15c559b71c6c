// A netlink socket for JavaScript: owns the fd and the non-blocking receive loop, nothing protocol-level.
// Built without C++ exceptions: every failure becomes a JavaScript Error with `code` and `errno`.

#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef SK_MEMINFO_DROPS
#define SK_MEMINFO_DROPS 8
#endif

// native/hangup.cc: the watch on our stdout's reader, in the same addon so one prebuilt file serves both programs.
void InitHangupWatch(Napi::Env env, Napi::Object exports);

// 'ENOBUFS' for ENOBUFS. libuv's table (exported by node), not glibc's strerrorname_np: that needs glibc 2.32, and a
// prebuilt addon must load on the older glibc Node 20 still runs on.
const char* ErrnoName(int err) {
  const char* name = uv_err_name(uv_translate_sys_error(err));
  return strncmp(name, "Unknown", 7) == 0 ? "EUNKNOWN" : name;
}

namespace {

// Room for the largest datagram we expect (NET_DM packet alerts approach 64 KiB; dumps use up to 32 KiB).
constexpr size_t kDefaultScratch = 128 * 1024;
// Bound one wake-up so a drop storm cannot starve the event loop; the level-triggered poll calls us again.
constexpr uint32_t kDefaultBatch = 256;
// A wake-up also ends once its datagrams fill this much, so the batch buffer stays small.
constexpr size_t kMaxBatchBytes = 1024 * 1024;
// What src/netlink/native.ts expects: 2 hands a wake-up's datagrams over as one Buffer and their ends.
constexpr uint32_t kAbiVersion = 2;

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Reads an optional unsigned 32-bit argument; false (with a pending TypeError) when it is present but not a number.
bool OptU32(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  if (!info[i].IsNumber()) {
    ThrowType(info.Env(), "expected a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Uint32Value();
  return true;
}

class NetlinkSocket : public Napi::ObjectWrap<NetlinkSocket> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NetlinkSocket",
                                      {
                                          InstanceMethod("bind", &NetlinkSocket::Bind),
                                          InstanceMethod("portId", &NetlinkSocket::PortId),
                                          InstanceMethod("setsockopt", &NetlinkSocket::SetSockOpt),
                                          InstanceMethod("getsockopt", &NetlinkSocket::GetSockOpt),
                                          InstanceMethod("drops", &NetlinkSocket::Drops),
                                          InstanceMethod("send", &NetlinkSocket::Send),
                                          InstanceMethod("start", &NetlinkSocket::Start),
                                          InstanceMethod("stop", &NetlinkSocket::Stop),
                                          InstanceMethod("ref", &NetlinkSocket::RefHandle),
                                          InstanceMethod("unref", &NetlinkSocket::UnrefHandle),
                                          InstanceMethod("close", &NetlinkSocket::Close),
                                          InstanceAccessor("fd", &NetlinkSocket::Fd, nullptr),
                                      });
    exports.Set("NetlinkSocket", ctor);
    exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
    return exports;
  }

  // new NetlinkSocket(protocol, { scratchSize?, batchSize? })
  explicit NetlinkSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NetlinkSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      ThrowType(env, "protocol must be a number");
      return;
    }
    int protocol = info[0].As<Napi::Number>().Int32Value();
    size_t scratch = kDefaultScratch;
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object opts = info[1].As<Napi::Object>();
      Napi::Value s = opts.Get("scratchSize");
      if (s.IsNumber() && s.As<Napi::Number>().Uint32Value() >= 4096) scratch = s.As<Napi::Number>().Uint32Value();
      Napi::Value b = opts.Get("batchSize");
      if (b.IsNumber() && b.As<Napi::Number>().Uint32Value() >= 1) batch_ = b.As<Napi::Number>().Uint32Value();
    }
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
    if (fd_ < 0) {
      ThrowErrno(env, errno, "socket");
      return;
    }
    datagram_max_ = scratch;
  }

  ~NetlinkSocket() override { Release(); }

 private:
  int fd_ = -1;
  uint32_t batch_ = kDefaultBatch;
  // Room for one datagram; grows when a larger one arrives truncated, so the next of that size fits.
  size_t datagram_max_ = kDefaultScratch;
  // A wake-up's datagrams are received back to back here and handed over as one Buffer plus their ends, instead of
  // one Buffer (one allocation and copy through N-API) per datagram.
  std::vector<uint8_t> batch_buf_;
  uv_poll_t* poll_ = nullptr;
  bool polling_ = false;
  bool handle_ref_ = true;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* async_ = nullptr;
  bool in_drain_ = false;

  void ReleaseAsync() {
    delete async_;
    async_ = nullptr;
  }

  bool CheckOpen(Napi::Env env) {
    if (fd_ >= 0) return true;
    ThrowErrno(env, EBADF, "closed");
    return false;
  }

  // bind(groups = 0): port id 0 lets the kernel pick a unique one.
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint32_t groups = 0;
    if (!CheckOpen(env) || !OptU32(info, 0, &groups)) return env.Undefined();
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = groups;
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) < 0) return ThrowErrno(env, errno, "bind");
    return env.Undefined();
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    struct sockaddr_nl sa;
    socklen_t len = sizeof sa;
    memset(&sa, 0, sizeof sa);
    if (getsockname(fd_, reinterpret_cast<struct sockaddr*>(&sa), &len) < 0)
      return ThrowErrno(env, errno, "getsockname");
    return Napi::Number::New(env, sa.nl_pid);
  }

  // setsockopt(level, name, value): every option we need takes an int (membership, ACK flags, buffer sizes).
  Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber())
      return ThrowType(env, "setsockopt(level, name, value) takes three numbers");
    int level = info[0].As<Napi::Number>().Int32Value();
    int name = info[1].As<Napi::Number>().Int32Value();
    int value = info[2].As<Napi::Number>().Int32Value();
    if (setsockopt(fd_, level, name, &value, sizeof value) < 0) return ThrowErrno(env, errno, "setsockopt");
    return env.Undefined();
  }

  Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber())
      return ThrowType(env, "getsockopt(level, name) takes two numbers");
    int value = 0;
    socklen_t len = sizeof value;
    if (getsockopt(fd_, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), &value,
                   &len) < 0)
      return ThrowErrno(env, errno, "getsockopt");
    return Napi::Number::New(env, value);
  }

  // The kernel's per-socket drop counter (sk_drops, the Drops column of /proc/net/netlink), via SO_MEMINFO.
  bool ReadDrops(uint32_t* out, int* err) {
    uint32_t mem[16];
    memset(mem, 0, sizeof mem);
    socklen_t len = sizeof mem;
    if (getsockopt(fd_, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0) {
      *err = errno;
      return false;
    }
    if (len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) {
      *err = ENOPROTOOPT;
      return false;
    }
    *out = mem[SK_MEMINFO_DROPS];
    return true;
  }

  Napi::Value Drops(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint32_t drops = 0;
    int err = 0;
    if (!ReadDrops(&drops, &err)) return ThrowErrno(env, err, "getsockopt(SO_MEMINFO)");
    return Napi::Number::New(env, drops);
  }

  // send(buffer, pid = 0, groups = 0) → bytes sent; pid 0 and groups 0 address the kernel.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsTypedArray()) return ThrowType(env, "send(buffer) takes a Uint8Array");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_uint8_array) return ThrowType(env, "send(buffer) takes a Uint8Array");
    Napi::Uint8Array data = ta.As<Napi::Uint8Array>();
    uint32_t pid = 0, groups = 0;
    if (!OptU32(info, 1, &pid) || !OptU32(info, 2, &groups)) return env.Undefined();
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_pid = pid;
    sa.nl_groups = groups;
    ssize_t n;
    do {
      n = sendto(fd_, data.Data(), data.ByteLength(), 0, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ThrowErrno(env, errno, "sendto");
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // start(callback): callback(err, datagrams: Buffer, ends: number[], groups: number[], enobufs, truncated, drops) per
  // wake-up: the datagrams back to back in one Buffer, datagram i ending at ends[i].
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (info.Length() < 1 || !info[0].IsFunction()) return ThrowType(env, "start(callback) takes a function");
    if (polling_) return ThrowErrno(env, EALREADY, "start");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return ThrowErrno(env, EINVAL, "uv_loop");
    if (poll_ == nullptr) {
      poll_ = new uv_poll_t;
      int r = uv_poll_init(loop, poll_, fd_);
      if (r < 0) {
        delete poll_;
        poll_ = nullptr;
        return ThrowErrno(env, -r, "uv_poll_init");
      }
      poll_->data = this;
      if (!handle_ref_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    }
    int r = uv_poll_start(poll_, UV_READABLE, &NetlinkSocket::OnPoll);
    if (r < 0) return ThrowErrno(env, -r, "uv_poll_start");
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (async_ == nullptr) async_ = new Napi::AsyncContext(env, "NetlinkSocket");
    polling_ = true;
    Ref();  // the JS object must outlive an active poll
    return env.Undefined();
  }

  void StopPolling() {
    if (!polling_) return;
    polling_ = false;
    uv_poll_stop(poll_);
    callback_.Reset();
    Unref();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopPolling();
    return info.Env().Undefined();
  }

  // ref()/unref(): whether an active receive loop keeps the process alive (like net.Socket's).
  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    handle_ref_ = true;
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    handle_ref_ = false;
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  void Release() {
    if (poll_ != nullptr) {
      if (polling_) uv_poll_stop(poll_);  // also removes the fd from epoll, so closing it below is safe
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (!in_drain_) ReleaseAsync();
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }

  // close(): idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopPolling();
    Release();
    return info.Env().Undefined();
  }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    NetlinkSocket* self = static_cast<NetlinkSocket*>(handle->data);
    if (self != nullptr && self->polling_) self->Drain(status);
  }

  // Reads up to batch_ datagrams without blocking and hands them to JavaScript in one call.
  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array groups = Napi::Array::New(env);
    Napi::Array ends = Napi::Array::New(env);
    size_t used = 0;
    uint32_t count = 0, enobufs = 0, truncated = 0;
    int fatal = 0;
    const char* fatal_call = "recvmsg";
    bool rearm = false;
    if (status == UV_EBADF && fd_ >= 0) {
      // libuv reports POLLERR as EBADF and stops the poll; for us that is a pending socket error (ENOBUFS after an
      // overflow), which recvmsg below returns and clears: read on and re-arm.
      rearm = true;
    } else if (status < 0) {
      fatal = -status;
      fatal_call = "uv_poll";
    }
    while (fatal == 0 && count < batch_) {
      const size_t limit = datagram_max_;
      if (used > 0 && used + limit > kMaxBatchBytes) break;
      if (batch_buf_.size() < used + limit) batch_buf_.resize(used + limit);
      uint8_t* into = batch_buf_.data() + used;
      struct sockaddr_nl from;
      struct iovec iov = {into, limit};
      alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct nl_pktinfo))];
      struct msghdr msg;
      memset(&msg, 0, sizeof msg);
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_TRUNC);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == ENOBUFS) {  // the queue overflowed: the socket is still good, the next read returns data
          enobufs++;
          continue;
        }
        fatal = errno;
        break;
      }
      if (msg.msg_flags & MSG_TRUNC || static_cast<size_t>(n) > limit) {
        truncated++;  // the rest of that datagram is gone; grow so the next one of that size fits
        if (static_cast<size_t>(n) > datagram_max_ && static_cast<size_t>(n) <= (16u << 20)) datagram_max_ = n;
        continue;
      }
      uint32_t group = 0;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_PKTINFO) {
          struct nl_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          group = pi.group;
        }
      }
      groups.Set(count, Napi::Number::New(env, group));
      used += static_cast<size_t>(n);
      ends.Set(count, Napi::Number::New(env, static_cast<double>(used)));
      count++;
    }
    if (rearm && polling_ && fatal == 0) {
      int r = uv_poll_start(poll_, UV_READABLE, &NetlinkSocket::OnPoll);
      if (r < 0) {
        fatal = -r;
        fatal_call = "uv_poll_start";
      }
    }
    uint32_t drops = 0;
    int derr = 0;
    double drops_value = ReadDrops(&drops, &derr) ? static_cast<double>(drops) : -1;
    if (count == 0 && enobufs == 0 && truncated == 0 && fatal == 0) return;  // spurious wake-up
    Napi::Value err = env.Null();
    if (fatal != 0) err = ErrnoError(env, fatal, fatal_call).Value();
    if (callback_.IsEmpty()) return;
    Napi::Function fn = callback_.Value();
    if (fatal != 0) StopPolling();  // the socket is unusable; this is the last call
    in_drain_ = true;
    fn.MakeCallback(Value(),
                    {err, Napi::Buffer<uint8_t>::Copy(env, batch_buf_.data(), used), ends, groups,
                     Napi::Number::New(env, enobufs), Napi::Number::New(env, truncated),
                     Napi::Number::New(env, drops_value)},
                    *async_);
    in_drain_ = false;
    if (fd_ < 0) ReleaseAsync();  // the callback closed us: finish what Release() deferred
    if (env.IsExceptionPending()) {
      // A throwing listener is the program's bug, not ours: let Node report it as an uncaught exception.
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitHangupWatch(env, exports);
  return NetlinkSocket::Init(env, exports);
}

}  // namespace

NODE_API_MODULE(netlink_native, Init)
