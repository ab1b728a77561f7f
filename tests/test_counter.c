/* SPDX-License-Identifier: MIT */
/*
 * test_counter.c - pcpu/counter.h: every function, every policy (DUAL,
 * EAGER, LAZY).  test_lazy.c adds what only LAZY and upgraded DUAL counters
 * promise (untouched slots stay untouched, clean reuse, signals, churn).
 *
 * Expected values are computed alongside the updates, never written in.
 * "Slot values" are made by a helper thread pinned in turn to each allowed
 * CPU, adding less than PCPU_COUNTER_BATCH only where pcpu_this_slot() is
 * a slot it has not added to yet (with mm_cid slots, pcpu_slot_index(),
 * the slot need not follow the CPU): those updates stay in the slots, so
 * pcpu_counter_read() (owner word + shared + published total) and
 * pcpu_counter_sum() differ and compare() must sum.
 *
 * DUAL ownership follows use (pcpu/counter.h): after init or reset a DUAL
 * counter has no owner; its first updater becomes the owner, and the
 * first update from a second thread upgrades it.  So a test that wants a
 * non-owner's update to upgrade has the main thread update first.
 */
#include "testutil.h"

#include <limits.h>

#define DUAL	PCPU_COUNTER_DUAL
#define EAGER	PCPU_COUNTER_EAGER
#define LAZY	PCPU_COUNTER_LAZY

/* Loop tests over every policy: _i indexes this. */
static const unsigned policies[] = { DUAL, EAGER, LAZY };
#define N_POLICIES	3
/* ... or over the policies that are per-CPU from init. */
static const unsigned percpu_policies[] = { EAGER, LAZY };
#define N_PERCPU	2

static const char *policy_name(unsigned flags)
{
	return flags == EAGER ? "EAGER" : flags == LAZY ? "LAZY" : "DUAL";
}

#define dist	tu_dist

/* sum == want exactly, read within the documented bound, compare == 0. */
static void expect_value(const struct pcpu_counter *c, int64_t want,
			 const char *what)
{
	int64_t sum = pcpu_counter_sum(c), rd = pcpu_counter_read(c);

	ck_assert_msg(sum == want, "%s: sum %lld, want %lld", what,
		      (long long)sum, (long long)want);
	ck_assert_msg(dist(rd, want) <= (uint64_t)tu_read_bound(),
		      "%s: read %lld, sum %lld: farther than %lld", what,
		      (long long)rd, (long long)want,
		      (long long)tu_read_bound());
	ck_assert_msg(pcpu_counter_compare(c, want) == 0,
		      "%s: compare(%lld) = %d, want 0", what, (long long)want,
		      pcpu_counter_compare(c, want));
}

/* compare() against every rhs around [read, sum], and far away. */
static void expect_compare_window(const struct pcpu_counter *c, int64_t want,
				  const char *what)
{
	int64_t rd = pcpu_counter_read(c), lo, hi, rhs, far;
	int got;

	lo = rd < want ? rd : want;
	hi = rd < want ? want : rd;
	for (rhs = lo - 3; rhs <= hi + 3; rhs++) {
		got = pcpu_counter_compare(c, rhs);
		tu_check(got == tu_sign(want - rhs), "%s: value %lld, read "
			 "%lld: compare(%lld) = %d, want %d", what,
			 (long long)want, (long long)rd, (long long)rhs, got,
			 tu_sign(want - rhs));
	}
	far = 4 * tu_read_bound() + 1000;
	ck_assert_int_eq(pcpu_counter_compare(c, want - far), 1);
	ck_assert_int_eq(pcpu_counter_compare(c, want + far), -1);
}

/* --- helper threads ---------------------------------------------------- */

/* Add @delta @times times from a thread that is not the owner. */
struct add_job {
	struct pcpu_counter *c;
	int64_t delta;
	unsigned times;
	int64_t added;
};

static void *add_job_fn(void *p)
{
	struct add_job *j = p;
	unsigned i;

	for (i = 0; i < j->times; i++) {
		if (j->delta == 1)
			pcpu_counter_inc(j->c);
		else if (j->delta == -1)
			pcpu_counter_dec(j->c);
		else
			pcpu_counter_add(j->c, j->delta);
		j->added += j->delta;
	}
	return NULL;
}

/* Return: what was added. */
static int64_t add_from_thread(struct pcpu_counter *c, int64_t delta,
			       unsigned times)
{
	struct add_job j = { .c = c, .delta = delta, .times = times };

	ck_assert_int_eq(tu_run_in_thread(add_job_fn, &j), 0);
	return j.added;
}

/*
 * Add @delta once on each allowed CPU whose slot (pcpu_this_slot() once
 * pinned there: the CPU folded, or the thread's mm_cid) no earlier add
 * had, from one thread pinned to each in turn.  The slot is read before
 * and after the add: if it changed (an mm_cid reassigned under us), which
 * slot took the add is unknown and the job says so (unsure).
 */
struct pinned_job {
	struct pcpu_counter *c;
	int64_t delta;
	unsigned touched;	/* distinct slots added to */
	unsigned unsure;	/* adds whose slot changed under them */
	int64_t added;
	int err;
};

static void *pinned_fn(void *p)
{
	struct pinned_job *j = p;
	unsigned i, s;
	char *used = calloc(PCPU_MAX_SLOTS, 1);
	int k;

	if (!used) {
		j->err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < tu_cpus.n; i++) {
		k = tu_cpus.cpu[i];
		j->err = tu_pin(k);
		if (j->err)
			break;
		s = pcpu_this_slot();
		if (used[s])
			continue;
		pcpu_counter_add(j->c, j->delta);
		if (pcpu_this_slot() != s)
			j->unsure++;
		used[s] = 1;
		j->touched++;
		j->added += j->delta;
	}
	free(used);
	return NULL;
}

/* Return: what was added; *@touched gets the number of slots, or 0 when
 * an add's slot is unknown (see pinned_fn()). */
static int64_t add_pinned(struct pcpu_counter *c, int64_t delta,
			  unsigned *touched)
{
	struct pinned_job j = { .c = c, .delta = delta };

	ck_assert_int_eq(tu_run_in_thread(pinned_fn, &j), 0);
	ck_assert_int_eq(j.err, 0);
	ck_assert_uint_ge(j.touched, 1);
	if (touched)
		*touched = j.unsure ? 0 : j.touched;
	return j.added;
}

/* White-box (lib/counter.c): the four words {u, q, w, dir} of slot @s. */
static const uint64_t *slot_words(const struct pcpu_counter *c, unsigned s)
{
	return (const uint64_t *)(const void *)((const char *)c->pcpu__slots +
						(size_t)s * PCPU__UNIT_SIZE);
}

/* White-box: every touched slot (w != 0) of @c is back at u = 0 and
 * P = q + (BATCH - 1) = 0 with w kept; untouched ones all zero.  Returns
 * the number of slots that are not. */
static unsigned bad_zeroed_slots(const struct pcpu_counter *c)
{
	const uint64_t b1 = PCPU_COUNTER_BATCH - 1;
	unsigned s, bad = 0, n = pcpu_nr_slots();

	for (s = 0; s < n; s++) {
		const uint64_t *p = slot_words(c, s);

		if (p[2] == 0)
			bad += p[0] != 0 || p[1] != 0;
		else
			bad += p[0] != 0 || p[1] + b1 != 0 || p[2] != 2 * b1 + 1;
	}
	return bad;
}

/* Make @c shared (DUAL) or keep it (EAGER), checking is_shared. */
static void share(struct pcpu_counter *c)
{
	ck_assert_int_eq(pcpu_counter_share(c), 0);
	ck_assert(pcpu_counter_is_shared(c));
}

/* --- init ---------------------------------------------------------------- */

START_TEST(test_sizeof)
{
	ck_assert_uint_le(sizeof(struct pcpu_counter), 32);
}
END_TEST

static const int64_t init_values[] = {
	0, 1, -1, 63, -64, 123456789, -987654321,
	INT64_MAX / 2, INT64_MIN / 2, INT64_MAX - 100000, INT64_MIN + 100000,
};
#define N_INIT_VALUES	(sizeof(init_values) / sizeof(init_values[0]))

START_TEST(test_init_values)
{
	unsigned flags = policies[_i];
	struct pcpu_counter c;
	int64_t v, d, want;
	char what[96];
	size_t i;

	for (i = 0; i < N_INIT_VALUES; i++) {
		v = init_values[i];
		snprintf(what, sizeof(what), "%s init %lld", policy_name(flags),
			 (long long)v);
		ck_assert_int_eq(pcpu_counter_init(&c, v, flags), 0);
		ck_assert_msg(pcpu_counter_is_shared(&c) == (flags != DUAL),
			      "%s: is_shared %d", what,
			      pcpu_counter_is_shared(&c));
		expect_value(&c, v, what);
		ck_assert_int_eq(pcpu_counter_compare(&c, v - 1), 1);
		ck_assert_int_eq(pcpu_counter_compare(&c, v + 1), -1);

		/* Move toward zero: nothing can overflow. */
		d = v >= 0 ? -1000 : 1000;
		pcpu_counter_add(&c, d);
		pcpu_counter_inc(&c);
		pcpu_counter_dec(&c);
		want = v + d;
		expect_value(&c, want, what);
		want += add_from_thread(&c, -d / 4, 2);
		ck_assert(pcpu_counter_is_shared(&c));
		expect_value(&c, want, what);
		expect_compare_window(&c, want, what);
		pcpu_counter_destroy(&c);
	}
	tu_expect_no_area("after destroying every counter");
}
END_TEST

/* The very ends of the range, with moves toward zero only. */
START_TEST(test_init_extremes)
{
	unsigned flags = policies[_i];
	int64_t ends[2] = { INT64_MAX, INT64_MIN }, v, step, want;
	struct pcpu_counter c;
	char what[64];
	int e;

	for (e = 0; e < 2; e++) {
		v = ends[e];
		step = v > 0 ? -1 : 1;
		snprintf(what, sizeof(what), "%s init %lld", policy_name(flags),
			 (long long)v);
		ck_assert_int_eq(pcpu_counter_init(&c, v, flags), 0);
		ck_assert_msg(pcpu_counter_sum(&c) == v, "%s: sum %lld", what,
			      (long long)pcpu_counter_sum(&c));
		ck_assert_int_eq(pcpu_counter_compare(&c, v), 0);
		ck_assert_int_eq(pcpu_counter_compare(&c, v + step),
				 -tu_sign(step));
		ck_assert_int_eq(pcpu_counter_compare(&c, 0), tu_sign(v));
		pcpu_counter_add(&c, step);
		want = v + step;
		ck_assert_int_eq(pcpu_counter_sum(&c), want);
		want += add_from_thread(&c, step, 100);
		ck_assert_int_eq(pcpu_counter_sum(&c), want);
		ck_assert_int_eq(pcpu_counter_compare(&c, want), 0);
		ck_assert_int_eq(pcpu_counter_compare(&c, want - step),
				 tu_sign(step));
		pcpu_counter_destroy(&c);
	}
}
END_TEST

START_TEST(test_init_einval)
{
	unsigned bad[] = { 3, 4, 6, 0x10, 0x100, 0x80000000u, UINT_MAX };
	struct pcpu_counter c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(pcpu_counter_init(&c, 1, bad[i]) == -EINVAL,
			      "init with flags %#x: not -EINVAL", bad[i]);
	ck_assert_int_eq(pcpu_counter_init(NULL, 0, DUAL), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init(NULL, 0, EAGER), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init(NULL, 0, LAZY), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init(NULL, 0, LAZY | EAGER), -EINVAL);
	ck_assert_int_eq(pcpu_counter_share(NULL), -EINVAL);
	/* Nothing was allocated by the failures. */
	tu_expect_no_area("after failed inits");
}
END_TEST

START_TEST(test_init_many_einval)
{
	struct pcpu_counter c[4];

	ck_assert_int_eq(pcpu_counter_init_many(c, 0, DUAL, 0), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(c, 0, EAGER, 0), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(NULL, 0, DUAL, 4), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(NULL, 0, EAGER, 4), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(c, 0, LAZY, 0), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(NULL, 0, LAZY, 4), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(c, 0, 3, 4), -EINVAL);
	ck_assert_int_eq(pcpu_counter_init_many(c, 0, UINT_MAX, 4), -EINVAL);
	tu_expect_no_area("after failed init_many");
}
END_TEST

/* The i-th counter's updates: distinct for every counter. */
static int64_t many_updates(struct pcpu_counter *c, unsigned i)
{
	int64_t d = (int64_t)i - 5000, added = d;

	pcpu_counter_add(c, d);
	if (i % 3 == 0) {
		pcpu_counter_inc(c);
		added++;
	}
	if (i % 5 == 0) {
		pcpu_counter_dec(c);
		pcpu_counter_dec(c);
		added -= 2;
	}
	return added;
}

struct many_job {
	struct pcpu_counter *c;
	unsigned n, stride;
	int64_t delta;
};

static void *many_job_fn(void *p)
{
	struct many_job *j = p;
	unsigned i;

	for (i = 0; i < j->n; i += j->stride)
		pcpu_counter_add(&j->c[i], j->delta);
	return NULL;
}

/* 10000 counters: several 1024-counter groups for EAGER and LAZY. */
START_TEST(test_init_many_large)
{
	const unsigned n = 10000, stride = 97;
	unsigned flags = policies[_i], i;
	const int64_t v0 = 1000;
	struct many_job job;
	struct pcpu_counter *c;
	int64_t *want, sum;
	bool sh;

	/* Groups of PCPU_ALLOC_MAX / 32 counters (4 words per slot). */
	ck_assert_uint_lt(PCPU_ALLOC_MAX / 32, n / 2);
	c = calloc(n, sizeof(*c));
	want = calloc(n, sizeof(*want));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(want);
	ck_assert_int_eq(pcpu_counter_init_many(c, v0, flags, n), 0);
	if (flags != DUAL)
		tu_expect_area("EAGER/LAZY init_many");
	else
		tu_expect_no_area("DUAL init_many, nothing shared");
	for (i = 0; i < n; i++) {
		tu_check(pcpu_counter_is_shared(&c[i]) == (flags != DUAL),
			 "counter %u: is_shared %d", i,
			 pcpu_counter_is_shared(&c[i]));
		tu_check(pcpu_counter_sum(&c[i]) == v0, "counter %u: initial "
			 "sum %lld", i, (long long)pcpu_counter_sum(&c[i]));
	}
	for (i = 0; i < n; i++)
		want[i] = v0 + many_updates(&c[i], i);

	/* Another thread updates every stride-th counter (upgrading DUAL). */
	job.c = c;
	job.n = n;
	job.stride = stride;
	job.delta = 100;
	ck_assert_int_eq(tu_run_in_thread(many_job_fn, &job), 0);
	for (i = 0; i < n; i += stride)
		want[i] += job.delta;

	for (i = 0; i < n; i++) {
		sum = pcpu_counter_sum(&c[i]);
		tu_check(sum == want[i], "%s counter %u of %u: sum %lld, want "
			 "%lld", policy_name(flags), i, n, (long long)sum,
			 (long long)want[i]);
		tu_check(pcpu_counter_compare(&c[i], want[i]) == 0,
			 "counter %u: compare != 0", i);
		sh = pcpu_counter_is_shared(&c[i]);
		tu_check(sh == (flags != DUAL || i % stride == 0),
			 "%s counter %u: is_shared %d", policy_name(flags), i,
			 sh);
	}
	tu_expect_area("init_many with shared counters");
	pcpu_counter_destroy_many(c, n);
	tu_expect_no_area("after destroy_many");
	free(want);
	free(c);
}
END_TEST

START_TEST(test_destroy_null)
{
	pcpu_counter_destroy(NULL);
	pcpu_counter_destroy_many(NULL, 1);
	pcpu_counter_destroy_many(NULL, 10000);
	pcpu_counter_destroy_many(NULL, 0);
	tu_expect_no_area("after destroying NULL");
}
END_TEST

/* --- updates and sharing --------------------------------------------------- */

START_TEST(test_owner_add)
{
	struct pcpu_counter c;
	int64_t want = 0;
	unsigned i;

	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	for (i = 0; i < 1000; i++) {
		pcpu_counter_add(&c, (int64_t)i - 300);
		want += (int64_t)i - 300;
		pcpu_counter_inc(&c);
		pcpu_counter_inc(&c);
		pcpu_counter_dec(&c);
		want += 1;
	}
	pcpu_counter_add(&c, INT64_C(1) << 40);
	want += INT64_C(1) << 40;
	pcpu_counter_add(&c, -(INT64_C(1) << 41));
	want -= INT64_C(1) << 41;
	expect_value(&c, want, "owner adds");
	expect_compare_window(&c, want, "owner adds");
	/* The owner's updates never upgrade. */
	ck_assert(!pcpu_counter_is_shared(&c));
	tu_expect_no_area("owner adds only");
	pcpu_counter_destroy(&c);
}
END_TEST

/* EAGER and LAZY: no owner, every thread's updates go to the slots. */
START_TEST(test_percpu_add)
{
	unsigned flags = percpu_policies[_i];
	const char *name = policy_name(flags);
	struct pcpu_counter c;
	int64_t want = -5;
	char what[64];
	unsigned i;

	ck_assert_int_eq(pcpu_counter_init(&c, -5, flags), 0);
	ck_assert(pcpu_counter_is_shared(&c));
	tu_expect_area(name);
	for (i = 0; i < 1000; i++) {
		pcpu_counter_add(&c, (int64_t)(i % 200) - 90);
		want += (int64_t)(i % 200) - 90;
		pcpu_counter_inc(&c);
		pcpu_counter_dec(&c);
		pcpu_counter_dec(&c);
		want -= 1;
	}
	snprintf(what, sizeof(what), "%s adds", name);
	expect_value(&c, want, what);
	want += add_from_thread(&c, 7, 1000);
	want += add_from_thread(&c, -1, 333);
	snprintf(what, sizeof(what), "%s adds from threads", name);
	expect_value(&c, want, what);
	expect_compare_window(&c, want, what);
	/* Sharing a per-CPU counter changes nothing. */
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	ck_assert(pcpu_counter_is_shared(&c));
	expect_value(&c, want, what);
	pcpu_counter_destroy(&c);
	tu_expect_no_area("destroyed");
}
END_TEST

START_TEST(test_foreign_add_upgrades)
{
	struct pcpu_counter c;
	int64_t want = 40;

	ck_assert_int_eq(pcpu_counter_init(&c, 40, DUAL), 0);
	pcpu_counter_add(&c, 2);
	want += 2;
	ck_assert(!pcpu_counter_is_shared(&c));
	want += add_from_thread(&c, 1, 1);	/* inc from another thread */
	ck_assert_msg(pcpu_counter_is_shared(&c),
		      "an update from a non-owner did not upgrade");
	expect_value(&c, want, "after upgrade");
	tu_expect_area("upgraded DUAL counter");
	/* Both paths keep counting. */
	pcpu_counter_add(&c, 1000);
	want += 1000;
	want += add_from_thread(&c, -1, 500);
	want += add_from_thread(&c, 250, 40);
	pcpu_counter_dec(&c);
	want -= 1;
	expect_value(&c, want, "owner and threads after upgrade");
	pcpu_counter_destroy(&c);
	tu_expect_no_area("upgraded counter destroyed");

	/* Each kind of update upgrades on its own, once main (the first
	 * updater, so the owner) has updated. */
	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	pcpu_counter_inc(&c);
	ck_assert(!pcpu_counter_is_shared(&c));
	want = 1 + add_from_thread(&c, -1, 1);	/* dec */
	ck_assert(pcpu_counter_is_shared(&c));
	ck_assert_int_eq(pcpu_counter_sum(&c), want);
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	pcpu_counter_dec(&c);
	want = -1 + add_from_thread(&c, 1000, 1);	/* add above BATCH */
	ck_assert(pcpu_counter_is_shared(&c));
	ck_assert_int_eq(pcpu_counter_sum(&c), want);
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	pcpu_counter_add(&c, 0);		/* even a 0 claims it */
	ck_assert_uint_eq(c.pcpu__owner, pcpu__tp());
	want = add_from_thread(&c, 1, 1);	/* inc */
	ck_assert(pcpu_counter_is_shared(&c));
	ck_assert_int_eq(pcpu_counter_sum(&c), want);
	pcpu_counter_destroy(&c);

	/*
	 * Handover: made here, updated by one other thread only.  That
	 * thread becomes the owner: no upgrade, no area, exact.
	 */
	ck_assert_int_eq(pcpu_counter_init(&c, 3, DUAL), 0);
	ck_assert_uint_eq(c.pcpu__owner, 0);	/* no owner after init */
	want = 3 + add_from_thread(&c, -7, 500);
	ck_assert_msg(!pcpu_counter_is_shared(&c), "handover: the only "
		      "updater's adds upgraded a counter made by main");
	ck_assert(c.pcpu__owner != 0 && c.pcpu__owner != pcpu__tp());
	ck_assert_int_eq(pcpu_counter_sum(&c), want);
	ck_assert_int_eq(pcpu_counter_read(&c), want);
	tu_expect_no_area("handed-over DUAL counter");
	pcpu_counter_destroy(&c);
}
END_TEST

START_TEST(test_share)
{
	struct pcpu_counter c, e;
	int64_t want = 17;

	ck_assert_int_eq(pcpu_counter_init(&c, 10, DUAL), 0);
	pcpu_counter_add(&c, 7);
	ck_assert(!pcpu_counter_is_shared(&c));
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	ck_assert(pcpu_counter_is_shared(&c));
	expect_value(&c, want, "after share");
	/* Idempotent. */
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	ck_assert(pcpu_counter_is_shared(&c));
	expect_value(&c, want, "after share x3");
	pcpu_counter_add(&c, 5);
	want += 5;
	want += add_from_thread(&c, 3, 100);
	expect_value(&c, want, "after share and adds");
	tu_expect_area("shared counter");
	pcpu_counter_destroy(&c);
	/* Repeated shares allocated one area, freed by destroy. */
	tu_expect_no_area("shared three times, destroyed");

	/* EAGER and LAZY: a no-op. */
	ck_assert_int_eq(pcpu_counter_init(&e, 3, EAGER), 0);
	ck_assert_int_eq(pcpu_counter_share(&e), 0);
	ck_assert(pcpu_counter_is_shared(&e));
	expect_value(&e, 3, "EAGER after share");
	pcpu_counter_destroy(&e);
	tu_expect_no_area("EAGER shared, destroyed");
	ck_assert_int_eq(pcpu_counter_init(&e, -3, LAZY), 0);
	ck_assert(pcpu_counter_is_shared(&e));
	ck_assert_int_eq(pcpu_counter_share(&e), 0);
	ck_assert(pcpu_counter_is_shared(&e));
	expect_value(&e, -3, "LAZY after share");
	pcpu_counter_destroy(&e);
	tu_expect_no_area("LAZY shared, destroyed");

	ck_assert_int_eq(pcpu_counter_share(NULL), -EINVAL);
}
END_TEST

/* Share races with other threads' first updates: one upgrade wins. */
struct share_race {
	struct pcpu_counter *c;
	struct tu_gate *gate;
	int share_ret;
	int64_t added;
} __attribute__((aligned(TU_CACHELINE)));

static void *share_race_fn(void *p)
{
	struct share_race *r = p;

	tu_gate_wait(r->gate);
	r->share_ret = pcpu_counter_share(r->c);
	pcpu_counter_add(r->c, 11);
	r->added = 11;
	return NULL;
}

START_TEST(test_share_race)
{
	struct share_race r[3];
	struct pcpu_counter c;
	struct tu_gate gate;
	pthread_t t[3];
	int64_t want;
	unsigned round, i;

	for (round = 0; round < 50; round++) {
		ck_assert_int_eq(pcpu_counter_init(&c, 1, DUAL), 0);
		tu_gate_init(&gate);
		memset(r, 0, sizeof(r));
		for (i = 0; i < 3; i++) {
			r[i].c = &c;
			r[i].gate = &gate;
		}
		ck_assert_int_eq(tu_spawn(t, 3, share_race_fn, r, sizeof(r[0])),
				 0);
		tu_gate_open(&gate);
		pcpu_counter_add(&c, 2);
		tu_join(t, 3);
		want = 3;
		for (i = 0; i < 3; i++) {
			ck_assert_int_eq(r[i].share_ret, 0);
			want += r[i].added;
		}
		ck_assert(pcpu_counter_is_shared(&c));
		ck_assert_int_eq(pcpu_counter_sum(&c), want);
		pcpu_counter_destroy(&c);
		/* Losers of the race freed what they allocated. */
		tu_expect_no_area("after share race");
	}
}
END_TEST

/* --- read and compare --------------------------------------------------------- */

/*
 * read() is the owner's word plus the shared word plus the slots'
 * published total: it misses exactly what each slot holds beyond its
 * published part, under BATCH, so it is within (BATCH - 1) times the
 * touched slots of sum() (all slots for EAGER).  @held is what every one
 * of the @touched slots holds beyond its published part now; @touched 0:
 * unknown (an mm_cid changed under an add), only the loose bound holds.
 */
static void expect_read_touched(const struct pcpu_counter *c, int64_t want,
				unsigned flags, unsigned touched, int64_t held,
				const char *what)
{
	int64_t rd = pcpu_counter_read(c), bound;

	if (touched == 0) {
		printf("%s: a slot changed under a pinned add: loose bound "
		       "only\n", what);
		ck_assert(dist(rd, want) <= (uint64_t)tu_read_bound());
		return;
	}

	bound = tu_read_bound_touched(flags == EAGER ? pcpu_nr_slots() :
				      touched);
	ck_assert_msg(dist(rd, want) <= (uint64_t)bound, "%s: read %lld, sum "
		      "%lld: farther than (BATCH - 1) * %u touched slots", what,
		      (long long)rd, (long long)want,
		      flags == EAGER ? pcpu_nr_slots() : touched);
	ck_assert_msg(rd == want - held * (int64_t)touched, "%s: read %lld, "
		      "sum %lld, with %u slots holding %lld each unfolded",
		      what, (long long)rd, (long long)want, touched,
		      (long long)held);
}

/*
 * White-box: read() == want - H, where H is what the touched slots (w != 0)
 * hold beyond their published parts (u - P, P = q + BATCH - 1), each
 * within BATCH - 1.  For the later stages of check_read_compare(), whose
 * helper threads may have found other slots than the first one did (with
 * mm_cid a new thread's slot on a CPU need not be the previous thread's).
 */
static void expect_read_whitebox(const struct pcpu_counter *c, int64_t want,
				 const char *what)
{
	const uint64_t b1 = PCPU_COUNTER_BATCH - 1;
	unsigned s, n = pcpu_nr_slots(), touched = 0;
	uint64_t held = 0, d;
	int64_t rd = pcpu_counter_read(c);

	for (s = 0; s < n; s++) {
		const uint64_t *p = slot_words(c, s);

		if (!p[2])
			continue;
		touched++;
		d = p[0] - (p[1] + b1);
		tu_check(p[2] == 2 * b1 + 1 && (d + b1) <= 2 * b1, "%s: slot %u: "
			 "u %#llx q %#llx w %#llx: |u - P| over BATCH - 1",
			 what, s, (unsigned long long)p[0],
			 (unsigned long long)p[1], (unsigned long long)p[2]);
		held += d;
	}
	ck_assert_msg(touched >= 1, "%s: no touched slot", what);
	ck_assert_msg(rd == (int64_t)((uint64_t)want - held), "%s: read %lld, "
		      "sum %lld, slots hold %lld beyond their published parts",
		      what, (long long)rd, (long long)want, (long long)held);
	ck_assert(dist(rd, want) <= (uint64_t)tu_read_bound_touched(touched));
}

/*
 * Leave values below BATCH in the slots: read() and sum() then differ,
 * by no more than the bound, and compare() stays exact around both.
 */
static void check_read_compare(unsigned flags)
{
	struct pcpu_counter c;
	int64_t want = 1000, rd;
	unsigned touched;
	char what[64];

	snprintf(what, sizeof(what), "%s, %u slots", policy_name(flags),
		 pcpu_nr_slots());
	ck_assert_int_eq(pcpu_counter_init(&c, want, flags), 0);
	if (flags == DUAL) {
		pcpu_counter_add(&c, 20);	/* the owner's word */
		want += 20;
		share(&c);
	}
	want += add_pinned(&c, PCPU_COUNTER_BATCH - 1, &touched);
	expect_value(&c, want, what);
	rd = pcpu_counter_read(&c);
	/* Slot values under BATCH are not published: read() misses them. */
	ck_assert_msg(rd != want || touched == 0, "%s: read == sum == %lld "
		      "with %u slots holding %d each", what, (long long)want,
		      touched, PCPU_COUNTER_BATCH - 1);
	expect_read_touched(&c, want, flags, touched, PCPU_COUNTER_BATCH - 1,
			    what);
	expect_compare_window(&c, want, what);

	expect_read_whitebox(&c, want, what);

	/* Each slot to -(BATCH - 1): still unpublished, the other side (a
	 * slot only this helper found publishes its -2 (BATCH - 1)). */
	want += add_pinned(&c, -2 * (PCPU_COUNTER_BATCH - 1), &touched);
	expect_value(&c, want, what);
	expect_read_whitebox(&c, want, what);
	expect_compare_window(&c, want, what);

	/* Fold: BATCH on top of every slot, then the window again. */
	want += add_pinned(&c, 3 * PCPU_COUNTER_BATCH, &touched);
	expect_value(&c, want, what);
	expect_read_whitebox(&c, want, what);
	expect_compare_window(&c, want, what);
	pcpu_counter_destroy(&c);
}

START_TEST(test_read_compare)
{
	unsigned slots[3] = { tu_default_slots, 1, 4096 };

	ck_assert_int_eq(pcpu_set_nr_slots(slots[_i]), 0);
	check_read_compare(DUAL);
	check_read_compare(EAGER);
	check_read_compare(LAZY);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/*
 * How often a slot publishes, counted as the changes of read() (a
 * publication is the only thing that moves it) on a LAZY counter updated
 * from one pinned thread: one slot.  A slot that publishes the same way
 * twice running publishes its total ahead by the batch less one less the
 * delta, so a steady stream of +d (or -d) publishes once per
 * (2 * (batch - 1) - d) / d updates, not once per (batch - 1) / d; after a publication an
 * oscillation no larger than the update that published never publishes;
 * a turn publishes without a lead, so a swing back and forth stays in
 * the window, and a random walk publishes about as often as it would
 * with no lead at all.
 * Loop: 0 deltas of 1 (default batch), 1 deltas of -1, 2 deltas of 1500
 * at batch 2^16.
 */
/* sum exact; read within @b1 of it: one slot touched. */
static void expect_batch_value(const struct pcpu_counter *c, int64_t want,
			       uint64_t b1, const char *what)
{
	int64_t sum = pcpu_counter_sum(c), rd = pcpu_counter_read(c);

	ck_assert_msg(sum == want, "%s: sum %lld, want %lld", what,
		      (long long)sum, (long long)want);
	ck_assert_msg(dist(rd, want) <= b1, "%s: read %lld, sum %lld: "
		      "farther than %llu", what, (long long)rd,
		      (long long)want, (unsigned long long)b1);
}

static unsigned count_publications(struct pcpu_counter *c, const int64_t *d,
				   unsigned nd, unsigned n, int64_t *want)
{
	int64_t last = pcpu_counter_read(c), r;
	unsigned i, pubs = 0;

	for (i = 0; i < n; i++) {
		pcpu_counter_add(c, d[i % nd]);
		*want += d[i % nd];
		r = pcpu_counter_read(c);
		pubs += r != last;
		last = r;
	}
	return pubs;
}

START_TEST(test_publish_rate)
{
	static const struct { int64_t d; unsigned log2; } cases[] = {
		{ 1, 8 }, { -1, 8 }, { 1500, 16 },
	};
	int64_t d = cases[_i].d, want = 0, osc[2] = { -d, d };
	int64_t bigger[2] = { -3 * d, 3 * d };
	int64_t swing[4] = { -d, -d, d, d }, *steps, last;
	unsigned walk = 100000, i;
	double expect_walk;
	uint64_t rng;
	uint64_t b1 = ((uint64_t)1 << cases[_i].log2) - 1;
	uint64_t ad = (uint64_t)(d < 0 ? -d : d);
	unsigned n = (unsigned)(40 * b1 / ad), pubs, per, cpu;
	struct pcpu_counter c;

	cpu = (unsigned)sched_getcpu();
	ck_assert_int_eq(tu_pin((int)cpu), 0);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, LAZY |
			 PCPU_COUNTER_BATCH_LOG2(cases[_i].log2)), 0);
	pubs = count_publications(&c, &d, 1, n, &want);
	/* Updates per publication: 2 * b1 - ad over ad, the first one
	 * after b1 / ad (no lead before it). */
	per = (unsigned)((2 * b1 - ad) / ad);
	ck_assert_msg(pubs <= n / per + 2, "%u updates of %lld published %u "
		      "times: more than once per %u", n, (long long)d, pubs,
		      per);
	ck_assert_msg(pubs >= n / per - 2, "%u updates of %lld published "
		      "only %u times", n, (long long)d, pubs);
	expect_batch_value(&c, want, b1, "publish rate, steady");

	/* On to the next publication, which leads: the slot's total is
	 * then |d| from the far edge of its window. */
	for (i = 0, last = pcpu_counter_read(&c); i <= 2 * b1 / ad + 1; i++) {
		pcpu_counter_add(&c, d);
		want += d;
		if (pcpu_counter_read(&c) != last)
			break;
	}
	ck_assert_msg(i <= 2 * b1 / ad + 1, "no publication in %u updates "
		      "of %lld", i, (long long)d);
	/* Back and forth by the delta that published: never again. */
	pubs = count_publications(&c, osc, 2, 10000, &want);
	ck_assert_msg(pubs == 0, "oscillation by %lld published %u times",
		      (long long)d, pubs);
	/* A gauge's swing, two steps each way (a slot that led after every
	 * publication published every second update here). */
	pubs = count_publications(&c, swing, 4, 10000, &want);
	ck_assert_msg(pubs <= 2, "swing -2d/+2d by %lld published %u times",
		      (long long)d, pubs);
	/* Back and forth by more: a publication or two, then steady. */
	pubs = count_publications(&c, bigger, 2, 10000, &want);
	ck_assert_msg(pubs <= 2, "oscillation by %lld published %u times",
		      (long long)(3 * d), pubs);
	expect_batch_value(&c, want, b1, "publish rate, oscillation");

	/*
	 * A random walk of +-d: a centred window of half-width b1 / d steps
	 * is left after about (b1 / d)^2 steps, so n steps publish about
	 * n (d / b1)^2 times; a slot that always led (d from the window's
	 * edge after each publication) published 35x to 500x that.
	 */
	steps = malloc(walk * sizeof(*steps));
	ck_assert_ptr_nonnull(steps);
	rng = tu_rand_seed((uint64_t)_i);
	for (i = 0; i < walk; i++)
		steps[i] = (tu_rand(&rng) >> 63) ? d : -d;
	pubs = count_publications(&c, steps, walk, walk, &want);
	free(steps);
	expect_walk = (double)walk * (double)ad * (double)ad /
		      ((double)b1 * (double)b1);
	ck_assert_msg(pubs <= 3 * expect_walk + 5, "random walk of %u steps "
		      "of %lld published %u times (about %.0f expected)", walk,
		      (long long)d, pubs, expect_walk);
	expect_batch_value(&c, want, b1, "publish rate, random walk");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(tu_unpin(), 0);
}
END_TEST

/* The sign of value - rhs, even when the difference does not fit. */
START_TEST(test_compare_extreme_rhs)
{
	unsigned flags = policies[_i];
	struct pcpu_counter c;
	int64_t want = 5;

	ck_assert_int_eq(pcpu_counter_init(&c, want, flags), 0);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MIN), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MAX), -1);
	want += add_pinned(&c, 40, NULL);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MIN), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MIN + 1), 1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MAX), -1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MAX - 1), -1);
	ck_assert_int_eq(pcpu_counter_compare(&c, want), 0);
	pcpu_counter_set(&c, -want);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MAX), -1);
	ck_assert_int_eq(pcpu_counter_compare(&c, INT64_MIN), 1);
	pcpu_counter_destroy(&c);
}
END_TEST

/* --- set ------------------------------------------------------------------------ */

static const int64_t set_values[] = {
	0, 12345, -12345, INT64_MAX / 4, INT64_MIN / 4, 63, -64,
};

/* @c has owner and/or slot values; set each value; updates keep counting. */
static void check_set(struct pcpu_counter *c, bool shared, const char *name)
{
	int64_t want;
	char what[96];
	size_t i;

	for (i = 0; i < sizeof(set_values) / sizeof(set_values[0]); i++) {
		snprintf(what, sizeof(what), "%s: set(%lld)", name,
			 (long long)set_values[i]);
		pcpu_counter_set(c, set_values[i]);
		want = set_values[i];
		expect_value(c, want, what);
		ck_assert_msg(pcpu_counter_is_shared(c) == shared,
			      "%s: is_shared changed", what);
		/* The owner is kept: its adds do not upgrade. */
		pcpu_counter_add(c, 77);
		pcpu_counter_dec(c);
		want += 76;
		ck_assert_msg(pcpu_counter_is_shared(c) == shared,
			      "%s: owner add after set changed is_shared",
			      what);
		if (shared)
			want += add_pinned(c, PCPU_COUNTER_BATCH - 1, NULL);
		expect_value(c, want, what);
		expect_compare_window(c, want, what);
	}
}

START_TEST(test_set)
{
	struct pcpu_counter c;

	/* DUAL, private. */
	ck_assert_int_eq(pcpu_counter_init(&c, 3, DUAL), 0);
	pcpu_counter_add(&c, 500);
	check_set(&c, false, "DUAL unshared");
	tu_expect_no_area("set on an unshared DUAL counter");
	pcpu_counter_destroy(&c);

	/* DUAL, shared, with owner word and slot values. */
	ck_assert_int_eq(pcpu_counter_init(&c, 3, DUAL), 0);
	pcpu_counter_add(&c, 500);
	share(&c);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	add_from_thread(&c, 1000, 3);
	check_set(&c, true, "DUAL shared");
	tu_expect_area("set on a shared counter");
	pcpu_counter_destroy(&c);

	/* EAGER and LAZY with slot values. */
	ck_assert_int_eq(pcpu_counter_init(&c, 3, EAGER), 0);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	pcpu_counter_add(&c, 900);
	check_set(&c, true, "EAGER");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_counter_init(&c, 3, LAZY), 0);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	pcpu_counter_add(&c, 900);
	add_from_thread(&c, -1000, 2);
	check_set(&c, true, "LAZY");
	pcpu_counter_destroy(&c);
	tu_expect_no_area("all destroyed");
}
END_TEST

START_TEST(test_set_slot_counts)
{
	unsigned slots[2] = { 1, 4096 };
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_set_nr_slots(slots[_i]), 0);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, DUAL), 0);
	share(&c);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	check_set(&c, true, slots[_i] == 1 ? "1 slot" : "4096 slots");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, EAGER), 0);
	add_pinned(&c, -(PCPU_COUNTER_BATCH - 1), NULL);
	check_set(&c, true, slots[_i] == 1 ? "EAGER, 1 slot" :
		  "EAGER, 4096 slots");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_counter_init(&c, 0, LAZY), 0);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	check_set(&c, true, slots[_i] == 1 ? "LAZY, 1 slot" :
		  "LAZY, 4096 slots");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- reset ---------------------------------------------------------------------- */

/*
 * Thread A initializes a counter, updates it (so owns it) and stays
 * alive; the main thread resets it (no owner) and updates it first, so
 * becomes the owner: its adds do not upgrade, A's later adds do.
 */
struct owner_a {
	struct pcpu_counter *c;
	struct tu_gate ready, go;
	int init_ret;
	int64_t before, after;	/* what A added before and after the reset */
};

static void *owner_a_fn(void *p)
{
	struct owner_a *a = p;

	a->init_ret = pcpu_counter_init(a->c, 10, DUAL);
	if (!a->init_ret) {
		pcpu_counter_add(a->c, 5);
		pcpu_counter_inc(a->c);
		a->before = 6;
	}
	tu_gate_open(&a->ready);
	tu_gate_wait(&a->go);
	if (!a->init_ret) {
		pcpu_counter_add(a->c, 3);
		pcpu_counter_dec(a->c);
		a->after = 2;
	}
	return NULL;
}

START_TEST(test_reset_new_owner)
{
	struct pcpu_counter c;
	struct owner_a a;
	pthread_t t;
	bool sh_a = true, sh_reset = true, sh_b = true;
	int64_t sum_a = -1, sum_reset = -1, rd_reset = -1, sum_b = -1;
	uintptr_t owner_reset = 1, owner_b = 0;
	int busy_b = -1;

	memset(&a, 0, sizeof(a));
	a.c = &c;
	tu_gate_init(&a.ready);
	tu_gate_init(&a.go);
	ck_assert_int_eq(tu_spawn(&t, 1, owner_a_fn, &a, sizeof(a)), 0);
	tu_gate_wait(&a.ready);
	/* Observe first, assert after A is released and joined. */
	if (!a.init_ret) {
		sh_a = pcpu_counter_is_shared(&c);
		sum_a = pcpu_counter_sum(&c);
		pcpu_counter_reset(&c);		/* no owner now */
		owner_reset = c.pcpu__owner;
		sh_reset = pcpu_counter_is_shared(&c);
		sum_reset = pcpu_counter_sum(&c);
		rd_reset = pcpu_counter_read(&c);
		pcpu_counter_add(&c, 7);	/* B (main) becomes the owner */
		owner_b = c.pcpu__owner;
		pcpu_counter_inc(&c);
		pcpu_counter_add(&c, 1000);
		sh_b = pcpu_counter_is_shared(&c);
		sum_b = pcpu_counter_sum(&c);
		busy_b = pcpu_set_nr_slots(tu_other_slots());
		if (busy_b == 0)
			busy_b = pcpu_set_nr_slots(tu_default_slots);
	}
	tu_gate_open(&a.go);
	tu_join(&t, 1);
	ck_assert_int_eq(a.init_ret, 0);
	ck_assert_msg(!sh_a, "owner A's adds upgraded the counter");
	ck_assert_int_eq(sum_a, 10 + a.before);
	ck_assert_msg(!sh_reset, "reset of an unshared counter shared it");
	ck_assert_int_eq(sum_reset, 0);
	ck_assert_int_eq(rd_reset, 0);
	ck_assert_msg(owner_reset == 0, "reset left an owner (%#lx)",
		      (unsigned long)owner_reset);
	ck_assert_msg(owner_b == pcpu__tp(), "the first update after reset "
		      "did not make its thread the owner");
	ck_assert_msg(!sh_b, "adds by the resetting thread upgraded the "
		      "counter: reset did not make it the owner");
	ck_assert_int_eq(sum_b, 1008);
	ck_assert_msg(busy_b == 0, "unshared after reset, yet set_nr_slots "
		      "= %d", busy_b);
	/* A is no longer the owner: its adds upgraded the counter. */
	ck_assert_msg(pcpu_counter_is_shared(&c), "adds by the former owner "
		      "did not upgrade the counter");
	expect_value(&c, 1008 + a.after, "after A's late adds");
	tu_expect_area("upgraded after reset");
	pcpu_counter_destroy(&c);
	tu_expect_no_area("destroyed");
}
END_TEST

static void *reset_fn(void *p)
{
	pcpu_counter_reset(p);
	return NULL;
}

START_TEST(test_reset_shared)
{
	struct pcpu_counter c;
	int64_t want, *area;

	ck_assert_int_eq(pcpu_counter_init(&c, 50, DUAL), 0);
	pcpu_counter_add(&c, 100);
	share(&c);
	area = c.pcpu__slots;
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	add_from_thread(&c, 999, 2);
	pcpu_counter_reset(&c);
	/* Back to owner mode, no owner, the slots kept aside and zeroed. */
	ck_assert_msg(!pcpu_counter_is_shared(&c), "reset left the counter "
		      "shared");
	ck_assert_uint_eq(c.pcpu__owner, 0);
	ck_assert_msg(c.pcpu__slots == area, "reset dropped the slots");
	ck_assert_msg(bad_zeroed_slots(&c) == 0, "reset: %u slots not zeroed",
		      bad_zeroed_slots(&c));
	expect_value(&c, 0, "shared, reset");
	ck_assert_int_eq(pcpu_counter_read(&c), 0);
	expect_compare_window(&c, 0, "shared, reset");
	tu_expect_area("reset keeps the slots");
	/* Counting goes on: main's add claims it (plain adds, no upgrade),
	 * a helper's upgrades it again onto the kept slots. */
	pcpu_counter_add(&c, 5);
	ck_assert(!pcpu_counter_is_shared(&c));
	ck_assert_uint_eq(c.pcpu__owner, pcpu__tp());
	ck_assert_int_eq(pcpu_counter_read(&c), 5);
	want = 5 + add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	ck_assert(pcpu_counter_is_shared(&c));
	ck_assert_msg(c.pcpu__slots == area, "the upgrade after reset did not "
		      "reuse the kept slots");
	expect_value(&c, want, "shared, reset, adds");

	/* Reset by another thread: nobody owns it, main's add claims it. */
	ck_assert_int_eq(tu_run_in_thread(reset_fn, &c), 0);
	ck_assert(!pcpu_counter_is_shared(&c));
	ck_assert_uint_eq(c.pcpu__owner, 0);
	ck_assert(c.pcpu__slots == area);
	expect_value(&c, 0, "reset by another thread");
	pcpu_counter_add(&c, 10);	/* main: the owner again */
	pcpu_counter_add(&c, -3);
	ck_assert(!pcpu_counter_is_shared(&c));
	want = 7 + add_pinned(&c, 2, NULL);
	ck_assert(pcpu_counter_is_shared(&c));
	want += add_from_thread(&c, 1, 300);
	expect_value(&c, want, "after foreign reset");
	expect_compare_window(&c, want, "after foreign reset");
	/* share() after a reset: the same slots again. */
	pcpu_counter_reset(&c);
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	ck_assert(pcpu_counter_is_shared(&c));
	ck_assert(c.pcpu__slots == area);
	want = add_pinned(&c, 3, NULL);
	pcpu_counter_add(&c, 4);
	want += 4;
	expect_value(&c, want, "reset, share");
	pcpu_counter_destroy(&c);
	tu_expect_no_area("destroyed");
}
END_TEST

/* EAGER and LAZY: reset zeroes the value and keeps the slots. */
START_TEST(test_reset_percpu)
{
	unsigned flags = percpu_policies[_i];
	struct pcpu_counter c;
	int64_t want;
	char what[64];

	ck_assert_int_eq(pcpu_counter_init(&c, -70, flags), 0);
	add_pinned(&c, PCPU_COUNTER_BATCH - 1, NULL);
	pcpu_counter_add(&c, 12345);
	pcpu_counter_reset(&c);
	snprintf(what, sizeof(what), "%s reset", policy_name(flags));
	ck_assert(pcpu_counter_is_shared(&c));
	expect_value(&c, 0, what);
	ck_assert_int_eq(pcpu_counter_read(&c), 0);
	ck_assert_msg(bad_zeroed_slots(&c) == 0, "%s: %u slots not zeroed",
		      what, bad_zeroed_slots(&c));
	tu_expect_area(what);
	want = add_pinned(&c, -(PCPU_COUNTER_BATCH - 1), NULL);
	pcpu_counter_inc(&c);
	want += 1;
	want += add_from_thread(&c, 3, 50);
	snprintf(what, sizeof(what), "%s reset, adds", policy_name(flags));
	expect_value(&c, want, what);
	expect_compare_window(&c, want, what);
	/* Reset by another thread: still no owner, the main thread's adds
	 * count as before. */
	ck_assert_int_eq(tu_run_in_thread(reset_fn, &c), 0);
	expect_value(&c, 0, what);
	pcpu_counter_add(&c, 1000);
	want = 1000 + add_pinned(&c, 5, NULL);
	expect_value(&c, want, what);
	pcpu_counter_destroy(&c);
	tu_expect_no_area("destroyed");
}
END_TEST

/* Reset and set on members of an init_many group touch only that member. */
START_TEST(test_many_members)
{
	unsigned flags = policies[_i], i;
	struct pcpu_counter c[100];
	int64_t want[100], sum;

	ck_assert_int_eq(pcpu_counter_init_many(c, 7, flags, 100), 0);
	for (i = 0; i < 100; i++) {
		pcpu_counter_add(&c[i], (int64_t)i * 3);
		want[i] = 7 + (int64_t)i * 3;
	}
	share(&c[4]);
	share(&c[5]);
	want[5] += add_pinned(&c[5], PCPU_COUNTER_BATCH - 1, NULL);
	want[6] += add_from_thread(&c[6], 100, 1);
	pcpu_counter_reset(&c[5]);
	want[5] = 0;
	pcpu_counter_set(&c[6], -4);
	want[6] = -4;
	pcpu_counter_reset(&c[7]);
	want[7] = 0;
	for (i = 0; i < 100; i++) {
		sum = pcpu_counter_sum(&c[i]);
		tu_check(sum == want[i], "%s member %u: sum %lld, want %lld",
			 policy_name(flags), i, (long long)sum,
			 (long long)want[i]);
	}
	/* A reset DUAL member is back in owner mode (its slots kept); set
	 * keeps the mode. */
	ck_assert(pcpu_counter_is_shared(&c[5]) == (flags != DUAL));
	ck_assert(pcpu_counter_is_shared(&c[6]));
	ck_assert(pcpu_counter_is_shared(&c[7]) == (flags != DUAL));
	ck_assert(pcpu_counter_is_shared(&c[4]));
	/* ... main's update claims it, a helper's upgrades it again. */
	pcpu_counter_inc(&c[5]);
	want[5] += 1 + add_from_thread(&c[5], 9, 3);
	ck_assert(pcpu_counter_is_shared(&c[5]));
	for (i = 0; i < 100; i++)
		tu_check(pcpu_counter_sum(&c[i]) == want[i], "%s member %u "
			 "after re-upgrade: sum %lld, want %lld",
			 policy_name(flags), i,
			 (long long)pcpu_counter_sum(&c[i]), (long long)want[i]);
	pcpu_counter_destroy_many(c, 100);
	tu_expect_no_area("group destroyed");
}
END_TEST

/* --- per-CPU memory only when shared ------------------------------------------- */

START_TEST(test_unshared_holds_no_area)
{
	struct pcpu_counter one[8], many[100];
	unsigned i;

	for (i = 0; i < 8; i++)
		ck_assert_int_eq(pcpu_counter_init(&one[i], i, DUAL), 0);
	ck_assert_int_eq(pcpu_counter_init_many(many, 3, DUAL, 100), 0);
	for (i = 0; i < 8; i++)
		pcpu_counter_add(&one[i], 1000);
	for (i = 0; i < 100; i++)
		pcpu_counter_inc(&many[i]);
	pcpu_counter_set(&one[1], 5);
	pcpu_counter_reset(&one[2]);
	tu_expect_no_area("only unshared DUAL counters live");

	share(&one[3]);
	tu_expect_area("one DUAL counter shared");
	pcpu_counter_destroy(&one[3]);
	tu_expect_no_area("the shared one destroyed");

	add_from_thread(&many[50], 1, 1);
	ck_assert(pcpu_counter_is_shared(&many[50]));
	tu_expect_area("an init_many member upgraded");
	pcpu_counter_destroy_many(many, 100);
	tu_expect_no_area("the group destroyed");

	/* LAZY holds its area from init, even untouched. */
	ck_assert_int_eq(pcpu_counter_init(&one[3], 0, LAZY), 0);
	tu_expect_area("an untouched LAZY counter");
	pcpu_counter_destroy(&one[3]);
	tu_expect_no_area("the LAZY counter destroyed");

	for (i = 0; i < 8; i++) {
		if (i == 3)
			continue;
		ck_assert_int_eq(pcpu_counter_sum(&one[i]),
				 i == 1 ? 5 : i == 2 ? 0 : (int64_t)i + 1000);
		pcpu_counter_destroy(&one[i]);
	}
}
END_TEST

/* An unshared counter outlives a slot-count change, then shares with it. */
struct hop_job {
	struct pcpu_counter *c;
	unsigned id;
	int64_t added;
	int err;
} __attribute__((aligned(TU_CACHELINE)));

static void *hop_add_fn(void *p)
{
	struct hop_job *j = p;
	unsigned cursor = j->id, i;

	for (i = 0; i < 20000; i++) {
		if (i % 500 == 0 && (j->err = tu_hop(&cursor)))
			break;
		pcpu_counter_add(j->c, (int64_t)(i % 150) - 70);
		j->added += (int64_t)(i % 150) - 70;
	}
	return NULL;
}

START_TEST(test_share_after_slot_change)
{
	unsigned slots[2] = { 1, 4096 }, i;
	struct hop_job jobs[2];
	struct pcpu_counter c;
	pthread_t t[2];
	int64_t want;

	ck_assert_int_eq(pcpu_counter_init(&c, 9, DUAL), 0);
	pcpu_counter_add(&c, 1);
	ck_assert_int_eq(pcpu_set_nr_slots(slots[_i]), 0);
	pcpu_counter_add(&c, 1);
	want = 11;
	share(&c);
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < 2; i++) {
		jobs[i].c = &c;
		jobs[i].id = i;
	}
	ck_assert_int_eq(tu_spawn(t, 2, hop_add_fn, jobs, sizeof(jobs[0])), 0);
	for (i = 0; i < 20000; i++)
		pcpu_counter_inc(&c);
	want += 20000;
	tu_join(t, 2);
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(jobs[i].err, 0);
		want += jobs[i].added;
	}
	expect_value(&c, want, slots[_i] == 1 ? "1 slot" : "4096 slots");
	pcpu_counter_destroy(&c);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- ENOMEM: the counter stays exact and usable ---------------------------- */

/*
 * At PCPU_MAX_SLOTS slots an area spans PCPU_MAX_SLOTS units (1 GiB of
 * address space at least, pcpu__slot_ptr()); RLIMIT_AS then makes every
 * allocation fail.  Observations are recorded while the limit is on and
 * asserted after it is lifted.
 */
struct enomem_obs {
	int limit1, limit2, limit3, restore;
	void *area;
	int alloc_errno;
	int eager, many, lazy, lazy_many, share1, busy1;
	bool shared1;
	int thread1;
	int64_t sum1, want1;
	int cmp1;
	int big, busy2;
	int fit, big_lazy, busy3;
};

START_TEST(test_enomem)
{
	/* Six groups of PCPU_ALLOC_MAX / 32 counters (4 words per slot):
	 * >= 3 GiB at MAX. */
	const unsigned ngroup = PCPU_ALLOC_MAX / 32, nbig = 6 * ngroup;
	struct pcpu_counter d, e, l, many[3], lmany[3], *big;
	struct enomem_obs o;
	struct add_job job;
	struct rlimit old;
	int64_t want;

	if (!TU_CAN_LIMIT_AS) {
		printf("test_enomem: skipped under a sanitizer\n");
		return;
	}
	if (!tu_as_limit_binds()) {
		printf("test_enomem: skipped: RLIMIT_AS does not bind here "
		       "(qemu-user)\n");
		return;
	}
	memset(&o, 0, sizeof(o));
	big = calloc(nbig, sizeof(*big));
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(pcpu_set_nr_slots(PCPU_MAX_SLOTS), 0);
	ck_assert_int_eq(pcpu_counter_init(&d, 5, DUAL), 0);
	pcpu_counter_add(&d, 2);
	want = 7;

	/* 1: not even one area fits. */
	o.limit1 = tu_limit_as(512ull << 20, &old, false);
	if (o.limit1 == 0) {
		errno = 0;
		o.area = pcpu_alloc(8, 0);
		o.alloc_errno = errno;
		o.eager = pcpu_counter_init(&e, 1, EAGER);
		o.many = pcpu_counter_init_many(many, 1, EAGER, 3);
		o.lazy = pcpu_counter_init(&l, 1, LAZY);
		o.lazy_many = pcpu_counter_init_many(lmany, 1, LAZY, 3);
		o.share1 = pcpu_counter_share(&d);
		o.shared1 = pcpu_counter_is_shared(&d);
		/* A non-owner's updates cannot upgrade: they still count. */
		memset(&job, 0, sizeof(job));
		job.c = &d;
		job.delta = 3;
		job.times = 100;
		o.thread1 = tu_run_in_thread(add_job_fn, &job);
		pcpu_counter_add(&d, 1);	/* the owner too */
		o.want1 = want + job.added + 1;
		o.sum1 = pcpu_counter_sum(&d);
		o.cmp1 = pcpu_counter_compare(&d, o.want1);
		o.shared1 |= pcpu_counter_is_shared(&d);
		/* Same count, so no change: 0 only if no area is live. */
		o.busy1 = pcpu_set_nr_slots(PCPU_MAX_SLOTS);

		/* 2: room for a few groups, not for 6: unwind. */
		o.limit2 = tu_limit_as(5ull << 29, &old, true);
		if (o.limit2 == 0) {
			o.big = pcpu_counter_init_many(big, 1, EAGER, nbig);
			o.busy2 = pcpu_set_nr_slots(PCPU_MAX_SLOTS);
		}

		/*
		 * 3: LAZY groups cost address space only, so room for two
		 * chunks (each reserved at twice its size, then trimmed):
		 * two groups fit, six do not, and init_many unwinds the
		 * groups it made (LAZY: clean areas) after they did fit.
		 */
		o.limit3 = tu_limit_as(9ull << 29, &old, true);
		if (o.limit3 == 0) {
			o.fit = pcpu_counter_init_many(big, 1, LAZY,
						       2 * ngroup);
			if (o.fit == 0)
				pcpu_counter_destroy_many(big, 2 * ngroup);
			o.big_lazy = pcpu_counter_init_many(big, 1, LAZY, nbig);
			o.busy3 = pcpu_set_nr_slots(PCPU_MAX_SLOTS);
		}
		o.restore = tu_restore_as(&old);
	}
	ck_assert_int_eq(o.limit1, 0);
	ck_assert_int_eq(o.restore, 0);
	if (o.area)
		pcpu_free(o.area);
	if (o.eager == 0)
		pcpu_counter_destroy(&e);
	if (o.many == 0)
		pcpu_counter_destroy_many(many, 3);
	if (o.lazy == 0)
		pcpu_counter_destroy(&l);
	if (o.lazy_many == 0)
		pcpu_counter_destroy_many(lmany, 3);
	if (o.big == 0)
		pcpu_counter_destroy_many(big, nbig);
	if (o.big_lazy == 0)
		pcpu_counter_destroy_many(big, nbig);

	ck_assert_msg(o.area == NULL && o.alloc_errno == ENOMEM,
		      "pcpu_alloc under RLIMIT_AS: %p, errno %d", o.area,
		      o.alloc_errno);
	ck_assert_int_eq(o.eager, -ENOMEM);
	ck_assert_int_eq(o.many, -ENOMEM);
	ck_assert_int_eq(o.lazy, -ENOMEM);
	ck_assert_int_eq(o.lazy_many, -ENOMEM);
	ck_assert_int_eq(o.share1, -ENOMEM);
	ck_assert_msg(!o.shared1, "is_shared true though no slots could be "
		      "allocated");
	ck_assert_int_eq(o.thread1, 0);
	ck_assert_msg(o.sum1 == o.want1, "updates without slots: sum %lld, "
		      "want %lld", (long long)o.sum1, (long long)o.want1);
	ck_assert_int_eq(o.cmp1, 0);
	ck_assert_msg(o.busy1 == 0, "failed inits/upgrades left an area live "
		      "(set_nr_slots = %d)", o.busy1);
	ck_assert_int_eq(o.limit2, 0);
	ck_assert_int_eq(o.big, -ENOMEM);
	ck_assert_msg(o.busy2 == 0, "init_many failing part-way left an area "
		      "live (set_nr_slots = %d)", o.busy2);
	ck_assert_int_eq(o.limit3, 0);
	ck_assert_msg(o.fit == 0, "LAZY init_many of two groups under the "
		      "larger limit: %d (the unwind case below needs them to "
		      "fit)", o.fit);
	ck_assert_int_eq(o.big_lazy, -ENOMEM);
	ck_assert_msg(o.busy3 == 0, "LAZY init_many failing part-way left an "
		      "area live (set_nr_slots = %d)", o.busy3);

	/* 3: memory again: the next non-owner update upgrades. */
	want = o.want1;
	want += add_from_thread(&d, -1, 10);
	ck_assert_msg(pcpu_counter_is_shared(&d), "the upgrade was not "
		      "retried once memory was available");
	ck_assert_int_eq(pcpu_counter_share(&d), 0);
	expect_value(&d, want, "after ENOMEM");
	pcpu_counter_destroy(&d);
	free(big);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

static Suite *counter_suite(void)
{
	Suite *s = suite_create("counter");
	TCase *tc;

	tc = tu_tcase(s, "init", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_sizeof);
	tcase_add_loop_test(tc, test_init_values, 0, N_POLICIES);
	tcase_add_loop_test(tc, test_init_extremes, 0, N_POLICIES);
	tcase_add_test(tc, test_init_einval);
	tcase_add_test(tc, test_init_many_einval);
	tcase_add_loop_test(tc, test_init_many_large, 0, N_POLICIES);
	tcase_add_test(tc, test_destroy_null);

	tc = tu_tcase(s, "update", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_owner_add);
	tcase_add_loop_test(tc, test_percpu_add, 0, N_PERCPU);
	tcase_add_test(tc, test_foreign_add_upgrades);
	tcase_add_test(tc, test_share);
	tcase_add_test(tc, test_share_race);

	tc = tu_tcase(s, "read_compare", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_read_compare, 0, 3);
	tcase_add_loop_test(tc, test_compare_extreme_rhs, 0, N_POLICIES);
	tcase_add_loop_test(tc, test_publish_rate, 0, 3);

	tc = tu_tcase(s, "set_reset", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_set);
	tcase_add_loop_test(tc, test_set_slot_counts, 0, 2);
	tcase_add_test(tc, test_reset_new_owner);
	tcase_add_test(tc, test_reset_shared);
	tcase_add_loop_test(tc, test_reset_percpu, 0, N_PERCPU);
	tcase_add_loop_test(tc, test_many_members, 0, N_POLICIES);

	tc = tu_tcase(s, "memory", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_unshared_holds_no_area);
	tcase_add_loop_test(tc, test_share_after_slot_change, 0, 2);
	tcase_add_test(tc, test_enomem);
	return s;
}

int main(void)
{
	return tu_main(counter_suite());
}
