/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* libinih, as Debian builds it, reads lines through a 200-byte buffer and
 * parses the rest of a longer line as a line of its own; and it reports
 * only the first bad line, not why. So the text is checked first: every
 * line fits, sections are closed, settings have a '=' (an indented line
 * after a setting continues it, as libinih reads it). Returns 0, or the
 * 1-based number of the first bad line with the reason in ret_reason. */
#define INI_LINE_MAX 199

int ini_check(const char *text, const char **ret_reason);
