// SPDX-License-Identifier: GPL-2.0
/* vigil probe: uprobes, uretprobes and USDT probes on one process, counted
 * in the kernel and read by the agent once a second. One skeleton per
 * session: the agent sets the rodata and map sizes, loads, attaches each
 * function with its index as the bpf_cookie (and the target pid), and
 * destroys the skeleton when the session ends, so nothing stays loaded.
 *
 * The per-function call count is a per-CPU array: exact, whatever the
 * bounded tables (threads, argument values, running calls) could not hold,
 * which is counted in `counters`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "common.bpf.h"
#include "probe.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the agent before load. */
const volatile __u32 target_tgid = 0;
const volatile __u32 nfuncs = 1;
const volatile __u32 nargs = 0;
const volatile bool latency = false;

/* max_entries of maps sized 1 here are set by the agent (nfuncs or its
 * table bounds) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_fn_stats);
} fn_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct probe_fn_hist);
} fn_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct probe_thread_key);
	__type(value, struct probe_thread_value);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct probe_start_key);
	__type(value, __u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct probe_arg_key);
	__type(value, __u64);
} arg_values SEC(".maps");

VIGIL_LOSS_COUNTERS(PROBE_CTR_MAX)

static const struct probe_thread_value zero_thread;
static const __u64 one = 1;

/* The calling thread's id if it belongs to the target, else 0. The links
 * are attached with the target pid already; this guards a pid reused by a
 * new process between checks. */
static __always_inline __u32 target_tid(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if ((__u32)(id >> 32) != target_tgid)
		return 0;
	return (__u32)id;
}

static __always_inline void count_thread(__u32 fn, __u32 tid)
{
	struct probe_thread_key key = { .fn = fn, .tid = tid };
	struct probe_thread_value *v;

	v = bpf_map_lookup_elem(&threads, &key);
	if (!v) {
		bpf_map_update_elem(&threads, &key, &zero_thread, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&threads, &key);
		if (!v) {
			count(PROBE_CTR_THREADS_FULL);
			return;
		}
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	}
	__sync_fetch_and_add(&v->calls, 1);
}

static __always_inline void count_arg(__u32 fn, __u32 index, __u64 value)
{
	struct probe_arg_key key = { .fn = fn, .index = index, .value = value };
	__u64 *v;

	v = bpf_map_lookup_elem(&arg_values, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	/* EEXIST: another CPU inserted it first; count on theirs. */
	if (bpf_map_update_elem(&arg_values, &key, &one, BPF_NOEXIST) == 0)
		return;
	v = bpf_map_lookup_elem(&arg_values, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		count(PROBE_CTR_ARGS_FULL);
}

/* Counts one call of fn; NULL when fn is out of range. */
static __always_inline struct probe_fn_stats *count_call(__u32 fn, __u32 tid)
{
	struct probe_fn_stats *s;

	if (fn >= nfuncs) {
		count(PROBE_CTR_BAD_FN);
		return NULL;
	}
	s = bpf_map_lookup_elem(&fn_stats, &fn);
	if (!s) {
		count(PROBE_CTR_BAD_FN);
		return NULL;
	}
	s->calls++;
	count_thread(fn, tid);
	return s;
}

SEC("uprobe")
int vigil_probe_entry(struct pt_regs *ctx)
{
	__u32 fn = (__u32)bpf_get_attach_cookie(ctx);
	__u32 tid = target_tid();
	__u64 ts;

	if (!tid || !count_call(fn, tid))
		return 0;
	/* Unrolled: nargs is a load-time constant, so the verifier sees
	 * only the reads asked for. */
	if (nargs > 0)
		count_arg(fn, 0, PT_REGS_PARM1(ctx));
	if (nargs > 1)
		count_arg(fn, 1, PT_REGS_PARM2(ctx));
	if (nargs > 2)
		count_arg(fn, 2, PT_REGS_PARM3(ctx));
	if (nargs > 3)
		count_arg(fn, 3, PT_REGS_PARM4(ctx));
	if (nargs > 4)
		count_arg(fn, 4, PT_REGS_PARM5(ctx));
	if (nargs > 5)
		/* libbpf 1.1 has no PT_REGS_PARM6; x86-64 passes it in r9. */
		count_arg(fn, 5, ctx->r9);
	if (latency) {
		struct probe_start_key key = { .tid = tid, .fn = fn };

		ts = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&starts, &key, &ts, BPF_ANY))
			count(PROBE_CTR_STARTS_FULL);
	}
	return 0;
}

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;

	/* Bucket b >= 1 holds [2^(b-1), 2^b). */
	while (v && slot < VIGIL_PROBE_SLOTS - 1) {
		v >>= 1;
		slot++;
	}
	return slot;
}

SEC("uretprobe")
int vigil_probe_return(struct pt_regs *ctx)
{
	struct probe_start_key key = {};
	struct probe_fn_stats *s;
	struct probe_fn_hist *h;
	__u64 *start, delta;
	__u32 fn = (__u32)bpf_get_attach_cookie(ctx);
	__u32 tid = target_tid(), slot;

	if (!tid || fn >= nfuncs)
		return 0;
	key.tid = tid;
	key.fn = fn;
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start) {
		/* Entered before the session attached, or recursion. */
		count(PROBE_CTR_RETURN_UNMATCHED);
		return 0;
	}
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &key);
	s = bpf_map_lookup_elem(&fn_stats, &fn);
	h = bpf_map_lookup_elem(&fn_hist, &fn);
	if (!s || !h)
		return 0;
	s->returns++;
	s->latency_sum_ns += delta;
	slot = log2_slot(delta);
	if (slot < VIGIL_PROBE_SLOTS)
		h->slots[slot]++;
	return 0;
}

/* A USDT probe: libbpf's usdt.bpf.h owns the attach cookie (its spec id);
 * ours comes back through bpf_usdt_cookie. */
SEC("usdt")
int vigil_probe_usdt(struct pt_regs *ctx)
{
	__u32 fn = (__u32)bpf_usdt_cookie(ctx);
	__u32 tid = target_tid();
	long v;

	if (!tid || !count_call(fn, tid))
		return 0;
	for (__u32 i = 0; i < VIGIL_PROBE_MAX_ARGS; i++) {
		if (i >= nargs)
			break;
		if (bpf_usdt_arg(ctx, i, &v))
			break;
		count_arg(fn, i, (__u64)v);
	}
	return 0;
}
