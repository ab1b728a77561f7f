# tests/area.mk: included by Makefile.am.  Per-CPU areas as data (v2):
# pcpu_alloc_lazy(), pcpu_area_add/sum/zero/for_each(), pcpu_slot_index().
# tests/all-methods.sh runs it under every update method; it re-executes
# itself with PCPU_SLOT_INDEX=cpu.

if HAVE_CHECK
check_PROGRAMS += tests/test_area
TESTS += tests/test_area

tests_test_area_SOURCES = tests/test_area.c tests/testutil.h tests/selfexec.h
tests_test_area_CFLAGS = $(PCPU_TEST_CFLAGS)
tests_test_area_LDADD = $(PCPU_TEST_LDADD)
endif
EXTRA_DIST += tests/area.mk
