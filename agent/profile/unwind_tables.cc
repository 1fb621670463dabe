#include "agent/profile/unwind_tables.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/profile/proc_maps.h"
#include "common/read_file.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

// A maps file larger than this is read only this far (a process with
// ~100k mappings); its later executable mappings are not loaded.
constexpr size_t kMaxMapsBytes = 8 << 20;
constexpr size_t kMaxWantedPerDrain = 4096;
constexpr size_t kMaxPending = 4096;
constexpr absl::Duration kPruneEvery = absl::Seconds(5);

// Copies n rows into the unwind_rows map from row `first` through a
// mapping of only the pages they land on, unmapped at once. The map is
// kernel memory either way (allocated whole when it was created); kept
// mapped, all of it (16 MiB at the default 2 Mi rows) was counted in
// vigild's RSS, the largest part of an idle agent's. The rows are written
// before their extent is published, so no program reads them half written.
bool WriteRows(int fd, uint32_t first, const unwind_row* rows, uint32_t n) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t begin = static_cast<size_t>(first) * sizeof(unwind_row);
  const size_t end = begin + static_cast<size_t>(n) * sizeof(unwind_row);
  const size_t map_begin = begin / page * page;
  const size_t map_len = (end - map_begin + page - 1) / page * page;
  void* p =
      mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(map_begin));
  if (p == MAP_FAILED) return false;
  memcpy(static_cast<char*>(p) + (begin - map_begin), rows, end - begin);
  munmap(p, map_len);
  return true;
}

// Field 22 of /proc/PID/stat: tells a reused pid from the process we loaded.
uint64_t StartTime(uint32_t pid) {
  std::string stat;
  if (!ReadFileBounded(absl::StrCat("/proc/", pid, "/stat"), 4096, &stat)) return 0;
  // The symbolizer's parser (agent/profile/proc_maps.h), fuzzed.
  return ParseStatStartTime(stat).value_or(0);
}

// The vDSO is the same image in every process of this kernel: compile the
// agent's own copy.
absl::StatusOr<CompiledCfi> CompileVdso(const CfiLimits& limits, uint64_t size) {
  const uint64_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return absl::NotFoundError("no vDSO in the agent");
  return CompileCfiFromMemory(reinterpret_cast<const void*>(base), size, limits);
}

}  // namespace

ExtentAllocator::ExtentAllocator(uint32_t capacity) : capacity_(capacity) {
  if (capacity > 0) free_[0] = capacity;
}

bool ExtentAllocator::Allocate(uint32_t n, uint32_t* first) {
  if (n == 0) return false;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < n) continue;
    *first = it->first;
    const uint32_t rest = it->second - n;
    const uint32_t rest_at = it->first + n;
    free_.erase(it);
    if (rest > 0) free_[rest_at] = rest;
    used_ += n;
    return true;
  }
  return false;
}

void ExtentAllocator::Free(uint32_t first, uint32_t n) {
  if (n > 0) quarantine_.emplace_back(first, n);
}

void ExtentAllocator::Release() {
  for (const auto& [first, n] : quarantine_) Insert(first, n);
  quarantine_.clear();
}

void ExtentAllocator::Insert(uint32_t first, uint32_t n) {
  used_ -= n;
  auto next = free_.lower_bound(first);
  if (next != free_.end() && first + n == next->first) {
    n += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == first) {
      prev->second += n;
      return;
    }
  }
  free_[first] = n;
}

std::vector<ExecMapping> ParseExecMappings(const std::string& maps) {
  std::vector<ExecMapping> out;
  size_t pos = 0;
  while (pos < maps.size()) {
    size_t eol = maps.find('\n', pos);
    if (eol == std::string::npos) eol = maps.size();
    const std::string line = maps.substr(pos, eol - pos);
    pos = eol + 1;
    ExecMapping m;
    char perms[8] = {};
    int path_at = 0;
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    unsigned major = 0, minor = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset,
               &major, &minor, &inode, &path_at) < 7) {
      continue;
    }
    if (strlen(perms) < 3 || perms[2] != 'x' || end <= start) continue;
    m.start = start;
    m.end = end;
    m.offset = offset;
    m.dev_major = major;
    m.dev_minor = minor;
    m.inode = inode;
    if (path_at > 0 && static_cast<size_t>(path_at) <= line.size()) m.path = line.substr(path_at);
    if (m.path == "[vsyscall]") continue;  // fixed, legacy, never sampled usefully
    out.push_back(std::move(m));
  }
  return out;
}

UnwindTables::UnwindTables(const UnwindConfig& config, const UnwindMaps& maps)
    : config_(config), maps_(maps), rows_(config.max_rows), last_prune_(absl::Now()) {
  free_ids_.reserve(config.max_files);
  for (uint32_t i = config.max_files; i > 0; --i) free_ids_.push_back(i - 1);
  stats_.row_capacity = config.max_rows;
}

UnwindTables::~UnwindTables() { Stop(); }

void UnwindTables::Start() {
  if (maps_.notify_fd >= 0) {
    // The records only wake us; the requests themselves are in the map.
    notify_.reset(ring_buffer__new(
        maps_.notify_fd, [](void*, void*, size_t) { return 0; }, nullptr, nullptr));
  }
  worker_ = std::thread([this] {
    for (;;) {
      bool waiting = false;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
        waiting = Service();
      }
      // Without the ring buffer (it failed to set up), plain polling.
      if (notify_ == nullptr) {
        absl::SleepFor(config_.poll);
        continue;
      }
      const absl::Duration wait = waiting ? config_.poll : config_.idle_poll;
      if (ring_buffer__poll(notify_.get(), static_cast<int>(absl::ToInt64Milliseconds(wait))) < 0) {
        absl::SleepFor(config_.poll);
      }
    }
  });
}

void UnwindTables::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

UnwindStats UnwindTables::stats() const {
  absl::MutexLock lock(&snapshot_mu_);
  return snapshot_;
}

void UnwindTables::Publish() {
  UnwindStats s = stats_;
  s.processes = procs_.size();
  s.rows = rows_.used();
  s.files = 0;
  s.files_fp = 0;
  for (const auto& [key, f] : files_) {
    if (f.id == VIGIL_UNWIND_FILE_FP) {
      ++s.files_fp;
    } else {
      ++s.files;
    }
  }
  absl::MutexLock lock(&snapshot_mu_);
  snapshot_ = s;
}

bool UnwindTables::Service() {
  rows_.Release();
  // 1. What the program asked for since the last interval.
  std::vector<uint32_t> asked;
  uint32_t key = 0, next = 0;
  int err = bpf_map_get_next_key(maps_.wanted_fd, nullptr, &next);
  while (err == 0 && asked.size() < kMaxWantedPerDrain) {
    asked.push_back(next);
    key = next;
    err = bpf_map_get_next_key(maps_.wanted_fd, &key, &next);
  }
  const absl::Time now = absl::Now();
  bool held_back = false;
  for (uint32_t tgid : asked) {
    uint32_t why = 0;
    bpf_map_lookup_elem(maps_.wanted_fd, &tgid, &why);
    auto p = procs_.find(tgid);
    // A stale pc (dlopen, JIT) re-reads the maps, but not at every pass: the
    // request stays in the map (so the program sends no more wake-ups) and
    // is served by a later pass.
    if (why == UNWIND_WANT_STALE && p != procs_.end() &&
        now - p->second.loaded < config_.reload_every) {
      held_back = true;
      continue;
    }
    bpf_map_delete_elem(maps_.wanted_fd, &tgid);
    if (pending_set_.size() >= kMaxPending) {
      ++stats_.deferred;
      continue;
    }
    if (pending_set_.insert(tgid).second) pending_.push_back(tgid);
  }
  // Processes left on frame pointers for want of rows, once rows are freed.
  if (frees_ != frees_at_retry_ && !starved_.empty()) {
    frees_at_retry_ = frees_;
    for (uint32_t tgid : starved_) {
      if (pending_set_.size() < kMaxPending && pending_set_.insert(tgid).second) {
        pending_.push_back(tgid);
        ++stats_.retried;
      }
    }
    starved_.clear();
  }
  // 2. Load within the budget, oldest request first.
  const absl::Time deadline = now + config_.budget;
  size_t done = 0;
  for (; done < pending_.size() && absl::Now() < deadline; ++done) {
    const uint32_t tgid = pending_[done];
    pending_set_.erase(tgid);
    Load(tgid).IgnoreError();  // exited or refused: counted in stats_
  }
  stats_.deferred += pending_.size() - done;
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(done));
  if (absl::Now() - last_prune_ >= kPruneEvery) Prune();
  Publish();
  return !pending_.empty() || held_back || asked.size() >= kMaxWantedPerDrain ||
         (frees_ != frees_at_retry_ && !starved_.empty());
}

absl::Status UnwindTables::Load(uint32_t tgid) {
  const uint64_t start_time = StartTime(tgid);
  if (start_time == 0) {
    Drop(tgid);
    return absl::NotFoundError("exited");
  }
  std::string text;
  bool cut = false;
  if (!ReadFileBounded(absl::StrCat("/proc/", tgid, "/maps"), kMaxMapsBytes, &text, &cut)) {
    return absl::NotFoundError("maps unreadable");
  }
  if (cut) DropPartialLine(&text);
  std::vector<ExecMapping> mappings = ParseExecMappings(text);
  if (!procs_.contains(tgid) && procs_.size() >= config_.max_processes) {
    ++stats_.processes_full;
    return absl::ResourceExhaustedError("max_processes");
  }
  // The new mappings hold their files before the old ones let go, so a
  // reload does not recompile what did not change.
  Proc fresh;
  fresh.start_time = start_time;
  fresh.loaded = absl::Now();
  auto value = std::make_unique<unwind_proc>();
  memset(value.get(), 0, sizeof(*value));
  std::sort(mappings.begin(), mappings.end(),
            [](const ExecMapping& a, const ExecMapping& b) { return a.start < b.start; });
  for (const ExecMapping& m : mappings) {
    if (value->count >= VIGIL_UNWIND_MAX_MAPPINGS) {
      ++stats_.mappings_dropped;
      continue;
    }
    unwind_mapping& um = value->maps[value->count];
    um.start = m.start;
    um.end = m.end;
    um.file = VIGIL_UNWIND_FILE_FP;
    FileKey key;
    File* f = FileFor(tgid, m, &key);
    if (f == nullptr && refused_full_.contains(key)) {
      if (starved_.size() < config_.max_processes) starved_.insert(tgid);
    }
    if (f == nullptr) {
      // Unreadable or swapped on disk: anonymous memory and JIT code too.
      // Frame pointers are all there is for them.
      ++value->count;
      continue;
    }
    ++f->refs;
    fresh.files.push_back(key);
    // ELF address = runtime - bias, through the executable segment this
    // mapping's file offset falls in.
    for (const LoadSegment& s : f->segments) {
      if (s.exec && m.offset >= (s.offset & ~0xfffull) && m.offset < s.offset + s.filesz) {
        um.bias = m.start - m.offset + s.offset - s.vaddr;
        um.file = f->id;
        break;
      }
    }
    ++value->count;
  }
  auto old = procs_.find(tgid);
  value->generation = old == procs_.end() ? 1 : 2;
  if (bpf_map_update_elem(maps_.procs_fd, &tgid, value.get(), BPF_ANY) != 0) {
    const int err = errno;
    for (const FileKey& k : fresh.files) Unref(k);
    return absl::ResourceExhaustedError(absl::StrCat("unwind_procs update: ", strerror(err)));
  }
  if (old != procs_.end()) {
    for (const FileKey& k : old->second.files) Unref(k);
    old->second = std::move(fresh);
  } else {
    procs_.emplace(tgid, std::move(fresh));
  }
  ++stats_.loads;
  return absl::OkStatus();
}

UnwindTables::File* UnwindTables::FileFor(uint32_t tgid, const ExecMapping& m, FileKey* key) {
  const CfiLimits limits{std::min<uint32_t>(config_.max_file_rows, VIGIL_UNWIND_MAX_FILE_ROWS),
                         absl::Seconds(2)};
  if (!config_.cfi) return nullptr;  // frame pointers everywhere
  if (m.path == "[vdso]") {
    *key = FileKey{0, 0, m.end - m.start, -1};
    if (auto it = files_.find(*key); it != files_.end()) return &it->second;
    const absl::Time t0 = absl::Now();
    absl::StatusOr<CompiledCfi> c = CompileVdso(limits, m.end - m.start);
    stats_.compile_ns += absl::ToInt64Nanoseconds(absl::Now() - t0);
    return Compile(*key, std::move(c));
  }
  if (m.inode == 0) return nullptr;  // anonymous: JIT code or a trampoline
  // The file the process actually maps, even if the path now names
  // another (replaced on disk) or was deleted.
  char path[96];
  snprintf(path, sizeof(path), "/proc/%u/map_files/%" PRIx64 "-%" PRIx64, tgid, m.start, m.end);
  UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return nullptr;
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != m.inode ||
      major(st.st_dev) != m.dev_major || minor(st.st_dev) != m.dev_minor) {
    return nullptr;
  }
  *key = FileKey{st.st_dev, st.st_ino, static_cast<uint64_t>(st.st_size),
                 static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  if (auto it = files_.find(*key); it != files_.end()) return &it->second;
  // Refused for room and nothing freed since: frame pointers for now.
  if (auto it = refused_full_.find(*key); it != refused_full_.end() && it->second == frees_) {
    return nullptr;
  }
  const absl::Time t0 = absl::Now();
  absl::StatusOr<CompiledCfi> c = CompileCfiFromFd(fd.get(), limits);
  stats_.compile_ns += absl::ToInt64Nanoseconds(absl::Now() - t0);
  return Compile(*key, std::move(c));
}

UnwindTables::File* UnwindTables::Compile(const FileKey& key, absl::StatusOr<CompiledCfi> cfi) {
  ++stats_.compiled;
  File f;
  if (!cfi.ok()) {
    // No CFI (or a refused one): frame pointers, and the file is still
    // cached so it is not re-read for every process.
    ++stats_.compile_failed;
    return &(files_[key] = std::move(f));
  }
  f.segments = std::move(cfi->segments);
  const uint32_t n = static_cast<uint32_t>(cfi->rows.size());
  if (n == 0) return &(files_[key] = std::move(f));
  // Room first from files no process maps any more, oldest first.
  while (free_ids_.empty() && EvictOneIdle()) {
  }
  if (free_ids_.empty()) {
    ++stats_.files_full;
    return &(files_[key] = std::move(f));
  }
  uint32_t first = 0;
  while (!rows_.Allocate(n, &first)) {
    if (!EvictOneIdle()) {
      ++stats_.rows_full;
      if (refused_full_.size() >= 4096) refused_full_.clear();  // bounded; only costs a recompile
      refused_full_[key] = frees_;
      return nullptr;
    }
  }
  f.id = free_ids_.back();
  f.first = first;
  f.rows = n;
  // Rows are written before the extent is published: the update is a
  // syscall, so the program sees either no extent or complete rows.
  const unwind_file uf{first, n};
  if (!WriteRows(maps_.rows_fd, first, cfi->rows.data(), n) ||
      bpf_map_update_elem(maps_.files_fd, &f.id, &uf, BPF_ANY) != 0) {
    rows_.Free(first, n);
    f.id = VIGIL_UNWIND_FILE_FP;
    f.rows = 0;
    return &(files_[key] = std::move(f));
  }
  free_ids_.pop_back();
  return &(files_[key] = std::move(f));
}

void UnwindTables::Unref(const FileKey& key) {
  auto it = files_.find(key);
  if (it == files_.end()) return;
  File& f = it->second;
  if (f.refs > 0) --f.refs;
  if (f.refs == 0) f.idle_since = absl::Now();
}

void UnwindTables::Evict(absl::flat_hash_map<FileKey, File>::iterator it) {
  File& f = it->second;
  if (f.id != VIGIL_UNWIND_FILE_FP) {
    const unwind_file none{0, 0};
    bpf_map_update_elem(maps_.files_fd, &f.id, &none, BPF_ANY);
    rows_.Free(f.first, f.rows);
    free_ids_.push_back(f.id);
    ++frees_;
  }
  ++stats_.evicted_files;
  files_.erase(it);
}

bool UnwindTables::EvictOneIdle() {
  auto oldest = files_.end();
  for (auto it = files_.begin(); it != files_.end(); ++it) {
    if (it->second.refs > 0 || it->second.id == VIGIL_UNWIND_FILE_FP) continue;
    if (oldest == files_.end() || it->second.idle_since < oldest->second.idle_since) oldest = it;
  }
  if (oldest == files_.end()) return false;
  Evict(oldest);
  // Freed rows are quarantined until the next pass; released now, because
  // nothing references them (no process maps the file).
  rows_.Release();
  return true;
}

void UnwindTables::Drop(uint32_t tgid) {
  // Also when we never loaded it: the fork hook copies a parent's entry
  // for a child the agent has not read yet.
  bpf_map_delete_elem(maps_.procs_fd, &tgid);
  starved_.erase(tgid);
  auto it = procs_.find(tgid);
  if (it == procs_.end()) return;
  for (const FileKey& k : it->second.files) Unref(k);
  procs_.erase(it);
}

void UnwindTables::Prune() {
  last_prune_ = absl::Now();
  std::vector<uint32_t> gone;
  for (const auto& [tgid, p] : procs_) {
    if (StartTime(tgid) != p.start_time) gone.push_back(tgid);
  }
  // Entries the fork hook made for children whose request was lost (the
  // request map is an LRU) and that exited before the agent read them.
  uint32_t key = 0, next = 0;
  int err = bpf_map_get_next_key(maps_.procs_fd, nullptr, &next);
  for (uint32_t n = 0; err == 0 && n < config_.max_processes; ++n) {
    if (!procs_.contains(next) && !pending_set_.contains(next) && StartTime(next) == 0) {
      gone.push_back(next);
    }
    key = next;
    err = bpf_map_get_next_key(maps_.procs_fd, &key, &next);
  }
  for (uint32_t tgid : gone) Drop(tgid);
  const absl::Time now = absl::Now();
  std::vector<FileKey> idle;
  for (const auto& [key, f] : files_) {
    if (f.refs == 0 && now - f.idle_since >= config_.keep_idle) idle.push_back(key);
  }
  for (const FileKey& k : idle) Evict(files_.find(k));
}

}  // namespace vigil
