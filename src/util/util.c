// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
#include "util.h"

#include <errno.h>
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
