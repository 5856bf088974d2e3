// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Client permits: one per chunk of the server's queue, taken before a
 * request and put back after its conf; a free list under sess->lock, whose
 * waiters sleep on sess->cond (close wakes them with -ESHUTDOWN).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "clt_int.h"

int rtrs__clt_permits_init(struct rtrs_clt_sess *s, uint32_t qd)
{
	s->permits = calloc(qd, sizeof(*s->permits));
	s->free_permits = calloc(qd, sizeof(uint32_t));
	if (!s->permits || !s->free_permits)
		return -ENOMEM;
	for (uint32_t i = 0; i < qd; i++) {
		s->permits[i].mem_id = i;
		s->free_permits[i] = qd - 1 - i;
	}
	s->nfree = qd;
	return 0;
}

bool rtrs__clt_permit_valid(const struct rtrs_clt_sess *s,
			    const struct rtrs_permit *pm)
{
	return pm >= s->permits && pm < s->permits + s->geom.queue_depth &&
	       pm->taken;
}

static int get_permit(struct rtrs_clt_sess *s, enum rtrs_con_type type,
		      int wait_ms, struct rtrs_permit **out)
{
	struct timespec dl;
	int ret = 0;

	if (!s || !out || (type != RTRS_ADMIN_CON && type != RTRS_IO_CON))
		return -EINVAL;
	if (wait_ms > 0)
		dl = rtrs_deadline((unsigned)wait_ms);
	rtrs__lock(&s->lock);
	while (!s->closing && s->nfree == 0) {
		if (wait_ms == 0) {
			ret = -EAGAIN;
			break;
		}
		s->permit_waiters++;
		if (wait_ms < 0)
			rtrs__cond_wait(&s->cond, &s->lock, NULL);
		else
			ret = -rtrs__cond_wait(&s->cond, &s->lock, &dl);
		s->permit_waiters--;
		if (ret == ETIMEDOUT && s->nfree == 0) {
			ret = -ETIMEDOUT;
			break;
		}
		ret = 0;
	}
	if (!ret && s->closing)
		ret = -ESHUTDOWN;
	if (!ret) {
		struct rtrs_permit *p = &s->permits[s->free_permits[--s->nfree]];

		p->taken = true;
		p->con_type = type;
		p->cpu = sched_getcpu();
		*out = p;
	}
	rtrs__unlock(&s->lock);
	return ret;
}

int rtrs_clt_get_permit(struct rtrs_clt_sess *s, enum rtrs_con_type type,
			enum rtrs_wait wait, struct rtrs_permit **out)
{
	if (wait != RTRS_PERMIT_WAIT && wait != RTRS_PERMIT_NOWAIT)
		return -EINVAL;
	return get_permit(s, type, wait == RTRS_PERMIT_WAIT ? -1 : 0, out);
}

int rtrs_clt_get_permit_timed(struct rtrs_clt_sess *s, enum rtrs_con_type type,
			      unsigned int timeout_ms, struct rtrs_permit **out)
{
	return get_permit(s, type, timeout_ms > INT32_MAX ? INT32_MAX
							  : (int)timeout_ms,
			  out);
}

void rtrs_clt_put_permit(struct rtrs_clt_sess *s, struct rtrs_permit *pm)
{
	if (!s || !rtrs__clt_permit_valid(s, pm)) {
		rtrs_err("put_permit: not a taken permit of this session");
		return;
	}
	if (atomic_load(&s->reqs[pm->mem_id].state) != REQ_IDLE) {
		rtrs_err("put_permit: permit %u has a request in flight",
			 pm->mem_id);
		return;
	}
	rtrs__lock(&s->lock);
	pm->taken = false;
	s->free_permits[s->nfree++] = pm->mem_id;
	if (s->permit_waiters)
		pthread_cond_broadcast(&s->cond);
	rtrs__unlock(&s->lock);
}
