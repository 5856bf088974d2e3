/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * One library thread runs delayed, non-blocking work: heartbeats, path
 * failure checks, reconnect scheduling, no-path timeouts. Callbacks must not
 * block (a reconnect runs in its own thread; the timer only starts it).
 */
#ifndef RTRS_CORE_TIMER_H
#define RTRS_CORE_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

/* The timer thread's lock (util/lock.h): inside every lock of the roles,
 * which arm timers with theirs held (docs/design.md §5). */
#define RTRS_RANK_TIMER 800

struct rtrs_timer {
	struct rtrs_list node;          /* under the timer lock */
	uint64_t due_ns;
	void (*fn)(struct rtrs_timer *t);
	bool armed, stopped;
};

/* Reference the timer thread (started by the first user). */
int rtrs__timers_get(void);
void rtrs__timers_put(void);

void rtrs__timer_init(struct rtrs_timer *t, void (*fn)(struct rtrs_timer *));
/* (Re)arm @t to fire in @ms. Ignored after rtrs__timer_stop(). */
void rtrs__timer_arm(struct rtrs_timer *t, unsigned ms);
/* Disarm for good; on return @fn will not run again and is not running,
 * unless this is called from a timer callback (then it returns at once). */
void rtrs__timer_stop(struct rtrs_timer *t);

#endif
