/* SPDX-License-Identifier: MIT */
/*
 * lib/cache.c - the object cache's API and its fork hooks: the top of the
 * cache, gluing together the slab layer (slab.c), the debug checks
 * (cache_debug.c), the per-CPU arrays (cache_cpu.c) and RCU frees
 * (cache_rcu.c).  lib/cache.h says where an object can be.
 *
 * An allocation pops from the current CPU's array (no lock with rseq);
 * when that is empty it refills from the slabs under cache->lock, taking
 * up to half an array of constructed objects, or, when the slabs have no
 * constructed object, constructing one raw object for itself (slab.c):
 * a failing constructor fails just that allocation.  A free pushes onto
 * the array, and spills half of it to the slabs when it is full.
 *
 * Locks.  cache->lock protects the slabs (slab.c); cache->drain_lock
 * serializes shrink, deactivate and destroy.  Neither is held while a
 * constructor or destructor runs.  An object moves between an array and
 * its slab only under cache->lock.  pcpu_caches_lock protects the list of
 * live caches (for the fork hooks).
 *
 * Invariants:
 *  1. in_use counts objects handed out and not yet back (RCU-pending ones
 *     included); destroy releases nothing while it is not 0.
 *  2. A dying cache's arrays stay stopped and its releasable slabs are
 *     released at once (slab.c, cache_cpu.c).
 *  3. A cache is on the live list from create to destroy; its locks exist
 *     exactly while it is there.
 *
 * Fences: dying is stored atomically under both locks and peeked at
 * relaxed by alloc_slow() (a hint: the slab layer rechecks it under
 * cache->lock); slab_allocs is a relaxed statistic.  The rest is in the
 * lower files.
 */
#include "cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fork handlers' pieces (cpu.c calls them). */
void pcpu__cache_fork_prepare(void);
void pcpu__cache_fork_parent(void);
void pcpu__cache_fork_child(void);

static pthread_mutex_t pcpu_caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_cache *pcpu_caches;	/* under pcpu_caches_lock */

PCPU_API struct pcpu_cache *pcpu_cache_create(const char *name, size_t size,
					      size_t align, pcpu_ctor_fn ctor,
					      pcpu_dtor_fn dtor, void *arg,
					      unsigned flags)
{
	struct pcpu_cache *cache;
	size_t stride, bytes;
	unsigned n;
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
	bytes = pcpu__pow2_at_least(pcpu__slab_header_bytes(PCPU_SLAB_MIN_OBJS,
							    debug) +
				    align + PCPU_SLAB_MIN_OBJS * stride);
	if (bytes < PCPU_SLAB_MIN)
		bytes = PCPU_SLAB_MIN;
	for (n = (unsigned)(bytes / stride); n; n--) {
		size_t hdr = pcpu__slab_header_bytes(n, debug);

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
	pcpu__cpu_arrays_init(cache);
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
	n = pcpu__slabs_take(cache, n, 1, batch);
	if (!n)
		return NULL;
	/* Keep batch[0]; the rest go to this CPU's array while it has room
	 * (the thread may have migrated: any CPU's array is fine). */
	for (i = 1; i < n; i++)
		if (pcpu__array_push(cache, batch[i]))
			break;
	if (i < n)
		pcpu__slabs_put(cache, n - i, batch + i);
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
			pcpu__debug_alloced(cache, objs[i]);
}

PCPU_API void *pcpu_cache_alloc(struct pcpu_cache *cache, unsigned flags)
{
	void *obj;

	if (!cache || (flags & ~PCPU_NOWAIT)) {
		errno = EINVAL;
		return NULL;
	}
	/* Even if the array could serve it: a constructor that allocates
	 * from its own cache, directly or through other caches, is a bug
	 * that would recurse without end on a cold cache. */
	if (pcpu__unlikely(pcpu__in_ctor_of(cache))) {
		errno = EDEADLK;
		return NULL;
	}
	if (pcpu__likely(pcpu__array_pop(cache, &obj) == 0)) {
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
	while (n < PCPU_MAG / 2 + 1 && pcpu__array_pop(cache, &batch[n]) == 0)
		n++;
	pcpu__slabs_put(cache, n, batch);
}

PCPU_API void pcpu_cache_free(struct pcpu_cache *cache, void *obj)
{
	if (!cache || !obj)
		return;
	if (cache->flags & PCPU_CACHE_DEBUG)
		pcpu__debug_freeing(cache, obj, __builtin_return_address(0),
				    OBJ_IN_USE, OBJ_FREE);
	pcpu_counter_dec(&cache->in_use);
	if (pcpu__likely(pcpu__array_push(cache, obj) == 0))
		return;
	free_slow(cache, obj);
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
	if (pcpu__in_ctor_of(cache)) {
		errno = EDEADLK;
		return 0;
	}
	while (got < n && pcpu__array_pop(cache, &objs[got]) == 0)
		got++;
	from_array = got;
	if (got < n) {
		int err = 0;

		if (flags & PCPU_NOWAIT)
			err = EAGAIN;
		else if (!pcpu__slabs_take(cache, n - got, n - got,
					   objs + got))
			err = errno;
		if (err) {
			/* All or nothing: put back what we took. */
			for (i = 0; i < got; i++)
				if (pcpu__array_push(cache, objs[i]))
					break;
			if (i < got)
				pcpu__slabs_put(cache, got - i, objs + i);
			errno = err;
			return 0;
		}
	}
	note_allocs(cache, objs, n, from_array);
	return n;
}

PCPU_API void pcpu_cache_free_bulk(struct pcpu_cache *cache, size_t n,
				   void **objs)
{
	if (!cache || !objs)
		return;
	pcpu__free_many(cache, n, objs, __builtin_return_address(0),
			OBJ_IN_USE);
}

PCPU_API size_t pcpu_cache_shrink(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;

	if (!cache)
		return 0;
	pcpu__rcu_send_partial(cache);
	pthread_mutex_lock(&cache->drain_lock);
	pcpu__arrays_drain(cache, &dead);
	if (!cache->dying)
		pcpu__arrays_start(cache);
	pcpu__slabs_detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	return pcpu__slabs_destroy(cache, dead);
}

PCPU_API int pcpu_cache_deactivate(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;

	if (!cache)
		return -EINVAL;
	pcpu__rcu_send_partial(cache);
	pthread_mutex_lock(&cache->drain_lock);
	pthread_mutex_lock(&cache->lock);
	/* From now on the slab layer releases releasable slabs (inv. 2).
	 * Atomic: alloc_slow() peeks at it without the lock. */
	__atomic_store_n(&cache->dying, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&cache->lock);
	pcpu__arrays_drain(cache, &dead);	/* and they stay stopped */
	pcpu__slabs_detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	pcpu__slabs_destroy(cache, dead);
	return 0;
}

PCPU_API int pcpu_cache_destroy(struct pcpu_cache *cache)
{
	struct pcpu_slab *dead = NULL;
	unsigned i;
	int err;

	if (!cache)
		return -EINVAL;
	/* -EDEADLK before anything changed: on the reclaimer, or inside a
	 * read-side critical section, with frees pending. */
	err = pcpu__rcu_flush(cache);
	if (err)
		return err;
	pthread_mutex_lock(&cache->drain_lock);
	if (pcpu_counter_sum(&cache->in_use) != 0) {
		if (cache->flags & PCPU_CACHE_DEBUG)
			pcpu__debug_report_leaks(cache,
						 __builtin_return_address(0));
		pthread_mutex_unlock(&cache->drain_lock);
		return -EBUSY;
	}
	pcpu__arrays_drain(cache, &dead);
	pcpu__slabs_detach_empty(cache, &dead);
	pthread_mutex_unlock(&cache->drain_lock);
	pcpu__slabs_destroy(cache, dead);
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
	size_t unbuilt, total;
	uint64_t fast;
	int64_t in_use;

	if (!cache || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	in_use = pcpu_counter_sum(&cache->in_use);
	pthread_mutex_lock(&c->lock);
	st->slabs = c->nr_slabs;
	/* Relaxed: a statistic (slab.c, invariant 3). */
	unbuilt = c->nr_raw + __atomic_load_n(&c->nr_building,
					      __ATOMIC_RELAXED);
	pthread_mutex_unlock(&c->lock);
	st->objs_per_slab = cache->nr_objs;
	st->in_use = in_use > 0 ? (size_t)in_use : 0;
	total = st->slabs * st->objs_per_slab;
	st->cached = total > st->in_use + unbuilt ?
		     total - st->in_use - unbuilt : 0;
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
 * Lock order: the reclaimer's pause first (cache_rcu.c: it waits for a
 * pass freeing objects, which takes cache locks and may run destructors
 * that create or destroy caches), then pcpu_caches_lock, then per cache
 * drain_lock, lock, and the leaf locks: the RCU batch locks and the lock
 * words (held only around plain array accesses).  Of liburcu's fork
 * hooks, the reclaimer's pause calls the urcu-bp pair only when the
 * application did not (cache_rcu.c): an application may call them around
 * fork() or not.
 */
void pcpu__cache_fork_prepare(void)
{
	struct pcpu_cache *c;

	pcpu__rcu_fork_prepare();
	pthread_mutex_lock(&pcpu_caches_lock);
	for (c = pcpu_caches; c; c = c->fork_next) {
		pthread_mutex_lock(&c->drain_lock);
		pthread_mutex_lock(&c->lock);
		pcpu__arrays_fork_lock(c);
	}
}

static void cache_fork_release(void)
{
	struct pcpu_cache *c;

	for (c = pcpu_caches; c; c = c->fork_next) {
		pcpu__arrays_fork_unlock(c);
		pthread_mutex_unlock(&c->lock);
		pthread_mutex_unlock(&c->drain_lock);
	}
	pthread_mutex_unlock(&pcpu_caches_lock);
}

void pcpu__cache_fork_parent(void)
{
	cache_fork_release();
	pcpu__rcu_fork_parent();
}

/* The child's only thread took every lock in the prepare handler: it
 * releases them (the owner unlocking its own mutexes). */
void pcpu__cache_fork_child(void)
{
	cache_fork_release();
	pcpu__rcu_fork_child();
}
