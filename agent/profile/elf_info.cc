#include "agent/profile/elf_info.h"

#include <elf.h>
#include <gelf.h>
#include <libelf.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/unique_c.h"

namespace vigil {
namespace {

// Bounds on what one file's headers may make us read. Real files have a
// dozen program headers and at most a few thousand sections
// (-ffunction-sections objects); a note segment is a few hundred bytes.
constexpr uint32_t kMaxPhdrs = 256;
constexpr uint32_t kMaxShdrs = 16384;
constexpr uint64_t kMaxNoteBytes = 64 << 10;
constexpr uint64_t kMaxShstrtabBytes = 1 << 20;
constexpr uint64_t kMaxDebuglinkBytes = 4096;
constexpr uint32_t kMaxBuildIdBytes = 64;

bool ReadAt(int fd, uint64_t off, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const ssize_t n = pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    off += static_cast<uint64_t>(n);
    len -= static_cast<size_t>(n);
  }
  return true;
}

// [off, off + len) lies inside a file of `size` bytes (no overflow).
bool Within(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

// Walks an ELF note area for the GNU build-id.
bool FindBuildId(const std::string& notes, uint64_t align, std::string* out) {
  if (align != 8) align = 4;
  uint64_t pos = 0;
  auto up = [align](uint64_t v) { return (v + align - 1) & ~(align - 1); };
  while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr nh;  // the same three 32-bit words in both classes
    memcpy(&nh, notes.data() + pos, sizeof(nh));
    pos += sizeof(nh);
    const uint64_t name_at = pos;
    const uint64_t desc_at = up(name_at + nh.n_namesz);
    const uint64_t next = up(desc_at + nh.n_descsz);
    // 32-bit sizes on a position within 64 KiB: the sums cannot overflow.
    if (desc_at + nh.n_descsz > notes.size()) return false;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        memcmp(notes.data() + name_at, "GNU", 4) == 0 && nh.n_descsz > 0 &&
        nh.n_descsz <= kMaxBuildIdBytes) {
      out->assign(notes.data() + desc_at, nh.n_descsz);
      return true;
    }
    pos = next;
  }
  return false;
}

template <typename Ehdr, typename Phdr, typename Shdr>
absl::StatusOr<ElfInfo> ReadClass(int fd, uint64_t file_size) {
  ElfInfo info;
  Ehdr eh;
  if (!ReadAt(fd, 0, &eh, sizeof(eh))) return absl::InvalidArgumentError("short ELF header");
  auto read_notes = [&](uint64_t off, uint64_t size, uint64_t align) {
    if (size == 0 || size > kMaxNoteBytes || !Within(off, size, file_size)) return false;
    std::string notes(size, '\0');
    if (!ReadAt(fd, off, notes.data(), size)) return false;
    return FindBuildId(notes, align, &info.build_id);
  };
  // Program headers: a loaded file's build-id note is in a PT_NOTE segment.
  if (eh.e_phoff != 0 && eh.e_phentsize == sizeof(Phdr) && eh.e_phnum <= kMaxPhdrs &&
      Within(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Phdr), file_size)) {
    std::vector<Phdr> ph(eh.e_phnum);
    if (!ReadAt(fd, eh.e_phoff, ph.data(), ph.size() * sizeof(Phdr))) {
      return absl::InvalidArgumentError("short program headers");
    }
    for (const Phdr& p : ph) {
      if (p.p_type == PT_NOTE && read_notes(p.p_offset, p.p_filesz, p.p_align)) break;
    }
  }
  if (eh.e_shoff == 0 || eh.e_shentsize != sizeof(Shdr)) return info;
  Shdr first;
  if (!Within(eh.e_shoff, sizeof(Shdr), file_size) ||
      !ReadAt(fd, eh.e_shoff, &first, sizeof(first)))
    return info;
  // Extended numbering: the real count and string-table index sit in
  // section 0 when they do not fit the header's 16-bit fields.
  uint64_t shnum = eh.e_shnum != 0 ? eh.e_shnum : first.sh_size;
  uint64_t shstrndx = eh.e_shstrndx != SHN_XINDEX ? eh.e_shstrndx : first.sh_link;
  if (shnum == 0 || shnum > kMaxShdrs || shstrndx >= shnum ||
      !Within(eh.e_shoff, shnum * sizeof(Shdr), file_size)) {
    return info;
  }
  std::vector<Shdr> sh(shnum);
  if (!ReadAt(fd, eh.e_shoff, sh.data(), sh.size() * sizeof(Shdr))) return info;
  const Shdr& strs = sh[shstrndx];
  std::string names;
  if (strs.sh_type != SHT_NOBITS && strs.sh_size <= kMaxShstrtabBytes &&
      Within(strs.sh_offset, strs.sh_size, file_size)) {
    names.resize(strs.sh_size);
    if (!ReadAt(fd, strs.sh_offset, names.data(), names.size())) names.clear();
  }
  auto name_of = [&names](uint64_t at) -> absl::string_view {
    if (at >= names.size()) return {};
    const size_t end = names.find('\0', at);
    if (end == std::string::npos) return {};
    return absl::string_view(names).substr(at, end - at);
  };
  for (const Shdr& s : sh) {
    if (s.sh_type == SHT_SYMTAB) info.has_symtab = true;
    if (s.sh_type == SHT_NOBITS) continue;  // debug files keep headers, not bytes
    const absl::string_view name = name_of(s.sh_name);
    if (s.sh_type == SHT_NOTE && info.build_id.empty()) {
      read_notes(s.sh_offset, s.sh_size, s.sh_addralign);
    } else if (name == ".gnu_debuglink" && Within(s.sh_offset, s.sh_size, file_size)) {
      std::string link(std::min<uint64_t>(s.sh_size, kMaxDebuglinkBytes), '\0');
      if (ReadAt(fd, s.sh_offset, link.data(), link.size())) {
        link.resize(strnlen(link.data(), link.size()));
        // A file name, nothing else: it is looked up in fixed directories.
        if (link.find('/') == std::string::npos && link != "." && link != "..") {
          info.debuglink = link;
        }
      }
    } else if (name == ".gnu_debugdata" && Within(s.sh_offset, s.sh_size, file_size)) {
      info.debugdata_offset = s.sh_offset;
      info.debugdata_size = s.sh_size;
    }
  }
  return info;
}

struct LzmaStream {
  lzma_stream s = LZMA_STREAM_INIT;
  ~LzmaStream() { lzma_end(&s); }
};

}  // namespace

std::string BuildIdHex(absl::string_view build_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(build_id.size() * 2);
  for (unsigned char c : build_id) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

absl::StatusOr<ElfInfo> ReadElfInfo(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return absl::InternalError(absl::StrCat("fstat: ", strerror(errno)));
  // A FIFO or device would block or never end.
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  unsigned char ident[EI_NIDENT];
  if (size < sizeof(Elf64_Ehdr) || !ReadAt(fd, 0, ident, sizeof(ident)) ||
      memcmp(ident, ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError("not an ELF file");
  }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  constexpr unsigned char kNative = ELFDATA2LSB;
#else
  constexpr unsigned char kNative = ELFDATA2MSB;
#endif
  if (ident[EI_DATA] != kNative) return absl::InvalidArgumentError("foreign byte order");
  if (ident[EI_CLASS] == ELFCLASS64) return ReadClass<Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr>(fd, size);
  if (ident[EI_CLASS] == ELFCLASS32) return ReadClass<Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr>(fd, size);
  return absl::InvalidArgumentError("unknown ELF class");
}

absl::StatusOr<size_t> ParseMiniDebugInfo(absl::string_view xz, size_t max_bytes,
                                          const ElfSymbolFn& fn) {
  LzmaStream z;
  // The decoder's own memory (dictionary) is bounded too: xz -9 needs 64 MiB.
  if (lzma_stream_decoder(&z.s, 128ull << 20, 0) != LZMA_OK) {
    return absl::InternalError("lzma_stream_decoder failed");
  }
  std::vector<char> out(std::min<size_t>(max_bytes, std::max<size_t>(xz.size() * 4, 4096)) + 1);
  z.s.next_in = reinterpret_cast<const uint8_t*>(xz.data());
  z.s.avail_in = xz.size();
  size_t used = 0;
  for (;;) {
    if (used == out.size()) {
      // One byte past max_bytes is the sign of "too big".
      if (out.size() > max_bytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(".gnu_debugdata inflates past ", max_bytes, " bytes"));
      }
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    z.s.next_out = reinterpret_cast<uint8_t*>(out.data() + used);
    z.s.avail_out = out.size() - used;
    const lzma_ret r = lzma_code(&z.s, LZMA_FINISH);
    used = out.size() - z.s.avail_out;
    if (r == LZMA_STREAM_END) break;
    if (r != LZMA_OK) return absl::InvalidArgumentError(absl::StrCat("xz error ", r));
    if (z.s.avail_in == 0 && z.s.avail_out != 0) {
      return absl::InvalidArgumentError("truncated xz stream");
    }
  }
  if (used > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(".gnu_debugdata inflates past ", max_bytes, " bytes"));
  }
  elf_version(EV_CURRENT);
  UniqueC<Elf, elf_end> elf(elf_memory(out.data(), used));
  if (elf == nullptr || elf_kind(elf.get()) != ELF_K_ELF) {
    return absl::InvalidArgumentError(".gnu_debugdata holds no ELF image");
  }
  size_t count = 0;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
       scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_SYMTAB) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || sh.sh_entsize == 0) continue;
    const size_t n = data->d_size / sh.sh_entsize;
    for (size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) break;
      const int type = GELF_ST_TYPE(sym.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF ||
          sym.st_value == 0) {
        continue;
      }
      const char* name = elf_strptr(elf.get(), sh.sh_link, sym.st_name);
      if (name == nullptr || name[0] == '\0') continue;
      fn(name, sym.st_value, sym.st_size);
      ++count;
    }
  }
  return count;
}

absl::StatusOr<size_t> ReadMiniDebugInfo(int fd, const ElfInfo& info, size_t max_compressed,
                                         size_t max_bytes, const ElfSymbolFn& fn) {
  if (info.debugdata_size == 0) return size_t{0};
  if (info.debugdata_size > max_compressed) {
    return absl::ResourceExhaustedError(absl::StrCat(".gnu_debugdata is ", info.debugdata_size,
                                                     " bytes (limit ", max_compressed, ")"));
  }
  std::string xz(info.debugdata_size, '\0');
  if (!ReadAt(fd, info.debugdata_offset, xz.data(), xz.size())) {
    return absl::InvalidArgumentError("short .gnu_debugdata");
  }
  return ParseMiniDebugInfo(xz, max_bytes, fn);
}

}  // namespace vigil
