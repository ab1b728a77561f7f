/* SPDX-License-Identifier: MIT */
/*
 * tests/test_tumix.c - two kinds of translation unit adding to one counter.
 *
 * A program may mix TUs whose inline pcpu_counter_add() uses the rseq asm
 * with TUs that have none (built with -fsanitize=thread, or any TU for
 * which <pcpu/counter.h> leaves PCPU__HAVE_RSEQ_ASM undefined): the latter
 * update slots with compare-and-swap.  An rseq update of a slot is a plain
 * load and store on the slot's own CPU; a CAS from a thread that read the
 * CPU number and then migrated lands on that slot from another CPU, and
 * the rseq store can overwrite it: a lost update.  The library must keep
 * such mixes exact (or refuse them).
 *
 * Threads: one per CPU (the first two CPUs we may run on) pinned there,
 * adding 1 through this TU (rseq when the method is rseq); CAS threads
 * adding 1 through tests/test_tumix_cas.c while the main thread flips
 * their affinity between the two CPUs (sched_setaffinity) with a short
 * sleep between flips, so they migrate at random points.  Every thread
 * counts its own adds; after joining, the LAZY counter's sum must equal
 * their total.  Lost updates are rare (about one per second of this load
 * on a 2-CPU VM, 1-3 in 1.1e9 adds in the original reproducer), so the
 * run is long enough to expect several:
 *
 *   PCPU_TUMIX_FLIPS        affinity flips (default 30000, ~8 s here)
 *   PCPU_TUMIX_CAS_THREADS  migrating CAS threads (default 1, at most 8)
 *
 * Exit 0 exact, 1 lost or extra updates, 77 (skip) with fewer than two
 * CPUs to run on.  Bounded by alarm(); no ck_assert, no timing assertion.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pcpu.h>

#include "test_tumix.h"

#define MAX_CAS	8
#define CHUNK	1000

static struct pcpu_counter c;
static int stop;
static int cpu_a, cpu_b;

struct rec {
	pid_t tid;
	unsigned long adds;
	long cpu;		/* pinned CPU, or -1 */
	int pin_err;
} __attribute__((aligned(64)));

static struct rec cas[MAX_CAS], pinned[2];

static void *cas_thread(void *arg)
{
	struct rec *r = arg;

	__atomic_store_n(&r->tid, (pid_t)syscall(SYS_gettid),
			 __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		tumix_cas_add(&c, CHUNK);
		r->adds += CHUNK;
	}
	return NULL;
}

static void *pinned_thread(void *arg)
{
	struct rec *r = arg;
	cpu_set_t s;
	unsigned i;

	CPU_ZERO(&s);
	CPU_SET((int)r->cpu, &s);
	r->pin_err = sched_setaffinity(0, sizeof(s), &s);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < CHUNK; i++)
			pcpu_counter_add(&c, 1);
		r->adds += CHUNK;
	}
	return NULL;
}

static long env_long(const char *name, long def, long lo, long hi)
{
	const char *v = getenv(name);
	char *end;
	long x;

	if (!v || !*v)
		return def;
	x = strtol(v, &end, 10);
	if (*end || x < lo || x > hi) {
		fprintf(stderr, "test_tumix: ignoring %s=%s\n", name, v);
		return def;
	}
	return x;
}

int main(void)
{
	long flips = env_long("PCPU_TUMIX_FLIPS", 30000, 1, 1000000000L);
	int ncas = (int)env_long("PCPU_TUMIX_CAS_THREADS", 1, 1, MAX_CAS);
	pthread_t tc[MAX_CAS], tp[2];
	cpu_set_t all, sa, sb;
	unsigned long want = 0;
	int64_t got;
	long k;
	int i, n;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (sched_getaffinity(0, sizeof(all), &all) != 0) {
		perror("sched_getaffinity");
		return 1;
	}
	for (cpu_a = cpu_b = -1, i = 0, n = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &all)) {
			if (n++ == 0)
				cpu_a = i;
			else
				cpu_b = i;
		}
	if (n < 2) {
		printf("SKIP: fewer than two CPUs to migrate between\n");
		return 77;
	}
	/* Generous: the flips sleep ~50-300 us each on a busy 2-CPU box. */
	alarm((unsigned)(120 + flips / 100));

	printf("test_tumix: method %s, %u slots, CPUs %d/%d, %ld flips, "
	       "%d CAS thread(s)\n", pcpu_update_method(), pcpu_nr_slots(),
	       cpu_a, cpu_b, flips, ncas);
	if (pcpu_counter_init(&c, 0, PCPU_COUNTER_LAZY) != 0) {
		printf("FAIL: pcpu_counter_init\n");
		return 1;
	}
	pinned[0].cpu = cpu_a;
	pinned[1].cpu = cpu_b;
	for (i = 0; i < 2; i++)
		if (pthread_create(&tp[i], NULL, pinned_thread, &pinned[i])) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	for (i = 0; i < ncas; i++) {
		cas[i].cpu = -1;
		if (pthread_create(&tc[i], NULL, cas_thread, &cas[i])) {
			printf("FAIL: pthread_create\n");
			return 1;
		}
	}
	for (i = 0; i < ncas; i++)
		while (!__atomic_load_n(&cas[i].tid, __ATOMIC_ACQUIRE))
			sched_yield();

	CPU_ZERO(&sa);
	CPU_SET(cpu_a, &sa);
	CPU_ZERO(&sb);
	CPU_SET(cpu_b, &sb);
	for (k = 0; k < flips; k++) {
		for (i = 0; i < ncas; i++)
			(void)sched_setaffinity(cas[i].tid, sizeof(sa),
						((k + i) & 1) ? &sb : &sa);
		usleep(20);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < 2; i++)
		pthread_join(tp[i], NULL);
	for (i = 0; i < ncas; i++)
		pthread_join(tc[i], NULL);

	for (i = 0; i < 2; i++) {
		if (pinned[i].pin_err)
			printf("note: could not pin a thread to CPU %ld\n",
			       pinned[i].cpu);
		want += pinned[i].adds;
	}
	for (i = 0; i < ncas; i++)
		want += cas[i].adds;
	got = pcpu_counter_sum(&c);
	printf("test_tumix: adds %lu (rseq TU %lu + %lu, CAS TU", want,
	       pinned[0].adds, pinned[1].adds);
	for (i = 0; i < ncas; i++)
		printf(" %lu", cas[i].adds);
	printf("), sum %lld, lost %lld\n", (long long)got,
	       (long long)((int64_t)want - got));
	pcpu_counter_destroy(&c);
	if (got != (int64_t)want) {
		printf("FAIL: the counter lost %lld update(s) between the "
		       "rseq TU and the CAS TU\n",
		       (long long)((int64_t)want - got));
		return 1;
	}
	printf("test_tumix: ok\n");
	return 0;
}
