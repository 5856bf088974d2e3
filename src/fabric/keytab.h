/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The software-RMA key table, backend-neutral (keytab.c): a domain's own
 * table of the registrations, by key, that incoming RMA frames
 * (docs/protocol.md §2.6) are checked against before anything lands. A
 * backend that carries RMA as messages (the libfabric one on tcp and net,
 * ofi/swrma.c) embeds a struct fab_key in each registration and a struct
 * fab_keytab in its domain, and calls nothing else for the checks:
 *   - a key is random, nonzero and unique in its table (other sessions'
 *     keys stay unguessable);
 *   - a frame needs a key of the table with FAB_ACC_REMOTE_WRITE and of
 *     the connection's scope (another path's or session's key counts as
 *     unknown): else -EACCES;
 *   - and off <= len && n <= len - off (no sum, no wrap): else -ERANGE;
 *   - the bytes land under the table's lock held shared, and removing a
 *     key takes it exclusive, so that once rtrs__fab_keytab_del() returns
 *     nothing lands in the region any more (a revoked key is revoked).
 *
 * Threading: every call may be made from any thread; add and del may
 * block on the lock (for a copy in progress), the others only on a del or
 * add in progress. The lock is a leaf of the backend's lock order (its
 * @rank, docs/design.md §5): nothing is taken under it, no callback runs
 * under it.
 */
#ifndef RTRS_FABRIC_KEYTAB_H
#define RTRS_FABRIC_KEYTAB_H

#include <stddef.h>
#include <stdint.h>

#include "util/lock.h"

#define FAB_KEYTAB_BUCKETS 1024

struct fab_key {                /* embedded in a backend's registration */
	uint32_t key;           /* set by rtrs__fab_keytab_add() */
	unsigned access;        /* FAB_ACC_* of fabric.h */
	const void *scope;      /* rtrs__fab_mr_reg_peer()'s scope, or NULL */
	uint8_t *base;
	size_t len;
	struct fab_key *next;   /* the table's bucket chain */
};

struct fab_keytab {
	struct rtrs_rwlock lock;
	struct fab_key **b;     /* FAB_KEYTAB_BUCKETS buckets */
};

/* 0 or -ENOMEM / -errno of the lock's init; @rank: the lock's rank
 * (util/lock.h), the backend's place for it in docs/design.md §5. @name
 * must outlive the table. */
int rtrs__fab_keytab_init(struct fab_keytab *t, unsigned rank,
			  const char *name);
/* Safe on a zeroed or half-made one; no key may be left in it. */
void rtrs__fab_keytab_fini(struct fab_keytab *t);
/* Give @k a random nonzero key unique in @t and insert it (k->access,
 * scope, base, len set by the caller). Takes the lock exclusive. */
void rtrs__fab_keytab_add(struct fab_keytab *t, struct fab_key *k);
/* Remove @k; when it returns no copy into @k's region runs or will run.
 * Takes the lock exclusive: waits for a copy in progress. */
void rtrs__fab_keytab_del(struct fab_keytab *t, struct fab_key *k);
/* Copy @len bytes from @src to [@off, @off+@len) of the registration @key
 * of @scope: 0, -EACCES (no such key in @t, no FAB_ACC_REMOTE_WRITE,
 * another scope), -ERANGE (outside). Takes the lock shared. */
int rtrs__fab_keytab_rma_in(struct fab_keytab *t, const void *scope,
			    uint32_t key, uint64_t off, const void *src,
			    uint32_t len);
/* The same checks, without copying: on 0 *@dst is where the bytes go, and
 * the table's lock is HELD SHARED until rtrs__fab_keytab_rma_end(@t) on
 * the same thread (the caller fills the region, e.g. by recv(), without
 * blocking and without taking another lock, then ends). On an error
 * nothing is held. */
int rtrs__fab_keytab_rma_begin(struct fab_keytab *t, const void *scope,
			       uint32_t key, uint64_t off, uint32_t len,
			       uint8_t **dst);
void rtrs__fab_keytab_rma_end(struct fab_keytab *t);

#endif
