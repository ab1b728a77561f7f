# tests/fuzz/fuzz.mk: the libFuzzer target (issue 5), included by Makefile.am.
#
#   make fuzz                      build tests/fuzz/fuzz_ops with clang and
#                                  fuzz a copy of the seed corpus for
#                                  FUZZ_SECONDS seconds (crashes are saved
#                                  as tests/fuzz/crash-* in the build dir)
#   make fuzz FUZZ_ARGS=-runs=0    extra libFuzzer flags (here: only run the
#                                  corpus once)
#   make fuzz-repro FUZZ_INPUT=F   replay input F, printing every op
#   make fuzz-merge                add to $(srcdir)/tests/fuzz/corpus the
#                                  inputs of the last `make fuzz` that reach
#                                  new coverage (maintainers; -merge=1)
#
# The fuzzer is built with clang directly, not through libtool: the main
# build may use gcc, and -fsanitize=fuzzer needs clang (Debian:
# apt-get install clang-14 libfuzzer-14-dev).  The library's sources are
# compiled into the fuzzer, so libFuzzer sees their coverage.

CLANG ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
FUZZ_INPUT ?=
# -fno-sanitize-recover: UBSan would otherwise print and carry on, and
# libFuzzer would not save the input.
FUZZ_CFLAGS = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-g -O1 -std=gnu11 -pthread
FUZZ_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/lib -I$(top_builddir)
# The library's own source list (lib_libpcpu_la_SOURCES), so a file added
# to lib/ is never missed; make finds the prerequisites through VPATH.
FUZZ_DEPS = $(lib_libpcpu_la_SOURCES) $(include_HEADERS) \
	$(pcpuinclude_HEADERS) tests/fuzz/fuzz_ops.c $(top_builddir)/config.h
# Every input is capped at 256 ops; 30 s without an answer is a hang (a
# deadlock between the workers and the library).
FUZZ_RUN_FLAGS = -timeout=30 -print_final_stats=1 \
	-artifact_prefix=tests/fuzz/

tests/fuzz/fuzz_ops: $(FUZZ_DEPS)
	@$(MKDIR_P) tests/fuzz
	srcs=; for f in $(lib_libpcpu_la_SOURCES); do \
		case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; \
	done; \
	$(CLANG) $(FUZZ_CFLAGS) $(FUZZ_CPPFLAGS) $(URCU_CFLAGS) -o $@ \
		$$srcs $(top_srcdir)/tests/fuzz/fuzz_ops.c $(URCU_LIBS)

# Fuzz a copy: libFuzzer adds what it finds to its corpus directory, and
# the source tree (read-only in distcheck) keeps only the chosen seeds.
fuzz: tests/fuzz/fuzz_ops
	rm -rf tests/fuzz/work
	$(MKDIR_P) tests/fuzz/work
	cp $(top_srcdir)/tests/fuzz/corpus/* tests/fuzz/work/
	@echo "fuzzing for $(FUZZ_SECONDS) s (log: tests/fuzz/fuzz.log)"
	@UBSAN_OPTIONS=print_stacktrace=1 ./tests/fuzz/fuzz_ops \
		-max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_FLAGS) $(FUZZ_ARGS) \
		tests/fuzz/work >tests/fuzz/fuzz.log 2>&1 || { \
		grep -E 'check failed|runtime error|ERROR:|^SUMMARY|written to' \
			tests/fuzz/fuzz.log; \
		echo "fuzz: FAILED (log: tests/fuzz/fuzz.log); replay:" \
			"make fuzz-repro FUZZ_INPUT=<the file written above>" >&2; \
		exit 1; }
	@grep -E '^#[0-9]+.*(cov|DONE)' tests/fuzz/fuzz.log | tail -n 1
	@grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units)' \
		tests/fuzz/fuzz.log

fuzz-repro: tests/fuzz/fuzz_ops
	@test -n "$(FUZZ_INPUT)" || { \
		echo "usage: make fuzz-repro FUZZ_INPUT=file" >&2; exit 1; }
	FUZZ_OPS_TRACE=1 UBSAN_OPTIONS=print_stacktrace=1 \
		./tests/fuzz/fuzz_ops $(FUZZ_ARGS) $(FUZZ_INPUT)

# Keep the stored corpus small: -merge=1 copies into the first directory
# only the inputs of the others that reach coverage it does not have, and
# -use_counters=0 makes that coverage edges only (not hit counts, which
# would keep hundreds of inputs).
fuzz-merge: tests/fuzz/fuzz_ops
	$(MKDIR_P) tests/fuzz/work
	./tests/fuzz/fuzz_ops -merge=1 -use_counters=0 $(FUZZ_RUN_FLAGS) \
		$(top_srcdir)/tests/fuzz/corpus tests/fuzz/work

fuzz-clean:
	rm -rf tests/fuzz/fuzz_ops tests/fuzz/work tests/fuzz/fuzz.log

# A hook without a recipe: other fragments may add their own the same way.
clean-local: fuzz-clean

.PHONY: fuzz fuzz-repro fuzz-merge fuzz-clean

EXTRA_DIST += tests/fuzz/README tests/fuzz/fuzz_ops.c \
	tests/fuzz/gen-corpus.py tests/fuzz/corpus \
	tests/fuzz/repro-read-overflow.c
