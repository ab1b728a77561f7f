/* SPDX-License-Identifier: MIT */
/*
 * test_area.c - per-CPU areas as data: pcpu_alloc_lazy(), pcpu_area_add(),
 * pcpu_area_sum(), pcpu_area_zero(), pcpu_area_for_each() and
 * pcpu_slot_index() (pcpu/alloc.h, pcpu/cpu.h):
 *
 *  errors     bad sizes and alignments give NULL and EINVAL and leave no
 *             area behind; for_each's -EINVAL cases; for_each returns the
 *             first nonzero value of its function and stops there; the
 *             NULL no-ops; the alignment every copy must have.
 *  lazy       a fresh lazy area reads as zero everywhere and has no touched
 *             slot; after adds, for_each visits exactly the slots whose
 *             copies the adds changed, in slot order, and sum is what was
 *             added; zero undoes all of it; churn of 10000 areas mixed with
 *             eager areas and counters (which share the clean-area caches)
 *             hands out only clean areas; adds from a thread-exit
 *             destructor (the overflow word under rseq-own) are counted and
 *             zeroed.
 *  eager      pcpu_alloc() areas: for_each visits every slot in order, and
 *             add, sum and zero work on them.
 *  exact      pcpu_area_add() loses nothing: several threads on one area,
 *             hopping CPUs every few thousand adds, two and three words
 *             per operation, at the default slot count, 1 slot (CPUs share
 *             it) and 4096 slots, lazy and eager; an interval timer's
 *             handler adding to the words its thread is adding to.
 *  memory     at 4096 slots, the pages of the units of slots that never
 *             updated an area are never accessed: not by allocation, add,
 *             sum, for_each, zero, free or reallocation (mincore(2); this
 *             VM has no shared zero page, so a read would show as well).
 *             zero and free are O(touched): proved by the pages, not by
 *             time.  Under the atomic method without rseq (tests/norseq)
 *             the same with slots spread over the whole range.
 *  index      pcpu_slot_index(): under "mm_cid" a thread hopping between
 *             CPUs touches one slot, under "cpu" one per CPU; the whole
 *             suite again with PCPU_SLOT_INDEX=cpu (this binary re-executed,
 *             as test_cpu.c does for PCPU_NR_SLOTS).
 *
 * White-box parts: slot s's copy is PCPU__UNIT_SIZE * s bytes after the
 * area (pcpu/alloc.h), so the unit of slot s of an area's chunk starts at
 * (area & ~(UNIT - 1)) + s * UNIT; a slot-count change releases every
 * chunk, so the chunks a memory test gets afterwards are fresh.
 *
 * Workers and signal handlers record; the main thread joins and asserts.
 * Every loop is bounded by wall-clock time (tu_stress_seconds()) or a
 * fixed count.
 */
#include "testutil.h"
#include "selfexec.h"

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <sys/wait.h>

#define UNIT		PCPU__UNIT_SIZE
#define CHILD_ARG	"--area-slot-index-cpu"

extern char **environ;

/* Set in the re-executed child (PCPU_SLOT_INDEX=cpu). */
static bool is_child;

static double case_seconds(double share)
{
	return tu_stress_seconds() * share;
}

/* Fresh chunks at @n slots (a slot-count change releases every chunk). */
static void fresh_chunks(unsigned n)
{
	ck_assert_int_eq(pcpu_set_nr_slots(n == 1 ? 2 : 1), 0);
	ck_assert_int_eq(pcpu_set_nr_slots(n), 0);
}

/*
 * Claimed CPU numbers (as in test_lazy.c): the library asks sched_getcpu()
 * for the CPU of a thread without an rseq area (norseq), so a thread can
 * reach any slot by claiming a number.  Under the rseq methods the library
 * reads the rseq area and the "spread" parts skip.
 */
static __thread int fake_cpu = -1;

int sched_getcpu(void)
{
	unsigned cpu = 0;

	if (fake_cpu >= 0)
		return fake_cpu;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 29)
	if (getcpu(&cpu, NULL))
		return -1;
#else
	if (syscall(SYS_getcpu, &cpu, NULL, NULL))
		return -1;
#endif
	return (int)cpu;
}

static bool fake_cpus_work(void)
{
	unsigned nr = pcpu_nr_slots(), got;

	fake_cpu = (int)(nr + 5);
	got = pcpu_this_slot();
	fake_cpu = -1;
	return nr > 5 && got == 5 % nr;
}

/* --- visiting ------------------------------------------------------------ */

#define MAXV	PCPU_MAX_SLOTS

/* What for_each's function saw; it never reads a copy. */
struct vlog {
	void *area;
	unsigned n;		/* calls */
	unsigned bad_ptr;	/* copy != area + slot * UNIT */
	unsigned bad_order;	/* slot not above the previous one */
	unsigned stop_at;	/* return stop_ret at this call (1-based) */
	int stop_ret;
	unsigned slots[MAXV];
};

static int vlog_fn(void *copy, unsigned slot, void *arg)
{
	struct vlog *v = arg;

	if (copy != (char *)v->area + (size_t)slot * UNIT)
		v->bad_ptr++;
	if (v->n && slot <= v->slots[v->n - 1])
		v->bad_order++;
	if (v->n < MAXV)
		v->slots[v->n] = slot;
	v->n++;
	return v->n == v->stop_at ? v->stop_ret : 0;
}

static struct vlog vl;	/* big: static, used by the main thread only */

/* Sums one word over the copies for_each visits (reads them). */
struct sum_copies {
	size_t off;
	int64_t acc;
};

static int sum_fn(void *copy, unsigned slot, void *arg)
{
	struct sum_copies *sc = arg;

	(void)slot;
	sc->acc += *(int64_t *)((char *)copy + sc->off);
	return 0;
}

/* for_each(@area) into vl, which must come back clean and in order. */
static unsigned visit(void *area, const char *what)
{
	int r;

	memset(&vl, 0, offsetof(struct vlog, slots));
	vl.area = area;
	r = pcpu_area_for_each(area, vlog_fn, &vl);
	ck_assert_msg(r == 0, "%s: for_each = %d, want 0", what, r);
	ck_assert_msg(vl.bad_ptr == 0, "%s: for_each passed %u wrong copy "
		      "pointers", what, vl.bad_ptr);
	ck_assert_msg(vl.bad_order == 0, "%s: for_each out of slot order "
		      "(%u times)", what, vl.bad_order);
	return vl.n;
}

/* Is copy @s of @area nonzero over @size bytes?  (Reads the copy.) */
static bool copy_nonzero(const void *area, unsigned s, size_t size)
{
	const unsigned char *p = (const unsigned char *)area + (size_t)s * UNIT;
	size_t i;

	for (i = 0; i < size; i++)
		if (p[i])
			return true;
	return false;
}

/*
 * Every copy of @area zero over @size bytes, no touched slot, and the sum
 * of each of its words 0.  Reads every copy.
 */
static void expect_clean(void *area, size_t size, const char *what)
{
	unsigned nr = pcpu_nr_slots(), s, n;
	size_t w;

	for (s = 0; s < nr; s++)
		tu_check(!copy_nonzero(area, s, size), "%s: copy of slot %u "
			 "is not zero", what, s);
	n = visit(area, what);
	ck_assert_msg(n == 0, "%s: for_each visits %u slots, want none", what,
		      n);
	for (w = 0; w + 8 <= size; w += 8)
		tu_check(pcpu_area_sum((char *)area + w) == 0, "%s: sum of word "
			 "%zu is %lld", what, w / 8,
			 (long long)pcpu_area_sum((char *)area + w));
}

/*
 * for_each visits exactly the slots whose copies are nonzero (every delta
 * was positive), and those include @rec[0..nrec).  Reads every copy.
 */
static unsigned expect_touched_exactly(void *area, size_t size,
				       const unsigned *rec, unsigned nrec,
				       const char *what)
{
	unsigned nr = pcpu_nr_slots(), n, s, i, k;

	n = visit(area, what);
	for (i = 0, s = 0; s < nr; s++) {
		bool nz = copy_nonzero(area, s, size);
		bool visited = i < n && vl.slots[i] == s;

		tu_check(nz == visited, "%s: slot %u: copy %s, %svisited",
			 what, s, nz ? "nonzero" : "zero", visited ? "" : "not ");
		if (visited)
			i++;
	}
	ck_assert_msg(i == n, "%s: for_each visited slots at or above %u",
		      what, nr);
	for (k = 0; k < nrec; k++) {
		for (i = 0; i < n && vl.slots[i] != rec[k]; i++)
			;
		ck_assert_msg(i < n, "%s: slot %u updated the area and was "
			      "not visited", what, rec[k]);
	}
	return n;
}

/* --- errors ---------------------------------------------------------------- */

static const struct {
	size_t size, align;
} bad_args[] = {
	{ 0, 8 },
	{ 0, 0 },
	{ PCPU_ALLOC_MAX + 1, 8 },
	{ SIZE_MAX, 8 },
	{ 8, 3 },
	{ 8, 24 },
	{ 8, 2 * PCPU_ALLOC_MAX },
	{ 8, (SIZE_MAX >> 1) + 1 },
};

START_TEST(test_lazy_einval)
{
	void *p;

	errno = 0;
	p = pcpu_alloc_lazy(bad_args[_i].size, bad_args[_i].align);
	ck_assert_msg(p == NULL, "pcpu_alloc_lazy(%zu, %zu) = %p, want NULL",
		      bad_args[_i].size, bad_args[_i].align, p);
	ck_assert_msg(errno == EINVAL, "pcpu_alloc_lazy(%zu, %zu): errno %d, "
		      "want EINVAL", bad_args[_i].size, bad_args[_i].align,
		      errno);
	/* Nothing live: the slot count can still change. */
	tu_expect_no_area("after a bad pcpu_alloc_lazy()");
}
END_TEST

/* The edges that are valid. */
START_TEST(test_lazy_edges)
{
	static const struct {
		size_t size, align;
	} ok[] = {
		{ 1, 0 }, { 1, 1 }, { 7, 2 }, { PCPU_ALLOC_MAX, 0 },
		{ 1, PCPU_ALLOC_MAX }, { PCPU_ALLOC_MAX, PCPU_ALLOC_MAX },
	};
	void *p[sizeof(ok) / sizeof(ok[0])];
	size_t i, a;
	char what[64];

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		p[i] = pcpu_alloc_lazy(ok[i].size, ok[i].align);
		ck_assert_msg(p[i] != NULL, "pcpu_alloc_lazy(%zu, %zu): NULL, "
			      "errno %d", ok[i].size, ok[i].align, errno);
		a = ok[i].align ? ok[i].align : 8;
		ck_assert_msg((uintptr_t)p[i] % a == 0, "pcpu_alloc_lazy(%zu, "
			      "%zu) = %p: misaligned", ok[i].size, ok[i].align,
			      p[i]);
		snprintf(what, sizeof(what), "pcpu_alloc_lazy(%zu, %zu)",
			 ok[i].size, ok[i].align);
		expect_clean(p[i], ok[i].size, what);
		/* pcpu_ptr() touches the slot it is given. */
		ck_assert_ptr_eq(pcpu_ptr(p[i], 0), p[i]);
		ck_assert_uint_eq(visit(p[i], what), 1);
		ck_assert_uint_eq(vl.slots[0], 0);
	}
	tu_expect_area("lazy areas live");
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		pcpu_free(p[i]);
	tu_expect_no_area("lazy areas freed");
}
END_TEST

/*
 * @align: "as for pcpu_alloc()": the alignment of every copy, for every
 * power of two up to PCPU_ALLOC_MAX, whatever was allocated before (a
 * small area first, so that first fit does not start at offset 0).
 */
START_TEST(test_lazy_alignment)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 600 };
	enum { PER = 12 };
	void *spoil, *p[PER];
	size_t align, si, bad = 0, first_align = 0, first_size = 0;
	unsigned k;
	void *first = NULL;

	spoil = pcpu_alloc_lazy(8, 0);
	ck_assert_ptr_nonnull(spoil);
	for (align = 1; align <= PCPU_ALLOC_MAX; align *= 2) {
		for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			for (k = 0; k < PER; k++) {
				p[k] = pcpu_alloc_lazy(sizes[si], align);
				ck_assert_msg(p[k] != NULL, "pcpu_alloc_lazy("
					      "%zu, %zu): NULL", sizes[si],
					      align);
				if ((uintptr_t)p[k] % align && !bad++) {
					first = p[k];
					first_align = align;
					first_size = sizes[si];
				}
			}
			for (k = 0; k < PER; k++)
				pcpu_free(p[k]);
		}
	}
	pcpu_free(spoil);
	ck_assert_msg(bad == 0, "%zu lazy areas misaligned; first: "
		      "pcpu_alloc_lazy(%zu, %zu) = %p (address %% align = %zu)",
		      bad, first_size, first_align, first,
		      first_align ? (size_t)((uintptr_t)first % first_align) :
		      0);
	tu_expect_no_area("alignment");
}
END_TEST

START_TEST(test_for_each_einval)
{
	void *lz = pcpu_alloc_lazy(64, 0), *eg = pcpu_alloc(64, 0);
	int r;

	ck_assert_ptr_nonnull(lz);
	ck_assert_ptr_nonnull(eg);
	memset(&vl, 0, offsetof(struct vlog, slots));
	r = pcpu_area_for_each(NULL, vlog_fn, &vl);
	ck_assert_int_eq(r, -EINVAL);
	ck_assert_uint_eq(vl.n, 0);
	ck_assert_int_eq(pcpu_area_for_each(lz, NULL, &vl), -EINVAL);
	ck_assert_int_eq(pcpu_area_for_each(eg, NULL, &vl), -EINVAL);
	ck_assert_int_eq(pcpu_area_for_each(NULL, NULL, NULL), -EINVAL);
	/* The areas are untouched by all of that. */
	pcpu_area_add(lz, 5);
	ck_assert_int_eq(pcpu_area_sum(lz), 5);
	ck_assert_int_eq(pcpu_area_sum(eg), 0);
	pcpu_free(lz);
	pcpu_free(eg);
	tu_expect_no_area("for_each EINVAL");
}
END_TEST

START_TEST(test_for_each_stop)
{
	const unsigned nr = 64;
	static const int rets[] = { 1, -3, INT_MAX, INT_MIN, -EINVAL };
	static const unsigned at[] = { 1, 2, 38, 64, 64 };
	void *eg, *lz;
	unsigned i, n, cur = 0;
	int r;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	eg = pcpu_alloc(32, 0);
	ck_assert_ptr_nonnull(eg);
	for (i = 0; i < sizeof(rets) / sizeof(rets[0]); i++) {
		memset(&vl, 0, offsetof(struct vlog, slots));
		vl.area = eg;
		vl.stop_at = at[i];
		vl.stop_ret = rets[i];
		r = pcpu_area_for_each(eg, vlog_fn, &vl);
		ck_assert_msg(r == rets[i], "eager, stop at call %u: for_each "
			      "= %d, want %d", at[i], r, rets[i]);
		ck_assert_msg(vl.n == at[i], "eager, stop at call %u: %u calls",
			      at[i], vl.n);
		ck_assert_uint_eq(vl.slots[vl.n - 1], at[i] - 1);
		ck_assert_uint_eq(vl.bad_ptr + vl.bad_order, 0);
	}
	/* Nothing stops it: every slot, in order. */
	ck_assert_uint_eq(visit(eg, "eager at 64 slots"), nr);
	pcpu_free(eg);

	/* A lazy area touched from as many slots as we can reach. */
	lz = pcpu_alloc_lazy(32, 0);
	ck_assert_ptr_nonnull(lz);
	for (i = 0; i < 2 * tu_cpus.n; i++) {
		ck_assert_int_eq(tu_hop(&cur), 0);
		pcpu_area_add(lz, 1);
	}
	(void)tu_unpin();
	n = visit(lz, "lazy, touched");
	ck_assert_uint_ge(n, 1);
	for (i = 1; i <= n; i++) {
		memset(&vl, 0, offsetof(struct vlog, slots));
		vl.area = lz;
		vl.stop_at = i;
		vl.stop_ret = 40 + (int)i;
		r = pcpu_area_for_each(lz, vlog_fn, &vl);
		ck_assert_int_eq(r, 40 + (int)i);
		ck_assert_uint_eq(vl.n, i);
	}
	pcpu_free(lz);
	tu_expect_no_area("for_each stop");
}
END_TEST

START_TEST(test_null_noops)
{
	pcpu_area_zero(NULL);
	pcpu_free(NULL);
	tu_expect_no_area("pcpu_area_zero(NULL), pcpu_free(NULL)");
}
END_TEST

/* --- lazy semantics --------------------------------------------------------- */

static const unsigned slot_counts[] = { 0, 64, 4096 };

static unsigned slots_for(int i)
{
	return slot_counts[i] ? slot_counts[i] : tu_default_slots;
}

/*
 * A lazy area at @nr slots: fresh, then updated from every allowed CPU
 * (each word its own delta), then zeroed, then updated again.
 */
START_TEST(test_lazy_semantics)
{
	const unsigned nr = slots_for(_i);
	enum { NW = 6, SIZE = NW * 8 + 200 };
	static const unsigned wofs[NW] = { 0, 1, 2, 7, 8, 30 };
	unsigned rec[2 * CPU_SETSIZE], nrec = 0, round, c, k, before, after;
	int64_t want[NW];
	int64_t *a;
	char what[96];

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	a = pcpu_alloc_lazy(SIZE, 0);
	ck_assert_ptr_nonnull(a);
	snprintf(what, sizeof(what), "lazy at %u slots, fresh", nr);
	expect_clean(a, SIZE, what);

	for (round = 0; round < 2; round++) {
		memset(want, 0, sizeof(want));
		nrec = 0;
		/* Highest CPU first: for_each must still go in slot order. */
		for (c = tu_cpus.n; c-- > 0;) {
			ck_assert_int_eq(tu_pin(tu_cpus.cpu[c]), 0);
			before = pcpu_this_slot();
			for (k = 0; k < NW; k++) {
				pcpu_area_add(&a[wofs[k]], (int64_t)(k + 1) *
					      (c + 1));
				want[k] += (int64_t)(k + 1) * (c + 1);
			}
			after = pcpu_this_slot();
			if (before == after && nrec < 2 * CPU_SETSIZE)
				rec[nrec++] = before;
		}
		(void)tu_unpin();
		snprintf(what, sizeof(what), "lazy at %u slots, round %u, "
			 "updated from %u CPUs", nr, round, tu_cpus.n);
		ck_assert_uint_ge(expect_touched_exactly(a, SIZE, rec, nrec,
							 what), 1);
		for (k = 0; k < NW; k++)
			ck_assert_msg(pcpu_area_sum(&a[wofs[k]]) == want[k],
				      "%s: sum of word %u = %lld, want %lld",
				      what, wofs[k],
				      (long long)pcpu_area_sum(&a[wofs[k]]),
				      (long long)want[k]);
		/* Untouched words of touched slots: still zero. */
		ck_assert_int_eq(pcpu_area_sum(&a[3]), 0);
		pcpu_area_zero(a);
		snprintf(what, sizeof(what), "lazy at %u slots, round %u, "
			 "zeroed", nr, round);
		expect_clean(a, SIZE, what);
	}
	pcpu_free(a);
	tu_expect_no_area("lazy semantics");
}
END_TEST

/*
 * pcpu_ptr() on a lazy area touches the slot it is given: for_each visits
 * it, sum sees a plain write through the pointer, zero and free clean it,
 * and the next areas are clean.  A slot out of range touches nothing.
 */
START_TEST(test_lazy_ptr_touches)
{
	const unsigned nr = slots_for(_i);
	const unsigned want[2] = { 0, nr - 1 };
	int64_t *a, *p;
	unsigned i, n;
	char what[64];

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	snprintf(what, sizeof(what), "pcpu_ptr() at %u slots", nr);
	a = pcpu_alloc_lazy(40, 0);
	ck_assert_ptr_nonnull(a);
	errno = 0;
	ck_assert_ptr_null(pcpu_ptr(a, nr));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(visit(a, what), 0);
	p = pcpu_ptr(a, nr - 1);
	ck_assert_ptr_eq(p, (int64_t *)((char *)a + (size_t)(nr - 1) * UNIT));
	p[0] = 5;
	p[4] = -2;
	ck_assert_ptr_eq(pcpu_ptr(a, 0), a);
	a[0] = 1;
	n = visit(a, what);
	ck_assert_uint_eq(n, nr > 1 ? 2 : 1);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(vl.slots[i], want[i]);
	ck_assert_int_eq(pcpu_area_sum(&a[0]), nr > 1 ? 6 : 1);
	ck_assert_int_eq(pcpu_area_sum(&a[4]), nr > 1 ? -2 : 0);
	/* Adds on top of the plain writes, from this slot. */
	pcpu_area_add(&a[4], 10);
	ck_assert_int_eq(pcpu_area_sum(&a[4]), nr > 1 ? 8 : 10);
	pcpu_area_zero(a);
	expect_clean(a, 40, what);
	/* Written through the pointer, freed without a zero. */
	p = pcpu_ptr(a, nr - 1);
	memset(p, 0x5a, 40);
	pcpu_free(a);
	for (i = 0; i < 64; i++) {
		int64_t *b = pcpu_alloc_lazy(40, 0);

		ck_assert_ptr_nonnull(b);
		tu_check(!copy_nonzero(b, nr - 1, 40), "%s: area %u after a "
			 "plain write and pcpu_free(): copy of slot %u nonzero",
			 what, i, nr - 1);
		tu_check(pcpu_area_sum(b) == 0, "%s: area %u: sum %lld", what,
			 i, (long long)pcpu_area_sum(b));
		pcpu_free(b);
	}
	tu_expect_no_area(what);
}
END_TEST

/*
 * Slot order, deterministically: under the "cpu" index, updates from CPU
 * n-1 down to CPU 0 touch their slots in descending order.
 */
START_TEST(test_lazy_slot_order)
{
	unsigned want[CPU_SETSIZE], nw = 0, i, j, c, n;
	void *a;

	if (strcmp(pcpu_slot_index(), "cpu") != 0 || tu_cpus.n < 2) {
		printf("slot order: skipped (index %s, %u CPUs): slots are not "
		       "CPU numbers\n", pcpu_slot_index(), tu_cpus.n);
		return;
	}
	a = pcpu_alloc_lazy(16, 0);
	ck_assert_ptr_nonnull(a);
	for (c = tu_cpus.n; c-- > 0;) {
		ck_assert_int_eq(tu_pin(tu_cpus.cpu[c]), 0);
		pcpu_area_add((char *)a + 8, 1);
	}
	(void)tu_unpin();
	/* The slots of the CPUs, ascending and distinct. */
	for (c = 0; c < tu_cpus.n; c++) {
		unsigned s = (unsigned)tu_cpus.cpu[c] % pcpu_nr_slots();

		for (i = 0; i < nw && want[i] < s; i++)
			;
		if (i < nw && want[i] == s)
			continue;
		for (j = nw; j > i; j--)
			want[j] = want[j - 1];
		want[i] = s;
		nw++;
	}
	n = visit(a, "slot order");
	ck_assert_uint_eq(n, nw);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(vl.slots[i], want[i]);
	ck_assert_int_eq(pcpu_area_sum((char *)a + 8), (int64_t)tu_cpus.n);
	pcpu_free(a);
}
END_TEST

/*
 * Churn: 10000 lazy areas of mixed sizes and alignments, some kept live a
 * while, with eager areas (whose frees leave dirty granules) and LAZY and
 * DUAL counters (which share the clean-area caches) in between.  Every
 * lazy area must come clean: zero copies, no touched slot, zero sums; and
 * its touch bytes clean, which an add from the current slot shows (a stale
 * byte would skip the map: for_each would miss the slot, sum the delta).
 */
static const size_t churn_sizes[] = { 8, 16, 24, 32, 64, 120, 256, 512,
				      1000, 4096 };
static const size_t churn_aligns[] = { 0, 8, 16, 32, 64 };

START_TEST(test_lazy_churn)
{
	const unsigned nr = slots_for(_i), iters = _i == 0 ? 10000 : 3000;
	enum { RING = 48 };
	struct {
		int64_t *a;
		size_t size;
	} ring[RING];
	uint64_t seed = tu_rand_seed(77 + (unsigned)_i);
	unsigned it, k, cursor = 0, bad_clean = 0, bad_add = 0, s, n;
	unsigned first_it = 0;
	char first[160] = "";
	struct pcpu_counter ctr;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	memset(ring, 0, sizeof(ring));
	for (it = 0; it < iters; it++) {
		unsigned kind = tu_rand_below(&seed, 16);
		size_t size = churn_sizes[tu_rand_below(&seed,
			sizeof(churn_sizes) / sizeof(churn_sizes[0]))];
		size_t align = churn_aligns[tu_rand_below(&seed,
			sizeof(churn_aligns) / sizeof(churn_aligns[0]))];
		int64_t *a, d, sum;
		size_t nw = size / 8, w;

		if (it % 500 == 0)
			ck_assert_int_eq(tu_hop(&cursor), 0);
		if (kind == 0) {
			/* Eager, written everywhere, freed dirty. */
			void *e = pcpu_alloc(size, align);

			ck_assert_ptr_nonnull(e);
			for (s = 0; s < nr; s++)
				memset(pcpu_ptr(e, s), 0xa5, size);
			pcpu_free(e);
			continue;
		}
		if (kind == 1 || kind == 2) {
			ck_assert_int_eq(pcpu_counter_init(&ctr, 3, kind == 1 ?
					 PCPU_COUNTER_LAZY : PCPU_COUNTER_DUAL),
					 0);
			if (kind == 2)
				ck_assert_int_eq(pcpu_counter_share(&ctr), 0);
			for (k = 0; k < 600; k++)
				pcpu_counter_add(&ctr, 7);
			tu_check(pcpu_counter_sum(&ctr) == 3 + 7 * 600,
				 "churn %u: counter sum %lld", it,
				 (long long)pcpu_counter_sum(&ctr));
			pcpu_counter_destroy(&ctr);
			continue;
		}
		a = pcpu_alloc_lazy(size, align);
		ck_assert_msg(a != NULL, "churn %u: pcpu_alloc_lazy(%zu, %zu) "
			      "failed, errno %d", it, size, align, errno);
		for (s = 0; s < nr; s++) {
			if (copy_nonzero(a, s, size)) {
				if (!bad_clean++) {
					first_it = it;
					snprintf(first, sizeof(first), "copy "
						 "of slot %u nonzero", s);
				}
				break;
			}
		}
		n = 0;
		memset(&vl, 0, offsetof(struct vlog, slots));
		vl.area = a;
		(void)pcpu_area_for_each(a, vlog_fn, &vl);
		if (vl.n && !bad_clean++) {
			first_it = it;
			snprintf(first, sizeof(first), "%u slots touched", vl.n);
		}
		for (w = 0; w < nw; w += nw > 8 ? nw / 8 : 1) {
			sum = pcpu_area_sum(&a[w]);
			if (sum && !bad_clean++) {
				first_it = it;
				snprintf(first, sizeof(first), "sum of word "
					 "%zu is %lld", w, (long long)sum);
			}
		}
		/* One add from here: exactly one slot (or none, if the
		 * update went to the overflow word) and the delta. */
		w = tu_rand_below(&seed, (unsigned)nw);
		d = (int64_t)tu_rand_below(&seed, 1000) + 1;
		pcpu_area_add(&a[w], d);
		memset(&vl, 0, offsetof(struct vlog, slots));
		vl.area = a;
		(void)pcpu_area_for_each(a, vlog_fn, &vl);
		n = vl.n;
		sum = pcpu_area_sum(&a[w]);
		if ((n > 1 || sum != d ||
		     (n == 1 && *(int64_t *)((char *)&a[w] +
					     (size_t)vl.slots[0] * UNIT) != d))
		    && !bad_add++) {
			if (!bad_clean)
				first_it = it;
			snprintf(first + strlen(first), sizeof(first) -
				 strlen(first), "%sadd %lld to word %zu: %u "
				 "slots visited, sum %lld", *first ? "; " : "",
				 (long long)d, w, n, (long long)sum);
		}
		/* Keep some a while (so offsets and caches vary), zero some
		 * before reuse, free the rest now. */
		if (kind < 8) {
			k = tu_rand_below(&seed, RING);
			if (ring[k].a)
				pcpu_free(ring[k].a);
			ring[k].a = a;
			ring[k].size = size;
		} else {
			if (kind < 11) {
				pcpu_area_zero(a);
				if (pcpu_area_sum(&a[w]) != 0 && !bad_clean++)
					first_it = it;
			}
			pcpu_free(a);
		}
		if (bad_clean + bad_add > 20)
			break;
	}
	(void)tu_unpin();
	for (k = 0; k < RING; k++)
		pcpu_free(ring[k].a);
	ck_assert_msg(bad_clean == 0 && bad_add == 0, "churn at %u slots: %u "
		      "areas not clean, %u adds wrong; first at iteration %u: %s",
		      nr, bad_clean, bad_add, first_it, first);
	tu_expect_no_area("churn");
}
END_TEST

/*
 * Adds from a thread-exit destructor (pthread key made after the
 * library's): under rseq-own the thread's rseq area is gone by then and
 * the adds take the overflow word.  Sum counts them, zero clears them,
 * and the area comes back clean.
 */
static pthread_key_t exit_key;
static int64_t *exit_lazy, *exit_eager;

static void exit_dtor(void *p)
{
	(void)p;
	pcpu_area_add(exit_lazy, 11);
	pcpu_area_add(exit_lazy + 9, -4);
	pcpu_area_add(exit_eager, 13);
}

static void *exit_thread(void *arg)
{
	(void)arg;
	pcpu_area_add(exit_lazy, 1);	/* registers rseq-own, if that */
	pcpu_area_add(exit_eager, 1);
	(void)pthread_setspecific(exit_key, &exit_key);
	return NULL;
}

START_TEST(test_exit_dtor_adds)
{
	unsigned t;
	const unsigned nt = 8;

	ck_assert_int_eq(pthread_key_create(&exit_key, exit_dtor), 0);
	exit_lazy = pcpu_alloc_lazy(80, 0);
	exit_eager = pcpu_alloc(16, 0);
	ck_assert_ptr_nonnull(exit_lazy);
	ck_assert_ptr_nonnull(exit_eager);
	for (t = 0; t < nt; t++)
		ck_assert_int_eq(tu_run_in_thread(exit_thread, NULL), 0);
	ck_assert_int_eq(pcpu_area_sum(exit_lazy), 12 * nt);
	ck_assert_int_eq(pcpu_area_sum(exit_lazy + 9), -4 * (int64_t)nt);
	ck_assert_int_eq(pcpu_area_sum(exit_eager), 14 * nt);
	{
		struct sum_copies sc = { 0, 0 };

		ck_assert_int_eq(pcpu_area_for_each(exit_lazy, sum_fn, &sc), 0);
		printf("exit destructor (%s): %lld of %lld in the overflow "
		       "word\n", pcpu_update_method(),
		       (long long)(pcpu_area_sum(exit_lazy) - sc.acc),
		       (long long)pcpu_area_sum(exit_lazy));
	}
	pcpu_area_zero(exit_lazy);
	pcpu_area_zero(exit_eager);
	ck_assert_int_eq(pcpu_area_sum(exit_lazy), 0);
	ck_assert_int_eq(pcpu_area_sum(exit_lazy + 9), 0);
	ck_assert_int_eq(pcpu_area_sum(exit_eager), 0);
	expect_clean(exit_lazy, 80, "lazy after exit-destructor adds, zeroed");
	/* Again, freed without a zero: the next areas are clean. */
	for (t = 0; t < nt; t++)
		ck_assert_int_eq(tu_run_in_thread(exit_thread, NULL), 0);
	pcpu_free(exit_lazy);
	pcpu_free(exit_eager);
	ck_assert_int_eq(pthread_key_delete(exit_key), 0);
	for (t = 0; t < 32; t++) {
		int64_t *a = pcpu_alloc_lazy(80, 0);

		ck_assert_ptr_nonnull(a);
		tu_check(pcpu_area_sum(a) == 0 && pcpu_area_sum(a + 9) == 0,
			 "area %u after exit-destructor adds: sums %lld %lld", t,
			 (long long)pcpu_area_sum(a),
			 (long long)pcpu_area_sum(a + 9));
		pcpu_free(a);
	}
	tu_expect_no_area("exit destructor");
}
END_TEST

/* --- eager areas ----------------------------------------------------------- */

START_TEST(test_eager)
{
	const unsigned nr = slots_for(_i);
	enum { SIZE = 72 };
	int64_t *a;
	unsigned s, n, c, cursor = 0;
	int64_t want = 0;
	char what[64];

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	a = pcpu_alloc(SIZE, 0);
	ck_assert_ptr_nonnull(a);
	snprintf(what, sizeof(what), "eager at %u slots", nr);
	for (s = 0; s < nr; s++)
		tu_check(!copy_nonzero(a, s, SIZE), "%s: copy %u nonzero", what,
			 s);
	n = visit(a, what);
	ck_assert_uint_eq(n, nr);
	for (s = 0; s < nr; s++)
		tu_check(vl.slots[s] == s, "%s: call %u visited slot %u", what,
			 s, vl.slots[s]);
	for (c = 0; c < 2 * tu_cpus.n; c++) {
		ck_assert_int_eq(tu_hop(&cursor), 0);
		pcpu_area_add(&a[0], 5);
		pcpu_area_add(&a[8], -(int64_t)c);
		want -= c;
	}
	(void)tu_unpin();
	ck_assert_int_eq(pcpu_area_sum(&a[0]), 10 * (int64_t)tu_cpus.n);
	ck_assert_int_eq(pcpu_area_sum(&a[8]), want);
	ck_assert_int_eq(pcpu_area_sum(&a[4]), 0);
	ck_assert_uint_eq(visit(a, what), nr);
	pcpu_area_zero(a);
	for (s = 0; s < nr; s++)
		tu_check(!copy_nonzero(a, s, SIZE), "%s, zeroed: copy %u "
			 "nonzero", what, s);
	ck_assert_int_eq(pcpu_area_sum(&a[0]), 0);
	ck_assert_int_eq(pcpu_area_sum(&a[8]), 0);
	/* Still eager: every slot, and adds work after the zero. */
	ck_assert_uint_eq(visit(a, what), nr);
	pcpu_area_add(&a[8], 3);
	ck_assert_int_eq(pcpu_area_sum(&a[8]), 3);
	pcpu_free(a);
	tu_expect_no_area("eager");
}
END_TEST

/* --- exactness ---------------------------------------------------------------- */

/* Words of the exactness area: same line, next granule, another line. */
#define W0	0
#define W1	1
#define W2	19
#define XSIZE	(24 * 8)

struct hop_job {
	struct tu_worker_rec rec;
	struct tu_gate *gate;
	int64_t *area;
	unsigned long long ops;
	uint64_t seed;
	unsigned cursor;
} __attribute__((aligned(TU_CACHELINE)));

static void *hop_worker(void *arg)
{
	struct hop_job *j = arg;
	int64_t *a = j->area;

	tu_gate_wait(j->gate);
	while (!tu_gate_stopped(j->gate)) {
		unsigned k = 1000 + tu_rand_below(&j->seed, 4000), i;

		for (i = 0; i < k; i++) {
			pcpu_area_add(&a[W0], 1);
			pcpu_area_add(&a[W1], 3);
			pcpu_area_add(&a[W2], -1);
		}
		j->ops += k;
		if (tu_hop(&j->cursor))
			tu_rec_fail(&j->rec, "thread %u: cannot change CPU "
				    "(errno %d)", j->rec.id, errno);
	}
	return NULL;
}

static const struct {
	unsigned slots;		/* 0: the default */
	bool lazy;
} xconf[] = {
	{ 0, true }, { 0, false }, { 1, true }, { 1, false },
	{ 4096, true }, { 4096, false },
};

START_TEST(test_hop_exact)
{
	const unsigned nr = xconf[_i].slots ? xconf[_i].slots :
			    tu_default_slots;
	const bool lazy = xconf[_i].lazy;
	const unsigned nt = 3, rounds = 3;
	struct hop_job jobs[3];
	pthread_t tids[3];
	struct tu_gate gate;
	unsigned long long total = 0, all = 0;
	long long lost = 0;
	unsigned r, t;
	struct sum_copies sc;
	int64_t *a;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	if (nr == 1)
		ck_assert_str_eq(pcpu_update_method(), "atomic");
	for (r = 0; r < rounds; r++) {
		/* A fresh area a round: first touches race too. */
		a = lazy ? pcpu_alloc_lazy(XSIZE, 0) : pcpu_alloc(XSIZE, 0);
		ck_assert_ptr_nonnull(a);
		tu_gate_init(&gate);
		memset(jobs, 0, sizeof(jobs));
		for (t = 0; t < nt; t++) {
			jobs[t].rec.id = t;
			jobs[t].gate = &gate;
			jobs[t].area = a;
			jobs[t].seed = tu_rand_seed(r * 16 + t + 100 * _i);
			jobs[t].cursor = t;
		}
		ck_assert_int_eq(tu_spawn(tids, nt, hop_worker, jobs,
					  sizeof(jobs[0])), 0);
		tu_gate_open(&gate);
		usleep((useconds_t)(case_seconds(0.1) * 1e6));
		tu_gate_stop(&gate);
		tu_join(tids, nt);
		total = 0;
		for (t = 0; t < nt; t++) {
			ck_assert_msg(!jobs[t].rec.failed, "%s", jobs[t].rec.err);
			total += jobs[t].ops;
		}
		all += total;
		lost += (long long)total - (long long)pcpu_area_sum(&a[W0]);
		ck_assert_msg(pcpu_area_sum(&a[W0]) == (int64_t)total &&
			      pcpu_area_sum(&a[W1]) == 3 * (int64_t)total &&
			      pcpu_area_sum(&a[W2]) == -(int64_t)total,
			      "%s at %u slots (%s), round %u, %u threads, %llu "
			      "ops: sums %lld %lld %lld, want %llu %llu -%llu",
			      lazy ? "lazy" : "eager", nr, pcpu_update_method(),
			      r, nt, total, (long long)pcpu_area_sum(&a[W0]),
			      (long long)pcpu_area_sum(&a[W1]),
			      (long long)pcpu_area_sum(&a[W2]), total,
			      3 * total, total);
		ck_assert_uint_gt(total, 0);
		/* The copies for_each visits hold it all (no thread here
		 * lacks a way to write slots). */
		sc.off = W1 * 8;
		sc.acc = 0;
		ck_assert_int_eq(pcpu_area_for_each(a, sum_fn, &sc), 0);
		ck_assert_int_eq(sc.acc, 3 * (int64_t)total);
		if (lazy && nr == 1)
			ck_assert_uint_eq(visit(a, "lazy at 1 slot"), 1);
		pcpu_free(a);
	}
	tu_stress_report(all * 3, lost, "area_add %s at %u slots (%s), %u "
			 "threads hopping", lazy ? "lazy" : "eager", nr,
			 pcpu_update_method(), nt);
	tu_expect_no_area("hop exact");
}
END_TEST

/*
 * A handler of a periodic timer (CLOCK_MONOTONIC, every 200 us, signal
 * SIGUSR2, which only the worker leaves unblocked) adds to the words the
 * worker is adding to.  Rounds of fresh areas,
 * so that handler and thread also race on first touches.
 */
#define TIMER_SIG	SIGUSR2

static int64_t *sig_area;		/* the round's area, or NULL */
static unsigned long sig_hits;

static void on_timer(int sig)
{
	int saved = errno;
	int64_t *a = __atomic_load_n(&sig_area, __ATOMIC_RELAXED);

	(void)sig;
	if (a) {
		pcpu_area_add(&a[W0], 1000);
		pcpu_area_add(&a[W2], -1);
		__atomic_fetch_add(&sig_hits, 1, __ATOMIC_RELAXED);
	}
	errno = saved;
}

struct sig_job {
	struct tu_worker_rec rec;
	bool lazy;
	double seconds;
	unsigned rounds;
	unsigned long hits;
	unsigned long long ops;
};

static void *sig_worker(void *arg)
{
	struct sig_job *j = arg;
	struct tu_budget b, rb;
	sigset_t set;
	unsigned cursor = 0;

	sigemptyset(&set);
	sigaddset(&set, TIMER_SIG);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	tu_budget_start(&b, j->seconds);
	while (tu_budget_left(&b) && !j->rec.failed) {
		int64_t *a = j->lazy ? pcpu_alloc_lazy(XSIZE, 0) :
				       pcpu_alloc(XSIZE, 0);
		unsigned long h0, h;
		unsigned long long n = 0;
		unsigned i, k;
		int64_t s0, s1, s2;

		if (!a) {
			tu_rec_fail(&j->rec, "round %u: no area", j->rounds);
			break;
		}
		h0 = __atomic_load_n(&sig_hits, __ATOMIC_RELAXED);
		__atomic_store_n(&sig_area, a, __ATOMIC_SEQ_CST);
		/* At least 8 batches, and on until the handler ran a few
		 * times or 50 ms passed. */
		tu_budget_start(&rb, 0.05);
		for (k = 0; k < 8 || (tu_budget_left(&rb) &&
				      __atomic_load_n(&sig_hits,
						      __ATOMIC_RELAXED) - h0 < 4);
		     k++) {
			for (i = 0; i < 3000; i++) {
				pcpu_area_add(&a[W0], 1);
				pcpu_area_add(&a[W1], 1);
				pcpu_area_add(&a[W2], 2);
			}
			n += 3000;
			(void)tu_hop(&cursor);
		}
		/* No handler runs on this thread past this store. */
		__atomic_store_n(&sig_area, NULL, __ATOMIC_SEQ_CST);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		h = __atomic_load_n(&sig_hits, __ATOMIC_RELAXED) - h0;
		s0 = pcpu_area_sum(&a[W0]);
		s1 = pcpu_area_sum(&a[W1]);
		s2 = pcpu_area_sum(&a[W2]);
		if (s0 != (int64_t)(n + 1000 * h) || s1 != (int64_t)n ||
		    s2 != (int64_t)(2 * n - h))
			tu_rec_fail(&j->rec, "round %u: %llu adds, %lu handler "
				    "adds: sums %lld %lld %lld, want %llu %llu "
				    "%llu", j->rounds, n, h, (long long)s0,
				    (long long)s1, (long long)s2, n + 1000 * h,
				    n, 2 * n - h);
		pcpu_free(a);
		j->hits += h;
		j->ops += n;
		j->rounds++;
	}
	(void)tu_unpin();
	return NULL;
}

START_TEST(test_signal_exact)
{
	const unsigned nr = xconf[_i].slots ? xconf[_i].slots :
			    tu_default_slots;
	struct sig_job j;
	struct sigaction sa, old;
	struct itimerspec it = { { 0, 200000 }, { 0, 200000 } };
	struct sigevent sev;
	timer_t timer;
	sigset_t set, oldset;
	pthread_t tid;

	ck_assert_int_eq(pcpu_set_nr_slots(nr), 0);
	memset(&j, 0, sizeof(j));
	j.lazy = xconf[_i].lazy;
	j.seconds = case_seconds(0.25) > 0.15 ? case_seconds(0.25) : 0.15;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(TIMER_SIG, &sa, &old), 0);
	/* Only the worker takes the signal. */
	sigemptyset(&set);
	sigaddset(&set, TIMER_SIG);
	ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &set, &oldset), 0);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = TIMER_SIG;
	ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0);
	ck_assert_int_eq(timer_settime(timer, 0, &it, NULL), 0);
	ck_assert_int_eq(pthread_create(&tid, NULL, sig_worker, &j), 0);
	pthread_join(tid, NULL);
	ck_assert_int_eq(timer_delete(timer), 0);
	sa.sa_handler = SIG_IGN;
	ck_assert_int_eq(sigaction(TIMER_SIG, &sa, NULL), 0);
	ck_assert_int_eq(pthread_sigmask(SIG_SETMASK, &oldset, NULL), 0);
	ck_assert_int_eq(sigaction(TIMER_SIG, &old, NULL), 0);

	tu_stress_report(j.ops * 3 + j.hits * 2, j.rec.failed ? 1 : 0,
			 "area_add with a signal handler, %s at %u slots (%s)",
			 j.lazy ? "lazy" : "eager", nr, pcpu_update_method());
	ck_assert_msg(!j.rec.failed, "%s at %u slots (%s): %s",
		      j.lazy ? "lazy" : "eager", nr, pcpu_update_method(),
		      j.rec.err);
	ck_assert_uint_gt(j.rounds, 0);
	ck_assert_msg(j.hits > 0, "the timer's handler never ran in %u rounds",
		      j.rounds);
	tu_expect_no_area("signal exact");
}
END_TEST

/* --- memory: untouched units are never accessed ------------------------------ */

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/* Unit 0 of @area's chunk. */
static const char *unit0(const void *area)
{
	return (const char *)((uintptr_t)area & ~(uintptr_t)(UNIT - 1));
}

/* 1 if the page holding @p is resident, 0 if not, -1 on error. */
static int resident(const void *p)
{
	size_t ps = page_size();
	uintptr_t pg = (uintptr_t)p & ~(uintptr_t)(ps - 1);
	unsigned char v = 0;

	if (mincore((void *)pg, ps, &v) == 0)
		return v & 1;
	return errno == ENOMEM ? 0 : -1;
}

/* Resident pages of unit @u of the chunk at @u0; -1 on error. */
static int unit_resident(const char *u0, unsigned u)
{
	unsigned char vec[UNIT / 4096 + 1];
	size_t ps = page_size(), np = UNIT / ps, k;
	int n = 0;

	if (np > sizeof(vec))
		return -1;
	if (mincore((void *)(u0 + (size_t)u * UNIT), UNIT, vec)) {
		/* The chunk was unmapped (freed, not kept): nothing there. */
		return errno == ENOMEM ? 0 : -1;
	}
	for (k = 0; k < np; k++)
		n += vec[k] & 1;
	return n;
}

/*
 * No page of any unit of the chunks of @areas[0..na) is resident, except
 * in the units of slots marked in @touched (nr bytes).
 */
static void expect_untouched_units(void *const *areas, unsigned na,
				   unsigned nr, const unsigned char *touched,
				   const char *what)
{
	const char *bases[64];
	unsigned nb = 0, i, b, u, bad = 0, errs = 0;
	long first = -1;
	int n;

	for (i = 0; i < na; i++) {
		const char *u0 = unit0(areas[i]);

		for (b = 0; b < nb && bases[b] != u0; b++)
			;
		if (b == nb && nb < 64)
			bases[nb++] = u0;
	}
	for (b = 0; b < nb; b++)
		for (u = 0; u < nr; u++) {
			if (touched && touched[u])
				continue;
			n = unit_resident(bases[b], u);
			if (n < 0)
				errs++;
			else if (n > 0 && !bad++)
				first = u;
		}
	ck_assert_msg(errs == 0, "%s: mincore failed %u times", what, errs);
	ck_assert_msg(bad == 0, "%s: %u units of slots that never updated "
		      "the areas have resident pages (first: unit %ld of %u): "
		      "something read or wrote them", what, bad, first, nr);
}

/* The pages of the words the test updated from slot @s are resident. */
static void expect_resident_words(int64_t *const *words, unsigned nw,
				  unsigned s, const char *what)
{
	unsigned i;

	for (i = 0; i < nw; i++)
		ck_assert_msg(!words[i] ||
			      resident((char *)words[i] + (size_t)s * UNIT) == 1,
			      "%s: the page of word %u in slot %u's unit is not "
			      "resident after an add there: mincore sees "
			      "nothing?", what, i, s);
}

static const size_t mem_sizes[] = { 8, 64, 256, 512, 1024, 8192 };
#define NMEM	(2 * sizeof(mem_sizes) / sizeof(mem_sizes[0]))

/* The lazy areas of the memory tests and the words they update. */
static void *mem_areas[NMEM];
static int64_t *mem_words[2 * NMEM];

static void mem_alloc(void)
{
	unsigned i;

	for (i = 0; i < NMEM; i++) {
		size_t size = mem_sizes[i % (NMEM / 2)];

		mem_areas[i] = pcpu_alloc_lazy(size, 0);
		ck_assert_msg(mem_areas[i] != NULL, "pcpu_alloc_lazy(%zu) at "
			      "4096 slots: errno %d", size, errno);
		/* The first and the last word (one word for 8 bytes). */
		mem_words[2 * i] = mem_areas[i];
		mem_words[2 * i + 1] = size > 8 ? (int64_t *)((char *)
					mem_areas[i] + size - 8) : NULL;
	}
}

/* Add to every word from the calling thread (slot @s, pinned). */
static void mem_add(int64_t delta)
{
	unsigned i;

	for (i = 0; i < 2 * NMEM; i++)
		if (mem_words[i])
			pcpu_area_add(mem_words[i], delta);
}

/* Sum every word (reads touched copies and the map only). */
static void mem_expect_sums(int64_t want, const char *what)
{
	unsigned i;

	for (i = 0; i < 2 * NMEM; i++)
		tu_check(!mem_words[i] || pcpu_area_sum(mem_words[i]) == want, "%s: word %u: sum "
			 "%lld, want %lld", what, i,
			 (long long)pcpu_area_sum(mem_words[i]),
			 (long long)want);
}

/* for_each visits exactly @slots[0..n) (ascending) on every area. */
static void mem_expect_visits(const unsigned *slots, unsigned n,
			      const char *what)
{
	unsigned i, k;

	for (i = 0; i < NMEM; i++) {
		ck_assert_uint_eq(visit(mem_areas[i], what), n);
		for (k = 0; k < n; k++)
			ck_assert_msg(vl.slots[k] == slots[k], "%s: area %u: "
				      "visit %u is slot %u, want %u", what, i,
				      k, vl.slots[k], slots[k]);
	}
}

/*
 * Add @delta to every word from the calling thread, marking in @touched
 * the slot it was in before and after.  Pinned, the slot stays put under
 * "cpu"; under "mm_cid" the kernel may still renumber a thread that
 * inherited a higher id from threads gone by (CK_FORK=no), hence both.
 */
static void mem_add_from(int64_t delta, unsigned char *touched)
{
	unsigned before = pcpu_this_slot(), after;

	mem_add(delta);
	after = pcpu_this_slot();
	touched[before] = touched[after] = 1;
}

/* for_each visits, on every area, only slots in @touched, and some. */
static void mem_expect_visits_in(const unsigned char *touched,
				 const char *what)
{
	unsigned i, k, n;

	for (i = 0; i < NMEM; i++) {
		n = visit(mem_areas[i], what);
		ck_assert_msg(n >= 1, "%s: area %u has no touched slot", what,
			      i);
		for (k = 0; k < n; k++)
			ck_assert_msg(touched[vl.slots[k]], "%s: area %u: "
				      "for_each visits slot %u, which never "
				      "updated it", what, i, vl.slots[k]);
	}
}

START_TEST(test_untouched_pages)
{
	const unsigned nr = 4096;
	unsigned char *touched;
	unsigned s, i, u, nt = 0, eager_res = 0;
	void *e;

	fresh_chunks(nr);
	touched = calloc(nr, 1);
	ck_assert_ptr_nonnull(touched);
	ck_assert_int_eq(tu_pin(tu_cpus.cpu[0]), 0);
	mem_alloc();
	expect_untouched_units(mem_areas, NMEM, nr, NULL,
			       "lazy areas at 4096 slots, allocated");
	/* The map and the overflow words are outside the units: none of
	 * these reads a copy while nothing is touched. */
	mem_expect_sums(0, "fresh");
	mem_expect_visits(NULL, 0, "fresh");
	for (i = 0; i < NMEM; i++)
		pcpu_area_zero(mem_areas[i]);
	expect_untouched_units(mem_areas, NMEM, nr, NULL,
			       "lazy areas at 4096 slots, sum, for_each, zero "
			       "of untouched areas");

	mem_add_from(3, touched);
	for (s = 0; s < nr; s++)
		if (touched[s])
			nt++;
	s = pcpu_this_slot();
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, added to from one slot");
	if (nt == 1) {
		/* The usual case: exactly that slot, and its pages. */
		expect_resident_words(mem_words, 2 * NMEM, s, "added to");
		mem_expect_visits(&s, 1, "added to from one slot");
	}
	mem_expect_visits_in(touched, "added to from one slot");
	mem_expect_sums(3, "added to from one slot");
	mem_add_from(4, touched);
	mem_expect_sums(7, "added to again");
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, after sum and "
			       "for_each");

	/* zero: O(touched). */
	for (i = 0; i < NMEM; i++)
		pcpu_area_zero(mem_areas[i]);
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, zeroed");
	mem_expect_sums(0, "zeroed");
	mem_expect_visits(NULL, 0, "zeroed");
	for (u = 0; u < nr; u++)
		for (i = 0; touched[u] && i < 2 * NMEM; i++)
			tu_check(!mem_words[i] || *(int64_t *)((char *)
				 mem_words[i] + (size_t)u * UNIT) == 0,
				 "zeroed: word %u of slot %u nonzero", i, u);

	/* free: O(touched), and the next areas (from the caches) too. */
	mem_add_from(5, touched);
	mem_expect_visits_in(touched, "added to after the zero");
	for (i = 0; i < NMEM; i++)
		pcpu_free(mem_areas[i]);
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, freed");
	mem_alloc();
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, allocated again");
	mem_expect_sums(0, "allocated again");
	mem_expect_visits(NULL, 0, "allocated again");
	mem_add_from(1, touched);
	mem_expect_sums(1, "allocated again, added to");
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "lazy areas at 4096 slots, allocated again, "
			       "added to");
	(void)tu_unpin();
	/* Now, and only now, read every copy: clean but the touched. */
	for (i = 0; i < NMEM; i++) {
		size_t size = mem_sizes[i % (NMEM / 2)];

		for (u = 0; u < nr; u++)
			if (!touched[u])
				tu_check(!copy_nonzero(mem_areas[i], u, size),
					 "area %u allocated again: copy of slot "
					 "%u nonzero", i, u);
		pcpu_free(mem_areas[i]);
	}
	free(touched);

	/* The control: an eager area writes every unit, and mincore sees
	 * it. */
	fresh_chunks(nr);
	e = pcpu_alloc(64, 0);
	ck_assert_ptr_nonnull(e);
	for (i = 0; i < nr; i++)
		eager_res += resident((char *)e + (size_t)i * UNIT) == 1;
	pcpu_free(e);
	ck_assert_msg(eager_res == nr, "eager at 4096 slots: %u of %u units "
		      "resident: mincore cannot judge here", eager_res, nr);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/*
 * Spread (atomic method without rseq only): slots over the whole range,
 * every group edge; for_each in order, sums, and the pages of the other
 * slots through add, sum, zero and free.
 */
START_TEST(test_spread_pages)
{
	const unsigned nr = 4096;
	/* 319 | 320: the last mask group in the meta block, the first in
	 * the granule's outer block. */
	static const unsigned base[] = { 0, 1, 63, 64, 65, 127, 128, 319, 320,
					 321, 1000, 2047, 2048, 2049, 4031,
					 4032, 4094, 4095 };
	unsigned slots[64], ns = 0, order[64], i, k, j;
	unsigned char *touched;
	uint64_t seed = tu_rand_seed(4242);

	fresh_chunks(nr);
	if (!fake_cpus_work()) {
		printf("spread pages: skipped (method %s reads the rseq area, "
		       "not sched_getcpu())\n", pcpu_update_method());
		return;
	}
	for (i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		slots[ns++] = base[i];
	for (i = 0; i < 12; i++) {
		unsigned v = 129 + i * 311;

		for (k = 0; k < ns && slots[k] != v; k++)
			;
		if (k == ns)
			slots[ns++] = v;
	}
	/* Sorted copy for the visits, shuffled one for the adds. */
	memcpy(order, slots, sizeof(slots));
	for (i = 1; i < ns; i++)
		for (j = i; j > 0 && order[j - 1] > order[j]; j--) {
			k = order[j];
			order[j] = order[j - 1];
			order[j - 1] = k;
		}
	for (i = ns - 1; i > 0; i--) {
		j = tu_rand_below(&seed, i + 1);
		k = slots[i];
		slots[i] = slots[j];
		slots[j] = k;
	}
	touched = calloc(nr, 1);
	ck_assert_ptr_nonnull(touched);
	for (i = 0; i < ns; i++)
		touched[slots[i]] = 1;

	mem_alloc();
	expect_untouched_units(mem_areas, NMEM, nr, NULL, "spread, allocated");
	for (i = 0; i < ns; i++) {
		fake_cpu = (int)slots[i];
		mem_add(2);
	}
	fake_cpu = -1;
	mem_expect_sums(2 * (int64_t)ns, "spread");
	mem_expect_visits(order, ns, "spread");
	expect_untouched_units(mem_areas, NMEM, nr, touched, "spread, added");
	for (i = 0; i < ns; i++)
		expect_resident_words(mem_words, 2 * NMEM, slots[i], "spread");
	for (i = 0; i < NMEM; i++)
		pcpu_area_zero(mem_areas[i]);
	mem_expect_sums(0, "spread, zeroed");
	mem_expect_visits(NULL, 0, "spread, zeroed");
	expect_untouched_units(mem_areas, NMEM, nr, touched, "spread, zeroed");
	for (i = 0; i < ns; i++) {
		fake_cpu = (int)slots[i];
		mem_add(1);
	}
	fake_cpu = -1;
	for (i = 0; i < NMEM; i++)
		pcpu_free(mem_areas[i]);
	expect_untouched_units(mem_areas, NMEM, nr, touched, "spread, freed");
	mem_alloc();
	mem_expect_sums(0, "spread, allocated again");
	mem_expect_visits(NULL, 0, "spread, allocated again");
	expect_untouched_units(mem_areas, NMEM, nr, touched,
			       "spread, allocated again");
	for (i = 0; i < NMEM; i++) {
		size_t size = mem_sizes[i % (NMEM / 2)];

		for (k = 0; k < ns; k++)
			tu_check(!copy_nonzero(mem_areas[i], slots[k], size),
				 "spread, allocated again: area %u, slot %u "
				 "nonzero", i, slots[k]);
		pcpu_free(mem_areas[i]);
	}
	free(touched);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- slot index ------------------------------------------------------------- */

START_TEST(test_slot_index)
{
	const char *idx = pcpu_slot_index(), *env = getenv("PCPU_SLOT_INDEX");
	const char *want = getenv("PCPU_EXPECT_METHOD");

	ck_assert_ptr_nonnull(idx);
	ck_assert_msg(strcmp(idx, "mm_cid") == 0 || strcmp(idx, "cpu") == 0,
		      "pcpu_slot_index() = '%s'", idx);
	ck_assert_ptr_eq(pcpu_slot_index(), idx);
	if (env && strcmp(env, "cpu") == 0)
		ck_assert_str_eq(idx, "cpu");
	if (is_child)
		ck_assert_str_eq(idx, "cpu");
	/* Without rseq there is no mm_cid. */
	if (strcmp(pcpu_update_method(), "atomic") == 0)
		ck_assert_str_eq(idx, "cpu");
	/* tests/all-methods.sh says which method each run must get. */
	if (want && *want)
		ck_assert_str_eq(pcpu_update_method(), want);
}
END_TEST

/*
 * One thread hopping between every allowed CPU: under "mm_cid" it keeps
 * its concurrency id, so a lazy area gets one touched slot; under "cpu" one
 * per CPU (distinct slots).  Measured in a child process of one thread: a
 * thread of a process that ran others (CK_FORK=no) may hold a higher id,
 * which the kernel compacts when it likes.
 */
enum { HOP_ADDS = 500, HOP_BADSUM = 200, HOP_NOAREA, HOP_NOPIN };

static int hop_child(void)
{
	unsigned hops = 10 * tu_cpus.n, i, c, cursor = 0, n;
	int64_t *a = pcpu_alloc_lazy(16, 0);

	if (!a)
		return HOP_NOAREA;
	for (i = 0; i < hops; i++) {
		if (tu_hop(&cursor))
			return HOP_NOPIN;
		for (c = 0; c < HOP_ADDS; c++)
			pcpu_area_add(a, 1);
	}
	memset(&vl, 0, offsetof(struct vlog, slots));
	vl.area = a;
	if (pcpu_area_for_each(a, vlog_fn, &vl) || vl.bad_order || vl.bad_ptr)
		return HOP_BADSUM;
	n = vl.n;
	if (pcpu_area_sum(a) != (int64_t)HOP_ADDS * hops)
		return HOP_BADSUM;
	pcpu_free(a);
	return n < HOP_BADSUM ? (int)n : HOP_BADSUM - 1;
}

START_TEST(test_index_hop)
{
	const bool cid = strcmp(pcpu_slot_index(), "mm_cid") == 0;
	unsigned distinct = 0, c, d, n;
	pid_t pid;
	int st;

	for (c = 0; c < tu_cpus.n; c++) {
		unsigned sc = (unsigned)tu_cpus.cpu[c] % pcpu_nr_slots();

		for (d = 0; d < c; d++)
			if ((unsigned)tu_cpus.cpu[d] % pcpu_nr_slots() == sc)
				break;
		distinct += d == c;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm(60);
		_exit(hop_child());
	}
	ck_assert_int_ge(pid, 0);
	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(st), "hopping child killed by signal %d",
		      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	n = (unsigned)WEXITSTATUS(st);
	ck_assert_msg(n < HOP_BADSUM, "hopping child: %s", n == HOP_BADSUM ?
		      "sum or for_each wrong" : n == HOP_NOAREA ? "no area" :
		      n == HOP_NOPIN ? "cannot change CPU" : "exit status");
	if (cid)
		ck_assert_msg(n == 1, "mm_cid: one thread hopping over %u CPUs "
			      "touched %u slots, want 1", tu_cpus.n, n);
	else
		ck_assert_msg(n == distinct, "cpu: one thread hopping over %u "
			      "CPUs touched %u slots, want %u", tu_cpus.n, n,
			      distinct);
	if (tu_cpus.n < 2)
		printf("index hop (%s): one CPU allowed, nothing to tell "
		       "apart\n", pcpu_slot_index());
}
END_TEST

/* --- the suite again with PCPU_SLOT_INDEX=cpu ------------------------------- */

START_TEST(test_reexec_index_cpu)
{
	int st;

	/* Indexed by CPU already (no mm_cid, or PCPU_SLOT_INDEX=cpu as in
	 * all-methods.sh's cpuidx run): the suite has just run that way. */
	if (strcmp(pcpu_slot_index(), "cpu") == 0) {
		printf("re-execution with PCPU_SLOT_INDEX=cpu: not needed, "
		       "the index is \"cpu\" already\n");
		return;
	}
	st = se_run_self(CHILD_ARG, NULL, "PCPU_SLOT_INDEX=cpu");
	ck_assert_msg(st >= 0, "cannot run the suite again: %s",
		      strerror(errno));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the suite with "
		      "PCPU_SLOT_INDEX=cpu failed: %s %d (its output is above)",
		      WIFEXITED(st) ? "exit" : "signal",
		      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}
END_TEST

static Suite *area_suite(void)
{
	Suite *s = suite_create(is_child ? "area (PCPU_SLOT_INDEX=cpu)" :
				"area");
	TCase *tc;
	int nslots = (int)(sizeof(slot_counts) / sizeof(slot_counts[0]));
	int nx = (int)(sizeof(xconf) / sizeof(xconf[0]));

	/* The argument checks do not depend on the slot index: the
	 * re-executed child leaves them out. */
	if (!is_child) {
		tc = tu_tcase(s, "errors", TU_TIMEOUT_UNIT);
		tcase_add_loop_test(tc, test_lazy_einval, 0,
				    (int)(sizeof(bad_args) /
					  sizeof(bad_args[0])));
		tcase_add_test(tc, test_lazy_edges);
		tcase_add_test(tc, test_lazy_alignment);
		tcase_add_test(tc, test_for_each_einval);
		tcase_add_test(tc, test_for_each_stop);
		tcase_add_test(tc, test_null_noops);
	}

	tc = tu_tcase(s, "lazy", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_lazy_semantics, 0, nslots);
	tcase_add_loop_test(tc, test_lazy_ptr_touches, 0, nslots);
	tcase_add_test(tc, test_lazy_slot_order);
	tcase_add_loop_test(tc, test_lazy_churn, 0, 2);
	tcase_add_test(tc, test_exit_dtor_adds);

	tc = tu_tcase(s, "eager", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_eager, 0, nslots);

	tc = tu_tcase(s, "exact", TU_TIMEOUT_STRESS);
	tcase_add_loop_test(tc, test_hop_exact, 0, nx);
	tcase_add_loop_test(tc, test_signal_exact, 0, nx);

	tc = tu_tcase(s, "memory", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_untouched_pages);
	tcase_add_test(tc, test_spread_pages);

	tc = tu_tcase(s, "index", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_slot_index);
	tcase_add_test(tc, test_index_hop);
	if (!is_child) {
		tc = tu_tcase(s, "index cpu (re-executed)", 240);
		tcase_add_test(tc, test_reexec_index_cpu);
	}
	return s;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], CHILD_ARG) == 0) {
		is_child = true;
		/* Bounded even without Check's timeouts (CK_FORK=no). */
		alarm(200);
	}
	return tu_main(area_suite());
}
