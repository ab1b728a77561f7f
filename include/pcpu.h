/* SPDX-License-Identifier: MIT */
/*
 * pcpu.h - libpcpu, per-CPU data for multi-threaded user-space programs.
 *
 * The umbrella header: include this one.  See libpcpu(7).
 */
#ifndef PCPU_H
#define PCPU_H

#include <pcpu/cpu.h>
#include <pcpu/alloc.h>
#include <pcpu/counter.h>
#include <pcpu/cache.h>

#endif /* PCPU_H */
