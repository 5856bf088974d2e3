// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Application-driven progress: pollers, whose endpoints' CQs are read
 * by the threads that call rtrs__ofi_poller_progress(). */
#include "ofi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

/* ---- application-driven progress ---- */

int rtrs__ofi_poller_create(struct fab_poller **out)
{
	struct fab_poller *pl = calloc(1, sizeof(*pl));
	int ret;

	if (!pl)
		return -ENOMEM;
	rtrs__lock_init(&pl->lock, RTRS_RANK_OFI_POLLER, "fab_poller.lock");
	rtrs_list_init(&pl->eps);
	ret = rtrs__fab_evset_init(&pl->ws);
	if (ret) {
		rtrs__ofi_poller_destroy(pl);
		return ret;
	}
	*out = pl;
	return 0;
}

void rtrs__ofi_poller_destroy(struct fab_poller *pl)
{
	if (!pl)
		return;
	rtrs__fab_evset_fini(&pl->ws);
	rtrs__lock_destroy(&pl->lock);
	free(pl);
}

/* From rtrs__ofi_ep_create(): the endpoint is not attached to its loop
 * yet, so nothing reads its CQ before this. */
void rtrs__ofi_poller_add(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;

	rtrs__lock(&pl->lock);
	rtrs_list_add_tail(&pl->eps, &e->pnode);
	if (e->cq_fd >= 0 && rtrs__fab_evset_add(&pl->ws, e->cq_fd, e))
		rtrs_err("poller: epoll add fd %d: %d", e->cq_fd, errno);
	rtrs__unlock(&pl->lock);
}

int rtrs__ofi_poller_progress(struct fab_poller *pl)
{
	struct rtrs_list *pos, *tmp;
	int n = 0;

	rtrs__lock(&pl->lock);
	rtrs_list_for_each_safe(pos, tmp, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;       /* its loop flushes it */
		n += rtrs__ofi_drain_cq(e, false);
		if (atomic_exchange(&e->want_tx, false) &&
		    !atomic_load(&e->closing))
			rtrs__ofi_tx_ready(e);
	}
	rtrs__unlock(&pl->lock);
	return n;
}

void rtrs__ofi_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	struct rtrs_list *pos;

	/* as can_block(): tcp may hold data in user space that no fd shows,
	 * and this rearms the fds (net's wait sets) */
	rtrs__lock(&pl->lock);
	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;
		if (atomic_load(&e->want_tx) || rtrs__ofi_busy_cq(e)) {
			rtrs__unlock(&pl->lock);
			return;
		}
	}
	rtrs__unlock(&pl->lock);
	/* bounded as the loops' sleep, a safety net for a provider whose
	 * wait fd would miss a completion: read again within LOOP_SWEEP_MS */
	if (timeout_ms < 0 || timeout_ms > LOOP_SWEEP_MS)
		timeout_ms = LOOP_SWEEP_MS;
	rtrs__fab_evset_wait(&pl->ws, timeout_ms);
}

void rtrs__ofi_poller_wake(struct fab_poller *pl)
{
	rtrs__fab_evset_wake(&pl->ws);
}
