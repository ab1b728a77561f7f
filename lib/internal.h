/* SPDX-License-Identifier: MIT */
/*
 * lib/internal.h - declarations shared by the library's modules.  Not
 * installed.
 */
#ifndef PCPU_INTERNAL_H
#define PCPU_INTERNAL_H

#include "config.h"
#include <pcpu.h>

/* Update methods, indices into the names pcpu_update_method() returns. */
enum pcpu__method {
	PCPU__METHOD_ATOMIC = 0,
};

/* cpu.c: make sure the run-time state is set up (idempotent, MT-safe). */
void pcpu__init(void);

/* cpu.c: the default slot count (possible CPUs, or PCPU_NR_SLOTS). */
unsigned pcpu__default_nr_slots(void);

/* alloc.c: change the slot count under the allocator lock. */
int pcpu__alloc_set_nr_slots(unsigned n);

#endif /* PCPU_INTERNAL_H */
