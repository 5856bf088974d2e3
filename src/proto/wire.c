// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* RTRS wire format: encode, decode, validate. Pure functions. */
#include "wire.h"

#include <errno.h>
#include <string.h>

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static inline uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32);
}
static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}
static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void put_desc(uint8_t *p, const struct rtrs_sg_desc *d)
{
	put64(p, d->addr);
	put32(p + 8, d->key);
	put32(p + 12, d->len);
}
static void get_desc(const uint8_t *p, struct rtrs_sg_desc *d)
{
	d->addr = get64(p);
	d->key = get32(p + 8);
	d->len = get32(p + 12);
}

unsigned rtrs__proto_bits(uint32_t n)
{
	unsigned b = 0;

	if (n <= 1)
		return 0;
	n -= 1;
	while (n) {
		b++;
		n >>= 1;
	}
	return b;
}

int rtrs__proto_geom(struct rtrs_geom *g, uint32_t queue_depth,
		     uint32_t max_io_size, uint32_t max_hdr_size)
{
	uint64_t chunk = (uint64_t)max_io_size + max_hdr_size;
	unsigned qbits, obits;

	if (queue_depth < 1 || queue_depth > RTRS_PROTO_MAX_QD)
		return -EINVAL;
	if (max_hdr_size < 64 || max_hdr_size > RTRS_PROTO_MAX_HDR)
		return -EINVAL;
	if (max_io_size < 1 || chunk > RTRS_PROTO_MAX_CHUNK)
		return -EINVAL;
	qbits = rtrs__proto_bits(queue_depth);
	obits = rtrs__proto_bits((uint32_t)chunk);
	if (qbits + obits > RTRS_IMM_PAYL_BITS)
		return -EINVAL;
	g->queue_depth = queue_depth;
	g->max_io_size = max_io_size;
	g->max_hdr_size = max_hdr_size;
	g->chunk_size = (uint32_t)chunk;
	g->mem_bits = RTRS_IMM_PAYL_BITS - qbits;
	return 0;
}

uint32_t rtrs__proto_io_req_imm(const struct rtrs_geom *g, uint32_t chunk_id,
				uint32_t off)
{
	return rtrs_imm(RTRS_IMM_IO_REQ, (chunk_id << g->mem_bits) | off);
}

int rtrs__proto_io_req_decode(const struct rtrs_geom *g, uint32_t payload,
			      uint32_t *chunk_id, uint32_t *off)
{
	uint32_t id = g->mem_bits >= 32 ? 0 : payload >> g->mem_bits;
	uint32_t o = payload & ((1u << g->mem_bits) - 1);

	if (id >= g->queue_depth || o >= g->chunk_size)
		return -EPROTO;
	*chunk_id = id;
	*off = o;
	return 0;
}

uint32_t rtrs__proto_io_rsp_imm(uint32_t msg_id, int status)
{
	uint32_t e = status < 0 ? (uint32_t)-status : (uint32_t)status;

	if (e > RTRS_RSP_ERRNO_MAX)
		e = EIO;
	return rtrs_imm(RTRS_IMM_IO_RSP,
			(e << RTRS_RSP_ID_BITS) |
				(msg_id & ((1u << RTRS_RSP_ID_BITS) - 1)));
}

int rtrs__proto_io_rsp_decode(uint32_t payload, uint32_t queue_depth,
			      uint32_t *msg_id, int *status)
{
	uint32_t id = payload & ((1u << RTRS_RSP_ID_BITS) - 1);

	if (id >= queue_depth)
		return -EPROTO;
	*msg_id = id;
	*status = -(int)((payload >> RTRS_RSP_ID_BITS) & RTRS_RSP_ERRNO_MAX);
	return 0;
}

void rtrs__proto_conn_req_encode(void *buf, const struct rtrs_conn_req *r)
{
	uint8_t *p = buf;

	memset(p, 0, RTRS_CONN_PRIV_LEN);
	put16(p + 2, RTRS_PROTO_MAGIC);
	put16(p + 4, RTRS_PROTO_VER);
	put16(p + 6, r->cid);
	put16(p + 8, r->cid_num);
	put16(p + 10, r->recon_cnt);
	memcpy(p + 12, r->sess_uuid, 16);
	memcpy(p + 28, r->paths_uuid, 16);
	p[44] = (r->first_conn ? RTRS_CONN_FIRST_F : 0) |
		(r->fence ? RTRS_CONN_FENCE_F : 0) |
		(r->has_path_no ? RTRS_CONN_PATH_NO_F : 0) |
		(r->auth ? RTRS_CONN_AUTH_F : 0) |
		(r->frames ? RTRS_CONN_FRAMES_F : 0) |
		(r->frames && r->batch ? RTRS_CONN_BATCH_F : 0) |
		(r->frames && r->big ? RTRS_CONN_BIG_F : 0);
	if (r->has_path_no)
		put16(p + 46, r->path_no);
}

int rtrs__proto_conn_req_decode(const void *buf, size_t len,
				struct rtrs_conn_req *r)
{
	/* a CM that carries less cuts only trailing zero bytes: read the
	 * request as if they were there */
	uint8_t p[RTRS_CONN_PRIV_LEN] = { 0 };

	if (!buf || len < RTRS_CONN_REQ_MIN_LEN)
		return -EPROTO;
	memcpy(p, buf, len < sizeof(p) ? len : sizeof(p));
	if (p[0] || p[1])
		return -EPROTO;
	if (get16(p + 2) != RTRS_PROTO_MAGIC)
		return -EPROTO;
	if ((get16(p + 4) >> 8) != RTRS_PROTO_VER_MAJOR)
		return -EPROTONOSUPPORT;
	r->cid = get16(p + 6);
	r->cid_num = get16(p + 8);
	r->recon_cnt = get16(p + 10);
	if (r->cid_num < 2 || r->cid_num > RTRS_PROTO_MAX_CIDS ||
	    r->cid >= r->cid_num)
		return -EPROTO;
	memcpy(r->sess_uuid, p + 12, 16);
	memcpy(r->paths_uuid, p + 28, 16);
	r->first_conn = p[44] & RTRS_CONN_FIRST_F;
	r->fence = p[44] & RTRS_CONN_FENCE_F;
	/* unknown flag bits and reserved bytes are ignored (forward
	 * compatibility) */
	r->has_path_no = p[44] & RTRS_CONN_PATH_NO_F;
	r->auth = p[44] & RTRS_CONN_AUTH_F;
	r->frames = p[44] & RTRS_CONN_FRAMES_F;
	r->batch = r->frames && (p[44] & RTRS_CONN_BATCH_F);
	r->big = r->frames && (p[44] & RTRS_CONN_BIG_F);
	r->path_no = r->has_path_no ? get16(p + 46) : 0;
	return 0;
}

void rtrs__proto_conn_rsp_encode(void *buf, const struct rtrs_conn_rsp *r)
{
	uint8_t *p = buf;
	int e = r->err;

	if (e < -32767)
		e = -EIO;
	memset(p, 0, RTRS_CONN_PRIV_LEN);
	put16(p, RTRS_PROTO_MAGIC);
	put16(p + 2, RTRS_PROTO_VER);
	put16(p + 4, (uint16_t)(int16_t)e);
	put16(p + 6, r->queue_depth);
	put32(p + 8, r->max_io_size);
	put32(p + 12, r->max_hdr_size);
	put32(p + 16, r->flags);
	put32(p + 20, r->path_id);
}

int rtrs__proto_conn_rsp_decode(const void *buf, size_t len,
				struct rtrs_conn_rsp *r)
{
	const uint8_t *p = buf;
	int16_t e;

	if (!buf || len < RTRS_CONN_RSP_MIN_LEN)
		return -EPROTO;
	if (get16(p) != RTRS_PROTO_MAGIC)
		return -EPROTO;
	if ((get16(p + 2) >> 8) != RTRS_PROTO_VER_MAJOR)
		return -EPROTONOSUPPORT;
	e = (int16_t)get16(p + 4);
	if (e > 0)
		return -EPROTO;
	r->err = e;
	r->queue_depth = get16(p + 6);
	r->max_io_size = get32(p + 8);
	r->max_hdr_size = get32(p + 12);
	r->flags = get32(p + 16);
	r->path_id = get32(p + 20);
	if (e == 0) {
		struct rtrs_geom g;

		if (r->flags & ~(uint32_t)(RTRS_MSG_NEW_RKEY_F | RTRS_MSG_FENCE_F |
					   RTRS_MSG_AUTH_F | RTRS_MSG_FRAMES_F |
					   RTRS_MSG_BIG_F))
			return -EPROTO;
		if (rtrs__proto_geom(&g, r->queue_depth, r->max_io_size,
				     r->max_hdr_size))
			return -EPROTO;
	}
	return 0;
}

int rtrs__proto_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	for (n = 0; name[n]; n++) {
		unsigned char c = (unsigned char)name[n];

		if (n >= RTRS_PROTO_NAME_LEN - 1)
			return -EINVAL;
		if (c == '/' || c == '.' || c < 0x21 || c > 0x7e)
			return -EINVAL;
	}
	return n ? 0 : -EINVAL;
}

void rtrs__proto_info_req_encode(void *buf, const char *name)
{
	uint8_t *p = buf;

	memset(p, 0, RTRS_INFO_REQ_LEN);
	put16(p, RTRS_MSG_INFO_REQ);
	strncpy((char *)p + 2, name, RTRS_PROTO_NAME_LEN - 1);
}

int rtrs__proto_info_req_decode(const void *buf, size_t len, char *name)
{
	const uint8_t *p = buf;

	if (!buf || len < RTRS_INFO_REQ_LEN)
		return -EPROTO;
	if (get16(p) != RTRS_MSG_INFO_REQ)
		return -EPROTO;
	if (!memchr(p + 2, 0, RTRS_PROTO_NAME_LEN))
		return -EPROTO;
	memcpy(name, p + 2, RTRS_PROTO_NAME_LEN);
	if (rtrs__proto_name_valid(name))
		return -EINVAL;
	return 0;
}

int rtrs__proto_info_req_proof(const void *buf, size_t len,
			       uint8_t proof[RTRS_AUTH_PROOF_LEN])
{
	if (!buf || len < RTRS_INFO_REQ_AUTH_LEN)
		return -EPROTO;
	memcpy(proof, (const uint8_t *)buf + RTRS_INFO_REQ_LEN,
	       RTRS_AUTH_PROOF_LEN);
	return 0;
}

int rtrs__proto_msg_type(const void *buf, size_t len)
{
	if (!buf || len < 2)
		return -EPROTO;
	return get16(buf);
}

int rtrs__proto_identity_valid(const char *id)
{
	size_t n;

	if (!id)
		return -EINVAL;
	for (n = 0; id[n]; n++) {
		unsigned char c = (unsigned char)id[n];

		if (n >= RTRS_AUTH_ID_LEN - 1 || c < 0x21 || c > 0x7e)
			return -EINVAL;
	}
	return n ? 0 : -EINVAL;
}

void rtrs__proto_auth_req_encode(void *buf,
				 const uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				 const char *id)
{
	uint8_t *p = buf;
	size_t n = strnlen(id, RTRS_AUTH_ID_LEN - 1);

	memset(p, 0, RTRS_AUTH_REQ_LEN);
	put16(p, RTRS_MSG_AUTH_REQ);
	p[2] = (uint8_t)n;
	memcpy(p + 8, nonce, RTRS_AUTH_NONCE_LEN);
	memcpy(p + 40, id, n);
}

int rtrs__proto_auth_req_decode(const void *buf, size_t len,
				uint8_t nonce[RTRS_AUTH_NONCE_LEN], char *id)
{
	const uint8_t *p = buf;
	size_t n;

	if (!buf || len < RTRS_AUTH_REQ_LEN || get16(p) != RTRS_MSG_AUTH_REQ)
		return -EPROTO;
	n = p[2];
	if (n == 0 || n >= RTRS_AUTH_ID_LEN)
		return -EPROTO;
	for (size_t i = 40 + n; i < RTRS_AUTH_REQ_LEN; i++)
		if (p[i])
			return -EPROTO;
	memset(id, 0, RTRS_AUTH_ID_LEN);
	memcpy(id, p + 40, n);
	if (strlen(id) != n || rtrs__proto_identity_valid(id))
		return -EINVAL;
	memcpy(nonce, p + 8, RTRS_AUTH_NONCE_LEN);
	return 0;
}

size_t rtrs__proto_auth_rsp_encode(void *buf, int err,
				   const uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				   const uint8_t proof[RTRS_AUTH_PROOF_LEN])
{
	uint8_t *p = buf;

	if (err > 0 || err < -32767)
		err = -EIO;
	memset(p, 0, RTRS_AUTH_RSP_LEN);
	put16(p, RTRS_MSG_AUTH_RSP);
	put16(p + 2, (uint16_t)(int16_t)err);
	if (!err) {
		memcpy(p + 8, nonce, RTRS_AUTH_NONCE_LEN);
		memcpy(p + 40, proof, RTRS_AUTH_PROOF_LEN);
	}
	return RTRS_AUTH_RSP_LEN;
}

int rtrs__proto_auth_rsp_decode(const void *buf, size_t len, int *err,
				uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				uint8_t proof[RTRS_AUTH_PROOF_LEN])
{
	const uint8_t *p = buf;
	int16_t e;

	if (!buf || len < RTRS_AUTH_RSP_LEN || get16(p) != RTRS_MSG_AUTH_RSP)
		return -EPROTO;
	e = (int16_t)get16(p + 2);
	if (e > 0)
		return -EPROTO;
	*err = e;
	memcpy(nonce, p + 8, RTRS_AUTH_NONCE_LEN);
	memcpy(proof, p + 40, RTRS_AUTH_PROOF_LEN);
	return 0;
}

size_t rtrs__proto_info_rsp_encode(void *buf, size_t cap,
				   const struct rtrs_sg_desc *desc, uint16_t n)
{
	uint8_t *p = buf;
	size_t need = RTRS_INFO_RSP_LEN(n);

	if (cap < need)
		return 0;
	memset(p, 0, 8);
	put16(p, RTRS_MSG_INFO_RSP);
	put16(p + 2, n);
	for (uint16_t i = 0; i < n; i++)
		put_desc(p + 8 + 16u * i, &desc[i]);
	return need;
}

size_t rtrs__proto_info_rsp_refuse_encode(void *buf, int err)
{
	uint8_t *p = buf;

	if (err >= 0 || err < -32767)
		err = -EIO;
	memset(p, 0, 8);
	put16(p, RTRS_MSG_INFO_RSP);
	put16(p + 4, (uint16_t)(int16_t)err);
	return 8;
}

int rtrs__proto_info_rsp_decode(const void *buf, size_t len,
				const struct rtrs_geom *g,
				void (*fn)(void *arg, uint32_t chunk,
					   uint64_t addr, uint32_t key),
				void *arg)
{
	const uint8_t *p = buf;
	uint16_t n;
	uint64_t total = 0;
	uint32_t chunk = 0;

	if (!buf || len < 8 || get16(p) != RTRS_MSG_INFO_RSP)
		return -EPROTO;
	n = get16(p + 2);
	if (n == 0) {
		int16_t e = (int16_t)get16(p + 4);

		return e < 0 ? e : -EPROTO;
	}
	if (len < RTRS_INFO_RSP_LEN(n) || g->queue_depth % n)
		return -EPROTO;
	for (uint16_t i = 0; i < n; i++) {
		struct rtrs_sg_desc d;

		get_desc(p + 8 + 16u * i, &d);
		if (d.len == 0 || d.len % g->chunk_size)
			return -EPROTO;
		total += d.len;
	}
	if (total != (uint64_t)g->chunk_size * g->queue_depth)
		return -EPROTO;
	for (uint16_t i = 0; i < n; i++) {
		struct rtrs_sg_desc d;

		get_desc(p + 8 + 16u * i, &d);
		for (uint32_t k = 0; k < d.len / g->chunk_size; k++)
			fn(arg, chunk++, d.addr + (uint64_t)k * g->chunk_size,
			   d.key);
	}
	return 0;
}

void rtrs__proto_rkey_rsp_encode(void *buf, uint16_t buf_id, uint32_t rkey)
{
	uint8_t *p = buf;

	put16(p, RTRS_MSG_RKEY_RSP);
	put16(p + 2, buf_id);
	put32(p + 4, rkey);
}

int rtrs__proto_rkey_rsp_decode(const void *buf, size_t len,
				uint32_t queue_depth, uint16_t *buf_id,
				uint32_t *rkey)
{
	const uint8_t *p = buf;

	if (!buf || len < RTRS_RKEY_RSP_LEN || get16(p) != RTRS_MSG_RKEY_RSP)
		return -EPROTO;
	if (get16(p + 2) >= queue_depth)
		return -EPROTO;
	*buf_id = get16(p + 2);
	*rkey = get32(p + 4);
	return 0;
}

size_t rtrs__proto_write_msg_encode(void *buf, uint16_t usr_len)
{
	uint8_t *p = buf;

	put16(p, RTRS_MSG_WRITE);
	put16(p + 2, usr_len);
	return RTRS_WRITE_MSG_LEN;
}

size_t rtrs__proto_read_msg_encode(void *buf, uint16_t usr_len,
				   const struct rtrs_sg_desc *desc,
				   uint16_t sg_cnt)
{
	uint8_t *p = buf;

	put16(p, RTRS_MSG_READ);
	put16(p + 2, usr_len);
	put16(p + 4, 0);
	put16(p + 6, sg_cnt);
	for (uint16_t i = 0; i < sg_cnt; i++)
		put_desc(p + 8 + 16u * i, &desc[i]);
	return RTRS_READ_MSG_LEN(sg_cnt);
}

size_t rtrs__proto_fence_encode(void *buf, const struct rtrs_fence *f)
{
	uint8_t *p = buf;

	put32(p, f->seq);
	put32(p + 4, f->fence_path);
	put16(p + 8, f->flags);
	put16(p + 10, 0);
	return RTRS_FENCE_LEN;
}

int rtrs__proto_io_msg_decode(const void *chunk, const struct rtrs_geom *g,
			      uint32_t off, bool fenced, struct rtrs_io_msg *m)
{
	const uint8_t *p = (const uint8_t *)chunk + off;
	uint64_t end;
	uint16_t type, usr_len;

	/* The header area: the message starts at data_len + usr_len. */
	if (off >= g->chunk_size || g->chunk_size - off < 4)
		return -EPROTO;
	type = get16(p);
	usr_len = get16(p + 2);
	if (usr_len > off)
		return -EPROTO;
	m->usr_len = usr_len;
	m->usr_off = off - usr_len;
	m->data_len = off - usr_len;
	if (m->data_len > g->max_io_size)
		return -EMSGSIZE;
	m->sg_cnt = 0;
	m->flags = 0;
	m->desc_off = 0;
	m->seq = 0;
	m->fence_path = 0;
	m->fence_flags = 0;
	switch (type) {
	case RTRS_MSG_WRITE:
		m->type = RTRS_MSG_WRITE;
		end = (uint64_t)off + RTRS_WRITE_MSG_LEN;
		break;
	case RTRS_MSG_READ: {
		uint16_t flags, sg;
		uint64_t sum = 0;

		if (g->chunk_size - off < 8)
			return -EPROTO;
		flags = get16(p + 4);
		sg = get16(p + 6);
		if (flags & ~(uint16_t)RTRS_MSG_NEED_INVAL_F)
			return -EPROTO;
		if (sg > RTRS_PROTO_MAX_READ_DESC)
			return -EPROTO;
		end = (uint64_t)off + RTRS_READ_MSG_LEN(sg);
		if (end > g->chunk_size)
			return -EPROTO;
		m->type = RTRS_MSG_READ;
		m->sg_cnt = sg;
		m->flags = flags;
		m->desc_off = (uint64_t)off + 8;
		for (uint16_t i = 0; i < sg; i++) {
			uint32_t l = get32(p + 8 + 16u * i + 12);

			if (l == 0 || l > g->max_io_size)
				return -EPROTO;
			sum += l;
		}
		/* the data area the server fills is exactly what the
		 * descriptors ask for */
		if (sum != m->data_len)
			return -EPROTO;
		break;
	}
	default:
		return -EPROTO;
	}
	if (fenced) {
		const uint8_t *f = (const uint8_t *)chunk + end;

		if (end + RTRS_FENCE_LEN > g->chunk_size)
			return -EPROTO;
		m->seq = get32(f);
		m->fence_path = get32(f + 4);
		m->fence_flags = get16(f + 8);
		if (m->seq == 0 || get16(f + 10) ||
		    (m->fence_flags & ~(RTRS_FENCE_RETRY_F | RTRS_FENCE_PATH_F)) ||
		    (!(m->fence_flags & RTRS_FENCE_PATH_F) && m->fence_path))
			return -EPROTO;
		end += RTRS_FENCE_LEN;
	}
	if (end - m->usr_off > g->max_hdr_size)
		return -EPROTO;
	return 0;
}

int rtrs__proto_read_desc(const void *chunk, const struct rtrs_geom *g,
			  const struct rtrs_io_msg *m, unsigned i,
			  struct rtrs_sg_desc *d)
{
	if (m->type != RTRS_MSG_READ || i >= m->sg_cnt ||
	    m->desc_off + 16u * (i + 1) > g->chunk_size)
		return -EPROTO;
	get_desc((const uint8_t *)chunk + m->desc_off + 16u * i, d);
	if (d->len == 0 || d->len > g->max_io_size)
		return -EPROTO;
	return 0;
}

void rtrs__proto_frame_encode(void *buf, const struct rtrs_frame *f)
{
	uint8_t *p = buf;

	put16(p, RTRS_FRAME_MAGIC);
	p[2] = f->type;
	p[3] = f->flags;
	put32(p + 4, f->imm);
	put32(p + 8, f->key);
	put32(p + 12, f->len);
	put64(p + 16, f->off);
}

int rtrs__proto_frame_decode(const void *buf, size_t left,
			     struct rtrs_frame *f)
{
	const uint8_t *p = buf;
	unsigned flags;

	if (!buf || left < RTRS_FRAME_HDR_LEN ||
	    get16(p) != RTRS_FRAME_MAGIC)
		return -EPROTO;
	flags = p[3];
	if ((p[2] != RTRS_FRAME_MSG && p[2] != RTRS_FRAME_RMA) ||
	    (flags & ~(unsigned)(RTRS_FRAME_IMM | RTRS_FRAME_LAST)) ||
	    ((flags & RTRS_FRAME_IMM) && !(flags & RTRS_FRAME_LAST)) ||
	    get32(p + 12) > left - RTRS_FRAME_HDR_LEN)
		return -EPROTO;
	f->type = p[2];
	f->flags = (uint8_t)flags;
	f->imm = get32(p + 4);
	f->key = get32(p + 8);
	f->len = get32(p + 12);
	f->off = get64(p + 16);
	return 0;
}
