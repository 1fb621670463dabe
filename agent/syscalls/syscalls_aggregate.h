// Pure logic for the syscalls capability: the compact per-interval record
// kept in the window store, request validation, and merging intervals into a
// SyscallsResponse. No BPF here, so it is unit-tested without privileges.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "agent/loss_counts.h"
#include "bpf/syscalls.h"
#include "re2/re2.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

// What the kernel side could not record, per interval or summed.
struct SyscallLossCounts : LossCounts<SyscallLossCounts> {
  uint64_t map_full = 0;
  uint64_t no_enter = 0;
  uint64_t storage_fail = 0;
  uint64_t nr_out_of_range = 0;
  // Entries deleted unread because draining the retired buffer failed.
  uint64_t drain_failed = 0;
  // Sampled latency: timed calls still in flight at a buffer swap whose
  // mark could not be carried into the new buffer (their exit came first,
  // or it was full), so they were counted untimed.
  uint64_t latency_lost = 0;

  static constexpr LossCause<Self> kCauses[] = {
      VIGIL_LOSS_CAUSE(map_full),     VIGIL_LOSS_CAUSE(storage_fail),
      VIGIL_LOSS_CAUSE(no_enter),     VIGIL_LOSS_CAUSE(nr_out_of_range),
      VIGIL_LOSS_CAUSE(drain_failed), VIGIL_LOSS_CAUSE(latency_lost)};
};

// One (thread, syscall) over one interval. The histogram is stored sparsely:
// the span of non-zero buckets [hist_first, hist_first + hist_len) lives in
// the interval's hist_pool at hist_offset.
struct SyscallRecord {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint16_t nr = 0;
  uint8_t hist_first = 0;
  uint8_t hist_len = 0;
  uint32_t hist_offset = 0;
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t total_ns = 0;
  uint64_t max_ns = 0;
  char comm[VIGIL_COMM_LEN] = {};
  char pcomm[VIGIL_COMM_LEN] = {};
};

// Everything the syscalls collector produced for one interval.
struct SyscallInterval {
  std::vector<SyscallRecord> records;
  std::vector<uint64_t> hist_pool;
  SyscallLossCounts loss;

  size_t RecordCount() const { return records.size(); }
  // Appends one drained kernel entry in compact form.
  void Append(const syscall_key& key, const syscall_stats& stats);
  // Folds the interval that followed into this one (the store's
  // coarsening): per (thread, syscall), calls, errors, time and histogram
  // buckets add up, max_ns is the larger, the newer names win; losses add
  // up. Exact: a merge over the result equals one over both.
  void MergeNewer(const SyscallInterval& newer);

 private:
  // Appends r with its dense histogram stored sparsely.
  void AppendRecord(SyscallRecord r, const uint64_t* hist);
};

// A validated SyscallsRequest (filters compiled).
struct SyscallQuery {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::unique_ptr<RE2> comm;
  uint32_t top = 20;
  v1::SyscallGroupBy group_by = v1::SYSCALL_GROUP_BY_THREAD;
  v1::SyscallSort sort = v1::SYSCALL_SORT_TIME;
  uint32_t top_syscalls = 0;  // 0: all
};

inline constexpr uint32_t kDefaultTop = 20;
inline constexpr uint32_t kMaxTop = 10000;

// INVALID_ARGUMENT naming the bad field, else the compiled query. The time
// range is checked by the caller, which knows the window.
absl::StatusOr<SyscallQuery> ValidateSyscallsRequest(const v1::SyscallsRequest& req);

// Merges intervals, then groups, ranks and cuts them into a response.
//
// Two passes, so a query's memory follows what it answers rather than the
// window: Add sums scalars (calls, errors, time) per (thread, syscall), and
// Finish ranks and cuts, then walks the same intervals again to sum latency
// histograms only for the rows that made the cut. With the histogram in
// every merged entry (288 bytes each), concurrent queries under load held
// tens of MB each and the agent's RSS swung by 50 MB (heaptrack under the
// load test); a scalar entry is 32 bytes.
class SyscallMerger {
 public:
  explicit SyscallMerger(const SyscallQuery& query) : query_(query) {}

  // The interval must stay alive and unchanged until Finish returns (a
  // temporary does not compile).
  void Add(const SyscallInterval& interval);
  void Add(SyscallInterval&&) = delete;
  // Fills threads, groups_omitted and loss (not covered).
  void Finish(v1::SyscallsResponse* out) const;

 private:
  struct Key {
    uint32_t tgid, tid;
    uint16_t nr;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.tgid, k.tid, k.nr);
    }
    bool operator==(const Key& o) const { return tgid == o.tgid && tid == o.tid && nr == o.nr; }
  };
  struct Agg {
    uint64_t calls = 0, errors = 0, total_ns = 0, max_ns = 0;
  };
  // A thread's name as of the newest interval it appears in. The kernel
  // side stamps the name when a (thread, syscall) entry is created, so one
  // interval can hold the inherited name and the one the thread set itself;
  // the thread's own (differing from its process's) wins.
  struct Names {
    uint64_t seq = 0;
    char comm[VIGIL_COMM_LEN] = {};
    char pcomm[VIGIL_COMM_LEN] = {};
  };

  bool Matches(const SyscallRecord& r) const;
  // The group a record counts toward under the query's grouping.
  std::pair<uint32_t, uint32_t> GroupKey(uint32_t tgid, uint32_t tid) const;

  const SyscallQuery& query_;
  std::vector<const SyscallInterval*> intervals_;
  absl::flat_hash_map<Key, Agg> merged_;
  absl::flat_hash_map<std::pair<uint32_t, uint32_t>, Names> names_;
  uint64_t seq_ = 0;
  SyscallLossCounts loss_;
};

}  // namespace vigil
