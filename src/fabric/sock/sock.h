/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Private to src/fabric/sock/, the socket backend (provider name "sock",
 * docs/design.md §11): the fabric contract of ../fabric.h on plain TCP
 * sockets, with the frames of docs/protocol.md §2.6 as the only data path
 * (caps.sw_rma: the same frame and key checks as the libfabric backend's
 * software RMA, ../../proto/wire.c, ../keytab.c and ../frame_rx.c). No
 * libfabric or rdma-core here.
 *
 * Files, and the one way their calls go (an arrow: "may call"):
 *
 *   ops.c (the table) -> poller.c -> ep.c -> data.c -> loop.c,
 *   and each of them -> dom.c; below them all ../keytab.c, ../frame_rx.c,
 *   ../fault.c, ../evset.c
 * A loop reaches the files above it only through the hooks ops.c hands
 * it at engine start (struct sk_hooks): events, sweeps, closes.
 *
 * The stream. After a handshake message each way (the hello, below), a
 * connection carries frames back to back, nothing else: the bytes of one
 * sendmsg() are whole frames, and a receiver parses frames off its
 * buffer as they arrive, each checked as it comes
 * (rtrs__proto_frame_decode(), then rtrs__fab_frame_rx() of ../frame_rx.c:
 * the message it adds to, or the key table for an RMA frame).
 *
 * The hello: 12 bytes, then its private data:
 *   "RTRSSOCK" | u8 type (1 connect, 2 accept, 3 reject) | u8 version 1 |
 *   le16 len (at most SK_PRIV_MAX)
 * A peer whose first bytes are anything else (libfabric's tcp, a stray
 * client) is refused with -EPROTO and a logged line.
 *
 * Progress: SK loops (loop.c), one thread each, as many as the CPUs this
 * process may use (at most SK_MAX_LOOPS), started by the first domain
 * opened. A loop owns the sockets of its endpoints and listeners and
 * sleeps on them (epoll, level-triggered) and on its eventfd. An endpoint
 * made with a poller is the loop's until it is connected, then its
 * socket moves to the poller's set and its frames are read by the
 * poller's callers (application-driven progress); the loop takes it back
 * to close it.
 *
 * The drain thread of an endpoint (its loop, or its poller's caller under
 * the poller's lock) alone reads its socket and runs its callbacks.
 * Posting (data.c) may run on any thread: one sendmsg() of whole frames;
 * what the socket does not take is copied to the endpoint's backlog,
 * which the drain thread flushes (EPOLLOUT), so a post never blocks and
 * the caller's buffer is free when it returns. A signalled post's
 * completion is queued and handed to the core by the drain thread.
 *
 * Locks (ranked, util/lock.h; the process-wide table is docs/design.md
 * §5):
 *   fab_poller.lock, RTRS_RANK_SK_POLLER: the core's callbacks run under
 *   it, so it ranks below every lock of the core, as the other backends'
 *   fab_ep.post_lock, RTRS_RANK_SK_POST: the core posts holding its
 *   con->lock, so it ranks above the core's
 *   fab_dom.keys.lock, RTRS_RANK_SK_KEYS: the key table; a leaf
 *   sk_loop.lock (attach/close/kick lists), RTRS_RANK_SK_LOOP: a leaf,
 *   taken under post_lock (a kick)
 *   fab_pep.lock (closed), RTRS_RANK_SK_PEP: a leaf
 *   sk_engine.lock, RTRS_RANK_SK_ENGINE: starting and stopping loops; a
 *   leaf (a domain opens under the core's locks)
 * No callback of the core runs with post_lock, a loop's or a listener's
 * lock held.
 */
#ifndef RTRS_SOCK_H
#define RTRS_SOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fabric/fabric.h"
#include "fabric/frame_rx.h"
#include "fabric/keytab.h"
#include "proto/wire.h"
#include "util/lock.h"
#include "util/util.h"

#define RTRS_RANK_SK_ENGINE 622
#define RTRS_RANK_SK_POLLER 205         /* as the other backends' */
#define RTRS_RANK_SK_POST 500           /* as the other backends' */
#define RTRS_RANK_SK_KEYS 520           /* as the libfabric backend's */
#define RTRS_RANK_SK_LOOP 605
#define RTRS_RANK_SK_PEP 612

#define SK_MAX_LOOPS 64
#define SK_HELLO_LEN 12
#define SK_VERSION 1
#define SK_PRIV_MAX 256                 /* private data of a hello */
#define SK_HELLO_CONNECT 1
#define SK_HELLO_ACCEPT 2
#define SK_HELLO_REJECT 3
#define SK_HELLO_MS 10000               /* a peer's hello, at most */
#define SK_SWEEP_MS 100
#define SK_HDR RTRS_FRAME_HDR_LEN
/* a receive buffer: two of the largest frames (one parsed while the next
 * arrives) */
#define SK_RXCAP (2u * (SK_HDR + RTRS_PROTO_FRAME_BIG))
#define SK_BACKLOG_MAX (1u << 20)       /* bytes a socket did not take, at
					   most (one post more) */
#define SK_IOV_MAX 64                   /* iovecs of one sendmsg */
#define SK_CORK_MAX (8u << 10)          /* a post corked, at most */
#define SK_CORK_FLUSH (64u << 10)       /* corked bytes sent at once */
#define SK_TX_IOV 16                    /* caps.tx_iov_limit */
#define SK_QDEPTH 4096                  /* caps.tx_size, rx_size */


struct fab_dom {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	_Atomic int ref;
	struct fab_caps caps;
	struct sockaddr_storage dst;    /* active: where endpoints go */
	socklen_t dst_len;
	struct sockaddr_storage src;    /* active: from where, if has_src */
	socklen_t src_len;
	bool has_src;
	int lfd;                        /* passive: bound, until pep_open */
	struct fab_keytab keys;         /* registrations peers may write */
};

struct fab_mr {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct fab_dom *dom;
	struct fab_key k;               /* key, access, scope, base, len */
};

enum sk_kind { SK_EP = 1, SK_PEP, SK_PENDING };

enum sk_state {
	SK_IDLE,                        /* created, not connecting yet */
	SK_CONNECTING,                  /* connect() in progress */
	SK_HELLO_WAIT,                  /* ours sent, the peer's awaited */
	SK_UP,                          /* frames flow */
	SK_DOWN,                        /* the peer went, or broke a rule */
};

/* An epoll cookie: what a ready fd belongs to. */
struct sk_tag {
	enum sk_kind kind;
	void *obj;
};

/* A loop (loop.c): its epoll set and eventfd, and what it is handed. */
struct sk_loop {
	unsigned idx;
	struct rtrs_lock lock;
	pthread_t thr;
	int epfd, evfd;
	struct sk_tag ev_tag;
	_Atomic bool stop;
	_Atomic bool asleep;            /* in epoll_wait, or about to be */
	_Atomic unsigned nkick;         /* entries of kick */
	struct rtrs_list attach, close, pattach, pclose, kick; /* lock */
	struct rtrs_list eps, peps;     /* the loop thread's */
	uint64_t next_sweep;
};

struct fab_ep {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct sk_tag tag;
	struct rtrs_list node;          /* the loop's eps, then closing */
	struct rtrs_list cls_node;      /* close list, under loop->lock */
	struct rtrs_list kick_node;     /* kick list, under loop->lock */
	bool kick_queued;               /* under loop->lock */
	struct fab_dom *dom;
	struct sk_loop *loop;
	int fd;
	const struct fab_ep_ops *ops;
	void *ctx;
	const void *scope;
	bool passive;
	char peer[80], name[80];        /* "host:port", set before callbacks */

	/* loop thread until up, then the drain thread */
	_Atomic int state;              /* enum sk_state */
	bool cm_up_told;                /* FAB_CM_CONNECTED handed over */
	bool cm_down_told;              /* SHUTDOWN/ERROR handed over */
	_Atomic int down_err;           /* why it went down */
	uint64_t hello_by_ms;
	uint8_t hello[SK_HELLO_LEN + SK_PRIV_MAX]; /* ours, to send */
	size_t hello_len, hello_sent;

	/* the drain thread's: the stream in */
	uint8_t *rx;                    /* SK_RXCAP */
	size_t rpos, rfill;
	struct fab_frame_rx frx;        /* the message being assembled
					   (../frame_rx.c) */
	bool stalled;                   /* a MSG frame waits for a receive */
	uint32_t d_left;                /* an RMA frame's payload still to
					   receive into its region */
	uint32_t d_key, d_imm;
	uint64_t d_off;
	uint8_t d_flags;
	bool rx_off;                    /* EPOLLIN dropped while stalled */

	/* post_lock */
	struct rtrs_lock post_lock;
	bool dead;                      /* no more posts */
	struct fab_opctx *crx, *crx_tail; /* the core's receives, oldest first */
	uint8_t *bl;                    /* backlog: bytes the socket did not
					   take, in order */
	size_t bl_off, bl_len, bl_cap;
	bool out_armed;                 /* EPOLLOUT asked for */
	struct fab_opctx **txq;         /* signalled sends to complete */
	unsigned txq_n, txq_cap;
	unsigned frag;                  /* payload of the peer's frames */
	bool batch;                     /* the peer takes batches */
	bool corked;                    /* the drain thread corks its posts */
	size_t cork_len;                /* bytes corked in the backlog */

	_Atomic bool closing;
	_Atomic bool want_tx;
	_Atomic bool fault_down;
	_Atomic bool rx_kick;           /* a receive came for a stalled ep */
	_Atomic bool polled;            /* its frames are the poller's */
	struct fab_poller *poller;      /* NULL: the loop drains it */
	struct rtrs_list pnode;         /* poller->eps, under poller->lock */
	bool hint;                      /* poller->lock: seen readable */
};

/* A connect request being read: an accepted socket until its hello. */
struct sk_pending {
	struct sk_tag tag;
	struct rtrs_list node;          /* the listener's pending list */
	struct fab_pep *pep;
	int fd;
	uint64_t by_ms;
	char peer[80];
	size_t got;
	uint8_t buf[SK_HELLO_LEN + SK_PRIV_MAX];
};

/* A connect request, alive during fab_pep_ops.connreq() only. */
struct fab_connreq {
	struct sk_pending *p;
	bool taken;                     /* an endpoint owns the socket now */
	bool rejected;
};

struct fab_pep {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct sk_tag tag;
	struct rtrs_list node;          /* attach list, then the loop's peps */
	struct rtrs_list cls_node;      /* close list, under loop->lock */
	struct fab_dom *dom;
	struct sk_loop *loop;
	int fd;
	int spare_fd;                   /* given up to shed at EMFILE */
	const struct fab_pep_ops *ops;
	void *ctx;
	struct rtrs_list pending;       /* loop thread */
	_Atomic bool closing;
	_Atomic uint64_t shed;
	struct rtrs_lock lock;
	pthread_cond_t cond;
	bool closed;                    /* under lock */
	char name[80];
};

struct fab_poller {
	struct fab_obj obj;             /* first: the backend (fabric.h) */
	struct rtrs_lock lock;
	struct rtrs_list eps;           /* under lock */
	struct fab_evset ws;            /* the eps' sockets and wake-ups */
	_Atomic bool more;              /* work left: do not sleep */
	bool idle;                      /* lock: the last progress found
					   nothing */
	bool waited;                    /* lock: a wait since the last */
};

/* What a loop calls in the files above it (ops.c fills it in from ep.c
 * and data.c), so that calls go one way (sock.h, "Files"). */
struct sk_hooks {
	void (*ep_ready)(struct fab_ep *e, uint32_t events);
	void (*pep_ready)(struct fab_pep *p);
	void (*pending_ready)(struct sk_pending *q);
	void (*ep_sweep)(struct fab_ep *e, uint64_t now_ms);
	void (*pep_sweep)(struct fab_pep *p, uint64_t now_ms);
	int (*drain)(struct fab_ep *e, bool readable, bool *more);
	void (*ep_loop_kicked)(struct fab_ep *e);
	void (*ep_finish)(struct fab_ep *e);
	void (*pep_finish)(struct fab_pep *p);
};

/* ---- loop.c: the engine, its loops ---- */
int rtrs__sk_engine_get(void);
void rtrs__sk_engine_put(void);
unsigned rtrs__sk_nloops(void);
/* Start the loops if not running (the first domain does, ops.c).
 * -errno. */
int rtrs__sk_engine_start(const struct sk_hooks *hooks);
/* The drain thread marks itself (data.c's rtrs__sk_drain()): returns
 * the endpoint it drained before, for leave. */
const struct fab_ep *rtrs__sk_drain_enter(const struct fab_ep *e);
void rtrs__sk_drain_leave(const struct fab_ep *prev);
struct sk_loop *rtrs__sk_loop(unsigned idx);
/* Hand an endpoint / a listener to its loop; ask the loop to close them
 * (a listener's close signals pep->cond). Any thread. */
void rtrs__sk_attach(struct fab_ep *e);
void rtrs__sk_attach_pep(struct fab_pep *p);
void rtrs__sk_close(struct fab_ep *e);
void rtrs__sk_close_pep(struct fab_pep *p);
/* Make @e's drain thread look at it soon (queued completions, a receive
 * for a stalled stream, want_tx, a fault): nothing if the calling thread
 * is draining @e now. Any thread; may take the loop's lock. */
void rtrs__sk_kick(struct fab_ep *e);
/* The same, always to @e's loop (a connection event of a poller's
 * endpoint: rtrs__sk_ep_loop_kicked() runs there). */
void rtrs__sk_kick_loop(struct fab_ep *e);
/* Is the calling thread @e's loop? */
bool rtrs__sk_on_loop(const struct fab_ep *e);
/* Watch @e's socket for writing too (@on) or not, in whichever set
 * watches it; for reading (@in) or not. Under post_lock or on the drain
 * thread. */
void rtrs__sk_watch(struct fab_ep *e, bool in, bool out);
/* Is the calling thread draining @e? */
bool rtrs__sk_draining(const struct fab_ep *e);
/* ---- poller.c: application-driven progress ---- */
int rtrs__sk_poller_create(struct fab_poller **out);
void rtrs__sk_poller_destroy(struct fab_poller *pl);
int rtrs__sk_poller_progress(struct fab_poller *pl);
void rtrs__sk_poller_wait(struct fab_poller *pl, int timeout_ms);
void rtrs__sk_poller_wake(struct fab_poller *pl);

/* ---- dom.c: domains, registrations, addresses ---- */
int rtrs__sk_dom_open(const char *prov, const char *node, const char *service,
		      const char *src_node, bool passive, struct fab_dom **out);
int rtrs__sk_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			     struct fab_dom **out);
void rtrs__sk_dom_get(struct fab_dom *d);
void rtrs__sk_dom_put(struct fab_dom *d);
const struct fab_caps *rtrs__sk_dom_caps(const struct fab_dom *d);
int rtrs__sk_mr_reg(struct fab_dom *d, void *buf, size_t len,
		    unsigned access, struct fab_mr **out);
int rtrs__sk_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			 const void *scope, struct fab_mr **out);
void rtrs__sk_mr_close(struct fab_mr *mr);
uint32_t rtrs__sk_mr_key(const struct fab_mr *mr);
void *rtrs__sk_mr_desc(const struct fab_mr *mr);
uint64_t rtrs__sk_mr_raddr(const struct fab_mr *mr, const void *p);
/* A TCP socket's options for the data path (no delay, close on exec,
 * non-blocking). -errno. */
int rtrs__sk_sock_setup(int fd);

/* ---- ep.c: endpoints, listeners, the hello ---- */
int rtrs__sk_ep_create(struct fab_dom *d, unsigned loop,
		       struct fab_poller *poller, const struct fab_ep_ops *ops,
		       void *ctx, struct fab_ep **out);
int rtrs__sk_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			      unsigned loop, const struct fab_ep_ops *ops,
			      void *ctx, struct fab_ep **out);
int rtrs__sk_ep_connect(struct fab_ep *e, const void *data, size_t len);
int rtrs__sk_ep_accept(struct fab_ep *e, const void *data, size_t len);
int rtrs__sk_reject(struct fab_pep *pep, struct fab_connreq *req,
		    const void *data, size_t len);
void rtrs__sk_ep_close(struct fab_ep *e);
void rtrs__sk_ep_set_scope(struct fab_ep *e, const void *scope);
void rtrs__sk_ep_want_tx(struct fab_ep *e);
const struct fab_caps *rtrs__sk_ep_caps(const struct fab_ep *e);
int rtrs__sk_ep_peer(const struct fab_ep *e, char *buf, size_t len);
int rtrs__sk_ep_name(const struct fab_ep *e, char *buf, size_t len);
int rtrs__sk_pep_open(struct fab_dom *d, unsigned loop,
		      const struct fab_pep_ops *ops, void *ctx,
		      struct fab_pep **out);
void rtrs__sk_pep_close(struct fab_pep *p);
int rtrs__sk_pep_name(const struct fab_pep *p, char *buf, size_t len);
uint64_t rtrs__sk_pep_shed(struct fab_pep *p);
/* The loop's side (loop.c calls these on the loop thread): @e's socket
 * is ready (@events: EPOLLIN/OUT/ERR/HUP); a listener's; a pending
 * request's; the sweep (hello timeouts); @e closes now (every
 * completion handed back, closed(), freed). */
void rtrs__sk_ep_ready(struct fab_ep *e, uint32_t events);
void rtrs__sk_pep_ready(struct fab_pep *p);
void rtrs__sk_pending_ready(struct sk_pending *q);
void rtrs__sk_pep_sweep(struct fab_pep *p, uint64_t now_ms);
void rtrs__sk_ep_sweep(struct fab_ep *e, uint64_t now_ms);
void rtrs__sk_ep_finish(struct fab_ep *e);
void rtrs__sk_pep_finish(struct fab_pep *p);
/* The connection is gone (@err: SHUTDOWN, or ERROR before it was up,
 * told to the core once) or broke a rule (@err 0: the caller tells the
 * core): nothing more is read or sent. The drain thread. */
void rtrs__sk_ep_down(struct fab_ep *e, int err);
/* The loop thread, for a kick of rtrs__sk_kick_loop(). */
void rtrs__sk_ep_loop_kicked(struct fab_ep *e);

/* ---- data.c: posting; the stream in ---- */
int rtrs__sk_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
		       struct fab_opctx *ctx);
int rtrs__sk_post_send(struct fab_ep *e, const void *buf, size_t len,
		       void *desc, bool has_imm, uint32_t imm,
		       struct fab_opctx *ctx, bool signal);
int rtrs__sk_post_write(struct fab_ep *e, const struct iovec *iov,
			void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			bool signal);
int rtrs__sk_post_write_send(struct fab_ep *e, const struct iovec *iov,
			     void **desc, size_t cnt, uint64_t raddr,
			     uint32_t key, const void *buf, size_t len,
			     void *bdesc, uint32_t imm,
			     struct fab_opctx *ctx, bool signal);
unsigned rtrs__sk_ep_takes(struct fab_ep *e, unsigned takes);
/* The drain thread's: read what the socket has and hand every whole
 * frame to the core (at most a budget of bytes); flush the backlog;
 * hand queued completions; tx_ready. Returns the completions handed
 * (>= 0). With @readable false the socket is not read (nothing known to
 * be there), only what is buffered is parsed. *@more (if not NULL):
 * work was left for another pass. */
int rtrs__sk_drain(struct fab_ep *e, bool readable, bool *more);
/* Corking (the drain thread, around the core's callbacks): short
 * unsignalled posts of this thread go to the backlog, sent at uncork. */
void rtrs__sk_flush_out(struct fab_ep *e);
/* Close: hand every posted receive and queued completion back with
 * -ECANCELED. The loop thread, once no one else drains @e. */
void rtrs__sk_flush_all(struct fab_ep *e);

#endif /* RTRS_SOCK_H */
