/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Core: sessions, paths, connections, permits, requests. Never includes
 * libfabric; talks to the fabric layer through src/fabric/fabric.h.
 * What both roles share; the client's structs and lock order are in
 * clt_int.h, the server's in srv_int.h.
 */
#ifndef RTRS_CORE_H
#define RTRS_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "auth.h"
#include "fabric/fabric.h"
#include "proto/wire.h"
#include "rtrs/rtrs.h"
#include "timer.h"
#include "util/lock.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/util.h"

#define RTRS_DEF_QD 512
#define RTRS_DEF_CHUNK (128u << 10)

/* kinds stored in fab_opctx.kind */
enum { CTX_RX = 1, CTX_REQ = 2, CTX_INFO = 3, CTX_OP = 4, CTX_MISC = 5 };

/* common.c */
int rtrs__cond_init_mono(pthread_cond_t *c);
/* 0 if @host is an IPv4 address (a.b.c.d), an IPv6 address (optionally
 * with %scope) or a host name by its syntax (labels of letters, digits,
 * '-' and '_'); else -EINVAL. Resolving a name is the provider's. */
int rtrs__host_check(const char *host);

#endif
