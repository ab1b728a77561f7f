/* SPDX-License-Identifier: MIT */
/*
 * test_cache_v2.c - pcpu/cache.h, the v2 contract: constructor failures
 * fail only their allocation, constructor cycles fail with EDEADLK,
 * pcpu_cache_destroy() from RCU callbacks and from the reclaimer, and
 * fork() whether or not the application calls liburcu's fork hooks.
 *
 * Everything that could hang (a deadlock is the defect these tests look
 * for) runs under alarm(), in fork mode in its own process.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <urcu/urcu-bp.h>

#define GUARD_SECONDS	20

struct fobj {
	uint64_t magic;
	void *inner;
};

#define FMAGIC	0xF00DF00DF00DF00DULL

/* --- constructor failures ---------------------------------------------- */

struct fctx {
	uint64_t calls, ok, dtor;
	int64_t live;
	unsigned every;			/* fail call k when k % every == every-1 */
	uint64_t seed;			/* else: random, 1 in 3, when nonzero */
	int err;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int fctor(void *p, void *arg)
{
	struct fctx *x = arg;
	struct fobj *o = p;
	uint64_t k = __atomic_fetch_add(&x->calls, 1, __ATOMIC_RELAXED);

	if (x->every && k % x->every == x->every - 1)
		return -x->err;
	if (x->seed && rnd(&x->seed) % 3 == 0)
		return -x->err;
	o->magic = FMAGIC;
	o->inner = NULL;
	__atomic_fetch_add(&x->ok, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&x->live, 1, __ATOMIC_RELAXED);
	return 0;
}

static void fdtor(void *p, void *arg)
{
	struct fctx *x = arg;
	struct fobj *o = p;

	if (o->magic == FMAGIC)
		__atomic_fetch_add(&x->dtor, 1, __ATOMIC_RELAXED);
	o->magic = 0;
	__atomic_fetch_sub(&x->live, 1, __ATOMIC_RELAXED);
}

static void fctx_init(struct fctx *x, unsigned every, uint64_t seed)
{
	memset(x, 0, sizeof(*x));
	x->every = every;
	x->seed = seed;
	x->err = ENOMEM;
}

static struct pcpu_cache_stats stats(struct pcpu_cache *c)
{
	struct pcpu_cache_stats st;

	ck_assert_int_eq(pcpu_cache_stats(c, &st), 0);
	return st;
}

/* The contract's figure: 1 call in 3 failing, 300 allocations held. */
START_TEST(test_ctor_fail_one_in_three)
{
	struct fctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	void *v[300];
	size_t n = 0, i;
	int bad_errno = 0;

	fctx_init(&x, 3, 0);
	c = pcpu_cache_create("third", sizeof(struct fobj), 0, fctor, fdtor,
			      &x, 0);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 300; i++) {
		errno = 0;
		v[n] = pcpu_cache_alloc(c, 0);
		if (v[n])
			n++;
		else if (errno != ENOMEM)
			bad_errno = errno;
	}
	printf("ctor fails 1 call in 3: %zu of 300 allocations succeeded, "
	       "%.2f ctor calls per success\n", n,
	       (double)x.calls / (double)(n ? n : 1));
	ck_assert_int_eq(bad_errno, 0);
	ck_assert_uint_eq(n, 200);
	ck_assert_uint_eq(x.calls, 300);
	st = stats(c);
	ck_assert_uint_eq(st.in_use, 200);
	ck_assert_uint_eq(st.allocs, 200);
	ck_assert_uint_eq(st.ctor_calls, 300);
	ck_assert_uint_eq(st.cached, 0);
	pcpu_cache_free_bulk(c, n, v);
	st = stats(c);
	ck_assert_uint_eq(st.cached, 200);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_uint_eq(x.ok, 200);
	ck_assert_uint_eq(x.dtor, 200);
	ck_assert_int_eq(x.live, 0);
}
END_TEST

/* Random failures (1 in 3), allocations and frees mixed, single and
 * bulk: bulk is all or nothing, the counts add up, nothing leaks. */
START_TEST(test_ctor_fail_random)
{
	struct fctx x;
	struct pcpu_cache *c;
	struct pcpu_cache_stats st;
	static void *held[4096];
	void *b[16];
	size_t n = 0, ok = 0, fail = 0, k, got;
	uint64_t s = 0x9E3779B97F4A7C15ULL + (uint64_t)_i, allocs = 0;
	unsigned round;

	fctx_init(&x, 0, s ^ 0x5555);
	c = pcpu_cache_create("random", sizeof(struct fobj), 0, fctor, fdtor,
			      &x, 0);
	ck_assert_ptr_nonnull(c);
	for (round = 0; round < 20000; round++) {
		unsigned op = (unsigned)(rnd(&s) % 8);

		if (op < 3 && n < 4096) {
			errno = 0;
			held[n] = pcpu_cache_alloc(c, 0);
			if (held[n]) {
				tu_check(((struct fobj *)held[n])->magic ==
					 FMAGIC, "unconstructed object");
				n++;
				ok++;
				allocs++;
			} else {
				tu_check(errno == ENOMEM, "errno %d", errno);
				fail++;
			}
		} else if (op < 5 && n + 16 <= 4096) {
			size_t want = 1 + rnd(&s) % 16;

			errno = 0;
			got = pcpu_cache_alloc_bulk(c, 0, want, b);
			tu_check(got == want || (got == 0 && errno == ENOMEM),
				 "bulk %zu: got %zu errno %d", want, got,
				 errno);
			for (k = 0; k < got; k++) {
				tu_check(((struct fobj *)b[k])->magic ==
					 FMAGIC, "unconstructed bulk object");
				held[n++] = b[k];
			}
			allocs += got;
		} else if (op < 7 && n) {
			k = rnd(&s) % n;
			pcpu_cache_free(c, held[k]);
			held[k] = held[--n];
		} else if (op == 7 && round % 512 == 0) {
			(void)pcpu_cache_shrink(c);
		}
		if (round % 1024 == 0) {
			st = stats(c);
			tu_check(st.in_use == n && st.allocs == allocs,
				 "in_use %zu want %zu, allocs %llu want %llu",
				 st.in_use, n, (unsigned long long)st.allocs,
				 (unsigned long long)allocs);
			tu_check(st.in_use + st.cached ==
				 (size_t)(x.ok - x.dtor), "in_use %zu + cached "
				 "%zu != constructed %llu", st.in_use,
				 st.cached, (unsigned long long)(x.ok - x.dtor));
			tu_check(st.ctor_calls == x.calls && st.dtor_calls ==
				 x.dtor, "ctor/dtor counts");
		}
	}
	/* Single allocations: about 2 in 3 succeed (the failures are a
	 * Bernoulli(1/3) on each cold allocation, warm ones always do). */
	ck_assert_msg(ok > fail, "ok %zu fail %zu", ok, fail);
	pcpu_cache_free_bulk(c, n, held);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_uint_eq(x.ok, x.dtor);
	ck_assert_int_eq(x.live, 0);
}
END_TEST

/* PCPU_NOWAIT never constructs, so a failing constructor cannot touch
 * it; and a constructor that fails always leaves the cache usable. */
START_TEST(test_ctor_fail_always_then_recovers)
{
	struct fctx x;
	struct pcpu_cache *c;
	void *o;
	int i;

	fctx_init(&x, 1, 0);		/* every call fails */
	x.err = EMLINK;
	c = pcpu_cache_create("always", sizeof(struct fobj), 0, fctor, fdtor,
			      &x, 0);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 10; i++) {
		errno = 0;
		ck_assert_ptr_null(pcpu_cache_alloc(c, 0));
		ck_assert_int_eq(errno, EMLINK);
	}
	ck_assert_uint_eq(x.calls, 10);		/* one per allocation */
	ck_assert_uint_eq(stats(c).slabs, 1);	/* no slab per failure */
	x.every = 0;
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free(c, o);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	ck_assert_uint_eq(x.ok, x.dtor);
}
END_TEST

/* --- constructor cycles ------------------------------------------------- */

#define CHAIN	20

struct cyc {
	struct pcpu_cache *c[CHAIN];
	int next[CHAIN];		/* cache i's ctor allocates from next[i] */
	int err[CHAIN];			/* errno the nested alloc saw */
	unsigned calls[CHAIN];
};

static struct cyc cy;

static int cyc_ctor(void *p, void *arg)
{
	int i = (int)(intptr_t)arg;
	struct fobj *o = p;

	cy.calls[i]++;
	o->magic = FMAGIC;
	o->inner = NULL;
	if (cy.calls[i] > 1000)
		return -ELOOP;		/* the defect: unbounded recursion */
	if (cy.next[i] >= 0) {
		errno = 0;
		o->inner = pcpu_cache_alloc(cy.c[cy.next[i]], 0);
		if (!o->inner) {
			cy.err[i] = errno;
			return -errno;
		}
	}
	return 0;
}

static void cyc_dtor(void *p, void *arg)
{
	int i = (int)(intptr_t)arg;
	struct fobj *o = p;

	if (o->inner)
		pcpu_cache_free(cy.c[cy.next[i]], o->inner);
}

static void cyc_make(int n)
{
	int i;

	memset(&cy, 0, sizeof(cy));
	for (i = 0; i < n; i++) {
		cy.c[i] = pcpu_cache_create("cyc", sizeof(struct fobj), 0,
					    cyc_ctor, cyc_dtor,
					    (void *)(intptr_t)i, 0);
		ck_assert_ptr_nonnull(cy.c[i]);
		cy.next[i] = -1;
	}
}

static void cyc_destroy(int n)
{
	int i;

	/* Outer caches first: their destructors free into the inner. */
	for (i = 0; i < n; i++)
		ck_assert_int_eq(pcpu_cache_destroy(cy.c[i]), 0);
}

/* A -> B -> A and A -> B -> C -> A on cold caches: EDEADLK, no loop. */
START_TEST(test_ctor_cycle)
{
	int len = 2 + _i, i;	/* cycle length 2, 3, 4 */

	alarm(GUARD_SECONDS);
	cyc_make(len);
	for (i = 0; i < len; i++)
		cy.next[i] = (i + 1) % len;
	errno = 0;
	ck_assert_ptr_null(pcpu_cache_alloc(cy.c[0], 0));
	ck_assert_int_eq(errno, EDEADLK);
	/* The innermost constructor saw EDEADLK; each ran once. */
	ck_assert_int_eq(cy.err[len - 1], EDEADLK);
	for (i = 0; i < len; i++)
		ck_assert_uint_eq(cy.calls[i], 1);
	/* The same caches work once the cycle is broken. */
	cy.next[len - 1] = -1;
	{
		struct fobj *o = pcpu_cache_alloc(cy.c[0], 0);

		ck_assert_ptr_nonnull(o);
		ck_assert_ptr_nonnull(o->inner);
		pcpu_cache_free(cy.c[0], o);
	}
	cyc_destroy(len);
	alarm(0);
}
END_TEST

/* A chain of distinct caches nested deeper than the library tracks
 * fails with EDEADLK at that depth instead of recursing on. */
START_TEST(test_ctor_chain_too_deep)
{
	int i;
	struct fobj *o;

	alarm(GUARD_SECONDS);
	cyc_make(CHAIN);
	for (i = 0; i + 1 < CHAIN; i++)
		cy.next[i] = i + 1;
	errno = 0;
	o = pcpu_cache_alloc(cy.c[0], 0);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(errno, EDEADLK);
	/* A chain of 16 (the documented depth) works. */
	cy.next[15] = -1;
	o = pcpu_cache_alloc(cy.c[0], 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free(cy.c[0], o);
	cyc_destroy(CHAIN);
	alarm(0);
}
END_TEST

/* --- destroy from RCU callbacks and from the reclaimer --------------- */

static struct pcpu_cache *cb_cache;
static struct rcu_head cb_head;
static volatile int cb_done, cb_ret = 1;

static void destroy_cb(struct rcu_head *h)
{
	(void)h;
	cb_ret = pcpu_cache_destroy(cb_cache);
	__atomic_store_n(&cb_done, 1, __ATOMIC_RELEASE);
}

/* The cbdestroy reproducer: destroy from a call_rcu callback (liburcu's
 * worker) with a free_rcu pending.  It hung in urcu_bp_barrier(). */
START_TEST(test_destroy_in_call_rcu_callback)
{
	void *o;
	double end;

	alarm(GUARD_SECONDS);
	cb_cache = pcpu_cache_create("cb", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(cb_cache);
	o = pcpu_cache_alloc(cb_cache, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free_rcu(cb_cache, o);	/* pending in a partial batch */
	urcu_bp_call_rcu(&cb_head, destroy_cb);
	end = tu_now() + GUARD_SECONDS / 2;
	while (!__atomic_load_n(&cb_done, __ATOMIC_ACQUIRE) && tu_now() < end)
		usleep(1000);
	ck_assert_msg(cb_done, "destroy in a call_rcu callback did not return");
	ck_assert_int_eq(cb_ret, 0);
	alarm(0);
}
END_TEST

static struct pcpu_cache *rc_victim;
static int rc_ret = 1, rc_calls;

/* Runs on libpcpu's reclaimer: the dying outer cache's slab is released
 * when its RCU-freed object comes back. */
static void destroying_dtor(void *p, void *arg)
{
	(void)p;
	(void)arg;
	rc_calls++;
	rc_ret = pcpu_cache_destroy(rc_victim);
}

/* From a destructor the reclaimer runs: -EDEADLK, nothing changed. */
START_TEST(test_destroy_on_reclaimer)
{
	struct pcpu_cache *outer;
	struct pcpu_cache_stats st;
	void *o, *w;

	alarm(GUARD_SECONDS);
	rc_victim = pcpu_cache_create("victim", 64, 0, NULL, NULL, NULL, 0);
	outer = pcpu_cache_create("outer", 64, 0, NULL, destroying_dtor, NULL,
				  0);
	ck_assert_ptr_nonnull(rc_victim);
	ck_assert_ptr_nonnull(outer);
	w = pcpu_cache_alloc(rc_victim, 0);
	ck_assert_ptr_nonnull(w);
	pcpu_cache_free_rcu(rc_victim, w);	/* the victim has one pending */
	o = pcpu_cache_alloc(outer, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(pcpu_cache_deactivate(outer), 0);
	pcpu_cache_free_rcu(outer, o);
	/* Waits for outer's frees: the reclaimer releases its slab and runs
	 * the destructor there. */
	ck_assert_int_eq(pcpu_cache_destroy(outer), 0);
	ck_assert_int_gt(rc_calls, 0);
	ck_assert_int_eq(rc_ret, -EDEADLK);
	/* No side effect: the victim is intact and can be destroyed. */
	ck_assert_int_eq(pcpu_cache_stats(rc_victim, &st), 0);
	ck_assert_uint_le(st.rcu_pending, 1);
	ck_assert_int_eq(pcpu_cache_destroy(rc_victim), 0);
	alarm(0);
}
END_TEST

/* Inside a read-side critical section the grace period would wait for
 * the caller: -EDEADLK, and the cache is still usable. */
START_TEST(test_destroy_in_read_section)
{
	struct pcpu_cache *c;
	void *o;

	alarm(GUARD_SECONDS);
	c = pcpu_cache_create("reader", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(c);
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free_rcu(c, o);
	urcu_bp_read_lock();
	ck_assert_int_eq(pcpu_cache_destroy(c), -EDEADLK);
	urcu_bp_read_unlock();
	o = pcpu_cache_alloc(c, 0);
	ck_assert_ptr_nonnull(o);
	pcpu_cache_free(c, o);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	alarm(0);
}
END_TEST

/* --- fork, with and without liburcu's hooks ------------------------------ */

/* In a child: the parent's cache (RCU frees pending from before the
 * fork) and a new one both work, RCU frees included. */
static int child_work(struct pcpu_cache *parent_cache)
{
	struct pcpu_cache *c;
	void *v[100];
	int i;

	alarm(GUARD_SECONDS);
	for (i = 0; i < 100; i++) {
		v[i] = pcpu_cache_alloc(parent_cache, 0);
		if (!v[i])
			return 10;
	}
	for (i = 0; i < 100; i++)
		pcpu_cache_free_rcu(parent_cache, v[i]);
	c = pcpu_cache_create("child", 64, 0, NULL, NULL, NULL, 0);
	if (!c)
		return 11;
	for (i = 0; i < 100; i++)
		if (!(v[i] = pcpu_cache_alloc(c, 0)))
			return 12;
	for (i = 0; i < 100; i++)
		pcpu_cache_free_rcu(c, v[i]);
	if (pcpu_cache_destroy(c) != 0)
		return 13;
	if (pcpu_cache_destroy(parent_cache) != 0)
		return 14;
	return 0;
}

struct reader_job {
	int hold_ms;
	int started;
};

static void *reader_fn(void *p)
{
	struct reader_job *j = p;

	urcu_bp_read_lock();
	__atomic_store_n(&j->started, 1, __ATOMIC_RELEASE);
	usleep((useconds_t)j->hold_ms * 1000);
	urcu_bp_read_unlock();
	return NULL;
}

/*
 * Whether this build can run a fork case whose children start threads
 * (libpcpu's reclaim thread): 0, or 1 after saying why it skips.  As
 * test_fork: under ASan a multi-threaded fork case outlived its timeout
 * in CI, and ThreadSanitizer kills a child of a multi-threaded process
 * that starts a thread (die_after_fork); an emulator that cannot start a
 * thread in a fork child (tests/qemu-fork-thread.c) sets
 * PCPU_TEST_NO_FORK_THREAD.
 */
static int skip_fork_threads(const char *what)
{
#if PCPU__TSAN || defined(__SANITIZE_ADDRESS__)
	printf("%s: skipped under ThreadSanitizer/ASan\n", what);
	return 1;
#else
	if (getenv("PCPU_TEST_NO_FORK_THREAD")) {
		printf("%s: skipped (the emulator cannot start a thread in a "
		       "fork child)\n", what);
		return 1;
	}
	return 0;
#endif
}

/*
 * _i bit 0: the application calls liburcu's fork hooks around fork() (as
 * liburcu documents; the urcufork reproducer hung there).  _i bit 1: a
 * reader holds a read-side critical section while a batch is sent just
 * before fork(), so the reclaimer is inside a grace period at the fork.
 */
START_TEST(test_fork_urcu_hooks)
{
	int hooks = _i & 1, busy = _i & 2, status, i;
	struct pcpu_cache *c;
	struct reader_job rj = { 200, 0 };
	pthread_t rt;
	void *v[100];
	pid_t pid;

	if (skip_fork_threads("fork x urcu hooks"))
		return;
	alarm(GUARD_SECONDS);
	c = pcpu_cache_create("forked", 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(c);
	for (i = 0; i < 100; i++) {
		v[i] = pcpu_cache_alloc(c, 0);
		ck_assert_ptr_nonnull(v[i]);
	}
	if (busy) {
		ck_assert_int_eq(pthread_create(&rt, NULL, reader_fn, &rj), 0);
		while (!__atomic_load_n(&rj.started, __ATOMIC_ACQUIRE))
			usleep(100);
	}
	for (i = 0; i < 100; i++)
		pcpu_cache_free_rcu(c, v[i]);	/* one batch sent, one partial */
	if (busy)
		(void)pcpu_cache_shrink(c);	/* sends the partial one too */
	if (hooks) {
		urcu_bp_call_rcu_before_fork();
		urcu_bp_before_fork();
	}
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (hooks) {
			urcu_bp_after_fork_child();
			urcu_bp_call_rcu_after_fork_child();
		}
		_exit(child_work(c));
	}
	if (hooks) {
		urcu_bp_after_fork_parent();
		urcu_bp_call_rcu_after_fork_parent();
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child (hooks %d, busy %d): status 0x%x", hooks, busy,
		      status);
	if (busy)
		pthread_join(rt, NULL);
	ck_assert_int_eq(pcpu_cache_destroy(c), 0);
	alarm(0);
}
END_TEST

/*
 * fork() inside a read-side critical section while another thread keeps
 * libpcpu's reclaimer in grace periods (the review's fork_in_readside:
 * the prepare handler called urcu_bp_before_fork(), which waited for the
 * grace-period lock that the reclaimer held while it waited for the
 * forking reader: every run hung within 17 forks).  Neither the parent
 * nor any child may hang; a child whose liburcu state could not be
 * repaired keeps its RCU frees pending and its waits fail with EDEADLK,
 * a repaired one frees them (both answers are checked for what they say).
 */
struct freer_job {
	struct pcpu_cache *c;
	int stop;
	unsigned long frees;
};

static void *freer_fn(void *p)
{
	struct freer_job *j = p;
	void *o;

	while (!__atomic_load_n(&j->stop, __ATOMIC_ACQUIRE)) {
		o = pcpu_cache_alloc(j->c, 0);
		if (o) {
			pcpu_cache_free_rcu(j->c, o);
			/* Relaxed: a count the main thread polls. */
			__atomic_fetch_add(&j->frees, 1, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

/* A cache named @name and a thread freeing into it with free_rcu,
 * started: libpcpu's RCU frees are in use when this returns. */
static void freer_start(struct freer_job *j, pthread_t *t, const char *name)
{
	j->c = pcpu_cache_create(name, 64, 0, NULL, NULL, NULL, 0);
	ck_assert_ptr_nonnull(j->c);
	ck_assert_int_eq(pthread_create(t, NULL, freer_fn, j), 0);
	while (!__atomic_load_n(&j->frees, __ATOMIC_RELAXED))
		usleep(100);
}

/* Stop @j's threads (@t and, if @t2, *@t2): they poll j->stop. */
static void freer_stop(struct freer_job *j, pthread_t t, pthread_t *t2)
{
	__atomic_store_n(&j->stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	if (t2)
		pthread_join(*t2, NULL);
}

/* Wait for child @pid; count it in *@bad unless it exited 0, the first
 * such status (-1: fork failed) in *@first_bad. */
static void reap(pid_t pid, int *bad, int *first_bad)
{
	int status = -1;

	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (!(*bad)++)
			*first_bad = pid < 0 ? -1 : status;
	}
}

/* In the child: free_rcu, shrink and a cache of its own never hang. */
static int reader_child(struct pcpu_cache *parent_cache)
{
	struct pcpu_cache *c;
	void *o;
	int r;

	alarm(GUARD_SECONDS);
	urcu_bp_read_unlock();		/* the parent's section, copied */
	o = pcpu_cache_alloc(parent_cache, 0);
	if (!o)
		return 20;
	pcpu_cache_free_rcu(parent_cache, o);
	(void)pcpu_cache_shrink(parent_cache);
	c = pcpu_cache_create("child", 64, 0, NULL, NULL, NULL, 0);
	if (!c)
		return 21;
	if (!(o = pcpu_cache_alloc(c, 0)))
		return 22;
	pcpu_cache_free_rcu(c, o);
	r = pcpu_cache_destroy(c);
	/* 0: repaired, the free was waited for; -EDEADLK: not repaired,
	 * nothing done (the cache is still usable). */
	if (r == -EDEADLK) {
		if (!(o = pcpu_cache_alloc(c, 0)))
			return 23;
		pcpu_cache_free(c, o);
		return 0;
	}
	return r == 0 ? 0 : 24;
}

/* The application's own grace periods, in a loop (_i == 1). */
static void *syncer_fn(void *p)
{
	struct freer_job *j = p;

	while (!__atomic_load_n(&j->stop, __ATOMIC_ACQUIRE))
		urcu_bp_synchronize_rcu();
	return NULL;
}

START_TEST(test_fork_in_reader)
{
	struct freer_job j = { NULL, 0, 0 };
	int i, bad = 0, first_bad = 0, forks = 300;
	pthread_t t, st;
	pid_t pid;

	if (skip_fork_threads("fork in reader"))
		return;
	alarm(GUARD_SECONDS * 3);
	/* Forks begin once libpcpu has RCU frees of its own: before that,
	 * liburcu's fork hooks are the application's business alone.
	 * _i 1: another thread of the application runs grace periods too
	 * (libpcpu's prepare called the hook unless its own reclaimer was
	 * in one: the hook waited for that thread's grace period, which
	 * waited for us; 2 runs in 3 in review). */
	freer_start(&j, &t, "reader_fork");
	if (_i)
		ck_assert_int_eq(pthread_create(&st, NULL, syncer_fn, &j), 0);
	for (i = 0; i < forks; i++) {
		urcu_bp_read_lock();
		pid = fork();
		if (pid == 0)
			_exit(reader_child(j.c));
		urcu_bp_read_unlock();
		reap(pid, &bad, &first_bad);
	}
	freer_stop(&j, t, _i ? &st : NULL);
	ck_assert_msg(bad == 0, "%d of %d children failed; first: status "
		      "0x%x", bad, forks, first_bad);
	ck_assert_uint_gt(j.frees, 0);
	ck_assert_int_eq(pcpu_cache_destroy(j.c), 0);
	alarm(0);
}
END_TEST

/*
 * A child forked while another thread keeps calling free_rcu destroys the
 * inherited cache: 0, or -EBUSY for the object the vanished thread held,
 * never a wait.  (The free counted the object pending before it took its
 * CPU's batch lock, which fork prepare holds: the thread parked there
 * left the child an object pending and in no batch, and destroy waited
 * for it forever, 11 children in 40 in review.)
 */
START_TEST(test_fork_child_destroy)
{
	struct freer_job j = { NULL, 0, 0 };
	int i, bad = 0, first_bad = 0, forks = 60, r;
	pthread_t t;
	pid_t pid;

	if (skip_fork_threads("fork child destroy"))
		return;
	alarm(GUARD_SECONDS * 3);
	freer_start(&j, &t, "child_destroy");
	for (i = 0; i < forks; i++) {
		pid = fork();
		if (pid == 0) {
			alarm(5);
			r = pcpu_cache_destroy(j.c);
			_exit(r == 0 || r == -EBUSY ? 0 : 2);
		}
		reap(pid, &bad, &first_bad);
	}
	freer_stop(&j, t, NULL);
	ck_assert_msg(bad == 0, "%d of %d children failed (0x%x: killed by "
		      "signal %d means a hang)", bad, forks, first_bad,
		      WIFSIGNALED(first_bad) ? WTERMSIG(first_bad) : 0);
	ck_assert_int_eq(pcpu_cache_destroy(j.c), 0);
	alarm(0);
}
END_TEST

static Suite *cache_v2_suite(void)
{
	Suite *s = suite_create("cache_v2");
	TCase *tc;

	tc = tu_tcase(s, "ctor_failure", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_ctor_fail_one_in_three);
	tcase_add_loop_test(tc, test_ctor_fail_random, 0, 4);
	tcase_add_test(tc, test_ctor_fail_always_then_recovers);

	tc = tu_tcase(s, "ctor_cycle", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_ctor_cycle, 0, 3);
	tcase_add_test(tc, test_ctor_chain_too_deep);

	tc = tu_tcase(s, "destroy_rcu", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_destroy_in_call_rcu_callback);
	tcase_add_test(tc, test_destroy_on_reclaimer);
	tcase_add_test(tc, test_destroy_in_read_section);

	tc = tu_tcase(s, "fork", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_fork_urcu_hooks, 0, 4);
	tcase_add_loop_test(tc, test_fork_in_reader, 0, 2);
	tcase_add_test(tc, test_fork_child_destroy);
	return s;
}

int main(void)
{
	return tu_main(cache_v2_suite());
}
