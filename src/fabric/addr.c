// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Socket addresses for the backends that resolve and name them
 * themselves (rdma/, sock/): backend-neutral. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "fabric.h"

int rtrs__fab_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	unsigned port;
	int n;

	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return -ENOTCONN;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		n = snprintf(buf, len, "%s:%u", host, port);
	} else {
		const struct sockaddr_in6 *s = (const void *)sa;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		n = snprintf(buf, len, "[%s]:%u", host, port);
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int rtrs__fab_resolve(const char *node, const char *service, bool passive,
		      struct sockaddr_storage *out, socklen_t *out_len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *ai;
	int ret = getaddrinfo(node && *node ? node : NULL,
			      service && *service ? service : "0", &hints, &ai);

	if (ret)
		return ret == EAI_MEMORY ? -ENOMEM : -ENODATA;
	memcpy(out, ai->ai_addr, ai->ai_addrlen);
	if (out_len)
		*out_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}
