/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The registry of open sessions and server contexts (registry.h). */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/util.h"

struct reg_ent {
	struct rtrs_list node;
	enum rtrs_reg_kind kind;
	void *obj;
};

static struct {
	pthread_mutex_t life;           /* add/remove and the hook; outer */
	pthread_mutex_t lock;           /* the list and a running command */
	struct rtrs_list ents;
	unsigned n;
	const struct rtrs__reg_hook *hook;
} R = {
	.life = PTHREAD_MUTEX_INITIALIZER,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.ents = { &R.ents, &R.ents },
};

void rtrs__reg_set_hook(const struct rtrs__reg_hook *h)
{
	pthread_mutex_lock(&R.life);
	R.hook = h;
	pthread_mutex_unlock(&R.life);
}

void rtrs__reg_add(enum rtrs_reg_kind kind, void *obj)
{
	struct reg_ent *e = calloc(1, sizeof(*e));

	if (!e) {
		rtrs_warn("ctl: out of memory, session not on the control socket");
		return;
	}
	e->kind = kind;
	e->obj = obj;
	pthread_mutex_lock(&R.life);
	pthread_mutex_lock(&R.lock);
	rtrs_list_add_tail(&R.ents, &e->node);
	R.n++;
	pthread_mutex_unlock(&R.lock);
	if (R.hook)
		R.hook->added(R.n);
	pthread_mutex_unlock(&R.life);
}

void rtrs__reg_del(void *obj)
{
	struct rtrs_list *pos, *tmp;
	struct reg_ent *found = NULL;

	pthread_mutex_lock(&R.life);
	pthread_mutex_lock(&R.lock);    /* waits for a running command */
	rtrs_list_for_each_safe(pos, tmp, &R.ents) {
		struct reg_ent *e = container_of(pos, struct reg_ent, node);

		if (e->obj == obj) {
			rtrs_list_del(&e->node);
			R.n--;
			found = e;
			break;
		}
	}
	pthread_mutex_unlock(&R.lock);
	if (found && R.hook)
		R.hook->removed(R.n);
	pthread_mutex_unlock(&R.life);
	free(found);
}

void rtrs__reg_lock(void)
{
	pthread_mutex_lock(&R.lock);
}

void rtrs__reg_unlock(void)
{
	pthread_mutex_unlock(&R.lock);
}

void *rtrs__reg_next(void *prev, enum rtrs_reg_kind *kind)
{
	struct rtrs_list *pos = R.ents.next;

	if (prev) {
		/* from the entry of @prev: the list is short (one entry per
		 * open session or context) */
		for (; pos != &R.ents; pos = pos->next)
			if (container_of(pos, struct reg_ent, node)->obj == prev)
				break;
		if (pos != &R.ents)
			pos = pos->next;
	}
	if (pos == &R.ents)
		return NULL;
	*kind = container_of(pos, struct reg_ent, node)->kind;
	return container_of(pos, struct reg_ent, node)->obj;
}
