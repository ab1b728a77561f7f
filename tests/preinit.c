/* SPDX-License-Identifier: MIT */
/*
 * tests/preinit.c - tests/early.c's checks, run from the executable's
 * .preinit_array: before the constructors of every shared object, so
 * before a shared libpcpu's constructor (tests/repro.mk builds this one
 * against the shared library, and a second time statically).
 */
#define EARLY_PREINIT 1
#include "early.c"
