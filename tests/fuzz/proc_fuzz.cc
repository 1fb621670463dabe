// libFuzzer target: the agent's /proc and cgroupfs parsers, on text other
// local users shape (file names in maps, thread names in stat, cgroup
// paths, fd link targets, command lines). The first byte picks the parser,
// the rest is the file's text:
//   0 /proc/PID/maps, the unwinder's view (ParseExecMappings)
//   1 /proc/PID/maps, the symbolizer's view (ParseFileMappings)
//   2 /proc/PID/stat (ParseStatStartTime), and a stat line built around the
//     input as the thread's name, whose starttime must come back exact
//   3 /proc/self/mountinfo (ParseMemoryMounts)
//   4 a cgroup counter file (ParseCgroupBytes)
//   5 a /proc/PID/fd link target (ParseSocketInode), and a socket link
//     built from the input's number, which must come back exact
//   6 the spin detector's thread files, schedstat and status, split at the
//     first NUL (ProcReader over a fake /proc tree)
//   7 /proc/PID/cgroup and the container id in it (ProcReader::Cgroup,
//     ContainerIdFromCgroup)
//   8 /proc/PID/cmdline (ProcReader::Cmdline)
// Properties: no crash or sanitizer report; what comes out is consistent
// (ranges ordered, names non-empty, ids 64 lowercase hex digits, no NUL in a
// command line). Built and run by tests/fuzz/run.sh.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/memory/cgroup_reader.h"
#include "agent/profile/proc_maps.h"
#include "agent/profile/unwind_tables.h"
#include "agent/spin/spin_signal.h"
#include "agent/udpdrops/owner_cache.h"

namespace vigil {
namespace {

[[noreturn]] void Fail(const char* what, absl::string_view detail) {
  fprintf(stderr, "%s: %.300s\n", what, std::string(detail).c_str());
  __builtin_trap();
}

// A fake /proc with one process (pid 1, thread 1), on tmpfs when there is
// one: ProcReader only reads files under its root.
struct FakeProc;
FakeProc& Proc();

struct FakeProc {
  std::string root;
  std::unique_ptr<ProcReader> reader;

  FakeProc() {
    char tmpl[] = "/dev/shm/vigil-proc-fuzz-XXXXXX";
    char tmpl2[] = "/tmp/vigil-proc-fuzz-XXXXXX";
    const char* dir = mkdtemp(tmpl);
    if (dir == nullptr) dir = mkdtemp(tmpl2);
    if (dir == nullptr) Fail("mkdtemp", strerror(errno));
    root = dir;
    for (const char* sub : {"/1", "/1/task", "/1/task/1"}) {
      mkdir((root + sub).c_str(), 0700);
    }
    reader = NewProcReader(root);
    // libFuzzer ends with exit(): leave no tree behind in /dev/shm.
    atexit([] { Proc().Remove(); });
  }
  void Remove() const {
    for (const char* f : {"/1/task/1/schedstat", "/1/task/1/status", "/1/cgroup", "/1/cmdline"}) {
      unlink((root + f).c_str());
    }
    for (const char* d : {"/1/task/1", "/1/task", "/1", ""}) rmdir((root + d).c_str());
  }
  void Write(const std::string& rel, absl::string_view text) const {
    const int fd = open((root + rel).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) Fail("open", rel);
    if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      Fail("write", rel);
    close(fd);
  }
};

FakeProc& Proc() {
  static FakeProc* p = new FakeProc();
  return *p;
}

void Stat(absl::string_view text) {
  ParseStatStartTime(text);
  // The input as the thread's name (any byte but NUL, as prctl allows; the
  // kernel keeps 15, a test may write more): fields after it stay exact.
  std::string comm(text.substr(0, 64));
  for (char& c : comm) {
    if (c == '\0') c = '?';
  }
  const std::string line = absl::StrCat(
      "4242 (", comm, ") S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 777123 ",
      "12345678 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
  const std::optional<uint64_t> t = ParseStatStartTime(line);
  if (!t || *t != 777123) Fail("starttime lost behind the name", line);
}

void Socket(absl::string_view text) {
  ParseSocketInode(text);
  uint64_t n = 0;
  for (size_t i = 0; i < text.size() && i < 8; ++i) n = n << 8 | static_cast<uint8_t>(text[i]);
  const std::optional<uint64_t> back = ParseSocketInode(absl::StrCat("socket:[", n, "]"));
  if (!back || *back != n) Fail("socket inode lost", absl::StrCat(n));
}

void SpinThread(absl::string_view text) {
  const size_t nul = text.find('\0');
  FakeProc& p = Proc();
  p.Write("/1/task/1/schedstat", text.substr(0, nul));
  p.Write("/1/task/1/status", nul == absl::string_view::npos ? "" : text.substr(nul + 1));
  ThreadCounters c;
  p.reader->ReadThread(1, 1, &c);
}

void SpinCgroup(absl::string_view text) {
  FakeProc& p = Proc();
  p.Write("/1/cgroup", text);
  const std::string cg = p.reader->Cgroup(1);
  for (const std::string& s : {cg, std::string(text)}) {
    const std::string id = ContainerIdFromCgroup(s);
    if (id.empty()) continue;
    if (id.size() != 64) Fail("container id length", id);
    for (char c : id) {
      if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) Fail("container id", id);
    }
  }
}

void SpinCmdline(absl::string_view text) {
  FakeProc& p = Proc();
  p.Write("/1/cmdline", text);
  const std::string cmd = p.reader->Cmdline(1);
  if (cmd.find('\0') != std::string::npos) Fail("NUL in a command line", cmd);
  if (cmd.size() > 4096) Fail("command line over 4 KiB", absl::StrCat(cmd.size()));
}

}  // namespace
}  // namespace vigil

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 9) {
    case 0:
      for (const vigil::ExecMapping& m : vigil::ParseExecMappings(std::string(text))) {
        if (m.end <= m.start) vigil::Fail("exec mapping", m.path);
      }
      break;
    case 1:
      for (const vigil::FileMapping& m : vigil::ParseFileMappings(text)) {
        if (m.path.empty()) vigil::Fail("file mapping without a path", "");
      }
      break;
    case 2:
      vigil::Stat(text);
      break;
    case 3: {
      const vigil::MemoryMounts m = vigil::ParseMemoryMounts(text);
      for (const std::string& p : {m.v1, m.v2}) {
        if (p.find(' ') != std::string::npos || p.find('\n') != std::string::npos) {
          vigil::Fail("mount point with a separator", p);
        }
      }
      break;
    }
    case 4: {
      const std::optional<uint64_t> v = vigil::ParseCgroupBytes(text);
      if (v && *v == 0 && absl::StripAsciiWhitespace(text) != "max") {
        // 0 bytes is fine only as written ("0", "00", "+0").
        for (char c : absl::StripAsciiWhitespace(text)) {
          if (c != '0' && c != '+') vigil::Fail("0 from", text);
        }
      }
      break;
    }
    case 5:
      vigil::Socket(text);
      break;
    case 6:
      vigil::SpinThread(text);
      break;
    case 7:
      vigil::SpinCgroup(text);
      break;
    default:
      vigil::SpinCmdline(text);
      break;
  }
  return 0;
}
