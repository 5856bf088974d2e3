// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* The library's timer thread; see timer.h. */
#include <errno.h>
#include <pthread.h>

#include "core.h"
#include "timer.h"

static struct {
	struct rtrs_lock lock;
	pthread_cond_t cond;
	struct rtrs_list armed;         /* sorted by due_ns */
	struct rtrs_timer *running;
	pthread_t thread;
	unsigned users;
	bool stop, cond_ready;
} T = { .lock = RTRS_LOCK_INITIALIZER(RTRS_RANK_TIMER, "timer") };

static void *timer_main(void *arg)
{
	(void)arg;
	rtrs__lock(&T.lock);
	while (!T.stop) {
		struct rtrs_timer *t;
		uint64_t now = rtrs_now_ns();

		if (rtrs_list_empty(&T.armed)) {
			rtrs__cond_wait(&T.cond, &T.lock, NULL);
			continue;
		}
		t = container_of(T.armed.next, struct rtrs_timer, node);
		if (t->due_ns > now) {
			uint64_t ms = (t->due_ns - now + 999999) / 1000000;
			struct timespec dl = rtrs_deadline(ms > 60000 ? 60000
								       : (unsigned)ms);

			rtrs__cond_wait(&T.cond, &T.lock, &dl);
			continue;
		}
		rtrs_list_del(&t->node);
		t->armed = false;
		T.running = t;
		rtrs__unlock(&T.lock);
		t->fn(t);
		rtrs__lock(&T.lock);
		T.running = NULL;
		pthread_cond_broadcast(&T.cond);
	}
	rtrs__unlock(&T.lock);
	return NULL;
}

int rtrs__timers_get(void)
{
	int ret = 0;

	rtrs__lock(&T.lock);
	if (T.users++ == 0) {
		if (!T.cond_ready) {
			rtrs__cond_init_mono(&T.cond);
			T.cond_ready = true;
		}
		rtrs_list_init(&T.armed);
		T.stop = false;
		ret = -pthread_create(&T.thread, NULL, timer_main, NULL);
		if (ret)
			T.users = 0;
	}
	rtrs__unlock(&T.lock);
	return ret;
}

void rtrs__timers_put(void)
{
	pthread_t th;

	rtrs__lock(&T.lock);
	if (--T.users) {
		rtrs__unlock(&T.lock);
		return;
	}
	T.stop = true;
	th = T.thread;
	pthread_cond_broadcast(&T.cond);
	rtrs__unlock(&T.lock);
	pthread_join(th, NULL);
}

void rtrs__timer_init(struct rtrs_timer *t, void (*fn)(struct rtrs_timer *))
{
	rtrs_list_init(&t->node);
	t->fn = fn;
	t->armed = false;
	t->stopped = false;
	t->due_ns = 0;
}

void rtrs__timer_arm(struct rtrs_timer *t, unsigned ms)
{
	struct rtrs_list *pos;

	rtrs__lock(&T.lock);
	if (t->stopped) {
		rtrs__unlock(&T.lock);
		return;
	}
	if (t->armed)
		rtrs_list_del(&t->node);
	t->due_ns = rtrs_now_ns() + (uint64_t)ms * 1000000ull;
	t->armed = true;
	for (pos = T.armed.next; pos != &T.armed; pos = pos->next)
		if (container_of(pos, struct rtrs_timer, node)->due_ns > t->due_ns)
			break;
	/* insert before pos */
	rtrs_list_add_tail(pos, &t->node);
	if (T.armed.next == &t->node)
		pthread_cond_broadcast(&T.cond);
	rtrs__unlock(&T.lock);
}

void rtrs__timer_stop(struct rtrs_timer *t)
{
	rtrs__lock(&T.lock);
	t->stopped = true;
	if (t->armed) {
		rtrs_list_del(&t->node);
		t->armed = false;
	}
	/* from a timer callback (this or another timer's): nothing else runs */
	while (T.running == t && !pthread_equal(pthread_self(), T.thread))
		rtrs__cond_wait(&T.cond, &T.lock, NULL);
	rtrs__unlock(&T.lock);
}
