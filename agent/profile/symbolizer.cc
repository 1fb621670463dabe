#include "agent/profile/symbolizer.h"

#include <bcc/bcc_elf.h>
#include <bcc/bcc_syms.h>
#include <cxxabi.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agent/profile/elf_info.h"
#include "agent/profile/perf_map.h"
#include "agent/profile/proc_maps.h"
#include "common/read_file.h"

namespace vigil {

namespace {

// /proc/PID/maps read per process load (see ElfProcessSymbols::Reload).
constexpr size_t kMaxMapsBytes = 16 << 20;

constexpr char kKernelModule[] = "[kernel]";
constexpr char kUnknownModule[] = "[unknown]";
// Modules whose unnamed frames share one symbol; more are rare (a host's
// distinct mapped files with stripped code) and only cost copies.
constexpr size_t kMaxUnnamedModules = 4096;

// Kernel text symbols from /proc/kallsyms, stored compactly: ~120k symbols
// cost ~2.5 MB here against ~22 MB in bcc's KSyms (a std::string pair per
// symbol), which alone would spend a third of the agent's memory budget.
// Kernels built with function padding (x86 call-depth tracking, FineIBT:
// Debian's 6.x) list a "__pfx_NAME" symbol before nearly every function,
// ~47% of the text symbols: NAME's entry also covers its padding, and the
// prefix is put back when an address there is named.
class KernelSymbols {
 public:
  void Load() {
    loaded_ = true;
    loaded_at_ = absl::Now();
    syms_.clear();
    names_.clear();
    modules_.clear();
    std::ifstream f("/proc/kallsyms");
    std::string line;
    // A "__pfx_NAME" waiting for NAME.
    struct Pending {
      uint64_t addr;
      std::string name;
      uint16_t module;
    };
    std::optional<Pending> pending;
    while (std::getline(f, line)) {
      // "ffffffff81000000 T _stext" or "... t name\t[module]"
      const size_t sp1 = line.find(' ');
      if (sp1 == std::string::npos || sp1 + 3 > line.size()) continue;
      const char type = line[sp1 + 1];
      if (type != 't' && type != 'T' && type != 'w' && type != 'W') continue;
      uint64_t addr = strtoull(line.c_str(), nullptr, 16);
      if (addr == 0) continue;  // hidden addresses (kptr_restrict)
      std::string rest = line.substr(sp1 + 3);
      std::string module;
      const size_t tab = rest.find('\t');
      if (tab != std::string::npos) {
        module = rest.substr(tab + 1);
        rest.resize(tab);
      }
      uint16_t mod_idx = 0;
      if (!module.empty()) {
        auto [it, inserted] =
            module_ids_.try_emplace(module, static_cast<uint16_t>(modules_.size() + 1));
        if (inserted) modules_.push_back(module);
        mod_idx = it->second;
      }
      if (absl::StartsWith(rest, kPfx)) {
        if (pending) Add(pending->addr, pending->name, pending->module, /*pfx=*/true, 0);
        pending = Pending{addr, rest.substr(kPfx.size()), mod_idx};
        continue;
      }
      // kallsyms lists "__pfx_NAME" right before NAME: NAME's entry covers it.
      uint8_t pad = 0;
      if (pending && pending->name == rest && pending->module == mod_idx && addr > pending->addr &&
          addr - pending->addr <= UINT8_MAX) {
        pad = static_cast<uint8_t>(addr - pending->addr);
      } else if (pending) {
        Add(pending->addr, pending->name, pending->module, /*pfx=*/true, 0);
      }
      pending.reset();
      Add(addr, rest, mod_idx, /*pfx=*/false, pad);
    }
    if (pending) Add(pending->addr, pending->name, pending->module, /*pfx=*/true, 0);
    std::sort(syms_.begin(), syms_.end(),
              [](const Sym& a, const Sym& b) { return a.addr < b.addr; });
    syms_.shrink_to_fit();
    names_.shrink_to_fit();
    module_ids_.clear();
  }

  Frame Resolve(uint64_t addr) {
    if (!loaded_) Load();
    auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                               [](uint64_t a, const Sym& s) { return a < s.addr; });
    if (it != syms_.begin() && addr - std::prev(it)->addr > kMaxFunctionSize &&
        absl::Now() - loaded_at_ > absl::Seconds(30)) {
      // Far past its nearest symbol: probably code loaded since we read
      // kallsyms (a module, a BPF program). Re-read, at most every 30 s.
      Load();
      it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                            [](uint64_t a, const Sym& s) { return a < s.addr; });
    }
    if (it != syms_.end() && it->pad != 0 && addr >= it->addr - it->pad) {
      return Named(*it, /*pfx=*/true, addr - (it->addr - it->pad));  // the next one's padding
    }
    if (it == syms_.begin()) return Frame::Of("", kKernelModule, addr, true);
    --it;
    if (addr - it->addr > kMaxFunctionSize) {
      return Frame::Of("", kKernelModule, addr, true);  // unnamed, not misnamed
    }
    return Named(*it, it->pfx, addr - it->addr);
  }

 private:
  static constexpr uint64_t kMaxFunctionSize = 1 << 20;
  static constexpr absl::string_view kPfx = "__pfx_";
  struct Sym {
    uint64_t addr;
    uint32_t name;    // offset into names_
    uint16_t module;  // 0: core kernel, else modules_[module - 1]
    bool pfx;         // a "__pfx_" symbol whose function was not listed after it
    uint8_t pad;      // bytes of "__pfx_" + name before addr (0: none)
  };
  static_assert(sizeof(Sym) == 16);

  void Add(uint64_t addr, absl::string_view name, uint16_t module, bool pfx, uint8_t pad) {
    syms_.push_back(Sym{addr, static_cast<uint32_t>(names_.size()), module, pfx, pad});
    names_.append(name.data(), name.size());
    names_.push_back('\0');
  }

  Frame Named(const Sym& s, bool pfx, uint64_t offset) const {
    const char* name = names_.data() + s.name;
    // kallsyms names modules "[ext4]" already.
    return Frame::Of(pfx ? absl::StrCat(kPfx, name) : std::string(name),
                     s.module != 0 ? modules_[s.module - 1] : kKernelModule, offset, true);
  }
  bool loaded_ = false;
  absl::Time loaded_at_;
  std::vector<Sym> syms_;
  std::string names_;
  std::vector<std::string> modules_;
  std::map<std::string, uint16_t> module_ids_;
};

// User processes do not go through bcc's ProcSyms: in bcc 0.26 (Debian 12)
// it closes whatever fd an uninitialized ModulePath::fd_ holds for every
// process it opens (fixed in bcc 0.33, iovisor/bcc#5193), which closed our
// BPF map and gRPC epoll fds. We use bcc's ELF layer (symbols, debug files,
// load segments) under our own /proc/PID/maps parsing instead.
//
// One ELF file's function symbols (from the file, or from its debug file in
// /usr/lib/debug found by build-id or .gnu_debuglink: bcc_elf_foreach_sym
// does that lookup), plus its executable load segments.
class ModuleTable {
 public:
  struct Segment {
    uint64_t vaddr, memsz, offset;
  };

  // path: how bcc opens the file (its directory matters for debuglink
  // lookups); id_path: the very file mapped (/proc/PID/map_files/...), read
  // for the build-id and MiniDebugInfo, falling back to path.
  static std::shared_ptr<ModuleTable> Load(const std::string& path, const std::string& id_path,
                                           bool vdso, DebuginfodFetcher* fetcher) {
    auto t = std::make_shared<ModuleTable>();
    bcc_symbol_option opt = {};
    opt.use_debug_file = 1;
    opt.check_debug_file_crc = 1;
    opt.lazy_symbolize = 0;
    opt.use_symbol_type = kFuncTypes;
    if (vdso) {
      bcc_elf_foreach_vdso_sym(&ModuleTable::AddSym, t.get());
    } else {
      bcc_elf_foreach_sym(path.c_str(), &ModuleTable::AddSym, &opt, t.get());
      bcc_elf_foreach_load_section(path.c_str(), &ModuleTable::AddSegment, t.get());
      t->LoadStripped(path, id_path, fetcher);
    }
    std::sort(t->syms_.begin(), t->syms_.end(),
              [](const Sym& a, const Sym& b) { return a.start < b.start; });
    t->syms_.shrink_to_fit();
    t->names_.shrink_to_fit();
    return t;
  }

  // Set while the module waits for a debug file from debuginfod.
  const std::string& awaiting_build_id() const { return awaiting_build_id_; }

  // Maps a file offset to the ELF virtual address symbols use.
  bool FileOffsetToVaddr(uint64_t off, uint64_t* vaddr) const {
    for (const Segment& s : segments_) {
      if (off >= s.offset && off < s.offset + s.memsz) {
        *vaddr = off - s.offset + s.vaddr;
        return true;
      }
    }
    return false;
  }

  // The function containing vaddr, or nullptr.
  const char* Find(uint64_t vaddr, uint64_t* sym_offset) const {
    auto it = std::upper_bound(syms_.begin(), syms_.end(), vaddr,
                               [](uint64_t a, const Sym& s) { return a < s.start; });
    // Step back over nested or zero-sized neighbours, a few at most.
    for (int steps = 0; it != syms_.begin() && steps < 8; ++steps) {
      --it;
      if (vaddr >= it->start && (vaddr < it->start + it->size || it->size == 0)) {
        *sym_offset = vaddr - it->start;
        return names_.data() + it->name;
      }
    }
    return nullptr;
  }

  size_t bytes() const {
    return syms_.capacity() * sizeof(Sym) + names_.capacity() +
           segments_.capacity() * sizeof(Segment) + sizeof(*this);
  }

 private:
  struct Sym {
    uint64_t start, size;
    uint32_t name;  // offset into names_
  };
  static int AddSym(const char* name, uint64_t start, uint64_t size, void* p) {
    static_cast<ModuleTable*>(p)->Add(name, start, size);
    return 0;
  }
  static constexpr int kFuncTypes = (1 << 2) | (1 << 10);  // STT_FUNC | STT_GNU_IFUNC
  // Bounds on MiniDebugInfo: Fedora's .gnu_debugdata is tens of KiB
  // compressed and a few hundred KiB inflated, even for large programs.
  static constexpr size_t kMaxDebugdataCompressed = 8 << 20;
  static constexpr size_t kMaxDebugdataInflated = 64 << 20;

  // For a file without .symtab: its MiniDebugInfo symbols, else (unless a
  // local debug file served bcc) a debug file from debuginfod if one was
  // fetched, else a request for one.
  void LoadStripped(const std::string& path, const std::string& id_path,
                    DebuginfodFetcher* fetcher) {
    // O_NONBLOCK: a FIFO planted at the path must not hang the collector;
    // ReadElfInfo rejects what is not a regular file.
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    UniqueFd fd(open(id_path.c_str(), kFlags));
    if (fd.get() < 0) fd = UniqueFd(open(path.c_str(), kFlags));
    if (fd.get() < 0) return;
    absl::StatusOr<ElfInfo> info = ReadElfInfo(fd.get());
    if (!info.ok() || info->has_symtab) return;
    absl::StatusOr<size_t> mini = ReadMiniDebugInfo(
        fd.get(), *info, kMaxDebugdataCompressed, kMaxDebugdataInflated,
        [this](const char* name, uint64_t start, uint64_t size) { Add(name, start, size); });
    fd = UniqueFd(-1);
    // A corrupt .gnu_debugdata is ignored: the module is named as if it had
    // none.
    if (mini.ok() && *mini > 0) return;
    if (fetcher == nullptr || info->build_id.empty() || HasLocalDebugFile(*info, path)) return;
    const std::string id = BuildIdHex(info->build_id);
    DebuginfodFetcher::Answer a = fetcher->Request(id);
    if (a.state == DebuginfodFetcher::State::kReady) {
      bcc_symbol_option opt = {};
      opt.use_debug_file = 0;
      opt.lazy_symbolize = 0;
      opt.use_symbol_type = kFuncTypes;
      bcc_elf_foreach_sym(a.path.c_str(), &ModuleTable::AddSym, &opt, this);
      return;
    }
    awaiting_build_id_ = id;
  }

  // Whether bcc found (or could have found) a debug file on this host: the
  // places it looks, by build-id and by .gnu_debuglink.
  static bool HasLocalDebugFile(const ElfInfo& info, const std::string& path) {
    const std::string hex = BuildIdHex(info.build_id);
    std::vector<std::string> candidates = {
        absl::StrFormat("/usr/lib/debug/.build-id/%s/%s.debug", hex.substr(0, 2), hex.substr(2))};
    if (!info.debuglink.empty()) {
      const std::string dir = path.substr(0, path.rfind('/') + 1);
      candidates.push_back(dir + info.debuglink);
      candidates.push_back(dir + ".debug/" + info.debuglink);
      candidates.push_back("/usr/lib/debug" + dir + info.debuglink);
    }
    for (const std::string& c : candidates) {
      struct stat st;
      if (c != path && stat(c.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return true;
    }
    return false;
  }

  void Add(const char* name, uint64_t start, uint64_t size) {
    syms_.push_back(Sym{start, size, static_cast<uint32_t>(names_.size())});
    names_.append(name);
    names_.push_back('\0');
  }

  static int AddSegment(uint64_t vaddr, uint64_t memsz, uint64_t offset, void* p) {
    static_cast<ModuleTable*>(p)->segments_.push_back(Segment{vaddr, memsz, offset});
    return 0;
  }

  std::vector<Sym> syms_;
  std::string names_;
  std::vector<Segment> segments_;
  std::string awaiting_build_id_;
};

std::string Demangle(const char* name) {
  if (strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                           free);
  return status == 0 && d != nullptr ? std::string(d.get()) : std::string(name);
}

// Module tables shared by every process that maps the same file, keyed by
// (device, inode) from /proc/PID/maps. Bounded by bytes (a compiler's symbol
// table alone can be 10 MB); the oldest tables go first, and are re-read if
// needed again. Processes hold keys, not tables, so eviction frees memory.
class ModuleCache {
 public:
  ModuleCache(size_t max_bytes, DebuginfodFetcher* fetcher)
      : max_bytes_(max_bytes), fetcher_(fetcher) {}
  std::shared_ptr<ModuleTable> Get(uint64_t dev, uint64_t ino, const std::string& open_path,
                                   const std::string& id_path, bool vdso) {
    const auto key = std::make_pair(dev, ino);
    auto it = tables_.find(key);
    if (it != tables_.end()) return it->second;
    std::shared_ptr<ModuleTable> t = ModuleTable::Load(open_path, id_path, vdso, fetcher_);
    if (!t->awaiting_build_id().empty()) {
      awaiting_.insert(key);
      next_poll_ = absl::InfinitePast();
    }
    bytes_ += t->bytes();
    while (bytes_ > max_bytes_ && !order_.empty()) {
      auto old = tables_.find(order_.front());
      bytes_ -= old->second->bytes();
      tables_.erase(old);
      order_.pop_front();
      ++evictions_;
    }
    tables_.emplace(key, t);
    order_.push_back(key);
    return t;
  }
  uint64_t evictions() const { return evictions_; }

  // Drops the tables whose debug file has arrived (the next Get re-reads
  // them, with it), and asks again for those whose retry time has come.
  // Cheap when nothing changed: no fetch finished and no retry is due.
  bool Poll() {
    if (fetcher_ == nullptr || awaiting_.empty()) return false;
    const uint64_t gen = fetcher_->generation();
    const absl::Time now = absl::Now();
    if (gen == seen_generation_ && now < next_poll_) return false;
    seen_generation_ = gen;
    next_poll_ = absl::InfiniteFuture();
    bool changed = false;
    for (auto it = awaiting_.begin(); it != awaiting_.end();) {
      auto t = tables_.find(*it);
      if (t == tables_.end()) {  // evicted meanwhile: asks again when re-read
        awaiting_.erase(it++);
        continue;
      }
      const std::string& id = t->second->awaiting_build_id();
      DebuginfodFetcher::Answer a = fetcher_->Peek(id);
      if (a.state == DebuginfodFetcher::State::kUnknown) a = fetcher_->Request(id);
      if (a.state == DebuginfodFetcher::State::kReady) {
        Drop(*it);
        awaiting_.erase(it++);
        changed = true;
        continue;
      }
      if (a.state == DebuginfodFetcher::State::kFailed)
        next_poll_ = std::min(next_poll_, a.retry_at);
      if (a.state == DebuginfodFetcher::State::kUnknown) next_poll_ = now;  // queue was full
      ++it;
    }
    return changed;
  }

 private:
  void Drop(const std::pair<uint64_t, uint64_t>& key) {
    auto t = tables_.find(key);
    if (t == tables_.end()) return;
    bytes_ -= t->second->bytes();
    tables_.erase(t);
    order_.erase(std::find(order_.begin(), order_.end(), key));
  }

  size_t max_bytes_;
  DebuginfodFetcher* fetcher_;  // null: no debuginfod
  std::set<std::pair<uint64_t, uint64_t>> awaiting_;
  uint64_t seen_generation_ = 0;
  absl::Time next_poll_ = absl::InfinitePast();
  size_t bytes_ = 0;
  uint64_t evictions_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<ModuleTable>> tables_;
  std::deque<std::pair<uint64_t, uint64_t>> order_;
};

struct Mapping {
  uint64_t start, end, offset, dev, ino;
  std::string path;
  std::string open_path;  // how to open it, found on first use
};

// One process: its executable mappings (from /proc/PID/maps when opened or
// reloaded) and its /tmp/perf-PID.map JIT symbols.
class ElfProcessSymbols final : public ProcessSymbols {
 public:
  ElfProcessSymbols(uint32_t pid, ModuleCache* modules) : pid_(pid), modules_(modules) { Reload(); }

  void Reload() override {
    std::vector<Mapping> maps;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/maps", pid_);
    // Bounded: a process decides how many mappings it has. The default
    // vm.max_map_count (65530) is about 6 MiB of text, so only a raised
    // limit reaches the bound; mappings past it are left unnamed.
    std::string text;
    bool cut = false;
    ReadFileBounded(path, kMaxMapsBytes, &text, &cut);
    if (cut) DropPartialLine(&text);
    for (FileMapping& m : ParseFileMappings(text)) {
      maps.push_back(Mapping{m.start, m.end, m.offset, m.dev, m.ino, std::move(m.path), ""});
    }
    if (!maps.empty() || maps_.empty())
      maps_ = std::move(maps);  // keep the old maps of a gone process
    LoadPerfMap();
  }

  Frame Resolve(uint64_t addr) override {
    for (Mapping& m : maps_) {
      if (addr < m.start || addr >= m.end) continue;
      const uint64_t file_off = addr - m.start + m.offset;
      const bool vdso = m.path == "[vdso]";
      if (m.path[0] == '[' && !vdso) return Frame::Of("", m.path, file_off);
      // The mapped file itself, even if the path now names another (it
      // was replaced, or is a link someone swapped): for the build-id.
      const std::string id_path =
          vdso ? "" : absl::StrFormat("/proc/%u/map_files/%x-%x", pid_, m.start, m.end);
      if (m.open_path.empty()) {
        // Open through the process's root (containers), else the host path
        // once the process is gone, but only if that path still names the
        // mapped file: one renamed over or deleted is read through
        // map_files (its symbols, not the new file's).
        auto is_mapped = [&m](const std::string& p) {
          struct stat st;
          return stat(p.c_str(), &st) == 0 && st.st_ino == m.ino &&
                 ((static_cast<uint64_t>(major(st.st_dev)) << 32) | minor(st.st_dev)) == m.dev;
        };
        if (vdso) {
          m.open_path = m.path;
        } else if (const std::string in_root = absl::StrFormat("/proc/%u/root%s", pid_, m.path);
                   is_mapped(in_root)) {
          m.open_path = in_root;
        } else if (is_mapped(m.path)) {
          m.open_path = m.path;
        } else if (is_mapped(id_path)) {
          m.open_path = id_path;
        } else {
          // Gone, and the path names another file (or none): no names
          // rather than another file's (module+offset stays).
          m.open_path = id_path;
        }
      }
      std::shared_ptr<ModuleTable> table =
          modules_->Get(vdso ? ~0ull : m.dev, vdso ? 0 : m.ino, m.open_path, id_path, vdso);
      uint64_t vaddr = 0, sym_off = 0;
      if (vdso) {
        vaddr = addr - m.start;
      } else if (!table->FileOffsetToVaddr(file_off, &vaddr)) {
        return Frame::Of("", m.path, file_off);
      }
      if (const char* name = table->Find(vaddr, &sym_off)) {
        return Frame::Of(Demangle(name), m.path, sym_off);
      }
      return Frame::Of("", m.path, file_off);
    }
    // Not file-backed: JIT code named in /tmp/perf-PID.map?
    auto it = std::upper_bound(perf_map_.begin(), perf_map_.end(), addr,
                               [](uint64_t a, const PerfSym& s) { return a < s.start; });
    if (it != perf_map_.begin()) {
      --it;
      if (addr < it->start + it->size) return Frame::Of(it->name, perf_map_path_, addr - it->start);
    }
    return Frame::Of("", kUnknownModule, addr);
  }

 private:
  struct PerfSym {
    uint64_t start, size;
    std::string name;
  };

  void LoadPerfMap() {
    // The process writes this file: bounded in bytes, never a FIFO or a
    // device (a symlink to /dev/zero must not feed the agent forever).
    constexpr size_t kMaxPerfMapBytes = 64 << 20;
    std::string text;
    if (!ReadPerfMapFile(absl::StrFormat("/proc/%u/root/tmp/perf-%u.map", pid_, pid_),
                         kMaxPerfMapBytes, &text) &&
        !ReadPerfMapFile(absl::StrFormat("/tmp/perf-%u.map", pid_), kMaxPerfMapBytes, &text)) {
      return;
    }
    std::vector<PerfSym> syms;
    for (PerfMapSymbol& s : ParsePerfMap(text, PerfMapLimits{})) {
      syms.push_back(PerfSym{s.start, s.size, std::move(s.name)});
    }
    perf_map_ = std::move(syms);
    perf_map_path_ = absl::StrFormat("/tmp/perf-%u.map", pid_);
  }

  uint32_t pid_;
  ModuleCache* modules_;
  std::vector<Mapping> maps_;
  std::vector<PerfSym> perf_map_;
  std::string perf_map_path_;
};

class BccSymbolizer final : public Symbolizer {
 public:
  BccSymbolizer(size_t max_module_bytes, std::unique_ptr<DebuginfodFetcher> fetcher)
      : fetcher_(std::move(fetcher)), modules_(max_module_bytes, fetcher_.get()) {}
  uint64_t module_evictions() const override { return modules_.evictions(); }
  bool Poll() override { return modules_.Poll(); }
  DebuginfodStats debuginfod_stats() const override {
    return fetcher_ != nullptr ? fetcher_->stats() : DebuginfodStats{};
  }
  std::unique_ptr<ProcessSymbols> OpenProcess(uint32_t pid) override {
    return std::make_unique<ElfProcessSymbols>(pid, &modules_);
  }
  // kallsyms is read on first use, once: a module loaded later resolves to
  // its nearest preceding symbol (documented limit).
  Frame ResolveKernel(uint64_t addr) override { return kernel_.Resolve(addr); }

 private:
  std::unique_ptr<DebuginfodFetcher> fetcher_;  // before modules_, which points to it
  ModuleCache modules_;
  KernelSymbols kernel_;
};

class ProcProcessInfo final : public ProcessInfo {
 public:
  bool Identify(uint32_t pid, ProcessIdentity* out) override {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    std::string text;
    if (!ReadFileBounded(path, 4096, &text)) return false;
    const std::optional<uint64_t> start_time = ParseStatStartTime(text);
    if (!start_time) return false;
    out->start_time = *start_time;
    snprintf(path, sizeof(path), "/proc/%u/exe", pid);
    struct stat st;
    out->exe_inode = stat(path, &st) == 0 ? st.st_ino : 0;
    return true;
  }
};

}  // namespace

std::unique_ptr<Symbolizer> NewBccSymbolizer(size_t max_module_bytes) {
  return std::make_unique<BccSymbolizer>(max_module_bytes, nullptr);
}

std::unique_ptr<Symbolizer> NewBccSymbolizer(const SymbolCacheConfig& config) {
  std::unique_ptr<DebuginfodFetcher> fetcher;
  const std::string urls = EffectiveDebuginfodUrls(config.debuginfod, getenv("DEBUGINFOD_URLS"));
  if (!urls.empty()) {
    absl::Status s = PrepareCacheDir(config.debuginfod.cache_dir);
    absl::StatusOr<FetchFn> fetch = s.ok() ? NewLibdebuginfodFetch(config.debuginfod, urls) : s;
    if (fetch.ok()) {
      fetcher = std::make_unique<DebuginfodFetcher>(config.debuginfod, *std::move(fetch));
    } else {
      // The profiler works without it: one line, and stripped modules stay
      // module+offset (vigil status shows debuginfod off).
      fprintf(stderr, "vigild: debuginfod off: %s\n",
              std::string(fetch.status().message()).c_str());
    }
  }
  return std::make_unique<BccSymbolizer>(config.max_module_bytes, std::move(fetcher));
}
std::unique_ptr<ProcessInfo> NewProcProcessInfo() { return std::make_unique<ProcProcessInfo>(); }

SymbolCache::SymbolCache(std::unique_ptr<Symbolizer> backend, std::unique_ptr<ProcessInfo> info,
                         const SymbolCacheConfig& config)
    : backend_(std::move(backend)), info_(std::move(info)), config_(config) {}

void SymbolCache::BeginInterval() {
  if (backend_->Poll()) ForgetUnnamed();
  checked_this_interval_.clear();
  for (auto& [pid, e] : procs_) {
    e->reloaded_this_interval = false;
    e->seen_this_interval = false;
  }
}

void SymbolCache::ForgetUnnamed() {
  for (auto& [pid, e] : procs_) {
    for (auto it = e->memo.begin(); it != e->memo.end();) {
      if (!it->second->named()) {
        e->memo.erase(it++);
        --user_memo_addrs_;
      } else {
        ++it;
      }
    }
  }
}

void SymbolCache::Evict(uint32_t pid) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  lru_.erase(it->second->lru_pos);
  user_memo_addrs_ -= it->second->memo.size();
  procs_.erase(it);
}

void SymbolCache::ClearUserMemos() {
  for (auto& [pid, e] : procs_) e->memo.clear();
  user_memo_addrs_ = 0;
  ++stats_.memo_resets;
}

SymbolCache::Entry* SymbolCache::Lookup(uint32_t pid) {
  auto it = procs_.find(pid);
  Entry* e = it == procs_.end() ? nullptr : it->second.get();
  if (checked_this_interval_.insert(pid).second) {
    // First sample of this pid in the interval: is it still the process we
    // cached? A gone process keeps its entry (its last samples need names).
    ProcessIdentity now;
    const bool alive = info_->Identify(pid, &now);
    if (e != nullptr && alive) {
      if (now.start_time != e->id.start_time) {
        ++stats_.evicted_exit;
        Evict(pid);
        e = nullptr;
      } else if (now.exe_inode != 0 && now.exe_inode != e->id.exe_inode) {
        // exe_inode 0: /proc/PID/exe is gone because the process is
        // exiting (its maps are empty too). Not an exec: its last samples
        // keep the tables we have.
        ++stats_.evicted_exec;
        Evict(pid);
        e = nullptr;
      }
    }
    if (e == nullptr) {
      if (procs_.size() >= config_.max_processes && !lru_.empty()) {
        ++stats_.evicted_capacity;
        Evict(lru_.back());
      }
      auto fresh = std::make_unique<Entry>();
      fresh->pid = pid;
      fresh->id = now;  // zero identity if the process is already gone
      fresh->symbols = backend_->OpenProcess(pid);
      lru_.push_front(pid);
      fresh->lru_pos = lru_.begin();
      e = fresh.get();
      procs_[pid] = std::move(fresh);
    }
  }
  if (e == nullptr) return nullptr;  // evicted for capacity within this interval
  e->seen_this_interval = true;
  lru_.splice(lru_.begin(), lru_, e->lru_pos);
  return e;
}

FramePtr SymbolCache::User(uint32_t pid, uint64_t addr) {
  Entry* e = Lookup(pid);
  if (e == nullptr) {
    ++stats_.unnamed_frames;
    return Intern(Frame::Of("", kUnknownModule, addr));
  }
  auto it = e->memo.find(addr);
  if (it != e->memo.end()) return it->second;
  Frame f = e->symbols->Resolve(addr);
  if (f.module() == kUnknownModule && !e->reloaded_this_interval) {
    // Outside every mapping known when the tables were read: the process
    // may have mapped a library since. Re-read its maps, at most once per
    // interval.
    e->reloaded_this_interval = true;
    e->symbols->Reload();
    f = e->symbols->Resolve(addr);
  }
  if (!f.named()) ++stats_.unnamed_frames;
  FramePtr ptr = Intern(std::move(f));
  // An address outside every mapping is not remembered: the next interval
  // re-reads the maps (a process seen mid-exec, a library mapped since).
  if (ptr->module() == kUnknownModule) return ptr;
  if (e->memo.size() >= config_.max_addrs_per_process) {
    user_memo_addrs_ -= e->memo.size();
    e->memo.clear();
    ++stats_.memo_resets;
  }
  if (user_memo_addrs_ >= config_.max_memo_addrs) ClearUserMemos();
  e->memo.emplace(addr, ptr);
  ++user_memo_addrs_;
  return ptr;
}

FramePtr SymbolCache::Intern(Frame f) {
  f.symbol = Share(f.symbol);
  return std::make_shared<const Frame>(std::move(f));
}

std::shared_ptr<const FrameSymbol> SymbolCache::Share(const std::shared_ptr<const FrameSymbol>& s) {
  if (s == nullptr) return s;
  // Only named frames get function ids. Every unnamed address would be a
  // "function" of its own, and the table is never evicted (the store's
  // intervals hold ids): under a steady load whose stacks cross code without
  // frame pointers, the table grew by ~70 ids a second and vigild's RSS with
  // it (the load test, with functions_interned in vigil status). Unnamed
  // frames merge by (module+offset, module) in the hot merge instead, and
  // share one symbol per module.
  if (s->name.empty()) {
    auto it = unnamed_symbols_.find(s->module);
    if (it != unnamed_symbols_.end()) return it->second;
    if (unnamed_symbols_.size() >= kMaxUnnamedModules) unnamed_symbols_.clear();
    unnamed_symbols_.emplace(s->module, s);
    return s;
  }
  auto it = fn_ids_.find(std::make_pair(absl::string_view(s->name), absl::string_view(s->module)));
  if (it != fn_ids_.end()) return fn_symbols_[it->second - 1];
  if (fn_symbols_.size() >= config_.max_functions) {
    ++stats_.functions_overflow;
    return s;  // fn_id 0: merged by name
  }
  FrameSymbol copy = *s;
  copy.fn_id = static_cast<uint32_t>(fn_symbols_.size()) + 1;
  auto shared = std::make_shared<const FrameSymbol>(std::move(copy));
  fn_symbols_.push_back(shared);
  fn_ids_.emplace(
      std::make_pair(absl::string_view(shared->name), absl::string_view(shared->module)),
      shared->fn_id);
  return shared;
}

FramePtr SymbolCache::Kernel(uint64_t addr) {
  auto it = kernel_memo_.find(addr);
  if (it != kernel_memo_.end()) return it->second;
  Frame f = backend_->ResolveKernel(addr);
  if (!f.named()) ++stats_.unnamed_frames;
  // The kernel's text is shared by every process: one larger memo.
  if (kernel_memo_.size() >= 8ull * config_.max_addrs_per_process) {
    kernel_memo_.clear();
    ++stats_.memo_resets;
  }
  FramePtr ptr = Intern(std::move(f));
  kernel_memo_.emplace(addr, ptr);
  return ptr;
}

void SymbolCache::EndInterval() {
  std::vector<uint32_t> drop;
  for (auto& [pid, e] : procs_) {
    if (e->seen_this_interval) continue;
    ProcessIdentity now;
    if (!info_->Identify(pid, &now) || now.start_time != e->id.start_time) {
      ++stats_.evicted_exit;
      drop.push_back(pid);
    } else if (now.exe_inode != 0 && now.exe_inode != e->id.exe_inode) {
      ++stats_.evicted_exec;
      drop.push_back(pid);
    }
  }
  for (uint32_t pid : drop) Evict(pid);
}

SymbolCacheStats SymbolCache::stats() const {
  SymbolCacheStats s = stats_;
  s.processes = procs_.size();
  s.module_evictions = backend_->module_evictions();
  s.debuginfod = backend_->debuginfod_stats();
  s.functions = fn_symbols_.size();
  s.memo_addrs = user_memo_addrs_ + kernel_memo_.size();
  return s;
}

}  // namespace vigil
