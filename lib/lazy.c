/* SPDX-License-Identifier: MIT */
/*
 * lib/lazy.c - lazy areas: clean areas, per-slot caches of them, touch
 * maps, and the per-CPU area operations (pcpu_area_*).
 *
 * A lazy area is a per-CPU area that nobody initialized: every copy reads
 * as zero because it is zero, either fresh from the kernel or cleaned by
 * whoever used the area before.  It costs O(1) to hand out at any slot
 * count.  The slots that update it are recorded in its *touch map*, in
 * the meta block of its first granule (alloc.c): a mask word per group of
 * 64 slots and a summary word whose bit b stands for the groups
 * [b * per_bit, (b + 1) * per_bit).  Sum, zero, for_each and free walk the
 * map: O(touched slots), never O(nr_slots).  LAZY counters and DUAL
 * counters' upgrades (counter.c) are lazy areas with a counter layout;
 * pcpu_alloc_lazy() areas are lazy areas of data.
 *
 * Clean-area caches.  Lazy areas of up to PCPU_LAZY_MAXG granules come in
 * size classes (powers of two).  Every slot has a small stack of clean
 * areas per class, on its own cache lines, guarded by a lock word that is
 * only ever *tried* (an atomic exchange): allocation pops from the
 * caller's slot, free pushes there, and the allocator mutex is taken only
 * to refill or drain a stack in batches of PCPU_LAZY_BATCH.  A thread that
 * finds the word taken (another thread of its slot, or its own code that
 * a signal handler interrupted) goes to the mutex instead, so nothing
 * here waits on another thread's progress but the mutex.  This is the
 * scalable per-CPU allocator for the non-eager paths: two threads on two
 * slots share no line; pcpu_alloc() keeps the kernel's global mutex.
 *
 * Data areas.  For each granule g of a data area and each slot s there is
 * a touch byte in slot s's unit (alloc.c): pcpu_area_add()'s fast path
 * adds to slot s's copy only when it is set, so the first update of a
 * granule from a slot comes here, marks the slot in the area's map, then
 * sets the byte.  Eager areas have every byte set.  Updates from a thread
 * that may not write slots (rseq method, but no rseq area for the thread)
 * go to an overflow word in the granule's meta block (PCPU__META_FOLD),
 * which pcpu_area_sum() counts.
 *
 * Invariants:
 *  1. An area in a slot's stack, or handed out by pcpu__lazy_alloc(), is
 *     clean: copies, touch bytes, touch map and meta words zero but
 *     PCPU__META_INFO, which names its class.
 *  2. A slot's stack is changed only by the holder of its lock word;
 *     entries are written before the count that publishes them.
 *  3. A slot is in an area's map before any copy of that slot is written
 *     through the area operations or the counters (counter.c), and a map
 *     is cleared only when every copy it names is zero again.
 *  4. The lock order is: slot lock words, then the allocator mutex.
 *     pcpu_set_nr_slots() takes every slot word (they are held only
 *     briefly and their holders wait for nothing but the mutex), then the
 *     mutex.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GRAN		PCPU__GRAN
#define NCLASS		7			/* 1, 2, 4 ... 64 granules */
#define PCPU_LAZY_MAXG	(1u << (NCLASS - 1))
#define CAP		15
#define PCPU_LAZY_BATCH	7

struct pcpu_lazy_cpu {
	uint32_t lock;			/* 0 free, 1 held: tried, never waited */
	uint8_t n[NCLASS];		/* entries in each stack */
	void *stack[NCLASS][CAP];	/* clean areas, by class */
} __attribute__((aligned(64)));

/* One entry per possible slot, mapped once and never unmapped, so that a
 * thread that loaded the pointer never sees it go away. */
static struct pcpu_lazy_cpu *lazy_cpus;
/* Highest slot whose entry was used, plus one: pcpu_set_nr_slots() and
 * fork visit only those.  Written once per slot (fetch-max), ever. */
static unsigned lazy_hi;
/* Clean areas that an update could not give back without waiting
 * (invariant 5): a stack linked through PCPU__META_FOLD.  Pushed by CAS
 * from any context, emptied whole (one exchange) under the mutex, so no
 * pop can suffer ABA.  Written only when an upgrade loses its race to a
 * full stack: not on any path whose rate grows with the work. */
static void *lazy_orphans;

/* --- the per-slot stacks ------------------------------------------------ */

static struct pcpu_lazy_cpu *lazy_cpus_get(void)
{
	/* Acquire: pairs with the release CAS below; the mapping is zero. */
	struct pcpu_lazy_cpu *p = __atomic_load_n(&lazy_cpus, __ATOMIC_ACQUIRE);
	struct pcpu_lazy_cpu *expected = NULL;

	if (pcpu__likely(p != NULL))
		return p;
	/* A raw mapping, never unmapped: part of the library's static state
	 * (not counted by the fault-injection build). */
	p = mmap(NULL, sizeof(*p) * PCPU_MAX_SLOTS, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Release: publishes the (zero) mapping; the loser unmaps its own. */
	if (!__atomic_compare_exchange_n(&lazy_cpus, &expected, p, 0,
					 __ATOMIC_RELEASE, __ATOMIC_ACQUIRE)) {
		munmap(p, sizeof(*p) * PCPU_MAX_SLOTS);
		p = expected;
	}
	return p;
}

/*
 * The slot entry this thread holds, for the fork child: a signal handler
 * that interrupted this thread in the middle of a pop or push, and forked,
 * must find that entry still locked in the child (the interrupted code may
 * resume there when the handler returns, and the stack may be half
 * written: the entries and the count are plain stores).  Every other
 * entry's holder is gone in the child and its lock is reset.  Set after
 * the lock is taken, cleared after it is released: a fork in either gap
 * resets a lock whose stack is whole, or skips a lock that is free.  Only
 * this thread and its handlers access it; the signal fences keep the
 * compiler from moving the stack's stores across it.
 */
static __thread struct pcpu_lazy_cpu *volatile slot_held
	__attribute__((tls_model("initial-exec")));

/* The caller's slot's entry, locked; NULL if busy or unavailable. */
static struct pcpu_lazy_cpu *slot_lock(void)
{
	struct pcpu_lazy_cpu *cpus = lazy_cpus_get();
	unsigned s = pcpu__slot_of(pcpu__index()), hi;
	struct pcpu_lazy_cpu *pc;

	if (!cpus)
		return NULL;
	/* Relaxed: a hint for the visitors; they lock every entry below it
	 * and an entry above it has never held anything. */
	hi = __atomic_load_n(&lazy_hi, __ATOMIC_RELAXED);
	while (s >= hi &&
	       !__atomic_compare_exchange_n(&lazy_hi, &hi, s + 1, 1,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	pc = &cpus[s];
	/* Acquire: the stack as its previous holder left it. */
	if (__atomic_exchange_n(&pc->lock, 1, __ATOMIC_ACQUIRE))
		return NULL;
	/* Before any change to the stack, as seen by a handler of this
	 * thread (see slot_held). */
	slot_held = pc;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return pc;
}

static void slot_unlock(struct pcpu_lazy_cpu *pc)
{
	/* Release: our stack changes before the next holder's acquire. */
	__atomic_store_n(&pc->lock, 0, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	slot_held = NULL;
}

/* The class of @n granules aligned to @a granules, or -1 (no cache). */
static int class_of(unsigned n, unsigned a)
{
	unsigned g = n > a ? n : a;
	int c = 0;

	/* Classes are aligned to their size up to 64 bytes (class_align()):
	 * a larger alignment goes to the chunks, which honour any. */
	if (g > PCPU_LAZY_MAXG || a > 8)
		return -1;
	while ((1u << c) < g)
		c++;
	return c;
}

static unsigned class_align(int c)
{
	return (1u << c) < 8 ? 1u << c : 8;	/* granules: at most 64 B */
}

/* Under the mutex: a clean area of class @c (or @n/@a granules when
 * @c < 0), its info word set. */
static void *chunk_get_locked(int c, unsigned n, unsigned a, uint64_t info)
{
	void *area;

	if (c >= 0) {
		n = 1u << c;
		a = class_align(c);
	}
	area = pcpu__alloc_locked(n, a, 0);
	if (area)
		/* Relaxed: the area is not yet visible to any other thread;
		 * its user publishes it. */
		__atomic_store_n(&pcpu__meta(area)[PCPU__META_INFO],
				 info | (c >= 0 ? INFO_CLASS(c) : 0) |
				 INFO_GRAN(n), __ATOMIC_RELAXED);
	return area;
}

/* Under the mutex: a clean area back to its chunk (meta all zero). */
static void chunk_put_locked(void *area)
{
	/* Relaxed: nobody else holds the area. */
	__atomic_store_n(&pcpu__meta(area)[PCPU__META_INFO], 0,
			 __ATOMIC_RELAXED);
	pcpu__free_locked(area, 0);
}

/* Invariant 5: an update's hold of the mutex, with every signal blocked.
 * pthread_sigmask() is async-signal-safe; the update may itself run in a
 * handler. */
static void update_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void update_unblock(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Invariant 5: a clean area onto the orphan list, without waiting. */
static void orphan_push(void *area)
{
	uint64_t *link = &pcpu__meta(area)[PCPU__META_FOLD];
	/* Relaxed: the head is only compared; the release CAS below
	 * publishes the link to the emptier's acquire exchange. */
	void *head = __atomic_load_n(&lazy_orphans, __ATOMIC_RELAXED);

	do {
		/* Relaxed: the area is ours until the CAS publishes it. */
		__atomic_store_n(link, (uint64_t)(uintptr_t)head,
				 __ATOMIC_RELAXED);
	} while (!__atomic_compare_exchange_n(&lazy_orphans, &head, area, 1,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
}

/* Under the mutex: every orphan back to its chunk, its link zeroed
 * (invariant 1: a clean area's meta words are zero). */
static void orphans_put_locked(void)
{
	/* Relaxed test first: the list is almost always empty.  Acquire
	 * exchange: pairs with orphan_push()'s release CAS (the links). */
	void *area = __atomic_load_n(&lazy_orphans, __ATOMIC_RELAXED) ?
		__atomic_exchange_n(&lazy_orphans, NULL, __ATOMIC_ACQUIRE) :
		NULL;

	while (area) {
		uint64_t *link = &pcpu__meta(area)[PCPU__META_FOLD];
		void *next = (void *)(uintptr_t)__atomic_load_n(link,
							       __ATOMIC_RELAXED);

		/* Relaxed: the area is ours again (the exchange above). */
		__atomic_store_n(link, 0, __ATOMIC_RELAXED);
		chunk_put_locked(area);
		area = next;
	}
}

void *pcpu__lazy_alloc(size_t size, size_t align, uint64_t info, int wait)
{
	unsigned n = (unsigned)((size + GRAN - 1) / GRAN);
	unsigned a = align > GRAN ? (unsigned)(align / GRAN) : 1;
	int c = class_of(n, a), i;
	struct pcpu_lazy_cpu *pc = NULL;
	void *area = NULL, *extra[PCPU_LAZY_BATCH];
	sigset_t omask;

	pcpu__init();
	if (c >= 0 && (pc = slot_lock()) != NULL) {
		if (pc->n[c]) {
			area = pc->stack[c][--pc->n[c]];
			slot_unlock(pc);
			goto got;
		}
	}
	/* A miss: one area for us and a batch for the stack, if we hold it.
	 * An update holds the mutex with signals blocked (invariant 5). */
	if (!wait)
		update_block(&omask);
	if (pcpu__alloc_lock(wait)) {
		if (!wait)
			update_unblock(&omask);
		if (pc)
			slot_unlock(pc);
		errno = EAGAIN;
		return NULL;
	}
	orphans_put_locked();
	area = chunk_get_locked(c, n, a, info);
	for (i = 0; area && pc && i < PCPU_LAZY_BATCH; i++) {
		extra[i] = chunk_get_locked(c, n, a, info);
		if (!extra[i])
			break;
	}
	pcpu__alloc_unlock();
	if (!wait)
		update_unblock(&omask);
	if (pc) {
		/* Entries first, then the count (invariant 2). */
		while (area && i > 0 && pc->n[c] < CAP)
			pc->stack[c][pc->n[c]++] = extra[--i];
		slot_unlock(pc);
		if (area && i > 0 && pcpu__alloc_lock(1) == 0) {
			/* Full after all (cannot be: we found it empty). */
			while (i > 0)
				chunk_put_locked(extra[--i]);
			pcpu__alloc_unlock();
		}
	}
	if (!area) {
		errno = ENOMEM;
		return NULL;
	}
	return area;
got:
	/* Relaxed: the area is ours; its class stays, its flags are set
	 * for this use. */
	{
		uint64_t *iw = &pcpu__meta(area)[PCPU__META_INFO];
		uint64_t old = __atomic_load_n(iw, __ATOMIC_RELAXED);

		__atomic_store_n(iw, (old & (INFO_CLASS(0xfe) | INFO_GRAN(0xffff))) |
				 info, __ATOMIC_RELAXED);
	}
	return area;
}

void pcpu__lazy_release(void *area, int wait)
{
	/* Relaxed: the caller holds the area. */
	uint64_t info = __atomic_load_n(&pcpu__meta(area)[PCPU__META_INFO],
					__ATOMIC_RELAXED);
	int c = INFO_CLASS_OF(info), i;
	struct pcpu_lazy_cpu *pc = c >= 0 ? slot_lock() : NULL;
	void *spill[PCPU_LAZY_BATCH];

	if (pc) {
		if (pc->n[c] < CAP) {
			pc->stack[c][pc->n[c]++] = area;
			slot_unlock(pc);
			return;
		}
		/* Full: half of it goes back to the chunks. */
		for (i = 0; i < PCPU_LAZY_BATCH; i++)
			spill[i] = pc->stack[c][--pc->n[c]];
		pc->stack[c][pc->n[c]++] = area;
		slot_unlock(pc);
		if (!wait) {
			for (i = 0; i < PCPU_LAZY_BATCH; i++)
				orphan_push(spill[i]);
			return;
		}
		if (pcpu__alloc_lock(1))
			return;		/* see below */
		orphans_put_locked();
		for (i = 0; i < PCPU_LAZY_BATCH; i++)
			chunk_put_locked(spill[i]);
		pcpu__alloc_unlock();
		return;
	}
	if (!wait) {
		orphan_push(area);
		return;
	}
	/* A signal handler that interrupted this thread's own hold of the
	 * mutex (which the contract forbids for the freeing functions)
	 * leaks the area rather than waiting for itself. */
	if (pcpu__alloc_lock(1))
		return;
	chunk_put_locked(area);
	pcpu__alloc_unlock();
}

/* Lock every used slot entry (spinning: holders are brief). */
static unsigned lock_all_slots(struct pcpu_lazy_cpu *cpus)
{
	/* Acquire: entries below the hint were published before it. */
	unsigned hi = __atomic_load_n(&lazy_hi, __ATOMIC_ACQUIRE), s;

	for (s = 0; cpus && s < hi; s++)
		while (__atomic_exchange_n(&cpus[s].lock, 1, __ATOMIC_ACQUIRE))
			sched_yield();
	return cpus ? hi : 0;
}

PCPU_API int pcpu_set_nr_slots(unsigned n)
{
	struct pcpu_lazy_cpu *cpus;
	unsigned long cached = 0;
	unsigned hi, s;
	int c, r;

	if (n == 0 || n > PCPU_MAX_SLOTS)
		return -EINVAL;
	pcpu__init();
	/* Acquire: as in lazy_cpus_get(). */
	cpus = __atomic_load_n(&lazy_cpus, __ATOMIC_ACQUIRE);
	hi = lock_all_slots(cpus);
	if (pcpu__alloc_lock(1)) {
		for (s = 0; s < hi; s++)
			slot_unlock(&cpus[s]);
		return -EBUSY;		/* from a handler of our own holder */
	}
	orphans_put_locked();
	for (s = 0; s < hi; s++)
		for (c = 0; c < NCLASS; c++)
			cached += cpus[s].n[c];
	r = -EBUSY;
	if (pcpu__alloc_live_locked() == cached) {
		/* Nothing but clean cached areas: give them back, then
		 * change the count (which releases every chunk). */
		for (s = 0; s < hi; s++)
			for (c = 0; c < NCLASS; c++)
				while (cpus[s].n[c])
					chunk_put_locked(cpus[s].stack[c][--cpus[s].n[c]]);
		r = pcpu__alloc_set_nr_slots_locked(n);
	}
	pcpu__alloc_unlock();
	for (s = 0; s < hi; s++)
		slot_unlock(&cpus[s]);
	return r;
}

/* fork: the child has one thread, so no slot word is held for real but
 * the one its own interrupted code holds (slot_held); a stack a vanished
 * thread was changing loses at most that one area. */
void pcpu__lazy_fork_child(void)
{
	struct pcpu_lazy_cpu *cpus = __atomic_load_n(&lazy_cpus,
						     __ATOMIC_RELAXED);
	unsigned hi = __atomic_load_n(&lazy_hi, __ATOMIC_RELAXED), s;

	for (s = 0; cpus && s < hi; s++)
		if (&cpus[s] != slot_held)
			__atomic_store_n(&cpus[s].lock, 0, __ATOMIC_RELAXED);
}

/* --- touch maps --------------------------------------------------------- */

void pcpu__touch_mark(uint64_t *meta, unsigned slot)
{
	unsigned grp = slot / 64, ng = pcpu__nr_groups();
	unsigned per_bit = (ng + 63) / 64;
	uint64_t *m = pcpu__meta_mask(meta, grp), *sm = &meta[PCPU__META_SUMMARY];
	uint64_t bit = 1ull << (slot % 64), sbit = 1ull << (grp / per_bit);

	/*
	 * Relaxed RMWs, before the slot's first store (invariant 3): a reader
	 * that misses the bit skips the slot, which is right while this
	 * update is in flight; a reader that happens after the update sees
	 * both.  Test first: written once per slot, not once per update.
	 */
	if (!(__atomic_load_n(m, __ATOMIC_RELAXED) & bit))
		__atomic_fetch_or(m, bit, __ATOMIC_RELAXED);
	if (!(__atomic_load_n(sm, __ATOMIC_RELAXED) & sbit))
		__atomic_fetch_or(sm, sbit, __ATOMIC_RELAXED);
}

void pcpu__touch_begin(struct pcpu__touch_iter *it, const uint64_t *meta)
{
	it->meta = meta;
	it->ng = pcpu__nr_groups();
	it->per_bit = (it->ng + 63) / 64;
	/* Relaxed, map words and (in the callers) copies alike: each word is
	 * read whole, and what a concurrent first touch adds is an update
	 * in flight (invariant 3). */
	it->sum = __atomic_load_n(&meta[PCPU__META_SUMMARY], __ATOMIC_RELAXED);
	it->grp = it->end = 0;
	it->m = 0;
}

int pcpu__touch_next(struct pcpu__touch_iter *it)
{
	for (;;) {
		if (it->m) {
			int s = (int)(it->grp * 64 +
				      (unsigned)__builtin_ctzll(it->m));

			it->m &= it->m - 1;
			return s;
		}
		if (it->grp + 1 < it->end) {
			it->grp++;
		} else {
			unsigned b;

			if (!it->sum)
				return -1;
			b = (unsigned)__builtin_ctzll(it->sum);
			it->sum &= it->sum - 1;
			it->grp = b * it->per_bit;
			it->end = it->grp + it->per_bit < it->ng ?
				  it->grp + it->per_bit : it->ng;
		}
		it->m = __atomic_load_n(pcpu__meta_mask(it->meta, it->grp),
					__ATOMIC_RELAXED);
	}
}

void pcpu__touch_clear(uint64_t *meta)
{
	unsigned g, ng = pcpu__nr_groups(), per_bit = (ng + 63) / 64;
	/* Relaxed: the callers are serialized with every update. */
	uint64_t sum = __atomic_load_n(&meta[PCPU__META_SUMMARY],
				       __ATOMIC_RELAXED);

	while (sum) {
		unsigned b = (unsigned)__builtin_ctzll(sum);

		sum &= sum - 1;
		for (g = b * per_bit; g < (b + 1) * per_bit && g < ng; g++)
			__atomic_store_n(pcpu__meta_mask(meta, g), 0,
					 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&meta[PCPU__META_SUMMARY], 0, __ATOMIC_RELAXED);
}

/* --- data areas --------------------------------------------------------- */

static int valid_args(size_t size, size_t align)
{
	return size != 0 && size <= PCPU_ALLOC_MAX && align <= PCPU_ALLOC_MAX &&
	       !(align & (align - 1));
}

PCPU_API void *pcpu_alloc_lazy(size_t size, size_t align)
{
	unsigned n, g;
	uint64_t *meta0;
	char *area;

	if (!valid_args(size, align)) {
		errno = EINVAL;
		return NULL;
	}
	area = pcpu__lazy_alloc(size, align ? align : GRAN, INFO_LAZY, 1);
	if (!area)
		return NULL;
	/* Every granule's info word says how far back the first one is, so
	 * that pcpu_area_add() and pcpu_area_sum() find the map from any
	 * word.  Relaxed: the area is not yet visible to other threads. */
	meta0 = pcpu__meta(area);
	n = INFO_GRAN_OF(__atomic_load_n(&meta0[PCPU__META_INFO],
					 __ATOMIC_RELAXED));
	for (g = 1; g < n; g++)
		__atomic_store_n(&pcpu__meta(area + (size_t)g * GRAN)[PCPU__META_INFO],
				 INFO_LAZY | INFO_BACK(g), __ATOMIC_RELAXED);
	return area;
}

/* The info word of the area @word lies in (a lazy area's first granule
 * says; an eager area is taken to start at @word), and the meta block of
 * that first granule, and (if @start) where the area starts. */
static uint64_t area_of_word_at(const void *word, uint64_t **meta0,
				char **start)
{
	uint64_t *m = pcpu__meta(word);
	/* Relaxed: written before the area was handed out, which the
	 * caller's use of the area happens after. */
	uint64_t info = __atomic_load_n(&m[PCPU__META_INFO], __ATOMIC_RELAXED);
	const char *first = word;

	if ((info & INFO_LAZY) && INFO_BACK_OF(info)) {
		first -= (size_t)INFO_BACK_OF(info) * GRAN;
		m = pcpu__meta(first);
		info = __atomic_load_n(&m[PCPU__META_INFO], __ATOMIC_RELAXED);
	}
	*meta0 = m;
	if (start)
		*start = (char *)first;
	return info;
}

static uint64_t area_of_word(const void *word, uint64_t **meta0)
{
	return area_of_word_at(word, meta0, NULL);
}

static uint8_t *touch_byte(void *word, unsigned slot)
{
	return (uint8_t *)pcpu__area_touch_byte(word) +
	       ((size_t)slot << PCPU__UNIT_SHIFT);
}

PCPU_API void pcpu__area_add_slow(void *word, int64_t delta)
{
	unsigned method = __atomic_load_n(&pcpu__rt.method, __ATOMIC_RELAXED);
	uint64_t *meta0, info = area_of_word(word, &meta0);
	unsigned slot;
	int saved = errno;

	if (method != PCPU__METHOD_ATOMIC && pcpu__rseq_ready()) {
		/* May not write slots: the granule's overflow word. */
		__atomic_fetch_add((int64_t *)&pcpu__meta(word)[PCPU__META_FOLD],
				   delta, __ATOMIC_RELAXED);
		errno = saved;
		return;
	}
	errno = saved;
	for (;;) {
		slot = pcpu__slot_of(pcpu__index());
		if ((info & INFO_LAZY) &&
		    !__atomic_load_n(touch_byte(word, slot), __ATOMIC_RELAXED)) {
			/* First update of this granule from this slot: the map
			 * first (invariant 3), then the byte.  Relaxed: the
			 * byte is idempotent, and the map is what readers
			 * trust. */
			pcpu__touch_mark(meta0, slot);
			__atomic_store_n(touch_byte(word, slot), 1,
					 __ATOMIC_RELAXED);
		}
#ifdef PCPU__HAVE_RSEQ_ASM
		if (method != PCPU__METHOD_ATOMIC) {
			if (pcpu__rseq_area_add(word, pcpu__area_touch_byte(word),
						delta, pcpu__rt.rseq_off,
						pcpu__rt.rseq_idx,
						pcpu__rt.nr_slots))
				return;
			/* Aborted, or migrated to a slot not yet touched:
			 * start over (the index check cannot fail under the
			 * rseq method: see cpu.c).  With no area registered
			 * any more (a signal handler during the thread's
			 * exit) no sequence can commit: the overflow word. */
			if (pcpu__rseq_cpu_id() < 0) {
				__atomic_fetch_add((int64_t *)&pcpu__meta(word)
						   [PCPU__META_FOLD], delta,
						   __ATOMIC_RELAXED);
				return;
			}
			continue;
		}
#endif
		/* Relaxed: the copy carries nothing but its own value. */
		__atomic_fetch_add((int64_t *)pcpu__slot_ptr(word, slot), delta,
				   __ATOMIC_RELAXED);
		return;
	}
}

/* Call @fn on each copy to visit: every slot (eager), touched (lazy). */
static int visit_area(void *area, uint64_t info, const uint64_t *meta0,
		      int (*fn)(void *, unsigned, void *), void *arg)
{
	struct pcpu__touch_iter it;
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED), s;
	int r, t;

	if (!(info & INFO_LAZY)) {
		for (s = 0; s < nr; s++)
			if ((r = fn(pcpu__slot_ptr(area, s), s, arg)) != 0)
				return r;
		return 0;
	}
	pcpu__touch_begin(&it, meta0);
	while ((t = pcpu__touch_next(&it)) >= 0)
		if ((r = fn(pcpu__slot_ptr(area, (unsigned)t), (unsigned)t,
			    arg)) != 0)
			return r;
	return 0;
}

struct sum_arg {
	size_t off;
	uint64_t acc;
};

static int sum_one(void *copy, unsigned slot, void *arg)
{
	struct sum_arg *a = arg;

	(void)slot;
	/* Relaxed: each copy is read whole; a sum of independent words is
	 * a snapshot by contract (updates in flight may or may not count). */
	a->acc += (uint64_t)__atomic_load_n((int64_t *)((char *)copy + a->off),
					    __ATOMIC_RELAXED);
	return 0;
}

PCPU_API int64_t pcpu_area_sum(const void *word)
{
	uint64_t *meta0;
	struct sum_arg a;
	char *area;
	uint64_t info = area_of_word_at(word, &meta0, &area);

	a.off = (size_t)((const char *)word - area);
	/* Relaxed: the overflow word, read whole. */
	a.acc = (uint64_t)__atomic_load_n(
		(int64_t *)&pcpu__meta(word)[PCPU__META_FOLD], __ATOMIC_RELAXED);
	visit_area(area, info, meta0, sum_one, &a);
	return (int64_t)a.acc;
}

struct zero_arg {
	void *area;
	unsigned n;	/* granules */
	int lazy;
};

static int zero_one(void *copy, unsigned slot, void *arg)
{
	struct zero_arg *z = arg;

	/* Plain stores: zero and free are serialized with every update by
	 * the caller. */
	memset(copy, 0, (size_t)z->n * GRAN);
	if (z->lazy)
		memset(touch_byte(z->area, slot), 0, z->n);
	return 0;
}

/* Zero what the area's updates may have written; a lazy area's map too. */
static void area_clean(void *area, uint64_t info, uint64_t *meta0)
{
	struct zero_arg z = { area, INFO_GRAN_OF(info), (info & INFO_LAZY) != 0 };
	unsigned g;

	visit_area(area, info, meta0, zero_one, &z);
	for (g = 0; g < z.n; g++)
		__atomic_store_n(&pcpu__meta((char *)area + (size_t)g * GRAN)[PCPU__META_FOLD],
				 0, __ATOMIC_RELAXED);
	if (z.lazy)
		pcpu__touch_clear(meta0);
}

PCPU_API void pcpu_area_zero(void *area)
{
	uint64_t *meta0, info;

	if (!area)
		return;
	info = area_of_word(area, &meta0);
	area_clean(area, info, meta0);
}

PCPU_API int pcpu_area_for_each(void *area,
				int (*fn)(void *copy, unsigned slot, void *arg),
				void *arg)
{
	uint64_t *meta0, info;

	if (!area || !fn)
		return -EINVAL;
	info = area_of_word(area, &meta0);
	return visit_area(area, info, meta0, fn, arg);
}

static void __attribute__((noreturn)) bad_free(void *area, const char *why)
{
	fprintf(stderr, "libpcpu: pcpu_free(%p): %s\n", area, why);
	abort();
}

PCPU_API void pcpu_free(void *area)
{
	uint64_t *meta0, info;
	unsigned g, n;

	if (!area)
		return;
	/*
	 * A lazy area is freed without the allocator mutex: its info word
	 * says what it is, and the CAS that clears its LAZY flag makes a
	 * second pcpu_free() of it fail below instead of caching it twice.
	 */
	if (pcpu__area_known(area)) {
		uint64_t *iw = &pcpu__meta(area)[PCPU__META_INFO];

		/* Relaxed: written before the area was handed out. */
		info = __atomic_load_n(iw, __ATOMIC_RELAXED);
		if ((info & INFO_LAZY) && !INFO_BACK_OF(info) &&
		    __atomic_compare_exchange_n(iw, &info, info & ~INFO_LAZY, 0,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			/* O(touched) back to clean, then to a slot's cache. */
			area_clean(area, info, pcpu__meta(area));
			n = INFO_GRAN_OF(info);
			for (g = 1; g < n; g++)
				__atomic_store_n(&pcpu__meta((char *)area +
							     (size_t)g * GRAN)[PCPU__META_INFO],
						 0, __ATOMIC_RELAXED);
			pcpu__lazy_release(area, 1);
			return;
		}
	}
	if (pcpu__alloc_lock(1))
		bad_free(area, "called from a signal handler that interrupted "
			 "the allocator");
	pcpu__check_area_locked(area);		/* aborts on a bad pointer */
	info = area_of_word(area, &meta0);
	if (!(info & INFO_EAGER)) {
		pcpu__alloc_unlock();
		bad_free(area, "double free or not the start of an area");
	}
	/* Eager: O(1) but for the overflow words; the copies are zeroed by
	 * the next allocation of these granules. */
	n = INFO_GRAN_OF(info);
	for (g = 0; g < n; g++) {
		uint64_t *m = pcpu__meta((char *)area + (size_t)g * GRAN);

		/* Relaxed: under the mutex; the area is dead. */
		__atomic_store_n(&m[PCPU__META_FOLD], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&m[PCPU__META_INFO], 0, __ATOMIC_RELAXED);
	}
	pcpu__free_locked(area, 1);
	pcpu__alloc_unlock();
}

PCPU_API void *pcpu_ptr(void *area, unsigned slot)
{
	uint64_t *meta0, info;

	/* Relaxed: constant while @area is live (alloc.c invariant 2); no
	 * call to pcpu_nr_slots(), whose pthread_once() is not
	 * async-signal-safe. */
	if (!area || slot >= __atomic_load_n(&pcpu__rt.nr_slots,
					     __ATOMIC_RELAXED)) {
		errno = EINVAL;
		return NULL;
	}
	/* A lazy area's copy may now be written: the slot counts as
	 * touched, so that zero, free and the readers see it (invariant 3). */
	if (pcpu__area_known(area)) {
		info = area_of_word(area, &meta0);
		if (info & INFO_LAZY)
			pcpu__touch_mark(meta0, slot);
	}
	return pcpu__slot_ptr(area, slot);
}
