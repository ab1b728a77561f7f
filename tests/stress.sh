#!/bin/sh
# The stress programs with long loops, then the totals of their STRESS
# lines (tu_stress_report() in tests/testutil.h):
#   PCPU_STRESS_SECONDS=10 tests/stress.sh tests/test_stress tests/test_lazy
# `make stress` (tests/valgrind.mk) calls it from the build directory.
#
# CK_FORK=no: Check enforces its per-case timeouts (60 s for the stress
# cases) only in fork mode, and a long PCPU_STRESS_SECONDS would exceed
# them; every loop bounds itself by wall-clock time instead.
#
# Fails if a program fails, if it printed no STRESS line where one was
# expected, or if any update was lost.
set -u
STRESS_LOGDIR=${STRESS_LOGDIR:-tests/stress-logs}
: "${PCPU_STRESS_SECONDS:=10}"
export PCPU_STRESS_SECONDS

mkdir -p "$STRESS_LOGDIR" || exit 1
fail=0
start=$(date +%s)
echo "stress: PCPU_STRESS_SECONDS=$PCPU_STRESS_SECONDS per loop," \
     "method $(tests/print-method 2>/dev/null || echo unknown)"
for prog in "$@"; do
	name=$(echo "$prog" | sed 's,^tests/,,; s,/,-,g')
	log="$STRESS_LOGDIR/$name.log"
	t0=$(date +%s)
	CK_FORK=no "$prog" >"$log" 2>&1
	st=$?
	secs=$(( $(date +%s) - t0 ))
	if [ "$st" -eq 0 ]; then
		echo "PASS: $prog (${secs}s, $(grep -c '^STRESS ' "$log") cases counted)"
	else
		fail=1
		echo "FAIL: $prog (${secs}s, exit status $st; log: $log)"
		grep -v '^STRESS ' "$log" | tail -n 20
	fi
done

# "STRESS <what>: <n> updates, <l> lost", one per case; lost adds up
# |expected - summed|, so that extra counts fail as well as missing ones.
for prog in "$@"; do
	name=$(echo "$prog" | sed 's,^tests/,,; s,/,-,g')
	cat "$STRESS_LOGDIR/$name.log"
done | awk -v secs="$PCPU_STRESS_SECONDS" '
	/^STRESS .*: [0-9]+ updates, -?[0-9]+ lost$/ {
		n = split($0, f, " ")
		upd += f[n - 3]
		l = f[n - 1] + 0
		lost += l < 0 ? -l : l
		cases++
		if (l != 0)
			print "  lost " l ": " $0
	}
	END {
		printf "stress totals: %d cases, %.0f updates performed, " \
		       "%.0f lost\n", cases, upd, lost
		exit (cases == 0 || lost != 0)
	}' || fail=1
echo "stress: $(( $(date +%s) - start ))s in all"
exit $fail
