# tests/hardening.mk: included by Makefile.am.  The fault-injection test
# library and the hardening suites (fault injection, fork, bad input).

if HAVE_CHECK
# The library again, with the fault-injection hook (lib/fault.h).  Built
# for make check only, never installed: the hook is not public API.
check_LTLIBRARIES = lib/libpcpu-fi.la
lib_libpcpu_fi_la_SOURCES = $(lib_libpcpu_la_SOURCES)
lib_libpcpu_fi_la_CPPFLAGS = $(lib_libpcpu_la_CPPFLAGS) -DPCPU_FAULT_INJECTION
lib_libpcpu_fi_la_CFLAGS = $(lib_libpcpu_la_CFLAGS)
lib_libpcpu_fi_la_LIBADD = $(URCU_LIBS)

PCPU_HARDENING_TESTS = tests/test_fault tests/test_fork tests/test_badinput
check_PROGRAMS += $(PCPU_HARDENING_TESTS)
TESTS += $(PCPU_HARDENING_TESTS)

tests_test_fault_SOURCES = tests/test_fault.c tests/testutil.h
tests_test_fault_CFLAGS = $(PCPU_TEST_CFLAGS) $(URCU_CFLAGS)
tests_test_fault_LDADD = lib/libpcpu-fi.la $(CHECK_LIBS) $(URCU_LIBS)

tests_test_badinput_SOURCES = tests/test_badinput.c tests/testutil.h
tests_test_badinput_CFLAGS = $(PCPU_TEST_CFLAGS)
tests_test_badinput_LDADD = lib/libpcpu-fi.la $(CHECK_LIBS) $(URCU_LIBS)

tests_test_fork_SOURCES = tests/test_fork.c tests/testutil.h
tests_test_fork_CFLAGS = $(PCPU_TEST_CFLAGS) $(URCU_CFLAGS)
tests_test_fork_LDADD = $(PCPU_TEST_LDADD) $(URCU_LIBS)
endif
