// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The rdma-core backend (src/fabric/rdma/) on a host without RDMA: the
 * provider name "rdma" picks it (through the attr, an address's
 * "rdma://" prefix and RTRS_PROVIDER), and every way in fails with
 * -ENODEV, at once, leaving nothing open; other providers are unaffected
 * by the backend being linked in. Skipped (77) where RDMA CM has a device
 * (the lab guest: tests/rdma/test_rdma_backend.sh runs it there). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/fabric.h"
#include <rtrs/rtrs.h>

static void dom_open_nodev(void **state)
{
	struct fab_dom *d = NULL;

	(void)state;
	assert_int_equal(rtrs__fab_engine_get(), 0);
	assert_int_equal(rtrs__fab_dom_open("rdma", "127.0.0.1", "0", NULL,
					    true, &d), -ENODEV);
	assert_null(d);
	assert_int_equal(rtrs__fab_dom_open("rdma", "127.0.0.1", "1234",
					    "127.0.0.1", false, &d), -ENODEV);
	assert_null(d);
	rtrs__fab_engine_put();
}

static int rdma_ev(void *sess_priv, struct rtrs_srv_op *op, void *data,
		   size_t datalen, const void *usr, size_t usrlen)
{
	(void)sess_priv; (void)op; (void)data; (void)datalen; (void)usr;
	(void)usrlen;
	return -EIO;
}

static void srv_open_nodev(void **state)
{
	struct rtrs_srv_attr a;
	struct rtrs_srv_ctx *ctx = NULL;
	const char *addr = "127.0.0.1:0";
	const char *pfx = "rdma://127.0.0.1:0";

	(void)state;
	rtrs_srv_attr_init(&a);
	a.provider = "rdma";
	a.ctl_disable = 1;
	a.ops.rdma_ev = rdma_ev;
	assert_int_equal(rtrs_srv_open(&addr, 1, &a, &ctx), -ENODEV);
	assert_null(ctx);
	a.provider = "tcp";             /* the address's own provider wins */
	assert_int_equal(rtrs_srv_open(&pfx, 1, &a, &ctx), -ENODEV);
	assert_null(ctx);
	/* tcp still works with the backend linked in */
	assert_int_equal(rtrs_srv_open(&addr, 1, &a, &ctx), 0);
	rtrs_srv_close(ctx);
}

static void clt_open_nodev(void **state)
{
	struct rtrs_clt_attr a;
	struct rtrs_clt_sess *s = NULL;
	struct rtrs_path_addr p = { .dst = "127.0.0.1:1" };

	(void)state;
	rtrs_clt_attr_init(&a);
	a.provider = "rdma";
	a.ctl_disable = 1;
	a.max_reconnect_attempts = 0;
	assert_int_equal(rtrs_clt_open("nodev", &p, 1, &a, &s), -ENODEV);
	assert_null(s);
	a.provider = NULL;
	setenv("RTRS_PROVIDER", "rdma", 1);
	assert_int_equal(rtrs_clt_open("nodev", &p, 1, &a, &s), -ENODEV);
	assert_null(s);
	unsetenv("RTRS_PROVIDER");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dom_open_nodev),
		cmocka_unit_test(srv_open_nodev),
		cmocka_unit_test(clt_open_nodev),
	};

	if (access("/dev/infiniband/rdma_cm", F_OK) == 0)
		return 77;      /* a host with RDMA CM: not this test's case */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
