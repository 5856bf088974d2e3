/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The server role's private header: its structs, its lock order and the
 * contract of every function one server file calls in another. Included
 * by src/core/srv*.c only (the client never includes it).
 *
 * Files (calls go down this list only, never back up):
 *   srv.c       listener API: open/close, MR registration, op and
 *               session accessors
 *   srv_info.c  what a listener shows and closes by name: stats, limits,
 *               sessions and paths (the control socket reads these)
 *   srv_conn.c  connection requests, the auth and info exchange, CM
 *               events, heartbeats, control immediates
 *   srv_io.c    incoming requests, fencing, answers
 *   srv_sess.c  lifetimes: sessions, paths, ops; a path's state changes
 *
 * LOCK ORDER (outer first: a lock may be taken while one above it in this
 * list is held, never while one below it is held):
 *
 *   1. op->lock     one chunk: a request's arrival (on any path) against
 *                   its answer's routing; every path's registration of
 *                   the chunk (p->mrs[op->id]); last_seq/last_status
 *   2. con->lock    one connection: dead, backlog, ep (set, accepted,
 *                   closed once), the posts of answers on it
 *   3. ctx->lock    the listener: the session and path lists, every
 *                   counter of objects (nsess, npaths, npending, ncons),
 *                   lim, a session's name/identity/link state, a path's
 *                   peer, pending, counted_up; ctx->cond waits on it
 *   4. below us:    the timer lock (rtrs__timer_arm() is called with
 *                   ctx->lock held), the fabric's locks (posts with
 *                   con->lock held)
 *
 * Their ranks (util/lock.h, checked in builds without NDEBUG):
 * RTRS_RANK_SRV_OP, _CON, _CTX below, between the registry's and the
 * timer's.
 *
 * Outside the order: the registry's lock (registry.c) is held
 * while it calls the public API, which takes ctx->lock: registry, then
 * ctx->lock. rtrs__timer_stop() waits for a running callback: never call
 * it with ctx->lock or a con->lock held (the callbacks take them; op->lock
 * may be held, no callback takes it). No server lock is held
 * across a user callback (rdma_ev, link_ev) or returned held.
 *
 * Atomics without a lock: p->state (only rtrs__srv_path_set_state()
 * changes it), p->ref (rtrs__srv_path_put() frees at 0), op->state
 * (FREE -> BUSY -> RESP [-> QUEUED -> RESP] -> FREE, and QUEUED -> BUSY
 * when a retry takes the answer to its own connection: whoever moves it
 * out of BUSY posts the answer, once).
 *
 * Lifetimes: a path holds one reference for itself, one per endpoint that
 * is not closed yet and one per op handed to rdma_ev and not answered. The
 * last reference frees the path; the last path frees its session (or arms
 * its linger). So rtrs_srv_close() returns only when every op has been
 * answered.
 */
#ifndef RTRS_SRV_INT_H
#define RTRS_SRV_INT_H

#define RTRS_RANK_SRV_OP 300
#define RTRS_RANK_SRV_CON 310
#define RTRS_RANK_SRV_CTX 320

#include <assert.h>

#include "core.h"
#include "hb.h"
#include "rx.h"

#define RTRS_SRV_RX_BUF 512           /* server admin receive size */

#define pslog(lvl, p, fmt, ...)                                              \
	rtrs_log(lvl, "srv sess %s path %s: " fmt,                           \
		 (p)->sess->named ? (p)->sess->name : "-", (p)->peer,         \
		 ##__VA_ARGS__)

enum srv_path_state { SRV_PATH_CONNECTING, SRV_PATH_CONNECTED, SRV_PATH_CLOSING };
/* a path's authentication: NONE (not asked for, or not yet), SENT (our
 * auth_rsp is out: the info_req with the client's proof may come), OK,
 * FAILED (every further message closes the path) */
enum { SRV_AUTH_NONE, SRV_AUTH_SENT, SRV_AUTH_OK, SRV_AUTH_FAILED };
/*
 * Op states. BUSY: handed to rdma_ev, the user owns it. RESP: the answer is
 * being posted right now; a request for the chunk that arrives meanwhile
 * is legitimate (the response may already be on the wire) and waits for
 * the poster to finish. QUEUED: the answer waits for provider queue room;
 * the client cannot have it, so a request for the chunk is a violation.
 */
enum { OP_FREE = 0, OP_BUSY = 1, OP_RESP = 2, OP_QUEUED = 3 };

struct srv_con;
struct srv_path;
struct srv_listener;

struct rtrs_srv_op {
	struct fab_opctx ctx;
	struct rtrs_srv_sess *sess;
	struct srv_con *con;
	uint32_t id;
	_Atomic int state;
	enum rtrs_dir dir;
	uint32_t data_len;
	int status;
	unsigned posted;                /* READ descriptors already written */
	/* the kernel's client asked for its read key to be invalidated
	 * (NEED_INVAL_F, one descriptor): a SEND_WITH_INV goes before the
	 * answer, whose immediate is then IO_RSP_W_INV */
	bool need_inv, inv_posted;
	/* a READ answered by rtrs_srv_resp_buf(): its data is sent from here,
	 * not from the chunk (kept for a retry's answer) */
	const char *src;
	struct rtrs_srv_mr *src_mr;
	uint16_t sg_cnt;
	struct rtrs_sg_desc desc[RTRS_PROTO_MAX_READ_DESC];
	char rkey_rsp[RTRS_RKEY_RSP_LEN + FAB_MSG_ROOM];
	struct rtrs_list bl_node;
	/* Fencing (docs/protocol.md section 7). The lock serializes arrivals
	 * for this chunk on every path with the answer's routing, and guards
	 * every path's registration of the chunk (mrs[id]). */
	struct rtrs_lock lock;
	uint32_t last_seq;              /* 0: none yet */
	int last_status;                /* of last_seq, once answered */
};

struct srv_con {
	struct srv_path *path;
	unsigned cid;
	struct fab_ep *ep;              /* set and closed under lock */
	struct rtrs_lock lock;
	bool dead;
	bool ep_closed;                 /* under lock: ep closed, by one */
	struct rtrs_list backlog;       /* ops waiting for tx room */
	struct rtrs_rx_ring rx;          /* core/rx.h */
	bool accepted;
	bool batch;                     /* post_write_send() batches */
};

struct srv_path {
	struct rtrs_list node;          /* sess->paths, under ctx->lock */
	struct rtrs_srv_sess *sess;
	/* its endpoints' and registrations': its own where the device
	 * checks RMA (verbs), else the listener's (docs/security.md, 2) */
	struct fab_dom *dom;
	const struct fab_dom *ldom;     /* the listener's (compared only) */
	uint8_t uuid[16];
	unsigned cid_num;
	struct srv_con **cons;
	_Atomic int state;
	_Atomic int ref;                /* open endpoints + busy ops + 1 */
	struct fab_mr **mrs;            /* qd with always_invalidate, else 1 */
	unsigned nmrs;
	char *info_rsp;
	size_t info_rsp_len;
	struct fab_mr *info_mr;         /* info_rsp (mr_local) */
	struct fab_mr *ops_mr;          /* the ops' rkey responses (mr_local) */
	struct fab_opctx info_ctx;
	char peer[128];
	bool counted_up;
	_Atomic bool info_sent;        /* its info_rsp is posted: heartbeats
						   may follow it (not overtake it) */
	bool pending;                   /* in ctx->npending: no info exchange
					   accepted yet; under ctx->lock */
	uint64_t born_ms;               /* created: the handshake deadline */
	uint32_t id;                    /* unique in the session, never 0: the
					   fence id (protocol.md section 7) */
	bool has_no;                    /* the client sent its number of it */
	uint16_t no;                    /* that number, its slot */
	bool fence;                     /* the client sends fence records */
	/* authentication (section 2.7): the conn_req said RTRS_CONN_AUTH_F
	 * on a listener with keys; under ctx->lock after the accept */
	bool auth;
	int auth_state;                 /* SRV_AUTH_* */
	const struct rtrs_auth_key *auth_key;
	uint8_t auth_nc[RTRS_AUTH_NONCE_LEN], auth_ns[RTRS_AUTH_NONCE_LEN];
	char *auth_rsp;                 /* inside info_rsp's registration */
	struct fab_opctx auth_ctx;
	struct rtrs_timer hb;
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes;         /* answered on this path */
	struct rtrs_hb live;            /* liveness: traffic per tick (hb.h) */
};

struct rtrs_srv_sess {
	struct rtrs_list node;          /* ctx->sessions */
	struct rtrs_srv_ctx *ctx;
	uint8_t uuid[16];
	char name[RTRS_PROTO_NAME_LEN];
	bool named;
	bool fence;                     /* set by its first path; every path
					   must agree (protocol.md 7.3) */
	/* the identity its paths proved (ctx->lock); "" without keys */
	char identity[RTRS_AUTH_ID_LEN];
	void *priv;
	struct rtrs_geom geom;
	char *chunks;
	size_t chunks_len;
	struct rtrs_srv_op *ops;
	struct rtrs_list paths;
	unsigned npaths;                /* under ctx->lock */
	unsigned npaths_up;
	bool link_up;
	uint32_t next_path_id;          /* under ctx->lock */
	struct rtrs_timer linger;       /* frees it when no path came back */
	bool client_closed;             /* CLOSE received: no linger; ctx->lock */
	bool gone;                      /* freed by its last path; ctx->lock */
	bool evicted;                   /* its name went to a new session */
	bool established;               /* a path's info exchange was
					   accepted (counted in ctx->nsess);
					   only such a session lingers */
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes;
};

struct rtrs_srv_ctx {
	struct rtrs_srv_attr attr;
	struct rtrs_geom geom;
	size_t npeps;
	struct srv_listener *ls;
	struct rtrs_lock lock;
	pthread_cond_t cond;
	struct rtrs_list sessions;
	unsigned nsess;                 /* established sessions */
	unsigned nsess_all;             /* session objects in sessions */
	unsigned npaths;                /* path objects not yet freed */
	unsigned npending;              /* paths before their info exchange */
	unsigned ncons;                 /* connection objects */
	struct rtrs_srv_limits lim;     /* under lock */
	struct rtrs_keyring keys;       /* n == 0: no authentication */
	bool closing;
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes, st_bad_input, st_executed, st_dup_answered,
		st_dup_attached, st_stale_dropped, st_paths_fenced,
		st_hb_timeouts, st_hs_timeouts, st_ref_sessions,
		st_ref_paths, st_ref_conns, st_ref_pending, st_accept_shed;
	bool timers;
};

struct srv_listener {
	struct rtrs_srv_ctx *ctx;
	struct fab_pep *pep;
	struct fab_dom *dom;
	unsigned loop;
};

/* Application memory registered with each listener's domain. */
struct rtrs_srv_mr {
	const char *buf;
	size_t len;
	size_t n;
	struct {
		struct fab_dom *dom;    /* compared only */
		struct fab_mr *mr;
	} reg[];
};

/* ctx->lock goes through these; a function that needs it held asserts it
 * (RTRS_ASSERT_HELD: util/lock.h, checked in builds without NDEBUG). */
static inline void srv_lock(struct rtrs_srv_ctx *ctx)
{
	rtrs__lock(&ctx->lock);
}

static inline void srv_unlock(struct rtrs_srv_ctx *ctx)
{
	rtrs__unlock(&ctx->lock);
}

/* Wait on ctx->cond, with ctx->lock held. */
static inline void srv_wait(struct rtrs_srv_ctx *ctx)
{
	rtrs__cond_wait(&ctx->cond, &ctx->lock, NULL);
}

#define srv_assert_locked(ctx) RTRS_ASSERT_HELD(&(ctx)->lock)

static inline char *chunk_ptr(const struct rtrs_srv_sess *s, uint32_t id)
{
	return s->chunks + (size_t)id * s->geom.chunk_size;
}

/*
 * Cross-file contracts. "Any lock" below means: none of ctx->lock,
 * con->lock of the path's connections; op->lock only where it says so.
 */

/* srv_sess.c */

/* Allocate a session (chunks, ops) for @uuid; not on any list yet.
 * With ctx->lock held. 0, -ENOMEM. */
int rtrs__srv_sess_create(struct rtrs_srv_ctx *ctx, const uint8_t *uuid,
			  struct rtrs_srv_sess **out);
/* Free @s (its chunks and ops); it is on no list and has no path. No lock
 * needed: nothing else can reach it. */
void rtrs__srv_sess_free(struct rtrs_srv_sess *s);
/* A session object left ctx->sessions; with ctx->lock held. */
void rtrs__srv_sess_uncount(struct rtrs_srv_ctx *ctx, bool established);
/* Free a path that was never on a list (a half-made one too). */
void rtrs__srv_path_free(struct srv_path *p);
/* Drop a reference; the last frees @p and may free its session (then
 * link_ev DISCONNECTED runs). Takes ctx->lock: called with no server lock
 * but op->lock (fence_path() holds it while a path goes). */
void rtrs__srv_path_put(struct srv_path *p);
/* A reference on @p found in a session's list (ctx->lock held), unless
 * its last one is gone: then false, and the thread that dropped it frees
 * @p as soon as it gets ctx->lock. Never a plain increment there: one
 * from 0 revives a path that is being freed (a use after free seen in
 * auth.squat under ASan, rtrs_srv_close() against the loop's close). */
bool rtrs__srv_path_tryget(struct srv_path *p);
/* Close every connection of @p (endpoints closed, answers waiting for
 * room finished) and drop its own reference, once; any thread, any
 * number of times. @bad_input counts it in st_bad_input. Takes con->lock
 * and ctx->lock, stops the heartbeat timer: called without them (op->lock
 * may be held). The caller keeps a reference if it uses @p after. */
void rtrs__srv_path_close(struct srv_path *p, int err, bool bad_input);
/*
 * Move @p from @from to @to if it is in @from and the pair is allowed:
 *   CONNECTING -> CONNECTED   info exchange accepted       (ctx->lock)
 *   CONNECTED  -> CONNECTING  link_ev refused the session  (ctx->lock)
 *   any        -> CLOSING     rtrs__srv_path_close() only  (no lock)
 * Returns true if it moved. A pair not in the table is a bug: it asserts
 * in debug builds and returns false; so does a missing ctx->lock.
 */
bool rtrs__srv_path_set_state(struct srv_path *p, int from, int to);
/* The answer is out (or the path is gone): count it, free the op's chunk
 * and drop the op's path reference. No lock held. */
void rtrs__srv_op_finish(struct rtrs_srv_op *op);
/* Close @c's endpoint, if it has one, exactly once. Takes con->lock:
 * called without it. */
void rtrs__srv_con_close_ep(struct srv_con *c);

/* srv_io.c */

/* An IO_REQ immediate (@payload: chunk and offset) on @c; on @c's progress
 * thread, no lock held. Runs rdma_ev, or answers a retry, or closes the
 * path on malformed input. */
void rtrs__srv_io_req(struct srv_con *c, uint32_t payload);
/* fab_ep_ops.tx_ready: post the answers queued for room on @c (the
 * connection); on its progress thread, no lock held. */
void rtrs__srv_tx_ready(void *c);

/* srv_conn.c */

/* The listeners' connection-request callbacks (rtrs_srv_open()). */
extern const struct fab_pep_ops rtrs__srv_pep_ops;

#endif
