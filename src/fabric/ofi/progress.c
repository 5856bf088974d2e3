// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* What a loop or a poller runs for one endpoint or listener: reading its
 * CQ and EQ, a listener's EQ (and shedding at the open-file limit; both
 * EQs are read by eq_next()), the transmit-ready call, and the end of a
 * closed endpoint. */
#include "ofi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

/* @rx_cq_data: the provider's remote writes with immediate consume a
 * posted receive (verbs), whose context the entry carries: that receive
 * completed too, and is reported as one (FAB_CQE_RECV | FAB_CQE_RMA_IN). */
static void to_cqe(const struct fi_cq_data_entry *e, bool rx_cq_data,
		   struct fab_cqe *c)
{
	c->ctx = e->op_context;
	c->flags = 0;
	c->err = 0;
	c->len = (uint32_t)e->len;
	c->imm = (uint32_t)e->data;
	if (e->flags & FI_RECV)
		c->flags |= FAB_CQE_RECV;
	if (e->flags & FI_REMOTE_CQ_DATA)
		c->flags |= FAB_CQE_IMM;
	if (e->flags & FI_REMOTE_WRITE) {
		c->flags |= FAB_CQE_RMA_IN;
		if (rx_cq_data && c->ctx)
			c->flags |= FAB_CQE_RECV;
	}
	if (!(c->flags & (FAB_CQE_RECV | FAB_CQE_RMA_IN)))
		c->flags |= FAB_CQE_TX;
}

/* Returns the number of entries handled (errors included). */
int rtrs__ofi_drain_cq(struct fab_ep *e, bool flushing)
{
	struct fi_cq_data_entry ent[CQ_BATCH];
	int done = 0;

	/* the answers the core posts from here go as one message per read
	 * (swrma.c, corked answers) */
	if (e->swr && !flushing)
		rtrs__ofi_swr_cork(e);
	while (!done || flushing) {
		ssize_t n;

		/* software RMA: frames the core could not take before */
		if (e->swr)
			rtrs__ofi_swr_deliver(e);

		/* progress runs inside fi_cq_read: keep it apart from posts on
		 * the same endpoint (tcp and net 1.17 lose or corrupt
		 * operations when both run at once, FI_THREAD_SAFE or not) */
		rtrs__lock(&e->post_lock);
		fab_progress_begin(e->dom);
		n = fi_cq_read(e->cq, ent, CQ_BATCH);
		fab_progress_end(e->dom);
		e->cq_empty = n == -FI_EAGAIN;
		rtrs__unlock(&e->post_lock);

		if (n > 0) {
			for (ssize_t i = 0; i < n; i++) {
				struct fab_cqe c;

				to_cqe(&ent[i], e->dom->caps.rx_cq_data, &c);
				if (e->swr) {
					rtrs__ofi_swr_cqe(e, &c, flushing);
					continue;
				}
				if (!rtrs__ofi_trl_cqe(e, &c))
					continue;
				if (e->dom->caps.msg_room &&
				    (c.flags & FAB_CQE_RECV))
					rtrs__ofi_trl_rx(&c);
				if ((c.flags & (FAB_CQE_RECV | FAB_CQE_RMA_IN)) &&
				    rtrs__fab_fault_rx())
					continue;
				e->ops->cqe(e->ctx, &c);
			}
			if (e->swr && !flushing)
				rtrs__ofi_swr_push(e);
			done += (int)n;
			continue;
		}
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee;
			struct fab_cqe c = { 0 };

			memset(&ee, 0, sizeof(ee));
			rtrs__lock(&e->post_lock);
			fab_progress_begin(e->dom);
			n = fi_cq_readerr(e->cq, &ee, 0);
			fab_progress_end(e->dom);
			rtrs__unlock(&e->post_lock);
			if (n < 1)
				break;
			c.ctx = ee.op_context;
			c.err = rtrs__ofi_errno(ee.err ? ee.err : FI_EIO);
			if (ee.flags & FI_RECV)
				c.flags |= FAB_CQE_RECV;
			else
				c.flags |= FAB_CQE_TX;
			if (e->swr) {
				rtrs__ofi_swr_cqe(e, &c, flushing);
				done++;
				continue;
			}
			rtrs__ofi_trl_cqe(e, &c);
			e->ops->cqe(e->ctx, &c);
			done++;
			continue;
		}
		break;
	}
	if (e->swr && !flushing)
		rtrs__ofi_swr_uncork(e);
	return done;
}

/* A connection-manager event as fi_eq_read() gives it, with room for the
 * private data that comes with it. */
union eq_buf {
	struct fi_eq_cm_entry cm;
	char buf[sizeof(struct fi_eq_cm_entry) + 512];
};

/*
 * The next entry of an endpoint's or a listener's EQ, read as progress
 * (fab_progress_begin()): its size (> 0) with @event and @u filled;
 * -FI_EAVAIL with @ee filled (an error entry); 0 when nothing is to be
 * read now (empty, or an error entry that could not be read); another
 * negative libfabric error if reading failed.
 */
static ssize_t eq_next(struct fab_dom *d, struct fid_eq *eq, uint32_t *event,
		       union eq_buf *u, struct fi_eq_err_entry *ee)
{
	ssize_t n;

	fab_progress_begin(d);
	n = fi_eq_read(eq, event, u, sizeof(*u), 0);
	if (n == -FI_EAVAIL) {
		memset(ee, 0, sizeof(*ee));
		if (fi_eq_readerr(eq, ee, 0) < 1)
			n = 0;
	} else if (n == -FI_EAGAIN) {
		n = 0;
	}
	fab_progress_end(d);
	return n;
}

/* The private data's length in an entry of @n bytes. */
static size_t cm_data_len(ssize_t n)
{
	return (size_t)n > sizeof(struct fi_eq_cm_entry)
		       ? (size_t)n - sizeof(struct fi_eq_cm_entry) : 0;
}

void rtrs__ofi_drain_eq(struct fab_ep *e)
{
	struct fi_eq_err_entry ee;
	union eq_buf u;
	uint32_t event;

	for (;;) {
		ssize_t n = eq_next(e->dom, e->eq, &event, &u, &ee);

		if (!n)
			return;
		if (n == -FI_EAVAIL) {
			int err = rtrs__ofi_errno(ee.err ? ee.err : FI_EIO);

			e->ops->cm(e->ctx,
				   err == -ECONNREFUSED ? FAB_CM_REJECTED
							: FAB_CM_ERROR,
				   err, ee.err_data, ee.err_data_size);
		} else if (n < 0) {
			e->ops->cm(e->ctx, FAB_CM_ERROR, rtrs__ofi_errno((int)n),
				   NULL, 0);
			return;
		} else if (event == FI_CONNECTED) {
			e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, u.cm.data,
				   cm_data_len(n));
		} else if (event == FI_SHUTDOWN) {
			e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
		}
		if (atomic_load(&e->closing))
			return;
	}
}

/*
 * After the provider's progress ran: is the listening socket still
 * readable because accept() fails at the open-file limit (pep.c,
 * find_listen_fd())? Then give up the spare descriptor, take each waiting
 * connection and close it (the client's connect fails at once instead of
 * hanging), and keep a spare again. Nothing is left readable, so the loop
 * sleeps; once descriptors are free the provider accepts again itself.
 */
static void shed_pep(struct fab_pep *p)
{
	struct pollfd pfd = { .fd = p->lfd, .events = POLLIN };
	uint64_t n = 0;
	int fd;

	if (p->lfd < 0 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
		return;
	fd = fcntl(p->reserve >= 0 ? p->reserve : p->lfd, F_DUPFD_CLOEXEC, 0);
	if (fd >= 0) {
		close(fd);      /* not the limit: a connection just came */
		return;
	}
	if (errno != EMFILE && errno != ENFILE)
		return;
	if (p->reserve >= 0) {
		close(p->reserve);
		p->reserve = -1;
	}
	for (;;) {
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN))
			break;
		fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			break;
		close(fd);
		n++;
	}
	p->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n) {
		uint64_t before = atomic_fetch_add(&p->shed, n);

		/* one line per 1024 refused, not one per wakeup */
		if (before / 1024 != (before + n) / 1024 || !before)
			rtrs_warn("listener at the open-file limit: %llu "
				  "connections refused so far",
				  (unsigned long long)(before + n));
	}
}

void rtrs__ofi_drain_pep(struct fab_pep *p)
{
	struct fi_eq_err_entry ee;
	union eq_buf u;
	uint32_t event;

	for (;;) {
		ssize_t n = eq_next(p->dom, p->eq, &event, &u, &ee);

		if (!n) {
			shed_pep(p);
			return;
		}
		if (n == -FI_EAVAIL) {
			rtrs_dbg("listener EQ error %d", ee.err);
			continue;
		}
		if (n < 0)
			return;
		if (event == FI_CONNREQ) {
			struct fab_connreq req = { .info = u.cm.info };

			p->ops->connreq(p->ctx, &req, u.cm.data, cm_data_len(n));
			fi_freeinfo(u.cm.info);
		} else if (u.cm.info) {
			fi_freeinfo(u.cm.info);
		}
	}
}

/* The end of an endpoint, on its loop thread once detached (nothing
 * reads its CQ or EQ any more): close it, flush, tell the owner. */
void rtrs__ofi_ep_close_now(struct fab_ep *e)
{
	/* closing the endpoint flushes its operations into the CQ */
	fi_close(&e->ep->fid);
	e->ep = NULL;
	rtrs__ofi_drain_cq(e, true);
	rtrs__ofi_swr_flush(e);
	if (e->trl_pending && e->trl_ctx) {
		/* a write's notification that never went out */
		struct fab_cqe c = { .ctx = e->trl_ctx, .flags = FAB_CQE_TX,
				     .err = -ECANCELED };

		e->ops->cqe(e->ctx, &c);
	}
	e->ops->closed(e->ctx);
	rtrs__ofi_ep_destroy(e);
}

/* Close every libfabric object of an endpoint that never got attached, or
 * (from the loop) one whose completions have been drained. */
void rtrs__ofi_ep_destroy(struct fab_ep *e)
{
	rtrs__ofi_trl_slots_free(e);
	if (e->ep)
		fi_close(&e->ep->fid);
	e->ep = NULL;
	rtrs__ofi_swr_ep_free(e);       /* its buffers, once nothing lands */
	if (e->cq)
		fi_close(&e->cq->fid);
	if (e->eq)
		fi_close(&e->eq->fid);
	rtrs__ofi_wait_close(e->cq_ws);
	rtrs__ofi_wait_close(e->eq_ws);
	rtrs__lock_destroy(&e->post_lock);
	rtrs__ofi_dom_put(e->dom);
	free(e);
}

/* The transmit-ready call of an endpoint that asked (want_tx, already
 * cleared by the caller): the pending notification of a write first, then
 * ops->tx_ready(). False if the send queue stays full (want_tx is set
 * again). The thread that reads the endpoint's CQ, no lock held. */
bool rtrs__ofi_tx_ready(struct fab_ep *e)
{
	if (rtrs__ofi_trl_flush(e)) {
		atomic_store(&e->want_tx, true);
		return false;
	}
	e->ops->tx_ready(e->ctx);
	return true;
}
