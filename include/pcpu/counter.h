/* SPDX-License-Identifier: MIT */
/*
 * pcpu/counter.h - dual-mode per-CPU counters.
 *
 * A counter is a 64-bit signed sum.  Its policy is chosen at init:
 *
 *   PCPU_COUNTER_DUAL (default)  a plain integer owned by the thread that
 *       initialized it: the owner's add is one plain read-modify-write of a
 *       word only the owner writes (no lock prefix).  The first update from
 *       another thread, or pcpu_counter_share(), upgrades the counter to
 *       per-CPU slots, initialized on demand as for LAZY; from then on the
 *       owner updates the slots too, and its private word stays part of the
 *       sum, so an owner update in flight during the upgrade is not lost.
 *       Until then the counter holds no per-CPU memory.
 *   PCPU_COUNTER_LAZY  per-CPU from the start, but a slot is initialized
 *       only when a CPU first updates the counter (like the kernel's
 *       on-demand mm_cid init): init costs the same at 4096 slots as at 1,
 *       and sum, set, reset and destroy visit only the touched slots.
 *   PCPU_COUNTER_EAGER  per-CPU from the start: the slots are allocated and
 *       zeroed for every slot at init under the allocator's lock, and sums
 *       visit every slot.  This is the kernel's percpu_counter: the
 *       baseline.
 *
 * Non-owners update the current CPU's slot with a restartable sequence
 * (rseq) where the kernel provides one, else with an atomic
 * compare-and-swap; see pcpu_update_method().  A slot folds into a shared
 * total once its value reaches +/-PCPU_COUNTER_BATCH, so
 * pcpu_counter_read() is O(1) and within (PCPU_COUNTER_BATCH - 1) times
 * the number of touched slots of the exact value, except within
 * (PCPU_COUNTER_BATCH - 1) * pcpu_nr_slots() of INT64_MIN or INT64_MAX,
 * where the words it adds could wrap and it returns the exact sum
 * instead.  Arithmetic is modulo 2^64.
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
 * (under "rseq-own" a thread's first update registers its rseq area with
 * a system call and pthread_setspecific(), which POSIX does not list but
 * glibc implements without locks); init, share and destroy are not (they
 * may allocate or free).
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

/** Policy: plain integer for one owner, per-CPU once shared (default). */
#define PCPU_COUNTER_DUAL	0u
/** Policy: per-CPU from the start, every slot zeroed at init (baseline). */
#define PCPU_COUNTER_EAGER	1u
/** Policy: per-CPU from the start, slots initialized on first touch. */
#define PCPU_COUNTER_LAZY	2u

/** A slot folds into the shared total when its value reaches +/- this. */
#define PCPU_COUNTER_BATCH	256

/*
 * Tags in the low bits of pcpu__owner.  A DUAL counter stores its owner's
 * thread pointer there (16-byte aligned, so the tag bits are 0); LAZY and
 * EAGER counters have no owner and store a tag no thread pointer can equal.
 */
#define PCPU__OWNER_EAGER	0x1u	/* per-CPU from init, all slots     */
#define PCPU__OWNER_LAZY	0x2u	/* per-CPU from init, touched slots */
#define PCPU__OWNER_MEMBER	0x4u	/* slots borrowed from an init_many
					   group: not freed by this counter */
#define PCPU__OWNER_TAGS	0xfu

/**
 * struct pcpu_counter - a dual-mode counter; embed it, do not touch it.
 *
 * 32 bytes.  The fields are private; each says what protects it.
 */
struct pcpu_counter {
	/* The owner's share of the sum.  Written only by the owner thread
	 * (one plain RMW instruction) while the counter has no slots, and
	 * by set/reset; others read it with relaxed loads. */
	int64_t pcpu__own;
	/* Owner thread pointer | tags.  Written by init and reset only,
	 * which the caller serializes with every other access. */
	uintptr_t pcpu__owner;
	/* Per-CPU area of biased int64_t (see PCPU__SLOT_BIAS), NULL until
	 * a DUAL counter is upgraded.  Installed once with a release CAS;
	 * read with acquire loads.  Updates write a slot only from the CPU
	 * it belongs to in an rseq sequence (rseq methods), or by atomic CAS
	 * (atomic method); set/reset/destroy, which the caller serializes
	 * with updates, store to slots directly. */
	int64_t *pcpu__slots;
	/* Non-owner updates of a DUAL counter whose upgrade could not
	 * allocate, and of threads without rseq under an rseq method.  Atomic
	 * RMW only.  (Full slots fold into a word beside the area, not here:
	 * this cache line is read by every add.) */
	int64_t pcpu__shared;
};

/*
 * Slot encoding.  An untouched slot holds 0 (fresh or cleaned memory); a
 * touched slot holds PCPU__SLOT_BIAS + v with |v| < PCPU_COUNTER_BATCH,
 * that is [BATCH + 1, 3 * BATCH - 1].  The fast path takes only deltas
 * with |delta| < BATCH (others fold anyway), so 0 + delta never lands in
 * that window, and one unsigned range check on the new value sends both a
 * first touch and a slot that must fold to the slow path.  The window's
 * bounds fit in instruction immediates.  Not API.
 */
#define PCPU__SLOT_BIAS	((uint64_t)2 * PCPU_COUNTER_BATCH)
#define PCPU__WIN_LO	(PCPU__SLOT_BIAS - (PCPU_COUNTER_BATCH - 1))
#define PCPU__WIN_SZ	(2 * PCPU_COUNTER_BATCH - 1)

/* Whether the fast path may take @delta (constant-folds for inc/dec). */
PCPU__INLINE int pcpu__small_delta(int64_t delta)
{
	return (uint64_t)delta + (PCPU_COUNTER_BATCH - 1) <
	       2 * PCPU_COUNTER_BATCH - 1;
}

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
# define PCPU__HAVE_RSEQ_ASM 1
/*
 * Add @delta to the current CPU's slot of @slots in a restartable
 * sequence: load cpu_id, locate the slot, load, add, check the window,
 * store (the commit).  Preemption, migration or a signal before the commit
 * aborts to the abort handler (preceded by the signature the kernel checks)
 * which starts over.  Returns 0, having stored nothing, when the thread
 * has no rseq registered (cpu_id negative) or the new value leaves the
 * window (first touch, or a fold is due).
 */
PCPU__INLINE int pcpu__rseq_slot_add(int64_t *slots, int64_t delta, long off)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"	/* rseq->cpu_id */
		"testl %%eax, %%eax\n\t"
		"js %l[slow]\n\t"
		"shlq %[shift], %%rax\n\t"
		"addq %[slots], %%rax\n\t"
		"movq (%%rax), %%rcx\n\t"
		"addq %[delta], %%rcx\n\t"
		"leaq %c[nlo](%%rcx), %%rdx\n\t"	/* new - WIN_LO */
		"cmpq %[sz], %%rdx\n\t"
		"jae %l[slow]\n\t"
		"movq %%rcx, (%%rax)\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("0b")
		: /* no outputs */
		: [off] "r" (off), [slots] "r" (slots), [delta] "er" (delta),
		  [nlo] "i" (-(long)PCPU__WIN_LO), [sz] "i" (PCPU__WIN_SZ),
		  [shift] "i" (PCPU__UNIT_SHIFT)
		: "memory", "cc", "rax", "rcx", "rdx"
		: slow);
	return 1;
slow:
	return 0;
}
#endif

/*
 * The same with a compare-and-swap, for the atomic method: the slot may be
 * updated at the same time by a thread that migrated, or by another CPU
 * mapped to the same slot.
 */
PCPU__INLINE int pcpu__atomic_slot_add(int64_t *slots, int64_t delta)
{
	uint64_t *p = (uint64_t *)pcpu__slot_ptr(slots,
						 pcpu__slot_of(pcpu__cpu()));
	/* Relaxed: the slot carries no data but its own value. */
	uint64_t x = __atomic_load_n(p, __ATOMIC_RELAXED), n;

	do {
		n = x + (uint64_t)delta;
		if (n - PCPU__WIN_LO >= PCPU__WIN_SZ)
			return 0;
	} while (!__atomic_compare_exchange_n(p, &x, n, 1, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 1;
}

/**
 * pcpu_counter_add - add @delta to a counter.
 * @c:     an initialized counter.
 * @delta: any value.
 *
 * Never fails and never loses an update: if a DUAL counter's upgrade
 * cannot allocate (or the allocator is busy), the update goes to a shared
 * atomic word and a later update tries the upgrade again.
 *
 * This API is MT-safe; it may run concurrently with add, read, sum,
 * compare and share of the same counter.  It is async-signal-safe: a
 * signal handler may update the very counter its thread was updating.
 */
PCPU__INLINE void pcpu_counter_add(struct pcpu_counter *c, int64_t delta)
{
	/* Acquire: pairs with the release CAS that installed the slots, so
	 * the area's clean state happens before this thread's add. */
	int64_t *slots = __atomic_load_n(&c->pcpu__slots, __ATOMIC_ACQUIRE);

	/*
	 * The hints lay the owner's add out as the straight line: without
	 * them GCC 12 puts the slot add there instead and the owner's add
	 * costs 2x a plain add (bench/run: owner_add 0.55 vs 0.30 ns, while
	 * shared_add gains only 0.96 -> 1.0 ns).
	 */
	if (pcpu__likely(slots == NULL)) {
		/*
		 * Not shared: the owner adds to its word.  Relaxed: the owner
		 * field changes only under the caller's own serialization
		 * (init/reset), never concurrently with add.  Once the counter
		 * is shared the owner uses the slots like everyone else, so
		 * that its word (on the cache line every adder reads) is no
		 * longer written; the word stays part of the sum.
		 */
		if (pcpu__likely(__atomic_load_n(&c->pcpu__owner,
						 __ATOMIC_RELAXED) == pcpu__tp())) {
			pcpu__own_add(&c->pcpu__own, delta);
			return;
		}
	} else if (pcpu__small_delta(delta)) {
#ifdef PCPU__HAVE_RSEQ_ASM
		/* Relaxed: set while no area is live (see struct pcpu__rt). */
		long off = __atomic_load_n(&pcpu__rt.rseq_fast,
					   __ATOMIC_RELAXED);

		if (pcpu__likely(off != 0)) {
			if (pcpu__likely(pcpu__rseq_slot_add(slots, delta, off)))
				return;
		} else
#endif
		if (pcpu__likely(pcpu__atomic_slot_add(slots, delta)))
			return;
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
 * @flags: PCPU_COUNTER_DUAL (0), PCPU_COUNTER_LAZY or PCPU_COUNTER_EAGER.
 *
 * DUAL: the calling thread becomes the owner; nothing is allocated.
 * LAZY: a per-CPU area is reserved (no slot is written: O(1) whatever the
 * slot count).  EAGER: a per-CPU area is allocated and zeroed for every
 * slot.
 *
 * Return: 0; -EINVAL (@c NULL, unknown @flags) or -ENOMEM, with @c left
 * uninitialized.
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
 * PCPU_ALLOC_MAX / 8 counters, allocated at once, as the kernel's
 * percpu_counter_init_many() does.  Release them with
 * pcpu_counter_destroy_many() and the same @n.
 *
 * Return: 0; -EINVAL (@c NULL, @n 0, unknown @flags) or -ENOMEM, with
 * nothing allocated.
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
 * The owner's word plus the shared total, without visiting the slots.
 * When no update is in flight it differs from pcpu_counter_sum() by at
 * most (PCPU_COUNTER_BATCH - 1) * T, where T is the number of slots the
 * counter has touched (every slot for EAGER), so at most
 * (PCPU_COUNTER_BATCH - 1) * pcpu_nr_slots().  When that partial sum is
 * within (PCPU_COUNTER_BATCH - 1) * pcpu_nr_slots() of INT64_MIN or
 * INT64_MAX, where it could have wrapped, the result is the exact sum
 * instead, at the cost of pcpu_counter_sum().
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c);

/**
 * pcpu_counter_sum - the exact value.
 *
 * Exact whenever no update is in flight; updates that run concurrently
 * may or may not be counted.  O(1) for a DUAL counter that is not shared,
 * O(touched slots) for LAZY and upgraded DUAL counters (it does not grow
 * with pcpu_nr_slots()), O(pcpu_nr_slots()) for EAGER.
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
 * per-CPU slots are kept.
 */
PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t value);

/**
 * pcpu_counter_share - upgrade a DUAL counter to per-CPU slots now.
 *
 * Call it before handing the counter to other threads, as clone() would.
 * A no-op for counters that are per-CPU already.
 *
 * Return: 0, or -EINVAL (@c NULL) or -ENOMEM (the counter stays usable:
 * other threads' updates then take a shared atomic word).
 *
 * This API is MT-safe; it may race with other upgrades of the counter.
 */
PCPU_API int pcpu_counter_share(struct pcpu_counter *c);

/**
 * pcpu_counter_reset - value 0 and a new owner, keeping per-CPU memory.
 *
 * The value becomes 0; a DUAL counter's owner becomes the calling thread.
 * Per-CPU slots the counter has are kept and zeroed in O(touched slots):
 * a counter that was shared stays shared (every thread, the new owner
 * included, updates the slots) and allocates nothing again.  Not
 * concurrently with any other access to @c.
 */
PCPU_API void pcpu_counter_reset(struct pcpu_counter *c);

/**
 * pcpu_counter_is_shared - whether the counter has per-CPU slots.
 *
 * Return: true for LAZY and EAGER counters and for DUAL counters since
 * their upgrade; false for a DUAL counter still private to its owner (also when
 * an upgrade failed to allocate).
 *
 * This API is MT-safe.
 */
PCPU_API bool pcpu_counter_is_shared(const struct pcpu_counter *c);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_COUNTER_H */
