// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Domains, registrations, endpoints and posting over libfabric FI_EP_MSG. */
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

int rtrs__fab_errno(int fi_err)
{
	int e = fi_err < 0 ? -fi_err : fi_err;

	switch (e) {
	case 0:
		return 0;
	case FI_EAGAIN:
		return -EAGAIN;
	case FI_ENODATA:
		return -ENODATA;
	case FI_ENOKEY:
		return -ENOKEY;
	case FI_ETRUNC:
		return -EMSGSIZE;
	case FI_ECANCELED:
		return -ECANCELED;
	case FI_EOVERRUN:
		return -EOVERFLOW;
	case FI_ENOMEM:
		return -ENOMEM;
	case FI_ETIMEDOUT:
		return -ETIMEDOUT;
	case FI_ECONNREFUSED:
		return -ECONNREFUSED;
	case FI_ECONNRESET:
		return -ECONNRESET;
	case FI_ECONNABORTED:
		return -ECONNABORTED;
	case FI_ENOTCONN:
		return -ENOTCONN;
	case FI_EHOSTUNREACH:
		return -EHOSTUNREACH;
	case FI_EADDRINUSE:
		return -EADDRINUSE;
	case FI_EINVAL:
		return -EINVAL;
	case FI_ENOSYS:
		return -EOPNOTSUPP;
	case FI_EOPNOTSUPP:
		return -EOPNOTSUPP;
	case FI_EACCES:
		return -EACCES;
	default:
		/* libfabric's low codes are errno values; its own start at 256 */
		return e < 256 ? -e : -EIO;
	}
}

static const char *pick_prov(const char *prov)
{
	if (prov && *prov)
		return prov;
	prov = getenv("RTRS_PROVIDER");
	return prov && *prov ? prov : "tcp";
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
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&d->map_lock, &a);
	pthread_rwlockattr_destroy(&a);
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

int rtrs__fab_dom_open(const char *prov, const char *node,
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
	hints->fabric_attr->prov_name = strdup(pick_prov(prov));
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
		ret = rtrs__fab_errno(ret);
		rtrs_dbg("fi_getinfo(%s, %s:%s): %s", pick_prov(prov),
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
		ret = rtrs__fab_swr_dom_init(d) ? -FI_ENOMEM : 0;
	} else {
		ret = mr_cache_probe(d);
	}
	if (ret) {
		fi_close(&d->domain->fid);
		goto err_fabric;
	}
	rtrs__fab_wait_probe(d, passive);
	*out = d;
	return 0;

err_fabric:
	fi_close(&d->fabric->fid);
err_free:
	fi_freeinfo(info);
	pthread_rwlock_destroy(&d->map_lock);
	free(d);
	return rtrs__fab_errno(ret);
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
 * domain object. Neither probe of rtrs__fab_dom_open() runs again: a
 * registration cache is the provider's, set up from the environment at its
 * load, and the listener's domain of the same provider was probed
 * (mr_cache_probe()); so were its wait objects (rtrs__fab_wait_probe()).
 * Where RMA is software (tcp, net) swrma.c scopes keys to the endpoint
 * already: the listener's domain, with a reference.
 */
int rtrs__fab_dom_for_connreq(struct fab_pep *pep, struct fab_connreq *req,
			      struct fab_dom **out)
{
	struct fab_dom *l = pep->dom, *d;
	int ret;

	if (l->caps.sw_rma) {
		rtrs__fab_dom_get(l);
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
		ret = rtrs__fab_errno(ret);
		rtrs_dbg("%s: a domain for a connection: %s", l->caps.prov,
			 rtrs_strerror(ret));
		pthread_rwlock_destroy(&d->map_lock);
		free(d);
		return ret;
	}
	rtrs__fab_dom_get(l);
	d->parent = l;
	d->info = l->info;
	d->fabric = l->fabric;
	d->caps = l->caps;
	d->guard_map = l->guard_map;
	d->wait_sets = l->wait_sets;
	d->home_loop = l->home_loop;
	*out = d;
	return 0;
}

void rtrs__fab_dom_get(struct fab_dom *d)
{
	atomic_fetch_add(&d->ref, 1);
}

void rtrs__fab_dom_put(struct fab_dom *d)
{
	if (!d || atomic_fetch_sub(&d->ref, 1) != 1)
		return;
	fi_close(&d->domain->fid);
	if (d->parent) {
		rtrs__fab_dom_put(d->parent);
	} else {
		fi_close(&d->fabric->fid);
		fi_freeinfo(d->info);
	}
	pthread_rwlock_destroy(&d->map_lock);
	rtrs__fab_swr_dom_fini(d);
	free(d);
}

const struct fab_caps *rtrs__fab_dom_caps(const struct fab_dom *d)
{
	return &d->caps;
}

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
	/* software RMA: remote access is checked by us (swrma.c), never
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
		pthread_rwlock_wrlock(&d->map_lock);
		ret = fi_mr_reg(d->domain, buf, len, acc, 0, key, 0, &m->mr,
				NULL);
		pthread_rwlock_unlock(&d->map_lock);
		ret = rtrs__fab_errno(ret);
		if (!ret) {
			uint64_t k = fi_mr_key(m->mr);

			if (k > UINT32_MAX) {
				/* our wire carries 32-bit keys */
				pthread_rwlock_wrlock(&d->map_lock);
				fi_close(&m->mr->fid);
				pthread_rwlock_unlock(&d->map_lock);
				ret = -EOVERFLOW;
				break;
			}
			m->key = (uint32_t)k;
		}
	}
	if (ret) {
		free(m);
		return ret;
	}
	m->dom = d;
	m->base = buf;
	m->len = len;
	m->access = access;
	m->scope = scope;
	if (d->caps.sw_rma)
		rtrs__fab_swr_mr_add(m);        /* our key */
	rtrs__fab_dom_get(d);
	*out = m;
	return 0;
}

int rtrs__fab_mr_reg(struct fab_dom *d, void *buf, size_t len,
		     unsigned access, struct fab_mr **out)
{
	return mr_reg(d, buf, len, access, NULL, out);
}

int rtrs__fab_mr_reg_peer(struct fab_dom *d, void *buf, size_t len,
			  const void *scope, struct fab_mr **out)
{
	return mr_reg(d, buf, len, FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE, scope,
		      out);
}

void rtrs__fab_ep_set_scope(struct fab_ep *e, const void *scope)
{
	e->scope = scope;
}

void rtrs__fab_mr_close(struct fab_mr *m)
{
	if (!m)
		return;
	if (m->dom->caps.sw_rma)
		rtrs__fab_swr_mr_del(m);
	if (m->mr) {
		pthread_rwlock_wrlock(&m->dom->map_lock);
		fi_close(&m->mr->fid);
		pthread_rwlock_unlock(&m->dom->map_lock);
	}
	rtrs__fab_dom_put(m->dom);
	free(m);
}

uint32_t rtrs__fab_mr_key(const struct fab_mr *m)
{
	return m->key;
}

void *rtrs__fab_mr_desc(const struct fab_mr *m)
{
	return m && m->mr ? fi_mr_desc(m->mr) : NULL;
}

uint64_t rtrs__fab_mr_raddr(const struct fab_mr *m, const void *p)
{
	uint64_t off = (uint64_t)((const char *)p - m->base);

	return m->dom->caps.mr_virt_addr ? (uint64_t)(uintptr_t)m->base + off
					 : off;
}

/* ---- endpoints ---- */

static int open_ep_queues(struct fab_ep *e)
{
	struct fi_cq_attr ca = {
		.format = FI_CQ_FORMAT_DATA,
		.wait_obj = FI_WAIT_FD,
	};
	struct fi_eq_attr ea = { .size = 64, .wait_obj = FI_WAIT_FD };
	int ret;

	ca.size = e->dom->caps.tx_size + e->dom->caps.rx_size + 64;
	ret = rtrs__fab_cq_open(e->dom, &ca, &e->cq, &e->cq_ws, &e->cq_fd);
	if (ret)
		return ret;
	return rtrs__fab_eq_open(e->dom, &ea, &e->eq, &e->eq_ws, &e->eq_fd);
}

static int bind_ep(struct fab_ep *e)
{
	int ret;

	ret = fi_ep_bind(e->ep, &e->eq->fid, 0);
	if (!ret)
		ret = fi_ep_bind(e->ep, &e->cq->fid,
				 FI_TRANSMIT | FI_SELECTIVE_COMPLETION);
	if (!ret)
		ret = fi_ep_bind(e->ep, &e->cq->fid, FI_RECV);
	if (!ret)
		ret = fi_enable(e->ep);
	return rtrs__fab_errno(ret);
}

static struct fab_ep *ep_alloc(struct fab_dom *d, unsigned loop,
			       const struct fab_ep_ops *ops, void *ctx)
{
	struct fab_ep *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	rtrs_list_init(&e->node);
	rtrs_list_init(&e->att_node);
	rtrs_list_init(&e->cls_node);
	rtrs_list_init(&e->pnode);
	e->loop = rtrs__fab_loop_of(d, loop);
	e->dom = d;
	e->ops = ops;
	e->ctx = ctx;
	e->cq_fd = e->eq_fd = -1;
	pthread_mutex_init(&e->post_lock, NULL);
	rtrs__fab_dom_get(d);
	return e;
}

/* Close every libfabric object of an endpoint that never got attached, or
 * (from the loop) one whose completions have been drained. */
void rtrs__fab_ep_destroy(struct fab_ep *e)
{
	rtrs__fab_trl_slots_free(e);
	if (e->ep)
		fi_close(&e->ep->fid);
	e->ep = NULL;
	rtrs__fab_swr_ep_free(e);       /* its buffers, once nothing lands */
	if (e->cq)
		fi_close(&e->cq->fid);
	if (e->eq)
		fi_close(&e->eq->fid);
	rtrs__fab_wait_close(e->cq_ws);
	rtrs__fab_wait_close(e->eq_ws);
	pthread_mutex_destroy(&e->post_lock);
	rtrs__fab_dom_put(e->dom);
	free(e);
}

int rtrs__fab_ep_create(struct fab_dom *d, unsigned loop,
			struct fab_poller *poller,
			const struct fab_ep_ops *ops, void *ctx,
			struct fab_ep **out)
{
	struct fab_ep *e = ep_alloc(d, loop, ops, ctx);
	int ret;

	if (!e)
		return -ENOMEM;
	ret = open_ep_queues(e);
	if (!ret)
		ret = rtrs__fab_trl_slots_init(e);
	if (!ret)
		ret = rtrs__fab_swr_ep_init(e);
	if (!ret)
		ret = rtrs__fab_errno(fi_endpoint(d->domain, d->info, &e->ep,
						  NULL));
	if (!ret)
		ret = bind_ep(e);
	if (!ret)
		ret = rtrs__fab_swr_post_rx(e);
	if (ret) {
		rtrs__fab_ep_destroy(e);
		return ret;
	}
	/* published before the loop sees it: callbacks may use it at once */
	*out = e;
	if (poller) {
		e->poller = poller;
		rtrs__fab_poller_add(e);
	}
	return rtrs__fab_loop_attach_ep(e);
}

/*
 * The CM private data @fid's provider carries (verbs: 55 bytes, after its
 * own 1-byte header; tcp and net: 256). Longer data loses its tail if the
 * tail is all zero (the reserved bytes of our layouts), else -EMSGSIZE.
 */
static int cm_data_fit(struct fid *fid, const void *data, size_t *len)
{
	size_t max = 0, ol = sizeof(max);

	if (!data || !*len)
		return 0;
	if (fi_getopt(fid, FI_OPT_ENDPOINT, FI_OPT_CM_DATA_SIZE, &max, &ol) ||
	    *len <= max)
		return 0;       /* no limit known: let the provider judge */
	for (size_t i = max; i < *len; i++)
		if (((const uint8_t *)data)[i])
			return -EMSGSIZE;
	*len = max;
	return 0;
}

int rtrs__fab_ep_connect(struct fab_ep *e, const void *data, size_t len)
{
	int ret = cm_data_fit(&e->ep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__fab_errno(fi_connect(e->ep, e->dom->info->dest_addr,
					  data, len));
}

int rtrs__fab_ep_accept_create(struct fab_dom *d, struct fab_connreq *req,
			       unsigned loop, const struct fab_ep_ops *ops,
			       void *ctx, struct fab_ep **out)
{
	struct fab_ep *e = ep_alloc(d, loop, ops, ctx);
	int ret;

	if (!e)
		return -ENOMEM;
	ret = open_ep_queues(e);
	if (!ret)
		ret = rtrs__fab_trl_slots_init(e);
	if (!ret)
		ret = rtrs__fab_swr_ep_init(e);
	if (!ret)
		ret = rtrs__fab_errno(fi_endpoint(d->domain, req->info,
						  &e->ep, NULL));
	if (!ret)
		ret = bind_ep(e);
	if (!ret)
		ret = rtrs__fab_swr_post_rx(e);
	if (ret) {
		rtrs__fab_ep_destroy(e);
		return ret;
	}
	/* published before the loop sees it: callbacks may use it at once */
	*out = e;
	return rtrs__fab_loop_attach_ep(e);
}

int rtrs__fab_ep_accept(struct fab_ep *e, const void *data, size_t len)
{
	int ret = cm_data_fit(&e->ep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__fab_errno(fi_accept(e->ep, data, len));
}

int rtrs__fab_reject(struct fab_pep *pep, struct fab_connreq *req,
		     const void *data, size_t len)
{
	int ret = cm_data_fit(&pep->pep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__fab_errno(fi_reject(pep->pep, req->info->handle, data,
					 len));
}

void rtrs__fab_ep_close(struct fab_ep *e)
{
	bool was = false;

	if (!e || !atomic_compare_exchange_strong(&e->closing, &was, true))
		return;
	pthread_mutex_lock(&e->post_lock);
	e->dead = true;
	pthread_mutex_unlock(&e->post_lock);
	rtrs__fab_loop_close_ep(e);
}

void rtrs__fab_ep_want_tx(struct fab_ep *e)
{
	atomic_store(&e->want_tx, true);
	if (e->poller)
		rtrs__fab_poller_wake(e->poller);
	else
		rtrs__fab_loop_wake(e->loop);
}

const struct fab_caps *rtrs__fab_ep_caps(const struct fab_ep *e)
{
	return &e->dom->caps;
}

static int addr_str(const void *a, char *buf, size_t len)
{
	const struct sockaddr *sa = a;
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = a;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		return snprintf(buf, len, "%s:%u", host, port) >= (int)len
			       ? -ENOSPC : 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = a;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		return snprintf(buf, len, "[%s]:%u", host, port) >= (int)len
			       ? -ENOSPC : 0;
	}
	return snprintf(buf, len, "?") >= (int)len ? -ENOSPC : 0;
}

int rtrs__fab_ep_peer(const struct fab_ep *e, char *buf, size_t len)
{
	char a[128];
	size_t al = sizeof(a);
	int ret = fi_getpeer(e->ep, a, &al);

	if (ret)
		return rtrs__fab_errno(ret);
	return addr_str(a, buf, len);
}

/* The local address of @fid as "host:port". */
static int fid_name(struct fid *fid, char *buf, size_t len)
{
	char a[128];
	size_t al = sizeof(a);
	int ret = fi_getname(fid, a, &al);

	if (ret)
		return rtrs__fab_errno(ret);
	return addr_str(a, buf, len);
}

int rtrs__fab_ep_name(const struct fab_ep *e, char *buf, size_t len)
{
	return fid_name(&e->ep->fid, buf, len);
}

/* ---- posting ---- */

static int post_prologue(struct fab_ep *e)
{
	int f;

	pthread_mutex_lock(&e->post_lock);
	if (e->dead) {
		pthread_mutex_unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (rtrs__fab_fault_peer_filter()) {
		char peer[128];

		f = rtrs__fab_fault_post(rtrs__fab_ep_peer(e, peer, sizeof(peer))
						 ? NULL : peer);
	} else {
		f = rtrs__fab_fault_post(NULL);
	}
	if (f) {
		pthread_mutex_unlock(&e->post_lock);
		if (f > 0) {
			/* as if the peer vanished with this operation in
			 * flight: it is swallowed, the loop reports a shutdown */
			if (!atomic_exchange(&e->fault_down, true))
				rtrs_warn("fault injection: endpoint shut down");
			rtrs__fab_loop_wake(e->loop);
		}
		return f;
	}
	f = rtrs__fab_trl_flush_locked(e);
	if (f)
		pthread_mutex_unlock(&e->post_lock);
	return f;
}

int rtrs__fab_post_recv(struct fab_ep *e, void *buf, size_t len, void *desc,
			struct fab_opctx *ctx)
{
	ssize_t r;

	if (e->swr)
		return rtrs__fab_swr_recv(e, buf, len, ctx);
	pthread_mutex_lock(&e->post_lock);
	if (e->dead) {
		pthread_mutex_unlock(&e->post_lock);
		return -ENOTCONN;
	}
	if (e->dom->caps.msg_room) {
		ctx->rx_buf = buf;
		len += e->dom->caps.msg_room;
	}
	r = fi_recv(e->ep, buf, len, desc, 0, ctx);
	pthread_mutex_unlock(&e->post_lock);
	return rtrs__fab_errno((int)r);
}

int rtrs__fab_post_send(struct fab_ep *e, const void *buf, size_t len,
			void *desc, bool has_imm, uint32_t imm,
			struct fab_opctx *ctx, bool signal)
{
	ssize_t r;
	int ret = post_prologue(e);

	if (ret)
		return ret < 0 ? ret : 0;   /* > 0: swallowed */
	if (e->swr) {
		r = rtrs__fab_swr_send(e, buf, len, desc, has_imm, imm, ctx,
				       signal);
	} else if (e->dom->caps.msg_room) {
		r = rtrs__fab_trl_send(e, buf, len, desc, has_imm, imm, false, ctx,
			     signal);
	} else if (!signal && len <= e->dom->caps.inject_size) {
		r = has_imm ? fi_injectdata(e->ep, buf, len, imm, 0)
			    : fi_inject(e->ep, buf, len, 0);
	} else {
		struct iovec iov = { (void *)buf, len };
		struct fi_msg m = {
			.msg_iov = &iov,
			.desc = desc ? &desc : NULL,
			.iov_count = 1,
			.context = ctx,
			.data = imm,
		};
		uint64_t flags = (signal ? FI_COMPLETION : 0) |
				 (has_imm ? FI_REMOTE_CQ_DATA : 0);

		r = fi_sendmsg(e->ep, &m, flags);
	}
	pthread_mutex_unlock(&e->post_lock);
	return rtrs__fab_errno((int)r);
}

int rtrs__fab_post_write(struct fab_ep *e, const struct iovec *iov,
			 void **desc, size_t cnt, uint64_t raddr, uint32_t key,
			 bool has_imm, uint32_t imm, struct fab_opctx *ctx,
			 bool signal)
{
	size_t total = 0;
	ssize_t r;
	int ret;

	if (cnt > e->dom->caps.tx_iov_limit)
		return -EINVAL;
	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	ret = post_prologue(e);
	if (ret)
		return ret < 0 ? ret : 0;   /* > 0: swallowed */
	if (e->swr) {
		r = rtrs__fab_swr_write(e, iov, desc, cnt, raddr, key, has_imm,
					imm, ctx, signal);
	} else if (has_imm && e->dom->caps.msg_room) {
		r = rtrs__fab_trl_write(e, iov, desc, cnt, raddr, key, total, imm, ctx,
			      signal);
	} else {
		struct fi_rma_iov riov = { .addr = raddr, .len = total,
					   .key = key };
		struct fi_msg_rma m = {
			.msg_iov = iov,
			.desc = desc,
			.iov_count = cnt,
			.rma_iov = &riov,
			.rma_iov_count = 1,
			.context = ctx,
			.data = imm,
		};
		uint64_t flags = (signal ? FI_COMPLETION : 0) |
				 (has_imm ? FI_REMOTE_CQ_DATA : 0);

		r = fi_writemsg(e->ep, &m, flags);
	}
	pthread_mutex_unlock(&e->post_lock);
	return rtrs__fab_errno((int)r);
}

/* ---- listeners ---- */

static bool same_sockaddr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
					  *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
	}
	return false;
}

/*
 * The provider's listening socket, or -1 (verbs: rdma_cm has none). tcp
 * and net accept inside libfabric, in their progress; at the open-file
 * limit their accept() fails and returns, the socket stays readable in
 * the level-triggered epoll under our wait fds, and the loop wakes for it
 * again and again (100 % CPU) while the clients hang. The loop then
 * takes those connections itself and closes them (loop.c, shed_pep()):
 * for that it needs the socket, found as the one listening on our
 * address.
 */
static int find_listen_fd(struct fid_pep *pep)
{
	struct sockaddr_storage want, got;
	size_t wl = sizeof(want);
	struct dirent *de;
	int found = -1;
	DIR *d;

	if (fi_getname(&pep->fid, &want, &wl))
		return -1;
	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (found < 0 && (de = readdir(d))) {
		int fd = atoi(de->d_name), acc = 0;
		socklen_t al = sizeof(acc), gl = sizeof(got);
		struct stat st;

		if (de->d_name[0] < '0' || de->d_name[0] > '9' ||
		    fd == dirfd(d) || fstat(fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) ||
		    !acc || getsockname(fd, (struct sockaddr *)&got, &gl))
			continue;
		if (same_sockaddr((struct sockaddr *)&got,
				  (struct sockaddr *)&want))
			found = fd;
	}
	closedir(d);
	return found;
}

int rtrs__fab_pep_open(struct fab_dom *d, unsigned loop,
		       const struct fab_pep_ops *ops, void *ctx,
		       struct fab_pep **out)
{
	struct fi_eq_attr ea = { .size = 256, .wait_obj = FI_WAIT_FD };
	struct fab_pep *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	rtrs_list_init(&p->node);
	rtrs_list_init(&p->att_node);
	rtrs_list_init(&p->cls_node);
	p->loop = rtrs__fab_loop_of(d, loop);
	p->dom = d;
	p->ops = ops;
	p->ctx = ctx;
	p->lfd = -1;
	p->reserve = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	ret = rtrs__fab_eq_open(d, &ea, &p->eq, &p->eq_ws, &p->eq_fd);
	if (!ret)
		ret = fi_passive_ep(d->fabric, d->info, &p->pep, NULL);
	if (!ret)
		ret = fi_pep_bind(p->pep, &p->eq->fid, 0);
	if (!ret)
		ret = fi_listen(p->pep);
	ret = rtrs__fab_errno(ret);     /* -errno from rtrs__fab_eq_open too */
	if (ret) {
		if (p->pep)
			fi_close(&p->pep->fid);
		if (p->eq)
			fi_close(&p->eq->fid);
		rtrs__fab_wait_close(p->eq_ws);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
		return ret;
	}
	p->lfd = find_listen_fd(p->pep);
	if (p->lfd >= 0)
		p->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	rtrs__fab_dom_get(d);
	/* published before the loop sees it: connreq() may use it at once */
	*out = p;
	return rtrs__fab_loop_attach_pep(p);
}

void rtrs__fab_pep_close(struct fab_pep *p)
{
	if (!p)
		return;
	atomic_store(&p->closing, true);
	rtrs__fab_loop_close_pep(p);
	pthread_mutex_lock(&p->lock);
	while (!p->closed)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	fi_close(&p->pep->fid);
	fi_close(&p->eq->fid);
	rtrs__fab_wait_close(p->eq_ws);
	if (p->reserve >= 0)
		close(p->reserve);
	rtrs__fab_dom_put(p->dom);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

uint64_t rtrs__fab_pep_shed(struct fab_pep *p)
{
	return p ? atomic_load(&p->shed) : 0;
}

int rtrs__fab_pep_name(const struct fab_pep *p, char *buf, size_t len)
{
	return fid_name(&p->pep->fid, buf, len);
}
