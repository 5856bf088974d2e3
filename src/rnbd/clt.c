// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * librnbd: the rnbd client, built on the public librtrs API only.
 * Control messages (SESS_INFO, OPEN, CLOSE) go on the admin connection,
 * IO on the IO connections; every message is a librtrs user header.
 *
 * A server that restarted has forgotten the session's devices: librtrs
 * reconnects and re-issues the requests, and the server answers them
 * -EBADF. Such a request is parked on its device, a session thread opens
 * the device again (OPEN is idempotent per session) and sends the parked
 * requests with the new device id; the caller sees no error.
 * Its lock order is in clt_int.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rnbd/rnbd.h"
#include "clt_int.h"
#include "proto.h"

struct rnbd_req;

struct rnbd_dev {
	struct rnbd_sess *sess;
	struct rnbd_dev *next;          /* sess->devs, under sess->lock */
	_Atomic uint32_t id;
	uint8_t mode;
	struct rnbd_req *parked;        /* waiting for a re-open, sess->lock */
	uint64_t reopens;
	char name[RNBD_NAME_MAX + 1];
	struct rnbd_dev_info info;
	_Atomic uint64_t size;          /* bytes: info.size, rnbd_dev_refresh() */
	unsigned inflight;              /* under sess->lock */
	bool closing;
};

struct rnbd_sess {
	struct rtrs_clt_sess *rtrs;
	struct rtrs_attrs qa;
	uint8_t ver;
	struct rtrs_lock lock;
	pthread_cond_t cond;            /* a device's IO drained */
	struct rnbd_dev *devs;
	/* the re-open thread */
	pthread_t thr;
	pthread_cond_t work;
	bool thr_started, stop;
	/* RTRS_PROGRESS_POLL: callbacks run in rnbd_poll() */
	bool poll;
	_Atomic unsigned io_inflight;   /* submitted, done not called yet */
	_Atomic unsigned parked;        /* waiting for the re-open thread */
	struct rnbd_req *failed;        /* re-open failed: done in rnbd_poll */
};

struct rnbd_req {
	struct rnbd_dev *dev;
	struct rtrs_permit *pm;
	rnbd_done_fn done;
	void *priv;
	struct rnbd_req *next;          /* parked */
	enum rnbd_op op;
	uint64_t off;
	void *buf;
	size_t len;
	unsigned flags;
	unsigned reopens;               /* re-opens this request went through */
	int status;                     /* of a request in sess->failed */
};

#define RNBD_MAX_REOPENS 3

static void *reopen_main(void *arg);
static int send_req(struct rnbd_req *r);
static void finish_req(struct rnbd_req *r, int status);

/* ---- one synchronous librtrs request ---- */

struct waiter {
	struct rtrs_lock lock;
	pthread_cond_t cond;
	bool done;
	int status;
};

static void waiter_conf(void *priv, int status)
{
	struct waiter *w = priv;

	rtrs__lock(&w->lock);
	w->status = status;
	w->done = true;
	pthread_cond_signal(&w->cond);
	rtrs__unlock(&w->lock);
}

static int call(struct rnbd_sess *s, enum rtrs_con_type ct, enum rtrs_dir dir,
		const void *usr, size_t ulen, void *data, size_t dlen)
{
	struct waiter w = { .lock = RTRS_LOCK_INITIALIZER(RNBD_RANK_CLT_WAITER,
							  "waiter.lock"),
			    .cond = PTHREAD_COND_INITIALIZER };
	struct rtrs_req_ops ops = { &w, waiter_conf };
	struct iovec u = { (void *)usr, ulen }, d = { data, dlen };
	struct rtrs_permit *pm;
	int ret;

	ret = rtrs_clt_get_permit(s->rtrs, ct, RTRS_PERMIT_WAIT, &pm);
	if (ret)
		return ret;
	ret = rtrs_clt_request(s->rtrs, dir, &ops, pm, &u, 1, &d, dlen ? 1 : 0,
			       NULL);
	if (!ret) {
		rtrs__lock(&w.lock);
		while (!w.done)
			rtrs__cond_wait(&w.cond, &w.lock, NULL);
		rtrs__unlock(&w.lock);
		ret = w.status;
	}
	rtrs_clt_put_permit(s->rtrs, pm);
	return ret;
}

/* ---- session ---- */

int rnbd_sess_open(const char *sessname, const struct rtrs_path_addr *paths,
		   size_t npaths, const struct rtrs_clt_attr *attr,
		   struct rnbd_sess **out)
{
	return rnbd_sess_open_auth(sessname, paths, npaths, attr, NULL, out);
}

int rnbd_sess_open_auth(const char *sessname,
			const struct rtrs_path_addr *paths, size_t npaths,
			const struct rtrs_clt_attr *attr,
			const struct rtrs_auth *auth, struct rnbd_sess **out)
{
	uint8_t msg[RNBD_SESS_INFO_LEN], rsp[RNBD_SESS_INFO_RSP_LEN];
	struct rnbd_sess *s;
	uint8_t ver;
	int ret;

	if (!out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	rtrs__lock_init(&s->lock, RNBD_RANK_CLT_SESS, "rnbd sess->lock");
	pthread_cond_init(&s->cond, NULL);
	pthread_cond_init(&s->work, NULL);
	s->poll = attr &&
		  attr->size >= offsetof(struct rtrs_clt_attr, progress) +
					sizeof(attr->progress) &&
		  attr->progress == RTRS_PROGRESS_POLL;
	ret = rtrs_clt_open_auth(sessname, paths, npaths, attr, auth, &s->rtrs);
	if (ret)
		goto err;
	ret = rtrs_clt_query(s->rtrs, &s->qa);
	if (ret)
		goto err_close;
	rnbd_proto_sess_info_encode(msg, RNBD_MSG_SESS_INFO, RNBD_PROTO_VER_MAJOR);
	memset(rsp, 0, sizeof(rsp));
	ret = call(s, RTRS_ADMIN_CON, RTRS_READ, msg, sizeof(msg), rsp,
		   sizeof(rsp));
	if (!ret && rnbd_proto_sess_info_decode(rsp, sizeof(rsp),
						RNBD_MSG_SESS_INFO_RSP, &ver))
		ret = -EPROTO;
	if (ret)
		goto err_close;
	s->ver = ver < RNBD_PROTO_VER_MAJOR ? ver : RNBD_PROTO_VER_MAJOR;
	ret = -pthread_create(&s->thr, NULL, reopen_main, s);
	if (ret)
		goto err_close;
	s->thr_started = true;
	*out = s;
	return 0;

err_close:
	rtrs_clt_close(s->rtrs);
err:
	rtrs__lock_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->work);
	free(s);
	return ret;
}

struct list_cb {
	void (*fn)(void *priv, const char *name, unsigned flags);
	void *priv;
};

static void list_one(void *priv, const char *name, uint8_t flags)
{
	struct list_cb *cb = priv;

	if (cb->fn)
		cb->fn(cb->priv, name, flags);
}

int rnbd_list_exports(struct rnbd_sess *s,
		      void (*fn)(void *priv, const char *name, unsigned flags),
		      void *priv)
{
	uint8_t msg[RNBD_LIST_LEN];
	struct list_cb cb = { fn, priv };
	size_t cap;
	void *buf;
	int ret;

	if (!s)
		return -EINVAL;
	cap = s->qa.max_io_size;
	buf = calloc(1, cap);
	if (!buf)
		return -ENOMEM;
	rnbd_proto_list_encode(msg);
	ret = call(s, RTRS_ADMIN_CON, RTRS_READ, msg, sizeof(msg), buf, cap);
	if (!ret)
		ret = rnbd_proto_list_rsp_decode(buf, cap, list_one, &cb);
	free(buf);
	return ret;
}

struct rtrs_clt_sess *rnbd_sess_rtrs(struct rnbd_sess *s)
{
	return s ? s->rtrs : NULL;
}

void rnbd_sess_close(struct rnbd_sess *s)
{
	if (!s)
		return;
	for (;;) {
		struct rnbd_dev *d;

		rtrs__lock(&s->lock);
		for (d = s->devs; d && d->closing; d = d->next)
			;
		rtrs__unlock(&s->lock);
		if (!d)
			break;
		if (rnbd_dev_close(d) == -EDEADLK)
			return;         /* from a callback (poll mode): misuse */
	}
	rtrs__lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->work);
	rtrs__unlock(&s->lock);
	if (s->thr_started)
		pthread_join(s->thr, NULL);
	rtrs_clt_close(s->rtrs);
	rtrs__lock_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->work);
	free(s);
}

/* ---- devices ---- */

/* OPEN @name in @mode; the answer in @r. */
static int open_exchange(struct rnbd_sess *s, const char *name, uint8_t mode,
			 struct rnbd_open_rsp *r)
{
	uint8_t msg[RNBD_OPEN_LEN], rsp[RNBD_OPEN_RSP_LEN];
	int ret = rnbd_proto_open_encode(msg, mode, name);

	if (ret < 0)
		return ret;
	memset(rsp, 0, sizeof(rsp));
	ret = call(s, RTRS_ADMIN_CON, RTRS_READ, msg, sizeof(msg), rsp,
		   sizeof(rsp));
	if (ret)
		return ret;
	return rnbd_proto_open_rsp_decode(rsp, sizeof(rsp), r) ? -EPROTO : 0;
}

int rnbd_dev_open(struct rnbd_sess *s, const char *name,
		  enum rnbd_access access, struct rnbd_dev **out)
{
	uint8_t msg[RNBD_OPEN_LEN];
	struct rnbd_open_rsp r;
	struct rnbd_dev *d;
	uint64_t max_io;
	int ret;

	if (!s || !out || (unsigned)access > RNBD_ACCESS_MIGRATION)
		return -EINVAL;
	ret = rnbd_proto_open_encode(msg, (uint8_t)access, name);
	if (ret < 0)
		return ret;
	/* one handle per device and session, as the kernel's map_device: the
	 * server gives a session the same device again */
	rtrs__lock(&s->lock);
	for (d = s->devs; d && strcmp(d->name, name); d = d->next)
		;
	rtrs__unlock(&s->lock);
	if (d)
		return -EEXIST;
	ret = open_exchange(s, name, (uint8_t)access, &r);
	if (ret)
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->sess = s;
	d->id = r.device_id;
	d->mode = (uint8_t)access;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->info.size = r.nsectors << 9;
	d->size = d->info.size;
	d->info.logical_block_size = r.logical_block_size;
	d->info.physical_block_size = r.physical_block_size;
	max_io = (uint64_t)r.max_hw_sectors << 9;
	d->info.max_io_size = !max_io || max_io > s->qa.max_io_size
				      ? s->qa.max_io_size : (uint32_t)max_io;
	d->info.max_discard_size = r.max_discard_sectors > (UINT32_MAX >> 9)
					   ? UINT32_MAX & ~511u
					   : r.max_discard_sectors << 9;
	d->info.max_write_zeroes_size =
		r.max_write_zeroes_sectors > (UINT32_MAX >> 9)
			? UINT32_MAX & ~511u : r.max_write_zeroes_sectors << 9;
	d->info.discard_granularity = r.discard_granularity;
	d->info.write_cache = !!(r.cache_policy & RNBD_CACHE_WRITEBACK);
	d->info.fua = !!(r.cache_policy & RNBD_CACHE_FUA);
	d->info.access = access;
	rtrs__lock(&s->lock);
	d->next = s->devs;
	s->devs = d;
	rtrs__unlock(&s->lock);
	*out = d;
	return 0;
}

int rnbd_dev_info(struct rnbd_dev *d, struct rnbd_dev_info *info)
{
	if (!d || !info)
		return -EINVAL;
	rtrs__lock(&d->sess->lock);
	*info = d->info;
	info->size = atomic_load(&d->size);
	info->reopens = d->reopens;
	rtrs__unlock(&d->sess->lock);
	return 0;
}

/* OPEN again, by name and mode: the server answers with the same device
 * and its size now (docs/rnbd-protocol.md 1.2, rule 1). */
int rnbd_dev_refresh(struct rnbd_dev *d)
{
	struct rnbd_open_rsp r;
	int ret;

	if (!d)
		return -EINVAL;
	ret = open_exchange(d->sess, d->name, d->mode, &r);
	if (ret)
		return ret;
	atomic_store(&d->id, r.device_id);
	atomic_store(&d->size, r.nsectors << 9);
	return 0;
}

int rnbd_dev_close(struct rnbd_dev *d)
{
	struct rnbd_sess *s;
	struct rnbd_dev **pp;
	uint8_t msg[RNBD_CLOSE_LEN];
	int ret;

	if (!d)
		return -EINVAL;
	s = d->sess;
	rtrs__lock(&s->lock);
	d->closing = true;
	while (d->inflight) {
		if (s->poll) {
			/* the application may not poll any more */
			rtrs__unlock(&s->lock);
			ret = rnbd_poll(s, 100);
			rtrs__lock(&s->lock);
			if (ret < 0)
				break;  /* from a callback: it cannot finish */
			continue;
		}
		rtrs__cond_wait(&s->cond, &s->lock, NULL);
	}
	if (d->inflight) {
		d->closing = false;
		rtrs__unlock(&s->lock);
		return -EDEADLK;
	}
	rtrs__unlock(&s->lock);
	rnbd_proto_close_encode(msg, d->id);
	ret = call(s, RTRS_ADMIN_CON, RTRS_WRITE, msg, sizeof(msg), NULL, 0);
	rtrs__lock(&s->lock);
	for (pp = &s->devs; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	rtrs__unlock(&s->lock);
	free(d);
	return ret;
}

/* ---- IO ---- */

/* The end of a request: permit back, the caller told, the device's
 * in-flight count down. */
static void finish_req(struct rnbd_req *r, int status)
{
	struct rnbd_dev *d = r->dev;
	struct rnbd_sess *s = d->sess;
	rnbd_done_fn done = r->done;
	void *p = r->priv;

	rtrs_clt_put_permit(s->rtrs, r->pm);
	free(r);
	done(p, status);
	atomic_fetch_sub(&s->io_inflight, 1);
	rtrs__lock(&s->lock);
	if (--d->inflight == 0 && d->closing)
		pthread_cond_broadcast(&s->cond);
	rtrs__unlock(&s->lock);
}

/* From the re-open thread: in poll mode the callback runs in rnbd_poll(). */
static void fail_req(struct rnbd_req *r, int status)
{
	struct rnbd_sess *s = r->dev->sess;

	if (!s->poll) {
		finish_req(r, status);
		return;
	}
	r->status = status;
	rtrs__lock(&s->lock);
	r->next = s->failed;
	s->failed = r;
	rtrs__unlock(&s->lock);
}

static void req_conf(void *priv, int status)
{
	struct rnbd_req *r = priv;
	struct rnbd_dev *d = r->dev;
	struct rnbd_sess *s = d->sess;

	/* the server does not know the device: it restarted. Park the
	 * request for the re-open thread (it keeps its permit). */
	if (status == -EBADF && r->reopens < RNBD_MAX_REOPENS) {
		rtrs__lock(&s->lock);
		if (!s->stop) {
			r->next = d->parked;
			d->parked = r;
			atomic_fetch_add(&s->parked, 1);
			pthread_cond_signal(&s->work);
			rtrs__unlock(&s->lock);
			return;
		}
		rtrs__unlock(&s->lock);
	}
	finish_req(r, status);
}

/* Send (again) a request that owns its permit; 0 or the error. */
static int send_req(struct rnbd_req *r)
{
	struct rnbd_dev *d = r->dev;
	struct rnbd_io io = { .device_id = atomic_load(&d->id),
			      .sector = r->off >> 9,
			      .rw = (uint32_t)r->op | r->flags,
			      .bi_size = (uint32_t)r->len };
	uint8_t msg[RNBD_IO_LEN];
	struct iovec u = { msg, sizeof(msg) }, dv = { r->buf, r->len };
	struct rtrs_req_ops ops = { r, req_conf };

	rnbd_proto_io_encode(msg, &io);
	return rtrs_clt_request(d->sess->rtrs,
				r->op == RNBD_READ ? RTRS_READ : RTRS_WRITE,
				&ops, r->pm, &u, 1, &dv,
				r->op == RNBD_READ || r->op == RNBD_WRITE ? 1 : 0,
				NULL);
}

/* The re-open thread: one OPEN per device with parked requests, then
 * the requests again with the device's new id. */
static void *reopen_main(void *arg)
{
	struct rnbd_sess *s = arg;

	rtrs__lock(&s->lock);
	for (;;) {
		struct rnbd_dev *d;
		struct rnbd_req *q;
		struct rnbd_open_rsp rsp;
		int ret;

		for (d = s->devs; d && !d->parked; d = d->next)
			;
		if (!d) {
			if (s->stop)
				break;
			rtrs__cond_wait(&s->work, &s->lock, NULL);
			continue;
		}
		q = d->parked;
		d->parked = NULL;
		rtrs__unlock(&s->lock);
		ret = open_exchange(s, d->name, d->mode, &rsp);
		if (!ret) {
			atomic_store(&d->id, rsp.device_id);
			rtrs__lock(&s->lock);
			d->reopens++;
			rtrs__unlock(&s->lock);
		}
		while (q) {
			struct rnbd_req *r = q;

			q = r->next;
			r->reopens++;
			if (ret || send_req(r))
				fail_req(r, ret ? ret : -ENOTCONN);
			atomic_fetch_sub(&s->parked, 1);
		}
		rtrs__lock(&s->lock);
	}
	rtrs__unlock(&s->lock);
	return NULL;
}

static int check_io(struct rnbd_dev *d, enum rnbd_op op, uint64_t off,
		    const void *buf, size_t len, unsigned flags)
{
	const struct rnbd_dev_info *in = &d->info;
	uint32_t lbs = in->logical_block_size;
	uint64_t size;

	if (flags & ~(unsigned)(RNBD_FUA | RNBD_PREFLUSH | RNBD_NOUNMAP))
		return -EINVAL;
	if ((flags & RNBD_NOUNMAP) && op != RNBD_WRITE_ZEROES)
		return -EINVAL;
	if (op != RNBD_READ && op != RNBD_FLUSH && in->access == RNBD_ACCESS_RO)
		return -EROFS;
	switch (op) {
	case RNBD_FLUSH:
		return off || len || buf ? -EINVAL : 0;
	case RNBD_READ:
	case RNBD_WRITE:
		if (!buf || !len)
			return -EINVAL;
		if (len > in->max_io_size)
			return -EMSGSIZE;
		break;
	case RNBD_DISCARD:
	case RNBD_WRITE_ZEROES:
		if (buf || !len)
			return -EINVAL;
		if (len > (op == RNBD_DISCARD ? in->max_discard_size
					      : in->max_write_zeroes_size))
			return op == RNBD_DISCARD && !in->max_discard_size
				       ? -EOPNOTSUPP : -EMSGSIZE;
		break;
	default:
		return -EINVAL;
	}
	if ((off | len) & (lbs - 1))
		return -EINVAL;
	size = atomic_load(&d->size);
	if (off > size || len > size - off)
		return -EINVAL;
	return 0;
}

static int submit(struct rnbd_dev *d, enum rnbd_op op, uint64_t off, void *buf,
		  size_t len, unsigned flags, rnbd_done_fn done, void *priv,
		  enum rtrs_wait wait)
{
	struct rnbd_sess *s;
	struct rnbd_req *r;
	int ret;

	if (!d || !done)
		return -EINVAL;
	s = d->sess;
	ret = check_io(d, op, off, buf, len, flags);
	if (ret)
		return ret;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = rtrs_clt_get_permit(s->rtrs, RTRS_IO_CON, wait, &r->pm);
	if (ret) {
		free(r);
		return ret;
	}
	*r = (struct rnbd_req){ .dev = d, .pm = r->pm, .done = done,
				.priv = priv, .op = op, .off = off, .buf = buf,
				.len = len, .flags = flags };
	rtrs__lock(&s->lock);
	if (d->closing) {
		rtrs__unlock(&s->lock);
		rtrs_clt_put_permit(s->rtrs, r->pm);
		free(r);
		return -ESHUTDOWN;
	}
	d->inflight++;
	atomic_fetch_add(&s->io_inflight, 1);
	rtrs__unlock(&s->lock);
	ret = send_req(r);
	if (ret) {
		rtrs_clt_put_permit(s->rtrs, r->pm);
		free(r);
		atomic_fetch_sub(&s->io_inflight, 1);
		rtrs__lock(&s->lock);
		if (--d->inflight == 0 && d->closing)
			pthread_cond_broadcast(&s->cond);
		rtrs__unlock(&s->lock);
	}
	return ret;
}

int rnbd_submit(struct rnbd_dev *d, enum rnbd_op op, uint64_t off, void *buf,
		size_t len, unsigned flags, rnbd_done_fn done, void *priv)
{
	return submit(d, op, off, buf, len, flags, done, priv,
		      RTRS_PERMIT_NOWAIT);
}

/* Callbacks of requests whose re-open failed (poll mode). */
static int run_failed(struct rnbd_sess *s)
{
	struct rnbd_req *f;
	int n = 0;

	rtrs__lock(&s->lock);
	f = s->failed;
	s->failed = NULL;
	rtrs__unlock(&s->lock);
	while (f) {
		struct rnbd_req *r = f;

		f = r->next;
		finish_req(r, r->status);
		n++;
	}
	return n;
}

int rnbd_poll(struct rnbd_sess *s, int timeout_ms)
{
	struct timespec t0 = { 0 };
	int n = 0;

	if (!s || !s->poll || timeout_ms < -1)
		return -EINVAL;
	if (timeout_ms > 0)     /* only a time limit needs the clock */
		clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct timespec now;
		int ret, slice = timeout_ms;
		long el = 0;

		if (timeout_ms > 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			el = (now.tv_sec - t0.tv_sec) * 1000 +
			     (now.tv_nsec - t0.tv_nsec) / 1000000;
			slice = el >= timeout_ms ? 0 : timeout_ms - (int)el;
		}
		/* bounded: the re-open thread may queue failures meanwhile */
		if (slice < 0 || slice > 100)
			slice = 100;
		ret = rtrs_clt_poll(s->rtrs, slice);
		if (ret < 0)
			return ret;     /* -EDEADLK: from a callback */
		n += ret + run_failed(s);
		if (n || !timeout_ms || !atomic_load(&s->io_inflight) ||
		    (timeout_ms > 0 && el >= timeout_ms))
			return n;
		if (atomic_load(&s->parked)) {
			/* with the re-open thread, not in librtrs */
			struct timespec ms = { 0, 1000000 };

			nanosleep(&ms, NULL);
		}
	}
}

static int sync_io(struct rnbd_dev *d, enum rnbd_op op, uint64_t off,
		   void *buf, size_t len, unsigned flags)
{
	struct waiter w = { .lock = RTRS_LOCK_INITIALIZER(RNBD_RANK_CLT_WAITER,
							  "waiter.lock"),
			    .cond = PTHREAD_COND_INITIALIZER };
	struct rnbd_sess *s = d ? d->sess : NULL;
	int ret;

	if (s && s->poll) {
		/* this thread drives the session: it must not sleep on a
		 * permit or a completion that only a poll can bring */
		ret = rnbd_poll(s, 0);
		if (ret < 0)
			return ret;     /* -EDEADLK: inside a callback */
		while ((ret = submit(d, op, off, buf, len, flags, waiter_conf,
				     &w, RTRS_PERMIT_NOWAIT)) == -EAGAIN)
			rnbd_poll(s, 10);
		if (ret)
			return ret;
		for (;;) {
			bool done;

			rtrs__lock(&w.lock);
			done = w.done;
			rtrs__unlock(&w.lock);
			if (done)
				return w.status;
			rnbd_poll(s, 100);
		}
	}
	ret = submit(d, op, off, buf, len, flags, waiter_conf, &w,
		     RTRS_PERMIT_WAIT);
	if (ret)
		return ret;
	rtrs__lock(&w.lock);
	while (!w.done)
		rtrs__cond_wait(&w.cond, &w.lock, NULL);
	rtrs__unlock(&w.lock);
	return w.status;
}

/* Split a long range into pieces of at most @max bytes. */
static int sync_range(struct rnbd_dev *d, enum rnbd_op op, uint64_t off,
		      char *buf, uint64_t len, unsigned flags, uint32_t max)
{
	if (!d || !len)
		return -EINVAL;
	max &= ~(d->info.logical_block_size - 1);
	if (!max)
		return op == RNBD_DISCARD ? -EOPNOTSUPP : -EINVAL;
	while (len) {
		size_t n = len > max ? max : (size_t)len;
		int ret = sync_io(d, op, off, buf, n, flags);

		if (ret)
			return ret;
		off += n;
		len -= n;
		if (buf)
			buf += n;
	}
	return 0;
}

int rnbd_pread(struct rnbd_dev *d, void *buf, size_t len, uint64_t off)
{
	return d ? sync_range(d, RNBD_READ, off, buf, len, 0, d->info.max_io_size)
		 : -EINVAL;
}

int rnbd_pwrite(struct rnbd_dev *d, const void *buf, size_t len, uint64_t off,
		unsigned flags)
{
	return d ? sync_range(d, RNBD_WRITE, off, (char *)buf, len, flags,
			      d->info.max_io_size)
		 : -EINVAL;
}

int rnbd_flush(struct rnbd_dev *d)
{
	return sync_io(d, RNBD_FLUSH, 0, NULL, 0, 0);
}

int rnbd_discard(struct rnbd_dev *d, uint64_t off, uint64_t len)
{
	return d ? sync_range(d, RNBD_DISCARD, off, NULL, len, 0,
			      d->info.max_discard_size)
		 : -EINVAL;
}

int rnbd_write_zeroes(struct rnbd_dev *d, uint64_t off, uint64_t len,
		      unsigned flags)
{
	return d ? sync_range(d, RNBD_WRITE_ZEROES, off, NULL, len, flags,
			      d->info.max_write_zeroes_size)
		 : -EINVAL;
}
