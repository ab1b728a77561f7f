/* SPDX-License-Identifier: MIT */
/*
 * lib/cpu.c - slots and the CPU number.
 *
 * A slot is the index of one copy in a per-CPU area.  There are
 * pcpu__rt.nr_slots of them: the number of possible CPUs by default, so
 * that every CPU the kernel may ever run us on has its own copy.
 *
 * The CPU number comes from the rseq area glibc (2.35 and later) registers
 * for every thread: the kernel writes the current CPU into its cpu_id field
 * on every return to user space, so reading it is one load, far cheaper
 * than getcpu().  Whether glibc registered is a run-time fact: the
 * __rseq_size symbol (weak here, so that older glibc links and runs) is 0
 * when registration is disabled (GLIBC_TUNABLES=glibc.pthread.rseq=0) or
 * failed.  Without it sched_getcpu() answers.
 *
 * Invariants:
 *  1. pcpu__rt is set up by the library constructor, before main() or
 *     dlopen() returns, and again idempotently by pcpu__init() for callers
 *     that run before constructors (another constructor).
 *  2. pcpu__rt.rseq_off and .method are written once, during set-up, and
 *     read-only afterwards.
 *  3. pcpu__rt.nr_slots is written only by set-up and by
 *     pcpu__alloc_set_nr_slots() under the allocator lock while no area is
 *     live (alloc.c), so it is constant for the life of any area.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc 2.35+: where its struct rseq is, and whether it registered one. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

PCPU_API struct pcpu__rt pcpu__rt;

static unsigned pcpu_default_slots;
static pthread_once_t pcpu_once = PTHREAD_ONCE_INIT;

static const char *const pcpu_method_names[] = {
	[PCPU__METHOD_ATOMIC] = "atomic",
};

/* Highest CPU number in a list such as "0-3,8,10-11", plus one; 0 if none. */
static unsigned parse_cpu_list(const char *s)
{
	unsigned long max = 0, v;
	char *end;
	int any = 0;

	while (*s && *s != '\n') {
		v = strtoul(s, &end, 10);
		if (end == s)
			return 0;
		if (*end == '-') {
			s = end + 1;
			v = strtoul(s, &end, 10);
			if (end == s)
				return 0;
		}
		if (v + 1 > max)
			max = v + 1;
		any = 1;
		s = end;
		if (*s == ',')
			s++;
	}
	if (!any || max > 1u << 30)
		return 0;
	return (unsigned)max;
}

static unsigned possible_cpus(void)
{
	char buf[4096];
	unsigned n = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f))
			n = parse_cpu_list(buf);
		fclose(f);
	}
	if (n == 0) {
		long c = sysconf(_SC_NPROCESSORS_CONF);

		n = c > 0 ? (unsigned)c : 1;
	}
	return n;
}

static void pcpu_setup(void)
{
	const char *env = getenv("PCPU_NR_SLOTS");
	unsigned n = possible_cpus();

	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);

		/* A malformed or out-of-range value is ignored. */
		if (*end == '\0' && v >= 1 && v <= PCPU_MAX_SLOTS)
			n = (unsigned)v;
	}
	if (n > PCPU_MAX_SLOTS)
		n = PCPU_MAX_SLOTS;
	pcpu_default_slots = n;
	/* Relaxed: published to other threads by pthread_once() or by the
	 * constructor running before any thread of the process can call us. */
	__atomic_store_n(&pcpu__rt.nr_slots, n, __ATOMIC_RELAXED);

	pcpu__rt.method = PCPU__METHOD_ATOMIC;
	pcpu__rt.rseq_off = 0;
	if (&__rseq_size && &__rseq_offset && __rseq_size >= 20 &&
	    __rseq_offset != 0) {
		/* Registered: this thread's cpu_id must be a real CPU now. */
		int32_t cpu = *(volatile int32_t *)(pcpu__tp() + __rseq_offset + 4);

		if (cpu >= 0)
			pcpu__rt.rseq_off = (long)__rseq_offset;
	}
}

void pcpu__init(void)
{
	pthread_once(&pcpu_once, pcpu_setup);
}

__attribute__((constructor)) static void pcpu_ctor(void)
{
	pcpu__init();
}

unsigned pcpu__default_nr_slots(void)
{
	pcpu__init();
	return pcpu_default_slots;
}

PCPU_API unsigned pcpu__cpu_slow(void)
{
	int cpu = sched_getcpu();

	return cpu >= 0 ? (unsigned)cpu : 0;
}

PCPU_API unsigned pcpu_nr_slots(void)
{
	pcpu__init();
	return __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
}

PCPU_API int pcpu_set_nr_slots(unsigned n)
{
	if (n == 0 || n > PCPU_MAX_SLOTS)
		return -EINVAL;
	pcpu__init();
	return pcpu__alloc_set_nr_slots(n);
}

PCPU_API unsigned pcpu_this_slot(void)
{
	pcpu__init();
	return pcpu__slot_of(pcpu__cpu());
}

PCPU_API const char *pcpu_update_method(void)
{
	pcpu__init();
	return pcpu_method_names[pcpu__rt.method];
}
