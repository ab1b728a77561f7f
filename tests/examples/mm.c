/* SPDX-License-Identifier: MIT */
/*
 * mm.c - an mm_struct-like object from a pcpu_cache.
 *
 * Each "mm" owns two DUAL counters (rss of file and anonymous pages) and a
 * lazy per-CPU array of concurrency ids.  The constructor allocates them
 * and the destructor frees them, so the per-CPU memory is paid once per
 * slab, not once per fork/exit.  Two threads create, use and free mms many
 * times; the constructor runs far fewer times than there are allocations.
 * A new mm's counters belong to the thread that first updates them (as a
 * child's mm belongs to the child, whoever made it), and on "exit" the
 * mm goes back to its constructed state: counters reset (to owner mode,
 * keeping their slots if they were ever shared) and the cid array zeroed
 * in time proportional to the slots that touched it.
 *
 * Exit status 0 on success.  Referenced from pcpu_cache_create(3).
 */
#include <pcpu.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ROUNDS	100000
#define NCIDS	4

struct mm {
	struct pcpu_counter rss[2];	/* file, anon */
	int64_t *cid;			/* per-CPU, lazy: NCIDS per slot */
};

static unsigned long ctors, dtors;	/* atomically updated */

static int mm_ctor(void *obj, void *arg)
{
	struct mm *mm = obj;
	int err;

	(void)arg;
	err = pcpu_counter_init_many(mm->rss, 0, PCPU_COUNTER_DUAL, 2);
	if (err)
		return err;
	mm->cid = pcpu_alloc_lazy(NCIDS * sizeof(int64_t), 0);
	if (!mm->cid) {
		pcpu_counter_destroy_many(mm->rss, 2);
		return -ENOMEM;
	}
	__atomic_fetch_add(&ctors, 1, __ATOMIC_RELAXED);
	return 0;
}

static void mm_dtor(void *obj, void *arg)
{
	struct mm *mm = obj;

	(void)arg;
	pcpu_free(mm->cid);
	pcpu_counter_destroy_many(mm->rss, 2);
	__atomic_fetch_add(&dtors, 1, __ATOMIC_RELAXED);
}

static struct pcpu_cache *mm_cache;

static void *task(void *arg)
{
	long bad = 0;
	int i, j;

	(void)arg;
	for (i = 0; i < ROUNDS; i++) {
		struct mm *mm = pcpu_cache_alloc(mm_cache, 0);	/* "fork" */

		if (!mm)
			return (void *)1L;
		/* The counters are constructed: zero, with no owner yet. */
		if (pcpu_counter_is_shared(&mm->rss[0]) ||
		    pcpu_area_sum(&mm->cid[0]) != 0)
			bad++;
		for (j = 0; j < 10; j++) {
			pcpu_counter_add(&mm->rss[0], 3);
			pcpu_counter_inc(&mm->rss[1]);
		}
		pcpu_area_add(&mm->cid[0], i);
		pcpu_area_add(&mm->cid[1], 1);
		if (pcpu_counter_sum(&mm->rss[0]) != 30 ||
		    pcpu_counter_sum(&mm->rss[1]) != 10 ||
		    pcpu_counter_is_shared(&mm->rss[0]) ||
		    pcpu_area_sum(&mm->cid[0]) != i ||
		    pcpu_area_sum(&mm->cid[1]) != 1)
			bad++;
		/* "exit": back to the constructed state, then free. */
		pcpu_area_zero(mm->cid);
		pcpu_counter_reset(&mm->rss[0]);
		pcpu_counter_reset(&mm->rss[1]);
		pcpu_cache_free(mm_cache, mm);
	}
	return (void *)bad;
}

int main(void)
{
	struct pcpu_cache_stats st;
	pthread_t t[2];
	void *ret;
	long bad = 0;
	int i;

	mm_cache = pcpu_cache_create("mm_struct", sizeof(struct mm), 0,
				     mm_ctor, mm_dtor, NULL, 0);
	if (!mm_cache) {
		perror("pcpu_cache_create");
		return 1;
	}
	for (i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, task, NULL))
			return 1;
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], &ret);
		bad += (long)ret;
	}
	pcpu_cache_stats(mm_cache, &st);
	printf("mm: %llu allocations (%llu lockless), %zu slabs of %zu, "
	       "%llu constructor calls, %zu in use\n",
	       (unsigned long long)st.allocs,
	       (unsigned long long)st.lockless_allocs, st.slabs,
	       st.objs_per_slab, (unsigned long long)st.ctor_calls, st.in_use);
	if (bad || st.allocs != 2 * ROUNDS || st.in_use != 0 ||
	    st.ctor_calls != ctors || st.ctor_calls * 10 > st.allocs) {
		fprintf(stderr, "mm: unexpected counts (bad sums: %ld)\n", bad);
		return 1;
	}
	if (pcpu_cache_destroy(mm_cache) != 0 || dtors != ctors) {
		fprintf(stderr, "mm: destroy failed or %lu dtors for %lu "
			"ctors\n", dtors, ctors);
		return 1;
	}
	return 0;
}
