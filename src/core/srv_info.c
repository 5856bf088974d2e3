// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server, what a listener shows and what it closes by name: its stats and
 * limits, its sessions and their paths, closing a session's paths. The
 * control socket (ctl.c) stands on these public calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_int.h"

void rtrs_srv_limits_init(struct rtrs_srv_limits *l)
{
	if (!l)
		return;
	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->handshake_ms = 10000;
	l->max_sessions = 1024;
	l->max_paths = 32;
	l->max_conns = 8192;
	l->max_pending = 128;
}

int rtrs_srv_get_listen_addr(struct rtrs_srv_ctx *ctx, size_t idx, char *buf,
			     size_t len)
{
	if (!ctx || !buf)
		return -EINVAL;
	if (idx >= ctx->npeps)
		return -ENOENT;
	return rtrs__fab_pep_name(ctx->ls[idx].pep, buf, len);
}

int rtrs_srv_sess_identity(struct rtrs_srv_sess *s, char *buf, size_t len)
{
	struct rtrs_srv_ctx *ctx;
	int ret = 0;

	if (!s || !buf)
		return -EINVAL;
	ctx = s->ctx;
	srv_lock(ctx);
	if (!s->identity[0])
		ret = -ENOENT;
	else
		ret = rtrs__str_out(buf, len, s->identity);
	srv_unlock(ctx);
	return ret;
}

int rtrs_srv_get_sess_name(struct rtrs_srv_sess *s, char *buf, size_t len)
{
	if (!s || !buf)
		return -EINVAL;
	return rtrs__str_out(buf, len, s->name);
}

int rtrs_srv_get_queue_depth(struct rtrs_srv_sess *s)
{
	return s ? (int)s->geom.queue_depth : -EINVAL;
}

int rtrs_srv_get_stats(struct rtrs_srv_ctx *ctx, struct rtrs_srv_stats *st)
{
	if (!ctx || !st)
		return -EINVAL;
	st->read_cnt = atomic_load(&ctx->st_read_cnt);
	st->read_bytes = atomic_load(&ctx->st_read_bytes);
	st->write_cnt = atomic_load(&ctx->st_write_cnt);
	st->write_bytes = atomic_load(&ctx->st_write_bytes);
	srv_lock(ctx);
	st->sessions = ctx->nsess;
	srv_unlock(ctx);
	st->paths_closed_bad_input = atomic_load(&ctx->st_bad_input);
	st->executed = atomic_load(&ctx->st_executed);
	st->dup_answered = atomic_load(&ctx->st_dup_answered);
	st->dup_attached = atomic_load(&ctx->st_dup_attached);
	st->stale_dropped = atomic_load(&ctx->st_stale_dropped);
	st->paths_fenced = atomic_load(&ctx->st_paths_fenced);
	st->hb_timeouts = atomic_load(&ctx->st_hb_timeouts);
	return 0;
}

int rtrs_srv_set_limits(struct rtrs_srv_ctx *ctx,
			const struct rtrs_srv_limits *lim)
{
	struct rtrs_srv_limits l;

	if (!ctx || !lim ||
	    lim->size < offsetof(struct rtrs_srv_limits, max_pending) +
			sizeof(lim->max_pending))
		return -EINVAL;
	rtrs_srv_limits_init(&l);
	memcpy(&l, lim, MIN(lim->size, sizeof(l)));
	l.size = sizeof(l);
	if (l.handshake_ms < 100)
		return -EINVAL;
	srv_lock(ctx);
	ctx->lim = l;
	srv_unlock(ctx);
	return 0;
}

int rtrs_srv_get_limit_stats(struct rtrs_srv_ctx *ctx,
			     struct rtrs_srv_limit_stats *st)
{
	struct rtrs_srv_limit_stats v;
	size_t n;

	if (!ctx || !st || !st->size)
		return -EINVAL;
	n = MIN(st->size, sizeof(v));
	memset(&v, 0, sizeof(v));
	v.size = n;
	v.handshake_timeouts = atomic_load(&ctx->st_hs_timeouts);
	v.refused_sessions = atomic_load(&ctx->st_ref_sessions);
	v.refused_paths = atomic_load(&ctx->st_ref_paths);
	v.refused_conns = atomic_load(&ctx->st_ref_conns);
	v.refused_pending = atomic_load(&ctx->st_ref_pending);
	v.accept_shed = atomic_load(&ctx->st_accept_shed);
	for (size_t i = 0; i < ctx->npeps; i++)
		v.accept_shed += rtrs__fab_pep_shed(ctx->ls[i].pep);
	srv_lock(ctx);
	v.pending = ctx->npending;
	v.conns = ctx->ncons;
	srv_unlock(ctx);
	memcpy(st, &v, n);
	return 0;
}

int rtrs_srv_sess_get_stats(struct rtrs_srv_sess *s,
			    struct rtrs_srv_sess_stats *st)
{
	if (!s || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->read_cnt = atomic_load(&s->st_read_cnt);
	st->read_bytes = atomic_load(&s->st_read_bytes);
	st->write_cnt = atomic_load(&s->st_write_cnt);
	st->write_bytes = atomic_load(&s->st_write_bytes);
	srv_lock(s->ctx);
	st->paths = s->npaths;
	st->paths_connected = s->npaths_up;
	srv_unlock(s->ctx);
	return 0;
}

int rtrs_srv_reset_stats(struct rtrs_srv_ctx *ctx)
{
	struct rtrs_list *sp, *pp;

	if (!ctx)
		return -EINVAL;
	atomic_store(&ctx->st_read_cnt, 0);
	atomic_store(&ctx->st_read_bytes, 0);
	atomic_store(&ctx->st_write_cnt, 0);
	atomic_store(&ctx->st_write_bytes, 0);
	atomic_store(&ctx->st_bad_input, 0);
	atomic_store(&ctx->st_executed, 0);
	atomic_store(&ctx->st_dup_answered, 0);
	atomic_store(&ctx->st_dup_attached, 0);
	atomic_store(&ctx->st_stale_dropped, 0);
	atomic_store(&ctx->st_paths_fenced, 0);
	atomic_store(&ctx->st_hb_timeouts, 0);
	atomic_store(&ctx->st_hs_timeouts, 0);
	atomic_store(&ctx->st_ref_sessions, 0);
	atomic_store(&ctx->st_ref_paths, 0);
	atomic_store(&ctx->st_ref_conns, 0);
	atomic_store(&ctx->st_ref_pending, 0);
	/* the listeners' shed counters keep counting: subtract them */
	atomic_store(&ctx->st_accept_shed, 0);
	for (size_t i = 0; i < ctx->npeps; i++)
		atomic_fetch_sub(&ctx->st_accept_shed,
				 rtrs__fab_pep_shed(ctx->ls[i].pep));
	srv_lock(ctx);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		atomic_store(&s->st_read_cnt, 0);
		atomic_store(&s->st_read_bytes, 0);
		atomic_store(&s->st_write_cnt, 0);
		atomic_store(&s->st_write_bytes, 0);
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			atomic_store(&p->st_read_cnt, 0);
			atomic_store(&p->st_read_bytes, 0);
			atomic_store(&p->st_write_cnt, 0);
			atomic_store(&p->st_write_bytes, 0);
		}
	}
	srv_unlock(ctx);
	return 0;
}

/* The number of @p for rtrsctl: the client's (its slot), when the client
 * sent it, else the server's id (kernel-style clients). */
static uint32_t srv_path_no(const struct srv_path *p)
{
	return p->has_no ? p->no : p->id;
}

/* enum srv_path_state as the public enum rtrs_path_state */
static enum rtrs_path_state srv_path_state(int st)
{
	return st == SRV_PATH_CONNECTED ? RTRS_PATH_CONNECTED
	       : st == SRV_PATH_CONNECTING ? RTRS_PATH_CONNECTING
	       : RTRS_PATH_CLOSING;
}

static void path_info(const struct srv_path *p, struct rtrs_srv_path_info *o)
{
	memset(o, 0, sizeof(*o));
	o->id = srv_path_no(p);
	o->state = srv_path_state(atomic_load(&p->state));
	snprintf(o->src, sizeof(o->src), "%s", p->peer);
	o->read_cnt = atomic_load(&p->st_read_cnt);
	o->read_bytes = atomic_load(&p->st_read_bytes);
	o->write_cnt = atomic_load(&p->st_write_cnt);
	o->write_bytes = atomic_load(&p->st_write_bytes);
}

static void sess_info(const struct rtrs_srv_sess *s, uint32_t first,
		      struct rtrs_srv_sess_info *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", s->name);
	o->queue_depth = s->geom.queue_depth;
	o->first_path = first;
	o->npaths = s->npaths;
	o->read_cnt = atomic_load(&s->st_read_cnt);
	o->read_bytes = atomic_load(&s->st_read_bytes);
	o->write_cnt = atomic_load(&s->st_write_cnt);
	o->write_bytes = atomic_load(&s->st_write_bytes);
}

int rtrs_srv_sess_info(struct rtrs_srv_ctx *ctx, const char *name,
		       struct rtrs_srv_sess_info *sess, size_t *nsess,
		       struct rtrs_srv_path_info *path, size_t *npath)
{
	struct rtrs_list *sp, *pp;
	size_t ns = 0, np = 0;

	if (!ctx || !nsess || !npath || (*nsess && !sess) ||
	    (*npath && !path))
		return -EINVAL;
	/* one snapshot, under the lock: each session with its paths */
	srv_lock(ctx);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		if (!s->named || (name && strcmp(name, s->name)))
			continue;
		if (ns < *nsess)
			sess_info(s, (uint32_t)np, &sess[ns]);
		ns++;
		rtrs_list_for_each(pp, &s->paths) {
			if (np < *npath)
				path_info(container_of(pp, struct srv_path,
						       node), &path[np]);
			np++;
		}
	}
	srv_unlock(ctx);
	if (ns > *nsess || np > *npath) {
		*nsess = ns;
		*npath = np;
		return -ENOSPC;
	}
	*nsess = ns;
	*npath = np;
	return 0;
}

/* Close the paths of session @name numbered @id, or all of them when
 * @all. -ENOENT when none. */
static int close_sess_paths(struct rtrs_srv_ctx *ctx, const char *name,
			    uint32_t id, bool all)
{
	struct srv_path *found[RTRS_MAX_PATHS];
	struct rtrs_list *sp, *pp;
	unsigned n = 0;
	bool named = false;

	/* every path object with that number: the client's path and any
	 * earlier one of it still closing */
	srv_lock(ctx);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		if (!s->named || strcmp(name, s->name))
			continue;
		named = true;
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			if ((all || srv_path_no(p) == id) &&
			    n < RTRS_MAX_PATHS && rtrs__srv_path_tryget(p))
				found[n++] = p;
		}
	}
	srv_unlock(ctx);
	for (unsigned i = 0; i < n; i++) {
		rtrs__srv_path_close(found[i], -ECONNRESET, false);
		rtrs__srv_path_put(found[i]);
	}
	return n || (all && named) ? 0 : -ENOENT;
}

int rtrs_srv_close_path(struct rtrs_srv_ctx *ctx, const char *name, uint32_t id)
{
	if (!ctx || !name)
		return -EINVAL;
	return close_sess_paths(ctx, name, id, false);
}

int rtrs_srv_close_sess(struct rtrs_srv_ctx *ctx, const char *name)
{
	if (!ctx || !name)
		return -EINVAL;
	return close_sess_paths(ctx, name, 0, true);
}
