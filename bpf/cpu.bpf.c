// SPDX-License-Identifier: GPL-2.0
/* Exact CPU time per thread.
 *
 * vigil_cpu_iter: a task iterator the agent reads once per interval. It
 * emits one struct cpu_task per thread (every task, kernel threads too)
 * with the scheduler's own runtime counter: the agent takes differences
 * between passes, so a thread's CPU per interval is what the kernel
 * charged it, not a sample. No hook runs between passes: the cost is one
 * walk of the task list per interval, paid by the agent's read(). */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cpu.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int vigil_cpu_iter(__u64 *raw)
{
	/* Declared as memory.bpf.c's iterator is: 6.1 refuses a program whose
	 * BTF says struct bpf_iter__task * ("reg type unsupported for arg#0"). */
	struct bpf_iter__task *ctx = (void *)raw;
	struct task_struct *task = ctx->task;
	struct cpu_task t = {};

	if (!task)
		return 0;
	t.tgid = task->tgid;
	t.tid = task->pid;
	t.start_ns = task->start_time;
	/* Updated by update_curr() at every tick and switch: a thread on CPU
	 * right now lags by at most one tick, caught up by the next pass. */
	t.runtime_ns = task->se.sum_exec_runtime;
	t.dead_runtime_ns = BPF_CORE_READ(task, signal, sum_sched_runtime);
	t.kthread = (task->flags & VIGIL_PF_KTHREAD) ? 1 : 0;
	__builtin_memcpy(t.comm, task->comm, sizeof(t.comm));
	bpf_seq_write(ctx->meta->seq, &t, sizeof(t));
	return 0;
}
