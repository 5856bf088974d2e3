// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server: listeners, sessions (found by UUID), paths, chunk pools, ops.
 *
 * Lifetimes: a path holds one reference for itself, one per endpoint that
 * is not closed yet and one per op handed to rdma_ev and not answered. The
 * last reference frees the path; the last path frees its session. So
 * rtrs_srv_close() returns only when every op has been answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "srv_int.h"

static void srv_cqe(void *ctx, const struct fab_cqe *c);
static void srv_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
static void srv_tx_ready(void *ctx);
static void srv_closed(void *ctx);
static void srv_connreq(void *ctx, struct fab_connreq *req, const void *data,
			size_t len);

static const struct fab_ep_ops srv_ep_ops = {
	.cqe = srv_cqe,
	.cm = srv_cm,
	.tx_ready = srv_tx_ready,
	.closed = srv_closed,
};

static const struct fab_pep_ops srv_pep_ops = { .connreq = srv_connreq };

void rtrs_srv_attr_init(struct rtrs_srv_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->queue_depth = RTRS_DEF_QD;
	a->chunk_size = RTRS_DEF_CHUNK;
	a->always_invalidate = 1;
	a->hb_interval_ms = 1000;
	a->hb_missed_max = 5;
	a->linger_ms = 10000;
}

void rtrs_srv_limits_init(struct rtrs_srv_limits *l)
{
	if (!l)
		return;
	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->handshake_ms = 10000;
	l->max_sessions = 1024;
	l->max_paths = 32;
	l->max_conns = 8192;
	l->max_pending = 128;
}

static void *srv_mr_desc(const struct rtrs_srv_mr *m, const struct fab_dom *d)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->reg[i].dom == d)
			return rtrs__fab_mr_desc(m->reg[i].mr);
	return NULL;
}

/* ---- lifetimes ---- */

/* A session object left ctx->sessions; with ctx->lock held. */
static void sess_uncount(struct rtrs_srv_ctx *ctx, bool established)
{
	ctx->nsess_all--;
	if (established)
		ctx->nsess--;
}

static void sess_free(struct rtrs_srv_sess *s)
{
	if (s->chunks)
		munmap(s->chunks, s->chunks_len);
	for (uint32_t i = 0; s->ops && i < s->geom.queue_depth; i++)
		pthread_mutex_destroy(&s->ops[i].lock);
	free(s->ops);
	free(s);
}

static void path_free(struct srv_path *p)
{
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = p->cons[i];

		if (!c)
			continue;
		rtrs__fab_mr_close(c->rx_mr);
		free(c->rx);
		free(c->rxmem);
		pthread_mutex_destroy(&c->lock);
		free(c);
	}
	for (unsigned i = 0; i < p->nmrs; i++)
		rtrs__fab_mr_close(p->mrs[i]);
	rtrs__fab_mr_close(p->info_mr);
	rtrs__fab_mr_close(p->ops_mr);
	free(p->mrs);
	free(p->cons);
	free(p->info_rsp);
	rtrs__fab_dom_put(p->dom);
	free(p);
}

static void path_put(struct srv_path *p)
{
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	bool last, was_up, s_est;

	if (atomic_fetch_sub(&p->ref, 1) != 1)
		return;
	/* now: once the lock is dropped, an armed linger may free @s */
	pslog(RTRS_LOG_INFO, p, "path closed");
	pthread_mutex_lock(&ctx->lock);
	rtrs_list_del(&p->node);
	s->npaths--;
	if (p->counted_up)
		s->npaths_up--;
	if (p->pending)
		ctx->npending--;
	for (unsigned i = 0; i < p->cid_num; i++)
		if (p->cons[i])
			ctx->ncons--;
	last = s->npaths == 0;
	was_up = s->link_up;
	/* only an established session lingers: one that was never accepted
	 * (refused, or its handshake never finished) has nothing to keep */
	if (last && !ctx->closing && s->established &&
	    (ctx->attr.linger_ms || s->client_closed)) {
		/* keep the chunks and their fence state for a client that
		 * comes back (a retry must not run twice); a client that said
		 * CLOSE will not: free it now, but on the timer thread like a
		 * lingering one, so that an armed linger cannot race us */
		last = false;
		rtrs__timer_arm(&s->linger,
				s->client_closed ? 0 : ctx->attr.linger_ms);
	} else if (last) {
		rtrs_list_del(&s->node);
		s->gone = true;         /* an armed linger leaves it to us */
	}
	s_est = s->established;
	pthread_mutex_unlock(&ctx->lock);
	path_free(p);
	if (last) {
		if (was_up && ctx->attr.ops.link_ev)
			ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED,
					      s->priv);
		/* a linger armed when an earlier path was the last one (the
		 * client came back) must not fire on freed memory */
		rtrs__timer_stop(&s->linger);
		sess_free(s);
	}
	pthread_mutex_lock(&ctx->lock);
	ctx->npaths--;
	if (last)
		sess_uncount(ctx, s_est);
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
}

/* Linger time over: free the session unless a path came back. */
static void sess_linger_end(struct rtrs_timer *t)
{
	struct rtrs_srv_sess *s = container_of(t, struct rtrs_srv_sess, linger);
	struct rtrs_srv_ctx *ctx = s->ctx;
	bool was_up, est;

	pthread_mutex_lock(&ctx->lock);
	if (s->npaths || ctx->closing || s->gone) {
		pthread_mutex_unlock(&ctx->lock);
		return;
	}
	rtrs_list_del(&s->node);
	was_up = s->link_up;
	est = s->established;
	pthread_mutex_unlock(&ctx->lock);
	if (was_up && ctx->attr.ops.link_ev)
		ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED, s->priv);
	rtrs__timer_stop(&s->linger);
	sess_free(s);
	pthread_mutex_lock(&ctx->lock);
	sess_uncount(ctx, est);
	pthread_cond_broadcast(&ctx->cond);
	pthread_mutex_unlock(&ctx->lock);
}

/* The answer is out (or the path is gone): count it and free the chunk.
 * Everything is read before the state changes: the next request for the
 * chunk may take the op at once. */
static void op_finish(struct rtrs_srv_op *op)
{
	struct srv_path *p = op->con->path;
	struct rtrs_srv_ctx *ctx = op->sess->ctx;
	uint32_t len = op->data_len;

	if (!op->status) {
		if (op->dir == RTRS_READ) {
			atomic_fetch_add_explicit(&ctx->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&ctx->st_read_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_read_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_read_bytes, len,
						  memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&ctx->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&ctx->st_write_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_write_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_write_bytes, len,
						  memory_order_relaxed);
		}
	}
	atomic_store(&op->state, OP_FREE);
	path_put(p);
}

/* Close @c's endpoint, if it has one, exactly once. The loop frees an
 * endpoint soon after its close, so whoever comes second must not touch it:
 * path_close() and srv_connreq(), which makes the endpoint and uses it
 * until the accept under c->lock, settle it here. */
static void con_close_ep(struct srv_con *c)
{
	struct fab_ep *ep = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->ep && !c->ep_closed) {
		ep = c->ep;
		c->ep_closed = true;
	}
	pthread_mutex_unlock(&c->lock);
	rtrs__fab_ep_close(ep);
}

/* Connection @i of @p, or NULL; srv_connreq() adds them under ctx->lock. */
static struct srv_con *path_con(struct srv_path *p, unsigned i)
{
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	struct srv_con *c;

	pthread_mutex_lock(&ctx->lock);
	c = p->cons[i];
	pthread_mutex_unlock(&ctx->lock);
	return c;
}

/* Close every connection of @p; any thread; idempotent. A connection
 * srv_connreq() adds after the first loop below sees the path closing and
 * closes its endpoint itself. */
static void path_close(struct srv_path *p, int err, bool bad_input)
{
	struct rtrs_list done, *pos, *tmp;
	int st = atomic_load(&p->state);

	do {
		if (st == SRV_PATH_CLOSING)
			return;
	} while (!atomic_compare_exchange_weak(&p->state, &st,
					       SRV_PATH_CLOSING));
	if (bad_input) {
		atomic_fetch_add(&p->sess->ctx->st_bad_input, 1);
		pslog(RTRS_LOG_ERR, p, "malformed input, closing path: %s",
		      rtrs_strerror(err));
	} else if (err) {
		pslog(RTRS_LOG_INFO, p, "closing: %s", rtrs_strerror(err));
	}
	rtrs_list_init(&done);
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = path_con(p, i);

		if (!c)
			continue;
		pthread_mutex_lock(&c->lock);
		c->dead = true;
		rtrs_list_for_each_safe(pos, tmp, &c->backlog) {
			rtrs_list_del(pos);
			rtrs_list_add_tail(&done, pos);
		}
		pthread_mutex_unlock(&c->lock);
	}
	rtrs_list_for_each_safe(pos, tmp, &done) {
		rtrs_list_del(pos);
		op_finish(container_of(pos, struct rtrs_srv_op, bl_node));
	}
	/* the heartbeat posts on connection 0 from the timer thread: it
	 * stops before the endpoint goes */
	rtrs__timer_stop(&p->hb);
	/* endpoints closed: nothing more of this path lands in our memory
	 * (the tcp provider writes only while we read its CQ; the loop skips
	 * closed endpoints) */
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = path_con(p, i);

		if (c)
			con_close_ep(c);
	}
	path_put(p);    /* the path's own reference */
}

/* Heartbeat tick: judge liveness on received traffic, then send one. */
static void srv_hb(struct rtrs_timer *t)
{
	struct srv_path *p = container_of(t, struct srv_path, hb);
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	struct srv_con *c0;
	unsigned next = ctx->attr.hb_interval_ms;

	if (atomic_load(&p->state) == SRV_PATH_CONNECTING) {
		/* before its info exchange a path is not alive, whatever it
		 * sends (heartbeats included): it has until the deadline */
		uint64_t age = rtrs_now_ms() - p->born_ms;
		unsigned hs;

		pthread_mutex_lock(&ctx->lock);
		hs = ctx->lim.handshake_ms;
		pthread_mutex_unlock(&ctx->lock);
		if (age >= hs) {
			atomic_fetch_add(&ctx->st_hs_timeouts, 1);
			pslog(RTRS_LOG_WARN, p,
			      "no info exchange within %u ms, closing", hs);
			path_close(p, -ETIMEDOUT, false);
			return;
		}
		if (hs - age < next)
			next = (unsigned)(hs - age);
		atomic_store(&p->rx_seen, false);
		rtrs__timer_arm(&p->hb, next);
		return;
	}
	if (atomic_exchange(&p->rx_seen, false)) {
		p->hb_missed = 0;
	} else if (++p->hb_missed >= ctx->attr.hb_missed_max) {
		atomic_fetch_add(&ctx->st_hb_timeouts, 1);
		pslog(RTRS_LOG_WARN, p, "no traffic for %u heartbeats",
		      p->hb_missed);
		path_close(p, -ETIMEDOUT, false);
		return;         /* @p may be gone */
	}
	if (atomic_load(&p->state) == SRV_PATH_CONNECTED &&
	    atomic_load(&p->info_sent)) {
		int ret;

		c0 = p->cons[0];
		ret = rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
					  rtrs_imm(RTRS_IMM_HB, 0), NULL, false);
		if (ret && ret != -EAGAIN && ret != -ENOTCONN) {
			path_close(p, ret, false);
			return;
		}
	}
	rtrs__timer_arm(&p->hb, ctx->attr.hb_interval_ms);
}

static void srv_closed(void *ctx)
{
	struct srv_con *c = ctx;

	path_put(c->path);
}

/* ---- responses ---- */

/* Post what is left of @op's answer; with c->lock held. */
static int post_op(struct srv_con *c, struct rtrs_srv_op *op)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = op->sess;
	struct fab_mr *mr = p->nmrs > 1 ? p->mrs[op->id] : p->mrs[0];
	uint32_t imm = rtrs__proto_io_rsp_imm(op->id, op->status);
	int ret;

	if (op->dir == RTRS_READ && op->status == 0) {
		const char *src = op->src ? op->src : chunk_ptr(s, op->id);
		void *desc = op->src ? srv_mr_desc(op->src_mr, p->dom)
				     : rtrs__fab_mr_desc(mr);

		if (op->src && !desc && rtrs__fab_dom_caps(p->dom)->mr_local) {
			/* @src is registered in the listeners' domains, and
			 * this path has one of its own (verbs): the data goes
			 * through the chunk, as an answer without @src */
			if (!op->posted)
				memcpy(chunk_ptr(s, op->id), op->src,
				       op->data_len);
			src = chunk_ptr(s, op->id);
			desc = rtrs__fab_mr_desc(mr);
		}
		for (unsigned i = 0; i < op->posted; i++)
			src += op->desc[i].len;
		while (op->posted < op->sg_cnt) {
			struct rtrs_sg_desc *d = &op->desc[op->posted];
			struct iovec iov = { (void *)src, d->len };
			/* the answer rides on the last write as its immediate
			 * (one message instead of two), unless a new rkey has
			 * to travel with it */
			bool last = op->posted + 1 == op->sg_cnt && p->nmrs <= 1;

			ret = rtrs__fab_post_write(c->ep, &iov, &desc, 1, d->addr,
						   d->key, last, imm, &op->ctx,
						   false);
			if (ret)
				return ret;
			src += d->len;
			op->posted++;
			if (last)
				return 0;
		}
	}
	if (p->nmrs > 1) {
		rtrs__proto_rkey_rsp_encode(op->rkey_rsp, (uint16_t)op->id,
					    rtrs__fab_mr_key(mr));
		return rtrs__fab_post_send(c->ep, op->rkey_rsp,
					   RTRS_RKEY_RSP_LEN,
					   rtrs__fab_mr_desc(p->ops_mr), true,
					   imm, &op->ctx, false);
	}
	return rtrs__fab_post_send(c->ep, NULL, 0, NULL, true, imm, &op->ctx,
				   false);
}

/*
 * Answer @op with @status. @src (in @src_mr) is where a READ's data comes
 * from; without it, from where it was set for this request: the chunk
 * (a new request starts with none), or a retry's answer sends it from
 * where the first answer did.
 */
static int answer(struct rtrs_srv_op *op, int status, const char *src,
		  struct rtrs_srv_mr *src_mr)
{
	struct srv_con *c;
	struct srv_path *p;
	int busy = OP_BUSY, ret;

	/* the lock orders this against a retry re-routing the answer */
	pthread_mutex_lock(&op->lock);
	if (src && (op->dir != RTRS_READ ||
		    (uintptr_t)src < (uintptr_t)src_mr->buf ||
		    (uintptr_t)src - (uintptr_t)src_mr->buf > src_mr->len ||
		    src_mr->len - ((uintptr_t)src - (uintptr_t)src_mr->buf) <
			    op->data_len)) {
		pthread_mutex_unlock(&op->lock);
		return -EINVAL;
	}
	/* with always_invalidate the answer is a message of its own, after
	 * the data: tcp sends it even when writing the data failed (an
	 * application buffer can fault, a chunk cannot), and the client
	 * would take what it has for the data */
	if (src && op->sess->ctx->attr.always_invalidate) {
		pthread_mutex_unlock(&op->lock);
		return -EOPNOTSUPP;
	}
	if (!atomic_compare_exchange_strong(&op->state, &busy, OP_RESP)) {
		pthread_mutex_unlock(&op->lock);
		return -EINVAL;
	}
	if (src) {
		op->src = src;
		op->src_mr = src_mr;
	}
	c = op->con;
	p = c->path;
	if (status > 0 || status < -RTRS_RSP_ERRNO_MAX)
		status = -EIO;
	op->status = status;
	op->last_status = status;
	op->posted = 0;
	if (p->nmrs > 1) {
		/* always_invalidate: a fresh key for the chunk */
		struct fab_mr *m;

		ret = rtrs__fab_mr_reg_peer(p->dom, chunk_ptr(op->sess, op->id),
					    op->sess->geom.chunk_size, p, &m);
		if (ret) {
			pthread_mutex_unlock(&op->lock);
			pslog(RTRS_LOG_ERR, p, "chunk %u: re-registration: %s",
			      op->id, rtrs_strerror(ret));
			path_close(p, ret, false);
			op_finish(op);
			return -ENOTCONN;
		}
		rtrs__fab_mr_close(p->mrs[op->id]);
		p->mrs[op->id] = m;
	}
	pthread_mutex_unlock(&op->lock);
	pthread_mutex_lock(&c->lock);
	if (c->dead) {
		pthread_mutex_unlock(&c->lock);
		op_finish(op);
		return -ENOTCONN;
	}
	ret = rtrs_list_empty(&c->backlog) ? post_op(c, op) : -EAGAIN;
	if (ret == -EAGAIN) {
		atomic_store(&op->state, OP_QUEUED);
		rtrs_list_add_tail(&c->backlog, &op->bl_node);
		rtrs__fab_ep_want_tx(c->ep);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		path_close(p, ret, false);
	op_finish(op);
	return ret ? -ENOTCONN : 0;
}

int rtrs_srv_resp(struct rtrs_srv_op *op, int status)
{
	if (!op)
		return -EINVAL;
	return answer(op, status, NULL, NULL);
}

int rtrs_srv_resp_buf(struct rtrs_srv_op *op, struct rtrs_srv_mr *mr,
		      const void *buf)
{
	if (!op || !mr || !buf)
		return -EINVAL;
	return answer(op, 0, buf, mr);
}

int rtrs_srv_mr_reg(struct rtrs_srv_ctx *ctx, const void *buf, size_t len,
		    struct rtrs_srv_mr **out)
{
	struct rtrs_srv_mr *m;
	int ret = 0;

	if (!ctx || !buf || !len || !out ||
	    (uintptr_t)buf + len < (uintptr_t)buf)
		return -EINVAL;
	m = calloc(1, sizeof(*m) + ctx->npeps * sizeof(m->reg[0]));
	if (!m)
		return -ENOMEM;
	m->buf = buf;
	m->len = len;
	for (size_t i = 0; i < ctx->npeps && !ret; i++) {
		m->reg[i].dom = ctx->ls[i].dom;
		ret = rtrs__fab_mr_reg(ctx->ls[i].dom, (void *)buf, len,
				       FAB_ACC_SOURCE, &m->reg[i].mr);
		if (!ret)
			m->n = i + 1;
	}
	if (ret) {
		rtrs_srv_mr_dereg(m);
		return ret;
	}
	*out = m;
	return 0;
}

int rtrs_srv_mr_pins(struct rtrs_srv_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	for (size_t i = 0; i < ctx->npeps; i++)
		if (rtrs__fab_dom_caps(ctx->ls[i].dom)->mr_pins)
			return 1;
	return 0;
}

int rtrs_srv_mr_dereg(struct rtrs_srv_mr *m)
{
	if (!m)
		return -EINVAL;
	for (size_t i = 0; i < m->n; i++)
		rtrs__fab_mr_close(m->reg[i].mr);
	free(m);
	return 0;
}

static void srv_tx_ready(void *ctx)
{
	struct srv_con *c = ctx;
	struct rtrs_list done, *pos, *tmp;
	int ret = 0;

	rtrs_list_init(&done);
	pthread_mutex_lock(&c->lock);
	while (!c->dead && !rtrs_list_empty(&c->backlog)) {
		struct rtrs_srv_op *op = container_of(c->backlog.next,
						      struct rtrs_srv_op, bl_node);

		atomic_store(&op->state, OP_RESP);
		ret = post_op(c, op);
		if (ret == -EAGAIN) {
			atomic_store(&op->state, OP_QUEUED);
			rtrs__fab_ep_want_tx(c->ep);
			ret = 0;
			break;
		}
		rtrs_list_del(&op->bl_node);
		rtrs_list_add_tail(&done, &op->bl_node);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&c->lock);
	if (ret)
		path_close(c->path, ret, false);
	rtrs_list_for_each_safe(pos, tmp, &done) {
		rtrs_list_del(pos);
		op_finish(container_of(pos, struct rtrs_srv_op, bl_node));
	}
}

/* ---- incoming requests ---- */

/* Serial-number order of 32-bit sequence numbers. */
static inline bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

/* The client left path @id of @s: close it, so that nothing it still
 * carries can land in chunk @chunk (or any other) after this returns.
 * With op->lock of @chunk held. */
static void fence_path(struct srv_path *by, uint32_t chunk, uint32_t id)
{
	struct rtrs_srv_sess *s = by->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	struct srv_path *q = NULL;
	struct rtrs_list *pos, *tmp;

	pthread_mutex_lock(&ctx->lock);
	rtrs_list_for_each_safe(pos, tmp, &s->paths) {
		struct srv_path *x = container_of(pos, struct srv_path, node);

		if (x->id == id && x != by) {
			q = x;
			atomic_fetch_add(&q->ref, 1);
			break;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!q)
		return;         /* gone already: its endpoints are closed */
	if (q->nmrs > 1) {
		/* always_invalidate: its key for the chunk goes first */
		rtrs__fab_mr_close(q->mrs[chunk]);
		q->mrs[chunk] = NULL;
	}
	if (atomic_load(&q->state) != SRV_PATH_CLOSING) {
		atomic_fetch_add(&ctx->st_paths_fenced, 1);
		pslog(RTRS_LOG_INFO, q, "fenced: the client left this path");
	}
	path_close(q, -ECONNABORTED, false);
	path_put(q);
}

/* Revoke the arrival path's key for the chunk while the server uses it. */
static void revoke_arrival(struct srv_path *p, uint32_t id)
{
	if (p->nmrs > 1) {
		rtrs__fab_mr_close(p->mrs[id]);
		p->mrs[id] = NULL;
	}
}

static void op_take(struct rtrs_srv_op *op, struct srv_con *c,
		    const struct rtrs_io_msg *m, const struct rtrs_sg_desc *desc)
{
	op->con = c;
	op->dir = m->type == RTRS_MSG_READ ? RTRS_READ : RTRS_WRITE;
	op->data_len = m->data_len;
	op->sg_cnt = m->sg_cnt;
	memcpy(op->desc, desc, sizeof(*desc) * m->sg_cnt);
	op->status = 0;
}

/*
 * A retry for a request still in service: its answer goes to the retry's
 * connection. Returns false if the answer is being posted right now (the
 * caller waits and looks again). With op->lock held.
 */
static bool attach_retry(struct rtrs_srv_op *op, struct srv_con *c,
			 const struct rtrs_io_msg *m,
			 const struct rtrs_sg_desc *desc, bool *answer_now)
{
	struct srv_con *old = op->con;
	struct srv_path *oldp = old->path;
	bool queued = false;

	*answer_now = false;
	if (atomic_load(&op->state) == OP_QUEUED) {
		pthread_mutex_lock(&old->lock);
		if (atomic_load(&op->state) == OP_QUEUED) {
			rtrs_list_del(&op->bl_node);
			queued = true;
		}
		pthread_mutex_unlock(&old->lock);
		if (!queued)
			return false;
		atomic_store(&op->state, OP_BUSY);
		*answer_now = true;
	}
	atomic_fetch_add(&c->path->ref, 1);
	op_take(op, c, m, desc);
	revoke_arrival(c->path, op->id);
	path_put(oldp);
	return true;
}

static void handle_io_req(struct srv_con *c, uint32_t payload)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	struct rtrs_sg_desc desc[RTRS_PROTO_MAX_READ_DESC];
	struct rtrs_srv_op *op;
	struct rtrs_io_msg m;
	uint32_t id, off;
	char *chunk;
	bool answer_now;
	int st, ret;

	st = atomic_load(&p->state);
	if (st == SRV_PATH_CLOSING)
		return;         /* its client retries it on another path */
	if (st != SRV_PATH_CONNECTED) {
		pslog(RTRS_LOG_ERR, p, "request before the info exchange");
		path_close(p, -EPROTO, true);
		return;
	}
	if (rtrs__proto_io_req_decode(&s->geom, payload, &id, &off)) {
		pslog(RTRS_LOG_ERR, p, "request immediate out of range (%#x)",
		      payload);
		path_close(p, -EPROTO, true);
		return;
	}
	op = &s->ops[id];
	chunk = chunk_ptr(s, id);
again:
	pthread_mutex_lock(&op->lock);
	if (atomic_load(&op->state) == OP_RESP) {
		/* its answer is being posted: wait for the poster */
		pthread_mutex_unlock(&op->lock);
		sched_yield();
		goto again;
	}
	ret = rtrs__proto_io_msg_decode(chunk, &s->geom, off, p->fence, &m);
	for (unsigned i = 0; !ret && i < m.sg_cnt; i++)
		ret = rtrs__proto_read_desc(chunk, &s->geom, &m, i, &desc[i]);
	if (ret) {
		pthread_mutex_unlock(&op->lock);
		pslog(RTRS_LOG_ERR, p, "chunk %u: malformed request (off %u): %s",
		      id, off, rtrs_strerror(ret));
		path_close(p, ret, true);
		return;
	}
	if (m.fence_flags & RTRS_FENCE_PATH_F)
		fence_path(p, id, m.fence_path);
	st = atomic_load(&op->state);
	if (p->fence && m.seq == op->last_seq) {
		if (!(m.fence_flags & RTRS_FENCE_RETRY_F)) {
			/* the original, after its retry: never run it again */
			goto drop;
		}
		if (st != OP_FREE) {
			if (!attach_retry(op, c, &m, desc, &answer_now)) {
				pthread_mutex_unlock(&op->lock);
				sched_yield();
				goto again;
			}
			atomic_fetch_add(&ctx->st_dup_attached, 1);
			pthread_mutex_unlock(&op->lock);
			if (answer_now)
				answer(op, op->last_status, NULL, NULL);
			return;
		}
		/* executed and answered already: answer again from the store
		 * (a READ's data is still in the chunk, or where
		 * rtrs_srv_resp_buf() took it from) */
		op_take(op, c, &m, desc);
		atomic_store(&op->state, OP_BUSY);
		revoke_arrival(p, id);
		atomic_fetch_add(&p->ref, 1);
		atomic_fetch_add(&ctx->st_dup_answered, 1);
		pthread_mutex_unlock(&op->lock);
		answer(op, op->last_status, NULL, NULL);
		return;
	}
	if (p->fence && op->last_seq && seq_before(m.seq, op->last_seq))
		goto drop;      /* older than the chunk's last request */
	if (st != OP_FREE) {
		pthread_mutex_unlock(&op->lock);
		pslog(RTRS_LOG_ERR, p, "request for chunk %u that is in use", id);
		path_close(p, -EPROTO, true);
		return;
	}
	/* a new request */
	op->last_seq = m.seq;
	op->last_status = -EINPROGRESS;
	op->src = NULL;                 /* from the chunk unless answered so */
	op->src_mr = NULL;
	op_take(op, c, &m, desc);
	atomic_store(&op->state, OP_BUSY);
	revoke_arrival(p, id);
	atomic_fetch_add(&p->ref, 1);
	pthread_mutex_unlock(&op->lock);
	atomic_fetch_add_explicit(&ctx->st_executed, 1, memory_order_relaxed);
	ret = ctx->attr.ops.rdma_ev(s->priv, op, chunk, m.data_len,
				    chunk + m.usr_off, m.usr_len);
	if (ret)
		rtrs_srv_resp(op, ret < 0 ? ret : -EIO);
	return;

drop:
	off = op->last_seq;
	pthread_mutex_unlock(&op->lock);
	atomic_fetch_add(&ctx->st_stale_dropped, 1);
	pslog(RTRS_LOG_INFO, p, "chunk %u: dropped request seq %u (last %u)",
	      id, m.seq, off);
}

static void send_hb_ack(struct srv_con *c)
{
	int ret = rtrs__fab_post_send(c->ep, NULL, 0, NULL, true,
				      rtrs_imm(RTRS_IMM_HB_ACK, 0), NULL, false);

	if (ret && ret != -EAGAIN && ret != -ENOTCONN)
		path_close(c->path, ret, false);
}

/* The client closes its session: it will not come back for its requests,
 * so the session goes with its last path instead of lingering. */
static void handle_close(struct srv_con *c)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	int ret;

	if (c->cid != 0 || !p->fence) {
		pslog(RTRS_LOG_ERR, p, "close request on con %u", c->cid);
		path_close(p, -EPROTO, true);
		return;
	}
	pthread_mutex_lock(&ctx->lock);
	p->sess->client_closed = true;
	pthread_mutex_unlock(&ctx->lock);
	ret = rtrs__fab_post_send(c->ep, NULL, 0, NULL, true,
				  rtrs_imm(RTRS_IMM_CLOSE_ACK, 0), NULL, false);
	if (ret && ret != -ENOTCONN && ret != -EAGAIN)
		path_close(p, ret, false);
}

static void handle_imm(struct srv_con *c, uint32_t imm)
{
	switch (rtrs_imm_type(imm)) {
	case RTRS_IMM_IO_REQ:
		handle_io_req(c, rtrs_imm_payload(imm));
		break;
	case RTRS_IMM_HB:
		send_hb_ack(c);
		break;
	case RTRS_IMM_HB_ACK:
		break;
	case RTRS_IMM_CLOSE:
		handle_close(c);
		break;
	default:
		pslog(RTRS_LOG_ERR, c->path, "unknown immediate type %u",
		      rtrs_imm_type(imm));
		path_close(c->path, -EPROTO, true);
	}
}

/*
 * Whether @name belongs to a session other than @self, which would be
 * authenticated as @id ("" without keys). A lingering session (no path)
 * keeps its name for its own client until the linger ends (issue 15 item
 * 7: no one else can take it and make the owner's reconnect fail). Only
 * the same identity may take it over at once: the owner restarted. The
 * old session then goes now; if its client does come back, it is refused
 * (-EPERM) and none of its requests runs again.
 */
static bool name_taken(struct rtrs_srv_ctx *ctx, struct rtrs_srv_sess *self,
		       const char *name, const char *id)
{
	struct rtrs_list *pos, *tmp;

	rtrs_list_for_each_safe(pos, tmp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(pos, struct rtrs_srv_sess,
						       node);

		if (s == self || !s->named || s->evicted || strcmp(s->name, name))
			continue;
		if (s->npaths || !id[0] || strcmp(s->identity, id))
			return true;
		s->evicted = true;
		rtrs__timer_arm(&s->linger, 0);
	}
	return false;
}

static int send_info_rsp(struct srv_path *p, struct srv_con *c, int refuse)
{
	struct rtrs_srv_sess *s = p->sess;
	size_t len;

	if (refuse) {
		len = rtrs__proto_info_rsp_refuse_encode(p->info_rsp, refuse);
	} else {
		unsigned n = p->nmrs;
		struct rtrs_sg_desc *d = calloc(n, sizeof(*d));

		if (!d)
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++) {
			char *base = n > 1 ? chunk_ptr(s, i) : s->chunks;

			d[i].addr = rtrs__fab_mr_raddr(p->mrs[i], base);
			d[i].key = rtrs__fab_mr_key(p->mrs[i]);
			d[i].len = n > 1 ? s->geom.chunk_size
					 : s->geom.chunk_size * s->geom.queue_depth;
		}
		len = rtrs__proto_info_rsp_encode(p->info_rsp, p->info_rsp_len, d,
						  (uint16_t)n);
		free(d);
	}
	p->info_ctx.owner = p;
	p->info_ctx.kind = CTX_INFO;
	/* After a refusal the client closes the path; until then it stays
	 * CONNECTING and anything else it sends is malformed input. Closing
	 * here would race the refusal to the client. */
	return rtrs__fab_post_send(c->ep, p->info_rsp, len,
				   rtrs__fab_mr_desc(p->info_mr), false, 0,
				   &p->info_ctx, false);
}

/*
 * The client's proof at the end of its info_req (section 2.7): only after
 * our auth_rsp, once. 0 or -EACCES; the path's authentication is then OK
 * or FAILED.
 */
static int auth_check_proof(struct srv_path *p, const void *buf, size_t len,
			    const char *name)
{
	struct rtrs_srv_sess *s = p->sess;
	uint8_t proof[RTRS_AUTH_PROOF_LEN], want[RTRS_AUTH_PROOF_LEN];
	int ret = -EACCES;

	if (p->auth && p->auth_state == SRV_AUTH_SENT &&
	    !rtrs__proto_info_req_proof(buf, len, proof)) {
		rtrs__auth_proof(p->auth_key, false, p->auth_nc, p->auth_ns,
				 s->uuid, p->uuid, name, want);
		if (!rtrs__memeq_ct(want, proof, sizeof(want)))
			ret = 0;
	}
	p->auth_state = ret ? SRV_AUTH_FAILED : SRV_AUTH_OK;
	return ret;
}

/* auth_req: our nonce and proof for the client's identity, or -EACCES */
static void handle_auth_req(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	char id[RTRS_AUTH_ID_LEN];
	uint8_t proof[RTRS_AUTH_PROOF_LEN];
	size_t n;
	int ret, err = 0;

	if (!p->auth || p->auth_state != SRV_AUTH_NONE) {
		pslog(RTRS_LOG_ERR, p, "unexpected authentication request");
		atomic_fetch_add(&s->ctx->st_bad_input, 1);
		path_close(p, -EPROTO, true);
		return;
	}
	ret = rtrs__proto_auth_req_decode(buf, len, p->auth_nc, id);
	if (ret) {
		pslog(RTRS_LOG_ERR, p, "malformed authentication request");
		path_close(p, ret, true);
		return;
	}
	p->auth_key = rtrs__auth_find(&s->ctx->keys, id);
	if (!p->auth_key) {
		pslog(RTRS_LOG_WARN, p, "unknown identity %s", id);
		err = -EACCES;
	} else {
		err = rtrs__auth_random(p->auth_ns, sizeof(p->auth_ns));
	}
	if (!err)
		rtrs__auth_proof(p->auth_key, true, p->auth_nc, p->auth_ns,
				 s->uuid, p->uuid, NULL, proof);
	p->auth_state = err ? SRV_AUTH_FAILED : SRV_AUTH_SENT;
	n = rtrs__proto_auth_rsp_encode(p->auth_rsp, err, p->auth_ns, proof);
	p->auth_ctx.owner = p;
	p->auth_ctx.kind = CTX_INFO;
	ret = rtrs__fab_post_send(c->ep, p->auth_rsp, n,
				  rtrs__fab_mr_desc(p->info_mr), false, 0,
				  &p->auth_ctx, false);
	if (ret)
		path_close(p, ret, false);
}

static void handle_info_req(struct srv_con *c, const void *buf, size_t len);

/* A message on cid 0 before the info exchange finished; false when the
 * path was closed for it. */
static bool handle_admin_msg(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;

	if (p->auth_state == SRV_AUTH_FAILED) {
		/* refused: nothing more from it */
		pslog(RTRS_LOG_ERR, p, "message after a refusal");
		path_close(p, -EACCES, true);
		return false;
	}
	if (rtrs__proto_msg_type(buf, len) == RTRS_MSG_AUTH_REQ)
		handle_auth_req(c, buf, len);
	else
		handle_info_req(c, buf, len);
	return true;
}

static void handle_info_req(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	char name[RTRS_PROTO_NAME_LEN];
	const char *id = "";
	int refuse = 0, st = SRV_PATH_CONNECTING, ret;
	bool first = false;

	ret = rtrs__proto_info_req_decode(buf, len, name);
	if (ret) {
		pslog(RTRS_LOG_ERR, p, "malformed info request: %s",
		      rtrs_strerror(ret));
		path_close(p, ret, true);
		return;
	}
	if (ctx->keys.n) {
		ret = auth_check_proof(p, buf, len, name);
		if (ret) {
			pslog(RTRS_LOG_WARN, p, "authentication failed: %s",
			      rtrs_strerror(ret));
			ret = send_info_rsp(p, c, -EACCES);
			if (ret)
				path_close(p, ret, false);
			return;
		}
		id = p->auth_key->id;
	}
	pthread_mutex_lock(&ctx->lock);
	if (id[0] && s->identity[0] && strcmp(s->identity, id)) {
		/* the session is another identity's */
		refuse = -EACCES;
	} else if (name_taken(ctx, s, name, id)) {
		refuse = -EPERM;
	} else if (s->named && strcmp(s->name, name)) {
		refuse = -EINVAL;
	} else if (!atomic_compare_exchange_strong(&p->state, &st,
						   SRV_PATH_CONNECTED)) {
		refuse = -ECONNRESET;
	} else {
		memcpy(s->name, name, sizeof(name));
		s->named = true;
		snprintf(s->identity, sizeof(s->identity), "%s", id);
		p->counted_up = true;
		first = s->npaths_up++ == 0 && !s->link_up;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!refuse && first) {
		if (ctx->attr.ops.link_ev &&
		    ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_CONNECTED,
					  ctx->attr.priv))
			refuse = -ECONNREFUSED;
		else
			s->link_up = true;
	}
	pthread_mutex_lock(&ctx->lock);
	if (refuse == -ECONNREFUSED) {
		/* the application said no: the path is not up (no IO, no
		 * heartbeat keeps it), and goes at the deadline if the
		 * client does not close it first */
		st = SRV_PATH_CONNECTED;
		atomic_compare_exchange_strong(&p->state, &st,
					       SRV_PATH_CONNECTING);
		p->counted_up = false;
		s->npaths_up--;
	} else if (!refuse) {
		if (p->pending) {
			p->pending = false;
			ctx->npending--;
		}
		if (!s->established) {
			s->established = true;
			ctx->nsess++;
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	if (refuse && p->auth)
		p->auth_state = SRV_AUTH_FAILED;        /* no second try */
	if (refuse)
		pslog(RTRS_LOG_WARN, p, "refusing session name %s: %s", name,
		      rtrs_strerror(refuse));
	else
		pslog(RTRS_LOG_INFO, p, "connected, %u connections", p->cid_num);
	ret = send_info_rsp(p, c, refuse);
	if (ret)
		path_close(p, ret, false);
	else if (!refuse)
		/* from now on a heartbeat comes after it on con 0: before, it
		 * would take the client's info receive */
		atomic_store(&p->info_sent, true);
}

static void srv_cqe(void *ctx, const struct fab_cqe *cq)
{
	struct srv_con *c = ctx;
	struct srv_path *p = c->path;

	if (!cq->err)
		atomic_store_explicit(&p->rx_seen, true, memory_order_relaxed);
	if (cq->err) {
		if (atomic_load(&p->state) != SRV_PATH_CLOSING)
			pslog(RTRS_LOG_INFO, p, "con %u: completion error %s",
			      c->cid, rtrs_strerror(cq->err));
		/* software RMA: the fabric refused a frame of the peer's */
		path_close(p, cq->err, cq->flags & FAB_CQE_BAD_PEER);
		return;
	}
	if (cq->flags & FAB_CQE_RECV) {
		struct srv_rx *rx = container_of(cq->ctx, struct srv_rx, ctx);
		int ret;

		if (cq->flags & FAB_CQE_IMM) {
			handle_imm(c, cq->imm);
		} else if (c->cid == 0 &&
			   atomic_load(&p->state) == SRV_PATH_CONNECTING) {
			if (!handle_admin_msg(c, rx->buf, cq->len))
				return;         /* the path is closing */
		} else {
			pslog(RTRS_LOG_ERR, p, "con %u: unexpected message", c->cid);
			path_close(p, -EPROTO, true);
			return;
		}
		ret = rtrs__fab_post_recv(c->ep, rx->buf, RTRS_SRV_RX_BUF,
					  rtrs__fab_mr_desc(c->rx_mr), &rx->ctx);
		if (ret && ret != -ENOTCONN)
			path_close(p, ret, false);
		return;
	}
	if ((cq->flags & FAB_CQE_RMA_IN) && (cq->flags & FAB_CQE_IMM)) {
		handle_imm(c, cq->imm);
		return;
	}
	/* FAB_CQE_TX: nothing is signalled on the server */
}

static void srv_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len)
{
	struct srv_con *c = ctx;

	(void)data;
	(void)len;
	if (ev == FAB_CM_CONNECTED) {
		c->accepted = true;
		atomic_store(&c->path->rx_seen, true);
		return;
	}
	path_close(c->path, err ? err : -ECONNRESET, false);
}

/* ---- connection requests ---- */

static int sess_create(struct rtrs_srv_ctx *ctx, const uint8_t *uuid,
		       struct rtrs_srv_sess **out)
{
	struct rtrs_srv_sess *s = calloc(1, sizeof(*s));
	void *mem;

	if (!s)
		return -ENOMEM;
	s->ctx = ctx;
	memcpy(s->uuid, uuid, 16);
	rtrs__timer_init(&s->linger, sess_linger_end);
	s->geom = ctx->geom;
	rtrs_list_init(&s->paths);
	s->chunks_len = (size_t)s->geom.chunk_size * s->geom.queue_depth;
	/* anonymous memory: zeroed, page aligned, faulted in on use */
	mem = mmap(NULL, s->chunks_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s->ops = calloc(s->geom.queue_depth, sizeof(*s->ops));
	if (mem == MAP_FAILED || !s->ops) {
		if (mem != MAP_FAILED)
			munmap(mem, s->chunks_len);
		free(s->ops);
		free(s);
		return -ENOMEM;
	}
	s->chunks = mem;
	for (uint32_t i = 0; i < s->geom.queue_depth; i++) {
		s->ops[i].sess = s;
		s->ops[i].id = i;
		s->ops[i].ctx.owner = &s->ops[i];
		s->ops[i].ctx.kind = CTX_OP;
		rtrs_list_init(&s->ops[i].bl_node);
		atomic_init(&s->ops[i].state, OP_FREE);
		pthread_mutex_init(&s->ops[i].lock, NULL);
	}
	*out = s;
	return 0;
}

static int path_create(struct srv_listener *l, struct rtrs_srv_sess *s,
		       const struct rtrs_conn_req *req,
		       struct fab_connreq *creq, struct srv_path **out)
{
	struct srv_path *p = calloc(1, sizeof(*p));
	const struct fab_caps *caps = rtrs__fab_dom_caps(l->dom);
	bool inv = s->ctx->attr.always_invalidate;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	p->sess = s;
	/* a key given to this path works on its endpoints only */
	ret = rtrs__fab_dom_for_connreq(l->pep, creq, &p->dom);
	if (ret) {
		free(p);
		return ret;
	}
	p->ldom = l->dom;
	memcpy(p->uuid, req->sess_uuid, 16);
	p->cid_num = req->cid_num;
	p->fence = req->fence;
	p->auth = req->auth && s->ctx->keys.n;
	p->id = ++s->next_path_id ? s->next_path_id : ++s->next_path_id;
	p->has_no = req->has_path_no;
	p->no = req->path_no;
	rtrs__timer_init(&p->hb, srv_hb);
	atomic_init(&p->rx_seen, true);
	atomic_init(&p->state, SRV_PATH_CONNECTING);
	atomic_init(&p->ref, 1);
	snprintf(p->peer, sizeof(p->peer), "?");
	p->cons = calloc(p->cid_num, sizeof(*p->cons));
	p->nmrs = inv ? s->geom.queue_depth : 1;
	p->mrs = calloc(p->nmrs, sizeof(*p->mrs));
	p->info_rsp_len = RTRS_INFO_RSP_LEN(p->nmrs);
	/* the auth_rsp after it, in the same registration */
	p->info_rsp = calloc(1, p->info_rsp_len + FAB_MSG_ROOM +
			     RTRS_AUTH_RSP_LEN + FAB_MSG_ROOM);
	if (p->info_rsp)
		p->auth_rsp = p->info_rsp + p->info_rsp_len + FAB_MSG_ROOM;
	if (!p->cons || !p->mrs || !p->info_rsp)
		ret = -ENOMEM;
	for (unsigned i = 0; !ret && i < p->nmrs; i++)
		ret = rtrs__fab_mr_reg_peer(p->dom,
					    inv ? chunk_ptr(s, i) : s->chunks,
					    inv ? s->geom.chunk_size
						: s->chunks_len,
					    p, &p->mrs[i]);
	if (!ret && caps->mr_local)
		ret = rtrs__fab_mr_reg(p->dom, p->info_rsp,
				       p->info_rsp_len + FAB_MSG_ROOM +
				       RTRS_AUTH_RSP_LEN + FAB_MSG_ROOM,
				       FAB_ACC_LOCAL, &p->info_mr);
	/* the key responses live in the ops (rkey_rsp) */
	if (!ret && caps->mr_local && inv)
		ret = rtrs__fab_mr_reg(p->dom, s->ops,
				       s->geom.queue_depth * sizeof(*s->ops),
				       FAB_ACC_LOCAL, &p->ops_mr);
	if (ret) {
		path_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

static int con_setup_rx(struct srv_con *c, unsigned n)
{
	struct srv_path *p = c->path;
	int ret;

	c->rx = calloc(n, sizeof(*c->rx));
	c->rxmem = calloc(n, RTRS_SRV_RX_STRIDE);
	if (!c->rx || !c->rxmem)
		return -ENOMEM;
	if (rtrs__fab_dom_caps(p->dom)->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, c->rxmem,
				       (size_t)n * RTRS_SRV_RX_STRIDE, FAB_ACC_LOCAL,
				       &c->rx_mr);
		if (ret)
			return ret;
	}
	c->nrx = n;
	for (unsigned i = 0; i < n; i++) {
		c->rx[i].con = c;
		c->rx[i].buf = c->rxmem + (size_t)i * RTRS_SRV_RX_STRIDE;
		c->rx[i].ctx.owner = &c->rx[i];
		c->rx[i].ctx.kind = CTX_RX;
		ret = rtrs__fab_post_recv(c->ep, c->rx[i].buf, RTRS_SRV_RX_BUF,
					  rtrs__fab_mr_desc(c->rx_mr),
					  &c->rx[i].ctx);
		if (ret)
			return ret;
	}
	return 0;
}

static void reject(struct srv_listener *l, struct fab_connreq *req, int err,
		   const char *why)
{
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_rsp rsp = { .err = err };

	rtrs_warn("srv: rejecting connection: %s (%s)", why, rtrs_strerror(err));
	rtrs__proto_conn_rsp_encode(priv, &rsp);
	rtrs__fab_reject(l->pep, req, priv, sizeof(priv));
}

static struct rtrs_srv_sess *find_sess(struct rtrs_srv_ctx *ctx,
				       const uint8_t *uuid)
{
	struct rtrs_list *pos, *tmp;

	rtrs_list_for_each_safe(pos, tmp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(pos, struct rtrs_srv_sess,
						       node);

		if (!s->evicted && !memcmp(s->uuid, uuid, 16))
			return s;
	}
	return NULL;
}

static struct srv_path *find_path(struct rtrs_srv_sess *s, const uint8_t *uuid)
{
	struct rtrs_list *pos, *tmp;

	rtrs_list_for_each_safe(pos, tmp, &s->paths) {
		struct srv_path *p = container_of(pos, struct srv_path, node);

		if (!memcmp(p->uuid, uuid, 16))
			return p;
	}
	return NULL;
}

static void srv_connreq(void *arg, struct fab_connreq *creq, const void *data,
			size_t len)
{
	struct srv_listener *l = arg;
	struct rtrs_srv_ctx *ctx = l->ctx;
	struct rtrs_conn_req req;
	struct rtrs_srv_sess *s;
	struct srv_path *p;
	struct srv_con *c;
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_rsp rsp;
	bool new_sess = false;
	unsigned loop, nrx;
	const struct fab_caps *caps = rtrs__fab_dom_caps(l->dom);
	int ret;

	ret = rtrs__proto_conn_req_decode(data, len, &req);
	if (ret) {
		atomic_fetch_add(&ctx->st_bad_input, 1);
		reject(l, creq, ret, "malformed connect request");
		return;
	}
	/* software RMA (protocol.md 2.6): a peer that does not speak frames
	 * (an older librtrs on tcp/net) would be misread */
	if (req.frames != caps->sw_rma) {
		atomic_fetch_add(&ctx->st_bad_input, 1);
		reject(l, creq, -EPROTONOSUPPORT, req.frames ?
		       "the client carries RMA as frames, this listener does not" :
		       "the client does not carry RMA as frames (an older librtrs?)");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		reject(l, creq, -ENOMEM, "no memory");
		return;
	}
	pthread_mutex_init(&c->lock, NULL);
	rtrs_list_init(&c->backlog);
	c->cid = req.cid;

	pthread_mutex_lock(&ctx->lock);
	if (ctx->closing) {
		ret = -ESHUTDOWN;
		goto err_unlock;
	}
	/* with keys, nothing is allocated for a client that does not
	 * authenticate (docs/protocol.md section 2.7) */
	if (ctx->keys.n && !req.auth) {
		ret = -EACCES;
		goto err_unlock;
	}
	/* the caps: checked before anything is allocated for the peer */
	if (ctx->lim.max_conns && ctx->ncons >= ctx->lim.max_conns) {
		ret = -ENOBUFS;
		atomic_fetch_add(&ctx->st_ref_conns, 1);
		goto err_unlock;
	}
	s = find_sess(ctx, req.paths_uuid);
	if (!s) {
		if (!req.first_conn) {
			ret = -ENXIO;
			goto err_unlock;
		}
		if (ctx->lim.max_sessions &&
		    ctx->nsess_all >= ctx->lim.max_sessions) {
			ret = -EUSERS;
			atomic_fetch_add(&ctx->st_ref_sessions, 1);
			goto err_unlock;
		}
	}
	/* fencing is the session's: a path (or a connection) that disagrees
	 * would let a request run again through it */
	if (s && s->fence != req.fence) {
		ret = -EPROTO;
		atomic_fetch_add(&ctx->st_bad_input, 1);
		goto err_unlock;
	}
	p = s ? find_path(s, req.sess_uuid) : NULL;
	if (!p) {
		if (ctx->lim.max_pending &&
		    ctx->npending >= ctx->lim.max_pending) {
			ret = -EAGAIN;
			atomic_fetch_add(&ctx->st_ref_pending, 1);
			goto err_unlock;
		}
		if (s && (s->npaths >= RTRS_MAX_PATHS ||
			  (ctx->lim.max_paths &&
			   s->npaths >= ctx->lim.max_paths))) {
			ret = -EMLINK;
			atomic_fetch_add(&ctx->st_ref_paths, 1);
			goto err_unlock;
		}
	}
	if (!s) {
		ret = sess_create(ctx, req.paths_uuid, &s);
		if (ret)
			goto err_unlock;
		s->fence = req.fence;
		new_sess = true;
	}
	if (!p) {
		ret = path_create(l, s, &req, creq, &p);
		if (ret)
			goto err_sess;
		if (new_sess) {
			rtrs_list_add_tail(&ctx->sessions, &s->node);
			ctx->nsess_all++;
		}
		new_sess = false;
		rtrs_list_add_tail(&s->paths, &p->node);
		s->npaths++;
		ctx->npaths++;
		p->pending = true;
		ctx->npending++;
		p->born_ms = rtrs_now_ms();
		/* the handshake deadline, then heartbeats */
		rtrs__timer_arm(&p->hb, MIN(ctx->attr.hb_interval_ms,
					    ctx->lim.handshake_ms));
	} else if (atomic_load(&p->state) != SRV_PATH_CONNECTING ||
		   p->cid_num != req.cid_num || p->ldom != l->dom ||
		   p->cons[req.cid]) {
		ret = -EEXIST;
		goto err_unlock;
	}
	c->path = p;
	p->cons[req.cid] = c;
	ctx->ncons++;
	atomic_fetch_add(&p->ref, 1);   /* for the endpoint */
	pthread_mutex_unlock(&ctx->lock);

	/* Connection k is served by loop k mod n (the client uses k - 1):
	 * on one host the two ends of a connection run on different CPUs,
	 * across hosts it makes no difference. */
	loop = req.cid % rtrs__fab_nloops();
	/* c->lock is held until the accept is posted: path_close(), from
	 * any thread, waits for it before it closes the endpoint */
	pthread_mutex_lock(&c->lock);
	ret = rtrs__fab_ep_accept_create(p->dom, creq, loop, &srv_ep_ops, c,
					 &c->ep);
	if (!ret)       /* its peer writes only into this path's chunks */
		rtrs__fab_ep_set_scope(c->ep, p);
	if (ret) {
		pthread_mutex_unlock(&c->lock);
		reject(l, creq, ret, "endpoint");
		path_close(p, ret, false);
		path_put(p);    /* the endpoint that never was */
		return;
	}
	if (atomic_load(&p->state) == SRV_PATH_CLOSING) {
		/* closed (fenced) while the endpoint was made: path_close()
		 * may have passed this connection, and it must not come up */
		pthread_mutex_unlock(&c->lock);
		con_close_ep(c);
		return;
	}
	if (req.cid == 0) {
		char peer[sizeof(p->peer)];

		rtrs__fab_ep_peer(c->ep, peer, sizeof(peer));
		/* rtrsctl reads it; c->lock, then ctx->lock (nothing takes
		 * them the other way round) */
		pthread_mutex_lock(&ctx->lock);
		memcpy(p->peer, peer, sizeof(peer));
		pthread_mutex_unlock(&ctx->lock);
	}
	if (caps->rx_cq_data)
		nrx = (unsigned)MIN(caps->rx_size, (size_t)s->geom.queue_depth + 8);
	else
		nrx = req.cid == 0 ? 8 : 2;
	ret = con_setup_rx(c, nrx);
	memset(&rsp, 0, sizeof(rsp));
	rsp.queue_depth = (uint16_t)s->geom.queue_depth;
	rsp.max_io_size = s->geom.max_io_size;
	rsp.max_hdr_size = s->geom.max_hdr_size;
	rsp.flags = (ctx->attr.always_invalidate ? RTRS_MSG_NEW_RKEY_F : 0) |
		    (p->fence ? RTRS_MSG_FENCE_F : 0) |
		    (p->auth ? RTRS_MSG_AUTH_F : 0) |
		    (caps->sw_rma ? RTRS_MSG_FRAMES_F : 0);
	rsp.path_id = p->id;
	rtrs__proto_conn_rsp_encode(priv, &rsp);
	if (!ret)
		ret = rtrs__fab_ep_accept(c->ep, priv, sizeof(priv));
	pthread_mutex_unlock(&c->lock);
	if (ret) {
		rtrs_warn("srv: accept failed: %s", rtrs_strerror(ret));
		path_close(p, ret, false);
	}
	return;

err_sess:
	if (new_sess)
		sess_free(s);
err_unlock:
	pthread_mutex_unlock(&ctx->lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
	reject(l, creq, ret, ret == -EEXIST ? "path or connection exists"
			       : ret == -ENXIO ? "unknown session"
			       : ret == -EUSERS ? "too many sessions"
			       : ret == -EMLINK ? "too many paths in the session"
			       : ret == -ENOBUFS ? "too many connections"
			       : ret == -EAGAIN ? "too many pending handshakes"
			       : ret == -EPROTO ? "fencing differs from the session's"
			       : ret == -EACCES ? "the client does not authenticate"
			       : "cannot accept");
}

/* ---- listener API ---- */

int rtrs_srv_open(const char *const *addrs, size_t naddrs,
		  const struct rtrs_srv_attr *attr, struct rtrs_srv_ctx **out)
{
	return rtrs_srv_open_auth(addrs, naddrs, attr, NULL, out);
}

int rtrs_srv_open_auth(const char *const *addrs, size_t naddrs,
		       const struct rtrs_srv_attr *attr,
		       const struct rtrs_auth *auth, struct rtrs_srv_ctx **out)
{
	struct rtrs_srv_ctx *ctx;
	struct srv_listener *ls;
	struct rtrs_keyring keys = { 0 };
	uint32_t chunk;
	int ret;

	if (!addrs || !naddrs || !attr || !out || !attr->ops.rdma_ev ||
	    attr->size < offsetof(struct rtrs_srv_attr, priv))
		return -EINVAL;
	for (size_t i = 0; i < naddrs; i++) {
		char host[128], port[16], prov[32];
		const char *a = addrs[i] ? rtrs__split_provider(addrs[i], NULL,
							       prov, sizeof(prov))
					 : NULL;

		/* every address before listening on any: "[prov://]host:port" */
		if (!a || rtrs__split_hostport(a, host, sizeof(host), port,
					       sizeof(port)) ||
		    rtrs__host_check(host))
			return -EINVAL;
	}
	chunk = attr->chunk_size;
	if (chunk < RTRS_PROTO_MIN_CHUNK || (chunk & (chunk - 1)))
		return -EINVAL;
	if (attr->size >= offsetof(struct rtrs_srv_attr, hb_missed_max) +
				  sizeof(attr->hb_missed_max) &&
	    (attr->hb_interval_ms < 100 || attr->hb_missed_max < 1))
		return -EINVAL;
	if (auth) {
		/* before any listener: no client comes in unauthenticated */
		if (auth->size < offsetof(struct rtrs_auth, key_file) +
				 sizeof(char *) || !auth->key_file)
			return -EINVAL;
		ret = rtrs__auth_load(auth->key_file, &keys);
		if (ret)
			return ret;
	}
	ctx = calloc(1, sizeof(*ctx));
	ls = calloc(naddrs, sizeof(*ls));
	if (!ctx || !ls) {
		free(ctx);
		free(ls);
		rtrs__auth_free(&keys);
		return -ENOMEM;
	}
	ctx->keys = keys;
	rtrs_srv_attr_init(&ctx->attr);
	memcpy(&ctx->attr, attr, MIN(attr->size, sizeof(ctx->attr)));
	ctx->attr.size = sizeof(ctx->attr);
	rtrs_srv_limits_init(&ctx->lim);
	ret = rtrs__proto_geom(&ctx->geom, attr->queue_depth, chunk,
			       RTRS_PROTO_MAX_HDR);
	if (ret) {
		rtrs__auth_free(&ctx->keys);
		free(ctx);
		free(ls);
		return ret;
	}
	pthread_mutex_init(&ctx->lock, NULL);
	rtrs__cond_init_mono(&ctx->cond);
	rtrs_list_init(&ctx->sessions);
	ctx->ls = ls;
	ret = rtrs__timers_get();
	if (ret)
		goto err_free;
	ctx->timers = true;
	ret = rtrs__fab_engine_get();
	if (ret)
		goto err_free;
	for (size_t i = 0; i < naddrs; i++) {
		char host[128], port[16], prov[32];
		const char *a = rtrs__split_provider(addrs[i], attr->provider,
						     prov, sizeof(prov));

		ls[i].ctx = ctx;
		ls[i].loop = (unsigned)i % rtrs__fab_nloops();
		ret = a ? rtrs__split_hostport(a, host, sizeof(host), port,
					       sizeof(port))
			: -EINVAL;
		if (!ret)
			ret = rtrs__fab_dom_open(prov, host, port, NULL, true,
						 &ls[i].dom);
		if (!ret)
			ret = rtrs__fab_pep_open(ls[i].dom, ls[i].loop,
						 &srv_pep_ops, &ls[i], &ls[i].pep);
		if (ret) {
			rtrs_err("srv: cannot listen on %s: %s", addrs[i],
				 rtrs_strerror(ret));
			ctx->npeps = i + 1;
			goto err_close;
		}
		ctx->npeps = i + 1;
	}
	if (!ctx->attr.ctl_disable)
		rtrs__ctl_register(RTRS_CTL_SRV, ctx);
	*out = ctx;
	return 0;

err_close:
	for (size_t i = 0; i < ctx->npeps; i++) {
		rtrs__fab_pep_close(ls[i].pep);
		rtrs__fab_dom_put(ls[i].dom);
	}
	rtrs__fab_engine_put();
err_free:
	if (ctx->timers)
		rtrs__timers_put();
	pthread_mutex_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
	rtrs__auth_free(&ctx->keys);
	free(ls);
	free(ctx);
	return ret;
}

int rtrs_srv_get_listen_addr(struct rtrs_srv_ctx *ctx, size_t idx, char *buf,
			     size_t len)
{
	if (!ctx || !buf)
		return -EINVAL;
	if (idx >= ctx->npeps)
		return -ENOENT;
	return rtrs__fab_pep_name(ctx->ls[idx].pep, buf, len);
}

void rtrs_srv_close(struct rtrs_srv_ctx *ctx)
{
	struct srv_listener *ls;
	struct srv_path **all;
	struct rtrs_list *sp, *st, *pp, *pt;
	unsigned n = 0;

	if (!ctx)
		return;
	ls = ctx->ls;
	rtrs__ctl_unregister(ctx);
	pthread_mutex_lock(&ctx->lock);
	ctx->closing = true;
	pthread_mutex_unlock(&ctx->lock);
	for (size_t i = 0; i < ctx->npeps; i++)
		rtrs__fab_pep_close(ls[i].pep);

	pthread_mutex_lock(&ctx->lock);
	all = calloc(ctx->npaths + 1, sizeof(*all));
	rtrs_list_for_each_safe(sp, st, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		rtrs_list_for_each_safe(pp, pt, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			if (all) {
				atomic_fetch_add(&p->ref, 1);
				all[n++] = p;
			}
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	for (unsigned i = 0; i < n; i++) {
		path_close(all[i], 0, false);
		path_put(all[i]);
	}
	free(all);
	/* every path goes once its endpoints are closed and its ops answered */
	pthread_mutex_lock(&ctx->lock);
	while (ctx->npaths)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	pthread_mutex_unlock(&ctx->lock);
	/* what is left lingers without paths */
	for (;;) {
		struct rtrs_srv_sess *s = NULL;

		pthread_mutex_lock(&ctx->lock);
		if (!rtrs_list_empty(&ctx->sessions)) {
			s = container_of(ctx->sessions.next, struct rtrs_srv_sess,
					 node);
			rtrs_list_del(&s->node);
			sess_uncount(ctx, s->established);
		}
		pthread_mutex_unlock(&ctx->lock);
		if (!s)
			break;
		rtrs__timer_stop(&s->linger);
		if (s->link_up && ctx->attr.ops.link_ev)
			ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED,
					      s->priv);
		sess_free(s);
	}
	/* a linger that fired before we set closing took its session off
	 * the list and may still be freeing it on the timer thread: it
	 * uncounts it last, under the lock, then never touches ctx again */
	pthread_mutex_lock(&ctx->lock);
	while (ctx->nsess_all)
		pthread_cond_wait(&ctx->cond, &ctx->lock);
	pthread_mutex_unlock(&ctx->lock);
	for (size_t i = 0; i < ctx->npeps; i++)
		rtrs__fab_dom_put(ls[i].dom);
	rtrs__fab_engine_put();
	rtrs__timers_put();
	pthread_mutex_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
	rtrs__auth_free(&ctx->keys);
	free(ls);
	free(ctx);
}

enum rtrs_dir rtrs_srv_op_dir(const struct rtrs_srv_op *op)
{
	/* an enum holds the negative errno as well (rtrs.h) */
	return op ? op->dir : (enum rtrs_dir)-EINVAL;
}

struct rtrs_srv_sess *rtrs_srv_op_sess(const struct rtrs_srv_op *op)
{
	return op ? op->sess : NULL;
}

void rtrs_srv_set_sess_priv(struct rtrs_srv_sess *s, void *priv)
{
	if (s)
		s->priv = priv;
}

void *rtrs_srv_get_sess_priv(struct rtrs_srv_sess *s)
{
	return s ? s->priv : NULL;
}

int rtrs_srv_sess_identity(struct rtrs_srv_sess *s, char *buf, size_t len)
{
	struct rtrs_srv_ctx *ctx;
	int ret = 0;

	if (!s || !buf)
		return -EINVAL;
	ctx = s->ctx;
	pthread_mutex_lock(&ctx->lock);
	if (!s->identity[0])
		ret = -ENOENT;
	else if (strlen(s->identity) >= len)
		ret = -ENOSPC;
	else
		strcpy(buf, s->identity);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int rtrs_srv_get_sess_name(struct rtrs_srv_sess *s, char *buf, size_t len)
{
	if (!s || !buf)
		return -EINVAL;
	if (strlen(s->name) >= len)
		return -ENOSPC;
	strcpy(buf, s->name);
	return 0;
}

int rtrs_srv_get_queue_depth(struct rtrs_srv_sess *s)
{
	return s ? (int)s->geom.queue_depth : -EINVAL;
}

int rtrs_srv_get_stats(struct rtrs_srv_ctx *ctx, struct rtrs_srv_stats *st)
{
	if (!ctx || !st)
		return -EINVAL;
	st->read_cnt = atomic_load(&ctx->st_read_cnt);
	st->read_bytes = atomic_load(&ctx->st_read_bytes);
	st->write_cnt = atomic_load(&ctx->st_write_cnt);
	st->write_bytes = atomic_load(&ctx->st_write_bytes);
	pthread_mutex_lock(&ctx->lock);
	st->sessions = ctx->nsess;
	pthread_mutex_unlock(&ctx->lock);
	st->paths_closed_bad_input = atomic_load(&ctx->st_bad_input);
	st->executed = atomic_load(&ctx->st_executed);
	st->dup_answered = atomic_load(&ctx->st_dup_answered);
	st->dup_attached = atomic_load(&ctx->st_dup_attached);
	st->stale_dropped = atomic_load(&ctx->st_stale_dropped);
	st->paths_fenced = atomic_load(&ctx->st_paths_fenced);
	st->hb_timeouts = atomic_load(&ctx->st_hb_timeouts);
	return 0;
}

int rtrs_srv_set_limits(struct rtrs_srv_ctx *ctx,
			const struct rtrs_srv_limits *lim)
{
	struct rtrs_srv_limits l;

	if (!ctx || !lim ||
	    lim->size < offsetof(struct rtrs_srv_limits, max_pending) +
			sizeof(lim->max_pending))
		return -EINVAL;
	rtrs_srv_limits_init(&l);
	memcpy(&l, lim, MIN(lim->size, sizeof(l)));
	l.size = sizeof(l);
	if (l.handshake_ms < 100)
		return -EINVAL;
	pthread_mutex_lock(&ctx->lock);
	ctx->lim = l;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int rtrs_srv_get_limit_stats(struct rtrs_srv_ctx *ctx,
			     struct rtrs_srv_limit_stats *st)
{
	struct rtrs_srv_limit_stats v;
	size_t n;

	if (!ctx || !st || !st->size)
		return -EINVAL;
	n = MIN(st->size, sizeof(v));
	memset(&v, 0, sizeof(v));
	v.size = n;
	v.handshake_timeouts = atomic_load(&ctx->st_hs_timeouts);
	v.refused_sessions = atomic_load(&ctx->st_ref_sessions);
	v.refused_paths = atomic_load(&ctx->st_ref_paths);
	v.refused_conns = atomic_load(&ctx->st_ref_conns);
	v.refused_pending = atomic_load(&ctx->st_ref_pending);
	v.accept_shed = atomic_load(&ctx->st_accept_shed);
	for (size_t i = 0; i < ctx->npeps; i++)
		v.accept_shed += rtrs__fab_pep_shed(ctx->ls[i].pep);
	pthread_mutex_lock(&ctx->lock);
	v.pending = ctx->npending;
	v.conns = ctx->ncons;
	pthread_mutex_unlock(&ctx->lock);
	memcpy(st, &v, n);
	return 0;
}

int rtrs_srv_sess_get_stats(struct rtrs_srv_sess *s,
			    struct rtrs_srv_sess_stats *st)
{
	if (!s || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->read_cnt = atomic_load(&s->st_read_cnt);
	st->read_bytes = atomic_load(&s->st_read_bytes);
	st->write_cnt = atomic_load(&s->st_write_cnt);
	st->write_bytes = atomic_load(&s->st_write_bytes);
	pthread_mutex_lock(&s->ctx->lock);
	st->paths = s->npaths;
	st->paths_connected = s->npaths_up;
	pthread_mutex_unlock(&s->ctx->lock);
	return 0;
}

int rtrs_srv_reset_stats(struct rtrs_srv_ctx *ctx)
{
	struct rtrs_list *sp, *pp;

	if (!ctx)
		return -EINVAL;
	atomic_store(&ctx->st_read_cnt, 0);
	atomic_store(&ctx->st_read_bytes, 0);
	atomic_store(&ctx->st_write_cnt, 0);
	atomic_store(&ctx->st_write_bytes, 0);
	atomic_store(&ctx->st_bad_input, 0);
	atomic_store(&ctx->st_executed, 0);
	atomic_store(&ctx->st_dup_answered, 0);
	atomic_store(&ctx->st_dup_attached, 0);
	atomic_store(&ctx->st_stale_dropped, 0);
	atomic_store(&ctx->st_paths_fenced, 0);
	atomic_store(&ctx->st_hb_timeouts, 0);
	atomic_store(&ctx->st_hs_timeouts, 0);
	atomic_store(&ctx->st_ref_sessions, 0);
	atomic_store(&ctx->st_ref_paths, 0);
	atomic_store(&ctx->st_ref_conns, 0);
	atomic_store(&ctx->st_ref_pending, 0);
	/* the listeners' shed counters keep counting: subtract them */
	atomic_store(&ctx->st_accept_shed, 0);
	for (size_t i = 0; i < ctx->npeps; i++)
		atomic_fetch_sub(&ctx->st_accept_shed,
				 rtrs__fab_pep_shed(ctx->ls[i].pep));
	pthread_mutex_lock(&ctx->lock);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		atomic_store(&s->st_read_cnt, 0);
		atomic_store(&s->st_read_bytes, 0);
		atomic_store(&s->st_write_cnt, 0);
		atomic_store(&s->st_write_bytes, 0);
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			atomic_store(&p->st_read_cnt, 0);
			atomic_store(&p->st_read_bytes, 0);
			atomic_store(&p->st_write_cnt, 0);
			atomic_store(&p->st_write_bytes, 0);
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* ---- control socket (ctl.c) ---- */

/* The number of @p for rtrsctl: the client's (its slot), when the client
 * sent it, else the server's id (kernel-style clients). */
static uint32_t srv_path_no(const struct srv_path *p)
{
	return p->has_no ? p->no : p->id;
}

static const char *srv_path_state_str(int st)
{
	return st == SRV_PATH_CONNECTED ? "connected"
	       : st == SRV_PATH_CONNECTING ? "connecting" : "closing";
}

int rtrs__srv_ctl_dump(struct rtrs_srv_ctx *ctx, FILE *f, bool json,
		       const char *name)
{
	struct rtrs_list *sp, *pp;
	char addr[160];
	int n = 0;

	if (json)
		fprintf(f, "{\"listen\":[");
	else if (!name)
		fprintf(f, "server");
	for (size_t i = 0; i < ctx->npeps && !(name && !json); i++) {
		if (rtrs__fab_pep_name(ctx->ls[i].pep, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		if (json) {
			fprintf(f, "%s", i ? "," : "");
			rtrs__ctl_json_str(f, addr);
		} else {
			fprintf(f, " %s", addr);
		}
	}
	if (json || !name) {
		struct rtrs_srv_stats st;
		struct rtrs_srv_limit_stats ls = { .size = sizeof(ls) };

		rtrs_srv_get_stats(ctx, &st);
		rtrs_srv_get_limit_stats(ctx, &ls);
		fprintf(f, json ? "],\"stats\":{\"read_cnt\":%llu,\"read_bytes\":%llu,"
			"\"write_cnt\":%llu,\"write_bytes\":%llu,\"executed\":%llu,"
			"\"dup_answered\":%llu,\"dup_attached\":%llu,"
			"\"stale_dropped\":%llu,\"paths_fenced\":%llu,"
			"\"hb_timeouts\":%llu,\"paths_closed_bad_input\":%llu,"
			"\"sessions_open\":%llu,"
			: "\n  rdma: %llu %llu %llu %llu\n  executed %llu  "
			"dup_answered %llu  dup_attached %llu  stale_dropped %llu  "
			"paths_fenced %llu  hb_timeouts %llu  bad_input %llu"
			"  sessions_open %llu\n",
			(unsigned long long)st.read_cnt,
			(unsigned long long)st.read_bytes,
			(unsigned long long)st.write_cnt,
			(unsigned long long)st.write_bytes,
			(unsigned long long)st.executed,
			(unsigned long long)st.dup_answered,
			(unsigned long long)st.dup_attached,
			(unsigned long long)st.stale_dropped,
			(unsigned long long)st.paths_fenced,
			(unsigned long long)st.hb_timeouts,
			(unsigned long long)st.paths_closed_bad_input,
			(unsigned long long)st.sessions);
		fprintf(f, json ? "\"handshake_timeouts\":%llu,"
			"\"refused_sessions\":%llu,\"refused_paths\":%llu,"
			"\"refused_conns\":%llu,\"refused_pending\":%llu,"
			"\"accept_shed\":%llu,\"pending\":%llu,\"conns\":%llu}"
			: "  handshake_timeouts %llu  refused: sessions %llu "
			"paths %llu conns %llu pending %llu  accept_shed %llu"
			"  pending %llu  conns %llu\n",
			(unsigned long long)ls.handshake_timeouts,
			(unsigned long long)ls.refused_sessions,
			(unsigned long long)ls.refused_paths,
			(unsigned long long)ls.refused_conns,
			(unsigned long long)ls.refused_pending,
			(unsigned long long)ls.accept_shed,
			(unsigned long long)ls.pending,
			(unsigned long long)ls.conns);
	}
	pthread_mutex_lock(&ctx->lock);
	if (json)
		fprintf(f, ",\"sessions\":[");
	else if (!name)
		fprintf(f, "  sessions %u\n", ctx->nsess);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);
		bool first = true;

		if (!s->named || (name && strcmp(name, s->name)))
			continue;
		if (json) {
			fprintf(f, "%s{\"name\":", n ? "," : "");
			rtrs__ctl_json_str(f, s->name);
			fprintf(f, ",\"queue_depth\":%u,\"read_cnt\":%llu,"
				"\"read_bytes\":%llu,\"write_cnt\":%llu,"
				"\"write_bytes\":%llu,\"paths\":[",
				s->geom.queue_depth,
				(unsigned long long)atomic_load(&s->st_read_cnt),
				(unsigned long long)atomic_load(&s->st_read_bytes),
				(unsigned long long)atomic_load(&s->st_write_cnt),
				(unsigned long long)atomic_load(&s->st_write_bytes));
		} else {
			fprintf(f, "server session %s  queue_depth %u  paths %u%s\n"
				"  rdma: %llu %llu %llu %llu\n",
				s->name, s->geom.queue_depth, s->npaths,
				s->npaths ? "" : " (lingering)",
				(unsigned long long)atomic_load(&s->st_read_cnt),
				(unsigned long long)atomic_load(&s->st_read_bytes),
				(unsigned long long)atomic_load(&s->st_write_cnt),
				(unsigned long long)atomic_load(&s->st_write_bytes));
		}
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);
			unsigned long long rc = atomic_load(&p->st_read_cnt),
					   rb = atomic_load(&p->st_read_bytes),
					   wc = atomic_load(&p->st_write_cnt),
					   wb = atomic_load(&p->st_write_bytes);
			const char *st = srv_path_state_str(atomic_load(&p->state));

			if (json) {
				fprintf(f, "%s{\"id\":%u,\"state\":\"%s\","
					"\"src_addr\":", first ? "" : ",",
					srv_path_no(p), st);
				rtrs__ctl_json_str(f, p->peer);
				fprintf(f, ",\"read_cnt\":%llu,\"read_bytes\":%llu,"
					"\"write_cnt\":%llu,\"write_bytes\":%llu}",
					rc, rb, wc, wb);
			} else {
				fprintf(f, "  path %u\n    state: %s\n"
					"    src_addr: %s\n"
					"    stats/rdma: %llu %llu %llu %llu\n",
					srv_path_no(p), st, p->peer, rc, rb, wc,
					wb);
			}
			first = false;
		}
		if (json)
			fprintf(f, "]}");
		n++;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (json)
		fprintf(f, "]}");
	return n;
}

/* Close the paths of session @name numbered @id, or all of them when
 * @all. -ENOENT when none. */
static int close_sess_paths(struct rtrs_srv_ctx *ctx, const char *name,
			    uint32_t id, bool all)
{
	struct srv_path *found[RTRS_MAX_PATHS];
	struct rtrs_list *sp, *pp;
	unsigned n = 0;
	bool named = false;

	/* every path object with that number: the client's path and any
	 * earlier one of it still closing */
	pthread_mutex_lock(&ctx->lock);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		if (!s->named || strcmp(name, s->name))
			continue;
		named = true;
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			if ((all || srv_path_no(p) == id) &&
			    n < RTRS_MAX_PATHS) {
				atomic_fetch_add(&p->ref, 1);
				found[n++] = p;
			}
		}
	}
	pthread_mutex_unlock(&ctx->lock);
	for (unsigned i = 0; i < n; i++) {
		path_close(found[i], -ECONNRESET, false);
		path_put(found[i]);
	}
	return n || (all && named) ? 0 : -ENOENT;
}

int rtrs__srv_ctl_close_path(struct rtrs_srv_ctx *ctx, const char *name,
			     uint32_t id)
{
	return close_sess_paths(ctx, name, id, false);
}

int rtrs_srv_close_sess(struct rtrs_srv_ctx *ctx, const char *name)
{
	if (!ctx || !name)
		return -EINVAL;
	return close_sess_paths(ctx, name, 0, true);
}
