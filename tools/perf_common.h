/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Shared by rtrs-perf, its raw mode, the demo and the tests: the user
 * header of the perf protocol, block stamping and a latency histogram. */
#ifndef RTRS_PERF_COMMON_H
#define RTRS_PERF_COMMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PERF_MAGIC 0x52545053u          /* "RTPS" */

enum perf_op {
	PERF_OP_WRITE = 1,       /* store[off..off+len) = data */
	PERF_OP_READ = 2,        /* data = store[off..off+len) */
	PERF_OP_STATUS = 3,      /* answer with -arg (error passthrough) */
	PERF_OP_HDR = 4,         /* check the header's checksum, answer 0 */
};

#define PERF_F_NOCOPY 0x1       /* do not touch the store (benchmark) */

struct perf_hdr {
	uint32_t magic;
	uint32_t op;
	uint64_t off;
	uint32_t len;
	uint32_t flags;
	int32_t arg;
	uint32_t csum;          /* PERF_OP_HDR: fnv1a of the bytes after the header */
};

static inline uint32_t perf_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	while (n--) {
		h ^= *b++;
		h *= 16777619u;
	}
	return h;
}

static inline uint64_t perf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Block stamp: deterministic bytes from (block, gen, seed). */
static inline uint64_t perf_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static inline void perf_stamp(void *buf, size_t len, uint64_t block,
			      uint32_t gen, uint64_t seed)
{
	uint64_t s = perf_mix(block * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 32) ^ seed);
	uint8_t *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		s = perf_mix(s + i);
		memcpy(p + i, &s, 8);
	}
	for (; i < len; i++)
		p[i] = (uint8_t)perf_mix(s + i);
}

/* 0 if @buf holds the stamp, else the first bad byte offset + 1 */
static inline size_t perf_check(const void *buf, size_t len, uint64_t block,
				uint32_t gen, uint64_t seed)
{
	uint64_t s = perf_mix(block * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 32) ^ seed);
	const uint8_t *p = buf;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		s = perf_mix(s + i);
		if (memcmp(p + i, &s, 8))
			return i + 1;
	}
	for (; i < len; i++)
		if (p[i] != (uint8_t)perf_mix(s + i))
			return i + 1;
	return 0;
}

/* Log-linear latency histogram in ns: 48 groups x 16 sub-buckets, so a
 * value is recorded within 1/16 of itself. */
#define HIST_SUB 16
#define HIST_GROUPS 48
struct perf_hist {
	_Atomic uint64_t b[HIST_GROUPS * HIST_SUB];
	_Atomic uint64_t n;
	_Atomic uint64_t max;       /* ns */
};

static inline unsigned hist_idx(uint64_t v)
{
	unsigned g, sub;

	if (v < HIST_SUB)
		return (unsigned)v;
	/* v >= 16: v >> g is in [16, 31]; its low 4 bits pick the bucket */
	g = 63 - (unsigned)__builtin_clzll(v) - 4;
	sub = (unsigned)(v >> g) & (HIST_SUB - 1);
	if (g + 1 >= HIST_GROUPS)
		return HIST_GROUPS * HIST_SUB - 1;
	return (g + 1) * HIST_SUB + sub;
}

static inline uint64_t hist_val(unsigned idx)
{
	unsigned g = idx / HIST_SUB, sub = idx % HIST_SUB;

	if (g == 0)
		return sub;
	return ((uint64_t)(HIST_SUB | sub)) << (g - 1);
}

static inline void hist_add(struct perf_hist *h, uint64_t ns)
{
	atomic_fetch_add_explicit(&h->b[hist_idx(ns)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->n, 1, memory_order_relaxed);
	for (uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
	     ns > m && !atomic_compare_exchange_weak(&h->max, &m, ns);)
		;
}

static inline double hist_pct(struct perf_hist *h, double pct)
{
	uint64_t n = atomic_load(&h->n), want, acc = 0;

	if (!n)
		return 0;
	want = (uint64_t)(pct / 100.0 * (double)n);
	if (want >= n)
		want = n - 1;
	for (unsigned i = 0; i < HIST_GROUPS * HIST_SUB; i++) {
		acc += atomic_load_explicit(&h->b[i], memory_order_relaxed);
		if (acc > want)
			return (double)hist_val(i) / 1000.0;
	}
	return 0;
}

#endif
