/* SPDX-License-Identifier: MIT */
/*
 * lib/cache_debug.c - PCPU_CACHE_DEBUG: misuse of an object cache is
 * reported with the caller's address, then the process aborts.  Above the
 * slab layer (it reads slabs under cache->lock), below everything else.
 *
 * A debug cache's slabs carry one state byte per object (OBJ_FREE,
 * OBJ_IN_USE, OBJ_RCU).  A free checks that the pointer is an object of
 * one of the cache's slabs (a foreign pointer otherwise) and moves its
 * state from what the caller expects to the next one with one atomic
 * exchange, so that of two racing frees of one object exactly one sees
 * the expected state and the other reports a double free.
 *
 * Invariants:
 *  1. in_use[i] is OBJ_IN_USE exactly while object i is handed out,
 *     OBJ_RCU while it waits in an RCU batch, OBJ_FREE otherwise (raw,
 *     building, free in its slab or in a per-CPU array).
 *  2. The state byte is written only by the thread the object was handed
 *     to (allocation) or by the one freeing it (exchange).
 *
 * Fences: none.  The state byte travels with the object, whose hand-off
 * between threads (rseq array, lock word, cache->lock, the reclaimer's
 * queue lock) already orders it; the byte publishes nothing else, so its
 * accesses are relaxed.
 */
#include "cache.h"

#include <stdio.h>
#include <stdlib.h>

static void __attribute__((noreturn)) debug_report(struct pcpu_cache *cache,
						   const void *obj,
						   const void *caller,
						   const char *what)
{
	fprintf(stderr, "libpcpu: cache \"%s\": %s %p (caller %p)\n",
		cache->name, what, obj, caller);
	abort();
}

/* Is @obj an object of @cache?  Then its slab. */
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

void pcpu__debug_alloced(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_slab *slab = pcpu__slab_of(cache, obj);

	/* Relaxed: see the essay (invariant 2). */
	__atomic_store_n(&slab->in_use[pcpu__obj_index(slab, obj)], OBJ_IN_USE,
			 __ATOMIC_RELAXED);
}

void pcpu__debug_freeing(struct pcpu_cache *cache, void *obj,
			 const void *caller, uint8_t from, uint8_t to)
{
	struct pcpu_slab *slab = debug_slab(cache, obj);
	uint8_t old;

	if (!slab)
		debug_report(cache, obj, caller, "free of a foreign pointer");
	/* Exchange, relaxed: of two racing frees of one object, one sees
	 * @to; ordering comes from the hand-off (essay). */
	old = __atomic_exchange_n(&slab->in_use[pcpu__obj_index(slab, obj)],
				  to, __ATOMIC_RELAXED);
	if (old != from)
		debug_report(cache, obj, caller,
			     old == OBJ_RCU ? "free of an RCU-pending object" :
			     "double free of");
}

void pcpu__debug_report_leaks(struct pcpu_cache *cache, const void *caller)
{
	struct pcpu_slab *s;
	unsigned l, i;

	pthread_mutex_lock(&cache->lock);
	for (l = 0; l < SLAB_LISTS; l++)
		for (s = cache->lists[l]; s; s = s->next)
			for (i = 0; i < cache->nr_objs; i++)
				/* Relaxed: nobody frees concurrently with
				 * destroy (cache.h). */
				if (__atomic_load_n(&s->in_use[i],
						    __ATOMIC_RELAXED))
					fprintf(stderr, "libpcpu: cache \"%s\": "
						"object %p still in use at "
						"destroy\n", cache->name,
						s->objs + (size_t)i *
							  cache->stride);
	pthread_mutex_unlock(&cache->lock);
	fprintf(stderr, "libpcpu: cache \"%s\": destroyed with objects in "
		"use (caller %p)\n", cache->name, caller);
	abort();
}
