#!/bin/sh
# Shared set-up for tests/run and bench/run: install what a fresh Debian
# machine lacks (when root), bootstrap, configure and build in $BUILD_DIR.
# Sourced, not run: sets $SRC_DIR and $BUILD_DIR for the caller.
set -eu

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-"$SRC_DIR/_build"}

# Installed for this machine's architecture (or arch all): a bare name also
# matches a foreign one, and tests/cross-aarch64.sh installs check:arm64 and
# liburcu-dev:arm64, which would otherwise pass for check and liburcu-dev.
pcpu_need_pkgs() {
	missing=""
	native=$(dpkg --print-architecture)
	for p in "$@"; do
		dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
			grep -qE "ok installed ($native|all)\$" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "missing packages:$missing (install them, then run again)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

pcpu_need_pkgs build-essential autoconf automake libtool pkg-config \
	check libbenchmark-dev g++ mandoc gnuplot-nox liburcu-dev ${PCPU_EXTRA_PKGS:-}

if [ ! -x "$SRC_DIR/configure" ] || [ "$SRC_DIR/configure.ac" -nt "$SRC_DIR/configure" ]; then
	(cd "$SRC_DIR" && autoreconf -fi >/dev/null)
fi
mkdir -p "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/Makefile" ]; then
	(cd "$BUILD_DIR" && "$SRC_DIR/configure" ${PCPU_CONFIGURE_FLAGS:-} >/dev/null)
fi
make -C "$BUILD_DIR" -s -j"$(nproc)"
