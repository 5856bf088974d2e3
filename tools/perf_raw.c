// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rtrs-perf raw: the rtrs-perf workload on bare libfabric, the floor that
 * librtrs's overhead is measured against. Same provider, FI_EP_MSG, one
 * endpoint, the same window, blocking waits (fi_cq_sread) on both sides.
 *
 *  WRITE: the client fi_writedata()s bs bytes into slot i of the server's
 *         buffer with imm = i; the server answers each with an injected
 *         send carrying imm = i (the acknowledgement an RTRS response is).
 *  READ:  the client fi_writedata()s a 32-byte request into slot i; the
 *         server fi_write()s bs bytes into the client's slot i, then acks.
 *
 * This tool is the one place outside src/fabric/ that uses libfabric: it
 * measures the provider itself.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "perf_common.h"

#define RAW_READ_BIT (1u << 31)
#define RAW_MAX_QD 1024

struct raw_conn_data {          /* accept / connect private data */
	uint64_t addr;
	uint64_t key;
	uint64_t len;
};

struct raw {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_eq *eq;
	struct fid_cq *cq;
	struct fid_ep *ep;
	struct fid_pep *pep;
	struct fid_mr *mr;
	uint8_t *buf;
	size_t buflen;
	uint64_t raddr, rkey;
	bool virt;
	char rx[RAW_MAX_QD][64];
};

static volatile sig_atomic_t raw_stop;

static void raw_sig(int s)
{
	(void)s;
	raw_stop = 1;
}

#define CK(x)                                                                \
	do {                                                                 \
		int r_ = (int)(x);                                           \
		if (r_) {                                                    \
			fprintf(stderr, "rtrs-perf raw: %s: %s\n", #x,       \
				fi_strerror(-r_));                           \
			return 2;                                            \
		}                                                            \
	} while (0)

static int get_info(const char *prov, const char *node, const char *svc,
		    bool src, struct fi_info **out)
{
	struct fi_info *h = fi_allocinfo();
	int ret;

	h->ep_attr->type = FI_EP_MSG;
	h->caps = FI_MSG | FI_RMA;
	h->mode = FI_CONTEXT | FI_RX_CQ_DATA;
	h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				  FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	h->domain_attr->threading = FI_THREAD_SAFE;
	h->fabric_attr->prov_name = strdup(prov);
	ret = fi_getinfo(FI_VERSION(1, 17), node, svc, src ? FI_SOURCE : 0, h,
			 out);
	fi_freeinfo(h);
	return ret;
}

static int open_common(struct raw *r, size_t buflen)
{
	struct fi_eq_attr ea = { .size = 16, .wait_obj = FI_WAIT_UNSPEC };
	struct fi_cq_attr ca = { .size = 2048, .format = FI_CQ_FORMAT_DATA,
				 .wait_obj = FI_WAIT_UNSPEC };

	CK(fi_fabric(r->info->fabric_attr, &r->fabric, NULL));
	CK(fi_domain(r->fabric, r->info, &r->domain, NULL));
	CK(fi_eq_open(r->fabric, &ea, &r->eq, NULL));
	CK(fi_cq_open(r->domain, &ca, &r->cq, NULL));
	r->buflen = buflen;
	r->buf = mmap(NULL, buflen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->buf == MAP_FAILED)
		return 2;
	CK(fi_mr_reg(r->domain, r->buf, buflen,
		     FI_SEND | FI_RECV | FI_WRITE | FI_REMOTE_WRITE, 0, 0x5a5a,
		     0, &r->mr, NULL));
	r->virt = r->info->domain_attr->mr_mode & FI_MR_VIRT_ADDR;
	return 0;
}

static int bind_ep(struct raw *r, struct fi_info *info)
{
	CK(fi_endpoint(r->domain, info, &r->ep, NULL));
	CK(fi_ep_bind(r->ep, &r->eq->fid, 0));
	CK(fi_ep_bind(r->ep, &r->cq->fid, FI_TRANSMIT | FI_SELECTIVE_COMPLETION));
	CK(fi_ep_bind(r->ep, &r->cq->fid, FI_RECV));
	CK(fi_enable(r->ep));
	return 0;
}

static int post_rx(struct raw *r, unsigned i)
{
	return (int)fi_recv(r->ep, r->rx[i], sizeof(r->rx[i]),
			    fi_mr_desc(r->mr), 0, (void *)(uintptr_t)(i + 1));
}

static int wait_event(struct raw *r, uint32_t want, void *buf, size_t len)
{
	uint32_t ev;

	for (;;) {
		ssize_t n = fi_eq_sread(r->eq, &ev, buf, len, 1000, 0);

		if (n == -FI_EAGAIN && !raw_stop)
			continue;
		if (n < 0) {
			struct fi_eq_err_entry ee = { 0 };

			fi_eq_readerr(r->eq, &ee, 0);
			fprintf(stderr, "rtrs-perf raw: CM: %s\n",
				fi_strerror(ee.err ? ee.err : (int)-n));
			return 2;
		}
		if (ev == want)
			return 0;
	}
}

static int read_cq(struct raw *r, struct fi_cq_data_entry *e, size_t n)
{
	static int spin = -1;
	ssize_t got;

	if (spin < 0)
		spin = getenv("RTRS_RAW_SPIN") != NULL;
	got = spin ? fi_cq_read(r->cq, e, n) : fi_cq_sread(r->cq, e, n, NULL, 100);

	if (got == -FI_EAGAIN)
		return 0;
	if (got == -FI_EAVAIL) {
		struct fi_cq_err_entry ee = { 0 };

		fi_cq_readerr(r->cq, &ee, 0);
		fprintf(stderr, "rtrs-perf raw: completion error: %s\n",
			fi_strerror(ee.err));
		return -1;
	}
	return got < 0 ? -1 : (int)got;
}

static int raw_server(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "provider", required_argument, NULL, 'p' },
		{ "max-bs", required_argument, NULL, 'b' },
		{ 0 }
	};
	struct raw r = { 0 };
	char *listen = NULL, host[128], *colon;
	const char *prov = getenv("RTRS_PROVIDER") ? getenv("RTRS_PROVIDER") : "tcp";
	size_t maxbs = 128 << 10;
	int c;

	while ((c = getopt_long(argc, argv, "l:p:b:", opts, NULL)) != -1) {
		if (c == 'l')
			listen = optarg;
		else if (c == 'p')
			prov = optarg;
		else if (c == 'b')
			maxbs = (size_t)strtoull(optarg, NULL, 0);
		else
			return 2;
	}
	if (!listen || !(colon = strrchr(listen, ':')))
		return 2;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	CK(get_info(prov, host, colon + 1, true, &r.info));
	if (open_common(&r, maxbs * RAW_MAX_QD))
		return 2;
	CK(fi_passive_ep(r.fabric, r.info, &r.pep, NULL));
	CK(fi_pep_bind(r.pep, &r.eq->fid, 0));
	CK(fi_listen(r.pep));
	{
		char a[128];
		size_t al = sizeof(a);
		struct sockaddr_in *sin = (void *)a;

		fi_getname(&r.pep->fid, a, &al);
		printf("listening %s:%u\n", host, ntohs(sin->sin_port));
		fflush(stdout);
	}
	signal(SIGINT, raw_sig);
	signal(SIGTERM, raw_sig);
	while (!raw_stop) {
		union {
			struct fi_eq_cm_entry e;
			char b[sizeof(struct fi_eq_cm_entry) + 64];
		} u;
		struct raw_conn_data cd, peer;
		struct fi_cq_data_entry ent[64];
		bool up = true;

		if (wait_event(&r, FI_CONNREQ, &u, sizeof(u)))
			break;
		memcpy(&peer, u.e.data, sizeof(peer));
		if (bind_ep(&r, u.e.info))
			return 2;
		fi_freeinfo(u.e.info);
		for (unsigned i = 0; i < RAW_MAX_QD; i++)
			post_rx(&r, i);
		cd.addr = r.virt ? (uint64_t)(uintptr_t)r.buf : 0;
		cd.key = fi_mr_key(r.mr);
		cd.len = r.buflen;
		CK(fi_accept(r.ep, &cd, sizeof(cd)));
		if (wait_event(&r, FI_CONNECTED, &u, sizeof(u)))
			return 2;
		while (up && !raw_stop) {
			int n = read_cq(&r, ent, 64);

			if (n < 0)
				break;
			for (int i = 0; i < n; i++) {
				uint32_t imm = (uint32_t)ent[i].data;
				uint32_t slot = imm & 0xffff;
				ssize_t ret;

				if (!(ent[i].flags & FI_REMOTE_CQ_DATA))
					continue;
				if (ent[i].flags & FI_RECV)
					post_rx(&r, (unsigned)((uintptr_t)ent[i].op_context - 1));
				if (imm & RAW_READ_BIT) {
					uint32_t bs = (imm >> 16) & 0x7fff;
					size_t len = (size_t)bs << 10;

					if (!len)
						len = 512;
					do {
						ret = fi_write(r.ep, r.buf + slot * maxbs,
							       len, fi_mr_desc(r.mr), 0,
							       peer.addr + slot * maxbs,
							       peer.key, NULL);
					} while (ret == -FI_EAGAIN &&
						 (fi_cq_read(r.cq, NULL, 0), 1));
				}
				do {
					ret = fi_injectdata(r.ep, NULL, 0, imm, 0);
				} while (ret == -FI_EAGAIN && (fi_cq_read(r.cq, NULL, 0), 1));
				if (ret)
					up = false;
			}
			{
				uint32_t ev;
				char b[256];

				if (fi_eq_read(r.eq, &ev, b, sizeof(b), 0) > 0 &&
				    ev == FI_SHUTDOWN)
					up = false;
			}
		}
		fi_close(&r.ep->fid);
		r.ep = NULL;
		/* the close flushed every posted operation: drain them all,
		 * error entries included, before the next connection */
		for (;;) {
			struct fi_cq_data_entry e[8];
			ssize_t n = fi_cq_read(r.cq, e, 8);

			if (n == -FI_EAVAIL) {
				struct fi_cq_err_entry ee = { 0 };

				fi_cq_readerr(r.cq, &ee, 0);
				continue;
			}
			if (n <= 0)
				break;
		}
	}
	return 0;
}

static int raw_client(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "provider", required_argument, NULL, 'p' },
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "time", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "max-bs", required_argument, NULL, 'm' },
		{ 0 }
	};
	struct raw r = { 0 };
	char *conn = NULL, host[128], *colon;
	const char *prov = getenv("RTRS_PROVIDER") ? getenv("RTRS_PROVIDER") : "tcp";
	size_t bs = 4096, maxbs = 128 << 10;
	unsigned qd = 32;
	double secs = 5;
	bool rd = false, json = false;
	static struct perf_hist hist;
	uint64_t start[RAW_MAX_QD], ios = 0, t0, t_end, errors = 0;
	struct raw_conn_data cd, peer;
	int c;

	while ((c = getopt_long(argc, argv, "c:p:r:b:q:T:jm:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conn = optarg; break;
		case 'p': prov = optarg; break;
		case 'r': rd = !strcmp(optarg, "read"); break;
		case 'b': bs = (size_t)strtoull(optarg, NULL, 0);
			  if (strchr(optarg, 'k') || strchr(optarg, 'K'))
				  bs <<= 10;
			  break;
		case 'q': qd = (unsigned)atoi(optarg); break;
		case 'T': secs = atof(optarg); break;
		case 'j': json = true; break;
		case 'm': maxbs = (size_t)strtoull(optarg, NULL, 0); break;
		default: return 2;
		}
	}
	if (!conn || !(colon = strrchr(conn, ':')) || !qd || qd > RAW_MAX_QD ||
	    bs > maxbs || (rd && bs % 1024 && bs != 512))
		return 2;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - conn), conn);
	CK(get_info(prov, host, colon + 1, false, &r.info));
	if (open_common(&r, maxbs * RAW_MAX_QD))
		return 2;
	if (bind_ep(&r, r.info))
		return 2;
	for (unsigned i = 0; i < RAW_MAX_QD && i < qd * 2; i++)
		post_rx(&r, i);
	cd.addr = r.virt ? (uint64_t)(uintptr_t)r.buf : 0;
	cd.key = fi_mr_key(r.mr);
	cd.len = r.buflen;
	CK(fi_connect(r.ep, r.info->dest_addr, &cd, sizeof(cd)));
	{
		union {
			struct fi_eq_cm_entry e;
			char b[sizeof(struct fi_eq_cm_entry) + 64];
		} u;

		if (wait_event(&r, FI_CONNECTED, &u, sizeof(u)))
			return 2;
		memcpy(&peer, u.e.data, sizeof(peer));
	}
	signal(SIGINT, raw_sig);
	t0 = perf_now_ns();
	t_end = t0 + (uint64_t)(secs * 1e9);
	for (unsigned i = 0; i < qd; i++) {
		uint32_t imm = i;
		size_t len = bs;

		if (rd) {
			imm |= RAW_READ_BIT | (uint32_t)((bs >> 10) << 16);
			len = 32;
		}
		start[i] = perf_now_ns();
		CK(fi_writedata(r.ep, r.buf + i * maxbs, len, fi_mr_desc(r.mr), imm,
				0, peer.addr + i * maxbs, peer.key, NULL));
	}
	while (!raw_stop) {
		struct fi_cq_data_entry ent[64];
		int n = read_cq(&r, ent, 64);
		uint64_t now;

		if (n < 0) {
			errors++;
			break;
		}
		now = perf_now_ns();
		for (int i = 0; i < n; i++) {
			uint32_t imm = (uint32_t)ent[i].data, slot = imm & 0xffff;
			size_t len = rd ? 32 : bs;
			ssize_t ret;

			if (!(ent[i].flags & FI_RECV))
				continue;
			post_rx(&r, (unsigned)((uintptr_t)ent[i].op_context - 1));
			hist_add(&hist, now - start[slot]);
			ios++;
			if (now >= t_end)
				continue;
			start[slot] = now;
			do {
				ret = fi_writedata(r.ep, r.buf + slot * maxbs, len,
						   fi_mr_desc(r.mr), imm, 0,
						   peer.addr + slot * maxbs,
						   peer.key, NULL);
			} while (ret == -FI_EAGAIN && (fi_cq_read(r.cq, NULL, 0), 1));
			if (ret)
				errors++;
		}
		if (now >= t_end + 200000000ull)
			break;
		if (now >= t_end && atomic_load(&hist.n) >= ios &&
		    ios && (now - t_end) > 1000000ull) {
			/* drain: all outstanding acks arrive quickly */
		}
	}
	{
		double el = (double)(t_end - t0) / 1e9;
		double iops = (double)ios / el;

		if (json)
			printf("{\"mode\":\"raw\",\"rw\":\"%s\",\"bs\":%zu,\"qd\":%u,"
			       "\"iops\":%.1f,\"mib_s\":%.2f,\"lat_us\":{\"p50\":%.2f,"
			       "\"p99\":%.2f,\"p999\":%.2f},\"errors\":%llu,"
			       "\"verify_errors\":0}\n",
			       rd ? "read" : "write", bs, qd, iops,
			       iops * (double)bs / 1048576.0, hist_pct(&hist, 50),
			       hist_pct(&hist, 99), hist_pct(&hist, 99.9),
			       (unsigned long long)errors);
		else
			printf("raw %s bs=%zu qd=%u: %.0f IOPS, %.1f MiB/s, lat p50 "
			       "%.1f us p99 %.1f us p99.9 %.1f us, errors %llu\n",
			       rd ? "read" : "write", bs, qd, iops,
			       iops * (double)bs / 1048576.0, hist_pct(&hist, 50),
			       hist_pct(&hist, 99), hist_pct(&hist, 99.9),
			       (unsigned long long)errors);
	}
	fi_shutdown(r.ep, 0);
	return errors ? 1 : 0;
}

int perf_raw_main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return raw_server(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return raw_client(argc - 1, argv + 1);
	fprintf(stderr, "usage: rtrs-perf raw server --listen ADDR:PORT | "
		"raw client --connect ADDR:PORT --rw read|write --bs N --qd N "
		"[--time SEC] [--json]\n");
	return 2;
}
