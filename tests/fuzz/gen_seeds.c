// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * Writes the seed corpus of the fuzz harnesses: valid messages made by the
 * encoders, in each harness's input format, and a few edge cases.
 *   fuzz_seeds DIR    writes DIR/<harness>/<name>
 * tests/fuzz/corpus is its output (docs/fuzzing.md).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/wire.h"
#include "rnbd/proto.h"

static const char *dir;

struct seed {
	uint8_t b[70000];
	size_t n;
};

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > sizeof(s->b)) {
		fprintf(stderr, "seed too large\n");
		exit(1);
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void u8(struct seed *s, uint8_t v)
{
	put(s, &v, 1);
}

static void u16(struct seed *s, uint16_t v)
{
	u8(s, (uint8_t)v);
	u8(s, (uint8_t)(v >> 8));
}

static void u32(struct seed *s, uint32_t v)
{
	u16(s, (uint16_t)v);
	u16(s, (uint16_t)(v >> 16));
}

static void save(const char *harness, const char *name, const struct seed *s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, harness);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, harness, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void conn(void)
{
	struct rtrs_conn_req rq = { .cid = 1, .cid_num = 3, .recon_cnt = 7,
				    .first_conn = true, .fence = true,
				    .has_path_no = true, .path_no = 0x102 };
	struct rtrs_conn_rsp rs = { .queue_depth = 512, .max_io_size = 128 << 10,
				    .max_hdr_size = 4096,
				    .flags = RTRS_MSG_NEW_RKEY_F | RTRS_MSG_FENCE_F,
				    .path_id = 9 };
	uint8_t b[RTRS_CONN_PRIV_LEN];
	struct seed s;

	for (int i = 0; i < 16; i++) {
		rq.sess_uuid[i] = (uint8_t)(0x10 + i);
		rq.paths_uuid[i] = (uint8_t)(0x80 + i);
	}
	rtrs__proto_conn_req_encode(b, &rq);
	s.n = 0; u8(&s, 0); put(&s, b, sizeof(b));
	save("fuzz_conn", "req_fence_pathno", &s);
	s.n = 0; u8(&s, 0); put(&s, b, 55);     /* verbs: 55 bytes */
	save("fuzz_conn", "req_55", &s);
	rq.has_path_no = false;
	rq.fence = false;
	rtrs__proto_conn_req_encode(b, &rq);
	s.n = 0; u8(&s, 0); put(&s, b, RTRS_CONN_REQ_MIN_LEN);
	save("fuzz_conn", "req_min", &s);
	b[5] = 3;                               /* version 3.x */
	s.n = 0; u8(&s, 0); put(&s, b, sizeof(b));
	save("fuzz_conn", "req_v3", &s);

	rtrs__proto_conn_rsp_encode(b, &rs);
	s.n = 0; u8(&s, 1); put(&s, b, sizeof(b));
	save("fuzz_conn", "rsp_ok", &s);
	s.n = 0; u8(&s, 1); put(&s, b, RTRS_CONN_RSP_MIN_LEN);
	save("fuzz_conn", "rsp_min", &s);
	rs.err = -ECONNREFUSED;
	rtrs__proto_conn_rsp_encode(b, &rs);
	s.n = 0; u8(&s, 1); put(&s, b, sizeof(b));
	save("fuzz_conn", "rsp_refused", &s);
}

static void info(void)
{
	uint8_t b[RTRS_INFO_REQ_LEN];
	struct rtrs_sg_desc d[4];
	uint8_t r[RTRS_INFO_RSP_LEN(4)];
	struct seed s;

	rtrs__proto_info_req_encode(b, "sess-1");
	s.n = 0; u8(&s, 0); put(&s, b, sizeof(b));
	save("fuzz_info", "req", &s);
	b[3] = '.';
	s.n = 0; u8(&s, 0); put(&s, b, sizeof(b));
	save("fuzz_info", "req_dot", &s);
	memset(b + 2, 'a', RTRS_PROTO_NAME_LEN);
	s.n = 0; u8(&s, 0); put(&s, b, sizeof(b));
	save("fuzz_info", "req_no_nul", &s);

	/* qd 4, max_io 4096, max_hdr 4096: chunks of 8192 */
	for (int i = 0; i < 4; i++) {
		d[i].addr = 0x10000 + 8192u * i;
		d[i].key = 0x1000u + i;
		d[i].len = 8192;
	}
	s.n = 0; u8(&s, 1); u16(&s, 4); u32(&s, 4096); u16(&s, 4096);
	put(&s, r, rtrs__proto_info_rsp_encode(r, sizeof(r), d, 4));
	save("fuzz_info", "rsp_4", &s);
	d[0].len = 4 * 8192;
	s.n = 0; u8(&s, 1); u16(&s, 4); u32(&s, 4096); u16(&s, 4096);
	put(&s, r, rtrs__proto_info_rsp_encode(r, sizeof(r), d, 1));
	save("fuzz_info", "rsp_1", &s);
	d[0].len = 2 * 8192;
	d[1].len = 2 * 8192;
	s.n = 0; u8(&s, 1); u16(&s, 4); u32(&s, 4096); u16(&s, 4096);
	put(&s, r, rtrs__proto_info_rsp_encode(r, sizeof(r), d, 2));
	save("fuzz_info", "rsp_2", &s);
	s.n = 0; u8(&s, 1); u16(&s, 4); u32(&s, 4096); u16(&s, 4096);
	put(&s, r, rtrs__proto_info_rsp_refuse_encode(r, -EPERM));
	save("fuzz_info", "rsp_refused", &s);

	rtrs__proto_rkey_rsp_encode(r, 3, 0xabcdef01);
	s.n = 0; u8(&s, 2); u16(&s, 4); put(&s, r, RTRS_RKEY_RSP_LEN);
	save("fuzz_info", "rkey", &s);

	{
		struct rtrs_geom g;

		rtrs__proto_geom(&g, 512, 128 << 10, 4096);
		s.n = 0; u8(&s, 3); u16(&s, 512); u32(&s, 128 << 10);
		u16(&s, 4096);
		u32(&s, rtrs__proto_io_req_imm(&g, 511, 100));
		save("fuzz_info", "imm_req", &s);
		s.n = 0; u8(&s, 3); u16(&s, 512); u32(&s, 128 << 10);
		u16(&s, 4096);
		u32(&s, rtrs__proto_io_rsp_imm(17, -ENOSPC));
		save("fuzz_info", "imm_rsp", &s);
	}

	/* section 2.7: auth_req, auth_rsp (a proof, a refusal), the info
	 * request with its proof, an identity */
	{
		uint8_t n[RTRS_AUTH_NONCE_LEN], pr[RTRS_AUTH_PROOF_LEN];
		uint8_t a[RTRS_INFO_REQ_AUTH_LEN];

		for (int i = 0; i < RTRS_AUTH_NONCE_LEN; i++) {
			n[i] = (uint8_t)(0x30 + i);
			pr[i] = (uint8_t)(0x90 + i);
		}
		rtrs__proto_auth_req_encode(a, n, "alice");
		s.n = 0; u8(&s, 4); put(&s, a, RTRS_AUTH_REQ_LEN);
		save("fuzz_info", "auth_req", &s);
		s.n = 0; u8(&s, 5);
		put(&s, a, rtrs__proto_auth_rsp_encode(a, 0, n, pr));
		save("fuzz_info", "auth_rsp", &s);
		s.n = 0; u8(&s, 5);
		put(&s, a, rtrs__proto_auth_rsp_encode(a, -EACCES, NULL, NULL));
		save("fuzz_info", "auth_rsp_refused", &s);
		rtrs__proto_info_req_encode(a, "sess-1");
		memcpy(a + RTRS_INFO_REQ_LEN, pr, sizeof(pr));
		s.n = 0; u8(&s, 6); put(&s, a, sizeof(a));
		save("fuzz_info", "req_proof", &s);
		s.n = 0; u8(&s, 7); put(&s, "alice@host", 10);
		save("fuzz_info", "identity", &s);
	}
}

/* fuzz_io: geometry qd 8, max_io 4096, max_hdr 512 (chunk 4608) */
static void io_hdr(struct seed *s, uint32_t off, int fenced, uint16_t pre)
{
	s->n = 0;
	u16(s, 8); u32(s, 4096); u16(s, 512);
	u32(s, off); u8(s, (uint8_t)fenced); u16(s, pre);
}

static void io(void)
{
	struct rtrs_fence f = { .seq = 5, .fence_path = 2,
				.flags = RTRS_FENCE_RETRY_F | RTRS_FENCE_PATH_F };
	struct rtrs_sg_desc d[2] = { { 0x1000, 0x77, 1024 }, { 0x9000, 0x78, 3072 } };
	uint8_t m[RTRS_READ_MSG_LEN(2) + RTRS_FENCE_LEN];
	uint8_t usr[16] = "user header 0123";
	struct seed s;
	size_t k;

	/* WRITE of 4096 data bytes, 16 header bytes */
	io_hdr(&s, 4096 + 16, 0, 16);
	put(&s, usr, 16);
	put(&s, m, rtrs__proto_write_msg_encode(m, 16));
	save("fuzz_io", "write", &s);
	io_hdr(&s, 4096 + 16, 1, 16);
	put(&s, usr, 16);
	k = rtrs__proto_write_msg_encode(m, 16);
	put(&s, m, k + rtrs__proto_fence_encode(m + k, &f));
	save("fuzz_io", "write_fenced", &s);
	/* READ into 1024 + 3072 bytes */
	io_hdr(&s, 4096 + 16, 0, 16);
	put(&s, usr, 16);
	put(&s, m, rtrs__proto_read_msg_encode(m, 16, d, 2));
	save("fuzz_io", "read", &s);
	io_hdr(&s, 4096 + 16, 1, 16);
	put(&s, usr, 16);
	k = rtrs__proto_read_msg_encode(m, 16, d, 2);
	put(&s, m, k + rtrs__proto_fence_encode(m + k, &f));
	save("fuzz_io", "read_fenced", &s);
	/* no data, no user header: the message at offset 0 */
	io_hdr(&s, 0, 0, 0);
	put(&s, m, rtrs__proto_write_msg_encode(m, 0));
	save("fuzz_io", "write_empty", &s);
	/* a message at the very end of the chunk */
	io_hdr(&s, 4608 - 4, 0, 0);
	put(&s, m, rtrs__proto_write_msg_encode(m, 0));
	save("fuzz_io", "write_at_end", &s);
}

static void rnbd(void)
{
	uint8_t b[512];
	struct seed s;
	struct rnbd_open_rsp r = { .device_id = 3, .nsectors = 1 << 21,
				   .max_hw_sectors = 256,
				   .max_discard_sectors = 1024,
				   .discard_granularity = 4096,
				   .physical_block_size = 4096,
				   .logical_block_size = 512, .max_segments = 64,
				   .cache_policy = RNBD_CACHE_FUA };
	struct rnbd_io io = { .device_id = 3, .sector = 2048,
			      .rw = RNBD_OP_WRITE_ZEROES | RNBD_F_NOUNMAP |
				    RNBD_F_FUA,
			      .bi_size = 65536, .prio = 4 };

	s.n = 0; put(&s, b, rnbd_proto_sess_info_encode(b, RNBD_MSG_SESS_INFO, 2));
	save("fuzz_rnbd", "sess_info", &s);
	s.n = 0; put(&s, b, rnbd_proto_sess_info_encode(b, RNBD_MSG_SESS_INFO_RSP, 2));
	save("fuzz_rnbd", "sess_info_rsp", &s);
	s.n = 0; put(&s, b, (size_t)rnbd_proto_open_encode(b, 1, "disk0"));
	save("fuzz_rnbd", "open", &s);
	s.n = 0; put(&s, b, rnbd_proto_open_rsp_encode(b, &r));
	save("fuzz_rnbd", "open_rsp", &s);
	s.n = 0; put(&s, b, rnbd_proto_close_encode(b, 3));
	save("fuzz_rnbd", "close", &s);
	s.n = 0; put(&s, b, rnbd_proto_io_encode(b, &io));
	save("fuzz_rnbd", "io_write_zeroes", &s);
	io.rw = RNBD_OP_READ;
	s.n = 0; put(&s, b, rnbd_proto_io_encode(b, &io));
	save("fuzz_rnbd", "io_read", &s);
	s.n = 0; put(&s, b, rnbd_proto_list_encode(b));
	save("fuzz_rnbd", "list", &s);
	rnbd_proto_list_rsp_init(b);
	rnbd_proto_list_rsp_add(b, sizeof(b), "disk0", RNBD_LIST_F_RO);
	rnbd_proto_list_rsp_add(b, sizeof(b), "dir-file.img", RNBD_LIST_F_DIR);
	s.n = 0; put(&s, b, RNBD_LIST_RSP_HDR + 5 + 2 + 12 + 2);
	save("fuzz_rnbd", "list_rsp", &s);
	rnbd_proto_list_rsp_init(b);
	s.n = 0; put(&s, b, RNBD_LIST_RSP_HDR);
	save("fuzz_rnbd", "list_rsp_empty", &s);
}

/* fuzz_srv: a session of two connections, the info exchange, requests,
 * answers, heartbeats and CLOSE (steps: see fuzz_srv.c) */
static void srv_io(struct seed *s, uint8_t ep, uint8_t chunk, uint8_t kind,
		   uint16_t dlen, uint8_t ulen, uint8_t seq, uint8_t policy)
{
	u8(s, 4); u8(s, ep); u8(s, chunk); u8(s, kind); u16(s, dlen);
	u8(s, ulen); u8(s, seq); u8(s, 0); u8(s, policy);
}

static void srv_session(struct seed *s, uint8_t cfg, bool fence)
{
	uint8_t f = fence ? 2 : 0;

	s->n = 0;
	u8(s, cfg); u8(s, 0);
	u8(s, 0); u8(s, 1 | f); u8(s, 0); u8(s, 0);     /* connect cid 0 */
	u8(s, 0); u8(s, f); u8(s, 0); u8(s, 1);         /* connect cid 1 */
	u8(s, 2); u8(s, 0); u8(s, 0);                   /* info request */
	/* WRITE of 512 bytes held by the application, answered */
	srv_io(s, 1, 0, fence ? 0x02 : 0, 512, 16, 1, 0);
	u8(s, 7); u8(s, 0); u8(s, 0); u16(s, 0);
	/* READ of 1024 into two descriptors, answered at once */
	srv_io(s, 1, 1, (fence ? 0x02 : 0) | 0x11, 1024, 8, 1, 1);
	/* READ held, answered from the application's buffer */
	srv_io(s, 1, 2, (fence ? 0x02 : 0) | 0x01, 2048, 0, 1, 0);
	u8(s, 7); u8(s, 0); u8(s, 1); u16(s, 100);
	/* a retry of the WRITE (fenced: answered from the store) */
	srv_io(s, 1, 0, fence ? 0x06 : 0, 512, 16, 1, 1);
	u8(s, 5); u8(s, 0xC0); u32(s, 0);              /* heartbeat */
	u8(s, 5); u8(s, 0xC8); u32(s, 0);              /* heartbeat ack */
	if (fence) {
		u8(s, 5); u8(s, 0xD0); u32(s, 0);      /* CLOSE */
	}
}

/* A session on a server with keys (cfg2 bit 1): both connections with
 * AUTH, auth_req as alice, the info request with the right proof (@how
 * 0x20), a wrong one (0) or none (0x10), then a WRITE. */
static void srv_auth_session(struct seed *s, uint8_t how, bool auth_req)
{
	s->n = 0;
	u8(s, 0x02); u8(s, 0x02);
	u8(s, 0); u8(s, 1 | 2); u8(s, 0x10); u8(s, 0);  /* connect cid 0 */
	u8(s, 0); u8(s, 2); u8(s, 0x10); u8(s, 1);      /* connect cid 1 */
	if (auth_req) {
		u8(s, 12); u8(s, 0);                    /* auth_req, alice */
		for (int i = 0; i < RTRS_AUTH_NONCE_LEN; i++)
			u8(s, (uint8_t)(0x30 + i));
	}
	u8(s, 13); u8(s, 0); u8(s, how);                /* info, proof */
	for (int i = 0; i < RTRS_AUTH_PROOF_LEN; i++)
		u8(s, (uint8_t)(0x60 + i));
	srv_io(s, 1, 0, 0x02, 512, 16, 1, 1);
	u8(s, 5); u8(s, 0xC0); u32(s, 0);              /* heartbeat */
}

static void srv(void)
{
	struct seed s;

	srv_auth_session(&s, 0x20, true);
	save("fuzz_srv", "auth_session", &s);
	srv_auth_session(&s, 0x00, true);
	save("fuzz_srv", "auth_bad_proof", &s);
	srv_auth_session(&s, 0x20, false);
	save("fuzz_srv", "auth_skipped", &s);

	/* qd 4; tcp-like (no local registrations, immediates without a
	 * receive), always_invalidate */
	srv_session(&s, 0x02 | 0x04, true);
	save("fuzz_srv", "session_fenced_inv", &s);
	srv_session(&s, 0x02, true);
	save("fuzz_srv", "session_fenced", &s);
	srv_session(&s, 0x02, false);
	save("fuzz_srv", "session_unfenced", &s);
	/* verbs-like: local registrations, immediates take a receive;
	 * lingering, with link_ev */
	srv_session(&s, 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40, true);
	save("fuzz_srv", "session_verbs", &s);
	/* iWARP-like: local registrations, room for the trailer */
	srv_session(&s, 0x02 | 0x08, true);
	save("fuzz_srv", "session_iwarp", &s);
	/* the send queue full while answering, then drained */
	srv_session(&s, 0x02, true);
	s.n -= 6;                       /* no CLOSE */
	u8(&s, 10); u8(&s, 0x81);
	srv_io(&s, 1, 3, 0x02, 64, 4, 1, 1);
	u8(&s, 10); u8(&s, 0x01);
	save("fuzz_srv", "session_tx_full", &s);
	/* a path cut while a request is held */
	srv_session(&s, 0x02 | 0x20, true);
	s.n -= 6;
	srv_io(&s, 1, 3, 0x02, 64, 4, 2, 0);
	u8(&s, 8); u8(&s, 0x41);        /* FAB_CM_SHUTDOWN on ep 1 */
	save("fuzz_srv", "session_cut", &s);
}

/* fuzz_frame: messages of frames as swrma.c sends them: a message in two
 * MSG frames, a READ's data batched with its answer, a header alone */
static void frame(void)
{
	uint8_t h[RTRS_FRAME_HDR_LEN], data[64];
	struct rtrs_frame f = { RTRS_FRAME_MSG, 0, 0, 0, 16, 0 };
	struct seed s = { .n = 0 };

	memset(data, 0x5a, sizeof(data));
	rtrs__proto_frame_encode(h, &f);
	put(&s, h, sizeof(h)); put(&s, data, 16);
	f.flags = RTRS_FRAME_LAST | RTRS_FRAME_IMM;
	f.imm = 0x10000002;
	f.off = 16;
	f.len = 8;
	rtrs__proto_frame_encode(h, &f);
	put(&s, h, sizeof(h)); put(&s, data, 8);
	save("fuzz_frame", "msg_two", &s);
	s.n = 0;
	f = (struct rtrs_frame){ RTRS_FRAME_RMA, RTRS_FRAME_LAST, 0, 0x1234,
				 64, 4096 };
	rtrs__proto_frame_encode(h, &f);
	put(&s, h, sizeof(h)); put(&s, data, 64);
	f = (struct rtrs_frame){ RTRS_FRAME_MSG,
				 RTRS_FRAME_LAST | RTRS_FRAME_IMM, 0x10000003,
				 0, 0, 0 };
	rtrs__proto_frame_encode(h, &f);
	put(&s, h, sizeof(h));
	save("fuzz_frame", "read_batch", &s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	mkdir(dir, 0755);
	conn();
	info();
	io();
	rnbd();
	srv();
	frame();
	return 0;
}
