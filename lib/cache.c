/* SPDX-License-Identifier: MIT */
/*
 * lib/cache.c - object caches with constructor and destructor.
 *
 * Slabs.  A slab is one mapping of slab_bytes (a power of two, so the slab
 * of an object is obj & ~(slab_bytes - 1)) holding a header and nr_objs
 * objects of `stride` bytes.  The constructor runs on every object when the
 * slab is made and the destructor when it is released; in between, an
 * object is either in use, in a per-CPU array, in an RCU batch, or free in
 * its slab (its index on the slab's free stack).  Slabs sit on one of three
 * lists by how many of their objects are free in them: full (none free),
 * partial, empty (all free).  Slabs are made and released with no lock
 * held, so constructors and destructors may take any lock of their own
 * (seed 000: a destructor that takes locks during reclaim deadlocks).
 *
 * Per-CPU arrays.  Each possible CPU has an array of up to PCPU_MAG free
 * objects.  Under the rseq methods a thread pushes and pops on its CPU's
 * array in a restartable sequence that first checks the array's `stop`
 * word: no lock, no atomic instruction.  Whoever must empty arrays of
 * other CPUs (shrink, deactivate, destroy) sets every `stop`, then runs
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ): when that returns,
 * every sequence that began before the store has been aborted or has
 * committed, and every later one sees `stop` and takes the locked path, so
 * the arrays can be read and emptied with plain accesses.  This is seed
 * 003's IPI-all choice: the expensive side is the rare one.  Without rseq
 * (or without membarrier) each array has a lock word taken with one
 * uncontended atomic exchange instead.
 *
 * Locks.  cache->lock (a mutex) protects the slab lists and every slab's
 * free stack.  cache->drain_lock serializes shrink, deactivate and destroy.
 * Neither is held while a constructor or destructor runs.  An object moves
 * between an array and its slab only under cache->lock.  Each per-CPU
 * array's rcu_lock protects its RCU batch pointer.  pcpu_caches_lock
 * protects the list of live caches and pcpu_rcu_used (see "fork" below).
 *
 * Invariants:
 *  1. Every object of a slab is constructed; a slab is on exactly one list
 *     matching its nr_free, under cache->lock.
 *  2. A per-CPU array is written only by an rseq sequence on its own CPU
 *     while its stop word is 0, or (stop set and made visible by
 *     membarrier) by the drainer holding drain_lock; in lock mode by the
 *     holder of its lock word while stop is 0, or by the drainer once it
 *     has set stop and cycled the lock word.
 *  3. A dying cache's arrays stay stopped: every free goes to its slab,
 *     and a slab that becomes empty is released at once.
 *  4. in_use counts objects handed out and not yet back (RCU-pending ones
 *     included); destroy releases nothing while it is not 0.
 */
#include "internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

#define PCPU_CPU_SHIFT		9	/* sizeof(struct pcpu_cache_cpu) */
/* What precedes objs[] in struct pcpu_cache_cpu.  pthread_mutex_t is 40
 * bytes on x86-64 but 48 on aarch64 (found by the aarch64 build). */
#define PCPU_CPU_HDR		(4 * sizeof(uint32_t) + \
				 sizeof(pthread_mutex_t) + sizeof(void *))
/* Objects per CPU array: what fills the rest of the 512 bytes (56 on
 * x86-64, 55 on aarch64). */
#define PCPU_MAG		((unsigned)(((1u << PCPU_CPU_SHIFT) - PCPU_CPU_HDR) / \
				       sizeof(void *)))
#define PCPU_SLAB_MIN		((size_t)64 << 10)
#define PCPU_SLAB_MIN_OBJS	16u
#define PCPU_RCU_BATCH		64
#define PCPU_RCU_AGE_NS		(10 * 1000 * 1000) /* send a batch this old */

/* One possible CPU's array: a power-of-two size the sequences index by. */
struct pcpu_cache_cpu {
	uint32_t stop;		/* rseq: nonzero sends every op to the
				   locked path; see invariant 2 */
	uint32_t count;		/* objects in objs[] */
	uint32_t lock;		/* lock mode: 1 while held */
	uint32_t pad0;
	pthread_mutex_t rcu_lock; /* protects rcu */
	struct pcpu_rcu_batch *rcu;
	void *objs[PCPU_MAG];
} __attribute__((aligned(1 << PCPU_CPU_SHIFT)));

_Static_assert(sizeof(struct pcpu_cache_cpu) == (1u << PCPU_CPU_SHIFT),
	       "per-CPU array size must match PCPU_CPU_SHIFT");

struct pcpu_slab {
	struct pcpu_slab *next, *prev;
	struct pcpu_cache *cache;
	unsigned nr_free;
	unsigned list;			/* SLAB_FULL, SLAB_PARTIAL, SLAB_EMPTY */
	char *objs;
	uint8_t *in_use;		/* DEBUG: an OBJ_* state per object */
	uint32_t free_stack[];		/* indices of objects free here */
};

enum { SLAB_FULL, SLAB_PARTIAL, SLAB_EMPTY, SLAB_LISTS };

/* DEBUG states of an object. */
enum { OBJ_FREE, OBJ_IN_USE, OBJ_RCU };

struct pcpu_rcu_batch {
	struct rcu_head head;
	struct pcpu_cache *cache;
	struct timespec born;		/* CLOCK_MONOTONIC_COARSE */
	unsigned n;
	void *objs[PCPU_RCU_BATCH];
};

struct pcpu_cache {
	char name[32];
	size_t stride, slab_bytes;
	unsigned nr_objs, flags, nr_cpus;
	int rseq;			/* arrays use rseq sequences */
	pcpu_ctor_fn ctor;
	pcpu_dtor_fn dtor;
	void *arg;
	pthread_mutex_t lock;		/* slab lists, free stacks, below */
	struct pcpu_slab *lists[SLAB_LISTS];
	size_t nr_slabs;
	uint64_t ctor_calls, dtor_calls;
	int dying;			/* set once, under lock and drain_lock;
					   atomic store; read under either
					   lock, or relaxed (a hint) */
	pthread_mutex_t drain_lock;
	/* Per-CPU counters, so that counting costs the fast path no shared
	 * cache line: objects out, and allocations served by the arrays. */
	struct pcpu_counter in_use, array_allocs;
	uint64_t slab_allocs;		/* allocations from the slabs: atomic,
					   on the slow path only */
	uint64_t rcu_pending;		/* atomic */
	struct pcpu_cache_cpu *cpus;
	/* On the list of live caches, under pcpu_caches_lock. */
	struct pcpu_cache *fork_next, *fork_prev;
};

/*
 * fork().  The list of live caches lets the fork handlers take every lock
 * of every cache, so that the child, whose only thread is the one that
 * forked, finds none of them held by a thread that does not exist there.
 * pcpu_rcu_used says whether liburcu-bp has been used by this library: if
 * so the handlers also pause liburcu's call_rcu worker and take its grace-
 * period locks (liburcu-bp's own fork handlers), so that batches freed by
 * call_rcu go on being freed in the child.  It is set under
 * pcpu_caches_lock, which the prepare handler holds until the fork is
 * over: a free_rcu either set it before the handler read it, or calls
 * liburcu only after the fork.
 */
static pthread_mutex_t pcpu_caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_cache *pcpu_caches;
static int pcpu_rcu_used;		/* set under pcpu_caches_lock (so it
					   cannot change between the prepare
					   and after-fork handlers); relaxed
					   peeks outside it are hints */

#if PCPU__TSAN
/*
 * liburcu is not built with ThreadSanitizer, so TSan cannot see that
 * call_rcu() orders our writes to a batch before its callback reads it.
 * Say so explicitly.
 */
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
# define handoff_release(p)	__tsan_release(p)
# define handoff_acquire(p)	__tsan_acquire(p)
#else
# define handoff_release(p)	((void)(p))
# define handoff_acquire(p)	((void)(p))
#endif

/* The cache whose constructor this thread is running (EDEADLK). */
static __thread struct pcpu_cache *pcpu_in_ctor
	__attribute__((tls_model("initial-exec")));

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
#endif

#ifdef PCPU__HAVE_RSEQ_ASM
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
#endif

/* --- rseq sequences on the current CPU's array -------------------------- */

#ifdef PCPU__HAVE_RSEQ_ASM
/* Pop into *out; 0 done, -1 empty, stopped or not registered. */
static inline int rseq_pop(struct pcpu_cache_cpu *base, void **out, long off)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"	/* cpu_id */
		"testl %%eax, %%eax\n\t"
		"js %l[fail]\n\t"
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
		: [off] "r" (off), [base] "r" (base), [out] "r" (out),
		  [shift] "i" (PCPU_CPU_SHIFT),
		  [objs] "i" (offsetof(struct pcpu_cache_cpu, objs))
		: "memory", "cc", "rax", "rcx", "rdx"
		: fail);
	return 0;
fail:
	return -1;
}

/* Push @obj; 0 done, -1 full, stopped or not registered. */
static inline int rseq_push(struct pcpu_cache_cpu *base, void *obj, long off)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"
		"testl %%eax, %%eax\n\t"
		"js %l[fail]\n\t"
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
		: [off] "r" (off), [base] "r" (base), [obj] "r" (obj),
		  [shift] "i" (PCPU_CPU_SHIFT), [mag] "i" (PCPU_MAG),
		  [objs] "i" (offsetof(struct pcpu_cache_cpu, objs))
		: "memory", "cc", "rax", "rcx"
		: fail);
	return 0;
fail:
	return -1;
}
#endif

/* The current CPU's array (nr_cpus is capped: a bigger CPU number, on a
 * machine with more CPUs than PCPU_MAX_SLOTS, shares one). */
static struct pcpu_cache_cpu *this_cpu_array(struct pcpu_cache *cache)
{
	unsigned cpu = pcpu__cpu();

	return &cache->cpus[pcpu__likely(cpu < cache->nr_cpus) ? cpu :
			    cpu % cache->nr_cpus];
}

/* Lock mode: this CPU's array with its lock word held, or NULL. */
static struct pcpu_cache_cpu *cpu_trylock(struct pcpu_cache *cache)
{
	struct pcpu_cache_cpu *pc = this_cpu_array(cache);

	/* Acquire: pairs with the release in cpu_unlock(); the array's
	 * contents written by the previous holder are visible to us. */
	if (__atomic_exchange_n(&pc->lock, 1, __ATOMIC_ACQUIRE))
		return NULL;
	/* Acquire: pairs with start_arrays()' release, which follows the
	 * drainer's emptying of the array. */
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

#ifdef PCPU__HAVE_RSEQ_ASM
/*
 * A sequence failed: was it because this thread has no rseq area yet (a
 * new thread under rseq-own)?  Then register it; 1 if the caller should
 * try once more.  Slow path only: the array was empty, full or stopped,
 * or the thread unregistered.
 */
static int rseq_registered_now(void)
{
	if (pcpu__rseq_cpu_id() >= 0)
		return 0;		/* registered: the array said no */
	return pcpu__rseq_ready() == 0;
}
#endif

/* Pop/push on the current CPU's array: 0 done, -1 not possible now. */
static int array_pop(struct pcpu_cache *cache, void **out)
{
	struct pcpu_cache_cpu *pc;
	int ret = -1;

#ifdef PCPU__HAVE_RSEQ_ASM
	if (cache->rseq) {
		if (rseq_pop(cache->cpus, out, pcpu__rt.rseq_off) == 0)
			return 0;
		return rseq_registered_now() ?
		       rseq_pop(cache->cpus, out, pcpu__rt.rseq_off) : -1;
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

static int array_push(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_cache_cpu *pc;
	int ret = -1;

#ifdef PCPU__HAVE_RSEQ_ASM
	if (cache->rseq) {
		if (rseq_push(cache->cpus, obj, pcpu__rt.rseq_off) == 0)
			return 0;
		return rseq_registered_now() ?
		       rseq_push(cache->cpus, obj, pcpu__rt.rseq_off) : -1;
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

/* --- slabs -------------------------------------------------------------- */

static struct pcpu_slab *slab_of(const struct pcpu_cache *cache,
				 const void *obj)
{
	return (struct pcpu_slab *)((uintptr_t)obj &
				    ~(uintptr_t)(cache->slab_bytes - 1));
}

static unsigned obj_index(const struct pcpu_slab *slab, const void *obj)
{
	return (unsigned)(((const char *)obj - slab->objs) /
			  slab->cache->stride);
}

static void list_del(struct pcpu_cache *cache, struct pcpu_slab *slab)
{
	if (slab->prev)
		slab->prev->next = slab->next;
	else
		cache->lists[slab->list] = slab->next;
	if (slab->next)
		slab->next->prev = slab->prev;
	slab->next = slab->prev = NULL;
}

static void list_add(struct pcpu_cache *cache, struct pcpu_slab *slab)
{
	unsigned l = slab->nr_free == 0 ? SLAB_FULL :
		     slab->nr_free == cache->nr_objs ? SLAB_EMPTY :
		     SLAB_PARTIAL;

	slab->list = l;
	slab->prev = NULL;
	slab->next = cache->lists[l];
	if (slab->next)
		slab->next->prev = slab;
	cache->lists[l] = slab;
}

static size_t header_bytes(unsigned nr_objs, int debug)
{
	size_t h = sizeof(struct pcpu_slab) + nr_objs * sizeof(uint32_t);

	if (debug)
		h += nr_objs;
	return h;
}

/* Run the destructor on objects [0, n) of a slab and unmap it. */
static void slab_destroy(struct pcpu_cache *cache, struct pcpu_slab *slab,
			 unsigned n)
{
	unsigned i;

	if (cache->dtor) {
		for (i = 0; i < n; i++)
			cache->dtor(slab->objs + (size_t)i * cache->stride,
				    cache->arg);
		__atomic_fetch_add(&cache->dtor_calls, n, __ATOMIC_RELAXED);
	}
	pcpu__munmap(slab, cache->slab_bytes);
}

/*
 * Make a slab and construct its objects, with no lock held.  NULL with
 * errno set (ENOMEM, or the constructor's errno) if that fails; then the
 * objects constructed so far are destroyed and nothing is left.
 */
static struct pcpu_slab *slab_create(struct pcpu_cache *cache)
{
	size_t len = cache->slab_bytes;
	char *base;
	struct pcpu_slab *slab;
	struct pcpu_cache *outer;
	unsigned i;
	int err;

	/* Aligned to its size: an object's slab is obj & ~(len - 1). */
	base = pcpu__map_aligned(len, len, 0);
	if (!base) {
		errno = ENOMEM;
		return NULL;
	}

	slab = (struct pcpu_slab *)base;
	slab->cache = cache;
	slab->nr_free = cache->nr_objs;
	slab->objs = base + cache->slab_bytes - (size_t)cache->nr_objs *
		     cache->stride;
	if (cache->flags & PCPU_CACHE_DEBUG)
		slab->in_use = (uint8_t *)&slab->free_stack[cache->nr_objs];
	for (i = 0; i < cache->nr_objs; i++)
		slab->free_stack[i] = cache->nr_objs - 1 - i;

	if (!cache->ctor)
		return slab;
	outer = pcpu_in_ctor;
	pcpu_in_ctor = cache;
	for (i = 0; i < cache->nr_objs; i++) {
		err = cache->ctor(slab->objs + (size_t)i * cache->stride,
				  cache->arg);
		__atomic_fetch_add(&cache->ctor_calls, 1, __ATOMIC_RELAXED);
		if (err) {
			pcpu_in_ctor = outer;
			slab_destroy(cache, slab, i);
			errno = err < 0 ? -err : EINVAL;
			return NULL;
		}
	}
	pcpu_in_ctor = outer;
	return slab;
}

/* Take one free object from the slabs; NULL if none.  Under cache->lock. */
static void *slab_take(struct pcpu_cache *cache)
{
	struct pcpu_slab *slab = cache->lists[SLAB_PARTIAL];

	if (!slab)
		slab = cache->lists[SLAB_EMPTY];
	if (!slab)
		return NULL;
	list_del(cache, slab);
	slab->nr_free--;
	list_add(cache, slab);
	return slab->objs + (size_t)slab->free_stack[slab->nr_free] *
			    cache->stride;
}

/*
 * Give an object back to its slab.  Under cache->lock.  Returns the slab
 * if the cache is dying and the slab is now empty: unlinked, for the caller
 * to destroy once the lock is dropped.
 */
static struct pcpu_slab *slab_put(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_slab *slab = slab_of(cache, obj);

	list_del(cache, slab);
	slab->free_stack[slab->nr_free++] = obj_index(slab, obj);
	if (slab->nr_free == cache->nr_objs && cache->dying) {
		cache->nr_slabs--;
		return slab;
	}
	list_add(cache, slab);
	return NULL;
}

/*
 * Give @n objects back to their slabs.  The slabs a dying cache no longer
 * needs are unlinked onto *@dead, for the caller to destroy once it holds
 * no lock (destroy_slabs()).
 */
static void slabs_put_collect(struct pcpu_cache *cache, size_t n,
			      void **objs, struct pcpu_slab **dead)
{
	struct pcpu_slab *slab;
	size_t i;

	pthread_mutex_lock(&cache->lock);
	for (i = 0; i < n; i++) {
		slab = slab_put(cache, objs[i]);
		if (slab) {
			slab->next = *dead;
			*dead = slab;
		}
	}
	pthread_mutex_unlock(&cache->lock);
}

/* Unlink every empty slab onto *@dead.  Under cache->lock. */
static void detach_empty_locked(struct pcpu_cache *cache,
				struct pcpu_slab **dead)
{
	struct pcpu_slab *slab;

	while ((slab = cache->lists[SLAB_EMPTY])) {
		cache->lists[SLAB_EMPTY] = slab->next;
		cache->nr_slabs--;
		slab->next = *dead;
		*dead = slab;
	}
}

static void detach_empty(struct pcpu_cache *cache, struct pcpu_slab **dead)
{
	pthread_mutex_lock(&cache->lock);
	detach_empty_locked(cache, dead);
	pthread_mutex_unlock(&cache->lock);
}

/* Destroy detached slabs (destructors run, no lock held); how many
 * objects were destroyed. */
static size_t destroy_slabs(struct pcpu_cache *cache, struct pcpu_slab *dead)
{
	struct pcpu_slab *slab;
	size_t n = 0;

	while (dead) {
		slab = dead;
		dead = slab->next;
		slab_destroy(cache, slab, cache->nr_objs);
		n += cache->nr_objs;
	}
	return n;
}

/* slabs_put_collect() for callers that hold no lock. */
static void slabs_put(struct pcpu_cache *cache, size_t n, void **objs)
{
	struct pcpu_slab *dead = NULL;

	slabs_put_collect(cache, n, objs, &dead);
	destroy_slabs(cache, dead);
}

/*
 * Take up to @n objects from the slabs, at least @min (1 <= @min <= @n).
 * Slabs are made (constructors run unlocked) only while fewer than @min
 * are had: a refill (@min 1) makes at most one slab, and only when no
 * slab has a free object (Bonwick's cache_grow), so it never fails for
 * memory it does not need; a bulk allocation (@min == @n) is all or
 * nothing.  Returns how many were taken, or 0 with errno set, the objects
 * taken so far having gone back.
 */
static size_t slabs_take(struct pcpu_cache *cache, size_t n, size_t min,
			 void **objs)
{
	struct pcpu_slab *slab, *dead = NULL;
	size_t got = 0;

	pthread_mutex_lock(&cache->lock);
	for (;;) {
		while (got < n && (objs[got] = slab_take(cache)))
			got++;
		if (got >= min)
			break;
		pthread_mutex_unlock(&cache->lock);
		slab = slab_create(cache);
		if (!slab) {
			int err = errno;

			slabs_put(cache, got, objs);
			errno = err;
			return 0;
		}
		pthread_mutex_lock(&cache->lock);
		cache->nr_slabs++;
		list_add(cache, slab);
	}
	/*
	 * While we made a slab unlocked, frees may have given us the objects
	 * we needed elsewhere, leaving the new slab unused.  A dying cache
	 * keeps no empty slab (invariant 3): release it now.
	 */
	if (cache->dying)
		detach_empty_locked(cache, &dead);
	pthread_mutex_unlock(&cache->lock);
	destroy_slabs(cache, dead);
	return got;
}

/* --- debug checks -------------------------------------------------------- */

static void __attribute__((noreturn)) debug_report(struct pcpu_cache *cache,
						   const void *obj,
						   const void *caller,
						   const char *what)
{
	fprintf(stderr, "libpcpu: cache \"%s\": %s %p (caller %p)\n",
		cache->name, what, obj, caller);
	abort();
}

/* DEBUG: is @obj an object of @cache?  Then its slab. */
static struct pcpu_slab *debug_slab(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_slab *s;
	unsigned l;

	pthread_mutex_lock(&cache->lock);
	for (l = 0; l < SLAB_LISTS; l++)
		for (s = cache->lists[l]; s; s = s->next)
			if ((char *)obj >= s->objs &&
			    (char *)obj < s->objs + (size_t)cache->nr_objs *
						    cache->stride &&
			    ((char *)obj - s->objs) % cache->stride == 0) {
				pthread_mutex_unlock(&cache->lock);
				return s;
			}
	pthread_mutex_unlock(&cache->lock);
	return NULL;
}

static void debug_alloced(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_slab *slab = slab_of(cache, obj);

	/* Relaxed: the state travels with the object, whose hand-off to
	 * the allocating thread (array or slab, under rseq, lock word or
	 * mutex) already orders it; it publishes nothing else. */
	__atomic_store_n(&slab->in_use[obj_index(slab, obj)], OBJ_IN_USE,
			 __ATOMIC_RELAXED);
}

/* Move @obj from state @from to @to, or report the misuse and abort. */
static void debug_freeing(struct pcpu_cache *cache, void *obj,
			  const void *caller, uint8_t from, uint8_t to)
{
	struct pcpu_slab *slab = debug_slab(cache, obj);
	uint8_t old;

	if (!slab)
		debug_report(cache, obj, caller, "free of a foreign pointer");
	/* Exchange: of two racing frees of one object, one sees @to. */
	old = __atomic_exchange_n(&slab->in_use[obj_index(slab, obj)], to,
				  __ATOMIC_RELAXED);
	if (old != from)
		debug_report(cache, obj, caller,
			     old == OBJ_RCU ? "free of an RCU-pending object" :
			     "double free of");
}

/* --- API ---------------------------------------------------------------- */

PCPU_API struct pcpu_cache *pcpu_cache_create(const char *name, size_t size,
					      size_t align, pcpu_ctor_fn ctor,
					      pcpu_dtor_fn dtor, void *arg,
					      unsigned flags)
{
	struct pcpu_cache *cache;
	size_t stride, bytes;
	unsigned n, i;
	int debug = (flags & PCPU_CACHE_DEBUG) != 0;

	if (size == 0 || size > PCPU_ALLOC_MAX || (flags & ~PCPU_CACHE_DEBUG) ||
	    (align & (align - 1)) || align > 4096) {
		errno = EINVAL;
		return NULL;
	}
	if (align == 0) {
		align = size & -size;	/* largest power of two dividing size */
		if (align > 16)
			align = 16;
	}
	pcpu__init();
	stride = (size + align - 1) & ~(align - 1);
	/* Room for the header and at least PCPU_SLAB_MIN_OBJS objects. */
	bytes = pcpu__pow2_at_least(header_bytes(PCPU_SLAB_MIN_OBJS, debug) + align +
			      PCPU_SLAB_MIN_OBJS * stride);
	if (bytes < PCPU_SLAB_MIN)
		bytes = PCPU_SLAB_MIN;
	for (n = (unsigned)(bytes / stride); n; n--) {
		size_t hdr = header_bytes(n, debug);

		hdr = (hdr + align - 1) & ~(align - 1);
		if (hdr + (size_t)n * stride <= bytes)
			break;
	}

	cache = pcpu__calloc(1, sizeof(*cache));
	if (!cache)
		goto nomem;
	cache->nr_cpus = pcpu__possible_cpus();
	if (pcpu__memalign((void **)&cache->cpus, 1u << PCPU_CPU_SHIFT,
			   (size_t)cache->nr_cpus << PCPU_CPU_SHIFT))
		goto nomem_cache;
	memset(cache->cpus, 0, (size_t)cache->nr_cpus << PCPU_CPU_SHIFT);
	for (i = 0; i < cache->nr_cpus; i++)
		pthread_mutex_init(&cache->cpus[i].rcu_lock, NULL);
	if (pcpu_counter_init(&cache->in_use, 0, PCPU_COUNTER_LAZY))
		goto nomem_cpus;
	if (pcpu_counter_init(&cache->array_allocs, 0, PCPU_COUNTER_LAZY))
		goto nomem_in_use;

	snprintf(cache->name, sizeof(cache->name), "%s", name ? name : "");
	cache->stride = stride;
	cache->slab_bytes = bytes;
	cache->nr_objs = n;
	cache->flags = flags;
	cache->ctor = ctor;
	cache->dtor = dtor;
	cache->arg = arg;
	pthread_mutex_init(&cache->lock, NULL);
	pthread_mutex_init(&cache->drain_lock, NULL);
#ifdef PCPU__HAVE_RSEQ_ASM
	/* rseq arrays need rseq for every CPU and membarrier to drain. */
	if (pcpu__rseq_kind() != PCPU__METHOD_ATOMIC && !pcpu__cpus_capped()) {
		pthread_once(&pcpu_membarrier_once, membarrier_register);
		cache->rseq = pcpu_membarrier_state == 1;
	}
#endif
	pthread_mutex_lock(&pcpu_caches_lock);
	cache->fork_next = pcpu_caches;
	if (pcpu_caches)
		pcpu_caches->fork_prev = cache;
	pcpu_caches = cache;
	pthread_mutex_unlock(&pcpu_caches_lock);
	return cache;

nomem_in_use:
	pcpu_counter_destroy(&cache->in_use);
nomem_cpus:
	pcpu__free_mem(cache->cpus);
nomem_cache:
	pcpu__free_mem(cache);
nomem:
	errno = ENOMEM;
	return NULL;
}

/* The allocation slow path: refill this CPU's array from the slabs. */
static void *alloc_slow(struct pcpu_cache *cache)
{
	void *batch[PCPU_MAG / 2 + 1];
	size_t n = PCPU_MAG / 2 + 1, i;

	if (__atomic_load_n(&cache->dying, __ATOMIC_RELAXED))
		n = 1;
	n = slabs_take(cache, n, 1, batch);
	if (!n)
		return NULL;
	/* Keep batch[0]; the rest go to this CPU's array while it has room
	 * (the thread may have migrated: any CPU's array is fine). */
	for (i = 1; i < n; i++)
		if (array_push(cache, batch[i]))
			break;
	if (i < n)
		slabs_put(cache, n - i, batch + i);
	return batch[0];
}

/* Count @n allocations, @fast of them served by the arrays: one update
 * of each counter, however many objects. */
static void note_allocs(struct pcpu_cache *cache, void **objs, size_t n,
			size_t fast)
{
	size_t i;

	pcpu_counter_add(&cache->in_use, (int64_t)n);
	if (fast)
		pcpu_counter_add(&cache->array_allocs, (int64_t)fast);
	if (n > fast)
		/* Relaxed: a statistic; the slab path took a lock anyway. */
		__atomic_fetch_add(&cache->slab_allocs, n - fast,
				   __ATOMIC_RELAXED);
	if (cache->flags & PCPU_CACHE_DEBUG)
		for (i = 0; i < n; i++)
			debug_alloced(cache, objs[i]);
}

PCPU_API void *pcpu_cache_alloc(struct pcpu_cache *cache, unsigned flags)
{
	void *obj;

	if (!cache || (flags & ~PCPU_NOWAIT)) {
		errno = EINVAL;
		return NULL;
	}
	/* Even if the array could serve it: a constructor that allocates
	 * from its own cache is a bug that would deadlock on a cold cache. */
	if (pcpu__unlikely(pcpu_in_ctor == cache)) {
		errno = EDEADLK;
		return NULL;
	}
	if (pcpu__likely(array_pop(cache, &obj) == 0)) {
		note_allocs(cache, &obj, 1, 1);
		return obj;
	}
	if (flags & PCPU_NOWAIT) {
		errno = EAGAIN;
		return NULL;
	}
	obj = alloc_slow(cache);
	if (obj)
		note_allocs(cache, &obj, 1, 0);
	return obj;
}

/* The free slow path: the array is full (spill half of it) or stopped. */
static void free_slow(struct pcpu_cache *cache, void *obj)
{
	void *batch[PCPU_MAG / 2 + 1];
	size_t n = 0;

	batch[n++] = obj;
	while (n < PCPU_MAG / 2 + 1 && array_pop(cache, &batch[n]) == 0)
		n++;
	slabs_put(cache, n, batch);
}

static void free_one(struct pcpu_cache *cache, void *obj, const void *caller)
{
	if (cache->flags & PCPU_CACHE_DEBUG)
		debug_freeing(cache, obj, caller, OBJ_IN_USE, OBJ_FREE);
	pcpu_counter_dec(&cache->in_use);
	if (pcpu__likely(array_push(cache, obj) == 0))
		return;
	free_slow(cache, obj);
}

PCPU_API void pcpu_cache_free(struct pcpu_cache *cache, void *obj)
{
	if (!cache || !obj)
		return;
	free_one(cache, obj, __builtin_return_address(0));
}

PCPU_API size_t pcpu_cache_alloc_bulk(struct pcpu_cache *cache,
				      unsigned flags, size_t n, void **objs)
{
	size_t got = 0, from_array, i;

	if (!cache || !objs || (flags & ~PCPU_NOWAIT)) {
		errno = EINVAL;
		return 0;
	}
	if (n == 0)
		return 0;
	if (pcpu_in_ctor == cache) {
		errno = EDEADLK;
		return 0;
	}
	while (got < n && array_pop(cache, &objs[got]) == 0)
		got++;
	from_array = got;
	if (got < n) {
		int err = 0;

		if (flags & PCPU_NOWAIT)
			err = EAGAIN;
		else if (!slabs_take(cache, n - got, n - got, objs + got))
			err = errno;
		if (err) {
			/* All or nothing: put back what we took. */
			for (i = 0; i < got; i++)
				if (array_push(cache, objs[i]))
					break;
			if (i < got)
				slabs_put(cache, got - i, objs + i);
			errno = err;
			return 0;
		}
	}
	note_allocs(cache, objs, n, from_array);
	return n;
}

/* Free @n objects that the debug checks expect in state @from. */
static void free_many(struct pcpu_cache *cache, size_t n, void **objs,
		      const void *caller, uint8_t from)
{
	void *spill[PCPU_MAG];
	size_t i, ns = 0, freed = 0;
	int full = 0;

	for (i = 0; i < n; i++) {
		if (!objs[i])
			continue;
		if (cache->flags & PCPU_CACHE_DEBUG)
			debug_freeing(cache, objs[i], caller, from, OBJ_FREE);
		freed++;
		if (!full && array_push(cache, objs[i]) == 0)
			continue;
		/* The array is full or stopped: the rest go back to the
		 * slabs, a lock round trip per PCPU_MAG objects. */
		full = 1;
		spill[ns++] = objs[i];
		if (ns == PCPU_MAG) {
			slabs_put(cache, ns, spill);
			ns = 0;
		}
	}
	if (ns)
		slabs_put(cache, ns, spill);
	/* One update for the batch; before any rcu_pending release that
	 * follows (rcu_batch_free()), so destroy sees it. */
	pcpu_counter_add(&cache->in_use, -(int64_t)freed);
}

PCPU_API void pcpu_cache_free_bulk(struct pcpu_cache *cache, size_t n,
				   void **objs)
{
	if (!cache || !objs)
		return;
	free_many(cache, n, objs, __builtin_return_address(0), OBJ_IN_USE);
}

/* --- RCU ---------------------------------------------------------------- */

static void rcu_batch_free(struct rcu_head *head)
{
	struct pcpu_rcu_batch *b = (struct pcpu_rcu_batch *)head;
	struct pcpu_cache *cache;
	unsigned n;

	handoff_acquire(b);
	cache = b->cache;
	n = b->n;

	/* Still counted in in_use (invariant 4): freeing them counts them
	 * out. */
	free_many(cache, n, b->objs, NULL, OBJ_RCU);
	pcpu__free_mem(b);
	/* Last, release: a destroy that loads 0 with acquire (rcu_flush())
	 * sees everything this callback did to the cache. */
	__atomic_fetch_sub(&cache->rcu_pending, n, __ATOMIC_RELEASE);
}

/* Has the batch waited long enough to go out partly filled? */
static int batch_old(const struct pcpu_rcu_batch *b)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	return (now.tv_sec - b->born.tv_sec) * 1000000000L +
	       (now.tv_nsec - b->born.tv_nsec) >= PCPU_RCU_AGE_NS;
}

PCPU_API void pcpu_cache_free_rcu(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_cache_cpu *pc;
	struct pcpu_rcu_batch *b, *full = NULL;

	if (!cache || !obj)
		return;
	if (pcpu__unlikely(!__atomic_load_n(&pcpu_rcu_used, __ATOMIC_RELAXED))) {
		/* Before any call into liburcu (see pcpu_caches_lock). */
		pthread_mutex_lock(&pcpu_caches_lock);
		__atomic_store_n(&pcpu_rcu_used, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&pcpu_caches_lock);
	}
	if (cache->flags & PCPU_CACHE_DEBUG)
		/* Check now, with the caller's address; pending until the
		 * batch's free, which expects OBJ_RCU. */
		debug_freeing(cache, obj, __builtin_return_address(0),
			      OBJ_IN_USE, OBJ_RCU);
	__atomic_fetch_add(&cache->rcu_pending, 1, __ATOMIC_RELAXED);
	pc = this_cpu_array(cache);
	pthread_mutex_lock(&pc->rcu_lock);
	b = pc->rcu;
	if (!b) {
		b = pcpu__malloc(sizeof(*b));
		if (!b) {
			/* No batch: wait for the grace period here. */
			pthread_mutex_unlock(&pc->rcu_lock);
			urcu_bp_synchronize_rcu();
			free_many(cache, 1, &obj, NULL, OBJ_RCU);
			/* Last, release: as in rcu_batch_free(). */
			__atomic_fetch_sub(&cache->rcu_pending, 1,
					   __ATOMIC_RELEASE);
			return;
		}
		b->cache = cache;
		b->n = 0;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &b->born);
		pc->rcu = b;
	}
	b->objs[b->n++] = obj;
	if (b->n == PCPU_RCU_BATCH || batch_old(b)) {
		full = b;
		pc->rcu = NULL;
	}
	pthread_mutex_unlock(&pc->rcu_lock);
	if (full) {
		handoff_release(full);
		urcu_bp_call_rcu(&full->head, rcu_batch_free);
	}
}

/* Send every partial RCU batch on its way. */
static void rcu_send_partial(struct pcpu_cache *cache)
{
	struct pcpu_rcu_batch *b;
	unsigned i;

	if (!__atomic_load_n(&cache->rcu_pending, __ATOMIC_RELAXED))
		return;
	for (i = 0; i < cache->nr_cpus; i++) {
		pthread_mutex_lock(&cache->cpus[i].rcu_lock);
		b = cache->cpus[i].rcu;
		cache->cpus[i].rcu = NULL;
		pthread_mutex_unlock(&cache->cpus[i].rcu_lock);
		if (b) {
			handoff_release(b);
			urcu_bp_call_rcu(&b->head, rcu_batch_free);
		}
	}
}

/* ... and wait until all of them are freed. */
static void rcu_flush(struct pcpu_cache *cache)
{
	/* Acquire: pairs with rcu_batch_free()'s release (see there). */
	if (!__atomic_load_n(&cache->rcu_pending, __ATOMIC_ACQUIRE))
		return;
	rcu_send_partial(cache);
	urcu_bp_barrier();
}

/* --- draining ------------------------------------------------------------ */

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

/* Move every array's objects to the slabs; arrays stay stopped.  Slabs
 * a dying cache releases go onto *@dead (destroyed by the caller). */
static void drain_arrays(struct pcpu_cache *cache, struct pcpu_slab **dead)
{
	unsigned i;

	stop_arrays(cache);
	for (i = 0; i < cache->nr_cpus; i++) {
		struct pcpu_cache_cpu *pc = &cache->cpus[i];

		/* Plain accesses: nobody writes a stopped array (inv. 2). */
		if (pc->count)
			slabs_put_collect(cache, pc->count, pc->objs, dead);
		pc->count = 0;
	}
}

static void start_arrays(struct pcpu_cache *cache)
{
	unsigned i;

	/* Release: the emptied arrays before any sequence that sees 0. */
	for (i = 0; i < cache->nr_cpus; i++)
		__atomic_store_n(&cache->cpus[i].stop, 0, __ATOMIC_RELEASE);
}

PCPU_API size_t pcpu_cache_shrink(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;

	if (!cache)
		return 0;
	rcu_send_partial(cache);
	pthread_mutex_lock(&cache->drain_lock);
	drain_arrays(cache, &dead);
	if (!cache->dying)
		start_arrays(cache);
	detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	return destroy_slabs(cache, dead);
}

PCPU_API int pcpu_cache_deactivate(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;

	if (!cache)
		return -EINVAL;
	rcu_send_partial(cache);
	pthread_mutex_lock(&cache->drain_lock);
	pthread_mutex_lock(&cache->lock);
	/* From now on slab_put() releases empty slabs (invariant 3).
	 * Atomic: alloc_slow() peeks at it without the lock. */
	__atomic_store_n(&cache->dying, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&cache->lock);
	drain_arrays(cache, &dead);	/* and they stay stopped */
	detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	destroy_slabs(cache, dead);
	return 0;
}

static void report_leaks(struct pcpu_cache *cache, const void *caller)
{
	struct pcpu_slab *s;
	unsigned l, i;

	for (l = 0; l < SLAB_LISTS; l++)
		for (s = cache->lists[l]; s; s = s->next)
			for (i = 0; i < cache->nr_objs; i++)
				if (s->in_use[i])
					fprintf(stderr, "libpcpu: cache \"%s\": "
						"object %p still in use at "
						"destroy\n", cache->name,
						s->objs + (size_t)i *
							  cache->stride);
	fprintf(stderr, "libpcpu: cache \"%s\": destroyed with objects in "
		"use (caller %p)\n", cache->name, caller);
	abort();
}

PCPU_API int pcpu_cache_destroy(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;
	unsigned i;

	if (!cache)
		return -EINVAL;
	rcu_flush(cache);
	pthread_mutex_lock(&cache->drain_lock);
	if (pcpu_counter_sum(&cache->in_use) != 0) {
		if (cache->flags & PCPU_CACHE_DEBUG)
			report_leaks(cache, __builtin_return_address(0));
		pthread_mutex_unlock(&cache->drain_lock);
		return -EBUSY;
	}
	drain_arrays(cache, &dead);
	detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	destroy_slabs(cache, dead);
	/* Off the list before its locks go: the fork handlers take them. */
	pthread_mutex_lock(&pcpu_caches_lock);
	if (cache->fork_prev)
		cache->fork_prev->fork_next = cache->fork_next;
	else
		pcpu_caches = cache->fork_next;
	if (cache->fork_next)
		cache->fork_next->fork_prev = cache->fork_prev;
	pthread_mutex_unlock(&pcpu_caches_lock);
	pcpu_counter_destroy(&cache->in_use);
	pcpu_counter_destroy(&cache->array_allocs);
	for (i = 0; i < cache->nr_cpus; i++)
		pthread_mutex_destroy(&cache->cpus[i].rcu_lock);
	pthread_mutex_destroy(&cache->lock);
	pthread_mutex_destroy(&cache->drain_lock);
	pcpu__free_mem(cache->cpus);
	pcpu__free_mem(cache);
	return 0;
}

PCPU_API int pcpu_cache_stats(const struct pcpu_cache *cache,
			      struct pcpu_cache_stats *st)
{
	struct pcpu_cache *c = (struct pcpu_cache *)cache;
	uint64_t fast;
	int64_t in_use;

	if (!cache || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	in_use = pcpu_counter_sum(&cache->in_use);
	pthread_mutex_lock(&c->lock);
	st->slabs = c->nr_slabs;
	pthread_mutex_unlock(&c->lock);
	st->objs_per_slab = cache->nr_objs;
	st->in_use = in_use > 0 ? (size_t)in_use : 0;
	st->cached = st->slabs * st->objs_per_slab > st->in_use ?
		     st->slabs * st->objs_per_slab - st->in_use : 0;
	st->ctor_calls = __atomic_load_n(&c->ctor_calls, __ATOMIC_RELAXED);
	st->dtor_calls = __atomic_load_n(&c->dtor_calls, __ATOMIC_RELAXED);
	fast = (uint64_t)pcpu_counter_sum(&cache->array_allocs);
	st->allocs = fast + __atomic_load_n(&c->slab_allocs, __ATOMIC_RELAXED);
	/* Array hits take no lock only with rseq; lock words are locks. */
	st->lockless_allocs = cache->rseq ? fast : 0;
	st->rcu_pending = __atomic_load_n(&c->rcu_pending, __ATOMIC_RELAXED);
	return 0;
}

/* --- fork ---------------------------------------------------------------- */

/*
 * Lock order: pcpu_caches_lock first (it guards pcpu_rcu_used), then
 * liburcu's call_rcu pause and grace-period locks (the paused worker is
 * between callbacks, so it holds no lock of ours; nothing the worker runs,
 * rcu_batch_free() and the destructors it may call, ever takes
 * pcpu_caches_lock: only cache create and destroy and the first free_rcu
 * do, never from a callback), then per cache drain_lock, lock, and the
 * leaf locks: the RCU batch locks and the lock words (held only around
 * plain array accesses).  In rseq mode an array has no lock: a sequence
 * another thread was in is gone in the child, committed or not.
 */
void pcpu__cache_fork_prepare(void)
{
	struct pcpu_cache *c;
	unsigned i;

	pthread_mutex_lock(&pcpu_caches_lock);
	if (pcpu_rcu_used) {
		urcu_bp_call_rcu_before_fork();
		urcu_bp_before_fork();
	}
	for (c = pcpu_caches; c; c = c->fork_next) {
		pthread_mutex_lock(&c->drain_lock);
		pthread_mutex_lock(&c->lock);
		for (i = 0; i < c->nr_cpus; i++) {
			pthread_mutex_lock(&c->cpus[i].rcu_lock);
			if (c->rseq)
				continue;
			/* Acquire: as cpu_trylock(); the holder is inside a
			 * few plain accesses, so this spin is short. */
			while (__atomic_exchange_n(&c->cpus[i].lock, 1,
						   __ATOMIC_ACQUIRE))
				sched_yield();
		}
	}
}

static void cache_fork_release(void)
{
	struct pcpu_cache *c;
	unsigned i;

	for (c = pcpu_caches; c; c = c->fork_next) {
		for (i = 0; i < c->nr_cpus; i++) {
			if (!c->rseq)
				cpu_unlock(&c->cpus[i]);
			pthread_mutex_unlock(&c->cpus[i].rcu_lock);
		}
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->drain_lock);
	}
}

void pcpu__cache_fork_parent(void)
{
	cache_fork_release();
	if (pcpu_rcu_used) {
		urcu_bp_after_fork_parent();
		urcu_bp_call_rcu_after_fork_parent();
	}
	pthread_mutex_unlock(&pcpu_caches_lock);
}

/* The child's only thread took every lock in the prepare handler: it
 * releases them (the owner unlocking its own mutexes). */
void pcpu__cache_fork_child(void)
{
	cache_fork_release();
	if (pcpu_rcu_used) {
		/* Forgets the parent's other readers; a new call_rcu worker
		 * takes over the callbacks queued before the fork. */
		urcu_bp_after_fork_child();
		urcu_bp_call_rcu_after_fork_child();
	}
	pthread_mutex_unlock(&pcpu_caches_lock);
}
