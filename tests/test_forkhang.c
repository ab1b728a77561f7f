/* SPDX-License-Identifier: MIT */
/*
 * tests/test_forkhang.c - fork() against counter folds: no hang, and the
 * child's counters exact.
 *
 * A fold moves a slot's value into the counter's fold word with two
 * writes; fork() must not copy memory between them.  These cases fork
 * while folds are likely in flight, from every place a fold can be:
 *
 *  sigfork_*   one thread forks in a loop; an interval timer's signal
 *              handler adds to a counter (LAZY, EAGER, shared DUAL; a delta
 *              of 300, which always folds, and of 100, which folds every
 *              third add).  A handler that interrupts fork()'s prepare
 *              handlers must neither hang nor be lost.
 *  nested      the same, with the main thread folding too, so that the
 *              handler's fold nests inside the main thread's.
 *  foldfork    a worker holds an application mutex around folding adds;
 *              the application's own atfork prepare handler takes the same
 *              mutex and was registered BEFORE libpcpu's handlers (so it
 *              runs AFTER libpcpu's prepare handler: POSIX runs prepare
 *              handlers in reverse order of registration).  This binary is
 *              linked statically against libpcpu (libtool -static, see
 *              tests/repro.mk), so the constructor(101) below runs before
 *              libpcpu's own default-priority constructor, which is where
 *              libpcpu registers its handlers.  A shared libpcpu would run
 *              its constructor first and the order would be the harmless
 *              one.
 *  sighandler_fork
 *              fork() from a signal handler that interrupted the main
 *              thread's own folding add: the child's sum must be the value
 *              before or after that add, never a fold split in two.
 *  sighandler_fork_upgrade
 *              fork() from a signal handler that interrupted a DUAL
 *              counter's upgrade (a second thread's first update), which
 *              may hold the allocator mutex: no hang, and the child can
 *              still upgrade counters.
 *
 * Exactness: a single-threaded parent knows the counter's value at the
 * instant of fork() (the handler's count and the main thread's running
 * total are plain memory the child inherits), so each child compares
 * pcpu_counter_sum() with it, then folds more in the child and checks
 * again.  A child reports through its exit status; the parent records,
 * and asserts after the loop (never in a handler or a worker).
 *
 * Bounds: each case arms alarm(CASE_SECONDS); on expiry the handler
 * writes which stage hung and _exit()s, which Check reports as a failure
 * ("early exit").  Children arm alarm(CHILD_SECONDS) the same way and are
 * counted as failed.  tcase_set_timeout() backs both up.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#define CASE_SECONDS	20
#define CHILD_SECONDS	10
#define NFORKS		300
#define EXIT_HANG	70	/* watchdog fired */
#define EXIT_WRONG	71	/* a child's sum was wrong */

/* --- watchdog ------------------------------------------------------------ */

static const char *volatile stage = "start";
static volatile unsigned at_fork;	/* the loop's fork number */

static void say(const char *a, const char *b)
{
	ssize_t r;

	r = write(2, a, strlen(a));
	r = write(2, b, strlen(b));
	r = write(2, "\n", 1);
	(void)r;
}

static void on_watchdog(int sig)
{
	char num[16], *p = num + sizeof(num);
	unsigned n = at_fork;

	(void)sig;
	*--p = '\0';
	do
		*--p = (char)('0' + n % 10);
	while ((n /= 10) != 0);
	say("forkhang watchdog: hang in ", stage);
	say("forkhang watchdog: at fork number ", p);
	_exit(EXIT_HANG);
}

static void watchdog(unsigned seconds)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_watchdog;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
	alarm(seconds);
}

/* --- interval timer (timer_create: alarm() stays free for the watchdog) */

static timer_t itimer;

static void timer_start(int signo, void (*fn)(int), long interval_ns)
{
	struct sigaction sa;
	struct sigevent ev;
	struct itimerspec its;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(signo, &sa, NULL), 0);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = signo;
	ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &ev, &itimer), 0);
	its.it_interval.tv_sec = 0;
	its.it_interval.tv_nsec = interval_ns;
	its.it_value = its.it_interval;
	ck_assert_int_eq(timer_settime(itimer, 0, &its, NULL), 0);
}

static void timer_oneshot(long ns)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = ns;
	(void)timer_settime(itimer, 0, &its, NULL);
}

static void timer_stop(int signo)
{
	sigset_t s;

	timer_delete(itimer);
	/* A signal already queued must not run after we read the counts. */
	sigemptyset(&s);
	sigaddset(&s, signo);
	sigprocmask(SIG_BLOCK, &s, NULL);
}

/* waitpid() that survives EINTR; -1 status if the child cannot be reaped. */
static int reap(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return st;
}

static int status_ok(int st)
{
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Failures seen by the parent, asserted after the loop. */
struct fails {
	unsigned n;
	int first_status;
	unsigned first_iter;
};

static void record(struct fails *f, int st, unsigned iter)
{
	if (status_ok(st))
		return;
	if (f->n++ == 0) {
		f->first_status = st;
		f->first_iter = iter;
	}
}

static void assert_no_fails(const struct fails *f, const char *what)
{
	int st = f->first_status;

	ck_assert_msg(f->n == 0,
		      "%s: %u of the children failed; first at fork %u: %s %d "
		      "(%d = wrong sum, %d = hang)", what, f->n, f->first_iter,
		      st == -1 ? "not reaped" :
		      WIFSIGNALED(st) ? "killed by signal" : "exit status",
		      st == -1 ? 0 : WIFSIGNALED(st) ? WTERMSIG(st) :
		      WEXITSTATUS(st), EXIT_WRONG, EXIT_HANG);
}

/* In a child: after checking the inherited value, fold some more. */
static int child_more_folds(struct pcpu_counter *c, int64_t want)
{
	int i;

	for (i = 0; i < 100; i++)
		pcpu_counter_add(c, 300);
	return pcpu_counter_sum(c) == want + 30000;
}

static void child_report(const char *what, int64_t want, int64_t got)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s: child sum %lld, want %lld (diff %lld)",
		 what, (long long)got, (long long)want,
		 (long long)(got - want));
	say(buf, "");
}

/* --- (a) sigfork: a handler's add while the only thread forks ---------- */

static struct pcpu_counter sc;
static int64_t sig_delta;
static volatile unsigned long handled;

static void on_tick_add(int sig)
{
	int e = errno;

	(void)sig;
	pcpu_counter_add(&sc, sig_delta);
	handled++;
	errno = e;
}

static void sigfork_run(unsigned flags, int share, int64_t delta,
			const char *what)
{
	struct fails f = { 0, 0, 0 };
	const int64_t base = 1000;
	unsigned i;

	watchdog(CASE_SECONDS);
	stage = what;
	ck_assert_int_eq(pcpu_counter_init(&sc, base, flags), 0);
	if (share)
		ck_assert_int_eq(pcpu_counter_share(&sc), 0);
	sig_delta = delta;
	handled = 0;
	timer_start(SIGUSR1, on_tick_add, 50000);	/* every 50 us */
	for (i = 0; i < NFORKS; i++) {
		pid_t pid;

		at_fork = i;
		pid = fork();
		if (pid == 0) {
			/* No timer and no pending signal in the child. */
			int64_t want = base + delta * (int64_t)handled;
			int64_t got;

			alarm(CHILD_SECONDS);
			stage = "child";
			got = pcpu_counter_sum(&sc);
			if (got != want) {
				child_report(what, want, got);
				_exit(EXIT_WRONG);
			}
			_exit(child_more_folds(&sc, want) ? 0 : EXIT_WRONG);
		}
		ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
		record(&f, reap(pid), i);
	}
	timer_stop(SIGUSR1);
	alarm(0);
	ck_assert_msg(handled > 0, "%s: the timer never fired", what);
	ck_assert_msg(pcpu_counter_sum(&sc) == base + delta * (int64_t)handled,
		      "%s: parent sum %lld, want %lld", what,
		      (long long)pcpu_counter_sum(&sc),
		      (long long)(base + delta * (int64_t)handled));
	assert_no_fails(&f, what);
	pcpu_counter_destroy(&sc);
}

START_TEST(sigfork_lazy)
{
	sigfork_run(PCPU_COUNTER_LAZY, 0, 300, "sigfork LAZY +300");
}
END_TEST

START_TEST(sigfork_eager)
{
	sigfork_run(PCPU_COUNTER_EAGER, 0, 300, "sigfork EAGER +300");
}
END_TEST

START_TEST(sigfork_dual_shared)
{
	sigfork_run(PCPU_COUNTER_DUAL, 1, 300, "sigfork DUAL shared +300");
}
END_TEST

START_TEST(sigfork_lazy_crossing)
{
	/* Fast-path adds, every third one crossing BATCH into a fold. */
	sigfork_run(PCPU_COUNTER_LAZY, 0, 100, "sigfork LAZY +100");
}
END_TEST

START_TEST(sigfork_lazy_negative)
{
	sigfork_run(PCPU_COUNTER_LAZY, 0, -300, "sigfork LAZY -300");
}
END_TEST

/* --- (c1) nested: the handler folds inside the main thread's fold ------ */

/* Pin the caller to the CPU it runs on: folds then always leave a known
 * residue in one slot (1 after "add 1, add 300"), see sighandler_fork. */
static void pin_here(void)
{
	cpu_set_t s;
	int cpu = sched_getcpu();

	CPU_ZERO(&s);
	CPU_SET(cpu < 0 ? 0 : cpu, &s);
	(void)sched_setaffinity(0, sizeof(s), &s);
}

/* The main thread's running total and the add in flight (0: none). */
static volatile int64_t main_val;
static volatile int64_t main_pend;

static void main_add(struct pcpu_counter *c, int64_t d)
{
	main_pend = d;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	pcpu_counter_add(c, d);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	main_val += d;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	main_pend = 0;
}

START_TEST(nested)
{
	struct fails f = { 0, 0, 0 };
	const char *what = "nested folds, fork from the main thread";
	unsigned i, k;

	watchdog(CASE_SECONDS);
	stage = what;
	pin_here();
	ck_assert_int_eq(pcpu_counter_init(&sc, 0, PCPU_COUNTER_LAZY), 0);
	sig_delta = 300;
	handled = 0;
	main_val = 0;
	main_pend = 0;
	timer_start(SIGUSR1, on_tick_add, 50000);
	for (i = 0; i < NFORKS; i++) {
		pid_t pid;

		for (k = 0; k < 64; k++) {
			main_add(&sc, 1);
			main_add(&sc, 300);
		}
		at_fork = i;
		pid = fork();
		if (pid == 0) {
			int64_t want = main_val + 300 * (int64_t)handled;
			int64_t got;

			alarm(CHILD_SECONDS);
			stage = "child";
			got = pcpu_counter_sum(&sc);
			if (got != want) {
				child_report(what, want, got);
				_exit(EXIT_WRONG);
			}
			_exit(child_more_folds(&sc, want) ? 0 : EXIT_WRONG);
		}
		ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
		record(&f, reap(pid), i);
	}
	timer_stop(SIGUSR1);
	alarm(0);
	ck_assert_msg(handled > 0, "the timer never fired");
	ck_assert_msg(pcpu_counter_sum(&sc) ==
		      main_val + 300 * (int64_t)handled,
		      "parent sum %lld, want %lld",
		      (long long)pcpu_counter_sum(&sc),
		      (long long)(main_val + 300 * (int64_t)handled));
	assert_no_fails(&f, what);
	pcpu_counter_destroy(&sc);
}
END_TEST

/* --- (c2) fork() from a signal handler that interrupted a fold --------- */

static volatile unsigned hforks, hfails, hinflight;
static volatile int hfirst_status;

static void on_tick_fork(int sig)
{
	int e = errno;
	int64_t val = main_val, pend = main_pend;
	pid_t pid;
	int st;

	(void)sig;
	at_fork = hforks;
	pid = fork();
	if (pid == 0) {
		/* The interrupted add either happened whole or not at all. */
		int64_t got;

		alarm(CHILD_SECONDS);
		stage = "child of a signal handler";
		got = pcpu_counter_sum(&sc);
		if (got != val && !(pend != 0 && got == val + pend)) {
			child_report("fork from a handler", val, got);
			_exit(EXIT_WRONG);
		}
		_exit(child_more_folds(&sc, got) ? 0 : EXIT_WRONG);
	}
	if (pid < 0) {
		st = -1;
	} else {
		st = reap(pid);
	}
	hforks++;
	if (pend)
		hinflight++;
	if (!status_ok(st) && hfails++ == 0)
		hfirst_status = st;
	/* One-shot, re-armed here: the main thread always runs ~200 us
	 * between two forks (a periodic timer faster than fork() would
	 * starve it at one instruction). */
	timer_oneshot(200000);
	errno = e;
}

START_TEST(sighandler_fork)
{
	const unsigned want_forks = 1000;
	unsigned long ops = 0;

	watchdog(CASE_SECONDS);
	stage = "fork from a signal handler";
	pin_here();
	ck_assert_int_eq(pcpu_counter_init(&sc, 0, PCPU_COUNTER_LAZY), 0);
	main_val = 0;
	main_pend = 0;
	hforks = hfails = hinflight = 0;
	timer_start(SIGUSR2, on_tick_fork, 200000);
	timer_oneshot(200000);		/* then re-armed by each handler */
	/* Every "add 300" folds and leaves a residue of 1 behind for the
	 * next one: a fold split by fork() would show as a sum that is
	 * neither the value before nor the value after. */
	while (hforks < want_forks) {
		main_add(&sc, 1);
		main_add(&sc, 300);
		ops += 2;
	}
	timer_stop(SIGUSR2);
	alarm(0);
	fprintf(stderr, "sighandler_fork: %u forks, %u with an add in flight, "
		"%lu adds\n", hforks, hinflight, ops);
	ck_assert_msg(pcpu_counter_sum(&sc) == main_val,
		      "parent sum %lld, want %lld",
		      (long long)pcpu_counter_sum(&sc), (long long)main_val);
	ck_assert_msg(hfails == 0,
		      "%u of %u children forked from a signal handler failed "
		      "(%u forks with an add in flight); first status %#x "
		      "(exit %d = wrong sum, %d = hang)", hfails, hforks,
		      hinflight, hfirst_status, EXIT_WRONG, EXIT_HANG);
	pcpu_counter_destroy(&sc);
}
END_TEST

/* --- (c3) fork() from a handler that interrupted a DUAL upgrade -------- */

/*
 * A second thread's first update upgrades a DUAL counter: it takes a clean
 * area, and every PCPU_LAZY_BATCH + 1 upgrades refills its slot's stack
 * under the allocator mutex.  A handler of the upgrading thread that forks
 * there ran the prepare handler, which waits for that mutex, in the thread
 * that held it: the first run of this case hung within a few thousand
 * upgrades.  The upgrade now holds the mutex with signals blocked.
 */
#define UPG_N		4000
#define UPG_FORKS	600
#define UPG_SECONDS	10

static struct pcpu_counter upg[UPG_N];
static volatile int upg_claimed;	/* counters the owner thread claimed */
static volatile unsigned uforks, ufails;
static volatile int ufirst_status;
static volatile int upg_at;		/* the counter main is upgrading */

static void *upg_owner(void *arg)
{
	sigset_t all;
	int i;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);	/* the timer is main's */
	for (i = 0; i < UPG_N; i++) {
		pcpu_counter_inc(&upg[i]);	/* claims ownership */
		__atomic_store_n(&upg_claimed, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void on_tick_fork_upgrade(int sig)
{
	int e = errno, at = upg_at;
	pid_t pid;
	int st;

	(void)sig;
	at_fork = uforks;
	pid = fork();
	if (pid == 0) {
		struct pcpu_counter c;
		int64_t got;

		alarm(CHILD_SECONDS);
		stage = "child of a handler that interrupted an upgrade";
		/* Counters before the one in flight are upgraded and hold 2;
		 * the child can still allocate and upgrade. */
		got = at > 0 ? pcpu_counter_sum(&upg[at - 1]) : 2;
		if (got != 2)
			_exit(EXIT_WRONG);
		if (pcpu_counter_init(&c, 0, PCPU_COUNTER_DUAL) ||
		    pcpu_counter_share(&c) != 0)
			_exit(EXIT_WRONG);
		pcpu_counter_add(&c, 5);
		_exit(pcpu_counter_sum(&c) == 5 ? 0 : EXIT_WRONG);
	}
	st = pid < 0 ? -1 : reap(pid);
	if (!status_ok(st) && ufails++ == 0)
		ufirst_status = st;
	uforks++;
	timer_oneshot(50000);
	errno = e;
}

START_TEST(sighandler_fork_upgrade)
{
	sigset_t tick;
	pthread_t t;
	unsigned rounds = 0;
	time_t end = time(NULL) + UPG_SECONDS;
	int i, bad = 0;

	watchdog(CASE_SECONDS);
	stage = "fork from a handler that interrupted an upgrade";
	sigemptyset(&tick);
	sigaddset(&tick, SIGUSR2);
	uforks = ufails = 0;
	timer_start(SIGUSR2, on_tick_fork_upgrade, 50000);
	/* Rounds of fresh counters, so that upgrades keep refilling their
	 * slot's stack of clean areas under the mutex (destroy gives the
	 * areas back, and a full stack spills to the chunks). */
	while (uforks < UPG_FORKS && time(NULL) < end) {
		pthread_sigmask(SIG_BLOCK, &tick, NULL);
		for (i = 0; i < UPG_N; i++)
			ck_assert_int_eq(pcpu_counter_init(&upg[i], 0,
							   PCPU_COUNTER_DUAL), 0);
		upg_at = 0;
		upg_claimed = 0;
		ck_assert_int_eq(pthread_create(&t, NULL, upg_owner, NULL), 0);
		pthread_sigmask(SIG_UNBLOCK, &tick, NULL);
		timer_oneshot(50000);	/* then re-armed by each handler */
		for (i = 0; i < UPG_N; i++) {
			while (__atomic_load_n(&upg_claimed,
					       __ATOMIC_ACQUIRE) <= i)
				;
			upg_at = i;
			pcpu_counter_inc(&upg[i]);	/* the upgrade */
			/* The handler reads upg_at: the compiler must not
			 * sink the inline add below the next store to it. */
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
		}
		/* Destroy may take the mutex: not from under a handler's
		 * fork (libpcpu(7), Fork). */
		pthread_sigmask(SIG_BLOCK, &tick, NULL);
		pthread_join(t, NULL);
		for (i = 0; i < UPG_N; i++) {
			if (!pcpu_counter_is_shared(&upg[i]) ||
			    pcpu_counter_sum(&upg[i]) != 2)
				bad++;
			pcpu_counter_destroy(&upg[i]);
		}
		rounds++;
	}
	timer_stop(SIGUSR2);
	alarm(0);
	fprintf(stderr, "sighandler_fork_upgrade: %u forks over %u rounds of "
		"%d upgrades\n", uforks, rounds, UPG_N);
	ck_assert_msg(bad == 0, "%d counters not upgraded to 2", bad);
	ck_assert_msg(uforks > 0, "no fork happened");
	ck_assert_msg(ufails == 0, "%u of %u children failed; first status %#x",
		      ufails, uforks, ufirst_status);
}
END_TEST

/* --- (b) foldfork: an application lock held by a folder ---------------- */

static pthread_mutex_t app_lock = PTHREAD_MUTEX_INITIALIZER;

static void app_prepare(void)
{
	pthread_mutex_lock(&app_lock);
}

static void app_release(void)
{
	pthread_mutex_unlock(&app_lock);
}

/*
 * Registered before libpcpu's handlers: priority 101 runs before the
 * default-priority constructor of the statically linked libpcpu (see the
 * top of this file).  So this prepare handler runs after libpcpu's.
 */
__attribute__((constructor(101))) static void register_app_atfork(void)
{
	if (pthread_atfork(app_prepare, app_release, app_release) != 0)
		abort();
}

static struct pcpu_counter fc;
static volatile int fstop;
static volatile unsigned long fadds;	/* under app_lock */

static void *folder(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&fstop, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&app_lock);
		pcpu_counter_add(&fc, 300);	/* |delta| >= BATCH: a fold */
		fadds++;
		pthread_mutex_unlock(&app_lock);
	}
	return NULL;
}

START_TEST(foldfork)
{
	struct fails f = { 0, 0, 0 };
	pthread_t t;
	unsigned i;

	watchdog(CASE_SECONDS);
	stage = "foldfork: fork() while a folder holds the app's atfork lock";
	ck_assert_int_eq(pcpu_counter_init(&fc, 0, PCPU_COUNTER_LAZY), 0);
	fstop = 0;
	fadds = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, folder, NULL), 0);
	for (i = 0; i < NFORKS; i++) {
		pid_t pid;

		at_fork = i;
		pid = fork();
		if (pid == 0) {
			/* app_prepare held the lock at fork(): the folder was
			 * between adds, and fadds counts them all. */
			int64_t want = 300 * (int64_t)fadds;
			int64_t got;

			alarm(CHILD_SECONDS);
			stage = "foldfork child";
			got = pcpu_counter_sum(&fc);
			if (got != want) {
				child_report("foldfork", want, got);
				_exit(EXIT_WRONG);
			}
			_exit(child_more_folds(&fc, want) ? 0 : EXIT_WRONG);
		}
		ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
		record(&f, reap(pid), i);
	}
	__atomic_store_n(&fstop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	alarm(0);
	ck_assert_msg(pcpu_counter_sum(&fc) == 300 * (int64_t)fadds,
		      "parent sum %lld, want %lld",
		      (long long)pcpu_counter_sum(&fc),
		      (long long)(300 * (int64_t)fadds));
	assert_no_fails(&f, "foldfork");
	pcpu_counter_destroy(&fc);
}
END_TEST

static Suite *forkhang_suite(void)
{
	Suite *s = suite_create("forkhang");
	TCase *tc;

	tc = tcase_create("sigfork");
	tcase_set_timeout(tc, CASE_SECONDS + 10);
	tcase_add_test(tc, sigfork_lazy);
	tcase_add_test(tc, sigfork_eager);
	tcase_add_test(tc, sigfork_dual_shared);
	tcase_add_test(tc, sigfork_lazy_crossing);
	tcase_add_test(tc, sigfork_lazy_negative);
	suite_add_tcase(s, tc);

	tc = tcase_create("nested");
	tcase_set_timeout(tc, CASE_SECONDS + 10);
	tcase_add_test(tc, nested);
	tcase_add_test(tc, sighandler_fork);
	tcase_add_test(tc, sighandler_fork_upgrade);
	suite_add_tcase(s, tc);

	tc = tcase_create("foldfork");
	tcase_set_timeout(tc, CASE_SECONDS + 10);
	tcase_add_test(tc, foldfork);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(forkhang_suite());
	int failed;

	/* Every case arms timers, alarms and signal handlers: one process
	 * each, whatever CK_FORK says. */
	srunner_set_fork_status(sr, CK_FORK);
	setvbuf(stdout, NULL, _IOLBF, 0);	/* nothing buffered at fork() */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
