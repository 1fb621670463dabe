/* Shared between bpf/probe.bpf.c and agent/probe: plain C, fixed-width,
 * no pointers. One skeleton is loaded per `vigil probe` session; a function
 * is an index (0..nfuncs-1) carried as the attach cookie. */
#ifndef VIGIL_BPF_PROBE_H
#define VIGIL_BPF_PROBE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_PROBE_COMM_LEN 16
/* log2 latency buckets: bucket b holds [2^(b-1), 2^b) ns (bucket 0: 0 ns). */
#define VIGIL_PROBE_SLOTS 64
/* Integer arguments recorded at most (the x86-64 register arguments). */
#define VIGIL_PROBE_MAX_ARGS 6

/* Per function, per CPU (summed by the agent): exact, never dropped. */
struct probe_fn_stats {
	__u64 calls; /* entries (or USDT hits) */
	__u64 returns; /* returns matched with their entry */
	__u64 latency_sum_ns; /* over the matched returns */
};

struct probe_fn_hist {
	__u64 slots[VIGIL_PROBE_SLOTS];
};

/* Calls per (function, thread). */
struct probe_thread_key {
	__u32 fn;
	__u32 tid;
};

struct probe_thread_value {
	__u64 calls;
	char comm[VIGIL_PROBE_COMM_LEN]; /* thread name at its first call */
};

/* Entry time of a call still running, for the return probe. A recursive
 * call of the same function by the same thread replaces the outer one's. */
struct probe_start_key {
	__u32 tid;
	__u32 fn;
};

/* How often one argument position had one value. */
struct probe_arg_key {
	__u32 fn;
	__u32 index;
	__u64 value;
};

/* Indexes into the per-CPU `counters` array. */
enum probe_counter {
	PROBE_CTR_THREADS_FULL = 0, /* calls not in the per-thread table */
	PROBE_CTR_ARGS_FULL, /* argument values not in the value table */
	PROBE_CTR_STARTS_FULL, /* entries not timed (start table full) */
	PROBE_CTR_RETURN_UNMATCHED, /* returns with no entry seen */
	PROBE_CTR_BAD_FN, /* cookie out of range (cannot happen) */
	PROBE_CTR_MAX,
};

#endif /* VIGIL_BPF_PROBE_H */
