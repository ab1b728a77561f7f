/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - counters under concurrent load, each case bounded by
 * wall-clock time (tu_stress_seconds(), 1 s unless PCPU_STRESS_SECONDS).
 *
 *  fresh counters  the main thread initializes a counter and, in the same
 *                  instant, releases NWORKERS threads that add to it at
 *                  once (DUAL: racing to upgrade it) while the owner keeps
 *                  adding; after the round the sum must be exact.  Then a
 *                  new counter, as many rounds as the budget allows.
 *                  Variants: DUAL, EAGER or LAZY (every slot's first
 *                  touch races), threads hopping CPUs or not, at the
 *                  default slot count, at 1 slot (every CPU shares it)
 *                  and at 4096 slots.
 *  signals         a 50 us interval timer's SIGALRM handler adds to the
 *                  counter the main loop adds to: the owner's path and the
 *                  slot path must both lose nothing.
 *
 * Workers record their totals; the main thread asserts after joining.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/time.h>

#define NWORKERS	3
#define MAX_ADDS	2000	/* per thread per round, at most */
#define HOP_EVERY	300	/* adds between CPU hops */

struct round_ctl {
	struct pcpu_counter *c;	/* the round's counter, before round */
	unsigned round;		/* release by main, acquire by workers */
	unsigned done;		/* workers finished with the round */
	int stop;
	bool hop;
};

struct worker {
	struct tu_worker_rec rec;
	struct round_ctl *ctl;
	int64_t round_total;	/* written before done++, read after */
	unsigned long adds;
	uint64_t rng;
	unsigned cursor;	/* CPU hopping position */
} __attribute__((aligned(TU_CACHELINE)));

/* Mostly +-1, sometimes a jump past BATCH either way. */
static int64_t next_delta(uint64_t *rng)
{
	uint64_t r = tu_rand(rng);

	switch (r & 7) {
	case 0:
		return (int64_t)((r >> 8) % (4 * PCPU_COUNTER_BATCH + 1)) -
		       2 * PCPU_COUNTER_BATCH;
	case 1:
	case 2:
		return -1;
	default:
		return 1;
	}
}

/* @n adds to @c; return their total.  Hop CPUs on the way if asked. */
static int64_t add_some(struct pcpu_counter *c, unsigned n, uint64_t *rng,
			bool hop, unsigned *cursor, int *hop_err)
{
	int64_t total = 0, d;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (hop && i % HOP_EVERY == 0 && tu_hop(cursor))
			*hop_err = errno;
		d = next_delta(rng);
		if (d == 1)
			pcpu_counter_inc(c);
		else if (d == -1)
			pcpu_counter_dec(c);
		else
			pcpu_counter_add(c, d);
		total += d;
	}
	return total;
}

static void *worker_fn(void *p)
{
	struct worker *w = p;
	struct round_ctl *ctl = w->ctl;
	unsigned seen = 0, r, n, spins;
	int hop_err = 0;

	for (;;) {
		spins = 0;
		while ((r = __atomic_load_n(&ctl->round, __ATOMIC_ACQUIRE)) ==
		       seen && !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE))
			tu_relax(&spins);
		if (r == seen)
			break;		/* stopped */
		seen = r;
		n = 1 + tu_rand_below(&w->rng, MAX_ADDS);
		w->round_total = add_some(ctl->c, n, &w->rng, ctl->hop,
					  &w->cursor, &hop_err);
		w->adds += n;
		if (hop_err)
			tu_rec_fail(&w->rec, "sched_setaffinity: errno %d",
				    hop_err);
		/* Release: round_total and every add before the count. */
		__atomic_add_fetch(&ctl->done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

struct stress_result {
	unsigned long rounds, owner_adds;
	int64_t lost;		/* |expected - summed|, over all rounds */
	int failed;
	char err[200];
};

#define res_fail(res, ...)						\
	do {								\
		if (!(res)->failed++)					\
			snprintf((res)->err, sizeof((res)->err),	\
				 __VA_ARGS__);				\
	} while (0)

/* One round: fresh counter, everybody adds, check. */
static void one_round(struct round_ctl *ctl, struct worker *w, unsigned flags,
		      bool hop, uint64_t *rng, unsigned *cursor,
		      struct stress_result *res)
{
	struct pcpu_counter c;
	int64_t v0, want, sum, rd;
	unsigned i, n, spins = 0;
	int r, hop_err = 0;

	v0 = (int64_t)(tu_rand(rng) % 2001) - 1000;
	r = pcpu_counter_init(&c, v0, flags);
	if (r) {
		res_fail(res, "round %lu: init = %d", res->rounds, r);
		return;
	}
	ctl->c = &c;
	__atomic_store_n(&ctl->done, 0, __ATOMIC_RELAXED);
	/* Release: the init and ctl->c before any worker's first add. */
	__atomic_add_fetch(&ctl->round, 1, __ATOMIC_RELEASE);

	n = 1 + tu_rand_below(rng, MAX_ADDS);
	want = v0 + add_some(&c, n, rng, hop, cursor, &hop_err);
	res->owner_adds += n;
	if (hop_err)
		res_fail(res, "main: sched_setaffinity errno %d", hop_err);

	while (__atomic_load_n(&ctl->done, __ATOMIC_ACQUIRE) != NWORKERS)
		tu_relax(&spins);
	for (i = 0; i < NWORKERS; i++)
		want += w[i].round_total;

	sum = pcpu_counter_sum(&c);
	rd = pcpu_counter_read(&c);
	res->lost += (int64_t)tu_dist(want, sum);
	if (sum != want)
		res_fail(res, "round %lu: sum %lld, want %lld (lost %lld)",
			 res->rounds, (long long)sum, (long long)want,
			 (long long)(want - sum));
	else if (pcpu_counter_compare(&c, want) != 0)
		res_fail(res, "round %lu: compare(sum) = %d", res->rounds,
			 pcpu_counter_compare(&c, want));
	else if ((rd > want ? rd - want : want - rd) > tu_read_bound())
		res_fail(res, "round %lu: read %lld, sum %lld", res->rounds,
			 (long long)rd, (long long)want);
	else if (!pcpu_counter_is_shared(&c))
		res_fail(res, "round %lu: %d threads added, not shared",
			 res->rounds, NWORKERS);
	pcpu_counter_destroy(&c);
	res->rounds++;
}

static const unsigned policies[] = {
	PCPU_COUNTER_DUAL, PCPU_COUNTER_EAGER, PCPU_COUNTER_LAZY,
};

static const char *policy_name(unsigned flags)
{
	return flags == PCPU_COUNTER_EAGER ? "EAGER" :
	       flags == PCPU_COUNTER_LAZY ? "LAZY" : "DUAL";
}

/*
 * @variant: bit 0 hop CPUs, bits 1-2 the policy (policies[]); @slots 0
 * keeps the default slot count.
 */
static void run_fresh_counters(int variant, unsigned slots)
{
	unsigned flags = policies[variant >> 1];
	bool hop = variant & 1;
	struct worker w[NWORKERS];
	struct stress_result res;
	struct round_ctl ctl;
	struct tu_budget b;
	pthread_t t[NWORKERS];
	uint64_t rng = tu_rand_seed((uint64_t)variant * 1000 + slots);
	unsigned cursor = NWORKERS, i;
	unsigned long adds = 0;

	if (slots)
		ck_assert_int_eq(pcpu_set_nr_slots(slots), 0);
	memset(&ctl, 0, sizeof(ctl));
	memset(&res, 0, sizeof(res));
	memset(w, 0, sizeof(w));
	ctl.hop = hop;
	for (i = 0; i < NWORKERS; i++) {
		w[i].rec.id = i;
		w[i].ctl = &ctl;
		w[i].rng = tu_rand_seed(i + 1 + (uint64_t)variant * 16);
		w[i].cursor = i;
	}
	ck_assert_int_eq(tu_spawn(t, NWORKERS, worker_fn, w, sizeof(w[0])), 0);

	tu_budget_start(&b, tu_stress_seconds());
	while (tu_budget_left(&b) && !res.failed)
		one_round(&ctl, w, flags, hop, &rng, &cursor, &res);

	__atomic_store_n(&ctl.stop, 1, __ATOMIC_RELEASE);
	tu_join(t, NWORKERS);
	if (hop)
		tu_unpin();

	for (i = 0; i < NWORKERS; i++)
		adds += w[i].adds;
	tu_stress_report(res.owner_adds + adds, (long long)res.lost,
			 "fresh %s%s, %u slots (%lu rounds, %lu owner adds, "
			 "%lu worker adds)", policy_name(flags),
			 hop ? " hopping" : "", pcpu_nr_slots(), res.rounds,
			 res.owner_adds, adds);
	ck_assert_msg(res.lost == 0, "%s%s: %lld updates lost",
		      policy_name(flags), hop ? " hopping" : "",
		      (long long)res.lost);
	ck_assert_msg(!res.failed, "%s%s, %u slots: %s", policy_name(flags),
		      hop ? " hopping" : "", pcpu_nr_slots(), res.err);
	for (i = 0; i < NWORKERS; i++)
		ck_assert_msg(!w[i].rec.failed, "worker %u: %s", i,
			      w[i].rec.err);
	ck_assert_uint_gt(res.rounds, 0);
	ck_assert_uint_gt(adds, 0);
	/* Every counter was destroyed: no per-CPU area is left. */
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}

START_TEST(test_fresh_default_slots)
{
	run_fresh_counters(_i, 0);
}
END_TEST

START_TEST(test_fresh_one_slot)
{
	run_fresh_counters(_i, 1);
}
END_TEST

START_TEST(test_fresh_4096_slots)
{
	run_fresh_counters(_i, 4096);
}
END_TEST

/* --- signals ---------------------------------------------------------------- */

static struct pcpu_counter *volatile sig_counter;
static volatile sig_atomic_t sig_adds;

static void on_alarm(int sig)
{
	int saved = errno;	/* as any handler must */

	(void)sig;
	pcpu_counter_add(sig_counter, 1);
	sig_adds++;
	errno = saved;
}

/*
 * Add to @c in a loop while SIGALRM handlers add +1 to it every ~50 us;
 * @c starts at @v0.  The handler interrupts the main loop anywhere,
 * including inside its adds.
 */
static void run_signals(struct pcpu_counter *c, int64_t v0, const char *name)
{
	struct itimerval on = { { 0, 50 }, { 0, 50 } }, off = { { 0, 0 },
								 { 0, 0 } };
	struct sigaction sa, old, ign;
	uint64_t rng = tu_rand_seed(99);
	int64_t loop_total = 0, d, sum;
	unsigned long loop_adds = 0;
	struct tu_budget b;
	unsigned i;
	int handler_adds;

	sig_counter = c;
	sig_adds = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &on, NULL), 0);

	tu_budget_start(&b, tu_stress_seconds() / 2);
	while (tu_budget_left(&b)) {
		for (i = 0; i < 1024; i++) {
			/* Deltas near BATCH fold often on the slot path. */
			d = (tu_rand(&rng) & 1) ? 1 : PCPU_COUNTER_BATCH - 1;
			pcpu_counter_add(c, d);
			loop_total += d;
		}
		loop_adds += 1024;
	}

	/*
	 * Stop the timer; a signal generated before that is delivered on the
	 * way out of setitimer() (this process has one thread), and SIG_IGN
	 * discards any still pending before the old action comes back.
	 */
	setitimer(ITIMER_REAL, &off, NULL);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGALRM, &ign, NULL);
	sigaction(SIGALRM, &old, NULL);
	handler_adds = sig_adds;
	sig_counter = NULL;

	sum = pcpu_counter_sum(c);
	tu_stress_report(loop_adds + (unsigned long long)handler_adds,
			 (long long)(v0 + loop_total + handler_adds - sum),
			 "signals %s (%lu loop adds, %d handler adds)", name,
			 loop_adds, handler_adds);
	ck_assert_msg(sum == v0 + loop_total + handler_adds,
		      "%s: sum %lld, want %lld = %lld + %lld loop + %d handler "
		      "adds (lost %lld)", name, (long long)sum,
		      (long long)(v0 + loop_total + handler_adds),
		      (long long)v0, (long long)loop_total, handler_adds,
		      (long long)(v0 + loop_total + handler_adds - sum));
	ck_assert_msg(handler_adds > 0, "%s: the timer never fired", name);
	ck_assert_uint_gt(loop_adds, 0);
	ck_assert_int_eq(pcpu_counter_compare(c, sum), 0);
}

/* The owner's path: a DUAL counter never shared. */
START_TEST(test_signal_owner)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, 17, PCPU_COUNTER_DUAL), 0);
	run_signals(&c, 17, "DUAL owner");
	ck_assert(!pcpu_counter_is_shared(&c));
	pcpu_counter_destroy(&c);
}
END_TEST

/* The owner's path of a shared counter: its private word stays. */
START_TEST(test_signal_owner_shared)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, -17, PCPU_COUNTER_DUAL), 0);
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	run_signals(&c, -17, "DUAL shared, owner");
	pcpu_counter_destroy(&c);
}
END_TEST

/* The slot path: EAGER. */
START_TEST(test_signal_eager)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, 5, PCPU_COUNTER_EAGER), 0);
	run_signals(&c, 5, "EAGER");
	pcpu_counter_destroy(&c);
}
END_TEST

/* The slot path with on-demand slots: LAZY. */
START_TEST(test_signal_lazy)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, -5, PCPU_COUNTER_LAZY), 0);
	run_signals(&c, -5, "LAZY");
	pcpu_counter_destroy(&c);
}
END_TEST

static void *reset_fn(void *p)
{
	pcpu_counter_reset(p);
	return NULL;
}

/* The slot path of a shared DUAL counter the main thread does not own. */
START_TEST(test_signal_shared_foreign)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, 0, PCPU_COUNTER_DUAL), 0);
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	/* Another thread resets it and so becomes the owner. */
	ck_assert_int_eq(tu_run_in_thread(reset_fn, &c), 0);
	ck_assert_int_eq(pcpu_counter_sum(&c), 0);
	run_signals(&c, 0, "DUAL shared, not owner");
	pcpu_counter_destroy(&c);
}
END_TEST

static Suite *stress_suite(void)
{
	Suite *s = suite_create("stress");
	TCase *tc;

	/* Loop index: bit 0 hop CPUs, bits 1-2 DUAL, EAGER or LAZY. */
	tc = tu_tcase(s, "fresh_default_slots", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_fresh_default_slots, 0, 6);
	tc = tu_tcase(s, "fresh_one_slot", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_fresh_one_slot, 0, 6);
	tc = tu_tcase(s, "fresh_4096_slots", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_fresh_4096_slots, 0, 6);

	tc = tu_tcase(s, "signals", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_signal_owner);
	tcase_add_test(tc, test_signal_owner_shared);
	tcase_add_test(tc, test_signal_eager);
	tcase_add_test(tc, test_signal_lazy);
	tcase_add_test(tc, test_signal_shared_foreign);
	return s;
}

int main(void)
{
	return tu_main(stress_suite());
}
