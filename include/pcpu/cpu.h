/* SPDX-License-Identifier: MIT */
/*
 * pcpu/cpu.h - per-CPU slots: how many there are, which one is mine.
 *
 * Every per-CPU area (pcpu/alloc.h) holds one copy per *slot*.  By default
 * there is one slot per possible CPU of the machine
 * (/sys/devices/system/cpu/possible).  The count can be changed, while no
 * area is live, to simulate a machine with more CPUs (benchmarks of the
 * init cost at 4096 CPUs on a 2-CPU box) or to make several CPUs share a
 * slot.  Whatever the count, updates through this library stay exact: when
 * CPUs share slots, the shared slots are updated atomically.
 *
 * Synchronization table
 *
 *   function                 may run concurrently with
 *   ----------------------   ------------------------------------------
 *   pcpu_nr_slots            everything
 *   pcpu_set_nr_slots        everything (fails with -EBUSY if areas live)
 *   pcpu_this_slot           everything
 *   pcpu_update_method       everything
 *   pcpu_slot_index          everything
 */
#ifndef PCPU_CPU_H
#define PCPU_CPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Export macro: the library is built with -fvisibility=hidden. */
#if defined(__GNUC__)
# define PCPU_API __attribute__((visibility("default")))
#else
# define PCPU_API
#endif

/* Hot-path helpers: always inlined (a call costs more than the add). */
#if defined(__GNUC__)
# define PCPU__INLINE	static inline __attribute__((always_inline))
#else
# define PCPU__INLINE	static inline
#endif

#if defined(__GNUC__)
# define pcpu__likely(x)	__builtin_expect(!!(x), 1)
# define pcpu__unlikely(x)	__builtin_expect(!!(x), 0)
#else
# define pcpu__likely(x)	(x)
# define pcpu__unlikely(x)	(x)
#endif

/* Is ThreadSanitizer instrumenting this translation unit? */
#if defined(__SANITIZE_THREAD__)
# define PCPU__TSAN 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define PCPU__TSAN 1
# endif
#endif
#ifndef PCPU__TSAN
# define PCPU__TSAN 0
#endif

/** The largest slot count pcpu_set_nr_slots() accepts. */
#define PCPU_MAX_SLOTS	16384u

/* Update methods (pcpu__rt.method).  Not API. */
#define PCPU__METHOD_ATOMIC	0u	/* relaxed atomics on the slots       */
#define PCPU__METHOD_RSEQ	1u	/* rseq, registered by glibc          */
#define PCPU__METHOD_RSEQ_OWN	2u	/* rseq, registered by libpcpu        */

/* Distance between two slots' copies of an area (bytes).  Not API. */
#define PCPU__UNIT_SHIFT	16
#define PCPU__UNIT_SIZE		((size_t)1 << PCPU__UNIT_SHIFT)

/* What a slot number means (pcpu__rt.index).  Not API. */
#define PCPU__INDEX_CPU		0u	/* rseq cpu_id, or sched_getcpu()  */
#define PCPU__INDEX_MM_CID	1u	/* rseq mm_cid: a concurrency id   */

/*
 * Run-time state read by the inline fast paths.  Not API: the fields may
 * change between releases of the library (the soname changes with them).
 * All of it lives on one read-mostly cache line.
 *
 * nr_slots:  the slot count; 0 until set-up has run (every entry point of
 *            the library runs set-up first, also before the library's own
 *            constructor).  Then written only under the allocator lock
 *            while no area is live, so a thread holding a live area always
 *            reads the value the area was built with.
 * method:    PCPU__METHOD_*; written with nr_slots, under the same rule.
 * index:     PCPU__INDEX_*; written once, at set-up.
 * rseq_off:  offset from the thread pointer of the struct rseq this
 *            process uses (glibc's, or libpcpu's own TLS one), or 0 when
 *            there is none.  Written once, at set-up.
 * rseq_fast: rseq_off while the method is an rseq one, else 0: the word
 *            the fast paths test.  Written with method.
 * rseq_idx:  offset from the thread pointer of the field that holds the
 *            slot index (cpu_id or mm_cid); 0 without rseq.  Set-up only.
 */
struct pcpu__rt {
	unsigned nr_slots;
	unsigned method;
	unsigned index;
	unsigned pad_;
	long rseq_off;
	long rseq_fast;
	long rseq_idx;
};
extern PCPU_API struct pcpu__rt pcpu__rt;

/* Out-of-line slot index for threads without a registered rseq area. */
PCPU_API unsigned pcpu__index_slow(void);

/*
 * pcpu__tp - the calling thread's thread pointer: unique among live
 * threads and 16-byte aligned, so its low 4 bits are free for tags.
 */
PCPU__INLINE uintptr_t pcpu__tp(void)
{
	uintptr_t tp;
#if defined(__x86_64__)
	/* %fs:0 holds the TCB's pointer to itself (x86-64 TLS ABI). */
	__asm__ ("mov %%fs:0, %0" : "=r" (tp));
#elif defined(__aarch64__)
	__asm__ ("mrs %0, tpidr_el0" : "=r" (tp));
#else
	tp = (uintptr_t)__builtin_thread_pointer();
#endif
	return tp;
}

/* The 32-bit field @off bytes from the thread pointer (rseq area). */
PCPU__INLINE uint32_t pcpu__tls_u32(long off)
{
	/*
	 * Only the kernel, on this thread's behalf, and this thread write the
	 * thread's struct rseq: a volatile load suffices.
	 */
	return *(volatile uint32_t *)(pcpu__tp() + (uintptr_t)off);
}

/*
 * pcpu__index - the caller's slot index now, unbounded: the rseq field
 * that pcpu__rt.rseq_idx names (one TLS load) when this thread has its
 * rseq area registered, else pcpu__index_slow() (which may register it,
 * or asks sched_getcpu()).
 */
PCPU__INLINE unsigned pcpu__index(void)
{
	long off = pcpu__rt.rseq_off;

	if (pcpu__likely(off != 0) &&
	    pcpu__likely((int32_t)pcpu__tls_u32(off + 4) >= 0))
		return pcpu__tls_u32(pcpu__rt.rseq_idx);
	return pcpu__index_slow();
}

/*
 * Map an index to a slot: identity unless indices exceed the slot count
 * (CPUs sharing slots, or a CPU numbered above what the machine said).
 */
PCPU__INLINE unsigned pcpu__slot_of(unsigned index)
{
	/* Relaxed: the count changes only while no area is live, and a
	 * caller mapping an index to a slot of a live area reads it then. */
	unsigned n = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);

	if (pcpu__likely(index < n))
		return index;
	return n ? index % n : 0;
}

/**
 * pcpu_nr_slots - how many per-CPU slots every area has.
 *
 * The machine's possible CPUs (/sys/devices/system/cpu/possible), unless
 * the environment variable PCPU_NR_SLOTS (read once, when the library is
 * loaded; a malformed or out-of-range value is ignored) or
 * pcpu_set_nr_slots() says otherwise.
 *
 * Return: the slot count, at least 1 and at most PCPU_MAX_SLOTS.
 *
 * This API is MT-safe.
 */
PCPU_API unsigned pcpu_nr_slots(void);

/**
 * pcpu_set_nr_slots - change the number of per-CPU slots.
 * @n: the new count, 1 to PCPU_MAX_SLOTS.  A count below the number of
 *     CPUs makes CPUs share slots (updates stay exact: they turn atomic);
 *     a count above it simulates a bigger machine.
 *
 * Return: 0; -EINVAL if @n is 0 or above PCPU_MAX_SLOTS; -EBUSY while any
 * per-CPU area (pcpu_alloc(), pcpu_alloc_lazy(), a LAZY or EAGER counter,
 * a DUAL counter that was ever shared and not destroyed, an object cache)
 * is live.  On error nothing changes.  The update method may
 * change with the count (see pcpu_update_method()).
 *
 * This API is MT-safe: it serializes with pcpu_alloc() and pcpu_free().
 */
PCPU_API int pcpu_set_nr_slots(unsigned n);

/**
 * pcpu_this_slot - the calling thread's slot now.
 *
 * The thread's slot index (pcpu_slot_index(): its mm_cid or its CPU
 * number, from the thread's rseq area, glibc's or libpcpu's own; a thread
 * without an rseq area gets its CPU number from sched_getcpu(), else 0)
 * folded into [0, pcpu_nr_slots()).
 * Under "rseq-own" a thread's first call may register its rseq area.  A
 * hint: the thread may migrate before the value is used.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API unsigned pcpu_this_slot(void);

/**
 * pcpu_update_method - the per-CPU update mechanism this process uses.
 *
 * Return: a static string, for diagnostics and benchmark labels:
 * "rseq" (a restartable sequence on the current CPU's slot, with the rseq
 * area glibc registered), "rseq-own" (the same, with an rseq area that
 * libpcpu registers per thread because glibc did not), or "atomic" (an
 * atomic compare-and-swap on the current CPU's slot: the kernel has no
 * rseq, the architecture is not x86-64, the library was built with
 * ThreadSanitizer, there are fewer slots than the rseq method needs
 * (one per possible CPU; when /sys/devices/system/cpu/possible cannot be
 * read, one per CPU id the kernel's CPU mask can hold), or the
 * environment has PCPU_UPDATE_METHOD=atomic; other values are ignored).
 * Decided at load time, and again by each pcpu_set_nr_slots().
 *
 * This API is MT-safe.
 */
PCPU_API const char *pcpu_update_method(void);

/**
 * pcpu_slot_index - what a slot number means in this process.
 *
 * Return: a static string: "mm_cid" when slots are indexed by the kernel's
 * rseq mm_cid (a per-process concurrency id below both the number of the
 * process's threads and the number of CPUs it may run on: a process
 * touches at most as many slots as it has threads, and a lone thread that
 * hops between CPUs keeps one slot; the kernel may tie ids to CPUs while
 * several threads run), or "cpu" when they are indexed by CPU number (the
 * kernel has no mm_cid, there is no rseq, or the environment variable
 * PCPU_SLOT_INDEX=cpu was set when the library was loaded; other values
 * are ignored).  Decided once, at load time.
 *
 * This API is MT-safe and async-signal-safe.
 */
PCPU_API const char *pcpu_slot_index(void);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_CPU_H */
