/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * Pre-shared-key authentication (docs/protocol.md section 2.7): the key
 * file, the nonces and the two proofs. Pure functions but for the file
 * and getrandom().
 */
#ifndef RTRS_CORE_AUTH_H
#define RTRS_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

#define RTRS_AUTH_KEY_MIN 32           /* bytes */
#define RTRS_AUTH_KEY_MAX 128
#define RTRS_AUTH_MAX_KEYS 4096        /* lines in a key file */

struct rtrs_auth_key {
	char id[RTRS_AUTH_ID_LEN];
	uint8_t key[RTRS_AUTH_KEY_MAX];
	size_t klen;
};

struct rtrs_keyring {
	struct rtrs_auth_key *k;
	size_t n;
};

/*
 * Read @path: lines "IDENTITY HEXKEY", '#' comments and blank lines. The
 * file must be a regular file not readable, writable or executable by
 * group or others (-EPERM otherwise, with a log line saying so). Errors:
 * -ENOENT/-EACCES (open), -EINVAL (a malformed line, a key shorter than
 * 32 bytes or longer than 128, an identity twice, no key at all; the line
 * is logged), -EFBIG (more than RTRS_AUTH_MAX_KEYS), -ENOMEM.
 */
int rtrs__auth_load(const char *path, struct rtrs_keyring *kr);
/* the entry of @id, NULL if there is none */
const struct rtrs_auth_key *rtrs__auth_find(const struct rtrs_keyring *kr,
					    const char *id);
/* frees and zeroes the keys */
void rtrs__auth_free(struct rtrs_keyring *kr);
/* @n random bytes from getrandom(); 0 or -errno */
int rtrs__auth_random(void *buf, size_t n);

/*
 * The proofs:
 *  server: HMAC(K, "rtrs-srv" | Nc | Ns | paths_uuid | sess_uuid | id)
 *  client: HMAC(K, "rtrs-clt" | Ns | Nc | paths_uuid | sess_uuid | id
 *               | name)
 * with id and name each as one length byte then its bytes. @name is NULL
 * for the server's.
 */
void rtrs__auth_proof(const struct rtrs_auth_key *k, bool server,
		      const uint8_t nc[RTRS_AUTH_NONCE_LEN],
		      const uint8_t ns[RTRS_AUTH_NONCE_LEN],
		      const uint8_t paths_uuid[16], const uint8_t sess_uuid[16],
		      const char *name, uint8_t out[RTRS_AUTH_PROOF_LEN]);

#endif
