# tests/valgrind.mk: included by Makefile.am (issue 5, "Hardening").
#
# make check-valgrind   every Check program and example of `make check`
#                       under valgrind memcheck: 0 errors, 0 leaks
#                       (tests/valgrind.sh says how, tests/valgrind.supp
#                       what is suppressed).  Needs valgrind (Debian:
#                       apt-get install valgrind).
# make stress           the stress programs with STRESS_SECONDS per loop
#                       instead of 1 (10 s took 5.4 min on a 2-CPU
#                       machine), then the totals of updates performed
#                       and lost (tests/stress.sh).  Not part of
#                       `make check`.
#
# Variables: VALGRIND (the valgrind command), VALGRIND_STRESS_SECONDS
# (each stress loop under valgrind; threads run one at a time there, so
# longer adds little), STRESS_SECONDS.

VALGRIND = valgrind
VALGRIND_STRESS_SECONDS = 0.5
# test_fork's children, each one a valgrind process of its own.
VALGRIND_FORKS = 4
STRESS_SECONDS = 10

EXTRA_DIST += tests/valgrind.sh tests/valgrind.supp tests/stress.sh

if HAVE_CHECK
PCPU_VALGRIND_RUN = $(PCPU_CHECK_TESTS) $(PCPU_HARDENING_TESTS) \
	tests/example $(PCPU_EXAMPLES) tests/test_dual tests/test_area \
	tests/test_cache_v2
PCPU_STRESS_RUN = tests/test_stress tests/test_lazy tests/test_cache \
	tests/test_alloc

CLEANFILES += tests/valgrind-logs/*.log tests/valgrind-logs/*.out \
	tests/stress-logs/*.log

check-valgrind: $(check_PROGRAMS)
	$(AM_V_at)LIBTOOL='$(LIBTOOL)' VALGRIND='$(VALGRIND)' \
	VALGRIND_SUPP='$(srcdir)/tests/valgrind.supp' \
	VG_LOGDIR=tests/valgrind-logs \
	PCPU_STRESS_SECONDS='$(VALGRIND_STRESS_SECONDS)' \
	PCPU_TEST_FORKS='$(VALGRIND_FORKS)' \
	$(SHELL) $(srcdir)/tests/valgrind.sh $(PCPU_VALGRIND_RUN)

stress: $(check_PROGRAMS)
	$(AM_V_at)STRESS_LOGDIR=tests/stress-logs \
	PCPU_STRESS_SECONDS='$(STRESS_SECONDS)' \
	$(SHELL) $(srcdir)/tests/stress.sh $(PCPU_STRESS_RUN)
else
check-valgrind stress:
	@echo "make $@: Check (libcheck, pkg-config 'check') was not found" >&2
	@echo "by configure; install it (Debian: apt-get install check)." >&2
	@false
endif

.PHONY: check-valgrind stress
