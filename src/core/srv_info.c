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
	else if (strlen(s->identity) >= len)
		ret = -ENOSPC;
	else
		strcpy(buf, s->identity);
	srv_unlock(ctx);
	return ret;
}

int rtrs_srv_get_sess_name(struct rtrs_srv_sess *s, char *buf, size_t len)
{
	if (!s || !buf)
		return -EINVAL;
	if (strlen(s->name) >= len)
		return -ENOSPC;
	strcpy(buf, s->name);
	return 0;
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

static const char *srv_path_state_str(int st)
{
	return st == SRV_PATH_CONNECTED ? "connected"
	       : st == SRV_PATH_CONNECTING ? "connecting" : "closing";
}

int rtrs__srv_ctl_dump(struct rtrs_srv_ctx *ctx, FILE *f, bool json,
		       const char *name)
{
	struct rtrs_list *sp, *pp;
	char addr[160];
	int n = 0;

	if (json)
		fprintf(f, "{\"listen\":[");
	else if (!name)
		fprintf(f, "server");
	for (size_t i = 0; i < ctx->npeps && !(name && !json); i++) {
		if (rtrs__fab_pep_name(ctx->ls[i].pep, addr, sizeof(addr)))
			snprintf(addr, sizeof(addr), "?");
		if (json) {
			fprintf(f, "%s", i ? "," : "");
			rtrs__ctl_json_str(f, addr);
		} else {
			fprintf(f, " %s", addr);
		}
	}
	if (json || !name) {
		struct rtrs_srv_stats st;
		struct rtrs_srv_limit_stats ls = { .size = sizeof(ls) };

		rtrs_srv_get_stats(ctx, &st);
		rtrs_srv_get_limit_stats(ctx, &ls);
		fprintf(f, json ? "],\"stats\":{\"read_cnt\":%llu,\"read_bytes\":%llu,"
			"\"write_cnt\":%llu,\"write_bytes\":%llu,\"executed\":%llu,"
			"\"dup_answered\":%llu,\"dup_attached\":%llu,"
			"\"stale_dropped\":%llu,\"paths_fenced\":%llu,"
			"\"hb_timeouts\":%llu,\"paths_closed_bad_input\":%llu,"
			"\"sessions_open\":%llu,"
			: "\n  rdma: %llu %llu %llu %llu\n  executed %llu  "
			"dup_answered %llu  dup_attached %llu  stale_dropped %llu  "
			"paths_fenced %llu  hb_timeouts %llu  bad_input %llu"
			"  sessions_open %llu\n",
			(unsigned long long)st.read_cnt,
			(unsigned long long)st.read_bytes,
			(unsigned long long)st.write_cnt,
			(unsigned long long)st.write_bytes,
			(unsigned long long)st.executed,
			(unsigned long long)st.dup_answered,
			(unsigned long long)st.dup_attached,
			(unsigned long long)st.stale_dropped,
			(unsigned long long)st.paths_fenced,
			(unsigned long long)st.hb_timeouts,
			(unsigned long long)st.paths_closed_bad_input,
			(unsigned long long)st.sessions);
		fprintf(f, json ? "\"handshake_timeouts\":%llu,"
			"\"refused_sessions\":%llu,\"refused_paths\":%llu,"
			"\"refused_conns\":%llu,\"refused_pending\":%llu,"
			"\"accept_shed\":%llu,\"pending\":%llu,\"conns\":%llu}"
			: "  handshake_timeouts %llu  refused: sessions %llu "
			"paths %llu conns %llu pending %llu  accept_shed %llu"
			"  pending %llu  conns %llu\n",
			(unsigned long long)ls.handshake_timeouts,
			(unsigned long long)ls.refused_sessions,
			(unsigned long long)ls.refused_paths,
			(unsigned long long)ls.refused_conns,
			(unsigned long long)ls.refused_pending,
			(unsigned long long)ls.accept_shed,
			(unsigned long long)ls.pending,
			(unsigned long long)ls.conns);
	}
	srv_lock(ctx);
	if (json)
		fprintf(f, ",\"sessions\":[");
	else if (!name)
		fprintf(f, "  sessions %u\n", ctx->nsess);
	rtrs_list_for_each(sp, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);
		bool first = true;

		if (!s->named || (name && strcmp(name, s->name)))
			continue;
		if (json) {
			fprintf(f, "%s{\"name\":", n ? "," : "");
			rtrs__ctl_json_str(f, s->name);
			fprintf(f, ",\"queue_depth\":%u,\"read_cnt\":%llu,"
				"\"read_bytes\":%llu,\"write_cnt\":%llu,"
				"\"write_bytes\":%llu,\"paths\":[",
				s->geom.queue_depth,
				(unsigned long long)atomic_load(&s->st_read_cnt),
				(unsigned long long)atomic_load(&s->st_read_bytes),
				(unsigned long long)atomic_load(&s->st_write_cnt),
				(unsigned long long)atomic_load(&s->st_write_bytes));
		} else {
			fprintf(f, "server session %s  queue_depth %u  paths %u%s\n"
				"  rdma: %llu %llu %llu %llu\n",
				s->name, s->geom.queue_depth, s->npaths,
				s->npaths ? "" : " (lingering)",
				(unsigned long long)atomic_load(&s->st_read_cnt),
				(unsigned long long)atomic_load(&s->st_read_bytes),
				(unsigned long long)atomic_load(&s->st_write_cnt),
				(unsigned long long)atomic_load(&s->st_write_bytes));
		}
		rtrs_list_for_each(pp, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);
			unsigned long long rc = atomic_load(&p->st_read_cnt),
					   rb = atomic_load(&p->st_read_bytes),
					   wc = atomic_load(&p->st_write_cnt),
					   wb = atomic_load(&p->st_write_bytes);
			const char *st = srv_path_state_str(atomic_load(&p->state));

			if (json) {
				fprintf(f, "%s{\"id\":%u,\"state\":\"%s\","
					"\"src_addr\":", first ? "" : ",",
					srv_path_no(p), st);
				rtrs__ctl_json_str(f, p->peer);
				fprintf(f, ",\"read_cnt\":%llu,\"read_bytes\":%llu,"
					"\"write_cnt\":%llu,\"write_bytes\":%llu}",
					rc, rb, wc, wb);
			} else {
				fprintf(f, "  path %u\n    state: %s\n"
					"    src_addr: %s\n"
					"    stats/rdma: %llu %llu %llu %llu\n",
					srv_path_no(p), st, p->peer, rc, rb, wc,
					wb);
			}
			first = false;
		}
		if (json)
			fprintf(f, "]}");
		n++;
	}
	srv_unlock(ctx);
	if (json)
		fprintf(f, "]}");
	return n;
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
			    n < RTRS_MAX_PATHS) {
				atomic_fetch_add(&p->ref, 1);
				found[n++] = p;
			}
		}
	}
	srv_unlock(ctx);
	for (unsigned i = 0; i < n; i++) {
		rtrs__srv_path_close(found[i], -ECONNRESET, false);
		rtrs__srv_path_put(found[i]);
	}
	return n || (all && named) ? 0 : -ENOENT;
}

int rtrs__srv_ctl_close_path(struct rtrs_srv_ctx *ctx, const char *name,
			     uint32_t id)
{
	return close_sess_paths(ctx, name, id, false);
}

int rtrs_srv_close_sess(struct rtrs_srv_ctx *ctx, const char *name)
{
	if (!ctx || !name)
		return -EINVAL;
	return close_sess_paths(ctx, name, 0, true);
}
