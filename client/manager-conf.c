/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager-conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

char *manager_conf_path(void)
{
	const char *config = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *path;

	/* The base directory specification: a relative value is ignored. */
	if (!isempty(config) && config[0] == '/') {
		if (asprintf(&path, "%s/safecad/manager.conf", config) < 0)
			return NULL;
	} else if (!isempty(home) && home[0] == '/') {
		if (asprintf(&path, "%s/.config/safecad/manager.conf", home) < 0)
			return NULL;
	} else {
		return NULL;
	}
	return path;
}

static const char *skip_blanks(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *trim_end(const char *start, const char *end)
{
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

static bool span_is(const char *start, const char *end, const char *word)
{
	return (size_t)(end - start) == strlen(word) && memcmp(start, word, end - start) == 0;
}

/* GKeyFile's syntax, as the window writes it: [group] lines, key=value
 * lines, # comments; the last value of a key wins, as GKeyFile reads it. */
bool manager_conf_open_on_insert(const char *text)
{
	bool in_group = false, on = false;

	for (const char *line = text; line && *line;) {
		const char *next = strchr(line, '\n');
		const char *end = trim_end(line, next ? next : line + strlen(line));
		const char *s = skip_blanks(line, end);

		if (s < end && *s == '[') {
			in_group = end[-1] == ']' && span_is(s + 1, end - 1, MANAGER_CONF_GROUP);
		} else if (in_group && s < end && *s != '#') {
			const char *equals = memchr(s, '=', end - s);

			if (equals && span_is(s, trim_end(s, equals), MANAGER_CONF_OPEN_ON_INSERT))
				on = span_is(skip_blanks(equals + 1, end), end, "true");
		}
		line = next ? next + 1 : NULL;
	}
	return on;
}
