// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: a message of a connection whose data path is frames
 * (docs/protocol.md section 2.6), as the receiver walks it
 * (rtrs__proto_frame_decode, the decoder src/fabric/ofi/swrma.c uses).
 * Input: the message, copied into a heap block of exactly its size, so
 * ASan sees any read past it.
 * Properties: a frame is accepted only whole, within what is left of the
 * message, with a known type and flags (IMM only with LAST); encoding what
 * was decoded gives the same 24 bytes; the walk ends at the message's end
 * or at the first frame refused.
 */
#include <errno.h>

#include "fuzz.h"
#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg = malloc(size ? size : 1);
	uint8_t again[RTRS_FRAME_HDR_LEN];
	size_t pos = 0;

	FUZZ_CHECK(msg);
	if (size)
		memcpy(msg, data, size);
	while (pos < size) {
		struct rtrs_frame f, g;
		size_t left = size - pos;
		int ret = rtrs__proto_frame_decode(msg + pos, left, &f);

		FUZZ_CHECK(ret == 0 || ret == -EPROTO);
		if (ret)
			break;
		FUZZ_CHECK(left >= RTRS_FRAME_HDR_LEN &&
			   f.len <= left - RTRS_FRAME_HDR_LEN);
		FUZZ_CHECK(f.type == RTRS_FRAME_MSG ||
			   f.type == RTRS_FRAME_RMA);
		FUZZ_CHECK(!(f.flags & ~(RTRS_FRAME_IMM | RTRS_FRAME_LAST)));
		FUZZ_CHECK(!(f.flags & RTRS_FRAME_IMM) ||
			   (f.flags & RTRS_FRAME_LAST));
		rtrs__proto_frame_encode(again, &f);
		FUZZ_CHECK(!memcmp(again, msg + pos, RTRS_FRAME_HDR_LEN));
		FUZZ_CHECK(rtrs__proto_frame_decode(again, RTRS_FRAME_HDR_LEN +
						    (size_t)f.len, &g) == 0);
		FUZZ_CHECK(g.type == f.type && g.flags == f.flags &&
			   g.imm == f.imm && g.key == f.key &&
			   g.len == f.len && g.off == f.off);
		pos += RTRS_FRAME_HDR_LEN + f.len;
	}
	FUZZ_CHECK(pos <= size);
	free(msg);
	return 0;
}
