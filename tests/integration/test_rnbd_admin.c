// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd-server administration, end to end with a real rnbd-server process:
 *
 *  resize: an exported file grows while a device is open: the device
 *    keeps its size until rnbd_dev_refresh(), then IO in the new part
 *    lands in the file; the file shrinks: READ, WRITE, DISCARD and
 *    WRITE_ZEROES past the new end are refused (-EINVAL) and the file
 *    keeps its size (a write never grows it back), also for a file that
 *    was larger when the server started; a new open sees the size now.
 *  ctl: the control socket (--ctl): two sessions with three devices are
 *    listed exactly (text, and --json read by python3); close-device
 *    makes the client's IO on that device fail with -ENODEV while the
 *    others keep working; close-session closes the session's paths and
 *    releases its devices (a writer's export can be opened rw again).
 *
 *   test_rnbd_admin RNBD_SERVER resize|ctl
 */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "harness.h"
#include "rnbd/rnbd.h"

#define MIB (1u << 20)

static char tdir[64], disk[128], disk2[128], inner[128], sock[128];
static char dir_real[256];
static char addr[2][128];
static const char *srv_exe;
static pid_t srv_pid;

static int server_start(bool ctl)
{
	char e1[192], e2[192], ex[128], both[160], line[256];
	const char *argv[16];
	int n = 0, got = 0;
	FILE *out;

	snprintf(e1, sizeof(e1), "disk=%s", disk);
	snprintf(e2, sizeof(e2), "disk2=%s", disk2);
	snprintf(ex, sizeof(ex), "%s/exports", tdir);
	snprintf(both, sizeof(both), "%s,%s", t_listen(0), t_listen(1));
	argv[n++] = srv_exe;
	argv[n++] = "--listen";
	argv[n++] = both;
	argv[n++] = "--export";
	argv[n++] = e1;
	argv[n++] = "--export";
	argv[n++] = e2;
	argv[n++] = "--export-dir";
	argv[n++] = ex;
	if (ctl) {
		argv[n++] = "--ctl";
		argv[n++] = sock;
	}
	argv[n] = NULL;
	out = t_spawn(argv, &srv_pid);
	if (srv_pid < 0)
		return -1;
	while (out && got < 2 && fgets(line, sizeof(line), out))
		if (sscanf(line, "listening %127s", addr[got]) == 1)
			got++;
	if (out)
		fclose(out);
	if (got < 2) {
		fprintf(stderr, "rnbd-server did not start\n");
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, NULL, 0);
		srv_pid = 0;
		return -1;
	}
	return 0;
}

static int sess_open(const char *name, bool reconnect, struct rnbd_sess **s)
{
	struct rtrs_path_addr pa[2] = { { NULL, addr[0] }, { NULL, addr[1] } };
	struct rtrs_clt_attr at;
	int ret;

	rtrs_clt_attr_init(&at);
	if (!reconnect)
		at.max_reconnect_attempts = 0;
	ret = rnbd_sess_open(name, pa, 2, &at, s);
	CHECK(ret == 0, "rnbd_sess_open %s: %s", name, rtrs_strerror(ret));
	return ret;
}

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

static int set_size(const char *path, off_t size)
{
	return truncate(path, size);
}

static uint64_t dev_size(struct rnbd_dev *d)
{
	struct rnbd_dev_info in = { 0 };

	rnbd_dev_info(d, &in);
	return in.size;
}

/* ---- resize ---- */

static void resize_case(void)
{
	static uint8_t w[64 << 10], r[64 << 10];
	struct rnbd_sess *a, *b;
	struct rnbd_dev *d, *d2;
	int ret;

	if (sess_open("adm-a", true, &a))
		return;
	ret = rnbd_dev_open(a, "disk", RNBD_ACCESS_RW, &d);
	CHECK(ret == 0, "open disk: %s", rtrs_strerror(ret));
	if (ret)
		goto out;
	CHECK_EQ(dev_size(d), MIB);

	/* grow: invisible until refreshed, then usable and in the file */
	CHECK_EQ(set_size(disk, 2 * MIB), 0);
	CHECK_EQ(dev_size(d), MIB);
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), MIB + MIB / 2), -EINVAL);
	ret = rnbd_dev_refresh(d);
	CHECK(ret == 0, "refresh: %s", rtrs_strerror(ret));
	CHECK_EQ(dev_size(d), 2 * MIB);
	t_fill(w, sizeof(w), 1);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), MIB + MIB / 2, 0), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(rnbd_pread(d, r, sizeof(r), MIB + MIB / 2), 0);
	CHECK(!memcmp(w, r, sizeof(r)), "read back in the grown part differs");
	CHECK(t_file_has(disk, w, sizeof(w), MIB + MIB / 2),
	      "the grown part of the file does not hold the write");
	/* the last sector of the new size */
	CHECK_EQ(rnbd_pwrite(d, w, 512, 2 * MIB - 512, RNBD_FUA), 0);
	CHECK(t_file_has(disk, w, 512, 2 * MIB - 512), "last sector not written");
	CHECK_EQ(file_size(disk), 2 * MIB);

	/* shrink: the device still says 2 MiB, the server refuses what is
	 * past the new end and the file keeps its size */
	CHECK_EQ(set_size(disk, MIB), 0);
	CHECK_EQ(dev_size(d), 2 * MIB);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), MIB + MIB / 2, 0), -EINVAL);
	CHECK_EQ(file_size(disk), MIB);
	CHECK_EQ(rnbd_pwrite(d, w, 4096, MIB - 2048, 0), -EINVAL);
	CHECK_EQ(file_size(disk), MIB);
	CHECK_EQ(rnbd_write_zeroes(d, MIB, 4096, 0), -EINVAL);
	CHECK_EQ(rnbd_discard(d, MIB, 4096), -EINVAL);
	CHECK_EQ(rnbd_pread(d, r, 4096, MIB), -EINVAL);
	CHECK_EQ(file_size(disk), MIB);
	/* inside the new size all works */
	t_fill(w, sizeof(w), 2);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), MIB - sizeof(w), 0), 0);
	CHECK(t_file_has(disk, w, sizeof(w), MIB - sizeof(w)),
	      "write before the new end not in the file");
	CHECK_EQ(file_size(disk), MIB);

	/* a new open sees the size now; a refresh too */
	if (!sess_open("adm-b", true, &b)) {
		ret = rnbd_dev_open(b, "disk", RNBD_ACCESS_RO, &d2);
		CHECK(ret == 0, "open disk ro: %s", rtrs_strerror(ret));
		if (!ret) {
			CHECK_EQ(dev_size(d2), MIB);
			CHECK_EQ(rnbd_pread(d2, r, sizeof(w), MIB - sizeof(w)), 0);
			CHECK(!memcmp(w, r, sizeof(w)), "new open reads other bytes");
			rnbd_dev_close(d2);
		}
		rnbd_sess_close(b);
	}
	CHECK_EQ(rnbd_dev_refresh(d), 0);
	CHECK_EQ(dev_size(d), MIB);
	CHECK_EQ(rnbd_pwrite(d, w, 4096, MIB, 0), -EINVAL);  /* client side */
	CHECK_EQ(rnbd_dev_refresh(NULL), -EINVAL);
	CHECK_EQ(rnbd_dev_close(d), 0);

	/* disk2 was 2 MiB when the server started: shrunk under an open
	 * device, a write past the new end must not grow it back */
	ret = rnbd_dev_open(a, "disk2", RNBD_ACCESS_RW, &d);
	CHECK(ret == 0, "open disk2: %s", rtrs_strerror(ret));
	if (ret)
		goto out;
	CHECK_EQ(dev_size(d), 2 * MIB);
	CHECK_EQ(set_size(disk2, MIB), 0);
	CHECK_EQ(rnbd_pwrite(d, w, sizeof(w), MIB + MIB / 2, 0), -EINVAL);
	CHECK_EQ(rnbd_write_zeroes(d, 2 * MIB - 4096, 4096, 0), -EINVAL);
	CHECK_EQ(file_size(disk2), MIB);
	CHECK_EQ(rnbd_dev_close(d), 0);
out:
	rnbd_sess_close(a);
}

/* ---- ctl ---- */

/* Run "rnbd-server --ctl SOCK @args" through sh; its output into @out,
 * its exit status returned. */
static int ctl(const char *args, const char *filter, char *out, size_t cap)
{
	char cmd[1024];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' --ctl '%s' %s%s%s", srv_exe, sock, args,
		 filter ? " | " : "", filter ? filter : "");
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (n + 1 < cap && !feof(p)) {
		size_t r = fread(out + n, 1, cap - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Until the text listing is @want (5 s). */
static bool list_becomes(const char *want, char *got, size_t cap)
{
	for (int i = 0; i < 100; i++) {
		if (ctl("list", NULL, got, cap) == 0 && !strcmp(got, want))
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static bool paths_down(struct rnbd_sess *s)
{
	struct rtrs_clt_sess *r = rnbd_sess_rtrs(s);

	for (int i = 0; i < 100; i++) {
		int up = 0, n = rtrs_clt_path_slots(r);

		for (int k = 0; k < n; k++) {
			struct rtrs_path_info pi;

			if (!rtrs_clt_path_info(r, (unsigned)k, &pi) &&
			    pi.state == RTRS_PATH_CONNECTED)
				up++;
		}
		if (!up)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static void ctl_case(void)
{
	static uint8_t w[8192], r[8192];
	static const char py[] =
		"python3 -c 'import json,sys\n"
		"d=json.load(sys.stdin)\n"
		"for s in d[\"sessions\"]:\n"
		"  print(s[\"name\"],s[\"paths\"],s[\"paths_connected\"],"
		"\" \".join(\"%d:%s:%s:%s\"%(v[\"id\"],v[\"export\"],v[\"mode\"],"
		"v[\"path\"]) for v in s[\"devices\"]))'";
	struct rnbd_sess *a, *b;
	struct rnbd_dev *da = NULL, *db2 = NULL, *dbi = NULL, *dai = NULL;
	char want[2048], got[4096];
	int ret;

	if (sess_open("adm-a", true, &a))
		return;
	if (sess_open("adm-b", false, &b)) {
		rnbd_sess_close(a);
		return;
	}
	CHECK_EQ(rnbd_dev_open(a, "disk", RNBD_ACCESS_RW, &da), 0);
	CHECK_EQ(rnbd_dev_open(b, "disk2", RNBD_ACCESS_RO, &db2), 0);
	CHECK_EQ(rnbd_dev_open(b, "inner", RNBD_ACCESS_RW, &dbi), 0);
	if (!da || !db2 || !dbi)
		goto out;

	/* the listing, exactly */
	snprintf(want, sizeof(want),
		 "session adm-a paths 2/2\n"
		 "  device 0 disk rw %s\n"
		 "session adm-b paths 2/2\n"
		 "  device 0 disk2 ro %s\n"
		 "  device 1 inner rw %s/inner\n", disk, disk2, dir_real);
	CHECK(list_becomes(want, got, sizeof(got)), "list:\n%s\nwanted:\n%s",
	      got, want);
	ret = ctl("--json list", py, got, sizeof(got));
	snprintf(want, sizeof(want),
		 "adm-a 2 2 0:disk:rw:%s\n"
		 "adm-b 2 2 0:disk2:ro:%s 1:inner:rw:%s/inner\n", disk, disk2,
		 dir_real);
	CHECK(ret == 0 && !strcmp(got, want), "json list (%d):\n%s\nwanted:\n%s",
	      ret, got, want);

	/* close one device of b: its IO fails, the others work */
	CHECK_EQ(ctl("close-device adm-b disk2", NULL, got, sizeof(got)), 0);
	CHECK_EQ(rnbd_pread(db2, r, sizeof(r), 0), -ENODEV);
	CHECK_EQ(rnbd_pread(db2, r, sizeof(r), 0), -ENODEV);
	t_fill(w, sizeof(w), 3);
	CHECK_EQ(rnbd_pwrite(dbi, w, sizeof(w), 4096, 0), 0);
	CHECK(t_file_has(inner, w, sizeof(w), 4096), "inner not written");
	CHECK_EQ(rnbd_pwrite(da, w, sizeof(w), 8192, 0), 0);
	CHECK(t_file_has(disk, w, sizeof(w), 8192), "disk not written");
	snprintf(want, sizeof(want),
		 "session adm-a paths 2/2\n"
		 "  device 0 disk rw %s\n"
		 "session adm-b paths 2/2\n"
		 "  device 1 inner rw %s/inner\n", disk, dir_real);
	CHECK(list_becomes(want, got, sizeof(got)), "list after close-device:\n%s",
	      got);
	/* unknown device, session, command */
	CHECK_EQ(ctl("close-device adm-b disk2 2>/dev/null", NULL, got,
		     sizeof(got)), 1);
	CHECK_EQ(ctl("close-device nosuch disk 2>/dev/null", NULL, got,
		     sizeof(got)), 1);
	CHECK_EQ(ctl("bogus 2>/dev/null", NULL, got, sizeof(got)), 1);

	/* close session b: its paths go (it does not reconnect), its writer
	 * is released; a keeps working */
	CHECK_EQ(ctl("close-session adm-b", NULL, got, sizeof(got)), 0);
	CHECK(paths_down(b), "adm-b still has a connected path");
	CHECK(rnbd_pread(dbi, r, sizeof(r), 0) < 0, "IO on a closed session");
	snprintf(want, sizeof(want),
		 "session adm-a paths 2/2\n"
		 "  device 0 disk rw %s\n"
		 "session adm-b paths 0/0\n", disk);
	CHECK(list_becomes(want, got, sizeof(got)), "list after close-session:\n%s",
	      got);
	ret = rnbd_dev_open(a, "inner", RNBD_ACCESS_RW, &dai);
	CHECK(ret == 0, "inner rw after close-session: %s", rtrs_strerror(ret));
	CHECK_EQ(rnbd_pread(da, r, sizeof(r), 8192), 0);
	CHECK(!memcmp(w, r, sizeof(r)), "disk read back differs");
	if (dai)
		CHECK_EQ(rnbd_dev_close(dai), 0);
out:
	rnbd_sess_close(b);
	rnbd_sess_close(a);
}

static void cleanup(void)
{
	char cmd[96];

	if (tdir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tdir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", tdir);
		tdir[0] = 0;
	}
}

int main(int argc, char **argv)
{
	const char *files[3] = { disk, disk2, inner };
	char path[160];
	bool is_ctl;
	int st;

	if (argc != 3 || (strcmp(argv[2], "resize") && strcmp(argv[2], "ctl"))) {
		fprintf(stderr, "usage: test_rnbd_admin RNBD_SERVER resize|ctl\n");
		return 2;
	}
	srv_exe = argv[1];
	is_ctl = !strcmp(argv[2], "ctl");
	if (is_ctl && system("python3 -c '' 2>/dev/null")) {
		fprintf(stderr, "skip: no python3\n");
		return 77;
	}
	snprintf(tdir, sizeof(tdir), "/tmp/test-rnbd-admin.XXXXXX");
	if (!mkdtemp(tdir))
		return 1;
	snprintf(disk, sizeof(disk), "%s/disk", tdir);
	snprintf(disk2, sizeof(disk2), "%s/disk2", tdir);
	snprintf(sock, sizeof(sock), "%s/ctl.sock", tdir);
	snprintf(path, sizeof(path), "%s/exports", tdir);
	mkdir(path, 0700);
	{
		char real[PATH_MAX];

		if (!realpath(path, real) || strlen(real) >= sizeof(dir_real))
			goto fail;
		memcpy(dir_real, real, strlen(real) + 1);
	}
	snprintf(inner, sizeof(inner), "%s/exports/inner", tdir);
	for (int i = 0; i < 3; i++) {
		int fd = open(files[i], O_RDWR | O_CREAT, 0600);

		/* disk2: 2 MiB, the resize case shrinks it */
		if (fd < 0 || ftruncate(fd, files[i] == disk2 ? 2 * MIB : MIB))
			goto fail;
		close(fd);
	}
	if (server_start(is_ctl))
		goto fail;
	if (is_ctl)
		ctl_case();
	else
		resize_case();
	kill(srv_pid, SIGTERM);
	waitpid(srv_pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d", st);
	if (is_ctl)
		CHECK(access(sock, F_OK) != 0, "the control socket is left");
	cleanup();
	return t_finish();

fail:
	if (srv_pid > 0)
		kill(srv_pid, SIGKILL);
	cleanup();
	return 1;
}
