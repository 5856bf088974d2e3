// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd-server: export files and block devices over librtrs.
 *
 *   rnbd-server --listen ADDR:PORT[,...] [--export NAME=PATH[:ro]]...
 *               [--export-dir DIR] [--config FILE] [--threads N]
 *               [--provider P] [--no-uring] [--no-direct]
 *               [--always-invalidate 0|1]
 *
 * This file holds only the options, the configuration file, the signals
 * and main: the server itself is the library in src/rnbd/ (srv.h; protocol
 * docs/rnbd-protocol.md), its control socket's client side is here.
 * SIGTERM/SIGINT: stop accepting, answer what is in flight, close, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rnbd/srv.h"
#include "rtrs/rtrs.h"

/* what the options and the configuration file say */
struct conf {
	struct rnbd_srv_attr attr;
	struct rnbd_exports *x;
	char *listen;
	char *key_file;
	const char *ctl;                /* --ctl */
	bool json;                      /* --json */
};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	(void)sig;
	stop_sig = 1;
}

/* rnbd-server --ctl PATH [--json] COMMAND...: the client side. Exit
 * status 0, 1 (the command failed), 2 (no server there). */
static int ctl_client(const char *path, bool json, int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[RNBD_SRV_CTL_LINE_MAX], buf[65536];
	size_t n = 0, len;
	int fd, st;
	ssize_t r;
	char *nl;

	len = (size_t)snprintf(req, sizeof(req), "%s", json ? "json" : "text");
	for (int i = 0; i < argc && len < sizeof(req); i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, " %s",
					argv[i]);
	if (len + 1 >= sizeof(req) ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
	    sizeof(sa.sun_path)) {
		fprintf(stderr, "rnbd-server: request too long\n");
		return 2;
	}
	req[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "rnbd-server: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	while (n + 1 < sizeof(buf) &&
	       ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0 ||
		(r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	close(fd);
	buf[n] = 0;
	nl = strchr(buf, '\n');
	if (!nl || sscanf(buf, "status %d", &st) != 1) {
		fprintf(stderr, "rnbd-server: %s: no answer\n", path);
		return 2;
	}
	fputs(nl + 1, stdout);
	if (st) {
		fprintf(stderr, "rnbd-server: %s: %s\n", argv[0], strerror(-st));
		return 1;
	}
	return 0;
}

/* ---- configuration ---- */

/* "on" or "off" into @flag; -EINVAL otherwise. */
static int on_off(const char *val, bool *flag)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return -EINVAL;
	*flag = !strcmp(val, "on");
	return 0;
}

static int config_line(struct conf *c, char *line, const char *where)
{
	char *key = strtok(line, " \t\r\n"), *val = strtok(NULL, " \t\r\n");
	int ret = 0;

	if (!key || key[0] == '#')
		return 0;
	if (!val) {
		fprintf(stderr, "rnbd-server: %s: '%s' needs a value\n", where, key);
		return -EINVAL;
	}
	if (!strcmp(key, "listen")) {
		free(c->listen);
		c->listen = strdup(val);
	} else if (!strcmp(key, "export")) {
		ret = rnbd_exports_add(c->x, val);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: export %s: %s\n", where,
				val, strerror(-ret));
	} else if (!strcmp(key, "key-file")) {
		free(c->key_file);
		c->key_file = strdup(val);
	} else if (!strcmp(key, "acl")) {
		ret = rnbd_exports_acl_add(c->x, val);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: acl %s: not "
				"NAME=ID[:ro|:rw][,ID[:ro|:rw]]...\n", where, val);
	} else if (!strcmp(key, "export-dir")) {
		ret = rnbd_exports_set_dir(c->x, val);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: %s: %s\n", where, val,
				strerror(-ret));
	} else if (!strcmp(key, "direct") || !strcmp(key, "zero-copy")) {
		ret = on_off(val, key[0] == 'd' ? &c->attr.direct
						  : &c->attr.zero_copy);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: %s is on or off, not '%s'\n",
				where, key, val);
	} else if (!strcmp(key, "threads")) {
		c->attr.threads = (unsigned)atoi(val);
		if (!c->attr.threads || c->attr.threads > RNBD_SRV_MAX_THREADS) {
			fprintf(stderr, "rnbd-server: %s: threads is 1..%d, not '%s'\n",
				where, RNBD_SRV_MAX_THREADS, val);
			ret = -EINVAL;
		}
	} else {
		fprintf(stderr, "rnbd-server: %s: unknown key '%s'\n", where, key);
		ret = -EINVAL;
	}
	return ret;
}

static int config_file(struct conf *c, const char *file)
{
	char line[PATH_MAX + 64], where[PATH_MAX + 32];
	FILE *f = fopen(file, "re");
	int n = 0, ret = 0;

	if (!f) {
		fprintf(stderr, "rnbd-server: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		snprintf(where, sizeof(where), "%s:%d", file, ++n);
		ret = config_line(c, line, where);
	}
	fclose(f);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rnbd-server --listen ADDR:PORT[,...] [--export NAME=PATH[:ro]]...\n"
		"                   [--export-dir DIR] [--config FILE] [--threads N]\n"
		"                   [--provider P] [--no-uring] [--no-direct]\n"
		"                   [--no-zero-copy] [--always-invalidate 0|1]\n"
		"                   [--ctl SOCKET] [--handshake-timeout MS]\n"
		"                   [--max-sessions N] [--max-paths N]\n"
		"                   [--max-conns N] [--max-pending N]\n"
		"                   [--key-file FILE] [--acl NAME=ID[:ro|:rw][,...]]...\n"
		"       rnbd-server --ctl SOCKET [--json] list | close-device SESSION EXPORT\n"
		"                                     | close-session SESSION\n"
		"       rnbd-server --help | --version\n");
}

/* The options into @c: 0, 1 (--help, --version: done), or 2 (wrong). */
static int parse_opts(struct conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "export", required_argument, NULL, 'e' },
		{ "export-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "provider", required_argument, NULL, 'p' },
		{ "no-uring", no_argument, NULL, 'U' },
		{ "no-direct", no_argument, NULL, 'D' },
		{ "no-zero-copy", no_argument, NULL, 'Z' },
		{ "always-invalidate", required_argument, NULL, 'I' },
		{ "ctl", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		/* the listener's limits, rtrs_srv_set_limits(3) */
		{ "handshake-timeout", required_argument, NULL, 300 },
		{ "max-sessions", required_argument, NULL, 301 },
		{ "max-paths", required_argument, NULL, 302 },
		{ "max-conns", required_argument, NULL, 303 },
		{ "max-pending", required_argument, NULL, 304 },
		{ "key-file", required_argument, NULL, 305 },
		{ "acl", required_argument, NULL, 306 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct rtrs_srv_limits *lim = &c->attr.limits;
	char line[PATH_MAX + 32];
	int o;

	while ((o = getopt_long(argc, argv, "l:e:d:c:t:p:I:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'l': snprintf(line, sizeof(line), "listen %s", optarg); break;
		case 'e': snprintf(line, sizeof(line), "export %s", optarg); break;
		case 'd': snprintf(line, sizeof(line), "export-dir %s", optarg); break;
		case 't': snprintf(line, sizeof(line), "threads %s", optarg); break;
		case 'c':
			if (config_file(c, optarg))
				return 2;
			continue;
		case 'p': c->attr.rtrs.provider = optarg; continue;
		case 'U': c->attr.uring = false; continue;
		case 'D': snprintf(line, sizeof(line), "direct off"); break;
		case 'Z': snprintf(line, sizeof(line), "zero-copy off"); break;
		case 'I':
			if (strcmp(optarg, "0") && strcmp(optarg, "1")) {
				usage(stderr);
				return 2;
			}
			c->attr.rtrs.always_invalidate = optarg[0] == '1';
			continue;
		case 'C': c->ctl = optarg; continue;
		case 'j': c->json = true; continue;
		case 300: case 301: case 302: case 303: case 304: {
			unsigned int *f[] = { &lim->handshake_ms, &lim->max_sessions,
					      &lim->max_paths, &lim->max_conns,
					      &lim->max_pending };
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v > UINT_MAX) {
				usage(stderr);
				return 2;
			}
			*f[o - 300] = (unsigned int)v;
			continue;
		}
		case 305: snprintf(line, sizeof(line), "key-file %s", optarg); break;
		case 306: snprintf(line, sizeof(line), "acl %s", optarg); break;
		case 'h': usage(stdout); return 1;
		case 'V': printf("rnbd-server %s\n", RTRS_VERSION_STRING); return 1;
		default: usage(stderr); return 2;
		}
		if (config_line(c, line, "command line"))
			return 2;
	}
	return 0;
}

/* Serve until SIGTERM or SIGINT: 0, or 2 when the server cannot start. */
static int serve(struct conf *c)
{
	struct rnbd_srv_ctl *ctl = NULL;
	struct rnbd_srv *srv;
	char *addrs[16], *save = NULL;
	size_t n = 0;
	int ret;

	for (char *t = strtok_r(c->listen, ",", &save); t && n < 16;
	     t = strtok_r(NULL, ",", &save))
		addrs[n++] = t;
	c->attr.addrs = (const char *const *)addrs;
	c->attr.naddrs = n;
	c->attr.key_file = c->key_file;
	ret = rnbd_srv_create(&c->attr, c->x, &srv);
	c->x = NULL;                    /* the server's now */
	if (ret)
		return 2;
	if (c->ctl && (ret = rnbd_srv_ctl_start(srv, c->ctl, &ctl))) {
		fprintf(stderr, "rnbd-server: --ctl %s: %s\n", c->ctl,
			strerror(-ret));
		rnbd_srv_destroy(srv);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		char a[160];

		if (!rnbd_srv_listen_addr(srv, i, a, sizeof(a)))
			printf("listening %s\n", a);
	}
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	while (!stop_sig)
		usleep(50 * 1000);
	fprintf(stderr, "rnbd-server: shutting down\n");
	rnbd_srv_ctl_stop(ctl);
	rnbd_srv_destroy(srv);
	return 0;
}

int main(int argc, char **argv)
{
	struct conf c = { 0 };
	int ret;

	rnbd_srv_attr_init(&c.attr);
	if (rnbd_exports_create(&c.x)) {
		fprintf(stderr, "rnbd-server: %s\n", strerror(ENOMEM));
		return 2;
	}
	ret = parse_opts(&c, argc, argv);
	if (ret) {
		ret = ret == 1 ? 0 : 2;
	} else if (c.ctl && optind < argc && !c.listen) {
		ret = ctl_client(c.ctl, c.json, argc - optind, argv + optind);
	} else if (!c.listen || rnbd_exports_empty(c.x) || optind < argc) {
		usage(stderr);
		ret = 2;
	} else if (rnbd_exports_has_acl(c.x) && !c.key_file) {
		fprintf(stderr, "rnbd-server: --acl needs --key-file: without "
			"keys no client has an identity\n");
		ret = 2;
	} else {
		ret = serve(&c);
	}
	rnbd_exports_destroy(c.x);
	free(c.listen);
	free(c.key_file);
	return ret;
}
