// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rtrsctl: list and control the librtrs sessions of running processes
 * through their control sockets (rtrs_ctl_run_dir()/<pid>.sock).
 *
 *   rtrsctl [--json] [--pid PID] [--dir DIR] COMMAND [ARGS]
 *
 * Exit status: 0 success, 1 the command failed, 2 bad usage or no process.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rtrs/rtrs.h"

#define MAX_PROCS 1024
#define RESP_TIMEOUT_MS 60000   /* add-path/remove-path may block a while */

static void usage(FILE *f)
{
	fprintf(f,
"usage: rtrsctl [--json] [--pid PID] [--dir DIR] COMMAND [ARGS]\n"
"       rtrsctl --help | --version\n"
"commands:\n"
"  list                           processes, sessions and paths\n"
"  stats [SESSION]                statistics (kernel sysfs names)\n"
"  add-path SESSION [SRC@]DST     add a path and connect it\n"
"  remove-path SESSION PATH       drain, close and remove a path\n"
"  disconnect SESSION PATH        close a path and keep it down\n"
"  reconnect SESSION PATH         reconnect a path now\n"
"  policy SESSION [POLICY]        show or set: round-robin|rr|0,\n"
"                                 min-inflight|mi|1, min-latency|ml|2\n"
"  max-reconnect-attempts SESSION [N]\n"
"                                 show or set: -1|forever, 0|never, N\n"
"  reset-stats SESSION            zero the session's counters\n"
"  server-disconnect SESSION ID   close server path ID (see stats)\n"
"  server-reset-stats             zero the listeners' counters\n"
"Options go before COMMAND.\n"
"PATH is the client path index; sockets are in $RTRS_RUN_DIR, /run/rtrs\n"
"(root) or $XDG_RUNTIME_DIR/rtrs.\n");
}

/* Send @req to process @pid; the body goes to *@body (malloc'ed).
 * Returns the command's status, or -errno when the socket fails. */
static int call(const char *dir, int pid, const char *req, char **body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t cap = 4096, n = 0;
	char *buf;
	int fd, st = -EPROTO;

	*body = NULL;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d.sock",
			     dir, pid) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		st = -errno;
		close(fd);
		return st;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		st = -errno;
		close(fd);
		return st;
	}
	buf = malloc(cap);
	while (buf) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (n + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		if (poll(&pf, 1, RESP_TIMEOUT_MS) <= 0) {
			st = -ETIMEDOUT;
			break;
		}
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			char *nl;

			buf[n] = 0;
			nl = strchr(buf, '\n');
			if (nl && sscanf(buf, "status %d", &st) == 1) {
				*body = strdup(nl + 1);
			} else {
				st = -EPROTO;
			}
			break;
		}
		n += (size_t)r;
	}
	free(buf);
	close(fd);
	return st;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* pids with a socket in @dir, sorted */
static int scan(const char *dir, int *pids, int max)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		char *end;
		long v = strtol(de->d_name, &end, 10);

		if (end != de->d_name && !strcmp(end, ".sock") && v > 0)
			pids[n++] = (int)v;
	}
	closedir(d);
	qsort(pids, (size_t)n, sizeof(int), cmp_int);
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char dir[256], req[1024], *body;
	int pids[MAX_PROCS], npids, pid = 0, c, ret, nok = 0, nfound = 0;
	bool json = false, dump;
	size_t off;

	if (rtrs_ctl_run_dir(dir, sizeof(dir)))
		dir[0] = 0;
	while ((c = getopt_long(argc, argv, "+jp:d:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'p': pid = atoi(optarg); break;
		case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rtrsctl %s\n", RTRS_VERSION_STRING); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (!dir[0]) {
		fprintf(stderr, "rtrsctl: no run directory: set RTRS_RUN_DIR or "
			"XDG_RUNTIME_DIR, or use --dir\n");
		return 2;
	}
	off = (size_t)snprintf(req, sizeof(req), "%s", json ? "json" : "text");
	for (int i = optind; i < argc; i++) {
		if (strpbrk(argv[i], " \t\n") || off + strlen(argv[i]) + 3 >=
		    sizeof(req)) {
			fprintf(stderr, "rtrsctl: bad argument '%s'\n", argv[i]);
			return 2;
		}
		off += (size_t)snprintf(req + off, sizeof(req) - off, " %s",
					argv[i]);
	}
	snprintf(req + off, sizeof(req) - off, "\n");
	dump = !strcmp(argv[optind], "list") || !strcmp(argv[optind], "stats");

	if (pid) {
		pids[0] = pid;
		npids = 1;
	} else {
		npids = scan(dir, pids, MAX_PROCS);
		if (npids < 0) {
			fprintf(stderr, "rtrsctl: %s: %s\n", dir,
				strerror(-npids));
			return 2;
		}
	}

	if (dump) {
		if (json)
			printf("{\"processes\":[");
		for (int i = 0; i < npids; i++) {
			ret = call(dir, pids[i], req, &body);
			/* -ENOENT: no such session there, or the socket went;
			 * -ECONNREFUSED: a stale socket of a dead process */
			if (ret < 0) {
				if (pid || (ret != -ECONNREFUSED && ret != -ENOENT))
					fprintf(stderr, "rtrsctl: process %d: %s\n",
						pids[i], strerror(-ret));
				free(body);
				continue;
			}
			if (json && nok)
				printf(",");
			fputs(body ? body : "", stdout);
			free(body);
			nok++;
		}
		if (json)
			printf("]}\n");
		if (argc - optind == 2 && !nok) {
			fprintf(stderr, "rtrsctl: no session %s\n", argv[optind + 1]);
			return 1;
		}
		return 0;
	}

	/* to every process (or --pid): each one with a listener resets it */
	if (!strcmp(argv[optind], "server-reset-stats")) {
		if (argc - optind != 1) {
			usage(stderr);
			return 2;
		}
		ret = -ENOENT;
		for (int i = 0; i < npids; i++) {
			int r = call(dir, pids[i], req, &body);

			free(body);
			if (!r)
				nok++;
			else if (r != -ENOENT && (pid || r != -ECONNREFUSED))
				ret = r;
		}
		if (!nok) {
			fprintf(stderr, "rtrsctl: server-reset-stats: %s\n",
				ret == -ENOENT ? "no listener" : strerror(-ret));
			return 1;
		}
		return 0;
	}
	if (argc - optind < 2) {
		usage(stderr);
		return 2;
	}
	/* a verb goes to the one process that has the session */
	if (!pid && strcmp(argv[optind], "server-disconnect")) {
		char has[512];
		int owner = 0;

		snprintf(has, sizeof(has), "text has %s\n", argv[optind + 1]);
		for (int i = 0; i < npids; i++) {
			if (call(dir, pids[i], has, &body) == 0) {
				owner = pids[i];
				nfound++;
			}
			free(body);
		}
		if (nfound > 1) {
			fprintf(stderr, "rtrsctl: session %s is in %d processes; "
				"use --pid\n", argv[optind + 1], nfound);
			return 2;
		}
		if (!nfound) {
			fprintf(stderr, "rtrsctl: no client session %s\n",
				argv[optind + 1]);
			return 1;
		}
		pids[0] = owner;
		npids = 1;
	}
	ret = -ENOENT;
	for (int i = 0; i < npids && ret == -ENOENT; i++) {
		ret = call(dir, pids[i], req, &body);
		if (!ret && body)
			fputs(body, stdout);
		free(body);
	}
	if (ret) {
		fprintf(stderr, "rtrsctl: %s %s: %s\n", argv[optind],
			argv[optind + 1], strerror(-ret));
		return 1;
	}
	return 0;
}
