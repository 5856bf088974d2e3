// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Unit tests of src/proto: every decoder against valid, truncated and
 * hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/wire.h"
#include "util/util.h"

static struct rtrs_geom geom_512_128k(void)
{
	struct rtrs_geom g;

	assert_int_equal(rtrs__proto_geom(&g, 512, 128 << 10, 4096), 0);
	return g;
}

static void test_bits(void **st)
{
	(void)st;
	assert_int_equal(rtrs__proto_bits(0), 0);
	assert_int_equal(rtrs__proto_bits(1), 0);
	assert_int_equal(rtrs__proto_bits(2), 1);
	assert_int_equal(rtrs__proto_bits(512), 9);
	assert_int_equal(rtrs__proto_bits(513), 10);
	assert_int_equal(rtrs__proto_bits(135168), 18);
}

static void test_geom(void **st)
{
	struct rtrs_geom g;

	(void)st;
	g = geom_512_128k();
	assert_int_equal(g.chunk_size, (128 << 10) + 4096);
	assert_int_equal(g.mem_bits, 19);
	/* 65535 chunks need 16 bits, 128 KiB + 4 KiB need 18: > 28 */
	assert_int_equal(rtrs__proto_geom(&g, 65535, 128 << 10, 4096), -EINVAL);
	assert_int_equal(rtrs__proto_geom(&g, 0, 4096, 4096), -EINVAL);
	assert_int_equal(rtrs__proto_geom(&g, 8, 0, 4096), -EINVAL);
	assert_int_equal(rtrs__proto_geom(&g, 8, 4096, 8192), -EINVAL);
	assert_int_equal(rtrs__proto_geom(&g, 8, 4096, 16), -EINVAL);
	assert_int_equal(rtrs__proto_geom(&g, 1024, 1 << 17, 4096), 0);
}

static void test_imm_req(void **st)
{
	struct rtrs_geom g = geom_512_128k();
	uint32_t id, off, imm;

	(void)st;
	imm = rtrs__proto_io_req_imm(&g, 511, 70000);
	assert_int_equal(rtrs_imm_type(imm), RTRS_IMM_IO_REQ);
	assert_int_equal(rtrs__proto_io_req_decode(&g, rtrs_imm_payload(imm),
						   &id, &off), 0);
	assert_int_equal(id, 511);
	assert_int_equal(off, 70000);
	/* chunk id past the queue depth */
	assert_int_equal(rtrs__proto_io_req_decode(&g, 512u << g.mem_bits, &id,
						   &off), -EPROTO);
	/* offset past the chunk */
	assert_int_equal(rtrs__proto_io_req_decode(&g, g.chunk_size, &id, &off),
			 -EPROTO);
	assert_int_equal(rtrs__proto_io_req_decode(&g, RTRS_IMM_PAYL_MASK, &id,
						   &off), -EPROTO);
}

static void test_imm_rsp(void **st)
{
	uint32_t id, imm;
	int status;

	(void)st;
	imm = rtrs__proto_io_rsp_imm(17, -ENOSPC);
	assert_int_equal(rtrs_imm_type(imm), RTRS_IMM_IO_RSP);
	assert_int_equal(rtrs__proto_io_rsp_decode(rtrs_imm_payload(imm), 512, &id,
						   &status), 0);
	assert_int_equal(id, 17);
	assert_int_equal(status, -ENOSPC);
	/* out-of-range errno is sent as EIO */
	imm = rtrs__proto_io_rsp_imm(3, -100000);
	rtrs__proto_io_rsp_decode(rtrs_imm_payload(imm), 512, &id, &status);
	assert_int_equal(status, -EIO);
	/* msg id past the queue depth */
	imm = rtrs__proto_io_rsp_imm(600, 0);
	assert_int_equal(rtrs__proto_io_rsp_decode(rtrs_imm_payload(imm), 512, &id,
						   &status), -EPROTO);
}

static void test_split_provider(void **st)
{
	char prov[16];

	(void)st;
	assert_string_equal(rtrs__split_provider("verbs://10.0.0.1:7",
						 "tcp", prov, sizeof(prov)),
			    "10.0.0.1:7");
	assert_string_equal(prov, "verbs");
	assert_string_equal(rtrs__split_provider("[::1]:7", "tcp", prov,
						 sizeof(prov)), "[::1]:7");
	assert_string_equal(prov, "tcp");
	assert_string_equal(rtrs__split_provider("h:7", NULL, prov,
						 sizeof(prov)), "h:7");
	assert_string_equal(prov, "");
	assert_null(rtrs__split_provider("://h:7", "tcp", prov, sizeof(prov)));
	assert_null(rtrs__split_provider("averyveryverylongname://h:7", "tcp",
					 prov, sizeof(prov)));
}

static void test_conn_req(void **st)
{
	uint8_t buf[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_req r = { .cid = 2, .cid_num = 3, .recon_cnt = 7,
				   .first_conn = true, .fence = true }, d;

	(void)st;
	memset(r.sess_uuid, 0xaa, 16);
	memset(r.paths_uuid, 0xbb, 16);
	rtrs__proto_conn_req_encode(buf, &r);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[2], 0xbd);
	assert_int_equal(buf[3], 0x1b);
	assert_int_equal(rtrs__proto_conn_req_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.cid, 2);
	assert_int_equal(d.cid_num, 3);
	assert_int_equal(d.recon_cnt, 7);
	assert_true(d.first_conn);
	assert_true(d.fence);
	assert_memory_equal(d.sess_uuid, r.sess_uuid, 16);
	assert_memory_equal(d.paths_uuid, r.paths_uuid, 16);

	/* truncated before its last significant byte: refused; after it
	 * (the trailing reserved bytes cut by a CM that carries less) read
	 * as if the zeros were there */
	for (size_t n = 0; n < RTRS_CONN_REQ_MIN_LEN; n++)
		assert_int_equal(rtrs__proto_conn_req_decode(buf, n, &d), -EPROTO);
	for (size_t n = RTRS_CONN_REQ_MIN_LEN; n < sizeof(buf); n++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(rtrs__proto_conn_req_decode(buf, n, &d), 0);
		assert_true(d.fence);
		assert_memory_equal(d.paths_uuid, r.paths_uuid, 16);
	}
	assert_int_equal(rtrs__proto_conn_req_decode(NULL, 56, &d), -EPROTO);
	assert_false(d.has_path_no);    /* not sent: a kernel-style client */

	/* the client's path number (ours): at 46, flagged in bit 2 */
	r.has_path_no = true;
	r.path_no = 0x1234;
	rtrs__proto_conn_req_encode(buf, &r);
	assert_int_equal(buf[44] & RTRS_CONN_PATH_NO_F, RTRS_CONN_PATH_NO_F);
	assert_int_equal(buf[46], 0x34);
	assert_int_equal(buf[47], 0x12);
	assert_int_equal(rtrs__proto_conn_req_decode(buf, sizeof(buf), &d), 0);
	assert_true(d.has_path_no);
	assert_int_equal(d.path_no, 0x1234);
	/* path 0: its zero bytes may be cut by the CM, it is still path 0 */
	r.path_no = 0;
	rtrs__proto_conn_req_encode(buf, &r);
	for (size_t n = RTRS_CONN_REQ_MIN_LEN; n <= sizeof(buf); n++) {
		memset(&d, 0xff, sizeof(d));
		assert_int_equal(rtrs__proto_conn_req_decode(buf, n, &d), 0);
		assert_true(d.has_path_no);
		assert_int_equal(d.path_no, 0);
	}
	r.has_path_no = false;
	/* batches (bit 5) and big frames (bit 6) only with frames (bit 4),
	 * both ways, each on its own */
	r.frames = true;
	r.batch = true;
	rtrs__proto_conn_req_encode(buf, &r);
	assert_int_equal(buf[44] & (RTRS_CONN_FRAMES_F | RTRS_CONN_BATCH_F |
				    RTRS_CONN_BIG_F),
			 RTRS_CONN_FRAMES_F | RTRS_CONN_BATCH_F);
	assert_int_equal(rtrs__proto_conn_req_decode(buf, sizeof(buf), &d), 0);
	assert_true(d.frames && d.batch && !d.big);
	r.batch = false;
	r.big = true;
	rtrs__proto_conn_req_encode(buf, &r);
	assert_int_equal(buf[44] & (RTRS_CONN_FRAMES_F | RTRS_CONN_BATCH_F |
				    RTRS_CONN_BIG_F),
			 RTRS_CONN_FRAMES_F | RTRS_CONN_BIG_F);
	assert_int_equal(rtrs__proto_conn_req_decode(buf, sizeof(buf), &d), 0);
	assert_true(d.frames && !d.batch && d.big);
	r.batch = true;
	r.frames = false;
	rtrs__proto_conn_req_encode(buf, &r);
	assert_int_equal(buf[44] & (RTRS_CONN_BATCH_F | RTRS_CONN_BIG_F), 0);
	/* a peer that says BATCH and BIG without FRAMES */
	buf[44] |= RTRS_CONN_BATCH_F | RTRS_CONN_BIG_F;
	assert_int_equal(rtrs__proto_conn_req_decode(buf, sizeof(buf), &d), 0);
	assert_false(d.batch || d.big);
	r.batch = false;
	r.big = false;
	rtrs__proto_conn_req_encode(buf, &r);
	/* hostile fields */
	buf[0] = 1;
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d), -EPROTO);
	buf[0] = 0;
	buf[2] ^= 1;
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d), -EPROTO);
	buf[2] ^= 1;
	buf[5] = 3; /* major 3 */
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d),
			 -EPROTONOSUPPORT);
	buf[5] = 2;
	buf[6] = 3; /* cid == cid_num */
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d), -EPROTO);
	buf[6] = 0;
	buf[8] = 0xff;
	buf[9] = 0xff; /* cid_num 65535 > 4096 */
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d), -EPROTO);
	buf[8] = 1;
	buf[9] = 0; /* cid_num 1: no IO connection */
	assert_int_equal(rtrs__proto_conn_req_decode(buf, 56, &d), -EPROTO);
}

static void test_conn_rsp(void **st)
{
	uint8_t buf[RTRS_CONN_PRIV_LEN];
	struct rtrs_conn_rsp r = { .queue_depth = 512, .max_io_size = 128 << 10,
				   .max_hdr_size = 4096,
				   .flags = RTRS_MSG_NEW_RKEY_F | RTRS_MSG_FENCE_F,
				   .path_id = 0xabcdef01 }, d;

	(void)st;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, sizeof(buf), &d), 0);
	assert_int_equal(d.err, 0);
	assert_int_equal(d.queue_depth, 512);
	assert_int_equal(d.max_io_size, 128 << 10);
	assert_int_equal(d.flags, RTRS_MSG_NEW_RKEY_F | RTRS_MSG_FENCE_F);
	assert_int_equal(d.path_id, 0xabcdef01);
	for (size_t n = 0; n < RTRS_CONN_RSP_MIN_LEN; n++)
		assert_int_equal(rtrs__proto_conn_rsp_decode(buf, n, &d), -EPROTO);
	for (size_t n = RTRS_CONN_RSP_MIN_LEN; n < sizeof(buf); n++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(rtrs__proto_conn_rsp_decode(buf, n, &d), 0);
		assert_int_equal(d.path_id, 0xabcdef01);
	}
	/* a reject carries a negative errno */
	r.err = -EPERM;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), 0);
	assert_int_equal(d.err, -EPERM);
	/* a positive errno is malformed */
	buf[4] = 5;
	buf[5] = 0;
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), -EPROTO);
	/* BIG (bit 5) is known; unknown flags, and a geometry that does
	 * not fit the immediate */
	r.err = 0;
	r.flags = RTRS_MSG_FRAMES_F | RTRS_MSG_BIG_F;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), 0);
	assert_int_equal(d.flags, RTRS_MSG_FRAMES_F | RTRS_MSG_BIG_F);
	r.flags = 0x80;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), -EPROTO);
	r.flags = 0;
	r.queue_depth = 65535;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), -EPROTO);
	r.queue_depth = 0;
	rtrs__proto_conn_rsp_encode(buf, &r);
	assert_int_equal(rtrs__proto_conn_rsp_decode(buf, 56, &d), -EPROTO);
}

static void test_names(void **st)
{
	char longname[300];

	(void)st;
	assert_int_equal(rtrs__proto_name_valid("sess-1_a"), 0);
	assert_int_equal(rtrs__proto_name_valid(""), -EINVAL);
	assert_int_equal(rtrs__proto_name_valid(NULL), -EINVAL);
	assert_int_equal(rtrs__proto_name_valid("a/b"), -EINVAL);
	assert_int_equal(rtrs__proto_name_valid("a.b"), -EINVAL);
	assert_int_equal(rtrs__proto_name_valid("a b"), -EINVAL);
	assert_int_equal(rtrs__proto_name_valid("a\nb"), -EINVAL);
	memset(longname, 'x', sizeof(longname));
	longname[254] = 0;
	assert_int_equal(rtrs__proto_name_valid(longname), 0);
	longname[254] = 'x';
	longname[255] = 0;
	assert_int_equal(rtrs__proto_name_valid(longname), -EINVAL);
}

static void test_info_req(void **st)
{
	uint8_t buf[RTRS_INFO_REQ_LEN];
	char name[RTRS_PROTO_NAME_LEN];

	(void)st;
	rtrs__proto_info_req_encode(buf, "blk0");
	assert_int_equal(rtrs__proto_info_req_decode(buf, sizeof(buf), name), 0);
	assert_string_equal(name, "blk0");
	assert_int_equal(rtrs__proto_info_req_decode(buf, sizeof(buf) - 1, name),
			 -EPROTO);
	/* not NUL-terminated */
	memset(buf + 2, 'a', RTRS_PROTO_NAME_LEN);
	assert_int_equal(rtrs__proto_info_req_decode(buf, sizeof(buf), name),
			 -EPROTO);
	/* bad characters */
	rtrs__proto_info_req_encode(buf, "../x");
	assert_int_equal(rtrs__proto_info_req_decode(buf, sizeof(buf), name),
			 -EINVAL);
	/* wrong type */
	rtrs__proto_info_req_encode(buf, "ok");
	buf[0] = RTRS_MSG_INFO_RSP;
	assert_int_equal(rtrs__proto_info_req_decode(buf, sizeof(buf), name),
			 -EPROTO);
}

struct seen {
	unsigned n;
	uint64_t addr[1024];
	uint32_t key[1024];
};

static void collect(void *arg, uint32_t chunk, uint64_t addr, uint32_t key)
{
	struct seen *s = arg;

	assert_int_equal(chunk, s->n);
	s->addr[s->n] = addr;
	s->key[s->n] = key;
	s->n++;
}

static void test_info_rsp(void **st)
{
	struct rtrs_geom g;
	struct rtrs_sg_desc d[8];
	static uint8_t buf[RTRS_INFO_RSP_LEN(8)];
	struct seen s;
	size_t len;

	(void)st;
	assert_int_equal(rtrs__proto_geom(&g, 8, 4096, 4096), 0);
	for (int i = 0; i < 8; i++) {
		d[i].addr = 1000000 + (uint64_t)i * g.chunk_size;
		d[i].key = 100 + (uint32_t)i;
		d[i].len = g.chunk_size;
	}
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 8);
	assert_int_equal(len, RTRS_INFO_RSP_LEN(8));
	memset(&s, 0, sizeof(s));
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s), 0);
	assert_int_equal(s.n, 8);
	assert_int_equal(s.key[7], 107);
	/* too small a buffer to encode */
	assert_int_equal(rtrs__proto_info_rsp_encode(buf, len - 1, d, 8), 0);
	/* truncated: nothing is reported */
	for (size_t n = 0; n < len; n++) {
		memset(&s, 0, sizeof(s));
		assert_int_equal(rtrs__proto_info_rsp_decode(buf, n, &g, collect,
							     &s), -EPROTO);
		assert_int_equal(s.n, 0);
	}
	/* one descriptor over the whole pool */
	d[0].len = g.chunk_size * 8;
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s), 0);
	assert_int_equal(s.n, 8);
	assert_int_equal(s.addr[3], 1000000 + 3ull * g.chunk_size);
	/* hostile lengths: not a chunk multiple, short total, zero */
	d[0].len = g.chunk_size * 8 - 1;
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 1);
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPROTO);
	d[0].len = g.chunk_size * 4;
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 1);
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPROTO);
	d[0].len = 0;
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 1);
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPROTO);
	/* sg_cnt that does not divide the queue depth */
	for (int i = 0; i < 3; i++)
		d[i].len = g.chunk_size;
	len = rtrs__proto_info_rsp_encode(buf, sizeof(buf), d, 3);
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPROTO);
	/* a refusal carries the server's errno */
	len = rtrs__proto_info_rsp_refuse_encode(buf, -EPERM);
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPERM);
	/* a refusal without an errno is malformed */
	len = rtrs__proto_info_rsp_refuse_encode(buf, -EPERM);
	buf[4] = buf[5] = 0;
	assert_int_equal(rtrs__proto_info_rsp_decode(buf, len, &g, collect, &s),
			 -EPROTO);
}

static void test_rkey_rsp(void **st)
{
	uint8_t buf[8];
	uint16_t id;
	uint32_t key;

	(void)st;
	rtrs__proto_rkey_rsp_encode(buf, 7, 0xdeadbeef);
	assert_int_equal(rtrs__proto_rkey_rsp_decode(buf, 8, 512, &id, &key), 0);
	assert_int_equal(id, 7);
	assert_int_equal(key, 0xdeadbeef);
	for (size_t n = 0; n < 8; n++)
		assert_int_equal(rtrs__proto_rkey_rsp_decode(buf, n, 512, &id, &key),
				 -EPROTO);
	assert_int_equal(rtrs__proto_rkey_rsp_decode(buf, 8, 7, &id, &key), -EPROTO);
	buf[0] = RTRS_MSG_WRITE;
	assert_int_equal(rtrs__proto_rkey_rsp_decode(buf, 8, 512, &id, &key),
			 -EPROTO);
}

/* A chunk with a message at @off written by the client encoders. */
static uint8_t *make_chunk(const struct rtrs_geom *g)
{
	uint8_t *c = calloc(1, g->chunk_size);

	assert_non_null(c);
	return c;
}

static void test_io_write(void **st)
{
	struct rtrs_geom g = geom_512_128k();
	uint8_t *c = make_chunk(&g);
	struct rtrs_io_msg m;
	uint32_t off;

	(void)st;
	/* 4096 data + 40 header */
	off = 4096 + 40;
	rtrs__proto_write_msg_encode(c + off, 40);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), 0);
	assert_int_equal(m.type, RTRS_MSG_WRITE);
	assert_int_equal(m.data_len, 4096);
	assert_int_equal(m.usr_off, 4096);
	assert_int_equal(m.usr_len, 40);
	/* header only */
	rtrs__proto_write_msg_encode(c + 40, 40);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, 40, false, &m), 0);
	assert_int_equal(m.data_len, 0);
	/* usr_len larger than the offset: would underflow data_len */
	rtrs__proto_write_msg_encode(c + 10, 40);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, 10, false, &m), -EPROTO);
	/* message running past the chunk end */
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, g.chunk_size - 2, false, &m),
			 -EPROTO);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, g.chunk_size, false, &m),
			 -EPROTO);
	/* data larger than max_io: offset in the header area, tiny header */
	off = g.max_io_size + 100;
	rtrs__proto_write_msg_encode(c + off, 10);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EMSGSIZE);
	/* unknown type */
	c[40] = 9;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, 40, false, &m), -EPROTO);
	/* header area larger than max_hdr_size */
	off = 5000;
	rtrs__proto_write_msg_encode(c + off, 4500);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	free(c);
}

static void test_io_read(void **st)
{
	struct rtrs_geom g = geom_512_128k();
	uint8_t *c = make_chunk(&g);
	struct rtrs_sg_desc d[3] = {
		{ .addr = 0, .key = 1, .len = 1000 },
		{ .addr = 4096, .key = 2, .len = 3000 },
		{ .addr = 9999, .key = 3, .len = 96 },
	}, out;
	struct rtrs_io_msg m;
	uint32_t off = 4096 + 16;

	(void)st;
	rtrs__proto_read_msg_encode(c + off, 16, d, 3);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), 0);
	assert_int_equal(m.type, RTRS_MSG_READ);
	assert_int_equal(m.sg_cnt, 3);
	assert_int_equal(m.data_len, 4096);
	assert_int_equal(rtrs__proto_read_desc(c, &g, &m, 1, &out), 0);
	assert_int_equal(out.key, 2);
	assert_int_equal(out.len, 3000);
	assert_int_equal(rtrs__proto_read_desc(c, &g, &m, 3, &out), -EPROTO);
	assert_int_equal(m.flags, 0);
	/* the kernel's client asks for its key to be invalidated: kept for
	 * the server's answer (SEND_WITH_INV), docs/protocol.md 6.1 */
	c[off + 4] = RTRS_MSG_NEED_INVAL_F;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), 0);
	assert_int_equal(m.flags, RTRS_MSG_NEED_INVAL_F);
	/* descriptor lengths that do not add up to the data area */
	d[2].len = 97;
	rtrs__proto_read_msg_encode(c + off, 16, d, 3);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	/* a zero-length and an oversized descriptor */
	d[2].len = 0;
	rtrs__proto_read_msg_encode(c + off, 16, d, 3);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	d[2].len = g.max_io_size + 1;
	rtrs__proto_read_msg_encode(c + off, 16, d, 3);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	/* too many descriptors */
	rtrs__proto_read_msg_encode(c + off, 16, d, 1);
	c[off + 6] = 200;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	/* descriptors running past the chunk end (the data area itself is
	 * legal: exactly max_io_size) */
	off = g.chunk_size - 20;
	rtrs__proto_read_msg_encode(c + off, (uint16_t)(off - g.max_io_size), d, 0);
	c[off + 6] = 2;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	/* unknown flags */
	off = 100;
	rtrs__proto_read_msg_encode(c + off, 100, d, 0);
	c[off + 4] = 0x80;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), -EPROTO);
	free(c);
}

/* Fence records: decoded only when negotiated, every field checked. */
static void test_io_fence(void **st)
{
	struct rtrs_geom g = geom_512_128k();
	uint8_t *c = make_chunk(&g);
	struct rtrs_fence f = { .seq = 7, .fence_path = 3,
				.flags = RTRS_FENCE_RETRY_F | RTRS_FENCE_PATH_F };
	struct rtrs_sg_desc d = { .addr = 0, .key = 1, .len = 512 };
	struct rtrs_io_msg m;
	uint32_t off = 4096 + 40;
	size_t n;

	(void)st;
	n = rtrs__proto_write_msg_encode(c + off, 40);
	assert_int_equal(rtrs__proto_fence_encode(c + off + n, &f), RTRS_FENCE_LEN);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), 0);
	assert_int_equal(m.seq, 7);
	assert_int_equal(m.fence_path, 3);
	assert_int_equal(m.fence_flags, RTRS_FENCE_RETRY_F | RTRS_FENCE_PATH_F);
	/* the same bytes without negotiation: no fence fields */
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), 0);
	assert_int_equal(m.seq, 0);
	/* seq 0, unknown flags, a path without its flag, reserved bits */
	f.seq = 0;
	rtrs__proto_fence_encode(c + off + n, &f);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), -EPROTO);
	f.seq = 1;
	f.flags = 0x80;
	rtrs__proto_fence_encode(c + off + n, &f);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), -EPROTO);
	f.flags = RTRS_FENCE_RETRY_F;
	rtrs__proto_fence_encode(c + off + n, &f);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), -EPROTO);
	f.fence_path = 0;
	rtrs__proto_fence_encode(c + off + n, &f);
	c[off + n + 10] = 1;
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), -EPROTO);
	/* after READ descriptors */
	n = rtrs__proto_read_msg_encode(c + 512 + 8, 8, &d, 1);
	f.seq = 0xffffffffu;
	rtrs__proto_fence_encode(c + 512 + 8 + n, &f);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, 512 + 8, true, &m), 0);
	assert_int_equal(m.seq, 0xffffffffu);
	assert_int_equal(m.sg_cnt, 1);
	/* a record that would run past the chunk */
	off = g.chunk_size - RTRS_WRITE_MSG_LEN - 4;
	rtrs__proto_write_msg_encode(c + off, (uint16_t)(off - g.max_io_size));
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, false, &m), 0);
	assert_int_equal(rtrs__proto_io_msg_decode(c, &g, off, true, &m), -EPROTO);
	free(c);
}

/* Random bytes never crash a decoder, and accepted messages stay inside. */
static void test_fuzz_io(void **st)
{
	struct rtrs_geom g;
	uint8_t *c;
	uint64_t x = 88172645463325252ull;

	(void)st;
	assert_int_equal(rtrs__proto_geom(&g, 4, 4096, 4096), 0);
	c = make_chunk(&g);
	for (int it = 0; it < 20000; it++) {
		struct rtrs_io_msg m;
		uint32_t off;

		for (uint32_t i = 0; i < 64; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			c[(x >> 8) % g.chunk_size] = (uint8_t)x;
		}
		off = (uint32_t)(x % (g.chunk_size + 16));
		if (rtrs__proto_io_msg_decode(c, &g, off, it & 1, &m))
			continue;
		assert_true(m.data_len <= g.max_io_size);
		assert_true(m.usr_off + m.usr_len <= g.chunk_size);
		if (m.type == RTRS_MSG_READ) {
			assert_true(m.desc_off + 16u * m.sg_cnt <= g.chunk_size);
			for (unsigned i = 0; i < m.sg_cnt; i++) {
				struct rtrs_sg_desc d;

				assert_int_equal(rtrs__proto_read_desc(c, &g, &m,
								       i, &d), 0);
			}
		}
	}
	free(c);
}

/* The runnable count that gates RTRS_POLL_US (src/fabric/spin.c). */
/* Software-RMA frames (docs/protocol.md 2.6): the header's bytes as the
 * spec lays them out, and every rule the decoder enforces. */
static void test_frame(void **st)
{
	static const uint8_t spec[RTRS_FRAME_HDR_LEN + 4] = {
		0x53, 0x57, 2, 3,                       /* magic, RMA, IMM|LAST */
		0x04, 0x03, 0x02, 0x01,                 /* imm */
		0x08, 0x07, 0x06, 0x05,                 /* key */
		0x04, 0x00, 0x00, 0x00,                 /* len 4 */
		0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, /* off */
		0xaa, 0xbb, 0xcc, 0xdd,                 /* payload */
	};
	struct rtrs_frame f = { RTRS_FRAME_RMA,
				RTRS_FRAME_IMM | RTRS_FRAME_LAST,
				0x01020304, 0x05060708, 4,
				0x090a0b0c0d0e0f10ull }, g;
	uint8_t h[RTRS_FRAME_HDR_LEN + 4];

	(void)st;
	memcpy(h, spec, sizeof(h));
	memset(h, 0, RTRS_FRAME_HDR_LEN);
	rtrs__proto_frame_encode(h, &f);
	assert_memory_equal(h, spec, sizeof(h));
	memset(&g, 0, sizeof(g));
	assert_int_equal(rtrs__proto_frame_decode(spec, sizeof(spec), &g), 0);
	assert_int_equal(g.type, f.type);
	assert_int_equal(g.flags, f.flags);
	assert_int_equal(g.imm, f.imm);
	assert_int_equal(g.key, f.key);
	assert_int_equal(g.len, f.len);
	assert_true(g.off == f.off);
	/* the payload must lie within what arrived; a header alone is whole
	 * when len is 0 */
	assert_int_equal(rtrs__proto_frame_decode(spec, sizeof(spec) - 1, &g),
			 -EPROTO);
	assert_int_equal(rtrs__proto_frame_decode(spec, RTRS_FRAME_HDR_LEN - 1,
						  &g), -EPROTO);
	assert_int_equal(rtrs__proto_frame_decode(NULL, sizeof(spec), &g),
			 -EPROTO);
	f.len = 0;
	f.type = RTRS_FRAME_MSG;
	f.flags = RTRS_FRAME_LAST;
	rtrs__proto_frame_encode(h, &f);
	assert_int_equal(rtrs__proto_frame_decode(h, RTRS_FRAME_HDR_LEN, &g), 0);
	assert_int_equal(g.type, RTRS_FRAME_MSG);
	/* a length that would wrap a sum with the header's */
	f.len = UINT32_MAX;
	rtrs__proto_frame_encode(h, &f);
	assert_int_equal(rtrs__proto_frame_decode(h, sizeof(h), &g), -EPROTO);
	f.len = 0;
	/* magic, type, unknown flags, IMM without LAST */
	rtrs__proto_frame_encode(h, &f);
	h[1] ^= 1;
	assert_int_equal(rtrs__proto_frame_decode(h, sizeof(h), &g), -EPROTO);
	for (unsigned t = 0; t < 256; t++) {
		rtrs__proto_frame_encode(h, &f);
		h[2] = (uint8_t)t;
		assert_int_equal(rtrs__proto_frame_decode(h, sizeof(h), &g),
				 t == RTRS_FRAME_MSG || t == RTRS_FRAME_RMA ?
				 0 : -EPROTO);
	}
	for (unsigned fl = 0; fl < 256; fl++) {
		bool ok = !(fl & ~3u) && (!(fl & RTRS_FRAME_IMM) ||
					  (fl & RTRS_FRAME_LAST));

		rtrs__proto_frame_encode(h, &f);
		h[3] = (uint8_t)fl;
		assert_int_equal(rtrs__proto_frame_decode(h, sizeof(h), &g),
				 ok ? 0 : -EPROTO);
	}
}

static void test_loadavg(void **state)
{
	(void)state;
	assert_int_equal(rtrs__loadavg_running("0.65 1.90 2.26 1/81 7438\n"), 1);
	assert_int_equal(rtrs__loadavg_running("12.00 9.10 8.00 37/1204 99"), 37);
	assert_int_equal(rtrs__loadavg_running("0.00 0.00 0.00 0/5 1"), 0);
	assert_int_equal(rtrs__loadavg_running(""), -EINVAL);
	assert_int_equal(rtrs__loadavg_running("0.65 1.90 2.26"), -EINVAL);
	assert_int_equal(rtrs__loadavg_running("0.65 1.90 2.26 /81 1"), -EINVAL);
	assert_int_equal(rtrs__loadavg_running("0.65 1.90 2.26 3 1"), -EINVAL);
	assert_int_equal(rtrs__loadavg_running("0.65 1.90 2.26 x/81"), -EINVAL);
	assert_int_equal(rtrs__loadavg_running("1 2 3 99999999999/2 1"), -EINVAL);
	assert_int_equal(rtrs__loadavg_running(NULL), -EINVAL);
}

static void test_cpu_max(void **state)
{
	(void)state;
	assert_int_equal(rtrs__cpu_max_cpus("max 100000\n"), 0);
	assert_int_equal(rtrs__cpu_max_cpus("max 100000"), 0);
	assert_int_equal(rtrs__cpu_max_cpus("100000 100000\n"), 1);
	assert_int_equal(rtrs__cpu_max_cpus("150000 100000\n"), 2);
	assert_int_equal(rtrs__cpu_max_cpus("50000 100000"), 1);
	assert_int_equal(rtrs__cpu_max_cpus("6400000 100000\n"), 64);
	assert_int_equal(rtrs__cpu_max_cpus(""), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("max"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("100000"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("100000 0"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("x 100000"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("100000 100000 7"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("1 99999999999"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus("99999999999999999 1"), -EINVAL);
	assert_int_equal(rtrs__cpu_max_cpus(NULL), -EINVAL);
	/* whatever the host, the process may use at least one CPU and no
	 * more than its affinity mask allows */
	assert_true(rtrs__usable_cpus() >= 1);
	assert_true(rtrs__usable_cpus() <= rtrs__affinity_cpus());
	assert_true(rtrs__affinity_cpus() <= rtrs__ncpus());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bits),
		cmocka_unit_test(test_geom),
		cmocka_unit_test(test_imm_req),
		cmocka_unit_test(test_imm_rsp),
		cmocka_unit_test(test_split_provider),
		cmocka_unit_test(test_conn_req),
		cmocka_unit_test(test_conn_rsp),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_info_req),
		cmocka_unit_test(test_info_rsp),
		cmocka_unit_test(test_rkey_rsp),
		cmocka_unit_test(test_io_write),
		cmocka_unit_test(test_io_read),
		cmocka_unit_test(test_io_fence),
		cmocka_unit_test(test_fuzz_io),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_loadavg),
		cmocka_unit_test(test_cpu_max),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
