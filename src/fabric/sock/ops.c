// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's table of operations (fabric.h), for the
 * provider name "sock": the only reference to the backend from outside
 * src/fabric/sock/ (fabric.c). */
#include "sock.h"

static const struct sk_hooks hooks = {
	.ep_ready = rtrs__sk_ep_ready,
	.pep_ready = rtrs__sk_pep_ready,
	.pending_ready = rtrs__sk_pending_ready,
	.ep_sweep = rtrs__sk_ep_sweep,
	.pep_sweep = rtrs__sk_pep_sweep,
	.drain = rtrs__sk_drain,
	.ep_loop_kicked = rtrs__sk_ep_loop_kicked,
	.ep_finish = rtrs__sk_ep_finish,
	.pep_finish = rtrs__sk_pep_finish,
};

/* The loops start with the first domain. */
static int dom_open(const char *prov, const char *node, const char *service,
		    const char *src_node, bool passive, struct fab_dom **out)
{
	int ret = rtrs__sk_engine_start(&hooks);

	return ret ? ret : rtrs__sk_dom_open(prov, node, service, src_node,
					     passive, out);
}

const struct rtrs__fab_ops rtrs__sk_ops = {
	.name = "sock",
	.prov = "sock",
	.engine_get = rtrs__sk_engine_get,
	.engine_put = rtrs__sk_engine_put,
	.nloops = rtrs__sk_nloops,
	.dom_open = dom_open,
	.dom_for_connreq = rtrs__sk_dom_for_connreq,
	.dom_get = rtrs__sk_dom_get,
	.dom_put = rtrs__sk_dom_put,
	.dom_caps = rtrs__sk_dom_caps,
	.mr_reg = rtrs__sk_mr_reg,
	.mr_reg_peer = rtrs__sk_mr_reg_peer,
	.mr_close = rtrs__sk_mr_close,
	.mr_key = rtrs__sk_mr_key,
	.mr_desc = rtrs__sk_mr_desc,
	.mr_raddr = rtrs__sk_mr_raddr,
	.ep_create = rtrs__sk_ep_create,
	.ep_accept_create = rtrs__sk_ep_accept_create,
	.ep_connect = rtrs__sk_ep_connect,
	.ep_accept = rtrs__sk_ep_accept,
	.reject = rtrs__sk_reject,
	.ep_close = rtrs__sk_ep_close,
	.ep_set_scope = rtrs__sk_ep_set_scope,
	.ep_want_tx = rtrs__sk_ep_want_tx,
	.ep_caps = rtrs__sk_ep_caps,
	.ep_peer = rtrs__sk_ep_peer,
	.ep_name = rtrs__sk_ep_name,
	.post_recv = rtrs__sk_post_recv,
	.post_send = rtrs__sk_post_send,
	.post_write = rtrs__sk_post_write,
	.ep_takes = rtrs__sk_ep_takes,
	.post_write_send = rtrs__sk_post_write_send,
	.poller_create = rtrs__sk_poller_create,
	.poller_destroy = rtrs__sk_poller_destroy,
	.poller_progress = rtrs__sk_poller_progress,
	.poller_wait = rtrs__sk_poller_wait,
	.poller_wake = rtrs__sk_poller_wake,
	.pep_open = rtrs__sk_pep_open,
	.pep_close = rtrs__sk_pep_close,
	.pep_name = rtrs__sk_pep_name,
	.pep_shed = rtrs__sk_pep_shed,
};
