// SPDX-License-Identifier: GPL-2.0
/* Per-thread, per-syscall counts, errors and latency.
 *
 * sys_exit counts every call into a hash keyed by (tgid, tid, nr). For the
 * calls it times (all, or 1 in N chosen at random), sys_enter stamps the
 * syscall number and start time into task-local storage, which the kernel
 * frees with the task: thread churn cannot fill a map with stale per-thread
 * state.
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
 * latency costs a task-storage lookup and a bpf_ktime_get_ns() at each end,
 * which is most of Vigil's per-syscall cost. */
const volatile bool measure_latency = true;
/* Latency of 1 in (mask + 1) calls, each chosen at random at sys_enter; 0:
 * every call. Counts and errors stay exact either way: an unsampled call is
 * counted at sys_exit with the number from its registers. The agent scales
 * the sampled sums back up (agent/syscalls/syscalls_collector.cc).
 *
 * Sampled, an untimed call must cost next to nothing at either end, and a
 * task-storage lookup at every exit would not (about 30 ns here, half the
 * budget): a timed enter marks its (thread, syscall) entry in the stats hash,
 * which the exit looks up anyway, and only a marked exit reads task storage.
 * The start time itself stays in task storage, checked against the exit's
 * syscall number and the mark (timing_mark()). */
const volatile __u32 latency_sample_mask = 0;

/* Per-CPU xorshift64 state for the sampling draw: an inlined array lookup
 * and three shifts, where bpf_get_prandom_u32() is a helper call (~14 ns
 * here). Random, not every Nth call: a thread alternating two syscalls
 * would otherwise only ever have one of them timed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sample_rng SEC(".maps");

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

/* nr: the call as accounted (the enter's number when it was timed). */
static __always_inline int then_exit_hooks(void *ctx, long nr)
{
#if defined(__TARGET_ARCH_x86)
	if (nr == 9 || nr == 11 || nr == 12) /* mmap, munmap, brk */
		bpf_tail_call(ctx, &exit_hooks, 0);
#else
	(void)ctx;
	(void)nr;
#endif
	return 0;
}

/* floor(log2(v)) (0 for v <= 1), capped to the last bucket: halves the
 * width searched at each step (32, 16, 8, 4, 2 bits, then the last bit);
 * unrolled, it is the usual branch-free sequence. */
static __always_inline __u32 log2_bucket(__u64 v)
{
	__u32 r = 0, shift;

#pragma unroll
	for (int k = 5; k > 0; k--) {
		shift = (v >= (1ULL << (1 << k))) << k;
		v >>= shift;
		r |= shift;
	}
	r |= (v >> 1);
	return r < VIGIL_SYSCALL_HIST_BUCKETS ? r :
						VIGIL_SYSCALL_HIST_BUCKETS - 1;
}

/* The current thread's entry for syscall nr in the active stats hash,
 * created (names stamped) if it is not there; NULL if the hash is full. */
static __always_inline struct syscall_stats *
thread_stats(struct task_struct *task, __u32 nr)
{
	struct syscall_key key = {};
	struct syscall_stats *v;
	__u32 slot = 0;
	void *stats;
	__u64 id;

	stats = bpf_map_lookup_elem(&active_stats, &slot);
	if (!stats)
		return NULL;
	id = bpf_get_current_pid_tgid();
	key.tgid = id >> 32;
	key.tid = (__u32)id;
	key.nr = nr;
	v = bpf_map_lookup_elem(stats, &key);
	if (v)
		return v;
	/* EEXIST cannot happen: only this thread creates this key (the agent
	 * carries marks over only into keys not yet there). */
	bpf_map_update_elem(stats, &key, &zero_stats, BPF_NOEXIST);
	v = bpf_map_lookup_elem(stats, &key);
	if (!v) {
		count(SYSCALL_CTR_MAP_FULL);
		return NULL;
	}
	bpf_get_current_comm(v->comm, sizeof(v->comm));
	BPF_CORE_READ_STR_INTO(&v->pcomm, task, group_leader, comm);
	return v;
}

/* The mark a timed enter leaves in its stats entry: its start time's low
 * bits, never 0. The exit times the call only if task storage holds the
 * same start for the same syscall, so a mark left behind (the thread died in
 * the call, or its exit came in a buffer the mark was not carried into) and
 * a start left behind cannot pair up into a made-up latency, short of a
 * 1-in-2^32 match. */
static __always_inline __u32 timing_mark(__u64 start_ns)
{
	return (__u32)start_ns | 1;
}

static __always_inline bool sampled_out(void)
{
	__u32 zero = 0;
	__u64 *x = bpf_map_lookup_elem(&sample_rng, &zero);
	__u64 r;

	if (!x)
		return true;
	r = *x;
	if (!r) /* first draw on this CPU: seed it */
		r = ((__u64)bpf_get_prandom_u32() << 32) | 1;
	r ^= r << 13;
	r ^= r >> 7;
	r ^= r << 17;
	*x = r;
	return (r >> 32) & latency_sample_mask;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *task;
	struct syscall_stats *v = NULL;
	struct enter_state *st;

	if (id < 0 || id >= VIGIL_SYSCALL_NR_MAX) {
		count(SYSCALL_CTR_NR_OUT_OF_RANGE);
		return 0;
	}
	if (latency_sample_mask && sampled_out())
		return 0;
	task = bpf_get_current_task_btf();
	st = bpf_task_storage_get(&enter_states, task, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!st) {
		count(SYSCALL_CTR_STORAGE_FAIL);
		return 0;
	}
	if (latency_sample_mask) {
		v = thread_stats(task, id);
		if (!v)
			return 0;
	}
	st->nr = id;
	st->active = 1;
	st->start_ns = bpf_ktime_get_ns();
	if (latency_sample_mask)
		v->timing = timing_mark(st->start_ns);
	return 0;
}

/* A new task's first return to user space: clone/fork's 0 in the child.
 * The call was the parent's and is counted at the parent's return; the
 * child never entered it. */
static __always_inline bool child_return(long nr, long ret)
{
	if (ret != 0)
		return false;
#if defined(__TARGET_ARCH_x86)
	return nr == 56 || nr == 57 || nr == 58 ||
	       nr == 435; /* clone, fork, vfork, clone3 */
#elif defined(__TARGET_ARCH_arm64)
	return nr == 220 || nr == 435; /* clone, clone3 */
#else
#error "child_return: unsupported architecture"
#endif
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_stats *v;
	struct enter_state *st = NULL;
	bool timed = false;
	__u64 lat = 0;
	long nr;

	nr = regs_syscall_nr(regs);
	if (child_return(nr, ret))
		return 0;
	if (measure_latency && !latency_sample_mask) {
		/* Every call timed: the enter's state is always there. */
		st = bpf_task_storage_get(&enter_states, task, 0, 0);
		if (st && st->active) {
			lat = bpf_ktime_get_ns() - st->start_ns;
			st->active = 0;
			timed = true;
			nr = st->nr;
		} else {
			/* Its sys_enter ran before we attached: counted all
			 * the same, without a latency. */
			count(SYSCALL_CTR_NO_ENTER);
		}
	}
	if (nr < 0 || nr >= VIGIL_SYSCALL_NR_MAX) {
		count(SYSCALL_CTR_NR_OUT_OF_RANGE);
		return then_exit_hooks(ctx, nr);
	}
	v = thread_stats(task, nr);
	if (!v)
		return then_exit_hooks(ctx, nr);
	if (latency_sample_mask && v->timing) {
		st = bpf_task_storage_get(&enter_states, task, 0, 0);
		if (st && st->active && st->nr == nr &&
		    timing_mark(st->start_ns) == v->timing) {
			lat = bpf_ktime_get_ns() - st->start_ns;
			st->active = 0;
			timed = true;
		}
		v->timing = 0;
	}
	/* Only this thread writes this key, and a thread runs on one CPU at a
	 * time, so plain adds are safe; the agent reads only a retired buffer. */
	v->calls += 1;
	if (ret < 0 && ret >= -4095)
		v->errors += 1;
	if (timed) {
		v->total_ns += lat;
		if (lat > v->max_ns)
			v->max_ns = lat;
		v->hist[log2_bucket(lat)] += 1;
	}
	return then_exit_hooks(ctx, nr);
}
