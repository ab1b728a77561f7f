/* SPDX-License-Identifier: MIT */
/*
 * tests/attack_atfork_order.c - DEFECT (check-attack): an application
 * atfork handler registered before libpcpu's deadlocks fork().
 *
 * The application registers prepare = lock(L) and only then dlopen()s
 * libpcpu (a plugin), so libpcpu's prepare (allocator mutex) runs first.
 * A thread that takes L and then creates/destroys an EAGER counter waits
 * for the mutex the forking thread holds, which waits for L.  Exit 1 on
 * the deadlock (watchdog), 0 after 2000 forks.  Argument "after": the
 * control, the application registers after dlopen() (passes).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PCPU_SO
# define PCPU_SO "libpcpu.so.0"
#endif

struct counter { long w[4]; };
static int (*c_init)(struct counter *, long, unsigned);
static void (*c_destroy)(struct counter *);
static pthread_mutex_t L = PTHREAD_MUTEX_INITIALIZER;

static void prep(void) { pthread_mutex_lock(&L); }
static void rel(void) { pthread_mutex_unlock(&L); }

static void *thr(void *a)
{
	struct counter c;

	(void)a;
	for (;;) {
		pthread_mutex_lock(&L);
		if (c_init(&c, 0, 1u /* PCPU_COUNTER_EAGER */) == 0)
			c_destroy(&c);
		pthread_mutex_unlock(&L);
		sched_yield();
	}
	return NULL;
}

static void watchdog(int s)
{
	static const char m[] = "FAIL: fork() deadlocked (libpcpu's prepare "
				"took the allocator mutex before the "
				"application's took L)\n";
	(void)s;
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(1);
	_exit(1);
}

int main(int argc, char **argv)
{
	int after = argc > 1 && strcmp(argv[1], "after") == 0, k;
	const char *so = getenv("PCPU_SO") ? getenv("PCPU_SO") : PCPU_SO;
	pthread_t t;
	void *h;

	signal(SIGALRM, watchdog);
	alarm(30);
	if (!after)
		pthread_atfork(prep, rel, rel);
	if (!(h = dlopen(so, RTLD_NOW))) {
		fprintf(stderr, "SKIP: %s\n", dlerror());
		return 77;
	}
	if (after)
		pthread_atfork(prep, rel, rel);
	c_init = (int (*)(struct counter *, long, unsigned))dlsym(h, "pcpu_counter_init");
	c_destroy = (void (*)(struct counter *))dlsym(h, "pcpu_counter_destroy");
	if (!c_init || !c_destroy)
		return 2;
	pthread_create(&t, NULL, thr, NULL);
	for (k = 0; k < 2000; k++) {
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		waitpid(p, NULL, 0);
	}
	printf("ok: 2000 forks (application handler %s libpcpu's)\n",
	       after ? "after" : "before");
	return 0;
}
