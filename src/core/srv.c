// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Server, the listener API: rtrs_srv_open() and rtrs_srv_close(), memory
 * registered for answers (rtrs_srv_mr_*), the op and session accessors.
 * The server's structs, lock order and file contracts: srv_int.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "srv_int.h"

void rtrs_srv_attr_init(struct rtrs_srv_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->queue_depth = RTRS_DEF_QD;
	a->chunk_size = RTRS_DEF_CHUNK;
	a->always_invalidate = 1;
	a->hb_interval_ms = 1000;
	a->hb_missed_max = 5;
	a->linger_ms = 10000;
}

int rtrs_srv_mr_reg(struct rtrs_srv_ctx *ctx, const void *buf, size_t len,
		    struct rtrs_srv_mr **out)
{
	struct rtrs_srv_mr *m;
	int ret = 0;

	if (!ctx || !buf || !len || !out ||
	    (uintptr_t)buf + len < (uintptr_t)buf)
		return -EINVAL;
	m = calloc(1, sizeof(*m) + ctx->npeps * sizeof(m->reg[0]));
	if (!m)
		return -ENOMEM;
	m->buf = buf;
	m->len = len;
	for (size_t i = 0; i < ctx->npeps && !ret; i++) {
		m->reg[i].dom = ctx->ls[i].dom;
		ret = rtrs__fab_mr_reg(ctx->ls[i].dom, (void *)buf, len,
				       FAB_ACC_SOURCE, &m->reg[i].mr);
		if (!ret)
			m->n = i + 1;
	}
	if (ret) {
		rtrs_srv_mr_dereg(m);
		return ret;
	}
	*out = m;
	return 0;
}

int rtrs_srv_mr_pins(struct rtrs_srv_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	for (size_t i = 0; i < ctx->npeps; i++)
		if (rtrs__fab_dom_caps(ctx->ls[i].dom)->mr_pins)
			return 1;
	return 0;
}

int rtrs_srv_mr_dereg(struct rtrs_srv_mr *m)
{
	if (!m)
		return -EINVAL;
	for (size_t i = 0; i < m->n; i++)
		rtrs__fab_mr_close(m->reg[i].mr);
	free(m);
	return 0;
}

/* The attributes and addresses of rtrs_srv_open(): every address before
 * listening on any. 0 or -EINVAL. */
static int open_check(const char *const *addrs, size_t naddrs,
		      const struct rtrs_srv_attr *attr)
{
	uint32_t chunk = attr->chunk_size;

	for (size_t i = 0; i < naddrs; i++) {
		char host[128], port[16], prov[32];
		const char *a = addrs[i] ? rtrs__split_provider(addrs[i], NULL,
							       prov, sizeof(prov))
					 : NULL;

		/* every address before listening on any: "[prov://]host:port" */
		if (!a || rtrs__split_hostport(a, host, sizeof(host), port,
					       sizeof(port)) ||
		    rtrs__host_check(host))
			return -EINVAL;
	}
	if (chunk < RTRS_PROTO_MIN_CHUNK || (chunk & (chunk - 1)))
		return -EINVAL;
	if (attr->size >= offsetof(struct rtrs_srv_attr, hb_missed_max) +
				  sizeof(attr->hb_missed_max) &&
	    (attr->hb_interval_ms < 100 || attr->hb_missed_max < 1))
		return -EINVAL;
	return 0;
}

/* Open a listener on each address (ctx->ls); on failure ctx->npeps says
 * how many to close, the failed one included. */
static int listen_all(struct rtrs_srv_ctx *ctx, const char *const *addrs,
		      size_t naddrs, const char *provider)
{
	struct srv_listener *ls = ctx->ls;
	int ret;

	for (size_t i = 0; i < naddrs; i++) {
		char host[128], port[16], prov[32];
		const char *a = rtrs__split_provider(addrs[i], provider,
						     prov, sizeof(prov));

		ls[i].ctx = ctx;
		ls[i].loop = (unsigned)i % rtrs__fab_nloops();
		ret = a ? rtrs__split_hostport(a, host, sizeof(host), port,
					       sizeof(port))
			: -EINVAL;
		if (!ret)
			ret = rtrs__fab_dom_open(prov, host, port, NULL, true,
						 &ls[i].dom);
		if (!ret)
			ret = rtrs__fab_pep_open(ls[i].dom, ls[i].loop,
						 &rtrs__srv_pep_ops, &ls[i],
						 &ls[i].pep);
		if (ret) {
			rtrs_err("srv: cannot listen on %s: %s", addrs[i],
				 rtrs_strerror(ret));
			ctx->npeps = i + 1;
			return ret;
		}
		ctx->npeps = i + 1;
	}
	return 0;
}

int rtrs_srv_open(const char *const *addrs, size_t naddrs,
		  const struct rtrs_srv_attr *attr, struct rtrs_srv_ctx **out)
{
	return rtrs_srv_open_auth(addrs, naddrs, attr, NULL, out);
}

int rtrs_srv_open_auth(const char *const *addrs, size_t naddrs,
		       const struct rtrs_srv_attr *attr,
		       const struct rtrs_auth *auth, struct rtrs_srv_ctx **out)
{
	struct rtrs_srv_ctx *ctx;
	struct srv_listener *ls;
	struct rtrs_keyring keys = { 0 };
	uint32_t chunk;
	int ret;

	if (!addrs || !naddrs || !attr || !out || !attr->ops.rdma_ev ||
	    attr->size < offsetof(struct rtrs_srv_attr, priv) ||
	    open_check(addrs, naddrs, attr))
		return -EINVAL;
	chunk = attr->chunk_size;
	if (auth) {
		/* before any listener: no client comes in unauthenticated */
		if (auth->size < offsetof(struct rtrs_auth, key_file) +
				 sizeof(char *) || !auth->key_file)
			return -EINVAL;
		ret = rtrs__auth_load(auth->key_file, &keys);
		if (ret)
			return ret;
	}
	ctx = calloc(1, sizeof(*ctx));
	ls = calloc(naddrs, sizeof(*ls));
	if (!ctx || !ls) {
		free(ctx);
		free(ls);
		rtrs__auth_free(&keys);
		return -ENOMEM;
	}
	ctx->keys = keys;
	rtrs_srv_attr_init(&ctx->attr);
	memcpy(&ctx->attr, attr, MIN(attr->size, sizeof(ctx->attr)));
	ctx->attr.size = sizeof(ctx->attr);
	rtrs_srv_limits_init(&ctx->lim);
	ret = rtrs__proto_geom(&ctx->geom, attr->queue_depth, chunk,
			       RTRS_PROTO_MAX_HDR);
	if (ret) {
		rtrs__auth_free(&ctx->keys);
		free(ctx);
		free(ls);
		return ret;
	}
	rtrs__lock_init(&ctx->lock, RTRS_RANK_SRV_CTX, "ctx->lock");
	rtrs__cond_init_mono(&ctx->cond);
	rtrs_list_init(&ctx->sessions);
	ctx->ls = ls;
	ret = rtrs__timers_get();
	if (ret)
		goto err_free;
	ctx->timers = true;
	ret = rtrs__fab_engine_get();
	if (ret)
		goto err_free;
	ret = listen_all(ctx, addrs, naddrs, attr->provider);
	if (ret)
		goto err_close;
	if (!ctx->attr.ctl_disable)
		rtrs__reg_add(RTRS_REG_SRV, ctx);
	*out = ctx;
	return 0;

err_close:
	for (size_t i = 0; i < ctx->npeps; i++) {
		rtrs__fab_pep_close(ls[i].pep);
		rtrs__fab_dom_put(ls[i].dom);
	}
	rtrs__fab_engine_put();
err_free:
	if (ctx->timers)
		rtrs__timers_put();
	rtrs__lock_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
	rtrs__auth_free(&ctx->keys);
	free(ls);
	free(ctx);
	return ret;
}

void rtrs_srv_close(struct rtrs_srv_ctx *ctx)
{
	struct srv_listener *ls;
	struct srv_path **all;
	struct rtrs_list *sp, *st, *pp, *pt;
	unsigned n = 0;

	if (!ctx)
		return;
	ls = ctx->ls;
	rtrs__reg_del(ctx);
	srv_lock(ctx);
	ctx->closing = true;
	srv_unlock(ctx);
	for (size_t i = 0; i < ctx->npeps; i++)
		rtrs__fab_pep_close(ls[i].pep);

	srv_lock(ctx);
	all = calloc(ctx->npaths + 1, sizeof(*all));
	rtrs_list_for_each_safe(sp, st, &ctx->sessions) {
		struct rtrs_srv_sess *s = container_of(sp, struct rtrs_srv_sess,
						       node);

		rtrs_list_for_each_safe(pp, pt, &s->paths) {
			struct srv_path *p = container_of(pp, struct srv_path,
							  node);

			if (all && rtrs__srv_path_tryget(p))
				all[n++] = p;
		}
	}
	srv_unlock(ctx);
	for (unsigned i = 0; i < n; i++) {
		rtrs__srv_path_close(all[i], 0, false);
		rtrs__srv_path_put(all[i]);
	}
	free(all);
	/* every path goes once its endpoints are closed and its ops answered */
	srv_lock(ctx);
	while (ctx->npaths)
		srv_wait(ctx);
	srv_unlock(ctx);
	/* what is left lingers without paths */
	for (;;) {
		struct rtrs_srv_sess *s = NULL;

		srv_lock(ctx);
		if (!rtrs_list_empty(&ctx->sessions)) {
			s = container_of(ctx->sessions.next, struct rtrs_srv_sess,
					 node);
			rtrs_list_del(&s->node);
			rtrs__srv_sess_uncount(ctx, s->established);
		}
		srv_unlock(ctx);
		if (!s)
			break;
		rtrs__timer_stop(&s->linger);
		if (s->link_up && ctx->attr.ops.link_ev)
			ctx->attr.ops.link_ev(s, RTRS_SRV_LINK_EV_DISCONNECTED,
					      s->priv);
		rtrs__srv_sess_free(s);
	}
	/* a linger that fired before we set closing took its session off
	 * the list and may still be freeing it on the timer thread: it
	 * uncounts it last, under the lock, then never touches ctx again */
	srv_lock(ctx);
	while (ctx->nsess_all)
		srv_wait(ctx);
	srv_unlock(ctx);
	for (size_t i = 0; i < ctx->npeps; i++)
		rtrs__fab_dom_put(ls[i].dom);
	rtrs__fab_engine_put();
	rtrs__timers_put();
	rtrs__lock_destroy(&ctx->lock);
	pthread_cond_destroy(&ctx->cond);
	rtrs__auth_free(&ctx->keys);
	free(ls);
	free(ctx);
}

enum rtrs_dir rtrs_srv_op_dir(const struct rtrs_srv_op *op)
{
	/* an enum holds the negative errno as well (rtrs.h) */
	return op ? op->dir : (enum rtrs_dir)-EINVAL;
}

struct rtrs_srv_sess *rtrs_srv_op_sess(const struct rtrs_srv_op *op)
{
	return op ? op->sess : NULL;
}

void rtrs_srv_set_sess_priv(struct rtrs_srv_sess *s, void *priv)
{
	if (s)
		s->priv = priv;
}

void *rtrs_srv_get_sess_priv(struct rtrs_srv_sess *s)
{
	return s ? s->priv : NULL;
}
