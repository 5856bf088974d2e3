// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The rdma-core backend's one progress thread: the RDMA CM event channel
 * (connect requests, connections established, rejected, gone), every
 * endpoint's completion queue but a poller's (poller.c), and closing
 * endpoints (queue pair to error, drain markers, the flushed completions
 * handed back, then closed()). */
#include "rdma.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

#define CQ_BATCH 32
#define CLOSE_WAIT_MS 5000      /* for the drain markers, at most */

static struct rd_engine {
	struct rtrs_lock lock;
	unsigned refs;
	bool running;
	_Atomic bool stop;
	pthread_t thr;
	int epfd, evfd;
	struct rdma_event_channel *ch;
	struct rtrs_list attach, close, pclose;  /* under lock */
	struct rtrs_list eps, closing;           /* the loop thread's */
	int ch_tag, ev_tag;                      /* epoll cookies */
} eng = { .lock = RTRS_LOCK_INITIALIZER(RTRS_RANK_RD_ENGINE, "rd_engine.lock"), .epfd = -1, .evfd = -1 };

void rtrs__rd_wake(void)
{
	uint64_t one = 1;

	if (eng.evfd >= 0 && write(eng.evfd, &one, sizeof(one)) < 0)
		rtrs_dbg("rdma: waking the loop: %d", errno);
}

struct rdma_event_channel *rtrs__rd_channel(void)
{
	return eng.ch;
}

void rtrs__rd_attach(struct fab_ep *e)
{
	rtrs__lock(&eng.lock);
	rtrs_list_add_tail(&eng.attach, &e->node);
	rtrs__unlock(&eng.lock);
	rtrs__rd_wake();
}

void rtrs__rd_close(struct fab_ep *e)
{
	rtrs__lock(&eng.lock);
	rtrs_list_add_tail(&eng.close, &e->cls_node);
	rtrs__unlock(&eng.lock);
	rtrs__rd_wake();
}

void rtrs__rd_close_pep(struct fab_pep *p)
{
	rtrs__lock(&eng.lock);
	rtrs_list_add_tail(&eng.pclose, &p->node);
	rtrs__unlock(&eng.lock);
	rtrs__rd_wake();
}

void rtrs__rd_ep_destroy(struct fab_ep *e)
{
	if (e->id) {
		if (e->id->qp)
			rdma_destroy_qp(e->id);
		rdma_destroy_id(e->id);
	}
	if (e->cq)
		ibv_destroy_cq(e->cq);
	if (e->cch)
		ibv_destroy_comp_channel(e->cch);
	rtrs__lock_destroy(&e->post_lock);
	rtrs__rd_dom_put(e->dom);
	free(e);
}

/* ---- completions ---- */

static int wc_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS: return 0;
	case IBV_WC_WR_FLUSH_ERR: return -ECANCELED;
	case IBV_WC_LOC_LEN_ERR: return -EMSGSIZE;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR: return -EACCES;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR: return -ETIMEDOUT;
	case IBV_WC_REM_INV_REQ_ERR: return -EINVAL;
	default: return -EIO;
	}
}

/* A send queue completion of slot @idx: the ring up to it is free (an
 * unsignaled send before it completed without a completion). */
static void sq_done(struct fab_ep *e, unsigned idx, struct rd_slot *out)
{
	rtrs__lock(&e->post_lock);
	*out = e->ring[idx];
	e->ring[idx].ctx = NULL;
	if ((idx - e->sq_tail) % RD_SQ_DEPTH < e->sq_head - e->sq_tail)
		e->sq_tail += (idx - e->sq_tail) % RD_SQ_DEPTH + 1;
	rtrs__unlock(&e->post_lock);
}

static void one_wc(struct fab_ep *e, const struct ibv_wc *wc)
{
	struct fab_cqe c = { .err = wc_errno(wc->status) };

	if (wc->wr_id == RD_WR_DRAIN_SQ) {
		e->sq_drained = true;
		return;
	}
	if (wc->wr_id & RD_WR_SQ) {
		struct rd_slot s;

		sq_done(e, (unsigned)(wc->wr_id >> 2) % RD_SQ_DEPTH, &s);
		if (!s.signal && !c.err)
			return;
		c.ctx = s.ctx;
		c.flags = FAB_CQE_TX;
	} else {
		atomic_fetch_sub(&e->rq_out, 1);
		c.ctx = (struct fab_opctx *)(uintptr_t)wc->wr_id;
		c.flags = FAB_CQE_RECV;
		if (!c.err && wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
			c.flags |= FAB_CQE_RMA_IN;
		} else if (!c.err) {
			c.len = wc->byte_len;
		}
		if (!c.err && (wc->wc_flags & IBV_WC_WITH_IMM)) {
			c.flags |= FAB_CQE_IMM;
			c.imm = ntohl(wc->imm_data);
		}
		if (!c.err && rtrs__fab_fault_rx())
			return;         /* fault injection: dropped */
	}
	e->ops->cqe(e->ctx, &c);
}

int rtrs__rd_drain_cq(struct fab_ep *e)
{
	struct ibv_wc wc[CQ_BATCH];
	struct ibv_cq *cq;
	void *cctx;
	int n, done = 0;

	while (!ibv_get_cq_event(e->cch, &cq, &cctx))
		ibv_ack_cq_events(cq, 1);
	ibv_req_notify_cq(e->cq, 0);
	while (done < RD_CQ_BUDGET && (n = ibv_poll_cq(e->cq, CQ_BATCH, wc)) > 0) {
		for (int i = 0; i < n; i++)
			one_wc(e, &wc[i]);
		done += n;
	}
	return done;
}

void rtrs__rd_tx_ready(struct fab_ep *e)
{
	bool room;

	if (!atomic_load(&e->want_tx) || atomic_load(&e->closing))
		return;
	rtrs__lock(&e->post_lock);
	room = e->sq_head - e->sq_tail < RD_SQ_DEPTH - RD_MAX_SGE;
	rtrs__unlock(&e->post_lock);
	if (room && atomic_exchange(&e->want_tx, false))
		e->ops->tx_ready(e->ctx);
}

/* ---- closing ---- */

/* Queue pair to error, then a marker send behind everything on the send
 * queue: its flush comes last there. The receive queue needs none: every
 * receive posted is counted (rq_out) and completes once, flushed or not.
 * (A marker receive would not do on rxe: its user-space provider posts
 * receives without entering the kernel, and the responder flushes a
 * queue pair in error only when something runs it; a receive posted
 * after the transition stays until the QP is destroyed.) */
static void close_start(struct fab_ep *e)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };
	struct ibv_send_wr sw = { .wr_id = RD_WR_DRAIN_SQ,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED }, *bsw;

	rtrs__lock(&e->post_lock);
	e->dead = true;
	rtrs__unlock(&e->post_lock);
	e->close_by_ms = rtrs_now_ms() + CLOSE_WAIT_MS;
	if (e->connected)
		rdma_disconnect(e->id);
	if (!e->id->qp) {
		e->sq_drained = true;
		return;
	}
	ibv_modify_qp(e->id->qp, &a, IBV_QP_STATE);
	if (ibv_post_send(e->id->qp, &sw, &bsw))
		e->sq_drained = true;   /* CLOSE_WAIT_MS bounds the wait */
}

/* Once the marker is back and every receive completed: every completion
 * handed back, closed() run, @e freed. */
static void close_step(struct fab_ep *e)
{
	unsigned rq;
	bool late;

	rtrs__rd_drain_cq(e);
	rq = atomic_load(&e->rq_out);
	late = rtrs_now_ms() >= e->close_by_ms;
	if (!(e->sq_drained && rq == 0) && !late)
		return;
	if (late)
		rtrs_warn("rdma: closing an endpoint: %s%u receives never "
			  "flushed", e->sq_drained ? "" : "the send queue and ",
			  rq);
	rtrs_list_del(&e->node);
	if (!e->poller)
		epoll_ctl(eng.epfd, EPOLL_CTL_DEL, e->cch->fd, NULL);
	e->ops->closed(e->ctx);
	rtrs__rd_ep_destroy(e);
}

static void pep_close_now(struct fab_pep *p)
{
	rdma_destroy_id(p->id);
	p->id = NULL;
	rtrs__lock(&p->lock);
	p->closed = true;
	pthread_cond_broadcast(&p->cond);
	rtrs__unlock(&p->lock);
}

/* A closing endpoint leaves its poller: once its lock is dropped no
 * caller reads the CQ, and the loop drains it (the sweep wakes it). */
static void poller_leave(struct fab_ep *e)
{
	struct fab_poller *pl = e->poller;

	if (!pl)
		return;
	rtrs__lock(&pl->lock);
	rtrs_list_del(&e->pnode);
	rtrs__fab_evset_del(&pl->ws, e->cch->fd);
	rtrs__unlock(&pl->lock);
}

/* The attach and close lists, taken under the engine's lock. */
static void take_lists(void)
{
	struct rtrs_list att, cls, pcl, *pos, *tmp;

	rtrs_list_init(&att);
	rtrs_list_init(&cls);
	rtrs_list_init(&pcl);
	rtrs__lock(&eng.lock);
	rtrs_list_take(&att, &eng.attach);
	rtrs_list_take(&cls, &eng.close);
	rtrs_list_take(&pcl, &eng.pclose);
	rtrs__unlock(&eng.lock);
	rtrs_list_for_each_safe(pos, tmp, &att) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.ptr = &e->cq_tag };

		rtrs_list_del(&e->node);
		rtrs_list_add_tail(&eng.eps, &e->node);
		if (!e->poller &&       /* else the poller's (poller.c) */
		    epoll_ctl(eng.epfd, EPOLL_CTL_ADD, e->cch->fd, &ev))
			rtrs_warn("rdma: epoll of a CQ: %d", errno);
	}
	rtrs_list_for_each_safe(pos, tmp, &cls) {
		struct fab_ep *e = container_of(pos, struct fab_ep, cls_node);

		rtrs_list_del(&e->cls_node);
		rtrs_list_del(&e->node);        /* from eng.eps */
		rtrs_list_add_tail(&eng.closing, &e->node);
		poller_leave(e);
		close_start(e);
	}
	rtrs_list_for_each_safe(pos, tmp, &pcl) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		rtrs_list_del(&p->node);
		pep_close_now(p);
	}
}

/* ---- connection manager events ---- */

static void on_connreq(struct fab_pep *p, struct rdma_cm_id *id,
		       const void *data, size_t len)
{
	struct fab_connreq req = { .id = id };

	if (atomic_load(&p->closing)) {
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return;
	}
	p->ops->connreq(p->ctx, &req, data, len);
	if (req.taken)
		return;
	if (!req.rejected)
		rdma_reject(id, NULL, 0);
	rdma_destroy_id(id);
}

static void on_ep_event(struct fab_ep *e, enum rdma_cm_event_type t,
			int status, const void *data, size_t len)
{
	if (t == RDMA_CM_EVENT_ESTABLISHED)
		e->connected = true;    /* closing too: disconnect it */
	if (atomic_load(&e->closing))
		return;
	switch (t) {
	case RDMA_CM_EVENT_ESTABLISHED:
		e->ops->cm(e->ctx, FAB_CM_CONNECTED, 0, data, len);
		break;
	case RDMA_CM_EVENT_REJECTED:
		/* status 28: the consumer (our peer) refused, with data */
		e->ops->cm(e->ctx, status == 28 ? FAB_CM_REJECTED
						: FAB_CM_ERROR,
			   -ECONNREFUSED, status == 28 ? data : NULL,
			   status == 28 ? len : 0);
		break;
	case RDMA_CM_EVENT_DISCONNECTED:
		e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
		break;
	case RDMA_CM_EVENT_UNREACHABLE:
	case RDMA_CM_EVENT_CONNECT_ERROR:
		e->ops->cm(e->ctx, FAB_CM_ERROR, -EHOSTUNREACH, NULL, 0);
		break;
	case RDMA_CM_EVENT_DEVICE_REMOVAL:
		e->ops->cm(e->ctx, FAB_CM_ERROR, -ENODEV, NULL, 0);
		break;
	default:
		break;
	}
}

static void drain_cm(void)
{
	struct rdma_cm_event *ev;

	while (!rdma_get_cm_event(eng.ch, &ev)) {
		uint8_t data[256];
		const struct rdma_conn_param *cp = &ev->param.conn;
		size_t len = cp->private_data && cp->private_data_len
				     ? cp->private_data_len : 0;
		enum rdma_cm_event_type t = ev->event;
		struct rdma_cm_id *id = ev->id, *lid = ev->listen_id;
		int status = ev->status;

		if (len > sizeof(data))
			len = sizeof(data);
		if (len)
			memcpy(data, cp->private_data, len);
		/* acked before the callbacks: a destroy on this thread
		 * waits for the acks of its id's events */
		rdma_ack_cm_event(ev);
		if (t == RDMA_CM_EVENT_CONNECT_REQUEST) {
			on_connreq(lid->context, id, data, len);
		} else if (id->context &&
			   ((struct fab_ep *)id->context)->kind == RD_EP) {
			on_ep_event(id->context, t, status, data, len);
		}
	}
}

/* ---- the thread ---- */

/* One pass over everything; true if a CQ had more than its budget. */
static bool pass(void)
{
	struct rtrs_list *pos, *tmp;
	bool more = false;

	take_lists();
	drain_cm();
	rtrs_list_for_each_safe(pos, tmp, &eng.eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (atomic_load(&e->closing))
			continue;
		if (!e->poller)
			more |= rtrs__rd_drain_cq(e) >= RD_CQ_BUDGET;
		if (atomic_exchange(&e->fault_down, false))
			e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
		if (!e->poller)
			rtrs__rd_tx_ready(e);
	}
	rtrs_list_for_each_safe(pos, tmp, &eng.closing) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		close_step(e);          /* may free e */
	}
	return more;
}

static void *loop_main(void *arg)
{
	bool more = false;

	(void)arg;
	while (!atomic_load(&eng.stop)) {
		struct epoll_event evs[32];
		int n = epoll_wait(eng.epfd, evs, 32, more ? 0 : RD_SWEEP_MS);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &eng.ev_tag) {
				uint64_t v;

				if (read(eng.evfd, &v, sizeof(v)) < 0)
					continue;
			}
		}
		more = pass();
	}
	pass();
	return NULL;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

/* Called with eng.lock held, which it drops to join the thread (whose
 * passes take it) and takes again. */
static void engine_stop_locked(void)
{
	if (!eng.running)
		return;
	atomic_store(&eng.stop, true);
	rtrs__rd_wake();
	rtrs__unlock(&eng.lock);
	pthread_join(eng.thr, NULL);
	rtrs__lock(&eng.lock);
	eng.running = false;
	close(eng.epfd);
	close(eng.evfd);
	eng.epfd = eng.evfd = -1;
	rdma_destroy_event_channel(eng.ch);
	eng.ch = NULL;
}

static int engine_start_locked(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret = rtrs__rd_channel_new(&eng.ch);

	if (ret)
		return ret;
	rtrs_list_init(&eng.attach);
	rtrs_list_init(&eng.close);
	rtrs_list_init(&eng.pclose);
	rtrs_list_init(&eng.eps);
	rtrs_list_init(&eng.closing);
	eng.epfd = epoll_create1(EPOLL_CLOEXEC);
	eng.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ret = eng.epfd < 0 || eng.evfd < 0 ? -errno : set_nonblock(eng.ch->fd);
	ev.data.ptr = &eng.ev_tag;
	if (!ret && epoll_ctl(eng.epfd, EPOLL_CTL_ADD, eng.evfd, &ev))
		ret = -errno;
	ev.data.ptr = &eng.ch_tag;
	if (!ret && epoll_ctl(eng.epfd, EPOLL_CTL_ADD, eng.ch->fd, &ev))
		ret = -errno;
	atomic_store(&eng.stop, false);
	if (!ret)
		ret = -pthread_create(&eng.thr, NULL, loop_main, NULL);
	if (ret) {
		if (eng.epfd >= 0)
			close(eng.epfd);
		if (eng.evfd >= 0)
			close(eng.evfd);
		eng.epfd = eng.evfd = -1;
		rdma_destroy_event_channel(eng.ch);
		eng.ch = NULL;
		return ret;
	}
	eng.running = true;
	return 0;
}

int rtrs__rd_engine_start(void)
{
	int ret = 0;

	rtrs__lock(&eng.lock);
	if (!eng.running)
		ret = engine_start_locked();
	rtrs__unlock(&eng.lock);
	return ret;
}

/* A reference only: the thread starts with the first endpoint or
 * listener (rtrs__rd_engine_start()), so that a process that never uses
 * this backend never opens RDMA CM. */
int rtrs__rd_engine_get(void)
{
	rtrs__lock(&eng.lock);
	eng.refs++;
	rtrs__unlock(&eng.lock);
	return 0;
}

void rtrs__rd_engine_put(void)
{
	rtrs__lock(&eng.lock);
	if (eng.refs && !--eng.refs)
		engine_stop_locked();
	rtrs__unlock(&eng.lock);
}

unsigned rtrs__rd_nloops(void)
{
	return 1;
}
