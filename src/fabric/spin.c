// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Busy-polling ($RTRS_POLL_US), backend-neutral: whether a progress thread
 * or a poller that found nothing should read its queues again rather than
 * sleep. The backends' engines start and stop it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fabric.h"
#include "util/log.h"
#include "util/util.h"

/* Set once at engine start: the busy-poll window after a pass that found
 * work, $RTRS_POLL_US or by default RTRS_FAB_POLL_US_DEFAULT when the
 * process may use two CPUs or more (one to spin, one for the rest), 0 on
 * one (always block at once). */
static uint64_t poll_ns;

/*
 * A spinner keeps a CPU from every other thread, and a wake-up on an idle
 * vCPU costs more than the round trip it waits for: so spin only while
 * the machine has no more runnable threads than CPUs (the spinner counts
 * itself). The count is /proc/loadavg's (machine-wide, as sched sees it),
 * read at most every SPARE_CHECK_NS per thread: about 2 us a read here.
 * A "no" is kept for NOT_SPARE_HOLD_NS: a busy machine stays busy for
 * longer than one round trip, and on it the read cost a system call per
 * IO (two fio jobs at QD 1, one pread per IO) only to say no again.
 * Opened at engine start when the window is not 0; if it cannot be read,
 * nothing spins.
 */
#define SPARE_CHECK_NS 10000ull
#define NOT_SPARE_HOLD_NS 1000000ull
static int loadavg_fd = -1;
static unsigned online_cpus;
/* the engine's reading of rtrs__usable_cpus() */
static unsigned usable_cpus;

static bool cpu_spare(uint64_t now)
{
	static _Thread_local uint64_t checked;
	static _Thread_local bool spare;

	if (now - checked >= (spare ? SPARE_CHECK_NS : NOT_SPARE_HOLD_NS)) {
		int r = rtrs__nr_running(loadavg_fd);

		spare = r > 0 && (unsigned)r <= online_cpus;
		checked = now;
	}
	return spare;
}

bool rtrs__fab_may_spin(uint64_t since_ns, uint64_t now_ns)
{
	return poll_ns && now_ns - since_ns < poll_ns && cpu_spare(now_ns);
}

void rtrs__fab_spin_start(unsigned ncpus, unsigned usable)
{
	const char *pu = getenv("RTRS_POLL_US");
	unsigned long long us = usable >= 2 ? RTRS_FAB_POLL_US_DEFAULT : 0;

	if (pu && *pu) {
		char *end;

		errno = 0;
		us = strtoull(pu, &end, 10);
		if (errno || *end || us > 1000000) {
			rtrs_warn("RTRS_POLL_US=%s: not a number of microseconds up to 1000000; not polling",
				  pu);
			us = 0;
		}
	}
	poll_ns = us * 1000;
	online_cpus = ncpus;
	usable_cpus = usable;
	if (poll_ns) {
		loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
		if (loadavg_fd < 0) {
			rtrs_warn("busy-poll: /proc/loadavg: %d; not polling",
				  -errno);
			poll_ns = 0;
		}
	}
}

unsigned rtrs__fab_poll_us(void)
{
	return (unsigned)(poll_ns / 1000);
}

unsigned rtrs__fab_usable_cpus(void)
{
	return usable_cpus ? usable_cpus : rtrs__usable_cpus();
}

void rtrs__fab_spin_stop(void)
{
	if (loadavg_fd >= 0)
		close(loadavg_fd);
	loadavg_fd = -1;
}
