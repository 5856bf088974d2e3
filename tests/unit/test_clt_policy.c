// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The client's path choice (src/core/clt_policy.c) without a provider: a
 * session of path objects in given states with given inflight counts and
 * heartbeat latencies; which path each policy picks first, which next on a
 * failover (the paths a request tried excluded), and when none is left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clt_int.h"

#define NP 4

static struct rtrs_clt_sess *sess_new(unsigned n, int policy)
{
	struct rtrs_clt_sess *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	for (unsigned i = 0; i < n; i++) {
		struct clt_path *p = calloc(1, sizeof(*p));

		assert_non_null(p);
		p->sess = s;
		p->idx = i;
		atomic_init(&p->state, CLT_PATH_CONNECTED);
		atomic_store(&s->paths[i], p);
	}
	atomic_store(&s->npaths, n);
	atomic_store(&s->policy, policy);
	return s;
}

static void sess_del(struct rtrs_clt_sess *s)
{
	for (unsigned i = 0; i < RTRS_MAX_PATHS; i++)
		free(sess_path(s, i));
	free(s);
}

static struct clt_path *P(struct rtrs_clt_sess *s, unsigned i)
{
	return sess_path(s, i);
}

/* the index picked with a fresh set, -1 for none */
static int pick1(struct rtrs_clt_sess *s)
{
	struct path_set t = { { 0 } };
	struct clt_path *p = rtrs__clt_pick_path(s, &t);

	return p ? (int)p->idx : -1;
}

static void test_rr(void **st)
{
	struct rtrs_clt_sess *s = sess_new(3, RTRS_MP_POLICY_RR);
	struct path_set t = { { 0 } };

	(void)st;
	/* one request after the other: in turn */
	assert_int_equal(pick1(s), 0);
	assert_int_equal(pick1(s), 1);
	assert_int_equal(pick1(s), 2);
	assert_int_equal(pick1(s), 0);
	/* a path down is skipped, and so is one being removed */
	atomic_store(&P(s, 1)->state, CLT_PATH_CLOSED);
	assert_int_equal(pick1(s), 2);
	assert_int_equal(pick1(s), 0);
	assert_int_equal(pick1(s), 2);
	atomic_store(&P(s, 1)->state, CLT_PATH_CONNECTED);
	atomic_store(&P(s, 2)->draining, true);
	assert_int_equal(pick1(s), 0);
	assert_int_equal(pick1(s), 1);
	assert_int_equal(pick1(s), 0);
	atomic_store(&P(s, 2)->draining, false);
	/* one request failing over: each path once, then none */
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 1));
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 2));
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 0));
	assert_null(rtrs__clt_pick_path(s, &t));
	assert_true(pset_has(&t, 0) && pset_has(&t, 1) && pset_has(&t, 2));
	sess_del(s);
}

static void test_min_inflight(void **st)
{
	struct rtrs_clt_sess *s = sess_new(NP, RTRS_MP_POLICY_MIN_INFLIGHT);
	struct path_set t = { { 0 } };

	(void)st;
	atomic_store(&P(s, 0)->inflight, 5);
	atomic_store(&P(s, 1)->inflight, 2);
	atomic_store(&P(s, 2)->inflight, 7);
	atomic_store(&P(s, 3)->inflight, 2);
	/* the least loaded; of equals the first */
	assert_int_equal(pick1(s), 1);
	assert_int_equal(pick1(s), 1);
	/* the failover order: by load, the path it left excluded */
	pset_add(&t, 1);
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 3));
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 0));
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 2));
	assert_null(rtrs__clt_pick_path(s, &t));
	/* not connected, draining or an empty slot: never */
	atomic_store(&P(s, 1)->state, CLT_PATH_RECONNECTING);
	atomic_store(&P(s, 3)->draining, true);
	assert_int_equal(pick1(s), 0);
	free(P(s, 0));
	atomic_store(&s->paths[0], NULL);
	assert_int_equal(pick1(s), 2);
	atomic_store(&P(s, 2)->state, CLT_PATH_CLOSING);
	assert_int_equal(pick1(s), -1);
	sess_del(s);
}

static void test_min_latency(void **st)
{
	struct rtrs_clt_sess *s = sess_new(3, RTRS_MP_POLICY_MIN_LATENCY);
	struct path_set t = { { 0 } };

	(void)st;
	atomic_store(&P(s, 0)->live.lat_ns, 300000);
	atomic_store(&P(s, 1)->live.lat_ns, 0);        /* no sample yet */
	atomic_store(&P(s, 2)->live.lat_ns, 100000);
	atomic_store(&P(s, 2)->inflight, 1000);      /* not what counts */
	assert_int_equal(pick1(s), 2);
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 2));
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 0));
	/* a path without a sample comes last, but it comes */
	assert_ptr_equal(rtrs__clt_pick_path(s, &t), P(s, 1));
	assert_null(rtrs__clt_pick_path(s, &t));
	/* the policy is read per pick: a switch applies to the next one */
	atomic_store(&s->policy, RTRS_MP_POLICY_MIN_INFLIGHT);
	assert_int_equal(pick1(s), 0);
	sess_del(s);
}

static void test_queries(void **st)
{
	struct rtrs_clt_sess *s = sess_new(2, RTRS_MP_POLICY_MIN_INFLIGHT);

	(void)st;
	assert_true(rtrs__clt_any_connected(s, NULL));
	assert_true(rtrs__clt_any_connected(s, P(s, 0)));
	atomic_store(&P(s, 1)->state, CLT_PATH_RECONNECTING);
	assert_false(rtrs__clt_any_connected(s, P(s, 0)));
	assert_true(rtrs__clt_any_connected(s, NULL));
	atomic_store(&P(s, 0)->state, CLT_PATH_CLOSED);
	assert_false(rtrs__clt_any_connected(s, NULL));
	/* a reconnecting path, or a closed one not closed by the user, may
	 * come back: requests wait for it (no_path_timeout_ms) */
	assert_true(rtrs__clt_may_recover(s));
	atomic_store(&P(s, 1)->state, CLT_PATH_DEAD);
	assert_true(rtrs__clt_may_recover(s));
	P(s, 0)->admin_down = true;
	assert_false(rtrs__clt_may_recover(s));
	assert_int_equal(pick1(s), -1);
	sess_del(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rr),
		cmocka_unit_test(test_min_inflight),
		cmocka_unit_test(test_min_latency),
		cmocka_unit_test(test_queries),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
