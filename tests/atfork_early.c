/* SPDX-License-Identifier: MIT */
/*
 * tests/atfork_early.c - an application registers liburcu-bp's fork hooks
 * with pthread_atfork() from a constructor that runs before libpcpu's
 * set-up, and forks.
 *
 * Linked statically (tests/repro.mk), so that our constructor(101) runs
 * before libpcpu's and our handlers are registered first: at fork() our
 * prepare handler (urcu_bp_before_fork()) runs after libpcpu's.  libpcpu's
 * prepare used to call urcu_bp_before_fork() itself in any program (it
 * saw the signals still unblocked), and ours then called it a second
 * time: the first fork() waited forever on liburcu's own lock (the review
 * found it 3 runs in 3).  libpcpu calls liburcu's hooks only once
 * pcpu_cache_free_rcu() has been used, so a program that uses counters,
 * areas and caches without RCU frees forks here.  (One that uses RCU
 * frees must register such handlers after libpcpu's set-up, or call the
 * hooks around fork() directly: pcpu_cache_free_rcu(3).)
 *
 * urcu_bp_before_fork() blocks every signal, so alarm() cannot bound a
 * hang: a watchdog thread _exit()s with status 3 instead.  Exit status 0
 * when every fork returned and every child did its work.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <urcu/urcu-bp.h>

#include <pcpu.h>

#define FORKS		50
#define WATCHDOG_S	30

__attribute__((constructor(101))) static void app_init(void)
{
	if (pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent,
			   urcu_bp_after_fork_child))
		abort();
}

static void *watchdog(void *unused)
{
	(void)unused;
	sleep(WATCHDOG_S);
	fprintf(stderr, "atfork_early: fork() hung\n");
	_exit(3);
}

/* Counters, a lazy area and a cache (no RCU frees) in the child. */
static int child_work(struct pcpu_counter *c, struct pcpu_cache *k)
{
	int64_t *a = pcpu_alloc_lazy(8, 8);
	void *o = pcpu_cache_alloc(k, 0);
	int i;

	if (!a || !o)
		return 10;
	for (i = 0; i < 1000; i++) {
		pcpu_counter_add(c, 1);
		pcpu_area_add(a, 2);
	}
	pcpu_cache_free(k, o);
	if (pcpu_area_sum(a) != 2000)
		return 11;
	pcpu_free(a);
	return 0;
}

int main(void)
{
	struct pcpu_counter c;
	struct pcpu_cache *k;
	int i, status, bad = 0;
	int64_t want = 0;
	pthread_t t;
	void *o;
	pid_t pid;

	if (pthread_create(&t, NULL, watchdog, NULL))
		return 2;
	if (pcpu_counter_init(&c, 0, PCPU_COUNTER_LAZY))
		return 2;
	k = pcpu_cache_create("early", 64, 0, NULL, NULL, NULL, 0);
	if (!k)
		return 2;
	for (i = 0; i < FORKS; i++) {
		pcpu_counter_add(&c, 1);
		want++;
		o = pcpu_cache_alloc(k, 0);
		pid = fork();
		if (pid == 0)
			_exit(child_work(&c, k));
		pcpu_cache_free(k, o);
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "atfork_early: fork %d: child status "
				"0x%x\n", i, pid < 0 ? -1 : status);
			bad++;
		}
	}
	if (pcpu_counter_sum(&c) != want) {
		fprintf(stderr, "atfork_early: sum %lld, want %lld\n",
			(long long)pcpu_counter_sum(&c), (long long)want);
		bad++;
	}
	pcpu_counter_destroy(&c);
	if (pcpu_cache_destroy(k) != 0)
		bad++;
	printf("atfork_early: %d forks, %s\n", FORKS, bad ? "FAILED" : "ok");
	return bad ? 1 : 0;
}
