// SPDX-License-Identifier: GPL-2.0
/* Memory over time and OOM kills.
 *
 * vigil_memory_iter: a task iterator the agent reads once per interval. It
 * emits one struct memory_proc per process (thread-group leaders with an
 * mm), with the RSS counters /proc/PID/status prints, read from the same
 * fields: on 6.2+ mm->rss_stat[] is a percpu_counter array whose `count`
 * is what get_mm_counter() returns; on 6.1 it is an atomic_long_t array
 * inside struct mm_rss_stat. A CO-RE existence check tells them apart.
 *
 * vigil_mark_victim_*: tp_btf/mark_victim fires when the OOM killer picks
 * its victim, in the context of the task whose allocation failed. 6.1
 * passes the victim's pid only; later kernels pass the task (and uid). One
 * variant is loaded, the one the running kernel's BTF matches. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "common.bpf.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} ooms SEC(".maps");

VIGIL_LOSS_COUNTERS(MEMORY_CTR_MAX)

/* 6.1's layout: struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; } */
struct mm_rss_stat___v61 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___v61 {
	struct mm_rss_stat___v61 rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __s64 mm_counter(struct mm_struct *mm, int member)
{
	__s64 v;

	struct mm_struct___v61 *old = (void *)mm;

	/* Not bpf_core_field_size(mm->rss_stat): that relocation fails
	 * outright where the field's type differs (6.1's struct vs 6.2's
	 * array). An existence check on the 6.1 shape is 1 or 0 instead. */
	if (bpf_core_field_exists(old->rss_stat.count)) {
		v = BPF_CORE_READ(old, rss_stat.count[member & 3].counter);
	} else {
		v = BPF_CORE_READ(mm, rss_stat[member & 3].count);
	}
	/* get_mm_counter() clamps: a per-CPU batch can leave the sum below 0
	 * for a moment. */
	return v < 0 ? 0 : v;
}

static __always_inline __u64 memory_cgroup_id(struct task_struct *task)
{
	int id;

	/* A kernel without CONFIG_MEMCG has no memory controller. */
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return 0;
	id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	return BPF_CORE_READ(task, cgroups, subsys[id & 15], cgroup, kn, id);
}

/* enum { MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES } is an
 * anonymous enum (no CO-RE name to relocate against); its order has not
 * changed since 4.5. */
#define VIGIL_MM_FILEPAGES 0
#define VIGIL_MM_ANONPAGES 1
#define VIGIL_MM_SWAPENTS 2
#define VIGIL_MM_SHMEMPAGES 3

static __always_inline void read_rss(struct mm_struct *mm, __u64 *anon,
				     __u64 *file, __u64 *shmem, __u64 *swap)
{
	*file = mm_counter(mm, VIGIL_MM_FILEPAGES);
	*anon = mm_counter(mm, VIGIL_MM_ANONPAGES);
	*swap = mm_counter(mm, VIGIL_MM_SWAPENTS);
	*shmem = mm_counter(mm, VIGIL_MM_SHMEMPAGES);
}

SEC("iter/task")
int vigil_memory_iter(__u64 *raw)
{
	/* The argument is declared as BPF_PROG's tracing context is: 6.1
	 * refuses a program whose BTF says struct bpf_iter__task * ("reg type
	 * unsupported for arg#0"); the accesses below are the same. */
	struct bpf_iter__task *ctx = (void *)raw;
	struct task_struct *task = ctx->task;
	struct memory_proc p = {};
	struct mm_struct *mm;

	if (!task || task->pid != task->tgid)
		return 0;
	mm = task->mm;
	if (!mm) /* kernel threads, and a process past exit_mm() */
		return 0;
	p.tgid = task->tgid;
	p.ppid = BPF_CORE_READ(task, real_parent, tgid);
	p.start_ns = task->start_time;
	p.cgroup_id = memory_cgroup_id(task);
	read_rss(mm, &p.anon_pages, &p.file_pages, &p.shmem_pages,
		 &p.swap_pages);
	__builtin_memcpy(p.comm, task->comm, sizeof(p.comm));
	bpf_seq_write(ctx->meta->seq, &p, sizeof(p));
	return 0;
}

static __always_inline void record_oom(struct task_struct *victim,
				       __u32 victim_pid)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct memory_oom *e;
	struct mm_struct *mm;
	__u64 swap;

	e = bpf_ringbuf_reserve(&ooms, sizeof(*e), 0);
	if (!e) {
		count(MEMORY_CTR_OOM_RINGBUF_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->victim_tgid = victim_pid;
	e->trigger_tgid = cur->tgid;
	__builtin_memcpy(e->trigger_comm, cur->comm, sizeof(e->trigger_comm));
	if (victim) {
		e->victim_tgid = BPF_CORE_READ(victim, tgid);
		e->victim_cgroup_id = memory_cgroup_id(victim);
		BPF_CORE_READ_STR_INTO(&e->victim_comm, victim, comm);
		mm = BPF_CORE_READ(victim, mm);
		if (mm) {
			read_rss(mm, &e->victim_anon_pages,
				 &e->victim_file_pages, &e->victim_shmem_pages,
				 &swap);
			e->victim_rss_known = 1;
		}
	}
	bpf_ringbuf_submit(e, 0);
}

/* 6.1: TP_PROTO(int pid). The agent fills in what it last saw of the pid. */
SEC("tp_btf/mark_victim")
int BPF_PROG(vigil_mark_victim_pid, int pid)
{
	record_oom(NULL, pid);
	return 0;
}

/* Later kernels: TP_PROTO(struct task_struct *task, uid_t uid). */
SEC("tp_btf/mark_victim")
int BPF_PROG(vigil_mark_victim_task, struct task_struct *task)
{
	record_oom(task, 0);
	return 0;
}
