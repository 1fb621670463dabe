/* Shared between bpf/profile.bpf.c and agent/profile: plain C, fixed-width,
 * no pointers. */
#ifndef VIGIL_BPF_PROFILE_H
#define VIGIL_BPF_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "unwind.h"

#define VIGIL_PROFILE_COMM_LEN 16
/* The kernel's PERF_MAX_STACK_DEPTH; stack-map values are sized for it, and
 * the user-stack walk stops there. */
#define VIGIL_PROFILE_MAX_DEPTH 127

/* What a sample stands for: profile_key.kind. */
enum profile_kind {
	/* A cpu-clock (or cycles) sample: 1/sample_hz s of CPU time. */
	PROFILE_KIND_CPU = 0,
	/* A page-fault sample: fault_period page faults (first touches of
	 * memory) by this thread at this stack. */
	PROFILE_KIND_FAULT = 1,
	/* Large memory-map calls, one record per call of at least
	 * map_min_bytes (profile_value.bytes sums their sizes): */
	PROFILE_KIND_MMAP = 2, /* mmap() that succeeded, not PROT_NONE */
	PROFILE_KIND_MUNMAP = 3, /* munmap() that succeeded */
	PROFILE_KIND_BRK = 4, /* brk() that moved the break up */
	PROFILE_KIND_BRK_SHRINK = 5, /* brk() that moved it down */
	PROFILE_KIND_MAX,
};

/* One aggregate: a thread with one (user stack, kernel stack) pair, for one
 * kind of event. kernel_stack_id < 0 is the negated errno bpf_get_stackid()
 * returned (-EFAULT: no kernel stack, e.g. a sample taken in user mode).
 * user_stack is the content hash keying the user-stacks map (0: none
 * recorded), and user_end says why the walk stopped (enum unwind_end). */
struct profile_key {
	__u32 tgid;
	__u32 tid;
	__s32 kernel_stack_id;
	__u32 user_end;
	__u64 user_stack;
	__u32 kind; /* enum profile_kind */
	__u32 pad; /* zero: keys are hashed bytewise */
};

/* A user stack, innermost first; zero-terminated when shorter. */
struct profile_user_stack {
	__u64 ips[VIGIL_PROFILE_MAX_DEPTH];
};

struct profile_value {
	__u64 samples; /* samples; for the map kinds, calls */
	__u64 bytes; /* map kinds only: bytes mapped or unmapped */
	char comm[VIGIL_PROFILE_COMM_LEN]; /* thread name at first sample */
	char pcomm[VIGIL_PROFILE_COMM_LEN]; /* process (group leader) name */
};

/* vigil probe --stacks (agent/probe): the uprobe vigil_profile_probe counts
 * calls per (attach cookie, user stack). The cookie is session << 32 |
 * function index, so sessions share the maps and each reads and deletes its
 * own entries. user_stack 0: the stack could not be stored. */
struct profile_probe_key {
	__u64 cookie;
	__u64 user_stack;
};

struct profile_probe_ustack_key {
	__u64 session;
	__u64 hash;
};

/* Sizes of the two maps above (every session together). */
#define VIGIL_PROFILE_PROBE_STACKS 16384
#define VIGIL_PROFILE_PROBE_USTACKS 4096

/* Indexes into the per-CPU `counters` array. */
enum profile_counter {
	PROFILE_CTR_SAMPLES = 0, /* every CPU sample the program saw */
	PROFILE_CTR_IDLE, /* samples in the idle task (not kept) */
	PROFILE_CTR_MAP_FULL, /* counts map full: sample dropped */
	PROFILE_CTR_USER_COLLISION, /* unused since user stacks are hashed */
	PROFILE_CTR_KERNEL_COLLISION, /* kernel stack hash collision (-EEXIST) */
	PROFILE_CTR_STACK_MAP_FULL, /* a stack map out of entries */
	PROFILE_CTR_NO_BUFFER, /* active buffer missing (cannot happen) */
	PROFILE_CTR_FRAMES, /* user frames walked */
	PROFILE_CTR_CFI_FRAMES, /* ... of which stepped with a CFI row */
	PROFILE_CTR_FP_FRAMES, /* ... of which stepped with frame pointers */
	PROFILE_CTR_FAULT_SAMPLES, /* every page-fault sample the program saw */
	/* page-fault samples in a task without user memory (kernel threads,
	 * some of which borrow a process's mm): not kept */
	PROFILE_CTR_FAULT_NO_USER,
	/* map calls of at least map_min_bytes seen (kept or not) */
	PROFILE_CTR_MAP_CALLS,
	/* brk() calls whose previous break was unknown (the first one seen
	 * of a process, or its entry evicted): not recorded */
	PROFILE_CTR_BRK_UNKNOWN,
	/* Samples by why their user stack ended: + enum unwind_end. */
	PROFILE_CTR_END_BASE,
	PROFILE_CTR_MAX = PROFILE_CTR_END_BASE + UNWIND_END_MAX,
};

#endif /* VIGIL_BPF_PROFILE_H */
