/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c - fork() while other threads are inside the library.
 *
 * Each test starts workers that keep the library busy in one way (holding
 * the allocator lock; upgrading DUAL counters, whose first add from a
 * second thread allocates with only a trylock; allocating and freeing
 * cache objects, making and releasing slabs, freeing through RCU), then
 * forks again and again.  Every child must be able to use the whole
 * library: allocate, update, sum and free, create and destroy caches,
 * free through RCU and have that complete; it checks what it sees and
 * reports through its exit status (it asserts nothing itself), within a
 * time limit (alarm: a deadlocked child is killed and counted).
 *
 * Counts: every worker iteration adds 1 to a LAZY counter and to a DUAL
 * counter (owned by the forking thread, shared by the workers), BATCH to
 * a third counter (so that every add folds: a fold is two writes, which
 * the fork handlers must not let fork() split), and then records that it
 * did.  A child's copy of the counters must hold what its
 * copy of the records says, or at most one more per worker (an add that
 * was done, its record not yet), and its own updates must count exactly.
 * The parent's counters must be exact once the workers are joined.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <urcu/urcu-bp.h>

#define NWORKERS	2
#define NFORKS		24	/* PCPU_TEST_FORKS overrides (valgrind) */
#define CHILD_SECONDS	15	/* a child still running then is stuck */

enum kind { KIND_ALLOC, KIND_UPGRADE, KIND_CACHE };

struct fobj {
	struct pcpu_counter ctr;	/* DUAL, from the constructor */
	void *area;			/* per-CPU area, from the constructor */
	uint64_t magic;
};

#define FOBJ_MAGIC	0xF0F0C0DEULL

struct worker {
	unsigned id;
	enum kind kind;
	uint64_t done;			/* iterations counted: relaxed stores
					   by the worker, read after join or
					   in a child's copy */
	struct tu_worker_rec rec;
} __attribute__((aligned(TU_CACHELINE)));

static struct {
	struct tu_gate gate;
	struct pcpu_counter lazy;	/* +1 per worker iteration */
	struct pcpu_counter dual;	/* +1 per iteration, owned by main */
	struct pcpu_counter fold;	/* +BATCH per iteration: folds */
	struct pcpu_cache *cache;
	/* KIND_UPGRADE hand-off: worker 0 makes a counter, worker 1 adds. */
	struct pcpu_counter up;
	unsigned up_seq, up_ack;	/* acquire/release hand-off */
	int up_gone;			/* worker 1 left: release */
	int64_t main_adds;		/* the forking thread's own adds */
	struct worker w[NWORKERS];
} F;

static int fobj_ctor(void *p, void *arg)
{
	struct fobj *o = p;
	int err;

	(void)arg;
	err = pcpu_counter_init(&o->ctr, 0, PCPU_COUNTER_DUAL);
	if (err)
		return err;
	o->area = pcpu_alloc(256, 64);
	if (!o->area) {
		err = -errno;
		pcpu_counter_destroy(&o->ctr);
		return err;
	}
	o->magic = FOBJ_MAGIC;
	return 0;
}

static void fobj_dtor(void *p, void *arg)
{
	struct fobj *o = p;

	(void)arg;
	pcpu_free(o->area);
	pcpu_counter_destroy(&o->ctr);
}

static void count_one(struct worker *w)
{
	pcpu_counter_inc(&F.lazy);
	pcpu_counter_inc(&F.dual);
	pcpu_counter_add(&F.fold, PCPU_COUNTER_BATCH);
	/* Relaxed: only read after join (ordered by it) or in a child,
	 * whose copy is bounded as the header comment says. */
	__atomic_store_n(&w->done, w->done + 1, __ATOMIC_RELAXED);
}

static void work_alloc(struct worker *w, uint64_t *seed)
{
	struct pcpu_counter c;
	size_t size = 8 + tu_rand_below(seed, 4096);
	int64_t *a = pcpu_alloc(size, 8);

	if (!a) {
		tu_rec_fail(&w->rec, "pcpu_alloc(%zu): errno %d", size, errno);
		return;
	}
	*(int64_t *)pcpu_ptr(a, 0) = 1;
	pcpu_free(a);
	if (pcpu_counter_init(&c, 1, tu_rand_below(seed, 2) ?
			      PCPU_COUNTER_LAZY : PCPU_COUNTER_EAGER)) {
		tu_rec_fail(&w->rec, "counter init failed");
		return;
	}
	pcpu_counter_inc(&c);
	if (pcpu_counter_sum(&c) != 2)
		tu_rec_fail(&w->rec, "counter sum %lld, want 2",
			    (long long)pcpu_counter_sum(&c));
	pcpu_counter_destroy(&c);
	count_one(w);
}

/* Worker 0 makes a DUAL counter; worker 1's add upgrades it. */
static void work_upgrade(struct worker *w)
{
	unsigned spins = 0, seq;

	if (w->id == 0) {
		if (pcpu_counter_init(&F.up, 0, PCPU_COUNTER_DUAL)) {
			tu_rec_fail(&w->rec, "DUAL init failed");
			return;
		}
		seq = __atomic_load_n(&F.up_seq, __ATOMIC_RELAXED) + 1;
		/* Release: the counter's init before worker 1's add. */
		__atomic_store_n(&F.up_seq, seq, __ATOMIC_RELEASE);
		/* Until worker 1 added, or left for good without touching
		 * this counter (acquire: pairs with its release). */
		while (__atomic_load_n(&F.up_ack, __ATOMIC_ACQUIRE) != seq &&
		       !__atomic_load_n(&F.up_gone, __ATOMIC_ACQUIRE))
			tu_relax(&spins);
		if (__atomic_load_n(&F.up_ack, __ATOMIC_ACQUIRE) == seq &&
		    pcpu_counter_sum(&F.up) != 1)
			tu_rec_fail(&w->rec, "upgraded sum %lld, want 1",
				    (long long)pcpu_counter_sum(&F.up));
		pcpu_counter_destroy(&F.up);
		count_one(w);
		return;
	}
	seq = __atomic_load_n(&F.up_ack, __ATOMIC_RELAXED) + 1;
	/* Acquire: pairs with worker 0's release of the new counter. */
	while (__atomic_load_n(&F.up_seq, __ATOMIC_ACQUIRE) != seq) {
		if (tu_gate_stopped(&F.gate) &&
		    __atomic_load_n(&F.up_seq, __ATOMIC_ACQUIRE) != seq) {
			/* Release: we touch no counter of worker 0 again. */
			__atomic_store_n(&F.up_gone, 1, __ATOMIC_RELEASE);
			return;
		}
		tu_relax(&spins);
	}
	pcpu_counter_inc(&F.up);		/* the upgrade */
	/* Release: our add before worker 0's sum and destroy. */
	__atomic_store_n(&F.up_ack, seq, __ATOMIC_RELEASE);
	count_one(w);
}

static void work_cache(struct worker *w, uint64_t *seed)
{
	void *objs[40];
	size_t n = 1 + tu_rand_below(seed, 40), i;

	if (pcpu_cache_alloc_bulk(F.cache, 0, n, objs) != n) {
		tu_rec_fail(&w->rec, "alloc_bulk(%zu): errno %d", n, errno);
		return;
	}
	for (i = 0; i < n; i++) {
		struct fobj *o = objs[i];

		if (o->magic != FOBJ_MAGIC)
			tu_rec_fail(&w->rec, "object not constructed");
		pcpu_counter_inc(&o->ctr);
		pcpu_counter_reset(&o->ctr);
	}
	switch (tu_rand_below(seed, 4)) {
	case 0:
		pcpu_cache_free_bulk(F.cache, n, objs);
		break;
	case 1:
		for (i = 0; i < n; i++)
			pcpu_cache_free_rcu(F.cache, objs[i]);
		break;
	case 2:
		for (i = 0; i < n; i++)
			pcpu_cache_free(F.cache, objs[i]);
		(void)pcpu_cache_shrink(F.cache);	/* slabs go */
		break;
	default:
		for (i = 0; i < n; i++)
			pcpu_cache_free(F.cache, objs[i]);
	}
	count_one(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = tu_rand_seed(w->id + 77);

	tu_gate_wait(&F.gate);
	while (!tu_gate_stopped(&F.gate) && !w->rec.failed) {
		switch (w->kind) {
		case KIND_ALLOC:
			work_alloc(w, &seed);
			break;
		case KIND_UPGRADE:
			work_upgrade(w);
			break;
		case KIND_CACHE:
			work_cache(w, &seed);
			break;
		}
	}
	/* Worker 1 may leave between two of worker 0's counters (it saw the
	 * stop after its add; worker 0, just before, did not): worker 0 must
	 * not wait for an add that never comes (found looping the test: a
	 * hang 1 run in 300).  Release: as in work_upgrade(). */
	if (w->kind == KIND_UPGRADE && w->id == 1)
		__atomic_store_n(&F.up_gone, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* --- the child ----------------------------------------------------------- */

/* Where a child leaves its failing line and what it saw (an exit status
 * has 8 bits): shared memory, read by the parent after waitpid(). */
static struct child_report {
	int line;
	long long recorded, lazy, dual, fold;
} *child_rep;

static void *child_thread_adds(void *arg)
{
	struct pcpu_counter *c = arg;
	int i;

	for (i = 0; i < 1000; i++)
		pcpu_counter_inc(c);
	return NULL;
}

/* Everything a child must be able to do.  0, or the failing line. */
static int child_work(void)
{
	uint64_t recorded = 0;
	int64_t v, d, f;
	struct pcpu_counter c[3];
	struct pcpu_cache *cache;
	struct pcpu_cache_stats st;
	void *a, *objs[16];
	unsigned i;

	/* The counts the parent had: within one add per worker. */
	for (i = 0; i < NWORKERS; i++)
		recorded += F.w[i].done;
	v = pcpu_counter_sum(&F.lazy);
	d = pcpu_counter_sum(&F.dual) - F.main_adds;
	f = pcpu_counter_sum(&F.fold);
	child_rep->recorded = (long long)recorded;
	child_rep->lazy = v;
	child_rep->dual = d;
	child_rep->fold = f;
	if (v < (int64_t)recorded || v > (int64_t)recorded + NWORKERS)
		return __LINE__;
	if (d < (int64_t)recorded || d > (int64_t)recorded + NWORKERS)
		return __LINE__;
	if (f < (int64_t)recorded * PCPU_COUNTER_BATCH ||
	    f > ((int64_t)recorded + NWORKERS) * PCPU_COUNTER_BATCH ||
	    f % PCPU_COUNTER_BATCH != 0)
		return __LINE__;
	/* Our own updates count exactly, from this thread and another. */
	for (i = 0; i < 500; i++) {
		pcpu_counter_inc(&F.lazy);
		pcpu_counter_add(&F.dual, 2);
	}
	if (tu_run_in_thread(child_thread_adds, &F.lazy) ||
	    tu_run_in_thread(child_thread_adds, &F.dual))
		return __LINE__;
	if (pcpu_counter_sum(&F.lazy) != v + 1500 ||
	    pcpu_counter_sum(&F.dual) != F.main_adds + d + 2000)
		return __LINE__;

	/* Allocate, update, sum, free. */
	a = pcpu_alloc(4096, 64);
	if (!a)
		return __LINE__;
	for (i = 0; i < pcpu_nr_slots(); i++)
		if (*(int64_t *)pcpu_ptr(a, i) != 0)
			return __LINE__;
	pcpu_free(a);
	if (pcpu_counter_init(&c[0], 5, PCPU_COUNTER_DUAL) ||
	    pcpu_counter_init(&c[1], 5, PCPU_COUNTER_LAZY) ||
	    pcpu_counter_init(&c[2], 5, PCPU_COUNTER_EAGER))
		return __LINE__;
	for (i = 0; i < 3; i++) {
		pcpu_counter_add(&c[i], 10);
		if (tu_run_in_thread(child_thread_adds, &c[i]))
			return __LINE__;
		if (pcpu_counter_sum(&c[i]) != 1015 ||
		    pcpu_counter_compare(&c[i], 1015) != 0)
			return __LINE__;
	}
	if (!pcpu_counter_is_shared(&c[0]))	/* upgraded by the thread */
		return __LINE__;
	for (i = 0; i < 3; i++)
		pcpu_counter_destroy(&c[i]);

	/* The parent's cache, where workers may have been mid-way. */
	if (F.cache) {
		if (pcpu_cache_alloc_bulk(F.cache, 0, 16, objs) != 16)
			return __LINE__;
		for (i = 0; i < 16; i++)
			if (((struct fobj *)objs[i])->magic != FOBJ_MAGIC)
				return __LINE__;
		pcpu_cache_free_bulk(F.cache, 8, objs);
		for (i = 8; i < 16; i++)
			pcpu_cache_free_rcu(F.cache, objs[i]);
		(void)pcpu_cache_shrink(F.cache);
		if (pcpu_cache_stats(F.cache, &st))
			return __LINE__;
	}

	/* A new cache, RCU frees completing, destroy. */
	cache = pcpu_cache_create("child", sizeof(struct fobj), 0, fobj_ctor,
				  fobj_dtor, NULL, PCPU_CACHE_DEBUG);
	if (!cache)
		return __LINE__;
	if (pcpu_cache_alloc_bulk(cache, 0, 16, objs) != 16)
		return __LINE__;
	for (i = 0; i < 16; i++)
		pcpu_cache_free_rcu(cache, objs[i]);
	if (pcpu_cache_destroy(cache) != 0)	/* waits for the 16 */
		return __LINE__;
	return 0;
}

/* --- the parent ---------------------------------------------------------- */

static unsigned nforks(void)
{
	const char *e = getenv("PCPU_TEST_FORKS");
	long v = e ? strtol(e, NULL, 10) : 0;

	return v > 0 && v < 10000 ? (unsigned)v : NFORKS;
}

/*
 * Can this machine fork a process whose other threads are running, and
 * start a thread in the child, at all?  qemu-user 7.2 cannot (its TCG
 * asserts in the child, "cpu == current_cpu": the aarch64 run of
 * tests/cross-aarch64.sh).  The probe uses no libpcpu, so no bug of ours
 * can make the tests skip.
 */
static void *spin_fn(void *arg)
{
	int *stop = arg;
	unsigned spins = 0;

	/* Running: the fork below then finds it spinning, not starting. */
	__atomic_store_n(&stop[1], 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop[0], __ATOMIC_ACQUIRE))
		tu_relax(&spins);
	return NULL;
}

static bool fork_with_threads_works(void)
{
	static int known = -1;
	int stop[2] = { 0, 0 }, i, st, ok = 1;
	unsigned spins = 0;
	pthread_t t;

	if (known >= 0)
		return known;
	if (pthread_create(&t, NULL, spin_fn, stop))
		return false;
	while (!__atomic_load_n(&stop[1], __ATOMIC_ACQUIRE))
		tu_relax(&spins);
	for (i = 0; i < 8 && ok; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			/* The child starts a thread of its own, as the
			 * tests' children do. */
			pthread_t c;
			int cstop[2] = { 1, 0 };

			alarm(CHILD_SECONDS);
			if (pthread_create(&c, NULL, spin_fn, cstop))
				_exit(1);
			_exit(pthread_join(c, NULL) ? 1 : 0);
		}
		ok = pid > 0 && waitpid(pid, &st, 0) == pid &&
		     WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	__atomic_store_n(&stop[0], 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	known = ok;
	return ok;
}

static void fork_under_load(enum kind kind)
{
	pthread_t tids[NWORKERS];
	unsigned i, forks = 0, bad = 0;
	char why[300] = "";
	uint64_t total = 0, seed = tu_rand_seed(kind);

#if defined(__SANITIZE_ADDRESS__) || PCPU__TSAN
	/*
	 * GCC 12's sanitizer runtimes do not lock their allocator around
	 * fork(): a child forked while another thread is inside malloc
	 * deadlocks in the runtime (seen: the child's thread blocked in
	 * SizeClassAllocator64::GetFromAllocator), whatever libpcpu does.
	 * The native, valgrind, norseq and rseq-own runs cover fork.
	 */
	printf("test_fork: skipped: the sanitizer's allocator is not "
	       "fork-safe with threads\n");
	return;
#endif
	if (!fork_with_threads_works()) {
		printf("test_fork: skipped: a child forked while another "
		       "thread runs fails here without libpcpu (qemu-user)\n");
		return;
	}
	child_rep = mmap(NULL, sizeof(*child_rep), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(child_rep != MAP_FAILED);
	memset(&F, 0, sizeof(F));
	tu_gate_init(&F.gate);
	ck_assert_int_eq(pcpu_counter_init(&F.lazy, 0, PCPU_COUNTER_LAZY), 0);
	ck_assert_int_eq(pcpu_counter_init(&F.dual, 0, PCPU_COUNTER_DUAL), 0);
	ck_assert_int_eq(pcpu_counter_init(&F.fold, 0, PCPU_COUNTER_LAZY), 0);
	if (kind == KIND_CACHE) {
		F.cache = pcpu_cache_create("fork", sizeof(struct fobj), 0,
					    fobj_ctor, fobj_dtor, NULL, 0);
		ck_assert_ptr_nonnull(F.cache);
	}
	for (i = 0; i < NWORKERS; i++) {
		F.w[i].id = i;
		F.w[i].kind = kind;
	}
	ck_assert_int_eq(tu_spawn(tids, NWORKERS, worker_main, F.w,
				  sizeof(F.w[0])), 0);
	tu_gate_open(&F.gate);

	for (i = 0; i < nforks(); i++) {
		pid_t pid;
		int status;

		usleep(1000 + tu_rand_below(&seed, 4000));
		pcpu_counter_inc(&F.dual);	/* the owner's path */
		F.main_adds++;
		pid = fork();
		if (pid == 0) {
			alarm(CHILD_SECONDS);
			child_rep->line = child_work();
			_exit(child_rep->line ? 1 : 0);
		}
		if (pid < 0) {
			snprintf(why, sizeof(why), "fork: errno %d", errno);
			bad++;
			break;
		}
		forks++;
		if (waitpid(pid, &status, 0) != pid) {
			bad++;
			continue;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			continue;
		bad++;
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "child killed by signal %d%s",
				 WTERMSIG(status), WTERMSIG(status) == SIGALRM ?
				 " (stuck: deadlock?)" : "");
		else
			snprintf(why, sizeof(why), "child failed at "
				 "test_fork.c:%d (it saw %lld records; lazy %lld, "
				 "dual less main's adds %lld, fold %lld)",
				 child_rep->line, child_rep->recorded,
				 child_rep->lazy, child_rep->dual,
				 child_rep->fold);
		break;			/* one is enough, and may be slow */
	}
	tu_gate_stop(&F.gate);
	tu_join(tids, NWORKERS);

	ck_assert_msg(bad == 0, "%u of %u children failed; last: %s", bad,
		      forks, why);
	for (i = 0; i < NWORKERS; i++) {
		ck_assert_msg(!F.w[i].rec.failed, "worker %u: %s", i,
			      F.w[i].rec.err);
		total += F.w[i].done;
	}
	ck_assert_msg(total > nforks(), "workers made only %llu iterations",
		      (unsigned long long)total);
	/* The parent lost nothing either. */
	ck_assert_int_eq(pcpu_counter_sum(&F.lazy), (int64_t)total);
	ck_assert_int_eq(pcpu_counter_sum(&F.dual), (int64_t)total + F.main_adds);
	ck_assert_int_eq(pcpu_counter_sum(&F.fold),
			 (int64_t)total * PCPU_COUNTER_BATCH);
	printf("fork (%s): %u children ok while workers ran %llu iterations\n",
	       kind == KIND_ALLOC ? "allocator" : kind == KIND_UPGRADE ?
	       "upgrade" : "cache", forks, (unsigned long long)total);
	pcpu_counter_destroy(&F.lazy);
	pcpu_counter_destroy(&F.dual);
	pcpu_counter_destroy(&F.fold);
	if (F.cache)
		ck_assert_int_eq(pcpu_cache_destroy(F.cache), 0);
	munmap(child_rep, sizeof(*child_rep));
}

START_TEST(test_fork_allocator_lock)
{
	fork_under_load(KIND_ALLOC);
}
END_TEST

START_TEST(test_fork_upgrade)
{
	fork_under_load(KIND_UPGRADE);
}
END_TEST

START_TEST(test_fork_cache)
{
	fork_under_load(KIND_CACHE);
}
END_TEST

static Suite *fork_suite(void)
{
	Suite *s = suite_create("fork");
	TCase *tc;

	tc = tu_tcase(s, "under_load", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_fork_allocator_lock);
	tcase_add_test(tc, test_fork_upgrade);
	tcase_add_test(tc, test_fork_cache);
	return s;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* nothing buffered at fork() */
	return tu_main(fork_suite());
}
