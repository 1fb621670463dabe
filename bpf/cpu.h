/* Shared between bpf/cpu.bpf.c and agent/cpu: plain C, fixed-width, no
 * pointers. */
#ifndef VIGIL_BPF_CPU_H
#define VIGIL_BPF_CPU_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_CPU_COMM_LEN 16

/* task->flags & PF_KTHREAD (include/linux/sched.h, unchanged since 2.6). */
#define VIGIL_PF_KTHREAD 0x00200000

/* One thread as the task iterator saw it. */
struct cpu_task {
	__u32 tgid;
	__u32 tid;
	__u64 start_ns; /* task->start_time: CLOCK_MONOTONIC ns at fork */
	/* se.sum_exec_runtime: CPU time the scheduler charged the thread since
	 * it started, in ns (what /proc/PID/task/TID/schedstat prints first,
	 * and what utime + stime are scaled to). */
	__u64 runtime_ns;
	/* signal->sum_sched_runtime: CPU time of the process's threads that
	 * have exited, in ns (thread_group_cputime() adds it), so a process's
	 * CPU stays exact when threads come and go between two passes. */
	__u64 dead_runtime_ns;
	__u32 kthread; /* 1 for a kernel thread */
	__u32 pad;
	char comm[VIGIL_CPU_COMM_LEN];
};

#endif
