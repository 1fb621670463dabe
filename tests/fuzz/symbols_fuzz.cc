// libFuzzer target: the symbolizer's own parsers, on input any local user
// controls: /tmp/perf-PID.map text, an ELF file's headers, notes and
// .gnu_debuglink (ReadElfInfo, through a memfd), and MiniDebugInfo (both the
// raw bytes as an xz stream, and the bytes xz-compressed so the embedded
// ELF .symtab parser sees them). Every input ends in symbols or an error,
// with no sanitizer report. Built and run by tests/fuzz/run.sh.
#include <lzma.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/profile/elf_info.h"
#include "agent/profile/perf_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);

  vigil::PerfMapLimits limits;
  limits.max_symbols = 4096;
  limits.max_name = 64;
  const std::vector<vigil::PerfMapSymbol> syms = vigil::ParsePerfMap(bytes, limits);
  for (size_t i = 0; i < syms.size(); ++i) {
    if (syms[i].size == 0 || syms[i].name.size() > limits.max_name) __builtin_trap();
    if (i > 0 && syms[i - 1].start > syms[i].start) __builtin_trap();
  }

  const int fd = memfd_create("elf", MFD_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, data, size) == static_cast<ssize_t>(size)) {
      absl::StatusOr<vigil::ElfInfo> info = vigil::ReadElfInfo(fd);
      if (info.ok() && info->debugdata_size > 0) {
        vigil::ReadMiniDebugInfo(fd, *info, 1 << 20, 4 << 20, [](const char*, uint64_t, uint64_t) {
        }).IgnoreError();
      }
    }
    close(fd);
  }

  auto count = [](const char* name, uint64_t, uint64_t) {
    if (name == nullptr) __builtin_trap();
  };
  vigil::ParseMiniDebugInfo(bytes, 4 << 20, count).IgnoreError();
  // The input as the ELF image inside a valid xz stream.
  std::vector<uint8_t> xz(lzma_stream_buffer_bound(size));
  size_t out = 0;
  if (lzma_easy_buffer_encode(0, LZMA_CHECK_CRC32, nullptr, data, size, xz.data(), &out,
                              xz.size()) == LZMA_OK) {
    vigil::ParseMiniDebugInfo(absl::string_view(reinterpret_cast<const char*>(xz.data()), out),
                              4 << 20, count)
        .IgnoreError();
  }
  return 0;
}
