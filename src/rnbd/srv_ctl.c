// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The rnbd server's control socket (--ctl PATH; rnbd-server(8) CONTROL):
 * the kernel's rnbd-server sysfs for user space: which devices are open,
 * by which sessions, in which mode; force-closing a device of a session
 * or a whole session. One thread accepts on a Unix socket (mode 0600,
 * peers of our user or root), reads one line and answers, as librtrs's
 * own control socket (rtrsctl(8)):
 *
 *   request: "<text|json> <list|close-device SESSION EXPORT|
 *             close-session SESSION>\n"
 *   answer:  "status <0 or -errno>\n" and the body
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "srv_int.h"

struct rnbd_srv_ctl {
	struct rnbd_srv *srv;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	pthread_t thr;
	atomic_bool stop;
};

static const char *mode_name(uint8_t mode)
{
	return mode == 0 ? "ro" : mode == 1 ? "rw" : "migration";
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int ctl_list(struct rnbd_srv *srv, FILE *f, bool json)
{
	rtrs__lock(&srv->lock);
	if (json)
		fprintf(f, "{\"sessions\":[");
	for (struct ssess *ss = srv->sessions; ss; ss = ss->next) {
		struct rtrs_srv_sess_stats st = { 0 };
		bool first = true;

		rtrs_srv_sess_get_stats(ss->sess, &st);
		if (json) {
			fprintf(f, "%s{\"name\":", ss == srv->sessions ? "" : ",");
			json_str(f, ss->name);
			fprintf(f, ",\"paths\":%u,\"paths_connected\":%u,"
				"\"devices\":[", st.paths, st.paths_connected);
		} else {
			fprintf(f, "session %s paths %u/%u\n", ss->name,
				st.paths_connected, st.paths);
		}
		rtrs__lock(&ss->lock);
		for (uint32_t i = 0; i < ss->ndevs; i++) {
			const struct sdev *d = &ss->devs[i];
			char path[2 * PATH_MAX + 2];
			const char *name;

			if (!d->used)
				continue;
			rnbd__export_names(srv->x, d->e, &name, path, sizeof(path));
			if (json) {
				fprintf(f, "%s{\"id\":%u,\"export\":",
					first ? "" : ",", i);
				json_str(f, name);
				fprintf(f, ",\"path\":");
				json_str(f, path);
				fprintf(f, ",\"mode\":\"%s\"}", mode_name(d->mode));
			} else {
				fprintf(f, "  device %u %s %s %s\n", i, name,
					mode_name(d->mode), path);
			}
			first = false;
		}
		rtrs__unlock(&ss->lock);
		if (json)
			fprintf(f, "]}");
	}
	if (json)
		fprintf(f, "]}\n");
	rtrs__unlock(&srv->lock);
	return 0;
}

/* Force-close the devices of session @sess (those of export @exp, or all
 * with NULL): their writers are released at once, the client's IO on them
 * gets -ENODEV. How many, or -ENOENT (no such session or device). */
static int ctl_close_devs(struct rnbd_srv *srv, const char *sess,
			  const char *exp)
{
	struct ssess *ss;
	int n = 0;

	rtrs__lock(&srv->lock);
	for (ss = srv->sessions; ss && strcmp(ss->name, sess); ss = ss->next)
		;
	if (ss) {
		rtrs__lock(&ss->lock);
		for (uint32_t i = 0; i < ss->ndevs; i++) {
			struct sdev *d = &ss->devs[i];
			char path[2 * PATH_MAX + 2];
			const char *name;

			if (!d->used)
				continue;
			rnbd__export_names(srv->x, d->e, &name, path, sizeof(path));
			if (exp && strcmp(exp, name))
				continue;
			rnbd__dev_release(srv, d);
			d->forced = true;
			n++;
			fprintf(stderr, "rnbd-server: session %s: device %u "
				"closed by the control socket\n", ss->name, i);
		}
		rtrs__unlock(&ss->lock);
	}
	rtrs__unlock(&srv->lock);
	return ss && (n || !exp) ? n : -ENOENT;
}

/* close-session: its devices, then its paths (rtrs_srv_close_sess()). */
static int ctl_close_sess(struct rnbd_srv *srv, const char *sess)
{
	struct rtrs_srv_ctx *ctx;
	int ret = ctl_close_devs(srv, sess, NULL);

	if (ret < 0)
		return ret;
	rtrs__lock(&srv->lock);
	ctx = srv->ctx;
	rtrs__unlock(&srv->lock);
	if (!ctx)
		return -ENOENT;
	ret = rtrs_srv_close_sess(ctx, sess);
	if (ret)
		return ret;
	fprintf(stderr, "rnbd-server: session %s: paths closed by the "
		"control socket\n", sess);
	return 0;
}

static int ctl_run(struct rnbd_srv *srv, FILE *f, char *line)
{
	char *argv[5], *save = NULL;
	int argc = 0, ret;
	bool json;

	for (char *t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == 5)
			return -EINVAL;
		argv[argc++] = t;
	}
	if (argc < 2 || (strcmp(argv[0], "text") && strcmp(argv[0], "json")))
		return -EINVAL;
	json = !strcmp(argv[0], "json");
	if (!strcmp(argv[1], "list") && argc == 2)
		return ctl_list(srv, f, json);
	if (!strcmp(argv[1], "close-device") && argc == 4) {
		ret = ctl_close_devs(srv, argv[2], argv[3]);
		return ret < 0 ? ret : 0;
	}
	if (!strcmp(argv[1], "close-session") && argc == 3)
		return ctl_close_sess(srv, argv[2]);
	return -EINVAL;
}

static void ctl_serve(struct rnbd_srv *srv, int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char line[RNBD_SRV_CTL_LINE_MAX], *body = NULL, hdr[32];
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	size_t n = 0, blen = 0;
	FILE *f;
	int ret;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
	    (cr.uid != geteuid() && cr.uid != 0))
		return;
	while (n + 1 < sizeof(line) && !memchr(line, '\n', n)) {
		ssize_t r;

		if (poll(&pf, 1, 2000) <= 0)
			return;
		r = read(fd, line + n, sizeof(line) - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
	}
	line[n] = 0;
	f = open_memstream(&body, &blen);
	if (!f)
		return;
	ret = ctl_run(srv, f, line);
	fclose(f);
	n = (size_t)snprintf(hdr, sizeof(hdr), "status %d\n", ret);
	if (send(fd, hdr, n, MSG_NOSIGNAL) == (ssize_t)n && blen)
		(void)!send(fd, body, blen, MSG_NOSIGNAL);
	free(body);
}

static void *ctl_main(void *arg)
{
	struct rnbd_srv_ctl *K = arg;

	while (!atomic_load(&K->stop)) {
		struct pollfd pf = { .fd = K->lfd, .events = POLLIN };
		int fd;

		if (poll(&pf, 1, 200) <= 0)
			continue;
		fd = accept4(K->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		ctl_serve(K->srv, fd);
		close(fd);
	}
	return NULL;
}

int rnbd_srv_ctl_start(struct rnbd_srv *srv, const char *path,
		       struct rnbd_srv_ctl **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct rnbd_srv_ctl *K;
	mode_t um;
	int ret;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	K = calloc(1, sizeof(*K));
	if (!K)
		return -ENOMEM;
	K->srv = srv;
	K->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (K->lfd < 0) {
		ret = -errno;
		free(K);
		return ret;
	}
	um = umask(0077);
	ret = bind(K->lfd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(um);
	if (!ret && listen(K->lfd, 16))
		ret = -errno;
	if (!ret) {
		snprintf(K->path, sizeof(K->path), "%s", path);
		ret = -pthread_create(&K->thr, NULL, ctl_main, K);
		if (ret)
			unlink(K->path);
	}
	if (ret) {
		close(K->lfd);
		free(K);
		return ret;
	}
	*out = K;
	return 0;
}

void rnbd_srv_ctl_stop(struct rnbd_srv_ctl *K)
{
	if (!K)
		return;
	atomic_store(&K->stop, true);
	pthread_join(K->thr, NULL);
	close(K->lfd);
	unlink(K->path);
	free(K);
}
