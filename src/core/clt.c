// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client: sessions, paths, connections, permits and requests.
 * See core.h for the locking rules and docs/protocol.md for the wire.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define plog(lvl, p, fmt, ...)                                               \
	rtrs_log(lvl, "clt %s path %s: " fmt, (p)->sess->name, (p)->dst,     \
		 ##__VA_ARGS__)

static void clt_cqe(void *ctx, const struct fab_cqe *c);
static void clt_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
static void clt_tx_ready(void *ctx);
static void clt_closed(void *ctx);

static const struct fab_ep_ops clt_ep_ops = {
	.cqe = clt_cqe,
	.cm = clt_cm,
	.tx_ready = clt_tx_ready,
	.closed = clt_closed,
};

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

/* Move @r out of POSTED and run its completion; false if someone else did. */
static bool complete_req(struct clt_req *r, int status)
{
	struct rtrs_clt_sess *s = r->sess;
	struct rtrs_req_ops ops;
	int expected = REQ_POSTED;
	int cpu;

	if (!atomic_compare_exchange_strong(&r->state, &expected, REQ_DONE))
		return false;
	req_release_mrs(r);
	if (status) {
		atomic_fetch_add(&s->st_errors, 1);
	} else if (r->dir == RTRS_READ) {
		atomic_fetch_add_explicit(&s->st_read_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_read_bytes, r->data_len,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&s->st_write_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_write_bytes, r->data_len,
					  memory_order_relaxed);
	}
	cpu = sched_getcpu();
	if (cpu >= 0 && r->submit_cpu >= 0 && cpu != r->submit_cpu) {
		atomic_fetch_add_explicit(&s->st_mig_from, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_mig_to, 1, memory_order_relaxed);
	}
	atomic_fetch_sub(&r->con->path->inflight, 1);
	ops = r->ops;
	atomic_store(&r->state, REQ_IDLE);
	/* the last one out wakes a close() waiting for in-flight requests */
	if (atomic_fetch_sub(&s->inflight, 1) == 1 && atomic_load(&s->closing)) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	ops.conf(ops.priv, status);
	return true;
}

/* ---- path failure ---- */

static void fail_path_reqs(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	for (uint32_t i = 0; i < s->geom.queue_depth; i++) {
		struct clt_req *r = &s->reqs[i];

		if (atomic_load(&r->state) != REQ_POSTED || r->con->path != p)
			continue;
		pthread_mutex_lock(&r->con->lock);
		if (r->bl_node.next != &r->bl_node)
			rtrs_list_del(&r->bl_node);
		pthread_mutex_unlock(&r->con->lock);
		complete_req(r, -ECONNABORTED);
	}
}

static bool any_path_connected(struct rtrs_clt_sess *s, struct clt_path *except)
{
	for (unsigned i = 0; i < s->npaths; i++)
		if (s->paths[i] && s->paths[i] != except &&
		    atomic_load(&s->paths[i]->state) == CLT_PATH_CONNECTED)
			return true;
	return false;
}

/* Close every connection of @p. Any thread; idempotent. The requests of
 * the path are failed once all its endpoints are closed (clt_closed). */
static void path_close(struct clt_path *p, int err)
{
	int st = atomic_load(&p->state);

	do {
		if (st == CLT_PATH_CLOSING || st == CLT_PATH_CLOSED)
			return;
	} while (!atomic_compare_exchange_weak(&p->state, &st,
					       CLT_PATH_CLOSING));
	if (err)
		plog(RTRS_LOG_WARN, p, "closing: %s", rtrs_strerror(err));
	pthread_mutex_lock(&p->lock);
	if (!p->err)
		p->err = err ? err : -ECONNABORTED;
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];

		pthread_mutex_lock(&c->lock);
		c->dead = true;
		pthread_mutex_unlock(&c->lock);
	}
	for (unsigned i = 0; i < p->ncons; i++)
		if (p->cons[i].ep)
			rtrs__fab_ep_close(p->cons[i].ep);
	if (st == CLT_PATH_CONNECTED && p->sess->attr.link_ev &&
	    !atomic_load(&p->sess->closing) && !any_path_connected(p->sess, p))
		p->sess->attr.link_ev(p->sess->attr.priv,
				      RTRS_CLT_LINK_EV_DISCONNECTED);
	/* wake an open() waiting on the handshake */
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void clt_closed(void *ctx)
{
	struct clt_con *c = ctx;
	struct clt_path *p = c->path;

	pthread_mutex_lock(&p->lock);
	c->closed = true;
	if (p->eps_open > 1) {
		p->eps_open--;
		pthread_mutex_unlock(&p->lock);
		return;
	}
	pthread_mutex_unlock(&p->lock);
	/* the last endpoint: nothing of this path is left in the provider,
	 * so its requests can complete. eps_open drops to 0 only afterwards:
	 * a waiter in path_shutdown() frees the path after that. */
	if (p->reqs_ready)
		fail_path_reqs(p);
	pthread_mutex_lock(&p->lock);
	p->eps_open = 0;
	atomic_store(&p->state, CLT_PATH_CLOSED);
	pthread_cond_broadcast(&p->cond);
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
	complete_req(r, status);
}

static void info_rbuf(void *arg, uint32_t chunk, uint64_t addr, uint32_t key)
{
	struct clt_path *p = arg;

	p->rbufs[chunk].addr = addr;
	atomic_store(&p->rbufs[chunk].key, key);
}

static void handle_info_rsp(struct clt_path *p, const void *buf, size_t len)
{
	int ret = rtrs__proto_info_rsp_decode(buf, len, &p->sess->geom,
					      info_rbuf, p);

	pthread_mutex_lock(&p->lock);
	p->info_done = true;
	p->info_err = ret;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static void clt_cqe(void *ctx, const struct fab_cqe *c)
{
	struct clt_con *con = ctx;
	struct clt_path *p = con->path;

	if (c->err) {
		if (atomic_load(&p->state) <= CLT_PATH_CONNECTED)
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
			break;  /* liveness; heartbeats come with multipath */
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
		else if (rtrs_imm_type(c->imm) != RTRS_IMM_HB &&
			 rtrs_imm_type(c->imm) != RTRS_IMM_HB_ACK) {
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
	struct clt_con *c = r->con;
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

static struct clt_path *pick_path(struct rtrs_clt_sess *s)
{
	/* one pass over the paths; policies come with multipath */
	for (unsigned i = 0; i < s->npaths; i++)
		if (s->paths[i] &&
		    atomic_load(&s->paths[i]->state) == CLT_PATH_CONNECTED)
			return s->paths[i];
	return NULL;
}

static bool permit_valid(const struct rtrs_clt_sess *s,
			 const struct rtrs_permit *pm)
{
	return pm >= s->permits && pm < s->permits + s->geom.queue_depth &&
	       pm->taken;
}

static int prepare_data(struct clt_req *r, struct clt_path *p,
			const struct iovec *data, size_t data_cnt)
{
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	struct fab_mr *umr = r->mr ? r->mr->mrs[p->idx] : NULL;
	struct rtrs_sg_desc desc[RTRS_MAX_SEGMENTS];
	int ret;

	for (size_t i = 0; i < data_cnt; i++) {
		r->iov[i] = data[i];
		r->desc[i] = rtrs__fab_mr_desc(umr);
		if (r->dir == RTRS_READ) {
			struct fab_mr *m;

			/* a registration per READ, revoked at completion */
			ret = rtrs__fab_mr_reg(p->dom, data[i].iov_base,
					       data[i].iov_len,
					       FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE,
					       &m);
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

		rtrs__proto_read_msg_encode(iu + r->usr_len, r->usr_len, desc,
					    (uint16_t)data_cnt);
		r->iov[0].iov_base = iu;
		r->iov[0].iov_len = r->usr_len + r->msg_len;
		r->desc[0] = rtrs__fab_mr_desc(p->iu_mr);
	} else {
		char *iu = req_iu(r);

		rtrs__proto_write_msg_encode(iu + r->usr_len, r->usr_len);
		r->iov[data_cnt].iov_base = iu;
		r->iov[data_cnt].iov_len = r->usr_len + r->msg_len;
		r->desc[data_cnt] = rtrs__fab_mr_desc(p->iu_mr);
	}
	return 0;
}

int rtrs_clt_request(struct rtrs_clt_sess *s, enum rtrs_dir dir,
		     const struct rtrs_req_ops *ops, struct rtrs_permit *pm,
		     const struct iovec *usr, size_t usr_cnt,
		     const struct iovec *data, size_t data_cnt,
		     struct rtrs_mr *mr)
{
	struct clt_req *r;
	struct clt_path *p;
	struct clt_con *c;
	size_t usr_len = 0, msg_len;
	uint64_t data_len = 0;
	char *iu;
	int ret, cpu;

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
	msg_len = dir == RTRS_READ ? RTRS_READ_MSG_LEN(data_cnt)
				   : RTRS_WRITE_MSG_LEN;
	if (usr_len + msg_len > hdr_size(s) || data_len > s->geom.max_io_size)
		return -EMSGSIZE;

	r = &s->reqs[pm->mem_id];
	if (atomic_load(&r->state) != REQ_IDLE)
		return -EBUSY;
	p = pick_path(s);
	if (!p)
		return -ENOTCONN;
	cpu = sched_getcpu();
	if (pm->con_type == RTRS_ADMIN_CON || p->ncons == 1)
		c = &p->cons[0];
	else
		c = &p->cons[1 + (unsigned)(cpu < 0 ? 0 : cpu) % (p->ncons - 1)];

	r->dir = dir;
	r->ops = *ops;
	r->mr = mr;
	r->data_cnt = (unsigned)data_cnt;
	r->data_len = (uint32_t)data_len;
	r->usr_len = (uint16_t)usr_len;
	r->msg_len = (uint16_t)msg_len;
	r->next_seg = 0;
	r->posted_bytes = 0;
	r->submit_cpu = cpu;
	iu = req_iu(r);
	for (size_t i = 0, off = 0; i < usr_cnt; off += usr[i].iov_len, i++)
		if (usr[i].iov_len)
			memcpy(iu + off, usr[i].iov_base, usr[i].iov_len);
	ret = prepare_data(r, p, data, data_cnt);
	if (ret) {
		req_release_mrs(r);
		return ret;
	}

	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		req_release_mrs(r);
		return -ENOTCONN;
	}
	r->con = c;
	atomic_fetch_add(&s->inflight, 1);
	atomic_fetch_add(&p->inflight, 1);
	atomic_store(&r->state, REQ_POSTED);
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
		/* nothing reached the provider: fail synchronously */
		atomic_store(&r->state, REQ_IDLE);
		atomic_fetch_sub(&p->inflight, 1);
		atomic_fetch_sub(&s->inflight, 1);
		pthread_mutex_unlock(&c->lock);
		req_release_mrs(r);
		return ret;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)        /* partly posted: the path is broken, fail it there */
		path_close(p, ret);
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
	c->rxmem = calloc(n, RTRS_RX_BUF);
	if (!c->rx || !c->rxmem)
		return -ENOMEM;
	if (rtrs__fab_dom_caps(p->dom)->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, c->rxmem, (size_t)n * RTRS_RX_BUF,
				       FAB_ACC_LOCAL, &c->rx_mr);
		if (ret)
			return ret;
	}
	c->nrx = n;
	for (unsigned i = 0; i < n; i++) {
		c->rx[i].con = c;
		c->rx[i].buf = c->rxmem + (size_t)i * RTRS_RX_BUF;
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

/* Wait on the path condvar until @done or the timeout. */
static int path_wait(struct clt_path *p, bool (*done)(struct clt_path *, void *),
		     void *arg, unsigned ms)
{
	struct timespec dl = rtrs_deadline(ms);
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	while (!done(p, arg)) {
		if (atomic_load(&p->state) >= CLT_PATH_CLOSING) {
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
	};
	unsigned loop = c->cid == 0 ? 0 : (c->cid - 1) % rtrs__fab_nloops();
	int ret;

	memcpy(req.sess_uuid, p->uuid, 16);
	memcpy(req.paths_uuid, s->paths_uuid, 16);
	c->loop = loop;
	ret = rtrs__fab_ep_create(p->dom, loop, &clt_ep_ops, c, &c->ep);
	if (ret)
		return ret;
	pthread_mutex_lock(&p->lock);
	p->eps_open++;
	pthread_mutex_unlock(&p->lock);
	if (c->cid) {
		/* a receive for every response that can be outstanding */
		size_t n = MIN(rtrs__fab_dom_caps(p->dom)->rx_size,
			       (size_t)s->geom.queue_depth);

		ret = con_alloc_rx(c, (unsigned)n);
		if (!ret)
			ret = con_post_rx(c);
		if (ret)
			return ret;
	}
	rtrs__proto_conn_req_encode(priv, &req);
	ret = rtrs__fab_ep_connect(c->ep, priv, sizeof(priv));
	if (ret)
		return ret;
	ret = path_wait(p, con_done, c, s->attr.connect_timeout_ms);
	if (!ret)
		ret = c->cm_err;
	return ret;
}

static int path_handshake(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	struct clt_con *c0 = &p->cons[0];
	int ret;

	ret = connect_con(p, c0);
	if (ret)
		return ret;
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
	p->info_len = RTRS_INFO_RSP_LEN(s->geom.queue_depth);
	p->info_buf = calloc(1, p->info_len);
	if (!p->info_buf)
		return -ENOMEM;
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_buf, p->info_len,
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
	ret = con_alloc_rx(c0, (unsigned)MIN(caps->rx_size - 1,
					     (size_t)s->geom.queue_depth));
	if (!ret)
		ret = con_post_rx(c0);
	if (ret)
		return ret;
	rtrs__proto_info_req_encode(p->info_req, s->name);
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_req, sizeof(p->info_req),
				       FAB_ACC_LOCAL, &p->info_req_mr);
		if (ret)
			return ret;
	}
	p->info_tx.kind = CTX_MISC;
	ret = rtrs__fab_post_send(c0->ep, p->info_req, sizeof(p->info_req),
				  rtrs__fab_mr_desc(p->info_req_mr), false, 0,
				  &p->info_tx, false);
	if (ret)
		return ret;
	ret = path_wait(p, info_done, NULL, s->attr.connect_timeout_ms);
	if (!ret)
		ret = p->info_err;
	if (ret)
		return ret;
	atomic_store(&p->state, CLT_PATH_CONNECTED);
	plog(RTRS_LOG_INFO, p, "connected: %u connections, qd %u, io %u",
	     p->ncons, s->geom.queue_depth, s->geom.max_io_size);
	return 0;
}

static void path_free(struct clt_path *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];

		rtrs__fab_mr_close(c->rx_mr);
		free(c->rx);
		free(c->rxmem);
		pthread_mutex_destroy(&c->lock);
	}
	free(p->cons);
	rtrs__fab_mr_close(p->iu_mr);
	rtrs__fab_mr_close(p->info_mr);
	rtrs__fab_mr_close(p->info_req_mr);
	free(p->info_buf);
	free(p->rbufs);
	rtrs__fab_dom_put(p->dom);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* Close and wait until every endpoint of @p is gone. Not from a loop. */
static void path_shutdown(struct clt_path *p)
{
	path_close(p, 0);
	pthread_mutex_lock(&p->lock);
	while (p->eps_open)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static int path_open(struct rtrs_clt_sess *s, unsigned idx,
		     const struct rtrs_path_addr *a)
{
	char host[128], port[16];
	struct clt_path *p;
	unsigned nio;
	int ret;

	ret = rtrs__split_hostport(a->dst, host, sizeof(host), port,
				   sizeof(port));
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
	rtrs__random(p->uuid, sizeof(p->uuid));
	pthread_mutex_init(&p->lock, NULL);
	rtrs__cond_init_mono(&p->cond);
	atomic_init(&p->state, CLT_PATH_CONNECTING);
	s->paths[idx] = p;
	s->npaths = idx + 1;
	nio = s->attr.io_cons ? s->attr.io_cons : rtrs__ncpus();
	p->ncons = 1 + nio;
	p->cons = calloc(p->ncons, sizeof(*p->cons));
	if (!p->cons)
		return -ENOMEM;
	for (unsigned i = 0; i < p->ncons; i++) {
		p->cons[i].path = p;
		p->cons[i].cid = i;
		pthread_mutex_init(&p->cons[i].lock, NULL);
		rtrs_list_init(&p->cons[i].backlog);
	}
	if (a->src) {
		char sh[128], sp[16];

		/* "host" or "host:port" */
		if (rtrs__split_hostport(a->src, sh, sizeof(sh), sp, sizeof(sp)))
			snprintf(sh, sizeof(sh), "%s", a->src);
		ret = rtrs__fab_dom_open(s->attr.provider, host, port, sh, false,
					 &p->dom);
	} else {
		ret = rtrs__fab_dom_open(s->attr.provider, host, port, NULL,
					 false, &p->dom);
	}
	if (ret)
		return ret;
	ret = path_handshake(p);
	if (ret)
		plog(RTRS_LOG_ERR, p, "connect failed: %s", rtrs_strerror(ret));
	return ret;
}

static void sess_free(struct rtrs_clt_sess *s)
{
	for (unsigned i = 0; i < s->npaths; i++) {
		if (!s->paths[i])
			continue;
		path_shutdown(s->paths[i]);
		path_free(s->paths[i]);
		s->paths[i] = NULL;
	}
	if (s->engine)
		rtrs__fab_engine_put();
	free(s->permits);
	free(s->free_permits);
	free(s->reqs);
	free(s->iu);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

int rtrs_clt_open(const char *sessname, const struct rtrs_path_addr *paths,
		  size_t npaths, const struct rtrs_clt_attr *attr,
		  struct rtrs_clt_sess **out)
{
	struct rtrs_clt_sess *s;
	int ret;

	if (!out || !paths || rtrs__proto_name_valid(sessname))
		return -EINVAL;
	if (npaths == 0)
		return -EINVAL;
	if (npaths > RTRS_MAX_PATHS)
		return -E2BIG;
	for (size_t i = 0; i < npaths; i++)
		if (!paths[i].dst)
			return -EINVAL;
	if (attr && attr->size < offsetof(struct rtrs_clt_attr, priv))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rtrs_clt_attr_init(&s->attr);
	if (attr)
		memcpy(&s->attr, attr, MIN(attr->size, sizeof(s->attr)));
	s->attr.size = sizeof(s->attr);
	if (!s->attr.connect_timeout_ms)
		s->attr.connect_timeout_ms = RTRS_DEF_CONNECT_TIMEOUT_MS;
	if (s->attr.io_cons > RTRS_PROTO_MAX_CIDS - 1) {
		free(s);
		return -EINVAL;
	}
	snprintf(s->name, sizeof(s->name), "%s", sessname);
	rtrs__random(s->paths_uuid, sizeof(s->paths_uuid));
	pthread_mutex_init(&s->lock, NULL);
	rtrs__cond_init_mono(&s->cond);
	ret = rtrs__fab_engine_get();
	if (ret) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
		free(s);
		return ret;
	}
	s->engine = true;
	for (size_t i = 0; i < npaths; i++) {
		ret = path_open(s, (unsigned)i, &paths[i]);
		if (ret) {
			sess_free(s);
			return ret;
		}
	}
	*out = s;
	return 0;
}

void rtrs_clt_close(struct rtrs_clt_sess *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->cond);       /* permit waiters */
	while (atomic_load(&s->inflight))
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	sess_free(s);
}

int rtrs_clt_query(struct rtrs_clt_sess *s, struct rtrs_attrs *a)
{
	if (!s || !a)
		return -EINVAL;
	if (!pick_path(s))
		return -ENOTCONN;
	a->queue_depth = s->geom.queue_depth;
	a->max_io_size = s->geom.max_io_size;
	a->max_segments = s->max_segments;
	a->max_hdr_size = s->geom.max_hdr_size;
	return 0;
}

int rtrs_clt_get_stats(struct rtrs_clt_sess *s, struct rtrs_clt_stats *st)
{
	if (!s || !st)
		return -EINVAL;
	st->read_cnt = atomic_load(&s->st_read_cnt);
	st->read_bytes = atomic_load(&s->st_read_bytes);
	st->write_cnt = atomic_load(&s->st_write_cnt);
	st->write_bytes = atomic_load(&s->st_write_bytes);
	st->errors = atomic_load(&s->st_errors);
	st->inflight = atomic_load(&s->inflight);
	st->cpu_migration_from = atomic_load(&s->st_mig_from);
	st->cpu_migration_to = atomic_load(&s->st_mig_to);
	st->tx_backlog = atomic_load(&s->st_backlog);
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
	for (unsigned i = 0; i < s->npaths && !ret; i++)
		if (s->paths[i])
			ret = rtrs__fab_mr_reg(s->paths[i]->dom, buf, len,
					       FAB_ACC_LOCAL, &m->mrs[i]);
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
