// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rtrs-demo: a server and a client on loopback, verified IO, statistics.
 *
 *   rtrs-demo [--time SEC] [--qd N] [--provider P] [--addr HOST]
 *
 * The server runs in a child process (a memory target, as rtrs-perf's);
 * the client writes stamped blocks of 4 KiB to 128 KiB, reads them back and
 * checks every byte. Exit status 0 only if every request succeeded and
 * every byte read back matched.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "perf_common.h"
#include "rtrs/rtrs.h"

#define STORE (64u << 20)
#define NBLK 256u               /* blocks of up to 128 KiB: 32 MiB */
#define BLK (128u << 10)

/* ---- server child ---- */

static uint8_t *store;
static volatile sig_atomic_t srv_stop;
static void on_term(int s) { (void)s; srv_stop = 1; }

static int srv_ev(void *priv, struct rtrs_srv_op *op, void *data, size_t len,
		  const void *usr, size_t usrlen)
{
	struct perf_hdr h;

	(void)priv;
	if (usrlen < sizeof(h))
		return -EINVAL;
	memcpy(&h, usr, sizeof(h));
	if (h.magic != PERF_MAGIC || h.len != len || h.off > STORE ||
	    STORE - h.off < len)
		return -EINVAL;
	if (h.op == PERF_OP_WRITE && rtrs_srv_op_dir(op) == RTRS_WRITE)
		memcpy(store + h.off, data, len);
	else if (h.op == PERF_OP_READ && rtrs_srv_op_dir(op) == RTRS_READ)
		memcpy(data, store + h.off, len);
	else
		return -EINVAL;
	return rtrs_srv_resp(op, 0);
}

static int run_server(const char *addr, const char *addr2, const char *prov,
		      int fd)
{
	struct rtrs_srv_attr a;
	struct rtrs_srv_ctx *ctx;
	struct rtrs_srv_stats st;
	char bound[2][160];
	const char *addrs[2] = { addr, addr2 };
	int ret;

	store = mmap(NULL, STORE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rtrs_srv_attr_init(&a);
	a.provider = prov;
	a.ops.rdma_ev = srv_ev;
	a.hb_interval_ms = 200;
	a.hb_missed_max = 3;
	ret = rtrs_srv_open(addrs, 2, &a, &ctx);
	if (ret) {
		fprintf(stderr, "server: %s\n", rtrs_strerror(ret));
		return 1;
	}
	rtrs_srv_get_listen_addr(ctx, 0, bound[0], sizeof(bound[0]));
	rtrs_srv_get_listen_addr(ctx, 1, bound[1], sizeof(bound[1]));
	if (write(fd, bound, sizeof(bound)) != (ssize_t)sizeof(bound))
		return 1;
	close(fd);
	signal(SIGTERM, on_term);
	while (!srv_stop)
		usleep(20000);
	rtrs_srv_get_stats(ctx, &st);
	rtrs_srv_close(ctx);
	{
		char b[RTRS_FMT_BUF];

		rtrs_srv_stats_fmt(&st, b, sizeof(b), RTRS_FMT_LINE);
		printf("server: %s\n", b);
	}
	return 0;
}

/* ---- client ---- */

struct io {
	struct rtrs_clt_sess *sess;
	struct rtrs_permit *permit;
	uint8_t *buf;
	struct perf_hdr h;
	uint32_t blk, len, gen;
	bool read;
};

static struct {
	uint32_t gen[NBLK];
	uint32_t len[NBLK];
	uint8_t busy[NBLK];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned active;
	_Atomic bool stop;
	_Atomic uint64_t writes, reads, bytes, errors, mismatches;
	uint64_t rng;
} d = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void io_conf(void *priv, int status);

static void io_next(struct io *io)
{
	struct rtrs_req_ops ops = { io, io_conf };
	struct iovec hv = { &io->h, sizeof(io->h) }, dv;
	int ret;

	pthread_mutex_lock(&d.lock);
	if (atomic_load(&d.stop)) {
		d.active--;
		pthread_cond_broadcast(&d.cond);
		pthread_mutex_unlock(&d.lock);
		return;
	}
	do {
		d.rng ^= d.rng << 13;
		d.rng ^= d.rng >> 7;
		d.rng ^= d.rng << 17;
		io->blk = (uint32_t)(d.rng % NBLK);
	} while (d.busy[io->blk]);
	d.busy[io->blk] = 1;
	/* read blocks that hold data half of the time */
	io->read = d.gen[io->blk] && (d.rng >> 40) % 2;
	if (io->read) {
		io->len = d.len[io->blk];
		io->gen = d.gen[io->blk];
	} else {
		io->len = 4096u << ((d.rng >> 32) % 6);   /* 4 KiB .. 128 KiB */
		io->gen = d.gen[io->blk] + 1;
	}
	pthread_mutex_unlock(&d.lock);
	if (!io->read)
		perf_stamp(io->buf, io->len, io->blk, io->gen, 42);
	else
		memset(io->buf, 0, io->len);
	io->h = (struct perf_hdr){ .magic = PERF_MAGIC,
				   .op = io->read ? PERF_OP_READ : PERF_OP_WRITE,
				   .off = (uint64_t)io->blk * BLK, .len = io->len };
	dv.iov_base = io->buf;
	dv.iov_len = io->len;
	ret = rtrs_clt_request(io->sess, io->read ? RTRS_READ : RTRS_WRITE, &ops,
			       io->permit, &hv, 1, &dv, 1, NULL);
	if (ret) {
		fprintf(stderr, "client: submit: %s\n", rtrs_strerror(ret));
		atomic_fetch_add(&d.errors, 1);
		pthread_mutex_lock(&d.lock);
		d.busy[io->blk] = 0;
		d.active--;
		pthread_cond_broadcast(&d.cond);
		pthread_mutex_unlock(&d.lock);
	}
}

static void io_conf(void *priv, int status)
{
	struct io *io = priv;

	if (status) {
		atomic_fetch_add(&d.errors, 1);
		fprintf(stderr, "client: IO error: %s\n", rtrs_strerror(status));
	} else if (io->read) {
		atomic_fetch_add(&d.reads, 1);
		if (perf_check(io->buf, io->len, io->blk, io->gen, 42))
			atomic_fetch_add(&d.mismatches, 1);
	} else {
		atomic_fetch_add(&d.writes, 1);
	}
	atomic_fetch_add(&d.bytes, io->len);
	pthread_mutex_lock(&d.lock);
	if (!status && !io->read) {
		d.gen[io->blk] = io->gen;
		d.len[io->blk] = io->len;
	}
	d.busy[io->blk] = 0;
	pthread_mutex_unlock(&d.lock);
	io_next(io);
}

/* ---- cutting path 1 ---- */

static char cut_rule[2][160];
static bool cut_ipt;

static void ipt(const char *op)
{
	char cmd[512];

	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd), "iptables -%s %s 2>/dev/null", op,
			 cut_rule[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "demo: %s failed\n", cmd);
	}
}

static void uncut(void)
{
	if (cut_ipt) {
		ipt("D");
		cut_ipt = false;
	}
}

static void on_sig(int sig)
{
	uncut();
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool can_iptables(void)
{
	return geteuid() == 0 && system("iptables -L -n >/dev/null 2>&1") == 0;
}

static void cut(struct rtrs_clt_sess *s, const char *addr, bool use_ipt)
{
	const char *port = strrchr(addr, ':') + 1;
	char host[64];

	snprintf(host, sizeof(host), "%.*s", (int)(port - 1 - addr), addr);
	if (use_ipt) {
		snprintf(cut_rule[0], sizeof(cut_rule[0]),
			 "INPUT -d %s -p tcp --dport %s -j DROP", host, port);
		snprintf(cut_rule[1], sizeof(cut_rule[1]),
			 "INPUT -s %s -p tcp --sport %s -j DROP", host, port);
		cut_ipt = true;
		ipt("I");
		printf("demo: >>> path 1 cut: iptables DROP on %s (silent loss; "
		       "the heartbeat has to notice)\n", addr);
	} else {
		printf("demo: >>> path 1 cut: administrative disconnect (not root: "
		       "no iptables)\n");
		rtrs_clt_disconnect_path(s, 1);
	}
}

static void restore(struct rtrs_clt_sess *s, bool use_ipt)
{
	if (use_ipt) {
		uncut();
		printf("demo: >>> path 1 restored: rule removed, the path "
		       "reconnects by itself\n");
	} else {
		printf("demo: >>> path 1 restored: reconnect\n");
		rtrs_clt_reconnect_path(s, 1);
	}
}

static void path_line(struct rtrs_clt_sess *s, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (unsigned i = 0; i < 2; i++) {
		struct rtrs_path_info in;

		if (rtrs_clt_path_info(s, i, &in))
			continue;
		off += (size_t)snprintf(buf + off, len - off,
					"  p%u %s w%llu r%llu", i,
					rtrs_path_state_str(in.state),
					(unsigned long long)in.write_cnt,
					(unsigned long long)in.read_cnt);
		if (off >= len)
			break;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' },
		{ "qd", required_argument, NULL, 'q' },
		{ "provider", required_argument, NULL, 'p' },
		{ "addr", required_argument, NULL, 'a' },
		{ "addr2", required_argument, NULL, 'b' },
		{ "cut", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	const char *prov = NULL, *host = "127.0.0.1", *host2 = "127.0.0.2";
	const char *cutmode = "auto";
	char paddr[2][160], listen2[160], pl[256], fb[RTRS_FMT_BUF];
	struct rtrs_path_addr pas[2];
	bool use_ipt, was_cut = false, restored = false;
	uint64_t failovers = 0, recon = 0, t_cut = 0;
	struct rtrs_path_info pin;
	double secs = 5;
	unsigned qd = 16;
	char listen[160];
	int c, fds[2], st, ret;
	pid_t pid;
	struct rtrs_clt_sess *s;
	struct rtrs_clt_stats cs;
	struct io *ios;
	uint64_t t0, last_b = 0, last_t;

	while ((c = getopt_long(argc, argv, "t:q:p:a:b:c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 't': secs = atof(optarg); break;
		case 'q': qd = (unsigned)atoi(optarg); break;
		case 'p': prov = optarg; break;
		case 'a': host = optarg; break;
		case 'b': host2 = optarg; break;
		case 'c': cutmode = optarg; break;
		case 'V': printf("rtrs-demo %s\n", RTRS_VERSION_STRING); return 0;
		case 'h':
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: rtrs-demo [--time SEC] [--qd N] "
				"[--provider P] [--addr HOST] [--addr2 HOST] "
				"[--cut auto|iptables|admin|none]\n"
				"       rtrs-demo --help | --version\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (!qd || qd > NBLK / 2 || secs <= 0)
		return 2;
	use_ipt = !strcmp(cutmode, "iptables") ||
		  (!strcmp(cutmode, "auto") && can_iptables());
	snprintf(listen, sizeof(listen), "%s:0", host);
	snprintf(listen2, sizeof(listen2), "%s:0", host2);
	if (pipe(fds))
		return 2;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		return run_server(listen, listen2, prov, fds[1]);
	}
	close(fds[1]);
	ret = (int)read(fds[0], paddr, sizeof(paddr));
	close(fds[0]);
	if (ret != (int)sizeof(paddr)) {
		fprintf(stderr, "demo: the server did not start\n");
		waitpid(pid, NULL, 0);
		return 2;
	}
	paddr[0][159] = paddr[1][159] = 0;
	printf("demo: server listening on %s and %s (pid %d)\n", paddr[0],
	       paddr[1], (int)pid);
	atexit(uncut);
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	pas[0] = (struct rtrs_path_addr){ NULL, paddr[0] };
	pas[1] = (struct rtrs_path_addr){ NULL, paddr[1] };
	{
		struct rtrs_clt_attr a;

		rtrs_clt_attr_init(&a);
		a.provider = prov;
		a.hb_interval_ms = 200;
		a.hb_missed_max = 3;
		a.reconnect_delay_ms = 300;
		ret = rtrs_clt_open("rtrs-demo", pas, 2, &a, &s);
	}
	if (ret) {
		fprintf(stderr, "demo: open: %s\n", rtrs_strerror(ret));
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return 1;
	}
	printf("demo: session rtrs-demo open over 2 paths, %u in flight, blocks "
	       "4-128 KiB, every read checked; path 1 is cut at 1/3 of the run "
	       "and restored at 2/3\n", qd);
	d.rng = 0x2545F4914F6CDD1Dull;
	ios = calloc(qd, sizeof(*ios));
	d.active = qd;
	for (unsigned i = 0; i < qd; i++) {
		ios[i].sess = s;
		ios[i].buf = aligned_alloc(4096, BLK);
		rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT, &ios[i].permit);
	}
	t0 = last_t = perf_now_ns();
	for (unsigned i = 0; i < qd; i++)
		io_next(&ios[i]);
	while (perf_now_ns() - t0 < (uint64_t)(secs * 1e9)) {
		uint64_t now, b;

		usleep(500000);
		now = perf_now_ns();
		if (strcmp(cutmode, "none") && !was_cut &&
		    now - t0 >= (uint64_t)(secs * 1e9 / 3)) {
			cut(s, paddr[1], use_ipt);
			was_cut = true;
			t_cut = now;
		}
		/* restored once the cut was noticed (or after 3 s) */
		if (was_cut && !restored &&
		    now - t0 >= (uint64_t)(secs * 2e9 / 3) &&
		    (now - t_cut > 3000000000ull ||
		     (!rtrs_clt_path_info(s, 1, &pin) &&
		      pin.state != RTRS_PATH_CONNECTED))) {
			restore(s, use_ipt);
			restored = true;
		}
		b = atomic_load(&d.bytes);
		path_line(s, pl, sizeof(pl));
		printf("[%4.1fs] %7.1f MiB/s  writes %llu reads %llu  errors %llu  "
		       "mismatches %llu %s\n", (double)(now - t0) / 1e9,
		       (double)(b - last_b) / 1048576.0 * 1e9 / (double)(now - last_t),
		       (unsigned long long)atomic_load(&d.writes),
		       (unsigned long long)atomic_load(&d.reads),
		       (unsigned long long)atomic_load(&d.errors),
		       (unsigned long long)atomic_load(&d.mismatches), pl);
		fflush(stdout);
		last_b = b;
		last_t = now;
	}
	/* give the cut path time to come back before the verdict */
	for (int i = 0; was_cut && i < 50; i++) {
		struct rtrs_path_info in;

		if (!rtrs_clt_path_info(s, 1, &in) &&
		    in.state == RTRS_PATH_CONNECTED)
			break;
		usleep(100000);
	}
	atomic_store(&d.stop, true);
	pthread_mutex_lock(&d.lock);
	while (d.active)
		pthread_cond_wait(&d.cond, &d.lock);
	pthread_mutex_unlock(&d.lock);
	rtrs_clt_get_stats(s, &cs);
	path_line(s, pl, sizeof(pl));
	rtrs_path_info_fmt(NULL, fb, sizeof(fb), RTRS_FMT_LINE | RTRS_FMT_HEAD);
	printf("client: %s\n", fb);
	for (unsigned i = 0; i < 2; i++) {
		struct rtrs_path_info in;

		if (rtrs_clt_path_info(s, i, &in))
			continue;
		rtrs_path_info_fmt(&in, fb, sizeof(fb), RTRS_FMT_LINE);
		printf("client: %s\n", fb);
		failovers += in.failovers;
		if (i == 1)
			recon = in.reconnects_ok;
	}
	for (unsigned i = 0; i < qd; i++) {
		rtrs_clt_put_permit(s, ios[i].permit);
		free(ios[i].buf);
	}
	free(ios);
	rtrs_clt_close(s);
	rtrs_clt_stats_fmt(&cs, fb, sizeof(fb), RTRS_FMT_LINE);
	printf("client: %s\n", fb);
	fflush(stdout);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	ret = atomic_load(&d.errors) || atomic_load(&d.mismatches) ||
	      !cs.read_cnt || !WIFEXITED(st) || WEXITSTATUS(st) ||
	      (was_cut && (!recon || !strstr(pl, "p1 connected")));
	printf("demo: %s: %llu reads verified byte for byte, %llu mismatches, "
	       "%llu errors; path 1 cut %s, %llu requests failed over, path 1 "
	       "reconnected %llu time(s) and is %s\n", ret ? "FAILED" : "OK",
	       (unsigned long long)atomic_load(&d.reads),
	       (unsigned long long)atomic_load(&d.mismatches),
	       (unsigned long long)atomic_load(&d.errors),
	       !was_cut ? "never" : use_ipt ? "by iptables" : "by disconnect",
	       (unsigned long long)failovers, (unsigned long long)recon,
	       strstr(pl, "p1 connected") ? "connected" : "NOT connected");
	return ret ? 1 : 0;
}
