/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - helpers shared by libpcpu's Check suites.
 *
 * Rules the suites follow, and that these helpers make easy:
 *
 *  1. ck_assert*() runs in the main thread only.  Workers record what they
 *     saw in their own struct (tu_worker_rec), the main thread joins them
 *     and asserts afterwards.
 *  2. Every loop that could run long is bounded by wall-clock time
 *     (tu_budget), so the suites also finish with CK_FORK=no, where Check
 *     enforces no timeout.
 *  3. Workers start together: they spin on a go flag (acquire) and leave on
 *     a stop flag, like liburcu's tests/benchmark/common-states.h.  Spins
 *     yield now and then: the suites run on a noisy 2-CPU box.
 *  4. A test that changes pcpu_set_nr_slots() restores the default in its
 *     checked teardown (tu_restore_slots), so the suites pass in one process
 *     (CK_FORK=no) as well as in fork mode.
 */
#ifndef PCPU_TESTUTIL_H
#define PCPU_TESTUTIL_H

#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <pcpu.h>

#define TU_CACHELINE	64
#define TU_MAX_THREADS	16

/* Timeouts for tcase_set_timeout() (fork mode only; loops bound themselves). */
#define TU_TIMEOUT_UNIT		30
#define TU_TIMEOUT_STRESS	60

/*
 * ck_assert_msg() without Check's per-call mark_point (a write to its
 * result file): for assertions inside long loops.
 */
#define tu_check(expr, fmt, ...)					\
	do {								\
		if (!(expr))						\
			ck_abort_msg(fmt, ##__VA_ARGS__);		\
	} while (0)

/* --- time -------------------------------------------------------------- */

static inline double tu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A wall-clock budget: loop while tu_budget_left(). */
struct tu_budget {
	double end;
};

static inline void tu_budget_start(struct tu_budget *b, double seconds)
{
	b->end = tu_now() + seconds;
}

static inline bool tu_budget_left(const struct tu_budget *b)
{
	return tu_now() < b->end;
}

/*
 * Seconds each stress loop runs: 1 by default, PCPU_STRESS_SECONDS to run
 * longer by hand (capped so a typo cannot hang a CI job).
 */
static inline double tu_stress_seconds(void)
{
	const char *s = getenv("PCPU_STRESS_SECONDS");
	double v;

	if (!s || !*s)
		return 1.0;
	v = strtod(s, NULL);
	if (!(v > 0.0))
		return 1.0;
	return v > 600.0 ? 600.0 : v;
}

/*
 * The end of a stress case: one line, "STRESS <what>: <n> updates, <l>
 * lost", that `make stress` (tests/valgrind.mk) finds in the logs and adds
 * up.  @lost is the expected value minus the summed one, over the whole
 * case.  Printed before the caller asserts lost == 0, so a failing run
 * still shows how much went missing.  Called by the main thread only.
 */
static inline void tu_stress_report(unsigned long long updates, long long lost,
				    const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void tu_stress_report(unsigned long long updates, long long lost,
				    const char *fmt, ...)
{
	va_list ap;

	fputs("STRESS ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(": %llu updates, %lld lost\n", updates, lost);
	/* Now: in fork mode a timeout SIGKILLs the test's child, buffer and all. */
	fflush(stdout);
}

/* --- random numbers (xorshift64*, per thread, no shared state) --------- */

static inline uint64_t tu_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t tu_rand_seed(uint64_t salt)
{
	return (salt + 1) * 0x9E3779B97F4A7C15ULL | 1;
}

static inline unsigned tu_rand_below(uint64_t *state, unsigned n)
{
	return (unsigned)(tu_rand(state) % n);
}

/* --- spinning, go and stop flags --------------------------------------- */

static inline void tu_relax(unsigned *spins)
{
	if ((++*spins & 63) == 0)
		sched_yield();
#if defined(__x86_64__) || defined(__i386__)
	else
		__asm__ __volatile__ ("pause" ::: "memory");
#endif
}

struct tu_gate {
	int go;		/* set once, release: everything before it is visible */
	int stop;	/* set once, release */
};

static inline void tu_gate_init(struct tu_gate *g)
{
	g->go = 0;
	g->stop = 0;
}

static inline void tu_gate_open(struct tu_gate *g)
{
	__atomic_store_n(&g->go, 1, __ATOMIC_RELEASE);
}

static inline void tu_gate_wait(struct tu_gate *g)
{
	unsigned spins = 0;

	while (!__atomic_load_n(&g->go, __ATOMIC_ACQUIRE))
		tu_relax(&spins);
}

static inline void tu_gate_stop(struct tu_gate *g)
{
	__atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
}

static inline bool tu_gate_stopped(struct tu_gate *g)
{
	return __atomic_load_n(&g->stop, __ATOMIC_ACQUIRE) != 0;
}

/* Spin (yielding) until *p == v, acquire. */
static inline void tu_wait_uint(unsigned *p, unsigned v)
{
	unsigned spins = 0;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != v)
		tu_relax(&spins);
}

/* --- threads ----------------------------------------------------------- */

/*
 * What a worker records for the main thread to assert on: never call
 * ck_assert in a worker.  err holds the first problem seen, as text.
 */
struct tu_worker_rec {
	unsigned id;
	int failed;
	char err[160];
};

#define tu_rec_fail(rec, ...)						\
	do {								\
		if (!(rec)->failed++)					\
			snprintf((rec)->err, sizeof((rec)->err),	\
				 __VA_ARGS__);				\
	} while (0)

/*
 * Start @n threads running @fn, thread i getting (char *)@args + i * @size.
 * Return: 0, or the pthread_create() error after joining those started.
 */
static inline int tu_spawn(pthread_t *tids, unsigned n, void *(*fn)(void *),
			   void *args, size_t size)
{
	unsigned i;
	int err;

	for (i = 0; i < n; i++) {
		err = pthread_create(&tids[i], NULL, fn, (char *)args + i * size);
		if (err) {
			while (i--)
				pthread_join(tids[i], NULL);
			return err;
		}
	}
	return 0;
}

static inline void tu_join(pthread_t *tids, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

/* Run @fn(@arg) in a new thread and wait for it.  Return: 0 or an errno. */
static inline int tu_run_in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, fn, arg);

	if (err)
		return err;
	return pthread_join(t, NULL);
}

/* --- CPUs: the allowed set, pinning, hopping --------------------------- */

/* Filled by tu_init() from sched_getaffinity(), before any test runs. */
static struct {
	unsigned n;
	int cpu[CPU_SETSIZE];
	cpu_set_t orig;
} tu_cpus;

static inline void tu_cpus_init(void)
{
	int c;

	CPU_ZERO(&tu_cpus.orig);
	tu_cpus.n = 0;
	if (sched_getaffinity(0, sizeof(tu_cpus.orig), &tu_cpus.orig)) {
		/* Unknown: behave as if only the current CPU were allowed. */
		c = sched_getcpu();
		tu_cpus.cpu[tu_cpus.n++] = c < 0 ? 0 : c;
		CPU_SET(c < 0 ? 0 : c, &tu_cpus.orig);
		return;
	}
	for (c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &tu_cpus.orig))
			tu_cpus.cpu[tu_cpus.n++] = c;
}

/* Pin the calling thread to @cpu.  Return: 0 or -errno. */
static inline int tu_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* Give the calling thread back the affinity the process started with. */
static inline int tu_unpin(void)
{
	return sched_setaffinity(0, sizeof(tu_cpus.orig), &tu_cpus.orig) ?
		-errno : 0;
}

/*
 * Move the calling thread to the next allowed CPU (round robin from
 * *@cursor), forcing a migration on machines with more than one.
 */
static inline int tu_hop(unsigned *cursor)
{
	int cpu = tu_cpus.cpu[(*cursor)++ % tu_cpus.n];

	return tu_pin(cpu);
}

/* --- address-space limits, to make allocations fail -------------------- */

/*
 * Sanitizers reserve huge shadow mappings and allocate behind our back:
 * RLIMIT_AS games would break them, so the ENOMEM tests skip themselves.
 */
#if PCPU__TSAN || defined(__SANITIZE_ADDRESS__)
# define TU_CAN_LIMIT_AS 0
#else
# define TU_CAN_LIMIT_AS 1
#endif

/* The process's address-space size now (VmSize), in bytes; 0 if unknown. */
static inline unsigned long long tu_vm_size(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/*
 * Allow the process only @extra more bytes of address space than it has
 * now.  *@old gets the limit to give back with tu_restore_as().  Return: 0
 * or -errno.  Between the two, assert nothing: record, restore, assert.
 */
static inline int tu_limit_as(unsigned long long extra, struct rlimit *old,
			      bool keep_old)
{
	struct rlimit lim;
	unsigned long long vm = tu_vm_size();

	if (!vm)
		return -ENOSYS;
	if (!keep_old && getrlimit(RLIMIT_AS, old))
		return -errno;
	lim = *old;
	lim.rlim_cur = (rlim_t)(vm + extra);
	if (old->rlim_max != RLIM_INFINITY && lim.rlim_cur > old->rlim_max)
		return -ERANGE;
	return setrlimit(RLIMIT_AS, &lim) ? -errno : 0;
}

static inline int tu_restore_as(const struct rlimit *old)
{
	return setrlimit(RLIMIT_AS, old) ? -errno : 0;
}

/*
 * Does RLIMIT_AS bind here?  qemu-user accepts setrlimit(RLIMIT_AS) and
 * ignores it (the limit would apply to the emulator's own reservations),
 * so the ENOMEM tests cannot work under it and skip themselves, saying so.
 * The probe: with 512 MiB of headroom, reserving 2 GiB must fail.
 */
static inline bool tu_as_limit_binds(void)
{
	struct rlimit old;
	void *p = MAP_FAILED;

	if (tu_limit_as(512ull << 20, &old, false))
		return true;	/* cannot tell: let the test fail visibly */
	p = mmap(NULL, 2ull << 30, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	(void)tu_restore_as(&old);
	if (p == MAP_FAILED)
		return true;
	munmap(p, 2ull << 30);
	return false;
}

/* --- slots --------------------------------------------------------------- */

/* pcpu_nr_slots() at startup: what teardowns restore. */
/* --- per-CPU areas live or not ------------------------------------------ */

/* A slot count other than the current one. */
static inline unsigned tu_other_slots(void)
{
	return pcpu_nr_slots() == 3 ? 5 : 3;
}

/* No per-CPU area is live: the slot count can change (and is restored). */
static inline void tu_expect_no_area(const char *what)
{
	unsigned before = pcpu_nr_slots();
	int r = pcpu_set_nr_slots(tu_other_slots());

	ck_assert_msg(r == 0, "%s: pcpu_set_nr_slots() = %d, want 0 (no "
		      "per-CPU area live)", what, r);
	ck_assert_int_eq(pcpu_set_nr_slots(before), 0);
}

/* Some per-CPU area is live: the slot count cannot change. */
static inline void tu_expect_area(const char *what)
{
	unsigned before = pcpu_nr_slots();
	int r = pcpu_set_nr_slots(tu_other_slots());

	ck_assert_msg(r == -EBUSY, "%s: pcpu_set_nr_slots() = %d, want "
		      "-EBUSY (a per-CPU area is live)", what, r);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
}

static unsigned tu_default_slots;

/* Checked setup/teardown for every TCase that may change the slot count. */
static inline void tu_restore_slots(void)
{
	if (pcpu_nr_slots() != tu_default_slots)
		(void)pcpu_set_nr_slots(tu_default_slots);
	(void)tu_unpin();
}

/* Bound on |read - sum| the header documents. */
static inline int64_t tu_read_bound(void)
{
	return (int64_t)(PCPU_COUNTER_BATCH - 1) * (int64_t)pcpu_nr_slots();
}

/*
 * The tighter bound: (BATCH - 1) for each slot the counter has touched
 * (every slot of an EAGER counter counts as touched).
 */
static inline int64_t tu_read_bound_touched(unsigned touched)
{
	return (int64_t)(PCPU_COUNTER_BATCH - 1) * (int64_t)touched;
}

/* |a - b| without overflow. */
static inline uint64_t tu_dist(int64_t a, int64_t b)
{
	return a >= b ? (uint64_t)a - (uint64_t)b : (uint64_t)b - (uint64_t)a;
}

/*
 * The machine's possible CPUs, as the library counts them by default
 * (/sys/devices/system/cpu/possible, the highest number plus one), else
 * sysconf(); at least 1.
 */
static inline unsigned tu_possible_cpus(void)
{
	char buf[4096], *s, *end;
	unsigned long v, max = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");

	if (f) {
		if (fgets(buf, sizeof(buf), f)) {
			for (s = buf; *s && *s != '\n'; s = end) {
				v = strtoul(s, &end, 10);
				if (end == s)
					break;
				if (v + 1 > max)
					max = v + 1;
				if (*end == '-' || *end == ',')
					end++;
			}
		}
		fclose(f);
	}
	if (max == 0) {
		long c = sysconf(_SC_NPROCESSORS_CONF);

		max = c > 0 ? (unsigned long)c : 1;
	}
	return (unsigned)max;
}

static inline int tu_sign(int64_t v)
{
	return (v > 0) - (v < 0);
}

/* --- main ---------------------------------------------------------------- */

static inline void tu_init(void)
{
	tu_cpus_init();
	/* The first call into the library: it reads PCPU_NR_SLOTS here. */
	tu_default_slots = pcpu_nr_slots();
}

/*
 * Run @s with the fork mode CK_FORK asks for.  Return the exit status:
 * 0 if every test passed, else 1 (not the raw failure count, whose values
 * 77 and 99 mean "skipped" and "hard error" to automake's test driver).
 */
static inline int tu_main(Suite *s)
{
	SRunner *sr;
	int failed;

	tu_init();
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Add a TCase with the standard timeout and slot-restoring fixture. */
static inline TCase *tu_tcase(Suite *s, const char *name, double timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, tu_restore_slots, tu_restore_slots);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

#endif /* PCPU_TESTUTIL_H */
