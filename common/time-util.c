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

int64_t days_until(int64_t t, int64_t now)
{
	int64_t d = t - now;

	/* Floor division: 1 s past the end is day -1, not 0. */
	if (d >= 0)
		return d / 86400;
	return -((-d + 86399) / 86400);
}
