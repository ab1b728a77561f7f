#!/bin/sh
# Run the counter suites again under every other update method this machine
# can provide.  `make check` runs them once with the process's default
# (rseq registered by glibc, where glibc does); this adds
#   rseq-own  GLIBC_TUNABLES=glibc.pthread.rseq=0: libpcpu registers rseq
#   atomic    PCPU_UPDATE_METHOD=atomic: the fallback without rseq
#   norseq    under tests/norseq, which makes the rseq system call fail
#             with ENOSYS: glibc's registration and libpcpu's own both
#             fail, and the library's detection must choose atomic
# Each run sets PCPU_EXPECT_METHOD, which test_cpu asserts, so a run that
# silently fell back to another method fails instead of passing.
#
# PCPU_TEST_RUNNER, if set, is put in front of every test program this
# script runs (word-split: it may carry options), for example
#   PCPU_TEST_RUNNER='qemu-aarch64 -L /usr/aarch64-linux-gnu'
# for a cross build (tests/cross-aarch64.sh).
set -u
b=${top_builddir:-.}
runner=${PCPU_TEST_RUNNER:-}
# The default run gives each stress loop 1 s; the reruns here take half
# that unless PCPU_STRESS_SECONDS says otherwise, so that `make check`
# stays well inside its time on a 2-CPU machine.
stress_set=${PCPU_STRESS_SECONDS:-}
PCPU_STRESS_SECONDS=${PCPU_STRESS_SECONDS:-0.5}
export PCPU_STRESS_SECONDS
probe="$b/tests/print-method"
suites="test_cpu test_counter test_lazy test_dual test_stress test_cache test_fault test_fork test_area"

# shellcheck disable=SC2086 # $runner: a command and its options
default=$($runner "$probe") || { echo "print-method failed"; exit 1; }
echo "default method: $default${runner:+ (runner: $runner)}"

fail=0
# run_under LABEL METHOD [COMMAND PREFIX...]: run the suites as
# `PREFIX... [RUNNER] tests/SUITE` (the prefix is a command that runs its
# arguments: env with assignments, tests/norseq) and require METHOD.  Logs
# are tests/SUITE.LABEL.log.
run_under() {
	label=$1 want=$2; shift 2
	# shellcheck disable=SC2086
	got=$("$@" $runner "$probe")
	if [ "$got" != "$want" ]; then
		echo "FAIL: $label: '$*' gives method '$got', expected '$want'"
		fail=1
		return
	fi
	for t in $suites; do
		log="$b/tests/$t.$label.log"
		# shellcheck disable=SC2086
		if env PCPU_EXPECT_METHOD="$want" "$@" $runner "$b/tests/$t" \
			>"$log" 2>&1; then
			echo "PASS: $t under $label ($want)"
		else
			echo "FAIL: $t under $label ($want) (log: tests/$t.$label.log)"
			tail -n 20 "$log"
			fail=1
		fi
	done
}

run_under atomic atomic env PCPU_UPDATE_METHOD=atomic

# No rseq at all, seen through detection rather than asked for.
if [ -n "$runner" ]; then
	# tests/norseq's filter would have to act on the emulator's own
	# system calls (qemu-user refuses seccomp anyway); qemu-user has no
	# rseq to take away.
	echo "SKIP: norseq run: skipped under a runner ($runner)"
else
	"$b/tests/norseq" true
	case $? in
	# The atomic updates are stressed by the run above already; this
	# one is about detection, so its stress loops are shorter still
	# (0.2 s, about 8 s in all instead of 18 on 2 CPUs) unless
	# PCPU_STRESS_SECONDS was given.
	0)	run_under norseq atomic env \
			PCPU_STRESS_SECONDS="${stress_set:-0.2}" "$b/tests/norseq" ;;
	77)	echo "SKIP: norseq run: no rseq system call on this architecture" ;;
	*)	echo "FAIL: tests/norseq cannot run programs (see above)"
		fail=1 ;;
	esac
fi

case $default in
rseq)
	# The kernel has rseq, so libpcpu must be able to register its own.
	run_under rseq-own rseq-own env GLIBC_TUNABLES=glibc.pthread.rseq=0
	# Slots by CPU number rather than mm_cid (where the kernel has it).
	run_under cpuidx rseq env PCPU_SLOT_INDEX=cpu ;;
rseq-own)
	echo "glibc registers no rseq here: the default run was rseq-own" ;;
atomic)
	echo "no rseq on this machine, architecture or build: atomic only" ;;
esac
exit $fail
