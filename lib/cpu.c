/* SPDX-License-Identifier: MIT */
/*
 * lib/cpu.c - slots, the CPU number and the update method.
 *
 * A slot is the index of one copy in a per-CPU area.  There are
 * pcpu__rt.nr_slots of them: the number of possible CPUs by default, so
 * that every CPU the kernel may ever run us on has its own copy.
 *
 * The update method says how a thread writes "its" slot:
 *
 *   rseq       a restartable sequence (counter.h): the kernel aborts it if
 *              the thread is preempted, migrated or signalled before the
 *              commit store, so a plain load-add-store on the current
 *              CPU's slot is atomic with respect to every other writer of
 *              that slot.  Needs one slot per possible CPU (slot == CPU)
 *              and an rseq area registered for the thread: glibc's (2.35
 *              and later register one for every thread and export
 *              __rseq_offset/__rseq_size; weak here, so that older glibc
 *              links and runs), or, when glibc did not register
 *              (GLIBC_TUNABLES=glibc.pthread.rseq=0, older glibc), our own
 *              TLS one, registered lazily per thread ("rseq-own").
 *   atomic     compare-and-swap on the current CPU's slot: without rseq,
 *              on architectures without the asm, under ThreadSanitizer,
 *              when CPUs share slots, or with PCPU_UPDATE_METHOD=atomic.
 *
 * Under rseq every write to a slot must be an rseq sequence on the slot's
 * own CPU: a plain store from another CPU could be overwritten by the
 * commit of a sequence that loaded before it.  A thread that has no rseq
 * area (its registration failed, or it is exiting and unregistered) must
 * therefore not write slots at all; counter.c sends its updates to the
 * counter's shared atomic word instead (pcpu__rseq_ready() says which).
 *
 * The kernel's mm_cid (rseq feature size >= 32, getauxval(AT_RSEQ_FEATURE_SIZE))
 * could index slots by concurrency id instead of CPU; it is not used:
 * slots are per CPU, so that nothing depends on it where it is missing.
 *
 * Invariants:
 *  1. pcpu__rt is set up by the library constructor, before main() or
 *     dlopen() returns, and again idempotently by pcpu__init() for callers
 *     that run before constructors (another constructor).
 *  2. pcpu__rt.rseq_off is written once, during set-up.
 *  3. pcpu__rt.nr_slots, .method and .rseq_fast are written only by
 *     set-up and by pcpu__alloc_set_nr_slots() under the allocator lock
 *     while no area is live (alloc.c), so they are constant for the life
 *     of any area.
 *  4. Our own rseq area is registered only by its thread, and unregistered
 *     by its thread's exit (a pthread key destructor) before its TLS goes;
 *     a thread never registers again after that.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc 2.35+: where its struct rseq is, and whether it registered one. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#define PCPU_RSEQ_SIG		0x53053053u
#define PCPU_RSEQ_UNREGISTER	1

/* The kernel's struct rseq, as far as the original 32-byte ABI goes. */
struct pcpu_rseq_abi {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

/*
 * Our own rseq area, used only when glibc registered none.  Initial-exec
 * TLS: a fixed offset from the thread pointer in every thread, which is
 * what pcpu__rt.rseq_off needs.  cpu_id starts at -1 ("not registered"),
 * which sends a new thread's first update to the slow path, which
 * registers it.
 */
static __thread struct pcpu_rseq_abi pcpu_rseq
	__attribute__((tls_model("initial-exec"))) = { .cpu_id = (uint32_t)-1 };
/* 0 not tried, 1 registered, -1 cannot (failed, or thread exiting).
 * Volatile: a signal handler on the same thread may change it. */
static __thread volatile int pcpu_rseq_state
	__attribute__((tls_model("initial-exec")));
static pthread_key_t pcpu_rseq_key;

PCPU_API struct pcpu__rt pcpu__rt;

static unsigned pcpu_possible;		/* capped at PCPU_MAX_SLOTS */
static unsigned pcpu_possible_all;	/* not capped */
static unsigned pcpu_rseq_kind = PCPU__METHOD_ATOMIC; /* what rseq we have */
static pthread_once_t pcpu_once = PTHREAD_ONCE_INIT;

static const char *const pcpu_method_names[] = {
	[PCPU__METHOD_ATOMIC] = "atomic",
	[PCPU__METHOD_RSEQ] = "rseq",
	[PCPU__METHOD_RSEQ_OWN] = "rseq-own",
};

/* Highest CPU number in a list such as "0-3,8,10-11", plus one; 0 if none. */
static unsigned parse_cpu_list(const char *s)
{
	unsigned long max = 0, v;
	char *end;
	int any = 0;

	while (*s && *s != '\n') {
		v = strtoul(s, &end, 10);
		if (end == s)
			return 0;
		if (*end == '-') {
			s = end + 1;
			v = strtoul(s, &end, 10);
			if (end == s)
				return 0;
		}
		if (v + 1 > max)
			max = v + 1;
		any = 1;
		s = end;
		if (*s == ',')
			s++;
	}
	if (!any || max > 1u << 30)
		return 0;
	return (unsigned)max;
}

static unsigned possible_cpus(void)
{
	char buf[4096];
	unsigned n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			n = parse_cpu_list(buf);
		fclose(f);
	}
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_CONF);

		n = c > 0 ? (unsigned)c : 1;
	}
	return n;
}

static int rseq_register(void)
{
	return (int)syscall(SYS_rseq, &pcpu_rseq, sizeof(pcpu_rseq), 0,
			    PCPU_RSEQ_SIG);
}

/* Thread exit: unregister before the TLS holding the area is freed. */
static void rseq_thread_exit(void *arg)
{
	(void)arg;
	if (pcpu_rseq_state == 1)
		syscall(SYS_rseq, &pcpu_rseq, sizeof(pcpu_rseq),
			PCPU_RSEQ_UNREGISTER, PCPU_RSEQ_SIG);
	/* Never again in this thread (invariant 4); the fast path now sees
	 * a negative cpu_id and takes the slow path. */
	pcpu_rseq_state = -1;
	pcpu_rseq.cpu_id = (uint32_t)-1;
}

int pcpu__rseq_ready(void)
{
	int saved_errno;

	if (pcpu_rseq_kind != PCPU__METHOD_RSEQ_OWN)
		/* glibc's: registered for every thread, or for none. */
		return pcpu__rseq_cpu_id() >= 0 ? 0 : -1;
	if (pcpu_rseq_state == 0) {
		/* Called from pcpu_counter_add(), which leaves errno alone. */
		saved_errno = errno;
		if (rseq_register() == 0) {
			pcpu_rseq_state = 1;
			/* Ask for rseq_thread_exit(); if that fails, undo:
			 * an area the kernel writes after the thread's TLS
			 * is freed would corrupt memory. */
			if (pcpu__setspecific(pcpu_rseq_key, &pcpu_rseq))
				rseq_thread_exit(NULL);
		} else if (pcpu_rseq_state == 0) {
			/*
			 * Failed, and not because a signal handler of this
			 * thread registered us in between (then the state is
			 * 1 and the kernel said EBUSY: keep it).  A handler
			 * that interrupts us between our registration and the
			 * store of 1 fails with EBUSY and stores -1 here,
			 * which our store of 1 then overwrites.
			 */
			pcpu_rseq_state = -1;
		}
		errno = saved_errno;
	}
	return pcpu_rseq_state == 1 ? 0 : -1;
}

void pcpu__set_method(unsigned nr_slots)
{
	/* rseq writes slot == CPU: every possible CPU needs its own (a
	 * machine with more CPUs than PCPU_MAX_SLOTS never gets rseq). */
	unsigned m = nr_slots < pcpu_possible_all ? PCPU__METHOD_ATOMIC
						  : pcpu_rseq_kind;

	/* Relaxed: see invariant 3; readers hold no area while it changes. */
	__atomic_store_n(&pcpu__rt.method, m, __ATOMIC_RELAXED);
	__atomic_store_n(&pcpu__rt.rseq_fast,
			 m == PCPU__METHOD_ATOMIC ? 0 : pcpu__rt.rseq_off,
			 __ATOMIC_RELAXED);
}

/* Which rseq this process can use, if any; sets pcpu__rt.rseq_off. */
static unsigned detect_rseq(void)
{
	const char *env = getenv("PCPU_UPDATE_METHOD");

	if (env && strcmp(env, "atomic") == 0)
		return PCPU__METHOD_ATOMIC;
#if !defined(PCPU__HAVE_RSEQ_ASM)
	return PCPU__METHOD_ATOMIC;	/* no sequences for this target */
#else
	if (&__rseq_size && &__rseq_offset && __rseq_size >= 20 &&
	    __rseq_offset != 0 &&
	    *(volatile int32_t *)(pcpu__tp() + __rseq_offset + 4) >= 0) {
		pcpu__rt.rseq_off = (long)__rseq_offset;
		return PCPU__METHOD_RSEQ;
	}
	/* glibc registered none: can we?  Try on this thread. */
	if (pthread_key_create(&pcpu_rseq_key, rseq_thread_exit))
		return PCPU__METHOD_ATOMIC;
	pcpu__rt.rseq_off = (long)((uintptr_t)&pcpu_rseq - pcpu__tp());
	pcpu_rseq_kind = PCPU__METHOD_RSEQ_OWN;
	if (pcpu__rseq_ready() == 0)
		return PCPU__METHOD_RSEQ_OWN;
	/* ENOSYS (no rseq, qemu-user), EBUSY (someone else's), ... */
	pcpu__rt.rseq_off = 0;
	return PCPU__METHOD_ATOMIC;
#endif
}

/*
 * fork() while other threads are inside the library: the child has only
 * the forking thread, so no lock of ours may be held there by another
 * one.  The prepare handler takes every lock (caches first, then the
 * allocator: no path holds one while taking the other, so the order is a
 * choice, kept the same everywhere), then waits for counter folds in
 * flight (counter.c: a fold is two writes, which fork() must not split;
 * folders hold no lock, so they are waited for last), and the after-fork
 * handlers release them in both processes.  A thread's rseq registration
 * is kept by the kernel in the child (fork without CLONE_VM); the child's
 * first drain registers membarrier again if it must (cache.c).
 */
static void pcpu_fork_prepare(void)
{
	pcpu__cache_fork_prepare();
	pcpu__alloc_fork_prepare();
	pcpu__counter_fork_prepare();
}

static void pcpu_fork_parent(void)
{
	pcpu__counter_fork_parent();
	pcpu__alloc_fork_release();
	pcpu__cache_fork_parent();
}

static void pcpu_fork_child(void)
{
	pcpu__counter_fork_child();
	pcpu__alloc_fork_release();
	pcpu__cache_fork_child();
}

static void pcpu_setup(void)
{
	const char *env = getenv("PCPU_NR_SLOTS");
	unsigned n;

	pcpu_possible_all = pcpu_possible = possible_cpus();
	if (pcpu_possible > PCPU_MAX_SLOTS)
		pcpu_possible = PCPU_MAX_SLOTS;
	n = pcpu_possible;
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		/* A malformed or out-of-range value is ignored. */
		if (*end == '\0' && v >= 1 && v <= PCPU_MAX_SLOTS)
			n = (unsigned)v;
	}
	pcpu_rseq_kind = detect_rseq();
	/* Relaxed: published to other threads by pthread_once() or by the
	 * constructor running before any thread of the process can call us. */
	__atomic_store_n(&pcpu__rt.nr_slots, n, __ATOMIC_RELAXED);
	pcpu__set_method(n);
	/* Fails only with ENOMEM, at load time; then a fork while another
	 * thread holds a lock of ours is what it is without us. */
	(void)pthread_atfork(pcpu_fork_prepare, pcpu_fork_parent,
			     pcpu_fork_child);
}

void pcpu__init(void)
{
	pthread_once(&pcpu_once, pcpu_setup);
}

__attribute__((constructor)) static void pcpu_ctor(void)
{
	pcpu__init();
}

unsigned pcpu__possible_cpus(void)
{
	pcpu__init();
	return pcpu_possible;
}

int pcpu__cpus_capped(void)
{
	pcpu__init();
	return pcpu_possible_all > pcpu_possible;
}

unsigned pcpu__rseq_kind(void)
{
	pcpu__init();
	return pcpu_rseq_kind;
}

PCPU_API unsigned pcpu__cpu_slow(void)
{
	int cpu;

	/* A thread of ours without its rseq area yet: register it. */
	if (pcpu_rseq_kind == PCPU__METHOD_RSEQ_OWN && pcpu_rseq_state == 0 &&
	    pcpu__rseq_ready() == 0)
		return pcpu_rseq.cpu_id;
	cpu = sched_getcpu();
	return cpu >= 0 ? (unsigned)cpu : 0;
}

PCPU_API unsigned pcpu_nr_slots(void)
{
	pcpu__init();
	return __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
}

PCPU_API int pcpu_set_nr_slots(unsigned n)
{
	if (n == 0 || n > PCPU_MAX_SLOTS)
		return -EINVAL;
	pcpu__init();
	return pcpu__alloc_set_nr_slots(n);
}

PCPU_API unsigned pcpu_this_slot(void)
{
	pcpu__init();
	return pcpu__slot_of(pcpu__cpu());
}

PCPU_API const char *pcpu_update_method(void)
{
	pcpu__init();
	return pcpu_method_names[__atomic_load_n(&pcpu__rt.method,
						 __ATOMIC_RELAXED)];
}
