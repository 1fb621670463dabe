/* Compiled unwind tables, shared between bpf/profile.bpf.c (which walks user
 * stacks with them) and agent/profile/unwind_tables.cc (which compiles them
 * from each mapped file's .eh_frame). Plain C, fixed-width, no pointers.
 *
 * x86-64 only. At any user pc, a row says how to find the frame's CFA (the
 * caller's stack pointer before the call), and where the caller's rbp was
 * saved; the return address is always at CFA - 8 on x86-64 (checked by the
 * compiler, which rejects other rules).
 */
#ifndef VIGIL_BPF_UNWIND_H
#define VIGIL_BPF_UNWIND_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Where the CFA is, in the low nibble of unwind_row.kind. */
enum unwind_cfa {
	UNWIND_CFA_INVALID =
		0, /* no usable rule here: the stack ends, truncated */
	UNWIND_CFA_RSP = 1, /* CFA = rsp + cfa_off * 8 */
	UNWIND_CFA_RBP = 2, /* CFA = rbp + cfa_off * 8 */
	/* The .plt expression: CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0). */
	UNWIND_CFA_PLT = 3,
	UNWIND_CFA_END = 4, /* return address undefined: the outermost frame */
};

/* Where the caller's rbp is, in the high nibble of unwind_row.kind. */
enum unwind_rbp {
	UNWIND_RBP_SAME = 0, /* unchanged by this frame */
	UNWIND_RBP_OFFSET = 1, /* saved at CFA + rbp_off * 8 */
	UNWIND_RBP_UNKNOWN = 2, /* some other rule: unknown in the caller */
};

/* Applies from `pc` (an ELF virtual address of the file) up to the next
 * row's pc. Rows of a file are sorted by pc. */
struct unwind_row {
	__u32 pc;
	__u8 kind; /* enum unwind_cfa | enum unwind_rbp << 4 */
	__s8 rbp_off; /* in units of 8 bytes */
	__u16 cfa_off; /* in units of 8 bytes */
};

/* A compiled file: its rows are unwind_rows[first_row, first_row + rows). */
struct unwind_file {
	__u32 first_row;
	__u32 rows;
};

/* A file with no usable CFI (or anonymous executable memory, e.g. JIT code
 * named by /tmp/perf-PID.map): walked with frame pointers. */
#define VIGIL_UNWIND_FILE_FP 0xffffffffu

/* One executable mapping of a process. */
struct unwind_mapping {
	__u64 start; /* [start, end): runtime addresses */
	__u64 end;
	__u64 bias; /* ELF virtual address = runtime address - bias */
	__u32 file; /* index into unwind_files, or VIGIL_UNWIND_FILE_FP */
	__u32 pad;
};

/* Executable mappings a process may have; a power of two (the program masks
 * indexes with it). Beyond it the agent keeps the mappings with the most
 * samples... in practice the first ones, and counts the rest. */
#define VIGIL_UNWIND_MAX_MAPPINGS 256
/* Binary-search steps for mappings (log2 of the above, plus one). */
#define VIGIL_UNWIND_MAPPING_STEPS 9
/* Binary-search steps for rows: files of up to 2^22 rows. */
#define VIGIL_UNWIND_ROW_STEPS 23
#define VIGIL_UNWIND_MAX_FILE_ROWS (1u << 22)

/* A process's executable mappings, sorted by start, not overlapping. */
struct unwind_proc {
	__u32 count;
	__u32 generation; /* bumped by the agent on each rewrite */
	struct unwind_mapping maps[VIGIL_UNWIND_MAX_MAPPINGS];
};

/* Why a user stack ended: profile_key.user_end. */
enum unwind_end {
	UNWIND_END_ROOT = 0, /* reached the outermost frame: complete */
	UNWIND_END_NO_USER = 1, /* kernel thread: no user stack at all */
	UNWIND_END_NO_PROC =
		2, /* process's mappings not loaded yet: leaf only */
	UNWIND_END_NO_MAPPING =
		3, /* pc outside every known executable mapping */
	UNWIND_END_NO_ROW =
		4, /* no CFI row covers the pc (or its rule is unsupported) */
	UNWIND_END_READ = 5, /* reading the user stack faulted */
	UNWIND_END_DEPTH = 6, /* VIGIL_PROFILE_MAX_DEPTH frames: cut */
	UNWIND_END_BAD_FRAME = 7, /* a frame pointer or CFA that goes nowhere */
	UNWIND_END_MAX,
};

/* Why the program asks the agent to (re)read a process's mappings:
 * the value in `unwind_wanted`. */
enum unwind_want {
	UNWIND_WANT_NEW = 1, /* no mappings loaded for this process */
	UNWIND_WANT_STALE = 2, /* a pc outside every loaded mapping */
};

#endif /* VIGIL_BPF_UNWIND_H */
