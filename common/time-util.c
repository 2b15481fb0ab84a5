/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "time-util.h"

#include <stdio.h>

char *format_rfc3339(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	int n;

	if (!gmtime_r(&tt, &tm))
		return NULL;
	/* RFC 3339 has four-digit years only. */
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		return NULL;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= size)
		return NULL;
	return buf;
}

int64_t days_until(int64_t t, int64_t now_usec)
{
	const int64_t day = INT64_C(86400) * 1000000;
	/* Whole seconds and the fraction apart, so nothing overflows for
	 * any time a certificate can hold. */
	int64_t seconds = t - now_usec / 1000000, fraction = now_usec % 1000000;
	int64_t d;

	if (fraction < 0) {
		fraction += 1000000;
		seconds++;
	}
	/* Floor division over microseconds: a fraction of a second short of
	 * ten days is nine days, and 1 s past the end is day -1, not 0. */
	if (seconds > 0 && seconds > (INT64_MAX - 1000000) / 1000000)
		return seconds / 86400;
	d = seconds * 1000000 - fraction;
	if (d >= 0)
		return d / day;
	return -((-d + day - 1) / day);
}

int64_t now_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return (int64_t)time(NULL) * 1000000;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t monotonic_usec(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
