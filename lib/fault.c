/* SPDX-License-Identifier: MIT */
/*
 * lib/fault.c - the fault-injection hook of the test library
 * (lib/libpcpu-fi.la, built with PCPU_FAULT_INJECTION; see fault.h).  The
 * release library compiles this file to nothing.
 *
 * State is four global words, all accessed with relaxed atomics: each is
 * a count or a flag on its own, nothing else is published through them.
 * A test arms, runs one operation and reads the results in one thread (or
 * joins the threads it used first, which orders everything).
 */
#include "internal.h"

#ifdef PCPU_FAULT_INJECTION

static unsigned long fault_at;		/* 0: disarmed */
static unsigned long fault_seen;	/* allocations since the arm */
static int fault_fired;
static long fault_live;			/* resources held */

int pcpu__fault_hit(void)
{
	unsigned long at = __atomic_load_n(&fault_at, __ATOMIC_RELAXED);
	unsigned long n;

	if (!at)
		return 0;
	n = __atomic_add_fetch(&fault_seen, 1, __ATOMIC_RELAXED);
	if (n != at)
		return 0;
	__atomic_store_n(&fault_fired, 1, __ATOMIC_RELAXED);
	return 1;
}

void pcpu__fault_track(long d)
{
	__atomic_fetch_add(&fault_live, d, __ATOMIC_RELAXED);
}

PCPU_API void pcpu__fault_arm(unsigned long k)
{
	/* Disarming keeps the results of the last arm for the test. */
	if (k == 0) {
		__atomic_store_n(&fault_at, 0, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&fault_seen, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_fired, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_at, k, __ATOMIC_RELAXED);
}

PCPU_API unsigned long pcpu__fault_seen(void)
{
	return __atomic_load_n(&fault_seen, __ATOMIC_RELAXED);
}

PCPU_API int pcpu__fault_fired(void)
{
	return __atomic_load_n(&fault_fired, __ATOMIC_RELAXED);
}

PCPU_API long pcpu__fault_live(void)
{
	return __atomic_load_n(&fault_live, __ATOMIC_RELAXED);
}

#else
/* ISO C forbids an empty translation unit. */
typedef int pcpu__fault_unused;
#endif
