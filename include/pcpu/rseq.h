/* SPDX-License-Identifier: MIT */
/*
 * pcpu/rseq.h - the restartable-sequence layer: the kernel's struct rseq
 * offsets, the pieces every critical section is made of, and every named
 * sequence libpcpu runs.  Not API: included by the other headers because
 * the fast paths are inline; the names start with pcpu__ / PCPU__ and may
 * change with the soname.
 *
 * A sequence runs on the calling thread's slot.  The slot index is read
 * from the thread's struct rseq: the cpu_id field, or the mm_cid field
 * where the kernel provides one (pcpu_slot_index()).  Either way only one
 * running thread holds an index at a time, and the kernel aborts a
 * sequence that is preempted, migrated or signalled before its commit, so
 * a plain load-modify-store of the slot's copy is exclusive against every
 * other writer that also writes it only in a sequence on the same index.
 *
 * Every sequence here
 *   1. loads cpu_id and leaves (returns 0, stores nothing) when it is
 *      negative: the thread has no rseq area registered, so the kernel
 *      would not abort it and the store could be lost;
 *   2. loads the index and leaves when it is not below the slot count it
 *      is given (a kernel CPU number above what /sys said, a slot count
 *      the caller lowered): nothing is ever written out of bounds;
 *   3. ends in exactly one store instruction, the commit.
 */
#ifndef PCPU_RSEQ_H
#define PCPU_RSEQ_H

#include <stddef.h>
#include <stdint.h>
#include <pcpu/cpu.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The kernel's struct rseq (linux/rseq.h), as far as libpcpu reads it.
 * The kernel fills node_id and mm_cid when getauxval(AT_RSEQ_FEATURE_SIZE)
 * is at least 28, the end of mm_cid.
 */
struct pcpu__rseq_abi {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
};

#define PCPU__RSEQ_CPU_ID_OFF	4
#define PCPU__RSEQ_CS_OFF	8
#define PCPU__RSEQ_MM_CID_OFF	24
#define PCPU__RSEQ_MM_CID_END	28	/* the feature size that has mm_cid */
#define PCPU__RSEQ_SIG		0x53053053u	/* x86-64 abort signature */

#if defined(__cplusplus)
static_assert(offsetof(struct pcpu__rseq_abi, cpu_id) ==
	      PCPU__RSEQ_CPU_ID_OFF, "rseq cpu_id");
static_assert(offsetof(struct pcpu__rseq_abi, rseq_cs) == PCPU__RSEQ_CS_OFF,
	      "rseq rseq_cs");
static_assert(offsetof(struct pcpu__rseq_abi, mm_cid) ==
	      PCPU__RSEQ_MM_CID_OFF, "rseq mm_cid");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(offsetof(struct pcpu__rseq_abi, cpu_id) ==
	       PCPU__RSEQ_CPU_ID_OFF, "rseq cpu_id");
_Static_assert(offsetof(struct pcpu__rseq_abi, rseq_cs) == PCPU__RSEQ_CS_OFF,
	       "rseq rseq_cs");
_Static_assert(offsetof(struct pcpu__rseq_abi, mm_cid) ==
	       PCPU__RSEQ_MM_CID_OFF, "rseq mm_cid");
#endif

#if defined(__x86_64__) && !PCPU__TSAN && !defined(PCPU_NO_INLINE_RSEQ)
/*
 * This translation unit runs rseq sequences inline.  Where it cannot
 * (another architecture, ThreadSanitizer, or PCPU_NO_INLINE_RSEQ defined
 * before the first include), the inline fast paths call the library
 * whenever the process's method is an rseq one: a compare-and-swap from
 * such a unit on a slot that rseq sequences write with plain stores could
 * be overwritten by a sequence's commit, losing an update.
 */
# define PCPU__HAVE_RSEQ_ASM 1

/*
 * Pieces of x86-64 critical sections.  A sequence is
 *
 *   PCPU__RSEQ_CS "0:" PCPU__RSEQ_ARM "1:" <body ending in the commit
 *   store> "2:" PCPU__RSEQ_ABORT("<where to go on abort>")
 *
 * with the rseq area's offset from the thread pointer in operand [off].
 * The descriptor (label 3) covers [1, 2); the abort handler (label 4) is
 * preceded by the signature the kernel checks (inside a ud1 that is never
 * executed); %rax is clobbered by the arming store.  PCPU__RSEQ_INDEX
 * leaves the slot index in %eax, or jumps to [slow] (see the list above).
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
# define PCPU__RSEQ_INDEX(slow)						\
	"movl %%fs:4(%[off]), %%eax\n\t"	/* cpu_id: registered? */	\
	"testl %%eax, %%eax\n\t"					\
	"js " slow "\n\t"						\
	"movl %%fs:(%[idx]), %%eax\n\t"		/* cpu_id or mm_cid */	\
	"cmpl %[nr], %%eax\n\t"						\
	"jae " slow "\n\t"

/*
 * The counters' fast path.  A counter's copy in a slot is four words
 * (counter.c): u, the slot's running total; q, its published part less
 * (batch - 1); w, 2 * batch - 1 once the slot is touched, else 0; and
 * the direction of its last publication (a hint of the slow path's).
 * Adds @delta to u when the new total n stays within the batch of the
 * published part (n - q < w, unsigned), which also sends an untouched
 * slot (w == 0) to the slow path.  Returns 1 when committed, 0 (nothing
 * stored) when the slow path must run.
 */
PCPU__INLINE int pcpu__rseq_counter_add(int64_t *slots, int64_t delta,
					long off, long idx, unsigned nr)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		PCPU__RSEQ_INDEX("%l[slow]")
		"shlq %[shift], %%rax\n\t"
		"addq %[slots], %%rax\n\t"
		"movq (%%rax), %%rcx\n\t"		/* u */
		"addq %[delta], %%rcx\n\t"		/* n */
		"movq %%rcx, %%rdx\n\t"
		"subq 8(%%rax), %%rdx\n\t"		/* n - q */
		"cmpq 16(%%rax), %%rdx\n\t"		/* < w ? */
		"jae %l[slow]\n\t"
		"movq %%rcx, (%%rax)\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("0b")
		: /* no outputs */
		: [off] "r" (off), [idx] "r" (idx), [nr] "r" (nr),
		  [slots] "r" (slots), [delta] "er" (delta),
		  [shift] "i" (PCPU__UNIT_SHIFT)
		: "memory", "cc", "rax", "rcx", "rdx"
		: slow);
	return 1;
slow:
	return 0;
}

/*
 * Per-CPU areas as data: add @delta to the current slot's copy of @word
 * (the slot-0 address), provided the slot's touch byte for the word's
 * granule is set (@tb: the touch byte's address in slot 0's unit; eager
 * areas have every byte set).  Returns 1 when committed, 0 (nothing
 * stored) when the slow path must run.
 */
PCPU__INLINE int pcpu__rseq_area_add(int64_t *word, const uint8_t *tb,
				     int64_t delta, long off, long idx,
				     unsigned nr)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		"0:\n\t"
		PCPU__RSEQ_ARM
		"1:\n\t"
		PCPU__RSEQ_INDEX("%l[slow]")
		"shlq %[shift], %%rax\n\t"
		"cmpb $0, (%[tb], %%rax)\n\t"		/* touched here? */
		"je %l[slow]\n\t"
		"addq %[word], %%rax\n\t"
		"movq (%%rax), %%rcx\n\t"
		"addq %[delta], %%rcx\n\t"
		"movq %%rcx, (%%rax)\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("0b")
		: /* no outputs */
		: [off] "r" (off), [idx] "r" (idx), [nr] "r" (nr),
		  [word] "r" (word), [tb] "r" (tb), [delta] "er" (delta),
		  [shift] "i" (PCPU__UNIT_SHIFT)
		: "memory", "cc", "rax", "rcx"
		: slow);
	return 1;
slow:
	return 0;
}

/*
 * On slot index @slot (still the caller's), for the 16-byte pair at @p (u
 * and q of a counter's copy): if p[0] == @old0 and p[1] == @old1, store
 * both new words with one 16-byte store (one instruction, so the kernel restarts the sequence before it or
 * not at all).  Each 8-byte half is an aligned quadword, which other CPUs
 * load whole.
 */
PCPU__INLINE int pcpu__rseq_store2_if(uint64_t *p, uint64_t old0,
				      uint64_t old1, uint64_t new0,
				      uint64_t new1, unsigned slot, long off,
				      long idx)
{
	__asm__ __volatile__ goto (
		PCPU__RSEQ_CS
		PCPU__RSEQ_ARM
		"1:\n\t"
		"cmpl %[slot], %%fs:(%[idx])\n\t"
		"jnz %l[fail]\n\t"
		"cmpq %[old0], (%[p])\n\t"
		"jnz %l[fail]\n\t"
		"cmpq %[old1], 8(%[p])\n\t"
		"jnz %l[fail]\n\t"
		"movq %[new0], %%xmm0\n\t"
		"movq %[new1], %%xmm1\n\t"
		"punpcklqdq %%xmm1, %%xmm0\n\t"
		"movups %%xmm0, (%[p])\n\t"		/* commit */
		"2:\n\t"
		PCPU__RSEQ_ABORT("%l[fail]")
		: /* no outputs */
		: [off] "r" (off), [idx] "r" (idx), [p] "r" (p),
		  [old0] "r" (old0), [old1] "r" (old1), [new0] "r" (new0),
		  [new1] "r" (new1), [slot] "r" (slot)
		: "memory", "cc", "rax", "xmm0", "xmm1"
		: fail);
	return 0;
fail:
	return -1;
}
#endif /* PCPU__HAVE_RSEQ_ASM */

#ifdef __cplusplus
}
#endif

#endif /* PCPU_RSEQ_H */
