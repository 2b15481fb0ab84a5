/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "ini-check.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

int ini_check(const char *text, const char **ret_reason)
{
	bool after_key = false;
	int line = 0;

	for (const char *p = text; *p;) {
		const char *end = strchr(p, '\n');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *s = p, *e = p + len;

		line++;
		if (len > INI_LINE_MAX) {
			*ret_reason = "line too long (at most 199 bytes)";
			return line;
		}
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s < e && *s != '#' && *s != ';') {
			if (*s == '[') {
				if (!memchr(s, ']', (size_t)(e - s))) {
					*ret_reason = "section name without ']'";
					return line;
				}
				after_key = false;
			} else if (s > p && after_key) {
				/* An indented line after a setting continues it. */
			} else if (!memchr(s, '=', (size_t)(e - s)) &&
				   !memchr(s, ':', (size_t)(e - s))) {
				*ret_reason = "not a \"key = value\" line";
				return line;
			} else
				after_key = true;
		}
		p = end ? end + 1 : p + len;
	}
	return 0;
}
