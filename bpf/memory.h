/* Shared between bpf/memory.bpf.c and agent/memory: plain C, fixed-width,
 * no pointers. */
#ifndef VIGIL_BPF_MEMORY_H
#define VIGIL_BPF_MEMORY_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_MEMORY_COMM_LEN 16

/* One process as the task iterator saw it: the counters /proc/PID/status
 * prints as RssAnon, RssFile, RssShmem and VmSwap, read from the same
 * kernel fields (mm->rss_stat), in pages. */
struct memory_proc {
	__u32 tgid;
	__u32 ppid;
	__u64 start_ns; /* task start, ns since boot: tells a reused pid apart */
	__u64 cgroup_id; /* the memory controller's cgroup (kernfs id = inode) */
	__u64 anon_pages;
	__u64 file_pages;
	__u64 shmem_pages;
	__u64 swap_pages;
	char comm[VIGIL_MEMORY_COMM_LEN];
};

/* One OOM kill (tp_btf/mark_victim), sent through a ring buffer. */
struct memory_oom {
	__u64 ts_ns; /* bpf_ktime_get_boot_ns at the kill */
	__u32 victim_tgid;
	__u32 trigger_tgid; /* the task whose allocation ran the OOM killer */
	__u64 victim_cgroup_id;
	__u64 victim_anon_pages; /* 0 when victim_rss_known is 0 (kernel < 6.x:
				  * mark_victim carries only the pid) */
	__u64 victim_file_pages;
	__u64 victim_shmem_pages;
	__u32 victim_rss_known;
	__u32 pad;
	char victim_comm[VIGIL_MEMORY_COMM_LEN];
	char trigger_comm[VIGIL_MEMORY_COMM_LEN];
};

enum memory_counter {
	MEMORY_CTR_OOM_RINGBUF_FULL, /* an OOM kill not recorded */
	MEMORY_CTR_MAX,
};

#endif
