// Pure logic for the profiler: the per-interval record kept in the window
// store, request validation, and merging intervals into hot-function tables
// and exportable profiles. No BPF here, so it is unit-tested anywhere.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/profile/frame.h"
#include "bpf/profile.h"
#include "re2/re2.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

// Bytes one page fault stands for: one 4 KiB page (x86-64's base page). A
// transparent huge page fault maps 2 MiB and file fault-around up to 16
// pages, so this is a floor where those happen.
inline constexpr uint64_t kFaultBytes = 4096;

// Estimated bytes of newly touched memory behind `samples` page-fault
// samples taken every `period` faults.
inline uint64_t FaultBytes(uint64_t samples, uint32_t period) {
  return samples * period * kFaultBytes;
}

// What the profiler saw and could not record, per interval or summed.
struct ProfileLossCounts {
  uint64_t samples = 0;  // all CPU samples the kernel program saw
  uint64_t idle = 0;
  uint64_t fault_samples = 0;  // all page-fault samples the kernel program saw
  uint64_t fault_no_user = 0;  // ... of which in a task without user memory
  uint64_t map_calls = 0;      // mmap/munmap/brk calls at or over the threshold
  uint64_t brk_unknown = 0;    // brk() moves not recorded: old break unknown
  uint64_t map_full = 0;
  uint64_t kernel_collisions = 0;
  uint64_t stack_map_full = 0;
  uint64_t no_buffer = 0;
  // Entries deleted unread because draining the retired buffer failed.
  uint64_t drain_failed = 0;

  ProfileLossCounts& operator+=(const ProfileLossCounts& o);
  void ToProto(uint64_t store_dropped, v1::ProfileLoss* out) const;
};

// One thread's distinct stack over one interval. Its frames sit in the
// interval's frame pool at [first, first + kernel_frames + user_frames):
// kernel frames innermost first, then user frames innermost first. `first`
// indexes the interval's `pool`.
struct ProfileStackRecord {
  uint32_t tgid = 0;
  uint32_t tid = 0;
  uint32_t first = 0;
  uint16_t kernel_frames = 0;
  uint16_t user_frames = 0;
  bool truncated = false;
  uint8_t kind = PROFILE_KIND_CPU;  // enum profile_kind: what `samples` count
  uint64_t samples = 0;
  uint64_t bytes = 0;  // map kinds: the calls' bytes (samples counts calls)
  char comm[VIGIL_PROFILE_COMM_LEN] = {};
  char pcomm[VIGIL_PROFILE_COMM_LEN] = {};
};

struct ProfileInterval {
  std::vector<ProfileStackRecord> stacks;
  // Each record's frames, as indexes into `frames`: 4 bytes a frame instead
  // of a 16-byte shared pointer (the store holds millions of frames).
  std::vector<uint32_t> pool;
  // The interval's distinct frames.
  std::vector<FramePtr> frames;
  // For each element of `frames`, an index into `functions`: the interval's
  // distinct (name, module) pairs. Merging then compares strings once per
  // function per interval, not once per frame. Filled by Seal().
  std::vector<uint32_t> frame_fn;
  std::vector<FramePtr> functions;
  ProfileLossCounts loss;

  size_t RecordCount() const { return stacks.size(); }
  // Appends a stack; `kernel` and `user` are innermost first.
  void Append(const ProfileStackRecord& meta, const std::vector<FramePtr>& kernel,
              const std::vector<FramePtr>& user);
  // Builds frame_fn and functions and drops the building state; call after
  // the last Append, before storing.
  void Seal();
  bool sealed() const { return building_.empty() && frame_fn.size() == frames.size(); }

 private:
  uint32_t Intern(const FramePtr& f);
  absl::flat_hash_map<const Frame*, uint32_t> building_;
};

// What the profiler collects in one interval: CPU samples, whose interval
// also carries the loss counters, and memory records (page-fault samples and
// large map calls, told apart by kind).
struct ProfileIntervals {
  ProfileInterval cpu;
  ProfileInterval memory;
};

// The key a hot table groups frames by: the name (or module+0xoffset for an
// unnamed frame) and the module.
std::pair<std::string, std::string> FunctionKey(const Frame& f);

struct ProfileQuery {
  uint32_t pid = 0;
  uint32_t tid = 0;
  std::unique_ptr<RE2> comm;
  uint32_t top = 20;
  v1::FrameFilter frames = v1::FRAME_FILTER_ALL;
  // Only records of this kind (enum profile_kind).
  uint32_t kind = PROFILE_KIND_CPU;
  // Faults per page-fault sample (the agent's), for the byte figures of a
  // PROFILE_KIND_FAULT query.
  uint32_t fault_period = 0;
};

// The enum profile_kind a request's kind selects; INVALID_ARGUMENT for a
// value the proto does not define.
absl::StatusOr<uint32_t> ProfileKindOf(v1::ProfileKind kind);

// INVALID_ARGUMENT naming the bad field, else the compiled query.
absl::StatusOr<ProfileQuery> ValidateHotRequest(const v1::HotRequest& req);
absl::StatusOr<ProfileQuery> ValidateProfileRequest(const v1::ProfileRequest& req);

// Sums intervals into a hot-function table.
class HotMerger {
 public:
  // Finish reads names from the store's frames: under the store's lock.
  static constexpr bool kFinishUnderLock = true;
  explicit HotMerger(const ProfileQuery& q) : query_(q) {}
  void Add(const ProfileInterval& iv);
  // Fills functions, functions_omitted, samples, samples_without_frames,
  // truncated_samples and the kernel-side loss (not covered, not hz).
  void Finish(v1::HotResponse* out) const;

 private:
  struct Fn {
    FramePtr frame;       // a representative: name, module, kernel
    std::string display;  // module+0xoffset for an unnamed frame
  };
  // Kept apart from Fn, contiguous: the inner loop touches only these.
  struct Counts {
    uint64_t self = 0, total = 0;
    uint64_t last_sample_seq = 0;  // dedupes recursion within one stack
  };
  uint32_t FunctionIndex(const FramePtr& f);

  const ProfileQuery& query_;
  // Keys view strings owned by fns_ (a deque: elements never move), so a
  // lookup allocates nothing. by_ptr_ short-cuts frames seen before.
  absl::flat_hash_map<std::pair<absl::string_view, absl::string_view>, uint32_t> by_name_;
  absl::flat_hash_map<const Frame*, uint32_t> by_ptr_;
  std::vector<uint32_t> local_;     // interval function -> fns_ index
  std::vector<uint32_t> by_fn_id_;  // Frame::fn_id -> fns_ index
  std::deque<Fn> fns_;
  std::vector<Counts> counts_;  // parallel to fns_
  uint64_t seq_ = 0;
  uint64_t samples_ = 0, without_frames_ = 0, truncated_ = 0;
  ProfileLossCounts loss_;
};

// One frame table across intervals: each interval interns its own frames,
// so equal frames from different intervals are matched by value.
class FrameInterner {
 public:
  // Call before each interval's first Index().
  void BeginInterval(const ProfileInterval& iv) { local_.assign(iv.frames.size(), UINT32_MAX); }
  // The table index of iv.frames[i].
  uint32_t Index(const ProfileInterval& iv, uint32_t i);
  const std::vector<FramePtr>& frames() const { return frames_; }

 private:
  std::vector<uint32_t> local_;  // interval frame -> frames_ index
  absl::flat_hash_map<const Frame*, uint32_t> by_ptr_;
  absl::flat_hash_map<std::string, uint32_t> by_value_;
  std::vector<FramePtr> frames_;
};

// Sums intervals into distinct (thread, stack) records with a frame table.
class ProfileMerger {
 public:
  // Its frame table holds references of its own: Finish after the lock.
  static constexpr bool kFinishUnderLock = false;
  explicit ProfileMerger(const ProfileQuery& q) : query_(q) {}
  void Add(const ProfileInterval& iv);
  void Finish(v1::ProfileResponse* out) const;

 private:
  const ProfileQuery& query_;
  FrameInterner frames_;
  struct StackAgg {
    uint64_t samples = 0;
    bool truncated = false;
    std::string comm, pcomm;
  };
  // Key: tgid, tid, then frame ids.
  absl::flat_hash_map<std::vector<uint32_t>, StackAgg> stacks_;
  uint64_t samples_ = 0, truncated_ = 0;
  ProfileLossCounts loss_;
};

// Sums one process's large map-call records (the map kinds) by (call, user
// stack cut to max_frames innermost frames), for vigil memory --pid and
// growth alerts.
class MapCallMerger {
 public:
  MapCallMerger(uint32_t pid, size_t max_frames) : pid_(pid), max_frames_(max_frames) {}
  void Add(const ProfileInterval& iv);
  // The `top` stacks with the most bytes, and the totals.
  void Finish(size_t top, v1::LargeMapCalls* out) const;

 private:
  struct Agg {
    uint64_t calls = 0, bytes = 0;
    bool cut = false, truncated = false;
  };
  const uint32_t pid_;
  const size_t max_frames_;
  FrameInterner frames_;
  // Key: the kind, then frame indexes.
  absl::flat_hash_map<std::vector<uint32_t>, Agg> stacks_;
  uint64_t mapped_ = 0, unmapped_ = 0;
  uint64_t mapping_calls_ = 0, unmapping_calls_ = 0;
};

// Shared by both mergers: the record matches the query's pid/tid/comm.
bool MatchesProfileQuery(const ProfileQuery& q, const ProfileStackRecord& r);

}  // namespace vigil
