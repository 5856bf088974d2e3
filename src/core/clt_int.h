/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The client role's private header: its structs and its lock order. The
 * server never includes it.
 *
 * LOCK ORDER (outermost first; take a later one while holding an earlier
 * one, never the other way round):
 *
 *   1. ctl.c's registry lock (C.reg): an rtrsctl command runs the public
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
 *   The timer thread's lock and the fabric's are inside all of these; the
 *   timer and the fabric loops call back with none of them held.
 *   Condition variables: sess->cond (permits, close) and sess->recon_cond
 *   wait on sess->lock; path->cond waits on path->lock.
 *   Atomics without a lock: path->state (only path_set_state()
 *   changes it), req->state (IDLE -> POSTED -> DONE -> IDLE: whoever moves
 *   a request out of POSTED runs its completion, so conf runs once),
 *   req->con, sess->closing, sess->paths[], sess->npaths, the counters.
 */
#ifndef RTRS_CLT_INT_H
#define RTRS_CLT_INT_H

#include "core.h"

#define RTRS_DEF_CONNECT_TIMEOUT_MS 5000
#define RTRS_CLOSE_ACK_MS 1000        /* close waits this long for CLOSE_ACK */
#define RTRS_MAX_SEGMENTS RTRS_PROTO_MAX_READ_DESC
#define RTRS_RX_BUF 64                /* response / heartbeat receive size */
/* a receive buffer has FAB_MSG_ROOM bytes beyond its message (core.h) */
#define RTRS_RX_STRIDE (RTRS_RX_BUF + FAB_MSG_ROOM)

enum { REQ_IDLE = 0, REQ_POSTED = 1, REQ_DONE = 2 };

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

struct clt_rx {
	struct fab_opctx ctx;
	struct clt_con *con;
	void *buf;
	size_t len;
};

struct clt_con {
	struct clt_path *path;
	unsigned cid;
	unsigned loop;
	struct fab_ep *ep;
	pthread_mutex_t lock;
	bool dead;                      /* under lock */
	struct rtrs_list backlog;       /* under lock */
	/* handshake, under path->lock */
	bool connected, closed;
	int cm_err;
	struct clt_rx *rx;
	unsigned nrx;
	char *rxmem;
	struct fab_mr *rx_mr;
};

/* = enum rtrs_path_state; transitions in clt.c path_set_state() */
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
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned eps_open;              /* under lock: endpoints not closed yet */
	bool down_done;                 /* under lock: no close in progress */
	bool reqs_ready;                /* session requests exist */
	int err;
	/* handshake results */
	struct rtrs_conn_rsp rsp;
	bool info_done;
	int info_err;
	char *info_buf;
	size_t info_len;
	struct clt_rx info_rx;
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
	_Atomic bool rx_seen;
	unsigned hb_missed;             /* timer thread */
	_Atomic uint64_t hb_sent_ns;
	_Atomic bool hb_outstanding;
	bool close_acked;               /* CLOSE_ACK received; under lock */
	_Atomic uint64_t hb_lat_ns;     /* smoothed round trip, 0 = none yet */
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
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* permits, close */
	_Atomic bool closing;
	_Atomic unsigned npaths;        /* slots in use: 0..npaths-1 */
	struct clt_path *_Atomic paths[RTRS_MAX_PATHS];
	_Atomic int policy;
	bool opened;                    /* open() returned: link events fire */
	/* link events, under lock (clt.c link_check()) */
	bool link_down;                 /* DISCONNECTED reported, RECONNECTED not */
	bool ev_running;                /* a thread is delivering */
	uint64_t ev_seq, ev_done;       /* events decided, delivered */
	struct rtrs_list held;          /* requests waiting for a path */
	struct rtrs_timer hold_timer;
	struct rtrs_list graveyard;     /* removed paths, freed at close */
	pthread_t recon_thread;
	pthread_cond_t recon_cond;
	bool recon_started, timers;
	pthread_mutex_t ctl_lock;       /* serializes add/remove/reconnect */
	unsigned verbs;                 /* under lock: callers of the path
					   verbs, close waits for 0 */
	struct rtrs_geom geom;
	bool new_rkey;
	bool fence;                     /* sequence fencing (RTRS_FENCE != 0) */
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
	pthread_mutex_t done_lock;
	struct rtrs_list done_q;        /* completions for rtrs_clt_poll() */
	_Atomic uint64_t io_pending;    /* IO-permit requests before conf */
};

#endif
