/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log/log.h"

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

static int max_level = LOG_INFO;
static bool prefix_priority;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* The log is for administrators and the journal catalog: in English
 * whatever the locale, %m included (strerror follows LC_MESSAGES). Made
 * once in log_open(); glibc hands out its static "C" locale object. */
static locale_t c_locale;

/* journald reads a "<N>" prefix on a stream line as the priority; it sets
 * JOURNAL_STREAM to the device and inode of that stream. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(void)
{
	const char *e = getenv("SAFECAD_LOG_LEVEL");

	prefix_priority = stderr_is_journal();
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (e && streq(e, "debug"))
		max_level = LOG_DEBUG;
}

bool log_to_journal(void)
{
	return prefix_priority;
}

int log_get_max_level(void)
{
	return max_level;
}

void log_set_max_level(int level)
{
	max_level = level;
}

int log_internal(int level, int error, const char *format, ...)
{
	int saved = errno;
	va_list ap;

	if (error < 0)
		error = -error;
	if (level <= max_level) {
		locale_t previous = c_locale ? uselocale(c_locale) : (locale_t)0;

		pthread_mutex_lock(&log_lock);
		if (prefix_priority)
			fprintf(stderr, "<%d>", level);
		errno = error;
		va_start(ap, format);
		vfprintf(stderr, format, ap);
		va_end(ap);
		fputc('\n', stderr);
		fflush(stderr);
		pthread_mutex_unlock(&log_lock);
		if (c_locale)
			uselocale(previous);
	}
	errno = saved;
	return -error;
}
