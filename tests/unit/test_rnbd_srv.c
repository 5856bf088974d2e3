// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Unit tests of the rnbd server library's pure parts (src/rnbd/export.c,
 * src/rnbd/srv.c): export names resolved beneath the export dir (".."
 * and symlinks out refused, aliases of one file one export, the writers
 * counted per file), and every check of docs/rnbd-protocol.md 1.3 on an
 * IO, against a real file in a temporary directory. No provider. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rnbd/srv_int.h"

#define FSIZE (1u << 20)

static char top[PATH_MAX];      /* holds dir/ (the export dir) and out */
static char dir[PATH_MAX + 8];

static void mkfile(const char *path, size_t size)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void at(char *buf, size_t len, const char *base, const char *name)
{
	assert_true((size_t)snprintf(buf, len, "%s/%s", base, name) < len);
}

static int setup(void **st)
{
	char p[2 * PATH_MAX], q[2 * PATH_MAX];

	(void)st;
	snprintf(top, sizeof(top), "%s/rnbd_srv_XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(top))
		return -1;
	at(dir, sizeof(dir), top, "dir");
	if (mkdir(dir, 0700))
		return -1;
	at(p, sizeof(p), dir, "f");
	mkfile(p, FSIZE);
	at(p, sizeof(p), dir, "sub");
	if (mkdir(p, 0700))
		return -1;
	at(p, sizeof(p), dir, "sub/g");
	mkfile(p, 4096);
	at(p, sizeof(p), top, "out");
	mkfile(p, 4096);
	/* aliases of f: a hard link, a symlink that stays inside */
	at(p, sizeof(p), dir, "f");
	at(q, sizeof(q), dir, "h");
	if (link(p, q))
		return -1;
	at(q, sizeof(q), dir, "sub/up");
	if (symlink("../f", q))
		return -1;
	/* ways out: a relative symlink, an absolute one (even to a file
	 * inside), a symlink to a directory outside */
	at(q, sizeof(q), dir, "rel_out");
	if (symlink("../out", q))
		return -1;
	at(q, sizeof(q), dir, "abs_in");
	if (symlink(p, q))
		return -1;
	at(q, sizeof(q), dir, "topdir");
	if (symlink("..", q))
		return -1;
	return 0;
}

static int teardown(void **st)
{
	static const char *const names[] = {
		"dir/f", "dir/h", "dir/sub/g", "dir/sub/up", "dir/rel_out",
		"dir/abs_in", "dir/topdir", "out",
	};
	char p[2 * PATH_MAX];

	(void)st;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		at(p, sizeof(p), top, names[i]);
		unlink(p);
	}
	at(p, sizeof(p), top, "dir/sub");
	rmdir(p);
	rmdir(dir);
	rmdir(top);
	return 0;
}

static struct rnbd_exports *exports(void)
{
	struct rnbd_exports *x;

	assert_int_equal(rnbd_exports_create(&x), 0);
	assert_int_equal(rnbd_exports_set_dir(x, dir), 0);
	return x;
}

static void test_name_check(void **st)
{
	static const char *const ok[] = { "f", "sub/g", "a.b", "..a", "a..",
					  ".hidden", "a/.b", "sub/" };
	static const char *const bad[] = { "/f", "/", "..", ".", "../f",
					   "sub/../f", "./f", "sub/./g",
					   "sub//g", "a/..", "//f" };

	(void)st;
	/* a trailing "/" passes: the open that follows refuses a file
	 * named so (ENOTDIR), and a directory is no export */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_int_equal(rnbd__export_name_check(ok[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rnbd__export_name_check(bad[i]), -EACCES);
}

static void test_find_beneath(void **st)
{
	struct rnbd_exports *x = exports();
	struct export *f = NULL, *e = NULL;

	(void)st;
	assert_int_equal(rnbd__export_find(x, "f", &f), 0);
	assert_non_null(f);
	assert_string_equal(f->path, "f");
	assert_int_equal(f->size, FSIZE);
	assert_false(f->ro);
	assert_int_equal(rnbd__export_find(x, "sub/g", &e), 0);
	assert_ptr_not_equal(e, f);
	assert_int_equal(e->size, 4096);
	/* names that leave the dir, or that do not exist */
	e = NULL;
	assert_int_equal(rnbd__export_find(x, "../out", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "rel_out", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "abs_in", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "topdir/out", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "/etc/passwd", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "sub/../f", &e), -EACCES);
	assert_int_equal(rnbd__export_find(x, "nothing", &e), -ENOENT);
	/* a directory is no export */
	assert_int_equal(rnbd__export_find(x, "sub", &e), -EISDIR);
	assert_int_equal(rnbd__export_find(x, "f/", &e), -ENOTDIR);
	assert_null(e);
	rnbd_exports_destroy(x);
}

static void test_find_aliases(void **st)
{
	struct rnbd_exports *x = exports();
	struct export *f, *e, *n;
	char spec[2 * PATH_MAX];
	unsigned cnt = 0;

	(void)st;
	assert_int_equal(rnbd__export_find(x, "f", &f), 0);
	/* a hard link and a symlink inside: the same export */
	assert_int_equal(rnbd__export_find(x, "h", &e), 0);
	assert_ptr_equal(e, f);
	assert_int_equal(rnbd__export_find(x, "sub/up", &e), 0);
	assert_ptr_equal(e, f);
	for (e = x->list; e; e = e->next)
		cnt++;
	assert_int_equal(cnt, 1);
	/* a named export of the same file: its own export, found by its name
	 * first, but its writers count for the file */
	snprintf(spec, sizeof(spec), "vol=%s/f", dir);
	assert_int_equal(rnbd_exports_add(x, spec), 0);
	assert_int_equal(rnbd__export_find(x, "vol", &n), 0);
	assert_ptr_not_equal(n, f);
	assert_string_equal(n->name, "vol");
	assert_int_equal(rnbd__export_writers(x, f), 0);
	n->writers = 1;
	assert_int_equal(rnbd__export_writers(x, f), 1);
	f->writers = 1;
	assert_int_equal(rnbd__export_writers(x, n), 2);
	rnbd__export_put(n, 0);         /* a reader: no writer gone */
	assert_int_equal(rnbd__export_writers(x, f), 2);
	rnbd__export_put(n, 1);
	rnbd__export_put(f, 2);
	assert_int_equal(rnbd__export_writers(x, f), 0);
	rnbd__export_put(f, 1);         /* never below 0 */
	assert_int_equal(f->writers, 0);
	/* another file: not counted */
	assert_int_equal(rnbd__export_find(x, "sub/g", &e), 0);
	e->writers = 1;
	assert_int_equal(rnbd__export_writers(x, f), 0);
	rnbd_exports_destroy(x);
}

static void test_exports_add(void **st)
{
	struct rnbd_exports *x;
	char spec[2 * PATH_MAX];
	struct export *e;

	(void)st;
	assert_int_equal(rnbd_exports_create(&x), 0);
	assert_true(rnbd_exports_empty(x));
	assert_int_equal(rnbd_exports_add(x, "novalue"), -EINVAL);
	assert_int_equal(rnbd_exports_add(x, "=/x"), -EINVAL);
	snprintf(spec, sizeof(spec), "a=%s/nothing", dir);
	assert_int_equal(rnbd_exports_add(x, spec), -ENOENT);
	snprintf(spec, sizeof(spec), "a=%s", dir);
	assert_int_equal(rnbd_exports_add(x, spec), -EISDIR);
	snprintf(spec, sizeof(spec), "ro=%s/f:ro", dir);
	assert_int_equal(rnbd_exports_add(x, spec), 0);
	assert_false(rnbd_exports_empty(x));
	assert_int_equal(rnbd__export_find(x, "ro", &e), 0);
	assert_true(e->ro);
	/* no export dir: only the names */
	assert_int_equal(rnbd__export_find(x, "f", &e), -ENOENT);
	rnbd_exports_destroy(x);
}

static void test_acl(void **st)
{
	struct rnbd_exports *x;

	(void)st;
	assert_int_equal(rnbd_exports_create(&x), 0);
	assert_false(rnbd_exports_has_acl(x));
	assert_int_equal(rnbd_exports_acl_add(x, "vol"), -EINVAL);
	assert_int_equal(rnbd_exports_acl_add(x, "vol="), -EINVAL);
	assert_int_equal(rnbd_exports_acl_add(x, "vol=a:xx"), -EINVAL);
	assert_int_equal(rnbd_exports_acl_add(x, "vol=alice,bob:ro"), 0);
	assert_true(rnbd_exports_has_acl(x));
	assert_int_equal(rnbd__export_acl_check(x, "vol", "alice", 1), 0);
	assert_int_equal(rnbd__export_acl_check(x, "vol", "bob", 0), 0);
	assert_int_equal(rnbd__export_acl_check(x, "vol", "bob", 1), -EACCES);
	assert_int_equal(rnbd__export_acl_check(x, "vol", "eve", 0), -EACCES);
	assert_int_equal(rnbd__export_acl_check(x, "vol", "", 0), -EACCES);
	/* names without entries: open to all */
	assert_int_equal(rnbd__export_acl_check(x, "other", "", 1), 0);
	rnbd_exports_destroy(x);
}

/* ---- the IO checks ---- */

struct fix {
	struct rnbd_srv srv;
	struct ssess ss;
	struct sdev devs[3];
	struct export *e;
	uint8_t usr[RNBD_IO_LEN];
};

static int io_setup(void **st)
{
	struct fix *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->srv.x = exports();
	assert_int_equal(rnbd__export_find(t->srv.x, "f", &t->e), 0);
	rtrs__lock_init(&t->ss.lock, RNBD_RANK_SESS, "ss->lock");
	t->ss.srv = &t->srv;
	t->ss.devs = t->devs;
	t->ss.ndevs = 3;
	t->devs[0] = (struct sdev){ t->e, 1, true, false, "f" };   /* rw */
	t->devs[1] = (struct sdev){ t->e, 0, true, false, "f" };   /* ro */
	t->devs[2] = (struct sdev){ NULL, 0, false, true, "f" };   /* forced */
	*st = t;
	return 0;
}

static int io_teardown(void **st)
{
	struct fix *t = *st;
	char p[2 * PATH_MAX];

	at(p, sizeof(p), dir, "f");
	assert_int_equal(truncate(p, FSIZE), 0);
	rtrs__lock_destroy(&t->ss.lock);
	rnbd_exports_destroy(t->srv.x);
	free(t);
	return 0;
}

/* The check of an IO (@dev, @op | @flags, @sector, @size) with @datalen
 * bytes travelling in @d. */
static int check(struct fix *t, uint32_t dev, uint32_t rw, uint64_t sector,
		 uint32_t size, size_t datalen, enum rtrs_dir d,
		 struct io_req *q)
{
	struct rnbd_io io = { dev, sector, rw, size, 0 };

	memset(q, 0, sizeof(*q));
	rnbd_proto_io_encode(t->usr, &io);
	return rnbd__io_check(&t->ss, t->usr, RNBD_IO_LEN, datalen, d, q);
}

static void test_io_ok(void **st)
{
	struct fix *t = *st;
	struct io_req q;

	assert_int_equal(check(t, 0, RNBD_OP_READ, 8, 4096, 4096, RTRS_READ,
			       &q), 0);
	assert_ptr_equal(q.e, t->e);
	assert_int_equal(q.op, RNBD_OP_READ);
	assert_int_equal(q.off, 4096);
	assert_int_equal(q.len, 4096);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE | RNBD_F_FUA, 0, 512, 512,
			       RTRS_WRITE, &q), 0);
	assert_int_equal(q.op, RNBD_OP_WRITE);
	assert_int_equal(q.rw, RNBD_OP_WRITE | RNBD_F_FUA);
	/* the last sector, exactly */
	assert_int_equal(check(t, 0, RNBD_OP_WRITE, FSIZE / 512 - 1, 512, 512,
			       RTRS_WRITE, &q), 0);
	assert_int_equal(check(t, 0, RNBD_OP_FLUSH, 0, 0, 0, RTRS_WRITE, &q),
			 0);
	assert_int_equal(check(t, 0, RNBD_OP_DISCARD, 0, FSIZE, 0, RTRS_WRITE,
			       &q), 0);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE_ZEROES | RNBD_F_NOUNMAP, 16,
			       4096, 0, RTRS_READ, &q), 0);
	/* a read-only device reads and flushes */
	assert_int_equal(check(t, 1, RNBD_OP_READ, 0, 512, 512, RTRS_READ, &q),
			 0);
	assert_int_equal(check(t, 1, RNBD_OP_FLUSH, 0, 0, 0, RTRS_WRITE, &q),
			 0);
}

static void test_io_refused(void **st)
{
	struct fix *t = *st;
	struct io_req q;
	struct rnbd_io io = { 0, 0, RNBD_OP_READ, 512, 0 };

	/* malformed header */
	rnbd_proto_io_encode(t->usr, &io);
	assert_int_equal(rnbd__io_check(&t->ss, t->usr, RNBD_IO_LEN - 1, 512,
					RTRS_READ, &q), -EINVAL);
	/* no such device; one closed by the control socket */
	assert_int_equal(check(t, 3, RNBD_OP_READ, 0, 512, 512, RTRS_READ, &q),
			 -EBADF);
	assert_int_equal(check(t, UINT32_MAX, RNBD_OP_READ, 0, 512, 512,
			       RTRS_READ, &q), -EBADF);
	assert_int_equal(check(t, 2, RNBD_OP_READ, 0, 512, 512, RTRS_READ, &q),
			 -ENODEV);
	t->devs[2].forced = false;
	assert_int_equal(check(t, 2, RNBD_OP_READ, 0, 512, 512, RTRS_READ, &q),
			 -EBADF);
	t->devs[2].forced = true;
	/* writes on a read-only device */
	assert_int_equal(check(t, 1, RNBD_OP_WRITE, 0, 512, 512, RTRS_WRITE,
			       &q), -EROFS);
	assert_int_equal(check(t, 1, RNBD_OP_DISCARD, 0, 512, 0, RTRS_WRITE,
			       &q), -EROFS);
	assert_int_equal(check(t, 1, RNBD_OP_WRITE_ZEROES, 0, 512, 0,
			       RTRS_WRITE, &q), -EROFS);
	assert_int_equal(check(t, 0, RNBD_OP_SECURE_ERASE, 0, 512, 0,
			       RTRS_WRITE, &q), -EOPNOTSUPP);
	/* the data in the wrong direction, or of the wrong size */
	assert_int_equal(check(t, 0, RNBD_OP_READ, 0, 512, 512, RTRS_WRITE,
			       &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE, 0, 512, 512, RTRS_READ,
			       &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_READ, 0, 1024, 512, RTRS_READ,
			       &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_READ, 0, 0, 0, RTRS_READ, &q),
			 -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_READ, 0, 100, 100, RTRS_READ, &q),
			 -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_FLUSH, 0, 512, 0, RTRS_WRITE, &q),
			 -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_FLUSH, 0, 0, 512, RTRS_WRITE, &q),
			 -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_DISCARD, 0, 0, 0, RTRS_WRITE, &q),
			 -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_DISCARD, 0, 512, 512, RTRS_WRITE,
			       &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_DISCARD, 0, 100, 0, RTRS_WRITE,
			       &q), -EINVAL);
	/* past the end, and sectors whose byte offset overflows */
	assert_int_equal(check(t, 0, RNBD_OP_READ, FSIZE / 512, 512, 512,
			       RTRS_READ, &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE, FSIZE / 512 - 1, 1024,
			       1024, RTRS_WRITE, &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_READ, UINT64_MAX >> 9, 512, 512,
			       RTRS_READ, &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_READ, (UINT64_MAX >> 9) + 1, 512,
			       512, RTRS_READ, &q), -EINVAL);
	assert_int_equal(check(t, 0, RNBD_OP_DISCARD, 1, FSIZE, 0, RTRS_WRITE,
			       &q), -EINVAL);
}

/* The size is the file's now: after a shrink, a write past the new end is
 * refused (never grows the file back); after a grow, allowed. */
static void test_io_resize(void **st)
{
	struct fix *t = *st;
	char p[2 * PATH_MAX];
	struct io_req q;
	struct stat sb;

	at(p, sizeof(p), dir, "f");
	assert_int_equal(truncate(p, FSIZE / 2), 0);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE, FSIZE / 1024, 512, 512,
			       RTRS_WRITE, &q), -EINVAL);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_size, FSIZE / 2);
	assert_int_equal(check(t, 0, RNBD_OP_WRITE, FSIZE / 1024 - 1, 512, 512,
			       RTRS_WRITE, &q), 0);
	/* a size that is no whole sector counts whole sectors only */
	assert_int_equal(truncate(p, FSIZE + 100), 0);
	assert_int_equal(check(t, 0, RNBD_OP_READ, FSIZE / 512 - 1, 512, 512,
			       RTRS_READ, &q), 0);
	assert_int_equal(check(t, 0, RNBD_OP_READ, FSIZE / 512, 512, 512,
			       RTRS_READ, &q), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_find_beneath),
		cmocka_unit_test(test_find_aliases),
		cmocka_unit_test(test_exports_add),
		cmocka_unit_test(test_acl),
		cmocka_unit_test_setup_teardown(test_io_ok, io_setup,
						io_teardown),
		cmocka_unit_test_setup_teardown(test_io_refused, io_setup,
						io_teardown),
		cmocka_unit_test_setup_teardown(test_io_resize, io_setup,
						io_teardown),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
