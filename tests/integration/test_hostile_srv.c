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
 *            frames (conn_rsp BIG, protocol.md 2.6);
 *  longlen - the READ's answer as a header alone whose len says
 *            132 KiB + 1: more than any receive takes (on a stream, a
 *            malformed frame at its header, 2.6a; on libfabric, a len
 *            that runs past its message);
 *  nohello - provider sock only (protocol.md 2.6a): the raw server reads
 *            the client's hello and answers with anything but an accept
 *            (bytes of 0xff, a hello too long, a connect hello, one cut
 *            short, an accept whose conn_rsp is garbage, nothing): the
 *            open fails with an error, in time, the client closes the
 *            connection and lives.
 * In control and big, a WRITE of 64 KiB follows the READ and lands whole:
 * in frames of at most 32 KiB in control (a server that does not say BIG,
 * as before it existed), in one frame in big.
 * Each hostile frame carries the answer's immediate, so a client that
 * took it would complete the READ with it. Every time: the path that got
 * the frame is closed by the client, nothing lands in or around the READ
 * buffer (4 KiB canaries on both sides, the buffer's old contents), the
 * READ fails (one path) or completes with the right data on the other
 * path, and the client process lives to close the session.
 *
 * Provider sock (RTRS_PROVIDER=sock, docs/protocol.md 2.6a) has no
 * libfabric: the raw server is then a TCP listener per path that reads
 * the client's hello, answers with an accept hello carrying the same
 * conn_rsp, and speaks the same frames on the stream.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
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
	     C_FAILOVER, C_KERNEL, C_BIG, C_LONGLEN, C_NOHELLO };
static const char *const case_name[] = { "control", "wrap", "far",
	"straddle", "nokey", "otherkey", "failover", "kernel", "big",
	"longlen", "nohello" };

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
	int fd;                         /* sock: the stream */
	size_t sfill;                   /* sock: its bytes in rx[0].buf */
	bool sdead;                     /* sock: it broke the frame rules */
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
	/* sock */
	int lfd[NPATH];                 /* the listeners */
	struct hpend {                  /* a connection before its hello */
		int fd;
		size_t got;
		uint8_t b[SK_HELLO + SK_PRIV_MAX];
	} pend[NCON];
	int junk, junk_fd;              /* C_NOHELLO: the answer, its con */
	_Atomic int junk_conns;
	_Atomic bool junk_closed;       /* the client closed junk_fd */
} H;

static const char *prov;
static bool sk;                         /* provider sock: TCP streams */

/* ---- the raw server ---- */

/* One frame on @c: header, then @len bytes of @payload. A header whose
 * len says @hlen instead when @hlen is not 0 (no payload follows). */
static void hsend_len(struct hcon *c, unsigned type, unsigned flags,
		      uint32_t imm, uint32_t key, uint64_t off,
		      const void *payload, size_t len, uint32_t hlen)
{
	struct htx *t = &c->tx[c->ntx++ % NTX];

	if (len > TXL - SWR_HDR || !atomic_load(&c->up) ||
	    atomic_load(&c->shut))
		return;
	frame_put(t->buf, type, flags, imm, key, hlen ? hlen : (uint32_t)len,
		  off);
	if (len)
		memcpy(t->buf + SWR_HDR, payload, len);
	if (sk) {
		sk_write(c->fd, t->buf, SWR_HDR + len, 1000);
		return;
	}
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

static void hsend(struct hcon *c, unsigned type, unsigned flags, uint32_t imm,
		  uint32_t key, uint64_t off, const void *payload, size_t len)
{
	hsend_len(c, type, flags, imm, key, off, payload, len, 0);
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
	case C_LONGLEN:
		hsend_len(c, SWR_RMA, SWR_LAST | SWR_IMM, imm, d->key, d->addr,
			  NULL, 0, SK_FRAME_MAX + 1);
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
	case C_NOHELLO:
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

/* The next connection's slot for request @q (its path by sess_uuid, its
 * cid, whether it fences), not counted yet; NULL when no path is left. */
static struct hcon *con_slot(const struct rtrs_conn_req *q)
{
	struct hcon *c;
	int path = -1;

	for (unsigned i = 0; i < H.npath; i++)
		if (!memcmp(H.path_uuid[i], q->sess_uuid, 16))
			path = (int)i;
	if (path < 0 && H.npath < NPATH) {
		path = (int)H.npath++;
		memcpy(H.path_uuid[path], q->sess_uuid, 16);
	}
	c = &H.con[H.ncon];
	c->path = path < 0 ? 0 : path;
	c->cid = q->cid;
	/* the kernel's server reads no fence record */
	c->fence = q->fence && H.mode != C_KERNEL;
	for (int i = 0; i < NRX; i++)
		c->rx[i].c = c;
	return path < 0 ? NULL : c;
}

/* The accept's conn_rsp for connection @c, asked for by @q. */
static void con_rsp(const struct hcon *c, const struct rtrs_conn_req *q,
		    uint8_t *priv)
{
	struct rtrs_conn_rsp r = { 0 };

	r.queue_depth = QD;
	r.max_io_size = MAX_IO;
	r.max_hdr_size = MAX_HDR;
	r.flags = RTRS_MSG_FRAMES_F | (c->fence ? RTRS_MSG_FENCE_F : 0) |
		  (H.mode == C_BIG && q->big ? RTRS_MSG_BIG_F : 0);
	r.path_id = H.mode == C_KERNEL ? 0 : (uint32_t)c->path + 1;
	rtrs__proto_conn_rsp_encode(priv, &r);
}

static void on_connreq(struct fi_eq_cm_entry *e, size_t datalen)
{
	struct rtrs_conn_req q;
	uint8_t priv[RTRS_CONN_PRIV_LEN];
	struct hcon *c;

	if (rtrs__proto_conn_req_decode(e->data, datalen, &q) ||
	    H.ncon == NCON) {
		for (int i = 0; i < NPATH; i++)
			if (H.pep[i] && &H.pep[i]->fid == e->fid)
				fi_reject(H.pep[i], e->info->handle, NULL, 0);
		fi_freeinfo(e->info);
		return;
	}
	c = con_slot(&q);
	if (!c || fi_endpoint(H.dom, e->info, &c->ep, c) ||
	    fi_ep_bind(c->ep, &H.eq->fid, 0) ||
	    fi_ep_bind(c->ep, &H.cq->fid, FI_TRANSMIT | FI_RECV) ||
	    fi_enable(c->ep)) {
		if (c && c->ep)
			fi_close(&c->ep->fid);
		if (c)
			c->ep = NULL;
		fi_freeinfo(e->info);
		return;
	}
	H.ncon++;
	for (int i = 0; i < NRX; i++)
		fi_recv(c->ep, c->rx[i].buf, RXL, fi_mr_desc(H.mr), 0,
			&c->rx[i].ctx);
	con_rsp(c, &q, priv);
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

/* ---- the raw server on provider sock (docs/protocol.md 2.6a) ---- */

/* C_NOHELLO: what comes instead of an accept hello, by H.junk */
static const char *const junk_name[] = {
	"64 bytes of 0xff", "a hello of len 300", "a connect hello back",
	"an accept hello cut short, then the close",
	"an accept hello whose conn_rsp is 0xff bytes",
	"an accept hello, a wrapping RMA frame behind it", "nothing at all",
};
#define NJUNK (sizeof(junk_name) / sizeof(junk_name[0]))

static void sk_junk(int fd)
{
	static uint8_t b[SK_HELLO + 300];
	uint8_t priv[RTRS_CONN_PRIV_LEN];
	struct hcon c0 = { .path = 0 };
	size_t n = 0;

	atomic_fetch_add(&H.junk_conns, 1);
	con_rsp(&c0, &(struct rtrs_conn_req){ 0 }, priv);
	memset(b, 0, sizeof(b));
	switch (H.junk) {
	case 0:
		memset(b, 0xff, 64);
		n = 64;
		break;
	case 1:
		sk_hello_put(b, SK_ACCEPT, 300);
		memcpy(b + SK_HELLO, priv, sizeof(priv));
		n = SK_HELLO + 300;
		break;
	case 2:
		sk_hello_put(b, SK_CONNECT, sizeof(priv));
		memcpy(b + SK_HELLO, priv, sizeof(priv));
		n = SK_HELLO + sizeof(priv);
		break;
	case 3:
		sk_hello_put(b, SK_ACCEPT, sizeof(priv));
		memcpy(b + SK_HELLO, priv, sizeof(priv));
		n = SK_HELLO + 20;
		break;
	case 4:
		sk_hello_put(b, SK_ACCEPT, sizeof(priv));
		memset(b + SK_HELLO, 0xff, sizeof(priv));
		n = SK_HELLO + sizeof(priv);
		break;
	case 5:
		/* frames may follow an accept at once (2.6a): this one
		 * names no key the client gave, at 2^64 - 32 */
		sk_hello_put(b, SK_ACCEPT, sizeof(priv));
		memcpy(b + SK_HELLO, priv, sizeof(priv));
		frame_put(b + SK_HELLO + sizeof(priv), SWR_RMA,
			  SWR_LAST | SWR_IMM, rtrs__proto_io_rsp_imm(0, 0), 1,
			  64, 0 - 32ull);
		memset(b + SK_HELLO + sizeof(priv) + SWR_HDR, 0xe7, 64);
		n = SK_HELLO + sizeof(priv) + SWR_HDR + 64;
		break;
	}
	if (n)
		sk_write(fd, b, n, 1000);
	if (H.junk == 3 || H.junk_fd >= 0) {
		close(fd);      /* cut short; or a second connection */
		return;
	}
	H.junk_fd = fd;
}

/* The client's hello is whole in @p: accept it (reject a malformed
 * conn_req, as on libfabric), or answer C_NOHELLO's way. */
static void sk_connreq(struct hpend *p, size_t len)
{
	uint8_t a[SK_HELLO + RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_req q;
	struct hcon *c;
	int fd = p->fd;

	p->fd = -1;
	if (H.mode == C_NOHELLO) {
		sk_junk(fd);
		return;
	}
	if (rtrs__proto_conn_req_decode(p->b + SK_HELLO, len, &q) ||
	    H.ncon == NCON || !(c = con_slot(&q))) {
		sk_hello_put(a, SK_REJECT, 0);
		sk_write(fd, a, SK_HELLO, 1000);
		close(fd);
		return;
	}
	c->fd = fd;
	c->sfill = 0;
	H.ncon++;
	sk_hello_put(a, SK_ACCEPT, RTRS_CONN_PRIV_LEN);
	con_rsp(c, &q, a + SK_HELLO);
	if (sk_write(fd, a, sizeof(a), 1000))
		atomic_store(&c->shut, true);
	else
		atomic_store(&c->up, true);
}

/* Bytes of a connection before its hello is whole; exactly the hello is
 * read (the frames after it are the connection's). */
static void sk_pend_in(struct hpend *p)
{
	unsigned type = 0;
	int n = p->got < SK_HELLO ? 0 : sk_hello_get(p->b, &type);
	size_t want = p->got < SK_HELLO ? SK_HELLO - p->got
					: SK_HELLO + (size_t)n - p->got;
	ssize_t r = n < 0 ? 0 : sk_read(p->fd, p->b + p->got, want, 0);

	if (r == -ETIMEDOUT)
		return;
	if (r > 0) {
		p->got += (size_t)r;
		if (p->got >= SK_HELLO)
			n = sk_hello_get(p->b, &type);
		if (p->got < SK_HELLO ||
		    (n >= 0 && type == SK_CONNECT &&
		     p->got < SK_HELLO + (size_t)n))
			return;
		if (n >= 0 && type == SK_CONNECT) {
			sk_connreq(p, (size_t)n);
			return;
		}
		fprintf(stderr, "raw server: a connection's first bytes are "
			"not a connect hello\n");
	}
	close(p->fd);
	p->fd = -1;
}

/* Frames off connection @c's stream, each handled as on libfabric. Its
 * buffer is rx[0].buf (no receives are posted on a stream): one frame
 * of the largest fits. */
static void sk_con_in(struct hcon *c)
{
	uint8_t *b = c->rx[0].buf;
	ssize_t r = sk_read(c->fd, b + c->sfill, RXL - c->sfill, 0);
	size_t pos = 0;

	if (r == -ETIMEDOUT)
		return;
	if (r <= 0) {           /* the client closed it */
		atomic_store(&c->shut, true);
		return;
	}
	c->sfill += (size_t)r;
	while (c->sfill - pos >= SWR_HDR) {
		uint32_t len = frame_le32(b + pos + 12);

		if (len > RXL - SWR_HDR) {
			fprintf(stderr, "raw server: the client sent a frame "
				"of %u bytes\n", len);
			c->sdead = true;
			return;
		}
		if (c->sfill - pos < SWR_HDR + len)
			break;
		on_frame(c, b + pos, SWR_HDR + len);
		pos += SWR_HDR + len;
	}
	memmove(b, b + pos, c->sfill - pos);
	c->sfill -= pos;
}

/* One round: new connections, hellos, frames; the C_NOHELLO connection
 * watched for the client's close. */
static void sk_round(void)
{
	enum { LISTENER, PENDING, CON, JUNK };
	struct pollfd p[NPATH + NCON + NCON + 1];
	struct { int kind, i; } who[NPATH + NCON + NCON + 1];
	int n = 0;

	for (int i = 0; i < NPATH; i++) {
		p[n] = (struct pollfd){ .fd = H.lfd[i], .events = POLLIN };
		who[n].kind = LISTENER;
		who[n++].i = i;
	}
	for (int i = 0; i < NCON; i++)
		if (H.pend[i].fd >= 0) {
			p[n] = (struct pollfd){ .fd = H.pend[i].fd,
						.events = POLLIN };
			who[n].kind = PENDING;
			who[n++].i = i;
		}
	for (unsigned i = 0; i < H.ncon; i++)
		if (!atomic_load(&H.con[i].shut) && !H.con[i].sdead) {
			p[n] = (struct pollfd){ .fd = H.con[i].fd,
						.events = POLLIN };
			who[n].kind = CON;
			who[n++].i = (int)i;
		}
	if (H.junk_fd >= 0 && !atomic_load(&H.junk_closed)) {
		p[n] = (struct pollfd){ .fd = H.junk_fd, .events = POLLIN };
		who[n++].kind = JUNK;
	}
	if (poll(p, (nfds_t)n, 5) <= 0)
		return;
	for (int k = 0; k < n; k++) {
		uint8_t b[256];
		int fd, i = 0;

		if (!p[k].revents)
			continue;
		switch (who[k].kind) {
		case LISTENER:
			fd = accept4(p[k].fd, NULL, NULL,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
			while (fd >= 0 && i < NCON && H.pend[i].fd >= 0)
				i++;
			if (fd >= 0 && i == NCON)
				close(fd);
			else if (fd >= 0)
				H.pend[i] = (struct hpend){ .fd = fd };
			break;
		case PENDING:
			sk_pend_in(&H.pend[who[k].i]);
			break;
		case CON:
			sk_con_in(&H.con[who[k].i]);
			break;
		case JUNK:
			if (sk_read(H.junk_fd, b, sizeof(b), 0) == 0)
				atomic_store(&H.junk_closed, true);
			break;
		}
	}
}

static void *hsrv_main(void *arg)
{
	(void)arg;
	while (sk && !atomic_load(&H.stop))
		sk_round();
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

/* Listener @i of provider sock on test address @i, any port; H.addr[i]
 * says where. 0 or -errno. */
static int sk_listen(int i)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_PASSIVE };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *ai;
	char port[16];
	int fd, one = 1, ret = 0;

	if (getaddrinfo(t_addr(i), "0", &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl))
		ret = errno ? -errno : -EINVAL;
	else if (getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port,
			     sizeof(port), NI_NUMERICSERV))
		ret = -EINVAL;
	freeaddrinfo(ai);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	H.lfd[i] = fd;
	snprintf(H.addr[i], sizeof(H.addr[i]), "%s:%s", t_addr(i), port);
	return 0;
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
	if (sk) {
		H.junk_fd = -1;
		for (int i = 0; i < NCON; i++)
			H.pend[i].fd = -1;
		for (int i = 0; i < NPATH; i++)
			H.lfd[i] = -1;
		for (int i = 0; i < NPATH && !ret; i++)
			ret = sk_listen(i);
		if (ret) {
			fprintf(stderr, "raw server: %s\n", strerror(-ret));
			for (int i = 0; i < NPATH; i++)
				if (H.lfd[i] >= 0)
					close(H.lfd[i]);
			return -1;
		}
		return pthread_create(&H.thr, NULL, hsrv_main, NULL) ? -1 : 0;
	}
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
	if (sk) {
		for (unsigned i = 0; i < H.ncon; i++)
			close(H.con[i].fd);
		for (int i = 0; i < NCON; i++)
			if (H.pend[i].fd >= 0)
				close(H.pend[i].fd);
		for (int i = 0; i < NPATH; i++)
			if (H.lfd[i] >= 0)
				close(H.lfd[i]);
		if (H.junk_fd >= 0)
			close(H.junk_fd);
		return;
	}
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

/*
 * C_NOHELLO (provider sock): for each answer of junk_name[], a client
 * opening a session against a raw server that gives it instead of an
 * accept hello. The open fails with an error within its connect timeout
 * (3 s; 10 s, the spec's limit for a hello, at most), the client closes
 * the connection, and lives on to the next.
 */
static void nohello_case(void)
{
	for (unsigned j = 0; j < NJUNK; j++) {
		struct rtrs_path_addr pa;
		struct rtrs_clt_attr a;
		struct rtrs_clt_sess *s = NULL;
		uint64_t t0, ms;
		bool closed = false;
		int ret;

		if (hsrv_start(C_NOHELLO)) {
			CHECK(0, "nohello: raw server did not start");
			return;
		}
		H.junk = (int)j;
		pa = (struct rtrs_path_addr){ NULL, H.addr[0] };
		rtrs_clt_attr_init(&a);
		a.io_cons = 1;
		a.ctl_disable = 1;
		a.connect_timeout_ms = 3000;
		a.max_reconnect_attempts = 0;
		t0 = sk_now_ms();
		ret = rtrs_clt_open("hostile-srv", &pa, 1, &a, &s);
		ms = sk_now_ms() - t0;
		if (!ret)
			rtrs_clt_close(s);
		for (int i = 0; i < 3000 && !closed && j != 3; i++) {
			closed = atomic_load(&H.junk_closed);
			if (!closed)
				t_sleep_ms(1);
		}
		printf("hostile server nohello: %s: open %s after %llu ms, %d "
		       "connection(s), %s\n", junk_name[j],
		       ret ? rtrs_strerror(ret) : "SUCCEEDED",
		       (unsigned long long)ms, atomic_load(&H.junk_conns),
		       j == 3 ? "closed by the raw server" : closed ?
		       "closed by the client" : "LEFT OPEN by the client");
		CHECK(ret < 0, "nohello: %s: the open succeeded", junk_name[j]);
		CHECK(ms < 10500, "nohello: %s: the open took %llu ms",
		      junk_name[j], (unsigned long long)ms);
		CHECK(atomic_load(&H.junk_conns) >= 1,
		      "nohello: %s: the client never connected", junk_name[j]);
		CHECK(closed || j == 3, "nohello: %s: the client did not close "
		      "the connection", junk_name[j]);
		hsrv_stop();
	}
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	const char *n = getenv("RTRS_NO_CQ_DATA"), *sw = getenv("RTRS_SW_RMA");

	prov = getenv("RTRS_PROVIDER") ? getenv("RTRS_PROVIDER") : "tcp";
	sk = !strcmp(prov, "sock");
	/* frames only: the providers (and settings) with software RMA */
	if ((n && strchr("12", n[0])) ||
	    (!strcmp(prov, "verbs") && !(sw && !strcmp(sw, "1")))) {
		printf("skip: no software RMA on %s\n", prov);
		return 77;
	}
	for (int m = C_CONTROL; m < C_NOHELLO; m++)
		if (!only || !strcmp(only, case_name[m]))
			run_case((enum hcase)m);
	if (!only || !strcmp(only, case_name[C_NOHELLO])) {
		if (sk)
			nohello_case();
		else
			printf("hostile server nohello: skipped: the hello is "
			       "provider sock's (protocol.md 2.6a), %s "
			       "connects through libfabric's CM\n", prov);
	}
	return t_finish();
}
