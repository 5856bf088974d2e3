/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Liveness counting and heartbeat round trips of a path (hb.h). */
#include "hb.h"

void rtrs__hb_reset(struct rtrs_hb *h)
{
	atomic_store(&h->rx_seen, false);
	h->missed = 0;
	atomic_store(&h->outstanding, false);
	atomic_store(&h->sent_ns, 0);
	atomic_store(&h->lat_ns, 0);
}

bool rtrs__hb_tick(struct rtrs_hb *h, unsigned missed_max)
{
	if (atomic_exchange(&h->rx_seen, false)) {
		h->missed = 0;
		return true;
	}
	return ++h->missed < missed_max;
}

bool rtrs__hb_want_send(struct rtrs_hb *h, unsigned interval_ms,
			uint64_t now_ns)
{
	if (atomic_load(&h->outstanding) &&
	    now_ns - atomic_load(&h->sent_ns) <=
		    (uint64_t)interval_ms * 1000000ull)
		return false;
	atomic_store(&h->sent_ns, now_ns);
	atomic_store(&h->outstanding, true);
	return true;
}

void rtrs__hb_unsent(struct rtrs_hb *h)
{
	atomic_store(&h->outstanding, false);
}

void rtrs__hb_ack(struct rtrs_hb *h, uint64_t now_ns)
{
	uint64_t rtt, old;

	if (!atomic_exchange(&h->outstanding, false))
		return;         /* not ours, or answered already */
	rtt = now_ns - atomic_load(&h->sent_ns);
	old = atomic_load(&h->lat_ns);
	atomic_store(&h->lat_ns, old ? (old * 7 + rtt) / 8 : rtt);
}
