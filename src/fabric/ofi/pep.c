// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Listeners (passive endpoints): open, close, reject, the shed count. */
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
 * takes those connections itself and closes them (progress.c, shed_pep()):
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

int rtrs__ofi_pep_open(struct fab_dom *d, unsigned loop,
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
	p->loop = rtrs__ofi_loop_of(d, loop);
	p->obj = d->obj;
	p->dom = d;
	p->ops = ops;
	p->ctx = ctx;
	p->lfd = -1;
	p->reserve = -1;
	rtrs__lock_init(&p->lock, RTRS_RANK_OFI_PEP, "fab_pep.lock");
	pthread_cond_init(&p->cond, NULL);
	ret = rtrs__ofi_eq_open(d, &ea, &p->eq, &p->eq_ws, &p->eq_fd);
	if (!ret)
		ret = fi_passive_ep(d->fabric, d->info, &p->pep, NULL);
	if (!ret)
		ret = fi_pep_bind(p->pep, &p->eq->fid, 0);
	if (!ret)
		ret = fi_listen(p->pep);
	ret = rtrs__ofi_errno(ret);     /* -errno from rtrs__ofi_eq_open too */
	if (ret) {
		if (p->pep)
			fi_close(&p->pep->fid);
		if (p->eq)
			fi_close(&p->eq->fid);
		rtrs__ofi_wait_close(p->eq_ws);
		rtrs__lock_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
		return ret;
	}
	p->lfd = find_listen_fd(p->pep);
	if (p->lfd >= 0)
		p->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	rtrs__ofi_dom_get(d);
	/* published before the loop sees it: connreq() may use it at once */
	*out = p;
	rtrs__ofi_loop_attach_pep(p);
	return 0;
}

void rtrs__ofi_pep_close(struct fab_pep *p)
{
	if (!p)
		return;
	atomic_store(&p->closing, true);
	rtrs__ofi_loop_close_pep(p);
	rtrs__lock(&p->lock);
	while (!p->closed)
		rtrs__cond_wait(&p->cond, &p->lock, NULL);
	rtrs__unlock(&p->lock);
	fi_close(&p->pep->fid);
	fi_close(&p->eq->fid);
	rtrs__ofi_wait_close(p->eq_ws);
	if (p->reserve >= 0)
		close(p->reserve);
	rtrs__ofi_dom_put(p->dom);
	rtrs__lock_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

uint64_t rtrs__ofi_pep_shed(struct fab_pep *p)
{
	return p ? atomic_load(&p->shed) : 0;
}

int rtrs__ofi_pep_name(const struct fab_pep *p, char *buf, size_t len)
{
	return rtrs__ofi_fid_name(&p->pep->fid, buf, len);
}

int rtrs__ofi_reject(struct fab_pep *pep, struct fab_connreq *req,
		     const void *data, size_t len)
{
	int ret = rtrs__ofi_cm_data_fit(&pep->pep->fid, data, &len);

	if (ret)
		return ret;
	return rtrs__ofi_errno(fi_reject(pep->pep, req->info->handle, data,
					 len));
}
