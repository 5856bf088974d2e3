// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server, a path's connections: connection requests (the caps, sessions
 * and paths found or made), the authentication and info exchange, CM and
 * completion events, control immediates (heartbeat, close) and the
 * heartbeat timer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

static void srv_cqe(void *ctx, const struct fab_cqe *c);
static void srv_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
static void srv_closed(void *ctx);
static void srv_connreq(void *ctx, struct fab_connreq *req, const void *data,
			size_t len);

static const struct fab_ep_ops srv_ep_ops = {
	.cqe = srv_cqe,
	.cm = srv_cm,
	.tx_ready = rtrs__srv_tx_ready,
	.closed = srv_closed,
};

const struct fab_pep_ops rtrs__srv_pep_ops = { .connreq = srv_connreq };

static void handle_info_req(struct srv_con *c, const void *buf, size_t len);

/* Heartbeat tick: judge liveness on received traffic, then send one. */
static void srv_hb(struct rtrs_timer *t)
{
	struct srv_path *p = container_of(t, struct srv_path, hb);
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	struct srv_con *c0;
	unsigned next = ctx->attr.hb_interval_ms;

	if (atomic_load(&p->state) == SRV_PATH_CONNECTING) {
		/* before its info exchange a path is not alive, whatever it
		 * sends (heartbeats included): it has until the deadline */
		uint64_t age = rtrs_now_ms() - p->born_ms;
		unsigned hs;

		srv_lock(ctx);
		hs = ctx->lim.handshake_ms;
		srv_unlock(ctx);
		if (age >= hs) {
			atomic_fetch_add(&ctx->st_hs_timeouts, 1);
			pslog(RTRS_LOG_WARN, p,
			      "no info exchange within %u ms, closing", hs);
			rtrs__srv_path_close(p, -ETIMEDOUT, false);
			return;
		}
		if (hs - age < next)
			next = (unsigned)(hs - age);
		rtrs__hb_reset(&p->live);
		rtrs__timer_arm(&p->hb, next);
		return;
	}
	if (!rtrs__hb_tick(&p->live, ctx->attr.hb_missed_max)) {
		atomic_fetch_add(&ctx->st_hb_timeouts, 1);
		pslog(RTRS_LOG_WARN, p, "no traffic for %u heartbeats",
		      p->live.missed);
		rtrs__srv_path_close(p, -ETIMEDOUT, false);
		return;         /* @p may be gone */
	}
	if (atomic_load(&p->state) == SRV_PATH_CONNECTED &&
	    atomic_load(&p->info_sent)) {
		int ret;

		c0 = p->cons[0];
		ret = rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
					  rtrs_imm(RTRS_IMM_HB, 0), NULL, false);
		if (ret && ret != -EAGAIN && ret != -ENOTCONN) {
			rtrs__srv_path_close(p, ret, false);
			return;
		}
	}
	rtrs__timer_arm(&p->hb, ctx->attr.hb_interval_ms);
}

static void srv_closed(void *ctx)
{
	struct srv_con *c = ctx;

	rtrs__srv_path_put(c->path);
}

static void send_hb_ack(struct srv_con *c)
{
	int ret = rtrs__fab_post_send(c->ep, NULL, 0, NULL, true,
				      rtrs_imm(RTRS_IMM_HB_ACK, 0), NULL, false);

	if (ret && ret != -EAGAIN && ret != -ENOTCONN)
		rtrs__srv_path_close(c->path, ret, false);
}

/* The client closes its session: it will not come back for its requests,
 * so the session goes with its last path instead of lingering. */
static void handle_close(struct srv_con *c)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	int ret;

	if (c->cid != 0 || !p->fence) {
		pslog(RTRS_LOG_ERR, p, "close request on con %u", c->cid);
		rtrs__srv_path_close(p, -EPROTO, true);
		return;
	}
	srv_lock(ctx);
	p->sess->client_closed = true;
	srv_unlock(ctx);
	ret = rtrs__fab_post_send(c->ep, NULL, 0, NULL, true,
				  rtrs_imm(RTRS_IMM_CLOSE_ACK, 0), NULL, false);
	if (ret && ret != -ENOTCONN && ret != -EAGAIN)
		rtrs__srv_path_close(p, ret, false);
}

static void handle_imm(struct srv_con *c, uint32_t imm)
{
	switch (rtrs_imm_type(imm)) {
	case RTRS_IMM_IO_REQ:
		rtrs__srv_io_req(c, rtrs_imm_payload(imm));
		break;
	case RTRS_IMM_HB:
		send_hb_ack(c);
		break;
	case RTRS_IMM_HB_ACK:
		break;
	case RTRS_IMM_CLOSE:
		handle_close(c);
		break;
	default:
		pslog(RTRS_LOG_ERR, c->path, "unknown immediate type %u",
		      rtrs_imm_type(imm));
		rtrs__srv_path_close(c->path, -EPROTO, true);
	}
}

/*
 * Whether @name belongs to a session other than @self, which would be
 * authenticated as @id ("" without keys). A lingering session (no path)
 * keeps its name for its own client until the linger ends (issue 15 item
 * 7: no one else can take it and make the owner's reconnect fail). Only
 * the same identity may take it over at once: the owner restarted. The
 * old session then goes now; if its client does come back, it is refused
 * (-EPERM) and none of its requests runs again.
 */
static bool name_taken(struct rtrs_srv_ctx *ctx, struct rtrs_srv_sess *self,
		       const char *name, const char *id)
{
	struct rtrs_list *pos, *tmp;

	srv_assert_locked(ctx);
	rtrs_list_for_each_safe(pos, tmp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(pos, struct rtrs_srv_sess,
						       node);

		if (s == self || !s->named || s->evicted || strcmp(s->name, name))
			continue;
		if (s->npaths || !id[0] || strcmp(s->identity, id))
			return true;
		s->evicted = true;
		rtrs__timer_arm(&s->linger, 0);
	}
	return false;
}

static int send_info_rsp(struct srv_path *p, struct srv_con *c, int refuse)
{
	struct rtrs_srv_sess *s = p->sess;
	size_t len;

	if (refuse) {
		len = rtrs__proto_info_rsp_refuse_encode(p->info_rsp, refuse);
	} else {
		unsigned n = p->nmrs;
		struct rtrs_sg_desc *d = calloc(n, sizeof(*d));

		if (!d)
			return -ENOMEM;
		for (unsigned i = 0; i < n; i++) {
			char *base = n > 1 ? chunk_ptr(s, i) : s->chunks;

			d[i].addr = rtrs__fab_mr_raddr(p->mrs[i], base);
			d[i].key = rtrs__fab_mr_key(p->mrs[i]);
			d[i].len = n > 1 ? s->geom.chunk_size
					 : s->geom.chunk_size * s->geom.queue_depth;
		}
		len = rtrs__proto_info_rsp_encode(p->info_rsp, p->info_rsp_len, d,
						  (uint16_t)n);
		free(d);
	}
	p->info_ctx.owner = p;
	p->info_ctx.kind = CTX_INFO;
	/* After a refusal the client closes the path; until then it stays
	 * CONNECTING and anything else it sends is malformed input. Closing
	 * here would race the refusal to the client. */
	return rtrs__fab_post_send(c->ep, p->info_rsp, len,
				   rtrs__fab_mr_desc(p->info_mr), false, 0,
				   &p->info_ctx, false);
}

/*
 * The client's proof at the end of its info_req (section 2.7): only after
 * our auth_rsp, once. 0 or -EACCES; the path's authentication is then OK
 * or FAILED.
 */
static int auth_check_proof(struct srv_path *p, const void *buf, size_t len,
			    const char *name)
{
	struct rtrs_srv_sess *s = p->sess;
	uint8_t proof[RTRS_AUTH_PROOF_LEN], want[RTRS_AUTH_PROOF_LEN];
	int ret = -EACCES;

	if (p->auth && p->auth_state == SRV_AUTH_SENT &&
	    !rtrs__proto_info_req_proof(buf, len, proof)) {
		rtrs__auth_proof(p->auth_key, false, p->auth_nc, p->auth_ns,
				 s->uuid, p->uuid, name, want);
		if (!rtrs__memeq_ct(want, proof, sizeof(want)))
			ret = 0;
	}
	p->auth_state = ret ? SRV_AUTH_FAILED : SRV_AUTH_OK;
	return ret;
}

/* auth_req: our nonce and proof for the client's identity, or -EACCES */
static void handle_auth_req(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	char id[RTRS_AUTH_ID_LEN];
	uint8_t proof[RTRS_AUTH_PROOF_LEN];
	size_t n;
	int ret, err = 0;

	if (!p->auth || p->auth_state != SRV_AUTH_NONE) {
		pslog(RTRS_LOG_ERR, p, "unexpected authentication request");
		atomic_fetch_add(&s->ctx->st_bad_input, 1);
		rtrs__srv_path_close(p, -EPROTO, true);
		return;
	}
	ret = rtrs__proto_auth_req_decode(buf, len, p->auth_nc, id);
	if (ret) {
		pslog(RTRS_LOG_ERR, p, "malformed authentication request");
		rtrs__srv_path_close(p, ret, true);
		return;
	}
	p->auth_key = rtrs__auth_find(&s->ctx->keys, id);
	if (!p->auth_key) {
		pslog(RTRS_LOG_WARN, p, "unknown identity %s", id);
		err = -EACCES;
	} else {
		err = rtrs__auth_random(p->auth_ns, sizeof(p->auth_ns));
	}
	if (!err)
		rtrs__auth_proof(p->auth_key, true, p->auth_nc, p->auth_ns,
				 s->uuid, p->uuid, NULL, proof);
	p->auth_state = err ? SRV_AUTH_FAILED : SRV_AUTH_SENT;
	n = rtrs__proto_auth_rsp_encode(p->auth_rsp, err, p->auth_ns, proof);
	p->auth_ctx.owner = p;
	p->auth_ctx.kind = CTX_INFO;
	ret = rtrs__fab_post_send(c->ep, p->auth_rsp, n,
				  rtrs__fab_mr_desc(p->info_mr), false, 0,
				  &p->auth_ctx, false);
	if (ret)
		rtrs__srv_path_close(p, ret, false);
}

/* A message on cid 0 before the info exchange finished; false when the
 * path was closed for it. */
static bool handle_admin_msg(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;

	if (p->auth_state == SRV_AUTH_FAILED) {
		/* refused: nothing more from it */
		pslog(RTRS_LOG_ERR, p, "message after a refusal");
		rtrs__srv_path_close(p, -EACCES, true);
		return false;
	}
	if (rtrs__proto_msg_type(buf, len) == RTRS_MSG_AUTH_REQ)
		handle_auth_req(c, buf, len);
	else
		handle_info_req(c, buf, len);
	return true;
}

/*
 * Take the path up as session @name of identity @id ("" without keys), or
 * say why not: 0, or the refusal for the info_rsp (-EACCES the session is
 * another identity's, -EPERM the name is taken, -EINVAL the session has
 * another name, -ECONNRESET the path is closing). No lock held.
 */
static int info_take_name(struct srv_path *p, const char *name,
			  const char *id, bool *first)
{
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	int refuse = 0;

	srv_lock(ctx);
	if (id[0] && s->identity[0] && strcmp(s->identity, id)) {
		/* the session is another identity's */
		refuse = -EACCES;
	} else if (name_taken(ctx, s, name, id)) {
		refuse = -EPERM;
	} else if (s->named && strcmp(s->name, name)) {
		refuse = -EINVAL;
	} else if (!rtrs__srv_path_set_state(p, SRV_PATH_CONNECTING,
					     SRV_PATH_CONNECTED)) {
		refuse = -ECONNRESET;
	} else {
		memcpy(s->name, name, sizeof(s->name));
		s->named = true;
		snprintf(s->identity, sizeof(s->identity), "%s", id);
		p->counted_up = true;
		*first = s->npaths_up++ == 0 && !s->link_up;
	}
	srv_unlock(ctx);
	return refuse;
}

/*
 * After info_take_name(): the first path of a session asks the
 * application (link_ev CONNECTED, -ECONNREFUSED if it says no); then the
 * path is counted as established, or taken down again. No lock held.
 */
static int info_settle(struct srv_path *p, int refuse, bool first)
{
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;

	if (!refuse && first) {
		if (ctx->attr.ops.link_ev &&
		    ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_CONNECTED,
					  ctx->attr.priv))
			refuse = -ECONNREFUSED;
		else
			s->link_up = true;
	}
	srv_lock(ctx);
	if (refuse == -ECONNREFUSED) {
		/* the application said no: the path is not up (no IO, no
		 * heartbeat keeps it), and goes at the deadline if the
		 * client does not close it first */
		rtrs__srv_path_set_state(p, SRV_PATH_CONNECTED,
					 SRV_PATH_CONNECTING);
		p->counted_up = false;
		s->npaths_up--;
	} else if (!refuse) {
		if (p->pending) {
			p->pending = false;
			ctx->npending--;
		}
		if (!s->established) {
			s->established = true;
			ctx->nsess++;
		}
	}
	srv_unlock(ctx);
	return refuse;
}

static void handle_info_req(struct srv_con *c, const void *buf, size_t len)
{
	struct srv_path *p = c->path;
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	char name[RTRS_PROTO_NAME_LEN];
	const char *id = "";
	int refuse, ret;
	bool first = false;

	ret = rtrs__proto_info_req_decode(buf, len, name);
	if (ret) {
		pslog(RTRS_LOG_ERR, p, "malformed info request: %s",
		      rtrs_strerror(ret));
		rtrs__srv_path_close(p, ret, true);
		return;
	}
	if (ctx->keys.n) {
		ret = auth_check_proof(p, buf, len, name);
		if (ret) {
			pslog(RTRS_LOG_WARN, p, "authentication failed: %s",
			      rtrs_strerror(ret));
			ret = send_info_rsp(p, c, -EACCES);
			if (ret)
				rtrs__srv_path_close(p, ret, false);
			return;
		}
		id = p->auth_key->id;
	}
	refuse = info_take_name(p, name, id, &first);
	refuse = info_settle(p, refuse, first);
	if (refuse && p->auth)
		p->auth_state = SRV_AUTH_FAILED;        /* no second try */
	if (refuse)
		pslog(RTRS_LOG_WARN, p, "refusing session name %s: %s", name,
		      rtrs_strerror(refuse));
	else
		pslog(RTRS_LOG_INFO, p, "connected, %u connections", p->cid_num);
	ret = send_info_rsp(p, c, refuse);
	if (ret)
		rtrs__srv_path_close(p, ret, false);
	else if (!refuse)
		/* from now on a heartbeat comes after it on con 0: before, it
		 * would take the client's info receive */
		atomic_store(&p->info_sent, true);
}

static void srv_cqe(void *ctx, const struct fab_cqe *cq)
{
	struct srv_con *c = ctx;
	struct srv_path *p = c->path;

	if (!cq->err)
		rtrs__hb_rx(&p->live);
	if (cq->err) {
		if (atomic_load(&p->state) != SRV_PATH_CLOSING)
			pslog(RTRS_LOG_INFO, p, "con %u: completion error %s",
			      c->cid, rtrs_strerror(cq->err));
		/* software RMA: the fabric refused a frame of the peer's */
		rtrs__srv_path_close(p, cq->err, cq->flags & FAB_CQE_BAD_PEER);
		return;
	}
	if (cq->flags & FAB_CQE_RECV) {
		struct rtrs_rx *rx = container_of(cq->ctx, struct rtrs_rx, ctx);
		int ret;

		if (cq->flags & FAB_CQE_IMM) {
			handle_imm(c, cq->imm);
		} else if (c->cid == 0 &&
			   atomic_load(&p->state) == SRV_PATH_CONNECTING) {
			if (!handle_admin_msg(c, rx->buf, cq->len))
				return;         /* the path is closing */
		} else {
			pslog(RTRS_LOG_ERR, p, "con %u: unexpected message", c->cid);
			rtrs__srv_path_close(p, -EPROTO, true);
			return;
		}
		ret = rtrs__rx_repost(&c->rx, c->ep, rx);
		if (ret && ret != -ENOTCONN)
			rtrs__srv_path_close(p, ret, false);
		return;
	}
	if ((cq->flags & FAB_CQE_RMA_IN) && (cq->flags & FAB_CQE_IMM)) {
		handle_imm(c, cq->imm);
		return;
	}
	/* FAB_CQE_TX: nothing is signalled on the server */
}

static void srv_cm(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len)
{
	struct srv_con *c = ctx;

	(void)data;
	(void)len;
	if (ev == FAB_CM_CONNECTED) {
		c->accepted = true;
		rtrs__hb_rx(&c->path->live);
		return;
	}
	rtrs__srv_path_close(c->path, err ? err : -ECONNRESET, false);
}

static int path_create(struct srv_listener *l, struct rtrs_srv_sess *s,
		       const struct rtrs_conn_req *req,
		       struct fab_connreq *creq, struct srv_path **out)
{
	struct srv_path *p = calloc(1, sizeof(*p));
	const struct fab_caps *caps = rtrs__fab_dom_caps(l->dom);
	bool inv = s->ctx->attr.always_invalidate;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	p->sess = s;
	/* a key given to this path works on its endpoints only */
	ret = rtrs__fab_dom_for_connreq(l->pep, creq, &p->dom);
	if (ret) {
		free(p);
		return ret;
	}
	p->ldom = l->dom;
	memcpy(p->uuid, req->sess_uuid, 16);
	p->cid_num = req->cid_num;
	p->fence = req->fence;
	p->auth = req->auth && s->ctx->keys.n;
	p->id = ++s->next_path_id ? s->next_path_id : ++s->next_path_id;
	p->has_no = req->has_path_no;
	p->no = req->path_no;
	rtrs__timer_init(&p->hb, srv_hb);
	rtrs__hb_reset(&p->live);
	rtrs__hb_rx(&p->live);
	atomic_init(&p->state, SRV_PATH_CONNECTING);
	atomic_init(&p->ref, 1);
	snprintf(p->peer, sizeof(p->peer), "?");
	p->cons = calloc(p->cid_num, sizeof(*p->cons));
	p->nmrs = inv ? s->geom.queue_depth : 1;
	p->mrs = calloc(p->nmrs, sizeof(*p->mrs));
	p->info_rsp_len = RTRS_INFO_RSP_LEN(p->nmrs);
	/* the auth_rsp after it, in the same registration */
	p->info_rsp = calloc(1, p->info_rsp_len + FAB_MSG_ROOM +
			     RTRS_AUTH_RSP_LEN + FAB_MSG_ROOM);
	if (p->info_rsp)
		p->auth_rsp = p->info_rsp + p->info_rsp_len + FAB_MSG_ROOM;
	if (!p->cons || !p->mrs || !p->info_rsp)
		ret = -ENOMEM;
	for (unsigned i = 0; !ret && i < p->nmrs; i++)
		ret = rtrs__fab_mr_reg_peer(p->dom,
					    inv ? chunk_ptr(s, i) : s->chunks,
					    inv ? s->geom.chunk_size
						: s->chunks_len,
					    p, &p->mrs[i]);
	if (!ret && caps->mr_local)
		ret = rtrs__fab_mr_reg(p->dom, p->info_rsp,
				       p->info_rsp_len + FAB_MSG_ROOM +
				       RTRS_AUTH_RSP_LEN + FAB_MSG_ROOM,
				       FAB_ACC_LOCAL, &p->info_mr);
	/* the key responses live in the ops (rkey_rsp) */
	if (!ret && caps->mr_local && inv)
		ret = rtrs__fab_mr_reg(p->dom, s->ops,
				       s->geom.queue_depth * sizeof(*s->ops),
				       FAB_ACC_LOCAL, &p->ops_mr);
	if (ret) {
		rtrs__srv_path_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

static void reject(struct srv_listener *l, struct fab_connreq *req, int err,
		   const char *why)
{
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_rsp rsp = { .err = err };

	rtrs_warn("srv: rejecting connection: %s (%s)", why, rtrs_strerror(err));
	rtrs__proto_conn_rsp_encode(priv, &rsp);
	rtrs__fab_reject(l->pep, req, priv, sizeof(priv));
}

static struct rtrs_srv_sess *find_sess(struct rtrs_srv_ctx *ctx,
				       const uint8_t *uuid)
{
	struct rtrs_list *pos, *tmp;

	srv_assert_locked(ctx);
	rtrs_list_for_each_safe(pos, tmp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(pos, struct rtrs_srv_sess,
						       node);

		if (!s->evicted && !memcmp(s->uuid, uuid, 16))
			return s;
	}
	return NULL;
}

static struct srv_path *find_path(struct rtrs_srv_sess *s, const uint8_t *uuid)
{
	struct rtrs_list *pos, *tmp;

	rtrs_list_for_each_safe(pos, tmp, &s->paths) {
		struct srv_path *p = container_of(pos, struct srv_path, node);

		if (!memcmp(p->uuid, uuid, 16))
			return p;
	}
	return NULL;
}

/* Why connreq_attach() refused, for the log */
static const char *refuse_why(int ret)
{
	return ret == -EEXIST ? "path or connection exists"
	       : ret == -ENXIO ? "unknown session"
	       : ret == -EUSERS ? "too many sessions"
	       : ret == -EMLINK ? "too many paths in the session"
	       : ret == -ENOBUFS ? "too many connections"
	       : ret == -EAGAIN ? "too many pending handshakes"
	       : ret == -EPROTO ? "fencing differs from the session's"
	       : ret == -EACCES ? "the client does not authenticate"
	       : "cannot accept";
}

/*
 * Find or make the session and the path of connection request @req and
 * add @c to them, after the caps: 0, or the error to reject it with (then
 * nothing refers to @c). With ctx->lock held.
 */
static int connreq_attach(struct srv_listener *l,
			  const struct rtrs_conn_req *req,
			  struct fab_connreq *creq, struct srv_con *c)
{
	struct rtrs_srv_ctx *ctx = l->ctx;
	struct rtrs_srv_sess *s;
	struct srv_path *p;
	bool new_sess = false;
	int ret;

	srv_assert_locked(ctx);
	if (ctx->closing)
		return -ESHUTDOWN;
	/* with keys, nothing is allocated for a client that does not
	 * authenticate (docs/protocol.md section 2.7) */
	if (ctx->keys.n && !req->auth)
		return -EACCES;
	/* the caps: checked before anything is allocated for the peer */
	if (ctx->lim.max_conns && ctx->ncons >= ctx->lim.max_conns) {
		atomic_fetch_add(&ctx->st_ref_conns, 1);
		return -ENOBUFS;
	}
	s = find_sess(ctx, req->paths_uuid);
	if (!s) {
		if (!req->first_conn)
			return -ENXIO;
		if (ctx->lim.max_sessions &&
		    ctx->nsess_all >= ctx->lim.max_sessions) {
			atomic_fetch_add(&ctx->st_ref_sessions, 1);
			return -EUSERS;
		}
	}
	/* fencing is the session's: a path (or a connection) that disagrees
	 * would let a request run again through it */
	if (s && s->fence != req->fence) {
		atomic_fetch_add(&ctx->st_bad_input, 1);
		return -EPROTO;
	}
	p = s ? find_path(s, req->sess_uuid) : NULL;
	if (!p) {
		if (ctx->lim.max_pending &&
		    ctx->npending >= ctx->lim.max_pending) {
			atomic_fetch_add(&ctx->st_ref_pending, 1);
			return -EAGAIN;
		}
		if (s && (s->npaths >= RTRS_MAX_PATHS ||
			  (ctx->lim.max_paths &&
			   s->npaths >= ctx->lim.max_paths))) {
			atomic_fetch_add(&ctx->st_ref_paths, 1);
			return -EMLINK;
		}
	}
	if (!s) {
		ret = rtrs__srv_sess_create(ctx, req->paths_uuid, &s);
		if (ret)
			return ret;
		s->fence = req->fence;
		new_sess = true;
	}
	if (!p) {
		ret = path_create(l, s, req, creq, &p);
		if (ret) {
			if (new_sess)
				rtrs__srv_sess_free(s);
			return ret;
		}
		if (new_sess) {
			rtrs_list_add_tail(&ctx->sessions, &s->node);
			ctx->nsess_all++;
		}
		rtrs_list_add_tail(&s->paths, &p->node);
		s->npaths++;
		ctx->npaths++;
		p->pending = true;
		ctx->npending++;
		p->born_ms = rtrs_now_ms();
		/* the handshake deadline, then heartbeats */
		rtrs__timer_arm(&p->hb, MIN(ctx->attr.hb_interval_ms,
					    ctx->lim.handshake_ms));
	} else if (atomic_load(&p->state) != SRV_PATH_CONNECTING ||
		   p->cid_num != req->cid_num || p->ldom != l->dom ||
		   p->cons[req->cid]) {
		return -EEXIST;
	}
	c->path = p;
	p->cons[req->cid] = c;
	ctx->ncons++;
	atomic_fetch_add(&p->ref, 1);   /* for the endpoint */
	return 0;
}

/* Make @c's endpoint and accept it, answering with the session's
 * geometry; a failure closes the path. No lock held. */
static void connreq_accept(struct srv_listener *l, struct fab_connreq *creq,
			   const struct rtrs_conn_req *req, struct srv_con *c)
{
	struct rtrs_srv_ctx *ctx = l->ctx;
	struct srv_path *p = c->path;
	struct rtrs_srv_sess *s = p->sess;
	const struct fab_caps *caps = rtrs__fab_dom_caps(l->dom);
	char priv[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_rsp rsp;
	unsigned loop, nrx, takes;
	int ret;

	/* Connection k is served by loop k mod n (the client uses k - 1):
	 * on one host the two ends of a connection run on different CPUs,
	 * across hosts it makes no difference. */
	loop = req->cid % rtrs__fab_nloops();
	/* c->lock is held until the accept is posted: rtrs__srv_path_close(),
	 * from any thread, waits for it before it closes the endpoint */
	rtrs__lock(&c->lock);
	ret = rtrs__fab_ep_accept_create(p->dom, creq, loop, &srv_ep_ops, c,
					 &c->ep);
	if (!ret)       /* its peer writes only into this path's chunks */
		rtrs__fab_ep_set_scope(c->ep, p);
	if (ret) {
		rtrs__unlock(&c->lock);
		reject(l, creq, ret, "endpoint");
		rtrs__srv_path_close(p, ret, false);
		rtrs__srv_path_put(p);    /* the endpoint that never was */
		return;
	}
	if (atomic_load(&p->state) == SRV_PATH_CLOSING) {
		/* closed (fenced) while the endpoint was made:
		 * rtrs__srv_path_close() may have passed this connection, and
		 * it must not come up */
		rtrs__unlock(&c->lock);
		rtrs__srv_con_close_ep(c);
		return;
	}
	if (req->cid == 0) {
		char peer[sizeof(p->peer)];

		rtrs__fab_ep_peer(c->ep, peer, sizeof(peer));
		/* rtrsctl reads it; c->lock, then ctx->lock (nothing takes
		 * them the other way round) */
		srv_lock(ctx);
		memcpy(p->peer, peer, sizeof(peer));
		srv_unlock(ctx);
	}
	if (caps->rx_cq_data)
		nrx = (unsigned)MIN(caps->rx_size, (size_t)s->geom.queue_depth + 8);
	else
		nrx = req->cid == 0 ? 8 : 2;
	ret = rtrs__rx_ring_init(&c->rx, p->dom, c, nrx, RTRS_SRV_RX_BUF);
	if (!ret)
		ret = rtrs__rx_ring_post(&c->rx, c->ep);
	/* a client that takes batches gets a READ's data and its answer
	 * in one message, one whose receives take big frames gets them, and
	 * hears that ours do (protocol.md 2.6) */
	takes = rtrs__fab_ep_takes(c->ep, (req->batch ? FAB_PEER_BATCH : 0) |
					   (req->big ? FAB_PEER_BIG : 0));
	c->batch = takes & FAB_PEER_BATCH;
	memset(&rsp, 0, sizeof(rsp));
	rsp.queue_depth = (uint16_t)s->geom.queue_depth;
	rsp.max_io_size = s->geom.max_io_size;
	rsp.max_hdr_size = s->geom.max_hdr_size;
	rsp.flags = (ctx->attr.always_invalidate ? RTRS_MSG_NEW_RKEY_F : 0) |
		    (p->fence ? RTRS_MSG_FENCE_F : 0) |
		    (p->auth ? RTRS_MSG_AUTH_F : 0) |
		    (caps->sw_rma ? RTRS_MSG_FRAMES_F : 0) |
		    (takes & FAB_PEER_BIG ? RTRS_MSG_BIG_F : 0);
	rsp.path_id = p->id;
	rtrs__proto_conn_rsp_encode(priv, &rsp);
	if (!ret)
		ret = rtrs__fab_ep_accept(c->ep, priv, sizeof(priv));
	rtrs__unlock(&c->lock);
	if (ret) {
		rtrs_warn("srv: accept failed: %s", rtrs_strerror(ret));
		rtrs__srv_path_close(p, ret, false);
	}
}

static void srv_connreq(void *arg, struct fab_connreq *creq, const void *data,
			size_t len)
{
	struct srv_listener *l = arg;
	struct rtrs_srv_ctx *ctx = l->ctx;
	struct rtrs_conn_req req;
	struct srv_con *c;
	const struct fab_caps *caps = rtrs__fab_dom_caps(l->dom);
	int ret;

	ret = rtrs__proto_conn_req_decode(data, len, &req);
	if (ret) {
		atomic_fetch_add(&ctx->st_bad_input, 1);
		reject(l, creq, ret, "malformed connect request");
		return;
	}
	/* software RMA (protocol.md 2.6): a peer that does not speak frames
	 * (an older librtrs on tcp/net) would be misread */
	if (req.frames != caps->sw_rma) {
		atomic_fetch_add(&ctx->st_bad_input, 1);
		reject(l, creq, -EPROTONOSUPPORT, req.frames ?
		       "the client carries RMA as frames, this listener does not" :
		       "the client does not carry RMA as frames (an older librtrs?)");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		reject(l, creq, -ENOMEM, "no memory");
		return;
	}
	rtrs__lock_init(&c->lock, RTRS_RANK_SRV_CON, "con->lock");
	rtrs_list_init(&c->backlog);
	c->cid = req.cid;

	srv_lock(ctx);
	ret = connreq_attach(l, &req, creq, c);
	srv_unlock(ctx);
	if (ret) {
		rtrs__lock_destroy(&c->lock);
		free(c);
		reject(l, creq, ret, refuse_why(ret));
		return;
	}
	connreq_accept(l, creq, &req, c);
}
