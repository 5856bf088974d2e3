// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Registrations: provider MRs, and with software RMA (swrma.c) their
 * entries in the domain's key table (../keytab.c, which makes the checks
 * of incoming frames and the copy). */
#include "ofi.h"

#include <errno.h>
#include <stdlib.h>

#include "util/log.h"

/* ---- registrations ---- */

static int mr_reg(struct fab_dom *d, void *buf, size_t len, unsigned access,
		  const void *scope, struct fab_mr **out)
{
	struct fab_mr *m;
	uint64_t acc = 0;
	int ret = -ENOKEY;

	if (!buf || !len)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (access & FAB_ACC_LOCAL)
		acc |= FI_SEND | FI_RECV | FI_WRITE | FI_READ;
	if (access & FAB_ACC_SOURCE)
		acc |= FI_SEND | FI_WRITE;
	/* software RMA: remote access is checked by us (../keytab.c), never
	 * given to the provider; without mr_local nothing is registered
	 * with it at all */
	if ((access & FAB_ACC_REMOTE_WRITE) && !d->caps.sw_rma)
		acc |= FI_REMOTE_WRITE;
	if (d->caps.sw_rma && !d->caps.mr_local)
		ret = 0;
	/* Requested keys must be unique in the domain: random 32-bit keys,
	 * retried on a collision. Random also keeps other sessions' keys
	 * unguessable. Key 0 is never used. */
	for (int tries = 0; tries < 16 && ret == -ENOKEY; tries++) {
		uint32_t key = 0;

		while (!key)
			key = rtrs__random_u32();
		rtrs__wrlock(&d->map_lock);
		ret = fi_mr_reg(d->domain, buf, len, acc, 0, key, 0, &m->mr,
				NULL);
		rtrs__rwunlock(&d->map_lock);
		ret = rtrs__ofi_errno(ret);
		if (!ret) {
			uint64_t k = fi_mr_key(m->mr);

			if (k > UINT32_MAX) {
				/* our wire carries 32-bit keys */
				rtrs__wrlock(&d->map_lock);
				fi_close(&m->mr->fid);
				rtrs__rwunlock(&d->map_lock);
				ret = -EOVERFLOW;
				break;
			}
			m->k.key = (uint32_t)k;
		}
	}
	if (ret) {
		free(m);
		return ret;
	}
	m->obj = d->obj;
	m->dom = d;
	m->k.base = buf;
	m->k.len = len;
	m->k.access = access;
	m->k.scope = scope;
	if (d->caps.sw_rma)
		rtrs__fab_keytab_add(&d->keys, &m->k);	/* our key */
	rtrs__ofi_dom_get(d);
	*out = m;
	return 0;
}

int rtrs__ofi_mr_reg(struct fab_dom *d, void *buf, size_t len,
		     unsigned access, struct fab_mr **out)
{
	return mr_reg(d, buf, len, access, NULL, out);
}

int rtrs__ofi_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			  const void *scope, struct fab_mr **out)
{
	return mr_reg(d, buf, len, FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE, scope,
		      out);
}

void rtrs__ofi_mr_close(struct fab_mr *m)
{
	if (!m)
		return;
	if (m->dom->caps.sw_rma)
		rtrs__fab_keytab_del(&m->dom->keys, &m->k);
	if (m->mr) {
		rtrs__wrlock(&m->dom->map_lock);
		fi_close(&m->mr->fid);
		rtrs__rwunlock(&m->dom->map_lock);
	}
	rtrs__ofi_dom_put(m->dom);
	free(m);
}

uint32_t rtrs__ofi_mr_key(const struct fab_mr *m)
{
	return m->k.key;
}

void *rtrs__ofi_mr_desc(const struct fab_mr *m)
{
	return m && m->mr ? fi_mr_desc(m->mr) : NULL;
}

uint64_t rtrs__ofi_mr_raddr(const struct fab_mr *m, const void *p)
{
	uint64_t off = (uint64_t)((const uint8_t *)p - m->k.base);

	return m->dom->caps.mr_virt_addr ? (uint64_t)(uintptr_t)m->k.base + off
					 : off;
}
