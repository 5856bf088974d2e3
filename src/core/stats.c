// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * The one formatter of the public counters: struct rtrs_clt_stats, struct
 * rtrs_path_info and struct rtrs_srv_stats as text, one line or JSON
 * (rtrs_clt_stats_fmt(3)). rtrsctl's control socket (ctl.c), rtrs-perf and
 * rtrs-demo print through it, so a name or a format exists once.
 *
 * Pure: no lock, no allocation, no I/O; snprintf semantics. Below ctl.c;
 * calls only rtrs_path_state_str() (clt_path.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include <rtrs/rtrs.h>

#define FMT_ALL (RTRS_FMT_JSON | RTRS_FMT_LINE | RTRS_FMT_HEAD | RTRS_FMT_OPEN)

typedef unsigned long long ull;

/* What has been written, and how much would have been. */
struct out {
	char *buf;
	size_t len, n;
};

__attribute__((format(printf, 2, 3)))
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	if (o->n < o->len)
		r = vsnprintf(o->buf + o->n, o->len - o->n, fmt, ap);
	else
		r = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (r > 0)
		o->n += (size_t)r;
}

/* @s as a JSON string: '"' and '\' escaped, control bytes as \u00XX. */
static void put_json_str(struct out *o, const char *s, size_t max)
{
	put(o, "\"");
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

/* The arguments checked (-EINVAL) and the output begun. */
static int fmt_begin(struct out *o, const void *st, char *buf, size_t len,
		     unsigned flags, unsigned allowed)
{
	if ((!st && !(flags & RTRS_FMT_HEAD)) || (!buf && len) ||
	    (flags & ~allowed) ||
	    ((flags & RTRS_FMT_JSON) && (flags & RTRS_FMT_LINE)) ||
	    ((flags & RTRS_FMT_HEAD) && !(flags & RTRS_FMT_LINE)) ||
	    ((flags & RTRS_FMT_OPEN) && !(flags & RTRS_FMT_JSON)))
		return -EINVAL;
	*o = (struct out){ .buf = buf, .len = len };
	if (len)
		buf[0] = 0;
	return 0;
}

static int fmt_end(struct out *o, unsigned flags)
{
	if ((flags & RTRS_FMT_JSON) && !(flags & RTRS_FMT_OPEN))
		put(o, "}");
	return o->n > (size_t)INT_MAX ? -EOVERFLOW : (int)o->n;
}

int rtrs_clt_stats_fmt(const struct rtrs_clt_stats *st, char *buf,
		       size_t len, unsigned flags)
{
	struct out o;
	int ret = fmt_begin(&o, st, buf, len, flags, FMT_ALL & ~RTRS_FMT_HEAD);

	if (ret)
		return ret;
	if (flags & RTRS_FMT_JSON)
		put(&o, "{\"read_cnt\":%llu,\"read_bytes\":%llu,"
		    "\"write_cnt\":%llu,\"write_bytes\":%llu,\"errors\":%llu,"
		    "\"inflight\":%llu,\"failovers\":%llu,\"held\":%llu,"
		    "\"tx_backlog\":%llu,\"cpu_migration_from\":%llu,"
		    "\"cpu_migration_to\":%llu,\"paths\":%u,"
		    "\"paths_connected\":%u",
		    (ull)st->read_cnt, (ull)st->read_bytes, (ull)st->write_cnt,
		    (ull)st->write_bytes, (ull)st->errors, (ull)st->inflight,
		    (ull)st->failovers, (ull)st->held, (ull)st->tx_backlog,
		    (ull)st->cpu_migration_from, (ull)st->cpu_migration_to,
		    st->paths, st->paths_connected);
	else if (flags & RTRS_FMT_LINE)
		put(&o, "paths %u/%u connected  inflight %llu  failovers %llu  "
		    "reads %llu (%llu B)  writes %llu (%llu B)  errors %llu  "
		    "held %llu  tx-backlog %llu  cpu-migrations %llu/%llu",
		    st->paths_connected, st->paths, (ull)st->inflight,
		    (ull)st->failovers, (ull)st->read_cnt, (ull)st->read_bytes,
		    (ull)st->write_cnt, (ull)st->write_bytes, (ull)st->errors,
		    (ull)st->held, (ull)st->tx_backlog,
		    (ull)st->cpu_migration_from, (ull)st->cpu_migration_to);
	else    /* the kernel's rtrs-client session names (rtrsctl stats) */
		put(&o, "paths: %u (%u connected)\n"
		    "rdma: %llu %llu %llu %llu %llu %llu\n"
		    "errors: %llu  held: %llu  tx_backlog: %llu\n",
		    st->paths, st->paths_connected, (ull)st->read_cnt,
		    (ull)st->read_bytes, (ull)st->write_cnt,
		    (ull)st->write_bytes, (ull)st->inflight,
		    (ull)st->failovers, (ull)st->errors, (ull)st->held,
		    (ull)st->tx_backlog);
	return fmt_end(&o, flags);
}

static void path_json(struct out *o, const struct rtrs_path_info *in)
{
	put(o, "{\"idx\":%u,\"state\":\"%s\",\"src_addr\":", in->idx,
	    rtrs_path_state_str(in->state));
	put_json_str(o, in->src, sizeof(in->src));
	put(o, ",\"dst_addr\":");
	put_json_str(o, in->dst, sizeof(in->dst));
	put(o, ",\"read_cnt\":%llu,\"read_bytes\":%llu,\"write_cnt\":%llu,"
	    "\"write_bytes\":%llu,\"inflight\":%llu,\"failover_cnt\":%llu,"
	    "\"reconnects_ok\":%llu,\"reconnects_failed\":%llu,"
	    "\"hb_timeouts\":%llu,\"cur_latency_ns\":%llu,"
	    "\"cpu_migration_from\":%llu,\"cpu_migration_to\":%llu",
	    (ull)in->read_cnt, (ull)in->read_bytes, (ull)in->write_cnt,
	    (ull)in->write_bytes, (ull)in->inflight, (ull)in->failovers,
	    (ull)in->reconnects_ok, (ull)in->reconnects_failed,
	    (ull)in->hb_timeouts, (ull)in->cur_latency_ns,
	    (ull)in->cpu_migration_from, (ull)in->cpu_migration_to);
}

int rtrs_path_info_fmt(const struct rtrs_path_info *in, char *buf,
		       size_t len, unsigned flags)
{
	struct out o;
	int ret = fmt_begin(&o, in, buf, len, flags, FMT_ALL);

	if (ret)
		return ret;
	if (flags & RTRS_FMT_HEAD)
		put(&o, "%-4s %-12s %-22s %-22s %10s %10s %8s %9s %7s %5s %9s",
		    "PATH", "STATE", "SRC", "DST", "READS", "WRITES",
		    "INFLIGHT", "FAILOVERS", "RECONN", "HB_TO", "LAT_US");
	else if (flags & RTRS_FMT_JSON)
		path_json(&o, in);
	else if (flags & RTRS_FMT_LINE)
		/* latency in us with one decimal, without floating point */
		put(&o, "%-4u %-12s %-22.*s %-22.*s %10llu %10llu %8llu %9llu "
		    "%3llu/%-3llu %5llu %7llu.%llu", in->idx,
		    rtrs_path_state_str(in->state),
		    (int)sizeof(in->src), *in->src ? in->src : "-",
		    (int)sizeof(in->dst), in->dst,
		    (ull)in->read_cnt, (ull)in->write_cnt, (ull)in->inflight,
		    (ull)in->failovers, (ull)in->reconnects_ok,
		    (ull)in->reconnects_failed, (ull)in->hb_timeouts,
		    (ull)in->cur_latency_ns / 1000,
		    (ull)in->cur_latency_ns % 1000 / 100);
	else    /* the kernel's rtrs-client path sysfs names and formats */
		put(&o, "state: %s\nsrc_addr: %.*s\ndst_addr: %.*s\n"
		    "stats/rdma: %llu %llu %llu %llu %llu %llu\n"
		    "stats/reconnects: %llu %llu\n"
		    "stats/cpu_migration_from: %llu\n"
		    "stats/cpu_migration_to: %llu\n"
		    "hb_timeouts: %llu\ncur_latency: %llu ns\n",
		    rtrs_path_state_str(in->state), (int)sizeof(in->src),
		    *in->src ? in->src : "-", (int)sizeof(in->dst), in->dst,
		    (ull)in->read_cnt, (ull)in->read_bytes, (ull)in->write_cnt,
		    (ull)in->write_bytes, (ull)in->inflight,
		    (ull)in->failovers, (ull)in->reconnects_ok,
		    (ull)in->reconnects_failed, (ull)in->cpu_migration_from,
		    (ull)in->cpu_migration_to, (ull)in->hb_timeouts,
		    (ull)in->cur_latency_ns);
	return fmt_end(&o, flags);
}

int rtrs_srv_stats_fmt(const struct rtrs_srv_stats *st, char *buf,
		       size_t len, unsigned flags)
{
	struct out o;
	int ret = fmt_begin(&o, st, buf, len, flags, FMT_ALL & ~RTRS_FMT_HEAD);

	if (ret)
		return ret;
	if (flags & RTRS_FMT_JSON)
		put(&o, "{\"read_cnt\":%llu,\"read_bytes\":%llu,"
		    "\"write_cnt\":%llu,\"write_bytes\":%llu,\"executed\":%llu,"
		    "\"dup_answered\":%llu,\"dup_attached\":%llu,"
		    "\"stale_dropped\":%llu,\"paths_fenced\":%llu,"
		    "\"hb_timeouts\":%llu,\"paths_closed_bad_input\":%llu,"
		    "\"sessions_open\":%llu",
		    (ull)st->read_cnt, (ull)st->read_bytes, (ull)st->write_cnt,
		    (ull)st->write_bytes, (ull)st->executed,
		    (ull)st->dup_answered, (ull)st->dup_attached,
		    (ull)st->stale_dropped, (ull)st->paths_fenced,
		    (ull)st->hb_timeouts, (ull)st->paths_closed_bad_input,
		    (ull)st->sessions);
	else if (flags & RTRS_FMT_LINE)
		put(&o, "reads %llu (%llu B)  writes %llu (%llu B)  "
		    "sessions-open %llu  bad-input-paths %llu  hb-timeouts %llu  "
		    "executed %llu  dup-answered %llu  dup-attached %llu  "
		    "stale-dropped %llu  paths-fenced %llu",
		    (ull)st->read_cnt, (ull)st->read_bytes, (ull)st->write_cnt,
		    (ull)st->write_bytes, (ull)st->sessions,
		    (ull)st->paths_closed_bad_input, (ull)st->hb_timeouts,
		    (ull)st->executed, (ull)st->dup_answered,
		    (ull)st->dup_attached, (ull)st->stale_dropped,
		    (ull)st->paths_fenced);
	else
		put(&o, "rdma: %llu %llu %llu %llu\n"
		    "executed %llu  dup_answered %llu  dup_attached %llu  "
		    "stale_dropped %llu  paths_fenced %llu  hb_timeouts %llu  "
		    "bad_input %llu  sessions_open %llu\n",
		    (ull)st->read_cnt, (ull)st->read_bytes, (ull)st->write_cnt,
		    (ull)st->write_bytes, (ull)st->executed,
		    (ull)st->dup_answered, (ull)st->dup_attached,
		    (ull)st->stale_dropped, (ull)st->paths_fenced,
		    (ull)st->hb_timeouts, (ull)st->paths_closed_bad_input,
		    (ull)st->sessions);
	return fmt_end(&o, flags);
}
