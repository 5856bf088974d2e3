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
#include "harness.h"
#include "fab_ends.h"

#define NPROBES 8
/* chain completions the median probe may wait: a few now; with the old
 * loop every probe waited at least 256 (the rest of A's budget, then A's
 * whole next one before B, whose readiness that loop learned only
 * between passes: A is ahead of B in the loop's list, made first). The
 * median, because on a loaded machine the kernel may deliver one probe
 * late (68 seen once while CI ran beside it). */
#define MAX_LEAD 32
static struct fab_t_end a_clt, b_clt, srv[2];
static _Atomic unsigned nsrv;
static struct fab_pep *lpep;
static _Atomic bool stop;
static _Atomic unsigned long chain;     /* A's send completions */
static _Atomic unsigned long b_seen = 0; /* chain count at B's receive */
static _Atomic unsigned b_recvs;
static _Atomic unsigned errors;

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
	struct fab_t_end *e = ctx;

	if (cqe_failed(c) || !(c->flags & FAB_CQE_TX))
		return;
	atomic_fetch_add(&chain, 1);
	if (!atomic_load(&stop) && fab_t_send(e, true))
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
	struct fab_t_end *e = ctx;

	if (!cqe_failed(c) && (c->flags & FAB_CQE_RECV) &&
	    !atomic_load(&stop) && fab_t_post_rx(e, fab_t_rx_index(e, c)))
		atomic_fetch_add(&errors, 1);
}

static const struct fab_ep_ops a_ops = {
	a_cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};
static const struct fab_ep_ops b_ops = {
	b_cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};
static const struct fab_ep_ops s_ops = {
	srv_cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};

static void connreq(void *ctx, struct fab_connreq *req, const void *data,
		    size_t len)
{
	(void)ctx; (void)data; (void)len;
	fab_t_accept_next(lpep, req, srv, 2, &nsrv, &s_ops, FAB_T_NRX);
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
	unsigned long lead[NPROBES] = { 0 }, median;

	if (rtrs__fab_engine_get())
		return 77;
	if (fab_t_listen(&p_ops, &ldom, &lpep, &cdom))
		return 1;
	CHECK(fab_t_reg(&a_clt, cdom) == 0 && fab_t_reg(&b_clt, cdom) == 0,
	      "registration");
	CHECK(rtrs__fab_ep_create(cdom, 0, NULL, &a_ops, &a_clt, &a_clt.ep) == 0,
	      "endpoint A");
	CHECK(rtrs__fab_ep_create(cdom, 0, NULL, &b_ops, &b_clt, &b_clt.ep) == 0,
	      "endpoint B");
	if (t_failed)
		return 1;
	CHECK(fab_t_post_rx(&b_clt, 0) == 0, "B's receive");
	CHECK(rtrs__fab_ep_connect(a_clt.ep, NULL, 0) == 0, "connect A");
	/* A first: srv[0] is A's server end, srv[1] B's */
	CHECK(fab_t_wait_for(a_up), "A connected");
	CHECK(rtrs__fab_ep_connect(b_clt.ep, NULL, 0) == 0, "connect B");
	CHECK(fab_t_wait_for(both_up), "both connections up");
	CHECK(atomic_load(&a_clt.connected) == 1 &&
	      atomic_load(&b_clt.connected) == 1, "connected");
	if (t_failed)
		goto out;

	/* the chain */
	CHECK(fab_t_send(&a_clt, true) == 0, "first send");
	CHECK(fab_t_wait_for(chain_running), "the chain runs");

	for (unsigned i = 0; i < NPROBES && !t_failed; i++) {
		unsigned long before;

		probe_target = i + 1;
		before = atomic_load(&chain);
		CHECK(fab_t_send(&srv[1], false) == 0, "probe %u", i);
		CHECK(fab_t_wait_for(probe_back), "probe %u arrives", i);
		lead[i] = atomic_load(&b_seen) - before;
		printf("probe %u: %lu of the chain's completions before it\n",
		       i, lead[i]);
		CHECK(fab_t_post_rx(&b_clt, 0) == 0, "B's receive again");
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
	CHECK(fab_t_wait_for(all_closed), "every endpoint closed");
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
