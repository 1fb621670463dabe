// Symbolization for the profiler: an interface over bcc's symbolizer, and a
// bounded cache in front of it keyed by (pid, process start time) so that a
// reused pid never gets a previous process's symbols.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "agent/profile/debuginfod.h"
#include "agent/profile/frame.h"

namespace vigil {

// The symbol tables of one process, as its memory map was when opened.
class ProcessSymbols {
 public:
  virtual ~ProcessSymbols() = default;
  // Never fails: an address that cannot be named keeps its module and
  // module offset (or, outside every mapping, module "[unknown]").
  virtual Frame Resolve(uint64_t addr) = 0;
  // Re-reads the memory map (a library dlopen()ed after opening).
  virtual void Reload() = 0;
};

class Symbolizer {
 public:
  virtual ~Symbolizer() = default;
  // Reads /proc/PID/maps now; the returned tables stay usable after the
  // process exits.
  virtual std::unique_ptr<ProcessSymbols> OpenProcess(uint32_t pid) = 0;
  virtual Frame ResolveKernel(uint64_t addr) = 0;
  // Module symbol tables dropped to stay within the memory bound.
  virtual uint64_t module_evictions() const { return 0; }
  // Takes up debug files fetched (debuginfod) since the last call. True if
  // a module's symbols changed: frames resolved unnamed before may have
  // names now.
  virtual bool Poll() { return false; }
  virtual DebuginfodStats debuginfod_stats() const { return {}; }
};

struct SymbolCacheConfig;

// bcc's ELF layer for user code (symbols of PIE executables and shared
// libraries, debug files in /usr/lib/debug by build-id or .gnu_debuglink, the
// vDSO) with /proc/PID/maps and /tmp/perf-PID.map (JIT) read here; a
// compact /proc/kallsyms table for the kernel. C++ names demangled. Module symbol tables
// are shared by every process mapping the same file. Stripped modules are
// named from their MiniDebugInfo (.gnu_debugdata), else from a debug file
// fetched from debuginfod when config.debuginfod (or $DEBUGINFOD_URLS)
// names servers.
std::unique_ptr<Symbolizer> NewBccSymbolizer(const SymbolCacheConfig& config);
// As above without debuginfod.
std::unique_ptr<Symbolizer> NewBccSymbolizer(size_t max_module_bytes);

// What identifies a process across pid reuse, and notices exec.
struct ProcessIdentity {
  uint64_t start_time = 0;  // /proc/PID/stat field 22, clock ticks since boot
  uint64_t exe_inode = 0;   // inode of /proc/PID/exe (changes on exec)
};

// Reads process identities; an interface so unit tests can fake /proc.
class ProcessInfo {
 public:
  virtual ~ProcessInfo() = default;
  // False if the process is gone.
  virtual bool Identify(uint32_t pid, ProcessIdentity* out) = 0;
};
std::unique_ptr<ProcessInfo> NewProcProcessInfo();

struct SymbolCacheConfig {
  // Processes whose tables are kept; the least recently used is evicted.
  uint32_t max_processes = 256;
  // Resolved addresses memoized per process (8 times as many for the
  // kernel); a full memo is cleared and counted.
  uint32_t max_addrs_per_process = 8192;
  // Resolved addresses memoized over all processes: past it every process's
  // memo is cleared and counted. About 100 bytes each (the strings are
  // shared per function; 96.8 measured with mallinfo2 over 100,000), so
  // 131,072 addresses are ~12.5 MiB at most.
  uint32_t max_memo_addrs = 131072;
  // Bytes of module symbol tables (shared by all processes) kept; the
  // oldest tables are dropped and re-read when needed.
  size_t max_module_bytes = 16 << 20;
  // Distinct (function, module) pairs given ids for fast merging; frames
  // beyond it merge by name instead (slower, still correct) and are counted.
  uint32_t max_functions = 200000;
  // Debug files of stripped modules from debuginfod servers.
  DebuginfodConfig debuginfod;
};

struct SymbolCacheStats {
  uint64_t processes = 0;           // currently cached
  uint64_t evicted_exit = 0;        // process exited (or pid reused)
  uint64_t evicted_exec = 0;        // process exec()ed
  uint64_t evicted_capacity = 0;    // max_processes reached
  uint64_t memo_addrs = 0;          // addresses memoized now (processes and kernel)
  uint64_t memo_resets = 0;         // an address memo filled up and was cleared
  uint64_t unnamed_frames = 0;      // frames resolved without a name
  uint64_t module_evictions = 0;    // module symbol tables dropped (bytes cap)
  uint64_t functions = 0;           // function ids handed out
  uint64_t functions_overflow = 0;  // frames left without an id (table full)
  DebuginfodStats debuginfod;
};

// Caching layer: one ProcessSymbols per (pid, start time), a memo of resolved
// addresses per process, and eviction on exit, exec and capacity. Not
// thread-safe: the collection thread owns it.
class SymbolCache {
 public:
  SymbolCache(std::unique_ptr<Symbolizer> backend, std::unique_ptr<ProcessInfo> info,
              const SymbolCacheConfig& config);

  // Call once per collection before resolving its samples.
  void BeginInterval();
  FramePtr User(uint32_t pid, uint64_t addr);
  FramePtr Kernel(uint64_t addr);
  // Drops processes that are gone (or exec()ed) and had no samples in this
  // interval: their last samples were drained and named by now.
  void EndInterval();

  SymbolCacheStats stats() const;

 private:
  struct Entry {
    uint32_t pid = 0;
    ProcessIdentity id;
    std::unique_ptr<ProcessSymbols> symbols;
    absl::flat_hash_map<uint64_t, FramePtr> memo;
    bool reloaded_this_interval = false;
    bool seen_this_interval = false;
    std::list<uint32_t>::iterator lru_pos;
  };
  Entry* Lookup(uint32_t pid);
  void Evict(uint32_t pid);
  // Swaps f's symbol for the shared one of its function (adding the
  // function to the table, with an id, if there is room) or of its module
  // (unnamed frames), and wraps it for sharing.
  FramePtr Intern(Frame f);
  std::shared_ptr<const FrameSymbol> Share(const std::shared_ptr<const FrameSymbol>& s);
  void ClearUserMemos();
  // Drops memoized unnamed frames, so they are resolved again.
  void ForgetUnnamed();

  std::unique_ptr<Symbolizer> backend_;
  std::unique_ptr<ProcessInfo> info_;
  SymbolCacheConfig config_;
  // Keyed by pid; the entry's identity holds the start time, checked once
  // per interval per pid so a reused pid replaces the entry.
  absl::flat_hash_map<uint32_t, std::unique_ptr<Entry>> procs_;
  absl::flat_hash_set<uint32_t> checked_this_interval_;
  std::list<uint32_t> lru_;       // front: most recently used
  uint64_t user_memo_addrs_ = 0;  // sum of every Entry's memo size
  absl::flat_hash_map<uint64_t, FramePtr> kernel_memo_;
  // Function table of named frames: keys view the strings of the shared
  // symbols (heap objects that never move); fn_id N is fn_symbols_[N - 1].
  absl::flat_hash_map<std::pair<absl::string_view, absl::string_view>, uint32_t> fn_ids_;
  std::vector<std::shared_ptr<const FrameSymbol>> fn_symbols_;
  // The shared symbol of each module's unnamed frames; cleared when full
  // (frames keep theirs alive, new ones get fresh copies).
  absl::flat_hash_map<std::string, std::shared_ptr<const FrameSymbol>> unnamed_symbols_;
  SymbolCacheStats stats_;
};

}  // namespace vigil
