/* SPDX-License-Identifier: MIT */
/*
 * tests/test_tumix_cas.c - the second translation unit of tests/test_tumix,
 * compiled (tests/repro.mk) with -D__SANITIZE_THREAD__=1 and nothing else
 * of ThreadSanitizer: <pcpu/cpu.h> then sets PCPU__TSAN and
 * <pcpu/counter.h> leaves out its rseq asm (PCPU__HAVE_RSEQ_ASM), so the
 * inline pcpu_counter_add() below updates slots with compare-and-swap
 * whatever pcpu_update_method() says, as a TSan-built TU of an otherwise
 * normal program would.  (The header has no documented switch for this.)
 */
#include <pcpu.h>

#include "test_tumix.h"

#if !PCPU__TSAN || defined(PCPU__HAVE_RSEQ_ASM)
# error "this TU must be built without the header's rseq asm"
#endif

void tumix_cas_add(struct pcpu_counter *c, unsigned long n)
{
	while (n--)
		pcpu_counter_add(c, 1);
}
