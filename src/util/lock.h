/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Locks with a rank: a mutex (and a read-write lock) that knows its name and
 * its place in a lock order, so that a debug build catches an acquisition
 * out of order and a function can assert that its caller holds a lock.
 *
 * The rule: a thread takes a lock only if its rank is greater than the rank
 * of every lock that thread holds (outermost locks have the lowest ranks).
 * The ranks are written down in each role's LOCK ORDER block (docs/design.md
 * §5); two locks of one rank never nest.
 *
 * The checks run when rtrs__lock_check is on: by default in builds without
 * NDEBUG (the Debug/ASan build), and wherever rtrs__lock_check_set(1) is
 * called (tests/unit/test_lock.c).  A violation prints both locks and
 * aborts.  With the checks off a lock costs one branch more than the
 * pthread call.
 */
#ifndef RTRS_UTIL_LOCK_H
#define RTRS_UTIL_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * The ranks of util's own locks (the whole process's order is the one
 * table of docs/design.md §5): both are leaves, taken under any lock and
 * holding none while held.
 *   RTRS_RANK_WORKQ  workq.c: a work queue's list and stop flag (the
 *                    jobs run with it released)
 *   RTRS_RANK_LOG    log.c: the application's log sink, and the calls
 *                    to it (one line at a time); the last of all
 */
#define RTRS_RANK_WORKQ 900
#define RTRS_RANK_LOG 1000

struct rtrs_lock {
	pthread_mutex_t m;
	const char *name;
	unsigned rank;
	_Atomic uintptr_t owner;        /* the holder's id, 0: free */
};

/* A static lock: RTRS_LOCK_INITIALIZER(rank, "name"). */
#define RTRS_LOCK_INITIALIZER(r, n)                                          \
	{ .m = PTHREAD_MUTEX_INITIALIZER, .name = (n), .rank = (r) }

struct rtrs_rwlock {
	pthread_rwlock_t rw;
	const char *name;
	unsigned rank;
	_Atomic uintptr_t writer;       /* the write holder's id, 0: none */
};

extern int rtrs__lock_check;

/* Turn the checks on or off for the whole process (before any lock is
 * held); returns the previous setting. */
int rtrs__lock_check_set(int on);

/* 0 or -errno of pthread_mutex_init(); @name must outlive the lock. */
int rtrs__lock_init(struct rtrs_lock *l, unsigned rank, const char *name);
void rtrs__lock_destroy(struct rtrs_lock *l);
void rtrs__lock(struct rtrs_lock *l);
void rtrs__unlock(struct rtrs_lock *l);
/* Does the calling thread hold @l?  (Always true with the checks off.) */
bool rtrs__lock_held(const struct rtrs_lock *l);
/* pthread_cond_wait()/timedwait() on @l, which the caller holds: 0 or
 * -ETIMEDOUT (timedwait with @abstime). */
int rtrs__cond_wait(pthread_cond_t *c, struct rtrs_lock *l,
		    const struct timespec *abstime);

int rtrs__rwlock_init(struct rtrs_rwlock *l, unsigned rank, const char *name);
/* The same, preferring writers: a writer waits for the readers in
 * flight, not for every reader that comes after it (glibc's
 * PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP: a reader must never take
 * it again while holding it, which the checks catch). */
int rtrs__rwlock_init_writers(struct rtrs_rwlock *l, unsigned rank,
			      const char *name);
void rtrs__rwlock_destroy(struct rtrs_rwlock *l);
void rtrs__rdlock(struct rtrs_rwlock *l);
void rtrs__wrlock(struct rtrs_rwlock *l);
void rtrs__rwunlock(struct rtrs_rwlock *l);
/* Does the calling thread hold @l for writing?  (True with checks off.) */
bool rtrs__wrlock_held(const struct rtrs_rwlock *l);

/* Abort with @what and the lock's name. */
_Noreturn void rtrs__lock_fail(const char *what, const char *name,
			       const char *file, int line);

/* In a function that says "called with L held". */
#define RTRS_ASSERT_HELD(l)                                                  \
	do {                                                                 \
		if (rtrs__lock_check && !rtrs__lock_held(l))                 \
			rtrs__lock_fail("not held", (l)->name, __FILE__,     \
					__LINE__);                           \
	} while (0)
#define RTRS_ASSERT_WRHELD(l)                                                \
	do {                                                                 \
		if (rtrs__lock_check && !rtrs__wrlock_held(l))               \
			rtrs__lock_fail("not write-held", (l)->name,         \
					__FILE__, __LINE__);                 \
	} while (0)

#endif
