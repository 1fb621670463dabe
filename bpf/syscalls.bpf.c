// SPDX-License-Identifier: GPL-2.0
/* Per-thread, per-syscall counts, errors and latency.
 *
 * sys_enter stamps the syscall number and start time into task-local storage,
 * which the kernel frees with the task: thread churn cannot fill a map with
 * stale per-thread state. sys_exit folds the latency into a hash keyed by
 * (tgid, tid, nr).
 *
 * The stats hash is double-buffered through a one-slot ARRAY_OF_MAPS. The
 * agent points the slot at the other hash, and the kernel's update of a
 * map-in-map waits for an RCU grace period (maybe_wait_bpf_programs()), so no
 * program still holds the old hash when the agent drains it: nothing is lost
 * or counted twice between intervals.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "syscalls.h"

char LICENSE[] SEC("license") = "GPL";

struct enter_state {
	__u64 start_ns;
	__u32 nr;
	__u32 active;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct enter_state);
} enter_states SEC(".maps");

VIGIL_DOUBLE_BUFFERED_STATS(struct syscall_key, struct syscall_stats);
VIGIL_LOSS_COUNTERS(SYSCALL_CTR_MAX)

/* Set by the agent before load. Off: sys_enter is not attached, the syscall
 * number comes from the exit's registers, and no latency is recorded. Each
 * latency costs two bpf_ktime_get_ns() calls, which is most of Vigil's
 * per-syscall cost on kvm-clock guests. */
const volatile bool measure_latency = true;

static const struct syscall_stats zero_stats;

/* Other capabilities' work at a syscall's exit, tail-called from here so it
 * costs them no tracepoint program of their own (on this VM one more
 * tp_btf program on sys_exit costs every syscall ~55 ns, its body ~2):
 * slot 0 is the profiler's large map-call hook (vigil_profile_map in
 * bpf/profile.bpf.c), put there by the agent. An empty slot falls through.
 * The syscall numbers are x86-64's (the hook's unwinder is x86-64 only). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} exit_hooks SEC(".maps");

static __always_inline int then_exit_hooks(void *ctx, struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	long nr = regs_syscall_nr(regs);

	if (nr == 9 || nr == 11 || nr == 12) /* mmap, munmap, brk */
		bpf_tail_call(ctx, &exit_hooks, 0);
#endif
	return 0;
}

static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r < VIGIL_SYSCALL_HIST_BUCKETS ? r :
						VIGIL_SYSCALL_HIST_BUCKETS - 1;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct enter_state *st;

	if (id < 0 || id >= VIGIL_SYSCALL_NR_MAX) {
		count(SYSCALL_CTR_NR_OUT_OF_RANGE);
		return 0;
	}
	st = bpf_task_storage_get(&enter_states, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		count(SYSCALL_CTR_STORAGE_FAIL);
		return 0;
	}
	st->nr = id;
	st->active = 1;
	st->start_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_key key = {};
	struct syscall_stats *v;
	struct enter_state *st;
	__u32 slot = 0;
	__u64 now, lat, id;
	void *stats;

	if (measure_latency) {
		st = bpf_task_storage_get(&enter_states, task, 0, 0);
		if (!st || !st->active) {
			count(SYSCALL_CTR_NO_ENTER);
			return then_exit_hooks(ctx, regs);
		}
		now = bpf_ktime_get_ns();
		lat = now - st->start_ns;
		key.nr = st->nr;
		st->active = 0;
	} else {
		long nr = regs_syscall_nr(regs);

		if (nr < 0 || nr >= VIGIL_SYSCALL_NR_MAX) {
			count(SYSCALL_CTR_NR_OUT_OF_RANGE);
			return then_exit_hooks(ctx, regs);
		}
		key.nr = nr;
		lat = 0;
	}

	stats = bpf_map_lookup_elem(&active_stats, &slot);
	if (!stats)
		return then_exit_hooks(ctx, regs);
	id = bpf_get_current_pid_tgid();
	key.tgid = id >> 32;
	key.tid = (__u32)id;

	v = bpf_map_lookup_elem(stats, &key);
	if (!v) {
		/* EEXIST cannot happen: only this thread creates this key. */
		bpf_map_update_elem(stats, &key, &zero_stats, BPF_NOEXIST);
		v = bpf_map_lookup_elem(stats, &key);
		if (!v) {
			count(SYSCALL_CTR_MAP_FULL);
			return then_exit_hooks(ctx, regs);
		}
		bpf_get_current_comm(v->comm, sizeof(v->comm));
		BPF_CORE_READ_STR_INTO(&v->pcomm, task, group_leader, comm);
	}
	/* Only this thread writes this key, and a thread runs on one CPU at a
	 * time, so plain adds are safe; the agent reads only a retired buffer. */
	v->calls += 1;
	if (ret < 0 && ret >= -4095)
		v->errors += 1;
	if (measure_latency) {
		v->total_ns += lat;
		if (lat > v->max_ns)
			v->max_ns = lat;
		v->hist[log2_bucket(lat)] += 1;
	}
	return then_exit_hooks(ctx, regs);
}
