// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * SHA-256 against FIPS 180-4's examples, HMAC-SHA256 against RFC 4231, the
 * key file rules and the auth messages of docs/protocol.md section 2.6.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/auth.h"
#include "util/sha256.h"

static void hex(const char *h, uint8_t *out)
{
	for (size_t i = 0; h[2 * i]; i++) {
		unsigned v;

		sscanf(h + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void sha_is(const void *d, size_t n, const char *want)
{
	uint8_t got[32], w[32];

	rtrs__sha256(d, n, got);
	hex(want, w);
	assert_memory_equal(got, w, 32);
}

static void test_sha256(void **st)
{
	struct rtrs_sha256 c;
	uint8_t got[32], w[32];
	char *a = malloc(1000000);

	(void)st;
	sha_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	memset(a, 'a', 1000000);
	sha_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* the same in odd pieces */
	rtrs__sha256_init(&c);
	for (size_t off = 0, n = 1; off < 1000000; off += n, n = n * 3 % 1000 + 1)
		rtrs__sha256_update(&c, a + off, off + n > 1000000 ? 1000000 - off : n);
	rtrs__sha256_final(&c, got);
	hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", w);
	assert_memory_equal(got, w, 32);
	free(a);
}

static void hmac_is(const void *k, size_t kl, const void *d, size_t dl,
		    const char *want)
{
	struct rtrs_hmac h;
	uint8_t got[32], w[32];

	rtrs__hmac_init(&h, k, kl);
	rtrs__hmac_update(&h, d, dl);
	rtrs__hmac_final(&h, got);
	hex(want, w);
	assert_memory_equal(got, w, 32);
}

static void test_hmac_rfc4231(void **st)
{
	uint8_t k[131], d[50];

	(void)st;
	memset(k, 0x0b, 20);
	hmac_is(k, 20, "Hi There", 8,
		"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac_is("Jefe", 4, "what do ya want for nothing?", 28,
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(k, 0xaa, 20);
	memset(d, 0xdd, 50);
	hmac_is(k, 20, d, 50,
		"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	for (unsigned i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(d, 0xcd, 50);
	hmac_is(k, 25, d, 50,
		"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	memset(k, 0xaa, 131);
	hmac_is(k, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	assert_int_equal(rtrs__memeq_ct("abcd", "abcd", 4), 0);
	assert_int_not_equal(rtrs__memeq_ct("abcd", "abce", 4), 0);
}

static char dir[64];

static const char *kf(const char *text, mode_t mode)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/k", dir);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

#define K32 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void test_keyfile(void **st)
{
	struct rtrs_keyring kr;
	const struct rtrs_auth_key *k;

	(void)st;
	assert_int_equal(rtrs__auth_load(kf("# c\n\nalice " K32 " # x\nbob\t" K32 K32 "\n",
					    0600), &kr), 0);
	assert_int_equal(kr.n, 2);
	k = rtrs__auth_find(&kr, "bob");
	assert_non_null(k);
	assert_int_equal(k->klen, 64);
	assert_int_equal(k->key[1], 0x11);
	assert_null(rtrs__auth_find(&kr, "carol"));
	rtrs__auth_free(&kr);
	/* group or others: refused */
	assert_int_equal(rtrs__auth_load(kf("alice " K32 "\n", 0640), &kr), -EPERM);
	assert_int_equal(rtrs__auth_load(kf("alice " K32 "\n", 0604), &kr), -EPERM);
	assert_int_equal(rtrs__auth_load(kf("alice " K32 "\n", 0400), &kr), 0);
	rtrs__auth_free(&kr);
	/* malformed */
	assert_int_equal(rtrs__auth_load(kf("alice 0011\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("alice " K32 "0\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("alice " K32 "zz\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("alice\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("alice " K32 " x\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("a " K32 "\na " K32 "\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load(kf("# nothing\n", 0600), &kr), -EINVAL);
	assert_int_equal(rtrs__auth_load("/nonexistent/k", &kr), -ENOENT);
	assert_int_equal(rtrs__auth_load(dir, &kr), -EINVAL);
}

static void test_msgs(void **st)
{
	uint8_t buf[RTRS_AUTH_REQ_LEN], nonce[32], n2[32], proof[32], p2[32];
	char id[RTRS_AUTH_ID_LEN];
	int err;

	(void)st;
	for (unsigned i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)i;
		proof[i] = (uint8_t)(0x80 + i);
	}
	rtrs__proto_auth_req_encode(buf, nonce, "alice");
	assert_int_equal(rtrs__proto_msg_type(buf, sizeof(buf)), RTRS_MSG_AUTH_REQ);
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id), 0);
	assert_string_equal(id, "alice");
	assert_memory_equal(n2, nonce, 32);
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf) - 1, n2, id),
			 -EPROTO);
	buf[40 + 5] = 'x';              /* a byte past id_len */
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id),
			 -EPROTO);
	buf[40 + 5] = 0;
	buf[40 + 1] = ' ';              /* not an identity */
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id),
			 -EINVAL);
	buf[40 + 1] = 0;                /* NUL inside id_len */
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id),
			 -EINVAL);
	buf[2] = 0;
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id),
			 -EPROTO);
	buf[2] = 64;
	assert_int_equal(rtrs__proto_auth_req_decode(buf, sizeof(buf), n2, id),
			 -EPROTO);

	assert_int_equal(rtrs__proto_auth_rsp_encode(buf, 0, nonce, proof),
			 RTRS_AUTH_RSP_LEN);
	assert_int_equal(rtrs__proto_auth_rsp_decode(buf, RTRS_AUTH_RSP_LEN, &err,
						     n2, p2), 0);
	assert_int_equal(err, 0);
	assert_memory_equal(n2, nonce, 32);
	assert_memory_equal(p2, proof, 32);
	assert_int_equal(rtrs__proto_auth_rsp_decode(buf, RTRS_AUTH_RSP_LEN - 1,
						     &err, n2, p2), -EPROTO);
	rtrs__proto_auth_rsp_encode(buf, -EACCES, NULL, NULL);
	assert_int_equal(rtrs__proto_auth_rsp_decode(buf, RTRS_AUTH_RSP_LEN, &err,
						     n2, p2), 0);
	assert_int_equal(err, -EACCES);
	buf[2] = 5;                     /* a positive errno */
	buf[3] = 0;
	assert_int_equal(rtrs__proto_auth_rsp_decode(buf, RTRS_AUTH_RSP_LEN, &err,
						     n2, p2), -EPROTO);
	{
		uint8_t ir[RTRS_INFO_REQ_AUTH_LEN];

		rtrs__proto_info_req_encode(ir, "sess");
		memcpy(ir + RTRS_INFO_REQ_LEN, proof, 32);
		assert_int_equal(rtrs__proto_info_req_proof(ir, sizeof(ir), p2), 0);
		assert_memory_equal(p2, proof, 32);
		assert_int_equal(rtrs__proto_info_req_proof(ir, RTRS_INFO_REQ_LEN, p2),
				 -EPROTO);
	}
}

static void test_proofs(void **st)
{
	struct rtrs_auth_key k = { .id = "alice", .klen = 32 };
	uint8_t nc[32] = { 1 }, ns[32] = { 2 }, pu[16] = { 3 }, su[16] = { 4 };
	uint8_t a[32], b[32];

	(void)st;
	memset(k.key, 7, 32);
	rtrs__auth_proof(&k, true, nc, ns, pu, su, NULL, a);
	rtrs__auth_proof(&k, false, nc, ns, pu, su, "", b);
	assert_memory_not_equal(a, b, 32);      /* no reflection */
	rtrs__auth_proof(&k, false, nc, ns, pu, su, "s1", a);
	rtrs__auth_proof(&k, false, nc, ns, pu, su, "s2", b);
	assert_memory_not_equal(a, b, 32);      /* bound to the name */
	su[0] = 5;
	rtrs__auth_proof(&k, false, nc, ns, pu, su, "s1", b);
	assert_memory_not_equal(a, b, 32);      /* and to the path */
	assert_int_equal(rtrs__auth_random(a, 32), 0);
	assert_int_equal(rtrs__auth_random(b, 32), 0);
	assert_memory_not_equal(a, b, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_keyfile),
		cmocka_unit_test(test_msgs),
		cmocka_unit_test(test_proofs),
	};
	int ret;

	snprintf(dir, sizeof(dir), "/tmp/rtrs-ut-auth-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(strcat(dir, "/k"));
	dir[strlen(dir) - 2] = 0;
	rmdir(dir);
	return ret;
}
