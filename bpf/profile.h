/* Shared between bpf/profile.bpf.c and agent/profile: plain C, fixed-width,
 * no pointers. */
#ifndef VIGIL_BPF_PROFILE_H
#define VIGIL_BPF_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define VIGIL_PROFILE_COMM_LEN 16
/* The kernel's PERF_MAX_STACK_DEPTH; stack-map values are sized for it. */
#define VIGIL_PROFILE_MAX_DEPTH 127

/* One aggregate: a thread with one (user stack, kernel stack) pair. A stack
 * id < 0 is the negated errno bpf_get_stackid() returned (-EFAULT: no stack
 * of that kind, e.g. no kernel stack for a sample taken in user mode). */
struct profile_key {
	__u32 tgid;
	__u32 tid;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
};

struct profile_value {
	__u64 samples;
	char comm[VIGIL_PROFILE_COMM_LEN]; /* thread name at first sample */
	char pcomm[VIGIL_PROFILE_COMM_LEN]; /* process (group leader) name */
};

/* Indexes into the per-CPU `counters` array. */
enum profile_counter {
	PROFILE_CTR_SAMPLES = 0, /* every sample the program saw */
	PROFILE_CTR_IDLE, /* samples in the idle task (not kept) */
	PROFILE_CTR_MAP_FULL, /* counts map full: sample dropped */
	PROFILE_CTR_USER_COLLISION, /* user stack hash collision (-EEXIST) */
	PROFILE_CTR_KERNEL_COLLISION, /* kernel stack hash collision (-EEXIST) */
	PROFILE_CTR_STACK_MAP_FULL, /* stack map out of entries (-ENOMEM) */
	PROFILE_CTR_NO_BUFFER, /* active buffer missing (cannot happen) */
	PROFILE_CTR_MAX,
};

#endif /* VIGIL_BPF_PROFILE_H */
