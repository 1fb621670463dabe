#include "agent/memory/memory_aggregate.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/store/request_fields.h"

namespace vigil {

void CapProcesses(std::vector<ProcMemSample>* procs, uint32_t max_processes,
                  MemoryLossCounts* loss) {
  if (procs->size() <= max_processes) return;
  std::nth_element(
      procs->begin(), procs->begin() + max_processes, procs->end(),
      [](const ProcMemSample& a, const ProcMemSample& b) { return a.rss_pages() > b.rss_pages(); });
  loss->processes_over_cap += procs->size() - max_processes;
  procs->resize(max_processes);
}

absl::StatusOr<MemoryQuery> ValidateMemoryRequest(const v1::MemoryRequest& req) {
  MemoryQuery q;
  q.pid = req.pid();
  absl::StatusOr<v1::MemorySort> sort =
      EnumField(req.sort(), v1::MemorySort_IsValid, v1::MEMORY_SORT_RSS, "sort");
  if (!sort.ok()) return sort.status();
  q.sort = *sort;
  if (req.top() > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("top ", req.top(), " is above 10000"));
  }
  if (req.top() != 0) q.top = req.top();
  // As every other query checks (found missing by tests/fuzz/requests_fuzz):
  // a negative bound resolved to a range in the future, and until before
  // since to an empty one, both answered as if they meant something.
  if (req.range().since_ago_ns() < 0 || req.range().until_ago_ns() < 0) {
    return absl::InvalidArgumentError("range: since_ago_ns and until_ago_ns must be >= 0");
  }
  if (req.range().since_ago_ns() != 0 && req.range().until_ago_ns() >= req.range().since_ago_ns()) {
    return absl::InvalidArgumentError("range: until must be more recent than since");
  }
  return q;
}

void FoldGrowingStacks(const v1::ProfileResponse& prof, size_t top, size_t max_frames,
                       v1::GrowingStacks* out) {
  struct Agg {
    uint64_t samples = 0, fault_bytes = 0;
    bool cut = false, truncated = false;
  };
  // Key: the kept frames' indexes into prof.frames.
  absl::flat_hash_map<std::vector<uint32_t>, Agg> stacks;
  std::vector<uint32_t> key;
  for (const v1::ProfileStack& s : prof.stacks()) {
    key.clear();
    bool cut = false;
    for (const uint32_t id : s.frame_ids()) {
      if (id >= static_cast<uint32_t>(prof.frames_size()) || prof.frames(id).kernel()) continue;
      if (key.size() == max_frames) {
        cut = true;
        break;
      }
      key.push_back(id);
    }
    Agg& a = stacks[key];
    a.samples += s.samples();
    a.fault_bytes += s.fault_bytes();
    a.cut = a.cut || cut;
    a.truncated = a.truncated || s.truncated();
  }
  using Entry = std::pair<const std::vector<uint32_t>, Agg>;
  std::vector<const Entry*> order;
  order.reserve(stacks.size());
  for (const Entry& e : stacks) order.push_back(&e);
  // Frame ids follow the merge's (time) order, so ties rank the same way
  // on every query of the same range.
  auto by_samples = [](const Entry* a, const Entry* b) {
    return a->second.samples != b->second.samples ? a->second.samples > b->second.samples
                                                  : a->first < b->first;
  };
  const size_t n = std::min(top, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(n), order.end(),
                    by_samples);
  out->set_samples(prof.samples());
  out->set_fault_bytes(prof.fault_bytes());
  out->set_fault_period(prof.fault_period());
  out->set_stacks_omitted(static_cast<uint32_t>(order.size() - n));
  for (size_t i = 0; i < n; ++i) {
    const Agg& a = order[i]->second;
    v1::GrowingStack* g = out->add_stacks();
    for (const uint32_t id : order[i]->first) *g->add_frames() = prof.frames(static_cast<int>(id));
    g->set_frames_cut(a.cut);
    g->set_samples(a.samples);
    g->set_fault_bytes(a.fault_bytes);
    g->set_share(prof.fault_bytes() > 0
                     ? static_cast<double>(a.fault_bytes) / static_cast<double>(prof.fault_bytes())
                     : 0);
    g->set_truncated(a.truncated);
  }
}

void MemoryMerger::Series::Add(double t, uint64_t bytes, absl::Time at) {
  if (fit.points() == 0) {
    first = bytes;
    first_at = at;
  }
  fit.Add(t, static_cast<double>(bytes));
  last = bytes;
  last_at = at;
  min = std::min(min, bytes);
  max = std::max(max, bytes);
}

double MemoryMerger::Series::Slope() const { return fit.Slope(); }

void MemoryMerger::Add(const MemoryInterval& iv, absl::Time end) {
  if (origin_ == absl::InfinitePast()) origin_ = end;
  const double t = absl::ToDoubleSeconds(end - origin_);
  for (const CgroupMemSample& c : iv.cgroups) {
    Cgroup& g = cgroups_[c.id];
    g.last = c;
    g.usage.Add(t, c.usage_bytes, end);
  }
  for (const ProcMemSample& s : iv.procs) {
    if (q_.pid != 0 && s.tgid != q_.pid) continue;
    Proc& p = procs_[{s.tgid, s.start_ns}];
    p.last = s;
    p.page_size = iv.page_size;
    const uint64_t rss = s.rss_pages() * iv.page_size;
    p.rss.Add(t, rss, end);
    if (q_.pid != 0) {
      v1::MemorySample* m = &timeline_.emplace_back();
      m->set_unix_ns(absl::ToUnixNanos(end));
      m->set_rss_bytes(rss);
      m->set_anon_bytes(uint64_t{s.anon} * iv.page_size);
      m->set_file_bytes(uint64_t{s.file} * iv.page_size);
      m->set_shmem_bytes(uint64_t{s.shmem} * iv.page_size);
      m->set_swap_bytes(uint64_t{s.swap} * iv.page_size);
    }
  }
  for (const OomKillRecord& o : iv.ooms) {
    if (q_.pid == 0 || o.victim_pid == q_.pid || o.trigger_pid == q_.pid) ooms_.push_back(o);
  }
  host_total_ = iv.host_total_bytes;
  host_available_ = iv.host_available_bytes;
  loss_ += iv.loss;
}

void MemoryMerger::Finish(v1::MemoryResponse* out) {
  std::vector<const Proc*> rows;
  rows.reserve(procs_.size());
  for (const auto& [key, p] : procs_) rows.push_back(&p);
  auto by_rss = [](const Proc* a, const Proc* b) {
    return a->rss.last != b->rss.last ? a->rss.last > b->rss.last : a->last.tgid < b->last.tgid;
  };
  auto by_growth = [](const Proc* a, const Proc* b) {
    const double x = a->rss.Slope(), y = b->rss.Slope();
    return x != y ? x > y : a->last.tgid < b->last.tgid;
  };
  if (q_.sort == v1::MEMORY_SORT_GROWTH) {
    std::sort(rows.begin(), rows.end(), by_growth);
  } else {
    std::sort(rows.begin(), rows.end(), by_rss);
  }
  if (rows.size() > q_.top) {
    out->set_rows_omitted(static_cast<uint32_t>(rows.size() - q_.top));
    rows.resize(q_.top);
  }
  for (const Proc* p : rows) {
    v1::ProcessMemory* m = out->add_processes();
    const ProcMemSample& s = p->last;
    m->set_pid(s.tgid);
    m->set_ppid(s.ppid);
    m->set_comm(std::string(s.comm, strnlen(s.comm, sizeof(s.comm))));
    m->set_rss_bytes(p->rss.last);
    m->set_anon_bytes(uint64_t{s.anon} * p->page_size);
    m->set_file_bytes(uint64_t{s.file} * p->page_size);
    m->set_shmem_bytes(uint64_t{s.shmem} * p->page_size);
    m->set_swap_bytes(uint64_t{s.swap} * p->page_size);
    m->set_growth_bytes_per_s(p->rss.Slope());
    m->set_rss_change_bytes(static_cast<int64_t>(p->rss.last) - static_cast<int64_t>(p->rss.first));
    m->set_rss_min_bytes(p->rss.min);
    m->set_rss_max_bytes(p->rss.max);
    m->set_first_seen_unix_ns(absl::ToUnixNanos(p->rss.first_at));
    m->set_last_seen_unix_ns(absl::ToUnixNanos(p->rss.last_at));
    m->set_samples(static_cast<uint32_t>(p->rss.fit.points()));
    auto g = cgroups_.find(s.cgroup_id);
    if (g != cgroups_.end()) m->set_cgroup(g->second.last.path);
  }
  std::vector<const Cgroup*> groups;
  for (const auto& [id, g] : cgroups_) groups.push_back(&g);
  std::sort(groups.begin(), groups.end(), [](const Cgroup* a, const Cgroup* b) {
    return a->usage.last != b->usage.last ? a->usage.last > b->usage.last
                                          : a->last.path < b->last.path;
  });
  for (const Cgroup* g : groups) {
    if (out->cgroups_size() >= static_cast<int>(q_.top)) break;
    v1::CgroupMemory* c = out->add_cgroups();
    c->set_path(g->last.path);
    c->set_id(g->last.id);
    c->set_usage_bytes(g->usage.last);
    c->set_limit_bytes(g->last.limit_bytes);
    c->set_swap_bytes(g->last.swap_bytes);
    c->set_growth_bytes_per_s(g->usage.Slope());
    c->set_processes(g->last.processes);
  }
  for (const OomKillRecord& o : ooms_) {
    v1::OomKill* k = out->add_oom_kills();
    k->set_unix_ns(absl::ToUnixNanos(o.at));
    k->set_victim_pid(o.victim_pid);
    k->set_victim_comm(o.victim_comm);
    k->set_victim_cgroup(o.victim_cgroup);
    k->set_victim_rss_bytes(o.victim_rss_bytes);
    k->set_victim_rss_at_kill(o.victim_rss_at_kill);
    k->set_trigger_pid(o.trigger_pid);
    k->set_trigger_comm(o.trigger_comm);
  }
  *out->mutable_timeline() = {timeline_.begin(), timeline_.end()};
  out->set_host_total_bytes(host_total_);
  out->set_host_available_bytes(host_available_);
  v1::MemoryLoss* l = out->mutable_loss();
  l->set_processes_over_cap(loss_.processes_over_cap);
  l->set_cgroups_over_cap(loss_.cgroups_over_cap);
  l->set_oom_ringbuf_full(loss_.oom_ringbuf_full);
  l->set_read_failed(loss_.read_failed);
}

}  // namespace vigil
