# tests/examples.mk: included by Makefile.am (issue 12).  Examples that
# make check builds and runs, each checking its own results.
#
# tests/examples/metrics     a Prometheus-style registry of DUAL counters
#                            (series made on demand and deleted under
#                            liburcu-bp); --stdout prints the exposition.
# tests/examples/cxx_raii    pcpu.hpp's pcpu::counter in std::vector and
#                            std::thread, built as C++17 with -Werror.
if HAVE_CHECK
PCPU_ISSUE12_EXAMPLES = tests/examples/metrics tests/examples/cxx_raii
check_PROGRAMS += $(PCPU_ISSUE12_EXAMPLES)
TESTS += $(PCPU_ISSUE12_EXAMPLES)

tests_examples_metrics_SOURCES = tests/examples/metrics.c
tests_examples_metrics_CFLAGS = $(AM_CFLAGS) $(URCU_CFLAGS)
tests_examples_metrics_LDADD = lib/libpcpu.la $(URCU_LIBS)

tests_examples_cxx_raii_SOURCES = tests/examples/cxx_raii.cc
tests_examples_cxx_raii_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -pthread
tests_examples_cxx_raii_LDADD = lib/libpcpu.la
endif

# bench/bench_metrics.c: the same registry's cost per request, DUAL
# counters against C11 atomics, in pcpu-bench (bench/run's tables).
if HAVE_BENCHMARK
bench_pcpu_bench_SOURCES += bench/bench_metrics.c
bench_pcpu_bench_LDADD += $(URCU_LIBS)
endif
