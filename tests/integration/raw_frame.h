/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The software-RMA frame of docs/protocol.md section 2.6, written here
 * from the spec for the raw hostile peers (test_hostile.c,
 * test_hostile_srv.c): they must not use the library's own encoder.
 */
#ifndef RTRS_TEST_RAW_FRAME_H
#define RTRS_TEST_RAW_FRAME_H

#include <stdint.h>

#define SWR_HDR 24
#define SWR_MSG 1
#define SWR_RMA 2
#define SWR_IMM 0x1
#define SWR_LAST 0x2

/* le16 magic 0x5753 | u8 type | u8 flags | le32 imm | le32 key |
 * le32 len | le64 off */
static inline void frame_put(uint8_t *h, unsigned type, unsigned flags,
			     uint32_t imm, uint32_t key, uint32_t len,
			     uint64_t off)
{
	h[0] = 0x53;
	h[1] = 0x57;
	h[2] = (uint8_t)type;
	h[3] = (uint8_t)flags;
	for (int i = 0; i < 4; i++) {
		h[4 + i] = (uint8_t)(imm >> (8 * i));
		h[8 + i] = (uint8_t)(key >> (8 * i));
		h[12 + i] = (uint8_t)(len >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		h[16 + i] = (uint8_t)(off >> (8 * i));
}

static inline uint32_t frame_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

#endif
