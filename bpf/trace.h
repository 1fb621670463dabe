/* Shared between bpf/trace.bpf.c and agent/trace: plain C, fixed-width, no
 * pointers. */
#ifndef VIGIL_BPF_TRACE_H
#define VIGIL_BPF_TRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TRACE_COMM_LEN 16
/* Bytes copied per string argument, NUL included (strace's default -s is 32
 * for data; paths are shown whole up to this). */
#define TRACE_STR_LEN 256
/* String arguments copied per call: enough for rename/link/symlink. */
#define TRACE_MAX_STRS 2
/* Syscall numbers at or above this are not traced (x86-64 tops out near 470). */
#define TRACE_NR_MAX 1024
/* Processes one session follows (the target and what it forks). */
#define TRACE_MAX_PIDS 1024

/* str_args[nr]: bit i set when argument i is a NUL-terminated user string;
 * at most TRACE_MAX_STRS bits are honoured, lowest first. */

enum vigil_trace_flags {
	TRACE_EV_UNFINISHED =
		1, /* exit without an entry seen in this session */
	TRACE_EV_NO_RETURN =
		2, /* exit/exit_group: sent at entry, never returns */
	TRACE_EV_STR0_FAULT = 4, /* first string could not be read */
	TRACE_EV_STR1_FAULT = 8,
	TRACE_EV_STR0_CUT = 16, /* first string longer than TRACE_STR_LEN - 1 */
	TRACE_EV_STR1_CUT = 32,
};

struct vigil_trace_event {
	__u64 enter_ns; /* bpf_ktime_get_ns() at entry (CLOCK_MONOTONIC) */
	__u64 exit_ns;
	__u64 args[6];
	__s64 ret;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 nr;
	__u16 flags;
	__u8 str_arg[TRACE_MAX_STRS]; /* which argument each string is, 0xff: none */
	char comm[TRACE_COMM_LEN];
	char str[TRACE_MAX_STRS][TRACE_STR_LEN];
};

/* Indexes into the per-CPU `counters` array. */
enum vigil_trace_counter {
	TRACE_CTR_RATE_LIMITED = 0, /* over max_events_per_second: dropped */
	TRACE_CTR_RING_FULL, /* ring buffer full: dropped */
	TRACE_CTR_STR_FAULT, /* string argument unreadable */
	TRACE_CTR_PIDS_FULL, /* a forked process not followed */
	TRACE_CTR_INFLIGHT_FULL, /* entry state could not be stored */
	TRACE_CTR_MAX,
};

#endif /* VIGIL_BPF_TRACE_H */
