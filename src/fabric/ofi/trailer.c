// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Immediate data where the provider carries none (iWARP). */
#include "ofi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * iWARP carries no immediate data (libfabric's verbs provider reports
 * cq_data_size 0 there). On such a provider every message ends in an
 * 8-byte trailer, le32 imm | le16 flags | le16 magic, which the receiver
 * strips (the buffers have caps.msg_room for it); a write with immediate
 * is the write followed by a trailer-only message, which RC delivers only
 * after the write's data is placed. So the core sees the same completions
 * on every provider.
 *
 * A trailer goes out copied (injected) where the provider's inject size
 * takes it, else in the caller's msg_room, else (a trailer-only message)
 * from one of the endpoint's registered slots, freed by the send's own
 * completion (siw injects 2 bytes at most).
 */
#define TRL_MAGIC 0x5254u
#define TRL_IMM 0x1u    /* the immediate is valid */
#define TRL_RMA 0x2u    /* the notification of a remote write */
#define TRL_INJECT_MAX 512

struct fab_trl_slot {
	struct fab_opctx ctx;           /* what the completion names */
	struct fab_opctx *user;         /* the caller's, if it signalled */
	uint8_t trl[FAB_MSG_ROOM];
};

static void trl_encode(uint8_t *t, bool has_imm, uint32_t imm, bool rma)
{
	unsigned f = (has_imm ? TRL_IMM : 0) | (rma ? TRL_RMA : 0);

	if (!has_imm)
		imm = 0;
	for (int i = 0; i < 4; i++)
		t[i] = (uint8_t)(imm >> (8 * i));
	t[4] = (uint8_t)f;
	t[5] = (uint8_t)(f >> 8);
	t[6] = (uint8_t)TRL_MAGIC;
	t[7] = (uint8_t)(TRL_MAGIC >> 8);
}

void rtrs__ofi_trl_rx(struct fab_cqe *c)
{
	const uint8_t *t;
	unsigned f;

	if (c->len < FAB_MSG_ROOM || !c->ctx || !c->ctx->rx_buf) {
		c->err = -EPROTO;
		return;
	}
	t = (const uint8_t *)c->ctx->rx_buf + c->len - FAB_MSG_ROOM;
	f = t[4] | (unsigned)t[5] << 8;
	if ((t[6] | (unsigned)t[7] << 8) != TRL_MAGIC ||
	    (f & ~(TRL_IMM | TRL_RMA))) {
		c->err = -EPROTO;
		return;
	}
	c->len -= FAB_MSG_ROOM;
	if (f & TRL_IMM) {
		c->flags |= FAB_CQE_IMM;
		c->imm = (uint32_t)t[0] | (uint32_t)t[1] << 8 |
			 (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
	}
	if (f & TRL_RMA)
		c->flags |= FAB_CQE_RMA_IN;
}

/* The endpoint's trailer slots, where trailer-only messages cannot be
 * injected: one per send queue entry. */
int rtrs__ofi_trl_slots_init(struct fab_ep *e)
{
	const struct fab_caps *c = &e->dom->caps;
	unsigned n = (unsigned)MIN(c->tx_size, (size_t)4096);
	int ret;

	if (!c->msg_room || c->inject_size >= FAB_MSG_ROOM)
		return 0;
	e->slots = calloc(n, sizeof(*e->slots));
	e->slot_free = calloc(n, sizeof(*e->slot_free));
	if (!e->slots || !e->slot_free)
		return -ENOMEM;
	ret = rtrs__ofi_mr_reg(e->dom, e->slots, n * sizeof(*e->slots),
			       FAB_ACC_LOCAL, &e->slots_mr);
	if (ret)
		return ret;
	for (unsigned i = 0; i < n; i++)
		e->slot_free[i] = i;
	e->nslots = e->nfree = n;
	return 0;
}

void rtrs__ofi_trl_slots_free(struct fab_ep *e)
{
	rtrs__ofi_mr_close(e->slots_mr);
	free(e->slots);
	free(e->slot_free);
}

/* If @c completes a trailer slot of @e: free it, and make @c the caller's
 * completion (true), or swallow it (false). Other completions: true. */
bool rtrs__ofi_trl_cqe(struct fab_ep *e, struct fab_cqe *c)
{
	uintptr_t p = (uintptr_t)c->ctx, lo = (uintptr_t)e->slots;
	struct fab_trl_slot *sl;

	if (!e->nslots || p < lo ||
	    p >= lo + (uintptr_t)e->nslots * sizeof(*sl))
		return true;
	sl = &e->slots[(p - lo) / sizeof(*sl)];
	c->ctx = sl->user;
	rtrs__lock(&e->post_lock);
	e->slot_free[e->nfree++] = (uint32_t)(sl - e->slots);
	rtrs__unlock(&e->post_lock);
	/* an error still tells the owner its endpoint failed */
	return c->ctx || c->err;
}

/* A message and its trailer @t; with post_lock held. */
static ssize_t trl_post(struct fab_ep *e, const void *buf, size_t len,
			void *desc, const uint8_t *t, struct fab_opctx *ctx,
			bool signal)
{
	size_t total = len + FAB_MSG_ROOM;
	struct iovec iov;
	struct fi_msg m = { .msg_iov = &iov, .iov_count = 1, .context = ctx };
	struct fab_trl_slot *sl;
	ssize_t r;

	RTRS_ASSERT_HELD(&e->post_lock);
	if (total <= e->dom->caps.inject_size && total <= TRL_INJECT_MAX) {
		uint8_t tmp[TRL_INJECT_MAX];

		if (len)
			memcpy(tmp, buf, len);
		memcpy(tmp + len, t, FAB_MSG_ROOM);
		if (!signal)
			return fi_inject(e->ep, tmp, total, 0);
		iov = (struct iovec){ tmp, total };
		return fi_sendmsg(e->ep, &m, FI_INJECT | FI_COMPLETION);
	}
	if (len) {
		memcpy((uint8_t *)buf + len, t, FAB_MSG_ROOM);
		iov = (struct iovec){ (void *)buf, total };
		m.desc = desc ? &desc : NULL;
		return fi_sendmsg(e->ep, &m, signal ? FI_COMPLETION : 0);
	}
	if (!e->nfree)
		return -FI_EAGAIN;
	sl = &e->slots[e->slot_free[--e->nfree]];
	memcpy(sl->trl, t, FAB_MSG_ROOM);
	sl->user = signal ? ctx : NULL;
	iov = (struct iovec){ sl->trl, FAB_MSG_ROOM };
	desc = rtrs__ofi_mr_desc(e->slots_mr);
	m.desc = &desc;
	m.context = &sl->ctx;
	r = fi_sendmsg(e->ep, &m, FI_COMPLETION);
	if (r)
		e->nfree++;     /* the slot we took is on top again */
	return r;
}

ssize_t rtrs__ofi_trl_send(struct fab_ep *e, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm, bool rma,
			struct fab_opctx *ctx, bool signal)
{
	uint8_t t[FAB_MSG_ROOM];

	trl_encode(t, has_imm, imm, rma);
	return trl_post(e, buf, len, desc, t, ctx, signal);
}

/* With post_lock held. */
int rtrs__ofi_trl_flush_locked(struct fab_ep *e)
{
	ssize_t r;

	RTRS_ASSERT_HELD(&e->post_lock);
	if (!e->trl_pending)
		return 0;
	r = trl_post(e, NULL, 0, NULL, e->trl, e->trl_ctx, e->trl_ctx != NULL);
	if (!r)
		e->trl_pending = false;
	return rtrs__ofi_errno((int)r);
}

int rtrs__ofi_trl_flush(struct fab_ep *e)
{
	int ret = 0;

	rtrs__lock(&e->post_lock);
	if (!e->dead)
		ret = rtrs__ofi_trl_flush_locked(e);
	rtrs__unlock(&e->post_lock);
	return ret;
}

/* A write with immediate where the provider has none: the write, then
 * its notification; with post_lock held. The write completes to no one:
 * @ctx (with @signal) goes with the notification, which the send queue
 * completes after the write. If the write is out but the notification
 * finds the queue full, the notification is kept and sent before
 * anything else: the caller must not post the write again (another path
 * could then see a stale copy land in the chunk after its own). */
ssize_t rtrs__ofi_trl_write(struct fab_ep *e, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 size_t total, uint32_t imm, struct fab_opctx *ctx,
			 bool signal)
{
	struct fi_rma_iov riov = { .addr = raddr, .len = total, .key = key };
	struct fi_msg_rma m = {
		.msg_iov = iov,
		.desc = desc,
		.iov_count = cnt,
		.rma_iov = &riov,
		.rma_iov_count = 1,
		.context = ctx,
	};
	ssize_t r;

	RTRS_ASSERT_HELD(&e->post_lock);
	r = fi_writemsg(e->ep, &m, 0);
	if (r)
		return r;
	r = rtrs__ofi_trl_send(e, NULL, 0, NULL, true, imm, true, ctx, signal);
	if (r != -FI_EAGAIN)
		return r;
	trl_encode(e->trl, true, imm, true);
	e->trl_ctx = signal ? ctx : NULL;
	e->trl_pending = true;
	ofi_want_tx(e);
	return 0;
}
