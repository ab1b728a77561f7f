/* SPDX-License-Identifier: MIT */
/*
 * tests/early.c - every entry point works before libpcpu's constructor.
 *
 * Built twice (tests/repro.mk):
 *
 *   tests/early      this file with EARLY_PREINIT undefined: the checks run
 *                    from a constructor of priority 101.  The program is
 *                    linked statically against libpcpu (libtool -static on
 *                    lib/libpcpu.la), so libpcpu's constructor (default
 *                    priority, i.e. the plain .init_array section) is in the
 *                    same executable, and the linker sorts .init_array.00101
 *                    before it: ours runs first.  (With a shared libpcpu the
 *                    dynamic loader would run libpcpu's constructor before
 *                    any of the executable's, whatever the priority.)
 *   tests/preinit    tests/preinit.c, which includes this file with
 *                    EARLY_PREINIT defined: the checks run from the
 *                    executable's .preinit_array, which runs before the
 *                    constructors of every shared object, libpcpu.so's
 *                    included (so that program links libpcpu shared).
 *
 * The early function records failures; main() (after libpcpu's
 * constructor has run) checks that what was made early still works and
 * exits 0, or 1 with the failures printed.  A crash (SIGFPE on today's
 * code: a slot count of 0) fails the test by itself.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcpu.h>

#include "selfexec.h"

#ifdef EARLY_PREINIT
# define EARLY_WHERE "preinit_array"
#else
# define EARLY_WHERE "constructor(101)"
#endif

static char errs[2048];
static unsigned nerrs;

#define CHECK(expr, ...)						\
	do {								\
		if (!(expr)) {						\
			size_t len_ = strlen(errs);			\
			nerrs++;					\
			snprintf(errs + len_, sizeof(errs) - len_,	\
				 "  %s:%d: %s: ", __FILE__, __LINE__,	\
				 #expr);				\
			len_ = strlen(errs);				\
			snprintf(errs + len_, sizeof(errs) - len_,	\
				 __VA_ARGS__);				\
			len_ = strlen(errs);				\
			snprintf(errs + len_, sizeof(errs) - len_, "\n"); \
		}							\
	} while (0)

static struct pcpu_counter lazy, eager, dual;
static long *area;
static struct pcpu_cache *cache;
static unsigned early_slots;
static const char *early_method;
static int early_ran;

static void step_info(void)
{
	unsigned n, s;

	n = early_slots = pcpu_nr_slots();
	early_method = pcpu_update_method();
	CHECK(n >= 1 && n <= PCPU_MAX_SLOTS, "nr_slots %u", n);
	CHECK(early_method != NULL && *early_method, "no method");
	s = pcpu_this_slot();
	CHECK(s < (n ? n : 1), "this_slot %u of %u", s, n);
}

static void step_lazy(void)
{
	CHECK(pcpu_counter_init(&lazy, 0, PCPU_COUNTER_LAZY) == 0, "LAZY init");
	pcpu_counter_add(&lazy, 1);		/* first touch */
	pcpu_counter_add(&lazy, 300);		/* a fold */
	pcpu_counter_add(&lazy, -5);		/* fast path */
	CHECK(pcpu_counter_sum(&lazy) == 296, "LAZY sum %lld",
	      (long long)pcpu_counter_sum(&lazy));
	CHECK(pcpu_counter_compare(&lazy, 296) == 0, "LAZY compare");
}

static void step_eager(void)
{
	CHECK(pcpu_counter_init(&eager, 7, PCPU_COUNTER_EAGER) == 0,
	      "EAGER init");
	pcpu_counter_add(&eager, 300);
	pcpu_counter_inc(&eager);
	CHECK(pcpu_counter_sum(&eager) == 308, "EAGER sum %lld",
	      (long long)pcpu_counter_sum(&eager));
}

static void step_dual(void)
{
	CHECK(pcpu_counter_init(&dual, 0, PCPU_COUNTER_DUAL) == 0, "DUAL init");
	pcpu_counter_add(&dual, 5);		/* the owner's word */
	CHECK(pcpu_counter_share(&dual) == 0, "DUAL share");
	CHECK(pcpu_counter_is_shared(&dual), "DUAL not shared after share");
	pcpu_counter_add(&dual, 300);
	pcpu_counter_add(&dual, 2);
	CHECK(pcpu_counter_sum(&dual) == 307, "DUAL sum %lld",
	      (long long)pcpu_counter_sum(&dual));
}

static void step_alloc(void)
{
	/* pcpu_nr_slots() is an entry point too: called after the alloc, so
	 * that this step's first call is pcpu_alloc(). */
	unsigned n, s;

	area = pcpu_alloc(sizeof(long), sizeof(long));
	CHECK(area != NULL, "pcpu_alloc");
	n = pcpu_nr_slots();
	if (area && n >= 1 && n <= PCPU_MAX_SLOTS) {
		for (s = 0; s < n; s++)
			*(long *)pcpu_ptr(area, s) = 1000 + (long)s;
		CHECK(pcpu_ptr(area, 0) == (void *)area, "pcpu_ptr(area, 0)");
	}
}

static void step_cache(void)
{
	void *o;

	cache = pcpu_cache_create("early", 64, 0, NULL, NULL, NULL, 0);
	CHECK(cache != NULL, "pcpu_cache_create");
	if (cache) {
		o = pcpu_cache_alloc(cache, 0);
		CHECK(o != NULL, "pcpu_cache_alloc");
		if (o) {
			memset(o, 0xa5, 64);
			pcpu_cache_free(cache, o);
		}
	}
}

/*
 * The steps, each starting with a different first call into the library.
 * EARLY_FIRST=<name> in the environment picks the one that runs first (the
 * first call is the one that finds the library not set up); the others
 * follow in this order.  main() without EARLY_FIRST runs the program once
 * per step (fork + exec of itself), so every first call is tried.
 */
static const struct step {
	const char *name;
	void (*fn)(void);
} steps[] = {
	{ "lazy", step_lazy },		/* the reproducer's order */
	{ "eager", step_eager },
	{ "dual", step_dual },
	{ "alloc", step_alloc },
	{ "cache", step_cache },
	{ "info", step_info },
};
#define NSTEPS	(sizeof(steps) / sizeof(steps[0]))

/* getenv() may not work yet from .preinit_array: search @envp. */
static const char *early_env(char **envp)
{
	static const char key[] = "EARLY_FIRST=";

	for (; envp && *envp; envp++)
		if (strncmp(*envp, key, sizeof(key) - 1) == 0)
			return *envp + sizeof(key) - 1;
	return NULL;
}

static void early(char **envp)
{
	const char *first = early_env(envp);
	unsigned k = 0, i;

	if (!first || !*first)
		return;		/* the driver (main) calls nothing early */
	early_ran = 1;
	alarm(20);		/* bounded, whatever happens below */
	for (i = 0; first && i < NSTEPS; i++)
		if (strcmp(first, steps[i].name) == 0)
			k = i;
	for (i = 0; i < NSTEPS; i++)
		steps[(k + i) % NSTEPS].fn();
}

#ifdef EARLY_PREINIT
static void early_preinit(int argc, char **argv, char **envp)
{
	(void)argc;
	(void)argv;
	early(envp);
}
__attribute__((section(".preinit_array"), used))
static void (*const early_entry)(int, char **, char **) = early_preinit;
#else
__attribute__((constructor(101))) static void early_ctor(void)
{
	early(environ);
}
#endif

/* Without EARLY_FIRST: run ourselves once per first step, report all. */
static int run_all_orders(void)
{
	unsigned i, bad = 0;
	char var[64];

	for (i = 0; i < NSTEPS; i++) {
		int st;

		/* The order goes in the child's environment. */
		snprintf(var, sizeof(var), "EARLY_FIRST=%s", steps[i].name);
		st = se_run_self(NULL, NULL, var);
		if (st < 0) {
			printf("early: cannot run the \"%s\" order\n",
			       steps[i].name);
			bad++;
			continue;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		bad++;
		if (WIFSIGNALED(st))
			printf("early (%s, %s first): FAIL: killed by signal "
			       "%d (%s)\n", EARLY_WHERE, steps[i].name,
			       WTERMSIG(st), strsignal(WTERMSIG(st)));
		else
			printf("early (%s, %s first): FAIL: exit %d\n",
			       EARLY_WHERE, steps[i].name, WEXITSTATUS(st));
	}
	printf("early (%s): %u of %u orders failed\n", EARLY_WHERE, bad,
	       (unsigned)NSTEPS);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *first = getenv("EARLY_FIRST");
	unsigned n, s;
	void *o;
	int i;

	(void)argc;
	if (!first || !*first)
		return run_all_orders();
	(void)argv;
	if (!early_ran) {
		printf("early (%s): the early function did not run\n",
		       EARLY_WHERE);
		return 1;
	}
	n = pcpu_nr_slots();
	printf("early (%s, %s first): method %s then %s, nr_slots %u then "
	       "%u\n", EARLY_WHERE, first, early_method ? early_method : "(null)",
	       pcpu_update_method(), early_slots, n);
	/* Areas made early were built with the early slot count. */
	CHECK(n == early_slots, "nr_slots changed: %u early, %u now",
	      early_slots, n);

	/* What was made early still adds up after libpcpu's constructor. */
	for (i = 0; i < 1000; i++) {
		pcpu_counter_add(&lazy, 3);
		pcpu_counter_add(&eager, 3);
		pcpu_counter_add(&dual, 3);
	}
	CHECK(pcpu_counter_sum(&lazy) == 296 + 3000, "LAZY sum %lld later",
	      (long long)pcpu_counter_sum(&lazy));
	CHECK(pcpu_counter_sum(&eager) == 308 + 3000, "EAGER sum %lld later",
	      (long long)pcpu_counter_sum(&eager));
	CHECK(pcpu_counter_sum(&dual) == 307 + 3000, "DUAL sum %lld later",
	      (long long)pcpu_counter_sum(&dual));
	if (area && n == early_slots && n <= PCPU_MAX_SLOTS)
		for (s = 0; s < n; s++)
			CHECK(*(long *)pcpu_ptr(area, s) == 1000 + (long)s,
			      "slot %u holds %ld", s,
			      *(long *)pcpu_ptr(area, s));
	if (cache) {
		o = pcpu_cache_alloc(cache, 0);
		CHECK(o != NULL, "pcpu_cache_alloc later");
		pcpu_cache_free(cache, o);
		CHECK(pcpu_cache_destroy(cache) == 0, "pcpu_cache_destroy");
	}
	pcpu_free(area);
	pcpu_counter_destroy(&lazy);
	pcpu_counter_destroy(&eager);
	pcpu_counter_destroy(&dual);

	if (nerrs) {
		printf("early (%s, %s first): %u failures:\n%s", EARLY_WHERE,
		       first, nerrs, errs);
		return 1;
	}
	printf("early (%s, %s first): ok\n", EARLY_WHERE, first);
	return 0;
}
