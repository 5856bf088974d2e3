// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's endpoints and listeners: connect, the hello each
 * way (sock.h), accept and reject, going down, closing. */
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/log.h"

static const uint8_t hello_magic[8] = { 'R', 'T', 'R', 'S', 'S', 'O', 'C', 'K' };

static size_t hello_put(uint8_t *b, unsigned type, const void *data,
			size_t len)
{
	memcpy(b, hello_magic, 8);
	b[8] = (uint8_t)type;
	b[9] = SK_VERSION;
	b[10] = (uint8_t)(len & 0xff);
	b[11] = (uint8_t)(len >> 8);
	if (len)
		memcpy(b + SK_HELLO_LEN, data, len);
	return SK_HELLO_LEN + len;
}

/* The header of a hello at @b (SK_HELLO_LEN bytes): its private data's
 * length, or -EPROTO (not a hello of ours: another protocol on the
 * port, libfabric's tcp for one). */
static int hello_check(const uint8_t *b, unsigned type)
{
	size_t len = (size_t)b[10] | (size_t)b[11] << 8;

	if (memcmp(b, hello_magic, 8) || b[9] != SK_VERSION ||
	    (type && b[8] != type) || len > SK_PRIV_MAX)
		return -EPROTO;
	return (int)len;
}

/* Private data longer than a hello takes: the tail must be zero
 * (fabric.h), and goes unsent. */
static int priv_len(const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > SK_PRIV_MAX) {
		if (p[len - 1])
			return -EMSGSIZE;
		len--;
	}
	return (int)len;
}

static int ep_new(struct fab_dom *d, int fd, unsigned loop,
		  const struct fab_ep_ops *ops, void *ctx, struct fab_ep **out)
{
	struct fab_ep *e = calloc(1, sizeof(*e));
	int ret;

	if (!e)
		return -ENOMEM;
	e->rx = malloc(SK_RXCAP);
	if (!e->rx) {
		free(e);
		return -ENOMEM;
	}
	ret = rtrs__lock_init(&e->post_lock, RTRS_RANK_SK_POST,
			      "sk_ep.post_lock");
	if (ret) {
		free(e->rx);
		free(e);
		return ret;
	}
	e->obj = d->obj;
	e->tag.kind = SK_EP;
	e->tag.obj = e;
	rtrs_list_init(&e->node);
	rtrs_list_init(&e->cls_node);
	rtrs_list_init(&e->kick_node);
	rtrs_list_init(&e->pnode);
	e->dom = d;
	e->loop = rtrs__sk_loop(loop);
	e->fd = fd;
	e->ops = ops;
	e->ctx = ctx;
	e->frag = RTRS_PROTO_FRAME_MIN;
	atomic_init(&e->state, SK_IDLE);
	rtrs__sk_dom_get(d);
	*out = e;
	return 0;
}

int rtrs__sk_ep_create(struct fab_dom *d, unsigned loop,
		       struct fab_poller *poller, const struct fab_ep_ops *ops,
		       void *ctx, struct fab_ep **out)
{
	struct fab_ep *e;
	int fd, ret;

	if (!d->dst_len)
		return -EINVAL;         /* a listener's domain */
	fd = socket(d->dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = rtrs__sk_sock_setup(fd);
	if (!ret && d->has_src &&
	    bind(fd, (const struct sockaddr *)&d->src, d->src_len))
		ret = -errno;
	if (!ret)
		ret = ep_new(d, fd, loop, ops, ctx, &e);
	if (ret) {
		close(fd);
		return ret;
	}
	rtrs__fab_addr_str((const struct sockaddr *)&d->dst, e->peer,
			  sizeof(e->peer));
	e->poller = poller;
	if (poller) {
		rtrs__lock(&poller->lock);
		rtrs_list_add_tail(&poller->eps, &e->pnode);
		rtrs__unlock(&poller->lock);
	}
	*out = e;
	rtrs__sk_attach(e);
	return 0;
}

int rtrs__sk_ep_connect(struct fab_ep *e, const void *data, size_t len)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &e->tag };
	int n = priv_len(data, len), ret = 0;

	if (n < 0)
		return n;
	rtrs__lock(&e->post_lock);
	if (e->dead || e->passive || atomic_load(&e->state) != SK_IDLE) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	/* the hello goes first, from the backlog, once connected */
	if (!e->bl) {
		e->bl_cap = 64u << 10;
		e->bl = malloc(e->bl_cap);
		if (!e->bl) {
			e->bl_cap = 0;
			rtrs__unlock(&e->post_lock);
			return -ENOMEM;
		}
	}
	e->hello_len = hello_put(e->bl, SK_HELLO_CONNECT, data, (size_t)n);
	e->bl_off = 0;
	e->bl_len = e->hello_len;
	e->hello_by_ms = rtrs_now_ms() + SK_HELLO_MS;
	if (connect(e->fd, (const struct sockaddr *)&e->dom->dst,
		    e->dom->dst_len) && errno != EINPROGRESS)
		ret = -errno;
	if (!ret) {
		atomic_store(&e->state, SK_CONNECTING);
		e->out_armed = true;
		if (epoll_ctl(e->loop->epfd, EPOLL_CTL_ADD, e->fd, &ev))
			ret = -errno;
	}
	rtrs__unlock(&e->post_lock);
	return ret;
}

int rtrs__sk_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			      unsigned loop, const struct fab_ep_ops *ops,
			      void *ctx, struct fab_ep **out)
{
	struct fab_ep *e;
	int ret;

	if (!req || !req->p || req->taken || req->p->fd < 0)
		return -EINVAL;
	ret = ep_new(d, req->p->fd, loop, ops, ctx, &e);
	if (ret)
		return ret;
	e->passive = true;
	memcpy(e->peer, req->p->peer, sizeof(e->peer));
	req->p->fd = -1;
	req->taken = true;
	*out = e;
	return 0;
}

int rtrs__sk_ep_accept(struct fab_ep *e, const void *data, size_t len)
{
	int n = priv_len(data, len);

	if (n < 0)
		return n;
	rtrs__lock(&e->post_lock);
	if (e->dead || !e->passive || atomic_load(&e->state) != SK_IDLE) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	e->bl_cap = 64u << 10;
	e->bl = malloc(e->bl_cap);
	if (!e->bl) {
		e->bl_cap = 0;
		rtrs__unlock(&e->post_lock);
		return -ENOMEM;
	}
	/* frames may follow our hello at once: the client reads it first */
	e->bl_len = hello_put(e->bl, SK_HELLO_ACCEPT, data, (size_t)n);
	atomic_store(&e->state, SK_UP);
	rtrs__unlock(&e->post_lock);
	/* its loop tells the core it is up, then watches the socket */
	rtrs__sk_attach(e);
	return 0;
}

int rtrs__sk_reject(struct fab_pep *pep, struct fab_connreq *req,
		    const void *data, size_t len)
{
	uint8_t b[SK_HELLO_LEN + SK_PRIV_MAX];
	int n = priv_len(data, len);
	size_t l;

	(void)pep;
	if (n < 0)
		return n;
	if (!req || !req->p || req->taken || req->p->fd < 0)
		return -EINVAL;
	l = hello_put(b, SK_HELLO_REJECT, data, (size_t)n);
	/* into an empty socket buffer: whole, or the peer sees it gone */
	if (send(req->p->fd, b, l, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)l)
		rtrs_dbg("sock: %s: the reject did not go: %d", req->p->peer,
			 errno);
	req->rejected = true;
	return 0;
}

void rtrs__sk_ep_close(struct fab_ep *e)
{
	if (atomic_exchange(&e->closing, true))
		return;
	rtrs__sk_close(e);
}

void rtrs__sk_ep_set_scope(struct fab_ep *e, const void *scope)
{
	e->scope = scope;
}

void rtrs__sk_ep_want_tx(struct fab_ep *e)
{
	atomic_store(&e->want_tx, true);
	rtrs__lock(&e->post_lock);
	if (!e->dead)
		rtrs__sk_kick(e);
	rtrs__unlock(&e->post_lock);
}

const struct fab_caps *rtrs__sk_ep_caps(const struct fab_ep *e)
{
	return &e->dom->caps;
}


int rtrs__sk_ep_name(const struct fab_ep *e, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (e->fd < 0 || getsockname(e->fd, (struct sockaddr *)&ss, &sl))
		return -ENOTCONN;
	return rtrs__fab_addr_str((struct sockaddr *)&ss, buf, len);
}

/* ---- the loop's side ---- */





/* Up: its socket goes to the poller's set, whose callers read it from
 * now on (what came with the hello is parsed at their next call). */
static void to_poller(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = e };

	rtrs__lock(&pl->lock);
	rtrs__lock(&e->post_lock);
	if (atomic_load(&e->state) == SK_UP && e->fd >= 0) {
		epoll_ctl(e->loop->epfd, EPOLL_CTL_DEL, e->fd, NULL);
		if (e->out_armed)
			ev.events |= EPOLLOUT;
		if (epoll_ctl(pl->ws.epfd, EPOLL_CTL_ADD, e->fd, &ev))
			rtrs_err("sock: poller: epoll of a socket: %d", errno);
		atomic_store(&e->polled, true);
		e->hint = true;
	}
	rtrs__unlock(&e->post_lock);
	rtrs__unlock(&pl->lock);
	atomic_store(&pl->more, true);
	rtrs__fab_evset_wake(&pl->ws);
}

/* An accepted endpoint reached its loop: up, and watched. */
static void passive_up(struct fab_ep *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &e->tag };

	e->cm_up_told = true;
	e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, NULL, 0);
	if (atomic_load(&e->closing))
		return;
	rtrs__lock(&e->post_lock);
	if (atomic_load(&e->state) == SK_UP &&
	    epoll_ctl(e->loop->epfd, EPOLL_CTL_ADD, e->fd, &ev))
		rtrs_err("sock: epoll of a socket: %d", errno);
	rtrs__unlock(&e->post_lock);
	rtrs__sk_flush_out(e);  /* our hello, and what the core posted */
}

/* The client: the socket connected (or not). */
static void connected(struct fab_ep *e)
{
	int err = 0;
	socklen_t l = sizeof(err);

	if (getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &l) || err) {
		rtrs__sk_ep_down(e, err ? -err : -errno);
		return;
	}
	rtrs__lock(&e->post_lock);
	atomic_store(&e->state, SK_HELLO_WAIT);
	e->out_armed = true;
	rtrs__sk_watch(e, true, true);
	rtrs__unlock(&e->post_lock);
	rtrs__sk_flush_out(e);
}

/* The client: the server's hello. */
static void hello_in(struct fab_ep *e)
{
	uint8_t priv[SK_PRIV_MAX];
	ssize_t r;
	int n;

	do
		r = recv(e->fd, e->rx + e->rfill, SK_RXCAP - e->rfill,
			 MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		rtrs__sk_ep_down(e, r ? -errno : -ECONNRESET);
		return;
	}
	if (r > 0)
		e->rfill += (size_t)r;
	if (e->rfill < SK_HELLO_LEN)
		return;
	n = hello_check(e->rx, 0);
	if (n < 0 || (e->rx[8] != SK_HELLO_ACCEPT &&
		      e->rx[8] != SK_HELLO_REJECT)) {
		rtrs_err("sock: %s: the answer is not a hello of ours "
			 "(another protocol on that port?)", e->peer);
		rtrs__sk_ep_down(e, -EPROTO);
		return;
	}
	if (e->rfill < SK_HELLO_LEN + (size_t)n)
		return;
	memcpy(priv, e->rx + SK_HELLO_LEN, (size_t)n);
	e->rpos = SK_HELLO_LEN + (size_t)n;
	if (e->rx[8] == SK_HELLO_REJECT) {
		rtrs__sk_ep_down(e, 0);
		e->cm_down_told = true;
		e->ops->cm(e->ctx, FAB_CM_REJECTED, -ECONNREFUSED, priv,
			   (size_t)n);
		return;
	}
	atomic_store(&e->state, SK_UP);
	e->cm_up_told = true;
	e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, priv, (size_t)n);
	if (atomic_load(&e->closing))
		return;
	if (e->poller) {
		to_poller(e);
	} else {
		bool more = false;

		rtrs__sk_drain(e, false, &more);
		if (more)
			rtrs__sk_kick(e);
	}
}

void rtrs__sk_ep_ready(struct fab_ep *e, uint32_t events)
{
	bool more = false;

	if (atomic_load(&e->closing))
		return;
	switch (atomic_load(&e->state)) {
	case SK_UP:
		if (!events) {
			if (e->passive && !e->cm_up_told)
				passive_up(e);
			return;
		}
		if (atomic_load(&e->polled))
			return;         /* the poller's now */
		rtrs__sk_drain(e, events & (EPOLLIN | EPOLLERR | EPOLLHUP),
			       &more);
		if (more)
			rtrs__sk_kick(e);
		return;
	case SK_CONNECTING:
		if (events)
			connected(e);
		return;
	case SK_HELLO_WAIT:
		if (events & EPOLLOUT)
			rtrs__sk_flush_out(e);
		if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			hello_in(e);
		return;
	default:
		return;
	}
}

void rtrs__sk_ep_sweep(struct fab_ep *e, uint64_t now_ms)
{
	int st = atomic_load(&e->state);

	if ((st == SK_CONNECTING || st == SK_HELLO_WAIT) &&
	    now_ms >= e->hello_by_ms && !atomic_load(&e->closing)) {
		rtrs_err("sock: %s: no answer to the connect in %u ms", e->peer,
			 SK_HELLO_MS);
		rtrs__sk_ep_down(e, -ETIMEDOUT);
	}
}

void rtrs__sk_ep_finish(struct fab_ep *e)
{
	int fd;

	rtrs__lock(&e->post_lock);
	e->dead = true;
	fd = e->fd;
	rtrs__unlock(&e->post_lock);
	if (fd >= 0) {
		epoll_ctl(e->loop->epfd, EPOLL_CTL_DEL, fd, NULL);
		close(fd);
	}
	rtrs__lock(&e->post_lock);
	e->fd = -1;
	rtrs__unlock(&e->post_lock);
	rtrs__sk_flush_all(e);
	e->ops->closed(e->ctx);
	rtrs__lock_destroy(&e->post_lock);
	rtrs__sk_dom_put(e->dom);
	free(e->rx);
	free(e->bl);
	free(e);
}

/* ---- listeners ---- */

int rtrs__sk_pep_open(struct fab_dom *d, unsigned loop,
		      const struct fab_pep_ops *ops, void *ctx,
		      struct fab_pep **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct fab_pep *p;
	int ret;

	if (d->lfd < 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	ret = rtrs__lock_init(&p->lock, RTRS_RANK_SK_PEP, "sk_pep.lock");
	if (ret) {
		free(p);
		return ret;
	}
	pthread_cond_init(&p->cond, NULL);
	p->obj = d->obj;
	p->tag.kind = SK_PEP;
	p->tag.obj = p;
	rtrs_list_init(&p->node);
	rtrs_list_init(&p->cls_node);
	rtrs_list_init(&p->pending);
	p->dom = d;
	p->loop = rtrs__sk_loop(loop);
	p->ops = ops;
	p->ctx = ctx;
	p->fd = d->lfd;
	/* at the open-file limit a connection is accepted with this one
	 * and closed at once (shed), where it would stay queued forever */
	p->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ev.data.ptr = &p->tag;
	if (listen(p->fd, SOMAXCONN) || rtrs__sk_sock_setup(p->fd) ||
	    epoll_ctl(p->loop->epfd, EPOLL_CTL_ADD, p->fd, &ev)) {
		ret = -errno;
		if (p->spare_fd >= 0)
			close(p->spare_fd);
		pthread_cond_destroy(&p->cond);
		rtrs__lock_destroy(&p->lock);
		free(p);
		return ret;
	}
	d->lfd = -1;
	if (!getsockname(p->fd, (struct sockaddr *)&ss, &sl))
		rtrs__fab_addr_str((struct sockaddr *)&ss, p->name,
				  sizeof(p->name));
	rtrs__sk_dom_get(d);
	*out = p;
	rtrs__sk_attach_pep(p);
	return 0;
}

static void pending_drop(struct sk_pending *q)
{
	rtrs_list_del(&q->node);
	if (q->fd >= 0) {
		epoll_ctl(q->pep->loop->epfd, EPOLL_CTL_DEL, q->fd, NULL);
		close(q->fd);
	}
	free(q);
}

void rtrs__sk_pep_ready(struct fab_pep *p)
{
	for (int i = 0; i < 32 && !atomic_load(&p->closing); i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { .events = EPOLLIN };
		struct sk_pending *q;
		int fd = accept4(p->fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EMFILE || errno == ENFILE) &&
		    p->spare_fd >= 0) {
			close(p->spare_fd);
			fd = accept(p->fd, NULL, NULL);
			if (fd >= 0)
				close(fd);
			p->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			atomic_fetch_add(&p->shed, 1);
			rtrs_err_rl("sock: %s: out of file descriptors: a "
				    "connection closed unanswered", p->name);
			continue;
		}
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;         /* EAGAIN, or the level says again */
		}
		q = calloc(1, sizeof(*q));
		if (!q || rtrs__sk_sock_setup(fd)) {
			free(q);
			close(fd);
			continue;
		}
		q->tag.kind = SK_PENDING;
		q->tag.obj = q;
		q->pep = p;
		q->fd = fd;
		q->by_ms = rtrs_now_ms() + SK_HELLO_MS;
		rtrs__fab_addr_str((struct sockaddr *)&ss, q->peer,
				  sizeof(q->peer));
		ev.data.ptr = &q->tag;
		if (epoll_ctl(p->loop->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(q);
			continue;
		}
		rtrs_list_add_tail(&p->pending, &q->node);
	}
}

void rtrs__sk_pending_ready(struct sk_pending *q)
{
	struct fab_pep *p = q->pep;
	struct fab_connreq req = { .p = q };
	size_t want;
	ssize_t r;
	int n = 0;

	if (atomic_load(&p->closing)) {
		pending_drop(q);
		return;
	}
	if (q->got >= SK_HELLO_LEN)
		n = hello_check(q->buf, SK_HELLO_CONNECT);
	want = q->got < SK_HELLO_LEN ? SK_HELLO_LEN - q->got
				     : SK_HELLO_LEN + (size_t)n - q->got;
	/* exactly the hello: what follows is the endpoint's */
	do
		r = recv(q->fd, q->buf + q->got, want, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		pending_drop(q);
		return;
	}
	q->got += (size_t)r;
	if (q->got < SK_HELLO_LEN)
		return;
	n = hello_check(q->buf, SK_HELLO_CONNECT);
	if (n < 0) {
		rtrs_err_rl("sock: %s: %s: not a connect of ours (another "
			    "protocol?): closed", p->name, q->peer);
		pending_drop(q);
		return;
	}
	if (q->got < SK_HELLO_LEN + (size_t)n)
		return;
	epoll_ctl(p->loop->epfd, EPOLL_CTL_DEL, q->fd, NULL);
	p->ops->connreq(p->ctx, &req, q->buf + SK_HELLO_LEN, (size_t)n);
	if (!req.taken && !req.rejected)
		rtrs__sk_reject(p, &req, NULL, 0);
	if (!req.taken) {
		close(q->fd);
		q->fd = -1;
	}
	pending_drop(q);
}

void rtrs__sk_pep_sweep(struct fab_pep *p, uint64_t now_ms)
{
	struct rtrs_list *pos, *tmp;

	rtrs_list_for_each_safe(pos, tmp, &p->pending) {
		struct sk_pending *q = container_of(pos, struct sk_pending,
						    node);

		if (now_ms >= q->by_ms) {
			rtrs_dbg("sock: %s: %s sent no connect in %u ms: closed",
				 p->name, q->peer, SK_HELLO_MS);
			pending_drop(q);
		}
	}
}

void rtrs__sk_pep_finish(struct fab_pep *p)
{
	while (!rtrs_list_empty(&p->pending))
		pending_drop(container_of(p->pending.next, struct sk_pending,
					  node));
	epoll_ctl(p->loop->epfd, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	p->fd = -1;
	if (p->spare_fd >= 0)
		close(p->spare_fd);
	p->spare_fd = -1;
	rtrs__lock(&p->lock);
	p->closed = true;
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
}

void rtrs__sk_pep_close(struct fab_pep *p)
{
	atomic_store(&p->closing, true);
	rtrs__sk_close_pep(p);
	rtrs__lock(&p->lock);
	while (!p->closed)
		rtrs__cond_wait(&p->cond, &p->lock, NULL);
	rtrs__unlock(&p->lock);
	pthread_cond_destroy(&p->cond);
	rtrs__lock_destroy(&p->lock);
	rtrs__sk_dom_put(p->dom);
	free(p);
}

int rtrs__sk_pep_name(const struct fab_pep *p, char *buf, size_t len)
{
	int n;

	if (!p->name[0])
		return -ENOTCONN;
	n = snprintf(buf, len, "%s", p->name);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

uint64_t rtrs__sk_pep_shed(struct fab_pep *p)
{
	return atomic_load(&p->shed);
}
