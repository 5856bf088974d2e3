// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Application-driven progress on the rdma-core backend (RTRS_POLL): a
 * poller's endpoints have their CQs read by the threads that call
 * rtrs__rd_poller_progress(), which run the core's completions and
 * tx_ready under the poller's lock; the loop thread keeps their CM events
 * and their close (it takes a closing endpoint out of the poller first:
 * loop.c). The model of the libfabric backend's (ofi/poller.c). */
#include "rdma.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"

int rtrs__rd_poller_create(struct fab_poller **out)
{
	struct fab_poller *pl = calloc(1, sizeof(*pl));
	int ret;

	if (!pl)
		return -ENOMEM;
	rtrs__lock_init(&pl->lock, RTRS_RANK_RD_POLLER, "rd_poller.lock");
	rtrs_list_init(&pl->eps);
	ret = rtrs__fab_evset_init(&pl->ws);
	if (ret) {
		rtrs__rd_poller_destroy(pl);
		return ret;
	}
	*out = pl;
	return 0;
}

void rtrs__rd_poller_destroy(struct fab_poller *pl)
{
	if (!pl)
		return;
	rtrs__fab_evset_fini(&pl->ws);
	rtrs__lock_destroy(&pl->lock);
	free(pl);
}

void rtrs__rd_poller_add(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;

	rtrs__lock(&pl->lock);
	rtrs_list_add_tail(&pl->eps, &e->pnode);
	if (rtrs__fab_evset_add(&pl->ws, e->cch->fd, e))
		rtrs_err("rdma: poller: epoll of a CQ: %d", errno);
	rtrs__unlock(&pl->lock);
}

int rtrs__rd_poller_progress(struct fab_poller *pl)
{
	struct rtrs_list *pos, *tmp;
	bool more = false;
	int n = 0;

	rtrs__lock(&pl->lock);
	rtrs_list_for_each_safe(pos, tmp, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);
		int d;

		if (atomic_load(&e->closing))
			continue;       /* its loop flushes it */
		d = rtrs__rd_drain_cq(e);
		more |= d >= RD_CQ_BUDGET;
		n += d;
		rtrs__rd_tx_ready(e);
	}
	atomic_store(&pl->more, more);
	rtrs__unlock(&pl->lock);
	return n;
}

/* Each CQ was armed by the last read of it (rtrs__rd_drain_cq()), so a
 * completion since then is an event on its channel. */
void rtrs__rd_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	struct rtrs_list *pos;

	if (atomic_load(&pl->more))
		return;
	rtrs__lock(&pl->lock);
	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (!atomic_load(&e->closing) && atomic_load(&e->want_tx)) {
			rtrs__unlock(&pl->lock);
			return;
		}
	}
	rtrs__unlock(&pl->lock);
	/* bounded as the loop's sleep */
	if (timeout_ms < 0 || timeout_ms > RD_SWEEP_MS)
		timeout_ms = RD_SWEEP_MS;
	rtrs__fab_evset_wait(&pl->ws, timeout_ms, NULL, 0);
}

void rtrs__rd_poller_wake(struct fab_poller *pl)
{
	rtrs__fab_evset_wake(&pl->ws);
}
