/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Small helpers: time, lists, containers. */
#ifndef RTRS_UTIL_UTIL_H
#define RTRS_UTIL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define RTRS_HIDDEN __attribute__((visibility("hidden")))
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#ifndef container_of
#define container_of(ptr, type, member)                                      \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#endif
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

static inline uint64_t rtrs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t rtrs_now_ms(void)
{
	return rtrs_now_ns() / 1000000ull;
}

/* absolute CLOCK_MONOTONIC deadline @ms from now, for pthread_cond_timedwait
 * on a condvar created with CLOCK_MONOTONIC */
static inline struct timespec rtrs_deadline(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Intrusive doubly linked list. */
struct rtrs_list {
	struct rtrs_list *next, *prev;
};

static inline void rtrs_list_init(struct rtrs_list *h)
{
	h->next = h->prev = h;
}
static inline int rtrs_list_empty(const struct rtrs_list *h)
{
	return h->next == h;
}
static inline void rtrs_list_add_tail(struct rtrs_list *h, struct rtrs_list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void rtrs_list_add_head(struct rtrs_list *h, struct rtrs_list *n)
{
	n->next = h->next;
	n->prev = h;
	h->next->prev = n;
	h->next = n;
}
static inline void rtrs_list_del(struct rtrs_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

/* Move every entry of @src to @dst (which need not be initialised);
 * @src is left empty. */
static inline void rtrs_list_take(struct rtrs_list *dst, struct rtrs_list *src)
{
	if (rtrs_list_empty(src)) {
		rtrs_list_init(dst);
		return;
	}
	dst->next = src->next;
	dst->prev = src->prev;
	dst->next->prev = dst;
	dst->prev->next = dst;
	rtrs_list_init(src);
}

#define rtrs_list_for_each(pos, head)                                        \
	for (pos = (head)->next; pos != (head); pos = pos->next)
#define rtrs_list_for_each_safe(pos, tmp, head)                              \
	for (pos = (head)->next, tmp = pos->next; pos != (head);             \
	     pos = tmp, tmp = pos->next)

/* Parse "host:port" or "[v6]:port" into host and port strings.
 * Returns 0 or -EINVAL. */
int rtrs__split_hostport(const char *s, char *host, size_t hlen, char *port,
			 size_t plen);

/* "[PROVIDER://]ADDR": the provider named in front of an address, or
 * @def; returns where the address starts, or NULL (-EINVAL) for an empty
 * or overlong provider name. */
const char *rtrs__split_provider(const char *s, const char *def, char *prov,
				 size_t plen);

/* Fill @buf with random bytes (getrandom, falls back to a time-seeded mix). */
void rtrs__random(void *buf, size_t len);

/* A random 32-bit value from the kernel's CSPRNG, served from a per-thread
 * buffer refilled by one getrandom() per 64 values (used for memory keys:
 * one per request with always_invalidate). */
uint32_t rtrs__random_u32(void);

/* Online CPUs, at least 1. */
unsigned rtrs__ncpus(void);

/* The CPUs this process may run on: its affinity mask's count, at least 1
 * (rtrs__ncpus() if the mask cannot be read). */
unsigned rtrs__affinity_cpus(void);

/* The CPUs this process may keep busy at once: rtrs__affinity_cpus(),
 * capped by a CPU quota on its cgroup or an ancestor (cgroup v2 cpu.max,
 * v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded up. At least 1. */
unsigned rtrs__usable_cpus(void);

/* A cgroup v2 cpu.max text @s ("QUOTA PERIOD" or "max PERIOD", an optional
 * newline) as CPUs: QUOTA / PERIOD rounded up, 0 for "max" (no limit), or
 * -EINVAL if @s does not have that form. */
int rtrs__cpu_max_cpus(const char *s);

/* Copy the string @s with its NUL into @buf of @len bytes: 0, or -ENOSPC
 * (and @buf untouched) when it does not fit. */
int rtrs__str_out(char *buf, size_t len, const char *s);

/* The runnable threads of the machine, the reader included: the R of the
 * fourth field ("R/T") of /proc/loadavg's text @s. Returns R (>= 0) or
 * -EINVAL if @s does not have that form. */
int rtrs__loadavg_running(const char *s);

/* Read the runnable count from @fd, an open /proc/loadavg (pread at 0).
 * Returns it or a negative errno. */
int rtrs__nr_running(int fd);


#endif
