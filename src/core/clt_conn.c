// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Connecting a client path: its address (parsed, compared), the path
 * object (alloc/free), its connections and their receives, the handshake
 * of docs/protocol.md section 2 (connect responses, session geometry,
 * authentication, info exchange), a path coming up, and the session's
 * reconnect thread that runs the attempts path_down_final() schedules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clt_int.h"

static int sess_setup(struct rtrs_clt_sess *s, const struct rtrs_conn_rsp *rsp)
{
	uint32_t qd;
	int ret;

	ret = rtrs__proto_geom(&s->geom, rsp->queue_depth, rsp->max_io_size,
			       rsp->max_hdr_size);
	if (ret)
		return -EPROTO;
	qd = s->geom.queue_depth;
	s->new_rkey = rsp->flags & RTRS_MSG_NEW_RKEY_F;
	s->max_segments = RTRS_MAX_SEGMENTS;
	ret = rtrs__clt_permits_init(s, qd);
	s->reqs = calloc(qd, sizeof(*s->reqs));
	s->iu = aligned_alloc(64, (size_t)qd * s->geom.max_hdr_size);
	if (ret || !s->reqs || !s->iu)
		return -ENOMEM;
	for (uint32_t i = 0; i < qd; i++) {
		s->reqs[i].sess = s;
		s->reqs[i].permit = &s->permits[i];
		s->reqs[i].ctx.owner = &s->reqs[i];
		s->reqs[i].ctx.kind = CTX_REQ;
		rtrs_list_init(&s->reqs[i].bl_node);
		atomic_init(&s->reqs[i].state, REQ_IDLE);
	}
	return 0;
}

/* Wait on the path condvar until @done, the timeout, a close of the path
 * or of the session (-ESHUTDOWN). */
static int path_wait(struct clt_path *p, bool (*done)(struct clt_path *, void *),
		     void *arg, unsigned ms)
{
	struct timespec dl = rtrs_deadline(ms);
	int ret = 0;

	rtrs__lock(&p->lock);
	while (!done(p, arg)) {
		/* rtrs_clt_close() cancels: it sets closing, then wakes every
		 * path's waiters under p->lock */
		if (atomic_load(&p->sess->closing)) {
			ret = -ESHUTDOWN;
			break;
		}
		if (atomic_load(&p->state) != CLT_PATH_CONNECTING) {
			ret = p->err ? p->err : -ECONNABORTED;
			break;
		}
		if (rtrs__cond_wait(&p->cond, &p->lock, &dl) == -ETIMEDOUT &&
		    !done(p, arg)) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	rtrs__unlock(&p->lock);
	return ret;
}

static bool con_done(struct clt_path *p, void *arg)
{
	struct clt_con *c = arg;

	(void)p;
	return c->connected || c->cm_err;
}

static bool info_done(struct clt_path *p, void *arg)
{
	(void)arg;
	return p->info_done;
}

static int connect_con(struct clt_path *p, struct clt_con *c)
{
	struct rtrs_clt_sess *s = p->sess;
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_req req = {
		.cid = (uint16_t)c->cid,
		.cid_num = (uint16_t)p->ncons,
		.recon_cnt = p->recon_cnt,
		.first_conn = true,
		.fence = s->fence,
		/* the server shows and closes the path by our number */
		.has_path_no = true,
		.path_no = (uint16_t)p->idx,
		.auth = s->key != NULL,
		/* software RMA (docs/protocol.md 2.6): both ends or neither */
		.frames = rtrs__fab_dom_caps(p->dom)->sw_rma,
		/* ... and we take several in one message, and big ones */
		.batch = true,
		.big = true,
	};
	unsigned loop = c->cid == 0 ? 0 : (c->cid - 1) % rtrs__fab_nloops();
	struct fab_ep *ep;
	int ret;

	memcpy(req.sess_uuid, p->uuid, 16);
	memcpy(req.paths_uuid, s->paths_uuid, 16);
	c->loop = loop;
	/* counted before it exists: a concurrent rtrs__clt_path_close()
	 * then waits for it, and we close it ourselves below */
	rtrs__lock(&p->lock);
	if (atomic_load(&p->state) != CLT_PATH_CONNECTING) {
		ret = p->err ? p->err : -ECONNABORTED;
		rtrs__unlock(&p->lock);
		return ret;
	}
	p->eps_open++;
	rtrs__unlock(&p->lock);
	ret = rtrs__fab_ep_create(p->dom, loop, c->cid ? s->poller : NULL,
				  &rtrs__clt_ep_ops, c, &ep);
	if (ret) {
		rtrs__clt_ep_gone(p, NULL);
		return ret;
	}
	rtrs__fab_ep_set_scope(ep, p);  /* the server writes into our READs */
	/* c->lock is held while @ep is used here: a rtrs__clt_path_close() from
	 * another thread closes it only afterwards, and the loop frees a
	 * closed endpoint */
	rtrs__lock(&c->lock);
	if (c->dead) {
		rtrs__unlock(&c->lock);
		rtrs__fab_ep_close(ep);
		return -ECONNABORTED;
	}
	c->ep = ep;
	if (c->cid) {
		/* a receive for every response that can be outstanding */
		size_t n = MIN(rtrs__fab_dom_caps(p->dom)->rx_size,
			       (size_t)s->geom.queue_depth);

		ret = rtrs__rx_ring_init(&c->rx, p->dom, c, (unsigned)n,
					 RTRS_RX_BUF);
		if (!ret)
			ret = rtrs__rx_ring_post(&c->rx, c->ep);
	}
	rtrs__proto_conn_req_encode(priv, &req);
	if (!ret)
		ret = rtrs__fab_ep_connect(ep, priv, sizeof(priv));
	rtrs__unlock(&c->lock);
	if (ret)
		return ret;
	ret = path_wait(p, con_done, c, s->attr.connect_timeout_ms);
	if (!ret) {
		/* a CM event may set it any time: p->lock (TSan) */
		rtrs__lock(&p->lock);
		ret = c->cm_err;
		rtrs__unlock(&p->lock);
	}
	return ret;
}

static bool auth_done(struct clt_path *p, void *arg)
{
	(void)arg;
	return p->auth_got;
}

#define AUTH_REQ_OFF (RTRS_INFO_REQ_AUTH_LEN + FAB_MSG_ROOM)

/*
 * The authentication of docs/protocol.md section 2.7, on con 0 with the
 * info receive posted: our nonce and identity out, the server's nonce and
 * proof in, checked before anything else is sent. The info receive is
 * posted again for the info_rsp; the caller sends the info_req with our
 * proof (auth_info_req()). -EACCES when the server refuses or cannot
 * prove the key.
 */
static int path_auth(struct clt_path *p, struct clt_con *c0)
{
	struct rtrs_clt_sess *s = p->sess;
	uint8_t ns[RTRS_AUTH_NONCE_LEN], proof[RTRS_AUTH_PROOF_LEN],
		want[RTRS_AUTH_PROOF_LEN];
	char *areq = p->info_req + AUTH_REQ_OFF;
	int ret, err;

	ret = rtrs__auth_random(p->auth_nc, sizeof(p->auth_nc));
	if (ret)
		return ret;
	rtrs__proto_auth_req_encode(areq, p->auth_nc, s->key->id);
	rtrs__lock(&p->lock);
	p->auth_wait = true;
	p->auth_got = false;
	rtrs__unlock(&p->lock);
	p->auth_tx.kind = CTX_MISC;
	ret = rtrs__fab_post_send(c0->ep, areq, RTRS_AUTH_REQ_LEN,
				  rtrs__fab_mr_desc(p->info_req_mr), false, 0,
				  &p->auth_tx, false);
	if (!ret)
		ret = path_wait(p, auth_done, NULL, s->attr.connect_timeout_ms);
	if (ret)
		return ret;
	ret = rtrs__proto_auth_rsp_decode(p->auth_rsp, p->auth_rsp_len, &err,
					  ns, proof);
	if (ret) {
		plog(RTRS_LOG_ERR, p, "malformed authentication answer");
		return -EPROTO;
	}
	if (err) {
		plog(RTRS_LOG_ERR, p, "the server refused identity %s: %s",
		     s->key->id, rtrs_strerror(err));
		return -EACCES;
	}
	rtrs__auth_proof(s->key, true, p->auth_nc, ns, s->paths_uuid, p->uuid,
			 NULL, want);
	if (rtrs__memeq_ct(want, proof, sizeof(want))) {
		plog(RTRS_LOG_ERR, p, "the server could not prove the key of "
		     "identity %s", s->key->id);
		return -EACCES;
	}
	/* our proof goes after the info_req's 272 bytes */
	rtrs__auth_proof(s->key, false, p->auth_nc, ns, s->paths_uuid, p->uuid,
			 s->name, (uint8_t *)p->info_req + RTRS_INFO_REQ_LEN);
	return rtrs__fab_post_recv(c0->ep, p->info_buf, p->info_len,
				   rtrs__fab_mr_desc(p->info_mr),
				   &p->info_rx.ctx);
}

/* What con 0's connect response says of the server, against what this
 * end needs: its data path, authentication and fencing. */
static int check_rsp(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);

	if (caps->sw_rma != !!(p->rsp.flags & RTRS_MSG_FRAMES_F)) {
		plog(RTRS_LOG_ERR, p, "the server's data path differs: %s",
		     caps->sw_rma ? "it takes the provider's RMA, this end "
		     "carries RMA as frames (a librtrs before 0.4?)"
		     : "it carries RMA as frames, this end does not");
		return -EPROTONOSUPPORT;
	}
	if (s->key && !(p->rsp.flags & RTRS_MSG_AUTH_F)) {
		plog(RTRS_LOG_ERR, p, "the server does not authenticate: "
		     "refusing it (a key is set)");
		return -EACCES;
	}
	return 0;
}

/* Fencing, decided by the first path (under s->lock): on when this end
 * asked for it and the server agreed; a server that is not librtrs (the
 * kernel's: no path id) gets none and the failover of the kernel's
 * RTRS, at least once. Every later path must match. */
static int fence_join(struct clt_path *p, bool first)
{
	struct rtrs_clt_sess *s = p->sess;
	bool srv = (p->rsp.flags & RTRS_MSG_FENCE_F) && p->rsp.path_id;

	RTRS_ASSERT_HELD(&s->lock);
	if (first) {
		s->kpeer = !p->rsp.path_id;
		atomic_store(&s->fence, s->fence_want && srv);
		if (s->fence_want && !srv)
			plog(RTRS_LOG_INFO, p, "the server does not fence "
			     "requests (%s): failover may run a request twice",
			     s->kpeer ? "the kernel's RTRS" : "RTRS_FENCE=0 there?");
	} else if (srv != atomic_load(&s->fence)) {
		plog(RTRS_LOG_ERR, p, "the server %s requests, the session's "
		     "first path did not", srv ? "fences" : "does not fence");
		return -EPROTO;
	}
	p->srv_id = atomic_load(&s->fence) ? p->rsp.path_id : 0;
	return 0;
}

/* The session's geometry from its first path, the same on every other;
 * this path's remote buffers and the header buffers' registration. */
static int path_join_sess(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;
	int ret = 0;

	rtrs__lock(&s->lock);
	if (!s->permits) {
		ret = fence_join(p, true);
		if (!ret)
			ret = sess_setup(s, &p->rsp);
	} else if (p->rsp.queue_depth != s->geom.queue_depth ||
		   p->rsp.max_io_size != s->geom.max_io_size ||
		   p->rsp.max_hdr_size != s->geom.max_hdr_size) {
		plog(RTRS_LOG_ERR, p, "server geometry differs between paths");
		ret = -EPROTO;
	} else {
		ret = fence_join(p, false);
	}
	rtrs__unlock(&s->lock);
	if (ret)
		return ret;
	atomic_store(&p->reqs_ready, true);
	if (!p->rbufs)
		p->rbufs = calloc(s->geom.queue_depth, sizeof(*p->rbufs));
	if (!p->rbufs)
		return -ENOMEM;
	return rtrs__fab_mr_reg(p->dom, s->iu,
				(size_t)s->geom.queue_depth * s->geom.max_hdr_size,
				FAB_ACC_LOCAL, &p->iu_mr);
}

/* The info exchange on con 0 (with the authentication before it when a
 * key is set): the big receive first, then the small ones. */
static int info_exchange(struct clt_path *p, struct clt_con *c0)
{
	struct rtrs_clt_sess *s = p->sess;
	const struct fab_caps *caps = rtrs__fab_dom_caps(p->dom);
	int ret;

	p->info_len = MAX(RTRS_INFO_RSP_LEN(s->geom.queue_depth),
			  RTRS_AUTH_RSP_LEN);
	p->info_buf = calloc(1, p->info_len + FAB_MSG_ROOM);
	if (!p->info_buf)
		return -ENOMEM;
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_buf,
				       p->info_len + FAB_MSG_ROOM,
				       FAB_ACC_LOCAL, &p->info_mr);
		if (ret)
			return ret;
	}
	p->info_rx.con = c0;
	p->info_rx.buf = p->info_buf;
	p->info_rx.len = p->info_len;
	p->info_rx.ctx.owner = &p->info_rx;
	p->info_rx.ctx.kind = CTX_INFO;
	ret = rtrs__fab_post_recv(c0->ep, p->info_buf, p->info_len,
				  rtrs__fab_mr_desc(p->info_mr), &p->info_rx.ctx);
	if (ret)
		return ret;
	if (caps->mr_local) {
		ret = rtrs__fab_mr_reg(p->dom, p->info_req, sizeof(p->info_req),
				       FAB_ACC_LOCAL, &p->info_req_mr);
		if (ret)
			return ret;
	}
	rtrs__proto_info_req_encode(p->info_req, s->name);
	/* before the small receives: the info receive must stay the first
	 * one posted, for the info_rsp */
	if (s->key) {
		ret = path_auth(p, c0);
		if (ret)
			return ret;
	}
	ret = rtrs__rx_ring_init(&c0->rx, p->dom, c0,
				 (unsigned)MIN(caps->rx_size - 1,
					       (size_t)s->geom.queue_depth),
				 RTRS_RX_BUF);
	if (!ret)
		ret = rtrs__rx_ring_post(&c0->rx, c0->ep);
	if (ret)
		return ret;
	p->info_tx.kind = CTX_MISC;
	ret = rtrs__fab_post_send(c0->ep, p->info_req,
				  s->key ? RTRS_INFO_REQ_AUTH_LEN : RTRS_INFO_REQ_LEN,
				  rtrs__fab_mr_desc(p->info_req_mr), false, 0,
				  &p->info_tx, false);
	if (ret)
		return ret;
	ret = path_wait(p, info_done, NULL, s->attr.connect_timeout_ms);
	return ret ? ret : p->info_err;
}

static int path_handshake(struct clt_path *p, bool recon)
{
	struct rtrs_clt_sess *s = p->sess;
	struct clt_con *c0 = &p->cons[0];
	int ret;

	ret = connect_con(p, c0);
	if (!ret)
		ret = check_rsp(p);
	if (!ret)
		ret = path_join_sess(p);
	if (ret)
		return ret;
	for (unsigned i = 1; i < p->ncons; i++) {
		ret = connect_con(p, &p->cons[i]);
		if (ret)
			return ret;
	}
	ret = info_exchange(p, c0);
	if (ret)
		return ret;
	/* counted before the state shows it: whoever sees the path back
	 * also sees the reconnect */
	if (recon)
		atomic_fetch_add(&p->st_recon_ok, 1);
	if (rtrs__clt_set_state(p, CLT_PATH_CONNECTED) < 0) {
		if (recon)
			atomic_fetch_sub(&p->st_recon_ok, 1);
		return p->err ? p->err : -ECONNABORTED;
	}
	rtrs__clt_path_wake(p);
	plog(RTRS_LOG_INFO, p, "connected: %u connections, qd %u, io %u",
	     p->ncons, s->geom.queue_depth, s->geom.max_io_size);
	return 0;
}

/* Free what one connection attempt allocated; the endpoints are closed. */
static void path_reset(struct clt_path *p)
{
	for (unsigned i = 0; i < p->ncons; i++) {
		struct clt_con *c = &p->cons[i];

		rtrs__rx_ring_free(&c->rx);
		rtrs__lock(&c->lock);
		c->ep = NULL;
		c->dead = false;
		rtrs__unlock(&c->lock);
		c->connected = c->closed = false;
		c->cm_err = 0;
	}
	rtrs__fab_mr_close(p->iu_mr);
	rtrs__fab_mr_close(p->info_mr);
	rtrs__fab_mr_close(p->info_req_mr);
	p->iu_mr = p->info_mr = p->info_req_mr = NULL;
	free(p->info_buf);
	p->info_buf = NULL;
	p->info_done = false;
	p->info_err = 0;
	p->auth_wait = p->auth_got = false;
	p->err = 0;
	p->srv_id = 0;
	rtrs__lock(&p->lock);
	p->local[0] = 0;
	rtrs__unlock(&p->lock);
	rtrs__hb_reset(&p->live);
}

/* Record the source address connection 0 of @p uses: while it is not
 * dead, its endpoint is not closed (rtrs__clt_path_close() marks it first). */
static void path_note_local(struct clt_path *p)
{
	struct clt_con *c = &p->cons[0];
	char buf[sizeof(p->local)] = "";

	rtrs__lock(&c->lock);
	if (!c->dead && c->ep && rtrs__fab_ep_name(c->ep, buf, sizeof(buf)))
		buf[0] = 0;
	rtrs__unlock(&c->lock);
	rtrs__lock(&p->lock);
	snprintf(p->local, sizeof(p->local), "%s", buf);
	rtrs__unlock(&p->lock);
}

/* One connection attempt of a path in CONNECTING; on failure the path is
 * closed (and, once open() has returned, reconnects as configured). */
static int path_connect(struct clt_path *p, bool recon)
{
	int ret;

	path_reset(p);
	rtrs__random(p->uuid, sizeof(p->uuid));  /* a new server path object */
	p->recon_cnt++;
	ret = path_handshake(p, recon);
	if (ret) {
		/* -ESHUTDOWN: cancelled by rtrs_clt_close() */
		plog(ret == -ESHUTDOWN ? RTRS_LOG_INFO : RTRS_LOG_ERR, p,
		     "connect failed: %s", rtrs_strerror(ret));
		rtrs__clt_path_close(p, ret);
		return ret;
	}
	path_note_local(p);
	return 0;
}

/* A path is up again: start its heartbeat, tell the user if it is the
 * first one back, re-issue held requests. */
static void path_up(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;

	rtrs__hb_rx(&p->live);
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
	rtrs__lock(&s->lock);
	p->recon_attempts = 0;
	rtrs__unlock(&s->lock);
	rtrs__clt_link_check(s);
	rtrs__clt_release_held(s, false);
}

/* Attempt a connect of @p, which is in RECONNECTING. */
int rtrs__clt_path_attempt(struct clt_path *p)
{
	struct rtrs_clt_sess *s = p->sess;
	int ret;

	RTRS_ASSERT_HELD(&s->ctl_lock);
	if (rtrs__clt_set_state(p, CLT_PATH_CONNECTING) < 0)
		return -EBUSY;
	rtrs__lock(&s->lock);
	p->recon_attempts++;
	rtrs__unlock(&s->lock);
	ret = path_connect(p, true);
	if (ret) {
		atomic_fetch_add(&p->st_recon_fail, 1);
		return ret;
	}
	plog(RTRS_LOG_INFO, p, "reconnected");
	path_up(p);
	return 0;
}

/* The session's reconnect thread: runs the due attempts one by one. */
void *rtrs__clt_recon_main(void *arg)
{
	struct rtrs_clt_sess *s = arg;

	rtrs__lock(&s->lock);
	while (!atomic_load(&s->closing)) {
		unsigned n = atomic_load(&s->npaths);
		struct clt_path *due = NULL;
		uint64_t now = rtrs_now_ns(), next = UINT64_MAX;

		for (unsigned i = 0; i < n; i++) {
			struct clt_path *p = sess_path(s, i);

			if (!p || atomic_load(&p->state) != CLT_PATH_RECONNECTING)
				continue;
			if (p->recon_due_ns <= now) {
				due = p;
				break;
			}
			next = MIN(next, p->recon_due_ns);
		}
		if (due) {
			rtrs__unlock(&s->lock);
			rtrs__lock(&s->ctl_lock);
			if (atomic_load(&due->state) == CLT_PATH_RECONNECTING)
				rtrs__clt_path_attempt(due);
			rtrs__unlock(&s->ctl_lock);
			rtrs__lock(&s->lock);
			continue;
		}
		if (next == UINT64_MAX) {
			rtrs__cond_wait(&s->recon_cond, &s->lock, NULL);
		} else {
			uint64_t ms = (next - now) / 1000000 + 1;
			struct timespec dl = rtrs_deadline(ms > 60000 ? 60000
								      : (unsigned)ms);

			rtrs__cond_wait(&s->recon_cond, &s->lock, &dl);
		}
	}
	rtrs__unlock(&s->lock);
	return NULL;
}

void rtrs__clt_path_free(struct clt_path *p)
{
	if (!p)
		return;
	rtrs__timer_stop(&p->hb);
	path_reset(p);
	for (unsigned i = 0; p->cons && i < p->ncons; i++)
		rtrs__lock_destroy(&p->cons[i].lock);
	free(p->cons);
	free(p->rbufs);
	rtrs__fab_dom_put(p->dom);
	rtrs__lock_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

/* "[prov://]host:port", and a source "host", "[v6]", or those with
 * ":port" (the port is not used). -EINVAL when malformed. */
int rtrs__clt_addr_parse(const struct rtrs_path_addr *a, const char *prov,
			 struct path_addr *pa)
{
	const char *dst;
	char sp[16];
	size_t n;

	if (!a || !a->dst)
		return -EINVAL;
	dst = rtrs__split_provider(a->dst, prov, pa->prov, sizeof(pa->prov));
	if (!dst || rtrs__split_hostport(dst, pa->host, sizeof(pa->host),
					 pa->port, sizeof(pa->port)) ||
	    rtrs__host_check(pa->host))
		return -EINVAL;
	pa->src[0] = 0;
	if (!a->src)
		return 0;
	if (rtrs__split_hostport(a->src, pa->src, sizeof(pa->src), sp,
				 sizeof(sp))) {
		n = strlen(a->src);
		if (a->src[0] == '[' && n > 2 && a->src[n - 1] == ']')
			snprintf(pa->src, sizeof(pa->src), "%.*s", (int)(n - 2),
				 a->src + 1);
		else if (n < sizeof(pa->src))
			memcpy(pa->src, a->src, n + 1);
		else
			return -EINVAL;
	}
	return rtrs__host_check(pa->src);
}

/* @h as text that is equal for equal hosts: an address in inet_ntop()'s
 * form, a name in lower case without a trailing dot. */
static void host_canon(const char *h, char *out, size_t len)
{
	unsigned char a[16];
	size_t n;

	if (inet_pton(AF_INET, h, a) == 1 && inet_ntop(AF_INET, a, out, len))
		return;
	if (inet_pton(AF_INET6, h, a) == 1 && inet_ntop(AF_INET6, a, out, len))
		return;
	for (n = 0; h[n] && n + 1 < len; n++)
		out[n] = (char)(h[n] >= 'A' && h[n] <= 'Z' ? h[n] - 'A' + 'a'
							  : h[n]);
	if (n && out[n - 1] == '.')
		n--;
	out[n] = 0;
}

/* What makes a path: provider, destination host and port, source host (the
 * source port is not used), as text; two paths with the same key are
 * duplicates. @prov: the session's provider. */
int rtrs__clt_path_key(const struct rtrs_path_addr *a, const char *prov,
		       char key[PATH_KEY_LEN])
{
	char dst[128], src[128] = "";
	const char *env = getenv("RTRS_PROVIDER");
	struct path_addr pa;
	int ret = rtrs__clt_addr_parse(a, prov, &pa);

	if (ret)
		return ret;
	if (!pa.prov[0])        /* the fabric's default, as it picks it */
		snprintf(pa.prov, sizeof(pa.prov), "%s",
			 env && *env ? env : RTRS_FAB_DEFAULT_PROV);
	host_canon(pa.host, dst, sizeof(dst));
	if (pa.src[0])
		host_canon(pa.src, src, sizeof(src));
	snprintf(key, PATH_KEY_LEN, "%s %s %lu %s", pa.prov, dst,
		 strtoul(pa.port, NULL, 10), src);
	return 0;
}

/* -EEXIST if a path in a slot of @s is the same path as @a, else 0. */
int rtrs__clt_path_dup(struct rtrs_clt_sess *s, const struct rtrs_path_addr *a)
{
	char key[PATH_KEY_LEN], other[PATH_KEY_LEN];
	unsigned n = atomic_load(&s->npaths);

	RTRS_ASSERT_HELD(&s->ctl_lock);
	if (rtrs__clt_path_key(a, s->attr.provider, key))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct rtrs_path_addr pa = { NULL, NULL };

		if (!p)
			continue;
		pa.dst = p->dst;
		pa.src = p->src[0] ? p->src : NULL;
		if (!rtrs__clt_path_key(&pa, s->attr.provider, other) &&
		    !strcmp(key, other))
			return -EEXIST;
	}
	return 0;
}

/* A new path object in slot @idx, not connected (state CONNECTING). */
static int path_alloc(struct rtrs_clt_sess *s, unsigned idx,
		      const struct rtrs_path_addr *a, struct clt_path **out)
{
	struct path_addr pa;
	struct clt_path *p;
	unsigned nio;
	int ret;

	ret = rtrs__clt_addr_parse(a, s->attr.provider, &pa);
	if (ret)
		return ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->sess = s;
	p->idx = idx;
	snprintf(p->dst, sizeof(p->dst), "%s", a->dst);
	if (a->src)
		snprintf(p->src, sizeof(p->src), "%s", a->src);
	rtrs__lock_init(&p->lock, RTRS_RANK_CLT_PATH, "path->lock");
	rtrs__cond_init_mono(&p->cond);
	atomic_init(&p->state, CLT_PATH_CONNECTING);
	p->down_done = true;
	rtrs__timer_init(&p->hb, rtrs__clt_hb);
	rtrs_list_init(&p->grave);
	nio = s->attr.io_cons ? s->attr.io_cons : rtrs__fab_usable_cpus();
	p->ncons = 1 + nio;
	p->cons = calloc(p->ncons, sizeof(*p->cons));
	if (!p->cons) {
		rtrs__clt_path_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < p->ncons; i++) {
		p->cons[i].path = p;
		p->cons[i].cid = i;
		rtrs__lock_init(&p->cons[i].lock, RTRS_RANK_CLT_CON, "con->lock");
		rtrs_list_init(&p->cons[i].backlog);
	}
	/* resolves a host name: blocks */
	ret = rtrs__fab_dom_open(pa.prov, pa.host, pa.port,
				 pa.src[0] ? pa.src : NULL, false, &p->dom);
	if (ret) {
		rtrs__clt_path_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* Allocate slot @idx and connect it. On failure the slot is left empty. */
int rtrs__clt_path_open(struct rtrs_clt_sess *s, unsigned idx,
			const struct rtrs_path_addr *a)
{
	struct clt_path *p;
	int ret = path_alloc(s, idx, a, &p);

	if (ret)
		return ret;
	p->admin_down = true;   /* no automatic reconnect before it was up */
	rtrs__lock(&s->lock);
	atomic_store(&s->paths[idx], p);
	if (atomic_load(&s->npaths) <= idx)
		atomic_store(&s->npaths, idx + 1);
	rtrs__unlock(&s->lock);
	ret = path_connect(p, false);
	if (ret) {
		rtrs__clt_path_shutdown(p);
		rtrs__lock(&s->lock);
		atomic_store(&s->paths[idx], NULL);
		rtrs__unlock(&s->lock);
		rtrs__clt_path_free(p);
		return ret;
	}
	rtrs__lock(&s->lock);
	p->admin_down = false;
	rtrs__unlock(&s->lock);
	rtrs__timer_arm(&p->hb, s->attr.hb_interval_ms);
	/* added while no path was up: it is back */
	rtrs__clt_link_check(s);
	return 0;
}
