/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * RTRS wire format (protocol 2.0, see docs/protocol.md).
 *
 * All multi-byte fields are little-endian. The structs document the layout
 * and are checked with _Static_assert; code never overlays them on received
 * memory: the decoders copy every field out of the buffer and validate it
 * first. Pure functions: no I/O, no allocation.
 */
#ifndef RTRS_PROTO_WIRE_H
#define RTRS_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTRS_PROTO_MAGIC 0x1BBD
#define RTRS_PROTO_VER_MAJOR 2
#define RTRS_PROTO_VER_MINOR 0
#define RTRS_PROTO_VER ((RTRS_PROTO_VER_MAJOR << 8) | RTRS_PROTO_VER_MINOR)

#define RTRS_CONN_PRIV_LEN 56          /* CM private data, both directions */
/* The significant bytes of each: a CM that carries fewer than 56 bytes
 * (libfabric's verbs provider: 55) cuts the trailing reserved bytes, which
 * are zero; a receiver reads what is missing as zero. */
#define RTRS_CONN_REQ_MIN_LEN 45       /* through flags */
#define RTRS_CONN_RSP_MIN_LEN 24       /* through path_id */
#define RTRS_PROTO_MAX_HDR 4096        /* max_hdr_size offered by our servers */
#define RTRS_PROTO_MAX_CIDS 4096       /* connections per path */
#define RTRS_PROTO_MAX_QD 65535
#define RTRS_PROTO_MIN_CHUNK 4096
#define RTRS_PROTO_MAX_CHUNK (1u << 24)
/* software RMA frames (2.6): the payload every receiver takes, and the
 * payload a receiver that says BIG takes (a 128 KiB IO with its header) */
#define RTRS_PROTO_FRAME_MIN (32u << 10)
#define RTRS_PROTO_FRAME_BIG ((128u << 10) + RTRS_PROTO_MAX_HDR)
#define RTRS_PROTO_NAME_LEN 255        /* pathname field, NUL-terminated */
#define RTRS_PROTO_MAX_READ_DESC 128   /* descriptors in one READ message */
#define RTRS_IMM_TYPE_BITS 4
#define RTRS_IMM_PAYL_BITS 28
#define RTRS_IMM_PAYL_MASK ((1u << RTRS_IMM_PAYL_BITS) - 1)
#define RTRS_RSP_ERRNO_BITS 9
#define RTRS_RSP_ID_BITS 19
#define RTRS_RSP_ERRNO_MAX ((1 << RTRS_RSP_ERRNO_BITS) - 1)

enum rtrs_msg_type {
	RTRS_MSG_INFO_REQ = 0,
	RTRS_MSG_INFO_RSP = 1,
	RTRS_MSG_WRITE = 2,
	RTRS_MSG_READ = 3,
	RTRS_MSG_RKEY_RSP = 4,
	RTRS_MSG_AUTH_REQ = 5,         /* ours: section 2.7 */
	RTRS_MSG_AUTH_RSP = 6,
};

enum rtrs_imm_type {
	RTRS_IMM_IO_REQ = 0,
	RTRS_IMM_IO_RSP = 1,
	RTRS_IMM_IO_RSP_W_INV = 2,     /* IO_RSP after a SEND_WITH_INV: only
					  to a READ with NEED_INVAL_F */
	RTRS_IMM_HB = 8,               /* heartbeat, both directions, cid 0 */
	RTRS_IMM_HB_ACK = 9,
	RTRS_IMM_CLOSE = 10,           /* client closes the session, cid 0 */
	RTRS_IMM_CLOSE_ACK = 11,       /* server: it will not linger */
};

#define RTRS_MSG_NEED_INVAL_F (1u << 0)   /* rdma_read.flags: the kernel's
					     client asks the server to
					     invalidate its one descriptor's
					     key (SEND_WITH_INV); never set
					     by us */
#define RTRS_MSG_NEW_RKEY_F (1u << 1)     /* conn_rsp.flags: always_invalidate */
#define RTRS_MSG_FENCE_F (1u << 2)        /* conn_rsp.flags: fence records */
#define RTRS_CONN_FIRST_F 0x01            /* conn_req.flags */
#define RTRS_CONN_FENCE_F 0x02            /* conn_req.flags: we send fence records */
#define RTRS_CONN_PATH_NO_F 0x04          /* conn_req.flags: path_no is set */
#define RTRS_CONN_AUTH_F 0x08             /* conn_req.flags: the client
					     authenticates (section 2.7) */
#define RTRS_MSG_AUTH_F (1u << 3)         /* conn_rsp.flags: the server
					     authenticates (section 2.7) */
#define RTRS_CONN_FRAMES_F 0x10           /* conn_req.flags: the client's
					     data path is frames (2.6) */
#define RTRS_MSG_FRAMES_F (1u << 4)       /* conn_rsp.flags: the server's
					     data path is frames (2.6) */
#define RTRS_CONN_BATCH_F 0x20            /* conn_req.flags: the client
					     takes several frames in one
					     message (2.6) */
#define RTRS_CONN_BIG_F 0x40              /* conn_req.flags: the client's
					     receives take frames of up to
					     RTRS_PROTO_FRAME_BIG (2.6) */
#define RTRS_MSG_BIG_F (1u << 5)          /* conn_rsp.flags, only to a
					     client that set BIG: so do
					     the server's (2.6) */

/* fence record flags (our extension, docs/protocol.md section 7) */
#define RTRS_FENCE_RETRY_F (1u << 0)      /* a re-issue of an earlier request */
#define RTRS_FENCE_PATH_F (1u << 1)       /* fence_path names an abandoned path */

/* ---- layouts (documentation + size checks) ---- */

struct rtrs_wire_sg_desc {            /* 16 */
	uint64_t addr;                 /* remote address (offset on tcp) */
	uint32_t key;
	uint32_t len;
};

struct rtrs_wire_conn_req {           /* 56: fi_connect private data */
	uint8_t cma_version;           /* 0 */
	uint8_t ip_version;            /* 0 */
	uint16_t magic;
	uint16_t version;
	uint16_t cid;                  /* 0 = admin */
	uint16_t cid_num;
	uint16_t recon_cnt;
	uint8_t sess_uuid[16];         /* per path */
	uint8_t paths_uuid[16];        /* per session */
	uint8_t flags;                 /* RTRS_CONN_FIRST_F */
	uint8_t reserved0;
	uint16_t path_no;              /* ours, with RTRS_CONN_PATH_NO_F: the
					  client's number of the path */
	uint8_t reserved[8];
};

struct rtrs_wire_conn_rsp {           /* 56: fi_accept / fi_reject data */
	uint16_t magic;
	uint16_t version;
	int16_t errno_;                /* 0 or -errno */
	uint16_t queue_depth;
	uint32_t max_io_size;
	uint32_t max_hdr_size;
	uint32_t flags;                /* RTRS_MSG_NEW_RKEY_F, RTRS_MSG_FENCE_F */
	uint32_t path_id;              /* ours: the server's id of this path */
	uint8_t reserved[32];
};

struct rtrs_wire_info_req {           /* 272 */
	uint16_t type;
	uint8_t pathname[RTRS_PROTO_NAME_LEN];
	uint8_t reserved[15];
};

#define RTRS_AUTH_NONCE_LEN 32
#define RTRS_AUTH_PROOF_LEN 32         /* HMAC-SHA256 */
#define RTRS_AUTH_ID_LEN 64            /* identity field, NUL-padded */

/* Ours (section 2.7): the client's first message on cid 0 of a path
 * whose conn_req had RTRS_CONN_AUTH_F. */
struct rtrs_wire_auth_req {           /* 104 */
	uint16_t type;                 /* RTRS_MSG_AUTH_REQ */
	uint8_t id_len;                /* 1..63 */
	uint8_t reserved[5];
	uint8_t nonce[RTRS_AUTH_NONCE_LEN];   /* the client's, Nc */
	uint8_t identity[RTRS_AUTH_ID_LEN];   /* id_len bytes, then zeroes */
};

/* The server's answer: its nonce and proof, or a refusal (errno < 0,
 * nonce and proof zero). */
struct rtrs_wire_auth_rsp {           /* 72 */
	uint16_t type;                 /* RTRS_MSG_AUTH_RSP */
	int16_t errno_;                /* 0 or -errno */
	uint8_t reserved[4];
	uint8_t nonce[RTRS_AUTH_NONCE_LEN];   /* the server's, Ns */
	uint8_t proof[RTRS_AUTH_PROOF_LEN];   /* the server's proof */
};

struct rtrs_wire_info_rsp {           /* 8 + 16 * sg_cnt */
	uint16_t type;
	uint16_t sg_cnt;
	uint8_t reserved[4];
	struct rtrs_wire_sg_desc desc[];
};

struct rtrs_wire_rkey_rsp {           /* 8 */
	uint16_t type;
	uint16_t buf_id;
	uint32_t rkey;
};

struct rtrs_wire_rdma_read {          /* 8 + 16 * sg_cnt */
	uint16_t type;
	uint16_t usr_len;
	uint16_t flags;
	uint16_t sg_cnt;
	struct rtrs_wire_sg_desc desc[];
};

struct rtrs_wire_rdma_write {         /* 4 */
	uint16_t type;
	uint16_t usr_len;
};

/* Ours, only when RTRS_MSG_FENCE_F was negotiated: follows the WRITE
 * message or the READ descriptors. */
struct rtrs_wire_fence {              /* 12 */
	uint32_t seq;                  /* per-permit sequence number, != 0 */
	uint32_t fence_path;           /* server path id, with RTRS_FENCE_PATH_F */
	uint16_t flags;                /* RTRS_FENCE_* */
	uint16_t reserved;
};

_Static_assert(sizeof(struct rtrs_wire_sg_desc) == 16, "sg_desc");
_Static_assert(sizeof(struct rtrs_wire_conn_req) == RTRS_CONN_PRIV_LEN, "conn_req");
_Static_assert(offsetof(struct rtrs_wire_conn_req, sess_uuid) == 12, "conn_req");
_Static_assert(offsetof(struct rtrs_wire_conn_req, paths_uuid) == 28, "conn_req");
_Static_assert(offsetof(struct rtrs_wire_conn_req, flags) == 44, "conn_req");
_Static_assert(offsetof(struct rtrs_wire_conn_req, path_no) == 46, "conn_req");
_Static_assert(sizeof(struct rtrs_wire_conn_rsp) == RTRS_CONN_PRIV_LEN, "conn_rsp");
_Static_assert(offsetof(struct rtrs_wire_conn_rsp, max_io_size) == 8, "conn_rsp");
_Static_assert(offsetof(struct rtrs_wire_conn_rsp, flags) == 16, "conn_rsp");
_Static_assert(sizeof(struct rtrs_wire_info_req) == 272, "info_req");
_Static_assert(offsetof(struct rtrs_wire_info_req, pathname) == 2, "info_req");
_Static_assert(sizeof(struct rtrs_wire_info_rsp) == 8, "info_rsp");
_Static_assert(sizeof(struct rtrs_wire_auth_req) == 104, "auth_req");
_Static_assert(offsetof(struct rtrs_wire_auth_req, nonce) == 8, "auth_req");
_Static_assert(offsetof(struct rtrs_wire_auth_req, identity) == 40, "auth_req");
_Static_assert(sizeof(struct rtrs_wire_auth_rsp) == 72, "auth_rsp");
_Static_assert(offsetof(struct rtrs_wire_auth_rsp, nonce) == 8, "auth_rsp");
_Static_assert(offsetof(struct rtrs_wire_auth_rsp, proof) == 40, "auth_rsp");
_Static_assert(sizeof(struct rtrs_wire_rkey_rsp) == 8, "rkey_rsp");
_Static_assert(sizeof(struct rtrs_wire_rdma_read) == 8, "rdma_read");
_Static_assert(sizeof(struct rtrs_wire_rdma_write) == 4, "rdma_write");
_Static_assert(sizeof(struct rtrs_wire_fence) == 12, "fence");
_Static_assert(offsetof(struct rtrs_wire_conn_rsp, path_id) == 20, "conn_rsp");

#define RTRS_INFO_REQ_LEN ((size_t)sizeof(struct rtrs_wire_info_req))
/* an info_req on an authenticated path: the 272 bytes, then the
 * client's proof */
#define RTRS_INFO_REQ_AUTH_LEN (RTRS_INFO_REQ_LEN + RTRS_AUTH_PROOF_LEN)
#define RTRS_AUTH_REQ_LEN ((size_t)sizeof(struct rtrs_wire_auth_req))
#define RTRS_AUTH_RSP_LEN ((size_t)sizeof(struct rtrs_wire_auth_rsp))
#define RTRS_INFO_RSP_LEN(n) (sizeof(struct rtrs_wire_info_rsp) + 16u * (size_t)(n))
#define RTRS_RKEY_RSP_LEN ((size_t)sizeof(struct rtrs_wire_rkey_rsp))
#define RTRS_READ_MSG_LEN(n) (sizeof(struct rtrs_wire_rdma_read) + 16u * (size_t)(n))
#define RTRS_WRITE_MSG_LEN ((size_t)sizeof(struct rtrs_wire_rdma_write))
#define RTRS_FENCE_LEN ((size_t)sizeof(struct rtrs_wire_fence))

/* ---- decoded, host-order forms ---- */

struct rtrs_sg_desc {
	uint64_t addr;
	uint32_t key;
	uint32_t len;
};

struct rtrs_conn_req {
	uint16_t cid, cid_num, recon_cnt;
	uint8_t sess_uuid[16];
	uint8_t paths_uuid[16];
	bool first_conn;
	bool fence;                    /* the client sends fence records */
	bool has_path_no;              /* path_no is the client's number */
	bool auth;                     /* the client authenticates (2.7) */
	bool frames;                   /* software RMA frames (2.6) */
	bool batch;                    /* ... and takes them batched */
	bool big;                      /* ... and up to RTRS_PROTO_FRAME_BIG */
	uint16_t path_no;
};

struct rtrs_conn_rsp {
	int err;                       /* 0 or -errno */
	uint16_t queue_depth;
	uint32_t max_io_size;
	uint32_t max_hdr_size;
	uint32_t flags;
	uint32_t path_id;
};

/* Chunk geometry both sides derive from the handshake. */
struct rtrs_geom {
	uint32_t queue_depth;
	uint32_t max_io_size;          /* data bytes per request */
	uint32_t max_hdr_size;         /* header area bytes per chunk */
	uint32_t chunk_size;           /* stride = max_io_size + max_hdr_size */
	unsigned mem_bits;             /* offset bits in an IO_REQ payload */
};

/* An IO request message as the server reads it out of a chunk. */
struct rtrs_io_msg {
	enum rtrs_msg_type type;       /* WRITE or READ */
	uint32_t data_len;             /* bytes of data at the chunk start */
	uint32_t usr_off, usr_len;     /* user header inside the chunk */
	uint16_t sg_cnt;               /* READ: descriptors */
	uint16_t flags;                /* READ: RTRS_MSG_NEED_INVAL_F */
	uint64_t desc_off;             /* READ: offset of desc[0] in the chunk */
	/* the fence record, when decoded with fenced = true */
	uint32_t seq, fence_path;
	uint16_t fence_flags;
};

struct rtrs_fence {
	uint32_t seq;
	uint32_t fence_path;
	uint16_t flags;
};

/* ---- functions: all return 0 or -errno (-EPROTO, -EINVAL, -EMSGSIZE) ---- */

static inline uint32_t rtrs_imm(unsigned type, uint32_t payload)
{
	return ((uint32_t)(type & 0xF) << RTRS_IMM_PAYL_BITS) |
	       (payload & RTRS_IMM_PAYL_MASK);
}
static inline unsigned rtrs_imm_type(uint32_t imm)
{
	return imm >> RTRS_IMM_PAYL_BITS;
}
static inline uint32_t rtrs_imm_payload(uint32_t imm)
{
	return imm & RTRS_IMM_PAYL_MASK;
}

/* Number of bits needed to hold values 0..n-1 (ceil(log2(n))); 0 for n <= 1. */
unsigned rtrs__proto_bits(uint32_t n);

/* Validate and fill @g from (qd, max_io, max_hdr). -EINVAL if they don't fit
 * the 28-bit immediate or the limits above. */
int rtrs__proto_geom(struct rtrs_geom *g, uint32_t queue_depth,
		     uint32_t max_io_size, uint32_t max_hdr_size);

uint32_t rtrs__proto_io_req_imm(const struct rtrs_geom *g, uint32_t chunk_id,
				uint32_t off);
int rtrs__proto_io_req_decode(const struct rtrs_geom *g, uint32_t payload,
			      uint32_t *chunk_id, uint32_t *off);
/* status is 0 or -errno; magnitudes above 511 are encoded as EIO. */
uint32_t rtrs__proto_io_rsp_imm(uint32_t msg_id, int status);
int rtrs__proto_io_rsp_decode(uint32_t payload, uint32_t queue_depth,
			      uint32_t *msg_id, int *status);

void rtrs__proto_conn_req_encode(void *buf, const struct rtrs_conn_req *r);
int rtrs__proto_conn_req_decode(const void *buf, size_t len,
				struct rtrs_conn_req *r);
void rtrs__proto_conn_rsp_encode(void *buf, const struct rtrs_conn_rsp *r);
int rtrs__proto_conn_rsp_decode(const void *buf, size_t len,
				struct rtrs_conn_rsp *r);

/* Session names: 1..RTRS_PROTO_NAME_LEN-1 bytes, no '/' or '.', printable. */
int rtrs__proto_name_valid(const char *name);

void rtrs__proto_info_req_encode(void *buf, const char *name);
/* @name gets the NUL-terminated, validated name (RTRS_PROTO_NAME_LEN bytes). */
int rtrs__proto_info_req_decode(const void *buf, size_t len, char *name);
/* The client's proof after the 272 bytes of an authenticated info_req
 * (RTRS_INFO_REQ_AUTH_LEN): -EPROTO when it is shorter. */
int rtrs__proto_info_req_proof(const void *buf, size_t len,
			       uint8_t proof[RTRS_AUTH_PROOF_LEN]);

/* The type of an admin message (cid 0, no immediate), -EPROTO if it has
 * none. */
int rtrs__proto_msg_type(const void *buf, size_t len);

/* An identity: 1..63 bytes of 0x21..0x7e. 0 or -EINVAL. */
int rtrs__proto_identity_valid(const char *id);
/* auth_req (section 2.7): encode RTRS_AUTH_REQ_LEN bytes; decode checks
 * the type, the length, the identity's rules and that the bytes after it
 * are zero (-EPROTO, -EINVAL for a bad identity); @id gets
 * RTRS_AUTH_ID_LEN bytes, NUL-terminated. */
void rtrs__proto_auth_req_encode(void *buf,
				 const uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				 const char *id);
int rtrs__proto_auth_req_decode(const void *buf, size_t len,
				uint8_t nonce[RTRS_AUTH_NONCE_LEN], char *id);
/* auth_rsp: @err 0 with nonce and proof, or a negative errno (a refusal:
 * nonce and proof are sent as zeroes, NULL allowed). Decode: -EPROTO for
 * a malformed message; a refusal decodes to 0 with *err < 0. */
size_t rtrs__proto_auth_rsp_encode(void *buf, int err,
				   const uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				   const uint8_t proof[RTRS_AUTH_PROOF_LEN]);
int rtrs__proto_auth_rsp_decode(const void *buf, size_t len, int *err,
				uint8_t nonce[RTRS_AUTH_NONCE_LEN],
				uint8_t proof[RTRS_AUTH_PROOF_LEN]);

size_t rtrs__proto_info_rsp_encode(void *buf, size_t cap,
				   const struct rtrs_sg_desc *desc, uint16_t n);
/* A refusal: sg_cnt 0 and the reason as le16 -errno in reserved[0..1]
 * (our extension; a kernel client rejects sg_cnt 0 as malformed). */
size_t rtrs__proto_info_rsp_refuse_encode(void *buf, int err);
/* Validates against @g (kernel rules) and calls @fn for each chunk with its
 * (addr, key); calls nothing on error. Returns the server's -errno for a
 * refusal. */
int rtrs__proto_info_rsp_decode(const void *buf, size_t len,
				const struct rtrs_geom *g,
				void (*fn)(void *arg, uint32_t chunk,
					   uint64_t addr, uint32_t key),
				void *arg);

void rtrs__proto_rkey_rsp_encode(void *buf, uint16_t buf_id, uint32_t rkey);
int rtrs__proto_rkey_rsp_decode(const void *buf, size_t len,
				uint32_t queue_depth, uint16_t *buf_id,
				uint32_t *rkey);

/* Client side: the message written after the user header. */
size_t rtrs__proto_write_msg_encode(void *buf, uint16_t usr_len);
size_t rtrs__proto_read_msg_encode(void *buf, uint16_t usr_len,
				   const struct rtrs_sg_desc *desc,
				   uint16_t sg_cnt);

/* Client side: the fence record written right after the message. */
size_t rtrs__proto_fence_encode(void *buf, const struct rtrs_fence *f);

/* Server side: parse the request whose message starts at @off in @chunk
 * (g->chunk_size bytes). Every field is checked against the chunk. With
 * @fenced the message is followed by a fence record (seq != 0, known
 * flags, fence_path only with RTRS_FENCE_PATH_F). */
int rtrs__proto_io_msg_decode(const void *chunk, const struct rtrs_geom *g,
			      uint32_t off, bool fenced, struct rtrs_io_msg *m);
/* READ descriptor @i of a decoded message; len checked to be 1..max_io. */
int rtrs__proto_read_desc(const void *chunk, const struct rtrs_geom *g,
			  const struct rtrs_io_msg *m, unsigned i,
			  struct rtrs_sg_desc *d);

/*
 * Software-RMA frames (2.6): every message of a connection whose data path
 * is frames is one or more of these, back to back. The header, 24 bytes:
 * le16 magic, u8 type, u8 flags, le32 imm, le32 key, le32 len, le64 off;
 * then len bytes of payload.
 */
#define RTRS_FRAME_MAGIC 0x5753
#define RTRS_FRAME_HDR_LEN 24
enum rtrs_frame_type {
	RTRS_FRAME_MSG = 1,            /* a message of the core */
	RTRS_FRAME_RMA = 2,            /* data for a registration */
};
#define RTRS_FRAME_IMM 0x1             /* imm is valid; only with LAST */
#define RTRS_FRAME_LAST 0x2            /* the last frame of a message/write */

struct rtrs_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t imm;
	uint32_t key;                  /* RMA: the target registration */
	uint32_t len;                  /* payload bytes after the header */
	uint64_t off;                  /* RMA: offset in the registration;
					  MSG: this payload's place in the
					  message */
};

void rtrs__proto_frame_encode(void *buf, const struct rtrs_frame *f);
/* The frame whose header is at @buf, with @left bytes of the message from
 * @buf on: 0 with @f filled when the header is whole, the magic ours, the
 * type and flags known (IMM only with LAST) and the payload within @left;
 * -EPROTO otherwise. What the frame may do (its key, its offset, the
 * message it adds to) is the receiver's to check. */
int rtrs__proto_frame_decode(const void *buf, size_t left,
			     struct rtrs_frame *f);

#endif /* RTRS_PROTO_WIRE_H */
