// SPDX-License-Identifier: GPL-2.0
/* CPU profiler: a perf_event program on every online CPU samples the running
 * thread and counts (tgid, tid, user stack, kernel stack) in the kernel.
 *
 * Double-buffered: buffer b is counts_b + stacks_b, reached through two
 * two-slot ARRAY_OF_MAPS. The program reads `active_buf` once per sample and
 * uses that one index for both maps, so a sample's stack ids always live in
 * the stack map of its counts. The agent flips `active_buf`, then rewrites a
 * map-in-map slot: that update returns only after an RCU grace period
 * (maybe_wait_bpf_programs()), and perf_event programs run inside one, so no
 * program still writes the retired buffer when the agent drains it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "profile.h"

char LICENSE[] SEC("license") = "GPL";

#define EEXIST 17
#define ENOMEM 12

/* max_entries of all four inner maps are set by the agent before load. */
struct counts_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct profile_key);
	__type(value, struct profile_value);
};

struct stack_map {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, VIGIL_PROFILE_MAX_DEPTH * sizeof(__u64));
};

struct counts_hash counts_a SEC(".maps");
struct counts_hash counts_b SEC(".maps");
struct stack_map stacks_a SEC(".maps");
struct stack_map stacks_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct counts_hash);
} counts_bufs SEC(".maps") = {
	.values = { [0] = &counts_a, [1] = &counts_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct stack_map);
} stack_bufs SEC(".maps") = {
	.values = { [0] = &stacks_a, [1] = &stacks_b },
};

VIGIL_LOSS_COUNTERS(PROFILE_CTR_MAX)

/* Written by the agent through the mmapped .bss. */
volatile __u32 active_buf;

static const struct profile_value zero_value;

static __always_inline void count_stack_error(long id, __u32 collision)
{
	if (id == -EEXIST)
		count(collision);
	else if (id == -ENOMEM)
		count(PROFILE_CTR_STACK_MAP_FULL);
}

SEC("perf_event")
int vigil_profile_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task;
	struct profile_value *v;
	struct profile_key key = {};
	void *counts, *stacks;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 buf = active_buf & 1;
	long sid;

	count(PROFILE_CTR_SAMPLES);
	key.tgid = id >> 32;
	key.tid = (__u32)id;
	if (key.tid == 0) {
		count(PROFILE_CTR_IDLE);
		return 0;
	}
	counts = bpf_map_lookup_elem(&counts_bufs, &buf);
	stacks = bpf_map_lookup_elem(&stack_bufs, &buf);
	if (!counts || !stacks) {
		count(PROFILE_CTR_NO_BUFFER);
		return 0;
	}
	sid = bpf_get_stackid(ctx, stacks, 0);
	count_stack_error(sid, PROFILE_CTR_KERNEL_COLLISION);
	key.kernel_stack_id = sid;
	sid = bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK);
	count_stack_error(sid, PROFILE_CTR_USER_COLLISION);
	key.user_stack_id = sid;

	v = bpf_map_lookup_elem(counts, &key);
	if (!v) {
		/* EEXIST is fine: another CPU cannot create this thread's key,
		 * but a retry after a racing insert would be harmless too. */
		bpf_map_update_elem(counts, &key, &zero_value, BPF_NOEXIST);
		v = bpf_map_lookup_elem(counts, &key);
		if (!v) {
			count(PROFILE_CTR_MAP_FULL);
			return 0;
		}
		task = bpf_get_current_task_btf();
		bpf_get_current_comm(v->comm, sizeof(v->comm));
		BPF_CORE_READ_STR_INTO(&v->pcomm, task, group_leader, comm);
	}
	__sync_fetch_and_add(&v->samples, 1);
	return 0;
}
