// Shared libbpf plumbing: ownership of kernel objects, log routing, and
// errno -> absl::Status with the object and operation named.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/unique_c.h"

namespace vigil {

// Skeletons own every program, map and link they create; destroy() detaches
// and closes them all. One owner, move-only.
template <typename Skel>
struct SkelDeleter {
  void operator()(Skel* s) const { Skel::destroy(s); }
};
template <typename Skel>
using SkelPtr = std::unique_ptr<Skel, SkelDeleter<Skel>>;

// libbpf prints to stderr by default. With verbose, everything goes to
// stderr; otherwise warnings are kept for error messages, but only while a
// LibbpfLogCapture on the printing thread is alive (others are dropped).
void ConfigureLibbpfLogging(bool verbose);

struct LibbpfLogSink;

// Captures the libbpf warnings printed on this thread while it lives (the
// last few lines), so that a capability's load error names that load's
// warnings only, never another capability's. Open one before a skeleton's
// open/load/attach:
//   LibbpfLogCapture libbpf_log;
//   if (int err = x_bpf::load(skel)) return libbpf_log.Annotate(ErrnoStatus(err, "loading x"));
// Captures nest: the innermost one on the thread gets the lines.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // This capture's warning lines so far, joined by "; " (may be empty).
  std::string Warnings() const;
  // s with " [libbpf: <Warnings()>]" appended to its message, if any.
  absl::Status Annotate(absl::Status s) const;

 private:
  std::unique_ptr<LibbpfLogSink> sink_;
};

// Maps an errno from a libbpf call to a Status naming what failed, e.g.
// ErrnoStatus(EPERM, "loading syscalls.bpf.o").
absl::Status ErrnoStatus(int err, absl::string_view what);

// Sums each of the first n entries of a BPF_MAP_TYPE_PERCPU_ARRAY of u64
// over every possible CPU (the loss counters every capability keeps).
// `what` names the map in errors, e.g. "syscalls: reading counters".
absl::StatusOr<std::vector<uint64_t>> SumPerCpuCounters(int map_fd, uint32_t n,
                                                        absl::string_view what);

// A program's counters array (bpf/<cap>.h *_CTR_*, which the kernel side
// only ever adds to), read once per interval into a capability's
// LossCounts T as the increase since the previous read. Each counter is
// named once, by its slot.
template <typename T>
class CounterDeltas {
 public:
  struct Slot {
    uint64_t T::*count;
    uint32_t index;  // its *_CTR_* slot, below size
  };
  // size: the array's length (*_CTR_MAX); what: names it in errors.
  CounterDeltas(uint32_t size, const char* what, std::initializer_list<Slot> slots)
      : size_(size), what_(what), slots_(slots), last_(size, 0) {}

  // Adds to *out each slot's increase since the last call (since the load,
  // the first time). On error *out and the last totals stay as they were.
  absl::Status ReadInto(int map_fd, T* out) {
    absl::StatusOr<std::vector<uint64_t>> now = SumPerCpuCounters(map_fd, size_, what_);
    if (!now.ok()) return now.status();
    for (const Slot& s : slots_) {
      if (s.index < size_) out->*s.count += (*now)[s.index] - last_[s.index];
    }
    last_ = *std::move(now);
    return absl::OkStatus();
  }
  // Every slot's total at the last read (the counters that are not losses).
  const std::vector<uint64_t>& totals() const { return last_; }

 private:
  uint32_t size_;
  const char* what_;
  std::vector<Slot> slots_;
  std::vector<uint64_t> last_;
};

// The agent's side of VIGIL_DOUBLE_BUFFERED_STATS (bpf/common.bpf.h).
class DoubleBuffer {
 public:
  // slot: the one-entry ARRAY_OF_MAPS programs read; a, b: the two hashes
  // (a is active at load). The maps belong to a skeleton that outlives this.
  DoubleBuffer(bpf_map* slot, bpf_map* a, bpf_map* b) : slot_(slot), bufs_{a, b} {}
  // Points the slot at the other hash and returns the retired hash's fd.
  // The map-in-map update returns only after an RCU grace period, so no
  // program is still writing the retired hash when the caller drains it.
  absl::StatusOr<int> Swap(absl::string_view what);
  // The fd of the hash programs write now.
  int active_fd() const;

 private:
  bpf_map* slot_;
  bpf_map* bufs_[2];
  int active_ = 0;
};

// Owns a bpf_link that is not a skeleton's (an iterator's): destroyed first.
using LinkPtr = UniqueC<bpf_link, bpf_link__destroy>;
using RingBufferPtr = UniqueC<ring_buffer, ring_buffer__free>;

// Reads one pass of a BPF iterator (iter/task, ...) whose program writes
// fixed-size records with bpf_seq_write: creates the pass from `link`, reads
// it to its end and calls each(record) for every whole record. A pass of
// more than max_records stops there (*cut is set; the rest is not read), so
// a runaway cannot hold the collection thread. `buf` is reused across calls.
absl::Status ReadIterRecords(bpf_link* link, size_t record_size, size_t max_records,
                             std::vector<char>* buf, absl::string_view what, bool* cut,
                             const std::function<void(const char* record)>& each);

// Kernel ids of the loaded programs among `progs`; programs not loaded (a
// variant this kernel lacks, an optional hook switched off) are skipped.
std::vector<uint32_t> LoadedProgramIds(std::initializer_list<const bpf_program*> progs);

// Deletes every entry left in a hash no program writes any more, one by
// one, and returns how many there were (at most max_entries are walked).
uint64_t DeleteRemaining(int map_fd, uint32_t key_size, uint32_t max_entries);

// Logs a failed drain (not fatal: the interval is kept, the loss counted).
void LogDrainFailure(const absl::Status& s, uint64_t lost);

// Drains a hash no program writes any more (a retired double buffer) with
// batched lookup-and-delete, calling emit(key, value) for each entry. If a
// batch fails partway, what was emitted stays emitted, the rest of the map
// is deleted (so the buffer starts its next turn empty) and counted in
// *lost, and the error comes back for the log: the interval is kept with
// its loss counted rather than dropped whole.
template <typename K, typename V, typename Emit>
absl::Status DrainHash(int fd, uint32_t max_entries, std::vector<K>* keys, std::vector<V>* values,
                       absl::string_view what, uint64_t* lost, Emit&& emit) {
  K batch{};
  bool first = true;
  // Every successful batch deletes at least one entry, so a map of
  // max_entries drains in at most that many calls; the bound keeps a batch
  // that makes no progress from spinning the collection loop.
  for (uint64_t calls = 0; calls <= max_entries; ++calls) {
    uint32_t count = static_cast<uint32_t>(keys->size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &batch, &batch,
                                                    keys->data(), values->data(), &count, &opts);
    const int saved = errno;
    first = false;
    for (uint32_t i = 0; i < count; ++i) emit((*keys)[i], (*values)[i]);
    if (err == 0 && count > 0) continue;
    if (err != 0 && saved == ENOENT) return absl::OkStatus();  // walked the whole map
    *lost += DeleteRemaining(fd, sizeof(K), max_entries);
    return ErrnoStatus(err != 0 ? saved : EAGAIN,
                       absl::StrCat(what, err != 0 ? "" : " (no progress)"));
  }
  *lost += DeleteRemaining(fd, sizeof(K), max_entries);
  return ErrnoStatus(EAGAIN, absl::StrCat(what, " (more batches than entries)"));
}

}  // namespace vigil
