// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client session API: open and close, the path verbs (add, remove,
 * disconnect, reconnect), queries and statistics, policy and reconnect
 * settings, memory registration. The rest of the client is below it:
 * clt_conn.c, clt_path.c, clt_io.c, clt_permit.c, clt_policy.c; their
 * structs, lock order and contracts are in clt_int.h, the wire in
 * docs/protocol.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clt_int.h"
#include "registry.h"

void rtrs_clt_attr_init(struct rtrs_clt_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->connect_timeout_ms = RTRS_DEF_CONNECT_TIMEOUT_MS;
	a->reconnect_delay_ms = 1000;
	a->max_reconnect_attempts = -1;
	a->hb_interval_ms = 1000;
	a->hb_missed_max = 5;
	a->policy = RTRS_MP_POLICY_MIN_INFLIGHT;
}

static void sess_free(struct rtrs_clt_sess *s)
{
	struct rtrs_list *pos, *tmp;
	unsigned n = atomic_load(&s->npaths);

	if (s->recon_started) {
		rtrs__lock(&s->lock);
		pthread_cond_broadcast(&s->recon_cond);
		rtrs__unlock(&s->lock);
		pthread_join(s->recon_thread, NULL);
	}
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		rtrs__clt_path_shutdown(p);
		atomic_store(&s->paths[i], NULL);
		rtrs__clt_path_free(p);
	}
	rtrs_list_for_each_safe(pos, tmp, &s->graveyard) {
		rtrs_list_del(pos);
		rtrs__clt_path_free(container_of(pos, struct clt_path, grave));
	}
	if (s->timers) {
		rtrs__timer_stop(&s->hold_timer);
		rtrs__timers_put();
	}
	if (s->engine)
		rtrs__fab_engine_put();
	rtrs__fab_poller_destroy(s->poller);
	rtrs__lock_destroy(&s->done_lock);
	free(s->permits);
	free(s->free_permits);
	free(s->reqs);
	free(s->iu);
	rtrs__lock_destroy(&s->ctl_lock);
	rtrs__lock_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->recon_cond);
	if (s->key) {
		rtrs__memzero(s->key, sizeof(*s->key));
		free(s->key);
	}
	free(s);
}

static int attr_check(const struct rtrs_clt_attr *a)
{
	if (a->io_cons > RTRS_PROTO_MAX_CIDS - 1)
		return -EINVAL;
	if (a->hb_interval_ms < 100 || a->hb_missed_max < 1)
		return -EINVAL;
	if (!a->connect_timeout_ms)
		return -EINVAL;
	if ((unsigned)a->policy > RTRS_MP_POLICY_MIN_LATENCY)
		return -EINVAL;
	if (a->max_reconnect_attempts < -1 || a->reconnect_delay_ms < 0)
		return -EINVAL;
	if ((unsigned)a->progress > RTRS_PROGRESS_POLL)
		return -EINVAL;
	return 0;
}

/* the key of @auth's identity, in @out (malloc'ed) */
static int clt_key_load(const struct rtrs_auth *auth,
			struct rtrs_auth_key **out)
{
	struct rtrs_keyring kr;
	const struct rtrs_auth_key *k;
	int ret;

	if (auth->size < offsetof(struct rtrs_auth, identity) + sizeof(char *) ||
	    !auth->key_file)
		return -EINVAL;
	if (auth->identity && rtrs__proto_identity_valid(auth->identity))
		return -EINVAL;
	ret = rtrs__auth_load(auth->key_file, &kr);
	if (ret)
		return ret;
	if (auth->identity)
		k = rtrs__auth_find(&kr, auth->identity);
	else
		k = kr.n == 1 ? &kr.k[0] : NULL;
	if (!k) {
		rtrs_err("key file %s: %s", auth->key_file, auth->identity ?
			 "no key of that identity" :
			 "several keys, and no identity chosen");
		ret = -EINVAL;
	} else if (!(*out = malloc(sizeof(**out)))) {
		ret = -ENOMEM;
	} else {
		**out = *k;
	}
	rtrs__auth_free(&kr);
	return ret;
}

int rtrs_clt_open(const char *sessname, const struct rtrs_path_addr *paths,
		  size_t npaths, const struct rtrs_clt_attr *attr,
		  struct rtrs_clt_sess **out)
{
	return rtrs_clt_open_auth(sessname, paths, npaths, attr, NULL, out);
}

/* The arguments of open() that are checked before anything is made. */
static int open_check(const char *sessname, const struct rtrs_path_addr *paths,
		      size_t npaths, const struct rtrs_clt_attr *attr)
{
	if (!paths || rtrs__proto_name_valid(sessname))
		return -EINVAL;
	if (npaths == 0)
		return -EINVAL;
	if (npaths > RTRS_MAX_PATHS)
		return -E2BIG;
	for (size_t i = 0; i < npaths; i++) {
		struct path_addr pa;

		/* every address, before any path is connected */
		if (rtrs__clt_addr_parse(&paths[i], NULL, &pa))
			return -EINVAL;
	}
	if (attr && attr->size < offsetof(struct rtrs_clt_attr, priv))
		return -EINVAL;
	return 0;
}

/* A session object without paths and threads; it owns @key from here on
 * (freed on failure too). */
static int sess_alloc(const char *sessname, const struct rtrs_clt_attr *attr,
		      struct rtrs_auth_key *key, struct rtrs_clt_sess **out)
{
	struct rtrs_clt_sess *s = calloc(1, sizeof(*s));

	if (!s) {
		free(key);
		return -ENOMEM;
	}
	s->key = key;
	rtrs_clt_attr_init(&s->attr);
	if (attr)
		memcpy(&s->attr, attr, MIN(attr->size, sizeof(s->attr)));
	s->attr.size = sizeof(s->attr);
	if (attr_check(&s->attr)) {
		free(s->key);
		free(s);
		return -EINVAL;
	}
	atomic_init(&s->policy, (int)s->attr.policy);
	/* RTRS_FENCE=0: no sequence fencing, as the kernel (at-least-once
	 * failover); for measuring its cost and for kernel-style servers */
	s->fence_want = !(getenv("RTRS_FENCE") &&
			  !strcmp(getenv("RTRS_FENCE"), "0"));
	atomic_init(&s->fence, s->fence_want);
	snprintf(s->name, sizeof(s->name), "%s", sessname);
	rtrs__random(s->paths_uuid, sizeof(s->paths_uuid));
	rtrs__lock_init(&s->lock, RTRS_RANK_CLT_SESS, "sess->lock");
	rtrs__lock_init(&s->ctl_lock, RTRS_RANK_CLT_CTL, "sess->ctl_lock");
	rtrs__cond_init_mono(&s->cond);
	rtrs__cond_init_mono(&s->recon_cond);
	rtrs_list_init(&s->held);
	rtrs_list_init(&s->graveyard);
	rtrs__lock_init(&s->done_lock, RTRS_RANK_CLT_DONE, "sess->done_lock");
	rtrs_list_init(&s->done_q);
	rtrs__timer_init(&s->hold_timer, rtrs__clt_hold_tick);
	s->fail_path = rtrs__clt_path_close;
	*out = s;
	return 0;
}

/* The session's poller, timers, engine, its paths connected and its
 * reconnect thread; on failure the caller frees it (sess_free()). */
static int sess_start(struct rtrs_clt_sess *s,
		      const struct rtrs_path_addr *paths, size_t npaths)
{
	int ret;

	if (s->attr.progress == RTRS_PROGRESS_POLL) {
		ret = rtrs__fab_poller_create(s->attr.provider, &s->poller);
		if (ret)
			return ret;
	}
	ret = rtrs__timers_get();
	if (ret)
		return ret;
	s->timers = true;
	ret = rtrs__fab_engine_get();
	if (ret)
		return ret;
	s->engine = true;
	for (size_t i = 0; i < npaths; i++) {
		/* the same path twice: -EEXIST, before any is connected */
		for (size_t j = 0; j < i; j++) {
			const char *prov = s->attr.provider;
			char a[PATH_KEY_LEN], b[PATH_KEY_LEN];

			if (!rtrs__clt_path_key(&paths[i], prov, a) &&
			    !rtrs__clt_path_key(&paths[j], prov, b) &&
			    !strcmp(a, b))
				return -EEXIST;
		}
	}
	for (size_t i = 0; i < npaths; i++) {
		ret = rtrs__clt_path_open(s, (unsigned)i, &paths[i]);
		if (ret)
			return ret;
	}
	ret = -pthread_create(&s->recon_thread, NULL, rtrs__clt_recon_main, s);
	if (ret)
		return ret;
	s->recon_started = true;
	return 0;
}

int rtrs_clt_open_auth(const char *sessname, const struct rtrs_path_addr *paths,
		       size_t npaths, const struct rtrs_clt_attr *attr,
		       const struct rtrs_auth *auth, struct rtrs_clt_sess **out)
{
	struct rtrs_auth_key *key = NULL;
	struct rtrs_clt_sess *s;
	int ret;

	if (!out)
		return -EINVAL;
	ret = open_check(sessname, paths, npaths, attr);
	if (ret)
		return ret;
	if (auth) {
		ret = clt_key_load(auth, &key);
		if (ret)
			return ret;
	}
	ret = sess_alloc(sessname, attr, key, &s);
	if (ret)
		return ret;
	ret = sess_start(s, paths, npaths);
	if (ret) {
		sess_free(s);
		return ret;
	}
	rtrs__lock(&s->lock);
	s->opened = true;       /* link events from now on */
	rtrs__unlock(&s->lock);
	if (!s->attr.ctl_disable)
		rtrs__reg_add(RTRS_REG_CLT, s);
	*out = s;
	return 0;
}

/*
 * Tell every fencing server path that the session is closing and wait
 * (bounded) for the acknowledgement: the server then frees the session with
 * its last path instead of keeping it linger_ms for retries that will never
 * come, and the name is free for the next client at once.
 */
static void sess_say_goodbye(struct rtrs_clt_sess *s)
{
	unsigned n = atomic_load(&s->npaths);
	bool sent[RTRS_MAX_PATHS] = { false };

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct clt_con *c0;
		int ret = -ENOTCONN;

		if (!p || atomic_load(&p->state) != CLT_PATH_CONNECTED ||
		    !(p->rsp.flags & RTRS_MSG_FENCE_F))
			continue;
		c0 = &p->cons[0];
		rtrs__lock(&p->lock);
		p->close_acked = false;
		rtrs__unlock(&p->lock);
		rtrs__lock(&c0->lock);
		if (!c0->dead)
			ret = rtrs__fab_post_send(c0->ep, NULL, 0, NULL, true,
						  rtrs_imm(RTRS_IMM_CLOSE, 0),
						  NULL, false);
		rtrs__unlock(&c0->lock);
		sent[i] = ret == 0;
	}
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		struct timespec dl = rtrs_deadline(RTRS_CLOSE_ACK_MS);
		bool acked;

		if (!p || !sent[i])
			continue;
		rtrs__lock(&p->lock);
		while (!p->close_acked &&
		       atomic_load(&p->state) == CLT_PATH_CONNECTED &&
		       rtrs__cond_wait(&p->cond, &p->lock, &dl) == 0)
			;
		acked = p->close_acked;
		rtrs__unlock(&p->lock);
		/* one acknowledgement is enough: the session is server-wide */
		if (acked)
			break;
	}
}

void rtrs_clt_close(struct rtrs_clt_sess *s)
{
	unsigned n;

	if (!s)
		return;
	rtrs__lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->cond);       /* permit waiters */
	pthread_cond_broadcast(&s->recon_cond);
	/* cancel the connects in progress (a path verb's, the reconnect
	 * thread's): path_wait() sees closing. A path is freed only with
	 * s->lock held to clear its slot, or by sess_free(). */
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++)
		if (sess_path(s, i))
			rtrs__clt_path_wake(sess_path(s, i));
	/* the path verbs running on other threads end (-ESHUTDOWN), and a
	 * link event being delivered returns */
	while (s->verbs || s->ev_running)
		rtrs__cond_wait(&s->cond, &s->lock, NULL);
	rtrs__unlock(&s->lock);
	rtrs__reg_del(s);       /* waits for a running rtrsctl command */
	if (s->recon_started) {
		pthread_join(s->recon_thread, NULL);
		s->recon_started = false;
	}
	rtrs__clt_release_held(s, false);      /* fails them: closing */
	if (s->poller) {
		/* the application may not poll any more: answers on the IO
		 * connections are read here, and pending callbacks run here */
		while (atomic_load(&s->io_pending))
			if (rtrs_clt_poll(s, 100) < 0)
				break;
	}
	rtrs__lock(&s->lock);
	while (atomic_load(&s->inflight))
		rtrs__cond_wait(&s->cond, &s->lock, NULL);
	rtrs__unlock(&s->lock);
	sess_say_goodbye(s);
	sess_free(s);
}

int rtrs_clt_query(struct rtrs_clt_sess *s, struct rtrs_attrs *a)
{
	if (!s || !a)
		return -EINVAL;
	if (!rtrs__clt_any_connected(s, NULL))
		return -ENOTCONN;
	a->queue_depth = s->geom.queue_depth;
	a->max_io_size = s->geom.max_io_size;
	a->max_segments = s->max_segments;
	a->max_hdr_size = s->geom.max_hdr_size;
	return 0;
}

int rtrs_clt_get_sess_name(struct rtrs_clt_sess *s, char *buf, size_t len)
{
	if (!s || !buf)
		return -EINVAL;
	return rtrs__str_out(buf, len, s->name);
}

int rtrs_clt_get_stats(struct rtrs_clt_sess *s, struct rtrs_clt_stats *st)
{
	unsigned n;

	if (!s || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->read_cnt = atomic_load(&s->st_read_cnt);
	st->read_bytes = atomic_load(&s->st_read_bytes);
	st->write_cnt = atomic_load(&s->st_write_cnt);
	st->write_bytes = atomic_load(&s->st_write_bytes);
	st->errors = atomic_load(&s->st_errors);
	st->inflight = atomic_load(&s->inflight);
	st->cpu_migration_from = atomic_load(&s->st_mig_from);
	st->cpu_migration_to = atomic_load(&s->st_mig_to);
	st->tx_backlog = atomic_load(&s->st_backlog);
	st->failovers = atomic_load(&s->st_failovers);
	st->held = atomic_load(&s->st_held);
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		st->paths++;
		if (atomic_load(&p->state) == CLT_PATH_CONNECTED)
			st->paths_connected++;
	}
	return 0;
}

/* ---- runtime path control ---- */

static struct clt_path *path_get(struct rtrs_clt_sess *s, unsigned idx)
{
	return idx < RTRS_MAX_PATHS && idx < atomic_load(&s->npaths)
		       ? sess_path(s, idx) : NULL;
}

/*
 * The path verbs (add, remove, disconnect, reconnect) run one at a time,
 * under s->ctl_lock, between verb_begin() and verb_end(). s->verbs counts
 * the callers in them, waiting for ctl_lock included: rtrs_clt_close()
 * refuses new ones, cancels a connect in progress and waits until none is
 * left before it frees anything. A verb that got ctl_lock after close began
 * returns -ESHUTDOWN.
 */
static void verb_end(struct rtrs_clt_sess *s)
{
	rtrs__unlock(&s->ctl_lock);
	rtrs__lock(&s->lock);
	if (--s->verbs == 0 && atomic_load(&s->closing))
		pthread_cond_broadcast(&s->cond);
	rtrs__unlock(&s->lock);   /* close may free @s after it */
}

static int verb_begin(struct rtrs_clt_sess *s)
{
	if (!s)
		return -EINVAL;
	rtrs__lock(&s->lock);
	if (atomic_load(&s->closing)) {
		rtrs__unlock(&s->lock);
		return -ESHUTDOWN;
	}
	s->verbs++;
	rtrs__unlock(&s->lock);
	rtrs__lock(&s->ctl_lock);
	if (atomic_load(&s->closing)) {
		verb_end(s);
		return -ESHUTDOWN;
	}
	return 0;
}

/* verb_begin() and the path at slot @idx (0), or an error and no verb. */
static int ctl_get_path(struct rtrs_clt_sess *s, unsigned idx,
			struct clt_path **p)
{
	int ret = verb_begin(s);

	if (ret)
		return ret;
	*p = path_get(s, idx);
	if (!*p) {
		verb_end(s);
		return -ENOENT;
	}
	return 0;
}

int rtrs_clt_path_slots(struct rtrs_clt_sess *s)
{
	return s ? (int)atomic_load(&s->npaths) : -EINVAL;
}

int rtrs_clt_path_info(struct rtrs_clt_sess *s, unsigned idx,
		       struct rtrs_path_info *in)
{
	struct clt_path *p;

	if (!s || !in)
		return -EINVAL;
	p = path_get(s, idx);
	if (!p)
		return -ENOENT;
	memset(in, 0, sizeof(*in));
	in->idx = idx;
	in->state = (enum rtrs_path_state)atomic_load(&p->state);
	snprintf(in->src, sizeof(in->src), "%s", p->src);
	snprintf(in->dst, sizeof(in->dst), "%s", p->dst);
	in->read_cnt = atomic_load(&p->st_read_cnt);
	in->read_bytes = atomic_load(&p->st_read_bytes);
	in->write_cnt = atomic_load(&p->st_write_cnt);
	in->write_bytes = atomic_load(&p->st_write_bytes);
	in->inflight = atomic_load(&p->inflight);
	in->failovers = atomic_load(&p->st_failovers);
	in->reconnects_ok = atomic_load(&p->st_recon_ok);
	in->reconnects_failed = atomic_load(&p->st_recon_fail);
	in->hb_timeouts = atomic_load(&p->st_hb_timeouts);
	in->cur_latency_ns = rtrs__hb_latency_ns(&p->live);
	in->cpu_migration_from = atomic_load(&p->st_mig_from);
	in->cpu_migration_to = atomic_load(&p->st_mig_to);
	return 0;
}

int rtrs_clt_path_link(struct rtrs_clt_sess *s, unsigned idx,
		       struct rtrs_path_link *link, size_t size)
{
	struct rtrs_path_link l = { 0 };
	struct clt_path *p;

	if (!s || !link || !size)
		return -EINVAL;
	p = path_get(s, idx);
	if (!p)
		return -ENOENT;
	if (p->dom) {
		const struct fab_caps *c = rtrs__fab_dom_caps(p->dom);

		snprintf(l.provider, sizeof(l.provider), "%s", c->prov);
		snprintf(l.domain, sizeof(l.domain), "%s", c->domain);
	}
	if (atomic_load(&p->state) == RTRS_PATH_CONNECTED) {
		rtrs__lock(&p->lock);
		snprintf(l.src_resolved, sizeof(l.src_resolved), "%s",
			 p->local);
		rtrs__unlock(&p->lock);
	}
	memcpy(link, &l, size < sizeof(l) ? size : sizeof(l));
	return 0;
}

int rtrs_clt_add_path(struct rtrs_clt_sess *s, const struct rtrs_path_addr *a,
		      unsigned *idx)
{
	struct path_addr pa;
	unsigned i, n;
	int ret;

	if (!s || rtrs__clt_addr_parse(a, NULL, &pa))
		return -EINVAL;
	ret = verb_begin(s);
	if (ret)
		return ret;
	ret = rtrs__clt_path_dup(s, a);
	if (ret) {
		verb_end(s);
		return ret;
	}
	n = atomic_load(&s->npaths);
	for (i = 0; i < n && sess_path(s, i); i++)
		;
	if (i >= RTRS_MAX_PATHS) {
		verb_end(s);
		return -E2BIG;
	}
	ret = rtrs__clt_path_open(s, i, a);
	if (!ret)
		rtrs__clt_release_held(s, false);
	verb_end(s);
	if (!ret && idx)
		*idx = i;
	return ret;
}

int rtrs_clt_disconnect_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct clt_path *p;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	rtrs__lock(&s->lock);
	p->admin_down = true;
	/* a scheduled reconnect is cancelled (RECONNECTING -> CLOSED);
	 * a live path is refused here and closed by the shutdown below */
	(void)rtrs__clt_set_state(p, CLT_PATH_CLOSED);
	rtrs__unlock(&s->lock);
	rtrs__clt_path_shutdown(p);
	plog(RTRS_LOG_INFO, p, "disconnected by request");
	verb_end(s);
	return 0;
}

int rtrs_clt_reconnect_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct clt_path *p;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	rtrs__lock(&s->lock);
	p->admin_down = true;           /* no automatic attempt meanwhile */
	rtrs__unlock(&s->lock);
	rtrs__clt_path_shutdown(p);
	rtrs__lock(&s->lock);
	p->admin_down = false;
	if (atomic_load(&p->state) == CLT_PATH_CLOSED)
		(void)rtrs__clt_set_state(p, CLT_PATH_RECONNECTING); /* legal */
	rtrs__unlock(&s->lock);
	ret = rtrs__clt_path_attempt(p);
	verb_end(s);
	return ret;
}

int rtrs_clt_remove_path(struct rtrs_clt_sess *s, unsigned idx)
{
	struct timespec dl;
	struct clt_path *p;
	int ret;

	ret = ctl_get_path(s, idx, &p);
	if (ret)
		return ret;
	if (atomic_load(&p->inflight) && !rtrs__clt_any_connected(s, p)) {
		verb_end(s);
		return -EBUSY;
	}
	/* drain: no new requests; the ones in flight get time to finish
	 * (not when the session is closing: close waits for them anyway) */
	atomic_store(&p->draining, true);
	dl = rtrs_deadline(RTRS_DRAIN_MS);
	rtrs__lock(&p->lock);
	/* the last request out, a close of the path or of the session
	 * wakes p->cond */
	while (atomic_load(&p->inflight) &&
	       atomic_load(&p->state) == CLT_PATH_CONNECTED &&
	       !atomic_load(&s->closing))
		if (rtrs__cond_wait(&p->cond, &p->lock, &dl) == -ETIMEDOUT)
			break;
	rtrs__unlock(&p->lock);
	rtrs__lock(&s->lock);
	p->admin_down = true;
	/* as in disconnect: only a scheduled reconnect is cancelled here */
	(void)rtrs__clt_set_state(p, CLT_PATH_CLOSED);
	rtrs__unlock(&s->lock);
	rtrs__clt_path_shutdown(p);               /* what is left fails over */
	/* shut down and admin_down: CLOSED (or RECONNECTING, had a
	 * reconnect been scheduled before admin_down), both lead to DEAD */
	if (rtrs__clt_set_state(p, CLT_PATH_DEAD) < 0)
		plog(RTRS_LOG_ERR, p, "remove: state %d is not final",
		     atomic_load(&p->state));
	rtrs__timer_stop(&p->hb);
	rtrs__lock(&s->lock);
	atomic_store(&s->paths[idx], NULL);
	rtrs_list_add_tail(&s->graveyard, &p->grave);
	rtrs__unlock(&s->lock);
	plog(RTRS_LOG_INFO, p, "removed");
	verb_end(s);
	return 0;
}

int rtrs_clt_set_policy(struct rtrs_clt_sess *s, enum rtrs_mp_policy policy)
{
	if (!s || (unsigned)policy > RTRS_MP_POLICY_MIN_LATENCY)
		return -EINVAL;
	atomic_store(&s->policy, (int)policy);
	return 0;
}

int rtrs_clt_get_policy(struct rtrs_clt_sess *s)
{
	return s ? atomic_load(&s->policy) : -EINVAL;
}

int rtrs_clt_set_max_reconnect_attempts(struct rtrs_clt_sess *s, int n)
{
	unsigned np;

	if (!s || n < -1)
		return -EINVAL;
	rtrs__lock(&s->lock);
	s->attr.max_reconnect_attempts = n;
	/* a path waiting for its next attempt that has had its share now
	 * gives up, as it would after its next failed one */
	np = atomic_load(&s->npaths);
	for (unsigned i = 0; n >= 0 && i < np; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p && p->recon_attempts >= n &&
		    atomic_load(&p->state) == CLT_PATH_RECONNECTING)
			/* refused only if the attempt began meanwhile: it
			 * then counts and stops by itself */
			(void)rtrs__clt_set_state(p, CLT_PATH_CLOSED);
	}
	rtrs__unlock(&s->lock);
	return 0;
}

int rtrs_clt_get_max_reconnect_attempts(struct rtrs_clt_sess *s)
{
	int n;

	if (!s)
		return -EINVAL;
	rtrs__lock(&s->lock);
	n = s->attr.max_reconnect_attempts;
	rtrs__unlock(&s->lock);
	return n;
}

int rtrs_clt_reset_stats(struct rtrs_clt_sess *s)
{
	unsigned n;

	if (!s)
		return -EINVAL;
	atomic_store(&s->st_read_cnt, 0);
	atomic_store(&s->st_read_bytes, 0);
	atomic_store(&s->st_write_cnt, 0);
	atomic_store(&s->st_write_bytes, 0);
	atomic_store(&s->st_errors, 0);
	atomic_store(&s->st_mig_from, 0);
	atomic_store(&s->st_mig_to, 0);
	atomic_store(&s->st_backlog, 0);
	atomic_store(&s->st_failovers, 0);
	atomic_store(&s->st_held, 0);
	n = atomic_load(&s->npaths);
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (!p)
			continue;
		atomic_store(&p->st_read_cnt, 0);
		atomic_store(&p->st_read_bytes, 0);
		atomic_store(&p->st_write_cnt, 0);
		atomic_store(&p->st_write_bytes, 0);
		atomic_store(&p->st_failovers, 0);
		atomic_store(&p->st_recon_ok, 0);
		atomic_store(&p->st_recon_fail, 0);
		atomic_store(&p->st_hb_timeouts, 0);
		atomic_store(&p->st_mig_from, 0);
		atomic_store(&p->st_mig_to, 0);
	}
	return 0;
}

/* ---- memory registration ---- */

int rtrs_mr_reg(struct rtrs_clt_sess *s, void *buf, size_t len,
		struct rtrs_mr **out)
{
	struct rtrs_mr *m;
	int ret = 0;

	if (!s || !buf || !len || !out)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->sess = s;
	m->buf = buf;
	m->len = len;
	for (unsigned i = 0; i < atomic_load(&s->npaths) && !ret; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p)
			ret = rtrs__fab_mr_reg(p->dom, buf, len, FAB_ACC_LOCAL,
					       &m->mrs[i]);
	}
	if (ret) {
		rtrs_mr_dereg(m);
		return ret;
	}
	*out = m;
	return 0;
}

int rtrs_mr_dereg(struct rtrs_mr *m)
{
	if (!m)
		return -EINVAL;
	for (unsigned i = 0; i < RTRS_MAX_PATHS; i++)
		rtrs__fab_mr_close(m->mrs[i]);
	free(m);
	return 0;
}
