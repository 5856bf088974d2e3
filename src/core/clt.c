// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client: sessions, paths, connections, permits and requests.
 * Structs and locking rules: clt_int.h; the wire: docs/protocol.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clt_int.h"

#define plog(lvl, p, fmt, ...)                                               \
	rtrs_log(lvl, "clt %s path %s: " fmt, (p)->sess->name, (p)->dst,     \
		 ##__VA_ARGS__)

static void clt_cqe(void *ctx, const struct fab_cqe *c);
static void clt_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
static void clt_tx_ready(void *ctx);
static void clt_closed(void *ctx);
static int issue(struct clt_req *r, struct clt_path *avoid);
static void hold_req(struct clt_req *r);
static void path_down_final(struct clt_path *p);
static void link_check(struct rtrs_clt_sess *s);

static const struct fab_ep_ops clt_ep_ops = {
	.cqe = clt_cqe,
	.cm = clt_cm,
	.tx_ready = clt_tx_ready,
	.closed = clt_closed,
};

/* ---- path states ---- */

/* allowed[from] has bit (1 << to) set for every legal transition */
static const unsigned path_allowed[] = {
	[CLT_PATH_CONNECTING] = 1u << CLT_PATH_CONNECTED | 1u << CLT_PATH_CLOSING,
	[CLT_PATH_CONNECTED] = 1u << CLT_PATH_CLOSING,
	[CLT_PATH_CLOSING] = 1u << CLT_PATH_CLOSED,
	[CLT_PATH_CLOSED] = 1u << CLT_PATH_RECONNECTING | 1u << CLT_PATH_DEAD,
	[CLT_PATH_RECONNECTING] = 1u << CLT_PATH_CONNECTING |
				  1u << CLT_PATH_CLOSED | 1u << CLT_PATH_DEAD,
	[CLT_PATH_DEAD] = 0,
};

/* The one place a path changes state. Returns the old state, or -1 when
 * the transition is not allowed from the current one. */
static int path_set_state(struct clt_path *p, int to)
{
	int cur = atomic_load(&p->state);

	do {
		if (!(path_allowed[cur] & (1u << to)))
			return -1;
	} while (!atomic_compare_exchange_weak(&p->state, &cur, to));
	return cur;
}

static void path_wake(struct clt_path *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static inline bool path_usable(struct clt_path *p)
{
	return p && atomic_load(&p->state) == CLT_PATH_CONNECTED &&
	       !atomic_load(&p->draining);
}

const char *rtrs_path_state_str(enum rtrs_path_state st)
{
	static const char *const n[] = { "connecting", "connected", "closing",
					 "closed", "reconnecting", "dead" };

	return (unsigned)st < ARRAY_SIZE(n) ? n[st] : "unknown";
}

static inline struct clt_path *sess_path(struct rtrs_clt_sess *s, unsigned i)
{
	return atomic_load(&s->paths[i]);
}

void rtrs_clt_attr_init(struct rtrs_clt_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->connect_timeout_ms = RTRS_DEF_CONNECT_TIMEOUT_MS;
	a->reconnect_delay_ms = 1000;
	a->max_reconnect_attempts = -1;
	a->hb_interval_ms = 1000;
	a->hb_missed_max = 5;
	a->policy = RTRS_MP_POLICY_MIN_INFLIGHT;
}

static inline uint32_t hdr_size(const struct rtrs_clt_sess *s)
{
	return s->geom.max_hdr_size;
}

static inline char *req_iu(struct clt_req *r)
{
	return r->sess->iu + (size_t)r->permit->mem_id * hdr_size(r->sess);
}

/* ---- request completion ---- */

static void req_release_mrs(struct clt_req *r)
{
	for (unsigned i = 0; i < r->ntmp; i++)
		rtrs__fab_mr_close(r->tmp_mrs[i]);
	r->ntmp = 0;
}

/* Poll mode: the session whose rtrs_clt_poll() runs on this thread, and
 * how many conf callbacks it ran. */
struct polling {
	struct rtrs_clt_sess *sess;
	int ran;
};
static _Thread_local struct polling polling;

static inline bool polled_req(const struct clt_req *r)
{
	return r->sess->poller && r->permit->con_type == RTRS_IO_CON;
}

static void run_conf(struct clt_req *r, const struct rtrs_req_ops *ops,
		     int status)
{
	bool polled = polled_req(r);
	struct rtrs_clt_sess *s = r->sess;

	if (polled)
		polling.ran++;
	ops->conf(ops->priv, status);
	if (polled)
		atomic_fetch_sub(&s->io_pending, 1);
}

/* Move @r out of POSTED and run its completion; false if someone else did.
 * @answered: the server's response (not a local failure). In poll mode a
 * request on an IO permit completed off the polling thread waits in
 * done_q for rtrs_clt_poll(). */
static bool complete_req(struct clt_req *r, int status, bool answered)
{
	struct rtrs_clt_sess *s = r->sess;
	struct rtrs_req_ops ops;
	int expected = REQ_POSTED;
	int cpu;

	struct clt_con *c = atomic_load(&r->con);
	struct clt_path *p = c && answered ? c->path : NULL;

	if (!atomic_compare_exchange_strong(&r->state, &expected, REQ_DONE))
		return false;
	req_release_mrs(r);
	if (status) {
		atomic_fetch_add(&s->st_errors, 1);
	} else if (r->dir == RTRS_READ && p) {
		atomic_fetch_add_explicit(&s->st_read_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_read_bytes, r->data_len,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_read_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_read_bytes, r->data_len,
					  memory_order_relaxed);
	} else if (p) {
		atomic_fetch_add_explicit(&s->st_write_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_write_bytes, r->data_len,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_write_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_write_bytes, r->data_len,
					  memory_order_relaxed);
	}
	/* a response means the server saw this request and its fence; after a
	 * local failure the fence goes with the permit's next request */
	if (p)
		r->fence_path = 0;
	cpu = sched_getcpu();
	if (p && cpu >= 0 && r->submit_cpu >= 0 && cpu != r->submit_cpu) {
		atomic_fetch_add_explicit(&s->st_mig_from, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_mig_to, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_mig_from, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_mig_to, 1, memory_order_relaxed);
	}
	if (c)
		atomic_fetch_sub(&c->path->inflight, 1);
	atomic_store(&r->con, NULL);    /* its path may go once it is idle */
	ops = r->ops;
	atomic_store(&r->state, REQ_IDLE);
	if (polled_req(r) && polling.sess != s) {
		/* the permit stays the caller's until conf: @r is not reused;
		 * queued before inflight drops, for close() to find it */
		r->done_status = status;
		pthread_mutex_lock(&s->done_lock);
		rtrs_list_add_tail(&s->done_q, &r->done_node);
		pthread_mutex_unlock(&s->done_lock);
		rtrs__fab_poller_wake(s->poller);
		r = NULL;
	}
	/* the last one out wakes a close() waiting for in-flight requests */
	if (atomic_fetch_sub(&s->inflight, 1) == 1 && atomic_load(&s->closing)) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	if (r)
		run_conf(r, &ops, status);
	return true;
}

/* ---- path failure and failover ---- */

/*
 * Every request still posted on @p (whose endpoints are all closed, so
 * nothing of it is in the provider any more) is re-issued on another path
 * with the same permit and sequence number, fencing @p; without a path it
 * is held or failed (no_path_timeout_ms).
 */
static void failover_path_reqs(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	for (uint32_t i = 0; i < s->geom.queue_depth; i++) {
		struct clt_req *r = &s->reqs[i];
		struct clt_con *c;
		bool mine = false;

		if (atomic_load(&r->state) != REQ_POSTED)
			continue;

		c = atomic_load(&r->con);
		if (!c || c->path != p)
			continue;
		pthread_mutex_lock(&c->lock);
		if (atomic_load(&r->con) == c &&
		    atomic_load(&r->state) == REQ_POSTED) {
			mine = true;
			if (r->bl_node.next != &r->bl_node)
				rtrs_list_del(&r->bl_node);
		}
		pthread_mutex_unlock(&c->lock);
		if (!mine)
			continue;
		req_release_mrs(r);
		atomic_store(&r->con, NULL);
		atomic_fetch_sub(&p->inflight, 1);
		r->retry = true;
		if (p->srv_id)
			r->fence_path = p->srv_id;
		if (issue(r, p) == 0)
			continue;       /* counted as a failover by issue() */
		if (s->attr.no_path_timeout_ms && !atomic_load(&s->closing))
			hold_req(r);
		else
			complete_req(r, -ECONNABORTED, false);
	}
}

static bool any_path_connected(struct rtrs_clt_sess *s, struct clt_path *except)
{
	unsigned n = atomic_load(&s->npaths);

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p && p != except &&
		    atomic_load(&p->state) == CLT_PATH_CONNECTED)
			return true;
	}
	return false;
}

/* ---- link events ---- */

/*
 * The session's link is down from the moment no path is connected until
 * one is again. link_check() runs after every change of a path to or from
 * CONNECTED, after the state has changed: under s->lock it compares the
 * link as the path states show it with the link as last reported, and when
 * they differ it reports the change. The events therefore alternate,
 * DISCONNECTED first, and the last check after any change reports the
 * state the paths are in. Event k (from 0) is DISCONNECTED when k is even;
 * s->ev_seq counts those decided, s->ev_done those delivered. One thread
 * at a time delivers them, in order, without a lock held; close waits for
 * it and drops what is left.
 */
static void link_check(struct rtrs_clt_sess *s)
{
	bool up;

	if (!s->attr.link_ev)
		return;
	pthread_mutex_lock(&s->lock);
	up = any_path_connected(s, NULL);
	if (s->opened && !atomic_load(&s->closing) && up == s->link_down) {
		s->link_down = !up;
		s->ev_seq++;
	}
	if (s->ev_running) {
		pthread_mutex_unlock(&s->lock);
		return;         /* the running delivery takes it */
	}
	s->ev_running = true;
	while (s->ev_done != s->ev_seq && !atomic_load(&s->closing)) {
		enum rtrs_clt_link_ev ev = s->ev_done++ % 2
						   ? RTRS_CLT_LINK_EV_RECONNECTED
						   : RTRS_CLT_LINK_EV_DISCONNECTED;

		pthread_mutex_unlock(&s->lock);
		s->attr.link_ev(s->attr.priv, ev);
		pthread_mutex_lock(&s->lock);
	}
	s->ev_running = false;
	if (atomic_load(&s->closing))
		pthread_cond_broadcast(&s->cond);       /* close waits for it */
	pthread_mutex_unlock(&s->lock);
}

/* ---- closing a path ---- */

/*
 * Endpoint accounting. p->eps_open counts the endpoints of @p that exist
 * or are being created and whose ops->closed() has not run: connect_con()
 * counts one before it creates it, path_ep_gone() drops it when its loop
 * has closed it (or its creation failed). p->down_done is false from the
 * moment path_close() starts a close until path_down_final() has finished
 * it. The final runs once per close, called by whoever sees eps_open at 0
 * during the close: path_close() itself, or the last path_ep_gone().
 */

/* Close every connection of @p. Any thread; idempotent. Its requests fail
 * over once all its endpoints are closed (path_down_final). */
static void path_close(struct clt_path *p, int err)
{
	struct rtrs_clt_sess *s = p->sess;
	bool final;
	int st = path_set_state(p, CLT_PATH_CLOSING);

	if (st < 0)
		return;
	if (err && err != -ESHUTDOWN)
		plog(RTRS_LOG_WARN, p, "closing: %s", rtrs_strerror(err));
	pthread_mutex_lock(&p->lock);
	if (!p->err)
		p->err = err ? err : -ECONNABORTED;
	/* none is added from now on: connect_con() counts an endpoint only
	 * while the path is CONNECTING */
	final = p->eps_open == 0;
	p->down_done = false;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];
		struct fab_ep *ep;

		pthread_mutex_lock(&c->lock);
		c->dead = true;
		ep = c->ep;
		pthread_mutex_unlock(&c->lock);
		if (ep)
			rtrs__fab_ep_close(ep);
	}
	path_wake(p);   /* an open() waiting on the handshake */
	if (st == CLT_PATH_CONNECTED)
		link_check(s);
	if (final)
		path_down_final(p);     /* the last touch of @p */
}

/* An endpoint of @p is gone: its loop closed it (that of @c), or creating
 * it failed (@c NULL). The last one of a close finishes the close. */
static void path_ep_gone(struct clt_path *p, struct clt_con *c)
{
	bool final;

	pthread_mutex_lock(&p->lock);
	if (c)
		c->closed = true;
	final = --p->eps_open == 0 && !p->down_done;
	if (!p->eps_open)
		pthread_cond_broadcast(&p->cond);       /* path_shutdown() */
	pthread_mutex_unlock(&p->lock);
	if (final)
		path_down_final(p);
}

static void clt_closed(void *ctx)
{
	struct clt_con *c = ctx;

	path_ep_gone(c->path, c);
}

/* No endpoint of @p is left: fail its requests over, mark it CLOSED and
 * schedule a reconnect. */
static void path_down_final(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	if (p->reqs_ready)
		failover_path_reqs(p);
	pthread_mutex_lock(&s->lock);
	path_set_state(p, CLT_PATH_CLOSED);
	if (!atomic_load(&s->closing) && !p->admin_down &&
	    !atomic_load(&p->draining) &&
	    s->attr.max_reconnect_attempts != 0 &&
	    (s->attr.max_reconnect_attempts < 0 ||
	     p->recon_attempts < s->attr.max_reconnect_attempts) &&
	    path_set_state(p, CLT_PATH_RECONNECTING) >= 0) {
		/* delay x [0.5, 1.5): paths and clients spread out */
		uint64_t d = (uint64_t)(s->attr.reconnect_delay_ms > 0
						? s->attr.reconnect_delay_ms : 0);

		d = d * 1000000ull / 2 +
		    (d * 1000000ull * (rtrs__random_u32() % 1000)) / 1000;
		p->recon_due_ns = rtrs_now_ns() + d;
		pthread_cond_broadcast(&s->recon_cond);
	}
	/* The close is over before anyone acts on the new state: the
	 * reconnect thread reads it under s->lock, path_shutdown() waits for
	 * down_done under p->lock. Once p->lock is released a waiter in
	 * path_shutdown() may free @p: that unlock is the last touch. */
	pthread_mutex_lock(&p->lock);
	p->down_done = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&p->lock);
}

/* ---- receive side ---- */

static void repost_rx(struct clt_con *c, struct clt_rx *rx)
{
	int ret = rtrs__fab_post_recv(c->ep, rx->buf, rx->len,
				      rtrs__fab_mr_desc(c->rx_mr), &rx->ctx);

	if (ret && ret != -ENOTCONN)
		path_close(c->path, ret);
}

static void handle_rsp(struct clt_con *c, uint32_t payload, const void *buf,
		       size_t len)
{
	struct clt_path *p = c->path;
	struct rtrs_clt_sess *s = p->sess;
	struct clt_req *r;
	uint32_t id;
	int status;

	if (rtrs__proto_io_rsp_decode(payload, s->geom.queue_depth, &id,
				      &status)) {
		plog(RTRS_LOG_ERR, p, "response for chunk out of range");
		path_close(p, -EPROTO);
		return;
	}
	r = &s->reqs[id];
	if (atomic_load(&r->state) != REQ_POSTED || r->con != c) {
		plog(RTRS_LOG_ERR, p, "response for idle request %u", id);
		path_close(p, -EPROTO);
		return;
	}
	if (s->new_rkey) {
		uint16_t buf_id;
		uint32_t key;

		if (rtrs__proto_rkey_rsp_decode(buf, len, s->geom.queue_depth,
						&buf_id, &key) ||
		    buf_id != id) {
			plog(RTRS_LOG_ERR, p, "bad new-rkey response for %u", id);
			path_close(p, -EPROTO);
			return;
		}
		atomic_store(&p->rbufs[id].key, key);
	}
	complete_req(r, status, true);
}

static void info_rbuf(void *arg, uint32_t chunk, uint64_t addr, uint32_t key)
{
	struct clt_path *p = arg;

	p->rbufs[chunk].addr = addr;
	atomic_store(&p->rbufs[chunk].key, key);
}

static void handle_info_rsp(struct clt_path *p, const void *buf, size_t len)
{
	int ret;

	pthread_mutex_lock(&p->lock);
	if (p->auth_wait) {
		/* the server's auth_rsp; path_auth() reads it */
		p->auth_wait = false;
		p->auth_got = true;
		p->auth_rsp_len = MIN(len, sizeof(p->auth_rsp));
		memcpy(p->auth_rsp, buf, p->auth_rsp_len);
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_unlock(&p->lock);
	ret = rtrs__proto_info_rsp_decode(buf, len, &p->sess->geom,
					      info_rbuf, p);

	pthread_mutex_lock(&p->lock);
	p->info_done = true;
	p->info_err = ret;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* A heartbeat: answer it; an answer: one round-trip sample. */
static void handle_hb(struct clt_con *c, unsigned type)
{
	struct clt_path *p = c->path;

	if (type == RTRS_IMM_HB) {
		int ret = rtrs__fab_post_send(c->ep, NULL, 0, NULL, true,
					      rtrs_imm(RTRS_IMM_HB_ACK, 0), NULL,
					      false);

		if (ret && ret != -EAGAIN && ret != -ENOTCONN)
			path_close(p, ret);
		return;
	}
	if (atomic_exchange(&p->hb_outstanding, false)) {
		uint64_t rtt = rtrs_now_ns() - atomic_load(&p->hb_sent_ns);
		uint64_t old = atomic_load(&p->hb_lat_ns);

		/* smoothed like TCP's srtt: 7/8 old + 1/8 new */
		atomic_store(&p->hb_lat_ns, old ? (old * 7 + rtt) / 8 : rtt);
	}
}

static void handle_close_ack(struct clt_path *p)
{
	pthread_mutex_lock(&p->lock);
	p->close_acked = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void clt_cqe(void *ctx, const struct fab_cqe *c)
{
	struct clt_con *con = ctx;
	struct clt_path *p = con->path;

	if (!c->err)
		atomic_store_explicit(&p->rx_seen, true, memory_order_relaxed);
	if (c->err) {
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			plog(RTRS_LOG_WARN, p, "con %u: completion error %s",
			     con->cid, rtrs_strerror(c->err));
		path_close(p, c->err);
		return;
	}
	if (c->flags & FAB_CQE_RECV) {
		struct clt_rx *rx = container_of(c->ctx, struct clt_rx, ctx);

		if (rx == &p->info_rx) {
			handle_info_rsp(p, rx->buf, c->len);
			return;
		}
		if (!(c->flags & FAB_CQE_IMM)) {
			plog(RTRS_LOG_ERR, p, "message without immediate");
			path_close(p, -EPROTO);
			return;
		}
		switch (rtrs_imm_type(c->imm)) {
		case RTRS_IMM_IO_RSP:
			handle_rsp(con, rtrs_imm_payload(c->imm), rx->buf, c->len);
			break;
		case RTRS_IMM_HB:
		case RTRS_IMM_HB_ACK:
			handle_hb(con, rtrs_imm_type(c->imm));
			break;
		case RTRS_IMM_CLOSE_ACK:
			handle_close_ack(p);
			break;
		default:
			plog(RTRS_LOG_ERR, p, "unknown immediate type %u",
			     rtrs_imm_type(c->imm));
			path_close(p, -EPROTO);
			return;
		}
		repost_rx(con, rx);
		return;
	}
	if ((c->flags & FAB_CQE_IMM) && (c->flags & FAB_CQE_RMA_IN)) {
		/* write-with-immediate that used no receive (tcp) */
		if (rtrs_imm_type(c->imm) == RTRS_IMM_IO_RSP && !p->sess->new_rkey)
			handle_rsp(con, rtrs_imm_payload(c->imm), NULL, 0);
		else if (rtrs_imm_type(c->imm) == RTRS_IMM_HB ||
			 rtrs_imm_type(c->imm) == RTRS_IMM_HB_ACK)
			handle_hb(con, rtrs_imm_type(c->imm));
		else if (rtrs_imm_type(c->imm) == RTRS_IMM_CLOSE_ACK)
			handle_close_ack(p);
		else {
			plog(RTRS_LOG_ERR, p, "unexpected remote write");
			path_close(p, -EPROTO);
		}
	}
	/* FAB_CQE_TX: signalled sends (info request): nothing to do */
}

static void clt_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len)
{
	struct clt_con *c = ctx;
	struct clt_path *p = c->path;
	struct rtrs_conn_rsp rsp;
	int ret;

	switch (ev) {
	case FAB_CM_CONNECTED:
		ret = rtrs__proto_conn_rsp_decode(data, len, &rsp);
		if (!ret && rsp.err)
			ret = rsp.err;
		pthread_mutex_lock(&p->lock);
		if (!ret && c->cid == 0)
			p->rsp = rsp;
		else if (!ret && (rsp.queue_depth != p->rsp.queue_depth ||
				  rsp.max_io_size != p->rsp.max_io_size ||
				  rsp.max_hdr_size != p->rsp.max_hdr_size ||
				  rsp.flags != p->rsp.flags))
			ret = -EPROTO;
		if (ret)
			c->cm_err = ret;
		else
			c->connected = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (ret)
			plog(RTRS_LOG_ERR, p, "con %u: bad connect response: %s",
			     c->cid, rtrs_strerror(ret));
		break;
	case FAB_CM_REJECTED:
		if (!rtrs__proto_conn_rsp_decode(data, len, &rsp) && rsp.err)
			err = rsp.err;
		/* fall through */
	case FAB_CM_SHUTDOWN:
	case FAB_CM_ERROR:
		pthread_mutex_lock(&p->lock);
		if (!c->cm_err)
			c->cm_err = err ? err : -ECONNRESET;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			path_close(p, c->cm_err);
		break;
	}
}

/* ---- posting ---- */

/* Post what is left of @r. Called with r->con->lock held. */
static int post_req(struct clt_req *r)
{
	struct clt_con *c = atomic_load(&r->con);
	struct clt_path *p = c->path;
	struct rtrs_clt_sess *s = r->sess;
	uint32_t id = r->permit->mem_id;
	struct clt_rbuf *rb = &p->rbufs[id];
	uint32_t key = atomic_load(&rb->key);
	uint32_t imm = rtrs__proto_io_req_imm(&s->geom, id,
					      r->data_len + r->usr_len);
	size_t lim = rtrs__fab_ep_caps(c->ep)->tx_iov_limit;
	int ret;

	if (r->dir == RTRS_READ) {
		/* header + message + descriptors after the data area */
		return rtrs__fab_post_write(c->ep, &r->iov[0], &r->desc[0], 1,
					    rb->addr + r->data_len, key, true,
					    imm, &r->ctx, false);
	}
	/* WRITE: data segments then the header, split by the iov limit;
	 * the immediate goes with the last piece */
	while (r->next_seg <= r->data_cnt) {
		unsigned seg = r->next_seg, left = r->data_cnt + 1 - seg;
		unsigned n = left < lim ? left : (unsigned)lim;
		uint32_t off = r->posted_bytes, bytes = 0;

		for (unsigned i = 0; i < n; i++)
			bytes += (uint32_t)r->iov[seg + i].iov_len;
		/* Progress is recorded before the post: once the piece with the
		 * immediate is out, the response may complete the request and
		 * its permit may be reused before this function returns, so
		 * @r must not be touched after a successful final post. */
		r->next_seg = seg + n;
		r->posted_bytes = off + bytes;
		ret = rtrs__fab_post_write(c->ep, &r->iov[seg], &r->desc[seg], n,
					   rb->addr + off, key, n == left, imm,
					   &r->ctx, false);
		if (ret) {
			r->next_seg = seg;
			r->posted_bytes = off;
			return ret;
		}
		if (n == left)
			return 0;
	}
	return 0;
}

static void clt_tx_ready(void *ctx)
{
	struct clt_con *c = ctx;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	while (!c->dead && !rtrs_list_empty(&c->backlog)) {
		struct clt_req *r = container_of(c->backlog.next,
						 struct clt_req, bl_node);

		/* off the list before the post: a posted request may complete
		 * and be queued again before post_req() returns */
		rtrs_list_del(&r->bl_node);
		ret = post_req(r);
		if (ret == -EAGAIN) {
			rtrs_list_add_head(&c->backlog, &r->bl_node);
			rtrs__fab_ep_want_tx(c->ep);
			ret = 0;
			break;
		}
		if (ret)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		path_close(c->path, ret);
}

/* Paths tried by one request, so that a retry picks the next best. */
struct path_set {
	uint64_t bits[(RTRS_MAX_PATHS + 63) / 64];
};

static inline bool pset_has(const struct path_set *t, unsigned i)
{
	return t->bits[i / 64] & (1ull << (i % 64));
}

static inline void pset_add(struct path_set *t, unsigned i)
{
	t->bits[i / 64] |= 1ull << (i % 64);
}

static _Thread_local struct {
	const struct rtrs_clt_sess *sess;
	unsigned last;
} rr_cursor;

/* The next path for a request by the session policy; NULL when every
 * usable path has been tried. */
static struct clt_path *pick_path(struct rtrs_clt_sess *s, struct path_set *tried)
{
	unsigned n = atomic_load(&s->npaths);
	int policy = atomic_load_explicit(&s->policy, memory_order_relaxed);
	struct clt_path *best = NULL;
	uint64_t best_key = UINT64_MAX;

	if (policy == RTRS_MP_POLICY_RR) {
		unsigned start = rr_cursor.sess == s ? rr_cursor.last + 1 : 0;

		for (unsigned k = 0; k < n; k++) {
			unsigned i = (start + k) % n;
			struct clt_path *p = sess_path(s, i);

			if (!pset_has(tried, i) && path_usable(p)) {
				rr_cursor.sess = s;
				rr_cursor.last = i;
				pset_add(tried, i);
				return p;
			}
		}
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		uint64_t key;

		if (pset_has(tried, i) || !path_usable(p))
			continue;
		if (policy == RTRS_MP_POLICY_MIN_LATENCY) {
			key = atomic_load_explicit(&p->hb_lat_ns,
						   memory_order_relaxed);
			if (!key)
				key = UINT64_MAX - 1;   /* no sample yet */
		} else {
			key = atomic_load_explicit(&p->inflight,
						   memory_order_relaxed);
		}
		if (!best || key < best_key) {
			best = p;
			best_key = key;
		}
	}
	if (best)
		pset_add(tried, best->idx);
	return best;
}

static bool permit_valid(const struct rtrs_clt_sess *s,
			 const struct rtrs_permit *pm)
{
	return pm >= s->permits && pm < s->permits + s->geom.queue_depth &&
	       pm->taken;
}

/* Registrations and the message (with its fence record) for posting @r
 * on @p. The header buffer is shared by all paths: a previous attempt's
 * endpoints are closed before a retry rewrites it. */
static int prepare_data(struct clt_req *r, struct clt_path *p)
{
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	const struct iovec *data = r->data;
	size_t data_cnt = r->data_cnt;
	struct rtrs_fence fence = {
		.seq = r->seq,
		.fence_path = r->fence_path,
		.flags = (uint16_t)((r->retry ? RTRS_FENCE_RETRY_F : 0) |
				    (r->fence_path ? RTRS_FENCE_PATH_F : 0)),
	};
	size_t n;
	struct fab_mr *umr = r->mr ? r->mr->mrs[p->idx] : NULL;
	struct rtrs_sg_desc desc[RTRS_MAX_SEGMENTS];
	int ret;

	for (size_t i = 0; i < data_cnt; i++) {
		r->iov[i] = data[i];
		r->desc[i] = rtrs__fab_mr_desc(umr);
		if (r->dir == RTRS_READ) {
			struct fab_mr *m;

			/* a registration per READ, revoked at completion */
			ret = rtrs__fab_mr_reg_peer(p->dom, data[i].iov_base,
						    data[i].iov_len, p, &m);
			if (ret)
				return ret;
			r->tmp_mrs[r->ntmp++] = m;
			desc[i].addr = rtrs__fab_mr_raddr(m, data[i].iov_base);
			desc[i].key = rtrs__fab_mr_key(m);
			desc[i].len = (uint32_t)data[i].iov_len;
		} else if (caps->mr_local && !umr) {
			struct fab_mr *m;

			ret = rtrs__fab_mr_reg(p->dom, data[i].iov_base,
					       data[i].iov_len, FAB_ACC_LOCAL, &m);
			if (ret)
				return ret;
			r->tmp_mrs[r->ntmp++] = m;
			r->desc[i] = rtrs__fab_mr_desc(m);
		}
	}
	if (r->dir == RTRS_READ) {
		char *iu = req_iu(r);

		n = rtrs__proto_read_msg_encode(iu + r->usr_len, r->usr_len, desc,
						(uint16_t)data_cnt);
		if (r->sess->fence)
			rtrs__proto_fence_encode(iu + r->usr_len + n, &fence);
		r->iov[0].iov_base = iu;
		r->iov[0].iov_len = r->usr_len + r->msg_len;
		r->desc[0] = rtrs__fab_mr_desc(p->iu_mr);
	} else {
		char *iu = req_iu(r);

		n = rtrs__proto_write_msg_encode(iu + r->usr_len, r->usr_len);
		if (r->sess->fence)
			rtrs__proto_fence_encode(iu + r->usr_len + n, &fence);
		r->iov[data_cnt].iov_base = iu;
		r->iov[data_cnt].iov_len = r->usr_len + r->msg_len;
		r->desc[data_cnt] = rtrs__fab_mr_desc(p->iu_mr);
	}
	return 0;
}

/*
 * Post @r (state POSTED, r->con NULL) on a path chosen by the policy; when
 * a post fails before anything reached the provider, the next path is
 * tried. @avoid: a path being failed. 0 when posted (or partly posted on a
 * path that is now failing: its failover re-issues it); -ENOTCONN when no
 * path was usable, else the last path's error.
 */
static int issue(struct clt_req *r, struct clt_path *avoid)
{
	struct rtrs_clt_sess *s = r->sess;
	struct path_set tried = { { 0 } };
	struct clt_path *p;
	int ret, last = -ENOTCONN;
	/* once posted, @r may complete and be reused before we look again */
	bool retry = r->retry;

	if (avoid)
		pset_add(&tried, avoid->idx);
	while ((p = pick_path(s, &tried))) {
		struct clt_con *c;
		int cpu = r->submit_cpu;

		if (r->permit->con_type == RTRS_ADMIN_CON || p->ncons == 1)
			c = &p->cons[0];
		else
			c = &p->cons[1 + (unsigned)(cpu < 0 ? 0 : cpu) %
						 (p->ncons - 1)];
		r->next_seg = 0;
		r->posted_bytes = 0;
		ret = prepare_data(r, p);
		if (ret) {
			req_release_mrs(r);
			if (ret == -ENOMEM)
				return ret;
			last = ret;
			continue;
		}
		pthread_mutex_lock(&c->lock);
		if (c->dead) {
			pthread_mutex_unlock(&c->lock);
			req_release_mrs(r);
			continue;
		}
		atomic_store(&r->con, c);
		atomic_fetch_add(&p->inflight, 1);
		if (!rtrs_list_empty(&c->backlog)) {
			rtrs_list_add_tail(&c->backlog, &r->bl_node);
			atomic_fetch_add(&s->st_backlog, 1);
			ret = 0;
		} else {
			ret = post_req(r);
			if (ret == -EAGAIN) {
				rtrs_list_add_tail(&c->backlog, &r->bl_node);
				atomic_fetch_add(&s->st_backlog, 1);
				rtrs__fab_ep_want_tx(c->ep);
				ret = 0;
			}
		}
		if (ret && r->posted_bytes == 0) {
			/* nothing reached the provider: try the next path */
			atomic_store(&r->con, NULL);
			atomic_fetch_sub(&p->inflight, 1);
			pthread_mutex_unlock(&c->lock);
			req_release_mrs(r);
			plog(RTRS_LOG_WARN, p, "post failed: %s", rtrs_strerror(ret));
			last = ret;
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		if (ret)        /* partly posted: the path's failover re-issues it */
			path_close(p, ret);
		if (retry) {    /* a re-issue: now, or a held one later */
			atomic_fetch_add(&p->st_failovers, 1);
			atomic_fetch_add(&s->st_failovers, 1);
		}
		return 0;
	}
	return last;
}

/* ---- holding requests while no path is up ---- */

static bool sess_may_recover(struct rtrs_clt_sess *s)
{
	unsigned n = atomic_load(&s->npaths);

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		int st = p ? atomic_load(&p->state) : CLT_PATH_DEAD;

		if (st != CLT_PATH_DEAD && !(st == CLT_PATH_CLOSED && p->admin_down))
			return true;
	}
	return false;
}

static void hold_req(struct clt_req *r)
{
	struct rtrs_clt_sess *s = r->sess;

	r->hold_until_ns = rtrs_now_ns() +
			   (uint64_t)s->attr.no_path_timeout_ms * 1000000ull;
	pthread_mutex_lock(&s->lock);
	rtrs_list_add_tail(&s->held, &r->bl_node);
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&s->st_held, 1);
	rtrs__timer_arm(&s->hold_timer, 50);
}

/* Re-issue held requests (a path came back), fail the expired ones. */
static void release_held(struct rtrs_clt_sess *s, bool expire_only)
{
	struct rtrs_list mine, *pos, *tmp;
	uint64_t now = rtrs_now_ns();
	bool left;

	rtrs_list_init(&mine);
	pthread_mutex_lock(&s->lock);
	rtrs_list_for_each_safe(pos, tmp, &s->held) {
		struct clt_req *r = container_of(pos, struct clt_req, bl_node);

		if (!expire_only || now >= r->hold_until_ns ||
		    atomic_load(&s->closing)) {
			rtrs_list_del(pos);
			rtrs_list_add_tail(&mine, pos);
		}
	}
	pthread_mutex_unlock(&s->lock);
	rtrs_list_for_each_safe(pos, tmp, &mine) {
		struct clt_req *r = container_of(pos, struct clt_req, bl_node);

		rtrs_list_del(pos);
		if (!atomic_load(&s->closing) && now < r->hold_until_ns &&
		    issue(r, NULL) == 0)
			continue;
		if (!atomic_load(&s->closing) && now < r->hold_until_ns &&
		    sess_may_recover(s)) {
			pthread_mutex_lock(&s->lock);
			rtrs_list_add_tail(&s->held, &r->bl_node);
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		complete_req(r, -ECONNABORTED, false);
	}
	pthread_mutex_lock(&s->lock);
	left = !rtrs_list_empty(&s->held);
	pthread_mutex_unlock(&s->lock);
	if (left)
		rtrs__timer_arm(&s->hold_timer, 50);
}

static void hold_tick(struct rtrs_timer *t)
{
	struct rtrs_clt_sess *s = container_of(t, struct rtrs_clt_sess,
					       hold_timer);

	release_held(s, !any_path_connected(s, NULL));
}

int rtrs_clt_request(struct rtrs_clt_sess *s, enum rtrs_dir dir,
		     const struct rtrs_req_ops *ops, struct rtrs_permit *pm,
		     const struct iovec *usr, size_t usr_cnt,
		     const struct iovec *data, size_t data_cnt,
		     struct rtrs_mr *mr)
{
	struct clt_req *r;
	size_t usr_len = 0, msg_len;
	uint64_t data_len = 0;
	int expected = REQ_IDLE;
	char *iu;
	int ret;

	if (!s || !ops || !ops->conf || (dir != RTRS_READ && dir != RTRS_WRITE))
		return -EINVAL;
	if (!permit_valid(s, pm) || (usr_cnt && !usr) || (data_cnt && !data))
		return -EINVAL;
	if (mr && mr->sess != s)
		return -EINVAL;
	if (data_cnt > s->max_segments)
		return -EMSGSIZE;
	for (size_t i = 0; i < usr_cnt; i++) {
		if (usr[i].iov_len && !usr[i].iov_base)
			return -EINVAL;
		usr_len += usr[i].iov_len;
	}
	for (size_t i = 0; i < data_cnt; i++) {
		if (!data[i].iov_base || !data[i].iov_len)
			return -EINVAL;
		if (mr && !(data[i].iov_base >= mr->buf &&
			    data[i].iov_len <= mr->len &&
			    (size_t)((char *)data[i].iov_base - (char *)mr->buf) <=
				    mr->len - data[i].iov_len))
			return -EINVAL;
		data_len += data[i].iov_len;
	}
	msg_len = (dir == RTRS_READ ? RTRS_READ_MSG_LEN(data_cnt)
				    : RTRS_WRITE_MSG_LEN) +
		  (s->fence ? RTRS_FENCE_LEN : 0);
	if (usr_len + msg_len > hdr_size(s) || data_len > s->geom.max_io_size)
		return -EMSGSIZE;

	r = &s->reqs[pm->mem_id];
	if (atomic_load(&r->state) != REQ_IDLE)
		return -EBUSY;

	r->dir = dir;
	r->ops = *ops;
	r->mr = mr;
	r->data_cnt = (unsigned)data_cnt;
	r->data_len = (uint32_t)data_len;
	r->usr_len = (uint16_t)usr_len;
	r->msg_len = (uint16_t)msg_len;
	r->submit_cpu = sched_getcpu();
	r->retry = false;
	if (++r->next_seq == 0)
		r->next_seq = 1;
	r->seq = r->next_seq;
	for (size_t i = 0; i < data_cnt; i++)
		r->data[i] = data[i];
	iu = req_iu(r);
	for (size_t i = 0, off = 0; i < usr_cnt; off += usr[i].iov_len, i++)
		if (usr[i].iov_len)
			memcpy(iu + off, usr[i].iov_base, usr[i].iov_len);
	if (!atomic_compare_exchange_strong(&r->state, &expected, REQ_POSTED))
		return -EBUSY;
	atomic_fetch_add(&s->inflight, 1);
	if (polled_req(r))      /* before it can complete */
		atomic_fetch_add(&s->io_pending, 1);
	ret = issue(r, NULL);
	if (ret == -ENOTCONN && s->attr.no_path_timeout_ms &&
	    sess_may_recover(s)) {
		hold_req(r);
		return 0;
	}
	if (ret) {
		/* nothing reached a server: the sequence gap is harmless */
		atomic_store(&r->state, REQ_IDLE);
		atomic_fetch_sub(&s->inflight, 1);
		if (polled_req(r))
			atomic_fetch_sub(&s->io_pending, 1);
		return ret;
	}
	return 0;
}

/* ---- permits ---- */

static int get_permit(struct rtrs_clt_sess *s, enum rtrs_con_type type,
		      int wait_ms, struct rtrs_permit **out)
{
	struct timespec dl;
	int ret = 0;

	if (!s || !out || (type != RTRS_ADMIN_CON && type != RTRS_IO_CON))
		return -EINVAL;
	if (wait_ms > 0)
		dl = rtrs_deadline((unsigned)wait_ms);
	pthread_mutex_lock(&s->lock);
	while (!s->closing && s->nfree == 0) {
		if (wait_ms == 0) {
			ret = -EAGAIN;
			break;
		}
		s->permit_waiters++;
		if (wait_ms < 0)
			pthread_cond_wait(&s->cond, &s->lock);
		else
			ret = pthread_cond_timedwait(&s->cond, &s->lock, &dl);
		s->permit_waiters--;
		if (ret == ETIMEDOUT && s->nfree == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		ret = 0;
	}
	if (!ret && s->closing)
		ret = -ESHUTDOWN;
	if (!ret) {
		struct rtrs_permit *p = &s->permits[s->free_permits[--s->nfree]];

		p->taken = true;
		p->con_type = type;
		p->cpu = sched_getcpu();
		*out = p;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int rtrs_clt_get_permit(struct rtrs_clt_sess *s, enum rtrs_con_type type,
			enum rtrs_wait wait, struct rtrs_permit **out)
{
	if (wait != RTRS_PERMIT_WAIT && wait != RTRS_PERMIT_NOWAIT)
		return -EINVAL;
	return get_permit(s, type, wait == RTRS_PERMIT_WAIT ? -1 : 0, out);
}

int rtrs_clt_get_permit_timed(struct rtrs_clt_sess *s, enum rtrs_con_type type,
			      unsigned int timeout_ms, struct rtrs_permit **out)
{
	return get_permit(s, type, timeout_ms > INT32_MAX ? INT32_MAX
							  : (int)timeout_ms,
			  out);
}

void rtrs_clt_put_permit(struct rtrs_clt_sess *s, struct rtrs_permit *pm)
{
	if (!s || !permit_valid(s, pm)) {
		rtrs_err("put_permit: not a taken permit of this session");
		return;
	}
	if (atomic_load(&s->reqs[pm->mem_id].state) != REQ_IDLE) {
		rtrs_err("put_permit: permit %u has a request in flight",
			 pm->mem_id);
		return;
	}
	pthread_mutex_lock(&s->lock);
	pm->taken = false;
	s->free_permits[s->nfree++] = pm->mem_id;
	if (s->permit_waiters)
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* ---- open ---- */

static int sess_setup(struct rtrs_clt_sess *s, const struct rtrs_conn_rsp *rsp)
{
	uint32_t qd;
	int ret;

	ret = rtrs__proto_geom(&s->geom, rsp->queue_depth, rsp->max_io_size,
			       rsp->max_hdr_size);
	if (ret)
		return -EPROTO;
	qd = s->geom.queue_depth;
	s->new_rkey = rsp->flags & RTRS_MSG_NEW_RKEY_F;
	s->max_segments = RTRS_MAX_SEGMENTS;
	s->permits = calloc(qd, sizeof(*s->permits));
	s->free_permits = calloc(qd, sizeof(uint32_t));
	s->reqs = calloc(qd, sizeof(*s->reqs));
	s->iu = aligned_alloc(64, (size_t)qd * s->geom.max_hdr_size);
	if (!s->permits || !s->free_permits || !s->reqs || !s->iu)
		return -ENOMEM;
	for (uint32_t i = 0; i < qd; i++) {
		s->permits[i].mem_id = i;
		s->free_permits[i] = qd - 1 - i;
		s->reqs[i].sess = s;
		s->reqs[i].permit = &s->permits[i];
		s->reqs[i].ctx.owner = &s->reqs[i];
		s->reqs[i].ctx.kind = CTX_REQ;
		rtrs_list_init(&s->reqs[i].bl_node);
		atomic_init(&s->reqs[i].state, REQ_IDLE);
	}
	s->nfree = qd;
	return 0;
}

static int con_alloc_rx(struct clt_con *c, unsigned n)
{
	struct clt_path *p = c->path;
	int ret;

	c->rx = calloc(n, sizeof(*c->rx));
	c->rxmem = calloc(n, RTRS_RX_STRIDE);
	if (!c->rx || !c->rxmem)
		return -ENOMEM;
	if (rtrs__fab_dom_caps(p->dom)->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, c->rxmem, (size_t)n * RTRS_RX_STRIDE,
				       FAB_ACC_LOCAL, &c->rx_mr);
		if (ret)
			return ret;
	}
	c->nrx = n;
	for (unsigned i = 0; i < n; i++) {
		c->rx[i].con = c;
		c->rx[i].buf = c->rxmem + (size_t)i * RTRS_RX_STRIDE;
		c->rx[i].len = RTRS_RX_BUF;
		c->rx[i].ctx.owner = &c->rx[i];
		c->rx[i].ctx.kind = CTX_RX;
	}
	return 0;
}

static int con_post_rx(struct clt_con *c)
{
	for (unsigned i = 0; i < c->nrx; i++) {
		int ret = rtrs__fab_post_recv(c->ep, c->rx[i].buf, c->rx[i].len,
					      rtrs__fab_mr_desc(c->rx_mr),
					      &c->rx[i].ctx);
		if (ret)
			return ret;
	}
	return 0;
}

/* Wait on the path condvar until @done, the timeout, a close of the path
 * or of the session (-ESHUTDOWN). */
static int path_wait(struct clt_path *p, bool (*done)(struct clt_path *, void *),
		     void *arg, unsigned ms)
{
	struct timespec dl = rtrs_deadline(ms);
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (!done(p, arg)) {
		/* rtrs_clt_close() cancels: it sets closing, then wakes every
		 * path's waiters under p->lock */
		if (atomic_load(&p->sess->closing)) {
			ret = -ESHUTDOWN;
			break;
		}
		if (atomic_load(&p->state) != CLT_PATH_CONNECTING) {
			ret = p->err ? p->err : -ECONNABORTED;
			break;
		}
		if (pthread_cond_timedwait(&p->cond, &p->lock, &dl) == ETIMEDOUT &&
		    !done(p, arg)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static bool con_done(struct clt_path *p, void *arg)
{
	struct clt_con *c = arg;

	(void)p;
	return c->connected || c->cm_err;
}

static bool info_done(struct clt_path *p, void *arg)
{
	(void)arg;
	return p->info_done;
}

static int connect_con(struct clt_path *p, struct clt_con *c)
{
	struct rtrs_clt_sess *s = p->sess;
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_req req = {
		.cid = (uint16_t)c->cid,
		.cid_num = (uint16_t)p->ncons,
		.recon_cnt = p->recon_cnt,
		.first_conn = true,
		.fence = s->fence,
		/* the server shows and closes the path by our number */
		.has_path_no = true,
		.path_no = (uint16_t)p->idx,
		.auth = s->key != NULL,
		/* software RMA (docs/protocol.md 2.6): both ends or neither */
		.frames = rtrs__fab_dom_caps(p->dom)->sw_rma,
	};
	unsigned loop = c->cid == 0 ? 0 : (c->cid - 1) % rtrs__fab_nloops();
	struct fab_ep *ep;
	int ret;

	memcpy(req.sess_uuid, p->uuid, 16);
	memcpy(req.paths_uuid, s->paths_uuid, 16);
	c->loop = loop;
	/* counted before it exists: a concurrent path_close() then waits for
	 * it, and we close it ourselves below */
	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->state) != CLT_PATH_CONNECTING) {
		ret = p->err ? p->err : -ECONNABORTED;
		pthread_mutex_unlock(&p->lock);
		return ret;
	}
	p->eps_open++;
	pthread_mutex_unlock(&p->lock);
	ret = rtrs__fab_ep_create(p->dom, loop, c->cid ? s->poller : NULL,
				  &clt_ep_ops, c, &ep);
	if (ret) {
		path_ep_gone(p, NULL);
		return ret;
	}
	rtrs__fab_ep_set_scope(ep, p);  /* the server writes into our READs */
	/* c->lock is held while @ep is used here: a path_close() from
	 * another thread closes it only afterwards, and the loop frees a
	 * closed endpoint */
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		rtrs__fab_ep_close(ep);
		return -ECONNABORTED;
	}
	c->ep = ep;
	if (c->cid) {
		/* a receive for every response that can be outstanding */
		size_t n = MIN(rtrs__fab_dom_caps(p->dom)->rx_size,
			       (size_t)s->geom.queue_depth);

		ret = con_alloc_rx(c, (unsigned)n);
		if (!ret)
			ret = con_post_rx(c);
	}
	rtrs__proto_conn_req_encode(priv, &req);
	if (!ret)
		ret = rtrs__fab_ep_connect(ep, priv, sizeof(priv));
	pthread_mutex_unlock(&c->lock);
	if (ret)
		return ret;
	ret = path_wait(p, con_done, c, s->attr.connect_timeout_ms);
	if (!ret) {
		/* a CM event may set it any time: p->lock (TSan) */
		pthread_mutex_lock(&p->lock);
		ret = c->cm_err;
		pthread_mutex_unlock(&p->lock);
	}
	return ret;
}

static bool auth_done(struct clt_path *p, void *arg)
{
	(void)arg;
	return p->auth_got;
}

#define AUTH_REQ_OFF (RTRS_INFO_REQ_AUTH_LEN + FAB_MSG_ROOM)

/*
 * The authentication of docs/protocol.md section 2.7, on con 0 with the
 * info receive posted: our nonce and identity out, the server's nonce and
 * proof in, checked before anything else is sent. The info receive is
 * posted again for the info_rsp; the caller sends the info_req with our
 * proof (auth_info_req()). -EACCES when the server refuses or cannot
 * prove the key.
 */
static int path_auth(struct clt_path *p, struct clt_con *c0)
{
	struct rtrs_clt_sess *s = p->sess;
	uint8_t ns[RTRS_AUTH_NONCE_LEN], proof[RTRS_AUTH_PROOF_LEN],
		want[RTRS_AUTH_PROOF_LEN];
	char *areq = p->info_req + AUTH_REQ_OFF;
	int ret, err;

	ret = rtrs__auth_random(p->auth_nc, sizeof(p->auth_nc));
	if (ret)
		return ret;
	rtrs__proto_auth_req_encode(areq, p->auth_nc, s->key->id);
	pthread_mutex_lock(&p->lock);
	p->auth_wait = true;
	p->auth_got = false;
	pthread_mutex_unlock(&p->lock);
	p->auth_tx.kind = CTX_MISC;
	ret = rtrs__fab_post_send(c0->ep, areq, RTRS_AUTH_REQ_LEN,
				  rtrs__fab_mr_desc(p->info_req_mr), false, 0,
				  &p->auth_tx, false);
	if (!ret)
		ret = path_wait(p, auth_done, NULL, s->attr.connect_timeout_ms);
	if (ret)
		return ret;
	ret = rtrs__proto_auth_rsp_decode(p->auth_rsp, p->auth_rsp_len, &err,
					  ns, proof);
	if (ret) {
		plog(RTRS_LOG_ERR, p, "malformed authentication answer");
		return -EPROTO;
	}
	if (err) {
		plog(RTRS_LOG_ERR, p, "the server refused identity %s: %s",
		     s->key->id, rtrs_strerror(err));
		return -EACCES;
	}
	rtrs__auth_proof(s->key, true, p->auth_nc, ns, s->paths_uuid, p->uuid,
			 NULL, want);
	if (rtrs__memeq_ct(want, proof, sizeof(want))) {
		plog(RTRS_LOG_ERR, p, "the server could not prove the key of "
		     "identity %s", s->key->id);
		return -EACCES;
	}
	/* our proof goes after the info_req's 272 bytes */
	rtrs__auth_proof(s->key, false, p->auth_nc, ns, s->paths_uuid, p->uuid,
			 s->name, (uint8_t *)p->info_req + RTRS_INFO_REQ_LEN);
	return rtrs__fab_post_recv(c0->ep, p->info_buf, p->info_len,
				   rtrs__fab_mr_desc(p->info_mr),
				   &p->info_rx.ctx);
}

static int path_handshake(struct clt_path *p, bool recon)
{
	struct rtrs_clt_sess *s = p->sess;
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	struct clt_con *c0 = &p->cons[0];
	int ret;

	ret = connect_con(p, c0);
	if (ret)
		return ret;
	if (caps->sw_rma != !!(p->rsp.flags & RTRS_MSG_FRAMES_F)) {
		plog(RTRS_LOG_ERR, p, "the server's data path differs: %s",
		     caps->sw_rma ? "it takes the provider's RMA, this end "
		     "carries RMA as frames (a librtrs before 0.4?)"
		     : "it carries RMA as frames, this end does not");
		return -EPROTONOSUPPORT;
	}
	if (s->key && !(p->rsp.flags & RTRS_MSG_AUTH_F)) {
		plog(RTRS_LOG_ERR, p, "the server does not authenticate: "
		     "refusing it (a key is set)");
		return -EACCES;
	}
	if (s->fence && (!(p->rsp.flags & RTRS_MSG_FENCE_F) || !p->rsp.path_id)) {
		plog(RTRS_LOG_ERR, p, "the server does not fence requests");
		return -EPROTO;
	}
	p->srv_id = s->fence ? p->rsp.path_id : 0;
	pthread_mutex_lock(&s->lock);
	if (!s->permits) {
		ret = sess_setup(s, &p->rsp);
	} else if (p->rsp.queue_depth != s->geom.queue_depth ||
		   p->rsp.max_io_size != s->geom.max_io_size ||
		   p->rsp.max_hdr_size != s->geom.max_hdr_size) {
		plog(RTRS_LOG_ERR, p, "server geometry differs between paths");
		ret = -EPROTO;
	}
	pthread_mutex_unlock(&s->lock);
	if (ret)
		return ret;
	p->reqs_ready = true;
	if (!p->rbufs)
		p->rbufs = calloc(s->geom.queue_depth, sizeof(*p->rbufs));
	if (!p->rbufs)
		return -ENOMEM;
	ret = rtrs__fab_mr_reg(p->dom, s->iu,
			       (size_t)s->geom.queue_depth * s->geom.max_hdr_size,
			       FAB_ACC_LOCAL, &p->iu_mr);
	if (ret)
		return ret;
	for (unsigned i = 1; i < p->ncons; i++) {
		ret = connect_con(p, &p->cons[i]);
		if (ret)
			return ret;
	}
	/* info exchange on con 0: the big receive first, then the small ones */
	p->info_len = MAX(RTRS_INFO_RSP_LEN(s->geom.queue_depth),
			  RTRS_AUTH_RSP_LEN);
	p->info_buf = calloc(1, p->info_len + FAB_MSG_ROOM);
	if (!p->info_buf)
		return -ENOMEM;
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_buf,
				       p->info_len + FAB_MSG_ROOM,
				       FAB_ACC_LOCAL, &p->info_mr);
		if (ret)
			return ret;
	}
	p->info_rx.con = c0;
	p->info_rx.buf = p->info_buf;
	p->info_rx.len = p->info_len;
	p->info_rx.ctx.owner = &p->info_rx;
	p->info_rx.ctx.kind = CTX_INFO;
	ret = rtrs__fab_post_recv(c0->ep, p->info_buf, p->info_len,
				  rtrs__fab_mr_desc(p->info_mr), &p->info_rx.ctx);
	if (ret)
		return ret;
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_req, sizeof(p->info_req),
				       FAB_ACC_LOCAL, &p->info_req_mr);
		if (ret)
			return ret;
	}
	rtrs__proto_info_req_encode(p->info_req, s->name);
	/* before the small receives: the info receive must stay the first
	 * one posted, for the info_rsp */
	if (s->key) {
		ret = path_auth(p, c0);
		if (ret)
			return ret;
	}
	ret = con_alloc_rx(c0, (unsigned)MIN(caps->rx_size - 1,
					     (size_t)s->geom.queue_depth));
	if (!ret)
		ret = con_post_rx(c0);
	if (ret)
		return ret;
	p->info_tx.kind = CTX_MISC;
	ret = rtrs__fab_post_send(c0->ep, p->info_req,
				  s->key ? RTRS_INFO_REQ_AUTH_LEN : RTRS_INFO_REQ_LEN,
				  rtrs__fab_mr_desc(p->info_req_mr), false, 0,
				  &p->info_tx, false);
	if (ret)
		return ret;
	ret = path_wait(p, info_done, NULL, s->attr.connect_timeout_ms);
	if (!ret)
		ret = p->info_err;
	if (ret)
		return ret;
	/* counted before the state shows it: whoever sees the path back
	 * also sees the reconnect */
	if (recon)
		atomic_fetch_add(&p->st_recon_ok, 1);
	if (path_set_state(p, CLT_PATH_CONNECTED) < 0) {
		if (recon)
			atomic_fetch_sub(&p->st_recon_ok, 1);
		return p->err ? p->err : -ECONNABORTED;
	}
	path_wake(p);
	plog(RTRS_LOG_INFO, p, "connected: %u connections, qd %u, io %u",
	     p->ncons, s->geom.queue_depth, s->geom.max_io_size);
	return 0;
}

/* Heartbeat tick, on the timer thread. */
static void clt_hb(struct rtrs_timer *t)
{
	struct clt_path *p = container_of(t, struct clt_path, hb);
	struct rtrs_clt_sess *s = p->sess;

	if (atomic_load(&p->state) != CLT_PATH_CONNECTED)
		return;         /* re-armed by the next connect */
	if (atomic_exchange(&p->rx_seen, false)) {
		p->hb_missed = 0;
	} else if (++p->hb_missed >= s->attr.hb_missed_max) {
		atomic_fetch_add(&p->st_hb_timeouts, 1);
		plog(RTRS_LOG_WARN, p, "nothing received for %u heartbeats",
		     p->hb_missed);
		path_close(p, -ETIMEDOUT);
		return;
	}
	/* one heartbeat in flight at a time; a lost one is resent */
	if (!atomic_load(&p->hb_outstanding) ||
	    rtrs_now_ns() - atomic_load(&p->hb_sent_ns) >
		    (uint64_t)s->attr.hb_interval_ms * 1000000ull) {
		struct clt_con *c0 = &p->cons[0];
		int ret;

		atomic_store(&p->hb_sent_ns, rtrs_now_ns());
		atomic_store(&p->hb_outstanding, true);
		pthread_mutex_lock(&c0->lock);
		ret = c0->dead ? -ENOTCONN
			       : rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
						     rtrs_imm(RTRS_IMM_HB, 0),
						     NULL, false);
		pthread_mutex_unlock(&c0->lock);
		if (ret == -EAGAIN)
			atomic_store(&p->hb_outstanding, false);
		else if (ret && ret != -ENOTCONN) {
			path_close(p, ret);
			return;
		}
	}
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
}

/* Free what one connection attempt allocated; the endpoints are closed. */
static void path_reset(struct clt_path *p)
{
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];

		rtrs__fab_mr_close(c->rx_mr);
		c->rx_mr = NULL;
		free(c->rx);
		free(c->rxmem);
		c->rx = NULL;
		c->rxmem = NULL;
		c->nrx = 0;
		pthread_mutex_lock(&c->lock);
		c->ep = NULL;
		c->dead = false;
		pthread_mutex_unlock(&c->lock);
		c->connected = c->closed = false;
		c->cm_err = 0;
	}
	rtrs__fab_mr_close(p->iu_mr);
	rtrs__fab_mr_close(p->info_mr);
	rtrs__fab_mr_close(p->info_req_mr);
	p->iu_mr = p->info_mr = p->info_req_mr = NULL;
	free(p->info_buf);
	p->info_buf = NULL;
	p->info_done = false;
	p->info_err = 0;
	p->auth_wait = p->auth_got = false;
	p->err = 0;
	p->srv_id = 0;
	pthread_mutex_lock(&p->lock);
	p->local[0] = 0;
	pthread_mutex_unlock(&p->lock);
	p->hb_missed = 0;
	atomic_store(&p->hb_outstanding, false);
	atomic_store(&p->hb_lat_ns, 0);
}

/* Record the source address connection 0 of @p uses: while it is not
 * dead, its endpoint is not closed (path_close() marks it first). */
static void path_note_local(struct clt_path *p)
{
	struct clt_con *c = &p->cons[0];
	char buf[sizeof(p->local)] = "";

	pthread_mutex_lock(&c->lock);
	if (!c->dead && c->ep && rtrs__fab_ep_name(c->ep, buf, sizeof(buf)))
		buf[0] = 0;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_lock(&p->lock);
	snprintf(p->local, sizeof(p->local), "%s", buf);
	pthread_mutex_unlock(&p->lock);
}

/* One connection attempt of a path in CONNECTING; on failure the path is
 * closed (and, once open() has returned, reconnects as configured). */
static int path_connect(struct clt_path *p, bool recon)
{
	int ret;

	path_reset(p);
	rtrs__random(p->uuid, sizeof(p->uuid));  /* a new server path object */
	p->recon_cnt++;
	ret = path_handshake(p, recon);
	if (ret) {
		/* -ESHUTDOWN: cancelled by rtrs_clt_close() */
		plog(ret == -ESHUTDOWN ? RTRS_LOG_INFO : RTRS_LOG_ERR, p,
		     "connect failed: %s", rtrs_strerror(ret));
		path_close(p, ret);
		return ret;
	}
	path_note_local(p);
	return 0;
}

/* A path is up again: start its heartbeat, tell the user if it is the
 * first one back, re-issue held requests. */
static void path_up(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	atomic_store(&p->rx_seen, true);
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
	pthread_mutex_lock(&s->lock);
	p->recon_attempts = 0;
	pthread_mutex_unlock(&s->lock);
	link_check(s);
	release_held(s, false);
}

/* Close and wait until every endpoint of @p is gone: each one's loop has
 * run its closed(), and the close is finished. Not from a loop. */
static void path_shutdown(struct clt_path *p)
{
	path_close(p, 0);
	pthread_mutex_lock(&p->lock);
	while (!p->down_done || p->eps_open ||
	       atomic_load(&p->state) == CLT_PATH_CONNECTING)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

/* Attempt a connect of @p, which is in RECONNECTING. */
static int path_attempt(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;
	int ret;

	if (path_set_state(p, CLT_PATH_CONNECTING) < 0)
		return -EBUSY;
	pthread_mutex_lock(&s->lock);
	p->recon_attempts++;
	pthread_mutex_unlock(&s->lock);
	ret = path_connect(p, true);
	if (ret) {
		atomic_fetch_add(&p->st_recon_fail, 1);
		return ret;
	}
	plog(RTRS_LOG_INFO, p, "reconnected");
	path_up(p);
	return 0;
}

/* The session's reconnect thread: runs the due attempts one by one. */
static void *recon_main(void *arg)
{
	struct rtrs_clt_sess *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!atomic_load(&s->closing)) {
		unsigned n = atomic_load(&s->npaths);
		struct clt_path *due = NULL;
		uint64_t now = rtrs_now_ns(), next = UINT64_MAX;

		for (unsigned i = 0; i < n; i++) {
			struct clt_path *p = sess_path(s, i);

			if (!p || atomic_load(&p->state) != CLT_PATH_RECONNECTING)
				continue;
			if (p->recon_due_ns <= now) {
				due = p;
				break;
			}
			next = MIN(next, p->recon_due_ns);
		}
		if (due) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&s->ctl_lock);
			if (atomic_load(&due->state) == CLT_PATH_RECONNECTING)
				path_attempt(due);
			pthread_mutex_unlock(&s->ctl_lock);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (next == UINT64_MAX) {
			pthread_cond_wait(&s->recon_cond, &s->lock);
		} else {
			uint64_t ms = (next - now) / 1000000 + 1;
			struct timespec dl = rtrs_deadline(ms > 60000 ? 60000
								      : (unsigned)ms);

			pthread_cond_timedwait(&s->recon_cond, &s->lock, &dl);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void path_free(struct clt_path *p)
{
	if (!p)
		return;
	rtrs__timer_stop(&p->hb);
	path_reset(p);
	for (unsigned i = 0; p->cons && i < p->ncons; i++)
		pthread_mutex_destroy(&p->cons[i].lock);
	free(p->cons);
	free(p->rbufs);
	rtrs__fab_dom_put(p->dom);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* A path's address, split and checked (syntax only: host names are
 * resolved when the path's domain is opened). */
struct path_addr {
	char prov[32];          /* "": the default provider */
	char host[128], port[16];
	char src[128];          /* "": none */
};

/* "[prov://]host:port", and a source "host", "[v6]", or those with
 * ":port" (the port is not used). -EINVAL when malformed. */
static int path_addr_parse(const struct rtrs_path_addr *a, const char *prov,
			   struct path_addr *pa)
{
	const char *dst;
	char sp[16];
	size_t n;

	if (!a || !a->dst)
		return -EINVAL;
	dst = rtrs__split_provider(a->dst, prov, pa->prov, sizeof(pa->prov));
	if (!dst || rtrs__split_hostport(dst, pa->host, sizeof(pa->host),
					 pa->port, sizeof(pa->port)) ||
	    rtrs__host_check(pa->host))
		return -EINVAL;
	pa->src[0] = 0;
	if (!a->src)
		return 0;
	if (rtrs__split_hostport(a->src, pa->src, sizeof(pa->src), sp,
				 sizeof(sp))) {
		n = strlen(a->src);
		if (a->src[0] == '[' && n > 2 && a->src[n - 1] == ']')
			snprintf(pa->src, sizeof(pa->src), "%.*s", (int)(n - 2),
				 a->src + 1);
		else if (n < sizeof(pa->src))
			memcpy(pa->src, a->src, n + 1);
		else
			return -EINVAL;
	}
	return rtrs__host_check(pa->src);
}

/* @h as text that is equal for equal hosts: an address in inet_ntop()'s
 * form, a name in lower case without a trailing dot. */
static void host_canon(const char *h, char *out, size_t len)
{
	unsigned char a[16];
	size_t n;

	if (inet_pton(AF_INET, h, a) == 1 && inet_ntop(AF_INET, a, out, len))
		return;
	if (inet_pton(AF_INET6, h, a) == 1 && inet_ntop(AF_INET6, a, out, len))
		return;
	for (n = 0; h[n] && n + 1 < len; n++)
		out[n] = (char)(h[n] >= 'A' && h[n] <= 'Z' ? h[n] - 'A' + 'a'
							  : h[n]);
	if (n && out[n - 1] == '.')
		n--;
	out[n] = 0;
}

#define PATH_KEY_LEN 320

/* What makes a path: provider, destination host and port, source host (the
 * source port is not used), as text; two paths with the same key are
 * duplicates. @prov: the session's provider. */
static int path_key(const struct rtrs_path_addr *a, const char *prov,
		    char key[PATH_KEY_LEN])
{
	char dst[128], src[128] = "";
	const char *env = getenv("RTRS_PROVIDER");
	struct path_addr pa;
	int ret = path_addr_parse(a, prov, &pa);

	if (ret)
		return ret;
	if (!pa.prov[0])        /* the fabric's default, as it picks it */
		snprintf(pa.prov, sizeof(pa.prov), "%s",
			 env && *env ? env : "tcp");
	host_canon(pa.host, dst, sizeof(dst));
	if (pa.src[0])
		host_canon(pa.src, src, sizeof(src));
	snprintf(key, PATH_KEY_LEN, "%s %s %lu %s", pa.prov, dst,
		 strtoul(pa.port, NULL, 10), src);
	return 0;
}

/* -EEXIST if a path in a slot of @s is the same path as @a, else 0. */
static int path_dup(struct rtrs_clt_sess *s, const struct rtrs_path_addr *a)
{
	char key[PATH_KEY_LEN], other[PATH_KEY_LEN];
	unsigned n = atomic_load(&s->npaths);

	if (path_key(a, s->attr.provider, key))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct rtrs_path_addr pa = { NULL, NULL };

		if (!p)
			continue;
		pa.dst = p->dst;
		pa.src = p->src[0] ? p->src : NULL;
		if (!path_key(&pa, s->attr.provider, other) &&
		    !strcmp(key, other))
			return -EEXIST;
	}
	return 0;
}

/* A new path object in slot @idx, not connected (state CONNECTING). */
static int path_alloc(struct rtrs_clt_sess *s, unsigned idx,
		      const struct rtrs_path_addr *a, struct clt_path **out)
{
	struct path_addr pa;
	struct clt_path *p;
	unsigned nio;
	int ret;

	ret = path_addr_parse(a, s->attr.provider, &pa);
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->sess = s;
	p->idx = idx;
	snprintf(p->dst, sizeof(p->dst), "%s", a->dst);
	if (a->src)
		snprintf(p->src, sizeof(p->src), "%s", a->src);
	pthread_mutex_init(&p->lock, NULL);
	rtrs__cond_init_mono(&p->cond);
	atomic_init(&p->state, CLT_PATH_CONNECTING);
	p->down_done = true;
	rtrs__timer_init(&p->hb, clt_hb);
	rtrs_list_init(&p->grave);
	nio = s->attr.io_cons ? s->attr.io_cons : rtrs__ncpus();
	p->ncons = 1 + nio;
	p->cons = calloc(p->ncons, sizeof(*p->cons));
	if (!p->cons) {
		path_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < p->ncons; i++) {
		p->cons[i].path = p;
		p->cons[i].cid = i;
		pthread_mutex_init(&p->cons[i].lock, NULL);
		rtrs_list_init(&p->cons[i].backlog);
	}
	/* resolves a host name: blocks */
	ret = rtrs__fab_dom_open(pa.prov, pa.host, pa.port,
				 pa.src[0] ? pa.src : NULL, false, &p->dom);
	if (ret) {
		path_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* Allocate slot @idx and connect it. On failure the slot is left empty. */
static int path_open(struct rtrs_clt_sess *s, unsigned idx,
		     const struct rtrs_path_addr *a)
{
	struct clt_path *p;
	int ret = path_alloc(s, idx, a, &p);

	if (ret)
		return ret;
	p->admin_down = true;   /* no automatic reconnect before it was up */
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->paths[idx], p);
	if (atomic_load(&s->npaths) <= idx)
		atomic_store(&s->npaths, idx + 1);
	pthread_mutex_unlock(&s->lock);
	ret = path_connect(p, false);
	if (ret) {
		path_shutdown(p);
		pthread_mutex_lock(&s->lock);
		atomic_store(&s->paths[idx], NULL);
		pthread_mutex_unlock(&s->lock);
		path_free(p);
		return ret;
	}
	pthread_mutex_lock(&s->lock);
	p->admin_down = false;
	pthread_mutex_unlock(&s->lock);
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
	link_check(s);          /* added while no path was up: it is back */
	return 0;
}

static void sess_free(struct rtrs_clt_sess *s)
{
	struct rtrs_list *pos, *tmp;
	unsigned n = atomic_load(&s->npaths);

	if (s->recon_started) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->recon_cond);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->recon_thread, NULL);
	}
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		path_shutdown(p);
		atomic_store(&s->paths[i], NULL);
		path_free(p);
	}
	rtrs_list_for_each_safe(pos, tmp, &s->graveyard) {
		rtrs_list_del(pos);
		path_free(container_of(pos, struct clt_path, grave));
	}
	if (s->timers) {
		rtrs__timer_stop(&s->hold_timer);
		rtrs__timers_put();
	}
	if (s->engine)
		rtrs__fab_engine_put();
	rtrs__fab_poller_destroy(s->poller);
	pthread_mutex_destroy(&s->done_lock);
	free(s->permits);
	free(s->free_permits);
	free(s->reqs);
	free(s->iu);
	pthread_mutex_destroy(&s->ctl_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->recon_cond);
	if (s->key) {
		rtrs__memzero(s->key, sizeof(*s->key));
		free(s->key);
	}
	free(s);
}

static int attr_check(const struct rtrs_clt_attr *a)
{
	if (a->io_cons > RTRS_PROTO_MAX_CIDS - 1)
		return -EINVAL;
	if (a->hb_interval_ms < 100 || a->hb_missed_max < 1)
		return -EINVAL;
	if (!a->connect_timeout_ms)
		return -EINVAL;
	if ((unsigned)a->policy > RTRS_MP_POLICY_MIN_LATENCY)
		return -EINVAL;
	if (a->max_reconnect_attempts < -1 || a->reconnect_delay_ms < 0)
		return -EINVAL;
	if ((unsigned)a->progress > RTRS_PROGRESS_POLL)
		return -EINVAL;
	return 0;
}

/* the key of @auth's identity, in @out (malloc'ed) */
static int clt_key_load(const struct rtrs_auth *auth,
			struct rtrs_auth_key **out)
{
	struct rtrs_keyring kr;
	const struct rtrs_auth_key *k;
	int ret;

	if (auth->size < offsetof(struct rtrs_auth, identity) + sizeof(char *) ||
	    !auth->key_file)
		return -EINVAL;
	if (auth->identity && rtrs__proto_identity_valid(auth->identity))
		return -EINVAL;
	ret = rtrs__auth_load(auth->key_file, &kr);
	if (ret)
		return ret;
	if (auth->identity)
		k = rtrs__auth_find(&kr, auth->identity);
	else
		k = kr.n == 1 ? &kr.k[0] : NULL;
	if (!k) {
		rtrs_err("key file %s: %s", auth->key_file, auth->identity ?
			 "no key of that identity" :
			 "several keys, and no identity chosen");
		ret = -EINVAL;
	} else if (!(*out = malloc(sizeof(**out)))) {
		ret = -ENOMEM;
	} else {
		**out = *k;
	}
	rtrs__auth_free(&kr);
	return ret;
}

int rtrs_clt_open(const char *sessname, const struct rtrs_path_addr *paths,
		  size_t npaths, const struct rtrs_clt_attr *attr,
		  struct rtrs_clt_sess **out)
{
	return rtrs_clt_open_auth(sessname, paths, npaths, attr, NULL, out);
}

int rtrs_clt_open_auth(const char *sessname, const struct rtrs_path_addr *paths,
		       size_t npaths, const struct rtrs_clt_attr *attr,
		       const struct rtrs_auth *auth, struct rtrs_clt_sess **out)
{
	struct rtrs_auth_key *key = NULL;
	struct rtrs_clt_sess *s;
	int ret;

	if (!out || !paths || rtrs__proto_name_valid(sessname))
		return -EINVAL;
	if (npaths == 0)
		return -EINVAL;
	if (npaths > RTRS_MAX_PATHS)
		return -E2BIG;
	for (size_t i = 0; i < npaths; i++) {
		struct path_addr pa;

		/* every address, before any path is connected */
		if (path_addr_parse(&paths[i], NULL, &pa))
			return -EINVAL;
	}
	if (attr && attr->size < offsetof(struct rtrs_clt_attr, priv))
		return -EINVAL;
	if (auth) {
		ret = clt_key_load(auth, &key);
		if (ret)
			return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		free(key);
		return -ENOMEM;
	}
	s->key = key;
	rtrs_clt_attr_init(&s->attr);
	if (attr)
		memcpy(&s->attr, attr, MIN(attr->size, sizeof(s->attr)));
	s->attr.size = sizeof(s->attr);
	if (attr_check(&s->attr)) {
		free(s->key);
		free(s);
		return -EINVAL;
	}
	atomic_init(&s->policy, (int)s->attr.policy);
	/* RTRS_FENCE=0: no sequence fencing, as the kernel (at-least-once
	 * failover); for measuring its cost and for kernel-style servers */
	s->fence = !(getenv("RTRS_FENCE") && !strcmp(getenv("RTRS_FENCE"), "0"));
	snprintf(s->name, sizeof(s->name), "%s", sessname);
	rtrs__random(s->paths_uuid, sizeof(s->paths_uuid));
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->ctl_lock, NULL);
	rtrs__cond_init_mono(&s->cond);
	rtrs__cond_init_mono(&s->recon_cond);
	rtrs_list_init(&s->held);
	rtrs_list_init(&s->graveyard);
	pthread_mutex_init(&s->done_lock, NULL);
	rtrs_list_init(&s->done_q);
	rtrs__timer_init(&s->hold_timer, hold_tick);
	if (s->attr.progress == RTRS_PROGRESS_POLL) {
		ret = rtrs__fab_poller_create(&s->poller);
		if (ret) {
			sess_free(s);
			return ret;
		}
	}
	ret = rtrs__timers_get();
	if (ret) {
		sess_free(s);
		return ret;
	}
	s->timers = true;
	ret = rtrs__fab_engine_get();
	if (ret) {
		sess_free(s);
		return ret;
	}
	s->engine = true;
	for (size_t i = 0; i < npaths; i++) {
		/* the same path twice: -EEXIST, before any is connected */
		ret = 0;
		for (size_t j = 0; j < i && !ret; j++) {
			char a[PATH_KEY_LEN], b[PATH_KEY_LEN];

			if (!path_key(&paths[i], s->attr.provider, a) &&
			    !path_key(&paths[j], s->attr.provider, b) &&
			    !strcmp(a, b))
				ret = -EEXIST;
		}
		if (ret) {
			sess_free(s);
			return ret;
		}
	}
	for (size_t i = 0; i < npaths; i++) {
		ret = path_open(s, (unsigned)i, &paths[i]);
		if (ret) {
			sess_free(s);
			return ret;
		}
	}
	ret = -pthread_create(&s->recon_thread, NULL, recon_main, s);
	if (ret) {
		sess_free(s);
		return ret;
	}
	s->recon_started = true;
	pthread_mutex_lock(&s->lock);
	s->opened = true;       /* link events from now on */
	pthread_mutex_unlock(&s->lock);
	if (!s->attr.ctl_disable)
		rtrs__ctl_register(RTRS_CTL_CLT, s);
	*out = s;
	return 0;
}

/*
 * Tell every fencing server path that the session is closing and wait
 * (bounded) for the acknowledgement: the server then frees the session with
 * its last path instead of keeping it linger_ms for retries that will never
 * come, and the name is free for the next client at once.
 */
static void sess_say_goodbye(struct rtrs_clt_sess *s)
{
	unsigned n = atomic_load(&s->npaths);
	bool sent[RTRS_MAX_PATHS] = { false };

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct clt_con *c0;
		int ret = -ENOTCONN;

		if (!p || atomic_load(&p->state) != CLT_PATH_CONNECTED ||
		    !(p->rsp.flags & RTRS_MSG_FENCE_F))
			continue;
		c0 = &p->cons[0];
		pthread_mutex_lock(&p->lock);
		p->close_acked = false;
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_lock(&c0->lock);
		if (!c0->dead)
			ret = rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
						  rtrs_imm(RTRS_IMM_CLOSE, 0),
						  NULL, false);
		pthread_mutex_unlock(&c0->lock);
		sent[i] = ret == 0;
	}
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct timespec dl = rtrs_deadline(RTRS_CLOSE_ACK_MS);
		bool acked;

		if (!p || !sent[i])
			continue;
		pthread_mutex_lock(&p->lock);
		while (!p->close_acked &&
		       atomic_load(&p->state) == CLT_PATH_CONNECTED &&
		       pthread_cond_timedwait(&p->cond, &p->lock, &dl) == 0)
			;
		acked = p->close_acked;
		pthread_mutex_unlock(&p->lock);
		/* one acknowledgement is enough: the session is server-wide */
		if (acked)
			break;
	}
}

void rtrs_clt_close(struct rtrs_clt_sess *s)
{
	unsigned n;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->cond);       /* permit waiters */
	pthread_cond_broadcast(&s->recon_cond);
	/* cancel the connects in progress (a path verb's, the reconnect
	 * thread's): path_wait() sees closing. A path is freed only with
	 * s->lock held to clear its slot, or by sess_free(). */
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++)
		if (sess_path(s, i))
			path_wake(sess_path(s, i));
	/* the path verbs running on other threads end (-ESHUTDOWN), and a
	 * link event being delivered returns */
	while (s->verbs || s->ev_running)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	rtrs__ctl_unregister(s);        /* waits for a running rtrsctl command */
	if (s->recon_started) {
		pthread_join(s->recon_thread, NULL);
		s->recon_started = false;
	}
	release_held(s, false);                 /* fails them: closing */
	if (s->poller) {
		/* the application may not poll any more: answers on the IO
		 * connections are read here, and pending callbacks run here */
		while (atomic_load(&s->io_pending))
			if (rtrs_clt_poll(s, 100) < 0)
				break;
	}
	pthread_mutex_lock(&s->lock);
	while (atomic_load(&s->inflight))
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	sess_say_goodbye(s);
	sess_free(s);
}

/* Run the callbacks of requests completed off the polling thread. */
static void run_done_q(struct rtrs_clt_sess *s)
{
	struct rtrs_list q, *pos, *tmp;

	pthread_mutex_lock(&s->done_lock);
	rtrs_list_take(&q, &s->done_q);
	pthread_mutex_unlock(&s->done_lock);
	rtrs_list_for_each_safe(pos, tmp, &q) {
		struct clt_req *r = container_of(pos, struct clt_req, done_node);

		rtrs_list_del(pos);
		run_conf(r, &r->ops, r->done_status);
	}
}

int rtrs_clt_poll(struct rtrs_clt_sess *s, int timeout_ms)
{
	struct polling saved = polling;
	uint64_t end = 0, idle_since = 0, now;
	int ran;

	if (!s || !s->poller || timeout_ms < -1)
		return -EINVAL;
	if (polling.sess == s)
		return -EDEADLK;
	polling.sess = s;
	polling.ran = 0;
	if (timeout_ms > 0)
		end = rtrs_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int left = timeout_ms;

		run_done_q(s);
		rtrs__fab_poller_progress(s->poller);
		if (polling.ran || !timeout_ms || !atomic_load(&s->io_pending))
			break;
		now = rtrs_now_ns();
		if (!idle_since)
			idle_since = now;
		if (timeout_ms > 0) {
			if (now >= end)
				break;
			left = (int)((end - now + 999999) / 1000000);
		}
		if (rtrs__fab_may_spin(idle_since, now))
			continue;       /* $RTRS_POLL_US, while a CPU is spare */
		rtrs__fab_poller_wait(s->poller, left);
	}
	ran = polling.ran;
	polling = saved;
	return ran;
}

int rtrs_clt_query(struct rtrs_clt_sess *s, struct rtrs_attrs *a)
{
	if (!s || !a)
		return -EINVAL;
	if (!any_path_connected(s, NULL))
		return -ENOTCONN;
	a->queue_depth = s->geom.queue_depth;
	a->max_io_size = s->geom.max_io_size;
	a->max_segments = s->max_segments;
	a->max_hdr_size = s->geom.max_hdr_size;
	return 0;
}

int rtrs_clt_get_stats(struct rtrs_clt_sess *s, struct rtrs_clt_stats *st)
{
	unsigned n;

	if (!s || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->read_cnt = atomic_load(&s->st_read_cnt);
	st->read_bytes = atomic_load(&s->st_read_bytes);
	st->write_cnt = atomic_load(&s->st_write_cnt);
	st->write_bytes = atomic_load(&s->st_write_bytes);
	st->errors = atomic_load(&s->st_errors);
	st->inflight = atomic_load(&s->inflight);
	st->cpu_migration_from = atomic_load(&s->st_mig_from);
	st->cpu_migration_to = atomic_load(&s->st_mig_to);
	st->tx_backlog = atomic_load(&s->st_backlog);
	st->failovers = atomic_load(&s->st_failovers);
	st->held = atomic_load(&s->st_held);
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		st->paths++;
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			st->paths_connected++;
	}
	return 0;
}

/* ---- runtime path control ---- */

static struct clt_path *path_get(struct rtrs_clt_sess *s, unsigned idx)
{
	return idx < RTRS_MAX_PATHS && idx < atomic_load(&s->npaths)
		       ? sess_path(s, idx) : NULL;
}

/*
 * The path verbs (add, remove, disconnect, reconnect) run one at a time,
 * under s->ctl_lock, between verb_begin() and verb_end(). s->verbs counts
 * the callers in them, waiting for ctl_lock included: rtrs_clt_close()
 * refuses new ones, cancels a connect in progress and waits until none is
 * left before it frees anything. A verb that got ctl_lock after close began
 * returns -ESHUTDOWN.
 */
static void verb_end(struct rtrs_clt_sess *s)
{
	pthread_mutex_unlock(&s->ctl_lock);
	pthread_mutex_lock(&s->lock);
	if (--s->verbs == 0 && atomic_load(&s->closing))
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);   /* close may free @s after it */
}

static int verb_begin(struct rtrs_clt_sess *s)
{
	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (atomic_load(&s->closing)) {
		pthread_mutex_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	s->verbs++;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_lock(&s->ctl_lock);
	if (atomic_load(&s->closing)) {
		verb_end(s);
		return -ESHUTDOWN;
	}
	return 0;
}

/* verb_begin() and the path at slot @idx (0), or an error and no verb. */
static int ctl_get_path(struct rtrs_clt_sess *s, unsigned idx,
			struct clt_path **p)
{
	int ret = verb_begin(s);

	if (ret)
		return ret;
	*p = path_get(s, idx);
	if (!*p) {
		verb_end(s);
		return -ENOENT;
	}
	return 0;
}

int rtrs_clt_path_slots(struct rtrs_clt_sess *s)
{
	return s ? (int)atomic_load(&s->npaths) : -EINVAL;
}

int rtrs_clt_path_info(struct rtrs_clt_sess *s, unsigned idx,
		       struct rtrs_path_info *in)
{
	struct clt_path *p;

	if (!s || !in)
		return -EINVAL;
	p = path_get(s, idx);
	if (!p)
		return -ENOENT;
	memset(in, 0, sizeof(*in));
	in->idx = idx;
	in->state = (enum rtrs_path_state)atomic_load(&p->state);
	snprintf(in->src, sizeof(in->src), "%s", p->src);
	snprintf(in->dst, sizeof(in->dst), "%s", p->dst);
	in->read_cnt = atomic_load(&p->st_read_cnt);
	in->read_bytes = atomic_load(&p->st_read_bytes);
	in->write_cnt = atomic_load(&p->st_write_cnt);
	in->write_bytes = atomic_load(&p->st_write_bytes);
	in->inflight = atomic_load(&p->inflight);
	in->failovers = atomic_load(&p->st_failovers);
	in->reconnects_ok = atomic_load(&p->st_recon_ok);
	in->reconnects_failed = atomic_load(&p->st_recon_fail);
	in->hb_timeouts = atomic_load(&p->st_hb_timeouts);
	in->cur_latency_ns = atomic_load(&p->hb_lat_ns);
	in->cpu_migration_from = atomic_load(&p->st_mig_from);
	in->cpu_migration_to = atomic_load(&p->st_mig_to);
	return 0;
}

int rtrs_clt_path_link(struct rtrs_clt_sess *s, unsigned idx,
		       struct rtrs_path_link *link, size_t size)
{
	struct rtrs_path_link l = { 0 };
	struct clt_path *p;

	if (!s || !link || !size)
		return -EINVAL;
	p = path_get(s, idx);
	if (!p)
		return -ENOENT;
	if (p->dom) {
		const struct fab_caps *c = rtrs__fab_dom_caps(p->dom);

		snprintf(l.provider, sizeof(l.provider), "%s", c->prov);
		snprintf(l.domain, sizeof(l.domain), "%s", c->domain);
	}
	if (atomic_load(&p->state) == RTRS_PATH_CONNECTED) {
		pthread_mutex_lock(&p->lock);
		snprintf(l.src_resolved, sizeof(l.src_resolved), "%s",
			 p->local);
		pthread_mutex_unlock(&p->lock);
	}
	memcpy(link, &l, size < sizeof(l) ? size : sizeof(l));
	return 0;
}

int rtrs_clt_add_path(struct rtrs_clt_sess *s, const struct rtrs_path_addr *a,
		      unsigned *idx)
{
	struct path_addr pa;
	unsigned i, n;
	int ret;

	if (!s || path_addr_parse(a, NULL, &pa))
		return -EINVAL;
	ret = verb_begin(s);
	if (ret)
		return ret;
	ret = path_dup(s, a);
	if (ret) {
		verb_end(s);
		return ret;
	}
	n = atomic_load(&s->npaths);
	for (i = 0; i < n && sess_path(s, i); i++)
		;
	if (i >= RTRS_MAX_PATHS) {
		verb_end(s);
		return -E2BIG;
	}
	ret = path_open(s, i, a);
	if (!ret)
		release_held(s, false);
	verb_end(s);
	if (!ret && idx)
		*idx = i;
	return ret;
}

int rtrs_clt_disconnect_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct clt_path *p;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	p->admin_down = true;
	/* a scheduled reconnect is cancelled */
	path_set_state(p, CLT_PATH_CLOSED);
	pthread_mutex_unlock(&s->lock);
	path_shutdown(p);
	plog(RTRS_LOG_INFO, p, "disconnected by request");
	verb_end(s);
	return 0;
}

int rtrs_clt_reconnect_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct clt_path *p;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	p->admin_down = true;           /* no automatic attempt meanwhile */
	pthread_mutex_unlock(&s->lock);
	path_shutdown(p);
	pthread_mutex_lock(&s->lock);
	p->admin_down = false;
	if (atomic_load(&p->state) == CLT_PATH_CLOSED)
		path_set_state(p, CLT_PATH_RECONNECTING);
	pthread_mutex_unlock(&s->lock);
	ret = path_attempt(p);
	verb_end(s);
	return ret;
}

int rtrs_clt_remove_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct clt_path *p;
	uint64_t until;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	if (atomic_load(&p->inflight) && !any_path_connected(s, p)) {
		verb_end(s);
		return -EBUSY;
	}
	/* drain: no new requests; the ones in flight get time to finish
	 * (not when the session is closing: close waits for them anyway) */
	atomic_store(&p->draining, true);
	until = rtrs_now_ms() + 5000;
	while (atomic_load(&p->inflight) &&
	       atomic_load(&p->state) == CLT_PATH_CONNECTED &&
	       !atomic_load(&s->closing) && rtrs_now_ms() < until)
		usleep(1000);
	pthread_mutex_lock(&s->lock);
	p->admin_down = true;
	path_set_state(p, CLT_PATH_CLOSED);
	pthread_mutex_unlock(&s->lock);
	path_shutdown(p);               /* what is left fails over */
	path_set_state(p, CLT_PATH_DEAD);
	rtrs__timer_stop(&p->hb);
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->paths[idx], NULL);
	rtrs_list_add_tail(&s->graveyard, &p->grave);
	pthread_mutex_unlock(&s->lock);
	plog(RTRS_LOG_INFO, p, "removed");
	verb_end(s);
	return 0;
}

int rtrs_clt_set_policy(struct rtrs_clt_sess *s, enum rtrs_mp_policy policy)
{
	if (!s || (unsigned)policy > RTRS_MP_POLICY_MIN_LATENCY)
		return -EINVAL;
	atomic_store(&s->policy, (int)policy);
	return 0;
}

int rtrs_clt_get_policy(struct rtrs_clt_sess *s)
{
	return s ? atomic_load(&s->policy) : -EINVAL;
}

int rtrs_clt_set_max_reconnect_attempts(struct rtrs_clt_sess *s, int n)
{
	unsigned np;

	if (!s || n < -1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->attr.max_reconnect_attempts = n;
	/* a path waiting for its next attempt that has had its share now
	 * gives up, as it would after its next failed one */
	np = atomic_load(&s->npaths);
	for (unsigned i = 0; n >= 0 && i < np; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p && p->recon_attempts >= n &&
		    atomic_load(&p->state) == CLT_PATH_RECONNECTING)
			path_set_state(p, CLT_PATH_CLOSED);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int rtrs_clt_get_max_reconnect_attempts(struct rtrs_clt_sess *s)
{
	int n;

	if (!s)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	n = s->attr.max_reconnect_attempts;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int rtrs_clt_reset_stats(struct rtrs_clt_sess *s)
{
	unsigned n;

	if (!s)
		return -EINVAL;
	atomic_store(&s->st_read_cnt, 0);
	atomic_store(&s->st_read_bytes, 0);
	atomic_store(&s->st_write_cnt, 0);
	atomic_store(&s->st_write_bytes, 0);
	atomic_store(&s->st_errors, 0);
	atomic_store(&s->st_mig_from, 0);
	atomic_store(&s->st_mig_to, 0);
	atomic_store(&s->st_backlog, 0);
	atomic_store(&s->st_failovers, 0);
	atomic_store(&s->st_held, 0);
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		atomic_store(&p->st_read_cnt, 0);
		atomic_store(&p->st_read_bytes, 0);
		atomic_store(&p->st_write_cnt, 0);
		atomic_store(&p->st_write_bytes, 0);
		atomic_store(&p->st_failovers, 0);
		atomic_store(&p->st_recon_ok, 0);
		atomic_store(&p->st_recon_fail, 0);
		atomic_store(&p->st_hb_timeouts, 0);
		atomic_store(&p->st_mig_from, 0);
		atomic_store(&p->st_mig_to, 0);
	}
	return 0;
}

/* ---- memory registration ---- */

int rtrs_mr_reg(struct rtrs_clt_sess *s, void *buf, size_t len,
		struct rtrs_mr **out)
{
	struct rtrs_mr *m;
	int ret = 0;

	if (!s || !buf || !len || !out)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->sess = s;
	m->buf = buf;
	m->len = len;
	for (unsigned i = 0; i < atomic_load(&s->npaths) && !ret; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p)
			ret = rtrs__fab_mr_reg(p->dom, buf, len, FAB_ACC_LOCAL,
					       &m->mrs[i]);
	}
	if (ret) {
		rtrs_mr_dereg(m);
		return ret;
	}
	*out = m;
	return 0;
}

int rtrs_mr_dereg(struct rtrs_mr *m)
{
	if (!m)
		return -EINVAL;
	for (unsigned i = 0; i < RTRS_MAX_PATHS; i++)
		rtrs__fab_mr_close(m->mrs[i]);
	free(m);
	return 0;
}
