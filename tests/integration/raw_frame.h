/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * The software-RMA frame of docs/protocol.md section 2.6, written here
 * from the spec for the raw hostile peers (test_hostile.c,
 * test_hostile_srv.c): they must not use the library's own encoder.
 */
#ifndef RTRS_TEST_RAW_FRAME_H
#define RTRS_TEST_RAW_FRAME_H

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SWR_HDR 24
#define SWR_MSG 1
#define SWR_RMA 2
#define SWR_IMM 0x1
#define SWR_LAST 0x2

/* le16 magic 0x5753 | u8 type | u8 flags | le32 imm | le32 key |
 * le32 len | le64 off */
static inline void frame_put(uint8_t *h, unsigned type, unsigned flags,
			     uint32_t imm, uint32_t key, uint32_t len,
			     uint64_t off)
{
	h[0] = 0x53;
	h[1] = 0x57;
	h[2] = (uint8_t)type;
	h[3] = (uint8_t)flags;
	for (int i = 0; i < 4; i++) {
		h[4 + i] = (uint8_t)(imm >> (8 * i));
		h[8 + i] = (uint8_t)(key >> (8 * i));
		h[12 + i] = (uint8_t)(len >> (8 * i));
	}
	for (int i = 0; i < 8; i++)
		h[16 + i] = (uint8_t)(off >> (8 * i));
}

static inline uint32_t frame_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/*
 * The socket backend's stream (provider sock, docs/protocol.md 2.6a),
 * from the spec too: a 12-byte hello each way, "RTRSSOCK" | u8 type |
 * u8 version 1 | le16 len, then len bytes of private data (at most 256),
 * then frames of section 2.6 back to back, each at most 24 + 132 KiB.
 * The sockets here are non-blocking; every wait is a poll() with a limit.
 */
#define SK_HELLO 12
#define SK_PRIV_MAX 256
#define SK_CONNECT 1
#define SK_ACCEPT 2
#define SK_REJECT 3
#define SK_FRAME_MAX (132u << 10)       /* a frame's payload, at most */

/* A hello's 12 bytes at @h: @type, version 1, @len (as given: a hostile
 * peer says more than 256). */
static inline void sk_hello_put(uint8_t *h, unsigned type, unsigned len)
{
	memcpy(h, "RTRSSOCK", 8);
	h[8] = (uint8_t)type;
	h[9] = 1;
	h[10] = (uint8_t)len;
	h[11] = (uint8_t)(len >> 8);
}

/* The hello at @h (12 bytes): its private data's length, its type in
 * *@type; -1 when it is not one (magic, version, a length past 256). */
static inline int sk_hello_get(const uint8_t *h, unsigned *type)
{
	unsigned len = (unsigned)h[10] | (unsigned)h[11] << 8;

	if (memcmp(h, "RTRSSOCK", 8) || h[9] != 1 || len > SK_PRIV_MAX)
		return -1;
	*type = h[8];
	return (int)len;
}

static inline uint64_t sk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds from now until @end, 0 when it passed. */
static inline int sk_left(uint64_t end)
{
	uint64_t now = sk_now_ms();

	return now >= end ? 0 : (int)(end - now);
}

/* Wait up to @ms for @ev on @fd: 1 ready (or an error or hang-up to
 * read), 0 not, -errno. */
static inline int sk_wait(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* A TCP connection to numeric @host:@port, made within @ms, with
 * TCP_NODELAY (bytes written one by one go one by one): its fd, or
 * -errno (-ECONNREFUSED: nobody listens). */
static inline int sk_dial(const char *host, const char *port, unsigned ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	socklen_t el = sizeof(int);
	int fd, one = 1, err = 0, r;

	if (getaddrinfo(host, port, &hints, &ai))
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		err = -errno;
		freeaddrinfo(ai);
		return err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r && errno != EINPROGRESS)
		err = -errno;
	else if (r && (r = sk_wait(fd, POLLOUT, (int)ms)) <= 0)
		err = r ? r : -ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
		err = -errno;
	else
		err = -err;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Write all @n bytes of @b within @ms: 0, -ETIMEDOUT, or the socket's
 * -errno (-EPIPE, -ECONNRESET: the peer closed). Never SIGPIPE. */
static inline int sk_write(int fd, const void *b, size_t n, unsigned ms)
{
	uint64_t end = sk_now_ms() + ms;
	const uint8_t *p = b;

	while (n) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = sk_wait(fd, POLLOUT, sk_left(end));
		if (r < 0)
			return (int)r;
		if (!r)
			return -ETIMEDOUT;
	}
	return 0;
}

/* Read what comes, at most @n bytes, waiting up to @ms (0: only what is
 * there): the bytes read, 0 when the peer closed (or reset), -ETIMEDOUT
 * when nothing came, another -errno. */
static inline ssize_t sk_read(int fd, void *b, size_t n, unsigned ms)
{
	uint64_t end = sk_now_ms() + ms;

	for (;;) {
		ssize_t r = recv(fd, b, n, MSG_DONTWAIT);

		if (r >= 0)
			return r;
		if (errno == ECONNRESET || errno == EPIPE)
			return 0;
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (errno == EINTR)
			continue;
		r = sk_wait(fd, POLLIN, sk_left(end));
		if (r < 0)
			return r;
		if (!r)
			return -ETIMEDOUT;
	}
}

/* Read exactly @n bytes within @ms: 0, -ECONNRESET when the peer closed
 * first, -ETIMEDOUT, another -errno. */
static inline int sk_read_all(int fd, void *b, size_t n, unsigned ms)
{
	uint64_t end = sk_now_ms() + ms;
	uint8_t *p = b;

	while (n) {
		ssize_t r = sk_read(fd, p, n, (unsigned)sk_left(end));

		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

#endif
