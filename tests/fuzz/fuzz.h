/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Shared by the libFuzzer harnesses (tests/fuzz, docs/fuzzing.md): a
 * property that does not hold aborts with where and what, which libFuzzer
 * reports as a crash and saves the input.
 */
#ifndef RTRS_FUZZ_H
#define RTRS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: property failed: %s\n",      \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

/* A cursor over the fuzzer's input: reads past the end give zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fin_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static inline uint16_t fin_u16(struct fuzz_in *in)
{
	uint16_t v = fin_u8(in);

	return (uint16_t)(v | (uint16_t)fin_u8(in) << 8);
}

static inline uint32_t fin_u32(struct fuzz_in *in)
{
	uint32_t v = fin_u16(in);

	return v | (uint32_t)fin_u16(in) << 16;
}

/* Up to @max bytes: as many as are left. */
static inline size_t fin_bytes(struct fuzz_in *in, void *dst, size_t max)
{
	size_t k = in->n < max ? in->n : max;

	memcpy(dst, in->p, k);
	in->p += k;
	in->n -= k;
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
