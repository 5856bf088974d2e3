// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server, the data path: incoming requests (decoded from the chunk, fenced
 * against retries and paths the client left), the answers to them
 * (rtrs_srv_resp(), rtrs_srv_resp_buf()) and their queue when the provider
 * has no room.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

static void *srv_mr_desc(const struct rtrs_srv_mr *m, const struct fab_dom *d)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->reg[i].dom == d)
			return rtrs__fab_mr_desc(m->reg[i].mr);
	return NULL;
}

/* Post what is left of @op's answer; with c->lock held. */
static int post_op(struct srv_con *c, struct rtrs_srv_op *op)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = op->sess;
	struct fab_mr *mr = p->nmrs > 1 ? p->mrs[op->id] : p->mrs[0];
	uint32_t imm = rtrs__proto_io_rsp_imm(op->id, op->status);
	int ret;

	RTRS_ASSERT_HELD(&c->lock);
	if (op->need_inv)
		imm = rtrs_imm(RTRS_IMM_IO_RSP_W_INV, rtrs_imm_payload(imm));
	if (p->nmrs > 1)        /* always_invalidate: the chunk's new key */
		rtrs__proto_rkey_rsp_encode(op->rkey_rsp, (uint16_t)op->id,
					    rtrs__fab_mr_key(mr));
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
			bool final = op->posted + 1 == op->sg_cnt &&
				     !op->need_inv;
			bool last = final && p->nmrs <= 1;

			if (final && p->nmrs > 1 && c->batch) {
				/* the new rkey's message batched with the
				 * data: one system call on tcp */
				ret = rtrs__fab_post_write_send(
					c->ep, &iov, &desc, 1, d->addr, d->key,
					op->rkey_rsp, RTRS_RKEY_RSP_LEN,
					rtrs__fab_mr_desc(p->ops_mr), imm,
					&op->ctx, false);
				if (ret)
					return ret;
				op->posted++;
				return 0;
			}
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
	if (op->need_inv && !op->inv_posted) {
		/* after the data (RC keeps the order), as the kernel's
		 * server: the client completes the READ without a local
		 * invalidate of its own */
		ret = rtrs__fab_post_send_inv(c->ep, op->desc[0].key, &op->ctx,
					      false);
		if (ret)
			return ret;
		op->inv_posted = true;
	}
	if (p->nmrs > 1)
		return rtrs__fab_post_send(c->ep, op->rkey_rsp,
					   RTRS_RKEY_RSP_LEN,
					   rtrs__fab_mr_desc(p->ops_mr), true,
					   imm, &op->ctx, false);
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
	rtrs__lock(&op->lock);
	if (src && (op->dir != RTRS_READ ||
		    (uintptr_t)src < (uintptr_t)src_mr->buf ||
		    (uintptr_t)src - (uintptr_t)src_mr->buf > src_mr->len ||
		    src_mr->len - ((uintptr_t)src - (uintptr_t)src_mr->buf) <
			    op->data_len)) {
		rtrs__unlock(&op->lock);
		return -EINVAL;
	}
	/* with always_invalidate the answer is a message of its own, after
	 * the data: tcp sends it even when writing the data failed (an
	 * application buffer can fault, a chunk cannot), and the client
	 * would take what it has for the data */
	if (src && op->sess->ctx->attr.always_invalidate) {
		rtrs__unlock(&op->lock);
		return -EOPNOTSUPP;
	}
	if (!atomic_compare_exchange_strong(&op->state, &busy, OP_RESP)) {
		rtrs__unlock(&op->lock);
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
	op->inv_posted = false;
	if (p->nmrs > 1) {
		/* always_invalidate: a fresh key for the chunk */
		struct fab_mr *m;

		ret = rtrs__fab_mr_reg_peer(p->dom, chunk_ptr(op->sess, op->id),
					    op->sess->geom.chunk_size, p, &m);
		if (ret) {
			rtrs__unlock(&op->lock);
			pslog(RTRS_LOG_ERR, p, "chunk %u: re-registration: %s",
			      op->id, rtrs_strerror(ret));
			rtrs__srv_path_close(p, ret, false);
			rtrs__srv_op_finish(op);
			return -ENOTCONN;
		}
		rtrs__fab_mr_close(p->mrs[op->id]);
		p->mrs[op->id] = m;
	}
	rtrs__unlock(&op->lock);
	rtrs__lock(&c->lock);
	if (c->dead) {
		rtrs__unlock(&c->lock);
		rtrs__srv_op_finish(op);
		return -ENOTCONN;
	}
	ret = rtrs_list_empty(&c->backlog) ? post_op(c, op) : -EAGAIN;
	if (ret == -EAGAIN) {
		atomic_store(&op->state, OP_QUEUED);
		rtrs_list_add_tail(&c->backlog, &op->bl_node);
		rtrs__fab_ep_want_tx(c->ep);
		rtrs__unlock(&c->lock);
		return 0;
	}
	rtrs__unlock(&c->lock);
	if (ret)
		rtrs__srv_path_close(p, ret, false);
	rtrs__srv_op_finish(op);
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

void rtrs__srv_tx_ready(void *ctx)
{
	struct srv_con *c = ctx;
	struct rtrs_list done, *pos, *tmp;
	int ret = 0;

	rtrs_list_init(&done);
	rtrs__lock(&c->lock);
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
	rtrs__unlock(&c->lock);
	if (ret)
		rtrs__srv_path_close(c->path, ret, false);
	rtrs_list_for_each_safe(pos, tmp, &done) {
		rtrs_list_del(pos);
		rtrs__srv_op_finish(container_of(pos, struct rtrs_srv_op,
						 bl_node));
	}
}

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

	srv_lock(ctx);
	rtrs_list_for_each_safe(pos, tmp, &s->paths) {
		struct srv_path *x = container_of(pos, struct srv_path, node);

		if (x->id == id && x != by && rtrs__srv_path_tryget(x)) {
			q = x;
			break;
		}
	}
	srv_unlock(ctx);
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
	rtrs__srv_path_close(q, -ECONNABORTED, false);
	rtrs__srv_path_put(q);
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
	op->need_inv = m->type == RTRS_MSG_READ && m->sg_cnt == 1 &&
		       (m->flags & RTRS_MSG_NEED_INVAL_F) &&
		       rtrs__fab_dom_caps(c->path->dom)->remote_inv;
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

	RTRS_ASSERT_HELD(&op->lock);
	*answer_now = false;
	if (atomic_load(&op->state) == OP_QUEUED) {
		rtrs__lock(&old->lock);
		if (atomic_load(&op->state) == OP_QUEUED) {
			rtrs_list_del(&op->bl_node);
			queued = true;
		}
		rtrs__unlock(&old->lock);
		if (!queued)
			return false;
		atomic_store(&op->state, OP_BUSY);
		*answer_now = true;
	}
	atomic_fetch_add(&c->path->ref, 1);
	op_take(op, c, m, desc);
	revoke_arrival(c->path, op->id);
	rtrs__srv_path_put(oldp);
	return true;
}

enum { IO_DONE, IO_AGAIN, IO_DROP };

/*
 * A request with the sequence number of the chunk's last one: a retry is
 * attached to that request if it is in service, or answered again from
 * the store; the original after its retry is dropped (IO_DROP). With
 * op->lock held; released unless it returns IO_DROP. IO_AGAIN: the answer
 * was being posted, look again.
 */
static int io_retry(struct rtrs_srv_op *op, struct srv_con *c,
		    const struct rtrs_io_msg *m,
		    const struct rtrs_sg_desc *desc, int st)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	bool answer_now;

	if (!(m->fence_flags & RTRS_FENCE_RETRY_F)) {
		/* the original, after its retry: never run it again */
		return IO_DROP;
	}
	if (st != OP_FREE) {
		if (!attach_retry(op, c, m, desc, &answer_now)) {
			rtrs__unlock(&op->lock);
			return IO_AGAIN;
		}
		atomic_fetch_add(&ctx->st_dup_attached, 1);
		rtrs__unlock(&op->lock);
		if (answer_now)
			answer(op, op->last_status, NULL, NULL);
		return IO_DONE;
	}
	/* executed and answered already: answer again from the store
	 * (a READ's data is still in the chunk, or where
	 * rtrs_srv_resp_buf() took it from) */
	op_take(op, c, m, desc);
	atomic_store(&op->state, OP_BUSY);
	revoke_arrival(p, op->id);
	atomic_fetch_add(&p->ref, 1);
	atomic_fetch_add(&ctx->st_dup_answered, 1);
	rtrs__unlock(&op->lock);
	answer(op, op->last_status, NULL, NULL);
	return IO_DONE;
}

void rtrs__srv_io_req(struct srv_con *c, uint32_t payload)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	struct rtrs_sg_desc desc[RTRS_PROTO_MAX_READ_DESC];
	struct rtrs_srv_op *op;
	struct rtrs_io_msg m;
	uint32_t id, off;
	char *chunk;
	int st, ret;

	st = atomic_load(&p->state);
	if (st == SRV_PATH_CLOSING)
		return;         /* its client retries it on another path */
	if (st != SRV_PATH_CONNECTED) {
		pslog(RTRS_LOG_ERR, p, "request before the info exchange");
		rtrs__srv_path_close(p, -EPROTO, true);
		return;
	}
	if (rtrs__proto_io_req_decode(&s->geom, payload, &id, &off)) {
		pslog(RTRS_LOG_ERR, p, "request immediate out of range (%#x)",
		      payload);
		rtrs__srv_path_close(p, -EPROTO, true);
		return;
	}
	op = &s->ops[id];
	chunk = chunk_ptr(s, id);
again:
	rtrs__lock(&op->lock);
	if (atomic_load(&op->state) == OP_RESP) {
		/* its answer is being posted: wait for the poster */
		rtrs__unlock(&op->lock);
		sched_yield();
		goto again;
	}
	ret = rtrs__proto_io_msg_decode(chunk, &s->geom, off, p->fence, &m);
	for (unsigned i = 0; !ret && i < m.sg_cnt; i++)
		ret = rtrs__proto_read_desc(chunk, &s->geom, &m, i, &desc[i]);
	if (ret) {
		rtrs__unlock(&op->lock);
		pslog(RTRS_LOG_ERR, p, "chunk %u: malformed request (off %u): %s",
		      id, off, rtrs_strerror(ret));
		rtrs__srv_path_close(p, ret, true);
		return;
	}
	if (m.fence_flags & RTRS_FENCE_PATH_F)
		fence_path(p, id, m.fence_path);
	st = atomic_load(&op->state);
	if (p->fence && m.seq == op->last_seq) {
		ret = io_retry(op, c, &m, desc, st);
		if (ret == IO_AGAIN) {
			sched_yield();
			goto again;
		}
		if (ret == IO_DROP)
			goto drop;
		return;
	}
	if (p->fence && op->last_seq && seq_before(m.seq, op->last_seq))
		goto drop;      /* older than the chunk's last request */
	if (st != OP_FREE) {
		rtrs__unlock(&op->lock);
		pslog(RTRS_LOG_ERR, p, "request for chunk %u that is in use", id);
		rtrs__srv_path_close(p, -EPROTO, true);
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
	rtrs__unlock(&op->lock);
	atomic_fetch_add_explicit(&ctx->st_executed, 1, memory_order_relaxed);
	ret = ctx->attr.ops.rdma_ev(s->priv, op, chunk, m.data_len,
				    chunk + m.usr_off, m.usr_len);
	if (ret)
		rtrs_srv_resp(op, ret < 0 ? ret : -EIO);
	return;

drop:
	off = op->last_seq;
	rtrs__unlock(&op->lock);
	atomic_fetch_add(&ctx->st_stale_dropped, 1);
	pslog(RTRS_LOG_INFO, p, "chunk %u: dropped request seq %u (last %u)",
	      id, m.seq, off);
}
