// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* A software-RMA frame applied at its receiver (frame_rx.h): the checks
 * and the copy every backend that receives frames makes after
 * rtrs__proto_frame_decode(), and the completion a frame makes. */
#include "fabric/frame_rx.h"

#include <errno.h>
#include <string.h>

int rtrs__fab_frame_rx_admit(const struct fab_frame_rx *st,
			     const struct rtrs_frame *f, const char **why)
{
	if (f->type == RTRS_FRAME_RMA && st->asm_ctx) {
		*why = "malformed frame";
		return -EPROTO;
	}
	return 0;
}

/* A message frame: into the receive being assembled (the core's oldest,
 * taken at the message's first frame). */
static int msg_in(struct fab_frame_rx *st, const struct rtrs_frame *f,
		  const uint8_t *payload,
		  struct fab_opctx *(*pop)(void *arg), void *arg,
		  const char **why)
{
	if (!st->asm_ctx) {
		st->asm_ctx = pop(arg);
		st->asm_len = 0;
		if (!st->asm_ctx)
			return -EAGAIN; /* until the core posts one */
	}
	if (f->off != st->asm_len ||
	    f->len > st->asm_ctx->rx_len - st->asm_len) {
		*why = "message too long";
		return -EMSGSIZE;
	}
	memcpy((uint8_t *)st->asm_ctx->rx_buf + st->asm_len, payload, f->len);
	st->asm_len += f->len;
	return 0;
}

int rtrs__fab_frame_rx(struct fab_frame_rx *st, struct fab_keytab *keys,
		       const void *scope, const struct rtrs_frame *f,
		       const uint8_t *payload,
		       struct fab_opctx *(*pop)(void *arg), void *arg,
		       struct fab_cqe *c, const char **why)
{
	struct fab_cqe done = { 0 };
	int ret;

	ret = rtrs__fab_frame_rx_admit(st, f, why);
	if (ret)
		return ret;
	if (f->type == RTRS_FRAME_MSG) {
		ret = msg_in(st, f, payload, pop, arg, why);
		if (ret)
			return ret;
	} else {
		ret = rtrs__fab_keytab_rma_in(keys, scope, f->key, f->off,
					      payload, f->len);
		if (ret) {
			*why = ret == -EACCES ? "RMA with an unknown key"
					      : "RMA outside its region";
			return ret;
		}
	}
	if (!(f->flags & RTRS_FRAME_LAST))
		return 0;
	if (f->type == RTRS_FRAME_MSG) {
		done.ctx = st->asm_ctx;
		done.flags = FAB_CQE_RECV;
		done.len = (uint32_t)st->asm_len;
		st->asm_ctx = NULL;
	} else if (f->flags & RTRS_FRAME_IMM) {
		done.flags = FAB_CQE_RMA_IN;
	} else {
		return 0;       /* a write without immediate: silent */
	}
	if (f->flags & RTRS_FRAME_IMM) {
		done.flags |= FAB_CQE_IMM;
		done.imm = f->imm;
	}
	*c = done;
	return 1;
}

void rtrs__fab_frame_rx_reset(struct fab_frame_rx *st)
{
	st->asm_ctx = NULL;
	st->asm_len = 0;
}
