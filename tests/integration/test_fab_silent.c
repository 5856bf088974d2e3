// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Sends without a completion (src/fabric/ofi/swrma.c, "Silent sends"): on
 * tcp and net a send the caller asked no completion for goes out without
 * one (short ones copied by the provider, fi_inject(); the others posted
 * without FI_COMPLETION), and its frame header is freed by the next
 * completion of the endpoint, which completes every send posted before
 * it.
 *
 * One connection; the client posts NMSG unsignalled messages, short and
 * long in turn (several times the endpoint's frame headers), then one
 * signalled message. The server checks every message's bytes and order.
 * What must hold: every message arrives intact and in order, the client
 * is told of the last send only (an unsignalled send has no completion),
 * and the client never waits for a header for good: if a completion did
 * not free the silent sends before it, the headers would run out after
 * a thousand sends and every post from then on say -EAGAIN.
 */
#include "fabric/ofi/ofi.h"
#include "harness.h"
#include "fab_ends.h"

#define NMSG 6000u
#define SHORT 16u               /* frame 40 bytes: copied by the provider */
#define LONG 1000u              /* a frame of its own header */
#define NBUF 32u                /* the client's message buffers */
#define SRV_NRX 16u

/* an end with room for long messages; t first: the connection
 * callbacks of fab_ends.h take it for a struct fab_t_end */
struct big_end {
	struct fab_t_end t;
	struct fab_opctx txc[NBUF + 1], rxc[SRV_NRX];
	uint8_t tx[NBUF + 1][LONG + FAB_MSG_ROOM];
	uint8_t rx[SRV_NRX][LONG + FAB_MSG_ROOM];
};

static struct big_end clt, srv;
static _Atomic unsigned nsrv;
static struct fab_pep *lpep;
static _Atomic bool stop;
static _Atomic unsigned got, bad, errors, clt_tx, last_tx;

static size_t msg_len(unsigned i)
{
	return i % 2 ? LONG : SHORT;
}

/* message @i: its index, then bytes that depend on it */
static void msg_fill(uint8_t *b, unsigned i)
{
	size_t n = msg_len(i);

	memcpy(b, &i, sizeof(i));
	for (size_t k = sizeof(i); k < n; k++)
		b[k] = (uint8_t)(i * 7 + k);
}

static bool msg_ok(const uint8_t *b, size_t len, unsigned i)
{
	unsigned v;
	size_t n = msg_len(i);

	if (len != n)
		return false;
	memcpy(&v, b, sizeof(v));
	if (v != i)
		return false;
	for (size_t k = sizeof(i); k < n; k++)
		if (b[k] != (uint8_t)(i * 7 + k))
			return false;
	return true;
}

static int big_reg(struct big_end *e, struct fab_dom *d)
{
	return fab_t_reg_over(&e->t, d, e, sizeof(*e));
}

static int srv_post_rx(unsigned k)
{
	return rtrs__fab_post_recv(srv.t.ep, srv.rx[k], LONG, srv.t.desc,
				   &srv.rxc[k]);
}

static void clt_cqe(void *ctx, const struct fab_cqe *c)
{
	(void)ctx;
	if (c->err) {
		if (!atomic_load(&stop))
			atomic_fetch_add(&errors, 1);
		return;
	}
	if (c->flags & FAB_CQE_TX) {
		atomic_fetch_add(&clt_tx, 1);
		if (c->ctx == &clt.txc[NBUF])
			atomic_fetch_add(&last_tx, 1);
	}
}

/* the server: check each message, in order, and receive again */
static void srv_cqe(void *ctx, const struct fab_cqe *c)
{
	unsigned k, i = atomic_load(&got);

	(void)ctx;
	if (c->err) {
		if (!atomic_load(&stop))
			atomic_fetch_add(&errors, 1);
		return;
	}
	if (!(c->flags & FAB_CQE_RECV))
		return;
	k = (unsigned)(c->ctx - srv.rxc);
	if (i < NMSG ? !msg_ok(srv.rx[k], c->len, i)
		     : c->len != SHORT || srv.rx[k][0] != 0xee)
		atomic_fetch_add(&bad, 1);
	atomic_store(&got, i + 1);
	if (!atomic_load(&stop) && srv_post_rx(k))
		atomic_fetch_add(&errors, 1);
}

static const struct fab_ep_ops c_ops = {
	clt_cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};
static const struct fab_ep_ops s_ops = {
	srv_cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};

static void connreq(void *ctx, struct fab_connreq *req, const void *data,
		    size_t len)
{
	(void)ctx; (void)data; (void)len;
	if (atomic_load(&nsrv) ||
	    rtrs__fab_dom_for_connreq(lpep, req, &srv.t.dom) ||
	    big_reg(&srv, srv.t.dom) ||
	    rtrs__fab_ep_accept_create(srv.t.dom, req, fab_t_srv_loop(), &s_ops,
				       &srv, &srv.t.ep)) {
		rtrs__fab_reject(lpep, req, NULL, 0);
		return;
	}
	for (unsigned k = 0; k < SRV_NRX; k++)
		srv_post_rx(k);
	rtrs__fab_ep_accept(srv.t.ep, NULL, 0);
	atomic_store(&nsrv, 1);
}

static const struct fab_pep_ops p_ops = { connreq };

static bool up(void)
{
	return atomic_load(&clt.t.connected) && atomic_load(&nsrv) &&
	       atomic_load(&srv.t.connected);
}

static unsigned want;

static bool arrived(void)
{
	return atomic_load(&got) >= want || atomic_load(&errors);
}

static bool last_told(void)
{
	return atomic_load(&last_tx) > 0;
}

static bool all_closed(void)
{
	return atomic_load(&clt.t.closed) &&
	       (!srv.t.ep || atomic_load(&srv.t.closed));
}

/* Post the message in buffer @b; -EAGAIN (headers all in flight) is
 * waited out for at most 20 s, the bound against a hang. */
static int post(unsigned b, size_t len, bool signaled)
{
	for (unsigned tries = 0; tries < 20000; tries++) {
		int r = rtrs__fab_post_send(clt.t.ep, clt.tx[b], len, clt.t.desc,
					    false, 0, &clt.txc[b], signaled);

		if (r != -EAGAIN)
			return r;
		t_sleep_ms(1);
	}
	return -EAGAIN;
}

int main(void)
{
	struct fab_dom *cdom = NULL, *ldom = NULL;
	unsigned i, busy = 0;
	unsigned long cqes = 0;
	int r = 0;

	if (rtrs__fab_engine_get())
		return 77;
	if (fab_t_listen(&p_ops, &ldom, &lpep, &cdom))
		return 1;
	CHECK(big_reg(&clt, cdom) == 0, "registration");
	CHECK(rtrs__fab_ep_create(cdom, 0, NULL, &c_ops, &clt, &clt.t.ep) == 0,
	      "endpoint");
	if (t_failed)
		return 1;
	CHECK(rtrs__fab_ep_connect(clt.t.ep, NULL, 0) == 0, "connect");
	CHECK(fab_t_wait_for(up), "connected");
	CHECK(atomic_load(&clt.t.connected) == 1, "connected, not failed");
	if (t_failed)
		goto out;

	for (i = 0; i < NMSG && !t_failed; i++) {
		unsigned b = i % NBUF;

		/* buffer b held message i - NBUF: reuse it once that one
		 * arrived (nothing else tells an unsignalled send's end) */
		want = i + 1 > NBUF ? i + 1 - NBUF : 0;
		CHECK(fab_t_wait_for(arrived), "message %u arrives", want - 1);
		msg_fill(clt.tx[b], i);
		r = post(b, msg_len(i), false);
		CHECK(r == 0, "send %u: %s", i, strerror(-r));
	}
	clt.tx[NBUF][0] = 0xee;
	CHECK(post(NBUF, SHORT, true) == 0, "the signalled send");
	want = NMSG + 1;
	CHECK(fab_t_wait_for(arrived), "every message arrives (%u of %u)",
	      atomic_load(&got), NMSG + 1);
	CHECK(fab_t_wait_for(last_told), "the signalled send completes");
	CHECK(atomic_load(&got) == NMSG + 1, "%u messages, sent %u",
	      atomic_load(&got), NMSG + 1);
	CHECK(atomic_load(&bad) == 0, "%u messages wrong or out of order",
	      atomic_load(&bad));
	CHECK(atomic_load(&clt_tx) == 1,
	      "%u send completions (the signalled send's only)",
	      atomic_load(&clt_tx));
	CHECK(atomic_load(&errors) == 0, "%u errors", atomic_load(&errors));
	CHECK(atomic_load(&clt.t.down) == 0 && atomic_load(&srv.t.down) == 0,
	      "the connection went down");
	/* the last completion freed every header before it; and most sends
	 * had no completion of the provider's (one in 65 long ones where
	 * the endpoint has 256 headers: a quarter go silent, then one that
	 * has a completion; the bound allows twice that) */
	rtrs__ofi_swr_tx_state(clt.t.ep, &busy, &cqes);
	if (rtrs__fab_dom_caps(cdom)->sw_rma) {
		CHECK(busy == 0, "%u frame headers still held", busy);
		CHECK(cqes <= NMSG / 2 / 32 + 1,
		      "%lu send completions of the provider's for %u sends",
		      cqes, NMSG + 1);
	}
	printf("%u messages (%u short, %u long) and one signalled: %u arrived, %u wrong, %u send completions (the provider's: %lu), %u headers held\n",
	       NMSG, NMSG / 2, NMSG / 2, atomic_load(&got), atomic_load(&bad),
	       atomic_load(&clt_tx), cqes, busy);
out:
	atomic_store(&stop, true);
	rtrs__fab_ep_close(clt.t.ep);
	rtrs__fab_ep_close(srv.t.ep);
	CHECK(fab_t_wait_for(all_closed), "every endpoint closed");
	rtrs__fab_pep_close(lpep);
	rtrs__fab_mr_close(srv.t.mr);
	rtrs__fab_dom_put(srv.t.dom);
	rtrs__fab_mr_close(clt.t.mr);
	rtrs__fab_dom_put(cdom);
	rtrs__fab_dom_put(ldom);
	rtrs__fab_engine_put();
	return t_finish();
}
