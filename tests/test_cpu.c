/* SPDX-License-Identifier: MIT */
/*
 * test_cpu.c - pcpu/cpu.h: slot count, PCPU_NR_SLOTS, pcpu_set_nr_slots(),
 * pcpu_this_slot(), pcpu_update_method(), pcpu_slot_index().
 *
 * The PCPU_NR_SLOTS cases re-execute this binary (the path /proc/self/exe
 * links to) with the variable set and the argument CHILD_ARG; that child
 * checks what it sees and reports through its exit status.
 */
#include "testutil.h"
#include "selfexec.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_ARG	"--nr-slots-child"
#define INDEX_CHILD_ARG	"--slot-index-child"

extern char **environ;

/*
 * The possible CPUs, parsed from /sys/devices/system/cpu/possible ("0-3",
 * "0,2-5", ...).  *count gets how many are listed, *span the highest id
 * plus one: equal unless the list has holes.  Return: 0 or -1.
 */
static int parse_possible(unsigned *count, unsigned *span)
{
	char buf[4096], *p, *end;
	unsigned long lo, hi;
	size_t len;
	FILE *f;

	f = fopen("/sys/devices/system/cpu/possible", "r");
	if (!f)
		return -1;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	*count = 0;
	*span = 0;
	for (p = buf; *p && *p != '\n';) {
		lo = strtoul(p, &end, 10);
		if (end == p)
			return -1;
		hi = lo;
		p = end;
		if (*p == '-') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1 || hi < lo)
				return -1;
			p = end;
		}
		*count += (unsigned)(hi - lo + 1);
		if (hi + 1 > *span)
			*span = (unsigned)(hi + 1);
		if (*p == ',')
			p++;
	}
	return *count ? 0 : -1;
}

/* --- pcpu_nr_slots -------------------------------------------------------- */

START_TEST(test_nr_slots_default)
{
	const char *env = getenv("PCPU_NR_SLOTS");
	unsigned n = pcpu_nr_slots(), count, span;

	ck_assert_uint_ge(n, 1);
	ck_assert_uint_le(n, PCPU_MAX_SLOTS);
	ck_assert_uint_eq(pcpu_nr_slots(), n);	/* stable */
	if (env && *env) {
		/* Run by hand with the override: the child cases cover it. */
		return;
	}
	ck_assert_msg(parse_possible(&count, &span) == 0,
		      "cannot parse /sys/devices/system/cpu/possible");
	if (count > PCPU_MAX_SLOTS)
		count = PCPU_MAX_SLOTS;
	if (span > PCPU_MAX_SLOTS)
		span = PCPU_MAX_SLOTS;
	/* With holes in the list, one slot per id up to the highest is fine. */
	ck_assert_msg(n == count || n == span,
		      "pcpu_nr_slots() = %u, possible CPUs: %u (ids < %u)",
		      n, count, span);
}
END_TEST

/* --- PCPU_NR_SLOTS, through a re-executed child --------------------------- */

enum child_status {
	CHILD_OK = 0,
	CHILD_WRONG_COUNT = 10,	/* pcpu_nr_slots() != PCPU_NR_SLOTS */
	CHILD_OUT_OF_RANGE,	/* not in [1, PCPU_MAX_SLOTS] */
	CHILD_REREAD,		/* changed after setenv(): read more than once */
	CHILD_THIS_SLOT,	/* pcpu_this_slot() >= pcpu_nr_slots() */
	CHILD_ALLOC,		/* pcpu_alloc() failed */
	CHILD_PTR,		/* pcpu_ptr() disagrees with the slot count */
	CHILD_USAGE,
};

static const char *child_status_name(int st)
{
	switch (st) {
	case CHILD_OK: return "ok";
	case CHILD_WRONG_COUNT: return "pcpu_nr_slots() != PCPU_NR_SLOTS";
	case CHILD_OUT_OF_RANGE: return "pcpu_nr_slots() out of [1, MAX]";
	case CHILD_REREAD: return "PCPU_NR_SLOTS read again after first call";
	case CHILD_THIS_SLOT: return "pcpu_this_slot() >= pcpu_nr_slots()";
	case CHILD_ALLOC: return "pcpu_alloc() failed";
	case CHILD_PTR: return "pcpu_ptr() disagrees with pcpu_nr_slots()";
	default: return "unexpected exit status";
	}
}

/*
 * The child: argv[2] is "exact" (PCPU_NR_SLOTS is valid and must be
 * honoured) or "any" (an invalid value: the count must still be in range).
 */
static int child_main(int argc, char **argv)
{
	const char *env = getenv("PCPU_NR_SLOTS");
	bool exact;
	unsigned n, want = 0;
	char *area;

	if (argc < 3 || !env)
		return CHILD_USAGE;
	exact = strcmp(argv[2], "exact") == 0;
	if (exact)
		want = (unsigned)strtoul(env, NULL, 10);
	n = pcpu_nr_slots();		/* the first call into the library */
	if (n < 1 || n > PCPU_MAX_SLOTS)
		return CHILD_OUT_OF_RANGE;
	if (exact && n != want)
		return CHILD_WRONG_COUNT;
	setenv("PCPU_NR_SLOTS", n == 7 ? "9" : "7", 1);
	if (pcpu_nr_slots() != n)
		return CHILD_REREAD;
	if (pcpu_this_slot() >= n)
		return CHILD_THIS_SLOT;
	area = pcpu_alloc(16, 0);
	if (!area)
		return CHILD_ALLOC;
	if (pcpu_ptr(area, 0) != area || !pcpu_ptr(area, n - 1) ||
	    pcpu_ptr(area, n))
		return CHILD_PTR;
	memset(pcpu_ptr(area, n - 1), 0x5a, 16);
	pcpu_free(area);
	return CHILD_OK;
}

/* Run this binary as a child with PCPU_NR_SLOTS=@value; its exit status
 * (1000 + the signal if killed, -1 if it could not start). */
static int run_child(const char *value, const char *mode)
{
	char var[64];
	int st;

	snprintf(var, sizeof(var), "PCPU_NR_SLOTS=%s", value);
	st = se_run_self(CHILD_ARG, mode, var);
	if (st < 0)
		return -1;
	if (!WIFEXITED(st))
		return 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

START_TEST(test_env_nr_slots)
{
	/* Valid values, including both ends of the range. */
	unsigned vals[] = { 1, 2, 3, 7, 64, 4096, PCPU_MAX_SLOTS };
	char buf[32];
	size_t i;
	int st;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		snprintf(buf, sizeof(buf), "%u", vals[i]);
		st = run_child(buf, "exact");
		ck_assert_msg(st == CHILD_OK,
			      "PCPU_NR_SLOTS=%s: child exit %d (%s)", buf, st,
			      st >= 1000 ? "killed by a signal" :
			      child_status_name(st));
	}
}
END_TEST

START_TEST(test_env_nr_slots_invalid)
{
	/* Unusable values: whatever the library does, the count stays sane. */
	const char *vals[] = { "0", "-1", "abc", "", "99999999", "16385" };
	size_t i;
	int st;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		st = run_child(vals[i], "any");
		ck_assert_msg(st == CHILD_OK,
			      "PCPU_NR_SLOTS='%s': child exit %d (%s)", vals[i],
			      st, st >= 1000 ? "killed by a signal" :
			      child_status_name(st));
	}
}
END_TEST

/* --- pcpu_set_nr_slots ----------------------------------------------------- */

START_TEST(test_set_nr_slots_einval)
{
	unsigned before = pcpu_nr_slots();

	ck_assert_int_eq(pcpu_set_nr_slots(0), -EINVAL);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
	ck_assert_int_eq(pcpu_set_nr_slots(PCPU_MAX_SLOTS + 1), -EINVAL);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
	ck_assert_int_eq(pcpu_set_nr_slots(UINT_MAX), -EINVAL);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
}
END_TEST

START_TEST(test_set_nr_slots_range)
{
	unsigned vals[] = { PCPU_MAX_SLOTS, 1, 4096, 2, 3, PCPU_MAX_SLOTS - 1 };
	size_t i;

	ck_assert_uint_ge(PCPU_MAX_SLOTS, 4096);	/* at least 4096: doc/design.md */
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		ck_assert_int_eq(pcpu_set_nr_slots(vals[i]), 0);
		ck_assert_uint_eq(pcpu_nr_slots(), vals[i]);
		ck_assert_uint_lt(pcpu_this_slot(), vals[i]);
	}
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	ck_assert_uint_eq(pcpu_nr_slots(), tu_default_slots);
}
END_TEST

/* A live area makes every change fail, and nothing changes. */
static void expect_busy(const char *what)
{
	unsigned before = pcpu_nr_slots();

	ck_assert_msg(pcpu_set_nr_slots(tu_other_slots()) == -EBUSY,
		      "set_nr_slots while %s is live: not -EBUSY", what);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
	ck_assert_msg(pcpu_set_nr_slots(1) == -EBUSY || before == 1,
		      "set_nr_slots(1) while %s is live: not -EBUSY", what);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
	/* Invalid values stay -EINVAL (or -EBUSY), never a change. */
	ck_assert_int_ne(pcpu_set_nr_slots(0), 0);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
}

/* Nothing is live: a change succeeds; then restore. */
static void expect_free(const char *what)
{
	unsigned before = pcpu_nr_slots(), other = tu_other_slots();

	ck_assert_msg(pcpu_set_nr_slots(other) == 0,
		      "set_nr_slots after %s: not 0", what);
	ck_assert_uint_eq(pcpu_nr_slots(), other);
	ck_assert_int_eq(pcpu_set_nr_slots(before), 0);
	ck_assert_uint_eq(pcpu_nr_slots(), before);
}

START_TEST(test_set_nr_slots_busy_alloc)
{
	void *a, *b;

	expect_free("nothing");
	a = pcpu_alloc(8, 0);
	ck_assert_ptr_nonnull(a);
	expect_busy("a pcpu_alloc() area");
	b = pcpu_alloc(4096, 64);
	ck_assert_ptr_nonnull(b);
	pcpu_free(a);
	expect_busy("the second of two areas");
	pcpu_free(b);
	expect_free("pcpu_free() of every area");
}
END_TEST

START_TEST(test_set_nr_slots_busy_eager)
{
	struct pcpu_counter c, many[10];

	ck_assert_int_eq(pcpu_counter_init(&c, 5, PCPU_COUNTER_EAGER), 0);
	expect_busy("an EAGER counter");
	pcpu_counter_destroy(&c);
	expect_free("destroying the EAGER counter");

	ck_assert_int_eq(pcpu_counter_init_many(many, 0, PCPU_COUNTER_EAGER,
						10), 0);
	expect_busy("EAGER counters from init_many");
	pcpu_counter_destroy_many(many, 10);
	expect_free("destroy_many of EAGER counters");
}
END_TEST

START_TEST(test_set_nr_slots_busy_dual)
{
	struct pcpu_counter c;

	ck_assert_int_eq(pcpu_counter_init(&c, 5, PCPU_COUNTER_DUAL), 0);
	pcpu_counter_add(&c, 3);
	/* Never shared: it holds no per-CPU area. */
	expect_free("an unshared DUAL counter");
	ck_assert_int_eq(pcpu_counter_share(&c), 0);
	expect_busy("a shared DUAL counter");
	ck_assert_int_eq(pcpu_counter_sum(&c), 8);
	pcpu_counter_destroy(&c);
	expect_free("destroying the shared DUAL counter");
}
END_TEST

/*
 * pcpu_set_nr_slots() against concurrent pcpu_alloc()/pcpu_free(): a
 * thread holding a live area always sees the count the area was built
 * with, so pcpu_ptr(area, n - 1) is usable and pcpu_ptr(area, n) is NULL.
 */
struct flip_arg {
	struct tu_worker_rec rec;
	struct tu_gate *gate;
	unsigned long iters;
} __attribute__((aligned(TU_CACHELINE)));

static void *alloc_loop(void *p)
{
	struct flip_arg *a = p;
	unsigned n, s;
	char *area;

	tu_gate_wait(a->gate);
	while (!tu_gate_stopped(a->gate)) {
		area = pcpu_alloc(24, 8);
		if (!area) {
			tu_rec_fail(&a->rec, "pcpu_alloc: errno %d", errno);
			break;
		}
		n = pcpu_nr_slots();
		for (s = 0; s < n; s++)
			memset(pcpu_ptr(area, s), 0x77, 24);
		if (pcpu_ptr(area, n - 1) == NULL || pcpu_ptr(area, n) != NULL)
			tu_rec_fail(&a->rec, "pcpu_ptr disagrees with nr_slots"
				    " %u", n);
		if (pcpu_nr_slots() != n)
			tu_rec_fail(&a->rec, "nr_slots changed under a live "
				    "area: %u -> %u", n, pcpu_nr_slots());
		pcpu_free(area);
		if ((++a->iters & 63) == 0)
			sched_yield();
	}
	return NULL;
}

START_TEST(test_set_nr_slots_concurrent)
{
	struct tu_gate gate;
	struct flip_arg arg;
	struct tu_budget b;
	unsigned long ok = 0, busy = 0, other = 0;
	unsigned vals[2] = { 1, 8 }, i = 0;
	pthread_t t;
	int r;

	memset(&arg, 0, sizeof(arg));
	tu_gate_init(&gate);
	arg.gate = &gate;
	ck_assert_int_eq(tu_spawn(&t, 1, alloc_loop, &arg, sizeof(arg)), 0);
	tu_gate_open(&gate);
	tu_budget_start(&b, 0.5);
	while (tu_budget_left(&b)) {
		r = pcpu_set_nr_slots(vals[i++ & 1]);
		if (r == 0)
			ok++;
		else if (r == -EBUSY)
			busy++;
		else
			other++;
		sched_yield();
	}
	tu_gate_stop(&gate);
	tu_join(&t, 1);
	ck_assert_msg(!arg.rec.failed, "alloc thread: %s", arg.rec.err);
	ck_assert_msg(other == 0, "set_nr_slots returned neither 0 nor -EBUSY");
	ck_assert_uint_gt(arg.iters, 0);
	ck_assert_msg(ok > 0, "set_nr_slots never succeeded (%lu -EBUSY)",
		      busy);
}
END_TEST

/* --- pcpu_this_slot -------------------------------------------------------- */

/* Threads of this process now (/proc/self/task entries); 0 if unknown. */
static unsigned nr_threads(void)
{
	unsigned n = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %u", &n) == 1)
			break;
	fclose(f);
	return n;
}

static bool index_is_mm_cid(void)
{
	return strcmp(pcpu_slot_index(), "mm_cid") == 0;
}

/*
 * Pinned to each allowed CPU k, the slot is k folded into [0, n) when
 * slots are CPU numbers (pcpu_slot_index() "cpu"); with "mm_cid" it is
 * the thread's concurrency id, below the number of threads that run at
 * once: 0 for the only thread of the process, wherever it runs.
 */
static void check_this_slot_pinned(void)
{
	unsigned n = pcpu_nr_slots(), i, s, th = nr_threads();
	bool cid = index_is_mm_cid();
	int k, cpu;

	for (i = 0; i < tu_cpus.n; i++) {
		k = tu_cpus.cpu[i];
		ck_assert_int_eq(tu_pin(k), 0);
		cpu = sched_getcpu();
		ck_assert_int_eq(cpu, k);	/* the kernel moved us */
		s = pcpu_this_slot();
		if (cid)
			ck_assert_msg(th != 1 || s == 0, "mm_cid, the only "
				      "thread, pinned to CPU %d with %u slots: "
				      "slot %u, want 0", k, n, s);
		else
			ck_assert_msg(s == (unsigned)k % n,
				      "pinned to CPU %d with %u slots: slot %u, "
				      "want %u", k, n, s, (unsigned)k % n);
	}
	ck_assert_int_eq(tu_unpin(), 0);
}

START_TEST(test_this_slot_default)
{
	unsigned i;

	for (i = 0; i < 1000; i++)
		ck_assert_uint_lt(pcpu_this_slot(), pcpu_nr_slots());
	check_this_slot_pinned();
}
END_TEST

START_TEST(test_this_slot_one)
{
	unsigned i;

	ck_assert_int_eq(pcpu_set_nr_slots(1), 0);
	for (i = 0; i < 1000; i++)
		ck_assert_uint_eq(pcpu_this_slot(), 0);
	check_this_slot_pinned();
}
END_TEST

START_TEST(test_this_slot_many)
{
	unsigned vals[] = { 4096, PCPU_MAX_SLOTS }, i, j;

	for (j = 0; j < 2; j++) {
		ck_assert_int_eq(pcpu_set_nr_slots(vals[j]), 0);
		for (i = 0; i < 1000; i++)
			ck_assert_uint_lt(pcpu_this_slot(), vals[j]);
		check_this_slot_pinned();
	}
}
END_TEST

/* Fewer slots than CPUs: CPUs share slots as k % n. */
START_TEST(test_this_slot_fewer)
{
	int maxcpu = tu_cpus.cpu[tu_cpus.n - 1];

	if (maxcpu < 1)
		return;		/* one CPU allowed: covered by test_this_slot_one */
	ck_assert_int_eq(pcpu_set_nr_slots((unsigned)maxcpu), 0);
	check_this_slot_pinned();
}
END_TEST

/* Threads see slots in range too, while they hop between CPUs. */
struct slot_arg {
	struct tu_worker_rec rec;
	unsigned checks;
} __attribute__((aligned(TU_CACHELINE)));

/* Threads slot_hopper() runs alongside: main and the three hoppers. */
#define HOP_THREADS	4

static void *slot_hopper(void *p)
{
	struct slot_arg *a = p;
	unsigned n = pcpu_nr_slots(), cursor = a->rec.id, i, s, cap;
	bool cid = index_is_mm_cid();
	int cpu;

	/* mm_cid: below min(threads, possible CPUs), and below n. */
	cap = tu_possible_cpus() < HOP_THREADS ? tu_possible_cpus() :
	      HOP_THREADS;

	for (i = 0; i < 200; i++) {
		if (tu_hop(&cursor)) {
			tu_rec_fail(&a->rec, "sched_setaffinity: %d", errno);
			break;
		}
		cpu = sched_getcpu();
		s = pcpu_this_slot();
		if (s >= n || (!cid && cpu >= 0 && s != (unsigned)cpu % n) ||
		    (cid && s >= cap))
			tu_rec_fail(&a->rec, "cpu %d: slot %u of %u (index %s)",
				    cpu, s, n, pcpu_slot_index());
		a->checks++;
	}
	return NULL;
}

START_TEST(test_this_slot_threads)
{
	struct slot_arg args[3];
	pthread_t t[3];
	unsigned i;

	memset(args, 0, sizeof(args));
	for (i = 0; i < 3; i++)
		args[i].rec.id = i;
	ck_assert_int_eq(tu_spawn(t, 3, slot_hopper, args, sizeof(args[0])), 0);
	tu_join(t, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_msg(!args[i].rec.failed, "thread %u: %s", i,
			      args[i].rec.err);
		ck_assert_uint_eq(args[i].checks, 200);
	}
}
END_TEST

/* --- the slot index: a hopping thread's touched slots ---------------------- */

/* White-box (lib/counter.c): slots of @c touched (their w word set). */
static unsigned touched_slots(const struct pcpu_counter *c)
{
	unsigned s, n = pcpu_nr_slots(), t = 0;

	for (s = 0; s < n; s++)
		t += ((const uint64_t *)(const void *)((const char *)
			c->pcpu__slots + (size_t)s * PCPU__UNIT_SIZE))[2] != 0;
	return t;
}

/* Slots the allowed CPUs map to as CPU numbers. */
static unsigned cpu_slots(void)
{
	unsigned n = pcpu_nr_slots(), i, t = 0;
	char *seen = calloc(n, 1);

	if (!seen)
		return 0;
	for (i = 0; i < tu_cpus.n; i++)
		if (!seen[(unsigned)tu_cpus.cpu[i] % n]++)
			t++;
	free(seen);
	return t;
}

/*
 * The calling thread hops over every allowed CPU, 10 rounds, adding 1 to
 * a fresh LAZY counter on each.  Return: the touched slots, or -1 (a
 * failure: pinning, init, or a wrong sum).
 */
static int hop_touches(void)
{
	struct pcpu_counter c;
	unsigned cursor = 0, i, hops = 10 * tu_cpus.n;
	int t;

	if (pcpu_counter_init(&c, 0, PCPU_COUNTER_LAZY))
		return -1;
	for (i = 0; i < hops; i++) {
		if (tu_hop(&cursor)) {
			pcpu_counter_destroy(&c);
			return -1;
		}
		pcpu_counter_inc(&c);
	}
	(void)tu_unpin();
	t = pcpu_counter_sum(&c) == (int64_t)hops ? (int)touched_slots(&c) : -1;
	pcpu_counter_destroy(&c);
	return t;
}

/* The child run with PCPU_SLOT_INDEX=cpu: 0, or what went wrong. */
enum { IDX_OK = 0, IDX_NOT_CPU = 20, IDX_HOP, IDX_TOUCHED };

static int index_child_main(void)
{
	int t;

	tu_cpus_init();
	if (strcmp(pcpu_slot_index(), "cpu") != 0)
		return IDX_NOT_CPU;
	t = hop_touches();
	if (t < 0)
		return IDX_HOP;
	return (unsigned)t == cpu_slots() ? IDX_OK : IDX_TOUCHED;
}

/* Run this binary with PCPU_SLOT_INDEX=cpu as the index child. */
static int run_index_child(void)
{
	int st = se_run_self(INDEX_CHILD_ARG, NULL, "PCPU_SLOT_INDEX=cpu");

	if (st < 0)
		return -1;
	if (!WIFEXITED(st))
		return 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return WEXITSTATUS(st);
}

/*
 * mm_cid: the only thread of the process touches exactly one slot however
 * it hops; CPU numbers (here when the process has no mm_cid, and in a
 * child run with PCPU_SLOT_INDEX=cpu): one slot per CPU it ran on.
 */
START_TEST(test_slot_index_hops)
{
	unsigned th = nr_threads();
	int t = hop_touches(), st;

	ck_assert_msg(t >= 0, "hopping adds failed (pinning or sum)");
	if (index_is_mm_cid()) {
		if (th == 1)
			ck_assert_msg(t == 1, "mm_cid: one thread hopping over "
				      "%u CPUs touched %d slots, want 1",
				      tu_cpus.n, t);
		else
			printf("slot_index_hops: %u threads, the one-slot case "
			       "not judged\n", th);
	} else {
		ck_assert_msg((unsigned)t == cpu_slots(), "cpu index: one "
			      "thread hopping over %u CPUs touched %d slots, "
			      "want %u", tu_cpus.n, t, cpu_slots());
	}
	st = run_index_child();
	ck_assert_msg(st == IDX_OK, "PCPU_SLOT_INDEX=cpu child: exit %d (%s)",
		      st, st == IDX_NOT_CPU ? "pcpu_slot_index() is not "
		      "\"cpu\"" : st == IDX_HOP ? "hopping adds failed" :
		      st == IDX_TOUCHED ? "touched slots != the CPUs' slots" :
		      "unexpected");
}
END_TEST

/* Two threads hopping over every CPU: with mm_cid, at most two slots. */
struct hop2 {
	struct pcpu_counter *c;
	unsigned id;
	int err;
	int64_t added;
} __attribute__((aligned(TU_CACHELINE)));

static void *hop2_fn(void *p)
{
	struct hop2 *h = p;
	unsigned cursor = h->id, i;

	for (i = 0; i < 400; i++) {
		if ((h->err = tu_hop(&cursor)) != 0)
			break;
		pcpu_counter_add(h->c, 3);
		h->added += 3;
	}
	return NULL;
}

START_TEST(test_slot_index_two_threads)
{
	struct pcpu_counter c;
	struct hop2 h[2];
	pthread_t t[2];
	unsigned touched, i;

	ck_assert_int_eq(pcpu_counter_init(&c, 0, PCPU_COUNTER_LAZY), 0);
	memset(h, 0, sizeof(h));
	for (i = 0; i < 2; i++) {
		h[i].c = &c;
		h[i].id = i;
	}
	ck_assert_int_eq(tu_spawn(t, 2, hop2_fn, h, sizeof(h[0])), 0);
	tu_join(t, 2);
	ck_assert_int_eq(h[0].err, 0);
	ck_assert_int_eq(h[1].err, 0);
	ck_assert_int_eq(pcpu_counter_sum(&c), h[0].added + h[1].added);
	touched = touched_slots(&c);
	ck_assert_uint_ge(touched, 1);
	if (index_is_mm_cid())
		ck_assert_msg(touched <= 2, "mm_cid: two threads touched %u "
			      "slots", touched);
	else
		ck_assert_uint_le(touched, cpu_slots());
	pcpu_counter_destroy(&c);
}
END_TEST

/* --- pcpu_update_method ---------------------------------------------------- */

START_TEST(test_update_method)
{
	const char *m = pcpu_update_method();
	const char *want = getenv("PCPU_EXPECT_METHOD");

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_gt(strlen(m), 0);
	ck_assert_msg(strcmp(m, "atomic") == 0 || strcmp(m, "rseq") == 0 ||
		      strcmp(m, "rseq-own") == 0,
		      "unknown update method '%s'", m);
	/* tests/all-methods.sh says which one each of its runs must get. */
	if (want && *want)
		ck_assert_str_eq(m, want);
	/* A static string: the same every time. */
	ck_assert_str_eq(pcpu_update_method(), m);
	ck_assert_ptr_eq(pcpu_update_method(), m);
}
END_TEST

static Suite *cpu_suite(void)
{
	Suite *s = suite_create("cpu");
	TCase *tc;

	tc = tu_tcase(s, "nr_slots", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_nr_slots_default);
	tcase_add_test(tc, test_env_nr_slots);
	tcase_add_test(tc, test_env_nr_slots_invalid);

	tc = tu_tcase(s, "set_nr_slots", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_set_nr_slots_einval);
	tcase_add_test(tc, test_set_nr_slots_range);
	tcase_add_test(tc, test_set_nr_slots_busy_alloc);
	tcase_add_test(tc, test_set_nr_slots_busy_eager);
	tcase_add_test(tc, test_set_nr_slots_busy_dual);
	tcase_add_test(tc, test_set_nr_slots_concurrent);

	tc = tu_tcase(s, "this_slot", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_this_slot_default);
	tcase_add_test(tc, test_this_slot_one);
	tcase_add_test(tc, test_this_slot_many);
	tcase_add_test(tc, test_this_slot_fewer);
	tcase_add_test(tc, test_this_slot_threads);
	tcase_add_test(tc, test_slot_index_hops);
	tcase_add_test(tc, test_slot_index_two_threads);

	tc = tu_tcase(s, "update_method", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_update_method);
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], CHILD_ARG) == 0)
		return child_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], INDEX_CHILD_ARG) == 0)
		return index_child_main();
	return tu_main(cpu_suite());
}
