// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The rdma-core backend's table of operations (fabric.h), for the
 * provider name "rdma": the only reference to the backend from outside
 * src/fabric/rdma/ (fabric.c). And what it does not do yet: pollers.
 *
 * Application-driven progress (RTRS_POLL) is not in this slice. Where it
 * will live: here, in a poller.c of this backend, with the same model as
 * the libfabric one (the poller's callers read the CQs of its endpoints,
 * the loop keeps their CM events and their close), once fabric.c's
 * rtrs__fab_poller_create() gives a session a poller of its paths'
 * backend. Today it makes the default backend's, which
 * rtrs__fab_ep_create() refuses for an rdma domain (-EINVAL): a session
 * with RTRS_POLL cannot open an rdma path. The poller ops below return
 * -EOPNOTSUPP or do nothing; no endpoint of this backend ever has a
 * poller. */
#include "rdma.h"

static int poller_create(struct fab_poller **out)
{
	(void)out;
	return -EOPNOTSUPP;
}

/* Unreachable: poller_create() never makes one. */
static void poller_destroy(struct fab_poller *pl)
{
	(void)pl;
}

static int poller_progress(struct fab_poller *pl)
{
	(void)pl;
	return -EOPNOTSUPP;
}

static void poller_wait(struct fab_poller *pl, int timeout_ms)
{
	(void)pl;
	(void)timeout_ms;
}

static void poller_wake(struct fab_poller *pl)
{
	(void)pl;
}

const struct rtrs__fab_ops rtrs__rd_ops = {
	.name = "rdma",
	.prov = "rdma",
	.engine_get = rtrs__rd_engine_get,
	.engine_put = rtrs__rd_engine_put,
	.nloops = rtrs__rd_nloops,
	.dom_open = rtrs__rd_dom_open,
	.dom_for_connreq = rtrs__rd_dom_for_connreq,
	.dom_get = rtrs__rd_dom_get,
	.dom_put = rtrs__rd_dom_put,
	.dom_caps = rtrs__rd_dom_caps,
	.mr_reg = rtrs__rd_mr_reg,
	.mr_reg_peer = rtrs__rd_mr_reg_peer,
	.mr_close = rtrs__rd_mr_close,
	.mr_key = rtrs__rd_mr_key,
	.mr_desc = rtrs__rd_mr_desc,
	.mr_raddr = rtrs__rd_mr_raddr,
	.ep_create = rtrs__rd_ep_create,
	.ep_accept_create = rtrs__rd_ep_accept_create,
	.ep_connect = rtrs__rd_ep_connect,
	.ep_accept = rtrs__rd_ep_accept,
	.reject = rtrs__rd_reject,
	.ep_close = rtrs__rd_ep_close,
	.ep_set_scope = rtrs__rd_ep_set_scope,
	.ep_want_tx = rtrs__rd_ep_want_tx,
	.ep_caps = rtrs__rd_ep_caps,
	.ep_peer = rtrs__rd_ep_peer,
	.ep_name = rtrs__rd_ep_name,
	.post_recv = rtrs__rd_post_recv,
	.post_send = rtrs__rd_post_send,
	.post_write = rtrs__rd_post_write,
	.post_send_inv = rtrs__rd_post_send_inv,
	.poller_create = poller_create,
	.poller_destroy = poller_destroy,
	.poller_progress = poller_progress,
	.poller_wait = poller_wait,
	.poller_wake = poller_wake,
	.pep_open = rtrs__rd_pep_open,
	.pep_close = rtrs__rd_pep_close,
	.pep_name = rtrs__rd_pep_name,
	.pep_shed = rtrs__rd_pep_shed,
};
