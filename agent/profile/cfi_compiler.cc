#include "agent/profile/cfi_compiler.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/unique_c.h"

namespace vigil {
namespace {

// x86-64 DWARF register numbers.
constexpr int kRegRbp = 6;
constexpr int kRegRsp = 7;
constexpr int kRegRa = 16;

using ElfPtr = UniqueC<Elf, elf_end>;
using CfiPtr = UniqueC<Dwarf_CFI, dwarf_cfi_end>;
using DwarfPtr = UniqueC<Dwarf, dwarf_end>;
using FramePtr = UniqueC<Dwarf_Frame, free>;

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

// The first SHT_PROGBITS section called `name` (its header in *sh), or
// nullptr. At most 65536 sections are looked at.
Elf_Scn* FirstProgbits(Elf* elf, const char* name, GElf_Shdr* sh) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return nullptr;
  Elf_Scn* scn = nullptr;
  for (int i = 0; i < 65536 && (scn = elf_nextscn(elf, scn)) != nullptr; ++i) {
    if (gelf_getshdr(scn, sh) == nullptr || sh->sh_type != SHT_PROGBITS) continue;
    const char* n = elf_strptr(elf, shstrndx, sh->sh_name);
    if (n != nullptr && strcmp(n, name) == 0) return scn;
  }
  return nullptr;
}

// The .debug_frame section's data, decompressed if needed; nullptr if the
// file has none. Unstripped builds made without unwind tables (-fno-
// asynchronous-unwind-tables, some kernels' and embedded toolchains'
// defaults) describe their frames only there.
Elf_Data* DebugFrameData(Elf* elf) {
  GElf_Shdr sh;
  Elf_Scn* scn = FirstProgbits(elf, ".debug_frame", &sh);
  if (scn == nullptr) return nullptr;
  if ((sh.sh_flags & SHF_COMPRESSED) != 0 && elf_compress(scn, 0, 0) < 0) return nullptr;
  Elf_Data* d = elf_getdata(scn, nullptr);
  return d != nullptr && d->d_buf != nullptr && d->d_size > 0 ? d : nullptr;
}

// --- Bounds on the CFI programs libdw will run -------------------------------
// elfutils (0.188) grows a frame state to the highest register number a CFA
// instruction names and copies the whole state at every
// DW_CFA_remember_state. A hostile file naming register ~72 million made one
// lookup allocate 1.7 GB (found by fuzz.cfi_smoke). So every instruction
// stream is read here first, and a file naming a register above any x86-64
// DWARF number, or nesting remember_state deeper than real code does, is
// refused before libdw sees it.
constexpr uint64_t kMaxCfiRegister = 127;  // x86-64 DWARF numbers end at 125 (k7)
constexpr int kMaxRememberDepth = 64;

bool ReadUleb(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; *p < end; shift += 7) {
    const uint8_t b = *(*p)++;
    if (shift < 64) *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// One instruction stream (a CIE's initial instructions or an FDE's). Ends
// quietly where libdw would stop with an error of its own (an unknown
// opcode): nothing after that point is ever run. A LEB128 cut off by the
// stream's end still counts with the bits it has: libdw reads it so.
absl::Status CheckCfaProgram(const uint8_t* p, const uint8_t* end) {
  int depth = 0;
  auto reg = [&](uint64_t r) {
    return r <= kMaxCfiRegister ? absl::OkStatus()
                                : absl::FailedPreconditionError(absl::StrCat(
                                      "CFI names register ", r, " (above ", kMaxCfiRegister, ")"));
  };
  uint64_t a = 0, b = 0;
  while (p < end) {
    const uint8_t op = *p++;
    switch (op & 0xc0) {
      case DW_CFA_advance_loc:
      case DW_CFA_restore:  // register in the low 6 bits: at most 63
        continue;
      case DW_CFA_offset:
        if (!ReadUleb(&p, end, &a)) return absl::OkStatus();
        continue;
    }
    switch (op) {
      case DW_CFA_nop:
      case DW_CFA_GNU_window_save:
        break;
      case DW_CFA_remember_state:
        if (++depth > kMaxRememberDepth) {
          return absl::FailedPreconditionError(
              absl::StrCat("CFI nests DW_CFA_remember_state over ", kMaxRememberDepth, " deep"));
        }
        break;
      case DW_CFA_restore_state:
        if (depth > 0) --depth;
        break;
      case DW_CFA_set_loc:  // its operand's size depends on the CIE; no compiler emits it
        return absl::FailedPreconditionError("CFI uses DW_CFA_set_loc");
      case DW_CFA_advance_loc1:
      case DW_CFA_advance_loc2:
      case DW_CFA_advance_loc4: {
        const ptrdiff_t n = op == DW_CFA_advance_loc1 ? 1 : op == DW_CFA_advance_loc2 ? 2 : 4;
        p += std::min(n, end - p);
        break;
      }
      case DW_CFA_def_cfa_offset:
      case DW_CFA_def_cfa_offset_sf:
      case DW_CFA_GNU_args_size:
        if (!ReadUleb(&p, end, &a)) return absl::OkStatus();
        break;
      case DW_CFA_def_cfa_expression:
        if (!ReadUleb(&p, end, &a) || a > static_cast<uint64_t>(end - p)) return absl::OkStatus();
        p += a;
        break;
      case DW_CFA_restore_extended:
      case DW_CFA_undefined:
      case DW_CFA_same_value:
      case DW_CFA_def_cfa_register:
        ReadUleb(&p, end, &a);
        if (absl::Status s = reg(a); !s.ok()) return s;
        break;
      case DW_CFA_register:  // two registers
      case DW_CFA_offset_extended:
      case DW_CFA_def_cfa:
      case DW_CFA_offset_extended_sf:
      case DW_CFA_def_cfa_sf:
      case DW_CFA_val_offset:
      case DW_CFA_val_offset_sf:
      case DW_CFA_GNU_negative_offset_extended:
        ReadUleb(&p, end, &a);
        ReadUleb(&p, end, &b);
        if (absl::Status s = reg(a); !s.ok()) return s;
        if (op == DW_CFA_register) {
          if (absl::Status s = reg(b); !s.ok()) return s;
        }
        break;
      case DW_CFA_expression:
      case DW_CFA_val_expression:
        ReadUleb(&p, end, &a);
        ReadUleb(&p, end, &b);
        if (absl::Status s = reg(a); !s.ok()) return s;
        if (b > static_cast<uint64_t>(end - p)) return absl::OkStatus();
        p += b;
        break;
      default:
        return absl::OkStatus();  // libdw refuses an unknown opcode too
    }
  }
  return absl::OkStatus();
}

// What an FDE needs from its CIE to find its instructions.
struct CieShape {
  size_t address_size = 8;          // of initial_location and address_range
  bool sized_augmentation = false;  // 'z': a ULEB length, then that many bytes
};

absl::StatusOr<CieShape> ReadCieShape(const Dwarf_CIE& cie, bool eh_frame) {
  CieShape shape;
  const char* aug = cie.augmentation != nullptr ? cie.augmentation : "";
  if (aug[0] == '\0') return shape;
  if (aug[0] != 'z') return absl::FailedPreconditionError("CFI augmentation not understood");
  shape.sized_augmentation = true;
  const uint8_t* d = cie.augmentation_data;
  const uint8_t* end = d != nullptr ? d + cie.augmentation_data_size : nullptr;
  for (const char* c = aug + 1; *c != '\0'; ++c) {
    if (*c == 'S' || *c == 'B') continue;
    if (d == nullptr || d >= end)
      return absl::FailedPreconditionError("CFI augmentation truncated");
    const uint8_t enc = *d++;
    if (*c == 'R' && eh_frame) {
      if (enc == DW_EH_PE_omit || (shape.address_size = EncodedSize(enc)) == 0) {
        return absl::FailedPreconditionError("CFI pointer encoding not understood");
      }
    } else if (*c == 'P') {
      const size_t n = EncodedSize(enc);
      if (n == 0 || n > static_cast<size_t>(end - d)) {
        return absl::FailedPreconditionError("CFI personality encoding not understood");
      }
      d += n;
    } else if (*c != 'L') {
      return absl::FailedPreconditionError("CFI augmentation not understood");
    }
  }
  return shape;
}

// Every CIE and FDE in one CFI section (.eh_frame or .debug_frame) that
// libdw can reach: walking the section from its start, and at fde_offsets
// (from .eh_frame_hdr's table, which libdw searches to jump straight to an
// FDE, past entries a walk cannot get over). fde_starts, if set, receives
// the start address of every FDE the walk found whose CIE checked out and
// whose range is not empty (for .debug_frame, whose addresses are absolute:
// the x86-64 CIE's 8-byte initial location and range), in the same pass.
absl::Status CheckCfiSection(Elf* elf, Elf_Data* data, bool eh_frame,
                             const std::vector<uint64_t>& fde_offsets,
                             std::vector<uint64_t>* fde_starts = nullptr) {
  const char* ident = elf_getident(elf, nullptr);
  if (ident == nullptr || data == nullptr || data->d_buf == nullptr) return absl::OkStatus();
  const auto* id = reinterpret_cast<const unsigned char*>(ident);
  absl::flat_hash_map<Dwarf_Off, absl::StatusOr<CieShape>> cies;
  // A CIE, checked once: its shape for the FDEs that use it.
  auto cie_at = [&](Dwarf_Off off) -> absl::StatusOr<CieShape> {
    if (auto it = cies.find(off); it != cies.end()) return it->second;
    // Real files have a handful of CIEs. Past the cap a CIE would go
    // unchecked while libdw still runs it: refuse the file instead.
    if (cies.size() >= 65536) return absl::FailedPreconditionError("CFI has over 65536 CIEs");
    Dwarf_CFI_Entry e;
    Dwarf_Off next = 0;
    absl::StatusOr<CieShape> shape = absl::NotFoundError("no CIE there");
    if (dwarf_next_cfi(id, data, eh_frame, off, &next, &e) == 0 && dwarf_cfi_cie_p(&e)) {
      if (e.cie.return_address_register > kMaxCfiRegister) {
        shape = absl::FailedPreconditionError(
            absl::StrCat("CFI names return address register ", e.cie.return_address_register));
      } else if (absl::Status s =
                     CheckCfaProgram(e.cie.initial_instructions, e.cie.initial_instructions_end);
                 !s.ok()) {
        shape = s;
      } else {
        shape = ReadCieShape(e.cie, eh_frame);
      }
    }
    cies.emplace(off, shape);
    return shape;
  };
  // One entry: a CIE, or an FDE with its CIE. NOT_FOUND: nothing libdw can
  // run there either. starts: where an FDE's start address goes, or null.
  auto check_at = [&](Dwarf_Off off, Dwarf_Off* next,
                      std::vector<uint64_t>* starts) -> absl::Status {
    Dwarf_CFI_Entry e;
    if (dwarf_next_cfi(id, data, eh_frame, off, next, &e) != 0 || *next <= off) {
      return absl::NotFoundError("end");
    }
    if (dwarf_cfi_cie_p(&e)) {
      absl::StatusOr<CieShape> shape = cie_at(off);
      return shape.ok() || absl::IsNotFound(shape.status()) ? absl::OkStatus() : shape.status();
    }
    absl::StatusOr<CieShape> cie = cie_at(e.fde.CIE_pointer);
    if (!cie.ok()) return absl::IsNotFound(cie.status()) ? absl::OkStatus() : cie.status();
    const uint8_t* p = e.fde.start;
    if (p == nullptr || e.fde.end == nullptr ||
        2 * cie->address_size > static_cast<size_t>(e.fde.end - p)) {
      return absl::OkStatus();
    }
    if (starts != nullptr && cie->address_size == 8 && ReadLe(p + 8, 8) != 0) {
      starts->push_back(ReadLe(p, 8));
    }
    p += 2 * cie->address_size;
    if (cie->sized_augmentation) {
      uint64_t len = 0;
      if (!ReadUleb(&p, e.fde.end, &len) || len > static_cast<uint64_t>(e.fde.end - p)) {
        return absl::OkStatus();
      }
      p += len;
    }
    return CheckCfaProgram(p, e.fde.end);
  };
  // Each entry is at least 8 bytes, which bounds a hostile section's count.
  Dwarf_Off off = 0, next = 0;
  for (size_t k = 0; k <= data->d_size / 8; ++k, off = next) {
    absl::Status s = check_at(off, &next, fde_starts);
    if (absl::IsNotFound(s)) break;
    if (!s.ok()) return s;
  }
  for (uint64_t fde : fde_offsets) {
    if (fde >= data->d_size) continue;
    absl::Status s = check_at(fde, &next, nullptr);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return absl::OkStatus();
}

// The .eh_frame bytes libdw may read: the section of that name, and the
// one .eh_frame_hdr points at (libdw's way when there are no section
// headers), to the end of the segment holding it. Both are checked, each
// with the FDEs .eh_frame_hdr's table points into it.
struct EhFrameBytes {
  Elf_Data* data;
  uint64_t vaddr;
};

std::vector<EhFrameBytes> EhFrameCandidates(Elf* elf, std::vector<uint64_t>* table_fdes) {
  std::vector<EhFrameBytes> out;
  GElf_Shdr sh;
  if (Elf_Scn* scn = FirstProgbits(elf, ".eh_frame", &sh)) {
    if (Elf_Data* d = elf_getdata(scn, nullptr)) out.push_back({d, sh.sh_addr});
  }
  size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) != 0) return out;
  GElf_Phdr hdr{};
  bool have_hdr = false;
  for (size_t i = 0; i < phnum && i < 4096 && !have_hdr; ++i) {
    have_hdr =
        gelf_getphdr(elf, static_cast<int>(i), &hdr) != nullptr && hdr.p_type == PT_GNU_EH_FRAME;
  }
  if (!have_hdr) return out;
  Elf_Data* h =
      elf_getdata_rawchunk(elf, static_cast<int64_t>(hdr.p_offset), hdr.p_filesz, ELF_T_BYTE);
  if (h == nullptr || h->d_buf == nullptr || h->d_size < 8) return out;
  const auto* p = static_cast<const uint8_t*>(h->d_buf);
  const uint8_t enc = p[1];
  const size_t n = EncodedSize(enc), count_size = EncodedSize(p[2]);
  if (n == 0 || 4 + n > h->d_size) return out;
  uint64_t ptr = ReadLe(p + 4, n);
  if ((enc & 0x0f) == DW_EH_PE_sdata4) ptr = static_cast<uint64_t>(static_cast<int32_t>(ptr));
  if ((enc & 0x70) == DW_EH_PE_pcrel) ptr += hdr.p_vaddr + 4;
  if ((enc & 0x70) == DW_EH_PE_datarel) ptr += hdr.p_vaddr;
  // The search table: (initial location, FDE address) pairs of sdata4
  // relative to the header (the only encoding FdeStarts accepts).
  if (count_size != 0 && 4 + n + count_size <= h->d_size) {
    const size_t off = 4 + n + count_size;
    const uint64_t count = ReadLe(p + 4 + n, count_size);
    for (uint64_t k = 0; k < count && k < (h->d_size - off) / 8; ++k) {
      const auto rel = static_cast<int32_t>(ReadLe(p + off + k * 8 + 4, 4));
      table_fdes->push_back(hdr.p_vaddr + static_cast<int64_t>(rel));
    }
  }
  for (size_t i = 0; i < phnum && i < 4096; ++i) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, static_cast<int>(i), &ph) == nullptr || ph.p_type != PT_LOAD ||
        ptr < ph.p_vaddr || ptr - ph.p_vaddr >= ph.p_filesz) {
      continue;
    }
    const uint64_t skip = ptr - ph.p_vaddr;
    if (Elf_Data* d = elf_getdata_rawchunk(elf, static_cast<int64_t>(ph.p_offset + skip),
                                           ph.p_filesz - skip, ELF_T_BYTE)) {
      out.push_back({d, ptr});
    }
    break;
  }
  return out;
}

// Refuses a file whose CFI libdw could be made to hold unbounded memory
// with (see kMaxCfiRegister).
absl::Status CheckEhFrame(Elf* elf) {
  std::vector<uint64_t> table_fdes;
  for (const EhFrameBytes& c : EhFrameCandidates(elf, &table_fdes)) {
    std::vector<uint64_t> offsets;
    offsets.reserve(table_fdes.size());
    for (uint64_t fde : table_fdes) {
      if (fde >= c.vaddr) offsets.push_back(fde - c.vaddr);
    }
    if (absl::Status s = CheckCfiSection(elf, c.data, /*eh_frame=*/true, offsets); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
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
    if (absl::Status s = CheckEhFrame(elf); !s.ok()) return s;
    eh_cfi.reset(dwarf_getcfi_elf(elf));
    if (eh_cfi == nullptr) return absl::FailedPreconditionError(".eh_frame_hdr but no .eh_frame");
    for (uint64_t pc : *eh_starts) starts.push_back(Start{pc, 0});
  } else if (!absl::IsNotFound(eh_starts.status())) {
    return eh_starts.status();
  }
  if (Elf_Data* debug_frame = DebugFrameData(elf)) {
    // One walk checks the section and finds its FDEs.
    std::vector<uint64_t> debug_starts;
    if (absl::Status s = CheckCfiSection(elf, debug_frame, /*eh_frame=*/false, {}, &debug_starts);
        !s.ok()) {
      return s;
    }
    dwarf.reset(dwarf_begin_elf(elf, DWARF_C_READ, nullptr));
    if (dwarf != nullptr) debug_cfi = dwarf_getcfi(dwarf.get());
    if (debug_cfi != nullptr) {
      for (uint64_t pc : debug_starts) {
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
