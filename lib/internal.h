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
 * whether the cap cut it (then CPU numbers can exceed it). */
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

/* alloc.c: an anonymous read-write mapping of @len bytes aligned to
 * @align (a power of two), with extra mmap @flags; NULL if none. */
void *pcpu__map_aligned(size_t len, size_t align, int flags);

/* alloc.c: change the slot count under the allocator lock. */
int pcpu__alloc_set_nr_slots(unsigned n);

/*
 * alloc.c: a clean area (every slot zero, every touch-map word zero) of
 * @size bytes aligned to 8, without the eager memset.  With @wait 0 the
 * allocator lock is only tried (NULL with errno EAGAIN if busy), which
 * makes the call async-signal-safe in practice.  NULL with errno ENOMEM.
 */
void *pcpu__alloc_clean(size_t size, int wait);

/* alloc.c: free an area whose slots and touch-map words are all zero. */
void pcpu__free_clean(void *area);

/*
 * Where the side words of a live area are: the fold word, the summary
 * word, and the mask word of group k at mask0[k * stride].  Summary bit b
 * stands for the groups [b * per_bit, (b + 1) * per_bit).
 */
struct pcpu__touch {
	int64_t *fold;
	uint64_t *summary;
	uint64_t *mask0;
	size_t stride;
	unsigned nr_groups;
	unsigned per_bit;
};
void pcpu__area_touch(const void *area, struct pcpu__touch *t);

/* alloc.c, cache.c and counter.c: the pieces of the fork handlers (cpu.c). */
void pcpu__counter_fork_prepare(void);
void pcpu__counter_fork_parent(void);
void pcpu__counter_fork_child(void);
void pcpu__alloc_fork_prepare(void);
void pcpu__alloc_fork_release(void);
void pcpu__cache_fork_prepare(void);
void pcpu__cache_fork_parent(void);
void pcpu__cache_fork_child(void);

#endif /* PCPU_INTERNAL_H */
