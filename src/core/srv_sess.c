// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server, lifetimes: sessions (made, lingering, freed), paths (their
 * references, closing, freeing) and ops (finished: counted, chunk free).
 * The one function that changes a path's state lives here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "srv_int.h"

/* A session object left ctx->sessions; with ctx->lock held. */
void rtrs__srv_sess_uncount(struct rtrs_srv_ctx *ctx, bool established)
{
	srv_assert_locked(ctx);
	ctx->nsess_all--;
	if (established)
		ctx->nsess--;
}

void rtrs__srv_sess_free(struct rtrs_srv_sess *s)
{
	if (s->chunks)
		munmap(s->chunks, s->chunks_len);
	for (uint32_t i = 0; s->ops && i < s->geom.queue_depth; i++)
		rtrs__lock_destroy(&s->ops[i].lock);
	free(s->ops);
	free(s);
}

void rtrs__srv_path_free(struct srv_path *p)
{
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = p->cons[i];

		if (!c)
			continue;
		rtrs__rx_ring_free(&c->rx);
		rtrs__lock_destroy(&c->lock);
		free(c);
	}
	for (unsigned i = 0; i < p->nmrs; i++)
		rtrs__fab_mr_close(p->mrs[i]);
	rtrs__fab_mr_close(p->info_mr);
	rtrs__fab_mr_close(p->ops_mr);
	free(p->mrs);
	free(p->cons);
	free(p->info_rsp);
	rtrs__fab_dom_put(p->dom);
	free(p);
}

bool rtrs__srv_path_tryget(struct srv_path *p)
{
	int r = atomic_load(&p->ref);

	RTRS_ASSERT_HELD(&p->sess->ctx->lock);
	while (r > 0)
		if (atomic_compare_exchange_weak(&p->ref, &r, r + 1))
			return true;
	return false;
}

void rtrs__srv_path_put(struct srv_path *p)
{
	struct rtrs_srv_sess *s = p->sess;
	struct rtrs_srv_ctx *ctx = s->ctx;
	bool last, was_up, s_est;

	if (atomic_fetch_sub(&p->ref, 1) != 1)
		return;
	/* now: once the lock is dropped, an armed linger may free @s */
	pslog(RTRS_LOG_INFO, p, "path closed");
	srv_lock(ctx);
	rtrs_list_del(&p->node);
	s->npaths--;
	if (p->counted_up)
		s->npaths_up--;
	if (p->pending)
		ctx->npending--;
	for (unsigned i = 0; i < p->cid_num; i++)
		if (p->cons[i])
			ctx->ncons--;
	last = s->npaths == 0;
	was_up = s->link_up;
	/* only an established session lingers: one that was never accepted
	 * (refused, or its handshake never finished) has nothing to keep */
	if (last && !ctx->closing && s->established &&
	    (ctx->attr.linger_ms || s->client_closed)) {
		/* keep the chunks and their fence state for a client that
		 * comes back (a retry must not run twice); a client that said
		 * CLOSE will not: free it now, but on the timer thread like a
		 * lingering one, so that an armed linger cannot race us */
		last = false;
		rtrs__timer_arm(&s->linger,
				s->client_closed ? 0 : ctx->attr.linger_ms);
	} else if (last) {
		rtrs_list_del(&s->node);
		s->gone = true;         /* an armed linger leaves it to us */
	}
	s_est = s->established;
	srv_unlock(ctx);
	rtrs__srv_path_free(p);
	if (last) {
		if (was_up && ctx->attr.ops.link_ev)
			ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED,
					      s->priv);
		/* a linger armed when an earlier path was the last one (the
		 * client came back) must not fire on freed memory */
		rtrs__timer_stop(&s->linger);
		rtrs__srv_sess_free(s);
	}
	srv_lock(ctx);
	ctx->npaths--;
	if (last)
		rtrs__srv_sess_uncount(ctx, s_est);
	pthread_cond_broadcast(&ctx->cond);
	srv_unlock(ctx);
}

/* Linger time over: free the session unless a path came back. */
static void sess_linger_end(struct rtrs_timer *t)
{
	struct rtrs_srv_sess *s = container_of(t, struct rtrs_srv_sess, linger);
	struct rtrs_srv_ctx *ctx = s->ctx;
	bool was_up, est;

	srv_lock(ctx);
	if (s->npaths || ctx->closing || s->gone) {
		srv_unlock(ctx);
		return;
	}
	rtrs_list_del(&s->node);
	was_up = s->link_up;
	est = s->established;
	srv_unlock(ctx);
	if (was_up && ctx->attr.ops.link_ev)
		ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED, s->priv);
	rtrs__timer_stop(&s->linger);
	rtrs__srv_sess_free(s);
	srv_lock(ctx);
	rtrs__srv_sess_uncount(ctx, est);
	pthread_cond_broadcast(&ctx->cond);
	srv_unlock(ctx);
}

/* The answer is out (or the path is gone): count it and free the chunk.
 * Everything is read before the state changes: the next request for the
 * chunk may take the op at once. */
void rtrs__srv_op_finish(struct rtrs_srv_op *op)
{
	struct srv_path *p = op->con->path;
	struct rtrs_srv_ctx *ctx = op->sess->ctx;
	uint32_t len = op->data_len;

	if (!op->status) {
		if (op->dir == RTRS_READ) {
			atomic_fetch_add_explicit(&ctx->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&ctx->st_read_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_read_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_read_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_read_bytes, len,
						  memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&ctx->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&ctx->st_write_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&p->st_write_bytes, len,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_write_cnt, 1,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&op->sess->st_write_bytes, len,
						  memory_order_relaxed);
		}
	}
	atomic_store(&op->state, OP_FREE);
	rtrs__srv_path_put(p);
}

/* Close @c's endpoint, if it has one, exactly once. The loop frees an
 * endpoint soon after its close, so whoever comes second must not touch it:
 * rtrs__srv_path_close() and srv_connreq() (connreq_accept()), which makes
 * the endpoint and uses it until the accept under c->lock, settle it here. */
void rtrs__srv_con_close_ep(struct srv_con *c)
{
	struct fab_ep *ep = NULL;

	rtrs__lock(&c->lock);
	if (c->ep && !c->ep_closed) {
		ep = c->ep;
		c->ep_closed = true;
	}
	rtrs__unlock(&c->lock);
	rtrs__fab_ep_close(ep);
}

/* Connection @i of @p, or NULL; connreq_attach() adds them under
 * ctx->lock. */
static struct srv_con *path_con(struct srv_path *p, unsigned i)
{
	struct rtrs_srv_ctx *ctx = p->sess->ctx;
	struct srv_con *c;

	srv_lock(ctx);
	c = p->cons[i];
	srv_unlock(ctx);
	return c;
}

/* The transitions of a server path (srv_int.h); the rest are bugs. */
static const bool path_moves[][3] = {
	[SRV_PATH_CONNECTING] = { [SRV_PATH_CONNECTED] = true,
				  [SRV_PATH_CLOSING] = true },
	[SRV_PATH_CONNECTED] = { [SRV_PATH_CONNECTING] = true,
				 [SRV_PATH_CLOSING] = true },
	[SRV_PATH_CLOSING] = { false },
};

bool rtrs__srv_path_set_state(struct srv_path *p, int from, int to)
{
	bool ok = from >= 0 && to >= 0 &&
		  (unsigned)from < ARRAY_SIZE(path_moves) &&
		  (unsigned)to < ARRAY_SIZE(path_moves[0]) &&
		  path_moves[from][to];

	assert(ok);
	if (!ok)
		return false;
	/* closing is lock-free, from any thread; the rest decide the
	 * session's counts, under its listener's lock */
	if (to != SRV_PATH_CLOSING)
		srv_assert_locked(p->sess->ctx);
	return atomic_compare_exchange_strong(&p->state, &from, to);
}

/* Close every connection of @p; any thread; idempotent. A connection
 * connreq_accept() adds after the first loop below sees the path closing and
 * closes its endpoint itself. */
void rtrs__srv_path_close(struct srv_path *p, int err, bool bad_input)
{
	struct rtrs_list done, *pos, *tmp;
	int st;

	do {
		st = atomic_load(&p->state);
		if (st == SRV_PATH_CLOSING)
			return;
	} while (!rtrs__srv_path_set_state(p, st, SRV_PATH_CLOSING));
	if (bad_input) {
		atomic_fetch_add(&p->sess->ctx->st_bad_input, 1);
		pslog(RTRS_LOG_ERR, p, "malformed input, closing path: %s",
		      rtrs_strerror(err));
	} else if (err) {
		pslog(RTRS_LOG_INFO, p, "closing: %s", rtrs_strerror(err));
	}
	rtrs_list_init(&done);
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = path_con(p, i);

		if (!c)
			continue;
		rtrs__lock(&c->lock);
		c->dead = true;
		rtrs_list_for_each_safe(pos, tmp, &c->backlog) {
			rtrs_list_del(pos);
			rtrs_list_add_tail(&done, pos);
		}
		rtrs__unlock(&c->lock);
	}
	rtrs_list_for_each_safe(pos, tmp, &done) {
		rtrs_list_del(pos);
		rtrs__srv_op_finish(container_of(pos, struct rtrs_srv_op,
						 bl_node));
	}
	/* the heartbeat posts on connection 0 from the timer thread: it
	 * stops before the endpoint goes */
	rtrs__timer_stop(&p->hb);
	/* endpoints closed: nothing more of this path lands in our memory
	 * (the tcp provider writes only while we read its CQ; the loop skips
	 * closed endpoints) */
	for (unsigned i = 0; i < p->cid_num; i++) {
		struct srv_con *c = path_con(p, i);

		if (c)
			rtrs__srv_con_close_ep(c);
	}
	rtrs__srv_path_put(p);    /* the path's own reference */
}

int rtrs__srv_sess_create(struct rtrs_srv_ctx *ctx, const uint8_t *uuid,
			  struct rtrs_srv_sess **out)
{
	struct rtrs_srv_sess *s = calloc(1, sizeof(*s));
	void *mem;

	srv_assert_locked(ctx);
	if (!s)
		return -ENOMEM;
	s->ctx = ctx;
	memcpy(s->uuid, uuid, 16);
	rtrs__timer_init(&s->linger, sess_linger_end);
	s->geom = ctx->geom;
	rtrs_list_init(&s->paths);
	s->chunks_len = (size_t)s->geom.chunk_size * s->geom.queue_depth;
	/* anonymous memory: zeroed, page aligned, faulted in on use */
	mem = mmap(NULL, s->chunks_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s->ops = calloc(s->geom.queue_depth, sizeof(*s->ops));
	if (mem == MAP_FAILED || !s->ops) {
		if (mem != MAP_FAILED)
			munmap(mem, s->chunks_len);
		free(s->ops);
		free(s);
		return -ENOMEM;
	}
	s->chunks = mem;
	for (uint32_t i = 0; i < s->geom.queue_depth; i++) {
		s->ops[i].sess = s;
		s->ops[i].id = i;
		s->ops[i].ctx.owner = &s->ops[i];
		s->ops[i].ctx.kind = CTX_OP;
		rtrs_list_init(&s->ops[i].bl_node);
		atomic_init(&s->ops[i].state, OP_FREE);
		rtrs__lock_init(&s->ops[i].lock, RTRS_RANK_SRV_OP, "op->lock");
	}
	*out = s;
	return 0;
}
