#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/hidden-sysfs.sh - slot indices stay below the slot count when the
# machine's CPU count cannot be read.
#
# In a private mount namespace (unshare -m) a tmpfs hides
# /sys/devices/system/cpu and /proc, so libpcpu finds no "possible" file
# and counts 1 CPU; taskset -c 1 then runs the program on CPU 1, a CPU
# number at the slot count.  tests/hs_nosys (counter adds: LAZY, EAGER,
# shared DUAL, from 5 threads; a pcpu_alloc() area; cache alloc/free) must
# print pcpu_nr_slots() and pcpu_update_method() and get every total exact,
# under LD_PRELOAD=tests/.libs/hs_guard.so, which puts a PROT_NONE page
# right after each aligned heap block so that an array indexed past its end
# faults.  Each run is bounded with timeout -s KILL.
#
# Skips (77) unless root, with a CPU 1, and allowed to mount.
# Environment: top_builddir (make check exports it; default .).

: "${top_builddir:=.}"
prog=$top_builddir/tests/hs_nosys
guard=$top_builddir/tests/.libs/hs_guard.so
limit=60

skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (unshare -m, mount)"
for t in unshare taskset timeout mount; do
	command -v "$t" >/dev/null 2>&1 || skip "no $t"
done
[ -x "$prog" ] || { echo "FAIL: $prog not built"; exit 1; }
# Not built without shared libraries (--disable-shared): nothing to
# preload, and the test is about the default build anyway.
[ -f "$guard" ] || skip "$guard not built (no shared libraries)"
taskset -c 1 true 2>/dev/null || skip "no CPU 1 to run on (fewer than 2 CPUs)"
unshare -m sh -c 'mount -t tmpfs none /sys/devices/system/cpu' 2>/dev/null ||
	skip "cannot mount in a new mount namespace"

fail=0

# Control: the same program with the real /sys and /proc.
echo "== control: $prog"
timeout -s KILL $limit "$prog"
rc=$?
if [ $rc -ne 0 ]; then
	echo "FAIL: control run exited $rc"
	fail=1
fi

# One run per update method the library may pick (default: rseq where the
# kernel has it; atomic by environment).
for method in default atomic; do
	echo "== hidden /sys/devices/system/cpu and /proc, taskset -c 1," \
		"method $method"
	if [ $method = default ]; then set -- ; else
		set -- PCPU_UPDATE_METHOD=$method; fi
	timeout -s KILL $limit unshare -m sh -c '
		guard=$1; prog=$2; shift 2
		mount -t tmpfs none /sys/devices/system/cpu || exit 77
		mount -t tmpfs none /proc || exit 77
		exec taskset -c 1 env LD_PRELOAD="$guard" "$@" "$prog"
	' sh "$guard" "$prog" "$@"
	rc=$?
	case $rc in
	0)	;;
	77)	skip "mount failed inside the namespace" ;;
	137)	echo "FAIL: method $method: killed after ${limit}s (hang)"
		fail=1 ;;
	*)	if [ $rc -gt 128 ]; then
			echo "FAIL: method $method: killed by signal $((rc - 128))"
		else
			echo "FAIL: method $method: exit status $rc"
		fi
		fail=1 ;;
	esac
done
exit $fail
