/* SPDX-License-Identifier: MIT */
/*
 * lib/cache.h - what the object-cache files share.  Not installed.
 *
 * The object cache is four mechanisms, one file each, that import one way,
 * from the bottom up (no file calls into a file listed above it here):
 *
 *   lib/cache.c        the API glue and the fork hooks       (top)
 *   lib/cache_rcu.c    pcpu_cache_free_rcu(): batches and the reclaimer
 *   lib/cache_cpu.c    per-CPU arrays (rseq sequences or lock words)
 *   lib/cache_debug.c  PCPU_CACHE_DEBUG checks of object states
 *   lib/slab.c         slabs, constructors and destructors   (bottom)
 *
 * An object is at any time in exactly one of these places:
 *
 *   raw        in its slab, never constructed (or its constructor failed);
 *   building   taken from its slab's raw stack, its constructor running;
 *   free       in its slab, constructed (its slab's free stack);
 *   cached     constructed, in a per-CPU array;
 *   out        handed to the user, or pending in an RCU batch.
 *
 * Constructors run at the boundary between the slab layer and the layers
 * above (Bonwick and Adams, 2001): an allocation that finds no constructed
 * object constructs one raw object for itself, so a failing constructor
 * fails only that allocation.  Destructors run when a slab is released,
 * on the free objects (a releasable slab has no other constructed ones).
 */
#ifndef PCPU_LIB_CACHE_H
#define PCPU_LIB_CACHE_H

#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

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
/* Constructors of distinct caches one thread may be running nested. */
#define PCPU_CTOR_DEPTH		16

/* One possible CPU's array: a power-of-two size the sequences index by. */
struct pcpu_cache_cpu {
	uint32_t stop;		/* nonzero sends every op to the locked path
				   (cache_cpu.c, invariant 2) */
	uint32_t count;		/* objects in objs[] */
	uint32_t lock;		/* lock mode: 1 while held */
	uint32_t pad0;
	pthread_mutex_t rcu_lock; /* protects rcu */
	struct pcpu_rcu_batch *rcu;
	void *objs[PCPU_MAG];
} __attribute__((aligned(1 << PCPU_CPU_SHIFT)));

_Static_assert(sizeof(struct pcpu_cache_cpu) == (1u << PCPU_CPU_SHIFT),
	       "per-CPU array size must match PCPU_CPU_SHIFT");

/*
 * A slab.  stack[] holds two stacks of object indices that never meet:
 * the free stack grows up from stack[0] (nr_free entries), the raw stack
 * down from stack[nr_objs - 1] (nr_raw entries).  Everything here is
 * under cache->lock, except in_use[] (cache_debug.c says why).
 */
struct pcpu_slab {
	struct pcpu_slab *next, *prev;
	struct pcpu_cache *cache;
	unsigned nr_free;		/* constructed objects free here */
	unsigned nr_raw;		/* objects not constructed */
	unsigned list;			/* SLAB_FREE, SLAB_RAW, SLAB_FULL */
	char *objs;
	uint8_t *in_use;		/* DEBUG: an OBJ_* state per object */
	uint32_t stack[];
};

/*
 * Slab lists, by what a slab can give: constructed objects (FREE), only
 * raw ones (RAW), nothing (FULL).  A releasable slab (nothing out or
 * building) is on FREE or RAW.
 */
enum { SLAB_FREE, SLAB_RAW, SLAB_FULL, SLAB_LISTS };

/* DEBUG states of an object. */
enum { OBJ_FREE, OBJ_IN_USE, OBJ_RCU };

struct pcpu_rcu_batch {
	struct pcpu_rcu_batch *next;	/* on the reclaimer's queue */
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
	pthread_mutex_t lock;		/* slab lists, slabs, the 3 below */
	struct pcpu_slab *lists[SLAB_LISTS];
	size_t nr_slabs;
	size_t nr_raw;			/* raw objects in all slabs */
	size_t nr_building;		/* constructors running */
	uint64_t ctor_calls, dtor_calls; /* atomic (relaxed): statistics */
	int dying;			/* set once, under lock and drain_lock;
					   atomic store; read under either
					   lock, or relaxed (a hint) */
	pthread_mutex_t drain_lock;
	/* Per-CPU counters, so that counting costs the fast path no shared
	 * cache line: objects out, and allocations served by the arrays. */
	struct pcpu_counter in_use, array_allocs;
	uint64_t slab_allocs;		/* allocations from the slabs: atomic,
					   on the slow path only */
	uint64_t rcu_pending;		/* atomic; see cache_rcu.c */
	struct pcpu_cache_cpu *cpus;
	/* On the list of live caches, under pcpu_caches_lock (cache.c). */
	struct pcpu_cache *fork_next, *fork_prev;
};

/* --- slab.c -------------------------------------------------------------- */

/* The slab of an object: slabs are aligned to their size. */
static inline struct pcpu_slab *pcpu__slab_of(const struct pcpu_cache *cache,
					      const void *obj)
{
	return (struct pcpu_slab *)((uintptr_t)obj &
				    ~(uintptr_t)(cache->slab_bytes - 1));
}

static inline unsigned pcpu__obj_index(const struct pcpu_slab *slab,
				       const void *obj)
{
	return (unsigned)(((const char *)obj - slab->objs) /
			  slab->cache->stride);
}

/* Bytes of slab header for @nr_objs objects. */
size_t pcpu__slab_header_bytes(unsigned nr_objs, int debug);

/*
 * Take up to @n constructed objects, at least @min (1 <= @min <= @n),
 * constructing raw ones (no lock held) for the part of @min that no free
 * object covers.  Returns how many, or 0 with errno set (ENOMEM, EDEADLK,
 * or the constructor's errno): then nothing is taken, and the objects
 * whose constructors succeeded stay constructed in their slabs.
 */
size_t pcpu__slabs_take(struct pcpu_cache *cache, size_t n, size_t min,
			void **objs);

/* Give @n constructed objects back to their slabs (no lock held: takes
 * cache->lock, releases a dying cache's slabs left with nothing out). */
void pcpu__slabs_put(struct pcpu_cache *cache, size_t n, void **objs);

/* The same, with the slabs to release put on *@dead instead. */
void pcpu__slabs_put_collect(struct pcpu_cache *cache, size_t n, void **objs,
			     struct pcpu_slab **dead);

/* Unlink every releasable slab onto *@dead (takes cache->lock). */
void pcpu__slabs_detach_empty(struct pcpu_cache *cache,
			      struct pcpu_slab **dead);

/* Release detached slabs, running destructors with no lock held; how many
 * objects were destroyed. */
size_t pcpu__slabs_destroy(struct pcpu_cache *cache, struct pcpu_slab *dead);

/*
 * The caches whose constructors the calling thread is running, outermost
 * first: c[0, depth).  Only this thread writes it, and a signal handler
 * that interrupts it reads it: an entry is written before depth grows past
 * it (slab.c), so the handler sees whole entries.
 */
struct pcpu__ctor_stack {
	unsigned depth;
	const struct pcpu_cache *c[PCPU_CTOR_DEPTH];
};
extern __thread struct pcpu__ctor_stack pcpu__ctor_stack
	__attribute__((tls_model("initial-exec")));

/*
 * Is the calling thread running a constructor of @cache (directly or
 * further up its stack of nested constructors)?  Async-signal-safe; one
 * TLS load when no constructor runs.
 */
static inline int pcpu__in_ctor_of(const struct pcpu_cache *cache)
{
	/* Relaxed: only this thread (or a handler on it) writes it. */
	unsigned d = __atomic_load_n(&pcpu__ctor_stack.depth, __ATOMIC_RELAXED);

	if (pcpu__likely(d == 0))
		return 0;
	/* Pairs with the signal fence in ctor_push(). */
	__atomic_signal_fence(__ATOMIC_ACQUIRE);
	while (d--)
		if (pcpu__ctor_stack.c[d] == cache)
			return 1;
	return 0;
}

/* --- cache_debug.c -------------------------------------------------------- */

void pcpu__debug_alloced(struct pcpu_cache *cache, void *obj);
void pcpu__debug_freeing(struct pcpu_cache *cache, void *obj,
			 const void *caller, uint8_t from, uint8_t to);
void __attribute__((noreturn))
pcpu__debug_report_leaks(struct pcpu_cache *cache, const void *caller);

/* --- cache_cpu.c ---------------------------------------------------------- */

/* Set up @cache's arrays (already zeroed): chooses rseq or lock words. */
void pcpu__cpu_arrays_init(struct pcpu_cache *cache);

/* The current CPU's array, always within bounds (for RCU batches). */
struct pcpu_cache_cpu *pcpu__this_cpu_array(struct pcpu_cache *cache);

/* Pop/push on the current CPU's array: 0 done, -1 not possible now. */
int pcpu__array_pop(struct pcpu_cache *cache, void **out);
int pcpu__array_push(struct pcpu_cache *cache, void *obj);

/* Stop every array, move its objects to the slabs (slabs to release go on
 * *@dead); under drain_lock.  start again unless the cache is dying. */
void pcpu__arrays_drain(struct pcpu_cache *cache, struct pcpu_slab **dead);
void pcpu__arrays_start(struct pcpu_cache *cache);

/* Free @n objects expected in DEBUG state @from (NULL entries skipped):
 * arrays first, then the slabs; in_use drops by the number freed. */
void pcpu__free_many(struct pcpu_cache *cache, size_t n, void **objs,
		     const void *caller, uint8_t from);

/* Fork: take / release every array's lock word (lock mode). */
void pcpu__arrays_fork_lock(struct pcpu_cache *cache);
void pcpu__arrays_fork_unlock(struct pcpu_cache *cache);

/* --- cache_rcu.c ---------------------------------------------------------- */

/* Send every partial RCU batch of @cache to the reclaimer. */
void pcpu__rcu_send_partial(struct pcpu_cache *cache);

/*
 * Wait until every pcpu_cache_free_rcu() of @cache has been freed.  0, or
 * -EDEADLK (nothing done) when waiting here could never end: the caller is
 * the reclaimer itself, or inside an RCU read-side critical section, and
 * objects of @cache are pending.
 */
int pcpu__rcu_flush(struct pcpu_cache *cache);

/* Fork: pause the reclaimer (before any cache lock), resume it. */
void pcpu__rcu_fork_prepare(void);
void pcpu__rcu_fork_parent(void);
void pcpu__rcu_fork_child(void);

#endif /* PCPU_LIB_CACHE_H */
