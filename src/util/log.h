/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Logging: one macro family, level from RTRS_LOG_LEVEL, user sink. */
#ifndef RTRS_UTIL_LOG_H
#define RTRS_UTIL_LOG_H

#include <stdatomic.h>
#include <stdint.h>

#include "rtrs/rtrs.h"

extern _Atomic int rtrs__log_level;

void rtrs__log(enum rtrs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* true at most once per @interval_ms for the caller's @state */
int rtrs__log_ratelimit(_Atomic uint64_t *state, unsigned interval_ms);

#define rtrs_log(lvl, ...)                                                   \
	do {                                                                 \
		if ((int)(lvl) <= atomic_load_explicit(&rtrs__log_level,     \
						       memory_order_relaxed))\
			rtrs__log((lvl), __VA_ARGS__);                       \
	} while (0)

#define rtrs_err(...) rtrs_log(RTRS_LOG_ERR, __VA_ARGS__)
#define rtrs_warn(...) rtrs_log(RTRS_LOG_WARN, __VA_ARGS__)
#define rtrs_info(...) rtrs_log(RTRS_LOG_INFO, __VA_ARGS__)
#define rtrs_dbg(...) rtrs_log(RTRS_LOG_DEBUG, __VA_ARGS__)

/* Rate-limited (once per second per call site), for the data path. */
#define rtrs_err_rl(...)                                                     \
	do {                                                                 \
		static _Atomic uint64_t rl_state_;                           \
		if (rtrs__log_ratelimit(&rl_state_, 1000))                   \
			rtrs_err(__VA_ARGS__);                               \
	} while (0)

#endif
