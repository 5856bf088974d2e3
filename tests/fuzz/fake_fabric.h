/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * A fake fabric for fuzzing the server (fuzz_srv.c): a backend of the
 * contract in src/fabric/fabric.h (struct rtrs__fab_ops), in memory, linked
 * instead of the files of src/fabric (it also gives the calls fabric.c
 * gives: the engine, rtrs__fab_dom_open(), the poller). The harness
 * plays both the network and the progress loop: it makes connect
 * requests, completes receives with its bytes, writes into registered
 * memory as a correct RDMA NIC would (bounds and keys checked) and runs
 * the endpoints' callbacks on its own thread. What the server posts is
 * checked (buffers readable, inside a registration when the provider
 * needs local registrations) and dropped.
 */
#ifndef RTRS_FAKE_FABRIC_H
#define RTRS_FAKE_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fabric/fabric.h"

#define FF_MAX_EPS 32

/* Provider capabilities of the next domain opened. */
void ff_set_caps(bool mr_local, bool rx_cq_data);

/* Deliver a connect request with private data to the listener; true if
 * the server accepted it (then FAB_CM_CONNECTED has been delivered). */
bool ff_connreq(const void *data, size_t len);

/* Endpoint @i (modulo the number made), or -1 if none is open. */
int ff_ep_pick(unsigned i);

/* The context the server gave endpoint @e (its struct srv_con). */
void *ff_ep_ctx(int e);

/* A message of @len bytes (with an immediate if @has_imm) into the next
 * posted receive of endpoint @e; false if it has none. */
bool ff_recv(int e, const void *data, size_t len, bool has_imm, uint32_t imm);

/* An RMA write by the peer of @e: @len bytes at offset @off of remote
 * writable registration @mr_sel (modulo their number), clipped to it,
 * then its immediate (through a posted receive where the provider
 * consumes one). */
void ff_rma_write(int e, unsigned mr_sel, uint64_t off, const void *data,
		  size_t len, bool has_imm, uint32_t imm);

/* The base address and length of remote writable registration @mr_sel
 * (modulo their number); false if there is none. */
bool ff_mr_pick(unsigned mr_sel, char **base, size_t *len);

void ff_cm(int e, enum fab_cm_ev ev, int err);
void ff_cqe_err(int e, int err);
/* Provider send queue full (posts return -EAGAIN) or not; when it frees,
 * tx_ready() runs if the server asked for it. */
void ff_tx_full(int e, bool full);

/* Run what the loop owes: closes asked for (flushed receives, closed()).
 * Returns true if it did something. */
bool ff_pump(void);

/* Between inputs: every endpoint closed and freed; the number of
 * registrations and domains still open (0 when the server freed all). */
void ff_reset(void);
unsigned ff_live_mrs(void);
unsigned ff_live_doms(void);

#endif
