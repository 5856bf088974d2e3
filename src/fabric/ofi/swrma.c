// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* RMA carried as messages where the provider's own RMA is not trusted. */
#include "ofi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/frame_rx.h"
#include "proto/wire.h"
#include "util/log.h"

/*
 * libfabric's tcp and net providers emulate RMA in software, and their
 * bound check (ofi_mr_map_verify(), 1.17 and later) compares addr + len
 * with the region's end: the sum wraps, so a write with a valid key, an
 * offset far outside the region and a length of 2^64 - offset lands
 * anywhere in the target's memory. On such providers (caps.sw_rma) we use
 * none of their RMA: nothing is registered with remote access at
 * libfabric level (a raw fi_write finds no key and the provider drops the
 * connection), and rtrs__ofi_post_write() sends frames instead:
 *
 *   le16 magic 0x5753 | u8 type | u8 flags | le32 imm | le32 key |
 *   le32 len | le64 off, then len bytes of payload          (24 + len)
 *
 * (rtrs__proto_frame_encode() and rtrs__proto_frame_decode(), proto/wire.c:
 * the header's own rules; what a frame may do, and what it does at its
 * receiver, is rtrs__fab_frame_rx(), ../frame_rx.c, shared with the socket
 * backend; the buffers around it are here.)
 *
 * type RMA: payload for [off, off + len) of the registration @key (off is
 * what rtrs__ofi_mr_raddr() gave: an offset in the region; the key must
 * be one of the endpoint's scope, rtrs__ofi_mr_reg_peer()); type MSG: a
 * message of the core, @off its position in the message. A write or a
 * message longer than the peer's frame (s->frag) goes as several frames,
 * posted back to back under post_lock; the last has SWR_LAST and, with an
 * immediate, SWR_IMM.
 *
 * Frame sizes: every receiver takes payloads of RTRS_PROTO_FRAME_MIN
 * (32 KiB); ours take RTRS_PROTO_FRAME_BIG (a 128 KiB IO with its
 * header: one frame, one sendmsg, where 32 KiB frames took four) and say
 * so (conn_req BIG, conn_rsp BIG); a sender uses big frames only towards
 * a peer that said so (rtrs__ofi_ep_takes()).
 *
 * Batches: one provider message may carry several whole frames back to
 * back (at most one receive of the peer: SWR_HDR + s->frag bytes in all).
 * Every receiver takes them; a sender batches only to a peer that said it
 * takes them (RTRS_CONN_BATCH_F in its conn_req, rtrs__ofi_ep_takes()), and
 * only where one call posts several frames (rtrs__ofi_swr_write_send():
 * a READ's data and the answer that carries the chunk's new key, one
 * sendmsg instead of two). Each frame of a batch is checked as a frame
 * alone, and must end within the message.
 *
 * Corked answers: while a loop hands one endpoint's completions to the
 * core (rtrs__ofi_swr_cork() .. rtrs__ofi_swr_uncork(), the drain thread
 * only), the short unsignalled sends and write-sends the core posts on
 * that endpoint from that thread (answers: a WRITE's, its immediate and,
 * with always_invalidate, the chunk's new key; a small READ's data from
 * its chunk with the answer carrying the new key) are copied into a cork
 * buffer instead of sent, and go as one
 * batch after each CQ read's entries (rtrs__ofi_swr_push()): at QD 32,
 * one sendmsg for the answers of every request one read found, where each
 * had its own. Any other post on the endpoint sends the cork first, so the
 * order of frames is the order of posts. Only to a peer that takes
 * batches, and at most SWR_CORK_PUT bytes of frames per post; SWR_NCORK
 * buffers of SWR_CORK bytes, each busy until its send completes (the
 * provider sends from it; a silent one's is the next completion, see
 * "Silent sends"); with none free a post goes alone, as before. A cork
 * of at most the provider's inject size goes by fi_inject() (copied,
 * no completion), as does an unsignalled message frame that short.
 *
 * The receiver's fabric layer owns every posted receive of the endpoint:
 * SWR_NRX buffers of SWR_RXLEN bytes. A frame is handled in arrival
 * order (rtrs__ofi_swr_deliver(), the rules in ../frame_rx.c, the same
 * for the socket backend): an RMA frame's key is looked up in OUR table of registrations
 * made with FAB_ACC_REMOTE_WRITE on the domain, checked with
 * off <= region_len && len <= region_len - off (no sum, no wrap), and the
 * payload copied in under the table's lock (so rtrs__ofi_mr_close()
 * revokes); its immediate then completes to the core as FAB_CQE_RMA_IN,
 * using no receive, as tcp's own write with immediate did. A MSG frame is
 * copied into the core's oldest posted receive. Anything else - unknown
 * key, no remote access, out of bounds, a bad header, a message longer
 * than the receive - is an error completion with FAB_CQE_BAD_PEER, and
 * nothing more is read from that endpoint.
 *
 * Flow control: when no receive is posted, tcp and net (1.17: tcpx_op_msg,
 * xnet_op_msg) leave the message in the socket and retry later: the
 * stream stalls, nothing is lost. A MSG frame waits here for a receive of
 * the core holding its buffer; with all SWR_NRX held the stream stalls
 * the same way, as it stalled before at a message with no receive.
 */
#define SWR_HDR RTRS_FRAME_HDR_LEN       /* proto/wire.h: the codec */
#define SWR_RXLEN (SWR_HDR + RTRS_PROTO_FRAME_BIG)      /* one receive */
#define SWR_NRX 8
#define SWR_NTX_MAX 1024
#define SWR_IOV_MAX 16
#define SWR_BATCH_MSG 32u               /* a batched message's bytes, at most */
#define SWR_NCORK 4
#define SWR_CORK (32u * 1024)           /* bytes of corked frames, at most */
#define SWR_CORK_PUT (8u * 1024)        /* of one post, at most */
#define SWR_INJECT_MAX 256u             /* a frame copied by the provider */

enum { SWR_MSG = RTRS_FRAME_MSG, SWR_RMA = RTRS_FRAME_RMA };
#define SWR_IMM RTRS_FRAME_IMM
#define SWR_LAST RTRS_FRAME_LAST

struct swr_rx {
	struct fab_opctx ctx;           /* what the completion names */
	struct swr_rx *next;            /* in held, drain thread only */
	uint8_t *buf;                   /* SWR_RXLEN */
	uint32_t len;                   /* bytes received */
	uint32_t pos;                   /* the next frame's offset */
};

struct swr_tx {
	struct fab_opctx ctx;
	struct fab_opctx *user;         /* the caller's context */
	bool signal;                    /* its completion, on this frame */
	bool silent;                    /* posted without FI_COMPLETION */
	bool posted;                    /* in the order of sends in flight */
	uint8_t cork;                   /* 1 + the cork buffer it sends */
	uint8_t hdr[SWR_HDR];
	/* a batch's second frame, its message copied in after it */
	uint8_t hdr2[SWR_HDR + SWR_BATCH_MSG];
};

struct fab_swr {
	struct swr_rx *rx;
	uint8_t *rxmem;
	struct fab_mr *rxmr;
	/* frames received, not yet handled (drain thread only) */
	struct swr_rx *held, *held_tail;
	_Atomic bool has_held;
	/* the core's receives, oldest first (post_lock) */
	struct fab_opctx *crx, *crx_tail;
	/* the core message being assembled (drain thread, ../frame_rx.c) */
	struct fab_frame_rx frx;
	bool broken;                    /* a violation: read nothing more */
	bool batch;                     /* the peer takes batches */
	uint32_t frag;                  /* payload of the peer's frames */
	/* frame headers of sends in flight; the free list under post_lock */
	struct swr_tx *tx;
	uint32_t *tx_free;
	unsigned ntx, nfree;
	/* the sends in flight, oldest first: a ring of ntx (post_lock) */
	uint32_t *order;
	unsigned ohead, olen;
	unsigned uncovered;             /* silent, posted after the newest
					   send with a completion */
	bool in_order;                  /* the provider completes in order */
	unsigned long tx_cqes;          /* send completions the provider gave */
	struct fab_mr *txmr;
	/* corked frames (post_lock): buffer @cork_cur (-1: none) fills,
	 * the busy ones are being sent */
	uint8_t *corkmem;
	int cork_cur;
	unsigned cork_busy;             /* bit i: buffer i in flight */
	uint32_t cork_len;
	struct fab_opctx *cork_user;    /* the last corked message's */
};

/* The endpoint whose completions this thread hands to the core. */
static _Thread_local struct fab_ep *swr_corking;

/* ---- endpoints ---- */

/*
 * Silent sends. tcp and net complete an endpoint's sends in the order they
 * were posted (1.17: one tx queue, each entry reported when the socket
 * took its last byte: tcpx_progress_tx(), xnet_progress_tx()), except
 * with zero-copy sends ($FI_TCP_ZEROCOPY_SIZE, $FI_NET_ZEROCOPY_SIZE: a
 * large send completes when the kernel lets go of its pages, after later
 * ones). So a completion also completes every send posted before it, and
 * a frame the caller did not ask a completion for need not have one:
 * posted without FI_COMPLETION, its header (and cork buffer) is freed by
 * the next completion of the endpoint. That saves a CQ entry per IO, and
 * with it the provider's signal of the CQ's wait object (a write, and a
 * read at the next progress) and one more read of the CQ. A completion
 * must always come to free them: a send takes one when a quarter of the
 * headers went silent since the last that did, and a cork buffer goes
 * silent only while another is free.
 */
static bool sends_in_order(void)
{
	return !getenv("FI_TCP_ZEROCOPY_SIZE") &&
	       !getenv("FI_NET_ZEROCOPY_SIZE");
}

static struct swr_tx *tx_take(struct fab_swr *s)
{
	struct swr_tx *t = &s->tx[s->tx_free[--s->nfree]];

	t->silent = false;
	return t;
}

static void tx_put(struct fab_swr *s, struct swr_tx *t)
{
	s->tx_free[s->nfree++] = (uint32_t)(t - s->tx);
}

/* The flags @t is posted with: silent where it may be. */
static uint64_t tx_flags(struct fab_swr *s, struct swr_tx *t)
{
	unsigned corks = (unsigned)__builtin_popcount(
		s->cork_busy | (t->cork ? 1u << (t->cork - 1) : 0));

	t->silent = s->in_order && !t->signal &&
		    s->uncovered < s->ntx / 4 &&
		    (!t->cork || corks < SWR_NCORK);
	return t->silent ? 0 : FI_COMPLETION;
}

/* @t went out: the newest in flight. */
static void tx_posted(struct fab_swr *s, struct swr_tx *t)
{
	s->order[(s->ohead + s->olen++) % s->ntx] = (uint32_t)(t - s->tx);
	s->uncovered = t->silent ? s->uncovered + 1 : 0;
	t->posted = true;
}

/* @t completed, and with it every send posted before it: free them all.
 * False if @t was not in flight (a provider that broke the order). */
static bool tx_retire(struct fab_swr *s, struct swr_tx *t)
{
	if (!t->posted)
		return false;
	for (;;) {
		struct swr_tx *o = &s->tx[s->order[s->ohead]];

		s->ohead = (s->ohead + 1) % s->ntx;
		s->olen--;
		o->posted = false;
		if (o->cork)
			s->cork_busy &= ~(1u << (o->cork - 1));
		tx_put(s, o);
		if (o == t)
			return true;
	}
}

int rtrs__ofi_swr_ep_init(struct fab_ep *e)
{
	const struct fab_caps *c = &e->dom->caps;
	struct fab_swr *s;
	unsigned n = (unsigned)MIN(c->tx_size, (size_t)SWR_NTX_MAX);
	int ret;

	if (!c->sw_rma)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	e->swr = s;
	s->rx = calloc(SWR_NRX, sizeof(*s->rx));
	/* faulted in as frames arrive */
	s->rxmem = malloc((size_t)SWR_NRX * SWR_RXLEN);
	s->frag = RTRS_PROTO_FRAME_MIN;
	s->cork_cur = -1;
	/* no corks where sends need registered memory */
	if (!c->mr_local && !(s->corkmem = malloc(SWR_NCORK * SWR_CORK)))
		return -ENOMEM;
	s->tx = calloc(n, sizeof(*s->tx));
	s->tx_free = calloc(n, sizeof(*s->tx_free));
	s->order = calloc(n, sizeof(*s->order));
	if (!s->rx || !s->rxmem || !s->tx || !s->tx_free || !s->order)
		return -ENOMEM;
	s->in_order = sends_in_order();
	if (c->mr_local) {
		ret = rtrs__ofi_mr_reg(e->dom, s->rxmem,
				       (size_t)SWR_NRX * SWR_RXLEN,
				       FAB_ACC_LOCAL, &s->rxmr);
		if (!ret)
			ret = rtrs__ofi_mr_reg(e->dom, s->tx, n * sizeof(*s->tx),
					       FAB_ACC_LOCAL, &s->txmr);
		if (ret)
			return ret;
	}
	for (unsigned i = 0; i < SWR_NRX; i++)
		s->rx[i].buf = s->rxmem + (size_t)i * SWR_RXLEN;
	for (unsigned i = 0; i < n; i++)
		s->tx_free[i] = i;
	s->ntx = s->nfree = n;
	return 0;
}

void rtrs__ofi_swr_ep_free(struct fab_ep *e)
{
	struct fab_swr *s = e->swr;

	if (!s)
		return;
	rtrs__ofi_mr_close(s->rxmr);
	rtrs__ofi_mr_close(s->txmr);
	free(s->rx);
	free(s->rxmem);
	free(s->corkmem);
	free(s->tx);
	free(s->tx_free);
	free(s->order);
	free(s);
	e->swr = NULL;
}

/* With post_lock held. */
static int repost_locked(struct fab_ep *e, struct swr_rx *b)
{
	RTRS_ASSERT_HELD(&e->post_lock);
	if (e->dead || !e->ep)
		return 0;
	e->cq_empty = false;    /* wait.c, rtrs__ofi_busy_cq() */
	return rtrs__ofi_errno((int)fi_recv(e->ep, b->buf, SWR_RXLEN,
					    rtrs__ofi_mr_desc(e->swr->rxmr), 0,
					    &b->ctx));
}

int rtrs__ofi_swr_post_rx(struct fab_ep *e)
{
	int ret = 0;

	if (!e->swr)
		return 0;
	rtrs__lock(&e->post_lock);
	for (unsigned i = 0; !ret && i < SWR_NRX; i++)
		ret = repost_locked(e, &e->swr->rx[i]);
	rtrs__unlock(&e->post_lock);
	return ret;
}

int rtrs__ofi_swr_recv(struct fab_ep *e, void *buf, size_t len,
		       struct fab_opctx *ctx)
{
	struct fab_swr *s = e->swr;

	ctx->rx_buf = buf;
	ctx->rx_len = len;
	ctx->rx_next = NULL;
	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (s->crx_tail)
		s->crx_tail->rx_next = ctx;
	else
		s->crx = ctx;
	s->crx_tail = ctx;
	rtrs__unlock(&e->post_lock);
	/* a frame may wait for it: have the CQ's reader deliver it */
	if (atomic_load(&s->has_held))
		ofi_want_tx(e);
	return 0;
}

/* The core's oldest receive, off its queue (rtrs__fab_frame_rx()'s pop). */
static struct fab_opctx *crx_pop(void *arg)
{
	struct fab_ep *e = arg;
	struct fab_swr *s = e->swr;
	struct fab_opctx *c;

	rtrs__lock(&e->post_lock);
	c = s->crx;
	if (c) {
		s->crx = c->rx_next;
		if (!s->crx)
			s->crx_tail = NULL;
	}
	rtrs__unlock(&e->post_lock);
	return c;
}

static void hdr_put(uint8_t *h, unsigned type, unsigned flags, uint32_t imm,
		    uint32_t key, uint32_t len, uint64_t off)
{
	struct rtrs_frame f = { (uint8_t)type, (uint8_t)flags, imm, key, len,
				off };

	rtrs__proto_frame_encode(h, &f);
}

/* Send the corked frames as one message; with post_lock held. 0 (also
 * with nothing corked), -FI_EAGAIN (they stay corked), or another error
 * of the provider's. */
static ssize_t cork_send(struct fab_ep *e)
{
	struct fab_swr *s = e->swr;
	struct iovec iov;
	struct fi_msg m = { .msg_iov = &iov, .iov_count = 1 };
	struct swr_tx *t;
	ssize_t r;

	RTRS_ASSERT_HELD(&e->post_lock);
	if (s->cork_cur < 0 || !s->cork_len)
		return 0;
	/* short: the provider copies it, and no completion comes */
	if (s->cork_len <= e->dom->caps.inject_size &&
	    !fi_inject(e->ep, s->corkmem + (size_t)s->cork_cur * SWR_CORK,
		       s->cork_len, 0)) {
		s->cork_len = 0;
		return 0;
	}
	if (!s->nfree)
		return -FI_EAGAIN;
	t = tx_take(s);
	t->user = s->cork_user;
	t->signal = false;
	t->cork = (uint8_t)(s->cork_cur + 1);
	iov = (struct iovec){ s->corkmem + (size_t)s->cork_cur * SWR_CORK,
			      s->cork_len };
	m.context = &t->ctx;
	r = fi_sendmsg(e->ep, &m, tx_flags(s, t));
	if (r) {
		tx_put(s, t);
		return r;
	}
	tx_posted(s, t);
	s->cork_busy |= 1u << s->cork_cur;
	s->cork_cur = -1;
	s->cork_len = 0;
	return 0;
}

/* One whole frame to copy: into a cork, or to inject. */
struct cork_frame {
	unsigned type, flags;
	uint32_t imm, key;
	uint64_t off;
	const struct iovec *iov;
	size_t cnt, len;
};

/* @f, header and payload, copied to @p; returns the byte after it. */
static uint8_t *frame_copy(uint8_t *p, const struct cork_frame *f)
{
	hdr_put(p, f->type, f->flags, f->imm, f->key, (uint32_t)f->len, f->off);
	p += SWR_HDR;
	for (size_t k = 0; k < f->cnt; k++) {
		if (f->iov[k].iov_len)
			memcpy(p, f->iov[k].iov_base, f->iov[k].iov_len);
		p += f->iov[k].iov_len;
	}
	return p;
}

/* Whether a post of @ctx, @signal may be corked at all. */
static bool corking(struct fab_ep *e, bool signal)
{
	return swr_corking == e && !signal && e->swr->batch;
}

/* Cork @nf frames of one post (protocol.md 2.6, "Corked answers"): 1 if
 * they were, 0 if they go as frames of their own, or an error of
 * cork_send(). With post_lock held. */
static ssize_t cork_put(struct fab_ep *e, const struct cork_frame *f,
			unsigned nf, struct fab_opctx *ctx)
{
	struct fab_swr *s = e->swr;
	size_t need = 0;
	uint8_t *p;

	for (unsigned i = 0; i < nf; i++)
		need += SWR_HDR + f[i].len;
	if (need > SWR_CORK_PUT)
		return 0;
	if (s->cork_cur >= 0 && s->cork_len + need > SWR_CORK) {
		ssize_t r = cork_send(e);

		if (r)
			return r;
	}
	if (s->cork_cur < 0) {
		for (int i = 0; i < SWR_NCORK && s->cork_cur < 0; i++)
			if (!(s->cork_busy & (1u << i)))
				s->cork_cur = i;
		if (s->cork_cur < 0)
			return 0;       /* all in flight */
		s->cork_len = 0;
	}
	p = s->corkmem + (size_t)s->cork_cur * SWR_CORK + s->cork_len;
	for (unsigned i = 0; i < nf; i++)
		p = frame_copy(p, &f[i]);
	s->cork_len += (uint32_t)need;
	s->cork_user = ctx;
	return 1;
}

void rtrs__ofi_swr_tx_state(struct fab_ep *e, unsigned *busy,
			     unsigned long *cqes)
{
	*busy = 0;
	*cqes = 0;
	if (!e->swr)
		return;
	rtrs__lock(&e->post_lock);
	*busy = e->swr->ntx - e->swr->nfree;
	*cqes = e->swr->tx_cqes;
	rtrs__unlock(&e->post_lock);
}

void rtrs__ofi_swr_cork(struct fab_ep *e)
{
	if (e->swr && e->swr->corkmem)
		swr_corking = e;
}

void rtrs__ofi_swr_push(struct fab_ep *e)
{
	struct fab_cqe u = { .flags = FAB_CQE_TX };
	ssize_t r;

	if (!e->swr || !e->swr->corkmem)
		return;
	rtrs__lock(&e->post_lock);
	r = e->dead ? 0 : cork_send(e);
	u.ctx = e->swr->cork_user;
	rtrs__unlock(&e->post_lock);
	/* -FI_EAGAIN: sends are in flight, and their completions bring the
	 * next push; anything else ends the endpoint, as a failed send */
	if (r && r != -FI_EAGAIN) {
		u.err = rtrs__ofi_errno((int)r);
		e->ops->cqe(e->ctx, &u);
	}
}

void rtrs__ofi_swr_uncork(struct fab_ep *e)
{
	if (swr_corking == e)
		swr_corking = NULL;
	rtrs__ofi_swr_push(e);
}

/*
 * Post @total bytes of @iov (@cnt pieces) as frames of @type; with
 * post_lock held. All frames or none: -EAGAIN when the headers in flight
 * leave too few free. A failure after the first frame went out is -EIO
 * (the stream is then broken; the owner closes the connection).
 */
static ssize_t frames_post(struct fab_ep *e, unsigned type,
			   const struct iovec *iov, void **desc, size_t cnt,
			   size_t total, uint64_t off, uint32_t key,
			   bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			   bool signal)
{
	struct fab_swr *s = e->swr;
	size_t nfrag = total ? (total + s->frag - 1) / s->frag : 1;
	size_t pos = 0, seg = 0, segoff = 0;
	ssize_t cr;

	RTRS_ASSERT_HELD(&e->post_lock);
	if (cnt + 1 > SWR_IOV_MAX || cnt + 1 > e->dom->caps.tx_iov_limit + 1)
		return -FI_EINVAL;
	if (nfrag > s->ntx)
		return -FI_EMSGSIZE;
	/* corked frames go first */
	if (nfrag + (s->cork_len ? 1 : 0) > s->nfree)
		return -FI_EAGAIN;
	cr = cork_send(e);
	if (cr)
		return cr;
	/* a short unsignalled message: the provider copies it, and no
	 * completion comes (never an RMA frame: its data may be the
	 * application's memory, see rtrs__ofi_swr_write()) */
	if (type == SWR_MSG && !signal && nfrag == 1 &&
	    SWR_HDR + total <= MIN(e->dom->caps.inject_size,
				   (size_t)SWR_INJECT_MAX)) {
		struct cork_frame f = { type, SWR_LAST |
					(has_imm ? SWR_IMM : 0),
					has_imm ? imm : 0, key, 0, iov, cnt,
					total };
		uint8_t b[SWR_INJECT_MAX];

		frame_copy(b, &f);
		if (!fi_inject(e->ep, b, SWR_HDR + total, 0))
			return 0;
		/* no room for a copy: as any other frame */
	}
	if (nfrag > s->nfree)
		return -FI_EAGAIN;
	for (size_t f = 0; f < nfrag; f++) {
		size_t flen = MIN(total - pos, (size_t)s->frag), got = 0;
		bool last = f + 1 == nfrag;
		struct iovec fiov[SWR_IOV_MAX];
		void *fdesc[SWR_IOV_MAX];
		struct fi_msg m = { .msg_iov = fiov, .iov_count = 1 };
		struct swr_tx *t = tx_take(s);
		ssize_t r;

		t->user = ctx;
		t->signal = last && signal;
		t->cork = 0;
		hdr_put(t->hdr, type, (last ? SWR_LAST : 0) |
				  (last && has_imm ? SWR_IMM : 0),
			last && has_imm ? imm : 0, key, (uint32_t)flen,
			type == SWR_RMA ? off + pos : pos);
		fiov[0] = (struct iovec){ t->hdr, SWR_HDR };
		fdesc[0] = rtrs__ofi_mr_desc(s->txmr);
		/* the pieces of the caller's iov this frame carries */
		while (got < flen) {
			size_t take = MIN(iov[seg].iov_len - segoff, flen - got);

			if (take) {
				fiov[m.iov_count] = (struct iovec){
					(char *)iov[seg].iov_base + segoff, take };
				fdesc[m.iov_count] = desc ? desc[seg] : NULL;
				m.iov_count++;
			}
			got += take;
			segoff += take;
			if (segoff == iov[seg].iov_len) {
				seg++;
				segoff = 0;
			}
		}
		m.desc = fdesc;
		m.context = &t->ctx;
		r = fi_sendmsg(e->ep, &m, tx_flags(s, t));
		if (r) {
			tx_put(s, t);
			return f ? -FI_EIO : r;
		}
		tx_posted(s, t);
		pos += flen;
	}
	return 0;
}

ssize_t rtrs__ofi_swr_send(struct fab_ep *e, const void *buf, size_t len,
			   void *desc, bool has_imm, uint32_t imm,
			   struct fab_opctx *ctx, bool signal)
{
	struct iovec iov = { (void *)buf, len };

	/* a short answer from the thread handing this endpoint's
	 * completions to the core: corked */
	if (corking(e, signal)) {
		struct cork_frame f = { SWR_MSG, SWR_LAST |
					(has_imm ? SWR_IMM : 0),
					has_imm ? imm : 0, 0, 0, &iov,
					len ? 1 : 0, len };
		ssize_t r = cork_put(e, &f, 1, ctx);

		if (r)
			return r > 0 ? 0 : r;
	}
	return frames_post(e, SWR_MSG, &iov, &desc, len ? 1 : 0, len, 0, 0,
			   has_imm, imm, ctx, signal);
}

ssize_t rtrs__ofi_swr_write(struct fab_ep *e, const struct iovec *iov,
			    void **desc, size_t cnt, uint64_t raddr,
			    uint32_t key, bool has_imm, uint32_t imm,
			    struct fab_opctx *ctx, bool signal)
{
	size_t total = 0;

	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	/* never corked: the data may be the application's memory
	 * (rtrs_srv_resp_buf()), where a copy here could fault and the
	 * provider's send reports EFAULT */
	return frames_post(e, SWR_RMA, iov, desc, cnt, total, raddr, key,
			   has_imm, imm, ctx, signal);
}

unsigned rtrs__ofi_swr_peer(struct fab_ep *e, unsigned takes)
{
	struct fab_swr *s = e->swr;

	RTRS_ASSERT_HELD(&e->post_lock);
	if (takes & FAB_PEER_BATCH)
		s->batch = true;
	if (takes & FAB_PEER_BIG)
		s->frag = RTRS_PROTO_FRAME_BIG;
	return takes & (FAB_PEER_BATCH | FAB_PEER_BIG);
}

ssize_t rtrs__ofi_swr_write_send(struct fab_ep *e, const struct iovec *iov,
				 void **desc, size_t cnt, uint64_t raddr,
				 uint32_t key, const void *buf, size_t len,
				 void *bdesc, uint32_t imm,
				 struct fab_opctx *ctx, bool signal)
{
	struct fab_swr *s = e->swr;
	size_t total = 0, nfrag;
	struct iovec miov = { (void *)buf, len };
	ssize_t r;

	RTRS_ASSERT_HELD(&e->post_lock);
	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (corking(e, signal)) {
		struct cork_frame f[2] = {
			{ SWR_RMA, SWR_LAST, 0, key, raddr, iov, cnt, total },
			{ SWR_MSG, SWR_LAST | SWR_IMM, imm, 0, 0, &miov,
			  len ? 1 : 0, len },
		};

		r = cork_put(e, f, 2, ctx);
		if (r)
			return r > 0 ? 0 : r;
	}
	/* corked frames go first */
	r = cork_send(e);
	if (r)
		return r;
	/* one receive of the peer holds both frames; the provider's iov
	 * limit (ours plus the frame header's) the header, the data and the
	 * second frame with its message inline */
	if (s->batch && len <= SWR_BATCH_MSG &&
	    total + len + SWR_HDR <= s->frag && cnt + 2 <= SWR_IOV_MAX &&
	    cnt + 2 <= e->dom->caps.tx_iov_limit + 1) {
		struct iovec fiov[SWR_IOV_MAX];
		void *fdesc[SWR_IOV_MAX];
		struct fi_msg m = { .msg_iov = fiov, .desc = fdesc };
		struct swr_tx *t;

		if (!s->nfree)
			return -FI_EAGAIN;
		t = tx_take(s);
		t->user = ctx;
		t->signal = signal;
		t->cork = 0;
		hdr_put(t->hdr, SWR_RMA, SWR_LAST, 0, key, (uint32_t)total,
			raddr);
		hdr_put(t->hdr2, SWR_MSG, SWR_LAST | SWR_IMM, imm, 0,
			(uint32_t)len, 0);
		fiov[0] = (struct iovec){ t->hdr, SWR_HDR };
		fdesc[0] = rtrs__ofi_mr_desc(s->txmr);
		m.iov_count = 1;
		for (size_t i = 0; i < cnt; i++) {
			if (!iov[i].iov_len)
				continue;
			fiov[m.iov_count] = iov[i];
			fdesc[m.iov_count++] = desc ? desc[i] : NULL;
		}
		if (len)
			memcpy(t->hdr2 + SWR_HDR, buf, len);
		fiov[m.iov_count] = (struct iovec){ t->hdr2, SWR_HDR + len };
		fdesc[m.iov_count++] = rtrs__ofi_mr_desc(s->txmr);
		m.context = &t->ctx;
		r = fi_sendmsg(e->ep, &m, tx_flags(s, t));
		if (r)
			tx_put(s, t);
		else
			tx_posted(s, t);
		return r;
	}
	/* apart: room for both first, so that it is both or neither */
	nfrag = total ? (total + s->frag - 1) / s->frag : 1;
	nfrag += len ? (len + s->frag - 1) / s->frag : 1;
	if (nfrag > s->nfree)
		return nfrag > s->ntx ? -FI_EMSGSIZE : -FI_EAGAIN;
	r = frames_post(e, SWR_RMA, iov, desc, cnt, total, raddr, key, false,
			0, ctx, false);
	if (r)
		return r;
	r = frames_post(e, SWR_MSG, &miov, &bdesc, len ? 1 : 0, len, 0, 0,
			true, imm, ctx, signal);
	return r ? -FI_EIO : 0;  /* the data went: the stream is broken */
}

/* ---- completions ---- */

static void to_core(struct fab_ep *e, struct fab_cqe *c)
{
	if ((c->flags & (FAB_CQE_RECV | FAB_CQE_RMA_IN)) && !c->err &&
	    rtrs__fab_fault_rx())
		return;
	e->ops->cqe(e->ctx, c);
}

/* The peer broke the rules: tell the core, read nothing more. */
static void violation(struct fab_ep *e, int err, const char *why)
{
	struct fab_cqe c = { .flags = FAB_CQE_RECV | FAB_CQE_BAD_PEER,
			     .err = err };

	e->swr->broken = true;
	rtrs_err_rl("software RMA: %s (%s): closing the connection", why,
		     rtrs_strerror(err));
	to_core(e, &c);
}

void rtrs__ofi_swr_cqe(struct fab_ep *e, struct fab_cqe *c, bool flushing)
{
	struct fab_swr *s = e->swr;
	uintptr_t p = (uintptr_t)c->ctx;

	if (p >= (uintptr_t)s->tx && p < (uintptr_t)(s->tx + s->ntx)) {
		struct swr_tx *t = &s->tx[(p - (uintptr_t)s->tx) / sizeof(*t)];
		struct fab_cqe u = { .ctx = t->user, .flags = FAB_CQE_TX,
				     .err = c->err };
		bool tell = c->err || (t->signal && t->user);

		rtrs__lock(&e->post_lock);
		s->tx_cqes++;
		if (!tx_retire(s, t)) {
			rtrs__unlock(&e->post_lock);
			rtrs_err_rl("software RMA: a completion of a send not "
				    "in flight (the provider completes sends "
				    "out of order?): ignored");
			return;
		}
		rtrs__unlock(&e->post_lock);
		/* an error still tells the owner its endpoint failed */
		if (tell)
			to_core(e, &u);
		return;
	}
	if (p >= (uintptr_t)s->rx && p < (uintptr_t)(s->rx + SWR_NRX)) {
		struct swr_rx *b = &s->rx[(p - (uintptr_t)s->rx) / sizeof(*b)];

		if (c->err) {
			struct fab_cqe u = { .flags = FAB_CQE_RECV,
					     .err = c->err };

			/* flushed (the provider disables an endpoint whose
			 * connection failed, and at close): the CM event
			 * tells the core why; other errors (a frame longer
			 * than the buffer) end the connection */
			if (!flushing && !s->broken && c->err != -ECANCELED) {
				s->broken = true;
				to_core(e, &u);
			}
			return;
		}
		if (s->broken)
			return;
		b->len = c->len;
		b->pos = 0;
		b->next = NULL;
		if (s->held_tail)
			s->held_tail->next = b;
		else
			s->held = b;
		s->held_tail = b;
		atomic_store(&s->has_held, true);
		rtrs__ofi_swr_deliver(e);
		return;
	}
	/* not ours: a provider completion with a context we never gave */
	if (c->err && !flushing)
		to_core(e, c);
}

/* Handle the frames received, in order, while the core can take them. */
void rtrs__ofi_swr_deliver(struct fab_ep *e)
{
	struct fab_swr *s = e->swr;

	while (s->held && !s->broken) {
		struct swr_rx *b = s->held;
		const uint8_t *h = b->buf + b->pos;
		struct rtrs_frame f;
		struct fab_cqe c = { 0 };
		const char *why = NULL;
		bool got;
		int ret;

		/* whole, within the message (the next one, if any, right
		 * after it); then what it may do (../frame_rx.c: no RMA
		 * inside a message being assembled, its key, its range, the
		 * receive it goes to) */
		if (rtrs__proto_frame_decode(h, b->len - b->pos, &f)) {
			violation(e, -EPROTO, "malformed frame");
			return;
		}
		ret = rtrs__fab_frame_rx(&s->frx, &e->dom->keys, e->scope, &f,
					 h + SWR_HDR, crx_pop, e, &c, &why);
		if (ret == -EAGAIN)
			return;         /* until the core posts a receive */
		if (ret < 0) {
			violation(e, ret, why);
			return;
		}
		got = ret;
		b->pos += SWR_HDR + f.len;
		if (b->pos == b->len) {
			/* the buffer is free again */
			s->held = b->next;
			if (!s->held) {
				s->held_tail = NULL;
				atomic_store(&s->has_held, false);
			}
			rtrs__lock(&e->post_lock);
			ret = repost_locked(e, b);
			rtrs__unlock(&e->post_lock);
			if (ret) {
				struct fab_cqe u = { .flags = FAB_CQE_RECV,
						     .err = ret };

				s->broken = true;
				to_core(e, &u);
				return;
			}
		}
		if (got)        /* the buffer reposted first, then the core */
			to_core(e, &c);
	}
}

/* The core's receives end with the endpoint, without a completion, as
 * tcp's and net's own posted receives do (ops->closed() follows). */
void rtrs__ofi_swr_flush(struct fab_ep *e)
{
	struct fab_swr *s = e->swr;

	if (!s)
		return;
	rtrs__fab_frame_rx_reset(&s->frx);
	while (crx_pop(e))
		;
}
