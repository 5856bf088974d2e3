// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Posting receives, sends and RMA writes on an endpoint. */
#include "ofi.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

/* ---- posting ---- */

static int post_prologue(struct fab_ep *e)
{
	int f;

	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	f = rtrs__fab_fault_post_ep(e, rtrs__ofi_ep_peer, &e->fault_down);
	if (f) {
		rtrs__unlock(&e->post_lock);
		if (f > 0)
			ofi_wake_loop(e->loop);
		return f;
	}
	f = rtrs__ofi_trl_flush_locked(e);
	if (f)
		rtrs__unlock(&e->post_lock);
	return f;
}

int rtrs__ofi_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
			struct fab_opctx *ctx)
{
	ssize_t r;

	if (e->swr)
		return rtrs__ofi_swr_recv(e, buf, len, ctx);
	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (e->dom->caps.msg_room) {
		ctx->rx_buf = buf;
		len += e->dom->caps.msg_room;
	}
	r = fi_recv(e->ep, buf, len, desc, 0, ctx);
	e->cq_empty = false;    /* wait.c, rtrs__ofi_busy_cq() */
	rtrs__unlock(&e->post_lock);
	/* A message held back for want of a receive goes on only at the
	 * provider's next progress, and no fd will show it: the endpoint's
	 * reader must read once more, even one that checked it quiet (with
	 * software RMA, the provider's receives are swrma.c's, reposted by
	 * the reader itself) */
	if (!r && e->dom->holds_back)
		ofi_want_tx(e);
	return rtrs__ofi_errno((int)r);
}

int rtrs__ofi_post_send(struct fab_ep *e, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm,
			struct fab_opctx *ctx, bool signal)
{
	ssize_t r;
	int ret = post_prologue(e);

	if (ret)
		return ret < 0 ? ret : 0;   /* > 0: swallowed */
	if (e->swr) {
		r = rtrs__ofi_swr_send(e, buf, len, desc, has_imm, imm, ctx,
				       signal);
	} else if (e->dom->caps.msg_room) {
		r = rtrs__ofi_trl_send(e, buf, len, desc, has_imm, imm, false, ctx,
			     signal);
	} else if (!signal && len <= e->dom->caps.inject_size) {
		r = has_imm ? fi_injectdata(e->ep, buf, len, imm, 0)
			    : fi_inject(e->ep, buf, len, 0);
	} else {
		struct iovec iov = { (void *)buf, len };
		struct fi_msg m = {
			.msg_iov = &iov,
			.desc = desc ? &desc : NULL,
			.iov_count = 1,
			.context = ctx,
			.data = imm,
		};
		uint64_t flags = (signal ? FI_COMPLETION : 0) |
				 (has_imm ? FI_REMOTE_CQ_DATA : 0);

		r = fi_sendmsg(e->ep, &m, flags);
	}
	rtrs__unlock(&e->post_lock);
	return rtrs__ofi_errno((int)r);
}

int rtrs__ofi_post_write(struct fab_ep *e, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			 bool signal)
{
	size_t total = 0;
	ssize_t r;
	int ret;

	if (cnt > e->dom->caps.tx_iov_limit)
		return -EINVAL;
	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	ret = post_prologue(e);
	if (ret)
		return ret < 0 ? ret : 0;   /* > 0: swallowed */
	if (e->swr) {
		r = rtrs__ofi_swr_write(e, iov, desc, cnt, raddr, key, has_imm,
					imm, ctx, signal);
	} else if (has_imm && e->dom->caps.msg_room) {
		r = rtrs__ofi_trl_write(e, iov, desc, cnt, raddr, key, total, imm, ctx,
			      signal);
	} else {
		struct fi_rma_iov riov = { .addr = raddr, .len = total,
					   .key = key };
		struct fi_msg_rma m = {
			.msg_iov = iov,
			.desc = desc,
			.iov_count = cnt,
			.rma_iov = &riov,
			.rma_iov_count = 1,
			.context = ctx,
			.data = imm,
		};
		uint64_t flags = (signal ? FI_COMPLETION : 0) |
				 (has_imm ? FI_REMOTE_CQ_DATA : 0);

		r = fi_writemsg(e->ep, &m, flags);
	}
	rtrs__unlock(&e->post_lock);
	return rtrs__ofi_errno((int)r);
}

unsigned rtrs__ofi_ep_takes(struct fab_ep *e, unsigned takes)
{
	unsigned r;

	if (!e->swr)
		return 0;       /* the provider's own messages and RMA */
	rtrs__lock(&e->post_lock);
	r = rtrs__ofi_swr_peer(e, takes);
	rtrs__unlock(&e->post_lock);
	return r;
}

int rtrs__ofi_post_write_send(struct fab_ep *e, const struct iovec *iov,
			      void **desc, size_t cnt, uint64_t raddr,
			      uint32_t key, const void *buf, size_t len,
			      void *bdesc, uint32_t imm, struct fab_opctx *ctx,
			      bool signal)
{
	ssize_t r;
	int ret;

	if (!e->swr)
		return -EOPNOTSUPP;
	if (cnt > e->dom->caps.tx_iov_limit)
		return -EINVAL;
	ret = post_prologue(e);
	if (ret)
		return ret < 0 ? ret : 0;   /* > 0: swallowed */
	r = rtrs__ofi_swr_write_send(e, iov, desc, cnt, raddr, key, buf, len,
				     bdesc, imm, ctx, signal);
	rtrs__unlock(&e->post_lock);
	return rtrs__ofi_errno((int)r);
}
