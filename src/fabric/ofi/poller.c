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

/* Under the lock: the endpoints among @n @tags are not quiet any more;
 * all of them when @n is -1. */
static void unquiet(struct fab_poller *pl, void *const *tags, int n)
{
	struct rtrs_list *pos;

	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		for (int i = 0; i < n; i++)
			if (tags[i] == e)
				e->cq_quiet = false;
		if (n < 0)
			e->cq_quiet = false;
	}
}

/*
 * Quiet endpoints. A poller holds all the connections of a session, and
 * mostly one of them is busy: reading every CQ on every call, and checking
 * every one before sleeping, cost two or three epoll_wait()s per idle
 * endpoint per IO. So an endpoint whose check before sleeping found its CQ
 * empty and its wait fd rearmed (rtrs__ofi_busy_cq(), as a loop's
 * can_block()) is quiet: skipped until its wait fd shows readable, which
 * one epoll_wait() of the poller's set tells for all of them at once: the
 * sleep's, or, on a call that did not follow one, a look without it. What
 * could give it work later shows on that fd: data on its socket, and a
 * completion written by a post from any thread (the provider signals the
 * CQ's wait object). A post of the poller's own (tx_ready) and the sweep,
 * every LOOP_SWEEP_MS, end quietness too, as a safety net like the loops'.
 *
 * The look costs a system call, and an application at QD 1 calls twice
 * per IO: once after the sleep (which told), and once after its next
 * submission, when the read finds nothing and the sleep follows (which
 * will tell). So it looks only when the previous call found nothing (a
 * caller that reads without sleeping) or POLLER_LOOK_EVERY calls went
 * by without a look or a sleep (one kept busy by its other endpoints).
 */
#define POLLER_LOOK_EVERY 4

static void wake_quiet(struct fab_poller *pl, bool sweep)
{
	void *tags[8];
	struct rtrs_list *pos;
	bool any = false;

	rtrs_list_for_each(pos, &pl->eps)
		any |= container_of(pos, struct fab_ep, pnode)->cq_quiet;
	if (!any)
		return;
	if (sweep) {
		unquiet(pl, NULL, -1);
	} else if (!pl->woke &&
		   (pl->idle || ++pl->calls >= POLLER_LOOK_EVERY)) {
		pl->calls = 0;
		unquiet(pl, tags, rtrs__fab_evset_ready(&pl->ws, tags, 8));
	}
}

int rtrs__ofi_poller_progress(struct fab_poller *pl)
{
	struct rtrs_list *pos, *tmp;
	uint64_t now = rtrs_now_ns();
	bool sweep;
	int n = 0;

	rtrs__lock(&pl->lock);
	sweep = !pl->no_sweep &&
		now - pl->swept_ns >= LOOP_SWEEP_MS * 1000000ull;
	if (sweep)
		pl->swept_ns = now;
	wake_quiet(pl, sweep);
	pl->woke = false;
	rtrs_list_for_each_safe(pos, tmp, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;       /* its loop flushes it */
		/* first: what it asked for may be in the CQ, or wait for a
		 * read (a frame held for a receive the core just posted,
		 * swrma.c; a message the provider held back, post.c) */
		if (atomic_exchange(&e->want_tx, false) &&
		    !atomic_load(&e->closing)) {
			rtrs__ofi_tx_ready(e);
			e->cq_quiet = false;
		}
		if (!e->cq_quiet)
			n += rtrs__ofi_drain_cq(e, false);
	}
	pl->idle = !n;
	rtrs__unlock(&pl->lock);
	return n;
}

void rtrs__ofi_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	struct rtrs_list *pos;
	void *tags[8];
	int n;

	/* as can_block(): tcp may hold data in user space that no fd shows,
	 * and this rearms the fds (net's wait sets) */
	rtrs__lock(&pl->lock);
	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;
		if (atomic_load(&e->want_tx)) {
			rtrs__unlock(&pl->lock);
			return;
		}
		if (e->cq_quiet)
			continue;
		if (rtrs__ofi_busy_cq(e)) {
			rtrs__unlock(&pl->lock);
			return;
		}
		e->cq_quiet = e->cq_fd >= 0;      /* no fd: never skipped */
	}
	rtrs__unlock(&pl->lock);
	/* bounded as the loops' sleep, a safety net for a provider whose
	 * wait fd would miss a completion: read again within LOOP_SWEEP_MS */
	if (timeout_ms < 0 || timeout_ms > LOOP_SWEEP_MS)
		timeout_ms = LOOP_SWEEP_MS;
	n = rtrs__fab_evset_wait(&pl->ws, timeout_ms, tags, 8);
	rtrs__lock(&pl->lock);
	unquiet(pl, tags, n);
	pl->woke = true;
	pl->calls = 0;
	rtrs__unlock(&pl->lock);
}

void rtrs__ofi_poller_no_sweep(struct fab_poller *pl)
{
	rtrs__lock(&pl->lock);
	pl->no_sweep = true;
	rtrs__unlock(&pl->lock);
}

void rtrs__ofi_poller_wake(struct fab_poller *pl)
{
	rtrs__fab_evset_wake(&pl->ws);
}
