/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The registry of open sessions and server contexts (registry.h). */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/lock.h"
#include "util/log.h"
#include "util/util.h"

struct reg_ent {
	struct rtrs_list node;
	enum rtrs_reg_kind kind;
	void *obj;
};

static struct {
	struct rtrs_lock life;           /* add/remove and the hook; outer */
	struct rtrs_lock lock;           /* the list and a running command */
	struct rtrs_list ents;
	unsigned n;
	const struct rtrs__reg_hook *hook;
} R = {
	.life = RTRS_LOCK_INITIALIZER(RTRS_RANK_REG_LIFE, "registry life"),
	.lock = RTRS_LOCK_INITIALIZER(RTRS_RANK_REG, "registry"),
	.ents = { &R.ents, &R.ents },
};

void rtrs__reg_set_hook(const struct rtrs__reg_hook *h)
{
	rtrs__lock(&R.life);
	R.hook = h;
	rtrs__unlock(&R.life);
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
	rtrs__lock(&R.life);
	rtrs__lock(&R.lock);
	rtrs_list_add_tail(&R.ents, &e->node);
	R.n++;
	rtrs__unlock(&R.lock);
	if (R.hook)
		R.hook->added(R.n);
	rtrs__unlock(&R.life);
}

void rtrs__reg_del(void *obj)
{
	struct rtrs_list *pos, *tmp;
	struct reg_ent *found = NULL;

	rtrs__lock(&R.life);
	rtrs__lock(&R.lock);    /* waits for a running command */
	rtrs_list_for_each_safe(pos, tmp, &R.ents) {
		struct reg_ent *e = container_of(pos, struct reg_ent, node);

		if (e->obj == obj) {
			rtrs_list_del(&e->node);
			R.n--;
			found = e;
			break;
		}
	}
	rtrs__unlock(&R.lock);
	if (found && R.hook)
		R.hook->removed(R.n);
	rtrs__unlock(&R.life);
	free(found);
}

void rtrs__reg_lock(void)
{
	rtrs__lock(&R.lock);
}

void rtrs__reg_unlock(void)
{
	rtrs__unlock(&R.lock);
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
