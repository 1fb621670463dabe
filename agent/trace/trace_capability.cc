#include "agent/trace/trace_capability.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/bpf_util.h"
#include "agent/syscalls/syscall_table.h"
#include "agent/trace/syscall_args.h"
#include "bpf/trace.h"
#include "bpf/trace.skel.h"
#include "common/regex.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

// How often the session wakes with no events: the bound on how late it
// notices the client leaving, the process exiting or the deadline.
constexpr int kPollMs = 100;
// Events per message: one gRPC write per event could not keep up with a
// process making a million syscalls a second.
constexpr int kBatch = 512;
// Records handled per poll before the session looks at its clock again.
constexpr uint64_t kPollBudget = 16384;

// CLOCK_MONOTONIC (bpf_ktime_get_ns) -> Unix time, fixed at session start.
int64_t MonotonicToUnixOffsetNs() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec; };
  return ns(real) - ns(mono);
}

struct Filters {
  std::vector<int> nrs;  // empty: every syscall
  std::unique_ptr<RE2> comm;
};

absl::StatusOr<Filters> Validate(const v1::TraceRequest& req) {
  Filters f;
  if (req.pid() == 0) return absl::InvalidArgumentError("pid is required");
  if (kill(static_cast<pid_t>(req.pid()), 0) != 0 && errno == ESRCH) {
    return absl::InvalidArgumentError(absl::StrCat("no process with pid ", req.pid()));
  }
  if (req.tid() != 0) {
    const std::string task = absl::StrCat("/proc/", req.pid(), "/task/", req.tid());
    if (access(task.c_str(), F_OK) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("thread ", req.tid(), " is not a thread of pid ", req.pid()));
    }
  }
  if (req.syscalls_size() > TRACE_NR_MAX) {
    return absl::InvalidArgumentError("too many syscall names");
  }
  for (const std::string& name : req.syscalls()) {
    const int nr = SyscallNumber(name);
    if (nr < 0 || nr >= TRACE_NR_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown syscall \"", name.substr(0, 64), "\" on this architecture"));
    }
    f.nrs.push_back(nr);
  }
  if (!req.comm_regex().empty()) {
    absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(req.comm_regex(), "comm");
    if (!re.ok()) return re.status();
    f.comm = *std::move(re);
  }
  return f;
}

std::string Describe(const v1::TraceRequest& req) {
  std::string s = absl::StrCat("pid ", req.pid());
  if (req.tid()) absl::StrAppend(&s, " tid ", req.tid());
  if (!req.comm_regex().empty()) absl::StrAppend(&s, " comm ~ ", req.comm_regex().substr(0, 64));
  if (req.syscalls_size()) {
    absl::StrAppend(&s, " syscalls ", req.syscalls_size() > 8 ? "(many)" : "",
                    req.syscalls_size() > 8 ? "" : absl::StrJoin(req.syscalls(), ","));
  }
  if (req.failed_only()) absl::StrAppend(&s, " failed only");
  return s;
}

// One running session: its kernel objects and the decoding state.
class TraceSession {
 public:
  TraceSession(const v1::TraceRequest& req, Filters filters,
               const SessionSink<v1::TraceMessage>& sink)
      : req_(req), filters_(std::move(filters)), sink_(sink) {}

  absl::Status Load(uint32_t max_events_per_second) {
    LibbpfLogCapture libbpf_log;
    skel_.reset(trace_bpf::open());
    if (!skel_) return libbpf_log.Annotate(ErrnoStatus(errno, "trace: opening trace.bpf.o"));
    skel_->rodata->target_pid = req_.pid();
    skel_->rodata->target_tid = req_.tid();
    skel_->rodata->filter_nr = !filters_.nrs.empty();
    skel_->rodata->failed_only = req_.failed_only();
    skel_->rodata->max_events_per_second = max_events_per_second;
    if (int err = trace_bpf::load(skel_.get())) {
      return libbpf_log.Annotate(ErrnoStatus(-err, "trace: loading trace.bpf.o"));
    }
    const uint8_t one = 1;
    const uint32_t pid = req_.pid();
    if (bpf_map__update_elem(skel_->maps.pids, &pid, sizeof(pid), &one, 1, BPF_ANY) != 0) {
      return ErrnoStatus(errno, "trace: seeding the pid set");
    }
    for (int nr : filters_.nrs) {
      const uint32_t key = static_cast<uint32_t>(nr);
      bpf_map__update_elem(skel_->maps.wanted_nr, &key, sizeof(key), &one, 1, BPF_ANY);
    }
    for (uint32_t nr = 0; nr < TRACE_NR_MAX; ++nr) {
      const uint8_t mask = StringArgMask(static_cast<int>(nr));
      if (mask) bpf_map__update_elem(skel_->maps.str_args, &nr, sizeof(nr), &mask, 1, BPF_ANY);
    }
    ring_.reset(
        ring_buffer__new(bpf_map__fd(skel_->maps.events), &TraceSession::OnEvent, this, nullptr));
    if (ring_ == nullptr) return ErrnoStatus(errno, "trace: opening the ring buffer");
    // The process is watched for its exit from now on, so an exit during
    // the attach below is not missed.
    pidfd_ = UniqueFd(static_cast<int>(syscall(SYS_pidfd_open, req_.pid(), 0)));
    if (pidfd_.get() < 0) {
      return errno == ESRCH
                 ? absl::InvalidArgumentError(absl::StrCat("no process with pid ", req_.pid()))
                 : ErrnoStatus(errno, "trace: pidfd_open");
    }
    if (int err = trace_bpf::attach(skel_.get())) {
      return libbpf_log.Annotate(ErrnoStatus(-err, "trace: attaching"));
    }
    offset_ns_ = MonotonicToUnixOffsetNs();
    return absl::OkStatus();
  }

  // Polls until the session must end; returns why.
  std::string Stream(const Session& session, const std::function<void()>& report_losses) {
    absl::Time next_report = absl::Now() + absl::Seconds(1);
    for (;;) {
      ring_buffer__poll(ring_.get(), kPollMs);
      Flush();
      if (client_gone_ || sink_.cancelled()) return "client cancelled";
      if (std::string why = session.ShouldEnd(); !why.empty()) return why;
      pollfd p{pidfd_.get(), POLLIN, 0};
      if (poll(&p, 1, 0) == 1) {
        return "process exited";  // Drain() delivers its last calls
      }
      if (absl::Now() >= next_report) {
        report_losses();
        next_report += absl::Seconds(1);
      }
    }
  }

  // What is left in the ring (a budget's worth at a time; children still
  // running could refill it, hence the bound).
  void Drain() {
    for (int i = 0; i < 64 && !client_gone_; ++i) {
      if (ring_buffer__consume(ring_.get()) >= 0) break;
    }
    Flush();
  }

  // Cumulative kernel-side losses.
  v1::TraceLoss Loss() const {
    v1::TraceLoss l;
    absl::StatusOr<std::vector<uint64_t>> c =
        SumPerCpuCounters(bpf_map__fd(skel_->maps.counters), TRACE_CTR_MAX, "trace: counters");
    if (!c.ok()) return l;
    l.set_rate_limited((*c)[TRACE_CTR_RATE_LIMITED]);
    l.set_ring_full((*c)[TRACE_CTR_RING_FULL]);
    l.set_string_faults((*c)[TRACE_CTR_STR_FAULT]);
    l.set_pids_untracked((*c)[TRACE_CTR_PIDS_FULL]);
    return l;
  }

  uint64_t sent() const { return sent_; }
  bool client_gone() const { return client_gone_; }

 private:
  static int OnEvent(void* ctx, void* data, size_t size) {
    auto* self = static_cast<TraceSession*>(ctx);
    // Records end after the strings the call has (bpf/trace.bpf.c emit).
    if (size < offsetof(vigil_trace_event, str) || size > sizeof(vigil_trace_event)) return 0;
    vigil_trace_event e;
    memset(&e, 0, sizeof(e));
    memcpy(&e, data, size);
    // A negative return stops the poll after this record: when the client
    // is gone, and every kPollBudget records, so that a producer as fast as
    // the consumer cannot keep the session from its deadline checks.
    if (!self->Add(e)) return -1;
    return ++self->polled_ % kPollBudget == 0 ? -1 : 0;
  }

  // Sends what is batched; false once the client is gone.
  bool Flush() {
    if (client_gone_) return false;
    if (batch_.events_size() == 0) return true;
    const int n = batch_.events_size();
    if (!sink_.write(batch_)) {
      client_gone_ = true;
      return false;
    }
    sent_ += static_cast<uint64_t>(n);
    batch_.Clear();
    return true;
  }

  bool Add(const vigil_trace_event& e) {
    if (client_gone_) return false;
    const std::string comm(e.comm, strnlen(e.comm, sizeof(e.comm)));
    if (filters_.comm && !RE2::PartialMatch(comm, *filters_.comm)) return true;
    v1::TraceEvent* out = batch_.add_events();
    const bool unfinished = e.flags & TRACE_EV_UNFINISHED;
    out->set_unfinished(unfinished);
    if (!unfinished) {
      out->set_enter_unix_ns(static_cast<int64_t>(e.enter_ns) + offset_ns_);
      if (e.exit_ns >= e.enter_ns) out->set_duration_ns(e.exit_ns - e.enter_ns);
    }
    out->set_pid(e.pid);
    out->set_tid(e.tid);
    out->set_comm(comm);
    out->set_syscall(SyscallName(static_cast<int>(e.nr)));
    out->set_nr(e.nr);
    for (std::string& a : DecodeArgs(e, &fds_)) out->add_args(std::move(a));
    for (uint64_t a : e.args) out->add_raw_args(a);
    if (e.flags & TRACE_EV_NO_RETURN) {
      out->set_no_return(true);
    } else {
      out->set_ret(e.ret);
      if (e.ret < 0 && e.ret >= -4095) out->set_errno_name(ErrnoName(static_cast<int>(-e.ret)));
    }
    fds_.Learn(e);
    return batch_.events_size() < kBatch || Flush();
  }

  const v1::TraceRequest req_;
  const Filters filters_;
  const SessionSink<v1::TraceMessage>& sink_;
  SkelPtr<trace_bpf> skel_;
  RingBufferPtr ring_;  // after skel_: freed before the map it reads
  UniqueFd pidfd_;
  int64_t offset_ns_ = 0;
  FdPaths fds_;
  v1::TraceMessage batch_;
  uint64_t sent_ = 0;
  uint64_t polled_ = 0;
  bool client_gone_ = false;
};

}  // namespace

absl::Status TraceCapability::Init(const InitContext& ctx) {
  if (!config_.allow_trace) return Disabled("without --allow-trace");
  sessions_ = ctx.sessions;
  // Sessions load their programs later; a kernel without ring buffers
  // would fail every one of them, so say it now.
  if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1) {
    return absl::FailedPreconditionError("this kernel has no BPF ring buffer (needs 5.8)");
  }
  return absl::OkStatus();
}

void TraceCapability::FillStatus(const StoreView&, v1::StatusResponse* out) const {
  v1::OnDemandStatus* s = FillSessions(out);
  s->set_trace_sessions(sessions_run_.load());
  s->set_trace_events(events_.load());
  s->set_trace_lost(rate_limited_.load() + ring_full_.load());
}

void TraceCapability::RenderMetrics(const StoreView&, Exposition* out) const {
  out->Counter("vigil_trace_sessions_total", "vigil trace sessions run",
               static_cast<double>(sessions_run_.load()));
  out->Counter("vigil_trace_events_total", "syscall events sent to trace clients",
               static_cast<double>(events_.load()));
}

std::vector<std::pair<std::string, uint64_t>> TraceCapability::Losses(const StoreView&) const {
  return {{"rate_limited", rate_limited_.load()}, {"ring_full", ring_full_.load()}};
}

absl::Status TraceCapability::Run(const SessionPeer& who, const v1::TraceRequest& req,
                                  const SessionSink<v1::TraceMessage>& sink) const {
  absl::StatusOr<Filters> filters = Validate(req);
  if (!filters.ok()) return filters.status();
  absl::StatusOr<std::unique_ptr<Session>> session =
      sessions_->Begin("trace", who, Describe(req), absl::Nanoseconds(req.duration_ns()));
  if (!session.ok()) return session.status();
  sessions_run_.fetch_add(1);

  TraceSession trace(req, *std::move(filters), sink);
  if (absl::Status s = trace.Load(config_.trace_max_events_per_second); !s.ok()) {
    (*session)->SetEndReason(std::string(s.message()));
    return s;
  }
  auto info = [&](const std::string& message, bool ended) {
    v1::TraceMessage m;
    v1::TraceSessionInfo* i = m.mutable_info();
    i->set_message(message);
    i->set_duration_ns(absl::ToInt64Nanoseconds((*session)->granted()));
    i->set_events(trace.sent());
    *i->mutable_loss() = trace.Loss();
    i->set_ended(ended);
    return sink.write(m);
  };
  if (!info(absl::StrCat("tracing ", Describe(req), " for ",
                         absl::FormatDuration((*session)->granted())),
            false)) {
    (*session)->SetEndReason("client cancelled");
    return absl::OkStatus();
  }
  uint64_t lost_reported = 0;
  const std::string why = trace.Stream(**session, [&] {
    const v1::TraceLoss l = trace.Loss();
    const uint64_t lost = l.rate_limited() + l.ring_full();
    if (lost != lost_reported) {
      lost_reported = lost;
      info("events lost", false);
    }
  });
  (*session)->SetEndReason(why);
  const bool client_left = why == "client cancelled";
  if (!client_left) trace.Drain();
  const v1::TraceLoss loss = trace.Loss();
  events_.fetch_add(trace.sent());
  rate_limited_.fetch_add(loss.rate_limited());
  ring_full_.fetch_add(loss.ring_full());
  if (!client_left) info(why, true);
  return absl::OkStatus();
}

}  // namespace vigil
