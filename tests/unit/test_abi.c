// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The public structures a caller allocates keep the layout of 0.3.0: the
 * SONAME stays librtrs.so.0 / librnbd.so.0 through 0.x, so a program built
 * against an older 0.y header must keep working with a newer library.
 * New fields go into new structures (rtrs_path_link), never at the end of
 * one a caller passes by pointer without its size. Sizes for LP64 (x86_64,
 * aarch64); elsewhere the test skips.
 */
#include <stddef.h>
#include <stdio.h>
#include <rnbd/rnbd.h>
#include <rtrs/rtrs.h>

static int fails;

static void eq(const char *what, size_t got, size_t want)
{
	if (got != want) {
		fprintf(stderr, "FAIL: %s is %zu, 0.3.0 has %zu\n", what, got,
			want);
		fails++;
	}
}

#define SZ(t, n) eq("sizeof(struct " #t ")", sizeof(struct t), n)
#define OFF(t, f, n) eq("offsetof(" #t ", " #f ")", offsetof(struct t, f), n)

int main(void)
{
#if defined(__LP64__) && (defined(__x86_64__) || defined(__aarch64__))
	SZ(rnbd_dev_info, 56);
	SZ(rtrs_attrs, 16);
	SZ(rtrs_clt_attr, 72);
	SZ(rtrs_clt_stats, 96);
	SZ(rtrs_path_addr, 16);
	SZ(rtrs_path_info, 360);
	OFF(rtrs_path_info, cpu_migration_to, 352);
	SZ(rtrs_req_ops, 16);
	SZ(rtrs_srv_attr, 72);
	SZ(rtrs_srv_ops, 16);
	SZ(rtrs_srv_sess_stats, 40);
	/* new in RTRS_0.4, frozen from there (arrays the caller passes) */
	SZ(rtrs_srv_sess_info, 304);
	OFF(rtrs_srv_sess_info, read_cnt, 272);
	SZ(rtrs_srv_path_info, 168);
	OFF(rtrs_srv_path_info, read_cnt, 136);
	SZ(rtrs_srv_stats, 96);
	if (fails)
		return 1;
	printf("ok: the public structures have 0.3.0's layout\n");
	return 0;
#else
	printf("skip: layouts are recorded for LP64 x86_64/aarch64 only\n");
	return 77;
#endif
}
