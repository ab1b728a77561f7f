/* SPDX-License-Identifier: MIT */
/*
 * lib/counter.c - dual-mode counters: the slow paths and the readers.
 *
 * A counter's value is the sum of three parts:
 *
 *     value = own + shared + fold + sum over touched slots s of
 *             (slots[s] - BIAS)
 *
 * own     the owner's word (DUAL).  Only the owner thread writes it, with
 *         one non-atomic add instruction (pcpu__own_add()), and only while
 *         the counter has no slots: after the upgrade the owner updates the
 *         slots like any thread, because own shares a cache line with the
 *         fields every adder reads.  It stays part of the value forever, so
 *         an owner update in flight while another thread upgrades the
 *         counter (it saw no slots yet) lands in a word the upgrade does
 *         not touch and is not lost.  LAZY and EAGER counters have no owner
 *         and keep only their initial value here.
 * shared  an atomic word in the counter: updates of non-owners while a
 *         DUAL upgrade cannot allocate, and updates of threads that have no
 *         rseq area under the rseq method.  Rarely written.
 * fold    an atomic word beside the area (alloc.c's side words), alone on
 *         its cache line: slot values folded in once they reach
 *         +/-PCPU_COUNTER_BATCH, which is what makes read() O(1) (but
 *         near INT64_MIN/MAX, where read() sums: see there).  Not in
 *         the counter itself, whose cache line every adder reads: a fold
 *         there would cost every other CPU a cache miss on its next add.
 * slots   a per-CPU area of int64_t.  A slot holds 0 until its CPU first
 *         updates the counter, then PCPU__SLOT_BIAS + v, |v| < BATCH.
 *
 * On-demand slots (LAZY, and DUAL after the upgrade).  The area comes from
 * pcpu__alloc_clean(): zero in every slot without anyone writing it.  The
 * first update from a CPU finds 0 outside the fast path's window and comes
 * here: it sets the slot's bit in the area's touch map (alloc.c: a mask
 * word per group of 64 slots and a summary word over the groups), *then*
 * stores BIAS + delta in the slot.  sum, set, reset and destroy walk the
 * summary and masks, so they cost O(touched slots), never O(nr_slots); a
 * touched slot whose store has not landed yet holds 0 and adds nothing.
 * destroy returns the slots and the map words to zero, so the area goes
 * back clean (pcpu__free_clean()) and the next counter pays no memset.
 * EAGER counters have no touch map: pcpu_alloc() zeroed every slot, a CPU
 * still stores BIAS on its first update, and the readers visit all slots.
 *
 * Slot writes.  Under the rseq method a slot is written only inside an
 * rseq sequence on its own CPU (the fast path in counter.h, or
 * rseq_store_if() here), so plain loads and stores suffice; under the
 * atomic method only by CAS.  Both give store_if(p, old, new): "if the
 * slot still holds old, store new", the one primitive the slow path needs
 * for first touch and folds alike.
 *
 * Upgrade.  A non-owner of a DUAL counter that finds no slots takes a clean
 * area and installs it with a release CAS from NULL; the loser of a race
 * frees its area and uses the winner's.  Adders load the pointer with
 * acquire, so the area's clean state happens before their first write.
 * The upgrade from an add only *tries* the allocator lock: when it is busy
 * (possibly held by the very thread a signal handler interrupted) or out of
 * memory, the update goes to `shared` and a later update tries again.
 *
 * Invariants:
 *  1. Only the owner writes own (after init/set/reset, which the caller
 *     serializes with everything).
 *  2. slots goes from NULL to an area at most once per init, and back to
 *     NULL only in destroy.
 *  3. When no update is in flight, a touched slot holds BIAS + v with
 *     |v| < BATCH, an untouched one 0.  Hence
 *     |sum - read| <= (BATCH - 1) * touched slots.
 *  4. A slot is touched (non-zero) only after its bit is set in the touch
 *     map (LAZY/DUAL), and the map is cleared only with every slot zero.
 *  5. Counters of a LAZY or EAGER init_many group borrow a slice of the
 *     group leader's area (PCPU__OWNER_MEMBER); only the leader frees it.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>

/* How many LAZY/EAGER counters share one per-CPU area in init_many(). */
#define PCPU_GROUP_MAX	(unsigned)(PCPU_ALLOC_MAX / sizeof(int64_t))
#define BIAS		PCPU__SLOT_BIAS
#define BATCH		PCPU_COUNTER_BATCH

static int is_eager(const struct pcpu_counter *c)
{
	return (c->pcpu__owner & PCPU__OWNER_EAGER) != 0;
}

static int64_t *load_slots(const struct pcpu_counter *c)
{
	/* Acquire: pairs with the release CAS in upgrade(); the area's clean
	 * state happens before the caller reads or writes its slots. */
	return __atomic_load_n(&c->pcpu__slots, __ATOMIC_ACQUIRE);
}

static uint64_t *slot_at(int64_t *slots, unsigned s)
{
	return (uint64_t *)pcpu__slot_ptr(slots, s);
}

/* The value a slot contributes. */
static int64_t slot_value(uint64_t x)
{
	return x ? (int64_t)(x - BIAS) : 0;
}

/* --- side words: fold total and touch map -------------------------------- */

static int64_t *fold_word(const int64_t *slots)
{
	struct pcpu__touch t;

	pcpu__area_touch(slots, &t);
	return t.fold;
}

static void mark_touched(const int64_t *slots, unsigned s)
{
	struct pcpu__touch t;
	unsigned grp = s / 64;
	uint64_t *m;

	pcpu__area_touch(slots, &t);
	m = t.mask0 + grp * t.stride;
	/*
	 * Relaxed RMWs, before the slot's first store: a reader that misses
	 * the bit skips the slot, which is right while this update is in
	 * flight; a reader that happens after the update (joined the thread,
	 * say) sees both.  Test first: the map words are shared by all CPUs
	 * of the group and written once per slot, not once per update.
	 */
	if (!(__atomic_load_n(m, __ATOMIC_RELAXED) & (1ull << (s % 64))))
		__atomic_fetch_or(m, 1ull << (s % 64), __ATOMIC_RELAXED);
	if (!(__atomic_load_n(t.summary, __ATOMIC_RELAXED) &
	      (1ull << (grp / t.per_bit))))
		__atomic_fetch_or(t.summary, 1ull << (grp / t.per_bit),
				  __ATOMIC_RELAXED);
}

enum visit_op { VISIT_SUM, VISIT_COUNT, VISIT_RESET, VISIT_CLEAN };

/*
 * Apply @op to every touched slot (every slot for EAGER): sum their
 * values, count them, store BIAS (set/reset: touched, value 0), or store 0
 * and clear the map (destroy).  O(touched slots) for LAZY and DUAL.
 */
static int64_t visit(const struct pcpu_counter *c, int64_t *slots,
		     enum visit_op op)
{
	/* Relaxed: constant while the counter holds an area. */
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	struct pcpu__touch t;
	uint64_t sum, m;
	unsigned g, grp, end, s;
	int64_t acc = 0;

	if (is_eager(c)) {
		if (op == VISIT_COUNT)
			return nr;
		for (s = 0; s < nr; s++) {
			uint64_t *p = slot_at(slots, s);

			/* Relaxed: a reader of independent words, or a writer
			 * serialized with all updates (set/reset/destroy). */
			if (op == VISIT_SUM)
				acc += slot_value(__atomic_load_n(p, __ATOMIC_RELAXED));
			else
				__atomic_store_n(p, 0, __ATOMIC_RELAXED);
		}
		return acc;
	}
	pcpu__area_touch(slots, &t);
	/*
	 * Relaxed, summary, masks and slots alike: each word is read whole
	 * and the sum of independent words is a snapshot by contract
	 * (invariants 3, 4); a touch that a reader misses was an update in
	 * flight.  The clean, reset and set writers are serialized with every
	 * update by the caller.
	 */
	sum = __atomic_load_n(t.summary, __ATOMIC_RELAXED);
	while (sum) {
		g = (unsigned)__builtin_ctzll(sum);
		sum &= sum - 1;
		grp = g * t.per_bit;
		end = grp + t.per_bit < t.nr_groups ? grp + t.per_bit : t.nr_groups;
		for (; grp < end; grp++) {
			uint64_t *mp = t.mask0 + grp * t.stride;

			m = __atomic_load_n(mp, __ATOMIC_RELAXED);
			if (op == VISIT_COUNT)
				acc += __builtin_popcountll(m);
			while (m && op != VISIT_COUNT) {
				s = grp * 64 + (unsigned)__builtin_ctzll(m);
				m &= m - 1;
				if (op == VISIT_SUM)
					acc += slot_value(__atomic_load_n(slot_at(slots, s),
									  __ATOMIC_RELAXED));
				else
					__atomic_store_n(slot_at(slots, s),
							 op == VISIT_RESET ? BIAS : 0,
							 __ATOMIC_RELAXED);
			}
			if (op == VISIT_CLEAN)
				__atomic_store_n(mp, 0, __ATOMIC_RELAXED);
		}
	}
	if (op == VISIT_CLEAN)
		__atomic_store_n(t.summary, 0, __ATOMIC_RELAXED);
	return acc;
}

/* --- folds and fork() ----------------------------------------------------- */

/*
 * A fold moves a slot's value into the fold word with two writes: the
 * slot's store_if (BIAS + 0) and then the fetch_add on the fold word.  A
 * concurrent sum may miss or double-count the value in between, as it
 * may any update in flight.  fork() is different: it copies memory at one
 * instant and the folding thread does not exist in the child, so a fold
 * caught between its two writes would leave the child's counter wrong
 * forever, by up to BATCH - 1 per CPU.  (Every other counter update is one
 * store or one atomic instruction, which fork() copies whole.)
 *
 * So folds pass a gate that the fork prepare handler closes.  A folder
 * counts itself in fold_busy, then checks fold_stop; the handler sets
 * fold_stop, then waits for fold_busy to drop to the forking thread's own
 * share.  Both sides write one word and then read the other's with
 * seq_cst (Dekker): either the folder sees the stop and backs out before
 * its first write, or the handler sees it counted and waits for its
 * second.  The gate costs a fold (one in BATCH updates per CPU) two
 * atomic RMWs on one process-wide line; no fast-path update touches it.
 *
 * The handler runs after cpu.c has taken every library lock, so no folder
 * can be waiting at the gate while it holds a lock the handler needs; a
 * folder holds nothing while it waits.  A signal handler that folds on a
 * thread interrupted mid-fold is let through (fold_depth): its outer fold
 * already counts, and it must not wait for a fork that waits for it.
 */
static unsigned long fold_busy;		/* folds between their two writes */
static int fold_stop;			/* a fork is being prepared */
static __thread unsigned fold_depth	/* this thread's folds in flight */
	__attribute__((tls_model("initial-exec")));

static void fold_enter(void)
{
	unsigned spins = 0;

	if (fold_depth++ > 0)
		return;		/* nested in our own fold: counted already */
	for (;;) {
		/* Seq_cst RMW then seq_cst load: the folder's half of the
		 * Dekker pair described above. */
		__atomic_fetch_add(&fold_busy, 1, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&fold_stop, __ATOMIC_SEQ_CST))
			return;
		/* Release: nothing of ours was written; just uncount. */
		__atomic_fetch_sub(&fold_busy, 1, __ATOMIC_RELEASE);
		/* Relaxed: a hint only; the seq_cst pair above decides. */
		while (__atomic_load_n(&fold_stop, __ATOMIC_RELAXED)) {
			if (++spins > 64)
				sched_yield();
		}
	}
}

static void fold_exit(void)
{
	if (--fold_depth > 0)
		return;
	/* Release: our two writes before the handler's acquire load that
	 * sees the count drop, so the fork copies both. */
	__atomic_fetch_sub(&fold_busy, 1, __ATOMIC_RELEASE);
}

void pcpu__counter_fork_prepare(void)
{
	unsigned long mine = fold_depth > 0;	/* fork from a signal handler
						   that interrupted our fold */
	unsigned spins = 0;

	/* Seq_cst store then seq_cst load: the handler's half of the pair. */
	__atomic_store_n(&fold_stop, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&fold_busy, __ATOMIC_SEQ_CST) != mine) {
		if (++spins > 64)
			sched_yield();
	}
}

void pcpu__counter_fork_parent(void)
{
	/* Release: a waiting folder's relaxed poll only needs to see it
	 * eventually; it then runs the seq_cst pair again. */
	__atomic_store_n(&fold_stop, 0, __ATOMIC_RELEASE);
}

void pcpu__counter_fork_child(void)
{
	/* Only this thread exists: folders that backed out on the way (their
	 * increment copied, their decrement not) are gone. */
	__atomic_store_n(&fold_busy, fold_depth > 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fold_stop, 0, __ATOMIC_RELAXED);
}

/* --- slot writes -------------------------------------------------------- */

#ifdef PCPU__HAVE_RSEQ_ASM
/*
 * On CPU @cpu, if *@p == @old, store @new, in one restartable sequence.
 * 0 if stored; -1 if the thread is not on @cpu, *@p changed, or the
 * sequence was aborted (the caller starts over with fresh values).
 */
static int rseq_store_if(uint64_t *p, uint64_t old, uint64_t new,
			 unsigned cpu, long off)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		PCPU__RSEQ_ARM
		"1:\n\t"
		"cmpl %[cpu], %%fs:4(%[off])\n\t"	/* still on @cpu? */
		"jnz %l[fail]\n\t"
		"cmpq %[old], (%[p])\n\t"
		"jnz %l[fail]\n\t"
		"movq %[new], (%[p])\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("%l[fail]")
		: /* no outputs */
		: [off] "r" (off), [p] "r" (p), [old] "r" (old),
		  [new] "r" (new), [cpu] "r" (cpu)
		: "memory", "cc", "rax"
		: fail);
	return 0;
fail:
	return -1;
}
#endif

/*
 * The slow path of a slot update: first touch, fold, or a CAS/rseq that
 * the fast path could not finish.  Returns -1 (nothing done) when the
 * thread may not write slots (rseq method, no rseq area).
 */
static int slot_add_slow(struct pcpu_counter *c, int64_t *slots,
			 int64_t delta)
{
	unsigned method = __atomic_load_n(&pcpu__rt.method, __ATOMIC_RELAXED);
	uint64_t *p, x, n;
	int64_t v, carry;
	unsigned cpu;
	int gated = 0;

	if (method != PCPU__METHOD_ATOMIC && pcpu__rseq_ready())
		return -1;
	for (;;) {
		cpu = pcpu__cpu();
		p = slot_at(slots, pcpu__slot_of(cpu));
		/* Relaxed: compared again by the store_if below. */
		x = __atomic_load_n(p, __ATOMIC_RELAXED);
		if (x == 0 && !is_eager(c))
			mark_touched(slots, pcpu__slot_of(cpu));
		/* Unsigned arithmetic: int64 wrap-around, no overflow UB. */
		v = (int64_t)((uint64_t)slot_value(x) + (uint64_t)delta);
		carry = 0;
		if (v >= BATCH || v <= -BATCH) {
			carry = v;
			v = 0;
			/* Through the fork gate before the slot gives the
			 * value up; out after the fold word has it. */
			if (!gated) {
				fold_enter();
				gated = 1;
			}
		}
		n = BIAS + (uint64_t)v;
#ifdef PCPU__HAVE_RSEQ_ASM
		if (method != PCPU__METHOD_ATOMIC) {
			if (rseq_store_if(p, x, n, cpu, pcpu__rt.rseq_off) == 0)
				break;
			continue;
		}
#endif
		if (__atomic_compare_exchange_n(p, &x, n, 0, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			break;
	}
	/* Relaxed: the value moves between two words that readers load
	 * independently; a sum concurrent with the fold may count it twice
	 * or not at all, which the contract allows for in-flight updates. */
	if (carry)
		__atomic_fetch_add(fold_word(slots), carry, __ATOMIC_RELAXED);
	if (gated)
		fold_exit();
	return 0;
}

/* Install per-CPU slots in a DUAL counter; NULL if that cannot be now. */
static int64_t *upgrade(struct pcpu_counter *c, int wait)
{
	int64_t *area, *expected = NULL;

	area = pcpu__alloc_clean(sizeof(int64_t), wait);
	if (!area)
		return NULL;
	/*
	 * Release: publishes the area's clean state (and the allocator's
	 * bookkeeping) to the threads that acquire the pointer.  Acquire on
	 * failure: we use the winner's area, whose state we must see too.
	 */
	if (__atomic_compare_exchange_n(&c->pcpu__slots, &expected, area, 0,
					__ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
		return area;
	pcpu__free_clean(area);
	return expected;
}

PCPU_API void pcpu__counter_add_slow(struct pcpu_counter *c, int64_t delta)
{
	int64_t *slots = load_slots(c);

	if (!slots && !(c->pcpu__owner & PCPU__OWNER_TAGS)) {
		/* An add never fails, so it leaves errno alone (a signal
		 * handler's add must not spoil the interrupted code's). */
		int saved = errno;

		slots = upgrade(c, 0);
		errno = saved;
	}
	if (slots && slot_add_slow(c, slots, delta) == 0)
		return;
	/* No slots, or no rseq for this thread: stay exact on the shared
	 * word.  Relaxed: an atomic RMW loses nothing; readers are
	 * approximate anyway. */
	__atomic_fetch_add(&c->pcpu__shared, delta, __ATOMIC_RELAXED);
}

/* --- init and destroy ---------------------------------------------------- */

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

static int is_leader(const struct pcpu_counter *c)
{
	return !(c->pcpu__owner & PCPU__OWNER_MEMBER);
}

static void free_slots(const struct pcpu_counter *c, int64_t *slots)
{
	if (is_eager(c))
		pcpu_free(slots);
	else
		pcpu__free_clean(slots);
}

PCPU_API int pcpu_counter_init_many(struct pcpu_counter *c, int64_t value,
				    unsigned flags, unsigned n)
{
	uintptr_t tag;
	unsigned i, j, k;
	int64_t *area;

	if (!c || n == 0)
		return -EINVAL;
	switch (flags) {
	case PCPU_COUNTER_DUAL: {
		uintptr_t self = pcpu__tp();

		for (i = 0; i < n; i++)
			init_one(&c[i], value, self, NULL);
		return 0;
	}
	case PCPU_COUNTER_EAGER:
		tag = PCPU__OWNER_EAGER;
		break;
	case PCPU_COUNTER_LAZY:
		tag = PCPU__OWNER_LAZY;
		break;
	default:
		return -EINVAL;
	}
	/* One area per group of up to PCPU_GROUP_MAX. */
	for (i = 0; i < n; i += k) {
		k = n - i < PCPU_GROUP_MAX ? n - i : PCPU_GROUP_MAX;
		if (tag == PCPU__OWNER_EAGER)
			area = pcpu_alloc(k * sizeof(int64_t), sizeof(int64_t));
		else
			area = pcpu__alloc_clean(k * sizeof(int64_t), 1);
		if (!area)
			goto unwind;
		for (j = 0; j < k; j++)
			init_one(&c[i + j], value,
				 tag | (j ? PCPU__OWNER_MEMBER : 0), area + j);
	}
	return 0;
unwind:
	/* Free the groups made so far (untouched, so clean): their leaders
	 * are at multiples of the group size. */
	for (j = 0; j < i; j += PCPU_GROUP_MAX)
		free_slots(&c[j], c[j].pcpu__slots);
	return -ENOMEM;
}

PCPU_API int pcpu_counter_init(struct pcpu_counter *c, int64_t value,
			       unsigned flags)
{
	return pcpu_counter_init_many(c, value, flags, 1);
}

/* Zero @c's fold word and (LAZY/DUAL) touched slots: the area's side
 * words go back clean (alloc.c invariant 5), and LAZY areas entirely. */
static void clean(struct pcpu_counter *c)
{
	int64_t *slots = c->pcpu__slots;

	if (!slots)
		return;
	__atomic_store_n(fold_word(slots), 0, __ATOMIC_RELAXED);
	if (!is_eager(c))
		visit(c, slots, VISIT_CLEAN);
}

PCPU_API void pcpu_counter_destroy(struct pcpu_counter *c)
{
	if (!c)
		return;
	clean(c);
	if (c->pcpu__slots && is_leader(c))
		free_slots(c, c->pcpu__slots);
	c->pcpu__slots = NULL;
}

PCPU_API void pcpu_counter_destroy_many(struct pcpu_counter *c, unsigned n)
{
	unsigned i;

	if (!c)
		return;
	/* Every member cleans its slots before a leader frees the area. */
	for (i = 0; i < n; i++)
		clean(&c[i]);
	for (i = 0; i < n; i++) {
		if (c[i].pcpu__slots && is_leader(&c[i]))
			free_slots(&c[i], c[i].pcpu__slots);
		c[i].pcpu__slots = NULL;
	}
}

/* --- readers and writers ------------------------------------------------- */

/* own + shared + fold, modulo 2^64: the value less what the slots hold. */
static int64_t cheap_part(const struct pcpu_counter *c, const int64_t *slots)
{
	/* Relaxed: each word is read whole; their sum is approximate by
	 * contract (invariant 3 bounds the error). */
	uint64_t v = (uint64_t)__atomic_load_n(&c->pcpu__own, __ATOMIC_RELAXED) +
		     (uint64_t)__atomic_load_n(&c->pcpu__shared, __ATOMIC_RELAXED);

	if (slots)
		v += (uint64_t)__atomic_load_n(fold_word(slots), __ATOMIC_RELAXED);
	return (int64_t)v;
}

static int64_t sum_from(const struct pcpu_counter *c, int64_t *slots,
			int64_t part)
{
	return (int64_t)((uint64_t)part + (uint64_t)visit(c, slots, VISIT_SUM));
}

/*
 * (BATCH - 1) * nr_slots: how far read() can be from the value, at most.
 * Relaxed: the slot count is constant while the caller's counter holds an
 * area (alloc.c invariant 2).
 */
static int64_t loose_bound(void)
{
	return (int64_t)(BATCH - 1) *
	       (int64_t)__atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
}

/*
 * The slots hold at most (BATCH - 1) each, so for a value in int64 range
 * the words' own sum lies within loose_bound() of INT64_MIN..INT64_MAX but
 * may itself be outside, and then it wraps: read near a limit would be
 * 2^64 off (found by tests/fuzz).  Within the bound of a limit, readers
 * use the exact sum instead; elsewhere no wrap is possible and @part is
 * the value less the slots.
 */
static int near_limit(int64_t part)
{
	int64_t far = loose_bound();

	return part > INT64_MAX - far || part < INT64_MIN + far;
}

PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c)
{
	int64_t *slots = load_slots(c), v = cheap_part(c, slots);

	if (slots && pcpu__unlikely(near_limit(v)))
		return sum_from(c, slots, v);
	return v;
}

PCPU_API int64_t pcpu_counter_sum(const struct pcpu_counter *c)
{
	int64_t *slots = load_slots(c), v = cheap_part(c, slots);

	if (!slots)
		return v;
	return sum_from(c, slots, v);
}

static int sign(__int128 d)
{
	return (d > 0) - (d < 0);
}

PCPU_API int pcpu_counter_compare(const struct pcpu_counter *c, int64_t rhs)
{
	int64_t *slots = load_slots(c), part = cheap_part(c, slots);
	__int128 d = (__int128)part - rhs, bound;

	if (!slots)
		return sign(d);		/* exact: no slots */
	if (pcpu__likely(!near_limit(part))) {
		/* Cheap test first against the loosest bound, then count. */
		bound = loose_bound();
		if (d > bound || d < -bound)
			return sign(d);
		bound = (__int128)(BATCH - 1) * visit(c, slots, VISIT_COUNT);
		if (d > bound || d < -bound)
			return sign(d);
	}
	return sign((__int128)sum_from(c, slots, part) - rhs);
}

PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t value)
{
	int64_t *slots = load_slots(c);

	/* Relaxed stores: set is serialized with every other access by the
	 * caller; atomics only keep concurrent *readers* (misuse) race-free. */
	if (slots) {
		visit(c, slots, VISIT_RESET);
		__atomic_store_n(fold_word(slots), 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&c->pcpu__shared, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&c->pcpu__own, value, __ATOMIC_RELAXED);
}

PCPU_API void pcpu_counter_reset(struct pcpu_counter *c)
{
	pcpu_counter_set(c, 0);
	if (!(c->pcpu__owner & PCPU__OWNER_TAGS))
		__atomic_store_n(&c->pcpu__owner, pcpu__tp(), __ATOMIC_RELAXED);
}

PCPU_API int pcpu_counter_share(struct pcpu_counter *c)
{
	if (!c)
		return -EINVAL;
	if (load_slots(c) || (c->pcpu__owner & PCPU__OWNER_TAGS))
		return 0;
	return upgrade(c, 1) ? 0 : -ENOMEM;
}

PCPU_API bool pcpu_counter_is_shared(const struct pcpu_counter *c)
{
	return load_slots(c) != NULL;
}
