// SPDX-License-Identifier: MIT
//
// tests/examples/cxx_raii.cc - libpcpu counters from C++17: pcpu::counter
// (include/pcpu.hpp), a move-only owner of one struct pcpu_counter, kept in
// std::vector and updated from several std::thread workers.
//
// What it shows and checks (exit status 1 and a message if any fails):
//   1. counters created on the main thread, updated there, then moved as
//      the vector grows: a move hands over the C counter without moving
//      it, so even a shared counter (pcpu_counter_share(), a per-CPU area
//      behind it) survives any number of moves;
//   2. NTHREADS workers, each adding to its own counter and all adding to
//      one common counter, then exact totals after join;
//   3. a moved-from counter is empty, and move assignment destroys the
//      counter it replaces;
//   4. pcpu_counter_init()'s errors become std::system_error.
//
// make check builds it with g++ -std=c++17 -Wall -Wextra -Werror.  Build
// your own against an installed libpcpu with
//   c++ -std=c++17 -o raii raii.cc $(pkg-config --cflags --libs libpcpu) -pthread

#include <pcpu.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr int NTHREADS = 4;
constexpr std::int64_t NADDS = 200000;
constexpr std::int64_t STEP = 3;	// the common counter's delta

int failures;

void expect(bool ok, const std::string &what)
{
	if (!ok) {
		std::fprintf(stderr, "cxx_raii: FAIL: %s\n", what.c_str());
		failures++;
	}
}

// One worker's loop: its own counter by 1, the common one by STEP.
void work(pcpu::counter &mine, pcpu::counter &common)
{
	for (std::int64_t i = 0; i < NADDS; i++) {
		mine.inc();
		common.add(STEP);
	}
}

} // namespace

int main()
{
	pcpu::counter common(0, PCPU_COUNTER_DUAL);
	std::vector<pcpu::counter> per_thread;	// no reserve(): it reallocates

	// 1. Shared before the threads exist (as clone() would), then moved
	// around: the per-CPU area stays valid because the C counter stays put.
	const int err = common.share();
	expect(err == 0 || err == -ENOMEM, "share: " + std::to_string(err));
	common.add(7);
	for (int t = 0; t < NTHREADS; t++) {
		per_thread.emplace_back(t, t % 2 ? PCPU_COUNTER_LAZY
					       : PCPU_COUNTER_DUAL);
		per_thread.back().add(100);
	}
	pcpu::counter moved(std::move(common));
	common = std::move(moved);		// and back
	expect(!moved.valid(), "moved-from counter is empty");
	expect(common.sum() == 7, "value survives two moves");

	// 2. Workers.
	std::vector<std::thread> threads;
	for (int t = 0; t < NTHREADS; t++)
		threads.emplace_back(work, std::ref(per_thread[(size_t)t]),
				     std::ref(common));
	for (auto &th : threads)
		th.join();

	const std::int64_t want_common = 7 + NTHREADS * NADDS * STEP;
	expect(common.sum() == want_common,
	       "common sum " + std::to_string(common.sum()) + ", want " +
	       std::to_string(want_common));
	expect(common.compare(want_common) == 0, "compare");
	expect(common.is_shared(), "common counter is shared");
	for (int t = 0; t < NTHREADS; t++) {
		const std::int64_t want = t + 100 + NADDS;
		const std::int64_t got = per_thread[(size_t)t].sum();

		expect(got == want, "thread " + std::to_string(t) + " sum " +
		       std::to_string(got) + ", want " + std::to_string(want));
	}

	// 3. Moves after use: into a new vector, then assignment over a live
	// counter (which destroys the old one: valgrind would see a leak
	// otherwise).
	std::vector<pcpu::counter> kept;
	for (auto &c : per_thread)
		kept.push_back(std::move(c));
	for (auto &c : per_thread)
		expect(!c.valid(), "moved-from vector element is empty");
	kept[0] = std::move(kept[1]);
	expect(kept[0].sum() == 1 + 100 + NADDS, "move assignment");
	kept[0].reset();
	expect(kept[0].sum() == 0, "reset");
	// The C API is still there for what the wrapper does not cover.
	pcpu_counter_add(kept[0].native(), 5);
	expect(kept[0].sum() == 5 && kept[0].read() <= 5, "native()");

	// 4. Errors.
	try {
		// Two policies at once.
		pcpu::counter bad(0, PCPU_COUNTER_EAGER | PCPU_COUNTER_LAZY);
		expect(false, "invalid flags accepted");
	} catch (const std::system_error &e) {
		expect(e.code().value() == EINVAL,
		       std::string("invalid flags: ") + e.what());
	}

	if (failures)
		return 1;
	std::printf("cxx_raii: %d threads, common counter %lld (exact), "
		    "update method %s\n", NTHREADS, (long long)want_common,
		    pcpu_update_method());
	return 0;
}
