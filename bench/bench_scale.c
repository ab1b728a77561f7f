/* SPDX-License-Identifier: MIT */
/*
 * bench_scale.c - unrelated objects never meet: every non-eager operation
 * run by 1 and by 2 threads (1, 2, 4, ... up to the CPU count with
 * bench/run --scaling, which sets PCPU_BENCH_SCALING=1), each thread
 * pinned to a CPU of its own (the single thread too, so that both runs
 * are alike) and working on an object of its own, next to
 * the machine's ceiling (each thread adding to a private word) measured
 * in the same run.  Two CPUs cannot show what 192 do; they show whether
 * two threads on two unrelated objects run as fast as two threads on
 * private words, which is what 192 CPUs need first.
 *
 * Also the rows of the counter issues that need more than one object or
 * thread: owner adds after share + reset, re-share of a reset counter,
 * byte counters (large deltas on a large batch) against a contended
 * atomic, the exec-like cached lifecycle whose counters were shared in an
 * earlier life, area adds, and how many writes per million adds of one
 * hot counter land on a line that more than one slot writes.
 */
#include "bench.h"

#include <errno.h>
#include <pcpu.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#define MAXT		64
#define BENCH_CLOBBER(p) __asm__ __volatile__ ("" : : "r" (p) : "memory")

/* One thread's own object, on lines of its own. */
struct own {
	struct pcpu_counter c;
	struct pcpu_counter c2;
	struct pcpu_cache *cache;
	void *area;
	int64_t word;
	int64_t sink;
	int live;
} __attribute__((aligned(128)));

struct scale_data {
	struct own own[MAXT];
	int next;			/* threads that have arrived */
	unsigned flags;			/* counter flags for this body */
	int64_t delta;			/* the add's delta */
	int64_t word __attribute__((aligned(64)));	/* atomic target */
};

static __thread unsigned long my_run;
static __thread struct own *my_own;

static void count(struct pcpu_bench_ctx *ctx, uint64_t n)
{
	__atomic_fetch_add(&ctx->ops, n, __ATOMIC_RELAXED);
}

/* A thread's first call of a run: a CPU and an object of its own. */
static struct own *arrive(struct pcpu_bench_ctx *ctx,
			  int (*make)(struct scale_data *, struct own *))
{
	struct scale_data *d = ctx->data;
	int k;

	if (my_run == ctx->run_id)
		return my_own;
	my_run = ctx->run_id;
	k = __atomic_fetch_add(&d->next, 1, __ATOMIC_RELAXED);
	if (k >= MAXT || pcpu_bench_pin(k)) {
		pcpu_bench_fail(ctx, "cannot pin a thread to a CPU of its own");
		return my_own = NULL;
	}
	my_own = &d->own[k];
	if (make && make(d, my_own)) {
		pcpu_bench_fail(ctx, "cannot make the thread's object");
		return my_own = NULL;
	}
	my_own->live = 1;
	return my_own;
}

static void scale_setup_slots(struct pcpu_bench_ctx *ctx, unsigned slots)
{
	if (ctx->threads > pcpu_bench_nr_cpus()) {
		pcpu_bench_fail(ctx, "skipped: needs a CPU per thread");
		return;
	}
	if (pcpu_bench_set_slots(ctx, slots))
		return;
	/*
	 * aligned_alloc, not calloc: struct own is 128-byte aligned so that
	 * two threads' objects share no line (nor an adjacent-line pair).
	 * With calloc's 16 bytes one thread's result word shared a line with
	 * the next thread's counter, and sums and reads of unrelated counters
	 * ran at 0.4x the ceiling or 2x it depending on where the block fell.
	 */
	ctx->data = aligned_alloc(128, sizeof(struct scale_data));
	if (!ctx->data)
		pcpu_bench_fail(ctx, "out of memory");
	else
		memset(ctx->data, 0, sizeof(struct scale_data));
}

static void scale_setup(struct pcpu_bench_ctx *ctx)
{
	scale_setup_slots(ctx, ctx->arg ? (unsigned)ctx->arg :
				 pcpu_bench_default_slots());
}

static void scale_teardown(struct pcpu_bench_ctx *ctx)
{
	struct scale_data *d = ctx->data;
	int k;

	for (k = 0; k < MAXT; k++) {
		struct own *o = &d->own[k];

		if (!o->live)
			continue;
		if (o->cache)
			pcpu_cache_destroy(o->cache);
		pcpu_counter_destroy(&o->c);
		pcpu_counter_destroy(&o->c2);
		pcpu_free(o->area);
	}
	pcpu_bench_unpin();
	free(d);
	ctx->data = NULL;
}

/* --- the ceiling ---------------------------------------------------------- */

/*
 * OWN_RUN(name, make, op, after): a run() whose thread gets its object o
 * from arrive(ctx, make), repeats the statement op @iters times, then runs
 * after.  A macro rather than a function pointer: the operations take a
 * nanosecond or two, and an indirect call each would be most of what is
 * measured.
 */
#define OWN_RUN(name, make, op, after)					\
static void name(struct pcpu_bench_ctx *ctx, uint64_t iters)		\
{									\
	struct own *o = arrive(ctx, make);				\
	uint64_t i;							\
									\
	if (!o)								\
		return;							\
	for (i = 0; i < iters; i++) {					\
		BENCH_CLOBBER(o);					\
		op;							\
	}								\
	after;								\
	count(ctx, iters);						\
}


OWN_RUN(ceiling_run, NULL, o->word += 1, (void)0)

/* --- DUAL and LAZY lives -------------------------------------------------- */

static void life_run(struct pcpu_bench_ctx *ctx, uint64_t iters,
		     unsigned flags, int adds)
{
	struct own *o = arrive(ctx, NULL);
	uint64_t i;
	int k;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(o);
		if (pcpu_counter_init(&o->c, 0, flags)) {
			pcpu_bench_fail(ctx, "pcpu_counter_init failed");
			return;
		}
		for (k = 0; k < adds; k++)
			pcpu_counter_add(&o->c, 1);
		pcpu_counter_destroy(&o->c);
	}
	count(ctx, iters);
}

static void dual_life_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	life_run(ctx, iters, PCPU_COUNTER_DUAL, 16);
}

static void lazy_life_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	life_run(ctx, iters, PCPU_COUNTER_LAZY, 1);
}

/* --- a thread's own shared counter ---------------------------------------- */

static int make_shared(struct scale_data *d, struct own *o)
{
	if (pcpu_counter_init(&o->c, 0, d->flags))
		return -1;
	if (pcpu_counter_share(&o->c))
		return -1;
	pcpu_counter_add(&o->c, 1);	/* this slot touched */
	o->sink = 1;
	return 0;
}

/* Not OWN_RUN: the delta stays in a register. */
static void shared_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct scale_data *d = ctx->data;
	struct own *o = arrive(ctx, make_shared);
	int64_t delta = d->delta;
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(o);
		pcpu_counter_add(&o->c, delta);
	}
	o->sink += (int64_t)iters * delta;
	count(ctx, iters);
}

static void shared_setup_delta(struct pcpu_bench_ctx *ctx, unsigned flags,
			       int64_t delta)
{
	scale_setup(ctx);
	if (ctx->data) {
		((struct scale_data *)ctx->data)->flags = flags;
		((struct scale_data *)ctx->data)->delta = delta;
	}
}

static void shared1_setup(struct pcpu_bench_ctx *ctx)
{
	shared_setup_delta(ctx, PCPU_COUNTER_DUAL, 1);
}

static void shared255_setup(struct pcpu_bench_ctx *ctx)
{
	shared_setup_delta(ctx, PCPU_COUNTER_DUAL, 255);
}

/* Each thread's counter must hold exactly what it added. */
static void shared_teardown(struct pcpu_bench_ctx *ctx)
{
	struct scale_data *d = ctx->data;
	int k;

	for (k = 0; k < MAXT; k++)
		if (d->own[k].live &&
		    pcpu_counter_sum(&d->own[k].c) != d->own[k].sink)
			pcpu_bench_fail(ctx, "a counter lost an update");
	scale_teardown(ctx);
}

OWN_RUN(sum_run, make_shared, o->word += pcpu_counter_sum(&o->c), (void)0)

OWN_RUN(read_run, make_shared, o->word += pcpu_counter_read(&o->c), (void)0)

/* reset + re-share + first touch of the thread's own shared counter. */
static void reshare_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct own *o = arrive(ctx, make_shared);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(o);
		pcpu_counter_reset(&o->c);
		if (pcpu_counter_share(&o->c)) {
			pcpu_bench_fail(ctx, "re-share failed");
			return;
		}
		pcpu_counter_add(&o->c, 1);
	}
	o->sink = 1;
	count(ctx, iters);
}

/* init + share + first touch + destroy: the first share, for reshare. */
static void firstshare_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct own *o = arrive(ctx, NULL);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(o);
		if (pcpu_counter_init(&o->c, 0, PCPU_COUNTER_DUAL) ||
		    pcpu_counter_share(&o->c)) {
			pcpu_bench_fail(ctx, "init/share failed");
			return;
		}
		pcpu_counter_add(&o->c, 1);
		pcpu_counter_destroy(&o->c);
	}
	count(ctx, iters);
}

/* The owner's add on a counter shared once and reset: a plain add again. */
static int make_reset(struct scale_data *d, struct own *o)
{
	if (make_shared(d, o))
		return -1;
	pcpu_counter_reset(&o->c);
	o->sink = 0;
	return 0;
}

OWN_RUN(owner_after_reset_run, make_reset, pcpu_counter_add(&o->c, 1),
	o->sink += (int64_t)iters;
	if (pcpu_counter_is_shared(&o->c))
		pcpu_bench_fail(ctx, "the reset counter is shared again"))

static int make_fresh(struct scale_data *d, struct own *o)
{
	(void)d;
	o->sink = 0;
	return pcpu_counter_init(&o->c, 0, PCPU_COUNTER_DUAL);
}

OWN_RUN(owner_fresh_run, make_fresh, pcpu_counter_add(&o->c, 1),
	o->sink += (int64_t)iters)

/* The contended atomic that byte counters are measured against. */
static void atomic1500_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct scale_data *d = ctx->data;
	struct own *o = arrive(ctx, NULL);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(d);
		__atomic_fetch_add(&d->word, 1500, __ATOMIC_RELAXED);
	}
	count(ctx, iters);
}

/* --- caches and areas ----------------------------------------------------- */

static int make_cache(struct scale_data *d, struct own *o)
{
	(void)d;
	o->cache = pcpu_cache_create("scale", 128, 64, NULL, NULL, NULL, 0);
	return o->cache ? 0 : -1;
}

static void cache_life_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct own *o = arrive(ctx, make_cache);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		void *p = pcpu_cache_alloc(o->cache, 0);

		BENCH_CLOBBER(p);
		if (!p) {
			pcpu_bench_fail(ctx, "pcpu_cache_alloc failed");
			return;
		}
		pcpu_cache_free(o->cache, p);
	}
	count(ctx, iters);
}

static void area_life_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct own *o = arrive(ctx, NULL);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		int64_t *a = pcpu_alloc_lazy(16, 8);

		if (!a) {
			pcpu_bench_fail(ctx, "pcpu_alloc_lazy failed");
			return;
		}
		pcpu_area_add(a, 1500);
		pcpu_area_add(a + 1, 1);
		pcpu_free(a);
	}
	count(ctx, iters);
}

static void lazy_alloc_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct own *o = arrive(ctx, NULL);
	uint64_t i;

	if (!o)
		return;
	for (i = 0; i < iters; i++) {
		void *a = pcpu_alloc_lazy(16, 8);

		BENCH_CLOBBER(a);
		if (!a) {
			pcpu_bench_fail(ctx, "pcpu_alloc_lazy failed");
			return;
		}
		pcpu_free(a);
	}
	count(ctx, iters);
}

static int make_area(struct scale_data *d, struct own *o)
{
	(void)d;
	o->area = pcpu_alloc_lazy(16, 8);
	if (!o->area)
		return -1;
	pcpu_area_add(o->area, 1);	/* this slot touched */
	o->sink = 1;
	return 0;
}

OWN_RUN(area_add_run, make_area, pcpu_area_add(o->area, 1),
	o->sink += (int64_t)iters)

/* bytes + packets, as a tc action's statistics. */
OWN_RUN(area_add2_run, make_area,
	pcpu_area_add(o->area, 1500); pcpu_area_add((int64_t *)o->area + 1, 1),
	(void)0)

static int make_two(struct scale_data *d, struct own *o)
{
	if (make_shared(d, o))
		return -1;
	if (pcpu_counter_init(&o->c2, 0, PCPU_COUNTER_DUAL) ||
	    pcpu_counter_share(&o->c2))
		return -1;
	pcpu_counter_add(&o->c2, 1);
	return 0;
}

OWN_RUN(counter_add2_run, make_two,
	pcpu_counter_add(&o->c, 1); pcpu_counter_add(&o->c2, 1), (void)0)

/* Area add and area sum must agree with what was added. */
static void area_teardown(struct pcpu_bench_ctx *ctx)
{
	struct scale_data *d = ctx->data;
	int k;

	for (k = 0; k < MAXT; k++)
		if (d->own[k].live && d->own[k].area &&
		    pcpu_area_sum(d->own[k].area) != d->own[k].sink &&
		    d->own[k].sink)
			pcpu_bench_fail(ctx, "an area lost an update");
	scale_teardown(ctx);
}

/* --- the exec-like lifecycle, counters shared in an earlier life ---------- */

/*
 * An mm-like object: two DUAL counters and a lazy area, kept constructed
 * by a cache.  Each life: allocate, 16 owner updates, then (one handoff
 * per LIFE_BATCH lives, so that the handoff does not dominate) another
 * thread updates each counter once, which shares it; free resets it, so
 * the next life starts in owner mode with the slots kept.  The eager
 * lifecycle makes and destroys the same object with EAGER counters and
 * pcpu_alloc().
 */
#define LIFE_BATCH	64

struct mm {
	struct pcpu_counter rss[2];
	int64_t *cid;
};

static int mm_ctor(void *obj, void *arg)
{
	struct mm *m = obj;
	int r;

	(void)arg;
	if ((r = pcpu_counter_init_many(m->rss, 0, PCPU_COUNTER_DUAL, 2)))
		return r;
	m->cid = pcpu_alloc_lazy(8, 8);
	if (!m->cid) {
		pcpu_counter_destroy_many(m->rss, 2);
		return -ENOMEM;
	}
	return 0;
}

static void mm_dtor(void *obj, void *arg)
{
	struct mm *m = obj;

	(void)arg;
	pcpu_counter_destroy_many(m->rss, 2);
	pcpu_free(m->cid);
}

struct life_data {
	struct pcpu_cache *cache;
	struct mm *batch[LIFE_BATCH];
	pthread_t other;
	int go, done, quit;		/* handoff words */
	int eager;
	uint64_t owner_ns;
};

static void *other_main(void *arg)
{
	struct life_data *l = arg;
	int i, seen = 0;

	for (;;) {
		int g;

		/* Acquire: the batch the lifecycle thread handed over.  Yield
		 * while waiting: on a busy machine a spinning waiter would take
		 * the CPU the other thread needs. */
		while ((g = __atomic_load_n(&l->go, __ATOMIC_ACQUIRE)) == seen &&
		       !__atomic_load_n(&l->quit, __ATOMIC_RELAXED))
			sched_yield();
		if (__atomic_load_n(&l->quit, __ATOMIC_RELAXED))
			return NULL;
		seen = g;
		for (i = 0; i < LIFE_BATCH; i++) {
			pcpu_counter_add(&l->batch[i]->rss[0], 1);
			pcpu_counter_add(&l->batch[i]->rss[1], 1);
		}
		/* Release: our updates before the lifecycle thread frees. */
		__atomic_store_n(&l->done, g, __ATOMIC_RELEASE);
	}
}

static void life_setup_common(struct pcpu_bench_ctx *ctx, int eager)
{
	struct life_data *l;

	if (pcpu_bench_nr_cpus() < 2) {
		pcpu_bench_fail(ctx, "skipped: needs 2 CPUs");
		return;
	}
	if (pcpu_bench_set_slots(ctx, (unsigned)ctx->arg))
		return;
	l = calloc(1, sizeof(*l));
	if (!l) {
		pcpu_bench_fail(ctx, "out of memory");
		return;
	}
	l->eager = eager;
	if (!eager) {
		l->cache = pcpu_cache_create("mm", sizeof(struct mm), 64, mm_ctor,
					     mm_dtor, NULL, 0);
		if (!l->cache) {
			free(l);
			pcpu_bench_fail(ctx, "pcpu_cache_create failed");
			return;
		}
	}
	if (pthread_create(&l->other, NULL, other_main, l)) {
		if (l->cache)
			pcpu_cache_destroy(l->cache);
		free(l);
		pcpu_bench_fail(ctx, "pthread_create failed");
		return;
	}
	ctx->data = l;
}

static void cached_life_setup(struct pcpu_bench_ctx *ctx)
{
	life_setup_common(ctx, 0);
}

static void eager_life_setup(struct pcpu_bench_ctx *ctx)
{
	life_setup_common(ctx, 1);
}

static struct mm *mm_new(struct life_data *l)
{
	struct mm *m;

	if (!l->eager)
		return pcpu_cache_alloc(l->cache, 0);
	m = aligned_alloc(64, 128);
	if (!m)
		return NULL;
	if (pcpu_counter_init_many(m->rss, 0, PCPU_COUNTER_EAGER, 2)) {
		free(m);
		return NULL;
	}
	m->cid = pcpu_alloc(8, 8);
	if (!m->cid) {
		pcpu_counter_destroy_many(m->rss, 2);
		free(m);
		return NULL;
	}
	return m;
}

static void mm_delete(struct life_data *l, struct mm *m)
{
	if (!l->eager) {
		/* Back in its constructed state: values 0, owner mode. */
		pcpu_counter_reset(&m->rss[0]);
		pcpu_counter_reset(&m->rss[1]);
		pcpu_area_zero(m->cid);
		pcpu_cache_free(l->cache, m);
		return;
	}
	pcpu_counter_destroy_many(m->rss, 2);
	pcpu_free(m->cid);
	free(m);
}

static void life_batch_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct life_data *l = ctx->data;
	uint64_t i;
	int j, k, g;

	for (i = 0; i < iters; i += LIFE_BATCH) {
		for (j = 0; j < LIFE_BATCH; j++) {
			struct mm *m = mm_new(l);

			if (!m) {
				pcpu_bench_fail(ctx, "cannot make an mm");
				return;
			}
			for (k = 0; k < 16; k++)
				pcpu_counter_add(&m->rss[k & 1], 1);
			pcpu_area_add(m->cid, 1);
			l->batch[j] = m;
		}
		/* Release: the objects before the other thread's acquire. */
		g = __atomic_load_n(&l->go, __ATOMIC_RELAXED) + 1;
		__atomic_store_n(&l->go, g, __ATOMIC_RELEASE);
		while (__atomic_load_n(&l->done, __ATOMIC_ACQUIRE) != g)
			sched_yield();
		for (j = 0; j < LIFE_BATCH; j++) {
			if (pcpu_counter_sum(&l->batch[j]->rss[0]) != 9)
				pcpu_bench_fail(ctx, "an mm counter is wrong");
			mm_delete(l, l->batch[j]);
		}
	}
	count(ctx, iters);
}

static void life_teardown(struct pcpu_bench_ctx *ctx)
{
	struct life_data *l = ctx->data;

	__atomic_store_n(&l->quit, 1, __ATOMIC_RELAXED);
	pthread_join(l->other, NULL);
	if (l->cache && pcpu_cache_destroy(l->cache))
		pcpu_bench_fail(ctx, "pcpu_cache_destroy failed");
	free(l);
	ctx->data = NULL;
}

static uint64_t life_batch(unsigned long arg)
{
	(void)arg;
	return LIFE_BATCH;
}

/* --- one hot counter: writes to lines several slots write ----------------- */

/*
 * Two threads add 1 to one LAZY counter; teardown counts what went to
 * lines that more than one slot writes: publications and touch-map words
 * (at most two per slot, once).  When every delta is 1 a slot's first
 * publication adds the batch to the published total and each later one
 * exactly 2 * (batch - 1) (it publishes at P + batch and leads by
 * batch - 2; test_counter's publish_rate counts them one by one), so
 * their number is read() / (2 * (batch - 1)), to within one per slot.
 * Reported per million adds as the counter shared_line_writes_per_M.
 */
struct hot_data {
	struct pcpu_counter c;
	int next;
	int64_t delta;
};

static void one_setup(struct pcpu_bench_ctx *ctx, unsigned flags,
		      int64_t delta)
{
	struct hot_data *h;

	if (ctx->threads > pcpu_bench_nr_cpus()) {
		pcpu_bench_fail(ctx, "skipped: needs a CPU per thread");
		return;
	}
	if (pcpu_bench_set_slots(ctx, pcpu_bench_default_slots()))
		return;
	h = aligned_alloc(64, 128);
	if (!h || pcpu_counter_init(&h->c, 0, flags)) {
		free(h);
		pcpu_bench_fail(ctx, "hot counter init failed");
		return;
	}
	h->next = 0;
	h->delta = delta;
	ctx->data = h;
}

static void hot_setup(struct pcpu_bench_ctx *ctx)
{
	one_setup(ctx, PCPU_COUNTER_LAZY, 1);
}

/* Byte counters: one LAZY counter with a batch of 2^16, every thread. */
static void bytes1_setup(struct pcpu_bench_ctx *ctx)
{
	one_setup(ctx, PCPU_COUNTER_LAZY | PCPU_COUNTER_BATCH_LOG2(16), 1);
}

static void bytes1500_setup(struct pcpu_bench_ctx *ctx)
{
	one_setup(ctx, PCPU_COUNTER_LAZY | PCPU_COUNTER_BATCH_LOG2(16), 1500);
}

static void hot_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct hot_data *h = ctx->data;
	uint64_t i;

	if (my_run != ctx->run_id) {
		int k = __atomic_fetch_add(&h->next, 1, __ATOMIC_RELAXED);

		my_run = ctx->run_id;
		if (pcpu_bench_pin(k))
			pcpu_bench_fail(ctx, "cannot pin");
	}
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(h);
		pcpu_counter_add(&h->c, h->delta);
	}
	count(ctx, iters);
}

static void one_teardown(struct pcpu_bench_ctx *ctx)
{
	struct hot_data *h = ctx->data;

	if ((uint64_t)pcpu_counter_sum(&h->c) != ctx->ops * (uint64_t)h->delta)
		pcpu_bench_fail(ctx, "the counter lost an update");
	pcpu_counter_destroy(&h->c);
	free(h);
	pcpu_bench_unpin();
	ctx->data = NULL;
}

static void hot_teardown(struct pcpu_bench_ctx *ctx)
{
	struct hot_data *h = ctx->data;
	double adds = (double)ctx->ops;
	double pubs = (double)pcpu_counter_read(&h->c) /
		      (2.0 * (PCPU_COUNTER_BATCH - 1));
	double maps = 2.0 * ctx->threads;

	if ((uint64_t)pcpu_counter_sum(&h->c) != ctx->ops)
		pcpu_bench_fail(ctx, "the hot counter lost an update");
	if (adds > 0) {
		ctx->counters[0].name = "shared_line_writes_per_M";
		ctx->counters[0].value = (pubs + maps) * 1e6 / adds;
		ctx->counters[1].name = "publications_per_M";
		ctx->counters[1].value = pubs * 1e6 / adds;
	}
	pcpu_counter_destroy(&h->c);
	free(h);
	pcpu_bench_unpin();
	ctx->data = NULL;
}

/* --- tc-like churn: actions with three per-CPU stats areas ---------------- */

/*
 * Two threads share a table of 64 action slots.  An iteration takes the
 * action out of a random slot (an exchange: the taker owns it) and, if
 * there was one, updates it (this thread may not be the one that made
 * it), checks it and removes it; else it makes an action, updates it and
 * puts it in.  Cached: actions come from a pcpu_cache whose constructor
 * allocates three lazy areas, and removal zeroes them (O(touched)).
 * Eager: each action allocates three areas with pcpu_alloc() and frees
 * them, as the kernel's tc actions do today.
 */
#define TC_TABLE	64

struct tc_action {
	int64_t *bstats;	/* bytes, packets */
	int64_t *drops;
	int64_t *qstats;
	int64_t sent;
};

struct tc_data {
	struct pcpu_cache *cache;	/* NULL: eager */
	struct tc_action *table[TC_TABLE];
	int next;
};

static int tc_ctor(void *obj, void *arg)
{
	struct tc_action *a = obj;

	(void)arg;
	a->bstats = pcpu_alloc_lazy(16, 8);
	a->drops = pcpu_alloc_lazy(8, 8);
	a->qstats = pcpu_alloc_lazy(8, 8);
	a->sent = 0;
	if (a->bstats && a->drops && a->qstats)
		return 0;
	pcpu_free(a->bstats);
	pcpu_free(a->drops);
	pcpu_free(a->qstats);
	return -ENOMEM;
}

static void tc_dtor(void *obj, void *arg)
{
	struct tc_action *a = obj;

	(void)arg;
	pcpu_free(a->bstats);
	pcpu_free(a->drops);
	pcpu_free(a->qstats);
}

static struct tc_action *tc_new(struct tc_data *t)
{
	struct tc_action *a;

	if (t->cache)
		return pcpu_cache_alloc(t->cache, 0);
	a = malloc(sizeof(*a));
	if (!a)
		return NULL;
	a->bstats = pcpu_alloc(16, 8);
	a->drops = pcpu_alloc(8, 8);
	a->qstats = pcpu_alloc(8, 8);
	a->sent = 0;
	if (a->bstats && a->drops && a->qstats)
		return a;
	tc_dtor(a, NULL);
	free(a);
	return NULL;
}

static int tc_delete(struct tc_data *t, struct tc_action *a)
{
	int ok = pcpu_area_sum(a->bstats + 1) == a->sent &&
		 pcpu_area_sum(a->bstats) == 1500 * a->sent;

	if (t->cache) {
		pcpu_area_zero(a->bstats);
		pcpu_area_zero(a->drops);
		pcpu_area_zero(a->qstats);
		a->sent = 0;
		pcpu_cache_free(t->cache, a);
	} else {
		tc_dtor(a, NULL);
		free(a);
	}
	return ok ? 0 : -1;
}

static void tc_traffic(struct tc_action *a)
{
	pcpu_area_add(a->bstats, 1500);
	pcpu_area_add(a->bstats + 1, 1);
	pcpu_area_add(a->qstats, 1);
	a->sent++;
}

static void tc_setup_common(struct pcpu_bench_ctx *ctx, int cached)
{
	struct tc_data *t;

	if (ctx->threads > pcpu_bench_nr_cpus()) {
		pcpu_bench_fail(ctx, "skipped: needs a CPU per thread");
		return;
	}
	if (pcpu_bench_set_slots(ctx, (unsigned)ctx->arg))
		return;
	t = calloc(1, sizeof(*t));
	if (!t) {
		pcpu_bench_fail(ctx, "out of memory");
		return;
	}
	if (cached) {
		t->cache = pcpu_cache_create("tc", sizeof(struct tc_action), 64,
					     tc_ctor, tc_dtor, NULL, 0);
		if (!t->cache) {
			free(t);
			pcpu_bench_fail(ctx, "pcpu_cache_create failed");
			return;
		}
	}
	ctx->data = t;
}

static void tc_cached_setup(struct pcpu_bench_ctx *ctx)
{
	tc_setup_common(ctx, 1);
}

static void tc_eager_setup(struct pcpu_bench_ctx *ctx)
{
	tc_setup_common(ctx, 0);
}

static void tc_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct tc_data *t = ctx->data;
	unsigned long seed;
	uint64_t i;

	if (my_run != ctx->run_id) {
		int k = __atomic_fetch_add(&t->next, 1, __ATOMIC_RELAXED);

		my_run = ctx->run_id;
		if (pcpu_bench_pin(k))
			pcpu_bench_fail(ctx, "cannot pin");
	}
	seed = (unsigned long)(uintptr_t)&seed;
	for (i = 0; i < iters; i++) {
		unsigned k;
		struct tc_action *a, *none = NULL;

		seed = seed * 6364136223846793005u + 1442695040888963407u;
		k = (unsigned)(seed >> 33) % TC_TABLE;
		/* Acquire: the maker's updates before our reads. */
		a = __atomic_exchange_n(&t->table[k], NULL, __ATOMIC_ACQ_REL);
		if (a) {
			tc_traffic(a);
			if (tc_delete(t, a))
				pcpu_bench_fail(ctx, "an action's stats are wrong");
			continue;
		}
		a = tc_new(t);
		if (!a) {
			pcpu_bench_fail(ctx, "cannot make an action");
			return;
		}
		tc_traffic(a);
		tc_traffic(a);
		/* Release: our updates before the taker's acquire. */
		if (!__atomic_compare_exchange_n(&t->table[k], &none, a, 0,
						 __ATOMIC_RELEASE,
						 __ATOMIC_RELAXED))
			tc_delete(t, a);
	}
	count(ctx, iters);
}

static void tc_teardown(struct pcpu_bench_ctx *ctx)
{
	struct tc_data *t = ctx->data;
	unsigned k;

	for (k = 0; k < TC_TABLE; k++)
		if (t->table[k])
			tc_delete(t, t->table[k]);
	if (t->cache && pcpu_cache_destroy(t->cache))
		pcpu_bench_fail(ctx, "pcpu_cache_destroy failed");
	free(t);
	pcpu_bench_unpin();
	ctx->data = NULL;
}

/* --- the table ------------------------------------------------------------ */

static uint64_t fast_batch(unsigned long arg)
{
	(void)arg;
	return 1u << 14;
}

static uint64_t mid_batch(unsigned long arg)
{
	(void)arg;
	return 256;
}

static const unsigned long lazy_slots[] = { 2, 1024 };
static const unsigned long lazy_alloc_slots[] = { 1, 4096 };
static const unsigned long life_slots[] = { 192 };
static const unsigned long tc_slots[] = { 64, 4096 };

#define S(nm, su, body, td, b) {					\
	.name = "scale/" nm, .setup = su, .run = body, .teardown = td,	\
	.threads = { 1, 2 }, .batch = b, .scale = 1,			\
}
#define S_ARGS(nm, su, body, td, b, a) {				\
	.name = "scale/" nm, .setup = su, .run = body, .teardown = td,	\
	.threads = { 1, 2 }, .batch = b, .scale = 1,			\
	.args = a, .nr_args = sizeof(a) / sizeof(a[0]),			\
}
#define ONE(nm, su, body, td, b, ...) {					\
	.name = nm, .setup = su, .run = body, .teardown = td,		\
	.threads = { __VA_ARGS__ }, .batch = b,				\
}

const struct pcpu_bench pcpu_scale_benches[] = {
	S("ceiling", scale_setup, ceiling_run, scale_teardown, fast_batch),
	S("dual_life", scale_setup, dual_life_run, scale_teardown, mid_batch),
	S_ARGS("lazy_life", scale_setup, lazy_life_run, scale_teardown,
	       mid_batch, lazy_slots),
	S("cache_life", scale_setup, cache_life_run, scale_teardown, mid_batch),
	S("shared_add1", shared1_setup, shared_add_run, shared_teardown,
	  fast_batch),
	S("shared_add255", shared255_setup, shared_add_run, shared_teardown,
	  fast_batch),
	S("sum", shared1_setup, sum_run, scale_teardown, mid_batch),
	S("read", shared1_setup, read_run, scale_teardown, fast_batch),
	S("reset_reshare_touch", shared1_setup, reshare_run, scale_teardown,
	  mid_batch),
	S("area_life", scale_setup, area_life_run, scale_teardown, mid_batch),
	S("area_add", scale_setup, area_add_run, area_teardown, fast_batch),
	ONE("dual/owner_add_fresh", scale_setup, owner_fresh_run,
	    shared_teardown, fast_batch, 1),
	ONE("dual/owner_add_after_reset", scale_setup, owner_after_reset_run,
	    shared_teardown, fast_batch, 1),
	ONE("dual/first_share", scale_setup, firstshare_run, scale_teardown,
	    mid_batch, 1),
	ONE("dual/reshare", shared1_setup, reshare_run, scale_teardown,
	    mid_batch, 1),
	ONE("bytes/shared_add1_b16", bytes1_setup, hot_run, one_teardown,
	    fast_batch, 1, 2),
	ONE("bytes/shared_add1500_b16", bytes1500_setup, hot_run, one_teardown,
	    fast_batch, 1, 2),
	ONE("bytes/atomic_add1500", scale_setup, atomic1500_run,
	    scale_teardown, fast_batch, 1, 2),
	ONE("area/two_field", scale_setup, area_add2_run, scale_teardown,
	    fast_batch, 1),
	ONE("area/two_counters", shared1_setup, counter_add2_run,
	    scale_teardown, fast_batch, 1),
	{ .name = "area/alloc_lazy_free", .setup = scale_setup,
	  .run = lazy_alloc_run, .teardown = scale_teardown,
	  .threads = { 1 }, .batch = mid_batch, .args = lazy_alloc_slots,
	  .nr_args = 2 },
	{ .name = "life/cached_shared_before", .setup = cached_life_setup,
	  .run = life_batch_run, .teardown = life_teardown,
	  .threads = { 1 }, .batch = life_batch, .args = life_slots,
	  .nr_args = 1 },
	{ .name = "life/eager", .setup = eager_life_setup,
	  .run = life_batch_run, .teardown = life_teardown,
	  .threads = { 1 }, .batch = life_batch, .args = life_slots,
	  .nr_args = 1 },
	{ .name = "tc/cached_lazy", .setup = tc_cached_setup, .run = tc_run,
	  .teardown = tc_teardown, .threads = { 2 }, .batch = mid_batch,
	  .args = tc_slots, .nr_args = 2 },
	{ .name = "tc/eager", .setup = tc_eager_setup, .run = tc_run,
	  .teardown = tc_teardown, .threads = { 2 }, .batch = mid_batch,
	  .args = tc_slots, .nr_args = 2 },
	ONE("hot/lazy_add1", hot_setup, hot_run, hot_teardown, fast_batch,
	    1, 2),
	{ .name = NULL },
};
