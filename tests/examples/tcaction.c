/* SPDX-License-Identifier: MIT */
/*
 * tcaction.c - tc-action-like objects from a pcpu_cache.
 *
 * An action owns three lazy per-CPU areas (byte/packet counts, drops,
 * queue stats), allocated by the constructor and kept across reuse: no
 * copy is written until a slot updates it.  Two threads insert actions
 * into a shared table, update the statistics of any live action with
 * pcpu_area_add() (the kernel's this_cpu_add() on the action's per-CPU
 * stats) while the other thread may update the same one, and remove
 * actions, freeing each one with pcpu_cache_free(), pcpu_cache_free_bulk()
 * or pcpu_cache_free_rcu() (as the kernel's tcf_idr_release does after an
 * RCU grace period).  A removed action is checked (pcpu_area_sum()) and
 * put back in its constructed state with pcpu_area_zero(), which visits
 * only the slots that updated it: the cost does not grow with the slot
 * count.
 *
 * Exit status 0 on success.  Referenced from pcpu_cache_free_rcu(3).
 */
#include <pcpu.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define TABLE	512
#define OPS	200000

struct bstats { uint64_t bytes, packets; };

struct action {
	uint64_t id;
	struct bstats *bstats;		/* per-CPU, lazy */
	uint64_t *drops;		/* per-CPU, lazy */
	uint64_t *qlen;			/* per-CPU, lazy */
	int refs;			/* updaters inside (atomic) */
	uint64_t sent;			/* packets added (atomic) */
};

static unsigned long ctors, dtors;
static struct pcpu_cache *cache;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct action *table[TABLE];
static unsigned long inserted, removed, bad;	/* under table_lock */

static int act_ctor(void *obj, void *arg)
{
	struct action *a = obj;

	(void)arg;
	a->bstats = pcpu_alloc_lazy(sizeof(struct bstats), 0);
	a->drops = pcpu_alloc_lazy(sizeof(uint64_t), 0);
	a->qlen = pcpu_alloc_lazy(sizeof(uint64_t), 0);
	if (!a->bstats || !a->drops || !a->qlen) {
		pcpu_free(a->bstats);
		pcpu_free(a->drops);
		pcpu_free(a->qlen);
		return -ENOMEM;
	}
	__atomic_fetch_add(&ctors, 1, __ATOMIC_RELAXED);
	return 0;
}

static void act_dtor(void *obj, void *arg)
{
	struct action *a = obj;

	(void)arg;
	pcpu_free(a->bstats);
	pcpu_free(a->drops);
	pcpu_free(a->qlen);
	__atomic_fetch_add(&dtors, 1, __ATOMIC_RELAXED);
}

/* Check an action's counts and zero them: its constructed state again,
 * in time proportional to the slots that updated it. */
static int act_reset(struct action *a)
{
	/* Acquire: the updaters' adds, released with their references. */
	uint64_t sent = __atomic_load_n(&a->sent, __ATOMIC_ACQUIRE);
	int ok = (uint64_t)pcpu_area_sum(&a->bstats->packets) == sent &&
		 (uint64_t)pcpu_area_sum(&a->bstats->bytes) == 1500 * sent &&
		 (uint64_t)pcpu_area_sum(a->drops) == sent / 16;

	pcpu_area_zero(a->bstats);
	pcpu_area_zero(a->drops);
	pcpu_area_zero(a->qlen);
	a->sent = 0;
	return ok ? 0 : -1;
}

/* A packet through action @a, on whichever CPU we run. */
static void act_update(struct action *a)
{
	uint64_t n;

	pcpu_area_add(&a->bstats->bytes, 1500);
	pcpu_area_add(&a->bstats->packets, 1);
	pcpu_area_add(a->qlen, 1);
	pcpu_area_add(a->qlen, -1);
	/* Relaxed: the count is published by the reference's release. */
	n = __atomic_add_fetch(&a->sent, 1, __ATOMIC_RELAXED);
	if (n % 16 == 0)
		pcpu_area_add(a->drops, 1);
}

static void *worker(void *arg)
{
	unsigned long seed = (unsigned long)arg * 2654435761u + 1;
	void *batch[8];
	unsigned nb = 0, i, k;
	struct action *a;

	for (i = 0; i < OPS; i++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		k = (unsigned)(seed >> 33) % TABLE;
		if (i % 2) {			/* traffic through a live action */
			pthread_mutex_lock(&table_lock);
			a = table[k];
			if (a)
				__atomic_fetch_add(&a->refs, 1, __ATOMIC_RELAXED);
			pthread_mutex_unlock(&table_lock);
			if (a) {
				act_update(a);
				act_update(a);
				/* Release: our adds before the remover's
				 * acquire load of refs. */
				__atomic_fetch_sub(&a->refs, 1, __ATOMIC_RELEASE);
			}
			continue;
		}
		pthread_mutex_lock(&table_lock);
		a = table[k];
		table[k] = NULL;
		if (a)
			removed++;
		pthread_mutex_unlock(&table_lock);
		if (a) {			/* remove */
			/* Acquire: pairs with the updaters' release. */
			while (__atomic_load_n(&a->refs, __ATOMIC_ACQUIRE))
				;
			if (act_reset(a))
				__atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
			if (i % 3 == 0)
				pcpu_cache_free(cache, a);
			else if (i % 3 == 1)
				pcpu_cache_free_rcu(cache, a);
			else if ((batch[nb++] = a), nb == 8) {
				pcpu_cache_free_bulk(cache, nb, batch);
				nb = 0;
			}
			continue;
		}
		a = pcpu_cache_alloc(cache, 0);	/* insert */
		if (!a)
			return (void *)1L;
		a->id = seed >> 20;
		for (k = 0; k <= a->id % 7; k++)
			act_update(a);		/* not in the table yet */
		pthread_mutex_lock(&table_lock);
		for (k = (unsigned)a->id % TABLE; table[k]; k = (k + 1) % TABLE)
			;			/* never full: we removed one */
		table[k] = a;
		inserted++;
		pthread_mutex_unlock(&table_lock);
	}
	pcpu_cache_free_bulk(cache, nb, batch);
	return NULL;
}

int main(void)
{
	struct pcpu_cache_stats st;
	pthread_t t[2];
	unsigned long left = 0, i;
	void *ret;
	int fail = 0;

	cache = pcpu_cache_create("tc_action", sizeof(struct action), 0,
				  act_ctor, act_dtor, NULL, 0);
	if (!cache)
		return 1;
	for (i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)(i + 1)))
			return 1;
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], &ret);
		fail |= ret != NULL;
	}
	pcpu_cache_stats(cache, &st);
	for (i = 0; i < TABLE; i++)
		left += table[i] != NULL;
	printf("tcaction: %lu inserted, %lu removed, %lu left; %llu "
	       "constructor calls, %llu RCU frees pending\n", inserted,
	       removed, left, (unsigned long long)st.ctor_calls,
	       (unsigned long long)st.rcu_pending);
	/* in_use counts RCU-pending actions until their grace period ends. */
	fail |= inserted != removed + left || bad != 0 ||
		st.allocs != inserted || st.in_use < left ||
		st.in_use - left > st.rcu_pending ||
		st.ctor_calls < ctors || st.ctor_calls * 4 > st.allocs;
	for (i = 0; i < TABLE; i++)
		if (table[i]) {
			fail |= act_reset(table[i]) != 0;
			pcpu_cache_free(cache, table[i]);
		}
	/* Waits for the pending RCU frees, then destroys every action. */
	if (pcpu_cache_destroy(cache) != 0 || dtors != ctors)
		fail = 1;
	if (fail)
		fprintf(stderr, "tcaction: FAILED (bad %lu, dtors %lu, ctors "
			"%lu)\n", bad, dtors, ctors);
	return fail;
}
