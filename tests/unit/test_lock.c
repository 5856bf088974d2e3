/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Ranked locks (src/util/lock.h): nesting in order passes; out of order,
 * taking a held lock again, releasing or asserting a lock the thread does
 * not hold each abort with a message naming the locks.  The aborting cases
 * run in a child process; its stderr is compared.
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
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
