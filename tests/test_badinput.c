/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c - every public function against every invalid argument
 * the contract names, from one table.
 *
 * Each row is one call with its expected result (a negative errno, or a
 * NULL/0 result with errno set, or nothing for the documented no-ops).
 * Around each row the test takes a snapshot of everything a bad call
 * could change: the slot count, the resources the library holds (mappings
 * and malloc blocks, from the fault-injection build's pcpu__fault_live()),
 * a live counter's bytes and value, a cache's statistics, an object taken
 * from it, and a counter-sized buffer that init calls were handed.  The
 * row passes only if the result is right and the snapshot is unchanged.
 */
#include "testutil.h"

#include <limits.h>

long pcpu__fault_live(void);	/* lib/fault.h, test library only */

#define POISON	0x5A

static struct {
	void *area;			/* a live area: set_nr_slots is EBUSY */
	struct pcpu_counter c;		/* LAZY, value 42 */
	struct pcpu_counter target;	/* POISON bytes: must stay so */
	struct pcpu_cache *cache;
	uint64_t *obj;			/* allocated from cache */
	void *objs[4];
} fx;

struct snap {
	unsigned slots;
	long live;
	struct pcpu_counter c;
	int64_t c_sum;
	struct pcpu_counter target;
	struct pcpu_cache_stats st;
	uint64_t obj;
};

static void take(struct snap *s)
{
	memset(s, 0, sizeof(*s));
	s->slots = pcpu_nr_slots();
	s->live = pcpu__fault_live();
	s->c = fx.c;
	s->c_sum = pcpu_counter_sum(&fx.c);
	s->target = fx.target;
	ck_assert_int_eq(pcpu_cache_stats(fx.cache, &s->st), 0);
	s->obj = *fx.obj;
}

/* The result of a row's call. */
struct res {
	long ret;		/* int result, or 1/0 for a pointer or not */
	int err;		/* errno after the call */
};

/* A function, not a compound literal: the call in @v is done before the
 * body reads errno (an initializer list's order is unspecified). */
static struct res res_of(long v)
{
	struct res r = { v, errno };

	return r;
}

#define R(v)	res_of((long)(v))
#define P(p)	res_of((p) != NULL)
#define NONE	res_of(0)

/* --- the calls ------------------------------------------------------------ */

static struct res set_slots_0(void) { return R(pcpu_set_nr_slots(0)); }
static struct res set_slots_max1(void)
{ return R(pcpu_set_nr_slots(PCPU_MAX_SLOTS + 1)); }
static struct res set_slots_uintmax(void)
{ return R(pcpu_set_nr_slots(UINT_MAX)); }
static struct res set_slots_live(void)
{ return R(pcpu_set_nr_slots(tu_other_slots())); }

static struct res alloc_size0(void) { return P(pcpu_alloc(0, 8)); }
static struct res alloc_too_big(void)
{ return P(pcpu_alloc(PCPU_ALLOC_MAX + 1, 8)); }
static struct res alloc_size_max(void) { return P(pcpu_alloc(SIZE_MAX, 8)); }
static struct res alloc_align3(void) { return P(pcpu_alloc(8, 3)); }
static struct res alloc_align_big(void)
{ return P(pcpu_alloc(8, 2 * PCPU_ALLOC_MAX)); }
static struct res alloc_align_top(void)
{ return P(pcpu_alloc(8, (SIZE_MAX >> 1) + 1)); }
static struct res ptr_null(void) { return P(pcpu_ptr(NULL, 0)); }
static struct res ptr_slot_n(void)
{ return P(pcpu_ptr(fx.area, pcpu_nr_slots())); }
static struct res ptr_slot_max(void) { return P(pcpu_ptr(fx.area, UINT_MAX)); }
static struct res free_null(void) { pcpu_free(NULL); return NONE; }
static struct res lazy_size0(void) { return P(pcpu_alloc_lazy(0, 8)); }
static struct res lazy_too_big(void)
{ return P(pcpu_alloc_lazy(PCPU_ALLOC_MAX + 1, 8)); }
static struct res lazy_align3(void) { return P(pcpu_alloc_lazy(8, 3)); }
static struct res lazy_align_big(void)
{ return P(pcpu_alloc_lazy(8, 2 * PCPU_ALLOC_MAX)); }
/* Must never run: it writes the buffer the snapshot checks. */
static int poke_target(void *copy, unsigned slot, void *arg)
{
	(void)copy;
	(void)slot;
	(void)arg;
	memset(&fx.target, 0, sizeof(fx.target));
	return 1;
}
static struct res each_null_area(void)
{ return R(pcpu_area_for_each(NULL, poke_target, NULL)); }
static struct res each_null_fn(void)
{ return R(pcpu_area_for_each(fx.area, NULL, NULL)); }
static struct res area_zero_null(void) { pcpu_area_zero(NULL); return NONE; }

static struct res init_null(void)
{ return R(pcpu_counter_init(NULL, 0, PCPU_COUNTER_DUAL)); }
static struct res init_flags3(void)
{ return R(pcpu_counter_init(&fx.target, 0, 3)); }
static struct res init_flags_all(void)
{ return R(pcpu_counter_init(&fx.target, 0, ~0u)); }
static struct res init_batch7(void)
{ return R(pcpu_counter_init(&fx.target, 0, PCPU_COUNTER_LAZY |
			     PCPU_COUNTER_BATCH_LOG2(7))); }
static struct res init_batch41(void)
{ return R(pcpu_counter_init(&fx.target, 0, PCPU_COUNTER_DUAL |
			     PCPU_COUNTER_BATCH_LOG2(41))); }
static struct res init_flag_unknown(void)
{ return R(pcpu_counter_init(&fx.target, 0, PCPU_COUNTER_EAGER |
			     (1u << 16))); }
static struct res init_many_null(void)
{ return R(pcpu_counter_init_many(NULL, 0, PCPU_COUNTER_LAZY, 4)); }
static struct res init_many_n0(void)
{ return R(pcpu_counter_init_many(&fx.target, 0, PCPU_COUNTER_LAZY, 0)); }
static struct res init_many_flags(void)
{ return R(pcpu_counter_init_many(&fx.target, 0, 7, 1)); }
static struct res destroy_null(void)
{ pcpu_counter_destroy(NULL); return NONE; }
static struct res destroy_many_null(void)
{ pcpu_counter_destroy_many(NULL, 3); return NONE; }
static struct res share_null(void) { return R(pcpu_counter_share(NULL)); }

static struct res create_size0(void)
{ return P(pcpu_cache_create("b", 0, 0, NULL, NULL, NULL, 0)); }
static struct res create_too_big(void)
{ return P(pcpu_cache_create("b", PCPU_ALLOC_MAX + 1, 0, NULL, NULL, NULL, 0)); }
static struct res create_size_max(void)
{ return P(pcpu_cache_create("b", SIZE_MAX, 0, NULL, NULL, NULL, 0)); }
static struct res create_align3(void)
{ return P(pcpu_cache_create("b", 64, 3, NULL, NULL, NULL, 0)); }
static struct res create_align_big(void)
{ return P(pcpu_cache_create("b", 64, 8192, NULL, NULL, NULL, 0)); }
static struct res create_align_top(void)
{ return P(pcpu_cache_create("b", 64, (SIZE_MAX >> 1) + 1, NULL, NULL,
			     NULL, 0)); }
static struct res create_flags(void)
{ return P(pcpu_cache_create("b", 64, 0, NULL, NULL, NULL, 0x80)); }
static struct res create_flags_all(void)
{ return P(pcpu_cache_create("b", 64, 0, NULL, NULL, NULL, ~0u)); }

static struct res calloc_null(void) { return P(pcpu_cache_alloc(NULL, 0)); }
static struct res calloc_flags(void)
{ return P(pcpu_cache_alloc(fx.cache, 0x100)); }
static struct res calloc_flags_all(void)
{ return P(pcpu_cache_alloc(fx.cache, ~0u)); }
static struct res bulk_null(void)
{ return R(pcpu_cache_alloc_bulk(NULL, 0, 4, fx.objs)); }
static struct res bulk_objs_null(void)
{ return R(pcpu_cache_alloc_bulk(fx.cache, 0, 4, NULL)); }
static struct res bulk_flags(void)
{ return R(pcpu_cache_alloc_bulk(fx.cache, 0x8, 4, fx.objs)); }
static struct res cfree_null_cache(void)
{ pcpu_cache_free(NULL, fx.obj); return NONE; }
static struct res cfree_null_obj(void)
{ pcpu_cache_free(fx.cache, NULL); return NONE; }
static struct res free_bulk_null(void)
{ pcpu_cache_free_bulk(NULL, 1, (void **)&fx.obj); return NONE; }
static struct res free_bulk_objs_null(void)
{ pcpu_cache_free_bulk(fx.cache, 2, NULL); return NONE; }
static struct res free_rcu_null_cache(void)
{ pcpu_cache_free_rcu(NULL, fx.obj); return NONE; }
static struct res free_rcu_null_obj(void)
{ pcpu_cache_free_rcu(fx.cache, NULL); return NONE; }
static struct res shrink_null(void) { return R(pcpu_cache_shrink(NULL)); }
static struct res deactivate_null(void)
{ return R(pcpu_cache_deactivate(NULL)); }
static struct res cdestroy_null(void) { return R(pcpu_cache_destroy(NULL)); }
static struct res cdestroy_busy(void)
{ return R(pcpu_cache_destroy(fx.cache)); }
static struct res stats_null(void)
{
	struct pcpu_cache_stats st;

	return R(pcpu_cache_stats(NULL, &st));
}
static struct res stats_st_null(void)
{ return R(pcpu_cache_stats(fx.cache, NULL)); }

/* --- the table ------------------------------------------------------------ */

enum want { W_RET, W_NULL, W_NONE };

static const struct row {
	const char *call;
	struct res (*fn)(void);
	enum want want;
	long ret;		/* W_RET: the result */
	int err;		/* W_RET with ret 0 (pointer, count) or W_NULL:
				   errno; 0 for no check */
} rows[] = {
	{ "pcpu_set_nr_slots(0)", set_slots_0, W_RET, -EINVAL, 0 },
	{ "pcpu_set_nr_slots(PCPU_MAX_SLOTS + 1)", set_slots_max1, W_RET,
	  -EINVAL, 0 },
	{ "pcpu_set_nr_slots(UINT_MAX)", set_slots_uintmax, W_RET, -EINVAL, 0 },
	{ "pcpu_set_nr_slots(n) with a live area", set_slots_live, W_RET,
	  -EBUSY, 0 },
	{ "pcpu_alloc(0, 8)", alloc_size0, W_NULL, 0, EINVAL },
	{ "pcpu_alloc(PCPU_ALLOC_MAX + 1, 8)", alloc_too_big, W_NULL, 0,
	  EINVAL },
	{ "pcpu_alloc(SIZE_MAX, 8)", alloc_size_max, W_NULL, 0, EINVAL },
	{ "pcpu_alloc(8, 3)", alloc_align3, W_NULL, 0, EINVAL },
	{ "pcpu_alloc(8, 2 * PCPU_ALLOC_MAX)", alloc_align_big, W_NULL, 0,
	  EINVAL },
	{ "pcpu_alloc(8, 2^63)", alloc_align_top, W_NULL, 0, EINVAL },
	{ "pcpu_ptr(NULL, 0)", ptr_null, W_NULL, 0, EINVAL },
	{ "pcpu_ptr(area, pcpu_nr_slots())", ptr_slot_n, W_NULL, 0, EINVAL },
	{ "pcpu_ptr(area, UINT_MAX)", ptr_slot_max, W_NULL, 0, EINVAL },
	{ "pcpu_free(NULL)", free_null, W_NONE, 0, 0 },
	{ "pcpu_alloc_lazy(0, 8)", lazy_size0, W_NULL, 0, EINVAL },
	{ "pcpu_alloc_lazy(PCPU_ALLOC_MAX + 1, 8)", lazy_too_big, W_NULL, 0,
	  EINVAL },
	{ "pcpu_alloc_lazy(8, 3)", lazy_align3, W_NULL, 0, EINVAL },
	{ "pcpu_alloc_lazy(8, 2 * PCPU_ALLOC_MAX)", lazy_align_big, W_NULL, 0,
	  EINVAL },
	{ "pcpu_area_for_each(NULL, fn, arg)", each_null_area, W_RET, -EINVAL,
	  0 },
	{ "pcpu_area_for_each(area, NULL, arg)", each_null_fn, W_RET, -EINVAL,
	  0 },
	{ "pcpu_area_zero(NULL)", area_zero_null, W_NONE, 0, 0 },
	{ "pcpu_counter_init(NULL, ...)", init_null, W_RET, -EINVAL, 0 },
	{ "pcpu_counter_init(c, 0, 3)", init_flags3, W_RET, -EINVAL, 0 },
	{ "pcpu_counter_init(c, 0, ~0u)", init_flags_all, W_RET, -EINVAL, 0 },
	{ "pcpu_counter_init(c, 0, LAZY | PCPU_COUNTER_BATCH_LOG2(7))",
	  init_batch7, W_RET, -EINVAL, 0 },
	{ "pcpu_counter_init(c, 0, DUAL | PCPU_COUNTER_BATCH_LOG2(41))",
	  init_batch41, W_RET, -EINVAL, 0 },
	{ "pcpu_counter_init(c, 0, EAGER | 1 << 16)", init_flag_unknown, W_RET,
	  -EINVAL, 0 },
	{ "pcpu_counter_init_many(NULL, ..., 4)", init_many_null, W_RET,
	  -EINVAL, 0 },
	{ "pcpu_counter_init_many(c, ..., 0)", init_many_n0, W_RET, -EINVAL,
	  0 },
	{ "pcpu_counter_init_many(c, 0, 7, 1)", init_many_flags, W_RET,
	  -EINVAL, 0 },
	{ "pcpu_counter_destroy(NULL)", destroy_null, W_NONE, 0, 0 },
	{ "pcpu_counter_destroy_many(NULL, 3)", destroy_many_null, W_NONE, 0,
	  0 },
	{ "pcpu_counter_share(NULL)", share_null, W_RET, -EINVAL, 0 },
	{ "pcpu_cache_create(size 0)", create_size0, W_NULL, 0, EINVAL },
	{ "pcpu_cache_create(size PCPU_ALLOC_MAX + 1)", create_too_big, W_NULL,
	  0, EINVAL },
	{ "pcpu_cache_create(size SIZE_MAX)", create_size_max, W_NULL, 0,
	  EINVAL },
	{ "pcpu_cache_create(align 3)", create_align3, W_NULL, 0, EINVAL },
	{ "pcpu_cache_create(align 8192)", create_align_big, W_NULL, 0,
	  EINVAL },
	{ "pcpu_cache_create(align 2^63)", create_align_top, W_NULL, 0,
	  EINVAL },
	{ "pcpu_cache_create(flags 0x80)", create_flags, W_NULL, 0, EINVAL },
	{ "pcpu_cache_create(flags ~0u)", create_flags_all, W_NULL, 0, EINVAL },
	{ "pcpu_cache_alloc(NULL, 0)", calloc_null, W_NULL, 0, EINVAL },
	{ "pcpu_cache_alloc(cache, 0x100)", calloc_flags, W_NULL, 0, EINVAL },
	{ "pcpu_cache_alloc(cache, ~0u)", calloc_flags_all, W_NULL, 0, EINVAL },
	{ "pcpu_cache_alloc_bulk(NULL, ...)", bulk_null, W_RET, 0, EINVAL },
	{ "pcpu_cache_alloc_bulk(cache, 0, 4, NULL)", bulk_objs_null, W_RET, 0,
	  EINVAL },
	{ "pcpu_cache_alloc_bulk(cache, 0x8, ...)", bulk_flags, W_RET, 0,
	  EINVAL },
	{ "pcpu_cache_free(NULL, obj)", cfree_null_cache, W_NONE, 0, 0 },
	{ "pcpu_cache_free(cache, NULL)", cfree_null_obj, W_NONE, 0, 0 },
	{ "pcpu_cache_free_bulk(NULL, 1, objs)", free_bulk_null, W_NONE, 0, 0 },
	{ "pcpu_cache_free_bulk(cache, 2, NULL)", free_bulk_objs_null, W_NONE,
	  0, 0 },
	{ "pcpu_cache_free_rcu(NULL, obj)", free_rcu_null_cache, W_NONE, 0, 0 },
	{ "pcpu_cache_free_rcu(cache, NULL)", free_rcu_null_obj, W_NONE, 0, 0 },
	{ "pcpu_cache_shrink(NULL)", shrink_null, W_RET, 0, 0 },
	{ "pcpu_cache_deactivate(NULL)", deactivate_null, W_RET, -EINVAL, 0 },
	{ "pcpu_cache_destroy(NULL)", cdestroy_null, W_RET, -EINVAL, 0 },
	{ "pcpu_cache_destroy(cache) with an object out", cdestroy_busy, W_RET,
	  -EBUSY, 0 },
	{ "pcpu_cache_stats(NULL, st)", stats_null, W_RET, -EINVAL, 0 },
	{ "pcpu_cache_stats(cache, NULL)", stats_st_null, W_RET, -EINVAL, 0 },
};

#define NROWS	(sizeof(rows) / sizeof(rows[0]))

static void fx_setup(void)
{
	fx.area = pcpu_alloc(64, 8);
	ck_assert_ptr_nonnull(fx.area);
	ck_assert_int_eq(pcpu_counter_init(&fx.c, 40, PCPU_COUNTER_LAZY), 0);
	pcpu_counter_add(&fx.c, 2);
	memset(&fx.target, POISON, sizeof(fx.target));
	fx.cache = pcpu_cache_create("badinput", sizeof(uint64_t), 0, NULL,
				     NULL, NULL, 0);
	ck_assert_ptr_nonnull(fx.cache);
	fx.obj = pcpu_cache_alloc(fx.cache, 0);
	ck_assert_ptr_nonnull(fx.obj);
	*fx.obj = 0x1234567890ULL;
}

static void fx_teardown(void)
{
	pcpu_cache_free(fx.cache, fx.obj);
	ck_assert_int_eq(pcpu_cache_destroy(fx.cache), 0);
	pcpu_counter_destroy(&fx.c);
	pcpu_free(fx.area);
	tu_expect_no_area("teardown");
}

START_TEST(test_bad_input)
{
	const struct row *r = &rows[_i];
	struct snap before, after;
	struct res got;

	fx_setup();
	take(&before);
	errno = 0;
	got = r->fn();
	take(&after);

	switch (r->want) {
	case W_RET:
		ck_assert_msg(got.ret == r->ret, "%s = %ld, want %ld", r->call,
			      got.ret, r->ret);
		if (r->err)
			ck_assert_msg(got.err == r->err, "%s: errno %d, want "
				      "%d", r->call, got.err, r->err);
		break;
	case W_NULL:
		ck_assert_msg(got.ret == 0, "%s: not NULL", r->call);
		ck_assert_msg(got.err == r->err, "%s: errno %d, want %d",
			      r->call, got.err, r->err);
		break;
	case W_NONE:
		break;
	}
	/* Nothing changed. */
	ck_assert_msg(after.slots == before.slots, "%s: slot count changed",
		      r->call);
	ck_assert_msg(after.live == before.live, "%s: resources held %ld -> "
		      "%ld", r->call, before.live, after.live);
	ck_assert_msg(memcmp(&after.c, &before.c, sizeof(after.c)) == 0 &&
		      after.c_sum == 42, "%s: counter changed", r->call);
	ck_assert_msg(memcmp(&after.target, &before.target,
			     sizeof(after.target)) == 0,
		      "%s: wrote the counter it was given", r->call);
	ck_assert_msg(memcmp(&after.st, &before.st, sizeof(after.st)) == 0,
		      "%s: cache statistics changed", r->call);
	ck_assert_msg(after.obj == before.obj, "%s: object changed", r->call);
	fx_teardown();
}
END_TEST

static Suite *badinput_suite(void)
{
	Suite *s = suite_create("badinput");
	TCase *tc = tu_tcase(s, "table", TU_TIMEOUT_UNIT);

	tcase_add_loop_test(tc, test_bad_input, 0, (int)NROWS);
	return s;
}

int main(void)
{
	return tu_main(badinput_suite());
}
