/* SPDX-License-Identifier: MIT */
/*
 * tests/test_attack.c - adversarial checks of the v2 counters and lazy
 * areas that pass on a correct library (tests/attack.mk).
 *
 *  fork_children   fork() while 3 threads and their signal handlers update
 *                  LAZY, EAGER, shared DUAL, DUAL-upgraded-by-use and
 *                  BATCH_LOG2(12) counters with small deltas and deltas that
 *                  publish on every add.  Each child checks, before any
 *                  update of its own: sum in [completed, begun] of what the
 *                  adders recorded, read within (batch - 1) * nr_slots of
 *                  sum (this needs the fork child's journal repair: with
 *                  pcpu__counter_fork_child()'s repair disabled about 1 fork
 *                  in 12 fails here), then that its own adds stay exact.
 *  dtor_updates    a thread's TSD destructor (its key made after libpcpu's)
 *                  updates counters and areas after libpcpu's destructor
 *                  unregistered the thread's own rseq area (rseq-own): exact.
 *  handler_upgrade a signal handler upgrades DUAL counters (first add from a
 *                  non-owner) while its thread churns LAZY init/destroy and
 *                  lazy areas (slot word and allocator mutex held): no
 *                  deadlock, exact.
 *  reset_share     10^4 reset + claim + share/upgrade cycles keep the one
 *                  area (no allocation) and stay exact.
 *
 * ck_assert only in the test's main thread; workers and children record.
 */
#include "testutil.h"

#include <pcpu.h>
#include <signal.h>
#include <sys/wait.h>

/* --- fork -------------------------------------------------------------- */

#define FT 3
#define FC 5
static struct pcpu_counter fc[FC];
static int64_t fb1[FC];
static int64_t f_begun[FT][2][FC], f_done[FT][2][FC];
static int f_stop;
static __thread int f_tid = -1;
static pthread_t f_th[FT];

static void f_add(int t, int ctx, int i, int64_t d)
{
	__atomic_store_n(&f_begun[t][ctx][i], f_begun[t][ctx][i] + d,
			 __ATOMIC_RELEASE);
	pcpu_counter_add(&fc[i], d);
	__atomic_store_n(&f_done[t][ctx][i], f_done[t][ctx][i] + d,
			 __ATOMIC_RELEASE);
}

static void f_handler(int sig)
{
	int i;

	(void)sig;
	if (f_tid < 0)
		return;
	for (i = 0; i < FC; i++)
		f_add(f_tid, 1, i, (i & 1) ? fb1[i] * 3 + 1 : 1);
}

static void *f_adder(void *a)
{
	unsigned x;
	int i;

	f_tid = (int)(long)a;
	x = (unsigned)f_tid * 7 + 1;
	while (!__atomic_load_n(&f_stop, __ATOMIC_RELAXED))
		for (i = 0; i < FC; i++) {
			x = x * 1103515245 + 12345;
			f_add(f_tid, 0, i, (x >> 16) & 1 ?
			      (fb1[i] + 1) * 5 + (x & 7) : (x >> 8) & 3);
		}
	return NULL;
}

static void *f_signaller(void *a)
{
	struct timespec ts = { 0, 20000 };
	int t;

	(void)a;
	while (!__atomic_load_n(&f_stop, __ATOMIC_RELAXED)) {
		for (t = 0; t < FT; t++)
			pthread_kill(f_th[t], SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* In the child: 0, or a bit per failed check. */
static int f_child(void)
{
	unsigned nr = pcpu_nr_slots();
	int bad = 0, i, t, x, k;

	for (i = 0; i < FC; i++) {
		int64_t lo = 0, hi = 0, s, r, s2, r2, bound = fb1[i] * nr;

		for (t = 0; t < FT; t++)
			for (x = 0; x < 2; x++) {
				lo += f_done[t][x][i];
				hi += f_begun[t][x][i];
			}
		s = pcpu_counter_sum(&fc[i]);
		r = pcpu_counter_read(&fc[i]);
		if (s < lo || s > hi)
			bad |= 1;
		if (r - s > bound || s - r > bound)
			bad |= 2;
		for (k = 0; k < 1000; k++)
			pcpu_counter_add(&fc[i], k & 1 ? fb1[i] * 2 : 1);
		s2 = pcpu_counter_sum(&fc[i]);
		r2 = pcpu_counter_read(&fc[i]);
		if (s2 != s + 500 + 500 * fb1[i] * 2)
			bad |= 4;
		if (r2 - s2 > bound || s2 - r2 > bound)
			bad |= 8;
	}
	return bad;
}

START_TEST(fork_children)
{
	struct sigaction sa;
	struct tu_budget b;
	sigset_t ss;
	pthread_t sg;
	int i, forks = 0, failed = 0, why = 0, st;
	long t;

	for (i = 0; i < FC; i++) {
		unsigned f = i == 0 ? PCPU_COUNTER_LAZY :
			     i == 1 ? PCPU_COUNTER_EAGER :
			     i == 4 ? PCPU_COUNTER_LAZY | PCPU_COUNTER_BATCH_LOG2(12)
				    : PCPU_COUNTER_DUAL;

		ck_assert_int_eq(pcpu_counter_init(&fc[i], 0, f), 0);
		fb1[i] = (i == 4 ? 4096 : PCPU_COUNTER_BATCH) - 1;
	}
	ck_assert_int_eq(pcpu_counter_share(&fc[2]), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = f_handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&ss);
	sigaddset(&ss, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	f_stop = 0;
	for (t = 0; t < FT; t++) {
		pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
		pthread_create(&f_th[t], NULL, f_adder, (void *)t);
		pthread_sigmask(SIG_BLOCK, &ss, NULL);
	}
	pthread_create(&sg, NULL, f_signaller, NULL);
	tu_budget_start(&b, 6.0);
	while (tu_budget_left(&b) && forks < 400) {
		pid_t p = fork();

		if (p == 0) {
			alarm(10);
			_exit(f_child());
		}
		if (p < 0)
			break;
		forks++;
		waitpid(p, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failed++;
			why |= WIFEXITED(st) ? WEXITSTATUS(st) : 0x100;
		}
	}
	__atomic_store_n(&f_stop, 1, __ATOMIC_RELAXED);
	for (t = 0; t < FT; t++)
		pthread_join(f_th[t], NULL);
	pthread_join(sg, NULL);
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	ck_assert_msg(failed == 0, "%d of %d fork children failed (bits %#x: "
		      "1 sum, 2 read bound, 4 child exact, 8 child bound, "
		      "0x100 killed)", failed, forks, why);
	for (i = 0; i < FC; i++) {
		int64_t want = 0, s, r;
		int x;

		for (t = 0; t < FT; t++)
			for (x = 0; x < 2; x++)
				want += f_done[t][x][i];
		s = pcpu_counter_sum(&fc[i]);
		r = pcpu_counter_read(&fc[i]);
		ck_assert_msg(s == want, "counter %d: sum %lld want %lld", i,
			      (long long)s, (long long)want);
		ck_assert(r - s <= fb1[i] * (int64_t)pcpu_nr_slots() &&
			  s - r <= fb1[i] * (int64_t)pcpu_nr_slots());
		pcpu_counter_destroy(&fc[i]);
	}
}
END_TEST

/* --- TSD destructor after libpcpu's ------------------------------------ */

static struct pcpu_counter dc[3];
static int64_t *da[2];
static pthread_key_t dkey;

static void d_dtor(void *a)
{
	int i;

	(void)a;
	for (i = 0; i < 3; i++)
		pcpu_counter_add(&dc[i], 1000);
	for (i = 0; i < 2; i++)
		pcpu_area_add(da[i], 7);
}

static void *d_thread(void *a)
{
	int i;

	(void)a;
	pthread_setspecific(dkey, (void *)1);
	for (i = 0; i < 3; i++)
		pcpu_counter_add(&dc[i], 1);
	for (i = 0; i < 2; i++)
		pcpu_area_add(da[i], 1);
	return NULL;
}

START_TEST(dtor_updates)
{
	pthread_t t;
	int i, k, n = 200;

	ck_assert_int_eq(pcpu_counter_init(&dc[0], 0, PCPU_COUNTER_LAZY), 0);
	ck_assert_int_eq(pcpu_counter_init(&dc[1], 0, PCPU_COUNTER_EAGER), 0);
	ck_assert_int_eq(pcpu_counter_init(&dc[2], 0, PCPU_COUNTER_DUAL), 0);
	ck_assert_int_eq(pcpu_counter_share(&dc[2]), 0);
	ck_assert_ptr_nonnull(da[0] = pcpu_alloc_lazy(8, 8));
	ck_assert_ptr_nonnull(da[1] = pcpu_alloc(8, 8));
	ck_assert_int_eq(pthread_key_create(&dkey, d_dtor), 0);
	for (k = 0; k < n; k++) {
		ck_assert_int_eq(pthread_create(&t, NULL, d_thread, NULL), 0);
		pthread_join(t, NULL);
	}
	for (i = 0; i < 3; i++)
		ck_assert_msg(pcpu_counter_sum(&dc[i]) == n * 1001,
			      "counter %d: %lld", i,
			      (long long)pcpu_counter_sum(&dc[i]));
	for (i = 0; i < 2; i++)
		ck_assert_msg(pcpu_area_sum(da[i]) == n * 8, "area %d: %lld", i,
			      (long long)pcpu_area_sum(da[i]));
	pthread_key_delete(dkey);
	for (i = 0; i < 3; i++)
		pcpu_counter_destroy(&dc[i]);
	pcpu_free(da[0]);
	pcpu_free(da[1]);
}
END_TEST

/* --- a handler upgrades while its thread holds the slot word ----------- */

#define HN 4000
static struct pcpu_counter hc[HN];
static int h_next, h_stop;
static pthread_t h_th;

static void h_handler(int s)
{
	int k = __atomic_load_n(&h_next, __ATOMIC_RELAXED);

	(void)s;
	if (k >= HN)
		return;
	pcpu_counter_add(&hc[k], 1000);
	__atomic_store_n(&h_next, k + 1, __ATOMIC_RELAXED);
}

static void *h_churn(void *a)
{
	struct pcpu_counter c[8];
	void *p[8];
	int i;

	(void)a;
	while (!__atomic_load_n(&h_stop, __ATOMIC_RELAXED)) {
		for (i = 0; i < 8; i++) {
			if (pcpu_counter_init(&c[i], 0, PCPU_COUNTER_LAZY))
				c[i].pcpu__slots = NULL;
			else
				pcpu_counter_add(&c[i], 1);
			p[i] = pcpu_alloc_lazy((size_t)64 << (i & 3), 8);
		}
		for (i = 0; i < 8; i++) {
			if (c[i].pcpu__slots)
				pcpu_counter_destroy(&c[i]);
			pcpu_free(p[i]);
		}
	}
	return NULL;
}

START_TEST(handler_upgrade)
{
	struct timespec ts = { 0, 2000 };
	struct sigaction sa;
	struct tu_budget b;
	int i, bad = 0, done;

	for (i = 0; i < HN; i++) {
		ck_assert_int_eq(pcpu_counter_init(&hc[i], 0, PCPU_COUNTER_DUAL), 0);
		pcpu_counter_add(&hc[i], 1);		/* we own it */
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = h_handler;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);
	h_stop = 0;
	pthread_create(&h_th, NULL, h_churn, NULL);
	tu_budget_start(&b, 10.0);
	while (__atomic_load_n(&h_next, __ATOMIC_RELAXED) < HN &&
	       tu_budget_left(&b)) {
		pthread_kill(h_th, SIGUSR2);
		nanosleep(&ts, NULL);
	}
	__atomic_store_n(&h_stop, 1, __ATOMIC_RELAXED);
	pthread_join(h_th, NULL);
	signal(SIGUSR2, SIG_DFL);
	done = __atomic_load_n(&h_next, __ATOMIC_RELAXED);
	for (i = 0; i < done; i++)
		bad += pcpu_counter_sum(&hc[i]) != 1001;
	for (i = 0; i < HN; i++)
		pcpu_counter_destroy(&hc[i]);
	ck_assert_int_gt(done, 100);
	ck_assert_msg(bad == 0, "%d of %d counters upgraded in a handler are "
		      "wrong", bad, done);
}
END_TEST

/* --- reset/share cycles keep the area ---------------------------------- */

static struct pcpu_counter rc;
static void *r_thread(void *a)
{
	pcpu_counter_add(&rc, (long)a);
	return NULL;
}

START_TEST(reset_share)
{
	pthread_t t;
	int64_t *area, want;
	int k;

	ck_assert_int_eq(pcpu_counter_init(&rc, 0, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_add(&rc, 5);
	pthread_create(&t, NULL, r_thread, (void *)3L);
	pthread_join(t, NULL);
	ck_assert(pcpu_counter_is_shared(&rc));
	area = rc.pcpu__slots;
	for (k = 0; k < 10000; k++) {
		pcpu_counter_reset(&rc);
		ck_assert(!pcpu_counter_is_shared(&rc));
		ck_assert_int_eq(pcpu_counter_sum(&rc), 0);
		ck_assert_int_eq(pcpu_counter_read(&rc), 0);
		pcpu_counter_add(&rc, 1);
		if (k & 1) {
			ck_assert_int_eq(pcpu_counter_share(&rc), 0);
		} else {
			pthread_create(&t, NULL, r_thread, (void *)1000L);
			pthread_join(t, NULL);
		}
		ck_assert(pcpu_counter_is_shared(&rc));
		ck_assert_ptr_eq(rc.pcpu__slots, area);
		pcpu_counter_add(&rc, 300);
		want = 301 + ((k & 1) ? 0 : 1000);
		ck_assert_int_eq(pcpu_counter_sum(&rc), want);
	}
	pcpu_counter_destroy(&rc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("attack");
	TCase *tc = tcase_create("attack");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, TU_TIMEOUT_STRESS);
	tcase_add_test(tc, fork_children);
	tcase_add_test(tc, dtor_updates);
	tcase_add_test(tc, handler_upgrade);
	tcase_add_test(tc, reset_share);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
