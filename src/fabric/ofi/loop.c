// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Progress threads. One loop per online CPU, pinned to it. A loop owns the
 * CQs and EQs of its endpoints and listeners: it blocks in epoll on their
 * wait fds (after fi_trywait, or fi_wait(ws, 0) on the wait sets some
 * providers need, says that is safe; see "wait objects"; with a bounded
 * timeout), then drains every CQ and EQ it owns and runs the callbacks.
 * The CQ of an endpoint created with a poller is not the loop's: the
 * application reads it through rtrs__fab_poller_progress() (at the end of
 * this file).
 */
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

#define LOOP_SWEEP_MS 100       /* drain everything at least this often */
#define CQ_BATCH 32
#define CQ_BUDGET 256           /* entries per endpoint per pass */

struct fab_loop {
	unsigned idx;
	int cpu;
	pthread_t thr;
	int epfd, evfd;
	pthread_mutex_t lock;
	struct rtrs_list attach, close, pattach, pclose; /* under lock */
	struct rtrs_list eps, peps;     /* loop thread only */
	_Atomic bool stop;
	_Atomic bool woken;
};

static struct {
	pthread_mutex_t lock;
	int ref;
	unsigned n;
	struct fab_loop *loops;
} engine = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Read once at engine start. $RTRS_POLL_US: busy-poll window after a pass
 * that found work, default 0 (always block at once). $RTRS_PIN=0: do not
 * pin the loops. */
static uint64_t poll_ns;
static bool no_pin;

/*
 * A spinner keeps a CPU from every other thread, and a wake-up on an idle
 * vCPU costs more than the round trip it waits for: so spin only while
 * the machine has no more runnable threads than CPUs (the spinner counts
 * itself). The count is /proc/loadavg's (machine-wide, as sched sees it),
 * read at most every SPARE_CHECK_NS per thread: about 2 us a read here.
 * Opened at engine start when $RTRS_POLL_US is set; if it cannot be read,
 * nothing spins.
 */
#define SPARE_CHECK_NS 10000ull
static int loadavg_fd = -1;
static unsigned online_cpus;

static bool cpu_spare(uint64_t now)
{
	static _Thread_local uint64_t checked;
	static _Thread_local bool spare;

	if (now - checked >= SPARE_CHECK_NS) {
		int r = rtrs__nr_running(loadavg_fd);

		spare = r > 0 && (unsigned)r <= online_cpus;
		checked = now;
	}
	return spare;
}

bool rtrs__fab_may_spin(uint64_t since_ns, uint64_t now_ns)
{
	return poll_ns && now_ns - since_ns < poll_ns && cpu_spare(now_ns);
}

static void loadavg_close(void)
{
	if (loadavg_fd >= 0)
		close(loadavg_fd);
	loadavg_fd = -1;
}

struct fab_loop *rtrs__fab_loop(unsigned idx)
{
	return &engine.loops[idx % engine.n];
}

struct fab_loop *rtrs__fab_loop_of(const struct fab_dom *d, unsigned idx)
{
	return rtrs__fab_loop(d->wait_sets ? d->home_loop : idx);
}

unsigned rtrs__fab_nloops(void)
{
	return engine.n;
}

void rtrs__fab_loop_wake(struct fab_loop *l)
{
	uint64_t one = 1;
	bool was = false;

	if (!atomic_compare_exchange_strong(&l->woken, &was, true))
		return;
	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_err_rl("loop %u: eventfd write: %d", l->idx, errno);
}

int rtrs__fab_loop_attach_ep(struct fab_ep *e)
{
	struct fab_loop *l = e->loop;

	pthread_mutex_lock(&l->lock);
	rtrs_list_add_tail(&l->attach, &e->att_node);
	pthread_mutex_unlock(&l->lock);
	rtrs__fab_loop_wake(l);
	return 0;
}

int rtrs__fab_loop_attach_pep(struct fab_pep *p)
{
	struct fab_loop *l = p->loop;

	pthread_mutex_lock(&l->lock);
	rtrs_list_add_tail(&l->pattach, &p->att_node);
	pthread_mutex_unlock(&l->lock);
	rtrs__fab_loop_wake(l);
	return 0;
}

void rtrs__fab_loop_close_ep(struct fab_ep *e)
{
	struct fab_loop *l = e->loop;

	pthread_mutex_lock(&l->lock);
	rtrs_list_add_tail(&l->close, &e->cls_node);
	pthread_mutex_unlock(&l->lock);
	rtrs__fab_loop_wake(l);
}

void rtrs__fab_loop_close_pep(struct fab_pep *p)
{
	struct fab_loop *l = p->loop;

	pthread_mutex_lock(&l->lock);
	rtrs_list_add_tail(&l->pclose, &p->cls_node);
	pthread_mutex_unlock(&l->lock);
	rtrs__fab_loop_wake(l);
}

/* The cookie is the address of an int inside the endpoint or listener:
 * cq_tag, eq_tag. The loop maps it back with container_of. */
static void epoll_add(struct fab_loop *l, int fd, int *cookie)
{
	struct epoll_event ev = { .events = EPOLLIN };

	ev.data.ptr = cookie;
	if (fd >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		rtrs_err("loop %u: epoll add fd %d: %d", l->idx, fd, errno);
}

static void epoll_del(struct fab_loop *l, int fd)
{
	if (fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

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
static int drain_cq(struct fab_ep *e, bool flushing)
{
	struct fi_cq_data_entry ent[CQ_BATCH];
	int done = 0;

	while (done < CQ_BUDGET || flushing) {
		ssize_t n;

		/* software RMA: frames the core could not take before */
		if (e->swr)
			rtrs__fab_swr_deliver(e);

		/* progress runs inside fi_cq_read: keep it apart from posts on
		 * the same endpoint (tcp and net 1.17 lose or corrupt
		 * operations when both run at once, FI_THREAD_SAFE or not) */
		pthread_mutex_lock(&e->post_lock);
		fab_progress_begin(e->dom);
		n = fi_cq_read(e->cq, ent, CQ_BATCH);
		fab_progress_end(e->dom);
		pthread_mutex_unlock(&e->post_lock);

		if (n > 0) {
			for (ssize_t i = 0; i < n; i++) {
				struct fab_cqe c;

				to_cqe(&ent[i], e->dom->caps.rx_cq_data, &c);
				if (e->swr) {
					rtrs__fab_swr_cqe(e, &c, flushing);
					continue;
				}
				if (!rtrs__fab_trl_cqe(e, &c))
					continue;
				if (e->dom->caps.msg_room &&
				    (c.flags & FAB_CQE_RECV))
					rtrs__fab_trl_rx(&c);
				if ((c.flags & (FAB_CQE_RECV | FAB_CQE_RMA_IN)) &&
				    rtrs__fab_fault_rx())
					continue;
				e->ops->cqe(e->ctx, &c);
			}
			done += (int)n;
			continue;
		}
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee;
			struct fab_cqe c = { 0 };

			memset(&ee, 0, sizeof(ee));
			pthread_mutex_lock(&e->post_lock);
			fab_progress_begin(e->dom);
			n = fi_cq_readerr(e->cq, &ee, 0);
			fab_progress_end(e->dom);
			pthread_mutex_unlock(&e->post_lock);
			if (n < 1)
				break;
			c.ctx = ee.op_context;
			c.err = rtrs__fab_errno(ee.err ? ee.err : FI_EIO);
			if (ee.flags & FI_RECV)
				c.flags |= FAB_CQE_RECV;
			else
				c.flags |= FAB_CQE_TX;
			if (e->swr) {
				rtrs__fab_swr_cqe(e, &c, flushing);
				done++;
				continue;
			}
			rtrs__fab_trl_cqe(e, &c);
			e->ops->cqe(e->ctx, &c);
			done++;
			continue;
		}
		break;
	}
	return done;
}

static void drain_eq(struct fab_ep *e)
{
	union {
		struct fi_eq_cm_entry cm;
		char buf[sizeof(struct fi_eq_cm_entry) + 512];
	} u;
	uint32_t event;

	for (;;) {
		ssize_t n;

		fab_progress_begin(e->dom);
		n = fi_eq_read(e->eq, &event, &u, sizeof(u), 0);
		fab_progress_end(e->dom);

		if (n == -FI_EAGAIN)
			return;
		if (n == -FI_EAVAIL) {
			struct fi_eq_err_entry ee;
			int err;

			memset(&ee, 0, sizeof(ee));
			fab_progress_begin(e->dom);
			n = fi_eq_readerr(e->eq, &ee, 0);
			fab_progress_end(e->dom);
			if (n < 1)
				return;
			err = rtrs__fab_errno(ee.err ? ee.err : FI_EIO);
			e->ops->cm(e->ctx,
				   err == -ECONNREFUSED ? FAB_CM_REJECTED
							: FAB_CM_ERROR,
				   err, ee.err_data, ee.err_data_size);
			if (atomic_load(&e->closing))
				return;
			continue;
		}
		if (n < 0) {
			e->ops->cm(e->ctx, FAB_CM_ERROR, rtrs__fab_errno((int)n),
				   NULL, 0);
			return;
		}
		if (event == FI_CONNECTED) {
			size_t dl = (size_t)n > sizeof(u.cm)
					    ? (size_t)n - sizeof(u.cm) : 0;

			e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, u.cm.data, dl);
		} else if (event == FI_SHUTDOWN) {
			e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
		}
		if (atomic_load(&e->closing))
			return;
	}
}

/*
 * After the provider's progress ran: is the listening socket still
 * readable because accept() fails at the open-file limit (fab.c,
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

static void drain_pep(struct fab_pep *p)
{
	union {
		struct fi_eq_cm_entry cm;
		char buf[sizeof(struct fi_eq_cm_entry) + 512];
	} u;
	uint32_t event;

	for (;;) {
		ssize_t n;

		fab_progress_begin(p->dom);
		n = fi_eq_read(p->eq, &event, &u, sizeof(u), 0);
		fab_progress_end(p->dom);

		if (n == -FI_EAGAIN) {
			shed_pep(p);
			return;
		}
		if (n == -FI_EAVAIL) {
			struct fi_eq_err_entry ee;

			memset(&ee, 0, sizeof(ee));
			fab_progress_begin(p->dom);
			fi_eq_readerr(p->eq, &ee, 0);
			fab_progress_end(p->dom);
			rtrs_dbg("listener EQ error %d", ee.err);
			continue;
		}
		if (n < 0)
			return;
		if (event == FI_CONNREQ) {
			struct fab_connreq req = { .info = u.cm.info };
			size_t dl = (size_t)n > sizeof(u.cm)
					    ? (size_t)n - sizeof(u.cm) : 0;

			p->ops->connreq(p->ctx, &req, u.cm.data, dl);
			fi_freeinfo(u.cm.info);
		} else if (u.cm.info) {
			fi_freeinfo(u.cm.info);
		}
	}
}

static void close_ep_now(struct fab_loop *l, struct fab_ep *e)
{
	if (e->poller) {
		/* waits for a thread draining it: afterwards none can */
		pthread_mutex_lock(&e->poller->lock);
		rtrs_list_del(&e->pnode);
		epoll_ctl(e->poller->epfd, EPOLL_CTL_DEL, e->cq_fd, NULL);
		pthread_mutex_unlock(&e->poller->lock);
	}
	if (e->attached) {
		rtrs_list_del(&e->node);
		if (!e->poller)
			epoll_del(l, e->cq_fd);
		epoll_del(l, e->eq_fd);
		e->attached = false;
	}
	/* closing the endpoint flushes its operations into the CQ */
	fi_close(&e->ep->fid);
	e->ep = NULL;
	drain_cq(e, true);
	rtrs__fab_swr_flush(e);
	if (e->trl_pending && e->trl_ctx) {
		/* a write's notification that never went out */
		struct fab_cqe c = { .ctx = e->trl_ctx, .flags = FAB_CQE_TX,
				     .err = -ECANCELED };

		e->ops->cqe(e->ctx, &c);
	}
	e->ops->closed(e->ctx);
	rtrs__fab_ep_destroy(e);
}

static void run_commands(struct fab_loop *l)
{
	struct rtrs_list attach, close, pattach, pclose, *pos, *tmp;

	pthread_mutex_lock(&l->lock);
	rtrs_list_take(&attach, &l->attach);
	rtrs_list_take(&close, &l->close);
	rtrs_list_take(&pattach, &l->pattach);
	rtrs_list_take(&pclose, &l->pclose);
	pthread_mutex_unlock(&l->lock);

	rtrs_list_for_each_safe(pos, tmp, &attach) {
		struct fab_ep *e = container_of(pos, struct fab_ep, att_node);

		rtrs_list_del(pos);
		rtrs_list_add_tail(&l->eps, &e->node);
		e->cq_tag = 1;
		e->eq_tag = 2;
		if (!e->poller)
			epoll_add(l, e->cq_fd, &e->cq_tag);
		epoll_add(l, e->eq_fd, &e->eq_tag);
		e->attached = true;
		/* look at it at once: events may predate the attach */
		e->cq_ready = e->eq_ready = true;
	}
	rtrs_list_for_each_safe(pos, tmp, &pattach) {
		struct fab_pep *p = container_of(pos, struct fab_pep, att_node);

		rtrs_list_del(pos);
		rtrs_list_add_tail(&l->peps, &p->node);
		p->eq_tag = 3;
		epoll_add(l, p->eq_fd, &p->eq_tag);
		p->attached = true;
		p->eq_ready = true;
	}
	rtrs_list_for_each_safe(pos, tmp, &close) {
		struct fab_ep *e = container_of(pos, struct fab_ep, cls_node);

		rtrs_list_del(pos);
		close_ep_now(l, e);
	}
	rtrs_list_for_each_safe(pos, tmp, &pclose) {
		struct fab_pep *p = container_of(pos, struct fab_pep, cls_node);

		rtrs_list_del(pos);
		if (p->attached) {
			rtrs_list_del(&p->node);
			epoll_del(l, p->eq_fd);
			p->attached = false;
		}
		pthread_mutex_lock(&p->lock);
		p->closed = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
	}
}

static bool commands_pending(struct fab_loop *l)
{
	bool p;

	pthread_mutex_lock(&l->lock);
	p = !rtrs_list_empty(&l->attach) ||
	    !rtrs_list_empty(&l->close) || !rtrs_list_empty(&l->pattach) ||
	    !rtrs_list_empty(&l->pclose);
	pthread_mutex_unlock(&l->lock);
	return p;
}

static void pin(struct fab_loop *l)
{
	cpu_set_t set;

	if (no_pin)
		return;         /* leave placement to the scheduler */

	CPU_ZERO(&set);
	CPU_SET(l->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		rtrs_dbg("loop %u: cannot pin to cpu %d", l->idx, l->cpu);
}

/* Mark the endpoint or listener behind an epoll cookie as ready. */
static void mark_ready(void *cookie)
{
	int *tag = cookie;

	if (!tag)
		return;         /* the eventfd */
	switch (*tag) {
	case 1:
		container_of(tag, struct fab_ep, cq_tag)->cq_ready = true;
		break;
	case 2:
		container_of(tag, struct fab_ep, eq_tag)->eq_ready = true;
		break;
	case 3:
		container_of(tag, struct fab_pep, eq_tag)->eq_ready = true;
		break;
	}
}

/*
 * One pass: listeners and endpoints whose wait fd fired (or that still
 * have work) are drained; every LOOP_SWEEP_MS all of them are, as a safety
 * net against a wakeup the provider did not signal. The wait fds of tcp
 * and net are level-triggered epoll sets of the sockets plus a signal fd
 * (for net, of the wait sets we give it), so an event that arrives after a
 * drain leaves the fd readable.
 */
static bool loop_pass(struct fab_loop *l, bool sweep, int *work)
{
	struct rtrs_list *pos, *tmp;
	bool more = false;

	rtrs_list_for_each_safe(pos, tmp, &l->peps) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		if ((p->eq_ready || sweep) && !atomic_load(&p->closing)) {
			p->eq_ready = false;
			drain_pep(p);
		}
	}
	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (atomic_load(&e->closing))
			continue;
		if (!e->poller && (e->cq_ready || e->cq_more || sweep)) {
			int n = drain_cq(e, false);

			e->cq_ready = false;
			e->cq_more = n >= CQ_BUDGET;
			more |= e->cq_more;
			*work += n;
		}
		if ((e->eq_ready || sweep) && !atomic_load(&e->closing)) {
			e->eq_ready = false;
			drain_eq(e);
		}
		if (atomic_exchange(&e->fault_down, false) &&
		    !atomic_load(&e->closing))
			e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
	}
	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (e->poller)
			continue;       /* its poller calls tx_ready */
		if (atomic_exchange(&e->want_tx, false) &&
		    !atomic_load(&e->closing)) {
			/* posting may complete operations inline: look again */
			e->cq_ready = true;
			if (rtrs__fab_trl_flush(e)) {
				atomic_store(&e->want_tx, true);
				more = true;
				continue;
			}
			e->ops->tx_ready(e->ctx);
			if (atomic_load(&e->want_tx))
				more = true;
		}
	}
	return more;
}

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
 * such a domain runs on one loop (rtrs__fab_loop_of()), domains taking
 * turns over the loops; that gives up no parallelism the provider had to
 * offer.
 *
 * Whether a provider needs this is measured, not looked up by name:
 * rtrs__fab_wait_probe() signals a throwaway CQ and asks fi_trywait().
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
void rtrs__fab_wait_close(struct fid_wait *ws)
{
	int ret = ws ? fi_close(&ws->fid) : 0;

	if (ret)
		rtrs_err("wait set close: %s",
			 rtrs_strerror(rtrs__fab_errno(ret)));
}

/* Spreads the domains that keep to one loop over the loops. */
static _Atomic unsigned next_home;

void rtrs__fab_wait_probe(struct fab_dom *d, bool passive)
{
	struct fid_wait *ws = NULL;
	int fd;

	d->wait_sets = false;
	if (probe_cq(d, NULL) != 1)
		return;         /* fi_trywait rearms the fd (or we can't tell) */
	if (!ws_open(d, &ws, &fd) && probe_cq(d, ws) == 0)
		d->wait_sets = true;
	rtrs__fab_wait_close(ws);
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

int rtrs__fab_cq_open(struct fab_dom *d, struct fi_cq_attr *attr,
		      struct fid_cq **cq, struct fid_wait **ws, int *fd)
{
	int ret;

	*ws = NULL;
	if (d->wait_sets) {
		ret = ws_open(d, ws, fd);
		if (ret)
			return rtrs__fab_errno(ret);
		attr->wait_obj = FI_WAIT_SET;
		attr->wait_set = *ws;
	}
	ret = fi_cq_open(d->domain, attr, cq, NULL);
	if (!ret && !*ws)
		ret = fi_control(&(*cq)->fid, FI_GETWAIT, fd);
	return rtrs__fab_errno(ret);
}

int rtrs__fab_eq_open(struct fab_dom *d, struct fi_eq_attr *attr,
		      struct fid_eq **eq, struct fid_wait **ws, int *fd)
{
	int ret;

	*ws = NULL;
	if (d->wait_sets) {
		ret = ws_open(d, ws, fd);
		if (ret)
			return rtrs__fab_errno(ret);
		attr->wait_obj = FI_WAIT_SET;
		attr->wait_set = *ws;
	}
	ret = fi_eq_open(d->fabric, attr, eq, NULL);
	if (!ret && !*ws)
		ret = fi_control(&(*eq)->fid, FI_GETWAIT, fd);
	return rtrs__fab_errno(ret);
}

/*
 * May a loop or poller sleep on the wait fd of this CQ or EQ? With a wait
 * set of ours (rtrs__fab_wait_probe()), fi_wait(ws, 0) does what
 * fi_trywait() should: it clears the set's signal, then reports whether any
 * CQ or EQ in it has entries (running their progress), and never blocks.
 * 0 means entries; -FI_ETIMEDOUT means the fd is rearmed and empty. Any
 * other error lets the caller sleep: the sweep reads everything anyway.
 * True if there is something to read first.
 */
static bool busy_fid(struct fab_dom *d, struct fid *f, struct fid_wait *ws)
{
	int ret;

	fab_progress_begin(d);
	ret = ws ? fi_wait(ws, 0) : fi_trywait(d->fabric, &f, 1);
	fab_progress_end(d);
	if (!ws)
		return ret != 0;
	if (ret && ret != -FI_ETIMEDOUT)
		rtrs_err_rl("fi_wait: %s", rtrs_strerror(rtrs__fab_errno(ret)));
	return ret == 0;
}

/* The same for @e's CQ, kept apart from posts as drain_cq() does. */
static bool busy_cq(struct fab_ep *e)
{
	bool busy;

	pthread_mutex_lock(&e->post_lock);
	busy = busy_fid(e->dom, &e->cq->fid, e->cq_ws);
	pthread_mutex_unlock(&e->post_lock);
	return busy;
}

/*
 * Before blocking, every CQ and EQ must agree (busy_fid()): tcp keeps
 * prefetched socket data in user space, where no fd shows it. Those that
 * do not agree are marked for the next pass. Returns true if blocking is
 * safe.
 */
static bool can_block(struct fab_loop *l)
{
	struct rtrs_list *pos, *tmp;
	bool ok = true;

	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (atomic_load(&e->closing))
			continue;
		if (!e->poller && busy_cq(e)) {
			e->cq_ready = true;
			ok = false;
		}
		if (busy_fid(e->dom, &e->eq->fid, e->eq_ws)) {
			e->eq_ready = true;
			ok = false;
		}
	}
	rtrs_list_for_each_safe(pos, tmp, &l->peps) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		if (busy_fid(p->dom, &p->eq->fid, p->eq_ws)) {
			p->eq_ready = true;
			ok = false;
		}
	}
	return ok;
}

static void *loop_main(void *arg)
{
	struct fab_loop *l = arg;
	struct epoll_event evs[32];
	uint64_t last_sweep = 0;
	bool more = true;

	uint64_t last_work = 0;

	pin(l);
	while (!atomic_load(&l->stop)) {
		uint64_t now_ns = rtrs_now_ns(), now = now_ns / 1000000;
		bool sweep = now - last_sweep >= LOOP_SWEEP_MS;
		int n, work = 0;

		if (sweep)
			last_sweep = now;
		run_commands(l);
		more = loop_pass(l, sweep, &work);
		atomic_store(&l->woken, false);
		if (commands_pending(l))
			continue;
		/* optional busy-poll window after work (RTRS_POLL_US) */
		if (work)
			last_work = now_ns;
		if (!more && rtrs__fab_may_spin(last_work, now_ns)) {
			struct rtrs_list *pos;

			for (pos = l->eps.next; pos != &l->eps; pos = pos->next)
				container_of(pos, struct fab_ep, node)->cq_ready = true;
			continue;
		}
		if (!more && !can_block(l))
			more = true;
		n = epoll_wait(l->epfd, evs, 32,
			       more ? 0 : (int)LOOP_SWEEP_MS);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;

				if (read(l->evfd, &v, sizeof(v)) < 0 &&
				    errno != EAGAIN)
					rtrs_err_rl("loop %u: eventfd read %d",
						    l->idx, errno);
				continue;
			}
			mark_ready(evs[i].data.ptr);
		}
	}
	return NULL;
}

static int pick_cpus(int *cpus, unsigned n)
{
	cpu_set_t set;
	unsigned k = 0;

	if (sched_getaffinity(0, sizeof(set), &set)) {
		for (unsigned i = 0; i < n; i++)
			cpus[i] = (int)i;
		return 0;
	}
	for (int c = 0; c < CPU_SETSIZE && k < n; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	for (unsigned i = k; i < n; i++)
		cpus[i] = cpus[i % (k ? k : 1)];
	return 0;
}

static int loop_start(struct fab_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	pthread_mutex_init(&l->lock, NULL);
	rtrs_list_init(&l->attach);
	rtrs_list_init(&l->close);
	rtrs_list_init(&l->pattach);
	rtrs_list_init(&l->pclose);
	rtrs_list_init(&l->eps);
	rtrs_list_init(&l->peps);
	atomic_init(&l->stop, false);
	atomic_init(&l->woken, false);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->evfd < 0)
		return -errno;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev))
		return -errno;
	ret = pthread_create(&l->thr, NULL, loop_main, l);
	return -ret;
}

static void loop_stop(struct fab_loop *l)
{
	atomic_store(&l->stop, true);
	rtrs__fab_loop_wake(l);
	pthread_join(l->thr, NULL);
	/* anything still queued was left by a caller that did not close */
	run_commands(l);
	close(l->epfd);
	close(l->evfd);
	pthread_mutex_destroy(&l->lock);
}

int rtrs__fab_engine_get(void)
{
	int ret = 0;

	pthread_mutex_lock(&engine.lock);
	if (engine.ref++ == 0) {
		unsigned n = rtrs__ncpus();
		int *cpus = calloc(n, sizeof(int));

		engine.loops = calloc(n, sizeof(*engine.loops));
		if (!cpus || !engine.loops) {
			free(cpus);
			free(engine.loops);
			engine.ref--;
			pthread_mutex_unlock(&engine.lock);
			return -ENOMEM;
		}
		rtrs__fab_fault_from_env();
		{
			const char *pu = getenv("RTRS_POLL_US");
			const char *pin_env = getenv("RTRS_PIN");

			poll_ns = pu ? strtoull(pu, NULL, 10) * 1000 : 0;
			no_pin = pin_env && !strcmp(pin_env, "0");
			online_cpus = n;
			if (poll_ns) {
				loadavg_fd = open("/proc/loadavg",
						  O_RDONLY | O_CLOEXEC);
				if (loadavg_fd < 0)
					rtrs_warn("RTRS_POLL_US: /proc/loadavg: %d; not polling",
						  -errno);
			}
		}
		pick_cpus(cpus, n);
		engine.n = n;
		for (unsigned i = 0; i < n; i++) {
			engine.loops[i].idx = i;
			engine.loops[i].cpu = cpus[i];
			ret = loop_start(&engine.loops[i]);
			if (ret) {
				for (unsigned j = 0; j < i; j++)
					loop_stop(&engine.loops[j]);
				free(engine.loops);
				engine.loops = NULL;
				engine.n = 0;
				engine.ref--;
				loadavg_close();
				break;
			}
		}
		free(cpus);
	}
	pthread_mutex_unlock(&engine.lock);
	return ret;
}

void rtrs__fab_engine_put(void)
{
	pthread_mutex_lock(&engine.lock);
	if (--engine.ref == 0) {
		for (unsigned i = 0; i < engine.n; i++)
			loop_stop(&engine.loops[i]);
		free(engine.loops);
		engine.loops = NULL;
		engine.n = 0;
		loadavg_close();
	}
	pthread_mutex_unlock(&engine.lock);
}

/* ---- application-driven progress ---- */

int rtrs__fab_poller_create(struct fab_poller **out)
{
	struct fab_poller *pl = calloc(1, sizeof(*pl));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	int ret;

	if (!pl)
		return -ENOMEM;
	pthread_mutex_init(&pl->lock, NULL);
	rtrs_list_init(&pl->eps);
	pl->epfd = epoll_create1(EPOLL_CLOEXEC);
	pl->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pl->epfd < 0 || pl->evfd < 0 ||
	    epoll_ctl(pl->epfd, EPOLL_CTL_ADD, pl->evfd, &ev)) {
		ret = -errno;
		rtrs__fab_poller_destroy(pl);
		return ret;
	}
	*out = pl;
	return 0;
}

void rtrs__fab_poller_destroy(struct fab_poller *pl)
{
	if (!pl)
		return;
	if (pl->epfd >= 0)
		close(pl->epfd);
	if (pl->evfd >= 0)
		close(pl->evfd);
	pthread_mutex_destroy(&pl->lock);
	free(pl);
}

/* From rtrs__fab_ep_create(): the endpoint is not attached to its loop
 * yet, so nothing reads its CQ before this. */
void rtrs__fab_poller_add(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };

	pthread_mutex_lock(&pl->lock);
	rtrs_list_add_tail(&pl->eps, &e->pnode);
	if (e->cq_fd >= 0 && epoll_ctl(pl->epfd, EPOLL_CTL_ADD, e->cq_fd, &ev))
		rtrs_err("poller: epoll add fd %d: %d", e->cq_fd, errno);
	pthread_mutex_unlock(&pl->lock);
}

int rtrs__fab_poller_progress(struct fab_poller *pl)
{
	struct rtrs_list *pos, *tmp;
	int n = 0;

	pthread_mutex_lock(&pl->lock);
	rtrs_list_for_each_safe(pos, tmp, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;       /* its loop flushes it */
		n += drain_cq(e, false);
		if (!atomic_exchange(&e->want_tx, false) ||
		    atomic_load(&e->closing))
			continue;
		if (rtrs__fab_trl_flush(e))
			atomic_store(&e->want_tx, true);
		else
			e->ops->tx_ready(e->ctx);
	}
	pthread_mutex_unlock(&pl->lock);
	return n;
}

void rtrs__fab_poller_wait(struct fab_poller *pl, int timeout_ms)
{
	struct epoll_event evs[8];
	struct rtrs_list *pos;
	int n;

	/* as can_block(): tcp may hold data in user space that no fd shows,
	 * and this rearms the fds (net's wait sets) */
	pthread_mutex_lock(&pl->lock);
	rtrs_list_for_each(pos, &pl->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, pnode);

		if (atomic_load(&e->closing))
			continue;
		if (atomic_load(&e->want_tx) || busy_cq(e)) {
			pthread_mutex_unlock(&pl->lock);
			return;
		}
	}
	pthread_mutex_unlock(&pl->lock);
	/* bounded as the loops' sleep, a safety net for a provider whose
	 * wait fd would miss a completion: read again within LOOP_SWEEP_MS */
	if (timeout_ms < 0 || timeout_ms > LOOP_SWEEP_MS)
		timeout_ms = LOOP_SWEEP_MS;
	n = epoll_wait(pl->epfd, evs, 8, timeout_ms);
	for (int i = 0; i < n; i++) {
		uint64_t v;

		if (evs[i].data.u64 == 0 &&
		    read(pl->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			rtrs_err_rl("poller: eventfd read %d", errno);
	}
}

void rtrs__fab_poller_wake(struct fab_poller *pl)
{
	uint64_t one = 1;

	if (write(pl->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_err_rl("poller: eventfd write: %d", errno);
}
