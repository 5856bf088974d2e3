// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The work queue of workq.h: a list under one ranked lock (a leaf,
 * RTRS_RANK_WORKQ) and a condition variable, drained by a fixed set of
 * threads. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "lock.h"
#include "workq.h"

struct rtrs_workq {
	struct rtrs_lock lock;          /* head, tail, stop */
	pthread_cond_t cond;
	struct rtrs_work *head, **tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

static void *workq_main(void *arg)
{
	struct rtrs_workq *q = arg;

	rtrs__lock(&q->lock);
	for (;;) {
		struct rtrs_work *w;

		while (!q->head && !q->stop)
			rtrs__cond_wait(&q->cond, &q->lock, NULL);
		if (!q->head)
			break;
		w = q->head;
		q->head = w->next;
		if (!q->head)
			q->tail = &q->head;
		rtrs__unlock(&q->lock);
		w->run(w);
		rtrs__lock(&q->lock);
	}
	rtrs__unlock(&q->lock);
	return NULL;
}

/* End the first @n threads of @q and free it. */
static void workq_end(struct rtrs_workq *q, unsigned n)
{
	rtrs__lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	rtrs__unlock(&q->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->cond);
	rtrs__lock_destroy(&q->lock);
	free(q);
}

int rtrs__workq_start(unsigned nthreads, struct rtrs_workq **out)
{
	struct rtrs_workq *q;

	if (!nthreads)
		return -EINVAL;
	q = calloc(1, sizeof(*q) + nthreads * sizeof(q->threads[0]));
	if (!q)
		return -ENOMEM;
	rtrs__lock_init(&q->lock, RTRS_RANK_WORKQ, "workq");
	pthread_cond_init(&q->cond, NULL);
	q->tail = &q->head;
	for (unsigned i = 0; i < nthreads; i++) {
		int ret = pthread_create(&q->threads[i], NULL, workq_main, q);

		if (ret) {
			workq_end(q, i);
			return -ret;
		}
	}
	q->nthreads = nthreads;
	*out = q;
	return 0;
}

void rtrs__workq_push(struct rtrs_workq *q, struct rtrs_work *w)
{
	w->next = NULL;
	rtrs__lock(&q->lock);
	*q->tail = w;
	q->tail = &w->next;
	pthread_cond_signal(&q->cond);
	rtrs__unlock(&q->lock);
}

void rtrs__workq_stop(struct rtrs_workq *q)
{
	if (q)
		workq_end(q, q->nthreads);
}
