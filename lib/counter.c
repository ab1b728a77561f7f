/* SPDX-License-Identifier: MIT */
/*
 * lib/counter.c - dual-mode counters: the slow paths and the readers.
 *
 * A counter's value is the sum of three parts:
 *
 *     value = own + shared + sum over slots s of slots[s]
 *
 * own     the owner's word (DUAL).  Only the owner thread writes it, with
 *         one non-atomic add instruction (pcpu__own_add()).  It stays part
 *         of the value forever, also after the counter is shared: the owner
 *         keeps its cheap path, and an owner update that is in flight while
 *         another thread upgrades the counter lands in a word the upgrade
 *         does not touch, so it cannot be lost.  EAGER counters have no
 *         owner and keep only their initial value here.
 * shared  an atomic word: slot values folded in once they reach
 *         +/-PCPU_COUNTER_BATCH (what makes read() O(1)), and the updates
 *         of non-owners while an upgrade cannot allocate.
 * slots   a per-CPU area of int64_t from pcpu_alloc(), zeroed for every
 *         slot; installed at init (EAGER) or by the first non-owner update
 *         or pcpu_counter_share() (DUAL).
 *
 * Upgrade.  A non-owner that finds no slots allocates an area (zeroed by
 * pcpu_alloc()) and installs it with a release CAS from NULL; the loser of
 * a race frees its own area and uses the winner's.  Adders load the
 * pointer with acquire, so the zeroing of every slot happens before any
 * add to a slot: an add can never be overwritten by the memset.  If the
 * allocation fails the update goes to `shared` with an atomic add, and the
 * next non-owner update tries to upgrade again.
 *
 * Folding.  A slot add returns the new slot value; when its magnitude
 * reaches the batch, the adder exchanges the slot with 0 and adds what it
 * took to `shared`.  Exchange (not a load and a store) because other
 * threads may add to the same slot at the same time: a migrated thread, or
 * a thread on another CPU mapped to the same slot.
 *
 * Invariants:
 *  1. Only the owner writes own (after init/set/reset, which the caller
 *     serializes with everything).
 *  2. slots goes from NULL to an area at most once per init, and back to
 *     NULL only in destroy.
 *  3. When no update is in flight, every slot's value v has
 *     |v| < PCPU_COUNTER_BATCH: the last write to a slot is either an add
 *     whose result was below the batch or a fold's exchange with 0.  Hence
 *     |sum - read| <= (PCPU_COUNTER_BATCH - 1) * nr_slots.
 *  4. Counters of an EAGER init_many group borrow a slice of the group
 *     leader's area (PCPU__OWNER_MEMBER); only the leader frees it.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

/* How many EAGER counters share one per-CPU area in init_many(). */
#define PCPU_GROUP_MAX	(unsigned)(PCPU_ALLOC_MAX / sizeof(int64_t))

static int is_eager(const struct pcpu_counter *c)
{
	return (c->pcpu__owner & PCPU__OWNER_EAGER) != 0;
}

static int64_t *load_slots(const struct pcpu_counter *c)
{
	/* Acquire: pairs with the release CAS in upgrade(); the slots'
	 * zeroing happens before the caller reads or writes them. */
	return __atomic_load_n(&c->pcpu__slots, __ATOMIC_ACQUIRE);
}

/* Install per-CPU slots in a DUAL counter; NULL if allocation failed. */
static int64_t *upgrade(struct pcpu_counter *c)
{
	int64_t *area, *expected = NULL;

	area = pcpu_alloc(sizeof(int64_t), sizeof(int64_t));
	if (!area)
		return NULL;
	/*
	 * Release: publishes pcpu_alloc()'s zeroing of every slot to the
	 * threads that acquire the pointer.  Acquire on failure: we use the
	 * winner's area, whose zeroing we must see in turn.
	 */
	if (__atomic_compare_exchange_n(&c->pcpu__slots, &expected, area, 0,
					__ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
		return area;
	pcpu_free(area);
	return expected;
}

static void slot_add(struct pcpu_counter *c, int64_t *slots, int64_t delta)
{
	int64_t *p = pcpu__slot_ptr(slots, pcpu__slot_of(pcpu__cpu()));
	/* Relaxed: see pcpu_counter_add(). */
	int64_t v = __atomic_add_fetch(p, delta, __ATOMIC_RELAXED);

	if (v >= PCPU_COUNTER_BATCH || v <= -PCPU_COUNTER_BATCH)
		pcpu__counter_fold(c, p);
}

PCPU_API void pcpu__counter_fold(struct pcpu_counter *c, int64_t *slot)
{
	/*
	 * Relaxed: the value moves between two words that readers load
	 * independently anyway; a sum concurrent with the fold may count it
	 * twice or not at all, which the contract allows for in-flight
	 * updates.  Atomicity alone makes sure nothing is lost.
	 */
	int64_t v = __atomic_exchange_n(slot, 0, __ATOMIC_RELAXED);

	if (v)
		__atomic_fetch_add(&c->pcpu__shared, v, __ATOMIC_RELAXED);
}

PCPU_API void pcpu__counter_add_slow(struct pcpu_counter *c, int64_t delta)
{
	int64_t *slots = load_slots(c);

	if (!slots && !is_eager(c))
		slots = upgrade(c);
	if (slots) {
		slot_add(c, slots, delta);
		return;
	}
	/* No memory for slots: stay exact on the shared word. */
	__atomic_fetch_add(&c->pcpu__shared, delta, __ATOMIC_RELAXED);
}

static void init_one(struct pcpu_counter *c, int64_t value, uintptr_t owner,
		     int64_t *slots)
{
	/* Plain stores: the counter is not yet visible to other threads;
	 * the caller publishes it with its own synchronization. */
	c->pcpu__own = value;
	c->pcpu__owner = owner;
	c->pcpu__slots = slots;
	c->pcpu__shared = 0;
}

PCPU_API int pcpu_counter_init_many(struct pcpu_counter *c, int64_t value,
				    unsigned flags, unsigned n)
{
	unsigned i, j, k;
	int64_t *area;

	if (!c || n == 0 || (flags & ~PCPU_COUNTER_EAGER))
		return -EINVAL;
	if (flags == PCPU_COUNTER_DUAL) {
		uintptr_t self = pcpu__tp();

		for (i = 0; i < n; i++)
			init_one(&c[i], value, self, NULL);
		return 0;
	}
	/* EAGER: one zeroed area per group of up to PCPU_GROUP_MAX. */
	for (i = 0; i < n; i += k) {
		k = n - i < PCPU_GROUP_MAX ? n - i : PCPU_GROUP_MAX;
		area = pcpu_alloc(k * sizeof(int64_t), sizeof(int64_t));
		if (!area)
			goto unwind;
		for (j = 0; j < k; j++)
			init_one(&c[i + j], value, PCPU__OWNER_EAGER |
				 (j ? PCPU__OWNER_MEMBER : 0), area + j);
	}
	return 0;
unwind:
	/* Free the groups made so far: their leaders are at multiples. */
	for (j = 0; j < i; j += PCPU_GROUP_MAX)
		pcpu_free(c[j].pcpu__slots);
	return -ENOMEM;
}

PCPU_API int pcpu_counter_init(struct pcpu_counter *c, int64_t value,
			       unsigned flags)
{
	return pcpu_counter_init_many(c, value, flags, 1);
}

PCPU_API void pcpu_counter_destroy(struct pcpu_counter *c)
{
	if (!c)
		return;
	if (!(c->pcpu__owner & PCPU__OWNER_MEMBER))
		pcpu_free(c->pcpu__slots);
	c->pcpu__slots = NULL;
}

PCPU_API void pcpu_counter_destroy_many(struct pcpu_counter *c, unsigned n)
{
	unsigned i;

	if (!c)
		return;
	for (i = 0; i < n; i++)
		pcpu_counter_destroy(&c[i]);
}

PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c)
{
	/* Relaxed: each word is read whole; their sum is approximate by
	 * contract (invariant 3 bounds the error). */
	return __atomic_load_n(&c->pcpu__own, __ATOMIC_RELAXED) +
	       __atomic_load_n(&c->pcpu__shared, __ATOMIC_RELAXED);
}

PCPU_API int64_t pcpu_counter_sum(const struct pcpu_counter *c)
{
	int64_t v = pcpu_counter_read(c), *slots = load_slots(c);
	unsigned s, nr;

	if (!slots)
		return v;
	nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	for (s = 0; s < nr; s++)
		v += __atomic_load_n((int64_t *)pcpu__slot_ptr(slots, s),
				     __ATOMIC_RELAXED);
	return v;
}

PCPU_API int pcpu_counter_compare(const struct pcpu_counter *c, int64_t rhs)
{
	__int128 d = (__int128)pcpu_counter_read(c) - rhs;
	__int128 bound = 0;

	if (load_slots(c))
		bound = (__int128)(PCPU_COUNTER_BATCH - 1) *
			__atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	if (d > bound)
		return 1;
	if (d < -bound)
		return -1;
	d = (__int128)pcpu_counter_sum(c) - rhs;
	return (d > 0) - (d < 0);
}

static void zero_slots(int64_t *slots)
{
	unsigned s, nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);

	for (s = 0; s < nr; s++)
		__atomic_store_n((int64_t *)pcpu__slot_ptr(slots, s), 0,
				 __ATOMIC_RELAXED);
}

PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t value)
{
	int64_t *slots = load_slots(c);

	/* Relaxed stores: set is serialized with every other access by the
	 * caller; atomics only keep concurrent *readers* (misuse) race-free. */
	if (slots)
		zero_slots(slots);
	__atomic_store_n(&c->pcpu__shared, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->pcpu__own, value, __ATOMIC_RELAXED);
}

PCPU_API void pcpu_counter_reset(struct pcpu_counter *c)
{
	pcpu_counter_set(c, 0);
	if (!is_eager(c))
		__atomic_store_n(&c->pcpu__owner, pcpu__tp(), __ATOMIC_RELAXED);
}

PCPU_API int pcpu_counter_share(struct pcpu_counter *c)
{
	if (!c)
		return -EINVAL;
	if (load_slots(c) || is_eager(c))
		return 0;
	return upgrade(c) ? 0 : -ENOMEM;
}

PCPU_API bool pcpu_counter_is_shared(const struct pcpu_counter *c)
{
	return load_slots(c) != NULL;
}
