/* SPDX-License-Identifier: MIT */
/*
 * test_alloc.c - pcpu/alloc.h: pcpu_alloc(), pcpu_free(), pcpu_ptr().
 */
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The byte area @idx holds at offset @off of slot @slot: hard to collide. */
static inline unsigned char pattern(size_t idx, size_t off, unsigned slot)
{
	uint64_t x = ((uint64_t)idx << 24) ^ ((uint64_t)off << 3) ^ slot;

	x *= 0x9E3779B97F4A7C15ULL;
	return (unsigned char)(x >> 56);
}

static void fill(void *area, size_t size, size_t idx, unsigned slot)
{
	unsigned char *p = pcpu_ptr(area, slot);
	size_t off;

	for (off = 0; off < size; off++)
		p[off] = pattern(idx, off, slot);
}

/* Return: the first offset that does not hold the pattern, or size. */
static size_t verify(void *area, size_t size, size_t idx, unsigned slot)
{
	const unsigned char *p = pcpu_ptr(area, slot);
	size_t off;

	for (off = 0; off < size; off++)
		if (p[off] != pattern(idx, off, slot))
			return off;
	return size;
}

/* Return: the first non-zero offset of slot @slot's copy, or size. */
static size_t first_nonzero(void *area, size_t size, unsigned slot)
{
	const unsigned char *p = pcpu_ptr(area, slot);
	size_t off;

	for (off = 0; off < size; off++)
		if (p[off])
			return off;
	return size;
}

static bool is_aligned(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/* --- argument errors -------------------------------------------------------- */

/* pcpu_alloc(@size, @align) must fail with EINVAL. */
static void expect_einval(size_t size, size_t align)
{
	void *p;

	errno = 0;
	p = pcpu_alloc(size, align);
	ck_assert_msg(p == NULL, "pcpu_alloc(%zu, %zu) succeeded", size, align);
	ck_assert_msg(errno == EINVAL, "pcpu_alloc(%zu, %zu): errno %d, not "
		      "EINVAL", size, align, errno);
}

START_TEST(test_alloc_einval)
{
	expect_einval(0, 0);
	expect_einval(0, 8);
	expect_einval(PCPU_ALLOC_MAX + 1, 0);
	expect_einval(PCPU_ALLOC_MAX * 2, 8);
	expect_einval(SIZE_MAX, 0);
	expect_einval(SIZE_MAX, 8);
	expect_einval(SIZE_MAX / 2 + 1, 0);
	expect_einval(8, 3);
	expect_einval(8, 6);
	expect_einval(8, 12);
	expect_einval(8, PCPU_ALLOC_MAX - 1);
	expect_einval(8, PCPU_ALLOC_MAX * 2);
	expect_einval(8, SIZE_MAX);
	expect_einval(8, (SIZE_MAX >> 1) + 1);	/* a power of two, too big */
	/* Nothing was left allocated by the failures. */
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots == 3 ? 5 : 3), 0);
}
END_TEST

START_TEST(test_alloc_limits)
{
	size_t size = PCPU_ALLOC_MAX;
	unsigned n = pcpu_nr_slots();
	void *a, *b, *c;

	a = pcpu_alloc(size, 0);
	ck_assert_ptr_nonnull(a);
	b = pcpu_alloc(1, PCPU_ALLOC_MAX);
	ck_assert_ptr_nonnull(b);
	ck_assert(is_aligned(b, PCPU_ALLOC_MAX));
	c = pcpu_alloc(PCPU_ALLOC_MAX, PCPU_ALLOC_MAX);
	ck_assert_ptr_nonnull(c);
	ck_assert(is_aligned(c, PCPU_ALLOC_MAX));
	ck_assert_uint_eq(first_nonzero(a, size, 0), size);
	ck_assert_uint_eq(first_nonzero(a, size, n - 1), size);
	ck_assert_uint_eq(first_nonzero(c, size, n - 1), size);
	fill(a, size, 1, 0);
	fill(a, size, 1, n - 1);
	fill(c, size, 3, 0);
	fill(c, size, 3, n - 1);
	*(unsigned char *)pcpu_ptr(b, n - 1) = 0xee;
	ck_assert_uint_eq(verify(a, size, 1, 0), size);
	ck_assert_uint_eq(verify(a, size, 1, n - 1), size);
	ck_assert_uint_eq(verify(c, size, 3, 0), size);
	ck_assert_uint_eq(verify(c, size, 3, n - 1), size);
	pcpu_free(c);
	pcpu_free(b);
	pcpu_free(a);
}
END_TEST

/* --- alignment ---------------------------------------------------------------- */

START_TEST(test_alloc_align)
{
	void *pad[32], *p[32];
	unsigned n = pcpu_nr_slots(), s, k = 0;
	size_t align;

	for (align = 1; align <= PCPU_ALLOC_MAX; align <<= 1, k++) {
		/* A 1-byte area first, so the next one is not at a chunk start. */
		pad[k] = pcpu_alloc(1, 1);
		ck_assert_ptr_nonnull(pad[k]);
		p[k] = pcpu_alloc(align < 24 ? 24 : align / 2 + 1, align);
		ck_assert_msg(p[k] != NULL, "align %zu: errno %d", align, errno);
		for (s = 0; s < n; s++)
			ck_assert_msg(is_aligned(pcpu_ptr(p[k], s), align),
				      "align %zu: slot %u copy at %p", align, s,
				      pcpu_ptr(p[k], s));
	}
	while (k--) {
		pcpu_free(p[k]);
		pcpu_free(pad[k]);
	}
}
END_TEST

START_TEST(test_alloc_align_default)
{
	void *pad[16], *p[16];
	unsigned i;

	for (i = 0; i < 16; i++) {
		pad[i] = pcpu_alloc(1 + i % 7, 1);
		ck_assert_ptr_nonnull(pad[i]);
		p[i] = pcpu_alloc(8, 0);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_msg(is_aligned(p[i], 8), "align 0 gave %p", p[i]);
		ck_assert(is_aligned(pcpu_ptr(p[i], pcpu_nr_slots() - 1), 8));
	}
	for (i = 0; i < 16; i++) {
		pcpu_free(pad[i]);
		pcpu_free(p[i]);
	}
}
END_TEST

/* --- zeroing -------------------------------------------------------------------- */

/*
 * Dirty every byte of every slot of a few areas, free them, allocate the
 * same sizes again (the allocator is likely to hand the same space back)
 * and check that every slot's copy is zero.
 */
static void check_zeroed(const size_t *sizes, unsigned nsizes, unsigned rounds)
{
	void *a[16];
	unsigned n = pcpu_nr_slots(), r, i, s;
	size_t off;

	ck_assert_uint_le(nsizes, 16);
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < nsizes; i++) {
			a[i] = pcpu_alloc(sizes[i], 0);
			ck_assert_msg(a[i] != NULL, "size %zu: errno %d",
				      sizes[i], errno);
			for (s = 0; s < n; s++) {
				off = first_nonzero(a[i], sizes[i], s);
				tu_check(off == sizes[i], "round %u, size %zu,"
					 " %u slots: slot %u byte %zu not zero",
					 r, sizes[i], n, s, off);
				memset(pcpu_ptr(a[i], s), 0xa5, sizes[i]);
			}
		}
		for (i = 0; i < nsizes; i++)
			pcpu_free(a[r & 1 ? i : nsizes - 1 - i]);
	}
}

START_TEST(test_alloc_zeroed)
{
	static const size_t sizes[] = {
		1, 8, 24, 64, 100, 4096, 16384, PCPU_ALLOC_MAX
	};

	check_zeroed(sizes, sizeof(sizes) / sizeof(sizes[0]), 4);
}
END_TEST

START_TEST(test_alloc_zeroed_4096_slots)
{
	static const size_t sizes[] = { 8, 200 };

	ck_assert_int_eq(pcpu_set_nr_slots(4096), 0);
	check_zeroed(sizes, 2, 3);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}
END_TEST

/* --- pcpu_ptr ------------------------------------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return (x > y) - (x < y);
}

static void check_ptr(size_t size)
{
	unsigned n = pcpu_nr_slots(), s, t;
	char *area, **copy;

	area = pcpu_alloc(size, 0);
	ck_assert_ptr_nonnull(area);
	ck_assert_ptr_eq(pcpu_ptr(area, 0), area);
	copy = calloc(n, sizeof(*copy));
	ck_assert_ptr_nonnull(copy);
	for (s = 0; s < n; s++) {
		copy[s] = pcpu_ptr(area, s);
		tu_check(copy[s] != NULL, "pcpu_ptr(area, %u) of %u: NULL",
			 s, n);
		tu_check(pcpu_ptr(area, s) == copy[s], "pcpu_ptr(area, %u) "
			 "not stable", s);
	}
	/* Distinct, non-overlapping copies. */
	qsort(copy, n, sizeof(*copy), cmp_ptr);
	for (s = 1; s < n; s++)
		tu_check((size_t)(copy[s] - copy[s - 1]) >= size,
			      "%u slots: copies %p and %p overlap (size %zu)",
			      n, copy[s - 1], copy[s], size);
	/* Writing one slot leaves the others alone. */
	for (s = 0; s < n; s++)
		fill(area, size, 0, s);
	for (s = 0; s < n; s += (n > 64 ? n / 61 + 1 : 1)) {
		memset(pcpu_ptr(area, s), 0x3c, size);
		for (t = 0; t < n; t++)
			if (t != s)
				tu_check(verify(area, size, 0, t) == size,
					 "writing slot %u changed slot %u",
					 s, t);
		fill(area, size, 0, s);
	}
	/* Out of range: NULL, EINVAL. */
	errno = 0;
	ck_assert_ptr_null(pcpu_ptr(area, n));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(pcpu_ptr(area, n + 1));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_ptr_null(pcpu_ptr(area, UINT_MAX));
	ck_assert_int_eq(errno, EINVAL);
	free(copy);
	pcpu_free(area);
}

START_TEST(test_ptr)
{
	check_ptr(8);
	check_ptr(1000);
}
END_TEST

START_TEST(test_ptr_slot_counts)
{
	unsigned vals[] = { 1, 3, 4096 }, i;

	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(pcpu_set_nr_slots(vals[i]), 0);
		check_ptr(i == 2 ? 16 : 512);
		ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	}
}
END_TEST

START_TEST(test_free_null)
{
	void *a;

	errno = 0;
	pcpu_free(NULL);
	pcpu_free(NULL);
	/* Nothing is live, and the allocator still works. */
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots == 3 ? 5 : 3), 0);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	a = pcpu_alloc(8, 0);
	ck_assert_ptr_nonnull(a);
	pcpu_free(a);
}
END_TEST

/* --- many areas, several chunks ------------------------------------------------ */

struct area {
	void *p;
	size_t size, align;
	size_t key;		/* what fill()/verify() write: unique per area */
};

#define N_SMALL		20000	/* 8-byte areas: 160 KiB, several 64 KiB units */
#define N_BIG		16	/* 16 KiB areas */
#define N_MIXED		3000	/* random sizes and alignments */
#define N_AREAS		(N_SMALL + N_BIG + N_MIXED)

static size_t next_key;

static void shuffle(struct area *v, size_t n, uint64_t *rng)
{
	struct area t;
	size_t i, j;

	for (i = n - 1; i > 0; i--) {
		j = tu_rand(rng) % (i + 1);
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

/* Allocate every area of @v, check it is aligned and zero, fill it. */
static void alloc_all(struct area *v, size_t n)
{
	unsigned last = pcpu_nr_slots() - 1;
	size_t i, off;

	for (i = 0; i < n; i++) {
		v[i].p = pcpu_alloc(v[i].size, v[i].align);
		tu_check(v[i].p != NULL, "area %zu (size %zu, align %zu): "
			 "errno %d", i, v[i].size, v[i].align, errno);
		tu_check(is_aligned(v[i].p, v[i].align ? v[i].align : 8),
			 "area %p not aligned to %zu", v[i].p, v[i].align);
		off = first_nonzero(v[i].p, v[i].size, 0);
		tu_check(off == v[i].size, "area %p (size %zu) slot 0 byte "
			 "%zu not zero", v[i].p, v[i].size, off);
		off = first_nonzero(v[i].p, v[i].size, last);
		tu_check(off == v[i].size, "area %p (size %zu) slot %u byte "
			 "%zu not zero", v[i].p, v[i].size, last, off);
		v[i].key = next_key++;
		fill(v[i].p, v[i].size, v[i].key, 0);
		fill(v[i].p, v[i].size, v[i].key, last);
	}
}

/* Every area still holds its own pattern: no two areas overlap. */
static void verify_all(struct area *v, size_t n)
{
	unsigned last = pcpu_nr_slots() - 1;
	size_t i, off;

	for (i = 0; i < n; i++) {
		off = verify(v[i].p, v[i].size, v[i].key, 0);
		tu_check(off == v[i].size, "area %p (size %zu) slot 0 byte "
			 "%zu overwritten: areas overlap", v[i].p, v[i].size,
			 off);
		off = verify(v[i].p, v[i].size, v[i].key, last);
		tu_check(off == v[i].size, "area %p (size %zu) slot %u byte "
			 "%zu overwritten: areas overlap", v[i].p, v[i].size,
			 last, off);
	}
}

static void free_all(struct area *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		pcpu_free(v[i].p);
		v[i].p = NULL;
	}
}

static void make_areas(struct area *v, uint64_t *rng)
{
	size_t i;

	for (i = 0; i < N_AREAS; i++) {
		if (i < N_SMALL) {
			v[i].size = 8;
			v[i].align = 0;
		} else if (i < N_SMALL + N_BIG) {
			v[i].size = 16384;
			v[i].align = (i & 1) ? 4096 : 0;
		} else {
			v[i].size = 1 + tu_rand_below(rng, 300);
			v[i].align = (size_t)1 << tu_rand_below(rng, 8);
		}
	}
	shuffle(v, N_AREAS, rng);
}

START_TEST(test_alloc_many)
{
	uint64_t rng = tu_rand_seed(12345);
	unsigned other = tu_default_slots == 3 ? 5 : 3;
	struct area *v;

	v = calloc(N_AREAS, sizeof(*v));
	ck_assert_ptr_nonnull(v);
	make_areas(v, &rng);
	alloc_all(v, N_AREAS);
	verify_all(v, N_AREAS);

	/* Free half in random order, the rest must be untouched; refill. */
	shuffle(v, N_AREAS, &rng);
	free_all(v + N_AREAS / 2, N_AREAS - N_AREAS / 2);
	verify_all(v, N_AREAS / 2);
	alloc_all(v + N_AREAS / 2, N_AREAS - N_AREAS / 2);
	verify_all(v, N_AREAS);

	/* Free everything in random order: nothing stays live. */
	shuffle(v, N_AREAS, &rng);
	free_all(v, N_AREAS);
	ck_assert_int_eq(pcpu_set_nr_slots(other), 0);

	/* New chunks with another geometry, then back to the default. */
	alloc_all(v, N_AREAS / 4);
	verify_all(v, N_AREAS / 4);
	free_all(v, N_AREAS / 4);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	alloc_all(v, N_AREAS);
	verify_all(v, N_AREAS);
	free_all(v, N_AREAS);
	free(v);
	ck_assert_int_eq(pcpu_set_nr_slots(other), 0);
}
END_TEST

/* --- bad frees abort ------------------------------------------------------------- */

enum bad_free {
	BAD_MALLOC,		/* a pointer from malloc() */
	BAD_STACK,		/* a stack address */
	BAD_INTERIOR,		/* inside a live area */
	BAD_SLOT1,		/* slot 1's copy of a live area */
	BAD_DOUBLE,		/* an area freed already */
};

static const char *bad_free_name[] = {
	"malloc pointer", "stack pointer", "interior pointer",
	"slot 1 copy", "double free",
};

static void do_bad_free(enum bad_free kind)
{
	char stack[32];
	char *a, *b;

	a = pcpu_alloc(64, 0);
	b = pcpu_alloc(64, 0);
	if (!a || !b)
		_exit(2);
	switch (kind) {
	case BAD_MALLOC:
		pcpu_free(malloc(64));
		break;
	case BAD_STACK:
		pcpu_free(stack);
		break;
	case BAD_INTERIOR:
		pcpu_free(a + 8);
		break;
	case BAD_SLOT1:
		pcpu_free(pcpu_ptr(a, 1));
		break;
	case BAD_DOUBLE:
		pcpu_free(a);
		pcpu_free(a);
		break;
	}
	_exit(0);	/* not reached if the library aborts */
}

/*
 * Run the bad free in a child; return its wait status and copy what it
 * wrote to stderr into @msg.
 */
static int run_bad_free(enum bad_free kind, char *msg, size_t msgsz)
{
	struct rlimit nocore = { 0, 0 };
	int fds[2], st;
	ssize_t r;
	size_t len = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		setrlimit(RLIMIT_CORE, &nocore);
		signal(SIGABRT, SIG_DFL);
		dup2(fds[1], STDERR_FILENO);
		do_bad_free(kind);
	}
	close(fds[1]);
	while (len + 1 < msgsz) {
		r = read(fds[0], msg + len, msgsz - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	msg[len] = '\0';
	/* Drain the rest, if any, so the child cannot block on the pipe. */
	while ((r = read(fds[0], &st, sizeof(st))) > 0 ||
	       (r < 0 && errno == EINTR))
		;
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	return st;
}

START_TEST(test_bad_free_aborts)
{
	enum bad_free kind = (enum bad_free)_i;
	char msg[512];
	int st;

	if (kind == BAD_SLOT1 && pcpu_nr_slots() < 2)
		ck_assert_int_eq(pcpu_set_nr_slots(2), 0);
	st = run_bad_free(kind, msg, sizeof(msg));
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		      "%s: child %s %d, want SIGABRT", bad_free_name[kind],
		      WIFSIGNALED(st) ? "killed by signal" : "exited with",
		      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	ck_assert_msg(msg[0] != '\0', "%s: nothing reported on stderr",
		      bad_free_name[kind]);
}
END_TEST

/*
 * Out of address space: NULL with ENOMEM, nothing left behind, and the
 * allocator works again once memory is back.  At PCPU_MAX_SLOTS slots one
 * area spans at least 1 GiB (pcpu__slot_ptr()).
 */
START_TEST(test_alloc_enomem)
{
	int limit, restore = -1, err = 0, busy = -1;
	struct rlimit old;
	void *p = NULL;

	if (!TU_CAN_LIMIT_AS) {
		printf("test_alloc_enomem: skipped under a sanitizer\n");
		return;
	}
	if (!tu_as_limit_binds()) {
		printf("test_alloc_enomem: skipped: RLIMIT_AS does not bind here "
		       "(qemu-user)\n");
		return;
	}
	ck_assert_int_eq(pcpu_set_nr_slots(PCPU_MAX_SLOTS), 0);
	limit = tu_limit_as(512ull << 20, &old, false);
	if (limit == 0) {
		errno = 0;
		p = pcpu_alloc(8, 0);
		err = errno;
		busy = pcpu_set_nr_slots(PCPU_MAX_SLOTS);
		restore = tu_restore_as(&old);
	}
	ck_assert_int_eq(limit, 0);
	ck_assert_int_eq(restore, 0);
	if (p)
		pcpu_free(p);
	ck_assert_msg(p == NULL && err == ENOMEM, "pcpu_alloc: %p, errno %d",
		      p, err);
	ck_assert_int_eq(busy, 0);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
	p = pcpu_alloc(8, 0);
	ck_assert_ptr_nonnull(p);
	pcpu_free(p);
}
END_TEST

/* --- concurrent alloc/free ------------------------------------------------------- */

#define WINDOW	48

struct conc_arg {
	struct tu_worker_rec rec;
	struct tu_gate *gate;
	unsigned long allocs, frees;
} __attribute__((aligned(TU_CACHELINE)));

/*
 * Keep up to WINDOW live areas, each filled (slot 0 and the last slot) with
 * a pattern unique to this thread and sequence number; check the pattern
 * before freeing.  Any overlap with another thread's or this thread's
 * areas shows up as a broken pattern.
 */
static void *conc_worker(void *p)
{
	struct conc_arg *a = p;
	struct area win[WINDOW];
	size_t seq[WINDOW], next = 0, off;
	uint64_t rng = tu_rand_seed(a->rec.id + 77);
	unsigned last = pcpu_nr_slots() - 1, i;
	size_t tag = (size_t)(a->rec.id + 1) << 28;

	memset(win, 0, sizeof(win));
	tu_gate_wait(a->gate);
	while (!tu_gate_stopped(a->gate) && !a->rec.failed) {
		i = tu_rand_below(&rng, WINDOW);
		if (win[i].p) {
			if (verify(win[i].p, win[i].size, seq[i], 0) != win[i].size ||
			    verify(win[i].p, win[i].size, seq[i], last) != win[i].size)
				tu_rec_fail(&a->rec, "area %p size %zu "
					    "overwritten", win[i].p, win[i].size);
			pcpu_free(win[i].p);
			win[i].p = NULL;
			a->frees++;
			continue;
		}
		win[i].size = 1 + tu_rand_below(&rng, tu_rand_below(&rng, 8) ?
						256 : 6000);
		win[i].align = tu_rand_below(&rng, 4) ? 0 :
			(size_t)1 << tu_rand_below(&rng, 10);
		win[i].p = pcpu_alloc(win[i].size, win[i].align);
		if (!win[i].p) {
			tu_rec_fail(&a->rec, "pcpu_alloc(%zu, %zu): errno %d",
				    win[i].size, win[i].align, errno);
			break;
		}
		a->allocs++;
		if (!is_aligned(win[i].p, win[i].align ? win[i].align : 8))
			tu_rec_fail(&a->rec, "%p not aligned to %zu",
				    win[i].p, win[i].align);
		off = first_nonzero(win[i].p, win[i].size, 0);
		if (off == win[i].size)
			off = first_nonzero(win[i].p, win[i].size, last);
		if (off != win[i].size)
			tu_rec_fail(&a->rec, "fresh area %p not zero at %zu",
				    win[i].p, off);
		seq[i] = tag | next++;
		fill(win[i].p, win[i].size, seq[i], 0);
		fill(win[i].p, win[i].size, seq[i], last);
	}
	for (i = 0; i < WINDOW; i++) {
		if (!win[i].p)
			continue;
		if (verify(win[i].p, win[i].size, seq[i], 0) != win[i].size ||
		    verify(win[i].p, win[i].size, seq[i], last) != win[i].size)
			tu_rec_fail(&a->rec, "area %p size %zu overwritten",
				    win[i].p, win[i].size);
		pcpu_free(win[i].p);
		a->frees++;
	}
	return NULL;
}

static void run_concurrent(unsigned nthreads, double seconds)
{
	struct conc_arg args[4];
	struct tu_gate gate;
	pthread_t t[4];
	unsigned i;

	memset(args, 0, sizeof(args));
	tu_gate_init(&gate);
	for (i = 0; i < nthreads; i++) {
		args[i].rec.id = i;
		args[i].gate = &gate;
	}
	ck_assert_int_eq(tu_spawn(t, nthreads, conc_worker, args,
				  sizeof(args[0])), 0);
	tu_gate_open(&gate);
	usleep((useconds_t)(seconds * 1e6));
	tu_gate_stop(&gate);
	tu_join(t, nthreads);
	for (i = 0; i < nthreads; i++) {
		ck_assert_msg(!args[i].rec.failed, "thread %u: %s", i,
			      args[i].rec.err);
		ck_assert_uint_gt(args[i].allocs, 0);
		ck_assert_uint_eq(args[i].allocs, args[i].frees);
	}
	/* Every area was freed: nothing is live. */
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots == 3 ? 5 : 3), 0);
	ck_assert_int_eq(pcpu_set_nr_slots(tu_default_slots), 0);
}

START_TEST(test_alloc_concurrent)
{
	run_concurrent(3, tu_stress_seconds());
}
END_TEST

START_TEST(test_alloc_concurrent_one_slot)
{
	ck_assert_int_eq(pcpu_set_nr_slots(1), 0);
	run_concurrent(2, tu_stress_seconds() / 2);
}
END_TEST

static Suite *alloc_suite(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc;

	tc = tu_tcase(s, "args", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_alloc_einval);
	tcase_add_test(tc, test_alloc_limits);
	tcase_add_test(tc, test_alloc_align);
	tcase_add_test(tc, test_alloc_align_default);
	tcase_add_test(tc, test_free_null);
	tcase_add_test(tc, test_alloc_enomem);

	tc = tu_tcase(s, "zeroed", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_alloc_zeroed);
	tcase_add_test(tc, test_alloc_zeroed_4096_slots);

	tc = tu_tcase(s, "ptr", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_ptr);
	tcase_add_test(tc, test_ptr_slot_counts);

	tc = tu_tcase(s, "many", TU_TIMEOUT_UNIT);
	tcase_add_test(tc, test_alloc_many);

	tc = tu_tcase(s, "bad_free", TU_TIMEOUT_UNIT);
	tcase_add_loop_test(tc, test_bad_free_aborts, BAD_MALLOC, BAD_DOUBLE + 1);

	tc = tu_tcase(s, "concurrent", TU_TIMEOUT_STRESS);
	tcase_add_test(tc, test_alloc_concurrent);
	tcase_add_test(tc, test_alloc_concurrent_one_slot);
	return s;
}

int main(void)
{
	return tu_main(alloc_suite());
}
