/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Core: sessions, paths, connections, permits, requests. Never includes
 * libfabric; talks to the fabric layer through src/fabric/fabric.h.
 *
 * Locking (client):
 *  - sess->lock: permits, path list, open/close state. Never held while
 *    calling into the fabric or a user callback.
 *  - con->lock: submission vs failure on one connection; protects
 *    con->dead and con->backlog. Held across a post.
 *  - req->state (atomic): IDLE -> POSTED -> IDLE; whoever moves a request
 *    out of POSTED runs its completion, so conf runs exactly once.
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

#include "fabric/fabric.h"
#include "proto/wire.h"
#include "rtrs/rtrs.h"
#include "util/log.h"
#include "util/util.h"

#define RTRS_DEF_CONNECT_TIMEOUT_MS 5000
#define RTRS_DEF_QD 512
#define RTRS_DEF_CHUNK (128u << 10)
#define RTRS_MAX_SEGMENTS RTRS_PROTO_MAX_READ_DESC
#define RTRS_RX_BUF 64                /* response / heartbeat receive size */
#define RTRS_SRV_RX_BUF 512           /* server admin receive size */

enum { REQ_IDLE = 0, REQ_POSTED = 1, REQ_DONE = 2 };

/* kinds stored in fab_opctx.kind */
enum { CTX_RX = 1, CTX_REQ = 2, CTX_INFO = 3, CTX_OP = 4, CTX_MISC = 5 };

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
	struct clt_con *con;            /* where it is posted */
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
	struct rtrs_list bl_node;       /* con->backlog */
	int submit_cpu;
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

enum clt_path_state {
	CLT_PATH_CONNECTING,
	CLT_PATH_CONNECTED,
	CLT_PATH_CLOSING,
	CLT_PATH_CLOSED,
};

struct clt_rbuf {
	uint64_t addr;
	_Atomic uint32_t key;
};

struct clt_path {
	struct rtrs_clt_sess *sess;
	unsigned idx;
	char src[128], dst[128];
	uint8_t uuid[16];
	struct fab_dom *dom;
	unsigned ncons;
	struct clt_con *cons;
	_Atomic int state;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned eps_open;              /* under lock */
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
	char info_req[RTRS_INFO_REQ_LEN];
	struct clt_rbuf *rbufs;
	struct fab_mr *iu_mr;
	uint16_t recon_cnt;
	_Atomic uint64_t inflight;
};

struct rtrs_clt_sess {
	char name[RTRS_PROTO_NAME_LEN];
	struct rtrs_clt_attr attr;
	uint8_t paths_uuid[16];
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* permits, close */
	_Atomic bool closing;
	unsigned npaths;
	struct clt_path *paths[RTRS_MAX_PATHS];
	struct rtrs_geom geom;
	bool new_rkey;
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
		st_write_bytes, st_errors, st_mig_from, st_mig_to, st_backlog;
	bool engine;
};

/* server */

enum srv_path_state { SRV_PATH_CONNECTING, SRV_PATH_CONNECTED, SRV_PATH_CLOSING };
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
	uint16_t sg_cnt;
	struct rtrs_sg_desc desc[RTRS_PROTO_MAX_READ_DESC];
	char rkey_rsp[RTRS_RKEY_RSP_LEN];
	struct rtrs_list bl_node;
};

struct srv_rx {
	struct fab_opctx ctx;
	struct srv_con *con;
	void *buf;
};

struct srv_con {
	struct srv_path *path;
	unsigned cid;
	struct fab_ep *ep;
	pthread_mutex_t lock;
	bool dead;
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
	struct fab_dom *dom;            /* the listener's */
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
};

struct rtrs_srv_sess {
	struct rtrs_list node;          /* ctx->sessions */
	struct rtrs_srv_ctx *ctx;
	uint8_t uuid[16];
	char name[RTRS_PROTO_NAME_LEN];
	bool named;
	void *priv;
	struct rtrs_geom geom;
	char *chunks;
	size_t chunks_len;
	struct rtrs_srv_op *ops;
	struct rtrs_list paths;
	unsigned npaths;                /* under ctx->lock */
	unsigned npaths_up;
	bool link_up;
};

struct rtrs_srv_ctx {
	struct rtrs_srv_attr attr;
	struct rtrs_geom geom;
	size_t npeps;
	struct srv_listener *ls;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rtrs_list sessions;
	unsigned nsess;
	unsigned npaths;                /* path objects not yet freed */
	bool closing;
	_Atomic uint64_t st_read_cnt, st_read_bytes, st_write_cnt,
		st_write_bytes, st_bad_input;
};

/* common.c */
int rtrs__cond_init_mono(pthread_cond_t *c);

#endif
