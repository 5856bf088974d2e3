// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd_strerror: what librnbd's error codes mean for rnbd. Some errnos mean
 * something else in librtrs (-EPERM there is a session name in use, here a
 * second writer); the rest are librtrs's or the system's.
 */
#include <errno.h>

#include "rnbd/rnbd.h"

const char *rnbd_strerror(int err)
{
	switch (err) {
	case -ENOENT:
		return "no such export";
	case -EACCES:
		return "export name outside the export directory, a file the "
		       "server may not open, or an access list that does not "
		       "allow this identity or mode";
	case -EROFS:
		return "read-only export or device";
	case -EPERM:
		return "the file is already open for writing (through any of its names)";
	case -EEXIST:
		return "export already open in this session";
	case -EINVAL:
		return "invalid argument: an offset, length or flag the device "
		       "does not take (unaligned, or past its end)";
	case -EMSGSIZE:
		return "request longer than the device's max_io_size";
	case -E2BIG:
		return "export list does not fit one answer";
	case -EPROTO:
		return "protocol error: not an rnbd server, or a malformed "
		       "answer";
	case -EAGAIN:
		return "every permit of the session is in use";
	case -EDEADLK:
		return "called from one of the session's callbacks";
	case -EBADF:
		return "device not open on the server (re-open failed)";
	case -EIO:
		return "I/O error on the server's backing file or device";
	case -ENOSPC:
		return "no space left on the server's backing file system";
	case -EOPNOTSUPP:
		return "operation not supported by the device";
	default:
		return rtrs_strerror(err);
	}
}
