// SPDX-License-Identifier: GPL-2.0
/* Profiler: perf_event programs on every online CPU count (kind, tgid, tid,
 * user stack, kernel stack) in the kernel, for two kinds of sample:
 *   - vigil_profile_sample, on cpu-clock (or cycles): the running thread,
 *     sample_hz times a second (PROFILE_KIND_CPU);
 *   - vigil_profile_fault_user and _kernel, on the x86 page-fault
 *     tracepoints (tp_btf/page_fault_user, page_fault_kernel): the faulting
 *     thread, every fault_period-th fault on that CPU (PROFILE_KIND_FAULT),
 *     its user stack walked from the fault's registers, so the stack is the
 *     code that first touched the memory. Not the software page-faults perf
 *     event: once one is open the kernel runs perf's event accounting on
 *     every fault of the host; with a do-nothing program it slowed a
 *     fault-bound loop by 10.8%, where this tracepoint and its countdown
 *     stayed within noise (README, "Cost in the faulting process").
 * and vigil_profile_map at sys_exit: each mmap, munmap or brk call that
 * maps or unmaps at least map_min_bytes, with the bytes (PROFILE_KIND_MMAP
 * and the other map kinds). It is tail-called from bpf/syscalls.bpf.c's
 * sys_exit program for those three syscalls (the agent puts it in that
 * program's exit_hooks slot), or attached on its own when the syscalls
 * capability is off.
 * All share the unwinder maps, the counts maps and one walk body; they
 * differ only in the key's kind. They cannot interleave on one CPU (the
 * per-CPU walk state would be clobbered), so each context that can interrupt
 * another has its own walk (WALK_*).
 *
 * User stacks are walked here with unwind tables the agent compiled from
 * each mapped file's .eh_frame (bpf/unwind.h): distro binaries and glibc
 * have no frame pointers, so the kernel's frame-pointer walk
 * (bpf_get_stackid with BPF_F_USER_STACK) loses or invents their callers.
 * Frame pointers are used only in mappings the agent marked as having no
 * CFI (and JIT code in anonymous memory). Every recorded frame lies inside
 * an executable mapping the agent loaded; where no rule applies the walk
 * stops and says why (profile_key.user_end), it never guesses. Kernel
 * stacks keep bpf_get_stackid (the kernel has ORC and frame pointers).
 *
 * Double-buffered: buffer b is counts_b + stacks_b + ustacks_b, reached
 * through two-slot ARRAY_OF_MAPS. The program reads `active_buf` once per
 * sample and uses that one index for all three, so a sample's stacks always
 * live beside its counts. The agent flips `active_buf`, then rewrites a
 * map-in-map slot: that update returns only after an RCU grace period
 * (maybe_wait_bpf_programs()), and perf_event and tp_btf programs run inside
 * an RCU read section, so no program still writes the retired buffer when
 * the agent drains it.
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
/* include/linux/sched.h; unchanged since 2.6. */
#define PF_KTHREAD 0x00200000

/* max_entries of every map sized 1 here is set by the agent before load. */
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

struct ustack_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, struct profile_user_stack);
};

struct counts_hash counts_a SEC(".maps");
struct counts_hash counts_b SEC(".maps");
struct stack_map stacks_a SEC(".maps");
struct stack_map stacks_b SEC(".maps");
struct ustack_hash ustacks_a SEC(".maps");
struct ustack_hash ustacks_b SEC(".maps");

VIGIL_BUFFER_PAIR(counts_bufs, struct counts_hash, counts_a, counts_b);
VIGIL_BUFFER_PAIR(stack_bufs, struct stack_map, stacks_a, stacks_b);
VIGIL_BUFFER_PAIR(ustack_bufs, struct ustack_hash, ustacks_a, ustacks_b);

/* The unwind tables. Rows of every file, in extents the agent allocates
 * (mmapped: the agent writes rows in place, then publishes the extent in
 * unwind_files). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct unwind_row);
} unwind_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_file);
} unwind_files SEC(".maps");

/* tgid -> its executable mappings. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_procs SEC(".maps");

/* Processes whose mappings the agent should (re)load: tgid -> enum
 * unwind_want. The agent drains it every interval. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} unwind_wanted SEC(".maps");

/* A new request wakes the agent's unwind worker at once: a process's
 * samples stop at the leaf until its mappings are loaded. Only the first
 * request per process is sent, so this is quiet in steady state. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} unwind_notify SEC(".maps");

/* One walk's state and the stack it builds (too big for the BPF stack). */
struct walk {
	struct profile_user_stack stack;
	__u64 pc, sp, bp;
	__u64 hash;
	__u32 tgid;
	__u32 depth;
	__u32 end;
	__u32 bp_known;
	/* The binary searches' bounds. They live here, not in registers, so
	 * the verifier does not track them: every path through one search
	 * step reaches the next with the same register state and is pruned.
	 * In registers each step doubled the states (the index offsets a map
	 * value pointer, so its range is kept precise) and the program hit
	 * the 1M-instruction limit on 6.18.44. */
	__u32 lo, hi;
};

/* Forces the access through memory: the compiler may not keep it in a
 * register across search steps. */
#define MEM(x) (*(volatile __typeof__(x) *)&(x))

/* Three walks per CPU. The cpu-clock program (an interrupt, an NMI with a
 * PMU) can interrupt the sys_exit and fault programs mid-walk; those two
 * run with preemption off and never nest in themselves (prog->active), and
 * the fault programs keep out of every fault taken with page faults
 * disabled, which is the only way a fault can land inside another program
 * (a bpf_probe_read_user). */
#define WALK_PERF 0
#define WALK_MAP 1
#define WALK_FAULT 2
/* uprobe programs (vigil_profile_probe) run with migration off but may be
 * preempted, and another thread's uprobe may then run on this CPU: their
 * walk lives with the thread instead (task_walks). */
#define WALK_TASK 3
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, struct walk);
} walks SEC(".maps");

VIGIL_LOSS_COUNTERS(PROFILE_CTR_MAX)

/* The walk of a thread hit by vigil_profile_probe; freed with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct walk);
} task_walks SEC(".maps");

/* vigil probe --stacks: calls per (cookie, user stack), and the stacks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_PROFILE_PROBE_STACKS);
	__type(key, struct profile_probe_key);
	__type(value, __u64);
} probe_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_PROFILE_PROBE_USTACKS);
	__type(key, struct profile_probe_ustack_key);
	__type(value, struct profile_user_stack);
} probe_ustacks SEC(".maps");

static __always_inline struct walk *walk_of(__u32 slot)
{
	if (slot == WALK_TASK)
		return bpf_task_storage_get(&task_walks,
					    bpf_get_current_task_btf(), 0, 0);
	return bpf_map_lookup_elem(&walks, &slot);
}

/* Written by the agent through the mmapped .bss. */
volatile __u32 active_buf;

static const struct profile_value zero_value;

static __always_inline void want(__u32 tgid, __u32 why)
{
	if (bpf_map_update_elem(&unwind_wanted, &tgid, &why, BPF_NOEXIST) == 0)
		bpf_ringbuf_output(&unwind_notify, &tgid, sizeof(tgid), 0);
}

/* One step of the binary searches below, which keep [lo, hi) around the
 * last entry whose start is at most the key. */
static __always_inline void search_step(struct walk *w, __u32 mid,
					bool key_below_mid)
{
	if (key_below_mid)
		MEM(w->hi) = mid;
	else
		MEM(w->lo) = mid + 1;
}

/* FNV-1a over the frames: the user stack's key. */
static __always_inline __u64 mix(__u64 h, __u64 pc)
{
	return (h ^ pc) * 0x100000001b3ull;
}

static __always_inline const struct unwind_mapping *
find_mapping(struct walk *w, const struct unwind_proc *proc, __u64 pc)
{
	const struct unwind_mapping *m;
	__u32 mid, count = proc->count;

	MEM(w->lo) = 0;
	MEM(w->hi) = count < VIGIL_UNWIND_MAX_MAPPINGS ?
			     count :
			     VIGIL_UNWIND_MAX_MAPPINGS;
	for (int i = 0; i < VIGIL_UNWIND_MAPPING_STEPS; i++) {
		if (MEM(w->lo) >= MEM(w->hi))
			break;
		mid = (MEM(w->lo) + MEM(w->hi)) / 2;
		search_step(
			w, mid,
			pc < proc->maps[mid & (VIGIL_UNWIND_MAX_MAPPINGS - 1)]
					.start);
	}
	mid = MEM(w->lo);
	if (mid == 0)
		return NULL;
	m = &proc->maps[(mid - 1) & (VIGIL_UNWIND_MAX_MAPPINGS - 1)];
	return pc < m->end ? m : NULL;
}

/* The row covering rel in a file's rows, or NULL. */
static __always_inline const struct unwind_row *
find_row(struct walk *w, const struct unwind_file *f, __u32 rel)
{
	const struct unwind_row *row;
	__u32 mid, idx;

	MEM(w->lo) = 0;
	MEM(w->hi) = f->rows;
	for (int i = 0; i < VIGIL_UNWIND_ROW_STEPS; i++) {
		if (MEM(w->lo) >= MEM(w->hi))
			break;
		mid = (MEM(w->lo) + MEM(w->hi)) / 2;
		idx = f->first_row + mid;
		row = bpf_map_lookup_elem(&unwind_rows, &idx);
		if (!row)
			return NULL;
		search_step(w, mid, rel < row->pc);
	}
	mid = MEM(w->lo);
	if (mid == 0)
		return NULL;
	idx = f->first_row + mid - 1;
	return bpf_map_lookup_elem(&unwind_rows, &idx);
}

/* One frame with frame pointers: returns 1 to stop. */
static __always_inline long step_fp(struct walk *w)
{
	__u64 frame[2]; /* saved rbp, return address */

	if (!w->bp_known) {
		w->end = UNWIND_END_BAD_FRAME;
		return 1;
	}
	if (w->bp == 0) {
		/* _start and clone zero rbp: the chain's end. */
		w->end = UNWIND_END_ROOT;
		return 1;
	}
	if (bpf_probe_read_user(frame, sizeof(frame), (void *)w->bp)) {
		w->end = UNWIND_END_READ;
		return 1;
	}
	/* Callers' frames sit at higher addresses; anything else is not a
	 * frame-pointer chain (code that uses rbp as a general register). */
	if (frame[0] != 0 && frame[0] <= w->bp)
		w->bp_known = 0;
	w->sp = w->bp + 16;
	w->bp = frame[0];
	w->pc = frame[1];
	count(PROFILE_CTR_FP_FRAMES);
	return 0;
}

/* One frame with a CFI row: returns 1 to stop. */
static __always_inline long step_cfi(struct walk *w,
				     const struct unwind_row *row)
{
	__u64 cfa, ra, bp;

	switch (row->kind & 0xf) {
	case UNWIND_CFA_END:
		w->end = UNWIND_END_ROOT;
		return 1;
	case UNWIND_CFA_RSP:
		cfa = w->sp + ((__u64)row->cfa_off << 3);
		break;
	case UNWIND_CFA_RBP:
		if (!w->bp_known) {
			w->end = UNWIND_END_BAD_FRAME;
			return 1;
		}
		cfa = w->bp + ((__u64)row->cfa_off << 3);
		break;
	case UNWIND_CFA_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= 11 ? 8 : 0);
		break;
	default:
		w->end = UNWIND_END_NO_ROW;
		return 1;
	}
	if (cfa <= w->sp) {
		w->end = UNWIND_END_BAD_FRAME;
		return 1;
	}
	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8))) {
		w->end = UNWIND_END_READ;
		return 1;
	}
	switch (row->kind >> 4) {
	case UNWIND_RBP_OFFSET:
		if (bpf_probe_read_user(
			    &bp, sizeof(bp),
			    (void *)(cfa + (__s64)row->rbp_off * 8))) {
			w->end = UNWIND_END_READ;
			return 1;
		}
		w->bp = bp;
		w->bp_known = 1;
		break;
	case UNWIND_RBP_UNKNOWN:
		w->bp_known = 0;
		break;
	default:
		break;
	}
	w->sp = cfa;
	w->pc = ra;
	count(PROFILE_CTR_CFI_FRAMES);
	return 0;
}

static __always_inline void push_frame(struct walk *w)
{
	if (w->depth >= VIGIL_PROFILE_MAX_DEPTH)
		return;
	w->stack.ips[w->depth] = w->pc;
	w->hash = mix(w->hash, w->pc);
	w->depth++;
	count(PROFILE_CTR_FRAMES);
}

/* bpf_loop callback: records w->pc as a frame, then steps to its caller.
 * slot: which walk (WALK_*). */
static long unwind_step(__u32 i, void *slot)
{
	const struct unwind_mapping *m;
	const struct unwind_proc *proc;
	const struct unwind_file *f;
	const struct unwind_row *row;
	struct walk *w;
	__u32 file;
	__u64 rel;

	w = walk_of(*(__u32 *)slot);
	if (!w)
		return 1;
	if (w->pc == 0) {
		w->end = UNWIND_END_ROOT;
		return 1;
	}
	proc = bpf_map_lookup_elem(&unwind_procs, &w->tgid);
	if (!proc) {
		w->end = UNWIND_END_NO_PROC;
		return 1;
	}
	if (w->depth >= VIGIL_PROFILE_MAX_DEPTH) {
		w->end = UNWIND_END_DEPTH;
		return 1;
	}
	m = find_mapping(w, proc, w->pc);
	if (!m) {
		/* Mapped since the agent read the maps (dlopen, JIT). The leaf
		 * is where the CPU was, so it is kept; a caller is not. */
		want(w->tgid, UNWIND_WANT_STALE);
		if (w->depth == 0)
			push_frame(w);
		w->end = UNWIND_END_NO_MAPPING;
		return 1;
	}
	push_frame(w);

	file = m->file;
	if (file == VIGIL_UNWIND_FILE_FP)
		return step_fp(w);
	f = bpf_map_lookup_elem(&unwind_files, &file);
	if (!f || f->rows == 0)
		return step_fp(w);
	/* A caller's pc is a return address: look up the call instruction,
	 * which may be the last of its function. */
	rel = (w->depth == 1 ? w->pc : w->pc - 1) - m->bias;
	if (rel > 0xffffffffull) {
		w->end = UNWIND_END_NO_ROW;
		return 1;
	}
	row = find_row(w, f, (__u32)rel);
	if (!row) {
		w->end = UNWIND_END_NO_ROW;
		return 1;
	}
	return step_cfi(w, row);
}

/* The per-CPU walk for the current thread, or NULL with key->user_end set
 * when it has no user memory to walk. */
static __always_inline struct walk *
begin_walk(struct task_struct *task, struct profile_key *key, __u32 slot)
{
	struct walk *w;

	if (!task->mm) {
		key->user_end = UNWIND_END_NO_USER;
		return NULL;
	}
	w = bpf_map_lookup_elem(&walks, &slot);
	if (!w)
		key->user_end = UNWIND_END_NO_USER;
	return w;
}

/* Starts the walk where the thread entered the kernel (its saved user
 * registers); 0 on success. */
static __always_inline int from_entry_regs(struct walk *w,
					   struct task_struct *task,
					   struct profile_key *key)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	if (!regs) {
		key->user_end = UNWIND_END_NO_USER;
		return -1;
	}
	w->pc = BPF_CORE_READ(regs, ip);
	w->sp = BPF_CORE_READ(regs, sp);
	w->bp = BPF_CORE_READ(regs, bp);
	return 0;
}

/* Walks from w->pc/sp/bp into w->stack; sets key->user_end. */
static __always_inline struct walk *
finish_walk(struct walk *w, struct profile_key *key, __u32 slot)
{
	w->bp_known = 1;
	w->tgid = key->tgid;
	w->depth = 0;
	w->end = UNWIND_END_DEPTH;
	w->hash = 0xcbf29ce484222325ull;

	if (!bpf_map_lookup_elem(&unwind_procs, &w->tgid)) {
		/* Not loaded yet: the leaf pc is real; its callers wait for
		 * the agent to read this process's mappings. */
		want(w->tgid, UNWIND_WANT_NEW);
		w->stack.ips[0] = w->pc;
		w->hash = mix(w->hash, w->pc);
		w->depth = 1;
		w->end = UNWIND_END_NO_PROC;
	} else {
		bpf_loop(VIGIL_PROFILE_MAX_DEPTH + 1, unwind_step, &slot, 0);
	}
	if (w->depth < VIGIL_PROFILE_MAX_DEPTH)
		w->stack.ips[w->depth] = 0;
	key->user_end = w->end;
	return w;
}

/* Walks the sampled thread's user stack into the per-CPU walk; returns it,
 * or NULL with key->user_end set when there is no user stack. */
static __always_inline struct walk *
walk_user_stack(struct bpf_perf_event_data *ctx, struct task_struct *task,
		struct profile_key *key)
{
	struct walk *w = begin_walk(task, key, WALK_PERF);

	if (!w)
		return NULL;
	/* User mode or kernel mode by the sampled ip: x86-64 user addresses
	 * have bit 63 clear, kernel text has it set. Not `regs.cs & 3`: the
	 * field is `csx` in 6.18's BTF and `cs` in 6.1's, and a CO-RE
	 * relocation against the missing name poisons the program. */
	if ((__s64)ctx->regs.ip >= 0) {
		/* ctx fields are loaded directly: the verifier rewrites them. */
		w->pc = ctx->regs.ip;
		w->sp = ctx->regs.sp;
		w->bp = ctx->regs.bp;
	} else if (from_entry_regs(w, task, key)) {
		/* A sample in kernel mode walks from where the thread
		 * entered. */
		return NULL;
	}
	return finish_walk(w, key, WALK_PERF);
}

/* Adds one sample (or map call of `bytes`) at key, the user stack w walked
 * (NULL: none) stored beside it in the active buffer. */
static __always_inline int count_at(struct profile_key *key, struct walk *w,
				    struct task_struct *task, void *counts,
				    void *ustacks, __u64 bytes)
{
	struct profile_value *v;
	long err;

	count(PROFILE_CTR_END_BASE +
	      (key->user_end < UNWIND_END_MAX ? key->user_end : 0));
	if (w && w->depth > 0) {
		key->user_stack = w->hash ? w->hash : 1;
		if (!bpf_map_lookup_elem(ustacks, &key->user_stack)) {
			err = bpf_map_update_elem(ustacks, &key->user_stack,
						  &w->stack, BPF_NOEXIST);
			if (err && err != -EEXIST) {
				count(PROFILE_CTR_STACK_MAP_FULL);
				key->user_stack = 0;
			}
		}
	}

	v = bpf_map_lookup_elem(counts, key);
	if (!v) {
		/* EEXIST is fine: another CPU cannot create this thread's key,
		 * but a retry after a racing insert would be harmless too. */
		bpf_map_update_elem(counts, key, &zero_value, BPF_NOEXIST);
		v = bpf_map_lookup_elem(counts, key);
		if (!v) {
			count(PROFILE_CTR_MAP_FULL);
			return 0;
		}
		bpf_get_current_comm(v->comm, sizeof(v->comm));
		BPF_CORE_READ_STR_INTO(&v->pcomm, task, group_leader, comm);
	}
	__sync_fetch_and_add(&v->samples, 1);
	if (bytes)
		__sync_fetch_and_add(&v->bytes, bytes);
	return 0;
}

/* The key's thread and kind: the current thread's. */
static __always_inline void key_of_current(struct profile_key *key, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();

	key->tgid = id >> 32;
	key->tid = (__u32)id;
	key->kind = kind;
}

/* The active buffer's counts and stack maps, read through one `active_buf`
 * load so a sample's stacks live beside its counts; -1 (counted) if one is
 * missing. */
static __always_inline int active_maps(void **counts, void **stacks,
				       void **ustacks)
{
	__u32 buf = active_buf & 1;

	*counts = bpf_map_lookup_elem(&counts_bufs, &buf);
	*stacks = bpf_map_lookup_elem(&stack_bufs, &buf);
	*ustacks = bpf_map_lookup_elem(&ustack_bufs, &buf);
	if (!*counts || !*stacks || !*ustacks) {
		count(PROFILE_CTR_NO_BUFFER);
		return -1;
	}
	return 0;
}

/* The kernel stack's id in stacks (negative: none, counted when lost). */
static __always_inline long kernel_stack_id(void *ctx, void *stacks)
{
	long sid = bpf_get_stackid(ctx, stacks, 0);

	if (sid == -EEXIST)
		count(PROFILE_CTR_KERNEL_COLLISION);
	else if (sid == -ENOMEM)
		count(PROFILE_CTR_STACK_MAP_FULL);
	return sid;
}

/* One CPU sample of the running thread, with its kernel and user stacks. */
SEC("perf_event")
int vigil_profile_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct profile_key key = {};
	void *counts, *stacks, *ustacks;
	struct walk *w;

	count(PROFILE_CTR_SAMPLES);
	if ((__u32)bpf_get_current_pid_tgid() == 0) {
		count(PROFILE_CTR_IDLE);
		return 0;
	}
	key_of_current(&key, PROFILE_KIND_CPU);
	if (active_maps(&counts, &stacks, &ustacks))
		return 0;
	key.kernel_stack_id = kernel_stack_id(ctx, stacks);
	w = walk_user_stack(ctx, task, &key);
	return count_at(&key, w, task, counts, ustacks, 0);
}

/* Faults per sample (the agent sets it before load; the programs are not
 * loaded at 0). */
const volatile __u32 fault_period = 64;

/* Faults seen on each CPU since its last sample. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fault_countdown SEC(".maps");

/* True on every fault_period-th fault of this CPU. */
static __always_inline bool fault_due(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&fault_countdown, &zero);

	if (!n || ++*n < fault_period)
		return false;
	*n = 0;
	return true;
}

/* One page-fault sample of the current thread: its kernel stack when the
 * fault was taken in the kernel (kstack), its user stack from uregs (a
 * fault in user mode) or from where it entered the kernel. */
static __always_inline int record_fault(void *ctx, struct task_struct *task,
					struct pt_regs *uregs, bool kstack)
{
	struct profile_key key = {};
	void *counts, *stacks, *ustacks;
	struct walk *w;

	count(PROFILE_CTR_FAULT_SAMPLES);
	if (!task->mm || (task->flags & PF_KTHREAD)) {
		count(PROFILE_CTR_FAULT_NO_USER);
		return 0;
	}
	key_of_current(&key, PROFILE_KIND_FAULT);
	if (active_maps(&counts, &stacks, &ustacks))
		return 0;
	key.kernel_stack_id = kstack ? kernel_stack_id(ctx, stacks) :
				       -14; /* -EFAULT: none */
	w = begin_walk(task, &key, WALK_FAULT);
	if (w) {
		if (uregs) {
			w->pc = uregs->ip;
			w->sp = uregs->sp;
			w->bp = uregs->bp;
		} else if (from_entry_regs(w, task, &key)) {
			w = NULL;
		}
	}
	if (w)
		w = finish_walk(w, &key, WALK_FAULT);
	return count_at(&key, w, task, counts, ustacks, 0);
}

/* A fault in user mode: regs are the thread's user registers. */
SEC("tp_btf/page_fault_user")
int BPF_PROG(vigil_profile_fault_user, unsigned long address,
	     struct pt_regs *regs, unsigned long error_code)
{
	if (!fault_due())
		return 0;
	return record_fault(ctx, bpf_get_current_task_btf(), regs, false);
}

/* A fault in kernel mode. One on a user address with faults enabled is the
 * process touching its memory through the kernel (read() into a fresh
 * buffer: copy_to_user), the same fault the kernel's page-faults event
 * counts; its user stack is walked from where the thread entered. Faults
 * on kernel addresses, and those taken with page faults disabled (a BPF
 * program's bpf_probe_read_user, which fixes them up and goes on), are
 * not the process's and are skipped before they count. */
SEC("tp_btf/page_fault_kernel")
int BPF_PROG(vigil_profile_fault_kernel, unsigned long address,
	     struct pt_regs *regs, unsigned long error_code)
{
	struct task_struct *task;

	if ((long)address < 0)
		return 0;
	task = bpf_get_current_task_btf();
	if (task->pagefault_disabled)
		return 0;
	if (!fault_due())
		return 0;
	return record_fault(ctx, task, NULL, true);
}

/* Large memory-map calls: the smallest size recorded, in bytes (the agent
 * sets it before load; the program is not loaded at 0). */
const volatile __u64 map_min_bytes = 1 << 20;

/* tgid -> its program break after its last brk() (brk() returns the new
 * break; the size of a move needs the old one). LRU: bounded, and a
 * process evicted here only loses its next brk() (counted). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} brks SEC(".maps");

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl; fixed
 * ABI). */
#define NR_MMAP 9
#define NR_MUNMAP 11
#define NR_BRK 12

static __always_inline int record_map(struct task_struct *task, __u32 kind,
				      __u64 bytes)
{
	struct profile_key key = {};
	void *counts, *stacks, *ustacks;
	struct walk *w;

	count(PROFILE_CTR_MAP_CALLS);
	key_of_current(&key, kind);
	/* The kernel stack is the syscall's exit path: not worth a frame. */
	key.kernel_stack_id = -14; /* -EFAULT: none */
	if (active_maps(&counts, &stacks, &ustacks))
		return 0;
	w = begin_walk(task, &key, WALK_MAP);
	if (w && from_entry_regs(w, task, &key))
		w = NULL;
	if (w)
		w = finish_walk(w, &key, WALK_MAP);
	return count_at(&key, w, task, counts, ustacks, bytes);
}

/* Every syscall's exit (tp_btf: no tracefs needed); all but mmap, munmap
 * and brk return after one load and a compare. regs are the thread's user
 * registers: the arguments are still in them, and the user stack is walked
 * from where it entered. */
SEC("tp_btf/sys_exit")
int BPF_PROG(vigil_profile_map, struct pt_regs *regs, long ret)
{
	struct task_struct *task;
	__u64 len, old, *prev;
	__u32 tgid;
	long nr = regs->orig_ax;

	if (nr != NR_MMAP && nr != NR_MUNMAP && nr != NR_BRK)
		return 0;
	task = bpf_get_current_task_btf();
	if (nr == NR_BRK) {
		/* brk() returns the (new) break; equal to the old one when it
		 * failed or was only asked where the break is. */
		tgid = bpf_get_current_pid_tgid() >> 32;
		prev = bpf_map_lookup_elem(&brks, &tgid);
		if (!prev) {
			bpf_map_update_elem(&brks, &tgid, &ret, BPF_ANY);
			if (regs->di != 0)
				count(PROFILE_CTR_BRK_UNKNOWN);
			return 0;
		}
		old = *prev;
		if (old == (__u64)ret)
			return 0;
		*prev = ret;
		if ((__u64)ret > old) {
			if ((__u64)ret - old >= map_min_bytes)
				return record_map(task, PROFILE_KIND_BRK,
						  (__u64)ret - old);
		} else if (old - (__u64)ret >= map_min_bytes) {
			return record_map(task, PROFILE_KIND_BRK_SHRINK,
					  old - (__u64)ret);
		}
		return 0;
	}
	len = (regs->si + 4095) & ~4095ull;
	if (len < map_min_bytes)
		return 0;
	if (nr == NR_MUNMAP)
		return ret == 0 ? record_map(task, PROFILE_KIND_MUNMAP, len) :
				  0;
	/* mmap: failed (-errno), or PROT_NONE, a reservation of address
	 * space that holds no memory until made accessible. */
	if ((unsigned long)ret >= (unsigned long)-4095 || regs->dx == 0)
		return 0;
	return record_map(task, PROFILE_KIND_MMAP, len);
}

/* exec replaces every mapping: forget the old ones at once, so the next
 * sample does not walk the new image with the old tables, and ask the agent
 * for the new ones now, before the process's first sample needs them. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_profile_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&unwind_procs, &tgid);
	bpf_map_delete_elem(&brks, &tgid);
	want(tgid, UNWIND_WANT_NEW);
	return 0;
}

/* A forked process starts with its parent's mappings: it can be unwound
 * from its first sample with a copy of its parent's, while the agent reads
 * its own (it learns of the child through the request). Threads share
 * their process's entry and need nothing. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_profile_fork, struct task_struct *parent,
	     struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct unwind_proc *pp;
	__u64 *brk;

	if (ptgid == ctgid)
		return 0;
	/* The child's break starts where its parent's is. */
	brk = bpf_map_lookup_elem(&brks, &ptgid);
	if (brk)
		bpf_map_update_elem(&brks, &ctgid, brk, BPF_ANY);
	pp = bpf_map_lookup_elem(&unwind_procs, &ptgid);
	if (!pp)
		return 0;
	if (bpf_map_update_elem(&unwind_procs, &ctgid, pp, BPF_NOEXIST) == 0)
		want(ctgid, UNWIND_WANT_NEW);
	return 0;
}

/* vigil probe --stacks: attached by agent/probe per probed function (with
 * the target pid and cookie = session << 32 | function index) while a
 * session runs; nothing attaches it otherwise. At a function's entry the
 * registers are the caller's but for the pushed return address, which the
 * CFA rule of the entry row (rsp + 8) accounts for, so the same walk
 * applies. */
SEC("uprobe")
int vigil_profile_probe(struct pt_regs *ctx)
{
	struct profile_probe_ustack_key skey = {};
	struct profile_probe_key key = {};
	struct profile_key pkey = {};
	struct task_struct *task = bpf_get_current_task_btf();
	struct walk *w;
	__u64 *v, one = 1;
	long err;

	key.cookie = bpf_get_attach_cookie(ctx);
	pkey.tgid = bpf_get_current_pid_tgid() >> 32;
	w = bpf_task_storage_get(&task_walks, task, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (w) {
		w->pc = PT_REGS_IP(ctx);
		w->sp = PT_REGS_SP(ctx);
		w->bp = ctx->bp;
		finish_walk(w, &pkey, WALK_TASK);
		if (w->depth > 0) {
			skey.session = key.cookie >> 32;
			skey.hash = w->hash ? w->hash : 1;
			key.user_stack = skey.hash;
			if (!bpf_map_lookup_elem(&probe_ustacks, &skey)) {
				err = bpf_map_update_elem(&probe_ustacks, &skey,
							  &w->stack,
							  BPF_NOEXIST);
				if (err && err != -EEXIST)
					key.user_stack = 0;
			}
		}
	}
	v = bpf_map_lookup_elem(&probe_stacks, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return 0;
	}
	if (bpf_map_update_elem(&probe_stacks, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	/* Another CPU inserted it first, or the map is full (the session
	 * counts the calls no stack accounts for). */
	v = bpf_map_lookup_elem(&probe_stacks, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}
