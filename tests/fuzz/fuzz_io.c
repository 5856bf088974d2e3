// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: an IO request as the server reads it out of a chunk
 * that the client wrote (rtrs__proto_io_msg_decode, rtrs__proto_read_desc).
 * Input: le16 queue depth, le32 max_io (mod 64 KiB), le16 max_hdr,
 * le32 offset of the message (mod chunk size), u8 fenced, le16 bytes
 * before the message; then those bytes and the message, placed so that
 * the message starts at the offset. The chunk is a heap block of exactly
 * chunk_size bytes, zero elsewhere: ASan sees any read past it.
 * Properties: the decoded fields describe the chunk (user header just
 * before the message, data before that, descriptors and fence inside the
 * header area, lengths within max_io, descriptor lengths summing to the
 * data); re-encoding the message with the encoders decodes the same.
 */
#include <errno.h>

#include "fuzz.h"
#include "proto/wire.h"

static void same_msg(const struct rtrs_io_msg *a, const struct rtrs_io_msg *b)
{
	FUZZ_CHECK(a->type == b->type && a->data_len == b->data_len &&
		   a->usr_off == b->usr_off && a->usr_len == b->usr_len &&
		   a->sg_cnt == b->sg_cnt && a->desc_off == b->desc_off &&
		   a->seq == b->seq && a->fence_path == b->fence_path &&
		   a->fence_flags == b->fence_flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint16_t qd = fin_u16(&in);
	uint32_t max_io = fin_u32(&in) % (64u << 10);
	uint16_t max_hdr = fin_u16(&in);
	uint32_t off = fin_u32(&in);
	bool fenced = fin_u8(&in) & 1;
	uint16_t pre = fin_u16(&in);
	struct rtrs_sg_desc desc[RTRS_PROTO_MAX_READ_DESC];
	struct rtrs_io_msg m, m2;
	struct rtrs_geom g;
	uint8_t *chunk, *copy;
	uint64_t sum = 0;
	size_t at, k;
	int ret;

	if (rtrs__proto_geom(&g, qd, max_io, max_hdr))
		return 0;
	off %= g.chunk_size;
	chunk = calloc(1, g.chunk_size);
	copy = malloc(g.chunk_size);
	FUZZ_CHECK(chunk && copy);
	at = off - (pre < off ? pre : off);
	k = fin_bytes(&in, chunk + at, g.chunk_size - at);
	(void)k;
	memset(&m, 0xa5, sizeof(m));
	ret = rtrs__proto_io_msg_decode(chunk, &g, off, fenced, &m);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EMSGSIZE);
	if (ret)
		goto out;
	FUZZ_CHECK(m.type == RTRS_MSG_WRITE || m.type == RTRS_MSG_READ);
	FUZZ_CHECK(m.usr_off + m.usr_len == off);
	FUZZ_CHECK(m.data_len == m.usr_off && m.data_len <= g.max_io_size);
	FUZZ_CHECK(fenced ? m.seq != 0 : !m.seq && !m.fence_path &&
						  !m.fence_flags);
	FUZZ_CHECK(!(m.fence_flags & ~(RTRS_FENCE_RETRY_F | RTRS_FENCE_PATH_F)));
	FUZZ_CHECK((m.fence_flags & RTRS_FENCE_PATH_F) || !m.fence_path);
	if (m.type == RTRS_MSG_WRITE) {
		FUZZ_CHECK(m.sg_cnt == 0);
		FUZZ_CHECK((uint64_t)off + RTRS_WRITE_MSG_LEN +
				   (fenced ? RTRS_FENCE_LEN : 0) - m.usr_off <=
			   g.max_hdr_size);
	} else {
		FUZZ_CHECK(m.sg_cnt <= RTRS_PROTO_MAX_READ_DESC);
		FUZZ_CHECK(m.desc_off == (uint64_t)off + 8);
		FUZZ_CHECK(m.desc_off + 16u * m.sg_cnt +
				   (fenced ? RTRS_FENCE_LEN : 0) <=
			   g.chunk_size);
		FUZZ_CHECK(m.desc_off + 16u * m.sg_cnt +
				   (fenced ? RTRS_FENCE_LEN : 0) - m.usr_off <=
			   g.max_hdr_size);
		for (unsigned i = 0; i < m.sg_cnt; i++) {
			FUZZ_CHECK(rtrs__proto_read_desc(chunk, &g, &m, i,
							 &desc[i]) == 0);
			FUZZ_CHECK(desc[i].len >= 1 &&
				   desc[i].len <= g.max_io_size);
			sum += desc[i].len;
		}
		FUZZ_CHECK(sum == m.data_len);
		FUZZ_CHECK(rtrs__proto_read_desc(chunk, &g, &m, m.sg_cnt,
						 &desc[0]) == -EPROTO);
	}
	/* the client's encoders write the same request */
	memcpy(copy, chunk, g.chunk_size);
	if (m.type == RTRS_MSG_WRITE) {
		at = off + rtrs__proto_write_msg_encode(copy + off,
							(uint16_t)m.usr_len);
	} else {
		at = off + rtrs__proto_read_msg_encode(copy + off,
						       (uint16_t)m.usr_len, desc,
						       m.sg_cnt);
	}
	if (fenced) {
		struct rtrs_fence f = { m.seq, m.fence_path, m.fence_flags };

		at += rtrs__proto_fence_encode(copy + at, &f);
	}
	FUZZ_CHECK(at <= g.chunk_size);
	memset(&m2, 0x5a, sizeof(m2));
	FUZZ_CHECK(rtrs__proto_io_msg_decode(copy, &g, off, fenced, &m2) == 0);
	same_msg(&m, &m2);
	/* and the immediate that names it */
	if (off < (1u << g.mem_bits)) {
		uint32_t id, o;
		uint32_t imm = rtrs__proto_io_req_imm(&g, g.queue_depth - 1, off);

		FUZZ_CHECK(rtrs_imm_type(imm) == RTRS_IMM_IO_REQ);
		FUZZ_CHECK(rtrs__proto_io_req_decode(&g, rtrs_imm_payload(imm),
						     &id, &o) == 0);
		FUZZ_CHECK(id == g.queue_depth - 1 && o == off);
	}
out:
	free(chunk);
	free(copy);
	return 0;
}
