// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Fairness of a progress loop between its endpoints (src/fabric/ofi,
 * loop.c and progress.c): an endpoint whose completions never stop (each
 * one's callback posts the next send there, as a client's conf posts its
 * next request on the same path) must not keep the loop from another
 * endpoint that has a completion waiting.
 *
 * Two connections over loopback, their client ends on loop 0: on A a
 * chain of signalled sends, one in flight, each completion posting the
 * next; B's server end sends B a message now and then. Each probe counts
 * the chain's completions between the send and B's receive completion.
 * A loop that reads one endpoint's CQ until it is empty or a budget is
 * spent (256 entries before this test) lets the chain run through its
 * budget first: every probe then counts 256 or more. The rule now is
 * one read per endpoint per pass, so a probe counts a few (the test
 * checks the median of 8). Counts only, no clock (a clock bounds only
 * the waits, against a hang).
 */
#include <stdatomic.h>

#include "fabric/fabric.h"
#include "harness.h"

#define NPROBES 8
/* chain completions the median probe may wait: a few now; with the old
 * loop every probe waited at least 256 (the rest of A's budget, then A's
 * whole next one before B, whose readiness that loop learned only
 * between passes: A is ahead of B in the loop's list, made first). The
 * median, because on a loaded machine the kernel may deliver one probe
 * late (68 seen once while CI ran beside it). */
#define MAX_LEAD 32
#define SRV_RX 16               /* receives each server end keeps posted */
#define MSG 64

struct end {
	struct fab_ep *ep;
	struct fab_dom *dom;            /* server ends: their path's domain */
	struct fab_mr *mr;
	void *desc;
	_Atomic int connected;          /* 1 up, -1 failed */
	_Atomic bool closed;
	struct fab_opctx tx, rx[SRV_RX];
	char tx_buf[MSG + FAB_MSG_ROOM];
	char rx_buf[SRV_RX][MSG + FAB_MSG_ROOM];
};

static struct end a_clt, b_clt, srv[2];
static _Atomic unsigned nsrv;
static struct fab_pep *lpep;
static _Atomic bool stop;
static _Atomic unsigned long chain;     /* A's send completions */
static _Atomic unsigned long b_seen = 0; /* chain count at B's receive */
static _Atomic unsigned b_recvs;
static _Atomic unsigned errors;

static bool wait_for(bool (*cond)(void))
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!cond()) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 20)
			return false;
		t_sleep_ms(1);
	}
	return true;
}

static int reg(struct end *e, struct fab_dom *d)
{
	if (!rtrs__fab_dom_caps(d)->mr_local)
		return 0;
	/* one registration over the whole end: its buffers live in it */
	if (rtrs__fab_mr_reg(d, e, sizeof(*e), FAB_ACC_LOCAL, &e->mr))
		return -1;
	e->desc = rtrs__fab_mr_desc(e->mr);
	return 0;
}

static int post_rx(struct end *e, unsigned i)
{
	return rtrs__fab_post_recv(e->ep, e->rx_buf[i], MSG, e->desc,
				   &e->rx[i]);
}

static void cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
	       size_t len)
{
	struct end *e = ctx;

	(void)err; (void)data; (void)len;
	if (ev == FAB_CM_CONNECTED)
		atomic_store(&e->connected, 1);
	else if (atomic_load(&e->connected) == 0)
		atomic_store(&e->connected, -1);
}

static void tx_ready(void *ctx)
{
	(void)ctx;
}

static void closed(void *ctx)
{
	atomic_store(&((struct end *)ctx)->closed, true);
}

/* A failed completion: counted unless the test is closing (flushes). */
static bool cqe_failed(const struct fab_cqe *c)
{
	if (c->err && !atomic_load(&stop))
		atomic_fetch_add(&errors, 1);
	return c->err != 0;
}

/* A: each send completion posts the next send */
static void a_cqe(void *ctx, const struct fab_cqe *c)
{
	struct end *e = ctx;

	if (cqe_failed(c) || !(c->flags & FAB_CQE_TX))
		return;
	atomic_fetch_add(&chain, 1);
	if (!atomic_load(&stop) &&
	    rtrs__fab_post_send(e->ep, e->tx_buf, MSG, e->desc, false, 0,
				&e->tx, true))
		atomic_fetch_add(&errors, 1);
}

/* B: a probe arrived; where the chain stands */
static void b_cqe(void *ctx, const struct fab_cqe *c)
{
	(void)ctx;
	if (!cqe_failed(c) && (c->flags & FAB_CQE_RECV)) {
		atomic_store(&b_seen, atomic_load(&chain));
		atomic_fetch_add(&b_recvs, 1);
	}
}

/* server ends: take what comes, receive again */
static void srv_cqe(void *ctx, const struct fab_cqe *c)
{
	struct end *e = ctx;

	if (!cqe_failed(c) && (c->flags & FAB_CQE_RECV) &&
	    !atomic_load(&stop) && post_rx(e, (unsigned)(c->ctx - e->rx)))
		atomic_fetch_add(&errors, 1);
}

static const struct fab_ep_ops a_ops = { a_cqe, cm, tx_ready, closed };
static const struct fab_ep_ops b_ops = { b_cqe, cm, tx_ready, closed };
static const struct fab_ep_ops s_ops = { srv_cqe, cm, tx_ready, closed };

static unsigned srv_loop(void)
{
	return rtrs__fab_nloops() > 1 ? 1 : 0;
}

static void connreq(void *ctx, struct fab_connreq *req, const void *data,
		    size_t len)
{
	unsigned i = atomic_load(&nsrv);  /* only this loop writes it */
	struct end *e = &srv[i < 2 ? i : 0];

	(void)ctx; (void)data; (void)len;
	if (i >= 2 || rtrs__fab_dom_for_connreq(lpep, req, &e->dom)) {
		rtrs__fab_reject(lpep, req, NULL, 0);
		return;
	}
	if (reg(e, e->dom) ||
	    rtrs__fab_ep_accept_create(e->dom, req, srv_loop(), &s_ops, e,
				       &e->ep)) {
		rtrs__fab_reject(lpep, req, NULL, 0);
		return;
	}
	for (unsigned k = 0; k < SRV_RX; k++)
		post_rx(e, k);
	rtrs__fab_ep_accept(e->ep, NULL, 0);
	atomic_store(&nsrv, i + 1);
}

static const struct fab_pep_ops p_ops = { connreq };

static bool a_up(void)
{
	return atomic_load(&a_clt.connected) && atomic_load(&nsrv) == 1 &&
	       atomic_load(&srv[0].connected);
}

static bool both_up(void)
{
	return atomic_load(&a_clt.connected) && atomic_load(&b_clt.connected) &&
	       atomic_load(&nsrv) == 2 && atomic_load(&srv[0].connected) &&
	       atomic_load(&srv[1].connected);
}

static unsigned probe_target;

static bool probe_back(void)
{
	return atomic_load(&b_recvs) >= probe_target;
}

static bool chain_running(void)
{
	return atomic_load(&chain) >= 100;
}

static int cmp_ul(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

static bool all_closed(void)
{
	return atomic_load(&a_clt.closed) && atomic_load(&b_clt.closed) &&
	       (!srv[0].ep || atomic_load(&srv[0].closed)) &&
	       (!srv[1].ep || atomic_load(&srv[1].closed));
}

int main(void)
{
	struct fab_dom *cdom = NULL, *ldom = NULL;
	char name[64], *port;
	unsigned long lead[NPROBES] = { 0 }, median;

	if (rtrs__fab_engine_get())
		return 77;
	if (rtrs__fab_dom_open(NULL, "127.0.0.1", "0", NULL, true, &ldom) ||
	    rtrs__fab_pep_open(ldom, srv_loop(), &p_ops, NULL, &lpep) ||
	    rtrs__fab_pep_name(lpep, name, sizeof(name)) ||
	    !(port = strrchr(name, ':'))) {
		fprintf(stderr, "no listener\n");
		return 1;
	}
	port++;
	if (rtrs__fab_dom_open(NULL, "127.0.0.1", port, NULL, false, &cdom)) {
		fprintf(stderr, "client domain\n");
		return 1;
	}
	CHECK(reg(&a_clt, cdom) == 0 && reg(&b_clt, cdom) == 0, "registration");
	CHECK(rtrs__fab_ep_create(cdom, 0, NULL, &a_ops, &a_clt, &a_clt.ep) == 0,
	      "endpoint A");
	CHECK(rtrs__fab_ep_create(cdom, 0, NULL, &b_ops, &b_clt, &b_clt.ep) == 0,
	      "endpoint B");
	if (t_failed)
		return 1;
	CHECK(post_rx(&b_clt, 0) == 0, "B's receive");
	CHECK(rtrs__fab_ep_connect(a_clt.ep, NULL, 0) == 0, "connect A");
	/* A first: srv[0] is A's server end, srv[1] B's */
	CHECK(wait_for(a_up), "A connected");
	CHECK(rtrs__fab_ep_connect(b_clt.ep, NULL, 0) == 0, "connect B");
	CHECK(wait_for(both_up), "both connections up");
	CHECK(atomic_load(&a_clt.connected) == 1 &&
	      atomic_load(&b_clt.connected) == 1, "connected");
	if (t_failed)
		goto out;

	/* the chain */
	CHECK(rtrs__fab_post_send(a_clt.ep, a_clt.tx_buf, MSG, a_clt.desc, false,
				  0, &a_clt.tx, true) == 0, "first send");
	CHECK(wait_for(chain_running), "the chain runs");

	for (unsigned i = 0; i < NPROBES && !t_failed; i++) {
		unsigned long before;

		probe_target = i + 1;
		before = atomic_load(&chain);
		CHECK(rtrs__fab_post_send(srv[1].ep, srv[1].tx_buf, MSG,
					  srv[1].desc, false, 0, &srv[1].tx,
					  false) == 0, "probe %u", i);
		CHECK(wait_for(probe_back), "probe %u arrives", i);
		lead[i] = atomic_load(&b_seen) - before;
		printf("probe %u: %lu of the chain's completions before it\n",
		       i, lead[i]);
		CHECK(post_rx(&b_clt, 0) == 0, "B's receive again");
	}
	qsort(lead, NPROBES, sizeof(lead[0]), cmp_ul);
	median = lead[NPROBES / 2];
	CHECK(median <= MAX_LEAD,
	      "the median probe waited for %lu of the chain's completions (at most %d)",
	      median, MAX_LEAD);
	CHECK(atomic_load(&errors) == 0, "%u errors", atomic_load(&errors));
	printf("chain: %lu sends completed\n", atomic_load(&chain));
out:
	atomic_store(&stop, true);
	rtrs__fab_ep_close(a_clt.ep);
	rtrs__fab_ep_close(b_clt.ep);
	rtrs__fab_ep_close(srv[0].ep);
	rtrs__fab_ep_close(srv[1].ep);
	CHECK(wait_for(all_closed), "every endpoint closed");
	rtrs__fab_pep_close(lpep);
	for (unsigned i = 0; i < 2; i++) {
		rtrs__fab_mr_close(srv[i].mr);
		rtrs__fab_dom_put(srv[i].dom);
	}
	rtrs__fab_mr_close(a_clt.mr);
	rtrs__fab_mr_close(b_clt.mr);
	rtrs__fab_dom_put(cdom);
	rtrs__fab_dom_put(ldom);
	rtrs__fab_engine_put();
	return t_finish();
}
