// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Domains over libfabric: opening a fabric and domain for an address,
 * reading the provider's capabilities, a server path's own domain; and the
 * process-wide settings libfabric needs at load. */
#include "ofi.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/*
 * Debian's libfabric links libinfinipath (its psm provider), whose load-time
 * constructor installs handlers for SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL
 * and SIGABRT that print a message and call exit(1): a crashed process then
 * runs exit handlers beside the threads it broke, and can hang instead of
 * dumping core; Ctrl-C exits with status 1. We never use psm (it has no
 * FI_EP_MSG endpoints). Those signals get their default action back, but
 * only while the handler installed is that library's. This runs after the
 * constructors of our dependencies, before the application's main.
 */
/*
 * libfabric's verbs provider caches registrations by default (a memory
 * monitor keeps them alive after fi_close): a revoked key stays valid (so
 * always_invalidate and the client's per-READ keys would revoke nothing),
 * a registration is found again with its old key, and every cached
 * registration asks for write access, which a read-only mapping refuses.
 * librtrs needs fi_close(mr) to revoke: the cache is off unless the
 * application set FI_MR_CACHE_MONITOR itself, in which case a domain that
 * caches is refused (mr_cache_probe()). Runs at load, before libfabric
 * reads its environment.
 */
__attribute__((constructor)) static void fab_mr_cache_off(void)
{
	setenv("FI_MR_CACHE_MONITOR", "disabled", 0);
}

__attribute__((constructor)) static void fab_signals_default(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL,
				    SIGABRT };

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		Dl_info di;
		void *h;

		if (sigaction(sigs[i], NULL, &sa))
			continue;
		h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction
					       : (void *)sa.sa_handler;
		if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN ||
		    !dladdr(h, &di) || !di.dli_fname)
			continue;
		if (strstr(di.dli_fname, "infinipath") ||
		    strstr(di.dli_fname, "libpsm"))
			signal(sigs[i], SIG_DFL);
	}
}

/*
 * Providers whose RMA is checked by hardware or a kernel driver against
 * the registration (verbs: the HCA, rxe or siw check rkey, bounds and
 * access). Every other provider gets software RMA (swrma.c): tcp and net
 * emulate RMA in user space with a bound check that wraps (libfabric
 * 1.17, and upstream: ofi_mr_map_verify() compares addr + len with the
 * region's end). $RTRS_SW_RMA=1 (tests) takes the software path on a
 * provider listed here too. $RTRS_NO_CQ_DATA (tests) makes tcp and net act
 * as iWARP hardware, with its RMA: no software RMA then.
 */
static const char *const rma_checked[] = { "verbs" };

static bool sw_rma(const char *prov)
{
	const char *f = getenv("RTRS_SW_RMA");

	if (f && !strcmp(f, "1"))
		return true;
	for (size_t i = 0; i < sizeof(rma_checked) / sizeof(rma_checked[0]); i++)
		if (!strcmp(prov, rma_checked[i]))
			return false;
	return true;
}

static void read_caps(struct fab_dom *d)
{
	struct fi_info *i = d->info;
	uint64_t m = i->domain_attr->mr_mode;
	struct fab_caps *c = &d->caps;

	snprintf(c->prov, sizeof(c->prov), "%s", i->fabric_attr->prov_name);
	snprintf(c->domain, sizeof(c->domain), "%s",
		 i->domain_attr->name ? i->domain_attr->name : "");
	c->inject_size = i->tx_attr->inject_size;
	c->tx_iov_limit = i->tx_attr->iov_limit ? i->tx_attr->iov_limit : 1;
	c->rma_iov_limit = i->tx_attr->rma_iov_limit ? i->tx_attr->rma_iov_limit : 1;
	c->tx_size = i->tx_attr->size ? i->tx_attr->size : 256;
	c->rx_size = i->rx_attr->size ? i->rx_attr->size : 256;
	c->mr_local = m & (FI_MR_LOCAL | FI_MR_BASIC);
	/* a provider that needs local registrations has hardware (or a
	 * kernel driver) read registered memory: by the pages pinned at
	 * registration; tcp and net read the virtual address at send time */
	c->mr_pins = c->mr_local;
	c->mr_virt_addr = m & (FI_MR_VIRT_ADDR | FI_MR_BASIC);
	c->mr_prov_key = m & (FI_MR_PROV_KEY | FI_MR_BASIC);
	c->rx_cq_data = i->mode & FI_RX_CQ_DATA;
	c->cq_data_size = i->domain_attr->cq_data_size;
	/* $RTRS_NO_CQ_DATA (tests): 1 behaves as a provider without remote
	 * CQ data, so the emulation runs on tcp and net too; 2 also as one
	 * that injects nothing (siw: 2 bytes) */
	{
		const char *nc = getenv("RTRS_NO_CQ_DATA");

		if (nc && (!strcmp(nc, "1") || !strcmp(nc, "2")))
			c->cq_data_size = 0;
		if (nc && !strcmp(nc, "2"))
			c->inject_size = 0;
	}
	c->msg_room = c->cq_data_size < sizeof(uint32_t) ? FAB_MSG_ROOM : 0;
	c->sw_rma = sw_rma(c->prov) && !c->msg_room;
	if (c->sw_rma) {
		/* swrma.c: frames carry the data and the immediate; a
		 * remote address is an offset in the region */
		c->rx_cq_data = false;
		c->mr_virt_addr = false;
		c->cq_data_size = sizeof(uint32_t);
		c->tx_iov_limit -= 1;   /* the first piece is the header */
	}
	/* xnet: "net" in 1.17, "tcp" from 1.18 */
	d->guard_map = !strcmp(c->prov, "net") ||
		       (!strcmp(c->prov, "tcp") &&
			FI_VERSION_GE(fi_version(), FI_VERSION(1, 18)));
}

/* Writers first: a registration waits for the progress calls in flight,
 * not for every one that starts after it. */
static void init_map_lock(struct fab_dom *d)
{
	rtrs__rwlock_init_writers(&d->map_lock, RTRS_RANK_OFI_MAP,
				  "fab_dom.map_lock");
}

/* 0, or -FI_EOPNOTSUPP if @d's registrations are cached: two live
 * registrations of one buffer are then one, with one key. */
static int mr_cache_probe(struct fab_dom *d)
{
	static char buf[64];
	struct fid_mr *a = NULL, *b = NULL;
	int ret = 0;

	/* remote access: without it verbs devices give no rkey (rxe: 0) */
	if (!fi_mr_reg(d->domain, buf, sizeof(buf), FI_REMOTE_WRITE, 0,
		       0x5a5a0001, 0, &a, NULL) &&
	    !fi_mr_reg(d->domain, buf, sizeof(buf), FI_REMOTE_WRITE, 0,
		       0x5a5a0002, 0, &b, NULL) &&
	    (a == b || fi_mr_key(a) == fi_mr_key(b))) {
		rtrs_err("provider %s caches memory registrations (FI_MR_CACHE_MONITOR=%s): revoked keys would stay valid; unset it or set it to disabled",
			 d->caps.prov, getenv("FI_MR_CACHE_MONITOR") ?: "");
		ret = -FI_EOPNOTSUPP;
	}
	/* a cache counts its users: as many closes as registrations */
	if (b)
		fi_close(&b->fid);
	if (a)
		fi_close(&a->fid);
	return ret;
}

int rtrs__ofi_dom_open(const char *prov, const char *node,
		       const char *service, const char *src_node, bool passive,
		       struct fab_dom **out)
{
	struct fi_info *hints, *info = NULL;
	struct fab_dom *d;
	int ret;

	hints = fi_allocinfo();
	if (!hints)
		return -ENOMEM;
	hints->ep_attr->type = FI_EP_MSG;
	hints->caps = FI_MSG | FI_RMA;
	hints->mode = FI_CONTEXT | FI_RX_CQ_DATA;
	hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR |
				      FI_MR_ALLOCATED | FI_MR_PROV_KEY;
	hints->domain_attr->threading = FI_THREAD_SAFE;
	hints->fabric_attr->prov_name = strdup(prov);
	if (!hints->fabric_attr->prov_name) {
		fi_freeinfo(hints);
		return -ENOMEM;
	}
	if (passive) {
		ret = fi_getinfo(RTRS_FI_VERSION, node, service, FI_SOURCE,
				 hints, &info);
	} else if (src_node) {
		/* resolve the source first, then the destination with it */
		struct fi_info *src = NULL;

		ret = fi_getinfo(RTRS_FI_VERSION, src_node, NULL, FI_SOURCE,
				 hints, &src);
		if (!ret) {
			hints->src_addr = malloc(src->src_addrlen);
			if (hints->src_addr) {
				memcpy(hints->src_addr, src->src_addr,
				       src->src_addrlen);
				hints->src_addrlen = src->src_addrlen;
				hints->addr_format = src->addr_format;
			}
			fi_freeinfo(src);
			ret = fi_getinfo(RTRS_FI_VERSION, node, service, 0,
					 hints, &info);
		}
	} else {
		ret = fi_getinfo(RTRS_FI_VERSION, node, service, 0, hints,
				 &info);
	}
	fi_freeinfo(hints);
	if (ret) {
		ret = rtrs__ofi_errno(ret);
		rtrs_dbg("fi_getinfo(%s, %s:%s): %s", prov,
			 node ? node : "-", service ? service : "-",
			 rtrs_strerror(ret));
		return ret;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		fi_freeinfo(info);
		return -ENOMEM;
	}
	atomic_init(&d->ref, 1);
	init_map_lock(d);
	/* the first entry is the provider's best match */
	if (info->next) {
		fi_freeinfo(info->next);
		info->next = NULL;
	}
	d->info = info;
	read_caps(d);
	ret = fi_fabric(info->fabric_attr, &d->fabric, NULL);
	if (ret)
		goto err_free;
	ret = fi_domain(d->fabric, info, &d->domain, NULL);
	if (ret)
		goto err_fabric;
	if (d->caps.sw_rma && d->caps.tx_iov_limit < 1) {
		rtrs_err("provider %s: one iov per send, no room for software RMA frames",
			 d->caps.prov);
		ret = -FI_EOPNOTSUPP;
	} else if (d->caps.sw_rma) {
		/* no registration of ours has remote access at libfabric
		 * level: nothing for a cache to keep valid */
		ret = rtrs__fab_keytab_init(&d->keys, RTRS_RANK_OFI_RTAB,
					    "fab_dom.keys") ? -FI_ENOMEM : 0;
	} else {
		ret = mr_cache_probe(d);
	}
	if (ret) {
		fi_close(&d->domain->fid);
		goto err_fabric;
	}
	rtrs__ofi_wait_probe(d, passive);
	*out = d;
	return 0;

err_fabric:
	fi_close(&d->fabric->fid);
err_free:
	fi_freeinfo(info);
	rtrs__rwlock_destroy(&d->map_lock);
	free(d);
	return rtrs__ofi_errno(ret);
}

/*
 * docs/security.md item 2: where the device checks RMA (!caps.sw_rma:
 * verbs) a key is valid on every queue pair of its protection domain, so
 * each server path gets a domain of its own. It is opened from the
 * connection request on the listener's fabric: libfabric 1.17's verbs
 * creates the endpoint's queue pair on the request's rdma_cm_id with the
 * protection domain of whichever domain fi_endpoint() is given, as long as
 * that domain is for the request's device (vrb_open_ep() compares the
 * names; both take the device context from rdma_get_devices(), so the id's
 * and the domain's are one). It costs an ibv_alloc_pd() and the provider's
 * domain object. Neither probe of rtrs__ofi_dom_open() runs again: a
 * registration cache is the provider's, set up from the environment at its
 * load, and the listener's domain of the same provider was probed
 * (mr_cache_probe()); so were its wait objects (rtrs__ofi_wait_probe()).
 * Where RMA is software (tcp, net) swrma.c scopes keys to the endpoint
 * already: the listener's domain, with a reference.
 */
int rtrs__ofi_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			      struct fab_dom **out)
{
	struct fab_dom *l = pep->dom, *d;
	int ret;

	if (l->caps.sw_rma) {
		rtrs__ofi_dom_get(l);
		*out = l;
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	atomic_init(&d->ref, 1);
	init_map_lock(d);
	ret = fi_domain(l->fabric, req->info, &d->domain, NULL);
	if (ret) {
		ret = rtrs__ofi_errno(ret);
		rtrs_dbg("%s: a domain for a connection: %s", l->caps.prov,
			 rtrs_strerror(ret));
		rtrs__rwlock_destroy(&d->map_lock);
		free(d);
		return ret;
	}
	rtrs__ofi_dom_get(l);
	d->obj = l->obj;
	d->parent = l;
	d->info = l->info;
	d->fabric = l->fabric;
	d->caps = l->caps;
	d->guard_map = l->guard_map;
	d->wait_sets = l->wait_sets;
	d->read_rearms = l->read_rearms;
	d->holds_back = l->holds_back;
	d->home_loop = l->home_loop;
	*out = d;
	return 0;
}

void rtrs__ofi_dom_get(struct fab_dom *d)
{
	atomic_fetch_add(&d->ref, 1);
}

void rtrs__ofi_dom_put(struct fab_dom *d)
{
	if (!d || atomic_fetch_sub(&d->ref, 1) != 1)
		return;
	fi_close(&d->domain->fid);
	if (d->parent) {
		rtrs__ofi_dom_put(d->parent);
	} else {
		fi_close(&d->fabric->fid);
		fi_freeinfo(d->info);
	}
	rtrs__rwlock_destroy(&d->map_lock);
	rtrs__fab_keytab_fini(&d->keys);
	free(d);
}

const struct fab_caps *rtrs__ofi_dom_caps(const struct fab_dom *d)
{
	return &d->caps;
}
