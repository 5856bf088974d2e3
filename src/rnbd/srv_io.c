// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The rnbd server's backing IO: a checked request (rnbd__io_check()) run
 * on the calling thread (the workers, or inline for memory exports), a
 * READ tried without waiting, and the io_uring engine: one thread that
 * takes READ, WRITE and FLUSH from rdma_ev through an eventfd, runs them
 * straight from and into the librtrs chunk and answers them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "srv_int.h"

static int full_pread(int fd, char *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)             /* the file shrank: past its end */
			return -EINVAL;
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

/* Run a checked IO on this thread. */
int rnbd__io_exec(const struct io_req *q, void *data)
{
	struct export *e = q->e;
	int ret;

	if ((q->rw & RNBD_F_PREFLUSH) && fdatasync(e->fd))
		return -errno;
	switch (q->op) {
	case RNBD_OP_READ:
		return full_pread(rnbd__export_fd(e, q->off, q->len, data), data,
				  q->len, q->off);
	case RNBD_OP_WRITE:
		return full_pwrite(rnbd__export_fd(e, q->off, q->len, data), data,
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
int rnbd__io_try_nowait(const struct io_req *q, void *data, uint32_t *done)
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

static struct io_uring_sqe *ring_sqe(struct rnbd_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (!sqe) {                     /* full: hand what is there over */
		io_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	return sqe;
}

/* Queue the next step of @j: its PREFLUSH, or (the rest of) its IO. */
static void ring_prep(struct rnbd_ring *r, struct job *j)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	char *buf = (char *)j->data + j->done;
	int fd = rnbd__export_fd(j->q.e, j->q.off + j->done,
				 j->q.len - j->done, buf);

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
	r->inflight++;
}

static void ring_arm_wake(struct rnbd_ring *r)
{
	struct io_uring_sqe *sqe = ring_sqe(r);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, r->efd, &r->efd_val, sizeof(r->efd_val), 0);
	io_uring_sqe_set_data64(sqe, TAG_WAKE);
}

static void ring_done(struct rnbd_ring *r, struct job *j, int res)
{
	r->inflight--;
	if (res == -EAGAIN || res == -EINTR) {
		ring_prep(r, j);        /* try the same step again */
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
			rtrs_srv_resp(j->op, j->q.op == RNBD_OP_READ ? -EINVAL
								     : -EIO);
			free(j);
			return;
		}
		j->done += (uint32_t)res;
	}
	if (j->q.op != RNBD_OP_FLUSH ? j->done < j->q.len : j->preflush) {
		ring_prep(r, j);
		return;
	}
	rtrs_srv_resp(j->op, 0);
	free(j);
}

static void *ring_main(void *arg)
{
	struct rnbd_ring *r = arg;

	ring_arm_wake(r);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct job *q;
		unsigned head, n = 0;
		bool wake = false, stop;

		io_uring_submit_and_wait(&r->ring, 1);
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			if (io_uring_cqe_get_data64(cqe) == TAG_WAKE)
				wake = true;
			else
				ring_done(r, io_uring_cqe_get_data(cqe), cqe->res);
			n++;
		}
		io_uring_cq_advance(&r->ring, n);
		if (!wake)
			continue;
		/* take the list, prepare it after: ring_prep() may answer a
		 * job (rtrs_srv_resp() takes librtrs's locks), and the ring's
		 * lock is a leaf */
		rtrs__lock(&r->lock);
		q = r->head;
		r->head = NULL;
		r->tail = &r->head;
		stop = r->stop;
		rtrs__unlock(&r->lock);
		while (q) {
			struct job *j = q;

			q = j->next;
			ring_prep(r, j);
		}
		if (stop && !r->inflight)
			break;
		ring_arm_wake(r);
	}
	return NULL;
}

static void ring_wake(struct rnbd_ring *r)
{
	uint64_t one = 1;

	if (write(r->efd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "rnbd-server: cannot wake the ring\n");
}

void rnbd__ring_queue(struct rnbd_ring *r, struct job *j)
{
	j->next = NULL;
	rtrs__lock(&r->lock);
	*r->tail = j;
	r->tail = &j->next;
	rtrs__unlock(&r->lock);
	ring_wake(r);
}

int rnbd__ring_start(struct rnbd_ring *r)
{
	int ret;

	rtrs__lock_init(&r->lock, RNBD_RANK_RING, "ring.lock");
	r->tail = &r->head;
	r->efd = eventfd(0, EFD_CLOEXEC);
	if (r->efd < 0)
		return -errno;
	ret = io_uring_queue_init(RING_ENTRIES, &r->ring, 0);
	if (ret) {
		close(r->efd);
		r->efd = -1;
		return ret;
	}
	ret = -pthread_create(&r->thr, NULL, ring_main, r);
	if (ret) {
		io_uring_queue_exit(&r->ring);
		close(r->efd);
		r->efd = -1;
		return ret;
	}
	r->on = true;
	return 0;
}

/* After every request was answered: end the ring thread. */
void rnbd__ring_stop(struct rnbd_ring *r)
{
	if (!r->on)
		return;
	rtrs__lock(&r->lock);
	r->stop = true;
	rtrs__unlock(&r->lock);
	ring_wake(r);
	pthread_join(r->thr, NULL);
	io_uring_queue_exit(&r->ring);
	close(r->efd);
}
