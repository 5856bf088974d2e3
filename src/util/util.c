// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int rtrs__split_hostport(const char *s, char *host, size_t hlen, char *port,
			 size_t plen)
{
	const char *colon, *h = s;
	size_t n;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		h = s + 1;
		n = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return -EINVAL;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hlen || !colon[1] || strlen(colon + 1) >= plen)
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (atol(colon + 1) > 65535)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = 0;
	strcpy(port, colon + 1);
	return 0;
}

const char *rtrs__split_provider(const char *s, const char *def, char *prov,
				 size_t plen)
{
	const char *sep = s ? strstr(s, "://") : NULL;
	size_t n;

	if (!sep) {
		snprintf(prov, plen, "%s", def ? def : "");
		return s;
	}
	n = (size_t)(sep - s);
	if (!n || n >= plen)
		return NULL;
	memcpy(prov, s, n);
	prov[n] = 0;
	return sep + 3;
}

void rtrs__random(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = getrandom(p, len, 0);

		if (r <= 0) {
			uint64_t x = rtrs_now_ns() ^ (uint64_t)(uintptr_t)p;

			for (; len; len--, p++) {
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				*p = (uint8_t)x;
			}
			return;
		}
		p += r;
		len -= (size_t)r;
	}
}

uint32_t rtrs__random_u32(void)
{
	static _Thread_local uint32_t pool[64];
	static _Thread_local unsigned left;

	if (!left) {
		rtrs__random(pool, sizeof(pool));
		left = 64;
	}
	return pool[--left];
}

int rtrs__str_out(char *buf, size_t len, const char *s)
{
	size_t n = strlen(s);

	if (n >= len)
		return -ENOSPC;
	memcpy(buf, s, n + 1);
	return 0;
}

unsigned rtrs__ncpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

unsigned rtrs__affinity_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return rtrs__ncpus();
	n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

int rtrs__cpu_max_cpus(const char *s)
{
	unsigned long long quota = 0, period = 0;
	int digits = 0;

	if (!s)
		return -EINVAL;
	if (!strncmp(s, "max", 3)) {
		s += 3;
	} else {
		for (; *s >= '0' && *s <= '9'; s++, digits++) {
			quota = quota * 10 + (unsigned)(*s - '0');
			if (quota > UINT32_MAX * 1000ull)
				return -EINVAL;
		}
		if (!digits)
			return -EINVAL;
	}
	if (*s != ' ')
		return -EINVAL;
	for (s++, digits = 0; *s >= '0' && *s <= '9'; s++, digits++) {
		period = period * 10 + (unsigned)(*s - '0');
		if (period > UINT32_MAX)
			return -EINVAL;
	}
	if (!digits || !period || (*s && *s != '\n'))
		return -EINVAL;
	if (!quota)
		return 0;       /* "max": no limit */
	/* a quota of 1.5 periods lets 2 threads run at once, part of the time */
	quota = (quota + period - 1) / period;
	return quota > INT32_MAX ? INT32_MAX : (int)quota;
}

/* Whether the comma-separated list @list holds the word @w. */
static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, w, n) && (p[n] == ',' || !p[n] || p[n] == '\n'))
			return true;
	return false;
}

/* The first line of the small file @dir/@name into @buf of @size bytes,
 * without its newline: 0, or -1 if it cannot be read or is empty. */
static int read_line(const char *dir, const char *name, char *buf,
		     size_t size)
{
	char path[PATH_MAX + 32];
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The quota in CPUs of cgroup directory @dir: v2 cpu.max, v1
 * cpu.cfs_quota_us and cpu.cfs_period_us; 0 for none or unreadable. */
static unsigned dir_quota(const char *dir, bool v2)
{
	char buf[64], per[32];
	int n;

	if (read_line(dir, v2 ? "cpu.max" : "cpu.cfs_quota_us", buf, 32))
		return 0;
	if (!v2) {              /* "-1" or a quota, then the period's file */
		if (!strcmp(buf, "-1") ||
		    read_line(dir, "cpu.cfs_period_us", per, sizeof(per)))
			return 0;
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " %s", per);
	}
	n = rtrs__cpu_max_cpus(buf);
	return n > 0 ? (unsigned)n : 0;
}

/*
 * The CPU quota of this process's cgroup and its ancestors, as CPUs (the
 * smallest): cgroup v2 (cpu.max) or v1's cpu controller (cfs quota),
 * wherever /proc/self/mountinfo says they are mounted. 0 when none is set
 * or none can be read.
 */
static unsigned cgroup_cpus(void)
{
	char line[1024], mnt[2][PATH_MAX], root[2][PATH_MAX];
	char cg[2][PATH_MAX], dir[PATH_MAX];
	bool have[2] = { false, false }, in[2] = { false, false };
	unsigned best = 0;
	FILE *f;

	/* [0] the v1 cpu hierarchy, [1] the v2 one */
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char r[PATH_MAX], m[PATH_MAX], type[32], opts[256];
		const char *dash = strstr(line, " - ");
		int v;

		if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2 ||
		    sscanf(dash + 3, "%31s %*s %255s", type, opts) != 2)
			continue;
		if (!strcmp(type, "cgroup2"))
			v = 1;
		else if (!strcmp(type, "cgroup") && has_word(opts, "cpu"))
			v = 0;
		else
			continue;
		if (have[v])
			continue;
		have[v] = true;
		snprintf(mnt[v], sizeof(mnt[v]), "%s", m);
		snprintf(root[v], sizeof(root[v]), "%s", r);
	}
	fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *ctl = strchr(line, ':'), *path;
		int v;

		if (!ctl || !(path = strchr(ctl + 1, ':')))
			continue;
		*path++ = 0;
		ctl++;
		path[strcspn(path, "\n")] = 0;
		v = !strcmp(line, "0") && !*ctl ? 1 : has_word(ctl, "cpu") ? 0 : -1;
		if (v < 0 || !have[v] || *path != '/')
			continue;
		/* a bind mount of a sub-tree: the path below the mount's root */
		if (strcmp(root[v], "/")) {
			size_t n = strlen(root[v]);

			if (strncmp(path, root[v], n) || (path[n] && path[n] != '/'))
				continue;
			path += n;
		}
		snprintf(cg[v], sizeof(cg[v]), "%s", *path ? path : "/");
		in[v] = true;
	}
	fclose(f);
	for (int v = 0; v < 2; v++) {
		if (!in[v])
			continue;
		for (;;) {
			unsigned q;

			q = 0;
			if (snprintf(dir, sizeof(dir), "%s%s", mnt[v],
				     strcmp(cg[v], "/") ? cg[v] : "") < (int)sizeof(dir))
				q = dir_quota(dir, v == 1);
			if (q && (!best || q < best))
				best = q;
			if (!strcmp(cg[v], "/"))
				break;
			*strrchr(cg[v], '/') = 0;
			if (!*cg[v])
				strcpy(cg[v], "/");
		}
	}
	return best;
}

unsigned rtrs__usable_cpus(void)
{
	unsigned n = rtrs__affinity_cpus(), q = cgroup_cpus();

	return q && q < n ? q : n;
}

int rtrs__loadavg_running(const char *s)
{
	long r = 0;
	int digits = 0;

	if (!s)
		return -EINVAL;
	/* three load averages, each followed by one space */
	for (int f = 0; f < 3; f++) {
		s = strchr(s, ' ');
		if (!s)
			return -EINVAL;
		s++;
	}
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		r = r * 10 + (*s - '0');
		if (r > INT32_MAX)
			return -EINVAL;
	}
	if (!digits || *s != '/')
		return -EINVAL;
	return (int)r;
}

int rtrs__nr_running(int fd)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return rtrs__loadavg_running(buf);
}
