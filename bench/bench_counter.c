/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_counter.c - the counter benchmark bodies (see bench.h).
 *
 * Two questions, answered side by side in one run:
 *
 * 1. What does a counter cost to create?  init_destroy/{EAGER,DUAL}/N is
 *    one pcpu_counter_init() + pcpu_counter_destroy() with N slots
 *    (pcpu_set_nr_slots() simulates an N-CPU machine); an EAGER counter
 *    allocates and zeroes N slots, a DUAL one should cost the same at
 *    every N.  init_share_destroy/DUAL/N adds pcpu_counter_share(), the
 *    upgrade a DUAL counter pays when it is first handed to other threads.
 *
 * 2. What does an add cost?  Against a plain add to memory and a relaxed
 *    atomic add on one word: the owner's add to an unshared DUAL counter,
 *    a non-owner's add to a shared DUAL counter (per-CPU slots), and an
 *    add to an EAGER counter; then atomic and shared adds from two threads
 *    at once, where the single atomic word bounces between CPUs and the
 *    per-CPU slots should not.
 *
 * Every add body is the same loop, one BENCH_CLOBBER() and one add of 1
 * per iteration, so the bodies differ only in the add itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#include "bench.h"

/*
 * An empty asm that may read *p and any other memory: the compiler must
 * perform each iteration's add to memory before the next one and cannot
 * fold the loop into one add of @iters.  It emits no instruction.
 */
#define BENCH_CLOBBER(p) __asm__ __volatile__ ("" : : "r" (p) : "memory")

/* The slot count before any body changed it (PCPU_NR_SLOTS or the
 * machine's possible CPUs); restored after every init body. */
static unsigned default_slots;

static void fail(struct pcpu_bench_ctx *ctx, const char *msg)
{
	const char *none = NULL;

	/* Keep the first error; run() may fail on several threads. */
	__atomic_compare_exchange_n(&ctx->error, &none, msg, 0,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static void count_ops(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	__atomic_fetch_add(&ctx->ops, iters, __ATOMIC_RELAXED);
}

static int set_slots(struct pcpu_bench_ctx *ctx, unsigned n)
{
	int err;

	if (pcpu_nr_slots() == n)
		return 0;
	err = pcpu_set_nr_slots(n);
	if (err == -EBUSY)
		fail(ctx, "pcpu_set_nr_slots: -EBUSY (a per-CPU area is live)");
	else if (err)
		fail(ctx, "pcpu_set_nr_slots failed");
	else if (pcpu_nr_slots() != n)
		fail(ctx, "pcpu_set_nr_slots returned 0 but pcpu_nr_slots differs");
	return ctx->error ? -1 : 0;
}

/* Cache-line aligned, zeroed, so no body shares a line with the shim. */
static void *bench_zalloc(size_t size)
{
	void *p;

	size = (size + 63) & ~(size_t)63;
	p = aligned_alloc(64, size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* --- init + destroy ------------------------------------------------------ */

static const unsigned long slot_counts[] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
};
#define NR_SLOT_COUNTS (sizeof(slot_counts) / sizeof(slot_counts[0]))

/*
 * Same batch for every policy at a slot count, so the loops match: large
 * where an op is cheap, down to a few EAGER inits of 4096 slots (each
 * zeroes 4096 words 64 KiB apart) per call.
 */
static uint64_t init_batch(unsigned long slots)
{
	uint64_t b = 16384 / slots;

	return b > 1000 ? 1000 : b < 4 ? 4 : b;
}

static void init_run(struct pcpu_bench_ctx *ctx, uint64_t iters,
		     unsigned flags, int share)
{
	struct pcpu_counter *c = ctx->data;
	uint64_t i;

	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(c);
		if (pcpu_counter_init(c, 0, flags)) {
			fail(ctx, "pcpu_counter_init failed");
			return;
		}
		if (share && pcpu_counter_share(c)) {
			pcpu_counter_destroy(c);
			fail(ctx, "pcpu_counter_share failed");
			return;
		}
		pcpu_counter_destroy(c);
	}
	count_ops(ctx, iters);
}

static void eager_init_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	init_run(ctx, iters, PCPU_COUNTER_EAGER, 0);
}

static void dual_init_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	init_run(ctx, iters, PCPU_COUNTER_DUAL, 0);
}

static void dual_share_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	init_run(ctx, iters, PCPU_COUNTER_DUAL, 1);
}

static void init_setup(struct pcpu_bench_ctx *ctx)
{
	if (set_slots(ctx, (unsigned)ctx->arg))
		return;
	ctx->data = bench_zalloc(sizeof(struct pcpu_counter));
	if (!ctx->data) {
		fail(ctx, "out of memory");
		set_slots(ctx, default_slots);
		return;
	}
	/*
	 * One untimed op first: the first area after a slot-count change
	 * may map and fault in a new chunk.  The measurement is the steady
	 * state, an init while the allocator has room.
	 */
	ctx->bench->run(ctx, 1);
	ctx->ops = 0;
	if (ctx->error) {
		free(ctx->data);
		ctx->data = NULL;
		set_slots(ctx, default_slots);
	}
}

static void init_teardown(struct pcpu_bench_ctx *ctx)
{
	free(ctx->data);
	ctx->data = NULL;
	set_slots(ctx, default_slots);
}

/* --- adds ---------------------------------------------------------------- */

struct add_data {
	int64_t word;			/* plain_add, atomic_add */
	int64_t pad[7];			/* the counter on its own line */
	struct pcpu_counter c;
	/* shared_add: the thread that owns c, parked until teardown. */
	pthread_t owner;
	sem_t ready, release;
	int owner_err;
};

static void plain_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t *p = &d->word;
	uint64_t i;

	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(p);
		*p += 1;
	}
	count_ops(ctx, iters);
}

static void atomic_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t *p = &d->word;
	uint64_t i;

	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(p);
		__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
	}
	count_ops(ctx, iters);
}

/* owner_add, shared_add and eager_add: which path the add takes depends
 * only on the counter and the calling thread, set up below. */
static void counter_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	struct pcpu_counter *c = &d->c;
	uint64_t i;

	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(c);
		pcpu_counter_add(c, 1);
	}
	count_ops(ctx, iters);
}

static struct add_data *add_alloc(struct pcpu_bench_ctx *ctx)
{
	/* Adds run with the machine's slot count. */
	if (set_slots(ctx, default_slots))
		return NULL;
	ctx->data = bench_zalloc(sizeof(struct add_data));
	if (!ctx->data)
		fail(ctx, "out of memory");
	return ctx->data;
}

static void add_free(struct pcpu_bench_ctx *ctx)
{
	free(ctx->data);
	ctx->data = NULL;
}

static void word_setup(struct pcpu_bench_ctx *ctx)
{
	add_alloc(ctx);
}

static void word_teardown(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = ctx->data;

	if ((uint64_t)d->word != ctx->ops)
		fail(ctx, "word != number of adds");
	add_free(ctx);
}

/* The counter must hold exactly what was added, and read() must be
 * within its documented bound of sum(). */
static void check_counter(struct pcpu_bench_ctx *ctx, struct pcpu_counter *c)
{
	int64_t sum = pcpu_counter_sum(c), rd = pcpu_counter_read(c);
	int64_t bound = (int64_t)(PCPU_COUNTER_BATCH - 1) * pcpu_nr_slots();

	if ((uint64_t)sum != ctx->ops)
		fail(ctx, "pcpu_counter_sum != number of adds");
	else if (rd - sum > bound || sum - rd > bound)
		fail(ctx, "pcpu_counter_read farther from sum than documented");
}

/* owner_add: init on thread 0, which also runs the adds (threads = 1). */
static void owner_setup(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = add_alloc(ctx);

	if (!d)
		return;
	if (pcpu_counter_init(&d->c, 0, PCPU_COUNTER_DUAL)) {
		fail(ctx, "pcpu_counter_init(DUAL) failed");
		add_free(ctx);
	}
}

static void owner_teardown(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = ctx->data;

	check_counter(ctx, &d->c);
	/* An add by anyone but the owner would have upgraded it. */
	if (pcpu_counter_is_shared(&d->c))
		fail(ctx, "owner_add: the counter got upgraded to per-CPU");
	pcpu_counter_destroy(&d->c);
	add_free(ctx);
}

static void eager_setup(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = add_alloc(ctx);

	if (!d)
		return;
	if (pcpu_counter_init(&d->c, 0, PCPU_COUNTER_EAGER)) {
		fail(ctx, "pcpu_counter_init(EAGER) failed");
		add_free(ctx);
	}
}

static void eager_teardown(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = ctx->data;

	check_counter(ctx, &d->c);
	pcpu_counter_destroy(&d->c);
	add_free(ctx);
}

/*
 * shared_add: the counter is created and shared by a helper thread that
 * stays alive, parked, until teardown, so that every benchmark thread
 * (thread 0 included) is a non-owner.  Were the owner to exit, a later
 * thread could be given the same thread pointer and become the owner.
 */
static void *owner_main(void *arg)
{
	struct add_data *d = arg;

	d->owner_err = pcpu_counter_init(&d->c, 0, PCPU_COUNTER_DUAL);
	if (!d->owner_err) {
		d->owner_err = pcpu_counter_share(&d->c);
		if (d->owner_err)
			pcpu_counter_destroy(&d->c);
	}
	sem_post(&d->ready);
	if (d->owner_err)
		return NULL;
	while (sem_wait(&d->release) && errno == EINTR)
		;
	pcpu_counter_destroy(&d->c);
	return NULL;
}

static void shared_setup(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = add_alloc(ctx);

	if (!d)
		return;
	sem_init(&d->ready, 0, 0);
	sem_init(&d->release, 0, 0);
	if (pthread_create(&d->owner, NULL, owner_main, d)) {
		fail(ctx, "pthread_create failed");
		goto err_free;
	}
	while (sem_wait(&d->ready) && errno == EINTR)
		;
	if (d->owner_err) {
		fail(ctx, d->owner_err == -ENOMEM ? "init/share: -ENOMEM" :
		     "init/share of the DUAL counter failed");
		pthread_join(d->owner, NULL);
		goto err_free;
	}
	if (!pcpu_counter_is_shared(&d->c)) {
		fail(ctx, "pcpu_counter_share returned 0 but is_shared is false");
		sem_post(&d->release);
		pthread_join(d->owner, NULL);
		goto err_free;
	}
	return;
err_free:
	sem_destroy(&d->ready);
	sem_destroy(&d->release);
	add_free(ctx);
}

static void shared_teardown(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = ctx->data;

	check_counter(ctx, &d->c);
	sem_post(&d->release);
	pthread_join(d->owner, NULL);
	sem_destroy(&d->ready);
	sem_destroy(&d->release);
	add_free(ctx);
}

static uint64_t add_batch(unsigned long arg)
{
	(void)arg;
	return 1000;
}

/* --- the table ----------------------------------------------------------- */

#define INIT_BENCH(nm, body) {						\
	.name = nm, .setup = init_setup, .run = body,			\
	.teardown = init_teardown, .threads = { 1 },			\
	.args = slot_counts, .nr_args = NR_SLOT_COUNTS,			\
	.batch = init_batch,						\
}
#define ADD_BENCH(nm, su, body, td, ...) {				\
	.name = nm, .setup = su, .run = body, .teardown = td,		\
	.threads = { __VA_ARGS__ }, .batch = add_batch,		\
}

const struct pcpu_bench pcpu_benches[] = {
	INIT_BENCH("init_destroy/EAGER", eager_init_run),
	INIT_BENCH("init_destroy/DUAL", dual_init_run),
	INIT_BENCH("init_share_destroy/DUAL", dual_share_run),
	ADD_BENCH("plain_add", word_setup, plain_add_run, word_teardown, 1),
	ADD_BENCH("atomic_add", word_setup, atomic_add_run, word_teardown,
		  1, 2),
	ADD_BENCH("owner_add", owner_setup, counter_add_run, owner_teardown,
		  1),
	ADD_BENCH("shared_add", shared_setup, counter_add_run,
		  shared_teardown, 1, 2),
	ADD_BENCH("eager_add", eager_setup, counter_add_run, eager_teardown,
		  1),
	{ .name = NULL },
};

const char *pcpu_bench_label(void)
{
	return pcpu_update_method();
}

int pcpu_bench_global_init(void)
{
	default_slots = pcpu_nr_slots();
	if (default_slots == 0) {
		fprintf(stderr, "pcpu-bench: pcpu_nr_slots() returned 0\n");
		return -1;
	}
	return 0;
}

unsigned pcpu_bench_default_slots(void)
{
	return default_slots;
}
