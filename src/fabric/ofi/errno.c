// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* libfabric error codes to -errno: the one mapping of the backend. */
#include "ofi.h"

#include <errno.h>

#include "util/log.h"

int rtrs__ofi_errno(int fi_err)
{
	int e = fi_err < 0 ? -fi_err : fi_err;

	switch (e) {
	case 0:
		return 0;
	case FI_EAGAIN:
		return -EAGAIN;
	case FI_ENODATA:
		return -ENODATA;
	case FI_ENOKEY:
		return -ENOKEY;
	case FI_ETRUNC:
		return -EMSGSIZE;
	case FI_ECANCELED:
		return -ECANCELED;
	case FI_EOVERRUN:
		return -EOVERFLOW;
	case FI_ENOMEM:
		return -ENOMEM;
	case FI_ETIMEDOUT:
		return -ETIMEDOUT;
	case FI_ECONNREFUSED:
		return -ECONNREFUSED;
	case FI_ECONNRESET:
		return -ECONNRESET;
	case FI_ECONNABORTED:
		return -ECONNABORTED;
	case FI_ENOTCONN:
		return -ENOTCONN;
	case FI_EHOSTUNREACH:
		return -EHOSTUNREACH;
	case FI_EADDRINUSE:
		return -EADDRINUSE;
	case FI_EINVAL:
		return -EINVAL;
	case FI_ENOSYS:
		return -EOPNOTSUPP;
	case FI_EOPNOTSUPP:
		return -EOPNOTSUPP;
	case FI_EACCES:
		return -EACCES;
	default:
		/* libfabric's low codes are errno values; its own start at 256 */
		return e < 256 ? -e : -EIO;
	}
}
