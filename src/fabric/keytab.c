// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The software-RMA key table (keytab.h): the checks every backend that
 * carries RMA as messages makes on an incoming frame's key, scope and
 * range, and the copy into the region under the table's lock. */
#include "fabric/keytab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fabric/fabric.h"
#include "util/util.h"

int rtrs__fab_keytab_init(struct fab_keytab *t, unsigned rank,
			  const char *name)
{
	int ret;

	t->b = calloc(FAB_KEYTAB_BUCKETS, sizeof(*t->b));
	if (!t->b)
		return -ENOMEM;
	ret = rtrs__rwlock_init(&t->lock, rank, name);
	if (ret) {
		free(t->b);
		t->b = NULL;
	}
	return ret;
}

/* b is set only once the lock is made (init above) */
void rtrs__fab_keytab_fini(struct fab_keytab *t)
{
	if (!t->b)
		return;
	rtrs__rwlock_destroy(&t->lock);
	free(t->b);
	t->b = NULL;
}

/* Under the lock, either way. */
static struct fab_key *find(const struct fab_keytab *t, uint32_t key)
{
	struct fab_key *k = t->b[key % FAB_KEYTAB_BUCKETS];

	while (k && k->key != key)
		k = k->next;
	return k;
}

void rtrs__fab_keytab_add(struct fab_keytab *t, struct fab_key *k)
{
	uint32_t key;

	rtrs__wrlock(&t->lock);
	/* random: other sessions' keys stay unguessable; 0 never */
	do
		key = rtrs__random_u32();
	while (!key || find(t, key));
	k->key = key;
	k->next = t->b[key % FAB_KEYTAB_BUCKETS];
	t->b[key % FAB_KEYTAB_BUCKETS] = k;
	rtrs__rwunlock(&t->lock);
}

void rtrs__fab_keytab_del(struct fab_keytab *t, struct fab_key *k)
{
	struct fab_key **pp;

	rtrs__wrlock(&t->lock);
	for (pp = &t->b[k->key % FAB_KEYTAB_BUCKETS]; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	}
	rtrs__rwunlock(&t->lock);
}

int rtrs__fab_keytab_rma_begin(struct fab_keytab *t, const void *scope,
			       uint32_t key, uint64_t off, uint32_t len,
			       uint8_t **dst)
{
	struct fab_key *k;
	int ret = 0;

	rtrs__rdlock(&t->lock);
	k = find(t, key);
	/* another path's (or session's) key counts as unknown */
	if (!k || !(k->access & FAB_ACC_REMOTE_WRITE) || k->scope != scope)
		ret = -EACCES;
	else if (off > k->len || len > k->len - off)    /* no sum, no wrap */
		ret = -ERANGE;
	if (ret) {
		rtrs__rwunlock(&t->lock);
		return ret;
	}
	*dst = k->base + off;
	return 0;
}

void rtrs__fab_keytab_rma_end(struct fab_keytab *t)
{
	rtrs__rwunlock(&t->lock);
}

int rtrs__fab_keytab_rma_in(struct fab_keytab *t, const void *scope,
			    uint32_t key, uint64_t off, const void *src,
			    uint32_t len)
{
	uint8_t *dst;
	int ret;

	ret = rtrs__fab_keytab_rma_begin(t, scope, key, off, len, &dst);
	if (ret)
		return ret;
	if (len)
		memcpy(dst, src, len);
	rtrs__fab_keytab_rma_end(t);
	return 0;
}
