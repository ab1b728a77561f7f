/* SPDX-License-Identifier: MIT */
/*
 * bench/bench_counter.c - the counter benchmark bodies (see bench.h).
 *
 * Four questions, answered side by side in one run:
 *
 * 1. What does a counter cost to create?  init_destroy/{EAGER,LAZY,DUAL}/N
 *    is one pcpu_counter_init() + pcpu_counter_destroy() with N slots
 *    (pcpu_set_nr_slots() simulates an N-CPU machine): an EAGER counter
 *    allocates and zeroes N slots, a LAZY one reserves them and writes
 *    none, a DUAL one allocates nothing.  init_share_destroy/DUAL/N adds
 *    pcpu_counter_share(), the upgrade (to on-demand slots) a DUAL counter
 *    pays when it is first handed to other threads.
 *
 * 2. What does an add cost?  Against a plain add to memory, a relaxed
 *    atomic add on one word and a bare rseq add (the least a restartable
 *    sequence on a per-CPU int64_t can cost): the owner's add to an
 *    unshared DUAL counter, a non-owner's add to a shared DUAL counter,
 *    and adds to EAGER and LAZY counters.  Then atomic and shared adds
 *    from two threads at once, pinned to two CPUs, where the single atomic
 *    word bounces between CPUs and the per-CPU slots should not.
 *
 * 3. What does an exact sum cost?  sum/{EAGER,LAZY,DUAL}/N sums a counter
 *    that CPU 0 and CPU 1 have touched, with N slots: EAGER visits all N
 *    slots, LAZY and upgraded DUAL only the two touched ones.
 *
 * 4. Memory is measured by bench/pcpu-mem.c, in processes of its own.
 *
 * Every add body is the same loop, one BENCH_CLOBBER() and one add of 1
 * per iteration, after the same once-per-batch prologue (pin_once()), so
 * the bodies differ only in the add itself.  The init and sum bodies share
 * one batch size at every slot count and policy.  Results are checked in
 * teardown, outside the timed loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include <pcpu.h>

#include "bench.h"

/* The bare rseq add needs x86-64 and glibc's __rseq_offset (2.35+); under
 * ThreadSanitizer (PCPU__TSAN, from pcpu/cpu.h) the library has no rseq
 * path either. */
#if defined(__x86_64__) && !PCPU__TSAN && defined(__has_include)
# if __has_include(<sys/rseq.h>)
#  include <sys/rseq.h>
#  define BENCH_HAVE_BARE_RSEQ 1
# endif
#endif


/*
 * An empty asm that may read *p and any other memory: the compiler must
 * perform each iteration's add to memory before the next one and cannot
 * fold the loop into one add of @iters.  It emits no instruction.
 */
#define BENCH_CLOBBER(p) __asm__ __volatile__ ("" : : "r" (p) : "memory")

/* The slot count before any body changed it (PCPU_NR_SLOTS or the
 * machine's possible CPUs); restored after every init and sum body. */
static unsigned default_slots;

/* The CPUs this process may run on, in order, and the mask to restore. */
static cpu_set_t start_cpus;
static int cpu_list[CPU_SETSIZE];
static int nr_cpus;

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

/* --- pinning ------------------------------------------------------------- */

static int pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The run whose first run() call pinned this thread, or 0. */
static __thread unsigned long pinned_run;

/*
 * The prologue of every add body's run(), once per batch: in a run with
 * two or more threads, a thread's first call pins it to a CPU of its own
 * (the k-th thread to arrive to the k-th CPU of the process's mask), so
 * that two-thread numbers are two CPUs' numbers whatever the scheduler
 * does.  One-thread runs are not pinned.
 */
static inline void pin_once(struct pcpu_bench_ctx *ctx)
{
	int k;

	if (ctx->threads < 2 || pinned_run == ctx->run_id)
		return;
	pinned_run = ctx->run_id;
	k = __atomic_fetch_add(&ctx->next_thread, 1, __ATOMIC_RELAXED);
	if (k >= nr_cpus || pin_self(cpu_list[k]))
		fail(ctx, "pthread_setaffinity_np failed");
}

/* In teardown, on thread 0: undo pin_once() (thread 0 is the main thread
 * of Google Benchmark, which runs the later benchmarks too). */
static void unpin(struct pcpu_bench_ctx *ctx)
{
	if (pinned_run != ctx->run_id)
		return;
	pinned_run = 0;
	pthread_setaffinity_np(pthread_self(), sizeof(start_cpus), &start_cpus);
}

static int need_cpus(struct pcpu_bench_ctx *ctx, int n)
{
	if (nr_cpus >= n)
		return 0;
	fail(ctx, n == 2 ? "skipped: needs 2 CPUs" : "skipped: needs more CPUs");
	return -1;
}

/* --- init + destroy ------------------------------------------------------ */

static const unsigned long slot_counts[] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
};
#define NR_SLOT_COUNTS (sizeof(slot_counts) / sizeof(slot_counts[0]))

/*
 * One batch size for every policy and slot count of the init and sum
 * bodies, so that the shim's per-batch cost (a few ns) weighs the same in
 * every cell: 256 ops, at most a few ms (EAGER at 4096 slots).
 */
static uint64_t slow_batch(unsigned long slots)
{
	(void)slots;
	return 256;
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

static void lazy_init_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	init_run(ctx, iters, PCPU_COUNTER_LAZY, 0);
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

/* rseq_add: one int64_t per CPU, each on a 128-byte pair of cache lines of
 * its own (the adjacent-line prefetcher fetches lines in pairs), so that
 * two threads on two CPUs share nothing: the per-CPU add at its cheapest. */
#define BARE_CPUS	CPU_SETSIZE
#define BARE_SHIFT	7

struct add_data {
	int64_t word;			/* plain_add, atomic_add */
	int64_t pad[7];			/* the counter on its own line */
	struct pcpu_counter c;
	/* shared_add: the thread that owns c, parked until teardown. */
	pthread_t owner;
	sem_t ready, release;
	int owner_err;
	int64_t *percpu;		/* rseq_add: BARE_CPUS lines */
	long rseq_off;			/* rseq_add: glibc's __rseq_offset */
};

static void plain_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t *p = &d->word;
	uint64_t i;

	pin_once(ctx);
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(p);
		*p += 1;
	}
	count_ops(ctx, iters);
}

/*
 * private_add: each thread adds to a word of its own (on its stack, its own
 * cache line), then adds its total to d->word once per batch.  Nothing is
 * shared, so its 2-thread / 1-thread throughput is what this machine allows
 * any two-thread loop: the ceiling the scaling targets are read against.
 */
static void private_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t word __attribute__((aligned(64))) = 0, *p = &word;
	uint64_t i;

	pin_once(ctx);
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(p);
		*p += 1;
	}
	__atomic_fetch_add(&d->word, word, __ATOMIC_RELAXED);
	count_ops(ctx, iters);
}

static void atomic_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t *p = &d->word;
	uint64_t i;

	pin_once(ctx);
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(p);
		__atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
	}
	count_ops(ctx, iters);
}

/* owner_add, shared_add, eager_add and lazy_add: which path the add takes
 * depends only on the counter and the calling thread, set up below. */
static void counter_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	struct pcpu_counter *c = &d->c;
	uint64_t i;

	pin_once(ctx);
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(c);
		pcpu_counter_add(c, 1);
	}
	count_ops(ctx, iters);
}

#ifdef BENCH_HAVE_BARE_RSEQ
/*
 * The bare rseq add: the least a per-CPU add through a restartable
 * sequence costs, with the rseq area glibc registered.  Point the area's
 * rseq_cs at the descriptor, then in the critical section [1, 2): load
 * cpu_id (negative: this thread is not registered, give up), index the
 * array, load, add, store (the commit).  Preemption, migration or a signal
 * before the commit makes the kernel resume at the abort handler 4, which
 * the signature precedes, and which starts over.  Nothing else: no owner
 * test, no first-touch or fold window, no slot-count lookup.
 */
static inline int bare_rseq_add(int64_t *percpu, int64_t delta, long off)
{
	__asm__ __volatile__ goto (
		".pushsection __rseq_cs, \"aw\"\n\t"
		".balign 32\n\t"
		"3:\n\t"
		".long 0x0, 0x0\n\t"			/* version, flags */
		".quad 1f, (2f - 1f), 4f\n\t"		/* start, length, abort */
		".popsection\n\t"
		"0:\n\t"
		"leaq 3b(%%rip), %%rax\n\t"
		"movq %%rax, %%fs:8(%[off])\n\t"	/* rseq_cs = &descriptor */
		"1:\n\t"
		"movl %%fs:4(%[off]), %%eax\n\t"	/* cpu_id */
		"testl %%eax, %%eax\n\t"
		"js %l[unregistered]\n\t"
		"shlq %[shift], %%rax\n\t"
		"addq %[percpu], %%rax\n\t"
		"movq (%%rax), %%rcx\n\t"
		"addq %[delta], %%rcx\n\t"
		"movq %%rcx, (%%rax)\n\t"		/* commit */
		"2:\n\t"
		".pushsection __rseq_failure, \"ax\"\n\t"
		".byte 0x0f, 0xb9, 0x3d\n\t"		/* ud1, never executed */
		".long 0x53053053\n\t"			/* RSEQ_SIG */
		"4:\n\t"
		"jmp 0b\n\t"
		".popsection\n\t"
		: /* no outputs */
		: [off] "r" (off), [percpu] "r" (percpu), [delta] "r" (delta),
		  [shift] "i" (BARE_SHIFT)
		: "memory", "cc", "rax", "rcx"
		: unregistered);
	return 1;
unregistered:
	return 0;
}

static void rseq_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct add_data *d = ctx->data;
	int64_t *percpu = d->percpu;
	long off = d->rseq_off;
	uint64_t i;

	pin_once(ctx);
	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(percpu);
		if (pcpu__unlikely(!bare_rseq_add(percpu, 1, off))) {
			fail(ctx, "rseq_add: cpu_id < 0 (thread not registered)");
			return;
		}
	}
	count_ops(ctx, iters);
}
#else
static void rseq_add_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	(void)iters;
	fail(ctx, "skipped: the bare rseq add is x86-64 only");
}
#endif

static struct add_data *add_alloc(struct pcpu_bench_ctx *ctx)
{
	/* Adds run with the machine's slot count. */
	if (set_slots(ctx, default_slots))
		return NULL;
	if (need_cpus(ctx, ctx->threads))
		return NULL;
	ctx->data = bench_zalloc(sizeof(struct add_data));
	if (!ctx->data)
		fail(ctx, "out of memory");
	return ctx->data;
}

static void add_free(struct pcpu_bench_ctx *ctx)
{
	unpin(ctx);
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

static void policy_setup(struct pcpu_bench_ctx *ctx, unsigned flags)
{
	struct add_data *d = add_alloc(ctx);

	if (!d)
		return;
	if (pcpu_counter_init(&d->c, 0, flags)) {
		fail(ctx, flags == PCPU_COUNTER_EAGER ?
		     "pcpu_counter_init(EAGER) failed" :
		     "pcpu_counter_init(LAZY) failed");
		add_free(ctx);
	}
}

static void eager_setup(struct pcpu_bench_ctx *ctx)
{
	policy_setup(ctx, PCPU_COUNTER_EAGER);
}

static void lazy_setup(struct pcpu_bench_ctx *ctx)
{
	policy_setup(ctx, PCPU_COUNTER_LAZY);
}

static void policy_teardown(struct pcpu_bench_ctx *ctx)
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

static void rseq_setup(struct pcpu_bench_ctx *ctx)
{
#ifdef BENCH_HAVE_BARE_RSEQ
	struct add_data *d;

	if (__rseq_size == 0) {
		fail(ctx, "skipped: glibc registered no rseq area "
		     "(__rseq_size is 0)");
		return;
	}
	if (get_nprocs_conf() > BARE_CPUS) {
		fail(ctx, "skipped: more CPUs than the bare rseq array has");
		return;
	}
	d = add_alloc(ctx);
	if (!d)
		return;
	d->rseq_off = (long)__rseq_offset;
	d->percpu = bench_zalloc((size_t)BARE_CPUS << BARE_SHIFT);
	if (!d->percpu) {
		fail(ctx, "out of memory");
		add_free(ctx);
	}
#else
	fail(ctx, "skipped: the bare rseq add is x86-64 only (no sys/rseq.h, "
	     "or ThreadSanitizer)");
#endif
}

static void rseq_teardown(struct pcpu_bench_ctx *ctx)
{
	struct add_data *d = ctx->data;
	uint64_t sum = 0;
	unsigned i;

	for (i = 0; i < BARE_CPUS; i++)
		sum += (uint64_t)d->percpu[(size_t)i << (BARE_SHIFT - 3)];
	if (sum != ctx->ops)
		fail(ctx, "rseq_add: per-CPU sum != number of adds");
	free(d->percpu);
	add_free(ctx);
}

static uint64_t add_batch(unsigned long arg)
{
	(void)arg;
	/* The shim's per-batch cost spread over 10000 adds of ~0.5 ns. */
	return 10000;
}

/* --- sums ---------------------------------------------------------------- */

/* Fewer than for init, to keep bench/run within a few minutes. */
static const unsigned long sum_slot_counts[] = {
	2, 4, 16, 64, 256, 1024, 4096,
};
#define NR_SUM_SLOT_COUNTS \
	(sizeof(sum_slot_counts) / sizeof(sum_slot_counts[0]))

struct sum_data {
	struct pcpu_counter c;
	int64_t expect;			/* the counter's exact value */
	int64_t acc;			/* sum of the sums, atomic */
	unsigned flags;
};

struct toucher {
	struct pcpu_counter *c;
	int cpu;
	int64_t delta;
	int err;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	/* Started with its affinity set: already on t->cpu. */
	if (sched_getcpu() != t->cpu) {
		t->err = 1;
		return NULL;
	}
	pcpu_counter_add(t->c, t->delta);
	return NULL;
}

/* Add @delta to @c from a new thread pinned to @cpu (a non-owner). */
static int touch_on(struct pcpu_counter *c, int cpu, int64_t delta)
{
	struct toucher t = { .c = c, .cpu = cpu, .delta = delta };
	pthread_attr_t attr;
	pthread_t th;
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_attr_init(&attr))
		return -1;
	err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	if (!err)
		err = pthread_create(&th, &attr, toucher_main, &t);
	pthread_attr_destroy(&attr);
	if (err)
		return -1;
	pthread_join(th, NULL);
	return t.err ? -1 : 0;
}

static void sum_setup_policy(struct pcpu_bench_ctx *ctx, unsigned flags)
{
	struct sum_data *d;

	if (need_cpus(ctx, 2) || set_slots(ctx, (unsigned)ctx->arg))
		return;
	d = bench_zalloc(sizeof(*d));
	if (!d) {
		fail(ctx, "out of memory");
		goto err_slots;
	}
	d->flags = flags;
	if (pcpu_counter_init(&d->c, 0, flags)) {
		fail(ctx, "pcpu_counter_init failed");
		goto err_free;
	}
	/* DUAL: the upgrade path; this thread stays the owner, idle. */
	if (flags == PCPU_COUNTER_DUAL && pcpu_counter_share(&d->c)) {
		fail(ctx, "pcpu_counter_share failed");
		goto err_destroy;
	}
	/* Two CPUs touch it: 1 in the first CPU's slot, 2 in the second's. */
	if (touch_on(&d->c, cpu_list[0], 1) || touch_on(&d->c, cpu_list[1], 2)) {
		fail(ctx, "could not touch the counter from two pinned threads");
		goto err_destroy;
	}
	d->expect = 3;
	/* The values must sit in slots (read() leaves slots out), or the
	 * sum would have nothing to visit. */
	if (pcpu_counter_sum(&d->c) != 3 || pcpu_counter_read(&d->c) != 0) {
		fail(ctx, "sum setup: the touches did not land in two slots");
		goto err_destroy;
	}
	ctx->data = d;
	return;
err_destroy:
	pcpu_counter_destroy(&d->c);
err_free:
	free(d);
err_slots:
	set_slots(ctx, default_slots);
}

static void sum_eager_setup(struct pcpu_bench_ctx *ctx)
{
	sum_setup_policy(ctx, PCPU_COUNTER_EAGER);
}

static void sum_lazy_setup(struct pcpu_bench_ctx *ctx)
{
	sum_setup_policy(ctx, PCPU_COUNTER_LAZY);
}

static void sum_dual_setup(struct pcpu_bench_ctx *ctx)
{
	sum_setup_policy(ctx, PCPU_COUNTER_DUAL);
}

static void sum_run(struct pcpu_bench_ctx *ctx, uint64_t iters)
{
	struct sum_data *d = ctx->data;
	struct pcpu_counter *c = &d->c;
	int64_t acc = 0;
	uint64_t i;

	for (i = 0; i < iters; i++) {
		BENCH_CLOBBER(c);
		acc += pcpu_counter_sum(c);
	}
	__atomic_fetch_add(&d->acc, acc, __ATOMIC_RELAXED);
	count_ops(ctx, iters);
}

static void sum_teardown(struct pcpu_bench_ctx *ctx)
{
	struct sum_data *d = ctx->data;

	if ((uint64_t)d->acc != (uint64_t)d->expect * ctx->ops)
		fail(ctx, "pcpu_counter_sum returned a wrong value");
	pcpu_counter_destroy(&d->c);
	free(d);
	ctx->data = NULL;
	set_slots(ctx, default_slots);
}

/* --- the table ----------------------------------------------------------- */

#define INIT_BENCH(nm, body) {						\
	.name = nm, .setup = init_setup, .run = body,			\
	.teardown = init_teardown, .threads = { 1 },			\
	.args = slot_counts, .nr_args = NR_SLOT_COUNTS,			\
	.batch = slow_batch,						\
}
#define SUM_BENCH(nm, su) {						\
	.name = nm, .setup = su, .run = sum_run,			\
	.teardown = sum_teardown, .threads = { 1 },			\
	.args = sum_slot_counts, .nr_args = NR_SUM_SLOT_COUNTS,		\
	.batch = slow_batch,						\
}
#define ADD_BENCH(nm, su, body, td, ...) {				\
	.name = nm, .setup = su, .run = body, .teardown = td,		\
	.threads = { __VA_ARGS__ }, .batch = add_batch,		\
}

const struct pcpu_bench pcpu_benches[] = {
	INIT_BENCH("init_destroy/EAGER", eager_init_run),
	INIT_BENCH("init_destroy/LAZY", lazy_init_run),
	INIT_BENCH("init_destroy/DUAL", dual_init_run),
	INIT_BENCH("init_share_destroy/DUAL", dual_share_run),
	ADD_BENCH("plain_add", word_setup, plain_add_run, word_teardown, 1),
	ADD_BENCH("private_add", word_setup, private_add_run, word_teardown,
		  1, 2),
	ADD_BENCH("atomic_add", word_setup, atomic_add_run, word_teardown,
		  1, 2),
	ADD_BENCH("rseq_add", rseq_setup, rseq_add_run, rseq_teardown, 1, 2),
	ADD_BENCH("owner_add", owner_setup, counter_add_run, owner_teardown,
		  1),
	ADD_BENCH("shared_add", shared_setup, counter_add_run,
		  shared_teardown, 1, 2),
	ADD_BENCH("eager_add", eager_setup, counter_add_run, policy_teardown,
		  1),
	ADD_BENCH("lazy_add", lazy_setup, counter_add_run, policy_teardown,
		  1),
	SUM_BENCH("sum/EAGER", sum_eager_setup),
	SUM_BENCH("sum/LAZY", sum_lazy_setup),
	SUM_BENCH("sum/DUAL", sum_dual_setup),
	{ .name = NULL },
};

const char *pcpu_bench_label(void)
{
	return pcpu_update_method();
}

int pcpu_bench_global_init(void)
{
	int cpu;

	default_slots = pcpu_nr_slots();
	if (default_slots == 0) {
		fprintf(stderr, "pcpu-bench: pcpu_nr_slots() returned 0\n");
		return -1;
	}
	if (sched_getaffinity(0, sizeof(start_cpus), &start_cpus)) {
		perror("pcpu-bench: sched_getaffinity");
		return -1;
	}
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &start_cpus))
			cpu_list[nr_cpus++] = cpu;
	return 0;
}

unsigned pcpu_bench_default_slots(void)
{
	return default_slots;
}

void pcpu_bench_fail(struct pcpu_bench_ctx *ctx, const char *msg)
{
	fail(ctx, msg);
}

int pcpu_bench_set_slots(struct pcpu_bench_ctx *ctx, unsigned n)
{
	return set_slots(ctx, n);
}

int pcpu_bench_nr_cpus(void)
{
	return nr_cpus;
}

int pcpu_bench_pin(int k)
{
	return k >= 0 && k < nr_cpus && !pin_self(cpu_list[k]) ? 0 : -1;
}

void pcpu_bench_unpin(void)
{
	pthread_setaffinity_np(pthread_self(), sizeof(start_cpus), &start_cpus);
}
