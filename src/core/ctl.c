// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The control socket: what the kernel exposes in sysfs, a librtrs process
 * serves on a Unix socket, $RTRS_RUN_DIR/<pid>.sock (see rtrsctl(8)).
 *
 * It exists while at least one session or listener that did not set
 * ctl_disable is open. One library thread accepts, checks that the peer
 * runs as our user (or root), reads one request line and writes one answer:
 *
 *   request: "<text|json> <verb> [arg ...]\n"
 *   answer:  "status <0 or -errno>\n" followed by the body
 *
 * Commands run on that thread with the registry lock held, so a session
 * cannot be closed under a command (rtrs_clt_close() unregisters first and
 * waits for a running command).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"
#include "registry.h"
#include "util/log.h"

#define CTL_LINE_MAX 1024
#define CTL_ARGS_MAX 8
#define CTL_READ_MS 2000

static struct {
	bool running;
	int lfd, wake[2];
	pthread_t thread;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} C = {
	.lfd = -1,
	.wake = { -1, -1 },
};

int rtrs_ctl_run_dir(char *buf, size_t len)
{
	const char *e = getenv("RTRS_RUN_DIR");
	int n;

	if (!buf || !len)
		return -EINVAL;
	if (e && *e)
		n = snprintf(buf, len, "%s", e);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/rtrs");
	else if ((e = getenv("XDG_RUNTIME_DIR")) && *e)
		n = snprintf(buf, len, "%s/rtrs", e);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- output helpers ---- */

static void rtrs__ctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *policy_name(int p)
{
	switch (p) {
	case RTRS_MP_POLICY_RR: return "round-robin";
	case RTRS_MP_POLICY_MIN_INFLIGHT: return "min-inflight";
	case RTRS_MP_POLICY_MIN_LATENCY: return "min-latency";
	}
	return "unknown";
}

/* The kernel's mpath_policy spellings: 0/1/2, round-robin|rr,
 * min-inflight|mi, min-latency|ml (any case). */
static int policy_parse(const char *s)
{
	static const char *const names[][3] = {
		{ "0", "round-robin", "rr" },
		{ "1", "min-inflight", "mi" },
		{ "2", "min-latency", "ml" },
	};

	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (!strcasecmp(s, names[i][j]))
				return i;
	return -EINVAL;
}

/* The name of client session @s, into @buf. */
static const char *clt_name(struct rtrs_clt_sess *s,
			    char buf[RTRS_SESSNAME_MAX + 1])
{
	if (rtrs_clt_get_sess_name(s, buf, RTRS_SESSNAME_MAX + 1))
		buf[0] = 0;
	return buf;
}

/* @s, each line after @indent (the formatters' TEXT forms). */
static void put_lines(FILE *f, const char *indent, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, "\n");

		fprintf(f, "%s%.*s\n", indent, (int)n, s);
		s += n + (s[n] == '\n');
	}
}

/* A client session's own lines (dump_clt()). */
static void dump_clt_head(FILE *f, struct rtrs_clt_sess *s, bool json,
			  bool full)
{
	char name[RTRS_SESSNAME_MAX + 1], b[RTRS_FMT_BUF], h[RTRS_FMT_BUF];
	struct rtrs_clt_stats st;
	int pol = rtrs_clt_get_policy(s);

	clt_name(s, name);
	rtrs_clt_get_stats(s, &st);
	rtrs_clt_stats_fmt(&st, b, sizeof(b), json ? RTRS_FMT_JSON :
			   full ? RTRS_FMT_TEXT : RTRS_FMT_LINE);
	if (json) {
		fprintf(f, "{\"name\":");
		rtrs__ctl_json_str(f, name);
		fprintf(f, ",\"mpath_policy\":\"%s\",\"max_reconnect_attempts\":%d,"
			"\"stats\":%s,\"paths\":[", policy_name(pol),
			rtrs_clt_get_max_reconnect_attempts(s), b);
	} else if (full) {
		fprintf(f, "client session %s\n  mpath_policy: %s (%s: %d)\n"
			"  max_reconnect_attempts: %d\n", name, policy_name(pol),
			pol == 0 ? "RR" : pol == 1 ? "MI" : "ML", pol,
			rtrs_clt_get_max_reconnect_attempts(s));
		put_lines(f, "  ", b);
	} else {
		rtrs_path_info_fmt(NULL, h, sizeof(h),
				   RTRS_FMT_LINE | RTRS_FMT_HEAD);
		fprintf(f, "client %s  policy %s  %s\n  %s %-14s %s\n", name,
			policy_name(pol), b, h, "PROV/DOMAIN", "LOCAL");
	}
}

/* One path of a client session (dump_clt()): the formatter's form of its
 * info, then its link. */
static void dump_clt_path(FILE *f, const struct rtrs_path_info *in,
			  const struct rtrs_path_link *ln, bool json,
			  bool full, bool first)
{
	char b[RTRS_FMT_BUF];

	rtrs_path_info_fmt(in, b, sizeof(b),
			   json ? RTRS_FMT_JSON | RTRS_FMT_OPEN :
			   full ? RTRS_FMT_TEXT : RTRS_FMT_LINE);
	if (json) {
		fprintf(f, "%s%s,\"provider\":", first ? "" : ",", b);
		rtrs__ctl_json_str(f, ln->provider);
		fprintf(f, ",\"hca_name\":");
		rtrs__ctl_json_str(f, ln->domain);
		fprintf(f, ",\"src_resolved\":");
		rtrs__ctl_json_str(f, ln->src_resolved);
		fputc('}', f);
	} else if (full) {
		/* the kernel's sysfs file names and formats */
		fprintf(f, "  path %u\n", in->idx);
		put_lines(f, "    ", b);
		fprintf(f, "    provider: %s\n    hca_name: %s\n"
			"    src_resolved: %s\n",
			*ln->provider ? ln->provider : "-",
			*ln->domain ? ln->domain : "-",
			*ln->src_resolved ? ln->src_resolved : "-");
	} else {
		char pd[sizeof(ln->provider) + sizeof(ln->domain)];

		snprintf(pd, sizeof(pd), "%s/%s", ln->provider, ln->domain);
		fprintf(f, "  %s %-14s %s\n", b, pd,
			*ln->src_resolved ? ln->src_resolved : "-");
	}
}

static void dump_clt(FILE *f, struct rtrs_clt_sess *s, bool json, bool full)
{
	struct rtrs_path_info in;
	struct rtrs_path_link ln;
	int slots = rtrs_clt_path_slots(s);
	bool first = true;

	dump_clt_head(f, s, json, full);
	for (int i = 0; i < slots; i++) {
		if (rtrs_clt_path_info(s, (unsigned)i, &in) ||
		    rtrs_clt_path_link(s, (unsigned)i, &ln, sizeof(ln)))
			continue;
		dump_clt_path(f, &in, &ln, json, full, first);
		first = false;
	}
	if (json)
		fprintf(f, "]}");
}

/* A server's listening addresses and counters (not with a session @name
 * in text). */
static void dump_srv_head(FILE *f, struct rtrs_srv_ctx *ctx, bool json,
			  const char *name)
{
	struct rtrs_srv_stats st;
	struct rtrs_srv_limit_stats ls = { .size = sizeof(ls) };
	char addr[160], b[RTRS_FMT_BUF];
	int ret;

	if (json)
		fprintf(f, "{\"listen\":[");
	else if (!name)
		fprintf(f, "server");
	for (size_t i = 0; !(name && !json); i++) {
		ret = rtrs_srv_get_listen_addr(ctx, i, addr, sizeof(addr));
		if (ret == -ENOENT)
			break;
		if (ret)
			snprintf(addr, sizeof(addr), "?");
		if (json) {
			fprintf(f, "%s", i ? "," : "");
			rtrs__ctl_json_str(f, addr);
		} else {
			fprintf(f, " %s", addr);
		}
	}
	if (!json && name)
		return;
	rtrs_srv_get_stats(ctx, &st);
	rtrs_srv_get_limit_stats(ctx, &ls);
	rtrs_srv_stats_fmt(&st, b, sizeof(b),
			   json ? RTRS_FMT_JSON | RTRS_FMT_OPEN : RTRS_FMT_TEXT);
	if (json) {
		fprintf(f, "],\"stats\":%s,", b);
	} else {
		fputc('\n', f);
		put_lines(f, "  ", b);
	}
	/* what the limits did (struct rtrs_srv_limit_stats) */
	fprintf(f, json ? "\"handshake_timeouts\":%llu,"
		"\"refused_sessions\":%llu,\"refused_paths\":%llu,"
		"\"refused_conns\":%llu,\"refused_pending\":%llu,"
		"\"accept_shed\":%llu,\"pending\":%llu,\"conns\":%llu}"
		: "  handshake_timeouts %llu  refused: sessions %llu "
		"paths %llu conns %llu pending %llu  accept_shed %llu"
		"  pending %llu  conns %llu\n",
		(unsigned long long)ls.handshake_timeouts,
		(unsigned long long)ls.refused_sessions,
		(unsigned long long)ls.refused_paths,
		(unsigned long long)ls.refused_conns,
		(unsigned long long)ls.refused_pending,
		(unsigned long long)ls.accept_shed,
		(unsigned long long)ls.pending,
		(unsigned long long)ls.conns);
}

static void dump_srv_sess(FILE *f, const struct rtrs_srv_sess_info *s,
			  const struct rtrs_srv_path_info *path, bool json,
			  bool first)
{
	if (json) {
		fprintf(f, "%s{\"name\":", first ? "" : ",");
		rtrs__ctl_json_str(f, s->name);
		fprintf(f, ",\"queue_depth\":%u,\"read_cnt\":%llu,"
			"\"read_bytes\":%llu,\"write_cnt\":%llu,"
			"\"write_bytes\":%llu,\"paths\":[", s->queue_depth,
			(unsigned long long)s->read_cnt,
			(unsigned long long)s->read_bytes,
			(unsigned long long)s->write_cnt,
			(unsigned long long)s->write_bytes);
	} else {
		fprintf(f, "server session %s  queue_depth %u  paths %u%s\n"
			"  rdma: %llu %llu %llu %llu\n",
			s->name, s->queue_depth, s->npaths,
			s->npaths ? "" : " (lingering)",
			(unsigned long long)s->read_cnt,
			(unsigned long long)s->read_bytes,
			(unsigned long long)s->write_cnt,
			(unsigned long long)s->write_bytes);
	}
	for (uint32_t i = 0; i < s->npaths; i++) {
		const struct rtrs_srv_path_info *p = &path[s->first_path + i];
		const char *st = rtrs_path_state_str(p->state);

		if (json) {
			fprintf(f, "%s{\"id\":%u,\"state\":\"%s\","
				"\"src_addr\":", i ? "," : "", p->id, st);
			rtrs__ctl_json_str(f, p->src);
			fprintf(f, ",\"read_cnt\":%llu,\"read_bytes\":%llu,"
				"\"write_cnt\":%llu,\"write_bytes\":%llu}",
				(unsigned long long)p->read_cnt,
				(unsigned long long)p->read_bytes,
				(unsigned long long)p->write_cnt,
				(unsigned long long)p->write_bytes);
		} else {
			fprintf(f, "  path %u\n    state: %s\n"
				"    src_addr: %s\n"
				"    stats/rdma: %llu %llu %llu %llu\n",
				p->id, st, p->src,
				(unsigned long long)p->read_cnt,
				(unsigned long long)p->read_bytes,
				(unsigned long long)p->write_cnt,
				(unsigned long long)p->write_bytes);
		}
	}
	if (json)
		fprintf(f, "]}");
}

/* A server listener: its head, then its sessions (only @name if set);
 * how many sessions were printed, or -ENOMEM. */
static int dump_srv(FILE *f, struct rtrs_srv_ctx *ctx, bool json,
		    const char *name)
{
	struct rtrs_srv_sess_info *sess = NULL;
	struct rtrs_srv_path_info *path = NULL;
	size_t ns = 8, np = 32, cs, cp;
	int ret;

	/* a snapshot; sessions may come between two tries: grow and retry */
	do {
		free(sess);
		free(path);
		cs = ns + 8;
		cp = np + 32;
		sess = calloc(cs, sizeof(*sess));
		path = calloc(cp, sizeof(*path));
		if (!sess || !path) {
			free(sess);
			free(path);
			return -ENOMEM;
		}
		ns = cs;
		np = cp;
		ret = rtrs_srv_sess_info(ctx, name, sess, &ns, path, &np);
	} while (ret == -ENOSPC);
	dump_srv_head(f, ctx, json, name);
	if (json)
		fprintf(f, ",\"sessions\":[");
	for (size_t i = 0; !ret && i < ns; i++)
		dump_srv_sess(f, &sess[i], path, json, i == 0);
	if (json)
		fprintf(f, "]}");
	free(sess);
	free(path);
	return ret ? ret : (int)ns;
}

/* list / stats: every registered object, optionally only sessions @name. */
static int cmd_dump(FILE *f, bool json, bool full, const char *name)
{
	enum rtrs_reg_kind k;
	char comm[64] = "";
	int first_c = 1, first_s = 1, found = 0;
	FILE *cf = fopen("/proc/self/comm", "re");

	if (cf) {
		if (fgets(comm, sizeof(comm), cf))
			comm[strcspn(comm, "\n")] = 0;
		fclose(cf);
	}
	if (json) {
		fprintf(f, "{\"pid\":%d,\"comm\":", (int)getpid());
		rtrs__ctl_json_str(f, comm);
		fprintf(f, ",\"clients\":[");
	} else {
		fprintf(f, "process %d (%s)\n", (int)getpid(), comm);
	}
	for (void *o = rtrs__reg_next(NULL, &k); o; o = rtrs__reg_next(o, &k)) {
		struct rtrs_clt_sess *s = o;
		char nm[RTRS_SESSNAME_MAX + 1];

		if (k != RTRS_REG_CLT ||
		    (name && strcmp(name, clt_name(s, nm))))
			continue;
		if (json && !first_c)
			fputc(',', f);
		dump_clt(f, s, json, full);
		first_c = 0;
		found++;
	}
	if (json)
		fprintf(f, "],\"servers\":[");
	for (void *o = rtrs__reg_next(NULL, &k); o; o = rtrs__reg_next(o, &k)) {
		int n;

		if (k != RTRS_REG_SRV)
			continue;
		if (json && !first_s)
			fputc(',', f);
		n = dump_srv(f, o, json, name);
		if (n < 0)
			return n;
		if (json || n > 0 || !name)
			first_s = 0;
		found += n;
	}
	if (json)
		fprintf(f, "]}\n");
	return name && !found ? -ENOENT : 0;
}

static struct rtrs_clt_sess *find_clt(const char *name)
{
	enum rtrs_reg_kind k;

	for (void *o = rtrs__reg_next(NULL, &k); o; o = rtrs__reg_next(o, &k)) {
		char nm[RTRS_SESSNAME_MAX + 1];

		if (k == RTRS_REG_CLT && !strcmp(clt_name(o, nm), name))
			return o;
	}
	return NULL;
}

static int parse_idx(const char *a, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!a || *a < '0' || *a > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(a, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* max_reconnect_attempts: an integer >= -1, or forever (-1), never (0) */
static int parse_attempts(const char *a, int *out)
{
	char *end;
	long v;

	if (!strcasecmp(a, "forever")) {
		*out = -1;
		return 0;
	}
	if (!strcasecmp(a, "never")) {
		*out = 0;
		return 0;
	}
	errno = 0;
	v = strtol(a, &end, 10);
	if (errno || end == a || *end || v < -1 || v > INT32_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* "[src@]dst", also "src,dst" as the kernel's add_path accepts */
static int parse_path(char *a, struct rtrs_path_addr *pa)
{
	char *sep = strpbrk(a, "@,");

	pa->src = NULL;
	pa->dst = a;
	if (sep) {
		*sep = 0;
		pa->src = a;
		pa->dst = sep + 1;
	}
	return *pa->dst && (!pa->src || *pa->src) ? 0 : -EINVAL;
}

static int cmd_run(FILE *f, int argc, char **argv)
{
	struct rtrs_clt_sess *s;
	struct rtrs_path_addr pa;
	unsigned idx;
	bool json;
	int ret;

	if (argc < 2)
		return -EINVAL;
	if (!strcmp(argv[0], "json"))
		json = true;
	else if (!strcmp(argv[0], "text"))
		json = false;
	else
		return -EINVAL;
	if (!strcmp(argv[1], "list") && argc == 2)
		return cmd_dump(f, json, false, NULL);
	if (!strcmp(argv[1], "stats") && argc <= 3)
		return cmd_dump(f, json, true, argc == 3 ? argv[2] : NULL);
	if (!strcmp(argv[1], "server-disconnect") && argc == 4) {
		enum rtrs_reg_kind k;

		if (parse_idx(argv[3], &idx))
			return -EINVAL;
		ret = -ENOENT;
		for (void *o = rtrs__reg_next(NULL, &k); o;
		     o = rtrs__reg_next(o, &k)) {
			if (k == RTRS_REG_SRV && ret == -ENOENT)
				ret = rtrs_srv_close_path(o, argv[2], idx);
		}
		return ret;
	}
	if (!strcmp(argv[1], "server-reset-stats") && argc == 2) {
		enum rtrs_reg_kind k;

		ret = -ENOENT;
		for (void *o = rtrs__reg_next(NULL, &k); o;
		     o = rtrs__reg_next(o, &k)) {
			if (k == RTRS_REG_SRV)
				ret = rtrs_srv_reset_stats(o);
		}
		return ret;
	}
	if (argc < 3)
		return -EINVAL;
	s = find_clt(argv[2]);
	if (!s)
		return -ENOENT;
	if (!strcmp(argv[1], "has") && argc == 3)
		return 0;
	if (!strcmp(argv[1], "reset-stats") && argc == 3)
		return rtrs_clt_reset_stats(s);
	if (!strcmp(argv[1], "policy") && argc == 3) {
		fprintf(f, "%s\n", policy_name(rtrs_clt_get_policy(s)));
		return 0;
	}
	if (!strcmp(argv[1], "policy") && argc == 4) {
		ret = policy_parse(argv[3]);
		return ret < 0 ? ret
			       : rtrs_clt_set_policy(s, (enum rtrs_mp_policy)ret);
	}
	if (!strcmp(argv[1], "max-reconnect-attempts") && argc == 3) {
		ret = rtrs_clt_get_max_reconnect_attempts(s);
		if (ret < -1)
			return ret;
		fprintf(f, json ? "{\"max_reconnect_attempts\":%d}\n" : "%d\n",
			ret);
		return 0;
	}
	if (!strcmp(argv[1], "max-reconnect-attempts") && argc == 4) {
		int n;

		if (parse_attempts(argv[3], &n))
			return -EINVAL;
		return rtrs_clt_set_max_reconnect_attempts(s, n);
	}
	if (!strcmp(argv[1], "add-path") && argc == 4) {
		if (parse_path(argv[3], &pa))
			return -EINVAL;
		ret = rtrs_clt_add_path(s, &pa, &idx);
		if (!ret)
			fprintf(f, "%u\n", idx);
		return ret;
	}
	if (argc != 4)
		return -EINVAL;
	if (parse_idx(argv[3], &idx))
		return -EINVAL;
	if (!strcmp(argv[1], "remove-path"))
		return rtrs_clt_remove_path(s, idx);
	if (!strcmp(argv[1], "disconnect"))
		return rtrs_clt_disconnect_path(s, idx);
	if (!strcmp(argv[1], "reconnect"))
		return rtrs_clt_reconnect_path(s, idx);
	return -EINVAL;
}

/* Read one line within CTL_READ_MS; 0 or -errno. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	uint64_t end = rtrs_now_ms() + CTL_READ_MS;

	while (n < cap - 1) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		uint64_t now = rtrs_now_ms();
		ssize_t r;

		if (now >= end)
			return -ETIMEDOUT;
		if (poll(&pf, 1, (int)(end - now)) <= 0)
			continue;
		r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EPROTO;
		n += (size_t)r;
		buf[n] = 0;
		if (memchr(buf, '\n', n)) {
			buf[strcspn(buf, "\n")] = 0;
			return 0;
		}
	}
	return -EMSGSIZE;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void serve(int fd)
{
	char line[CTL_LINE_MAX], *argv[CTL_ARGS_MAX], *save = NULL, *body = NULL;
	char head[32];
	size_t blen = 0;
	struct ucred cr;
	socklen_t crl = sizeof(cr);
	int argc = 0, ret;
	FILE *f;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) ||
	    (cr.uid != geteuid() && cr.uid != 0)) {
		snprintf(head, sizeof(head), "status %d\n", -EACCES);
		write_all(fd, head, strlen(head));
		return;
	}
	ret = read_line(fd, line, sizeof(line));
	f = open_memstream(&body, &blen);
	if (!f)
		return;
	if (!ret) {
		for (char *t = strtok_r(line, " \t", &save);
		     t && argc < CTL_ARGS_MAX; t = strtok_r(NULL, " \t", &save))
			argv[argc++] = t;
		rtrs__reg_lock();
		ret = cmd_run(f, argc, argv);
		rtrs__reg_unlock();
	}
	fclose(f);
	snprintf(head, sizeof(head), "status %d\n", ret);
	write_all(fd, head, strlen(head));
	if (body)
		write_all(fd, body, blen);
	free(body);
}

static void *ctl_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = C.lfd, .events = POLLIN },
			{ .fd = C.wake[0], .events = POLLIN },
		};
		int fd;

		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & POLLIN))
			continue;
		fd = accept4(C.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* at the open-file limit the socket stays readable:
			 * back off instead of spinning, the client waits */
			poll(&pf[1], 1, 100);
			continue;
		}
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
	return NULL;
}

/* Create the directory (0700) or accept an existing one that only we own. */
static int dir_ready(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022))
		return -EPERM;
	return 0;
}

static int ctl_start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sigset_t all, old;
	char dir[sizeof(sa.sun_path)];
	int ret, n;

	ret = rtrs_ctl_run_dir(dir, sizeof(dir));
	if (!ret)
		ret = dir_ready(dir);
	if (ret)
		return ret;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d.sock", dir,
		     (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	unlink(sa.sun_path);            /* left by a process with our pid */
	C.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (C.lfd < 0)
		return -errno;
	if (bind(C.lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(sa.sun_path, 0600) || listen(C.lfd, 8) ||
	    pipe2(C.wake, O_CLOEXEC)) {
		ret = -errno;
		goto err;
	}
	snprintf(C.path, sizeof(C.path), "%s", sa.sun_path);
	/* the library's thread takes no signals meant for the application */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&C.thread, NULL, ctl_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		return 0;
err:
	unlink(sa.sun_path);
	close(C.lfd);
	C.lfd = -1;
	for (int i = 0; i < 2; i++) {
		if (C.wake[i] >= 0)
			close(C.wake[i]);
		C.wake[i] = -1;
	}
	C.path[0] = 0;
	return ret;
}

static void ctl_stop(void)
{
	char b = 1;

	if (write(C.wake[1], &b, 1) != 1)
		rtrs_warn("ctl: cannot wake the control thread");
	pthread_join(C.thread, NULL);
	unlink(C.path);
	close(C.lfd);
	close(C.wake[0]);
	close(C.wake[1]);
	C.lfd = C.wake[0] = C.wake[1] = -1;
	C.path[0] = 0;
}

static bool ctl_env_disabled(void)
{
	const char *e = getenv("RTRS_CTL");

	return e && !strcmp(e, "0");
}

/* The registry's hook (registry.h), with its life lock held: start the
 * socket with the first object (or the first after a failed start), stop
 * it with the last. */
static void ctl_added(unsigned n)
{
	int ret;

	(void)n;
	if (C.running || ctl_env_disabled())
		return;
	ret = ctl_start();
	if (ret == -ENOENT)     /* no run directory for this user */
		rtrs_info("ctl: no control socket: set RTRS_RUN_DIR "
			  "or XDG_RUNTIME_DIR");
	else if (ret)
		rtrs_warn("ctl: no control socket: %s", rtrs_strerror(ret));
	else
		C.running = true;
}

static void ctl_removed(unsigned n)
{
	if (!n && C.running) {
		ctl_stop();
		C.running = false;
	}
}

static const struct rtrs__reg_hook ctl_hook = {
	.added = ctl_added,
	.removed = ctl_removed,
};

/* When the library loads: the control socket hears of every session and
 * server context from then on.  (A static link pulls this file in by
 * rtrs_ctl_run_dir: -Wl,--undefined in librtrs.pc and the CMake package.) */
__attribute__((constructor)) static void ctl_init(void)
{
	rtrs__reg_set_hook(&ctl_hook);
}
