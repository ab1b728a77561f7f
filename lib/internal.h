/* SPDX-License-Identifier: MIT */
/*
 * lib/internal.h - declarations shared by the library's modules.  Not
 * installed.
 */
#ifndef PCPU_INTERNAL_H
#define PCPU_INTERNAL_H

#include "config.h"
#include <pcpu.h>
#include "fault.h"

/* cpu.c: make sure the run-time state is set up (idempotent, MT-safe). */
void pcpu__init(void);

/* cpu.c: choose the update method for @nr_slots slots: sets
 * pcpu__rt.method and .rseq_fast (under the rules of invariant 3). */
void pcpu__set_method(unsigned nr_slots);

/* cpu.c: make sure the calling thread can run rseq sequences, registering
 * it if the library registers its own.  0 when it can, -1 when it cannot
 * (then it must not write slots; the caller uses a shared word).  Only
 * meaningful when pcpu__rt.method is not PCPU__METHOD_ATOMIC. */
int pcpu__rseq_ready(void);

/* cpu.c: the number of possible CPUs (capped at PCPU_MAX_SLOTS), and
 * whether slot indices can exceed it (the cap cut it, or sysfs could not
 * be read and the kernel's CPU mask is wider): then per-CPU arrays of
 * that many entries must not use rseq. */
unsigned pcpu__possible_cpus(void);
int pcpu__cpus_capped(void);

/* cpu.c: which rseq this process has, whatever the slot count:
 * PCPU__METHOD_RSEQ, PCPU__METHOD_RSEQ_OWN or PCPU__METHOD_ATOMIC. */
unsigned pcpu__rseq_kind(void);

/*
 * The calling thread's rseq cpu_id (pcpu__rt.rseq_off must be set):
 * negative while the thread has no rseq area registered.  Only the kernel,
 * on this thread's behalf, and this thread write it: a volatile load.
 */
static inline int32_t pcpu__rseq_cpu_id(void)
{
	return (int32_t)*(volatile uint32_t *)(pcpu__tp() +
					       pcpu__rt.rseq_off + 4);
}

/* The smallest power of two >= @v. */
static inline size_t pcpu__pow2_at_least(size_t v)
{
	size_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* --- alloc.c: the eager allocator (chunks, one global mutex) ---------- */

/* An anonymous read-write mapping of @len bytes aligned to @align (a
 * power of two), with extra mmap @flags; NULL if none. */
void *pcpu__map_aligned(size_t len, size_t align, int flags);

/* The allocator mutex: @wait 0 only tries (-1 if busy). */
int pcpu__alloc_lock(int wait);
void pcpu__alloc_unlock(void);

/* Under the mutex: @n granules aligned to @a granules, zeroed in every
 * unit with every touch byte set (@eager) or clean (only dirty granules
 * zeroed); NULL with errno ENOMEM.  Free with pcpu__free_locked(). */
void *pcpu__alloc_locked(unsigned n, unsigned a, int eager);
void pcpu__free_locked(void *area, int dirty);
/* Under the mutex: abort (as free(3) does) unless @area starts a live
 * area. */
void pcpu__check_area_locked(void *area);
/* Without the mutex: whether @area lies in a chunk's copies (a hint that
 * makes reading its meta block safe for a live area). */
int pcpu__area_known(const void *area);
/* Under the mutex: areas handed out of chunks and not freed. */
unsigned long pcpu__alloc_live_locked(void);
/* Under the mutex, with no live area: change the slot count. */
int pcpu__alloc_set_nr_slots_locked(unsigned n);

/*
 * The meta block of @area's first granule (a live area's): a cache line
 * of words that only this area uses.  The touch map's mask words of
 * groups PCPU__META_INLINE and up (slots 320 and up) are in the granule's
 * outer block, as pcpu__meta_mask() finds them.
 */
uint64_t *pcpu__meta(const void *area);
#define PCPU__META_FOLD		0	/* counters: the published total  */
#define PCPU__META_INFO		1	/* what the area is (lazy.c)      */
#define PCPU__META_SUMMARY	2	/* touch map: groups with a mask  */
#define PCPU__META_MASK0	3	/* touch map: group g at MASK0+g  */
#define PCPU__META_WORDS	8	/* one cache line                 */
#define PCPU__META_INLINE	(PCPU__META_WORDS - PCPU__META_MASK0)
/* Mask words per touch map: (nr_slots + 63) / 64. */
unsigned pcpu__nr_groups(void);
/* The mask word of group @grp >= PCPU__META_INLINE of @meta's map. */
uint64_t *pcpu__meta_outer(const uint64_t *meta, unsigned grp);

static inline uint64_t *pcpu__meta_mask(const uint64_t *meta, unsigned grp)
{
	if (grp < PCPU__META_INLINE)
		return (uint64_t *)&meta[PCPU__META_MASK0 + grp];
	return pcpu__meta_outer(meta, grp);
}

/* PCPU__META_INFO of an area's first granule (and, for data areas, of
 * every granule: the distance back to the first). */
#define INFO_LAZY	0x1ull			/* a pcpu_alloc_lazy() area */
#define INFO_EAGER	0x2ull			/* a pcpu_alloc() area */
#define INFO_CLASS(c)	((uint64_t)((c) + 1) << 8)
#define INFO_CLASS_OF(i) ((int)(((i) >> 8) & 0xff) - 1)
#define INFO_GRAN(n)	((uint64_t)(n) << 16)
#define INFO_GRAN_OF(i)	((unsigned)(((i) >> 16) & 0xffff))
#define INFO_COUNTER	0x4ull			/* counters' slots (counter.c) */
#define INFO_BATCH(k)	((uint64_t)(k) << 32)	/* a counter's batch log2 */
#define INFO_BATCH_OF(i) ((unsigned)(((i) >> 32) & 0xff))
#define INFO_BACK(n)	((uint64_t)(n) << 48)
#define INFO_BACK_OF(i)	((unsigned)((i) >> 48))

/* fork.c's pieces of the allocator. */
void pcpu__alloc_fork_prepare(void);
void pcpu__alloc_fork_release(void);

/* --- lazy.c: clean areas, per-slot caches, touch maps ------------------ */

/* A clean area of @size bytes aligned to @align (invariant 1 of lazy.c),
 * with @info (INFO_*) or-ed into its info word; @wait 0 never waits for
 * the allocator mutex (NULL, errno EAGAIN).  NULL with errno ENOMEM. */
void *pcpu__lazy_alloc(size_t size, size_t align, uint64_t info, int wait);
/* Give back an area from pcpu__lazy_alloc(), clean again; with @wait 0
 * (an update) without waiting for the allocator mutex. */
void pcpu__lazy_release(void *area, int wait);

/* Record that @slot touched the area whose first meta block is @meta. */
void pcpu__touch_mark(uint64_t *meta, unsigned slot);
/* Walk the touched slots in slot order; -1 at the end. */
struct pcpu__touch_iter {
	const uint64_t *meta;
	uint64_t sum, m;
	unsigned grp, end, ng, per_bit;
};
void pcpu__touch_begin(struct pcpu__touch_iter *it, const uint64_t *meta);
int pcpu__touch_next(struct pcpu__touch_iter *it);
/* Clear a touch map (every copy it names must be zero already). */
void pcpu__touch_clear(uint64_t *meta);

void pcpu__lazy_fork_child(void);

/* --- counter.c ---------------------------------------------------------- */

/* fork child: repair the folds that threads now gone left half done. */
void pcpu__counter_fork_child(void);

/* --- fork.c --------------------------------------------------------------- */

/* Register the fork handlers (once); called by cpu.c's set-up. */
void pcpu__fork_register(void);

/* --- cache layer: the pieces of the fork handlers (fork.c) -------------- */
void pcpu__cache_fork_prepare(void);
void pcpu__cache_fork_parent(void);
void pcpu__cache_fork_child(void);

#endif /* PCPU_INTERNAL_H */
