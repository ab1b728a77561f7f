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
 * A unit holds the areas' copies in its first 7/8 (PCPU_NGRAN granules of
 * 8 bytes; an area is at most PCPU_ALLOC_MAX, half a unit) and, at
 * PCPU__SHADOW_OFF, one *touch byte* per granule: nonzero when this slot may update the granule's copy
 * on the fast path (pcpu_area_add(): every byte of an eager area, the
 * touched slots of a lazy one; see lazy.c).  The touch bytes of slot s are
 * in slot s's own unit, so the fast path reads a line that only slot s
 * and the (rare) writers of that area write.
 *
 * After the units come the meta blocks: one cache line (PCPU__META_WORDS
 * words) per granule, so that no two areas ever write the same meta line;
 * with more than 320 slots, the touch map's other mask words follow in an
 * outer block per granule (see outer_size()):
 *
 *   | unit 0 | ... | unit n-1 | meta[0] | meta[1] | ... | outer[0] | ... |
 *   meta[g]  = { fold, info, summary, mask[0 .. 4] }
 *   outer[g] = { mask[5 .. nr_groups - 1], pad }
 *
 * An area uses the meta block of its first granule (counter.c and lazy.c
 * say what the words mean; a counter group uses one per counter).  All of
 * it is reserved with MAP_NORESERVE: a meta block nobody writes costs
 * nothing.
 *
 * Clean areas.  pcpu_alloc() zeroes every slot, the eager way.  The lazy
 * layer (lazy.c) instead asks for *clean* granules: every copy, touch
 * byte and meta word zero without a memset, because fresh memory is zero
 * and the lazy layer gives back only areas it cleaned.  A granule that
 * pcpu_free() released (its copies and touch bytes may hold anything) is
 * marked in dirty_map, and an allocation that lands on one zeroes it first:
 * rare, and still correct.
 *
 * Free space is tracked per chunk by bitmaps over 8-byte granules of one
 * unit (the layout is the same in every unit): alloc_map has a bit per
 * allocated granule, start_map and end_map mark each area's first and
 * last granule, so pcpu_free() knows the size and can tell a foreign or
 * already-freed pointer.  Allocation is first fit from a per-chunk hint.
 *
 * Like the kernel, every allocation and free here takes one global mutex
 * (pcpu_alloc_mutex) and pcpu_alloc() zeroes the area in every unit: the
 * O(nr_slots) eager cost that the rest of libpcpu exists to avoid.  At most
 * one empty chunk is kept for reuse; others are unmapped when they empty.
 * The lazy layer takes this mutex only to refill or drain its per-slot
 * caches of clean areas, in batches.
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
 *  5. A free granule not in dirty_map is zero in every unit, and so is its
 *     touch byte; the meta and outer blocks of every free granule are zero.
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

#define PCPU_GRAN		PCPU__GRAN
#define PCPU_NGRAN		PCPU__NGRAN
#define PCPU_MAP_WORDS		(PCPU_NGRAN / 64)

struct pcpu_chunk {
	char *base;			/* unit 0, aligned to pcpu_chunk_align */
	size_t len;			/* units + meta blocks */
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

/*
 * The chunks' bases again, for readers that take no lock (pcpu_free() of
 * a lazy area, lazy.c): written under the mutex, with release stores,
 * when a chunk is made or destroyed; read with acquire loads.  A chunk
 * that finds no entry free is simply not listed (its areas are then
 * freed under the mutex).
 */
#define PCPU_CHUNK_TABLE	1024
static char *chunk_table[PCPU_CHUNK_TABLE];
static unsigned chunk_table_hi;		/* entries ever used */

static void table_set(char *old, char *new)
{
	unsigned i;

	for (i = 0; i < PCPU_CHUNK_TABLE; i++)
		if (chunk_table[i] == old) {
			/* Release: the chunk's header and units exist before
			 * a lock-free reader finds its base. */
			__atomic_store_n(&chunk_table[i], new, __ATOMIC_RELEASE);
			if (i >= chunk_table_hi)
				/* Release: the entry before the bound that
				 * makes readers look at it. */
				__atomic_store_n(&chunk_table_hi, i + 1,
						 __ATOMIC_RELEASE);
			return;
		}
}

int pcpu__area_known(const void *area)
{
	/* Relaxed: constant while any area is live (invariant 2). */
	size_t align = __atomic_load_n(&pcpu_chunk_align, __ATOMIC_RELAXED);
	char *base = (char *)((uintptr_t)area & ~(uintptr_t)(align - 1));
	/* Acquire: pairs with the release store of the bound. */
	unsigned i, hi = __atomic_load_n(&chunk_table_hi, __ATOMIC_ACQUIRE);

	if (!align || (uintptr_t)area % PCPU_GRAN ||
	    (const char *)area >= base + PCPU__SHADOW_OFF)
		return 0;
	for (i = 0; i < hi; i++)
		/* Acquire: pairs with table_set(). */
		if (__atomic_load_n(&chunk_table[i], __ATOMIC_ACQUIRE) == base)
			return 1;
	return 0;
}

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

/*
 * Each granule has a meta block of one cache line: the fold word, the info
 * word, the touch map's summary and its first PCPU__META_INLINE mask words
 * (320 slots).  With more slots the other mask words of a granule are in an
 * outer block of its own, after all the meta blocks: a line or more per
 * granule, written only by first touches from slots above 320.  Outer
 * blocks, not bigger meta blocks: an area uses the meta block of its first
 * granule only, and blocks of 576 bytes at 4096 slots put every page of the
 * meta region behind a few counters (20 000 LAZY counters touched once:
 * 45.5 MiB resident; now 6.5 MiB, as at 1 slot).
 */
static size_t outer_size(unsigned nr_slots)
{
	unsigned ng = nr_groups(nr_slots);

	if (ng <= PCPU__META_INLINE)
		return 0;
	return ((size_t)(ng - PCPU__META_INLINE) * 8 + 63) & ~(size_t)63;
}

static struct pcpu_chunk *chunk_create(unsigned nr_slots)
{
	/* Units, then one meta block per granule, then the outer blocks. */
	size_t len = ((size_t)nr_slots << PCPU__UNIT_SHIFT) +
		     (size_t)PCPU_NGRAN * (PCPU__META_WORDS * 8 +
					   outer_size(nr_slots));
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
	table_set(chunk->base, NULL);
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

/* Zero the granules [off, off + n) of every unit, and set their touch
 * bytes to @touch (1: eager, every slot may update; 0: clean). */
static void zero_units(struct pcpu_chunk *chunk, unsigned off, unsigned n,
		       unsigned nr, int touch)
{
	char *area = chunk->base + (size_t)off * PCPU_GRAN;
	char *tb = chunk->base + PCPU__SHADOW_OFF + off;
	unsigned s;

	for (s = 0; s < nr; s++) {
		memset(area + ((size_t)s << PCPU__UNIT_SHIFT), 0,
		       (size_t)n * PCPU_GRAN);
		memset(tb + ((size_t)s << PCPU__UNIT_SHIFT), touch, n);
	}
}

/*
 * Find room for @n granules aligned to @a granules, creating a chunk if
 * need be, and zero it: in every unit with every touch byte set (@eager),
 * or only where dirty.  Called and returns with pcpu_alloc_mutex held.
 */
void *pcpu__alloc_locked(unsigned n, unsigned a, int eager)
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
		table_set(NULL, chunk->base);
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
		zero_units(chunk, off, n, nr, eager);
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

	if (pcpu__alloc_lock(1)) {
		errno = EAGAIN;
		return NULL;
	}
	area = pcpu__alloc_locked(n, a, 1);
	if (area)
		/* Relaxed: published by the caller's own synchronization;
		 * pcpu_free() (lazy.c) reads it back under this mutex. */
		__atomic_store_n(&pcpu__meta(area)[PCPU__META_INFO],
				 INFO_EAGER | INFO_GRAN(n), __ATOMIC_RELAXED);
	pcpu__alloc_unlock();
	return area;
}

/*
 * Whether this thread may hold the mutex: a signal handler that
 * interrupted it must not wait for it (it would wait for itself).  Set
 * before the lock is taken and cleared after it is released, so that the
 * flag covers every instruction of pthread_mutex_lock() and _unlock() at
 * which the mutex can be ours: a handler that runs there fails its try
 * instead.  (Cleared first and released second, a handler delivered
 * inside pthread_mutex_unlock(), before the lock word was released,
 * waited for its own thread: the share-in-a-handler test hung 2 runs in
 * 40.)  Only this thread reads or writes it; volatile for the handler,
 * and the calls around it are opaque to the compiler.
 */
static __thread volatile int alloc_held
	__attribute__((tls_model("initial-exec")));

int pcpu__alloc_lock(int wait)
{
	if (alloc_held)
		return -1;		/* nested in our own holder */
	alloc_held = 1;
	if (wait ? pthread_mutex_lock(&pcpu_alloc_mutex) :
		   pthread_mutex_trylock(&pcpu_alloc_mutex)) {
		alloc_held = 0;
		return -1;
	}
	return 0;
}

void pcpu__alloc_unlock(void)
{
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	alloc_held = 0;
}

static void __attribute__((noreturn)) bad_free(void *area, const char *why)
{
	fprintf(stderr, "libpcpu: pcpu_free(%p): %s\n", area, why);
	abort();
}

/* The chunk of @area, which must be the start of a live area: aborts
 * otherwise.  pcpu_alloc_mutex held. */
static struct pcpu_chunk *check_locked(void *area, unsigned *offp)
{
	struct pcpu_chunk *chunk;
	char *base;
	unsigned off;

	base = (char *)((uintptr_t)area & ~(uintptr_t)(pcpu_chunk_align - 1));
	/* Validate against our own list before reading the header. */
	for (chunk = pcpu_chunks; chunk; chunk = chunk->next)
		if (chunk->base == base)
			break;
	if (!chunk || (char *)area >= base + PCPU__SHADOW_OFF ||
	    ((uintptr_t)area % PCPU_GRAN)) {
		pthread_mutex_unlock(&pcpu_alloc_mutex);
		bad_free(area, "not a per-CPU area");
	}
	off = (unsigned)(((char *)area - base) / PCPU_GRAN);
	if (!bit_test(chunk->start_map, off)) {
		pthread_mutex_unlock(&pcpu_alloc_mutex);
		bad_free(area, "double free or not the start of an area");
	}
	*offp = off;
	return chunk;
}

void pcpu__check_area_locked(void *area)
{
	unsigned off;

	(void)check_locked(area, &off);
}

/* Release @area (pcpu_alloc_mutex held): @dirty says whether its copies
 * may be nonzero.  Aborts on a pointer that is not a live area. */
void pcpu__free_locked(void *area, int dirty)
{
	struct pcpu_chunk *chunk;
	unsigned off, last, n;

	chunk = check_locked(area, &off);
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
}

uint64_t *pcpu__meta(const void *area)
{
	/* Relaxed: constant while the caller's area is live (invariant 2). */
	size_t align = __atomic_load_n(&pcpu_chunk_align, __ATOMIC_RELAXED);
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	uintptr_t base = (uintptr_t)area & ~(uintptr_t)(align - 1);
	size_t g = ((uintptr_t)area - base) / PCPU_GRAN;

	return (uint64_t *)(base + ((size_t)nr << PCPU__UNIT_SHIFT) +
			    g * PCPU__META_WORDS * 8);
}

uint64_t *pcpu__meta_outer(const uint64_t *meta, unsigned grp)
{
	/* Relaxed: as in pcpu__meta(). */
	size_t align = __atomic_load_n(&pcpu_chunk_align, __ATOMIC_RELAXED);
	unsigned nr = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);
	uintptr_t blocks = ((uintptr_t)meta & ~(uintptr_t)(align - 1)) +
			   ((uintptr_t)nr << PCPU__UNIT_SHIFT);
	size_t g = ((uintptr_t)meta - blocks) / (PCPU__META_WORDS * 8);

	return (uint64_t *)(blocks + (size_t)PCPU_NGRAN * PCPU__META_WORDS * 8 +
			    g * outer_size(nr)) + (grp - PCPU__META_INLINE);
}

unsigned pcpu__nr_groups(void)
{
	/* Relaxed: as in pcpu__meta(). */
	return nr_groups(__atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED));
}

unsigned long pcpu__alloc_live_locked(void)
{
	return pcpu_live;
}

int pcpu__alloc_set_nr_slots_locked(unsigned n)
{
	if (pcpu_live)
		return -EBUSY;
	if (n != pcpu__rt.nr_slots) {
		release_all_chunks();
		pcpu__set_method(n);
		/* Relaxed: no area is live, so no fast path maps an index to
		 * a slot of one; later allocations read it under this lock. */
		__atomic_store_n(&pcpu__rt.nr_slots, n, __ATOMIC_RELAXED);
	}
	return 0;
}

/* fork: the child must not find the allocator lock held by a thread it
 * does not have (fork.c's lock order). */
void pcpu__alloc_fork_prepare(void)
{
	/* As pcpu__alloc_lock(1): a handler's share() during the fork
	 * fails its try instead of waiting for this thread. */
	alloc_held = 1;
	pthread_mutex_lock(&pcpu_alloc_mutex);
}

void pcpu__alloc_fork_release(void)
{
	pthread_mutex_unlock(&pcpu_alloc_mutex);
	alloc_held = 0;
}
