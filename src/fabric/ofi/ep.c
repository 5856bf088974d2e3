// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Endpoints: creating, connecting, accepting and closing them, and
 * their addresses. */
#include "ofi.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* ---- endpoints ---- */

static int open_ep_queues(struct fab_ep *e)
{
	struct fi_cq_attr ca = {
		.format = FI_CQ_FORMAT_DATA,
		.wait_obj = FI_WAIT_FD,
	};
	struct fi_eq_attr ea = { .size = 64, .wait_obj = FI_WAIT_FD };
	int ret;

	ca.size = e->dom->caps.tx_size + e->dom->caps.rx_size + 64;
	ret = rtrs__ofi_cq_open(e->dom, &ca, &e->cq, &e->cq_ws, &e->cq_fd);
	if (ret)
		return ret;
	return rtrs__ofi_eq_open(e->dom, &ea, &e->eq, &e->eq_ws, &e->eq_fd);
}

static int bind_ep(struct fab_ep *e)
{
	int ret;

	ret = fi_ep_bind(e->ep, &e->eq->fid, 0);
	if (!ret)
		ret = fi_ep_bind(e->ep, &e->cq->fid,
				 FI_TRANSMIT | FI_SELECTIVE_COMPLETION);
	if (!ret)
		ret = fi_ep_bind(e->ep, &e->cq->fid, FI_RECV);
	if (!ret)
		ret = fi_enable(e->ep);
	return rtrs__ofi_errno(ret);
}

static struct fab_ep *ep_alloc(struct fab_dom *d, unsigned loop,
			       const struct fab_ep_ops *ops, void *ctx)
{
	struct fab_ep *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	rtrs_list_init(&e->node);
	rtrs_list_init(&e->att_node);
	rtrs_list_init(&e->cls_node);
	rtrs_list_init(&e->pnode);
	e->loop = rtrs__ofi_loop_of(d, loop);
	e->obj = d->obj;
	e->dom = d;
	e->ops = ops;
	e->ctx = ctx;
	e->cq_fd = e->eq_fd = -1;
	rtrs__lock_init(&e->post_lock, RTRS_RANK_OFI_POST, "fab_ep.post_lock");
	rtrs__ofi_dom_get(d);
	return e;
}

int rtrs__ofi_ep_create(struct fab_dom *d, unsigned loop,
			struct fab_poller *poller,
			const struct fab_ep_ops *ops, void *ctx,
			struct fab_ep **out)
{
	struct fab_ep *e = ep_alloc(d, loop, ops, ctx);
	int ret;

	if (!e)
		return -ENOMEM;
	ret = open_ep_queues(e);
	if (!ret)
		ret = rtrs__ofi_trl_slots_init(e);
	if (!ret)
		ret = rtrs__ofi_swr_ep_init(e);
	if (!ret)
		ret = rtrs__ofi_errno(fi_endpoint(d->domain, d->info, &e->ep,
						  NULL));
	if (!ret)
		ret = bind_ep(e);
	if (!ret)
		ret = rtrs__ofi_swr_post_rx(e);
	if (ret) {
		rtrs__ofi_ep_destroy(e);
		return ret;
	}
	/* published before the loop sees it: callbacks may use it at once */
	*out = e;
	if (poller) {
		e->poller = poller;
		rtrs__ofi_poller_add(e);
	}
	rtrs__ofi_loop_attach_ep(e);
	return 0;
}

/*
 * The CM private data @fid's provider carries (verbs: 55 bytes, after its
 * own 1-byte header; tcp and net: 256). Longer data loses its tail if the
 * tail is all zero (the reserved bytes of our layouts), else -EMSGSIZE.
 */
int rtrs__ofi_cm_data_fit(struct fid *fid, const void *data, size_t *len)
{
	size_t max = 0, ol = sizeof(max);

	if (!data || !*len)
		return 0;
	if (fi_getopt(fid, FI_OPT_ENDPOINT, FI_OPT_CM_DATA_SIZE, &max, &ol) ||
	    *len <= max)
		return 0;       /* no limit known: let the provider judge */
	for (size_t i = max; i < *len; i++)
		if (((const uint8_t *)data)[i])
			return -EMSGSIZE;
	*len = max;
	return 0;
}

int rtrs__ofi_ep_connect(struct fab_ep *e, const void *data, size_t len)
{
	int ret = rtrs__ofi_cm_data_fit(&e->ep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__ofi_errno(fi_connect(e->ep, e->dom->info->dest_addr,
					  data, len));
}

int rtrs__ofi_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			       unsigned loop, const struct fab_ep_ops *ops,
			       void *ctx, struct fab_ep **out)
{
	struct fab_ep *e = ep_alloc(d, loop, ops, ctx);
	int ret;

	if (!e)
		return -ENOMEM;
	ret = open_ep_queues(e);
	if (!ret)
		ret = rtrs__ofi_trl_slots_init(e);
	if (!ret)
		ret = rtrs__ofi_swr_ep_init(e);
	if (!ret)
		ret = rtrs__ofi_errno(fi_endpoint(d->domain, req->info,
						  &e->ep, NULL));
	if (!ret)
		ret = bind_ep(e);
	if (!ret)
		ret = rtrs__ofi_swr_post_rx(e);
	if (ret) {
		rtrs__ofi_ep_destroy(e);
		return ret;
	}
	/* published before the loop sees it: callbacks may use it at once */
	*out = e;
	rtrs__ofi_loop_attach_ep(e);
	return 0;
}

int rtrs__ofi_ep_accept(struct fab_ep *e, const void *data, size_t len)
{
	int ret = rtrs__ofi_cm_data_fit(&e->ep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__ofi_errno(fi_accept(e->ep, data, len));
}

void rtrs__ofi_ep_close(struct fab_ep *e)
{
	bool was = false;

	if (!e || !atomic_compare_exchange_strong(&e->closing, &was, true))
		return;
	rtrs__lock(&e->post_lock);
	e->dead = true;
	rtrs__unlock(&e->post_lock);
	rtrs__ofi_loop_close_ep(e);
}

void rtrs__ofi_ep_set_scope(struct fab_ep *e, const void *scope)
{
	e->scope = scope;
}

void rtrs__ofi_ep_want_tx(struct fab_ep *e)
{
	ofi_want_tx(e);
}

const struct fab_caps *rtrs__ofi_ep_caps(const struct fab_ep *e)
{
	return &e->dom->caps;
}

static int addr_str(const void *a, char *buf, size_t len)
{
	const struct sockaddr *sa = a;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = a;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		return snprintf(buf, len, "%s:%u", host, port) >= (int)len
			       ? -ENOSPC : 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = a;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		return snprintf(buf, len, "[%s]:%u", host, port) >= (int)len
			       ? -ENOSPC : 0;
	}
	return snprintf(buf, len, "?") >= (int)len ? -ENOSPC : 0;
}

int rtrs__ofi_ep_peer(const struct fab_ep *e, char *buf, size_t len)
{
	char a[128];
	size_t al = sizeof(a);
	int ret = fi_getpeer(e->ep, a, &al);

	if (ret)
		return rtrs__ofi_errno(ret);
	return addr_str(a, buf, len);
}

/* The local address of @fid as "host:port". */
int rtrs__ofi_fid_name(struct fid *fid, char *buf, size_t len)
{
	char a[128];
	size_t al = sizeof(a);
	int ret = fi_getname(fid, a, &al);

	if (ret)
		return rtrs__ofi_errno(ret);
	return addr_str(a, buf, len);
}

int rtrs__ofi_ep_name(const struct fab_ep *e, char *buf, size_t len)
{
	return rtrs__ofi_fid_name(&e->ep->fid, buf, len);
}
