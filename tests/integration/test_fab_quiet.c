// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Quiet endpoints (src/fabric/ofi/poller.c and loop.c): a CQ or EQ found
 * empty before a sleep is not checked again, and a poller does not read
 * it, until its wait fd shows readable. Whatever gives it work must end
 * that.
 *
 * Poller: a message arriving while the poller sleeps (the sleep's
 * report), one arriving while the application reads without sleeping
 * (the poller's look at its fds), and a send posted to it (its completion
 * signals the fd). Loop: a message, a burst of them (several in one
 * socket read, the data tcp keeps in user space), a send posted to it
 * from another thread, and at the end the peer's close (the EQ's event).
 * Both: messages held back for want of a receive (more than the end has
 * posted; tcp and net keep the rest in their buffer, where no fd shows
 * it), each let through by one receive posted to the quiet endpoint.
 *
 * The sweeps (100 ms), which would hide a missed wake-up as a delay, are
 * off (rtrs__ofi_poller_no_sweep(), rtrs__ofi_loops_no_sweep()): a missed
 * one never completes, and the round fails after its bound. Three
 * connections on one poller and three on loop 0, each round made quiet
 * first, then one kind of work on one of them.
 */
#include "fabric/ofi/ofi.h"
#include "harness.h"
#include "fab_ends.h"

#define NEP 3                   /* per phase: [0, NEP) poller, then loop */
#define KINDS 4
#define ROUNDS (KINDS * NEP * 4) /* each kind on each endpoint, 4 times */
#define NRX 4                   /* receives each end keeps posted */
#define HOLD 24                 /* messages of a held-back round */

static struct fab_t_end clt[2 * NEP], srv[2 * NEP];
static _Atomic unsigned nsrv;
static struct fab_pep *lpep;
static struct fab_poller *pl;
static _Atomic bool stop;
static _Atomic unsigned errors;
static struct fab_t_end *_Atomic hold;  /* receives nothing again */

/* both sides: count, and receive again */
static void cqe(void *ctx, const struct fab_cqe *c)
{
	struct fab_t_end *e = ctx;

	if (c->err) {
		/* receives flushed at the close round (without software
		 * RMA the provider's own reach us) are no error */
		if (!atomic_load(&stop) && c->err != -ECANCELED)
			atomic_fetch_add(&errors, 1);
		return;
	}
	if (c->flags & FAB_CQE_TX)
		atomic_fetch_add(&e->tx, 1);
	if (!(c->flags & FAB_CQE_RECV))
		return;
	atomic_fetch_add(&e->rx, 1);
	if (e == atomic_load(&hold))
		return;
	if (!atomic_load(&stop) && fab_t_post_rx(e, fab_t_rx_index(e, c)))
		atomic_fetch_add(&errors, 1);
}

static const struct fab_ep_ops ops = {
	cqe, fab_t_cm, fab_t_tx_ready, fab_t_closed
};

static void connreq(void *ctx, struct fab_connreq *req, const void *data,
		    size_t len)
{
	(void)ctx; (void)data; (void)len;
	fab_t_accept_next(lpep, req, srv, 2 * NEP, &nsrv, &ops, NRX);
}

static const struct fab_pep_ops p_ops = { connreq };

static unsigned up_target;

static bool up(void)
{
	unsigned i = up_target;

	return atomic_load(&clt[i].connected) && atomic_load(&nsrv) == i + 1 &&
	       atomic_load(&srv[i].connected);
}

static bool all_closed(void)
{
	for (unsigned i = 0; i < 2 * NEP; i++)
		if (!atomic_load(&clt[i].closed) ||
		    (srv[i].ep && !atomic_load(&srv[i].closed)))
			return false;
	return true;
}

/* 20 s at most; with @sleep the poller sleeps between reads, else the
 * thread does (the poller then looks at its fds itself) */
static bool drive(_Atomic unsigned *cnt, unsigned target, bool sleep)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rtrs__fab_poller_progress(pl);
		if (atomic_load(cnt) >= target)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 20)
			return false;
		if (sleep)
			rtrs__fab_poller_wait(pl, 100);
		else
			t_sleep_ms(1);
	}
}

/* the loop reads it: 20 s at most */
static bool wait_count(_Atomic unsigned *cnt, unsigned target)
{
	for (unsigned i = 0; i < 20000 && atomic_load(cnt) < target; i++)
		t_sleep_ms(1);
	return atomic_load(cnt) >= target;
}

/* HOLD messages from @s to @c, which takes NRX, then one more for each
 * receive posted while it is quiet; its NRX receives posted again after.
 * 0, or the number of the message that never came. */
static unsigned held_back(struct fab_t_end *s, struct fab_t_end *c,
			  bool poller)
{
	unsigned rx = atomic_load(&c->rx);

	atomic_store(&hold, c);
	for (unsigned m = 0; m < HOLD; m++)
		if (fab_t_send(s, false))
			return m + 1;
	for (unsigned m = NRX; m <= HOLD; m++) {
		if (m > NRX) {
			/* quiet first, then one receive */
			if (poller) {
				rtrs__fab_poller_progress(pl);
				rtrs__fab_poller_wait(pl, 1);
			} else {
				t_sleep_ms(2);
			}
			if (fab_t_post_rx(c, m % NRX))
				return m;
		}
		if (!(poller ? drive(&c->rx, rx + m, true)
			     : wait_count(&c->rx, rx + m)))
			return m;
	}
	atomic_store(&hold, NULL);
	for (unsigned k = 0; k < NRX; k++)
		if (fab_t_post_rx(c, k))
			return HOLD;
	return 0;
}

int main(void)
{
	static const char *const kind[] = {
		"arrives while the poller sleeps",
		"arrives while the application reads",
		"a send posted to it completes",
		"",
	};
	static const char *const lkind[] = {
		"a message arrives",
		"a burst of messages arrives",
		"a send posted from another thread completes",
		"",
	};
	struct fab_dom *cdom = NULL, *ldom = NULL;
	bool sclosed[2 * NEP] = { false };

	if (rtrs__fab_engine_get())
		return 77;
	if (fab_t_listen(&p_ops, &ldom, &lpep, &cdom))
		return 1;
	if (!strcmp(rtrs__fab_dom_caps(ldom)->prov, "rdma"))
		return 77;      /* the ofi backend's pollers only */
	if (rtrs__fab_poller_create(rtrs__fab_dom_caps(cdom)->prov, &pl)) {
		fprintf(stderr, "poller\n");
		return 1;
	}
	rtrs__ofi_poller_no_sweep(pl);
	rtrs__ofi_loops_no_sweep();
	for (unsigned i = 0; i < 2 * NEP && !t_failed; i++) {
		CHECK(fab_t_reg(&clt[i], cdom) == 0, "registration %u", i);
		CHECK(rtrs__fab_ep_create(cdom, 0, i < NEP ? pl : NULL, &ops,
					  &clt[i], &clt[i].ep) == 0,
		      "endpoint %u", i);
		for (unsigned k = 0; k < NRX && !t_failed; k++)
			CHECK(fab_t_post_rx(&clt[i], k) == 0, "receive %u", i);
		/* one at a time: srv[i] is clt[i]'s server end */
		up_target = i;
		CHECK(rtrs__fab_ep_connect(clt[i].ep, NULL, 0) == 0,
		      "connect %u", i);
		CHECK(fab_t_wait_for(up) && atomic_load(&clt[i].connected) == 1,
		      "connection %u up", i);
	}

	for (unsigned r = 0; r < ROUNDS && !t_failed; r++) {
		unsigned i = r % NEP, k = (r / NEP) % KINDS, m;
		struct fab_t_end *s = &srv[i], *c = &clt[i];
		unsigned rx = atomic_load(&c->rx), tx = atomic_load(&c->tx);

		/* quiet: every endpoint checked empty before a sleep */
		rtrs__fab_poller_progress(pl);
		rtrs__fab_poller_wait(pl, 1);
		if (k == 3) {
			m = held_back(s, c, true);
			CHECK(m == 0,
			      "round %u: message %u of %u held back for a receive, on quiet endpoint %u: never read after its receive was posted",
			      r, m, HOLD, i);
		} else if (k < 2) {
			CHECK(fab_t_send(s, false) == 0,
			      "round %u: send", r);
			CHECK(drive(&c->rx, rx + 1, k == 0),
			      "round %u: a message to quiet endpoint %u that %s was never read",
			      r, i, kind[k]);
		} else {
			CHECK(fab_t_send(c, true) == 0,
			      "round %u: send", r);
			CHECK(drive(&c->tx, tx + 1, true),
			      "round %u: on quiet endpoint %u, %s: never read",
			      r, i, kind[k]);
		}
	}
	printf("poller: %u rounds\n", ROUNDS);

	for (unsigned r = 0; r < ROUNDS && !t_failed; r++) {
		unsigned i = NEP + r % NEP, k = (r / NEP) % KINDS, m;
		struct fab_t_end *s = &srv[i], *c = &clt[i];
		unsigned rx = atomic_load(&c->rx), tx = atomic_load(&c->tx);
		unsigned n = k == 1 ? NRX : 1;

		t_sleep_ms(5);  /* quiet: the loop checked all and sleeps */
		if (k == 3) {
			m = held_back(s, c, false);
			CHECK(m == 0,
			      "loop round %u: message %u of %u held back for a receive, on quiet endpoint %u: never read after its receive was posted",
			      r, m, HOLD, i);
		} else if (k < 2) {
			for (unsigned j = 0; j < n && !t_failed; j++)
				CHECK(fab_t_send(s, false) == 0,
				      "round %u: send %u", r, j);
			CHECK(wait_count(&c->rx, rx + n),
			      "loop round %u: quiet endpoint %u, %s: %u of %u read",
			      r, i, lkind[k], atomic_load(&c->rx) - rx, n);
		} else {
			CHECK(fab_t_send(c, true) == 0, "round %u: send", r);
			CHECK(wait_count(&c->tx, tx + 1),
			      "loop round %u: quiet endpoint %u, %s: never read",
			      r, i, lkind[k]);
		}
	}
	/* the peer's close: the quiet EQ's event */
	t_sleep_ms(5);
	for (unsigned i = NEP; i < 2 * NEP && !t_failed; i++) {
		rtrs__fab_ep_close(srv[i].ep);
		sclosed[i] = true;
		CHECK(wait_count(&clt[i].down, 1),
		      "loop endpoint %u: the peer's close never seen", i);
	}
	printf("loop: %u rounds and %u closes\n", ROUNDS, NEP);
	CHECK(atomic_load(&errors) == 0, "%u errors", atomic_load(&errors));

	atomic_store(&stop, true);
	for (unsigned i = 0; i < 2 * NEP; i++) {
		if (clt[i].ep)
			rtrs__fab_ep_close(clt[i].ep);
		if (srv[i].ep && !sclosed[i])
			rtrs__fab_ep_close(srv[i].ep);
	}
	CHECK(fab_t_wait_for(all_closed), "every endpoint closed");
	rtrs__fab_pep_close(lpep);
	for (unsigned i = 0; i < 2 * NEP; i++) {
		rtrs__fab_mr_close(srv[i].mr);
		rtrs__fab_dom_put(srv[i].dom);
		rtrs__fab_mr_close(clt[i].mr);
	}
	rtrs__fab_poller_destroy(pl);
	rtrs__fab_dom_put(cdom);
	rtrs__fab_dom_put(ldom);
	rtrs__fab_engine_put();
	return t_finish();
}
