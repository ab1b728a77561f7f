/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/repro-read-overflow.c - found by fuzz_ops (seed-int64-edges):
 * pcpu_counter_read() overflowed, and pcpu_counter_compare() returned the
 * wrong sign, for a counter whose value is in int64 range but within
 * (PCPU_COUNTER_BATCH - 1) * touched slots of INT64_MAX (or INT64_MIN).
 * Fixed (read() sums the slots that close to a limit); kept as the record
 * of what the fuzzer found, and it must now pass.  test_lazy's
 * read_near_limits is the regression test in make check.
 *
 * read() is own + shared + fold, computed modulo 2^64 (lib/counter.c,
 * pcpu_counter_read()).  Those parts alone can leave int64 while the slots
 * hold the difference: below, slot A holds -200 and a fold from slot B
 * moved +257 into the fold word, so the value is INT64_MAX - 43 but
 * own + fold is INT64_MAX + 157, which wraps to INT64_MIN + 156.
 * compare() then takes that read() as "far from rhs" (its fast path,
 * pcpu_counter_compare() "d > bound || d < -bound") and answers -1 for
 * compare(c, 0) although the value is positive.  Needs two CPUs (two
 * touched slots); not built by default:
 *
 *   cc -std=gnu11 -Iinclude -I_build -pthread \
 *      tests/fuzz/repro-read-overflow.c lib/cpu.c lib/alloc.c \
 *      lib/counter.c lib/cache.c -lurcu-bp -o /tmp/repro
 *   /tmp/repro        # prints the values and aborts on the bug
 */
#define _GNU_SOURCE
#include <pcpu.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static struct pcpu_counter c;
static int cpus[2];

struct job {
	int cpu;
	int64_t delta;
};

static void *adder(void *p)
{
	struct job *j = p;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(j->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) {
		fprintf(stderr, "cannot pin to CPU %d\n", j->cpu);
		exit(2);
	}
	sched_yield();
	pcpu_counter_add(&c, j->delta);
	return NULL;
}

static void run(int cpu, int64_t delta)
{
	struct job j = { cpu, delta };
	pthread_t t;

	pthread_create(&t, NULL, adder, &j);
	pthread_join(t, NULL);
}

int main(void)
{
	cpu_set_t all;
	int n = 0, i;
	int64_t sum, read;
	int cmp;

	sched_getaffinity(0, sizeof(all), &all);
	for (i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &all))
			cpus[n++] = i;
	if (n < 2) {
		fprintf(stderr, "needs two CPUs\n");
		return 2;
	}
	if (pcpu_counter_init(&c, INT64_MAX - 100, PCPU_COUNTER_LAZY))
		return 2;
	run(cpus[0], -200);		/* slot A: -200, no fold */
	run(cpus[1], PCPU_COUNTER_BATCH + 1);	/* slot B: folds +257 */
	sum = pcpu_counter_sum(&c);
	read = pcpu_counter_read(&c);
	cmp = pcpu_counter_compare(&c, 0);
	printf("sum %lld (INT64_MAX - %lld), read %lld, compare(c, 0) %d\n",
	       (long long)sum, (long long)(INT64_MAX - sum), (long long)read,
	       cmp);
	fflush(stdout);
	if (sum != INT64_MAX - 43)
		return 2;		/* not the setup we wanted */
	if (cmp != 1 || read < sum - 2 * (PCPU_COUNTER_BATCH - 1)) {
		fprintf(stderr, "BUG: read() is not within the documented "
			"bound of sum(), compare(c, 0) should be 1\n");
		abort();
	}
	pcpu_counter_destroy(&c);
	return 0;
}
