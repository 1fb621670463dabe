// Identical queries over the same stored intervals share one merge.
//
// A merge's answer depends only on the request and on which intervals of
// each table it reads; the store changes once per collection interval. So
// when 50 dashboards, a fleet fan-out or `vigil top` refreshes ask the same
// thing within one interval, the first caller merges and every other one
// gets a copy of its answer: callers that arrive while it merges wait for
// it (within their own deadline), callers that arrive after it read the
// kept answer until the store next changes. Without this, 50 clients each
// merging a full window on two cores queue for seconds.
//
// Bounded: kept answers are dropped as soon as the store changes (they
// could not be hit again), and in any case past max_bytes (their in-memory
// size) or max_entries; an answer too large to keep is still shared with
// the callers already waiting for it. Only answers are shared: a failed
// merge (its caller's deadline, say) is not handed to the others, who then
// merge for themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace vigil {

struct QueryContext;

class SharedAnswers {
 public:
  struct Config {
    // Kept answers' in-memory size at most (0: share nothing, every caller
    // merges for itself).
    size_t max_bytes = size_t{16} << 20;
    // Distinct queries kept or in flight at most.
    size_t max_entries = 256;
  };
  // How callers were answered, since start.
  struct Stats {
    uint64_t merged = 0;    // merged for themselves
    uint64_t joined = 0;    // waited for an identical merge in flight
    uint64_t stored = 0;    // read a kept answer
    uint64_t not_kept = 0;  // answers over max_bytes or max_entries
    size_t bytes = 0;       // kept answers' size now
    size_t entries = 0;     // kept or in flight now
  };

  explicit SharedAnswers(const Config& config) : config_(config) {}

  // The answer to `key` at store generation `generation`: a kept one, the
  // one an identical merge in flight returns, or merge()'s own. key must
  // name everything the answer depends on (the request and the intervals
  // it covers); generation is the store's count of appended intervals, so
  // an answer is kept only while the store is as it was. `now_generation`
  // tells the generation when the merge ends. Waiting honours ctx.
  template <typename Resp>
  absl::StatusOr<Resp> Get(const std::string& key, uint64_t generation, const QueryContext& ctx,
                           absl::FunctionRef<uint64_t()> now_generation,
                           absl::FunctionRef<absl::StatusOr<Resp>()> merge);

  // The store appended an interval: answers from before cannot be hit.
  void Invalidate(uint64_t generation);

  Stats stats() const;

 private:
  struct Flight {
    bool done = false;  // answer set, or the merge failed (answer null)
    std::shared_ptr<const google::protobuf::Message> answer;
    uint64_t generation = 0;
    size_t bytes = 0;  // counted in bytes_ once kept
  };
  // Waits for `key`'s merge, or registers the caller as the one to merge
  // (returns null). A returned answer is the one to copy.
  absl::StatusOr<std::shared_ptr<const google::protobuf::Message>> JoinOrLead(
      const std::string& key, uint64_t generation, const QueryContext& ctx, bool* lead);
  // The leader's merge ended: answer (null if it failed) to the waiters,
  // and kept if the store is still at `generation` and it fits.
  void Finish(const std::string& key, std::shared_ptr<const google::protobuf::Message> answer,
              bool keep);
  void CountUnshared();
  void DropLocked(absl::flat_hash_map<std::string, std::shared_ptr<Flight>>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Config config_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

template <typename Resp>
absl::StatusOr<Resp> SharedAnswers::Get(const std::string& key, uint64_t generation,
                                        const QueryContext& ctx,
                                        absl::FunctionRef<uint64_t()> now_generation,
                                        absl::FunctionRef<absl::StatusOr<Resp>()> merge) {
  if (config_.max_bytes == 0) {
    CountUnshared();
    return merge();
  }
  bool lead = false;
  absl::StatusOr<std::shared_ptr<const google::protobuf::Message>> got =
      JoinOrLead(key, generation, ctx, &lead);
  if (!got.ok()) return got.status();
  if (!lead) {
    if (*got != nullptr) return static_cast<const Resp&>(**got);
    return merge();  // too many distinct queries to track: not shared
  }
  absl::StatusOr<Resp> r = merge();
  if (!r.ok()) {
    Finish(key, nullptr, false);
    return r;
  }
  Finish(key, std::make_shared<const Resp>(*r), now_generation() == generation);
  return r;
}

}  // namespace vigil
