// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The rdma-core backend's endpoints (an RDMA CM id, its RC queue pair and
 * its one completion queue) and listeners: creating them, the handshake
 * (connect, accept, reject, with the private data of fabric.h), names,
 * and asking the loop to close them. */
#include "rdma.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

static int ep_new(struct fab_dom *d, const struct fab_ep_ops *ops, void *ctx,
		  struct fab_ep **out)
{
	struct fab_ep *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->obj = d->obj;
	e->kind = RD_EP;
	e->dom = d;
	e->ops = ops;
	e->ctx = ctx;
	rtrs_list_init(&e->node);
	rtrs_list_init(&e->cls_node);
	rtrs_list_init(&e->pnode);
	rtrs__lock_init(&e->post_lock, RTRS_RANK_RD_POST, "rd_ep.post_lock");
	rtrs__rd_dom_get(d);
	*out = e;
	return 0;
}

/* The completion channel, the CQ (armed) and the queue pair of @e on @id. */
static int qp_setup(struct fab_ep *e, struct rdma_cm_id *id)
{
	struct fab_dom *d = e->dom;
	struct ibv_qp_init_attr a = {
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = RD_SQ_DEPTH + 1,  /* + the marker */
			 .max_recv_wr = RD_RQ_DEPTH,
			 .max_send_sge = (uint32_t)d->caps.tx_iov_limit,
			 .max_recv_sge = 1 },
	};
	int fl;

	if (!d->pd || id->verbs != d->verbs)
		return -ENODATA;        /* another device than the domain's */
	e->cch = ibv_create_comp_channel(id->verbs);
	if (!e->cch)
		return -errno;
	fl = fcntl(e->cch->fd, F_GETFL);
	if (fl < 0 || fcntl(e->cch->fd, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	e->cq = ibv_create_cq(id->verbs, RD_SQ_DEPTH + RD_RQ_DEPTH + 1, e,
			      e->cch, 0);
	if (!e->cq)
		return -errno;
	if (ibv_req_notify_cq(e->cq, 0))
		return -EIO;
	a.send_cq = a.recv_cq = e->cq;
	if (rdma_create_qp(id, d->pd, &a))
		return -errno;
	return 0;
}

/* Address and route of a new id on a private channel (blocks: at most
 * twice RD_RESOLVE_MS). */
static int resolve_route(struct fab_dom *d, struct rdma_cm_id *id)
{
	int ret;

	if (rdma_resolve_addr(id, d->has_src ? (struct sockaddr *)&d->src
					     : NULL,
			      (struct sockaddr *)&d->dst, RD_RESOLVE_MS))
		return -errno;
	ret = rtrs__rd_wait_event(id->channel, RD_RESOLVE_MS + 1000);
	if (ret != RDMA_CM_EVENT_ADDR_RESOLVED)
		return ret < 0 ? ret : -EHOSTUNREACH;
	if (rdma_resolve_route(id, RD_RESOLVE_MS))
		return -errno;
	ret = rtrs__rd_wait_event(id->channel, RD_RESOLVE_MS + 1000);
	if (ret != RDMA_CM_EVENT_ROUTE_RESOLVED)
		return ret < 0 ? ret : -EHOSTUNREACH;
	return 0;
}

/* Active side. The loop number is ignored (one loop); with @poller its
 * callers read the CQ (poller.c). Blocks for the resolution of the
 * route. */
int rtrs__rd_ep_create(struct fab_dom *d, unsigned loop,
		       struct fab_poller *poller, const struct fab_ep_ops *ops,
		       void *ctx, struct fab_ep **out)
{
	struct rdma_event_channel *ch;
	struct fab_ep *e;
	int ret;

	(void)loop;
	ret = rtrs__rd_engine_start();
	if (!ret)
		ret = rtrs__rd_channel_new(&ch);
	if (ret)
		return ret;
	ret = ep_new(d, ops, ctx, &e);
	if (ret)
		goto out_ch;
	if (rdma_create_id(ch, &e->id, e, RDMA_PS_TCP)) {
		ret = -errno;
		e->id = NULL;
		goto out_ep;
	}
	ret = resolve_route(d, e->id);
	if (!ret)
		ret = qp_setup(e, e->id);
	if (!ret && rdma_migrate_id(e->id, rtrs__rd_channel()))
		ret = -errno;
	if (ret)
		goto out_ep;
	rdma_destroy_event_channel(ch);
	*out = e;
	if (poller) {
		e->poller = poller;
		rtrs__rd_poller_add(e);
	}
	rtrs__rd_attach(e);
	return 0;
out_ep:
	rtrs__rd_ep_destroy(e);
out_ch:
	rdma_destroy_event_channel(ch);
	return ret;
}

int rtrs__rd_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			      unsigned loop, const struct fab_ep_ops *ops,
			      void *ctx, struct fab_ep **out)
{
	struct fab_ep *e;
	int ret;

	(void)loop;
	if (req->taken)
		return -EINVAL;
	ret = ep_new(d, ops, ctx, &e);
	if (ret)
		return ret;
	ret = qp_setup(e, req->id);
	if (ret) {
		if (req->id->qp)
			rdma_destroy_qp(req->id);
		rtrs__rd_ep_destroy(e);         /* e->id is still NULL */
		return ret;
	}
	e->id = req->id;
	e->id->context = e;
	req->taken = true;
	*out = e;
	rtrs__rd_attach(e);
	return 0;
}

/* The private data @data, @len to send in at most @max bytes: the zero
 * tail cut (fabric.h). */
static int priv_len(const void *data, size_t len, size_t max)
{
	const uint8_t *p = data;

	for (size_t i = max; i < len; i++)
		if (p[i])
			return -EMSGSIZE;
	return (int)(len < max ? len : max);
}

/* rdma_connect() (@accept false) or rdma_accept() with @data */
static int ep_conn(struct fab_ep *e, const void *data, size_t len,
		   bool accept)
{
	int n = priv_len(data, len, accept ? RD_ACC_PRIV : RD_CONN_PRIV);
	struct rdma_conn_param p = { .private_data = data,
				     .retry_count = 7, .rnr_retry_count = 7 };

	if (n < 0)
		return n;
	p.private_data_len = (uint8_t)n;
	if (atomic_load(&e->closing))
		return -ENOTCONN;
	if (accept)
		return rdma_accept(e->id, &p) ? -errno : 0;
	return rdma_connect(e->id, &p) ? -errno : 0;
}

int rtrs__rd_ep_connect(struct fab_ep *e, const void *data, size_t len)
{
	return ep_conn(e, data, len, false);
}

int rtrs__rd_ep_accept(struct fab_ep *e, const void *data, size_t len)
{
	return ep_conn(e, data, len, true);
}

int rtrs__rd_reject(struct fab_pep *pep, struct fab_connreq *req,
		    const void *data, size_t len)
{
	int n = priv_len(data, len, RD_REJ_PRIV);

	(void)pep;
	if (n < 0)
		return n;
	if (req->taken)
		return -EINVAL;
	req->rejected = true;
	return rdma_reject(req->id, data, (uint8_t)n) ? -errno : 0;
}

void rtrs__rd_ep_close(struct fab_ep *e)
{
	if (atomic_exchange(&e->closing, true))
		return;
	rtrs__rd_close(e);
}

void rtrs__rd_ep_set_scope(struct fab_ep *e, const void *scope)
{
	e->scope = scope;
}

void rtrs__rd_ep_want_tx(struct fab_ep *e)
{
	atomic_store(&e->want_tx, true);
	if (e->poller)
		rtrs__rd_poller_wake(e->poller);
	else
		rtrs__rd_wake();
}

const struct fab_caps *rtrs__rd_ep_caps(const struct fab_ep *e)
{
	return &e->dom->caps;
}

int rtrs__rd_ep_peer(const struct fab_ep *e, char *buf, size_t len)
{
	return rtrs__fab_addr_str(e->id ? rdma_get_peer_addr(e->id) : NULL,
				 buf, len);
}

int rtrs__rd_ep_name(const struct fab_ep *e, char *buf, size_t len)
{
	return rtrs__fab_addr_str(e->id ? rdma_get_local_addr(e->id) : NULL,
				 buf, len);
}

/* ---- listeners ---- */

int rtrs__rd_pep_open(struct fab_dom *d, unsigned loop,
		      const struct fab_pep_ops *ops, void *ctx,
		      struct fab_pep **out)
{
	struct rdma_event_channel *priv;
	struct fab_pep *p;
	int ret;

	(void)loop;
	if (!d->lid)
		return -EINVAL;         /* not a passive domain, or taken */
	ret = rtrs__rd_engine_start();
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->obj = d->obj;
	p->kind = RD_PEP;
	p->ops = ops;
	p->ctx = ctx;
	rtrs_list_init(&p->node);
	rtrs__lock_init(&p->lock, RTRS_RANK_RD_PEP, "rd_pep.lock");
	pthread_cond_init(&p->cond, NULL);
	priv = d->lid->channel;
	d->lid->context = p;
	if (rdma_migrate_id(d->lid, rtrs__rd_channel()) ||
	    rdma_listen(d->lid, 128)) {
		ret = -errno;
		d->lid->context = NULL;
		pthread_cond_destroy(&p->cond);
		rtrs__lock_destroy(&p->lock);
		free(p);
		return ret;
	}
	rdma_destroy_event_channel(priv);
	p->id = d->lid;
	d->lid = NULL;
	p->dom = d;
	rtrs__rd_dom_get(d);
	*out = p;
	return 0;
}

void rtrs__rd_pep_close(struct fab_pep *p)
{
	atomic_store(&p->closing, true);
	rtrs__rd_close_pep(p);
	rtrs__lock(&p->lock);
	while (!p->closed)
		rtrs__cond_wait(&p->cond, &p->lock, NULL);
	rtrs__unlock(&p->lock);
	pthread_cond_destroy(&p->cond);
	rtrs__lock_destroy(&p->lock);
	rtrs__rd_dom_put(p->dom);
	free(p);
}

int rtrs__rd_pep_name(const struct fab_pep *p, char *buf, size_t len)
{
	return rtrs__fab_addr_str(rdma_get_local_addr(p->id), buf, len);
}

/* The libfabric backend sheds connections at the open-file limit; RDMA CM
 * queues connect requests in the kernel: nothing to shed here. */
uint64_t rtrs__rd_pep_shed(struct fab_pep *p)
{
	(void)p;
	return 0;
}
