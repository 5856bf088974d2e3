/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Core: sessions, paths, connections, permits, requests. Never includes
 * libfabric; talks to the fabric layer through src/fabric/fabric.h.
 * The client's structs and lock order are in clt_int.h.
 *
 * Locking (server):
 *  - ctx->lock: session and path lists and their lifetimes.
 *  - con->lock: responses vs close on one connection.
 *  - op->state (atomic): FREE -> BUSY (in rdma_ev / user) -> FREE.
 */
#ifndef RTRS_CORE_H
#define RTRS_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "auth.h"
#include "fabric/fabric.h"
#include "proto/wire.h"
#include "rtrs/rtrs.h"
#include "timer.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/util.h"

#define RTRS_DEF_QD 512
#define RTRS_DEF_CHUNK (128u << 10)
#define RTRS_SRV_RX_BUF 512           /* server admin receive size */
/* Every buffer we send or receive a message in has FAB_MSG_ROOM bytes
 * beyond its message for the fabric (caps.msg_room): */
#define RTRS_SRV_RX_STRIDE (RTRS_SRV_RX_BUF + FAB_MSG_ROOM)

/* kinds stored in fab_opctx.kind */
enum { CTX_RX = 1, CTX_REQ = 2, CTX_INFO = 3, CTX_OP = 4, CTX_MISC = 5 };

/* server */

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
	pthread_mutex_t lock;
	uint32_t last_seq;              /* 0: none yet */
	int last_status;                /* of last_seq, once answered */
};

struct srv_rx {
	struct fab_opctx ctx;
	struct srv_con *con;
	void *buf;
};

struct srv_con {
	struct srv_path *path;
	unsigned cid;
	struct fab_ep *ep;              /* set and closed under lock */
	pthread_mutex_t lock;
	bool dead;
	bool ep_closed;                 /* under lock: ep closed, by one */
	struct rtrs_list backlog;       /* ops waiting for tx room */
	struct srv_rx *rx;
	unsigned nrx;
	char *rxmem;
	struct fab_mr *rx_mr;
	bool accepted;
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
	_Atomic bool rx_seen;           /* any completion since the last tick */
	unsigned hb_missed;             /* timer thread only */
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
	pthread_mutex_t lock;
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

/* ctl.c: the control socket (rtrsctl) */
enum rtrs_ctl_kind { RTRS_CTL_CLT = 1, RTRS_CTL_SRV = 2 };
void rtrs__ctl_register(enum rtrs_ctl_kind kind, void *obj);
void rtrs__ctl_unregister(void *obj);
void rtrs__ctl_json_str(FILE *f, const char *s);
/* srv.c, called with the control registry locked: print the listener's
 * sessions (only @name if set), return how many were printed */
int rtrs__srv_ctl_dump(struct rtrs_srv_ctx *ctx, FILE *f, bool json,
		       const char *name);
/* close path @id of session @name (its number as the ctl dump shows it:
 * the client's, else the server's id); -ENOENT if there is none */
int rtrs__srv_ctl_close_path(struct rtrs_srv_ctx *ctx, const char *name,
			     uint32_t id);

/* common.c */
int rtrs__cond_init_mono(pthread_cond_t *c);
/* 0 if @host is an IPv4 address (a.b.c.d), an IPv6 address (optionally
 * with %scope) or a host name by its syntax (labels of letters, digits,
 * '-' and '_'); else -EINVAL. Resolving a name is the provider's. */
int rtrs__host_check(const char *host);

#endif
