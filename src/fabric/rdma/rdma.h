/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Private to src/fabric/rdma/, the rdma-core backend (librdmacm +
 * libibverbs, provider name "rdma", issue 18): its objects, and the
 * contract between its files. Calls among them go one way only:
 *
 *   ops.c (the table) -> ep.c, post.c, poller.c -> loop.c -> dom.c
 *   ep.c -> poller.c; post.c -> ep.c (a peer's name, for fault
 *   injection); ep.c, post.c -> dom.c; and below them all,
 *   backend-neutral, ../fault.c
 *
 * (an arrow: "may call"). No rdma-core type or constant leaves this
 * folder.
 *
 * Progress: one loop thread (loop.c) for the whole backend, started by the
 * first domain opened (the engine's reference alone starts nothing, so a
 * host without RDMA pays nothing). It owns the one RDMA CM event channel
 * that every connection and listener uses, and each endpoint's completion
 * channel (one CQ per endpoint, for its send and receive queues); every
 * callback of the core runs on it, but the completions of an endpoint
 * created with a poller (application-driven progress, RTRS_POLL): those
 * the poller's callers read (poller.c), as on the libfabric backend; the
 * loop keeps its CM events, and takes it back from the poller to close
 * it.
 *
 * Locks (ranked, util/lock.h; the process-wide table is docs/design.md
 * §5):
 *   rd_poller.lock (its endpoints, and their CQs while a caller reads
 *   them), RTRS_RANK_RD_POLLER: the core's callbacks run under it, so it
 *   ranks below every lock of the core, as the libfabric backend's
 * and, none nested with another of them:
 *   rd_ep.post_lock (posts, the send ring, dead), RTRS_RANK_RD_POST: the
 *   core posts holding its con->lock, so it ranks above the core's
 *   rd_pep.lock (closed), RTRS_RANK_RD_PEP: a leaf
 *   rd_engine.lock (loop.c: the engine, its attach/close lists),
 *   RTRS_RANK_RD_ENGINE: a leaf (an endpoint is created under the core's
 *   locks)
 * No callback of the core runs with any of them held.
 */
#ifndef RTRS_RDMA_H
#define RTRS_RDMA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "fabric/fabric.h"
#include "util/lock.h"
#include "util/util.h"

#define RTRS_RANK_RD_POLLER 205         /* as the libfabric backend's */
#define RTRS_RANK_RD_POST 500           /* as the libfabric backend's */
#define RTRS_RANK_RD_PEP 615
#define RTRS_RANK_RD_ENGINE 620

#define RD_SQ_DEPTH 1024        /* send queue: slots of the send ring */
#define RD_RQ_DEPTH 1024
#define RD_MAX_SGE 16
#define RD_RESOLVE_MS 5000      /* address and route resolution */
#define RD_CONN_PRIV 56         /* IB CM REQ private data */
#define RD_ACC_PRIV 196         /* REP */
#define RD_REJ_PRIV 148         /* REJ */
#define RD_SWEEP_MS 100
#define RD_CQ_BUDGET 32         /* completions of one CQ per pass, then the
                                 * other CQs get theirs (fairness) */
/* a send ring slot's wr_id: (index << 2) | 1; receives: the context
 * pointer (8-byte aligned); the close's drain marker: */
#define RD_WR_SQ 1u
#define RD_WR_DRAIN_SQ 3u

struct fab_dom {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	_Atomic int ref;
	struct ibv_context *verbs;      /* NULL: a wildcard listener's */
	struct ibv_pd *pd;
	struct fab_caps caps;
	struct sockaddr_storage dst;    /* active: where endpoints go */
	struct sockaddr_storage src;
	bool has_src;
	struct rdma_cm_id *lid;         /* passive: bound, until pep_open */
};

struct fab_mr {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct fab_dom *dom;
	struct ibv_mr *mr;
};

struct rd_slot {                        /* one send queue entry */
	struct fab_opctx *ctx;
	bool signal;                    /* the core asked for a completion */
};

enum rd_kind { RD_EP = 1, RD_PEP };

struct fab_ep {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	enum rd_kind kind;              /* second: what a CM id's context is */
	struct rtrs_list node;          /* attach (under rd_engine.lock), then
					   the loop thread's eps, closing */
	struct rtrs_list cls_node;      /* close, under rd_engine.lock */
	struct fab_dom *dom;
	struct rdma_cm_id *id;
	struct ibv_comp_channel *cch;
	struct ibv_cq *cq;
	const struct fab_ep_ops *ops;
	void *ctx;
	const void *scope;              /* unused: the PD scopes keys */
	struct rtrs_lock post_lock;
	bool dead;                      /* under post_lock: no more posts */
	unsigned sq_head, sq_tail;      /* under post_lock: the send ring */
	unsigned sq_unsig;              /* under post_lock: since a signal */
	struct rd_slot ring[RD_SQ_DEPTH];
	_Atomic unsigned rq_out;        /* receives posted, not completed */
	_Atomic bool closing;
	_Atomic bool want_tx;
	_Atomic bool fault_down;
	bool connected;                 /* loop thread */
	bool sq_drained;                /* loop thread, while closing */
	uint64_t close_by_ms;           /* loop thread, while closing */
	int cq_tag;                     /* the epoll cookie's address */
	struct fab_poller *poller;      /* NULL: the loop reads the CQ */
	struct rtrs_list pnode;         /* poller->eps, under poller->lock */
};

/* Application-driven progress (poller.c): the CQs of its endpoints are
 * read by the threads that call rtrs__rd_poller_progress(). */
struct fab_poller {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct rtrs_lock lock;
	struct rtrs_list eps;           /* under lock; a closing one leaves
					   it on the loop thread */
	struct fab_evset ws;            /* the eps' completion channels and
					   rtrs__rd_poller_wake() */
	_Atomic bool more;              /* a CQ had more than its budget */
};

struct fab_pep {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	enum rd_kind kind;              /* second, as in fab_ep */
	struct rtrs_list node;          /* loop thread: the close list */
	struct fab_dom *dom;
	struct rdma_cm_id *id;
	const struct fab_pep_ops *ops;
	void *ctx;
	_Atomic bool closing;
	struct rtrs_lock lock;
	pthread_cond_t cond;
	bool closed;                    /* under lock */
};

/* A connect request, alive during fab_pep_ops.connreq() only. */
struct fab_connreq {
	struct rdma_cm_id *id;
	bool taken;                     /* an endpoint owns id now */
	bool rejected;
};

/* ---- loop.c: the engine and its thread ---- */
int rtrs__rd_engine_get(void);
void rtrs__rd_engine_put(void);
unsigned rtrs__rd_nloops(void);
/* Start the loop if not running (the first domain does it): its event
 * channel, epoll and thread. Blocks; not from the loop. -ENODEV (no
 * RDMA device or no rdma_cm: RDMA CM cannot open its channel), -ENOMEM. */
int rtrs__rd_engine_start(void);
/* The loop's event channel (after rtrs__rd_engine_start()). */
struct rdma_event_channel *rtrs__rd_channel(void);
/* Hand an endpoint to the loop (it watches its CQ from then on) / ask
 * the loop to close it / to close a listener (then signals pep->cond). */
void rtrs__rd_attach(struct fab_ep *e);
void rtrs__rd_close(struct fab_ep *e);
void rtrs__rd_close_pep(struct fab_pep *p);
/* Wake the loop (want_tx, fault injection). Any thread. */
void rtrs__rd_wake(void);
/* Free an endpoint's verbs objects and memory: the loop's end of it, or
 * its creator's when it never reached the loop. */
void rtrs__rd_ep_destroy(struct fab_ep *e);
/* Read @e's CQ (its completion channel's events first, rearmed), at most
 * RD_CQ_BUDGET completions, each handed to the core: their number. The
 * loop thread, or @e's poller's caller under its lock. */
int rtrs__rd_drain_cq(struct fab_ep *e);
/* ops->tx_ready() if @e asked for it and its send ring has room; the
 * same threads. */
void rtrs__rd_tx_ready(struct fab_ep *e);

/* ---- dom.c: domains, registrations, addresses ---- */
int rtrs__rd_dom_open(const char *prov, const char *node, const char *service,
		      const char *src_node, bool passive, struct fab_dom **out);
int rtrs__rd_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			     struct fab_dom **out);
void rtrs__rd_dom_get(struct fab_dom *d);
void rtrs__rd_dom_put(struct fab_dom *d);
const struct fab_caps *rtrs__rd_dom_caps(const struct fab_dom *d);
int rtrs__rd_mr_reg(struct fab_dom *d, void *buf, size_t len,
		    unsigned access, struct fab_mr **out);
int rtrs__rd_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			 const void *scope, struct fab_mr **out);
void rtrs__rd_mr_close(struct fab_mr *mr);
uint32_t rtrs__rd_mr_key(const struct fab_mr *mr);
void *rtrs__rd_mr_desc(const struct fab_mr *mr);
uint64_t rtrs__rd_mr_raddr(const struct fab_mr *mr, const void *p);
/* Wait for the next event of @ch (a private channel of a resolution),
 * up to @ms: its type, or -ETIMEDOUT; the event is acked. */
int rtrs__rd_wait_event(struct rdma_event_channel *ch, int ms);
/* A private event channel: -ENODEV where RDMA CM has no device. */
int rtrs__rd_channel_new(struct rdma_event_channel **out);

/* ---- ep.c: endpoints and listeners ---- */
int rtrs__rd_ep_create(struct fab_dom *d, unsigned loop,
		       struct fab_poller *poller, const struct fab_ep_ops *ops,
		       void *ctx, struct fab_ep **out);
int rtrs__rd_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			      unsigned loop, const struct fab_ep_ops *ops,
			      void *ctx, struct fab_ep **out);
int rtrs__rd_ep_connect(struct fab_ep *e, const void *data, size_t len);
int rtrs__rd_ep_accept(struct fab_ep *e, const void *data, size_t len);
int rtrs__rd_reject(struct fab_pep *pep, struct fab_connreq *req,
		    const void *data, size_t len);
void rtrs__rd_ep_close(struct fab_ep *e);
void rtrs__rd_ep_set_scope(struct fab_ep *e, const void *scope);
void rtrs__rd_ep_want_tx(struct fab_ep *e);
const struct fab_caps *rtrs__rd_ep_caps(const struct fab_ep *e);
int rtrs__rd_ep_peer(const struct fab_ep *e, char *buf, size_t len);
int rtrs__rd_ep_name(const struct fab_ep *e, char *buf, size_t len);
int rtrs__rd_pep_open(struct fab_dom *d, unsigned loop,
		      const struct fab_pep_ops *ops, void *ctx,
		      struct fab_pep **out);
void rtrs__rd_pep_close(struct fab_pep *p);
int rtrs__rd_pep_name(const struct fab_pep *p, char *buf, size_t len);
uint64_t rtrs__rd_pep_shed(struct fab_pep *p);

/* ---- poller.c: application-driven progress ---- */
int rtrs__rd_poller_create(struct fab_poller **out);
void rtrs__rd_poller_destroy(struct fab_poller *pl);
/* From rtrs__rd_ep_create(), before the endpoint reaches the loop. */
void rtrs__rd_poller_add(struct fab_ep *e);
int rtrs__rd_poller_progress(struct fab_poller *pl);
void rtrs__rd_poller_wait(struct fab_poller *pl, int timeout_ms);
void rtrs__rd_poller_wake(struct fab_poller *pl);

/* ---- post.c: posting; the send ring ---- */
int rtrs__rd_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
		       struct fab_opctx *ctx);
int rtrs__rd_post_send(struct fab_ep *e, const void *buf, size_t len,
		       void *desc, bool has_imm, uint32_t imm,
		       struct fab_opctx *ctx, bool signal);
int rtrs__rd_post_send_inv(struct fab_ep *e, uint32_t key,
			   struct fab_opctx *ctx, bool signal);
int rtrs__rd_post_write(struct fab_ep *e, const struct iovec *iov,
			void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			bool signal);

#endif /* RTRS_RDMA_H */
