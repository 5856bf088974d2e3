// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The rnbd server's exports: the table filled from the configuration
 * (--export, --export-dir, --acl), resolving a client's name beneath the
 * export dir, opening and sizing files and block devices, how each one's
 * IO is done (memory, O_DIRECT, page cache), zero-copy mappings, and the
 * writers counted per file for the access modes. Nothing here knows
 * sessions or requests.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "srv_int.h"

/* In a function called with the server's lock held: assert it, once
 * there is a server (x->lock; before it one thread fills the table). */
#define ASSERT_SRV_LOCKED(x)                                                 \
	do {                                                                 \
		if ((x)->lock)                                               \
			RTRS_ASSERT_HELD((x)->lock);                         \
	} while (0)

int rnbd_exports_create(struct rnbd_exports **out)
{
	struct rnbd_exports *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->dirfd = -1;
	x->direct = true;
	x->zero_copy = true;
	*out = x;
	return 0;
}

void rnbd_exports_destroy(struct rnbd_exports *x)
{
	if (!x)
		return;
	while (x->list) {
		struct export *e = x->list;

		x->list = e->next;
		if (atomic_load(&e->mr)) {
			rtrs_srv_mr_dereg(atomic_load(&e->mr));
			munmap((void *)e->map, e->map_len);
		}
		close(e->fd);
		if (e->dfd >= 0)
			close(e->dfd);
		free(e);
	}
	if (x->dirfd >= 0)
		close(x->dirfd);
	while (x->acls) {
		struct acl *a = x->acls;

		x->acls = a->next;
		free(a);
	}
	free(x);
}

bool rnbd_exports_empty(const struct rnbd_exports *x)
{
	return !x->list && x->dirfd < 0;
}

bool rnbd_exports_has_acl(const struct rnbd_exports *x)
{
	return x->acls != NULL;
}

int rnbd_exports_set_dir(struct rnbd_exports *x, const char *dir)
{
	if (x->dirfd >= 0)
		close(x->dirfd);
	x->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (x->dirfd >= 0 && !realpath(dir, x->dir_real)) {
		close(x->dirfd);
		x->dirfd = -1;
	}
	return x->dirfd < 0 ? -errno : 0;
}

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
uint64_t rnbd__export_size(struct export *e)
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
void rnbd__export_io_setup(struct rnbd_exports *x, struct export *e)
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
	if (!x->direct)
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
int rnbd__export_fd(const struct export *e, uint64_t off, uint64_t len,
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
 * listeners (x->ctx); without it, or if mapping or registering fails, READs
 * are copied as before. The server itself never touches the mapping: if
 * the file shrinks under it, sending from the lost pages fails with EFAULT
 * in the kernel and closes that connection, no signal. So each READ first
 * checks that the file still holds it (rnbd__io_check() refuses one past a
 * shrunk end with -EINVAL, rnbd__export_holds() checks again right before
 * the send). Only a shrink between that check and the send fails the
 * connection. The mapping keeps its size: a part the file grew by later
 * is copied.
 */
void rnbd__export_map(struct rnbd_exports *x, struct export *e)
{
	uint64_t size = e->size;
	struct rtrs_srv_mr *mr;
	void *m;
	int ret;

	ASSERT_SRV_LOCKED(x);
	if (!e->mem || !x->zero_copy || !x->ctx || !size || size > SIZE_MAX ||
	    atomic_load(&e->mr))
		return;
	/* the size now: a part the file grows by later is copied (rdma_ev) */
	m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, e->fd, 0);
	if (m == MAP_FAILED) {
		fprintf(stderr, "rnbd-server: %s: mmap: %s; READs are copied\n",
			e->path, strerror(errno));
		return;
	}
	ret = rtrs_srv_mr_reg(x->ctx, m, (size_t)size, &mr);
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
bool rnbd__export_holds(const struct export *e, uint64_t end)
{
	struct stat st;

	return !fstat(e->fd, &st) && (uint64_t)st.st_size >= end;
}

/* Is @fd a file below the export directory? */
static bool fd_beneath(const struct rnbd_exports *x, int fd)
{
	char link[64], real[PATH_MAX];
	size_t n = strlen(x->dir_real);
	ssize_t r;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	r = readlink(link, real, sizeof(real) - 1);
	if (r < 0)
		return false;
	real[r] = 0;
	return !strncmp(real, x->dir_real, n) && real[n] == '/';
}

/* Open @path of an export (through the page cache for now). */
static int export_open_fd(const struct rnbd_exports *x, int dirfd,
			  const char *path, bool ro, bool beneath)
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
		if (fd >= 0 && beneath && !fd_beneath(x, (int)fd)) {
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

int rnbd_exports_add(struct rnbd_exports *x, const char *spec)
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
	ret = export_open_fd(x, AT_FDCWD, e->path, e->ro, false);
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
	e->dfd = -1;                    /* rnbd__export_io_setup() once configured */
	e->next = x->list;
	x->list = e;
	return 0;
}

int rnbd__export_name_check(const char *name)
{
	const char *p;

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
	return 0;
}

/* A name asked for by a client: a named export, else a file under the
 * export directory that stays beneath it. Called with srv->lock held. */
int rnbd__export_find(struct rnbd_exports *x, const char *name,
		      struct export **out)
{
	struct export *e, tmp = { 0 };
	int fd, ret;

	ASSERT_SRV_LOCKED(x);
	for (e = x->list; e; e = e->next)
		if (e->name[0] && !strcmp(e->name, name)) {
			*out = e;
			return 0;
		}
	if (x->dirfd < 0)
		return -ENOENT;
	ret = rnbd__export_name_check(name);
	if (ret)
		return ret;
	/* writable if the file allows it; read-only otherwise */
	fd = export_open_fd(x, x->dirfd, name, false, true);
	if (fd == -EACCES || fd == -EROFS || fd == -EPERM) {
		tmp.ro = true;
		fd = export_open_fd(x, x->dirfd, name, true, true);
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
	for (e = x->list; e; e = e->next)
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
	rnbd__export_io_setup(x, e);
	rnbd__export_map(x, e);
	e->next = x->list;
	x->list = e;
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
 * modes count these, not one name's. Called with srv->lock held.
 */
unsigned rnbd__export_writers(const struct rnbd_exports *x,
			      const struct export *e)
{
	unsigned n = 0;

	ASSERT_SRV_LOCKED(x);
	for (const struct export *o = x->list; o; o = o->next)
		if (same_file(o, e))
			n += o->writers;
	return n;
}

void rnbd__export_put(struct export *e, uint8_t mode)
{
	if (mode && e->writers)
		e->writers--;
}

/*
 * Access lists (--acl NAME=ID[:ro|:rw][,...]): an export name with any
 * entry may be opened only by the identities listed, for writing only by
 * those with :rw (the default). Names without entries are open to every
 * client, as before.
 */
int rnbd_exports_acl_add(struct rnbd_exports *x, const char *spec)
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
		a->next = x->acls;
		x->acls = a;
	}
	return 0;
}

/* 0, or -EACCES: @id may not open @name (for writing: @mode != 0) */
int rnbd__export_acl_check(const struct rnbd_exports *x, const char *name,
			   const char *id, uint8_t mode)
{
	bool listed = false;

	for (const struct acl *a = x->acls; a; a = a->next) {
		if (strcmp(a->export, name))
			continue;
		listed = true;
		if (id[0] && !strcmp(a->id, id) && (a->rw || !mode))
			return 0;
	}
	return listed ? -EACCES : 0;
}

/* The name a client opens @e by, and the file it is. */
void rnbd__export_names(const struct rnbd_exports *x, const struct export *e,
			const char **name, char *path, size_t len)
{
	if (e->name[0]) {
		*name = e->name;
		snprintf(path, len, "%s", e->path);
	} else {
		*name = e->path;        /* relative to the export dir */
		snprintf(path, len, "%s/%s", x->dir_real, e->path);
	}
}

/* LIST (ours): the named exports. Called with srv->lock held. */
int rnbd__export_list_named(const struct rnbd_exports *x, void *data,
			    size_t datalen)
{
	int ret = 0;

	ASSERT_SRV_LOCKED(x);
	for (struct export *e = x->list; e && !ret; e = e->next)
		if (e->name[0])
			ret = rnbd_proto_list_rsp_add(data, datalen, e->name,
						      e->ro ? RNBD_LIST_F_RO : 0);
	return ret;
}

/* LIST (ours): the files of the export dir, after the named exports. */
int rnbd__export_list_dir(const struct rnbd_exports *x, void *data,
			  size_t datalen)
{
	int fd, ret = 0;
	struct dirent *de;
	DIR *d;

	if (x->dirfd < 0)
		return 0;
	fd = openat(x->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
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
	return ret;
}
