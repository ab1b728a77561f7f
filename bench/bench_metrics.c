/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_metrics.c - what a metrics registry costs per request:
 * tests/examples/metrics.c's request (a user's series, a status series
 * every thread updates, a bytes series; lock-free lookups in a hash table
 * under a liburcu-bp read-side critical section) with the series kept in
 * DUAL pcpu_counters ("metrics/PCPU") and the same registry on C11
 * atomics, one atomic_fetch_add per update ("metrics/ATOMIC").
 *
 * Each thread serves its own users (NUSERS / threads of them).  Setup
 * makes every series; a DUAL counter has no owner until its first update,
 * so each user's counter is owned by the one thread that updates it, as
 * in the example.  The
 * status and bytes series are made by thread 0 in setup and updated by
 * every thread.  Teardown checks the exact totals against ctx->ops.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-bp.h>

#include <pcpu.h>

#include "bench.h"

#define NUSERS		4096
#define NSTATUS		5
#define NBUCKETS	8192		/* a power of two */
#define MAX_THREADS	4

enum { KIND_USER, KIND_STATUS, KIND_BYTES };

struct mseries {
	struct mseries *next;	/* release store, acquire load */
	uint64_t key;		/* kind << 32 | index */
	union {
		struct pcpu_counter pc;
		_Atomic int64_t at;
	} v;
};

struct mreg {
	int atomic;		/* the C11 variant */
	struct mseries *bucket[NBUCKETS];
	pthread_mutex_t lock;	/* insertions */
	int64_t bytes_added[MAX_THREADS];	/* each thread's own */
};

static uint64_t mkey(unsigned kind, unsigned i)
{
	return (uint64_t)kind << 32 | i;
}

static unsigned mhash(uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15u) >> 40) & (NBUCKETS - 1);
}

static struct mseries *mlookup(struct mreg *r, uint64_t key)
{
	struct mseries *s = __atomic_load_n(&r->bucket[mhash(key)],
					    __ATOMIC_ACQUIRE);

	for (; s; s = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE))
		if (s->key == key)
			return s;
	return NULL;
}

static int minsert(struct mreg *r, uint64_t key)
{
	struct mseries *s = calloc(1, sizeof(*s)), **head;

	if (!s)
		return -1;
	s->key = key;
	if (r->atomic)
		atomic_init(&s->v.at, 0);
	else if (pcpu_counter_init(&s->v.pc, 0, PCPU_COUNTER_DUAL) != 0) {
		free(s);
		return -1;
	}
	pthread_mutex_lock(&r->lock);
	head = &r->bucket[mhash(key)];
	s->next = *head;
	__atomic_store_n(head, s, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void mset_up(struct pcpu_bench_ctx *ctx, int atomic)
{
	struct mreg *r = calloc(1, sizeof(*r));

	if (!r) {
		pcpu_bench_fail(ctx, "out of memory");
		return;
	}
	if (ctx->threads > MAX_THREADS) {
		free(r);
		pcpu_bench_fail(ctx, "more threads than MAX_THREADS");
		return;
	}
	r->atomic = atomic;
	pthread_mutex_init(&r->lock, NULL);
	ctx->data = r;
	for (unsigned i = 0; i < NSTATUS; i++)
		if (minsert(r, mkey(KIND_STATUS, i)))
			pcpu_bench_fail(ctx, "series: out of memory");
	if (minsert(r, mkey(KIND_BYTES, 0)))
		pcpu_bench_fail(ctx, "series: out of memory");
	/* Made here, unowned: a DUAL counter belongs to the first thread
	 * that updates it, the one thread that serves that user. */
	for (unsigned u = 0; u < NUSERS; u++)
		if (minsert(r, mkey(KIND_USER, u))) {
			pcpu_bench_fail(ctx, "series: out of memory");
			return;
		}
}

static void setup_pcpu(struct pcpu_bench_ctx *ctx)
{
	mset_up(ctx, 0);
}

static void setup_atomic(struct pcpu_bench_ctx *ctx)
{
	mset_up(ctx, 1);
}

static inline void mcount(struct mreg *r, struct mseries *s, int64_t n)
{
	if (r->atomic)
		atomic_fetch_add_explicit(&s->v.at, n, memory_order_relaxed);
	else
		pcpu_counter_add(&s->v.pc, n);
}

static void run_metrics(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	static __thread unsigned long my_run;
	static __thread unsigned my_idx;
	static __thread uint64_t rng;
	struct mreg *r = ctx->data;
	unsigned nthreads = (unsigned)ctx->threads, per = NUSERS / nthreads;
	int64_t bytes = 0;

	if (my_run != ctx->run_id) {
		/* First batch of this thread in this run: which users. */
		my_run = ctx->run_id;
		my_idx = (unsigned)__atomic_fetch_add(&ctx->next_thread, 1,
						      __ATOMIC_RELAXED);
		rng = 0x2545f4914f6cdd1du * (my_idx + 1);
	}
	for (uint64_t i = 0; i < iters; i++) {
		struct mseries *s;
		uint64_t x = rng;
		int64_t b;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		rng = x;
		b = 200 + (int64_t)((x >> 40) % 60000);
		urcu_bp_read_lock();
		s = mlookup(r, mkey(KIND_USER,
				    (unsigned)(x % per) * nthreads + my_idx));
		mcount(r, s, 1);
		s = mlookup(r, mkey(KIND_STATUS, (unsigned)(x >> 20) % NSTATUS));
		mcount(r, s, 1);
		s = mlookup(r, mkey(KIND_BYTES, 0));
		mcount(r, s, b);
		urcu_bp_read_unlock();
		bytes += b;
	}
	r->bytes_added[my_idx] += bytes;
	__atomic_fetch_add(&ctx->ops, iters, __ATOMIC_RELAXED);
}

static void teardown_metrics(struct pcpu_bench_ctx *ctx)
{
	struct mreg *r = ctx->data;
	int64_t tot[3] = { 0, 0, 0 }, bytes = 0;

	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct mseries *s = r->bucket[b], *next; s; s = next) {
			next = s->next;
			if (r->atomic) {
				tot[s->key >> 32] += atomic_load(&s->v.at);
			} else {
				tot[s->key >> 32] += pcpu_counter_sum(&s->v.pc);
				pcpu_counter_destroy(&s->v.pc);
			}
			free(s);
		}
	for (int t = 0; t < MAX_THREADS; t++)
		bytes += r->bytes_added[t];
	if ((uint64_t)tot[KIND_USER] != ctx->ops ||
	    (uint64_t)tot[KIND_STATUS] != ctx->ops || tot[KIND_BYTES] != bytes)
		pcpu_bench_fail(ctx, "metrics: series totals != requests made");
	pthread_mutex_destroy(&r->lock);
	free(r);
	ctx->data = NULL;
}

static uint64_t metrics_batch(unsigned long arg)
{
	(void)arg;
	return 1000;
}

const struct pcpu_bench pcpu_metrics_benches[] = {
	{ .name = "metrics/PCPU", .setup = setup_pcpu, .run = run_metrics,
	  .teardown = teardown_metrics, .threads = { 1, 2, 0 },
	  .batch = metrics_batch },
	{ .name = "metrics/ATOMIC", .setup = setup_atomic, .run = run_metrics,
	  .teardown = teardown_metrics, .threads = { 1, 2, 0 },
	  .batch = metrics_batch },
	{ .name = NULL },
};
