// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's pollers: application-driven progress, the
 * endpoints of a poller drained by the threads that call
 * rtrs__sk_poller_progress(). */
#include "sock.h"

#include <errno.h>
#include <stdlib.h>

int rtrs__sk_poller_create(struct fab_poller **out)
{
	struct fab_poller *pl = calloc(1, sizeof(*pl));
	int ret;

	if (!pl)
		return -ENOMEM;
	pl->ws.epfd = pl->ws.evfd = -1;
	rtrs_list_init(&pl->eps);
	ret = rtrs__lock_init(&pl->lock, RTRS_RANK_SK_POLLER, "sk_poller.lock");
	if (!ret)
		ret = rtrs__fab_evset_init(&pl->ws);
	if (ret) {
		rtrs__fab_evset_fini(&pl->ws);
		free(pl);
		return ret;
	}
	*out = pl;
	return 0;
}

void rtrs__sk_poller_destroy(struct fab_poller *pl)
{
	if (!pl)
		return;
	rtrs__fab_evset_fini(&pl->ws);
	rtrs__lock_destroy(&pl->lock);
	free(pl);
}

/*
 * Which sockets to read: the ones the last poller_wait() saw readable
 * (e->hint), and every one when a call finds nothing twice in a row
 * without a sleep in between (a caller that spins: one epoll_wait(0)
 * then). So at QD 1 a request costs its sendmsg, the sleep and the recv.
 */
int rtrs__sk_poller_progress(struct fab_poller *pl)
{
	struct rtrs_list *pos, *tmp;
	void *tags[16];
	int n = 0, nt = 0;
	bool more = false, look;

	rtrs__lock(&pl->lock);
	look = pl->idle && !pl->waited;
	pl->waited = false;
	atomic_store(&pl->more, false);
	if (look)
		nt = rtrs__fab_evset_ready(&pl->ws, tags, 16);
	rtrs_list_for_each_safe(pos, tmp, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);
		bool rd = e->hint || nt < 0, m = false;

		for (int i = 0; !rd && i < nt; i++)
			rd = tags[i] == e;
		if (!atomic_load(&e->polled) || atomic_load(&e->closing))
			continue;
		e->hint = false;
		n += rtrs__sk_drain(e, rd, &m);
		if (m) {
			e->hint = true;
			more = true;
		}
	}
	pl->idle = n == 0;
	if (more)
		atomic_store(&pl->more, true);
	rtrs__unlock(&pl->lock);
	return n;
}

void rtrs__sk_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	struct rtrs_list *pos;
	void *tags[16];
	int nt;

	if (atomic_load(&pl->more))
		return;
	/* bounded as the loops' sleep */
	if (timeout_ms < 0 || timeout_ms > SK_SWEEP_MS)
		timeout_ms = SK_SWEEP_MS;
	nt = rtrs__fab_evset_wait(&pl->ws, timeout_ms, tags, 16);
	rtrs__lock(&pl->lock);
	pl->waited = true;
	/* a tag is an endpoint of ours only if it is still in the list */
	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		for (int i = 0; i < nt && !e->hint; i++)
			e->hint = tags[i] == e;
		if (nt < 0)
			e->hint = true;
	}
	rtrs__unlock(&pl->lock);
}

void rtrs__sk_poller_wake(struct fab_poller *pl)
{
	rtrs__fab_evset_wake(&pl->ws);
}
