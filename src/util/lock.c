/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Ranked locks (lock.h): each thread keeps the stack of locks it holds;
 * taking a lock whose rank is not above every held one is a lock-order
 * violation, reported with both names.
 */
#include "lock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef NDEBUG
int rtrs__lock_check;
#else
int rtrs__lock_check = 1;
#endif

#define MAX_HELD 16

struct held {
	const void *lock;
	const char *name;
	unsigned rank;
};

static __thread struct held held[MAX_HELD];
static __thread unsigned nheld;
static __thread char self_id;   /* its address names the thread */

static uintptr_t self(void)
{
	return (uintptr_t)&self_id;
}

int rtrs__lock_check_set(int on)
{
	int old = rtrs__lock_check;

	rtrs__lock_check = on;
	return old;
}

_Noreturn void rtrs__lock_fail(const char *what, const char *name,
			       const char *file, int line)
{
	fprintf(stderr, "rtrs: lock %s: %s at %s:%d\n", name, what, file,
		line);
	abort();
}

/* Before taking @lock: every held lock must rank below it. */
static void push(const void *lock, const char *name, unsigned rank)
{
	for (unsigned i = 0; i < nheld; i++) {
		if (held[i].lock == lock) {
			fprintf(stderr, "rtrs: lock order: %s taken again by "
				"the thread that holds it\n", name);
			abort();
		}
		if (held[i].rank >= rank) {
			fprintf(stderr, "rtrs: lock order: taking %s (rank %u) "
				"while holding %s (rank %u)\n", name, rank,
				held[i].name, held[i].rank);
			abort();
		}
	}
	if (nheld == MAX_HELD) {
		fprintf(stderr, "rtrs: lock order: more than %d locks held "
			"taking %s\n", MAX_HELD, name);
		abort();
	}
	held[nheld++] = (struct held){ lock, name, rank };
}

static void pop(const void *lock, const char *name)
{
	for (unsigned i = nheld; i-- > 0;) {
		if (held[i].lock != lock)
			continue;
		for (; i + 1 < nheld; i++)
			held[i] = held[i + 1];
		nheld--;
		return;
	}
	fprintf(stderr, "rtrs: lock %s released by a thread that does not "
		"hold it\n", name);
	abort();
}

int rtrs__lock_init(struct rtrs_lock *l, unsigned rank, const char *name)
{
	int rc = pthread_mutex_init(&l->m, NULL);

	l->name = name;
	l->rank = rank;
	atomic_init(&l->owner, 0);
	return -rc;
}

void rtrs__lock_destroy(struct rtrs_lock *l)
{
	pthread_mutex_destroy(&l->m);
}

void rtrs__lock(struct rtrs_lock *l)
{
	if (rtrs__lock_check)
		push(l, l->name, l->rank);
	pthread_mutex_lock(&l->m);
	if (rtrs__lock_check)
		atomic_store_explicit(&l->owner, self(), memory_order_relaxed);
}

void rtrs__unlock(struct rtrs_lock *l)
{
	if (rtrs__lock_check) {
		if (atomic_load_explicit(&l->owner, memory_order_relaxed) !=
		    self())
			rtrs__lock_fail("released by a thread that does not "
					"hold it", l->name, __FILE__, __LINE__);
		atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
		pop(l, l->name);
	}
	pthread_mutex_unlock(&l->m);
}

bool rtrs__lock_held(const struct rtrs_lock *l)
{
	return !rtrs__lock_check ||
	       atomic_load_explicit(&l->owner, memory_order_relaxed) == self();
}

int rtrs__cond_wait(pthread_cond_t *c, struct rtrs_lock *l,
		    const struct timespec *abstime)
{
	int rc;

	/* the wait releases @l and takes it again: the same place in the
	 * order, so the held stack stays as it is */
	if (rtrs__lock_check) {
		if (!rtrs__lock_held(l))
			rtrs__lock_fail("waited on without holding it", l->name,
					__FILE__, __LINE__);
		atomic_store_explicit(&l->owner, 0, memory_order_relaxed);
	}
	rc = abstime ? pthread_cond_timedwait(c, &l->m, abstime)
		     : pthread_cond_wait(c, &l->m);
	if (rtrs__lock_check)
		atomic_store_explicit(&l->owner, self(), memory_order_relaxed);
	return -rc;
}

int rtrs__rwlock_init(struct rtrs_rwlock *l, unsigned rank, const char *name)
{
	int rc = pthread_rwlock_init(&l->rw, NULL);

	l->name = name;
	l->rank = rank;
	atomic_init(&l->writer, 0);
	return -rc;
}

int rtrs__rwlock_init_writers(struct rtrs_rwlock *l, unsigned rank,
			      const char *name)
{
	pthread_rwlockattr_t a;
	int rc;

	rc = pthread_rwlockattr_init(&a);
	if (rc)
		return -rc;
	pthread_rwlockattr_setkind_np(&a,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&l->rw, &a);
	pthread_rwlockattr_destroy(&a);
	l->name = name;
	l->rank = rank;
	atomic_init(&l->writer, 0);
	return -rc;
}

void rtrs__rwlock_destroy(struct rtrs_rwlock *l)
{
	pthread_rwlock_destroy(&l->rw);
}

void rtrs__rdlock(struct rtrs_rwlock *l)
{
	if (rtrs__lock_check)
		push(l, l->name, l->rank);
	pthread_rwlock_rdlock(&l->rw);
}

void rtrs__wrlock(struct rtrs_rwlock *l)
{
	if (rtrs__lock_check)
		push(l, l->name, l->rank);
	pthread_rwlock_wrlock(&l->rw);
	if (rtrs__lock_check)
		atomic_store_explicit(&l->writer, self(), memory_order_relaxed);
}

void rtrs__rwunlock(struct rtrs_rwlock *l)
{
	if (rtrs__lock_check) {
		if (atomic_load_explicit(&l->writer, memory_order_relaxed) ==
		    self())
			atomic_store_explicit(&l->writer, 0,
					      memory_order_relaxed);
		pop(l, l->name);
	}
	pthread_rwlock_unlock(&l->rw);
}

bool rtrs__wrlock_held(const struct rtrs_rwlock *l)
{
	return !rtrs__lock_check ||
	       atomic_load_explicit(&l->writer, memory_order_relaxed) == self();
}
