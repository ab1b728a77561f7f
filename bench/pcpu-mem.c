/* SPDX-License-Identifier: MIT */
/*
 * bench/pcpu-mem.c - resident memory of many counters, by policy and slot
 * count.
 *
 *   pcpu-mem [--quick] [--counters N] [--dat FILE] [--json FILE]
 *
 * For each policy (EAGER, LAZY, DUAL + pcpu_counter_share()) and slot
 * count (1, 64, 1024, 4096; pcpu_set_nr_slots() simulates the CPUs), a
 * fresh child process (fork) creates N counters (20000), has one thread
 * pinned to the first CPU of the process add 1 to each, and reports how
 * much its resident set grew (the resident field of /proc/self/statm,
 * in pages, before and after): after init, after the touches, and after
 * destroy.  One process per cell, so that no cell inherits the chunks,
 * freed-but-kept memory or faulted pages of another.
 *
 * What the numbers include: the N struct pcpu_counter (32 bytes each:
 * 625 KiB for 20000, allocated after the first reading), the per-CPU
 * areas and touch maps the library faults in, and a few pages of code and
 * stack the first calls fault in.  Not included: page tables, and the
 * virtual reservation (MAP_NORESERVE: 64 KiB per slot per chunk costs
 * nothing until written).
 *
 * EAGER counters are created with pcpu_counter_init_many() (one area per
 * group, as the kernel's percpu_counter_init_many()), LAZY ones too; DUAL
 * counters with pcpu_counter_init() each, then pcpu_counter_share() each
 * (every upgrade takes an area of its own).  The touching thread is not
 * the counters' owner, so a DUAL counter's add goes to its per-CPU slot.
 *
 * EAGER at 4096 slots needs N * 4096 * 8 bytes (625 MiB for 20000).  It
 * is measured for real when /proc/meminfo's MemAvailable is at least
 * twice that; otherwise (and with --quick) with N / 10 counters, and the
 * row says "scaled x10": the growth measured times 10, an estimate.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#define NR_POLICIES	3
static const char *const policy_names[NR_POLICIES] = {
	"EAGER", "LAZY", "DUAL+share",
};
static const unsigned policy_flags[NR_POLICIES] = {
	PCPU_COUNTER_EAGER, PCPU_COUNTER_LAZY, PCPU_COUNTER_DUAL,
};
static const unsigned slot_counts[] = { 1, 64, 1024, 4096 };
#define NR_SLOT_COUNTS	(sizeof(slot_counts) / sizeof(slot_counts[0]))

/* What a child reports through its pipe. */
struct cell {
	int ok;			/* 1 measured; 0 failed (why in msg) */
	char msg[96];
	unsigned counters;	/* how many were created (N, or N / scale) */
	unsigned scale;		/* 1, or the factor the counts were cut by */
	long page;		/* page size */
	long rss_init;		/* resident growth in pages: after init, */
	long rss_touch;		/* after the touches, */
	long rss_destroy;	/* and after destroy */
	double ms_init, ms_touch, ms_destroy;
};

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Resident pages (the second field of /proc/self/statm), or -1. */
static long rss_pages(void)
{
	long size, resident = -1;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident;
}

/* MemAvailable from /proc/meminfo in bytes, or 0 if unknown. */
static unsigned long long mem_available(void)
{
	char line[256];
	unsigned long long kib = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib * 1024;
}

/* --- the child ------------------------------------------------------------ */

struct toucher {
	struct pcpu_counter *c;
	unsigned n;
	int cpu;
	sem_t go, done;
	int err;
};

/* Pinned to @cpu from its start; parked until the counters exist. */
static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	unsigned i;

	while (sem_wait(&t->go) && errno == EINTR)
		;
	if (t->c && sched_getcpu() != t->cpu)
		t->err = 1;
	for (i = 0; t->c && i < t->n; i++)
		pcpu_counter_add(&t->c[i], 1);
	if (t->c && sched_getcpu() != t->cpu)
		t->err = 1;
	sem_post(&t->done);
	return NULL;
}

static void cell_fail(struct cell *r, const char *msg)
{
	r->ok = 0;
	snprintf(r->msg, sizeof(r->msg), "%s", msg);
}

static void measure(struct cell *r, unsigned policy, unsigned slots,
		    unsigned n, int cpu)
{
	unsigned flags = policy_flags[policy], i;
	struct toucher t;
	struct pcpu_counter *c;
	pthread_attr_t attr;
	pthread_t th;
	cpu_set_t set;
	long base;
	double t0;
	int err;

	r->page = sysconf(_SC_PAGESIZE);
	r->counters = n;
	if (pcpu_set_nr_slots(slots)) {
		cell_fail(r, "pcpu_set_nr_slots failed");
		return;
	}
	/* This thread (the DUAL owner) and the toucher both on @cpu. */
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		cell_fail(r, "sched_setaffinity failed");
		return;
	}
	memset(&t, 0, sizeof(t));
	t.n = n;
	t.cpu = cpu;
	sem_init(&t.go, 0, 0);
	sem_init(&t.done, 0, 0);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	err = pthread_create(&th, &attr, toucher_main, &t);
	pthread_attr_destroy(&attr);
	if (err) {
		cell_fail(r, "pthread_create failed");
		return;
	}

	/* The thread exists and is parked: its stack is in the baseline. */
	base = rss_pages();
	t0 = now_ms();
	c = malloc((size_t)n * sizeof(*c));
	if (!c) {
		cell_fail(r, "out of memory (malloc)");
		goto out_thread;
	}
	if (flags == PCPU_COUNTER_DUAL) {
		for (i = 0; i < n; i++) {
			if (pcpu_counter_init(&c[i], 0, flags)) {
				cell_fail(r, "pcpu_counter_init failed");
				goto out_unwind;
			}
			if (pcpu_counter_share(&c[i])) {
				cell_fail(r, "pcpu_counter_share failed");
				pcpu_counter_destroy(&c[i]);
				goto out_unwind;
			}
		}
	} else if (pcpu_counter_init_many(c, 0, flags, n)) {
		cell_fail(r, "pcpu_counter_init_many failed");
		goto out_free;
	}
	r->ms_init = now_ms() - t0;
	r->rss_init = rss_pages() - base;

	t.c = c;
	t0 = now_ms();
	sem_post(&t.go);
	while (sem_wait(&t.done) && errno == EINTR)
		;
	r->ms_touch = now_ms() - t0;
	r->rss_touch = rss_pages() - base;

	r->ok = 1;
	if (t.err)
		cell_fail(r, "the touching thread left its CPU");
	/* Every counter holds 1, in a slot (read() leaves slots out): spot
	 * checks, since an EAGER sum visits every slot. */
	for (i = 0; r->ok && i < n; i++)
		if ((i < 16 || i >= n - 16 || i % 97 == 0) &&
		    (pcpu_counter_sum(&c[i]) != 1 ||
		     pcpu_counter_read(&c[i]) != 0 ||
		     !pcpu_counter_is_shared(&c[i])))
			cell_fail(r, "a counter does not hold its touch in a slot");

	t0 = now_ms();
	if (flags == PCPU_COUNTER_DUAL)
		for (i = 0; i < n; i++)
			pcpu_counter_destroy(&c[i]);
	else
		pcpu_counter_destroy_many(c, n);
	r->ms_destroy = now_ms() - t0;
	free(c);
	r->rss_destroy = rss_pages() - base;
	pthread_join(th, NULL);
	return;

out_unwind:
	while (i--)
		pcpu_counter_destroy(&c[i]);
out_free:
	free(c);
out_thread:
	/* Wake the parked thread with nothing to do. */
	sem_post(&t.go);
	pthread_join(th, NULL);
}

/* Fork, measure in the child, read its result. */
static void run_cell(struct cell *r, unsigned policy, unsigned slots,
		     unsigned n, int cpu)
{
	int fd[2], status;
	pid_t pid;
	ssize_t got;

	memset(r, 0, sizeof(*r));
	if (pipe(fd)) {
		cell_fail(r, "pipe failed");
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		cell_fail(r, "fork failed");
		return;
	}
	if (pid == 0) {
		struct cell c;

		close(fd[0]);
		memset(&c, 0, sizeof(c));
		measure(&c, policy, slots, n, cpu);
		if (write(fd[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
			_exit(2);
		_exit(0);
	}
	close(fd[1]);
	got = read(fd[0], r, sizeof(*r));
	close(fd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != (ssize_t)sizeof(*r)) {
		memset(r, 0, sizeof(*r));
		cell_fail(r, WIFSIGNALED(status) ? "child killed by a signal" :
			  "child died without a result");
	}
}

/* --- output --------------------------------------------------------------- */

static double mib(const struct cell *r, long pages)
{
	return (double)pages * (double)r->page * r->scale / (1024.0 * 1024.0);
}

static void usage(void)
{
	fprintf(stderr, "usage: pcpu-mem [--quick] [--counters N] "
		"[--dat FILE] [--json FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct cell cells[NR_POLICIES][NR_SLOT_COUNTS];
	const char *dat = NULL, *json = NULL;
	unsigned n = 20000, p, s;
	unsigned long long avail;
	int quick = 0, cpu = -1, i, failed = 0;
	cpu_set_t set;
	FILE *f;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--counters") && i + 1 < argc)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--dat") && i + 1 < argc)
			dat = argv[++i];
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else
			usage();
	}
	if (n < 10)
		usage();
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (i = 0; i < CPU_SETSIZE && cpu < 0; i++)
			if (CPU_ISSET(i, &set))
				cpu = i;
	if (cpu < 0) {
		fprintf(stderr, "pcpu-mem: no CPU in the affinity mask\n");
		return 1;
	}
	avail = mem_available();

	for (p = 0; p < NR_POLICIES; p++) {
		for (s = 0; s < NR_SLOT_COUNTS; s++) {
			unsigned scale = 1;
			unsigned long long need = (unsigned long long)n *
				slot_counts[s] * sizeof(int64_t);

			/* EAGER's big cells: for real if memory allows. */
			if (policy_flags[p] == PCPU_COUNTER_EAGER &&
			    need > 256ull << 20 && (quick || avail < 2 * need))
				scale = 10;
			run_cell(&cells[p][s], p, slot_counts[s], n / scale, cpu);
			cells[p][s].scale = scale;
		}
	}

	printf("Memory: resident growth of %u counters, each touched once "
	       "from CPU %d\n", n, cpu);
	printf("(fresh process per row; /proc/self/statm; includes the "
	       "%u KiB of struct pcpu_counter)\n", (unsigned)(n * 32u / 1024));
	printf("%-11s %6s %12s %12s %10s %12s %9s %9s\n", "policy", "slots",
	       "after init", "touched", "per ctr", "destroyed", "init ms",
	       "touch ms");
	for (p = 0; p < NR_POLICIES; p++) {
		for (s = 0; s < NR_SLOT_COUNTS; s++) {
			struct cell *r = &cells[p][s];

			if (!r->ok) {
				printf("%-11s %6u  ERROR: %s\n", policy_names[p],
				       slot_counts[s], r->msg);
				failed = 1;
				continue;
			}
			printf("%-11s %6u %8.2f MiB %8.2f MiB %8.0f B ",
			       policy_names[p], slot_counts[s],
			       mib(r, r->rss_init), mib(r, r->rss_touch),
			       mib(r, r->rss_touch) * 1048576.0 / n);
			/* What stays after destroy (a chunk the allocator
			 * keeps) does not scale with the counters. */
			if (r->scale > 1)
				printf("%12s", "n/a");
			else
				printf("%8.2f MiB", mib(r, r->rss_destroy));
			printf(" %9.1f %9.1f%s\n", r->ms_init * r->scale,
			       r->ms_touch * r->scale,
			       r->scale > 1 ? "  (scaled)" : "");
		}
	}
	for (p = 0; p < NR_POLICIES; p++)
		for (s = 0; s < NR_SLOT_COUNTS; s++)
			if (cells[p][s].ok && cells[p][s].scale > 1)
				printf("(scaled): measured with %u counters, "
				       "then multiplied by %u: an estimate%s.\n",
				       cells[p][s].counters, cells[p][s].scale,
				       quick ? " (--quick)" :
				       " (MemAvailable below twice the need)");
	printf("EAGER needs %u x slots x 8 B for the slots alone: %.0f MiB "
	       "at 4096 slots.\n", n, n * 4096.0 * 8 / 1048576.0);

	if (dat) {
		f = fopen(dat, "w");
		if (!f) {
			perror(dat);
			return 1;
		}
		fprintf(f, "# slots, MiB resident after touching %u counters: "
			"EAGER LAZY DUAL+share, EAGER's slots alone "
			"(N*slots*8 B); ? = failed\n", n);
		for (s = 0; s < NR_SLOT_COUNTS; s++) {
			fprintf(f, "%u", slot_counts[s]);
			for (p = 0; p < NR_POLICIES; p++) {
				if (cells[p][s].ok)
					fprintf(f, " %.4f", mib(&cells[p][s],
						cells[p][s].rss_touch));
				else
					fprintf(f, " ?");
			}
			fprintf(f, " %.4f\n", n * (double)slot_counts[s] * 8 /
				1048576.0);
		}
		fclose(f);
	}
	if (json) {
		int first = 1;

		f = fopen(json, "w");
		if (!f) {
			perror(json);
			return 1;
		}
		fprintf(f, "{\n  \"counters\": %u,\n  \"cpu\": %d,\n"
			"  \"method\": \"%s\",\n  \"cells\": [\n", n, cpu,
			pcpu_update_method());
		for (p = 0; p < NR_POLICIES; p++) {
			for (s = 0; s < NR_SLOT_COUNTS; s++) {
				struct cell *r = &cells[p][s];

				fprintf(f, "%s    {\"policy\": \"%s\", "
					"\"slots\": %u, ", first ? "" : ",\n",
					policy_names[p], slot_counts[s]);
				first = 0;
				if (!r->ok) {
					fprintf(f, "\"error\": \"%s\"}", r->msg);
					continue;
				}
				/* As measured, for counters_measured counters;
				 * scale > 1 marks a cell bench/run reports
				 * multiplied by scale. */
				fprintf(f, "\"counters_measured\": %u, "
					"\"scale\": %u, \"rss_init_bytes\": %ld, "
					"\"rss_touched_bytes\": %ld, "
					"\"rss_destroyed_bytes\": %ld, "
					"\"init_ms\": %.3f, \"touch_ms\": %.3f, "
					"\"destroy_ms\": %.3f}",
					r->counters, r->scale,
					r->rss_init * r->page,
					r->rss_touch * r->page,
					r->rss_destroy * r->page,
					r->ms_init, r->ms_touch, r->ms_destroy);
			}
		}
		fprintf(f, "\n  ]\n}\n");
		fclose(f);
	}
	return failed;
}
