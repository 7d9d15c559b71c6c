// HangupWatch: tells JavaScript when the far end of a pipe or socket goes away (the reader of our stdout leaving),
// without writing to it. Node has no poll() on a descriptor, and a zero-length write to a pipe reports nothing.
//
// A thread of its own blocks in poll(2) asking for no events: poll always reports POLLERR (a pipe with no reader
// left), POLLHUP (a socket closed at both ends, a terminal hung up) and POLLNVAL, and nothing else. Asking libuv
// instead would mean uv_poll_init, which switches the descriptor's shared file description to O_NONBLOCK, and an
// event mask: RDHUP would fire when journald shuts its side of a stdout stream for writing, while it still reads.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

// native/netlink.cc: the errno's name through libuv, which knows the ones we meet.
const char* ErrnoName(int err);

namespace {

class HangupWatch : public Napi::ObjectWrap<HangupWatch> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "HangupWatch", {InstanceMethod("close", &HangupWatch::Close)});
    exports.Set("HangupWatch", ctor);
  }

  // new HangupWatch(fd, callback): callback(err) once, with null when the far end went away, or an Error (code,
  // errno, syscall) when watching failed. The watch never keeps the process alive.
  explicit HangupWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HangupWatch>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "new HangupWatch(fd, callback)").ThrowAsJavaScriptException();
      return;
    }
    // Our own descriptor for the same open file: fd 1 may be closed or replaced while we poll.
    fd_ = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 3);
    if (fd_ < 0) {
      Throw(env, errno, "fcntl(F_DUPFD_CLOEXEC)");
      return;
    }
    wake_ = eventfd(0, EFD_CLOEXEC);
    if (wake_ < 0) {
      Throw(env, errno, "eventfd");
      CloseFds();
      return;
    }
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "HangupWatch", 0, 1);
    tsfn_.Unref(env);
    // libuv's threads (exported by node), not pthread_create: glibc 2.34 versioned that symbol anew, and a prebuilt
    // addon must load on the older glibc Node 20 still runs on.
    int r = uv_thread_create(&thread_, &HangupWatch::Run, this);
    if (r != 0) {
      tsfn_.Release();
      Throw(env, -r, "uv_thread_create");
      CloseFds();
      return;
    }
    running_ = true;
    napi_add_env_cleanup_hook(env, &HangupWatch::Cleanup, this);
  }

  ~HangupWatch() override { Shutdown(); }

 private:
  int fd_ = -1;
  int wake_ = -1;
  uv_thread_t thread_{};
  bool running_ = false;
  Napi::ThreadSafeFunction tsfn_;

  // What the thread found: 0 for a hangup, else the errno of a failed poll.
  struct Outcome {
    int err;
  };

  static void Throw(Napi::Env env, int err, const char* syscall) {
    Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
    e.Set("code", Napi::String::New(env, ErrnoName(err)));
    e.Set("errno", Napi::Number::New(env, err));
    e.Set("syscall", Napi::String::New(env, syscall));
    e.ThrowAsJavaScriptException();
  }

  static void Run(void* arg) {
    HangupWatch* self = static_cast<HangupWatch*>(arg);
    struct pollfd fds[2] = {{self->fd_, 0, 0}, {self->wake_, POLLIN, 0}};
    int err = 0;
    for (;;) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      if (fds[1].revents != 0) {  // close(): nothing to report
        self->tsfn_.Release();
        return;
      }
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) break;
    }
    Outcome* outcome = new Outcome{err};
    napi_status s = self->tsfn_.NonBlockingCall(outcome, [](Napi::Env env, Napi::Function fn, Outcome* o) {
      Napi::Value arg = env.Null();
      if (o->err != 0) {
        Napi::Error e = Napi::Error::New(env, std::string("poll: ") + strerror(o->err));
        e.Set("errno", Napi::Number::New(env, o->err));
        e.Set("syscall", Napi::String::New(env, "poll"));
        arg = e.Value();
      }
      delete o;
      fn.Call({arg});
    });
    if (s != napi_ok) delete outcome;  // the environment is going away: nobody is left to tell
    self->tsfn_.Release();
  }

  void CloseFds() {
    if (fd_ >= 0) ::close(fd_);
    if (wake_ >= 0) ::close(wake_);
    fd_ = wake_ = -1;
  }

  // Wakes the thread if it still polls and waits for it.
  void StopThread() {
    if (!running_) return;
    running_ = false;
    uint64_t one = 1;
    ssize_t n;
    do n = write(wake_, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    uv_thread_join(&thread_);
  }

  // close(), or the object collected: stops the thread and closes our descriptors. Idempotent.
  void Shutdown() {
    if (running_) napi_remove_env_cleanup_hook(Env(), &HangupWatch::Cleanup, this);
    StopThread();
    CloseFds();
  }

  // The environment is going away (process exit) with the watch still open.
  static void Cleanup(void* arg) {
    HangupWatch* self = static_cast<HangupWatch*>(arg);
    self->StopThread();
    self->CloseFds();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }
};

}  // namespace

void InitHangupWatch(Napi::Env env, Napi::Object exports) { HangupWatch::Init(env, exports); }
