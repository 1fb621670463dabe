#include "agent/syscalls/syscalls_aggregate.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/store/request_fields.h"
#include "agent/syscalls/syscall_table.h"
#include "common/regex.h"

namespace vigil {
namespace {

std::string CommString(const char (&c)[VIGIL_COMM_LEN]) {
  return std::string(c, strnlen(c, VIGIL_COMM_LEN));
}

// The ranking key for a sort order: bigger ranks first; ties fall back to
// the other measures, then to ids (ascending) in the callers.
std::tuple<uint64_t, uint64_t, uint64_t> RankKey(v1::SyscallSort sort, uint64_t total_ns,
                                                 uint64_t calls, uint64_t errors) {
  switch (sort) {
    case v1::SYSCALL_SORT_CALLS:
      return {calls, total_ns, errors};
    case v1::SYSCALL_SORT_ERRORS:
      return {errors, calls, total_ns};
    default:
      return {total_ns, calls, errors};
  }
}

struct Group {
  uint32_t pid = 0, tid = 0;
  std::string comm, pcomm;
  struct Stat {
    uint64_t calls = 0, errors = 0, total_ns = 0, max_ns = 0;
    // Index into the histograms of the rows that made the cut; -1 if cut.
    int hist = -1;
  };
  absl::flat_hash_map<uint16_t, Stat> by_nr;
  uint64_t total_ns = 0, total_calls = 0, total_errors = 0;
};

}  // namespace

void SyscallInterval::Append(const syscall_key& key, const syscall_stats& s) {
  SyscallRecord r;
  r.tgid = key.tgid;
  r.tid = key.tid;
  r.nr = static_cast<uint16_t>(key.nr);
  r.calls = s.calls;
  r.errors = s.errors;
  r.total_ns = s.total_ns;
  r.max_ns = s.max_ns;
  memcpy(r.comm, s.comm, VIGIL_COMM_LEN);
  memcpy(r.pcomm, s.pcomm, VIGIL_COMM_LEN);
  uint64_t hist[VIGIL_SYSCALL_HIST_BUCKETS];  // __u64 is not uint64_t's type
  std::copy(std::begin(s.hist), std::end(s.hist), hist);
  AppendRecord(r, hist);
}

void SyscallInterval::AppendRecord(SyscallRecord r, const uint64_t* hist) {
  int first = -1, last = -1;
  for (int i = 0; i < VIGIL_SYSCALL_HIST_BUCKETS; ++i) {
    if (hist[i] == 0) continue;
    if (first < 0) first = i;
    last = i;
  }
  r.hist_first = r.hist_len = 0;
  r.hist_offset = 0;
  if (first >= 0) {
    r.hist_first = static_cast<uint8_t>(first);
    r.hist_len = static_cast<uint8_t>(last - first + 1);
    r.hist_offset = static_cast<uint32_t>(hist_pool.size());
    hist_pool.insert(hist_pool.end(), hist + first, hist + last + 1);
  }
  records.push_back(r);
}

void SyscallInterval::MergeNewer(const SyscallInterval& newer) {
  struct Slot {
    SyscallRecord r;
    std::array<uint64_t, VIGIL_SYSCALL_HIST_BUCKETS> hist{};
  };
  std::vector<Slot> slots;
  slots.reserve(records.size() + newer.records.size());
  absl::flat_hash_map<std::tuple<uint32_t, uint32_t, uint16_t>, size_t> index;
  index.reserve(slots.capacity());
  // Older first, so the newer interval's names win.
  for (const SyscallInterval* from : {static_cast<const SyscallInterval*>(this), &newer}) {
    for (const SyscallRecord& r : from->records) {
      const auto [it, inserted] = index.try_emplace({r.tgid, r.tid, r.nr}, slots.size());
      if (inserted) {
        slots.push_back(Slot{r});
        slots.back().r.calls = slots.back().r.errors = slots.back().r.total_ns = 0;
        slots.back().r.max_ns = 0;
      }
      Slot& s = slots[it->second];
      s.r.calls += r.calls;
      s.r.errors += r.errors;
      s.r.total_ns += r.total_ns;
      s.r.max_ns = std::max(s.r.max_ns, r.max_ns);
      memcpy(s.r.comm, r.comm, VIGIL_COMM_LEN);
      memcpy(s.r.pcomm, r.pcomm, VIGIL_COMM_LEN);
      for (int i = 0; i < r.hist_len; ++i) {
        s.hist[r.hist_first + i] += from->hist_pool[r.hist_offset + i];
      }
    }
  }
  records.clear();
  hist_pool.clear();
  for (const Slot& s : slots) AppendRecord(s.r, s.hist.data());
  records.shrink_to_fit();
  hist_pool.shrink_to_fit();
  loss += newer.loss;
}

absl::StatusOr<SyscallQuery> ValidateSyscallsRequest(const v1::SyscallsRequest& req) {
  SyscallQuery q;
  q.pid = req.pid();
  q.tid = req.tid();
  if (req.top() > kMaxTop) {
    return absl::InvalidArgumentError(
        absl::StrCat("top ", req.top(), " is above the maximum ", kMaxTop));
  }
  q.top = req.top() == 0 ? kDefaultTop : req.top();
  if (!req.comm_regex().empty()) {
    absl::StatusOr<std::unique_ptr<RE2>> re = CompilePattern(req.comm_regex(), "comm_regex");
    if (!re.ok()) return re.status();
    q.comm = *std::move(re);
  }
  absl::StatusOr<v1::SyscallGroupBy> group_by = EnumField(
      req.group_by(), v1::SyscallGroupBy_IsValid, v1::SYSCALL_GROUP_BY_THREAD, "group_by");
  if (!group_by.ok()) return group_by.status();
  q.group_by = *group_by;
  absl::StatusOr<v1::SyscallSort> sort =
      EnumField(req.sort(), v1::SyscallSort_IsValid, v1::SYSCALL_SORT_TIME, "sort");
  if (!sort.ok()) return sort.status();
  q.sort = *sort;
  if (req.top_syscalls() > kMaxTop) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_syscalls ", req.top_syscalls(), " is above the maximum ", kMaxTop));
  }
  q.top_syscalls = req.top_syscalls();
  if (req.range().since_ago_ns() < 0 || req.range().until_ago_ns() < 0) {
    return absl::InvalidArgumentError("range: since_ago_ns and until_ago_ns must be >= 0");
  }
  if (req.range().since_ago_ns() != 0 && req.range().until_ago_ns() >= req.range().since_ago_ns()) {
    return absl::InvalidArgumentError(
        "range: until must be more recent than since (until_ago_ns < since_ago_ns)");
  }
  return q;
}

bool SyscallMerger::Matches(const SyscallRecord& r) const {
  if (query_.pid != 0 && r.tgid != query_.pid) return false;
  if (query_.tid != 0 && r.tid != query_.tid) return false;
  if (query_.comm != nullptr) {
    if (!RE2::PartialMatch(CommString(r.comm), *query_.comm) &&
        !RE2::PartialMatch(CommString(r.pcomm), *query_.comm)) {
      return false;
    }
  }
  return true;
}

void SyscallMerger::Add(const SyscallInterval& interval) {
  loss_ += interval.loss;
  intervals_.push_back(&interval);
  ++seq_;
  for (const SyscallRecord& r : interval.records) {
    if (!Matches(r)) continue;
    Agg& a = merged_[Key{r.tgid, r.tid, r.nr}];
    a.calls += r.calls;
    a.errors += r.errors;
    a.total_ns += r.total_ns;
    a.max_ns = std::max(a.max_ns, r.max_ns);
    // Intervals arrive oldest first.
    Names& n = names_[{r.tgid, r.tid}];
    const bool newer = n.seq < seq_;
    const bool own_name = memcmp(n.comm, n.pcomm, VIGIL_COMM_LEN) == 0 &&
                          memcmp(r.comm, r.pcomm, VIGIL_COMM_LEN) != 0;
    if (newer || own_name) {
      n.seq = seq_;
      memcpy(n.comm, r.comm, VIGIL_COMM_LEN);
      memcpy(n.pcomm, r.pcomm, VIGIL_COMM_LEN);
    }
  }
}

std::pair<uint32_t, uint32_t> SyscallMerger::GroupKey(uint32_t tgid, uint32_t tid) const {
  switch (query_.group_by) {
    case v1::SYSCALL_GROUP_BY_PROCESS:
      return {tgid, 0};
    case v1::SYSCALL_GROUP_BY_SYSCALL:
      return {0, 0};
    default:
      return {tgid, tid};
  }
}

void SyscallMerger::Finish(v1::SyscallsResponse* out) const {
  // Group key: (pid, tid) with the unused parts zeroed by the grouping.
  absl::flat_hash_map<std::pair<uint32_t, uint32_t>, Group> groups;
  for (const auto& [k, a] : merged_) {
    const std::pair<uint32_t, uint32_t> gk = GroupKey(k.tgid, k.tid);
    const Names& n = names_.at({k.tgid, k.tid});
    Group& g = groups[gk];
    g.pid = gk.first;
    g.tid = gk.second;
    switch (query_.group_by) {
      case v1::SYSCALL_GROUP_BY_PROCESS:
        g.comm = g.pcomm = CommString(n.pcomm);
        break;
      case v1::SYSCALL_GROUP_BY_SYSCALL:
        g.comm = "*";
        break;
      default:
        g.comm = CommString(n.comm);
        g.pcomm = CommString(n.pcomm);
        break;
    }
    Group::Stat& s = g.by_nr[k.nr];
    s.calls += a.calls;
    s.errors += a.errors;
    s.total_ns += a.total_ns;
    s.max_ns = std::max(s.max_ns, a.max_ns);
    g.total_ns += a.total_ns;
    g.total_calls += a.calls;
    g.total_errors += a.errors;
  }

  std::vector<const Group*> ranked;
  ranked.reserve(groups.size());
  for (const auto& [k, g] : groups) ranked.push_back(&g);
  const v1::SyscallSort sort = query_.sort;
  std::sort(ranked.begin(), ranked.end(), [sort](const Group* a, const Group* b) {
    // Compare u64s as u64s; never narrow to int.
    const auto ka = RankKey(sort, a->total_ns, a->total_calls, a->total_errors);
    const auto kb = RankKey(sort, b->total_ns, b->total_calls, b->total_errors);
    if (ka != kb) return ka > kb;
    return std::make_pair(a->pid, a->tid) < std::make_pair(b->pid, b->tid);
  });

  const bool cut_syscalls = query_.group_by == v1::SYSCALL_GROUP_BY_SYSCALL;
  uint32_t omitted = 0;
  if (!cut_syscalls && ranked.size() > query_.top) {
    omitted = static_cast<uint32_t>(ranked.size() - query_.top);
    ranked.resize(query_.top);
  }

  // The rows that made the cut, per group; then the second pass sums their
  // histograms (and only theirs) from the same intervals.
  using Row = std::pair<uint16_t, const Group::Stat*>;
  std::vector<std::vector<Row>> rows(ranked.size());
  int hists = 0;
  for (size_t gi = 0; gi < ranked.size(); ++gi) {
    const Group* g = ranked[gi];
    std::vector<Row>& stats = rows[gi];
    stats.reserve(g->by_nr.size());
    for (const auto& [nr, s] : g->by_nr) stats.emplace_back(nr, &s);
    std::sort(stats.begin(), stats.end(), [sort](const Row& a, const Row& b) {
      const auto ka = RankKey(sort, a.second->total_ns, a.second->calls, a.second->errors);
      const auto kb = RankKey(sort, b.second->total_ns, b.second->calls, b.second->errors);
      if (ka != kb) return ka > kb;
      return a.first < b.first;
    });
    if (cut_syscalls && stats.size() > query_.top) {
      omitted = static_cast<uint32_t>(stats.size() - query_.top);
      stats.resize(query_.top);
    } else if (!cut_syscalls && query_.top_syscalls > 0 && stats.size() > query_.top_syscalls) {
      stats.resize(query_.top_syscalls);
    }
    // by_nr is not touched again, so its values may be annotated in place.
    for (const Row& r : stats) const_cast<Group::Stat*>(r.second)->hist = hists++;
  }
  std::vector<std::array<uint64_t, VIGIL_SYSCALL_HIST_BUCKETS>> hist(hists);
  for (const SyscallInterval* iv : intervals_) {
    for (const SyscallRecord& r : iv->records) {
      if (r.hist_len == 0 || !Matches(r)) continue;
      auto g = groups.find(GroupKey(r.tgid, r.tid));
      if (g == groups.end()) continue;
      auto s = g->second.by_nr.find(r.nr);
      if (s == g->second.by_nr.end() || s->second.hist < 0) continue;
      std::array<uint64_t, VIGIL_SYSCALL_HIST_BUCKETS>& h = hist[s->second.hist];
      for (int i = 0; i < r.hist_len; ++i) h[r.hist_first + i] += iv->hist_pool[r.hist_offset + i];
    }
  }

  for (size_t gi = 0; gi < ranked.size(); ++gi) {
    const Group* g = ranked[gi];
    v1::ThreadSyscalls* t = out->add_threads();
    t->set_pid(g->pid);
    t->set_tid(g->tid);
    t->set_comm(g->comm);
    t->set_process_comm(g->pcomm);
    for (const auto& [nr, s] : rows[gi]) {
      v1::SyscallStat* o = t->add_syscalls();
      o->set_name(SyscallName(nr));
      o->set_nr(nr);
      o->set_calls(s->calls);
      o->set_errors(s->errors);
      o->set_total_ns(s->total_ns);
      o->set_max_ns(s->max_ns);
      const std::array<uint64_t, VIGIL_SYSCALL_HIST_BUCKETS>& h = hist[s->hist];
      int last = VIGIL_SYSCALL_HIST_BUCKETS - 1;
      while (last >= 0 && h[last] == 0) --last;
      for (int i = 0; i <= last; ++i) o->add_latency_log2_hist(h[i]);
    }
    t->set_total_calls(g->total_calls);
    t->set_total_errors(g->total_errors);
    t->set_total_ns(g->total_ns);
  }
  out->set_groups_omitted(omitted);
  v1::SyscallLoss* l = out->mutable_loss();
  l->set_map_full(loss_.map_full);
  l->set_no_enter(loss_.no_enter);
  l->set_latency_lost(loss_.latency_lost);
  l->set_storage_fail(loss_.storage_fail);
  l->set_nr_out_of_range(loss_.nr_out_of_range);
}

}  // namespace vigil
