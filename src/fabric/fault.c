// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Deterministic fault injection at the fabric boundary, for tests. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fabric.h"
#include "util/log.h"

static _Atomic uint64_t post_fail, close_after, drop_rx, delay_rx, delay_ms;
static _Atomic uint64_t posts, rxs;
static char peer_host[64];      /* set before the engine runs, then read-only */

void rtrs__fab_fault_set(const struct fab_fault *f)
{
	atomic_store(&post_fail, f->post_fail);
	atomic_store(&close_after, f->close_after);
	atomic_store(&drop_rx, f->drop_rx);
	atomic_store(&delay_rx, f->delay_rx);
	atomic_store(&delay_ms, f->delay_ms);
	atomic_store(&posts, 0);
	atomic_store(&rxs, 0);
	memcpy(peer_host, f->peer, sizeof(peer_host));
	peer_host[sizeof(peer_host) - 1] = 0;
}

bool rtrs__fab_fault_peer_filter(void)
{
	return peer_host[0] != 0;
}

void rtrs__fab_fault_from_env(void)
{
	const char *s = getenv("RTRS_FAULT");
	struct fab_fault f = { 0 };
	char buf[256], *save = NULL, *tok;

	if (!s || strlen(s) >= sizeof(buf))
		return;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		uint64_t v;

		if (!eq)
			continue;
		*eq = 0;
		v = strtoull(eq + 1, NULL, 0);
		if (!strcmp(tok, "post_fail"))
			f.post_fail = v;
		else if (!strcmp(tok, "close_after"))
			f.close_after = v;
		else if (!strcmp(tok, "drop_rx"))
			f.drop_rx = v;
		else if (!strcmp(tok, "delay_rx"))
			f.delay_rx = v;
		else if (!strcmp(tok, "delay_ms"))
			f.delay_ms = v;
		else if (!strcmp(tok, "peer"))
			snprintf(f.peer, sizeof(f.peer), "%s", eq + 1);
		else
			rtrs_warn("RTRS_FAULT: unknown key %s", tok);
	}
	rtrs__fab_fault_set(&f);
}

int rtrs__fab_fault_post(const char *peer)
{
	uint64_t pf = atomic_load_explicit(&post_fail, memory_order_relaxed);
	uint64_t ca = atomic_load_explicit(&close_after, memory_order_relaxed);
	size_t hl = strlen(peer_host);
	uint64_t n;

	if (!pf && !ca)
		return 0;
	if (hl && (!peer || strncmp(peer, peer_host, hl) || peer[hl] != ':'))
		return 0;       /* another path's endpoint */
	n = atomic_fetch_add(&posts, 1) + 1;
	if (pf && n == pf)
		return -EIO;
	if (ca && n > ca)
		return 1;
	return 0;
}

int rtrs__fab_fault_post_ep(const struct fab_ep *e,
			    int (*peer_of)(const struct fab_ep *, char *,
					   size_t),
			    _Atomic bool *down)
{
	char peer[128];
	int f;

	if (rtrs__fab_fault_peer_filter())
		f = rtrs__fab_fault_post(peer_of(e, peer, sizeof(peer))
						 ? NULL : peer);
	else
		f = rtrs__fab_fault_post(NULL);
	/* as if the peer vanished with this operation in flight: it is
	 * swallowed, the loop reports a shutdown */
	if (f > 0 && !atomic_exchange(down, true))
		rtrs_warn("fault injection: endpoint shut down");
	return f;
}

bool rtrs__fab_fault_rx(void)
{
	uint64_t d = atomic_load_explicit(&drop_rx, memory_order_relaxed);
	uint64_t l = atomic_load_explicit(&delay_rx, memory_order_relaxed);
	uint64_t n;

	if (!d && !l)
		return false;
	n = atomic_fetch_add(&rxs, 1) + 1;
	if (l && n == l) {
		/* hold this completion back: the loop delivering it sleeps */
		uint64_t ms = atomic_load(&delay_ms);

		rtrs_warn("fault injection: delaying a completion by %llu ms",
			  (unsigned long long)ms);
		usleep((useconds_t)(ms * 1000));
	}
	return d && n == d;
}
