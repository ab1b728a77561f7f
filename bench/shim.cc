// SPDX-License-Identifier: MIT
//
// bench/shim.cc - runs the C bodies of bench.h under Google Benchmark.
//
// The only C++ file of the benchmark.  Every entry of both tables is registered once,
// with its arguments and thread counts (Google Benchmark makes one instance
// per combination), and driven in batches: the body's C loop runs `batch`
// operations per call, so neither the indirect call nor KeepRunningBatch()
// is paid per operation.
//
// Setup and teardown run on thread 0 around the loop.  Google Benchmark's
// start barrier (inside the first KeepRunningBatch()) orders thread 0's
// setup before every thread's first batch, and its stop barrier (inside
// the last one) orders every thread's last batch before thread 0's
// teardown, so the shim adds no synchronization of its own.  Instances run
// one after another, so one context per table entry suffices.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <vector>

extern "C" {
#include "bench.h"
// bench/bench_metrics.c: the metrics registry, DUAL counters vs C11 atomics.
extern const struct pcpu_bench pcpu_metrics_benches[];
}

namespace {

const char *ctx_error(pcpu_bench_ctx *ctx)
{
	// run() may set it on another thread.
	return __atomic_load_n(&ctx->error, __ATOMIC_RELAXED);
}

void drive(benchmark::State &st, const pcpu_bench *b, pcpu_bench_ctx *ctx)
{
	unsigned long arg = b->nr_args ? (unsigned long)st.range(0) : 0;
	uint64_t batch = b->batch ? b->batch(arg) : 1000;
	bool set_up = false;
	static unsigned long runs;	// only thread 0 touches it

	if (st.thread_index() == 0) {
		*ctx = pcpu_bench_ctx();
		ctx->bench = b;
		ctx->run_id = ++runs;
		ctx->arg = arg;
		ctx->threads = st.threads();
		if (b->setup)
			b->setup(ctx);
		if (ctx->error)
			st.SkipWithError(ctx->error);
		else
			set_up = true;
	}

	while (st.KeepRunningBatch((benchmark::IterationCount)batch)) {
		// Thread 0's failed setup is visible here: the start barrier
		// lies between.  After SkipWithError the next call is false.
		if (const char *err = ctx_error(ctx)) {
			st.SkipWithError(err);
			continue;
		}
		b->run(ctx, batch);
	}

	if (st.thread_index() == 0 && set_up) {
		if (b->teardown)
			b->teardown(ctx);
		if (const char *err = ctx_error(ctx))
			st.SkipWithError(err);
		for (const auto &c : ctx->counters)
			if (c.name)
				st.counters[c.name] = c.value;
	}
	st.SetItemsProcessed(st.iterations());
	st.SetLabel(pcpu_bench_label());
}

void register_all()
{
	static std::vector<pcpu_bench_ctx> ctxs;
	std::vector<const pcpu_bench *> all;

	const char *scaling = getenv("PCPU_BENCH_SCALING");
	const bool scale_all = scaling && *scaling && *scaling != '0';

	for (const pcpu_bench *t : { pcpu_benches, pcpu_cache_benches,
				     pcpu_scale_benches, pcpu_metrics_benches })
		for (; t->name; t++)
			all.push_back(t);
	ctxs.resize(all.size()); // never resized again: the lambdas keep pointers

	for (size_t i = 0; i < all.size(); i++) {
		const pcpu_bench *b = all[i];
		pcpu_bench_ctx *ctx = &ctxs[i];
		auto *reg = benchmark::RegisterBenchmark(b->name,
			[b, ctx](benchmark::State &st) { drive(st, b, ctx); });

		for (unsigned a = 0; a < b->nr_args; a++)
			reg->Arg((int64_t)b->args[a]);
		if (b->scale && scale_all) {
			// 1, 2, 4, ... and the CPU count itself (192 is not a
			// power of two).
			int n = pcpu_bench_nr_cpus(), t;

			for (t = 1; t <= n; t *= 2)
				reg->Threads(t);
			if (t / 2 != n)
				reg->Threads(n);
		} else if (b->threads[0] == 0) {
			reg->Threads(1);
		} else {
			for (int t = 0; t < 4 && b->threads[t]; t++)
				reg->Threads(b->threads[t]);
		}
		// Wall time, so that a two-thread run's items per second is
		// the throughput of both threads together.
		reg->UseRealTime();
		reg->Unit(benchmark::kNanosecond);
	}
}

} // namespace

int main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	if (pcpu_bench_global_init())
		return 1;
	benchmark::AddCustomContext("pcpu_update_method", pcpu_bench_label());
	benchmark::AddCustomContext("pcpu_nr_slots",
		std::to_string(pcpu_bench_default_slots()));
	register_all();
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
