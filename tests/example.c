/* example.c - the README's example, checked: exits 0 only if the sum is exact. */
#include <pcpu.h>
#include <pthread.h>
#include <stdio.h>

#define N 1000000

static struct pcpu_counter hits;

static void *worker(void *arg)
{
	for (int i = 0; i < N; i++)
		pcpu_counter_inc(&hits);	/* per-CPU slot: no contention */
	return arg;
}

int main(void)
{
	pthread_t t[2];
	int64_t sum;

	if (pcpu_counter_init(&hits, 0, PCPU_COUNTER_DUAL))
		return 1;
	pcpu_counter_add(&hits, 42);		/* owner: a plain add */
	pcpu_counter_share(&hits);		/* optional: upgrade now */
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, worker, NULL))
			return 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	sum = pcpu_counter_sum(&hits);
	printf("%lld\n", (long long)sum);	/* 2000042 */
	pcpu_counter_destroy(&hits);
	return sum == 2 * N + 42 ? 0 : 1;
}
