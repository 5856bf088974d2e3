/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * For the tests on the fabric API itself (fab.fair, fab.quiet): one end
 * of a connection over loopback, its registration and receives, the
 * connection callbacks both sides use, and the server's accept. Each test
 * includes it once, after harness.h.
 */
#ifndef RTRS_TEST_FAB_ENDS_H
#define RTRS_TEST_FAB_ENDS_H

#include <stdatomic.h>

#include "fabric/fabric.h"

#define FAB_T_NRX 16            /* receives an end can keep posted */
#define FAB_T_MSG 64            /* every message's size */

struct fab_t_end {
	struct fab_ep *ep;
	struct fab_dom *dom;            /* server ends: their path's domain */
	struct fab_mr *mr;
	void *desc;
	_Atomic int connected;          /* 1 up, -1 failed */
	_Atomic bool closed;
	_Atomic unsigned down;          /* SHUTDOWN or ERROR after CONNECTED */
	_Atomic unsigned rx, tx;        /* completions, if a test counts them */
	struct fab_opctx txc, rxc[FAB_T_NRX];
	char tx_buf[FAB_T_MSG + FAB_MSG_ROOM];
	char rx_buf[FAB_T_NRX][FAB_T_MSG + FAB_MSG_ROOM];
};

/* One registration over @len bytes at @mem holding @e's buffers (a
 * test's own end that begins with @e), where the provider wants local
 * registrations. */
static inline int fab_t_reg_over(struct fab_t_end *e, struct fab_dom *d,
				 void *mem, size_t len)
{
	if (!rtrs__fab_dom_caps(d)->mr_local)
		return 0;
	if (rtrs__fab_mr_reg(d, mem, len, FAB_ACC_LOCAL, &e->mr))
		return -1;
	e->desc = rtrs__fab_mr_desc(e->mr);
	return 0;
}

/* One registration over the whole end: its buffers live in it. */
static inline int fab_t_reg(struct fab_t_end *e, struct fab_dom *d)
{
	return fab_t_reg_over(e, d, e, sizeof(*e));
}

static inline int fab_t_post_rx(struct fab_t_end *e, unsigned i)
{
	return rtrs__fab_post_recv(e->ep, e->rx_buf[i], FAB_T_MSG, e->desc,
				   &e->rxc[i]);
}

/* The index of a receive completion's buffer. */
static inline unsigned fab_t_rx_index(const struct fab_t_end *e,
			       const struct fab_cqe *c)
{
	return (unsigned)(c->ctx - e->rxc);
}

static inline int fab_t_send(struct fab_t_end *e, bool signaled)
{
	return rtrs__fab_post_send(e->ep, e->tx_buf, FAB_T_MSG, e->desc, false,
				   0, &e->txc, signaled);
}

static inline void fab_t_cm(void *ctx, enum fab_cm_ev ev, int err,
			    const void *data, size_t len)
{
	struct fab_t_end *e = ctx;

	(void)err; (void)data; (void)len;
	if (ev == FAB_CM_CONNECTED)
		atomic_store(&e->connected, 1);
	else if (atomic_load(&e->connected) == 0)
		atomic_store(&e->connected, -1);
	else
		atomic_fetch_add(&e->down, 1);
}

static inline void fab_t_tx_ready(void *ctx)
{
	(void)ctx;
}

static inline void fab_t_closed(void *ctx)
{
	atomic_store(&((struct fab_t_end *)ctx)->closed, true);
}

/* The server ends' loop: another than the clients' loop 0 if there is. */
static inline unsigned fab_t_srv_loop(void)
{
	return rtrs__fab_nloops() > 1 ? 1 : 0;
}

/* The listener's connreq: accept @req into the next of @n server ends
 * (@count of them taken, written only by the listener's loop), on the
 * server ends' loop with @nrx receives posted; reject it when all are
 * taken or on failure. */
static inline void fab_t_accept_next(struct fab_pep *lpep,
				     struct fab_connreq *req,
				     struct fab_t_end *ends, unsigned n,
				     _Atomic unsigned *count,
				     const struct fab_ep_ops *ops, unsigned nrx)
{
	unsigned i = atomic_load(count);
	struct fab_t_end *e = &ends[i < n ? i : 0];

	if (i >= n || rtrs__fab_dom_for_connreq(lpep, req, &e->dom) ||
	    fab_t_reg(e, e->dom) ||
	    rtrs__fab_ep_accept_create(e->dom, req, fab_t_srv_loop(), ops, e,
				       &e->ep)) {
		rtrs__fab_reject(lpep, req, NULL, 0);
		return;
	}
	for (unsigned k = 0; k < nrx; k++)
		fab_t_post_rx(e, k);
	rtrs__fab_ep_accept(e->ep, NULL, 0);
	atomic_store(count, i + 1);
}

/* A listener on 127.0.0.1 (its loop: the server ends'), and a client
 * domain towards it. 0, or -1 said on stderr. */
static inline int fab_t_listen(const struct fab_pep_ops *p_ops,
			       struct fab_dom **ldom, struct fab_pep **lpep,
			       struct fab_dom **cdom)
{
	char name[64], *port;

	if (rtrs__fab_dom_open(NULL, "127.0.0.1", "0", NULL, true, ldom) ||
	    rtrs__fab_pep_open(*ldom, fab_t_srv_loop(), p_ops, NULL, lpep) ||
	    rtrs__fab_pep_name(*lpep, name, sizeof(name)) ||
	    !(port = strrchr(name, ':'))) {
		fprintf(stderr, "no listener\n");
		return -1;
	}
	if (rtrs__fab_dom_open(NULL, "127.0.0.1", port + 1, NULL, false,
			       cdom)) {
		fprintf(stderr, "client domain\n");
		return -1;
	}
	return 0;
}

/* @cond within 20 s (a bound against a hang, not a measure). */
static inline bool fab_t_wait_for(bool (*cond)(void))
{
	for (unsigned i = 0; i < 20000 && !cond(); i++)
		t_sleep_ms(1);
	return cond();
}

#endif
