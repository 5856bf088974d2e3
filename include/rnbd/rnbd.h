/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * librnbd - block devices exported by rnbd-server, over librtrs.
 *
 * A session (one librtrs session, any number of paths) carries any number
 * of opened devices. IO is asynchronous with a completion callback, or
 * synchronous with the rnbd_pread()-style helpers. Paths fail over as in
 * librtrs; on a server that restarted the session's devices are opened
 * again and their requests sent again (set the librtrs attribute
 * no_path_timeout_ms so that requests wait for it). Every function returns
 * >= 0 on success and a negative errno on failure. Callbacks run on
 * librtrs's progress threads and must not block; they may submit IO. With
 * the librtrs attribute progress = RTRS_PROGRESS_POLL they run inside
 * rnbd_poll() on the application's thread instead (see there).
 */
#ifndef RNBD_RNBD_H
#define RNBD_RNBD_H

#include <stddef.h>
#include <stdint.h>

#include <rtrs/rtrs.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RNBD_API __attribute__((visibility("default")))
#else
#define RNBD_API
#endif

struct rnbd_sess;
struct rnbd_dev;

enum rnbd_access {
	RNBD_ACCESS_RO = 0,        /* any number of readers */
	RNBD_ACCESS_RW = 1,        /* one writer */
	RNBD_ACCESS_MIGRATION = 2, /* a second writer, for live migration */
};

enum rnbd_op {
	RNBD_READ = 0,
	RNBD_WRITE = 1,
	RNBD_FLUSH = 2,
	RNBD_DISCARD = 3,
	RNBD_WRITE_ZEROES = 5,
};

/* flags of rnbd_submit() */
#define RNBD_FUA (1u << 9)         /* the write is durable when it completes */
#define RNBD_PREFLUSH (1u << 10)   /* flush the device's cache first */
#define RNBD_NOUNMAP (1u << 11)    /* write zeroes without deallocating */

struct rnbd_dev_info {
	uint64_t size;                  /* bytes, at open or rnbd_dev_refresh() */
	uint32_t logical_block_size;    /* offsets and lengths align to this */
	uint32_t physical_block_size;
	uint32_t max_io_size;           /* bytes per READ/WRITE */
	uint32_t max_discard_size;      /* bytes, 0 = no discard */
	uint32_t max_write_zeroes_size; /* bytes, 0 = no write-zeroes */
	uint32_t discard_granularity;
	int write_cache;                /* the device has a volatile cache */
	int fua;                        /* FUA is honoured */
	enum rnbd_access access;
	uint64_t reopens;               /* times re-opened on a restarted server */
};

/*
 * rnbd_sess_open - connect to an rnbd-server over @npaths paths and agree
 * on the protocol version. @attr is passed to rtrs_clt_open() (NULL for the
 * defaults). Errors: as rtrs_clt_open(), and -EPROTO (not an rnbd server).
 */
RNBD_API int rnbd_sess_open(const char *sessname,
			    const struct rtrs_path_addr *paths, size_t npaths,
			    const struct rtrs_clt_attr *attr,
			    struct rnbd_sess **out);
/* The same, authenticated with @auth (rtrs_clt_open_auth(3); NULL: none).
 * Errors: as rtrs_clt_open_auth(), and -EPROTO. */
RNBD_API int rnbd_sess_open_auth(const char *sessname,
				 const struct rtrs_path_addr *paths,
				 size_t npaths, const struct rtrs_clt_attr *attr,
				 const struct rtrs_auth *auth,
				 struct rnbd_sess **out);
/*
 * rnbd_list_exports - call @fn for every export of the server: the named
 * ones, then the files of its export directory (flags: RNBD_EXPORT_RO,
 * RNBD_EXPORT_DIR). Returns how many, or -E2BIG (more than one request
 * holds), -EINVAL (a server without the listing: the kernel's), -ENOTCONN,
 * -EPROTO.
 */
#define RNBD_EXPORT_RO (1u << 0)
#define RNBD_EXPORT_DIR (1u << 1)
RNBD_API int rnbd_list_exports(struct rnbd_sess *sess,
			       void (*fn)(void *priv, const char *name,
					  unsigned flags),
			       void *priv);

/* Close every device still open, then the session. Not from a callback
 * (in poll mode it then returns at once and closes nothing). */
RNBD_API void rnbd_sess_close(struct rnbd_sess *sess);
/* The librtrs session underneath (statistics, path control). */
RNBD_API struct rtrs_clt_sess *rnbd_sess_rtrs(struct rnbd_sess *sess);

/*
 * rnbd_dev_open - open the export @name with @access. Errors: -ENOENT (no
 * such export), -EACCES (a name that leaves the export directory), -EROFS
 * (a write mode on a read-only export), -EPERM (the access mode is taken:
 * a second writer), -EEXIST (this session has it open already), -EINVAL,
 * -ENOTCONN, -EPROTO.
 */
RNBD_API int rnbd_dev_open(struct rnbd_sess *sess, const char *name,
			   enum rnbd_access access, struct rnbd_dev **out);
RNBD_API int rnbd_dev_info(struct rnbd_dev *dev, struct rnbd_dev_info *info);
/*
 * rnbd_dev_refresh - ask the server for the device's size again (it may
 * have grown or shrunk: the server takes it at every open and checks IO
 * against the size at the time of the request). Afterwards rnbd_dev_info()
 * and the range checks of rnbd_submit() use the new size. Not from a
 * callback. Errors: as rnbd_dev_open() (-ENOENT: the export is gone),
 * -ENOTCONN, -EPROTO.
 */
RNBD_API int rnbd_dev_refresh(struct rnbd_dev *dev);
/* Close: waits for the device's IO in flight (polling in poll mode; from
 * a callback that is -EDEADLK), then tells the server. */
RNBD_API int rnbd_dev_close(struct rnbd_dev *dev);

typedef void (*rnbd_done_fn)(void *priv, int status);

/*
 * rnbd_submit - start one request. READ fills @buf, WRITE sends it; FLUSH
 * takes no range (offset and len 0); DISCARD and WRITE_ZEROES take a range
 * and no buffer. @done is called exactly once iff this returns 0.
 * Errors: -EAGAIN (every permit of the session is in use: retry after a
 * completion), -EINVAL (alignment, range, flags), -EROFS (read-only
 * device), -EMSGSIZE (longer than max_io_size), -ENOTCONN.
 * Completion status: 0, or -EIO/-ENOSPC/... from the server's backend,
 * -EINVAL for a request the server refused (past the end of a file that
 * shrank, too), -ENODEV on a device the server closed (its control
 * socket), -ECONNABORTED without a path.
 */
RNBD_API int rnbd_submit(struct rnbd_dev *dev, enum rnbd_op op, uint64_t offset,
			 void *buf, size_t len, unsigned flags,
			 rnbd_done_fn done, void *priv);

/*
 * rnbd_poll - for a session opened with the librtrs attribute progress =
 * RTRS_PROGRESS_POLL: read the session's completions on the calling thread
 * and run their callbacks, waiting up to @timeout_ms (0: not at all, -1: no
 * limit) for at least one while IO is in flight. IO moves only while a
 * thread polls; rnbd_submit() returns -EAGAIN when every permit is in use,
 * then poll. The synchronous helpers and rnbd_dev_close() poll by
 * themselves. Returns the number of completions handled (a request parked
 * for a re-open counts; its callback runs later), or -EINVAL (not a
 * poll-mode session), -EDEADLK (from one of the session's callbacks).
 */
RNBD_API int rnbd_poll(struct rnbd_sess *sess, int timeout_ms);

/* Synchronous helpers: wait for a permit and for the completion. In poll
 * mode: -EDEADLK from a callback. */
RNBD_API int rnbd_pread(struct rnbd_dev *dev, void *buf, size_t len,
			uint64_t offset);
RNBD_API int rnbd_pwrite(struct rnbd_dev *dev, const void *buf, size_t len,
			 uint64_t offset, unsigned flags);
RNBD_API int rnbd_flush(struct rnbd_dev *dev);
RNBD_API int rnbd_discard(struct rnbd_dev *dev, uint64_t offset, uint64_t len);
RNBD_API int rnbd_write_zeroes(struct rnbd_dev *dev, uint64_t offset,
			       uint64_t len, unsigned flags);

/*
 * rnbd_strerror - text for a negative errno returned by librnbd, with
 * rnbd's meaning where it differs from librtrs's (-EPERM: the export is
 * open for writing by another session, not a session name in use); other
 * codes as rtrs_strerror(). For the errors of rnbd_sess_open(), which are
 * rtrs_clt_open()'s, use rtrs_strerror().
 */
RNBD_API const char *rnbd_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
