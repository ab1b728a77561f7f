/* SPDX-License-Identifier: MIT */
/*
 * test_cache.c - pcpu/cache.h: object caches with constructor and
 * destructor.
 *
 * Every cache here gets a struct tctx as its @arg: the constructor and the
 * destructor count what they do in it (atomically: slabs may be made by
 * several threads), so the tests check the library's stats against what
 * really ran.  The constructor stamps MAGIC into an object and the
 * destructor checks it is still there (an object destroyed that was never
 * constructed, or twice, shows up as a bad_dtor) and stamps DEAD.
 *
 * The documented model these tests hold the cache to: an object is
 * constructed the first time an allocation needs it (one constructor call
 * per allocation that finds no constructed object; a failing call fails
 * only that allocation), stays constructed while it goes out and comes
 * back, and is destroyed when its slab is released.  So, with no failing
 * constructor, constructed objects == ctor calls - dtor calls == in_use +
 * cached.
 */
#include "testutil.h"

#include <linux/membarrier.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <urcu/urcu-bp.h>

#define MAGIC	0xC0FFEE0DDBA11ULL
#define DEAD	0xDEADDEADDEADDEADULL

struct tobj {
	uint64_t magic;		/* MAGIC while constructed */
	uint64_t gen;		/* set by the allocating code (RCU test) */
	struct tobj *self;	/* set by the constructor */
	void *area;		/* per-CPU area from pcpu_alloc(), if asked */
	void *other;		/* object of ctx->other, if asked */
	uint32_t owner;		/* worker id while allocated (MT tests) */
	uint32_t scratch;	/* the user's: restored before free */
	struct pcpu_counter ctr; /* if ctx->counter */
};

struct tctx {
	uint64_t ctor_calls, ctor_ok, dtor_calls, bad_dtor;
	int64_t live;			/* constructed, not destroyed */
	int64_t areas;			/* pcpu_alloc areas live */
	int64_t fail_at;		/* fail the ctor call of this index */
	int64_t fail_from;		/* fail every ctor call from this one */
	int fail_err;			/* positive errno */
	int percpu;			/* ctor allocates a per-CPU area */
	int counter;			/* ctor inits a DUAL counter */
	/* Re-entry: the ctor allocates from ->self_cache. */
	struct pcpu_cache *self_cache;
	uint64_t reenter_calls, reenter_ok;
	int reenter_errno, reenter_bulk_errno;
	size_t reenter_bulk;
	void *reenter_obj;
	/* The ctor allocates from ->other, the dtor frees to it. */
	struct pcpu_cache *other;
	uint64_t other_fail;
	/* Construction order, for slab membership. */
	struct tobj **order;
	size_t order_cap;
	/* Destroy-waits-for-RCU test: flag the dtor reads. */
	int *reader_done;
	uint64_t dtor_before_reader;
};

static void ctx_init(struct tctx *x)
{
	memset(x, 0, sizeof(*x));
	x->fail_at = -1;
	x->fail_from = -1;
	x->fail_err = EMLINK;
}

static int tctor(void *p, void *arg)
{
	struct tctx *x = arg;
	struct tobj *o = p;
	int64_t i = (int64_t)__atomic_fetch_add(&x->ctor_calls, 1,
						 __ATOMIC_RELAXED);

	if (i == x->fail_at || (x->fail_from >= 0 && i >= x->fail_from))
		return -x->fail_err;
	memset(o, 0, sizeof(*o));
	if (x->percpu) {
		o->area = pcpu_alloc(64, 0);
		if (!o->area)
			return -ENOMEM;
		__atomic_fetch_add(&x->areas, 1, __ATOMIC_RELAXED);
	}
	if (x->counter && pcpu_counter_init(&o->ctr, 0, PCPU_COUNTER_DUAL)) {
		pcpu_free(o->area);
		return -ENOMEM;
	}
	if (x->other) {
		o->other = pcpu_cache_alloc(x->other, 0);
		if (!o->other)
			__atomic_fetch_add(&x->other_fail, 1, __ATOMIC_RELAXED);
	}
	if (x->self_cache) {
		void *v[2];

		x->reenter_calls++;
		errno = 0;
		x->reenter_obj = pcpu_cache_alloc(x->self_cache, 0);
		x->reenter_errno = errno;
		if (x->reenter_obj)
			x->reenter_ok++;
		errno = 0;
		x->reenter_bulk = pcpu_cache_alloc_bulk(x->self_cache, 0, 2, v);
		x->reenter_bulk_errno = errno;
	}
	o->magic = MAGIC;
	o->self = o;
	if (x->order && (size_t)i < x->order_cap)
		x->order[i] = o;
	__atomic_fetch_add(&x->ctor_ok, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&x->live, 1, __ATOMIC_RELAXED);
	return 0;
}

static void tdtor(void *p, void *arg)
{
	struct tctx *x = arg;
	struct tobj *o = p;

	if (o->magic != MAGIC || o->self != o)
		__atomic_fetch_add(&x->bad_dtor, 1, __ATOMIC_RELAXED);
	if (x->reader_done && !__atomic_load_n(x->reader_done, __ATOMIC_ACQUIRE))
		__atomic_fetch_add(&x->dtor_before_reader, 1, __ATOMIC_RELAXED);
	if (o->area) {
		pcpu_free(o->area);
		__atomic_fetch_sub(&x->areas, 1, __ATOMIC_RELAXED);
	}
	if (x->counter)
		pcpu_counter_destroy(&o->ctr);
	if (x->other && o->other)
		pcpu_cache_free(x->other, o->other);
	o->magic = DEAD;
	__atomic_fetch_add(&x->dtor_calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&x->live, 1, __ATOMIC_RELAXED);
}

static uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int64_t lds64(const int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static struct pcpu_cache *mk(const char *name, struct tctx *x, unsigned flags)
{
	struct pcpu_cache *c = pcpu_cache_create(name, sizeof(struct tobj), 0,
						 tctor, tdtor, x, flags);

	ck_assert_msg(c != NULL, "pcpu_cache_create(%s): errno %d", name,
		      errno);
	return c;
}

static struct pcpu_cache_stats stats(struct pcpu_cache *c)
{
	struct pcpu_cache_stats st;

	ck_assert_int_eq(pcpu_cache_stats(c, &st), 0);
	return st;
}

/* objs_per_slab of a cache of @size bytes (a probe cache). */
static size_t per_slab(size_t size, size_t align)
{
	struct pcpu_cache *c = pcpu_cache_create("probe", size, align, NULL,
						 NULL, NULL, 0);
	struct pcpu_cache_stats st;
	void *o;

	ck_assert_ptr_nonnull(c);
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	st = stats(c);
	pcpu_cache_free(c, o);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_uint_gt(st.objs_per_slab, 0);
	return st.objs_per_slab;
}

/* Destroy @c and check every constructed object was destroyed once. */
static void destroy_all(struct pcpu_cache *c, struct tctx *x)
{
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_uint_eq(ld64(&x->ctor_ok), ld64(&x->dtor_calls));
	ck_assert_int_eq(lds64(&x->live), 0);
	ck_assert_int_eq(lds64(&x->areas), 0);
	ck_assert_uint_eq(ld64(&x->bad_dtor), 0);
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a;
	uintptr_t y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

/* Does this process use rseq arrays (so lockless_allocs must grow)? */
static bool rseq_arrays(void)
{
	const char *m = pcpu_update_method();
	long q;

	if (strncmp(m, "rseq", 4) != 0)
		return false;
	q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	return q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ);
}

/* --- bad input --------------------------------------------------------- */

START_TEST(test_create_einval)
{
	static const struct { size_t size, align; unsigned flags; } bad[] = {
		{ 0, 0, 0 },
		{ PCPU_ALLOC_MAX + 1, 0, 0 },
		{ (size_t)-1, 0, 0 },
		{ 64, 3, 0 },
		{ 64, 24, 0 },
		{ 64, 8192, 0 },
		{ 64, 0, 0x2 },
		{ 64, 0, 0x80000000u },
	};
	struct pcpu_cache *c;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		c = pcpu_cache_create("bad", bad[i].size, bad[i].align, NULL,
				      NULL, NULL, bad[i].flags);
		ck_assert_msg(c == NULL && errno == EINVAL, "create(size %zu, "
			      "align %zu, flags %#x): %p errno %d, want NULL "
			      "EINVAL", bad[i].size, bad[i].align,
			      bad[i].flags, (void *)c, errno);
	}
	/* The limits themselves are fine. */
	c = pcpu_cache_create(NULL, PCPU_ALLOC_MAX, 4096, NULL, NULL, NULL,
			      PCPU_CACHE_DEBUG);
	ck_assert_ptr_nonnull(c);
	{
		char *o = pcpu_cache_alloc(c, 0);

		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq((uintptr_t)o % 4096, 0);
		memset(o, 0xa5, PCPU_ALLOC_MAX);
		pcpu_cache_free(c, o);
	}
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	c = pcpu_cache_create("one", 1, 1, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
}
END_TEST

START_TEST(test_api_einval)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void *v[2];

	ctx_init(&x);
	c = mk("einval", &x, 0);
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(NULL, 0));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(c, 0x2));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(c, PCPU_NOWAIT | 0x100));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(NULL, 0, 2, v), 0);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0x4, 2, v), 0);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 2, NULL), 0);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(pcpu_cache_destroy(NULL), -EINVAL);
	ck_assert_int_eq(pcpu_cache_deactivate(NULL), -EINVAL);
	ck_assert_int_eq(pcpu_cache_stats(NULL, &st), -EINVAL);
	ck_assert_int_eq(pcpu_cache_stats(c, NULL), -EINVAL);
	/* No-ops. */
	pcpu_cache_free(c, NULL);
	pcpu_cache_free_rcu(c, NULL);
	pcpu_cache_free(NULL, NULL);
	ck_assert_uint_eq(pcpu_cache_shrink(NULL), 0);
	/* None of that constructed anything. */
	st = stats(c);
	ck_assert_uint_eq(st.ctor_calls, 0);
	ck_assert_uint_eq(st.slabs, 0);
	ck_assert_uint_eq(st.in_use, 0);
	ck_assert_uint_eq(st.allocs, 0);
	destroy_all(c, &x);
}
END_TEST

/* --- layout -------------------------------------------------------------- */

static const struct { size_t size, align, want; } align_cases[] = {
	{ 40, 0, 8 }, { 48, 0, 16 }, { 100, 0, 4 }, { 7, 0, 1 },
	{ 4096, 0, 16 }, { 24, 8, 8 }, { 40, 64, 64 }, { 100, 4096, 4096 },
	{ 5000, 64, 64 }, { 1, 0, 1 }, { 3, 8, 8 }, { 4097, 4096, 4096 },
};
#define N_ALIGN	(int)(sizeof(align_cases) / sizeof(align_cases[0]))

START_TEST(test_align_no_overlap)
{
	size_t size = align_cases[_i].size, align = align_cases[_i].align;
	size_t want = align_cases[_i].want, n, i, j;
	struct pcpu_cache *c = pcpu_cache_create("align", size, align, NULL,
						 NULL, NULL, 0);
	struct pcpu_cache_stats st;
	unsigned char **v;

	ck_assert_ptr_nonnull(c);
	v = malloc(sizeof(*v));
	ck_assert_ptr_nonnull(v);
	v[0] = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(v[0]);
	st = stats(c);
	pcpu_cache_free(c, v[0]);
	free(v);
	n = 2 * st.objs_per_slab + 3;	/* three slabs at least */
	v = malloc(n * sizeof(*v));
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, n, (void **)v), n);
	for (i = 0; i < n; i++) {
		tu_check((uintptr_t)v[i] % want == 0, "size %zu align %zu: "
			 "object %p not %zu-aligned", size, align,
			 (void *)v[i], want);
		memset(v[i], (int)(i * 7 + 1), size);
	}
	for (i = 0; i < n; i++)
		for (j = 0; j < size; j++)
			tu_check(v[i][j] == (unsigned char)(i * 7 + 1),
				 "size %zu: object %zu byte %zu overwritten",
				 size, i, j);
	qsort(v, n, sizeof(*v), ptr_cmp);
	for (i = 1; i < n; i++)
		tu_check(v[i - 1] + size <= v[i], "objects %p and %p overlap "
			 "(size %zu)", (void *)v[i - 1], (void *)v[i], size);
	st = stats(c);
	ck_assert_uint_eq(st.in_use, n);
	pcpu_cache_free_bulk(c, n, (void **)v);
	free(v);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
}
END_TEST

/* --- constructors, destructors, stats ---------------------------------- */

START_TEST(test_ctor_per_object_not_per_alloc)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	struct tobj *o;
	unsigned i, rounds = 20000;
	size_t ops, destroyed;

	ctx_init(&x);
	c = mk("ctorcount", &x, 0);
	for (i = 0; i < rounds; i++) {
		o = pcpu_cache_alloc(c, 0);
		tu_check(o != NULL, "alloc %u: errno %d", i, errno);
		tu_check(o->magic == MAGIC && o->self == o, "alloc %u: "
			 "object not in constructed state", i);
		o->scratch = i;
		pcpu_cache_free(c, o);
	}
	st = stats(c);
	ops = st.objs_per_slab;
	ck_assert_uint_ge(st.slabs, 1);
	ck_assert_uint_eq(st.ctor_calls, ld64(&x.ctor_calls));
	ck_assert_uint_eq(st.ctor_calls, ld64(&x.ctor_ok));
	ck_assert_uint_le(st.ctor_calls, st.slabs * ops);
	ck_assert_msg(st.ctor_calls < rounds / 10, "ctor calls %llu for %u "
		      "allocations", (unsigned long long)st.ctor_calls, rounds);
	ck_assert_uint_eq(st.allocs, rounds);
	ck_assert_uint_eq(st.dtor_calls, 0);
	ck_assert_uint_eq(ld64(&x.dtor_calls), 0);
	ck_assert_uint_eq(st.in_use, 0);
	ck_assert_uint_eq(st.cached, ld64(&x.ctor_ok));
	ck_assert_uint_eq(st.rcu_pending, 0);
	/* Shrink: every slab is empty, so every object is destroyed. */
	destroyed = pcpu_cache_shrink(c);
	st = stats(c);
	ck_assert_uint_eq(destroyed, ld64(&x.ctor_ok));
	ck_assert_uint_eq(st.dtor_calls, destroyed);
	ck_assert_uint_eq(ld64(&x.dtor_calls), destroyed);
	ck_assert_uint_eq(st.slabs, 0);
	ck_assert_uint_eq(st.cached, 0);
	ck_assert_int_eq(lds64(&x.live), 0);
	/* Usable after a shrink: a new slab is constructed. */
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->magic, MAGIC);
	ck_assert_uint_eq(ld64(&x.ctor_ok), destroyed + 1);
	pcpu_cache_free(c, o);
	ck_assert_uint_eq(ld64(&x.dtor_calls), destroyed);
	destroy_all(c, &x);
	ck_assert_uint_eq(ld64(&x.dtor_calls), destroyed + 1);
}
END_TEST

START_TEST(test_stats_consistency)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void **v;
	size_t ops = per_slab(sizeof(struct tobj), 0), n = 3 * ops / 2, i;

	ctx_init(&x);
	c = mk("stats", &x, 0);
	v = calloc(n, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	for (i = 0; i < n; i++) {
		v[i] = pcpu_cache_alloc(c, 0);
		ck_assert_ptr_nonnull(v[i]);
		st = stats(c);
		tu_check(st.in_use == i + 1, "in_use %zu after %zu allocs",
			 st.in_use, i + 1);
		tu_check(st.allocs == i + 1, "allocs %llu after %zu",
			 (unsigned long long)st.allocs, i + 1);
		tu_check(st.ctor_calls - st.dtor_calls == st.in_use + st.cached,
			 "constructed %llu != in_use %zu + cached %zu",
			 (unsigned long long)(st.ctor_calls - st.dtor_calls),
			 st.in_use, st.cached);
		/* Lazy: one constructor call per allocation that found no
		 * constructed object (here: every one). */
		tu_check(st.ctor_calls == i + 1, "ctor %llu after %zu allocs",
			 (unsigned long long)st.ctor_calls, i + 1);
		tu_check(st.slabs == i / ops + 1, "slabs %zu after %zu allocs",
			 st.slabs, i + 1);
		tu_check(st.lockless_allocs <= st.allocs, "lockless > allocs");
	}
	ck_assert_uint_eq(st.slabs, 2);
	for (i = 0; i < n; i++) {
		pcpu_cache_free(c, v[i]);
		st = stats(c);
		tu_check(st.in_use == n - i - 1, "in_use %zu after free",
			 st.in_use);
		tu_check(st.ctor_calls - st.dtor_calls == st.in_use + st.cached,
			 "constructed != in_use + cached after free");
	}
	ck_assert_uint_eq(st.dtor_calls, 0);
	free(v);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_lockless_allocs)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void *o;
	unsigned i;

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	ctx_init(&x);
	c = mk("lockless", &x, 0);
	for (i = 0; i < 1000; i++) {
		o = pcpu_cache_alloc(c, 0);
		ck_assert_ptr_nonnull(o);
		pcpu_cache_free(c, o);
	}
	st = stats(c);
	ck_assert_uint_eq(st.allocs, 1000);
	ck_assert_uint_le(st.lockless_allocs, st.allocs);
	if (rseq_arrays())
		ck_assert_msg(st.lockless_allocs >= 900, "method %s: only "
			      "%llu of 1000 allocations on one CPU were "
			      "lockless", pcpu_update_method(),
			      (unsigned long long)st.lockless_allocs);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_constructed_state)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct tobj *o, *p;
	void *v[64];
	unsigned i, round;

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	ctx_init(&x);
	c = mk("state", &x, 0);
	for (round = 0; round < 50; round++) {
		ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 64, v), 64);
		for (i = 0; i < 64; i++) {
			o = v[i];
			tu_check(o->magic == MAGIC && o->self == o &&
				 o->scratch == 0, "round %u: object %p not as "
				 "the constructor/user left it", round,
				 (void *)o);
			/* Use it, then restore the constructed state. */
			o->magic = 1;
			o->scratch = 77;
			o->magic = MAGIC;
			o->scratch = 0;
		}
		pcpu_cache_free_bulk(c, 64, v);
	}
	/* LIFO per-CPU array: the object freed last comes back first. */
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	o->gen = 12345;		/* a field the constructed state allows */
	pcpu_cache_free(c, o);
	p = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_eq(p, o);
	ck_assert_uint_eq(p->gen, 12345);	/* not reconstructed */
	p->gen = 0;
	pcpu_cache_free(c, p);
	/* Exactly the 64 the first bulk constructed, all free now. */
	ck_assert_uint_eq(ld64(&x.ctor_ok), 64);
	ck_assert_uint_eq(stats(c).cached, 64);
	destroy_all(c, &x);
}
END_TEST

/*
 * The constructor fails at call @pos; allocations are held, so call k is
 * the k-th allocation's.  Only allocation @pos fails, with the
 * constructor's errno; the others succeed (the failed object is tried
 * again by the next one), and every object constructed is destroyed once.
 * Positions run past the first slab.
 */
static void ctor_fail_every_position(size_t size, int percpu)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	size_t ops = per_slab(size, 0), pos, k, got;
	void **v = calloc(ops + 3, sizeof(*v));

	ck_assert_ptr_nonnull(v);
	for (pos = 0; pos < ops + 2; pos++) {
		ctx_init(&x);
		x.percpu = percpu;
		x.fail_at = (int64_t)pos;
		x.fail_err = pos % 2 ? EMLINK : ENOSPC;
		c = pcpu_cache_create("ctorfail", size, 0, tctor, tdtor, &x, 0);
		ck_assert_ptr_nonnull(c);
		for (k = got = 0; k < pos + 2; k++) {
			errno = 0;
			v[got] = pcpu_cache_alloc(c, 0);
			if (k == pos) {
				tu_check(v[got] == NULL && errno == x.fail_err,
					 "size %zu, ctor fails at %zu: alloc "
					 "%p errno %d, want NULL errno %d",
					 size, pos, v[got], errno, x.fail_err);
				continue;
			}
			tu_check(v[got] != NULL, "size %zu, ctor fails at %zu: "
				 "alloc %zu failed too (errno %d)", size, pos,
				 k, errno);
			tu_check(((struct tobj *)v[got])->magic == MAGIC,
				 "alloc %zu: not constructed", k);
			got++;
		}
		st = stats(c);
		tu_check(st.ctor_calls == pos + 2 && st.dtor_calls == 0 &&
			 ld64(&x.ctor_calls) == pos + 2, "fail at %zu: stats "
			 "ctor %llu dtor %llu", pos,
			 (unsigned long long)st.ctor_calls,
			 (unsigned long long)st.dtor_calls);
		tu_check(st.in_use == pos + 1 && st.allocs == pos + 1 &&
			 st.cached == 0 && st.slabs == pos / ops + 1,
			 "fail at %zu: in_use %zu allocs %llu cached %zu slabs "
			 "%zu", pos, st.in_use, (unsigned long long)st.allocs,
			 st.cached, st.slabs);
		tu_check(lds64(&x.live) == (int64_t)(pos + 1) &&
			 lds64(&x.areas) == (percpu ? (int64_t)(pos + 1) : 0),
			 "fail at %zu: live %lld areas %lld", pos,
			 (long long)lds64(&x.live), (long long)lds64(&x.areas));
		pcpu_cache_free_bulk(c, got, v);
		tu_check(pcpu_cache_destroy(c) == 0, "destroy");
		tu_check(lds64(&x.live) == 0 && lds64(&x.areas) == 0 &&
			 ld64(&x.bad_dtor) == 0 &&
			 ld64(&x.dtor_calls) == ld64(&x.ctor_ok) &&
			 ld64(&x.ctor_ok) == pos + 1,
			 "fail at %zu: after destroy live %lld areas %lld "
			 "ctor ok %llu dtor %llu", pos,
			 (long long)lds64(&x.live), (long long)lds64(&x.areas),
			 (unsigned long long)ld64(&x.ctor_ok),
			 (unsigned long long)ld64(&x.dtor_calls));
	}
	free(v);
}

START_TEST(test_ctor_fail_small)
{
	ctor_fail_every_position(sizeof(struct tobj), 0);
}
END_TEST

START_TEST(test_ctor_fail_large_percpu)
{
	ctor_fail_every_position(2048, 1);
}
END_TEST

START_TEST(test_nowait_cold)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void *o, *p, *v[4];

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	ctx_init(&x);
	c = mk("nowait", &x, 0);
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(c, PCPU_NOWAIT));
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, PCPU_NOWAIT, 3, v), 0);
	ck_assert_int_eq(errno, EAGAIN);
	st = stats(c);
	ck_assert_uint_eq(ld64(&x.ctor_calls), 0);
	ck_assert_uint_eq(st.ctor_calls, 0);
	ck_assert_uint_eq(st.slabs, 0);
	ck_assert_uint_eq(st.allocs, 0);
	ck_assert_uint_eq(st.in_use, 0);
	/* Warm: a freed object is in this CPU's array. */
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free(c, o);
	p = pcpu_cache_alloc(c, PCPU_NOWAIT);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(((struct tobj *)p)->magic, MAGIC);
	pcpu_cache_free(c, p);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, PCPU_NOWAIT, 1, v), 1);
	pcpu_cache_free_bulk(c, 1, v);
	/* After a shrink the arrays are empty again: NOWAIT fails, no ctor. */
	pcpu_cache_shrink(c);
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(c, PCPU_NOWAIT));
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(ld64(&x.ctor_calls), 1);
	ck_assert_uint_eq(stats(c).in_use, 0);
	destroy_all(c, &x);
}
END_TEST

/*
 * A new thread's first NOWAIT allocation, its CPU's array warm: it must
 * succeed under every method.  Under rseq-own the thread has no rseq area
 * until it registers; the array operations register it (this failed with
 * EAGAIN before, seen by review).
 */
struct nowait_job {
	struct pcpu_cache *c;
	int cpu, err;
	void *obj;
};

static void *nowait_job_fn(void *p)
{
	struct nowait_job *j = p;

	j->err = tu_pin(j->cpu);
	if (j->err)
		return NULL;
	errno = 0;
	j->obj = pcpu_cache_alloc(j->c, PCPU_NOWAIT);
	if (!j->obj)
		j->err = errno;
	return NULL;
}

START_TEST(test_nowait_new_thread)
{
	struct tctx x;
	struct nowait_job j = { .cpu = tu_cpus.cpu[0] };
	void *o;

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	ctx_init(&x);
	j.c = mk("nowait-thread", &x, 0);
	o = pcpu_cache_alloc(j.c, 0);	/* refills this CPU's array */
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free(j.c, o);
	ck_assert_int_eq(tu_run_in_thread(nowait_job_fn, &j), 0);
	ck_assert_msg(j.obj != NULL, "NOWAIT in a new thread (method %s): "
		      "errno %d", pcpu_update_method(), j.err);
	pcpu_cache_free(j.c, j.obj);
	destroy_all(j.c, &x);
}
END_TEST

START_TEST(test_bulk)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st, st2;
	size_t ops = per_slab(sizeof(struct tobj), 0), n = 3 * ops + 7, i;
	void **v, **w;

	ctx_init(&x);
	c = mk("bulk", &x, 0);
	v = calloc(4 * ops + 1, sizeof(*v));
	w = calloc(n + 1, sizeof(*w));
	ck_assert_ptr_nonnull(v);
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, n, v), n);
	memcpy(w, v, n * sizeof(*v));
	qsort(w, n, sizeof(*w), ptr_cmp);
	for (i = 0; i < n; i++) {
		tu_check(((struct tobj *)v[i])->magic == MAGIC,
			 "bulk object %zu not constructed", i);
		tu_check(i == 0 || w[i - 1] != w[i], "bulk gave %p twice",
			 w[i]);
	}
	st = stats(c);
	ck_assert_uint_eq(st.in_use, n);
	ck_assert_uint_eq(st.allocs, n);
	ck_assert_uint_eq(st.slabs, 4);
	/* NULL entries are skipped by free_bulk. */
	v[n] = NULL;
	memmove(v + 1, v, n * sizeof(*v));
	v[0] = NULL;
	pcpu_cache_free_bulk(c, n + 1, v);
	st = stats(c);
	ck_assert_uint_eq(st.in_use, 0);
	ck_assert_uint_eq(st.cached, n);
	ck_assert_uint_eq(st.ctor_calls, n);

	/* All or nothing: 4 * ops + 1 needs ops - 6 new objects; the
	 * constructor fails half way through them.  The bulk fails, takes
	 * nothing, and keeps the ones it did construct. */
	x.fail_from = (int64_t)(n + (ops - 6) / 2);
	x.fail_err = ENOSPC;
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 4 * ops + 1, v), 0);
	ck_assert_int_eq(errno, ENOSPC);
	st2 = stats(c);
	ck_assert_uint_eq(st2.in_use, 0);
	ck_assert_uint_eq(st2.allocs, st.allocs);
	/* The new objects took a 5th slab (raw ones are reserved first). */
	ck_assert_uint_eq(st2.slabs, 5);
	ck_assert_uint_eq(st2.ctor_calls, n + (ops - 6) / 2 + 1);
	ck_assert_uint_eq(st2.cached, n + (ops - 6) / 2);
	ck_assert_int_eq(lds64(&x.live), (int64_t)(n + (ops - 6) / 2));
	ck_assert_uint_eq(ld64(&x.dtor_calls), 0);
	/* Nothing was lost, and the constructed ones are served without a
	 * constructor call. */
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, st2.cached, v),
			  st2.cached);
	ck_assert_uint_eq(stats(c).ctor_calls, st2.ctor_calls);
	ck_assert_uint_eq(stats(c).slabs, 5);
	pcpu_cache_free_bulk(c, st2.cached, v);
	x.fail_from = -1;
	free(v);
	free(w);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_bulk_nowait)
{
	struct tctx x;
	struct pcpu_cache *c;
	void *v[8], *o;
	size_t k;

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	(void)per_slab(64, 0);	/* this thread has allocated (rseq-own) */
	ctx_init(&x);
	c = mk("bulknowait", &x, 0);
	/* Fill this CPU's array with 4 objects (after a shrink, empty). */
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 4, v), 4);
	pcpu_cache_shrink(c);
	pcpu_cache_free_bulk(c, 4, v);
	/* 5 NOWAIT: fails, and the 4 stay available without a lock. */
	errno = 0;
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, PCPU_NOWAIT, 5, v), 0);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(stats(c).in_use, 0);
	for (k = 0; k < 4; k++) {
		v[k] = pcpu_cache_alloc(c, PCPU_NOWAIT);
		ck_assert_msg(v[k] != NULL, "NOWAIT alloc %zu after a failed "
			      "NOWAIT bulk: errno %d", k, errno);
	}
	errno = 0;
	o = pcpu_cache_alloc(c, PCPU_NOWAIT);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(errno, EAGAIN);
	pcpu_cache_free_bulk(c, 4, v);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, PCPU_NOWAIT, 4, v), 4);
	ck_assert_uint_eq(stats(c).in_use, 4);
	pcpu_cache_free_bulk(c, 4, v);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_edeadlk)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void *o;

	ctx_init(&x);
	c = mk("reenter", &x, 0);
	x.self_cache = c;
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	st = stats(c);
	ck_assert_uint_eq(x.reenter_calls, 1);
	ck_assert_uint_eq(x.reenter_ok, 0);
	ck_assert_ptr_null(x.reenter_obj);
	ck_assert_int_eq(x.reenter_errno, EDEADLK);
	ck_assert_uint_eq(x.reenter_bulk, 0);
	ck_assert_int_eq(x.reenter_bulk_errno, EDEADLK);
	ck_assert_uint_eq(st.in_use, 1);
	ck_assert_uint_eq(st.slabs, 1);
	ck_assert_uint_eq(st.allocs, 1);
	x.self_cache = NULL;
	pcpu_cache_free(c, o);
	destroy_all(c, &x);
}
END_TEST

/* A constructor may allocate from another cache (and a dtor free to it). */
START_TEST(test_ctor_uses_other_cache)
{
	struct tctx xa, xb;
	struct pcpu_cache *a, *b;
	struct pcpu_cache_stats sa;
	void *o;

	ctx_init(&xa);
	ctx_init(&xb);
	b = mk("inner", &xb, 0);
	xa.other = b;
	xa.percpu = 1;
	a = mk("outer", &xa, 0);
	o = pcpu_cache_alloc(a, 0);
	ck_assert_ptr_nonnull(o);
	sa = stats(a);
	ck_assert_uint_eq(xa.other_fail, 0);
	ck_assert_uint_eq(stats(b).in_use, 1);
	ck_assert_uint_le(sa.ctor_calls, sa.objs_per_slab);
	pcpu_cache_free(a, o);
	ck_assert_uint_eq(pcpu_cache_shrink(a), 1);
	ck_assert_uint_eq(stats(b).in_use, 0);
	destroy_all(a, &xa);
	destroy_all(b, &xb);
}
END_TEST

/* --- per-CPU memory owned by objects ------------------------------------- */

struct owner_job {
	struct pcpu_cache *c;
	struct tobj *o;
	int64_t sum;
	bool shared, same_area;
	void *area;
};

static void *foreign_add_fn(void *p)
{
	struct owner_job *j = p;
	int i;

	for (i = 0; i < 1000; i++)
		pcpu_counter_inc(&j->o->ctr);
	return NULL;
}

/* In a new thread: take an object, make it ours with reset, add. */
static void *new_owner_fn(void *p)
{
	struct owner_job *j = p;
	struct tobj *o = pcpu_cache_alloc(j->c, 0);

	j->o = o;
	if (!o)
		return NULL;
	pcpu_counter_reset(&o->ctr);
	pcpu_counter_add(&o->ctr, 10);
	j->shared = pcpu_counter_is_shared(&o->ctr);
	j->sum = pcpu_counter_sum(&o->ctr);
	pcpu_counter_reset(&o->ctr);
	pcpu_cache_free(j->c, o);
	return NULL;
}

START_TEST(test_percpu_kept)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct tobj *o, *p;
	struct owner_job j;
	void *area;
	int64_t *slots;
	uint64_t ctors;

	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	ctx_init(&x);
	x.percpu = 1;
	x.counter = 1;
	c = mk("percpu", &x, 0);
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	ctors = ld64(&x.ctor_ok);
	area = o->area;
	ck_assert_ptr_nonnull(area);
	/* The owner (this thread: it ran the constructor) adds privately. */
	pcpu_counter_add(&o->ctr, 5);
	ck_assert(!pcpu_counter_is_shared(&o->ctr));
	/* Another thread's adds give the counter per-CPU slots. */
	memset(&j, 0, sizeof(j));
	j.o = o;
	ck_assert_int_eq(tu_run_in_thread(foreign_add_fn, &j), 0);
	ck_assert(pcpu_counter_is_shared(&o->ctr));
	ck_assert_int_eq(pcpu_counter_sum(&o->ctr), 1005);
	/* White box: the slot area the counter got (a private field). */
	slots = o->ctr.pcpu__slots;
	ck_assert_ptr_nonnull(slots);
	*(int *)pcpu_ptr(area, 0) = 42;
	/* Back to constructed state and to the cache. */
	pcpu_counter_reset(&o->ctr);
	ck_assert_int_eq(pcpu_counter_sum(&o->ctr), 0);
	*(int *)pcpu_ptr(area, 0) = 0;
	pcpu_cache_free(c, o);
	/* Same thread, same CPU: the same object, its memory kept. */
	p = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_eq(p, o);
	ck_assert_ptr_eq(p->area, area);
	ck_assert_ptr_eq(p->ctr.pcpu__slots, slots);
	/* (Whether reset leaves it shared is counter.h's business: a reset
	 * may go back to owner mode keeping the slots aside.) */
	ck_assert_int_eq(pcpu_counter_sum(&p->ctr), 0);
	pcpu_counter_add(&p->ctr, 3);
	ck_assert_int_eq(pcpu_counter_sum(&p->ctr), 3);
	pcpu_counter_reset(&p->ctr);
	ck_assert_uint_eq(ld64(&x.ctor_ok), ctors);
	ck_assert_int_eq(lds64(&x.areas), (int64_t)ctors);
	pcpu_cache_free(c, p);

	/* A never-shared object: whoever resets it owns it privately. */
	pcpu_cache_shrink(c);
	o = pcpu_cache_alloc(c, 0);	/* fresh slab, ctor ran here */
	ck_assert_ptr_nonnull(o);
	p = pcpu_cache_alloc(c, 0);	/* keeps the slab alive */
	ck_assert_ptr_nonnull(p);
	ck_assert(!pcpu_counter_is_shared(&o->ctr));
	pcpu_counter_reset(&o->ctr);
	pcpu_cache_free(c, o);
	pcpu_cache_shrink(c);		/* arrays drained into the slab */
	memset(&j, 0, sizeof(j));
	j.c = c;
	ck_assert_int_eq(tu_run_in_thread(new_owner_fn, &j), 0);
	ck_assert_ptr_nonnull(j.o);
	ck_assert_msg(!j.shared, "a DUAL counter reset by its new thread was "
		      "upgraded by that thread's own adds");
	ck_assert_int_eq(j.sum, 10);
	pcpu_cache_free(c, p);
	ck_assert_uint_eq(stats(c).in_use, 0);
	destroy_all(c, &x);
}
END_TEST

/* --- concurrency --------------------------------------------------------- */

#define HOLD	96

struct mt_worker {
	struct tu_worker_rec rec;
	struct pcpu_cache *c;
	struct tu_gate *gate;
	uint64_t allocs, frees;
	bool use_rcu;
} __attribute__((aligned(TU_CACHELINE)));

/* Take an object: constructed, and not held by anyone else. */
static bool mt_take(struct mt_worker *w, struct tobj *o)
{
	uint32_t prev;

	if (o->magic != MAGIC || o->self != o) {
		tu_rec_fail(&w->rec, "object %p not constructed (magic %llx)",
			    (void *)o, (unsigned long long)o->magic);
		return false;
	}
	prev = __atomic_exchange_n(&o->owner, w->rec.id, __ATOMIC_RELAXED);
	if (prev) {
		tu_rec_fail(&w->rec, "object %p handed to %u while %u held "
			    "it", (void *)o, w->rec.id, prev);
		return false;
	}
	w->allocs++;
	return true;
}

static void mt_give(struct mt_worker *w, struct tobj *o)
{
	__atomic_store_n(&o->owner, 0, __ATOMIC_RELAXED);
	w->frees++;
}

static void *mt_fn(void *p)
{
	struct mt_worker *w = p;
	struct tobj *held[HOLD];
	void *bulk[16];
	unsigned n = 0, i, k, hop = w->rec.id;
	uint64_t r = tu_rand_seed(w->rec.id);

	tu_gate_wait(w->gate);
	while (!tu_gate_stopped(w->gate) && !w->rec.failed) {
		unsigned op = tu_rand_below(&r, 16);

		if (op == 0)
			(void)tu_hop(&hop);
		if (op < 7 && n < HOLD) {
			struct tobj *o = pcpu_cache_alloc(w->c, 0);

			if (!o) {
				tu_rec_fail(&w->rec, "alloc: errno %d", errno);
				break;
			}
			if (mt_take(w, o))
				held[n++] = o;
		} else if (op < 9 && n + 16 <= HOLD) {
			k = 1 + tu_rand_below(&r, 16);
			if (pcpu_cache_alloc_bulk(w->c, 0, k, bulk) != k) {
				tu_rec_fail(&w->rec, "bulk %u: errno %d", k,
					    errno);
				break;
			}
			for (i = 0; i < k; i++)
				if (mt_take(w, bulk[i]))
					held[n++] = bulk[i];
		} else if (op < 15 && n) {
			i = tu_rand_below(&r, n);
			mt_give(w, held[i]);
			if (w->use_rcu && (op & 1))
				pcpu_cache_free_rcu(w->c, held[i]);
			else
				pcpu_cache_free(w->c, held[i]);
			held[i] = held[--n];
		} else if (n >= 16) {
			for (i = 0; i < 16; i++)
				mt_give(w, held[n - 16 + i]);
			pcpu_cache_free_bulk(w->c, 16, (void **)&held[n - 16]);
			n -= 16;
		}
	}
	for (i = 0; i < n; i++)
		mt_give(w, held[i]);
	pcpu_cache_free_bulk(w->c, n, (void **)held);
	(void)tu_unpin();
	return NULL;
}

struct side_job {
	struct pcpu_cache *c;
	struct tu_gate *gate;
	uint64_t shrinks, destroyed;
	int deactivate_rc;
	int deactivate;			/* deactivate half way instead */
	double half;
};

static void *shrink_fn(void *p)
{
	struct side_job *s = p;
	double t0;

	tu_gate_wait(s->gate);
	t0 = tu_now();
	while (!tu_gate_stopped(s->gate)) {
		if (s->deactivate) {
			if (tu_now() - t0 >= s->half) {
				s->deactivate_rc = pcpu_cache_deactivate(s->c);
				break;
			}
			sched_yield();
			continue;
		}
		s->destroyed += pcpu_cache_shrink(s->c);
		s->shrinks++;
		sched_yield();
	}
	return NULL;
}

/* Two workers allocate and free while a third thread shrinks/deactivates. */
static void run_mt(struct pcpu_cache *c, struct tctx *x, int deactivate,
		   bool use_rcu)
{
	struct mt_worker w[2];
	struct side_job s;
	struct tu_gate gate;
	pthread_t tids[3];
	struct pcpu_cache_stats st;
	double secs = tu_stress_seconds();
	unsigned i;

	tu_gate_init(&gate);
	memset(w, 0, sizeof(w));
	for (i = 0; i < 2; i++) {
		w[i].rec.id = i + 1;
		w[i].c = c;
		w[i].gate = &gate;
		w[i].use_rcu = use_rcu;
	}
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.gate = &gate;
	s.deactivate = deactivate;
	s.half = secs / 2;
	s.deactivate_rc = -1;
	ck_assert_int_eq(tu_spawn(tids, 2, mt_fn, w, sizeof(w[0])), 0);
	ck_assert_int_eq(pthread_create(&tids[2], NULL, shrink_fn, &s), 0);
	tu_gate_open(&gate);
	usleep((useconds_t)(secs * 1e6));
	tu_gate_stop(&gate);
	tu_join(tids, 3);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(!w[i].rec.failed, "worker %u: %s", i,
			      w[i].rec.err);
		ck_assert_uint_eq(w[i].allocs, w[i].frees);
		ck_assert_uint_gt(w[i].allocs, 0);
	}
	if (deactivate)
		ck_assert_int_eq(s.deactivate_rc, 0);
	else
		ck_assert_uint_gt(s.shrinks, 0);
	if (use_rcu)
		urcu_bp_barrier();
	st = stats(c);
	if (!use_rcu) {
		/*
		 * The cache's own accounting under load: every allocation the
		 * workers made counted once, none still in use once all were
		 * freed.  (With RCU frees, objects may still sit in per-CPU
		 * batches here: no exact count to report.)
		 */
		tu_stress_report(w[0].allocs + w[0].frees + w[1].allocs +
				 w[1].frees, (long long)(w[0].allocs +
				 w[1].allocs - st.allocs) + (long long)st.in_use,
				 "cache %s (allocations and frees; lost: "
				 "allocations not counted, objects still in use)",
				 deactivate ? "deactivated under load" :
				 "shrunk under load");
		ck_assert_uint_eq(st.in_use, 0);
		ck_assert_uint_eq(st.allocs, w[0].allocs + w[1].allocs);
	}
	ck_assert_uint_eq(st.ctor_calls - st.dtor_calls,
			  st.in_use + st.cached);
	ck_assert_uint_le(st.ctor_calls - st.dtor_calls,
			  st.slabs * st.objs_per_slab);
	ck_assert_uint_eq(st.ctor_calls, ld64(&x->ctor_calls));
	ck_assert_uint_eq(st.dtor_calls, ld64(&x->dtor_calls));
	ck_assert_int_eq(lds64(&x->live),
			 (int64_t)(st.ctor_calls - st.dtor_calls));
	if (deactivate && !use_rcu) {
		/* Dying and nothing in use: every slab is gone already. */
		ck_assert_msg(st.slabs == 0, "deactivated, in_use %zu: slabs "
			      "%zu (cached %zu, ctor %llu, dtor %llu) still "
			      "held; shrink then releases %zu objects",
			      st.in_use, st.slabs, st.cached,
			      (unsigned long long)st.ctor_calls,
			      (unsigned long long)st.dtor_calls,
			      pcpu_cache_shrink(c));
		ck_assert_int_eq(lds64(&x->live), 0);
	}
	if (!deactivate)
		ck_assert_uint_eq(s.destroyed, st.dtor_calls);
	ck_assert_uint_eq(ld64(&x->bad_dtor), 0);
}

START_TEST(test_mt_shrink)
{
	struct tctx x;
	struct pcpu_cache *c;

	ctx_init(&x);
	x.percpu = 1;
	c = mk("mtshrink", &x, 0);
	run_mt(c, &x, 0, false);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_mt_shrink_debug_rcu)
{
	struct tctx x;
	struct pcpu_cache *c;

	ctx_init(&x);
	c = mk("mtdebug", &x, PCPU_CACHE_DEBUG);
	run_mt(c, &x, 0, true);
	destroy_all(c, &x);
}
END_TEST

START_TEST(test_deactivate_under_load)
{
	struct tctx x;
	struct pcpu_cache *c;

	ctx_init(&x);
	c = mk("deact-load", &x, 0);
	run_mt(c, &x, 1, false);
	destroy_all(c, &x);
}
END_TEST

/* After deactivate, a slab is released exactly when its last object is. */
/*
 * Destructors run with no library lock held: one that calls back into its
 * own cache (shrink) must not deadlock when deactivate or shrink release
 * its slab.  Run in a thread with a time limit, so a deadlock fails the
 * test instead of hanging it.
 */
static struct pcpu_cache *reentrant_cache;
static unsigned reentrant_dtor_calls;

static void reentrant_dtor(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	reentrant_dtor_calls++;
	pcpu_cache_shrink(reentrant_cache);
}

static void *reentrant_deactivate(void *arg)
{
	void *o = pcpu_cache_alloc(reentrant_cache, 0);

	(void)arg;
	if (!o)
		return (void *)1;
	pcpu_cache_free(reentrant_cache, o);
	return (void *)(intptr_t)pcpu_cache_deactivate(reentrant_cache);
}

START_TEST(test_dtor_reenters_cache)
{
	struct timespec until;
	pthread_t t;
	void *ret;

	reentrant_dtor_calls = 0;
	reentrant_cache = pcpu_cache_create("reenter", 64, 0, NULL,
					    reentrant_dtor, NULL, 0);
	ck_assert_ptr_nonnull(reentrant_cache);
	ck_assert_int_eq(pthread_create(&t, NULL, reentrant_deactivate, NULL), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	ck_assert_msg(pthread_timedjoin_np(t, &ret, &until) == 0,
		      "deactivate with a destructor calling shrink deadlocked");
	ck_assert_ptr_null(ret);
	ck_assert_uint_gt(reentrant_dtor_calls, 0);
	ck_assert_int_eq(pcpu_cache_destroy(reentrant_cache), 0);
}
END_TEST

START_TEST(test_deactivate_exact)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	size_t ops = per_slab(sizeof(struct tobj), 0), n = 4 * ops, i, k;
	size_t *left, alive, want_slabs;
	struct tobj **order, **v, *o;
	uint64_t r = tu_rand_seed(99);

	ctx_init(&x);
	order = calloc(n, sizeof(*order));
	v = calloc(n, sizeof(*v));
	left = calloc(4, sizeof(*left));
	ck_assert(order && v && left);
	x.order = order;
	x.order_cap = n;
	c = mk("deact", &x, 0);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, n, (void **)v), n);
	ck_assert_uint_eq(ld64(&x.ctor_ok), n);
	ck_assert_uint_eq(stats(c).slabs, 4);
	/* Give one back before deactivating: it sits in a per-CPU array. */
	pcpu_cache_free(c, v[n - 1]);
	ck_assert_int_eq(pcpu_cache_deactivate(c), 0);
	st = stats(c);
	ck_assert_uint_eq(st.slabs, 4);
	ck_assert_uint_eq(st.dtor_calls, 0);
	o = pcpu_cache_alloc(c, 0);	/* still allocates after deactivate */
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->magic, MAGIC);
	v[n - 1] = o;
	for (i = 0; i < 4; i++)
		left[i] = ops;
	alive = 4;
	for (i = n; i > 0; i--) {
		size_t j = tu_rand_below(&r, (unsigned)i), s;

		o = v[j];
		v[j] = v[i - 1];
		for (k = 0; k < n && order[k] != o; k++)
			;
		ck_assert_uint_lt(k, n);
		s = k / ops;
		pcpu_cache_free(c, o);
		if (--left[s] == 0)
			alive--;
		want_slabs = alive;
		st = stats(c);
		tu_check(st.slabs == want_slabs, "after deactivate, %zu objects "
			 "still in use: slabs %zu, want %zu", i - 1, st.slabs,
			 want_slabs);
		tu_check(st.dtor_calls == (4 - want_slabs) * ops, "dtor calls "
			 "%llu, want %zu", (unsigned long long)st.dtor_calls,
			 (4 - want_slabs) * ops);
	}
	ck_assert_int_eq(lds64(&x.live), 0);
	free(order);
	free(v);
	free(left);
	x.order = NULL;
	destroy_all(c, &x);
}
END_TEST

/*
 * Deterministic form of a race the load test can hit: after deactivate, a
 * thread makes a new slab (its constructor is slow) while another frees an
 * object into a full slab.  The new slab must not stay behind, empty.
 */
static unsigned gate_ctor_armed, gate_ctor_in, gate_ctor_go;

static int gate_ctor(void *p, void *arg)
{
	(void)arg;
	if (__atomic_exchange_n(&gate_ctor_armed, 0, __ATOMIC_ACQ_REL)) {
		__atomic_store_n(&gate_ctor_in, 1, __ATOMIC_RELEASE);
		tu_wait_uint(&gate_ctor_go, 1);
	}
	memset(p, 0, 64);
	return 0;
}

struct slow_alloc {
	struct pcpu_cache *c;
	void *obj;
	int err;
};

static void *slow_alloc_fn(void *p)
{
	struct slow_alloc *a = p;

	a->obj = pcpu_cache_alloc(a->c, 0);
	a->err = errno;
	return NULL;
}

START_TEST(test_deactivate_new_slab_race)
{
	size_t ops = per_slab(64, 0);
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	struct slow_alloc a = { NULL, NULL, 0 };
	pthread_t t;
	void **v = calloc(ops, sizeof(*v));

	ck_assert_ptr_nonnull(v);
	gate_ctor_armed = gate_ctor_in = gate_ctor_go = 0;
	c = pcpu_cache_create("deact-race", 64, 0, gate_ctor, NULL, NULL, 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, ops, v), ops);
	ck_assert_uint_eq(stats(c).slabs, 1);		/* full */
	ck_assert_int_eq(pcpu_cache_deactivate(c), 0);
	a.c = c;
	__atomic_store_n(&gate_ctor_armed, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&t, NULL, slow_alloc_fn, &a), 0);
	tu_wait_uint(&gate_ctor_in, 1);	/* a new slab is being made */
	pcpu_cache_free(c, v[0]);	/* the full slab has room again */
	__atomic_store_n(&gate_ctor_go, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ck_assert_msg(a.obj != NULL, "alloc: errno %d", a.err);
	v[0] = a.obj;
	pcpu_cache_free_bulk(c, ops, v);
	st = stats(c);
	ck_assert_uint_eq(st.in_use, 0);
	ck_assert_msg(st.slabs == 0, "deactivated cache, nothing in use: %zu "
		      "slab(s) (%zu objects) kept", st.slabs, st.cached);
	free(v);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
}
END_TEST

/* --- RCU ------------------------------------------------------------------ */

struct rcu_shared {
	struct tobj *gp;		/* published object */
	struct tu_gate gate;
	uint64_t gen;			/* writer's counter */
};

struct rcu_reader {
	struct tu_worker_rec rec;
	struct rcu_shared *sh;
	uint64_t reads;
} __attribute__((aligned(TU_CACHELINE)));

static void *rcu_reader_fn(void *p)
{
	struct rcu_reader *rd = p;
	struct rcu_shared *sh = rd->sh;
	unsigned spins, k;

	tu_gate_wait(&sh->gate);
	while (!tu_gate_stopped(&sh->gate) && !rd->rec.failed) {
		struct tobj *o;
		uint64_t g0, g;

		urcu_bp_read_lock();
		o = __atomic_load_n(&sh->gp, __ATOMIC_CONSUME);
		if (o) {
			g0 = __atomic_load_n(&o->gen, __ATOMIC_RELAXED);
			spins = 20 + (unsigned)(rd->reads % 200);
			for (k = 0; k < spins; k++) {
				if (k % 50 == 49)
					sched_yield();
				g = __atomic_load_n(&o->gen, __ATOMIC_RELAXED);
				if (g != g0 || o->magic != MAGIC) {
					tu_rec_fail(&rd->rec, "object %p "
						    "reused under a reader: "
						    "gen %llu -> %llu", (void *)o,
						    (unsigned long long)g0,
						    (unsigned long long)g);
					break;
				}
			}
			if (g0 == 0)
				tu_rec_fail(&rd->rec, "published object with "
					    "gen 0");
		}
		urcu_bp_read_unlock();
		rd->reads++;
	}
	return NULL;
}

START_TEST(test_free_rcu_readers)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct rcu_shared sh;
	struct rcu_reader rd[2];
	pthread_t tids[2];
	struct tu_budget b;
	struct pcpu_cache_stats st;
	uint64_t swaps = 0;
	struct tobj *o, *old;
	unsigned i;

	ctx_init(&x);
	c = mk("rcu", &x, 0);
	memset(&sh, 0, sizeof(sh));
	tu_gate_init(&sh.gate);
	memset(rd, 0, sizeof(rd));
	for (i = 0; i < 2; i++) {
		rd[i].rec.id = i;
		rd[i].sh = &sh;
	}
	ck_assert_int_eq(tu_spawn(tids, 2, rcu_reader_fn, rd, sizeof(rd[0])),
			 0);
	tu_gate_open(&sh.gate);
	tu_budget_start(&b, tu_stress_seconds());
	while (tu_budget_left(&b)) {
		o = pcpu_cache_alloc(c, 0);
		if (!o)
			break;
		/* Allocating code changes the generation on every reuse. */
		__atomic_store_n(&o->gen, ++sh.gen, __ATOMIC_RELAXED);
		old = __atomic_exchange_n(&sh.gp, o, __ATOMIC_RELEASE);
		if (old) {
			/* Restore the constructed state, then retire. */
			pcpu_cache_free_rcu(c, old);
		}
		swaps++;
	}
	tu_gate_stop(&sh.gate);
	tu_join(tids, 2);
	ck_assert_ptr_nonnull(sh.gp);
	pcpu_cache_free_rcu(c, sh.gp);
	for (i = 0; i < 2; i++) {
		ck_assert_msg(!rd[i].rec.failed, "reader %u: %s", i,
			      rd[i].rec.err);
		ck_assert_uint_gt(rd[i].reads, 0);
	}
	ck_assert_uint_gt(swaps, 1000);
	/* Objects were reused, so RCU frees completed during the run. */
	urcu_bp_barrier();
	st = stats(c);
	ck_assert_msg(st.rcu_pending < swaps / 2, "rcu_pending %llu after "
		      "%llu free_rcu and an rcu_barrier",
		      (unsigned long long)st.rcu_pending,
		      (unsigned long long)swaps);
	ck_assert_msg(st.slabs * st.objs_per_slab < swaps, "%zu objects "
		      "constructed for %llu allocations: nothing reused",
		      st.slabs * st.objs_per_slab, (unsigned long long)swaps);
	destroy_all(c, &x);
	ck_assert_uint_eq(ld64(&x.dtor_calls), ld64(&x.ctor_ok));
}
END_TEST

struct hold_reader {
	int locked, release, done;
};

static void *hold_reader_fn(void *p)
{
	struct hold_reader *h = p;

	urcu_bp_read_lock();
	__atomic_store_n(&h->locked, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&h->release, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(200000);		/* destroy must still be waiting */
	__atomic_store_n(&h->done, 1, __ATOMIC_RELEASE);
	urcu_bp_read_unlock();
	return NULL;
}

START_TEST(test_destroy_waits_rcu)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	struct hold_reader h = { 0, 0, 0 };
	pthread_t t;
	void *v[10];
	unsigned i;

	ctx_init(&x);
	c = mk("rcudestroy", &x, 0);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 10, v), 10);
	ck_assert_int_eq(pthread_create(&t, NULL, hold_reader_fn, &h), 0);
	tu_wait_uint((unsigned *)&h.locked, 1);
	for (i = 0; i < 10; i++)
		pcpu_cache_free_rcu(c, v[i]);
	st = stats(c);
	ck_assert_uint_eq(st.rcu_pending, 10);
	ck_assert_uint_eq(st.dtor_calls, 0);
	x.reader_done = &h.done;
	__atomic_store_n(&h.release, 1, __ATOMIC_RELEASE);
	/* Not -EBUSY: destroy waits for the 10 pending frees first. */
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_int_eq(__atomic_load_n(&h.done, __ATOMIC_ACQUIRE), 1);
	pthread_join(t, NULL);
	ck_assert_uint_eq(x.dtor_before_reader, 0);
	ck_assert_uint_eq(ld64(&x.dtor_calls), ld64(&x.ctor_ok));
	ck_assert_int_eq(lds64(&x.live), 0);
}
END_TEST

/* --- destroy ------------------------------------------------------------ */

START_TEST(test_destroy_busy)
{
	struct tctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st, st2;
	void *v[3], *o;

	ctx_init(&x);
	c = mk("busy", &x, 0);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(c, 0, 3, v), 3);
	pcpu_cache_free(c, v[2]);	/* cached: must survive too */
	st = stats(c);
	ck_assert_int_eq(pcpu_cache_destroy(c), -EBUSY);
	st2 = stats(c);
	ck_assert_uint_eq(st2.slabs, st.slabs);
	ck_assert_uint_eq(st2.in_use, 2);
	ck_assert_uint_eq(st2.dtor_calls, 0);
	ck_assert_uint_eq(ld64(&x.dtor_calls), 0);
	ck_assert_uint_eq(((struct tobj *)v[0])->magic, MAGIC);
	/* Still usable. */
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(((struct tobj *)o)->magic, MAGIC);
	pcpu_cache_free(c, o);
	pcpu_cache_free(c, v[0]);
	ck_assert_int_eq(pcpu_cache_destroy(c), -EBUSY);
	pcpu_cache_free(c, v[1]);
	destroy_all(c, &x);
}
END_TEST

/* --- debug reports ------------------------------------------------------- */

enum { DBG_DOUBLE, DBG_FOREIGN_MALLOC, DBG_FOREIGN_CACHE, DBG_INTERIOR,
       DBG_LEAK, DBG_DOUBLE_RCU, DBG_DOUBLE_BULK, DBG_NONE, DBG_N };

static const char *const dbg_want[DBG_N] = {
	"double free", "foreign", "foreign", "foreign", "in use",
	"free", /* "double free" or "free of an RCU-pending object" */
	"double free", NULL,
};

static void dbg_child(int kind)
{
	struct pcpu_cache *c = pcpu_cache_create("dbg-cache-x7", 64, 0, NULL,
						 NULL, NULL,
						 PCPU_CACHE_DEBUG);
	struct pcpu_cache *d = pcpu_cache_create("other", 64, 0, NULL, NULL,
						 NULL, 0);
	char *o, *p, *m;
	void *v[2];

	if (!c || !d)
		_exit(3);
	o = pcpu_cache_alloc(c, 0);
	p = pcpu_cache_alloc(d, 0);
	m = malloc(64);
	if (!o || !p || !m)
		_exit(4);
	switch (kind) {
	case DBG_DOUBLE:
		pcpu_cache_free(c, o);
		pcpu_cache_free(c, o);
		break;
	case DBG_FOREIGN_MALLOC:
		pcpu_cache_free(c, m);
		break;
	case DBG_FOREIGN_CACHE:
		pcpu_cache_free(c, p);
		break;
	case DBG_INTERIOR:
		pcpu_cache_free(c, o + 8);
		break;
	case DBG_LEAK:
		(void)pcpu_cache_destroy(c);
		break;
	case DBG_DOUBLE_RCU:
		pcpu_cache_free_rcu(c, o);
		pcpu_cache_free_rcu(c, o);
		break;
	case DBG_DOUBLE_BULK:
		v[0] = o;
		v[1] = o;
		pcpu_cache_free_bulk(c, 2, v);
		break;
	case DBG_NONE:
		/* Correct use: no report. */
		/* (No free_rcu here: liburcu's call_rcu worker does not
		 * survive fork; the MT debug test covers it in-process.) */
		pcpu_cache_free(c, o);
		if (pcpu_cache_alloc_bulk(c, 0, 2, v) != 2)
			_exit(5);
		pcpu_cache_free_bulk(c, 2, v);
		pcpu_cache_free(d, p);
		if (pcpu_cache_destroy(c) || pcpu_cache_destroy(d))
			_exit(6);
		free(m);
		_exit(0);
	}
	_exit(7);	/* no abort: the report is missing */
}

START_TEST(test_debug_reports)
{
	int kind = _i, fds[2], status;
	char buf[4096];
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		dbg_child(kind);
		_exit(8);
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1 &&
	       (r = read(fds[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (!dbg_want[kind]) {
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "correct use of a DEBUG cache: status %#x, "
			      "stderr: %s", status, buf);
		ck_assert_msg(!strstr(buf, "dbg-cache-x7"), "spurious report: "
			      "%s", buf);
		return;
	}
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "case %d: child status %#x (want SIGABRT); stderr: %s",
		      kind, status, buf);
	ck_assert_msg(strstr(buf, "dbg-cache-x7") != NULL, "case %d: stderr "
		      "does not name the cache: %s", kind, buf);
	ck_assert_msg(strstr(buf, dbg_want[kind]) != NULL, "case %d: stderr "
		      "does not say \"%s\": %s", kind, dbg_want[kind], buf);
	ck_assert_msg(strstr(buf, "caller") != NULL, "case %d: no caller "
		      "address: %s", kind, buf);
}
END_TEST

/* --- suite ---------------------------------------------------------------- */

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc;

	tc = tu_tcase(s, "input", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_create_einval);
	tcase_add_test(tc, test_api_einval);
	tcase_add_loop_test(tc, test_align_no_overlap, 0, N_ALIGN);

	tc = tu_tcase(s, "ctor_dtor", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_ctor_per_object_not_per_alloc);
	tcase_add_test(tc, test_stats_consistency);
	tcase_add_test(tc, test_lockless_allocs);
	tcase_add_test(tc, test_constructed_state);
	tcase_add_test(tc, test_ctor_fail_small);
	tcase_add_test(tc, test_ctor_fail_large_percpu);
	tcase_add_test(tc, test_edeadlk);
	tcase_add_test(tc, test_ctor_uses_other_cache);
	tcase_add_test(tc, test_percpu_kept);

	tc = tu_tcase(s, "alloc", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_nowait_cold);
	tcase_add_test(tc, test_nowait_new_thread);
	tcase_add_test(tc, test_bulk);
	tcase_add_test(tc, test_bulk_nowait);

	tc = tu_tcase(s, "concurrency", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_mt_shrink);
	tcase_add_test(tc, test_mt_shrink_debug_rcu);
	tcase_add_test(tc, test_deactivate_under_load);
	tcase_add_test(tc, test_deactivate_exact);
	tcase_add_test(tc, test_dtor_reenters_cache);
	tcase_add_test(tc, test_deactivate_new_slab_race);

	tc = tu_tcase(s, "rcu_destroy", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_free_rcu_readers);
	tcase_add_test(tc, test_destroy_waits_rcu);
	tcase_add_test(tc, test_destroy_busy);

	tc = tu_tcase(s, "debug", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_debug_reports, 0, DBG_N);
	return s;
}

int main(void)
{
	return tu_main(cache_suite());
}
