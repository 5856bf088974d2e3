// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Progress threads. One loop per online CPU, pinned to it. A loop owns the
 * CQs and EQs of its endpoints and listeners: it blocks in epoll on their
 * wait fds (after fi_trywait, or fi_wait(ws, 0) on the wait sets some
 * providers need, says that is safe; see "wait objects"; with a bounded
 * timeout), then drains every CQ and EQ it owns and runs the callbacks.
 * The CQ of an endpoint created with a poller is not the loop's: the
 * application reads it through rtrs__ofi_poller_progress() (poller.c).
 * This file holds the engine (the loops' start and stop), a loop's
 * command queue (attach, close) and its main loop; what it runs for each
 * endpoint and listener is in progress.c, the wait objects in wait.c.
 */
#include "ofi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

static struct {
	struct rtrs_lock lock;
	int ref;
	unsigned n;
	struct fab_loop *loops;
} engine = {
	.lock = RTRS_LOCK_INITIALIZER(RTRS_RANK_OFI_ENGINE, "engine.lock"),
};

/* Decided at engine start: leave the loops' placement to the scheduler
 * (rtrs(7) "Progress threads"). */
static bool no_pin;

struct fab_loop *rtrs__ofi_loop(unsigned idx)
{
	return &engine.loops[idx % engine.n];
}

struct fab_loop *rtrs__ofi_loop_of(const struct fab_dom *d, unsigned idx)
{
	return rtrs__ofi_loop(d->wait_sets ? d->home_loop : idx);
}

unsigned rtrs__ofi_nloops(void)
{
	return engine.n;
}

/* Queue a command for loop @l's thread (run_commands()). Any thread. */
static void enqueue(struct fab_loop *l, struct rtrs_list *q,
		    struct rtrs_list *node)
{
	rtrs__lock(&l->lock);
	rtrs_list_add_tail(q, node);
	rtrs__unlock(&l->lock);
	ofi_wake_loop(l);
}

void rtrs__ofi_loop_attach_ep(struct fab_ep *e)
{
	enqueue(e->loop, &e->loop->attach, &e->att_node);
}

void rtrs__ofi_loop_attach_pep(struct fab_pep *p)
{
	enqueue(p->loop, &p->loop->pattach, &p->att_node);
}

void rtrs__ofi_loop_close_ep(struct fab_ep *e)
{
	enqueue(e->loop, &e->loop->close, &e->cls_node);
}

void rtrs__ofi_loop_close_pep(struct fab_pep *p)
{
	enqueue(p->loop, &p->loop->pclose, &p->cls_node);
}

/* The cookie is the address of an int inside the endpoint or listener:
 * cq_tag, eq_tag. The loop maps it back with container_of. */
static void epoll_add(struct fab_loop *l, int fd, int *cookie)
{
	struct epoll_event ev = { .events = EPOLLIN };

	ev.data.ptr = cookie;
	if (fd >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev))
		rtrs_err("loop %u: epoll add fd %d: %d", l->idx, fd, errno);
}

static void epoll_del(struct fab_loop *l, int fd)
{
	if (fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Before an endpoint closes: nothing reads its CQ or EQ any more. */
static void detach_ep(struct fab_loop *l, struct fab_ep *e)
{
	if (e->poller) {
		/* waits for a thread draining it: afterwards none can */
		rtrs__lock(&e->poller->lock);
		rtrs_list_del(&e->pnode);
		rtrs__fab_evset_del(&e->poller->ws, e->cq_fd);
		rtrs__unlock(&e->poller->lock);
	}
	if (e->attached) {
		rtrs_list_del(&e->node);
		if (!e->poller)
			epoll_del(l, e->cq_fd);
		epoll_del(l, e->eq_fd);
		e->attached = false;
	}
}

static void run_commands(struct fab_loop *l)
{
	struct rtrs_list attach, close, pattach, pclose, *pos, *tmp;

	rtrs__lock(&l->lock);
	rtrs_list_take(&attach, &l->attach);
	rtrs_list_take(&close, &l->close);
	rtrs_list_take(&pattach, &l->pattach);
	rtrs_list_take(&pclose, &l->pclose);
	rtrs__unlock(&l->lock);

	rtrs_list_for_each_safe(pos, tmp, &attach) {
		struct fab_ep *e = container_of(pos, struct fab_ep, att_node);

		rtrs_list_del(pos);
		rtrs_list_add_tail(&l->eps, &e->node);
		e->cq_tag = 1;
		e->eq_tag = 2;
		if (!e->poller)
			epoll_add(l, e->cq_fd, &e->cq_tag);
		epoll_add(l, e->eq_fd, &e->eq_tag);
		e->attached = true;
		/* look at it at once: events may predate the attach */
		e->cq_ready = e->eq_ready = true;
	}
	rtrs_list_for_each_safe(pos, tmp, &pattach) {
		struct fab_pep *p = container_of(pos, struct fab_pep, att_node);

		rtrs_list_del(pos);
		rtrs_list_add_tail(&l->peps, &p->node);
		p->eq_tag = 3;
		epoll_add(l, p->eq_fd, &p->eq_tag);
		p->attached = true;
		p->eq_ready = true;
	}
	rtrs_list_for_each_safe(pos, tmp, &close) {
		struct fab_ep *e = container_of(pos, struct fab_ep, cls_node);

		rtrs_list_del(pos);
		detach_ep(l, e);
		rtrs__ofi_ep_close_now(e);
	}
	rtrs_list_for_each_safe(pos, tmp, &pclose) {
		struct fab_pep *p = container_of(pos, struct fab_pep, cls_node);

		rtrs_list_del(pos);
		if (p->attached) {
			rtrs_list_del(&p->node);
			epoll_del(l, p->eq_fd);
			p->attached = false;
		}
		rtrs__lock(&p->lock);
		p->closed = true;
		pthread_cond_broadcast(&p->cond);
		rtrs__unlock(&p->lock);
	}
}

static bool commands_pending(struct fab_loop *l)
{
	bool p;

	rtrs__lock(&l->lock);
	p = !rtrs_list_empty(&l->attach) ||
	    !rtrs_list_empty(&l->close) || !rtrs_list_empty(&l->pattach) ||
	    !rtrs_list_empty(&l->pclose);
	rtrs__unlock(&l->lock);
	return p;
}

static void pin(struct fab_loop *l)
{
	cpu_set_t set;

	if (no_pin)
		return;         /* leave placement to the scheduler */

	CPU_ZERO(&set);
	CPU_SET(l->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		rtrs_dbg("loop %u: cannot pin to cpu %d", l->idx, l->cpu);
}

/* Mark the endpoint or listener behind an epoll cookie as ready. */
static void mark_ready(void *cookie)
{
	int *tag = cookie;

	if (!tag)
		return;         /* the eventfd */
	switch (*tag) {
	case 1:
		container_of(tag, struct fab_ep, cq_tag)->cq_ready = true;
		container_of(tag, struct fab_ep, cq_tag)->cq_quiet = false;
		break;
	case 2:
		container_of(tag, struct fab_ep, eq_tag)->eq_ready = true;
		container_of(tag, struct fab_ep, eq_tag)->eq_quiet = false;
		break;
	case 3:
		container_of(tag, struct fab_pep, eq_tag)->eq_ready = true;
		container_of(tag, struct fab_pep, eq_tag)->eq_quiet = false;
		break;
	}
}

/*
 * One pass: listeners and endpoints whose wait fd fired (or that still
 * have work) are drained; every LOOP_SWEEP_MS all of them are, as a safety
 * net against a wakeup the provider did not signal. The wait fds of tcp
 * and net are level-triggered epoll sets of the sockets plus a signal fd
 * (for net, of the wait sets we give it), so an event that arrives after a
 * drain leaves the fd readable.
 */
static bool loop_pass(struct fab_loop *l, bool sweep, int *work)
{
	struct rtrs_list *pos, *tmp;
	bool more = false;

	rtrs_list_for_each_safe(pos, tmp, &l->peps) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		if ((p->eq_ready || sweep) && !atomic_load(&p->closing)) {
			p->eq_ready = false;
			p->eq_quiet = false;
			rtrs__ofi_drain_pep(p);
		}
	}
	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (atomic_load(&e->closing))
			continue;
		if (!e->poller && (e->cq_ready || e->cq_more || sweep)) {
			int n = rtrs__ofi_drain_cq(e, false);

			/* one read per pass: others get theirs first */
			e->cq_ready = false;
			e->cq_quiet = false;
			e->cq_more = n >= CQ_BATCH;
			more |= e->cq_more;
			*work += n;
		}
		if ((e->eq_ready || sweep) && !atomic_load(&e->closing)) {
			e->eq_ready = false;
			e->eq_quiet = false;
			rtrs__ofi_drain_eq(e);
		}
		if (atomic_exchange(&e->fault_down, false) &&
		    !atomic_load(&e->closing))
			e->ops->cm(e->ctx, FAB_CM_SHUTDOWN, -ECONNRESET, NULL, 0);
	}
	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (e->poller)
			continue;       /* its poller calls tx_ready */
		if (atomic_exchange(&e->want_tx, false) &&
		    !atomic_load(&e->closing)) {
			/* posting may complete operations inline: look again */
			e->cq_ready = true;
			e->cq_quiet = false;
			if (!rtrs__ofi_tx_ready(e) || atomic_load(&e->want_tx))
				more = true;
		}
	}
	return more;
}

/*
 * Before blocking, every CQ and EQ must agree (rtrs__ofi_busy_fid()): tcp keeps
 * prefetched socket data in user space, where no fd shows it. Those that
 * do not agree are marked for the next pass. Returns true if blocking is
 * safe.
 *
 * One that agreed is quiet: not asked again (two or three epoll_wait()s
 * each, for every CQ and EQ of the loop, before every sleep) until its fd
 * fires (mark_ready()) or it is read (loop_pass(): its fd fired, a post of
 * the loop's own, the sweep). What could give it work shows on that fd,
 * as for the pollers' quiet endpoints (poller.c). One marked for a pass
 * and not read yet forbids the sleep.
 */
/* A check's answer for one CQ or EQ: marked for the next pass, or quiet
 * when an fd will tell (none: checked every time). */
static void settle(bool busy, bool *ready, bool *quiet, int fd)
{
	if (busy)
		*ready = true;
	else
		*quiet = fd >= 0;
}

static bool can_block(struct fab_loop *l)
{
	struct rtrs_list *pos, *tmp;
	bool ok = true;

	rtrs_list_for_each_safe(pos, tmp, &l->eps) {
		struct fab_ep *e = container_of(pos, struct fab_ep, node);

		if (atomic_load(&e->closing))
			continue;
		if (!e->poller && !e->cq_ready && !e->cq_quiet)
			settle(rtrs__ofi_busy_cq(e), &e->cq_ready, &e->cq_quiet,
			       e->cq_fd);
		if (!e->eq_ready && !e->eq_quiet)
			settle(rtrs__ofi_busy_fid(e->dom, &e->eq->fid, e->eq_ws),
			       &e->eq_ready, &e->eq_quiet, e->eq_fd);
		if ((!e->poller && e->cq_ready) || e->eq_ready)
			ok = false;
	}
	rtrs_list_for_each_safe(pos, tmp, &l->peps) {
		struct fab_pep *p = container_of(pos, struct fab_pep, node);

		if (!p->eq_ready && !p->eq_quiet)
			settle(rtrs__ofi_busy_fid(p->dom, &p->eq->fid, p->eq_ws),
			       &p->eq_ready, &p->eq_quiet, p->eq_fd);
		if (p->eq_ready)
			ok = false;
	}
	return ok;
}

/* Tests (fab.quiet): no sweeps, so that only the wait fds and the
 * checks before sleeping bring work; a missed one then never arrives. */
static _Atomic bool loops_no_sweep;

void rtrs__ofi_loops_no_sweep(void)
{
	atomic_store(&loops_no_sweep, true);
}

static void *loop_main(void *arg)
{
	struct fab_loop *l = arg;
	struct epoll_event evs[32];
	uint64_t last_sweep = 0;
	bool more = true;

	uint64_t last_work = 0;

	pin(l);
	while (!atomic_load(&l->stop)) {
		uint64_t now_ns = rtrs_now_ns(), now = now_ns / 1000000;
		bool sweep = now - last_sweep >= LOOP_SWEEP_MS &&
			     !atomic_load(&loops_no_sweep);
		int n, work = 0;

		if (sweep)
			last_sweep = now;
		run_commands(l);
		more = loop_pass(l, sweep, &work);
		atomic_store(&l->woken, false);
		if (commands_pending(l))
			continue;
		/* optional busy-poll window after work (RTRS_POLL_US) */
		if (work)
			last_work = now_ns;
		if (!more && rtrs__fab_may_spin(last_work, now_ns)) {
			struct rtrs_list *pos;

			for (pos = l->eps.next; pos != &l->eps; pos = pos->next)
				container_of(pos, struct fab_ep, node)->cq_ready = true;
			continue;
		}
		if (!more && !can_block(l))
			more = true;
		n = epoll_wait(l->epfd, evs, 32,
			       more ? 0 : (int)LOOP_SWEEP_MS);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t v;

				if (read(l->evfd, &v, sizeof(v)) < 0 &&
				    errno != EAGAIN)
					rtrs_err_rl("loop %u: eventfd read %d",
						    l->idx, errno);
				continue;
			}
			mark_ready(evs[i].data.ptr);
		}
	}
	return NULL;
}

static int pick_cpus(int *cpus, unsigned n)
{
	cpu_set_t set;
	unsigned k = 0;

	if (sched_getaffinity(0, sizeof(set), &set)) {
		for (unsigned i = 0; i < n; i++)
			cpus[i] = (int)i;
		return 0;
	}
	for (int c = 0; c < CPU_SETSIZE && k < n; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	for (unsigned i = k; i < n; i++)
		cpus[i] = cpus[i % (k ? k : 1)];
	return 0;
}

static int loop_start(struct fab_loop *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	rtrs__lock_init(&l->lock, RTRS_RANK_OFI_LOOP, "fab_loop.lock");
	rtrs_list_init(&l->attach);
	rtrs_list_init(&l->close);
	rtrs_list_init(&l->pattach);
	rtrs_list_init(&l->pclose);
	rtrs_list_init(&l->eps);
	rtrs_list_init(&l->peps);
	atomic_init(&l->stop, false);
	atomic_init(&l->woken, false);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->epfd < 0 || l->evfd < 0)
		return -errno;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev))
		return -errno;
	ret = pthread_create(&l->thr, NULL, loop_main, l);
	return -ret;
}

static void loop_stop(struct fab_loop *l)
{
	atomic_store(&l->stop, true);
	ofi_wake_loop(l);
	pthread_join(l->thr, NULL);
	/* anything still queued was left by a caller that did not close */
	run_commands(l);
	close(l->epfd);
	close(l->evfd);
	rtrs__lock_destroy(&l->lock);
}

int rtrs__ofi_engine_get(void)
{
	int ret = 0;

	rtrs__lock(&engine.lock);
	if (engine.ref++ == 0) {
		unsigned n = rtrs__usable_cpus();
		unsigned mask = rtrs__affinity_cpus();
		int *cpus = calloc(n, sizeof(int));

		engine.loops = calloc(n, sizeof(*engine.loops));
		if (!cpus || !engine.loops) {
			free(cpus);
			free(engine.loops);
			engine.ref--;
			rtrs__unlock(&engine.lock);
			return -ENOMEM;
		}
		rtrs__fab_fault_from_env();
		{
			const char *pin_env = getenv("RTRS_PIN");

			/* by default the scheduler places the loops: pinned,
			 * a loop waits for its CPU while the application's
			 * threads hold it (rtrs(7), docs/BENCHMARKS.md);
			 * RTRS_PIN=1 pins one per CPU of the mask, and only
			 * when no quota leaves fewer loops than CPUs */
			no_pin = !(pin_env && *pin_env && strcmp(pin_env, "0")) ||
				 n != mask;
		}
		rtrs__fab_spin_start(rtrs__ncpus(), n);
		rtrs_info("progress: %u thread%s (usable CPUs: %u of %u in the affinity mask), %s, busy-poll %u us",
			  n, n == 1 ? "" : "s", n, mask,
			  no_pin ? "not pinned" : "pinned", rtrs__fab_poll_us());
		pick_cpus(cpus, n);
		engine.n = n;
		for (unsigned i = 0; i < n; i++) {
			engine.loops[i].idx = i;
			engine.loops[i].cpu = cpus[i];
			ret = loop_start(&engine.loops[i]);
			if (ret) {
				for (unsigned j = 0; j < i; j++)
					loop_stop(&engine.loops[j]);
				free(engine.loops);
				engine.loops = NULL;
				engine.n = 0;
				engine.ref--;
				rtrs__fab_spin_stop();
				break;
			}
		}
		free(cpus);
	}
	rtrs__unlock(&engine.lock);
	return ret;
}

void rtrs__ofi_engine_put(void)
{
	rtrs__lock(&engine.lock);
	if (--engine.ref == 0) {
		for (unsigned i = 0; i < engine.n; i++)
			loop_stop(&engine.loops[i]);
		free(engine.loops);
		engine.loops = NULL;
		engine.n = 0;
		rtrs__fab_spin_stop();
	}
	rtrs__unlock(&engine.lock);
}
