/* SPDX-License-Identifier: MIT */
/*
 * test_dual.c - issue 9: DUAL ownership that follows use, reset back to
 * owner mode with the per-CPU slots kept, and the slot encoding at its
 * edges (pcpu/counter.h, lib/counter.c).
 *
 *  cycles       1000 share / other-thread add / reset cycles on one DUAL
 *               counter: exact every cycle, the same slots every cycle, and
 *               no allocation at all after the first (this suite links the
 *               fault-injection library, lib/libpcpu-fi.la: the first
 *               allocation from the second cycle on is armed to fail, and
 *               must never be reached).
 *  handover     made by main, updated by one worker only: that worker owns
 *               it, no upgrade, no area, exact.
 *  claim race   fresh counters claimed at once by two threads while a
 *               signal handler on one of them adds too.
 *  upgrade race three threads on the same fresh counters: the losing
 *               upgrade's area comes back without a wait, none is lost.
 *  monotonic    two adders with publishing-heavy deltas, one reader:
 *               successive sums and reads never decrease, and each sum lies
 *               between the adders' totals before it began and the updates
 *               they had begun when it returned.
 *  edges        deltas at the batch edges and near the INT64 limits for
 *               batches 2^8, 2^16, 2^40: exact sums, bounded reads, the
 *               publication rule (white-box).
 *  bad input    batch log2 outside 8..40 and unknown flag bits: -EINVAL,
 *               the counter's memory untouched.
 *
 * White-box parts read a counter's private fields: pcpu__owner (0: no
 * owner, else the owner's thread pointer or tags) and the four words
 * {u, q, w, dir} of slot s at (char *)pcpu__slots + s * PCPU__UNIT_SIZE
 * (u: the slot's running total since set/reset; P = q + (batch - 1): its
 * published part; w: 2 * batch - 1 once touched, else 0).
 *
 * Workers record, the main thread asserts after joining; every loop is
 * bounded by a count or by wall-clock time.
 */
#include "testutil.h"

#include <limits.h>
#include <signal.h>
#include <sys/syscall.h>

/* The fault-injection hook of lib/libpcpu-fi.la (lib/fault.h). */
void pcpu__fault_arm(unsigned long k);
unsigned long pcpu__fault_seen(void);
int pcpu__fault_fired(void);
long pcpu__fault_live(void);

#define DUAL	PCPU_COUNTER_DUAL
#define EAGER	PCPU_COUNTER_EAGER
#define LAZY	PCPU_COUNTER_LAZY
#define BATCH	PCPU_COUNTER_BATCH

static const char *policy_name(unsigned flags)
{
	flags &= PCPU__COUNTER_POLICY;
	return flags == EAGER ? "EAGER" : flags == LAZY ? "LAZY" : "DUAL";
}

/* --- white-box slot words ------------------------------------------------- */

static const uint64_t *slot_words(const struct pcpu_counter *c, unsigned s)
{
	return (const uint64_t *)(const void *)((const char *)c->pcpu__slots +
						(size_t)s * PCPU__UNIT_SIZE);
}

/* Whether @c has a per-CPU area (else pcpu__slots is a small tag). */
static bool has_area(const struct pcpu_counter *c)
{
	return (uintptr_t)c->pcpu__slots >= 4096;
}

/* Slots with w != 0 (touched since the area was clean). */
static unsigned touched_slots(const struct pcpu_counter *c)
{
	unsigned s, n = pcpu_nr_slots(), t = 0;

	for (s = 0; has_area(c) && s < n; s++)
		t += slot_words(c, s)[2] != 0;
	return t;
}

/*
 * Every touched slot zeroed as reset leaves it (u 0, P 0, w kept at
 * 2 * batch - 1), every untouched one all zero.  Return: slots that are
 * not.
 */
static unsigned bad_reset_slots(const struct pcpu_counter *c, uint64_t b1)
{
	unsigned s, n = pcpu_nr_slots(), bad = 0;

	if (!has_area(c))
		return n;
	for (s = 0; s < n; s++) {
		const uint64_t *p = slot_words(c, s);

		if (p[2] == 0)
			bad += p[0] != 0 || p[1] != 0;
		else
			bad += p[0] != 0 || p[1] + b1 != 0 || p[2] != 2 * b1 + 1;
	}
	return bad;
}

/* --- a persistent worker, driven cycle by cycle ----------------------------- */

/*
 * The worker waits for cmd to move to a new cycle number, runs the
 * cycle's adds on @c and reports done = that number.  One thread for all
 * cycles: a new thread's first update claims a fold journal record and
 * registers things (pthread_setspecific(), a failure point of the
 * fault-injection build), which is per thread, not per cycle.
 */
struct cycle_worker {
	struct pcpu_counter *c;
	unsigned cmd;		/* cycle to run (release by main) */
	unsigned done;		/* cycle done (release by the worker) */
	unsigned quit;
	int64_t added;		/* this cycle's total (read after done) */
	uintptr_t tp;
};

static int64_t cycle_delta(unsigned cycle, unsigned i)
{
	/* Small adds, and now and then one that makes the slot publish. */
	if (i % 50 == 49)
		return 3 * BATCH + (int64_t)(cycle % 11);
	return (int64_t)((cycle + i) % 7) + 1;
}

static void *cycle_worker_fn(void *p)
{
	struct cycle_worker *w = p;
	unsigned spins = 0, cycle = 0, i;
	int64_t added;

	w->tp = pcpu__tp();
	for (;;) {
		unsigned cmd = __atomic_load_n(&w->cmd, __ATOMIC_ACQUIRE);

		if (__atomic_load_n(&w->quit, __ATOMIC_ACQUIRE))
			break;
		if (cmd == cycle) {
			tu_relax(&spins);
			continue;
		}
		cycle = cmd;
		added = 0;
		for (i = 0; i < 200; i++) {
			int64_t d = cycle_delta(cycle, i);

			pcpu_counter_add(w->c, d);
			added += d;
		}
		w->added = added;
		__atomic_store_n(&w->done, cycle, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Run cycle @cycle on the worker and wait for it. */
static void worker_run(struct cycle_worker *w, unsigned cycle)
{
	__atomic_store_n(&w->cmd, cycle, __ATOMIC_RELEASE);
	tu_wait_uint(&w->done, cycle);
}

/* --- 1: reset/share cycles, no allocation after the first ----------------- */

#define NCYCLES	1000

struct cycle_obs {
	unsigned bad;		/* cycles with a wrong observation */
	unsigned first_bad;
	char err[200];
};

#define cycle_fail(o, cyc, ...)						\
	do {								\
		if (!(o)->bad++) {					\
			(o)->first_bad = (cyc);				\
			snprintf((o)->err, sizeof((o)->err), __VA_ARGS__); \
		}							\
	} while (0)

START_TEST(test_reset_share_cycles)
{
	struct cycle_worker w;
	struct cycle_obs o;
	struct pcpu_counter c;
	pthread_t t;
	int64_t *area = NULL, want, sum, rd, bound;
	unsigned cycle, i, touched;
	unsigned long seen = 0;
	long live0 = 0, live1 = 0;
	int fired = 0, via_share;

	memset(&w, 0, sizeof(w));
	memset(&o, 0, sizeof(o));
	w.c = &c;
	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	ck_assert_int_eq(tu_spawn(&t, 1, cycle_worker_fn, &w, sizeof(w)), 0);
	for (cycle = 1; cycle <= NCYCLES; cycle++) {
		/* Odd cycles share explicitly, even ones let the worker's
		 * first add upgrade the counter main owns. */
		via_share = cycle & 1;
		want = 0;
		for (i = 0; i < 10; i++) {
			pcpu_counter_add(&c, (int64_t)i + cycle % 3);
			want += (int64_t)i + cycle % 3;
		}
		if (c.pcpu__owner != pcpu__tp())
			cycle_fail(&o, cycle, "main's adds did not make it the "
				   "owner (owner %#lx)",
				   (unsigned long)c.pcpu__owner);
		if (pcpu_counter_is_shared(&c))
			cycle_fail(&o, cycle, "shared before share/upgrade");
		if (via_share && pcpu_counter_share(&c) != 0)
			cycle_fail(&o, cycle, "share failed");
		worker_run(&w, cycle);
		want += w.added;
		/* Main on the slots now, too. */
		pcpu_counter_add(&c, 5);
		pcpu_counter_add(&c, 2 * BATCH);
		want += 5 + 2 * BATCH;
		if (!pcpu_counter_is_shared(&c))
			cycle_fail(&o, cycle, "not shared after %s",
				   via_share ? "share" : "a second thread's add");
		if (cycle == 1)
			area = c.pcpu__slots;
		else if (c.pcpu__slots != area)
			cycle_fail(&o, cycle, "slots moved: %p, first %p",
				   (void *)c.pcpu__slots, (void *)area);
		sum = pcpu_counter_sum(&c);
		rd = pcpu_counter_read(&c);
		touched = touched_slots(&c);
		bound = (int64_t)(BATCH - 1) * (int64_t)touched;
		if (!has_area(&c))
			cycle_fail(&o, cycle, "no per-CPU area");
		if (sum != want)
			cycle_fail(&o, cycle, "sum %lld, want %lld",
				   (long long)sum, (long long)want);
		if (tu_dist(rd, want) > (uint64_t)bound)
			cycle_fail(&o, cycle, "read %lld, want %lld, %u touched",
				   (long long)rd, (long long)want, touched);
		if (pcpu_counter_compare(&c, want) != 0)
			cycle_fail(&o, cycle, "compare != 0");
		pcpu_counter_reset(&c);
		if (pcpu_counter_is_shared(&c) || c.pcpu__owner != 0 ||
		    c.pcpu__slots != area)
			cycle_fail(&o, cycle, "after reset: shared %d, owner "
				   "%#lx, slots %p (first %p)",
				   pcpu_counter_is_shared(&c),
				   (unsigned long)c.pcpu__owner,
				   (void *)c.pcpu__slots, (void *)area);
		if (pcpu_counter_sum(&c) != 0 || pcpu_counter_read(&c) != 0)
			cycle_fail(&o, cycle, "after reset: sum %lld, read %lld",
				   (long long)pcpu_counter_sum(&c),
				   (long long)pcpu_counter_read(&c));
		if (cycle % 100 == 1 && bad_reset_slots(&c, BATCH - 1))
			cycle_fail(&o, cycle, "after reset: %u slots not "
				   "zeroed", bad_reset_slots(&c, BATCH - 1));
		if (cycle == 1) {
			/* Everything per thread and per counter exists now:
			 * from here on, any allocation fails, and is seen. */
			live0 = pcpu__fault_live();
			pcpu__fault_arm(1);
		}
	}
	seen = pcpu__fault_seen();
	fired = pcpu__fault_fired();
	pcpu__fault_arm(0);
	live1 = pcpu__fault_live();
	__atomic_store_n(&w.quit, 1, __ATOMIC_RELEASE);
	tu_join(&t, 1);

	ck_assert_msg(o.bad == 0, "%u of %u cycles wrong; first, cycle %u: %s",
		      o.bad, NCYCLES, o.first_bad, o.err);
	ck_assert_msg(seen == 0 && !fired, "cycles 2..%u made %lu allocation "
		      "calls (armed failure fired: %d): the kept slots were "
		      "not reused for free", NCYCLES, seen, fired);
	ck_assert_msg(live1 == live0, "resources held changed across the "
		      "cycles: %ld -> %ld", live0, live1);
	ck_assert(w.tp != pcpu__tp());
	tu_expect_area("reset DUAL counter keeps its slots");
	pcpu_counter_destroy(&c);
	tu_expect_no_area("destroyed");
}
END_TEST

/* --- 2: handover ------------------------------------------------------------- */

struct handover {
	struct pcpu_counter *c;
	uintptr_t tp;
	int64_t added;
	bool shared_seen;
};

static void *handover_fn(void *p)
{
	struct handover *h = p;
	unsigned i;

	h->tp = pcpu__tp();
	for (i = 0; i < 100000; i++) {
		int64_t d = i % 1000 == 0 ? 5 * BATCH : (int64_t)(i % 5) - 1;

		pcpu_counter_add(h->c, d);
		h->added += d;
		if (pcpu_counter_is_shared(h->c))
			h->shared_seen = true;
	}
	return NULL;
}

START_TEST(test_handover)
{
	struct pcpu_counter c;
	struct handover h;
	unsigned round;

	for (round = 0; round < 3; round++) {
		memset(&h, 0, sizeof(h));
		h.c = &c;
		ck_assert_int_eq(pcpu_counter_init(&c, 42, DUAL), 0);
		if (round == 2) {
			/* After a reset, too: reset leaves no owner. */
			pcpu_counter_add(&c, 1);
			ck_assert_uint_eq(c.pcpu__owner, pcpu__tp());
			pcpu_counter_reset(&c);
			pcpu_counter_add(&c, 42);	/* set would keep main */
			pcpu_counter_reset(&c);
			pcpu_counter_set(&c, 42);
		}
		ck_assert_uint_eq(c.pcpu__owner, 0);
		/* Readers do not claim. */
		ck_assert_int_eq(pcpu_counter_sum(&c), 42);
		ck_assert_int_eq(pcpu_counter_read(&c), 42);
		ck_assert_int_eq(pcpu_counter_compare(&c, 42), 0);
		ck_assert_uint_eq(c.pcpu__owner, 0);
		ck_assert_int_eq(tu_run_in_thread(handover_fn, &h), 0);
		ck_assert_msg(!h.shared_seen && !pcpu_counter_is_shared(&c),
			      "round %u: the only updater's adds upgraded a "
			      "counter made by main", round);
		ck_assert_msg(c.pcpu__owner == h.tp, "round %u: owner %#lx, "
			      "the worker was %#lx", round,
			      (unsigned long)c.pcpu__owner,
			      (unsigned long)h.tp);
		ck_assert_int_eq(pcpu_counter_sum(&c), 42 + h.added);
		/* Owner mode: everything in the owner's word, read exact. */
		ck_assert_int_eq(pcpu_counter_read(&c), 42 + h.added);
		ck_assert_int_eq(c.pcpu__own, 42 + h.added);
		tu_expect_no_area("handed-over DUAL counter");
		pcpu_counter_destroy(&c);
	}
}
END_TEST

/* --- 3: the claim racing a second thread and a signal handler ------------ */

#define SIG_DELTA	1000

static struct pcpu_counter *sig_counter;
static volatile sig_atomic_t sig_armed;
static unsigned long sig_adds;		/* by the handler; atomic */

static void claim_handler(int sig)
{
	(void)sig;
	/* Relaxed: the flag orders nothing; the counter's own atomics do. */
	if (__atomic_load_n(&sig_armed, __ATOMIC_RELAXED)) {
		pcpu_counter_add(sig_counter, SIG_DELTA);
		__atomic_fetch_add(&sig_adds, 1, __ATOMIC_RELAXED);
	}
}

struct claimer {
	struct pcpu_counter *c;
	struct tu_gate *gate;
	unsigned n;
	pid_t tid;
	unsigned ready;
	int64_t added;
} __attribute__((aligned(TU_CACHELINE)));

static void *claimer_fn(void *p)
{
	struct claimer *a = p;
	unsigned i;

	a->tid = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&a->ready, 1, __ATOMIC_RELEASE);
	tu_gate_wait(a->gate);
	for (i = 0; i < a->n; i++) {
		int64_t d = i % 64 == 0 ? BATCH + 3 : 1;

		pcpu_counter_add(a->c, d);
		a->added += d;
	}
	__atomic_store_n(&a->ready, 2, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(test_claim_race_signal)
{
	struct sigaction sa, old;
	struct claimer a[2];
	struct pcpu_counter c;
	struct tu_gate gate;
	struct tu_budget b;
	pthread_t t[2];
	unsigned round, rounds = 0, i, bad = 0, unshared = 0, spins;
	unsigned long sent = 0, handled, handled_all = 0;
	int64_t want, sum, first_sum = 0, first_want = 0;
	int spawn_err = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = claim_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	sig_counter = &c;
	tu_budget_start(&b, 3.0 * tu_stress_seconds());
	for (round = 0; round < 300 && tu_budget_left(&b); round++) {
		if (pcpu_counter_init(&c, 0, DUAL)) {
			spawn_err = -1;
			break;
		}
		__atomic_store_n(&sig_adds, 0, __ATOMIC_RELAXED);
		tu_gate_init(&gate);
		memset(a, 0, sizeof(a));
		for (i = 0; i < 2; i++) {
			a[i].c = &c;
			a[i].gate = &gate;
			a[i].n = 2000 + 100 * (round % 7);
		}
		spawn_err = tu_spawn(t, 2, claimer_fn, a, sizeof(a[0]));
		if (spawn_err) {
			pcpu_counter_destroy(&c);
			break;
		}
		tu_wait_uint(&a[0].ready, 1);
		tu_wait_uint(&a[1].ready, 1);
		__atomic_store_n(&sig_armed, 1, __ATOMIC_RELAXED);
		/* A signal or two before the gate: the handler may claim. */
		if (round & 1) {
			syscall(SYS_tgkill, getpid(), a[0].tid, SIGUSR1);
			sent++;
		}
		tu_gate_open(&gate);
		spins = 0;
		/*
		 * The next signal only once the last one was handled (or a
		 * while has passed): a signal sent faster than the handler
		 * runs is pending again at every sigreturn, and the thread
		 * never gets back to its loop (seen under rseq-own: the case
		 * outlived its timeout).
		 */
		while (__atomic_load_n(&a[0].ready, __ATOMIC_ACQUIRE) != 2) {
			unsigned long seen = __atomic_load_n(&sig_adds,
							     __ATOMIC_RELAXED);

			syscall(SYS_tgkill, getpid(), a[0].tid, SIGUSR1);
			sent++;
			for (spins = 0; spins < 1000 &&
			     __atomic_load_n(&sig_adds, __ATOMIC_RELAXED) == seen &&
			     __atomic_load_n(&a[0].ready, __ATOMIC_ACQUIRE) != 2;
			     spins++)
				if (spins % 8 == 7)
					sched_yield();
			sched_yield();
		}
		tu_join(t, 2);
		__atomic_store_n(&sig_armed, 0, __ATOMIC_RELAXED);
		handled = __atomic_load_n(&sig_adds, __ATOMIC_RELAXED);
		handled_all += handled;
		want = a[0].added + a[1].added + (int64_t)handled * SIG_DELTA;
		sum = pcpu_counter_sum(&c);
		if (sum != want && !bad++) {
			first_sum = sum;
			first_want = want;
		}
		/* Two threads updated it: the second one's upgrade is retried
		 * by each of its later adds. */
		unshared += !pcpu_counter_is_shared(&c);
		pcpu_counter_destroy(&c);
		rounds++;
	}
	sigaction(SIGUSR1, &old, NULL);
	ck_assert_int_eq(spawn_err, 0);
	ck_assert_uint_ge(rounds, 10);
	ck_assert_msg(bad == 0, "%u of %u rounds inexact; first: sum %lld, "
		      "want %lld", bad, rounds, (long long)first_sum,
		      (long long)first_want);
	ck_assert_msg(unshared == 0, "%u of %u rounds: two threads updated the "
		      "counter, yet it is not shared", unshared, rounds);
	ck_assert_uint_gt(handled_all, 0);
	printf("claim race: %u rounds, %lu signals sent, %lu handler adds\n",
	       rounds, sent, handled_all);
	tu_expect_no_area("all destroyed");
}
END_TEST

/* --- 4: monotonicity --------------------------------------------------------- */

static double mono_seconds(void)
{
	const char *s = getenv("PCPU_MONO_SECONDS");
	double v;

	if (s && *s && (v = strtod(s, NULL)) > 0.0)
		return v > 600.0 ? 600.0 : v;
	/* ~2 s per delta set, over its three policies. */
	return 2.0 * tu_stress_seconds() / 3.0;
}

struct mono_adder {
	struct pcpu_counter *c;
	struct tu_gate *gate;
	int64_t d1, d2;
	unsigned id;
	int64_t begun;		/* updates begun: stored before the add */
	int64_t done;		/* updates done: stored after it */
	unsigned long adds;
} __attribute__((aligned(TU_CACHELINE)));

/*
 * The fences of the begun/done protocol below.  ThreadSanitizer rejects
 * fences; there a seq_cst read-modify-write of a private word stands in
 * (a full barrier on x86-64 as well), which keeps the test building and
 * running under TSan, whose own checks do not rest on this ordering.
 */
#if PCPU__TSAN
static int mono_fence_word;
#endif

static inline void mono_fence(void)
{
#if PCPU__TSAN
	__atomic_fetch_add(&mono_fence_word, 0, __ATOMIC_SEQ_CST);
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static void *mono_adder_fn(void *p)
{
	struct mono_adder *a = p;
	unsigned cursor = a->id;
	int64_t total = 0, d;
	unsigned long i = 0;

	tu_gate_wait(a->gate);
	while (!tu_gate_stopped(a->gate)) {
		d = (i & 1) ? a->d2 : a->d1;
		/*
		 * begun, then the add, then done.  The release fence orders
		 * begun before the add's store (a plain store in an rseq
		 * sequence, or a relaxed CAS), which the reader may see.
		 */
		__atomic_store_n(&a->begun, total + d, __ATOMIC_RELAXED);
		mono_fence();
		pcpu_counter_add(a->c, d);
		total += d;
		__atomic_store_n(&a->done, total, __ATOMIC_RELEASE);
		if ((++i & 4095) == 0 && tu_hop(&cursor))
			break;
	}
	a->adds = i;
	return NULL;
}

struct mono_reader {
	struct pcpu_counter *c;
	struct mono_adder *adders;
	unsigned long sums;
	unsigned sum_decreases, read_decreases, too_big, too_small;
	int64_t first_bad[3];	/* before, sum, after */
};

/* One sum between the adders' totals; returns it, *@rd a read after. */
static int64_t mono_check(struct mono_reader *r, int64_t *rd)
{
	struct mono_adder *a = r->adders;
	int64_t lo, hi, s;

	/* Acquire: the adds counted in done happened before the sum. */
	lo = __atomic_load_n(&a[0].done, __ATOMIC_ACQUIRE) +
	     __atomic_load_n(&a[1].done, __ATOMIC_ACQUIRE);
	s = pcpu_counter_sum(r->c);
	/* Acquire fence: an add whose store the sum saw had its begun
	 * total stored before that store (the adder's release fence). */
	mono_fence();
	hi = __atomic_load_n(&a[0].begun, __ATOMIC_RELAXED) +
	     __atomic_load_n(&a[1].begun, __ATOMIC_RELAXED);
	*rd = pcpu_counter_read(r->c);
	r->sums++;
	if (s < lo || s > hi) {
		if (!r->too_small && !r->too_big) {
			r->first_bad[0] = lo;
			r->first_bad[1] = s;
			r->first_bad[2] = hi;
		}
		if (s < lo)
			r->too_small++;
		else
			r->too_big++;
	}
	return s;
}

static void *mono_reader_fn(void *p)
{
	struct mono_reader *r = p;
	struct mono_adder *a = r->adders;
	int64_t last_sum = INT64_MIN, last_read = INT64_MIN, s, rd;

	tu_gate_wait(a[0].gate);
	while (!tu_gate_stopped(a[0].gate)) {
		s = mono_check(r, &rd);
		if (s < last_sum)
			r->sum_decreases++;
		if (rd < last_read)
			r->read_decreases++;
		last_sum = s;
		last_read = rd;
	}
	return NULL;
}

START_TEST(test_monotonic)
{
	/* _i: delta set (2) x policy (3). */
	static const unsigned pol[3] = { DUAL, LAZY, EAGER };
	unsigned flags = pol[_i % 3], set = (unsigned)_i / 3, i;
	struct mono_adder a[2];
	struct mono_reader r;
	struct pcpu_counter c;
	struct tu_gate gate;
	struct tu_budget b;
	pthread_t t[3];
	int64_t total, sum;
	char what[64];

	if (set == 1)
		flags |= PCPU_COUNTER_BATCH_LOG2(16);
	snprintf(what, sizeof(what), "%s, %s", policy_name(flags),
		 set ? "batch 2^16, deltas 1 and 1500" :
		 "batch 2^8, deltas 1 and 97");
	ck_assert_int_eq(pcpu_counter_init(&c, 0, flags), 0);
	if ((flags & PCPU__COUNTER_POLICY) == DUAL) {
		/* Main owns it, with a value in its word; then shared. */
		pcpu_counter_add(&c, 0);
		ck_assert_int_eq(pcpu_counter_share(&c), 0);
	}
	tu_gate_init(&gate);
	memset(a, 0, sizeof(a));
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 2; i++) {
		a[i].c = &c;
		a[i].gate = &gate;
		a[i].id = i;
		a[i].d1 = 1;
		a[i].d2 = set ? 1500 : 97;
	}
	r.c = &c;
	r.adders = a;
	ck_assert_int_eq(tu_spawn(t, 2, mono_adder_fn, a, sizeof(a[0])), 0);
	ck_assert_int_eq(tu_spawn(&t[2], 1, mono_reader_fn, &r, sizeof(r)), 0);
	tu_gate_open(&gate);
	tu_budget_start(&b, mono_seconds());
	while (tu_budget_left(&b))
		usleep(10000);
	tu_gate_stop(&gate);
	tu_join(t, 3);
	total = a[0].done + a[1].done;
	sum = pcpu_counter_sum(&c);
	tu_stress_report(a[0].adds + a[1].adds, (long long)(total - sum),
			 "dual monotonic %s", what);
	ck_assert_msg(sum == total, "%s: final sum %lld, want %lld", what,
		      (long long)sum, (long long)total);
	ck_assert_uint_gt(r.sums, 0);
	ck_assert_msg(r.sum_decreases == 0, "%s: %u of %lu successive sums "
		      "decreased", what, r.sum_decreases, r.sums);
	ck_assert_msg(r.read_decreases == 0, "%s: %u of %lu successive reads "
		      "decreased", what, r.read_decreases, r.sums);
	ck_assert_msg(r.too_small == 0 && r.too_big == 0, "%s: of %lu sums, %u "
		      "below the totals done before, %u above the updates "
		      "begun after; first: %lld <= %lld <= %lld fails", what,
		      r.sums, r.too_small, r.too_big,
		      (long long)r.first_bad[0], (long long)r.first_bad[1],
		      (long long)r.first_bad[2]);
	pcpu_counter_destroy(&c);
}
END_TEST

/* --- 5: deltas at the batch edges and near the INT64 limits -------------- */

/* What edge_check() saw of each slot last time. */
struct edge_state {
	uint64_t u[4096], q[4096], w[4096], d[4096];
};

/*
 * White-box check after one add of @d: exactly the slot that took it
 * changed u by @d (unless it went to the owner word); that slot kept its
 * published part if the new total stayed within batch - 1 of it, else
 * published the new total, led by batch - 1 - |d| the way it moved if it
 * published that way last time too; every touched slot within batch - 1
 * of its published part; read() == own + shared + published total (or
 * the exact sum near the limits).  Return: a message, or NULL.
 */
static const char *edge_check(const struct pcpu_counter *c, uint64_t b1,
			      struct edge_state *st, int64_t d, bool slots)
{
	static char msg[200];
	unsigned s, n = pcpu_nr_slots(), changed = 0;
	uint64_t pub = 0, held = 0, own, sh, lead, dir;
	uint64_t ad = d < 0 ? -(uint64_t)d : (uint64_t)d;
	int64_t rd, sum;

	if (n > 4096)
		return "too many slots for edge_check";
	for (s = 0; slots && s < n; s++) {
		const uint64_t *p = slot_words(c, s);
		uint64_t u = p[0], q = p[1], w = p[2];
		uint64_t pold = st->q[s] + b1;

		if (!w) {
			if (u || q) {
				snprintf(msg, sizeof(msg), "slot %u untouched "
					 "but u %#llx q %#llx", s,
					 (unsigned long long)u,
					 (unsigned long long)q);
				return msg;
			}
			continue;
		}
		if (w != 2 * b1 + 1) {
			snprintf(msg, sizeof(msg), "slot %u: w %#llx", s,
				 (unsigned long long)w);
			return msg;
		}
		if (u != st->u[s]) {
			changed++;
			if (u - st->u[s] != (uint64_t)d) {
				snprintf(msg, sizeof(msg), "slot %u moved by "
					 "%lld, the add was %lld", s,
					 (long long)(u - st->u[s]),
					 (long long)d);
				return msg;
			}
			/* A slot untouched before: published part 0. */
			if (!st->w[s])
				pold = 0;
			/* A publication leads u in the direction it moved by
			 * batch - 1 - |d| (0 for |d| >= batch - 1) if the
			 * slot's previous publication went that way too
			 * (dir: 1 up, 2 down), and records the direction. */
			dir = (int64_t)(u - pold) < 0 ? 2 : 1;
			lead = ad < b1 && dir == st->d[s] ? b1 - ad : 0;
			if (dir == 2)
				lead = -lead;
			if (u - pold + b1 <= 2 * b1) {
				if (q + b1 != pold) {
					snprintf(msg, sizeof(msg), "slot %u: "
						 "%lld within the batch of P "
						 "%lld, yet P is now %lld", s,
						 (long long)u, (long long)pold,
						 (long long)(q + b1));
					return msg;
				}
			} else if (q + b1 != u + lead || p[3] != dir) {
				snprintf(msg, sizeof(msg), "slot %u: u %lld "
					 "beyond the batch of P %lld, P now "
					 "%lld, not u + %lld (direction %llu, "
					 "recorded %llu)", s, (long long)u,
					 (long long)pold, (long long)(q + b1),
					 (long long)lead,
					 (unsigned long long)dir,
					 (unsigned long long)p[3]);
				return msg;
			}
		}
		if (u - (q + b1) + b1 > 2 * b1) {
			snprintf(msg, sizeof(msg), "slot %u: u %lld, P %lld: "
				 "more than batch - 1 apart", s, (long long)u,
				 (long long)(q + b1));
			return msg;
		}
		pub += q + b1;
		held += u;
		st->u[s] = u;
		st->q[s] = q;
		st->w[s] = w;
		st->d[s] = p[3];
	}
	if (slots && d != 0 && changed > 1) {
		snprintf(msg, sizeof(msg), "one add changed %u slots", changed);
		return msg;
	}
	own = (uint64_t)c->pcpu__own;
	sh = (uint64_t)c->pcpu__shared;
	sum = pcpu_counter_sum(c);
	rd = pcpu_counter_read(c);
	if (sum != (int64_t)(own + sh + held)) {
		snprintf(msg, sizeof(msg), "sum %lld != own + shared + sum of u "
			 "%lld", (long long)sum, (long long)(own + sh + held));
		return msg;
	}
	if (rd != (int64_t)(own + sh + pub) && rd != sum) {
		snprintf(msg, sizeof(msg), "read %lld is neither own + shared + "
			 "published %lld nor the sum", (long long)rd,
			 (long long)(own + sh + pub));
		return msg;
	}
	return NULL;
}

/* Adds from a helper thread, one at a time, driven by main. */
struct edge_helper {
	struct pcpu_counter *c;
	int64_t d;
	unsigned cmd, done, quit;
};

static void *edge_helper_fn(void *p)
{
	struct edge_helper *h = p;
	unsigned spins = 0, seen = 0, cmd;

	while (!__atomic_load_n(&h->quit, __ATOMIC_ACQUIRE)) {
		cmd = __atomic_load_n(&h->cmd, __ATOMIC_ACQUIRE);
		if (cmd == seen) {
			tu_relax(&spins);
			continue;
		}
		seen = cmd;
		pcpu_counter_add(h->c, h->d);
		__atomic_store_n(&h->done, seen, __ATOMIC_RELEASE);
	}
	return NULL;
}

START_TEST(test_edge_batches)
{
	/* _i: batch log2 (8, 16, 40) x policy (DUAL shared, LAZY, EAGER). */
	static const unsigned logs[3] = { 8, 16, 40 };
	static const unsigned pol[3] = { DUAL, LAZY, EAGER };
	unsigned k = logs[_i / 3], flags = pol[_i % 3], i, e, step = 0;
	const int64_t b = INT64_C(1) << k, b1 = b - 1;
	const int64_t rel[] = {
		1, b1 - 1, b1, b, b + 1, 2 * b1, 2 * b1 + 1, 2 * b, 2 * b + 1,
		3 * b, b / 2, INT64_C(1) << 41, INT64_C(1) << 61,
	};
	const int64_t starts[3] = { 0, INT64_MAX - 8 * b, INT64_MIN + 8 * b };
	struct edge_state *st;
	struct edge_helper h;
	struct pcpu_counter c;
	pthread_t t;
	int64_t want, d, v;
	const char *err;
	char what[96];
	bool slots = (flags != DUAL);

	st = calloc(1, sizeof(*st));
	ck_assert_ptr_nonnull(st);
	memset(&h, 0, sizeof(h));
	h.c = &c;
	ck_assert_int_eq(tu_spawn(&t, 1, edge_helper_fn, &h, sizeof(h)), 0);
	for (e = 0; e < 3; e++) {
		memset(st, 0, sizeof(*st));
		want = starts[e];
		ck_assert_int_eq(pcpu_counter_init(&c, want,
				 flags | PCPU_COUNTER_BATCH_LOG2(k)), 0);
		if (flags == DUAL) {
			pcpu_counter_add(&c, 0);	/* main owns it */
			ck_assert_int_eq(pcpu_counter_share(&c), 0);
			slots = true;
		}
		for (i = 0; i < 2 * (sizeof(rel) / sizeof(rel[0])); i++) {
			unsigned r;

			for (r = 0; r < 2; r++) {
				/*
				 * +d then -d from main, and the same from
				 * the helper: every edge on a touched slot,
				 * both signs.  Near the limits only moves
				 * toward zero keep the value in range: the
				 * +d there comes second.
				 */
				d = rel[i / 2] * ((i & 1) ? -1 : 1);
				if (e == 1 && d > 0)
					d = -d;
				if (e == 2 && d < 0)
					d = -d;
				v = r ? -d : d;
				if (((step++) & 1) == 0) {
					pcpu_counter_add(&c, v);
				} else {
					h.d = v;
					__atomic_store_n(&h.cmd, step,
							 __ATOMIC_RELEASE);
					tu_wait_uint(&h.done, step);
				}
				want = (int64_t)((uint64_t)want + (uint64_t)v);
				snprintf(what, sizeof(what), "%s, batch 2^%u, "
					 "from %lld, add %lld",
					 policy_name(flags), k,
					 (long long)starts[e], (long long)v);
				err = edge_check(&c, (uint64_t)b1, st, v, slots);
				tu_check(!err, "%s: %s", what, err);
				tu_check(pcpu_counter_sum(&c) == want, "%s: sum "
					 "%lld, want %lld", what,
					 (long long)pcpu_counter_sum(&c),
					 (long long)want);
				tu_check(tu_dist(pcpu_counter_read(&c), want) <=
					 (uint64_t)b1 * touched_slots(&c),
					 "%s: read %lld, want %lld", what,
					 (long long)pcpu_counter_read(&c),
					 (long long)want);
				tu_check(pcpu_counter_compare(&c, want) == 0,
					 "%s: compare(want) != 0", what);
				if (want != INT64_MIN)
					tu_check(pcpu_counter_compare(&c,
						 want - 1) == 1, "%s: compare"
						 "(want - 1) != 1", what);
				if (want != INT64_MAX)
					tu_check(pcpu_counter_compare(&c,
						 want + 1) == -1, "%s: compare"
						 "(want + 1) != -1", what);
			}
		}
		/* Right at the limit: the value itself reaches it. */
		v = e == 1 ? INT64_MAX - want : e == 2 ? INT64_MIN - want : b;
		pcpu_counter_add(&c, v);
		want = (int64_t)((uint64_t)want + (uint64_t)v);
		ck_assert_int_eq(pcpu_counter_sum(&c), want);
		ck_assert_int_eq(pcpu_counter_compare(&c, want), 0);
		ck_assert(tu_dist(pcpu_counter_read(&c), want) <=
			  (uint64_t)b1 * touched_slots(&c));
		pcpu_counter_destroy(&c);
	}
	__atomic_store_n(&h.quit, 1, __ATOMIC_RELEASE);
	tu_join(&t, 1);
	free(st);
	tu_expect_no_area("all destroyed");
}
END_TEST

/* --- 6: bad input --------------------------------------------------------- */

START_TEST(test_bad_batch)
{
	const unsigned bad[] = {
		PCPU_COUNTER_BATCH_LOG2(1), PCPU_COUNTER_BATCH_LOG2(7),
		PCPU_COUNTER_BATCH_LOG2(41), PCPU_COUNTER_BATCH_LOG2(64),
		PCPU_COUNTER_BATCH_LOG2(255), 1u << 16, 1u << 20, 1u << 31,
		3, 0x10, 0x80,
	};
	const unsigned pol[3] = { DUAL, LAZY, EAGER };
	struct pcpu_counter c[3], pattern[3];
	unsigned i, p, k;

	memset(pattern, 0xa5, sizeof(pattern));
	for (p = 0; p < 3; p++)
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			unsigned f = pol[p] | bad[i];

			memcpy(c, pattern, sizeof(c));
			ck_assert_msg(pcpu_counter_init(c, 1, f) == -EINVAL,
				      "init flags %#x: not -EINVAL", f);
			ck_assert_msg(memcmp(c, pattern, sizeof(c)) == 0,
				      "init flags %#x: the counter was written",
				      f);
			ck_assert_msg(pcpu_counter_init_many(c, 1, f, 3) ==
				      -EINVAL, "init_many flags %#x: not "
				      "-EINVAL", f);
			ck_assert_msg(memcmp(c, pattern, sizeof(c)) == 0,
				      "init_many flags %#x: a counter was "
				      "written", f);
		}
	tu_expect_no_area("after failed inits");
	/* The ends of the range work, for every policy. */
	for (p = 0; p < 3; p++)
		for (k = PCPU__COUNTER_LOG2_MIN; k <= PCPU__COUNTER_LOG2_MAX;
		     k += PCPU__COUNTER_LOG2_MAX - PCPU__COUNTER_LOG2_MIN) {
			ck_assert_int_eq(pcpu_counter_init(c, 5, pol[p] |
					 PCPU_COUNTER_BATCH_LOG2(k)), 0);
			pcpu_counter_add(c, 7);
			ck_assert_int_eq(pcpu_counter_sum(c), 12);
			pcpu_counter_destroy(c);
		}
	tu_expect_no_area("after the valid ones");
}
END_TEST

/* --- upgrade races: the loser's area goes back without waiting --------- */

/*
 * Three threads update the same fresh DUAL counters in the same order:
 * the first claims each counter, the other two upgrade it at once, and
 * the one whose install loses gives its area back from the update path,
 * where it must not wait for the allocator mutex (lib/lazy.c, invariant
 * 5): to its slot's stack, or, when that is full (each round starts with
 * the stacks full of the previous round's areas), to the orphan list.
 * Nothing may be lost: every sum exact, and at the end every area that
 * is not in use is back (pcpu_set_nr_slots() refuses with EBUSY while an
 * area is live that no stack or list holds).
 */
#define URACE_N		1000
#define URACE_SECONDS	1

struct urace {
	struct pcpu_counter *c;
	pthread_barrier_t *start;
};

static void *urace_worker(void *arg)
{
	struct urace *u = arg;
	int i;

	pthread_barrier_wait(u->start);
	for (i = 0; i < URACE_N; i++)
		pcpu_counter_inc(&u->c[i]);
	return NULL;
}

START_TEST(test_upgrade_race)
{
	struct pcpu_counter *c = calloc(URACE_N, sizeof(*c));
	pthread_barrier_t start;
	struct urace u = { c, &start };
	pthread_t t[3];
	unsigned rounds = 0, bad = 0, unshared = 0;
	time_t end = time(NULL) + URACE_SECONDS;
	int i;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 3), 0);
	/* Loop 1: one slot, so that the three threads share its stack and
	 * its lock word, and a loser finds it taken or full. */
	if (_i == 1)
		ck_assert_int_eq(pcpu_set_nr_slots(1), 0);
	do {
		for (i = 0; i < URACE_N; i++)
			ck_assert_int_eq(pcpu_counter_init(&c[i], 0, DUAL), 0);
		for (i = 0; i < 3; i++)
			ck_assert_int_eq(pthread_create(&t[i], NULL,
							urace_worker, &u), 0);
		for (i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		for (i = 0; i < URACE_N; i++) {
			if (pcpu_counter_sum(&c[i]) != 3)
				bad++;
			if (!pcpu_counter_is_shared(&c[i]))
				unshared++;
			pcpu_counter_destroy(&c[i]);
		}
		rounds++;
	} while (time(NULL) < end);
	pthread_barrier_destroy(&start);
	free(c);
	ck_assert_msg(bad == 0, "%u sums of 3 updates wrong in %u rounds",
		      bad, rounds);
	/* An upgrade that finds no clean area without waiting leaves the
	 * counter on its shared word (pcpu_counter_add(3)): counted, not
	 * asserted. */
	fprintf(stderr, "upgrade race (%u slots): %u rounds, %u of %u "
		"counters still on the shared word\n", pcpu_nr_slots(), rounds,
		unshared, rounds * URACE_N);
	/* Every area is back where the allocator can count it. */
	ck_assert_int_eq(pcpu_set_nr_slots(pcpu_nr_slots()), 0);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

static Suite *dual_suite(void)
{
	Suite *s = suite_create("dual");
	TCase *tc;

	tc = tu_tcase(s, "ownership", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_reset_share_cycles);
	tcase_add_test(tc, test_handover);
	tcase_add_test(tc, test_claim_race_signal);
	tcase_add_loop_test(tc, test_upgrade_race, 0, 2);

	tc = tu_tcase(s, "monotonic", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_monotonic, 0, 6);

	tc = tu_tcase(s, "encoding", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_edge_batches, 0, 9);
	tcase_add_test(tc, test_bad_batch);
	return s;
}

int main(void)
{
	return tu_main(dual_suite());
}
