/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Private to src/fabric/ofi/, the libfabric backend: its objects, and the
 * contract between its files. Calls among them go one way only:
 *
 *   ops.c (the table) -> pep.c -> ep.c -> loop.c, poller.c -> progress.c
 *   post.c -> ep.c (the peer's name), swrma.c, trailer.c
 *   progress.c -> swrma.c, trailer.c -> mr.c -> domain.c -> wait.c
 *   every file -> errno.c; and below them all, backend-neutral,
 *   ../fault.c, ../spin.c, ../keytab.c (mr.c, swrma.c) and ../frame_rx.c
 *   (swrma.c)
 *
 * (an arrow: "may call"; wake-ups are inline, below). No libfabric type
 * or constant leaves this folder.
 *
 * LOCK ORDER (ranked locks, util/lock.h; the whole process's order is the
 * one table of docs/design.md §5). Outer first: a lock may be taken while
 * one above it is held, never while one below it is.
 *   engine.lock (loop.c, 120)  the loops' start and stop; a loop's stop
 *                 runs its last commands (closes: callbacks) under it
 *   fab_poller.lock (205)      the poller's endpoints; held while its
 *                 callers drain them, so the core's and rnbd's callbacks
 *                 run under it. The client creates endpoints (adds them
 *                 here) with its ctl_lock (200) held: between that and
 *                 sess->lock (210)
 *   [the core's and rnbd's locks: a post is made with con->lock held]
 *   fab_ep.post_lock (500)     posts against close and against progress
 *                 on the same endpoint (dead, trailer and swrma state)
 *   fab_dom.map_lock (510)     rwlock: the provider's MR map; shared
 *                 around progress (under post_lock), exclusive around
 *                 fi_mr_reg and fi_close(mr); nothing under it
 *   fab_dom.keys (520)         rwlock (keys.lock): the software-RMA
 *                 key table (../keytab.c) and the copy into a region; a
 *                 leaf
 *   fab_loop.lock (600)        a loop's command queues; a leaf
 *   fab_pep.lock (610)         a listener's closed flag; a leaf
 * No callback runs with post_lock, map_lock, keys, a loop's or a
 * listener's lock held; fab_poller.lock and (at engine stop) engine.lock
 * are the only ones held across callbacks.
 */
#ifndef RTRS_OFI_H
#define RTRS_OFI_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "fabric/fabric.h"
#include "fabric/keytab.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/util.h"

#define RTRS_FI_VERSION FI_VERSION(1, 17)

/* The ranks of the lock order above */
#define RTRS_RANK_OFI_ENGINE 120
#define RTRS_RANK_OFI_POLLER 205
#define RTRS_RANK_OFI_POST 500
#define RTRS_RANK_OFI_MAP 510
#define RTRS_RANK_OFI_RTAB 520
#define RTRS_RANK_OFI_LOOP 600
#define RTRS_RANK_OFI_PEP 610

struct fab_dom {
	struct fab_obj obj;               /* first: the backend (fabric.h) */
	_Atomic int ref;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	/* A server path's own domain (rtrs__ofi_dom_for_connreq()): opened
	 * on its listener's domain's fabric, which it holds (NULL: this
	 * domain opened the fabric and info is its own). */
	struct fab_dom *parent;
	struct fab_caps caps;
	/* The provider's MR map. Registrations are made and dropped from
	 * any thread, and progress (fi_cq_read, fi_eq_read, fi_trywait)
	 * looks keys up in the map for incoming RMA. libfabric 1.17's net
	 * provider does that under its progress lock, which fi_mr_reg
	 * takes but fi_close(mr) does not: it takes no lock at all
	 * (FI_THREAD_SAFE notwithstanding). Seen as a SIGSEGV in the key
	 * lookup under fi_cq_read and fi_eq_read, and as connections
	 * dropped with every request on them failed. Progress holds this
	 * shared where guard_map (xnet: net in 1.17, tcp from 1.18; 1.17's
	 * tcp locks its map itself); fi_mr_reg and fi_close(mr) hold it
	 * exclusive. Nothing else is taken while it is held. */
	struct rtrs_rwlock map_lock;
	bool guard_map;
	/* Set by rtrs__ofi_wait_probe() (see wait.c): fi_trywait() leaves
	 * a CQ's wait fd readable, so CQs and EQs get wait sets of their
	 * own, rearmed with fi_wait(ws, 0); and as that provider's wait
	 * objects all watch the domain's one progress fd, every endpoint
	 * and listener of the domain runs on loop home_loop. */
	bool wait_sets;
	unsigned home_loop;
	/* A CQ read that finds nothing rearms the CQ's wait fd as
	 * fi_trywait() would (wait.c, rtrs__ofi_busy_cq()): tcp. */
	bool read_rearms;
	/* tcp, net: a message that finds no receive posted waits in the
	 * provider's buffer, where no fd shows it (post.c) */
	bool holds_back;
	/* Software RMA (caps.sw_rma, swrma.c): our own table of the
	 * registrations, by key, that incoming RMA frames are checked
	 * against (../keytab.h; made and freed with the domain, zeroed
	 * without sw_rma). Lookups and the copy into a region hold its
	 * lock shared; registering and rtrs__ofi_mr_close() exclusive, so
	 * that once a close returns nothing lands in the region any more. */
	struct fab_keytab keys;
};

/* Around every provider call that may run progress (fab_dom.map_lock). */
static inline void fab_progress_begin(struct fab_dom *d)
{
	if (d->guard_map)
		rtrs__rdlock(&d->map_lock);
}

static inline void fab_progress_end(struct fab_dom *d)
{
	if (d->guard_map)
		rtrs__rwunlock(&d->map_lock);
}

struct fab_mr {
	struct fab_obj obj;               /* first: the backend (fabric.h) */
	struct fab_dom *dom;
	struct fid_mr *mr;              /* NULL: software RMA, !mr_local */
	/* key (the provider's, or with software RMA the table's), access,
	 * base and len; software RMA: scope (only endpoints of this scope
	 * write into it) and the link in dom->keys, under its lock */
	struct fab_key k;
};

struct fab_loop;
struct fab_trl_slot;
struct fab_swr;

/* Application-driven progress: the CQs of its endpoints are read by
 * whoever calls rtrs__ofi_poller_progress(), never by a loop. */
struct fab_poller {
	struct fab_obj obj;               /* first: the backend (fabric.h) */
	struct rtrs_lock lock;          /* eps; held while draining them */
	struct rtrs_list eps;
	struct fab_evset ws;            /* the CQ wait fds + a wake-up */
	uint64_t swept_ns;              /* last read of every CQ */
	bool no_sweep;                  /* tests: rtrs__ofi_poller_no_sweep() */
	bool woke;                      /* quiet ones told by the wait */
	bool idle;                      /* the last call found nothing */
	unsigned calls;                 /* since the last look or wait */
};

struct fab_ep {
	struct fab_obj obj;               /* first: the backend (fabric.h) */
	struct rtrs_list node;          /* in loop->eps, loop thread only */
	struct rtrs_list att_node;      /* in loop->attach, under loop->lock */
	struct rtrs_list cls_node;      /* in loop->close, under loop->lock */
	struct fab_loop *loop;
	struct fab_dom *dom;
	struct fid_ep *ep;
	struct fid_cq *cq;
	struct fid_eq *eq;
	struct fid_wait *cq_ws, *eq_ws; /* NULL unless dom->wait_sets */
	int cq_fd, eq_fd;
	const struct fab_ep_ops *ops;
	void *ctx;
	struct rtrs_lock post_lock;     /* posts vs close and progress */
	bool dead;                      /* under post_lock: no more posts */
	_Atomic bool closing;           /* close requested */
	_Atomic bool want_tx;
	_Atomic bool fault_down;        /* fault injection: report SHUTDOWN */
	bool attached;                  /* loop thread only */
	bool cq_ready, eq_ready;        /* loop thread only: fd fired */
	bool cq_more;                   /* loop thread only: budget hit */
	/* checked empty before a sleep, not since read (loop.c, poller.c):
	 * cq_quiet its CQ reader's (the loop thread, or under the poller's
	 * lock), eq_quiet the loop thread's */
	bool cq_quiet, eq_quiet;
	/* under post_lock: the last CQ read found nothing, and no receive
	 * was posted since (wait.c, rtrs__ofi_busy_cq()) */
	bool cq_empty;
	int cq_tag, eq_tag;             /* epoll cookies (addresses used) */
	struct fab_poller *poller;      /* NULL: the loop reads the CQ */
	struct rtrs_list pnode;         /* in poller->eps, under its lock */
	/* Immediate emulation (caps.msg_room): the notification of a
	 * write whose data is posted but that found the send queue full.
	 * Under post_lock; sent before any other post on this endpoint. */
	bool trl_pending;
	uint8_t trl[FAB_MSG_ROOM];
	struct fab_opctx *trl_ctx;
	/* trailer slots (trailer.c), the free list under post_lock */
	struct fab_trl_slot *slots;
	struct fab_mr *slots_mr;
	uint32_t *slot_free;
	unsigned nslots, nfree;
	struct fab_swr *swr;            /* software RMA (swrma.c), or NULL */
	const void *scope;              /* whose registrations it may write */
};

struct fab_pep {
	struct fab_obj obj;               /* first: the backend (fabric.h) */
	struct rtrs_list node;
	struct rtrs_list att_node;
	struct rtrs_list cls_node;
	struct fab_loop *loop;
	struct fab_dom *dom;
	struct fid_pep *pep;
	struct fid_eq *eq;
	struct fid_wait *eq_ws;         /* NULL unless dom->wait_sets */
	int eq_fd;
	const struct fab_pep_ops *ops;
	void *ctx;
	bool attached;
	bool eq_ready;
	bool eq_quiet;                  /* loop thread only: loop.c */
	int eq_tag;
	_Atomic bool closing;
	struct rtrs_lock lock;          /* closed */
	pthread_cond_t cond;
	bool closed;
	/* at the open-file limit (progress.c, shed_pep()) */
	int lfd;                        /* the provider's listening socket, or -1 */
	int reserve;                    /* a spare fd given up to refuse, or -1 */
	_Atomic uint64_t shed;          /* connections refused that way */
};

struct fab_connreq {
	struct fi_info *info;
};

#define LOOP_SWEEP_MS 100       /* drain everything at least this often */
#define CQ_BATCH 32

/* A progress thread (loop.c). */
struct fab_loop {
	unsigned idx;
	int cpu;
	pthread_t thr;
	int epfd, evfd;
	struct rtrs_lock lock;
	struct rtrs_list attach, close, pattach, pclose; /* under lock */
	struct rtrs_list eps, peps;     /* loop thread only */
	_Atomic bool stop;
	_Atomic bool woken;
};

/* Wake-ups, any thread, no lock: inline so that the files below the loop
 * (swrma.c, trailer.c) need not call up into it. */
static inline void ofi_wake_loop(struct fab_loop *l)
{
	uint64_t one = 1;
	bool was = false;

	if (!atomic_compare_exchange_strong(&l->woken, &was, true))
		return;
	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_err_rl("loop %u: eventfd write: %d", l->idx, errno);
}


/* Ask the thread that reads @e's CQ for ops->tx_ready(). */
static inline void ofi_want_tx(struct fab_ep *e)
{
	atomic_store(&e->want_tx, true);
	if (e->poller)
		rtrs__fab_evset_wake(&e->poller->ws);
	else
		ofi_wake_loop(e->loop);
}

/* The operations of struct rtrs__fab_ops (fabric.h documents each), as
 * this backend implements them; ops.c makes the table. */
extern const struct rtrs__fab_ops rtrs__ofi_ops;
int rtrs__ofi_engine_get(void);
void rtrs__ofi_engine_put(void);
unsigned rtrs__ofi_nloops(void);
int rtrs__ofi_dom_open(const char *prov, const char *node, const char *service,
		       const char *src_node, bool passive,
		       struct fab_dom **out);
int rtrs__ofi_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			      struct fab_dom **out);
void rtrs__ofi_dom_get(struct fab_dom *d);
void rtrs__ofi_dom_put(struct fab_dom *d);
const struct fab_caps *rtrs__ofi_dom_caps(const struct fab_dom *d);
int rtrs__ofi_mr_reg(struct fab_dom *d, void *buf, size_t len, unsigned access,
		     struct fab_mr **out);
int rtrs__ofi_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			  const void *scope, struct fab_mr **out);
void rtrs__ofi_mr_close(struct fab_mr *mr);
uint32_t rtrs__ofi_mr_key(const struct fab_mr *mr);
void *rtrs__ofi_mr_desc(const struct fab_mr *mr);
uint64_t rtrs__ofi_mr_raddr(const struct fab_mr *mr, const void *p);
int rtrs__ofi_ep_create(struct fab_dom *d, unsigned loop,
			struct fab_poller *poller,
			const struct fab_ep_ops *ops, void *ctx,
			struct fab_ep **out);
int rtrs__ofi_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			       unsigned loop, const struct fab_ep_ops *ops,
			       void *ctx, struct fab_ep **out);
int rtrs__ofi_ep_connect(struct fab_ep *ep, const void *data, size_t len);
int rtrs__ofi_ep_accept(struct fab_ep *ep, const void *data, size_t len);
int rtrs__ofi_reject(struct fab_pep *pep, struct fab_connreq *req,
		     const void *data, size_t len);
void rtrs__ofi_ep_close(struct fab_ep *ep);
void rtrs__ofi_ep_set_scope(struct fab_ep *ep, const void *scope);
void rtrs__ofi_ep_want_tx(struct fab_ep *ep);
const struct fab_caps *rtrs__ofi_ep_caps(const struct fab_ep *ep);
int rtrs__ofi_ep_peer(const struct fab_ep *ep, char *buf, size_t len);
int rtrs__ofi_ep_name(const struct fab_ep *ep, char *buf, size_t len);
int rtrs__ofi_post_recv(struct fab_ep *ep, void *buf, size_t len, void *desc,
			struct fab_opctx *ctx);
int rtrs__ofi_post_send(struct fab_ep *ep, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm,
			struct fab_opctx *ctx, bool signal);
int rtrs__ofi_post_write(struct fab_ep *ep, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			 bool signal);
unsigned rtrs__ofi_ep_takes(struct fab_ep *ep, unsigned takes);
int rtrs__ofi_post_write_send(struct fab_ep *ep, const struct iovec *iov,
			      void **desc, size_t cnt, uint64_t raddr,
			      uint32_t key, const void *buf, size_t len,
			      void *bdesc, uint32_t imm, struct fab_opctx *ctx,
			      bool signal);
int rtrs__ofi_poller_create(struct fab_poller **out);
void rtrs__ofi_poller_destroy(struct fab_poller *pl);
int rtrs__ofi_poller_progress(struct fab_poller *pl);
void rtrs__ofi_poller_wait(struct fab_poller *pl, int timeout_ms);
void rtrs__ofi_poller_wake(struct fab_poller *pl);
/* Tests (fab.quiet): no sweep, so that only the wait fds end a quiet
 * endpoint's quietness (poller.c); a missed one then never completes. */
void rtrs__ofi_poller_no_sweep(struct fab_poller *pl);
/* The same for every loop of the engine (loop.c). */
void rtrs__ofi_loops_no_sweep(void);
int rtrs__ofi_pep_open(struct fab_dom *d, unsigned loop,
		       const struct fab_pep_ops *ops, void *ctx,
		       struct fab_pep **out);
void rtrs__ofi_pep_close(struct fab_pep *pep);
int rtrs__ofi_pep_name(const struct fab_pep *pep, char *buf, size_t len);
uint64_t rtrs__ofi_pep_shed(struct fab_pep *pep);

/* errno.c: a libfabric error code (either sign) to -errno. */
int rtrs__ofi_errno(int fi_err);

/* loop.c: queue an attach or close for the object's loop thread (any
 * thread, takes fab_loop.lock). */
void rtrs__ofi_loop_attach_ep(struct fab_ep *ep);
void rtrs__ofi_loop_attach_pep(struct fab_pep *pep);
void rtrs__ofi_loop_close_ep(struct fab_ep *ep);
void rtrs__ofi_loop_close_pep(struct fab_pep *pep);
struct fab_loop *rtrs__ofi_loop(unsigned idx);
/* The loop for an endpoint or listener of @d that asked for loop @idx. */
struct fab_loop *rtrs__ofi_loop_of(const struct fab_dom *d, unsigned idx);

/* ep.c, for pep.c: the CM private data @fid's provider carries, with
 * @len cut to it (-EMSGSIZE if the tail cut is not zero); "host:port" of
 * @fid's local address. */
int rtrs__ofi_cm_data_fit(struct fid *fid, const void *data, size_t *len);
int rtrs__ofi_fid_name(struct fid *fid, char *buf, size_t len);

/* poller.c: from endpoint creation, before the endpoint is attached. */
void rtrs__ofi_poller_add(struct fab_ep *ep);

/* progress.c: run by the thread that reads the object's queues (its loop,
 * or for a poller's endpoint's CQ a thread in rtrs__ofi_poller_progress()
 * under poller.lock); no other lock held. */
/* Read @e's CQ and hand the completions to ops->cqe(); returns the
 * number handled. All of it when @flushing; else one read that gives
 * entries (up to CQ_BATCH), so that an endpoint whose completions keep
 * coming (each conf posting the next request there) does not hold its
 * thread from the other endpoints: a return > 0 means come back after
 * them. */
int rtrs__ofi_drain_cq(struct fab_ep *e, bool flushing);
void rtrs__ofi_drain_eq(struct fab_ep *e);
void rtrs__ofi_drain_pep(struct fab_pep *p);
/* want_tx was set (and cleared by the caller): false if the send queue
 * is still full (want_tx set again), else ops->tx_ready() ran. */
bool rtrs__ofi_tx_ready(struct fab_ep *e);
/* Loop thread, @e detached from loop and poller: close, flush every
 * operation to ops->cqe(), ops->closed(), free. */
void rtrs__ofi_ep_close_now(struct fab_ep *e);
/* Free every libfabric object of an endpoint that never got attached,
 * or (rtrs__ofi_ep_close_now()) one whose completions were drained. */
void rtrs__ofi_ep_destroy(struct fab_ep *ep);

/* wait.c: wait objects. The probe runs once per domain, from
 * rtrs__ofi_dom_open(). The open functions fill in the wait fd and, when
 * d->wait_sets, the wait set; close the set after its CQ or EQ. */
void rtrs__ofi_wait_probe(struct fab_dom *d, bool passive);
int rtrs__ofi_cq_open(struct fab_dom *d, struct fi_cq_attr *attr,
		      struct fid_cq **cq, struct fid_wait **ws, int *fd);
int rtrs__ofi_eq_open(struct fab_dom *d, struct fi_eq_attr *attr,
		      struct fid_eq **eq, struct fid_wait **ws, int *fd);
void rtrs__ofi_wait_close(struct fid_wait *ws);
/* May the caller sleep on this CQ's or EQ's wait fd? True if there is
 * something to read first (this also rearms the fd). */
bool rtrs__ofi_busy_fid(struct fab_dom *d, struct fid *f,
			struct fid_wait *ws);
/* The same for @e's CQ, under @e's post_lock. */
bool rtrs__ofi_busy_cq(struct fab_ep *e);

/* trailer.c: immediate emulation (caps.msg_room) */
int rtrs__ofi_trl_slots_init(struct fab_ep *ep);
void rtrs__ofi_trl_slots_free(struct fab_ep *ep);
/* With post_lock held: a message with its trailer; the notification of
 * a write, after the write. */
ssize_t rtrs__ofi_trl_send(struct fab_ep *ep, const void *buf, size_t len,
			   void *desc, bool has_imm, uint32_t imm, bool rma,
			   struct fab_opctx *ctx, bool signal);
ssize_t rtrs__ofi_trl_write(struct fab_ep *ep, const struct iovec *iov,
			    void **desc, size_t cnt, uint64_t raddr,
			    uint32_t key, size_t total, uint32_t imm,
			    struct fab_opctx *ctx, bool signal);
int rtrs__ofi_trl_flush_locked(struct fab_ep *ep);
/* Immediate emulation: turn a received message's trailer into the
 * completion's immediate (c->len shrinks by the trailer); -EPROTO in
 * c->err if it has none. */
void rtrs__ofi_trl_rx(struct fab_cqe *c);
/* A completion of one of @ep's trailer slots frees it and becomes its
 * owner's (true) or is swallowed (false); others: true. */
bool rtrs__ofi_trl_cqe(struct fab_ep *ep, struct fab_cqe *c);
/* Send the pending notification, if any: 0, or -EAGAIN while the send
 * queue stays full. Takes post_lock. */
int rtrs__ofi_trl_flush(struct fab_ep *ep);

/* swrma.c: RMA carried as messages (caps.sw_rma) */
/* The endpoint's frames and receive buffers: init before fi_endpoint,
 * post_rx once enabled. */
int rtrs__ofi_swr_ep_init(struct fab_ep *e);
int rtrs__ofi_swr_post_rx(struct fab_ep *e);
void rtrs__ofi_swr_ep_free(struct fab_ep *e);
/* A receive of the core: queued (takes post_lock). */
int rtrs__ofi_swr_recv(struct fab_ep *e, void *buf, size_t len,
		       struct fab_opctx *ctx);
/* With post_lock held. */
ssize_t rtrs__ofi_swr_send(struct fab_ep *e, const void *buf, size_t len,
			   void *desc, bool has_imm, uint32_t imm,
			   struct fab_opctx *ctx, bool signal);
ssize_t rtrs__ofi_swr_write(struct fab_ep *e, const struct iovec *iov,
			    void **desc, size_t cnt, uint64_t raddr,
			    uint32_t key, bool has_imm, uint32_t imm,
			    struct fab_opctx *ctx, bool signal);
/* With post_lock held: what the peer's receives take (FAB_PEER_*,
 * protocol.md 2.6): post_write_send as one, frames up to
 * RTRS_PROTO_FRAME_BIG. Returns the ones used. */
unsigned rtrs__ofi_swr_peer(struct fab_ep *e, unsigned takes);
/* With post_lock held: a write without immediate and a message with @imm,
 * in one sendmsg when batching and they fit, else as frames one after
 * the other; all or nothing (-FI_EAGAIN). */
ssize_t rtrs__ofi_swr_write_send(struct fab_ep *e, const struct iovec *iov,
				 void **desc, size_t cnt, uint64_t raddr,
				 uint32_t key, const void *buf, size_t len,
				 void *bdesc, uint32_t imm,
				 struct fab_opctx *ctx, bool signal);
/* From rtrs__ofi_drain_cq() (the thread reading @e's CQ, no lock held): one
 * completion of @e's, and the delivery of what the core may now take. */
void rtrs__ofi_swr_cqe(struct fab_ep *e, struct fab_cqe *c, bool flushing);
void rtrs__ofi_swr_deliver(struct fab_ep *e);
/* Corked answers (swrma.c): from cork to uncork, short unsignalled
 * messages this thread posts on @e are gathered; push sends them as one
 * message (after each CQ read's entries), uncork also ends the gathering.
 * The drain thread only, without post_lock. */
void rtrs__ofi_swr_cork(struct fab_ep *e);
void rtrs__ofi_swr_push(struct fab_ep *e);
void rtrs__ofi_swr_uncork(struct fab_ep *e);
/* At close, after the last drain: forget the core's receives. */
void rtrs__ofi_swr_flush(struct fab_ep *e);
/* Tests (fab.silent): frame headers in flight (none: every send freed),
 * and the send completions the provider gave so far (silent sends give
 * none). Zeros on an endpoint without software RMA. */
void rtrs__ofi_swr_tx_state(struct fab_ep *e, unsigned *busy,
			    unsigned long *cqes);

#endif
