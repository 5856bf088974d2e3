// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * A program built against an installed librtrs and librnbd, by pkg-config
 * or by find_package(librtrs): the headers compile, both libraries link,
 * and librnbd reaches a librtrs server over 127.0.0.1.
 *
 *   consumer [VERSION]   exit 0 when it all works (and the installed
 *                        <rtrs/version.h> says VERSION)
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rnbd/rnbd.h>
#include <rtrs/rtrs.h>

static atomic_int requests;

/* Not an rnbd server: every request is refused. */
static int on_req(void *sess_priv, struct rtrs_srv_op *op, void *data,
		  size_t len, const void *hdr, size_t hdrlen)
{
	(void)sess_priv, (void)op, (void)data, (void)len, (void)hdr, (void)hdrlen;
	atomic_fetch_add(&requests, 1);
	return -EOPNOTSUPP;
}

int main(int argc, char **argv)
{
	const char *listen[] = { "127.0.0.1:0" };
	struct rtrs_srv_attr sa;
	struct rtrs_srv_ctx *srv;
	struct rtrs_path_addr path = { .dst = NULL };
	struct rtrs_clt_attr ca;
	struct rnbd_sess *s;
	char addr[160];
	int ret;

	if (argc > 1 && strcmp(argv[1], RTRS_VERSION_STRING)) {
		fprintf(stderr, "consumer: <rtrs/version.h> says %s, not %s\n",
			RTRS_VERSION_STRING, argv[1]);
		return 1;
	}
	rtrs_srv_attr_init(&sa);
	sa.ops.rdma_ev = on_req;
	sa.ctl_disable = 1;
	ret = rtrs_srv_open(listen, 1, &sa, &srv);
	if (!ret)
		ret = rtrs_srv_get_listen_addr(srv, 0, addr, sizeof(addr));
	if (ret) {
		fprintf(stderr, "consumer: server: %s\n", rtrs_strerror(ret));
		return 1;
	}
	/* librnbd over librtrs: the session connects, then the server says
	 * it does not speak rnbd */
	path.dst = addr;
	rtrs_clt_attr_init(&ca);
	ca.ctl_disable = 1;
	ret = rnbd_sess_open("consumer", &path, 1, &ca, &s);
	if (!ret)
		rnbd_sess_close(s);
	rtrs_srv_close(srv);
	if (ret >= 0 || !atomic_load(&requests)) {
		fprintf(stderr, "consumer: rnbd_sess_open on a librtrs server: "
			"%d after %d requests\n", ret, atomic_load(&requests));
		return 1;
	}
	printf("consumer: librtrs %s on %s; librnbd: %s\n", RTRS_VERSION_STRING,
	       addr, rtrs_strerror(ret));
	return 0;
}
