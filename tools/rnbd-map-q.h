/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * rnbd map's hardware queues (rnbd-map-q.c) and the state that the map
 * daemon (rnbd-map.c) shares with them. Private to those two files.
 */
#ifndef RNBD_MAP_Q_H
#define RNBD_MAP_Q_H

#include <liburing.h>
#include <linux/ublk_cmd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rnbd/rnbd.h"

struct mapq;

struct tag {
	struct mapq *q;
	unsigned tag;
	int ok;         /* the result of success: bytes for READ/WRITE, else 0 */
	int status;     /* from librnbd's callback */
};

/* One ublk hardware queue: its tags, its buffers and its thread. */
struct mapq {
	struct map *m;
	unsigned id;
	struct ublksrv_io_desc *iod;    /* the kernel's descriptors, read-only */
	size_t iod_len;
	char *bufs;
	struct tag *tags;
	int efd;
	/* the queue thread's */
	pthread_t thr;
	bool started;
	struct io_uring ring;
	unsigned inflight, aborted, ndeferred, *deferred, *batch;
	uint64_t evbuf;
	/* set by librnbd's callbacks, taken by the queue thread */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int err;                        /* setup, -EINPROGRESS until known */
	bool fetched;                   /* its tags are in the kernel */
	unsigned ndone, *done;
};

struct map {
	struct rnbd_sess *sess;
	struct rnbd_dev *dev;
	struct rnbd_dev_info in;
	int ctrl_fd, cdev_fd;
	struct io_uring ctrl;
	bool ctrl_ring, added;
	uint32_t dev_id;
	unsigned nq, qd;                /* queues, tags per queue */
	size_t buf_size;                /* bytes per tag */
	struct mapq *qs;
	atomic_bool stopping;
};

/* a URING_CMD in a 128-byte SQE */
static inline void rnbd_map_uring_cmd(struct io_uring_sqe *sqe, int fd,
				      unsigned op, const void *cmd, size_t len,
				      uint64_t data)
{
	memset(sqe, 0, 2 * sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	memcpy(sqe->cmd, cmd, len);
	sqe->user_data = data;
}

/* Allocate queue @id of @m (m->cdev_fd open, m->qd and m->buf_size
 * set): its descriptors mapped, buffers, tags; 0 or -errno.  On error
 * rnbd_mapq_free() frees what it got. */
int rnbd_mapq_init(struct map *m, unsigned id);
/* Start its thread, which fetches every tag: 0 once the fetches are in
 * the kernel, or -errno (the thread is gone then). */
int rnbd_mapq_start(struct mapq *q);
/* After the device stopped (STOP_DEV aborts every tag): join the thread
 * and free the queue. */
void rnbd_mapq_free(struct mapq *q);

#endif
