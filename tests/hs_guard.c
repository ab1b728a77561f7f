/* SPDX-License-Identifier: MIT */
/*
 * tests/hs_guard.c - LD_PRELOAD helper of tests/hidden-sysfs.sh.
 *
 * Every posix_memalign(), aligned_alloc() and memalign() block of up to
 * 64 KiB (alignment up to a page) is placed so that it ends right before a
 * PROT_NONE page: an array indexed past its end (a slot index at or above
 * the slot count the library sized it for) faults at once instead of
 * corrupting the heap quietly.  free() recognizes these blocks and unmaps
 * them.  Built as a libtool module (tests/repro.mk); not for production.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#define HS_MAX_BLOCKS	4096
#define HS_MAX_SIZE	((size_t)64 << 10)

struct hs_block {
	void *user;	/* what the caller got; NULL: free entry */
	void *base;	/* the mapping */
	size_t len;
};

static struct hs_block blocks[HS_MAX_BLOCKS];
static int lock;

static void hs_lock(void)
{
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		;
}

static void hs_unlock(void)
{
	__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

/* A guarded block, or NULL (then the caller uses the real allocator). */
static void *hs_guarded(size_t align, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), body, len;
	char *m, *p;
	unsigned i;

	if (n == 0 || n > HS_MAX_SIZE || align > page || align == 0 ||
	    (align & (align - 1)))
		return NULL;
	body = (n + align - 1) & ~(align - 1);
	len = ((body + page - 1) & ~(page - 1)) + page;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m + len - page, page, PROT_NONE) != 0) {
		munmap(m, len);
		return NULL;
	}
	p = m + len - page - body;
	hs_lock();
	for (i = 0; i < HS_MAX_BLOCKS; i++) {
		if (!blocks[i].user) {
			blocks[i].user = p;
			blocks[i].base = m;
			blocks[i].len = len;
			break;
		}
	}
	hs_unlock();
	if (i == HS_MAX_BLOCKS) {
		munmap(m, len);
		return NULL;
	}
	return p;
}

/* 1 if @p was ours (now unmapped). */
static int hs_release(void *p)
{
	void *base = NULL;
	size_t len = 0;
	unsigned i;

	if (!p)
		return 0;
	hs_lock();
	for (i = 0; i < HS_MAX_BLOCKS; i++) {
		if (blocks[i].user == p) {
			base = blocks[i].base;
			len = blocks[i].len;
			blocks[i].user = NULL;
			break;
		}
	}
	hs_unlock();
	if (!base)
		return 0;
	munmap(base, len);
	return 1;
}

int posix_memalign(void **out, size_t align, size_t n)
{
	static int (*real)(void **, size_t, size_t);
	void *p = hs_guarded(align, n);

	if (p) {
		*out = p;
		return 0;
	}
	if (!real)
		real = (int (*)(void **, size_t, size_t))
			dlsym(RTLD_NEXT, "posix_memalign");
	return real ? real(out, align, n) : ENOMEM;
}

void *aligned_alloc(size_t align, size_t n)
{
	static void *(*real)(size_t, size_t);
	void *p = hs_guarded(align, n);

	if (p)
		return p;
	if (!real)
		real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT,
							"aligned_alloc");
	return real ? real(align, n) : NULL;
}

void *memalign(size_t align, size_t n)
{
	static void *(*real)(size_t, size_t);
	void *p = hs_guarded(align, n);

	if (p)
		return p;
	if (!real)
		real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	return real ? real(align, n) : NULL;
}

void free(void *p)
{
	static void (*real)(void *);

	if (hs_release(p))
		return;
	if (!real)
		real = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	if (real)
		real(p);
}
