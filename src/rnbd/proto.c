// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* RNBD wire encoding; see proto.h and docs/rnbd-protocol.md. */
#include <errno.h>
#include <string.h>

#include "proto.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static void hdr(uint8_t *p, enum rnbd_msg_type type)
{
	put16(p, (uint16_t)type);
	put16(p + 2, 0);
}

/* A header of @type in a message of exactly @want bytes. */
static int check(const void *buf, size_t len, size_t want,
		 enum rnbd_msg_type type)
{
	const uint8_t *p = buf;

	if (!buf || len != want)
		return -EPROTO;
	if (get16(p) != type || get16(p + 2))
		return -EPROTO;
	return 0;
}

int rnbd_proto_type(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint16_t t;

	if (!buf || len < RNBD_HDR_LEN)
		return -EPROTO;
	t = get16(p);
	if (t > RNBD_MSG_CLOSE && t != RNBD_MSG_LIST && t != RNBD_MSG_LIST_RSP)
		return -EPROTO;
	return t;
}

size_t rnbd_proto_sess_info_encode(void *buf, enum rnbd_msg_type type,
				   uint8_t ver)
{
	uint8_t *p = buf;

	memset(p, 0, RNBD_SESS_INFO_LEN);
	hdr(p, type);
	p[4] = ver;
	return RNBD_SESS_INFO_LEN;
}

int rnbd_proto_sess_info_decode(const void *buf, size_t len,
				enum rnbd_msg_type type, uint8_t *ver)
{
	const uint8_t *p = buf;

	if (type != RNBD_MSG_SESS_INFO && type != RNBD_MSG_SESS_INFO_RSP)
		return -EINVAL;
	if (check(buf, len, RNBD_SESS_INFO_LEN, type))
		return -EPROTO;
	if (!p[4] || !all_zero(p + 5, 31))
		return -EPROTO;
	*ver = p[4];
	return 0;
}

int rnbd_proto_open_encode(void *buf, uint8_t access_mode, const char *name)
{
	uint8_t *p = buf;
	size_t n = name ? strlen(name) : 0;

	if (!n || n > RNBD_NAME_MAX || access_mode > 2)
		return -EINVAL;
	memset(p, 0, RNBD_OPEN_LEN);
	hdr(p, RNBD_MSG_OPEN);
	p[4] = access_mode;
	memcpy(p + 6, name, n);
	return RNBD_OPEN_LEN;
}

int rnbd_proto_open_decode(const void *buf, size_t len, uint8_t *access_mode,
			   char *name)
{
	const uint8_t *p = buf;
	const uint8_t *nul;

	if (check(buf, len, RNBD_OPEN_LEN, RNBD_MSG_OPEN))
		return -EPROTO;
	if (p[4] > 2 || p[5] || !all_zero(p + 261, 3))
		return -EPROTO;
	nul = memchr(p + 6, 0, RNBD_NAME_MAX + 1);
	if (!nul || nul == p + 6)
		return -EPROTO;
	/* nothing after the terminator: no hidden second name */
	if (!all_zero(nul, (size_t)(p + 261 - nul)))
		return -EPROTO;
	*access_mode = p[4];
	memcpy(name, p + 6, (size_t)(nul - (p + 6)) + 1);
	return 0;
}

size_t rnbd_proto_open_rsp_encode(void *buf, const struct rnbd_open_rsp *r)
{
	uint8_t *p = buf;

	memset(p, 0, RNBD_OPEN_RSP_LEN);
	hdr(p, RNBD_MSG_OPEN_RSP);
	put32(p + 4, r->device_id);
	put64(p + 8, r->nsectors);
	put32(p + 16, r->max_hw_sectors);
	put32(p + 20, r->max_write_zeroes_sectors);
	put32(p + 24, r->max_discard_sectors);
	put32(p + 28, r->discard_granularity);
	put32(p + 32, r->discard_alignment);
	put16(p + 36, r->physical_block_size);
	put16(p + 38, r->logical_block_size);
	put16(p + 40, r->max_segments);
	put16(p + 42, r->secure_discard);
	p[45] = r->cache_policy;
	return RNBD_OPEN_RSP_LEN;
}

static int pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int rnbd_proto_open_rsp_decode(const void *buf, size_t len,
			       struct rnbd_open_rsp *r)
{
	const uint8_t *p = buf;

	if (check(buf, len, RNBD_OPEN_RSP_LEN, RNBD_MSG_OPEN_RSP))
		return -EPROTO;
	r->device_id = get32(p + 4);
	r->nsectors = get64(p + 8);
	r->max_hw_sectors = get32(p + 16);
	r->max_write_zeroes_sectors = get32(p + 20);
	r->max_discard_sectors = get32(p + 24);
	r->discard_granularity = get32(p + 28);
	r->discard_alignment = get32(p + 32);
	r->physical_block_size = get16(p + 36);
	r->logical_block_size = get16(p + 38);
	r->max_segments = get16(p + 40);
	r->secure_discard = get16(p + 42);
	r->cache_policy = p[45];
	/* block sizes: powers of 2 from 512, logical <= physical; a size
	 * that does not fit 64-bit bytes is not a device */
	if (r->logical_block_size < 512 || !pow2(r->logical_block_size) ||
	    r->physical_block_size < r->logical_block_size ||
	    !pow2(r->physical_block_size) || r->nsectors > (UINT64_MAX >> 9) ||
	    (r->cache_policy & ~(RNBD_CACHE_FUA | RNBD_CACHE_WRITEBACK)))
		return -EPROTO;
	return 0;
}

size_t rnbd_proto_close_encode(void *buf, uint32_t device_id)
{
	uint8_t *p = buf;

	hdr(p, RNBD_MSG_CLOSE);
	put32(p + 4, device_id);
	return RNBD_CLOSE_LEN;
}

int rnbd_proto_close_decode(const void *buf, size_t len, uint32_t *device_id)
{
	if (check(buf, len, RNBD_CLOSE_LEN, RNBD_MSG_CLOSE))
		return -EPROTO;
	*device_id = get32((const uint8_t *)buf + 4);
	return 0;
}

size_t rnbd_proto_io_encode(void *buf, const struct rnbd_io *io)
{
	uint8_t *p = buf;

	memset(p, 0, RNBD_IO_LEN);
	hdr(p, RNBD_MSG_IO);
	put32(p + 4, io->device_id);
	put64(p + 8, io->sector);
	put32(p + 16, io->rw);
	put32(p + 20, io->bi_size);
	put16(p + 24, io->prio);
	return RNBD_IO_LEN;
}

int rnbd_proto_io_decode(const void *buf, size_t len, struct rnbd_io *io)
{
	const uint8_t *p = buf;
	uint32_t op;

	/* 26 bytes of fields, padded to 32 as the kernel's struct */
	if (!buf || len != RNBD_IO_LEN)
		return -EPROTO;
	if (get16(p) != RNBD_MSG_IO || get16(p + 2))
		return -EPROTO;
	io->device_id = get32(p + 4);
	io->sector = get64(p + 8);
	io->rw = get32(p + 16);
	io->bi_size = get32(p + 20);
	io->prio = get16(p + 24);
	op = io->rw & RNBD_OP_MASK;
	if (op > RNBD_OP_WRITE_ZEROES || (io->rw & ~(RNBD_OP_MASK | RNBD_F_ALL)))
		return -EPROTO;
	if ((io->rw & RNBD_F_NOUNMAP) && op != RNBD_OP_WRITE_ZEROES)
		return -EPROTO;
	if (!all_zero(p + 26, 6))
		return -EPROTO;
	return 0;
}

size_t rnbd_proto_list_encode(void *buf)
{
	uint8_t *p = buf;

	hdr(p, RNBD_MSG_LIST);
	put32(p + 4, 0);
	return RNBD_LIST_LEN;
}

int rnbd_proto_list_decode(const void *buf, size_t len)
{
	if (check(buf, len, RNBD_LIST_LEN, RNBD_MSG_LIST) ||
	    get32((const uint8_t *)buf + 4))
		return -EPROTO;
	return 0;
}

void rnbd_proto_list_rsp_init(void *buf)
{
	uint8_t *p = buf;

	hdr(p, RNBD_MSG_LIST_RSP);
	put32(p + 4, 0);
	put32(p + 8, 0);
}

int rnbd_proto_list_rsp_add(void *buf, size_t cap, const char *name,
			    uint8_t flags)
{
	uint8_t *p = buf;
	uint32_t n = get32(p + 4), used = get32(p + 8);
	size_t len = strlen(name);

	if (!len || len > RNBD_NAME_MAX || flags & ~(RNBD_LIST_F_RO | RNBD_LIST_F_DIR))
		return -EINVAL;
	if (cap < RNBD_LIST_RSP_HDR || cap - RNBD_LIST_RSP_HDR - used < 2 + len)
		return -ENOSPC;
	p += RNBD_LIST_RSP_HDR + used;
	p[0] = flags;
	p[1] = (uint8_t)len;
	memcpy(p + 2, name, len);
	put32((uint8_t *)buf + 4, n + 1);
	put32((uint8_t *)buf + 8, used + 2 + (uint32_t)len);
	return 0;
}

int rnbd_proto_list_rsp_decode(const void *buf, size_t len,
			       void (*fn)(void *priv, const char *name,
					  uint8_t flags),
			       void *priv)
{
	const uint8_t *p = buf;
	uint32_t n, used, off = 0;
	char name[RNBD_NAME_MAX + 1];

	if (!buf || len < RNBD_LIST_RSP_HDR ||
	    get16(p) != RNBD_MSG_LIST_RSP || get16(p + 2))
		return -EPROTO;
	n = get32(p + 4);
	used = get32(p + 8);
	if (used > len - RNBD_LIST_RSP_HDR || n > used / 3)
		return -EPROTO;
	p += RNBD_LIST_RSP_HDR;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t fl, nl;

		if (used - off < 2)
			return -EPROTO;
		fl = p[off];
		nl = p[off + 1];
		if (!nl || nl > RNBD_NAME_MAX || used - off - 2 < nl ||
		    (fl & ~(RNBD_LIST_F_RO | RNBD_LIST_F_DIR)) ||
		    memchr(p + off + 2, 0, nl))
			return -EPROTO;
		memcpy(name, p + off + 2, nl);
		name[nl] = 0;
		if (fn)
			fn(priv, name, fl);
		off += 2u + nl;
	}
	return off == used ? (int)n : -EPROTO;
}
