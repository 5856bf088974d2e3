// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The rnbd server over the public librtrs API (docs/rnbd-protocol.md):
 * sessions and the devices they open, OPEN/CLOSE/LIST/IO, and the
 * server's life (rnbd_srv_create(), rnbd_srv_destroy()).
 *
 * rdma_ev runs on librtrs's progress threads and must not block: it checks
 * every IO there, then READ, WRITE and FLUSH go to the io_uring thread
 * (srv_io.c), straight from and into the librtrs chunk (O_DIRECT where the
 * file system takes it); OPEN, CLOSE, LIST, DISCARD and WRITE_ZEROES (and
 * everything without io_uring) to a pool of worker threads (util/workq.c).
 * Two exceptions run on the progress thread, as neither waits for a
 * device: the IO of a tmpfs/ramfs export, and a READ that RWF_NOWAIT finds
 * in the page cache.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_int.h"

/* Find or make the device of @name in @ss for OPEN. Called with srv->lock
 * and ss->lock held. The device id, or -EPERM (the access modes), -ENOMEM. */
static int dev_get(struct ssess *ss, struct export *e, uint8_t mode,
		   const char *name)
{
	uint32_t id;
	unsigned w;

	RTRS_ASSERT_HELD(&ss->srv->lock);
	RTRS_ASSERT_HELD(&ss->lock);
	/* the same name again in this session: the same device (remap) */
	for (id = 0; id < ss->ndevs; id++)
		if (ss->devs[id].used && ss->devs[id].e == e &&
		    ss->devs[id].mode == mode && !strcmp(ss->devs[id].name, name))
			return (int)id;
	w = rnbd__export_writers(ss->srv->x, e);
	/* one writer, or two for migration, per file */
	if ((mode == 1 && w) || (mode == 2 && w >= 2))
		return -EPERM;
	for (id = 0; id < ss->ndevs && (ss->devs[id].used || ss->devs[id].forced);
	     id++)
		;
	if (id == ss->ndevs) {
		struct sdev *nd = realloc(ss->devs, (ss->ndevs + 8) * sizeof(*nd));

		if (!nd)
			return -ENOMEM;
		memset(nd + ss->ndevs, 0, 8 * sizeof(*nd));
		ss->devs = nd;
		ss->ndevs += 8;
	}
	ss->devs[id] = (struct sdev){ e, mode, true, false, "" };
	snprintf(ss->devs[id].name, sizeof(ss->devs[id].name), "%s", name);
	if (mode)
		e->writers++;
	return (int)id;
}

static int do_open(struct ssess *ss, const uint8_t *usr, size_t usrlen,
		   void *data, size_t datalen, enum rtrs_dir dir)
{
	struct rnbd_srv *srv = ss->srv;
	char name[RNBD_NAME_MAX + 1];
	struct rnbd_open_rsp r = { 0 };
	struct export *e = NULL;
	uint8_t mode;
	int ret;

	if (rnbd_proto_open_decode(usr, usrlen, &mode, name))
		return -EINVAL;
	if (dir != RTRS_READ || datalen < RNBD_OPEN_RSP_LEN)
		return -EINVAL;
	/* the access list first: an identity not on it learns nothing */
	ret = rnbd__export_acl_check(srv->x, name, ss->identity, mode);
	if (ret)
		return ret;
	rtrs__lock(&srv->lock);
	ret = rnbd__export_find(srv->x, name, &e);
	if (!ret && mode && e->ro)
		ret = -EROFS;
	rtrs__lock(&ss->lock);
	if (!ret)
		ret = dev_get(ss, e, mode, name);
	rtrs__unlock(&ss->lock);
	rtrs__unlock(&srv->lock);
	if (ret < 0)
		return ret;
	r.device_id = (uint32_t)ret;
	r.nsectors = rnbd__export_size(e) >> 9;  /* the size now: it may change */
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
		r.device_id);
	return 0;
}

/* LIST (ours): the named exports, then the files of the export dir. */
static int do_list(struct rnbd_srv *srv, const uint8_t *usr, size_t usrlen,
		   void *data, size_t datalen, enum rtrs_dir dir)
{
	int ret;

	if (rnbd_proto_list_decode(usr, usrlen) || dir != RTRS_READ ||
	    datalen < RNBD_LIST_RSP_HDR)
		return -EINVAL;
	memset(data, 0, datalen);
	rnbd_proto_list_rsp_init(data);
	rtrs__lock(&srv->lock);
	ret = rnbd__export_list_named(srv->x, data, datalen);
	rtrs__unlock(&srv->lock);
	if (!ret)
		ret = rnbd__export_list_dir(srv->x, data, datalen);
	return ret == -ENOSPC ? -E2BIG : ret;
}

/* Called with srv->lock held (lock order: srv->lock, then a session's). */
void rnbd__dev_release(struct rnbd_srv *srv, struct sdev *d)
{
	RTRS_ASSERT_HELD(&srv->lock);
	rnbd__export_put(d->e, d->mode);
	d->used = false;
	d->e = NULL;
}

static int do_close(struct ssess *ss, const uint8_t *usr, size_t usrlen)
{
	struct rnbd_srv *srv = ss->srv;
	uint32_t id;
	int ret = 0;

	if (rnbd_proto_close_decode(usr, usrlen, &id))
		return -EINVAL;
	rtrs__lock(&srv->lock);
	rtrs__lock(&ss->lock);
	if (id < ss->ndevs && ss->devs[id].forced)
		ss->devs[id].forced = false;    /* closed already: now free */
	else if (id >= ss->ndevs || !ss->devs[id].used)
		ret = -EBADF;
	else
		rnbd__dev_release(srv, &ss->devs[id]);
	rtrs__unlock(&ss->lock);
	rtrs__unlock(&srv->lock);
	return ret;
}

/* Does @io reach past @size bytes? */
static bool past_end(const struct rnbd_io *io, uint64_t size)
{
	return io->sector > (size >> 9) ||
	       io->bi_size > size - (io->sector << 9);
}

/* Every check of docs/rnbd-protocol.md 1.3; 0 or the status to answer. */
int rnbd__io_check(struct ssess *ss, const uint8_t *usr, size_t usrlen,
		   size_t datalen, enum rtrs_dir dir, struct io_req *q)
{
	struct rnbd_io io;
	uint32_t op;
	uint8_t mode;

	if (rnbd_proto_io_decode(usr, usrlen, &io))
		return -EINVAL;
	op = io.rw & RNBD_OP_MASK;
	rtrs__lock(&ss->lock);
	if (io.device_id >= ss->ndevs || !ss->devs[io.device_id].used) {
		bool forced = io.device_id < ss->ndevs &&
			      ss->devs[io.device_id].forced;

		rtrs__unlock(&ss->lock);
		return forced ? -ENODEV : -EBADF;
	}
	/* an export stays open while the server runs: safe after unlock */
	q->e = ss->devs[io.device_id].e;
	mode = ss->devs[io.device_id].mode;
	rtrs__unlock(&ss->lock);
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
	 * write past the new end is refused, never grows the file back. A
	 * READ needs no fstat within the size last seen: one past a shrunk
	 * end finds the end of the file, and fails the same (srv_io.c);
	 * past the size last seen, the size now decides (it may have
	 * grown) */
	if (op != RNBD_OP_FLUSH) {
		uint64_t size = q->e->size;

		if (!q->e->bdev && (op != RNBD_OP_READ ||
				    past_end(&io, size)))
			size = rnbd__export_size(q->e);
		if (past_end(&io, size))
			return -EINVAL;
	}
	q->op = op;
	q->rw = io.rw;
	q->len = io.bi_size;
	q->off = io.sector << 9;
	return 0;
}

/* A worker: OPEN, CLOSE, LIST, or an IO checked by rdma_ev. */
static void job_run(struct rtrs_work *w)
{
	struct job *j = (struct job *)((char *)w - offsetof(struct job, w));
	int ret = -EINVAL;

	switch (rnbd_proto_type(j->usr, j->usrlen)) {
	case RNBD_MSG_OPEN:
		ret = do_open(j->ss, j->usr, j->usrlen, j->data, j->len,
			      rtrs_srv_op_dir(j->op));
		break;
	case RNBD_MSG_CLOSE:
		ret = do_close(j->ss, j->usr, j->usrlen);
		break;
	case RNBD_MSG_LIST:
		ret = do_list(j->ss->srv, j->usr, j->usrlen, j->data, j->len,
			      rtrs_srv_op_dir(j->op));
		break;
	case RNBD_MSG_IO:       /* checked by rdma_ev */
		ret = rnbd__io_exec(&j->q, j->data);
		break;
	}
	rtrs_srv_resp(j->op, ret);
	free(j);
}

static struct job *job_new(struct rtrs_srv_op *op, void *data, size_t len)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j) {
		j->w.run = job_run;
		j->op = op;
		j->data = data;
		j->len = len;
	}
	return j;
}

/* A memory export's IO, here and now: a READ from its mapping when it
 * has one, else copied. */
static void io_mem(struct rtrs_srv_op *op, const struct io_req *q, void *data)
{
	struct rtrs_srv_mr *mr = atomic_load_explicit(&q->e->mr,
						      memory_order_acquire);

	if (mr && q->op == RNBD_OP_READ && !(q->rw & RNBD_F_PREFLUSH) &&
	    q->off + q->len <= q->e->map_len &&
	    rnbd__export_holds(q->e, q->off + q->len)) {
		int r = rtrs_srv_resp_buf(op, mr, q->e->map + q->off);

		/* answered, or its path is gone (finished all the same):
		 * never answer twice */
		if (r != -EINVAL && r != -EOPNOTSUPP)
			return;
	}
	rtrs_srv_resp(op, rnbd__io_exec(q, data));
}

/* An IO on the progress thread: checked, then answered here, or handed to
 * the ring (returns 0), or 1 with @q filled: to the workers. */
static int io_ev(struct ssess *ss, struct rtrs_srv_op *op, void *data,
		 size_t datalen, const void *usr, size_t usrlen,
		 struct io_req *q)
{
	struct rnbd_srv *srv = ss->srv;
	uint32_t done = 0;
	struct job *j;
	int ret = rnbd__io_check(ss, usr, usrlen, datalen,
				 rtrs_srv_op_dir(op), q);

	if (ret)
		return ret;
	if (q->op != RNBD_OP_READ && q->op != RNBD_OP_WRITE &&
	    q->op != RNBD_OP_FLUSH)
		return 1;               /* to the workers, checked */
	if (q->e->mem) {                /* memory: done here and now */
		io_mem(op, q, data);
		return 0;
	}
	ret = rnbd__io_try_nowait(q, data, &done);
	if (ret <= 0) {
		rtrs_srv_resp(op, ret);
		return 0;
	}
	if (!srv->ring.on)
		return 1;
	j = job_new(op, data, datalen);
	if (!j)
		return -ENOMEM;
	j->q = *q;
	j->done = done;
	j->preflush = q->op != RNBD_OP_FLUSH && (q->rw & RNBD_F_PREFLUSH);
	rnbd__ring_queue(&srv->ring, j);
	return 0;
}

/* SESS_INFO: answered on the progress thread. */
static int sess_info_ev(struct rtrs_srv_op *op, void *data, size_t datalen,
			const void *usr, size_t usrlen)
{
	uint8_t ver;

	if (rnbd_proto_sess_info_decode(usr, usrlen, RNBD_MSG_SESS_INFO, &ver) ||
	    rtrs_srv_op_dir(op) != RTRS_READ || datalen < RNBD_SESS_INFO_RSP_LEN)
		return -EINVAL;
	memset(data, 0, datalen);
	rnbd_proto_sess_info_encode(data, RNBD_MSG_SESS_INFO_RSP,
				    ver < RNBD_PROTO_VER_MAJOR
					    ? ver : RNBD_PROTO_VER_MAJOR);
	rtrs_srv_resp(op, 0);
	return 0;
}

static int rdma_ev(void *sess_priv, struct rtrs_srv_op *op, void *data,
		   size_t datalen, const void *usr, size_t usrlen)
{
	struct ssess *ss = sess_priv;
	struct io_req q = { 0 };
	struct job *j;
	int ret;

	if (!ss)
		return -ENOTCONN;
	switch (rnbd_proto_type(usr, usrlen)) {
	case RNBD_MSG_SESS_INFO:
		return sess_info_ev(op, data, datalen, usr, usrlen);
	case RNBD_MSG_IO:
		ret = io_ev(ss, op, data, datalen, usr, usrlen, &q);
		if (ret <= 0)
			return ret;
		break;
	case RNBD_MSG_OPEN:
	case RNBD_MSG_CLOSE:
	case RNBD_MSG_LIST:
		if (usrlen > sizeof(j->usr))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	/* the workers: OPEN, CLOSE, LIST, and checked IO (rnbd__io_check()
	 * took exactly RNBD_IO_LEN bytes of header) */
	j = job_new(op, data, datalen);
	if (!j)
		return -ENOMEM;
	j->ss = ss;
	j->q = q;
	j->usrlen = usrlen;
	memcpy(j->usr, usr, usrlen);
	rtrs__workq_push(ss->srv->wq, &j->w);
	return 0;
}

static int sess_connected(struct rnbd_srv *srv, struct rtrs_srv_sess *sess)
{
	struct ssess *ss, **pp;

	ss = calloc(1, sizeof(*ss));
	if (!ss)
		return -ENOMEM;
	rtrs__lock_init(&ss->lock, RNBD_RANK_SESS, "ss->lock");
	rtrs_srv_get_sess_name(sess, ss->name, sizeof(ss->name));
	if (rtrs_srv_sess_identity(sess, ss->identity, sizeof(ss->identity)))
		ss->identity[0] = 0;
	ss->sess = sess;
	ss->srv = srv;
	rtrs__lock(&srv->lock);
	for (pp = &srv->sessions; *pp; pp = &(*pp)->next)
		;
	*pp = ss;
	rtrs__unlock(&srv->lock);
	rtrs_srv_set_sess_priv(sess, ss);
	fprintf(stderr, "rnbd-server: session %s connected\n", ss->name);
	return 0;
}

/* a client's session is gone for good when its paths are: the devices it
 * opened go with it */
static int link_ev(struct rtrs_srv_sess *sess, enum rtrs_srv_link_ev ev,
		   void *priv)
{
	struct ssess *ss, **pp;
	struct rnbd_srv *srv;

	if (ev == RTRS_SRV_LINK_EV_CONNECTED)
		return sess_connected(priv, sess);
	ss = priv;
	if (!ss)
		return 0;
	srv = ss->srv;
	/* every op of the session has been answered: close its devices */
	rtrs__lock(&srv->lock);
	for (pp = &srv->sessions; *pp; pp = &(*pp)->next)
		if (*pp == ss) {
			*pp = ss->next;
			break;
		}
	for (uint32_t i = 0; i < ss->ndevs; i++)
		if (ss->devs[i].used)
			rnbd__dev_release(srv, &ss->devs[i]);
	rtrs__unlock(&srv->lock);
	fprintf(stderr, "rnbd-server: session %s disconnected\n", ss->name);
	rtrs__lock_destroy(&ss->lock);
	free(ss->devs);
	free(ss);
	return 0;
}

void rnbd_srv_attr_init(struct rnbd_srv_attr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->size = sizeof(*attr);
	attr->threads = 4;
	attr->uring = true;
	attr->direct = true;
	attr->zero_copy = true;
	rtrs_srv_attr_init(&attr->rtrs);
	rtrs_srv_limits_init(&attr->limits);
}

/* Listen on @attr's addresses; then map the memory exports and print how
 * each named export's IO is done. */
static int srv_listen(struct rnbd_srv *srv, const struct rnbd_srv_attr *attr)
{
	struct rtrs_auth auth = { sizeof(auth), attr->key_file, NULL };
	struct rtrs_srv_attr ra = attr->rtrs;
	struct rnbd_exports *x = srv->x;
	struct rtrs_srv_ctx *ctx;
	int ret;

	ra.ops.rdma_ev = rdma_ev;
	ra.ops.link_ev = link_ev;
	ra.priv = srv;
	ret = rtrs_srv_open_auth(attr->addrs, attr->naddrs, &ra,
				 attr->key_file ? &auth : NULL, &ctx);
	if (ret) {
		fprintf(stderr, "rnbd-server: %s\n", rtrs_strerror(ret));
		return ret;
	}
	ret = rtrs_srv_set_limits(ctx, &attr->limits);
	if (ret) {
		fprintf(stderr, "rnbd-server: limits: %s\n", rtrs_strerror(ret));
		rtrs_srv_close(ctx);
		return ret;
	}
	rtrs__lock(&srv->lock);
	srv->ctx = ctx;
	x->ctx = ctx;
	/* a memory export's pages change (discard punches them out): a
	 * provider that sends from the pages pinned at registration would
	 * send stale data */
	x->zero_copy = x->zero_copy && !ra.always_invalidate &&
		       rtrs_srv_mr_pins(ctx) == 0;
	for (struct export *e = x->list; e; e = e->next) {
		rnbd__export_map(x, e);
		printf("export %s io=%s%s\n", e->name,
		       e->mem ? "memory" : e->dfd >= 0 ? "direct" : "page-cache",
		       atomic_load(&e->mr) ? " zero-copy" : "");
	}
	rtrs__unlock(&srv->lock);
	return 0;
}

int rnbd_srv_create(const struct rnbd_srv_attr *attr, struct rnbd_exports *x,
		    struct rnbd_srv **out)
{
	struct rnbd_srv *srv;
	int ret;

	if (!attr || attr->size < sizeof(*attr) || !attr->threads ||
	    attr->threads > RNBD_SRV_MAX_THREADS || !attr->naddrs) {
		rnbd_exports_destroy(x);
		return -EINVAL;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv) {
		rnbd_exports_destroy(x);
		return -ENOMEM;
	}
	rtrs__lock_init(&srv->lock, RNBD_RANK_SRV, "srv->lock");
	x->lock = &srv->lock;
	srv->ring.efd = -1;
	srv->x = x;
	srv->naddrs = attr->naddrs;
	x->direct = attr->direct;
	x->zero_copy = attr->zero_copy;
	for (struct export *e = x->list; e; e = e->next)
		rnbd__export_io_setup(x, e);
	ret = rtrs__workq_start(attr->threads, &srv->wq);
	if (ret) {
		rnbd_srv_destroy(srv);
		return ret;
	}
	if (attr->uring && (ret = rnbd__ring_start(&srv->ring)))
		fprintf(stderr, "rnbd-server: no io_uring (%s): worker threads "
			"serve all IO\n", strerror(-ret));
	ret = srv_listen(srv, attr);
	if (ret) {
		rnbd_srv_destroy(srv);
		return ret;
	}
	*out = srv;
	return 0;
}

int rnbd_srv_listen_addr(struct rnbd_srv *srv, size_t i, char *buf,
			 size_t len)
{
	return rtrs_srv_get_listen_addr(srv->ctx, i, buf, len);
}

void rnbd_srv_destroy(struct rnbd_srv *srv)
{
	if (!srv)
		return;
	/* stops accepting, closes the sessions, waits for every answer: the
	 * workers still run */
	if (srv->ctx)
		rtrs_srv_close(srv->ctx);
	rtrs__workq_stop(srv->wq);
	rnbd__ring_stop(&srv->ring);
	rnbd_exports_destroy(srv->x);
	rtrs__lock_destroy(&srv->lock);
	free(srv);
}
