/* SPDX-License-Identifier: MIT */
/*
 * lib/counter.c - dual-mode counters: ownership, slots, publication, the
 * readers, and the fork repair.
 *
 * A counter's value is
 *
 *     value = own + shared + sum over touched slots s of u[s]
 *
 * own     the owner's word (DUAL).  Only the owner writes it, with one
 *         plain add instruction (pcpu__own_add()), and only while the
 *         counter is in owner mode; it stays part of the value, so an
 *         owner update in flight while another thread shares the counter
 *         lands in a word the share does not touch and is not lost.
 * shared  an atomic word: updates of non-owners while a DUAL upgrade
 *         cannot allocate, and of threads that may not write slots.
 * u[s]    slot s's running total since the last set/reset.
 *
 * Each slot's copy is four words: { u, q, w, dir }, 16-byte aligned; dir
 * is the direction of the slot's last publication (publish_at(), below).
 * P = q + (batch - 1) is the slot's *published* part, and the counter's
 * fold word F (in the meta block of the counter's first granule, alloc.c;
 * a line no other object writes) holds the sum of the published parts:
 *
 *     read() = own + shared + F,   |u[s] - P[s]| <= batch - 1
 *
 * w is 2 * batch - 1 once the slot is touched, 0 before.  The fast path
 * (pcpu__rseq_counter_add(), pcpu__atomic_slot_add()) commits u + delta
 * when (u + delta) - q < w, unsigned, i.e. when the new total stays within
 * batch - 1 of P; otherwise, and on a slot's first touch (w == 0), the
 * slow path here publishes: it stores u = n and q = P_new - (batch - 1)
 * in one step (a 16-byte store at the end of an rseq sequence, or a
 * 16-byte CAS), then adds P_new - P_old to F.  P_new is n, led in the
 * direction n moved by batch - 1 - |delta| when the slot's previous
 * publication went the same way (publish_at() below): a counter that only
 * grows publishes once per 2 * (batch - 1) - |delta| of its total instead
 * of once per batch - 1, and one that swings back and forth by less than
 * the batch stays in the middle of its window.
 *
 * Why this shape.  No value ever moves between two words: an update is
 * one store (or one atomic RMW) to one word, and a publication changes
 * only P and F, which no sum reads.  So a sum counts every completed
 * update exactly once, with no lock, retry or sequence count, and for a
 * counter whose updates are all non-negative successive sums never
 * decrease (each word it reads only grows).  And fork() cannot split an
 * update; it can split a publication between its two writes (P, then F),
 * which only read() sees: the child repairs F from the P of every touched
 * slot of each counter that a thread now gone was publishing, recorded in
 * that thread's fold journal (below).  Nothing on any update path waits,
 * and nothing written per update or per publication is shared by two
 * counters or by the process.
 *
 * Ownership (DUAL).  owner is 0 after init and reset; the first updater
 * claims it with a CAS from 0 (a signal handler that claims first, on the
 * same thread, leaves the same value, so both adds go to own).  A second
 * thread shares the counter: it installs a clean area if the counter has
 * none (release CAS on slots), then sets owner to PCPU__OWNER_SLOTS with
 * a release CAS; adders that see the tag use the slots.  reset() puts
 * owner back to 0 and keeps the area, zeroed: the next share installs
 * nothing.
 *
 * On-demand slots.  LAZY counters and DUAL upgrades take their area from
 * lazy.c (a clean area from the caller's slot's cache, no global lock).
 * A slot's first update marks it in the counter's touch map before its
 * first store; sum, set, reset and destroy walk the map: O(touched).
 * EAGER counters take a pcpu_alloc() area (zeroed everywhere, under the
 * global mutex) and visit every slot.
 *
 * Slot writes.  Under the rseq methods u and q are written only inside
 * rseq sequences on the slot's own index, so plain loads and stores
 * suffice; under the atomic method u only by CAS (8 or 16 bytes).  w is
 * written only 0 -> 2 * batch - 1 by a CAS (idempotent) and back to 0 by
 * destroy.
 *
 * What one hot counter costs at 192 CPUs (on paper; two CPUs cannot show
 * it).  Once shared, the counter's own line (owner, slots) is only read
 * by adders, so it stays in every CPU's cache.  The lines more than one
 * slot writes are the fold word's line (one RMW per publication) and the
 * touch map (two words per slot, once).  With deltas of 1 and the default
 * batch a slot publishes once per 2 * 255 - 1 = 509 of its adds, so 10^6
 * adds write shared lines about 10^6 / 509 = 1965 times whatever the CPU
 * count (bench/run prints the measured figure, "writes to shared lines
 * per million adds"; publishing n itself, as the kernel's fold to zero
 * does, would be once per 255 and 3922 times).  At 192 CPUs adding as
 * fast as they can (about 2 ns an add, 9.6 * 10^10 adds/s in all) that is
 * 1.9 * 10^8 RMWs/s on one line, while a line that moves between CPUs
 * serves about 10^7 RMWs/s (100 ns a transfer across sockets; between
 * the two vCPUs of the machine this was written on, two threads adding
 * 1500 to one byte counter measured about 110 ns of F transfer per
 * publication, against 1.4 ns for the RMW on a line already held): the fold
 * line saturates, and the adders wait on it; the machine then does
 * 10^7 * 509 = 5.1 * 10^9 adds/s in all, some 38 ns an add per CPU
 * instead of 2.  A batch of 2^16 (PCPU_COUNTER_BATCH_LOG2(16)) brings the
 * fold line to 7.3 * 10^5 RMWs/s for deltas of 1, below saturation, and
 * the add back to its private cost, at the price of a read() error bound
 * of (2^16 - 1) * 192 = 1.26 * 10^7; sum() stays exact.  Byte counters
 * need the batch to grow with the delta: adds of 1500 publish once per
 * (2^17 - 2 - 1500) / 1500 = 86 adds at 2^16, 1.1 * 10^9 RMWs/s at 192
 * CPUs (saturated: some 220 ns an add), and once per 22 000 adds at 2^24
 * (4.4 * 10^6 RMWs/s: private cost again, with a read() bound of
 * 2^24 * 192 = 3.2 * 10^9 bytes).  The kernel's answer for this case is
 * a tree of carries (Desnoyers' hierarchical per-CPU counters): slots
 * publish to a group word shared by the CPUs of one cache domain, groups
 * to the root with a larger batch, so the root line sees the rate of the
 * groups, not of the CPUs, and read() stays O(1) with an error that grows
 * with the tree's batches.  libpcpu does not build one: the counters of
 * the workloads it serves (an mm's rss, a tc action's statistics) are hot
 * on the few CPUs that run their owner's threads, not on all of them, and
 * the per-counter batch covers the hot-everywhere counter with one RMW
 * per publication instead of one per tree level.  A tree would cost a group word per
 * cache domain per counter (memory written on the first touch of every
 * domain) and a second RMW per publication.
 *
 * Invariants:
 *  1. Only the owner writes own (after init/set/reset, which the caller
 *     serializes with everything).
 *  2. slots goes from the batch tag to an area at most once per init, and
 *     back only in destroy.  owner gets PCPU__OWNER_SLOTS only after the
 *     area is installed.
 *  3. When no update is in flight: an untouched slot is all zero; a
 *     touched one has w = 2 * batch - 1 and |u - P| <= batch - 1; and
 *     F = sum of P over touched slots.  Hence |sum - read| <= (batch - 1)
 *     * touched slots.
 *  4. A slot is in the touch map (LAZY/DUAL) before its first store; the
 *     map is cleared only with every slot zero.
 *  5. Counters of a LAZY or EAGER init_many group borrow a slice of the
 *     group leader's area (PCPU__OWNER_MEMBER); only the leader frees it.
 *  6. Between its first and last write of a slow-path update, a thread's
 *     fold journal names the counter.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define SLOT_WORDS	4u
#define SLOT_BYTES	(SLOT_WORDS * sizeof(int64_t))
/* How many LAZY/EAGER counters share one per-CPU area in init_many(). */
#define PCPU_GROUP_MAX	(unsigned)(PCPU_ALLOC_MAX / SLOT_BYTES)
#define TAG_LIMIT	((uintptr_t)4096)	/* below: a batch tag */

/* Relaxed, here and in is_leader(): the policy bits never change after
 * init, while the rest of the word may (claim, share). */
static int is_eager(const struct pcpu_counter *c)
{
	return (__atomic_load_n(&c->pcpu__owner, __ATOMIC_RELAXED) &
		PCPU__OWNER_EAGER) != 0;
}

static int is_dual(const struct pcpu_counter *c)
{
	/* Relaxed: the policy bits never change after init. */
	uintptr_t o = __atomic_load_n(&c->pcpu__owner, __ATOMIC_RELAXED);

	return !(o & (PCPU__OWNER_EAGER | PCPU__OWNER_LAZY));
}

/* The counter's area, or NULL (a DUAL counter that has none). */
static int64_t *area_of(const struct pcpu_counter *c)
{
	/* Acquire: pairs with the release CAS in install(); the area's clean
	 * state happens before the caller reads or writes its slots. */
	int64_t *a = __atomic_load_n(&c->pcpu__slots, __ATOMIC_ACQUIRE);

	return (uintptr_t)a < TAG_LIMIT ? NULL : a;
}

static uint64_t *slot_at(int64_t *slots, unsigned s)
{
	return (uint64_t *)pcpu__slot_ptr(slots, s);
}

/* log2 of the batch: from the meta block once there is an area, from the
 * tag in pcpu__slots before. */
static unsigned batch_log2(const struct pcpu_counter *c, const int64_t *slots)
{
	uintptr_t t;

	if (slots)
		/* Relaxed: written before the area was published. */
		return (unsigned)INFO_BATCH_OF(__atomic_load_n(
			&pcpu__meta(slots)[PCPU__META_INFO], __ATOMIC_RELAXED));
	t = (uintptr_t)__atomic_load_n(&c->pcpu__slots, __ATOMIC_RELAXED);
	return t && t < TAG_LIMIT ? (unsigned)t : PCPU__COUNTER_LOG2_MIN;
}

static int64_t *fold_word(const int64_t *slots)
{
	return (int64_t *)&pcpu__meta(slots)[PCPU__META_FOLD];
}

/*
 * Ask for F's line for writing, at the start of a slow path that may end
 * in the RMW on it.  F is the one line every slot of a hot counter
 * writes, so when another CPU published last the line is in its cache,
 * and the locked RMW (a full barrier on x86) would wait out the whole
 * transfer at the end of the path; asked for here, the transfer overlaps
 * the path's own work (journal, loads, commit).  A hint: it orders
 * nothing, and a first touch, which writes the same line's map words,
 * gains from it as well.  Measured with two threads adding 1500 to one
 * counter of batch 2^16 (a publication per 86 adds), one binary with the
 * hint switched on and off, three runs each: the F line costs them about
 * 110 ns per publication (1.90 ns per add over both without the RMW on
 * F, 2.06 with it), and the hint takes that to 1.95-2.01.
 */
static void fold_prefetch(const int64_t *slots)
{
#if defined(__x86_64__)
	/* PREFETCHW: a NOP (0f 0d) on x86-64 CPUs that lack it. */
	__asm__ __volatile__ ("prefetchw %0" : : "m" (*fold_word(slots)));
#else
	__builtin_prefetch(fold_word(slots), 1, 3);
#endif
}

/* --- fold journals -------------------------------------------------------- */

/*
 * A thread's journal names the counters it is updating on the slow path
 * (a stack: a signal handler's update nests in its thread's).  Journals
 * are records in mmap()ed pages that are never unmapped, on one list that
 * only grows (a CAS on its head, once per record: per thread creation,
 * not per update); a thread claims a free record on its first slow path
 * and gives it back at exit (a pthread key destructor).  The child of a
 * fork() walks the list: each record of a thread that did not survive
 * and names a counter gets that counter's F recomputed, then the record
 * is freed.  The forking thread's own record is left alone: an update of
 * its own that fork() interrupted (from a signal handler) resumes in the
 * child and completes there.
 */
#define JOURNAL_DEPTH	16

/*
 * Records are written on every slow-path update (depth and an entry, in
 * and out) and sit next to each other in their page: each on lines of its
 * own (128 bytes: the adjacent-line prefetcher pairs lines), so that two
 * threads' slow paths never write one line.  (On this 2-CPU machine the
 * byte-counter bench did not move with it: there one thread's
 * publication costs some 27-47 ns after a long inline run, of which the
 * RMW on F is 1.4 ns, and two threads' add the transfer of F's line,
 * about 110 ns, which fold_prefetch() overlaps; at 192 CPUs 16 threads
 * would otherwise share 2 KiB.)
 */
struct journal {
	uintptr_t owner;		/* thread pointer, 0 if free */
	struct journal *next;		/* constant once on the list */
	unsigned depth;			/* updates in flight */
	const struct pcpu_counter *c[JOURNAL_DEPTH];
} __attribute__((aligned(128)));

static struct journal *journals;	/* list head */
static __thread struct journal *my_journal
	__attribute__((tls_model("initial-exec")));
static pthread_key_t journal_key;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static int journal_key_ok;

static void journal_thread_exit(void *arg)
{
	struct journal *j = arg;

	/* Release: our last writes to the record before the next claimer's
	 * acquire CAS. */
	__atomic_store_n(&j->depth, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&j->owner, 0, __ATOMIC_RELEASE);
	my_journal = NULL;
}

static void journal_setup(void)
{
	journal_key_ok = pthread_key_create(&journal_key,
					    journal_thread_exit) == 0;
}

static struct journal *journal_claim(void)
{
	uintptr_t self = pcpu__tp(), zero;
	struct journal *j, *page, *head;
	size_t i, n = 4096 / sizeof(struct journal);

	/* Acquire: the records and their next links as pushed. */
	for (j = __atomic_load_n(&journals, __ATOMIC_ACQUIRE); j; j = j->next) {
		zero = 0;
		/* Acquire: the previous owner's release at its exit. */
		if (__atomic_load_n(&j->owner, __ATOMIC_RELAXED) == 0 &&
		    __atomic_compare_exchange_n(&j->owner, &zero, self, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			goto claimed;
	}
	/* A raw mapping, never unmapped (static state of the library, not
	 * counted by the fault-injection build). */
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return NULL;
	/* A page of records, the first one ours; then the page goes on the
	 * list in one push (release: the records' contents first). */
	page[0].owner = self;
	for (i = 0; i + 1 < n; i++)
		page[i].next = &page[i + 1];
	head = __atomic_load_n(&journals, __ATOMIC_RELAXED);
	do
		page[n - 1].next = head;
	while (!__atomic_compare_exchange_n(&journals, &head, page, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	j = page;
claimed:
	/* Without the key the record is never given back (a leak of one
	 * record per thread, and still correct).  Not the fault-injection
	 * wrapper: the journal is the library's static state, and an update
	 * without one is exact all the same. */
	if (journal_key_ok && pthread_setspecific(journal_key, j)) {
		__atomic_store_n(&j->owner, 0, __ATOMIC_RELEASE);
		return NULL;
	}
	my_journal = j;
	return j;
}

/* Enter @c in the journal: returns the depth to give to journal_exit(),
 * or -1 without a journal. */
static int journal_enter(const struct pcpu_counter *c)
{
	struct journal *j = my_journal;
	unsigned d;

	if (pcpu__unlikely(!j) && !(j = journal_claim()))
		return -1;
	d = j->depth;
	/*
	 * The depth first, then the entry: a signal handler that interrupts
	 * us in between uses the next entry.  Signal fences: only this
	 * thread (and a fork child, which sees a prefix of our writes) reads
	 * these; an entry is NULL until it names a counter.
	 */
	j->depth = d + 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (d < JOURNAL_DEPTH)
		__atomic_store_n(&j->c[d], c, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return (int)d;
}

static void journal_exit(int d)
{
	struct journal *j = my_journal;

	if (d < 0)
		return;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (d < JOURNAL_DEPTH)
		__atomic_store_n(&j->c[d], NULL, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	j->depth = (unsigned)d;
}

/* --- slot visits ---------------------------------------------------------- */

enum visit_op { VISIT_SUM, VISIT_COUNT, VISIT_RESET, VISIT_CLEAN, VISIT_REPAIR };

/*
 * Apply @op to every touched slot (every slot for EAGER): sum u, count,
 * zero u and P (set/reset), zero everything and clear the map (destroy),
 * or recompute F (fork child).  O(touched slots) for LAZY and DUAL.
 */
static int64_t visit(const struct pcpu_counter *c, int64_t *slots,
		     enum visit_op op)
{
	/* Relaxed: constant while the counter holds an area. */
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	uint64_t b1 = ((uint64_t)1 << batch_log2(c, slots)) - 1, acc = 0;
	uint64_t *meta = pcpu__meta(slots);
	struct pcpu__touch_iter it;
	int eager = is_eager(c), t;
	unsigned s = 0;

	if (!eager)
		pcpu__touch_begin(&it, meta);
	for (;;) {
		uint64_t *p;

		if (eager) {
			if (s >= nr)
				break;
			t = (int)s++;
		} else if ((t = pcpu__touch_next(&it)) < 0) {
			break;
		}
		p = slot_at(slots, (unsigned)t);
		/*
		 * Relaxed: a reader of independent words (each read whole:
		 * the sum of what they hold is a snapshot by contract), or a
		 * writer serialized with all updates by the caller
		 * (set/reset/destroy, the fork child).
		 */
		switch (op) {
		case VISIT_SUM:
			acc += __atomic_load_n(p, __ATOMIC_RELAXED);
			break;
		case VISIT_COUNT:
			acc++;
			break;
		case VISIT_RESET:
			if (__atomic_load_n(p + 2, __ATOMIC_RELAXED)) {
				__atomic_store_n(p, 0, __ATOMIC_RELAXED);
				__atomic_store_n(p + 1, -b1, __ATOMIC_RELAXED);
				__atomic_store_n(p + 3, 0, __ATOMIC_RELAXED);
			}
			break;
		case VISIT_CLEAN:
			__atomic_store_n(p, 0, __ATOMIC_RELAXED);
			__atomic_store_n(p + 1, 0, __ATOMIC_RELAXED);
			__atomic_store_n(p + 2, 0, __ATOMIC_RELAXED);
			__atomic_store_n(p + 3, 0, __ATOMIC_RELAXED);
			break;
		case VISIT_REPAIR:
			/* A first touch cut short: committed, w not yet set. */
			if (!p[2] && (p[0] || p[1]))
				p[2] = 2 * b1 + 1;
			if (p[2])
				acc += p[1] + b1;
			break;
		}
	}
	if (op == VISIT_CLEAN && !eager)
		pcpu__touch_clear(meta);
	return (int64_t)acc;
}

/* --- the slow path -------------------------------------------------------- */

/* w := 2 * batch - 1 if still 0 (idempotent; any CPU may do it). */
static void set_w(uint64_t *p, uint64_t w)
{
	uint64_t zero = 0;

	/* Relaxed: w orders nothing; the fast path reads it inside its
	 * sequence (or before its CAS) and a stale 0 only sends it here. */
	__atomic_compare_exchange_n(p + 2, &zero, w, 0, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}

/* The atomic method's 16-byte compare-and-swap of u and q. */
static int cas2(uint64_t *p, uint64_t o0, uint64_t o1, uint64_t n0,
		uint64_t n1)
{
#if defined(__x86_64__) && !PCPU__TSAN
	unsigned char ok;

	__asm__ __volatile__ ("lock cmpxchg16b %1\n\tsetz %0"
			      : "=q" (ok), "+m" (*(unsigned __int128 *)p),
				"+a" (o0), "+d" (o1)
			      : "b" (n0), "c" (n1)
			      : "memory", "cc");
	return ok ? 0 : -1;
#elif defined(__aarch64__) && !PCPU__TSAN
	/*
	 * An exclusive pair (Armv8.0): lock-free, so async-signal-safe and
	 * safe across fork().  libatomic's 16-byte CAS here is a table of
	 * locks: a signal handler's publication on a thread interrupted
	 * inside one, or a fork child after another thread held one, waited
	 * forever (the aarch64 run under qemu hung in both).  A mismatch
	 * stores the old pair back: only a successful store-exclusive makes
	 * the pair's load single-copy atomic.  Relaxed, as the x86 case; any
	 * store to either word between the two clears the monitor, and the
	 * loop starts over.
	 */
	uint64_t r0, r1;
	uint32_t busy, ne;

	__asm__ __volatile__ (
		"1:\n\t"
		"ldxp %[r0], %[r1], %[m]\n\t"
		"cmp %[r0], %[o0]\n\t"
		"ccmp %[r1], %[o1], #0, eq\n\t"
		"cset %w[ne], ne\n\t"
		"csel %[r0], %[r0], %[n0], ne\n\t"
		"csel %[r1], %[r1], %[n1], ne\n\t"
		"stxp %w[busy], %[r0], %[r1], %[m]\n\t"
		"cbnz %w[busy], 1b\n\t"
		: [r0] "=&r" (r0), [r1] "=&r" (r1), [busy] "=&r" (busy),
		  [ne] "=&r" (ne), [m] "+Q" (*(unsigned __int128 *)p)
		: [o0] "r" (o0), [o1] "r" (o1), [n0] "r" (n0), [n1] "r" (n1)
		: "cc", "memory");
	return ne ? -1 : 0;
#else
	/* Elsewhere the compiler's 16-byte CAS: async-signal-safe and
	 * fork-safe only where it is lock-free (configure warns). */
	unsigned __int128 o = ((unsigned __int128)o1 << 64) | o0;
	unsigned __int128 n = ((unsigned __int128)n1 << 64) | n0;

	/* Relaxed: as the 8-byte CAS of the fast path. */
	return __atomic_compare_exchange_n((unsigned __int128 *)p, &o, n, 0,
					   __ATOMIC_RELAXED,
					   __ATOMIC_RELAXED) ? 0 : -1;
#endif
}

/*
 * The published part a publication gives slot @p, whose total moves to
 * @n from published part @pold by @delta: n, led by batch - 1 - |delta|
 * (0 for |delta| >= batch - 1) in the direction it moved when the slot's
 * previous publication (its fourth word, 0 before the first) went the
 * same way.  *@dir gets the direction, for publish_dir() once committed.
 *
 * Publishing n itself (lead 0, the kernel's fold to zero) leaves the
 * slot in the middle of its window, so a counter that only grows
 * publishes again after batch - 1 more; published as far ahead as the
 * window allows, it publishes once per 2 * (batch - 1) - |delta|, half
 * the writes to the fold word's line, within the same bound on read()
 * (|u - P| <= batch - 1 holds either way).  But a lead leaves the total
 * |delta| from the window's far edge, and a counter that goes back and
 * forth (a gauge: requests in flight) would then publish at every turn
 * (-1, -1, +1, +1, ...: every second update, whatever the batch).  So a
 * slot leads only when it publishes the same way twice running: a
 * stream in one direction gets the lead from its second publication on,
 * and a turn publishes n itself, which puts the slot back in the middle
 * of its window, where any swing smaller than the batch stays.
 */
enum { DIR_UP = 1, DIR_DOWN = 2 };

static uint64_t publish_at(const uint64_t *p, uint64_t b1, int64_t delta,
			   uint64_t n, uint64_t pold, uint64_t *dir)
{
	uint64_t ad = delta < 0 ? -(uint64_t)delta : (uint64_t)delta, h = 0;

	*dir = (int64_t)(n - pold) < 0 ? DIR_DOWN : DIR_UP;
	/* Relaxed: a hint that only publications write; any value is
	 * correct (it decides the lead, never the bound). */
	if (ad < b1 && __atomic_load_n(p + 3, __ATOMIC_RELAXED) == *dir)
		h = b1 - ad;
	return *dir == DIR_DOWN ? n - h : n + h;
}

/* Record a committed publication's direction (relaxed: see above). */
static void publish_dir(uint64_t *p, uint64_t dir)
{
	if (__atomic_load_n(p + 3, __ATOMIC_RELAXED) != dir)
		__atomic_store_n(p + 3, dir, __ATOMIC_RELAXED);
}

/*
 * Add @delta to the caller's slot, touching and publishing as needed.
 * -1 (nothing done) when the thread may not write slots.
 */
static int slot_update(const struct pcpu_counter *c, int64_t *slots,
		       int64_t delta)
{
	unsigned method = __atomic_load_n(&pcpu__rt.method, __ATOMIC_RELAXED);
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	uint64_t b1 = 0, w = 0, *p, x, q, pw, n, pold, pnew, qnew, carry;
	uint64_t dir = 0;
	unsigned idx, slot;
	int d, r;

	if (method != PCPU__METHOD_ATOMIC && pcpu__rseq_ready())
		return -1;
	fold_prefetch(slots);
	d = journal_enter(c);
	for (;;) {
		idx = pcpu__index();
		if (method != PCPU__METHOD_ATOMIC && idx >= nr) {
			/* Cannot be under the rules of cpu.c; never write a
			 * slot an rseq sequence of another index owns. */
			journal_exit(d);
			return -1;
		}
		slot = pcpu__slot_of(idx);
		p = slot_at(slots, slot);
		/* Relaxed: compared again by the commit below. */
		x = __atomic_load_n(p, __ATOMIC_RELAXED);
		q = __atomic_load_n(p + 1, __ATOMIC_RELAXED);
		pw = __atomic_load_n(p + 2, __ATOMIC_RELAXED);
		if (!pw) {
			/* First touch: the batch from the meta block.  Not on
			 * every publication: the meta block's line is the one
			 * F is on, which the other slots' publications write,
			 * and a read before the RMW would fetch it twice. */
			if (!w) {
				b1 = ((uint64_t)1 << batch_log2(c, slots)) - 1;
				w = 2 * b1 + 1;
			}
			if (x || q) {
				/* Another thread's first touch, cut short. */
				set_w(p, w);
				continue;
			}
			if (!is_eager(c))
				pcpu__touch_mark(pcpu__meta(slots), slot);
			pold = 0;
		} else {
			w = pw;			/* 2 * batch - 1 */
			b1 = pw >> 1;
			pold = q + b1;
		}
		n = x + (uint64_t)delta;
		if (n - (pold - b1) < w) {
			qnew = pold - b1;	/* stays within the batch */
			carry = 0;
		} else {
			pnew = publish_at(p, b1, delta, n, pold, &dir);
			qnew = pnew - b1;
			carry = pnew - pold;
		}
		/*
		 * u and q are compared and stored together, always: comparing
		 * u alone could commit against a q that two publications by
		 * others (+d, then -d) changed meanwhile, and leave the slot
		 * more than a batch from its published part.
		 */
#ifdef PCPU__HAVE_RSEQ_ASM
		if (method != PCPU__METHOD_ATOMIC)
			r = pcpu__rseq_store2_if(p, x, q, n, qnew, idx,
						 pcpu__rt.rseq_off,
						 pcpu__rt.rseq_idx);
		else
#endif
			r = cas2(p, x, q, n, qnew);
		if (r == 0)
			break;
		if (method != PCPU__METHOD_ATOMIC && pcpu__rseq_cpu_id() < 0) {
			/* No area registered any more (a signal handler
			 * during the thread's exit): no sequence can commit;
			 * the caller uses the shared word. */
			journal_exit(d);
			return -1;
		}
	}
	if (!pw)
		set_w(p, w);
	if (dir)
		publish_dir(p, dir);
	/* Relaxed: F is read whole by read(); it orders nothing. */
	if (carry)
		__atomic_fetch_add(fold_word(slots), (int64_t)carry,
				   __ATOMIC_RELAXED);
	journal_exit(d);
	return 0;
}

PCPU_API void pcpu__counter_publish(struct pcpu_counter *c, uint64_t *p,
				   int64_t delta)
{
	int64_t *slots = area_of(c);
	uint64_t b1, x, q, pold, pnew, carry, dir;
	int d;

	/* The atomic method only: any thread may CAS any slot. */
	if (!slots)
		return;
	/* From the slot's w (it is touched: the add passed its window),
	 * not the meta block's line (see slot_update()). */
	b1 = __atomic_load_n(p + 2, __ATOMIC_RELAXED) >> 1;
	if (!b1)
		b1 = ((uint64_t)1 << batch_log2(c, slots)) - 1;
	fold_prefetch(slots);
	d = journal_enter(c);
	for (;;) {
		/* Relaxed: compared again by the CAS. */
		x = __atomic_load_n(p, __ATOMIC_RELAXED);
		q = __atomic_load_n(p + 1, __ATOMIC_RELAXED);
		if (x - q < 2 * b1 + 1)
			break;			/* within the batch again */
		pold = q + b1;
		pnew = publish_at(p, b1, delta, x, pold, &dir);
		carry = pnew - pold;
		if (cas2(p, x, q, x, pnew - b1) == 0) {
			publish_dir(p, dir);
			/* Relaxed: as in slot_update(). */
			__atomic_fetch_add(fold_word(slots), (int64_t)carry,
					   __ATOMIC_RELAXED);
			break;
		}
	}
	journal_exit(d);
}

/* A clean area for one DUAL counter, batch 2^@k; NULL if none now. */
static int64_t *new_area(unsigned k, int wait)
{
	int64_t *area = pcpu__lazy_alloc(SLOT_BYTES, 16, INFO_COUNTER, wait);

	if (area) {
		uint64_t *iw = &pcpu__meta(area)[PCPU__META_INFO];

		/* Relaxed: not yet published (install()'s release CAS). */
		__atomic_store_n(iw, __atomic_load_n(iw, __ATOMIC_RELAXED) |
				 INFO_BATCH(k), __ATOMIC_RELAXED);
	}
	return area;
}

/* Give a DUAL counter its area back, or a new one; NULL if none now. */
static int64_t *install(struct pcpu_counter *c, int wait)
{
	int64_t *area = area_of(c), *expected;

	if (area)
		return area;
	/* Acquire: as area_of(); another thread may have installed one
	 * since, and then we use it (and must not take its pointer for the
	 * batch tag). */
	expected = __atomic_load_n(&c->pcpu__slots, __ATOMIC_ACQUIRE);
	if ((uintptr_t)expected >= TAG_LIMIT)
		return expected;
	area = new_area(expected ? (unsigned)(uintptr_t)expected :
			PCPU__COUNTER_LOG2_MIN, wait);
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
	pcpu__lazy_release(area, wait);
	return expected;
}

/* Switch a DUAL counter to the slots (it has an area). */
static void to_slots(struct pcpu_counter *c)
{
	uintptr_t o = __atomic_load_n(&c->pcpu__owner, __ATOMIC_RELAXED);

	/* Release: the area installed before the tag that sends adders to
	 * it (their acquire fence in pcpu_counter_add()). */
	while (!(o & PCPU__OWNER_SLOTS) &&
	       !__atomic_compare_exchange_n(&c->pcpu__owner, &o,
					    PCPU__OWNER_SLOTS, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

PCPU_API void pcpu__counter_add_slow(struct pcpu_counter *c, int64_t delta)
{
	/* An add never fails, so it leaves errno alone (a signal handler's
	 * add must not spoil the interrupted code's). */
	int saved = errno;
	uintptr_t self = pcpu__tp(), o;
	int64_t *slots;

	/* Acquire: pairs with to_slots()'s release. */
	o = __atomic_load_n(&c->pcpu__owner, __ATOMIC_ACQUIRE);
	if (o == 0) {
		/* No owner: claim it.  Acquire (on failure: a tag set by a
		 * share, whose area we then use); on success ownership orders
		 * nothing but who writes own, which only the owner reads. */
		if (__atomic_compare_exchange_n(&c->pcpu__owner, &o, self, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE) ||
		    o == self) {	/* our own signal handler claimed it */
			pcpu__own_add(&c->pcpu__own, delta);
			return;
		}
	}
	if (o == self) {
		pcpu__own_add(&c->pcpu__own, delta);
		return;
	}
	if (!(o & PCPU__OWNER_SLOTS)) {
		/* A second thread: share.  The upgrade only tries the
		 * allocator (a signal handler may have interrupted its
		 * holder). */
		pcpu__init();
		slots = install(c, 0);
		if (!slots) {
			errno = saved;
			goto shared;
		}
		to_slots(c);
	}
	slots = area_of(c);
	if (slots && slot_update(c, slots, delta) == 0) {
		errno = saved;
		return;
	}
	errno = saved;
shared:
	/* No slots, or no rseq for this thread: stay exact on the shared
	 * word.  Relaxed: an atomic RMW loses nothing; readers are
	 * approximate anyway. */
	__atomic_fetch_add(&c->pcpu__shared, delta, __ATOMIC_RELAXED);
}

/* --- init and destroy ----------------------------------------------------- */

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
	return !(__atomic_load_n(&c->pcpu__owner, __ATOMIC_RELAXED) &
		 PCPU__OWNER_MEMBER);
}

static void free_area(const struct pcpu_counter *c, int64_t *slots)
{
	if (is_eager(c))
		pcpu_free(slots);
	else
		pcpu__lazy_release(slots, 1);
}

PCPU_API int pcpu_counter_init_many(struct pcpu_counter *c, int64_t value,
				    unsigned flags, unsigned n)
{
	unsigned k = PCPU__COUNTER_BATCH_OF(flags), i, j, m;
	uintptr_t tag;
	int64_t *area;

	if (!c || n == 0 || (flags & ~(PCPU__COUNTER_POLICY |
				       PCPU_COUNTER_BATCH_LOG2(0xff))))
		return -EINVAL;
	if (k == 0)
		k = PCPU__COUNTER_LOG2_MIN;
	else if (k < PCPU__COUNTER_LOG2_MIN || k > PCPU__COUNTER_LOG2_MAX)
		return -EINVAL;
	pcpu__init();
	pthread_once(&journal_once, journal_setup);
	switch (flags & PCPU__COUNTER_POLICY) {
	case PCPU_COUNTER_DUAL:
		for (i = 0; i < n; i++)
			init_one(&c[i], value, 0, (int64_t *)(uintptr_t)k);
		return 0;
	case PCPU_COUNTER_EAGER:
		tag = PCPU__OWNER_SLOTS | PCPU__OWNER_EAGER;
		break;
	case PCPU_COUNTER_LAZY:
		tag = PCPU__OWNER_SLOTS | PCPU__OWNER_LAZY;
		break;
	default:
		return -EINVAL;
	}
	/* One area per group of up to PCPU_GROUP_MAX. */
	for (i = 0; i < n; i += m) {
		m = n - i < PCPU_GROUP_MAX ? n - i : PCPU_GROUP_MAX;
		if (tag & PCPU__OWNER_EAGER)
			area = pcpu_alloc(m * SLOT_BYTES, 16);
		else
			area = pcpu__lazy_alloc(m * SLOT_BYTES, 16,
						INFO_COUNTER, 1);
		if (!area)
			goto unwind;
		for (j = 0; j < m; j++) {
			int64_t *s = area + (size_t)j * SLOT_WORDS;
			uint64_t *iw = &pcpu__meta(s)[PCPU__META_INFO];

			/* Relaxed: not yet visible to other threads. */
			__atomic_store_n(iw, __atomic_load_n(iw, __ATOMIC_RELAXED) |
					 INFO_COUNTER | INFO_BATCH(k),
					 __ATOMIC_RELAXED);
			init_one(&c[i + j], value,
				 tag | (j ? PCPU__OWNER_MEMBER : 0), s);
		}
	}
	return 0;
unwind:
	/* Free the groups made so far (untouched, so clean): their leaders
	 * are at multiples of the group size. */
	for (j = 0; j < i; j += PCPU_GROUP_MAX)
		pcpu_counter_destroy_many(&c[j], n - j < PCPU_GROUP_MAX ?
						 n - j : PCPU_GROUP_MAX);
	return -ENOMEM;
}

PCPU_API int pcpu_counter_init(struct pcpu_counter *c, int64_t value,
			       unsigned flags)
{
	return pcpu_counter_init_many(c, value, flags, 1);
}

/* Zero @c's slots, F and batch bits: the area's part for @c goes back
 * clean (lazy.c invariant 1). */
static void clean(struct pcpu_counter *c)
{
	int64_t *slots = area_of(c);
	uint64_t *meta, *iw;

	if (!slots)
		return;
	meta = pcpu__meta(slots);
	iw = &meta[PCPU__META_INFO];
	if (!is_eager(c))
		visit(c, slots, VISIT_CLEAN);
	/* Relaxed: destroy is serialized with every other access. */
	__atomic_store_n(&meta[PCPU__META_FOLD], 0, __ATOMIC_RELAXED);
	__atomic_store_n(iw, __atomic_load_n(iw, __ATOMIC_RELAXED) &
			 ~(INFO_COUNTER | INFO_BATCH(0xff)), __ATOMIC_RELAXED);
}

static void release(struct pcpu_counter *c)
{
	int64_t *slots = area_of(c);

	if (slots && is_leader(c))
		free_area(c, slots);
	/* Relaxed: destroy is serialized with every other access; an atomic
	 * store only keeps a (misusing) concurrent reader race-free. */
	__atomic_store_n(&c->pcpu__slots, NULL, __ATOMIC_RELAXED);
}

PCPU_API void pcpu_counter_destroy(struct pcpu_counter *c)
{
	if (!c)
		return;
	clean(c);
	release(c);
}

PCPU_API void pcpu_counter_destroy_many(struct pcpu_counter *c, unsigned n)
{
	unsigned i;

	if (!c)
		return;
	/* Every member cleans its slots before a leader frees the area. */
	for (i = 0; i < n; i++)
		clean(&c[i]);
	for (i = 0; i < n; i++)
		release(&c[i]);
}

/* --- readers and writers -------------------------------------------------- */

/* own + shared + F, modulo 2^64: the value less what the slots hold
 * beyond their published parts. */
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

/* own + shared + sum of u: the exact value. */
static int64_t exact(const struct pcpu_counter *c, int64_t *slots)
{
	/* Relaxed: as in cheap_part(). */
	uint64_t v = (uint64_t)__atomic_load_n(&c->pcpu__own, __ATOMIC_RELAXED) +
		     (uint64_t)__atomic_load_n(&c->pcpu__shared, __ATOMIC_RELAXED);

	if (slots)
		v += (uint64_t)visit(c, slots, VISIT_SUM);
	return (int64_t)v;
}

/* (batch - 1) * nr_slots: how far read() can be from the value.  Relaxed:
 * the slot count is constant while the counter holds an area. */
static int64_t loose_bound(const struct pcpu_counter *c, const int64_t *slots)
{
	return (int64_t)((((uint64_t)1 << batch_log2(c, slots)) - 1) *
			 __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED));
}

/*
 * Within loose_bound() of a limit the words' own sum may have wrapped
 * (found by tests/fuzz): readers use the exact sum there.
 */
static int near_limit(const struct pcpu_counter *c, const int64_t *slots,
		      int64_t part)
{
	int64_t far = loose_bound(c, slots);

	return part > INT64_MAX - far || part < INT64_MIN + far;
}

PCPU_API int64_t pcpu_counter_read(const struct pcpu_counter *c)
{
	int64_t *slots = area_of(c), v = cheap_part(c, slots);

	if (slots && pcpu__unlikely(near_limit(c, slots, v)))
		return exact(c, slots);
	return v;
}

PCPU_API int64_t pcpu_counter_sum(const struct pcpu_counter *c)
{
	return exact(c, area_of(c));
}

static int sign(__int128 d)
{
	return (d > 0) - (d < 0);
}

PCPU_API int pcpu_counter_compare(const struct pcpu_counter *c, int64_t rhs)
{
	int64_t *slots = area_of(c), part = cheap_part(c, slots);
	__int128 d = (__int128)part - rhs, bound;

	if (!slots)
		return sign(d);		/* exact: no slots */
	if (pcpu__likely(!near_limit(c, slots, part))) {
		/* Cheap test first against the loosest bound, then count. */
		bound = loose_bound(c, slots);
		if (d > bound || d < -bound)
			return sign(d);
		bound = (__int128)((((uint64_t)1 << batch_log2(c, slots)) - 1)) *
			visit(c, slots, VISIT_COUNT);
		if (d > bound || d < -bound)
			return sign(d);
	}
	return sign((__int128)exact(c, slots) - rhs);
}

PCPU_API void pcpu_counter_set(struct pcpu_counter *c, int64_t value)
{
	int64_t *slots = area_of(c);

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
	/* Back to owner mode with no owner; the area (if any) stays, zeroed.
	 * Relaxed: reset is serialized with every other access. */
	if (is_dual(c))
		__atomic_store_n(&c->pcpu__owner, 0, __ATOMIC_RELAXED);
}

PCPU_API int pcpu_counter_share(struct pcpu_counter *c)
{
	if (!c)
		return -EINVAL;
	if (!is_dual(c) || (__atomic_load_n(&c->pcpu__owner, __ATOMIC_ACQUIRE) &
			    PCPU__OWNER_SLOTS))
		return 0;
	pcpu__init();
	if (!install(c, 1))
		return -ENOMEM;
	to_slots(c);
	return 0;
}

PCPU_API bool pcpu_counter_is_shared(const struct pcpu_counter *c)
{
	return (__atomic_load_n(&c->pcpu__owner, __ATOMIC_RELAXED) &
		PCPU__OWNER_SLOTS) != 0;
}

/* --- fork ----------------------------------------------------------------- */

/* The child of fork(), one thread: repair what threads now gone left
 * half done (see "fold journals"), and free their records. */
void pcpu__counter_fork_child(void)
{
	uintptr_t self = pcpu__tp();
	struct journal *j;
	unsigned i, d;

	/* Relaxed: only this thread exists now. */
	for (j = __atomic_load_n(&journals, __ATOMIC_RELAXED); j; j = j->next) {
		if (j->owner == 0 || j->owner == self)
			continue;
		d = j->depth < JOURNAL_DEPTH ? j->depth : JOURNAL_DEPTH;
		for (i = 0; i < d; i++) {
			const struct pcpu_counter *c = j->c[i];
			int64_t *slots = c ? area_of(c) : NULL;

			if (slots)
				*fold_word(slots) = visit(c, slots, VISIT_REPAIR);
			j->c[i] = NULL;
		}
		j->depth = 0;
		j->owner = 0;
	}
}
