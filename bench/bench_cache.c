/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_cache.c - the object-cache benchmark bodies (see bench.h).
 *
 * Two object lifecycles, each measured two ways side by side in one run:
 * EAGER, the kernel's way today (malloc the object, allocate and zero its
 * per-CPU memory for every slot, free it all again), and CACHED, objects
 * from a pcpu_cache whose constructor allocated the per-CPU memory once
 * per slab, so that a lifecycle only puts the object back into its
 * constructed state (O(touched slots)).
 *
 * cache_mm/{EAGER,CACHED}/N - exec-like, an mm_struct: 2 counters (the
 *    rss counters) and 1 per-CPU area (the mm_cid array).  One lifecycle:
 *    create; write this CPU's cid slot; 16 owner updates, pcpu_counter_add()
 *    on the counters by the creating thread; destroy.
 *      EAGER:  malloc + pcpu_counter_init_many(2, EAGER) + pcpu_alloc(),
 *              then pcpu_counter_destroy_many() + pcpu_free() + free.
 *      CACHED: pcpu_cache_alloc() from a cache whose constructor did
 *              pcpu_counter_init_many(2, DUAL) + pcpu_alloc();
 *              pcpu_counter_reset() of both counters (the new owner),
 *              then at the end pcpu_counter_reset() again, the cid slot
 *              written is cleared, pcpu_cache_free().
 *    With 1 and 2 threads (pinned to distinct CPUs, each its own
 *    lifecycles).
 *
 * cache_tc/{EAGER,CACHED}/N - tc-action-like insert/remove churn: an
 *    object with three per-CPU areas (basic stats, hardware stats, queue
 *    stats).  Each thread keeps a ring of TC_RING live objects; one
 *    operation removes the oldest (destroy) and inserts a new one in its
 *    place (create, then one stats update on this CPU, as the first packet
 *    would).  EAGER: malloc + 3 x pcpu_alloc(), 3 x pcpu_free() + free.
 *    CACHED: pcpu_cache_alloc(), the touched stats slot cleared again,
 *    pcpu_cache_free().
 *
 * N is the slot count (pcpu_set_nr_slots(): a simulated N-CPU machine),
 * set in setup before the cache is created (it is refused while any
 * per-CPU area is live); teardown destroys the cache and restores the
 * default.  Setup does one untimed lifecycle (EAGER: the allocator maps
 * its chunk; CACHED: the first slab is made and constructed) or fills the
 * rings: the measurement is the steady state.  The constructor calls the
 * CACHED runs did are reported as the user counter ctor_per_alloc.
 *
 * Checks (an error otherwise): every CACHED object comes back with a clean
 * cid or stats slot, as pcpu_alloc() gives the EAGER ones; every
 * CHECK_EVERY-th lifecycle of each thread (rare enough to cost below 0.1%)
 * sums the counters before the destroy and compares with the 16 updates,
 * and a CACHED counter must not have been upgraded to per-CPU slots; in
 * teardown every live tc object's stats sum to its one update, the cache
 * has no object in use, counted exactly the allocations made, and called
 * its constructor far less often than that.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "bench.h"

#define BENCH_CLOBBER(p) __asm__ __volatile__ ("" : : "r" (p) : "memory")

#define MM_UPDATES	16	/* owner updates per lifecycle */
#define TC_RING		16	/* live tc objects per thread */
#define CHECK_EVERY	1024	/* lifecycles per sampled sum check */
#define MAX_THREADS	2

enum variant { EAGER, CACHED };

/* mm_struct's per-CPU mm_cid. */
struct mm_cid {
	uint64_t time;
	int cid;
	int recent_cid;
};

struct mm_obj {
	struct pcpu_counter rss[2];
	struct mm_cid *cid;		/* per-CPU area */
	unsigned cid_slot;		/* the slot this lifecycle wrote */
};

/* tc's per-CPU stats: gnet_stats_basic_sync and gnet_stats_queue. */
struct tc_bstats {
	uint64_t bytes, packets;
};

struct tc_qstats {
	uint32_t qlen, backlog, drops, requeues, overlimits;
};

struct tc_obj {
	struct tc_bstats *bstats;	/* per-CPU areas */
	struct tc_bstats *bstats_hw;
	struct tc_qstats *qstats;
	unsigned slot;			/* the slot the insert touched */
	uint32_t index;
};

/* One benchmark thread's state, on lines of its own. */
struct bench_thread {
	uint64_t n;			/* lifecycles so far */
	uint64_t checks;		/* sampled checks done */
	unsigned pos;			/* tc: the ring's oldest */
	void *ring[TC_RING];		/* tc: live objects */
} __attribute__((aligned(64)));

struct cache_data {
	struct pcpu_cache *cache;	/* CACHED only */
	uint64_t warm_allocs;		/* allocations outside run() */
	struct bench_thread th[MAX_THREADS];
};

/* This thread's index in the run (and pinning in 2-thread runs). */
static __thread unsigned long my_run;
static __thread int my_k;

static struct bench_thread *this_thread(struct pcpu_bench_ctx *ctx)
{
	struct cache_data *d = ctx->data;

	if (my_run != ctx->run_id) {
		my_run = ctx->run_id;
		my_k = __atomic_fetch_add(&ctx->next_thread, 1,
					  __ATOMIC_RELAXED);
		if (my_k >= MAX_THREADS) {
			pcpu_bench_fail(ctx, "more threads than MAX_THREADS");
			return NULL;
		}
		if (ctx->threads >= 2 && pcpu_bench_pin(my_k)) {
			pcpu_bench_fail(ctx, "pthread_setaffinity_np failed");
			return NULL;
		}
	}
	return &d->th[my_k];
}

/* --- mm-like ------------------------------------------------------------- */

static int mm_ctor(void *obj, void *arg)
{
	struct mm_obj *o = obj;
	int err;

	(void)arg;
	err = pcpu_counter_init_many(o->rss, 0, PCPU_COUNTER_DUAL, 2);
	if (err)
		return err;
	o->cid = pcpu_alloc(sizeof(struct mm_cid), 0);
	if (!o->cid) {
		pcpu_counter_destroy_many(o->rss, 2);
		return -ENOMEM;
	}
	return 0;
}

static void mm_dtor(void *obj, void *arg)
{
	struct mm_obj *o = obj;

	(void)arg;
	pcpu_free(o->cid);
	pcpu_counter_destroy_many(o->rss, 2);
}

static inline __attribute__((always_inline)) struct mm_obj *
mm_create(enum variant v, struct pcpu_cache *cache)
{
	struct mm_obj *o;

	if (v == CACHED) {
		o = pcpu_cache_alloc(cache, 0);
		if (!o)
			return NULL;
		/* A new owner: this thread. */
		pcpu_counter_reset(&o->rss[0]);
		pcpu_counter_reset(&o->rss[1]);
		return o;
	}
	o = malloc(sizeof(*o));
	if (!o)
		return NULL;
	if (pcpu_counter_init_many(o->rss, 0, PCPU_COUNTER_EAGER, 2))
		goto err_free;
	o->cid = pcpu_alloc(sizeof(struct mm_cid), 0);
	if (!o->cid)
		goto err_counters;
	return o;
err_counters:
	pcpu_counter_destroy_many(o->rss, 2);
err_free:
	free(o);
	return NULL;
}

static inline __attribute__((always_inline)) void
mm_destroy(enum variant v, struct pcpu_cache *cache, struct mm_obj *o)
{
	if (v == CACHED) {
		/* Back to the constructed state: O(touched). */
		pcpu_counter_reset(&o->rss[0]);
		pcpu_counter_reset(&o->rss[1]);
		memset(pcpu_ptr(o->cid, o->cid_slot), 0, sizeof(struct mm_cid));
		pcpu_cache_free(cache, o);
		return;
	}
	pcpu_counter_destroy_many(o->rss, 2);
	pcpu_free(o->cid);
	free(o);
}

/* The lifecycle's use of the object; 0, or -1 if the cid slot it writes
 * was not clean. */
static inline __attribute__((always_inline)) int
mm_use(struct mm_obj *o, uint64_t n)
{
	struct mm_cid *m;
	int i, dirty;

	o->cid_slot = pcpu_this_slot();
	m = pcpu_ptr(o->cid, o->cid_slot);
	dirty = m->cid != 0 || m->time != 0;
	m->cid = (int)o->cid_slot + 1;
	m->recent_cid = m->cid;
	m->time = n + 1;
	for (i = 0; i < MM_UPDATES; i++)
		pcpu_counter_add(&o->rss[i & 1], 1 + (i & 1));
	return dirty ? -1 : 0;
}

/* The sampled check: both counters hold exactly the updates, and a
 * CACHED counter stayed the owner's plain word. */
static int mm_check(enum variant v, struct mm_obj *o)
{
	if (pcpu_counter_sum(&o->rss[0]) != MM_UPDATES / 2 ||
	    pcpu_counter_sum(&o->rss[1]) != MM_UPDATES)
		return -1;
	if (v == CACHED && (pcpu_counter_is_shared(&o->rss[0]) ||
			    pcpu_counter_is_shared(&o->rss[1])))
		return -1;
	return 0;
}

static inline __attribute__((always_inline)) void
mm_run(struct pcpu_bench_ctx *ctx, uint64_t iters, enum variant v)
{
	struct cache_data *d = ctx->data;
	struct pcpu_cache *cache = d->cache;
	struct bench_thread *th = this_thread(ctx);
	struct mm_obj *o;
	uint64_t i;

	if (!th)
		return;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(cache);
		o = mm_create(v, cache);
		if (!o) {
			pcpu_bench_fail(ctx, "mm: create failed");
			return;
		}
		if (mm_use(o, th->n)) {
			pcpu_bench_fail(ctx, "mm: the cid slot of a new object "
					"was not clean");
			mm_destroy(v, cache, o);
			return;
		}
		if (pcpu__unlikely(++th->n % CHECK_EVERY == 0)) {
			th->checks++;
			if (mm_check(v, o)) {
				pcpu_bench_fail(ctx, "mm: counter sums != the "
						"updates, or a CACHED counter "
						"got upgraded");
				mm_destroy(v, cache, o);
				return;
			}
		}
		mm_destroy(v, cache, o);
	}
	__atomic_fetch_add(&ctx->ops, iters, __ATOMIC_RELAXED);
}

static void mm_eager_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	mm_run(ctx, iters, EAGER);
}

static void mm_cached_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	mm_run(ctx, iters, CACHED);
}

/* --- tc-like ------------------------------------------------------------- */

static int tc_areas(struct tc_obj *o)
{
	o->bstats = pcpu_alloc(sizeof(struct tc_bstats), 0);
	if (!o->bstats)
		return -ENOMEM;
	o->bstats_hw = pcpu_alloc(sizeof(struct tc_bstats), 0);
	if (!o->bstats_hw)
		goto err_b;
	o->qstats = pcpu_alloc(sizeof(struct tc_qstats), 0);
	if (!o->qstats)
		goto err_hw;
	return 0;
err_hw:
	pcpu_free(o->bstats_hw);
err_b:
	pcpu_free(o->bstats);
	return -ENOMEM;
}

static void tc_free_areas(struct tc_obj *o)
{
	pcpu_free(o->qstats);
	pcpu_free(o->bstats_hw);
	pcpu_free(o->bstats);
}

static int tc_ctor(void *obj, void *arg)
{
	(void)arg;
	return tc_areas(obj);
}

static void tc_dtor(void *obj, void *arg)
{
	(void)arg;
	tc_free_areas(obj);
}

/* Insert: create, and the first packet's stats update on this CPU.
 * NULL on failure; *dirty set if the stats slot was not clean. */
static inline __attribute__((always_inline)) struct tc_obj *
tc_insert(enum variant v, struct pcpu_cache *cache, uint32_t index,
	  int *dirty)
{
	struct tc_obj *o;
	struct tc_bstats *b;

	if (v == CACHED) {
		o = pcpu_cache_alloc(cache, 0);
		if (!o)
			return NULL;
	} else {
		o = malloc(sizeof(*o));
		if (!o)
			return NULL;
		if (tc_areas(o)) {
			free(o);
			return NULL;
		}
	}
	o->index = index;
	o->slot = pcpu_this_slot();
	b = pcpu_ptr(o->bstats, o->slot);
	*dirty |= b->packets != 0 || b->bytes != 0;
	b->bytes += 64;
	b->packets += 1;
	return o;
}

static inline __attribute__((always_inline)) void
tc_remove(enum variant v, struct pcpu_cache *cache, struct tc_obj *o)
{
	if (v == CACHED) {
		memset(pcpu_ptr(o->bstats, o->slot), 0,
		       sizeof(struct tc_bstats));
		pcpu_cache_free(cache, o);
		return;
	}
	tc_free_areas(o);
	free(o);
}

static inline __attribute__((always_inline)) void
tc_run(struct pcpu_bench_ctx *ctx, uint64_t iters, enum variant v)
{
	struct cache_data *d = ctx->data;
	struct pcpu_cache *cache = d->cache;
	struct bench_thread *th = this_thread(ctx);
	unsigned pos;
	int dirty = 0;
	uint64_t i;

	if (!th)
		return;
	pos = th->pos;
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(cache);
		tc_remove(v, cache, th->ring[pos]);
		th->ring[pos] = tc_insert(v, cache, (uint32_t)th->n++, &dirty);
		if (!th->ring[pos]) {
			pcpu_bench_fail(ctx, "tc: insert failed");
			break;
		}
		pos = (pos + 1) % TC_RING;
	}
	th->pos = pos;
	if (dirty)
		pcpu_bench_fail(ctx, "tc: the stats slot of a new object was "
				"not clean");
	__atomic_fetch_add(&ctx->ops, iters, __ATOMIC_RELAXED);
}

static void tc_eager_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	tc_run(ctx, iters, EAGER);
}

static void tc_cached_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	tc_run(ctx, iters, CACHED);
}

/* --- setup and teardown -------------------------------------------------- */

static int is_tc(const struct pcpu_bench_ctx *ctx)
{
	return ctx->bench->run == tc_eager_run ||
	       ctx->bench->run == tc_cached_run;
}

static int is_cached(const struct pcpu_bench_ctx *ctx)
{
	return ctx->bench->run == mm_cached_run ||
	       ctx->bench->run == tc_cached_run;
}

/* Free every live tc object (on thread 0, after the run). */
static void tc_drain(struct pcpu_bench_ctx *ctx, int check)
{
	struct cache_data *d = ctx->data;
	unsigned t, j, s, nr = pcpu_nr_slots();
	int cached = is_cached(ctx);

	for (t = 0; t < MAX_THREADS; t++) {
		for (j = 0; j < TC_RING; j++) {
			struct tc_obj *o = d->th[t].ring[j];
			uint64_t packets = 0;

			if (!o)
				continue;
			for (s = 0; check && s < nr; s++)
				packets += ((struct tc_bstats *)
					    pcpu_ptr(o->bstats, s))->packets;
			if (check && packets != 1)
				pcpu_bench_fail(ctx, "tc: an object's stats do "
						"not sum to its one update");
			if (cached)
				tc_remove(CACHED, d->cache, o);
			else
				tc_remove(EAGER, NULL, o);
			d->th[t].ring[j] = NULL;
		}
	}
}

static void cache_cleanup(struct pcpu_bench_ctx *ctx, int check)
{
	struct cache_data *d = ctx->data;
	struct pcpu_cache_stats st;

	if (is_tc(ctx))
		tc_drain(ctx, check);
	if (d->cache) {
		if (check && pcpu_cache_stats(d->cache, &st) == 0) {
			uint64_t expect = ctx->ops + d->warm_allocs;

			if (st.in_use != 0)
				pcpu_bench_fail(ctx, "cache: in_use != 0 after "
						"every object was freed");
			else if (st.allocs != expect)
				pcpu_bench_fail(ctx, "cache: allocs != the "
						"allocations made");
			/* Constructors run once per object built, on
			 * demand, never per use: at most every object of
			 * the few slabs there are.  The ratio to allocs
			 * then shrinks with the run's length; Google
			 * Benchmark's short first runs are spared its
			 * check. */
			else if (st.ctor_calls >
				 (uint64_t)st.slabs * st.objs_per_slab ||
				 st.slabs > (size_t)ctx->threads + 1)
				pcpu_bench_fail(ctx, "cache: more constructor "
						"calls than objects of a few "
						"slabs");
			else if (st.allocs >= 100 * st.ctor_calls &&
				 st.ctor_calls * 10 > st.allocs)
				pcpu_bench_fail(ctx, "cache: ctor_calls not "
						"much smaller than allocs");
			ctx->counters[0].name = "ctor_per_alloc";
			ctx->counters[0].value = st.allocs ?
				(double)st.ctor_calls / st.allocs : 0;
			ctx->counters[1].name = "lockless_frac";
			ctx->counters[1].value = st.allocs ?
				(double)st.lockless_allocs / st.allocs : 0;
		}
		if (pcpu_cache_destroy(d->cache))
			pcpu_bench_fail(ctx, "pcpu_cache_destroy failed");
	}
	if (check) {
		uint64_t checks = 0;
		unsigned t;

		for (t = 0; t < MAX_THREADS; t++)
			checks += d->th[t].checks;
		if (!is_tc(ctx) && checks != ctx->ops / CHECK_EVERY &&
		    ctx->threads == 1)
			pcpu_bench_fail(ctx, "mm: sampled checks missing");
	}
	free(d);
	ctx->data = NULL;
	if (ctx->threads >= 2)
		pcpu_bench_unpin();
	pcpu_bench_set_slots(ctx, pcpu_bench_default_slots());
}

static void cache_setup(struct pcpu_bench_ctx *ctx)
{
	struct cache_data *d;
	unsigned t, j;
	int tc = is_tc(ctx), cached = is_cached(ctx);

	if (ctx->threads > MAX_THREADS) {
		pcpu_bench_fail(ctx, "more threads than MAX_THREADS");
		return;
	}
	if (pcpu_bench_nr_cpus() < ctx->threads) {
		pcpu_bench_fail(ctx, "skipped: needs 2 CPUs");
		return;
	}
	if (pcpu_bench_set_slots(ctx, (unsigned)ctx->arg))
		return;
	if (posix_memalign((void **)&d, 64, sizeof(*d))) {
		pcpu_bench_fail(ctx, "out of memory");
		pcpu_bench_set_slots(ctx, pcpu_bench_default_slots());
		return;
	}
	memset(d, 0, sizeof(*d));
	ctx->data = d;
	if (cached) {
		d->cache = tc ?
			pcpu_cache_create("bench_tc", sizeof(struct tc_obj), 0,
					  tc_ctor, tc_dtor, NULL, 0) :
			/* 64-byte aligned, as the kernel's mm_struct cache
			 * (SLAB_HWCACHE_ALIGN): the owner writes its object,
			 * which must not share a line with another CPU's. */
			pcpu_cache_create("bench_mm", sizeof(struct mm_obj), 64,
					  mm_ctor, mm_dtor, NULL, 0);
		if (!d->cache) {
			pcpu_bench_fail(ctx, "pcpu_cache_create failed");
			goto err;
		}
	}
	if (tc) {
		/* Every thread's ring full: the steady state. */
		int dirty = 0;

		for (t = 0; t < (unsigned)ctx->threads; t++)
			for (j = 0; j < TC_RING; j++) {
				d->th[t].ring[j] = cached ?
					tc_insert(CACHED, d->cache, j, &dirty) :
					tc_insert(EAGER, NULL, j, &dirty);
				if (!d->th[t].ring[j]) {
					pcpu_bench_fail(ctx, "tc: insert failed");
					goto err;
				}
				d->warm_allocs++;
			}
	} else {
		/* One untimed lifecycle: EAGER maps its chunk, CACHED makes
		 * and constructs its first slab. */
		struct mm_obj *o = cached ? mm_create(CACHED, d->cache) :
					    mm_create(EAGER, NULL);

		if (!o) {
			pcpu_bench_fail(ctx, "mm: create failed");
			goto err;
		}
		mm_use(o, 0);
		if (cached)
			mm_destroy(CACHED, d->cache, o);
		else
			mm_destroy(EAGER, NULL, o);
		d->warm_allocs++;
	}
	return;
err:
	cache_cleanup(ctx, 0);
}

static void cache_teardown(struct pcpu_bench_ctx *ctx)
{
	cache_cleanup(ctx, 1);
}

/* --- constructor failures ------------------------------------------------ */

/*
 * cache_ctorfail/CACHED - a cache whose constructor fails one call in three
 * (deterministically: every third call).  Each operation is one
 * pcpu_cache_alloc() that must construct: objects are held, and every 256
 * of them are freed and the cache shrunk, so the next allocations find no
 * constructed object again.  Reported: alloc_success_ratio (the contract
 * says about 2/3: a failing constructor fails only the allocation that
 * needed it) and ctor_per_success (about 1.5).
 */
struct ctorfail_data {
	struct pcpu_cache *cache;
	uint64_t ctor_calls, tries, ok;
};

static int ctorfail_ctor(void *obj, void *arg)
{
	struct ctorfail_data *d = arg;

	(void)obj;
	/* Relaxed: a count, read by teardown after the runs. */
	if (__atomic_fetch_add(&d->ctor_calls, 1, __ATOMIC_RELAXED) % 3 == 2)
		return -ENOMEM;
	return 0;
}

static void ctorfail_setup(struct pcpu_bench_ctx *ctx)
{
	struct ctorfail_data *d = calloc(1, sizeof(*d));

	if (!d) {
		pcpu_bench_fail(ctx, "ctorfail: calloc");
		return;
	}
	d->cache = pcpu_cache_create("ctorfail", 64, 0, ctorfail_ctor, NULL, d,
				     0);
	if (!d->cache) {
		free(d);
		pcpu_bench_fail(ctx, "ctorfail: pcpu_cache_create");
		return;
	}
	ctx->data = d;
}

static void ctorfail_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct ctorfail_data *d = ctx->data;
	void *held[256];
	uint64_t i, ok = 0;
	size_t n = 0;

	for (i = 0; i < iters; i++) {
		void *o = pcpu_cache_alloc(d->cache, 0);

		if (o) {
			held[n++] = o;
			ok++;
		} else if (errno != ENOMEM) {
			pcpu_bench_fail(ctx, "ctorfail: unexpected errno");
			break;
		}
		if (n == 256) {
			pcpu_cache_free_bulk(d->cache, n, held);
			n = 0;
			(void)pcpu_cache_shrink(d->cache);
		}
	}
	pcpu_cache_free_bulk(d->cache, n, held);
	(void)pcpu_cache_shrink(d->cache);
	__atomic_fetch_add(&d->tries, i, __ATOMIC_RELAXED);
	__atomic_fetch_add(&d->ok, ok, __ATOMIC_RELAXED);
	__atomic_fetch_add(&ctx->ops, i, __ATOMIC_RELAXED);
}

static void ctorfail_teardown(struct pcpu_bench_ctx *ctx)
{
	struct ctorfail_data *d = ctx->data;
	struct pcpu_cache_stats st;

	if (!d)
		return;
	if (pcpu_cache_stats(d->cache, &st) || st.in_use != 0)
		pcpu_bench_fail(ctx, "ctorfail: objects in use at teardown");
	if (d->tries) {
		ctx->counters[0].name = "alloc_success_ratio";
		ctx->counters[0].value = (double)d->ok / (double)d->tries;
	}
	if (d->ok) {
		ctx->counters[1].name = "ctor_per_success";
		ctx->counters[1].value = (double)d->ctor_calls / (double)d->ok;
	}
	if (pcpu_cache_destroy(d->cache))
		pcpu_bench_fail(ctx, "ctorfail: pcpu_cache_destroy");
	free(d);
	ctx->data = NULL;
}

static uint64_t ctorfail_batch(unsigned long arg)
{
	(void)arg;
	return 768;
}

/* --- the table ----------------------------------------------------------- */

static const unsigned long cache_slot_counts[] = { 2, 64, 192, 1024, 4096 };
#define NR_CACHE_SLOT_COUNTS \
	(sizeof(cache_slot_counts) / sizeof(cache_slot_counts[0]))

/* One batch size for both variants at every slot count: the shim's
 * per-batch cost weighs the same in every cell, and EAGER at 4096 slots
 * stays at a few ms per batch. */
static uint64_t cache_batch(unsigned long slots)
{
	(void)slots;
	return 64;
}

#define CACHE_BENCH(nm, body, ...) {					\
	.name = nm, .setup = cache_setup, .run = body,			\
	.teardown = cache_teardown, .threads = { __VA_ARGS__ },		\
	.args = cache_slot_counts, .nr_args = NR_CACHE_SLOT_COUNTS,	\
	.batch = cache_batch,						\
}

const struct pcpu_bench pcpu_cache_benches[] = {
	CACHE_BENCH("cache_mm/EAGER", mm_eager_run, 1, 2),
	CACHE_BENCH("cache_mm/CACHED", mm_cached_run, 1, 2),
	CACHE_BENCH("cache_tc/EAGER", tc_eager_run, 1),
	CACHE_BENCH("cache_tc/CACHED", tc_cached_run, 1),
	{ .name = "cache_ctorfail/CACHED", .setup = ctorfail_setup,
	  .run = ctorfail_run, .teardown = ctorfail_teardown,
	  .threads = { 1 }, .batch = ctorfail_batch },
	{ .name = NULL },
};
