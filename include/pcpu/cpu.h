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

/*
 * Run-time state read by the inline fast paths.  Not API: the fields may
 * change between releases of the library (the soname changes with them).
 *
 * nr_slots:  the slot count; written at set-up, and then only under the
 *            allocator lock while no area is live, so a thread holding a
 *            live area always reads the value the area was built with.
 * method:    PCPU__METHOD_*; written with nr_slots, under the same rule
 *            (rseq needs one slot per possible CPU).
 * rseq_off:  offset from the thread pointer of the struct rseq this
 *            process uses (glibc's, or libpcpu's own TLS one), or 0 when
 *            there is none.  Written once by the library constructor.
 * rseq_fast: rseq_off while the method is an rseq one, else 0: the one
 *            word the counters' fast path tests.  Written with method.
 */
struct pcpu__rt {
	unsigned nr_slots;
	unsigned method;
	long rseq_off;
	long rseq_fast;
};
extern PCPU_API struct pcpu__rt pcpu__rt;

/* Out-of-line CPU lookup for threads without a registered rseq area. */
PCPU_API unsigned pcpu__cpu_slow(void);

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

/*
 * pcpu__cpu - the CPU the caller runs on now, read from the thread's rseq
 * area (glibc's or libpcpu's own: one load from TLS) or, failing that,
 * sched_getcpu().
 */
PCPU__INLINE unsigned pcpu__cpu(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	long off = pcpu__rt.rseq_off;

	if (pcpu__likely(off != 0)) {
		/*
		 * struct rseq { u32 cpu_id_start; u32 cpu_id; ... }: the kernel
		 * stores cpu_id on every return to user space of this thread;
		 * only this thread reads it, so a volatile load suffices.  It is
		 * (u32)-1 or -2 when this thread is not registered, which the
		 * unsigned compare sends to the slow path (which may register
		 * the thread).
		 */
		unsigned cpu = *(volatile uint32_t *)(pcpu__tp() + off + 4);

		if (pcpu__likely(cpu < 0x7fffffffu))
			return cpu;
	}
#endif
	return pcpu__cpu_slow();
}

#if defined(__x86_64__)
/*
 * Pieces of x86-64 rseq critical sections, shared by every sequence in
 * libpcpu (not API).  A sequence is
 *
 *   PCPU__RSEQ_CS "0:" PCPU__RSEQ_ARM "1:" <body, ending in the commit
 *   store> "2:" PCPU__RSEQ_ABORT("<where to go on abort>")
 *
 * with the rseq area's offset from the thread pointer in operand [off].
 * The descriptor (label 3) covers [1, 2); the abort handler (label 4) is
 * preceded by the signature the kernel checks (0x53053053, the value glibc
 * registers on x86-64, inside a ud1 that is never executed); %rax is
 * clobbered by the arming store.
 */
# define PCPU__RSEQ_CS							\
	".pushsection __rseq_cs, \"aw\"\n\t"				\
	".balign 32\n\t"							\
	"3:\n\t"							\
	".long 0x0, 0x0\n\t"		/* version, flags */		\
	".quad 1f, (2f - 1f), 4f\n\t"	/* start, length, abort */	\
	".popsection\n\t"
# define PCPU__RSEQ_ARM							\
	"leaq 3b(%%rip), %%rax\n\t"					\
	"movq %%rax, %%fs:8(%[off])\n\t"	/* rseq->rseq_cs = &cs */
# define PCPU__RSEQ_ABORT(target)					\
	".pushsection __rseq_failure, \"ax\"\n\t"			\
	".byte 0x0f, 0xb9, 0x3d\n\t"					\
	".long 0x53053053\n\t"						\
	"4:\n\t"							\
	"jmp " target "\n\t"						\
	".popsection\n\t"
#endif

/* Map a CPU number to a slot: identity unless CPUs share slots. */
PCPU__INLINE unsigned pcpu__slot_of(unsigned cpu)
{
	/* Relaxed: the count changes only while no area is live, and a
	 * caller mapping a CPU to a slot of a live area reads it then. */
	unsigned n = __atomic_load_n(&pcpu__rt.nr_slots, __ATOMIC_RELAXED);

	return pcpu__likely(cpu < n) ? cpu : cpu % n;
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
 * per-CPU area (pcpu_alloc(), a LAZY or EAGER counter, a shared DUAL
 * counter) is live.  On error nothing changes.  The update method may
 * change with the count (see pcpu_update_method()).
 *
 * This API is MT-safe: it serializes with pcpu_alloc() and pcpu_free().
 */
PCPU_API int pcpu_set_nr_slots(unsigned n);

/**
 * pcpu_this_slot - the calling thread's slot now.
 *
 * The CPU number (from the thread's rseq area, glibc's or libpcpu's own,
 * else from sched_getcpu(), else 0) folded into [0, pcpu_nr_slots()).
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
 * ThreadSanitizer, there are fewer slots than possible CPUs, or the
 * environment has PCPU_UPDATE_METHOD=atomic; other values are ignored).
 * Decided at load time, and again by each pcpu_set_nr_slots().
 *
 * This API is MT-safe.
 */
PCPU_API const char *pcpu_update_method(void);

#ifdef __cplusplus
}
#endif

#endif /* PCPU_CPU_H */
