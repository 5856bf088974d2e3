// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * A client path's life once it exists: the one function that changes its
 * state, link events to the user, closing it (and the failover and
 * reconnect scheduling that follow), the events of its endpoints
 * (completions, CM events, tx room, closed) and its heartbeats.
 */
#include <errno.h>
#include <string.h>

#include "clt_int.h"

static void clt_cqe(void *ctx, const struct fab_cqe *c);
static void clt_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
static void clt_tx_ready(void *ctx);
static void clt_closed(void *ctx);
static void path_down_final(struct clt_path *p);

const struct fab_ep_ops rtrs__clt_ep_ops = {
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

/* The one place a path changes state (clt_int.h). */
int rtrs__clt_set_state(struct clt_path *p, int to)
{
	int cur = atomic_load(&p->state);

	do {
		if (!(path_allowed[cur] & (1u << to)))
			return -1;
	} while (!atomic_compare_exchange_weak(&p->state, &cur, to));
	return cur;
}

void rtrs__clt_path_wake(struct clt_path *p)
{
	rtrs__lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
}

const char *rtrs_path_state_str(enum rtrs_path_state st)
{
	static const char *const n[] = { "connecting", "connected", "closing",
					 "closed", "reconnecting", "dead" };

	return (unsigned)st < ARRAY_SIZE(n) ? n[st] : "unknown";
}

/* ---- link events ---- */

/*
 * The session's link is down from the moment no path is connected until
 * one is again. rtrs__clt_link_check() runs after every change of a path
 * to or from CONNECTED, after the state has changed: under s->lock it compares the
 * link as the path states show it with the link as last reported, and when
 * they differ it reports the change. The events therefore alternate,
 * DISCONNECTED first, and the last check after any change reports the
 * state the paths are in. Event k (from 0) is DISCONNECTED when k is even;
 * s->ev_seq counts those decided, s->ev_done those delivered. One thread
 * at a time delivers them, in order, without a lock held; close waits for
 * it and drops what is left.
 */
void rtrs__clt_link_check(struct rtrs_clt_sess *s)
{
	bool up;

	if (!s->attr.link_ev)
		return;
	rtrs__lock(&s->lock);
	up = rtrs__clt_any_connected(s, NULL);
	if (s->opened && !atomic_load(&s->closing) && up == s->link_down) {
		s->link_down = !up;
		s->ev_seq++;
	}
	if (s->ev_running) {
		rtrs__unlock(&s->lock);
		return;         /* the running delivery takes it */
	}
	s->ev_running = true;
	while (s->ev_done != s->ev_seq && !atomic_load(&s->closing)) {
		enum rtrs_clt_link_ev ev = s->ev_done++ % 2
						   ? RTRS_CLT_LINK_EV_RECONNECTED
						   : RTRS_CLT_LINK_EV_DISCONNECTED;

		rtrs__unlock(&s->lock);
		s->attr.link_ev(s->attr.priv, ev);
		rtrs__lock(&s->lock);
	}
	s->ev_running = false;
	if (atomic_load(&s->closing))
		pthread_cond_broadcast(&s->cond);       /* close waits for it */
	rtrs__unlock(&s->lock);
}

/* ---- closing a path ---- */

/*
 * Endpoint accounting. p->eps_open counts the endpoints of @p that exist
 * or are being created and whose ops->closed() has not run: connect_con()
 * (clt_conn.c) counts one before it creates it, rtrs__clt_ep_gone() drops
 * it when its loop has closed it (or its creation failed). p->down_done is
 * false from the moment rtrs__clt_path_close() starts a close until
 * path_down_final() has finished it. The final runs once per close, called
 * by whoever sees eps_open at 0 during the close: rtrs__clt_path_close()
 * itself, or the last rtrs__clt_ep_gone().
 */

/* Close every connection of @p. Any thread; idempotent. Its requests fail
 * over once all its endpoints are closed (path_down_final). */
void rtrs__clt_path_close(struct clt_path *p, int err)
{
	struct rtrs_clt_sess *s = p->sess;
	bool final;
	int st = rtrs__clt_set_state(p, CLT_PATH_CLOSING);

	if (st < 0)
		return;
	if (err && err != -ESHUTDOWN)
		plog(RTRS_LOG_WARN, p, "closing: %s", rtrs_strerror(err));
	rtrs__lock(&p->lock);
	if (!p->err)
		p->err = err ? err : -ECONNABORTED;
	/* none is added from now on: connect_con() counts an endpoint only
	 * while the path is CONNECTING */
	final = p->eps_open == 0;
	p->down_done = false;
	rtrs__unlock(&p->lock);
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];
		struct fab_ep *ep;

		rtrs__lock(&c->lock);
		c->dead = true;
		ep = c->ep;
		rtrs__unlock(&c->lock);
		if (ep)
			rtrs__fab_ep_close(ep);
	}
	rtrs__clt_path_wake(p);   /* an open() waiting on the handshake */
	if (st == CLT_PATH_CONNECTED)
		rtrs__clt_link_check(s);
	if (final)
		path_down_final(p);     /* the last touch of @p */
}

/* An endpoint of @p is gone: its loop closed it (that of @c), or creating
 * it failed (@c NULL). The last one of a close finishes the close. */
void rtrs__clt_ep_gone(struct clt_path *p, struct clt_con *c)
{
	bool final;

	rtrs__lock(&p->lock);
	if (c)
		c->closed = true;
	final = --p->eps_open == 0 && !p->down_done;
	if (!p->eps_open)
		/* rtrs__clt_path_shutdown() */
		pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
	if (final)
		path_down_final(p);
}

static void clt_closed(void *ctx)
{
	struct clt_con *c = ctx;

	rtrs__clt_ep_gone(c->path, c);
}

/* No endpoint of @p is left: fail its requests over, mark it CLOSED and
 * schedule a reconnect. */
static void path_down_final(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	if (atomic_load(&p->reqs_ready))
		rtrs__clt_failover(p);
	rtrs__lock(&s->lock);
	/* CLOSING -> CLOSED: only path_down_final() leaves CLOSING */
	(void)rtrs__clt_set_state(p, CLT_PATH_CLOSED);
	if (!atomic_load(&s->closing) && !p->admin_down &&
	    !atomic_load(&p->draining) &&
	    s->attr.max_reconnect_attempts != 0 &&
	    (s->attr.max_reconnect_attempts < 0 ||
	     p->recon_attempts < s->attr.max_reconnect_attempts) &&
	    rtrs__clt_set_state(p, CLT_PATH_RECONNECTING) >= 0) {
		/* delay x [0.5, 1.5): paths and clients spread out */
		uint64_t d = (uint64_t)(s->attr.reconnect_delay_ms > 0
						? s->attr.reconnect_delay_ms : 0);

		d = d * 1000000ull / 2 +
		    (d * 1000000ull * (rtrs__random_u32() % 1000)) / 1000;
		p->recon_due_ns = rtrs_now_ns() + d;
		pthread_cond_broadcast(&s->recon_cond);
	}
	/* The close is over before anyone acts on the new state: the
	 * reconnect thread reads it under s->lock, rtrs__clt_path_shutdown()
	 * waits for down_done under p->lock. Once p->lock is released a
	 * waiter in rtrs__clt_path_shutdown() may free @p: that unlock is the
	 * last touch. */
	rtrs__lock(&p->lock);
	p->down_done = true;
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&s->lock);
	rtrs__unlock(&p->lock);
}

/* ---- receive side ---- */

static void repost_rx(struct clt_con *c, struct rtrs_rx *rx)
{
	int ret = rtrs__rx_repost(&c->rx, c->ep, rx);

	if (ret && ret != -ENOTCONN)
		rtrs__clt_path_close(c->path, ret);
}

/* An answer to a request (clt_io.c); one that is not closes the path. */
static void handle_rsp(struct clt_con *c, uint32_t payload, const void *buf,
		       size_t len)
{
	int ret = rtrs__clt_handle_rsp(c, payload, buf, len);

	if (ret)
		rtrs__clt_path_close(c->path, ret);
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

	rtrs__lock(&p->lock);
	if (p->auth_wait) {
		/* the server's auth_rsp; path_auth() reads it */
		p->auth_wait = false;
		p->auth_got = true;
		p->auth_rsp_len = MIN(len, sizeof(p->auth_rsp));
		memcpy(p->auth_rsp, buf, p->auth_rsp_len);
		pthread_cond_broadcast(&p->cond);
		rtrs__unlock(&p->lock);
		return;
	}
	rtrs__unlock(&p->lock);
	ret = rtrs__proto_info_rsp_decode(buf, len, &p->sess->geom,
					      info_rbuf, p);

	rtrs__lock(&p->lock);
	p->info_done = true;
	p->info_err = ret;
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
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
			rtrs__clt_path_close(p, ret);
		return;
	}
	rtrs__hb_ack(&p->live, rtrs_now_ns());
}

static void handle_close_ack(struct clt_path *p)
{
	rtrs__lock(&p->lock);
	p->close_acked = true;
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
}

static void clt_cqe(void *ctx, const struct fab_cqe *c)
{
	struct clt_con *con = ctx;
	struct clt_path *p = con->path;

	if (!c->err)
		rtrs__hb_rx(&p->live);
	if (c->err) {
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			plog(RTRS_LOG_WARN, p, "con %u: completion error %s",
			     con->cid, rtrs_strerror(c->err));
		rtrs__clt_path_close(p, c->err);
		return;
	}
	if (c->flags & FAB_CQE_RECV) {
		struct rtrs_rx *rx = container_of(c->ctx, struct rtrs_rx, ctx);

		if (rx == &p->info_rx) {
			handle_info_rsp(p, rx->buf, c->len);
			return;
		}
		if (!(c->flags & FAB_CQE_IMM)) {
			plog(RTRS_LOG_ERR, p, "message without immediate");
			rtrs__clt_path_close(p, -EPROTO);
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
			rtrs__clt_path_close(p, -EPROTO);
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
			rtrs__clt_path_close(p, -EPROTO);
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
		rtrs__lock(&p->lock);
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
		/* the server's receives take big frames (protocol.md 2.6) */
		if (!ret && (rsp.flags & RTRS_MSG_BIG_F))
			rtrs__fab_ep_takes(c->ep, FAB_PEER_BIG);
		pthread_cond_broadcast(&p->cond);
		rtrs__unlock(&p->lock);
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
		rtrs__lock(&p->lock);
		if (!c->cm_err)
			c->cm_err = err ? err : -ECONNRESET;
		pthread_cond_broadcast(&p->cond);
		rtrs__unlock(&p->lock);
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			rtrs__clt_path_close(p, c->cm_err);
		break;
	}
}

static void clt_tx_ready(void *ctx)
{
	struct clt_con *c = ctx;
	int ret = rtrs__clt_con_flush(c);

	if (ret)
		rtrs__clt_path_close(c->path, ret);
}

/* Heartbeat tick, on the timer thread. */
void rtrs__clt_hb(struct rtrs_timer *t)
{
	struct clt_path *p = container_of(t, struct clt_path, hb);
	struct rtrs_clt_sess *s = p->sess;

	if (atomic_load(&p->state) != CLT_PATH_CONNECTED)
		return;         /* re-armed by the next connect */
	if (!rtrs__hb_tick(&p->live, s->attr.hb_missed_max)) {
		atomic_fetch_add(&p->st_hb_timeouts, 1);
		plog(RTRS_LOG_WARN, p, "nothing received for %u heartbeats",
		     p->live.missed);
		rtrs__clt_path_close(p, -ETIMEDOUT);
		return;
	}
	/* one heartbeat in flight at a time; a lost one is resent */
	if (rtrs__hb_want_send(&p->live, s->attr.hb_interval_ms,
			       rtrs_now_ns())) {
		struct clt_con *c0 = &p->cons[0];
		int ret;

		rtrs__lock(&c0->lock);
		ret = c0->dead ? -ENOTCONN
			       : rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
						     rtrs_imm(RTRS_IMM_HB, 0),
						     NULL, false);
		rtrs__unlock(&c0->lock);
		if (ret == -EAGAIN)
			rtrs__hb_unsent(&p->live);
		else if (ret && ret != -ENOTCONN) {
			rtrs__clt_path_close(p, ret);
			return;
		}
	}
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
}

/* Close and wait until every endpoint of @p is gone: each one's loop has
 * run its closed(), and the close is finished. Not from a loop. */
void rtrs__clt_path_shutdown(struct clt_path *p)
{
	rtrs__clt_path_close(p, 0);
	rtrs__lock(&p->lock);
	while (!p->down_done || p->eps_open ||
	       atomic_load(&p->state) == CLT_PATH_CONNECTING)
		rtrs__cond_wait(&p->cond, &p->lock, NULL);
	rtrs__unlock(&p->lock);
}
