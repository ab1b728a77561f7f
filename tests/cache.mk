# tests/cache.mk: included by Makefile.am.  The object cache's v2 suite
# (constructor failures and cycles, destroy from RCU callbacks, fork with
# and without liburcu's hooks).

if HAVE_CHECK
check_PROGRAMS += tests/test_cache_v2
TESTS += tests/test_cache_v2

tests_test_cache_v2_SOURCES = tests/test_cache_v2.c tests/testutil.h
tests_test_cache_v2_CFLAGS = $(PCPU_TEST_CFLAGS) $(URCU_CFLAGS)
tests_test_cache_v2_LDADD = $(PCPU_TEST_LDADD) $(URCU_LIBS)
endif
