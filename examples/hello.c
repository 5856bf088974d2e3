// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * hello: a librtrs server and client in one process over 127.0.0.1. The
 * server keeps a small disk in memory; the client WRITEs a block to it and
 * READs the block back. Exit status 0 when the data came back intact.
 *
 *   cc hello.c $(pkg-config --cflags --libs librtrs) -o hello && ./hello
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rtrs/rtrs.h>

static char disk[64 * 1024];           /* the server's storage */

/* server: one callback per request, on a library thread; the user header
 * carries the offset */
static int on_req(void *sess_priv, struct rtrs_srv_op *op, void *data,
		  size_t len, const void *hdr, size_t hdrlen)
{
	uint64_t off;

	(void)sess_priv;
	if (hdrlen != sizeof(off))
		return -EINVAL;                /* answered with this status */
	memcpy(&off, hdr, sizeof(off));
	if (off > sizeof(disk) || len > sizeof(disk) - off)
		return -EINVAL;
	if (rtrs_srv_op_dir(op) == RTRS_WRITE)
		memcpy(disk + off, data, len); /* the client's data */
	else
		memcpy(data, disk + off, len); /* what the client reads */
	rtrs_srv_resp(op, 0);                  /* or later, from any thread */
	return 0;
}

/* client: a completion per request, exactly once, on a library thread */
struct done {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int status;
	int finished;
};

static void conf(void *priv, int status)
{
	struct done *d = priv;

	pthread_mutex_lock(&d->lock);
	d->status = status;                    /* 0 or a negative errno */
	d->finished = 1;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

/* One request, waited for: @len bytes at @buf to or from @off. */
static int io(struct rtrs_clt_sess *s, enum rtrs_dir dir, uint64_t off,
	      void *buf, size_t len)
{
	struct done d = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	struct rtrs_req_ops ops = { .priv = &d, .conf = conf };
	struct iovec hdr = { &off, sizeof(off) }, data = { buf, len };
	struct rtrs_permit *p;
	int ret;

	ret = rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT, &p);
	if (ret)
		return ret;
	ret = rtrs_clt_request(s, dir, &ops, p, &hdr, 1, &data, 1, NULL);
	if (!ret) {                            /* conf will run */
		pthread_mutex_lock(&d.lock);
		while (!d.finished)
			pthread_cond_wait(&d.cond, &d.lock);
		pthread_mutex_unlock(&d.lock);
		ret = d.status;
	}
	rtrs_clt_put_permit(s, p);
	return ret;
}

int main(void)
{
	const char *listen[] = { "127.0.0.1:0" };     /* port 0: any free one */
	struct rtrs_srv_attr sa;
	struct rtrs_srv_ctx *srv;
	struct rtrs_clt_sess *s;
	char addr[160], out[4096], in[4096];
	struct rtrs_path_addr path = { .dst = addr };  /* one path */
	int ret;

	rtrs_srv_attr_init(&sa);
	sa.ops.rdma_ev = on_req;
	ret = rtrs_srv_open(listen, 1, &sa, &srv);
	if (!ret)
		ret = rtrs_srv_get_listen_addr(srv, 0, addr, sizeof(addr));
	if (ret) {
		fprintf(stderr, "hello: server: %s\n", rtrs_strerror(ret));
		return 1;
	}

	ret = rtrs_clt_open("hello", &path, 1, NULL, &s);
	if (ret) {
		fprintf(stderr, "hello: open %s: %s\n", addr, rtrs_strerror(ret));
		rtrs_srv_close(srv);
		return 1;
	}
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = "hello, rtrs! "[i % 13];
	ret = io(s, RTRS_WRITE, 8192, out, sizeof(out));
	if (!ret)
		ret = io(s, RTRS_READ, 8192, in, sizeof(in));
	rtrs_clt_close(s);                     /* waits for requests in flight */
	rtrs_srv_close(srv);
	if (ret) {
		fprintf(stderr, "hello: %s\n", rtrs_strerror(ret));
		return 1;
	}
	if (memcmp(in, out, sizeof(in))) {
		fprintf(stderr, "hello: the block read back differs\n");
		return 1;
	}
	printf("hello: wrote %zu bytes to %s and read them back\n", sizeof(out),
	       addr);
	return 0;
}
