// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client data path: a request from rtrs_clt_request() to its conf. Issue
 * on the path the policy picks (clt_policy.c), registrations and message,
 * post (with the connection's backlog when the provider is full), the
 * server's answer, completion and its statistics; a failed path's requests
 * re-issued elsewhere (failover, fenced) or held while no path is up
 * (no_path_timeout_ms); poll mode's done queue and rtrs_clt_poll().
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "clt_int.h"

static int issue(struct clt_req *r, struct clt_path *avoid);
static void hold_req(struct clt_req *r);

static inline uint32_t hdr_size(const struct rtrs_clt_sess *s)
{
	return s->geom.max_hdr_size;
}

static inline char *req_iu(struct clt_req *r)
{
	return r->sess->iu + (size_t)r->permit->mem_id * hdr_size(r->sess);
}

/* ---- request completion ---- */

static void req_release_mrs(struct clt_req *r)
{
	for (unsigned i = 0; i < r->ntmp; i++)
		rtrs__fab_mr_close(r->tmp_mrs[i]);
	r->ntmp = 0;
}

/* Poll mode: the session whose rtrs_clt_poll() runs on this thread, and
 * how many conf callbacks it ran. */
struct polling {
	struct rtrs_clt_sess *sess;
	int ran;
};
static _Thread_local struct polling polling;

static inline bool polled_req(const struct clt_req *r)
{
	return r->sess->poller && r->permit->con_type == RTRS_IO_CON;
}

static void run_conf(struct clt_req *r, const struct rtrs_req_ops *ops,
		     int status)
{
	bool polled = polled_req(r);
	struct rtrs_clt_sess *s = r->sess;

	if (polled)
		polling.ran++;
	ops->conf(ops->priv, status);
	if (polled)
		atomic_fetch_sub(&s->io_pending, 1);
}

/* Move @r out of POSTED and run its completion; false if someone else did.
 * @answered: the server's response (not a local failure). In poll mode a
 * request on an IO permit completed off the polling thread waits in
 * done_q for rtrs_clt_poll(). */
/* One request less in flight on @p; the last one out wakes a
 * rtrs_clt_remove_path() draining @p.  Takes path->lock then: not called
 * with a lock of the path held. */
static void path_inflight_put(struct clt_path *p)
{
	if (atomic_fetch_sub(&p->inflight, 1) == 1 &&
	    atomic_load(&p->draining)) {
		rtrs__lock(&p->lock);
		pthread_cond_broadcast(&p->cond);
		rtrs__unlock(&p->lock);
	}
}

static bool complete_req(struct clt_req *r, int status, bool answered)
{
	struct rtrs_clt_sess *s = r->sess;
	struct rtrs_req_ops ops;
	int expected = REQ_POSTED;
	int cpu;

	struct clt_con *c = atomic_load(&r->con);
	struct clt_path *p = c && answered ? c->path : NULL;

	if (!atomic_compare_exchange_strong(&r->state, &expected, REQ_DONE))
		return false;
	req_release_mrs(r);
	if (status) {
		atomic_fetch_add(&s->st_errors, 1);
	} else if (r->dir == RTRS_READ && p) {
		atomic_fetch_add_explicit(&s->st_read_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_read_bytes, r->data_len,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_read_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_read_bytes, r->data_len,
					  memory_order_relaxed);
	} else if (p) {
		atomic_fetch_add_explicit(&s->st_write_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_write_bytes, r->data_len,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_write_cnt, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_write_bytes, r->data_len,
					  memory_order_relaxed);
	}
	/* a response means the server saw this request and its fence; after a
	 * local failure the fence goes with the permit's next request */
	if (p)
		r->fence_path = 0;
	cpu = sched_getcpu();
	if (p && cpu >= 0 && r->submit_cpu >= 0 && cpu != r->submit_cpu) {
		atomic_fetch_add_explicit(&s->st_mig_from, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->st_mig_to, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_mig_from, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->st_mig_to, 1, memory_order_relaxed);
	}
	if (c)
		path_inflight_put(c->path);
	atomic_store(&r->con, NULL);    /* its path may go once it is idle */
	ops = r->ops;
	atomic_store(&r->state, REQ_IDLE);
	if (polled_req(r) && polling.sess != s) {
		/* the permit stays the caller's until conf: @r is not reused;
		 * queued before inflight drops, for close() to find it */
		r->done_status = status;
		rtrs__lock(&s->done_lock);
		rtrs_list_add_tail(&s->done_q, &r->done_node);
		rtrs__unlock(&s->done_lock);
		rtrs__fab_poller_wake(s->poller);
		r = NULL;
	}
	/* the last one out wakes a close() waiting for in-flight requests */
	if (atomic_fetch_sub(&s->inflight, 1) == 1 && atomic_load(&s->closing)) {
		rtrs__lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		rtrs__unlock(&s->lock);
	}
	if (r)
		run_conf(r, &ops, status);
	return true;
}

/* ---- path failure and failover ---- */

/*
 * Every request still posted on @p (whose endpoints are all closed, so
 * nothing of it is in the provider any more) is re-issued on another path
 * with the same permit and sequence number, fencing @p; without a path it
 * is held or failed (no_path_timeout_ms).
 */
void rtrs__clt_failover(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	for (uint32_t i = 0; i < s->geom.queue_depth; i++) {
		struct clt_req *r = &s->reqs[i];
		struct clt_con *c;
		bool mine = false;

		if (atomic_load(&r->state) != REQ_POSTED)
			continue;

		c = atomic_load(&r->con);
		if (!c || c->path != p)
			continue;
		rtrs__lock(&c->lock);
		if (atomic_load(&r->con) == c &&
		    atomic_load(&r->state) == REQ_POSTED) {
			mine = true;
			if (r->bl_node.next != &r->bl_node)
				rtrs_list_del(&r->bl_node);
		}
		rtrs__unlock(&c->lock);
		if (!mine)
			continue;
		req_release_mrs(r);
		atomic_store(&r->con, NULL);
		path_inflight_put(p);
		r->retry = true;
		if (p->srv_id)
			r->fence_path = p->srv_id;
		if (issue(r, p) == 0)
			continue;       /* counted as a failover by issue() */
		if (s->attr.no_path_timeout_ms && !atomic_load(&s->closing))
			hold_req(r);
		else
			complete_req(r, -ECONNABORTED, false);
	}
}

int rtrs__clt_handle_rsp(struct clt_con *c, uint32_t payload, const void *buf,
			 size_t len)
{
	struct clt_path *p = c->path;
	struct rtrs_clt_sess *s = p->sess;
	struct clt_req *r;
	uint32_t id;
	int status;

	if (rtrs__proto_io_rsp_decode(payload, s->geom.queue_depth, &id,
				      &status)) {
		plog(RTRS_LOG_ERR, p, "response for chunk out of range");
		return -EPROTO;
	}
	r = &s->reqs[id];
	if (atomic_load(&r->state) != REQ_POSTED || r->con != c) {
		plog(RTRS_LOG_ERR, p, "response for idle request %u", id);
		return -EPROTO;
	}
	if (s->new_rkey) {
		uint16_t buf_id;
		uint32_t key;

		if (rtrs__proto_rkey_rsp_decode(buf, len, s->geom.queue_depth,
						&buf_id, &key) ||
		    buf_id != id) {
			plog(RTRS_LOG_ERR, p, "bad new-rkey response for %u", id);
			return -EPROTO;
		}
		atomic_store(&p->rbufs[id].key, key);
	}
	complete_req(r, status, true);
	return 0;
}

/* ---- posting ---- */

/* Post what is left of @r. Called with r->con->lock held. */
static int post_req(struct clt_req *r)
{
	struct clt_con *c = atomic_load(&r->con);
	struct clt_path *p = c->path;
	struct rtrs_clt_sess *s = r->sess;
	uint32_t id = r->permit->mem_id;
	struct clt_rbuf *rb = &p->rbufs[id];
	uint32_t key = atomic_load(&rb->key);
	uint32_t imm = rtrs__proto_io_req_imm(&s->geom, id,
					      r->data_len + r->usr_len);
	size_t lim = rtrs__fab_ep_caps(c->ep)->tx_iov_limit;
	int ret;

	RTRS_ASSERT_HELD(&c->lock);
	if (r->dir == RTRS_READ) {
		/* header + message + descriptors after the data area */
		return rtrs__fab_post_write(c->ep, &r->iov[0], &r->desc[0], 1,
					    rb->addr + r->data_len, key, true,
					    imm, &r->ctx, false);
	}
	/* WRITE: data segments then the header, split by the iov limit;
	 * the immediate goes with the last piece */
	while (r->next_seg <= r->data_cnt) {
		unsigned seg = r->next_seg, left = r->data_cnt + 1 - seg;
		unsigned n = left < lim ? left : (unsigned)lim;
		uint32_t off = r->posted_bytes, bytes = 0;

		for (unsigned i = 0; i < n; i++)
			bytes += (uint32_t)r->iov[seg + i].iov_len;
		/* Progress is recorded before the post: once the piece with the
		 * immediate is out, the response may complete the request and
		 * its permit may be reused before this function returns, so
		 * @r must not be touched after a successful final post. */
		r->next_seg = seg + n;
		r->posted_bytes = off + bytes;
		ret = rtrs__fab_post_write(c->ep, &r->iov[seg], &r->desc[seg], n,
					   rb->addr + off, key, n == left, imm,
					   &r->ctx, false);
		if (ret) {
			r->next_seg = seg;
			r->posted_bytes = off;
			return ret;
		}
		if (n == left)
			return 0;
	}
	return 0;
}

int rtrs__clt_con_flush(struct clt_con *c)
{
	int ret = 0;

	rtrs__lock(&c->lock);
	while (!c->dead && !rtrs_list_empty(&c->backlog)) {
		struct clt_req *r = container_of(c->backlog.next,
						 struct clt_req, bl_node);

		/* off the list before the post: a posted request may complete
		 * and be queued again before post_req() returns */
		rtrs_list_del(&r->bl_node);
		ret = post_req(r);
		if (ret == -EAGAIN) {
			rtrs_list_add_head(&c->backlog, &r->bl_node);
			rtrs__fab_ep_want_tx(c->ep);
			ret = 0;
			break;
		}
		if (ret)
			break;
	}
	rtrs__unlock(&c->lock);
	return ret;
}

/* Registrations and the message (with its fence record) for posting @r
 * on @p. The header buffer is shared by all paths: a previous attempt's
 * endpoints are closed before a retry rewrites it. */
static int prepare_data(struct clt_req *r, struct clt_path *p)
{
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	const struct iovec *data = r->data;
	size_t data_cnt = r->data_cnt;
	struct rtrs_fence fence = {
		.seq = r->seq,
		.fence_path = r->fence_path,
		.flags = (uint16_t)((r->retry ? RTRS_FENCE_RETRY_F : 0) |
				    (r->fence_path ? RTRS_FENCE_PATH_F : 0)),
	};
	size_t n;
	struct fab_mr *umr = r->mr ? r->mr->mrs[p->idx] : NULL;
	struct rtrs_sg_desc desc[RTRS_MAX_SEGMENTS];
	int ret;

	for (size_t i = 0; i < data_cnt; i++) {
		r->iov[i] = data[i];
		r->desc[i] = rtrs__fab_mr_desc(umr);
		if (r->dir == RTRS_READ) {
			struct fab_mr *m;

			/* a registration per READ, revoked at completion */
			ret = rtrs__fab_mr_reg_peer(p->dom, data[i].iov_base,
						    data[i].iov_len, p, &m);
			if (ret)
				return ret;
			r->tmp_mrs[r->ntmp++] = m;
			desc[i].addr = rtrs__fab_mr_raddr(m, data[i].iov_base);
			desc[i].key = rtrs__fab_mr_key(m);
			desc[i].len = (uint32_t)data[i].iov_len;
		} else if (caps->mr_local && !umr) {
			struct fab_mr *m;

			ret = rtrs__fab_mr_reg(p->dom, data[i].iov_base,
					       data[i].iov_len, FAB_ACC_LOCAL, &m);
			if (ret)
				return ret;
			r->tmp_mrs[r->ntmp++] = m;
			r->desc[i] = rtrs__fab_mr_desc(m);
		}
	}
	if (r->dir == RTRS_READ) {
		char *iu = req_iu(r);

		n = rtrs__proto_read_msg_encode(iu + r->usr_len, r->usr_len, desc,
						(uint16_t)data_cnt);
		if (r->sess->fence)
			rtrs__proto_fence_encode(iu + r->usr_len + n, &fence);
		r->iov[0].iov_base = iu;
		r->iov[0].iov_len = r->usr_len + r->msg_len;
		r->desc[0] = rtrs__fab_mr_desc(p->iu_mr);
	} else {
		char *iu = req_iu(r);

		n = rtrs__proto_write_msg_encode(iu + r->usr_len, r->usr_len);
		if (r->sess->fence)
			rtrs__proto_fence_encode(iu + r->usr_len + n, &fence);
		r->iov[data_cnt].iov_base = iu;
		r->iov[data_cnt].iov_len = r->usr_len + r->msg_len;
		r->desc[data_cnt] = rtrs__fab_mr_desc(p->iu_mr);
	}
	return 0;
}

/*
 * Post @r (state POSTED, r->con NULL) on a path chosen by the policy; when
 * a post fails before anything reached the provider, the next path is
 * tried. @avoid: a path being failed. 0 when posted (or partly posted on a
 * path that is now failing: its failover re-issues it); -ENOTCONN when no
 * path was usable, else the last path's error.
 */
static int issue(struct clt_req *r, struct clt_path *avoid)
{
	struct rtrs_clt_sess *s = r->sess;
	struct path_set tried = { { 0 } };
	struct clt_path *p;
	int ret, last = -ENOTCONN;
	/* once posted, @r may complete and be reused before we look again */
	bool retry = r->retry;

	if (avoid)
		pset_add(&tried, avoid->idx);
	while ((p = rtrs__clt_pick_path(s, &tried))) {
		struct clt_con *c;
		int cpu = r->submit_cpu;

		if (r->permit->con_type == RTRS_ADMIN_CON || p->ncons == 1)
			c = &p->cons[0];
		else
			c = &p->cons[1 + (unsigned)(cpu < 0 ? 0 : cpu) %
						 (p->ncons - 1)];
		r->next_seg = 0;
		r->posted_bytes = 0;
		ret = prepare_data(r, p);
		if (ret) {
			req_release_mrs(r);
			if (ret == -ENOMEM)
				return ret;
			last = ret;
			continue;
		}
		rtrs__lock(&c->lock);
		if (c->dead) {
			rtrs__unlock(&c->lock);
			req_release_mrs(r);
			continue;
		}
		atomic_store(&r->con, c);
		atomic_fetch_add(&p->inflight, 1);
		if (!rtrs_list_empty(&c->backlog)) {
			rtrs_list_add_tail(&c->backlog, &r->bl_node);
			atomic_fetch_add(&s->st_backlog, 1);
			ret = 0;
		} else {
			ret = post_req(r);
			if (ret == -EAGAIN) {
				rtrs_list_add_tail(&c->backlog, &r->bl_node);
				atomic_fetch_add(&s->st_backlog, 1);
				rtrs__fab_ep_want_tx(c->ep);
				ret = 0;
			}
		}
		if (ret && r->posted_bytes == 0) {
			/* nothing reached the provider: try the next path */
			atomic_store(&r->con, NULL);
			rtrs__unlock(&c->lock);
			path_inflight_put(p);
			req_release_mrs(r);
			plog(RTRS_LOG_WARN, p, "post failed: %s", rtrs_strerror(ret));
			last = ret;
			continue;
		}
		rtrs__unlock(&c->lock);
		if (ret)        /* partly posted: the path's failover re-issues it */
			s->fail_path(p, ret);
		if (retry) {    /* a re-issue: now, or a held one later */
			atomic_fetch_add(&p->st_failovers, 1);
			atomic_fetch_add(&s->st_failovers, 1);
		}
		return 0;
	}
	return last;
}

/* ---- holding requests while no path is up ---- */

static void hold_req(struct clt_req *r)
{
	struct rtrs_clt_sess *s = r->sess;

	r->hold_until_ns = rtrs_now_ns() +
			   (uint64_t)s->attr.no_path_timeout_ms * 1000000ull;
	rtrs__lock(&s->lock);
	rtrs_list_add_tail(&s->held, &r->bl_node);
	rtrs__unlock(&s->lock);
	atomic_fetch_add(&s->st_held, 1);
	rtrs__timer_arm(&s->hold_timer, 50);
}

/* Re-issue held requests (a path came back), fail the expired ones. */
void rtrs__clt_release_held(struct rtrs_clt_sess *s, bool expire_only)
{
	struct rtrs_list mine, *pos, *tmp;
	uint64_t now = rtrs_now_ns();
	bool left;

	rtrs_list_init(&mine);
	rtrs__lock(&s->lock);
	rtrs_list_for_each_safe(pos, tmp, &s->held) {
		struct clt_req *r = container_of(pos, struct clt_req, bl_node);

		if (!expire_only || now >= r->hold_until_ns ||
		    atomic_load(&s->closing)) {
			rtrs_list_del(pos);
			rtrs_list_add_tail(&mine, pos);
		}
	}
	rtrs__unlock(&s->lock);
	rtrs_list_for_each_safe(pos, tmp, &mine) {
		struct clt_req *r = container_of(pos, struct clt_req, bl_node);

		rtrs_list_del(pos);
		if (!atomic_load(&s->closing) && now < r->hold_until_ns &&
		    issue(r, NULL) == 0)
			continue;
		if (!atomic_load(&s->closing) && now < r->hold_until_ns &&
		    rtrs__clt_may_recover(s)) {
			rtrs__lock(&s->lock);
			rtrs_list_add_tail(&s->held, &r->bl_node);
			rtrs__unlock(&s->lock);
			continue;
		}
		complete_req(r, -ECONNABORTED, false);
	}
	rtrs__lock(&s->lock);
	left = !rtrs_list_empty(&s->held);
	rtrs__unlock(&s->lock);
	if (left)
		rtrs__timer_arm(&s->hold_timer, 50);
}

void rtrs__clt_hold_tick(struct rtrs_timer *t)
{
	struct rtrs_clt_sess *s = container_of(t, struct rtrs_clt_sess,
					       hold_timer);

	rtrs__clt_release_held(s, !rtrs__clt_any_connected(s, NULL));
}

int rtrs_clt_request(struct rtrs_clt_sess *s, enum rtrs_dir dir,
		     const struct rtrs_req_ops *ops, struct rtrs_permit *pm,
		     const struct iovec *usr, size_t usr_cnt,
		     const struct iovec *data, size_t data_cnt,
		     struct rtrs_mr *mr)
{
	struct clt_req *r;
	size_t usr_len = 0, msg_len;
	uint64_t data_len = 0;
	int expected = REQ_IDLE;
	char *iu;
	int ret;

	if (!s || !ops || !ops->conf || (dir != RTRS_READ && dir != RTRS_WRITE))
		return -EINVAL;
	if (!rtrs__clt_permit_valid(s, pm) || (usr_cnt && !usr) || (data_cnt && !data))
		return -EINVAL;
	if (mr && mr->sess != s)
		return -EINVAL;
	if (data_cnt > s->max_segments)
		return -EMSGSIZE;
	/* the kernel's server takes one read descriptor and drops a READ
	 * with more unanswered (docs/protocol.md section 6) */
	if (dir == RTRS_READ && data_cnt > 1 && s->kpeer)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < usr_cnt; i++) {
		if (usr[i].iov_len && !usr[i].iov_base)
			return -EINVAL;
		usr_len += usr[i].iov_len;
	}
	for (size_t i = 0; i < data_cnt; i++) {
		if (!data[i].iov_base || !data[i].iov_len)
			return -EINVAL;
		if (mr && !(data[i].iov_base >= mr->buf &&
			    data[i].iov_len <= mr->len &&
			    (size_t)((char *)data[i].iov_base - (char *)mr->buf) <=
				    mr->len - data[i].iov_len))
			return -EINVAL;
		data_len += data[i].iov_len;
	}
	msg_len = (dir == RTRS_READ ? RTRS_READ_MSG_LEN(data_cnt)
				    : RTRS_WRITE_MSG_LEN) +
		  (s->fence ? RTRS_FENCE_LEN : 0);
	if (usr_len + msg_len > hdr_size(s) || data_len > s->geom.max_io_size)
		return -EMSGSIZE;

	r = &s->reqs[pm->mem_id];
	if (atomic_load(&r->state) != REQ_IDLE)
		return -EBUSY;

	r->dir = dir;
	r->ops = *ops;
	r->mr = mr;
	r->data_cnt = (unsigned)data_cnt;
	r->data_len = (uint32_t)data_len;
	r->usr_len = (uint16_t)usr_len;
	r->msg_len = (uint16_t)msg_len;
	r->submit_cpu = sched_getcpu();
	r->retry = false;
	if (++r->next_seq == 0)
		r->next_seq = 1;
	r->seq = r->next_seq;
	for (size_t i = 0; i < data_cnt; i++)
		r->data[i] = data[i];
	iu = req_iu(r);
	for (size_t i = 0, off = 0; i < usr_cnt; off += usr[i].iov_len, i++)
		if (usr[i].iov_len)
			memcpy(iu + off, usr[i].iov_base, usr[i].iov_len);
	if (!atomic_compare_exchange_strong(&r->state, &expected, REQ_POSTED))
		return -EBUSY;
	atomic_fetch_add(&s->inflight, 1);
	if (polled_req(r))      /* before it can complete */
		atomic_fetch_add(&s->io_pending, 1);
	ret = issue(r, NULL);
	if (ret == -ENOTCONN && s->attr.no_path_timeout_ms &&
	    rtrs__clt_may_recover(s)) {
		hold_req(r);
		return 0;
	}
	if (ret) {
		/* nothing reached a server: the sequence gap is harmless */
		atomic_store(&r->state, REQ_IDLE);
		atomic_fetch_sub(&s->inflight, 1);
		if (polled_req(r))
			atomic_fetch_sub(&s->io_pending, 1);
		return ret;
	}
	return 0;
}

/* Run the callbacks of requests completed off the polling thread. */
static void run_done_q(struct rtrs_clt_sess *s)
{
	struct rtrs_list q, *pos, *tmp;

	rtrs__lock(&s->done_lock);
	rtrs_list_take(&q, &s->done_q);
	rtrs__unlock(&s->done_lock);
	rtrs_list_for_each_safe(pos, tmp, &q) {
		struct clt_req *r = container_of(pos, struct clt_req, done_node);

		rtrs_list_del(pos);
		run_conf(r, &r->ops, r->done_status);
	}
}

int rtrs_clt_poll(struct rtrs_clt_sess *s, int timeout_ms)
{
	struct polling saved = polling;
	uint64_t end = 0, idle_since = 0, now;
	int ran;

	if (!s || !s->poller || timeout_ms < -1)
		return -EINVAL;
	if (polling.sess == s)
		return -EDEADLK;
	polling.sess = s;
	polling.ran = 0;
	if (timeout_ms > 0)
		end = rtrs_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		int left = timeout_ms;

		run_done_q(s);
		rtrs__fab_poller_progress(s->poller);
		if (polling.ran || !timeout_ms || !atomic_load(&s->io_pending))
			break;
		now = rtrs_now_ns();
		if (!idle_since)
			idle_since = now;
		if (timeout_ms > 0) {
			if (now >= end)
				break;
			left = (int)((end - now + 999999) / 1000000);
		}
		if (rtrs__fab_may_spin(idle_since, now))
			continue;       /* $RTRS_POLL_US, while a CPU is spare */
		rtrs__fab_poller_wait(s->poller, left);
	}
	ran = polling.ran;
	polling = saved;
	return ran;
}
