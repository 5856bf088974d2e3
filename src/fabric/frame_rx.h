/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A software-RMA frame applied at its receiver, backend-neutral
 * (frame_rx.c): what a decoded frame (rtrs__proto_frame_decode(),
 * proto/wire.c) may do and what it does (docs/protocol.md §2.6), the same
 * for every backend that receives frames (the libfabric one on tcp and
 * net, ofi/swrma.c; the socket one, sock/data.c). The backend keeps its
 * own surroundings: where the bytes come from and how far it has read,
 * its buffers, the log line and the close on a violation (the words come
 * from here), and handing the completion to the core (when: the ofi
 * backend reposts its buffer first).
 *
 * The rules:
 *   - an RMA frame inside a message being assembled: -EPROTO;
 *   - a MSG frame: its message's first frame takes the core's oldest
 *     posted receive (none: -EAGAIN, nothing consumed); f.off must be the
 *     bytes assembled so far and the payload must fit the receive, else
 *     -EMSGSIZE; it is copied in, and with LAST the receive completes
 *     (FAB_CQE_RECV, its length, FAB_CQE_IMM and the immediate with IMM);
 *   - an RMA frame lands through the key table (keytab.h: -EACCES,
 *     -ERANGE); with LAST and IMM it completes as FAB_CQE_RMA_IN |
 *     FAB_CQE_IMM with no context; with LAST alone it is silent.
 *
 * Threading: a connection's state is its drain thread's; the calls take
 * no lock but the key table's (rtrs__fab_keytab_rma_in()) and whatever
 * @pop takes; they do not block beyond that, and call nothing else back.
 */
#ifndef RTRS_FABRIC_FRAME_RX_H
#define RTRS_FABRIC_FRAME_RX_H

#include <stddef.h>
#include <stdint.h>

#include "fabric/fabric.h"
#include "fabric/keytab.h"
#include "proto/wire.h"

struct fab_frame_rx {                   /* a connection's receive state */
	struct fab_opctx *asm_ctx;      /* the message being assembled */
	size_t asm_len;                 /* its bytes so far */
};

/* Whether @f may come now, before any of its payload is needed (the
 * socket backend asks before it receives a big RMA frame straight into
 * its region): 0, or -EPROTO with *@why the words for the log (an RMA
 * frame inside a message being assembled). rtrs__fab_frame_rx() asks
 * the same first. */
int rtrs__fab_frame_rx_admit(const struct fab_frame_rx *st,
			     const struct rtrs_frame *f, const char **why);

/* Apply frame @f (decoded, its payload at @payload, all of it there) at
 * its receiver, checking RMA keys in @keys for @scope.
 * 1: *@c is a completion for the core; 0: none (more frames of the
 * message, or a write without immediate);
 * -EAGAIN: a message frame and no receive posted (@pop(@arg) returned
 * NULL): nothing consumed, call again once one is posted;
 * else the peer broke a rule, nothing landed: -EPROTO, -EMSGSIZE,
 * -EACCES, -ERANGE, with *@why the words for the log.
 * @pop: the core's oldest posted receive, taken off its queue, or NULL
 * (called only at a message's first frame). */
int rtrs__fab_frame_rx(struct fab_frame_rx *st, struct fab_keytab *keys,
		       const void *scope, const struct rtrs_frame *f,
		       const uint8_t *payload,
		       struct fab_opctx *(*pop)(void *arg), void *arg,
		       struct fab_cqe *c, const char **why);

/* At close: the message being assembled is dropped (its receive ends
 * with the core's others, without a completion). */
void rtrs__fab_frame_rx_reset(struct fab_frame_rx *st);

#endif
