// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* A connection's receive ring, both roles (rx.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/rx.h"

int rtrs__rx_ring_init(struct rtrs_rx_ring *r, struct fab_dom *dom,
		       void *con, unsigned n, size_t len)
{
	size_t stride = len + FAB_MSG_ROOM;
	int ret;

	memset(r, 0, sizeof(*r));
	r->rx = calloc(n, sizeof(*r->rx));
	r->mem = calloc(n, stride);
	if (!r->rx || !r->mem)
		return -ENOMEM;
	if (rtrs__fab_dom_caps(dom)->mr_local) {
		ret = rtrs__fab_mr_reg(dom, r->mem, (size_t)n * stride,
				       FAB_ACC_LOCAL, &r->mr);
		if (ret)
			return ret;
	}
	r->n = n;
	for (unsigned i = 0; i < n; i++) {
		r->rx[i].con = con;
		r->rx[i].buf = r->mem + (size_t)i * stride;
		r->rx[i].len = len;
		r->rx[i].ctx.owner = &r->rx[i];
		r->rx[i].ctx.kind = CTX_RX;
	}
	return 0;
}

int rtrs__rx_repost(const struct rtrs_rx_ring *r, struct fab_ep *ep,
		    struct rtrs_rx *rx)
{
	return rtrs__fab_post_recv(ep, rx->buf, rx->len,
				   rtrs__fab_mr_desc(r->mr), &rx->ctx);
}

int rtrs__rx_ring_post(struct rtrs_rx_ring *r, struct fab_ep *ep)
{
	for (unsigned i = 0; i < r->n; i++) {
		int ret = rtrs__rx_repost(r, ep, &r->rx[i]);

		if (ret)
			return ret;
	}
	return 0;
}

void rtrs__rx_ring_free(struct rtrs_rx_ring *r)
{
	rtrs__fab_mr_close(r->mr);
	free(r->rx);
	free(r->mem);
	memset(r, 0, sizeof(*r));
}
