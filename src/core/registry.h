/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The registry: the open client sessions and server contexts of this
 * process, below both roles.  The roles add what they open and remove what
 * they close; the control socket (ctl.c, above the public API) installs a
 * hook to hear of both and walks the registry under its lock, so that an
 * object cannot be removed while a command uses it.  Nothing here calls up:
 * the hook is the only way out.
 *
 * Lock order: reg.life (add/remove and the hook's start/stop) before
 * reg.lock (the list and a running command).
 */
#ifndef RTRS_CORE_REGISTRY_H
#define RTRS_CORE_REGISTRY_H

#include <stdbool.h>

/* Ranks (util/lock.h): the outermost locks of the library; the roles'
 * (200-399) come after them, the timer's (800) last. */
#define RTRS_RANK_REG_LIFE 100
#define RTRS_RANK_REG 110

enum rtrs_reg_kind { RTRS_REG_CLT = 1, RTRS_REG_SRV = 2 };

/* Called with reg.life held (not reg.lock): @n objects are registered
 * after the change. */
struct rtrs__reg_hook {
	void (*added)(unsigned n);
	void (*removed)(unsigned n);
};

/* Install the hook (ctl.c, when the library loads). */
void rtrs__reg_set_hook(const struct rtrs__reg_hook *h);

/* A role opened / is closing @obj.  Del waits for a command that runs with
 * the registry locked.  Add fails only without memory: the object is then
 * not on the control socket (a warning says so). */
void rtrs__reg_add(enum rtrs_reg_kind kind, void *obj);
void rtrs__reg_del(void *obj);

/* For the control socket: lock the registry, walk it, unlock. */
void rtrs__reg_lock(void);
void rtrs__reg_unlock(void);
/* The object after @prev (NULL: the first) or NULL at the end; its kind in
 * @kind.  Called with the registry locked. */
void *rtrs__reg_next(void *prev, enum rtrs_reg_kind *kind);

#endif
