// SPDX-License-Identifier: MIT
//
// pcpu.hpp - a thin C++ (C++11 and later) owner for libpcpu counters.
//
// pcpu::counter owns one struct pcpu_counter from construction to
// destruction.  The C struct itself stays where it was allocated: a
// counter's per-CPU state may point back at it (LAZY, EAGER and shared
// DUAL counters must not be copied or moved byte-wise, see libpcpu(7)),
// so the wrapper holds it on the heap and a move hands over the pointer.
// Moving is therefore always safe, whatever the policy and whichever
// threads have used the counter; copying is not offered.
//
//   pcpu::counter hits;                  // DUAL, value 0
//   pcpu::counter bytes(0, PCPU_COUNTER_LAZY);
//   hits.inc();                          // pcpu_counter_inc()
//   int64_t n = hits.sum();              // pcpu_counter_sum()
//   std::vector<pcpu::counter> v;        // move-only: fine in containers
//   v.push_back(std::move(hits));        // hits is now empty
//
// Every member is the C function of the same name (pcpu_counter_<name>),
// with the same thread-safety; the rules of libpcpu(7) and of each
// function's page apply unchanged.  Only the constructor can fail: it
// throws std::system_error (the errno of pcpu_counter_init(), in
// std::generic_category()) or std::bad_alloc.  A moved-from counter is
// empty: valid() is false and only destruction, assignment and valid()
// may be used on it.  No member is virtual; nothing here is compiled
// into the library.
#ifndef PCPU_HPP
#define PCPU_HPP

#include <cstdint>
#include <new>
#include <system_error>

#include <pcpu.h>

namespace pcpu {

class counter {
public:
	// pcpu_counter_init(value, flags); throws on failure.
	explicit counter(std::int64_t value = 0,
			 unsigned flags = PCPU_COUNTER_DUAL)
		: c_(new struct pcpu_counter)
	{
		int err = pcpu_counter_init(c_, value, flags);

		if (err != 0) {
			delete c_;
			c_ = nullptr;
			throw std::system_error(-err, std::generic_category(),
						"pcpu_counter_init");
		}
	}

	// pcpu_counter_destroy(): no other thread may use the counter then.
	~counter() { release(); }

	counter(const counter &) = delete;
	counter &operator=(const counter &) = delete;

	// The C counter changes hands, not place.  Not concurrently with
	// any other use of either wrapper object (the C counter itself may
	// be in use elsewhere through native()).
	counter(counter &&other) noexcept : c_(other.c_)
	{
		other.c_ = nullptr;
	}
	counter &operator=(counter &&other) noexcept
	{
		if (this != &other) {
			release();
			c_ = other.c_;
			other.c_ = nullptr;
		}
		return *this;
	}

	bool valid() const noexcept { return c_ != nullptr; }

	void add(std::int64_t delta) noexcept { pcpu_counter_add(c_, delta); }
	void inc() noexcept { pcpu_counter_inc(c_); }
	void dec() noexcept { pcpu_counter_dec(c_); }
	std::int64_t read() const noexcept { return pcpu_counter_read(c_); }
	std::int64_t sum() const noexcept { return pcpu_counter_sum(c_); }
	int compare(std::int64_t rhs) const noexcept
	{
		return pcpu_counter_compare(c_, rhs);
	}
	bool is_shared() const noexcept { return pcpu_counter_is_shared(c_); }
	// 0 or -ENOMEM (the counter stays usable).
	int share() noexcept { return pcpu_counter_share(c_); }
	// Not concurrently with any other access to the counter.
	void set(std::int64_t value) noexcept { pcpu_counter_set(c_, value); }
	void reset() noexcept { pcpu_counter_reset(c_); }

	// The C counter, for the C API (pcpu_counter_*); owned by *this.
	struct pcpu_counter *native() noexcept { return c_; }
	const struct pcpu_counter *native() const noexcept { return c_; }

private:
	void release() noexcept
	{
		if (c_ != nullptr) {
			pcpu_counter_destroy(c_);
			delete c_;
			c_ = nullptr;
		}
	}

	struct pcpu_counter *c_;
};

} // namespace pcpu

#endif // PCPU_HPP
