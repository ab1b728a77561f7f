/* SPDX-License-Identifier: MIT */
/*
 * pcpu/alloc.h - per-CPU areas: user-space alloc_percpu().
 *
 * An area is one copy of an object per slot (pcpu/cpu.h).  Like the
 * kernel's mm/percpu.c, areas are carved out of chunks: a chunk is one
 * virtual region holding one *unit* per slot, and an area lives at the same
 * offset in every unit, so slot s's copy is at area + s * PCPU_UNIT_SIZE.
 *
 *     chunk:  | unit 0           | unit 1           | ... | unit n-1         |
 *     area:   |   [A]   [B]      |   [A]   [B]      | ... |   [A]   [B]      |
 *
 * pcpu_alloc() and pcpu_free() serialize on one global mutex (the kernel's
 * pcpu_alloc_mutex) and pcpu_alloc() zeroes every slot's copy: the eager
 * baseline the rest of libpcpu is measured against.
 *
 * Synchronization table
 *
 *   function      may run concurrently with
 *   ------------  -----------------------------------------------------
 *   pcpu_alloc    everything (serialized on the allocator mutex)
 *   pcpu_free     everything but accesses to the area being freed
 *   pcpu_ptr      everything but pcpu_free() of the same area
 */
#ifndef PCPU_ALLOC_H
#define PCPU_ALLOC_H

#include <pcpu/cpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Distance between two slots' copies of an area (bytes).  Not API. */
#define PCPU__UNIT_SHIFT	16
#define PCPU__UNIT_SIZE		((size_t)1 << PCPU__UNIT_SHIFT)

/** The largest size (and alignment) pcpu_alloc() accepts. */
#define PCPU_ALLOC_MAX		(PCPU__UNIT_SIZE / 2)

/* Slot @slot's copy of @area, inline for the counters' fast paths. */
PCPU__INLINE void *pcpu__slot_ptr(void *area, unsigned slot)
{
	return (char *)area + ((size_t)slot << PCPU__UNIT_SHIFT);
}

/**
 * pcpu_alloc - allocate a per-CPU area.
 * @size:  bytes per slot, 1 to PCPU_ALLOC_MAX.
 * @align: alignment of every copy: a power of two up to PCPU_ALLOC_MAX;
 *         0 means 8.
 *
 * Every slot's copy is zeroed before the call returns.  The area holds
 * pcpu_nr_slots() copies; release it with pcpu_free().
 *
 * Return: the area (which is also slot 0's copy), or NULL with errno set
 * to EINVAL (@size 0 or above PCPU_ALLOC_MAX, @align not a power of two
 * or above PCPU_ALLOC_MAX) or ENOMEM.
 *
 * This API is MT-safe.
 */
PCPU_API void *pcpu_alloc(size_t size, size_t align);

/**
 * pcpu_free - release a per-CPU area.
 * @area: the value pcpu_alloc() returned, or NULL (then nothing happens).
 *
 * No thread may access any copy of @area during or after the call.  A
 * pointer that pcpu_alloc() did not return, or one freed already, is
 * reported on stderr and the process aborts, like free(3) does.
 *
 * This API is MT-safe.
 */
PCPU_API void pcpu_free(void *area);

/**
 * pcpu_ptr - the address of one slot's copy of an area.
 * @area: a live area from pcpu_alloc().
 * @slot: the slot, below pcpu_nr_slots().
 *
 * Return: the address of slot @slot's copy; pcpu_ptr(area, 0) == area.
 * For a NULL @area, or a slot at or above pcpu_nr_slots(), the result is
 * NULL with errno set to EINVAL.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API void *pcpu_ptr(void *area, unsigned slot);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_ALLOC_H */
