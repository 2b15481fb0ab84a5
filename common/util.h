/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A decimal number in [min, max], surrounding blanks allowed. */
int parse_unsigned(const char *s, unsigned min, unsigned max, unsigned *ret);

/* "yes", "true", "on", "1" or "no", "false", "off", "0" (surrounding
 * blanks allowed); -EINVAL for anything else. */
int parse_boolean(const char *s, bool *ret);

/* A copy without leading and trailing white space; NULL when out of memory. */
char *strdup_strip(const char *s);

/* What read_small_file() answers for a FIFO, a device or a socket (and,
 * with O_NOFOLLOW, a symbolic link) where a file should be. */
#define ENOTREGULAR EBADFD

/* The whole file as a NUL-terminated string; -EFBIG when it is larger than
 * max bytes, -EBADMSG when it holds a NUL byte, -EISDIR for a folder and
 * -ENOTREGULAR for anything else that is not a regular file (never waited
 * on). */
int read_small_file(const char *path, size_t max, char **ret);
/* The same, with more open(2) flags (O_NOFOLLOW). */
int read_small_file_flags(const char *path, size_t max, int flags, char **ret);

/* strerror() for read_small_file()'s answers, "not a regular file"
 * included, in English whatever the locale (for logs). */
const char *file_error(int r);

/* "a/b", or b alone when it is absolute. NULL when out of memory. */
char *path_join(const char *a, const char *b);
