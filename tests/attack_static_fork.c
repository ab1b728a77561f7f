/* SPDX-License-Identifier: MIT */
/*
 * tests/attack_static_fork.c - DEFECT (check-attack): statically linked,
 * libpcpu registers no pthread_atfork() handlers.
 *
 * lib/fork.c defines no global symbol, so a static link never pulls its
 * object out of libpcpu.a: its constructor (the pthread_atfork() call)
 * is gone, and with it the child's allocator-mutex release, the lazy slot
 * word reset and the counters' journal repair.  Here one thread churns
 * pcpu_alloc()/pcpu_free(); the child of a fork() that caught it holding
 * the mutex hangs in its own pcpu_alloc().  Exit 1 when a child hung
 * (killed by its alarm), 0 after 200 good forks.
 */
#define _GNU_SOURCE
#include <pcpu.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int stop;

static void *churn(void *a)
{
	(void)a;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		pcpu_free(pcpu_alloc(64, 8));
	return NULL;
}

int main(void)
{
	pthread_t t;
	int hung = 0, k, st;

	alarm(120);
	pthread_create(&t, NULL, churn, NULL);
	for (k = 0; k < 200 && !hung; k++) {
		pid_t p = fork();

		if (p == 0) {
			alarm(2);
			pcpu_free(pcpu_alloc(64, 8));
			_exit(0);
		}
		waitpid(p, &st, 0);
		hung = WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	printf("%s after %d forks\n", hung ?
	       "FAIL: fork child hung in pcpu_alloc (allocator mutex held)" :
	       "ok", k);
	return hung;
}
