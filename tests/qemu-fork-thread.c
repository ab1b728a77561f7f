/* SPDX-License-Identifier: MIT */
/*
 * tests/qemu-fork-thread.c - does the emulator let a fork() child of a
 * multi-threaded process start a thread?  No libpcpu here: qemu-user 7.2
 * (Debian 12) aborts that child inside its own code ("cpu_exec: assertion
 * failed: (cpu == current_cpu)", exit status 127).  tests/cross-aarch64.sh
 * runs this first and, when it fails, tells the test cases whose fork
 * child starts a thread (libpcpu's RCU reclaimer, liburcu's call_rcu
 * worker) to say "skipped" under that emulator; they run everywhere else.
 * Exit 0: it works; 1: it does not.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t, u;
	pid_t pid;
	int st;

	if (pthread_create(&t, NULL, idle, NULL))
		return 1;
	pid = fork();
	if (pid == 0) {
		alarm(10);
		if (pthread_create(&u, NULL, noop, NULL) ||
		    pthread_join(u, NULL))
			_exit(2);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	printf("fork child of a multi-threaded process starting a thread: "
	       "%s (status 0x%x)\n", st == 0 ? "works" : "fails", st);
	return st == 0 ? 0 : 1;
}
