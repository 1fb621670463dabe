#include "agent/probe/probe_capability.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/bpf_util.h"
#include "agent/probe/probe_target.h"
#include "agent/profile/profile_capability.h"
#include "agent/profile/symbolizer.h"
#include "bpf/probe.h"
#include "bpf/profile.h"
// bpftool spells libbpf's USDT kconfig flag (LINUX_HAS_BPF_COOKIE) as C's
// _Bool, which g++ accepts as an extension and clang++ (the thread-safety
// check) does not.
#define _Bool bool
#include "bpf/probe.skel.h"
#undef _Bool
#include "common/unique_fd.h"

namespace vigil {
namespace {

constexpr size_t kTopThreads = 10;  // per function, in the report
constexpr size_t kTopArgs = 10;     // values per argument position
constexpr size_t kTopStacks = 10;   // stacks per function
constexpr absl::Duration kPoll = absl::Milliseconds(200);
constexpr absl::Duration kReportEvery = absl::Seconds(1);

// One session's kernel objects. Links are declared after the skeleton so
// they are destroyed first (detached before the programs go).
struct ProbeObjects {
  SkelPtr<probe_bpf> skel;
  std::vector<LinkPtr> links;
  // --stacks: links of the profiler's program, and our own references to
  // its maps (dup'ed, so they outlive nothing of the profiler's).
  std::vector<LinkPtr> stack_links;
  UniqueFd stacks_fd, ustacks_fd;
};

absl::Status AttachError(int err, const std::string& what, const LibbpfLogCapture& log) {
  return log.Annotate(ErrnoStatus(err, what));
}

// Sums a per-CPU array element over the possible CPUs.
template <typename T, typename Add>
bool ReadPerCpu(int fd, uint32_t key, int ncpu, std::vector<T>* buf, Add&& add) {
  buf->assign(static_cast<size_t>(ncpu), T{});
  if (bpf_map_lookup_elem(fd, &key, buf->data()) != 0) return false;
  for (const T& v : *buf) add(v);
  return true;
}

// Walks a hash's keys (bounded by max_entries). Racy against programs
// inserting meanwhile: an entry added during the walk may be missed until
// the next report, never counted twice.
template <typename K>
std::vector<K> HashKeys(int fd, uint32_t max_entries) {
  std::vector<K> keys;
  K key{}, next{};
  const void* prev = nullptr;
  while (keys.size() <= max_entries && bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

void FillLatency(const probe_fn_hist& h, v1::ProbeFunction* f) {
  int first = -1, last = -1;
  for (int b = 0; b < VIGIL_PROBE_SLOTS; ++b) {
    if (h.slots[b] == 0) continue;
    if (first < 0) first = b;
    last = b;
  }
  if (first < 0) return;
  for (int b = first; b <= last; ++b) {
    v1::ProbeLog2Bucket* out = f->add_latency();
    out->set_low_ns(b == 0 ? 0 : uint64_t{1} << (b - 1));
    out->set_high_ns(b >= 64 ? UINT64_MAX : uint64_t{1} << b);
    out->set_count(h.slots[b]);
  }
}

std::string EndReasonOf(const std::string& s) { return s.empty() ? "duration reached" : s; }

// The session: the request resolved, its objects, and the report.
class ProbeRun {
 public:
  ProbeRun(const OnDemandConfig& config, const v1::ProbeRequest& req, ProbeTarget target,
           uint32_t session_id)
      : config_(config), req_(req), target_(std::move(target)), session_id_(session_id) {}

  absl::Status Load(const ProfileCapability* profile);
  // The cumulative report; ended marks the last one.
  v1::ProbeReport Report(absl::Duration elapsed);
  // Deletes this session's entries from the profiler's shared maps.
  void ForgetStacks();
  // Detaches every link and unloads the skeleton (before the session's end
  // is logged, so the journal's end line means nothing is attached).
  void Detach() {
    o_.stack_links.clear();
    o_.links.clear();
    o_.skel.reset();
  }
  uint64_t total_calls() const { return total_calls_; }
  const v1::ProbeLoss& loss() const { return loss_; }
  uint64_t untimed() const { return untimed_; }
  std::string Describe() const;
  size_t nfuncs() const { return target_.spec.usdt ? 1 : target_.functions.size(); }

 private:
  void AddStacks(v1::ProbeReport* r);
  v1::ProfileFrame* Resolve(uint64_t addr, bool leaf, v1::ProbeStack* s);

  const OnDemandConfig& config_;
  const v1::ProbeRequest req_;
  const ProbeTarget target_;
  const uint32_t session_id_;
  ProbeObjects o_;
  int ncpu_ = 1;
  uint64_t total_calls_ = 0;
  uint64_t untimed_ = 0;
  v1::ProbeLoss loss_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::unique_ptr<ProcessSymbols> symbols_;
  absl::flat_hash_map<uint64_t, Frame> frames_;  // memo: pc -> frame
};

std::string ProbeRun::Describe() const {
  if (target_.spec.usdt) {
    return absl::StrCat("USDT probe ", target_.spec.provider, ":", target_.spec.probe, " in ",
                        target_.binary, " of pid ", req_.pid());
  }
  return absl::StrCat(target_.functions.size(),
                      target_.functions.size() == 1 ? " function" : " functions", " in ",
                      target_.binary, " of pid ", req_.pid());
}

absl::Status ProbeRun::Load(const ProfileCapability* profile) {
  LibbpfLogCapture log;
  ncpu_ = libbpf_num_possible_cpus();
  if (ncpu_ <= 0) return ErrnoStatus(-ncpu_, "probe: counting possible CPUs");
  o_.skel.reset(probe_bpf::open());
  if (!o_.skel) return AttachError(errno, "probe: opening probe.bpf.o", log);
  probe_bpf* s = o_.skel.get();
  const uint32_t n = static_cast<uint32_t>(nfuncs());
  s->rodata->target_tgid = req_.pid();
  s->rodata->nfuncs = n;
  s->rodata->nargs = req_.args();
  s->rodata->latency = req_.latency() && !target_.spec.usdt;
  struct Size {
    bpf_map* map;
    uint32_t entries;
  };
  for (const Size& z : {Size{s->maps.fn_stats, n}, Size{s->maps.fn_hist, n},
                        Size{s->maps.threads, config_.probe_thread_entries},
                        Size{s->maps.starts, config_.probe_running_calls},
                        Size{s->maps.arg_values, config_.probe_arg_entries}}) {
    if (int err = bpf_map__set_max_entries(z.map, std::max<uint32_t>(z.entries, 1))) {
      return ErrnoStatus(-err, absl::StrCat("probe: sizing ", bpf_map__name(z.map)));
    }
  }
  // Only what the request uses is loaded.
  const bool usdt = target_.spec.usdt;
  bpf_program__set_autoload(s->progs.vigil_probe_entry, !usdt);
  bpf_program__set_autoload(s->progs.vigil_probe_return, !usdt && req_.latency());
  bpf_program__set_autoload(s->progs.vigil_probe_usdt, usdt);
  if (int err = probe_bpf::load(s)) return AttachError(-err, "probe: loading probe.bpf.o", log);

  const int pid = static_cast<int>(req_.pid());
  auto cookie = [&](uint32_t fn) { return static_cast<uint64_t>(session_id_) << 32 | fn; };
  if (usdt) {
    LIBBPF_OPTS(bpf_usdt_opts, uo, .usdt_cookie = 0);
    bpf_link* l =
        bpf_program__attach_usdt(s->progs.vigil_probe_usdt, pid, target_.open_path.c_str(),
                                 target_.spec.provider.c_str(), target_.spec.probe.c_str(), &uo);
    if (l == nullptr) {
      const int err = errno;
      if (err == ENOENT) {
        return absl::InvalidArgumentError(absl::StrCat("probe: no USDT probe ",
                                                       target_.spec.provider, ":",
                                                       target_.spec.probe, " in ", target_.binary));
      }
      return AttachError(
          err,
          absl::StrCat("probe: attaching USDT ", target_.spec.provider, ":", target_.spec.probe),
          log);
    }
    o_.links.emplace_back(l);
  }
  for (uint32_t i = 0; !usdt && i < n; ++i) {
    const ElfFunction& f = target_.functions[i];
    for (bool ret : {false, true}) {
      if (ret && !req_.latency()) continue;
      LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = i, .retprobe = ret);
      bpf_link* l = bpf_program__attach_uprobe_opts(
          ret ? s->progs.vigil_probe_return : s->progs.vigil_probe_entry, pid,
          target_.open_path.c_str(), f.file_offset, &uo);
      if (l == nullptr) {
        return AttachError(errno,
                           absl::StrCat("probe: attaching ", ret ? "uretprobe" : "uprobe", " to ",
                                        f.name, " in ", target_.binary),
                           log);
      }
      o_.links.emplace_back(l);
    }
  }
  if (!req_.stacks()) return absl::OkStatus();

  // --stacks: the profiler's program, one link per function, cookie =
  // session << 32 | function.
  const ProbeStackHooks& h = profile->probe_stack_hooks();
  o_.stacks_fd = UniqueFd(fcntl(h.stacks_fd, F_DUPFD_CLOEXEC, 0));
  o_.ustacks_fd = UniqueFd(fcntl(h.ustacks_fd, F_DUPFD_CLOEXEC, 0));
  if (o_.stacks_fd.get() < 0 || o_.ustacks_fd.get() < 0) {
    return ErrnoStatus(errno, "probe: duplicating the profiler's stack maps");
  }
  // (Run refuses --stacks with USDT: the profiler's program is a plain
  // uprobe, and a USDT site's address is libbpf's to resolve.)
  for (uint32_t i = 0; i < n; ++i) {
    const ElfFunction& f = target_.functions[i];
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = cookie(i));
    bpf_link* l =
        bpf_program__attach_uprobe_opts(h.prog, pid, target_.open_path.c_str(), f.file_offset, &uo);
    if (l == nullptr) {
      return AttachError(errno, absl::StrCat("probe: attaching the stack walk to ", f.name), log);
    }
    o_.stack_links.emplace_back(l);
  }
  symbolizer_ = NewBccSymbolizer(16 << 20);
  symbols_ = symbolizer_->OpenProcess(req_.pid());
  return absl::OkStatus();
}

v1::ProfileFrame* ProbeRun::Resolve(uint64_t addr, bool leaf, v1::ProbeStack* s) {
  // A caller's pc is a return address: name the call instruction, which
  // may be the last of its function.
  const uint64_t pc = leaf ? addr : addr - 1;
  auto it = frames_.find(pc);
  if (it == frames_.end()) {
    // Bounded: a long session over many stacks re-resolves rather than grow.
    if (frames_.size() > 65536) frames_.clear();
    it = frames_.emplace(pc, symbols_->Resolve(pc)).first;
  }
  v1::ProfileFrame* f = s->add_frames();
  f->set_name(it->second.name());
  f->set_module(it->second.module());
  f->set_offset(it->second.offset);
  return f;
}

void ProbeRun::AddStacks(v1::ProbeReport* r) {
  if (!req_.stacks() || o_.stacks_fd.get() < 0 || !symbols_) return;
  struct Entry {
    uint64_t calls;
    uint64_t hash;
  };
  std::vector<std::vector<Entry>> per_fn(nfuncs());
  uint64_t stacked = 0, unstored = 0;
  for (const profile_probe_key& k :
       HashKeys<profile_probe_key>(o_.stacks_fd.get(), VIGIL_PROFILE_PROBE_STACKS)) {
    if ((k.cookie >> 32) != session_id_) continue;
    const uint32_t fn = static_cast<uint32_t>(k.cookie);
    uint64_t calls = 0;
    if (fn >= per_fn.size() || bpf_map_lookup_elem(o_.stacks_fd.get(), &k, &calls) != 0) continue;
    stacked += calls;
    if (k.user_stack == 0) {
      unstored += calls;
      continue;
    }
    per_fn[fn].push_back({calls, k.user_stack});
  }
  for (size_t fn = 0; fn < per_fn.size(); ++fn) {
    auto& v = per_fn[fn];
    std::sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) {
      return a.calls != b.calls ? a.calls > b.calls : a.hash < b.hash;
    });
    if (v.size() > kTopStacks) v.resize(kTopStacks);
    for (const Entry& e : v) {
      profile_probe_ustack_key uk{session_id_, e.hash};
      profile_user_stack st;
      if (bpf_map_lookup_elem(o_.ustacks_fd.get(), &uk, &st) != 0) continue;
      v1::ProbeStack* s = r->mutable_functions(static_cast<int>(fn))->add_stacks();
      s->set_calls(e.calls);
      for (int d = 0; d < VIGIL_PROFILE_MAX_DEPTH && st.ips[d] != 0; ++d)
        Resolve(st.ips[d], d == 0, s);
    }
  }
  // Calls the stack walk saw but could not store, and calls counted while
  // no stack map entry was free (the two probes see the same calls).
  const uint64_t missing = total_calls_ > stacked ? total_calls_ - stacked : 0;
  loss_.set_stacks_dropped(unstored + missing);
}

v1::ProbeReport ProbeRun::Report(absl::Duration elapsed) {
  v1::ProbeReport r;
  r.set_elapsed_ns(absl::ToInt64Nanoseconds(elapsed));
  probe_bpf* s = o_.skel.get();
  const int stats_fd = bpf_map__fd(s->maps.fn_stats);
  const int hist_fd = bpf_map__fd(s->maps.fn_hist);
  std::vector<probe_fn_stats> sbuf;
  std::vector<probe_fn_hist> hbuf;
  total_calls_ = 0;
  untimed_ = 0;
  const uint32_t n = static_cast<uint32_t>(nfuncs());
  for (uint32_t i = 0; i < n; ++i) {
    v1::ProbeFunction* f = r.add_functions();
    f->set_binary(target_.binary);
    if (target_.spec.usdt) {
      f->set_name(absl::StrCat(target_.spec.provider, ":", target_.spec.probe));
    } else {
      f->set_name(target_.functions[i].name);
      f->set_address(target_.functions[i].address);
    }
    probe_fn_stats st{};
    ReadPerCpu(stats_fd, i, ncpu_, &sbuf, [&](const probe_fn_stats& v) {
      st.calls += v.calls;
      st.returns += v.returns;
      st.latency_sum_ns += v.latency_sum_ns;
    });
    f->set_calls(st.calls);
    total_calls_ += st.calls;
    if (req_.latency() && !target_.spec.usdt) {
      probe_fn_hist h{};
      ReadPerCpu(hist_fd, i, ncpu_, &hbuf, [&](const probe_fn_hist& v) {
        for (int b = 0; b < VIGIL_PROBE_SLOTS; ++b) h.slots[b] += v.slots[b];
      });
      FillLatency(h, f);
      f->set_latency_sum_ns(st.latency_sum_ns);
      f->set_unreturned(st.calls > st.returns ? st.calls - st.returns : 0);
    }
  }
  r.set_calls(total_calls_);

  // Threads, most calls first, per function.
  std::vector<std::vector<v1::ProbeThreadCalls>> threads(n);
  const int threads_fd = bpf_map__fd(s->maps.threads);
  for (const probe_thread_key& k :
       HashKeys<probe_thread_key>(threads_fd, config_.probe_thread_entries)) {
    probe_thread_value v;
    if (k.fn >= n || bpf_map_lookup_elem(threads_fd, &k, &v) != 0) continue;
    v1::ProbeThreadCalls t;
    t.set_tid(k.tid);
    t.set_comm(std::string(v.comm, strnlen(v.comm, sizeof(v.comm))));
    t.set_calls(v.calls);
    threads[k.fn].push_back(std::move(t));
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto& v = threads[i];
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
      return a.calls() != b.calls() ? a.calls() > b.calls() : a.tid() < b.tid();
    });
    if (v.size() > kTopThreads) v.resize(kTopThreads);
    for (auto& t : v) *r.mutable_functions(static_cast<int>(i))->add_threads() = std::move(t);
  }

  // Argument values: top kTopArgs per (function, position).
  if (req_.args() > 0) {
    std::map<std::pair<uint32_t, uint32_t>, std::vector<std::pair<uint64_t, uint64_t>>> vals;
    const int args_fd = bpf_map__fd(s->maps.arg_values);
    for (const probe_arg_key& k : HashKeys<probe_arg_key>(args_fd, config_.probe_arg_entries)) {
      uint64_t c = 0;
      if (k.fn >= n || bpf_map_lookup_elem(args_fd, &k, &c) != 0) continue;
      vals[{k.fn, k.index}].push_back({c, k.value});
    }
    for (uint32_t i = 0; i < n; ++i) {
      for (uint32_t a = 0; a < req_.args(); ++a) {
        auto it = vals.find({i, a});
        v1::ProbeArgValues* out = r.mutable_functions(static_cast<int>(i))->add_args();
        out->set_index(a);
        if (it == vals.end()) continue;
        auto& v = it->second;
        std::sort(v.begin(), v.end(), [](const auto& x, const auto& y) {
          return x.first != y.first ? x.first > y.first : x.second < y.second;
        });
        for (size_t j = 0; j < v.size() && j < kTopArgs; ++j) {
          v1::ProbeArgValue* av = out->add_top();
          av->set_value(v[j].second);
          av->set_calls(v[j].first);
        }
      }
    }
  }

  absl::StatusOr<std::vector<uint64_t>> ctr =
      SumPerCpuCounters(bpf_map__fd(s->maps.counters), PROBE_CTR_MAX, "probe: reading counters");
  if (ctr.ok()) {
    loss_.set_threads_dropped((*ctr)[PROBE_CTR_THREADS_FULL]);
    loss_.set_args_dropped((*ctr)[PROBE_CTR_ARGS_FULL]);
    untimed_ = (*ctr)[PROBE_CTR_STARTS_FULL];
  }
  AddStacks(&r);
  *r.mutable_loss() = loss_;
  return r;
}

void ProbeRun::ForgetStacks() {
  if (o_.stacks_fd.get() < 0) return;
  // The links are gone first, so nothing adds entries of this session.
  o_.stack_links.clear();
  for (const profile_probe_key& k :
       HashKeys<profile_probe_key>(o_.stacks_fd.get(), VIGIL_PROFILE_PROBE_STACKS)) {
    if ((k.cookie >> 32) == session_id_) bpf_map_delete_elem(o_.stacks_fd.get(), &k);
  }
  for (const profile_probe_ustack_key& k :
       HashKeys<profile_probe_ustack_key>(o_.ustacks_fd.get(), VIGIL_PROFILE_PROBE_USTACKS)) {
    if (k.session == session_id_) bpf_map_delete_elem(o_.ustacks_fd.get(), &k);
  }
}

// pidfd_open(2) (glibc 2.36 has no wrapper in Debian 12's headers we use).
int PidfdOpen(uint32_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
}

}  // namespace

absl::Status ProbeCapability::Init(const InitContext& ctx) {
  if (!config_.allow_probe) return Disabled("without --allow-probe");
  if (ctx.sessions == nullptr) return absl::InternalError("probe: no session limiter");
  sessions_ = ctx.sessions;
  profile_ = ctx.Get<ProfileCapability>();
  return absl::OkStatus();
}

void ProbeCapability::FillStatus(const StoreView&, v1::StatusResponse* out) const {
  v1::OnDemandStatus* s = FillSessions(out);
  s->set_probe_sessions(sessions_run_.load());
  s->set_probe_calls(calls_.load());
}

void ProbeCapability::RenderMetrics(const StoreView&, Exposition* e) const {
  e->Counter("vigil_probe_sessions_total", "vigil probe sessions run since the agent started.",
             static_cast<double>(sessions_run_.load()));
  e->Counter("vigil_probe_calls_total",
             "Calls counted by vigil probe sessions since the agent started.",
             static_cast<double>(calls_.load()));
}

std::vector<std::pair<std::string, uint64_t>> ProbeCapability::Losses(const StoreView&) const {
  return {{"threads_dropped", threads_dropped_.load()},
          {"args_dropped", args_dropped_.load()},
          {"stacks_dropped", stacks_dropped_.load()},
          {"calls_untimed", untimed_.load()}};
}

absl::Status ProbeCapability::Run(const SessionPeer& who, const v1::ProbeRequest& req,
                                  const SessionSink<v1::ProbeReport>& sink) const {
  if (req.pid() == 0) return absl::InvalidArgumentError("probe: a pid is required");
  if (req.args() > VIGIL_PROBE_MAX_ARGS) {
    return absl::InvalidArgumentError(
        absl::StrCat("probe: args ", req.args(), ": at most ", VIGIL_PROBE_MAX_ARGS));
  }
  if (req.duration_ns() < 0) {
    return absl::InvalidArgumentError("probe: a negative duration");
  }
  if (req.stacks() && profile_ == nullptr) {
    return absl::FailedPreconditionError(
        "probe: --stacks walks stacks with the profiler's unwinder, and the profile capability "
        "is off on this agent");
  }
  if (req.stacks() && profile_->probe_stack_hooks().prog == nullptr) {
    return absl::FailedPreconditionError(
        "probe: --stacks needs the profiler's uprobe program, which this kernel refused (see "
        "vigild's log)");
  }
  if (req.stacks() && absl::StartsWith(req.target(), "usdt:")) {
    return absl::InvalidArgumentError("probe: --stacks is for functions, not USDT probes");
  }
  if (req.latency() && absl::StartsWith(req.target(), "usdt:")) {
    return absl::InvalidArgumentError("probe: --latency is for functions, not USDT probes");
  }
  // Checked before taking a slot: bad input costs no session.
  absl::StatusOr<ProbeTarget> target =
      ResolveProbeTarget(req.pid(), req.target(), config_.probe_max_functions);
  if (!target.ok()) return target.status();
  // Opened before attaching, so the process we resolved is the one watched.
  UniqueFd pidfd(PidfdOpen(req.pid()));
  if (pidfd.get() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("probe: pid ", req.pid(), ": no such process"));
  }

  ProbeRun run(config_, req, *std::move(target),
               next_session_.fetch_add(1, std::memory_order_relaxed));
  absl::StatusOr<std::unique_ptr<Session>> session =
      sessions_->Begin("probe", who, absl::StrCat(run.Describe(), " (", req.target(), ")"),
                       absl::Nanoseconds(req.duration_ns()));
  if (!session.ok()) return session.status();
  sessions_run_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time start = absl::Now();
  if (absl::Status s = run.Load(profile_); !s.ok()) {
    run.ForgetStacks();
    run.Detach();
    (*session)->SetEndReason(absl::StrCat("failed: ", s.message()));
    return s;
  }
  // The first report lists what was attached (zero calls), so a client
  // interrupted before the next one still has the functions.
  v1::ProbeReport first = run.Report(absl::Now() - start);
  first.set_message(absl::StrCat("probing ", run.Describe(), " for ",
                                 absl::FormatDuration((*session)->granted())));
  bool client_gone = !sink.write(first);

  std::string reason = client_gone ? "client cancelled" : "";
  absl::Time last_report = start;
  uint64_t last_calls = 0;
  while (reason.empty()) {
    pollfd p{pidfd.get(), POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kPoll)));
    if (ready > 0 && (p.revents & (POLLIN | POLLHUP))) {
      reason = "process exited";
      break;
    }
    if (sink.cancelled()) {
      reason = "client cancelled";
      break;
    }
    if (std::string end = (*session)->ShouldEnd(); !end.empty()) {
      reason = EndReasonOf(end);
      break;
    }
    if (absl::Now() - last_report >= kReportEvery) {
      last_report = absl::Now();
      v1::ProbeReport r = run.Report(last_report - start);
      r.set_message(run.Describe());
      calls_.fetch_add(run.total_calls() - last_calls, std::memory_order_relaxed);
      last_calls = run.total_calls();
      if (!sink.write(r)) reason = "client cancelled";
    }
  }
  // The final counts: read before detaching (nothing is lost by reading
  // while attached; calls after this read are not reported).
  v1::ProbeReport last = run.Report(absl::Now() - start);
  run.ForgetStacks();
  run.Detach();
  last.set_message(reason);
  last.set_ended(true);
  calls_.fetch_add(run.total_calls() - last_calls, std::memory_order_relaxed);
  threads_dropped_.fetch_add(run.loss().threads_dropped(), std::memory_order_relaxed);
  args_dropped_.fetch_add(run.loss().args_dropped(), std::memory_order_relaxed);
  stacks_dropped_.fetch_add(run.loss().stacks_dropped(), std::memory_order_relaxed);
  untimed_.fetch_add(run.untimed(), std::memory_order_relaxed);
  (*session)->SetEndReason(absl::StrCat(reason, ", ", run.total_calls(), " calls"));
  if (reason != "client cancelled") sink.write(last);
  return absl::OkStatus();
}

}  // namespace vigil
