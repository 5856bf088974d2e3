// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The socket backend's data path: posts as frames on the stream (one
 * sendmsg, the rest to the backlog), and the stream in, frame by frame,
 * each checked before anything lands (docs/protocol.md §2.6): the header
 * by rtrs__proto_frame_decode(), the rest applied by rtrs__fab_frame_rx()
 * (../frame_rx.c, shared with the libfabric backend) or, for a big RMA
 * frame not all arrived, received straight into its region here. */
#include "sock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "util/log.h"

/* ---- the connection's state ---- */

int rtrs__sk_ep_peer(const struct fab_ep *e, char *buf, size_t len)
{
	int n;

	if (!e->peer[0])
		return -ENOTCONN;
	n = snprintf(buf, len, "%s", e->peer);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static void unwatch(struct fab_ep *e)
{
	int epfd = atomic_load(&e->polled) ? e->poller->ws.epfd
					   : e->loop->epfd;

	if (e->fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, e->fd, NULL);
}

/* On @e's loop thread: the core hears it went down, once. */
static void tell_down(struct fab_ep *e)
{
	int err = atomic_load(&e->down_err);

	if (!err || e->cm_down_told || atomic_load(&e->closing))
		return;
	e->cm_down_told = true;
	if (e->cm_up_told)
		e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, err, NULL, 0);
	else
		e->ops->cm(e->ctx, FAB_CM_ERROR, err, NULL, 0);
}

void rtrs__sk_ep_down(struct fab_ep *e, int err)
{
	rtrs__lock(&e->post_lock);
	if (atomic_load(&e->state) == SK_DOWN) {
		rtrs__unlock(&e->post_lock);
		return;
	}
	unwatch(e);
	atomic_store(&e->state, SK_DOWN);
	if (err)
		atomic_store(&e->down_err, err);
	rtrs__unlock(&e->post_lock);
	if (!err)
		return;
	/* connection events come from the loop, also for a poller's */
	if (rtrs__sk_on_loop(e))
		tell_down(e);
	else
		rtrs__sk_kick_loop(e);
}

void rtrs__sk_ep_loop_kicked(struct fab_ep *e)
{
	tell_down(e);
}

/* ---- out ---- */

/* A post's bytes into the backlog (as sk_send_region_bytes(), below: the
 * caller's buffer may be a region another connection wrote). */
static void sk_copy_region_bytes(uint8_t *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

/* Append @iov (@n, @total bytes) from byte @skip on to the backlog. With
 * post_lock held. */
static int bl_append(struct fab_ep *e, const struct iovec *iov, int n,
		     size_t skip)
{
	size_t total = 0, need;

	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (skip >= total)
		return 0;
	if (e->bl_off && e->bl_off == e->bl_len)
		e->bl_off = e->bl_len = 0;
	need = e->bl_len + total - skip;
	if (need > e->bl_cap) {
		size_t cap = e->bl_cap ? e->bl_cap : 64u << 10;
		uint8_t *nb;

		/* move the unsent bytes to the front first */
		if (e->bl_off) {
			memmove(e->bl, e->bl + e->bl_off,
				e->bl_len - e->bl_off);
			e->bl_len -= e->bl_off;
			e->bl_off = 0;
			need = e->bl_len + total - skip;
		}
		while (cap < need)
			cap *= 2;
		if (cap > e->bl_cap) {
			nb = realloc(e->bl, cap);
			if (!nb)
				return -ENOMEM;
			e->bl = nb;
			e->bl_cap = cap;
		}
	}
	for (int i = 0; i < n; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		sk_copy_region_bytes(e->bl + e->bl_len,
				     (const uint8_t *)iov[i].iov_base + skip,
				     l - skip);
		e->bl_len += l - skip;
		skip = 0;
	}
	return 0;
}

/* Send what the backlog holds; with post_lock held. 0, or -errno of the
 * socket (the connection is gone: the caller reports it). */
static int bl_flush_locked(struct fab_ep *e)
{
	int st = atomic_load(&e->state);
	bool want;

	if (st == SK_IDLE || st == SK_CONNECTING || st == SK_DOWN || e->dead)
		return 0;
	while (e->bl_len > e->bl_off) {
		/* until the peer accepts, our hello only: a refused
		 * connection must leave nothing unread at the peer */
		size_t n = e->bl_len - e->bl_off;
		ssize_t r;

		if (st == SK_HELLO_WAIT) {
			n = e->hello_len - e->hello_sent;
			if (!n)
				break;
		}
		r = send(e->fd, e->bl + e->bl_off, n,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (r < 0)
			return -errno;
		e->bl_off += (size_t)r;
		if (st == SK_HELLO_WAIT)
			e->hello_sent += (size_t)r;
	}
	e->cork_len = 0;
	if (e->bl_off == e->bl_len)
		e->bl_off = e->bl_len = 0;
	/* writable is what we wait for while bytes wait (in HELLO_WAIT:
	 * only bytes of the hello) */
	want = st == SK_HELLO_WAIT ? e->hello_sent < e->hello_len
				   : e->bl_len > 0;
	if (want != e->out_armed) {
		e->out_armed = want;
		rtrs__sk_watch(e, !e->stalled, want);
	}
	return 0;
}

/* The drain thread: send the corked bytes and the backlog. */
void rtrs__sk_flush_out(struct fab_ep *e)
{
	int ret;

	rtrs__lock(&e->post_lock);
	ret = e->bl_len ? bl_flush_locked(e) : 0;
	rtrs__unlock(&e->post_lock);
	if (ret)
		rtrs__sk_ep_down(e, ret);
}

static void hdr_put(uint8_t *h, unsigned type, unsigned flags, uint32_t imm,
		    uint32_t key, uint32_t len, uint64_t off)
{
	struct rtrs_frame f = { .type = (uint8_t)type, .flags = (uint8_t)flags,
				.imm = imm, .key = key, .len = len,
				.off = off };

	rtrs__proto_frame_encode(h, &f);
}

/* Frames to post: headers, and iovecs that point at them and at the
 * caller's bytes. */
struct sk_out {
	struct iovec iov[SK_IOV_MAX];
	uint8_t hdr[SK_IOV_MAX / 2][SK_HDR];
	int n, nh;
};

/* Frames of @type carrying @src (@cnt iovecs), at most @frag payload
 * each; the last has LAST and, with @has_imm, IMM. -EMSGSIZE when they
 * do not fit one sendmsg. */
static int frames(struct sk_out *o, unsigned type, const struct iovec *src,
		  size_t cnt, uint64_t off0, uint32_t key, bool has_imm,
		  uint32_t imm, uint32_t frag)
{
	size_t total = 0, done = 0, si = 0, soff = 0;

	for (size_t i = 0; i < cnt; i++)
		total += src[i].iov_len;
	if (total > UINT32_MAX)
		return -EMSGSIZE;
	do {
		uint32_t len = (uint32_t)(total - done < frag ? total - done
							       : frag);
		bool last = done + len == total;
		uint32_t left = len;

		if (o->nh >= SK_IOV_MAX / 2 || o->n >= SK_IOV_MAX)
			return -EMSGSIZE;
		hdr_put(o->hdr[o->nh], type,
			(last ? RTRS_FRAME_LAST : 0) |
			(last && has_imm ? RTRS_FRAME_IMM : 0),
			last && has_imm ? imm : 0, type == RTRS_FRAME_RMA ? key : 0,
			len, type == RTRS_FRAME_RMA ? off0 + done : done);
		o->iov[o->n++] = (struct iovec){ o->hdr[o->nh++], SK_HDR };
		while (left) {
			size_t take = src[si].iov_len - soff;

			if (!take) {
				si++;
				soff = 0;
				continue;
			}
			if (take > left)
				take = left;
			if (o->n >= SK_IOV_MAX)
				return -EMSGSIZE;
			o->iov[o->n++] = (struct iovec){
				(uint8_t *)src[si].iov_base + soff, take };
			soff += take;
			left -= (uint32_t)take;
		}
		done += len;
	} while (done < total);
	return 0;
}

static size_t out_bytes(const struct sk_out *o)
{
	size_t t = 0;

	for (int i = 0; i < o->n; i++)
		t += o->iov[i].iov_len;
	return t;
}

/* The one sendmsg of a post, from the caller's buffers: a chunk's bytes
 * that a frame from another connection wrote (tests/tsan.supp names this
 * function: the order of the two is the peer's, through the network). */
static ssize_t sk_send_region_bytes(int fd, const struct msghdr *mh)
{
	ssize_t r;

	do
		r = sendmsg(fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

/* Post the frames of @o: one sendmsg if nothing waits before them, the
 * rest to the backlog; on the drain thread, short unsignalled ones are
 * corked (they go at the end of its pass, with the others of the pass).
 * The caller's bytes are free when it returns. */
static int push(struct fab_ep *e, struct sk_out *o, struct fab_opctx *ctx,
		bool signal)
{
	size_t total = out_bytes(o), sent = 0;
	bool kick = false;
	int ret = 0, f, st;

	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	f = rtrs__fab_fault_post_ep(e, rtrs__sk_ep_peer, &e->fault_down);
	if (f) {
		if (f > 0)
			rtrs__sk_kick(e);
		rtrs__unlock(&e->post_lock);
		return f > 0 ? 0 : f;
	}
	if (e->bl_len - e->bl_off &&
	    e->bl_len - e->bl_off + total > SK_BACKLOG_MAX) {
		rtrs__unlock(&e->post_lock);
		return -EAGAIN;
	}
	if (signal && e->txq_n == e->txq_cap) {
		unsigned cap = e->txq_cap ? e->txq_cap * 2 : 64;
		struct fab_opctx **q = realloc(e->txq, cap * sizeof(*q));

		if (!q) {
			rtrs__unlock(&e->post_lock);
			return -ENOMEM;
		}
		e->txq = q;
		e->txq_cap = cap;
	}
	st = atomic_load(&e->state);
	if (st == SK_UP && e->bl_len == e->bl_off &&
	    !(rtrs__sk_draining(e) && !signal && total <= SK_CORK_MAX)) {
		struct msghdr mh = { .msg_iov = o->iov,
				     .msg_iovlen = (size_t)o->n };
		ssize_t r = sk_send_region_bytes(e->fd, &mh);

		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* gone: the drain thread tells the core */
			ret = -errno;
			atomic_store(&e->fault_down, true);
			rtrs__sk_kick(e);
			rtrs__unlock(&e->post_lock);
			return ret == -EPIPE || ret == -ECONNRESET ? -ENOTCONN
								   : ret;
		}
		sent = r > 0 ? (size_t)r : 0;
	} else if (st == SK_DOWN) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (sent < total) {
		bool corking = st == SK_UP && rtrs__sk_draining(e) && !signal &&
			       total <= SK_CORK_MAX && e->bl_len == e->bl_off + e->cork_len;

		ret = bl_append(e, o->iov, o->n, sent);
		if (ret) {
			rtrs__unlock(&e->post_lock);
			return ret;
		}
		if (corking) {
			e->cork_len += total;
			if (e->cork_len >= SK_CORK_FLUSH)
				ret = bl_flush_locked(e);
		} else {
			ret = bl_flush_locked(e);
		}
		if (ret) {
			atomic_store(&e->fault_down, true);
			rtrs__sk_kick(e);
			ret = 0;        /* posted: the close tells the core */
		}
	}
	if (signal) {
		e->txq[e->txq_n++] = ctx;
		kick = !rtrs__sk_draining(e);
	}
	if (kick)
		rtrs__sk_kick(e);
	rtrs__unlock(&e->post_lock);
	return ret;
}

int rtrs__sk_post_send(struct fab_ep *e, const void *buf, size_t len,
		       void *desc, bool has_imm, uint32_t imm,
		       struct fab_opctx *ctx, bool signal)
{
	struct sk_out o = { .n = 0 };
	struct iovec v = { (void *)buf, len };
	int ret;

	(void)desc;
	if (len && !buf)
		return -EINVAL;
	ret = frames(&o, RTRS_FRAME_MSG, &v, len ? 1 : 0, 0, 0, has_imm, imm,
		     e->frag);
	return ret ? ret : push(e, &o, ctx, signal);
}

int rtrs__sk_post_write(struct fab_ep *e, const struct iovec *iov,
			void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			bool signal)
{
	struct sk_out o = { .n = 0 };
	int ret;

	(void)desc;
	if (cnt > SK_TX_IOV || (cnt && !iov))
		return -EINVAL;
	ret = frames(&o, RTRS_FRAME_RMA, iov, cnt, raddr, key, has_imm, imm,
		     e->frag);
	return ret ? ret : push(e, &o, ctx, signal);
}

int rtrs__sk_post_write_send(struct fab_ep *e, const struct iovec *iov,
			     void **desc, size_t cnt, uint64_t raddr,
			     uint32_t key, const void *buf, size_t len,
			     void *bdesc, uint32_t imm,
			     struct fab_opctx *ctx, bool signal)
{
	struct sk_out o = { .n = 0 };
	struct iovec v = { (void *)buf, len };
	int ret;

	(void)desc;
	(void)bdesc;
	if (cnt > SK_TX_IOV || (cnt && !iov) || (len && !buf))
		return -EINVAL;
	ret = frames(&o, RTRS_FRAME_RMA, iov, cnt, raddr, key, false, 0,
		     e->frag);
	if (!ret)
		ret = frames(&o, RTRS_FRAME_MSG, &v, len ? 1 : 0, 0, 0, true,
			     imm, e->frag);
	return ret ? ret : push(e, &o, ctx, signal);
}

/* A stream takes any number of frames back to back: batches always;
 * big frames towards a peer that said so. */
unsigned rtrs__sk_ep_takes(struct fab_ep *e, unsigned takes)
{
	rtrs__lock(&e->post_lock);
	e->batch = true;
	if (takes & FAB_PEER_BIG)
		e->frag = RTRS_PROTO_FRAME_BIG;
	rtrs__unlock(&e->post_lock);
	return FAB_PEER_BATCH | (takes & FAB_PEER_BIG);
}

int rtrs__sk_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
		       struct fab_opctx *ctx)
{
	(void)desc;
	if (!ctx || (len && !buf))
		return -EINVAL;
	ctx->rx_buf = buf;
	ctx->rx_len = len;
	ctx->rx_next = NULL;
	rtrs__lock(&e->post_lock);
	if (e->dead) {
		rtrs__unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (e->crx_tail)
		e->crx_tail->rx_next = ctx;
	else
		e->crx = ctx;
	e->crx_tail = ctx;
	if (e->stalled) {
		/* a frame waits for it: the drain thread goes on */
		e->stalled = false;
		atomic_store(&e->rx_kick, true);
		if (!rtrs__sk_draining(e))
			rtrs__sk_kick(e);
	}
	rtrs__unlock(&e->post_lock);
	return 0;
}

/* ---- in ---- */

/* The core's oldest receive, off its queue (rtrs__fab_frame_rx()'s pop);
 * none: the stream stalls until the core posts one. */
static struct fab_opctx *crx_pop(void *arg)
{
	struct fab_ep *e = arg;
	struct fab_opctx *c;

	rtrs__lock(&e->post_lock);
	c = e->crx;
	if (c) {
		e->crx = c->rx_next;
		if (!e->crx)
			e->crx_tail = NULL;
	} else {
		/* the stream waits here until the core posts one */
		e->stalled = true;
		if (!e->out_armed)
			rtrs__sk_watch(e, false, false);
		else
			rtrs__sk_watch(e, false, true);
		e->rx_off = true;
	}
	rtrs__unlock(&e->post_lock);
	return c;
}

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

	rtrs_err_rl("sock: %s: %s (%s): closing the connection", e->peer, why,
		    rtrs_strerror(err));
	rtrs__sk_ep_down(e, 0);
	to_core(e, &c);
}

enum { RX_NEED, RX_STALL, RX_STOP, RX_DIRECT };

/* An RMA frame at least this long, not all arrived, is received straight
 * into its region (sk_rma_in_start()). */
#define SK_DIRECT_MIN (16u << 10)
static int sk_rma_in_start(struct fab_ep *e, const struct rtrs_frame *f);

/* Hand the whole frames buffered to the core, in order; how it stopped
 * (more bytes needed, no receive, the endpoint broken or closing). */
static int rx_parse(struct fab_ep *e, int *done)
{
	for (;;) {
		size_t avail = e->rfill - e->rpos;
		const uint8_t *h = e->rx + e->rpos;
		struct rtrs_frame f;
		struct fab_cqe c = { 0 };
		const char *why = NULL;
		int ret;

		if (atomic_load(&e->state) != SK_UP ||
		    atomic_load(&e->closing))
			return RX_STOP;
		if (avail < SK_HDR)
			return RX_NEED;
		/* a frame takes at most one receive of ours: 24 + 132 KiB;
		 * and no RMA inside a message being assembled, asked before
		 * a big one goes straight into its region */
		if (rtrs__proto_frame_decode(h, SK_HDR + RTRS_PROTO_FRAME_BIG,
					     &f)) {
			violation(e, -EPROTO, "malformed frame");
			return RX_STOP;
		}
		ret = rtrs__fab_frame_rx_admit(&e->frx, &f, &why);
		if (ret) {
			violation(e, ret, why);
			return RX_STOP;
		}
		if (avail < SK_HDR + (size_t)f.len) {
			if (f.type == RTRS_FRAME_RMA && f.len >= SK_DIRECT_MIN)
				return sk_rma_in_start(e, &f);
			return RX_NEED;
		}
		/* what it may do and does: ../frame_rx.c */
		ret = rtrs__fab_frame_rx(&e->frx, &e->dom->keys, e->scope, &f,
					 h + SK_HDR, crx_pop, e, &c, &why);
		if (ret == -EAGAIN)
			return RX_STALL;
		if (ret < 0) {
			violation(e, ret, why);
			return RX_STOP;
		}
		e->rpos += SK_HDR + f.len;
		if (!ret)
			continue;
		to_core(e, &c);
		(*done)++;
	}
}

/* Room for the next frame: drop what was parsed, keep a partial frame
 * where a whole one of the largest size still fits after it. */
static void rx_compact(struct fab_ep *e)
{
	if (e->rpos == e->rfill) {
		e->rpos = e->rfill = 0;
	} else if (e->rpos >= SK_RXCAP / 2) {
		memmove(e->rx, e->rx + e->rpos, e->rfill - e->rpos);
		e->rfill -= e->rpos;
		e->rpos = 0;
	}
}

#define SK_RECVS 8      /* reads of one socket per pass, at most */

/* The end of an RMA frame received straight into its region. */
static void rma_direct_done(struct fab_ep *e, int *done)
{
	struct fab_cqe c = { .flags = FAB_CQE_RMA_IN | FAB_CQE_IMM,
			     .imm = e->d_imm };

	if (!(e->d_flags & RTRS_FRAME_LAST) || !(e->d_flags & RTRS_FRAME_IMM))
		return;         /* a write without immediate: silent */
	to_core(e, &c);
	(*done)++;
}

/* A big RMA frame whose header came (checked whole: key, scope, range)
 * but not all its payload: what came is copied in, the rest will be
 * received straight into the region (sk_rma_in_recv()), one copy less.
 * The named range is checked again, under the table's lock, before each
 * receive into it. */
static int sk_rma_in_start(struct fab_ep *e, const struct rtrs_frame *f)
{
	size_t part = e->rfill - e->rpos - SK_HDR;
	uint8_t *dst;
	int ret;

	ret = rtrs__fab_keytab_rma_begin(&e->dom->keys, e->scope, f->key,
					 f->off, f->len, &dst);
	if (ret) {
		violation(e, ret, ret == -EACCES ? "RMA with an unknown key"
						 : "RMA outside its region");
		return RX_STOP;
	}
	memcpy(dst, e->rx + e->rpos + SK_HDR, part);
	rtrs__fab_keytab_rma_end(&e->dom->keys);
	e->rpos = e->rfill = 0;
	e->d_key = f->key;
	e->d_off = f->off + part;
	e->d_left = f->len - part;
	e->d_flags = f->flags;
	e->d_imm = f->imm;
	return RX_DIRECT;
}

/* One receive of a direct RMA frame's payload into its region: the bytes
 * received, 0 (nothing there), or -1 (the connection is down or broke a
 * rule: told). */
static ssize_t sk_rma_in_recv(struct fab_ep *e)
{
	uint8_t *dst;
	ssize_t r;
	int ret;

	ret = rtrs__fab_keytab_rma_begin(&e->dom->keys, e->scope, e->d_key,
					 e->d_off, e->d_left, &dst);
	if (ret) {
		/* revoked while its frame came: as if it came after */
		e->d_left = 0;
		violation(e, ret, "RMA into a registration closed meanwhile");
		return -1;
	}
	do
		r = recv(e->fd, dst, e->d_left, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	rtrs__fab_keytab_rma_end(&e->dom->keys);
	if (r == 0) {
		rtrs__sk_ep_down(e, -ECONNRESET);
		return -1;
	}
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		rtrs__sk_ep_down(e, -errno);
		return -1;
	}
	e->d_off += (uint64_t)r;
	e->d_left -= (uint32_t)r;
	return r;
}

/* Read and parse until the socket is empty, the core has no receive for
 * a message, or the budget is spent (then true: come back). */
static bool rx_work(struct fab_ep *e, bool readable, int *done)
{
	int st = e->d_left ? RX_DIRECT : rx_parse(e, done);

	for (int i = 0; (st == RX_NEED || st == RX_DIRECT) && readable &&
			i < SK_RECVS; i++) {
		size_t room;
		ssize_t r;

		if (st == RX_DIRECT) {
			room = e->d_left;
			r = sk_rma_in_recv(e);
			if (r <= 0)
				return false;
			if (!e->d_left) {
				rma_direct_done(e, done);
				st = rx_parse(e, done);
			}
		} else {
			rx_compact(e);
			room = SK_RXCAP - e->rfill;
			do
				r = recv(e->fd, e->rx + e->rfill, room,
					 MSG_DONTWAIT);
			while (r < 0 && errno == EINTR);
			if (r == 0) {
				rtrs__sk_ep_down(e, -ECONNRESET);
				return false;
			}
			if (r < 0) {
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					rtrs__sk_ep_down(e, -errno);
				return false;
			}
			e->rfill += (size_t)r;
			st = rx_parse(e, done);
		}
		if ((size_t)r < room)
			readable = false;       /* drained, most likely */
		else if (i == SK_RECVS - 1)
			return st == RX_NEED || st == RX_DIRECT;
	}
	if (st == RX_NEED)
		rx_compact(e);
	return false;
}

int rtrs__sk_drain(struct fab_ep *e, bool readable, bool *more_out)
{
	const struct fab_ep *prev = rtrs__sk_drain_enter(e);
	struct fab_opctx *one[16], **q = one;
	unsigned nq;
	int done = 0;
	bool more = false;

	if (atomic_exchange(&e->fault_down, false))
		rtrs__sk_ep_down(e, -ECONNRESET);
	/* a receive posted from a callback lets a stalled stream go on */
	for (int round = 0; round < 4 && atomic_load(&e->state) == SK_UP &&
			    !atomic_load(&e->closing); round++) {
		atomic_store(&e->rx_kick, false);
		rtrs__lock(&e->post_lock);
		if (e->rx_off && !e->stalled) {
			e->rx_off = false;
			rtrs__sk_watch(e, true, e->out_armed);
		}
		rtrs__unlock(&e->post_lock);
		more = rx_work(e, readable, &done);
		if (!atomic_load(&e->rx_kick))
			break;
	}
	more |= atomic_load(&e->rx_kick);
	/* completions of signalled sends, in order */
	rtrs__lock(&e->post_lock);
	nq = e->txq_n;
	if (nq > 16 && !(q = malloc(nq * sizeof(*q)))) {
		q = one;
		nq = 16;
	}
	if (nq) {
		memcpy(q, e->txq, nq * sizeof(*q));
		memmove(e->txq, e->txq + nq, (e->txq_n - nq) * sizeof(*q));
		e->txq_n -= nq;
	}
	rtrs__unlock(&e->post_lock);
	for (unsigned i = 0; i < nq && !atomic_load(&e->closing); i++) {
		struct fab_cqe c = { .ctx = q[i], .flags = FAB_CQE_TX };

		e->ops->cqe(e->ctx, &c);
		done++;
	}
	if (q != one)
		free(q);
	rtrs__sk_flush_out(e);
	if (atomic_load(&e->want_tx) && !atomic_load(&e->closing)) {
		bool room;

		rtrs__lock(&e->post_lock);
		room = e->bl_len - e->bl_off < SK_BACKLOG_MAX / 2;
		rtrs__unlock(&e->post_lock);
		if (room && atomic_exchange(&e->want_tx, false))
			e->ops->tx_ready(e->ctx);
		/* what tx_ready() posted, corked, goes now */
		rtrs__sk_flush_out(e);
	}
	rtrs__lock(&e->post_lock);
	more |= e->txq_n > 0;
	rtrs__unlock(&e->post_lock);
	more |= atomic_load(&e->fault_down) || atomic_load(&e->rx_kick);
	rtrs__sk_drain_leave(prev);
	if (more_out)
		*more_out = more;
	return done;
}

void rtrs__sk_flush_all(struct fab_ep *e)
{
	struct fab_opctx **q;
	unsigned nq;

	rtrs__lock(&e->post_lock);
	e->dead = true;
	q = e->txq;
	nq = e->txq_n;
	e->txq = NULL;
	e->txq_n = e->txq_cap = 0;
	/* the core's receives end with the endpoint, without a completion,
	 * as on the libfabric backend's software RMA */
	e->crx = e->crx_tail = NULL;
	rtrs__unlock(&e->post_lock);
	rtrs__fab_frame_rx_reset(&e->frx);
	for (unsigned i = 0; i < nq; i++) {
		struct fab_cqe c = { .ctx = q[i], .flags = FAB_CQE_TX,
				     .err = -ECANCELED };

		e->ops->cqe(e->ctx, &c);
	}
	free(q);
}
