/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The client role's private header: its structs, its lock order and the
 * contract of every function one client file calls in another. The server
 * never includes it. Files, top down (calls go down only):
 *
 *   clt.c         session API: open/close, path verbs, queries, stats,
 *                 policy and reconnect settings, MR registration
 *   clt_conn.c    connecting a path: addresses, alloc/free, connections,
 *                 handshake, authentication, reconnect thread
 *   clt_path.c    a path's life once created: the state function, link
 *                 events, closing, endpoint events (CQ, CM, tx room),
 *                 heartbeats
 *   clt_io.c      data path: issue, post, responses, completion, failover,
 *                 holding requests while no path is up, rtrs_clt_poll()
 *   clt_permit.c  permits          clt_policy.c  path choice
 *
 * clt_io.c closes a failing path through sess->fail_path (set by clt.c to
 * rtrs__clt_path_close()), not by a call up.
 *
 * LOCK ORDER (outermost first; take a later one while holding an earlier
 * one, never the other way round):
 *
 *   1. the registry's lock (registry.c): an rtrsctl command runs the public
 *      API under it; rtrs_clt_close() unregisters before it takes any lock
 *      below for good.
 *   2. sess->ctl_lock: one path verb (add/remove/disconnect/reconnect) or
 *      reconnect attempt at a time. Taken without sess->lock held
 *      (verb_begin() drops sess->lock first); held across a whole connect.
 *   3. sess->lock: permits, the path slots, held requests, link events,
 *      reconnect scheduling, admin_down/recon_* of the paths, verbs count.
 *      Never held across a fabric call or a user callback.
 *   4. path->lock: a path's handshake state (connected/cm_err/closed of its
 *      connections, info/auth results), eps_open, down_done, err, local,
 *      close_acked. Never held across a fabric call.
 *   5. con->lock: submission against failure on one connection: con->dead,
 *      con->ep while in use, con->backlog. Held across a post (the
 *      fabric's own locks nest inside it). Never taken with path->lock or
 *      sess->lock held, and neither of those is taken under it.
 *   6. sess->done_lock: poll mode's done_q; a leaf.
 *   Their ranks (util/lock.h, checked in builds without NDEBUG) are
 *   RTRS_RANK_CLT_* below, between the registry's and the timer's.
 *   The timer thread's lock and the fabric's are inside all of these; the
 *   timer and the fabric loops call back with none of them held.
 *   Condition variables: sess->cond (permits, close) and sess->recon_cond
 *   wait on sess->lock; path->cond waits on path->lock.
 *   Atomics without a lock: path->state (only rtrs__clt_set_state()
 *   changes it), req->state (IDLE -> POSTED -> DONE -> IDLE: whoever moves
 *   a request out of POSTED runs its completion, so conf runs once),
 *   req->con, sess->closing, sess->paths[], sess->npaths, the counters.
 */
#ifndef RTRS_CLT_INT_H
#define RTRS_CLT_INT_H

#define RTRS_RANK_CLT_CTL 200
#define RTRS_RANK_CLT_SESS 210
#define RTRS_RANK_CLT_PATH 220
#define RTRS_RANK_CLT_CON 230
#define RTRS_RANK_CLT_DONE 240

#include "core.h"
#include "hb.h"
#include "rx.h"

#define RTRS_DEF_CONNECT_TIMEOUT_MS 5000
#define RTRS_CLOSE_ACK_MS 1000        /* close waits this long for CLOSE_ACK */
#define RTRS_MAX_SEGMENTS RTRS_PROTO_MAX_READ_DESC
#define RTRS_DRAIN_MS 5000            /* remove_path waits this long */
#define RTRS_RX_BUF 64                /* response / heartbeat receive size */
/* a receive buffer has FAB_MSG_ROOM bytes beyond its message (core.h) */

enum { REQ_IDLE = 0, REQ_POSTED = 1, REQ_DONE = 2 };

#define plog(lvl, p, fmt, ...)                                               \
	rtrs_log(lvl, "clt %s path %s: " fmt, (p)->sess->name, (p)->dst,     \
		 ##__VA_ARGS__)

struct clt_path;
struct clt_con;

struct rtrs_permit {
	uint32_t mem_id;
	enum rtrs_con_type con_type;
	int cpu;
	bool taken;
};

struct rtrs_mr {
	struct rtrs_clt_sess *sess;
	void *buf;
	size_t len;
	struct fab_mr *mrs[RTRS_MAX_PATHS]; /* per path index */
};

struct clt_req {
	struct fab_opctx ctx;
	struct rtrs_clt_sess *sess;
	struct rtrs_permit *permit;
	struct clt_con *_Atomic con;    /* where it is posted; NULL: held */
	_Atomic int state;
	enum rtrs_dir dir;
	struct rtrs_req_ops ops;
	struct rtrs_mr *mr;
	struct iovec iov[RTRS_MAX_SEGMENTS + 1]; /* data + header (last) */
	void *desc[RTRS_MAX_SEGMENTS + 1];
	unsigned data_cnt;
	uint32_t data_len;
	uint16_t usr_len;
	uint16_t msg_len;               /* internal message after the header */
	unsigned next_seg;              /* WRITE: first segment not posted */
	uint32_t posted_bytes;
	struct fab_mr *tmp_mrs[RTRS_MAX_SEGMENTS]; /* revoked at completion */
	unsigned ntmp;
	struct rtrs_list bl_node;       /* con->backlog, or sess->held */
	int submit_cpu;
	/* multipath */
	struct iovec data[RTRS_MAX_SEGMENTS]; /* the caller's data buffers */
	uint32_t seq;                   /* of this request; retries keep it */
	uint32_t next_seq;
	bool retry;                     /* re-issued after a path failure */
	uint32_t fence_path;            /* server id of a path it left, or 0 */
	uint64_t hold_until_ns;         /* held for no_path_timeout_ms */
	/* poll mode: completed off the polling thread, conf not run yet */
	struct rtrs_list done_node;     /* sess->done_q, under done_lock */
	int done_status;
};

struct clt_con {
	struct clt_path *path;
	unsigned cid;
	unsigned loop;
	struct fab_ep *ep;
	struct rtrs_lock lock;
	bool dead;                      /* under lock */
	struct rtrs_list backlog;       /* under lock */
	/* handshake, under path->lock */
	bool connected, closed;
	int cm_err;
	struct rtrs_rx_ring rx;          /* core/rx.h */
};

/* = enum rtrs_path_state; transitions in clt_path.c rtrs__clt_set_state() */
enum clt_path_state {
	CLT_PATH_CONNECTING = RTRS_PATH_CONNECTING,
	CLT_PATH_CONNECTED = RTRS_PATH_CONNECTED,
	CLT_PATH_CLOSING = RTRS_PATH_CLOSING,
	CLT_PATH_CLOSED = RTRS_PATH_CLOSED,
	CLT_PATH_RECONNECTING = RTRS_PATH_RECONNECTING,
	CLT_PATH_DEAD = RTRS_PATH_DEAD,
};

struct clt_rbuf {
	uint64_t addr;
	_Atomic uint32_t key;
};

struct clt_path {
	struct rtrs_clt_sess *sess;
	unsigned idx;
	char src[128], dst[128];
	char local[128];                /* under lock: the source address the
					   connection uses, "" while down */
	uint8_t uuid[16];
	struct fab_dom *dom;
	unsigned ncons;
	struct clt_con *cons;
	_Atomic int state;
	struct rtrs_lock lock;
	pthread_cond_t cond;
	unsigned eps_open;              /* under lock: endpoints not closed yet */
	bool down_done;                 /* under lock: no close in progress */
	_Atomic bool reqs_ready;        /* session requests exist (set by the
					   opening thread, read by a loop
					   closing the path meanwhile) */
	int err;
	/* handshake results */
	struct rtrs_conn_rsp rsp;
	bool info_done;
	int info_err;
	char *info_buf;
	size_t info_len;
	struct rtrs_rx info_rx;
	struct fab_mr *info_mr;
	struct fab_mr *info_req_mr;
	struct fab_opctx info_tx;
	/* the info_req (with the proof when authenticating), then the
	 * auth_req (AUTH_REQ_OFF) */
	char info_req[RTRS_INFO_REQ_AUTH_LEN + FAB_MSG_ROOM +
		      RTRS_AUTH_REQ_LEN + FAB_MSG_ROOM];
	/* authentication (docs/protocol.md section 2.7), under lock */
	struct fab_opctx auth_tx;
	uint8_t auth_nc[RTRS_AUTH_NONCE_LEN];
	bool auth_wait;                 /* info_rx's next message: auth_rsp */
	bool auth_got;                  /* it came, in auth_rsp */
	uint8_t auth_rsp[RTRS_AUTH_RSP_LEN];
	size_t auth_rsp_len;
	struct clt_rbuf *rbufs;
	struct fab_mr *iu_mr;
	uint16_t recon_cnt;
	_Atomic uint64_t inflight;
	uint32_t srv_id;                /* the server's id of this path */
	/* control, under sess->lock */
	bool admin_down;                /* disconnected by the user: no auto reconnect */
	_Atomic bool draining;          /* being removed: no new requests */
	int recon_attempts;
	uint64_t recon_due_ns;
	/* heartbeats */
	struct rtrs_timer hb;
	struct rtrs_hb live;            /* liveness and round trips (hb.h) */
	bool close_acked;               /* CLOSE_ACK received; under lock */
	/* statistics */
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes, st_failovers, st_recon_ok, st_recon_fail,
		st_hb_timeouts, st_mig_from, st_mig_to;
	struct rtrs_list grave;         /* sess->graveyard once removed */
};

struct rtrs_clt_sess {
	char name[RTRS_PROTO_NAME_LEN];
	struct rtrs_auth_key *key;      /* NULL: no authentication */
	struct rtrs_clt_attr attr;
	uint8_t paths_uuid[16];
	struct rtrs_lock lock;
	pthread_cond_t cond;            /* permits, close */
	_Atomic bool closing;
	_Atomic unsigned npaths;        /* slots in use: 0..npaths-1 */
	struct clt_path *_Atomic paths[RTRS_MAX_PATHS];
	_Atomic int policy;
	bool opened;                    /* open() returned: link events fire */
	/* link events, under lock (clt_path.c rtrs__clt_link_check()) */
	bool link_down;                 /* DISCONNECTED reported, RECONNECTED not */
	bool ev_running;                /* a thread is delivering */
	uint64_t ev_seq, ev_done;       /* events decided, delivered */
	struct rtrs_list held;          /* requests waiting for a path */
	struct rtrs_timer hold_timer;
	struct rtrs_list graveyard;     /* removed paths, freed at close */
	pthread_t recon_thread;
	pthread_cond_t recon_cond;
	bool recon_started, timers;
	struct rtrs_lock ctl_lock;       /* serializes add/remove/reconnect */
	unsigned verbs;                 /* under lock: callers of the path
					   verbs, close waits for 0 */
	struct rtrs_geom geom;
	bool new_rkey;
	/* Sequence fencing (docs/protocol.md section 7): asked for unless
	 * RTRS_FENCE=0; decided with the geometry by the first path's
	 * server (a kernel RTRS server does not fence: off) and the same on
	 * every path after. Atomic: a path may connect while another
	 * decides. */
	bool fence_want;
	atomic_bool fence;
	/* The first path's server is not librtrs (no path id in its connect
	 * response: the kernel's RTRS): READ takes one segment (its server
	 * drops a READ of more), the extensions are off (protocol.md 6). */
	bool kpeer;
	uint32_t max_segments;
	/* permits */
	struct rtrs_permit *permits;
	uint32_t *free_permits;
	uint32_t nfree;
	unsigned permit_waiters;
	/* requests, one per permit */
	struct clt_req *reqs;
	char *iu;                       /* qd * max_hdr_size header buffers */
	_Atomic uint64_t inflight;
	/* stats */
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes, st_errors, st_mig_from, st_mig_to, st_backlog,
		st_failovers, st_held;
	bool engine;
	/* RTRS_PROGRESS_POLL */
	struct fab_poller *poller;      /* reads the IO connections' CQs */
	struct rtrs_lock done_lock;
	struct rtrs_list done_q;        /* completions for rtrs_clt_poll() */
	_Atomic uint64_t io_pending;    /* IO-permit requests before conf */
	/* closes a path the data path found failing (the call up from
	 * clt_io.c): rtrs__clt_path_close() */
	void (*fail_path)(struct clt_path *p, int err);
};

static inline struct clt_path *sess_path(struct rtrs_clt_sess *s, unsigned i)
{
	return atomic_load(&s->paths[i]);
}

static inline bool path_usable(struct clt_path *p)
{
	return p && atomic_load(&p->state) == CLT_PATH_CONNECTED &&
	       !atomic_load(&p->draining);
}

/* Paths tried by one request, so that a retry picks the next best. */
struct path_set {
	uint64_t bits[(RTRS_MAX_PATHS + 63) / 64];
};

static inline bool pset_has(const struct path_set *t, unsigned i)
{
	return t->bits[i / 64] & (1ull << (i % 64));
}

static inline void pset_add(struct path_set *t, unsigned i)
{
	t->bits[i / 64] |= 1ull << (i % 64);
}

/* A path's address, split and checked (syntax only: host names are
 * resolved when the path's domain is opened). */
struct path_addr {
	char prov[32];          /* "": the default provider */
	char host[128], port[16];
	char src[128];          /* "": none */
};

#define PATH_KEY_LEN 320

/* ---- clt_conn.c: connecting a path ----
 * None of these is called with a client lock held. */

/* "[prov://]host:port", and a source "host", "[v6]", or those with
 * ":port" (the port is not used). -EINVAL when malformed. */
int rtrs__clt_addr_parse(const struct rtrs_path_addr *a, const char *prov,
			 struct path_addr *pa);
/* What makes a path (provider, destination host and port, source host) as
 * text; two paths with the same key are duplicates. */
int rtrs__clt_path_key(const struct rtrs_path_addr *a, const char *prov,
		       char key[PATH_KEY_LEN]);
/* -EEXIST if a path in a slot of @s is the same path as @a, else 0.
 * Called with sess->ctl_lock held (the slots do not change). */
int rtrs__clt_path_dup(struct rtrs_clt_sess *s, const struct rtrs_path_addr *a);
/* Allocate slot @idx and connect it; blocks for the handshake. On failure
 * the slot is left empty. Called with sess->ctl_lock held, or from open()
 * before the session is visible. */
int rtrs__clt_path_open(struct rtrs_clt_sess *s, unsigned idx,
			const struct rtrs_path_addr *a);
/* Attempt a connect of @p, which is in RECONNECTING (-EBUSY if it is not).
 * Blocks. Called with sess->ctl_lock held. */
int rtrs__clt_path_attempt(struct clt_path *p);
/* The session's reconnect thread (pthread start routine, arg: the
 * session); ends once sess->closing is set and recon_cond signalled. */
void *rtrs__clt_recon_main(void *arg);
/* Free a path whose endpoints are all gone (after
 * rtrs__clt_path_shutdown()); NULL is ignored. */
void rtrs__clt_path_free(struct clt_path *p);

/* ---- clt_path.c: a path's life ---- */

/* The one place a path changes state, by a whitelist of transitions.
 * Returns the old state, or -1 when the transition is not allowed from
 * the current one. Lock-free (compare-and-swap); callers that must order
 * it with admin_down or the reconnect schedule hold sess->lock. */
int rtrs__clt_set_state(struct clt_path *p, int to);
/* Wake the waiters on path->cond. Takes path->lock: not called with it. */
void rtrs__clt_path_wake(struct clt_path *p);
/* Report a link change to the user if the paths' states show one. Takes
 * sess->lock, drops it around the callback: called with no client lock. */
void rtrs__clt_link_check(struct rtrs_clt_sess *s);
/* Close every connection of @p; its requests fail over once all its
 * endpoints are closed. Any thread, no client lock held; idempotent. */
void rtrs__clt_path_close(struct clt_path *p, int err);
/* An endpoint of @p is gone (@c), or creating it failed (@c NULL).
 * Called with no client lock held. */
void rtrs__clt_ep_gone(struct clt_path *p, struct clt_con *c);
/* Close and wait until every endpoint of @p is gone and the close is
 * finished. Blocks; not from a fabric loop; no client lock held. */
void rtrs__clt_path_shutdown(struct clt_path *p);
/* The heartbeat tick of a path (the timer thread's callback). */
void rtrs__clt_hb(struct rtrs_timer *t);
/* The endpoint callbacks of every client connection (ctx: its clt_con). */
extern const struct fab_ep_ops rtrs__clt_ep_ops;

/* ---- clt_io.c: the data path ---- */

/* The server's answer @payload (with @buf/@len, the receive, when the
 * server sends new rkeys) on @c: completes its request. -EPROTO when the
 * answer is not one (the caller closes the path). No client lock held. */
int rtrs__clt_handle_rsp(struct clt_con *c, uint32_t payload, const void *buf,
			 size_t len);
/* Post what waits in @c's backlog until the provider is full again; the
 * error of a failed post (the caller closes the path). Takes con->lock. */
int rtrs__clt_con_flush(struct clt_con *c);
/* Re-issue every request still posted on @p, whose endpoints are all
 * closed, on another path (or hold or fail it). No client lock held. */
void rtrs__clt_failover(struct clt_path *p);
/* Re-issue held requests (a path came back), fail the expired ones (only
 * those with @expire_only). Takes sess->lock: not called with it. */
void rtrs__clt_release_held(struct rtrs_clt_sess *s, bool expire_only);
/* The hold timer's callback. */
void rtrs__clt_hold_tick(struct rtrs_timer *t);

/* ---- clt_permit.c ---- */

/* Allocate the @qd permits of @s, all free. -ENOMEM (the caller frees
 * s->permits and s->free_permits). Called with sess->lock held or before
 * the session is shared. */
int rtrs__clt_permits_init(struct rtrs_clt_sess *s, uint32_t qd);
/* @pm is a taken permit of @s. Lock-free. */
bool rtrs__clt_permit_valid(const struct rtrs_clt_sess *s,
			    const struct rtrs_permit *pm);

/* ---- clt_policy.c: path choice ---- */

/* The next path for a request by the session policy, not one in @tried
 * (added to it); NULL when every usable path has been tried. Lock-free. */
struct clt_path *rtrs__clt_pick_path(struct rtrs_clt_sess *s,
				     struct path_set *tried);
/* A path other than @except is CONNECTED. Lock-free. */
bool rtrs__clt_any_connected(struct rtrs_clt_sess *s, struct clt_path *except);
/* A path may come back (not dead, not closed by the user). Lock-free. */
bool rtrs__clt_may_recover(struct rtrs_clt_sess *s);

#endif
