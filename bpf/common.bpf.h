/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel-side plumbing every Vigil capability shares: the double-buffered
 * stats hash and the per-CPU loss counters the agent sums and reports.
 * Include after vmlinux.h and bpf_helpers.h. */
#ifndef VIGIL_COMMON_BPF_H
#define VIGIL_COMMON_BPF_H

#include <bpf/bpf_core_read.h>

/* Two hashes of key_t -> value_t, stats_a and stats_b (max_entries set by
 * the agent before load), and a one-slot ARRAY_OF_MAPS, active_stats,
 * pointing at the one programs write. The agent points the slot at the
 * other hash, and the kernel's update of a map-in-map waits for an RCU grace
 * period (maybe_wait_bpf_programs()), so no program still holds the old hash
 * when the agent drains it: nothing is lost or counted twice. */
#define VIGIL_DOUBLE_BUFFERED_STATS(key_t, value_t)       \
	struct stats_hash {                               \
		__uint(type, BPF_MAP_TYPE_HASH);          \
		__uint(max_entries, 1);                   \
		__type(key, key_t);                       \
		__type(value, value_t);                   \
	};                                                \
	struct stats_hash stats_a SEC(".maps");           \
	struct stats_hash stats_b SEC(".maps");           \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); \
		__uint(max_entries, 1);                   \
		__type(key, __u32);                       \
		__array(values, struct stats_hash);       \
	} active_stats SEC(".maps") = {                   \
		.values = { [0] = &stats_a },             \
	}

/* A two-slot ARRAY_OF_MAPS `name` over maps `a` and `b` (of struct
 * `map_t`), for programs that pick the buffer by an index the agent flips
 * (several maps flipped together, as the profiler's counts and stacks). */
#define VIGIL_BUFFER_PAIR(name, map_t, a, b)              \
	struct {                                          \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); \
		__uint(max_entries, 2);                   \
		__type(key, __u32);                       \
		__array(values, map_t);                   \
	} name SEC(".maps") = {                           \
		.values = { [0] = &a, [1] = &b },         \
	}

/* nr per-CPU u64 loss counters, `counters`, and count(which). The agent
 * sums them over CPUs (SumPerCpuCounters) and reports deltas. */
#define VIGIL_LOSS_COUNTERS(nr)                                    \
	struct {                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);           \
		__uint(max_entries, nr);                           \
		__type(key, __u32);                                \
		__type(value, __u64);                              \
	} counters SEC(".maps");                                   \
	static __always_inline void count(__u32 which)             \
	{                                                          \
		__u64 *c = bpf_map_lookup_elem(&counters, &which); \
		if (c)                                             \
			*c += 1;                                   \
	}

/* The syscall number at sys_enter/sys_exit, as the kernel's
 * syscall_get_nr() sees it. regs must be the tp_btf argument: a BTF pointer
 * the verifier lets us load from directly (CO-RE relocated), so no
 * bpf_probe_read_kernel() call, which every syscall exit would pay. */
static __always_inline long regs_syscall_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
	return regs->syscallno;
#else
#error "regs_syscall_nr: unsupported architecture"
#endif
}

#endif /* VIGIL_COMMON_BPF_H */
