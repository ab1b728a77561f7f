/* SPDX-License-Identifier: MIT */
/*
 * test_fault.c - allocation failures injected at every point.
 *
 * Linked against the test library (lib/libpcpu-fi.la, see lib/fault.h),
 * where pcpu__fault_arm(k) makes the k-th allocation the library makes
 * from then on fail.  For each operation below, and for every k from 1
 * until the operation no longer reaches a k-th allocation (so it succeeds
 * with every allocation it makes), the driver
 *
 *   1. sets the operation's preconditions up, unarmed;
 *   2. arms k, runs the operation, disarms;
 *   3. if the failure fired: the operation returned its documented error
 *      (or, where the contract says so, stayed exact on its fallback), and
 *      what it worked on is unchanged and still usable; otherwise the
 *      operation succeeded;
 *   4. releases everything, makes the allocator drop its chunks, and
 *      checks that the library holds exactly what it held before
 *      (pcpu__fault_live(): mappings too, which LeakSanitizer cannot see;
 *      the ASan run of make check adds LeakSanitizer for the rest).
 *
 * Each case prints how many failure points it injected.
 */
#include "testutil.h"

#include <urcu/urcu-bp.h>

/* The hook of the test library (lib/fault.h; not in the public API). */
void pcpu__fault_arm(unsigned long k);
unsigned long pcpu__fault_seen(void);
int pcpu__fault_fired(void);
long pcpu__fault_live(void);

#define FI_MAX_POINTS	256
/* init_many over three groups: the third needs a second chunk. */
#define FI_MANY		(2 * (PCPU_ALLOC_MAX / 8) + 5)

struct fi_obj {
	uint64_t magic;
	struct pcpu_counter ctr;	/* DUAL, from the constructor */
	void *area;			/* pcpu_alloc(), from the constructor */
	/* Big objects: a slab holds a few dozen, so the cases below stay
	 * quick although every object holds a large per-CPU area. */
	char pad[4000];
};

#define FI_MAGIC	0xFA17FA17FA17FA17ULL

/* Everything one run of one case works on. */
struct fi_state {
	struct pcpu_counter c;
	struct pcpu_counter *many;
	unsigned flags;
	void *area;
	struct pcpu_cache *cache;
	void *obj;
	void *objs[64];
	size_t n;
	int64_t expect;
	int64_t ctor_calls;		/* constructor calls */
	int64_t ctors, dtors;		/* objects constructed / destroyed */
	int ctor_err;			/* first error a constructor saw */
};

static int fi_ctor(void *p, void *arg)
{
	struct fi_obj *o = p;
	struct fi_state *st = arg;
	int err;

	__atomic_fetch_add(&st->ctor_calls, 1, __ATOMIC_RELAXED);
	err = pcpu_counter_init(&o->ctr, 0, PCPU_COUNTER_DUAL);
	if (err)
		return err;
	/* Big areas: a new chunk every few objects, so injected failures
	 * land at several positions of the slab. */
	o->area = pcpu_alloc(PCPU_ALLOC_MAX / 2, 8);
	if (!o->area) {
		err = -errno;
		pcpu_counter_destroy(&o->ctr);
		return err;
	}
	o->magic = FI_MAGIC;
	__atomic_fetch_add(&st->ctors, 1, __ATOMIC_RELAXED);
	return 0;
}

static void fi_dtor(void *p, void *arg)
{
	struct fi_obj *o = p;
	struct fi_state *st = arg;

	__atomic_fetch_add(&st->dtors, 1, __ATOMIC_RELAXED);
	pcpu_free(o->area);
	pcpu_counter_destroy(&o->ctr);
	o->magic = 0;
}

/* A case: set up, the armed operation, checks, release. */
struct fi_case {
	const char *name;
	unsigned min_points;	/* at least this many allocations made;
				   0: none at all (DUAL init) */
	int want_err;		/* errno the operation fails with, 0 if it
				   must always succeed (fallback) */
	void (*setup)(struct fi_state *);
	int (*op)(struct fi_state *);		/* 0 or a positive errno */
	void (*after)(struct fi_state *, int fired);
	void (*release)(struct fi_state *);
};

/* --- counters ----------------------------------------------------------- */

static void counter_fill(struct fi_state *st)
{
	/* Recognizable bytes: a failed init must not have written them. */
	memset(&st->c, 0xA5, sizeof(st->c));
}

static int op_counter_init(struct fi_state *st)
{
	return -pcpu_counter_init(&st->c, 7, st->flags);
}

static void usable_counter(struct pcpu_counter *c, int64_t base)
{
	pcpu_counter_add(c, 5);
	pcpu_counter_dec(c);
	ck_assert_int_eq(pcpu_counter_sum(c), base + 4);
	ck_assert_int_eq(pcpu_counter_compare(c, base + 4), 0);
}

static void after_counter_init(struct fi_state *st, int fired)
{
	if (fired) {
		struct pcpu_counter pat;

		memset(&pat, 0xA5, sizeof(pat));
		ck_assert_msg(memcmp(&pat, &st->c, sizeof(pat)) == 0,
			      "a failed init wrote the counter");
		/* Usable: init works once memory is there again. */
		ck_assert_int_eq(pcpu_counter_init(&st->c, 7, st->flags), 0);
	}
	ck_assert_int_eq(pcpu_counter_sum(&st->c), 7);
	usable_counter(&st->c, 7);
	pcpu_counter_destroy(&st->c);
}

static void setup_lazy(struct fi_state *st)
{
	counter_fill(st);
	st->flags = PCPU_COUNTER_LAZY;
}

static void setup_eager(struct fi_state *st)
{
	counter_fill(st);
	st->flags = PCPU_COUNTER_EAGER;
}

static void setup_dual(struct fi_state *st)
{
	counter_fill(st);
	st->flags = PCPU_COUNTER_DUAL;
}

static void release_nothing(struct fi_state *st)
{
	(void)st;
}

static void setup_many(struct fi_state *st, unsigned flags)
{
	st->many = malloc(FI_MANY * sizeof(*st->many));
	ck_assert_ptr_nonnull(st->many);
	st->flags = flags;
}

static void setup_many_lazy(struct fi_state *st)
{
	setup_many(st, PCPU_COUNTER_LAZY);
}

static void setup_many_eager(struct fi_state *st)
{
	setup_many(st, PCPU_COUNTER_EAGER);
}

static int op_init_many(struct fi_state *st)
{
	return -pcpu_counter_init_many(st->many, 3, st->flags, FI_MANY);
}

static void after_init_many(struct fi_state *st, int fired)
{
	unsigned i;

	if (fired)
		/* The groups made before the failure were given back: the
		 * driver's live count checks that; now it must work. */
		ck_assert_int_eq(pcpu_counter_init_many(st->many, 3, st->flags,
							FI_MANY), 0);
	for (i = 0; i < FI_MANY; i += 1021)
		usable_counter(&st->many[i], 3);
	ck_assert_int_eq(pcpu_counter_sum(&st->many[FI_MANY - 1]), 3);
	pcpu_counter_destroy_many(st->many, FI_MANY);
}

static void release_many(struct fi_state *st)
{
	free(st->many);
	st->many = NULL;
}

static void setup_share(struct fi_state *st)
{
	ck_assert_int_eq(pcpu_counter_init(&st->c, 11, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_add(&st->c, 4);
}

static int op_share(struct fi_state *st)
{
	return -pcpu_counter_share(&st->c);
}

static void after_share(struct fi_state *st, int fired)
{
	ck_assert(pcpu_counter_is_shared(&st->c) == !fired);
	ck_assert_int_eq(pcpu_counter_sum(&st->c), 15);
	/* Still the owner's plain counter, or already shared: either way
	 * it counts, and sharing works once memory is there. */
	usable_counter(&st->c, 15);
	ck_assert_int_eq(pcpu_counter_share(&st->c), 0);
	ck_assert(pcpu_counter_is_shared(&st->c));
	usable_counter(&st->c, 19);
}

static void release_counter(struct fi_state *st)
{
	pcpu_counter_destroy(&st->c);
}

/* Upgrade on add: the first add from a thread that is not the owner. */
static void *add_from_other(void *arg)
{
	struct fi_state *st = arg;

	pcpu_counter_add(&st->c, 7);
	return NULL;
}

static void setup_upgrade(struct fi_state *st)
{
	ck_assert_int_eq(pcpu_counter_init(&st->c, 100, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_inc(&st->c);
}

static int op_upgrade(struct fi_state *st)
{
	/* The join orders the thread's add before our reads. */
	return tu_run_in_thread(add_from_other, st);
}

static void after_upgrade(struct fi_state *st, int fired)
{
	/* Fired or not, the add is exact (the shared word if the area
	 * could not be had); the counter upgrades on a later add. */
	ck_assert_int_eq(pcpu_counter_sum(&st->c), 108);
	/* Every failure point is the upgrade's area, except (rseq-own) the
	 * registration of the thread's rseq area, which comes after it. */
	if (fired && strcmp(pcpu_update_method(), "rseq-own") != 0)
		ck_assert_msg(!pcpu_counter_is_shared(&st->c),
			      "shared although its area failed");
	ck_assert_int_eq(tu_run_in_thread(add_from_other, st), 0);
	ck_assert(pcpu_counter_is_shared(&st->c));
	ck_assert_int_eq(pcpu_counter_sum(&st->c), 115);
	usable_counter(&st->c, 115);
}

/* --- per-CPU areas ------------------------------------------------------- */

static void setup_none(struct fi_state *st)
{
	(void)st;
}

static int op_alloc(struct fi_state *st)
{
	st->area = pcpu_alloc(48, 16);
	return st->area ? 0 : errno;
}

static void after_alloc(struct fi_state *st, int fired)
{
	unsigned s;

	if (fired) {
		ck_assert_ptr_null(st->area);
		tu_expect_no_area("failed pcpu_alloc");
		st->area = pcpu_alloc(48, 16);
		ck_assert_ptr_nonnull(st->area);
	}
	for (s = 0; s < pcpu_nr_slots(); s++)
		ck_assert_int_eq(*(int64_t *)pcpu_ptr(st->area, s), 0);
	pcpu_free(st->area);
	st->area = NULL;
}

/* --- caches ------------------------------------------------------------- */

static void no_cache_check(struct fi_state *st)
{
	/* A failed operation ran as many destructors as constructors. */
	ck_assert_int_eq(st->ctors, st->dtors);
}

static int op_cache_create(struct fi_state *st)
{
	st->cache = pcpu_cache_create("fi", sizeof(struct fi_obj), 0,
				      fi_ctor, fi_dtor, st, 0);
	return st->cache ? 0 : errno;
}

static void cache_use(struct fi_state *st)
{
	struct pcpu_cache_stats s;
	struct fi_obj *o;
	size_t in_use;

	ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
	in_use = s.in_use;		/* RCU-pending objects count */
	o = pcpu_cache_alloc(st->cache, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert(o->magic == FI_MAGIC);
	pcpu_counter_add(&o->ctr, 3);
	ck_assert_int_eq(pcpu_counter_sum(&o->ctr), 3);
	pcpu_counter_reset(&o->ctr);
	pcpu_cache_free(st->cache, o);
	ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
	ck_assert_uint_eq(s.in_use, in_use);
	ck_assert_int_eq((int64_t)s.ctor_calls, st->ctor_calls);
	/* ctor_calls counts failed calls too (cache.h): destructors ran
	 * on what was constructed. */
	ck_assert_int_eq((int64_t)s.dtor_calls, st->dtors);
}

static void after_cache_create(struct fi_state *st, int fired)
{
	if (fired) {
		ck_assert_ptr_null(st->cache);
		tu_expect_no_area("failed pcpu_cache_create");
		ck_assert_int_eq(op_cache_create(st), 0);
	}
	cache_use(st);
}

static void release_cache(struct fi_state *st)
{
	if (st->cache) {
		if (st->obj)
			pcpu_cache_free(st->cache, st->obj);
		if (st->n)
			pcpu_cache_free_bulk(st->cache, st->n, st->objs);
		ck_assert_int_eq(pcpu_cache_destroy(st->cache), 0);
	}
	ck_assert_int_eq(st->ctors, st->dtors);
	st->cache = NULL;
	st->obj = NULL;
	st->n = 0;
}

static void setup_cache(struct fi_state *st)
{
	ck_assert_int_eq(op_cache_create(st), 0);
}

static int op_cache_alloc(struct fi_state *st)
{
	st->obj = pcpu_cache_alloc(st->cache, 0);
	return st->obj ? 0 : errno;
}

static void after_cache_alloc(struct fi_state *st, int fired)
{
	struct pcpu_cache_stats s;

	if (fired) {
		ck_assert_ptr_null(st->obj);
		ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
		ck_assert_uint_eq(s.in_use, 0);
		ck_assert_uint_eq(s.slabs, 0);
		no_cache_check(st);
		ck_assert_int_eq(op_cache_alloc(st), 0);
	}
	ck_assert(((struct fi_obj *)st->obj)->magic == FI_MAGIC);
	pcpu_cache_free(st->cache, st->obj);
	st->obj = NULL;
	cache_use(st);
}

/* Bulk: three slabs' worth, so a failure can hit the second or third. */
static size_t bulk_n(struct fi_state *st)
{
	struct pcpu_cache_stats s;

	ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
	return s.objs_per_slab * 2 + 3 < 64 ? s.objs_per_slab * 2 + 3 : 64;
}

static int op_alloc_bulk(struct fi_state *st)
{
	size_t n = bulk_n(st), got;

	got = pcpu_cache_alloc_bulk(st->cache, 0, n, st->objs);
	if (got == n) {
		st->n = n;
		return 0;
	}
	return got == 0 ? errno : -1;	/* -1: neither all nor nothing */
}

static void after_alloc_bulk(struct fi_state *st, int fired)
{
	struct pcpu_cache_stats s;
	size_t i;

	if (fired) {
		ck_assert_uint_eq(st->n, 0);
		ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
		ck_assert_uint_eq(s.in_use, 0);
		ck_assert_int_eq(op_alloc_bulk(st), 0);
	}
	for (i = 0; i < st->n; i++)
		ck_assert(((struct fi_obj *)st->objs[i])->magic == FI_MAGIC);
	pcpu_cache_free_bulk(st->cache, st->n, st->objs);
	st->n = 0;
	cache_use(st);
}

static void setup_free_rcu(struct fi_state *st)
{
	setup_cache(st);
	ck_assert_int_eq(op_cache_alloc(st), 0);
}

static int op_free_rcu(struct fi_state *st)
{
	pcpu_cache_free_rcu(st->cache, st->obj);
	st->obj = NULL;
	return 0;
}

static void after_free_rcu(struct fi_state *st, int fired)
{
	struct pcpu_cache_stats s;

	ck_assert_int_eq(pcpu_cache_stats(st->cache, &s), 0);
	if (fired) {
		/* No batch: the grace period was waited for inline, and the
		 * object is back before free_rcu returned. */
		ck_assert_uint_eq(s.rcu_pending, 0);
		ck_assert_uint_eq(s.in_use, 0);
	} else {
		ck_assert_uint_eq(s.rcu_pending, 1);
	}
	/* destroy (in release) waits for the pending one. */
	cache_use(st);
}

static const struct fi_case fi_cases[] = {
	{ "counter_init DUAL", 0, ENOMEM, setup_dual, op_counter_init,
	  after_counter_init, release_nothing },
	{ "counter_init LAZY", 2, ENOMEM, setup_lazy, op_counter_init,
	  after_counter_init, release_nothing },
	{ "counter_init EAGER", 2, ENOMEM, setup_eager, op_counter_init,
	  after_counter_init, release_nothing },
	{ "counter_init_many LAZY", 4, ENOMEM, setup_many_lazy, op_init_many,
	  after_init_many, release_many },
	{ "counter_init_many EAGER", 4, ENOMEM, setup_many_eager,
	  op_init_many, after_init_many, release_many },
	{ "counter_share", 2, ENOMEM, setup_share, op_share, after_share,
	  release_counter },
	{ "upgrade on add", 2, 0, setup_upgrade, op_upgrade, after_upgrade,
	  release_counter },
	{ "pcpu_alloc", 2, ENOMEM, setup_none, op_alloc, after_alloc,
	  release_nothing },
	{ "cache_create", 4, ENOMEM, setup_none, op_cache_create,
	  after_cache_create, release_cache },
	{ "cache_alloc", 1, ENOMEM, setup_cache, op_cache_alloc,
	  after_cache_alloc, release_cache },
	{ "cache_alloc_bulk", 8, ENOMEM, setup_cache, op_alloc_bulk,
	  after_alloc_bulk, release_cache },
	{ "cache_free_rcu", 1, 0, setup_free_rcu, op_free_rcu, after_free_rcu,
	  release_cache },
};

#define FI_NCASES (sizeof(fi_cases) / sizeof(fi_cases[0]))

START_TEST(test_fault_every_point)
{
	const struct fi_case *fc = &fi_cases[_i];
	static struct fi_state st;
	unsigned long k;
	unsigned points = 0;
	long base;

	/* Start from nothing: no chunk kept, then the baseline. */
	tu_expect_no_area(fc->name);
	base = pcpu__fault_live();
	for (k = 1; k <= FI_MAX_POINTS; k++) {
		int err, fired;

		memset(&st, 0, sizeof(st));
		fc->setup(&st);
		pcpu__fault_arm(k);
		err = fc->op(&st);
		fired = pcpu__fault_fired();
		pcpu__fault_arm(0);

		if (fired) {
			points++;
			ck_assert_msg(err == fc->want_err, "%s, failure %lu: "
				      "error %d, want %d", fc->name, k, err,
				      fc->want_err);
		} else {
			ck_assert_msg(err == 0, "%s: error %d with no failure",
				      fc->name, err);
		}
		fc->after(&st, fired);
		fc->release(&st);
		tu_expect_no_area(fc->name);
		ck_assert_msg(pcpu__fault_live() == base, "%s, failure %lu: "
			      "%ld resources held, %ld before", fc->name, k,
			      pcpu__fault_live(), base);
		if (!fired)
			break;
	}
	ck_assert_msg(k <= FI_MAX_POINTS, "%s: still failing after %u points",
		      fc->name, FI_MAX_POINTS);
	if (fc->min_points)
		ck_assert_msg(points >= fc->min_points,
			      "%s: only %u failure points", fc->name, points);
	else
		ck_assert_msg(points == 0, "%s: %u failure points, where it "
			      "should allocate nothing", fc->name, points);
	printf("fault injection: %-24s %3u failure points (method %s)\n",
	       fc->name, points, pcpu_update_method());
}
END_TEST

/* The hook itself: the k-th allocation, and only that one, fails. */
START_TEST(test_fault_hook)
{
	void *a, *b;
	long base;

	tu_expect_no_area("hook");
	base = pcpu__fault_live();
	pcpu__fault_arm(3);		/* chunk header, chunk, then... */
	a = pcpu_alloc(8, 8);
	ck_assert_uint_eq(pcpu__fault_seen(), 2);
	ck_assert(!pcpu__fault_fired());
	ck_assert_ptr_nonnull(a);
	b = pcpu_alloc(PCPU_ALLOC_MAX, 8);	/* fits: no allocation */
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(pcpu__fault_seen(), 2);
	pcpu_free(b);
	b = pcpu_alloc(PCPU_ALLOC_MAX, 8);
	ck_assert_ptr_nonnull(b);
	pcpu_free(b);
	/* Too big for what is left of the chunk: a new chunk, whose
	 * header is allocation 3. */
	b = pcpu_alloc(PCPU_ALLOC_MAX, 8);
	ck_assert_ptr_nonnull(b);
	{
		void *c = pcpu_alloc(PCPU_ALLOC_MAX, 8);

		ck_assert_ptr_null(c);
		ck_assert_int_eq(errno, ENOMEM);
	}
	ck_assert(pcpu__fault_fired());
	ck_assert_uint_eq(pcpu__fault_seen(), 3);
	pcpu__fault_arm(0);
	ck_assert_uint_eq(pcpu__fault_seen(), 3);	/* kept */
	ck_assert_int_eq(pcpu__fault_live(), base + 2);
	pcpu_free(b);
	pcpu_free(a);
	tu_expect_no_area("hook");
	ck_assert_int_eq(pcpu__fault_live(), base);
}
END_TEST

static Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc;

	tc = tu_tcase(s, "hook", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_fault_hook);
	tc = tu_tcase(s, "every_point", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_fault_every_point, 0, (int)FI_NCASES);
	return s;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* counts print as they come */
	return tu_main(fault_suite());
}
