/* SPDX-License-Identifier: MIT */
/* tests/test_tumix.h - between the two translation units of test_tumix. */
#ifndef TEST_TUMIX_H
#define TEST_TUMIX_H

struct pcpu_counter;

/* @n adds of 1 from the TU built without rseq asm (test_tumix_cas.c). */
void tumix_cas_add(struct pcpu_counter *c, unsigned long n);

#endif
