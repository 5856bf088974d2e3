// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's domains (an address, and for a listener its bound
 * socket), registrations (a key in the domain's table: nothing is
 * registered with anyone else) and addresses. */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

int rtrs__sk_sock_setup(int fd)
{
	int one = 1, fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -errno;
	/* frames are whole when sent: never held back for more */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		return -errno;
	return 0;
}

static void fill_caps(struct fab_caps *c)
{
	snprintf(c->prov, sizeof(c->prov), "sock");
	snprintf(c->domain, sizeof(c->domain), "sock");
	c->tx_iov_limit = c->rma_iov_limit = SK_TX_IOV;
	c->tx_size = c->rx_size = SK_QDEPTH;
	c->cq_data_size = 4;
	/* RMA is frames, checked here (data.c, ../keytab.c) */
	c->sw_rma = true;
}

static int listen_sock(struct fab_dom *d, const struct sockaddr_storage *sa,
		       socklen_t len)
{
	int one = 1, fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (const struct sockaddr *)sa, len)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	d->lfd = fd;
	return 0;
}

int rtrs__sk_dom_open(const char *prov, const char *node, const char *service,
		      const char *src_node, bool passive, struct fab_dom **out)
{
	struct fab_dom *d;
	int ret;

	(void)prov;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->lfd = -1;
	atomic_init(&d->ref, 1);
	fill_caps(&d->caps);
	ret = rtrs__fab_keytab_init(&d->keys, RTRS_RANK_SK_KEYS,
				    "sk_dom.keys.lock");
	if (ret)
		goto err;
	if (passive) {
		ret = rtrs__fab_resolve(node, service, true, &d->src, &d->src_len);
		if (!ret)
			ret = listen_sock(d, &d->src, d->src_len);
		if (ret)
			goto err;
	} else {
		ret = rtrs__fab_resolve(node, service, false, &d->dst, &d->dst_len);
		if (!ret && src_node && *src_node) {
			ret = rtrs__fab_resolve(src_node, NULL, false, &d->src,
				      &d->src_len);
			d->has_src = !ret;
		}
		if (ret)
			goto err;
	}
	*out = d;
	return 0;
err:
	rtrs__fab_keytab_fini(&d->keys);
	free(d);
	return ret;
}

int rtrs__sk_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			     struct fab_dom **out)
{
	(void)req;
	/* keys are scoped to a path by the table (ep_set_scope) */
	rtrs__sk_dom_get(pep->dom);
	*out = pep->dom;
	return 0;
}

void rtrs__sk_dom_get(struct fab_dom *d)
{
	atomic_fetch_add(&d->ref, 1);
}

void rtrs__sk_dom_put(struct fab_dom *d)
{
	if (!d || atomic_fetch_sub(&d->ref, 1) != 1)
		return;
	if (d->lfd >= 0)
		close(d->lfd);
	rtrs__fab_keytab_fini(&d->keys);
	free(d);
}

const struct fab_caps *rtrs__sk_dom_caps(const struct fab_dom *d)
{
	return &d->caps;
}

static int mr_reg(struct fab_dom *d, void *buf, size_t len, unsigned access,
		  const void *scope, struct fab_mr **out)
{
	struct fab_mr *m;

	if (!buf || !len)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->obj = d->obj;
	m->dom = d;
	m->k.access = access;
	m->k.scope = scope;
	m->k.base = buf;
	m->k.len = len;
	/* every registration has a key of the table: unique, random (other
	 * sessions' keys stay unguessable); only those with remote write
	 * access take a peer's frames */
	rtrs__fab_keytab_add(&d->keys, &m->k);
	rtrs__sk_dom_get(d);
	*out = m;
	return 0;
}

int rtrs__sk_mr_reg(struct fab_dom *d, void *buf, size_t len,
		    unsigned access, struct fab_mr **out)
{
	return mr_reg(d, buf, len, access, NULL, out);
}

int rtrs__sk_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			 const void *scope, struct fab_mr **out)
{
	return mr_reg(d, buf, len, FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE, scope,
		      out);
}

void rtrs__sk_mr_close(struct fab_mr *m)
{
	if (!m)
		return;
	/* once it returns, no frame lands in the region */
	rtrs__fab_keytab_del(&m->dom->keys, &m->k);
	rtrs__sk_dom_put(m->dom);
	free(m);
}

uint32_t rtrs__sk_mr_key(const struct fab_mr *m)
{
	return m->k.key;
}

void *rtrs__sk_mr_desc(const struct fab_mr *m)
{
	(void)m;
	return NULL;
}

uint64_t rtrs__sk_mr_raddr(const struct fab_mr *m, const void *p)
{
	/* a remote address is an offset in the region (protocol.md 2.6) */
	return (uint64_t)((const uint8_t *)p - m->k.base);
}
