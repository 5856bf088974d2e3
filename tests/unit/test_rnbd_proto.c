// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Unit tests of src/rnbd/proto: the kernel's byte layouts, and every
 * decoder against truncated, hostile and random input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rnbd/proto.h"

static void test_type(void **st)
{
	uint8_t b[8] = { 4, 0, 0, 0 };

	(void)st;
	assert_int_equal(rnbd_proto_type(b, 4), RNBD_MSG_IO);
	assert_int_equal(rnbd_proto_type(b, 3), -EPROTO);
	assert_int_equal(rnbd_proto_type(NULL, 4), -EPROTO);
	b[0] = 6;
	assert_int_equal(rnbd_proto_type(b, 4), -EPROTO);
	b[0] = 0;
	b[1] = 1;               /* type 256 */
	assert_int_equal(rnbd_proto_type(b, 4), -EPROTO);
}

static void test_sess_info(void **st)
{
	uint8_t b[RNBD_SESS_INFO_LEN];
	uint8_t ver = 0;

	(void)st;
	assert_int_equal(rnbd_proto_sess_info_encode(b, RNBD_MSG_SESS_INFO, 2),
			 36);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[4], 2);
	assert_int_equal(rnbd_proto_sess_info_decode(b, 36, RNBD_MSG_SESS_INFO,
						     &ver), 0);
	assert_int_equal(ver, 2);
	/* the response type is a different message */
	assert_int_equal(rnbd_proto_sess_info_decode(b, 36,
						     RNBD_MSG_SESS_INFO_RSP,
						     &ver), -EPROTO);
	assert_int_equal(rnbd_proto_sess_info_decode(b, 35, RNBD_MSG_SESS_INFO,
						     &ver), -EPROTO);
	b[20] = 1;              /* reserved */
	assert_int_equal(rnbd_proto_sess_info_decode(b, 36, RNBD_MSG_SESS_INFO,
						     &ver), -EPROTO);
	b[20] = 0;
	b[4] = 0;               /* version 0 */
	assert_int_equal(rnbd_proto_sess_info_decode(b, 36, RNBD_MSG_SESS_INFO,
						     &ver), -EPROTO);
	b[4] = 2;
	b[2] = 1;               /* header padding */
	assert_int_equal(rnbd_proto_sess_info_decode(b, 36, RNBD_MSG_SESS_INFO,
						     &ver), -EPROTO);
}

static void test_open(void **st)
{
	uint8_t b[RNBD_OPEN_LEN];
	char name[RNBD_NAME_MAX + 1], longname[300];
	uint8_t mode = 9;

	(void)st;
	assert_int_equal(rnbd_proto_open_encode(b, 1, "vol/a"), 264);
	assert_int_equal(b[0], 2);
	assert_int_equal(b[4], 1);
	assert_memory_equal(b + 6, "vol/a", 6);
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), 0);
	assert_int_equal(mode, 1);
	assert_string_equal(name, "vol/a");
	/* bad arguments to the encoder */
	assert_int_equal(rnbd_proto_open_encode(b, 3, "x"), -EINVAL);
	assert_int_equal(rnbd_proto_open_encode(b, 0, ""), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(rnbd_proto_open_encode(b, 0, longname), -EINVAL);
	longname[RNBD_NAME_MAX] = 0;
	assert_int_equal(rnbd_proto_open_encode(b, 0, longname), 264);
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), 0);
	assert_int_equal(strlen(name), RNBD_NAME_MAX);
	/* hostile: mode, no terminator, empty, a second name, resv, size */
	rnbd_proto_open_encode(b, 0, "x");
	b[4] = 3;
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	memset(b + 6, 'a', 255);
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	b[6] = 0;
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	b[100] = 'y';
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	b[5] = 1;
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	b[262] = 1;
	assert_int_equal(rnbd_proto_open_decode(b, 264, &mode, name), -EPROTO);
	rnbd_proto_open_encode(b, 0, "x");
	assert_int_equal(rnbd_proto_open_decode(b, 263, &mode, name), -EPROTO);
}

static void test_open_rsp(void **st)
{
	struct rnbd_open_rsp r = {
		.device_id = 7, .nsectors = 1ull << 33, .max_hw_sectors = 256,
		.max_write_zeroes_sectors = 1024, .max_discard_sectors = 2048,
		.discard_granularity = 4096, .discard_alignment = 0,
		.physical_block_size = 4096, .logical_block_size = 512,
		.max_segments = 128, .secure_discard = 0,
		.cache_policy = RNBD_CACHE_WRITEBACK | RNBD_CACHE_FUA,
	}, o;
	uint8_t b[RNBD_OPEN_RSP_LEN];

	(void)st;
	assert_int_equal(rnbd_proto_open_rsp_encode(b, &r), 56);
	/* offsets from the kernel's struct rnbd_msg_open_rsp */
	assert_int_equal(b[0], 3);
	assert_int_equal(b[4], 7);
	assert_int_equal(b[8 + 4], 2);          /* nsectors bit 33 */
	assert_int_equal(b[17], 1);             /* max_hw_sectors 256 */
	assert_int_equal(b[38], 0);             /* logical 512 = 0x200 */
	assert_int_equal(b[39], 2);
	assert_int_equal(b[45], 3);
	memset(&o, 0, sizeof(o));
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), 0);
	assert_int_equal(o.device_id, r.device_id);
	assert_int_equal(o.nsectors, r.nsectors);
	assert_int_equal(o.max_hw_sectors, r.max_hw_sectors);
	assert_int_equal(o.max_write_zeroes_sectors, r.max_write_zeroes_sectors);
	assert_int_equal(o.max_discard_sectors, r.max_discard_sectors);
	assert_int_equal(o.discard_granularity, r.discard_granularity);
	assert_int_equal(o.physical_block_size, r.physical_block_size);
	assert_int_equal(o.logical_block_size, r.logical_block_size);
	assert_int_equal(o.max_segments, r.max_segments);
	assert_int_equal(o.cache_policy, r.cache_policy);
	/* hostile block sizes, cache bits, sizes */
	r.logical_block_size = 256;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), -EPROTO);
	r.logical_block_size = 4096;
	r.physical_block_size = 512;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), -EPROTO);
	r.physical_block_size = 4096;
	r.logical_block_size = 1536;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), -EPROTO);
	r.logical_block_size = 512;
	r.cache_policy = 4;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), -EPROTO);
	r.cache_policy = 0;
	r.nsectors = UINT64_MAX;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 56, &o), -EPROTO);
	r.nsectors = 8;
	rnbd_proto_open_rsp_encode(b, &r);
	assert_int_equal(rnbd_proto_open_rsp_decode(b, 55, &o), -EPROTO);
}

static void test_close(void **st)
{
	uint8_t b[RNBD_CLOSE_LEN];
	uint32_t id = 0;

	(void)st;
	assert_int_equal(rnbd_proto_close_encode(b, 0x01020304), 8);
	assert_int_equal(b[0], 5);
	assert_int_equal(b[4], 4);
	assert_int_equal(rnbd_proto_close_decode(b, 8, &id), 0);
	assert_int_equal(id, 0x01020304);
	assert_int_equal(rnbd_proto_close_decode(b, 9, &id), -EPROTO);
	b[0] = 4;
	assert_int_equal(rnbd_proto_close_decode(b, 8, &id), -EPROTO);
}

static void test_io(void **st)
{
	struct rnbd_io io = { .device_id = 3, .sector = 0x1122334455ull,
			      .rw = RNBD_OP_WRITE | RNBD_F_FUA, .bi_size = 4096,
			      .prio = 5 }, o;
	uint8_t b[RNBD_IO_LEN];

	(void)st;
	assert_int_equal(rnbd_proto_io_encode(b, &io), 32);
	assert_int_equal(b[0], 4);
	assert_int_equal(b[8], 0x55);           /* sector, little endian */
	assert_int_equal(b[12], 0x11);
	assert_int_equal(b[16], 1);             /* WRITE */
	assert_int_equal(b[17], 2);             /* FUA = bit 9 */
	assert_int_equal(b[24], 5);
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), 0);
	assert_int_equal(o.device_id, io.device_id);
	assert_int_equal(o.sector, io.sector);
	assert_int_equal(o.rw, io.rw);
	assert_int_equal(o.bi_size, io.bi_size);
	assert_int_equal(o.prio, io.prio);
	/* unknown op, unknown flag, NOUNMAP on a write, padding, size */
	io.rw = 6;
	rnbd_proto_io_encode(b, &io);
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), -EPROTO);
	io.rw = RNBD_OP_READ | (1u << 12);
	rnbd_proto_io_encode(b, &io);
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), -EPROTO);
	io.rw = RNBD_OP_WRITE | RNBD_F_NOUNMAP;
	rnbd_proto_io_encode(b, &io);
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), -EPROTO);
	io.rw = RNBD_OP_WRITE_ZEROES | RNBD_F_NOUNMAP;
	rnbd_proto_io_encode(b, &io);
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), 0);
	b[30] = 1;
	assert_int_equal(rnbd_proto_io_decode(b, 32, &o), -EPROTO);
	rnbd_proto_io_encode(b, &io);
	assert_int_equal(rnbd_proto_io_decode(b, 26, &o), -EPROTO);
	assert_int_equal(rnbd_proto_io_decode(b, 33, &o), -EPROTO);
}

struct seen {
	char names[4][300];
	uint8_t flags[4];
	int n;
};

static void collect(void *priv, const char *name, uint8_t flags)
{
	struct seen *s = priv;

	if (s->n < 4) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
		s->flags[s->n] = flags;
	}
	s->n++;
}

static void test_list(void **st)
{
	uint8_t b[64], m[RNBD_LIST_LEN];
	struct seen sn = { .n = 0 };
	char longname[300];

	(void)st;
	assert_int_equal(rnbd_proto_list_encode(m), 8);
	assert_int_equal(m[0], 100);
	assert_int_equal(rnbd_proto_list_decode(m, 8), 0);
	m[5] = 1;
	assert_int_equal(rnbd_proto_list_decode(m, 8), -EPROTO);
	assert_int_equal(rnbd_proto_list_decode(m, 7), -EPROTO);
	memset(b, 0, sizeof(b));
	rnbd_proto_list_rsp_init(b);
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), "vol0", 0), 0);
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), "gold",
						 RNBD_LIST_F_RO), 0);
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), "x", 4), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), longname, 0),
			 -EINVAL);
	/* 12 + 6 + 6 used of 64: a 39-byte name does not fit, 38 does */
	longname[39] = 0;
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), longname, 0),
			 -ENOSPC);
	longname[38] = 0;
	assert_int_equal(rnbd_proto_list_rsp_add(b, sizeof(b), longname,
						 RNBD_LIST_F_DIR), 0);
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), collect, &sn), 3);
	assert_string_equal(sn.names[0], "vol0");
	assert_string_equal(sn.names[1], "gold");
	assert_int_equal(sn.flags[1], RNBD_LIST_F_RO);
	assert_int_equal(strlen(sn.names[2]), 38);
	assert_int_equal(sn.flags[2], RNBD_LIST_F_DIR);
	/* hostile: more entries than bytes, a NUL in a name, a length past
	 * the end, unknown flags, bytes left over, too short */
	b[4] = 30;
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL),
			 -EPROTO);
	b[4] = 3;
	b[12 + 3] = 0;
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL),
			 -EPROTO);
	b[12 + 3] = 'l';
	b[12 + 1] = 200;
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL),
			 -EPROTO);
	b[12 + 1] = 4;
	b[12] = 8;
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL),
			 -EPROTO);
	b[12] = 0;
	b[4] = 2;               /* the third entry's bytes left over */
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL),
			 -EPROTO);
	b[4] = 3;
	assert_int_equal(rnbd_proto_list_rsp_decode(b, 11, NULL, NULL), -EPROTO);
	assert_int_equal(rnbd_proto_list_rsp_decode(b, 40, NULL, NULL), -EPROTO);
	assert_int_equal(rnbd_proto_list_rsp_decode(b, sizeof(b), NULL, NULL), 3);
}

/* Random bytes at every length: decoders never crash, and whatever they
 * accept re-encodes to the same bytes. */
static void test_fuzz(void **st)
{
	uint8_t b[300], e[300];
	char name[RNBD_NAME_MAX + 1];
	unsigned seed = 12345;

	(void)st;
	for (int it = 0; it < 20000; it++) {
		size_t len = (size_t)(rand_r(&seed) % 300);
		struct rnbd_open_rsp r;
		struct rnbd_io io;
		uint32_t id;
		uint8_t v, mode;

		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)rand_r(&seed);
		/* make the type plausible half of the time */
		if (it & 1) {
			b[0] = (uint8_t)(rand_r(&seed) % 6);
			b[1] = b[2] = b[3] = 0;
		}
		rnbd_proto_type(b, len);
		if (!rnbd_proto_sess_info_decode(b, len, RNBD_MSG_SESS_INFO, &v)) {
			rnbd_proto_sess_info_encode(e, RNBD_MSG_SESS_INFO, v);
			assert_memory_equal(e, b, 36);
		}
		if (!rnbd_proto_open_decode(b, len, &mode, name)) {
			rnbd_proto_open_encode(e, mode, name);
			assert_memory_equal(e, b, 264);
		}
		if (!rnbd_proto_open_rsp_decode(b, len, &r)) {
			rnbd_proto_open_rsp_encode(e, &r);
			assert_memory_equal(e, b, 46);
		}
		if (!rnbd_proto_close_decode(b, len, &id)) {
			rnbd_proto_close_encode(e, id);
			assert_memory_equal(e, b, 8);
		}
		rnbd_proto_list_rsp_decode(b, len, NULL, NULL);
		if (!rnbd_proto_io_decode(b, len, &io)) {
			rnbd_proto_io_encode(e, &io);
			assert_memory_equal(e, b, 32);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type),
		cmocka_unit_test(test_sess_info),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_open_rsp),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_io),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
