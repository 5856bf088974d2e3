// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: the connection manager's private data, both ways
 * (rtrs__proto_conn_req_decode on the server, rtrs__proto_conn_rsp_decode
 * on the client). Input: one selector byte, then the private data exactly
 * as the CM hands it over (any length).
 * Properties: no read outside the data (ASan); a decoded message re-encodes
 * to one that decodes to the same fields; the fields it accepts are in
 * range; the encoding carries the input's significant bytes.
 */
#include <errno.h>

#include "fuzz.h"
#include "proto/wire.h"

static void conn_req(const uint8_t *d, size_t n)
{
	struct rtrs_conn_req r, r2;
	uint8_t buf[RTRS_CONN_PRIV_LEN];
	int ret = rtrs__proto_conn_req_decode(d, n, &r);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EPROTONOSUPPORT);
	if (ret)
		return;
	FUZZ_CHECK(n >= RTRS_CONN_REQ_MIN_LEN);
	FUZZ_CHECK(r.cid_num >= 2 && r.cid_num <= RTRS_PROTO_MAX_CIDS);
	FUZZ_CHECK(r.cid < r.cid_num);
	FUZZ_CHECK(r.has_path_no || r.path_no == 0);
	rtrs__proto_conn_req_encode(buf, &r);
	/* cid .. paths_uuid as received */
	FUZZ_CHECK(!memcmp(buf + 6, d + 6, 44 - 6));
	/* the known flags as received; BATCH and BIG only with FRAMES */
	FUZZ_CHECK(buf[44] == (d[44] & (RTRS_CONN_FIRST_F | RTRS_CONN_FENCE_F |
					 RTRS_CONN_PATH_NO_F | RTRS_CONN_AUTH_F |
					 RTRS_CONN_FRAMES_F |
					 ((d[44] & RTRS_CONN_FRAMES_F) ?
					  RTRS_CONN_BATCH_F | RTRS_CONN_BIG_F
					  : 0))));
	FUZZ_CHECK((!r.batch && !r.big) || r.frames);
	/* the re-encoding, whole and as a CM that cuts the tail carries it */
	for (size_t len = RTRS_CONN_REQ_MIN_LEN; len <= sizeof(buf); len++) {
		size_t kept = len <= 46 ? 0 : len - 46;  /* of path_no */

		if (kept < 2 && (uint32_t)r.path_no >> (8 * kept))
			continue;       /* the cut would lose path_no bytes */
		memset(&r2, 0xa5, sizeof(r2));
		FUZZ_CHECK(rtrs__proto_conn_req_decode(buf, len, &r2) == 0);
		FUZZ_CHECK(r2.cid == r.cid && r2.cid_num == r.cid_num &&
			   r2.recon_cnt == r.recon_cnt);
		FUZZ_CHECK(!memcmp(r2.sess_uuid, r.sess_uuid, 16));
		FUZZ_CHECK(!memcmp(r2.paths_uuid, r.paths_uuid, 16));
		FUZZ_CHECK(r2.first_conn == r.first_conn && r2.fence == r.fence);
		FUZZ_CHECK(r2.frames == r.frames && r2.batch == r.batch &&
			   r2.big == r.big);
		FUZZ_CHECK(r2.has_path_no == r.has_path_no &&
			   r2.path_no == r.path_no);
	}
}

static void conn_rsp(const uint8_t *d, size_t n)
{
	struct rtrs_conn_rsp r, r2;
	uint8_t buf[RTRS_CONN_PRIV_LEN];
	int ret = rtrs__proto_conn_rsp_decode(d, n, &r);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EPROTONOSUPPORT);
	if (ret)
		return;
	FUZZ_CHECK(n >= RTRS_CONN_RSP_MIN_LEN);
	FUZZ_CHECK(r.err <= 0 && r.err >= -32768);
	if (r.err == 0) {
		struct rtrs_geom g;

		/* what the client builds its chunk table from */
		FUZZ_CHECK(rtrs__proto_geom(&g, r.queue_depth, r.max_io_size,
					    r.max_hdr_size) == 0);
		FUZZ_CHECK(!(r.flags & ~(uint32_t)(RTRS_MSG_NEW_RKEY_F |
						   RTRS_MSG_FENCE_F |
						   RTRS_MSG_AUTH_F |
						   RTRS_MSG_FRAMES_F |
						   RTRS_MSG_BIG_F)));
	}
	rtrs__proto_conn_rsp_encode(buf, &r);
	FUZZ_CHECK(!memcmp(buf + 6, d + 6, RTRS_CONN_RSP_MIN_LEN - 6));
	memset(&r2, 0xa5, sizeof(r2));
	FUZZ_CHECK(rtrs__proto_conn_rsp_decode(buf, sizeof(buf), &r2) == 0);
	/* the encoder sends an error it cannot carry (-32768) as -EIO */
	FUZZ_CHECK(r2.err == (r.err < -32767 ? -EIO : r.err));
	FUZZ_CHECK(r2.queue_depth == r.queue_depth &&
		   r2.max_io_size == r.max_io_size &&
		   r2.max_hdr_size == r.max_hdr_size && r2.flags == r.flags &&
		   r2.path_id == r.path_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	/* the decoders get exactly the bytes after the selector: ASan sees
	 * a read past them */
	if (data[0] & 1)
		conn_rsp(data + 1, size - 1);
	else
		conn_req(data + 1, size - 1);
	return 0;
}
