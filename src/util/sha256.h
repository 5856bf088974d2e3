/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for the authentication
 * of docs/protocol.md section 2.7. Written for this library; tested with
 * the FIPS 180-4 and RFC 4231 vectors (tests/unit/test_auth.c). */
#ifndef RTRS_UTIL_SHA256_H
#define RTRS_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define RTRS_SHA256_LEN 32
#define RTRS_SHA256_BLOCK 64

struct rtrs_sha256 {
	uint32_t h[8];
	uint64_t len;                  /* bytes hashed */
	uint8_t buf[RTRS_SHA256_BLOCK];
	size_t n;                      /* bytes in buf */
};

void rtrs__sha256_init(struct rtrs_sha256 *c);
void rtrs__sha256_update(struct rtrs_sha256 *c, const void *data, size_t len);
void rtrs__sha256_final(struct rtrs_sha256 *c, uint8_t out[RTRS_SHA256_LEN]);
void rtrs__sha256(const void *data, size_t len, uint8_t out[RTRS_SHA256_LEN]);

struct rtrs_hmac {
	struct rtrs_sha256 inner, outer;
};

/* Keys longer than a block are hashed first, as RFC 2104 says. */
void rtrs__hmac_init(struct rtrs_hmac *h, const void *key, size_t klen);
void rtrs__hmac_update(struct rtrs_hmac *h, const void *data, size_t len);
void rtrs__hmac_final(struct rtrs_hmac *h, uint8_t out[RTRS_SHA256_LEN]);

/* 0 when the @n bytes are equal; the time does not depend on where they
 * differ. */
int rtrs__memeq_ct(const void *a, const void *b, size_t n);

/* Overwrite @n bytes at @p with zeroes in a way the compiler keeps. */
void rtrs__memzero(void *p, size_t n);

#endif
