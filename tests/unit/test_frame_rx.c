// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Unit tests of src/fabric/frame_rx.c, a software-RMA frame applied at its
 * receiver (docs/protocol.md §2.6), as both backends apply it: a message
 * in one frame and in several, assembled in order into the core's oldest
 * receive; a wrong offset and a message longer than the receive
 * (-EMSGSIZE); no receive posted (-EAGAIN, nothing consumed, then the
 * same frame goes); an RMA frame lands with its immediate's completion,
 * or silently without one; an RMA frame inside a message (-EPROTO), an
 * unknown key (-EACCES), a range that wraps (-ERANGE): nothing lands. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fabric/fabric.h"
#include "fabric/frame_rx.h"
#include "fabric/keytab.h"
#include "proto/wire.h"
#include "util/lock.h"

#define RANK 520                /* the libfabric backend's (ofi.h) */
#define REG 64                  /* bytes of the test registration */
#define GUARD 64                /* canary bytes either side of it */
#define CANARY 0xa5
#define RXLEN 32                /* bytes of a receive of the core */
#define NRX 2

static struct fab_keytab tab;
static uint8_t mem[GUARD + REG + GUARD];
static struct fab_key reg;
static int scope_a;

/* the core's posted receives, oldest first */
static struct fab_opctx rx[NRX];
static uint8_t rxbuf[NRX][RXLEN + GUARD];
static unsigned posted, popped, pops;

static struct fab_frame_rx st;
static uint8_t payload[256];

static struct fab_opctx *pop(void *arg)
{
	assert_ptr_equal(arg, &st);
	pops++;
	if (popped == posted)
		return NULL;
	return &rx[popped++];
}

/* The receives all posted and empty, no message being assembled. */
static void fresh(void)
{
	memset(rxbuf, CANARY, sizeof(rxbuf));
	for (unsigned i = 0; i < NRX; i++)
		rx[i] = (struct fab_opctx){ .rx_buf = rxbuf[i],
					    .rx_len = RXLEN };
	posted = NRX;
	popped = pops = 0;
	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
}

static int setup(void **state)
{
	(void)state;
	rtrs__lock_check_set(1);
	assert_int_equal(rtrs__fab_keytab_init(&tab, RANK, "test.keys"), 0);
	memset(mem, CANARY, sizeof(mem));
	memset(&reg, 0, sizeof(reg));
	reg.access = FAB_ACC_LOCAL | FAB_ACC_REMOTE_WRITE;
	reg.scope = &scope_a;
	reg.base = mem + GUARD;
	reg.len = REG;
	rtrs__fab_keytab_add(&tab, &reg);
	fresh();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rtrs__fab_frame_rx_reset(&st);
	assert_null(st.asm_ctx);
	rtrs__fab_keytab_del(&tab, &reg);
	rtrs__fab_keytab_fini(&tab);
	return 0;
}

static int apply(uint8_t type, uint8_t flags, uint32_t imm, uint32_t key,
		 uint32_t len, uint64_t off, const uint8_t *pl,
		 struct fab_cqe *c, const char **why)
{
	struct rtrs_frame f = { type, flags, imm, key, len, off };

	*c = (struct fab_cqe){ .err = 12345 };  /* untouched unless 1 */
	*why = NULL;
	return rtrs__fab_frame_rx(&st, &tab, &scope_a, &f, pl, pop, &st, c,
				  why);
}

static void assert_region_untouched(void)
{
	for (size_t i = 0; i < sizeof(mem); i++)
		if (mem[i] != CANARY)
			fail_msg("byte %d of the region changed",
				 (int)i - GUARD);
}

/* Receive @i holds payload[0, n), then canaries. */
static void assert_rx(unsigned i, size_t n)
{
	assert_memory_equal(rxbuf[i], payload, n);
	for (size_t j = n; j < sizeof(rxbuf[i]); j++)
		assert_int_equal(rxbuf[i][j], CANARY);
}

static void test_msg_one(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       0xdeadbeef, 0, 20, 0, payload, &c, &why), 1);
	assert_ptr_equal(c.ctx, &rx[0]);
	assert_int_equal(c.flags, FAB_CQE_RECV | FAB_CQE_IMM);
	assert_int_equal(c.imm, 0xdeadbeef);
	assert_int_equal(c.len, 20);
	assert_int_equal(c.err, 0);
	assert_rx(0, 20);
	assert_null(st.asm_ctx);
	/* without IMM: a receive, no immediate; the next one, oldest first */
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 7, 0, 4, 0,
			       payload, &c, &why), 1);
	assert_ptr_equal(c.ctx, &rx[1]);
	assert_int_equal(c.flags, FAB_CQE_RECV);
	assert_int_equal(c.imm, 0);
	assert_int_equal(c.len, 4);
	assert_int_equal(pops, 2);
}

static void test_msg_three(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_MSG, 0, 0, 0, 10, 0, payload, &c,
			       &why), 0);
	assert_int_equal(c.err, 12345);
	assert_ptr_equal(st.asm_ctx, &rx[0]);
	assert_int_equal(apply(RTRS_FRAME_MSG, 0, 0, 0, 10, 10, payload + 10,
			       &c, &why), 0);
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       42, 0, 12, 20, payload + 20, &c, &why), 1);
	assert_ptr_equal(c.ctx, &rx[0]);
	assert_int_equal(c.flags, FAB_CQE_RECV | FAB_CQE_IMM);
	assert_int_equal(c.imm, 42);
	assert_int_equal(c.len, RXLEN);         /* exactly full */
	assert_rx(0, RXLEN);
	assert_int_equal(pops, 1);              /* one receive, once */
	assert_null(st.asm_ctx);
}

static void test_msg_bad_off(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	/* a first frame that does not start at 0 */
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 4, 4,
			       payload, &c, &why), -EMSGSIZE);
	assert_string_equal(why, "message too long");
	assert_int_equal(c.err, 12345);
	/* a gap, and a repeat, in the middle */
	fresh();
	assert_int_equal(apply(RTRS_FRAME_MSG, 0, 0, 0, 8, 0, payload, &c,
			       &why), 0);
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 4, 9,
			       payload, &c, &why), -EMSGSIZE);
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 4, 0,
			       payload + 8, &c, &why), -EMSGSIZE);
	assert_string_equal(why, "message too long");
	assert_rx(0, 8);                        /* nothing more landed */
}

static void test_msg_too_long(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0,
			       RXLEN + 1, 0, payload, &c, &why), -EMSGSIZE);
	assert_string_equal(why, "message too long");
	assert_rx(0, 0);
	/* past the receive over two frames */
	fresh();
	assert_int_equal(apply(RTRS_FRAME_MSG, 0, 0, 0, 20, 0, payload, &c,
			       &why), 0);
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 13, 20,
			       payload + 20, &c, &why), -EMSGSIZE);
	assert_rx(0, 20);
}

static void test_no_receive(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	posted = 0;
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 8, 0,
			       payload, &c, &why), -EAGAIN);
	assert_int_equal(c.err, 12345);
	assert_null(st.asm_ctx);
	assert_rx(0, 0);
	/* again, still none */
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 8, 0,
			       payload, &c, &why), -EAGAIN);
	assert_int_equal(pops, 2);
	/* the core posts one: the same frame goes */
	posted = 1;
	assert_int_equal(apply(RTRS_FRAME_MSG, RTRS_FRAME_LAST, 0, 0, 8, 0,
			       payload, &c, &why), 1);
	assert_ptr_equal(c.ctx, &rx[0]);
	assert_int_equal(c.len, 8);
	assert_rx(0, 8);
}

static void test_rma_imm(void **state)
{
	uint8_t want[sizeof(mem)];
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_RMA, 0, 0, reg.key, 16, 8, payload,
			       &c, &why), 0);
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       0x1234, reg.key, 8, 24, payload + 16, &c, &why),
			 1);
	assert_null(c.ctx);
	assert_int_equal(c.flags, FAB_CQE_RMA_IN | FAB_CQE_IMM);
	assert_int_equal(c.imm, 0x1234);
	assert_int_equal(c.err, 0);
	memset(want, CANARY, sizeof(want));
	memcpy(want + GUARD + 8, payload, 24);
	assert_memory_equal(mem, want, sizeof(mem));
	assert_int_equal(pops, 0);              /* no receive used */
}

static void test_rma_silent(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST, 9, reg.key, 4,
			       0, payload, &c, &why), 0);
	assert_int_equal(c.err, 12345);
	assert_memory_equal(mem + GUARD, payload, 4);
	assert_int_equal(pops, 0);
}

static void test_rma_in_msg(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_MSG, 0, 0, 0, 8, 0, payload, &c,
			       &why), 0);
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       1, reg.key, 8, 0, payload, &c, &why), -EPROTO);
	assert_string_equal(why, "malformed frame");
	assert_int_equal(c.err, 12345);
	assert_region_untouched();
	/* the check on its own, as sock asks before going direct */
	{
		struct rtrs_frame f = { RTRS_FRAME_RMA, 0, 0, reg.key, 8, 0 };

		why = NULL;
		assert_int_equal(rtrs__fab_frame_rx_admit(&st, &f, &why),
				 -EPROTO);
		assert_string_equal(why, "malformed frame");
		f.type = RTRS_FRAME_MSG;
		assert_int_equal(rtrs__fab_frame_rx_admit(&st, &f, &why), 0);
		rtrs__fab_frame_rx_reset(&st);
		f.type = RTRS_FRAME_RMA;
		assert_int_equal(rtrs__fab_frame_rx_admit(&st, &f, &why), 0);
	}
}

static void test_rma_unknown_key(void **state)
{
	struct fab_cqe c;
	const char *why;
	uint32_t other = (reg.key ^ 1) ? (reg.key ^ 1) : 2;

	(void)state;
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       1, other, 8, 0, payload, &c, &why), -EACCES);
	assert_string_equal(why, "RMA with an unknown key");
	assert_int_equal(c.err, 12345);
	/* the right key, another scope */
	{
		struct rtrs_frame f = { RTRS_FRAME_RMA, RTRS_FRAME_LAST, 0,
					reg.key, 8, 0 };
		int scope_b;

		assert_int_equal(rtrs__fab_frame_rx(&st, &tab, &scope_b, &f,
						    payload, pop, &st, &c,
						    &why), -EACCES);
	}
	assert_region_untouched();
}

static void test_rma_wrap(void **state)
{
	struct fab_cqe c;
	const char *why;

	(void)state;
	/* off + len wraps to 4 */
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST | RTRS_FRAME_IMM,
			       1, reg.key, 8, UINT64_MAX - 3, payload, &c,
			       &why), -ERANGE);
	assert_string_equal(why, "RMA outside its region");
	assert_int_equal(c.err, 12345);
	/* one past the end */
	assert_int_equal(apply(RTRS_FRAME_RMA, RTRS_FRAME_LAST, 0, reg.key, 5,
			       REG - 4, payload, &c, &why), -ERANGE);
	assert_region_untouched();
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_msg_one), T(test_msg_three), T(test_msg_bad_off),
		T(test_msg_too_long), T(test_no_receive), T(test_rma_imm),
		T(test_rma_silent), T(test_rma_in_msg),
		T(test_rma_unknown_key), T(test_rma_wrap),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
