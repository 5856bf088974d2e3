// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Unit tests of src/fabric/keytab.c, the software-RMA key table: keys
 * random, nonzero and unique; a frame lands exactly where it says, or not
 * at all: unknown key, no remote write access, another scope (-EACCES),
 * outside the region, also where off + len wraps (-ERANGE); a deleted key
 * is unknown; rma_begin holds the table until rma_end, and a delete waits
 * for it. With the lock checks on (util/lock.h), as in the ASan build. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fabric/fabric.h"
#include "fabric/keytab.h"
#include "util/lock.h"

#define RANK 520                /* the libfabric backend's (ofi.h) */
#define REG 64                  /* bytes of the test registration */
#define GUARD 64                /* canary bytes either side of it */
#define CANARY 0xa5

static struct fab_keytab tab;
/* the registration: mem[GUARD, GUARD + REG), canaries around it */
static uint8_t mem[GUARD + REG + GUARD];
static struct fab_key reg;
static int scope_a, scope_b;      /* their addresses: two paths */

static int setup(void **st)
{
	(void)st;
	rtrs__lock_check_set(1);
	assert_int_equal(rtrs__fab_keytab_init(&tab, RANK, "test.keys"), 0);
	memset(mem, CANARY, sizeof(mem));
	memset(&reg, 0, sizeof(reg));
	reg.access = FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE;
	reg.scope = &scope_a;
	reg.base = mem + GUARD;
	reg.len = REG;
	rtrs__fab_keytab_add(&tab, &reg);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	rtrs__fab_keytab_del(&tab, &reg);
	rtrs__fab_keytab_fini(&tab);
	return 0;
}

/* Every byte of mem is the canary. */
static void assert_untouched(void)
{
	for (size_t i = 0; i < sizeof(mem); i++)
		if (mem[i] != CANARY)
			fail_msg("byte %d of the region changed",
				 (int)i - GUARD);
}

static int rma(uint64_t off, uint32_t len)
{
	static uint8_t src[2 * REG];

	memset(src, 0x3c, sizeof(src));
	assert_true(len <= sizeof(src));
	return rtrs__fab_keytab_rma_in(&tab, &scope_a, reg.key, off, src,
				       len);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* 1000 registrations: keys nonzero and unique, each one found. */
static void test_keys_unique(void **st)
{
	enum { N = 1000 };
	static struct fab_key ks[N];
	static uint32_t keys[N];
	uint8_t byte = 0;

	(void)st;
	for (unsigned i = 0; i < N; i++) {
		ks[i] = (struct fab_key){
			.access = FAB_ACC_REMOTE_WRITE, .base = &byte,
			.len = 1 };
		rtrs__fab_keytab_add(&tab, &ks[i]);
		assert_int_not_equal(ks[i].key, 0);
		keys[i] = ks[i].key;
	}
	qsort(keys, N, sizeof(keys[0]), cmp_u32);
	for (unsigned i = 1; i < N; i++)
		assert_int_not_equal(keys[i - 1], keys[i]);
	assert_int_not_equal(reg.key, 0);
	assert_null(bsearch(&reg.key, keys, N, sizeof(keys[0]), cmp_u32));
	for (unsigned i = 0; i < N; i++) {
		uint8_t v = (uint8_t)i;

		assert_int_equal(rtrs__fab_keytab_rma_in(&tab, NULL, ks[i].key,
							 0, &v, 1), 0);
		assert_int_equal(byte, v);
	}
	for (unsigned i = 0; i < N; i++)
		rtrs__fab_keytab_del(&tab, &ks[i]);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(rtrs__fab_keytab_rma_in(&tab, NULL, ks[i].key,
							 0, &byte, 1),
				 -EACCES);
	/* the first registration is still there */
	assert_int_equal(rma(0, 0), 0);
}

/* The bytes land exactly at [off, off + len), nothing around them. */
static void test_lands(void **st)
{
	uint8_t src[REG], want[sizeof(mem)];

	(void)st;
	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 1);
	memset(want, CANARY, sizeof(want));
	memcpy(want + GUARD + 8, src, 16);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, reg.key, 8,
						 src, 16), 0);
	assert_memory_equal(mem, want, sizeof(mem));
	/* the whole region, first byte to last */
	memcpy(want + GUARD, src, REG);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, reg.key, 0,
						 src, REG), 0);
	assert_memory_equal(mem, want, sizeof(mem));
}

/* Unknown key, no remote write access, another scope: -EACCES, nothing
 * lands. */
static void test_access(void **st)
{
	struct fab_key local = { .access = FAB_ACC_LOCAL, .scope = &scope_a,
				 .base = mem + GUARD, .len = REG };
	uint8_t src[8] = { 0 };
	uint32_t other = reg.key ^ 1;

	(void)st;
	if (!other)
		other = 2;
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, other, 0,
						 src, 8), -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, 0, 0, src, 8),
			 -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, 0, 0, src, 0),
			 -EACCES);
	/* a registration without FAB_ACC_REMOTE_WRITE */
	rtrs__fab_keytab_add(&tab, &local);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, local.key, 0,
						 src, 8), -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, local.key, 0,
						 src, 0), -EACCES);
	rtrs__fab_keytab_del(&tab, &local);
	/* another path's, and no path's */
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_b, reg.key, 0,
						 src, 8), -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, NULL, reg.key, 0, src,
						 8), -EACCES);
	assert_untouched();
	/* the right one */
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, reg.key, 0,
						 src, 8), 0);
}

/* off <= len && n <= len - off: the edges, and sums that wrap. */
static void test_range(void **st)
{
	(void)st;
	assert_int_equal(rma(REG, 0), 0);               /* off == len, 0 */
	assert_int_equal(rma(0, 0), 0);
	assert_untouched();
	assert_int_equal(rma(REG + 1, 0), -ERANGE);     /* off > len */
	assert_int_equal(rma(REG - 4, 5), -ERANGE);     /* one past */
	assert_int_equal(rma(0, REG + 1), -ERANGE);
	assert_int_equal(rma(REG, 1), -ERANGE);
	/* off + len wraps to 4, then to 0 (hostile.server's frame) */
	assert_int_equal(rma(UINT64_MAX - 3, 8), -ERANGE);
	assert_int_equal(rma(UINT64_MAX - 31, 32), -ERANGE);
	assert_int_equal(rma(UINT64_MAX, 1), -ERANGE);
	assert_int_equal(rma(UINT64_MAX, 0), -ERANGE);
	assert_int_equal(rma((uint64_t)1 << 40, 8), -ERANGE);
	assert_int_equal(rma(UINT64_MAX - REG + 1, REG), -ERANGE);
	assert_untouched();
	assert_int_equal(rma(REG - 4, 4), 0);           /* the last bytes */
}

/* A deleted key is unknown; added again it gets a new key. */
static void test_del(void **st)
{
	uint32_t old = reg.key;
	uint8_t src[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	(void)st;
	assert_int_equal(rma(0, 8), 0);
	rtrs__fab_keytab_del(&tab, &reg);
	memset(mem, CANARY, sizeof(mem));
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, old, 0, src,
						 8), -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_in(&tab, &scope_a, old, 0, src,
						 0), -EACCES);
	assert_untouched();
	rtrs__fab_keytab_add(&tab, &reg);       /* for teardown */
	assert_int_not_equal(reg.key, 0);
}

/* rma_begin: the same checks, dst where the bytes go; on an error nothing
 * is held, after rma_end neither (a delete on this thread would abort
 * with the lock checks on, or deadlock without them). */
static void test_begin_end(void **st)
{
	uint8_t *dst = NULL, *none = (uint8_t *)&dst;

	(void)st;
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_a, reg.key,
						    8, 16, &dst), 0);
	assert_ptr_equal(dst, mem + GUARD + 8);
	memset(dst, 0x11, 16);
	rtrs__fab_keytab_rma_end(&tab);
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_a, reg.key,
						    REG, 0, &dst), 0);
	assert_ptr_equal(dst, mem + GUARD + REG);
	rtrs__fab_keytab_rma_end(&tab);

	dst = none;
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_b, reg.key,
						    0, 8, &dst), -EACCES);
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_a, reg.key,
						    UINT64_MAX - 3, 8, &dst),
			 -ERANGE);
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_a, reg.key ^ 1,
						    0, 8, &dst), -EACCES);
	assert_ptr_equal(dst, none);
	for (unsigned i = 0; i < sizeof(mem); i++) {
		bool in = i >= GUARD + 8 && i < GUARD + 24;

		assert_int_equal(mem[i], in ? 0x11 : CANARY);
	}
	/* nothing held: a delete (exclusive) goes through */
	rtrs__fab_keytab_del(&tab, &reg);
	rtrs__fab_keytab_add(&tab, &reg);
}

struct deleter {
	struct fab_key *k;
	atomic_bool started, done;
};

static void *del_thread(void *arg)
{
	struct deleter *d = arg;

	atomic_store(&d->started, true);
	rtrs__fab_keytab_del(&tab, d->k);
	atomic_store(&d->done, true);
	return NULL;
}

/* A delete waits for a copy in progress (rma_begin .. rma_end), and once
 * it returned the key is refused. */
static void test_del_waits(void **st)
{
	struct deleter d = { .k = &reg };
	struct timespec ms50 = { 0, 50 * 1000 * 1000 };
	uint8_t *dst;
	pthread_t thr;

	(void)st;
	assert_int_equal(rtrs__fab_keytab_rma_begin(&tab, &scope_a, reg.key,
						    0, REG, &dst), 0);
	assert_int_equal(pthread_create(&thr, NULL, del_thread, &d), 0);
	while (!atomic_load(&d.started))
		nanosleep(&ms50, NULL);
	for (int i = 0; i < 4; i++) {
		nanosleep(&ms50, NULL);
		assert_false(atomic_load(&d.done));
	}
	memset(dst, 0x22, REG);         /* the copy, still allowed */
	rtrs__fab_keytab_rma_end(&tab);
	assert_int_equal(pthread_join(thr, NULL), 0);
	assert_true(atomic_load(&d.done));
	assert_int_equal(mem[GUARD], 0x22);
	assert_int_equal(rma(0, 1), -EACCES);
	rtrs__fab_keytab_add(&tab, &reg);       /* for teardown */
}

/* fini on a zeroed table and on a finished one; init after fini. */
static void test_fini(void **st)
{
	struct fab_keytab t;

	(void)st;
	memset(&t, 0, sizeof(t));
	rtrs__fab_keytab_fini(&t);
	assert_int_equal(rtrs__fab_keytab_init(&t, RANK, "test.keys2"), 0);
	assert_non_null(t.b);
	rtrs__fab_keytab_fini(&t);
	assert_null(t.b);
	rtrs__fab_keytab_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keys_unique, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lands, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begin_end, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_del_waits, setup,
						teardown),
		cmocka_unit_test(test_fini),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
