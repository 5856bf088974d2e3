// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Shared helpers: condition variables, address syntax. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

int rtrs__cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int ret;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	ret = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return -ret;
}


/* A label of a host name: letters, digits, '-' and '_' (names in
 * /etc/hosts may have one), neither first nor last a '-'. */
static bool label_ok(const char *l, size_t n)
{
	if (!n || n > 63 || l[0] == '-' || l[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((l[i] >= 'a' && l[i] <= 'z') || (l[i] >= 'A' && l[i] <= 'Z') ||
		      (l[i] >= '0' && l[i] <= '9') || l[i] == '-' || l[i] == '_'))
			return false;
	return true;
}

int rtrs__host_check(const char *host)
{
	size_t n = host ? strlen(host) : 0;
	const char *p, *dot;
	bool numeric = true;

	if (!n || n > 253)
		return -EINVAL;
	if (strchr(host, ':')) {
		/* IPv6, with an optional %scope (a link-local address) */
		const char *pct = strchr(host, '%');
		size_t m = pct ? (size_t)(pct - host) : n;
		char buf[INET6_ADDRSTRLEN];
		struct in6_addr a6;

		if (m >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, host, m);
		buf[m] = 0;
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return -EINVAL;
		return !pct || label_ok(pct + 1, strlen(pct + 1)) ? 0 : -EINVAL;
	}
	for (p = host; *p; p++)
		if (*p != '.' && (*p < '0' || *p > '9'))
			numeric = false;
	if (numeric) {
		struct in_addr a4;

		return inet_pton(AF_INET, host, &a4) == 1 ? 0 : -EINVAL;
	}
	/* a name: labels separated by dots, one trailing dot allowed */
	for (p = host; *p; p = dot + 1) {
		dot = strchr(p, '.');
		if (!dot)
			return label_ok(p, strlen(p)) ? 0 : -EINVAL;
		if (!label_ok(p, (size_t)(dot - p)))
			return -EINVAL;
		if (!dot[1])
			return 0;
	}
	return -EINVAL;
}
