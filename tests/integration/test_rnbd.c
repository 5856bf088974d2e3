// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd end to end: a real rnbd-server process exports a file (rw), a file
 * (ro) and a directory; librnbd clients over two paths:
 *  - write patterns (also longer than max IO, and 32 at once with the
 *    asynchronous API), read them back, and find the same bytes in the
 *    exported file; FUA, flush, discard and write-zeroes leave zeroes;
 *  - list-exports names the exports and the export dir's files only;
 *  - access modes: one writer, readers alongside, migration allows
 *    exactly two writers, a session re-opening gets its device again;
 *  - the access modes count per file, not per name: the file of "disk"
 *    is also the export "disk-too", the export dir's hard link "alias"
 *    and its symlink "alias-sym"; a writer through one name keeps every
 *    other session (and the same one) from writing through another,
 *    readers read its bytes, migration allows two writers across the
 *    names; as root, the same for a loop device exported as "blk" and
 *    a second node of it in the export dir, "blk-node";
 *  - hostile names (.., absolute, a symlink out of the export dir, a
 *    read-only export opened for writing) are refused and nothing outside
 *    the export is touched;
 *  - hostile IO built by hand on a bare librtrs session (past the end,
 *    unaligned, unknown flags, wrong sizes, a foreign device id) gets
 *    -EINVAL/-EBADF/-EROFS and leaves the file untouched;
 *  - a session in librtrs poll mode: callbacks run only inside
 *    rnbd_poll() on the polling thread, exactly once; the synchronous
 *    helpers and rnbd_dev_close() poll by themselves;
 *  - the server is killed (SIGKILL) and started again under verified IO
 *    from two threads: the devices are opened again on the new server and
 *    no request fails (no_path_timeout_ms holds them meanwhile); once with
 *    library threads, once in poll mode (both IO threads polling);
 *  - SIGTERM ends the server cleanly.
 *
 *   test_rnbd RNBD_SERVER [SERVER_ARG]
 */
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "harness.h"
#include "rnbd/proto.h"
#include "rnbd/rnbd.h"

#define DISK (8u << 20)

static char tdir[64], disk[128], rodisk[128], outside[128], memdisk[128];
static char loopdev[32];                /* a loop device (root), or "" */
static int blk_fd = -1;                 /* holds it: it clears itself */
static char io_disk[32], io_mem[32];    /* how the server does their IO */
static bool mem_zero_copy;              /* memdisk's READs from a mapping */
static char addr[2][128];
static pid_t srv_pid;

static const char *srv_exe;
static char **srv_args;                 /* extra server options, NULL-ended */

static bool srv_has(const char *opt)
{
	for (char **a = srv_args; a && *a; a++)
		if (!strcmp(*a, opt))
			return true;
	return false;
}

/* @listen: NULL = port 0 on both addresses, learnt into addr[] */
static int server_start(const char *exe, const char *listen)
{
	char e1[256], e2[256], e3[256], e4[256], e5[64], ex[128], line[256];
	char both[160], name[64], io[32];
	const char *argv[24];
	int n = 0, got = 0;
	FILE *out;

	snprintf(e1, sizeof(e1), "disk=%s", disk);
	snprintf(e2, sizeof(e2), "rodisk=%s:ro", rodisk);
	snprintf(ex, sizeof(ex), "%s/exports", tdir);
	argv[n++] = exe;
	argv[n++] = "--listen";
	if (!listen) {
		snprintf(both, sizeof(both), "%s,%s", t_listen(0), t_listen(1));
		listen = both;
	}
	argv[n++] = listen;
	argv[n++] = "--export";
	argv[n++] = e1;
	argv[n++] = "--export";
	argv[n++] = e2;
	argv[n++] = "--export-dir";
	argv[n++] = ex;
	if (memdisk[0]) {
		snprintf(e3, sizeof(e3), "memdisk=%s", memdisk);
		argv[n++] = "--export";
		argv[n++] = e3;
	}
	/* the file of "disk" again, under another name */
	snprintf(e4, sizeof(e4), "disk-too=%s", disk);
	argv[n++] = "--export";
	argv[n++] = e4;
	if (loopdev[0]) {
		snprintf(e5, sizeof(e5), "blk=%s", loopdev);
		argv[n++] = "--export";
		argv[n++] = e5;
	}
	for (char **a = srv_args; a && *a && n < 23; a++)
		argv[n++] = *a;
	argv[n] = NULL;
	out = t_spawn(argv, &srv_pid);
	if (srv_pid < 0)
		return -1;
	while (out && got < 2 && fgets(line, sizeof(line), out)) {
		if (sscanf(line, "listening %127s", addr[got]) == 1)
			got++;
		else if (sscanf(line, "export %63s io=%31s", name, io) == 2 &&
			 (!strcmp(name, "disk") || !strcmp(name, "memdisk"))) {
			snprintf(name[0] == 'd' ? io_disk : io_mem,
				 sizeof(io_disk), "%s", io);
			if (name[0] == 'm')
				mem_zero_copy = strstr(line, " zero-copy\n");
		}
	}
	if (got < 2) {
		fprintf(stderr, "rnbd-server did not start\n");
		kill(srv_pid, SIGKILL);
		return -1;
	}
	return 0;
}

static int sess_open(const char *name, struct rnbd_sess **s)
{
	struct rtrs_path_addr pa[2] = { { NULL, addr[0] }, { NULL, addr[1] } };
	int ret = rnbd_sess_open(name, pa, 2, NULL, s);

	CHECK(ret == 0, "rnbd_sess_open %s: %s", name, rtrs_strerror(ret));
	return ret;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* ---- data ---- */

struct aio {
	_Atomic int done, status;
	_Atomic unsigned calls;
};

/* poll mode: the session, its polling thread, callbacks run elsewhere,
 * and what rnbd_poll() said from inside a callback */
static struct rnbd_sess *poll_sess;
static pthread_t poll_thr;
static _Atomic unsigned off_thread;
static _Atomic int nested_poll = 1;

static void aio_done(void *priv, int status)
{
	struct aio *a = priv;

	if (poll_sess) {
		if (!pthread_equal(pthread_self(), poll_thr))
			atomic_fetch_add(&off_thread, 1);
		else
			atomic_store(&nested_poll, rnbd_poll(poll_sess, 0));
	}
	atomic_fetch_add(&a->calls, 1);
	atomic_store(&a->status, status);
	atomic_store(&a->done, 1);
}

/* RTRS_PROGRESS_POLL: callbacks run inside rnbd_poll() on this thread;
 * the synchronous helpers and close poll by themselves. */
static void poll_cases(struct rnbd_sess *other)
{
	static uint8_t w[300 << 10], r[300 << 10], blk[32][4096];
	struct rtrs_path_addr pa[2] = { { NULL, addr[0] }, { NULL, addr[1] } };
	struct rtrs_clt_attr at;
	struct rnbd_dev *d = NULL;
	struct aio a[32];
	int ret, n, total;

	CHECK_EQ(rnbd_poll(other, 0), -EINVAL);
	CHECK_EQ(rnbd_poll(NULL, 0), -EINVAL);
	rtrs_clt_attr_init(&at);
	at.progress = RTRS_PROGRESS_POLL;
	ret = rnbd_sess_open("rnbd-poll", pa, 2, &at, &poll_sess);
	CHECK(ret == 0, "poll session: %s", rtrs_strerror(ret));
	if (ret) {
		poll_sess = NULL;
		return;
	}
	poll_thr = pthread_self();
	ret = rnbd_dev_open(poll_sess, "disk", RNBD_ACCESS_RW, &d);
	CHECK(ret == 0, "poll: open disk: %s", rtrs_strerror(ret));
	if (ret)
		goto out;
	CHECK_EQ(rnbd_poll(poll_sess, -2), -EINVAL);
	CHECK_EQ(rnbd_poll(poll_sess, -1), 0);  /* nothing in flight */
	/* the helpers drive the session themselves */
	t_fill(w, sizeof(w), 21);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), 5 << 20, 0), 0);
	CHECK_EQ(rnbd_flush(d), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), 5 << 20), 0);
	CHECK(!memcmp(w, r, sizeof(w)), "poll: read back differs");
	CHECK(t_file_has(disk, w, sizeof(w), 5 << 20), "poll: the file differs");
	/* asynchronous: nothing completes until polled */
	for (int i = 0; i < 32; i++) {
		t_fill(blk[i], 4096, 200 + (unsigned)i);
		a[i] = (struct aio){ 0 };
		CHECK_EQ(rnbd_submit(d, RNBD_WRITE, (6u << 20) + i * 8192u,
				     blk[i], 4096, 0, aio_done, &a[i]), 0);
	}
	t_sleep_ms(200);
	for (int i = 0; i < 32; i++)
		CHECK(!atomic_load(&a[i].done), "poll: %d done without a poll", i);
	for (total = 0; total < 32 && (n = rnbd_poll(poll_sess, 1000)) > 0;)
		total += n;
	CHECK_EQ(total, 32);
	for (int i = 0; i < 32; i++) {
		CHECK_EQ(atomic_load(&a[i].status), 0);
		CHECK_EQ(atomic_load(&a[i].calls), 1);
		CHECK(t_file_has(disk, blk[i], 4096, (6u << 20) + i * 8192u),
		      "poll: async write %d not in the file", i);
	}
	CHECK_EQ(atomic_load(&nested_poll), -EDEADLK);
	/* close with IO in flight: it polls until the IO is done */
	for (int i = 0; i < 8; i++) {
		a[i] = (struct aio){ 0 };
		CHECK_EQ(rnbd_submit(d, RNBD_READ, (6u << 20) + i * 8192u,
				     blk[i], 4096, 0, aio_done, &a[i]), 0);
	}
	CHECK_EQ(rnbd_dev_close(d), 0);
	for (int i = 0; i < 8; i++) {
		CHECK_EQ(atomic_load(&a[i].calls), 1);
		CHECK_EQ(atomic_load(&a[i].status), 0);
	}
	CHECK_EQ(atomic_load(&off_thread), 0);
out:
	rnbd_sess_close(poll_sess);
	poll_sess = NULL;
}

static void data_cases(struct rnbd_sess *s)
{
	static uint8_t w[300 << 10], r[300 << 10], big[32][4096];
	struct rnbd_dev_info in;
	struct rnbd_dev *d = NULL;
	struct aio a[32];
	int ret;

	ret = rnbd_dev_open(s, "disk", RNBD_ACCESS_RW, &d);
	CHECK(ret == 0, "open disk: %s", rtrs_strerror(ret));
	if (ret)
		return;
	CHECK_EQ(rnbd_dev_info(d, &in), 0);
	CHECK_EQ(in.size, DISK);
	CHECK_EQ(in.logical_block_size, 512);
	CHECK(in.max_io_size >= 4096, "max io %u", in.max_io_size);

	/* longer than one request: split by the helper */
	t_fill(w, sizeof(w), 1);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), 1 << 20, 0), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), 1 << 20), 0);
	CHECK(!memcmp(w, r, sizeof(w)), "read back differs");
	CHECK(t_file_has(disk, w, sizeof(w), 1 << 20), "the file differs");
	/* FUA, flush, the last sector */
	t_fill(w, 512, 2);
	CHECK_EQ(rnbd_pwrite(d, w, 512, DISK - 512, RNBD_FUA), 0);
	CHECK_EQ(rnbd_flush(d), 0);
	CHECK(t_file_has(disk, w, 512, DISK - 512), "FUA write not in the file");
	/* discard and write-zeroes read back as zeroes */
	CHECK_EQ(rnbd_discard(d, 1 << 20, 64 << 10), 0);
	CHECK_EQ(rnbd_write_zeroes(d, (1 << 20) + (128 << 10), 8192, 0), 0);
	CHECK_EQ(rnbd_write_zeroes(d, (1 << 20) + (160 << 10), 4096,
				   RNBD_NOUNMAP), 0);
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), 1 << 20), 0);
	CHECK(all_zero(r, 64 << 10), "discarded range not zero");
	CHECK(all_zero(r + (128 << 10), 8192), "write-zeroes range not zero");
	CHECK(all_zero(r + (160 << 10), 4096), "write-zeroes NOUNMAP not zero");
	t_fill(w, sizeof(w), 1);
	CHECK(!memcmp(r + (64 << 10), w + (64 << 10), 64 << 10),
	      "data next to the discard changed");
	/* 32 at once, asynchronous */
	for (int i = 0; i < 32; i++) {
		t_fill(big[i], 4096, 100 + (unsigned)i);
		atomic_store(&a[i].done, 0);
		ret = rnbd_submit(d, RNBD_WRITE, (uint64_t)(2 << 20) + i * 8192u,
				  big[i], 4096, 0, aio_done, &a[i]);
		CHECK_EQ(ret, 0);
		if (ret)
			atomic_store(&a[i].done, 1);
	}
	for (int i = 0; i < 32; i++) {
		while (!atomic_load(&a[i].done))
			t_sleep_ms(1);
		CHECK_EQ(atomic_load(&a[i].status), 0);
		CHECK(t_file_has(disk, big[i], 4096, (2u << 20) + i * 8192u),
		      "async write %d not in the file", i);
	}
	/* the client's own checks */
	CHECK_EQ(rnbd_pread(d, r, 512, DISK), -EINVAL);
	CHECK_EQ(rnbd_pread(d, r, 100, 0), -EINVAL);
	CHECK_EQ(rnbd_pwrite(d, w, 512, 0, 1u << 20), -EINVAL);
	CHECK_EQ(rnbd_submit(d, RNBD_WRITE, 0, w, 4096, RNBD_NOUNMAP, aio_done,
			     &a[0]), -EINVAL);
	CHECK_EQ(rnbd_submit(d, RNBD_WRITE, 0, w, in.max_io_size + 512, 0,
			     aio_done, &a[0]), -EMSGSIZE);
	CHECK_EQ(rnbd_dev_close(d), 0);
}

/* ---- access modes and names ---- */

struct listing {
	char text[1024];
};

static void list_cb(void *priv, const char *name, unsigned flags)
{
	struct listing *l = priv;
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%s:%s%s ", name,
		 flags & RNBD_EXPORT_RO ? "ro" : "rw",
		 flags & RNBD_EXPORT_DIR ? ":dir" : "");
}

static void list_cases(struct rnbd_sess *a)
{
	struct listing l = { "" };
	int n = rnbd_list_exports(a, list_cb, &l);

	/* disk, disk-too, rodisk, and the dir's inner and alias (a hard
	 * link); not the symlinks, not the sub directory, nothing outside */
	CHECK(n == 5 + !!memdisk[0] + 2 * !!loopdev[0],
	      "list-exports: %d entries: %s", n, l.text);
	CHECK(strstr(l.text, "disk:rw ") && strstr(l.text, "rodisk:ro ") &&
	      strstr(l.text, "disk-too:rw ") && strstr(l.text, "alias:rw:dir ") &&
	      strstr(l.text, "inner:rw:dir "), "listing: %s", l.text);
	CHECK(!loopdev[0] || (strstr(l.text, "blk:rw ") &&
			  strstr(l.text, "blk-node:rw:dir ")), "listing: %s", l.text);
	CHECK(!strstr(l.text, "escape") && !strstr(l.text, "outside") &&
	      !strstr(l.text, "sub"), "listing shows too much: %s", l.text);
	CHECK_EQ(rnbd_list_exports(NULL, list_cb, &l), -EINVAL);
}

static void access_cases(struct rnbd_sess *a, struct rnbd_sess *b,
			 struct rnbd_sess *c)
{
	/* NULL while not opened: after a failed open, calls get -EINVAL */
	struct rnbd_dev *rw = NULL, *rw2 = NULL, *ro1 = NULL, *ro2 = NULL;
	struct rnbd_dev *m1 = NULL, *m2 = NULL, *x = NULL;
	uint8_t buf[512];
	char name[160];
	int fd;

	CHECK_EQ(rnbd_dev_open(a, "disk", RNBD_ACCESS_RW, &rw), 0);
	/* a second writer is refused; readers coexist */
	CHECK_EQ(rnbd_dev_open(b, "disk", RNBD_ACCESS_RW, &x), -EPERM);
	CHECK_EQ(rnbd_dev_open(b, "disk", RNBD_ACCESS_RO, &ro1), 0);
	CHECK_EQ(rnbd_dev_open(c, "disk", RNBD_ACCESS_RO, &ro2), 0);
	CHECK_EQ(rnbd_pread(ro1, buf, sizeof(buf), 0), 0);
	CHECK_EQ(rnbd_pwrite(ro1, buf, sizeof(buf), 0, 0), -EROFS);
	/* the same session again: one handle per device */
	CHECK_EQ(rnbd_dev_open(a, "disk", RNBD_ACCESS_RW, &rw2), -EEXIST);
	CHECK_EQ(rnbd_dev_close(ro1), 0);
	CHECK_EQ(rnbd_dev_close(ro2), 0);
	/* migration: exactly two writers */
	CHECK_EQ(rnbd_dev_open(b, "disk", RNBD_ACCESS_MIGRATION, &m1), 0);
	CHECK_EQ(rnbd_dev_open(c, "disk", RNBD_ACCESS_MIGRATION, &m2), -EPERM);
	CHECK_EQ(rnbd_dev_close(m1), 0);
	CHECK_EQ(rnbd_dev_close(rw), 0);
	/* with the writer gone, one can come */
	CHECK_EQ(rnbd_dev_open(c, "disk", RNBD_ACCESS_MIGRATION, &m2), 0);
	CHECK_EQ(rnbd_dev_open(b, "disk", RNBD_ACCESS_MIGRATION, &m1), 0);
	CHECK_EQ(rnbd_dev_open(a, "disk", RNBD_ACCESS_MIGRATION, &x), -EPERM);
	CHECK_EQ(rnbd_dev_close(m1), 0);
	CHECK_EQ(rnbd_dev_close(m2), 0);

	/* names */
	CHECK_EQ(rnbd_dev_open(a, "rodisk", RNBD_ACCESS_RW, &x), -EROFS);
	CHECK_EQ(rnbd_dev_open(a, "rodisk", RNBD_ACCESS_RO, &x), 0);
	CHECK_EQ(rnbd_dev_close(x), 0);
	CHECK_EQ(rnbd_dev_open(a, "nosuch", RNBD_ACCESS_RO, &x), -ENOENT);
	CHECK_EQ(rnbd_dev_open(a, "../outside", RNBD_ACCESS_RW, &x), -EACCES);
	CHECK_EQ(rnbd_dev_open(a, "sub/../inner", RNBD_ACCESS_RW, &x), -EACCES);
	CHECK_EQ(rnbd_dev_open(a, "./inner", RNBD_ACCESS_RW, &x), -EACCES);
	CHECK_EQ(rnbd_dev_open(a, outside, RNBD_ACCESS_RW, &x), -EACCES);
	CHECK_EQ(rnbd_dev_open(a, "escape", RNBD_ACCESS_RW, &x), -EACCES);
	CHECK_EQ(rnbd_dev_open(a, "", RNBD_ACCESS_RW, &x), -EINVAL);
	memset(name, 'n', 63);
	name[63] = 0;
	CHECK_EQ(rnbd_dev_open(a, name, RNBD_ACCESS_RW, &x), -ENOENT);
	/* a file inside the export dir works, writes land in it */
	CHECK_EQ(rnbd_dev_open(a, "inner", RNBD_ACCESS_RW, &x), 0);
	t_fill(buf, sizeof(buf), 9);
	CHECK_EQ(rnbd_pwrite(x, buf, sizeof(buf), 512, 0), 0);
	snprintf(name, sizeof(name), "%s/exports/inner", tdir);
	CHECK(t_file_has(name, buf, sizeof(buf), 512), "inner file differs");
	CHECK_EQ(rnbd_dev_close(x), 0);
	/* the file outside the export dir is untouched (all zero) */
	fd = open(outside, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, sizeof(buf), 0) == sizeof(buf) &&
	      all_zero(buf, sizeof(buf)), "the file outside was touched");
	if (fd >= 0)
		close(fd);
}

/* Open @name in @mode and, if that worked, close it again: the result. */
static int open_once(struct rnbd_sess *s, const char *name, enum rnbd_access mode)
{
	struct rnbd_dev *d = NULL;
	int ret = rnbd_dev_open(s, name, mode, &d);

	if (!ret)
		rnbd_dev_close(d);
	return ret;
}

/*
 * @first and @other name one file. A writer through @first keeps every
 * other writer out through @other (-EPERM), in another session or its
 * own; a migration writer through @other is the second, one more is
 * refused; readers through @other read its bytes; when the writer
 * closes, @other takes one and @first is refused; migration: two writers
 * across the names, not three.
 */
static void alias_pair(struct rnbd_sess *a, struct rnbd_sess *b,
		       struct rnbd_sess *c, const char *first, const char *other)
{
	struct rnbd_dev *rw = NULL, *ro = NULL, *m1 = NULL, *m2 = NULL;
	static uint8_t w[4096], r[4096];
	static unsigned seed = 40;
	int ret;

	ret = rnbd_dev_open(a, first, RNBD_ACCESS_RW, &rw);
	CHECK(ret == 0, "open %s rw: %s", first, rnbd_strerror(ret));
	if (ret)
		return;
	ret = open_once(b, other, RNBD_ACCESS_RW);
	CHECK(ret == -EPERM, "%s rw while %s has a writer: %d, not -EPERM",
	      other, first, ret);
	/* migration is the second writer of the file: no third one */
	CHECK_EQ(rnbd_dev_open(b, other, RNBD_ACCESS_MIGRATION, &m1), 0);
	ret = open_once(c, other, RNBD_ACCESS_MIGRATION);
	CHECK(ret == -EPERM, "%s migration beside %s rw and a migration "
	      "writer: %d, not -EPERM", other, first, ret);
	if (m1)
		CHECK_EQ(rnbd_dev_close(m1), 0);
	m1 = NULL;
	ret = open_once(a, other, RNBD_ACCESS_RW);
	CHECK(ret == -EPERM, "%s rw in the session writing %s: %d", other,
	      first, ret);
	CHECK_EQ(rnbd_dev_open(c, other, RNBD_ACCESS_RO, &ro), 0);
	t_fill(w, sizeof(w), seed++);
	CHECK_EQ(rnbd_pwrite(rw, w, sizeof(w), 16384, RNBD_FUA), 0);
	if (ro) {
		CHECK_EQ(rnbd_pread(ro, r, sizeof(r), 16384), 0);
		CHECK(!memcmp(w, r, sizeof(r)), "%s does not read %s's bytes",
		      other, first);
		CHECK_EQ(rnbd_pwrite(ro, w, sizeof(w), 0, 0), -EROFS);
		CHECK_EQ(rnbd_dev_close(ro), 0);
	}
	CHECK_EQ(rnbd_dev_close(rw), 0);
	/* the writer gone, the other name takes one */
	rw = NULL;
	CHECK_EQ(rnbd_dev_open(b, other, RNBD_ACCESS_RW, &rw), 0);
	ret = open_once(c, first, RNBD_ACCESS_RW);
	CHECK(ret == -EPERM, "%s rw while %s has a writer: %d", first, other,
	      ret);
	if (rw)
		CHECK_EQ(rnbd_dev_close(rw), 0);
	/* migration: exactly two writers, whichever names */
	CHECK_EQ(rnbd_dev_open(a, first, RNBD_ACCESS_MIGRATION, &m1), 0);
	CHECK_EQ(rnbd_dev_open(b, other, RNBD_ACCESS_MIGRATION, &m2), 0);
	ret = open_once(c, other, RNBD_ACCESS_MIGRATION);
	CHECK(ret == -EPERM, "a third migration writer through %s: %d", other,
	      ret);
	ret = open_once(c, first, RNBD_ACCESS_RW);
	CHECK(ret == -EPERM, "%s rw beside two migration writers: %d", first,
	      ret);
	if (m1)
		CHECK_EQ(rnbd_dev_close(m1), 0);
	CHECK_EQ(open_once(c, other, RNBD_ACCESS_MIGRATION), 0);
	if (m2)
		CHECK_EQ(rnbd_dev_close(m2), 0);
	/* all released: a writer through either name */
	CHECK_EQ(open_once(c, first, RNBD_ACCESS_RW), 0);
}

static void alias_cases(struct rnbd_sess *a, struct rnbd_sess *b,
			struct rnbd_sess *c)
{
	/* an --export name and: another --export name, a hard link and a
	 * symlink in the export dir; and the dir's two names between them */
	alias_pair(a, b, c, "disk", "disk-too");
	alias_pair(a, b, c, "disk", "alias");
	alias_pair(a, b, c, "disk-too", "alias-sym");
	alias_pair(a, b, c, "alias", "disk");
	alias_pair(a, b, c, "alias-sym", "alias");
	/* two nodes of one block device */
	if (loopdev[0])
		alias_pair(a, b, c, "blk", "blk-node");
	else
		fprintf(stderr, "skip: block device aliases (needs root and "
			"a loop device)\n");
}

/* A 1 MiB loop device on @img that clears itself when the last opener
 * (this test, the server) closes it: its name into loopdev[], or "". */
static void loop_setup(const char *img, const char *node)
{
	struct loop_info64 li = { .lo_flags = LO_FLAGS_AUTOCLEAR };
	int ctl = -1, ffd = -1, n;
	struct stat st;

	if (geteuid())
		return;
	ffd = open(img, O_RDWR | O_CREAT, 0600);
	if (ffd < 0 || ftruncate(ffd, 1 << 20))
		goto out;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	n = ctl >= 0 ? ioctl(ctl, LOOP_CTL_GET_FREE) : -1;
	if (n < 0)
		goto out;
	snprintf(loopdev, sizeof(loopdev), "/dev/loop%d", n);
	blk_fd = open(loopdev, O_RDWR | O_CLOEXEC);
	if (blk_fd < 0 || ioctl(blk_fd, LOOP_SET_FD, ffd) ||
	    ioctl(blk_fd, LOOP_SET_STATUS64, &li) || fstat(blk_fd, &st) ||
	    mknod(node, S_IFBLK | 0600, st.st_rdev)) {
		if (blk_fd >= 0)
			close(blk_fd);  /* autoclear, or never bound */
		blk_fd = -1;
		loopdev[0] = 0;
	}
out:
	if (ctl >= 0)
		close(ctl);
	if (ffd >= 0)
		close(ffd);
}

/* ---- hostile IO on a bare librtrs session ---- */

static int raw_call(struct rtrs_clt_sess *s, enum rtrs_dir dir,
		    const void *usr, size_t ulen, void *data, size_t dlen)
{
	struct aio w = { 0, 0 };
	struct rtrs_req_ops ops = { &w, aio_done };
	struct iovec u = { (void *)usr, ulen }, d = { data, dlen };
	struct rtrs_permit *pm;
	int ret = rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT, &pm);

	if (ret)
		return ret;
	ret = rtrs_clt_request(s, dir, &ops, pm, &u, 1, &d, dlen ? 1 : 0, NULL);
	while (!ret && !atomic_load(&w.done))
		t_sleep_ms(1);
	rtrs_clt_put_permit(s, pm);
	return ret ? ret : atomic_load(&w.status);
}

static int raw_io(struct rtrs_clt_sess *s, uint32_t id, uint64_t sector,
		  uint32_t rw, uint32_t bi_size, enum rtrs_dir dir, void *data,
		  size_t dlen)
{
	uint8_t m[RNBD_IO_LEN];
	struct rnbd_io io = { .device_id = id, .sector = sector, .rw = rw,
			      .bi_size = bi_size };

	rnbd_proto_io_encode(m, &io);
	return raw_call(s, dir, m, sizeof(m), data, dlen);
}

static void hostile_cases(void)
{
	struct rtrs_path_addr pa = { NULL, addr[0] };
	struct rtrs_clt_sess *s;
	static uint8_t before[DISK], after[DISK], buf[8192];
	uint8_t om[RNBD_OPEN_LEN], rsp[RNBD_OPEN_RSP_LEN], m[64];
	struct rnbd_open_rsp r;
	uint32_t id, roid;
	int fd = open(disk, O_RDONLY);

	if (fd < 0 || pread(fd, before, DISK, 0) != DISK) {
		CHECK(0, "cannot read %s", disk);
		return;
	}
	if (rtrs_clt_open("rnbd-hostile", &pa, 1, NULL, &s)) {
		CHECK(0, "bare session");
		close(fd);
		return;
	}
	rnbd_proto_open_encode(om, RNBD_ACCESS_RW, "disk");
	CHECK_EQ(raw_call(s, RTRS_READ, om, sizeof(om), rsp, sizeof(rsp)), 0);
	CHECK_EQ(rnbd_proto_open_rsp_decode(rsp, sizeof(rsp), &r), 0);
	id = r.device_id;
	/* the server gives the session its device again (remap) */
	CHECK_EQ(raw_call(s, RTRS_READ, om, sizeof(om), rsp, sizeof(rsp)), 0);
	CHECK_EQ(rnbd_proto_open_rsp_decode(rsp, sizeof(rsp), &r), 0);
	CHECK_EQ(r.device_id, id);
	rnbd_proto_open_encode(om, RNBD_ACCESS_RO, "rodisk");
	CHECK_EQ(raw_call(s, RTRS_READ, om, sizeof(om), rsp, sizeof(rsp)), 0);
	CHECK_EQ(rnbd_proto_open_rsp_decode(rsp, sizeof(rsp), &r), 0);
	roid = r.device_id;
	memset(buf, 0xee, sizeof(buf));
	/* past the end, straddling it, unaligned, wrong sizes */
	CHECK_EQ(raw_io(s, id, DISK >> 9, RNBD_OP_WRITE, 512, RTRS_WRITE, buf,
			512), -EINVAL);
	CHECK_EQ(raw_io(s, id, (DISK >> 9) - 1, RNBD_OP_WRITE, 1024, RTRS_WRITE,
			buf, 1024), -EINVAL);
	CHECK_EQ(raw_io(s, id, UINT64_MAX >> 9, RNBD_OP_WRITE, 512, RTRS_WRITE,
			buf, 512), -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_WRITE, 100, RTRS_WRITE, buf, 100),
		 -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_WRITE, 1024, RTRS_WRITE, buf, 512),
		 -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_READ, 512, RTRS_WRITE, buf, 512),
		 -EINVAL);
	CHECK_EQ(raw_io(s, id, 1, RNBD_OP_DISCARD, 1000, RTRS_WRITE, NULL, 0),
		 -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_DISCARD, 4096, RTRS_WRITE, buf, 512),
		 -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_FLUSH, 512, RTRS_WRITE, NULL, 0),
		 -EINVAL);
	/* unknown op and flags, NOUNMAP on a write, secure erase */
	CHECK_EQ(raw_io(s, id, 0, 9, 512, RTRS_WRITE, buf, 512), -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_WRITE | (1u << 20), 512, RTRS_WRITE,
			buf, 512), -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_WRITE | RNBD_F_NOUNMAP, 512,
			RTRS_WRITE, buf, 512), -EINVAL);
	CHECK_EQ(raw_io(s, id, 0, RNBD_OP_SECURE_ERASE, 4096, RTRS_WRITE, NULL,
			0), -EOPNOTSUPP);
	/* a device this session never opened; a read-only one written */
	CHECK_EQ(raw_io(s, id + 100, 0, RNBD_OP_WRITE, 512, RTRS_WRITE, buf,
			512), -EBADF);
	CHECK_EQ(raw_io(s, roid, 0, RNBD_OP_WRITE, 512, RTRS_WRITE, buf, 512),
		 -EROFS);
	/* malformed messages: short, unknown type, open with junk */
	memset(m, 0, sizeof(m));
	m[0] = 4;
	CHECK_EQ(raw_call(s, RTRS_WRITE, m, 20, buf, 512), -EINVAL);
	m[0] = 9;
	CHECK_EQ(raw_call(s, RTRS_WRITE, m, sizeof(m), buf, 512), -EINVAL);
	rnbd_proto_open_encode(om, RNBD_ACCESS_RW, "disk");
	om[200] = 'x';          /* a second name after the terminator */
	CHECK_EQ(raw_call(s, RTRS_READ, om, sizeof(om), rsp, sizeof(rsp)),
		 -EINVAL);
	/* the exported file did not change */
	CHECK(pread(fd, after, DISK, 0) == DISK && !memcmp(before, after, DISK),
	      "hostile IO changed the file");
	close(fd);
	rtrs_clt_close(s);
}

/* ---- a server restart under IO ---- */

static struct {
	struct rnbd_dev *d;
	_Atomic bool stop;
	_Atomic uint64_t ios, errors, mismatches;
	_Atomic int last_err;
} rs;

static void *restart_io(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg, gen = 0;
	static uint8_t w[2][16384], r[2][16384];

	while (!atomic_load(&rs.stop)) {
		uint64_t off = (3u << 20) + t * (1u << 20) + (gen % 32) * 16384u;
		int ret;

		t_fill(w[t], sizeof(w[t]), gen++ * 2 + t);
		ret = rnbd_pwrite(rs.d, w[t], sizeof(w[t]), off, 0);
		if (!ret)
			ret = rnbd_pread(rs.d, r[t], sizeof(r[t]), off);
		if (ret) {
			atomic_fetch_add(&rs.errors, 1);
			atomic_store(&rs.last_err, ret);
			continue;
		}
		if (memcmp(w[t], r[t], sizeof(w[t])))
			atomic_fetch_add(&rs.mismatches, 1);
		atomic_fetch_add(&rs.ios, 2);
	}
	return NULL;
}

static void restart_case(bool poll)
{
	struct rtrs_path_addr pa[2] = { { NULL, addr[0] }, { NULL, addr[1] } };
	struct rtrs_clt_attr at;
	struct rnbd_dev_info in;
	struct rnbd_sess *s;
	pthread_t th[2];
	char listen[300];
	uint64_t before;
	int st;

	rtrs_clt_attr_init(&at);
	at.no_path_timeout_ms = 20000;
	at.reconnect_delay_ms = 200;
	at.hb_interval_ms = 200;
	at.hb_missed_max = 3;
	/* poll mode: both IO threads drive the session through the
	 * synchronous helpers, across the re-open */
	if (poll)
		at.progress = RTRS_PROGRESS_POLL;
	atomic_store(&rs.stop, false);
	atomic_store(&rs.ios, 0);
	if (rnbd_sess_open(poll ? "rnbd-restart-poll" : "rnbd-restart", pa, 2,
			   &at, &s)) {
		CHECK(0, "restart session");
		return;
	}
	if (rnbd_dev_open(s, "disk", RNBD_ACCESS_RW, &rs.d)) {
		CHECK(0, "restart device");
		rnbd_sess_close(s);
		return;
	}
	for (uintptr_t i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, restart_io, (void *)i);
	t_sleep_ms(300);
	before = atomic_load(&rs.ios);
	kill(srv_pid, SIGKILL);
	waitpid(srv_pid, &st, 0);
	snprintf(listen, sizeof(listen), "%s,%s", addr[0], addr[1]);
	CHECK_EQ(server_start(srv_exe, listen), 0);
	/* IO goes on once the paths are back and the device is re-opened:
	 * judged by the count; the bound (60 s) only ends a hang (a loaded
	 * lab guest under TCG needed more than 10 s for 200 IOs) */
	for (int i = 0; i < 600 && atomic_load(&rs.ios) < before + 200; i++)
		t_sleep_ms(100);
	atomic_store(&rs.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&rs.ios) >= before + 200, "IO did not resume: %llu",
	      (unsigned long long)(atomic_load(&rs.ios) - before));
	CHECK(atomic_load(&rs.errors) == 0, "%llu IO errors (last %d)",
	      (unsigned long long)atomic_load(&rs.errors),
	      atomic_load(&rs.last_err));
	CHECK_EQ(atomic_load(&rs.mismatches), 0);
	CHECK_EQ(rnbd_dev_info(rs.d, &in), 0);
	CHECK(in.reopens >= 1, "the device was not re-opened");
	CHECK_EQ(rnbd_dev_close(rs.d), 0);
	rnbd_sess_close(s);
}

/* How the server does IO: O_DIRECT on a file system that takes it (unless
 * --no-direct), inline on tmpfs; data through each way lands in the file. */
static void io_mode_cases(struct rnbd_sess *s)
{
	static uint8_t w[200 << 10], r[200 << 10];
	const char *want = "page-cache";
	struct statx sx;
	struct rnbd_dev *d = NULL;
	int ret;

	if (!srv_has("--no-direct") &&
	    !statx(AT_FDCWD, disk, 0, STATX_DIOALIGN, &sx) &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align &&
	    sx.stx_dio_offset_align <= 512)
		want = "direct";
	CHECK(!strcmp(io_disk, want), "disk io=%s, expected %s", io_disk, want);
	if (!memdisk[0])
		return;
	CHECK(!strcmp(io_mem, "memory"), "tmpfs export io=%s", io_mem);
	/* READs from a mapping need always_invalidate off, and a provider
	 * that sends from the memory as it is then (not RDMA verbs, through
	 * libfabric or rdma-core, which send from the pages pinned at
	 * registration) */
	CHECK(mem_zero_copy == (srv_has("--always-invalidate=0") &&
				!(getenv("RTRS_PROVIDER") &&
				  (!strcmp(getenv("RTRS_PROVIDER"), "verbs") ||
				   !strcmp(getenv("RTRS_PROVIDER"), "rdma")))),
	      "memdisk zero-copy %d", mem_zero_copy);
	ret = rnbd_dev_open(s, "memdisk", RNBD_ACCESS_RW, &d);
	CHECK(ret == 0, "open memdisk: %s", rtrs_strerror(ret));
	if (ret)
		return;
	t_fill(w, sizeof(w), 9);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), 3 << 9, RNBD_FUA), 0);
	CHECK_EQ(rnbd_flush(d), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), 3 << 9), 0);
	CHECK(!memcmp(w, r, sizeof(w)), "memdisk: read back differs");
	CHECK(t_file_has(memdisk, w, sizeof(w), 3 << 9), "memdisk: the file differs");
	/* a punched hole reads back as zeros, through the mapping too */
	CHECK_EQ(rnbd_discard(d, 64 << 10, 64 << 10), 0);
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), 3 << 9), 0);
	memset(w + (64 << 10) - (3 << 9), 0, 64 << 10);
	CHECK(!memcmp(w, r, sizeof(w)), "memdisk: read after discard differs");
	CHECK_EQ(rnbd_pread(d, r, 512, DISK), -EINVAL);
	/* the file shrinks under the export: a READ past its new end fails
	 * alone (-EINVAL: past the size at the request), one before it still
	 * reads, and so does one after it has grown back */
	if (!truncate(memdisk, 64 << 10)) {
		CHECK_EQ(rnbd_pread(d, r, 4096, 128 << 10), -EINVAL);
		CHECK_EQ(rnbd_pread(d, r, 4096, 0), 0);
		CHECK(!memcmp(w, r + (3 << 9), 4096 - (3 << 9)),
		      "memdisk: read after the shrink differs");
		CHECK_EQ(truncate(memdisk, DISK), 0);
		CHECK_EQ(rnbd_pread(d, r, 4096, 128 << 10), 0);
	}
	CHECK_EQ(rnbd_dev_close(d), 0);
}

/* The files live in /tmp and in /dev/shm (memory): remove them on every
 * way out that can be caught. */
static void cleanup(void)
{
	char cmd[96];

	if (memdisk[0])
		unlink(memdisk);
	memdisk[0] = 0;
	if (blk_fd >= 0)
		close(blk_fd);          /* the loop device clears itself */
	blk_fd = -1;
	if (tdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", tdir);
		tdir[0] = 0;
	}
}

/* SIGHUP/SIGINT/SIGPIPE/SIGTERM (ctrl-C, a closed output pipe, a harness
 * stopping the run): async-signal-safe calls only; the /tmp directory is
 * left behind, the memory is not. */
static void on_stop_signal(int sig)
{
	if (memdisk[0])
		unlink(memdisk);
	if (srv_pid > 0)
		kill(srv_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	struct rnbd_sess *a, *b, *c;
	char path[160];
	int fd, st;

	if (argc < 2) {
		fprintf(stderr, "usage: test_rnbd RNBD_SERVER [OPTION]...\n");
		return 2;
	}
	snprintf(tdir, sizeof(tdir), "/tmp/test-rnbd.XXXXXX");
	if (!mkdtemp(tdir))
		return 1;
	signal(SIGHUP, on_stop_signal);
	signal(SIGINT, on_stop_signal);
	signal(SIGPIPE, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	snprintf(disk, sizeof(disk), "%s/disk", tdir);
	snprintf(rodisk, sizeof(rodisk), "%s/rodisk", tdir);
	snprintf(outside, sizeof(outside), "%s/outside", tdir);
	snprintf(path, sizeof(path), "%s/exports", tdir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/exports/sub", tdir);
	mkdir(path, 0700);
	const char *files[] = { disk, rodisk, outside };
	for (int i = 0; i < 3; i++) {
		fd = open(files[i], O_RDWR | O_CREAT, 0600);
		if (fd < 0 || ftruncate(fd, DISK))
			goto fail;
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/exports/inner", tdir);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, 1 << 20))
		goto fail;
	close(fd);
	/* a tmpfs export, where /dev/shm is one */
	snprintf(memdisk, sizeof(memdisk), "/dev/shm/test-rnbd.%d", (int)getpid());
	fd = open(memdisk, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd >= 0 && ftruncate(fd, DISK)) {
		close(fd);
		unlink(memdisk);
		fd = -1;
	}
	if (fd < 0)
		memdisk[0] = 0;
	else
		close(fd);
	snprintf(path, sizeof(path), "%s/exports/escape", tdir);
	if (symlink(outside, path))
		goto fail;
	/* "disk" under other names in the export dir */
	snprintf(path, sizeof(path), "%s/exports/alias", tdir);
	if (link(disk, path))
		goto fail;
	snprintf(path, sizeof(path), "%s/exports/alias-sym", tdir);
	if (symlink("alias", path))
		goto fail;
	{
		char img[160];

		snprintf(img, sizeof(img), "%s/lo.img", tdir);
		snprintf(path, sizeof(path), "%s/exports/blk-node", tdir);
		loop_setup(img, path);
	}
	srv_exe = argv[1];
	srv_args = argv + 2;
	if (server_start(argv[1], NULL))
		goto fail;
	if (sess_open("rnbd-a", &a) || sess_open("rnbd-b", &b) ||
	    sess_open("rnbd-c", &c)) {
		kill(srv_pid, SIGKILL);
		cleanup();
		return t_finish();
	}
	data_cases(a);
	io_mode_cases(a);
	poll_cases(a);
	list_cases(a);
	access_cases(a, b, c);
	alias_cases(a, b, c);
	hostile_cases();
	restart_case(false);
	restart_case(true);
	rnbd_sess_close(a);
	rnbd_sess_close(b);
	rnbd_sess_close(c);
	kill(srv_pid, SIGTERM);
	waitpid(srv_pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d", st);
	cleanup();
	return t_finish();

fail:
	cleanup();
	return 1;
}
