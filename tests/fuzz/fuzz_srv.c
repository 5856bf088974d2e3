// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * libFuzzer harness: the server's handling of everything a network peer
 * sends (src/core/srv.c) on a fake fabric (fake_fabric.c, linked instead
 * of src/fabric): connect requests (srv_connreq), the info request, IO
 * requests written into chunks and named by immediates (handle_io_req,
 * fencing, retries), heartbeats, CLOSE, CM events, completion errors,
 * provider queues that fill and drain, and the application's answers
 * (rtrs_srv_resp, rtrs_srv_resp_buf). No change to srv.c: the harness
 * drives it through rtrs_srv_open() and the fabric callbacks, as the
 * progress loop would.
 *
 * With keys (cfg2 bit 1: rtrs_srv_open_auth() with a key file of
 * identities "alice" and "bob", written once) the steps also send
 * auth_req and info requests with a proof (docs/protocol.md section 2.7):
 * a proof from the input, or the right one, computed from the nonces the
 * path holds, so that fuzzing reaches past the authentication too.
 *
 * Input: a configuration byte pair, then steps (an opcode byte and its
 * arguments; see the switch below) until the input ends. Every input
 * opens a server and closes it at the end.
 * Properties: no invalid memory access, leak or undefined behaviour
 * (ASan, LSan, UBSan); what the server posts is readable and, where the
 * provider needs it, inside a live registration of its own; every
 * connect request is answered with well-formed private data; every
 * endpoint is closed and every registration and domain released after
 * rtrs_srv_close(); the requests handed to rdma_ev are counted as
 * executed; rtrs_srv_resp_buf() refuses a source outside its region.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/srv_int.h"
#include "fake_fabric.h"
#include "fuzz.h"

#define MAX_HELD 64
#define MAX_STEPS 96
#define APP_LEN (16u << 10)

static struct rtrs_srv_op *held[MAX_HELD];
static unsigned nheld, calls;
static uint8_t next_policy;
static bool refuse_link;
static struct rtrs_geom geom;
static char app_buf[APP_LEN];
static struct rtrs_srv_ctx *cur_ctx;
static char key_file[64];
static struct rtrs_auth_key key_alice = { .id = "alice", .klen = 32 };
static bool barrier;            /* $FUZZ_SRV_BARRIER: see timer_barrier() */

static void discard_log(enum rtrs_log_level lvl, const char *msg, void *priv)
{
	(void)lvl;
	(void)priv;
	FUZZ_CHECK(strlen(msg) < 512);
}

static void key_file_rm(void)
{
	unlink(key_file);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* every message formatted, none printed */
	rtrs_set_log_fn(discard_log, NULL);
	rtrs_set_log_level(RTRS_LOG_DEBUG);
	/* the timer thread lives across inputs (as in a process with a
	 * client or a second server too): no thread per input */
	FUZZ_CHECK(rtrs__timers_get() == 0);
	barrier = getenv("FUZZ_SRV_BARRIER") != NULL;
	/* the server's key file (mkstemp: mode 0600, as the loader wants) */
	{
		static const char text[] =
			"alice 000102030405060708090a0b0c0d0e0f"
			"101112131415161718191a1b1c1d1e1f\n"
			"bob f0e0d0c0b0a090807060504030201000"
			"f1e1d1c1b1a191817161514131211101\n";
		int fd;

		snprintf(key_file, sizeof(key_file), "/tmp/fuzz_srv-keys-XXXXXX");
		fd = mkstemp(key_file);
		FUZZ_CHECK(fd >= 0);
		FUZZ_CHECK(write(fd, text, sizeof(text) - 1) ==
			   (ssize_t)(sizeof(text) - 1));
		close(fd);
		atexit(key_file_rm);
		for (uint8_t i = 0; i < 32; i++)
			key_alice.key[i] = i;
	}
	return 0;
}

static int on_req(void *sess_priv, struct rtrs_srv_op *op, void *data,
		  size_t datalen, const void *usr, size_t usrlen)
{
	const volatile uint8_t *u = usr;
	uint8_t x = 0;

	(void)sess_priv;
	calls++;
	FUZZ_CHECK(datalen <= geom.max_io_size);
	FUZZ_CHECK(usrlen < geom.chunk_size);
	for (size_t i = 0; i < usrlen; i++)
		x ^= u[i];
	(void)x;
	/* the application fills a READ's data, reads a WRITE's */
	memset(data, 0x5a, datalen);
	switch (next_policy & 3) {
	case 0:
		if (nheld < MAX_HELD) {
			held[nheld++] = op;
			return 0;
		}
		return -EBUSY;
	case 1:
		rtrs_srv_resp(op, 0);
		return 0;
	case 2:
		return -EIO;
	default:
		return 1;               /* positive: answered as -EIO */
	}
}

static int on_link(struct rtrs_srv_sess *s, enum rtrs_srv_link_ev ev, void *priv)
{
	(void)s;
	(void)priv;
	return ev == RTRS_SRV_LINK_EV_CONNECTED && refuse_link ? -EACCES : 0;
}

/* Wait until the timer thread has run every timer due by now. */
static pthread_mutex_t bar_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bar_cond = PTHREAD_COND_INITIALIZER;
static bool bar_done;

static void bar_fire(struct rtrs_timer *t)
{
	(void)t;
	pthread_mutex_lock(&bar_lock);
	bar_done = true;
	pthread_cond_broadcast(&bar_cond);
	pthread_mutex_unlock(&bar_lock);
}

static void timer_barrier(void)
{
	static struct rtrs_timer t;

	rtrs__timer_init(&t, bar_fire);
	bar_done = false;
	rtrs__timer_arm(&t, 0);
	pthread_mutex_lock(&bar_lock);
	while (!bar_done)
		pthread_cond_wait(&bar_cond, &bar_lock);
	pthread_mutex_unlock(&bar_lock);
}

static void answer(unsigned sel, uint8_t how, uint16_t off,
		   struct rtrs_srv_mr *mr)
{
	unsigned i = sel % nheld;
	struct rtrs_srv_op *op = held[i];
	int ret;

	if (how & 1) {
		bool fits = off <= APP_LEN && APP_LEN - off >= op->data_len;
		bool can = op->dir == RTRS_READ && fits;

		/* a source anywhere from the region on, also past its end */
		ret = rtrs_srv_resp_buf(op, mr,
					(const void *)((uintptr_t)app_buf + off));
		if (!can)
			FUZZ_CHECK(ret == -EINVAL);
		if (ret == -EINVAL || ret == -EOPNOTSUPP)
			return;         /* not answered: still ours */
	} else {
		rtrs_srv_resp(op, -(int)(how >> 1));
	}
	held[i] = held[--nheld];
}

/* An IO request as a client writes it into chunk @id, then its immediate. */
static void io_req(struct fuzz_in *in)
{
	int e = ff_ep_pick(fin_u8(in));
	uint8_t chunk = fin_u8(in), kind = fin_u8(in);
	uint16_t dlen = fin_u16(in) % (uint16_t)(geom.max_io_size + 1);
	uint8_t ulen = fin_u8(in), seq = fin_u8(in), fpath = fin_u8(in);
	struct rtrs_sg_desc d[4];
	unsigned nsg = 1 + ((kind >> 4) & 3);
	struct srv_con *c;
	uint32_t off = (uint32_t)dlen + ulen, id, imm;
	char *p;

	next_policy = fin_u8(in);
	if (e < 0)
		return;
	c = ff_ep_ctx(e);
	id = (kind & 0x80) ? chunk : chunk % geom.queue_depth;
	if (id < geom.queue_depth && c->path) {
		/* the session's chunk, as an RMA write with its key would */
		p = c->path->sess->chunks + (size_t)id * geom.chunk_size;
		memset(p + dlen, 'u', ulen);
		if (kind & 1) {
			if (nsg > dlen)
				nsg = dlen ? dlen : 1;
			for (unsigned k = 0; k < nsg; k++) {
				d[k].addr = 0x100000u * k;
				d[k].key = 0x77 + k;
				d[k].len = dlen / nsg + (k < dlen % nsg);
			}
			p += off + rtrs__proto_read_msg_encode(p + off, ulen, d,
							       (uint16_t)nsg);
		} else {
			p += off + rtrs__proto_write_msg_encode(p + off, ulen);
		}
		if (kind & 2) {
			struct rtrs_fence f = {
				.seq = seq,
				.fence_path = (kind & 8) ? fpath : 0,
				.flags = ((kind & 4) ? RTRS_FENCE_RETRY_F : 0) |
					 ((kind & 8) ? RTRS_FENCE_PATH_F : 0),
			};

			rtrs__proto_fence_encode(p, &f);
		}
	}
	imm = rtrs__proto_io_req_imm(&geom, id, off);
	if (kind & 0x40)
		ff_recv(e, NULL, 0, true, imm);         /* a send with imm */
	else
		ff_rma_write(e, 0, 0, NULL, 0, true, imm);
}

static void step(struct fuzz_in *in, struct rtrs_srv_mr *mr)
{
	static const char *const names[] = { "s0", "s1", "bad.name", "" };
	uint8_t buf[RTRS_SRV_RX_BUF + 64];
	uint8_t op = fin_u8(in);
	int e;

	switch (op % 14) {
	case 0: {               /* a well-formed connect request */
		struct rtrs_conn_req r = { 0 };
		uint8_t f = fin_u8(in), ids = fin_u8(in);

		r.cid_num = 2 + (f >> 4) % 3;
		r.cid = fin_u8(in) % (r.cid_num + 1);   /* one too many too */
		if (r.cid >= r.cid_num)
			r.cid = 0;
		r.recon_cnt = f & 0x0f;
		r.first_conn = f & 1;
		r.fence = f & 2;
		r.has_path_no = f & 4;
		r.path_no = (f >> 3) & 1;
		r.auth = ids & 0x10;
		memset(r.paths_uuid, 0x10 + (ids & 3), 16);
		memset(r.sess_uuid, 0x20 + ((ids >> 2) & 3), 16);
		rtrs__proto_conn_req_encode(buf, &r);
		ff_connreq(buf, RTRS_CONN_PRIV_LEN);
		break;
	}
	case 1: {               /* any connect request */
		size_t n = fin_bytes(in, buf, fin_u8(in) % 80);

		ff_connreq(buf, n);
		break;
	}
	case 2: {               /* the info request */
		e = ff_ep_pick(fin_u8(in));
		rtrs__proto_info_req_encode(buf, names[fin_u8(in) & 3]);
		if (e >= 0)
			ff_recv(e, buf, RTRS_INFO_REQ_LEN, false, 0);
		break;
	}
	case 3: {               /* any message */
		size_t n;

		e = ff_ep_pick(fin_u8(in));
		n = fin_bytes(in, buf, fin_u16(in) % sizeof(buf));
		if (e >= 0)
			ff_recv(e, buf, n, false, 0);
		break;
	}
	case 4:
		io_req(in);
		break;
	case 5: {               /* any immediate: heartbeat, CLOSE, ... */
		uint8_t how = fin_u8(in);
		uint32_t imm = fin_u32(in);

		e = ff_ep_pick(how);
		if (how & 0x80)
			imm = rtrs_imm((how >> 3) & 0xf, imm);
		if (e < 0)
			break;
		if (how & 0x40)
			ff_recv(e, NULL, 0, true, imm);
		else
			ff_rma_write(e, 0, 0, NULL, 0, true, imm);
		break;
	}
	case 6: {               /* raw bytes into some registration */
		uint8_t sel = fin_u8(in);
		uint16_t off = fin_u16(in);
		size_t n = fin_bytes(in, buf, fin_u8(in));

		e = ff_ep_pick(sel);
		if (e >= 0)
			ff_rma_write(e, sel >> 4, off, buf, n, false, 0);
		break;
	}
	case 7: {               /* the application answers */
		uint8_t sel = fin_u8(in), how = fin_u8(in);
		uint16_t off = fin_u16(in);

		if (nheld)
			answer(sel, how, off, mr);
		break;
	}
	case 8: {               /* connection manager events */
		uint8_t sel = fin_u8(in);

		e = ff_ep_pick(sel);
		if (e >= 0)
			ff_cm(e, (sel >> 5) % 4, (sel & 0x10) ? -ECONNRESET : 0);
		break;
	}
	case 9:                 /* a completion error */
		e = ff_ep_pick(fin_u8(in));
		if (e >= 0)
			ff_cqe_err(e, -EIO);
		break;
	case 10: {              /* the send queue fills or drains */
		uint8_t sel = fin_u8(in);

		e = ff_ep_pick(sel);
		if (e >= 0)
			ff_tx_full(e, sel & 0x80);
		break;
	}
	case 11: {              /* the operator closes a session or path */
		uint8_t sel = fin_u8(in);

		if (sel & 1)
			rtrs_srv_close_sess(cur_ctx, names[(sel >> 1) & 3]);
		break;
	}
	case 12: {              /* auth_req: a known identity or not */
		static const char *const ids[] = { "alice", "bob", "mallory",
						   "alice" };
		uint8_t sel = fin_u8(in), nonce[RTRS_AUTH_NONCE_LEN] = { 0 };

		e = ff_ep_pick(sel);
		fin_bytes(in, nonce, sizeof(nonce));
		rtrs__proto_auth_req_encode(buf, nonce, ids[(sel >> 4) & 3]);
		if (e >= 0)
			ff_recv(e, buf, RTRS_AUTH_REQ_LEN, false, 0);
		break;
	}
	case 13: {              /* an info request with a proof */
		uint8_t sel = fin_u8(in), how = fin_u8(in);
		const char *name = names[how & 3];
		size_t len = (how & 0x10) ? RTRS_INFO_REQ_LEN
					  : RTRS_INFO_REQ_AUTH_LEN;
		struct srv_con *c;

		e = ff_ep_pick(sel);
		if (e < 0)
			break;
		c = ff_ep_ctx(e);
		rtrs__proto_info_req_encode(buf, name);
		fin_bytes(in, buf + RTRS_INFO_REQ_LEN, RTRS_AUTH_PROOF_LEN);
		/* the right proof, as alice, from what the path holds */
		if ((how & 0x20) && c->path)
			rtrs__auth_proof(&key_alice, false, c->path->auth_nc,
					 c->path->auth_ns, c->path->sess->uuid,
					 c->path->uuid, name,
					 buf + RTRS_INFO_REQ_LEN);
		ff_recv(e, buf, len, false, 0);
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const addrs[] = { "127.0.0.1:0" };
	struct fuzz_in in = { data, size };
	uint8_t cfg = fin_u8(&in), cfg2 = fin_u8(&in);
	struct rtrs_srv_attr a;
	struct rtrs_srv_ctx *ctx;
	struct rtrs_srv_stats st;
	struct rtrs_srv_mr *mr;

	rtrs_srv_attr_init(&a);
	a.queue_depth = 1u << (cfg & 3);
	a.chunk_size = 4096;
	a.always_invalidate = (cfg >> 2) & 1;
	a.hb_interval_ms = 1000000;     /* no timer runs within an input */
	a.linger_ms = (cfg & 0x20) ? 1000000 : 0;
	a.ctl_disable = 1;
	a.ops.rdma_ev = on_req;
	a.ops.link_ev = (cfg & 0x40) ? on_link : NULL;
	refuse_link = cfg2 & 1;
	ff_set_caps(cfg & 8, cfg & 0x10);
	FUZZ_CHECK(rtrs__proto_geom(&geom, a.queue_depth, a.chunk_size,
				    RTRS_PROTO_MAX_HDR) == 0);
	nheld = 0;
	calls = 0;
	{
		struct rtrs_auth auth = { sizeof(auth), key_file, NULL };

		FUZZ_CHECK(rtrs_srv_open_auth(addrs, 1, &a,
					      (cfg2 & 2) ? &auth : NULL,
					      &ctx) == 0);
	}
	FUZZ_CHECK(rtrs_srv_mr_reg(ctx, app_buf, APP_LEN, &mr) == 0);
	cur_ctx = ctx;
	for (unsigned i = 0; i < MAX_STEPS && in.n; i++) {
		step(&in, mr);
		ff_pump();
	}
	FUZZ_CHECK(rtrs_srv_get_stats(ctx, &st) == 0);
	FUZZ_CHECK(st.executed == calls);
	if (getenv("FUZZ_SRV_VERBOSE"))
		fprintf(stderr, "fuzz_srv: sessions %llu executed %llu "
			"(read %llu, write %llu answered) bad input %llu "
			"dup answered %llu held %u\n",
			(unsigned long long)st.sessions,
			(unsigned long long)st.executed,
			(unsigned long long)st.read_cnt,
			(unsigned long long)st.write_cnt,
			(unsigned long long)st.paths_closed_bad_input,
			(unsigned long long)st.dup_answered, nheld);
	/* the application answers what it holds, then closes */
	while (nheld)
		rtrs_srv_resp(held[--nheld], -ECANCELED);
	ff_pump();
	/* A session's linger armed at 0 (CLOSE, a name taken over) may still
	 * run on the timer thread here: rtrs_srv_close() must wait for it
	 * (docs/fuzzing.md, "Findings"; $FUZZ_SRV_BARRIER set: let due
	 * timers run first, to look past that class of bug) */
	if (barrier)
		timer_barrier();
	/* the endpoints it closes are closed at once (fake_fabric.c) */
	rtrs_srv_close(ctx);
	cur_ctx = NULL;
	ff_pump();
	rtrs_srv_mr_dereg(mr);
	ff_reset();
	FUZZ_CHECK(ff_live_mrs() == 0);
	FUZZ_CHECK(ff_live_doms() == 0);
	return 0;
}
