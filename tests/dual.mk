# tests/dual.mk: included by Makefile.am.  Issue 9: DUAL ownership that
# follows use, reset to owner mode keeping the slots, the slot encoding at
# its edges.  Linked with the fault-injection library (tests/hardening.mk)
# to show that reset/share cycles allocate nothing.

if HAVE_CHECK
check_PROGRAMS += tests/test_dual
TESTS += tests/test_dual

tests_test_dual_SOURCES = tests/test_dual.c tests/testutil.h
tests_test_dual_CFLAGS = $(PCPU_TEST_CFLAGS)
tests_test_dual_LDADD = lib/libpcpu-fi.la $(CHECK_LIBS) $(URCU_LIBS)
endif
EXTRA_DIST += tests/dual.mk
