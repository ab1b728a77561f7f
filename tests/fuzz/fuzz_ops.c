/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_ops.c - libFuzzer target: byte strings become programs of
 * operations on counters, per-CPU areas and object caches, run by up to
 * four threads and checked against a reference model after every op.
 *
 * Running it (see tests/fuzz/fuzz.mk):
 *
 *   make fuzz                         build, fuzz a copy of the corpus for
 *                                     FUZZ_SECONDS (60) seconds
 *   make fuzz FUZZ_ARGS='-runs=0'     just run the corpus once
 *   make fuzz-repro FUZZ_INPUT=crash-1234...
 *                                     replay one input; FUZZ_OPS_TRACE=1 in
 *                                     the environment prints each op
 *   tests/fuzz/gen-corpus.py DIR      rewrite the hand-made seeds
 *
 * Threads.  Thread 0 is libFuzzer's own thread; threads 1-3 are workers
 * created once, for the whole process (workers 1 and 2 pinned to two
 * different CPUs when there are two, so that "two slots touched" is
 * reproducible; worker 3 floats).  Each op names the thread that runs it:
 * the main thread hands the op to that worker and waits for it to finish,
 * so ops never overlap and the model needs no locking, yet DUAL counters
 * see owners and non-owners, and every thread's rseq registration is used.
 * Two ops (CONC_ADD, K_CHURN) run on all three workers at once.
 *
 * Input format.  Byte 0 picks the slot count for the whole input
 * (pcpu_set_nr_slots(): the machine's, 1, 2, 3, 64 or 4096).  Then, until
 * the input ends or MAX_OPS ops ran, one op each:
 *
 *   op byte:   bits 0-5: op kind (modulo NR_OPS), bits 6-7: thread 0-3
 *   operands:  bytes as the op needs them (see the table at run_op());
 *              reading past the end yields zeros.
 *
 * "Value" operands (deltas, set values, compare right-hand sides) take one
 * byte b: b < 128 is b - 64; 128-191 reads 2 more bytes as an int16; 192-
 * 223 indexes special[] (batch edges, INT64 limits); 224-255 reads 8 bytes.
 *
 * Model.  Per counter (8): live, policy, init_many group, the value as an
 * int64 that wraps like the library's modulo-2^64 arithmetic, whether the
 * exact (unbounded) value ever left int64 since the last init/set/reset
 * ("wrapped"), the DUAL owner (the first thread to update it since
 * init/reset), whether it has had slots, and whether it is shared (no / maybe
 * / yes; "maybe" after a non-owner add, resolved by the next check).
 * After every op each live counter is checked: sum() == model exactly;
 * read() within (BATCH - 1) * T of sum(), T the slots it can have touched
 * (for an unshared DUAL counter T = 0: read() == sum()); is_shared() as
 * the model says.  compare() must give the exact sign unless "wrapped".
 *
 * Per cache (2): the objects the program holds (with the value of the
 * DUAL/LAZY counter inside each), allocations, constructor and destructor
 * calls and constructor failures (counted by the ctor/dtor themselves),
 * objects given to free_rcu and not yet known to be freed (R), dying.
 * Objects carry a state word (free / out), a holder tag and a fill pattern
 * derived from their address: an object handed out twice, handed out
 * unconstructed, overlapping another, or destroyed while out is caught.
 * pcpu_cache_stats() must agree: in_use == objects held (+ up to R),
 * ctor_calls == our count, dtor_calls == our count (when R == 0),
 * slabs * objs_per_slab == in_use + cached == constructed objects alive,
 * allocs == successful allocations, no array allocation after deactivate,
 * no empty slab after shrink or in a dying cache.  Destroy returns -EBUSY
 * while objects are out, and 0 with every constructed object destroyed
 * once they are back.
 *
 * Every input releases all it made at its end, checked: caches destroy
 * with 0, and then pcpu_set_nr_slots() must succeed (no area leaked).
 *
 * Every failed check prints what and where and calls abort() (not assert:
 * the checks must also run under NDEBUG), which libFuzzer reports as a
 * crash and saves the input.
 */
#define _GNU_SOURCE
#include <pcpu.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#include <urcu/urcu-bp.h>

#define MAX_OPS		256
#define NR_CTR		8
#define NR_CACHE	2
#define NR_AREA		4
#define MAX_HELD	160	/* objects held per cache */
#define MAX_BULK	64
#define NR_WORKERS	3
#define BATCH		PCPU_COUNTER_BATCH

/* --- failing ----------------------------------------------------------- */

static int trace;		/* FUZZ_OPS_TRACE set: print every op */
static unsigned cur_op;		/* index of the op being run, for reports */

static void __attribute__((noreturn, format(printf, 3, 4)))
fail(int line, const char *expr, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_ops.c:%d: op %u: check failed: %s: ", line,
		cur_op, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond))						\
			fail(__LINE__, #cond, __VA_ARGS__);		\
	} while (0)

#define TRACE(...)							\
	do {								\
		if (trace)						\
			fprintf(stderr, __VA_ARGS__);			\
	} while (0)

/* --- worker threads ------------------------------------------------------ */

struct worker {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(void *);
	void *arg;
	unsigned long posted, done;	/* under mu */
};

static struct worker workers[NR_WORKERS];
static __thread int self_id;	/* 0 main, 1..NR_WORKERS workers */

static void *worker_main(void *p)
{
	struct worker *w = p;
	unsigned long seen = 0;

	self_id = (int)(w - workers) + 1;
	for (;;) {
		void (*fn)(void *);
		void *arg;

		pthread_mutex_lock(&w->mu);
		while (w->posted == seen)
			pthread_cond_wait(&w->cv, &w->mu);
		seen = w->posted;
		fn = w->fn;
		arg = w->arg;
		pthread_mutex_unlock(&w->mu);
		fn(arg);
		pthread_mutex_lock(&w->mu);
		w->done = seen;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static void post(int t, void (*fn)(void *), void *arg)
{
	struct worker *w = &workers[t - 1];

	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->posted++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void wait_done(int t)
{
	struct worker *w = &workers[t - 1];

	pthread_mutex_lock(&w->mu);
	while (w->done != w->posted)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

/*
 * Run fn(arg) on thread t and wait for it.  The mutex hand-off orders
 * everything the caller did before everything fn does and back, so the
 * model is only ever touched by one thread at a time.
 */
static void run_on(int t, void (*fn)(void *), void *arg)
{
	if (t == 0) {
		fn(arg);
		return;
	}
	post(t, fn, arg);
	wait_done(t);
}

/* Run fn(arg) on every worker at once and wait for all of them. */
static unsigned start_gate;

static void run_on_all(void (*fn)(void *), void *arg)
{
	int t;

	__atomic_store_n(&start_gate, 0, __ATOMIC_RELAXED);
	for (t = 1; t <= NR_WORKERS; t++)
		post(t, fn, arg);
	for (t = 1; t <= NR_WORKERS; t++)
		wait_done(t);
}

/* Called first by a run_on_all() function: start together, so that the
 * workers really overlap instead of running one after the other. */
static void gate(void)
{
	__atomic_fetch_add(&start_gate, 1, __ATOMIC_ACQ_REL);
	while (__atomic_load_n(&start_gate, __ATOMIC_ACQUIRE) < NR_WORKERS)
		sched_yield();
}

static unsigned possible_cpus;	/* bound on distinct CPU numbers */
static unsigned default_slots;	/* pcpu_nr_slots() at start-up */

static unsigned read_possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
	unsigned a, b, max = 0;
	int n = get_nprocs_conf();
	char sep;

	/* "0-3,8-11": the largest number seen, plus one. */
	if (f) {
		while (fscanf(f, "%u", &a) == 1) {
			b = a;
			if (fscanf(f, "%c", &sep) == 1 && sep == '-' &&
			    fscanf(f, "%u", &b) == 1)
				(void)fscanf(f, "%c", &sep);
			if (b + 1 > max)
				max = b + 1;
		}
		fclose(f);
	}
	return max > (unsigned)n ? max : (unsigned)n;
}

static void start_workers(void)
{
	cpu_set_t all, one;
	int cpus[2] = { -1, -1 }, nr = 0, c, t;

	CPU_ZERO(&all);
	if (sched_getaffinity(0, sizeof(all), &all) == 0)
		for (c = 0; c < CPU_SETSIZE && nr < 2; c++)
			if (CPU_ISSET(c, &all))
				cpus[nr++] = c;
	for (t = 0; t < NR_WORKERS; t++) {
		struct worker *w = &workers[t];

		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		CHECK(pthread_create(&w->th, NULL, worker_main, w) == 0,
		      "cannot start worker %d", t + 1);
		/* Workers 1 and 2 on two CPUs (if any); 3 migrates freely.
		 * Failure (a restricted cpuset) only costs determinism. */
		if (t < 2 && nr > 0) {
			CPU_ZERO(&one);
			CPU_SET(cpus[t % nr], &one);
			(void)pthread_setaffinity_np(w->th, sizeof(one), &one);
		}
	}
}

/* --- input --------------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
};

static unsigned get8(struct rd *r)
{
	return r->p < r->end ? *r->p++ : 0;
}

static uint64_t getn(struct rd *r, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)get8(r) << (8 * i);
	return v;
}

static const int64_t special[32] = {
	0, 1, -1,
	BATCH - 1, BATCH, BATCH + 1,
	-(BATCH - 1), -BATCH, -BATCH - 1,
	2 * BATCH - 1, 2 * BATCH, 3 * BATCH - 1, 3 * BATCH, -2 * BATCH,
	INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
	INT64_MAX / 2, INT64_MIN / 2,
	(int64_t)1 << 32, -((int64_t)1 << 32), INT32_MAX, INT32_MIN,
	INT64_MAX - 3 * BATCH, INT64_MIN + 3 * BATCH,
	INT64_MAX - 100, INT64_MIN + 100,
	1000000007, -1000000007, 65535, -65536,
};

static int64_t get_value(struct rd *r)
{
	unsigned b = get8(r);

	if (b < 128)
		return (int64_t)b - 64;
	if (b < 192)
		return (int16_t)getn(r, 2);
	if (b < 224)
		return special[b - 192];
	return (int64_t)getn(r, 8);
}

/* --- counter model ------------------------------------------------------- */

enum { SH_NO, SH_MAYBE, SH_YES };

struct mctr {
	bool live;
	unsigned policy;
	unsigned gstart, gn;	/* init_many group: [gstart, gstart + gn) */
	int64_t val;		/* modulo 2^64, as the library computes */
	bool wrapped;		/* exact value left int64 since last set */
	int owner;		/* DUAL: the thread that updated it first
				   since init/reset, -1 before */
	int shared;		/* SH_*, DUAL only */
	bool slots;		/* DUAL: was shared since init, so it has
				   per-CPU slots (reset keeps them) */
};

static struct pcpu_counter ctr[NR_CTR];
static struct mctr mc[NR_CTR];

static const char *const policy_name[] = { "dual", "eager", "lazy" };

static void model_add(int64_t *val, bool *wrapped, int64_t d)
{
	/* The builtin stores the wrapped sum on overflow, as the library's
	 * unsigned arithmetic does. */
	if (__builtin_add_overflow(*val, d, val))
		*wrapped = true;
}

/* The largest number of slots a counter of @policy can have touched. */
static int64_t slots_bound(unsigned policy)
{
	unsigned n = pcpu_nr_slots();

	/* EAGER: the header's bound counts every slot.  LAZY and DUAL: a
	 * slot is touched by a CPU, and CPU numbers fold into the slots. */
	if (policy == PCPU_COUNTER_EAGER)
		return n;
	return n < possible_cpus ? n : possible_cpus;
}

static int sign128(__int128 d)
{
	return (d > 0) - (d < 0);
}

/* The checks after every op, on one live counter. */
static void check_counter(unsigned i)
{
	struct mctr *m = &mc[i];
	struct pcpu_counter *c = &ctr[i];
	int64_t s = pcpu_counter_sum(c), r = pcpu_counter_read(c);
	int64_t bound = (BATCH - 1) * slots_bound(m->policy);
	bool sh = pcpu_counter_is_shared(c);

	CHECK(s == m->val, "counter %u (%s): sum %lld, model %lld", i,
	      policy_name[m->policy], (long long)s, (long long)m->val);
	if (m->policy != PCPU_COUNTER_DUAL) {
		CHECK(sh, "counter %u (%s) not shared", i,
		      policy_name[m->policy]);
	} else {
		if (m->shared == SH_MAYBE)
			m->shared = sh ? SH_YES : SH_NO;
		CHECK(sh == (m->shared == SH_YES),
		      "counter %u (dual): is_shared %d, model %d", i, sh,
		      m->shared);
		if (sh)
			m->slots = true;
		/* No slots: read() is the whole value. */
		if (!sh)
			bound = 0;
	}
	if (!m->wrapped) {
		/* The documented bound, in plain integers: read() itself must
		 * not overflow while the value stays in range. */
		__int128 d = (__int128)r - s;

		CHECK(d <= bound && d >= -bound,
		      "counter %u (%s): read %lld, sum %lld, bound %lld", i,
		      policy_name[m->policy], (long long)r, (long long)s,
		      (long long)bound);
	} else {
		/* The value wrapped: only the distance modulo 2^64 means
		 * anything. */
		int64_t d = (int64_t)((uint64_t)r - (uint64_t)s);

		CHECK(d <= bound && d >= -bound,
		      "counter %u (%s, wrapped): read %lld, sum %lld", i,
		      policy_name[m->policy], (long long)r, (long long)s);
	}
}

/* --- cache model ---------------------------------------------------------- */

#define FOBJ_MAGIC	0x6f626a6c69766521ull	/* constructed */
#define FOBJ_DEAD	0x646561646f626a21ull	/* destructed */

enum { OBJ_FREE = 1, OBJ_OUT };

struct fcache;

/* What the constructor builds; the payload fills the rest of the size. */
struct fobj {
	uint64_t magic;
	uint32_t state;		/* OBJ_*, atomic */
	uint32_t pad;
	struct fcache *fc;
	struct pcpu_counter cnt;
	uint64_t *area;		/* per-object pcpu_alloc() area or NULL */
	uint64_t tag;		/* holder's tag while out, else 0 */
	unsigned char payload[];
};

struct held {
	struct fobj *o;
	int64_t val;		/* the value of o->cnt */
};

struct fcache {
	struct pcpu_cache *c;
	bool live, dying, debug, with_area;
	unsigned id, ctr_policy;
	size_t size, align;
	size_t objs_per_slab;
	/* Counted by the constructor and destructor (atomics: the
	 * destructors of a dying cache may run on liburcu's thread). */
	uint64_t ctor_calls, dtor_calls, ctor_fails;
	uint64_t allocs;	/* successful allocations */
	uint64_t lockless_dead;	/* lockless_allocs at deactivate */
	unsigned rcu_out;	/* R: free_rcu objects maybe not freed yet */
	unsigned nheld;
	struct held held[MAX_HELD];
};

static struct fcache caches[NR_CACHE];

/* Constructor failure injection: the ctor call that brings the countdown
 * to 0 returns ctor_fail_ret. */
static unsigned ctor_fail_in;
static int ctor_fail_ret;
static uint64_t ctor_fails_total;	/* atomic */
static uint64_t next_tag;

static size_t payload_len(const struct fcache *fc)
{
	return fc->size - sizeof(struct fobj);
}

static unsigned char pattern_at(const struct fobj *o, size_t i)
{
	return (unsigned char)(((uintptr_t)o >> 4) + i * 7);
}

static void check_pattern(const struct fcache *fc, const struct fobj *o,
			  const char *when)
{
	size_t i, n = payload_len(fc);

	for (i = 0; i < n; i++)
		CHECK(o->payload[i] == pattern_at(o, i),
		      "cache %u: object %p byte %zu is %#x, not %#x (%s)",
		      fc->id, (void *)o, i, o->payload[i], pattern_at(o, i),
		      when);
}

/* The holder's stamps: the tag at both ends of the payload, so that an
 * object overlapping another held one is seen at free. */
static void stamp(const struct fcache *fc, struct fobj *o, uint64_t tag)
{
	size_t n = payload_len(fc);

	memcpy(o->payload, &tag, 8);
	memcpy(o->payload + n - 8, &tag, 8);
}

static void unstamp(const struct fcache *fc, struct fobj *o)
{
	size_t n = payload_len(fc), i;
	uint64_t a, b;

	memcpy(&a, o->payload, 8);
	memcpy(&b, o->payload + n - 8, 8);
	CHECK(a == o->tag && b == o->tag,
	      "cache %u: object %p stamps %llx %llx, tag %llx", fc->id,
	      (void *)o, (unsigned long long)a, (unsigned long long)b,
	      (unsigned long long)o->tag);
	for (i = 0; i < 8; i++) {
		o->payload[i] = pattern_at(o, i);
		o->payload[n - 8 + i] = pattern_at(o, n - 8 + i);
	}
}

static void check_area(const struct fcache *fc, const struct fobj *o)
{
	unsigned last = pcpu_nr_slots() - 1;
	uint64_t *a0, *an;

	if (!fc->with_area)
		return;
	a0 = pcpu_ptr(o->area, 0);
	an = pcpu_ptr(o->area, last);
	CHECK(a0 == o->area && an, "cache %u: pcpu_ptr of object %p's area",
	      fc->id, (void *)o);
	CHECK(a0[0] == (uintptr_t)o && an[1] == ~(uintptr_t)o,
	      "cache %u: object %p's area holds %llx/%llx", fc->id,
	      (void *)o, (unsigned long long)a0[0],
	      (unsigned long long)an[1]);
}

static int fuzz_ctor(void *obj, void *arg)
{
	struct fcache *fc = arg;
	struct fobj *o = obj;
	void *objs[1];
	size_t i, n = payload_len(fc);
	int err;

	__atomic_fetch_add(&fc->ctor_calls, 1, __ATOMIC_RELAXED);
	/* Calling back into our own cache must fail, not deadlock. */
	errno = 0;
	CHECK(pcpu_cache_alloc(fc->c, 0) == NULL && errno == EDEADLK,
	      "cache %u: alloc from its ctor: errno %d", fc->id, errno);
	errno = 0;
	CHECK(pcpu_cache_alloc_bulk(fc->c, PCPU_NOWAIT, 1, objs) == 0 &&
	      errno == EDEADLK, "cache %u: bulk alloc from its ctor: errno %d",
	      fc->id, errno);
	if (ctor_fail_in && --ctor_fail_in == 0) {
		__atomic_fetch_add(&fc->ctor_fails, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&ctor_fails_total, 1, __ATOMIC_RELAXED);
		return ctor_fail_ret;
	}
	err = pcpu_counter_init(&o->cnt, 0, fc->ctr_policy);
	if (err) {
		/* Out of memory: counted as an injected failure would be. */
		__atomic_fetch_add(&fc->ctor_fails, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&ctor_fails_total, 1, __ATOMIC_RELAXED);
		return err;
	}
	o->area = NULL;
	if (fc->with_area) {
		unsigned last = pcpu_nr_slots() - 1;
		uint64_t *an;

		o->area = pcpu_alloc(16, 16);
		CHECK(o->area, "cache %u: ctor pcpu_alloc: errno %d", fc->id,
		      errno);
		an = pcpu_ptr(o->area, last);
		CHECK(o->area[0] == 0 && o->area[1] == 0 && an[0] == 0 &&
		      an[1] == 0, "cache %u: pcpu_alloc area not zeroed",
		      fc->id);
		o->area[0] = (uintptr_t)o;
		an[1] = ~(uintptr_t)o;
	}
	for (i = 0; i < n; i++)
		o->payload[i] = pattern_at(o, i);
	o->fc = fc;
	o->tag = 0;
	__atomic_store_n(&o->state, OBJ_FREE, __ATOMIC_RELAXED);
	o->magic = FOBJ_MAGIC;
	return 0;
}

static void fuzz_dtor(void *obj, void *arg)
{
	struct fcache *fc = arg;
	struct fobj *o = obj;
	int64_t s;

	CHECK(o->magic == FOBJ_MAGIC && o->fc == fc,
	      "cache %u: dtor on object %p: magic %llx", fc->id, obj,
	      (unsigned long long)o->magic);
	CHECK(__atomic_load_n(&o->state, __ATOMIC_RELAXED) == OBJ_FREE &&
	      o->tag == 0, "cache %u: dtor on object %p in use (tag %llu)",
	      fc->id, obj, (unsigned long long)o->tag);
	check_pattern(fc, o, "dtor");
	s = pcpu_counter_sum(&o->cnt);
	CHECK(s == 0, "cache %u: dtor: object %p's counter is %lld", fc->id,
	      obj, (long long)s);
	check_area(fc, o);
	pcpu_counter_destroy(&o->cnt);
	pcpu_free(o->area);
	o->magic = FOBJ_DEAD;
	__atomic_fetch_add(&fc->dtor_calls, 1, __ATOMIC_RELAXED);
}

/* An object just handed out: constructed, not out already; now it is. */
static void obj_check_fresh(struct fcache *fc, struct fobj *o)
{
	size_t a = fc->align;
	uint32_t old;

	if (!a) {
		a = fc->size & -fc->size;
		if (a > 16)
			a = 16;
	}
	CHECK(((uintptr_t)o & (a - 1)) == 0, "cache %u: object %p not "
	      "aligned to %zu", fc->id, (void *)o, a);
	CHECK(o->magic == FOBJ_MAGIC && o->fc == fc,
	      "cache %u: object %p not constructed (magic %llx)", fc->id,
	      (void *)o, (unsigned long long)o->magic);
	old = __atomic_exchange_n(&o->state, OBJ_OUT, __ATOMIC_RELAXED);
	CHECK(old == OBJ_FREE, "cache %u: object %p handed out twice (tag "
	      "%llu)", fc->id, (void *)o, (unsigned long long)o->tag);
	CHECK(o->tag == 0, "cache %u: fresh object %p has tag %llu", fc->id,
	      (void *)o, (unsigned long long)o->tag);
	check_pattern(fc, o, "alloc");
	CHECK(pcpu_counter_sum(&o->cnt) == 0 &&
	      pcpu_counter_compare(&o->cnt, 0) == 0,
	      "cache %u: fresh object %p's counter is %lld", fc->id,
	      (void *)o, (long long)pcpu_counter_sum(&o->cnt));
	check_area(fc, o);
}

/* An object going back: its value as the model says, then reset to the
 * constructed state (the caller's side of the cache contract). */
static void obj_restore(struct fcache *fc, struct fobj *o, int64_t val)
{
	uint32_t old;
	int64_t s = pcpu_counter_sum(&o->cnt);

	CHECK(s == val, "cache %u: object %p's counter %lld, model %lld",
	      fc->id, (void *)o, (long long)s, (long long)val);
	unstamp(fc, o);
	pcpu_counter_reset(&o->cnt);
	CHECK(pcpu_counter_sum(&o->cnt) == 0, "cache %u: reset of object "
	      "%p's counter", fc->id, (void *)o);
	o->tag = 0;
	old = __atomic_exchange_n(&o->state, OBJ_FREE, __ATOMIC_RELAXED);
	CHECK(old == OBJ_OUT, "cache %u: object %p was not out", fc->id,
	      (void *)o);
}

static void hold(struct fcache *fc, struct fobj *o)
{
	obj_check_fresh(fc, o);
	o->tag = ++next_tag;
	stamp(fc, o, o->tag);
	fc->held[fc->nheld].o = o;
	fc->held[fc->nheld].val = 0;
	fc->nheld++;
}

/* Take held[i] out of the model (swap with the last). */
static struct held unhold(struct fcache *fc, unsigned i)
{
	struct held h = fc->held[i];

	fc->held[i] = fc->held[--fc->nheld];
	return h;
}

static void check_stats(struct fcache *fc)
{
	struct pcpu_cache_stats st;
	uint64_t ctor, dtor, fails, alive;

	CHECK(pcpu_cache_stats(fc->c, &st) == 0, "cache %u: stats", fc->id);
	ctor = __atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED);
	dtor = __atomic_load_n(&fc->dtor_calls, __ATOMIC_RELAXED);
	fails = __atomic_load_n(&fc->ctor_fails, __ATOMIC_RELAXED);
	if (!fc->objs_per_slab)
		fc->objs_per_slab = st.objs_per_slab;
	CHECK(st.objs_per_slab && st.objs_per_slab == fc->objs_per_slab,
	      "cache %u: objs_per_slab %zu, was %zu", fc->id,
	      st.objs_per_slab, fc->objs_per_slab);
	CHECK(st.ctor_calls == ctor, "cache %u: ctor_calls %llu, counted "
	      "%llu", fc->id, (unsigned long long)st.ctor_calls,
	      (unsigned long long)ctor);
	CHECK(st.allocs == fc->allocs, "cache %u: allocs %llu, model %llu",
	      fc->id, (unsigned long long)st.allocs,
	      (unsigned long long)fc->allocs);
	CHECK(st.lockless_allocs <= st.allocs, "cache %u: lockless %llu > "
	      "allocs %llu", fc->id, (unsigned long long)st.lockless_allocs,
	      (unsigned long long)st.allocs);
	/* A dying cache's arrays are stopped: nothing is served there. */
	CHECK(!fc->dying || st.lockless_allocs == fc->lockless_dead,
	      "cache %u: lockless allocs %llu after deactivate (%llu)",
	      fc->id, (unsigned long long)st.lockless_allocs,
	      (unsigned long long)fc->lockless_dead);
	if (fc->rcu_out) {
		/* liburcu's thread may be freeing (and, dying, destroying)
		 * those objects right now: only bounds hold. */
		CHECK(st.in_use >= fc->nheld &&
		      st.in_use <= fc->nheld + fc->rcu_out,
		      "cache %u: in_use %zu, held %u + rcu %u", fc->id,
		      st.in_use, fc->nheld, fc->rcu_out);
		CHECK(st.rcu_pending <= fc->rcu_out, "cache %u: rcu_pending "
		      "%llu > %u", fc->id, (unsigned long long)st.rcu_pending,
		      fc->rcu_out);
		dtor = __atomic_load_n(&fc->dtor_calls, __ATOMIC_RELAXED);
		CHECK(st.dtor_calls <= dtor, "cache %u: dtor_calls %llu > "
		      "%llu", fc->id, (unsigned long long)st.dtor_calls,
		      (unsigned long long)dtor);
		/* The batch callback counts its objects out of in_use before
		 * it lowers rcu_pending: seen 0, they are all back. */
		if (st.rcu_pending == 0)
			fc->rcu_out = 0;
		return;
	}
	CHECK(st.in_use == fc->nheld, "cache %u: in_use %zu, held %u",
	      fc->id, st.in_use, fc->nheld);
	CHECK(st.rcu_pending == 0, "cache %u: rcu_pending %llu", fc->id,
	      (unsigned long long)st.rcu_pending);
	CHECK(st.dtor_calls == dtor, "cache %u: dtor_calls %llu, counted "
	      "%llu", fc->id, (unsigned long long)st.dtor_calls,
	      (unsigned long long)dtor);
	/* Objects are constructed on demand: a slab holds constructed
	 * objects (in use or cached) and never-constructed ones. */
	CHECK(st.in_use + st.cached <= st.slabs * st.objs_per_slab,
	      "cache %u: in_use %zu + cached %zu > %zu slabs * %zu", fc->id,
	      st.in_use, st.cached, st.slabs, st.objs_per_slab);
	alive = ctor - fails - dtor;
	CHECK(alive == st.in_use + st.cached, "cache %u: %llu objects "
	      "constructed alive, in_use %zu + cached %zu", fc->id,
	      (unsigned long long)alive, st.in_use, st.cached);
	/* A dying cache keeps no empty slab (and no cached objects beyond
	 * the partial slabs'). */
	CHECK(!fc->dying || st.slabs <= st.in_use, "cache %u dying: %zu "
	      "slabs, %zu in use", fc->id, st.slabs, st.in_use);
}

/* --- raw per-CPU areas ---------------------------------------------------- */

struct marea {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

static struct marea areas[NR_AREA];

/* --- ops ------------------------------------------------------------------ */

/* The decoded op, filled by run_op() and read by the op's function on the
 * op's thread. */
struct op {
	int thread;
	unsigned i, n, flags, sel;
	int64_t v;
	struct rd *r;
};

static unsigned group_of(unsigned i, unsigned *start)
{
	*start = mc[i].gstart;
	return mc[i].gn;
}

static void do_init(void *p)
{
	struct op *op = p;
	struct pcpu_counter *c = &ctr[op->i];
	unsigned k, flags = op->flags;
	int ret;

	/* One init in eight uses bad flags or a bad count: -EINVAL. */
	if (op->sel % 8 == 7) {
		CHECK(pcpu_counter_init(c, op->v, 3) == -EINVAL, "bad flags");
		CHECK(pcpu_counter_init_many(c, op->v, 0x100, 1) == -EINVAL,
		      "bad flags");
		CHECK(pcpu_counter_init_many(c, op->v, flags, 0) == -EINVAL,
		      "init_many of 0");
		CHECK(pcpu_counter_init(NULL, 0, flags) == -EINVAL, "NULL");
		return;
	}
	if (op->n == 1)
		ret = pcpu_counter_init(c, op->v, flags);
	else
		ret = pcpu_counter_init_many(c, op->v, flags, op->n);
	if (ret == -ENOMEM)
		return;
	CHECK(ret == 0, "init of %u counters (%s): %d", op->n,
	      policy_name[flags], ret);
	for (k = op->i; k < op->i + op->n; k++) {
		mc[k] = (struct mctr){
			.live = true, .policy = flags, .gstart = op->i,
			.gn = op->n, .val = op->v, .owner = -1,
			.shared = flags == PCPU_COUNTER_DUAL ? SH_NO : SH_YES,
		};
	}
}

static void do_destroy(void *p)
{
	struct op *op = p;
	unsigned start, n = group_of(op->i, &start), k;

	if (n == 1)
		pcpu_counter_destroy(&ctr[start]);
	else
		pcpu_counter_destroy_many(&ctr[start], n);
	for (k = start; k < start + n; k++)
		mc[k].live = false;
}

/* A DUAL counter has no owner after init or reset: the first thread to
 * update it becomes the owner, and another thread's update may upgrade it
 * (it does unless the upgrade cannot allocate). */
static void note_update(struct mctr *m, int thread)
{
	if (m->policy != PCPU_COUNTER_DUAL || m->shared != SH_NO)
		return;
	if (m->owner < 0)
		m->owner = thread;
	else if (thread != m->owner)
		m->shared = SH_MAYBE;
}

static void do_add(void *p)
{
	struct op *op = p;
	struct mctr *m = &mc[op->i];

	switch (op->sel) {
	case 0:
		pcpu_counter_add(&ctr[op->i], op->v);
		break;
	case 1:
		pcpu_counter_inc(&ctr[op->i]);
		break;
	default:
		pcpu_counter_dec(&ctr[op->i]);
		break;
	}
	model_add(&m->val, &m->wrapped, op->v);
	note_update(m, op->thread);
}

static void do_set(void *p)
{
	struct op *op = p;
	struct mctr *m = &mc[op->i];

	if (op->sel) {
		pcpu_counter_reset(&ctr[op->i]);
		m->val = 0;
		/* DUAL: back to owner mode with no owner; the slots stay. */
		if (m->policy == PCPU_COUNTER_DUAL) {
			m->owner = -1;
			m->shared = SH_NO;
		}
	} else {
		pcpu_counter_set(&ctr[op->i], op->v);
		m->val = op->v;
	}
	m->wrapped = false;
}

static void do_share(void *p)
{
	struct op *op = p;
	struct mctr *m = &mc[op->i];
	int ret = pcpu_counter_share(&ctr[op->i]);

	CHECK(ret == 0 || ret == -ENOMEM, "share: %d", ret);
	if (ret == 0) {
		CHECK(pcpu_counter_is_shared(&ctr[op->i]), "shared, but "
		      "is_shared() is false");
		m->shared = SH_YES;
		m->slots = true;
	}
	if (op->sel == 0)
		CHECK(pcpu_counter_share(NULL) == -EINVAL, "share(NULL)");
}

static void do_read(void *p)
{
	struct op *op = p;

	/* The same checks as after every op, but on the op's thread. */
	check_counter(op->i);
}

static void do_compare(void *p)
{
	struct op *op = p;
	struct mctr *m = &mc[op->i];
	int64_t bound = (BATCH - 1) * slots_bound(m->policy), rhs;
	int got, want;

	/* Right-hand sides near the value and near the edges of the read()
	 * error bound, where compare() must switch from read() to sum(). */
	switch (op->sel % 6) {
	case 0:
		rhs = (int64_t)((uint64_t)m->val + (uint64_t)(op->v % 4));
		break;
	case 1:
		rhs = (int64_t)((uint64_t)m->val + (uint64_t)bound + 1);
		break;
	case 2:
		rhs = (int64_t)((uint64_t)m->val - (uint64_t)bound - 1);
		break;
	case 3:
		rhs = (int64_t)((uint64_t)m->val +
				(uint64_t)(op->v & 1 ? bound : -bound));
		break;
	case 4:
		rhs = op->v;
		break;
	default:
		rhs = op->v & 1 ? INT64_MAX : INT64_MIN;
		break;
	}
	got = pcpu_counter_compare(&ctr[op->i], rhs);
	want = sign128((__int128)m->val - rhs);
	CHECK(got >= -1 && got <= 1, "compare returned %d", got);
	if (!m->wrapped)
		CHECK(got == want, "counter %u (%s): compare(%lld) = %d, value "
		      "%lld", op->i, policy_name[m->policy], (long long)rhs,
		      got, (long long)m->val);
}

/* CONC_ADD: every worker adds the same delta n times, all at once. */
static void conc_add_body(void *p)
{
	struct op *op = p;
	unsigned k;

	gate();
	for (k = 0; k < op->n; k++)
		pcpu_counter_add(&ctr[op->i], op->v);
}

/* BIG_MANY: init_many across the LAZY/EAGER group size (PCPU_ALLOC_MAX / 8
 * counters share an area), updates at the group edges, destroy_many. */
static void do_big_many(void *p)
{
	struct op *op = p;
	unsigned group = PCPU_ALLOC_MAX / sizeof(int64_t);
	unsigned n = group - 1 + op->n % 3 + (op->n & 4 ? group : 0);
	unsigned idx[6] = { 0, group - 1, group, n / 2, n - 2, n - 1 };
	unsigned flags = op->flags, k;
	struct pcpu_counter *c;
	int64_t s;
	int ret;

	/* An EAGER group zeroes PCPU_ALLOC_MAX bytes per slot. */
	if (flags == PCPU_COUNTER_EAGER && pcpu_nr_slots() > 64)
		flags = PCPU_COUNTER_LAZY;
	c = calloc(n, sizeof(*c));
	CHECK(c, "calloc");
	ret = pcpu_counter_init_many(c, op->v, flags, n);
	if (ret == -ENOMEM) {
		free(c);
		return;
	}
	CHECK(ret == 0, "init_many(%u, %s): %d", n, policy_name[flags], ret);
	for (k = 0; k < 6; k++)
		if (idx[k] < n)
			pcpu_counter_add(&c[idx[k]], (int64_t)k * BATCH + 1);
	for (k = 0; k < 6; k++) {
		unsigned j, hits = 0;

		if (idx[k] >= n)
			continue;
		/* An index may appear twice in idx[] (n small). */
		for (j = 0; j < 6; j++)
			if (idx[j] == idx[k])
				hits += j * BATCH + 1;
		s = pcpu_counter_sum(&c[idx[k]]);
		CHECK(s == (int64_t)((uint64_t)op->v + hits), "big group of "
		      "%u (%s): counter %u is %lld", n, policy_name[flags],
		      idx[k], (long long)s);
	}
	s = pcpu_counter_sum(&c[1]);
	CHECK(s == op->v, "big group: untouched counter 1 is %lld",
	      (long long)s);
	pcpu_counter_destroy_many(c, n);
	free(c);
}

static const size_t obj_sizes[4] = { 96, 248, 1000, 3000 };
static const size_t obj_aligns[4] = { 0, 8, 64, 4096 };

static void do_cache_create(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	unsigned f = op->sel;

	memset(fc, 0, offsetof(struct fcache, held));
	fc->id = op->i;
	fc->size = obj_sizes[f & 3];
	fc->align = obj_aligns[(f >> 2) & 3];
	fc->debug = f & 16;
	/* A per-object pcpu_alloc() zeroes every slot: too slow for
	 * hundreds of objects at 4096 slots. */
	fc->with_area = (f & 32) && pcpu_nr_slots() <= 64;
	fc->ctr_policy = f & 64 ? PCPU_COUNTER_LAZY : PCPU_COUNTER_DUAL;
	if (f & 128) {
		/* The argument checks first. */
		errno = 0;
		CHECK(!pcpu_cache_create("bad", 0, 0, NULL, NULL, NULL, 0) &&
		      errno == EINVAL, "create of size 0");
		errno = 0;
		CHECK(!pcpu_cache_create("bad", 64, 24, NULL, NULL, NULL, 0) &&
		      errno == EINVAL, "create with align 24");
		errno = 0;
		CHECK(!pcpu_cache_create("bad", 64, 0, NULL, NULL, NULL, 2) &&
		      errno == EINVAL, "create with flags 2");
		errno = 0;
		CHECK(!pcpu_cache_create("bad", PCPU_ALLOC_MAX + 1, 0, NULL,
					 NULL, NULL, 0) && errno == EINVAL,
		      "create of size PCPU_ALLOC_MAX + 1");
	}
	fc->c = pcpu_cache_create(f & 1 ? "fuzz" : NULL, fc->size, fc->align,
				  fuzz_ctor, fuzz_dtor, fc,
				  fc->debug ? PCPU_CACHE_DEBUG : 0);
	if (!fc->c) {
		CHECK(errno == ENOMEM, "create: errno %d", errno);
		return;
	}
	fc->live = true;
	check_stats(fc);
}

/* Expected result of an allocation that took no object: the errno. */
static void check_alloc_failure(struct fcache *fc, unsigned flags,
				uint64_t fails0, int err)
{
	if (__atomic_load_n(&ctor_fails_total, __ATOMIC_RELAXED) != fails0) {
		int want = ctor_fail_ret < 0 ? -ctor_fail_ret : EINVAL;

		CHECK(err == want || err == ENOMEM, "cache %u: ctor failed "
		      "with %d, alloc errno %d", fc->id, ctor_fail_ret, err);
		return;
	}
	if (flags & PCPU_NOWAIT)
		CHECK(err == EAGAIN, "cache %u: NOWAIT alloc: errno %d",
		      fc->id, err);
	else
		CHECK(err == ENOMEM, "cache %u: alloc failed: errno %d",
		      fc->id, err);
}

static void do_cache_alloc(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	uint64_t fails0 = __atomic_load_n(&ctor_fails_total, __ATOMIC_RELAXED);
	uint64_t ctor0 = __atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED);
	struct fobj *o;

	errno = 0;
	o = pcpu_cache_alloc(fc->c, op->flags);
	if (op->flags & PCPU_NOWAIT) {
		CHECK(__atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED) ==
		      ctor0, "cache %u: NOWAIT alloc ran the ctor", fc->id);
		/* A dying cache has no arrays to serve from. */
		CHECK(!fc->dying || (!o && errno == EAGAIN), "cache %u dying: "
		      "NOWAIT alloc gave %p", fc->id, (void *)o);
	}
	if (!o) {
		check_alloc_failure(fc, op->flags, fails0, errno);
		return;
	}
	CHECK(__atomic_load_n(&ctor_fails_total, __ATOMIC_RELAXED) == fails0,
	      "cache %u: alloc succeeded although its ctor failed", fc->id);
	fc->allocs++;
	hold(fc, o);
}

static void do_cache_alloc_bulk(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	uint64_t fails0 = __atomic_load_n(&ctor_fails_total, __ATOMIC_RELAXED);
	uint64_t ctor0 = __atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED);
	void *objs[MAX_BULK];
	size_t got, k;

	errno = 0;
	got = pcpu_cache_alloc_bulk(fc->c, op->flags, op->n, objs);
	if (op->flags & PCPU_NOWAIT)
		CHECK(__atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED) ==
		      ctor0, "cache %u: NOWAIT bulk alloc ran the ctor", fc->id);
	if (op->n == 0) {
		CHECK(got == 0, "cache %u: bulk alloc of 0 gave %zu", fc->id,
		      got);
		return;
	}
	if (got == 0) {
		check_alloc_failure(fc, op->flags, fails0, errno);
		return;
	}
	CHECK(got == op->n, "cache %u: bulk alloc of %u gave %zu", fc->id,
	      op->n, got);
	CHECK(__atomic_load_n(&ctor_fails_total, __ATOMIC_RELAXED) == fails0,
	      "cache %u: bulk alloc succeeded although its ctor failed",
	      fc->id);
	fc->allocs += got;
	/* hold() marks each object out: a duplicate in the batch fails. */
	for (k = 0; k < got; k++)
		hold(fc, objs[k]);
}

static void do_cache_free(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	struct held h;

	if (!fc->nheld) {
		pcpu_cache_free(fc->c, NULL);	/* a no-op */
		pcpu_cache_free_rcu(fc->c, NULL);
		return;
	}
	h = unhold(fc, op->n % fc->nheld);
	obj_restore(fc, h.o, h.val);
	if (op->flags) {
		pcpu_cache_free_rcu(fc->c, h.o);
		fc->rcu_out++;
	} else {
		pcpu_cache_free(fc->c, h.o);
	}
}

static void do_cache_free_bulk(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	void *objs[MAX_BULK];
	unsigned n = op->n < fc->nheld ? op->n : fc->nheld, k;
	struct held h;

	/* From the held list at op->sel onwards. */
	for (k = 0; k < n; k++) {
		h = unhold(fc, (op->sel + k) % fc->nheld);
		obj_restore(fc, h.o, h.val);
		objs[k] = h.o;
	}
	pcpu_cache_free_bulk(fc->c, n, objs);
}

static void do_obj_add(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	struct held *h;
	bool wrapped = false;
	int64_t s;

	if (!fc->nheld)
		return;
	h = &fc->held[op->n % fc->nheld];
	pcpu_counter_add(&h->o->cnt, op->v);
	model_add(&h->val, &wrapped, op->v);
	s = pcpu_counter_sum(&h->o->cnt);
	CHECK(s == h->val, "cache %u: object %p's counter %lld, model %lld",
	      fc->id, (void *)h->o, (long long)s, (long long)h->val);
}

static void do_cache_shrink(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	uint64_t dtor0 = __atomic_load_n(&fc->dtor_calls, __ATOMIC_RELAXED);
	unsigned rcu_before = fc->rcu_out;
	struct pcpu_cache_stats st;
	size_t n;

	n = pcpu_cache_shrink(fc->c);
	if (op->flags) {
		/* The shrink sent every partial RCU batch: libpcpu's reclaim
		 * thread frees them all after one grace period, with no
		 * further call.  (Not a timing check: 10 s is a hang.) */
		unsigned ms;

		for (ms = 0; ms < 10000; ms++) {
			CHECK(pcpu_cache_stats(fc->c, &st) == 0, "stats");
			if (st.rcu_pending == 0)
				break;
			usleep(1000);
		}
		CHECK(st.rcu_pending == 0, "cache %u: %llu rcu frees pending "
		      "10 s after shrink", fc->id,
		      (unsigned long long)st.rcu_pending);
		fc->rcu_out = 0;
	}
	if (rcu_before)
		return;
	CHECK(n == __atomic_load_n(&fc->dtor_calls, __ATOMIC_RELAXED) - dtor0,
	      "cache %u: shrink says %zu destroyed, dtor ran %llu times",
	      fc->id, n, (unsigned long long)(fc->dtor_calls - dtor0));
	CHECK(pcpu_cache_stats(fc->c, &st) == 0, "stats");
	CHECK(st.slabs <= st.in_use, "cache %u: %zu slabs after shrink, %zu "
	      "objects in use", fc->id, st.slabs, st.in_use);
}

static void do_cache_deactivate(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	struct pcpu_cache_stats st;

	CHECK(pcpu_cache_deactivate(fc->c) == 0, "cache %u: deactivate",
	      fc->id);
	CHECK(pcpu_cache_deactivate(NULL) == -EINVAL, "deactivate(NULL)");
	CHECK(pcpu_cache_stats(fc->c, &st) == 0, "stats");
	fc->dying = true;
	fc->lockless_dead = st.lockless_allocs;
}

static void do_cache_stats(void *p)
{
	struct op *op = p;
	struct pcpu_cache_stats st;

	CHECK(pcpu_cache_stats(NULL, &st) == -EINVAL, "stats(NULL)");
	CHECK(pcpu_cache_stats(caches[op->i].c, NULL) == -EINVAL,
	      "stats(, NULL)");
	check_stats(&caches[op->i]);
}

static void cache_destroy(struct fcache *fc)
{
	uint64_t ctor, dtor, fails;
	struct pcpu_cache_stats st0, st1;
	int ret;

	CHECK(pcpu_cache_stats(fc->c, &st0) == 0, "stats");
	ret = pcpu_cache_destroy(fc->c);
	/* Either way destroy waited for every pending free_rcu. */
	fc->rcu_out = 0;
	if (fc->nheld) {
		CHECK(ret == -EBUSY, "cache %u: destroy with %u objects out: "
		      "%d", fc->id, fc->nheld, ret);
		/*
		 * Nothing released by destroy; but the RCU frees it waited
		 * for are frees, and in a deactivated cache a free that
		 * empties a slab releases it at once (found by the fuzzer
		 * in CI: 3 -> 2 slabs).  Its objects were cached, not out.
		 */
		CHECK(pcpu_cache_stats(fc->c, &st1) == 0 &&
		      (st1.slabs == st0.slabs ||
		       (fc->dying && st0.rcu_pending > 0 &&
			st1.slabs < st0.slabs)),
		      "cache %u: -EBUSY destroy released slabs (%zu -> %zu, "
		      "%zu RCU-pending)", fc->id, st0.slabs, st1.slabs,
		      st0.rcu_pending);
		check_stats(fc);
		return;
	}
	CHECK(ret == 0, "cache %u: destroy: %d", fc->id, ret);
	ctor = __atomic_load_n(&fc->ctor_calls, __ATOMIC_RELAXED);
	dtor = __atomic_load_n(&fc->dtor_calls, __ATOMIC_RELAXED);
	fails = __atomic_load_n(&fc->ctor_fails, __ATOMIC_RELAXED);
	CHECK(ctor - fails == dtor, "cache %u destroyed: %llu constructed, "
	      "%llu destroyed", fc->id, (unsigned long long)(ctor - fails),
	      (unsigned long long)dtor);
	fc->live = false;
	fc->c = NULL;
}

static void do_cache_destroy(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];

	/* A DEBUG cache aborts (by contract) instead of -EBUSY. */
	if (fc->debug && fc->nheld)
		return;
	CHECK(pcpu_cache_destroy(NULL) == -EINVAL, "destroy(NULL)");
	cache_destroy(fc);
}

/* K_CHURN: every worker allocates, uses and frees objects, all at once. */
static uint64_t churn_allocs;

static void churn_body(void *p)
{
	struct op *op = p;
	struct fcache *fc = &caches[op->i];
	unsigned r;

	gate();
	for (r = 0; r < op->n; r++) {
		struct fobj *o = pcpu_cache_alloc(fc->c, 0);
		uint32_t old;

		if (!o) {
			CHECK(errno == ENOMEM, "churn alloc: errno %d", errno);
			continue;
		}
		__atomic_fetch_add(&churn_allocs, 1, __ATOMIC_RELAXED);
		old = __atomic_exchange_n(&o->state, OBJ_OUT, __ATOMIC_RELAXED);
		CHECK(old == OBJ_FREE && o->magic == FOBJ_MAGIC,
		      "cache %u: churn got object %p in state %u", fc->id,
		      (void *)o, old);
		CHECK(pcpu_counter_sum(&o->cnt) == 0, "cache %u: churn: "
		      "counter of fresh object %p", fc->id, (void *)o);
		check_pattern(fc, o, "churn");
		pcpu_counter_add(&o->cnt, (int64_t)r - 3);
		CHECK(pcpu_counter_sum(&o->cnt) == (int64_t)r - 3, "cache %u: "
		      "churn: counter of object %p", fc->id, (void *)o);
		pcpu_counter_reset(&o->cnt);
		old = __atomic_exchange_n(&o->state, OBJ_FREE, __ATOMIC_RELAXED);
		CHECK(old == OBJ_OUT, "cache %u: churn: object %p taken by "
		      "another thread", fc->id, (void *)o);
		pcpu_cache_free(fc->c, o);
	}
}

static const size_t area_sizes[8] = {
	1, 8, 24, 100, 4096, PCPU_ALLOC_MAX, 0, PCPU_ALLOC_MAX + 1,
};
static const size_t area_aligns[4] = { 0, 8, 64, 3 };

static unsigned char area_stamp(const struct marea *a)
{
	return (unsigned char)(a->tag % 255 + 1);
}

/* The slots an area op looks at: the ends and the caller's own. */
static void area_slots(unsigned s[3])
{
	s[0] = 0;
	s[1] = pcpu_nr_slots() - 1;
	s[2] = pcpu_this_slot();
}

static void do_area_alloc(void *p)
{
	struct op *op = p;
	struct marea *a = &areas[op->i];
	size_t size = area_sizes[op->sel & 7];
	size_t align = area_aligns[(op->sel >> 3) & 3];
	unsigned s[3], k, nr = pcpu_nr_slots();
	unsigned char *c;

	/* Big areas cost a memset of every slot. */
	if (size == PCPU_ALLOC_MAX && nr > 64)
		size = 4096;
	errno = 0;
	a->p = pcpu_alloc(size, align);
	if (size == 0 || size > PCPU_ALLOC_MAX || align == 3) {
		CHECK(!a->p && errno == EINVAL, "pcpu_alloc(%zu, %zu): errno "
		      "%d", size, align, errno);
		return;
	}
	if (!a->p) {
		CHECK(errno == ENOMEM, "pcpu_alloc(%zu, %zu): errno %d", size,
		      align, errno);
		return;
	}
	CHECK(((uintptr_t)a->p & ((align ? align : 8) - 1)) == 0,
	      "pcpu_alloc(%zu, %zu) = %p", size, align, (void *)a->p);
	errno = 0;
	CHECK(pcpu_ptr(a->p, nr) == NULL && errno == EINVAL,
	      "pcpu_ptr(area, nr_slots)");
	if (nr > 1) {
		c = pcpu_ptr(a->p, 1);
		CHECK(c >= a->p + size || c + size <= a->p, "slots 0 and 1 "
		      "overlap");
	}
	a->size = size;
	a->tag = ++next_tag;
	area_slots(s);
	for (k = 0; k < 3; k++) {
		c = pcpu_ptr(a->p, s[k]);
		CHECK(c[0] == 0 && c[size - 1] == 0, "area of %zu: slot %u not "
		      "zeroed", size, s[k]);
	}
	/* A non-zero byte of the tag at both ends (one byte for size 1) of
	 * slots 0 and nr - 1. */
	for (k = 0; k < 2; k++) {
		c = pcpu_ptr(a->p, s[k]);
		c[0] = area_stamp(a);
		c[size - 1] = area_stamp(a);
	}
}

static void do_area_free(void *p)
{
	struct op *op = p;
	struct marea *a = &areas[op->i];
	unsigned s[3], k;
	unsigned char *c;

	area_slots(s);
	for (k = 0; k < 2; k++) {
		c = pcpu_ptr(a->p, s[k]);
		CHECK(c[0] == area_stamp(a) && c[a->size - 1] == area_stamp(a),
		      "area %u of %zu: slot %u overwritten", op->i, a->size,
		      s[k]);
	}
	pcpu_free(a->p);
	pcpu_free(NULL);
	a->p = NULL;
}

/* Is some per-CPU area certainly live (1), certainly not (0), or maybe? */
static int areas_live(void)
{
	int live = 0;
	unsigned k;

	for (k = 0; k < NR_CTR; k++)
		if (mc[k].live && (mc[k].shared != SH_NO || mc[k].slots))
			live = 1;
	for (k = 0; k < NR_CACHE; k++)
		if (caches[k].live)
			live = 1;
	for (k = 0; k < NR_AREA; k++)
		if (areas[k].p)
			live = 1;
	return live;
}

static void do_slots(void *p)
{
	unsigned n = pcpu_nr_slots();
	int ret, live = areas_live();

	(void)p;
	CHECK(pcpu_set_nr_slots(0) == -EINVAL, "set_nr_slots(0)");
	CHECK(pcpu_set_nr_slots(PCPU_MAX_SLOTS + 1) == -EINVAL,
	      "set_nr_slots(PCPU_MAX_SLOTS + 1)");
	/* The same count again: legal only while no area is live. */
	ret = pcpu_set_nr_slots(n);
	CHECK(ret == (live ? -EBUSY : 0), "set_nr_slots(%u) with%s live "
	      "areas: %d", n, live ? "" : "out", ret);
	CHECK(pcpu_nr_slots() == n, "slot count changed to %u",
	      pcpu_nr_slots());
}

/* --- the interpreter ------------------------------------------------------ */

enum {
	OP_INIT, OP_INIT_MANY, OP_DESTROY, OP_ADD, OP_INC, OP_DEC, OP_SET,
	OP_RESET, OP_SHARE, OP_READ, OP_COMPARE, OP_CONC_ADD, OP_BIG_MANY,
	OP_K_CREATE, OP_K_ALLOC, OP_K_FREE, OP_K_ALLOC_BULK, OP_K_FREE_BULK,
	OP_K_SHRINK, OP_K_DEACTIVATE, OP_K_STATS, OP_K_DESTROY, OP_K_OBJ_ADD,
	OP_K_CTOR_FAIL, OP_K_CHURN, OP_A_ALLOC, OP_A_FREE, OP_SLOTS,
	NR_OPS
};

static const char *const op_name[NR_OPS] = {
	"init", "init_many", "destroy", "add", "inc", "dec", "set", "reset",
	"share", "read", "compare", "conc_add", "big_many", "k_create",
	"k_alloc", "k_free", "k_alloc_bulk", "k_free_bulk", "k_shrink",
	"k_deactivate", "k_stats", "k_destroy", "k_obj_add", "k_ctor_fail",
	"k_churn", "a_alloc", "a_free", "slots",
};

/* Run a decoded op on its thread. */
static void go(struct op *op, void (*fn)(void *))
{
	TRACE("  thread %d: i %u n %u sel %u flags %u v %lld\n", op->thread,
	      op->i, op->n, op->sel, op->flags, (long long)op->v);
	run_on(op->thread, fn, op);
}

static const unsigned policies[3] = {
	PCPU_COUNTER_DUAL, PCPU_COUNTER_LAZY, PCPU_COUNTER_EAGER,
};

static const int ctor_rets[4] = { -ENOMEM, -EIO, -ENOSPC, 7 };

/*
 * Decode one op from @r and run it.  Operands (in order):
 *
 *   init        counter, policy, value          (sel % 8 == 7: bad args)
 *   init_many   counter, count, policy, value
 *   destroy     counter                         (a group: destroy_many)
 *   add         counter, value
 *   inc, dec    counter
 *   set         counter, value
 *   reset       counter
 *   share       counter
 *   read        counter
 *   compare     counter, mode, value
 *   conc_add    counter, value, iterations      (all workers)
 *   big_many    policy, size selector, value
 *   k_create    cache, config bits (size, align, debug, area, policy)
 *   k_alloc     cache, flags                    (bit 0: PCPU_NOWAIT)
 *   k_free      cache, which, rcu               (bit 0: free_rcu)
 *   k_alloc_bulk cache, count, flags
 *   k_free_bulk cache, count, start
 *   k_shrink    cache, barrier                  (bit 0: then rcu barrier)
 *   k_deactivate, k_stats, k_destroy   cache
 *   k_obj_add   cache, which, value
 *   k_ctor_fail countdown, return value selector
 *   k_churn     cache, rounds                   (all workers)
 *   a_alloc     area, size/align selector
 *   a_free      area
 *   slots       (none)
 *
 * An op whose target is not in the right state (init of a live counter,
 * alloc from a cache that does not exist) reads its operands and does
 * nothing, so that mutations do not shift the rest of the program.
 */
static void run_op(struct rd *r)
{
	unsigned b = get8(r), kind = (b & 0x3f) % NR_OPS, k, n;
	struct op op = { .thread = (int)(b >> 6), .r = r };
	struct fcache *fc;

	TRACE("op %u: %s\n", cur_op, op_name[kind]);
	switch (kind) {
	case OP_INIT:
	case OP_INIT_MANY:
		op.i = get8(r) % NR_CTR;
		op.n = kind == OP_INIT ? 1 : 1 + get8(r) % (NR_CTR - op.i);
		op.sel = get8(r);
		op.flags = policies[op.sel % 3];
		op.v = get_value(r);
		for (k = op.i; k < op.i + op.n; k++)
			if (mc[k].live)
				return;
		go(&op, do_init);
		break;
	case OP_DESTROY:
		op.i = get8(r) % NR_CTR;
		if (mc[op.i].live)
			go(&op, do_destroy);
		break;
	case OP_ADD:
	case OP_INC:
	case OP_DEC:
		op.i = get8(r) % NR_CTR;
		op.sel = kind - OP_ADD;
		op.v = kind == OP_ADD ? get_value(r) : kind == OP_INC ? 1 : -1;
		if (mc[op.i].live)
			go(&op, do_add);
		break;
	case OP_SET:
	case OP_RESET:
		op.i = get8(r) % NR_CTR;
		op.sel = kind == OP_RESET;
		op.v = kind == OP_SET ? get_value(r) : 0;
		if (mc[op.i].live)
			go(&op, do_set);
		break;
	case OP_SHARE:
		op.i = get8(r) % NR_CTR;
		if (mc[op.i].live)
			go(&op, do_share);
		break;
	case OP_READ:
		op.i = get8(r) % NR_CTR;
		if (mc[op.i].live)
			go(&op, do_read);
		break;
	case OP_COMPARE:
		op.i = get8(r) % NR_CTR;
		op.sel = get8(r);
		op.v = get_value(r);
		if (mc[op.i].live)
			go(&op, do_compare);
		break;
	case OP_CONC_ADD: {
		struct mctr *m;
		__int128 exact;

		op.i = get8(r) % NR_CTR;
		op.v = get_value(r);
		op.n = 1 + get8(r) % 64;
		m = &mc[op.i];
		if (!m->live)
			break;
		run_on_all(conc_add_body, &op);
		/* The same delta every time: the partial sums run
		 * monotonically from the old value to the new one, so the
		 * end points say whether any of them left int64. */
		exact = (__int128)m->val + (__int128)op.v * op.n * NR_WORKERS;
		if (exact > INT64_MAX || exact < INT64_MIN)
			m->wrapped = true;
		m->val = (int64_t)(uint64_t)exact;
		if (m->policy == PCPU_COUNTER_DUAL && m->shared == SH_NO)
			m->shared = SH_MAYBE;
		break;
	}
	case OP_BIG_MANY:
		op.flags = policies[get8(r) % 3];
		op.n = get8(r);
		op.v = get_value(r);
		go(&op, do_big_many);
		break;
	case OP_K_CREATE:
		op.i = get8(r) % NR_CACHE;
		op.sel = get8(r);
		if (!caches[op.i].live)
			go(&op, do_cache_create);
		break;
	case OP_K_ALLOC:
	case OP_K_ALLOC_BULK:
		op.i = get8(r) % NR_CACHE;
		op.n = kind == OP_K_ALLOC ? 1 : get8(r) % (MAX_BULK + 1);
		op.flags = get8(r) & 1 ? PCPU_NOWAIT : 0;
		fc = &caches[op.i];
		if (!fc->live || fc->nheld + op.n > MAX_HELD)
			break;
		go(&op, kind == OP_K_ALLOC ? do_cache_alloc :
		   do_cache_alloc_bulk);
		break;
	case OP_K_FREE:
		op.i = get8(r) % NR_CACHE;
		op.n = get8(r);
		op.flags = get8(r) & 1;
		if (caches[op.i].live)
			go(&op, do_cache_free);
		break;
	case OP_K_FREE_BULK:
		op.i = get8(r) % NR_CACHE;
		op.n = get8(r) % (MAX_BULK + 1);
		op.sel = get8(r);
		if (caches[op.i].live)
			go(&op, do_cache_free_bulk);
		break;
	case OP_K_SHRINK:
		op.i = get8(r) % NR_CACHE;
		op.flags = get8(r) & 1;
		if (caches[op.i].live)
			go(&op, do_cache_shrink);
		break;
	case OP_K_DEACTIVATE:
	case OP_K_STATS:
	case OP_K_DESTROY:
		op.i = get8(r) % NR_CACHE;
		if (caches[op.i].live)
			go(&op, kind == OP_K_DEACTIVATE ?
			   do_cache_deactivate : kind == OP_K_STATS ?
			   do_cache_stats : do_cache_destroy);
		break;
	case OP_K_OBJ_ADD:
		op.i = get8(r) % NR_CACHE;
		op.n = get8(r);
		op.v = get_value(r);
		if (caches[op.i].live)
			go(&op, do_obj_add);
		break;
	case OP_K_CTOR_FAIL:
		n = get8(r);
		ctor_fail_ret = ctor_rets[get8(r) % 4];
		ctor_fail_in = 1 + n % 64;
		break;
	case OP_K_CHURN:
		op.i = get8(r) % NR_CACHE;
		op.n = 1 + get8(r) % 32;
		fc = &caches[op.i];
		/* Not with a ctor failure armed: which worker meets it is
		 * up to the scheduler. */
		if (!fc->live || ctor_fail_in)
			break;
		churn_allocs = 0;
		run_on_all(churn_body, &op);
		fc->allocs += churn_allocs;
		break;
	case OP_A_ALLOC:
		op.i = get8(r) % NR_AREA;
		op.sel = get8(r);
		if (!areas[op.i].p)
			go(&op, do_area_alloc);
		break;
	case OP_A_FREE:
		op.i = get8(r) % NR_AREA;
		if (areas[op.i].p)
			go(&op, do_area_free);
		break;
	case OP_SLOTS:
		go(&op, do_slots);
		break;
	}
}

/* After every op, on the main thread. */
static void check_all(void)
{
	unsigned k;

	for (k = 0; k < NR_CTR; k++)
		if (mc[k].live)
			check_counter(k);
	for (k = 0; k < NR_CACHE; k++)
		if (caches[k].live)
			check_stats(&caches[k]);
}

/* Release everything the input made, checking as we go. */
static void teardown(void)
{
	struct op op = { .thread = 0 };
	unsigned k;
	int ret;

	cur_op = MAX_OPS;	/* "op 256" in reports: the teardown */
	ctor_fail_in = 0;
	for (k = 0; k < NR_CACHE; k++) {
		struct fcache *fc = &caches[k];

		if (!fc->live)
			continue;
		while (fc->nheld) {
			op.i = k;
			op.n = fc->nheld < MAX_BULK ? fc->nheld : MAX_BULK;
			op.sel = 0;
			do_cache_free_bulk(&op);
		}
		cache_destroy(fc);
		CHECK(!fc->live, "cache %u survived its destroy", k);
	}
	for (k = 0; k < NR_CTR; k++) {
		if (!mc[k].live)
			continue;
		check_counter(k);
		op.i = k;
		do_destroy(&op);
	}
	for (k = 0; k < NR_AREA; k++) {
		if (!areas[k].p)
			continue;
		op.i = k;
		do_area_free(&op);
	}
	/* Nothing is live: the slot count may change again. */
	ret = pcpu_set_nr_slots(pcpu_nr_slots());
	CHECK(ret == 0, "an area leaked: set_nr_slots: %d", ret);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_OPS_TRACE") != NULL;
	possible_cpus = read_possible_cpus();
	default_slots = pcpu_nr_slots();
	if (possible_cpus < default_slots)
		possible_cpus = default_slots;
	start_workers();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned slot_choice[6] = { 0, 1, 2, 3, 64, 4096 };
	struct rd r = { data, data + size };
	unsigned n = slot_choice[get8(&r) % 6];
	int ret;

	if (!n)
		n = default_slots;
	cur_op = 0;
	ret = pcpu_set_nr_slots(n);
	CHECK(ret == 0, "set_nr_slots(%u) at the start: %d", n, ret);
	CHECK(pcpu_nr_slots() == n, "nr_slots %u, set %u", pcpu_nr_slots(),
	      n);
	TRACE("input of %zu bytes: %u slots, method %s\n", size, n,
	      pcpu_update_method());
	memset(mc, 0, sizeof(mc));
	for (; cur_op < MAX_OPS && r.p < r.end; cur_op++) {
		run_op(&r);
		check_all();
	}
	teardown();
	return 0;
}
