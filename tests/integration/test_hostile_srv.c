// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * A hostile SERVER on raw libfabric against a real librtrs client (issue 15
 * item 1, the other direction; docs/security.md, "A malicious server").
 *
 * The raw server speaks just enough of the wire for a client to open a
 * session over software RMA (docs/protocol.md section 2.6): conn_rsp with
 * FRAMES_F (and FENCE_F with a path id, as the client fences), info_rsp
 * with one descriptor over its pool, heartbeat and close answers, the
 * client's requests written into its pool as RMA frames. It answers a
 * WRITE with status 0. A READ it answers, per case, by sending RMA frames
 * at the client's READ key:
 *  control - the right data at the right place, then the answer: the READ
 *            completes with that data (the raw server is good enough);
 *  wrap    - offset 2^64 - 32 and 64 bytes: off + len wraps (a check by
 *            sum would pass it and write 32 bytes before the buffer);
 *  far     - 1 TiB past the buffer;
 *  straddle- 64 bytes from 16 before the buffer's end;
 *  nokey   - a key that is nobody's;
 *  otherkey- two paths: path X's READ key on path Y's connection (Y is
 *            closed), then the right answer on X (the READ completes);
 *  failover- two paths: the wrapped frame on the READ's path, the right
 *            answer when the client re-issues the READ on the other path;
 *  kernel  - not hostile: the raw server answers as the kernel's RTRS
 *            server does (no FENCE_F, no path id, docs/protocol.md 6.1):
 *            the session opens without fencing, the READ completes, a
 *            WRITE carries no fence record, a READ of two segments is
 *            refused (-EOPNOTSUPP), the close sends no CLOSE;
 *  big     - not hostile: the raw server says its receives take big
 *            frames (conn_rsp BIG, protocol.md 2.6).
 * In control and big, a WRITE of 64 KiB follows the READ and lands whole:
 * in frames of at most 32 KiB in control (a server that does not say BIG,
 * as before it existed), in one frame in big.
 * Each hostile frame carries the answer's immediate, so a client that
 * took it would complete the READ with it. Every time: the path that got
 * the frame is closed by the client, nothing lands in or around the READ
 * buffer (4 KiB canaries on both sides, the buffer's old contents), the
 * READ fails (one path) or completes with the right data on the other
 * path, and the client process lives to close the session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>

#include "harness.h"
#include "raw_frame.h"
#include "proto/wire.h"
#include "rtrs/rtrs.h"

#define QD 16
#define MAX_IO 65536                    /* a WRITE of 64 KiB: frames */
#define IO_LEN 4096                     /* the READs */
#define MAX_HDR 1024
#define CHUNK (MAX_IO + MAX_HDR)
#define POOL ((size_t)QD * CHUNK)
#define NRX 8
#define RXL (SWR_HDR + RTRS_PROTO_FRAME_BIG)
#define NTX 64
#define TXL (SWR_HDR + IO_LEN)
#define NCON 8
#define NPATH 2
#define POOL_KEY(i) (0x51000u + (unsigned)(i))

enum hcase { C_CONTROL, C_WRAP, C_FAR, C_STRADDLE, C_NOKEY, C_OTHERKEY,
	     C_FAILOVER, C_KERNEL, C_BIG };
static const char *const case_name[] = { "control", "wrap", "far",
	"straddle", "nokey", "otherkey", "failover", "kernel", "big" };

struct hrx {
	struct fi_context ctx;          /* first: the completion's context */
	struct hcon *c;
	uint8_t buf[RXL];
};

struct htx {
	struct fi_context ctx;
	uint8_t buf[TXL];
};

struct hcon {
	struct fid_ep *ep;
	int path;                       /* index by sess_uuid */
	uint16_t cid;
	bool fence;
	_Atomic bool up, shut;
	struct hrx rx[NRX];
	struct htx tx[NTX];
	unsigned ntx;
};

static struct hsrv {
	struct fi_info *info[NPATH];
	struct fid_fabric *fab;
	struct fid_domain *dom;
	struct fid_eq *eq;
	struct fid_cq *cq;
	struct fid_pep *pep[NPATH];
	struct fid_mr *mr;
	char addr[NPATH][160];
	struct hcon con[NCON];
	unsigned ncon;
	uint8_t path_uuid[NPATH][16];
	unsigned npath;
	uint8_t pool[NPATH][POOL];
	struct rtrs_geom g;
	enum hcase mode;
	pthread_t thr;
	_Atomic bool stop;
	_Atomic int reads, attacks, answers;
	_Atomic int writes, fence_recs, closes;  /* C_KERNEL */
	_Atomic int rma_frames, rma_max;        /* RMA frames, longest */
	uint8_t wdata[MAX_IO];                  /* the last WRITE's chunk */
	struct hcon *attacked;          /* the con that got the hostile frame */
} H;

static const char *prov;

/* ---- the raw server ---- */

/* One frame on @c: header, then @len bytes of @payload. */
static void hsend(struct hcon *c, unsigned type, unsigned flags, uint32_t imm,
		  uint32_t key, uint64_t off, const void *payload, size_t len)
{
	struct htx *t = &c->tx[c->ntx++ % NTX];

	if (len > TXL - SWR_HDR || !atomic_load(&c->up) ||
	    atomic_load(&c->shut))
		return;
	frame_put(t->buf, type, flags, imm, key, (uint32_t)len, off);
	if (len)
		memcpy(t->buf + SWR_HDR, payload, len);
	for (int i = 0; i < 1000; i++) {
		ssize_t r = fi_send(c->ep, t->buf, SWR_HDR + len,
				    fi_mr_desc(H.mr), 0, &t->ctx);

		if (r != -FI_EAGAIN)
			return;
		{
			struct fi_cq_data_entry e[8];

			fi_cq_read(H.cq, e, 0); /* progress */
		}
		t_sleep_ms(1);
	}
}

static struct hcon *io_con_of(int path)
{
	for (unsigned i = 0; i < H.ncon; i++)
		if (H.con[i].path == path && H.con[i].cid == 1)
			return &H.con[i];
	return NULL;
}

/* The data the right answer carries. */
static void answer_data(uint8_t *b, size_t n)
{
	t_fill(b, n, 42);
}

static void answer_read(struct hcon *c, uint32_t chunk,
			const struct rtrs_sg_desc *d)
{
	static uint8_t data[IO_LEN];

	answer_data(data, d->len);
	hsend(c, SWR_RMA, SWR_LAST | SWR_IMM, rtrs__proto_io_rsp_imm(chunk, 0),
	      d->key, d->addr, data, d->len);
	atomic_fetch_add(&H.answers, 1);
}

static void on_read(struct hcon *c, uint32_t chunk, const struct rtrs_sg_desc *d)
{
	static uint8_t junk[64];
	uint32_t imm = rtrs__proto_io_rsp_imm(chunk, 0);
	int n = atomic_fetch_add(&H.reads, 1);
	struct hcon *y;

	memset(junk, 0xe7, sizeof(junk));
	if (H.mode == C_CONTROL || H.mode == C_KERNEL || H.mode == C_BIG ||
	    n > 0) {
		answer_read(c, chunk, d);
		return;
	}
	H.attacked = c;
	atomic_fetch_add(&H.attacks, 1);
	switch (H.mode) {
	case C_WRAP:
	case C_FAILOVER:
		hsend(c, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key, 0 - 32ull,
		      junk, 64);
		break;
	case C_FAR:
		hsend(c, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key,
		      d->addr + (1ull << 40), junk, 64);
		break;
	case C_STRADDLE:
		hsend(c, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key,
		      d->addr + d->len - 16, junk, 64);
		break;
	case C_NOKEY:
		hsend(c, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key ^ 0x5a5a5a5a,
		      d->addr, junk, 64);
		break;
	case C_OTHERKEY:
		/* X's key on Y's IO connection; then X gets its answer */
		y = io_con_of(!c->path);
		H.attacked = y;
		if (y)
			hsend(y, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key,
			      d->addr, junk, 64);
		answer_read(c, chunk, d);
		break;
	case C_CONTROL:
	case C_KERNEL:
	case C_BIG:
		break;
	}
}

/* A request written into our pool: decode it, answer it. */
static void on_request(struct hcon *c, uint32_t imm)
{
	uint32_t chunk, off;
	struct rtrs_io_msg m;
	struct rtrs_sg_desc d;
	const uint8_t *ck;

	if (rtrs_imm_type(imm) != RTRS_IMM_IO_REQ ||
	    rtrs__proto_io_req_decode(&H.g, rtrs_imm_payload(imm), &chunk, &off))
		return;
	ck = H.pool[c->path] + (size_t)chunk * CHUNK;
	if (rtrs__proto_io_msg_decode(ck, &H.g, off, c->fence, &m))
		return;
	if (m.type == RTRS_MSG_READ) {
		if (!rtrs__proto_read_desc(ck, &H.g, &m, 0, &d))
			on_read(c, chunk, &d);
	} else {
		static const uint8_t zero[RTRS_FENCE_LEN];

		/* the pool starts zeroed: a fence record (sequence > 0)
		 * after the message shows */
		memcpy(H.wdata, ck, MAX_IO);
		atomic_fetch_add(&H.writes, 1);
		if ((uint64_t)off + RTRS_WRITE_MSG_LEN + RTRS_FENCE_LEN <= CHUNK &&
		    memcmp(ck + off + RTRS_WRITE_MSG_LEN, zero, RTRS_FENCE_LEN))
			atomic_fetch_add(&H.fence_recs, 1);
		hsend(c, SWR_MSG, SWR_LAST | SWR_IMM,
		      rtrs__proto_io_rsp_imm(chunk, 0), 0, 0, NULL, 0);
	}
	/* zeroed again for the next request to this chunk */
	memset((uint8_t *)ck, 0, CHUNK);
}

static void on_frame(struct hcon *c, const uint8_t *h, size_t n)
{
	unsigned type = h[2], flags = h[3];
	uint32_t imm = frame_le32(h + 4), key = frame_le32(h + 8),
		 len = frame_le32(h + 12);
	uint64_t off = 0;

	for (int i = 0; i < 8; i++)
		off |= (uint64_t)h[16 + i] << (8 * i);
	if (n < SWR_HDR || len != n - SWR_HDR)
		return;
	if (type == SWR_RMA) {
		if (key != POOL_KEY(c->path) || off > POOL || len > POOL - off)
			return;
		atomic_fetch_add(&H.rma_frames, 1);
		if ((int)len > atomic_load(&H.rma_max))
			atomic_store(&H.rma_max, (int)len);
		memcpy(H.pool[c->path] + off, h + SWR_HDR, len);
		if ((flags & SWR_LAST) && (flags & SWR_IMM))
			on_request(c, imm);
		return;
	}
	if (type != SWR_MSG || !(flags & SWR_LAST))
		return;
	if (flags & SWR_IMM) {
		if (rtrs_imm_type(imm) == RTRS_IMM_HB)
			hsend(c, SWR_MSG, SWR_LAST | SWR_IMM,
			      rtrs_imm(RTRS_IMM_HB_ACK, 0), 0, 0, NULL, 0);
		else if (rtrs_imm_type(imm) == RTRS_IMM_CLOSE) {
			atomic_fetch_add(&H.closes, 1);
			hsend(c, SWR_MSG, SWR_LAST | SWR_IMM,
			      rtrs_imm(RTRS_IMM_CLOSE_ACK, 0), 0, 0, NULL, 0);
		}
		return;
	}
	if (rtrs__proto_msg_type(h + SWR_HDR, len) == RTRS_MSG_INFO_REQ) {
		uint8_t rsp[RTRS_INFO_RSP_LEN(1)];
		struct rtrs_sg_desc d = { .addr = 0, .key = POOL_KEY(c->path),
					  .len = (uint32_t)POOL };
		size_t l = rtrs__proto_info_rsp_encode(rsp, sizeof(rsp), &d, 1);

		hsend(c, SWR_MSG, SWR_LAST, 0, 0, 0, rsp, l);
	}
}

static void on_connreq(struct fi_eq_cm_entry *e, size_t datalen)
{
	struct rtrs_conn_req q;
	struct rtrs_conn_rsp r = { 0 };
	uint8_t priv[RTRS_CONN_PRIV_LEN];
	struct hcon *c;
	int path = -1;

	if (rtrs__proto_conn_req_decode(e->data, datalen, &q) ||
	    H.ncon == NCON) {
		for (int i = 0; i < NPATH; i++)
			if (H.pep[i] && &H.pep[i]->fid == e->fid)
				fi_reject(H.pep[i], e->info->handle, NULL, 0);
		fi_freeinfo(e->info);
		return;
	}
	for (unsigned i = 0; i < H.npath; i++)
		if (!memcmp(H.path_uuid[i], q.sess_uuid, 16))
			path = (int)i;
	if (path < 0 && H.npath < NPATH) {
		path = (int)H.npath++;
		memcpy(H.path_uuid[path], q.sess_uuid, 16);
	}
	c = &H.con[H.ncon];
	c->path = path < 0 ? 0 : path;
	c->cid = q.cid;
	/* the kernel's server reads no fence record */
	c->fence = q.fence && H.mode != C_KERNEL;
	for (int i = 0; i < NRX; i++)
		c->rx[i].c = c;
	if (path < 0 || fi_endpoint(H.dom, e->info, &c->ep, c) ||
	    fi_ep_bind(c->ep, &H.eq->fid, 0) ||
	    fi_ep_bind(c->ep, &H.cq->fid, FI_TRANSMIT | FI_RECV) ||
	    fi_enable(c->ep)) {
		if (c->ep)
			fi_close(&c->ep->fid);
		c->ep = NULL;
		fi_freeinfo(e->info);
		return;
	}
	H.ncon++;
	for (int i = 0; i < NRX; i++)
		fi_recv(c->ep, c->rx[i].buf, RXL, fi_mr_desc(H.mr), 0,
			&c->rx[i].ctx);
	r.queue_depth = QD;
	r.max_io_size = MAX_IO;
	r.max_hdr_size = MAX_HDR;
	r.flags = RTRS_MSG_FRAMES_F | (c->fence ? RTRS_MSG_FENCE_F : 0) |
		  (H.mode == C_BIG && q.big ? RTRS_MSG_BIG_F : 0);
	r.path_id = H.mode == C_KERNEL ? 0 : (uint32_t)c->path + 1;
	rtrs__proto_conn_rsp_encode(priv, &r);
	fi_accept(c->ep, priv, sizeof(priv));
	fi_freeinfo(e->info);
}

static struct hcon *con_of(fid_t fid)
{
	for (unsigned i = 0; i < H.ncon; i++)
		if (H.con[i].ep && &H.con[i].ep->fid == fid)
			return &H.con[i];
	return NULL;
}

static void *hsrv_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&H.stop)) {
		union {
			struct fi_eq_cm_entry e;
			char b[sizeof(struct fi_eq_cm_entry) + 256];
		} u;
		struct fi_cq_data_entry e[16];
		uint32_t ev;
		ssize_t n = fi_eq_read(H.eq, &ev, &u, sizeof(u), 0);
		bool idle = true;

		if (n > 0) {
			struct hcon *c = con_of(u.e.fid);

			idle = false;
			if (ev == FI_CONNREQ)
				on_connreq(&u.e, (size_t)n - sizeof(u.e));
			else if (ev == FI_CONNECTED && c)
				atomic_store(&c->up, true);
			else if (ev == FI_SHUTDOWN && c)
				atomic_store(&c->shut, true);
		} else if (n == -FI_EAVAIL) {
			struct fi_eq_err_entry ee = { 0 };
			struct hcon *c;

			fi_eq_readerr(H.eq, &ee, 0);
			c = con_of(ee.fid);
			if (c)
				atomic_store(&c->shut, true);
		}
		n = fi_cq_read(H.cq, e, 16);
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee = { 0 };

			fi_cq_readerr(H.cq, &ee, 0);
		}
		for (ssize_t i = 0; i < n; i++) {
			struct hrx *rx = e[i].op_context;

			idle = false;
			if (!(e[i].flags & FI_RECV) || !rx)
				continue;
			on_frame(rx->c, rx->buf, e[i].len);
			if (!atomic_load(&rx->c->shut))
				fi_recv(rx->c->ep, rx->buf, RXL, fi_mr_desc(H.mr),
					0, &rx->ctx);
		}
		if (idle)
			t_sleep_ms(1);
	}
	return NULL;
}

static int hsrv_start(enum hcase mode)
{
	struct fi_eq_attr ea = { .size = 64, .wait_obj = FI_WAIT_UNSPEC };
	struct fi_cq_attr ca = { .size = 1024, .format = FI_CQ_FORMAT_DATA,
				 .wait_obj = FI_WAIT_UNSPEC };
	int ret = 0;

	memset(&H, 0, sizeof(H));
	H.mode = mode;
	if (rtrs__proto_geom(&H.g, QD, MAX_IO, MAX_HDR))
		return -1;
	for (int i = 0; i < NPATH && !ret; i++) {
		struct fi_info *h = fi_allocinfo();

		h->ep_attr->type = FI_EP_MSG;
		h->caps = FI_MSG;
		h->mode = FI_CONTEXT;
		h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
					  FI_MR_ALLOCATED | FI_MR_PROV_KEY;
		h->fabric_attr->prov_name = strdup(prov);
		ret = fi_getinfo(FI_VERSION(1, 17), t_addr(i), "0", FI_SOURCE,
				 h, &H.info[i]);
		fi_freeinfo(h);
	}
	ret = ret ? ret : fi_fabric(H.info[0]->fabric_attr, &H.fab, NULL);
	ret = ret ? ret : fi_domain(H.fab, H.info[0], &H.dom, NULL);
	ret = ret ? ret : fi_eq_open(H.fab, &ea, &H.eq, NULL);
	ret = ret ? ret : fi_cq_open(H.dom, &ca, &H.cq, NULL);
	ret = ret ? ret : fi_mr_reg(H.dom, H.con, sizeof(H.con),
				    FI_SEND | FI_RECV, 0, 0, 0, &H.mr, NULL);
	for (int i = 0; i < NPATH && !ret; i++) {
		struct sockaddr_in sa;
		size_t sl = sizeof(sa);

		ret = fi_passive_ep(H.fab, H.info[i], &H.pep[i], NULL);
		ret = ret ? ret : fi_pep_bind(H.pep[i], &H.eq->fid, 0);
		ret = ret ? ret : fi_listen(H.pep[i]);
		ret = ret ? ret : fi_getname(&H.pep[i]->fid, &sa, &sl);
		if (!ret)
			snprintf(H.addr[i], sizeof(H.addr[i]), "%s:%u",
				 t_addr(i), ntohs(sa.sin_port));
	}
	if (ret) {
		fprintf(stderr, "raw server: %s\n", fi_strerror(-ret));
		return -1;
	}
	return pthread_create(&H.thr, NULL, hsrv_main, NULL) ? -1 : 0;
}

static void hsrv_stop(void)
{
	atomic_store(&H.stop, true);
	pthread_join(H.thr, NULL);
	for (unsigned i = 0; i < H.ncon; i++)
		if (H.con[i].ep)
			fi_close(&H.con[i].ep->fid);
	for (int i = 0; i < NPATH; i++) {
		if (H.pep[i])
			fi_close(&H.pep[i]->fid);
		if (H.info[i])
			fi_freeinfo(H.info[i]);
	}
	if (H.mr)
		fi_close(&H.mr->fid);
	if (H.cq)
		fi_close(&H.cq->fid);
	if (H.eq)
		fi_close(&H.eq->fid);
	if (H.dom)
		fi_close(&H.dom->fid);
	if (H.fab)
		fi_close(&H.fab->fid);
}

/* ---- the client ---- */

struct rd {
	_Atomic int done, status;
};

static void conf(void *priv, int status)
{
	struct rd *r = priv;

	atomic_store(&r->status, status);
	atomic_store(&r->done, 1);
}

#define CANARY 4096
#define CANARY_BYTE 0xc5
#define OLD_BYTE 0x77

static bool all_are(const uint8_t *b, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

static int path_state(struct rtrs_clt_sess *s, unsigned idx)
{
	struct rtrs_path_info in;

	return rtrs_clt_path_info(s, idx, &in) ? -1 : (int)in.state;
}

/* C_KERNEL, after the READ: a WRITE without a fence record, and a READ
 * of two segments refused before it reaches the wire. */
static void kernel_checks(struct rtrs_clt_sess *s, struct rtrs_permit *pm,
			  uint8_t *buf)
{
	struct rd w = { 0, 1 };
	struct rtrs_req_ops ops = { &w, conf };
	uint32_t h = 0;
	struct iovec hv = { &h, sizeof(h) }, dv = { buf, IO_LEN },
		     two[2] = { { buf, 512 }, { buf + 1024, 512 } };
	int ret = rtrs_clt_request(s, RTRS_WRITE, &ops, pm, &hv, 1, &dv, 1, NULL);

	CHECK(ret == 0, "kernel: WRITE not posted: %s", rtrs_strerror(ret));
	for (int i = 0; !ret && i < 10000 && !atomic_load(&w.done); i++)
		t_sleep_ms(1);
	CHECK(!ret && atomic_load(&w.done) && atomic_load(&w.status) == 0,
	      "kernel: the WRITE did not complete with 0");
	CHECK_EQ(atomic_load(&H.writes), 1);
	CHECK(atomic_load(&H.fence_recs) == 0,
	      "kernel: the WRITE carried a fence record");
	ret = rtrs_clt_request(s, RTRS_READ, &ops, pm, &hv, 1, two, 2, NULL);
	CHECK(ret == -EOPNOTSUPP, "kernel: a READ of two segments: %s, "
	      "not -EOPNOTSUPP", rtrs_strerror(ret));
}

/* C_CONTROL and C_BIG, after the READ: a WRITE of 64 KiB lands whole,
 * in frames of at most 32 KiB to this server, which does not say BIG
 * (an older peer's receives), and in one frame when it says BIG. */
static void frame_checks(struct rtrs_clt_sess *s, struct rtrs_permit *pm,
			 enum hcase mode)
{
	static uint8_t data[MAX_IO - 64];
	struct rd w = { 0, 1 };
	struct rtrs_req_ops ops = { &w, conf };
	uint32_t h = 0;
	struct iovec hv = { &h, sizeof(h) }, dv = { data, sizeof(data) };
	int ret, nf, mx, writes = atomic_load(&H.writes);

	t_fill(data, sizeof(data), 9);
	atomic_store(&H.rma_frames, 0);
	atomic_store(&H.rma_max, 0);
	ret = rtrs_clt_request(s, RTRS_WRITE, &ops, pm, &hv, 1, &dv, 1, NULL);
	CHECK(ret == 0, "%s: WRITE not posted: %s", case_name[mode],
	      rtrs_strerror(ret));
	for (int i = 0; !ret && i < 10000 && !atomic_load(&w.done); i++)
		t_sleep_ms(1);
	CHECK(!ret && atomic_load(&w.done) && atomic_load(&w.status) == 0,
	      "%s: the WRITE did not complete with 0", case_name[mode]);
	/* H.writes counts after wdata is copied */
	CHECK(atomic_load(&H.writes) == writes + 1 &&
	      !memcmp(H.wdata, data, sizeof(data)),
	      "%s: the WRITE's data did not land whole", case_name[mode]);
	nf = atomic_load(&H.rma_frames);
	mx = atomic_load(&H.rma_max);
	if (mode == C_BIG)
		CHECK(nf == 1 && mx > (int)sizeof(data),
		      "big: %d frames (longest %d) for a WRITE of %zu bytes to "
		      "a server that takes big frames", nf, mx, sizeof(data));
	else
		CHECK(nf >= 2 && mx <= (int)RTRS_PROTO_FRAME_MIN,
		      "control: %d frames (longest %d) to a server that did "
		      "not say BIG", nf, mx);
	printf("hostile server %s: WRITE of %zu bytes: %d frame(s), the longest "
	       "%d bytes\n", case_name[mode], sizeof(data), nf, mx);
}

static void run_case(enum hcase mode)
{
	const unsigned npaths = mode >= C_OTHERKEY && mode <= C_KERNEL ? 2 : 1;
	struct rtrs_path_addr pa[2];
	struct rtrs_clt_attr a;
	struct rtrs_clt_sess *s = NULL;
	struct rtrs_permit *pm;
	struct rd r = { 0, 1 };
	struct rtrs_req_ops ops = { &r, conf };
	struct { uint32_t op, off, len; } h = { 0, 0, IO_LEN };
	uint8_t *mem = malloc(CANARY + IO_LEN + CANARY), *buf = mem + CANARY;
	uint8_t want[IO_LEN];
	struct iovec hv = { &h, sizeof(h) }, dv = { buf, IO_LEN };
	bool hostile = mode != C_CONTROL && mode != C_KERNEL && mode != C_BIG,
	     fail_expected;
	int ret, st;

	if (!mem || hsrv_start(mode)) {
		CHECK(0, "%s: raw server did not start", case_name[mode]);
		free(mem);
		return;
	}
	memset(mem, CANARY_BYTE, CANARY + IO_LEN + CANARY);
	memset(buf, OLD_BYTE, IO_LEN);
	answer_data(want, IO_LEN);
	for (unsigned i = 0; i < npaths; i++)
		pa[i] = (struct rtrs_path_addr){ NULL, H.addr[i] };
	rtrs_clt_attr_init(&a);
	a.io_cons = 1;
	a.ctl_disable = 1;
	a.connect_timeout_ms = 3000;
	a.max_reconnect_attempts = 0;
	ret = rtrs_clt_open("hostile-srv", pa, npaths, &a, &s);
	CHECK(ret == 0, "%s: open against the raw server: %s", case_name[mode],
	      rtrs_strerror(ret));
	if (ret)
		goto out;
	/* a READ: the raw server answers it its way */
	ret = rtrs_clt_get_permit(s, RTRS_IO_CON, RTRS_PERMIT_WAIT, &pm);
	CHECK_EQ(ret, 0);
	if (ret)
		goto out_close;
	ret = rtrs_clt_request(s, RTRS_READ, &ops, pm, &hv, 1, &dv, 1, NULL);
	CHECK(ret == 0, "%s: READ not posted: %s", case_name[mode],
	      rtrs_strerror(ret));
	for (int i = 0; !ret && i < 10000 && !atomic_load(&r.done); i++)
		t_sleep_ms(1);
	st = atomic_load(&r.status);
	CHECK(ret || atomic_load(&r.done), "%s: the READ never completed",
	      case_name[mode]);
	/* one path: the hostile frame costs the READ; two: it fails over
	 * (or, otherkey, was answered on its own path) */
	fail_expected = hostile && npaths == 1;
	if (fail_expected)
		CHECK(st < 0, "%s: the READ succeeded (%d) after a hostile frame",
		      case_name[mode], st);
	else
		CHECK(st == 0 && !memcmp(buf, want, IO_LEN),
		      "%s: the READ: %s, data %s", case_name[mode],
		      rtrs_strerror(st), memcmp(buf, want, IO_LEN) ? "wrong" :
		      "right");
	if (fail_expected)
		CHECK(all_are(buf, IO_LEN, OLD_BYTE),
		      "%s: bytes landed in the READ buffer", case_name[mode]);
	CHECK(all_are(mem, CANARY, CANARY_BYTE) &&
	      all_are(buf + IO_LEN, CANARY, CANARY_BYTE),
	      "%s: the canaries around the READ buffer changed",
	      case_name[mode]);
	if (hostile) {
		struct hcon *x = H.attacked;
		bool closed = false;

		CHECK_EQ(atomic_load(&H.attacks), 1);
		/* the client closed the attacked path's connections */
		for (int i = 0; x && i < 3000 && !closed; i++) {
			closed = atomic_load(&x->shut);
			if (!closed)
				t_sleep_ms(1);
		}
		CHECK(closed, "%s: the client did not close the attacked "
		      "connection", case_name[mode]);
		if (x)
			CHECK(path_state(s, (unsigned)x->path) !=
			      RTRS_PATH_CONNECTED,
			      "%s: the attacked path is still connected",
			      case_name[mode]);
		if (npaths == 2 && x)
			CHECK_EQ(path_state(s, (unsigned)!x->path),
				 RTRS_PATH_CONNECTED);
	}
	if (mode == C_KERNEL)
		kernel_checks(s, pm, buf);
	if (mode == C_CONTROL || mode == C_BIG)
		frame_checks(s, pm, mode);
	printf("hostile server %s: READ %s, %d hostile frame(s), %d answer(s), "
	       "canaries intact: %s\n", case_name[mode],
	       st ? rtrs_strerror(st) : "ok", atomic_load(&H.attacks),
	       atomic_load(&H.answers),
	       all_are(mem, CANARY, CANARY_BYTE) &&
	       all_are(buf + IO_LEN, CANARY, CANARY_BYTE) ? "yes" : "NO");
	rtrs_clt_put_permit(s, pm);
out_close:
	rtrs_clt_close(s);
	if (mode == C_KERNEL)
		CHECK(atomic_load(&H.closes) == 0,
		      "kernel: the client sent CLOSE to a server without it");
out:
	hsrv_stop();
	free(mem);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *n = getenv("RTRS_NO_CQ_DATA"), *sw = getenv("RTRS_SW_RMA");

	prov = getenv("RTRS_PROVIDER") ? getenv("RTRS_PROVIDER") : "tcp";
	/* frames only: the providers (and settings) with software RMA */
	if ((n && strchr("12", n[0])) ||
	    (!strcmp(prov, "verbs") && !(sw && !strcmp(sw, "1")))) {
		printf("skip: no software RMA on %s\n", prov);
		return 77;
	}
	for (int m = C_CONTROL; m <= C_BIG; m++)
		if (!only || !strcmp(only, case_name[m]))
			run_case((enum hcase)m);
	return t_finish();
}
