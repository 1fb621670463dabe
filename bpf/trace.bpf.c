// SPDX-License-Identifier: GPL-2.0
/* vigil trace: each syscall of the traced processes, with its arguments and
 * return value, to the agent through a ring buffer.
 *
 * Loaded and attached only while a trace session runs (one object per
 * session), so it costs nothing otherwise. Everything that can be decided in
 * the kernel is: the process set (the target and what it forks while
 * traced), one thread, the syscall set, failed calls only, and the event
 * rate. String arguments (paths) are copied at entry, while the pointer is
 * still the caller's; nothing else of the process's memory is read.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "trace.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the agent before load. */
const volatile __u32 target_pid = 0; /* the session's process (stays in pids) */
const volatile __u32 target_tid = 0; /* 0: every thread */
const volatile bool filter_nr =
	false; /* only the syscalls marked in wanted_nr */
const volatile bool failed_only = false;
const volatile __u64 max_events_per_second = 20000;

/* Traced processes (tgid -> 1): the target, and children forked while
 * traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACE_MAX_PIDS);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} wanted_nr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACE_NR_MAX);
	__type(key, __u32);
	__type(value, __u8);
} str_args SEC(".maps");

/* A call between entry and exit, per thread. Threads that exit mid-call
 * leave an entry; the map is bounded and its overflow counted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct vigil_trace_event);
} inflight SEC(".maps");

/* Staging for a new entry (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_trace_event);
} scratch SEC(".maps");

struct rate_window {
	__u64 start_ns;
	__u64 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_window);
} rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* 4 MiB: ~6,500 events in flight */
} events SEC(".maps");

VIGIL_LOSS_COUNTERS(TRACE_CTR_MAX)

static __always_inline void regs_args(struct pt_regs *regs, __u64 *args)
{
#if defined(__TARGET_ARCH_x86)
	args[0] = BPF_CORE_READ(regs, di);
	args[1] = BPF_CORE_READ(regs, si);
	args[2] = BPF_CORE_READ(regs, dx);
	args[3] = BPF_CORE_READ(regs, r10);
	args[4] = BPF_CORE_READ(regs, r8);
	args[5] = BPF_CORE_READ(regs, r9);
#elif defined(__TARGET_ARCH_arm64)
	args[0] = BPF_CORE_READ(regs, orig_x0);
	args[1] = BPF_CORE_READ(regs, regs[1]);
	args[2] = BPF_CORE_READ(regs, regs[2]);
	args[3] = BPF_CORE_READ(regs, regs[3]);
	args[4] = BPF_CORE_READ(regs, regs[4]);
	args[5] = BPF_CORE_READ(regs, regs[5]);
#endif
}

/* The thread is traced and the call wanted (the filters known at entry). */
static __always_inline bool wanted(__u64 pid_tgid, long nr)
{
	__u32 tgid = pid_tgid >> 32;

	if (!bpf_map_lookup_elem(&pids, &tgid))
		return false;
	if (target_tid && (__u32)pid_tgid != target_tid)
		return false;
	if (nr < 0 || nr >= TRACE_NR_MAX)
		return false;
	if (filter_nr) {
		__u32 key = nr;
		__u8 *w = bpf_map_lookup_elem(&wanted_nr, &key);

		if (!w || !*w)
			return false;
	}
	return true;
}

/* One event per second per session at most max_events_per_second; the
 * window resets racily across CPUs, which only blurs the edge. */
static __always_inline bool rate_ok(__u64 now)
{
	__u32 zero = 0;
	struct rate_window *w = bpf_map_lookup_elem(&rate, &zero);

	if (!w)
		return false;
	if (now - w->start_ns >= 1000000000ull) {
		w->start_ns = now;
		w->count = 0;
	}
	if (__sync_fetch_and_add(&w->count, 1) >= max_events_per_second) {
		count(TRACE_CTR_RATE_LIMITED);
		return false;
	}
	return true;
}

/* Only the strings a call has are sent: most calls have none, and a
 * smaller record lets the ring hold more of a burst. */
static __always_inline void emit(struct vigil_trace_event *e)
{
	__u64 size = offsetof(struct vigil_trace_event, str);

	if (!rate_ok(e->exit_ns ? e->exit_ns : e->enter_ns))
		return;
	if (e->str_arg[1] != 0xff)
		size += 2 * TRACE_STR_LEN;
	else if (e->str_arg[0] != 0xff)
		size += TRACE_STR_LEN;
	if (bpf_ringbuf_output(&events, e, size, 0) != 0)
		count(TRACE_CTR_RING_FULL);
}

static __always_inline void copy_string(struct vigil_trace_event *e, int slot,
					__u64 ptr)
{
	long n = bpf_probe_read_user_str(e->str[slot & 1], TRACE_STR_LEN,
					 (void *)ptr);

	if (n < 0) {
		e->flags |= slot ? TRACE_EV_STR1_FAULT : TRACE_EV_STR0_FAULT;
		e->str[slot & 1][0] = 0;
		count(TRACE_CTR_STR_FAULT);
	} else if (n == TRACE_STR_LEN) {
		e->flags |= slot ? TRACE_EV_STR1_CUT : TRACE_EV_STR0_CUT;
	}
}

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_trace_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0, tid = (__u32)pid_tgid, key;
	struct vigil_trace_event *e;
	__u8 *mask;
	int slot = 0;

	if (!wanted(pid_tgid, id))
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->enter_ns = bpf_ktime_get_ns();
	e->exit_ns = 0;
	e->ret = 0;
	e->pid = pid_tgid >> 32;
	e->tid = tid;
	e->nr = id;
	e->flags = 0;
	e->str_arg[0] = 0xff;
	e->str_arg[1] = 0xff;
	regs_args(regs, e->args);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	key = id;
	mask = bpf_map_lookup_elem(&str_args, &key);
	if (mask && *mask) {
		for (int i = 0; i < 6; i++) {
			if (!(*mask & (1u << i)) || slot >= TRACE_MAX_STRS)
				continue;
			e->str_arg[slot & 1] = i;
			copy_string(e, slot, e->args[i]);
			slot++;
		}
	}
	/* exit and exit_group never reach sys_exit: sent now, as strace
	 * prints them ("= ?"). */
	if (id == 60 || id == 231) {
		e->flags |= TRACE_EV_NO_RETURN;
		if (!failed_only)
			emit(e);
		return 0;
	}
	if (bpf_map_update_elem(&inflight, &tid, e, BPF_ANY) != 0)
		count(TRACE_CTR_INFLIGHT_FULL);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_trace_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0, tid = (__u32)pid_tgid;
	long nr = regs_syscall_nr(regs);
	struct vigil_trace_event *e;

	if (!wanted(pid_tgid, nr))
		return 0;
	if (failed_only && !(ret < 0 && ret >= -4095)) {
		bpf_map_delete_elem(&inflight, &tid);
		return 0;
	}
	e = bpf_map_lookup_elem(&inflight, &tid);
	if (!e || e->nr != nr) {
		/* Entered before the session attached: what the exit's
		 * registers still hold. */
		e = bpf_map_lookup_elem(&scratch, &zero);
		if (!e)
			return 0;
		e->enter_ns = 0;
		e->pid = pid_tgid >> 32;
		e->tid = tid;
		e->nr = nr;
		e->flags = TRACE_EV_UNFINISHED;
		e->str_arg[0] = 0xff;
		e->str_arg[1] = 0xff;
		regs_args(regs, e->args);
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		e->exit_ns = bpf_ktime_get_ns();
		e->ret = ret;
		emit(e);
		return 0;
	}
	e->exit_ns = bpf_ktime_get_ns();
	e->ret = ret;
	emit(e);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/* strace -f: a child of a traced process is traced from its first syscall. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_trace_fork, struct task_struct *parent,
	     struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ptgid == ctgid || !bpf_map_lookup_elem(&pids, &ptgid))
		return 0;
	if (bpf_map_update_elem(&pids, &ctgid, &one, BPF_NOEXIST) != 0)
		count(TRACE_CTR_PIDS_FULL);
	return 0;
}

/* A followed child that exits leaves the set, so its pid, if reused while
 * the session runs, does not bring an unrelated process into the trace. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_trace_gone, struct task_struct *task)
{
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (BPF_CORE_READ(task, pid) == tgid && tgid != target_pid)
		bpf_map_delete_elem(&pids, &tgid);
	return 0;
}
