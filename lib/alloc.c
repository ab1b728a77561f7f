/* SPDX-License-Identifier: MIT */
/*
 * lib/alloc.c - per-CPU areas, the user-space mm/percpu.c.
 *
 * Memory comes in chunks.  A chunk is one anonymous mapping of nr_slots
 * units of PCPU__UNIT_SIZE bytes, one unit per slot; an area is a range of
 * offsets [off, off + size) that is the same in every unit, so the copy of
 * slot s is at  base + s * UNIT + off  and an area is named by its slot-0
 * address.  Units nobody writes cost no memory: the mapping is reserved
 * with MAP_NORESERVE and the kernel supplies pages on first touch.
 *
 *   base (aligned to chunk_align)
 *   v
 *   | A | B |  free ...   | A | B |  free ...   |    | A | B |  free ...   |
 *   |<------ unit 0 ----->|<------ unit 1 ----->| .. |<---- unit n-1 ---->|
 *
 * Chunks are aligned to the power of two at or above their size, so the
 * chunk of an area starts at area & ~(chunk_align - 1); pcpu_free() checks
 * that start against its list of chunks before it trusts the pointer.
 *
 * After the units come the counters' side words (counter.c), also
 * reserved and so free until written.  For every granule g of a unit: the
 * touch map, a summary word and per group of 64 slots a mask word whose
 * bit s % 64 says that slot s has touched the area at g; and a fold word
 * (the total that full slots fold into, alone on its cache line so that
 * folds do not disturb the line every adder reads):
 *
 *   | units ... | summary[NGRAN] | mask group 0 [NGRAN] | group 1 | ...
 *   | fold[NGRAN], 64 B apart |
 *
 * Clean areas.  pcpu_alloc() zeroes every slot, the eager way.  The LAZY
 * counters instead ask for *clean* areas (pcpu__alloc_clean()): every
 * slot zero without a memset, because fresh memory is zero and
 * pcpu__free_clean() takes back only areas whose touched slots the counter
 * zeroed.  A granule that pcpu_free() released (its slots may hold
 * anything) is marked in dirty_map, and a clean allocation that lands on
 * one zeroes it first: rare, and still correct.  Touch-map words of free
 * granules are always zero.
 *
 * Free space is tracked per chunk by bitmaps over 8-byte granules of one
 * unit (the layout is the same in every unit): alloc_map has a bit per
 * allocated granule, start_map and end_map mark each area's first and
 * last granule, so pcpu_free() knows the size and can tell a foreign or
 * already-freed pointer.  Allocation is first fit from a per-chunk hint.
 *
 * Like the kernel, every allocation and free takes one global mutex
 * (pcpu_alloc_mutex) and pcpu_alloc() zeroes the area in every unit: the
 * O(nr_slots) eager cost that the rest of libpcpu exists to avoid.  At most
 * one empty chunk is kept for reuse; others are unmapped when they empty.
 *
 * Invariants (all under pcpu_alloc_mutex):
 *  1. Every chunk on pcpu_chunks has nr_slots == pcpu__rt.nr_slots and the
 *     alignment pcpu_chunk_align.
 *  2. pcpu_live counts the areas handed out and not freed; the slot count
 *     changes only when it is 0, and then every chunk is released first.
 *  3. Between pcpu_alloc() returning an area and pcpu_free() of it, no
 *     other area overlaps it, in any unit.
 *  4. pcpu_nr_empty counts chunks with no area; it is at most 1 after
 *     every free.
 *  5. A free granule not in dirty_map is zero in every unit, and the fold
 *     and touch map words of every free granule are zero.
 *  6. Nothing here calls malloc: chunk bookkeeping is mmap()ed, so that
 *     pcpu__alloc_clean(size, 0), which only tries the lock, may run in a
 *     signal handler.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PCPU_GRAN		8u
#define PCPU_NGRAN		(unsigned)(PCPU__UNIT_SIZE / PCPU_GRAN)
#define PCPU_MAP_WORDS		(PCPU_NGRAN / 64)
/* Words from one fold word to the next: a cache line each.  A unit holds
 * one word per granule, so the fold words take PCPU_FOLD_STRIDE units. */
#define PCPU_FOLD_STRIDE	8u

struct pcpu_chunk {
	char *base;			/* unit 0, aligned to pcpu_chunk_align */
	size_t len;			/* units + touch map */
	unsigned free_gran;		/* free granules per unit */
	unsigned first_free;		/* no free granule below this */
	struct pcpu_chunk *next;
	uint64_t alloc_map[PCPU_MAP_WORDS];
	uint64_t start_map[PCPU_MAP_WORDS];
	uint64_t end_map[PCPU_MAP_WORDS];
	uint64_t dirty_map[PCPU_MAP_WORDS];
};

/* Protects everything below, and pcpu__rt.nr_slots against writers. */
static pthread_mutex_t pcpu_alloc_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct pcpu_chunk *pcpu_chunks;
/* Constant while any area is live: read without the lock by
 * pcpu__area_touch() (relaxed) for areas the caller holds. */
static size_t pcpu_chunk_align;
static unsigned long pcpu_live;
static unsigned pcpu_nr_empty;

/* --- bitmaps ------------------------------------------------------------ */

static inline int bit_test(const uint64_t *map, unsigned i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

static inline void bit_set(uint64_t *map, unsigned i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static inline void bit_clear(uint64_t *map, unsigned i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

/* First index in [i, end) whose bit equals @want, or @end (<= NGRAN). */
static unsigned find_next_in(const uint64_t *map, unsigned i, unsigned end,
			     int want)
{
	while (i < end) {
		uint64_t w = want ? map[i / 64] : ~map[i / 64];

		w &= ~0ull << (i % 64);
		if (w) {
			i = (i & ~63u) + (unsigned)__builtin_ctzll(w);
			return i < end ? i : end;
		}
		i = (i & ~63u) + 64;
	}
	return end;
}

/* First index >= i whose bit equals @want, or NGRAN. */
static unsigned find_next(const uint64_t *map, unsigned i, int want)
{
	return find_next_in(map, i, PCPU_NGRAN, want);
}

/* Set or clear the bits [i, i + n). */
static void bits_assign(uint64_t *map, unsigned i, unsigned n, int val)
{
	while (n) {
		unsigned b = i % 64, k = 64 - b < n ? 64 - b : n;
		uint64_t m = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;

		if (val)
			map[i / 64] |= m;
		else
			map[i / 64] &= ~m;
		i += k;
		n -= k;
	}
}

/* --- chunks ------------------------------------------------------------- */

void *pcpu__map_aligned(size_t len, size_t align, int flags)
{
	char *map, *base;

	/* Reserve len + align and trim both ends. */
	map = pcpu__mmap(len + align, flags);
	if (map == MAP_FAILED)
		return NULL;
	/* Trims: the mapping counts as one resource until pcpu__munmap(). */
	base = (char *)(((uintptr_t)map + align - 1) & ~(uintptr_t)(align - 1));
	if (base > map)
		munmap(map, (size_t)(base - map));
	if (base + len < map + len + align)
		munmap(base + len, (size_t)(map + len + align - (base + len)));
	return base;
}

static unsigned nr_groups(unsigned nr_slots)
{
	return (nr_slots + 63) / 64;
}

static struct pcpu_chunk *chunk_create(unsigned nr_slots)
{
	/* Units, summary words, mask groups, fold words. */
	size_t len = ((size_t)nr_slots + 1 + nr_groups(nr_slots) +
		      PCPU_FOLD_STRIDE) * PCPU__UNIT_SIZE;
	size_t align = pcpu__pow2_at_least(len);
	struct pcpu_chunk *chunk;
	char *base;

	chunk = pcpu__mmap(sizeof(*chunk), 0);
	if (chunk == MAP_FAILED)
		return NULL;
	base = pcpu__map_aligned(len, align, MAP_NORESERVE);
	if (!base) {
		pcpu__munmap(chunk, sizeof(*chunk));
		return NULL;
	}

	/*
	 * 4 KiB pages: a transparent huge page would put 32 units' worth of
	 * memory behind the first touch of one (LAZY promises untouched slots
	 * cost nothing).  Advice only; failure changes nothing.
	 */
#ifdef MADV_NOHUGEPAGE
	madvise(base, len, MADV_NOHUGEPAGE);
#endif
	chunk->base = base;
	chunk->len = len;
	chunk->free_gran = PCPU_NGRAN;
	/* Relaxed: see pcpu__area_touch(); only while no area is live is it
	 * ever changed (a new slot count makes chunks of a new size). */
	__atomic_store_n(&pcpu_chunk_align, align, __ATOMIC_RELAXED);
	return chunk;
}

static void chunk_destroy(struct pcpu_chunk *chunk)
{
	pcpu__munmap(chunk->base, chunk->len);
	pcpu__munmap(chunk, sizeof(*chunk));
}

static int chunk_empty(const struct pcpu_chunk *chunk)
{
	return chunk->free_gran == PCPU_NGRAN;
}

/* First fit of @n granules aligned to @a granules; NGRAN if none. */
static unsigned chunk_find(const struct pcpu_chunk *chunk, unsigned n,
			   unsigned a)
{
	unsigned i = (chunk->first_free + a - 1) & ~(a - 1);

	while (i + n <= PCPU_NGRAN) {
		/* Look no further than the candidate range. */
		unsigned used = find_next_in(chunk->alloc_map, i, i + n, 1);

		if (used == i + n)
			return i;
		i = find_next(chunk->alloc_map, used, 0);
		i = (i + a - 1) & ~(a - 1);
	}
	return PCPU_NGRAN;
}

/* Drop every chunk; only with no live area. */
static void release_all_chunks(void)
{
	while (pcpu_chunks) {
		struct pcpu_chunk *c = pcpu_chunks;

		pcpu_chunks = c->next;
		chunk_destroy(c);
	}
	pcpu_nr_empty = 0;
}

/* --- API ---------------------------------------------------------------- */

/* Zero the granules [off, off + n) of every unit. */
static void zero_units(struct pcpu_chunk *chunk, unsigned off, unsigned n,
		       unsigned nr)
{
	char *area = chunk->base + (size_t)off * PCPU_GRAN;
	unsigned s;

	for (s = 0; s < nr; s++)
		memset(area + ((size_t)s << PCPU__UNIT_SHIFT), 0,
		       (size_t)n * PCPU_GRAN);
}

/*
 * Find room for @n granules aligned to @a granules, creating a chunk if
 * need be, and zero it: in every unit (@eager), or only where dirty.
 * Called and returns with pcpu_alloc_mutex held.
 */
static void *alloc_locked(unsigned n, unsigned a, int eager)
{
	struct pcpu_chunk *chunk;
	unsigned off = PCPU_NGRAN, nr = pcpu__rt.nr_slots;

	for (chunk = pcpu_chunks; chunk; chunk = chunk->next) {
		if (chunk->free_gran < n)
			continue;
		off = chunk_find(chunk, n, a);
		if (off < PCPU_NGRAN)
			break;
	}
	if (!chunk) {
		chunk = chunk_create(nr);
		if (!chunk) {
			errno = ENOMEM;
			return NULL;
		}
		chunk->next = pcpu_chunks;
		pcpu_chunks = chunk;
		pcpu_nr_empty++;
		off = chunk_find(chunk, n, a);
	}
	if (chunk_empty(chunk))
		pcpu_nr_empty--;
	bits_assign(chunk->alloc_map, off, n, 1);
	bit_set(chunk->start_map, off);
	bit_set(chunk->end_map, off + n - 1);
	chunk->free_gran -= n;
	if (off == chunk->first_free)
		chunk->first_free = find_next(chunk->alloc_map, off + n, 0);
	pcpu_live++;

	/*
	 * The eager part: zero the copy of every slot, as mm/percpu.c does
	 * for every possible CPU.  Under the lock, like the kernel; the
	 * caller publishes the area to other threads after we return.  A
	 * clean allocation pays this only for granules pcpu_free() dirtied.
	 */
	if (eager || find_next_in(chunk->dirty_map, off, off + n, 1) < off + n)
		zero_units(chunk, off, n, nr);
	bits_assign(chunk->dirty_map, off, n, 0);
	return chunk->base + (size_t)off * PCPU_GRAN;
}

PCPU_API void *pcpu_alloc(size_t size, size_t align)
{
	unsigned n, a;
	void *area;

	if (align == 0)
		align = PCPU_GRAN;
	if (size == 0 || size > PCPU_ALLOC_MAX || align > PCPU_ALLOC_MAX ||
	    (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	pcpu__init();
	n = (unsigned)((size + PCPU_GRAN - 1) / PCPU_GRAN);
	a = align > PCPU_GRAN ? (unsigned)(align / PCPU_GRAN) : 1;

	pthread_mutex_lock(&pcpu_alloc_mutex);
	area = alloc_locked(n, a, 1);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	return area;
}

void *pcpu__alloc_clean(size_t size, int wait)
{
	unsigned n = (unsigned)((size + PCPU_GRAN - 1) / PCPU_GRAN);
	void *area;

	if (wait) {
		pthread_mutex_lock(&pcpu_alloc_mutex);
	} else if (pthread_mutex_trylock(&pcpu_alloc_mutex)) {
		errno = EAGAIN;
		return NULL;
	}
	area = alloc_locked(n, 1, 0);
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	return area;
}

static void __attribute__((noreturn)) bad_free(void *area, const char *why)
{
	fprintf(stderr, "libpcpu: pcpu_free(%p): %s\n", area, why);
	abort();
}

static void free_area(void *area, int dirty)
{
	struct pcpu_chunk *chunk;
	char *base;
	unsigned off, last, n;

	if (!area)
		return;
	pthread_mutex_lock(&pcpu_alloc_mutex);
	base = (char *)((uintptr_t)area & ~(uintptr_t)(pcpu_chunk_align - 1));
	/* Validate against our own list before reading the header. */
	for (chunk = pcpu_chunks; chunk; chunk = chunk->next)
		if (chunk->base == base)
			break;
	if (!chunk || (char *)area >= base + PCPU__UNIT_SIZE ||
	    ((uintptr_t)area % PCPU_GRAN)) {
		pthread_mutex_unlock(&pcpu_alloc_mutex);
		bad_free(area, "not a per-CPU area");
	}
	off = (unsigned)(((char *)area - base) / PCPU_GRAN);
	if (!bit_test(chunk->start_map, off)) {
		pthread_mutex_unlock(&pcpu_alloc_mutex);
		bad_free(area, "double free or not the start of an area");
	}
	last = find_next(chunk->end_map, off, 1);
	n = last - off + 1;
	bits_assign(chunk->alloc_map, off, n, 0);
	if (dirty)
		bits_assign(chunk->dirty_map, off, n, 1);
	bit_clear(chunk->start_map, off);
	bit_clear(chunk->end_map, last);
	chunk->free_gran += n;
	if (off < chunk->first_free)
		chunk->first_free = off;
	pcpu_live--;

	if (chunk_empty(chunk)) {
		if (pcpu_nr_empty == 0) {
			pcpu_nr_empty = 1;	/* keep one for reuse */
		} else {
			struct pcpu_chunk **pp = &pcpu_chunks;

			while (*pp != chunk)
				pp = &(*pp)->next;
			*pp = chunk->next;
			chunk_destroy(chunk);
		}
	}
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}

PCPU_API void pcpu_free(void *area)
{
	free_area(area, 1);
}

void pcpu__free_clean(void *area)
{
	free_area(area, 0);
}

void pcpu__area_touch(const void *area, struct pcpu__touch *t)
{
	/* Relaxed: constant while the caller's area is live (invariant 2). */
	size_t align = __atomic_load_n(&pcpu_chunk_align, __ATOMIC_RELAXED);
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	uintptr_t base = (uintptr_t)area & ~(uintptr_t)(align - 1);
	unsigned g = (unsigned)(((uintptr_t)area - base) / PCPU_GRAN);
	uint64_t *meta = (uint64_t *)(base + ((size_t)nr << PCPU__UNIT_SHIFT));

	t->summary = meta + g;
	t->mask0 = meta + PCPU_NGRAN + g;
	t->fold = (int64_t *)meta + (size_t)PCPU_NGRAN * (1 + nr_groups(nr)) +
		  (size_t)g * PCPU_FOLD_STRIDE;
	t->stride = PCPU_NGRAN;
	t->nr_groups = nr_groups(nr);
	t->per_bit = (t->nr_groups + 63) / 64;
}

PCPU_API void *pcpu_ptr(void *area, unsigned slot)
{
	/* Relaxed: constant while @area is live (invariant 2); no call to
	 * pcpu_nr_slots(), whose pthread_once() is not async-signal-safe. */
	if (!area || slot >= __atomic_load_n(&pcpu__rt.nr_slots,
					     __ATOMIC_RELAXED)) {
		errno = EINVAL;
		return NULL;
	}
	return pcpu__slot_ptr(area, slot);
}

int pcpu__alloc_set_nr_slots(unsigned n)
{
	pthread_mutex_lock(&pcpu_alloc_mutex);
	if (pcpu_live) {
		pthread_mutex_unlock(&pcpu_alloc_mutex);
		return -EBUSY;
	}
	if (n != pcpu__rt.nr_slots) {
		release_all_chunks();
		/* Relaxed: no area is live, so no fast path maps a CPU to a
		 * slot of one; later allocations read it under this lock. */
		__atomic_store_n(&pcpu__rt.nr_slots, n, __ATOMIC_RELAXED);
		pcpu__set_method(n);
	}
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	return 0;
}

/* fork: the child must not find the allocator lock held by a thread it
 * does not have.  Taken after the caches' locks, released before them
 * (cpu.c's handlers). */
void pcpu__alloc_fork_prepare(void)
{
	pthread_mutex_lock(&pcpu_alloc_mutex);
}

void pcpu__alloc_fork_release(void)
{
	pthread_mutex_unlock(&pcpu_alloc_mutex);
}
