/* SPDX-License-Identifier: MIT */
/*
 * tests/examples/metrics.c - a Prometheus-style metrics registry on libpcpu.
 *
 * A service counts its requests per label set: one series per user (many
 * thousands, each updated by the one worker that serves that user) and a
 * few per status code and for bytes sent (updated by every worker).  Each
 * series is a struct pcpu_counter with the default policy, DUAL: a user's
 * series is a plain integer of the worker that created it and costs no
 * per-CPU memory; a status series is upgraded to per-CPU slots when the
 * second worker first updates it, and from then on the workers do not
 * contend for its cache line.
 *
 *   workers (2)   a synthetic request loop: look the series up (creating
 *                 it on a miss), add, inside a liburcu-bp read-side
 *                 critical section.
 *   reporter      every PERIOD_US, prints every series in the text
 *                 exposition format ("name{labels} value") to a buffer, or
 *                 to stdout with --stdout, and checks that no counter's
 *                 value went down since the last report of the same
 *                 series.
 *   main thread   meanwhile deletes user series: unlinks them under the
 *                 registry mutex, waits for a grace period
 *                 (urcu_bp_synchronize_rcu(): no worker can still be
 *                 adding to them, no reporter still reading), then takes
 *                 their exact final sums and destroys them.  A worker
 *                 that meets the user again creates a new series; a new
 *                 series starts from 0 (a counter reset, which Prometheus
 *                 handles), so the reporter tracks series by id.
 *
 * At the end the totals must be exact: the users' series (live plus
 * deleted) and the status series each sum to the number of requests the
 * workers made, the bytes series to the bytes they counted.  Exit status
 * 1 with a message if a total is off or a reported value went down.
 *
 * Lookups take no lock: buckets are lists whose links are published with
 * release stores and read with acquire loads inside read-side critical
 * sections; insertions and deletions serialize on one mutex.
 *
 *   metrics [--stdout] [--requests N] [--period-us N]
 *
 * Build against an installed libpcpu with
 *   cc -o metrics metrics.c $(pkg-config --cflags --libs libpcpu liburcu-bp) -pthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

#include <pcpu.h>

#define NWORKERS	2
#define NUSERS		4000		/* user series: NUSERS / NWORKERS each */
#define NBUCKETS	4096		/* a power of two */
#define KEY_MAX		64
#define DELETE_BATCH	64

/* One series: a metric name with its labels, and its counter. */
struct series {
	struct series *next;	/* bucket link: release store, acquire load */
	uint64_t id;		/* unique for the process's lifetime */
	uint64_t hash;
	int kind;		/* KIND_* */
	char key[KEY_MAX];	/* name{labels}, as printed */
	struct pcpu_counter count;
	/* The reporter's own: the value it printed last (monotonic check). */
	int64_t last_reported;
	uint64_t last_report_no;
};

enum { KIND_USER, KIND_STATUS, KIND_BYTES, NKINDS };

static struct {
	struct series *bucket[NBUCKETS];
	pthread_mutex_t lock;	/* insertions, deletions, next_id, live */
	uint64_t next_id;
	size_t live;
	/* Exact final sums of deleted series, per kind (under lock). */
	int64_t retired[NKINDS];
	uint64_t created, deleted;	/* under lock */
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t hash_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325u;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3u;
	return h;
}

/* Find a series; the caller is inside a read-side critical section. */
static struct series *lookup(const char *key, uint64_t h)
{
	struct series *s = __atomic_load_n(&reg.bucket[h & (NBUCKETS - 1)],
					   __ATOMIC_ACQUIRE);

	for (; s; s = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE))
		if (s->hash == h && strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

/*
 * The series for @key, created on a miss; inside a read-side critical
 * section (the new series is published before the lock is dropped, so
 * it stays valid until the caller's critical section ends).  NULL only
 * when memory is short.
 */
static struct series *get_series(const char *key, int kind)
{
	uint64_t h = hash_key(key);
	struct series *s = lookup(key, h), **head;

	if (s)
		return s;
	pthread_mutex_lock(&reg.lock);
	s = lookup(key, h);		/* another worker may have made it */
	if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
		/* DUAL: owned by this worker, no per-CPU memory yet. */
		if (pcpu_counter_init(&s->count, 0, PCPU_COUNTER_DUAL) != 0) {
			free(s);
			s = NULL;
		} else {
			snprintf(s->key, sizeof(s->key), "%s", key);
			s->hash = h;
			s->kind = kind;
			s->id = ++reg.next_id;
			head = &reg.bucket[h & (NBUCKETS - 1)];
			s->next = *head;
			/* Release: the initialized series before its link. */
			__atomic_store_n(head, s, __ATOMIC_RELEASE);
			reg.live++;
			reg.created++;
		}
	}
	pthread_mutex_unlock(&reg.lock);
	return s;
}

/* --- workers ------------------------------------------------------------ */

struct worker {
	pthread_t thread;
	int no;
	long requests;
	/* What this worker added, per kind, and its failures. */
	int64_t added[NKINDS];
	long no_memory;
	uint64_t rng;
};

static long nrequests = 300000;	/* per worker */
static int workers_done;		/* atomic */

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void count(struct worker *w, const char *key, int kind, int64_t n)
{
	struct series *s = get_series(key, kind);

	if (!s) {
		w->no_memory++;
		return;
	}
	pcpu_counter_add(&s->count, n);
	w->added[kind] += n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	static const char *const status[] = { "200", "200", "200", "404",
					      "500" };
	char key[KEY_MAX];

	for (long i = 0; i < nrequests; i++) {
		uint64_t r = next_rand(&w->rng);
		/* This worker's users: no two workers share a user series. */
		unsigned user = (unsigned)(r % (NUSERS / NWORKERS)) * NWORKERS +
				(unsigned)w->no;
		int64_t bytes = 200 + (int64_t)(r >> 40) % 60000;

		urcu_bp_read_lock();
		snprintf(key, sizeof(key), "http_requests_total{user=\"u%u\"}",
			 user);
		count(w, key, KIND_USER, 1);
		snprintf(key, sizeof(key), "http_responses_total{code=\"%s\"}",
			 status[r % 5]);
		count(w, key, KIND_STATUS, 1);
		count(w, "http_response_bytes_total", KIND_BYTES, bytes);
		urcu_bp_read_unlock();
		w->requests++;
	}
	__atomic_fetch_add(&workers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* --- reporter ----------------------------------------------------------- */

static bool to_stdout;
static long period_us = 500;

struct reporter {
	pthread_t thread;
	uint64_t reports;
	uint64_t decreases;	/* a value below the last one of its series */
	char first_decrease[160];
	size_t last_size;	/* bytes of the last exposition */
	size_t max_series;
};

/* One exposition: every series, under one read-side critical section. */
static void report(struct reporter *rp, char *buf, size_t cap)
{
	size_t len = 0, n = 0;

	rp->reports++;
	urcu_bp_read_lock();
	for (size_t b = 0; b < NBUCKETS; b++) {
		struct series *s = __atomic_load_n(&reg.bucket[b],
						   __ATOMIC_ACQUIRE);

		for (; s; s = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE)) {
			int64_t v = pcpu_counter_sum(&s->count);
			int k;

			/* Only the reporter writes last_*; a series seen for
			 * the first time has last_report_no 0. */
			if (s->last_report_no != 0 && v < s->last_reported) {
				if (rp->decreases++ == 0)
					snprintf(rp->first_decrease,
						 sizeof(rp->first_decrease),
						 "%s (id %" PRIu64 "): %" PRId64
						 " after %" PRId64, s->key,
						 s->id, v, s->last_reported);
			}
			s->last_reported = v;
			s->last_report_no = rp->reports;
			k = snprintf(buf + len, cap - len, "%s %" PRId64 "\n",
				     s->key, v);
			if (k > 0 && (size_t)k < cap - len)
				len += (size_t)k;
			n++;
		}
	}
	urcu_bp_read_unlock();
	rp->last_size = len;
	if (n > rp->max_series)
		rp->max_series = n;
	if (to_stdout) {
		printf("# report %" PRIu64 ", %zu series\n", rp->reports, n);
		fwrite(buf, 1, len, stdout);
	}
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static void *reporter_main(void *arg)
{
	struct reporter *rp = arg;
	size_t cap = (size_t)(NUSERS + 64) * (KEY_MAX + 24);
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	do {
		sleep_us(period_us);
		report(rp, buf, cap);
	} while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < NWORKERS);
	report(rp, buf, cap);		/* the final values */
	free(buf);
	return NULL;
}

/* --- deletion ----------------------------------------------------------- */

/*
 * Unlink up to DELETE_BATCH user series starting at a random bucket, wait
 * for a grace period, then retire them: their sums are exact now (no
 * reader or updater can still hold them).  Returns how many.
 */
static size_t delete_some(uint64_t *rng)
{
	struct series *victims[DELETE_BATCH];
	size_t n = 0;
	size_t b0 = (size_t)next_rand(rng) & (NBUCKETS - 1);

	pthread_mutex_lock(&reg.lock);
	for (size_t i = 0; i < NBUCKETS && n < DELETE_BATCH; i += 7) {
		struct series **pp = &reg.bucket[(b0 + i) & (NBUCKETS - 1)];
		struct series *s;

		while ((s = *pp) != NULL && n < DELETE_BATCH) {
			if (s->kind != KIND_USER) {
				pp = &s->next;
				continue;
			}
			/* Readers see the old link or the new one; either
			 * way a list they can walk. */
			__atomic_store_n(pp, s->next, __ATOMIC_RELEASE);
			victims[n++] = s;
			reg.live--;
		}
	}
	pthread_mutex_unlock(&reg.lock);
	if (n == 0)
		return 0;

	urcu_bp_synchronize_rcu();
	pthread_mutex_lock(&reg.lock);
	for (size_t i = 0; i < n; i++) {
		reg.retired[victims[i]->kind] += pcpu_counter_sum(&victims[i]->count);
		reg.deleted++;
	}
	pthread_mutex_unlock(&reg.lock);
	for (size_t i = 0; i < n; i++) {
		pcpu_counter_destroy(&victims[i]->count);
		free(victims[i]);
	}
	return n;
}

/* --- main ----------------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "usage: metrics [--stdout] [--requests N] "
		"[--period-us N]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct worker w[NWORKERS];
	struct reporter rp;
	int64_t live[NKINDS] = { 0 }, want[NKINDS] = { 0 };
	long requests = 0, no_memory = 0;
	size_t shared_status = 0, nstatus = 0;
	uint64_t rng = 0x9e3779b97f4a7c15u;
	int fail = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stdout") == 0)
			to_stdout = true;
		else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
			nrequests = atol(argv[++i]);
		else if (strcmp(argv[i], "--period-us") == 0 && i + 1 < argc)
			period_us = atol(argv[++i]);
		else
			return usage();
	}
	if (nrequests < 1 || period_us < 1)
		return usage();

	memset(&rp, 0, sizeof(rp));
	memset(w, 0, sizeof(w));
	for (int i = 0; i < NWORKERS; i++) {
		w[i].no = i;
		w[i].rng = 0x2545f4914f6cdd1du * (uint64_t)(i + 1);
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "metrics: pthread_create failed\n");
			return 1;
		}
	}
	if (pthread_create(&rp.thread, NULL, reporter_main, &rp)) {
		fprintf(stderr, "metrics: pthread_create failed\n");
		return 1;
	}
	/* Delete while the workers run; they create the series again. */
	while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < NWORKERS) {
		delete_some(&rng);
		sleep_us(period_us / 2 + 1);
	}
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(w[i].thread, NULL);
	pthread_join(rp.thread, NULL);

	/* Every thread is gone: walk the registry without ceremony. */
	for (size_t b = 0; b < NBUCKETS; b++)
		for (struct series *s = reg.bucket[b], *next; s; s = next) {
			next = s->next;
			live[s->kind] += pcpu_counter_sum(&s->count);
			if (s->kind == KIND_STATUS) {
				nstatus++;
				shared_status += pcpu_counter_is_shared(&s->count);
			}
			pcpu_counter_destroy(&s->count);
			free(s);
		}
	for (int i = 0; i < NWORKERS; i++) {
		requests += w[i].requests;
		no_memory += w[i].no_memory;
		for (int k = 0; k < NKINDS; k++)
			want[k] += w[i].added[k];
	}

	static const char *const kname[NKINDS] = { "user", "status", "bytes" };
	for (int k = 0; k < NKINDS; k++) {
		if (live[k] + reg.retired[k] != want[k]) {
			fprintf(stderr, "metrics: FAIL: %s series sum to %" PRId64
				" (%" PRId64 " live + %" PRId64 " deleted), the "
				"workers added %" PRId64 "\n", kname[k],
				live[k] + reg.retired[k], live[k],
				reg.retired[k], want[k]);
			fail = 1;
		}
	}
	if (no_memory == 0 &&
	    (want[KIND_USER] != requests || want[KIND_STATUS] != requests)) {
		fprintf(stderr, "metrics: FAIL: %ld requests, counted %" PRId64
			" / %" PRId64 "\n", requests, want[KIND_USER],
			want[KIND_STATUS]);
		fail = 1;
	}
	if (rp.decreases) {
		fprintf(stderr, "metrics: FAIL: %" PRIu64 " reported values "
			"went down; first: %s\n", rp.decreases,
			rp.first_decrease);
		fail = 1;
	}
	if (reg.deleted == 0 || rp.reports < 2) {
		fprintf(stderr, "metrics: FAIL: %" PRIu64 " series deleted, "
			"%" PRIu64 " reports: the run exercised too little\n",
			reg.deleted, rp.reports);
		fail = 1;
	}
	fprintf(to_stdout ? stderr : stdout,
		"metrics: %ld requests, %" PRIu64 " series created, %" PRIu64
		" deleted, up to %zu at once; %" PRIu64 " reports (last %zu "
		"bytes); %zu of %zu status series per-CPU; update method %s\n",
		requests, reg.created, reg.deleted, rp.max_series, rp.reports,
		rp.last_size, shared_status, nstatus, pcpu_update_method());
	return fail;
}
