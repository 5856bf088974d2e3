// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* Logging: the level ($RTRS_LOG_LEVEL), the application's sink (under
 * sink_lock, a leaf: RTRS_RANK_LOG), rate limiting. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lock.h"
#include "util.h"

_Atomic int rtrs__log_level = RTRS_LOG_WARN;

static struct rtrs_lock sink_lock =
	RTRS_LOCK_INITIALIZER(RTRS_RANK_LOG, "log sink");
static rtrs_log_fn sink;
static void *sink_priv;

static const char *const names[] = { "err", "warn", "info", "debug" };

__attribute__((constructor)) static void log_init(void)
{
	const char *s = getenv("RTRS_LOG_LEVEL");

	if (!s)
		return;
	for (int i = 0; i < (int)ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]) || (s[0] == '0' + i && !s[1]))
			atomic_store(&rtrs__log_level, i);
}

void rtrs_set_log_fn(rtrs_log_fn fn, void *priv)
{
	rtrs__lock(&sink_lock);
	sink = fn;
	sink_priv = priv;
	rtrs__unlock(&sink_lock);
}

void rtrs_set_log_level(enum rtrs_log_level level)
{
	if ((int)level >= RTRS_LOG_ERR && level <= RTRS_LOG_DEBUG)
		atomic_store(&rtrs__log_level, (int)level);
}

void rtrs__log(enum rtrs_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rtrs__lock(&sink_lock);
	if (sink)
		sink(lvl, msg, sink_priv);
	else
		fprintf(stderr, "rtrs %s: %s\n", names[lvl & 3], msg);
	rtrs__unlock(&sink_lock);
}

int rtrs__log_ratelimit(_Atomic uint64_t *state, unsigned interval_ms)
{
	uint64_t now = rtrs_now_ms() + 1, last = atomic_load(state);

	if (last && now - last < interval_ms)
		return 0;
	return atomic_compare_exchange_strong(state, &last, now);
}
