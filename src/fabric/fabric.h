/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The fabric layer: the only code that includes libfabric. It gives the core
 * connected message endpoints (FI_EP_MSG), listeners, memory registrations,
 * posting of sends/receives/RMA writes, and library-owned progress threads.
 * No libfabric type or FI_* value crosses this header; errors are -errno.
 *
 * Threading contract
 * - Progress threads ("loops") are pinned one per online CPU. Each endpoint
 *   and listener belongs to one loop, which alone reads its CQ and EQ: the
 *   one asked for, except where a provider's wait objects all watch the
 *   whole domain (libfabric 1.17 net; see "wait objects" in loop.c): there
 *   every endpoint and listener of a domain shares one loop. Every
 *   callback (struct fab_ep_ops, struct fab_pep_ops) runs on that loop thread,
 *   never concurrently for the same endpoint, and with no fabric lock held.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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

/* What the provider asked for, read after fi_getinfo. */
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
	size_t cq_data_size;
	/* Bytes every buffer given to rtrs__fab_post_send() and
	 * rtrs__fab_post_recv() must have beyond its length, inside the
	 * same registration: 0, or FAB_MSG_ROOM on a provider without
	 * remote CQ data (iWARP), where the fabric carries the immediate
	 * in a trailer of each message (see fab.c). */
	size_t msg_room;
	/* RMA is carried as messages and checked by the fabric layer
	 * (swrma.c): the provider's RMA is not trusted to check bounds
	 * (every provider but those in fab.c's rma_checked[]). Then
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

/* ---- engine: the progress threads ---- */

/* Start the loops if not running (refcounted). Blocks; any thread. */
int rtrs__fab_engine_get(void);
/* Drop a reference; the last one stops and joins the loops. Every endpoint
 * and listener must have been closed. Not from a loop thread. */
void rtrs__fab_engine_put(void);
unsigned rtrs__fab_nloops(void);

/* ---- domains ---- */

/*
 * Open a fabric + domain for @node:@service. Passive (listener) with @passive,
 * else active towards the address, optionally from @src_node. @prov may be
 * NULL ($RTRS_PROVIDER, else "tcp"). Blocks. -ENODATA when the provider
 * cannot serve the address, -EINVAL, -ENOMEM.
 */
int rtrs__fab_dom_open(const char *prov, const char *node,
		       const char *service, const char *src_node, bool passive,
		       struct fab_dom **out);
/* The domain a server path's endpoints and registrations use, for the
 * path of connection request @req (a reference; rtrs__fab_dom_put()):
 * where the device checks RMA (!caps.sw_rma, verbs) a new one of its own,
 * so that the path's keys work on its own endpoints only; else @pep's
 * (software RMA scopes keys itself). */
int rtrs__fab_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			      struct fab_dom **out);
void rtrs__fab_dom_get(struct fab_dom *d);
void rtrs__fab_dom_put(struct fab_dom *d);
const struct fab_caps *rtrs__fab_dom_caps(const struct fab_dom *d);

/* ---- registrations ---- */

/* Register; keys are provider keys or unique random 32-bit keys. */
int rtrs__fab_mr_reg(struct fab_dom *d, void *buf, size_t len,
		     unsigned access, struct fab_mr **out);
/* A registration a peer may write into (local access and remote write),
 * through the endpoints of @scope only (rtrs__fab_ep_set_scope()): the
 * server scopes a path's chunk keys to that path, the client a READ's key
 * to its path. Enforced where the fabric layer checks RMA itself
 * (caps.sw_rma); where the provider's RMA is hardware-checked, a key is
 * valid on every endpoint of its domain (docs/security.md, item 2). */
int rtrs__fab_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			  const void *scope, struct fab_mr **out);
void rtrs__fab_mr_close(struct fab_mr *mr);
uint32_t rtrs__fab_mr_key(const struct fab_mr *mr);
void *rtrs__fab_mr_desc(const struct fab_mr *mr); /* NULL if not needed */
/* The address a peer must use to reach @p inside @mr. */
uint64_t rtrs__fab_mr_raddr(const struct fab_mr *mr, const void *p);

/* ---- endpoints ---- */

/* Active side: create an endpoint towards @d's address on loop @loop,
 * its CQ read by @poller's callers if not NULL. Post receives, then call
 * rtrs__fab_ep_connect(). */
int rtrs__fab_ep_create(struct fab_dom *d, unsigned loop,
			struct fab_poller *poller,
			const struct fab_ep_ops *ops, void *ctx,
			struct fab_ep **out);
/* Private data (@data, @len) of connect, accept and reject: a provider
 * that carries fewer bytes gets them without the tail when the tail is all
 * zero (else -EMSGSIZE); the peer then receives the shorter data. */
int rtrs__fab_ep_connect(struct fab_ep *ep, const void *data, size_t len);

/* Passive side, from inside connreq(), on @d: the listener's domain or one
 * from rtrs__fab_dom_for_connreq() for the same request's path. Then post
 * receives and accept. */
int rtrs__fab_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			       unsigned loop, const struct fab_ep_ops *ops,
			       void *ctx, struct fab_ep **out);
int rtrs__fab_ep_accept(struct fab_ep *ep, const void *data, size_t len);
int rtrs__fab_reject(struct fab_pep *pep, struct fab_connreq *req,
		     const void *data, size_t len);

/* Asynchronous close, see the contract above. Idempotent. */
void rtrs__fab_ep_close(struct fab_ep *ep);
/* Before the endpoint connects or is accepted: the scope of the
 * registrations its peer may write into (rtrs__fab_mr_reg_peer()). */
void rtrs__fab_ep_set_scope(struct fab_ep *ep, const void *scope);
void rtrs__fab_ep_want_tx(struct fab_ep *ep);
const struct fab_caps *rtrs__fab_ep_caps(const struct fab_ep *ep);
/* "host:port" of the peer / of our side (the source address the system
 * chose, once connected). */
int rtrs__fab_ep_peer(const struct fab_ep *ep, char *buf, size_t len);
int rtrs__fab_ep_name(const struct fab_ep *ep, char *buf, size_t len);

/* Posting. @desc arrays may be NULL when !caps->mr_local. With @signal the
 * operation completes to ops->cqe (FAB_CQE_TX); otherwise only errors do. */
int rtrs__fab_post_recv(struct fab_ep *ep, void *buf, size_t len, void *desc,
			struct fab_opctx *ctx);
int rtrs__fab_post_send(struct fab_ep *ep, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm,
			struct fab_opctx *ctx, bool signal);
int rtrs__fab_post_write(struct fab_ep *ep, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			 bool signal);

/* ---- application-driven progress ---- */

int rtrs__fab_poller_create(struct fab_poller **out);
/* Every endpoint created with @pl must have been closed (ops->closed run). */
void rtrs__fab_poller_destroy(struct fab_poller *pl);
/* Read the CQs of @pl's endpoints on the calling thread and run their
 * callbacks; also ops->tx_ready() for those that asked. Never blocks for
 * long (waits only for another thread draining @pl). Returns the number of
 * completions handled. */
int rtrs__fab_poller_progress(struct fab_poller *pl);
/* Sleep until one of @pl's CQs may have completions, rtrs__fab_poller_wake()
 * was called since the last wait, or @timeout_ms passed (-1: no limit), and
 * never longer than the loops' sweep (100 ms): the caller reads the CQs
 * again then. Returns at once when a CQ is not empty. */
void rtrs__fab_poller_wait(struct fab_poller *pl, int timeout_ms);
/* Any thread: end a rtrs__fab_poller_wait(), now or the next one. */
void rtrs__fab_poller_wake(struct fab_poller *pl);
/* $RTRS_POLL_US, for the loops and pollers: true if a caller that has
 * found nothing since @since_ns should read its CQs again rather than
 * sleep: @now_ns (both rtrs_now_ns()) is within the window, and the
 * machine has a CPU for every runnable thread (the spinner included). */
bool rtrs__fab_may_spin(uint64_t since_ns, uint64_t now_ns);

/* ---- listeners ---- */

int rtrs__fab_pep_open(struct fab_dom *d, unsigned loop,
		       const struct fab_pep_ops *ops, void *ctx,
		       struct fab_pep **out);
/* Synchronous: when it returns no connreq() runs any more. Not from the
 * listener's own loop thread. */
void rtrs__fab_pep_close(struct fab_pep *pep);
int rtrs__fab_pep_name(const struct fab_pep *pep, char *buf, size_t len);
/* Connections the listener closed unanswered at the open-file limit. */
uint64_t rtrs__fab_pep_shed(struct fab_pep *pep);

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
/* Called per received completion: sleeps if it is the one to delay;
 * true if it is the one to drop. */
bool rtrs__fab_fault_rx(void);
void rtrs__fab_fault_from_env(void);

/* libfabric error code to -errno (internal use by the fabric files). */
int rtrs__fab_errno(int fi_err);

#endif /* RTRS_FABRIC_H */
