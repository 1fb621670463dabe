#include "agent/top/top_join.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "agent/store/request_fields.h"
#include "common/regex.h"

namespace vigil {
namespace {

// The measure a sort compares, larger first.
double Measure(const v1::TopRow& r, v1::TopSort sort) {
  switch (sort) {
    case v1::TOP_SORT_RSS:
      return static_cast<double>(r.rss_bytes());
    case v1::TOP_SORT_GROWTH:
      return r.rss_growth_bytes_per_s();
    case v1::TOP_SORT_SYSCALLS:
      return r.syscalls_per_s();
    case v1::TOP_SORT_ERRORS:
      return r.errors_per_s();
    case v1::TOP_SORT_SYSCALL_TIME:
      return r.syscall_time_pct();
    case v1::TOP_SORT_DROPS:
      return r.udp_drops_per_s();
    default:
      // cpu_ns, not cpu_pct: exact integers compare without rounding.
      return static_cast<double>(r.cpu_ns());
  }
}

bool HasAlert(const v1::TopRow& r, v1::AlertKind k) {
  return std::find(r.alerts().begin(), r.alerts().end(), k) != r.alerts().end();
}

void AddAlert(v1::TopRow* r, v1::AlertKind k) {
  if (!HasAlert(*r, k)) r->add_alerts(k);
}

double Pct(uint64_t ns, double seconds) {
  return seconds > 0 ? static_cast<double>(ns) / (seconds * 1e9) * 100.0 : 0.0;
}

}  // namespace

absl::StatusOr<TopQuery> ValidateTopRequest(const v1::TopRequest& req) {
  TopQuery q;
  q.pid = req.pid();
  if (req.top() > kTopMaxRows) {
    return absl::InvalidArgumentError(absl::StrCat("top ", req.top(), " is above ", kTopMaxRows));
  }
  q.top = req.top() == 0 ? kTopDefaultRows : req.top();
  absl::StatusOr<v1::TopSort> sort =
      EnumField(req.sort(), v1::TopSort_IsValid, v1::TOP_SORT_CPU, "sort");
  if (!sort.ok()) return sort.status();
  q.sort = *sort;
  q.threads = req.threads();
  if (!req.comm_regex().empty()) {
    absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(req.comm_regex(), "comm_regex");
    if (!re.ok()) return re.status();
    q.comm = *std::move(re);
  }
  return q;
}

void SortTopRows(v1::TopSort sort, google::protobuf::RepeatedPtrField<v1::TopRow>* rows) {
  std::stable_sort(rows->begin(), rows->end(), [sort](const v1::TopRow& a, const v1::TopRow& b) {
    if (sort == v1::TOP_SORT_COMM && a.comm() != b.comm()) return a.comm() < b.comm();
    if (sort != v1::TOP_SORT_PID && sort != v1::TOP_SORT_COMM) {
      const double ma = Measure(a, sort), mb = Measure(b, sort);
      if (ma != mb) return ma > mb;
    }
    if (a.pid() != b.pid()) return a.pid() < b.pid();
    return a.tid() < b.tid();
  });
}

v1::TopResponse JoinTop(const TopInputs& in, const TopQuery& q) {
  v1::TopResponse resp;
  absl::flat_hash_map<uint32_t, v1::TopRow> procs;    // by pid
  absl::flat_hash_map<uint32_t, v1::TopRow> threads;  // by tid
  auto proc = [&](uint32_t pid) -> v1::TopRow& {
    v1::TopRow& r = procs[pid];
    r.set_pid(pid);
    return r;
  };
  auto thread = [&](uint32_t pid, uint32_t tid) -> v1::TopRow& {
    v1::TopRow& r = threads[tid];
    r.set_pid(pid);
    r.set_tid(tid);
    return r;
  };

  // CPU: exact, or estimated from the profiler's samples.
  v1::CpuSourceKind source = v1::CPU_SOURCE_NONE;
  if (in.cpu != nullptr) {
    source = in.cpu->from_proc ? v1::CPU_SOURCE_PROC : v1::CPU_SOURCE_EXACT;
    const double secs = in.cpu->covered.Seconds();
    for (const auto& [pid, p] : in.cpu->procs) {
      v1::TopRow& r = proc(pid);
      r.set_comm(p.comm);
      r.set_cpu_ns(p.cpu_ns);
      r.set_cpu_pct(Pct(p.cpu_ns, secs));
      r.set_threads_count(p.threads);
      r.set_kernel(p.kthread);
    }
    for (const auto& [tid, t] : in.cpu->threads) {
      v1::TopRow& r = thread(t.tgid, tid);
      r.set_comm(t.comm);
      r.set_cpu_ns(t.cpu_ns);
      r.set_cpu_pct(Pct(t.cpu_ns, secs));
    }
    in.cpu->covered.ToProto(resp.mutable_covered());
    v1::TopHeader* h = resp.mutable_header();
    h->set_host_cpus(in.cpu->host_cpus);
    if (in.cpu->host_total_ns > 0) {
      h->set_host_cpu_pct(static_cast<double>(in.cpu->host_busy_ns) /
                          static_cast<double>(in.cpu->host_total_ns) * 100.0);
    }
  } else if (in.profile != nullptr && in.profile->sample_hz() > 0) {
    source = v1::CPU_SOURCE_PROFILE_ESTIMATE;
    const double secs = in.profile->covered().intervals() > 0
                            ? static_cast<double>(in.profile->covered().end_unix_ns() -
                                                  in.profile->covered().start_unix_ns()) /
                                  1e9
                            : 0.0;
    const uint64_t ns_per_sample = 1000000000ull / in.profile->sample_hz();
    for (const v1::ProfileStack& s : in.profile->stacks()) {
      const uint64_t ns = s.samples() * ns_per_sample;
      v1::TopRow& p = proc(s.pid());
      if (p.comm().empty()) p.set_comm(s.process_comm());
      p.set_cpu_ns(p.cpu_ns() + ns);
      p.set_cpu_pct(Pct(p.cpu_ns(), secs));
      v1::TopRow& t = thread(s.pid(), s.tid());
      t.set_comm(s.comm());
      t.set_cpu_ns(t.cpu_ns() + ns);
      t.set_cpu_pct(Pct(t.cpu_ns(), secs));
    }
    *resp.mutable_covered() = in.profile->covered();
  }
  resp.set_cpu_source(source);

  if (in.memory != nullptr) {
    for (const v1::ProcessMemory& m : in.memory->processes()) {
      v1::TopRow& r = proc(m.pid());
      if (r.comm().empty()) r.set_comm(m.comm());
      r.set_rss_bytes(m.rss_bytes());
      r.set_rss_growth_bytes_per_s(m.growth_bytes_per_s());
    }
    resp.mutable_header()->set_host_memory_total_bytes(in.memory->host_total_bytes());
    resp.mutable_header()->set_host_memory_available_bytes(in.memory->host_available_bytes());
  }

  if (in.syscalls != nullptr) {
    const v1::CoveredRange& c = in.syscalls->covered();
    const double secs =
        c.intervals() > 0 ? static_cast<double>(c.end_unix_ns() - c.start_unix_ns()) / 1e9 : 0.0;
    if (secs > 0) {
      for (const v1::ThreadSyscalls& s : in.syscalls->threads()) {
        v1::TopRow& t = thread(s.pid(), s.tid());
        if (t.comm().empty()) t.set_comm(s.comm());
        t.set_syscalls_per_s(static_cast<double>(s.total_calls()) / secs);
        t.set_errors_per_s(static_cast<double>(s.total_errors()) / secs);
        t.set_syscall_time_pct(Pct(s.total_ns(), secs));
        v1::TopRow& p = proc(s.pid());
        if (p.comm().empty()) p.set_comm(s.process_comm());
        p.set_syscalls_per_s(p.syscalls_per_s() + t.syscalls_per_s());
        p.set_errors_per_s(p.errors_per_s() + t.errors_per_s());
        p.set_syscall_time_pct(p.syscall_time_pct() + t.syscall_time_pct());
      }
    }
  }

  if (in.drops != nullptr) {
    for (const v1::UdpDrop& d : in.drops->drops()) {
      if (d.pid() == 0) continue;  // dropped before a socket, or no owner seen
      v1::TopRow& p = proc(d.pid());
      if (p.comm().empty()) p.set_comm(d.comm());
      p.set_udp_drops_per_s(p.udp_drops_per_s() + d.rate_per_s());
    }
  }

  if (in.alerts != nullptr) {
    for (const v1::SpinAlert& a : in.alerts->alerts()) {
      if (a.state() != v1::ALERT_STATE_FIRING) continue;
      if (a.kind() == v1::ALERT_KIND_MEMORY_GROWTH) {
        AddAlert(&proc(a.pid()), v1::ALERT_KIND_MEMORY_GROWTH);
      } else if (a.kind() == v1::ALERT_KIND_SPIN) {
        v1::TopRow& t = thread(a.pid(), a.tid());
        if (t.comm().empty()) t.set_comm(a.comm());
        AddAlert(&t, v1::ALERT_KIND_SPIN);
        v1::TopRow& p = proc(a.pid());
        if (p.comm().empty()) p.set_comm(a.process_comm());
        AddAlert(&p, v1::ALERT_KIND_SPIN);
      }
    }
  }

  // Header: the agent's own row, losses, what is missing.
  v1::TopHeader* h = resp.mutable_header();
  h->set_hostname(in.hostname);
  h->set_agent_pid(in.agent_pid);
  h->set_agent_rss_bytes(in.agent_rss_bytes);
  if (auto it = procs.find(in.agent_pid); it != procs.end()) {
    h->set_agent_cpu_pct(it->second.cpu_pct());
    if (it->second.rss_bytes() > 0) h->set_agent_rss_bytes(it->second.rss_bytes());
  }
  for (const v1::TopLoss& l : in.losses) {
    if (l.count() == 0) continue;
    *h->add_losses() = l;
    h->set_lost_total(h->lost_total() + l.count());
  }
  for (const auto& [columns, why] : in.unavailable) {
    v1::TopColumnsUnavailable* u = resp.add_unavailable();
    u->set_columns(columns);
    u->set_reason(why);
  }

  // Threads under their processes; a thread's process row exists even when
  // only the thread was seen (a process row's comm is its leader's).
  absl::flat_hash_map<uint32_t, std::vector<const v1::TopRow*>> by_pid;
  for (const auto& [tid, t] : threads) {
    v1::TopRow& p = proc(t.pid());
    if (p.comm().empty() && tid == t.pid()) p.set_comm(t.comm());
    by_pid[t.pid()].push_back(&t);
  }
  google::protobuf::RepeatedPtrField<v1::TopRow> rows;
  for (auto& [pid, p] : procs) {
    if (q.pid != 0 && pid != q.pid) continue;
    const std::vector<const v1::TopRow*>& ts = by_pid[pid];
    if (q.comm != nullptr) {
      bool match = RE2::PartialMatch(p.comm(), *q.comm);
      for (const v1::TopRow* t : ts) match = match || RE2::PartialMatch(t->comm(), *q.comm);
      if (!match) continue;
    }
    v1::TopRow* r = rows.Add();
    *r = std::move(p);
    if (source != v1::CPU_SOURCE_NONE) r->set_cpu_source(source);
    if (!q.threads) continue;
    for (const v1::TopRow* t : ts) {
      v1::TopRow* tr = r->add_threads();
      *tr = *t;
      if (source != v1::CPU_SOURCE_NONE) tr->set_cpu_source(source);
    }
    SortTopRows(q.sort, r->mutable_threads());
  }
  SortTopRows(q.sort, &rows);
  if (static_cast<uint32_t>(rows.size()) > q.top) {
    resp.set_rows_omitted(static_cast<uint32_t>(rows.size()) - q.top);
    rows.DeleteSubrange(static_cast<int>(q.top), rows.size() - static_cast<int>(q.top));
  }
  resp.mutable_processes()->Swap(&rows);
  return resp;
}

}  // namespace vigil
