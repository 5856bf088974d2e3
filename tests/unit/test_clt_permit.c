// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The client's permits (src/core/clt_permit.c) without a provider: a
 * session with only its permit pool and request slots. Get and put, every
 * permit once, exhaustion (-EAGAIN, -ETIMEDOUT), a waiter woken by a put or
 * by close (-ESHUTDOWN), and the puts that must be refused.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clt_int.h"

#define QD 8

static struct rtrs_clt_sess *sess_new(void)
{
	struct rtrs_clt_sess *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	rtrs__lock_init(&s->lock, RTRS_RANK_CLT_SESS, "sess->lock");
	assert_int_equal(rtrs__cond_init_mono(&s->cond), 0);
	s->geom.queue_depth = QD;
	assert_int_equal(rtrs__clt_permits_init(s, QD), 0);
	s->reqs = calloc(QD, sizeof(*s->reqs));
	assert_non_null(s->reqs);
	for (unsigned i = 0; i < QD; i++)
		atomic_init(&s->reqs[i].state, REQ_IDLE);
	return s;
}

static void sess_del(struct rtrs_clt_sess *s)
{
	rtrs__lock_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->permits);
	free(s->free_permits);
	free(s->reqs);
	free(s);
}

static unsigned nfree(struct rtrs_clt_sess *s)
{
	unsigned n;

	rtrs__lock(&s->lock);
	n = s->nfree;
	rtrs__unlock(&s->lock);
	return n;
}

static void test_get_put(void **st)
{
	struct rtrs_clt_sess *s = sess_new();
	struct rtrs_permit *pm[QD], *x;
	bool seen[QD] = { false };

	(void)st;
	for (unsigned i = 0; i < QD; i++) {
		assert_int_equal(rtrs_clt_get_permit(s, i % 2 ? RTRS_IO_CON
							      : RTRS_ADMIN_CON,
						     RTRS_PERMIT_NOWAIT, &pm[i]),
				 0);
		assert_true(pm[i]->mem_id < QD);
		assert_false(seen[pm[i]->mem_id]);      /* each chunk once */
		seen[pm[i]->mem_id] = true;
		assert_true(pm[i]->taken);
		assert_int_equal(pm[i]->con_type,
				 i % 2 ? RTRS_IO_CON : RTRS_ADMIN_CON);
		assert_true(rtrs__clt_permit_valid(s, pm[i]));
	}
	assert_int_equal(nfree(s), 0);
	/* exhausted */
	x = NULL;
	assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &x), -EAGAIN);
	assert_null(x);
	assert_int_equal(rtrs_clt_get_permit_timed(s, RTRS_IO_CON, 0, &x),
			 -EAGAIN);
	assert_int_equal(rtrs_clt_get_permit_timed(s, RTRS_IO_CON, 20, &x),
			 -ETIMEDOUT);
	assert_null(x);
	/* a put frees exactly that one, and the next get takes it */
	rtrs_clt_put_permit(s, pm[3]);
	assert_false(pm[3]->taken);
	assert_false(rtrs__clt_permit_valid(s, pm[3]));
	assert_int_equal(nfree(s), 1);
	assert_int_equal(rtrs_clt_get_permit_timed(s, RTRS_IO_CON, 20, &x), 0);
	assert_ptr_equal(x, pm[3]);
	for (unsigned i = 0; i < QD; i++)
		rtrs_clt_put_permit(s, pm[i]);
	assert_int_equal(nfree(s), QD);
	sess_del(s);
}

static void test_refused(void **st)
{
	struct rtrs_clt_sess *s = sess_new(), *o = sess_new();
	struct rtrs_permit *pm, *opm, fake = { .mem_id = 0, .taken = true };

	(void)st;
	assert_int_equal(rtrs_clt_get_permit(s, (enum rtrs_con_type)7,
					     RTRS_PERMIT_NOWAIT, &pm), -EINVAL);
	assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON, (enum rtrs_wait)7,
					     &pm), -EINVAL);
	assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     NULL), -EINVAL);
	assert_int_equal(rtrs_clt_get_permit(NULL, RTRS_IO_CON,
					     RTRS_PERMIT_NOWAIT, &pm), -EINVAL);
	assert_int_equal(nfree(s), QD);
	assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &pm), 0);
	assert_int_equal(rtrs_clt_get_permit(o, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &opm), 0);
	/* refused, and nothing changes: another session's permit, one that
	 * is not ours at all, one with its request in flight, a double put */
	rtrs_clt_put_permit(s, opm);
	rtrs_clt_put_permit(s, &fake);
	rtrs_clt_put_permit(NULL, pm);
	assert_int_equal(nfree(s), QD - 1);
	atomic_store(&s->reqs[pm->mem_id].state, REQ_POSTED);
	rtrs_clt_put_permit(s, pm);
	assert_true(pm->taken);
	assert_int_equal(nfree(s), QD - 1);
	atomic_store(&s->reqs[pm->mem_id].state, REQ_IDLE);
	rtrs_clt_put_permit(s, pm);
	assert_int_equal(nfree(s), QD);
	rtrs_clt_put_permit(s, pm);
	assert_int_equal(nfree(s), QD);
	rtrs_clt_put_permit(o, opm);
	sess_del(s);
	sess_del(o);
}

struct waiter {
	struct rtrs_clt_sess *s;
	struct rtrs_permit *pm;
	int ret;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	w->ret = rtrs_clt_get_permit(w->s, RTRS_IO_CON, RTRS_PERMIT_WAIT,
				     &w->pm);
	return NULL;
}

/* until @n threads wait for a permit (no time limit: ctest's timeout) */
static void await_waiters(struct rtrs_clt_sess *s, unsigned n)
{
	for (;;) {
		unsigned w;

		rtrs__lock(&s->lock);
		w = s->permit_waiters;
		rtrs__unlock(&s->lock);
		if (w == n)
			return;
		sched_yield();
	}
}

static void test_wait(void **st)
{
	struct rtrs_clt_sess *s = sess_new();
	struct rtrs_permit *pm[QD];
	struct waiter w = { .s = s, .ret = 1 };
	pthread_t t;

	(void)st;
	for (unsigned i = 0; i < QD; i++)
		assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON,
						     RTRS_PERMIT_NOWAIT, &pm[i]),
				 0);
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	await_waiters(s, 1);
	rtrs_clt_put_permit(s, pm[5]);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, 0);
	assert_ptr_equal(w.pm, pm[5]);       /* the one put, to the waiter */
	assert_int_equal(nfree(s), 0);
	assert_int_equal(s->permit_waiters, 0);
	for (unsigned i = 0; i < QD; i++)
		rtrs_clt_put_permit(s, pm[i]);
	sess_del(s);
}

static void test_close_wakes(void **st)
{
	struct rtrs_clt_sess *s = sess_new();
	struct rtrs_permit *pm[QD], *x = NULL;
	struct waiter w[2] = { { .s = s, .ret = 1 }, { .s = s, .ret = 1 } };
	pthread_t t[2];

	(void)st;
	for (unsigned i = 0; i < QD; i++)
		assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON,
						     RTRS_PERMIT_NOWAIT, &pm[i]),
				 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, wait_main, &w[i]),
				 0);
	await_waiters(s, 2);
	/* what rtrs_clt_close() does first */
	rtrs__lock(&s->lock);
	s->closing = true;
	pthread_cond_broadcast(&s->cond);
	rtrs__unlock(&s->lock);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ret, -ESHUTDOWN);
	}
	/* closing: no permit even when one is free */
	rtrs_clt_put_permit(s, pm[0]);
	assert_int_equal(rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &x), -ESHUTDOWN);
	assert_null(x);
	assert_int_equal(nfree(s), 1);
	sess_del(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_wait),
		cmocka_unit_test(test_close_wakes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
