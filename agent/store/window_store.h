// The time-window store as a type: one bounded IntervalWindow per
// capability table, behind one lock, with two faces.
//
// - StoreWriter: only the collection loop holds one. Capabilities append
//   their interval through it in Collect.
// - StoreView: what gRPC handlers, the metrics exporter and detectors get.
//   It reads tables and nothing else: no collector, no BPF map is reachable
//   from it, and the compiler says so (it has no way to write).
//
// A capability registers its table once, at start-up, and keeps the typed
// handle; a handle is only a key, useless without a view or a writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/store/shared_answers.h"
#include "agent/store/window.h"
#include "vigil/v1/vigil.pb.h"

namespace vigil {

class WindowStore;
class LockedStore;
class StoreView;

// A registered table of per-interval T (see IntervalWindow for T's needs).
template <typename T>
class Table {
 public:
  Table() = default;

 private:
  friend class WindowStore;
  friend class StoreWriter;
  friend class StoreView;
  friend class LockedStore;
  explicit Table(IntervalWindow<T>* w) : window_(w) {}
  IntervalWindow<T>* window_ = nullptr;
};

// What a merge covered: the span of the intervals it read and their count.
struct Coverage {
  absl::Time first = absl::InfiniteFuture();
  absl::Time last = absl::InfinitePast();
  uint32_t intervals = 0;

  void Add(absl::Time start, absl::Time end) {
    first = std::min(first, start);
    last = std::max(last, end);
    ++intervals;
  }
  double Seconds() const { return intervals > 0 ? absl::ToDoubleSeconds(last - first) : 0.0; }
  void ToProto(v1::CoveredRange* out) const {
    if (intervals > 0) {
      out->set_start_unix_ns(absl::ToUnixNanos(first));
      out->set_end_unix_ns(absl::ToUnixNanos(last));
    }
    out->set_intervals(intervals);
  }
};

// The store as seen from inside StoreView::WithLock: reads without taking
// the lock again.
class LockedStore {
 public:
  template <typename T, typename Fn>
  Coverage ForEach(Table<T> table, absl::Time from, absl::Time to, Fn&& fn) const {
    Coverage c;
    table.window_->ForEachOverlapping(from, to, [&](const auto& iv) {
      c.Add(iv.start, iv.end);
      fn(iv);
    });
    return c;
  }

 private:
  friend class StoreView;
  LockedStore() = default;
};

struct StoreConfig {
  // How much history every table keeps.
  absl::Duration window = absl::Minutes(10);
  // Merges allocate in proportion to what they read; at most this many run
  // at once and the rest wait their turn (until their deadline), so a burst
  // of clients cannot balloon the agent's memory.
  int max_concurrent_merges = 4;
  // Identical queries over the same intervals share one merge (see
  // SharedAnswers); max_bytes 0 turns that off.
  SharedAnswers::Config share;
};

// How a query waits for a merge slot: until its deadline, or until the
// client goes away (cancelled() turns true; polled every 50 ms).
struct QueryContext {
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;
};

// Read-only access: the only face handlers, exporters and detectors get.
class StoreView {
 public:
  explicit StoreView(const WindowStore* store) : store_(store) {}

  // Calls fn(const IntervalWindow<T>::Interval&) for each interval of
  // `table` overlapping [from, to], oldest first, under the store's reader
  // lock; returns what it covered. fn must not call back into the store.
  template <typename T, typename Fn>
  Coverage ForEach(Table<T> table, absl::Time from, absl::Time to, Fn&& fn) const {
    return ForEach(table, from, to, std::forward<Fn>(fn), [](const Coverage&) {});
  }
  // The same, then calls then(const Coverage&) with what it covered under
  // the same lock: for merges whose result still points into the
  // intervals.
  template <typename T, typename Fn, typename Then>
  Coverage ForEach(Table<T> table, absl::Time from, absl::Time to, Fn&& fn, Then&& then) const;

  // Tables read under one reader lock, for a reader that needs two
  // tables at the same instant.
  using Locked = LockedStore;
  // Calls fn(const Locked&) under the reader lock.
  template <typename Fn>
  auto WithLock(Fn&& fn) const;

  // Calls fn(const IntervalWindow<T>&) under the reader lock: sizes,
  // evictions and the like.
  template <typename T, typename Fn>
  auto Inspect(Table<T> table, Fn&& fn) const;

  // Records the table's record cap evicted, since start.
  template <typename T>
  uint64_t DroppedRecords(Table<T> table) const {
    return Inspect(table, [](const IntervalWindow<T>& w) { return w.dropped_records(); });
  }

  // Range resolution against the window: INVALID_ARGUMENT if a bound lies
  // outside it. since_ago_ns 0 means the whole window.
  absl::StatusOr<std::pair<absl::Time, absl::Time>> Resolve(const v1::TimeRange& range,
                                                            absl::Time now) const;

  // Holds one of the bounded merge slots for its lifetime.
  class MergeSlot {
   public:
    MergeSlot(MergeSlot&& o) noexcept : store_(std::exchange(o.store_, nullptr)) {}
    MergeSlot(const MergeSlot&) = delete;
    MergeSlot& operator=(const MergeSlot&) = delete;
    ~MergeSlot();

   private:
    friend class StoreView;
    explicit MergeSlot(const WindowStore* s) : store_(s) {}
    const WindowStore* store_;
  };
  // Waits for a merge slot; DEADLINE_EXCEEDED or CANCELLED if the client's
  // deadline passes or it goes away first.
  absl::StatusOr<MergeSlot> AcquireMergeSlot(const QueryContext& ctx) const;

  // What every query does before it merges: resolve its range, then hold a
  // merge slot for as long as the Merge lives.
  struct Merge {
    absl::Time from, to;
    MergeSlot slot;
  };
  absl::StatusOr<Merge> BeginMerge(const v1::TimeRange& range, const QueryContext& ctx) const;

  // One table's query, the shape the capabilities' queries share: waits
  // for a merge slot for `range`, calls add(interval) for each interval of
  // `table` in it and then finish(const Coverage&) under the same reader
  // lock (a merger's result may still point into the intervals), and fills
  // resp's `covered` and `loss.store_dropped`. Returns the merge, whose
  // slot the caller holds while it reads more of the range (memory --pid
  // reads the profiler's tables), or BeginMerge's error.
  template <typename T, typename Add, typename Finish, typename Resp>
  absl::StatusOr<Merge> MergeTable(const v1::TimeRange& range, const QueryContext& ctx,
                                   Table<T> table, Add&& add, Finish&& finish, Resp* resp) const {
    absl::StatusOr<Merge> m = BeginMerge(range, ctx);
    if (!m.ok()) return m.status();
    const Coverage covered = ForEach(table, m->from, m->to, add, finish);
    resp->mutable_loss()->set_store_dropped(DroppedRecords(table));
    covered.ToProto(resp->mutable_covered());
    return m;
  }

  // merge()'s answer, or an identical query's (see SharedAnswers): `query`
  // names the request (its method and bytes, range included); the store
  // adds which intervals of every table that range covers now. A range
  // the window cannot answer is left to merge() to refuse.
  template <typename Resp>
  absl::StatusOr<Resp> Shared(const std::string& query, const v1::TimeRange& range,
                              const QueryContext& ctx,
                              absl::FunctionRef<absl::StatusOr<Resp>()> merge) const;
  SharedAnswers::Stats shared_stats() const;

 private:
  // What a merge over `range` now would read: every table's added() and
  // overlap span, with the store's generation (intervals added over all
  // tables). Empty if the range does not resolve.
  std::string StateKey(const v1::TimeRange& range, uint64_t* generation) const;
  uint64_t generation() const;

  const WindowStore* store_;
};

// The collection loop's face: appends intervals.
class StoreWriter {
 public:
  explicit StoreWriter(WindowStore* store) : store_(store) {}
  template <typename T>
  void Add(Table<T> table, absl::Time start, absl::Time end, T data);

 private:
  // Runs fn under the writer lock, then retires every shared answer.
  template <typename Fn>
  void Change(Fn&& fn);
  WindowStore* store_;
};

class WindowStore {
 public:
  explicit WindowStore(const StoreConfig& config) : config_(config) {}
  WindowStore(const WindowStore&) = delete;
  WindowStore& operator=(const WindowStore&) = delete;

  // At start-up, before the collection loop runs: a new table holding at
  // most max_records records (the memory bound; oldest intervals are
  // coarsened if the table says how, else evicted first and counted).
  template <typename T>
  Table<T> Register(size_t max_records, Coarsening<T> coarsening = {}) {
    auto holder = std::make_unique<Holder<T>>(config_.window, max_records, std::move(coarsening));
    IntervalWindow<T>* w = &holder->window;
    absl::MutexLock lock(&mu_);
    tables_.push_back(std::move(holder));
    return Table<T>(w);
  }

  StoreView view() const { return StoreView(this); }
  StoreWriter writer() { return StoreWriter(this); }

 private:
  friend class StoreView;
  friend class StoreWriter;
  struct HolderBase {
    virtual ~HolderBase() = default;
    // Appends what a merge over [from, to] would read from this table.
    virtual void AppendState(absl::Time from, absl::Time to, std::string* key) const = 0;
  };
  template <typename T>
  struct Holder : HolderBase {
    Holder(absl::Duration retention, size_t max_records, Coarsening<T> coarsening)
        : window(retention, max_records, std::move(coarsening)) {}
    void AppendState(absl::Time from, absl::Time to, std::string* key) const override {
      const typename IntervalWindow<T>::Span s = window.OverlapSpan(from, to);
      const uint64_t parts[] = {window.added(), s.first, s.last, s.count};
      key->append(reinterpret_cast<const char*>(parts), sizeof(parts));
    }
    IntervalWindow<T> window;
  };
  const StoreConfig config_;
  // Guards every table's contents (the windows live in tables_' holders).
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<HolderBase>> tables_ ABSL_GUARDED_BY(mu_);
  // Intervals added over all tables.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  mutable SharedAnswers shared_{config_.share};
  mutable absl::Mutex slots_mu_;
  mutable int merges_running_ ABSL_GUARDED_BY(slots_mu_) = 0;
};

template <typename Fn>
auto StoreView::WithLock(Fn&& fn) const {
  absl::ReaderMutexLock lock(&store_->mu_);
  return fn(Locked());
}

template <typename T, typename Fn, typename Then>
Coverage StoreView::ForEach(Table<T> table, absl::Time from, absl::Time to, Fn&& fn,
                            Then&& then) const {
  return WithLock([&](const Locked& l) {
    const Coverage c = l.ForEach(table, from, to, fn);
    then(c);
    return c;
  });
}

template <typename T, typename Fn>
auto StoreView::Inspect(Table<T> table, Fn&& fn) const {
  absl::ReaderMutexLock lock(&store_->mu_);
  return fn(static_cast<const IntervalWindow<T>&>(*table.window_));
}

template <typename T>
void StoreWriter::Add(Table<T> table, absl::Time start, absl::Time end, T data) {
  IntervalWindow<T>* w = table.window_;
  Change([&] { w->Append(start, end, std::move(data)); });
  // Over the cap, merges run outside the lock, so readers of every table
  // wait only for the swaps. Only this table's capability, from the
  // collection loop, changes its window: reading it unlocked here is safe.
  w->TrimToCap([&](auto&& change) { Change(change); });
}

template <typename Fn>
void StoreWriter::Change(Fn&& fn) {
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&store_->mu_);
    fn();
    generation = ++store_->generation_;
  }
  store_->shared_.Invalidate(generation);
}

template <typename Resp>
absl::StatusOr<Resp> StoreView::Shared(const std::string& query, const v1::TimeRange& range,
                                       const QueryContext& ctx,
                                       absl::FunctionRef<absl::StatusOr<Resp>()> merge) const {
  uint64_t generation = 0;
  const std::string state = StateKey(range, &generation);
  if (state.empty()) return merge();
  return store_->shared_.Get<Resp>(
      absl::StrCat(query, state), generation, ctx, [this] { return this->generation(); }, merge);
}

}  // namespace vigil
