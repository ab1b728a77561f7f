/* SPDX-License-Identifier: MIT */
/*
 * tcaction.c - tc-action-like objects from a pcpu_cache.
 *
 * An action owns three per-CPU areas (byte/packet counts, drops, queue
 * stats), allocated by the constructor and kept across reuse.  Two threads
 * insert actions into a shared table and remove them, freeing each one
 * with pcpu_cache_free(), pcpu_cache_free_bulk() or pcpu_cache_free_rcu()
 * (as the kernel's tcf_idr_release does after an RCU grace period).
 * A removed action is put back in its constructed state: its per-CPU
 * counts zeroed.
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
	struct bstats *bstats;		/* per-CPU */
	uint64_t *drops;		/* per-CPU */
	uint64_t *qlen;			/* per-CPU */
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
	a->bstats = pcpu_alloc(sizeof(struct bstats), 0);
	a->drops = pcpu_alloc(sizeof(uint64_t), 0);
	a->qlen = pcpu_alloc(sizeof(uint64_t), 0);
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

/* Check an action's counts and zero them: its constructed state again. */
static int act_reset(struct action *a)
{
	uint64_t packets = 0;
	unsigned s;

	for (s = 0; s < pcpu_nr_slots(); s++) {
		struct bstats *b = pcpu_ptr(a->bstats, s);

		packets += b->packets;
		b->bytes = b->packets = 0;
		*(uint64_t *)pcpu_ptr(a->drops, s) = 0;
		*(uint64_t *)pcpu_ptr(a->qlen, s) = 0;
	}
	return packets == a->id % 7 + 1 ? 0 : -1;
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
		pthread_mutex_lock(&table_lock);
		a = table[k];
		table[k] = NULL;
		if (a)
			removed++;
		pthread_mutex_unlock(&table_lock);
		if (a) {			/* remove */
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
		for (k = 0; k <= a->id % 7; k++) {
			struct bstats *b = pcpu_ptr(a->bstats, pcpu_this_slot());

			b->packets++;		/* not shared yet: plain adds */
			b->bytes += 1500;
		}
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
		st.ctor_calls != ctors || st.ctor_calls * 4 > st.allocs;
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
