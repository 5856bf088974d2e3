// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The backends and the choice among them: the calls of fabric.h that take
 * no object of a backend (the engine, opening a domain, a poller). Every
 * other call dispatches inline through the object's table (fabric.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"

extern const struct rtrs__fab_ops rtrs__ofi_ops;
extern const struct rtrs__fab_ops rtrs__rd_ops;
extern const struct rtrs__fab_ops rtrs__sk_ops;

/* The default backend first; then rdma-core, for the name "rdma"; then
 * plain sockets, for the name "sock" (docs/design.md §11). */
static const struct rtrs__fab_ops *const backends[] = {
	&rtrs__ofi_ops,
	&rtrs__rd_ops,
	&rtrs__sk_ops,
};

#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

static const char *pick_prov(const char *prov)
{
	if (prov && *prov)
		return prov;
	prov = getenv("RTRS_PROVIDER");
	return prov && *prov ? prov : RTRS_FAB_DEFAULT_PROV;
}

/* The backend that owns provider name @prov, else the default one. */
static const struct rtrs__fab_ops *backend_for(const char *prov)
{
	for (size_t i = 0; i < NBACKENDS; i++)
		if (backends[i]->prov && !strcmp(backends[i]->prov, prov))
			return backends[i];
	return backends[0];
}

int rtrs__fab_engine_get(void)
{
	for (size_t i = 0; i < NBACKENDS; i++) {
		int ret = backends[i]->engine_get();

		if (ret) {
			while (i--)
				backends[i]->engine_put();
			return ret;
		}
	}
	return 0;
}

void rtrs__fab_engine_put(void)
{
	for (size_t i = NBACKENDS; i--;)
		backends[i]->engine_put();
}

unsigned rtrs__fab_nloops(void)
{
	return backends[0]->nloops();
}

int rtrs__fab_dom_open(const char *prov, const char *node,
		       const char *service, const char *src_node, bool passive,
		       struct fab_dom **out)
{
	const struct rtrs__fab_ops *o;
	int ret;

	prov = pick_prov(prov);
	o = backend_for(prov);
	ret = o->dom_open(prov, node, service, src_node, passive, out);
	if (!ret)
		((struct fab_obj *)*out)->ops = o;
	return ret;
}

int rtrs__fab_poller_create(const char *prov, struct fab_poller **out)
{
	const struct rtrs__fab_ops *o = backend_for(pick_prov(prov));
	int ret = o->poller_create(out);

	if (!ret)
		((struct fab_obj *)*out)->ops = o;
	return ret;
}
