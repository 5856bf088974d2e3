/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Liveness of a path, shared by both roles: traffic received since the last
 * heartbeat tick keeps a path alive; @missed_max ticks in a row without any
 * make it dead.  The client keeps one heartbeat in flight and takes the
 * round trip of each answered one as a latency sample (min-latency policy,
 * rtrs_path_info.cur_latency_ns).  Pure logic on atomics: no lock, no
 * fabric; tests/unit/test_hb.c.
 *
 * Threads: rtrs__hb_rx() and rtrs__hb_ack() on progress threads, the rest
 * on the timer thread (one tick at a time per path).
 */
#ifndef RTRS_CORE_HB_H
#define RTRS_CORE_HB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct rtrs_hb {
	atomic_bool rx_seen;            /* traffic since the last tick */
	unsigned missed;                /* ticks without (timer thread) */
	atomic_bool outstanding;        /* one sent, its answer not seen */
	_Atomic uint64_t sent_ns;       /* when it was sent */
	_Atomic uint64_t lat_ns;        /* smoothed round trip, 0: none */
};

/* A fresh start (a path connected again). */
void rtrs__hb_reset(struct rtrs_hb *h);

/* Something arrived on the path. */
static inline void rtrs__hb_rx(struct rtrs_hb *h)
{
	atomic_store_explicit(&h->rx_seen, true, memory_order_relaxed);
}

/* One tick: true while the path is alive, false once @missed_max ticks in
 * a row saw nothing (h->missed says how many). */
bool rtrs__hb_tick(struct rtrs_hb *h, unsigned missed_max);

/* Send a heartbeat now?  When none is in flight, or the one in flight is
 * older than @interval_ms (lost: send again).  If so it is counted as sent
 * at @now_ns; rtrs__hb_unsent() takes that back when the post fails. */
bool rtrs__hb_want_send(struct rtrs_hb *h, unsigned interval_ms,
			uint64_t now_ns);
void rtrs__hb_unsent(struct rtrs_hb *h);

/* The answer to our heartbeat arrived at @now_ns: a round-trip sample,
 * smoothed like TCP's srtt (7/8 old + 1/8 new). */
void rtrs__hb_ack(struct rtrs_hb *h, uint64_t now_ns);

static inline uint64_t rtrs__hb_latency_ns(struct rtrs_hb *h)
{
	return atomic_load_explicit(&h->lat_ns, memory_order_relaxed);
}

#endif
