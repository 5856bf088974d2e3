// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd map's hardware queues: one thread per ublk queue.
 *
 * Each queue of the device /dev/ublkcN has QD tags, and for each tag the
 * queue thread keeps one URING_CMD in the kernel: FETCH_REQ at start, then
 * COMMIT_AND_FETCH_REQ with the result of the request it was handed. A
 * request's descriptor (op, flags, sector, count) is in the queue's
 * read-only array mmap()ed from the char device (at queue id times the
 * largest array); its data in the buffer the thread gave with the command
 * (the kernel copies a write's data into it before handing it over, and a
 * read's data out of it at the commit).
 *
 * The kernel takes a queue's commands from one task only (the first to
 * FETCH), so the commits cannot be sent from librtrs's progress threads
 * that run librnbd's completion callbacks. A callback puts its tag on its
 * queue's list and signals the queue's eventfd, whose read sits in the
 * queue's ring; the queue thread then commits every tag on the list in
 * one submit. A request that finds no permit (-EAGAIN) waits on its
 * queue thread for the queue's next completion (or 1 ms when the queue
 * has none in flight: the permits are the session's, shared by every
 * queue).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rnbd-map-q.h"

#define EVT_DATA UINT64_MAX

static char *tag_buf(struct mapq *q, unsigned tag)
{
	return q->bufs + (size_t)tag * q->m->buf_size;
}

static struct io_uring_sqe *queue_sqe(struct mapq *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	return sqe;
}

static int io_cmd(struct mapq *q, unsigned op, unsigned tag, int res)
{
	struct ublksrv_io_cmd c = {
		.q_id = (uint16_t)q->id, .tag = (uint16_t)tag, .result = res,
		.addr = (uint64_t)(uintptr_t)tag_buf(q, tag),
	};
	struct io_uring_sqe *sqe = queue_sqe(q);

	if (!sqe)
		return -EBUSY;
	rnbd_map_uring_cmd(sqe, q->m->cdev_fd, op, &c, sizeof(c), tag);
	return 0;
}

static void commit(struct mapq *q, unsigned tag, int res)
{
	if (io_cmd(q, UBLK_IO_COMMIT_AND_FETCH_REQ, tag, res))
		q->aborted++;   /* cannot happen: one SQE per tag and the event */
}

static int arm_event(struct mapq *q)
{
	struct io_uring_sqe *sqe = queue_sqe(q);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, q->efd, &q->evbuf, sizeof(q->evbuf), 0);
	sqe->user_data = EVT_DATA;
	return 0;
}

/* librnbd's completion, on a progress thread (or inside rnbd_submit) */
static void io_done(void *priv, int status)
{
	struct tag *t = priv;
	struct mapq *q = t->q;
	bool first;

	t->status = status;
	pthread_mutex_lock(&q->lock);
	first = !q->ndone;
	q->done[q->ndone++] = t->tag;
	pthread_mutex_unlock(&q->lock);
	if (first)
		eventfd_write(q->efd, 1);
}

static void start_io(struct mapq *q, unsigned tag)
{
	const struct ublksrv_io_desc *iod = &q->iod[tag];
	unsigned op = ublksrv_get_op(iod), fl = ublksrv_get_flags(iod);
	uint64_t off = iod->start_sector << 9;
	size_t len = (size_t)iod->nr_sectors << 9;
	char *buf = tag_buf(q, tag);
	struct tag *t = &q->tags[tag];
	enum rnbd_op rop;
	unsigned flags = 0;
	int ret;

	t->ok = 0;
	switch (op) {
	case UBLK_IO_OP_READ:
		rop = RNBD_READ;
		t->ok = (int)len;
		break;
	case UBLK_IO_OP_WRITE:
		rop = RNBD_WRITE;
		flags = fl & UBLK_IO_F_FUA ? RNBD_FUA : 0;
		t->ok = (int)len;
		break;
	case UBLK_IO_OP_FLUSH:
		rop = RNBD_FLUSH;
		off = 0;
		len = 0;
		buf = NULL;
		break;
	case UBLK_IO_OP_DISCARD:
		rop = RNBD_DISCARD;
		buf = NULL;
		break;
	case UBLK_IO_OP_WRITE_ZEROES:
		rop = RNBD_WRITE_ZEROES;
		flags = fl & UBLK_IO_F_NOUNMAP ? RNBD_NOUNMAP : 0;
		buf = NULL;
		break;
	default:
		commit(q, tag, -EOPNOTSUPP);
		return;
	}
	if (buf && len > q->m->buf_size) {
		commit(q, tag, -EIO);
		return;
	}
	q->inflight++;
	ret = rnbd_submit(q->m->dev, rop, off, buf, len, flags, io_done, t);
	if (ret == -EAGAIN) {
		/* no permit: again after the next completion, or soon */
		struct timespec ms = { 0, 1000000L };

		q->inflight--;
		q->deferred[q->ndeferred++] = tag;
		if (!q->inflight) {
			nanosleep(&ms, NULL);
			eventfd_write(q->efd, 1);
		}
	} else if (ret) {
		q->inflight--;
		commit(q, tag, ret);
	}
}

/* commit what librnbd completed, then retry what found no permit */
static void drain(struct mapq *q)
{
	unsigned n, i, nd;

	pthread_mutex_lock(&q->lock);
	n = q->ndone;
	memcpy(q->batch, q->done, n * sizeof(*q->batch));
	q->ndone = 0;
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < n; i++) {
		struct tag *t = &q->tags[q->batch[i]];

		q->inflight--;
		commit(q, t->tag, t->status ? t->status : t->ok);
	}
	nd = q->ndeferred;
	memcpy(q->batch, q->deferred, nd * sizeof(*q->batch));
	q->ndeferred = 0;
	for (i = 0; i < nd; i++)
		start_io(q, q->batch[i]);
}

static void handle_cqe(struct mapq *q, const struct io_uring_cqe *cqe)
{
	if (cqe->user_data == EVT_DATA) {
		if (cqe->res < 0 && cqe->res != -EINTR)
			fprintf(stderr, "rnbd map: eventfd read: %s\n",
				strerror(-cqe->res));
		drain(q);
		arm_event(q);
		return;
	}
	if (cqe->res == UBLK_IO_RES_OK) {
		start_io(q, (unsigned)cqe->user_data);
		return;
	}
	/* UBLK_IO_RES_ABORT: the device stops; anything else is a bug */
	if (cqe->res != UBLK_IO_RES_ABORT)
		fprintf(stderr, "rnbd map: queue %u tag %llu: %s\n", q->id,
			(unsigned long long)cqe->user_data, strerror(-cqe->res));
	q->aborted++;
}

static void queue_report(struct mapq *q, int err)
{
	pthread_mutex_lock(&q->lock);
	q->err = err;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

static int queue_fetch(struct mapq *q)
{
	unsigned qd = q->m->qd;
	int ret = 0;

	for (unsigned i = 0; i < qd && !ret; i++)
		ret = io_cmd(q, UBLK_IO_FETCH_REQ, i, -1);
	if (!ret)
		ret = arm_event(q);
	if (!ret) {
		ret = io_uring_submit(&q->ring);
		ret = ret < 0 ? ret : 0;
	}
	if (ret)
		io_uring_queue_exit(&q->ring);
	return ret;
}

static void *queue_thread(void *arg)
{
	struct mapq *q = arg;
	unsigned qd = q->m->qd;
	int ret;

	/* if this fails after another queue fetched, STOP_DEV aborts the
	 * other's fetches (the kernel cancels them on a device that never
	 * started too) */
	ret = io_uring_queue_init(2 * qd, &q->ring, IORING_SETUP_SQE128);
	if (!ret)
		ret = queue_fetch(q);
	queue_report(q, ret);
	if (ret)
		return NULL;
	/* until the device stopped (every tag aborted) and librnbd has
	 * nothing of ours */
	while (q->aborted < qd || q->inflight) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&q->ring, 1);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "rnbd map: queue %u: io_uring: %s\n",
				q->id, strerror(-ret));
			break;
		}
		io_uring_for_each_cqe(&q->ring, head, cqe) {
			handle_cqe(q, cqe);
			n++;
		}
		io_uring_cq_advance(&q->ring, n);
	}
	io_uring_queue_exit(&q->ring);
	/* the kernel stopped the device by itself: the main thread goes */
	if (!atomic_load(&q->m->stopping))
		kill(getpid(), SIGTERM);
	return NULL;
}

int rnbd_mapq_init(struct map *m, unsigned id)
{
	struct mapq *q = &m->qs[id];
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t max = (UBLK_MAX_QUEUE_DEPTH * sizeof(*q->iod) + pg - 1) &
		     ~(pg - 1);
	unsigned qd = m->qd;

	q->m = m;
	q->id = id;
	q->efd = -1;
	q->err = -EINPROGRESS;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->iod_len = (qd * sizeof(*q->iod) + pg - 1) & ~(pg - 1);
	q->iod = mmap(NULL, q->iod_len, PROT_READ, MAP_SHARED | MAP_POPULATE,
		      m->cdev_fd, UBLKSRV_CMD_BUF_OFFSET + (off_t)(id * max));
	if (q->iod == MAP_FAILED) {
		q->iod = NULL;
		return -errno;
	}
	q->bufs = aligned_alloc(pg, qd * m->buf_size);
	q->tags = calloc(qd, sizeof(*q->tags));
	q->done = calloc(qd, sizeof(*q->done));
	q->deferred = calloc(qd, sizeof(*q->deferred));
	q->batch = calloc(qd, sizeof(*q->batch));
	q->efd = eventfd(0, EFD_CLOEXEC);
	if (!q->bufs || !q->tags || !q->done || !q->deferred || !q->batch)
		return -ENOMEM;
	if (q->efd < 0)
		return -errno;
	for (unsigned i = 0; i < qd; i++)
		q->tags[i] = (struct tag){ .q = q, .tag = i };
	return 0;
}

static int queue_wait_report(struct mapq *q)
{
	int ret;

	pthread_mutex_lock(&q->lock);
	while (q->err == -EINPROGRESS)
		pthread_cond_wait(&q->cond, &q->lock);
	ret = q->err;
	pthread_mutex_unlock(&q->lock);
	return ret;
}

int rnbd_mapq_start(struct mapq *q)
{
	int ret;

	ret = pthread_create(&q->thr, NULL, queue_thread, q);
	if (ret)
		return -ret;
	q->started = true;
	ret = queue_wait_report(q);
	q->fetched = !ret;
	return ret;
}

void rnbd_mapq_free(struct mapq *q)
{
	if (!q->m)
		return;                 /* never initialized */
	if (q->started)
		pthread_join(q->thr, NULL);
	if (q->iod)
		munmap(q->iod, q->iod_len);
	if (q->efd >= 0)
		close(q->efd);
	free(q->bufs);
	free(q->tags);
	free(q->done);
	free(q->deferred);
	free(q->batch);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	q->m = NULL;
}
