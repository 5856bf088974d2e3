/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * RNBD messages (docs/rnbd-protocol.md): the kernel's layouts, carried as
 * librtrs user headers. Pure functions: encoders write the little-endian
 * wire bytes, decoders check every field and return 0 or a negative errno
 * (-EPROTO for a malformed message).
 */
#ifndef RNBD_PROTO_H
#define RNBD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RNBD_PROTO_VER_MAJOR 2
#define RNBD_PROTO_VER_MINOR 2       /* PREFLUSH (1), NOUNMAP (2) */

enum rnbd_msg_type {
	RNBD_MSG_SESS_INFO = 0,
	RNBD_MSG_SESS_INFO_RSP = 1,
	RNBD_MSG_OPEN = 2,
	RNBD_MSG_OPEN_RSP = 3,
	RNBD_MSG_IO = 4,
	RNBD_MSG_CLOSE = 5,
	/* ours, not the kernel's: a listing of the server's exports */
	RNBD_MSG_LIST = 100,
	RNBD_MSG_LIST_RSP = 101,
};

/* wire sizes */
#define RNBD_HDR_LEN 4
#define RNBD_SESS_INFO_LEN 36
#define RNBD_SESS_INFO_RSP_LEN 36
#define RNBD_OPEN_LEN 264
#define RNBD_OPEN_RSP_LEN 56
#define RNBD_CLOSE_LEN 8
#define RNBD_IO_LEN 32
#define RNBD_LIST_LEN 8
#define RNBD_LIST_RSP_HDR 12
#define RNBD_NAME_MAX 254            /* dev_name[255] holds a NUL */

/* the rw field of an IO: operation in bits 0..7, flags above */
#define RNBD_OP_BITS 8
#define RNBD_OP_MASK ((1u << RNBD_OP_BITS) - 1)
enum rnbd_wire_op {
	RNBD_OP_READ = 0,
	RNBD_OP_WRITE = 1,
	RNBD_OP_FLUSH = 2,
	RNBD_OP_DISCARD = 3,
	RNBD_OP_SECURE_ERASE = 4,
	RNBD_OP_WRITE_ZEROES = 5,
};
#define RNBD_F_SYNC (1u << 8)
#define RNBD_F_FUA (1u << 9)
#define RNBD_F_PREFLUSH (1u << 10)
#define RNBD_F_NOUNMAP (1u << 11)
#define RNBD_F_ALL (RNBD_F_SYNC | RNBD_F_FUA | RNBD_F_PREFLUSH | RNBD_F_NOUNMAP)

/* open_rsp cache_policy bits */
#define RNBD_CACHE_FUA (1u << 0)
#define RNBD_CACHE_WRITEBACK (1u << 1)

struct rnbd_open_rsp {
	uint32_t device_id;
	uint64_t nsectors;           /* 512-byte sectors */
	uint32_t max_hw_sectors;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_discard_sectors;
	uint32_t discard_granularity;
	uint32_t discard_alignment;
	uint16_t physical_block_size;
	uint16_t logical_block_size;
	uint16_t max_segments;
	uint16_t secure_discard;
	uint8_t cache_policy;
};

struct rnbd_io {
	uint32_t device_id;
	uint64_t sector;
	uint32_t rw;                 /* op | flags */
	uint32_t bi_size;            /* bytes */
	uint16_t prio;
};

/* The type of a message (its header), or -EPROTO. */
int rnbd_proto_type(const void *buf, size_t len);

size_t rnbd_proto_sess_info_encode(void *buf, enum rnbd_msg_type type,
				   uint8_t ver);
/* SESS_INFO or SESS_INFO_RSP (@type) with reserved bytes zero. */
int rnbd_proto_sess_info_decode(const void *buf, size_t len,
				enum rnbd_msg_type type, uint8_t *ver);

/* @name: 1..RNBD_NAME_MAX bytes (-EINVAL otherwise). */
int rnbd_proto_open_encode(void *buf, uint8_t access_mode, const char *name);
/* @name gets the NUL-terminated name (RNBD_NAME_MAX + 1 bytes); access
 * mode 0..2, name non-empty and NUL-terminated in its field. */
int rnbd_proto_open_decode(const void *buf, size_t len, uint8_t *access_mode,
			   char *name);

size_t rnbd_proto_open_rsp_encode(void *buf, const struct rnbd_open_rsp *r);
int rnbd_proto_open_rsp_decode(const void *buf, size_t len,
			       struct rnbd_open_rsp *r);

size_t rnbd_proto_close_encode(void *buf, uint32_t device_id);
int rnbd_proto_close_decode(const void *buf, size_t len, uint32_t *device_id);

/* LIST: hdr | le32 reserved (0). LIST_RSP: hdr | le32 count | le32 length
 * of the entries | entries: u8 flags | u8 name length | name bytes. */
#define RNBD_LIST_F_RO (1u << 0)      /* read-only export */
#define RNBD_LIST_F_DIR (1u << 1)     /* a file of the export directory */
size_t rnbd_proto_list_encode(void *buf);
int rnbd_proto_list_decode(const void *buf, size_t len);
/* Start a response in @buf of @cap bytes; add entries; -ENOSPC when full. */
void rnbd_proto_list_rsp_init(void *buf);
int rnbd_proto_list_rsp_add(void *buf, size_t cap, const char *name,
			    uint8_t flags);
/* Walk a response: @fn per entry (name NUL-terminated); the count, or
 * -EPROTO for a malformed one. */
int rnbd_proto_list_rsp_decode(const void *buf, size_t len,
			       void (*fn)(void *priv, const char *name,
					  uint8_t flags),
			       void *priv);

size_t rnbd_proto_io_encode(void *buf, const struct rnbd_io *io);
/* Structure only (known op and flag bits, NOUNMAP only on WRITE_ZEROES);
 * the server checks sizes against the device. */
int rnbd_proto_io_decode(const void *buf, size_t len, struct rnbd_io *io);

#endif
