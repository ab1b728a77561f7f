/* SPDX-License-Identifier: MIT */
/*
 * tests/test_rcuhang.c - pcpu_cache_free_rcu() and liburcu-bp: no hangs.
 *
 *  destroy_in_callback
 *      pcpu_cache_destroy() called from an RCU callback (liburcu's call_rcu
 *      worker) while the cache still has a partial batch of
 *      pcpu_cache_free_rcu() frees.  Waiting there for the cache's pending
 *      callbacks (urcu_bp_barrier()) would wait for the worker that runs
 *      it.  It must return at once: -EDEADLK (then the application destroys
 *      the cache from an ordinary thread, which must succeed) or 0 (the
 *      library deferred or finished the work itself).
 *  app_fork_hooks
 *      the application calls liburcu-bp's fork hooks itself, as liburcu's
 *      README says an application using call_rcu must
 *      (urcu_bp_call_rcu_before_fork(), urcu_bp_before_fork(), and the
 *      after_fork_parent/child pairs), after pcpu_cache_free_rcu() made
 *      libpcpu a call_rcu user.  libpcpu must not call them a second time
 *      around the same fork (that waits forever); the child must be able
 *      to use the cache, free_rcu included.
 *
 * Each case is bounded: a watchdog thread says which stage hung after
 * CASE_SECONDS and _exit()s (Check reports the early exit), waits poll a
 * flag with a bounded loop, children arm alarm() and report through the
 * exit status; assertions run in the test's main thread only.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <urcu/urcu-bp.h>

#include <pcpu.h>

#define CASE_SECONDS	20
#define CHILD_SECONDS	10
#define EXIT_HANG	70

static const char *volatile stage = "start";

static void say_hang(void)
{
	const char *s = stage;
	static const char pre[] = "rcuhang watchdog: hang in ";
	ssize_t r;

	r = write(2, pre, sizeof(pre) - 1);
	r = write(2, s, strlen(s));
	r = write(2, "\n", 1);
	(void)r;
}

/* In children: alarm(), whose handler says where it hung. */
static void on_alarm(int sig)
{
	(void)sig;
	say_hang();
	_exit(EXIT_HANG);
}

/*
 * In the test process: a thread, not a signal.  liburcu-bp's
 * urcu_bp_before_fork() blocks every signal in the calling thread until
 * the after-fork hook, so a second, nested call would hang deaf to alarm().
 */
static int watchdog_off;

static void *watchdog_thread(void *arg)
{
	unsigned tenths = (unsigned)(unsigned long)arg * 10;

	while (tenths-- > 0) {
		usleep(100000);
		if (__atomic_load_n(&watchdog_off, __ATOMIC_ACQUIRE))
			return NULL;
	}
	say_hang();
	_exit(EXIT_HANG);
}

static void watchdog(unsigned seconds)
{
	struct sigaction sa;
	pthread_t t;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	__atomic_store_n(&watchdog_off, 0, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_create(&t, NULL, watchdog_thread,
					(void *)(unsigned long)seconds), 0);
	ck_assert_int_eq(pthread_detach(t), 0);
}

static void watchdog_stop(void)
{
	__atomic_store_n(&watchdog_off, 1, __ATOMIC_RELEASE);
}

/* --- destroy from an RCU callback -------------------------------------- */

static struct pcpu_cache *cb_cache;
static struct rcu_head cb_head;
static int cb_ret;
static int cb_done;

static void destroy_cb(struct rcu_head *h)
{
	(void)h;
	__atomic_store_n(&cb_ret, pcpu_cache_destroy(cb_cache),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&cb_done, 1, __ATOMIC_RELEASE);
}

START_TEST(destroy_in_callback)
{
	void *o;
	int i, r;

	watchdog(CASE_SECONDS);
	stage = "setup";
	cb_cache = pcpu_cache_create("cbdestroy", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(cb_cache);
	o = pcpu_cache_alloc(cb_cache, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free_rcu(cb_cache, o);	/* pending in a partial batch */
	cb_done = 0;
	urcu_bp_call_rcu(&cb_head, destroy_cb);

	stage = "waiting for the callback that calls pcpu_cache_destroy()";
	for (i = 0; i < 10000 && !__atomic_load_n(&cb_done, __ATOMIC_ACQUIRE);
	     i++)
		usleep(1000);			/* at most ~10 s */
	ck_assert_msg(__atomic_load_n(&cb_done, __ATOMIC_ACQUIRE),
		      "pcpu_cache_destroy() called from an RCU callback did "
		      "not return within 10 s (it waits for the call_rcu "
		      "worker that runs it)");
	r = __atomic_load_n(&cb_ret, __ATOMIC_RELAXED);
	ck_assert_msg(r == -EDEADLK || r == 0,
		      "pcpu_cache_destroy() from an RCU callback returned %d "
		      "(want -EDEADLK, or 0 if it defers)", r);
	if (r == -EDEADLK) {
		stage = "pcpu_cache_destroy() after -EDEADLK";
		ck_assert_int_eq(pcpu_cache_destroy(cb_cache), 0);
	}
	stage = "urcu_bp_barrier()";
	urcu_bp_barrier();
	watchdog_stop();
}
END_TEST

/* --- the application's own liburcu fork hooks --------------------------- */

/* In the child: the cache still works, free_rcu and destroy included. */
static int child_uses_cache(struct pcpu_cache *c)
{
	void *objs[100];
	int i;

	for (i = 0; i < 100; i++) {
		objs[i] = pcpu_cache_alloc(c, 0);
		if (!objs[i])
			return 1;
		memset(objs[i], i, 64);
	}
	for (i = 0; i < 50; i++)
		pcpu_cache_free(c, objs[i]);
	/* free_rcu starts threads in the child (libpcpu's reclaimer,
	 * liburcu's worker): an emulator that cannot start a thread in a fork
	 * child (tests/qemu-fork-thread.c) stops here; the parent's fork()
	 * between the hooks, where the hang was, still runs. */
	if (getenv("PCPU_TEST_NO_FORK_THREAD")) {
		for (i = 50; i < 100; i++)
			pcpu_cache_free(c, objs[i]);
		return 0;
	}
	for (i = 50; i < 100; i++)
		pcpu_cache_free_rcu(c, objs[i]);
	stage = "child: urcu_bp_barrier()";
	urcu_bp_barrier();
	stage = "child: pcpu_cache_destroy()";
	return pcpu_cache_destroy(c) == 0 ? 0 : 2;
}

START_TEST(app_fork_hooks)
{
	struct pcpu_cache *c;
	unsigned nfail = 0, iter;
	int first_st = 0;
	void *o;

	watchdog(CASE_SECONDS);
	stage = "setup";
	c = pcpu_cache_create("urcufork", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(c);
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free_rcu(c, o);		/* libpcpu now uses call_rcu */

	for (iter = 0; iter < 20; iter++) {
		pid_t pid;
		int st;

		stage = "urcu_bp_call_rcu_before_fork() (the application's)";
		urcu_bp_call_rcu_before_fork();
		stage = "urcu_bp_before_fork() (the application's)";
		urcu_bp_before_fork();
		stage = "fork() between the application's liburcu fork hooks";
		pid = fork();
		if (pid == 0) {
			alarm(CHILD_SECONDS);
			stage = "child: after-fork hooks";
			urcu_bp_after_fork_child();
			urcu_bp_call_rcu_after_fork_child();
			stage = "child: using the cache";
			_exit(child_uses_cache(c));
		}
		stage = "parent: after-fork hooks";
		urcu_bp_after_fork_parent();
		urcu_bp_call_rcu_after_fork_parent();
		ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
		stage = "parent: waiting for the child";
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR) {
				st = -1;
				break;
			}
		if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			if (nfail++ == 0)
				first_st = st;
		}
		/* The parent keeps using RCU frees between forks. */
		stage = "parent: using the cache";
		o = pcpu_cache_alloc(c, 0);
		ck_assert_ptr_nonnull(o);
		pcpu_cache_free_rcu(c, o);
	}
	ck_assert_msg(nfail == 0,
		      "%u of 20 children failed; first: %s %d (exit %d = hang)",
		      nfail, WIFSIGNALED(first_st) ? "signal" : "exit status",
		      WIFSIGNALED(first_st) ? WTERMSIG(first_st) :
		      WEXITSTATUS(first_st), EXIT_HANG);
	stage = "parent: urcu_bp_barrier()";
	urcu_bp_barrier();
	stage = "parent: pcpu_cache_destroy()";
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	watchdog_stop();
}
END_TEST

static Suite *rcuhang_suite(void)
{
	Suite *s = suite_create("rcuhang");
	TCase *tc = tcase_create("rcuhang");

	tcase_set_timeout(tc, CASE_SECONDS + 10);
	tcase_add_test(tc, destroy_in_callback);
	tcase_add_test(tc, app_fork_hooks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rcuhang_suite());
	int failed;

	/* Hangs are the failure mode: one process per case, always. */
	srunner_set_fork_status(sr, CK_FORK);
	setvbuf(stdout, NULL, _IOLBF, 0);	/* nothing buffered at fork() */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
