// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's progress: its loops (one thread each, sleeping on
 * the sockets they own and an eventfd), the kicks that bring an
 * endpoint's drain thread back, and the pollers of application-driven
 * progress. */
#include "sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

static struct sk_engine {
	struct rtrs_lock lock;
	unsigned refs;
	unsigned n;                     /* loops running (0: none) */
	struct sk_loop *loops;
} eng = { .lock = RTRS_LOCK_INITIALIZER(RTRS_RANK_SK_ENGINE,
					 "sk_engine.lock") };

/* The endpoint the calling thread drains now (its callbacks run). */
static _Thread_local const struct fab_ep *draining;

bool rtrs__sk_draining(const struct fab_ep *e)
{
	return draining == e;
}

const struct fab_ep *rtrs__sk_drain_enter(const struct fab_ep *e)
{
	const struct fab_ep *prev = draining;

	draining = e;
	return prev;
}

void rtrs__sk_drain_leave(const struct fab_ep *prev)
{
	draining = prev;
}

/* The hooks of the files above (ops.c hands them at engine start). */
static const struct sk_hooks *hk;

/* The loop the calling thread runs, if any. */
static _Thread_local const struct sk_loop *cur_loop;

bool rtrs__sk_on_loop(const struct fab_ep *e)
{
	return cur_loop == e->loop;
}

static void loop_wake(struct sk_loop *l)
{
	uint64_t one = 1;

	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_err_rl("sock: waking a loop: %d", errno);
}

struct sk_loop *rtrs__sk_loop(unsigned idx)
{
	return &eng.loops[idx % eng.n];
}

void rtrs__sk_attach(struct fab_ep *e)
{
	struct sk_loop *l = e->loop;

	rtrs__lock(&l->lock);
	rtrs_list_add_tail(&l->attach, &e->node);
	rtrs__unlock(&l->lock);
	loop_wake(l);
}

void rtrs__sk_attach_pep(struct fab_pep *p)
{
	struct sk_loop *l = p->loop;

	rtrs__lock(&l->lock);
	rtrs_list_add_tail(&l->pattach, &p->node);
	rtrs__unlock(&l->lock);
	loop_wake(l);
}

void rtrs__sk_close(struct fab_ep *e)
{
	struct sk_loop *l = e->loop;

	rtrs__lock(&l->lock);
	rtrs_list_add_tail(&l->close, &e->cls_node);
	rtrs__unlock(&l->lock);
	loop_wake(l);
}

void rtrs__sk_close_pep(struct fab_pep *p)
{
	struct sk_loop *l = p->loop;

	rtrs__lock(&l->lock);
	rtrs_list_add_tail(&l->pclose, &p->cls_node);
	rtrs__unlock(&l->lock);
	loop_wake(l);
}

static void kick(struct fab_ep *e, bool loop)
{
	struct sk_loop *l = e->loop;

	if (!loop && rtrs__sk_draining(e))
		return;
	if (!loop && atomic_load(&e->polled)) {
		atomic_store(&e->poller->more, true);
		rtrs__fab_evset_wake(&e->poller->ws);
		return;
	}
	rtrs__lock(&l->lock);
	if (!e->kick_queued) {
		e->kick_queued = true;
		rtrs_list_add_tail(&l->kick, &e->kick_node);
		atomic_fetch_add(&l->nkick, 1);
	}
	rtrs__unlock(&l->lock);
	/* the loop sets asleep before it looks at nkick, we after we add:
	 * one of the two sees the other */
	if (atomic_load(&l->asleep))
		loop_wake(l);
}

void rtrs__sk_kick(struct fab_ep *e)
{
	kick(e, false);
}

void rtrs__sk_kick_loop(struct fab_ep *e)
{
	kick(e, true);
}

void rtrs__sk_watch(struct fab_ep *e, bool in, bool out)
{
	struct epoll_event ev = { .events = (in ? EPOLLIN : 0u) |
					    (out ? EPOLLOUT : 0u) };
	int epfd;

	if (e->fd < 0 || atomic_load(&e->state) == SK_DOWN)
		return;
	if (atomic_load(&e->polled)) {
		epfd = e->poller->ws.epfd;
		ev.data.ptr = e;
	} else {
		epfd = e->loop->epfd;
		ev.data.ptr = &e->tag;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, e->fd, &ev) && errno != ENOENT)
		rtrs_err_rl("sock: epoll of a socket: %d", errno);
}

/* ---- the loop thread ---- */

/* An endpoint leaves its poller: once its lock is dropped no caller
 * drains it. */
static void poller_leave(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;

	if (!pl)
		return;
	rtrs__lock(&pl->lock);
	rtrs_list_del(&e->pnode);
	rtrs__lock(&e->post_lock);
	if (atomic_load(&e->polled) && e->fd >= 0)
		rtrs__fab_evset_del(&pl->ws, e->fd);
	atomic_store(&e->polled, false);
	rtrs__unlock(&e->post_lock);
	rtrs__unlock(&pl->lock);
}

static void kick_del(struct sk_loop *l, struct fab_ep *e)
{
	rtrs__lock(&l->lock);
	if (e->kick_queued) {
		e->kick_queued = false;
		rtrs_list_del(&e->kick_node);
		atomic_fetch_sub(&l->nkick, 1);
	}
	rtrs__unlock(&l->lock);
}

static void take_lists(struct sk_loop *l)
{
	struct rtrs_list att, cls, patt, pcl, kick, *pos, *tmp;

	rtrs__lock(&l->lock);
	rtrs_list_take(&att, &l->attach);
	rtrs_list_take(&cls, &l->close);
	rtrs_list_take(&patt, &l->pattach);
	rtrs_list_take(&pcl, &l->pclose);
	rtrs_list_take(&kick, &l->kick);
	rtrs_list_for_each(pos, &kick)
		container_of(pos, struct fab_ep, kick_node)->kick_queued = false;
	atomic_store(&l->nkick, 0);
	rtrs__unlock(&l->lock);
	rtrs_list_for_each_safe(pos, tmp, &att) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		rtrs_list_del(&e->node);
		rtrs_list_add_tail(&l->eps, &e->node);
		hk->ep_ready(e, 0);             /* an accepted one: up */
	}
	rtrs_list_for_each_safe(pos, tmp, &patt) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		rtrs_list_del(&p->node);
		rtrs_list_add_tail(&l->peps, &p->node);
	}
	rtrs_list_for_each_safe(pos, tmp, &kick) {
		struct fab_ep *e = container_of(pos, struct fab_ep, kick_node);

		rtrs_list_del(&e->kick_node);
		if (atomic_load(&e->closing))
			continue;
		if (!atomic_load(&e->polled)) {
			bool more = false;

			hk->drain(e, false, &more);
			if (more)
				rtrs__sk_kick(e);
		}
		hk->ep_loop_kicked(e);
	}
	rtrs_list_for_each_safe(pos, tmp, &cls) {
		struct fab_ep *e = container_of(pos, struct fab_ep, cls_node);

		rtrs_list_del(&e->cls_node);
		rtrs_list_del(&e->node);        /* from l->eps */
		poller_leave(e);
		kick_del(l, e);
		hk->ep_finish(e);               /* frees e */
	}
	rtrs_list_for_each_safe(pos, tmp, &pcl) {
		struct fab_pep *p = container_of(pos, struct fab_pep, cls_node);

		rtrs_list_del(&p->cls_node);
		rtrs_list_del(&p->node);        /* from l->peps */
		hk->pep_finish(p);
	}
}

static void sweep(struct sk_loop *l)
{
	uint64_t now = rtrs_now_ms();
	struct rtrs_list *pos, *tmp;

	if (now < l->next_sweep)
		return;
	l->next_sweep = now + SK_SWEEP_MS;
	rtrs_list_for_each_safe(pos, tmp, &l->peps)
		hk->pep_sweep(container_of(pos, struct fab_pep, node), now);
	rtrs_list_for_each_safe(pos, tmp, &l->eps)
		hk->ep_sweep(container_of(pos, struct fab_ep, node), now);
}

static void one_event(struct sk_loop *l, struct sk_tag *t, uint32_t events)
{
	uint64_t v;

	if (t == &l->ev_tag) {
		if (read(l->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			rtrs_err_rl("sock: eventfd read: %d", errno);
		return;
	}
	switch (t->kind) {
	case SK_EP:
		hk->ep_ready(t->obj, events);
		break;
	case SK_PEP:
		hk->pep_ready(t->obj);
		break;
	case SK_PENDING:
		hk->pending_ready(t->obj);
		break;
	}
}

static void *loop_main(void *arg)
{
	struct sk_loop *l = arg;
	struct epoll_event evs[64];

	cur_loop = l;
	while (!atomic_load(&l->stop)) {
		int n, tmo;

		atomic_store(&l->asleep, true);
		tmo = atomic_load(&l->nkick) ? 0 : SK_SWEEP_MS;
		n = epoll_wait(l->epfd, evs, 64, tmo);
		atomic_store(&l->asleep, false);
		for (int i = 0; i < n; i++)
			one_event(l, evs[i].data.ptr, evs[i].events);
		take_lists(l);
		sweep(l);
	}
	take_lists(l);
	return NULL;
}

/* Called with eng.lock held. */
static void engine_stop_locked(void)
{
	for (unsigned i = 0; i < eng.n; i++) {
		struct sk_loop *l = &eng.loops[i];

		atomic_store(&l->stop, true);
		loop_wake(l);
		pthread_join(l->thr, NULL);
		close(l->epfd);
		close(l->evfd);
		rtrs__lock_destroy(&l->lock);
	}
	free(eng.loops);
	eng.loops = NULL;
	eng.n = 0;
}

static int loop_init(struct sk_loop *l, unsigned idx)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->ev_tag };
	int ret;

	l->idx = idx;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rtrs_list_init(&l->attach);
	rtrs_list_init(&l->close);
	rtrs_list_init(&l->pattach);
	rtrs_list_init(&l->pclose);
	rtrs_list_init(&l->kick);
	rtrs_list_init(&l->eps);
	rtrs_list_init(&l->peps);
	ret = rtrs__lock_init(&l->lock, RTRS_RANK_SK_LOOP, "sk_loop.lock");
	if (!ret && (l->epfd < 0 || l->evfd < 0 ||
		     epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev)))
		ret = -errno;
	if (!ret)
		ret = -pthread_create(&l->thr, NULL, loop_main, l);
	if (ret) {
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->evfd >= 0)
			close(l->evfd);
	}
	return ret;
}

int rtrs__sk_engine_start(const struct sk_hooks *hooks)
{
	unsigned n = rtrs__fab_usable_cpus();
	int ret = 0;

	if (n < 1)
		n = 1;
	if (n > SK_MAX_LOOPS)
		n = SK_MAX_LOOPS;
	rtrs__lock(&eng.lock);
	if (eng.n) {
		rtrs__unlock(&eng.lock);
		return 0;
	}
	hk = hooks;
	eng.loops = calloc(n, sizeof(*eng.loops));
	if (!eng.loops) {
		rtrs__unlock(&eng.lock);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n && !ret; i++) {
		ret = loop_init(&eng.loops[i], i);
		if (!ret)
			eng.n = i + 1;
	}
	if (ret)
		engine_stop_locked();
	rtrs__unlock(&eng.lock);
	return ret;
}

/* A reference only: the loops start with the first domain
 * (rtrs__sk_engine_start()), so a process that never uses this backend
 * runs no thread of it. */
int rtrs__sk_engine_get(void)
{
	rtrs__lock(&eng.lock);
	eng.refs++;
	rtrs__unlock(&eng.lock);
	return 0;
}

void rtrs__sk_engine_put(void)
{
	rtrs__lock(&eng.lock);
	if (eng.refs && !--eng.refs)
		engine_stop_locked();
	rtrs__unlock(&eng.lock);
}

unsigned rtrs__sk_nloops(void)
{
	return eng.n ? eng.n : 1;
}
