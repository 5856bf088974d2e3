/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Liveness counting and heartbeat round trips (src/core/hb.c), with no
 * provider: the ticks and the clock are the test's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/hb.h"

#define MS 1000000ull

static void dead_after_missed_max(void **state)
{
	struct rtrs_hb h;

	(void)state;
	rtrs__hb_reset(&h);
	/* traffic before every tick: alive for ever */
	for (int i = 0; i < 100; i++) {
		rtrs__hb_rx(&h);
		assert_true(rtrs__hb_tick(&h, 3));
		assert_int_equal(h.missed, 0);
	}
	/* silence: the third tick in a row is dead */
	assert_true(rtrs__hb_tick(&h, 3));
	assert_true(rtrs__hb_tick(&h, 3));
	assert_false(rtrs__hb_tick(&h, 3));
	assert_int_equal(h.missed, 3);
}

static void traffic_resets_the_count(void **state)
{
	struct rtrs_hb h;

	(void)state;
	rtrs__hb_reset(&h);
	assert_true(rtrs__hb_tick(&h, 2));      /* missed 1 */
	rtrs__hb_rx(&h);
	rtrs__hb_rx(&h);                        /* two count as one */
	assert_true(rtrs__hb_tick(&h, 2));
	assert_int_equal(h.missed, 0);
	assert_true(rtrs__hb_tick(&h, 2));
	assert_false(rtrs__hb_tick(&h, 2));
	/* a missed_max of 1: the first silent tick */
	rtrs__hb_reset(&h);
	assert_false(rtrs__hb_tick(&h, 1));
}

static void one_in_flight(void **state)
{
	struct rtrs_hb h;

	(void)state;
	rtrs__hb_reset(&h);
	assert_true(rtrs__hb_want_send(&h, 1000, 5000 * MS));
	/* unanswered and younger than the interval: not again */
	assert_false(rtrs__hb_want_send(&h, 1000, 5500 * MS));
	assert_false(rtrs__hb_want_send(&h, 1000, 6000 * MS));
	/* older: lost, sent again */
	assert_true(rtrs__hb_want_send(&h, 1000, 6001 * MS));
	/* a failed post takes it back: the next tick sends */
	rtrs__hb_unsent(&h);
	assert_true(rtrs__hb_want_send(&h, 1000, 6002 * MS));
	/* answered: the next one goes at once */
	rtrs__hb_ack(&h, 6003 * MS);
	assert_true(rtrs__hb_want_send(&h, 1000, 6004 * MS));
}

static void latency_smoothed(void **state)
{
	struct rtrs_hb h;

	(void)state;
	rtrs__hb_reset(&h);
	assert_int_equal(rtrs__hb_latency_ns(&h), 0);
	/* an answer nobody asked for is no sample */
	rtrs__hb_ack(&h, 100 * MS);
	assert_int_equal(rtrs__hb_latency_ns(&h), 0);
	assert_true(rtrs__hb_want_send(&h, 1000, 1000 * MS));
	rtrs__hb_ack(&h, 1000 * MS + 800000);           /* 800 us */
	assert_int_equal(rtrs__hb_latency_ns(&h), 800000);
	/* a second answer to the same heartbeat: ignored */
	rtrs__hb_ack(&h, 1000 * MS + 9000000);
	assert_int_equal(rtrs__hb_latency_ns(&h), 800000);
	assert_true(rtrs__hb_want_send(&h, 1000, 2000 * MS));
	rtrs__hb_ack(&h, 2000 * MS + 1600000);          /* 1600 us */
	assert_int_equal(rtrs__hb_latency_ns(&h), (800000 * 7 + 1600000) / 8);
	rtrs__hb_reset(&h);
	assert_int_equal(rtrs__hb_latency_ns(&h), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dead_after_missed_max),
		cmocka_unit_test(traffic_resets_the_count),
		cmocka_unit_test(one_in_flight),
		cmocka_unit_test(latency_smoothed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
