// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The work queue of workq.h: a list under one mutex and a condition
 * variable, drained by a fixed set of threads. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "workq.h"

struct rtrs_workq {
	pthread_mutex_t lock;           /* head, tail, stop */
	pthread_cond_t cond;
	struct rtrs_work *head, **tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

static void *workq_main(void *arg)
{
	struct rtrs_workq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct rtrs_work *w;

		while (!q->head && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (!q->head)
			break;
		w = q->head;
		q->head = w->next;
		if (!q->head)
			q->tail = &q->head;
		pthread_mutex_unlock(&q->lock);
		w->run(w);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* End the first @n threads of @q and free it. */
static void workq_end(struct rtrs_workq *q, unsigned n)
{
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(q->threads[i], NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
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
	pthread_mutex_init(&q->lock, NULL);
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
	pthread_mutex_lock(&q->lock);
	*q->tail = w;
	q->tail = &w->next;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void rtrs__workq_stop(struct rtrs_workq *q)
{
	if (q)
		workq_end(q, q->nthreads);
}
