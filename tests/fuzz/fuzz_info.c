// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: the messages of the info exchange and the immediates.
 * Input: a selector byte, then
 *   0: an info request as the server receives it
 *      (rtrs__proto_info_req_decode, rtrs__proto_name_valid);
 *   1: le16 queue depth, le32 max_io, le16 max_hdr (the geometry the
 *      client negotiated), then an info response
 *      (rtrs__proto_info_rsp_decode);
 *   2: le16 queue depth, then an rkey response (rtrs__proto_rkey_rsp_decode);
 *   3: le16 queue depth, le32 max_io, le16 max_hdr, le32 payload: the
 *      immediates (rtrs__proto_io_req_decode, rtrs__proto_io_rsp_decode);
 *   4: an auth_req as the server receives it (rtrs__proto_auth_req_decode,
 *      rtrs__proto_identity_valid; docs/protocol.md section 2.7);
 *   5: an auth_rsp as the client receives it (rtrs__proto_auth_rsp_decode);
 *   6: an info request on an authenticated path: the 272 bytes and the
 *      client's proof (rtrs__proto_info_req_proof, then as 0);
 *   7: an identity as a key file or an application gives it
 *      (rtrs__proto_identity_valid), NUL-terminated at the input's end.
 * Properties: no read outside the message (ASan); decode -> encode ->
 * decode gives the same result; accepted values are in range.
 */
#include <errno.h>
#include <stdbool.h>

#include "fuzz.h"
#include "proto/wire.h"

static void info_req(const uint8_t *d, size_t n)
{
	char name[RTRS_PROTO_NAME_LEN], name2[RTRS_PROTO_NAME_LEN];
	uint8_t buf[RTRS_INFO_REQ_LEN];
	int ret = rtrs__proto_info_req_decode(d, n, name);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EINVAL);
	if (ret)
		return;
	FUZZ_CHECK(strlen(name) >= 1 && strlen(name) <= RTRS_PROTO_NAME_LEN - 1);
	FUZZ_CHECK(rtrs__proto_name_valid(name) == 0);
	FUZZ_CHECK(!strchr(name, '/') && !strchr(name, '.'));
	rtrs__proto_info_req_encode(buf, name);
	FUZZ_CHECK(rtrs__proto_info_req_decode(buf, sizeof(buf), name2) == 0);
	FUZZ_CHECK(!strcmp(name, name2));
}

struct chunks {
	uint32_t n, cap;
	uint64_t *addr;
	uint32_t *key;
	int bad;
};

static void one_chunk(void *arg, uint32_t chunk, uint64_t addr, uint32_t key)
{
	struct chunks *c = arg;

	/* in order, each once, no more than the queue depth */
	if (chunk != c->n || c->n >= c->cap) {
		c->bad = 1;
		return;
	}
	c->addr[c->n] = addr;
	c->key[c->n] = key;
	c->n++;
}

static void info_rsp(struct fuzz_in *in)
{
	struct rtrs_geom g;
	uint16_t qd = fin_u16(in);
	uint32_t max_io = fin_u32(in);
	uint16_t max_hdr = fin_u16(in);
	struct chunks c = { 0 }, c2 = { 0 };
	struct rtrs_sg_desc *d;
	uint8_t *buf;
	size_t len;
	int ret;

	if (rtrs__proto_geom(&g, qd, max_io, max_hdr))
		return;
	c.cap = c2.cap = g.queue_depth;
	c.addr = calloc(c.cap, sizeof(*c.addr));
	c.key = calloc(c.cap, sizeof(*c.key));
	c2.addr = calloc(c.cap, sizeof(*c.addr));
	c2.key = calloc(c.cap, sizeof(*c.key));
	d = calloc(c.cap, sizeof(*d));
	buf = malloc(RTRS_INFO_RSP_LEN(c.cap));
	FUZZ_CHECK(c.addr && c.key && c2.addr && c2.key && d && buf);
	ret = rtrs__proto_info_rsp_decode(in->p, in->n, &g, one_chunk, &c);
	FUZZ_CHECK(!c.bad);
	if (ret) {
		/* nothing handed out for a malformed or refusing message */
		FUZZ_CHECK(c.n == 0);
		FUZZ_CHECK(ret < 0);
		if (ret != -EPROTO) {
			int16_t e = (int16_t)(in->p[4] | in->p[5] << 8);

			FUZZ_CHECK(ret == e);
			/* a refusal round-trips (but -32768 goes as -EIO) */
			len = rtrs__proto_info_rsp_refuse_encode(buf, ret);
			FUZZ_CHECK(len == 8);
			FUZZ_CHECK(rtrs__proto_info_rsp_decode(buf, len, &g,
							       one_chunk, &c2) ==
				   (ret < -32767 ? -EIO : ret));
		}
		goto out;
	}
	/* every chunk of the queue, once */
	FUZZ_CHECK(c.n == g.queue_depth);
	/* the same chunks, one descriptor each, decode to the same table */
	for (uint32_t i = 0; i < c.n; i++) {
		d[i].addr = c.addr[i];
		d[i].key = c.key[i];
		d[i].len = g.chunk_size;
	}
	len = rtrs__proto_info_rsp_encode(buf, RTRS_INFO_RSP_LEN(c.n), d,
					  (uint16_t)c.n);
	FUZZ_CHECK(len == RTRS_INFO_RSP_LEN(c.n));
	FUZZ_CHECK(rtrs__proto_info_rsp_encode(buf, len - 1, d,
					       (uint16_t)c.n) == 0);
	FUZZ_CHECK(rtrs__proto_info_rsp_decode(buf, len, &g, one_chunk, &c2) == 0);
	FUZZ_CHECK(!c2.bad && c2.n == c.n);
	FUZZ_CHECK(!memcmp(c.addr, c2.addr, c.n * sizeof(*c.addr)));
	FUZZ_CHECK(!memcmp(c.key, c2.key, c.n * sizeof(*c.key)));
	/* one byte short is malformed */
	c2.n = 0;
	FUZZ_CHECK(rtrs__proto_info_rsp_decode(buf, len - 1, &g, one_chunk,
					       &c2) == -EPROTO && c2.n == 0);
out:
	free(c.addr);
	free(c.key);
	free(c2.addr);
	free(c2.key);
	free(d);
	free(buf);
}

static void rkey_rsp(struct fuzz_in *in)
{
	uint16_t qd = fin_u16(in), id = 0xffff, id2;
	uint32_t key = 0, key2;
	uint8_t buf[RTRS_RKEY_RSP_LEN];
	int ret = rtrs__proto_rkey_rsp_decode(in->p, in->n, qd, &id, &key);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (ret)
		return;
	FUZZ_CHECK(id < qd);
	rtrs__proto_rkey_rsp_encode(buf, id, key);
	FUZZ_CHECK(!memcmp(buf, in->p, sizeof(buf)));
	FUZZ_CHECK(rtrs__proto_rkey_rsp_decode(buf, sizeof(buf), qd, &id2,
					       &key2) == 0);
	FUZZ_CHECK(id2 == id && key2 == key);
}

static void imms(struct fuzz_in *in)
{
	struct rtrs_geom g;
	uint16_t qd = fin_u16(in);
	uint32_t max_io = fin_u32(in);
	uint16_t max_hdr = fin_u16(in);
	uint32_t imm = fin_u32(in), pl = rtrs_imm_payload(imm);
	uint32_t id, off, id2, off2;
	int st, st2;

	FUZZ_CHECK(rtrs_imm(rtrs_imm_type(imm), pl) == imm);
	if (rtrs__proto_io_rsp_decode(pl, qd, &id, &st) == 0) {
		FUZZ_CHECK(id < qd && st <= 0 && st >= -RTRS_RSP_ERRNO_MAX);
		FUZZ_CHECK(rtrs__proto_io_rsp_decode(
				   rtrs_imm_payload(rtrs__proto_io_rsp_imm(id, st)),
				   qd, &id2, &st2) == 0);
		FUZZ_CHECK(id2 == id && st2 == st);
	}
	if (rtrs__proto_geom(&g, qd, max_io, max_hdr))
		return;
	FUZZ_CHECK(g.chunk_size == max_io + max_hdr);
	FUZZ_CHECK(rtrs__proto_bits(g.queue_depth) + g.mem_bits ==
		   RTRS_IMM_PAYL_BITS);
	FUZZ_CHECK(rtrs__proto_bits(g.chunk_size) <= g.mem_bits);
	if (rtrs__proto_io_req_decode(&g, pl, &id, &off) == 0) {
		FUZZ_CHECK(id < g.queue_depth && off < g.chunk_size);
		FUZZ_CHECK(rtrs_imm_payload(rtrs__proto_io_req_imm(&g, id, off)) ==
			   pl);
		FUZZ_CHECK(rtrs__proto_io_req_decode(
				   &g,
				   rtrs_imm_payload(rtrs__proto_io_req_imm(&g, id, off)),
				   &id2, &off2) == 0);
		FUZZ_CHECK(id2 == id && off2 == off);
	}
}

static void auth_req(const uint8_t *d, size_t n)
{
	uint8_t nonce[RTRS_AUTH_NONCE_LEN], nonce2[RTRS_AUTH_NONCE_LEN];
	uint8_t buf[RTRS_AUTH_REQ_LEN];
	char id[RTRS_AUTH_ID_LEN], id2[RTRS_AUTH_ID_LEN];
	int ret = rtrs__proto_auth_req_decode(d, n, nonce, id);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO || ret == -EINVAL);
	if (ret)
		return;
	FUZZ_CHECK(n >= RTRS_AUTH_REQ_LEN);
	FUZZ_CHECK(rtrs__proto_identity_valid(id) == 0);
	FUZZ_CHECK(strlen(id) >= 1 && strlen(id) < RTRS_AUTH_ID_LEN);
	for (size_t i = 0; id[i]; i++)
		FUZZ_CHECK(id[i] > 0x20 && id[i] < 0x7f);
	/* the message is exactly what the encoder makes of it, but for the
	 * reserved bytes 3..7, which the decoder does not look at */
	rtrs__proto_auth_req_encode(buf, nonce, id);
	FUZZ_CHECK(!memcmp(buf, d, 3));
	FUZZ_CHECK(!memcmp(buf + 8, d + 8, RTRS_AUTH_REQ_LEN - 8));
	FUZZ_CHECK(rtrs__proto_auth_req_decode(buf, sizeof(buf), nonce2, id2) == 0);
	FUZZ_CHECK(!memcmp(nonce, nonce2, sizeof(nonce)) && !strcmp(id, id2));
	/* one byte short is malformed */
	FUZZ_CHECK(rtrs__proto_auth_req_decode(buf, sizeof(buf) - 1, nonce2,
					       id2) == -EPROTO);
}

static void auth_rsp(const uint8_t *d, size_t n)
{
	uint8_t nonce[RTRS_AUTH_NONCE_LEN], proof[RTRS_AUTH_PROOF_LEN];
	uint8_t nonce2[RTRS_AUTH_NONCE_LEN], proof2[RTRS_AUTH_PROOF_LEN];
	uint8_t buf[RTRS_AUTH_RSP_LEN];
	int err = 1, err2 = 1;
	int ret = rtrs__proto_auth_rsp_decode(d, n, &err, nonce, proof);

	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (ret) {
		FUZZ_CHECK(err == 1);   /* nothing given out */
		return;
	}
	FUZZ_CHECK(n >= RTRS_AUTH_RSP_LEN);
	FUZZ_CHECK(err <= 0 && err >= -32768);
	FUZZ_CHECK(rtrs__proto_auth_rsp_encode(buf, err, nonce, proof) ==
		   RTRS_AUTH_RSP_LEN);
	FUZZ_CHECK(rtrs__proto_auth_rsp_decode(buf, sizeof(buf), &err2, nonce2,
					       proof2) == 0);
	/* -32768 is not an errno the encoder sends: -EIO */
	FUZZ_CHECK(err2 == (err < -32767 ? -EIO : err));
	if (!err2) {
		FUZZ_CHECK(!memcmp(nonce, nonce2, sizeof(nonce)));
		FUZZ_CHECK(!memcmp(proof, proof2, sizeof(proof)));
		FUZZ_CHECK(!memcmp(buf, d, 4) && !memcmp(buf + 8, d + 8, 64));
	} else {
		/* a refusal carries zeroes */
		for (size_t i = 8; i < RTRS_AUTH_RSP_LEN; i++)
			FUZZ_CHECK(buf[i] == 0);
	}
}

static void info_req_proof(const uint8_t *d, size_t n)
{
	uint8_t proof[RTRS_AUTH_PROOF_LEN];
	int ret;

	memset(proof, 0xee, sizeof(proof));
	ret = rtrs__proto_info_req_proof(d, n, proof);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	FUZZ_CHECK((ret == 0) == (n >= RTRS_INFO_REQ_AUTH_LEN));
	if (!ret)
		FUZZ_CHECK(!memcmp(proof, d + RTRS_INFO_REQ_LEN, sizeof(proof)));
	/* the 272 bytes before it decode as on a path without keys */
	info_req(d, n);
}

static void identity(const uint8_t *d, size_t n)
{
	char id[RTRS_AUTH_ID_LEN + 8];
	size_t k = n < sizeof(id) - 1 ? n : sizeof(id) - 1;
	bool ok;

	memcpy(id, d, k);
	id[k] = 0;
	k = strlen(id);         /* up to a NUL in the input */
	ok = k >= 1 && k < RTRS_AUTH_ID_LEN;
	for (size_t i = 0; i < k; i++)
		ok = ok && d[i] > 0x20 && d[i] < 0x7f;
	FUZZ_CHECK((rtrs__proto_identity_valid(id) == 0) == ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data + 1, size ? size - 1 : 0 };

	if (size < 1)
		return 0;
	switch (data[0] & 7) {
	case 0:
		info_req(in.p, in.n);
		break;
	case 1:
		info_rsp(&in);
		break;
	case 2:
		rkey_rsp(&in);
		break;
	case 3:
		imms(&in);
		break;
	case 4:
		auth_req(in.p, in.n);
		break;
	case 5:
		auth_rsp(in.p, in.n);
		break;
	case 6:
		info_req_proof(in.p, in.n);
		break;
	case 7:
		identity(in.p, in.n);
		break;
	}
	return 0;
}
