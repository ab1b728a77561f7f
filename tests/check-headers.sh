#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-headers.sh - the public headers compile warning-free under strict
# flags, as C and as C++, so that programs built with -Werror can include
# them.
#
# For every compiler of the list, every language standard and every
# translation unit below, compile (-c, no link) with
#   -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Werror
#   C:    gcc, clang-14        -std=c99, -std=c11, -std=c17
#   C++:  g++, clang++-14      -std=c++17
# and -O0 and -O2 (some warnings need the optimizer's view of the inline
# functions).  Translation units:
#   all      <pcpu.h>, calling every inline function of the headers
#   pcpu/X.h each public header alone, first (it must be self-contained)
#   hpp      <pcpu.hpp> (C++ only), every member of pcpu::counter
#
# Compilers come from PCPU_HDR_CC (C) and PCPU_HDR_CXX (C++), default
# "gcc clang-14" and "g++ clang++-14".  A compiler that is not installed
# is skipped; if any was skipped and nothing failed the exit status is 77
# (automake's SKIP), so a missing compiler never passes for a clean
# result.  Exit status: 0 pass, 1 a warning or error, 77 skipped.
#
# Run by "make check" with top_srcdir in the environment; by hand:
#   top_srcdir=. sh tests/check-headers.sh

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
inc=$top_srcdir/include
cc_list=${PCPU_HDR_CC-gcc clang-14}
cxx_list=${PCPU_HDR_CXX-g++ clang++-14}
flags="-Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Werror"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pcpu-hdr.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Every inline entry point of the headers, with argument types a careful
# program would use, so that the compiler checks their bodies as callers
# see them.
cat >"$tmp/all.c" <<'EOF'
#include <pcpu.h>

int pcpu_hdr_use(struct pcpu_counter *c, void *area);

int pcpu_hdr_use(struct pcpu_counter *c, void *area)
{
	struct pcpu_cache_stats st;
	int64_t delta = -3;

	pcpu_counter_add(c, delta);
	pcpu_counter_add(c, 1000000);
	pcpu_counter_inc(c);
	pcpu_counter_dec(c);
	(void)pcpu_cache_stats(NULL, &st);
	return (int)pcpu_this_slot() + (pcpu_ptr(area, 0) != NULL) +
	       (int)pcpu_counter_is_shared(c);
}
EOF
cp "$tmp/all.c" "$tmp/all.cc"

cat >"$tmp/hpp.cc" <<'EOF'
#include <pcpu.hpp>
#include <utility>

std::int64_t pcpu_hdr_use_hpp();

std::int64_t pcpu_hdr_use_hpp()
{
	pcpu::counter a;
	pcpu::counter b(5, PCPU_COUNTER_LAZY);

	a.add(-2);
	a.inc();
	a.dec();
	(void)a.share();
	pcpu::counter c(std::move(a));
	a = std::move(b);
	c.set(1);
	c.reset();
	return c.read() + c.sum() + c.compare(0) + c.is_shared() +
	       a.valid() + (c.native() != nullptr);
}
EOF

for h in "$inc"/pcpu/*.h; do
	n=$(basename "$h" .h)
	printf '#include <pcpu/%s.h>\nint pcpu_hdr_%s;\n' "$n" "$n" \
		>"$tmp/only-$n.c"
	cp "$tmp/only-$n.c" "$tmp/only-$n.cc"
done

status=0
skipped=""
ran=0

# compile LANG-COMPILER STD FILE...
try() {
	comp=$1 std=$2
	shift 2
	for f in "$@"; do
		for opt in -O0 -O2; do
			if ! "$comp" -std="$std" $opt $flags -I"$inc" \
				-c "$f" -o "$tmp/out.o" >"$tmp/log" 2>&1; then
				printf 'check-headers: FAIL: %s -std=%s %s %s\n' \
					"$comp" "$std" "$opt" "$(basename "$f")" >&2
				sed 's/^/    /' "$tmp/log" >&2
				status=1
			else
				ran=$((ran + 1))
			fi
		done
	done
}

for comp in $cc_list; do
	if ! command -v "$comp" >/dev/null 2>&1; then
		skipped="$skipped $comp"
		continue
	fi
	for std in c99 c11 c17; do
		try "$comp" "$std" "$tmp/all.c" "$tmp"/only-*.c
	done
done
for comp in $cxx_list; do
	if ! command -v "$comp" >/dev/null 2>&1; then
		skipped="$skipped $comp"
		continue
	fi
	try "$comp" c++17 "$tmp/all.cc" "$tmp/hpp.cc" "$tmp"/only-*.cc
done

echo "check-headers: $ran compilations clean"
if [ -n "$skipped" ]; then
	echo "check-headers: not installed, skipped:$skipped"
	[ "$status" -eq 0 ] && exit 77
fi
exit "$status"
