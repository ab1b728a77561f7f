/* SPDX-License-Identifier: MIT */
/*
 * lib/fault.h - every allocation the library makes goes through these
 * wrappers, so that a test build can make any one of them fail.  Not
 * installed.
 *
 * The release library (lib/libpcpu.la) is built without
 * PCPU_FAULT_INJECTION: the wrappers are the plain calls and the hook
 * below does not exist.  The test library (lib/libpcpu-fi.la, never
 * installed) is built from the same sources with it, and exports:
 *
 *   pcpu__fault_arm(k)  the k-th allocation from now fails (k >= 1) with
 *                       ENOMEM, every other one succeeds; 0 disarms
 *                       (and keeps what the two below report).
 *   pcpu__fault_seen()  allocations made since the last arm.
 *   pcpu__fault_fired() whether the armed failure has happened.
 *   pcpu__fault_live()  resources the library holds now: blocks from the
 *                       malloc family and mappings; each
 *                       is +1 when made and -1 when given back, so a test
 *                       can see a leak LeakSanitizer cannot (mmap).
 *
 * Failure points ("an allocation"): malloc, calloc, posix_memalign, mmap,
 * and pthread_setspecific() (the registration of a thread's rseq area for
 * its exit handler, which can fail with ENOMEM).  The counts are global
 * (atomics): arm, run the operation, disarm, with no other thread
 * allocating through libpcpu meanwhile unless the test means it to.
 */
#ifndef PCPU_FAULT_H
#define PCPU_FAULT_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef PCPU_FAULT_INJECTION
/* 1: the allocation about to be made must fail. */
int pcpu__fault_hit(void);
/* Resources held: +1 made, -1 given back. */
void pcpu__fault_track(long d);

PCPU_API void pcpu__fault_arm(unsigned long k);
PCPU_API unsigned long pcpu__fault_seen(void);
PCPU_API int pcpu__fault_fired(void);
PCPU_API long pcpu__fault_live(void);
#else
static inline int pcpu__fault_hit(void)
{
	return 0;
}

static inline void pcpu__fault_track(long d)
{
	(void)d;
}
#endif

static inline void *pcpu__malloc(size_t n)
{
	void *p;

	if (pcpu__fault_hit()) {
		errno = ENOMEM;
		return NULL;
	}
	p = malloc(n);
	if (p)
		pcpu__fault_track(1);
	return p;
}

static inline void *pcpu__calloc(size_t n, size_t size)
{
	void *p;

	if (pcpu__fault_hit()) {
		errno = ENOMEM;
		return NULL;
	}
	p = calloc(n, size);
	if (p)
		pcpu__fault_track(1);
	return p;
}

/* posix_memalign(): 0 or an errno (not set in errno). */
static inline int pcpu__memalign(void **p, size_t align, size_t n)
{
	int err;

	if (pcpu__fault_hit())
		return ENOMEM;
	err = posix_memalign(p, align, n);
	if (!err)
		pcpu__fault_track(1);
	return err;
}

/* free() of a block from one of the three above. */
static inline void pcpu__free_mem(void *p)
{
	if (p)
		pcpu__fault_track(-1);
	free(p);
}

/* An anonymous read-write mapping; MAP_FAILED with errno on failure. */
static inline void *pcpu__mmap(size_t len, int flags)
{
	void *p;

	if (pcpu__fault_hit()) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p != MAP_FAILED)
		pcpu__fault_track(1);
	return p;
}

/* Unmap the whole of a mapping from pcpu__mmap() (or its trimmed part). */
static inline void pcpu__munmap(void *p, size_t len)
{
	pcpu__fault_track(-1);
	munmap(p, len);
}

/* pthread_setspecific(): 0 or an errno. */
static inline int pcpu__setspecific(pthread_key_t key, const void *v)
{
	int err;

	if (pcpu__fault_hit())
		return ENOMEM;
	/* Not counted as held: the value is a TLS address, nothing to
	 * give back. */
	err = pthread_setspecific(key, v);
	return err;
}

#endif /* PCPU_FAULT_H */
