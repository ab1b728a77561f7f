/* SPDX-License-Identifier: MIT */
/*
 * lib/slab.c - the slab layer of the object cache: slabs, constructors,
 * destructors.  The bottom of the cache; it calls nothing above it.
 *
 * A slab is one mapping of slab_bytes (a power of two, so the slab of an
 * object is obj & ~(slab_bytes - 1)) holding a header and nr_objs objects
 * of `stride` bytes.  A new slab of a cache with a constructor holds only
 * raw objects: nothing is constructed when the slab is made.  An
 * allocation that finds no constructed object anywhere takes raw objects
 * (as many as it needs, one for a single allocation), drops the lock and
 * runs the constructor on them; an object whose constructor fails goes
 * back to the raw stack, to be tried again by a later allocation, and only
 * the allocation that needed it fails.  This is where Bonwick and Adams
 * (2001) put construction, between the slab layer and the per-CPU layer,
 * and for this reason: a constructor that fails now and then (memory
 * pressure) costs the allocations it failed, not whole slabs.  With one
 * constructor call in three failing, two allocations in three succeed.
 * A cache without a constructor has nothing to construct: its new slabs
 * start with every object free, and a refill takes a batch at once.
 *
 * Destructors run when a slab is released, with no lock held, on the
 * slab's free objects: a releasable slab has nothing out or building, so
 * its free objects are exactly its constructed ones.  Constructors and
 * destructors may therefore take any lock of their own, allocate from
 * other caches and call pcpu_alloc() (seed 000: a destructor that takes
 * locks during reclaim deadlocks if the allocator holds its own).
 *
 * Cycles.  A constructor that allocates from its own cache, directly or
 * through other caches' constructors (A -> B -> A), would recurse on a
 * cold cache until memory or the stack ran out.  Every thread keeps the
 * stack of caches whose constructors it is running (a small TLS array, so
 * that a signal handler on the thread can read it: the async-signal-safe
 * PCPU_NOWAIT path checks it too); an allocation from a cache on the
 * stack fails with EDEADLK, and so does a construction nested deeper
 * than PCPU_CTOR_DEPTH.
 *
 * Invariants (cache->lock protects every slab field, the lists, nr_slabs
 * and nr_raw):
 *  1. stack[0, nr_free) are the slab's free constructed objects and
 *     stack[nr_objs - nr_raw, nr_objs) its raw ones; nr_free + nr_raw <=
 *     nr_objs, the rest are building or above the slab layer.
 *  2. A slab is on the list its counts say: FREE if nr_free, else RAW if
 *     nr_raw, else FULL.  It is releasable when nr_free + nr_raw ==
 *     nr_objs; a dying cache releases such a slab at once.
 *  3. An object taken raw is counted in nr_building (atomic: read by
 *     pcpu_cache_stats()) until it is constructed or back on the raw
 *     stack; its slab is not releasable meanwhile.
 *  4. Every object outside the slab layer is constructed.
 *
 * No fences here: every shared field is under cache->lock, and the
 * statistics (ctor_calls, dtor_calls, nr_building) are relaxed atomics
 * that order nothing.
 */
#include "cache.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

__thread struct pcpu__ctor_stack pcpu__ctor_stack
	__attribute__((tls_model("initial-exec")));

size_t pcpu__slab_header_bytes(unsigned nr_objs, int debug)
{
	size_t h = sizeof(struct pcpu_slab) + nr_objs * sizeof(uint32_t);

	if (debug)
		h += nr_objs;
	return h;
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
	unsigned l = slab->nr_free ? SLAB_FREE :
		     slab->nr_raw ? SLAB_RAW : SLAB_FULL;

	slab->list = l;
	slab->prev = NULL;
	slab->next = cache->lists[l];
	if (slab->next)
		slab->next->prev = slab;
	cache->lists[l] = slab;
}

static int releasable(const struct pcpu_cache *cache,
		      const struct pcpu_slab *slab)
{
	return slab->nr_free + slab->nr_raw == cache->nr_objs;
}

static void *obj_at(const struct pcpu_cache *cache,
		    const struct pcpu_slab *slab, uint32_t i)
{
	return slab->objs + (size_t)i * cache->stride;
}

/*
 * Map a slab, with no lock held: every object raw (or free, without a
 * constructor).  NULL with errno ENOMEM.
 */
static struct pcpu_slab *slab_create(struct pcpu_cache *cache)
{
	size_t len = cache->slab_bytes;
	struct pcpu_slab *slab;
	char *base;
	unsigned i, n = cache->nr_objs;

	/* Aligned to its size: an object's slab is obj & ~(len - 1). */
	base = pcpu__map_aligned(len, len, 0);
	if (!base) {
		errno = ENOMEM;
		return NULL;
	}
	slab = (struct pcpu_slab *)base;
	slab->cache = cache;
	slab->objs = base + len - (size_t)n * cache->stride;
	if (cache->flags & PCPU_CACHE_DEBUG)
		slab->in_use = (uint8_t *)&slab->stack[n];
	if (cache->ctor) {
		/* Raw stack: object 0 is taken first. */
		slab->nr_raw = n;
		for (i = 0; i < n; i++)
			slab->stack[i] = i;
	} else {
		slab->nr_free = n;
		for (i = 0; i < n; i++)
			slab->stack[i] = n - 1 - i;
	}
	return slab;
}

/* Destructors on a released slab's free objects, then unmap it; how many
 * were destroyed. */
static unsigned slab_destroy(struct pcpu_cache *cache, struct pcpu_slab *slab)
{
	unsigned i, n = slab->nr_free;

	if (cache->dtor) {
		for (i = 0; i < n; i++)
			cache->dtor(obj_at(cache, slab, slab->stack[i]),
				    cache->arg);
		__atomic_fetch_add(&cache->dtor_calls, n, __ATOMIC_RELAXED);
	}
	pcpu__munmap(slab, cache->slab_bytes);
	return n;
}

/* A free constructed object, or NULL.  Under cache->lock. */
static void *take_free(struct pcpu_cache *cache)
{
	struct pcpu_slab *slab = cache->lists[SLAB_FREE];

	if (!slab)
		return NULL;
	list_del(cache, slab);
	slab->nr_free--;
	list_add(cache, slab);
	return obj_at(cache, slab, slab->stack[slab->nr_free]);
}

/* A raw object, now building, or NULL.  Under cache->lock; called only
 * when no slab has a free object (so every raw one is on SLAB_RAW). */
static void *take_raw(struct pcpu_cache *cache)
{
	struct pcpu_slab *slab = cache->lists[SLAB_RAW];
	uint32_t i;

	if (!slab)
		return NULL;
	list_del(cache, slab);
	i = slab->stack[cache->nr_objs - slab->nr_raw];
	slab->nr_raw--;
	list_add(cache, slab);
	cache->nr_raw--;
	/* Relaxed: a statistic (invariant 3). */
	__atomic_fetch_add(&cache->nr_building, 1, __ATOMIC_RELAXED);
	return obj_at(cache, slab, i);
}

/*
 * Back to its slab, constructed (@raw 0) or not (@raw 1).  Under
 * cache->lock.  Returns the slab if the cache is dying and the slab is
 * now releasable: unlinked, for the caller to destroy unlocked.
 */
static struct pcpu_slab *slab_put(struct pcpu_cache *cache, void *obj,
				  int raw)
{
	struct pcpu_slab *slab = pcpu__slab_of(cache, obj);

	list_del(cache, slab);
	if (raw) {
		slab->nr_raw++;
		slab->stack[cache->nr_objs - slab->nr_raw] =
			pcpu__obj_index(slab, obj);
		cache->nr_raw++;
	} else {
		slab->stack[slab->nr_free++] = pcpu__obj_index(slab, obj);
	}
	if (cache->dying && releasable(cache, slab)) {
		cache->nr_slabs--;
		cache->nr_raw -= slab->nr_raw;
		return slab;
	}
	list_add(cache, slab);
	return NULL;
}

static void put_locked(struct pcpu_cache *cache, size_t n, void **objs,
		       int raw, struct pcpu_slab **dead)
{
	struct pcpu_slab *slab;
	size_t i;

	for (i = 0; i < n; i++) {
		slab = slab_put(cache, objs[i], raw);
		if (slab) {
			slab->next = *dead;
			*dead = slab;
		}
	}
}

void pcpu__slabs_put_collect(struct pcpu_cache *cache, size_t n, void **objs,
			     struct pcpu_slab **dead)
{
	pthread_mutex_lock(&cache->lock);
	put_locked(cache, n, objs, 0, dead);
	pthread_mutex_unlock(&cache->lock);
}

size_t pcpu__slabs_destroy(struct pcpu_cache *cache, struct pcpu_slab *dead)
{
	struct pcpu_slab *slab;
	size_t n = 0;

	while (dead) {
		slab = dead;
		dead = slab->next;
		n += slab_destroy(cache, slab);
	}
	return n;
}

void pcpu__slabs_put(struct pcpu_cache *cache, size_t n, void **objs)
{
	struct pcpu_slab *dead = NULL;

	pcpu__slabs_put_collect(cache, n, objs, &dead);
	pcpu__slabs_destroy(cache, dead);
}

/* Unlink every releasable slab onto *@dead.  Under cache->lock. */
static void detach_empty_locked(struct pcpu_cache *cache,
				struct pcpu_slab **dead)
{
	struct pcpu_slab *slab, *next;
	unsigned l;

	for (l = SLAB_FREE; l <= SLAB_RAW; l++)
		for (slab = cache->lists[l]; slab; slab = next) {
			next = slab->next;
			if (!releasable(cache, slab))
				continue;
			list_del(cache, slab);
			cache->nr_slabs--;
			cache->nr_raw -= slab->nr_raw;
			slab->next = *dead;
			*dead = slab;
		}
}

void pcpu__slabs_detach_empty(struct pcpu_cache *cache,
			      struct pcpu_slab **dead)
{
	pthread_mutex_lock(&cache->lock);
	detach_empty_locked(cache, dead);
	pthread_mutex_unlock(&cache->lock);
}

/* Enter a constructor of @cache: 0, or -1 when nested too deep. */
static int ctor_push(const struct pcpu_cache *cache)
{
	unsigned d = pcpu__ctor_stack.depth;

	if (d == PCPU_CTOR_DEPTH)
		return -1;
	pcpu__ctor_stack.c[d] = cache;
	/* The entry before the depth that covers it, as a signal handler
	 * interrupting us sees them (pcpu__in_ctor_of()). */
	__atomic_signal_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&pcpu__ctor_stack.depth, d + 1, __ATOMIC_RELAXED);
	return 0;
}

static void ctor_pop(void)
{
	__atomic_store_n(&pcpu__ctor_stack.depth, pcpu__ctor_stack.depth - 1,
			 __ATOMIC_RELAXED);
}

/*
 * Construct objs[0, n), no lock held, in order, stopping at the first
 * failure.  Returns how many were constructed; if fewer than @n, *@err is
 * the errno of the failure (objs[returned] is the object that failed).
 */
static size_t construct(struct pcpu_cache *cache, void **objs, size_t n,
			int *err)
{
	size_t i;
	int r;

	if (!cache->ctor || n == 0)
		return n;
	if (ctor_push(cache)) {
		*err = EDEADLK;
		return 0;
	}
	for (i = 0; i < n; i++) {
		r = cache->ctor(objs[i], cache->arg);
		__atomic_fetch_add(&cache->ctor_calls, 1, __ATOMIC_RELAXED);
		if (r) {
			*err = r < 0 ? -r : EINVAL;
			break;
		}
	}
	ctor_pop();
	return i;
}

size_t pcpu__slabs_take(struct pcpu_cache *cache, size_t n, size_t min,
			void **objs)
{
	struct pcpu_slab *slab, *dead = NULL;
	size_t got = 0, nb = 0, built;
	void *o;
	int err = 0;

	pthread_mutex_lock(&cache->lock);
	while (got < n && (o = take_free(cache)))
		objs[got++] = o;
	/* Raw objects for what is still missing of @min, making slabs (no
	 * lock held: mmap) until there are enough.  The objects taken so far
	 * count as out, so their slabs stay. */
	while (got + nb < min) {
		o = take_raw(cache);
		if (o) {
			objs[got + nb++] = o;
			continue;
		}
		pthread_mutex_unlock(&cache->lock);
		slab = slab_create(cache);
		pthread_mutex_lock(&cache->lock);
		if (!slab) {
			err = ENOMEM;
			break;
		}
		cache->nr_slabs++;
		cache->nr_raw += slab->nr_raw;
		list_add(cache, slab);
		/* Without a constructor the new slab's objects are free. */
		if (!nb)
			while (got < n && (o = take_free(cache)))
				objs[got++] = o;
	}
	/* A slab made while frees refilled the others may be unused; a
	 * dying cache keeps no releasable slab (invariant 2). */
	if (cache->dying)
		detach_empty_locked(cache, &dead);
	pthread_mutex_unlock(&cache->lock);
	pcpu__slabs_destroy(cache, dead);
	dead = NULL;

	built = err ? 0 : construct(cache, objs + got, nb, &err);
	if (!err) {
		if (nb)
			__atomic_fetch_sub(&cache->nr_building, nb,
					   __ATOMIC_RELAXED);
		return got + nb;
	}
	/* Nothing taken: the constructed ones stay constructed (free), the
	 * rest go back raw. */
	pthread_mutex_lock(&cache->lock);
	put_locked(cache, got + built, objs, 0, &dead);
	put_locked(cache, nb - built, objs + got + built, 1, &dead);
	pthread_mutex_unlock(&cache->lock);
	if (nb)
		__atomic_fetch_sub(&cache->nr_building, nb, __ATOMIC_RELAXED);
	pcpu__slabs_destroy(cache, dead);
	errno = err;
	return 0;
}
