/* SPDX-License-Identifier: MIT */
/*
 * lib/cache_cpu.c - the per-CPU layer of the object cache: one array of
 * up to PCPU_MAG constructed objects per possible CPU, above the slab
 * layer (slab.c) and the debug checks (cache_debug.c).
 *
 * Under the rseq methods a thread pushes and pops on its CPU's array in a
 * restartable sequence that first checks the array's `stop` word: no
 * lock, no atomic instruction.  The sequence reads the array index from
 * the thread's struct rseq and leaves for the locked path when the index
 * is not below the number of arrays: the kernel may number a CPU above
 * what /sys said (sysfs hidden or wrong), and an rseq array must never be
 * shared by two CPUs, so such a CPU's operations go to the slabs under
 * cache->lock, never out of bounds.  Whoever must empty arrays of other
 * CPUs (shrink, deactivate, destroy) sets every `stop`, then runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ): when that returns,
 * every sequence that began before the store has been aborted or has
 * committed, and every later one sees `stop` and takes the locked path, so
 * the arrays can be read and emptied with plain accesses.  This is seed
 * 003's IPI-all choice: the expensive side is the rare one.  Without rseq
 * (or without membarrier) each array has a lock word taken with one
 * uncontended atomic exchange instead, and the index is folded into the
 * arrays (a lock word may be shared safely).
 *
 * Invariants:
 *  1. Every object in an array is constructed, counted out of its slab.
 *  2. An array is written only by an rseq sequence on its own index while
 *     its stop word is 0, or (stop set and made visible by membarrier) by
 *     the drainer holding drain_lock; in lock mode by the holder of its
 *     lock word while stop is 0, or by the drainer once it has set stop
 *     and cycled the lock word.
 *  3. A dying cache's arrays stay stopped: every free goes to its slab.
 *
 * Fences: the lock word is an acquire exchange / release store pair
 * (cpu_trylock(), cpu_unlock()); the stop word is stored relaxed by the
 * drainer (membarrier or the lock-word cycle orders it), loaded with
 * acquire in lock mode and stored with release by pcpu__arrays_start(),
 * so that a holder that sees 0 also sees the emptied array.
 */
#include "cache.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Offset from the thread pointer of the rseq field the sequences index
 * arrays by: cpu_id (offset 4 in struct rseq).  When pcpu__rt gains the
 * index offset of the run-time (mm_cid where the kernel has it), this is
 * the one line to change; the bound below keeps either safe.
 */
#define CACHE_IDX_OFF()		(pcpu__rt.rseq_idx)

#ifdef PCPU__HAVE_RSEQ_ASM
/* membarrier RSEQ registration: 1 done, -1 unavailable. */
static int pcpu_membarrier_state;
static pthread_once_t pcpu_membarrier_once = PTHREAD_ONCE_INIT;

static void membarrier_register(void)
{
	pcpu_membarrier_state =
		syscall(__NR_membarrier,
			MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0
		? 1 : -1;
}

/*
 * The user-space IPI: every CPU running one of our threads is interrupted
 * and any rseq sequence there aborted, so none that read a stop word as 0
 * before our store can still commit; and each CPU runs a full barrier, so
 * later sequences see the store.  Without it draining is unsafe: a fork
 * child (the registration is per address space) registers again; if the
 * kernel still refuses, the process aborts rather than lose objects.
 */
static void rseq_fence(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
		    0, 0) == 0)
		return;
	if (syscall(__NR_membarrier,
		    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) == 0 &&
	    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ,
		    0, 0) == 0)
		return;
	fprintf(stderr, "libpcpu: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_"
		"RSEQ) failed: cannot drain per-CPU arrays safely\n");
	abort();
}

/*
 * The sequences.  Each loads cpu_id and leaves when it is negative (no
 * rseq area registered: the kernel would not abort us), loads the index
 * and leaves when it is not below @nr, checks stop, and ends in one
 * commit store (count).
 */

/* Pop into *out; 0 done, -1 empty, stopped, out of bounds or not
 * registered. */
static inline int rseq_pop(struct pcpu_cache_cpu *base, unsigned nr,
			   void **out, long off, long idx)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"	/* cpu_id */
		"testl %%eax, %%eax\n\t"
		"js %l[fail]\n\t"
		"movl %%fs:(%[idx]), %%eax\n\t"		/* array index */
		"cmpl %[nr], %%eax\n\t"
		"jae %l[fail]\n\t"			/* beyond the arrays */
		"shlq %[shift], %%rax\n\t"
		"addq %[base], %%rax\n\t"		/* this CPU's array */
		"cmpl $0, (%%rax)\n\t"			/* stop */
		"jne %l[fail]\n\t"
		"movl 4(%%rax), %%ecx\n\t"		/* count */
		"testl %%ecx, %%ecx\n\t"
		"jz %l[fail]\n\t"
		"subl $1, %%ecx\n\t"
		"movq %c[objs](%%rax, %%rcx, 8), %%rdx\n\t"
		"movq %%rdx, (%[out])\n\t"		/* caller's local */
		"movl %%ecx, 4(%%rax)\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("0b")
		: /* no outputs */
		: [off] "r" (off), [idx] "r" (idx), [nr] "r" (nr),
		  [base] "r" (base), [out] "r" (out),
		  [shift] "i" (PCPU_CPU_SHIFT),
		  [objs] "i" (offsetof(struct pcpu_cache_cpu, objs))
		: "memory", "cc", "rax", "rcx", "rdx"
		: fail);
	return 0;
fail:
	return -1;
}

/* Push @obj; 0 done, -1 full, stopped, out of bounds or not registered. */
static inline int rseq_push(struct pcpu_cache_cpu *base, unsigned nr,
			    void *obj, long off, long idx)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"	/* cpu_id */
		"testl %%eax, %%eax\n\t"
		"js %l[fail]\n\t"
		"movl %%fs:(%[idx]), %%eax\n\t"		/* array index */
		"cmpl %[nr], %%eax\n\t"
		"jae %l[fail]\n\t"			/* beyond the arrays */
		"shlq %[shift], %%rax\n\t"
		"addq %[base], %%rax\n\t"
		"cmpl $0, (%%rax)\n\t"
		"jne %l[fail]\n\t"
		"movl 4(%%rax), %%ecx\n\t"
		"cmpl %[mag], %%ecx\n\t"
		"jae %l[fail]\n\t"
		/* Beyond count: harmless if the sequence aborts here. */
		"movq %[obj], %c[objs](%%rax, %%rcx, 8)\n\t"
		"addl $1, %%ecx\n\t"
		"movl %%ecx, 4(%%rax)\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("0b")
		: /* no outputs */
		: [off] "r" (off), [idx] "r" (idx), [nr] "r" (nr),
		  [base] "r" (base), [obj] "r" (obj),
		  [shift] "i" (PCPU_CPU_SHIFT), [mag] "i" (PCPU_MAG),
		  [objs] "i" (offsetof(struct pcpu_cache_cpu, objs))
		: "memory", "cc", "rax", "rcx"
		: fail);
	return 0;
fail:
	return -1;
}

/*
 * A sequence failed: was it because this thread has no rseq area yet (a
 * new thread under rseq-own)?  Then register it; 1 if the caller should
 * try once more.  Slow path only.
 */
static int rseq_registered_now(void)
{
	if (pcpu__rseq_cpu_id() >= 0)
		return 0;		/* registered: the array said no */
	return pcpu__rseq_ready() == 0;
}
#endif /* PCPU__HAVE_RSEQ_ASM */

void pcpu__cpu_arrays_init(struct pcpu_cache *cache)
{
	unsigned i;

	for (i = 0; i < cache->nr_cpus; i++)
		pthread_mutex_init(&cache->cpus[i].rcu_lock, NULL);
#ifdef PCPU__HAVE_RSEQ_ASM
	/* rseq arrays need rseq for every CPU and membarrier to drain. */
	if (pcpu__rseq_kind() != PCPU__METHOD_ATOMIC && !pcpu__cpus_capped()) {
		pthread_once(&pcpu_membarrier_once, membarrier_register);
		cache->rseq = pcpu_membarrier_state == 1;
	}
#endif
}

/* The current CPU's array, folded into the arrays: for lock words and
 * RCU batches, which may be shared by two CPUs. */
struct pcpu_cache_cpu *pcpu__this_cpu_array(struct pcpu_cache *cache)
{
	unsigned cpu = pcpu__index();

	return &cache->cpus[pcpu__likely(cpu < cache->nr_cpus) ? cpu :
			    cpu % cache->nr_cpus];
}

/* Lock mode: this CPU's array with its lock word held, or NULL. */
static struct pcpu_cache_cpu *cpu_trylock(struct pcpu_cache *cache)
{
	struct pcpu_cache_cpu *pc = pcpu__this_cpu_array(cache);

	/* Acquire: pairs with the release in cpu_unlock(); the array's
	 * contents written by the previous holder are visible to us. */
	if (__atomic_exchange_n(&pc->lock, 1, __ATOMIC_ACQUIRE))
		return NULL;
	/* Acquire: pairs with pcpu__arrays_start()' release, which follows
	 * the drainer's emptying of the array. */
	if (__atomic_load_n(&pc->stop, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&pc->lock, 0, __ATOMIC_RELEASE);
		return NULL;
	}
	return pc;
}

static void cpu_unlock(struct pcpu_cache_cpu *pc)
{
	/* Release: our changes to the array before the next holder's. */
	__atomic_store_n(&pc->lock, 0, __ATOMIC_RELEASE);
}

int pcpu__array_pop(struct pcpu_cache *cache, void **out)
{
	struct pcpu_cache_cpu *pc;
	int ret = -1;

#ifdef PCPU__HAVE_RSEQ_ASM
	if (cache->rseq) {
		if (rseq_pop(cache->cpus, cache->nr_cpus, out,
			     pcpu__rt.rseq_off, CACHE_IDX_OFF()) == 0)
			return 0;
		return rseq_registered_now() ?
		       rseq_pop(cache->cpus, cache->nr_cpus, out,
				pcpu__rt.rseq_off, CACHE_IDX_OFF()) : -1;
	}
#endif
	pc = cpu_trylock(cache);
	if (!pc)
		return -1;
	if (pc->count) {
		*out = pc->objs[--pc->count];
		ret = 0;
	}
	cpu_unlock(pc);
	return ret;
}

int pcpu__array_push(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_cache_cpu *pc;
	int ret = -1;

#ifdef PCPU__HAVE_RSEQ_ASM
	if (cache->rseq) {
		if (rseq_push(cache->cpus, cache->nr_cpus, obj,
			      pcpu__rt.rseq_off, CACHE_IDX_OFF()) == 0)
			return 0;
		return rseq_registered_now() ?
		       rseq_push(cache->cpus, cache->nr_cpus, obj,
				 pcpu__rt.rseq_off, CACHE_IDX_OFF()) : -1;
	}
#endif
	pc = cpu_trylock(cache);
	if (!pc)
		return -1;
	if (pc->count < PCPU_MAG) {
		pc->objs[pc->count++] = obj;
		ret = 0;
	}
	cpu_unlock(pc);
	return ret;
}

/*
 * Stop every CPU's array and wait until no CPU can be inside a sequence
 * that saw it running (invariant 2).  Under drain_lock.
 */
static void stop_arrays(struct pcpu_cache *cache)
{
	unsigned i;

	for (i = 0; i < cache->nr_cpus; i++) {
		struct pcpu_cache_cpu *pc = &cache->cpus[i];

		/* Relaxed: membarrier below orders it against every CPU's
		 * sequences; in lock mode our release of the lock word below
		 * orders it before every later holder's check. */
		__atomic_store_n(&pc->stop, 1, __ATOMIC_RELAXED);
		if (!cache->rseq) {
			/* Lock mode: wait out the holder that may have seen
			 * stop == 0. */
			while (__atomic_exchange_n(&pc->lock, 1,
						   __ATOMIC_ACQUIRE))
				sched_yield();
			cpu_unlock(pc);
		}
	}
#ifdef PCPU__HAVE_RSEQ_ASM
	if (cache->rseq)
		rseq_fence();
#endif
}

void pcpu__arrays_drain(struct pcpu_cache *cache, struct pcpu_slab **dead)
{
	unsigned i;

	stop_arrays(cache);
	for (i = 0; i < cache->nr_cpus; i++) {
		struct pcpu_cache_cpu *pc = &cache->cpus[i];

		/* Plain accesses: nobody writes a stopped array (inv. 2). */
		if (pc->count)
			pcpu__slabs_put_collect(cache, pc->count, pc->objs,
						dead);
		pc->count = 0;
	}
}

void pcpu__arrays_start(struct pcpu_cache *cache)
{
	unsigned i;

	/* Release: the emptied arrays before any sequence or lock holder
	 * that sees 0. */
	for (i = 0; i < cache->nr_cpus; i++)
		__atomic_store_n(&cache->cpus[i].stop, 0, __ATOMIC_RELEASE);
}

void pcpu__free_many(struct pcpu_cache *cache, size_t n, void **objs,
		     const void *caller, uint8_t from)
{
	void *spill[PCPU_MAG];
	size_t i, ns = 0, freed = 0;
	int full = 0;

	for (i = 0; i < n; i++) {
		if (!objs[i])
			continue;
		if (cache->flags & PCPU_CACHE_DEBUG)
			pcpu__debug_freeing(cache, objs[i], caller, from,
					    OBJ_FREE);
		freed++;
		if (!full && pcpu__array_push(cache, objs[i]) == 0)
			continue;
		/* The array is full or stopped: the rest go back to the
		 * slabs, a lock round trip per PCPU_MAG objects. */
		full = 1;
		spill[ns++] = objs[i];
		if (ns == PCPU_MAG) {
			pcpu__slabs_put(cache, ns, spill);
			ns = 0;
		}
	}
	if (ns)
		pcpu__slabs_put(cache, ns, spill);
	/* One update for the batch; before any rcu_pending release that
	 * follows (cache_rcu.c), so destroy sees it. */
	pcpu_counter_add(&cache->in_use, -(int64_t)freed);
}

void pcpu__arrays_fork_lock(struct pcpu_cache *cache)
{
	unsigned i;

	for (i = 0; i < cache->nr_cpus; i++) {
		pthread_mutex_lock(&cache->cpus[i].rcu_lock);
		if (cache->rseq)
			continue;
		/* Acquire: as cpu_trylock(); the holder is inside a few plain
		 * accesses, so this spin is short.  In rseq mode an array has
		 * no lock: a sequence another thread was in is gone in the
		 * child, committed or not. */
		while (__atomic_exchange_n(&cache->cpus[i].lock, 1,
					   __ATOMIC_ACQUIRE))
			sched_yield();
	}
}

void pcpu__arrays_fork_unlock(struct pcpu_cache *cache)
{
	unsigned i;

	for (i = 0; i < cache->nr_cpus; i++) {
		if (!cache->rseq)
			cpu_unlock(&cache->cpus[i]);
		pthread_mutex_unlock(&cache->cpus[i].rcu_lock);
	}
}
