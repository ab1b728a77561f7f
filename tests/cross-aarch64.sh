#!/bin/sh
# The test suite cross-built for aarch64 and run under qemu-user:
#   sh tests/cross-aarch64.sh
# On Debian 12 amd64 as root it first installs what it needs (the arm64
# architecture, the cross compiler, qemu-user, arm64 Check and liburcu);
# otherwise those must be there already.  Then it bootstraps if needed,
# configures $BUILD_DIR (default _build-aarch64) for aarch64-linux-gnu with
# static libpcpu only, so that the test programs are aarch64 executables
# rather than libtool wrapper scripts, builds, and runs `make check` with
# every test program started by qemu-aarch64.  Exits nonzero if any test
# fails.
#
# Environment: BUILD_DIR; PCPU_CONFIGURE_FLAGS (more configure options,
# .ci/run sets --enable-werror); PCPU_STRESS_SECONDS (each stress loop,
# 0.2 s by default here: emulation is slow, and the point of this run is
# another architecture, not more stress).
set -eu

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-"$SRC_DIR/_build-aarch64"}
HOST=aarch64-linux-gnu
# No -L /usr/aarch64-linux-gnu: with it qemu takes the cross toolchain's
# dynamic loader (libc6-arm64-cross) while the loader finds libc.so.6 at
# its multiarch path, /lib/aarch64-linux-gnu, installed by libc6:arm64
# (which Check and liburcu need) -- two glibc builds mixed, and on
# Debian 12 the first fork() in a child hangs.  Without -L, loader, libc,
# liburcu and Check all come from the arm64 packages.  timeout: a test
# program that hangs under emulation (Check's own timeout did not end the
# hang above) fails after 5 minutes instead of using up the CI job.
RUNNER="timeout -k 10 300 qemu-aarch64"
start=$(date +%s)
step() { printf '\n=== [%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

# --- packages -------------------------------------------------------------
# qemu-user without its recommended qemu-user-binfmt: in a container there
# is no binfmt_misc anyway, and elsewhere it would change how programs
# that exec aarch64 binaries behave between machines.
# libc6-dev-arm64-cross is only a Recommends of the cross compiler, so
# --no-install-recommends leaves it out, and without its crt files and
# libc.so the compiler "cannot create executables": name it.
pkgs="gcc-$HOST g++-$HOST libc6-dev-arm64-cross qemu-user libc6:arm64 libstdc++6:arm64 check:arm64
	libsubunit-dev:arm64 liburcu-dev:arm64 autoconf automake libtool make
	pkg-config mandoc file"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
		|| missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "missing packages:$missing (install them as root, or run this as root)" >&2
		exit 1
	fi
	step "installing:$missing"
	dpkg --print-foreign-architectures | grep -qx arm64 ||
		dpkg --add-architecture arm64
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # a list of package names
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# --- bootstrap and configure ----------------------------------------------
# shellcheck disable=SC3013 # -nt: dash and bash have it
if [ ! -x "$SRC_DIR/configure" ] || [ "$SRC_DIR/configure.ac" -nt "$SRC_DIR/configure" ]; then
	step "autoreconf -fi"
	(cd "$SRC_DIR" && autoreconf -fi >/dev/null)
fi

# pkg-config for the target: Debian's triplet-prefixed wrapper when it is
# installed (pkgconf:arm64); otherwise the build machine's pkg-config
# reading only the arm64 .pc files.
if command -v "$HOST-pkg-config" >/dev/null 2>&1; then
	set -- PKG_CONFIG="$HOST-pkg-config"
else
	set -- PKG_CONFIG=pkg-config \
		PKG_CONFIG_LIBDIR="/usr/lib/$HOST/pkgconfig:/usr/share/pkgconfig"
fi
mkdir -p "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/Makefile" ]; then
	step "configure --host=$HOST --disable-shared ${PCPU_CONFIGURE_FLAGS:-}"
	# shellcheck disable=SC2086 # options
	(cd "$BUILD_DIR" && "$SRC_DIR/configure" --host="$HOST" \
		--disable-shared ${PCPU_CONFIGURE_FLAGS:-} "$@" >/dev/null)
fi

# --- build ----------------------------------------------------------------
step "build (library, check programs)"
jobs=$(nproc)
make -C "$BUILD_DIR" -s -j"$jobs"
# check with no tests: builds the check programs (its empty summary, on
# stdout, is dropped; errors still show).
make -C "$BUILD_DIR" -s -j"$jobs" check TESTS= >/dev/null
file "$BUILD_DIR/tests/test_cpu" | grep -q 'ARM aarch64' || {
	echo "tests/test_cpu is not an aarch64 executable:" >&2
	file "$BUILD_DIR/tests/test_cpu" >&2
	exit 1
}

# --- run ------------------------------------------------------------------
method=$($RUNNER "$BUILD_DIR/tests/print-method")
step "update method under qemu-aarch64: $method"

# qemu-user's own defect, shown by a program without libpcpu: a fork()
# child of a multi-threaded process that starts a thread aborts inside
# qemu.  When the probe fails, the cases whose fork child starts a thread
# say "skipped" (PCPU_TEST_NO_FORK_THREAD); they run in every native step.
"$HOST-gcc" -O1 -pthread -o "$BUILD_DIR/tests/qemu-fork-thread" \
	"$SRC_DIR/tests/qemu-fork-thread.c"
if $RUNNER "$BUILD_DIR/tests/qemu-fork-thread"; then
	unset PCPU_TEST_NO_FORK_THREAD
else
	step "qemu-aarch64 cannot start a thread in a fork child: those cases skip"
	PCPU_TEST_NO_FORK_THREAD=1
	export PCPU_TEST_NO_FORK_THREAD
fi

PCPU_STRESS_SECONDS=${PCPU_STRESS_SECONDS:-0.2}
# The library has rseq sequences for x86-64 only: an aarch64 build must
# take the atomic method whatever the emulator or kernel offers, and
# test_cpu and test_lazy assert it in the default run (all-methods.sh sets
# its own expectation for each of its runs).
PCPU_EXPECT_METHOD=atomic
# all-methods.sh puts PCPU_TEST_RUNNER in front of each program it runs.
PCPU_TEST_RUNNER=$RUNNER
export PCPU_STRESS_SECONDS PCPU_EXPECT_METHOD PCPU_TEST_RUNNER

step "make check under $RUNNER (stress loops ${PCPU_STRESS_SECONDS}s)"
# LOG_COMPILER starts the test programs; the .sh tests keep the shell.
if ! make -C "$BUILD_DIR" -j"$jobs" check LOG_COMPILER="$RUNNER"; then
	for log in "$BUILD_DIR"/tests/*.log "$BUILD_DIR"/tests/examples/*.log; do
		[ -f "$log" ] || continue
		grep -qE '^(FAIL|ERROR)' "${log%.log}.trs" 2>/dev/null || continue
		echo "===== $log"
		tail -n 60 "$log"
	done
	step "aarch64: FAILED"
	exit 1
fi
# What could not run under emulation says so in its log: show it here.
skips=$(cd "$BUILD_DIR" && grep -h 'skipped' tests/*.log 2>/dev/null | sort -u) || true
if [ -n "$skips" ]; then
	echo "skipped under qemu-aarch64 (from the test logs):"
	echo "$skips" | sed 's/^/  /'
fi
step "aarch64: passed (update method: $method)"
