// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Fault injection at the fabric boundary ($RTRS_FAULT):
 *  post_fail=N  - the Nth post fails: that one request is refused
 *                 synchronously with -EIO and never gets a callback; the
 *                 session keeps working.
 *  close_after=N - posts after the Nth are swallowed and the endpoint is
 *                 shut down as if the peer vanished with them in flight:
 *                 every request completes exactly once (the swallowed ones
 *                 with -ECONNABORTED), new ones get -ENOTCONN, close
 *                 returns.
 *  delay_rx=N,delay_ms=M - the Nth received completion arrives M ms late:
 *                 that request takes at least M ms, every request succeeds.
 * The mode is argv[1]: "post_fail", "close" or "delay".
 */
#include <pthread.h>
#include <stdatomic.h>

#include "harness.h"
#include "perf_common.h"
#include "rtrs/rtrs.h"

static struct rtrs_clt_sess *sess;
static _Atomic int calls, fails, aborted;

static void conf(void *priv, int status)
{
	(void)priv;
	atomic_fetch_add(&calls, 1);
	if (status == -ECONNABORTED)
		atomic_fetch_add(&aborted, 1);
	else if (status)
		atomic_fetch_add(&fails, 1);
}

static int submit(struct rtrs_permit *p, struct perf_hdr *h, uint8_t *buf)
{
	struct rtrs_req_ops ops = { NULL, conf };
	struct iovec hv = { h, sizeof(*h) }, dv = { buf, 4096 };

	*h = (struct perf_hdr){ .magic = PERF_MAGIC, .op = PERF_OP_WRITE,
				.off = 0, .len = 4096 };
	return rtrs_clt_request(sess, RTRS_WRITE, &ops, p, &hv, 1, &dv, 1, NULL);
}

static void wait_calls(int n)
{
	for (int i = 0; i < 5000 && atomic_load(&calls) < n; i++)
		t_sleep_ms(1);
}

int main(int argc, char **argv)
{
	static uint8_t buf[64][4096];
	static struct perf_hdr hdr[64];
	struct rtrs_permit *p[64];
	struct t_server srv;
	const char *mode = argc > 1 ? argv[1] : "post_fail";
	int ret, sync_err = 0, ok = 0;

	if (t_server_start(&srv, NULL))
		return 1;
	/* only for this process (the server is already running); the hook
	 * counts its posts from the first one, the info request */
	setenv("RTRS_FAULT", !strcmp(mode, "close") ? "close_after=20"
			     : !strcmp(mode, "delay") ? "delay_rx=6,delay_ms=300"
						      : "post_fail=10", 1);
	if (t_open(&srv, "test-fault", NULL, &sess))
		return t_finish();
	for (int i = 0; i < 64; i++)
		CHECK_EQ(rtrs_clt_get_permit(sess, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &p[i]), 0);
	if (!strcmp(mode, "delay")) {
		uint64_t slowest = 0;

		for (int i = 0; i < 20; i++) {
			int before = atomic_load(&calls);
			uint64_t t0 = perf_now_ns(), dt;

			CHECK_EQ(submit(p[0], &hdr[0], buf[0]), 0);
			wait_calls(before + 1);
			dt = perf_now_ns() - t0;
			if (dt > slowest)
				slowest = dt;
		}
		CHECK_EQ(atomic_load(&calls), 20);
		CHECK_EQ(atomic_load(&fails) + atomic_load(&aborted), 0);
		CHECK(slowest >= 290000000ull, "no request saw the delay (%llu ns)",
		      (unsigned long long)slowest);
	} else if (!strcmp(mode, "post_fail")) {
		/* one request at a time: exactly one is refused */
		for (int i = 0; i < 30; i++) {
			int before = atomic_load(&calls);

			ret = submit(p[0], &hdr[0], buf[0]);
			if (ret) {
				CHECK_EQ(ret, -EIO);
				sync_err++;
				continue;
			}
			wait_calls(before + 1);
			ok++;
		}
		t_sleep_ms(50);
		CHECK_EQ(sync_err, 1);
		CHECK_EQ(ok, 29);
		CHECK_EQ(atomic_load(&calls), 29);   /* no callback for the refused one */
		CHECK_EQ(atomic_load(&fails) + atomic_load(&aborted), 0);
	} else {
		int n = 0;

		/* more requests in flight than posts allowed: the endpoint
		 * goes down under them */
		for (int i = 0; i < 64; i++) {
			ret = submit(p[i], &hdr[i], buf[i]);
			if (!ret)
				n++;
			else
				CHECK_EQ(ret, -ENOTCONN);
		}
		wait_calls(n);
		CHECK_EQ(atomic_load(&calls), n);
		CHECK(atomic_load(&aborted) > 0, "no request saw the failure");
		CHECK_EQ(atomic_load(&fails), 0);
		t_sleep_ms(100);
		CHECK_EQ(submit(p[0], &hdr[0], buf[0]), -ENOTCONN);
	}
	for (int i = 0; i < 64; i++)
		rtrs_clt_put_permit(sess, p[i]);
	rtrs_clt_close(sess);
	CHECK_EQ(t_server_stop(&srv, SIGTERM), 0);
	return t_finish();
}
