# tests/headers.mk: included by Makefile.am (issue 12).
#
# tests/check-headers.sh compiles translation units that include the
# public headers (<pcpu.h>, each <pcpu/*.h> alone, <pcpu.hpp>) with
# -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Werror
# as C99, C11, C17 (gcc, clang-14) and C++17 (g++, clang++-14).  It needs
# no Check and no library build, so it runs in every configuration;
# compilers that are not installed make it SKIP (exit 77).
TESTS += tests/check-headers.sh
EXTRA_DIST += tests/check-headers.sh
