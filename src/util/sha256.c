/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* SHA-256 as FIPS 180-4 section 6.2 says it; HMAC as RFC 2104. */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, k;

	for (unsigned i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (unsigned i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^
			      (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^
			      (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0]; b = h[1]; c = h[2]; d = h[3];
	e = h[4]; f = h[5]; g = h[6]; k = h[7];
	for (unsigned i = 0; i < 64; i++) {
		uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
			      ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
			      ((a & b) ^ (a & c) ^ (b & c));

		k = g; g = f; f = e; e = d + t1;
		d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d;
	h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void rtrs__sha256_init(struct rtrs_sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->n = 0;
}

void rtrs__sha256_update(struct rtrs_sha256 *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	c->len += len;
	while (len) {
		size_t take = RTRS_SHA256_BLOCK - c->n;

		if (take > len)
			take = len;
		memcpy(c->buf + c->n, p, take);
		c->n += take;
		p += take;
		len -= take;
		if (c->n == RTRS_SHA256_BLOCK) {
			block(c->h, c->buf);
			c->n = 0;
		}
	}
}

void rtrs__sha256_final(struct rtrs_sha256 *c, uint8_t out[RTRS_SHA256_LEN])
{
	uint64_t bits = c->len * 8;

	c->buf[c->n++] = 0x80;
	if (c->n > RTRS_SHA256_BLOCK - 8) {
		memset(c->buf + c->n, 0, RTRS_SHA256_BLOCK - c->n);
		block(c->h, c->buf);
		c->n = 0;
	}
	memset(c->buf + c->n, 0, RTRS_SHA256_BLOCK - 8 - c->n);
	for (unsigned i = 0; i < 8; i++)
		c->buf[RTRS_SHA256_BLOCK - 1 - i] = (uint8_t)(bits >> (8 * i));
	block(c->h, c->buf);
	for (unsigned i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->h[i];
	}
	rtrs__memzero(c, sizeof(*c));
}

void rtrs__sha256(const void *data, size_t len, uint8_t out[RTRS_SHA256_LEN])
{
	struct rtrs_sha256 c;

	rtrs__sha256_init(&c);
	rtrs__sha256_update(&c, data, len);
	rtrs__sha256_final(&c, out);
}

void rtrs__hmac_init(struct rtrs_hmac *h, const void *key, size_t klen)
{
	uint8_t k[RTRS_SHA256_BLOCK] = { 0 }, pad[RTRS_SHA256_BLOCK];

	if (klen > RTRS_SHA256_BLOCK)
		rtrs__sha256(key, klen, k);
	else if (klen)
		memcpy(k, key, klen);
	for (unsigned i = 0; i < RTRS_SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	rtrs__sha256_init(&h->inner);
	rtrs__sha256_update(&h->inner, pad, sizeof(pad));
	for (unsigned i = 0; i < RTRS_SHA256_BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	rtrs__sha256_init(&h->outer);
	rtrs__sha256_update(&h->outer, pad, sizeof(pad));
	rtrs__memzero(k, sizeof(k));
	rtrs__memzero(pad, sizeof(pad));
}

void rtrs__hmac_update(struct rtrs_hmac *h, const void *data, size_t len)
{
	rtrs__sha256_update(&h->inner, data, len);
}

void rtrs__hmac_final(struct rtrs_hmac *h, uint8_t out[RTRS_SHA256_LEN])
{
	uint8_t in[RTRS_SHA256_LEN];

	rtrs__sha256_final(&h->inner, in);
	rtrs__sha256_update(&h->outer, in, sizeof(in));
	rtrs__sha256_final(&h->outer, out);
	rtrs__memzero(in, sizeof(in));
}

int rtrs__memeq_ct(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d != 0;
}

void rtrs__memzero(void *p, size_t n)
{
	volatile uint8_t *v = p;

	while (n--)
		*v++ = 0;
}
