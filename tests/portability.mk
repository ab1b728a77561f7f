# tests/portability.mk: included by Makefile.am (issue 5, portability).
#
# tests/norseq: a launcher that makes the rseq system call fail with
# ENOSYS (a seccomp filter), so that tests/all-methods.sh can rerun the
# suites on "a kernel without rseq" and check that the library's own
# detection falls back to the atomic method.  It uses no library: plain
# C and the kernel's headers.
if HAVE_CHECK
check_PROGRAMS += tests/norseq
tests_norseq_SOURCES = tests/norseq.c
# all-methods.sh's logs of the runs under tests/norseq.  CLEANFILES (set
# with the other methods' logs in Makefile.am, under the same condition)
# rather than a variable of our own: another fragment may define one too.
CLEANFILES += tests/*.norseq.log
endif

# tests/cross-aarch64.sh: the test suite cross-built for aarch64 and run
# under qemu-user (CI calls it; see the script).
EXTRA_DIST += tests/cross-aarch64.sh tests/qemu-fork-thread.c tests/norseq.c
