/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Key files, nonces and proofs of docs/protocol.md section 2.7. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rtrs/rtrs.h"
#include "util/log.h"
#include "util/sha256.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* one line, without its newline; 1 if it holds a key, 0 if blank */
static int parse_line(char *line, struct rtrs_auth_key *k)
{
	char *id, *hex, *rest, *save = NULL;
	size_t n;

	line[strcspn(line, "#")] = 0;
	id = strtok_r(line, " \t\r", &save);
	if (!id)
		return 0;
	hex = strtok_r(NULL, " \t\r", &save);
	rest = strtok_r(NULL, " \t\r", &save);
	if (!hex || rest || rtrs__proto_identity_valid(id))
		return -EINVAL;
	n = strlen(hex);
	if (n % 2 || n / 2 < RTRS_AUTH_KEY_MIN || n / 2 > RTRS_AUTH_KEY_MAX)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		k->key[i] = (uint8_t)(hi << 4 | lo);
	}
	k->klen = n / 2;
	strcpy(k->id, id);
	return 1;
}

int rtrs__auth_load(const char *path, struct rtrs_keyring *kr)
{
	struct rtrs_auth_key k;
	struct stat st;
	char line[512];
	unsigned lineno = 0;
	FILE *f;
	int fd, ret = 0;

	memset(kr, 0, sizeof(*kr));
	if (!path)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		rtrs_err("key file %s: %s", path, rtrs_strerror(ret));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		rtrs_err("key file %s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		rtrs_err("key file %s: mode %04o gives group or others access; "
			 "it holds secrets: chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		int r;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			ret = -EINVAL;
			break;
		}
		line[strcspn(line, "\n")] = 0;
		r = parse_line(line, &k);
		if (r < 0) {
			ret = r;
			break;
		}
		if (!r)
			continue;
		if (rtrs__auth_find(kr, k.id)) {
			ret = -EINVAL;
			break;
		}
		if (kr->n >= RTRS_AUTH_MAX_KEYS) {
			ret = -EFBIG;
			break;
		}
		{
			struct rtrs_auth_key *nk = realloc(kr->k, (kr->n + 1) *
							   sizeof(*nk));

			if (!nk) {
				ret = -ENOMEM;
				break;
			}
			kr->k = nk;
			kr->k[kr->n++] = k;
		}
	}
	rtrs__memzero(&k, sizeof(k));
	rtrs__memzero(line, sizeof(line));
	fclose(f);
	if (!ret && !kr->n) {
		rtrs_err("key file %s: no key", path);
		ret = -EINVAL;
	} else if (ret == -EINVAL) {
		rtrs_err("key file %s, line %u: not \"IDENTITY HEXKEY\" (an "
			 "identity of 1..63 printable characters, once; a key "
			 "of %d..%d bytes in hex)", path, lineno,
			 RTRS_AUTH_KEY_MIN, RTRS_AUTH_KEY_MAX);
	}
	if (ret)
		rtrs__auth_free(kr);
	return ret;
}

const struct rtrs_auth_key *rtrs__auth_find(const struct rtrs_keyring *kr,
					    const char *id)
{
	for (size_t i = 0; i < kr->n; i++)
		if (!strcmp(kr->k[i].id, id))
			return &kr->k[i];
	return NULL;
}

void rtrs__auth_free(struct rtrs_keyring *kr)
{
	if (kr->k) {
		rtrs__memzero(kr->k, kr->n * sizeof(*kr->k));
		free(kr->k);
	}
	kr->k = NULL;
	kr->n = 0;
}

int rtrs__auth_random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void put_str(struct rtrs_hmac *h, const char *s)
{
	uint8_t n = (uint8_t)strnlen(s, 255);

	rtrs__hmac_update(h, &n, 1);
	rtrs__hmac_update(h, s, n);
}

void rtrs__auth_proof(const struct rtrs_auth_key *k, bool server,
		      const uint8_t nc[RTRS_AUTH_NONCE_LEN],
		      const uint8_t ns[RTRS_AUTH_NONCE_LEN],
		      const uint8_t paths_uuid[16], const uint8_t sess_uuid[16],
		      const char *name, uint8_t out[RTRS_AUTH_PROOF_LEN])
{
	struct rtrs_hmac h;

	rtrs__hmac_init(&h, k->key, k->klen);
	rtrs__hmac_update(&h, server ? "rtrs-srv" : "rtrs-clt", 8);
	rtrs__hmac_update(&h, server ? nc : ns, RTRS_AUTH_NONCE_LEN);
	rtrs__hmac_update(&h, server ? ns : nc, RTRS_AUTH_NONCE_LEN);
	rtrs__hmac_update(&h, paths_uuid, 16);
	rtrs__hmac_update(&h, sess_uuid, 16);
	put_str(&h, k->id);
	if (name)
		put_str(&h, name);
	rtrs__hmac_final(&h, out);
	rtrs__memzero(&h, sizeof(h));
}
