/* SPDX-License-Identifier: MIT */
/*
 * lib/cache_rcu.c - pcpu_cache_free_rcu(): objects freed after a liburcu-bp
 * grace period, batched per CPU, reclaimed by libpcpu's own thread.  Above
 * the per-CPU layer (it frees through pcpu__free_many()).
 *
 * Batches.  pcpu_cache_free_rcu() puts the object into its CPU's batch
 * (under the array's rcu_lock); a batch is sent when it holds
 * PCPU_RCU_BATCH objects, when a free finds it PCPU_RCU_AGE_NS old, or by
 * shrink, deactivate and destroy.  Sent batches go onto one queue that
 * the reclaimer thread takes whole: it waits for one grace period
 * (urcu_bp_synchronize_rcu()) for all of them, then frees their objects
 * into the cache in bulk.
 *
 * Why a thread of our own and not liburcu's call_rcu worker.  Two things
 * needed a wait for our frees that liburcu's worker cannot give:
 *  - pcpu_cache_destroy() waits for the cache's pending frees.  With
 *    call_rcu that was urcu_bp_barrier(), which never returns when called
 *    on the call_rcu worker itself (from any RCU callback, or from a
 *    destructor a callback ran).  Waiting for our reclaimer works on
 *    liburcu's worker; on the reclaimer itself it would not, and there
 *    pcpu__rcu_flush() returns -EDEADLK with nothing done, as it does
 *    inside a read-side critical section.
 *  - fork().  With call_rcu, libpcpu called liburcu's fork hooks
 *    (urcu_bp_call_rcu_before_fork() and friends) from its atfork
 *    handlers unconditionally, and an application that also calls them,
 *    as liburcu tells it to, deadlocked: the hooks take non-recursive
 *    mutexes.  libpcpu no longer uses call_rcu, so it never needs the
 *    call_rcu hooks; its prepare handler pauses the reclaimer between
 *    passes and, in the child, a batch whose grace period was in progress
 *    is queued again and a new reclaimer is started on demand.
 *
 * One hook libpcpu still needs: urcu_bp_before_fork() and its after-fork
 * pair, which make liburcu's grace-period lock free and its reader
 * registry consistent in the child (without them a reader that was inside
 * a read-side critical section at fork() makes every grace period of the
 * child wait for a thread that does not exist there).  The application
 * may have called urcu_bp_before_fork() already; calling it again would
 * deadlock, and liburcu offers no way to ask.  But urcu_bp_before_fork()
 * blocks every signal of the calling thread until the after-fork hook, so
 * the prepare handler calls the pair exactly when the forking thread does
 * not have every signal blocked.  Both ways of forking thus work: the
 * application calls liburcu's hooks around fork() (then libpcpu calls
 * none), or it calls none (then libpcpu calls the urcu-bp pair).  What
 * does not work: calling urcu_bp_before_fork() and then unblocking a
 * signal before fork(), or blocking every signal around fork() without
 * calling liburcu's hooks while readers may be inside critical sections.
 *
 * The pause needs care in one place.  An application that called
 * urcu_bp_before_fork() holds liburcu's grace-period lock while fork()
 * runs our prepare handler, so a reclaimer inside urcu_bp_synchronize_rcu()
 * may be waiting for that lock: prepare must not wait for it then (it
 * waits for a grace period in progress only when it will call the hook
 * itself, and not when the forking thread is inside a read-side critical
 * section, which the grace period would wait for).  When it does not
 * wait, the child redoes that grace period.  Prepare always waits for the
 * freeing part of a pass (it takes cache locks, which prepare is about to
 * take itself).
 *
 * Invariants (rq_lock protects rq_*, but for rq_head: a lock-free stack,
 * pushed by push_batch() under the array's rcu_lock and taken whole by an
 * atomic exchange under rq_lock):
 *  1. rcu_pending of a cache counts its objects in batches: given to
 *     free_rcu and not yet freed (counted under the rcu_lock that puts
 *     them in a batch; an object that found no batch memory is freed by
 *     its own thread after a grace period, uncounted); they are counted
 *     in in_use too.  A batch is in exactly one place: a per-CPU slot
 *     (pc->rcu), the queue, rq_inflight (its
 *     grace period running), or the reclaimer's local list (being freed);
 *     it leaves its slot and joins the queue under the same hold of the
 *     slot's rcu_lock, so fork(), whose prepare takes every rcu_lock,
 *     never copies it in a vanished thread's local only.
 *  2. rq_phase is RQ_GP exactly while rq_inflight is the list whose grace
 *     period runs, RQ_CB while the reclaimer frees a list, else RQ_IDLE.
 *  3. While rq_pause is set the reclaimer takes no new list.
 *  4. Every decrement of rcu_pending is followed by a broadcast of rq_done
 *     under rq_lock, so a waiter that checked under rq_lock cannot miss it.
 *  5. For one fork, libpcpu calls urcu_bp_before_fork() (in prepare, with
 *     rq_lock held and the reclaimer paused) and its after-fork pair
 *     exactly when rq_bp_hooks is set: pcpu_cache_free_rcu() has been
 *     used (rq_used), the application did not call the hook, and the
 *     forking thread is not inside a read-side critical section (a grace
 *     period in progress would wait for it, and the hook for the grace
 *     period).
 *  6. In a fork child where libpcpu's objects wait for a grace period
 *     and neither libpcpu nor the application called the hooks (the
 *     last case above, or a first free_rcu racing with fork), rq_nogp
 *     is set: liburcu's grace-period lock may be held by the vanished
 *     reclaimer and its registry may name vanished readers, so libpcpu
 *     waits for no grace period there.  Objects given to
 *     pcpu_cache_free_rcu() in or before such a child stay pending (never
 *     freed: memory, not a hang), and waiting for them
 *     (pcpu_cache_destroy()) fails with EDEADLK.
 *
 * Fences: rcu_pending is decremented with release after the batch's
 * objects are back, and loaded with acquire by the waiters, so a destroy
 * that sees 0 sees the cache as the frees left it.  Its increment in
 * free_rcu is relaxed: only the same thread's later destroy, or a waiter
 * ordered by rq_lock, reads it.  Everything else is under a mutex.
 */
#include "cache.h"

#include <errno.h>
#include <signal.h>
#include <urcu/urcu-bp.h>

enum { RQ_IDLE, RQ_GP, RQ_CB };

static pthread_mutex_t rq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rq_work = PTHREAD_COND_INITIALIZER;	/* queue, unpause */
static pthread_cond_t rq_done = PTHREAD_COND_INITIALIZER;	/* a pass ended */
static struct pcpu_rcu_batch *rq_head;		/* sent, not yet taken;
						   atomic (push_batch()) */
static struct pcpu_rcu_batch *rq_inflight;	/* grace period running */
static int rq_phase;
static int rq_running;				/* the reclaimer exists */
static int rq_pause;				/* fork in progress */
static int rq_bp_hooks;		/* this fork: we called urcu_bp_*_fork() */
/* pcpu_cache_free_rcu() has been called in this process (or its parent):
 * only then are liburcu's fork hooks libpcpu's business (invariant 5).
 * Relaxed: it orders nothing.  A first free_rcu that races with a fork
 * prepare that read 0 has its object in a batch only if the child's copy
 * reads 1 (the store comes first, on the same thread), and the child
 * handler looks at that copy (invariant 6). */
static int rq_used;
/* A fork child whose liburcu state was not repaired (invariant 6): no
 * grace period may be waited for in this process.  Plain: written only
 * by the fork child handler, while the child has one thread, and
 * inherited by its children. */
static int rq_nogp;
/* This fork: the application's hooks ran (prepare to child handler,
 * under rq_lock). */
static int rq_fork_app;

/* Set on the reclaimer thread: waiting for our own frees is a deadlock. */
static __thread int pcpu_on_reclaimer
	__attribute__((tls_model("initial-exec")));

/* Free a batch's objects into its cache (invariant 1). */
static void batch_free(struct pcpu_rcu_batch *b)
{
	struct pcpu_cache *cache = b->cache;
	unsigned n = b->n;

	/* Still counted in in_use: freeing them counts them out. */
	pcpu__free_many(cache, n, b->objs, NULL, OBJ_RCU);
	pcpu__free_mem(b);
	/* Last, release: a destroy that loads 0 with acquire sees
	 * everything the free did to the cache. */
	__atomic_fetch_sub(&cache->rcu_pending, n, __ATOMIC_RELEASE);
}

static void free_list(struct pcpu_rcu_batch *list)
{
	struct pcpu_rcu_batch *b;

	while (list) {
		b = list;
		list = b->next;
		batch_free(b);
	}
}

static void *reclaimer(void *unused)
{
	struct pcpu_rcu_batch *list;

	(void)unused;
	pcpu_on_reclaimer = 1;
	pthread_mutex_lock(&rq_lock);
	for (;;) {
		while (!__atomic_load_n(&rq_head, __ATOMIC_RELAXED) || rq_pause)
			pthread_cond_wait(&rq_work, &rq_lock);
		/* Acquire: pairs with push_batch()'s release. */
		list = __atomic_exchange_n(&rq_head, NULL, __ATOMIC_ACQUIRE);
		rq_inflight = list;
		rq_phase = RQ_GP;
		pthread_mutex_unlock(&rq_lock);

		urcu_bp_synchronize_rcu();

		/* A fork between here and the lock redoes the grace period in
		 * the child: the list is still rq_inflight there. */
		pthread_mutex_lock(&rq_lock);
		rq_inflight = NULL;
		rq_phase = RQ_CB;
		pthread_mutex_unlock(&rq_lock);

		free_list(list);

		pthread_mutex_lock(&rq_lock);
		rq_phase = RQ_IDLE;
		pthread_cond_broadcast(&rq_done);	/* invariant 4 */
	}
	return NULL;
}

/* Start the reclaimer if it is not running.  Under rq_lock; 0 or -1. */
static int start_locked(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int err;

	if (rq_running)
		return 0;
	if (pthread_attr_init(&attr))
		return -1;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* No signal of the application's lands on our thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&t, &attr, reclaimer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		return -1;
	rq_running = 1;
	return 0;
}

/*
 * No reclaimer could be started: do its work here, for the whole queue.
 * Called with rq_lock held, returns with it held.
 */
static void reclaim_inline_locked(void)
{
	/* Acquire: pairs with push_batch()'s release. */
	struct pcpu_rcu_batch *list = __atomic_exchange_n(&rq_head, NULL,
							  __ATOMIC_ACQUIRE);

	pthread_mutex_unlock(&rq_lock);
	urcu_bp_synchronize_rcu();
	free_list(list);
	pthread_mutex_lock(&rq_lock);
	pthread_cond_broadcast(&rq_done);		/* invariant 4 */
}

/*
 * Put a batch on the queue without rq_lock, so that the callers can do it
 * while they still hold the array's rcu_lock (fork prepare takes rq_lock
 * before the rcu_locks): a fork then finds every batch either in its
 * array or on the queue, never only in a vanished thread's local.
 * Release: the batch's contents before the taker's acquire exchange.
 */
static void push_batch(struct pcpu_rcu_batch *b)
{
	struct pcpu_rcu_batch *head = __atomic_load_n(&rq_head,
						      __ATOMIC_RELAXED);

	do
		b->next = head;
	while (!__atomic_compare_exchange_n(&rq_head, &head, b, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* After push_batch(): wake (or start) the reclaimer, or reclaim here. */
static void kick(void)
{
	pthread_mutex_lock(&rq_lock);
	/* rq_nogp: the batches stay queued (invariant 6). */
	if (__atomic_load_n(&rq_head, __ATOMIC_RELAXED) && !rq_nogp) {
		if (start_locked() == 0)
			pthread_cond_signal(&rq_work);
		else
			reclaim_inline_locked();
	}
	pthread_mutex_unlock(&rq_lock);
}

/* Has the batch waited long enough to go out partly filled? */
static int batch_old(const struct pcpu_rcu_batch *b)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	return (now.tv_sec - b->born.tv_sec) * 1000000000L +
	       (now.tv_nsec - b->born.tv_nsec) >= PCPU_RCU_AGE_NS;
}

PCPU_API void pcpu_cache_free_rcu(struct pcpu_cache *cache, void *obj)
{
	struct pcpu_cache_cpu *pc;
	struct pcpu_rcu_batch *b, *full = NULL;

	if (!cache || !obj)
		return;
	if (cache->flags & PCPU_CACHE_DEBUG)
		/* Check now, with the caller's address; pending until the
		 * batch's free, which expects OBJ_RCU. */
		pcpu__debug_freeing(cache, obj, __builtin_return_address(0),
				    OBJ_IN_USE, OBJ_RCU);
	if (!__atomic_load_n(&rq_used, __ATOMIC_RELAXED))
		__atomic_store_n(&rq_used, 1, __ATOMIC_RELAXED);
	pc = pcpu__this_cpu_array(cache);
	pthread_mutex_lock(&pc->rcu_lock);
	b = pc->rcu;
	if (!b) {
		b = pcpu__malloc(sizeof(*b));
		if (!b) {
			/* No batch: this thread waits for the grace period
			 * and frees the object itself, uncounted (invariant
			 * 1); it stays in in_use until then.  Not in a child
			 * without grace periods (invariant 6): there it stays
			 * allocated. */
			pthread_mutex_unlock(&pc->rcu_lock);
			if (rq_nogp)
				return;
			urcu_bp_synchronize_rcu();
			pcpu__free_many(cache, 1, &obj, NULL, OBJ_RCU);
			return;
		}
		b->cache = cache;
		b->n = 0;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &b->born);
		pc->rcu = b;
	}
	b->objs[b->n++] = obj;
	/* Counted under the rcu_lock that put it in the batch (invariant 1):
	 * a fork, whose prepare holds every rcu_lock, copies both or neither
	 * (counted before the lock, an object of a thread parked on it was
	 * pending in the child and in no batch: its destroy waited forever,
	 * 11 children in 40).  Relaxed: see the essay (fences). */
	__atomic_fetch_add(&cache->rcu_pending, 1, __ATOMIC_RELAXED);
	if (b->n == PCPU_RCU_BATCH || batch_old(b)) {
		full = b;
		pc->rcu = NULL;
		push_batch(full);
	}
	pthread_mutex_unlock(&pc->rcu_lock);
	if (full)
		kick();
}

void pcpu__rcu_send_partial(struct pcpu_cache *cache)
{
	struct pcpu_rcu_batch *b;
	unsigned i;

	/* Relaxed: a hint; a free_rcu racing with us sends its own. */
	if (!__atomic_load_n(&cache->rcu_pending, __ATOMIC_RELAXED))
		return;
	for (i = 0; i < cache->nr_cpus; i++) {
		pthread_mutex_lock(&cache->cpus[i].rcu_lock);
		b = cache->cpus[i].rcu;
		cache->cpus[i].rcu = NULL;
		if (b)
			push_batch(b);
		pthread_mutex_unlock(&cache->cpus[i].rcu_lock);
		if (b)
			kick();
	}
}

int pcpu__rcu_flush(struct pcpu_cache *cache)
{
	/* Acquire: pairs with batch_free()'s release. */
	if (!__atomic_load_n(&cache->rcu_pending, __ATOMIC_ACQUIRE))
		return 0;
	/* The reclaimer would wait for itself; a grace period for this
	 * thread's own read-side critical section; none can end in a child
	 * that liburcu was not prepared for (invariant 6). */
	if (pcpu_on_reclaimer || rq_nogp || urcu_bp_read_ongoing())
		return -EDEADLK;
	pcpu__rcu_send_partial(cache);
	pthread_mutex_lock(&rq_lock);
	while (__atomic_load_n(&cache->rcu_pending, __ATOMIC_ACQUIRE)) {
		/* A fork child's queue has no reclaimer until asked. */
		/* Relaxed: a hint under rq_lock; takers exchange. */
		if (__atomic_load_n(&rq_head, __ATOMIC_RELAXED) &&
		    start_locked() != 0) {
			reclaim_inline_locked();
			continue;
		}
		if (__atomic_load_n(&rq_head, __ATOMIC_RELAXED))
			pthread_cond_signal(&rq_work);
		pthread_cond_wait(&rq_done, &rq_lock);
	}
	pthread_mutex_unlock(&rq_lock);
	return 0;
}

/* --- fork ---------------------------------------------------------------- */

/*
 * Is every signal that can be blocked blocked in this thread (as
 * urcu_bp_before_fork() leaves it)?  "Can be" is asked of the system, not
 * assumed: block everything for a moment and read the mask that results
 * (glibc never blocks its own two internal signals; qemu-user cannot
 * block the guest's last two real-time signals, and a fixed list made
 * libpcpu call urcu_bp_before_fork() a second time there: a hang).  The
 * thread's mask is back before we return; a signal that arrives in
 * between is merely delivered later.
 */
static int all_signals_blocked(void)
{
	sigset_t cur, all, full;
	int s;

	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, &cur))
		return 0;
	if (pthread_sigmask(SIG_SETMASK, &cur, &full))
		return 0;
	for (s = 1; s < NSIG; s++)
		if (sigismember(&full, s) == 1 && sigismember(&cur, s) != 1)
			return 0;
	return 1;
}

void pcpu__rcu_fork_prepare(void)
{
	int app_hooks = all_signals_blocked();
	/* urcu_bp_read_ongoing() last: only when the application has not
	 * taken liburcu's registry lock (it may register this thread, under
	 * it). */
	int hooks = __atomic_load_n(&rq_used, __ATOMIC_RELAXED) && !rq_nogp &&
		    !app_hooks && !urcu_bp_read_ongoing();

	pthread_mutex_lock(&rq_lock);
	rq_pause = 1;				/* invariant 3 */
	/* Wait for the grace period in progress only if we will call the
	 * hook: otherwise it may wait for this very reader, or for the lock
	 * the application's hook holds. */
	while (rq_phase == RQ_CB || (rq_phase == RQ_GP && hooks))
		pthread_cond_wait(&rq_done, &rq_lock);
	/*
	 * liburcu's own state (its registry, which the child must prune of
	 * vanished readers, and its grace-period lock) is made consistent
	 * by urcu_bp_before_fork(): ours to call unless the application
	 * called it, or no object of ours has waited for a grace period yet
	 * (invariant 5).  Not when this thread is a reader: any grace
	 * period in progress (our reclaimer's, or one of the application's
	 * threads') holds liburcu's grace-period lock and waits for this
	 * very reader, so the hook would wait for it forever (both hung in
	 * review).  That child gets liburcu as fork() found it (invariant
	 * 6).
	 */
	rq_bp_hooks = hooks;
	rq_fork_app = app_hooks;
	if (rq_bp_hooks)
		urcu_bp_before_fork();
}

void pcpu__rcu_fork_parent(void)
{
	if (rq_bp_hooks)
		urcu_bp_after_fork_parent();
	rq_pause = 0;
	pthread_cond_broadcast(&rq_work);
	pthread_mutex_unlock(&rq_lock);
}

void pcpu__rcu_fork_child(void)
{
	struct pcpu_rcu_batch **tail = &rq_head;

	if (rq_bp_hooks)
		urcu_bp_after_fork_child();
	/* Invariant 6: objects of ours wait for a grace period here (our
	 * prepare skipped the hook, or a first free_rcu raced with it:
	 * rq_used is what the copied memory says) and nobody repaired
	 * liburcu for this child. */
	if (!rq_bp_hooks && !rq_fork_app &&
	    __atomic_load_n(&rq_used, __ATOMIC_RELAXED))
		rq_nogp = 1;
	/* The reclaimer is gone: its grace period, if one ran, is redone. */
	while (*tail)
		tail = &(*tail)->next;
	*tail = rq_inflight;
	rq_inflight = NULL;
	rq_phase = RQ_IDLE;
	rq_running = 0;
	rq_pause = 0;
	/* Waiters of the parent do not exist here: fresh condition
	 * variables, with no stale waiter state. */
	pthread_cond_init(&rq_work, NULL);
	pthread_cond_init(&rq_done, NULL);
	pthread_mutex_unlock(&rq_lock);
}
