// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* A fake fabric for the server fuzz harness; see fake_fabric.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_fabric.h"
#include "fuzz.h"
#include "proto/wire.h"

#define FF_MAX_RX 64

/* this backend's table (the end of the fabric part below) */
static const struct rtrs__fab_ops fake_ops;

struct fab_dom {
	struct fab_obj obj;     /* first: this backend (fabric.h) */
	int ref;
	struct fab_caps caps;
};

struct fab_mr {
	struct fab_obj obj;     /* first: this backend (fabric.h) */
	struct fab_mr *next;
	struct fab_dom *dom;
	char *base;
	size_t len;
	unsigned access;
	uint32_t key;
};

struct ff_rx {
	void *buf;
	size_t len;
	struct fab_opctx *ctx;
};

struct fab_ep {
	struct fab_obj obj;     /* first: this backend (fabric.h) */
	const struct fab_ep_ops *ops;
	void *ctx;
	struct fab_dom *dom;
	bool accepted, closing, closed, want_tx, tx_full;
	struct ff_rx rx[FF_MAX_RX];
	unsigned rx_head, rx_n;
	unsigned id;
};

struct fab_pep {
	struct fab_obj obj;     /* first: this backend (fabric.h) */
	const struct fab_pep_ops *ops;
	void *ctx;
	struct fab_dom *dom;
};

struct fab_connreq {
	struct fab_ep *ep;
	bool rejected;
};

/* the fabric's state: L guards it; no callback runs with L held */
static pthread_mutex_t L = PTHREAD_MUTEX_INITIALIZER;
static struct fab_ep *eps[FF_MAX_EPS];
static unsigned neps;
static struct fab_mr *mrs;
static unsigned nmrs, ndoms;
static uint32_t next_key = 0x1000;
static struct fab_pep *the_pep;
static bool cfg_mr_local, cfg_rx_cq_data;
static volatile uint8_t sink;
/* > 0 while this thread runs a callback: as on a progress loop, a close
 * asked for there is done later (ff_pump); asked for elsewhere (no lock
 * of the caller's held: ep_close returns at once), the loop may as well
 * finish it at once, and here does */
static _Thread_local int in_cb;

#define CB(call)                                                             \
	do {                                                                 \
		in_cb++;                                                     \
		call;                                                        \
		in_cb--;                                                     \
	} while (0)

static void close_now(struct fab_ep *e);

/* Read every byte: ASan reports memory that is not ours to read. */
static void touch(const void *p, size_t n)
{
	const volatile uint8_t *b = p;
	uint8_t x = 0;

	for (size_t i = 0; i < n; i++)
		x ^= b[i];
	sink ^= x;
}

/* With local registrations, @desc must be one that holds [@p, @p+@n). */
static void check_local(const struct fab_dom *d, const void *p, size_t n,
			void *desc)
{
	const struct fab_mr *m = desc;
	bool found = false;

	if (!d->caps.mr_local || !n)
		return;
	FUZZ_CHECK(m != NULL);
	pthread_mutex_lock(&L);
	for (const struct fab_mr *x = mrs; x; x = x->next)
		found |= x == m;
	pthread_mutex_unlock(&L);
	FUZZ_CHECK(found);      /* a live registration */
	FUZZ_CHECK((const char *)p >= m->base &&
		   (size_t)((const char *)p - m->base) <= m->len &&
		   m->len - (size_t)((const char *)p - m->base) >= n);
}

void ff_set_caps(bool mr_local, bool rx_cq_data)
{
	cfg_mr_local = mr_local;
	cfg_rx_cq_data = rx_cq_data;
}

/* ---- engine ---- */

int rtrs__fab_engine_get(void)
{
	return 0;
}

void rtrs__fab_engine_put(void)
{
}

unsigned rtrs__fab_nloops(void)
{
	return 2;
}

/* the engine's usable CPUs: fixed, as the loops, for repeatable runs */
unsigned rtrs__fab_usable_cpus(void)
{
	return 2;
}

bool rtrs__fab_may_spin(uint64_t since_ns, uint64_t now_ns)
{
	(void)since_ns;
	(void)now_ns;
	return false;
}

/* ---- domains ---- */

int rtrs__fab_dom_open(const char *prov, const char *node,
		       const char *service, const char *src_node, bool passive,
		       struct fab_dom **out)
{
	struct fab_dom *d = calloc(1, sizeof(*d));

	(void)node;
	(void)service;
	(void)src_node;
	if (!d)
		return -ENOMEM;
	FUZZ_CHECK(passive);    /* the server only listens */
	d->obj.ops = &fake_ops;
	d->ref = 1;
	snprintf(d->caps.prov, sizeof(d->caps.prov), "%s", prov ? prov : "fake");
	snprintf(d->caps.domain, sizeof(d->caps.domain), "fake0");
	d->caps.inject_size = 64;
	d->caps.tx_iov_limit = 4;
	d->caps.rma_iov_limit = 1;
	d->caps.tx_size = 256;
	d->caps.rx_size = 16;
	d->caps.mr_local = cfg_mr_local;
	d->caps.rx_cq_data = cfg_rx_cq_data;
	d->caps.cq_data_size = 4;
	/* an iWARP-like provider: the immediate rides in a trailer */
	d->caps.msg_room = cfg_mr_local && !cfg_rx_cq_data ? FAB_MSG_ROOM : 0;
	pthread_mutex_lock(&L);
	ndoms++;
	pthread_mutex_unlock(&L);
	*out = d;
	return 0;
}

static void fake_dom_get(struct fab_dom *d)
{
	pthread_mutex_lock(&L);
	FUZZ_CHECK(d->ref > 0);
	d->ref++;
	pthread_mutex_unlock(&L);
}

static void fake_dom_put(struct fab_dom *d)
{
	bool last;

	if (!d)
		return;
	pthread_mutex_lock(&L);
	FUZZ_CHECK(d->ref > 0);
	last = --d->ref == 0;
	if (last)
		ndoms--;
	pthread_mutex_unlock(&L);
	if (last)
		free(d);
}

static const struct fab_caps *fake_dom_caps(const struct fab_dom *d)
{
	return &d->caps;
}

/* ---- registrations ---- */

static int fake_mr_reg(struct fab_dom *d, void *buf, size_t len,
		     unsigned access, struct fab_mr **out)
{
	struct fab_mr *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	FUZZ_CHECK(buf && len);
	/* the region is the caller's (its ends: the whole would fault in
	 * every page of a chunk pool, each input) */
	touch(buf, 1);
	touch((const char *)buf + len - 1, 1);
	m->obj = d->obj;
	m->dom = d;
	m->base = buf;
	m->len = len;
	m->access = access;
	rtrs__fab_dom_get(d);
	pthread_mutex_lock(&L);
	m->key = next_key++;
	m->next = mrs;
	mrs = m;
	nmrs++;
	pthread_mutex_unlock(&L);
	*out = m;
	return 0;
}

static int fake_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			  const void *scope, struct fab_mr **out)
{
	(void)scope;    /* the fake fabric takes no RMA from the peer */
	return rtrs__fab_mr_reg(d, buf, len,
				FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE, out);
}

static void fake_mr_close(struct fab_mr *m)
{
	struct fab_mr **pp;

	if (!m)
		return;
	pthread_mutex_lock(&L);
	for (pp = &mrs; *pp && *pp != m; pp = &(*pp)->next)
		;
	FUZZ_CHECK(*pp == m);   /* closed once */
	*pp = m->next;
	nmrs--;
	pthread_mutex_unlock(&L);
	rtrs__fab_dom_put(m->dom);
	free(m);
}

static uint32_t fake_mr_key(const struct fab_mr *m)
{
	FUZZ_CHECK(m != NULL);
	return m->key;
}

static void *fake_mr_desc(const struct fab_mr *m)
{
	return m && m->dom->caps.mr_local ? (void *)m : NULL;
}

static uint64_t fake_mr_raddr(const struct fab_mr *m, const void *p)
{
	FUZZ_CHECK(m != NULL);
	FUZZ_CHECK((const char *)p >= m->base &&
		   (size_t)((const char *)p - m->base) < m->len);
	return (uint64_t)((const char *)p - m->base);   /* offsets, as tcp */
}

bool ff_mr_pick(unsigned sel, char **base, size_t *len)
{
	unsigned n = 0, k;
	bool ok = false;

	pthread_mutex_lock(&L);
	for (struct fab_mr *x = mrs; x; x = x->next)
		n += !!(x->access & FAB_ACC_REMOTE_WRITE);
	if (n) {
		k = sel % n;
		for (struct fab_mr *x = mrs; x; x = x->next) {
			if (!(x->access & FAB_ACC_REMOTE_WRITE))
				continue;
			if (!k--) {
				*base = x->base;
				*len = x->len;
				ok = true;
				break;
			}
		}
	}
	pthread_mutex_unlock(&L);
	return ok;
}

/* ---- endpoints ---- */

static struct fab_ep *ep_new(struct fab_dom *d, const struct fab_ep_ops *ops,
			     void *ctx)
{
	struct fab_ep *e;

	pthread_mutex_lock(&L);
	if (neps == FF_MAX_EPS) {
		pthread_mutex_unlock(&L);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e) {
		e->obj = d->obj;
		e->ops = ops;
		e->ctx = ctx;
		e->dom = d;
		e->id = neps;
		d->ref++;
		eps[neps++] = e;
	}
	pthread_mutex_unlock(&L);
	return e;
}

static int fake_ep_create(struct fab_dom *d, unsigned loop,
			struct fab_poller *poller, const struct fab_ep_ops *ops,
			void *ctx, struct fab_ep **out)
{
	(void)d;
	(void)loop;
	(void)poller;
	(void)ops;
	(void)ctx;
	(void)out;
	return -ENOSYS;         /* no clients here */
}

static int fake_ep_connect(struct fab_ep *ep, const void *data, size_t len)
{
	(void)ep;
	(void)data;
	(void)len;
	return -ENOSYS;
}

/* the fake's RMA is no one's: the listener's domain */
static int fake_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			      struct fab_dom **out)
{
	FUZZ_CHECK(!req->ep && !req->rejected);
	rtrs__fab_dom_get(pep->dom);
	*out = pep->dom;
	return 0;
}

static int fake_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			       unsigned loop, const struct fab_ep_ops *ops,
			       void *ctx, struct fab_ep **out)
{
	struct fab_ep *e;

	(void)loop;
	FUZZ_CHECK(!req->ep && !req->rejected);
	e = ep_new(d, ops, ctx);
	if (!e)
		return -ENOMEM;
	req->ep = e;
	*out = e;
	return 0;
}

static int fake_ep_accept(struct fab_ep *ep, const void *data, size_t len)
{
	struct rtrs_conn_rsp rsp;

	FUZZ_CHECK(len == RTRS_CONN_PRIV_LEN);
	/* what a client reads: well-formed and accepting */
	FUZZ_CHECK(rtrs__proto_conn_rsp_decode(data, len, &rsp) == 0 &&
		   rsp.err == 0);
	pthread_mutex_lock(&L);
	FUZZ_CHECK(!ep->accepted && !ep->closing);
	ep->accepted = true;
	pthread_mutex_unlock(&L);
	return 0;
}

static int fake_reject(struct fab_pep *pep, struct fab_connreq *req,
		     const void *data, size_t len)
{
	struct rtrs_conn_rsp rsp;

	(void)pep;
	FUZZ_CHECK(len == RTRS_CONN_PRIV_LEN);
	FUZZ_CHECK(rtrs__proto_conn_rsp_decode(data, len, &rsp) == 0 &&
		   rsp.err < 0);
	req->rejected = true;
	return 0;
}

static void fake_ep_set_scope(struct fab_ep *ep, const void *scope)
{
	(void)ep;
	(void)scope;
}

static void fake_ep_close(struct fab_ep *ep)
{
	if (!ep)
		return;
	pthread_mutex_lock(&L);
	ep->closing = true;
	pthread_mutex_unlock(&L);
	if (!in_cb)
		close_now(ep);
}

static void fake_ep_want_tx(struct fab_ep *ep)
{
	pthread_mutex_lock(&L);
	ep->want_tx = true;
	pthread_mutex_unlock(&L);
}

static const struct fab_caps *fake_ep_caps(const struct fab_ep *ep)
{
	return &ep->dom->caps;
}

static int fake_ep_peer(const struct fab_ep *ep, char *buf, size_t len)
{
	snprintf(buf, len, "127.0.0.%u:%u", 1 + ep->id % 4, 4000 + ep->id);
	return 0;
}

static int fake_ep_name(const struct fab_ep *ep, char *buf, size_t len)
{
	(void)ep;
	snprintf(buf, len, "127.0.0.1:1234");
	return 0;
}

/* 0 to go on, -ENOTCONN on a closed endpoint, -EAGAIN when full */
static int post_state(struct fab_ep *ep)
{
	int ret = 0;

	FUZZ_CHECK(ep != NULL);
	pthread_mutex_lock(&L);
	if (ep->closing)
		ret = -ENOTCONN;
	else if (ep->tx_full)
		ret = -EAGAIN;
	pthread_mutex_unlock(&L);
	return ret;
}

static int fake_post_recv(struct fab_ep *ep, void *buf, size_t len, void *desc,
			struct fab_opctx *ctx)
{
	size_t room = ep->dom->caps.msg_room;
	int ret = 0;

	FUZZ_CHECK(buf && len && ctx);
	touch(buf, len + room);
	check_local(ep->dom, buf, len + room, desc);
	pthread_mutex_lock(&L);
	if (ep->closing) {
		ret = -ENOTCONN;
	} else if (ep->rx_n == FF_MAX_RX) {
		ret = -EAGAIN;
	} else {
		struct ff_rx *r = &ep->rx[(ep->rx_head + ep->rx_n++) % FF_MAX_RX];

		/* the same receive is never posted twice */
		for (unsigned i = 0; i + 1 < ep->rx_n; i++)
			FUZZ_CHECK(ep->rx[(ep->rx_head + i) % FF_MAX_RX].ctx != ctx);
		r->buf = buf;
		r->len = len;
		r->ctx = ctx;
	}
	pthread_mutex_unlock(&L);
	return ret;
}

static int fake_post_send(struct fab_ep *ep, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm,
			struct fab_opctx *ctx, bool signal)
{
	int ret = post_state(ep);

	(void)imm;
	(void)ctx;
	FUZZ_CHECK(!signal);    /* the server signals nothing */
	FUZZ_CHECK(has_imm || len);
	if (len) {
		FUZZ_CHECK(buf != NULL);
		touch(buf, len + ep->dom->caps.msg_room);
		check_local(ep->dom, buf, len + ep->dom->caps.msg_room, desc);
	}
	return ret;
}

static int fake_post_write(struct fab_ep *ep, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			 bool signal)
{
	int ret = post_state(ep);

	(void)raddr;
	(void)key;
	(void)has_imm;
	(void)imm;
	(void)ctx;
	FUZZ_CHECK(!signal);
	FUZZ_CHECK(cnt >= 1 && cnt <= ep->dom->caps.rma_iov_limit);
	for (size_t i = 0; i < cnt; i++) {
		touch(iov[i].iov_base, iov[i].iov_len);
		check_local(ep->dom, iov[i].iov_base, iov[i].iov_len,
			    desc ? desc[i] : NULL);
	}
	return ret;
}

/* ---- listeners ---- */

static int fake_pep_open(struct fab_dom *d, unsigned loop,
		       const struct fab_pep_ops *ops, void *ctx,
		       struct fab_pep **out)
{
	struct fab_pep *p = calloc(1, sizeof(*p));

	(void)loop;
	if (!p)
		return -ENOMEM;
	FUZZ_CHECK(!the_pep);
	p->obj = d->obj;
	p->ops = ops;
	p->ctx = ctx;
	p->dom = d;
	pthread_mutex_lock(&L);
	the_pep = p;
	pthread_mutex_unlock(&L);
	*out = p;
	return 0;
}

static void fake_pep_close(struct fab_pep *pep)
{
	pthread_mutex_lock(&L);
	FUZZ_CHECK(pep == the_pep);
	the_pep = NULL;
	pthread_mutex_unlock(&L);
	free(pep);
}

static int fake_pep_name(const struct fab_pep *pep, char *buf, size_t len)
{
	(void)pep;
	snprintf(buf, len, "127.0.0.1:1234");
	return 0;
}

/* no socket, no open-file limit: nothing is ever shed */
static uint64_t fake_pep_shed(struct fab_pep *pep)
{
	(void)pep;
	return 0;
}

/* ---- pollers: the client's; not used here ---- */

static int fake_poller_create(struct fab_poller **out)
{
	(void)out;
	return -ENOSYS;
}

int rtrs__fab_poller_create(const char *prov, struct fab_poller **out)
{
	(void)prov;
	return fake_poller_create(out);
}

static void fake_poller_destroy(struct fab_poller *pl)
{
	(void)pl;
}

static int fake_poller_progress(struct fab_poller *pl)
{
	(void)pl;
	return 0;
}

static void fake_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	(void)pl;
	(void)timeout_ms;
}

static void fake_poller_wake(struct fab_poller *pl)
{
	(void)pl;
}

/* ---- the harness's side ---- */

/* The fake as a backend of the contract (fabric.h); the calls that take
 * no object (engine, dom_open, poller_create) are the ones above, linked
 * instead of src/fabric/fabric.c. */
static const struct rtrs__fab_ops fake_ops = {
	.name = "fake",
	.prov = NULL,
	.engine_get = rtrs__fab_engine_get,
	.engine_put = rtrs__fab_engine_put,
	.nloops = rtrs__fab_nloops,
	.dom_open = rtrs__fab_dom_open,
	.poller_create = fake_poller_create,
	.dom_for_connreq = fake_dom_for_connreq,
	.dom_get = fake_dom_get,
	.dom_put = fake_dom_put,
	.dom_caps = fake_dom_caps,
	.mr_reg = fake_mr_reg,
	.mr_reg_peer = fake_mr_reg_peer,
	.mr_close = fake_mr_close,
	.mr_key = fake_mr_key,
	.mr_desc = fake_mr_desc,
	.mr_raddr = fake_mr_raddr,
	.ep_create = fake_ep_create,
	.ep_accept_create = fake_ep_accept_create,
	.ep_connect = fake_ep_connect,
	.ep_accept = fake_ep_accept,
	.reject = fake_reject,
	.ep_close = fake_ep_close,
	.ep_set_scope = fake_ep_set_scope,
	.ep_want_tx = fake_ep_want_tx,
	.ep_caps = fake_ep_caps,
	.ep_peer = fake_ep_peer,
	.ep_name = fake_ep_name,
	.post_recv = fake_post_recv,
	.post_send = fake_post_send,
	.post_write = fake_post_write,
	.poller_destroy = fake_poller_destroy,
	.poller_progress = fake_poller_progress,
	.poller_wait = fake_poller_wait,
	.poller_wake = fake_poller_wake,
	.pep_open = fake_pep_open,
	.pep_close = fake_pep_close,
	.pep_name = fake_pep_name,
	.pep_shed = fake_pep_shed,
};

bool ff_connreq(const void *data, size_t len)
{
	struct fab_connreq req = { 0 };
	struct fab_pep *p;
	struct fab_ep *e;
	bool ok;

	pthread_mutex_lock(&L);
	p = the_pep;
	pthread_mutex_unlock(&L);
	if (!p)
		return false;
	CB(p->ops->connreq(p->ctx, &req, data, len));
	/* answered before connreq() returns: accepted, rejected, or the
	 * endpoint made and closed again */
	e = req.ep;
	FUZZ_CHECK(!!e != req.rejected);
	if (!e)
		return false;
	pthread_mutex_lock(&L);
	ok = e->accepted && !e->closing;
	pthread_mutex_unlock(&L);
	if (ok)
		CB(e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, NULL, 0));
	return ok;
}

int ff_ep_pick(unsigned i)
{
	int e = -1;

	pthread_mutex_lock(&L);
	if (neps)
		e = (int)(i % neps);
	if (e >= 0 && eps[e]->closing)
		e = -1;         /* the loop skips closed endpoints */
	pthread_mutex_unlock(&L);
	return e;
}

void *ff_ep_ctx(int i)
{
	return eps[i]->ctx;
}

/* The next posted receive of @e, taken off its queue. */
static bool take_rx(struct fab_ep *e, struct ff_rx *out)
{
	bool ok = false;

	pthread_mutex_lock(&L);
	if (!e->closing && e->rx_n) {
		*out = e->rx[e->rx_head];
		e->rx_head = (e->rx_head + 1) % FF_MAX_RX;
		e->rx_n--;
		ok = true;
	}
	pthread_mutex_unlock(&L);
	return ok;
}

bool ff_recv(int i, const void *data, size_t len, bool has_imm, uint32_t imm)
{
	struct fab_ep *e = eps[i];
	struct fab_cqe c = { 0 };
	struct ff_rx r;

	if (!take_rx(e, &r))
		return false;
	c.ctx = r.ctx;
	c.flags = FAB_CQE_RECV | (has_imm ? FAB_CQE_IMM : 0);
	c.imm = has_imm ? imm : 0;
	if (len > r.len) {
		c.err = -EMSGSIZE;      /* truncated: an error completion */
	} else {
		if (len)
			memcpy(r.buf, data, len);
		c.len = (uint32_t)len;
	}
	CB(e->ops->cqe(e->ctx, &c));
	return true;
}

void ff_rma_write(int i, unsigned sel, uint64_t off, const void *data,
		  size_t len, bool has_imm, uint32_t imm)
{
	struct fab_ep *e = eps[i];
	struct fab_cqe c = { 0 };
	struct ff_rx r;
	char *base;
	size_t mlen;

	if (len && ff_mr_pick(sel, &base, &mlen)) {
		off %= mlen;
		if (len > mlen - off)
			len = mlen - off;
		memcpy(base + off, data, len);
	}
	if (!has_imm)
		return;
	c.flags = FAB_CQE_RMA_IN | FAB_CQE_IMM;
	c.imm = imm;
	if (e->dom->caps.rx_cq_data) {
		if (!take_rx(e, &r))
			return;         /* no receive: the provider drops it */
		c.ctx = r.ctx;
		c.flags |= FAB_CQE_RECV;
	}
	CB(e->ops->cqe(e->ctx, &c));
}

void ff_cm(int i, enum fab_cm_ev ev, int err)
{
	struct fab_ep *e = eps[i];

	CB(e->ops->cm(e->ctx, ev, err, NULL, 0));
}

void ff_cqe_err(int i, int err)
{
	struct fab_ep *e = eps[i];
	struct fab_cqe c = { .err = err, .flags = FAB_CQE_RECV };
	struct ff_rx r;

	if (!take_rx(e, &r))
		return;
	c.ctx = r.ctx;
	CB(e->ops->cqe(e->ctx, &c));
}

void ff_tx_full(int i, bool full)
{
	struct fab_ep *e = eps[i];
	bool ready;

	pthread_mutex_lock(&L);
	e->tx_full = full;
	ready = !full && e->want_tx;
	if (ready)
		e->want_tx = false;
	pthread_mutex_unlock(&L);
	if (ready)
		CB(e->ops->tx_ready(e->ctx));
}

/* Flushed receives, then closed(): nothing after it. */
static void close_now(struct fab_ep *e)
{
	struct ff_rx *rx = NULL;
	unsigned n = 0;

	pthread_mutex_lock(&L);
	if (e->closed) {
		pthread_mutex_unlock(&L);
		return;
	}
	e->closed = true;
	if (e->rx_n) {
		rx = malloc(e->rx_n * sizeof(*rx));
		FUZZ_CHECK(rx);
	}
	while (e->rx_n) {
		rx[n++] = e->rx[e->rx_head];
		e->rx_head = (e->rx_head + 1) % FF_MAX_RX;
		e->rx_n--;
	}
	pthread_mutex_unlock(&L);
	for (unsigned k = 0; k < n; k++) {
		struct fab_cqe c = { .ctx = rx[k].ctx, .flags = FAB_CQE_RECV,
				     .err = -ECANCELED };

		CB(e->ops->cqe(e->ctx, &c));
	}
	free(rx);
	CB(e->ops->closed(e->ctx));
}

bool ff_pump(void)
{
	bool did = false;

	for (;;) {
		struct fab_ep *e = NULL;

		pthread_mutex_lock(&L);
		for (unsigned i = 0; i < neps && !e; i++) {
			if (eps[i]->closing && !eps[i]->closed)
				e = eps[i];
		}
		pthread_mutex_unlock(&L);
		if (!e)
			return did;
		did = true;
		close_now(e);
	}
}

void ff_reset(void)
{
	pthread_mutex_lock(&L);
	for (unsigned i = 0; i < neps; i++) {
		/* the server closed every endpoint it made */
		FUZZ_CHECK(eps[i]->closed);
		if (--eps[i]->dom->ref == 0) {
			ndoms--;
			free(eps[i]->dom);
		}
		free(eps[i]);
		eps[i] = NULL;
	}
	neps = 0;
	pthread_mutex_unlock(&L);
}

unsigned ff_live_mrs(void)
{
	return nmrs;
}

unsigned ff_live_doms(void)
{
	return ndoms;
}
