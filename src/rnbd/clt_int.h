/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * librnbd's (clt.c) lock order, the one thing of it that other files
 * need to see (the whole process's order is the one table of
 * docs/design.md §5, whose relations tests/unit/test_lock.c asserts).
 *
 * LOCK ORDER (ranked locks, util/lock.h). Two locks, both leaves: neither
 * is held across a call into librtrs or a user callback, and they never
 * nest.
 *   sess->lock (400)   a session's devices, their in-flight counts and
 *                      parked requests, stop, failed
 *   waiter.lock (410)  one synchronous request's done and status
 * The request callbacks (req_conf, waiter_conf) take them on librtrs's
 * threads, in poll mode under the fabric's poller lock (205): hence ranks
 * after every lock of librtrs that may be held there.
 */
#ifndef RNBD_CLT_INT_H
#define RNBD_CLT_INT_H

#include "util/lock.h"

#define RNBD_RANK_CLT_SESS 400
#define RNBD_RANK_CLT_WAITER 410

#endif
