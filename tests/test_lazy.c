/* SPDX-License-Identifier: MIT */
/*
 * test_lazy.c - what LAZY counters, and DUAL counters after their upgrade,
 * promise beyond the plain counter API (test_counter.c covers that for
 * every policy):
 *
 *  basics       no owner, shared from init, init_many groups, counters
 *               that share a group or a page stay independent, deltas at
 *               every edge of the slot encoding on untouched and touched
 *               slots.
 *  memory       the pages of slots a counter never touched are never
 *               accessed, at 4096 slots, whatever sum, compare, set, reset
 *               and destroy do (mincore(2); white-box, see below).
 *  reuse        destroyed counters give their area back clean, and areas
 *               pcpu_free() returned dirty are cleaned before a LAZY or
 *               DUAL counter uses them.
 *  read         read() within (BATCH - 1) times the touched slots of sum(),
 *               compare() exact everywhere near that.
 *  first touch  fresh counters raced by threads released at once, which
 *               hop CPUs and are moved by another thread mid-update.
 *  churn        short-lived threads (rseq registration and its undoing at
 *               thread exit, adds from a TLS destructor after that).
 *  signals      an interval timer's handler adds to the counter the main
 *               loop is adding to, on every path: owner word, slots, first
 *               touch, upgrade.
 *  method       fewer slots than CPUs turn the method atomic.
 *  spread       (atomic method only) threads that claim CPU numbers up to
 *               16383 touch slots in every group of the touch map: sums,
 *               bounds, memory and reuse with many touched slots, and
 *               first touches racing on shared map words.
 *
 * White-box parts.  The per-CPU area of a counter is reachable only
 * through its private field pcpu__slots; slot s's copy is PCPU__UNIT_SIZE
 * * s bytes further (pcpu/alloc.h), and the touch map sits after the
 * units (lib/alloc.c).  The memory and reuse tests read those, and rely on
 * documented allocator behaviours: a slot-count change releases every
 * chunk (fresh, untouched memory); lazy areas up to 64 granules come from
 * per-slot caches of clean areas (a destroy then an init on the same slot
 * gets the same area back), bigger ones and cache refills from the chunk,
 * first fit.
 *
 * Every loop is bounded by wall-clock time (tu_stress_seconds() scaled);
 * workers record, the main thread asserts after joining.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define DUAL	PCPU_COUNTER_DUAL
#define EAGER	PCPU_COUNTER_EAGER
#define LAZY	PCPU_COUNTER_LAZY
#define BATCH	PCPU_COUNTER_BATCH
#define B1	((uint64_t)BATCH - 1)	/* q = P - B1 (lib/counter.c) */
#define WTOUCH	(2 * B1 + 1)		/* w of a touched slot */
#define UNIT	PCPU__UNIT_SIZE

static const char *policy_name(unsigned flags)
{
	return flags == EAGER ? "EAGER" : flags == LAZY ? "LAZY" : "DUAL";
}

/* A time budget for one case: a share of tu_stress_seconds(). */
static double case_seconds(double share)
{
	return tu_stress_seconds() * share;
}

/* Loop tests over slot counts: 0 is the default. */
static const unsigned slot_counts[] = { 0, 4096 };

static unsigned slots_for(int i)
{
	return slot_counts[i] ? slot_counts[i] : tu_default_slots;
}

/*
 * Set @n slots with no chunk left from before: a slot-count change
 * releases every chunk (white-box, lib/alloc.c), so the chunks this test
 * gets are fresh and their pages untouched.
 */
static void fresh_chunks(unsigned n)
{
	ck_assert_int_eq(pcpu_set_nr_slots(n == 1 ? 2 : 1), 0);
	ck_assert_int_eq(pcpu_set_nr_slots(n), 0);
}

/* sum exact, compare exact around it, read within @bound. */
static void expect_sum(const struct pcpu_counter *c, int64_t want,
		       int64_t bound, const char *what)
{
	int64_t sum = pcpu_counter_sum(c), rd = pcpu_counter_read(c);

	ck_assert_msg(sum == want, "%s: sum %lld, want %lld", what,
		      (long long)sum, (long long)want);
	ck_assert_msg(tu_dist(rd, want) <= (uint64_t)bound, "%s: read %lld, "
		      "sum %lld: farther than %lld", what, (long long)rd,
		      (long long)want, (long long)bound);
	ck_assert_int_eq(pcpu_counter_compare(c, want), 0);
	ck_assert_int_eq(pcpu_counter_compare(c, want - 1), 1);
	ck_assert_int_eq(pcpu_counter_compare(c, want + 1), -1);
}

/*
 * White-box: word @w of slot @s's copy of @c: {u, q, w, dir}
 * (lib/counter.c): u the slot's running total since set/reset, P = q + B1
 * its published part, w WTOUCH once touched; all zero untouched.
 */
static uint64_t raw_word(const struct pcpu_counter *c, unsigned s, unsigned w)
{
	const char *p = (const char *)c->pcpu__slots + (size_t)s * UNIT;

	return __atomic_load_n((const uint64_t *)(const void *)p + w,
			       __ATOMIC_RELAXED);
}

/* u of slot @s. */
static uint64_t raw_slot(const struct pcpu_counter *c, unsigned s)
{
	return raw_word(c, s, 0);
}

/* Whether slot @s of @c holds exactly u = @u with published part @pub. */
static bool slot_is(const struct pcpu_counter *c, unsigned s, uint64_t u,
		    uint64_t pub)
{
	return raw_word(c, s, 0) == u && raw_word(c, s, 1) + B1 == pub &&
	       raw_word(c, s, 2) == WTOUCH;
}

/*
 * White-box: the slots @c has touched (w != 0), into @out (up to @max);
 * how many.  Helper threads of separate pin_add() calls may find other
 * slots on the same CPUs (mm_cid), so the touched set is read, not
 * predicted.
 */
static unsigned touched_list(const struct pcpu_counter *c, unsigned *out,
			     unsigned max)
{
	unsigned s, n = pcpu_nr_slots(), t = 0;

	for (s = 0; s < n; s++)
		if (raw_word(c, s, 2) && t < max)
			out[t++] = s;
	return t;
}

static unsigned touched_now(const struct pcpu_counter *c)
{
	unsigned s, n = pcpu_nr_slots(), t = 0;

	for (s = 0; s < n; s++)
		t += raw_word(c, s, 2) != 0;
	return t;
}

/* Whether slot @s of @c is all zero (untouched, or clean). */
static bool slot_clean(const struct pcpu_counter *c, unsigned s)
{
	return !raw_word(c, s, 0) && !raw_word(c, s, 1) && !raw_word(c, s, 2) &&
	       !raw_word(c, s, 3);
}

/* --- pinned adds ---------------------------------------------------------- */

/* Up to two allowed CPUs that map to distinct slots now; how many. */
static unsigned pick_cpus(int cpus[2], unsigned slots[2])
{
	unsigned n = pcpu_nr_slots(), k = 0, i, s;

	for (i = 0; i < tu_cpus.n && k < 2; i++) {
		s = (unsigned)tu_cpus.cpu[i] % n;
		if (k == 1 && s == slots[0])
			continue;
		cpus[k] = tu_cpus.cpu[i];
		slots[k++] = s;
	}
	return k;
}

/*
 * A thread pinned in turn to each picked CPU adds, to every stride-th of
 * @n counters, delta + (i % spread): nothing else runs in it, so the
 * slots it touches are exactly the picked CPUs' slots.
 */
struct pin_job {
	struct pcpu_counter *c;
	unsigned n, stride, spread;
	int64_t delta;
	int cpus[2];
	unsigned ncpu;		/* picked */
	unsigned done;		/* CPUs added on (distinct slots) */
	unsigned slots[2];	/* pcpu_this_slot() on each */
	unsigned moved;		/* the slot changed during the adds */
	int err;
};

static int64_t pin_delta(const struct pin_job *j, unsigned i)
{
	return j->delta + (int64_t)(i % j->spread);
}

static void *pin_job_fn(void *p)
{
	struct pin_job *j = p;
	unsigned k, i;

	for (k = 0; k < j->ncpu; k++) {
		unsigned s;

		j->err = tu_pin(j->cpus[k]);
		if (j->err)
			break;
		/* With mm_cid slots (pcpu_slot_index()) the slot need not
		 * follow the CPU: add only on a slot not added to yet. */
		s = pcpu_this_slot();
		if (j->done == 1 && s == j->slots[0])
			continue;
		for (i = 0; i < j->n; i += j->stride)
			pcpu_counter_add(&j->c[i], pin_delta(j, i));
		if (pcpu_this_slot() != s)
			j->moved++;
		j->slots[j->done++] = s;
	}
	return NULL;
}

/*
 * Run a pin_job over @c[0..n) (every counter, delta + i % spread each);
 * add what it added to @want[] (may be NULL).  Return: the CPUs used;
 * @slots gets their slots.
 */
static unsigned pin_add(struct pcpu_counter *c, unsigned n, int64_t delta,
			unsigned spread, int64_t *want, unsigned slots[2])
{
	struct pin_job j;
	unsigned i, dummy[2];

	memset(&j, 0, sizeof(j));
	j.c = c;
	j.n = n;
	j.stride = 1;
	j.spread = spread ? spread : 1;
	j.delta = delta;
	j.ncpu = pick_cpus(j.cpus, dummy);
	ck_assert_uint_ge(j.ncpu, 1);
	ck_assert_int_eq(tu_run_in_thread(pin_job_fn, &j), 0);
	ck_assert_msg(j.err == 0, "pinning to CPU %d: %d",
		      j.cpus[j.done < 2 ? j.done : 1], j.err);
	ck_assert_uint_ge(j.done, 1);
	ck_assert_msg(j.moved == 0, "the pinned thread's slot changed during "
		      "its adds: which slots were touched is unknown");
	if (slots)
		for (i = 0; i < j.done; i++)
			slots[i] = j.slots[i];
	/* Modulo 2^64, as the counter is: the total may pass through
	 * values an int64_t product cannot hold. */
	if (want)
		for (i = 0; i < n; i++)
			want[i] = (int64_t)((uint64_t)want[i] +
					    (uint64_t)pin_delta(&j, i) * j.done);
	return j.done;
}

/*
 * A per-CPU counter: LAZY or EAGER, or a DUAL one shared by its owner
 * (the main thread).
 */
static void init_percpu(struct pcpu_counter *c, int64_t v, unsigned flags)
{
	ck_assert_int_eq(pcpu_counter_init(c, v, flags), 0);
	if (flags == DUAL)
		ck_assert_int_eq(pcpu_counter_share(c), 0);
	ck_assert(pcpu_counter_is_shared(c));
}

/* --- fake CPU numbers ------------------------------------------------------- */

/*
 * Under the atomic method with no rseq area (PCPU_UPDATE_METHOD=atomic,
 * or a build without the rseq fast path) the library asks sched_getcpu()
 * which CPU a thread runs on (pcpu/cpu.h, pcpu_this_slot()).  This file
 * defines sched_getcpu(), so that a thread can claim any CPU number, as if
 * it ran on a 16384-CPU machine, and reach any slot.  The atomic method
 * must stay exact whatever the number (threads that migrate, or CPUs that
 * share a slot, look the same to it).  Under the rseq methods the library
 * reads the kernel's rseq area instead and the "spread" tests skip.
 */
static __thread int fake_cpu = -1;

int sched_getcpu(void)
{
	unsigned cpu = 0;

	if (fake_cpu >= 0)
		return fake_cpu;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 29)
	if (getcpu(&cpu, NULL))
		return -1;
#else
	if (syscall(SYS_getcpu, &cpu, NULL, NULL))
		return -1;
#endif
	return (int)cpu;
}

/* Whether claimed CPU numbers reach the library at the current count. */
static bool fake_cpus_work(void)
{
	unsigned nr = pcpu_nr_slots(), got;

	fake_cpu = (int)(nr + 5);
	got = pcpu_this_slot();
	fake_cpu = -1;
	return got == 5 % nr && nr > 5;
}

/*
 * Slots spread over the whole range of @nr: both ends, group edges, the
 * middle and every 97th.  Return: how many (at most @max), in @out.
 */
static unsigned spread_slots(unsigned nr, unsigned *out, unsigned max)
{
	const unsigned edges[] = {
		0, 1, 63, 64, 65, 127, 128, 319, 320, nr / 2 - 1, nr / 2,
		nr - 65, nr - 64, nr - 63, nr - 1,
	};
	unsigned char *seen = calloc(nr, 1);
	unsigned n = 0, i, s;

	if (!seen)
		return 0;
	for (i = 0; i < sizeof(edges) / sizeof(edges[0]) + nr / 97; i++) {
		s = i < sizeof(edges) / sizeof(edges[0]) ? edges[i] :
		    5 + 97 * (unsigned)(i - sizeof(edges) / sizeof(edges[0]));
		if (s >= nr || seen[s] || n == max)
			continue;
		seen[s] = 1;
		out[n++] = s;
	}
	free(seen);
	return n;
}

/* A thread that adds @delta to each counter as each CPU in @cpus. */
struct fake_job {
	struct pcpu_counter *c;
	unsigned nc;
	const unsigned *cpus;
	unsigned ncpu;
	int64_t delta;
};

static void *fake_job_fn(void *p)
{
	struct fake_job *j = p;
	unsigned i, k;

	for (i = 0; i < j->ncpu; i++) {
		fake_cpu = (int)j->cpus[i];
		for (k = 0; k < j->nc; k++)
			pcpu_counter_add(&j->c[k], j->delta);
	}
	fake_cpu = -1;
	return NULL;
}

/* Add @delta to @c[0..nc) as every CPU in @cpus; @want[k] follows. */
static void fake_add(struct pcpu_counter *c, unsigned nc, const unsigned *cpus,
		     unsigned ncpu, int64_t delta, int64_t *want)
{
	struct fake_job j = { c, nc, cpus, ncpu, delta };
	unsigned k;

	ck_assert_int_eq(tu_run_in_thread(fake_job_fn, &j), 0);
	for (k = 0; k < nc; k++)
		want[k] += delta * (int64_t)ncpu;
}

/* --- basics ----------------------------------------------------------------- */

START_TEST(test_lazy_basics)
{
	struct pcpu_counter c;
	unsigned touched, i;
	int64_t want = 100, rd;

	ck_assert_int_eq(pcpu_counter_init(&c, 100, LAZY), 0);
	ck_assert_msg(pcpu_counter_is_shared(&c), "LAZY: not shared at init");
	tu_expect_area("LAZY, untouched");
	expect_sum(&c, want, 0, "LAZY, untouched");
	ck_assert_int_eq(pcpu_counter_read(&c), 100);

	/*
	 * No owner: the main thread's small adds go to its CPU's slot, not to
	 * an owner word, so read() (owner word + shared total) misses them.
	 */
	pcpu_counter_add(&c, 5);
	pcpu_counter_inc(&c);
	want += 6;
	rd = pcpu_counter_read(&c);
	ck_assert_msg(rd != want, "LAZY: read == sum == %lld after small adds "
		      "by the initializing thread: it acted as an owner",
		      (long long)want);
	expect_sum(&c, want, tu_read_bound(), "LAZY, main adds");

	/* Reset keeps the slots and makes nobody the owner. */
	pcpu_counter_reset(&c);
	ck_assert(pcpu_counter_is_shared(&c));
	tu_expect_area("LAZY, reset");
	expect_sum(&c, 0, 0, "LAZY, reset");
	pcpu_counter_add(&c, 7);
	ck_assert_msg(pcpu_counter_read(&c) != 7, "LAZY: reset made the "
		      "resetting thread an owner");
	want = 7;
	touched = pin_add(&c, 1, BATCH - 1, 1, &want, NULL);
	expect_sum(&c, want, tu_read_bound_touched(touched + 1),
		   "LAZY, reset, adds");

	/* Set, then count on. */
	for (i = 0; i < 3; i++) {
		pcpu_counter_set(&c, -1000 * (int64_t)i);
		want = -1000 * (int64_t)i;
		expect_sum(&c, want, 0, "LAZY, set");
		ck_assert(pcpu_counter_is_shared(&c));
		pcpu_counter_dec(&c);
		want--;
		pin_add(&c, 1, 2, 1, &want, NULL);
		expect_sum(&c, want, tu_read_bound(), "LAZY, set, adds");
	}
	pcpu_counter_destroy(&c);
	tu_expect_no_area("LAZY destroyed");
}
END_TEST

/* 10000 LAZY counters: ten groups of 1024; updates, members, clean reuse. */
START_TEST(test_lazy_init_many)
{
	const unsigned n = 10000;
	struct pcpu_counter *c;
	int64_t *want, sum, v0 = -321;
	unsigned i, round;

	ck_assert_uint_lt(2 * (PCPU_ALLOC_MAX / 32), n);	/* several groups */
	c = calloc(n, sizeof(*c));
	want = calloc(n, sizeof(*want));
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(want);
	for (round = 0; round < 2; round++) {
		/* Round 1 reuses the areas round 0 gave back. */
		ck_assert_int_eq(pcpu_counter_init_many(c, v0, LAZY, n), 0);
		tu_expect_area("LAZY init_many");
		for (i = 0; i < n; i++) {
			tu_check(pcpu_counter_is_shared(&c[i]), "round %u, "
				 "counter %u: not shared", round, i);
			sum = pcpu_counter_sum(&c[i]);
			tu_check(sum == v0, "round %u, counter %u: initial sum "
				 "%lld, want %lld", round, i, (long long)sum,
				 (long long)v0);
			want[i] = v0;
		}
		/* Main adds to every third, pinned threads to all. */
		for (i = 0; i < n; i += 3) {
			pcpu_counter_add(&c[i], (int64_t)(i % 300) - 150);
			want[i] += (int64_t)(i % 300) - 150;
		}
		pin_add(c, n, -20, 41, want, NULL);
		/* Members: reset and set touch only their own counter. */
		pcpu_counter_reset(&c[4097]);
		want[4097] = 0;
		pcpu_counter_set(&c[4096], 5);
		want[4096] = 5;
		pcpu_counter_set(&c[9999], -5);
		want[9999] = -5;
		for (i = 0; i < n; i++) {
			sum = pcpu_counter_sum(&c[i]);
			tu_check(sum == want[i], "round %u, counter %u of %u: sum "
				 "%lld, want %lld", round, i, n, (long long)sum,
				 (long long)want[i]);
			tu_check(pcpu_counter_compare(&c[i], want[i]) == 0,
				 "round %u, counter %u: compare != 0", round, i);
		}
		pcpu_counter_destroy_many(c, n);
		tu_expect_no_area("LAZY destroy_many");
		v0 = 77;
	}
	free(want);
	free(c);
}
END_TEST

/*
 * Deltas around every edge of the slot encoding (pcpu/counter.h: the
 * fast path commits when (u + delta) - q < w, unsigned, with q = P -
 * (BATCH - 1) and w = 2 BATCH - 1: so |u + delta - P| < BATCH, and an
 * untouched slot's w = 0 sends every first add to the slow path) and far
 * beyond, positive and negative, so that |delta| * 2 still fits: the first
 * add to an untouched slot, and adds to a touched one, from threads on
 * each CPU.
 */
static unsigned edge_deltas(int64_t *out, unsigned max)
{
	const int64_t b = BATCH, w = 2 * BATCH - 1;
	const int64_t base[] = {
		1, b - 2, b - 1, b, b + 1, w - 1, w, w + 1, 2 * b, 3 * b,
		INT64_C(1) << 31, INT64_C(1) << 32, INT64_C(1) << 61,
		(INT64_C(1) << 61) + b, (INT64_C(1) << 62) - b,
		(INT64_C(1) << 62) - 1,
	};
	unsigned n = 0, i;

	for (i = 0; i < sizeof(base) / sizeof(base[0]) && n + 2 <= max; i++) {
		out[n++] = base[i];
		out[n++] = -base[i];
	}
	/* -2^62: twice it is still INT64_MIN. */
	if (n < max)
		out[n++] = -(INT64_C(1) << 62);
	return n;
}

/*
 * A thread pinned to each picked CPU in turn runs, for every delta d:
 * fresh counter (value -d, untouched): += d, += -d; the touched counter:
 * set(-d), += 1, += d, += -d; and records the sum after each step.
 */
#define EDGE_MAX	64

struct edge_job {
	struct pcpu_counter *fresh;	/* [delta * ncpu + cpu] */
	struct pcpu_counter *touched;
	const int64_t *d;
	unsigned n, ncpu, done;
	int cpus[2];
	int64_t got[2][EDGE_MAX][4];
	int err;
};

static void *edge_job_fn(void *p)
{
	struct edge_job *j = p;
	struct pcpu_counter *f;
	unsigned k, i;
	int64_t d;

	for (k = 0; k < j->ncpu; k++) {
		j->err = tu_pin(j->cpus[k]);
		if (j->err)
			return NULL;
		for (i = 0; i < j->n; i++) {
			d = j->d[i];
			f = &j->fresh[i * j->ncpu + k];
			pcpu_counter_add(f, d);
			j->got[k][i][0] = pcpu_counter_sum(f);
			pcpu_counter_add(f, -d);
			j->got[k][i][1] = pcpu_counter_sum(f);
			pcpu_counter_set(j->touched, -d);
			pcpu_counter_inc(j->touched);
			pcpu_counter_add(j->touched, d);
			j->got[k][i][2] = pcpu_counter_sum(j->touched);
			pcpu_counter_add(j->touched, -d);
			j->got[k][i][3] = pcpu_counter_sum(j->touched);
		}
		j->done++;
	}
	return NULL;
}

/*
 * Near INT64_MAX (and INT64_MIN): one slot holds -200 and a second slot's
 * +257 has folded, so the words read() adds exceed INT64_MAX although the
 * value does not (the fuzzer found read() 2^64 off there, and compare()
 * with the wrong sign).  Loop index: policy (LAZY, DUAL shared, EAGER)
 * times the end of the range.
 */
struct limit_add {
	struct pcpu_counter *c;
	int cpu;
	int64_t delta;
	int err;
};

static void *limit_add_fn(void *p)
{
	struct limit_add *a = p;

	a->err = tu_pin(a->cpu);
	if (!a->err)
		pcpu_counter_add(a->c, a->delta);
	return NULL;
}

START_TEST(test_read_near_limits)
{
	static const unsigned pol[] = { PCPU_COUNTER_LAZY, PCPU_COUNTER_DUAL,
					PCPU_COUNTER_EAGER };
	unsigned flags = pol[_i % 3], slots[2], k, i;
	int64_t sign = _i < 3 ? 1 : -1;
	int64_t start = sign > 0 ? INT64_MAX - 100 : INT64_MIN + 100;
	int64_t want = start - sign * 200 + sign * 257, rd;
	struct pcpu_counter c;
	struct limit_add a[2];
	int cpus[2];

	k = pick_cpus(cpus, slots);
	if (k < 2)
		/* Both adds in one slot: nothing folds, so the words cannot
		 * wrap; the values are still checked, the case is not. */
		printf("read_near_limits: one slot usable, the wrap case "
		       "(two slots) not reached\n");
	ck_assert_int_eq(pcpu_counter_init(&c, start, flags), 0);
	if (flags == PCPU_COUNTER_DUAL)
		ck_assert_int_eq(pcpu_counter_share(&c), 0);
	for (i = 0; i < 2; i++) {
		a[i].c = &c;
		a[i].cpu = cpus[i % k];
		a[i].delta = i == 0 ? -sign * 200 : sign * 257;
		ck_assert_int_eq(tu_run_in_thread(limit_add_fn, &a[i]), 0);
		ck_assert_int_eq(a[i].err, 0);
	}
	ck_assert_int_eq(pcpu_counter_sum(&c), want);
	rd = pcpu_counter_read(&c);
	ck_assert_msg(tu_dist(rd, want) <= (uint64_t)tu_read_bound_touched(k),
		      "read %lld, sum %lld (%u slots touched)", (long long)rd,
		      (long long)want, k);
	ck_assert_int_eq(pcpu_counter_compare(&c, 0), (int)sign);
	ck_assert_int_eq(pcpu_counter_compare(&c, want), 0);
	ck_assert_int_eq(pcpu_counter_compare(&c, sign > 0 ? INT64_MAX :
					      INT64_MIN), (int)-sign);
	pcpu_counter_destroy(&c);
}
END_TEST

START_TEST(test_edge_deltas)
{
	const unsigned pol[3] = { LAZY, DUAL, EAGER };
	unsigned flags = pol[_i], n, i, k, slots[2];
	struct pcpu_counter *fresh, touched;
	int64_t deltas[EDGE_MAX], d, want[4];
	struct edge_job *j;

	n = edge_deltas(deltas, EDGE_MAX);
	j = calloc(1, sizeof(*j));
	ck_assert_ptr_nonnull(j);
	j->ncpu = pick_cpus(j->cpus, slots);
	fresh = calloc((size_t)n * j->ncpu, sizeof(*fresh));
	ck_assert_ptr_nonnull(fresh);
	for (i = 0; i < n * j->ncpu; i++)
		init_percpu(&fresh[i], -deltas[i / j->ncpu], flags);
	init_percpu(&touched, 0, flags);
	j->fresh = fresh;
	j->touched = &touched;
	j->d = deltas;
	j->n = n;
	ck_assert_int_eq(tu_run_in_thread(edge_job_fn, j), 0);
	ck_assert_int_eq(j->err, 0);
	ck_assert_uint_eq(j->done, j->ncpu);
	for (k = 0; k < j->ncpu; k++)
		for (i = 0; i < n; i++) {
			d = deltas[i];
			want[0] = 0;
			want[1] = -d;
			want[2] = 1;
			want[3] = 1 - d;
			tu_check(j->got[k][i][0] == want[0] &&
				 j->got[k][i][1] == want[1],
				 "%s, CPU %d, delta %lld on an untouched slot: "
				 "sums %lld, %lld, want %lld, %lld",
				 policy_name(flags), j->cpus[k], (long long)d,
				 (long long)j->got[k][i][0],
				 (long long)j->got[k][i][1], (long long)want[0],
				 (long long)want[1]);
			tu_check(j->got[k][i][2] == want[2] &&
				 j->got[k][i][3] == want[3],
				 "%s, CPU %d, delta %lld on a touched slot: sums "
				 "%lld, %lld, want %lld, %lld", policy_name(flags),
				 j->cpus[k], (long long)d,
				 (long long)j->got[k][i][2],
				 (long long)j->got[k][i][3], (long long)want[2],
				 (long long)want[3]);
		}
	for (i = 0; i < n * j->ncpu; i++) {
		d = deltas[i / j->ncpu];
		tu_check(pcpu_counter_sum(&fresh[i]) == -d &&
			 pcpu_counter_compare(&fresh[i], -d) == 0,
			 "%s, delta %lld: final sum %lld", policy_name(flags),
			 (long long)d, (long long)pcpu_counter_sum(&fresh[i]));
		pcpu_counter_destroy(&fresh[i]);
	}
	pcpu_counter_destroy(&touched);
	free(fresh);
	free(j);
	tu_expect_no_area("all destroyed");
}
END_TEST

/* Neighbours (same page, same group) do not see each other's updates. */
START_TEST(test_lazy_independence)
{
	struct pcpu_counter a[2], g[8], d;
	int64_t wa[2] = { 1, 2 }, wg[8], wd = 3;
	unsigned i;

	ck_assert_int_eq(pcpu_counter_init(&a[0], 1, LAZY), 0);
	ck_assert_int_eq(pcpu_counter_init(&a[1], 2, LAZY), 0);
	ck_assert_int_eq(pcpu_counter_init(&d, 3, DUAL), 0);
	ck_assert_int_eq(pcpu_counter_share(&d), 0);
	ck_assert_int_eq(pcpu_counter_init_many(g, 10, LAZY, 8), 0);
	for (i = 0; i < 8; i++)
		wg[i] = 10;

	pin_add(&a[0], 1, 30, 1, &wa[0], NULL);
	pin_add(&g[3], 1, -30, 1, &wg[3], NULL);
	pin_add(&d, 1, 1000, 1, &wd, NULL);
	pcpu_counter_add(&a[0], 9);
	wa[0] += 9;
	for (i = 0; i < 8; i++)
		tu_check(pcpu_counter_sum(&g[i]) == wg[i], "group member %u: "
			 "sum %lld, want %lld", i,
			 (long long)pcpu_counter_sum(&g[i]), (long long)wg[i]);
	expect_sum(&a[1], wa[1], 0, "untouched neighbour");
	expect_sum(&a[0], wa[0], tu_read_bound(), "touched neighbour");
	expect_sum(&d, wd, tu_read_bound(), "shared DUAL neighbour");

	/* Destroying one leaves the others exact and usable. */
	pcpu_counter_destroy(&a[0]);
	pin_add(&a[1], 1, 7, 1, &wa[1], NULL);
	expect_sum(&a[1], wa[1], tu_read_bound(), "after neighbour destroyed");
	pcpu_counter_set(&g[2], 99);
	wg[2] = 99;
	pcpu_counter_reset(&g[3]);
	wg[3] = 0;
	pin_add(g, 8, 1, 3, wg, NULL);
	for (i = 0; i < 8; i++)
		tu_check(pcpu_counter_sum(&g[i]) == wg[i], "group member %u: "
			 "sum %lld, want %lld", i,
			 (long long)pcpu_counter_sum(&g[i]), (long long)wg[i]);
	expect_sum(&d, wd, tu_read_bound(), "shared DUAL at the end");
	pcpu_counter_destroy(&a[1]);
	pcpu_counter_destroy(&d);
	pcpu_counter_destroy_many(g, 8);
	tu_expect_no_area("all destroyed");
}
END_TEST

/* --- memory: untouched slots' pages are never accessed -------------------- */

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/* 1 resident, 0 not resident or not mapped, -1 mincore failed otherwise. */
static int resident(const void *p)
{
	size_t ps = page_size();
	uintptr_t pg = (uintptr_t)p & ~(uintptr_t)(ps - 1);
	unsigned char v = 0;

	if (mincore((void *)pg, ps, &v) == 0)
		return v & 1;
	return errno == ENOMEM ? 0 : -1;
}

/*
 * With transparent huge pages "always", a write may fault in a whole huge
 * page: pages sharing one with a touched page are then not evidence of
 * anything.  Return the huge page size to exclude by, or 0.
 */
static size_t thp_exclusion(void)
{
	char buf[128];
	size_t sz = 0;
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f) || !strstr(buf, "[always]")) {
		fclose(f);
		return 0;
	}
	fclose(f);
	f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re");
	if (f) {
		if (fscanf(f, "%zu", &sz) != 1)
			sz = 0;
		fclose(f);
	}
	return sz ? sz : (size_t)2 << 20;
}

/*
 * The pages of a LAZY/DUAL counter's area: unit page of every slot, then
 * (white-box, lib/alloc.c) the touch map: a summary word in the unit after
 * the last slot, and the mask word of group k (slots 64k..64k+63) in the
 * unit after that plus k.  All at the area's offset in their unit.
 */
struct page_report {
	unsigned checked, bad_resident, missing, errors, excluded;
	long first_bad, first_missing;	/* unit index, -1 none */
};

static const char *unit_addr(const struct pcpu_counter *c, unsigned unit)
{
	return (const char *)c->pcpu__slots + (size_t)unit * UNIT;
}

/*
 * Which units of an area at @nr slots a counter that touched @slots[0..nt)
 * has written (1): those slots' units, the summary's if any, and the mask
 * units of their groups.  Readers visit every mask word a summary bit
 * stands for (one group up to 4096 slots, more above): those of untouched
 * groups may be resident from reads (2).  Untouched slots' units must not
 * be (0).  calloc()ed; NULL if out of memory.
 */
static unsigned char *touched_units(unsigned nr, const unsigned *slots,
				    unsigned nt)
{
	unsigned groups = (nr + 63) / 64, per_bit = (groups + 63) / 64;
	unsigned char *t = calloc(nr + 1 + groups, 1);
	unsigned i, g, g0;

	if (!t)
		return NULL;
	for (i = 0; i < nt; i++) {
		g0 = slots[i] / 64 / per_bit * per_bit;
		for (g = g0; g < g0 + per_bit && g < groups; g++)
			if (!t[nr + 1 + g])
				t[nr + 1 + g] = 2;
	}
	for (i = 0; i < nt; i++) {
		t[slots[i]] = 1;
		t[nr + 1 + slots[i] / 64] = 1;
	}
	if (nt)
		t[nr] = 1;
	return t;
}

/*
 * Check every page of @c's area at @nr slots: resident exactly when the
 * counter touched it (slots in @slots[0..nt), their map words).  The
 * summary word is read by every sum of a counter with slots: with
 * @summary_read its page is not judged while no slot is touched.
 */
static void scan_pages(const struct pcpu_counter *c, unsigned nr,
		       const unsigned *slots, unsigned nt, bool summary_read,
		       struct page_report *r)
{
	/*
	 * The slot units only: the touch map now lives in the meta blocks
	 * after the units (lib/alloc.c), whose pages other areas' meta
	 * words share (written at their init), so they prove nothing here.
	 */
	unsigned units = nr, u;
	unsigned char *want = touched_units(nr, slots, nt), *near = NULL;
	size_t huge = thp_exclusion(), nh = 0;
	uintptr_t h0 = (uintptr_t)unit_addr(c, 0) / (huge ? huge : 1);
	int res;

	memset(r, 0, sizeof(*r));
	r->first_bad = r->first_missing = -1;
	if (huge) {
		/* Huge pages holding a touched unit. */
		nh = (uintptr_t)unit_addr(c, units) / huge - h0 + 1;
		near = calloc(nh, 1);
	}
	if (!want || (huge && !near)) {
		r->errors = 1;
		goto out;
	}
	if (near)
		for (u = 0; u < units; u++)
			if (want[u])
				near[(uintptr_t)unit_addr(c, u) / huge - h0] = 1;
	for (u = 0; u < units; u++) {
		const char *p = unit_addr(c, u);

		if (u == nr && !nt && summary_read)
			continue;
		res = resident(p);
		r->checked++;
		if (res < 0) {
			r->errors++;
		} else if (want[u] == 2) {
			continue;
		} else if (res && !want[u]) {
			if (near && near[(uintptr_t)p / huge - h0]) {
				r->excluded++;
				continue;
			}
			if (r->first_bad < 0)
				r->first_bad = u;
			r->bad_resident++;
		} else if (!res && want[u] == 1) {
			if (r->first_missing < 0)
				r->first_missing = u;
			r->missing++;
		}
	}
out:
	free(near);
	free(want);
}

static void expect_pages(const struct pcpu_counter *c, unsigned nr,
			 const unsigned *slots, unsigned nt, bool check_missing,
			 bool summary_read, const char *what)
{
	struct page_report r;

	scan_pages(c, nr, slots, nt, summary_read, &r);
	ck_assert_msg(r.errors == 0, "%s: mincore failed on %u pages", what,
		      r.errors);
	ck_assert_msg(r.bad_resident == 0, "%s: %u pages of untouched slots "
		      "or map words are resident (first: unit %ld of %u): "
		      "something read or wrote them", what, r.bad_resident,
		      r.first_bad, nr);
	if (check_missing)
		ck_assert_msg(r.missing == 0, "%s: %u pages the counter "
			      "touched are not resident (first: unit %ld): "
			      "mincore sees nothing?", what, r.missing,
			      r.first_missing);
	if (r.excluded)
		printf("%s: %u pages not judged (transparent huge pages)\n",
		       what, r.excluded);
}

/* Add the @n slots in @js to the set @set[0..*nt) (at most 8). */
static void add_union(unsigned *set, unsigned *nt, const unsigned *js,
		      unsigned n)
{
	unsigned i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < *nt && set[k] != js[i]; k++)
			;
		if (k == *nt && *nt < 8)
			set[(*nt)++] = js[i];
	}
}

START_TEST(test_untouched_pages)
{
	const unsigned nr = 4096;
	struct pcpu_counter c[2], e, saved, g[PCPU_ALLOC_MAX / 32];
	const unsigned ng = PCPU_ALLOC_MAX / 32;	/* one group */
	int64_t want[2] = { 7, 9 };
	unsigned slots[8], js[2], nt = 0, i, u, resident_units = 0;
	const char *names[2] = { "LAZY", "DUAL upgraded" };
	char what[96];

	fresh_chunks(nr);
	ck_assert_int_eq(pcpu_counter_init(&c[0], 7, LAZY), 0);
	ck_assert_int_eq(pcpu_counter_init(&c[1], 9, DUAL), 0);
	ck_assert_int_eq(pcpu_counter_share(&c[1]), 0);
	/* Init (both counters' words share pages: check both first), then
	 * every reader and writer of an untouched counter. */
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s at %u slots, fresh", names[i],
			 nr);
		expect_pages(&c[i], nr, NULL, 0, false, false, what);
	}
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s at %u slots, fresh", names[i],
			 nr);
		expect_sum(&c[i], want[i], 0, what);
		pcpu_counter_set(&c[i], 5);
		pcpu_counter_reset(&c[i]);
		want[i] = 0;
		expect_sum(&c[i], 0, 0, what);
		snprintf(what, sizeof(what), "%s at %u slots, untouched, after "
			 "sum, compare, set, reset", names[i], nr);
		expect_pages(&c[i], nr, NULL, 0, false, true, what);
	}

	/* Touch two slots (or one, on a one-CPU machine) from non-owners. */
	add_union(slots, &nt, js, pin_add(c, 2, 3, 1, want, js));
	add_union(slots, &nt, js, pin_add(c, 2, 2 * BATCH, 1, want, js));
	pcpu_counter_add(&c[1], 11);			/* owner word */
	want[1] += 11;
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s at %u slots, %u touched",
			 names[i], nr, nt);
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), what);
		pcpu_counter_set(&c[i], 1000);
		want[i] = 1000;
		expect_sum(&c[i], want[i], 0, what);
	}
	add_union(slots, &nt, js, pin_add(c, 2, BATCH - 1, 1, want, js));
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s at %u slots, %u touched",
			 names[i], nr, nt);
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), what);
		pcpu_counter_reset(&c[i]);
		expect_sum(&c[i], 0, 0, what);
		want[i] = 0;
	}
	add_union(slots, &nt, js, pin_add(c, 2, -5, 1, want, js));
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s at %u slots, %u touched",
			 names[i], nr, nt);
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), what);
		expect_pages(&c[i], nr, slots, nt, true, true, what);
	}
	saved = c[0];
	pcpu_counter_destroy(&c[0]);
	pcpu_counter_destroy(&c[1]);
	/* The areas are free, the chunk still mapped (kept for reuse) or
	 * gone: either way destroy must not have visited untouched slots. */
	snprintf(what, sizeof(what), "LAZY at %u slots, destroyed", nr);
	expect_pages(&saved, nr, slots, nt, false, true, what);

	/* A whole group of LAZY counters: init touches no page of it. */
	fresh_chunks(nr);
	ck_assert_int_eq(pcpu_counter_init_many(g, 1, LAZY, ng), 0);
	for (u = 0; u < nr; u++) {
		uintptr_t a = (uintptr_t)unit_addr(&g[0], u);
		uintptr_t pg = a & ~(uintptr_t)(page_size() - 1);
		size_t len = a - pg + ng * 4 * sizeof(int64_t);
		size_t npg = (len + page_size() - 1) / page_size();
		unsigned char vec[64];
		unsigned k;

		ck_assert_uint_le(npg, sizeof(vec));
		ck_assert_int_eq(mincore((void *)pg, len, vec), 0);
		for (k = 0; k < npg; k++)
			tu_check(!(vec[k] & 1), "LAZY init_many of %u at %u "
				 "slots: page %u of unit %u is resident", ng,
				 nr, k, u);
	}
	tu_check(pcpu_counter_sum(&g[ng - 1]) == 1, "group member sum %lld",
		 (long long)pcpu_counter_sum(&g[ng - 1]));
	pcpu_counter_destroy_many(g, ng);

	/* The control: EAGER init writes every slot, and mincore sees it. */
	fresh_chunks(nr);
	ck_assert_int_eq(pcpu_counter_init(&e, 1, EAGER), 0);
	for (u = 0; u < nr; u++)
		resident_units += resident(unit_addr(&e, u)) == 1;
	pcpu_counter_destroy(&e);
	ck_assert_msg(resident_units == nr, "EAGER at %u slots: %u unit pages "
		      "resident, want all: mincore cannot judge here", nr,
		      resident_units);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- reuse: clean areas ------------------------------------------------------- */

/*
 * A counter touched on every picked CPU, holding unfolded values, is
 * destroyed; the next counter gets its area (from the slot's cache of
 * clean areas) and must find every slot untouched.
 */
START_TEST(test_clean_reuse)
{
	unsigned nr = slots_for(_i), p, q, slots[2], nt, k;
	const unsigned pol[2] = { LAZY, DUAL };
	struct pcpu_counter c, n2;
	int64_t want, *area;
	char what[96];

	fresh_chunks(nr);
	for (p = 0; p < 2; p++) {
		q = 1 - p;
		snprintf(what, sizeof(what), "%s after %s, %u slots",
			 policy_name(pol[q]), policy_name(pol[p]), nr);
		init_percpu(&c, 1000, pol[p]);
		want = 1000;
		nt = pin_add(&c, 1, 2 * BATCH, 1, &want, slots); /* fold */
		pin_add(&c, 1, BATCH - 1, 1, &want, NULL);	/* left over */
		expect_sum(&c, want, tu_read_bound_touched(touched_now(&c)), what);
		/* On the slots both helpers found: u = 3 BATCH - 1,
		 * published 2 BATCH, B - 1 left over. */
		nt = touched_list(&c, slots, 2);
		for (k = 0; k < nt; k++)
			ck_assert_msg(touched_now(&c) != nt ||
				      raw_slot(&c, slots[k]) != 3 * BATCH - 1 ||
				      slot_is(&c, slots[k], 3 * BATCH - 1,
					      2 * BATCH),
				      "%s: slot %u holds u %#llx q %#llx w %#llx "
				      "before destroy", what, slots[k],
				      (unsigned long long)raw_word(&c, slots[k], 0),
				      (unsigned long long)raw_word(&c, slots[k], 1),
				      (unsigned long long)raw_word(&c, slots[k], 2));
		area = c.pcpu__slots;
		/*
		 * Destroy gives the area to the caller's slot's cache of
		 * clean areas, the next init of the same class takes it from
		 * there (lib/lazy.c): pinned, the main thread stays on one
		 * slot between the two, and gets the same area back.
		 */
		ck_assert_int_eq(tu_pin(sched_getcpu()), 0);
		k = pcpu_this_slot();
		pcpu_counter_destroy(&c);
		init_percpu(&n2, -77, pol[q]);
		if (pcpu_this_slot() == k)
			ck_assert_msg(n2.pcpu__slots == area, "%s: the new "
				      "counter did not get the freed area "
				      "(white-box: per-slot cache)", what);
		ck_assert_int_eq(tu_unpin(), 0);
		/* Whatever area it got, every slot of it is clean. */
		for (k = 0; k < nr; k++)
			tu_check(slot_clean(&n2, k), "%s: slot %u of the new "
				 "counter's area holds u %#llx q %#llx w %#llx",
				 what, k,
				 (unsigned long long)raw_word(&n2, k, 0),
				 (unsigned long long)raw_word(&n2, k, 1),
				 (unsigned long long)raw_word(&n2, k, 2));
		expect_sum(&n2, -77, 0, what);
		ck_assert_int_eq(pcpu_counter_read(&n2), -77);
		/* +1 on each slot: a leftover BATCH - 1 would fold. */
		want = -77;
		nt = pin_add(&n2, 1, 1, 1, &want, slots);
		expect_sum(&n2, want, tu_read_bound_touched(nt), what);
		ck_assert_msg(pcpu_counter_read(&n2) == -77, "%s: read %lld: "
			      "a slot folded, so it did not start from 0",
			      what, (long long)pcpu_counter_read(&n2));
		for (k = 0; k < nt; k++)
			ck_assert_msg(slot_is(&n2, slots[k], 1, 0),
				      "%s: slot %u holds %#llx after +1", what,
				      slots[k],
				      (unsigned long long)raw_slot(&n2, slots[k]));
		pcpu_counter_destroy(&n2);
	}
	tu_expect_no_area("all destroyed");
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* Garbage that a slot must never be mistaken for. */
static uint64_t garbage(unsigned k)
{
	static const uint64_t g[] = {
		5,			/* a u in the fast path's window */
		-B1,			/* q of "published 0" */
		WTOUCH,			/* w of a touched slot */
		0xa5a5a5a5a5a5a5a5ull,	/* (words cycle over u, q, w, dir) */
		1,
		~0ull,
		WTOUCH,
	};

	return g[k % (sizeof(g) / sizeof(g[0]))];
}

/* Write garbage into every slot's copy of @area (@size bytes). */
static void dirty(void *area, size_t size)
{
	unsigned s, nr = pcpu_nr_slots();
	size_t w;

	for (s = 0; s < nr; s++) {
		uint64_t *p = pcpu_ptr(area, s);

		for (w = 0; w < size / 8; w++)
			p[w] = garbage(s + (unsigned)w);
	}
}

START_TEST(test_dirty_reuse)
{
	/* 68 granules in all: room for a group of 17 counters (4 words per
	 * slot each), too big for the per-slot caches (64 granules at
	 * most), so it comes from the chunk, first fit. */
	static const size_t sizes[] = { 8, 24, 64, 8, 128, 40, 256, 16 };
	const unsigned nsz = sizeof(sizes) / sizeof(sizes[0]);
	unsigned nr = slots_for(_i), i, n = 0, slots[2], nt, k;
	void *areas[sizeof(sizes) / sizeof(sizes[0])];
	struct pcpu_counter c[64], d;
	int64_t want[64], wd;
	uint64_t raw;

	fresh_chunks(nr);
	for (i = 0; i < nsz; i++) {
		areas[i] = pcpu_alloc(sizes[i], 8);
		ck_assert_ptr_nonnull(areas[i]);
		dirty(areas[i], sizes[i]);
		n += (unsigned)(sizes[i] / 8);
	}
	ck_assert_uint_le(n, 4 * 64);
	for (i = 0; i < nsz; i++)
		pcpu_free(areas[i]);
	n /= 4;		/* counters over the dirty granules */

	/* A LAZY group over the dirty granules. */
	ck_assert_int_eq(pcpu_counter_init_many(c, 11, LAZY, n), 0);
	ck_assert_msg(c[0].pcpu__slots == areas[0], "the LAZY group did not "
		      "land on the freed areas (white-box: first fit)");
	for (i = 0; i < n; i++) {
		want[i] = 11;
		tu_check(pcpu_counter_sum(&c[i]) == 11, "%u slots, LAZY %u on "
			 "a dirty granule: sum %lld before any update", nr, i,
			 (long long)pcpu_counter_sum(&c[i]));
	}
	nt = pin_add(c, n, 1, 5, want, slots);
	for (i = 0; i < n; i++) {
		tu_check(pcpu_counter_sum(&c[i]) == want[i], "%u slots, LAZY %u "
			 "on a dirty granule: sum %lld, want %lld", nr, i,
			 (long long)pcpu_counter_sum(&c[i]),
			 (long long)want[i]);
		tu_check(pcpu_counter_read(&c[i]) == 11, "LAZY %u: read %lld",
			 i, (long long)pcpu_counter_read(&c[i]));
		tu_check(pcpu_counter_compare(&c[i], want[i]) == 0,
			 "LAZY %u: compare != 0", i);
		for (k = 0; k < nt; k++) {
			raw = raw_slot(&c[i], slots[k]);
			tu_check(slot_is(&c[i], slots[k], 1 + i % 5, 0) &&
				 !raw_word(&c[i], slots[k], 3),
				 "LAZY %u, slot %u: u %#llx after one add of %u",
				 i, slots[k], (unsigned long long)raw, 1 + i % 5);
		}
	}
	pcpu_counter_destroy_many(c, n);

	/* A DUAL upgrade onto a dirty area (one counter: 4 granules; this
	 * slot's cache of that class is empty since fresh_chunks(), so the
	 * upgrade's area comes from the chunk, first fit). */
	areas[0] = pcpu_alloc(32, 16);
	ck_assert_ptr_nonnull(areas[0]);
	dirty(areas[0], 32);
	pcpu_free(areas[0]);
	init_percpu(&d, 5, DUAL);
	ck_assert_msg(d.pcpu__slots == areas[0], "the DUAL upgrade did not "
		      "get the freed area (white-box: first fit)");
	wd = 5;
	expect_sum(&d, wd, 0, "DUAL upgraded onto a dirty area");
	nt = pin_add(&d, 1, 2, 1, &wd, NULL);
	expect_sum(&d, wd, tu_read_bound_touched(nt),
		   "DUAL upgraded onto a dirty area, adds");
	pcpu_counter_destroy(&d);
	tu_expect_no_area("all destroyed");
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- read and compare near the bound ---------------------------------------- */

/* Random adds from a thread pinned to each picked CPU in turn. */
struct rnd_job {
	struct pcpu_counter *c;
	int cpus[2];
	unsigned ncpu, adds;
	uint64_t rng;
	int64_t added;
	int err;
};

static void *rnd_job_fn(void *p)
{
	struct rnd_job *j = p;
	unsigned k, i;
	int64_t d;

	for (k = 0; k < j->ncpu; k++) {
		j->err = tu_pin(j->cpus[k]);
		if (j->err)
			return NULL;
		for (i = 0; i < j->adds; i++) {
			d = (int64_t)tu_rand_below(&j->rng, 2 * BATCH + 1) -
			    BATCH;
			if (tu_rand_below(&j->rng, 16) == 0)
				d *= 37;
			pcpu_counter_add(j->c, d);
			j->added += d;
		}
	}
	return NULL;
}

/*
 * After random adds on known slots, |read - sum| <= (BATCH - 1) * those
 * slots, and compare() is exact for every rhs within that distance (and a
 * little more) of read and of sum, and at the loose bound.
 */
START_TEST(test_read_compare_bound)
{
	static const unsigned counts[3] = { 0, 1, 4096 };
	const unsigned pol[2] = { LAZY, DUAL };
	unsigned nr = counts[_i] ? counts[_i] : tu_default_slots, p, round;
	unsigned slots[2];
	struct pcpu_counter c;
	struct rnd_job j;
	int64_t want, rd, lo, hi, rhs, bound, loose;
	int got;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	for (p = 0; p < 2; p++) {
		init_percpu(&c, 500, pol[p]);
		want = 500;
		for (round = 0; round < 12; round++) {
			memset(&j, 0, sizeof(j));
			j.c = &c;
			j.ncpu = pick_cpus(j.cpus, slots);
			j.adds = 1 + round * 7;
			j.rng = tu_rand_seed(round * 2 + p);
			ck_assert_int_eq(tu_run_in_thread(rnd_job_fn, &j), 0);
			ck_assert_int_eq(j.err, 0);
			want += j.added;
			if (pol[p] == DUAL) {
				pcpu_counter_add(&c, (int64_t)round * 3 - 17);
				want += (int64_t)round * 3 - 17;
			}
			rd = pcpu_counter_read(&c);
			bound = tu_read_bound_touched(j.ncpu);
			ck_assert_msg(pcpu_counter_sum(&c) == want, "%s, %u slots, "
				      "round %u: sum %lld, want %lld",
				      policy_name(pol[p]), nr, round,
				      (long long)pcpu_counter_sum(&c),
				      (long long)want);
			ck_assert_msg(tu_dist(rd, want) <= (uint64_t)bound,
				      "%s, %u slots, round %u: read %lld, sum "
				      "%lld: more than (BATCH - 1) * %u touched "
				      "slots apart", policy_name(pol[p]), nr,
				      round, (long long)rd, (long long)want,
				      j.ncpu);
			lo = (rd < want ? rd : want) - bound - 3;
			hi = (rd < want ? want : rd) + bound + 3;
			for (rhs = lo; rhs <= hi; rhs++) {
				got = pcpu_counter_compare(&c, rhs);
				tu_check(got == tu_sign(want - rhs), "%s, %u "
					 "slots: sum %lld, read %lld: compare("
					 "%lld) = %d", policy_name(pol[p]), nr,
					 (long long)want, (long long)rd,
					 (long long)rhs, got);
			}
			loose = tu_read_bound();
			ck_assert_int_eq(pcpu_counter_compare(&c, rd - loose - 1),
					 1);
			ck_assert_int_eq(pcpu_counter_compare(&c, rd + loose + 1),
					 -1);
		}
		pcpu_counter_destroy(&c);
	}
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- first-touch and upgrade races on fresh counters ------------------------ */

#define RACERS		3
#define RACE_MAX_ADDS	400
#define RACE_HOP_EVERY	64

#define RACE_MAX_FAKE	12

struct race_ctl {
	struct pcpu_counter *c;	/* the round's counter */
	unsigned round;		/* release by main, acquire by racers */
	unsigned done;		/* racers finished with the round */
	int stop;
	/* Spread mode: the round's CPU numbers, claimed at random per add. */
	unsigned fake[RACE_MAX_FAKE];
	unsigned nfake;
};

struct racer {
	struct tu_worker_rec rec;
	struct race_ctl *ctl;
	pid_t tid;		/* for the shaker; set before ready */
	unsigned ready;
	int64_t round_total;
	unsigned long adds;
	uint64_t rng;
	unsigned cursor;
} __attribute__((aligned(TU_CACHELINE)));

static int64_t race_delta(uint64_t *rng)
{
	uint64_t r = tu_rand(rng);

	if ((r & 15) == 0)
		return (int64_t)((r >> 8) % (4 * BATCH + 1)) - 2 * BATCH;
	return (r & 16) ? 1 : -1;
}

static void *racer_fn(void *p)
{
	struct racer *w = p;
	struct race_ctl *ctl = w->ctl;
	unsigned seen = 0, r, n, i, spins;
	int64_t total, d;

	w->tid = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&w->ready, 1, __ATOMIC_RELEASE);
	for (;;) {
		spins = 0;
		while ((r = __atomic_load_n(&ctl->round, __ATOMIC_ACQUIRE)) ==
		       seen && !__atomic_load_n(&ctl->stop, __ATOMIC_ACQUIRE))
			tu_relax(&spins);
		if (r == seen)
			break;
		seen = r;
		n = 1 + tu_rand_below(&w->rng, RACE_MAX_ADDS);
		total = 0;
		for (i = 0; i < n; i++) {
			/* Hop after the first add: that one races the others'
			 * first touch (or upgrade) from where the round found
			 * this thread. */
			if (ctl->nfake)
				fake_cpu = (int)ctl->fake[tu_rand_below(&w->rng,
								ctl->nfake)];
			else if (i % RACE_HOP_EVERY == 1 && tu_hop(&w->cursor))
				tu_rec_fail(&w->rec, "sched_setaffinity: %d",
					    errno);
			d = race_delta(&w->rng);
			pcpu_counter_add(ctl->c, d);
			total += d;
		}
		fake_cpu = -1;
		w->round_total = total;
		w->adds += n;
		__atomic_add_fetch(&ctl->done, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Moves the racers between CPUs from outside, mid-update. */
struct shaker {
	struct racer *w;
	int stop;
	unsigned long moves;
	int err;
	uint64_t rng;
};

static void *shaker_fn(void *p)
{
	struct shaker *s = p;
	struct timespec ts = { 0, 40000 };
	cpu_set_t set;
	unsigned i;
	int cpu;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < RACERS; i++) {
			cpu = tu_cpus.cpu[tu_rand_below(&s->rng, tu_cpus.n)];
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			if (sched_setaffinity(s->w[i].tid, sizeof(set), &set) &&
			    !s->err)
				s->err = errno;
			s->moves++;
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

struct race_result {
	unsigned long rounds, main_adds;
	int64_t lost;		/* |expected - summed|, over all rounds */
	int failed;
	char err[200];
};

/*
 * Rounds of a fresh @flags counter at @nr slots, added to by RACERS
 * threads released at once (and by the main thread: DUAL, the owner);
 * with @spread, every add claims one of a few CPU numbers drawn for the
 * round from [0, nr), else the racers hop CPUs and a shaker moves them.
 */
static void run_race(unsigned flags, unsigned nr, bool spread, int seed)
{
	struct racer w[RACERS];
	struct race_ctl ctl;
	struct shaker sh;
	struct race_result res;
	struct pcpu_counter c;
	struct tu_budget b;
	pthread_t t[RACERS], ts;
	uint64_t rng = tu_rand_seed(7 + (uint64_t)seed);
	unsigned long adds = 0;
	unsigned i, k, n, spins, touched;
	int64_t want, sum, d, rd;
	int r;

	memset(&ctl, 0, sizeof(ctl));
	memset(w, 0, sizeof(w));
	memset(&sh, 0, sizeof(sh));
	memset(&res, 0, sizeof(res));
	for (i = 0; i < RACERS; i++) {
		w[i].rec.id = i;
		w[i].ctl = &ctl;
		w[i].rng = tu_rand_seed(100 + i + 10 * (uint64_t)seed);
		w[i].cursor = i;
	}
	ck_assert_int_eq(tu_spawn(t, RACERS, racer_fn, w, sizeof(w[0])), 0);
	for (i = 0; i < RACERS; i++)
		tu_wait_uint(&w[i].ready, 1);
	sh.w = w;
	sh.rng = tu_rand_seed(55);
	r = pthread_create(&ts, NULL, shaker_fn, &sh);
	if (r) {
		__atomic_store_n(&ctl.stop, 1, __ATOMIC_RELEASE);
		tu_join(t, RACERS);
		ck_abort_msg("pthread_create: %d", r);
	}

	tu_budget_start(&b, case_seconds(0.5));
	while (tu_budget_left(&b) && !res.failed) {
		want = (int64_t)tu_rand_below(&rng, 2001) - 1000;
		r = pcpu_counter_init(&c, want, flags);
		if (r) {
			snprintf(res.err, sizeof(res.err), "init = %d", r);
			res.failed = 1;
			break;
		}
		ctl.c = &c;
		ctl.nfake = 0;
		touched = nr < tu_cpus.n ? nr : tu_cpus.n;
		if (spread) {
			/* A few distinct CPU numbers: racers collide on their
			 * slots and on the touch map's shared words. */
			n = 1 + tu_rand_below(&rng, RACE_MAX_FAKE);
			while (ctl.nfake < n) {
				ctl.fake[ctl.nfake] = tu_rand_below(&rng, nr);
				for (k = 0; ctl.fake[k] != ctl.fake[ctl.nfake];)
					k++;
				ctl.nfake += k == ctl.nfake;
			}
			touched = ctl.nfake;
		}
		__atomic_store_n(&ctl.done, 0, __ATOMIC_RELAXED);
		/* Release: the init before any racer's first add. */
		__atomic_add_fetch(&ctl.round, 1, __ATOMIC_RELEASE);
		/* DUAL: the owner's path; LAZY: one more first toucher. */
		n = tu_rand_below(&rng, RACE_MAX_ADDS);
		for (i = 0; i < n; i++) {
			if (ctl.nfake)
				fake_cpu = (int)ctl.fake[tu_rand_below(&rng,
								ctl.nfake)];
			d = race_delta(&rng);
			pcpu_counter_add(&c, d);
			want += d;
		}
		fake_cpu = -1;
		res.main_adds += n;
		spins = 0;
		while (__atomic_load_n(&ctl.done, __ATOMIC_ACQUIRE) != RACERS)
			tu_relax(&spins);
		for (i = 0; i < RACERS; i++)
			want += w[i].round_total;
		sum = pcpu_counter_sum(&c);
		rd = pcpu_counter_read(&c);
		res.lost += (int64_t)tu_dist(want, sum);
		if (sum != want) {
			snprintf(res.err, sizeof(res.err), "round %lu: sum %lld, "
				 "want %lld (lost %lld)", res.rounds,
				 (long long)sum, (long long)want,
				 (long long)(want - sum));
			res.failed = 1;
		} else if (pcpu_counter_compare(&c, want) != 0) {
			snprintf(res.err, sizeof(res.err), "round %lu: "
				 "compare(sum) != 0", res.rounds);
			res.failed = 1;
		} else if (!pcpu_counter_is_shared(&c)) {
			snprintf(res.err, sizeof(res.err), "round %lu: not "
				 "shared after %d racers added", res.rounds,
				 RACERS);
			res.failed = 1;
		} else if (tu_dist(rd, sum) >
			   (uint64_t)tu_read_bound_touched(touched)) {
			snprintf(res.err, sizeof(res.err), "round %lu: read "
				 "%lld, sum %lld, with at most %u slots touched",
				 res.rounds, (long long)rd, (long long)sum,
				 touched);
			res.failed = 1;
		}
		pcpu_counter_destroy(&c);
		res.rounds++;
	}

	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELEASE);
	pthread_join(ts, NULL);
	__atomic_store_n(&ctl.stop, 1, __ATOMIC_RELEASE);
	tu_join(t, RACERS);

	for (i = 0; i < RACERS; i++)
		adds += w[i].adds;
	tu_stress_report(adds + res.main_adds, (long long)res.lost,
			 "first touch%s, %s, %u slots (%lu rounds, %lu racer "
			 "adds, %lu main adds, %lu moves)",
			 spread ? " (spread)" : "", policy_name(flags), nr,
			 res.rounds, adds, res.main_adds, sh.moves);
	ck_assert_msg(res.lost == 0, "%s, %u slots%s: %lld updates lost",
		      policy_name(flags), nr, spread ? ", spread" : "",
		      (long long)res.lost);
	ck_assert_msg(!res.failed, "%s, %u slots%s: %s", policy_name(flags), nr,
		      spread ? ", spread" : "", res.err);
	for (i = 0; i < RACERS; i++)
		ck_assert_msg(!w[i].rec.failed, "racer %u: %s", i, w[i].rec.err);
	ck_assert_msg(sh.err == 0, "shaker: sched_setaffinity: %d", sh.err);
	ck_assert_uint_gt(res.rounds, 0);
	ck_assert_uint_gt(adds, 0);
	tu_expect_no_area("every round's counter destroyed");
}

/*
 * @_i: bit 0 DUAL (racing the upgrade) else LAZY (racing first touches);
 * bit 1 at 4096 slots.
 */
START_TEST(test_first_touch_race)
{
	unsigned nr = (_i & 2) ? 4096 : tu_default_slots;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	run_race((_i & 1) ? DUAL : LAZY, nr, false, _i);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* @_i: bit 0 DUAL else LAZY; bit 1 PCPU_MAX_SLOTS slots, else 4096. */
START_TEST(test_spread_race)
{
	unsigned nr = (_i & 2) ? PCPU_MAX_SLOTS : 4096;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	if (!fake_cpus_work()) {
		printf("spread race, %u slots: skipped (method %s does not "
		       "ask sched_getcpu())\n", nr, pcpu_update_method());
	} else {
		run_race((_i & 1) ? DUAL : LAZY, nr, true, 16 + _i);
	}
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- many touched slots, in every group of the touch map ------------------- */

static const unsigned spread_counts[] = { 130, 4096, PCPU_MAX_SLOTS };

/* White-box: the touch map word of @c at map unit @u (see scan_pages). */
START_TEST(test_spread_slots)
{
	const char *names[2] = { "LAZY", "DUAL upgraded" };
	unsigned nr = spread_counts[_i], *ts, nt, i, k;
	struct pcpu_counter c[2], n2, saved;
	int64_t want[2], w2, rhs, lo, hi, rd, *area;
	char what[96];
	int got;

	fresh_chunks(nr);
	if (!fake_cpus_work()) {
		printf("spread, %u slots: skipped (method %s does not ask "
		       "sched_getcpu())\n", nr, pcpu_update_method());
		ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
		return;
	}
	ts = calloc(nr, sizeof(*ts));
	ck_assert_ptr_nonnull(ts);
	nt = spread_slots(nr, ts, nr);
	ck_assert_uint_ge(nt, 3);
	ck_assert_int_eq(pcpu_counter_init(&c[0], 7, LAZY), 0);
	init_percpu(&c[1], 9, DUAL);
	want[0] = 7;
	want[1] = 9;

	/* BATCH - 1 in each: nothing folds, read() misses all of it. */
	fake_add(c, 2, ts, nt, BATCH - 1, want);
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "%s, %u slots, %u touched",
			 names[i], nr, nt);
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), what);
		rd = pcpu_counter_read(&c[i]);
		ck_assert_msg(rd == want[i] - (int64_t)(BATCH - 1) * nt,
			      "%s: read %lld, sum %lld", what, (long long)rd,
			      (long long)want[i]);
		for (k = 0; k < nt; k++)
			tu_check(slot_is(&c[i], ts[k], BATCH - 1, 0),
				 "%s: slot %u holds %#llx", what, ts[k],
				 (unsigned long long)raw_slot(&c[i], ts[k]));
		/* compare() for every rhs from read to sum and beyond. */
		lo = rd - 3;
		hi = want[i] + 3;
		for (rhs = lo; rhs <= hi; rhs++) {
			got = pcpu_counter_compare(&c[i], rhs);
			tu_check(got == tu_sign(want[i] - rhs), "%s: sum %lld, "
				 "read %lld: compare(%lld) = %d", what,
				 (long long)want[i], (long long)rd,
				 (long long)rhs, got);
		}
	}
	expect_pages(&c[0], nr, ts, nt, true, true, "LAZY, spread slots");

	/* set: every touched slot back to 0; +1 stays in the slots, then
	 * BATCH - 1 more folds each. */
	for (i = 0; i < 2; i++) {
		pcpu_counter_set(&c[i], 100);
		want[i] = 100;
		for (k = 0; k < nt; k++)
			tu_check(slot_is(&c[i], ts[k], 0, 0), "%s: slot %u "
				 "holds %#llx after set", names[i], ts[k],
				 (unsigned long long)raw_slot(&c[i], ts[k]));
	}
	fake_add(c, 2, ts, nt, 1, want);
	for (i = 0; i < 2; i++) {
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), names[i]);
		ck_assert_int_eq(pcpu_counter_read(&c[i]), 100);
	}
	fake_add(c, 2, ts, nt, BATCH - 1, want);
	for (i = 0; i < 2; i++) {
		expect_sum(&c[i], want[i], 0, names[i]);
		ck_assert_msg(pcpu_counter_read(&c[i]) == want[i], "%s: every "
			      "slot reached BATCH, yet read %lld != sum %lld",
			      names[i], (long long)pcpu_counter_read(&c[i]),
			      (long long)want[i]);
		pcpu_counter_reset(&c[i]);
		want[i] = 0;
	}
	fake_add(c, 2, ts, nt, -3, want);
	for (i = 0; i < 2; i++)
		expect_sum(&c[i], want[i], tu_read_bound_touched(nt), names[i]);
	expect_pages(&c[0], nr, ts, nt, true, true, "LAZY, spread, reset");

	/* Destroy cleans every touched slot and map word, and only those. */
	saved = c[0];
	area = c[0].pcpu__slots;
	/* The per-slot cache is a stack: c[0]'s area goes on last, and the
	 * main thread, pinned, stays on its slot until the next init. */
	ck_assert_int_eq(tu_pin(sched_getcpu()), 0);
	pcpu_counter_destroy(&c[1]);
	pcpu_counter_destroy(&c[0]);
	expect_pages(&saved, nr, ts, nt, false, true, "LAZY, spread, destroyed");
	ck_assert_int_eq(pcpu_counter_init(&n2, -5, LAZY), 0);
	ck_assert_int_eq(tu_unpin(), 0);
	/* Same thread, same slot (fake_cpu is this thread's only under
	 * the atomic method with sched_getcpu(): main is not faked): the
	 * per-slot cache gives the area back. */
	ck_assert_msg(n2.pcpu__slots == area, "the new counter did not get "
		      "the freed area (white-box: per-slot cache)");
	for (k = 0; k < nt; k++)
		tu_check(slot_clean(&n2, ts[k]), "reused area: slot %u holds "
			 "%#llx", ts[k], (unsigned long long)raw_slot(&n2, ts[k]));
	expect_sum(&n2, -5, 0, "reused area");
	w2 = -5;
	fake_add(&n2, 1, ts, nt, 2, &w2);
	expect_sum(&n2, w2, tu_read_bound_touched(nt), "reused area, adds");
	ck_assert_int_eq(pcpu_counter_read(&n2), -5);
	pcpu_counter_destroy(&n2);
	tu_expect_no_area("spread, all destroyed");
	free(ts);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- thread churn ------------------------------------------------------------- */

#define CHURN_COUNTERS	3	/* LAZY, DUAL (main thread owns), EAGER */

struct churn_job {
	struct pcpu_counter *c;
	uint64_t rng;
	unsigned adds;
	bool late;		/* also add from a TLS destructor */
	unsigned rearm;
	int64_t added[CHURN_COUNTERS];
	unsigned late_done;
	int err;
};

static pthread_key_t churn_key;
static pthread_once_t churn_once = PTHREAD_ONCE_INIT;

/*
 * At thread exit, after libpcpu's own key destructor (which unregisters
 * the rseq area the library registered for the thread): re-arm once, so
 * the adds run in a later destructor round whatever the key order.
 */
static void churn_dtor(void *p)
{
	struct churn_job *j = p;
	unsigned k;

	if (j->rearm++ == 0) {
		if (pthread_setspecific(churn_key, j))
			j->err = 1;
		return;
	}
	for (k = 0; k < CHURN_COUNTERS; k++) {
		pcpu_counter_add(&j->c[k], 3);
		pcpu_counter_dec(&j->c[k]);
		j->added[k] += 2;
	}
	j->late_done = 1;
}

static void churn_key_create(void)
{
	if (pthread_key_create(&churn_key, churn_dtor))
		abort();
}

static void *churn_fn(void *p)
{
	struct churn_job *j = p;
	unsigned i, k;
	int64_t d;

	for (i = 0; i < j->adds; i++) {
		d = race_delta(&j->rng);
		for (k = 0; k < CHURN_COUNTERS; k++) {
			pcpu_counter_add(&j->c[k], d);
			j->added[k] += d;
		}
	}
	if (j->late && pthread_setspecific(churn_key, j))
		j->err = 1;
	return NULL;
}

START_TEST(test_thread_churn)
{
	const unsigned flags[CHURN_COUNTERS] = { LAZY, DUAL, EAGER };
	unsigned nr = slots_for(_i), i, k, slot;
	struct pcpu_counter c[CHURN_COUNTERS];
	struct churn_job jobs[2];
	pthread_t t[2];
	bool alive[2] = { false, false };
	int64_t want[CHURN_COUNTERS], sum[CHURN_COUNTERS], lost = 0;
	unsigned long threads = 0, late = 0, late_done = 0;
	unsigned long long updates = 0;
	uint64_t rng = tu_rand_seed(4242 + (uint64_t)_i);
	struct tu_budget b;
	int create_err = 0, job_err = 0;

	pthread_once(&churn_once, churn_key_create);
	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	for (k = 0; k < CHURN_COUNTERS; k++) {
		want[k] = (int64_t)k * 1000 - 1000;
		ck_assert_int_eq(pcpu_counter_init(&c[k], want[k], flags[k]), 0);
	}
	tu_budget_start(&b, case_seconds(0.5));
	/* At least the 4 threads asserted below (one of them adding from
	 * its key destructor), however short the budget: a small
	 * PCPU_STRESS_SECONDS on a loaded machine or under an emulator
	 * otherwise ends the loop after 3. */
	for (slot = 0; tu_budget_left(&b) || threads < 4; slot ^= 1) {
		if (alive[slot]) {
			pthread_join(t[slot], NULL);
			alive[slot] = false;
			for (k = 0; k < CHURN_COUNTERS; k++)
				want[k] += jobs[slot].added[k];
			/* Each add goes to every counter; late: +3, -1. */
			updates += CHURN_COUNTERS *
				   (jobs[slot].adds + 2ull * jobs[slot].late_done);
			late_done += jobs[slot].late_done;
			job_err |= jobs[slot].err;
		}
		memset(&jobs[slot], 0, sizeof(jobs[slot]));
		jobs[slot].c = c;
		jobs[slot].rng = tu_rand(&rng) | 1;
		jobs[slot].adds = 500 + tu_rand_below(&rng, 3000);
		jobs[slot].late = threads % 4 == 1;
		late += jobs[slot].late;
		create_err = pthread_create(&t[slot], NULL, churn_fn,
					    &jobs[slot]);
		if (create_err)
			break;
		alive[slot] = true;
		threads++;
		/* The owner's path (DUAL) and slot paths, in between. */
		for (i = 0; i < 64; i++)
			for (k = 0; k < CHURN_COUNTERS; k++) {
				pcpu_counter_add(&c[k], (int64_t)i - 30);
				want[k] += (int64_t)i - 30;
			}
		updates += 64 * CHURN_COUNTERS;
	}
	for (slot = 0; slot < 2; slot++) {
		if (!alive[slot])
			continue;
		pthread_join(t[slot], NULL);
		for (k = 0; k < CHURN_COUNTERS; k++)
			want[k] += jobs[slot].added[k];
		updates += CHURN_COUNTERS *
			   (jobs[slot].adds + 2ull * jobs[slot].late_done);
		late_done += jobs[slot].late_done;
		job_err |= jobs[slot].err;
	}

	for (k = 0; k < CHURN_COUNTERS; k++) {
		sum[k] = pcpu_counter_sum(&c[k]);
		lost += (int64_t)tu_dist(want[k], sum[k]);
	}
	tu_stress_report(updates, (long long)lost, "churn, %u slots (%lu "
			 "threads, %lu adding at exit)", nr, threads, late);
	ck_assert_msg(create_err == 0, "pthread_create: %d after %lu threads",
		      create_err, threads);
	ck_assert_int_eq(job_err, 0);
	ck_assert_uint_ge(threads, 4);
	ck_assert_uint_eq(late_done, late);
	ck_assert_msg(pcpu_counter_is_shared(&c[1]), "DUAL: other threads "
		      "added, yet not shared");
	for (k = 0; k < CHURN_COUNTERS; k++) {
		ck_assert_msg(sum[k] == want[k], "churn, %s, %u slots: sum "
			      "%lld, want %lld (lost %lld)",
			      policy_name(flags[k]), nr, (long long)sum[k],
			      (long long)want[k], (long long)(want[k] - sum[k]));
		ck_assert_int_eq(pcpu_counter_compare(&c[k], want[k]), 0);
		pcpu_counter_destroy(&c[k]);
	}
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- signals ------------------------------------------------------------------ */

static struct pcpu_counter *volatile sig_c;
static volatile sig_atomic_t sig_runs;

static void on_alarm(int sig)
{
	struct pcpu_counter *c = sig_c;
	int saved = errno;	/* the library may set it (an upgrade that
				   finds the allocator busy, say) */

	(void)sig;
	if (c) {
		pcpu_counter_add(c, 1);
		sig_runs++;
	}
	errno = saved;
}

/* A thread that initializes counters on request and so owns them. */
struct parked {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pcpu_counter *req;
	int64_t v0;
	unsigned asked, answered;
	int stop, ret;
};

static void *parked_fn(void *p)
{
	struct parked *k = p;
	sigset_t set;

	/* The timer's signal is for the main thread only. */
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (k->asked == k->answered && !k->stop)
			pthread_cond_wait(&k->cond, &k->lock);
		if (k->asked == k->answered)
			break;
		k->ret |= pcpu_counter_init(k->req, k->v0, DUAL);
		k->answered++;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* Have the parked thread initialize @c: it becomes the owner. */
static void parked_init(struct parked *k, struct pcpu_counter *c, int64_t v)
{
	pthread_mutex_lock(&k->lock);
	k->req = c;
	k->v0 = v;
	k->asked++;
	pthread_cond_broadcast(&k->cond);
	while (k->answered != k->asked)
		pthread_cond_wait(&k->cond, &k->lock);
	pthread_mutex_unlock(&k->lock);
}

enum sig_variant {
	SIG_OWNER,		/* DUAL unshared, main owns it        */
	SIG_OWNER_SHARED,	/* DUAL shared, main owns it          */
	SIG_FOREIGN_SHARED,	/* DUAL shared, a parked thread owns  */
	SIG_FOREIGN_FRESH,	/* fresh DUAL each round, parked owns:
				   upgrades under signals             */
	SIG_LAZY_FRESH,		/* fresh LAZY each round: first touch */
	SIG_EAGER,
	SIG_NVARIANTS
};

static const char *const sig_names[SIG_NVARIANTS] = {
	"DUAL, owner", "DUAL shared, owner", "DUAL shared, not owner",
	"DUAL fresh, not owner", "LAZY fresh", "EAGER",
};

struct sig_state {
	struct pcpu_counter c;
	int64_t want;		/* value without this round's handler adds */
	int runs0;		/* sig_runs when the counter was installed */
	unsigned long rounds;
	int64_t lost;		/* |expected - summed|, over all rounds */
	int failed;
	char err[200];
};

static void block_alarm(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(how, &set, NULL);
}

/* Check the round's counter and destroy it; SIGALRM blocked. */
static void sig_round_end(struct sig_state *st, const char *name)
{
	int64_t h = sig_runs - st->runs0, sum;

	sig_c = NULL;
	sum = pcpu_counter_sum(&st->c);
	st->lost += (int64_t)tu_dist(st->want + h, sum);
	if (sum != st->want + h && !st->failed++)
		snprintf(st->err, sizeof(st->err), "%s, round %lu: sum %lld, "
			 "want %lld = %lld + %lld handler adds (lost %lld)",
			 name, st->rounds, (long long)sum,
			 (long long)(st->want + h), (long long)st->want,
			 (long long)h, (long long)(st->want + h - sum));
	else if (pcpu_counter_compare(&st->c, sum) != 0 && !st->failed++)
		snprintf(st->err, sizeof(st->err), "%s, round %lu: compare "
			 "!= 0", name, st->rounds);
	pcpu_counter_destroy(&st->c);
	st->rounds++;
}

/*
 * The handler runs needed for a verdict.  Where signals arrive slowly
 * (valgrind delivers them only between its translated blocks, one thread
 * at a time) the loop runs past its budget to collect them, up to
 * SIG_MAX_OVERRUN budgets in all.
 */
#define SIG_MIN_RUNS	10
#define SIG_MAX_OVERRUN	20

/* @_i: variant * 2 + (4096 slots ? 1 : 0). */
START_TEST(test_signal_safety)
{
	enum sig_variant v = (enum sig_variant)(_i / 2);
	unsigned nr = (_i & 1) ? 4096 : tu_default_slots;
	struct itimerval on = { { 0, 25 }, { 0, 25 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	bool fresh = v == SIG_FOREIGN_FRESH || v == SIG_LAZY_FRESH;
	bool parked = v == SIG_FOREIGN_SHARED || v == SIG_FOREIGN_FRESH;
	struct sigaction sa, old, ign;
	struct sig_state st;
	struct parked pk;
	struct tu_budget b, cap;
	pthread_t pt;
	uint64_t rng = tu_rand_seed(31 + (uint64_t)_i);
	unsigned long adds = 0;
	unsigned i, n;
	int64_t d, v0;
	int runs;
	char name[80];

	snprintf(name, sizeof(name), "%s, %u slots", sig_names[v], nr);
	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	memset(&st, 0, sizeof(st));
	memset(&pk, 0, sizeof(pk));
	pthread_mutex_init(&pk.lock, NULL);
	pthread_cond_init(&pk.cond, NULL);
	if (parked)
		ck_assert_int_eq(pthread_create(&pt, NULL, parked_fn, &pk), 0);

	/* The first counter. */
	v0 = 17;
	switch (v) {
	case SIG_OWNER:
		ck_assert_int_eq(pcpu_counter_init(&st.c, v0, DUAL), 0);
		break;
	case SIG_OWNER_SHARED:
		init_percpu(&st.c, v0, DUAL);
		break;
	case SIG_FOREIGN_SHARED:
	case SIG_FOREIGN_FRESH:
		parked_init(&pk, &st.c, v0);
		ck_assert_int_eq(pk.ret, 0);
		if (v == SIG_FOREIGN_SHARED)
			ck_assert_int_eq(pcpu_counter_share(&st.c), 0);
		break;
	case SIG_LAZY_FRESH:
		ck_assert_int_eq(pcpu_counter_init(&st.c, v0, LAZY), 0);
		break;
	default:
		ck_assert_int_eq(pcpu_counter_init(&st.c, v0, EAGER), 0);
		break;
	}
	st.want = v0;
	sig_runs = 0;
	st.runs0 = 0;
	sig_c = &st.c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &on, NULL), 0);

	tu_budget_start(&b, case_seconds(0.25));
	tu_budget_start(&cap, case_seconds(0.25) * SIG_MAX_OVERRUN);
	while (tu_budget_left(&b) ||
	       (sig_runs < SIG_MIN_RUNS && tu_budget_left(&cap))) {
		n = 256 + tu_rand_below(&rng, 2048);
		for (i = 0; i < n; i++) {
			/* Small steps, edges of the window, folds. */
			switch (tu_rand(&rng) & 7) {
			case 0:
				d = BATCH - 1;
				break;
			case 1:
				d = -(BATCH - 1);
				break;
			case 2:
				d = 4 * BATCH;
				break;
			case 3:
				d = -1;
				break;
			default:
				d = 1;
			}
			pcpu_counter_add(&st.c, d);
			st.want += d;
		}
		adds += n;
		if (!fresh)
			continue;
		/* A new counter: the next adds race the first touch or
		 * the upgrade with the handler. */
		block_alarm(SIG_BLOCK);
		sig_round_end(&st, name);
		v0 = (int64_t)tu_rand_below(&rng, 1000);
		if (v == SIG_LAZY_FRESH) {
			st.failed |= pcpu_counter_init(&st.c, v0, LAZY) != 0;
		} else {
			parked_init(&pk, &st.c, v0);
			st.failed |= pk.ret != 0;
		}
		st.want = v0;
		st.runs0 = sig_runs;
		sig_c = &st.c;
		block_alarm(SIG_UNBLOCK);
		if (st.failed)
			break;
	}

	/*
	 * Stop the timer; a signal generated before is delivered on the way
	 * out of setitimer() or discarded by SIG_IGN before the old action
	 * comes back.  Then the last round's check.
	 */
	setitimer(ITIMER_REAL, &off, NULL);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGALRM, &ign, NULL);
	sigaction(SIGALRM, &old, NULL);
	runs = sig_runs;
	if (v == SIG_OWNER)
		st.failed |= pcpu_counter_is_shared(&st.c) ? 2 : 0;
	sig_round_end(&st, name);

	if (parked) {
		pthread_mutex_lock(&pk.lock);
		pk.stop = 1;
		pthread_cond_broadcast(&pk.cond);
		pthread_mutex_unlock(&pk.lock);
		pthread_join(pt, NULL);
	}
	pthread_cond_destroy(&pk.cond);
	pthread_mutex_destroy(&pk.lock);

	tu_stress_report(adds + (unsigned long long)runs, (long long)st.lost,
			 "signals, %s (%lu adds, %d handler adds, %lu rounds)",
			 name, adds, runs, st.rounds);
	ck_assert_msg(st.lost == 0, "%s: %lld updates lost", name,
		      (long long)st.lost);
	ck_assert_msg(!st.failed, "%s: %s", name,
		      st.err[0] ? st.err : "init failed, or the owner's "
		      "adds shared the counter");
	ck_assert_int_eq(pk.ret, 0);
	ck_assert_msg(runs >= SIG_MIN_RUNS, "%s: the handler ran %d times in "
		      "%g s: the test cannot tell whether signals lose "
		      "updates", name, runs,
		      case_seconds(0.25) * SIG_MAX_OVERRUN);
	ck_assert_uint_gt(adds, 0);
	tu_expect_no_area("signals, destroyed");
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- update method -------------------------------------------------------------- */

START_TEST(test_method_slots)
{
	const char *m0 = pcpu_update_method(), *want = getenv("PCPU_EXPECT_METHOD");
	unsigned possible = tu_possible_cpus(), sizes[4], i;
	struct pcpu_counter c;
	int64_t w;

	/* tests/all-methods.sh says which method each of its runs gets. */
	if (want && *want)
		ck_assert_str_eq(m0, want);
	if (tu_default_slots < possible)
		ck_assert_str_eq(m0, "atomic");

	if (possible >= 2) {
		ck_assert_int_eq(pcpu_set_nr_slots(1), 0);
		ck_assert_msg(strcmp(pcpu_update_method(), "atomic") == 0,
			      "1 slot for %u possible CPUs: method '%s'",
			      possible, pcpu_update_method());
		ck_assert_int_eq(pcpu_set_nr_slots(possible - 1), 0);
		ck_assert_str_eq(pcpu_update_method(), "atomic");
		/* While an area is live the count, so the method, stays. */
		ck_assert_int_eq(pcpu_counter_init(&c, 0, LAZY), 0);
		ck_assert_int_eq(pcpu_set_nr_slots(possible), -EBUSY);
		ck_assert_str_eq(pcpu_update_method(), "atomic");
		w = 0;
		pin_add(&c, 1, 5, 1, &w, NULL);
		pcpu_counter_inc(&c);
		expect_sum(&c, w + 1, tu_read_bound(), "LAZY, shared slots");
		pcpu_counter_destroy(&c);
	}
	/* Enough slots: back to the method the process started with. */
	if (tu_default_slots >= possible) {
		sizes[0] = possible;
		sizes[1] = 4096 > possible ? 4096 : possible;
		sizes[2] = PCPU_MAX_SLOTS;
		sizes[3] = tu_default_slots;
		for (i = 0; i < 4; i++) {
			ck_assert_int_eq(pcpu_set_nr_slots(sizes[i]), 0);
			ck_assert_msg(strcmp(pcpu_update_method(), m0) == 0,
				      "%u slots for %u possible CPUs: method "
				      "'%s', want '%s'", sizes[i], possible,
				      pcpu_update_method(), m0);
		}
	}
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	ck_assert_str_eq(pcpu_update_method(), m0);
}
END_TEST

static Suite *lazy_suite(void)
{
	Suite *s = suite_create("lazy");
	TCase *tc;

	tc = tu_tcase(s, "basics", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_lazy_basics);
	tcase_add_test(tc, test_lazy_init_many);
	tcase_add_test(tc, test_lazy_independence);
	/* Loop index: LAZY, DUAL (shared), EAGER. */
	tcase_add_loop_test(tc, test_edge_deltas, 0, 3);
	tcase_add_loop_test(tc, test_read_near_limits, 0, 6);

	tc = tu_tcase(s, "memory", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_untouched_pages);

	tc = tu_tcase(s, "reuse", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_clean_reuse, 0, 2);
	tcase_add_loop_test(tc, test_dirty_reuse, 0, 2);

	tc = tu_tcase(s, "read_compare", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_read_compare_bound, 0, 3);

	/* Loop index: bit 0 DUAL (else LAZY), bit 1 4096 slots. */
	tc = tu_tcase(s, "first_touch", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_first_touch_race, 0, 4);

	/* Claimed CPU numbers: skip themselves unless the method asks. */
	tc = tu_tcase(s, "spread", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_spread_slots, 0, 3);
	/* Loop index: bit 0 DUAL (else LAZY), bit 1 PCPU_MAX_SLOTS. */
	tcase_add_loop_test(tc, test_spread_race, 0, 4);

	tc = tu_tcase(s, "churn", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_thread_churn, 0, 2);

	/* Loop index: variant * 2 + (4096 slots). */
	tc = tu_tcase(s, "signals", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_signal_safety, 0, 2 * SIG_NVARIANTS);

	tc = tu_tcase(s, "method", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_method_slots);
	return s;
}

int main(void)
{
	return tu_main(lazy_suite());
}
