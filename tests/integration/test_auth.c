// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Authentication and session names (issue 15, items 9 and 7;
 * docs/protocol.md section 2.6), client and an in-process server on the
 * test addresses:
 *  keys          - a server with a key file: the right key opens a session
 *                  with verified IO and the server knows its identity; a
 *                  wrong key, no key and an unknown identity are refused
 *                  with -EACCES; a key file group or others can read is
 *                  refused with -EPERM; another identity cannot take a
 *                  name in use.
 *  impersonation - a client with a key refuses a server without keys and
 *                  one with another key for its identity (-EACCES).
 *  squat         - while a session lingers without paths (its client cut
 *                  them, requests held), another session cannot take its
 *                  name (-EPERM), without keys and, with keys, from
 *                  another identity; the owner reconnects and its held
 *                  requests complete with the right data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "harness.h"
#include "rtrs/rtrs.h"

#define MEM (1u << 20)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct hdr {
	uint32_t op;                    /* 0 READ, 1 WRITE */
	uint32_t off, len;
};

static uint8_t mem[MEM];
static char dir[64];
static _Atomic(struct rtrs_srv_sess *) last_sess;

static int rdma_ev(void *priv, struct rtrs_srv_op *op, void *data,
		   size_t datalen, const void *usr, size_t usrlen)
{
	struct hdr h;

	(void)priv;
	if (usrlen != sizeof(h))
		return -EINVAL;
	memcpy(&h, usr, sizeof(h));
	if (h.len != datalen || h.off > MEM || h.len > MEM - h.off)
		return -EINVAL;
	atomic_store(&last_sess, rtrs_srv_op_sess(op));
	if (h.op == 1)
		memcpy(mem + h.off, data, h.len);
	else
		memcpy(data, mem + h.off, h.len);
	return rtrs_srv_resp(op, 0) ? -EIO : 0;
}

/* A key file @name in the test directory with "ID HEX" lines, mode @mode. */
static const char *keyfile(const char *name, const char *lines, mode_t mode)
{
	static char path[8][128];
	static unsigned n;
	char *p = path[n++ % 8];
	int fd;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, lines, strlen(lines)) != (ssize_t)strlen(lines))
		CHECK(0, "cannot write %s", p);
	if (fd >= 0)
		close(fd);
	chmod(p, mode);
	return p;
}

#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "f0e0d0c0b0a090807060504030201000f1e1d1c1b1a191817161514131211101"
#define KEY_X "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

struct server {
	struct rtrs_srv_ctx *ctx;
	char addr[128];
};

static int srv_start(struct server *s, const char *kf, unsigned linger_ms)
{
	const char *ls[1] = { t_listen(0) };
	struct rtrs_auth auth = { sizeof(auth), kf, NULL };
	struct rtrs_srv_attr a;
	const char *sep = strstr(t_addr(0), "://");
	char la[96];
	int ret;

	rtrs_srv_attr_init(&a);
	a.queue_depth = 64;
	a.chunk_size = 64 << 10;
	a.ops.rdma_ev = rdma_ev;
	a.linger_ms = linger_ms;
	a.ctl_disable = 1;
	ret = rtrs_srv_open_auth(ls, 1, &a, kf ? &auth : NULL, &s->ctx);
	CHECK(ret == 0, "server open: %s", rtrs_strerror(ret));
	if (ret)
		return ret;
	rtrs_srv_get_listen_addr(s->ctx, 0, la, sizeof(la));
	snprintf(s->addr, sizeof(s->addr), "%.*s%s",
		 sep ? (int)(sep + 3 - t_addr(0)) : 0, t_addr(0), la);
	return 0;
}

static int clt_open(struct server *s, const char *name, const char *kf,
		    const char *id, unsigned no_path_ms,
		    struct rtrs_clt_sess **out)
{
	struct rtrs_path_addr pa = { NULL, s->addr };
	struct rtrs_auth auth = { sizeof(auth), kf, id };
	struct rtrs_clt_attr a;

	rtrs_clt_attr_init(&a);
	a.io_cons = 2;
	a.ctl_disable = 1;
	a.connect_timeout_ms = 3000;
	a.no_path_timeout_ms = no_path_ms;
	/* a session that holds requests reconnects only when told to */
	a.max_reconnect_attempts = no_path_ms ? -1 : 0;
	a.reconnect_delay_ms = 100000;
	return rtrs_clt_open_auth(name, &pa, 1, &a, kf ? &auth : NULL, out);
}

struct io {
	struct hdr h;
	uint8_t buf[4096];
	struct rtrs_permit *pm;
	_Atomic int done, status;
};

static void conf(void *priv, int status)
{
	struct io *io = priv;

	atomic_store(&io->status, status);
	atomic_store(&io->done, 1);
}

static int submit(struct rtrs_clt_sess *s, struct io *io, uint32_t op,
		  uint32_t off)
{
	struct rtrs_req_ops ops = { io, conf };
	struct iovec hv = { &io->h, sizeof(io->h) }, dv = { io->buf, 4096 };
	int ret;

	if (!io->pm) {
		ret = rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT,
					  &io->pm);
		if (ret)
			return ret;
	}
	io->h = (struct hdr){ op, off, 4096 };
	atomic_store(&io->done, 0);
	atomic_store(&io->status, 1);
	return rtrs_clt_request(s, op ? RTRS_WRITE : RTRS_READ, &ops, io->pm,
				&hv, 1, &dv, 1, NULL);
}

static int wait_io(struct io *io, unsigned ms)
{
	uint64_t until = now_ms() + ms;

	while (!atomic_load(&io->done))
		if (now_ms() > until)
			return -ETIMEDOUT;
		else
			t_sleep_ms(1);
	return atomic_load(&io->status);
}

static void put_io(struct rtrs_clt_sess *s, struct io *io)
{
	if (io->pm)
		rtrs_clt_put_permit(s, io->pm);
	io->pm = NULL;
}

/* write a pattern at @off, read it back into another buffer, compare */
static bool rw_verify(struct rtrs_clt_sess *s, uint32_t off, unsigned seed)
{
	struct io w = { 0 }, r = { 0 };
	int ret;
	bool ok;

	t_fill(w.buf, sizeof(w.buf), seed);
	ret = submit(s, &w, 1, off);
	if (!ret)
		ret = wait_io(&w, 5000);
	CHECK(ret == 0, "write: %s", rtrs_strerror(ret));
	ret = submit(s, &r, 0, off);
	if (!ret)
		ret = wait_io(&r, 5000);
	CHECK(ret == 0, "read: %s", rtrs_strerror(ret));
	ok = !ret && !memcmp(w.buf, r.buf, sizeof(r.buf));
	CHECK(ok, "data read back differs");
	put_io(s, &w);
	put_io(s, &r);
	return ok;
}

/* until the server has no connection left (the cut path is gone there) */
static void wait_srv_idle(struct server *srv)
{
	struct rtrs_srv_limit_stats st = { .size = sizeof(st) };
	uint64_t until = now_ms() + 5000;

	do
		rtrs_srv_get_limit_stats(srv->ctx, &st);
	while (st.conns && now_ms() < until && (t_sleep_ms(5), 1));
	CHECK_EQ(st.conns, 0);
}

static void test_keys(void)
{
	const char *skf = keyfile("srv.keys", "# server\nalice " KEY_A
				  "\nbob " KEY_B "\n", 0600);
	const char *akf = keyfile("alice.key", "alice " KEY_A "\n", 0600);
	const char *bkf = keyfile("bob.key", "bob " KEY_B "\n", 0600);
	const char *wkf = keyfile("wrong.key", "alice " KEY_X "\n", 0600);
	const char *mkf = keyfile("mallory.key", "mallory " KEY_X "\n", 0600);
	const char *open_kf = keyfile("open.key", "alice " KEY_A "\n", 0644);
	struct rtrs_clt_sess *s = NULL, *x = NULL;
	struct server srv;
	char id[64];
	int ret;

	if (srv_start(&srv, skf, 10000))
		return;
	/* the right key: a session, verified IO, the identity on the server */
	ret = clt_open(&srv, "auth-a", akf, "alice", 0, &s);
	CHECK(ret == 0, "alice: %s", rtrs_strerror(ret));
	if (!ret) {
		rw_verify(s, 8192, 1);
		ret = rtrs_srv_sess_identity(atomic_load(&last_sess), id,
					     sizeof(id));
		CHECK(ret == 0 && !strcmp(id, "alice"), "identity: %d %s", ret,
		      ret ? "" : id);
		CHECK_EQ(rtrs_srv_sess_identity(atomic_load(&last_sess), id, 5),
			 -ENOSPC);
	}
	/* the only key of a file is taken without an identity */
	ret = clt_open(&srv, "auth-b", bkf, NULL, 0, &x);
	CHECK(ret == 0, "bob: %s", rtrs_strerror(ret));
	if (!ret) {
		rw_verify(x, 16384, 2);
		rtrs_clt_close(x);
	}
	/* refused: wrong key, no key, unknown identity, an identity the
	 * file does not have */
	x = NULL;
	CHECK_EQ(clt_open(&srv, "auth-w", wkf, "alice", 0, &x), -EACCES);
	CHECK_EQ(clt_open(&srv, "auth-n", NULL, NULL, 0, &x), -EACCES);
	CHECK_EQ(clt_open(&srv, "auth-m", mkf, "mallory", 0, &x), -EACCES);
	CHECK_EQ(clt_open(&srv, "auth-m", akf, "bob", 0, &x), -EINVAL);
	/* a readable key file, on both sides */
	CHECK_EQ(clt_open(&srv, "auth-o", open_kf, "alice", 0, &x), -EPERM);
	{
		const char *ls[1] = { t_listen(0) };
		struct rtrs_auth auth = { sizeof(auth), open_kf, NULL };
		struct rtrs_srv_attr a;
		struct rtrs_srv_ctx *c = NULL;

		rtrs_srv_attr_init(&a);
		a.ops.rdma_ev = rdma_ev;
		a.ctl_disable = 1;
		CHECK_EQ(rtrs_srv_open_auth(ls, 1, &a, &auth, &c), -EPERM);
	}
	CHECK(x == NULL, "a refused open returned a session");
	/* another identity cannot take a name in use */
	CHECK_EQ(clt_open(&srv, "auth-a", bkf, "bob", 0, &x), -EPERM);
	/* alice's session is untouched */
	if (s) {
		rw_verify(s, 8192, 3);
		rtrs_clt_close(s);
	}
	rtrs_srv_close(srv.ctx);
}

static void test_impersonation(void)
{
	const char *akf = keyfile("alice.key", "alice " KEY_A "\n", 0600);
	const char *okf = keyfile("other.keys", "alice " KEY_X "\n", 0600);
	struct rtrs_clt_sess *x = NULL;
	struct server plain, other;

	if (srv_start(&plain, NULL, 10000))
		return;
	if (srv_start(&other, okf, 10000)) {
		rtrs_srv_close(plain.ctx);
		return;
	}
	/* a server that does not authenticate */
	CHECK_EQ(clt_open(&plain, "imp-a", akf, "alice", 0, &x), -EACCES);
	/* a server with another key for alice cannot prove ours */
	CHECK_EQ(clt_open(&other, "imp-b", akf, "alice", 0, &x), -EACCES);
	CHECK(x == NULL, "a refused open returned a session");
	{
		struct rtrs_srv_stats st;

		rtrs_srv_get_stats(plain.ctx, &st);
		CHECK_EQ(st.sessions, 0);
		rtrs_srv_get_stats(other.ctx, &st);
		CHECK_EQ(st.sessions, 0);
	}
	/* without a key the plain server still serves */
	CHECK_EQ(clt_open(&plain, "imp-c", NULL, NULL, 0, &x), 0);
	if (x) {
		rw_verify(x, 0, 4);
		rtrs_clt_close(x);
	}
	rtrs_srv_close(plain.ctx);
	rtrs_srv_close(other.ctx);
}

/* One run of the squatting case: owner opens @name, cuts its path with a
 * write held, the squatter tries the name, the owner reconnects. */
static void squat_run(const char *skf, const char *okf, const char *oid,
		      const char *xkf, const char *xid, const char *name)
{
	struct rtrs_clt_sess *s = NULL, *x = NULL;
	struct io w = { 0 }, r = { 0 };
	struct server srv;
	int ret;

	/* linger long enough that only the fix can explain the outcome */
	if (srv_start(&srv, skf, 60000))
		return;
	ret = clt_open(&srv, name, okf, oid, 30000, &s);
	CHECK(ret == 0, "owner: %s", rtrs_strerror(ret));
	if (ret)
		goto out;
	rw_verify(s, 4096, 5);
	CHECK_EQ(rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT, &w.pm), 0);
	/* the link fails (the server cuts it): the session lingers there */
	CHECK_EQ(rtrs_srv_close_sess(srv.ctx, name), 0);
	wait_srv_idle(&srv);
	/* held: no path, no_path_timeout_ms 30 s */
	t_fill(w.buf, sizeof(w.buf), 6);
	CHECK_EQ(submit(s, &w, 1, 12288), 0);
	/* the squatter: another session (paths_uuid) with the name */
	ret = clt_open(&srv, name, xkf, xid, 0, &x);
	CHECK(ret == -EPERM, "squatter got %s, want -EPERM", rtrs_strerror(ret));
	/* the owner comes back (a squatter that got in stays meanwhile):
	 * its held write runs */
	ret = rtrs_clt_reconnect_path(s, 0);
	CHECK(ret == 0, "owner's reconnect: %s", rtrs_strerror(ret));
	if (x)
		rtrs_clt_close(x);
	ret = wait_io(&w, 10000);
	CHECK(ret == 0, "held write: %s", rtrs_strerror(ret));
	put_io(s, &w);
	if (!submit(s, &r, 0, 12288)) {
		ret = wait_io(&r, 5000);
		CHECK(ret == 0 && !memcmp(r.buf, w.buf, sizeof(r.buf)),
		      "held write's data: %s", rtrs_strerror(ret));
	}
	put_io(s, &r);
	rtrs_clt_close(s);
out:
	rtrs_srv_close(srv.ctx);
}

static void test_squat(void)
{
	const char *skf = keyfile("srv.keys", "alice " KEY_A "\nbob " KEY_B
				  "\n", 0600);
	const char *akf = keyfile("alice.key", "alice " KEY_A "\n", 0600);
	const char *bkf = keyfile("bob.key", "bob " KEY_B "\n", 0600);

	squat_run(NULL, NULL, NULL, NULL, NULL, "squat-plain");
	squat_run(skf, akf, "alice", bkf, "bob", "squat-keys");
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "keys";

	snprintf(dir, sizeof(dir), "/tmp/rtrs-auth-XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (!strcmp(what, "keys"))
		test_keys();
	else if (!strcmp(what, "impersonation"))
		test_impersonation();
	else if (!strcmp(what, "squat"))
		test_squat();
	else
		return fprintf(stderr, "unknown case %s\n", what), 2;
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return t_finish();
}
