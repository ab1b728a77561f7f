#!/bin/sh
# Run the counter suites again under every other update method this machine
# can provide.  `make check` runs them once with the process's default
# (rseq registered by glibc, where glibc does); this adds
#   rseq-own  GLIBC_TUNABLES=glibc.pthread.rseq=0: libpcpu registers rseq
#   atomic    PCPU_UPDATE_METHOD=atomic: the fallback without rseq
# Each run sets PCPU_EXPECT_METHOD, which test_cpu asserts, so a run that
# silently fell back to another method fails instead of passing.
set -u
b=${top_builddir:-.}
# The default run gives each stress loop 1 s; the reruns here take half
# that unless PCPU_STRESS_SECONDS says otherwise, so that `make check`
# stays well inside its time on a 2-CPU machine.
PCPU_STRESS_SECONDS=${PCPU_STRESS_SECONDS:-0.5}
export PCPU_STRESS_SECONDS
probe="$b/tests/print-method"
suites="test_cpu test_counter test_lazy test_stress test_cache"

default=$("$probe") || { echo "print-method failed"; exit 1; }
echo "default method: $default"

fail=0
run_under() {	# method, env assignments...
	want=$1; shift
	got=$(env "$@" "$probe")
	if [ "$got" != "$want" ]; then
		echo "FAIL: env $* gives method '$got', expected '$want'"
		fail=1
		return
	fi
	for t in $suites; do
		if env "$@" PCPU_EXPECT_METHOD="$want" "$b/tests/$t" >"$b/tests/$t.$want.log" 2>&1; then
			echo "PASS: $t under $want"
		else
			echo "FAIL: $t under $want (log: tests/$t.$want.log)"
			tail -n 20 "$b/tests/$t.$want.log"
			fail=1
		fi
	done
}

run_under atomic PCPU_UPDATE_METHOD=atomic
case $default in
rseq)
	# The kernel has rseq, so libpcpu must be able to register its own.
	run_under rseq-own GLIBC_TUNABLES=glibc.pthread.rseq=0 ;;
rseq-own)
	echo "glibc registers no rseq here: the default run was rseq-own" ;;
atomic)
	echo "no rseq on this machine, architecture or build: atomic only" ;;
esac
exit $fail
