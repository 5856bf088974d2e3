// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The server is killed mid-IO (SIGKILL, 32 requests in flight): every
 * outstanding request completes exactly once, with -ECONNABORTED if it did
 * not make it; nothing hangs; new requests fail with -ENOTCONN; close
 * returns.
 *
 * "test_kill stop": the server, listening on both test addresses, is
 * stopped (SIGSTOP) for 2 s under a two-path session with
 * reconnect_delay_ms 0 and 200 ms heartbeats: both paths fail, and come
 * back once it runs again. The session's link_ev sees DISCONNECTED once,
 * then RECONNECTED once, in that order, whichever path failed or came back
 * first.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "harness.h"
#include "perf_common.h"
#include "rtrs/rtrs.h"

#define QD 32

static struct rtrs_clt_sess *sess;
static _Atomic bool stop;
static _Atomic uint64_t submitted, completed, ok, aborted, other, resubmit_fail;
static _Atomic int active;

struct slot {
	struct rtrs_permit *permit;
	uint8_t buf[4096];
	struct perf_hdr h;
	unsigned idx;
	_Atomic int calls;
};

static struct slot slots[QD];

static void conf(void *priv, int status);

static int submit(struct slot *s)
{
	struct rtrs_req_ops ops = { s, conf };
	struct iovec h = { &s->h, sizeof(s->h) }, d = { s->buf, sizeof(s->buf) };
	int ret;

	s->h = (struct perf_hdr){ .magic = PERF_MAGIC, .op = PERF_OP_WRITE,
				  .off = (uint64_t)s->idx * 4096, .len = 4096 };
	atomic_store(&s->calls, 0);
	ret = rtrs_clt_request(sess, RTRS_WRITE, &ops, s->permit, &h, 1, &d, 1,
			       NULL);
	if (!ret)
		atomic_fetch_add(&submitted, 1);
	return ret;
}

static void conf(void *priv, int status)
{
	struct slot *s = priv;

	if (atomic_fetch_add(&s->calls, 1) != 0)
		atomic_fetch_add(&other, 1000000); /* a second callback */
	atomic_fetch_add(&completed, 1);
	if (!status)
		atomic_fetch_add(&ok, 1);
	else if (status == -ECONNABORTED)
		atomic_fetch_add(&aborted, 1);
	else
		atomic_fetch_add(&other, 1);
	if (!atomic_load(&stop) && !status && !submit(s))
		return;
	if (!status && !atomic_load(&stop))
		atomic_fetch_add(&resubmit_fail, 1);
	atomic_fetch_sub(&active, 1);
}

/* ---- a stopped server: link events ---- */

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char evs[64];            /* 'D', 'R' in the order seen */
static unsigned nev;

static void link_ev(void *priv, enum rtrs_clt_link_ev ev)
{
	(void)priv;
	pthread_mutex_lock(&ev_lock);
	if (nev < sizeof(evs) - 1)
		evs[nev++] = ev == RTRS_CLT_LINK_EV_DISCONNECTED ? 'D'
			     : ev == RTRS_CLT_LINK_EV_RECONNECTED ? 'R' : '?';
	pthread_mutex_unlock(&ev_lock);
}

static int path_state(unsigned idx)
{
	struct rtrs_path_info in;

	return rtrs_clt_path_info(sess, idx, &in) ? -1 : (int)in.state;
}

static int test_stop(void)
{
	struct t_server srv;
	struct rtrs_clt_attr a;
	struct rtrs_path_addr pa[2];
	char la[96], line[256], a2[128];
	uint64_t t0;
	int ret;

	snprintf(la, sizeof(la), "%s,%s", t_listen(0), t_listen(1));
	if (t_server_start(&srv, "--listen", la, NULL))
		return 1;
	if (!fgets(line, sizeof(line), srv.out) ||
	    sscanf(line, "listening %127s", a2) != 1) {
		fprintf(stderr, "server did not listen twice\n");
		t_server_stop(&srv, SIGKILL);
		return 1;
	}
	pa[0] = (struct rtrs_path_addr){ NULL, srv.addr };
	pa[1] = (struct rtrs_path_addr){ NULL, a2 };
	rtrs_clt_attr_init(&a);
	a.reconnect_delay_ms = 0;
	a.hb_interval_ms = 200;
	a.hb_missed_max = 3;
	a.link_ev = link_ev;
	ret = rtrs_clt_open("test-stop", pa, 2, &a, &sess);
	CHECK(ret == 0, "open: %s", rtrs_strerror(ret));
	if (ret) {
		t_server_stop(&srv, SIGKILL);
		return t_finish();
	}
	kill(srv.pid, SIGSTOP);
	t_sleep_ms(2000);
	CHECK(path_state(0) != RTRS_PATH_CONNECTED &&
	      path_state(1) != RTRS_PATH_CONNECTED,
	      "paths not failed while the server was stopped: %d %d",
	      path_state(0), path_state(1));
	kill(srv.pid, SIGCONT);
	t0 = perf_now_ns();
	while ((path_state(0) != RTRS_PATH_CONNECTED ||
		path_state(1) != RTRS_PATH_CONNECTED) &&
	       perf_now_ns() - t0 < 10000000000ull)
		t_sleep_ms(10);
	CHECK(path_state(0) == RTRS_PATH_CONNECTED &&
	      path_state(1) == RTRS_PATH_CONNECTED, "paths not back: %d %d",
	      path_state(0), path_state(1));
	t_sleep_ms(500);        /* a late event would show now */
	pthread_mutex_lock(&ev_lock);
	CHECK(!strcmp(evs, "DR"), "link events \"%s\", not \"DR\"", evs);
	pthread_mutex_unlock(&ev_lock);
	rtrs_clt_close(sess);
	CHECK_EQ(t_server_stop(&srv, SIGTERM), 0);
	return t_finish();
}

int main(int argc, char **argv)
{
	struct t_server srv;
	uint64_t t0;

	if (argc > 1 && !strcmp(argv[1], "stop"))
		return test_stop();
	if (t_server_start(&srv, NULL))
		return 1;
	if (t_open(&srv, "test-kill", NULL, &sess))
		return t_finish();
	atomic_store(&active, QD);
	for (unsigned i = 0; i < QD; i++) {
		slots[i].idx = i;
		CHECK_EQ(rtrs_clt_get_permit(sess, RTRS_IO_CON, RTRS_PERMIT_NOWAIT,
					     &slots[i].permit), 0);
		CHECK_EQ(submit(&slots[i]), 0);
	}
	t_sleep_ms(300);
	CHECK(atomic_load(&ok) > 0, "no IO before the kill");
	t_server_stop(&srv, SIGKILL);
	/* every request in flight completes, with a bounded wait */
	t0 = perf_now_ns();
	while (atomic_load(&active) && perf_now_ns() - t0 < 10000000000ull)
		t_sleep_ms(10);
	atomic_store(&stop, true);
	CHECK(atomic_load(&active) == 0, "%d requests never completed",
	      atomic_load(&active));
	CHECK_EQ(atomic_load(&completed), atomic_load(&submitted));
	CHECK(atomic_load(&other) == 0, "unexpected status or double callback (%llu)",
	      (unsigned long long)atomic_load(&other));
	/* the requests that did not make it fail with -ECONNABORTED, and
	 * the ones that found no path fail synchronously */
	CHECK(atomic_load(&aborted) + atomic_load(&resubmit_fail) > 0,
	      "no request saw the failure");
	{
		struct slot *s = &slots[0];

		CHECK_EQ(submit(s), -ENOTCONN);
	}
	{
		struct rtrs_attrs a;

		CHECK_EQ(rtrs_clt_query(sess, &a), -ENOTCONN);
	}
	for (unsigned i = 0; i < QD; i++)
		rtrs_clt_put_permit(sess, slots[i].permit);
	t0 = perf_now_ns();
	rtrs_clt_close(sess);
	CHECK((perf_now_ns() - t0) < 5000000000ull, "close took too long");
	printf("kill: %llu ok, %llu aborted, %llu failed to resubmit\n",
	       (unsigned long long)atomic_load(&ok),
	       (unsigned long long)atomic_load(&aborted),
	       (unsigned long long)atomic_load(&resubmit_fail));
	return t_finish();
}
