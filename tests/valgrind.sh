#!/bin/sh
# Run test programs under valgrind memcheck and judge every process's log:
#   tests/valgrind.sh tests/test_cpu tests/test_alloc ...
# `make check-valgrind` (tests/valgrind.mk) calls it from the build
# directory with LIBTOOL, VALGRIND, VALGRIND_SUPP and VG_LOGDIR set.
#
# How the runs are set up, and why:
#  - `$LIBTOOL --mode=execute valgrind prog`: prog is a libtool wrapper
#    script (the library is shared); libtool runs valgrind on the real
#    binary in .libs/ with the library's directory on LD_LIBRARY_PATH.
#  - CK_FORK=no: Check runs every test in the one process, so the leak
#    check at exit covers the whole suite (in fork mode each test's child
#    would be judged alone, next to Check's own bookkeeping).  The suites
#    are written to pass that way (tests/testutil.h, rule 4).
#  - --trace-children=yes: test_cpu re-executes itself with PCPU_NR_SLOTS
#    set; those children run under valgrind too, each with its own log
#    (--log-file=...%p).  Children that fork without exec are always
#    followed by valgrind.
#  - --fair-sched=yes: valgrind runs one thread at a time; its default
#    lock lets a spinning thread starve the others, and the suites' time-
#    bounded loops then end before some worker did anything.
#  - PCPU_STRESS_SECONDS (default 0.5 here): every stress loop is bounded
#    by wall-clock time; threads are serialized, so longer runs add little.
#  - PCPU_EXPECT_METHOD: valgrind does not implement rseq (the syscall
#    fails with ENOSYS, glibc's registration with it), so the library must
#    fall back to "atomic".  tests/print-method checks that first, and
#    test_cpu and test_lazy assert it again.  VG_EXPECT_METHOD overrides
#    it (empty: accept whatever the library picks).
#
# A log fails when
#  - it has no ERROR SUMMARY (valgrind or the process was killed);
#  - it reports errors: memory errors, or definite, indirect or possible
#    leaks (--errors-for-leak-kinds; tests/valgrind.supp says what is
#    suppressed and why).  Exception: a forked child that died of SIGABRT
#    on purpose (the bad-free and debug-report tests expect the library to
#    abort) is judged on memory errors only: what it held when it aborted
#    is not a leak;
#  - it is a top-level program's and shows a file descriptor the program
#    opened and left open at exit (--track-fds=yes).
# A program also fails when its exit status is not 0.
set -u

LIBTOOL=${LIBTOOL:-./libtool}
VALGRIND=${VALGRIND:-valgrind}
VALGRIND_SUPP=${VALGRIND_SUPP:-}
VG_LOGDIR=${VG_LOGDIR:-tests/valgrind-logs}
VG_EXPECT_METHOD=${VG_EXPECT_METHOD-atomic}
PCPU_STRESS_SECONDS=${PCPU_STRESS_SECONDS:-0.5}
export PCPU_STRESS_SECONDS

if ! command -v "$VALGRIND" >/dev/null 2>&1; then
	echo "check-valgrind: '$VALGRIND' not found (Debian: apt-get install" \
	     "valgrind)" >&2
	exit 1
fi

mkdir -p "$VG_LOGDIR" || exit 1
rm -f "$VG_LOGDIR"/*.vg.log "$VG_LOGDIR"/*.out

vg_opts="--tool=memcheck --error-exitcode=99 --leak-check=full"
vg_opts="$vg_opts --errors-for-leak-kinds=definite,indirect,possible"
vg_opts="$vg_opts --show-leak-kinds=definite,indirect,possible"
vg_opts="$vg_opts --track-fds=yes --trace-children=yes --fair-sched=yes"
vg_opts="$vg_opts --num-callers=30"
[ -n "$VALGRIND_SUPP" ] && vg_opts="$vg_opts --suppressions=$VALGRIND_SUPP"

# Which update method the library picks under valgrind.
method=$($LIBTOOL --mode=execute "$VALGRIND" -q --error-exitcode=99 \
	tests/print-method) || {
	echo "FAIL: tests/print-method under valgrind (status $?)"
	exit 1
}
echo "update method under valgrind: $method"
if [ -n "$VG_EXPECT_METHOD" ] && [ "$method" != "$VG_EXPECT_METHOD" ]; then
	echo "FAIL: method '$method' under valgrind, expected" \
	     "'$VG_EXPECT_METHOD' (valgrind has no rseq; set VG_EXPECT_METHOD" \
	     "if a newer valgrind has it)"
	exit 1
fi
PCPU_EXPECT_METHOD=$method
export PCPU_EXPECT_METHOD

# judge LOG...: one line per failing log on stdout; exit 1 if any fails.
judge() {
	awk '
	FNR == 1 {
		if (NR > 1)
			finish()
		file = FILENAME
		pid = ""; ppid = ""; summary = -1; leakerr = 0; sig = 0
		fdleak = 0; infd = 0; pending = ""
	}
	/^==[0-9]+== Parent PID: / { ppid = $4 }
	/^==[0-9]+== Command: / { p = $1; gsub(/=/, "", p); pid = p }
	/are (definitely|indirectly|possibly) lost in loss record/ { leakerr++ }
	/Process terminating with default action of signal / {
		s = $0; sub(/.*signal /, "", s); sig = s + 0
	}
	/FILE DESCRIPTORS: / { infd = 1 }
	infd && /Open (file descriptor|AF_UNIX socket|AF_INET)/ {
		if (pending != "")
			fdleak++
		pending = $0
		n = $0; sub(/.*descriptor /, "", n); sub(/:.*/, "", n)
		if (n + 0 <= 2 && n ~ /^[0-9]+$/)
			pending = ""	# stdin, stdout, stderr
		next
	}
	infd && /<inherited from parent>/ { pending = ""; next }
	/HEAP SUMMARY:/ { if (pending != "") fdleak++; pending = ""; infd = 0 }
	/ERROR SUMMARY: / { s = $0; sub(/.*ERROR SUMMARY: /, "", s); summary = s + 0 }
	function finish() {
		logs[file] = 1
		lpid[file] = pid; lppid[file] = ppid; lsum[file] = summary
		lleak[file] = leakerr; lsig[file] = sig; lfd[file] = fdleak
		ispid[pid] = 1
	}
	END {
		if (NR > 0)
			finish()
		bad = 0
		for (f in logs) {
			top = !(lppid[f] in ispid)
			why = ""
			if (lsum[f] < 0)
				why = "no ERROR SUMMARY: valgrind did not finish"
			else if (!top && lsig[f] == 6) {
				if (lsum[f] - lleak[f] > 0)
					why = (lsum[f] - lleak[f]) " memory errors (aborted child)"
			} else if (lsum[f] > 0)
				why = lsum[f] " errors (" lleak[f] " of them leaks)"
			if (why == "" && top && lfd[f] > 0)
				why = lfd[f] " file descriptors left open"
			if (why != "") {
				print "  " f ": " why
				bad = 1
			}
		}
		exit bad
	}' "$@"
}

fail=0
total_start=$(date +%s)
for prog in "$@"; do
	name=$(echo "$prog" | sed 's,^tests/,,; s,/,-,g')
	start=$(date +%s)
	CK_FORK=no $LIBTOOL --mode=execute "$VALGRIND" $vg_opts \
		--log-file="$VG_LOGDIR/$name.%p.vg.log" "$prog" \
		>"$VG_LOGDIR/$name.out" 2>&1
	st=$?
	secs=$(( $(date +%s) - start ))
	nlogs=$(ls "$VG_LOGDIR/$name".*.vg.log 2>/dev/null | wc -l)
	problems=$(judge "$VG_LOGDIR/$name".*.vg.log)
	if [ "$st" -eq 0 ] && [ -z "$problems" ] && [ "$nlogs" -gt 0 ]; then
		echo "PASS: $prog (${secs}s, $nlogs processes)"
		continue
	fi
	fail=1
	echo "FAIL: $prog (${secs}s, exit status $st, $nlogs processes)"
	[ -n "$problems" ] && echo "$problems"
	tail -n 20 "$VG_LOGDIR/$name.out"
	for log in $(echo "$problems" | sed -n 's/^  \([^:]*\):.*/\1/p'); do
		echo "----- $log"
		sed -n '/Memcheck, a memory error detector/,$p' "$log" |
			grep -v 'Copyright\|Using Valgrind' | head -n 150
	done
done
echo "check-valgrind: $(( $(date +%s) - total_start ))s," \
     "PCPU_STRESS_SECONDS=$PCPU_STRESS_SECONDS, method $method," \
     "logs in $VG_LOGDIR/"
exit $fail
