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
 * pcpu_alloc() serializes on one global mutex (the kernel's
 * pcpu_alloc_mutex) and zeroes every slot's copy: the eager baseline the
 * rest of libpcpu is measured against.  pcpu_alloc_lazy() hands out an
 * area without writing any copy (O(1) at any slot count, from per-slot
 * caches of clean areas, no global lock in the common case); the library
 * records which slots update it, and pcpu_area_sum(), pcpu_area_zero(),
 * pcpu_area_for_each() and pcpu_free() visit only those.
 *
 * A *word* below is the address of an 8-byte aligned int64_t inside an
 * area as seen in slot 0's copy: (char *)area + offset.
 * pcpu_area_add() adds to the calling thread's slot's copy of a word
 * with a restartable sequence (an atomic add where there is no rseq), the
 * kernel's this_cpu_add() for any per-CPU area.
 *
 * Synchronization table
 *
 *   function      may run concurrently with
 *   ------------  -----------------------------------------------------
 *   pcpu_alloc    everything (serialized on the allocator mutex)
 *   pcpu_free     everything but accesses to the area being freed
 *   pcpu_ptr      everything but pcpu_free() of the same area
 *   pcpu_alloc_lazy     everything
 *   pcpu_area_add       everything but zero/free of the same area
 *   pcpu_area_sum       everything but zero/free of the same area
 *   pcpu_area_for_each  everything but zero/free of the same area
 *   pcpu_area_zero      nothing on the same area
 */
#ifndef PCPU_ALLOC_H
#define PCPU_ALLOC_H

#include <pcpu/cpu.h>
#include <pcpu/rseq.h>

#ifdef __cplusplus
extern "C" {
#endif


/** The largest size (and alignment) pcpu_alloc() accepts. */
#define PCPU_ALLOC_MAX		(PCPU__UNIT_SIZE / 2)

/*
 * Inside a unit: the copies in [0, PCPU__SHADOW_OFF), in PCPU__NGRAN
 * granules of 8 bytes, then one touch byte per granule (set: this slot
 * may update that granule's copy on the fast path).  Not API.
 */
#define PCPU__GRAN		8u
#define PCPU__SHADOW_OFF	(PCPU__UNIT_SIZE / 8 * 7)
#define PCPU__NGRAN		(unsigned)(PCPU__SHADOW_OFF / PCPU__GRAN)

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
 * @area: the value pcpu_alloc() or pcpu_alloc_lazy() returned, or NULL
 *        (then nothing happens).  A lazy area is cleaned in O(touched
 *        slots) and goes back to the caller's slot's cache of clean
 *        areas without the allocator's mutex; an eager one takes the
 *        mutex, as the kernel's free_percpu() does.
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
 * @area: a live area from pcpu_alloc() or pcpu_alloc_lazy() (for a lazy
 *        area the slot then counts as touched, so that the caller may
 *        write the copy and pcpu_area_zero(), pcpu_free() and the readers
 *        see it).
 * @slot: the slot, below pcpu_nr_slots().
 *
 * Return: the address of slot @slot's copy; pcpu_ptr(area, 0) == area.
 * For a NULL @area, or a slot at or above pcpu_nr_slots(), the result is
 * NULL with errno set to EINVAL.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API void *pcpu_ptr(void *area, unsigned slot);

/**
 * pcpu_alloc_lazy - allocate a per-CPU area whose copies read as zero.
 * @size:  bytes per slot, 1 to PCPU_ALLOC_MAX.
 * @align: as for pcpu_alloc() (0 means 8).
 *
 * No copy is written: O(1) whatever pcpu_nr_slots() is.  Every copy reads
 * as zero until it is updated.  The slots that update the area through
 * pcpu_area_add() are recorded; pcpu_area_sum(), pcpu_area_zero(),
 * pcpu_area_for_each() and pcpu_free() visit only those ("touched") slots.
 * pcpu_ptr() on a lazy area touches the slot it is given, so that a
 * plain write through the pointer it returns is seen by those functions
 * (and cleaned by pcpu_area_zero() and pcpu_free()).
 *
 * Return: the area, or NULL with errno EINVAL or ENOMEM as pcpu_alloc().
 *
 * This API is MT-safe.
 */
PCPU_API void *pcpu_alloc_lazy(size_t size, size_t align);

/* Out-of-line part of pcpu_area_add(): not API. */
PCPU_API void pcpu__area_add_slow(void *word, int64_t delta);

/* The touch byte of @word's granule in slot 0's unit.  Not API. */
PCPU__INLINE const uint8_t *pcpu__area_touch_byte(const void *word)
{
	uintptr_t w = (uintptr_t)word;

	return (const uint8_t *)((w & ~(uintptr_t)(PCPU__UNIT_SIZE - 1)) +
				 PCPU__SHADOW_OFF +
				 ((w & (PCPU__UNIT_SIZE - 1)) / PCPU__GRAN));
}

/**
 * pcpu_area_add - add to the calling thread's slot's copy of a word.
 * @word:  an 8-byte aligned int64_t inside an area from pcpu_alloc() or
 *         pcpu_alloc_lazy(), addressed in slot 0's copy.
 * @delta: any value (arithmetic modulo 2^64).
 *
 * A restartable sequence on the current slot's copy where the process
 * uses rseq (pcpu_update_method()), else an atomic add.  A word updated
 * this way must not be written any other way while it may be updated
 * (under rseq a plain store of the sequence can overwrite a concurrent
 * write from another CPU); pcpu_area_zero() is the way to clear it.  Never loses an
 * update: migration, signals, several CPUs sharing a slot.  The first
 * update of a lazy area's granule from a slot records the slot.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU__INLINE void pcpu_area_add(void *word, int64_t delta)
{
	const uint8_t *tb = pcpu__area_touch_byte(word);
	/* Relaxed: set while no area is live (struct pcpu__rt). */
	long off = __atomic_load_n(&pcpu__rt.rseq_fast, __ATOMIC_RELAXED);

#ifdef PCPU__HAVE_RSEQ_ASM
	if (pcpu__likely(off != 0)) {
		if (pcpu__likely(pcpu__rseq_area_add((int64_t *)word, tb, delta,
						     off, pcpu__rt.rseq_idx,
						     pcpu__rt.nr_slots)))
			return;
	} else
#endif
	if (off == 0) {
		unsigned s = pcpu__slot_of(pcpu__index());
		size_t d = (size_t)s << PCPU__UNIT_SHIFT;

		/* Relaxed: the touch byte is set before the first add of
		 * this slot and only this slot's updaters look at it. */
		if (pcpu__likely(__atomic_load_n(tb + d, __ATOMIC_RELAXED))) {
			/* Relaxed: the copy carries only its own value. */
			__atomic_fetch_add((int64_t *)((char *)word + d), delta,
					   __ATOMIC_RELAXED);
			return;
		}
	}
	pcpu__area_add_slow(word, delta);
}

/**
 * pcpu_area_sum - a word summed over the slots.
 * @word: as for pcpu_area_add().
 *
 * Every slot's copy for an area from pcpu_alloc(), the touched slots'
 * copies for one from pcpu_alloc_lazy(), plus the updates of threads that
 * could not update a copy (see pcpu_area_add(3)).  Exact when no update
 * is in flight.  O(slots) or O(touched slots).
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API int64_t pcpu_area_sum(const void *word);

/**
 * pcpu_area_zero - zero an area's copies.
 * @area: an area from pcpu_alloc() (every copy is zeroed) or
 *        pcpu_alloc_lazy() (every touched copy is zeroed, and the area
 *        has no touched slot again), or NULL (no-op).
 *
 * Not concurrently with any other access to the area.
 */
PCPU_API void pcpu_area_zero(void *area);

/**
 * pcpu_area_for_each - call a function on an area's copies in slot order.
 * @area: an area from pcpu_alloc() (every slot is visited) or
 *        pcpu_alloc_lazy() (every touched slot).
 * @fn:   called as fn(copy, slot, @arg); a nonzero return stops the walk.
 * @arg:  passed to @fn.
 *
 * Return: the first nonzero value @fn returned; 0 after the last copy;
 * -EINVAL for a NULL @area or @fn.
 *
 * This API is MT-safe as far as @fn's accesses are.
 */
PCPU_API int pcpu_area_for_each(void *area,
				int (*fn)(void *copy, unsigned slot, void *arg),
				void *arg);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_ALLOC_H */
