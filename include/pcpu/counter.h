/* SPDX-License-Identifier: MIT */
/*
 * pcpu/counter.h - dual-mode per-CPU counters.
 *
 * A counter is a 64-bit signed sum.  Its policy is chosen at init:
 *
 *   PCPU_COUNTER_DUAL (default)  a plain integer owned by the thread that
 *       first updates it: the owner's add is one plain read-modify-write of
 *       a word only the owner writes (no lock prefix).  The first update
 *       from a second thread, or pcpu_counter_share(), upgrades the counter
 *       to per-CPU slots, initialized on demand as for LAZY; from then on
 *       the owner updates the slots too, and its private word stays part of
 *       the sum, so an owner update in flight during the upgrade is not
 *       lost.  Until then the counter holds no per-CPU memory.
 *   PCPU_COUNTER_LAZY  per-CPU from the start, but a slot is initialized
 *       only when a CPU first updates the counter (like the kernel's
 *       on-demand mm_cid init): init costs the same at 4096 slots as at 1,
 *       and sum, set, reset and destroy visit only the touched slots.
 *   PCPU_COUNTER_EAGER  per-CPU from the start: the slots are allocated and
 *       zeroed for every slot at init under the allocator's lock, and sums
 *       visit every slot.  This is the kernel's percpu_counter: the
 *       baseline.
 *
 * Ownership (DUAL).  After init or reset a DUAL counter has no owner; the
 * first thread that updates it becomes the owner (one out-of-line call),
 * so a counter made by one thread and handed to another is owned by the
 * one that uses it.  The first update from a second thread, or
 * pcpu_counter_share(), upgrades it.  pcpu_counter_reset() returns a
 * shared DUAL counter to owner mode, keeping its per-CPU slots aside
 * (zeroed in O(touched slots)) for the next upgrade, which then allocates
 * nothing.
 *
 * Threads update the slot of their slot index (pcpu_slot_index(): the
 * kernel's mm_cid where it has one, else the CPU) with a restartable
 * sequence (rseq) where the kernel provides one, else with an atomic
 * compare-and-swap; see pcpu_update_method().  Each slot keeps a running
 * total and a published part; when the total moves a whole batch away
 * from the published part, the slot publishes it again (ahead of the
 * total by the batch less the delta when it moved the same way at its
 * previous publication, so that a counter that only grows publishes
 * about half as often, and one that swings back and forth no more) and the
 * difference is added to the counter's published total.  The batch is
 * 2^k with PCPU_COUNTER_BATCH_LOG2(k) in the init flags, k = 8 (the
 * default, PCPU_COUNTER_BATCH) to 40.  So pcpu_counter_read() is O(1) and
 * within (batch - 1) times the number of touched slots of the exact
 * value, on either side of it: a growing counter's read() may be ahead of
 * its sum (except within (batch - 1) * pcpu_nr_slots() of INT64_MIN or
 * INT64_MAX, where it returns the exact sum instead).  Any |delta| below
 * the batch takes the inline fast path unless it makes the slot publish.
 * Values never move between words, so pcpu_counter_sum() counts every
 * update exactly once: successive sums of a counter whose updates are all
 * non-negative never decrease.  Arithmetic is modulo 2^64.
 *
 * Copying.  A DUAL counter that has no slots (never shared, and not reset
 * after a share: pcpu_counter_is_shared() false and no slots kept) is
 * plain data: it may be copied or moved byte-wise (memcpy, a C++ move)
 * while no thread uses it, and the copy is a counter of its own.  Any
 * other counter refers to a per-CPU area and must not be copied; use the
 * original, or init a new counter with its value.
 *
 * Synchronization table ("yes": may run concurrently on the same counter)
 *
 *                   add  read  sum  compare  share  set  reset  destroy
 *   add             yes  yes   yes  yes      yes    no   no     no
 *   read/sum/cmp    yes  yes   yes  yes      yes    no   no     no
 *   share           yes  yes   yes  yes      yes    no   no     no
 *   set/reset       no   no    no   no       no     no   no     no
 *
 * add, inc, dec, read, sum, compare and is_shared are async-signal-safe
 * (set and reset too, when the interrupted code is not using the counter)
 * (under "rseq-own" a thread's first update registers its rseq area with
 * a system call and pthread_setspecific(), which POSIX does not list but
 * glibc implements without locks); init, share and destroy are not (they
 * may allocate or free).  fork() may run while other threads and signal
 * handlers update counters: it never waits for them, and the child's
 * counters are exact.
 */
#ifndef PCPU_COUNTER_H
#define PCPU_COUNTER_H

#include <stdbool.h>
#include <stdint.h>
#include <pcpu/cpu.h>
#include <pcpu/alloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Policy: plain integer for its owner, per-CPU once shared (default). */
#define PCPU_COUNTER_DUAL	0u
/** Policy: per-CPU from the start, every slot zeroed at init (baseline). */
#define PCPU_COUNTER_EAGER	1u
/** Policy: per-CPU from the start, slots initialized on first touch. */
#define PCPU_COUNTER_LAZY	2u

/** The default batch: a slot publishes when it moves this far. */
#define PCPU_COUNTER_BATCH	256
/** Or-ed into the init flags: the counter's batch is 2^k, 8 <= k <= 40. */
#define PCPU_COUNTER_BATCH_LOG2(k)	((unsigned)(k) << 8)

/* Not API: the flag bits, and the batch field's range. */
#define PCPU__COUNTER_POLICY	0xffu
#define PCPU__COUNTER_BATCH_OF(f)	(((f) >> 8) & 0xffu)
#define PCPU__COUNTER_LOG2_MIN	8u
#define PCPU__COUNTER_LOG2_MAX	40u

/*
 * Tags in the low bits of pcpu__owner.  A DUAL counter stores 0 (no owner
 * yet) or its owner's thread pointer there (16-byte aligned, so the tag
 * bits are 0) until it is shared; then, and for LAZY and EAGER counters,
 * a tag with PCPU__OWNER_SLOTS, which no thread pointer can equal.
 */
#define PCPU__OWNER_SLOTS	0x1u	/* everyone updates the slots      */
#define PCPU__OWNER_EAGER	0x2u	/* per-CPU from init, all slots     */
#define PCPU__OWNER_MEMBER	0x4u	/* slots borrowed from an init_many
					   group: not freed by this counter */
#define PCPU__OWNER_LAZY	0x8u	/* per-CPU from init, touched slots */
#define PCPU__OWNER_TAGS	0xfu

/**
 * struct pcpu_counter - a dual-mode counter; embed it, do not touch it.
 *
 * 32 bytes.  The fields are private; each says what protects it.
 */
struct pcpu_counter {
	/* The owner's share of the sum.  Written only by the owner thread
	 * (one plain RMW instruction) and by init/set/reset; others read
	 * it with relaxed loads. */
	int64_t pcpu__own;
	/* 0, the owner's thread pointer, or tags (above).  Written by init
	 * and reset (which the caller serializes with every access), by
	 * the claim (CAS from 0) and the share (release CAS to a tag). */
	uintptr_t pcpu__owner;
	/* The counter's four words per slot in a per-CPU area (counter.c),
	 * or, while a DUAL counter has none, its batch's log2 (0: the
	 * default) as a small integer.  Installed once with a release CAS,
	 * kept by reset, removed by destroy; read with acquire loads. */
	int64_t *pcpu__slots;
	/* Updates of non-owners of a DUAL counter whose upgrade could not
	 * allocate, and of threads that may not write slots.  Atomic RMW
	 * only. */
	int64_t pcpu__shared;
};

/* Out-of-line slow path: not API. */
PCPU_API void pcpu__counter_add_slow(struct pcpu_counter *c, int64_t delta);

/* The owner's add: one instruction a signal cannot split. */
PCPU__INLINE void pcpu__own_add(int64_t *p, int64_t delta)
{
#if defined(__x86_64__) && !PCPU__TSAN
	/*
	 * A memory-destination add without lock prefix: a signal handler runs
	 * before or after it, never inside it, so its own update of this word
	 * is never lost.  Only the owner writes *p, so no other CPU's update
	 * can be lost either; readers' relaxed loads see the old or the new
	 * value whole (aligned 8-byte access).
	 */
	__asm__ __volatile__ ("addq %1, %0" : "+m" (*p) : "er" (delta));
#else
	/*
	 * Elsewhere a relaxed atomic add: uncontended (only the owner writes),
	 * and still indivisible with respect to signal handlers.
	 */
	__atomic_fetch_add(p, delta, __ATOMIC_RELAXED);
#endif
}

#if defined(__x86_64__) && !PCPU__TSAN
# define PCPU__INLINE_CAS 1
#else
# define PCPU__INLINE_CAS 0
#endif

/* Out-of-line: publish the slot copy @p if it is a batch or more from its
 * published part, after an add of @delta (which decides how far ahead it
 * publishes; atomic method).  Not API. */
PCPU_API void pcpu__counter_publish(struct pcpu_counter *c, uint64_t *p,
				   int64_t delta);

/*
 * The atomic method's slot add (compare-and-swap: the slot may be updated
 * at the same time by a thread that migrated, or by another CPU mapped to
 * the same slot).  The words are u, q, w as in pcpu__rseq_counter_add().
 * Returns 1 when done, 0 when the slow path must run, and -1 when the add
 * is done but the slot *@pp must publish (a concurrent publication moved
 * q).
 */
PCPU__INLINE int pcpu__atomic_slot_add(int64_t *slots, int64_t delta,
				       uint64_t **pp)
{
	uint64_t *p = (uint64_t *)pcpu__slot_ptr(slots,
						 pcpu__slot_of(pcpu__index()));
	/* Relaxed: the slot carries no data but its own value; q and w are
	 * checked again after the CAS. */
	uint64_t x = __atomic_load_n(p, __ATOMIC_RELAXED), n;

	do {
		n = x + (uint64_t)delta;
		if (n - __atomic_load_n(p + 1, __ATOMIC_RELAXED) >=
		    __atomic_load_n(p + 2, __ATOMIC_RELAXED))
			return 0;
	} while (!__atomic_compare_exchange_n(p, &x, n, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	/* A publication between our loads and the CAS (it changes u and q
	 * together) leaves u changed, so the CAS failed; this catches the
	 * rest (u back to the value we loaded). */
	if (pcpu__unlikely(n - __atomic_load_n(p + 1, __ATOMIC_RELAXED) >=
			   __atomic_load_n(p + 2, __ATOMIC_RELAXED))) {
		*pp = p;
		return -1;
	}
	return 1;
}

/**
 * pcpu_counter_add - add @delta to a counter.
 * @c:     an initialized counter.
 * @delta: any value.
 *
 * Never fails and never loses an update: if a DUAL counter's upgrade
 * cannot allocate (or the allocator is busy), the update goes to a shared
 * atomic word and a later update tries the upgrade again.  The owner of a
 * DUAL counter adds to its own word with one plain instruction; once the
 * counter is shared, every thread (the owner too) adds to its slot.
 *
 * This API is MT-safe; it may run concurrently with add, read, sum,
 * compare and share of the same counter.  It is async-signal-safe: a
 * signal handler may update the very counter its thread was updating.
 */
PCPU__INLINE void pcpu_counter_add(struct pcpu_counter *c, int64_t delta)
{
	/* Relaxed: a thread reads its own thread pointer here only if it
	 * claimed the counter itself (reset, which clears it, is serialized
	 * with every update by the caller).  ThreadSanitizer has no fences:
	 * there the load itself is the acquire below. */
	uintptr_t o = __atomic_load_n(&c->pcpu__owner, PCPU__TSAN ?
				      __ATOMIC_ACQUIRE : __ATOMIC_RELAXED);

	if (pcpu__likely(o == pcpu__tp())) {
		pcpu__own_add(&c->pcpu__own, delta);
		return;
	}
	if (pcpu__likely(o & PCPU__OWNER_SLOTS)) {
		int64_t *slots;
		long off;

		/* Acquire (fence): pairs with the release CAS that set the tag
		 * after the slots were installed. */
#if !PCPU__TSAN
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
#endif
		slots = __atomic_load_n(&c->pcpu__slots, __ATOMIC_RELAXED);
		/* Relaxed: set while no area is live (see struct pcpu__rt). */
		off = __atomic_load_n(&pcpu__rt.rseq_fast, __ATOMIC_RELAXED);
#ifdef PCPU__HAVE_RSEQ_ASM
		if (pcpu__likely(off != 0)) {
			if (pcpu__likely(pcpu__rseq_counter_add(slots, delta, off,
								pcpu__rt.rseq_idx,
								pcpu__rt.nr_slots)))
				return;
		} else
#endif
		/*
		 * The inline CAS only where an 8-byte CAS and the library's
		 * 16-byte one (its publications) are the same hardware
		 * atomics: x86-64 without ThreadSanitizer.  Elsewhere the
		 * 16-byte one may be a lock (libatomic, TSan's runtime) that
		 * an 8-byte CAS would not respect, so the library does it all.
		 */
		if (off == 0 && PCPU__INLINE_CAS) {
			uint64_t *p;
			int r = pcpu__atomic_slot_add(slots, delta, &p);

			if (pcpu__likely(r > 0))
				return;
			if (r < 0) {		/* added; publish that slot */
				pcpu__counter_publish(c, p, delta);
				return;
			}
		}
	}
	pcpu__counter_add_slow(c, delta);
}

/** pcpu_counter_inc - add 1; see pcpu_counter_add(). */
PCPU__INLINE void pcpu_counter_inc(struct pcpu_counter *c)
{
	pcpu_counter_add(c, 1);
}

/** pcpu_counter_dec - add -1; see pcpu_counter_add(). */
PCPU__INLINE void pcpu_counter_dec(struct pcpu_counter *c)
{
	pcpu_counter_add(c, -1);
}

/**
 * pcpu_counter_init - initialize a counter.
 * @c:     the counter.
 * @value: its initial value.
 * @flags: PCPU_COUNTER_DUAL (0), PCPU_COUNTER_LAZY or PCPU_COUNTER_EAGER,
 *         optionally or-ed with PCPU_COUNTER_BATCH_LOG2(k), 8 <= k <= 40.
 *
 * DUAL: nothing is allocated and the counter has no owner: the first
 * thread that updates it becomes the owner.
 * LAZY: a per-CPU area is reserved (no slot is written: O(1) whatever the
 * slot count).  EAGER: a per-CPU area is allocated and zeroed for every
 * slot.
 *
 * Return: 0; -EINVAL (@c NULL, unknown @flags, k outside 8..40) or
 * -ENOMEM, with @c left uninitialized.
 *
 * This API is MT-safe for distinct counters.
 */
PCPU_API int pcpu_counter_init(struct pcpu_counter *c, int64_t value,
			       unsigned flags);

/**
 * pcpu_counter_init_many - initialize an array of counters.
 * @c:     the first of @n counters.
 * @value: the initial value of each.
 * @flags: as for pcpu_counter_init().
 * @n:     how many (1 or more).
 *
 * LAZY and EAGER counters share one per-CPU area per group of up to
 * PCPU_ALLOC_MAX / 32 counters, allocated at once, as the kernel's
 * percpu_counter_init_many() does.  Release them with
 * pcpu_counter_destroy_many() and the same @n.
 *
 * Return: 0; -EINVAL (@c NULL, @n 0, unknown @flags, a batch k outside
 * 8..40) or -ENOMEM, with nothing allocated.
 *
 * This API is MT-safe for distinct counters.
 */
PCPU_API int pcpu_counter_init_many(struct pcpu_counter *c, int64_t value,
				    unsigned flags, unsigned n);

/**
 * pcpu_counter_destroy - release a counter's per-CPU memory.
 * @c: a counter from pcpu_counter_init(), or NULL (no-op).
 *
 * LAZY and upgraded DUAL counters clean only their touched slots, so the
 * area goes back to the allocator ready for the next LAZY counter.  No
 * other thread may use @c during or after the call.
 */
PCPU_API void pcpu_counter_destroy(struct pcpu_counter *c);

/**
 * pcpu_counter_destroy_many - release counters from pcpu_counter_init_many().
 * @c: the first counter, or NULL (no-op).
 * @n: the @n given to pcpu_counter_init_many().
 */
PCPU_API void pcpu_counter_destroy_many(struct pcpu_counter *c, unsigned n);

/**
 * pcpu_counter_read - the approximate value, in O(1).
 *
 * The owner's word, the shared word and the slots' published total,
 * without visiting the slots.  When no update is in flight it differs
 * from pcpu_counter_sum() by at most (batch - 1) * T, where batch is the
 * counter's (PCPU_COUNTER_BATCH unless PCPU_COUNTER_BATCH_LOG2() said
 * otherwise) and T the number of slots the counter has touched (every
 * slot for EAGER), so at most (batch - 1) * pcpu_nr_slots().  When that
 * partial sum is within (batch - 1) * pcpu_nr_slots() of INT64_MIN or
 * INT64_MAX, where it could have wrapped, the result is the exact sum
 * instead, at the cost of pcpu_counter_sum().  Successive reads of a
 * counter whose updates are all non-negative never decrease.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c);

/**
 * pcpu_counter_sum - the exact value.
 *
 * Exact whenever no update is in flight.  An update that runs
 * concurrently is counted once or not at all, never twice, and a slot's
 * publication moves no value, so it is counted exactly once: for a
 * counter whose updates are all non-negative, successive sums (and reads)
 * in one thread never decrease, and no sum exceeds the total of the
 * updates begun before it returned.  Never waits or retries.  O(1) for a
 * DUAL counter without slots, O(touched slots) for LAZY and upgraded DUAL
 * counters (it does not grow with pcpu_nr_slots()), O(pcpu_nr_slots())
 * for EAGER.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_sum(const struct pcpu_counter *c);

/**
 * pcpu_counter_compare - compare a counter with @rhs.
 *
 * Return: -1, 0 or 1, the sign of (value - @rhs), exact as
 * pcpu_counter_sum() is.  Uses pcpu_counter_read() when it is farther
 * from @rhs than its error bound, and sums otherwise.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API int pcpu_counter_compare(const struct pcpu_counter *c, int64_t rhs);

/**
 * pcpu_counter_set - set the value.
 *
 * Not concurrently with any other access to @c.  The owner (DUAL) and the
 * per-CPU slots are kept; O(touched slots).
 */
PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t value);

/**
 * pcpu_counter_share - upgrade a DUAL counter to per-CPU slots now.
 *
 * Call it before handing the counter to other threads, as clone() would.
 * A no-op for counters that are per-CPU already.  A DUAL counter that
 * was reset gets the slots it kept back, without allocating and without
 * any process-wide lock.
 *
 * Return: 0, or -EINVAL (@c NULL) or -ENOMEM (the counter stays usable:
 * other threads' updates then take a shared atomic word).
 *
 * This API is MT-safe; it may race with other upgrades of the counter.
 */
PCPU_API int pcpu_counter_share(struct pcpu_counter *c);

/**
 * pcpu_counter_reset - value 0, back to owner mode, keeping per-CPU memory.
 *
 * The value becomes 0.  A DUAL counter goes back to owner mode:
 * pcpu_counter_is_shared() is false, it has no owner until its next
 * update, and that owner's adds are plain adds again.  The per-CPU slots
 * it has are kept aside, zeroed in O(touched slots): the next update from
 * a second thread, or pcpu_counter_share(), puts them back without
 * allocating.  LAZY and EAGER counters keep their slots, zeroed.  Not
 * concurrently with any other access to @c.
 */
PCPU_API void pcpu_counter_reset(struct pcpu_counter *c);

/**
 * pcpu_counter_is_shared - whether updates go to per-CPU slots.
 *
 * Return: true for LAZY and EAGER counters and for DUAL counters since
 * their upgrade (until a reset); false for a DUAL counter in owner mode
 * (also when an upgrade failed to allocate).
 *
 * This API is MT-safe.
 */
PCPU_API bool pcpu_counter_is_shared(const struct pcpu_counter *c);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_COUNTER_H */
