/* SPDX-License-Identifier: MIT */
/*
 * bench/bench.h - the table between the C benchmark bodies and the C++ shim.
 *
 * Google Benchmark has no C API.  Each measured operation is a C body in
 * the tables pcpu_benches[] (bench_counter.c) and pcpu_cache_benches[]
 * (bench_cache.c); bench/shim.cc, the only C++
 * file, registers every entry once per argument and thread count with
 * benchmark::RegisterBenchmark and drives it with KeepRunningBatch():
 *
 *     thread 0:  setup(ctx)                        (before the start barrier)
 *     all:       while (KeepRunningBatch(batch))
 *                        run(ctx, batch)            (a C loop of batch ops)
 *     thread 0:  teardown(ctx)                     (after the stop barrier)
 *
 * so the language boundary is crossed once per batch, not once per
 * operation: a call through the shim costs more than the per-CPU add
 * being measured.
 *
 * One context serves all threads of a run.  Google Benchmark holds every
 * thread at a barrier inside the first KeepRunningBatch() until all have
 * arrived, and again inside the last one until all have finished, so
 * thread 0's setup happens before any thread's run() and its teardown
 * after every thread's last run(): the bodies need no barrier of their
 * own.  run() may be called by several threads at once on the same
 * context; it only reads the context, apart from atomic updates of
 * ctx->ops, ctx->next_thread and ctx->error.
 *
 * An error message that starts with "skipped:" marks a body that cannot
 * run here (no rseq, fewer than two CPUs): bench/report.awk lists it but
 * does not fail the run.
 */
#ifndef PCPU_BENCH_H
#define PCPU_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pcpu_bench;

/** One run (one repetition of one argument and thread count). */
struct pcpu_bench_ctx {
	const struct pcpu_bench *bench;
	unsigned long arg;	/* this run's argument (slot count), or 0 */
	int threads;		/* threads running run() concurrently */
	/* Unique per run (the shim numbers them from 1), so that a thread
	 * can tell its first run() call of a run from later ones. */
	unsigned long run_id;
	/* Threads that have made their first run() call (atomic). */
	int next_thread;
	void *data;		/* the body's shared state, set by setup() */
	/* Operations performed by all threads (atomic add per batch), so
	 * teardown can check the counter against what was added. */
	uint64_t ops;
	/* Set on failure by setup(), teardown() or (atomically) run(): the
	 * shim then reports the run as an error instead of a time, and stops
	 * calling run().  A static string. */
	const char *error;
	/* Set by teardown if it likes: reported as Google Benchmark user
	 * counters of the run (in the JSON), e.g. a cache's ctor calls per
	 * allocation.  Entries with a NULL name are ignored. */
	struct {
		const char *name;
		double value;
	} counters[4];
};

/** One benchmark body. */
struct pcpu_bench {
	const char *name;	/* "group/variant"; the shim appends /arg */
	/* Before the measurement, on thread 0 only.  Sets ctx->error on
	 * failure (then neither run nor teardown is called). */
	void (*setup)(struct pcpu_bench_ctx *ctx);
	/* @iters iterations of the measured operation; any thread. */
	void (*run)(struct pcpu_bench_ctx *ctx, uint64_t iters);
	/* After the measurement, on thread 0 only; may set ctx->error. */
	void (*teardown)(struct pcpu_bench_ctx *ctx);
	/* Thread counts to register, 0-terminated; {0} means {1}. */
	int threads[4];
	/* Arguments to register: args[0..nr_args), or none if nr_args is 0. */
	const unsigned long *args;
	unsigned nr_args;
	/* Operations per run() call for argument @arg. */
	uint64_t (*batch)(unsigned long arg);
	/* Nonzero: a scaling body (threads on unrelated objects); with
	 * PCPU_BENCH_SCALING=1 in the environment the shim registers it for
	 * 1, 2, 4, ... threads up to the CPUs the process may use. */
	int scale;
};

/** The tables, each terminated by an entry whose name is NULL. */
extern const struct pcpu_bench pcpu_benches[];
extern const struct pcpu_bench pcpu_cache_benches[];
extern const struct pcpu_bench pcpu_scale_benches[];

/**
 * pcpu_bench_label - what the shim shows as the runs' label: the library's
 * update method.
 */
const char *pcpu_bench_label(void);

/**
 * pcpu_bench_global_init - called once by main() before any run: records
 * the machine's default slot count for the bodies that change it.
 * Return: 0, or -1 after printing why to stderr.
 */
int pcpu_bench_global_init(void);

/** pcpu_bench_default_slots - the slot count the add bodies run with. */
unsigned pcpu_bench_default_slots(void);

/* Helpers of bench_counter.c for the other bodies. */

/** Record @msg as the run's error (the first one wins); any thread. */
void pcpu_bench_fail(struct pcpu_bench_ctx *ctx, const char *msg);

/** pcpu_set_nr_slots(@n) unless set already; on failure fail() and -1. */
int pcpu_bench_set_slots(struct pcpu_bench_ctx *ctx, unsigned n);

/** The number of CPUs this process may run on. */
int pcpu_bench_nr_cpus(void);

/** Pin the calling thread to the @k-th CPU of the process; 0 or -1. */
int pcpu_bench_pin(int k);

/** Give the calling thread the process's start CPU mask again. */
void pcpu_bench_unpin(void);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_BENCH_H */
