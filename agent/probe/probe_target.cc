#include "agent/probe/probe_target.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/read_file.h"
#include "common/unique_c.h"
#include "common/unique_fd.h"

namespace vigil {
namespace {

std::string Demangle(const char* name) {
  if (strncmp(name, "_Z", 2) != 0) return name;
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> d(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                           std::free);
  return status == 0 && d ? std::string(d.get()) : std::string(name);
}

// "ns::f(int)" -> "ns::f": users type names without the parameter list.
std::string WithoutParams(const std::string& demangled) {
  size_t p = demangled.find('(');
  return p == std::string::npos || p == 0 ? demangled : demangled.substr(0, p);
}

bool Matches(const std::string& pattern, bool glob, const char* mangled,
             const std::string& demangled) {
  if (!glob) {
    return pattern == mangled || pattern == demangled || pattern == WithoutParams(demangled);
  }
  return fnmatch(pattern.c_str(), mangled, 0) == 0 ||
         fnmatch(pattern.c_str(), demangled.c_str(), 0) == 0 ||
         fnmatch(pattern.c_str(), WithoutParams(demangled).c_str(), 0) == 0;
}

// Splits "LIB:FUNCTION" at the first ':' that is not half of a C++ "::".
size_t LibColon(absl::string_view t) {
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] != ':') continue;
    if (i + 1 < t.size() && t[i + 1] == ':') {
      ++i;  // skip "::"
      continue;
    }
    return i;
  }
  return absl::string_view::npos;
}

}  // namespace

// Errors name the file as the user named it, not /proc/PID/root/...
static absl::Status AsSeen(const absl::Status& s, const ProbeTarget& t) {
  return absl::Status(s.code(), absl::StrReplaceAll(s.message(), {{t.open_path, t.binary}}));
}

bool ProbeSpec::glob() const { return !usdt && function.find_first_of("*?[") != std::string::npos; }

absl::StatusOr<ProbeSpec> ParseProbeSpec(absl::string_view target) {
  ProbeSpec s;
  if (target.empty())
    return absl::InvalidArgumentError(
        "probe: no target (FUNCTION, LIB:FUNCTION or usdt:LIB:PROVIDER:NAME)");
  if (target.size() > 4096)
    return absl::InvalidArgumentError("probe: target longer than 4096 bytes");
  if (absl::StartsWith(target, "usdt:")) {
    std::vector<std::string> parts = absl::StrSplit(target.substr(5), ':');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "probe: \"", target,
          "\": expected usdt:LIB:PROVIDER:NAME (e.g. usdt:python3.11:python:gc__start)"));
    }
    s.usdt = true;
    s.lib = parts[0];
    s.provider = parts[1];
    s.probe = parts[2];
    return s;
  }
  size_t colon = LibColon(target);
  if (colon != absl::string_view::npos) {
    s.lib = std::string(target.substr(0, colon));
    s.function = std::string(target.substr(colon + 1));
    if (s.lib.empty() || s.function.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("probe: \"", target, "\": expected LIB:FUNCTION (e.g. libc:malloc)"));
    }
  } else {
    s.function = std::string(target);
  }
  return s;
}

absl::StatusOr<std::vector<ElfFunction>> FindElfFunctions(const std::string& path,
                                                          const std::string& pattern, bool glob,
                                                          size_t max_symbols) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("probe: ", path, ": ", strerror(errno)));
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("probe: ", path, " is not a regular file"));
  }
  elf_version(EV_CURRENT);
  // READ_MMAP: pages are read only where sections are touched, so a large
  // file costs what its symbol tables need, not its size.
  UniqueC<Elf, elf_end> elf(elf_begin(fd.get(), ELF_C_READ_MMAP, nullptr));
  GElf_Ehdr ehdr;
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF || gelf_getehdr(elf.get(), &ehdr) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("probe: ", path, " is not an ELF file"));
  }
  // The loadable segments: a symbol's address -> its file offset.
  struct Seg {
    uint64_t vaddr, memsz, offset;
  };
  std::vector<Seg> segs;
  size_t nphdr = 0;
  if (elf_getphdrnum(elf.get(), &nphdr) == 0) {
    for (size_t i = 0; i < nphdr && i < 4096; ++i) {
      GElf_Phdr ph;
      if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr) continue;
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
        segs.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset});
    }
  }
  std::map<uint64_t, ElfFunction> found;  // by address: .symtab and .dynsym overlap
  size_t read = 0;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) continue;
    if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) continue;
    if (sh.sh_entsize == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    const size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < n && read < max_symbols; ++i, ++read) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) break;
      const int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
          sym.st_value == 0 || sym.st_size == 0) {
        continue;
      }
      const char* name = elf_strptr(elf.get(), sh.sh_link, sym.st_name);
      if (name == nullptr || *name == '\0') continue;
      // Cheap reject before demangling: an exact C name must be equal.
      if (!glob && strncmp(name, "_Z", 2) != 0 && pattern != name) continue;
      std::string demangled = Demangle(name);
      if (!Matches(pattern, glob, name, demangled)) continue;
      if (found.count(sym.st_value)) continue;
      ElfFunction f;
      f.name = std::move(demangled);
      f.address = sym.st_value;
      f.file_offset = sym.st_value;  // ET_REL-like fallback; fixed below
      bool placed = false;
      for (const Seg& s : segs) {
        if (sym.st_value >= s.vaddr && sym.st_value < s.vaddr + s.memsz) {
          f.file_offset = sym.st_value - s.vaddr + s.offset;
          placed = true;
          break;
        }
      }
      if (!placed) continue;  // not in executable code: nothing to probe
      found.emplace(sym.st_value, std::move(f));
    }
  }
  std::vector<ElfFunction> out;
  out.reserve(found.size());
  for (auto& [addr, f] : found) out.push_back(std::move(f));
  return out;
}

absl::StatusOr<std::string> MatchLibrary(const std::vector<FileMapping>& maps,
                                         absl::string_view lib) {
  std::set<std::string> exact, prefix;
  for (const FileMapping& m : maps) {
    if (m.path.empty() || m.path[0] != '/') continue;
    if (m.path == lib) return m.path;
    absl::string_view base = m.path;
    size_t slash = base.rfind('/');
    if (slash != absl::string_view::npos) base.remove_prefix(slash + 1);
    if (base == lib) {
      exact.insert(m.path);
    } else if (absl::StartsWith(base, absl::StrCat(lib, ".so")) ||
               absl::StartsWith(base, absl::StrCat(lib, "-"))) {
      prefix.insert(m.path);
    }
  }
  const std::set<std::string>& pick = exact.empty() ? prefix : exact;
  if (pick.empty()) return absl::NotFoundError("not mapped");
  if (pick.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat("probe: library \"", lib, "\" matches ",
                                                   absl::StrJoin(pick, ", "), "; give its path"));
  }
  return *pick.begin();
}

absl::StatusOr<ProbeTarget> ResolveProbeTarget(uint32_t pid, absl::string_view target,
                                               uint32_t max_functions) {
  absl::StatusOr<ProbeSpec> spec = ParseProbeSpec(target);
  if (!spec.ok()) return spec.status();
  ProbeTarget t;
  t.spec = *spec;
  if (pid == 0) return absl::InvalidArgumentError("probe: a pid is required");
  const std::string proc = absl::StrCat("/proc/", pid);
  std::string maps_text;
  // A process with many libraries has a few hundred KiB of maps.
  bool cut = false;
  if (!ReadFileBounded(proc + "/maps", 64 << 20, &maps_text, &cut)) {
    return absl::InvalidArgumentError(absl::StrCat("probe: pid ", pid, ": no such process"));
  }
  if (cut) DropPartialLine(&maps_text);
  char exe[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("probe: pid ", pid, " has no executable (exited, or a kernel thread)"));
  }
  exe[n] = '\0';
  std::vector<FileMapping> maps = ParseFileMappings(maps_text);

  if (t.spec.lib.empty()) {
    t.binary = exe;
  } else {
    absl::StatusOr<std::string> lib = MatchLibrary(maps, t.spec.lib);
    if (lib.ok()) {
      t.binary = *lib;
    } else if (lib.status().code() != absl::StatusCode::kNotFound) {
      return lib.status();
    } else if (t.spec.lib[0] == '/') {
      // Not mapped (yet): a library dlopen()ed later still gets its probes.
      t.binary = t.spec.lib;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("probe: pid ", pid, " maps no library \"", t.spec.lib, "\""));
    }
  }
  if (absl::EndsWith(t.binary, " (deleted)")) {
    return absl::InvalidArgumentError(
        absl::StrCat("probe: ", t.binary, ": the file was replaced since the process mapped it"));
  }
  t.open_path = absl::StrCat(proc, "/root", t.binary);

  if (t.spec.usdt) {
    // Check it is ELF here; libbpf reads the probe notes at attach.
    absl::StatusOr<std::vector<ElfFunction>> none = FindElfFunctions(t.open_path, "", false, 0);
    if (!none.ok()) return AsSeen(none.status(), t);
    return t;
  }
  absl::StatusOr<std::vector<ElfFunction>> fns =
      FindElfFunctions(t.open_path, t.spec.function, t.spec.glob());
  if (!fns.ok()) return AsSeen(fns.status(), t);
  if (fns->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("probe: no function ",
                                                   t.spec.glob() ? "matches \"" : "\"",
                                                   t.spec.function, "\" in ", t.binary));
  }
  if (fns->size() > max_functions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "probe: \"", t.spec.function, "\" matches ", fns->size(), " functions in ", t.binary,
        ", more than probe-max-functions (", max_functions, "); narrow the pattern"));
  }
  t.functions = *std::move(fns);
  return t;
}

}  // namespace vigil
