/* SPDX-License-Identifier: MIT */
/*
 * tests/attack_share_handler.c - (check-attack) pcpu_counter_share() in a
 * signal handler that interrupts its own thread inside pcpu__lazy_alloc()
 * while that thread holds its slot word and the allocator mutex (a cache
 * refill): share() takes the mutex with wait=1 and self-deadlocks.
 * counter.h documents share() as not async-signal-safe, so this is the
 * documented limit, kept here so a fix (a per-thread "holds the allocator"
 * flag making nested share() try-only) can be shown.  The add-only
 * variant (argument "add": the upgrade by a non-owner's add, which only
 * tries the mutex) must pass.  Exit 1 on the deadlock (watchdog).
 */
#define _GNU_SOURCE
#include <pcpu.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 20000
static struct pcpu_counter dc[N];
static volatile int next, stop, use_share = 1;
static pthread_t ch;

static void handler(int s)
{
	int k = next;

	(void)s;
	if (k >= N)
		return;
	if (use_share)
		pcpu_counter_share(&dc[k]);
	pcpu_counter_add(&dc[k], 1000);
	next = k + 1;
}

static void *churn(void *a)
{
	struct pcpu_counter c[8];
	void *p[8];
	int i;

	(void)a;
	while (!stop) {
		for (i = 0; i < 8; i++) {
			pcpu_counter_init(&c[i], 0, PCPU_COUNTER_LAZY);
			pcpu_counter_add(&c[i], 1);
			p[i] = pcpu_alloc_lazy((size_t)64 << (i & 3), 8);
		}
		for (i = 0; i < 8; i++) {
			pcpu_counter_destroy(&c[i]);
			pcpu_free(p[i]);
		}
	}
	return NULL;
}

static void watchdog(int s)
{
	static const char m[] = "FAIL: deadlock (share in a handler)\n";

	(void)s;
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

int main(int argc, char **argv)
{
	struct timespec ts = { 0, 2000 };
	struct sigaction sa;
	int i, bad = 0;

	use_share = !(argc > 1 && strcmp(argv[1], "add") == 0);
	for (i = 0; i < N; i++) {
		pcpu_counter_init(&dc[i], 0, PCPU_COUNTER_DUAL);
		pcpu_counter_add(&dc[i], 1);
	}
	signal(SIGALRM, watchdog);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&ch, NULL, churn, NULL);
	alarm(30);
	while (next < N) {
		pthread_kill(ch, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	stop = 1;
	pthread_join(ch, NULL);
	for (i = 0; i < N; i++)
		bad += pcpu_counter_sum(&dc[i]) != 1001;
	printf("%s: %d upgrades in a handler, %d wrong\n",
	       use_share ? "share" : "add", N, bad);
	return bad != 0;
}
