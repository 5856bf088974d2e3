/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Private to src/fabric/: the libfabric-backed objects. */
#ifndef RTRS_FAB_INT_H
#define RTRS_FAB_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "fabric/fabric.h"
#include "util/util.h"

#define RTRS_FI_VERSION FI_VERSION(1, 17)

struct fab_dom {
	_Atomic int ref;
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	/* A server path's own domain (rtrs__fab_dom_for_connreq()): opened
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
	pthread_rwlock_t map_lock;
	bool guard_map;
	/* Set by rtrs__fab_wait_probe() (see loop.c): fi_trywait() leaves
	 * a CQ's wait fd readable, so CQs and EQs get wait sets of their
	 * own, rearmed with fi_wait(ws, 0); and as that provider's wait
	 * objects all watch the domain's one progress fd, every endpoint
	 * and listener of the domain runs on loop home_loop. */
	bool wait_sets;
	unsigned home_loop;
	/* Software RMA (caps.sw_rma, swrma.c): our own table of the
	 * registrations, by key, that incoming RMA frames are checked
	 * against. Lookups and the copy into a region hold it shared;
	 * registering and rtrs__fab_mr_close() exclusive, so that once a
	 * close returns nothing lands in the region any more. */
	pthread_rwlock_t rtab_lock;
	struct fab_mr **rtab;           /* SWR_TAB buckets */
};

/* Around every provider call that may run progress (fab_dom.map_lock). */
static inline void fab_progress_begin(struct fab_dom *d)
{
	if (d->guard_map)
		pthread_rwlock_rdlock(&d->map_lock);
}

static inline void fab_progress_end(struct fab_dom *d)
{
	if (d->guard_map)
		pthread_rwlock_unlock(&d->map_lock);
}

struct fab_mr {
	struct fab_dom *dom;
	struct fid_mr *mr;              /* NULL: software RMA, !mr_local */
	char *base;
	size_t len;
	uint32_t key;
	unsigned access;                /* FAB_ACC_* */
	const void *scope;              /* software RMA: only endpoints of
					   this scope write into it */
	struct fab_mr *rnext;           /* in dom->rtab, under rtab_lock */
};

struct fab_loop;
struct fab_trl_slot;
struct fab_swr;

/* Application-driven progress: the CQs of its endpoints are read by
 * whoever calls rtrs__fab_poller_progress(), never by a loop. */
struct fab_poller {
	pthread_mutex_t lock;           /* eps; held while draining them */
	struct rtrs_list eps;
	int epfd, evfd;                 /* the CQ wait fds + a wake-up */
};

struct fab_ep {
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
	pthread_mutex_t post_lock;      /* posts vs close */
	bool dead;                      /* under post_lock: no more posts */
	_Atomic bool closing;           /* close requested */
	_Atomic bool want_tx;
	_Atomic bool fault_down;        /* fault injection: report SHUTDOWN */
	bool attached;                  /* loop thread only */
	bool cq_ready, eq_ready;        /* loop thread only: fd fired */
	bool cq_more;                   /* loop thread only: budget hit */
	int cq_tag, eq_tag;             /* epoll cookies (addresses used) */
	struct fab_poller *poller;      /* NULL: the loop reads the CQ */
	struct rtrs_list pnode;         /* in poller->eps, under its lock */
	/* Immediate emulation (caps.msg_room): the notification of a
	 * write whose data is posted but that found the send queue full.
	 * Under post_lock; sent before any other post on this endpoint. */
	bool trl_pending;
	uint8_t trl[FAB_MSG_ROOM];
	struct fab_opctx *trl_ctx;
	/* trailer slots (fab.c), the free list under post_lock */
	struct fab_trl_slot *slots;
	struct fab_mr *slots_mr;
	uint32_t *slot_free;
	unsigned nslots, nfree;
	struct fab_swr *swr;            /* software RMA (swrma.c), or NULL */
	const void *scope;              /* whose registrations it may write */
};

struct fab_pep {
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
	int eq_tag;
	_Atomic bool closing;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool closed;
	/* at the open-file limit (loop.c, shed_pep()) */
	int lfd;                        /* the provider's listening socket, or -1 */
	int reserve;                    /* a spare fd given up to refuse, or -1 */
	_Atomic uint64_t shed;          /* connections refused that way */
};

struct fab_connreq {
	struct fi_info *info;
};

/* loop.c */
int rtrs__fab_loop_attach_ep(struct fab_ep *ep);
int rtrs__fab_loop_attach_pep(struct fab_pep *pep);
void rtrs__fab_loop_close_ep(struct fab_ep *ep);
void rtrs__fab_loop_close_pep(struct fab_pep *pep);
struct fab_loop *rtrs__fab_loop(unsigned idx);
/* The loop for an endpoint or listener of @d that asked for loop @idx. */
struct fab_loop *rtrs__fab_loop_of(const struct fab_dom *d, unsigned idx);
void rtrs__fab_loop_wake(struct fab_loop *l);

void rtrs__fab_poller_add(struct fab_ep *ep);

/* Wait objects (loop.c). The probe runs once per domain, from
 * rtrs__fab_dom_open(). The open functions fill in the wait fd and, when
 * d->wait_sets, the wait set; close the set after its CQ or EQ. */
void rtrs__fab_wait_probe(struct fab_dom *d, bool passive);
int rtrs__fab_cq_open(struct fab_dom *d, struct fi_cq_attr *attr,
		      struct fid_cq **cq, struct fid_wait **ws, int *fd);
int rtrs__fab_eq_open(struct fab_dom *d, struct fi_eq_attr *attr,
		      struct fid_eq **eq, struct fid_wait **ws, int *fd);
void rtrs__fab_wait_close(struct fid_wait *ws);

/* fab.c, used by loop.c */
void rtrs__fab_ep_destroy(struct fab_ep *ep);
/* trailer.c: immediate emulation (caps.msg_room) */
int rtrs__fab_trl_slots_init(struct fab_ep *ep);
void rtrs__fab_trl_slots_free(struct fab_ep *ep);
/* With post_lock held: a message with its trailer; the notification of
 * a write, after the write. */
ssize_t rtrs__fab_trl_send(struct fab_ep *ep, const void *buf, size_t len,
			   void *desc, bool has_imm, uint32_t imm, bool rma,
			   struct fab_opctx *ctx, bool signal);
ssize_t rtrs__fab_trl_write(struct fab_ep *ep, const struct iovec *iov,
			    void **desc, size_t cnt, uint64_t raddr,
			    uint32_t key, size_t total, uint32_t imm,
			    struct fab_opctx *ctx, bool signal);
int rtrs__fab_trl_flush_locked(struct fab_ep *ep);
/* Immediate emulation: turn a received message's trailer into the
 * completion's immediate (c->len shrinks by the trailer); -EPROTO in
 * c->err if it has none. */
void rtrs__fab_trl_rx(struct fab_cqe *c);
/* A completion of one of @ep's trailer slots frees it and becomes its
 * owner's (true) or is swallowed (false); others: true. */
bool rtrs__fab_trl_cqe(struct fab_ep *ep, struct fab_cqe *c);
/* Send the pending notification, if any: 0, or -EAGAIN while the send
 * queue stays full. Takes post_lock. */
int rtrs__fab_trl_flush(struct fab_ep *ep);

/* swrma.c: RMA carried as messages (caps.sw_rma) */
int rtrs__fab_swr_dom_init(struct fab_dom *d);
void rtrs__fab_swr_dom_fini(struct fab_dom *d);
/* Give @m a key no registration of the domain has, and enter it. */
void rtrs__fab_swr_mr_add(struct fab_mr *m);
/* Remove @m; waits for a copy into it in progress. */
void rtrs__fab_swr_mr_del(struct fab_mr *m);
/* The endpoint's frames and receive buffers: init before fi_endpoint,
 * post_rx once enabled. */
int rtrs__fab_swr_ep_init(struct fab_ep *e);
int rtrs__fab_swr_post_rx(struct fab_ep *e);
void rtrs__fab_swr_ep_free(struct fab_ep *e);
/* A receive of the core: queued (takes post_lock). */
int rtrs__fab_swr_recv(struct fab_ep *e, void *buf, size_t len,
		       struct fab_opctx *ctx);
/* With post_lock held. */
ssize_t rtrs__fab_swr_send(struct fab_ep *e, const void *buf, size_t len,
			   void *desc, bool has_imm, uint32_t imm,
			   struct fab_opctx *ctx, bool signal);
ssize_t rtrs__fab_swr_write(struct fab_ep *e, const struct iovec *iov,
			    void **desc, size_t cnt, uint64_t raddr,
			    uint32_t key, bool has_imm, uint32_t imm,
			    struct fab_opctx *ctx, bool signal);
/* From drain_cq (the thread reading @e's CQ, no lock held): one
 * completion of @e's, and the delivery of what the core may now take. */
void rtrs__fab_swr_cqe(struct fab_ep *e, struct fab_cqe *c, bool flushing);
void rtrs__fab_swr_deliver(struct fab_ep *e);
/* At close, after the last drain: forget the core's receives. */
void rtrs__fab_swr_flush(struct fab_ep *e);

#endif
