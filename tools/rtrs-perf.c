// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rtrs-perf: benchmark and load generator for librtrs.
 *
 *   rtrs-perf server --listen ADDR:PORT[,...] [--provider P] [--qd N]
 *                    [--chunk SIZE] [--no-invalidate] [--size SIZE]
 *                    [--handshake-timeout MS] [--max-sessions N]
 *                    [--max-paths N] [--max-conns N] [--max-pending N]
 *   rtrs-perf client --connect ADDR:PORT[,...] --rw read|write|randrw
 *                    --bs SIZE --qd N [--threads N] [--time SEC] [--verify]
 *                    [--provider P] [--json] [--size SIZE] [--no-reg]
 *   rtrs-perf raw server|client ...   (same workload on raw libfabric)
 *
 * The server is a memory target: WRITE stores the data at the offset in the
 * header, READ returns it. Exit status: 0 on success, 1 on IO or verify
 * errors, 2 on bad usage or setup failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "perf_common.h"
#include "rtrs/rtrs.h"
#include "util/workq.h"

int perf_raw_main(int argc, char **argv);

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	(void)sig;
	stop_sig = 1;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: return -1;
	}
	if (*end == 'i')
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -1;
	*out = v;
	return 0;
}

/* Split "a,b,c" into at most @max entries (modifies @s). */
static size_t split_list(char *s, char **out, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(s, ",", &save); t && n < max;
	     t = strtok_r(NULL, ",", &save))
		out[n++] = t;
	return n;
}

/* ------------------------------------------------------------------ */
/* server                                                              */
/* ------------------------------------------------------------------ */

/* A request waiting for the --resp-thread worker. */
struct pending {
	struct rtrs_work w;
	struct rtrs_srv_op *op;
	void *data;
	size_t len;
	struct perf_hdr h;
};

static struct {
	uint8_t *store;
	uint64_t size;
	_Atomic uint64_t sessions;  /* link_ev CONNECTED, over the run */
	bool resp_thread;
	unsigned delay_us;          /* --delay-us: a slow backend */
	struct rtrs_workq *wq;      /* --resp-thread: one thread */
} srv;

/* Serve one request; returns the status to answer with. */
static int srv_execute(struct rtrs_srv_op *op, void *data, size_t datalen,
		       const struct perf_hdr *hp)
{
	struct perf_hdr h = *hp;
	enum rtrs_dir dir = rtrs_srv_op_dir(op);

	switch (h.op) {
	case PERF_OP_WRITE:
	case PERF_OP_READ:
		if ((h.op == PERF_OP_WRITE) != (dir == RTRS_WRITE) ||
		    h.len != datalen || h.off > srv.size ||
		    srv.size - h.off < h.len)
			return -EINVAL;
		if (!(h.flags & PERF_F_NOCOPY)) {
			if (h.op == PERF_OP_WRITE)
				memcpy(srv.store + h.off, data, datalen);
			else
				memcpy(data, srv.store + h.off, datalen);
		}
		break;
	case PERF_OP_STATUS:
		return h.arg < 0 ? h.arg : -EINVAL;
	default:
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The --resp-thread worker: answers from a thread that is not a progress
 * thread, as a real backend would. */
static void srv_work(struct rtrs_work *w)
{
	struct pending *p = (struct pending *)w;

	if (srv.delay_us)
		usleep(srv.delay_us);
	rtrs_srv_resp(p->op, srv_execute(p->op, p->data, p->len, &p->h));
	free(p);
}

static int srv_rdma_ev(void *sess_priv, struct rtrs_srv_op *op, void *data,
		       size_t datalen, const void *usr, size_t usrlen)
{
	struct perf_hdr h;
	int ret;

	(void)sess_priv;
	if (usrlen < sizeof(h))
		return -EINVAL;
	memcpy(&h, usr, sizeof(h));
	if (h.magic != PERF_MAGIC)
		return -EINVAL;
	if (h.op == PERF_OP_HDR) {
		if (perf_fnv1a((const char *)usr + sizeof(h),
			       usrlen - sizeof(h)) != h.csum)
			return -EBADMSG;
		/* a header-only READ with data gets a fixed pattern */
		if (rtrs_srv_op_dir(op) == RTRS_READ && datalen)
			memset(data, 0xa5, datalen);
		return rtrs_srv_resp(op, 0);
	}
	if (srv.resp_thread) {
		struct pending *p = malloc(sizeof(*p));

		if (!p)
			return -ENOMEM;
		*p = (struct pending){ { NULL, srv_work }, op, data, datalen,
				       h };
		rtrs__workq_push(srv.wq, &p->w);
		return 0;
	}
	ret = srv_execute(op, data, datalen, &h);
	return ret ? ret : rtrs_srv_resp(op, 0);
}

static int srv_link_ev(struct rtrs_srv_sess *s, enum rtrs_srv_link_ev ev,
		       void *priv)
{
	char name[256] = "?";

	(void)priv;
	rtrs_srv_get_sess_name(s, name, sizeof(name));
	if (ev == RTRS_SRV_LINK_EV_CONNECTED)
		atomic_fetch_add(&srv.sessions, 1);
	fprintf(stderr, "rtrs-perf server: session %s %s\n", name,
		ev == RTRS_SRV_LINK_EV_CONNECTED ? "connected" : "disconnected");
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage:\n"
		"  rtrs-perf server --listen ADDR:PORT[,...] [--provider P] [--qd N]\n"
		"                   [--chunk SIZE] [--no-invalidate] [--size SIZE]\n"
		"                   [--exit-after SEC] [--resp-thread] [--store FILE]\n"
		"                   [--delay-us N] [--handshake-timeout MS]\n"
		"                   [--max-sessions N] [--max-paths N]\n"
		"                   [--max-conns N] [--max-pending N]\n"
		"                   [--key-file FILE]\n"
		"  rtrs-perf client --connect ADDR:PORT[,...] --rw read|write|randrw\n"
		"                   --bs SIZE --qd N [--threads N] [--time SEC]\n"
		"                   [--verify] [--provider P] [--json] [--size SIZE]\n"
		"                   [--no-reg] [--name SESSNAME] [--io-cons N]\n"
		"                   [--timeline FILE] [--policy rr|mi|ml]\n"
		"                   [--hb MS,MISSED] [--no-path-timeout MS] [--poll]\n"
		"                   [--key-file FILE [--identity NAME]]\n"
		"  rtrs-perf raw server|client ...  (see rtrs-perf(1))\n"
		"  rtrs-perf --help | --version\n");
}

static int server_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "provider", required_argument, NULL, 'p' },
		{ "qd", required_argument, NULL, 'q' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "no-invalidate", no_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ "resp-thread", no_argument, NULL, 'R' },
		{ "store", required_argument, NULL, 'S' },
		{ "delay-us", required_argument, NULL, 'D' },
		{ "handshake-timeout", required_argument, NULL, 256 },
		{ "max-sessions", required_argument, NULL, 257 },
		{ "max-paths", required_argument, NULL, 258 },
		{ "max-conns", required_argument, NULL, 259 },
		{ "max-pending", required_argument, NULL, 260 },
		{ "key-file", required_argument, NULL, 261 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rtrs_srv_limits lim;
	const char *store = NULL;
	int sfd = -1;
	struct rtrs_srv_attr attr;
	struct rtrs_auth auth = { sizeof(auth), NULL, NULL };
	struct rtrs_srv_ctx *ctx;
	struct rtrs_srv_stats st;
	char *listen = NULL, *addrs[16];
	uint64_t v;
	double exit_after = 0;
	size_t n;
	int c, ret;

	rtrs_srv_attr_init(&attr);
	rtrs_srv_limits_init(&lim);
	srv.size = 256ull << 20;
	while ((c = getopt_long(argc, argv, "l:p:q:c:ns:x:RS:D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 'p': attr.provider = optarg; break;
		case 'q': attr.queue_depth = (uint32_t)atoi(optarg); break;
		case 'c':
			if (parse_size(optarg, &v) || v > UINT32_MAX)
				goto bad;
			attr.chunk_size = (uint32_t)v;
			break;
		case 'n': attr.always_invalidate = 0; break;
		case 's':
			if (parse_size(optarg, &srv.size))
				goto bad;
			break;
		case 'x': exit_after = atof(optarg); break;
		case 'R': srv.resp_thread = true; break;
		case 'S': store = optarg; break;
		case 'D':
			srv.delay_us = (unsigned)atoi(optarg);
			srv.resp_thread = true;
			break;
		case 256: lim.handshake_ms = (unsigned)atoi(optarg); break;
		case 261: auth.key_file = optarg; break;
		case 257: lim.max_sessions = (unsigned)atoi(optarg); break;
		case 258: lim.max_paths = (unsigned)atoi(optarg); break;
		case 259: lim.max_conns = (unsigned)atoi(optarg); break;
		case 260: lim.max_pending = (unsigned)atoi(optarg); break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (!listen)
		goto bad;
	n = split_list(listen, addrs, 16);
	if (store) {
		/* a file keeps the data across a server restart */
		sfd = open(store, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (sfd < 0 || ftruncate(sfd, (off_t)srv.size)) {
			fprintf(stderr, "rtrs-perf server: %s: %s\n", store,
				strerror(errno));
			return 2;
		}
	}
	srv.store = mmap(NULL, srv.size, PROT_READ | PROT_WRITE,
			 store ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, sfd, 0);
	if (sfd >= 0)
		close(sfd);
	if (srv.store == MAP_FAILED) {
		fprintf(stderr, "rtrs-perf server: cannot map %llu bytes\n",
			(unsigned long long)srv.size);
		return 2;
	}
	attr.ops.rdma_ev = srv_rdma_ev;
	attr.ops.link_ev = srv_link_ev;
	if (srv.resp_thread && (ret = rtrs__workq_start(1, &srv.wq))) {
		fprintf(stderr, "rtrs-perf server: worker: %s\n",
			strerror(-ret));
		return 2;
	}
	ret = rtrs_srv_open_auth((const char *const *)addrs, n, &attr,
				 auth.key_file ? &auth : NULL, &ctx);
	if (ret) {
		fprintf(stderr, "rtrs-perf server: %s\n", rtrs_strerror(ret));
		return 2;
	}
	ret = rtrs_srv_set_limits(ctx, &lim);
	if (ret) {
		fprintf(stderr, "rtrs-perf server: limits: %s\n",
			rtrs_strerror(ret));
		rtrs_srv_close(ctx);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		char a[160];

		if (!rtrs_srv_get_listen_addr(ctx, i, a, sizeof(a)))
			printf("listening %s\n", a);
	}
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	{
		uint64_t end = exit_after > 0 ? perf_now_ns() +
				(uint64_t)(exit_after * 1e9) : 0;

		while (!stop_sig && (!end || perf_now_ns() < end))
			usleep(50 * 1000);
	}
	rtrs_srv_get_stats(ctx, &st);
	/* close waits for every op to be answered: the worker still runs */
	rtrs_srv_close(ctx);
	rtrs__workq_stop(srv.wq);
	{
		char b[RTRS_FMT_BUF];

		rtrs_srv_stats_fmt(&st, b, sizeof(b), RTRS_FMT_LINE);
		fprintf(stderr, "rtrs-perf server: %s  sessions-connected %llu\n",
			b, (unsigned long long)atomic_load(&srv.sessions));
	}
	munmap(srv.store, srv.size);
	return 0;
bad:
	usage(stderr);
	return 2;
}

/* ------------------------------------------------------------------ */
/* client                                                              */
/* ------------------------------------------------------------------ */

enum rw_mode { RW_READ, RW_WRITE, RW_RANDRW };

struct job;

struct slot {
	struct job *job;
	struct rtrs_permit *permit;
	uint8_t *buf;
	struct perf_hdr hdr;
	uint64_t block;
	uint32_t gen;
	bool is_read;
	uint64_t start;
};

struct job {
	unsigned idx;
	struct rtrs_clt_sess *sess;
	struct rtrs_mr *mr;
	uint8_t *mem;
	struct slot *slots;
	unsigned qd;
	uint64_t first_block, nblocks;
	uint32_t *gens;
	uint8_t *busy;
	uint64_t seq_next;          /* prefill cursor */
	bool prefill;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned active;
	uint64_t rng;
	pthread_t thr;
};

static struct {
	enum rw_mode rw;
	uint64_t bs, size;
	unsigned qd, threads;
	double time;
	bool verify, json, noreg, poll;
	uint64_t seed;
	_Atomic bool stop;
	_Atomic uint64_t ios, bytes, errors, verify_errors, submit_errors;
	struct perf_hist hist;
	struct job *jobs;
	/* --timeline: the longest time without any completion */
	bool track_gap;
	_Atomic uint64_t last_done_ns, max_gap_ns;
} cl;

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void slot_conf(void *priv, int status);

/* Pick the next IO for @sl. Returns false when the slot has nothing to do. */
static bool slot_prepare(struct slot *sl)
{
	struct job *j = sl->job;
	uint64_t b;

	pthread_mutex_lock(&j->lock);
	if (j->prefill) {
		if (j->seq_next >= j->nblocks) {
			pthread_mutex_unlock(&j->lock);
			return false;
		}
		b = j->seq_next++;
		sl->is_read = false;
	} else {
		b = rng_next(&j->rng) % j->nblocks;
		for (uint64_t k = 0; cl.verify && j->busy[b] && k < j->nblocks; k++)
			b = (b + 1) % j->nblocks;
		sl->is_read = cl.rw == RW_READ ||
			      (cl.rw == RW_RANDRW && (rng_next(&j->rng) & 1));
	}
	j->busy[b] = 1;
	sl->block = b;
	sl->gen = j->gens[b] + (sl->is_read ? 0 : 1);
	pthread_mutex_unlock(&j->lock);
	if (!sl->is_read && cl.verify)
		perf_stamp(sl->buf, cl.bs, j->first_block + b, sl->gen, cl.seed);
	memset(&sl->hdr, 0, sizeof(sl->hdr));
	sl->hdr.magic = PERF_MAGIC;
	sl->hdr.op = sl->is_read ? PERF_OP_READ : PERF_OP_WRITE;
	sl->hdr.off = (j->first_block + b) * cl.bs;
	sl->hdr.len = (uint32_t)cl.bs;
	sl->hdr.flags = cl.verify || j->prefill ? 0 : PERF_F_NOCOPY;
	return true;
}

static void slot_done(struct slot *sl)
{
	struct job *j = sl->job;

	rtrs_clt_put_permit(j->sess, sl->permit);
	sl->permit = NULL;
	pthread_mutex_lock(&j->lock);
	j->active--;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

static void slot_submit(struct slot *sl)
{
	struct job *j = sl->job;
	struct rtrs_req_ops ops = { .priv = sl, .conf = slot_conf };
	struct iovec hiov = { &sl->hdr, sizeof(sl->hdr) };
	struct iovec div = { sl->buf, cl.bs };
	int ret;

	if (atomic_load(&cl.stop) || !slot_prepare(sl)) {
		slot_done(sl);
		return;
	}
	sl->start = perf_now_ns();
	ret = rtrs_clt_request(j->sess, sl->is_read ? RTRS_READ : RTRS_WRITE,
			       &ops, sl->permit, &hiov, 1, &div, 1, j->mr);
	if (ret) {
		if (atomic_fetch_add(&cl.submit_errors, 1) < 5)
			fprintf(stderr, "rtrs-perf: submit: %s\n",
				rtrs_strerror(ret));
		atomic_fetch_add(&cl.errors, 1);
		pthread_mutex_lock(&j->lock);
		j->busy[sl->block] = 0;
		pthread_mutex_unlock(&j->lock);
		slot_done(sl);
	}
}

static void slot_conf(void *priv, int status)
{
	struct slot *sl = priv;
	struct job *j = sl->job;
	uint64_t now = perf_now_ns();

	if (!j->prefill)
		hist_add(&cl.hist, now - sl->start);
	if (cl.track_gap && !j->prefill) {
		uint64_t prev = atomic_exchange(&cl.last_done_ns, now);
		uint64_t m = atomic_load(&cl.max_gap_ns);

		while (prev && now > prev && now - prev > m &&
		       !atomic_compare_exchange_weak(&cl.max_gap_ns, &m,
						     now - prev))
			;
	}
	if (status) {
		if (atomic_fetch_add(&cl.errors, 1) < 5)
			fprintf(stderr, "rtrs-perf: IO error: %s\n",
				rtrs_strerror(status));
	} else if (sl->is_read && cl.verify) {
		size_t bad = perf_check(sl->buf, cl.bs, j->first_block + sl->block,
					sl->gen, cl.seed);

		if (bad && atomic_fetch_add(&cl.verify_errors, 1) < 5)
			fprintf(stderr,
				"rtrs-perf: verify error: block %llu gen %u "
				"byte %zu\n",
				(unsigned long long)(j->first_block + sl->block),
				sl->gen, bad - 1);
	}
	pthread_mutex_lock(&j->lock);
	if (!status && !sl->is_read)
		j->gens[sl->block] = sl->gen;
	j->busy[sl->block] = 0;
	pthread_mutex_unlock(&j->lock);
	if (!status && !j->prefill) {
		atomic_fetch_add_explicit(&cl.ios, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&cl.bytes, cl.bs, memory_order_relaxed);
	}
	if (status && !j->prefill) {
		/* keep going: errors are counted, the run decides */
	}
	slot_submit(sl);
}

/* Is any slot of @j still running? */
static bool job_active(struct job *j)
{
	bool a;

	pthread_mutex_lock(&j->lock);
	a = j->active;
	pthread_mutex_unlock(&j->lock);
	return a;
}

/* Run all slots of @j until they stop; returns when none is active. With
 * --poll the job's thread reads the completions and runs slot_conf. */
static void job_run(struct job *j)
{
	pthread_mutex_lock(&j->lock);
	j->active = j->qd;
	pthread_mutex_unlock(&j->lock);
	for (unsigned i = 0; i < j->qd; i++) {
		int ret;

		/* a polling thread must not sleep for a permit */
		while ((ret = rtrs_clt_get_permit(j->sess, RTRS_IO_CON,
						  cl.poll ? RTRS_PERMIT_NOWAIT
							  : RTRS_PERMIT_WAIT,
						  &j->slots[i].permit)) == -EAGAIN &&
		       cl.poll)
			rtrs_clt_poll(j->sess, 10);

		if (ret) {
			fprintf(stderr, "rtrs-perf: permit: %s\n",
				rtrs_strerror(ret));
			atomic_fetch_add(&cl.errors, 1);
			pthread_mutex_lock(&j->lock);
			j->active--;
			pthread_mutex_unlock(&j->lock);
			continue;
		}
		slot_submit(&j->slots[i]);
	}
	if (cl.poll) {
		while (job_active(j)) {
			int ret = rtrs_clt_poll(j->sess, 100);

			if (ret < 0) {
				fprintf(stderr, "rtrs-perf: poll: %s\n",
					rtrs_strerror(ret));
				atomic_fetch_add(&cl.errors, 1);
				break;
			}
		}
		return;
	}
	pthread_mutex_lock(&j->lock);
	while (j->active)
		pthread_cond_wait(&j->cond, &j->lock);
	pthread_mutex_unlock(&j->lock);
}

static void *job_thread(void *arg)
{
	job_run(arg);
	return NULL;
}

static int job_init(struct job *j, unsigned idx, struct rtrs_clt_sess *s)
{
	size_t memlen = (size_t)cl.bs * cl.qd;
	int ret;

	j->idx = idx;
	j->sess = s;
	j->qd = cl.qd;
	j->nblocks = cl.size / cl.bs / cl.threads;
	j->first_block = j->nblocks * idx;
	j->rng = cl.seed ^ (0x9e3779b97f4a7c15ull * (idx + 1));
	j->gens = calloc(j->nblocks, sizeof(uint32_t));
	j->busy = calloc(j->nblocks, 1);
	j->slots = calloc(j->qd, sizeof(*j->slots));
	j->mem = aligned_alloc(4096, (memlen + 4095) & ~(size_t)4095);
	if (!j->gens || !j->busy || !j->slots || !j->mem)
		return -ENOMEM;
	memset(j->mem, 0, memlen);
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	if (!cl.noreg) {
		ret = rtrs_mr_reg(s, j->mem, memlen, &j->mr);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < j->qd; i++) {
		j->slots[i].job = j;
		j->slots[i].buf = j->mem + (size_t)i * cl.bs;
	}
	return 0;
}

static void job_fini(struct job *j)
{
	if (j->mr)
		rtrs_mr_dereg(j->mr);
	free(j->mem);
	free(j->slots);
	free(j->busy);
	free(j->gens);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
}

static void run_jobs(void)
{
	for (unsigned i = 0; i < cl.threads; i++)
		pthread_create(&cl.jobs[i].thr, NULL, job_thread, &cl.jobs[i]);
}

static void join_jobs(void)
{
	for (unsigned i = 0; i < cl.threads; i++)
		pthread_join(cl.jobs[i].thr, NULL);
}

static const char *rw_name(enum rw_mode m)
{
	return m == RW_READ ? "read" : m == RW_WRITE ? "write" : "randrw";
}

/* --timeline: one row per 100 ms: seconds, IOPS, then per path its IOPS
 * and state (enum rtrs_path_state; -1 for an empty slot). */
struct timeline {
	FILE *f;
	struct rtrs_clt_sess *s;
	unsigned npaths;
	uint64_t t0, last_t, last_ios, last_path[RTRS_MAX_PATHS];
};

static int tl_open(struct timeline *tl, const char *file,
		   struct rtrs_clt_sess *s)
{
	tl->f = fopen(file, "w");
	if (!tl->f) {
		fprintf(stderr, "rtrs-perf: %s: %s\n", file, strerror(errno));
		return -1;
	}
	tl->s = s;
	tl->npaths = (unsigned)rtrs_clt_path_slots(s);
	fprintf(tl->f, "# rtrs-perf timeline: state 0 connecting, 1 connected, "
		"2 closing, 3 closed, 4 reconnecting, 5 dead, -1 none\n"
		"# t_s\tiops");
	for (unsigned i = 0; i < tl->npaths; i++) {
		struct rtrs_path_info in;

		fprintf(tl->f, "\tpath%u_iops\tpath%u_state", i, i);
		if (!rtrs_clt_path_info(s, i, &in))
			tl->last_path[i] = in.read_cnt + in.write_cnt;
	}
	fprintf(tl->f, "\n");
	return 0;
}

static void tl_tick(struct timeline *tl, uint64_t now)
{
	uint64_t ios = atomic_load(&cl.ios);
	double dt = (double)(now - tl->last_t) / 1e9;

	if (dt <= 0)
		return;
	fprintf(tl->f, "%.2f\t%.0f", (double)(now - tl->t0) / 1e9,
		(double)(ios - tl->last_ios) / dt);
	for (unsigned i = 0; i < tl->npaths; i++) {
		struct rtrs_path_info in;

		if (rtrs_clt_path_info(tl->s, i, &in)) {
			fprintf(tl->f, "\t0\t-1");
			continue;
		}
		/* a stats reset moves the counters back: restart from there */
		if (in.read_cnt + in.write_cnt < tl->last_path[i])
			tl->last_path[i] = 0;
		fprintf(tl->f, "\t%.0f\t%d",
			(double)(in.read_cnt + in.write_cnt - tl->last_path[i]) / dt,
			(int)in.state);
		tl->last_path[i] = in.read_cnt + in.write_cnt;
	}
	fprintf(tl->f, "\n");
	fflush(tl->f);
	tl->last_ios = ios;
	tl->last_t = now;
}

/* "paths":[...] of the JSON summary: each path's state and counters
 * (rtrs_path_info_fmt(), as rtrsctl --json shows a path). */
static void print_paths_json(struct rtrs_clt_sess *s)
{
	bool first = true;

	for (int i = 0; i < rtrs_clt_path_slots(s); i++) {
		struct rtrs_path_info in;
		char b[RTRS_FMT_BUF];

		if (rtrs_clt_path_info(s, (unsigned)i, &in))
			continue;
		rtrs_path_info_fmt(&in, b, sizeof(b), RTRS_FMT_JSON);
		printf("%s%s", first ? "" : ",", b);
		first = false;
	}
}

static int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 't' },
		{ "time", required_argument, NULL, 'T' },
		{ "verify", no_argument, NULL, 'v' },
		{ "provider", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "size", required_argument, NULL, 's' },
		{ "no-reg", no_argument, NULL, 'N' },
		{ "name", required_argument, NULL, 'n' },
		{ "io-cons", required_argument, NULL, 'i' },
		{ "timeline", required_argument, NULL, 'L' },
		{ "policy", required_argument, NULL, 'P' },
		{ "hb", required_argument, NULL, 'H' },
		{ "no-path-timeout", required_argument, NULL, 'O' },
		{ "poll", no_argument, NULL, 'W' },
		{ "key-file", required_argument, NULL, 300 },
		{ "identity", required_argument, NULL, 301 },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rtrs_clt_attr attr;
	struct rtrs_auth auth = { sizeof(auth), NULL, NULL };
	struct rtrs_path_addr paths[RTRS_MAX_PATHS];
	struct rtrs_clt_sess *s;
	struct rtrs_attrs qa;
	struct rtrs_clt_stats cst;
	char *connect = NULL, *addrs[RTRS_MAX_PATHS], name[64];
	const char *timeline = NULL;
	struct timeline tl = { 0 };
	size_t npaths;
	uint64_t t0, t_end, last_ios = 0, last_t, elapsed, hb_to = 0, recon = 0;
	int c, ret, rc = 0;
	bool have_rw = false;

	rtrs_clt_attr_init(&attr);
	cl.bs = 4096;
	cl.qd = 32;
	cl.threads = 1;
	cl.time = 5;
	cl.size = 64ull << 20;
	cl.seed = perf_now_ns();
	snprintf(name, sizeof(name), "rtrs-perf-%d", (int)getpid());
	while ((c = getopt_long(argc, argv, "c:r:b:q:t:T:vp:js:Nn:i:L:P:H:O:Wh", opts,
				NULL)) != -1) {
		switch (c) {
		case 'c': connect = optarg; break;
		case 'r':
			have_rw = true;
			if (!strcmp(optarg, "read"))
				cl.rw = RW_READ;
			else if (!strcmp(optarg, "write"))
				cl.rw = RW_WRITE;
			else if (!strcmp(optarg, "randrw"))
				cl.rw = RW_RANDRW;
			else
				goto bad;
			break;
		case 'b':
			if (parse_size(optarg, &cl.bs) || !cl.bs)
				goto bad;
			break;
		case 'q': cl.qd = (unsigned)atoi(optarg); break;
		case 't': cl.threads = (unsigned)atoi(optarg); break;
		case 'T': cl.time = atof(optarg); break;
		case 'v': cl.verify = true; break;
		case 'p': attr.provider = optarg; break;
		case 'j': cl.json = true; break;
		case 's':
			if (parse_size(optarg, &cl.size))
				goto bad;
			break;
		case 'N': cl.noreg = true; break;
		case 'n': snprintf(name, sizeof(name), "%s", optarg); break;
		case 'i': attr.io_cons = (unsigned)atoi(optarg); break;
		case 'L': timeline = optarg; break;
		case 300: auth.key_file = optarg; break;
		case 301: auth.identity = optarg; break;
		case 'P':
			if (!strcmp(optarg, "rr"))
				attr.policy = RTRS_MP_POLICY_RR;
			else if (!strcmp(optarg, "mi"))
				attr.policy = RTRS_MP_POLICY_MIN_INFLIGHT;
			else if (!strcmp(optarg, "ml"))
				attr.policy = RTRS_MP_POLICY_MIN_LATENCY;
			else
				goto bad;
			break;
		case 'H':
			if (sscanf(optarg, "%u,%u", &attr.hb_interval_ms,
				   &attr.hb_missed_max) != 2)
				goto bad;
			break;
		case 'O': attr.no_path_timeout_ms = (unsigned)atoi(optarg); break;
		case 'W':
			cl.poll = true;
			attr.progress = RTRS_PROGRESS_POLL;
			break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (!connect || !have_rw || !cl.qd || !cl.threads || cl.time <= 0)
		goto bad;
	if (cl.size / cl.bs / cl.threads < cl.qd) {
		fprintf(stderr, "rtrs-perf: --size too small for bs x qd x threads\n");
		return 2;
	}
	npaths = split_list(connect, addrs, RTRS_MAX_PATHS);
	for (size_t i = 0; i < npaths; i++) {
		paths[i].src = NULL;
		paths[i].dst = addrs[i];
	}
	ret = rtrs_clt_open_auth(name, paths, npaths, &attr,
				 auth.key_file ? &auth : NULL, &s);
	if (ret) {
		fprintf(stderr, "rtrs-perf: open: %s\n", rtrs_strerror(ret));
		return 2;
	}
	ret = rtrs_clt_query(s, &qa);
	if (!ret && (cl.bs > qa.max_io_size || cl.qd * cl.threads > qa.queue_depth))
		ret = -EMSGSIZE;
	if (ret) {
		fprintf(stderr, "rtrs-perf: bs %llu / qd %u x %u exceed the "
			"session (max io %u, queue depth %u)\n",
			(unsigned long long)cl.bs, cl.qd, cl.threads,
			qa.max_io_size, qa.queue_depth);
		rtrs_clt_close(s);
		return 2;
	}
	cl.jobs = calloc(cl.threads, sizeof(*cl.jobs));
	for (unsigned i = 0; i < cl.threads; i++) {
		ret = job_init(&cl.jobs[i], i, s);
		if (ret) {
			fprintf(stderr, "rtrs-perf: setup: %s\n", rtrs_strerror(ret));
			rtrs_clt_close(s);
			return 2;
		}
	}
	if (timeline && tl_open(&tl, timeline, s)) {
		rc = 2;
		goto out;
	}
	cl.track_gap = timeline != NULL;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (cl.verify && cl.rw != RW_WRITE) {
		/* every block gets a known stamp before it is read */
		for (unsigned i = 0; i < cl.threads; i++)
			cl.jobs[i].prefill = true;
		run_jobs();
		join_jobs();
		for (unsigned i = 0; i < cl.threads; i++)
			cl.jobs[i].prefill = false;
		if (atomic_load(&cl.errors)) {
			fprintf(stderr, "rtrs-perf: prefill failed\n");
			rc = 1;
			goto out;
		}
	}
	t0 = last_t = perf_now_ns();
	t_end = t0 + (uint64_t)(cl.time * 1e9);
	tl.t0 = tl.last_t = t0;
	run_jobs();
	for (uint64_t tick = 1; !stop_sig && perf_now_ns() < t_end; tick++) {
		uint64_t now, ios, due = t0 + tick * 100000000ull;
		struct timespec ts = { (time_t)(due / 1000000000ull),
				       (long)(due % 1000000000ull) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR && !stop_sig)
			;
		now = perf_now_ns();
		if (tl.f)
			tl_tick(&tl, now);
		if (now - last_t < 1000000000ull)
			continue;
		ios = atomic_load(&cl.ios);
		fprintf(cl.json ? stderr : stdout,
			"[%5.1fs] %10.0f IOPS %9.1f MiB/s errors %llu verify-errors %llu\n",
			(double)(now - t0) / 1e9,
			(double)(ios - last_ios) * 1e9 / (double)(now - last_t),
			(double)(ios - last_ios) * (double)cl.bs / 1048576.0 * 1e9 /
				(double)(now - last_t),
			(unsigned long long)atomic_load(&cl.errors),
			(unsigned long long)atomic_load(&cl.verify_errors));
		fflush(cl.json ? stderr : stdout);
		last_ios = ios;
		last_t = now;
	}
	atomic_store(&cl.stop, true);
	join_jobs();
	elapsed = perf_now_ns() - t0;
	rtrs_clt_get_stats(s, &cst);
	for (int i = 0; i < rtrs_clt_path_slots(s); i++) {
		struct rtrs_path_info in;

		if (!rtrs_clt_path_info(s, (unsigned)i, &in)) {
			hb_to += in.hb_timeouts;
			recon += in.reconnects_ok;
		}
	}
	{
		double secs = (double)elapsed / 1e9;
		double iops = (double)atomic_load(&cl.ios) / secs;
		double mibs = (double)atomic_load(&cl.bytes) / 1048576.0 / secs;

		if (cl.json) {
			printf("{\"rw\":\"%s\",\"bs\":%llu,\"qd\":%u,\"threads\":%u,"
			       "\"time_s\":%.3f,\"iops\":%.1f,\"mib_s\":%.2f,"
			       "\"lat_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,"
			       "\"max\":%.2f},"
			       "\"errors\":%llu,\"verify_errors\":%llu,"
			       "\"ios\":%llu,\"cpu_migrations\":%llu,"
			       "\"tx_backlog\":%llu,\"failovers\":%llu,"
			       "\"hb_timeouts\":%llu,\"reconnects\":%llu,"
			       "\"max_gap_ms\":%.3f,\"paths\":[",
			       rw_name(cl.rw), (unsigned long long)cl.bs, cl.qd,
			       cl.threads, secs, iops, mibs,
			       hist_pct(&cl.hist, 50), hist_pct(&cl.hist, 99),
			       hist_pct(&cl.hist, 99.9),
			       (double)atomic_load(&cl.hist.max) / 1e3,
			       (unsigned long long)atomic_load(&cl.errors),
			       (unsigned long long)atomic_load(&cl.verify_errors),
			       (unsigned long long)atomic_load(&cl.ios),
			       (unsigned long long)cst.cpu_migration_from,
			       (unsigned long long)cst.tx_backlog,
			       (unsigned long long)cst.failovers,
			       (unsigned long long)hb_to, (unsigned long long)recon,
			       cl.track_gap ? (double)atomic_load(&cl.max_gap_ns) / 1e6
					    : -1.0);
			print_paths_json(s);
			printf("]}\n");
		} else {
			if (cl.track_gap)
				printf("longest gap between completions %.1f ms, "
				       "longest request %.1f ms, failovers %llu\n",
				       (double)atomic_load(&cl.max_gap_ns) / 1e6,
				       (double)atomic_load(&cl.hist.max) / 1e6,
				       (unsigned long long)cst.failovers);
			printf("%s bs=%llu qd=%u threads=%u: %.0f IOPS, %.1f MiB/s, "
			       "lat p50 %.1f us p99 %.1f us p99.9 %.1f us, "
			       "errors %llu, verify errors %llu\n",
			       rw_name(cl.rw), (unsigned long long)cl.bs, cl.qd,
			       cl.threads, iops, mibs, hist_pct(&cl.hist, 50),
			       hist_pct(&cl.hist, 99), hist_pct(&cl.hist, 99.9),
			       (unsigned long long)atomic_load(&cl.errors),
			       (unsigned long long)atomic_load(&cl.verify_errors));
		}
	}
	if (atomic_load(&cl.errors) || atomic_load(&cl.verify_errors))
		rc = 1;
out:
	if (tl.f)
		fclose(tl.f);
	for (unsigned i = 0; i < cl.threads; i++)
		job_fini(&cl.jobs[i]);
	rtrs_clt_close(s);
	free(cl.jobs);
	return rc;
bad:
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("rtrs-perf %s\n", RTRS_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "server"))
		return server_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "raw"))
		return perf_raw_main(argc - 1, argv + 1);
	usage(stderr);
	return 2;
}
