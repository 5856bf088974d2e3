// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Application-driven progress on the rdma-core backend (RTRS_POLL): a
 * poller's endpoints have their CQs read by the threads that call
 * rtrs__rd_poller_progress(), which run the core's completions and
 * tx_ready under the poller's lock; the loop thread keeps their CM events
 * and their close (it takes a closing endpoint out of the poller first:
 * loop.c). The model of the libfabric backend's (ofi/poller.c). */
#include "rdma.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

int rtrs__rd_poller_create(struct fab_poller **out)
{
	struct fab_poller *pl = calloc(1, sizeof(*pl));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int ret;

	if (!pl)
		return -ENOMEM;
	rtrs__lock_init(&pl->lock, RTRS_RANK_RD_POLLER, "rd_poller.lock");
	rtrs_list_init(&pl->eps);
	pl->epfd = epoll_create1(EPOLL_CLOEXEC);
	pl->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pl->epfd < 0 || pl->evfd < 0 ||
	    epoll_ctl(pl->epfd, EPOLL_CTL_ADD, pl->evfd, &ev)) {
		ret = -errno;
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
	if (pl->epfd >= 0)
		close(pl->epfd);
	if (pl->evfd >= 0)
		close(pl->evfd);
	rtrs__lock_destroy(&pl->lock);
	free(pl);
}

void rtrs__rd_poller_add(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };

	rtrs__lock(&pl->lock);
	rtrs_list_add_tail(&pl->eps, &e->pnode);
	if (epoll_ctl(pl->epfd, EPOLL_CTL_ADD, e->cch->fd, &ev))
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
	struct epoll_event evs[8];
	struct rtrs_list *pos;
	int n;

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
	n = epoll_wait(pl->epfd, evs, 8, timeout_ms);
	for (int i = 0; i < n; i++) {
		uint64_t v;

		if (!evs[i].data.ptr &&
		    read(pl->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			rtrs_err_rl("rdma: poller: eventfd read %d", errno);
	}
}

void rtrs__rd_poller_wake(struct fab_poller *pl)
{
	uint64_t one = 1;

	if (write(pl->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_dbg("rdma: waking a poller: %d", errno);
}
