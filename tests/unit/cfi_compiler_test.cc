// The CFI compiler against binutils' readelf, an independent DWARF reader:
// for every row readelf prints for Debian's own xz and libc, the compiled
// table must give the same CFA rule, rbp rule and end-of-stack marker. Plus
// the vDSO, and hostile input (truncated files, flipped bytes, garbage).
#include "agent/profile/cfi_compiler.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/profile/unwind_tables.h"
#include "tests/test_util.h"

namespace vigil {
namespace {

const unwind_row* Lookup(const std::vector<unwind_row>& rows, uint64_t pc) {
  auto it = std::upper_bound(rows.begin(), rows.end(), pc,
                             [](uint64_t p, const unwind_row& r) { return p < r.pc; });
  return it == rows.begin() ? nullptr : &*std::prev(it);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CompiledCfi CompilePath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  absl::StatusOr<CompiledCfi> c = CompileCfiFromFd(fd, CfiLimits{});
  close(fd);
  EXPECT_TRUE(c.ok()) << path << ": " << c.status();
  return c.ok() ? *std::move(c) : CompiledCfi{};
}

// Every row of `readelf --debug-dump=frames-interp` for the file's FDEs,
// checked against the compiled table. Returns the rows checked.
uint64_t CheckAgainstReadelf(const std::string& path) {
  const CompiledCfi cfi = CompilePath(path);
  test::CommandResult r =
      test::RunCommand({"readelf", "--debug-dump=frames-interp", path}, absl::Seconds(120));
  // readelf exits 1 for libc without a word (it cannot follow the
  // .gnu_debuglink); the rows it printed are complete.
  EXPECT_NE(r.exit_code, -1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, " FDE ")) << r.err;
  uint64_t checked = 0, mismatches = 0;
  bool in_fde = false;
  std::vector<std::string> columns;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StrContains(line, " FDE ")) {
      in_fde = true;
      columns.clear();
      continue;
    }
    if (absl::StrContains(line, " CIE") || absl::StripAsciiWhitespace(line).empty()) {
      in_fde = false;
      continue;
    }
    if (!in_fde) continue;
    std::vector<std::string> f =
        absl::StrSplit(absl::StripAsciiWhitespace(line), ' ', absl::SkipEmpty());
    if (f.empty()) continue;
    if (f[0] == "LOC") {
      columns = f;
      continue;
    }
    uint64_t loc = 0;
    if (columns.empty() || f.size() != columns.size() || !absl::SimpleHexAtoi(f[0], &loc)) continue;
    std::string cfa, rbp = "s", ra;
    for (size_t i = 1; i < f.size(); ++i) {
      if (columns[i] == "CFA") cfa = f[i];
      if (columns[i] == "rbp") rbp = f[i];
      if (columns[i] == "ra") ra = f[i];
    }
    const unwind_row* row = Lookup(cfi.rows, loc);
    ++checked;
    if (row == nullptr) {
      ++mismatches;
      ADD_FAILURE() << path << ": no row at 0x" << std::hex << loc;
      continue;
    }
    const int kind = row->kind & 0xf;
    const int rbp_rule = row->kind >> 4;
    std::string want_cfa;
    bool ok = true;
    if (ra == "u") {
      ok = kind == UNWIND_CFA_END;
    } else if (ra != "c-8") {
      ok = kind == UNWIND_CFA_INVALID;  // the walker never follows these
    } else if (cfa == "exp") {
      ok = kind == UNWIND_CFA_PLT || kind == UNWIND_CFA_INVALID;
    } else if (absl::StartsWith(cfa, "rsp+") || absl::StartsWith(cfa, "rbp+")) {
      int64_t off = 0;
      ok = absl::SimpleAtoi(cfa.substr(4), &off);
      const int want_kind = cfa[1] == 's' ? UNWIND_CFA_RSP : UNWIND_CFA_RBP;
      if (off % 8 != 0) {
        ok = ok && kind == UNWIND_CFA_INVALID;
      } else {
        ok = ok && kind == want_kind && row->cfa_off * 8 == off;
        // readelf: "u" (no rule yet) and "s" are both "unchanged".
        if (rbp == "u" || rbp == "s") {
          ok = ok && rbp_rule == UNWIND_RBP_SAME;
        } else if (absl::StartsWith(rbp, "c")) {
          int64_t roff = 0;
          ok = ok && absl::SimpleAtoi(rbp.substr(1), &roff) && rbp_rule == UNWIND_RBP_OFFSET &&
               row->rbp_off * 8 == roff;
        } else {
          ok = ok && rbp_rule == UNWIND_RBP_UNKNOWN;
        }
      }
    } else {
      ok = kind == UNWIND_CFA_INVALID;
    }
    if (!ok && ++mismatches <= 10) {
      ADD_FAILURE() << path << " at 0x" << std::hex << loc << std::dec << ": readelf CFA=" << cfa
                    << " rbp=" << rbp << " ra=" << ra << "; compiled kind=" << kind
                    << " cfa_off=" << row->cfa_off * 8 << " rbp=" << rbp_rule << "/"
                    << row->rbp_off * 8;
    }
  }
  EXPECT_EQ(mismatches, 0u) << path;
  return checked;
}

TEST(CfiCompilerTest, DebianXzMatchesReadelfRowForRow) {
  EXPECT_GT(CheckAgainstReadelf("/usr/bin/xz"), 500u);
}

TEST(CfiCompilerTest, DebianLibcMatchesReadelfRowForRow) {
  EXPECT_GT(CheckAgainstReadelf("/lib/x86_64-linux-gnu/libc.so.6"), 20000u);
}

// A program built without unwind tables (-g only): its functions are in
// .debug_frame, crt's _start in .eh_frame; both tables feed one row set.
TEST(CfiCompilerTest, DebugFrameOnlyFunctionsMatchReadelfRowForRow) {
  const std::string path = VIGIL_TEST_UNWIND_DEBUGFRAME;
  const CompiledCfi c = CompilePath(path);
  EXPECT_GE(c.debug_frame_fdes, 5u);
  EXPECT_GT(CheckAgainstReadelf(path), 20u);
  test::CommandResult nm = test::RunCommand({"nm", path});
  ASSERT_EQ(nm.exit_code, 0) << nm.err;
  uint64_t inner = 0;
  for (absl::string_view line : absl::StrSplit(nm.out, '\n')) {
    if (absl::EndsWith(line, " _ZN12_GLOBAL__N_110ChainInnerEm")) {
      ASSERT_TRUE(absl::SimpleHexAtoi(line.substr(0, line.find(' ')), &inner)) << line;
    }
  }
  ASSERT_NE(inner, 0u) << nm.out;
  // Without .debug_frame this address has no row and the walk would stop.
  const unwind_row* r = Lookup(c.rows, inner);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->kind & 0xf, UNWIND_CFA_RSP);
  EXPECT_EQ(r->cfa_off * 8, 8);
}

TEST(CfiCompilerTest, EntryPointsEndTheStack) {
  // _start of python3.11 and glibc's thread start (clone3) mark the return
  // address undefined: the walker's "complete" signal.
  const CompiledCfi py = CompilePath("/usr/bin/python3.11");
  test::CommandResult h = test::RunCommand({"readelf", "-h", "/usr/bin/python3.11"});
  uint64_t entry = 0;
  for (absl::string_view line : absl::StrSplit(h.out, '\n')) {
    if (absl::StrContains(line, "Entry point address:")) {
      std::string v(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
      ASSERT_TRUE(absl::SimpleHexAtoi(v, &entry)) << v;
    }
  }
  ASSERT_NE(entry, 0u);
  const unwind_row* r = Lookup(py.rows, entry + 4);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->kind & 0xf, UNWIND_CFA_END);
  const CompiledCfi libc = CompilePath("/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_GE(std::count_if(libc.rows.begin(), libc.rows.end(),
                          [](const unwind_row& x) { return (x.kind & 0xf) == UNWIND_CFA_END; }),
            2);
  EXPECT_GE(std::count_if(libc.rows.begin(), libc.rows.end(),
                          [](const unwind_row& x) { return (x.kind & 0xf) == UNWIND_CFA_PLT; }),
            1);
  EXPECT_TRUE(std::is_sorted(libc.rows.begin(), libc.rows.end(),
                             [](const unwind_row& a, const unwind_row& b) { return a.pc < b.pc; }));
}

TEST(CfiCompilerTest, TheVdsoCompiles) {
  const uint64_t base = getauxval(AT_SYSINFO_EHDR);
  ASSERT_NE(base, 0u);
  // The vDSO is at most a few pages; its ELF headers say how big.
  absl::StatusOr<CompiledCfi> c =
      CompileCfiFromMemory(reinterpret_cast<const void*>(base), 8192, CfiLimits{});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_GT(c->rows.size(), 5u);
  EXPECT_GT(c->fdes, 3u);
}

TEST(CfiCompilerTest, NoCfiIsNotFoundAndGarbageIsAnError) {
  const std::string junk(4096, 'x');
  absl::StatusOr<CompiledCfi> c = CompileCfiFromMemory(junk.data(), junk.size(), CfiLimits{});
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(CompileCfiFromMemory(junk.data(), 0, CfiLimits{}).ok());
}

TEST(CfiCompilerTest, TheRowLimitRefusesAFileInsteadOfCuttingIt) {
  const std::string xz = ReadFile("/usr/bin/xz");
  absl::StatusOr<CompiledCfi> c = CompileCfiFromMemory(xz.data(), xz.size(), CfiLimits{10});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
}

// fuzz.cfi_smoke found a file whose CFI names a register in the tens of
// millions: elfutils grows its frame state to that number, 1.7 GB in one
// lookup. Here xz's CIE gets DW_CFA_undefined of register 2^26 in place of
// its initial instructions; the file must be refused before libdw runs it.
TEST(CfiCompilerTest, AHugeRegisterNumberIsRefusedBeforeLibdwRunsIt) {
  std::string xz = ReadFile("/usr/bin/xz");
  // "zR", code align 1, data align -8, RA r16, aug len 1, pcrel|sdata4, then
  // def_cfa r7+8; offset r16 at cfa-8 (GCC's x86-64 CIE).
  const std::string cie("zR\0\x01\x78\x10\x01\x1b\x0c\x07\x08\x90\x01", 13);
  const size_t at = xz.find(cie);
  ASSERT_NE(at, std::string::npos) << "xz's CIE not found";
  xz.replace(at + 8, 5, std::string("\x07\x80\x80\x80\x20", 5));  // undefined r67108864
  absl::StatusOr<CompiledCfi> c = CompileCfiFromMemory(xz.data(), xz.size(), CfiLimits{});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "register 67108864")) << c.status();
}

// The file fuzz.cfi_smoke found (xz, mutated): its section walk stops at a
// broken entry, and the FDE with the huge register is reached only through
// .eh_frame_hdr's search table, as libdw reaches it. Refused, in no time.
TEST(CfiCompilerTest, TheFuzzersHugeRegisterFileIsRefused) {
  const std::string f = ReadFile(std::string(VIGIL_TEST_DATA_DIR) + "/cfi-huge-register.elf");
  ASSERT_GT(f.size(), 100000u);
  const absl::Time start = absl::Now();
  absl::StatusOr<CompiledCfi> c = CompileCfiFromMemory(f.data(), f.size(), CfiLimits{});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "register")) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

// Truncations and flipped bytes of a real file: every outcome is an error
// or a table, within the time bound, never a crash (run under ASan in the
// sanitizer stage too).
TEST(CfiCompilerTest, HostileFilesNeverCrashOrHang) {
  const std::string xz = ReadFile("/usr/bin/xz");
  ASSERT_GT(xz.size(), 4096u);
  std::mt19937_64 rng(12345);
  const absl::Time start = absl::Now();
  int ok = 0, failed = 0;
  for (int i = 0; i < 300; ++i) {
    std::string m = xz;
    if (i % 3 == 0) {
      m.resize(rng() % m.size());
    } else {
      const int flips = 1 + static_cast<int>(rng() % 64);
      for (int k = 0; k < flips; ++k) m[rng() % m.size()] = static_cast<char>(rng());
    }
    CfiLimits limits;
    limits.max_time = absl::Seconds(1);
    absl::StatusOr<CompiledCfi> c = CompileCfiFromMemory(m.data(), m.size(), limits);
    if (c.ok()) {
      ++ok;
      EXPECT_TRUE(
          std::is_sorted(c->rows.begin(), c->rows.end(),
                         [](const unwind_row& a, const unwind_row& b) { return a.pc < b.pc; }));
    } else {
      ++failed;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(120));
}

TEST(ExtentAllocatorTest, FirstFitWithQuarantineAndCoalescing) {
  ExtentAllocator a(100);
  uint32_t x = 0, y = 0, z = 0;
  ASSERT_TRUE(a.Allocate(40, &x));
  ASSERT_TRUE(a.Allocate(40, &y));
  EXPECT_EQ(x, 0u);
  EXPECT_EQ(y, 40u);
  EXPECT_FALSE(a.Allocate(30, &z));  // 20 left
  a.Free(x, 40);
  EXPECT_FALSE(a.Allocate(30, &z)) << "freed rows are quarantined until Release";
  a.Release();
  ASSERT_TRUE(a.Allocate(30, &z));
  EXPECT_EQ(z, 0u);
  a.Free(z, 30);
  a.Free(y, 40);
  a.Release();
  EXPECT_EQ(a.used(), 0u);
  ASSERT_TRUE(a.Allocate(100, &z)) << "neighbours coalesce";
  EXPECT_FALSE(a.Allocate(0, &z));
}

TEST(ExecMappingsTest, ParsesExecutableLinesOnly) {
  const std::string maps =
      "55d0c1000000-55d0c1200000 r--p 00000000 fd:01 1234 /usr/bin/python3.11\n"
      "55d0c1200000-55d0c1500000 r-xp 00200000 fd:01 1234 /usr/bin/python3.11\n"
      "7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n"
      "7f0000002000-7f0000003000 r-xp 00001000 08:02 99 /tmp/with space (deleted)\n"
      "garbage line\n"
      "7fff00000000-7fff00002000 r-xp 00000000 00:00 0 [vdso]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n";
  std::vector<ExecMapping> m = ParseExecMappings(maps);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].start, 0x55d0c1200000u);
  EXPECT_EQ(m[0].offset, 0x200000u);
  EXPECT_EQ(m[0].dev_major, 0xfdu);
  EXPECT_EQ(m[0].inode, 1234u);
  EXPECT_EQ(m[0].path, "/usr/bin/python3.11");
  EXPECT_EQ(m[1].inode, 0u);
  EXPECT_EQ(m[2].path, "/tmp/with space (deleted)");
  EXPECT_EQ(m[3].path, "[vdso]");
}

}  // namespace
}  // namespace vigil
