// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd_hello: a block device of an rnbd-server(8), with librnbd. Writes a
 * block at offset 0 and reads it back; exit status 0 when it came back
 * intact.
 *
 *   rnbd-server --listen 127.0.0.1:0 --export disk=/tmp/disk &
 *   cc rnbd_hello.c $(pkg-config --cflags --libs librnbd) -o rnbd_hello
 *   ./rnbd_hello 127.0.0.1:PORT disk
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rnbd/rnbd.h>

int main(int argc, char **argv)
{
	struct rtrs_path_addr path = { .dst = argc > 1 ? argv[1] : NULL };
	struct rnbd_dev_info info;
	struct rnbd_sess *s;
	struct rnbd_dev *d;
	char *out, *in;
	size_t bs;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: rnbd_hello ADDR:PORT DEVICE\n");
		return 2;
	}
	ret = rnbd_sess_open("rnbd-hello", &path, 1, NULL, &s);
	if (ret) {
		fprintf(stderr, "rnbd_hello: %s: %s\n", argv[1], rtrs_strerror(ret));
		return 1;
	}
	ret = rnbd_dev_open(s, argv[2], RNBD_ACCESS_RW, &d);
	if (!ret)
		ret = rnbd_dev_info(d, &info);
	if (ret) {
		fprintf(stderr, "rnbd_hello: %s: %s\n", argv[2], rtrs_strerror(ret));
		rnbd_sess_close(s);            /* closes the device too */
		return 1;
	}
	bs = info.logical_block_size;          /* IO is aligned to it */
	out = calloc(2, bs);
	if (!out) {
		rnbd_sess_close(s);
		return 1;
	}
	in = out + bs;
	snprintf(out, bs, "hello, rnbd");
	ret = rnbd_pwrite(d, out, bs, 0, RNBD_FUA);   /* durable when done */
	if (!ret)
		ret = rnbd_pread(d, in, bs, 0);
	rnbd_dev_close(d);
	rnbd_sess_close(s);
	if (ret || memcmp(in, out, bs)) {
		fprintf(stderr, "rnbd_hello: %s\n",
			ret ? rtrs_strerror(ret) : "the block read back differs");
		free(out);
		return 1;
	}
	printf("rnbd_hello: %s is %llu bytes; wrote and read back \"%s\"\n",
	       argv[2], (unsigned long long)info.size, in);
	free(out);
	return 0;
}
