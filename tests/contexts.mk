# tests/contexts.mk: included by Makefile.am (issue 12).
#
# tests/test_contexts: the "yes" cells of libpcpu(7)'s table of calling
# contexts (signal handler, constructor before the library's own, RCU
# callback on liburcu-bp's call_rcu worker, fork while other threads
# update, inside a liburcu-bp read-side critical section), one test each.
if HAVE_CHECK
check_PROGRAMS += tests/test_contexts
TESTS += tests/test_contexts
tests_test_contexts_SOURCES = tests/test_contexts.c tests/testutil.h
tests_test_contexts_CFLAGS = $(PCPU_TEST_CFLAGS) $(URCU_CFLAGS)
tests_test_contexts_LDADD = $(PCPU_TEST_LDADD) $(URCU_LIBS)
# libpcpu linked statically (libtool -static: uninstalled libtool
# libraries only): the suite's constructor(101) must run before the
# library's own, and a shared libpcpu's constructors run before any of
# the program's.
tests_test_contexts_LDFLAGS = $(AM_LDFLAGS) -static
endif
