// SPDX-License-Identifier: GPL-2.0
/* The floor for the syscall benchmark: do-nothing programs on the same hooks
 * vigil uses. What they cost is the price of the syscall slow path itself.
 *
 * With `part` set (floor_loader PART), the programs do one of the pieces
 * vigil_sys_enter/vigil_sys_exit are made of and nothing else, so the
 * benchmark can price each piece above the empty floor. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

enum floor_part {
	PART_EMPTY = 0,
	PART_KTIME, /* bpf_ktime_get_ns() at enter and at exit */
	PART_STORAGE, /* task storage lookup at exit (entry made at enter once) */
	PART_STORAGE_BOTH, /* task storage lookup at enter and at exit */
	PART_PRANDOM, /* bpf_get_prandom_u32() at enter */
	PART_HASH, /* hash lookup keyed by (tgid, tid, nr) at exit */
};

const volatile int part = PART_EMPTY;
__u64 sink;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} floor_storage SEC(".maps");

struct floor_key {
	__u32 tgid, tid, nr, pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct floor_key);
	__type(value, __u64);
} floor_hash SEC(".maps");

static __always_inline __u64 *storage(__u64 flags)
{
	return bpf_task_storage_get(&floor_storage, bpf_get_current_task_btf(),
				    0, flags);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_sys_enter, struct pt_regs *regs, long id)
{
	__u64 *v;

	if (part == PART_KTIME) {
		sink = bpf_ktime_get_ns();
	} else if (part == PART_STORAGE || part == PART_STORAGE_BOTH) {
		/* PART_STORAGE creates the entry once per thread only. */
		if (part == PART_STORAGE_BOTH || !storage(0)) {
			v = storage(BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (v)
				*v = id;
		}
	} else if (part == PART_PRANDOM) {
		if (!(bpf_get_prandom_u32() & 15))
			sink++;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	struct floor_key key = {};
	__u64 id, *v;

	if (part == PART_KTIME) {
		sink = bpf_ktime_get_ns();
	} else if (part == PART_STORAGE || part == PART_STORAGE_BOTH) {
		v = storage(0);
		if (v)
			sink = *v;
	} else if (part == PART_HASH) {
		id = bpf_get_current_pid_tgid();
		key.tgid = id >> 32;
		key.tid = (__u32)id;
		key.nr = regs->orig_ax;
		v = bpf_map_lookup_elem(&floor_hash, &key);
		if (v)
			*v += 1;
		else
			bpf_map_update_elem(&floor_hash, &key, &id,
					    BPF_NOEXIST);
	}
	return 0;
}
