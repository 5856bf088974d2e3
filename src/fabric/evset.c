// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* A set of file descriptors to sleep on, with a wake-up of its own
 * (epoll and an eventfd), backend-neutral: the pollers of both backends
 * sleep on their endpoints' completion fds in one. */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fabric.h"
#include "util/log.h"

int rtrs__fab_evset_init(struct fab_evset *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->evfd < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev))
		return -errno;
	return 0;
}

void rtrs__fab_evset_fini(struct fab_evset *s)
{
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	s->epfd = s->evfd = -1;
}

int rtrs__fab_evset_add(struct fab_evset *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

void rtrs__fab_evset_del(struct fab_evset *s, int fd)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Both: the tags of what is readable into @tags, the wake-up's eventfd
 * read only if @wake; -1 when there may be more than @tags holds. */
static int evset_scan(struct fab_evset *s, int timeout_ms, void **tags,
		      int max, bool wake)
{
	struct epoll_event evs[8];
	int n = epoll_wait(s->epfd, evs, 8, timeout_ms), k = 0;

	for (int i = 0; i < n; i++) {
		uint64_t v;

		if (evs[i].data.ptr) {
			if (k < max)
				tags[k] = evs[i].data.ptr;
			k++;
		} else if (wake && read(s->evfd, &v, sizeof(v)) < 0 &&
			   errno != EAGAIN) {
			rtrs_err_rl("fabric: eventfd read: %d", errno);
		}
	}
	return n == 8 || k > max ? -1 : k;
}

int rtrs__fab_evset_wait(struct fab_evset *s, int timeout_ms,
			 void **tags, int max)
{
	return evset_scan(s, timeout_ms, tags, max, true);
}

int rtrs__fab_evset_ready(struct fab_evset *s, void **tags, int max)
{
	return evset_scan(s, 0, tags, max, false);
}

void rtrs__fab_evset_wake(struct fab_evset *s)
{
	uint64_t one = 1;

	if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		rtrs_err_rl("fabric: eventfd write: %d", errno);
}
