/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "time-util.h"

char *format_rfc3339(char *buf, size_t size, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		return NULL;
	if (strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
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
