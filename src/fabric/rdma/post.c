// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Posting on an rdma-core endpoint: receives, sends (with immediate data)
 * and RDMA writes (with immediate data), and the send ring that gives
 * every send queue entry a slot: an unsignaled entry completes without a
 * completion, so every 32nd, and every one past half the ring, is
 * signaled to free the ring (those completions stay in the backend). */
#include "rdma.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "util/log.h"

#define SIGNAL_EVERY 32

static int post_prologue(struct fab_ep *e, unsigned nslots)
{
	int f;

	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	f = rtrs__fab_fault_post_ep(e, rtrs__rd_ep_peer, &e->fault_down);
	if (f) {
		rtrs__unlock(&e->post_lock);
		if (f > 0)
			rtrs__rd_wake();
		return f;
	}
	if (e->sq_head - e->sq_tail + nslots > RD_SQ_DEPTH) {
		rtrs__unlock(&e->post_lock);
		return -EAGAIN;
	}
	return 0;
}

/* The next slot of the ring for @ctx (under post_lock): its wr_id, and
 * whether the entry is signaled. */
static uint64_t slot_take(struct fab_ep *e, struct fab_opctx *ctx,
			  bool signal, bool *sig)
{
	unsigned idx = e->sq_head % RD_SQ_DEPTH;

	*sig = signal || ++e->sq_unsig >= SIGNAL_EVERY ||
	       e->sq_head - e->sq_tail >= RD_SQ_DEPTH / 2;
	if (*sig)
		e->sq_unsig = 0;
	e->ring[idx].ctx = ctx;
	e->ring[idx].signal = signal;
	e->sq_head++;
	return ((uint64_t)idx << 2) | RD_WR_SQ;
}

static int post_errno(int r)
{
	return r == ENOMEM ? -EAGAIN : -(r > 0 ? r : EIO);
}

int rtrs__rd_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
		       struct fab_opctx *ctx)
{
	const struct fab_mr *m = desc;
	struct ibv_sge sge = { .addr = (uintptr_t)buf,
			       .length = (uint32_t)len,
			       .lkey = m ? m->mr->lkey : 0 };
	struct ibv_recv_wr wr = { .wr_id = (uintptr_t)ctx, .sg_list = &sge,
				  .num_sge = len ? 1 : 0 }, *bad;
	int r;

	if (!ctx || ((uintptr_t)ctx & 3) || (len && !m))
		return -EINVAL;
	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	ctx->rx_buf = buf;
	ctx->rx_len = len;
	r = ibv_post_recv(e->id->qp, &wr, &bad);
	if (!r)
		atomic_fetch_add(&e->rq_out, 1);
	rtrs__unlock(&e->post_lock);
	return r ? post_errno(r) : 0;
}

/* Post @wr (its wr_id and flags filled here) with a slot of the ring. */
static int post_wr(struct fab_ep *e, struct ibv_send_wr *wr,
		   struct fab_opctx *ctx, bool signal)
{
	struct ibv_send_wr *bad;
	bool sig;
	int r = post_prologue(e, 1);

	if (r)
		return r < 0 ? r : 0;   /* > 0: swallowed */
	wr->wr_id = slot_take(e, ctx, signal, &sig);
	wr->send_flags = sig ? IBV_SEND_SIGNALED : 0;
	r = ibv_post_send(e->id->qp, wr, &bad);
	if (r)
		e->sq_head--;           /* the slot is not used */
	rtrs__unlock(&e->post_lock);
	return r ? post_errno(r) : 0;
}

int rtrs__rd_post_send(struct fab_ep *e, const void *buf, size_t len,
		       void *desc, bool has_imm, uint32_t imm,
		       struct fab_opctx *ctx, bool signal)
{
	const struct fab_mr *m = desc;
	struct ibv_sge sge = { .addr = (uintptr_t)buf,
			       .length = (uint32_t)len,
			       .lkey = m ? m->mr->lkey : 0 };
	/* An immediate alone travels as a zero-length RDMA write with
	 * immediate, as the kernel's RTRS sends its heartbeats and answers
	 * (rtrs_post_rdma_write_imm_empty()): the kernel's peers handle an
	 * immediate only on IB_WC_RECV_RDMA_WITH_IMM, and a kernel client
	 * with always_invalidate takes every plain receive for an rkey
	 * message. A zero-length write touches no memory: no key is
	 * checked. */
	struct ibv_send_wr wr = {
		.sg_list = &sge, .num_sge = len ? 1 : 0,
		.opcode = !has_imm ? IBV_WR_SEND
			  : len ? IBV_WR_SEND_WITH_IMM
				: IBV_WR_RDMA_WRITE_WITH_IMM,
		.imm_data = htonl(imm),
	};

	if (len && !m)
		return -EINVAL;
	return post_wr(e, &wr, ctx, signal);
}

int rtrs__rd_post_send_inv(struct fab_ep *e, uint32_t key,
			   struct fab_opctx *ctx, bool signal)
{
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND_WITH_INV,
				  .invalidate_rkey = key };

	return post_wr(e, &wr, ctx, signal);
}

int rtrs__rd_post_write(struct fab_ep *e, const struct iovec *iov,
			void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			bool signal)
{
	struct ibv_sge sge[RD_MAX_SGE];
	struct ibv_send_wr wr = {
		.sg_list = sge, .num_sge = (int)cnt,
		.opcode = has_imm ? IBV_WR_RDMA_WRITE_WITH_IMM
				  : IBV_WR_RDMA_WRITE,
		.imm_data = htonl(imm),
		.wr.rdma = { .remote_addr = raddr, .rkey = key },
	};

	if (cnt > e->dom->caps.tx_iov_limit || !desc)
		return -EINVAL;
	for (size_t i = 0; i < cnt; i++) {
		const struct fab_mr *m = desc[i];

		if (!m)
			return -EINVAL;
		sge[i].addr = (uintptr_t)iov[i].iov_base;
		sge[i].length = (uint32_t)iov[i].iov_len;
		sge[i].lkey = m->mr->lkey;
	}
	return post_wr(e, &wr, ctx, signal);
}
