/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * librtrs - reliable multipath RDMA transport in user space.
 *
 * The one public header. All handles are opaque. Every function that can
 * fail returns >= 0 on success and a negative errno on failure; nothing sets
 * errno. Attribute structs start with a `size` field: initialise them with
 * the matching rtrs_*_attr_init() so that a newer library can tell which
 * fields the caller knows.
 *
 * Threading (see rtrs(7)): the library owns its progress threads. Completion
 * callbacks (conf, rdma_ev, link_ev) run on those threads and must not block;
 * they may call rtrs_clt_request(), rtrs_clt_put_permit() and
 * rtrs_srv_resp(). A client session opened with RTRS_PROGRESS_POLL runs the
 * conf callbacks of its IO requests inside rtrs_clt_poll() instead. Unless
 * a function says otherwise it is thread-safe.
 */
#ifndef RTRS_RTRS_H
#define RTRS_RTRS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <rtrs/version.h>          /* RTRS_VERSION_STRING, _MAJOR, ... */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RTRS_API __attribute__((visibility("default")))
#else
#define RTRS_API
#endif

/* Limits that callers may rely on. */
#define RTRS_MAX_PATHS 128         /* paths per session */
#define RTRS_SESSNAME_MAX 254      /* longest session name, bytes */
#define RTRS_MAX_HDR_SIZE 4096     /* user header + internal message */

struct rtrs_clt_sess;              /* a client session */
struct rtrs_permit;                /* one credit for an in-flight request */
struct rtrs_mr;                    /* a registered user buffer */
struct rtrs_srv_ctx;               /* a server listener */
struct rtrs_srv_sess;              /* a server-side session */
struct rtrs_srv_op;                /* one incoming request on the server */

enum rtrs_dir { RTRS_READ = 0, RTRS_WRITE = 1 };

enum rtrs_con_type {
	RTRS_ADMIN_CON = 0,        /* connection 0 of the path */
	RTRS_IO_CON = 1,           /* the IO connection of the submitting CPU */
};

enum rtrs_wait { RTRS_PERMIT_NOWAIT = 0, RTRS_PERMIT_WAIT = 1 };

enum rtrs_clt_link_ev {
	RTRS_CLT_LINK_EV_RECONNECTED = 0,
	RTRS_CLT_LINK_EV_DISCONNECTED = 1,
};

enum rtrs_srv_link_ev {
	RTRS_SRV_LINK_EV_CONNECTED = 0,
	RTRS_SRV_LINK_EV_DISCONNECTED = 1,
};

enum rtrs_mp_policy {
	RTRS_MP_POLICY_RR = 0,
	RTRS_MP_POLICY_MIN_INFLIGHT = 1,
	RTRS_MP_POLICY_MIN_LATENCY = 2,
};

/* Who reads a client session's completions (attr.progress). */
enum rtrs_progress {
	RTRS_PROGRESS_THREAD = 0,  /* the library's threads (default) */
	RTRS_PROGRESS_POLL = 1,    /* the application, in rtrs_clt_poll() */
};

enum rtrs_log_level {
	RTRS_LOG_ERR = 0, RTRS_LOG_WARN = 1, RTRS_LOG_INFO = 2, RTRS_LOG_DEBUG = 3,
};

/* ------------------------------------------------------------------ */
/* Common                                                              */
/* ------------------------------------------------------------------ */

/*
 * rtrs_strerror - text for a negative errno returned by librtrs.
 * Never returns NULL. Thread-safe.
 */
RTRS_API const char *rtrs_strerror(int err);

/*
 * rtrs_set_log_fn - install a log sink (NULL restores stderr).
 * The sink may be called from any thread. The level threshold comes from
 * RTRS_LOG_LEVEL (err, warn, info, debug; default warn) or
 * rtrs_set_log_level().
 */
typedef void (*rtrs_log_fn)(enum rtrs_log_level level, const char *msg,
			    void *priv);
RTRS_API void rtrs_set_log_fn(rtrs_log_fn fn, void *priv);
RTRS_API void rtrs_set_log_level(enum rtrs_log_level level);

/*
 * rtrs_ctl_run_dir - the directory of the control sockets, where a process
 * with open sessions serves "<pid>.sock" (mode 0600) for rtrsctl(8):
 * $RTRS_RUN_DIR, else /run/rtrs for root, else $XDG_RUNTIME_DIR/rtrs.
 * Errors: -EINVAL, -ENOENT (none of them applies), -ENAMETOOLONG.
 */
RTRS_API int rtrs_ctl_run_dir(char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Client                                                              */
/* ------------------------------------------------------------------ */

/* One path: destination "host:port", optional source "host" or "host:port"
 * (the source's port is not used). A host is an IPv4 address (a.b.c.d),
 * an IPv6 address ("[v6]:port" in a destination) or a host name; anything
 * else is -EINVAL. Host names are resolved when the path is opened
 * (rtrs_clt_open(), rtrs_clt_add_path(): a blocking lookup); its reconnects
 * use the address found then. The destination may name its own libfabric
 * provider in front, "verbs://host:port", "tcp://host:port": one session
 * may run path 0 on RDMA and path 1 on tcp. Without one, the session's
 * provider is used. */
struct rtrs_path_addr {
	const char *src;           /* NULL: let the system choose */
	const char *dst;
};

struct rtrs_clt_attr {
	size_t size;               /* sizeof(struct rtrs_clt_attr) */
	const char *provider;      /* NULL: $RTRS_PROVIDER, else "sock" */
	unsigned int io_cons;      /* IO connections per path, 0 = usable CPUs (rtrs(7)) */
	unsigned int connect_timeout_ms; /* per connection step, > 0 (0 is
					    -EINVAL), default 5000 */
	/* a failed path reconnects after this delay, times a random factor
	 * in [0.5, 1.5); default 1000 */
	int reconnect_delay_ms;
	int max_reconnect_attempts;/* -1 forever (default), 0 never */
	unsigned int hb_interval_ms;  /* >= 100, default 1000 */
	unsigned int hb_missed_max;   /* >= 1, default 5: a path that receives
					 nothing for this many intervals fails */
	enum rtrs_mp_policy policy;   /* default RTRS_MP_POLICY_MIN_INFLIGHT */
	/* when no path is connected: 0 (default) fails requests with
	 * -ECONNABORTED at once; > 0 holds them (and new ones) until a path
	 * returns or this time runs out (then -ECONNABORTED) */
	unsigned int no_path_timeout_ms;
	void *priv;                /* passed to link_ev */
	/* DISCONNECTED when no path is connected any more, RECONNECTED when
	 * one is again (whichever: a reconnect, rtrs_clt_reconnect_path(),
	 * rtrs_clt_add_path()). They alternate, DISCONNECTED first, one call
	 * at a time and in order, on a library thread; none before
	 * rtrs_clt_open() returned or once rtrs_clt_close() began (close waits
	 * for a call in progress). Must not block. */
	void (*link_ev)(void *priv, enum rtrs_clt_link_ev ev);
	/* 1: not served on the process's control socket (rtrsctl(8));
	 * default 0. RTRS_CTL=0 in the environment disables it for all. */
	int ctl_disable;
	/* RTRS_PROGRESS_POLL: the completions of the IO connections are read,
	 * and the conf callbacks of requests on IO permits run, only inside
	 * rtrs_clt_poll() on the application's thread: no hand-off between
	 * threads per request. Default RTRS_PROGRESS_THREAD. */
	enum rtrs_progress progress;
};

/* Fill @attr with the defaults. */
RTRS_API void rtrs_clt_attr_init(struct rtrs_clt_attr *attr);

/*
 * rtrs_clt_open - open a session named @sessname over @npaths paths.
 * Blocks until every path is connected (or failed).
 * Errors: -EINVAL (bad name, no paths, a malformed address, see struct
 * rtrs_path_addr; bad attr), -EEXIST (the same path twice: provider,
 * destination and source host), -E2BIG (more than RTRS_MAX_PATHS), -ENOMEM,
 * -ETIMEDOUT, -ECONNREFUSED, -EPERM (the server has the name in use by
 * another session), -EPROTO (the server spoke an incompatible protocol),
 * -EHOSTUNREACH/-ENETUNREACH, -ENODEV (provider "rdma": this host has no
 * RDMA device), -ENODATA (provider not available for that
 * address, or a host name that does not resolve).
 */
RTRS_API int rtrs_clt_open(const char *sessname, const struct rtrs_path_addr *paths,
		  size_t npaths, const struct rtrs_clt_attr *attr,
		  struct rtrs_clt_sess **out);

/*
 * Pre-shared-key authentication (rtrs(7) AUTHENTICATION, docs/protocol.md
 * section 2.7). @key_file holds lines "IDENTITY HEXKEY" (an identity of
 * 1..63 printable characters, a key of 32..128 bytes in hex, '#'
 * comments); it must be a regular file without any access for group or
 * others. A client proves the key of @identity (NULL: the file must hold
 * exactly one) and requires the server to prove the same key; a server
 * accepts every identity of its file and no client without one.
 */
struct rtrs_auth {
	size_t size;               /* sizeof(struct rtrs_auth) */
	const char *key_file;
	const char *identity;      /* client only */
};

/*
 * rtrs_clt_open_auth - rtrs_clt_open() with authentication: @auth NULL is
 * rtrs_clt_open(). Every path authenticates before the server hands out
 * anything of the session. Errors: those of rtrs_clt_open(), the key
 * file's (-ENOENT, -EPERM: group or others have access, -EINVAL: a
 * malformed file, no @identity in it, or several keys and @identity
 * NULL), and -EACCES: the server refused the identity or its proof, asks
 * for no authentication, or could not prove the key itself.
 */
RTRS_API int rtrs_clt_open_auth(const char *sessname,
				const struct rtrs_path_addr *paths,
				size_t npaths, const struct rtrs_clt_attr *attr,
				const struct rtrs_auth *auth,
				struct rtrs_clt_sess **out);

/*
 * rtrs_clt_close - close the session. Waits until every request has
 * completed (their callbacks have run), then frees everything. Permits still
 * held by the caller are released. Path verbs (rtrs_clt_add_path() and
 * the others below) running on other threads, or waiting for one another,
 * are cancelled: a connect in progress stops, and they return -ESHUTDOWN;
 * close waits for them. No call on @sess may begin once close has
 * returned. Must not be called from a callback.
 */
RTRS_API void rtrs_clt_close(struct rtrs_clt_sess *sess);

/*
 * rtrs_clt_get_permit - take one permit. RTRS_PERMIT_NOWAIT returns -EAGAIN
 * at once when none is free; RTRS_PERMIT_WAIT blocks until one is returned
 * (never from a callback). Errors: -EAGAIN, -EINVAL, -ESHUTDOWN (closing).
 */
RTRS_API int rtrs_clt_get_permit(struct rtrs_clt_sess *sess, enum rtrs_con_type type,
			enum rtrs_wait wait, struct rtrs_permit **out);

/* As above, waiting at most @timeout_ms; -ETIMEDOUT when it runs out.
 * @timeout_ms 0 does not wait: -EAGAIN when none is free, as
 * RTRS_PERMIT_NOWAIT. */
RTRS_API int rtrs_clt_get_permit_timed(struct rtrs_clt_sess *sess,
			      enum rtrs_con_type type, unsigned int timeout_ms,
			      struct rtrs_permit **out);

/* Return a permit. It must not have a request in flight. */
RTRS_API void rtrs_clt_put_permit(struct rtrs_clt_sess *sess, struct rtrs_permit *permit);

/* Completion of one request: status 0 or a negative errno. */
struct rtrs_req_ops {
	void *priv;
	void (*conf)(void *priv, int status);
};

/*
 * rtrs_clt_request - submit a READ or WRITE using @permit.
 * @usr/@usr_cnt: user header, copied before return (may live on the stack).
 * @data/@data_cnt: the data buffers; they must stay valid until conf runs.
 *   For WRITE they are sent to the server; for READ the server's data is
 *   placed into them. Up to max_segments entries, max_io_size bytes total.
 * @mr: a registration covering every data buffer, or NULL.
 * If and only if this returns 0, ops->conf is called exactly once.
 * Errors: -EINVAL (bad arguments, @mr does not cover the data), -EBUSY
 * (the permit has a request in flight), -EMSGSIZE (header or data too
 * large), -ENOTCONN (no connected path), -ENOMEM.
 */
RTRS_API int rtrs_clt_request(struct rtrs_clt_sess *sess, enum rtrs_dir dir,
		     const struct rtrs_req_ops *ops, struct rtrs_permit *permit,
		     const struct iovec *usr, size_t usr_cnt,
		     const struct iovec *data, size_t data_cnt,
		     struct rtrs_mr *mr);

/*
 * rtrs_clt_poll - drive a session opened with progress = RTRS_PROGRESS_POLL
 * from the calling thread: read the completions of its IO connections and
 * run the conf callbacks of its requests on IO permits. Completions found
 * elsewhere (a path failed, a held request timed out) wait for this call
 * too; rtrs_clt_close() runs those still pending. When nothing is ready and
 * a request on an IO permit is in flight, waits up to @timeout_ms (0: not
 * at all, -1: no limit) for one (polling for the busy-poll window first,
 * 100 us by default on two usable CPUs or more, $RTRS_POLL_US; only while
 * the machine has a CPU to spare, rtrs(7)). Several threads may poll
 * one session.
 * Requests on admin permits, heartbeats, reconnects and path control stay
 * on the library's threads; IO on the session moves only while someone
 * polls. Do not wait for an IO permit (RTRS_PERMIT_WAIT) on the only
 * polling thread: take them with RTRS_PERMIT_NOWAIT and poll on -EAGAIN.
 * Returns the number of conf callbacks run, or -EINVAL (not a poll-mode
 * session), -EDEADLK (called from one of the session's own callbacks).
 */
RTRS_API int rtrs_clt_poll(struct rtrs_clt_sess *sess, int timeout_ms);

struct rtrs_attrs {
	uint32_t queue_depth;      /* permits in the session */
	uint32_t max_io_size;      /* bytes of data per request */
	uint32_t max_segments;     /* data iovec entries per request */
	uint32_t max_hdr_size;     /* user header + internal message bytes */
};

/* Errors: -ENOTCONN when no path is connected, -EINVAL. */
RTRS_API int rtrs_clt_query(struct rtrs_clt_sess *sess, struct rtrs_attrs *attrs);

/* The session's name, as given to rtrs_clt_open(), with its NUL, into @buf.
 * Errors: -ENOSPC if @len is too small, -EINVAL. Any thread. */
RTRS_API int rtrs_clt_get_sess_name(struct rtrs_clt_sess *sess, char *buf,
				    size_t len);

/*
 * rtrs_mr_reg - register @buf..@buf+@len with every path of @sess so that
 * requests from it are zero-copy. Unregistered buffers work too.
 * Errors: -EINVAL, -ENOMEM, and provider registration errors.
 */
RTRS_API int rtrs_mr_reg(struct rtrs_clt_sess *sess, void *buf, size_t len,
		struct rtrs_mr **out);
/* Deregister. No request using @mr may be in flight. */
RTRS_API int rtrs_mr_dereg(struct rtrs_mr *mr);

enum rtrs_path_state {
	RTRS_PATH_CONNECTING = 0,
	RTRS_PATH_CONNECTED = 1,
	RTRS_PATH_CLOSING = 2,     /* failing: endpoints being closed */
	RTRS_PATH_CLOSED = 3,      /* down; reconnects if allowed */
	RTRS_PATH_RECONNECTING = 4,/* waiting for the next attempt */
	RTRS_PATH_DEAD = 5,        /* removed */
};

/* "connecting", "connected", ... Never NULL. */
RTRS_API const char *rtrs_path_state_str(enum rtrs_path_state st);

struct rtrs_path_info {
	unsigned int idx;
	enum rtrs_path_state state;
	char src[128], dst[128];   /* as given ("" for no source) */
	uint64_t read_cnt, read_bytes;   /* completed on this path */
	uint64_t write_cnt, write_bytes;
	uint64_t inflight;
	uint64_t failovers;        /* requests re-issued onto this path */
	uint64_t reconnects_ok, reconnects_failed;
	uint64_t hb_timeouts;      /* failures declared by missed heartbeats */
	uint64_t cur_latency_ns;   /* smoothed heartbeat round trip, 0 = none */
	uint64_t cpu_migration_from, cpu_migration_to;
};

/*
 * What a path runs on (the kernel's sysfs hca_name and src_addr): the
 * provider ("sock", librtrs's own TCP; libfabric's "tcp", "net",
 * "verbs"; "rdma"), its domain (the interface, "lo", for tcp and net;
 * "sock" for sock; the device, "rxe0", for verbs) and "host:port"
 * the connected path sends from (@src resolved, or the source the system
 * chose; "" when the path is not connected). It may grow at the end: pass
 * sizeof(struct rtrs_path_link); the library fills only that much.
 */
struct rtrs_path_link {
	char provider[32];
	char domain[64];
	char src_resolved[128];
};

/*
 * Paths are numbered by slot, 0 .. rtrs_clt_path_slots() - 1; a removed
 * path leaves its slot empty (-ENOENT). Errors: -EINVAL, -ENOENT.
 */
RTRS_API int rtrs_clt_path_slots(struct rtrs_clt_sess *sess);
RTRS_API int rtrs_clt_path_info(struct rtrs_clt_sess *sess, unsigned int idx,
				struct rtrs_path_info *info);
/* The path in slot @idx: what it runs on (struct rtrs_path_link, @size
 * its size as the caller knows it). Errors: -EINVAL, -ENOENT. */
RTRS_API int rtrs_clt_path_link(struct rtrs_clt_sess *s, unsigned idx,
				struct rtrs_path_link *link, size_t size);
/* Add a path and connect it (blocks). -E2BIG when all slots are used,
 * -EEXIST when the session has that path already (as rtrs_clt_open()),
 * connection errors as rtrs_clt_open(); the slot goes on failure.
 * This and the three verbs below return -ESHUTDOWN when the session is
 * being closed (rtrs_clt_close() cancels and waits for them). */
RTRS_API int rtrs_clt_add_path(struct rtrs_clt_sess *sess,
			       const struct rtrs_path_addr *addr,
			       unsigned int *idx);
/* Drain (no new requests; in-flight ones get up to 5 s to finish, then fail
 * over), close and remove. -EBUSY if it is the only usable path and
 * requests are in flight. */
RTRS_API int rtrs_clt_remove_path(struct rtrs_clt_sess *sess, unsigned int idx);
/* Close the path (its requests fail over) and keep it down until
 * rtrs_clt_reconnect_path(). Blocks until it is closed. */
RTRS_API int rtrs_clt_disconnect_path(struct rtrs_clt_sess *sess,
				      unsigned int idx);
/* Close if connected, then connect now (blocks). 0 when connected again,
 * else the connection error; the path keeps reconnecting as configured. */
RTRS_API int rtrs_clt_reconnect_path(struct rtrs_clt_sess *sess,
				     unsigned int idx);
RTRS_API int rtrs_clt_set_policy(struct rtrs_clt_sess *sess,
				 enum rtrs_mp_policy policy);
RTRS_API int rtrs_clt_get_policy(struct rtrs_clt_sess *sess);
/* The attr's max_reconnect_attempts at run time: -1 forever, 0 never, N
 * attempts per failure. Paths reconnecting now follow the new value: one
 * that has had N attempts (the count restarts when it connects) gives up
 * and stays closed, as after its last failed attempt, until
 * rtrs_clt_reconnect_path(). -EINVAL for @n < -1. The getter returns the
 * value, or -EINVAL for a NULL @sess. */
RTRS_API int rtrs_clt_set_max_reconnect_attempts(struct rtrs_clt_sess *sess,
						 int n);
RTRS_API int rtrs_clt_get_max_reconnect_attempts(struct rtrs_clt_sess *sess);
/* Zero the session's and every path's counters (not inflight). */
RTRS_API int rtrs_clt_reset_stats(struct rtrs_clt_sess *sess);

struct rtrs_clt_stats {
	uint64_t read_cnt, read_bytes;
	uint64_t write_cnt, write_bytes;
	uint64_t errors;           /* requests completed with status != 0 */
	uint64_t inflight;
	uint64_t cpu_migration_from; /* completions handled off the submitting CPU's connection CPU */
	uint64_t cpu_migration_to;
	uint64_t tx_backlog;       /* posts deferred because the provider queue was full */
	uint64_t failovers;        /* re-issues of requests whose path failed
				      (on another path, or held until one came back) */
	uint64_t held;             /* requests held while no path was up */
	uint32_t paths, paths_connected;
};

RTRS_API int rtrs_clt_get_stats(struct rtrs_clt_sess *sess, struct rtrs_clt_stats *st);

/* ------------------------------------------------------------------ */
/* Server                                                              */
/* ------------------------------------------------------------------ */

struct rtrs_srv_ops {
	/*
	 * rdma_ev - one incoming request. @data points into the session's
	 * chunk: for WRITE it holds the client's @datalen bytes; for READ the
	 * callee fills @data[0..datalen). @usr/@usrlen is the user header.
	 * Return 0 and call rtrs_srv_resp() later (or now, from any thread),
	 * or return a negative errno to answer at once with that status (a
	 * positive value answers -EIO). Runs on a progress thread: must not
	 * block.
	 */
	int (*rdma_ev)(void *sess_priv, struct rtrs_srv_op *op, void *data,
		       size_t datalen, const void *usr, size_t usrlen);
	/*
	 * link_ev - CONNECTED when the first path of a session is up (a non-zero
	 * return refuses the session), DISCONNECTED when its last path is
	 * gone. @priv is the listener's priv for CONNECTED, the session's
	 * private pointer for DISCONNECTED.
	 */
	int (*link_ev)(struct rtrs_srv_sess *sess, enum rtrs_srv_link_ev ev,
		       void *priv);
};

struct rtrs_srv_attr {
	size_t size;               /* sizeof(struct rtrs_srv_attr) */
	const char *provider;      /* NULL: $RTRS_PROVIDER, else "sock" */
	uint32_t queue_depth;      /* chunks per session, default 512 */
	uint32_t chunk_size;       /* bytes, power of 2, default 128 KiB */
	int always_invalidate;     /* default 1 */
	struct rtrs_srv_ops ops;
	void *priv;                /* listener priv, passed to link_ev CONNECTED */
	/* Heartbeats on connection 0 of every path: a path that receives
	 * nothing for hb_missed_max intervals is closed (its chunks and ops are
	 * released). Interval >= 100 ms; defaults 1000 ms and 5. */
	unsigned int hb_interval_ms;
	unsigned int hb_missed_max;
	/* A session whose last path is gone keeps its chunks and fence state
	 * this long, so that a client coming back within it never has a
	 * request executed twice; link_ev DISCONNECTED fires when it ends.
	 * 0 frees at once. Default 10000. */
	unsigned int linger_ms;
	int ctl_disable;           /* as in struct rtrs_clt_attr */
};

RTRS_API void rtrs_srv_attr_init(struct rtrs_srv_attr *attr);

/*
 * rtrs_srv_open - listen on every "host:port" in @addrs (port 0 picks one;
 * see rtrs_srv_get_listen_addr()). Binds only to the given addresses. An
 * address may name its provider in front ("verbs://host:port"), else
 * attr->provider is used.
 * Errors: -EINVAL (bad attr: queue depth and chunk size must fit the 28-bit
 * immediate; an address that is not "host:port" with an IPv4 or IPv6
 * address or a host name), -EADDRINUSE, -EADDRNOTAVAIL (not an address of
 * this host), -ENODATA (the provider cannot listen there, or a host name
 * that does not resolve), -ENODEV (provider "rdma": this host has no RDMA
 * device), -ENOMEM.
 */
RTRS_API int rtrs_srv_open(const char *const *addrs, size_t naddrs,
		  const struct rtrs_srv_attr *attr, struct rtrs_srv_ctx **out);

/*
 * rtrs_srv_open_auth - rtrs_srv_open() whose listeners accept only
 * clients that prove a key of @auth->key_file (see struct rtrs_auth);
 * @auth NULL is rtrs_srv_open(). Errors: those of rtrs_srv_open() and the
 * key file's (-ENOENT, -EPERM, -EINVAL).
 */
RTRS_API int rtrs_srv_open_auth(const char *const *addrs, size_t naddrs,
				const struct rtrs_srv_attr *attr,
				const struct rtrs_auth *auth,
				struct rtrs_srv_ctx **out);

/*
 * rtrs_srv_sess_identity - the identity session @sess authenticated with,
 * NUL-terminated in @buf. Every path of the session has proved it. Errors:
 * -EINVAL (NULL), -ENOENT (a listener without keys: no identity), -ENOSPC
 * (@len too small). Callable from the callbacks.
 */
RTRS_API int rtrs_srv_sess_identity(struct rtrs_srv_sess *sess, char *buf,
				    size_t len);

/*
 * Limits of a listener against peers that connect and do not finish, or
 * connect too much (rtrs_srv_open(3) "LIMITS"). struct rtrs_srv_attr keeps
 * 0.3.0's layout, so they are set on the open listener; until then, and
 * for every field left at its rtrs_srv_limits_init() value, the defaults
 * hold. A connection over a cap is rejected with the error in brackets,
 * which the client's open or add_path returns, and counted in
 * rtrs_srv_get_limit_stats(). 0 in a cap means no cap.
 */
struct rtrs_srv_limits {
	size_t size;               /* sizeof(struct rtrs_srv_limits) */
	/* a path that has not finished its info exchange this long after
	 * its first connection arrived is closed; >= 100, default 10000 */
	unsigned int handshake_ms;
	unsigned int max_sessions; /* session objects, default 1024 [-EUSERS] */
	unsigned int max_paths;    /* per session, default 32 [-EMLINK] */
	unsigned int max_conns;    /* connections, default 8192 [-ENOBUFS] */
	/* paths before their info exchange, default 128 [-EAGAIN] */
	unsigned int max_pending;
};

RTRS_API void rtrs_srv_limits_init(struct rtrs_srv_limits *lim);

/* Set @lim on @ctx for connections that arrive from now on. -EINVAL (NULL,
 * size too small, handshake_ms < 100). */
RTRS_API int rtrs_srv_set_limits(struct rtrs_srv_ctx *ctx,
				 const struct rtrs_srv_limits *lim);

/* What the limits did; the counters are cumulative (zeroed by
 * rtrs_srv_reset_stats()), pending and conns are gauges. */
struct rtrs_srv_limit_stats {
	size_t size;               /* the caller's sizeof(struct ...) */
	uint64_t handshake_timeouts; /* paths closed at the deadline */
	uint64_t refused_sessions; /* -EUSERS */
	uint64_t refused_paths;    /* -EMLINK */
	uint64_t refused_conns;    /* -ENOBUFS */
	uint64_t refused_pending;  /* -EAGAIN */
	/* connections the listener closed unanswered at the process's
	 * open-file limit (EMFILE/ENFILE), see rtrs_srv_open(3) */
	uint64_t accept_shed;
	uint64_t pending;          /* paths before their info exchange now */
	uint64_t conns;            /* connections now */
};

/* Fill @st up to st->size. -EINVAL (NULL, size 0). */
RTRS_API int rtrs_srv_get_limit_stats(struct rtrs_srv_ctx *ctx,
				      struct rtrs_srv_limit_stats *st);

/* The bound address of listener @idx as "host:port". -ENOENT, -ENOSPC. */
RTRS_API int rtrs_srv_get_listen_addr(struct rtrs_srv_ctx *ctx, size_t idx, char *buf,
			     size_t len);

/*
 * rtrs_srv_close - stop listening, close every session and wait until every
 * op handed to rdma_ev has been answered with rtrs_srv_resp().
 */
RTRS_API void rtrs_srv_close(struct rtrs_srv_ctx *ctx);

/*
 * rtrs_srv_close_sess - close every path of the session named @name, as
 * a link failure would (kernel: rtrs-srv sysfs "disconnect"): its
 * requests in flight are answered by the application as usual, the
 * client sees its paths go down and reconnects if its settings let it.
 * Errors: -EINVAL (NULL), -ENOENT (no session of that name).
 */
RTRS_API int rtrs_srv_close_sess(struct rtrs_srv_ctx *ctx, const char *name);

/*
 * rtrs_srv_resp - answer @op with @status: 0 or a negative errno above
 * -512, which the client's conf gets unchanged; any other value, a
 * positive one included, is sent as -EIO. May be called from any thread,
 * once per op. Returns 0, or -ENOTCONN when the path is gone (the op is
 * still finished), -EINVAL (@op NULL or not waiting for its answer).
 */
RTRS_API int rtrs_srv_resp(struct rtrs_srv_op *op, int status);

struct rtrs_srv_mr;

/*
 * rtrs_srv_mr_reg - register @buf..@buf+@len, memory the application keeps
 * (a mapped file, a cache), with every listener of @ctx as a source of READ
 * answers for rtrs_srv_resp_buf(). Keep it registered until after
 * rtrs_srv_close(): a READ retried after a failover is answered again from
 * the same place.
 * Errors: -EINVAL, -ENOMEM, and provider registration errors.
 */
RTRS_API int rtrs_srv_mr_reg(struct rtrs_srv_ctx *ctx, const void *buf,
			     size_t len, struct rtrs_srv_mr **out);
/* Deregister; after rtrs_srv_close() of its @ctx. -EINVAL on NULL. */
RTRS_API int rtrs_srv_mr_dereg(struct rtrs_srv_mr *mr);
/*
 * rtrs_srv_mr_pins - 1 if a registration of @ctx holds the pages it found
 * (verbs: RDMA NICs send from pinned pages): memory whose pages are
 * replaced under it - a file's range punched out, truncated and grown
 * again - is then sent from the old pages, not what the memory shows now.
 * 0 if every listener's provider reads the memory at send time (tcp, net).
 * -EINVAL on NULL.
 */
RTRS_API int rtrs_srv_mr_pins(struct rtrs_srv_ctx *ctx);

/*
 * rtrs_srv_resp_buf - answer the READ @op with success, its data taken from
 * @buf (the op's full length, the datalen given to rdma_ev, inside @mr)
 * instead of from the op's chunk: the provider sends straight from @buf, no
 * copy into the chunk. The bytes the client gets are those at @buf while
 * they are sent. May be called from any thread, once per op, instead of
 * rtrs_srv_resp(). Needs always_invalidate = 0: the answer then rides on
 * the data, and if sending from @buf fails (it was unmapped), the path
 * fails instead of answering; the client retries the READ elsewhere.
 * On a provider whose RMA the hardware checks (verbs) each path has a
 * protection domain of its own (keys scoped to the path), where @mr is not
 * registered yet: there the data is copied into the chunk and sent from
 * it (correct, not zero-copy; docs/security.md, item 2).
 * Errors: -EINVAL (@op not a READ or already answered, @buf not wholly in
 * @mr), -EOPNOTSUPP (always_invalidate): then @op is not answered;
 * -ENOTCONN as rtrs_srv_resp().
 */
RTRS_API int rtrs_srv_resp_buf(struct rtrs_srv_op *op, struct rtrs_srv_mr *mr,
			       const void *buf);

/* Direction of @op: RTRS_READ (fill the data) or RTRS_WRITE; -EINVAL (as
 * an int: compare (int)rtrs_srv_op_dir(op)) for a NULL @op. */
RTRS_API enum rtrs_dir rtrs_srv_op_dir(const struct rtrs_srv_op *op);

/* The session an op belongs to; NULL for a NULL @op. */
RTRS_API struct rtrs_srv_sess *rtrs_srv_op_sess(const struct rtrs_srv_op *op);

RTRS_API void rtrs_srv_set_sess_priv(struct rtrs_srv_sess *sess, void *priv);
RTRS_API void *rtrs_srv_get_sess_priv(struct rtrs_srv_sess *sess);

/* The client-chosen session name. -ENOSPC if @len is too small. */
RTRS_API int rtrs_srv_get_sess_name(struct rtrs_srv_sess *sess, char *buf, size_t len);

RTRS_API int rtrs_srv_get_queue_depth(struct rtrs_srv_sess *sess);

struct rtrs_srv_stats {
	uint64_t read_cnt, read_bytes;
	uint64_t write_cnt, write_bytes;
	uint64_t sessions;         /* a gauge: sessions open now whose info
				      exchange was accepted on a path (no
				      refused ones); 0 once all have gone */
	uint64_t paths_closed_bad_input; /* paths dropped for malformed input */
	/* fencing, see rtrs(7) "Never twice" */
	uint64_t executed;         /* requests handed to rdma_ev */
	uint64_t dup_answered;     /* retries answered with the stored status */
	uint64_t dup_attached;     /* retries attached to a request in service */
	uint64_t stale_dropped;    /* late or old requests never executed */
	uint64_t paths_fenced;     /* paths closed because the client left them */
	uint64_t hb_timeouts;      /* paths closed for missed heartbeats */
};

RTRS_API int rtrs_srv_get_stats(struct rtrs_srv_ctx *ctx, struct rtrs_srv_stats *st);

/* Zero the listener's cumulative counters (rtrs_srv_get_stats(): all but
 * sessions) and those of each of its sessions and their paths
 * (rtrs_srv_sess_get_stats()); the gauges stay. -EINVAL on NULL. */
RTRS_API int rtrs_srv_reset_stats(struct rtrs_srv_ctx *ctx);

/* One session's counters (per path: rtrsctl(8) stats). @sess is valid from
 * link_ev CONNECTED until link_ev DISCONNECTED. */
struct rtrs_srv_sess_stats {
	uint64_t read_cnt, read_bytes;   /* answered with status 0 */
	uint64_t write_cnt, write_bytes;
	uint32_t paths;            /* path objects, any state */
	uint32_t paths_connected;
};

RTRS_API int rtrs_srv_sess_get_stats(struct rtrs_srv_sess *sess,
				     struct rtrs_srv_sess_stats *st);

/*
 * A session of a listener and its paths, as rtrs_srv_sess_info() copies
 * them (what rtrsctl(8) stats shows of a server).
 */
struct rtrs_srv_sess_info {
	char name[RTRS_SESSNAME_MAX + 1];
	uint32_t queue_depth;
	uint32_t first_path;       /* its paths: path[first_path] .. */
	uint32_t npaths;           /* .. path[first_path + npaths - 1]; path
				      objects in any state, 0: lingering */
	uint64_t read_cnt, read_bytes;   /* answered with status 0 */
	uint64_t write_cnt, write_bytes;
};

struct rtrs_srv_path_info {
	/* the client's number of the path (its slot) if it sent one, else
	 * the server's id of it: what rtrs_srv_close_path() takes */
	uint32_t id;
	enum rtrs_path_state state; /* CONNECTING (before its info exchange),
				       CONNECTED or CLOSING */
	char src[128];             /* the client's "host:port", "?" before known */
	uint64_t read_cnt, read_bytes;   /* answered on this path */
	uint64_t write_cnt, write_bytes;
};

/*
 * rtrs_srv_sess_info - copy the named sessions of @ctx (only those called
 * @name, unless @name is NULL), lingering ones included, and their paths:
 * up to *@nsess sessions into @sess and up to *@npath paths into @path,
 * taken together at one instant. On return *@nsess and *@npath hold how
 * many there are. Errors: -EINVAL (@ctx, @nsess or @npath NULL, an array
 * NULL with a non-zero count), -ENOSPC (an array was too small: call again
 * with at least the counts returned). Does not block on the network.
 */
RTRS_API int rtrs_srv_sess_info(struct rtrs_srv_ctx *ctx, const char *name,
				struct rtrs_srv_sess_info *sess, size_t *nsess,
				struct rtrs_srv_path_info *path, size_t *npath);

/*
 * rtrs_srv_close_path - close the paths numbered @id (struct
 * rtrs_srv_path_info) of the session named @name, as a link failure would
 * (kernel: rtrs-srv sysfs "disconnect" of one path): the client sees the
 * path go down and reconnects it if its settings let it. Returns without
 * waiting for the path to be freed. Errors: -EINVAL (NULL), -ENOENT (no
 * such session, or no path of it with that number).
 */
RTRS_API int rtrs_srv_close_path(struct rtrs_srv_ctx *ctx, const char *name,
				 uint32_t id);

/* ------------------------------------------------------------------ */
/* Formatting the counters                                             */
/* ------------------------------------------------------------------ */

/*
 * How rtrs_clt_stats_fmt(), rtrs_path_info_fmt() and rtrs_srv_stats_fmt()
 * write (rtrs_clt_stats_fmt(3) shows each form):
 *  RTRS_FMT_TEXT  "name: value" lines, each ending in '\n', under the
 *                 kernel's sysfs names (rtrsctl(8) stats);
 *  RTRS_FMT_JSON  one JSON object, no newline (rtrsctl --json);
 *  RTRS_FMT_LINE  one line, no newline: "name value" pairs two spaces
 *                 apart; for a path, one row of a table (rtrsctl list);
 *  RTRS_FMT_HEAD  with RTRS_FMT_LINE, rtrs_path_info_fmt() only: the
 *                 table's column titles (the struct may be NULL);
 *  RTRS_FMT_OPEN  with RTRS_FMT_JSON: without the closing '}', for a
 *                 caller that appends members of its own.
 */
#define RTRS_FMT_TEXT 0x0u
#define RTRS_FMT_JSON 0x1u
#define RTRS_FMT_LINE 0x2u
#define RTRS_FMT_HEAD 0x4u
#define RTRS_FMT_OPEN 0x8u
/* A buffer this large holds any of the forms whole. */
#define RTRS_FMT_BUF 4096

/*
 * Write the counters of @st (@in) into @buf, at most @len bytes with the
 * terminating NUL, as snprintf(3) does: the return value is the length
 * the whole output needs without its NUL; if it is @len or more, @buf
 * holds a truncated, NUL-terminated prefix (@buf may be NULL when @len is
 * 0). Errors: -EINVAL (@st or @in NULL, @buf NULL with @len > 0, an
 * unknown flag or a combination other than those above). Pure: any
 * thread, no lock, no allocation.
 */
RTRS_API int rtrs_clt_stats_fmt(const struct rtrs_clt_stats *st, char *buf,
				size_t len, unsigned int flags);
RTRS_API int rtrs_path_info_fmt(const struct rtrs_path_info *in, char *buf,
				size_t len, unsigned int flags);
RTRS_API int rtrs_srv_stats_fmt(const struct rtrs_srv_stats *st, char *buf,
				size_t len, unsigned int flags);

#ifdef __cplusplus
}
#endif
#endif /* RTRS_RTRS_H */
