// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client path choice: a table of next-path functions, one per multipath
 * policy (round-robin, min-inflight, min-latency), used for a request's
 * first path and for each failover; and the session-wide path queries
 * the data path and the API ask (any path connected, any may come back).
 * Lock-free: it reads the path slots and states atomically.
 */
#include "clt_int.h"

bool rtrs__clt_any_connected(struct rtrs_clt_sess *s, struct clt_path *except)
{
	unsigned n = atomic_load(&s->npaths);

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);

		if (p && p != except &&
		    atomic_load(&p->state) == CLT_PATH_CONNECTED)
			return true;
	}
	return false;
}

bool rtrs__clt_may_recover(struct rtrs_clt_sess *s)
{
	unsigned n = atomic_load(&s->npaths);

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		int st = p ? atomic_load(&p->state) : CLT_PATH_DEAD;

		if (st != CLT_PATH_DEAD && !(st == CLT_PATH_CLOSED && p->admin_down))
			return true;
	}
	return false;
}

static _Thread_local struct {
	const struct rtrs_clt_sess *sess;
	unsigned last;
} rr_cursor;

/* round-robin: the usable path after the one this thread used last */
static struct clt_path *next_rr(struct rtrs_clt_sess *s, struct path_set *tried)
{
	unsigned n = atomic_load(&s->npaths);
	unsigned start = rr_cursor.sess == s ? rr_cursor.last + 1 : 0;

	for (unsigned k = 0; k < n; k++) {
		unsigned i = (start + k) % n;
		struct clt_path *p = sess_path(s, i);

		if (!pset_has(tried, i) && path_usable(p)) {
			rr_cursor.sess = s;
			rr_cursor.last = i;
			pset_add(tried, i);
			return p;
		}
	}
	return NULL;
}

/* the usable path with the smallest @key (the first of equals) */
static struct clt_path *next_min(struct rtrs_clt_sess *s,
				 struct path_set *tried,
				 uint64_t (*key_of)(struct clt_path *))
{
	unsigned n = atomic_load(&s->npaths);
	struct clt_path *best = NULL;
	uint64_t best_key = UINT64_MAX;

	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = sess_path(s, i);
		uint64_t key;

		if (pset_has(tried, i) || !path_usable(p))
			continue;
		key = key_of(p);
		if (!best || key < best_key) {
			best = p;
			best_key = key;
		}
	}
	if (best)
		pset_add(tried, best->idx);
	return best;
}

static uint64_t key_inflight(struct clt_path *p)
{
	return atomic_load_explicit(&p->inflight, memory_order_relaxed);
}

static uint64_t key_latency(struct clt_path *p)
{
	uint64_t key = rtrs__hb_latency_ns(&p->live);

	return key ? key : UINT64_MAX - 1;      /* no sample yet */
}

static struct clt_path *next_min_inflight(struct rtrs_clt_sess *s,
					  struct path_set *tried)
{
	return next_min(s, tried, key_inflight);
}

static struct clt_path *next_min_latency(struct rtrs_clt_sess *s,
					 struct path_set *tried)
{
	return next_min(s, tried, key_latency);
}

static struct clt_path *(*const next_path[])(struct rtrs_clt_sess *,
					     struct path_set *) = {
	[RTRS_MP_POLICY_RR] = next_rr,
	[RTRS_MP_POLICY_MIN_INFLIGHT] = next_min_inflight,
	[RTRS_MP_POLICY_MIN_LATENCY] = next_min_latency,
};

struct clt_path *rtrs__clt_pick_path(struct rtrs_clt_sess *s,
				     struct path_set *tried)
{
	unsigned policy = (unsigned)atomic_load_explicit(&s->policy,
							 memory_order_relaxed);

	if (policy >= ARRAY_SIZE(next_path))
		policy = RTRS_MP_POLICY_MIN_INFLIGHT;
	return next_path[policy](s, tried);
}
