/* SPDX-License-Identifier: MIT */
/*
 * pcpu/cache.h - object caches with constructor and destructor.
 *
 * The Bonwick slab model, for objects that own per-CPU memory.  A cache
 * hands out objects of one size carved out of slabs.  The constructor runs
 * on an object the first time an allocation needs it (an allocation that
 * finds no constructed object in the cache constructs one for itself), the
 * destructor when the object's slab is released; in between, objects go
 * out and come back many times in their constructed state.  An object whose constructor allocates per-CPU
 * memory (pcpu_alloc(), pcpu_counter_init()) therefore pays the global
 * allocator lock and the per-CPU initialization once per slab, not once
 * per use: the remedy proposed for the kernel's mm_struct and tc actions.
 *
 * Freed objects are kept in per-CPU arrays: allocation and free take no
 * lock in the common case (a restartable sequence on the current CPU's
 * array where the kernel has rseq; a per-CPU lock word otherwise).  The
 * arrays exchange objects with the slabs in batches under the cache's lock.
 *
 * The caller's contract: an object given back to pcpu_cache_free() must be
 * in its constructed state again (for a counter: pcpu_counter_reset(),
 * which keeps its per-CPU memory).
 *
 * Constructors and destructors may call pcpu_alloc(), pcpu_free(),
 * pcpu_counter_init*() and pcpu_counter_destroy*(); the library never runs
 * them with one of its own locks held.  A constructor that allocates from
 * its own cache, directly or through the constructors of other caches
 * (A -> B -> A), gets EDEADLK, as does a chain of constructors of distinct
 * caches nested more than 16 deep.
 *
 * fork().  An application that forks without exec and uses
 * pcpu_cache_free_rcu() may call liburcu's fork hooks around fork(), as
 * liburcu documents (urcu_bp_call_rcu_before_fork(), urcu_bp_before_fork(),
 * and their after-fork pairs), or not call them: both work.  Once
 * pcpu_cache_free_rcu() has been used, libpcpu calls urcu_bp_before_fork()
 * and its pair itself exactly when the forking thread does not have every
 * signal blocked (urcu_bp_before_fork() blocks them all), so do not
 * unblock a signal between liburcu's before-fork hook and fork(), and
 * register the hooks with pthread_atfork() only after libpcpu's set-up
 * (not from an early constructor of a static program); before the first
 * pcpu_cache_free_rcu() they are the application's alone.  A fork()
 * inside a read-side critical section leaves liburcu unrepaired in the
 * child (its hook would wait for a grace period that waits for the
 * forking reader): libpcpu waits for no grace period there (RCU frees
 * stay pending; destroy fails with EDEADLK); see pcpu_cache_free_rcu(3).
 *
 * Synchronization table ("yes": may run concurrently on one cache)
 *
 *                 alloc  free  bulk  free_rcu  shrink  deactivate  stats
 *   alloc/free    yes    yes   yes   yes       yes     yes         yes
 *   free_rcu      yes    yes   yes   yes       yes     yes         yes
 *   shrink        yes    yes   yes   yes       yes     yes         yes
 *   destroy       no     no    no    no        no      no          no
 */
#ifndef PCPU_CACHE_H
#define PCPU_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <pcpu/cpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/** pcpu_cache_create() flag: report misuse with the caller's address. */
#define PCPU_CACHE_DEBUG	0x1u

/** pcpu_cache_alloc() flag: per-CPU array only; no lock, no constructor. */
#define PCPU_NOWAIT		0x1u

/**
 * pcpu_ctor_fn - construct an object of a cache's new slab.
 * @obj: the object (size and alignment of the cache; contents undefined).
 * @arg: the cache's @arg.
 *
 * Return: 0, or a negative errno: only the allocation that needed this
 * object fails, with that errno (EINVAL for a positive value).  The object
 * stays unconstructed in its slab and a later allocation tries it again;
 * objects constructed before are kept.  With one call in three failing,
 * about two allocations in three succeed.
 */
typedef int (*pcpu_ctor_fn)(void *obj, void *arg);

/** pcpu_dtor_fn - destroy a constructed object whose slab is released. */
typedef void (*pcpu_dtor_fn)(void *obj, void *arg);

/** Counts of a cache, from pcpu_cache_stats(). */
struct pcpu_cache_stats {
	size_t in_use;		/* objects allocated and not freed */
	size_t cached;		/* constructed objects free in the cache */
	size_t slabs;		/* slabs (objects constructed on demand) */
	size_t objs_per_slab;	/* objects in every slab */
	uint64_t ctor_calls;	/* constructor calls, successful or not */
	uint64_t dtor_calls;	/* destructor calls */
	uint64_t allocs;	/* successful allocations, bulk ones each */
	uint64_t lockless_allocs; /* of those, served without a lock: from
				     a per-CPU array by an rseq sequence */
	uint64_t rcu_pending;	/* pcpu_cache_free_rcu() objects not freed */
};

struct pcpu_cache;

/**
 * pcpu_cache_create - create an object cache.
 * @name:  for diagnostics (copied); may be NULL.
 * @size:  object size, 1 to PCPU_ALLOC_MAX.
 * @align: object alignment: 0 for the natural one (the largest power of two
 *         dividing @size, at most 16), else a power of two up to 4096.
 * @ctor:  constructor or NULL.
 * @dtor:  destructor or NULL.
 * @arg:   passed to @ctor and @dtor.
 * @flags: 0 or PCPU_CACHE_DEBUG.
 *
 * Return: the cache, or NULL with errno EINVAL (@size 0 or too large, bad
 * @align, unknown @flags) or ENOMEM.
 *
 * The cache keeps its statistics in per-CPU counters, so
 * pcpu_set_nr_slots() fails with -EBUSY while a cache exists.
 *
 * This API is MT-safe.
 */
PCPU_API struct pcpu_cache *pcpu_cache_create(const char *name, size_t size,
					      size_t align, pcpu_ctor_fn ctor,
					      pcpu_dtor_fn dtor, void *arg,
					      unsigned flags);

/**
 * pcpu_cache_alloc - take a constructed object.
 * @cache: the cache.
 * @flags: 0, or PCPU_NOWAIT: serve from the current CPU's array only; take
 *         no lock, run no constructor, fail rather than wait.
 *
 * Return: the object, or NULL with errno EAGAIN (PCPU_NOWAIT and the
 * array is empty), EDEADLK (called from a constructor of @cache, directly
 * or through other caches' constructors, or constructors nested more than
 * 16 deep), EINVAL (@cache NULL, unknown @flags), ENOMEM, or the errno the
 * constructor returned for the one object this allocation needed.
 *
 * This API is MT-safe; with PCPU_NOWAIT it is also async-signal-safe.
 */
PCPU_API void *pcpu_cache_alloc(struct pcpu_cache *cache, unsigned flags);

/**
 * pcpu_cache_free - give an object back, in its constructed state.
 * @cache: the cache it came from.
 * @obj:   the object, or NULL (nothing happens).
 *
 * With PCPU_CACHE_DEBUG, a pointer that is not an allocated object of
 * @cache (double free, foreign pointer) is reported with the caller's
 * address and the process aborts.
 *
 * This API is MT-safe.
 */
PCPU_API void pcpu_cache_free(struct pcpu_cache *cache, void *obj);

/**
 * pcpu_cache_alloc_bulk - take @n constructed objects, all or nothing.
 * @cache: the cache.
 * @flags: as for pcpu_cache_alloc().
 * @n:     how many.
 * @objs:  where to store them.
 *
 * Return: @n, or 0 with errno set as pcpu_cache_alloc() would (and no
 * object taken; objects constructed for the call stay constructed in the
 * cache).  0 with errno EINVAL for @objs NULL.
 *
 * This API is MT-safe.
 */
PCPU_API size_t pcpu_cache_alloc_bulk(struct pcpu_cache *cache,
				      unsigned flags, size_t n, void **objs);

/**
 * pcpu_cache_free_bulk - give @n objects back.
 *
 * This API is MT-safe.
 */
PCPU_API void pcpu_cache_free_bulk(struct pcpu_cache *cache, size_t n,
				   void **objs);

/**
 * pcpu_cache_free_rcu - give an object back after an RCU grace period.
 * @cache: the cache.
 * @obj:   the object, or NULL.
 *
 * The object goes back to the cache after every liburcu-bp read-side
 * critical section (urcu_bp_read_lock(), <urcu/urcu-bp.h>) that began
 * before the call has ended.  It must already be in its constructed state
 * as far as the cache is concerned (readers may still look at it until the
 * grace period ends).  Objects are batched per CPU and freed in bulk by a
 * thread of libpcpu's (not liburcu's call_rcu worker); a batch is sent when it holds 64 objects, when
 * a pcpu_cache_free_rcu() on its CPU finds it 10 ms old, or by
 * pcpu_cache_shrink(), pcpu_cache_deactivate() and pcpu_cache_destroy().
 * When a batch cannot be allocated the call waits for a grace period
 * itself.  Not from inside a read-side critical section.
 *
 * This API is MT-safe.
 */
PCPU_API void pcpu_cache_free_rcu(struct pcpu_cache *cache, void *obj);

/**
 * pcpu_cache_shrink - release what the cache holds and nobody uses.
 *
 * Sends the partly filled RCU batches on their way, drains every CPU's
 * array into the slabs, releases the slabs left with no object in use, and
 * runs their destructors (no lock held).
 *
 * Return: how many objects were destroyed.
 *
 * This API is MT-safe; it may run concurrently with allocations and frees.
 */
PCPU_API size_t pcpu_cache_shrink(struct pcpu_cache *cache);

/**
 * pcpu_cache_deactivate - stop caching: a dying cache.
 *
 * From now on a freed object goes straight back to its slab, and a slab
 * left with no object in use is released at once.  Every CPU sees the
 * change before the call returns (membarrier(2) where the kernel has it);
 * then the per-CPU arrays and the empty slabs are released.
 *
 * Return: 0, or -EINVAL for @cache NULL.
 *
 * This API is MT-safe.
 */
PCPU_API int pcpu_cache_deactivate(struct pcpu_cache *cache);

/**
 * pcpu_cache_destroy - destroy a cache.
 *
 * Waits for the cache's pending pcpu_cache_free_rcu() frees, then, if no
 * object is in use, destroys every object and frees the cache.  It may be
 * called from an RCU callback on liburcu's call_rcu worker.
 *
 * Return: 0; -EBUSY (objects in use: nothing released, the cache stays
 * usable); -EDEADLK (frees of @cache are pending and waiting for them
 * could never end: the caller is a destructor that libpcpu runs on its
 * RCU reclaim thread, or is inside an RCU read-side critical section;
 * nothing done, the cache stays usable); -EINVAL for @cache NULL.  With
 * PCPU_CACHE_DEBUG, objects in use are reported and the process aborts
 * instead of -EBUSY.
 *
 * Not concurrently with any other use of @cache.
 */
PCPU_API int pcpu_cache_destroy(struct pcpu_cache *cache);

/**
 * pcpu_cache_stats - read the cache's counts.
 *
 * Return: 0, or -EINVAL for @cache or @st NULL.  The counts are read
 * without stopping updates: each is exact when nothing runs concurrently.
 *
 * This API is MT-safe.
 */
/* In C++ the function's name hides the implicit constructors of the struct
 * of the same name (g++ -Wshadow); the struct is named with its tag. */
#if defined(__cplusplus) && defined(__GNUC__)
# pragma GCC diagnostic push
# pragma GCC diagnostic ignored "-Wshadow"
#endif
PCPU_API int pcpu_cache_stats(const struct pcpu_cache *cache,
			      struct pcpu_cache_stats *st);
#if defined(__cplusplus) && defined(__GNUC__)
# pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* PCPU_CACHE_H */
