// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Wait objects: the fds the loops and pollers sleep on, whether a
 * provider rearms them (the probe), and whether one may sleep now. */
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

/* ---- wait objects ----
 *
 * The loops and pollers sleep in epoll on the wait fd of each CQ and EQ
 * (fi_control(FI_GETWAIT)), after fi_trywait() said that is safe. That
 * call must also rearm the fd (fi_trywait(3)). With libfabric 1.17's net
 * provider (xnet; the lines below are from its v1.17.0 source) it does not:
 *
 * - A CQ or EQ opened with FI_WAIT_FD gets a util wait object: an epoll
 *   set holding a signal socketpair (prov/util/src/util_wait.c,
 *   ofi_wait_fd_open(): "ofi_wait_fdset_add(wait,
 *   wait->signal.fd[FI_READ_FD], ...)") and the domain's progress epoll
 *   fd, which holds every socket of the domain (prov/net/src/xnet_cq.c,
 *   xnet_cq_add_progress(): "ofi_wait_add_fd(cq->util_cq.wait,
 *   ofi_dynpoll_get_fd(&progress->epoll_fd), ..."; xnet_eq.c,
 *   xnet_eq_monitor_all() adds the fabric's and every domain's).
 * - Every completion and every CM event sets the signal (xnet_cq.c,
 *   xnet_report_success(): "if (cq->wait) cq->wait->signal(cq->wait);";
 *   util_eq.c, ofi_eq_write()).
 * - Only the util wait's wait_try clears it (util_wait.c,
 *   util_wait_fd_try(): "fd_signal_reset(&wait_fd->signal);"), reached
 *   through fi_wait() or ofi_trywait(). tcp's fabric uses ofi_trywait()
 *   (prov/tcp/src/tcpx_fabric.c: ".trywait = ofi_trywait"); xnet's is a
 *   stub (xnet_fabric.c: ".trywait = xnet_trywait"; xnet_progress.c:
 *   "int xnet_trywait(...) { return 0; }").
 *
 * So after the first completion the fd stayed readable for good, epoll
 * never slept, and the loop owning a net endpoint spun at 100% of its CPU
 * (strace: every epoll_wait(..., 100) returned at once with the CQ's and
 * the EQ's cookies; an idle server sat at 94% CPU). fi_cq_sread() cannot
 * clear it either: with timeout 0 it returns before calling fi_wait().
 *
 * What we do, for any provider that behaves so: give each CQ and EQ a
 * wait set of our own (FI_WAIT_SET). Its fd is the same kind of epoll
 * set, and fi_wait(ws, 0) runs util_wait_fd_try() -- clear the signal,
 * then look into the set's CQs and EQs -- and never blocks
 * (util_wait_fd_run() returns -FI_ETIMEDOUT after one clean try).
 *
 * Those wait objects all watch the domain's one progress fd, and any
 * progress call serves every socket of the domain under one lock
 * (xnet.h: "There is a progress instance for each fabric and domain
 * object ... that's where the opened sockets reside"; xnet_cq_readfrom()
 * takes "xnet_cq2_progress(cq)->active_lock"). Endpoints of one domain
 * spread over loops therefore wake every one of those loops for every
 * event, and all but one then queue on that lock and find nothing (QD 1
 * p50 latency was 2-3x tcp's that way). So every endpoint and listener of
 * such a domain runs on one loop (rtrs__ofi_loop_of()), domains taking
 * turns over the loops; that gives up no parallelism the provider had to
 * offer.
 *
 * Whether a provider needs this is measured, not looked up by name:
 * rtrs__ofi_wait_probe() signals a throwaway CQ and asks fi_trywait().
 * tcp rearms its fds (and verbs, from its source) and keeps FI_WAIT_FD
 * and the loops it is given.
 */

/* The wait fd of a throwaway CQ after fi_cq_signal() and a successful
 * "try": readable (1), not (0), or the provider cannot tell (-1). With
 * @ws the CQ is bound to it and the try is fi_wait(ws, 0). */
static int probe_cq(struct fab_dom *d, struct fid_wait *ws)
{
	struct fi_cq_attr ca = { .size = 1, .format = FI_CQ_FORMAT_CONTEXT,
				 .wait_obj = FI_WAIT_FD };
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	struct fid_cq *cq;
	struct fid *f;
	int ret = -1;

	if (ws) {
		ca.wait_obj = FI_WAIT_SET;
		ca.wait_set = ws;
	}
	if (fi_cq_open(d->domain, &ca, &cq, NULL))
		return -1;
	f = &cq->fid;
	if (fi_control(ws ? &ws->fid : f, FI_GETWAIT, &pfd.fd) ||
	    fi_cq_signal(cq))
		goto out;
	fab_progress_begin(d);
	if (ws)
		ret = fi_wait(ws, 0) == -FI_ETIMEDOUT ? 0 : -1;
	else
		ret = fi_trywait(d->fabric, &f, 1) ? -1 : 0;
	fab_progress_end(d);
	if (!ret)
		ret = poll(&pfd, 1, 0) > 0;
out:
	fi_close(&cq->fid);
	return ret;
}

static int ws_open(struct fab_dom *d, struct fid_wait **ws, int *fd)
{
	struct fi_wait_attr wa = { .wait_obj = FI_WAIT_FD };
	int ret = fi_wait_open(d->fabric, &wa, ws);

	if (ret) {
		*ws = NULL;
		return ret;
	}
	return fi_control(&(*ws)->fid, FI_GETWAIT, fd);
}

/* After the CQs and EQs bound to @ws are closed. */
void rtrs__ofi_wait_close(struct fid_wait *ws)
{
	int ret = ws ? fi_close(&ws->fid) : 0;

	if (ret)
		rtrs_err("wait set close: %s",
			 rtrs_strerror(rtrs__ofi_errno(ret)));
}

/* Spreads the domains that keep to one loop over the loops. */
static _Atomic unsigned next_home;

void rtrs__ofi_wait_probe(struct fab_dom *d, bool passive)
{
	struct fid_wait *ws = NULL;
	int fd;

	d->wait_sets = false;
	d->read_rearms = false;
	d->holds_back = !strcmp(d->caps.prov, "tcp") ||
			!strcmp(d->caps.prov, "net");
	if (probe_cq(d, NULL) != 1) {
		/* fi_trywait rearms the fd (or we can't tell) */
		d->read_rearms = !strcmp(d->caps.prov, "tcp");
		return;
	}
	if (!ws_open(d, &ws, &fd) && probe_cq(d, ws) == 0)
		d->wait_sets = true;
	rtrs__ofi_wait_close(ws);
	if (d->wait_sets) {
		/* a listener's domain one loop further: as the core puts the
		 * server's end of connection k on loop k and the client's on
		 * k - 1 (srv.c, clt.c), the two ends of a connection on one
		 * host then run on different CPUs */
		d->home_loop = atomic_fetch_add(&next_home, 1) + passive;
		rtrs_dbg("%s: fi_trywait leaves wait fds readable: wait sets, one loop per domain",
			 d->caps.prov);
	} else {
		rtrs_warn("%s: wait fds are not rearmed; completions wait for the %d ms sweep",
			  d->caps.prov, LOOP_SWEEP_MS);
	}
}

int rtrs__ofi_cq_open(struct fab_dom *d, struct fi_cq_attr *attr,
		      struct fid_cq **cq, struct fid_wait **ws, int *fd)
{
	int ret;

	*ws = NULL;
	if (d->wait_sets) {
		ret = ws_open(d, ws, fd);
		if (ret)
			return rtrs__ofi_errno(ret);
		attr->wait_obj = FI_WAIT_SET;
		attr->wait_set = *ws;
	}
	ret = fi_cq_open(d->domain, attr, cq, NULL);
	if (!ret && !*ws)
		ret = fi_control(&(*cq)->fid, FI_GETWAIT, fd);
	return rtrs__ofi_errno(ret);
}

int rtrs__ofi_eq_open(struct fab_dom *d, struct fi_eq_attr *attr,
		      struct fid_eq **eq, struct fid_wait **ws, int *fd)
{
	int ret;

	*ws = NULL;
	if (d->wait_sets) {
		ret = ws_open(d, ws, fd);
		if (ret)
			return rtrs__ofi_errno(ret);
		attr->wait_obj = FI_WAIT_SET;
		attr->wait_set = *ws;
	}
	ret = fi_eq_open(d->fabric, attr, eq, NULL);
	if (!ret && !*ws)
		ret = fi_control(&(*eq)->fid, FI_GETWAIT, fd);
	return rtrs__ofi_errno(ret);
}

/*
 * May a loop or poller sleep on the wait fd of this CQ or EQ? With a wait
 * set of ours (rtrs__ofi_wait_probe()), fi_wait(ws, 0) does what
 * fi_trywait() should: it clears the set's signal, then reports whether any
 * CQ or EQ in it has entries (running their progress), and never blocks.
 * 0 means entries; -FI_ETIMEDOUT means the fd is rearmed and empty. Any
 * other error lets the caller sleep: the sweep reads everything anyway.
 * True if there is something to read first.
 */
bool rtrs__ofi_busy_fid(struct fab_dom *d, struct fid *f,
			struct fid_wait *ws)
{
	int ret;

	fab_progress_begin(d);
	ret = ws ? fi_wait(ws, 0) : fi_trywait(d->fabric, &f, 1);
	fab_progress_end(d);
	if (!ws)
		return ret != 0;
	if (ret && ret != -FI_ETIMEDOUT)
		rtrs_err_rl("fi_wait: %s", rtrs_strerror(rtrs__ofi_errno(ret)));
	return ret == 0;
}

/*
 * The same for @e's CQ, kept apart from posts as drain_cq() does.
 *
 * On tcp (1.17) a read that found the CQ empty already did what
 * fi_trywait() would: the wait fd is an epoll set of the endpoint's socket
 * and a signal that every completion sets (tcpx_cq.c,
 * tcpx_report_success()), and fi_cq_read() first runs tcpx_progress(),
 * which handles what the socket and the provider's buffer hold and clears
 * the signal it finds set (fd_signal_reset()), then reads the CQ. So an
 * empty read leaves no completion unread and the fd readable only for
 * what comes later -- except a message the provider holds back for want
 * of a posted receive, which a receive posted since lets through with no
 * fd to show it (the next progress does). Hence cq_empty: set by an
 * empty read, cleared by a receive posted, and then no second look (an
 * epoll_wait() of the provider's, per IO on a poller's QD 1 path).
 */
bool rtrs__ofi_busy_cq(struct fab_ep *e)
{
	bool busy;

	rtrs__lock(&e->post_lock);
	if (e->cq_empty && e->dom->read_rearms) {
		rtrs__unlock(&e->post_lock);
		return false;
	}
	busy = rtrs__ofi_busy_fid(e->dom, &e->cq->fid, e->cq_ws);
	rtrs__unlock(&e->post_lock);
	return busy;
}
