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

static int run_server(const char *addr, const char *prov, int fd)
{
	struct rtrs_srv_attr a;
	struct rtrs_srv_ctx *ctx;
	struct rtrs_srv_stats st;
	char bound[160];
	const char *addrs[1] = { addr };
	int ret;

	store = mmap(NULL, STORE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rtrs_srv_attr_init(&a);
	a.provider = prov;
	a.ops.rdma_ev = srv_ev;
	ret = rtrs_srv_open(addrs, 1, &a, &ctx);
	if (ret) {
		fprintf(stderr, "server: %s\n", rtrs_strerror(ret));
		return 1;
	}
	rtrs_srv_get_listen_addr(ctx, 0, bound, sizeof(bound));
	if (write(fd, bound, strlen(bound) + 1) < 0)
		return 1;
	close(fd);
	signal(SIGTERM, on_term);
	while (!srv_stop)
		usleep(20000);
	rtrs_srv_get_stats(ctx, &st);
	rtrs_srv_close(ctx);
	printf("server: %llu writes (%.1f MiB), %llu reads (%.1f MiB), "
	       "%llu malformed-input paths\n",
	       (unsigned long long)st.write_cnt, (double)st.write_bytes / 1048576,
	       (unsigned long long)st.read_cnt, (double)st.read_bytes / 1048576,
	       (unsigned long long)st.paths_closed_bad_input);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "time", required_argument, NULL, 't' },
		{ "qd", required_argument, NULL, 'q' },
		{ "provider", required_argument, NULL, 'p' },
		{ "addr", required_argument, NULL, 'a' },
		{ 0 }
	};
	const char *prov = NULL, *host = "127.0.0.1";
	double secs = 5;
	unsigned qd = 16;
	char addr[160], listen[160];
	int c, fds[2], st, ret;
	pid_t pid;
	struct rtrs_clt_sess *s;
	struct rtrs_path_addr pa;
	struct rtrs_clt_stats cs;
	struct io *ios;
	uint64_t t0, last_b = 0, last_t;

	while ((c = getopt_long(argc, argv, "t:q:p:a:", opts, NULL)) != -1) {
		switch (c) {
		case 't': secs = atof(optarg); break;
		case 'q': qd = (unsigned)atoi(optarg); break;
		case 'p': prov = optarg; break;
		case 'a': host = optarg; break;
		default:
			fprintf(stderr, "usage: rtrs-demo [--time SEC] [--qd N] "
				"[--provider P] [--addr HOST]\n");
			return 2;
		}
	}
	if (!qd || qd > NBLK / 2 || secs <= 0)
		return 2;
	snprintf(listen, sizeof(listen), "%s:0", host);
	if (pipe(fds))
		return 2;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		return run_server(listen, prov, fds[1]);
	}
	close(fds[1]);
	ret = (int)read(fds[0], addr, sizeof(addr) - 1);
	close(fds[0]);
	if (ret <= 0) {
		fprintf(stderr, "demo: the server did not start\n");
		waitpid(pid, NULL, 0);
		return 2;
	}
	addr[ret] = 0;
	printf("demo: server listening on %s (pid %d)\n", addr, (int)pid);
	pa.src = NULL;
	pa.dst = addr;
	{
		struct rtrs_clt_attr a;

		rtrs_clt_attr_init(&a);
		a.provider = prov;
		ret = rtrs_clt_open("rtrs-demo", &pa, 1, &a, &s);
	}
	if (ret) {
		fprintf(stderr, "demo: open: %s\n", rtrs_strerror(ret));
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return 1;
	}
	printf("demo: session rtrs-demo open, %u in flight, blocks 4-128 KiB, "
	       "every read checked\n", qd);
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

		usleep(1000000);
		now = perf_now_ns();
		b = atomic_load(&d.bytes);
		printf("[%4.1fs] %7.1f MiB/s  writes %llu reads %llu  errors %llu  "
		       "mismatches %llu\n", (double)(now - t0) / 1e9,
		       (double)(b - last_b) / 1048576.0 * 1e9 / (double)(now - last_t),
		       (unsigned long long)atomic_load(&d.writes),
		       (unsigned long long)atomic_load(&d.reads),
		       (unsigned long long)atomic_load(&d.errors),
		       (unsigned long long)atomic_load(&d.mismatches));
		fflush(stdout);
		last_b = b;
		last_t = now;
	}
	atomic_store(&d.stop, true);
	pthread_mutex_lock(&d.lock);
	while (d.active)
		pthread_cond_wait(&d.cond, &d.lock);
	pthread_mutex_unlock(&d.lock);
	rtrs_clt_get_stats(s, &cs);
	for (unsigned i = 0; i < qd; i++) {
		rtrs_clt_put_permit(s, ios[i].permit);
		free(ios[i].buf);
	}
	free(ios);
	rtrs_clt_close(s);
	printf("client: %llu writes (%.1f MiB), %llu reads (%.1f MiB), "
	       "%llu errors, %llu completions off their CPU\n",
	       (unsigned long long)cs.write_cnt, (double)cs.write_bytes / 1048576,
	       (unsigned long long)cs.read_cnt, (double)cs.read_bytes / 1048576,
	       (unsigned long long)cs.errors,
	       (unsigned long long)cs.cpu_migration_from);
	fflush(stdout);
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	ret = atomic_load(&d.errors) || atomic_load(&d.mismatches) ||
	      !cs.read_cnt || !WIFEXITED(st) || WEXITSTATUS(st);
	printf("demo: %s: %llu reads verified byte for byte, %llu mismatches, "
	       "%llu errors\n", ret ? "FAILED" : "OK",
	       (unsigned long long)atomic_load(&d.reads),
	       (unsigned long long)atomic_load(&d.mismatches),
	       (unsigned long long)atomic_load(&d.errors));
	return ret ? 1 : 0;
}
