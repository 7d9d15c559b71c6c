// The BPF source's addon: loads dropwatch's BPF object (bpf/) with libbpf, attaches it, flips and drains its count
// tables, consumes its packet ring and reads the kernel's drop-reason names from BTF. Nothing is pinned: the program,
// its maps and its link live in this process's file descriptors and go when it exits, kill -9 included.
// Built without C++ exceptions: every failure becomes a JavaScript Error with `code`, `errno`, `stage` and `log`.

#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <memory>

#include <map>
#include <string>
#include <vector>

#include "../bpf/dropwatch.h"
#include "dropwatch_bpf_object.h"

namespace {

// What src/bpf/native.ts expects.
constexpr uint32_t kAbiVersion = 7;
// libbpf's messages for the current call: kept to explain a failure in one sentence, never printed as they are.
constexpr size_t kMaxLog = 64 * 1024;
std::string libbpfLog;

int CollectLibbpfMessage(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || libbpfLog.size() > kMaxLog) return 0;
  char line[1024];
  int n = vsnprintf(line, sizeof(line), format, args);
  if (n > 0) libbpfLog.append(line, strnlen(line, sizeof(line)));
  return 0;
}

// `stage` says what failed (open, load, attach, btf, map); src/bpf/errors.ts words it.
Napi::Value ThrowStage(Napi::Env env, int err, const char* stage, const std::string& what) {
  if (err < 0) err = -err;
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, "E_BPF"));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("stage", Napi::String::New(env, stage));
  e.Set("log", Napi::String::New(env, libbpfLog));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// One drained count: the map key, the count summed over CPUs, the device name and the task's name (struct
// dw_count_key's layout first).
struct DrainedCount {
  dw_count_key key;
  uint64_t count;
  char ifname[DW_IFNAMSIZ];
  char comm[DW_COMM_LEN];
};
static_assert(sizeof(dw_count_key) == 40, "src/bpf/decode.ts reads this key layout");
static_assert(sizeof(dw_filter_key) == 24, "src/bpf/filter.ts writes 6-word filter keys");
static_assert(sizeof(DrainedCount) == 80, "src/bpf/decode.ts reads 80-byte records");
static_assert(sizeof(dw_packet) == 88 + DW_MAX_CAPTURE, "src/bpf/decode.ts reads this layout");

// One hardware drop count: the map key, the count summed over CPUs since loading, and the input port's name.
struct TrapCount {
  dw_trap_key key;
  uint64_t count;
  char ifname[DW_IFNAMSIZ];
};
static_assert(sizeof(TrapCount) == 160, "src/bpf/decode.ts reads 160-byte trap counts");
static_assert(sizeof(dw_trap_packet) == 176 + DW_MAX_CAPTURE, "src/bpf/decode.ts reads this trap packet layout");

// Whether the running kernel has the tracepoint `name` (its BTF names the tp_btf target btf_trace_<name>).
bool KernelHasTracepoint(const char* name) {
  btf* kernel = btf__load_vmlinux_btf();
  if (!kernel) return false;
  std::string target = std::string("btf_trace_") + name;
  bool found = btf__find_by_name_kind(kernel, target.c_str(), BTF_KIND_TYPEDEF) > 0;
  btf__free(kernel);
  return found;
}

class BpfProgram : public Napi::ObjectWrap<BpfProgram> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "BpfProgram",
                                      {
                                          InstanceMethod("attach", &BpfProgram::Attach),
                                          InstanceMethod("detach", &BpfProgram::Detach),
                                          InstanceMethod("configure", &BpfProgram::Configure),
                                          InstanceMethod("drain", &BpfProgram::Drain),
                                          InstanceMethod("consume", &BpfProgram::Consume),
                                          InstanceMethod("watch", &BpfProgram::Watch),
                                          InstanceMethod("unwatch", &BpfProgram::Unwatch),
                                          InstanceMethod("lost", &BpfProgram::Lost),
                                          InstanceMethod("filter", &BpfProgram::Filter),
                                          InstanceMethod("filtered", &BpfProgram::Filtered),
                                          InstanceMethod("stackBudget", &BpfProgram::StackBudget),
                                          InstanceMethod("chains", &BpfProgram::Chains),
                                          InstanceMethod("close", &BpfProgram::Close),
                                          InstanceMethod("hardware", &BpfProgram::Hardware),
                                          InstanceMethod("attachTraps", &BpfProgram::AttachTraps),
                                          InstanceMethod("detachTraps", &BpfProgram::DetachTraps),
                                          InstanceMethod("traps", &BpfProgram::Traps),
                                          InstanceMethod("consumeTraps", &BpfProgram::ConsumeTraps),
                                          InstanceMethod("trapsLost", &BpfProgram::TrapsLost),
                                      });
    exports.Set("BpfProgram", ctor);
    return exports;
  }

  // new BpfProgram(object?: Buffer, btfPath?: string, ringBytes?: number): opens and loads; attaching is separate.
  explicit BpfProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfProgram>(info) {
    Napi::Env env = info.Env();
    std::string btfPath;
    if (info.Length() > 1 && info[1].IsString()) btfPath = info[1].As<Napi::String>().Utf8Value();
    uint32_t ringBytes = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
    if (info.Length() > 0 && info[0].IsBuffer()) {
      Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
      image_.assign(b.Data(), b.Data() + b.Length());
    } else {
      image_.assign(kDropwatchBpfObject, kDropwatchBpfObject + sizeof(kDropwatchBpfObject));
    }
    libbpfLog.clear();
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "dropwatch",
                .btf_custom_path = btfPath.empty() ? nullptr : btfPath.c_str());
    obj_ = bpf_object__open_mem(image_.data(), image_.size(), &opts);
    if (!obj_) {
      int err = errno;
      ThrowStage(env, err, "open", "cannot open the BPF object");
      return;
    }
    bpf_map* ring = bpf_object__find_map_by_name(obj_, "packets");
    // A power of two, a multiple of the page size: the kernel refuses anything else at load, in one line below.
    if (ring && ringBytes > 0) bpf_map__set_max_entries(ring, ringBytes);
    // Hardware drops: their program is loaded only where the kernel has devlink's tracepoint (else nothing would load).
    trapProg_ = bpf_object__find_program_by_name(obj_, "on_trap_report");
    if (trapProg_) {
      hasTraps_ = KernelHasTracepoint("devlink_trap_report");
      bpf_program__set_autoload(trapProg_, hasTraps_);
    }
    int err = bpf_object__load(obj_);
    if (err) {
      ThrowStage(env, err, "load", "cannot load the BPF object");
      return;
    }
    prog_ = bpf_object__find_program_by_name(obj_, "on_kfree_skb");
    active_ = bpf_object__find_map_by_name(obj_, "active");
    tables_[0] = bpf_object__find_map_by_name(obj_, "counts0");
    tables_[1] = bpf_object__find_map_by_name(obj_, "counts1");
    lost_ = bpf_object__find_map_by_name(obj_, "lost");
    packets_ = bpf_object__find_map_by_name(obj_, "packets");
    bss_ = bpf_object__find_map_by_name(obj_, ".bss");
    filterValues_ = bpf_object__find_map_by_name(obj_, "filter_values");
    if (!FindChainMaps()) {
      ThrowStage(env, ENOENT, "open", "the BPF object is not dropwatch's");
      return;
    }
    if (!prog_ || !active_ || !tables_[0] || !tables_[1] || !lost_ || !packets_ || !bss_ || !filterValues_ ||
        bpf_map__value_size(bss_) != offsetof(Bss, filter_word) + sizeof(uint32_t)) {
      ThrowStage(env, ENOENT, "open", "the BPF object is not dropwatch's");
      return;
    }
    // Mapped here so that one store changes the filter word at once (a map update copies the whole value).
    bssBytes_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* mem = mmap(nullptr, bssBytes_, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(bss_), 0);
    if (mem == MAP_FAILED) {
      int err = errno;
      ThrowStage(env, err, "map", "cannot map the BPF program's settings");
      return;
    }
    bss_mem_ = static_cast<Bss*>(mem);
    cpus_ = libbpf_num_possible_cpus();
    trapCounts_ = bpf_object__find_map_by_name(obj_, "trap_counts");
    trapLost_ = bpf_object__find_map_by_name(obj_, "trap_lost");
    trapPackets_ = bpf_object__find_map_by_name(obj_, "trap_packets");
    if (!trapProg_ || !trapCounts_ || !trapLost_ || !trapPackets_) {
      ThrowStage(env, ENOENT, "open", "the BPF object is not dropwatch's");
      return;
    }
  }

  ~BpfProgram() { Release(); }

 private:
  // The program's .bss, in declaration order (its size ends with filter_word: no trailing padding).
  struct Bss {
    uint32_t capture_mode;
    uint32_t capture_len;
    uint64_t wakeup_bytes;
    uint32_t filter_word;
  };

  bool Usable(Napi::Env env) {
    if (obj_) return true;
    ThrowStage(env, EBADF, "map", "the BPF program is closed");
    return false;
  }

  Napi::Value Attach(const Napi::CallbackInfo& info) {
    if (!Usable(info.Env()) || link_) return info.Env().Undefined();
    libbpfLog.clear();
    link_ = bpf_program__attach(prog_);
    if (!link_) {
      int err = errno;
      return ThrowStage(info.Env(), err, "attach", "cannot attach to skb:kfree_skb");
    }
    return info.Env().Undefined();
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    if (link_) bpf_link__destroy(link_);
    link_ = nullptr;
    return info.Env().Undefined();
  }

  // configure(mode, captureLen, wakeupBytes): what the program does with each drop from now on, stored into its
  // mapped .bss (libbpf 1.1 maps .bss into this process only for skeletons, so the constructor maps it).
  Napi::Value Configure(const Napi::CallbackInfo& info) {
    if (!Usable(info.Env())) return info.Env().Undefined();
    __atomic_store_n(&bss_mem_->capture_len, info[1].As<Napi::Number>().Uint32Value(), __ATOMIC_RELAXED);
    __atomic_store_n(&bss_mem_->wakeup_bytes, static_cast<uint64_t>(info[2].As<Napi::Number>().DoubleValue()),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&bss_mem_->capture_mode, info[0].As<Napi::Number>().Uint32Value(), __ATOMIC_RELEASE);
    return info.Env().Undefined();
  }

  // filter(word, values): installs a kernel filter. `values` holds struct dw_filter_key records (6 uint32 each, the
  // field without its generation) for the sets the word's fields test. They go into the idle generation, the word switches to it with one store, and after an RCU
  // grace period (no program still reads the old word) the old generation is emptied: each drop sees one filter.
  Napi::Value Filter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    uint32_t word = info[0].As<Napi::Number>().Uint32Value() & ~DW_FILTER_GEN;
    Napi::Uint32Array values = info[1].As<Napi::Uint32Array>();
    size_t count = values.ByteLength() / sizeof(dw_filter_key);
    // At most half the map per generation: the old one is still there while the new one fills.
    if (count > DW_FILTER_VALUES / 2 || values.ByteLength() % sizeof(dw_filter_key) != 0)
      return ThrowStage(env, E2BIG, "map", "the kernel filter is too long");
    uint32_t gen = (__atomic_load_n(&bss_mem_->filter_word, __ATOMIC_RELAXED) & DW_FILTER_GEN) ? 0 : 1;
    int fd = bpf_map__fd(filterValues_);
    if (!ClearGeneration(fd, gen)) return ThrowStage(env, errno, "map", "cannot clear the kernel filter");
    uint8_t one = 1;
    for (size_t i = 0; i < count; i++) {
      dw_filter_key key;
      memcpy(&key, reinterpret_cast<const uint8_t*>(values.Data()) + i * sizeof(key), sizeof(key));
      key.field |= gen << 8;
      if (bpf_map_update_elem(fd, &key, &one, BPF_ANY) != 0) {
        int err = errno;
        ClearGeneration(fd, gen);
        return ThrowStage(env, err, "map", "cannot set the kernel filter");
      }
    }
    __atomic_store_n(&bss_mem_->filter_word, word | (gen ? DW_FILTER_GEN : 0), __ATOMIC_RELEASE);
    // Putting the table in use back in its slot returns after a grace period: programs that read the old word are done.
    uint32_t slot = 0;
    int current = bpf_map__fd(tables_[active_index_]);
    if (bpf_map_update_elem(bpf_map__fd(active_), &slot, &current, BPF_ANY) != 0)
      return ThrowStage(env, errno, "map", "cannot switch the kernel filter");
    if (!ClearGeneration(fd, 1 - gen)) return ThrowStage(env, errno, "map", "cannot clear the kernel filter");
    return env.Undefined();
  }

  // Deletes every key of one generation of the filter's sets.
  static bool ClearGeneration(int fd, uint32_t gen) {
    std::vector<dw_filter_key> keys;
    dw_filter_key key, next;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      if ((next.field >> 8) == gen) keys.push_back(next);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return false;
    for (const dw_filter_key& k : keys) bpf_map_delete_elem(fd, &k);
    return true;
  }

  // filtered(): drops the kernel filter kept from this process since loading, summed over CPUs.
  Napi::Value Filtered(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    std::vector<uint64_t> values(cpus_);
    uint32_t kind = DW_FILTERED;
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(lost_), &kind, values.data()) != 0)
      return ThrowStage(env, errno, "map", "cannot read the filter's count");
    for (uint64_t v : values) sum += v;
    return Napi::BigInt::New(env, sum);
  }

  // drain(): makes the other table the active one, then empties the one it replaced into 80-byte records. The update
  // of the index returns after an RCU grace period (maybe_wait_bpf_programs), so no program still writes to the old.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    int idle = active_index_;
    uint32_t slot = 0;
    int next = bpf_map__fd(tables_[1 - idle]);
    if (bpf_map_update_elem(bpf_map__fd(active_), &slot, &next, BPF_ANY) != 0)
      return ThrowStage(env, errno, "map", "cannot switch count tables");
    active_index_ = 1 - idle;
    std::vector<DrainedCount> out;
    if (!Empty(bpf_map__fd(tables_[idle]), out)) return ThrowStage(env, errno, "map", "cannot read a count table");
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(out.data()),
                                       out.size() * sizeof(DrainedCount));
  }

  // Reads and deletes every key of an idle table, summing the per-CPU values.
  bool Empty(int fd, std::vector<DrainedCount>& out) {
    std::vector<dw_count_key> keys;
    dw_count_key key, next;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      keys.push_back(next);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return false;
    std::vector<dw_count_value> values(cpus_);
    for (const dw_count_key& k : keys) {
      if (bpf_map_lookup_elem(fd, &k, values.data()) != 0) continue;
      DrainedCount d = {};
      d.key = k;
      for (const dw_count_value& v : values) {
        d.count += v.count;
        if (d.ifname[0] == 0 && v.ifname[0] != 0) memcpy(d.ifname, v.ifname, sizeof(d.ifname));
        if (d.comm[0] == 0 && v.comm[0] != 0) memcpy(d.comm, v.comm, sizeof(d.comm));
      }
      bpf_map_delete_elem(fd, &k);
      if (d.count > 0) out.push_back(d);
    }
    return true;
  }

  // libbpf stops a read only at a negative return (a positive one is ignored): this one says the slice is full.
  static constexpr int kSliceFull = -E2BIG;

  static int OnPacket(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BpfProgram*>(ctx);
    if (size < sizeof(dw_packet)) return 0;
    const uint8_t* bytes = static_cast<const uint8_t*>(data);
    self->records_.insert(self->records_.end(), bytes, bytes + sizeof(dw_packet));
    return self->records_.size() >= self->maxBytes_ ? kSliceFull : 0;
  }

  // consume(maxBytes): the packet records waiting in the ring, as one Buffer of whole records: all of them, or the
  // first ones past maxBytes (the record that reaches it is taken, the rest stay in the ring for the next call).
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!ring_) {
      ring_ = ring_buffer__new(bpf_map__fd(packets_), OnPacket, this, nullptr);
      if (!ring_) return ThrowStage(env, errno, "map", "cannot open the packet ring");
    }
    maxBytes_ = info.Length() > 0 ? info[0].As<Napi::Number>().Uint32Value() : 1024 * 1024;
    records_.clear();
    records_.reserve(maxBytes_ + sizeof(dw_packet));
    int n = ring_buffer__consume(ring_);
    if (n < 0 && n != -EINTR && n != kSliceFull) return ThrowStage(env, n, "map", "cannot read the packet ring");
    return Napi::Buffer<uint8_t>::Copy(env, records_.data(), records_.size());
  }

  // watch(onWake): calls onWake() on the event loop each time the kernel wakes the ring's readers, which the program
  // does once as the data waiting crosses wakeup_bytes. libuv watches descriptors level-triggered, which on the ring
  // would fire on every turn while any record waits; so it watches an epoll set of our own that holds the ring
  // edge-triggered, and that set is readable from one wakeup until OnWake takes the edge.
  Napi::Value Watch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env) || poll_) return env.Undefined();
    if (wakeFd_ < 0) {
      wakeFd_ = epoll_create1(EPOLL_CLOEXEC);
      if (wakeFd_ < 0) return ThrowStage(env, errno, "map", "cannot watch the packet ring");
      epoll_event ev = {};
      ev.events = EPOLLIN | EPOLLET;
      if (epoll_ctl(wakeFd_, EPOLL_CTL_ADD, bpf_map__fd(packets_), &ev) != 0)
        return ThrowStage(env, errno, "map", "cannot watch the packet ring");
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) return ThrowStage(env, EINVAL, "map", "no event loop");
    auto* poll = new uv_poll_t;
    int err = uv_poll_init(loop, poll, wakeFd_);
    if (err != 0) {
      delete poll;
      return ThrowStage(env, -err, "map", "cannot watch the packet ring");
    }
    poll->data = this;
    onWake_ = Napi::Persistent(info[0].As<Napi::Function>());
    wakeContext_ = std::make_unique<Napi::AsyncContext>(env, "dropwatch:bpf-ring");
    poll_ = poll;
    uv_poll_start(poll_, UV_READABLE, OnWake);
    return env.Undefined();
  }

  static void OnWake(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<BpfProgram*>(handle->data);
    epoll_event ev;
    // Takes the edge: the set is not readable again until the next wakeup.
    while (epoll_wait(self->wakeFd_, &ev, 1, 0) > 0) {
    }
    if (status < 0 || self->onWake_.IsEmpty()) return;
    Napi::Env env = self->onWake_.Env();
    Napi::HandleScope scope(env);
    // Through MakeCallback, so the microtasks and process.nextTick callbacks it queues run after it, as after any I/O.
    self->onWake_.MakeCallback(env.Global(), {}, *self->wakeContext_);
  }

  Napi::Value Unwatch(const Napi::CallbackInfo& info) {
    StopWatching();
    return info.Env().Undefined();
  }

  void StopWatching() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    onWake_.Reset();
    wakeContext_.reset();
  }

  // lost(): per DW_LOST_* kind, the drops the program could not count or deliver since loading, summed over CPUs;
  // then the runs the kernel skipped because the program was already running on that CPU (recursion misses).
  Napi::Value Lost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    Napi::Array result = Napi::Array::New(env, DW_LOST_KINDS + 1);
    std::vector<uint64_t> values(cpus_);
    for (uint32_t kind = 0; kind < DW_LOST_KINDS; kind++) {
      uint64_t sum = 0;
      if (bpf_map_lookup_elem(bpf_map__fd(lost_), &kind, values.data()) == 0)
        for (uint64_t v : values) sum += v;
      result.Set(kind, Napi::BigInt::New(env, sum));
    }
    bpf_prog_info progInfo = {};
    uint32_t len = sizeof(progInfo);
    uint64_t misses = 0;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog_), &progInfo, &len) == 0) misses = progInfo.recursion_misses;
    result.Set(DW_LOST_KINDS, Napi::BigInt::New(env, misses));
    return result;
  }

  // --- Call chains (--stack): the sampling budget, and the sampled chains with their frames. ---

  // One sampled chain as chains() hands it over, followed by `depth` frames (uint64, innermost first).
  struct ChainRecord {
    uint64_t location;
    uint64_t time_ns;  // packet mode: the packet record's time_ns; 0 for a summary sample
    uint64_t count;    // sampled drops that took it
    uint32_t reason;
    uint32_t depth;
  };
  static_assert(sizeof(ChainRecord) == 32, "src/bpf/chains.ts reads 32-byte chain headers");

  bool FindChainMaps() {
    stackBudget_ = bpf_object__find_map_by_name(obj_, "stack_budget");
    stacks_ = bpf_object__find_map_by_name(obj_, "stacks");
    stackSamples_ = bpf_object__find_map_by_name(obj_, "stack_samples");
    packetStacks_ = bpf_object__find_map_by_name(obj_, "packet_stacks");
    return stackBudget_ && stacks_ && stackSamples_ && packetStacks_;
  }

  // stackBudget(stride, limit): from now on one drop in `stride` per CPU is a candidate, and at most `limit` chains
  // are taken until the next call, which starts a new count (stride 0: none).
  Napi::Value StackBudget(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    dw_stack_budget budget = {};
    budget.stride = info[0].As<Napi::Number>().Uint32Value();
    budget.limit = info[1].As<Napi::Number>().Uint32Value();
    uint32_t slot = 0;
    if (bpf_map_update_elem(bpf_map__fd(stackBudget_), &slot, &budget, BPF_ANY) != 0)
      return ThrowStage(env, errno, "map", "cannot set the call chain budget");
    return env.Undefined();
  }

  // chains(): takes out the sampled chains, summary samples and packet-mode notes alike, as ChainRecords with their
  // frames, and frees their stacks. A stack freed while a program was sampling it again is found in the frames read
  // last time: a stack id names one stack until it is freed.
  Napi::Value Chains(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    std::vector<ChainRecord> heads;
    std::vector<int32_t> ids;
    if (!TakeSamples(heads, ids) || !TakePacketStacks(heads, ids))
      return ThrowStage(env, errno, "map", "cannot read the sampled call chains");
    std::map<int32_t, std::vector<uint64_t>> frames;
    for (int32_t id : ids) {
      if (id < 0 || frames.count(id)) continue;
      frames[id] = ReadStack(id);
    }
    for (const auto& [id, f] : frames) bpf_map_delete_elem(bpf_map__fd(stacks_), &id);
    std::vector<uint8_t> out;
    for (size_t i = 0; i < heads.size(); i++) {
      const std::vector<uint64_t>* f = ids[i] < 0 ? nullptr : &frames[ids[i]];
      heads[i].depth = f ? f->size() : 0;
      const uint8_t* h = reinterpret_cast<const uint8_t*>(&heads[i]);
      out.insert(out.end(), h, h + sizeof(ChainRecord));
      if (f) {
        const uint8_t* b = reinterpret_cast<const uint8_t*>(f->data());
        out.insert(out.end(), b, b + f->size() * sizeof(uint64_t));
      }
    }
    lastFrames_ = std::move(frames);
    return Napi::Buffer<uint8_t>::Copy(env, out.data(), out.size());
  }

  // The frames of stack `id` (up to the first zero), or the ones read last time when it was freed since.
  std::vector<uint64_t> ReadStack(int32_t id) {
    std::vector<uint64_t> value(DW_STACK_DEPTH, 0);
    if (bpf_map_lookup_elem(bpf_map__fd(stacks_), &id, value.data()) != 0) {
      auto last = lastFrames_.find(id);
      return last == lastFrames_.end() ? std::vector<uint64_t>() : last->second;
    }
    size_t depth = 0;
    while (depth < value.size() && value[depth] != 0) depth++;
    value.resize(depth);
    return value;
  }

  // Every key of a hash map, as it is now (keys added meanwhile are taken next time).
  template <typename Key>
  static bool Keys(int fd, std::vector<Key>& keys) {
    Key key, next;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      keys.push_back(next);
      key = next;
      prev = &key;
    }
    return errno == ENOENT;
  }

  // Summary samples: each (location, reason, stack) tally, looked up and deleted at once so no sample is counted twice.
  bool TakeSamples(std::vector<ChainRecord>& heads, std::vector<int32_t>& ids) {
    int fd = bpf_map__fd(stackSamples_);
    std::vector<dw_stack_key> keys;
    if (!Keys(fd, keys)) return false;
    for (const dw_stack_key& k : keys) {
      uint64_t count = 0;
      if (bpf_map_lookup_and_delete_elem(fd, &k, &count) != 0 || count == 0) continue;
      heads.push_back({k.location, 0, count, k.reason, 0});
      ids.push_back(k.stackid);
    }
    return true;
  }

  // Packet mode: the stack of each sampled packet record, by the record's time and location.
  bool TakePacketStacks(std::vector<ChainRecord>& heads, std::vector<int32_t>& ids) {
    int fd = bpf_map__fd(packetStacks_);
    std::vector<dw_packet_stack_key> keys;
    if (!Keys(fd, keys)) return false;
    for (const dw_packet_stack_key& k : keys) {
      int32_t id = DW_STACK_NONE;
      if (bpf_map_lookup_and_delete_elem(fd, &k, &id) != 0) continue;
      heads.push_back({k.location, k.time_ns, 1, 0, 0});
      ids.push_back(id);
    }
    return true;
  }

  // Hardware drops (devlink:devlink_trap_report): whether this kernel has the tracepoint, attach and detach its
  // program, read its cumulative counts and its ring, and what it lost.
  Napi::Value Hardware(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), hasTraps_); }

  Napi::Value AttachTraps(const Napi::CallbackInfo& info) {
    if (!Usable(info.Env()) || trapLink_) return info.Env().Undefined();
    if (!hasTraps_) return ThrowStage(info.Env(), ENOENT, "attach", "this kernel has no devlink:devlink_trap_report");
    libbpfLog.clear();
    trapLink_ = bpf_program__attach(trapProg_);
    if (!trapLink_) {
      int err = errno;
      return ThrowStage(info.Env(), err, "attach", "cannot attach to devlink:devlink_trap_report");
    }
    return info.Env().Undefined();
  }

  Napi::Value DetachTraps(const Napi::CallbackInfo& info) {
    if (trapLink_) bpf_link__destroy(trapLink_);
    trapLink_ = nullptr;
    return info.Env().Undefined();
  }

  // traps(): every (trap, group, input port) counted since loading, as 160-byte TrapCount records; counts only grow.
  Napi::Value Traps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    int fd = bpf_map__fd(trapCounts_);
    std::vector<dw_trap_key> keys;
    dw_trap_key key, next;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      keys.push_back(next);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT) return ThrowStage(env, errno, "map", "cannot read the hardware drop counts");
    std::vector<dw_trap_value> values(cpus_);
    std::vector<TrapCount> out;
    for (const dw_trap_key& k : keys) {
      if (bpf_map_lookup_elem(fd, &k, values.data()) != 0) continue;
      TrapCount t = {};
      t.key = k;
      for (const dw_trap_value& v : values) {
        t.count += v.count;
        if (t.ifname[0] == 0 && v.ifname[0] != 0) memcpy(t.ifname, v.ifname, sizeof(t.ifname));
      }
      out.push_back(t);
    }
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(out.data()),
                                       out.size() * sizeof(TrapCount));
  }

  static int OnTrapPacket(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BpfProgram*>(ctx);
    if (size < sizeof(dw_trap_packet)) return 0;
    const uint8_t* bytes = static_cast<const uint8_t*>(data);
    self->trapRecords_.insert(self->trapRecords_.end(), bytes, bytes + sizeof(dw_trap_packet));
    return self->trapRecords_.size() >= self->trapMaxBytes_ ? 1 : 0;
  }

  // consumeTraps(maxBytes): the trapped packets waiting in their ring, up to about maxBytes, as one Buffer.
  Napi::Value ConsumeTraps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (!trapRing_) {
      trapRing_ = ring_buffer__new(bpf_map__fd(trapPackets_), OnTrapPacket, this, nullptr);
      if (!trapRing_) return ThrowStage(env, errno, "map", "cannot open the trapped packet ring");
    }
    trapMaxBytes_ = info.Length() > 0 ? info[0].As<Napi::Number>().Uint32Value() : 1024 * 1024;
    trapRecords_.clear();
    int n = ring_buffer__consume(trapRing_);
    if (n < 0 && n != -EINTR) return ThrowStage(env, n, "map", "cannot read the trapped packet ring");
    return Napi::Buffer<uint8_t>::Copy(env, trapRecords_.data(), trapRecords_.size());
  }

  // trapsLost(): per DW_TRAP_LOST_* kind since loading, summed over CPUs; then the trap program's recursion misses.
  Napi::Value TrapsLost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    Napi::Array result = Napi::Array::New(env, DW_TRAP_LOST_KINDS + 1);
    std::vector<uint64_t> values(cpus_);
    for (uint32_t kind = 0; kind < DW_TRAP_LOST_KINDS; kind++) {
      uint64_t sum = 0;
      if (bpf_map_lookup_elem(bpf_map__fd(trapLost_), &kind, values.data()) == 0)
        for (uint64_t v : values) sum += v;
      result.Set(kind, Napi::BigInt::New(env, sum));
    }
    bpf_prog_info progInfo = {};
    uint32_t len = sizeof(progInfo);
    uint64_t misses = 0;
    if (hasTraps_ && bpf_obj_get_info_by_fd(bpf_program__fd(trapProg_), &progInfo, &len) == 0)
      misses = progInfo.recursion_misses;
    result.Set(DW_TRAP_LOST_KINDS, Napi::BigInt::New(env, misses));
    return result;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (trapRing_) ring_buffer__free(trapRing_);
    trapRing_ = nullptr;
    if (trapLink_) bpf_link__destroy(trapLink_);
    trapLink_ = nullptr;
    StopWatching();
    if (wakeFd_ >= 0) close(wakeFd_);
    wakeFd_ = -1;
    if (ring_) ring_buffer__free(ring_);
    ring_ = nullptr;
    if (link_) bpf_link__destroy(link_);
    link_ = nullptr;
    if (bss_mem_) munmap(bss_mem_, bssBytes_);
    bss_mem_ = nullptr;
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  std::vector<uint8_t> image_;
  bpf_object* obj_ = nullptr;
  bpf_program* prog_ = nullptr;
  bpf_link* link_ = nullptr;
  bpf_map* active_ = nullptr;
  bpf_map* tables_[2] = {nullptr, nullptr};
  bpf_map* lost_ = nullptr;
  bpf_map* packets_ = nullptr;
  ring_buffer* ring_ = nullptr;
  bpf_map* bss_ = nullptr;
  Bss* bss_mem_ = nullptr;
  size_t bssBytes_ = 0;
  bpf_map* filterValues_ = nullptr;
  int active_index_ = 0;
  bpf_map* stackBudget_ = nullptr;
  bpf_map* stacks_ = nullptr;
  bpf_map* stackSamples_ = nullptr;
  bpf_map* packetStacks_ = nullptr;
  std::map<int32_t, std::vector<uint64_t>> lastFrames_;
  int cpus_ = 1;
  std::vector<uint8_t> records_;
  size_t maxBytes_ = 0;
  // Hardware drops.
  bpf_program* trapProg_ = nullptr;
  bool hasTraps_ = false;
  bpf_link* trapLink_ = nullptr;
  bpf_map* trapCounts_ = nullptr;
  bpf_map* trapLost_ = nullptr;
  bpf_map* trapPackets_ = nullptr;
  ring_buffer* trapRing_ = nullptr;
  std::vector<uint8_t> trapRecords_;
  size_t trapMaxBytes_ = 0;
  int wakeFd_ = -1;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onWake_;
  std::unique_ptr<Napi::AsyncContext> wakeContext_;
};

// dropReasons(btfPath?): [value, name] for each member of the kernel's enum skb_drop_reason, from its BTF.
Napi::Value DropReasons(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  libbpfLog.clear();
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  btf* kernel = path.empty() ? btf__load_vmlinux_btf() : btf__parse(path.c_str(), nullptr);
  if (!kernel) {
    int err = errno;
    return ThrowStage(env, err, "btf", "cannot read the kernel's BTF");
  }
  Napi::Array result = Napi::Array::New(env);
  int id = btf__find_by_name_kind(kernel, "skb_drop_reason", BTF_KIND_ENUM);
  if (id > 0) {
    const btf_type* t = btf__type_by_id(kernel, id);
    const struct btf_enum* members = btf_enum(t);
    for (uint32_t i = 0; i < btf_vlen(t); i++) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Number::New(env, members[i].val));
      pair.Set(1u, Napi::String::New(env, btf__name_by_offset(kernel, members[i].name_off)));
      result.Set(i, pair);
    }
  }
  btf__free(kernel);
  return result;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CollectLibbpfMessage);
  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("packetRecordBytes", Napi::Number::New(env, sizeof(dw_packet)));
  exports.Set("dropReasons", Napi::Function::New(env, DropReasons));
  return BpfProgram::Init(env, exports);
}

NODE_API_MODULE(bpf_native, Init)
