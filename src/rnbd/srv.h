/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The rnbd server as a library (internal: linked statically by
 * rnbd-server, not installed): an export table filled from the
 * configuration, a server serving it over librtrs (docs/rnbd-protocol.md),
 * and its control socket (rnbd-server(8) CONTROL). Every int-returning
 * call returns 0 or a negative errno. The library reports on stderr and
 * stdout with the prefix "rnbd-server: " as the tool always did.
 *
 * Threading: the export table is filled by one thread before
 * rnbd_srv_create(), which takes it over. rnbd_srv_destroy() and
 * rnbd_srv_ctl_stop() are called once, by the thread that created them.
 */
#ifndef RNBD_SRV_H
#define RNBD_SRV_H

#include <stdbool.h>
#include <stddef.h>

#include "rtrs/rtrs.h"

#define RNBD_SRV_MAX_THREADS 64
/* the longest control-socket request line, both sides (srv_ctl.c) */
#define RNBD_SRV_CTL_LINE_MAX 1024

struct rnbd_exports;
struct rnbd_srv;
struct rnbd_srv_ctl;

/* An empty export table. -ENOMEM. */
int rnbd_exports_create(struct rnbd_exports **out);
/* Close every export and free @x (NULL: nothing). */
void rnbd_exports_destroy(struct rnbd_exports *x);
/* --export NAME=PATH[:ro]: open PATH now. -EINVAL (not NAME=PATH, a name
 * over RNBD_NAME_MAX), -ENOMEM, the errors of open(2) and fstat(2). */
int rnbd_exports_add(struct rnbd_exports *x, const char *spec);
/* --export-dir DIR (the last one wins): the errors of open(2) and
 * realpath(3). */
int rnbd_exports_set_dir(struct rnbd_exports *x, const char *dir);
/* --acl NAME=ID[:ro|:rw][,...]: -EINVAL, -ENOMEM. */
int rnbd_exports_acl_add(struct rnbd_exports *x, const char *spec);
/* Nothing to serve: no --export and no --export-dir. */
bool rnbd_exports_empty(const struct rnbd_exports *x);
/* Any --acl given. */
bool rnbd_exports_has_acl(const struct rnbd_exports *x);

/* How the server runs; rnbd_srv_attr_init() first, then set fields. */
struct rnbd_srv_attr {
	size_t size;                    /* sizeof(struct rnbd_srv_attr) */
	unsigned threads;               /* worker threads, 1..64 (4) */
	bool uring;                     /* READ/WRITE/FLUSH on io_uring (on) */
	bool direct;                    /* O_DIRECT where it works (on) */
	bool zero_copy;                 /* memory exports' READs mapped (on) */
	const char *const *addrs;       /* listen addresses */
	size_t naddrs;
	/* librtrs: provider and always_invalidate are the caller's, the
	 * ops the server's own */
	struct rtrs_srv_attr rtrs;
	struct rtrs_srv_limits limits;
	const char *key_file;           /* NULL: no authentication */
};

void rnbd_srv_attr_init(struct rnbd_srv_attr *attr);

/*
 * Serve @x (taken over, freed by rnbd_srv_destroy() or on failure) on
 * @attr's addresses: workers, io_uring, listeners. Prints one line
 * "export NAME io=..." per named export on stdout, and what failed on
 * stderr. -EINVAL (a bad @attr), -ENOMEM, the errors of rtrs_srv_open_auth()
 * and rtrs_srv_set_limits(). Blocks while it sets up.
 */
int rnbd_srv_create(const struct rnbd_srv_attr *attr, struct rnbd_exports *x,
		    struct rnbd_srv **out);
/* The @i-th listen address, as rtrs_srv_get_listen_addr(). */
int rnbd_srv_listen_addr(struct rnbd_srv *srv, size_t i, char *buf,
			 size_t len);
/* Stop accepting, answer what is in flight, close the sessions, end the
 * threads, free everything. Blocks. */
void rnbd_srv_destroy(struct rnbd_srv *srv);

/* The control socket at @path (mode 0600): -ENAMETOOLONG, the errors of
 * socket(2), bind(2), listen(2), pthread_create(3). Stop it before
 * destroying @srv. */
int rnbd_srv_ctl_start(struct rnbd_srv *srv, const char *path,
		       struct rnbd_srv_ctl **out);
/* End the control socket's thread, remove the socket (NULL: nothing). */
void rnbd_srv_ctl_stop(struct rnbd_srv_ctl *ctl);

#endif
