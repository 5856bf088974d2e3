// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd-server: export files and block devices over librtrs.
 *
 *   rnbd-server --listen ADDR:PORT[,...] [--export NAME=PATH[:ro]]...
 *               [--export-dir DIR] [--config FILE] [--threads N]
 *               [--provider P] [--no-uring] [--no-direct]
 *               [--always-invalidate 0|1]
 *
 * Protocol: docs/rnbd-protocol.md. rdma_ev runs on librtrs's progress
 * threads and must not block: it checks every IO there, then READ, WRITE
 * and FLUSH go to an io_uring served by one thread, straight from and into
 * the librtrs chunk (O_DIRECT where the file system takes it); OPEN, CLOSE,
 * DISCARD and WRITE_ZEROES (and everything with --no-uring, or where
 * io_uring cannot be set up) to a pool of worker threads. Two exceptions
 * run on the progress thread, as neither waits for a device: the IO of a
 * tmpfs/ramfs export, and a READ that RWF_NOWAIT finds in the page cache.
 * SIGTERM/SIGINT: stop accepting, answer what is in flight, close, exit 0.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "rnbd/proto.h"
#include "rtrs/rtrs.h"

#define MAX_THREADS 64

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
	 * files, at every IO (export_size()); a file may grow or shrink */
	_Atomic uint64_t size;
	size_t map_len;                 /* bytes of map */
	dev_t dev;
	ino_t ino;
	dev_t rdev;                     /* a block device's number */
	/* RW and MIGRATION opens through this export, under S.lock; the
	 * access modes count them per file (file_writers()) */
	unsigned writers;
};

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
	pthread_mutex_t lock;
	struct sdev *devs;
	uint32_t ndevs;
	char name[256];
	char identity[64];              /* authenticated as, "" without keys */
	struct ssess *next;             /* S.sessions, under S.lock */
	struct rtrs_srv_sess *sess;
};

struct io_req {
	struct export *e;
	uint32_t op, rw, len;
	uint64_t off;
};

struct job {
	struct job *next;
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

static struct {
	pthread_mutex_t lock;           /* exports' writers, the list */
	struct export *exports;
	int dirfd;
	char dir_real[PATH_MAX];        /* the export dir, resolved */
	/* the work queue */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct job *head, **tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[MAX_THREADS];
	bool direct;                    /* O_DIRECT where the file system allows */
	/* memory exports: READs from a mapping (needs always_invalidate 0,
	 * rtrs_srv_resp_buf(), rtrs_srv_open(3)) */
	bool zero_copy;
	struct rtrs_srv_ctx *ctx;       /* under lock, once listening */
	struct ssess *sessions;         /* in connect order, under lock */
} S = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.qlock = PTHREAD_MUTEX_INITIALIZER,
	.qcond = PTHREAD_COND_INITIALIZER,
	.dirfd = -1,
	.nthreads = 4,
	.direct = true,
	.zero_copy = true,
};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	(void)sig;
	stop_sig = 1;
}

/* ---- exports ---- */

static int export_stat(struct export *e)
{
	struct stat st;

	if (fstat(e->fd, &st))
		return -errno;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->rdev = st.st_rdev;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz;

		e->bdev = true;
		if (ioctl(e->fd, BLKGETSIZE64, &sz))
			return -errno;
		e->size = sz & ~(uint64_t)511;
	} else if (S_ISREG(st.st_mode)) {
		e->size = (uint64_t)st.st_size & ~(uint64_t)511;
	} else {
		return -EINVAL;
	}
	return 0;
}

/*
 * The export's size now, in whole sectors: a file's from fstat (it may
 * have grown or shrunk since), a block device's from BLKGETSIZE64. Kept
 * in e->size, which OPEN answers with; on failure the last one known.
 */
static uint64_t export_size(struct export *e)
{
	struct stat st;
	uint64_t sz;

	if (e->bdev) {
		if (!ioctl(e->fd, BLKGETSIZE64, &sz))
			e->size = sz & ~(uint64_t)511;
	} else if (!fstat(e->fd, &st)) {
		e->size = (uint64_t)st.st_size & ~(uint64_t)511;
	}
	return e->size;
}

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC 0x858458f6
#endif

/*
 * How @e's IO is done. A file on tmpfs or ramfs is memory: its IO runs
 * inline on the librtrs thread that received it (O_DIRECT means nothing
 * there). Elsewhere a second descriptor with O_DIRECT, when the file system
 * takes it and tells its alignment (statx STATX_DIOALIGN, or the logical
 * block size of a block device), serves the aligned READs and WRITEs; the
 * rest goes through the page cache (the kernel keeps the two coherent).
 */
static void export_io_setup(struct export *e)
{
	struct statfs sf;
	struct statx sx;
	char proc[64];
	int fd;

	e->dfd = -1;
	if (!e->bdev && !fstatfs(e->fd, &sf) &&
	    (sf.f_type == TMPFS_MAGIC || (unsigned long)sf.f_type == RAMFS_MAGIC)) {
		e->mem = true;
		return;
	}
	if (!S.direct)
		return;
	if (!statx(e->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align) {
		e->dio_off = sx.stx_dio_offset_align;
		e->dio_mem = sx.stx_dio_mem_align;
	} else if (e->bdev) {
		int bs;

		if (ioctl(e->fd, BLKSSZGET, &bs) || bs <= 0)
			return;
		e->dio_off = e->dio_mem = (uint32_t)bs;
	} else {
		return;                 /* no O_DIRECT here */
	}
	if (e->dio_off > 4096 || e->dio_mem > 4096 ||
	    (e->dio_off & (e->dio_off - 1)) || (e->dio_mem & (e->dio_mem - 1)))
		return;
	/* the same file again (fcntl cannot set O_DIRECT on a descriptor
	 * shared with the buffered one) */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", e->fd);
	fd = open(proc, (e->ro ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;

		if (!fstat(fd, &st) && st.st_dev == e->dev && st.st_ino == e->ino)
			e->dfd = fd;
		else
			close(fd);
	}
}

/* The descriptor for @len bytes at @off from/to @buf: O_DIRECT when
 * aligned for it. */
static int export_fd(const struct export *e, uint64_t off, uint64_t len,
		     const void *buf)
{
	if (e->dfd >= 0 && !(off & (e->dio_off - 1)) &&
	    !(len & (e->dio_off - 1)) &&
	    !((uintptr_t)buf & (e->dio_mem ? e->dio_mem - 1 : 0)))
		return e->dfd;
	return e->fd;
}

/*
 * A memory export's READs are answered straight from a shared mapping of
 * the file (rtrs_srv_resp_buf()): no copy into the chunk. Needs the
 * listeners (S.ctx); without it, or if mapping or registering fails, READs
 * are copied as before. The server itself never touches the mapping: if
 * the file shrinks under it, sending from the lost pages fails with EFAULT
 * in the kernel and closes that connection, no signal. So each READ first
 * checks that the file still holds it (io_check() refuses one past a
 * shrunk end with -EINVAL, export_holds() checks again right before the
 * send). Only a shrink between that check and the send fails the
 * connection. The mapping keeps its size: a part the file grew by later
 * is copied.
 */
static void export_map(struct export *e)
{
	uint64_t size = e->size;
	struct rtrs_srv_mr *mr;
	void *m;
	int ret;

	if (!e->mem || !S.zero_copy || !S.ctx || !size || size > SIZE_MAX ||
	    atomic_load(&e->mr))
		return;
	/* the size now: a part the file grows by later is copied (rdma_ev) */
	m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, e->fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "rnbd-server: %s: mmap: %s; READs are copied\n",
			e->path, strerror(errno));
		return;
	}
	ret = rtrs_srv_mr_reg(S.ctx, m, (size_t)size, &mr);
	if (ret) {
		fprintf(stderr, "rnbd-server: %s: registration: %s; READs are copied\n",
			e->path, rtrs_strerror(ret));
		munmap(m, (size_t)size);
		return;
	}
	e->map = m;
	e->map_len = (size_t)size;
	atomic_store_explicit(&e->mr, mr, memory_order_release);
}

/* Does @e's file still reach @end? An fstat, cheaper than the copy. */
static bool export_holds(const struct export *e, uint64_t end)
{
	struct stat st;

	return !fstat(e->fd, &st) && (uint64_t)st.st_size >= end;
}

/* Is @fd a file below the export directory? */
static bool fd_beneath(int fd)
{
	char link[64], real[PATH_MAX];
	size_t n = strlen(S.dir_real);
	ssize_t r;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	r = readlink(link, real, sizeof(real) - 1);
	if (r < 0)
		return false;
	real[r] = 0;
	return !strncmp(real, S.dir_real, n) && real[n] == '/';
}

/* Open @path of an export (through the page cache for now). */
static int export_open_fd(int dirfd, const char *path, bool ro, bool beneath)
{
	struct open_how how = {
		.flags = (uint64_t)((ro ? O_RDONLY : O_RDWR) | O_CLOEXEC),
		.resolve = beneath ? RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS : 0,
	};
	long fd;

	fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS) {
		/* no openat2 (kernels before 5.6, valgrind): open, then check
		 * where the descriptor really points */
		fd = openat(dirfd, path, (int)how.flags);
		if (fd >= 0 && beneath && !fd_beneath((int)fd)) {
			close((int)fd);
			return -EACCES;
		}
	}
	if (fd < 0 && errno == EROFS && !ro)
		return -EROFS;
	if (fd < 0)
		return errno == EXDEV || errno == ELOOP ? -EACCES : -errno;
	return (int)fd;
}

static int export_add(const char *spec)
{
	struct export *e = calloc(1, sizeof(*e));
	const char *eq = strchr(spec, '=');
	size_t n;
	char *colon;
	int ret;

	if (!e)
		return -ENOMEM;
	if (!eq || eq == spec || (size_t)(eq - spec) > RNBD_NAME_MAX ||
	    strlen(eq + 1) >= sizeof(e->path)) {
		free(e);
		return -EINVAL;
	}
	n = (size_t)(eq - spec);
	memcpy(e->name, spec, n);
	snprintf(e->path, sizeof(e->path), "%s", eq + 1);
	colon = strrchr(e->path, ':');
	if (colon && !strcmp(colon, ":ro")) {
		*colon = 0;
		e->ro = true;
	}
	ret = export_open_fd(AT_FDCWD, e->path, e->ro, false);
	if (ret < 0) {
		free(e);
		return ret;
	}
	e->fd = ret;
	ret = export_stat(e);
	if (ret) {
		close(e->fd);
		free(e);
		return ret;
	}
	e->dfd = -1;                    /* export_io_setup() once configured */
	e->next = S.exports;
	S.exports = e;
	return 0;
}

/* A name asked for by a client: a named export, else a file under the
 * export directory that stays beneath it. Called with S.lock held. */
static int export_find(const char *name, struct export **out)
{
	struct export *e, tmp = { 0 };
	const char *p;
	int fd, ret;

	for (e = S.exports; e; e = e->next)
		if (e->name[0] && !strcmp(e->name, name)) {
			*out = e;
			return 0;
		}
	if (S.dirfd < 0)
		return -ENOENT;
	/* no absolute names, no "." or ".." components, no empty ones */
	if (name[0] == '/')
		return -EACCES;
	for (p = name; *p;) {
		size_t n = strcspn(p, "/");

		if (!n || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EACCES;
		p += n;
		if (*p == '/')
			p++;
	}
	/* writable if the file allows it; read-only otherwise */
	fd = export_open_fd(S.dirfd, name, false, true);
	if (fd == -EACCES || fd == -EROFS || fd == -EPERM) {
		tmp.ro = true;
		fd = export_open_fd(S.dirfd, name, true, true);
	}
	if (fd < 0)
		return fd;
	tmp.fd = fd;
	ret = export_stat(&tmp);
	if (ret) {
		close(fd);
		return ret;
	}
	/* one export per file, however it is named */
	for (e = S.exports; e; e = e->next)
		if (!e->name[0] && e->dev == tmp.dev && e->ino == tmp.ino) {
			close(fd);
			*out = e;
			return 0;
		}
	e = calloc(1, sizeof(*e));
	if (!e) {
		close(fd);
		return -ENOMEM;
	}
	*e = tmp;
	snprintf(e->path, sizeof(e->path), "%s", name);
	export_io_setup(e);
	export_map(e);
	e->next = S.exports;
	S.exports = e;
	*out = e;
	return 0;
}

/* Are @a and @b the same file: the same inode, or for block devices the
 * same device, whatever node names it? */
static bool same_file(const struct export *a, const struct export *b)
{
	if (a->bdev || b->bdev)
		return a->bdev && b->bdev && a->rdev == b->rdev;
	return a->dev == b->dev && a->ino == b->ino;
}

/*
 * The writers of @e's file through every export that names it: an
 * --export name, a name in the export dir (a hard link, a symlink), two
 * --export names of one file, two nodes of one block device. The access
 * modes count these, not one name's. Called with S.lock held.
 */
static unsigned file_writers(const struct export *e)
{
	unsigned n = 0;

	for (const struct export *o = S.exports; o; o = o->next)
		if (same_file(o, e))
			n += o->writers;
	return n;
}

/*
 * Access lists (--acl NAME=ID[:ro|:rw][,...]): an export name with any
 * entry may be opened only by the identities listed, for writing only by
 * those with :rw (the default). Names without entries are open to every
 * client, as before.
 */
struct acl {
	char export[RNBD_NAME_MAX + 1];
	char id[64];
	bool rw;
	struct acl *next;
};
static struct acl *acls;

static int acl_add(const char *spec)
{
	const char *eq = strchr(spec, '=');
	char list[1024], *save = NULL;
	size_t n = eq ? (size_t)(eq - spec) : 0;

	if (!eq || !n || n > RNBD_NAME_MAX || !eq[1] ||
	    strlen(eq + 1) >= sizeof(list))
		return -EINVAL;
	snprintf(list, sizeof(list), "%s", eq + 1);
	for (char *t = strtok_r(list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		struct acl *a = calloc(1, sizeof(*a));
		char *colon = strchr(t, ':');

		if (!a)
			return -ENOMEM;
		a->rw = true;
		if (colon) {
			*colon = 0;
			if (!strcmp(colon + 1, "ro"))
				a->rw = false;
			else if (strcmp(colon + 1, "rw"))
				colon = NULL, t[0] = 0;
		}
		if (!t[0] || strlen(t) >= sizeof(a->id) || strchr(t, ' ')) {
			free(a);
			return -EINVAL;
		}
		memcpy(a->export, spec, n);
		snprintf(a->id, sizeof(a->id), "%s", t);
		a->next = acls;
		acls = a;
	}
	return 0;
}

/* 0, or -EACCES: @id may not open @name (for writing: @mode != 0) */
static int acl_check(const char *name, const char *id, uint8_t mode)
{
	bool listed = false;

	for (const struct acl *a = acls; a; a = a->next) {
		if (strcmp(a->export, name))
			continue;
		listed = true;
		if (id[0] && !strcmp(a->id, id) && (a->rw || !mode))
			return 0;
	}
	return listed ? -EACCES : 0;
}

/* ---- requests ---- */

static int do_open(struct ssess *ss, const uint8_t *usr, size_t usrlen,
		   void *data, size_t datalen, enum rtrs_dir dir)
{
	char name[RNBD_NAME_MAX + 1];
	struct rnbd_open_rsp r = { 0 };
	struct export *e = NULL;
	uint8_t mode;
	uint32_t id;
	int ret;

	if (rnbd_proto_open_decode(usr, usrlen, &mode, name))
		return -EINVAL;
	if (dir != RTRS_READ || datalen < RNBD_OPEN_RSP_LEN)
		return -EINVAL;
	/* the access list first: an identity not on it learns nothing */
	ret = acl_check(name, ss->identity, mode);
	if (ret)
		return ret;
	pthread_mutex_lock(&S.lock);
	ret = export_find(name, &e);
	if (!ret && mode && e->ro)
		ret = -EROFS;
	pthread_mutex_lock(&ss->lock);
	/* the same name again in this session: the same device (remap) */
	for (id = 0; !ret && id < ss->ndevs; id++)
		if (ss->devs[id].used && ss->devs[id].e == e &&
		    ss->devs[id].mode == mode && !strcmp(ss->devs[id].name, name))
			break;
	if (!ret && id == ss->ndevs) {
		unsigned w = file_writers(e);

		/* one writer, or two for migration, per file */
		if ((mode == 1 && w) || (mode == 2 && w >= 2))
			ret = -EPERM;
		for (id = 0; !ret && id < ss->ndevs &&
			     (ss->devs[id].used || ss->devs[id].forced); id++)
			;
		if (!ret && id == ss->ndevs) {
			struct sdev *nd = realloc(ss->devs, (ss->ndevs + 8) *
							       sizeof(*nd));

			if (!nd) {
				ret = -ENOMEM;
			} else {
				memset(nd + ss->ndevs, 0, 8 * sizeof(*nd));
				ss->devs = nd;
				ss->ndevs += 8;
			}
		}
		if (!ret) {
			ss->devs[id] = (struct sdev){ e, mode, true, false, "" };
			snprintf(ss->devs[id].name, sizeof(ss->devs[id].name),
				 "%s", name);
			if (mode)
				e->writers++;
		}
	}
	pthread_mutex_unlock(&ss->lock);
	pthread_mutex_unlock(&S.lock);
	if (ret)
		return ret;
	r.device_id = id;
	r.nsectors = export_size(e) >> 9;  /* the size now: it may change */
	r.max_hw_sectors = 0;           /* the session's max IO decides */
	r.max_discard_sectors = UINT32_MAX >> 9;
	r.max_write_zeroes_sectors = UINT32_MAX >> 9;
	r.discard_granularity = 4096;
	r.physical_block_size = 4096;
	r.logical_block_size = 512;
	r.max_segments = 128;
	r.cache_policy = RNBD_CACHE_WRITEBACK | RNBD_CACHE_FUA;
	memset(data, 0, datalen);
	rnbd_proto_open_rsp_encode(data, &r);
	fprintf(stderr, "rnbd-server: session %s opened %s (%s) as device %u\n",
		ss->name, name, mode == 0 ? "ro" : mode == 1 ? "rw" : "migration",
		id);
	return 0;
}

/* Called with S.lock held (lock order: S.lock, then a session's lock). */
/* LIST (ours): the named exports, then the files of the export dir. */
static int do_list(const uint8_t *usr, size_t usrlen, void *data,
		   size_t datalen, enum rtrs_dir dir)
{
	struct export *e;
	int ret = 0;

	if (rnbd_proto_list_decode(usr, usrlen) || dir != RTRS_READ ||
	    datalen < RNBD_LIST_RSP_HDR)
		return -EINVAL;
	memset(data, 0, datalen);
	rnbd_proto_list_rsp_init(data);
	pthread_mutex_lock(&S.lock);
	for (e = S.exports; e && !ret; e = e->next)
		if (e->name[0])
			ret = rnbd_proto_list_rsp_add(data, datalen, e->name,
						      e->ro ? RNBD_LIST_F_RO : 0);
	pthread_mutex_unlock(&S.lock);
	if (!ret && S.dirfd >= 0) {
		int fd = openat(S.dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		while (!ret && (de = readdir(d))) {
			struct stat st;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
			    !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
				continue;
			ret = rnbd_proto_list_rsp_add(data, datalen, de->d_name,
				RNBD_LIST_F_DIR |
				(faccessat(dirfd(d), de->d_name, W_OK,
					   AT_SYMLINK_NOFOLLOW) ? RNBD_LIST_F_RO : 0));
			if (ret == -EINVAL)     /* a name too long to open */
				ret = 0;
		}
		closedir(d);
	}
	return ret == -ENOSPC ? -E2BIG : ret;
}

static void dev_release(struct sdev *d)
{
	if (d->mode && d->e->writers)
		d->e->writers--;
	d->used = false;
	d->e = NULL;
}

static int do_close(struct ssess *ss, const uint8_t *usr, size_t usrlen)
{
	uint32_t id;
	int ret = 0;

	if (rnbd_proto_close_decode(usr, usrlen, &id))
		return -EINVAL;
	pthread_mutex_lock(&S.lock);
	pthread_mutex_lock(&ss->lock);
	if (id < ss->ndevs && ss->devs[id].forced)
		ss->devs[id].forced = false;    /* closed already: now free */
	else if (id >= ss->ndevs || !ss->devs[id].used)
		ret = -EBADF;
	else
		dev_release(&ss->devs[id]);
	pthread_mutex_unlock(&ss->lock);
	pthread_mutex_unlock(&S.lock);
	return ret;
}

static int full_pread(int fd, char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)             /* the file shrank under us */
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int full_pwrite(int fd, const char *buf, size_t len, uint64_t off,
		       bool fua)
{
	while (len) {
		struct iovec v = { (void *)buf, len };
		ssize_t n = pwritev2(fd, &v, 1, (off_t)off, fua ? RWF_DSYNC : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int zero_range(struct export *e, uint64_t off, uint64_t len, bool punch)
{
	static const char zeros[65536];

	if (e->bdev) {
		uint64_t r[2] = { off, len };

		if (!ioctl(e->fd, punch ? BLKDISCARD : BLKZEROOUT, r))
			return 0;
		if (punch)
			return -errno;
	} else if (!fallocate(e->fd, FALLOC_FL_KEEP_SIZE |
					     (punch ? FALLOC_FL_PUNCH_HOLE
						    : FALLOC_FL_ZERO_RANGE),
			      (off_t)off, (off_t)len)) {
		return 0;
	} else if (errno != EOPNOTSUPP) {
		return -errno;
	}
	/* no support: write the zeroes */
	while (len) {
		size_t n = len > sizeof(zeros) ? sizeof(zeros) : (size_t)len;
		int ret = full_pwrite(e->fd, zeros, n, off, false);

		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* Every check of docs/rnbd-protocol.md 1.3; 0 or the status to answer. */
static int io_check(struct ssess *ss, const uint8_t *usr, size_t usrlen,
		    size_t datalen, enum rtrs_dir dir, struct io_req *q)
{
	struct rnbd_io io;
	uint32_t op;
	uint8_t mode;

	if (rnbd_proto_io_decode(usr, usrlen, &io))
		return -EINVAL;
	op = io.rw & RNBD_OP_MASK;
	pthread_mutex_lock(&ss->lock);
	if (io.device_id >= ss->ndevs || !ss->devs[io.device_id].used) {
		bool forced = io.device_id < ss->ndevs &&
			      ss->devs[io.device_id].forced;

		pthread_mutex_unlock(&ss->lock);
		return forced ? -ENODEV : -EBADF;
	}
	/* an export stays open while the server runs: safe after unlock */
	q->e = ss->devs[io.device_id].e;
	mode = ss->devs[io.device_id].mode;
	pthread_mutex_unlock(&ss->lock);
	if (op == RNBD_OP_SECURE_ERASE)
		return -EOPNOTSUPP;
	if (op != RNBD_OP_READ && op != RNBD_OP_FLUSH && !mode)
		return -EROFS;
	/* the data travels in the direction of the operation, and only for
	 * READ and WRITE */
	if ((op == RNBD_OP_READ) != (dir == RTRS_READ) && op != RNBD_OP_FLUSH &&
	    op != RNBD_OP_DISCARD && op != RNBD_OP_WRITE_ZEROES)
		return -EINVAL;
	if (op == RNBD_OP_READ || op == RNBD_OP_WRITE) {
		if (!io.bi_size || io.bi_size != datalen)
			return -EINVAL;
	} else if (datalen || (op == RNBD_OP_FLUSH) != !io.bi_size) {
		return -EINVAL;
	}
	if (io.bi_size & 511)
		return -EINVAL;
	/* against the size now (a file's, from fstat): after a shrink a
	 * write past the new end is refused, never grows the file back */
	if (op != RNBD_OP_FLUSH) {
		uint64_t size = q->e->bdev ? q->e->size : export_size(q->e);

		if (io.sector > (size >> 9) || io.bi_size > size - (io.sector << 9))
			return -EINVAL;
	}
	q->op = op;
	q->rw = io.rw;
	q->len = io.bi_size;
	q->off = io.sector << 9;
	return 0;
}

/* Run a checked IO on this thread. */
static int io_exec(const struct io_req *q, void *data)
{
	struct export *e = q->e;
	int ret;

	if ((q->rw & RNBD_F_PREFLUSH) && fdatasync(e->fd))
		return -errno;
	switch (q->op) {
	case RNBD_OP_READ:
		return full_pread(export_fd(e, q->off, q->len, data), data,
				  q->len, q->off);
	case RNBD_OP_WRITE:
		return full_pwrite(export_fd(e, q->off, q->len, data), data,
				   q->len, q->off, q->rw & RNBD_F_FUA);
	case RNBD_OP_FLUSH:
		return fdatasync(e->fd) ? -errno : 0;
	case RNBD_OP_DISCARD:
	case RNBD_OP_WRITE_ZEROES:
		ret = zero_range(e, q->off, q->len,
				 q->op == RNBD_OP_DISCARD ||
					 !(q->rw & RNBD_F_NOUNMAP));
		if (!ret && (q->rw & RNBD_F_FUA) && fdatasync(e->fd))
			ret = -errno;
		return ret;
	}
	return -EINVAL;
}

/*
 * A READ of a page-cache file tried here without waiting (RWF_NOWAIT):
 * 0 when it is all done, < 0 the status to answer, 1 when the rest
 * (from *@done) must go to the ring, or all of it to the workers.
 */
static int io_try_nowait(const struct io_req *q, void *data, uint32_t *done)
{
	struct export *e = q->e;
	struct iovec v = { data, q->len };
	ssize_t n;

	if (q->op != RNBD_OP_READ || (q->rw & RNBD_F_PREFLUSH) ||
	    e->dfd >= 0 || atomic_load_explicit(&e->no_nowait,
						memory_order_relaxed))
		return 1;
	n = preadv2(e->fd, &v, 1, (off_t)q->off, RWF_NOWAIT);
	if (n == (ssize_t)q->len)
		return 0;
	if (n > 0)
		*done = (uint32_t)n;    /* the ring does the rest */
	else if (n < 0 && errno == EOPNOTSUPP)
		atomic_store_explicit(&e->no_nowait, true, memory_order_relaxed);
	return 1;
}

/* ---- io_uring ---- */

#define RING_ENTRIES 256
#define TAG_WAKE ((uint64_t)1)

static struct {
	bool on;
	struct io_uring ring;
	int efd;
	uint64_t efd_val;               /* the ring reads the eventfd into it */
	pthread_t thr;
	pthread_mutex_t lock;
	struct job *head, **tail;       /* handed over by rdma_ev */
	bool stop;
	unsigned inflight;              /* ring thread only */
} U = { .lock = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

static struct io_uring_sqe *ring_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&U.ring);

	if (!sqe) {                     /* full: hand what is there over */
		io_uring_submit(&U.ring);
		sqe = io_uring_get_sqe(&U.ring);
	}
	return sqe;
}

/* Queue the next step of @j: its PREFLUSH, or (the rest of) its IO. */
static void ring_prep(struct job *j)
{
	struct io_uring_sqe *sqe = ring_sqe();
	char *buf = (char *)j->data + j->done;
	int fd = export_fd(j->q.e, j->q.off + j->done, j->q.len - j->done, buf);

	if (!sqe) {                     /* cannot happen after a submit */
		rtrs_srv_resp(j->op, -EAGAIN);
		free(j);
		return;
	}
	if (j->preflush || j->q.op == RNBD_OP_FLUSH) {
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	} else if (j->q.op == RNBD_OP_READ) {
		io_uring_prep_read(sqe, fd, buf, j->q.len - j->done,
				   j->q.off + j->done);
	} else {
		io_uring_prep_write(sqe, fd, buf, j->q.len - j->done,
				    j->q.off + j->done);
		if (j->q.rw & RNBD_F_FUA)
			sqe->rw_flags = RWF_DSYNC;
	}
	io_uring_sqe_set_data(sqe, j);
	U.inflight++;
}

static void ring_arm_wake(void)
{
	struct io_uring_sqe *sqe = ring_sqe();

	if (!sqe)
		return;
	io_uring_prep_read(sqe, U.efd, &U.efd_val, sizeof(U.efd_val), 0);
	io_uring_sqe_set_data64(sqe, TAG_WAKE);
}

static void ring_done(struct job *j, int res)
{
	U.inflight--;
	if (res == -EAGAIN || res == -EINTR) {
		ring_prep(j);           /* try the same step again */
		return;
	}
	if (res < 0) {
		rtrs_srv_resp(j->op, res);
		free(j);
		return;
	}
	if (j->preflush) {
		j->preflush = false;
	} else if (j->q.op != RNBD_OP_FLUSH) {
		if (!res) {             /* end of file: the file shrank */
			rtrs_srv_resp(j->op, -EIO);
			free(j);
			return;
		}
		j->done += (uint32_t)res;
	}
	if (j->q.op != RNBD_OP_FLUSH ? j->done < j->q.len : j->preflush) {
		ring_prep(j);
		return;
	}
	rtrs_srv_resp(j->op, 0);
	free(j);
}

static void *ring_main(void *arg)
{
	(void)arg;
	ring_arm_wake();
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		bool wake = false, stop;

		io_uring_submit_and_wait(&U.ring, 1);
		io_uring_for_each_cqe(&U.ring, head, cqe) {
			if (io_uring_cqe_get_data64(cqe) == TAG_WAKE)
				wake = true;
			else
				ring_done(io_uring_cqe_get_data(cqe), cqe->res);
			n++;
		}
		io_uring_cq_advance(&U.ring, n);
		if (!wake)
			continue;
		pthread_mutex_lock(&U.lock);
		while (U.head) {
			struct job *j = U.head;

			U.head = j->next;
			ring_prep(j);
		}
		U.tail = &U.head;
		stop = U.stop;
		pthread_mutex_unlock(&U.lock);
		if (stop && !U.inflight)
			break;
		ring_arm_wake();
	}
	return NULL;
}

static void ring_wake(void)
{
	uint64_t one = 1;

	if (write(U.efd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "rnbd-server: cannot wake the ring\n");
}

static void ring_queue(struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&U.lock);
	*U.tail = j;
	U.tail = &j->next;
	pthread_mutex_unlock(&U.lock);
	ring_wake();
}

static int ring_start(void)
{
	int ret;

	U.tail = &U.head;
	U.efd = eventfd(0, EFD_CLOEXEC);
	if (U.efd < 0)
		return -errno;
	ret = io_uring_queue_init(RING_ENTRIES, &U.ring, 0);
	if (ret) {
		close(U.efd);
		U.efd = -1;
		return ret;
	}
	ret = -pthread_create(&U.thr, NULL, ring_main, NULL);
	if (ret) {
		io_uring_queue_exit(&U.ring);
		close(U.efd);
		U.efd = -1;
		return ret;
	}
	U.on = true;
	return 0;
}

/* After every request was answered: end the ring thread. */
static void ring_stop(void)
{
	if (!U.on)
		return;
	pthread_mutex_lock(&U.lock);
	U.stop = true;
	pthread_mutex_unlock(&U.lock);
	ring_wake();
	pthread_join(U.thr, NULL);
	io_uring_queue_exit(&U.ring);
	close(U.efd);
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&S.qlock);
	for (;;) {
		struct job *j;
		int ret = -EINVAL;

		while (!S.head && !S.stop)
			pthread_cond_wait(&S.qcond, &S.qlock);
		if (!S.head)
			break;
		j = S.head;
		S.head = j->next;
		if (!S.head)
			S.tail = &S.head;
		pthread_mutex_unlock(&S.qlock);
		switch (rnbd_proto_type(j->usr, j->usrlen)) {
		case RNBD_MSG_OPEN:
			ret = do_open(j->ss, j->usr, j->usrlen, j->data, j->len,
				      rtrs_srv_op_dir(j->op));
			break;
		case RNBD_MSG_CLOSE:
			ret = do_close(j->ss, j->usr, j->usrlen);
			break;
		case RNBD_MSG_LIST:
			ret = do_list(j->usr, j->usrlen, j->data, j->len,
				      rtrs_srv_op_dir(j->op));
			break;
		case RNBD_MSG_IO:       /* checked by rdma_ev */
			ret = io_exec(&j->q, j->data);
			break;
		}
		rtrs_srv_resp(j->op, ret);
		free(j);
		pthread_mutex_lock(&S.qlock);
	}
	pthread_mutex_unlock(&S.qlock);
	return NULL;
}

static struct job *job_new(struct rtrs_srv_op *op, void *data, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j) {
		j->op = op;
		j->data = data;
		j->len = len;
	}
	return j;
}

static void work_queue(struct job *j)
{
	pthread_mutex_lock(&S.qlock);
	*S.tail = j;
	S.tail = &j->next;
	pthread_cond_signal(&S.qcond);
	pthread_mutex_unlock(&S.qlock);
}

static int rdma_ev(void *sess_priv, struct rtrs_srv_op *op, void *data,
		   size_t datalen, const void *usr, size_t usrlen)
{
	struct ssess *ss = sess_priv;
	struct io_req q = { 0 };
	struct job *j;
	uint8_t ver;

	if (!ss)
		return -ENOTCONN;
	switch (rnbd_proto_type(usr, usrlen)) {
	case RNBD_MSG_SESS_INFO:
		if (rnbd_proto_sess_info_decode(usr, usrlen, RNBD_MSG_SESS_INFO,
						&ver) ||
		    rtrs_srv_op_dir(op) != RTRS_READ ||
		    datalen < RNBD_SESS_INFO_RSP_LEN)
			return -EINVAL;
		memset(data, 0, datalen);
		rnbd_proto_sess_info_encode(data, RNBD_MSG_SESS_INFO_RSP,
					    ver < RNBD_PROTO_VER_MAJOR
						    ? ver : RNBD_PROTO_VER_MAJOR);
		rtrs_srv_resp(op, 0);
		return 0;
	case RNBD_MSG_IO: {
		uint32_t done = 0;
		int ret = io_check(ss, usr, usrlen, datalen,
				   rtrs_srv_op_dir(op), &q);

		if (ret)
			return ret;
		if (q.op != RNBD_OP_READ && q.op != RNBD_OP_WRITE &&
		    q.op != RNBD_OP_FLUSH)
			break;          /* to the workers, checked */
		if (q.e->mem) {         /* memory: done here and now */
			struct rtrs_srv_mr *mr = atomic_load_explicit(
				&q.e->mr, memory_order_acquire);

			if (mr && q.op == RNBD_OP_READ &&
			    !(q.rw & RNBD_F_PREFLUSH) &&
			    q.off + q.len <= q.e->map_len &&
			    export_holds(q.e, q.off + q.len)) {
				int r = rtrs_srv_resp_buf(op, mr,
							  q.e->map + q.off);

				/* answered, or its path is gone (finished
				 * all the same): never answer twice */
				if (r != -EINVAL && r != -EOPNOTSUPP)
					return 0;
			}
			rtrs_srv_resp(op, io_exec(&q, data));
			return 0;
		}
		ret = io_try_nowait(&q, data, &done);
		if (ret <= 0) {
			rtrs_srv_resp(op, ret);
			return 0;
		}
		if (!U.on)
			break;
		j = job_new(op, data, datalen);
		if (!j)
			return -ENOMEM;
		j->q = q;
		j->done = done;
		j->preflush = q.op != RNBD_OP_FLUSH && (q.rw & RNBD_F_PREFLUSH);
		ring_queue(j);
		return 0;
	}
	case RNBD_MSG_OPEN:
	case RNBD_MSG_CLOSE:
	case RNBD_MSG_LIST:
		if (usrlen > sizeof(j->usr))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	/* the workers: OPEN, CLOSE, LIST, and checked IO (io_check took
	 * exactly RNBD_IO_LEN bytes of header) */
	j = job_new(op, data, datalen);
	if (!j)
		return -ENOMEM;
	j->ss = ss;
	j->q = q;
	j->usrlen = usrlen;
	memcpy(j->usr, usr, usrlen);
	work_queue(j);
	return 0;
}

static int link_ev(struct rtrs_srv_sess *sess, enum rtrs_srv_link_ev ev,
		   void *priv)
{
	struct ssess *ss, **pp;

	if (ev == RTRS_SRV_LINK_EV_CONNECTED) {
		(void)priv;
		ss = calloc(1, sizeof(*ss));
		if (!ss)
			return -ENOMEM;
		pthread_mutex_init(&ss->lock, NULL);
		rtrs_srv_get_sess_name(sess, ss->name, sizeof(ss->name));
		if (rtrs_srv_sess_identity(sess, ss->identity,
					   sizeof(ss->identity)))
			ss->identity[0] = 0;
		ss->sess = sess;
		pthread_mutex_lock(&S.lock);
		for (pp = &S.sessions; *pp; pp = &(*pp)->next)
			;
		*pp = ss;
		pthread_mutex_unlock(&S.lock);
		rtrs_srv_set_sess_priv(sess, ss);
		fprintf(stderr, "rnbd-server: session %s connected\n", ss->name);
		return 0;
	}
	ss = priv;
	if (!ss)
		return 0;
	/* every op of the session has been answered: close its devices */
	pthread_mutex_lock(&S.lock);
	for (pp = &S.sessions; *pp; pp = &(*pp)->next)
		if (*pp == ss) {
			*pp = ss->next;
			break;
		}
	for (uint32_t i = 0; i < ss->ndevs; i++)
		if (ss->devs[i].used)
			dev_release(&ss->devs[i]);
	pthread_mutex_unlock(&S.lock);
	fprintf(stderr, "rnbd-server: session %s disconnected\n", ss->name);
	pthread_mutex_destroy(&ss->lock);
	free(ss->devs);
	free(ss);
	return 0;
}

/* ---- control socket (--ctl PATH; rnbd-server(8) CONTROL) ----
 *
 * The kernel's rnbd-server sysfs for user space: which devices are open,
 * by which sessions, in which mode; force-closing a device of a session
 * or a whole session. One thread accepts on a Unix socket (mode 0600,
 * peers of our user or root), reads one line and answers, as librtrs's
 * own control socket (rtrsctl(8)):
 *
 *   request: "<text|json> <list|close-device SESSION EXPORT|
 *             close-session SESSION>\n"
 *   answer:  "status <0 or -errno>\n" and the body
 */
#define CTL_LINE_MAX 1024

static struct {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	pthread_t thr;
	atomic_bool stop;
	bool on;
} K = { .lfd = -1 };

static const char *mode_name(uint8_t mode)
{
	return mode == 0 ? "ro" : mode == 1 ? "rw" : "migration";
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The name a client opens @e by, and the file it is. */
static void export_names(const struct export *e, const char **name,
			 char *path, size_t len)
{
	if (e->name[0]) {
		*name = e->name;
		snprintf(path, len, "%s", e->path);
	} else {
		*name = e->path;        /* relative to the export dir */
		snprintf(path, len, "%s/%s", S.dir_real, e->path);
	}
}

static int ctl_list(FILE *f, bool json)
{
	pthread_mutex_lock(&S.lock);
	if (json)
		fprintf(f, "{\"sessions\":[");
	for (struct ssess *ss = S.sessions; ss; ss = ss->next) {
		struct rtrs_srv_sess_stats st = { 0 };
		bool first = true;

		rtrs_srv_sess_get_stats(ss->sess, &st);
		if (json) {
			fprintf(f, "%s{\"name\":", ss == S.sessions ? "" : ",");
			json_str(f, ss->name);
			fprintf(f, ",\"paths\":%u,\"paths_connected\":%u,"
				"\"devices\":[", st.paths, st.paths_connected);
		} else {
			fprintf(f, "session %s paths %u/%u\n", ss->name,
				st.paths_connected, st.paths);
		}
		pthread_mutex_lock(&ss->lock);
		for (uint32_t i = 0; i < ss->ndevs; i++) {
			const struct sdev *d = &ss->devs[i];
			char path[2 * PATH_MAX + 2];
			const char *name;

			if (!d->used)
				continue;
			export_names(d->e, &name, path, sizeof(path));
			if (json) {
				fprintf(f, "%s{\"id\":%u,\"export\":",
					first ? "" : ",", i);
				json_str(f, name);
				fprintf(f, ",\"path\":");
				json_str(f, path);
				fprintf(f, ",\"mode\":\"%s\"}", mode_name(d->mode));
			} else {
				fprintf(f, "  device %u %s %s %s\n", i, name,
					mode_name(d->mode), path);
			}
			first = false;
		}
		pthread_mutex_unlock(&ss->lock);
		if (json)
			fprintf(f, "]}");
	}
	if (json)
		fprintf(f, "]}\n");
	pthread_mutex_unlock(&S.lock);
	return 0;
}

/* Force-close the devices of session @sess (those of export @exp, or all
 * with NULL): their writers are released at once, the client's IO on them
 * gets -ENODEV. How many, or -ENOENT (no such session or device). */
static int ctl_close_devs(const char *sess, const char *exp)
{
	struct ssess *ss;
	int n = 0;

	pthread_mutex_lock(&S.lock);
	for (ss = S.sessions; ss && strcmp(ss->name, sess); ss = ss->next)
		;
	if (ss) {
		pthread_mutex_lock(&ss->lock);
		for (uint32_t i = 0; i < ss->ndevs; i++) {
			struct sdev *d = &ss->devs[i];
			char path[2 * PATH_MAX + 2];
			const char *name;

			if (!d->used)
				continue;
			export_names(d->e, &name, path, sizeof(path));
			if (exp && strcmp(exp, name))
				continue;
			dev_release(d);
			d->forced = true;
			n++;
			fprintf(stderr, "rnbd-server: session %s: device %u "
				"closed by the control socket\n", ss->name, i);
		}
		pthread_mutex_unlock(&ss->lock);
	}
	pthread_mutex_unlock(&S.lock);
	return ss && (n || !exp) ? n : -ENOENT;
}

/* close-session: its devices, then its paths (rtrs_srv_close_sess()). */
static int ctl_close_sess(const char *sess)
{
	struct rtrs_srv_ctx *ctx;
	int ret = ctl_close_devs(sess, NULL);

	if (ret < 0)
		return ret;
	pthread_mutex_lock(&S.lock);
	ctx = S.ctx;
	pthread_mutex_unlock(&S.lock);
	if (!ctx)
		return -ENOENT;
	ret = rtrs_srv_close_sess(ctx, sess);
	if (ret)
		return ret;
	fprintf(stderr, "rnbd-server: session %s: paths closed by the "
		"control socket\n", sess);
	return 0;
}

static int ctl_run(FILE *f, char *line)
{
	char *argv[5], *save = NULL;
	int argc = 0, ret;
	bool json;

	for (char *t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == 5)
			return -EINVAL;
		argv[argc++] = t;
	}
	if (argc < 2 || (strcmp(argv[0], "text") && strcmp(argv[0], "json")))
		return -EINVAL;
	json = !strcmp(argv[0], "json");
	if (!strcmp(argv[1], "list") && argc == 2)
		return ctl_list(f, json);
	if (!strcmp(argv[1], "close-device") && argc == 4) {
		ret = ctl_close_devs(argv[2], argv[3]);
		return ret < 0 ? ret : 0;
	}
	if (!strcmp(argv[1], "close-session") && argc == 3)
		return ctl_close_sess(argv[2]);
	return -EINVAL;
}

static void ctl_serve(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	char line[CTL_LINE_MAX], *body = NULL, hdr[32];
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	size_t n = 0, blen = 0;
	FILE *f;
	int ret;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
	    (cr.uid != geteuid() && cr.uid != 0))
		return;
	while (n + 1 < sizeof(line) && !memchr(line, '\n', n)) {
		ssize_t r;

		if (poll(&pf, 1, 2000) <= 0)
			return;
		r = read(fd, line + n, sizeof(line) - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
	}
	line[n] = 0;
	f = open_memstream(&body, &blen);
	if (!f)
		return;
	ret = ctl_run(f, line);
	fclose(f);
	n = (size_t)snprintf(hdr, sizeof(hdr), "status %d\n", ret);
	if (send(fd, hdr, n, MSG_NOSIGNAL) == (ssize_t)n && blen)
		(void)!send(fd, body, blen, MSG_NOSIGNAL);
	free(body);
}

static void *ctl_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&K.stop)) {
		struct pollfd pf = { .fd = K.lfd, .events = POLLIN };
		int fd;

		if (poll(&pf, 1, 200) <= 0)
			continue;
		fd = accept4(K.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		ctl_serve(fd);
		close(fd);
	}
	return NULL;
}

static int ctl_start(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t um;
	int ret;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
	    sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	K.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (K.lfd < 0)
		return -errno;
	um = umask(0077);
	ret = bind(K.lfd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(um);
	if (!ret && listen(K.lfd, 16))
		ret = -errno;
	if (!ret) {
		snprintf(K.path, sizeof(K.path), "%s", path);
		ret = -pthread_create(&K.thr, NULL, ctl_main, NULL);
		if (ret)
			unlink(K.path);
	}
	if (ret) {
		close(K.lfd);
		K.lfd = -1;
		return ret;
	}
	K.on = true;
	return 0;
}

static void ctl_stop(void)
{
	if (!K.on)
		return;
	atomic_store(&K.stop, true);
	pthread_join(K.thr, NULL);
	close(K.lfd);
	unlink(K.path);
}

/* rnbd-server --ctl PATH [--json] COMMAND...: the client side. Exit
 * status 0, 1 (the command failed), 2 (no server there). */
static int ctl_client(const char *path, bool json, int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[CTL_LINE_MAX], buf[65536];
	size_t n = 0, len;
	int fd, st;
	ssize_t r;
	char *nl;

	len = (size_t)snprintf(req, sizeof(req), "%s", json ? "json" : "text");
	for (int i = 0; i < argc && len < sizeof(req); i++)
		len += (size_t)snprintf(req + len, sizeof(req) - len, " %s",
					argv[i]);
	if (len + 1 >= sizeof(req) ||
	    (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
	    sizeof(sa.sun_path)) {
		fprintf(stderr, "rnbd-server: request too long\n");
		return 2;
	}
	req[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		fprintf(stderr, "rnbd-server: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	while (n + 1 < sizeof(buf) &&
	       ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0 ||
		(r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	close(fd);
	buf[n] = 0;
	nl = strchr(buf, '\n');
	if (!nl || sscanf(buf, "status %d", &st) != 1) {
		fprintf(stderr, "rnbd-server: %s: no answer\n", path);
		return 2;
	}
	fputs(nl + 1, stdout);
	if (st) {
		fprintf(stderr, "rnbd-server: %s: %s\n", argv[0], strerror(-st));
		return 1;
	}
	return 0;
}

/* ---- configuration ---- */

static char *listen_spec;
static char *key_file;


/* "on" or "off" into @flag; -EINVAL otherwise. */
static int on_off(const char *val, bool *flag)
{
	if (strcmp(val, "on") && strcmp(val, "off"))
		return -EINVAL;
	*flag = !strcmp(val, "on");
	return 0;
}

static int config_line(char *line, const char *where)
{
	char *key = strtok(line, " \t\r\n"), *val = strtok(NULL, " \t\r\n");
	int ret = 0;

	if (!key || key[0] == '#')
		return 0;
	if (!val) {
		fprintf(stderr, "rnbd-server: %s: '%s' needs a value\n", where, key);
		return -EINVAL;
	}
	if (!strcmp(key, "listen")) {
		free(listen_spec);
		listen_spec = strdup(val);
	} else if (!strcmp(key, "export")) {
		ret = export_add(val);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: export %s: %s\n", where,
				val, strerror(-ret));
	} else if (!strcmp(key, "key-file")) {
		free(key_file);
		key_file = strdup(val);
	} else if (!strcmp(key, "acl")) {
		ret = acl_add(val);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: acl %s: not "
				"NAME=ID[:ro|:rw][,ID[:ro|:rw]]...\n", where, val);
	} else if (!strcmp(key, "export-dir")) {
		if (S.dirfd >= 0)
			close(S.dirfd);
		S.dirfd = open(val, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (S.dirfd >= 0 && !realpath(val, S.dir_real)) {
			close(S.dirfd);
			S.dirfd = -1;
		}
		if (S.dirfd < 0) {
			ret = -errno;
			fprintf(stderr, "rnbd-server: %s: %s: %s\n", where, val,
				strerror(errno));
		}
	} else if (!strcmp(key, "direct") || !strcmp(key, "zero-copy")) {
		ret = on_off(val, key[0] == 'd' ? &S.direct : &S.zero_copy);
		if (ret)
			fprintf(stderr, "rnbd-server: %s: %s is on or off, not '%s'\n",
				where, key, val);
	} else if (!strcmp(key, "threads")) {
		S.nthreads = (unsigned)atoi(val);
		if (!S.nthreads || S.nthreads > MAX_THREADS) {
			fprintf(stderr, "rnbd-server: %s: threads is 1..%d, not '%s'\n",
				where, MAX_THREADS, val);
			ret = -EINVAL;
		}
	} else {
		fprintf(stderr, "rnbd-server: %s: unknown key '%s'\n", where, key);
		ret = -EINVAL;
	}
	return ret;
}

static int config_file(const char *file)
{
	char line[PATH_MAX + 64], where[PATH_MAX + 32];
	FILE *f = fopen(file, "re");
	int n = 0, ret = 0;

	if (!f) {
		fprintf(stderr, "rnbd-server: %s: %s\n", file, strerror(errno));
		return -errno;
	}
	while (!ret && fgets(line, sizeof(line), f)) {
		snprintf(where, sizeof(where), "%s:%d", file, ++n);
		ret = config_line(line, where);
	}
	fclose(f);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rnbd-server --listen ADDR:PORT[,...] [--export NAME=PATH[:ro]]...\n"
		"                   [--export-dir DIR] [--config FILE] [--threads N]\n"
		"                   [--provider P] [--no-uring] [--no-direct]\n"
		"                   [--no-zero-copy] [--always-invalidate 0|1]\n"
		"                   [--ctl SOCKET] [--handshake-timeout MS]\n"
		"                   [--max-sessions N] [--max-paths N]\n"
		"                   [--max-conns N] [--max-pending N]\n"
		"                   [--key-file FILE] [--acl NAME=ID[:ro|:rw][,...]]...\n"
		"       rnbd-server --ctl SOCKET [--json] list | close-device SESSION EXPORT\n"
		"                                     | close-session SESSION\n"
		"       rnbd-server --help | --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "export", required_argument, NULL, 'e' },
		{ "export-dir", required_argument, NULL, 'd' },
		{ "config", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "provider", required_argument, NULL, 'p' },
		{ "no-uring", no_argument, NULL, 'U' },
		{ "no-direct", no_argument, NULL, 'D' },
		{ "no-zero-copy", no_argument, NULL, 'Z' },
		{ "always-invalidate", required_argument, NULL, 'I' },
		{ "ctl", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		/* the listener's limits, rtrs_srv_set_limits(3) */
		{ "handshake-timeout", required_argument, NULL, 300 },
		{ "max-sessions", required_argument, NULL, 301 },
		{ "max-paths", required_argument, NULL, 302 },
		{ "max-conns", required_argument, NULL, 303 },
		{ "max-pending", required_argument, NULL, 304 },
		{ "key-file", required_argument, NULL, 305 },
		{ "acl", required_argument, NULL, 306 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool uring = true, json = false;
	const char *ctl = NULL;
	struct rtrs_srv_attr attr;
	struct rtrs_srv_limits lim;
	struct rtrs_srv_ctx *ctx;
	char *addrs[16], *save = NULL, line[PATH_MAX + 32];
	size_t n = 0;
	int c, ret;

	rtrs_srv_attr_init(&attr);
	rtrs_srv_limits_init(&lim);
	S.tail = &S.head;
	while ((c = getopt_long(argc, argv, "l:e:d:c:t:p:I:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'l': snprintf(line, sizeof(line), "listen %s", optarg); break;
		case 'e': snprintf(line, sizeof(line), "export %s", optarg); break;
		case 'd': snprintf(line, sizeof(line), "export-dir %s", optarg); break;
		case 't': snprintf(line, sizeof(line), "threads %s", optarg); break;
		case 'c':
			if (config_file(optarg))
				return 2;
			continue;
		case 'p': attr.provider = optarg; continue;
		case 'U': uring = false; continue;
		case 'D': snprintf(line, sizeof(line), "direct off"); break;
		case 'Z': snprintf(line, sizeof(line), "zero-copy off"); break;
		case 'I':
			if (strcmp(optarg, "0") && strcmp(optarg, "1")) {
				usage(stderr);
				return 2;
			}
			attr.always_invalidate = optarg[0] == '1';
			continue;
		case 'C': ctl = optarg; continue;
		case 'j': json = true; continue;
		case 300: case 301: case 302: case 303: case 304: {
			unsigned int *f[] = { &lim.handshake_ms, &lim.max_sessions,
					      &lim.max_paths, &lim.max_conns,
					      &lim.max_pending };
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || v > UINT_MAX) {
				usage(stderr);
				return 2;
			}
			*f[c - 300] = (unsigned int)v;
			continue;
		}
		case 305: snprintf(line, sizeof(line), "key-file %s", optarg); break;
		case 306: snprintf(line, sizeof(line), "acl %s", optarg); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rnbd-server %s\n", RTRS_VERSION_STRING); return 0;
		default: usage(stderr); return 2;
		}
		if (config_line(line, "command line"))
			return 2;
	}
	if (ctl && optind < argc && !listen_spec)
		return ctl_client(ctl, json, argc - optind, argv + optind);
	if (!listen_spec || (!S.exports && S.dirfd < 0) || optind < argc) {
		usage(stderr);
		return 2;
	}
	if (acls && !key_file) {
		fprintf(stderr, "rnbd-server: --acl needs --key-file: without "
			"keys no client has an identity\n");
		return 2;
	}
	for (struct export *e = S.exports; e; e = e->next)
		export_io_setup(e);
	for (char *t = strtok_r(listen_spec, ",", &save); t && n < 16;
	     t = strtok_r(NULL, ",", &save))
		addrs[n++] = t;
	for (unsigned i = 0; i < S.nthreads; i++)
		pthread_create(&S.threads[i], NULL, worker, NULL);
	if (uring && (ret = ring_start()))
		fprintf(stderr, "rnbd-server: no io_uring (%s): worker threads "
			"serve all IO\n", strerror(-ret));
	attr.ops.rdma_ev = rdma_ev;
	attr.ops.link_ev = link_ev;
	/* a client's session is gone for good when its paths are: the
	 * devices it opened go with it */
	{
		struct rtrs_auth auth = { sizeof(auth), key_file, NULL };

		ret = rtrs_srv_open_auth((const char *const *)addrs, n, &attr,
					 key_file ? &auth : NULL, &ctx);
	}
	if (ret) {
		fprintf(stderr, "rnbd-server: %s\n", rtrs_strerror(ret));
		return 2;
	}
	ret = rtrs_srv_set_limits(ctx, &lim);
	if (ret) {
		fprintf(stderr, "rnbd-server: limits: %s\n", rtrs_strerror(ret));
		rtrs_srv_close(ctx);
		return 2;
	}
	pthread_mutex_lock(&S.lock);
	S.ctx = ctx;
	/* a memory export's pages change (discard punches them out): a
	 * provider that sends from the pages pinned at registration would
	 * send stale data */
	S.zero_copy = S.zero_copy && !attr.always_invalidate &&
		      rtrs_srv_mr_pins(ctx) == 0;
	for (struct export *e = S.exports; e; e = e->next) {
		export_map(e);
		printf("export %s io=%s%s\n", e->name,
		       e->mem ? "memory" : e->dfd >= 0 ? "direct" : "page-cache",
		       atomic_load(&e->mr) ? " zero-copy" : "");
	}
	pthread_mutex_unlock(&S.lock);
	if (ctl && (ret = ctl_start(ctl))) {
		fprintf(stderr, "rnbd-server: --ctl %s: %s\n", ctl, strerror(-ret));
		rtrs_srv_close(ctx);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		char a[160];

		if (!rtrs_srv_get_listen_addr(ctx, i, a, sizeof(a)))
			printf("listening %s\n", a);
	}
	fflush(stdout);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	while (!stop_sig)
		usleep(50 * 1000);
	fprintf(stderr, "rnbd-server: shutting down\n");
	ctl_stop();
	/* stops accepting, closes the sessions, waits for every answer: the
	 * workers still run */
	rtrs_srv_close(ctx);
	pthread_mutex_lock(&S.qlock);
	S.stop = true;
	pthread_cond_broadcast(&S.qcond);
	pthread_mutex_unlock(&S.qlock);
	for (unsigned i = 0; i < S.nthreads; i++)
		pthread_join(S.threads[i], NULL);
	ring_stop();
	while (S.exports) {
		struct export *e = S.exports;

		S.exports = e->next;
		if (atomic_load(&e->mr)) {
			rtrs_srv_mr_dereg(atomic_load(&e->mr));
			munmap((void *)e->map, e->map_len);
		}
		close(e->fd);
		if (e->dfd >= 0)
			close(e->dfd);
		free(e);
	}
	if (S.dirfd >= 0)
		close(S.dirfd);
	free(listen_spec);
	free(key_file);
	while (acls) {
		struct acl *a = acls;

		acls = a->next;
		free(a);
	}
	return 0;
}
