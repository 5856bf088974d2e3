/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The rnbd server's private structs and the contract of each cross-file
 * function (srv.c, srv_io.c, export.c, srv_ctl.c). Never included outside
 * src/rnbd/srv*.c, export.c and their unit tests.
 *
 * Calls go one way (arrows down): srv_ctl.c -> srv.c -> srv_io.c ->
 * export.c, and srv_ctl.c, srv.c -> export.c; srv.c -> util/workq.c. srv.c
 * never names srv_ctl.c (the embedding program starts the control socket);
 * srv_io.c reaches its caller only through a job's rtrs_srv_resp().
 *
 * LOCK ORDER (ranked locks, util/lock.h; their place among librtrs's is
 * the one table of docs/design.md §5). Take them in this order, never
 * the other way:
 *   1. srv->lock (280)       the sessions list, srv->x (the export list,
 *                            every export's writers), x->ctx
 *   2. ss->lock (290)        a session's devices
 *   3. srv->ring.lock (910)  jobs handed to the io_uring thread (a leaf:
 *                            the ring thread prepares them after it)
 *   workq's own lock (900)   a leaf (util/workq.c)
 * Calls into librtrs with one of ours held: rtrs_srv_mr_reg() under 1
 * (rnbd__export_map()), rtrs_srv_sess_get_stats() under 1 (the control
 * socket's list): so 1 and 2 rank before the server's locks of librtrs
 * (op->lock 300, con->lock 310, ctx->lock 320) and the fabric's.
 * rtrs_srv_resp() and rtrs_srv_close*() are called with none of ours:
 * librtrs calls rdma_ev and link_ev, which take 1 and 2, with none of its
 * own held (the registry's may be: an rtrsctl command that closes a path).
 */
#ifndef RNBD_SRV_INT_H
#define RNBD_SRV_INT_H

#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rnbd/proto.h"
#include "rnbd/srv.h"
#include "rtrs/rtrs.h"
#include "util/lock.h"
#include "util/workq.h"

#define RNBD_RANK_SRV 280
#define RNBD_RANK_SESS 290
#define RNBD_RANK_RING 910

/* ---- export.c: exports ---- */

struct export {
	struct export *next;
	char name[RNBD_NAME_MAX + 1];   /* "" for one found in the export dir */
	char path[PATH_MAX];
	bool ro, bdev;
	bool mem;                       /* tmpfs/ramfs: IO never waits for a device */
	/* memory: the file mapped and registered, READs answered from it */
	const char *map;
	_Atomic(struct rtrs_srv_mr *) mr;
	int fd;                         /* through the page cache */
	int dfd;                        /* O_DIRECT, or -1 */
	uint32_t dio_off, dio_mem;      /* dfd's alignment of offsets/lengths, memory */
	atomic_bool no_nowait;          /* RWF_NOWAIT refused: stop trying */
	/* bytes (a multiple of 512): taken at start, at every OPEN and, for
	 * files, at every IO (rnbd__export_size()); a file may grow or shrink */
	_Atomic uint64_t size;
	size_t map_len;                 /* bytes of map */
	dev_t dev;
	ino_t ino;
	dev_t rdev;                     /* a block device's number */
	/* RW and MIGRATION opens through this export, under srv->lock; the
	 * access modes count them per file (rnbd__export_writers()) */
	unsigned writers;
};

/* --acl entries: an export name with any entry may be opened only by the
 * identities listed, for writing only by those with :rw (the default) */
struct acl {
	char export[RNBD_NAME_MAX + 1];
	char id[64];
	bool rw;
	struct acl *next;
};

/*
 * The export table. No lock of its own: one thread fills it before
 * rnbd_srv_create(); from then on the server's lock guards the list and
 * the writers (dirfd, dir_real, acls, direct, zero_copy no longer change).
 */
struct rnbd_exports {
	struct export *list;            /* newest first */
	int dirfd;                      /* the export dir (O_PATH), or -1 */
	char dir_real[PATH_MAX];        /* the export dir, resolved */
	struct acl *acls;
	bool direct;                    /* O_DIRECT where the file system allows */
	/* memory exports: READs from a mapping (needs always_invalidate 0,
	 * rtrs_srv_resp_buf(), rtrs_srv_open(3)) */
	bool zero_copy;
	struct rtrs_srv_ctx *ctx;       /* once listening, for registrations */
	/* the server's lock once it exists (rnbd_srv_create()), which the
	 * functions below that say so assert; NULL before */
	struct rtrs_lock *lock;
};

/* Is @name one a client may ask for beneath the export dir: relative, no
 * "." or ".." component, no empty one? 0 or -EACCES. Pure. */
int rnbd__export_name_check(const char *name);
/* A name asked for by a client: a named export, else a file beneath the
 * export dir (one export per file, however named). 0, -ENOENT, -EACCES
 * (outside the dir), -ENOMEM, the errors of openat2(2), fstat(2).
 * Called with srv->lock held (or before the server exists). */
int rnbd__export_find(struct rnbd_exports *x, const char *name,
		      struct export **out);
/* The writers of @e's file through every export that names it. Called
 * with srv->lock held. */
unsigned rnbd__export_writers(const struct rnbd_exports *x,
			      const struct export *e);
/* A writer of @e gone (mode: the device's open mode). srv->lock held
 * (its caller rnbd__dev_release() asserts it). */
void rnbd__export_put(struct export *e, uint8_t mode);
/* 0, or -EACCES: @id may not open @name (for writing: @mode != 0). */
int rnbd__export_acl_check(const struct rnbd_exports *x, const char *name,
			   const char *id, uint8_t mode);
/* The size now, in whole sectors' bytes (fstat or BLKGETSIZE64). */
uint64_t rnbd__export_size(struct export *e);
/* How @e's IO is done (memory, O_DIRECT, page cache), once configured. */
void rnbd__export_io_setup(struct rnbd_exports *x, struct export *e);
/* A memory export's mapping for zero-copy READs, once x->ctx is set.
 * Called with srv->lock held (or before the server exists). */
void rnbd__export_map(struct rnbd_exports *x, struct export *e);
/* Does @e's file still reach @end? */
bool rnbd__export_holds(const struct export *e, uint64_t end);
/* The descriptor for @len bytes at @off from/to @buf: O_DIRECT when
 * aligned for it. */
int rnbd__export_fd(const struct export *e, uint64_t off, uint64_t len,
		    const void *buf);
/* The name a client opens @e by, and the file it is. */
void rnbd__export_names(const struct rnbd_exports *x, const struct export *e,
			const char **name, char *path, size_t len);
/* LIST: the named exports into @data (srv->lock held), the files of the
 * export dir (no lock). 0, -ENOSPC (full), the errors of the dir's read. */
int rnbd__export_list_named(const struct rnbd_exports *x, void *data,
			    size_t datalen);
int rnbd__export_list_dir(const struct rnbd_exports *x, void *data,
			  size_t datalen);

/* ---- srv.c: sessions, devices, requests ---- */

struct sdev {
	struct export *e;
	uint8_t mode;
	bool used;
	/* closed by the control socket (close-device): its IO is answered
	 * -ENODEV, not -EBADF (which would make the client open it again),
	 * until the client closes it; the slot is not reused */
	bool forced;
	/* the name the client opened: the same name again is the same
	 * device, another name of the same file is another open */
	char name[RNBD_NAME_MAX + 1];
};

struct ssess {
	struct rtrs_lock lock;          /* lock order 2 */
	struct sdev *devs;
	uint32_t ndevs;
	char name[256];
	char identity[64];              /* authenticated as, "" without keys */
	struct ssess *next;             /* srv->sessions, under srv->lock */
	struct rtrs_srv_sess *sess;
	struct rnbd_srv *srv;
};

/* A checked IO (rnbd__io_check()). */
struct io_req {
	struct export *e;
	uint32_t op, rw, len;
	uint64_t off;
};

/* A request handed from rdma_ev to the workers or the io_uring thread. */
struct job {
	struct rtrs_work w;             /* the workers' */
	struct job *next;               /* the ring's list */
	struct rtrs_srv_op *op;
	/* io_uring: the checked IO, bytes done, PREFLUSH still to do */
	struct io_req q;
	uint32_t done;
	bool preflush;
	struct ssess *ss;
	void *data;
	size_t len;
	size_t usrlen;
	uint8_t usr[RNBD_OPEN_LEN];
};

/* ---- srv_io.c: the io_uring engine ---- */

struct rnbd_ring {
	bool on;
	struct io_uring ring;
	int efd;
	uint64_t efd_val;               /* the ring reads the eventfd into it */
	pthread_t thr;
	struct rtrs_lock lock;          /* head, tail, stop; lock order 3 */
	struct job *head, **tail;       /* handed over by rdma_ev */
	bool stop;
	unsigned inflight;              /* ring thread only */
};

struct rnbd_srv {
	struct rtrs_lock lock;          /* lock order 1 */
	struct rnbd_exports *x;
	struct ssess *sessions;         /* in connect order */
	struct rtrs_srv_ctx *ctx;       /* once listening */
	struct rtrs_workq *wq;          /* OPEN, CLOSE, LIST, the rest of IO */
	struct rnbd_ring ring;
	size_t naddrs;
};

/* Close device @d of @srv: its writer released, its slot free. Called
 * with srv->lock held, and the session's lock unless the session is being
 * freed (link_ev DISCONNECTED: no request of it is left). */
void rnbd__dev_release(struct rnbd_srv *srv, struct sdev *d);

/* Every check of docs/rnbd-protocol.md 1.3 on an IO of session @ss; 0
 * (and @q filled) or the status to answer: -EINVAL, -EBADF (no such
 * device), -ENODEV (closed by the control socket), -EROFS, -EOPNOTSUPP.
 * Takes ss->lock. */
int rnbd__io_check(struct ssess *ss, const uint8_t *usr, size_t usrlen,
		   size_t datalen, enum rtrs_dir dir, struct io_req *q);

/* Run a checked IO on this thread: 0 or -errno. Blocks on the disk. */
int rnbd__io_exec(const struct io_req *q, void *data);
/* A READ tried without waiting: 0 done, < 0 the status, 1 the rest (from
 * *@done) must go to the ring or the workers. */
int rnbd__io_try_nowait(const struct io_req *q, void *data, uint32_t *done);
/* The io_uring thread: 0, or the errors of eventfd(2),
 * io_uring_queue_init(3), pthread_create(3) (then r->on stays false). */
int rnbd__ring_start(struct rnbd_ring *r);
/* Hand @j to the ring thread, which answers it. */
void rnbd__ring_queue(struct rnbd_ring *r, struct job *j);
/* After every request was answered: end the ring thread. */
void rnbd__ring_stop(struct rnbd_ring *r);

#endif
