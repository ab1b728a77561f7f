/* SPDX-License-Identifier: MIT */
/*
 * test_contexts.c - the calling contexts of libpcpu(7)'s CONTEXTS table.
 *
 * One test per "yes" cell group that no other suite covers:
 *
 *   signal      counter add/inc/dec/read/sum/compare/is_shared,
 *               pcpu_this_slot, pcpu_ptr and pcpu_cache_alloc(PCPU_NOWAIT)
 *               from a signal handler that interrupts the same thread's
 *               updates of the same counters; exact totals after.
 *   early       counter, area and cache calls from a constructor of
 *               priority 101, which runs before the library's own (this
 *               program links libpcpu statically: see tests/contexts.mk),
 *               and from a destructor after main().  The early results
 *               are recorded (in a child, so that a crash fails one
 *               test) and asserted by a test; the destructor exits with
 *               status 3 if its calls go wrong.
 *   rcu         counter, area and cache calls, pcpu_cache_free_rcu() and
 *               pcpu_cache_shrink() from a liburcu-bp call_rcu callback
 *               (on the call_rcu worker); pcpu_cache_destroy() there
 *               completes, waiting for a free of its own still pending
 *               (libpcpu's reclaim thread runs those, not the worker).
 *   fork        fork() in a loop while another thread updates counters
 *               and signal handlers on the forking thread update them
 *               with deltas that fold: no hang (bounded wait), the child
 *               can update and sum, the parent's total is exact.
 *   read-side   counter, area and cache calls (alloc, free, bulk, shrink,
 *               deactivate, stats) inside urcu_bp_read_lock().
 *
 * As everywhere in these suites: no ck_assert outside the main thread, no
 * loop without a deadline, no timing assertion.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <urcu/urcu-bp.h>

#define CTX_DEADLINE	20.0	/* seconds any wait below may take */

/* --- signal handlers ------------------------------------------------------ */

enum { SIG_DUAL, SIG_SHARED, SIG_LAZY, SIG_EAGER, SIG_NCOUNTERS };

static struct pcpu_counter sig_c[SIG_NCOUNTERS];
static struct pcpu_cache *sig_cache;
static void *sig_area;
static volatile sig_atomic_t sig_count;
static volatile sig_atomic_t sig_bad;	/* a check in the handler failed */
static void *volatile sig_objs[64];
static volatile sig_atomic_t sig_nobjs;
static unsigned sig_nr_slots;	/* pcpu_nr_slots() is not async-signal-safe */

static void sig_handler(int signo)
{
	int saved = errno;

	(void)signo;
	for (int i = 0; i < SIG_NCOUNTERS; i++) {
		pcpu_counter_add(&sig_c[i], 1000);	/* folds */
		pcpu_counter_inc(&sig_c[i]);
		pcpu_counter_dec(&sig_c[i]);
		pcpu_counter_inc(&sig_c[i]);
		/* Updates only go up: a sum below the handler's own share
		 * so far is wrong whatever else is in flight. */
		if (pcpu_counter_sum(&sig_c[i]) < (int64_t)(sig_count + 1) * 1001)
			sig_bad = 1;
		if (pcpu_counter_compare(&sig_c[i], -1) <= 0)
			sig_bad = 2;
		(void)pcpu_counter_read(&sig_c[i]);
	}
	if (pcpu_counter_is_shared(&sig_c[SIG_DUAL]) ||
	    !pcpu_counter_is_shared(&sig_c[SIG_LAZY]))
		sig_bad = 3;
	if (pcpu_this_slot() >= sig_nr_slots)
		sig_bad = 4;
	if (pcpu_ptr(sig_area, 0) != sig_area)
		sig_bad = 5;
	if (sig_nobjs < 64) {
		void *o = pcpu_cache_alloc(sig_cache, PCPU_NOWAIT);

		if (o)
			sig_objs[sig_nobjs++] = o;
		else if (errno != EAGAIN)
			sig_bad = 6;
	}
	sig_count++;
	errno = saved;
}

struct sig_sender {
	pthread_t target;
	int sent;		/* signals delivered (the handler ran) */
	int timed_out;
};

/* Interrupt @target 200 times, each time waiting for the handler. */
static void *sig_send_main(void *arg)
{
	struct sig_sender *ss = arg;
	double end = tu_now() + CTX_DEADLINE;

	for (int i = 0; i < 200; i++) {
		int before = sig_count;

		if (pthread_kill(ss->target, SIGUSR1) != 0)
			break;
		while (sig_count == before) {
			if (tu_now() > end) {
				ss->timed_out = 1;
				return NULL;
			}
			sched_yield();
		}
		ss->sent++;
	}
	return NULL;
}

START_TEST(test_signal_handler)
{
	static const unsigned policy[SIG_NCOUNTERS] = {
		PCPU_COUNTER_DUAL, PCPU_COUNTER_DUAL, PCPU_COUNTER_LAZY,
		PCPU_COUNTER_EAGER };
	struct sigaction sa, old;
	struct sig_sender ss = { .target = pthread_self() };
	pthread_t t;
	int64_t mine = 0;
	int i;

	for (i = 0; i < SIG_NCOUNTERS; i++)
		ck_assert_int_eq(pcpu_counter_init(&sig_c[i], 0, policy[i]), 0);
	ck_assert_int_eq(pcpu_counter_share(&sig_c[SIG_SHARED]), 0);
	sig_cache = pcpu_cache_create("ctx-signal", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(sig_cache);
	/* Fill this CPU's array so that PCPU_NOWAIT has something to take. */
	for (i = 0; i < 32; i++)
		pcpu_cache_free(sig_cache, pcpu_cache_alloc(sig_cache, 0));
	sig_area = pcpu_alloc(8, 8);
	ck_assert_ptr_nonnull(sig_area);
	sig_nr_slots = pcpu_nr_slots();
	sig_count = 0;
	sig_bad = 0;
	sig_nobjs = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, sig_send_main, &ss), 0);
	/* This thread owns the DUAL counter; the handler interrupts it
	 * in the middle of its own updates of the same counters. */
	{
		struct tu_budget b;

		tu_budget_start(&b, CTX_DEADLINE);
		while (sig_count < 200 && !ss.timed_out && tu_budget_left(&b)) {
			for (i = 0; i < SIG_NCOUNTERS; i++)
				pcpu_counter_add(&sig_c[i], i == 1 ? 7 : 1);
			mine++;
		}
	}
	pthread_join(t, NULL);
	ck_assert_int_eq(sigaction(SIGUSR1, &old, NULL), 0);

	ck_assert_msg(!ss.timed_out, "a handler did not run within %.0f s",
		      CTX_DEADLINE);
	ck_assert_int_eq(ss.sent, 200);
	ck_assert_int_eq(sig_count, 200);
	ck_assert_msg(sig_bad == 0, "check %d failed in the handler",
		      (int)sig_bad);
	for (i = 0; i < SIG_NCOUNTERS; i++) {
		int64_t want = mine * (i == 1 ? 7 : 1) + 200 * 1001;

		ck_assert_int_eq(pcpu_counter_sum(&sig_c[i]), want);
		pcpu_counter_destroy(&sig_c[i]);
	}
	for (i = 0; i < sig_nobjs; i++)
		pcpu_cache_free(sig_cache, sig_objs[i]);
	ck_assert_int_eq(pcpu_cache_destroy(sig_cache), 0);
	pcpu_free(sig_area);
}
END_TEST

/* --- before main (ahead of the library's constructor) and after -------- */

struct early_res {
	int ran;
	int before;		/* the library's constructor had not run */
	int dual_init, lazy_init;
	int64_t dual_sum, lazy_sum;
	int area_ok, cache_ok;
	unsigned slots;
};
static struct early_res early;
static int early_child_status = -1;	/* wait status of the child below */
static struct pcpu_counter early_c;	/* kept to the destructor */
static int early_c_ok;
static int64_t early_expect;

/* Every call, as the first calls into the library in this process. */
static void early_ops(struct early_res *r)
{
	struct pcpu_counter dual, lazy;
	struct pcpu_cache *cache;
	void *area, *obj;

	r->ran = 1;
	/* Not API: the run-time state the library's constructor fills in. */
	r->before = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED) == 0;
	r->dual_init = pcpu_counter_init(&dual, 40, PCPU_COUNTER_DUAL);
	if (r->dual_init == 0) {
		pcpu_counter_add(&dual, 2);
		r->dual_sum = pcpu_counter_sum(&dual);
		pcpu_counter_destroy(&dual);
	}
	r->lazy_init = pcpu_counter_init(&lazy, 0, PCPU_COUNTER_LAZY);
	if (r->lazy_init == 0) {
		pcpu_counter_add(&lazy, 300);
		pcpu_counter_inc(&lazy);
		r->lazy_sum = pcpu_counter_sum(&lazy);
		pcpu_counter_destroy(&lazy);
	}
	area = pcpu_alloc(16, 0);
	r->area_ok = area != NULL && pcpu_ptr(area, 0) == area;
	pcpu_free(area);
	cache = pcpu_cache_create("ctx-early", 32, 0, NULL, NULL, NULL, 0);
	if (cache) {
		obj = pcpu_cache_alloc(cache, 0);
		pcpu_cache_free(cache, obj);
		r->cache_ok = obj != NULL && pcpu_cache_destroy(cache) == 0;
	}
	r->slots = pcpu_nr_slots();
}

/*
 * Before libpcpu's constructor.  The calls run first in a child (forked
 * here, so the library is just as unprepared there), which reports
 * through a pipe: a crash costs that test, not the whole suite.  Only if
 * the child got through does this process make the counter it keeps
 * until its destructor.
 */
__attribute__((constructor(101))) static void early_ctor(void)
{
	int fd[2], st;
	pid_t pid;

	if (pipe(fd) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		struct early_res r;
		ssize_t w;

		memset(&r, 0, sizeof(r));
		close(fd[0]);
		early_ops(&r);
		w = write(fd[1], &r, sizeof(r));
		_exit(w == (ssize_t)sizeof(r) ? 0 : 1);
	}
	close(fd[1]);
	if (pid > 0) {
		if (read(fd[0], &early, sizeof(early)) != (ssize_t)sizeof(early))
			memset(&early, 0, sizeof(early));
		if (waitpid(pid, &st, 0) == pid)
			early_child_status = st;
	}
	close(fd[0]);
	if (early_child_status == 0 &&
	    __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED) == 0 &&
	    pcpu_counter_init(&early_c, 40, PCPU_COUNTER_DUAL) == 0) {
		pcpu_counter_add(&early_c, 2);
		early_expect = 42;
		early_c_ok = 1;
	}
}

static void early_fail(const char *msg)
{
	ssize_t r = write(2, msg, strlen(msg));

	(void)r;
	_exit(3);
}

/* After main() returns (and in every child Check forks, as it exits). */
__attribute__((destructor(101))) static void late_dtor(void)
{
	struct pcpu_counter c;
	void *area;

	if (!early_c_ok)
		return;
	pcpu_counter_add(&early_c, 5);
	if (pcpu_counter_sum(&early_c) != early_expect + 5)
		early_fail("test_contexts: destructor: wrong sum\n");
	pcpu_counter_destroy(&early_c);
	if (pcpu_counter_init(&c, 1, PCPU_COUNTER_LAZY) != 0)
		early_fail("test_contexts: destructor: init failed\n");
	pcpu_counter_add(&c, 1000);
	if (pcpu_counter_sum(&c) != 1001)
		early_fail("test_contexts: destructor: wrong LAZY sum\n");
	pcpu_counter_destroy(&c);
	area = pcpu_alloc(8, 0);
	if (!area)
		early_fail("test_contexts: destructor: pcpu_alloc failed\n");
	pcpu_free(area);
}

START_TEST(test_before_library_constructor)
{
	ck_assert_msg(WIFEXITED(early_child_status) &&
		      WEXITSTATUS(early_child_status) == 0,
		      "calls before the library constructor: the child %s %d",
		      WIFSIGNALED(early_child_status) ? "died of signal" :
		      "exited with", WIFSIGNALED(early_child_status) ?
		      WTERMSIG(early_child_status) :
		      WEXITSTATUS(early_child_status));
	ck_assert_msg(early.ran, "the priority-101 constructor did not run");
	ck_assert_msg(early.before, "libpcpu's constructor ran first: this "
		      "test did not test anything (is it linked statically?)");
	ck_assert_int_eq(early.dual_init, 0);
	ck_assert_int_eq(early.dual_sum, 42);
	ck_assert_int_eq(early.lazy_init, 0);
	ck_assert_int_eq(early.lazy_sum, 301);
	ck_assert_msg(early.area_ok, "pcpu_alloc/pcpu_ptr before the library "
		      "constructor");
	ck_assert_msg(early.cache_ok, "cache create/alloc/free/destroy before "
		      "the library constructor");
	ck_assert_uint_eq(early.slots, pcpu_nr_slots());
	/* The counter this process made early works normally now. */
	ck_assert(early_c_ok);
	pcpu_counter_add(&early_c, 3);
	early_expect += 3;
	ck_assert_int_eq(pcpu_counter_sum(&early_c), early_expect);
}
END_TEST

/* --- on the call_rcu worker ---------------------------------------------- */

struct rcu_job {
	struct rcu_head head;
	struct pcpu_counter *shared;	/* made by the test thread */
	struct pcpu_cache *cache;
	struct pcpu_cache *dying;
	int destroy_rc;
	/* Results, read by the test thread after done (acquire). */
	int64_t shared_sum, own_sum;
	int own_init, area_ok, alloc_ok, bulk_ok, stats_ok, deactivate_rc;
	size_t shrunk;
	int done;
};

static void rcu_job_cb(struct rcu_head *head)
{
	struct rcu_job *j = caa_container_of(head, struct rcu_job, head);
	struct pcpu_counter own;
	struct pcpu_cache_stats st;
	void *area, *obj, *objs[8];

	/* A counter of another thread: the worker's update upgrades it. */
	pcpu_counter_add(j->shared, 5);
	pcpu_counter_add(j->shared, 400);
	j->shared_sum = pcpu_counter_sum(j->shared);
	j->own_init = pcpu_counter_init(&own, 0, PCPU_COUNTER_DUAL);
	if (j->own_init == 0) {
		pcpu_counter_add(&own, 9);
		(void)pcpu_counter_share(&own);
		pcpu_counter_add(&own, 1);
		j->own_sum = pcpu_counter_sum(&own);
		pcpu_counter_destroy(&own);
	}
	area = pcpu_alloc(64, 64);
	j->area_ok = area != NULL;
	pcpu_free(area);
	obj = pcpu_cache_alloc(j->cache, 0);
	j->alloc_ok = obj != NULL;
	if (obj)
		pcpu_cache_free(j->cache, obj);
	j->bulk_ok = pcpu_cache_alloc_bulk(j->cache, 0, 8, objs) == 8;
	if (j->bulk_ok) {
		pcpu_cache_free_bulk(j->cache, 4, objs);
		/* From a callback: a new grace period, not this one. */
		for (int i = 4; i < 8; i++)
			pcpu_cache_free_rcu(j->cache, objs[i]);
	}
	j->shrunk = pcpu_cache_shrink(j->cache);
	j->stats_ok = pcpu_cache_stats(j->cache, &st) == 0;
	if (j->dying) {
		j->deactivate_rc = pcpu_cache_deactivate(j->dying);
		/* Waiting for the worker's own callbacks would never end. */
		j->destroy_rc = pcpu_cache_destroy(j->dying);
	}
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
}

/* Wait for @flag with a deadline; true if it was set. */
static bool ctx_wait(int *flag)
{
	double end = tu_now() + CTX_DEADLINE;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (tu_now() > end)
			return false;
		usleep(1000);
	}
	return true;
}

START_TEST(test_rcu_callback)
{
	static struct rcu_job j;
	struct pcpu_counter shared;

	memset(&j, 0, sizeof(j));
	ck_assert_int_eq(pcpu_counter_init(&shared, 100, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_inc(&shared);
	j.shared = &shared;
	j.cache = pcpu_cache_create("ctx-rcu", 48, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(j.cache);
	urcu_bp_call_rcu(&j.head, rcu_job_cb);
	ck_assert_msg(ctx_wait(&j.done), "the callback did not finish in %.0f s",
		      CTX_DEADLINE);
	ck_assert_int_eq(j.shared_sum, 506);
	ck_assert_int_eq(pcpu_counter_sum(&shared), 506);
	ck_assert_int_eq(j.own_init, 0);
	ck_assert_int_eq(j.own_sum, 10);
	ck_assert(j.area_ok);
	ck_assert(j.alloc_ok);
	ck_assert(j.bulk_ok);
	ck_assert(j.stats_ok);
	/* The callback's pcpu_cache_free_rcu() objects come back. */
	ck_assert_int_eq(pcpu_cache_destroy(j.cache), 0);
	pcpu_counter_destroy(&shared);
}
END_TEST

/*
 * Destroy from a call_rcu callback, with one of the cache's own RCU frees
 * still pending: libpcpu's frees wait on its own reclaim thread, not on
 * liburcu's worker, so the destroy completes (it waits for that free)
 * instead of hanging in urcu_bp_barrier() or failing.
 */
START_TEST(test_rcu_callback_destroy)
{
	static struct rcu_job j;
	struct pcpu_counter shared;
	void *obj;

	memset(&j, 0, sizeof(j));
	ck_assert_int_eq(pcpu_counter_init(&shared, 100, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_inc(&shared);
	j.shared = &shared;
	j.cache = pcpu_cache_create("ctx-rcu", 48, 0, NULL, NULL, NULL, 0);
	j.dying = pcpu_cache_create("ctx-dying", 48, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(j.cache);
	ck_assert_ptr_nonnull(j.dying);
	/* A free still pending when the callback tries to destroy. */
	obj = pcpu_cache_alloc(j.dying, 0);
	ck_assert_ptr_nonnull(obj);
	pcpu_cache_free_rcu(j.dying, obj);
	urcu_bp_call_rcu(&j.head, rcu_job_cb);
	ck_assert_msg(ctx_wait(&j.done), "pcpu_cache_destroy() on the call_rcu "
		      "worker did not return in %.0f s", CTX_DEADLINE);
	ck_assert_int_eq(j.deactivate_rc, 0);
	ck_assert_int_eq(j.destroy_rc, 0);
	ck_assert_int_eq(pcpu_cache_destroy(j.cache), 0);
	pcpu_counter_destroy(&shared);
}
END_TEST

/* --- fork while others update -------------------------------------------- */

static struct pcpu_counter fork_c;
static volatile sig_atomic_t fork_sigs;

static void fork_sig_handler(int signo)
{
	(void)signo;
	pcpu_counter_add(&fork_c, 300);		/* folds */
	pcpu_counter_inc(&fork_c);
	fork_sigs++;
}

struct fork_state {
	pthread_t forker;
	int stop;		/* atomic */
	int forker_done;	/* atomic */
	int updater_done;	/* atomic */
	int signaller_done;	/* atomic */
	int64_t updates;	/* the updater's adds of 1 */
	int forks, child_fail, child_hung, fork_err;
};

static void *fork_updater_main(void *arg)
{
	struct fork_state *fs = arg;

	while (!__atomic_load_n(&fs->stop, __ATOMIC_ACQUIRE)) {
		pcpu_counter_inc(&fork_c);
		fs->updates++;
	}
	__atomic_store_n(&fs->updater_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *fork_signaller_main(void *arg)
{
	struct fork_state *fs = arg;

	while (!__atomic_load_n(&fs->forker_done, __ATOMIC_ACQUIRE)) {
		pthread_kill(fs->forker, SIGUSR2);
		usleep(50);
	}
	__atomic_store_n(&fs->signaller_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *forker_main(void *arg)
{
	struct fork_state *fs = arg;

	for (int i = 0; i < 40; i++) {
		pid_t pid = fork();
		int st;
		double end;

		if (pid < 0) {
			fs->fork_err = errno;
			break;
		}
		if (pid == 0) {
			/* The child: one thread; its counter is its own. */
			int64_t before = pcpu_counter_sum(&fork_c);
			void *area;

			pcpu_counter_add(&fork_c, 1000);
			area = pcpu_alloc(8, 0);
			pcpu_free(area);
			_exit(before > 0 && area != NULL &&
			      pcpu_counter_sum(&fork_c) == before + 1000 ? 0 : 1);
		}
		/* A child does almost nothing: 5 s means it hangs. */
		end = tu_now() + 5;
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (tu_now() > end) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				fs->child_hung++;
				break;
			}
			usleep(500);
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fs->child_fail++;
		fs->forks++;
		if (fs->child_hung)
			break;
	}
	__atomic_store_n(&fs->forker_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

START_TEST(test_fork_while_updating)
{
	static struct fork_state fs;
	struct sigaction sa, old;
	pthread_t upd, sig;
	bool done;

	memset(&fs, 0, sizeof(fs));
	fork_sigs = 0;
	ck_assert_int_eq(pcpu_counter_init(&fork_c, 1, PCPU_COUNTER_DUAL), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fork_sig_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);

	ck_assert_int_eq(pthread_create(&upd, NULL, fork_updater_main, &fs), 0);
	ck_assert_int_eq(pthread_create(&fs.forker, NULL, forker_main, &fs), 0);
	ck_assert_int_eq(pthread_create(&sig, NULL, fork_signaller_main, &fs), 0);
	done = ctx_wait(&fs.forker_done);
	__atomic_store_n(&fs.stop, 1, __ATOMIC_RELEASE);
	/* A hung thread would hang its join: fail first. */
	ck_assert_msg(done, "fork() hung while other threads and signal "
		      "handlers updated counters (%d forks done)", fs.forks);
	ck_assert_msg(ctx_wait(&fs.updater_done), "an update hung after the "
		      "forks (%lld updates done)", (long long)fs.updates);
	ck_assert_msg(ctx_wait(&fs.signaller_done), "the signalling thread "
		      "hung");
	pthread_join(fs.forker, NULL);
	pthread_join(sig, NULL);
	pthread_join(upd, NULL);
	ck_assert_int_eq(sigaction(SIGUSR2, &old, NULL), 0);

	ck_assert_int_eq(fs.fork_err, 0);
	ck_assert_msg(fs.child_hung == 0, "a child hung (fork %d of 40)",
		      fs.forks);
	ck_assert_int_eq(fs.forks, 40);
	ck_assert_int_eq(fs.child_fail, 0);
	ck_assert_int_eq(pcpu_counter_sum(&fork_c),
			 1 + fs.updates + (int64_t)fork_sigs * 301);
	pcpu_counter_destroy(&fork_c);
}
END_TEST

/* --- inside a liburcu-bp read-side critical section ---------------------- */

START_TEST(test_read_side)
{
	struct pcpu_counter c, d;
	struct pcpu_cache *cache, *dying;
	struct pcpu_cache_stats st;
	void *objs[16], *area, *obj;

	urcu_bp_read_lock();
	ck_assert_int_eq(pcpu_counter_init(&c, 0, PCPU_COUNTER_DUAL), 0);
	ck_assert_int_eq(pcpu_counter_init(&d, 0, PCPU_COUNTER_LAZY), 0);
	pcpu_counter_add(&c, 3);
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	pcpu_counter_add(&c, 500);
	pcpu_counter_add(&d, 7);
	ck_assert_int_eq(pcpu_counter_sum(&c), 503);
	ck_assert_int_eq(pcpu_counter_compare(&d, 7), 0);
	pcpu_counter_reset(&c);
	pcpu_counter_set(&d, 1);
	ck_assert_int_eq(pcpu_counter_sum(&c) + pcpu_counter_read(&d), 1);
	pcpu_counter_destroy(&c);
	pcpu_counter_destroy(&d);
	area = pcpu_alloc(32, 0);
	ck_assert_ptr_nonnull(area);
	pcpu_free(area);

	cache = pcpu_cache_create("ctx-read", 40, 0, NULL, NULL, NULL, 0);
	dying = pcpu_cache_create("ctx-read-dying", 40, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(cache);
	ck_assert_ptr_nonnull(dying);
	obj = pcpu_cache_alloc(cache, 0);
	ck_assert_ptr_nonnull(obj);
	pcpu_cache_free(cache, obj);
	ck_assert_uint_eq(pcpu_cache_alloc_bulk(cache, 0, 16, objs), 16);
	pcpu_cache_free_bulk(cache, 16, objs);
	ck_assert_uint_gt(pcpu_cache_shrink(cache), 0);
	obj = pcpu_cache_alloc(dying, 0);
	ck_assert_ptr_nonnull(obj);
	ck_assert_int_eq(pcpu_cache_deactivate(dying), 0);
	pcpu_cache_free(dying, obj);
	ck_assert_int_eq(pcpu_cache_stats(dying, &st), 0);
	ck_assert_uint_eq(st.in_use, 0);
	urcu_bp_read_unlock();

	/* pcpu_cache_destroy() waits for grace periods: outside. */
	ck_assert_int_eq(pcpu_cache_destroy(cache), 0);
	ck_assert_int_eq(pcpu_cache_destroy(dying), 0);
}
END_TEST

static Suite *contexts_suite(void)
{
	Suite *s = suite_create("contexts");
	TCase *tc;

	tc = tu_tcase(s, "signal", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_signal_handler);
	tc = tu_tcase(s, "early", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_before_library_constructor);
	tc = tu_tcase(s, "rcu_callback", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_rcu_callback);
	tcase_add_test(tc, test_rcu_callback_destroy);
	tc = tu_tcase(s, "fork", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_fork_while_updating);
	tc = tu_tcase(s, "read_side", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_read_side);
	return s;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* nothing buffered at fork() */
	return tu_main(contexts_suite());
}
