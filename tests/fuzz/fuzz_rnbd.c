// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: every RNBD message decoder (src/rnbd/proto.c) on the
 * same input, as rnbd-server and the client receive them (a user header of
 * any length): rnbd_proto_type, rnbd_proto_sess_info_decode (both types),
 * rnbd_proto_open_decode, rnbd_proto_open_rsp_decode,
 * rnbd_proto_close_decode, rnbd_proto_io_decode, rnbd_proto_list_decode,
 * rnbd_proto_list_rsp_decode.
 * Properties: no read outside the message (ASan); a decoded message
 * re-encodes to the same bytes (every decoder but OPEN_RSP rejects what
 * its encoder would not write; OPEN_RSP re-decodes to the same fields);
 * accepted values are in range.
 */
#include <errno.h>

#include "fuzz.h"
#include "rnbd/proto.h"

struct list_walk {
	uint8_t *buf;           /* the re-encoding */
	size_t cap;
	int n;
};

static void list_one(void *priv, const char *name, uint8_t flags)
{
	struct list_walk *w = priv;
	size_t l = strlen(name);

	FUZZ_CHECK(l >= 1 && l <= RNBD_NAME_MAX);
	FUZZ_CHECK(!(flags & ~(RNBD_LIST_F_RO | RNBD_LIST_F_DIR)));
	if (w->buf)
		FUZZ_CHECK(rnbd_proto_list_rsp_add(w->buf, w->cap, name, flags) == 0);
	w->n++;
}

static void count_one(void *priv, const char *name, uint8_t flags)
{
	(void)name;
	(void)flags;
	(*(int *)priv)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t buf[RNBD_OPEN_LEN];
	char name[RNBD_NAME_MAX + 1], name2[RNBD_NAME_MAX + 1];
	struct rnbd_open_rsp r, r2;
	struct rnbd_io io, io2;
	uint8_t ver, mode, mode2;
	uint32_t id;
	int t = rnbd_proto_type(d, n), ret;

	FUZZ_CHECK(t == -EPROTO || (t >= RNBD_MSG_SESS_INFO && t <= RNBD_MSG_CLOSE) ||
		   t == RNBD_MSG_LIST || t == RNBD_MSG_LIST_RSP);
	if (t >= 0)
		FUZZ_CHECK(n >= RNBD_HDR_LEN && t == (d[0] | d[1] << 8));

	for (int ty = RNBD_MSG_SESS_INFO; ty <= RNBD_MSG_SESS_INFO_RSP; ty++) {
		ret = rnbd_proto_sess_info_decode(d, n, ty, &ver);
		FUZZ_CHECK(ret == 0 || ret == -EPROTO);
		if (ret)
			continue;
		FUZZ_CHECK(t == ty && ver != 0);
		FUZZ_CHECK(rnbd_proto_sess_info_encode(buf, ty, ver) == n);
		FUZZ_CHECK(!memcmp(buf, d, n));
	}
	FUZZ_CHECK(rnbd_proto_sess_info_decode(d, n, RNBD_MSG_OPEN, &ver) ==
		   -EINVAL);

	ret = rnbd_proto_open_decode(d, n, &mode, name);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		FUZZ_CHECK(t == RNBD_MSG_OPEN && mode <= 2);
		FUZZ_CHECK(strlen(name) >= 1 && strlen(name) <= RNBD_NAME_MAX);
		FUZZ_CHECK(rnbd_proto_open_encode(buf, mode, name) == (int)n);
		FUZZ_CHECK(!memcmp(buf, d, n));
		FUZZ_CHECK(rnbd_proto_open_decode(buf, n, &mode2, name2) == 0);
		FUZZ_CHECK(mode2 == mode && !strcmp(name, name2));
	}

	memset(&r, 0, sizeof(r));
	memset(&r2, 0, sizeof(r2));
	ret = rnbd_proto_open_rsp_decode(d, n, &r);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		FUZZ_CHECK(t == RNBD_MSG_OPEN_RSP);
		FUZZ_CHECK(r.logical_block_size >= 512 &&
			   !(r.logical_block_size & (r.logical_block_size - 1)));
		FUZZ_CHECK(r.physical_block_size >= r.logical_block_size &&
			   !(r.physical_block_size & (r.physical_block_size - 1)));
		FUZZ_CHECK(r.nsectors <= UINT64_MAX >> 9);
		FUZZ_CHECK(rnbd_proto_open_rsp_encode(buf, &r) == n);
		/* the fields (the reserved bytes are not checked) */
		FUZZ_CHECK(!memcmp(buf, d, 44) && buf[45] == d[45]);
		FUZZ_CHECK(rnbd_proto_open_rsp_decode(buf, n, &r2) == 0);
		FUZZ_CHECK(!memcmp(&r, &r2, offsetof(struct rnbd_open_rsp,
						     cache_policy) + 1));
	}

	ret = rnbd_proto_close_decode(d, n, &id);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		FUZZ_CHECK(t == RNBD_MSG_CLOSE);
		FUZZ_CHECK(rnbd_proto_close_encode(buf, id) == n);
		FUZZ_CHECK(!memcmp(buf, d, n));
	}

	memset(&io, 0, sizeof(io));
	ret = rnbd_proto_io_decode(d, n, &io);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		FUZZ_CHECK(t == RNBD_MSG_IO);
		FUZZ_CHECK((io.rw & RNBD_OP_MASK) <= RNBD_OP_WRITE_ZEROES);
		FUZZ_CHECK(!(io.rw & ~(RNBD_OP_MASK | RNBD_F_ALL)));
		FUZZ_CHECK(!(io.rw & RNBD_F_NOUNMAP) ||
			   (io.rw & RNBD_OP_MASK) == RNBD_OP_WRITE_ZEROES);
		FUZZ_CHECK(rnbd_proto_io_encode(buf, &io) == n);
		FUZZ_CHECK(!memcmp(buf, d, n));
		memset(&io2, 0, sizeof(io2));
		FUZZ_CHECK(rnbd_proto_io_decode(buf, n, &io2) == 0);
		FUZZ_CHECK(io2.device_id == io.device_id &&
			   io2.sector == io.sector && io2.rw == io.rw &&
			   io2.bi_size == io.bi_size && io2.prio == io.prio);
	}

	ret = rnbd_proto_list_decode(d, n);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (!ret) {
		FUZZ_CHECK(t == RNBD_MSG_LIST);
		FUZZ_CHECK(rnbd_proto_list_encode(buf) == n);
		FUZZ_CHECK(!memcmp(buf, d, n));
	}

	{
		struct list_walk w = { NULL, 0, 0 };

		ret = rnbd_proto_list_rsp_decode(d, n, list_one, &w);
		FUZZ_CHECK(ret == -EPROTO || ret >= 0);
		if (ret >= 0) {
			uint32_t used = (uint32_t)d[8] | (uint32_t)d[9] << 8 |
					(uint32_t)d[10] << 16 |
					(uint32_t)d[11] << 24;
			int cnt = 0;

			FUZZ_CHECK(t == RNBD_MSG_LIST_RSP && w.n == ret);
			FUZZ_CHECK(used <= n - RNBD_LIST_RSP_HDR);
			/* the entries, added again, make the same bytes */
			w.cap = RNBD_LIST_RSP_HDR + used;
			w.buf = malloc(w.cap);
			w.n = 0;
			FUZZ_CHECK(w.buf);
			rnbd_proto_list_rsp_init(w.buf);
			FUZZ_CHECK(rnbd_proto_list_rsp_decode(d, n, list_one,
							      &w) == ret);
			FUZZ_CHECK(!memcmp(w.buf, d, w.cap));
			FUZZ_CHECK(rnbd_proto_list_rsp_decode(w.buf, w.cap,
							      count_one,
							      &cnt) == ret);
			FUZZ_CHECK(cnt == ret);
			/* no room for one more byte of entries */
			FUZZ_CHECK(rnbd_proto_list_rsp_add(w.buf, w.cap, "x",
							   0) == -ENOSPC);
			free(w.buf);
		} else {
			FUZZ_CHECK(w.n >= 0);
		}
	}
	return 0;
}
