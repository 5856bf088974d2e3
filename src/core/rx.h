/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A connection's receive ring, shared by both roles: @n receive buffers of
 * one size in one allocation (registered where the provider wants local
 * registrations), each with its operation context (kind CTX_RX, owner the
 * struct rtrs_rx) and a pointer back to the role's connection.  A receive
 * completes into the role's handler, which reposts the same buffer.
 *
 * Threads: set up and freed by the thread that owns the connection's
 * set-up and teardown; rtrs__rx_repost() on the progress thread that
 * reaped the receive.  No lock of its own.
 */
#ifndef RTRS_CORE_RX_H
#define RTRS_CORE_RX_H

#include <stddef.h>

#include "fabric/fabric.h"

struct rtrs_rx {
	struct fab_opctx ctx;           /* kind CTX_RX, owner this */
	void *con;                      /* the role's connection */
	void *buf;
	size_t len;                     /* what a receive may fill */
};

struct rtrs_rx_ring {
	struct rtrs_rx *rx;
	unsigned n;
	char *mem;
	struct fab_mr *mr;              /* NULL unless the provider asks */
};

/* Allocate @n buffers of @len bytes (plus the fabric's room) for
 * connection @con on @dom; 0 or -ENOMEM, or the registration's -errno.
 * On error the ring holds what it got: rtrs__rx_ring_free() frees it. */
int rtrs__rx_ring_init(struct rtrs_rx_ring *r, struct fab_dom *dom,
		       void *con, unsigned n, size_t len);

/* Post every buffer on @ep: 0 or the first post's -errno. */
int rtrs__rx_ring_post(struct rtrs_rx_ring *r, struct fab_ep *ep);

/* Post @rx again after its message was handled: 0 or -errno (-ENOTCONN
 * once the endpoint is going away). */
int rtrs__rx_repost(const struct rtrs_rx_ring *r, struct fab_ep *ep,
		    struct rtrs_rx *rx);

/* Free the ring (the endpoint is closed: no receive is posted); the ring
 * is empty again, and freeing it twice is harmless. */
void rtrs__rx_ring_free(struct rtrs_rx_ring *r);

#endif
