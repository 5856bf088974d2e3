/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The fabric layer's contract: what src/core may call. It gives the core
 * connected message endpoints, listeners, memory registrations, posting
 * of sends/receives/RMA writes, and library-owned progress threads. A
 * backend implements it (struct rtrs__fab_ops below): the libfabric one
 * in src/fabric/ofi/ (FI_EP_MSG), the only code that includes libfabric,
 * the rdma-core one in src/fabric/rdma/ (provider "rdma"), the only
 * code that includes librdmacm and libibverbs, and the socket one in
 * src/fabric/sock/ (provider "sock": plain TCP sockets carrying the
 * software-RMA frames, docs/protocol.md 2.6a).
 * No backend type or constant crosses this header; errors are -errno.
 * Backend-neutral here: fabric.c (picking a backend), fault.c (fault
 * injection), spin.c (busy-polling), evset.c (the pollers' sleep),
 * keytab.c (software RMA's key table: a frame's key, scope and range
 * checks, and the copy into the region), frame_rx.c (a software-RMA
 * frame applied at its receiver: the message it adds to, the key table,
 * the completion it makes; both backends that receive frames), addr.c
 * (socket addresses resolved and named, for rdma/ and sock/).
 *
 * Threading contract
 * - Progress threads ("loops") are pinned one per online CPU. Each endpoint
 *   and listener belongs to one loop, which alone reads its CQ and EQ: the
 *   one asked for, except where a provider's wait objects all watch the
 *   whole domain (libfabric 1.17 net; see "wait objects" in ofi/wait.c): there
 *   every endpoint and listener of a domain shares one loop. Every
 *   callback (struct fab_ep_ops, struct fab_pep_ops) runs on that loop thread,
 *   never concurrently for the same endpoint, and with no fabric lock held
 *   (but the engine's, for the closes a loop still runs as the last
 *   rtrs__fab_engine_put() stops it: the lock order of docs/design.md §5).
 * - Posting functions may be called from any thread, including callbacks.
 *   They never block: a full provider queue returns -EAGAIN; the caller
 *   queues the work and calls rtrs__fab_ep_want_tx(), which makes the loop
 *   call ops->tx_ready() once the queue may have room.
 * - Application-driven progress (struct fab_poller): an endpoint created
 *   with a poller has its CQ read only by threads calling
 *   rtrs__fab_poller_progress(), which run its ops->cqe() and ops->tx_ready()
 *   (serialized by the poller's lock); its loop still reads its EQ (ops->cm)
 *   and closes it (ops->closed, and the flushed completions' ops->cqe).
 * - rtrs__fab_ep_close() may be called from any thread and returns at once;
 *   the loop closes the endpoint, hands every flushed completion to
 *   ops->cqe() with err != 0, then calls ops->closed(). After closed() no
 *   callback for that endpoint runs again and the contexts of its
 *   operations may be freed.
 */
#ifndef RTRS_FABRIC_H
#define RTRS_FABRIC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct fab_dom;
struct fab_ep;
struct fab_pep;
struct fab_mr;
struct fab_connreq;
struct fab_poller;

/* Per-operation context: embed one per outstanding operation. The first
 * member is scratch space that providers needing FI_CONTEXT may use. */
struct fab_opctx {
	void *provider_scratch[4];
	void *owner;
	unsigned kind;
	void *rx_buf;           /* the fabric's: where a receive lands */
	size_t rx_len;          /* the fabric's (software RMA): its room */
	struct fab_opctx *rx_next; /* the fabric's (software RMA): queue */
};

/* What the provider offers (the libfabric backend reads it after
 * fi_getinfo). */
struct fab_caps {
	char prov[32];
	char domain[64];        /* the provider's domain name: the interface
				   ("lo", "eth0") for tcp and net, the
				   device ("rxe0", "siw0") for verbs */
	size_t inject_size;
	size_t tx_iov_limit;
	size_t rma_iov_limit;
	size_t tx_size;
	size_t rx_size;
	bool mr_local;          /* local buffers need a registration */
	bool mr_pins;           /* a registration holds the pages it found
				   (RDMA NICs), not the virtual addresses */
	bool mr_virt_addr;      /* remote address is a virtual address */
	bool mr_prov_key;       /* provider picks keys */
	bool rx_cq_data;        /* remote immediate consumes a posted receive */
	bool remote_inv;        /* post_send_inv() works (the rdma-core
				   backend on a device with memory
				   management extensions) */
	size_t cq_data_size;
	/* Bytes every buffer given to rtrs__fab_post_send() and
	 * rtrs__fab_post_recv() must have beyond its length, inside the
	 * same registration: 0, or FAB_MSG_ROOM on a provider without
	 * remote CQ data (iWARP), where the fabric carries the immediate
	 * in a trailer of each message (see ofi/trailer.c). */
	size_t msg_room;
	/* RMA is carried as messages and checked by the fabric layer
	 * (ofi/swrma.c): the provider's RMA is not trusted to check bounds
	 * (every provider but those in ofi/domain.c's rma_checked[]). Then
	 * rx_cq_data and mr_virt_addr are false and msg_room is 0. */
	bool sw_rma;
};

#define FAB_MSG_ROOM 8          /* the most msg_room can be */

/* Access bits for registrations. */
#define FAB_ACC_LOCAL 0x1       /* source/target of local operations */
#define FAB_ACC_REMOTE_WRITE 0x2
#define FAB_ACC_SOURCE 0x4      /* only the source of sends and writes: may
				   be read-only memory (verbs pins others
				   for writing) */

/* What a peer's receives take (ep_takes). */
#define FAB_PEER_BATCH 0x1      /* several frames in one message */
#define FAB_PEER_BIG 0x2        /* frames of up to RTRS_PROTO_FRAME_BIG */

/* Completion flags. */
#define FAB_CQE_RECV 0x1        /* a posted receive completed (also with
				   FAB_CQE_RMA_IN: a remote write with
				   immediate that consumed it, len 0) */
#define FAB_CQE_IMM 0x2         /* imm is valid */
#define FAB_CQE_TX 0x4          /* a local send or write completed */
#define FAB_CQE_RMA_IN 0x8      /* a remote write targeted us */
#define FAB_CQE_BAD_PEER 0x10   /* with err: the peer broke the data path's
				   rules (software RMA: unknown key, out of
				   bounds, malformed frame); nothing landed */

struct fab_cqe {
	struct fab_opctx *ctx;  /* NULL for remote writes that used no receive */
	unsigned flags;
	uint32_t imm;
	uint32_t len;           /* bytes received */
	int err;                /* 0 or -errno (flushed: -ECANCELED) */
};

enum fab_cm_ev {
	FAB_CM_CONNECTED,       /* data/len: the peer's private data */
	FAB_CM_REJECTED,        /* err = -ECONNREFUSED etc.; data: reject data */
	FAB_CM_SHUTDOWN,        /* the connection is gone */
	FAB_CM_ERROR,           /* err = -errno */
};

struct fab_ep_ops {
	void (*cqe)(void *ctx, const struct fab_cqe *c);
	void (*cm)(void *ctx, enum fab_cm_ev ev, int err, const void *data,
		   size_t len);
	void (*tx_ready)(void *ctx);
	void (*closed)(void *ctx);
};

struct fab_pep_ops {
	/* A connect request. Call rtrs__fab_ep_accept_create() + accept, or
	 * rtrs__fab_reject(), before returning: @req dies afterwards. */
	void (*connreq)(void *ctx, struct fab_connreq *req, const void *data,
			size_t len);
};

/* ---- the backend contract ----
 *
 * A backend implements struct rtrs__fab_ops. Every object it hands out
 * (struct fab_dom, fab_mr, fab_ep, fab_pep, fab_poller) starts with a
 * struct fab_obj naming that table, so the rtrs__fab_*() dispatchers
 * below find the backend from the object: src/core never learns which
 * backend runs. Each backend completes those struct types in its own
 * files only (the libfabric one: src/fabric/ofi/ofi.h). An object made
 * from another (an endpoint, listener or registration from a domain, a
 * server path's domain from a listener) copies its parent's ops before
 * it is published; fabric.c stamps the domains and pollers it opens.
 *
 * fabric.c picks the backend for a domain by provider name: the backend
 * whose .prov is that name, else the default one (.prov NULL): the
 * libfabric backend, which serves every libfabric provider (tcp, net,
 * verbs, ...). The rdma-core backend takes the name "rdma", the socket
 * backend "sock".
 *
 * What each op may do: "blocks" (may sleep, e.g. in the provider or on a
 * loop), or "never blocks" (at most a short mutex); which threads may
 * call it ("any": any thread, including the backend's callbacks); the
 * locks are the backend's own, never held when an op returns, and no op
 * calls back into the core before it returns except where it says so.
 * Errors are -errno; none is ever a positive value or a provider code.
 */
struct rtrs__fab_ops;

struct fab_obj {
	const struct rtrs__fab_ops *ops;
};

struct rtrs__fab_ops {
	const char *name;       /* "ofi" */
	/* The provider name this backend owns (NULL: the default, every
	 * name no other backend owns). */
	const char *prov;

	/* -- engine: the backend's progress threads ("loops") -- */
	/* Start the loops if not running (refcounted). Blocks; any thread
	 * but a loop. -ENOMEM, or a thread/epoll error. */
	int (*engine_get)(void);
	/* Drop a reference; the last one stops and joins the loops. Every
	 * endpoint and listener must have been closed. Blocks; not from a
	 * loop thread. */
	void (*engine_put)(void);
	/* The number of loops (one per online CPU); never blocks. */
	unsigned (*nloops)(void);

	/* -- domains -- */
	/* Open a domain for @node:@service (passive: to listen on it),
	 * optionally from @src_node, on provider @prov (never NULL here).
	 * Blocks (name resolution, device open); any thread but a loop.
	 * -ENODATA (the provider cannot serve the address), -EINVAL,
	 * -ENOMEM, -EOPNOTSUPP (the provider lacks what we need). */
	int (*dom_open)(const char *prov, const char *node,
			const char *service, const char *src_node,
			bool passive, struct fab_dom **out);
	/* A server path's domain for connection request @req: called from
	 * @pep's connreq() callback (its loop thread). May block briefly
	 * (a device domain open). -ENOMEM, -ENODATA. */
	int (*dom_for_connreq)(struct fab_pep *pep, struct fab_connreq *req,
			       struct fab_dom **out);
	/* References; never block, any thread. The last put frees the
	 * domain (every object made from it holds a reference). */
	void (*dom_get)(struct fab_dom *d);
	void (*dom_put)(struct fab_dom *d);
	const struct fab_caps *(*dom_caps)(const struct fab_dom *d);

	/* -- registrations -- */
	/* Blocks (the provider pins pages); any thread. Takes the
	 * domain's registration locks exclusive. -EINVAL, -ENOMEM,
	 * -ENOKEY (no key left), -EOVERFLOW, -EACCES (the pages refuse the
	 * access asked for). */
	int (*mr_reg)(struct fab_dom *d, void *buf, size_t len,
		      unsigned access, struct fab_mr **out);
	int (*mr_reg_peer)(struct fab_dom *d, void *buf, size_t len,
			   const void *scope, struct fab_mr **out);
	/* Revokes: once it returns no peer write lands in the region (it
	 * waits for a copy in progress). Blocks briefly; any thread. */
	void (*mr_close)(struct fab_mr *mr);
	/* Never block, any thread. The dispatchers take a NULL object
	 * where the ofi backend did before (rtrs__fab_mr_desc(),
	 * rtrs__fab_mr_close(), rtrs__fab_dom_put(), rtrs__fab_ep_close(),
	 * rtrs__fab_pep_close(), rtrs__fab_pep_shed(),
	 * rtrs__fab_poller_destroy()): an op never sees one. */
	uint32_t (*mr_key)(const struct fab_mr *mr);
	void *(*mr_desc)(const struct fab_mr *mr);
	uint64_t (*mr_raddr)(const struct fab_mr *mr, const void *p);

	/* -- endpoints -- */
	/* Create (active side: towards the domain's address; passive side:
	 * from inside @req's connreq(), on the listener's loop thread) and
	 * attach to loop @loop (or the backend's choice, see the threading
	 * contract). The endpoint is published in *@out before any
	 * callback can run. Never blocks for long; -ENOMEM, -EINVAL, or a
	 * provider error as -errno. */
	int (*ep_create)(struct fab_dom *d, unsigned loop,
			 struct fab_poller *poller,
			 const struct fab_ep_ops *ops, void *ctx,
			 struct fab_ep **out);
	int (*ep_accept_create)(struct fab_dom *d, struct fab_connreq *req,
				unsigned loop, const struct fab_ep_ops *ops,
				void *ctx, struct fab_ep **out);
	/* Start the handshake; the outcome comes as ops->cm(). Never block;
	 * any thread. -EMSGSIZE (private data too long), -ENOTCONN. */
	int (*ep_connect)(struct fab_ep *ep, const void *data, size_t len);
	int (*ep_accept)(struct fab_ep *ep, const void *data, size_t len);
	/* From inside connreq() only. -EMSGSIZE. */
	int (*reject)(struct fab_pep *pep, struct fab_connreq *req,
		      const void *data, size_t len);
	/* Asynchronous, idempotent, any thread (callbacks included): see
	 * the threading contract. Takes the endpoint's post lock. */
	void (*ep_close)(struct fab_ep *ep);
	/* Before connect/accept; never blocks. */
	void (*ep_set_scope)(struct fab_ep *ep, const void *scope);
	/* Any thread, never blocks, no lock: ops->tx_ready() follows. */
	void (*ep_want_tx)(struct fab_ep *ep);
	const struct fab_caps *(*ep_caps)(const struct fab_ep *ep);
	/* Never block. -ENOTCONN (no address yet), -ENOSPC (@len). */
	int (*ep_peer)(const struct fab_ep *ep, char *buf, size_t len);
	int (*ep_name)(const struct fab_ep *ep, char *buf, size_t len);

	/* -- posting: any thread, never block (the endpoint's post lock
	 * only). -EAGAIN: the queue is full (ep_want_tx(), retry from
	 * tx_ready()); -ENOTCONN: the endpoint is closing; -EIO (fault
	 * injection); -EMSGSIZE, -EINVAL; a provider error as -errno. On an
	 * error nothing was posted and no completion will come. -- */
	int (*post_recv)(struct fab_ep *ep, void *buf, size_t len,
			 void *desc, struct fab_opctx *ctx);
	int (*post_send)(struct fab_ep *ep, const void *buf, size_t len,
			 void *desc, bool has_imm, uint32_t imm,
			 struct fab_opctx *ctx, bool signal);
	int (*post_write)(struct fab_ep *ep, const struct iovec *iov,
			  void **desc, size_t cnt, uint64_t raddr,
			  uint32_t key, bool has_imm, uint32_t imm,
			  struct fab_opctx *ctx, bool signal);
	/* A zero-length send that invalidates the peer's registration
	 * @key when it lands (SEND_WITH_INV: the kernel's RTRS client
	 * asks for it on a READ). It consumes a receive at the peer. As
	 * post_send; NULL in a backend without it (caps.remote_inv false):
	 * the dispatcher returns -EOPNOTSUPP. */
	int (*post_send_inv)(struct fab_ep *ep, uint32_t key,
			     struct fab_opctx *ctx, bool signal);
	/* What the peer's receives take (software RMA frames,
	 * docs/protocol.md 2.6), FAB_PEER_* of @takes: BATCH, several of our
	 * messages in one of the provider's; BIG, frames of up to
	 * RTRS_PROTO_FRAME_BIG. Returns the ones this endpoint uses from now
	 * on (BATCH: it sends post_write_send() as one). NULL: none (the
	 * dispatcher returns 0). Before any post. */
	unsigned (*ep_takes)(struct fab_ep *ep, unsigned takes);
	/* post_write of @iov with no immediate, then post_send of @buf with
	 * @imm, in that order, as one batch where they fit (one system call
	 * on tcp), else one after the other; all or nothing. Only on an
	 * endpoint whose ep_takes() took FAB_PEER_BATCH. As post_send; @iov
	 * must be memory that cannot fault (the chunks): the backend may
	 * copy it on the calling thread. */
	int (*post_write_send)(struct fab_ep *ep, const struct iovec *iov,
			       void **desc, size_t cnt, uint64_t raddr,
			       uint32_t key, const void *buf, size_t len,
			       void *bdesc, uint32_t imm,
			       struct fab_opctx *ctx, bool signal);

	/* -- application-driven progress (see the threading contract) -- */
	/* Never block. -ENOMEM, or an epoll/eventfd error. */
	int (*poller_create)(struct fab_poller **out);
	void (*poller_destroy)(struct fab_poller *pl);
	/* Takes the poller's lock and runs callbacks under it (never the
	 * loops' locks); returns the number of completions handled. */
	int (*poller_progress)(struct fab_poller *pl);
	/* Blocks up to @timeout_ms (at most the loops' sweep, 100 ms). */
	void (*poller_wait)(struct fab_poller *pl, int timeout_ms);
	/* Any thread, never blocks. */
	void (*poller_wake)(struct fab_poller *pl);

	/* -- listeners -- */
	/* Listen on the domain's address, events on loop @loop. Never
	 * blocks for long. -EADDRINUSE, -ENOMEM, a provider error. */
	int (*pep_open)(struct fab_dom *d, unsigned loop,
			const struct fab_pep_ops *ops, void *ctx,
			struct fab_pep **out);
	/* Synchronous: blocks until no connreq() runs any more. Not from
	 * the listener's loop thread. */
	void (*pep_close)(struct fab_pep *pep);
	int (*pep_name)(const struct fab_pep *pep, char *buf, size_t len);
	uint64_t (*pep_shed)(struct fab_pep *pep);
};

/* The backend of an object made by one. */
static inline const struct rtrs__fab_ops *rtrs__fab_ops_of(const void *obj)
{
	return ((const struct fab_obj *)obj)->ops;
}

/* The provider of a path or listener that names none, with
 * $RTRS_PROVIDER unset: the socket backend, librtrs's own TCP transport
 * (docs/design.md §11: ahead of NBD on every row of the rnbd matrix,
 * where libfabric's tcp was not). libfabric's stays "tcp" by name. */
#define RTRS_FAB_DEFAULT_PROV "sock"

/* ---- engine: the progress threads (fabric.c) ---- */

/* Start every backend's loops if not running (refcounted). Blocks; any
 * thread but a loop. */
int rtrs__fab_engine_get(void);
/* Drop a reference; the last one stops and joins the loops. Every endpoint
 * and listener must have been closed. Not from a loop thread. */
void rtrs__fab_engine_put(void);
/* The default backend's loop count: the core spreads paths over
 * [0, nloops); a backend takes an index modulo its own count. */
unsigned rtrs__fab_nloops(void);

/* ---- domains ---- */

/*
 * Open a fabric + domain for @node:@service. Passive (listener) with @passive,
 * else active towards the address, optionally from @src_node. @prov may be
 * NULL ($RTRS_PROVIDER, else RTRS_FAB_DEFAULT_PROV); it picks the backend
 * (fabric.c).
 * Blocks. -ENODATA when the provider cannot serve the address, -EINVAL,
 * -ENOMEM.
 */
int rtrs__fab_dom_open(const char *prov, const char *node,
		       const char *service, const char *src_node, bool passive,
		       struct fab_dom **out);
/* The domain a server path's endpoints and registrations use, for the
 * path of connection request @req (a reference; rtrs__fab_dom_put()):
 * where the device checks RMA (!caps.sw_rma, verbs) a new one of its own,
 * so that the path's keys work on its own endpoints only; else @pep's
 * (software RMA scopes keys itself). */
static inline int rtrs__fab_dom_for_connreq(struct fab_pep *pep,
					    struct fab_connreq *req,
					    struct fab_dom **out)
{
	return rtrs__fab_ops_of(pep)->dom_for_connreq(pep, req, out);
}

static inline void rtrs__fab_dom_get(struct fab_dom *d)
{
	rtrs__fab_ops_of(d)->dom_get(d);
}

static inline void rtrs__fab_dom_put(struct fab_dom *d)
{
	if (d)
		rtrs__fab_ops_of(d)->dom_put(d);
}

static inline const struct fab_caps *rtrs__fab_dom_caps(const struct fab_dom *d)
{
	return rtrs__fab_ops_of(d)->dom_caps(d);
}

/* ---- registrations ---- */

/* Register; keys are provider keys or unique random 32-bit keys. */
static inline int rtrs__fab_mr_reg(struct fab_dom *d, void *buf, size_t len,
				   unsigned access, struct fab_mr **out)
{
	return rtrs__fab_ops_of(d)->mr_reg(d, buf, len, access, out);
}

/* A registration a peer may write into (local access and remote write),
 * through the endpoints of @scope only (rtrs__fab_ep_set_scope()): the
 * server scopes a path's chunk keys to that path, the client a READ's key
 * to its path. Enforced where the fabric layer checks RMA itself
 * (caps.sw_rma); where the provider's RMA is hardware-checked, a key is
 * valid on every endpoint of its domain (docs/security.md, item 2). */
static inline int rtrs__fab_mr_reg_peer(struct fab_dom *d, void *buf,
					size_t len, const void *scope,
					struct fab_mr **out)
{
	return rtrs__fab_ops_of(d)->mr_reg_peer(d, buf, len, scope, out);
}

static inline void rtrs__fab_mr_close(struct fab_mr *mr)
{
	if (mr)
		rtrs__fab_ops_of(mr)->mr_close(mr);
}

static inline uint32_t rtrs__fab_mr_key(const struct fab_mr *mr)
{
	return rtrs__fab_ops_of(mr)->mr_key(mr);
}

/* NULL if not needed (and for a NULL @mr: no registration) */
static inline void *rtrs__fab_mr_desc(const struct fab_mr *mr)
{
	return mr ? rtrs__fab_ops_of(mr)->mr_desc(mr) : NULL;
}

/* The address a peer must use to reach @p inside @mr. */
static inline uint64_t rtrs__fab_mr_raddr(const struct fab_mr *mr,
					  const void *p)
{
	return rtrs__fab_ops_of(mr)->mr_raddr(mr, p);
}

/* ---- endpoints ---- */

/* Active side: create an endpoint towards @d's address on loop @loop,
 * its CQ read by @poller's callers if not NULL (-EINVAL if @poller is
 * another backend's). Post receives, then call rtrs__fab_ep_connect(). */
static inline int rtrs__fab_ep_create(struct fab_dom *d, unsigned loop,
				      struct fab_poller *poller,
				      const struct fab_ep_ops *ops, void *ctx,
				      struct fab_ep **out)
{
	const struct rtrs__fab_ops *o = rtrs__fab_ops_of(d);

	if (poller && rtrs__fab_ops_of(poller) != o)
		return -EINVAL;
	return o->ep_create(d, loop, poller, ops, ctx, out);
}

/* Private data (@data, @len) of connect, accept and reject: a provider
 * that carries fewer bytes gets them without the tail when the tail is all
 * zero (else -EMSGSIZE); the peer then receives the shorter data. */
static inline int rtrs__fab_ep_connect(struct fab_ep *ep, const void *data,
				       size_t len)
{
	return rtrs__fab_ops_of(ep)->ep_connect(ep, data, len);
}

/* Passive side, from inside connreq(), on @d: the listener's domain or one
 * from rtrs__fab_dom_for_connreq() for the same request's path. Then post
 * receives and accept. */
static inline int rtrs__fab_ep_accept_create(struct fab_dom *d,
					     struct fab_connreq *req,
					     unsigned loop,
					     const struct fab_ep_ops *ops,
					     void *ctx, struct fab_ep **out)
{
	return rtrs__fab_ops_of(d)->ep_accept_create(d, req, loop, ops, ctx,
						     out);
}

static inline int rtrs__fab_ep_accept(struct fab_ep *ep, const void *data,
				      size_t len)
{
	return rtrs__fab_ops_of(ep)->ep_accept(ep, data, len);
}

static inline int rtrs__fab_reject(struct fab_pep *pep,
				   struct fab_connreq *req, const void *data,
				   size_t len)
{
	return rtrs__fab_ops_of(pep)->reject(pep, req, data, len);
}

/* Asynchronous close, see the contract above. Idempotent. */
static inline void rtrs__fab_ep_close(struct fab_ep *ep)
{
	if (ep)
		rtrs__fab_ops_of(ep)->ep_close(ep);
}

/* Before the endpoint connects or is accepted: the scope of the
 * registrations its peer may write into (rtrs__fab_mr_reg_peer()). */
static inline void rtrs__fab_ep_set_scope(struct fab_ep *ep,
					  const void *scope)
{
	rtrs__fab_ops_of(ep)->ep_set_scope(ep, scope);
}

static inline void rtrs__fab_ep_want_tx(struct fab_ep *ep)
{
	rtrs__fab_ops_of(ep)->ep_want_tx(ep);
}

static inline const struct fab_caps *rtrs__fab_ep_caps(const struct fab_ep *ep)
{
	return rtrs__fab_ops_of(ep)->ep_caps(ep);
}

/* "host:port" of the peer / of our side (the source address the system
 * chose, once connected). */
static inline int rtrs__fab_ep_peer(const struct fab_ep *ep, char *buf,
				    size_t len)
{
	return rtrs__fab_ops_of(ep)->ep_peer(ep, buf, len);
}

static inline int rtrs__fab_ep_name(const struct fab_ep *ep, char *buf,
				    size_t len)
{
	return rtrs__fab_ops_of(ep)->ep_name(ep, buf, len);
}

/* Posting. @desc arrays may be NULL when !caps->mr_local. With @signal the
 * operation completes to ops->cqe (FAB_CQE_TX); otherwise only errors do. */
static inline int rtrs__fab_post_recv(struct fab_ep *ep, void *buf,
				      size_t len, void *desc,
				      struct fab_opctx *ctx)
{
	return rtrs__fab_ops_of(ep)->post_recv(ep, buf, len, desc, ctx);
}

static inline int rtrs__fab_post_send(struct fab_ep *ep, const void *buf,
				      size_t len, void *desc, bool has_imm,
				      uint32_t imm, struct fab_opctx *ctx,
				      bool signal)
{
	return rtrs__fab_ops_of(ep)->post_send(ep, buf, len, desc, has_imm,
					       imm, ctx, signal);
}

static inline int rtrs__fab_post_send_inv(struct fab_ep *ep, uint32_t key,
					  struct fab_opctx *ctx, bool signal)
{
	const struct rtrs__fab_ops *o = rtrs__fab_ops_of(ep);

	return o->post_send_inv ? o->post_send_inv(ep, key, ctx, signal)
				: -EOPNOTSUPP;
}

static inline unsigned rtrs__fab_ep_takes(struct fab_ep *ep, unsigned takes)
{
	const struct rtrs__fab_ops *o = rtrs__fab_ops_of(ep);

	return o->ep_takes ? o->ep_takes(ep, takes) : 0;
}
static inline int rtrs__fab_post_write_send(struct fab_ep *ep,
					    const struct iovec *iov,
					    void **desc, size_t cnt,
					    uint64_t raddr, uint32_t key,
					    const void *buf, size_t len,
					    void *bdesc, uint32_t imm,
					    struct fab_opctx *ctx, bool signal)
{
	const struct rtrs__fab_ops *o = rtrs__fab_ops_of(ep);

	if (!o->post_write_send)
		return -EOPNOTSUPP;
	return o->post_write_send(ep, iov, desc, cnt, raddr, key, buf, len,
				  bdesc, imm, ctx, signal);
}
static inline int rtrs__fab_post_write(struct fab_ep *ep,
				       const struct iovec *iov, void **desc,
				       size_t cnt, uint64_t raddr,
				       uint32_t key, bool has_imm,
				       uint32_t imm, struct fab_opctx *ctx,
				       bool signal)
{
	return rtrs__fab_ops_of(ep)->post_write(ep, iov, desc, cnt, raddr,
						key, has_imm, imm, ctx,
						signal);
}

/* ---- application-driven progress ---- */

/* A poller of the backend of provider name @prov (NULL: $RTRS_PROVIDER,
 * else the default, as rtrs__fab_dom_open()): its endpoints must be of
 * domains of that backend (else rtrs__fab_ep_create() says -EINVAL). */
int rtrs__fab_poller_create(const char *prov, struct fab_poller **out);

/* Every endpoint created with @pl must have been closed (ops->closed run). */
static inline void rtrs__fab_poller_destroy(struct fab_poller *pl)
{
	if (pl)
		rtrs__fab_ops_of(pl)->poller_destroy(pl);
}

/* Read the CQs of @pl's endpoints on the calling thread and run their
 * callbacks; also ops->tx_ready() for those that asked. Never blocks for
 * long (waits only for another thread draining @pl). Returns the number of
 * completions handled. */
static inline int rtrs__fab_poller_progress(struct fab_poller *pl)
{
	return rtrs__fab_ops_of(pl)->poller_progress(pl);
}

/* Sleep until one of @pl's CQs may have completions, rtrs__fab_poller_wake()
 * was called since the last wait, or @timeout_ms passed (-1: no limit), and
 * never longer than the loops' sweep (100 ms): the caller reads the CQs
 * again then. Returns at once when a CQ is not empty. */
static inline void rtrs__fab_poller_wait(struct fab_poller *pl,
					 int timeout_ms)
{
	rtrs__fab_ops_of(pl)->poller_wait(pl, timeout_ms);
}

/* Any thread: end a rtrs__fab_poller_wait(), now or the next one. */
static inline void rtrs__fab_poller_wake(struct fab_poller *pl)
{
	rtrs__fab_ops_of(pl)->poller_wake(pl);
}

/* $RTRS_POLL_US, for the loops and pollers (spin.c, backend-neutral):
 * true if a caller that has found nothing since @since_ns should read its
 * CQs again rather than sleep: @now_ns (both rtrs_now_ns()) is within the
 * window, and the machine has a CPU for every runnable thread (the
 * spinner included). */
bool rtrs__fab_may_spin(uint64_t since_ns, uint64_t now_ns);
/* For the backends' engines: at engine start, on a machine of @ncpus
 * online CPUs of which this process may use @usable, set the window:
 * $RTRS_POLL_US if set, else RTRS_FAB_POLL_US_DEFAULT when @usable >= 2,
 * else 0; stop at engine end. */
#define RTRS_FAB_POLL_US_DEFAULT 100u
void rtrs__fab_spin_start(unsigned ncpus, unsigned usable);
/* The window set at engine start, in microseconds (0: never spin). */
unsigned rtrs__fab_poll_us(void);
/* The usable CPUs as read at engine start (rtrs__usable_cpus(); read now
 * if no engine has started): what the defaults of rtrs(7) follow. */
unsigned rtrs__fab_usable_cpus(void);
void rtrs__fab_spin_stop(void);

/* For the backends' pollers (evset.c, backend-neutral): a set of fds to
 * sleep on until one is readable or rtrs__fab_evset_wake() (any thread).
 * Init: -errno, and then fini (safe on a half-made set); a tag must not
 * be NULL (the wake-up's). Wait: at most @timeout_ms (-1: no bound), the
 * wake-ups consumed, the fds' readiness left to their owners; the tags of
 * the fds seen readable in @tags (up to @max) and their number, -1 when
 * there may have been more than it tells. */
struct fab_evset {
	int epfd, evfd;
};
int rtrs__fab_evset_init(struct fab_evset *s);
void rtrs__fab_evset_fini(struct fab_evset *s);
int rtrs__fab_evset_add(struct fab_evset *s, int fd, void *tag);
void rtrs__fab_evset_del(struct fab_evset *s, int fd);
int rtrs__fab_evset_wait(struct fab_evset *s, int timeout_ms,
			 void **tags, int max);
/* The same without sleeping, and without consuming a wake-up (it is for
 * the next wait). */
int rtrs__fab_evset_ready(struct fab_evset *s, void **tags, int max);
void rtrs__fab_evset_wake(struct fab_evset *s);

/* For the backends that resolve and name socket addresses themselves
 * (rdma/, sock/; addr.c, backend-neutral): "host:port" ("[v6]:port") of
 * @sa into @buf, -ENOTCONN (no IPv4/IPv6 address), -ENOSPC; and the
 * first TCP address of @node:@service (AI_PASSIVE with @passive; NULL or
 * "" node: any, service: "0"), its length in *@out_len if not NULL,
 * -ENODATA, -ENOMEM. */
int rtrs__fab_addr_str(const struct sockaddr *sa, char *buf, size_t len);
int rtrs__fab_resolve(const char *node, const char *service, bool passive,
		      struct sockaddr_storage *out, socklen_t *out_len);

/* ---- listeners ---- */

static inline int rtrs__fab_pep_open(struct fab_dom *d, unsigned loop,
				     const struct fab_pep_ops *ops, void *ctx,
				     struct fab_pep **out)
{
	return rtrs__fab_ops_of(d)->pep_open(d, loop, ops, ctx, out);
}

/* Synchronous: when it returns no connreq() runs any more. Not from the
 * listener's own loop thread. */
static inline void rtrs__fab_pep_close(struct fab_pep *pep)
{
	if (pep)
		rtrs__fab_ops_of(pep)->pep_close(pep);
}

static inline int rtrs__fab_pep_name(const struct fab_pep *pep, char *buf,
				     size_t len)
{
	return rtrs__fab_ops_of(pep)->pep_name(pep, buf, len);
}

/* Connections the listener closed unanswered at the open-file limit
 * (0 for a NULL @pep). */
static inline uint64_t rtrs__fab_pep_shed(struct fab_pep *pep)
{
	return pep ? rtrs__fab_ops_of(pep)->pep_shed(pep) : 0;
}

/* ---- fault injection (tests) ----
 * Configured from $RTRS_FAULT ("post_fail=N,close_after=N,drop_rx=N,
 * delay_rx=N,delay_ms=M,peer=HOST") at engine start or with
 * rtrs__fab_fault_set(). Counters are process-wide; with peer=HOST only
 * posts on endpoints connected to that host count (one path of several):
 * the Nth post fails with -EIO; every post after the Nth is swallowed (it
 * returns 0 but goes nowhere) and its endpoint reports FAB_CM_SHUTDOWN, as
 * if the peer vanished with operations in flight; the Nth received
 * completion is dropped (drop_rx=N) or delivered delay_ms later
 * (delay_rx=N,delay_ms=M).
 */
struct fab_fault {
	uint64_t post_fail;     /* 0 = off */
	uint64_t close_after;
	uint64_t drop_rx;
	uint64_t delay_rx;      /* the Nth received completion ... */
	uint64_t delay_ms;      /* ... is delivered this much later */
	char peer[64];          /* "": every endpoint; else posts to this host */
};
void rtrs__fab_fault_set(const struct fab_fault *f);
/* internal to the fabric layer */
/* 0, -EIO (fail), or 1 (swallow, shut down); @peer is the endpoint's
 * peer "host:port" or NULL if unknown */
int rtrs__fab_fault_post(const char *peer);
bool rtrs__fab_fault_peer_filter(void);
/* A backend's post on @e, under its post lock: rtrs__fab_fault_post()
 * with @e's peer (named by @peer_of, only when a peer filter is set);
 * on 1 it sets *@down, once, with a warning: the backend wakes its loop,
 * which reports FAB_CM_SHUTDOWN. */
int rtrs__fab_fault_post_ep(const struct fab_ep *e,
			    int (*peer_of)(const struct fab_ep *, char *,
					   size_t),
			    _Atomic bool *down);
/* Called per received completion: sleeps if it is the one to delay;
 * true if it is the one to drop. */
bool rtrs__fab_fault_rx(void);
void rtrs__fab_fault_from_env(void);

#endif /* RTRS_FABRIC_H */
