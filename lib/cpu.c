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
 * The slot index.  A sequence reads its slot number from the thread's
 * struct rseq: mm_cid where the kernel fills it (getauxval(
 * AT_RSEQ_FEATURE_SIZE) >= 28, the end of that field), else cpu_id.
 * mm_cid is a concurrency id: below min(threads, CPUs allowed), and held
 * by one running thread at a time, so it is as exclusive as a CPU number
 * for an rseq sequence, while a process touches only as many slots as it
 * has threads (6.18 keeps a lone thread's id as it hops between CPUs, and
 * ties ids to CPUs while several threads run).  PCPU_SLOT_INDEX=cpu chooses cpu_id anyway.  Both are
 * below the kernel's nr_cpu_ids, which is why the rseq method needs at
 * least that many slots (possible_cpus() below); every sequence still
 * bounds the index by the slot count and leaves when it is above.
 *
 * Invariants:
 *  1. pcpu__rt is set up by the library constructor, before main() or
 *     dlopen() returns, and before that by the first entry point that
 *     runs (another constructor, .preinit_array): every exported function
 *     that can create or reach a per-CPU area calls pcpu__init() first.
 *  2. pcpu__rt.rseq_off is written once, during set-up.
 *  3. pcpu__rt.nr_slots, .method and .rseq_fast are written only by
 *     set-up and by pcpu__alloc_set_nr_slots_locked() under the allocator lock
 *     while no area is live (alloc.c), so they are constant for the life
 *     of any area.
 *  4. Our own rseq area is registered only by its thread, and unregistered
 *     by its thread's exit (a pthread key destructor) before its TLS goes;
 *     a thread never registers again after that.
 *  5. The fork handlers are registered at the end of set-up (fork.c).
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_RSEQ_FEATURE_SIZE
# define AT_RSEQ_FEATURE_SIZE	27
#endif

/* glibc 2.35+: where its struct rseq is, and whether it registered one. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#define PCPU_RSEQ_SIG		PCPU__RSEQ_SIG
#define PCPU_RSEQ_UNREGISTER	1

/*
 * Our own rseq area, used only when glibc registered none.  Initial-exec
 * TLS: a fixed offset from the thread pointer in every thread, which is
 * what pcpu__rt.rseq_off needs.  cpu_id starts at -1 ("not registered"),
 * which sends a new thread's first update to the slow path, which
 * registers it.
 */
static __thread struct pcpu__rseq_abi pcpu_rseq
	__attribute__((tls_model("initial-exec"), aligned(32))) = {
	.cpu_id = (uint32_t)-1, .mm_cid = (uint32_t)-1 };
/* 0 not tried, 1 registered, -1 cannot (failed, or thread exiting).
 * Volatile: a signal handler on the same thread may change it. */
static __thread volatile int pcpu_rseq_state
	__attribute__((tls_model("initial-exec")));
static pthread_key_t pcpu_rseq_key;

PCPU_API struct pcpu__rt pcpu__rt;

static unsigned pcpu_possible;		/* capped at PCPU_MAX_SLOTS */
static unsigned pcpu_possible_all;	/* not capped */
static unsigned pcpu_rseq_need;		/* slots the rseq method needs */
static unsigned pcpu_rseq_kind = PCPU__METHOD_ATOMIC; /* what rseq we have */
static pthread_once_t pcpu_once = PTHREAD_ONCE_INIT;

static const char *const pcpu_index_names[] = {
	[PCPU__INDEX_CPU] = "cpu",
	[PCPU__INDEX_MM_CID] = "mm_cid",
};

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

/*
 * An upper bound of the kernel's nr_cpu_ids, which every CPU number and
 * mm_cid is below: the raw sched_getaffinity() system call copies the
 * kernel's whole CPU mask and returns its size in bytes.  0 if unknown.
 */
static unsigned kernel_cpu_bound(void)
{
	static unsigned long mask[PCPU_MAX_SLOTS / (8 * sizeof(long)) * 4];
	long r = syscall(SYS_sched_getaffinity, 0, sizeof(mask), mask);

	return r > 0 ? (unsigned)r * 8 : 0;
}

/*
 * The possible CPUs: the span of /sys/devices/system/cpu/possible.  When
 * it cannot be read (sysfs hidden, say), the configured count, and
 * *@sure = 0: then CPU numbers may lie above it, and the rseq method is
 * allowed only with slots for every id the kernel could hand out.
 */
static unsigned possible_cpus(int *sure)
{
	char buf[4096];
	unsigned n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			n = parse_cpu_list(buf);
		fclose(f);
	}
	*sure = n != 0;
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
	int was = pcpu_rseq_state;

	(void)arg;
	/*
	 * Never again in this thread (invariant 4), and said before the
	 * unregistration: a signal handler that runs after it (the signal
	 * is delivered as the syscall returns) must find the thread not
	 * ready and use the shared word.  With the old order it found state
	 * 1 and retried an rseq commit with no area registered, forever
	 * (test_dual's claim race under rseq-own).  Signal fence: only this
	 * thread's handlers read the state.
	 */
	pcpu_rseq_state = -1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (was == 1)
		syscall(SYS_rseq, &pcpu_rseq, sizeof(pcpu_rseq),
			PCPU_RSEQ_UNREGISTER, PCPU_RSEQ_SIG);
	/* The fast path now sees a negative cpu_id and takes the slow
	 * path. */
	pcpu_rseq.cpu_id = (uint32_t)-1;
	pcpu_rseq.mm_cid = (uint32_t)-1;
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
	unsigned m = nr_slots < pcpu_rseq_need ? PCPU__METHOD_ATOMIC
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

/* Index slots by mm_cid where the kernel fills it, unless told not to. */
static void choose_index(void)
{
	const char *env = getenv("PCPU_SLOT_INDEX");
	unsigned long fs = getauxval(AT_RSEQ_FEATURE_SIZE);

	pcpu__rt.index = PCPU__INDEX_CPU;
	pcpu__rt.rseq_idx = pcpu__rt.rseq_off ?
			    pcpu__rt.rseq_off + PCPU__RSEQ_CPU_ID_OFF : 0;
	if (!pcpu__rt.rseq_off || fs < PCPU__RSEQ_MM_CID_END ||
	    (env && strcmp(env, "cpu") == 0))
		return;
	pcpu__rt.index = PCPU__INDEX_MM_CID;
	pcpu__rt.rseq_idx = pcpu__rt.rseq_off + PCPU__RSEQ_MM_CID_OFF;
}

static void pcpu_setup(void)
{
	const char *env = getenv("PCPU_NR_SLOTS");
	unsigned n, bound;
	int sure;

	pcpu_possible_all = pcpu_possible = possible_cpus(&sure);
	pcpu_rseq_need = pcpu_possible_all;
	bound = kernel_cpu_bound();
	if (!sure)	/* ids may reach the kernel's bound: need them all */
		pcpu_rseq_need = !bound ? UINT32_MAX :
				 bound > pcpu_possible_all ? bound :
							     pcpu_possible_all;
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
	choose_index();
	pcpu__set_method(n);
	/* Relaxed: published to other threads by pthread_once() or by the
	 * constructor running before any thread of the process can call us;
	 * stored last, so that a nonzero count means set-up is complete for
	 * pcpu__init()'s check.  Release: pairs with its acquire load. */
	__atomic_store_n(&pcpu__rt.nr_slots, n, __ATOMIC_RELEASE);
	/* The one call upward (fork.c explains why): the fork handlers,
	 * registered by whatever sets the library up, static links and
	 * pre-constructor callers included. */
	pcpu__fork_register();
}

void pcpu__init(void)
{
	/* Acquire: pairs with the release store of the count at the end of
	 * pcpu_setup(), so a thread that sees it set sees all of set-up
	 * without pthread_once() (which a signal handler may not call). */
	if (pcpu__likely(__atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_ACQUIRE)))
		return;
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
	/* The rseq method's own rule (pcpu__set_method()) for a count of
	 * pcpu_possible: ids may reach past it (more CPUs than
	 * PCPU_MAX_SLOTS, or sysfs unreadable and the kernel's mask wider). */
	return pcpu_rseq_need > pcpu_possible;
}

unsigned pcpu__rseq_kind(void)
{
	pcpu__init();
	return pcpu_rseq_kind;
}

PCPU_API unsigned pcpu__index_slow(void)
{
	int cpu;

	/* A thread of ours without its rseq area yet: register it. */
	if (pcpu_rseq_kind == PCPU__METHOD_RSEQ_OWN && pcpu_rseq_state == 0 &&
	    pcpu__rseq_ready() == 0)
		return pcpu__rt.index == PCPU__INDEX_MM_CID ? pcpu_rseq.mm_cid
							      : pcpu_rseq.cpu_id;
	/* No rseq for this thread: a CPU number, whatever the index kind
	 * (such a thread updates slots only with atomics; see counter.c). */
	cpu = sched_getcpu();
	return cpu >= 0 ? (unsigned)cpu : 0;
}

PCPU_API unsigned pcpu_nr_slots(void)
{
	pcpu__init();
	return __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
}


PCPU_API unsigned pcpu_this_slot(void)
{
	pcpu__init();
	return pcpu__slot_of(pcpu__index());
}

PCPU_API const char *pcpu_slot_index(void)
{
	pcpu__init();
	return pcpu_index_names[pcpu__rt.index];
}

PCPU_API const char *pcpu_update_method(void)
{
	pcpu__init();
	return pcpu_method_names[__atomic_load_n(&pcpu__rt.method,
						 __ATOMIC_RELAXED)];
}
