/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A work queue: jobs run in push order on a few threads, each job by its
 * own run callback. For servers whose librtrs rdma_ev (a progress thread,
 * which must not block) hands requests to threads that may block:
 * rnbd-server's worker pool, rtrs-perf --resp-thread.
 *
 * Threading: rtrs__workq_push() from any thread; rtrs__workq_stop() once,
 * by the owner, after the last push. run() is called on a queue thread
 * with no lock held; it owns the job (frees it).
 */
#ifndef RTRS_UTIL_WORKQ_H
#define RTRS_UTIL_WORKQ_H

/* A job; embed it in your own struct. */
struct rtrs_work {
	struct rtrs_work *next;         /* the queue's, under its lock */
	void (*run)(struct rtrs_work *w);
};

struct rtrs_workq;

/* Start @nthreads (>= 1) threads. 0, -EINVAL, -ENOMEM, or a
 * pthread_create() error (negative): then no thread runs. */
int rtrs__workq_start(unsigned nthreads, struct rtrs_workq **out);

/* Queue @w (its run set) behind the others. Never blocks for long (the
 * queue's lock only); never fails. */
void rtrs__workq_push(struct rtrs_workq *q, struct rtrs_work *w);

/* Run every job still queued, end the threads, free @q. Blocks until the
 * jobs are done. NULL: nothing. */
void rtrs__workq_stop(struct rtrs_workq *q);

#endif
