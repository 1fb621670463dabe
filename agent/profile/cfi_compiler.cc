#include "agent/profile/cfi_compiler.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vigil {
namespace {

// x86-64 DWARF register numbers.
constexpr int kRegRbp = 6;
constexpr int kRegRsp = 7;
constexpr int kRegRa = 16;

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfCloser>;

struct CfiCloser {
  void operator()(Dwarf_CFI* c) const { dwarf_cfi_end(c); }
};
using CfiPtr = std::unique_ptr<Dwarf_CFI, CfiCloser>;

struct DwarfCloser {
  void operator()(Dwarf* d) const { dwarf_end(d); }
};
using DwarfPtr = std::unique_ptr<Dwarf, DwarfCloser>;

struct FrameFree {
  void operator()(Dwarf_Frame* f) const { free(f); }
};
using FramePtr = std::unique_ptr<Dwarf_Frame, FrameFree>;

bool EnsureLibelf() {
  static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
  return ok;
}

// Reads a little-endian value of n bytes at p (bounds checked by caller).
uint64_t ReadLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

// Size of a fixed-size pointer encoding; 0 for the variable or unknown ones.
size_t EncodedSize(uint8_t enc) {
  switch (enc & 0x0f) {
    case DW_EH_PE_absptr:
    case DW_EH_PE_udata8:
    case DW_EH_PE_sdata8:
      return 8;
    case DW_EH_PE_udata2:
    case DW_EH_PE_sdata2:
      return 2;
    case DW_EH_PE_udata4:
    case DW_EH_PE_sdata4:
      return 4;
    default:
      return 0;
  }
}

// The sorted function start addresses of .eh_frame_hdr's binary-search
// table: the FDE enumeration libdw does not offer. Only the table encoding
// every x86-64 linker writes (datarel sdata4) is read.
absl::StatusOr<std::vector<uint64_t>> FdeStarts(Elf* elf) {
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return absl::FailedPreconditionError("no program headers");
  for (size_t i = 0; i < phnum && i < 4096; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_GNU_EH_FRAME) {
      continue;
    }
    Elf_Data* d =
        elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset), ph.p_filesz, ELF_T_BYTE);
    if (d == nullptr || d->d_buf == nullptr) {
      return absl::FailedPreconditionError(".eh_frame_hdr lies outside the file");
    }
    const auto* p = static_cast<const uint8_t*>(d->d_buf);
    const size_t n = d->d_size;
    if (n < 4 || p[0] != 1) return absl::FailedPreconditionError(".eh_frame_hdr: bad version");
    const uint8_t ptr_enc = p[1], count_enc = p[2], table_enc = p[3];
    const size_t ptr_size = EncodedSize(ptr_enc), count_size = EncodedSize(count_enc);
    if (ptr_size == 0 || count_size == 0 || (count_enc & 0x70) != 0 ||
        table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4)) {
      return absl::FailedPreconditionError(".eh_frame_hdr: unsupported encoding");
    }
    size_t off = 4 + ptr_size;
    if (off + count_size > n) return absl::FailedPreconditionError(".eh_frame_hdr: truncated");
    const uint64_t count = ReadLe(p + off, count_size);
    off += count_size;
    // Absurd counts end at the section's end.
    const uint64_t fit = (n - off) / 8;
    std::vector<uint64_t> starts;
    starts.reserve(std::min(count, fit));
    for (uint64_t k = 0; k < count && k < fit; ++k) {
      const auto rel = static_cast<int32_t>(ReadLe(p + off + k * 8, 4));
      starts.push_back(ph.p_vaddr + static_cast<int64_t>(rel));
    }
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    return starts;
  }
  return absl::NotFoundError("no .eh_frame_hdr (PT_GNU_EH_FRAME)");
}

// The .debug_frame section's data, decompressed if needed; nullptr if the
// file has none. Unstripped builds made without unwind tables (-fno-
// asynchronous-unwind-tables, some kernels' and embedded toolchains'
// defaults) describe their frames only there.
Elf_Data* DebugFrameData(Elf* elf) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return nullptr;
  Elf_Scn* scn = nullptr;
  for (int i = 0; i < 65536 && (scn = elf_nextscn(elf, scn)) != nullptr; ++i) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_PROGBITS) continue;
    const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
    if (name == nullptr || strcmp(name, ".debug_frame") != 0) continue;
    if ((sh.sh_flags & SHF_COMPRESSED) != 0 && elf_compress(scn, 0, 0) < 0) return nullptr;
    Elf_Data* d = elf_getdata(scn, nullptr);
    return d != nullptr && d->d_buf != nullptr && d->d_size > 0 ? d : nullptr;
  }
  return nullptr;
}

// The FDE start addresses in .debug_frame (libdw parses each entry; only
// the 8-byte initial location an x86-64 CIE declares is read here).
std::vector<uint64_t> DebugFrameStarts(Elf* elf, Elf_Data* data) {
  std::vector<uint64_t> starts;
  const char* ident = elf_getident(elf, nullptr);
  if (ident == nullptr) return starts;
  Dwarf_Off off = 0, next = 0;
  // Each entry is at least 16 bytes: the count bounds a hostile section.
  for (size_t k = 0; k <= data->d_size / 16; ++k, off = next) {
    Dwarf_CFI_Entry entry;
    if (dwarf_next_cfi(reinterpret_cast<const unsigned char*>(ident), data, false, off, &next,
                       &entry) != 0 ||
        next <= off) {
      break;
    }
    if (dwarf_cfi_cie_p(&entry)) continue;
    if (entry.fde.start == nullptr || entry.fde.end < entry.fde.start + 16) continue;
    const uint64_t start = ReadLe(entry.fde.start, 8);
    const uint64_t len = ReadLe(entry.fde.start + 8, 8);
    if (len != 0) starts.push_back(start);
  }
  return starts;
}

bool IsOp(const Dwarf_Op& op, uint8_t atom) { return op.atom == atom; }

// The x86-64 .plt CFA expression: rsp + 8 + ((rip & 15) >= 11 ? 8 : 0).
bool IsPltExpression(const Dwarf_Op* ops, size_t n) {
  static constexpr uint8_t kShape[] = {DW_OP_breg7, DW_OP_breg16, DW_OP_lit15,
                                       DW_OP_and,   DW_OP_lit11,  DW_OP_ge,
                                       DW_OP_lit3,  DW_OP_shl,    DW_OP_plus};
  if (n != sizeof(kShape)) return false;
  for (size_t i = 0; i < n; ++i) {
    if (ops[i].atom != kShape[i]) return false;
  }
  return ops[0].number == 8 && ops[1].number == 0;
}

// The rule of `regno` as "saved at CFA + offset"; false for anything else.
bool SavedAtCfaOffset(const Dwarf_Op* ops, size_t n, int64_t* offset) {
  if (n == 1 && IsOp(ops[0], DW_OP_call_frame_cfa)) {
    *offset = 0;
    return true;
  }
  if (n == 2 && IsOp(ops[0], DW_OP_call_frame_cfa) && IsOp(ops[1], DW_OP_plus_uconst)) {
    *offset = static_cast<int64_t>(ops[1].number);
    return true;
  }
  return false;
}

// One frame state as a row, or false if the walker cannot follow it.
bool ToRow(Dwarf_Frame* frame, uint64_t pc, unwind_row* row) {
  *row = unwind_row{};
  row->pc = static_cast<uint32_t>(pc);
  Dwarf_Op mem[3];
  Dwarf_Op* ops = nullptr;
  size_t n = 0;
  // The return address: undefined marks the outermost frame (_start,
  // clone); otherwise x86-64 always saves it at CFA - 8.
  if (dwarf_frame_register(frame, kRegRa, mem, &ops, &n) != 0) return false;
  if (n == 0 && ops != nullptr) {
    row->kind = UNWIND_CFA_END;
    return true;
  }
  int64_t ra_off = 0;
  if (!SavedAtCfaOffset(ops, n, &ra_off) || ra_off != -8) return false;

  if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n == 0) return false;
  uint8_t cfa = UNWIND_CFA_INVALID;
  int64_t cfa_off = 0;
  if (n == 1 &&
      (IsOp(ops[0], DW_OP_bregx) || IsOp(ops[0], DW_OP_breg7) || IsOp(ops[0], DW_OP_breg6))) {
    const uint64_t reg = IsOp(ops[0], DW_OP_bregx) ? ops[0].number : ops[0].atom - DW_OP_breg0;
    cfa_off = static_cast<int64_t>(IsOp(ops[0], DW_OP_bregx) ? ops[0].number2 : ops[0].number);
    if (reg == kRegRsp) {
      cfa = UNWIND_CFA_RSP;
    } else if (reg == kRegRbp) {
      cfa = UNWIND_CFA_RBP;
    } else {
      return false;
    }
    if (cfa_off <= 0 || cfa_off % 8 != 0 || cfa_off / 8 > UINT16_MAX) return false;
  } else if (IsPltExpression(ops, n)) {
    cfa = UNWIND_CFA_PLT;
  } else {
    return false;
  }

  uint8_t rbp = UNWIND_RBP_UNKNOWN;
  int64_t rbp_off = 0;
  if (dwarf_frame_register(frame, kRegRbp, mem, &ops, &n) == 0) {
    if (n == 0 && ops == nullptr) {
      rbp = UNWIND_RBP_SAME;
    } else if (SavedAtCfaOffset(ops, n, &rbp_off) && rbp_off % 8 == 0 && rbp_off / 8 >= INT8_MIN &&
               rbp_off / 8 <= INT8_MAX) {
      rbp = UNWIND_RBP_OFFSET;
    }
  }
  row->kind = static_cast<uint8_t>(cfa | (rbp << 4));
  row->cfa_off = static_cast<uint16_t>(cfa_off / 8);
  row->rbp_off = rbp == UNWIND_RBP_OFFSET ? static_cast<int8_t>(rbp_off / 8) : 0;
  return true;
}

bool SameRule(const unwind_row& a, const unwind_row& b) {
  return a.kind == b.kind && a.cfa_off == b.cfa_off && a.rbp_off == b.rbp_off;
}

}  // namespace

absl::StatusOr<std::vector<LoadSegment>> ReadLoadSegments(Elf* elf) {
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return absl::FailedPreconditionError("no program headers");
  std::vector<LoadSegment> segs;
  for (size_t i = 0; i < phnum && i < 4096; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD) continue;
    segs.push_back(LoadSegment{ph.p_vaddr, ph.p_offset, ph.p_filesz, (ph.p_flags & PF_X) != 0});
    if (segs.size() >= 64) break;  // real files have 4 or 5
  }
  return segs;
}

absl::StatusOr<CompiledCfi> CompileCfi(Elf* elf, const CfiLimits& limits) {
  GElf_Ehdr eh;
  if (gelf_getehdr(elf, &eh) == nullptr) return absl::FailedPreconditionError("not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
    return absl::FailedPreconditionError("not an x86-64 ELF file");
  }
  CompiledCfi out;
  absl::StatusOr<std::vector<LoadSegment>> segs = ReadLoadSegments(elf);
  if (!segs.ok()) return segs.status();
  out.segments = *std::move(segs);
  // Function starts from both tables, each with the CFI that describes it;
  // where both describe a function, .eh_frame (what the loader and C++
  // exceptions use) wins.
  struct Start {
    uint64_t pc;
    int table;  // 0: .eh_frame, 1: .debug_frame
  };
  std::vector<Start> starts;
  CfiPtr eh_cfi;
  DwarfPtr dwarf;
  Dwarf_CFI* debug_cfi = nullptr;  // owned by `dwarf`
  absl::StatusOr<std::vector<uint64_t>> eh_starts = FdeStarts(elf);
  if (eh_starts.ok()) {
    eh_cfi.reset(dwarf_getcfi_elf(elf));
    if (eh_cfi == nullptr) return absl::FailedPreconditionError(".eh_frame_hdr but no .eh_frame");
    for (uint64_t pc : *eh_starts) starts.push_back(Start{pc, 0});
  } else if (!absl::IsNotFound(eh_starts.status())) {
    return eh_starts.status();
  }
  if (Elf_Data* debug_frame = DebugFrameData(elf)) {
    dwarf.reset(dwarf_begin_elf(elf, DWARF_C_READ, nullptr));
    if (dwarf != nullptr) debug_cfi = dwarf_getcfi(dwarf.get());
    if (debug_cfi != nullptr) {
      for (uint64_t pc : DebugFrameStarts(elf, debug_frame)) {
        starts.push_back(Start{pc, 1});
        ++out.debug_frame_fdes;
      }
    }
  }
  if (starts.empty()) {
    return eh_starts.ok() ? absl::NotFoundError("no FDE in .eh_frame or .debug_frame")
                          : absl::NotFoundError("no .eh_frame_hdr and no .debug_frame");
  }
  std::sort(starts.begin(), starts.end(), [](const Start& a, const Start& b) {
    return a.pc != b.pc ? a.pc < b.pc : a.table < b.table;
  });
  starts.erase(std::unique(starts.begin(), starts.end(),
                           [](const Start& a, const Start& b) { return a.pc == b.pc; }),
               starts.end());
  Dwarf_CFI* const tables[2] = {eh_cfi.get(), debug_cfi};

  // Adversarial CFI can make each lookup re-run a long program: the time
  // bound keeps a hostile file from holding the agent.
  const absl::Time deadline = absl::Now() + limits.max_time;
  std::vector<unwind_row>& rows = out.rows;
  auto emit = [&rows](const unwind_row& r) {
    if (!rows.empty() && rows.back().pc == r.pc) {
      rows.back() = r;  // an empty range: the later rule wins
    } else if (rows.empty() || !SameRule(rows.back(), r)) {
      rows.push_back(r);
    }
  };
  uint64_t steps = 0;
  for (size_t i = 0; i < starts.size(); ++i) {
    const uint64_t begin = starts[i].pc;
    const uint64_t next = i + 1 < starts.size() ? starts[i + 1].pc : UINT64_MAX;
    Dwarf_CFI* const cfi = tables[starts[i].table];
    if (begin > UINT32_MAX) return absl::FailedPreconditionError("code above 4 GiB");
    ++out.fdes;
    uint64_t pc = begin;
    while (pc < next) {
      if (rows.size() > limits.max_rows) {
        return absl::FailedPreconditionError(
            absl::StrCat("more than ", limits.max_rows, " unwind rows"));
      }
      if (++steps % 256 == 0 && absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("compiling CFI took over ", absl::FormatDuration(limits.max_time)));
      }
      Dwarf_Frame* raw = nullptr;
      if (dwarf_cfi_addrframe(cfi, pc, &raw) != 0) {
        // A gap between functions (or a broken FDE): nothing here unwinds.
        if (pc <= UINT32_MAX) emit(unwind_row{static_cast<uint32_t>(pc), UNWIND_CFA_INVALID, 0, 0});
        break;
      }
      FramePtr frame(raw);
      Dwarf_Addr start = 0, end = 0;
      bool signal = false;
      if (dwarf_frame_info(frame.get(), &start, &end, &signal) < 0 || end <= pc || start > pc) {
        break;
      }
      if (pc > UINT32_MAX) break;
      unwind_row row;
      if (signal || !ToRow(frame.get(), pc, &row)) {
        row = unwind_row{static_cast<uint32_t>(pc), UNWIND_CFA_INVALID, 0, 0};
        ++out.unsupported;
      }
      emit(row);
      pc = end;
    }
  }
  rows.shrink_to_fit();
  return out;
}

absl::StatusOr<CompiledCfi> CompileCfiFromFd(int fd, const CfiLimits& limits) {
  if (!EnsureLibelf()) return absl::InternalError("libelf: version mismatch");
  // Read, not mmapped: a file truncated under us must not SIGBUS the agent.
  ElfPtr elf(elf_begin(fd, ELF_C_READ, nullptr));
  if (elf == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("libelf: ", elf_errmsg(-1)));
  }
  return CompileCfi(elf.get(), limits);
}

absl::StatusOr<CompiledCfi> CompileCfiFromMemory(const void* data, size_t size,
                                                 const CfiLimits& limits) {
  if (!EnsureLibelf()) return absl::InternalError("libelf: version mismatch");
  // elf_memory wants a mutable buffer but reads only (ELF_C_READ_MMAP).
  ElfPtr elf(elf_memory(static_cast<char*>(const_cast<void*>(data)), size));
  if (elf == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("libelf: ", elf_errmsg(-1)));
  }
  return CompileCfi(elf.get(), limits);
}

}  // namespace vigil
