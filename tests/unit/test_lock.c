/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Ranked locks (src/util/lock.h): nesting in order passes; out of order,
 * taking a held lock again, releasing or asserting a lock the thread does
 * not hold each abort with a message naming the locks.  The aborting cases
 * run in a child process; its stderr is compared.  And the one order of
 * the whole process (docs/design.md §5): the nestings that the code does
 * across files and layers, taken with the real ranks, pass the checks,
 * and one the other way round is caught.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clt_int.h"
#include "core/registry.h"
#include "core/srv_int.h"
#include "core/timer.h"
#include "fabric/ofi/ofi.h"
#include "rnbd/clt_int.h"
#include "rnbd/srv_int.h"
#include "util/lock.h"
#include "util/util.h"

static struct rtrs_lock outer, inner;
static struct rtrs_rwlock rw;

static int setup(void **state)
{
	(void)state;
	rtrs__lock_check_set(1);
	assert_int_equal(rtrs__lock_init(&outer, 10, "outer"), 0);
	assert_int_equal(rtrs__lock_init(&inner, 20, "inner"), 0);
	assert_int_equal(rtrs__rwlock_init(&rw, 15, "rw"), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rtrs__lock_destroy(&outer);
	rtrs__lock_destroy(&inner);
	rtrs__rwlock_destroy(&rw);
	return 0;
}

/* Run @fn in a child; it must die of SIGABRT with @want in its stderr. */
static void expect_abort(void (*fn)(void), const char *want)
{
	char buf[512] = "";
	int pfd[2], st;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		fn();
		_exit(0);       /* not reached when the check works */
	}
	close(pfd[1]);
	while ((n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
		fail_msg("child did not abort (status %#x), stderr: %s", st, buf);
	if (!strstr(buf, want))
		fail_msg("stderr \"%s\" does not say \"%s\"", buf, want);
}

static void in_order(void **state)
{
	(void)state;
	rtrs__lock(&outer);
	RTRS_ASSERT_HELD(&outer);
	rtrs__rdlock(&rw);
	rtrs__lock(&inner);
	RTRS_ASSERT_HELD(&inner);
	rtrs__unlock(&inner);
	rtrs__rwunlock(&rw);
	assert_false(rtrs__lock_held(&inner));
	rtrs__unlock(&outer);
	assert_false(rtrs__lock_held(&outer));
	/* released out of nesting order is fine: only taking is ordered */
	rtrs__lock(&outer);
	rtrs__lock(&inner);
	rtrs__unlock(&outer);
	rtrs__unlock(&inner);
}

static void take_inverted(void)
{
	rtrs__lock(&inner);
	rtrs__lock(&outer);
}

static void out_of_order(void **state)
{
	(void)state;
	expect_abort(take_inverted, "lock order: taking outer (rank 10) while "
		     "holding inner (rank 20)");
}

static void take_rw_inverted(void)
{
	rtrs__wrlock(&rw);
	rtrs__lock(&outer);
}

static void rwlock_out_of_order(void **state)
{
	(void)state;
	expect_abort(take_rw_inverted, "taking outer (rank 10) while holding "
		     "rw (rank 15)");
}

static void take_twice(void)
{
	rtrs__lock(&outer);
	rtrs__lock(&outer);
}

static void recursive(void **state)
{
	(void)state;
	/* a deadlock without the check: reported instead */
	expect_abort(take_twice, "outer taken again by the thread that holds "
		     "it");
}

static void assert_unheld(void)
{
	RTRS_ASSERT_HELD(&inner);
}

static void not_held(void **state)
{
	(void)state;
	expect_abort(assert_unheld, "lock inner: not held");
}

static void release_unheld(void)
{
	rtrs__unlock(&outer);
}

static void unlock_unheld(void **state)
{
	(void)state;
	expect_abort(release_unheld, "lock outer: released by a thread that "
		     "does not hold it");
}

static void cond_wait_keeps_order(void **state)
{
	pthread_cond_t c;
	struct timespec ts;

	(void)state;
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		assert_int_equal(pthread_cond_init(&c, &ca), 0);
		pthread_condattr_destroy(&ca);
	}
	rtrs__lock(&outer);
	ts = rtrs_deadline(1);
	assert_int_equal(rtrs__cond_wait(&c, &outer, &ts), -ETIMEDOUT);
	RTRS_ASSERT_HELD(&outer);
	rtrs__lock(&inner);     /* still in order after the wait */
	rtrs__unlock(&inner);
	rtrs__unlock(&outer);
	pthread_cond_destroy(&c);
}

static void take_inverted_unchecked(void)
{
	rtrs__lock_check_set(0);
	rtrs__lock(&inner);
	rtrs__lock(&outer);
	rtrs__unlock(&outer);
	rtrs__unlock(&inner);
	RTRS_ASSERT_HELD(&outer);       /* no check: passes */
	_exit(3);
}

static void checks_off(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		take_inverted_unchecked();
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 3);
}

/* Take the locks of ranks @r (in that order, as one thread of the code
 * nests them), then release them. */
static void nest(const char *what, const unsigned *r, size_t n)
{
	struct rtrs_lock l[8];

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rtrs__lock_init(&l[i], r[i], what), 0);
	for (size_t i = 0; i < n; i++)
		rtrs__lock(&l[i]);
	for (size_t i = n; i-- > 0;) {
		rtrs__unlock(&l[i]);
		rtrs__lock_destroy(&l[i]);
	}
}

#define NEST(what, ...)                                                      \
	do {                                                                 \
		const unsigned r_[] = { __VA_ARGS__ };                       \
		nest(what, r_, ARRAY_SIZE(r_));                              \
	} while (0)

/* Each nesting that crosses a file or a layer, as the code does it (the
 * table of docs/design.md §5 says where): a rank out of place aborts. */
static void global_order(void **state)
{
	(void)state;
	/* rtrsctl: a command under the registry adds a client path: a
	 * connect under ctl_lock creates endpoints (the poller's list) */
	NEST("ctl add path", RTRS_RANK_REG_LIFE, RTRS_RANK_REG,
	     RTRS_RANK_CLT_CTL, RTRS_RANK_OFI_POLLER);
	/* rtrs_clt_poll(): callbacks under the poller's lock post with
	 * con->lock held; the fabric's post and map locks inside it */
	NEST("poll mode cqe", RTRS_RANK_OFI_POLLER, RTRS_RANK_CLT_SESS,
	     RTRS_RANK_CLT_PATH);
	NEST("poll mode post", RTRS_RANK_OFI_POLLER, RTRS_RANK_CLT_CON,
	     RTRS_RANK_OFI_POST, RTRS_RANK_OFI_MAP, RTRS_RANK_LOG);
	/* librnbd's callbacks in poll mode */
	NEST("rnbd poll", RTRS_RANK_OFI_POLLER, RNBD_RANK_CLT_SESS);
	NEST("rnbd poll sync", RTRS_RANK_OFI_POLLER, RNBD_RANK_CLT_WAITER);
	/* the engine's stop runs the last closes: detach from the poller,
	 * flush (post_lock, map_lock), the core's callbacks */
	NEST("engine stop", RTRS_RANK_OFI_ENGINE, RTRS_RANK_OFI_LOOP);
	NEST("engine stop pep", RTRS_RANK_OFI_ENGINE, RTRS_RANK_OFI_PEP);
	NEST("engine stop ep", RTRS_RANK_OFI_ENGINE, RTRS_RANK_OFI_POLLER,
	     RTRS_RANK_CLT_SESS);
	NEST("engine stop srv", RTRS_RANK_OFI_ENGINE, RTRS_RANK_SRV_CON,
	     RTRS_RANK_OFI_POST, RTRS_RANK_OFI_MAP);
	/* the server: an answer's post; a timer armed under ctx->lock */
	NEST("srv answer", RTRS_RANK_SRV_OP, RTRS_RANK_SRV_CON,
	     RTRS_RANK_OFI_POST, RTRS_RANK_OFI_MAP);
	NEST("srv timer", RTRS_RANK_SRV_CTX, RTRS_RANK_TIMER);
	/* rnbd-server: OPEN maps an export (rtrs_srv_mr_reg() under
	 * srv->lock); its control socket's list asks for stats */
	NEST("rnbd open", RNBD_RANK_SRV, RNBD_RANK_SESS, RTRS_RANK_SRV_CTX,
	     RTRS_RANK_OFI_MAP);
	NEST("rnbd ctl list", RNBD_RANK_SRV, RTRS_RANK_SRV_CTX);
	/* an rtrsctl command closing a server path: link_ev, rnbd's */
	NEST("ctl close path", RTRS_RANK_REG, RNBD_RANK_SRV, RNBD_RANK_SESS);
	/* a close (loop lock) from under a connection's lock */
	NEST("ep close", RTRS_RANK_CLT_CON, RTRS_RANK_OFI_LOOP);
	NEST("srv ep close", RTRS_RANK_SRV_CTX, RTRS_RANK_OFI_LOOP);
	/* the leaves: work queue, ring, log sink last */
	NEST("leaves", RNBD_RANK_SESS, RTRS_RANK_WORKQ, RNBD_RANK_RING,
	     RTRS_RANK_LOG);
	NEST("rtab", RTRS_RANK_CLT_CON, RTRS_RANK_OFI_RTAB, RTRS_RANK_LOG);
}

/* The inversion the order forbids: a core callback taking the poller's
 * lock (rtrs_clt_poll() from a callback) while holding sess->lock. */
static void take_poller_in_callback(void)
{
	NEST("inverted", RTRS_RANK_CLT_SESS, RTRS_RANK_OFI_POLLER);
}

static void global_order_inverted(void **state)
{
	(void)state;
	expect_abort(take_poller_in_callback, "lock order: taking inverted "
		     "(rank 205) while holding inverted (rank 210)");
}

/* The writer-preferring rwlock (fab_dom.map_lock): a thread taking it
 * again for reading would deadlock behind a waiting writer. */
static void take_map_twice(void)
{
	struct rtrs_rwlock m;

	rtrs__rwlock_init_writers(&m, RTRS_RANK_OFI_MAP, "fab_dom.map_lock");
	rtrs__rdlock(&m);
	rtrs__rdlock(&m);
}

static void rwlock_writers(void **state)
{
	struct rtrs_rwlock m;

	(void)state;
	assert_int_equal(rtrs__rwlock_init_writers(&m, RTRS_RANK_OFI_MAP,
						   "fab_dom.map_lock"), 0);
	rtrs__lock(&outer);
	rtrs__wrlock(&m);
	RTRS_ASSERT_WRHELD(&m);
	rtrs__rwunlock(&m);
	rtrs__rdlock(&m);
	rtrs__rwunlock(&m);
	rtrs__unlock(&outer);
	rtrs__rwlock_destroy(&m);
	expect_abort(take_map_twice, "fab_dom.map_lock taken again by the "
		     "thread that holds it");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(in_order),
		cmocka_unit_test(out_of_order),
		cmocka_unit_test(rwlock_out_of_order),
		cmocka_unit_test(recursive),
		cmocka_unit_test(not_held),
		cmocka_unit_test(unlock_unheld),
		cmocka_unit_test(cond_wait_keeps_order),
		cmocka_unit_test(checks_off),
		cmocka_unit_test(global_order),
		cmocka_unit_test(global_order_inverted),
		cmocka_unit_test(rwlock_writers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
