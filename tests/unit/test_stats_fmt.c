/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The counters' formatter (src/core/stats.c, rtrs_clt_stats_fmt(3)), with
 * no provider: the exact output of every form for filled structs, JSON
 * escaping, snprintf truncation at every length, the -EINVAL cases, and
 * the JSON forms parsed by python3's json module when it is there. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <rtrs/rtrs.h>

/* every field a different value, one of them the largest */
static const struct rtrs_clt_stats CST = {
	.read_cnt = 1, .read_bytes = UINT64_MAX, .write_cnt = 3,
	.write_bytes = 4, .errors = 5, .inflight = 6,
	.cpu_migration_from = 7, .cpu_migration_to = 8, .tx_backlog = 9,
	.failovers = 10, .held = 11, .paths = 12, .paths_connected = 13,
};

static const struct rtrs_path_info PIN = {
	.idx = 3, .state = RTRS_PATH_CONNECTED, .src = "",
	.dst = "127.0.0.2:4242", .read_cnt = 21, .read_bytes = 22,
	.write_cnt = 23, .write_bytes = 24, .inflight = 25, .failovers = 26,
	.reconnects_ok = 27, .reconnects_failed = 28, .hb_timeouts = 29,
	.cur_latency_ns = 1234567, .cpu_migration_from = 31,
	.cpu_migration_to = 32,
};

static const struct rtrs_srv_stats SST = {
	.read_cnt = 41, .read_bytes = 42, .write_cnt = 43, .write_bytes = 44,
	.sessions = 45, .paths_closed_bad_input = 46, .executed = 47,
	.dup_answered = 48, .dup_attached = 49, .stale_dropped = 50,
	.paths_fenced = 51, .hb_timeouts = 52,
};

#define CLT_JSON "{\"read_cnt\":1,\"read_bytes\":18446744073709551615," \
	"\"write_cnt\":3,\"write_bytes\":4,\"errors\":5,\"inflight\":6," \
	"\"failovers\":10,\"held\":11,\"tx_backlog\":9," \
	"\"cpu_migration_from\":7,\"cpu_migration_to\":8,\"paths\":12," \
	"\"paths_connected\":13}"
#define CLT_TEXT "paths: 12 (13 connected)\n" \
	"rdma: 1 18446744073709551615 3 4 6 10\n" \
	"errors: 5  held: 11  tx_backlog: 9\n"
#define CLT_LINE "paths 13/12 connected  inflight 6  failovers 10  " \
	"reads 1 (18446744073709551615 B)  writes 3 (4 B)  errors 5  " \
	"held 11  tx-backlog 9  cpu-migrations 7/8"

#define PATH_JSON "{\"idx\":3,\"state\":\"connected\",\"src_addr\":\"\"," \
	"\"dst_addr\":\"127.0.0.2:4242\",\"read_cnt\":21,\"read_bytes\":22," \
	"\"write_cnt\":23,\"write_bytes\":24,\"inflight\":25," \
	"\"failover_cnt\":26,\"reconnects_ok\":27,\"reconnects_failed\":28," \
	"\"hb_timeouts\":29,\"cur_latency_ns\":1234567," \
	"\"cpu_migration_from\":31,\"cpu_migration_to\":32}"
#define PATH_TEXT "state: connected\nsrc_addr: -\n" \
	"dst_addr: 127.0.0.2:4242\nstats/rdma: 21 22 23 24 25 26\n" \
	"stats/reconnects: 27 28\nstats/cpu_migration_from: 31\n" \
	"stats/cpu_migration_to: 32\nhb_timeouts: 29\n" \
	"cur_latency: 1234567 ns\n"
#define PATH_LINE "3    connected    -                      " \
	"127.0.0.2:4242                 21         23       25        26  " \
	"27/28     29    1234.5"
#define PATH_HEAD "PATH STATE        SRC                    DST          " \
	"               READS     WRITES INFLIGHT FAILOVERS  RECONN HB_TO    " \
	"LAT_US"

#define SRV_JSON "{\"read_cnt\":41,\"read_bytes\":42,\"write_cnt\":43," \
	"\"write_bytes\":44,\"executed\":47,\"dup_answered\":48," \
	"\"dup_attached\":49,\"stale_dropped\":50,\"paths_fenced\":51," \
	"\"hb_timeouts\":52,\"paths_closed_bad_input\":46," \
	"\"sessions_open\":45}"
#define SRV_TEXT "rdma: 41 42 43 44\nexecuted 47  dup_answered 48  " \
	"dup_attached 49  stale_dropped 50  paths_fenced 51  hb_timeouts 52  " \
	"bad_input 46  sessions_open 45\n"
#define SRV_LINE "reads 41 (42 B)  writes 43 (44 B)  sessions-open 45  " \
	"bad-input-paths 46  hb-timeouts 52  executed 47  dup-answered 48  " \
	"dup-attached 49  stale-dropped 50  paths-fenced 51"

/* one formatter behind one signature */
typedef int (*fmt_fn)(const void *st, char *buf, size_t len, unsigned fl);

static int clt_fmt(const void *st, char *b, size_t n, unsigned fl)
{
	return rtrs_clt_stats_fmt(st, b, n, fl);
}

static int path_fmt(const void *st, char *b, size_t n, unsigned fl)
{
	return rtrs_path_info_fmt(st, b, n, fl);
}

static int srv_fmt(const void *st, char *b, size_t n, unsigned fl)
{
	return rtrs_srv_stats_fmt(st, b, n, fl);
}

static const struct form {
	fmt_fn fn;
	const void *st;
	unsigned flags;
	const char *want;
} FORMS[] = {
	{ clt_fmt, &CST, RTRS_FMT_JSON, CLT_JSON },
	{ clt_fmt, &CST, RTRS_FMT_TEXT, CLT_TEXT },
	{ clt_fmt, &CST, RTRS_FMT_LINE, CLT_LINE },
	{ path_fmt, &PIN, RTRS_FMT_JSON, PATH_JSON },
	{ path_fmt, &PIN, RTRS_FMT_TEXT, PATH_TEXT },
	{ path_fmt, &PIN, RTRS_FMT_LINE, PATH_LINE },
	{ path_fmt, NULL, RTRS_FMT_LINE | RTRS_FMT_HEAD, PATH_HEAD },
	{ path_fmt, &PIN, RTRS_FMT_LINE | RTRS_FMT_HEAD, PATH_HEAD },
	{ srv_fmt, &SST, RTRS_FMT_JSON, SRV_JSON },
	{ srv_fmt, &SST, RTRS_FMT_TEXT, SRV_TEXT },
	{ srv_fmt, &SST, RTRS_FMT_LINE, SRV_LINE },
};

static void exact_forms(void **state)
{
	char buf[RTRS_FMT_BUF];

	(void)state;
	for (size_t i = 0; i < sizeof(FORMS) / sizeof(FORMS[0]); i++) {
		const struct form *f = &FORMS[i];
		int n = f->fn(f->st, buf, sizeof(buf), f->flags);

		assert_int_equal(n, strlen(f->want));
		assert_string_equal(buf, f->want);
		/* the length alone, as snprintf(NULL, 0) */
		assert_int_equal(f->fn(f->st, NULL, 0, f->flags), n);
	}
}

/* At every length from 0 to one past the end: the same return value, the
 * longest prefix that fits, NUL-terminated, nothing written past @len. */
static void truncation(void **state)
{
	char buf[RTRS_FMT_BUF + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(FORMS) / sizeof(FORMS[0]); i++) {
		const struct form *f = &FORMS[i];
		size_t want = strlen(f->want);

		for (size_t len = 0; len <= want + 1; len++) {
			size_t keep = len ? (len - 1 < want ? len - 1 : want) : 0;

			memset(buf, 'Z', sizeof(buf));
			assert_int_equal(f->fn(f->st, buf, len, f->flags),
					 want);
			if (len) {
				assert_memory_equal(buf, f->want, keep);
				assert_int_equal(buf[keep], 0);
			}
			for (size_t j = len; j < sizeof(buf); j++)
				assert_int_equal(buf[j], 'Z');
		}
	}
}

static void bad_arguments(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(rtrs_clt_stats_fmt(NULL, buf, sizeof(buf), 0),
			 -EINVAL);
	assert_int_equal(rtrs_path_info_fmt(NULL, buf, sizeof(buf),
					    RTRS_FMT_JSON), -EINVAL);
	assert_int_equal(rtrs_srv_stats_fmt(NULL, buf, sizeof(buf),
					    RTRS_FMT_LINE), -EINVAL);
	assert_int_equal(rtrs_clt_stats_fmt(&CST, NULL, 1, 0), -EINVAL);
	assert_int_equal(rtrs_srv_stats_fmt(&SST, buf, sizeof(buf), 0x10),
			 -EINVAL);
	assert_int_equal(rtrs_clt_stats_fmt(&CST, buf, sizeof(buf),
					    RTRS_FMT_JSON | RTRS_FMT_LINE),
			 -EINVAL);
	assert_int_equal(rtrs_path_info_fmt(&PIN, buf, sizeof(buf),
					    RTRS_FMT_HEAD), -EINVAL);
	assert_int_equal(rtrs_clt_stats_fmt(&CST, buf, sizeof(buf),
					    RTRS_FMT_LINE | RTRS_FMT_HEAD),
			 -EINVAL);
	assert_int_equal(rtrs_srv_stats_fmt(&SST, buf, sizeof(buf),
					    RTRS_FMT_LINE | RTRS_FMT_OPEN),
			 -EINVAL);
	/* nothing written on an error */
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(rtrs_path_info_fmt(&PIN, buf, sizeof(buf), 0x20),
			 -EINVAL);
	assert_int_equal(buf[0], 'Z');
}

/* RTRS_FMT_OPEN: the JSON object without its closing brace. */
static void json_open(void **state)
{
	char buf[RTRS_FMT_BUF];

	(void)state;
	assert_int_equal(rtrs_path_info_fmt(&PIN, buf, sizeof(buf),
					    RTRS_FMT_JSON | RTRS_FMT_OPEN),
			 strlen(PATH_JSON) - 1);
	assert_memory_equal(buf, PATH_JSON, strlen(PATH_JSON) - 1);
	assert_int_equal(rtrs_srv_stats_fmt(&SST, buf, sizeof(buf),
					    RTRS_FMT_JSON | RTRS_FMT_OPEN),
			 strlen(SRV_JSON) - 1);
	assert_memory_equal(buf, SRV_JSON, strlen(SRV_JSON) - 1);
}

/* Addresses are strings from the application: quotes, backslashes and
 * control bytes are escaped; a src without a NUL is cut at its size. */
static void json_escapes(void **state)
{
	struct rtrs_path_info in = PIN;
	char buf[RTRS_FMT_BUF], want[160];
	int n;

	(void)state;
	snprintf(in.src, sizeof(in.src), "a\"b\\c\td\x01" "e\x7f");
	n = rtrs_path_info_fmt(&in, buf, sizeof(buf), RTRS_FMT_JSON);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_non_null(strstr(buf, "\"src_addr\":\"a\\\"b\\\\c\\u0009d"
				    "\\u0001e\\u007f\","));
	/* 128 bytes of src, no NUL: no byte of dst leaks into it */
	memset(in.src, 'a', sizeof(in.src));
	memset(want, 'a', sizeof(in.src));
	snprintf(want + sizeof(in.src), sizeof(want) - sizeof(in.src),
		 "\",\"dst_addr\":\"127.0.0.2:4242\",");
	rtrs_path_info_fmt(&in, buf, sizeof(buf), RTRS_FMT_JSON);
	assert_non_null(strstr(buf, want));
	assert_null(strstr(buf, "aaaaaaaa127"));
	snprintf(want + sizeof(in.src), sizeof(want) - sizeof(in.src),
		 " 127.0.0.2:4242 ");
	rtrs_path_info_fmt(&in, buf, sizeof(buf), RTRS_FMT_LINE);
	assert_non_null(strstr(buf, want));
	snprintf(want + sizeof(in.src), sizeof(want) - sizeof(in.src),
		 "\ndst_addr: 127.0.0.2:4242\n");
	rtrs_path_info_fmt(&in, buf, sizeof(buf), RTRS_FMT_TEXT);
	assert_non_null(strstr(buf, want));
}

/* The worst case fits RTRS_FMT_BUF: every address byte escaped, every
 * counter at its largest. */
static void fmt_buf_is_enough(void **state)
{
	struct rtrs_path_info in;
	struct rtrs_clt_stats c;
	struct rtrs_srv_stats s;

	(void)state;
	memset(&in, 0xff, sizeof(in));
	memset(in.src, 0x01, sizeof(in.src));
	memset(in.dst, 0x01, sizeof(in.dst));
	memset(&c, 0xff, sizeof(c));
	memset(&s, 0xff, sizeof(s));
	for (unsigned fl = 0; fl <= RTRS_FMT_LINE; fl++) {
		assert_in_range(rtrs_path_info_fmt(&in, NULL, 0, fl), 1,
				RTRS_FMT_BUF - 1);
		assert_in_range(rtrs_clt_stats_fmt(&c, NULL, 0, fl), 1,
				RTRS_FMT_BUF - 1);
		assert_in_range(rtrs_srv_stats_fmt(&s, NULL, 0, fl), 1,
				RTRS_FMT_BUF - 1);
	}
}

/* python3 -c 'json.load' on @s: 0 valid, 1 invalid, -1 no python3. */
static int py_json(const char *s)
{
	FILE *p;
	int st;

	if (system("command -v python3 >/dev/null 2>&1"))
		return -1;
	p = popen("python3 -c 'import json, sys; json.load(sys.stdin)' "
		  "2>/dev/null", "w");
	if (!p)
		return -1;
	fputs(s, p);
	st = pclose(p);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static void json_parses(void **state)
{
	struct rtrs_path_info in = PIN;
	char buf[RTRS_FMT_BUF], *all;

	(void)state;
	if (py_json("{}") < 0) {
		printf("skip: no python3; the exact forms stand for it\n");
		return;
	}
	assert_int_equal(py_json("{\"a\":"), 1);        /* it can fail */
	for (size_t i = 0; i < sizeof(FORMS) / sizeof(FORMS[0]); i++) {
		if (FORMS[i].flags != RTRS_FMT_JSON)
			continue;
		FORMS[i].fn(FORMS[i].st, buf, sizeof(buf), RTRS_FMT_JSON);
		assert_int_equal(py_json(buf), 0);
	}
	/* every ASCII byte in an address, one array of 127 paths */
	all = malloc(127 * RTRS_FMT_BUF + 2);
	assert_non_null(all);
	strcpy(all, "[");
	for (int c = 1; c < 0x80; c++) {
		memset(in.src, 0, sizeof(in.src));
		memset(in.src, c, 5);
		rtrs_path_info_fmt(&in, buf, sizeof(buf), RTRS_FMT_JSON);
		strcat(all, buf);
		strcat(all, c < 0x7f ? "," : "]");
	}
	assert_int_equal(py_json(all), 0);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exact_forms),
		cmocka_unit_test(truncation),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(json_open),
		cmocka_unit_test(json_escapes),
		cmocka_unit_test(fmt_buf_is_enough),
		cmocka_unit_test(json_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
