# tests/repro.mk: included by Makefile.am.  Bounded tests made from the
# reproducers of open defects (fork vs counter folds, calls before the
# library constructor, unbounded slot indices, TUs without rseq asm, cache
# destroy / fork hooks under liburcu-bp).  They failed or hung before the
# fixes; now they run with make check, and alone with `make check-repro`.
# Each test bounds itself (alarm, watchdog thread, timeout -s KILL); none
# asserts on timing.

EXTRA_DIST += tests/hidden-sysfs.sh

if HAVE_CHECK
PCPU_REPRO_TESTS = \
	tests/test_forkhang \
	tests/early \
	tests/preinit \
	tests/preinit_static \
	tests/hidden-sysfs.sh \
	tests/test_tumix \
	tests/test_rcuhang \
	tests/atfork_early

check_PROGRAMS += tests/test_forkhang tests/early tests/preinit \
	tests/preinit_static tests/hs_nosys tests/test_tumix \
	tests/test_rcuhang tests/atfork_early
check_LTLIBRARIES += tests/libtumix_cas.la
if ENABLE_SHARED
check_LTLIBRARIES += tests/hs_guard.la
endif

# fork() against folds.  Linked statically against libpcpu (libtool
# -static: no uninstalled shared libtool library), so that its
# constructor(101) registers an atfork handler before libpcpu's
# default-priority constructor registers libpcpu's (the foldfork case).
tests_test_forkhang_SOURCES = tests/test_forkhang.c
tests_test_forkhang_CFLAGS = $(PCPU_TEST_CFLAGS)
tests_test_forkhang_LDFLAGS = $(AM_LDFLAGS) -static
tests_test_forkhang_LDADD = $(PCPU_TEST_LDADD) $(URCU_LIBS)

# Calls before libpcpu's constructor.  tests/early: constructor(101), so
# static (-static: libpcpu's constructor is then in the same executable and
# runs after ours; a shared libpcpu would run its own first).
# tests/preinit: .preinit_array, which runs before every shared object's
# constructor, so it is linked shared (-no-install: a real executable, not
# a libtool wrapper, since it re-executes itself (tests/selfexec.h));
# tests/preinit_static: the same, static.
tests_early_SOURCES = tests/early.c tests/selfexec.h
tests_early_LDFLAGS = $(AM_LDFLAGS) -static
tests_early_LDADD = lib/libpcpu.la $(URCU_LIBS)
tests_preinit_SOURCES = tests/preinit.c tests/selfexec.h
tests_preinit_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_preinit_LDADD = lib/libpcpu.la
tests_preinit_static_SOURCES = tests/preinit.c tests/selfexec.h
tests_preinit_static_CFLAGS = $(AM_CFLAGS)
tests_preinit_static_LDFLAGS = $(AM_LDFLAGS) -static
tests_preinit_static_LDADD = lib/libpcpu.la $(URCU_LIBS)
EXTRA_DIST += tests/early.c

# Slot indices with /sys and /proc hidden: tests/hidden-sysfs.sh runs
# tests/hs_nosys under LD_PRELOAD=tests/.libs/hs_guard.so.
tests_hs_nosys_SOURCES = tests/hs_nosys.c
tests_hs_nosys_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_hs_nosys_LDADD = lib/libpcpu.la
tests_hs_guard_la_SOURCES = tests/hs_guard.c
tests_hs_guard_la_CFLAGS = $(AM_CFLAGS)
# -rpath: a real shared object (a check_ library is a convenience archive
# otherwise), loaded by LD_PRELOAD only.
tests_hs_guard_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

# One TU with the header's rseq asm, one without (as under TSan):
# -D__SANITIZE_THREAD__=1 makes <pcpu/cpu.h> set PCPU__TSAN for that TU
# only.  The header has no documented switch for this yet.
tests_libtumix_cas_la_SOURCES = tests/test_tumix_cas.c tests/test_tumix.h
tests_libtumix_cas_la_CFLAGS = $(AM_CFLAGS) -D__SANITIZE_THREAD__=1
tests_test_tumix_SOURCES = tests/test_tumix.c tests/test_tumix.h
tests_test_tumix_LDADD = tests/libtumix_cas.la lib/libpcpu.la

# pcpu_cache_destroy() from an RCU callback; the application's own
# liburcu-bp fork hooks.
# liburcu's fork hooks registered by the application before libpcpu's
# set-up (constructor(101), static link as tests/early).
tests_atfork_early_SOURCES = tests/atfork_early.c
tests_atfork_early_CFLAGS = $(AM_CFLAGS) $(URCU_CFLAGS)
tests_atfork_early_LDFLAGS = $(AM_LDFLAGS) -static
tests_atfork_early_LDADD = lib/libpcpu.la $(URCU_LIBS)

tests_test_rcuhang_SOURCES = tests/test_rcuhang.c
tests_test_rcuhang_CFLAGS = $(PCPU_TEST_CFLAGS) $(URCU_CFLAGS)
tests_test_rcuhang_LDADD = $(PCPU_TEST_LDADD) $(URCU_LIBS)

TESTS += $(PCPU_REPRO_TESTS)
else
PCPU_REPRO_TESTS =
endif

check-repro:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(PCPU_REPRO_TESTS)'

.PHONY: check-repro
