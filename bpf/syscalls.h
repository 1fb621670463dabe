/* Shared between bpf/syscalls.bpf.c and agent/syscalls: plain C, fixed-width,
 * no pointers. */
#ifndef VIGIL_BPF_SYSCALLS_H
#define VIGIL_BPF_SYSCALLS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_COMM_LEN 16
/* Bucket i counts latencies in [2^i, 2^(i+1)) ns; bucket 0 also takes 0 ns and
 * the last bucket takes everything from 2^31 ns (~2.1 s) up. */
#define VIGIL_SYSCALL_HIST_BUCKETS 32
/* Syscall numbers at or above this are not recorded (x86_64 tops out near 470). */
#define VIGIL_SYSCALL_NR_MAX 1024

struct syscall_key {
	__u32 tgid;
	__u32 tid;
	__u32 nr;
	__u32 pad;
};

struct syscall_stats {
	__u64 calls;
	__u64 errors; /* return value in [-4095, -1] */
	__u64 total_ns; /* sum of sys_enter -> sys_exit latency */
	__u64 max_ns;
	__u64 hist[VIGIL_SYSCALL_HIST_BUCKETS];
	char comm[VIGIL_COMM_LEN]; /* thread name when the entry was created */
	char pcomm[VIGIL_COMM_LEN]; /* process (group leader) name */
	/* Sampled latency only: set (to the start's low bits, never 0) at a
	 * timed sys_enter of this (thread, syscall), cleared at its sys_exit,
	 * which then reads the start from task storage; every other exit skips
	 * that lookup. Set when drained: the call is still in flight, and the
	 * agent carries the mark into the new buffer. */
	__u32 timing;
	__u32 pad;
};

/* Indexes into the per-CPU `counters` array: what could not be recorded. */
enum syscall_counter {
	SYSCALL_CTR_MAP_FULL = 0, /* stats map full: the event was dropped */
	SYSCALL_CTR_NO_ENTER, /* sys_exit without its sys_enter: no latency */
	SYSCALL_CTR_STORAGE_FAIL, /* task storage could not be allocated */
	SYSCALL_CTR_NR_OUT_OF_RANGE, /* negative or huge syscall number */
	SYSCALL_CTR_MAX,
};

#endif /* VIGIL_BPF_SYSCALLS_H */
