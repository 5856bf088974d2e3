// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The rdma-core backend's domains (a device's protection domain, and
 * where its endpoints go), its registrations (ibv_reg_mr: the device's
 * keys), and the address helpers the other files share. */
#include "rdma.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

int rtrs__rd_channel_new(struct rdma_event_channel **out)
{
	struct rdma_event_channel *ch = rdma_create_event_channel();
	int err;

	if (!ch) {
		err = errno ? errno : ENODEV;
		/* librdmacm reports a host without RDMA CM (no device, no
		 * /dev/infiniband/rdma_cm) as ENODEV or ENOENT */
		return err == ENOENT || err == ENOSYS ? -ENODEV : -err;
	}
	*out = ch;
	return 0;
}

int rtrs__rd_wait_event(struct rdma_event_channel *ch, int ms)
{
	struct pollfd pfd = { .fd = ch->fd, .events = POLLIN };
	struct rdma_cm_event *ev;
	int type, status;

	if (poll(&pfd, 1, ms) <= 0)
		return -ETIMEDOUT;
	if (rdma_get_cm_event(ch, &ev))
		return -errno;
	type = ev->event;
	status = ev->status;
	rdma_ack_cm_event(ev);
	if (status)
		return status < 0 ? status : -EHOSTUNREACH;
	return type;
}

/* The caps of a device (NULL: a wildcard listener's, until a path's
 * domain names the device). */
static int fill_caps(struct fab_dom *d)
{
	struct fab_caps *c = &d->caps;
	struct ibv_device_attr a;

	snprintf(c->prov, sizeof(c->prov), "rdma");
	c->tx_iov_limit = c->rma_iov_limit = RD_MAX_SGE;
	c->tx_size = RD_SQ_DEPTH / 2;   /* a write may take several slots */
	c->rx_size = RD_RQ_DEPTH;
	c->mr_local = c->mr_pins = c->mr_virt_addr = c->mr_prov_key = true;
	c->rx_cq_data = true;
	c->cq_data_size = 4;
	if (!d->verbs)
		return 0;
	snprintf(c->domain, sizeof(c->domain), "%s",
		 ibv_get_device_name(d->verbs->device));
	if (d->verbs->device->transport_type == IBV_TRANSPORT_IWARP) {
		rtrs_err("rdma: %s is iWARP: immediate data is not carried "
			 "there, and this backend does not emulate it yet",
			 c->domain);
		return -EOPNOTSUPP;
	}
	if (!ibv_query_device(d->verbs, &a)) {
		if ((size_t)a.max_sge < c->tx_iov_limit)
			c->tx_iov_limit = c->rma_iov_limit = (size_t)a.max_sge;
		c->remote_inv = !!(a.device_cap_flags &
				   IBV_DEVICE_MEM_MGT_EXTENSIONS);
		if (a.max_qp_wr < RD_SQ_DEPTH || a.max_cqe < 2 * RD_SQ_DEPTH + 2) {
			rtrs_err("rdma: %s: queues of %d entries, %d CQEs: too "
				 "small", c->domain, a.max_qp_wr, a.max_cqe);
			return -EOPNOTSUPP;
		}
	}
	d->pd = ibv_alloc_pd(d->verbs);
	return d->pd ? 0 : -ENOMEM;
}

static int dom_new(struct fab_dom **out)
{
	struct fab_dom *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	atomic_init(&d->ref, 1);
	*out = d;
	return 0;
}

/* Active: find the device that reaches @d->dst (from @d->src) with a
 * resolution on a private channel, and open a protection domain on it. */
static int dom_resolve_dev(struct fab_dom *d)
{
	struct rdma_event_channel *ch;
	struct rdma_cm_id *id;
	int ret = rtrs__rd_channel_new(&ch);

	if (ret)
		return ret;
	if (rdma_create_id(ch, &id, NULL, RDMA_PS_TCP)) {
		ret = -errno;
		goto out_ch;
	}
	if (rdma_resolve_addr(id, d->has_src ? (struct sockaddr *)&d->src : NULL,
			      (struct sockaddr *)&d->dst, RD_RESOLVE_MS)) {
		ret = errno == ENOMEM ? -ENOMEM : -ENODATA;
		goto out_id;
	}
	ret = rtrs__rd_wait_event(ch, RD_RESOLVE_MS + 1000);
	if (ret != RDMA_CM_EVENT_ADDR_RESOLVED) {
		ret = -ENODATA;         /* no RDMA device reaches it */
		goto out_id;
	}
	d->verbs = id->verbs;
	ret = d->verbs ? fill_caps(d) : -ENODATA;
out_id:
	rdma_destroy_id(id);
out_ch:
	rdma_destroy_event_channel(ch);
	return ret;
}

/* Passive: bind an id to the address (on a private channel until the
 * listener moves it to the loop's). */
static int dom_bind(struct fab_dom *d)
{
	struct rdma_event_channel *ch;
	int ret = rtrs__rd_channel_new(&ch);

	if (ret)
		return ret;
	if (rdma_create_id(ch, &d->lid, NULL, RDMA_PS_TCP)) {
		ret = -errno;
		rdma_destroy_event_channel(ch);
		return ret;
	}
	if (rdma_bind_addr(d->lid, (struct sockaddr *)&d->dst)) {
		ret = -errno;
		rdma_destroy_id(d->lid);
		d->lid = NULL;
		rdma_destroy_event_channel(ch);
		/* an address no RDMA device has */
		return ret == -EADDRNOTAVAIL || ret == -ENODEV ? -ENODATA : ret;
	}
	d->verbs = d->lid->verbs;
	return fill_caps(d);
}

int rtrs__rd_dom_open(const char *prov, const char *node, const char *service,
		      const char *src_node, bool passive, struct fab_dom **out)
{
	struct fab_dom *d;
	int ret;

	(void)prov;
	ret = dom_new(&d);
	if (ret)
		return ret;
	ret = rtrs__fab_resolve(node, service, passive, &d->dst, NULL);
	if (!ret && src_node && *src_node) {
		ret = rtrs__fab_resolve(src_node, "0", true, &d->src, NULL);
		d->has_src = !ret;
	}
	if (!ret)
		ret = passive ? dom_bind(d) : dom_resolve_dev(d);
	if (ret) {
		rtrs_dbg("rdma: a domain for %s:%s: %s", node ? node : "*",
			 service ? service : "0", rtrs_strerror(ret));
		rtrs__rd_dom_put(d);
		return ret;
	}
	*out = d;
	return 0;
}

int rtrs__rd_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			     struct fab_dom **out)
{
	struct fab_dom *d;
	int ret = dom_new(&d);

	(void)pep;
	if (ret)
		return ret;
	d->obj = pep->dom->obj;
	d->verbs = req->id->verbs;
	ret = d->verbs ? fill_caps(d) : -ENODATA;
	if (ret) {
		rtrs__rd_dom_put(d);
		return ret;
	}
	*out = d;
	return 0;
}

void rtrs__rd_dom_get(struct fab_dom *d)
{
	atomic_fetch_add(&d->ref, 1);
}

void rtrs__rd_dom_put(struct fab_dom *d)
{
	if (atomic_fetch_sub(&d->ref, 1) != 1)
		return;
	if (d->lid) {
		struct rdma_event_channel *ch = d->lid->channel;

		rdma_destroy_id(d->lid);
		rdma_destroy_event_channel(ch);
	}
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	free(d);
}

const struct fab_caps *rtrs__rd_dom_caps(const struct fab_dom *d)
{
	return &d->caps;
}

/* ---- registrations ---- */

static int mr_new(struct fab_dom *d, void *buf, size_t len, int acc,
		  struct fab_mr **out)
{
	struct fab_mr *m;

	if (!buf || !len)
		return -EINVAL;
	if (!d->pd)
		return -EOPNOTSUPP;     /* a wildcard listener's domain */
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->mr = ibv_reg_mr(d->pd, buf, len, acc);
	if (!m->mr) {
		int err = errno ? errno : ENOMEM;

		free(m);
		return err == EFAULT || err == EPERM ? -EACCES : -err;
	}
	m->obj = d->obj;
	m->dom = d;
	rtrs__rd_dom_get(d);
	*out = m;
	return 0;
}

int rtrs__rd_mr_reg(struct fab_dom *d, void *buf, size_t len,
		    unsigned access, struct fab_mr **out)
{
	int acc = 0;

	if (!(access & FAB_ACC_SOURCE))
		acc |= IBV_ACCESS_LOCAL_WRITE;
	if (access & FAB_ACC_REMOTE_WRITE)
		acc |= IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE;
	return mr_new(d, buf, len, acc, out);
}

/* @scope is not needed: a server path has a protection domain of its own
 * (rtrs__rd_dom_for_connreq()), so the device refuses its keys on every
 * other path's queue pairs (docs/security.md, item 2). */
int rtrs__rd_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			 const void *scope, struct fab_mr **out)
{
	(void)scope;
	return mr_new(d, buf, len,
		      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE, out);
}

void rtrs__rd_mr_close(struct fab_mr *m)
{
	ibv_dereg_mr(m->mr);
	rtrs__rd_dom_put(m->dom);
	free(m);
}

uint32_t rtrs__rd_mr_key(const struct fab_mr *m)
{
	return m->mr->rkey;
}

/* A local buffer's descriptor is the registration itself (its lkey). */
void *rtrs__rd_mr_desc(const struct fab_mr *m)
{
	return (void *)m;
}

uint64_t rtrs__rd_mr_raddr(const struct fab_mr *m, const void *p)
{
	(void)m;
	return (uint64_t)(uintptr_t)p;
}
