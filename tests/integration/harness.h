/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Integration harness: the server runs as a separate process
 * (rtrs-perf server, path in $RTRS_PERF), started on the first test
 * address, port 0; its first stdout line tells the bound address. Tests
 * exit 0 (pass), 1 (fail) or 77 (skip), and print "N passed, N failed".
 *
 * The test addresses: $RTRS_TEST_ADDRS "A1,A2" (the RDMA lab: server
 * addresses on two of its wires), default 127.0.0.1 and 127.0.0.2.
 */
#ifndef RTRS_TEST_HARNESS_H
#define RTRS_TEST_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rtrs/rtrs.h"

static int t_passed, t_failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			t_passed++;                                          \
		} else {                                                     \
			t_failed++;                                          \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
				__LINE__, #cond);                            \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
		}                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		CHECK(a_ == b_, "%lld != %lld", a_, b_);                     \
	} while (0)

/* In a forked server, before exec: die with the test. A test that crashes
 * or hits its ctest timeout must not leave its server behind. (Every test
 * forks from its main thread, which lives as long as the test.) */
static inline void t_child_dies_with_parent(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
}

/* Test address @i (0 or 1), "host" without a port. */
static inline const char *t_addr(int i)
{
	static char a[2][64];
	static int init;

	if (!init) {
		const char *e = getenv("RTRS_TEST_ADDRS");
		const char *comma = e ? strchr(e, ',') : NULL;

		snprintf(a[0], sizeof(a[0]), "127.0.0.1");
		snprintf(a[1], sizeof(a[1]), "127.0.0.2");
		if (e && *e) {
			snprintf(a[0], sizeof(a[0]), "%.*s",
				 comma ? (int)(comma - e) : (int)strlen(e), e);
			if (comma && comma[1])
				snprintf(a[1], sizeof(a[1]), "%s", comma + 1);
		}
		init = 1;
	}
	return a[i & 1];
}

/*
 * A source address from which test address @i is reached: on loopback the
 * address itself; in the RDMA lab the client's end of its wire (a server
 * address as the source would be a loopback through one device, which
 * rxe does not carry).
 */
static inline const char *t_src(int i)
{
	static const char *const wire[][2] = {
		{ "LAB_RXE_SRV", "LAB_RXE_CLT" },
		{ "LAB_SIW_SRV", "LAB_SIW_CLT" },
		{ "LAB_RXE2_SRV", "LAB_RXE2_CLT" },
	};
	const char *h = t_addr(i);

	for (size_t w = 0; w < sizeof(wire) / sizeof(wire[0]); w++) {
		const char *srv = getenv(wire[w][0]), *clt = getenv(wire[w][1]);

		if (srv && clt && !strcmp(h, srv))
			return clt;
	}
	return h;
}

/* "host:0" on test address @i, for a listener. */
static inline const char *t_listen(int i)
{
	static char l[2][160];

	snprintf(l[i & 1], sizeof(l[i & 1]), "%s:0", t_addr(i));
	return l[i & 1];
}

struct t_server {
	pid_t pid;
	char addr[128];
	FILE *out;
};

/*
 * Run argv[0] with @argv (NULL-ended) as a child that dies with us; its
 * stdout is the returned stream (NULL when the pipe or fork failed, then
 * *pid is -1).
 */
static inline FILE *t_spawn(const char *const *argv, pid_t *pid)
{
	pid_t parent = getpid();
	int fds[2];
	FILE *out;

	*pid = -1;
	if (pipe(fds))
		return NULL;
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (*pid == 0) {
		t_child_dies_with_parent(parent);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	out = fdopen(fds[0], "r");
	if (!out)
		close(fds[0]);
	return out;
}

/* Start "rtrs-perf server --listen ADDR1:0 [extra...]" (NULL-ended). */
static inline int t_server_start(struct t_server *s, ...)
{
	const char *perf = getenv("RTRS_PERF");
	const char *argv[32];
	int n = 0;
	char line[256];
	va_list ap;

	if (!perf) {
		fprintf(stderr, "RTRS_PERF not set\n");
		return -1;
	}
	argv[n++] = perf;
	argv[n++] = "server";
	argv[n++] = "--listen";
	argv[n++] = t_listen(0);
	argv[n++] = "--size";
	argv[n++] = "64M";
	va_start(ap, s);
	for (const char *a; (a = va_arg(ap, const char *)) && n < 30;)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	s->out = t_spawn(argv, &s->pid);
	if (s->pid < 0)
		return -1;
	if (!s->out || !fgets(line, sizeof(line), s->out) ||
	    sscanf(line, "listening %127s", s->addr) != 1) {
		fprintf(stderr, "server did not start\n");
		kill(s->pid, SIGKILL);
		waitpid(s->pid, NULL, 0);
		return -1;
	}
	return 0;
}

/* Stop with SIGTERM (clean close) or @sig; returns the exit status. */
static inline int t_server_stop(struct t_server *s, int sig)
{
	int st = 0;

	if (s->pid <= 0)
		return -1;
	kill(s->pid, sig);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	if (s->out)
		fclose(s->out);
	s->out = NULL;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Open session @name to @srv (attr may be NULL). A failure is counted and
 * kills the server; the caller then returns t_finish(). */
static inline int t_open(struct t_server *srv, const char *name,
			 const struct rtrs_clt_attr *attr,
			 struct rtrs_clt_sess **out)
{
	struct rtrs_path_addr pa = { .src = NULL, .dst = srv->addr };
	int ret = rtrs_clt_open(name, &pa, 1, attr, out);

	CHECK(ret == 0, "open %s at %s: %s", name, srv->addr, rtrs_strerror(ret));
	if (ret)
		t_server_stop(srv, SIGKILL);
	return ret;
}

/* A pattern that differs per @seed and per 512-byte sector. */
static inline void t_fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* The file at @path holds @b (@n bytes) at @off. */
static inline bool t_file_has(const char *path, const uint8_t *b, size_t n,
			      uint64_t off)
{
	uint8_t *f = malloc(n);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && f && pread(fd, f, n, (off_t)off) == (ssize_t)n &&
		  !memcmp(f, b, n);

	if (fd >= 0)
		close(fd);
	free(f);
	return ok;
}

static inline int t_finish(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed ? 1 : 0;
}

static inline void t_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

#endif
