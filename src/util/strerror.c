// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* rtrs_strerror(): text for the -errno codes of librtrs. Below every layer
 * (src/fabric and src/core both log with it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rtrs/rtrs.h"

const char *rtrs_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EPROTO:
		return "protocol error (malformed or unexpected message)";
	case -EPROTONOSUPPORT:
		return "incompatible RTRS protocol version";
	case -EMSGSIZE:
		return "header or data larger than the session allows";
	case -ENOTCONN:
		return "no connected path";
	case -ECONNABORTED:
		return "request aborted: its path failed";
	case -ECONNREFUSED:
		return "connection refused";
	case -ESHUTDOWN:
		return "session or listener is closing";
	case -ENODATA:
		return "libfabric provider not available for this address "
		       "(or the host name does not resolve)";
	case -ENOKEY:
		return "no memory registration key available";
	case -EBUSY:
		return "permit already has a request in flight";
	case -EPERM:
		return "session name in use by another session";
	case -ENXIO:
		return "server has no such session";
	case -EEXIST:
		return "path or connection already exists";
	case -EOPNOTSUPP:
		return "operation not supported";
	default:
		break;
	}
	if (err < 0 && err > -4096) {
		static _Thread_local char buf[64];

		/* strerror_r in its GNU flavour returns the string */
		snprintf(buf, sizeof(buf), "%s", strerror(-err));
		return buf;
	}
	return "unknown error";
}
