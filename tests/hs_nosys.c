/* SPDX-License-Identifier: MIT */
/*
 * tests/hs_nosys.c - the program tests/hidden-sysfs.sh runs where the
 * machine's CPU count cannot be read (tmpfs over /sys/devices/system/cpu
 * and /proc), pinned to CPU 1: the library then believes in fewer slots
 * than the CPU number it runs on, and every slot index must be bounded.
 *
 * Prints pcpu_nr_slots() and pcpu_update_method(), then counts with LAZY,
 * EAGER and shared DUAL counters (from this thread and from worker
 * threads), writes its own slot of a pcpu_alloc() area, and allocates and
 * frees cache objects.  Exit 0 if every total is exact, 1 otherwise; a
 * crash (the guard page of tests/hs_guard.c) fails the test too.
 * Assertions run in the main thread after the workers are joined.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcpu.h>

#define NTHREADS	4
#define NADDS		100000

static struct pcpu_counter lazy, eager, dual;
static unsigned fails;

#define CHECK(expr, ...)						\
	do {								\
		if (!(expr)) {						\
			fails++;					\
			printf("FAIL: %s: ", #expr);			\
			printf(__VA_ARGS__);				\
			printf("\n");					\
		}							\
	} while (0)

static void adds(long n)
{
	long i;

	for (i = 0; i < n; i++) {
		pcpu_counter_add(&lazy, 1);
		pcpu_counter_add(&eager, 1);
		pcpu_counter_add(&dual, 1);
		if (i % 100 == 0) {		/* folds too */
			pcpu_counter_add(&lazy, 300);
			pcpu_counter_add(&eager, -300);
			pcpu_counter_add(&dual, 300);
		}
	}
}

static void *worker(void *arg)
{
	(void)arg;
	adds(NADDS);
	return NULL;
}

/* The expected totals after adds(n) calls summing to n adds in all. */
static int64_t want(int64_t n, int64_t calls_hundreds, int sign)
{
	return n + sign * 300 * calls_hundreds;
}

int main(void)
{
	pthread_t t[NTHREADS];
	struct pcpu_cache *k;
	void *objs[256];
	long *area;
	unsigned n, s, i, round;
	int64_t n_adds, n_folds;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* lines out before a crash */
	n = pcpu_nr_slots();
	printf("hs_nosys: pcpu_nr_slots()=%u pcpu_update_method()=%s "
	       "pcpu_this_slot()=%u sched_getcpu()=%d\n", n,
	       pcpu_update_method(), pcpu_this_slot(), sched_getcpu());
	CHECK(n >= 1 && n <= PCPU_MAX_SLOTS, "nr_slots %u", n);
	CHECK(pcpu_this_slot() < n, "this_slot %u of %u", pcpu_this_slot(), n);

	CHECK(pcpu_counter_init(&lazy, 0, PCPU_COUNTER_LAZY) == 0, "init");
	CHECK(pcpu_counter_init(&eager, 0, PCPU_COUNTER_EAGER) == 0, "init");
	CHECK(pcpu_counter_init(&dual, 0, PCPU_COUNTER_DUAL) == 0, "init");
	CHECK(pcpu_counter_share(&dual) == 0, "share");

	adds(1000);
	n_adds = 1000;
	n_folds = 10;
	printf("hs_nosys: 1000 adds on one thread: lazy %lld eager %lld "
	       "dual %lld (want %lld, %lld, %lld)\n",
	       (long long)pcpu_counter_sum(&lazy),
	       (long long)pcpu_counter_sum(&eager),
	       (long long)pcpu_counter_sum(&dual),
	       (long long)want(n_adds, n_folds, 1),
	       (long long)want(n_adds, n_folds, -1),
	       (long long)want(n_adds, n_folds, 1));

	for (i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0, "create");
	for (i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	n_adds += (int64_t)NTHREADS * NADDS;
	n_folds += (int64_t)NTHREADS * (NADDS / 100);

	CHECK(pcpu_counter_sum(&lazy) == want(n_adds, n_folds, 1),
	      "LAZY sum %lld want %lld", (long long)pcpu_counter_sum(&lazy),
	      (long long)want(n_adds, n_folds, 1));
	CHECK(pcpu_counter_sum(&eager) == want(n_adds, n_folds, -1),
	      "EAGER sum %lld want %lld", (long long)pcpu_counter_sum(&eager),
	      (long long)want(n_adds, n_folds, -1));
	CHECK(pcpu_counter_sum(&dual) == want(n_adds, n_folds, 1),
	      "DUAL sum %lld want %lld", (long long)pcpu_counter_sum(&dual),
	      (long long)want(n_adds, n_folds, 1));
	CHECK(pcpu_counter_compare(&lazy, want(n_adds, n_folds, 1)) == 0,
	      "LAZY compare");
	printf("hs_nosys: counters after %u threads: lazy %lld eager %lld "
	       "dual %lld\n", NTHREADS, (long long)pcpu_counter_sum(&lazy),
	       (long long)pcpu_counter_sum(&eager),
	       (long long)pcpu_counter_sum(&dual));

	area = pcpu_alloc(sizeof(long), sizeof(long));
	CHECK(area != NULL, "pcpu_alloc");
	if (area) {
		s = pcpu_this_slot();
		CHECK(s < n, "this_slot %u of %u", s, n);
		if (s < n)
			*(long *)pcpu_ptr(area, s) = 42;
		pcpu_free(area);
	}

	k = pcpu_cache_create("hs", 64, 0, NULL, NULL, NULL, 0);
	CHECK(k != NULL, "pcpu_cache_create");
	for (round = 0; k && round < 20; round++) {
		for (i = 0; i < 256; i++) {
			objs[i] = pcpu_cache_alloc(k, 0);
			CHECK(objs[i] != NULL, "alloc %u", i);
			if (objs[i])
				memset(objs[i], (int)i, 64);
		}
		for (i = 0; i < 256; i++)
			pcpu_cache_free(k, objs[i]);
	}
	if (k) {
		struct pcpu_cache_stats st;

		CHECK(pcpu_cache_stats(k, &st) == 0, "stats");
		printf("hs_nosys: cache alloc/free done\n");
		CHECK(pcpu_cache_destroy(k) == 0, "pcpu_cache_destroy");
	}
	pcpu_counter_destroy(&lazy);
	pcpu_counter_destroy(&eager);
	pcpu_counter_destroy(&dual);
	printf("hs_nosys: %s (%u failures)\n", fails ? "FAIL" : "ok", fails);
	return fails ? 1 : 0;
}
