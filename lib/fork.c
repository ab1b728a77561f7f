/* SPDX-License-Identifier: MIT */
/*
 * lib/fork.c - fork(), on top of every layer.
 *
 * The child of fork() has one thread, a copy of the one that forked, and
 * memory as the other threads left it: each of them stopped between two
 * of its stores, and none will run again.  So no lock of the library may
 * be held in the child by a thread that is gone, and no update may be
 * left half done.  The prepare handler takes the locks a thread can hold
 * for an unbounded time (the cache layer's, then the allocator mutex) so
 * that the child finds them free; the parent and child handlers release
 * them.  Nothing here waits for an *update*: updates take no lock and
 * never wait (counter.c, lazy.c), so a thread that updates while holding
 * an application lock, or a signal handler that updates while its thread
 * is inside fork(), cannot deadlock with us.  What an update can leave
 * half done is repaired in the child instead: the lazy layer's slot words
 * are reset (lazy.c), and counters whose publication a thread now gone
 * cut short get their published total recomputed (counter.c, from each
 * thread's fold journal).
 *
 * The complete lock order of the library, outermost first.  Every path
 * takes locks in this order; the prepare handler takes the starred ones
 * in it.
 *
 *   lock                             file          held for
 *   -------------------------------  ------------  ---------------------
 * * cache list lock                  cache layer   create/destroy/fork
 * * RCU reclaim thread, paused;      cache layer   (behaves like a lock)
 *   urcu-bp's fork hooks, called
 *   once pcpu_cache_free_rcu() has
 *   run and only when the
 *   application did not call them
 * * each cache's lock and per-CPU    cache layer   depot exchange, drain
 *   lock words
 *   per-slot clean-area words        lazy.c        a pop or a push; only
 *                                                  ever tried, reset in
 *                                                  the child but the one
 *                                                  the forking thread
 *                                                  holds
 * * allocator mutex                  alloc.c       chunk work; a DUAL
 *                                                  upgrade (an update)
 *                                                  only tries it and
 *                                                  holds it with every
 *                                                  signal blocked
 *   counter fold journals            counter.c     not a lock: repaired
 *                                                  in the child
 *
 * A thread's rseq registration is kept by the kernel in the child (fork
 * without CLONE_VM).  The handlers are registered by the library's
 * set-up (pcpu__fork_register(), below), before main() or dlopen()
 * returns, or earlier by the first entry point that runs.
 *
 * Handlers that other libraries registered before these (libpcpu loaded
 * with dlopen() after them) run after these in the prepare phase, with
 * the allocator mutex and the caches' locks already held: such a handler
 * must not wait for a lock that a thread may hold while it calls a
 * function of libpcpu that can wait for one of them (everything that
 * allocates or frees: pcpu_alloc(), pcpu_alloc_lazy(), pcpu_free(),
 * counter init/destroy/share, pcpu_set_nr_slots(), every pcpu_cache_*
 * call but a PCPU_NOWAIT allocation, whenever its per-CPU cache is empty,
 * full or held), the same rule as for malloc(3)'s own fork handling.
 * Updates and reads take no lock, so holding an application lock around
 * them is fine.
 */
#include "internal.h"

#include <pthread.h>

static void pcpu_fork_prepare(void)
{
	pcpu__cache_fork_prepare();
	pcpu__alloc_fork_prepare();
}

static void pcpu_fork_parent(void)
{
	pcpu__alloc_fork_release();
	pcpu__cache_fork_parent();
}

static void pcpu_fork_child(void)
{
	pcpu__lazy_fork_child();
	pcpu__counter_fork_child();
	pcpu__alloc_fork_release();
	pcpu__cache_fork_child();
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_setup(void)
{
	/* Fails only with ENOMEM, at load time; then a fork while another
	 * thread holds a lock of ours is what it is without us. */
	(void)pthread_atfork(pcpu_fork_prepare, pcpu_fork_parent,
			     pcpu_fork_child);
}

/*
 * Called by the run-time's set-up (cpu.c), which every entry point runs
 * first: the one call from a lower layer to this one.  A constructor of
 * this file would not do: a static link takes this object from libpcpu.a
 * only if something refers to it, and callers before the constructors
 * (another constructor, .preinit_array) would fork without handlers.
 */
void pcpu__fork_register(void)
{
	pthread_once(&fork_once, fork_setup);
}
